package mtls

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-ai/warden/internal/config"
)

// FuzzParseBundle feeds arbitrary bytes to the bundle-file parser: it
// returns a non-empty bundle or an error, and never panics.
func FuzzParseBundle(f *testing.F) {
	ca := newCA(f, "example.org")
	f.Add(pemCerts(ca.cert))
	f.Add(pemCerts(ca.cert, newCA(f, "example.org").cert))
	f.Add(ca.cert.Raw)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add(pemKey(f, newKey(f)))
	f.Add([]byte{})
	td := spiffeid.RequireTrustDomainFromString("example.org")
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := parseBundle(td, data)
		if err == nil && (b == nil || b.Empty()) {
			t.Fatalf("no error and no authority")
		}
	})
}

// FuzzAuthenticate feeds certificates parsed from arbitrary DER or PEM to the
// authenticator (with and without allow_non_spiffe): refused or proven,
// never a panic, never a fault (every bundle is healthy).
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, nil)
	lenient := New(fx.bundles, config.MTLS{TrustDomains: fx.cfg.TrustDomains, AllowNonSPIFFE: true, Kinds: fx.cfg.Kinds}, Options{})
	now := time.Now()
	good := fx.ca.leaf(f, []string{"spiffe://example.org/agent/a"})
	inter := fx.ca.intermediate(f, now.Add(-time.Hour), now.Add(time.Hour)).leaf(f, []string{"spiffe://example.org/b"})
	f.Add(good.cert.Raw)
	f.Add(pemCerts(good.chain...))
	f.Add(pemCerts(inter.chain...))
	f.Add(append(append([]byte{}, inter.chain[0].Raw...), inter.chain[1].Raw...))
	f.Add(fx.ca.leaf(f, nil, withCN("job")).cert.Raw)
	f.Add(fx.ca.leaf(f, []string{"spiffe://example.org/a", "spiffe://example.org/b"}).cert.Raw)
	f.Add(fx.ca.cert.Raw)
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var certs []*x509.Certificate
		if cs, err := x509.ParseCertificates(data); err == nil {
			certs = cs
		}
		for rest := data; len(rest) > 0; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				certs = append(certs, c)
			}
		}
		if len(certs) == 0 {
			return
		}
		for _, a := range []*Authenticator{fx.auth, lenient} {
			p, err := a.Authenticate(context.Background(), creds(certs...), now)
			if err != nil {
				if classify(err) == fault {
					t.Fatalf("fault on input: %v", err)
				}
				continue
			}
			if p.ID == "" || p.Issuer == "" || p.AuthMethod != Method {
				t.Fatalf("incomplete principal %+v", p)
			}
			if err := a.Revalidate(&p, now); err != nil {
				t.Fatalf("revalidate right after authenticate: %v", err)
			}
		}
	})
}
