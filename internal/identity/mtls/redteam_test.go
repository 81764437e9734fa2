package mtls

// Red-team probes of SPIFFE ID extraction beyond TestAuthenticate and
// TestAuthenticateNonSPIFFE. Passing tests are regression guards.

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
)

func TestRedTeamSPIFFEIDShapes(t *testing.T) {
	f := newFixture(t, nil)
	for _, tc := range []struct {
		name   string
		uris   []string
		opts   []leafOpt
		want   outcome
		wantID string
	}{
		{"percent-encoded dot segments", []string{"spiffe://example.org/agent/%2E%2E/admin"}, nil, notProven, ""},
		{"percent-encoded slash", []string{"spiffe://example.org/agent%2F..%2Fadmin"}, nil, notProven, ""},
		{"empty path segment", []string{"spiffe://example.org/agent//admin"}, nil, notProven, ""},
		{"trailing slash", []string{"spiffe://example.org/agent/"}, nil, notProven, ""},
		{"SPIFFE ID plus a DNS SAN", []string{"spiffe://example.org/agent/a"},
			[]leafOpt{func(c *x509.Certificate) { c.DNSNames = []string{"admin.example.org"} }}, proven, "spiffe://example.org/agent/a"},
		{"SPIFFE ID plus a CN naming another ID", []string{"spiffe://example.org/agent/a"},
			[]leafOpt{withCN("spiffe://example.org/admin")}, proven, "spiffe://example.org/agent/a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := f.ca.leaf(t, tc.uris, tc.opts...)
			p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), time.Now())
			if got := classify(err); got != tc.want {
				t.Fatalf("%v (err %v), want %v", got, err, tc.want)
			}
			if tc.want == proven && p.ID != tc.wantID {
				t.Fatalf("id %q, want %q", p.ID, tc.wantID)
			}
		})
	}
}

// With allow_non_spiffe, a certificate that carries a SPIFFE ID of an
// unconfigured trust domain must not fall back to its common name just
// because a configured trust domain's CA signed it.
func TestRedTeamNonSPIFFEFallbackNotTakenForForeignSPIFFEID(t *testing.T) {
	f := newFixture(t, func(c *config.MTLS) { c.AllowNonSPIFFE = true })
	l := f.ca.leaf(t, []string{"spiffe://evil.org/agent/x"}, withCN("billing-batch"))
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), time.Now())
	if classify(err) != notProven {
		t.Fatalf("accepted as %+v (err %v)", p, err)
	}
}

// X.509-SVID §3.1 and §5.2: "Leaf certificate SPIFFE IDs MUST have a
// non-root path component", and the validator "MUST ensure that the SPIFFE
// ID has a non-root path component". The trust domain ID itself
// (spiffe://example.org) names the trust domain / its signing authority, not
// a workload; a leaf carrying it must not authenticate a caller.
func TestRedTeamSPIFFEIDWithoutPathRefused(t *testing.T) {
	f := newFixture(t, nil)
	for _, id := range []string{"spiffe://example.org", "spiffe://example.org/"} {
		l := f.ca.leaf(t, []string{id})
		p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), time.Now())
		if classify(err) != notProven {
			t.Errorf("leaf with SPIFFE ID %q (no path) accepted as %s %q (issuer %s), err %v", id, p.Kind, p.ID, p.Issuer, err)
		}
	}
}
