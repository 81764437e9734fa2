package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// idp is a minimal OpenID provider: discovery and a JWKS with an RSA and an
// EC key. Tokens are signed with go-jose; forged ones are built by hand.
type idp struct {
	srv    *httptest.Server
	rsaKey *rsa.PrivateKey
	ecKey  *ecdsa.PrivateKey
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	p := &idp{}
	var err error
	if p.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if p.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": p.srv.URL, "jwks_uri": p.srv.URL + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &p.rsaKey.PublicKey, KeyID: "rsa1", Algorithm: "RS256", Use: "sig"},
			{Key: &p.ecKey.PublicKey, KeyID: "ec1", Algorithm: "ES256", Use: "sig"},
		}})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// claims returns valid claims for a user of this issuer; edit to break them.
func (p *idp) claims() map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": p.srv.URL, "aud": "warden", "sub": "alice@example.org",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"scope": "inference:*", "groups": []string{"ml-team"},
	}
}

func (p *idp) sign(t *testing.T, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	var key any = p.ecKey
	if alg == jose.RS256 {
		key = p.rsaKey
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// forgeHS256 signs with HMAC keyed by the RSA public key's PEM: the classic
// algorithm-confusion attack.
func (p *idp) forgeHS256(t *testing.T, claims map[string]any) string {
	der, err := x509.MarshalPKIXPublicKey(&p.rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signing := b64(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "rsa1"}) + "." + b64(claims)
	m := hmac.New(sha256.New, pub)
	m.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// pki is a SPIFFE trust domain's CA.
type pki struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, td string) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("spiffe://" + td)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: td + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &pki{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// svid issues a client certificate; spiffeID "" makes one without a URI SAN.
func (ca *pki) svid(t *testing.T, spiffeID string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "client"},
		NotBefore: notBefore, NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if spiffeID != "" {
		u, _ := url.Parse(spiffeID)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: crypto.Signer(key)}
}

// TestIdentityAttacks drives the real binary with every credential attack
// the identity issue names: each must be a 401 with an audit record, and the
// genuine credentials must pass.
func TestIdentityAttacks(t *testing.T) {
	provider := newIDP(t)
	ca := newCA(t, "e2e.test")
	otherCA := newCA(t, "other.test")
	e := startWardenOpts(t, options{
		TLSExtra: "      client_auth: optional\n",
		Identity: fmt.Sprintf(`identity:
  mtls:
    trust_domains:
      - name: e2e.test
        bundle_file: bundle.pem
    kinds:
      - path_prefix: /agent
        kind: agent
  oidc:
    - name: idp
      issuer: %s
      audiences: [warden]
`, provider.srv.URL),
		Policy: map[string]string{"e2e.rego": `package warden.authz

# mTLS agents of the e2e trust domain may list models.
allow if {
	input.principal.auth_method == "mtls"
	startswith(input.principal.id, "spiffe://e2e.test/agent/")
	input.action == "models.list"
}
`},
		Prepare: func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "bundle.pem"), ca.pem, 0o600))
		},
	})
	now := time.Now()
	rootCAs := e.httpClient.Transport.(*http.Transport).TLSClientConfig.RootCAs
	clientWith := func(cert *tls.Certificate) *http.Client {
		cfg := &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	call := func(client *http.Client, authz []string) (int, string) {
		req, err := http.NewRequest("GET", e.base+"/v1/models", nil)
		must(t, err)
		for _, a := range authz {
			req.Header.Add("Authorization", a)
		}
		res, err := client.Do(req)
		must(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var eb struct{ Error struct{ Code string } }
		_ = json.Unmarshal(b, &eb)
		return res.StatusCode, eb.Error.Code
	}
	bearer := func(tok string) []string { return []string{"Bearer " + tok} }
	with := func(edit func(map[string]any)) map[string]any {
		c := provider.claims()
		edit(c)
		return c
	}
	valid := provider.sign(t, jose.ES256, "ec1", provider.claims())
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(with(func(c map[string]any) { c["sub"] = "mallory" })) + "." + parts[2]
	noneTok := b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(provider.claims()) + "."
	agent := ca.svid(t, "spiffe://e2e.test/agent/planner", now.Add(-time.Hour), now.Add(time.Hour))
	expiredCert := ca.svid(t, "spiffe://e2e.test/agent/planner", now.Add(-2*time.Hour), now.Add(-time.Hour))
	foreign := otherCA.svid(t, "spiffe://other.test/agent/planner", now.Add(-time.Hour), now.Add(time.Hour))
	noID := ca.svid(t, "", now.Add(-time.Hour), now.Add(time.Hour))
	plain := clientWith(nil)

	for _, tc := range []struct {
		name   string
		client *http.Client
		authz  []string
		status int
	}{
		{"OIDC ES256 token", plain, bearer(valid), 200},
		{"OIDC RS256 token", plain, bearer(provider.sign(t, jose.RS256, "rsa1", provider.claims())), 200},
		{"mTLS SPIFFE agent", clientWith(&agent), nil, 200},
		{"alg none", plain, bearer(noneTok), 401},
		{"HS256 signed with the RSA public key", plain, bearer(provider.forgeHS256(t, provider.claims())), 401},
		{"unknown kid", plain, bearer(provider.sign(t, jose.ES256, "nope", provider.claims())), 401},
		{"wrong iss", plain, bearer(provider.sign(t, jose.ES256, "ec1", with(func(c map[string]any) { c["iss"] = "https://evil.example" }))), 401},
		{"wrong aud", plain, bearer(provider.sign(t, jose.ES256, "ec1", with(func(c map[string]any) { c["aud"] = "other-api" }))), 401},
		{"expired", plain, bearer(provider.sign(t, jose.ES256, "ec1", with(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() }))), 401},
		{"nbf in the future", plain, bearer(provider.sign(t, jose.ES256, "ec1", with(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }))), 401},
		{"tampered payload", plain, bearer(tampered), 401},
		{"oversized token", plain, bearer(provider.sign(t, jose.ES256, "ec1", with(func(c map[string]any) { c["pad"] = strings.Repeat("x", 10000) }))), 401},
		{"two Authorization headers", plain, []string{"Bearer " + valid, "Bearer " + valid}, 401},
		{"client certificate from another trust domain", clientWith(&foreign), nil, 401},
		{"expired client certificate", clientWith(&expiredCert), nil, 401},
		{"certificate without a SPIFFE ID", clientWith(&noID), nil, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code := call(tc.client, tc.authz)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, code, tc.status)
			}
		})
	}

	// Every attempt is in the audit log with its outcome and without the token.
	deadline := time.Now().Add(3 * time.Second)
	for {
		raw, err := readAuditRaw(e.auditPath)
		must(t, err)
		if n := strings.Count(string(raw), `"status":401`); n >= 13 {
			if strings.Contains(string(raw), parts[2]) {
				t.Fatal("a token signature is in the audit log")
			}
			for _, want := range []string{`"auth_method":"jwt"`, `"auth_method":"mtls"`, `"id":"spiffe://e2e.test/agent/planner"`, `"kind":"agent"`} {
				if !strings.Contains(string(raw), want) {
					t.Fatalf("audit log lacks %s", want)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit log has %d 401 records, want ≥ 13", strings.Count(string(raw), `"status":401`))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTrustBundleRotatesWithoutRestart: replacing the trust bundle file of a
// running warden makes certificates of the old CA stop working and those of
// the new CA work, with no restart.
func TestTrustBundleRotatesWithoutRestart(t *testing.T) {
	oldCA, newCA := newCA(t, "e2e.test"), newCA(t, "e2e.test")
	e := startWardenOpts(t, options{
		TLSExtra: "      client_auth: require\n",
		Identity: `identity:
  mtls:
    trust_domains:
      - name: e2e.test
        bundle_file: bundle.pem
`,
		Policy: map[string]string{"e2e.rego": `package warden.authz

allow if {
	input.principal.auth_method == "mtls"
	input.action == "models.list"
}
`},
		Prepare: func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "bundle.pem"), oldCA.pem, 0o600))
		},
	})
	now := time.Now()
	rootCAs := e.httpClient.Transport.(*http.Transport).TLSClientConfig.RootCAs
	status := func(cert tls.Certificate) int {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: rootCAs, MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}}}
		res, err := c.Get(e.base + "/v1/models")
		must(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	oldCert := oldCA.svid(t, "spiffe://e2e.test/svc/a", now.Add(-time.Hour), now.Add(time.Hour))
	newCert := newCA.svid(t, "spiffe://e2e.test/svc/a", now.Add(-time.Hour), now.Add(time.Hour))
	if s := status(oldCert); s != 200 {
		t.Fatalf("old CA before rotation: %d", s)
	}
	if s := status(newCert); s != 401 {
		t.Fatalf("new CA before rotation: %d", s)
	}
	must(t, os.WriteFile(filepath.Join(e.dir, "bundle.pem"), newCA.pem, 0o600))
	deadline := time.Now().Add(10 * time.Second)
	for status(newCert) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the new bundle was not picked up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := status(oldCert); s != 401 {
		t.Fatalf("old CA after rotation: %d", s)
	}
}

// TestServerCertificateReloadsWithoutRestart: renewing the listener's
// certificate files makes a running warden serve the new certificate.
func TestServerCertificateReloadsWithoutRestart(t *testing.T) {
	e := startWarden(t)
	addr := strings.TrimPrefix(e.base, "https://")
	serial := func(pool *x509.CertPool) (int64, error) {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
	}
	oldPool := e.httpClient.Transport.(*http.Transport).TLSClientConfig.RootCAs
	if s, err := serial(oldPool); err != nil || s != 1 {
		t.Fatalf("before renewal: serial %d, %v", s, err)
	}
	newPool := writeCertSerial(t, e.dir, 2) // overwrites cert.pem and key.pem
	deadline := time.Now().Add(10 * time.Second)
	for {
		if s, err := serial(newPool); err == nil && s == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("warden still serves the old certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Requests work over the renewed certificate.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: newPool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest("GET", e.base+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+e.appKey)
	res, err := c.Do(req)
	must(t, err)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d over the renewed certificate", res.StatusCode)
	}
}
