package mtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority generated for a test: a root, or an
// intermediate when parent is set.
type testCA struct {
	cert   *x509.Certificate
	key    crypto.Signer
	parent *testCA
}

// testLeaf is an end-entity certificate with its key and the chain a client
// presents (leaf first, then intermediates; never the root).
type testLeaf struct {
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
}

func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

func newKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("url %q: %v", s, err)
	}
	return u
}

// newCA returns a root CA for trust domain td (its URI SAN is spiffe://td,
// as SPIRE's CAs have).
func newCA(t testing.TB, td string) *testCA {
	t.Helper()
	now := time.Now()
	return issueCA(t, nil, td, now.Add(-time.Hour), now.Add(24*time.Hour))
}

// intermediate returns an intermediate CA signed by ca.
func (ca *testCA) intermediate(t testing.TB, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	return issueCA(t, ca, "", notBefore, notAfter)
}

func issueCA(t testing.TB, parent *testCA, td string, notBefore, notAfter time.Time) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: "test CA " + td, Organization: []string{"warden tests"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if td != "" {
		tmpl.URIs = []*url.URL{mustURL(t, "spiffe://"+td)}
	}
	signer, signerCert := key, tmpl
	if parent != nil {
		signer, signerCert = parent.key, parent.cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signerCert, key.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, parent: parent}
}

type leafOpt func(*x509.Certificate)

func withValidity(notBefore, notAfter time.Time) leafOpt {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}

func withCN(cn string) leafOpt { return func(c *x509.Certificate) { c.Subject.CommonName = cn } }

func withEKU(u ...x509.ExtKeyUsage) leafOpt { return func(c *x509.Certificate) { c.ExtKeyUsage = u } }

func withCAFlag() leafOpt {
	return func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage |= x509.KeyUsageCertSign
	}
}

func withIP(ip net.IP) leafOpt {
	return func(c *x509.Certificate) { c.IPAddresses = append(c.IPAddresses, ip) }
}

// leaf issues an end-entity certificate with the given URI SANs, valid for
// an hour around now unless an option says otherwise.
func (ca *testCA) leaf(t testing.TB, uris []string, opts ...leafOpt) *testLeaf {
	t.Helper()
	key := newKey(t)
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{Organization: []string{"warden tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, u := range uris {
		tmpl.URIs = append(tmpl.URIs, mustURL(t, u))
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{cert}
	for p := ca; p.parent != nil; p = p.parent {
		chain = append(chain, p.cert)
	}
	return &testLeaf{cert: cert, key: key, chain: chain}
}

// tlsCert returns the leaf as a client or server certificate.
func (l *testLeaf) tlsCert() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.key, Leaf: l.cert}
	for _, x := range l.chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

func pemCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func pemKey(t testing.TB, k crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// writeAtomic replaces path with data the way operators should: write a
// temporary file, then rename it.
func writeAtomic(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
