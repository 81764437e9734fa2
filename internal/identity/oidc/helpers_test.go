package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
)

// t0 is the time at which test tokens are checked.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Test keys, generated once: RSA-2048 ("rsa1") and ECDSA P-256 ("ec1"), plus
// spares for rotation and forgery.
type keys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
}

var (
	keysOnce sync.Once
	tk       keys
)

func testKeys(t testing.TB) keys {
	t.Helper()
	keysOnce.Do(func() {
		var err [4]error
		tk.rsa, err[0] = rsa.GenerateKey(rand.Reader, 2048)
		tk.rsa2, err[1] = rsa.GenerateKey(rand.Reader, 2048)
		tk.ec, err[2] = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tk.ec2, err[3] = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for _, e := range err {
			if e != nil {
				panic(e) // test set-up only
			}
		}
	})
	return tk
}

// jwk returns the public JWK of a private key.
func jwk(priv any, kid string) jose.JSONWebKey {
	k := jose.JSONWebKey{Key: priv, KeyID: kid, Use: "sig"}
	return k.Public()
}

// testIdP is a local OIDC provider: discovery and a JWKS whose keys the
// test can change, and which can be taken down.
type testIdP struct {
	srv       *httptest.Server
	issuer    string
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	docIssuer string // issuer named by discovery; "" means the real one
	down      atomic.Bool
	jwksHits  atomic.Int32
	discHits  atomic.Int32
	jwksBody  []byte // when set, served instead of the keys
}

func newIdP(t testing.TB, keys ...jose.JSONWebKey) *testIdP {
	t.Helper()
	idp := &testIdP{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.discHits.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		idp.mu.Lock()
		iss := idp.docIssuer
		idp.mu.Unlock()
		if iss == "" {
			iss = idp.issuer
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": idp.issuer + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		idp.mu.Lock()
		defer idp.mu.Unlock()
		if idp.jwksBody != nil {
			_, _ = w.Write(idp.jwksBody)
			return
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: idp.keys})
	})
	idp.srv = httptest.NewServer(mux)
	idp.issuer = idp.srv.URL
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *testIdP) setKeys(keys ...jose.JSONWebKey) {
	idp.mu.Lock()
	idp.keys = keys
	idp.mu.Unlock()
}

// provider returns a provider config for the IdP, using discovery.
func (idp *testIdP) provider() config.OIDCProvider {
	return config.OIDCProvider{Name: "test", Issuer: idp.issuer, Audiences: []string{"warden"}}
}

// fakeClock is a settable clock for refresh rate limits.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t0.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newAuth(t testing.TB, opts Options, providers ...config.OIDCProvider) *Authenticator {
	t.Helper()
	a, err := New(context.Background(), providers, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// claims returns a valid claims set for issuer, with overrides applied
// (a nil value deletes the claim).
func claims(issuer string, over map[string]any) map[string]any {
	c := map[string]any{
		"iss": issuer,
		"sub": "alice",
		"aud": "warden",
		"exp": t0.Add(5 * time.Minute).Unix(),
		"iat": t0.Add(-time.Minute).Unix(),
		"nbf": t0.Add(-time.Minute).Unix(),
		"jti": "tok-1",
	}
	maps.Copy(c, over)
	for k, v := range over {
		if v == nil {
			delete(c, k)
		}
	}
	return c
}

// sign makes a compact JWS with go-jose.
func sign(t testing.TB, alg jose.SignatureAlgorithm, priv any, kid string, payload any) string {
	t.Helper()
	var body []byte
	switch p := payload.(type) {
	case []byte:
		body = p
	case string:
		body = []byte(p)
	default:
		var err error
		if body, err = json.Marshal(p); err != nil {
			t.Fatal(err)
		}
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var b64 = base64.RawURLEncoding

// forge builds a compact JWS by hand: go-jose refuses to make these.
func forge(header, payload map[string]any, sig func(signingInput string) []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	in := b64.EncodeToString(h) + "." + b64.EncodeToString(p)
	var s []byte
	if sig != nil {
		s = sig(in)
	}
	return in + "." + b64.EncodeToString(s)
}

func creds(tok string) *identity.Credentials { return &identity.Credentials{Bearer: tok} }

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTLSServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}
