package oidc

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

func benchToken(b *testing.B, issuer string) string {
	k := testKeys(b)
	return sign(b, jose.ES256, k.ec, "ec1", claims(issuer, map[string]any{
		"groups": []string{"eng", "ml-platform"}, "roles": []string{"developer"}, "scope": "openid chat:write models:read",
		"amr": []string{"pwd", "mfa"}, "auth_time": t0.Add(-time.Hour).Unix(),
	}))
}

// BenchmarkAuthenticateES256 is one request's identity work for a client
// that reuses its ES256 access token (the common case): Handles, then
// Authenticate served from the verified-token cache, exp/nbf/iat and key
// presence re-checked.
func BenchmarkAuthenticateES256(b *testing.B) {
	k := testKeys(b)
	idp := newIdP(b, jwk(k.ec, "ec1"))
	a := newAuth(b, Options{}, idp.provider())
	c := creds(benchToken(b, idp.issuer))
	ctx := context.Background()
	if _, err := a.Authenticate(ctx, c, t0); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !a.Handles(c) {
			b.Fatal("not handled")
		}
		if _, err := a.Authenticate(ctx, c, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateES256Uncached is the first use of a token: full
// parse, ECDSA P-256 verification and claim checks.
func BenchmarkAuthenticateES256Uncached(b *testing.B) {
	k := testKeys(b)
	idp := newIdP(b, jwk(k.ec, "ec1"))
	a := newAuth(b, Options{CacheSize: -1}, idp.provider())
	c := creds(benchToken(b, idp.issuer))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if !a.Handles(c) {
			b.Fatal("not handled")
		}
		if _, err := a.Authenticate(ctx, c, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateRS256Uncached: the same with RSA-2048.
func BenchmarkAuthenticateRS256Uncached(b *testing.B) {
	k := testKeys(b)
	idp := newIdP(b, jwk(k.rsa, "rsa1"))
	a := newAuth(b, Options{CacheSize: -1}, idp.provider())
	c := creds(sign(b, jose.RS256, k.rsa, "rsa1", claims(idp.issuer, nil)))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, c, t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRefuseForgery is the cost of refusing an alg-none token.
func BenchmarkRefuseForgery(b *testing.B) {
	k := testKeys(b)
	idp := newIdP(b, jwk(k.ec, "ec1"))
	a := newAuth(b, Options{}, idp.provider())
	c := creds(forge(map[string]any{"alg": "none", "kid": "ec1"}, claims(idp.issuer, nil), nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authenticate(ctx, c, t0); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkStageES256 is the whole identify stage for a request carrying a
// reused ES256 access token: header extraction, dispatch by issuer, the
// verified-token cache and the principal. Target ≤ 20 µs.
func BenchmarkStageES256(b *testing.B) {
	k := testKeys(b)
	idp := newIdP(b, jwk(k.ec, "ec1"))
	a := newAuth(b, Options{}, idp.provider())
	st := identity.NewStage(nil, []identity.Authenticator{a}, func() time.Time { return t0 })
	req := httptest.NewRequest("GET", "/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+benchToken(b, idp.issuer))
	w := gateway.NewResponseWriter(httptest.NewRecorder())
	next := func(*gateway.Exchange) error { return nil }
	if err := st.Handle(&gateway.Exchange{Request: req, Writer: w}, next); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := st.Handle(&gateway.Exchange{Request: req, Writer: w}, next); err != nil {
			b.Fatal(err)
		}
	}
}
