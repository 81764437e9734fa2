package oidc

import (
	"context"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// setup returns an IdP publishing rsa1 and ec1 and an Authenticator trusting it.
func setup(t *testing.T, edit ...func(*config.OIDCProvider)) (*testIdP, *Authenticator, keys) {
	t.Helper()
	k := testKeys(t)
	idp := newIdP(t, jwk(k.rsa, "rsa1"), jwk(k.ec, "ec1"))
	pc := idp.provider()
	for _, e := range edit {
		e(&pc)
	}
	return idp, newAuth(t, Options{Now: newFakeClock().Now}, pc), k
}

func wantNotProven(t *testing.T, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("authenticated; want not proven (%s)", reason)
	}
	if !errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("err = %v; want ErrNotProven", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %q; want reason containing %q", err, reason)
	}
}

func TestAuthenticateValid(t *testing.T) {
	idp, a, k := setup(t)
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
	}{
		{"RS256", jose.RS256, k.rsa, "rsa1"},
		{"ES256", jose.ES256, k.ec, "ec1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, tc.alg, tc.key, tc.kid, claims(idp.issuer, nil))
			if !a.Handles(creds(tok)) {
				t.Fatal("Handles = false")
			}
			p, err := a.Authenticate(context.Background(), creds(tok), t0)
			if err != nil {
				t.Fatal(err)
			}
			want := gateway.Principal{
				Kind: "user", ID: "alice", AuthMethod: "jwt", CredentialID: "tok-1", Issuer: idp.issuer,
				AuthTime: t0.Add(-time.Minute), ExpiresAt: t0.Add(5 * time.Minute),
			}
			if !principalEqual(p, want) {
				t.Fatalf("principal = %+v\nwant %+v", p, want)
			}
		})
	}
}

func principalEqual(a, b gateway.Principal) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.AuthMethod == b.AuthMethod && a.CredentialID == b.CredentialID &&
		a.Issuer == b.Issuer && a.AuthTime.Equal(b.AuthTime) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Groups, b.Groups) && slices.Equal(a.Roles, b.Roles) &&
		a.MFA == b.MFA && a.OnBehalfOf == b.OnBehalfOf
}

// TestAttacks: every forged, misdirected or stale token is not proven.
func TestAttacks(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.rsa, "rsa1"), jwk(k.ec, "ec1"))
	other := newIdP(t, jwk(k.ec2, "ec1")) // a second issuer, reusing the kid "ec1" with its own key
	onlyES := newIdP(t, jwk(k.rsa, "rsa1"), jwk(k.ec, "ec1"))
	pcES := onlyES.provider()
	pcES.Algorithms = []string{"ES256"}
	a := newAuth(t, Options{Now: newFakeClock().Now}, idp.provider(), other.provider(), pcES)

	valid := func(over map[string]any) map[string]any { return claims(idp.issuer, over) }
	rsaPub, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: rsaPub})
	hs256 := func(secret []byte) func(string) []byte {
		return func(in string) []byte {
			m := hmac.New(sha256.New, secret)
			m.Write([]byte(in))
			return m.Sum(nil)
		}
	}
	good := sign(t, jose.ES256, k.ec, "ec1", valid(nil))
	parts := strings.Split(good, ".")
	tamperedClaims, _ := json.Marshal(valid(map[string]any{"sub": "admin"}))
	tampered := parts[0] + "." + b64.EncodeToString(tamperedClaims) + "." + parts[2]
	sigSwapped := parts[0] + "." + parts[1] + "." + strings.Split(sign(t, jose.ES256, k.ec2, "ec1", valid(nil)), ".")[2]
	big := strings.Repeat("x", 9000)

	for _, tc := range []struct {
		name, tok, reason string
	}{
		{"alg none", forge(map[string]any{"alg": "none", "typ": "JWT", "kid": "ec1"}, valid(nil), nil),
			`algorithm "none" not allowed`},
		{"alg None", forge(map[string]any{"alg": "None", "kid": "ec1"}, valid(nil), nil), `algorithm "None" not allowed`},
		{"alg none with a signature", forge(map[string]any{"alg": "none", "kid": "ec1"}, valid(nil),
			func(string) []byte { return []byte("sig") }), `not allowed`},
		{"HS256 signed with the RSA public key (PEM)", forge(map[string]any{"alg": "HS256", "kid": "rsa1"}, valid(nil),
			hs256(rsaPEM)), `algorithm "HS256" not allowed`},
		{"HS256 signed with the RSA modulus", forge(map[string]any{"alg": "HS256", "kid": "rsa1"}, valid(nil),
			hs256(k.rsa.N.Bytes())), `algorithm "HS256" not allowed`},
		{"HS512 no kid", forge(map[string]any{"alg": "HS512"}, valid(nil), hs256(rsaPEM)), `not allowed`},
		{"unknown kid", sign(t, jose.ES256, k.ec2, "ghost", valid(nil)), `unknown key id "ghost"`},
		{"no kid", sign(t, jose.ES256, k.ec, "", valid(nil)), `unknown key id ""`},
		{"known kid, wrong key", sign(t, jose.ES256, k.ec2, "ec1", valid(nil)), "signature does not verify"},
		{"wrong iss", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"iss": "https://evil.example"})),
			`issuer "https://evil.example" not accepted`},
		{"iss with trailing slash", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"iss": idp.issuer + "/"})),
			"not accepted"},
		{"wrong aud", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"aud": "someone-else"})),
			"audience not accepted"},
		{"wrong aud list", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"aud": []string{"a", "b"}})),
			"audience not accepted"},
		{"no aud", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"aud": nil})), "no aud claim"},
		{"expired", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"exp": t0.Add(-31 * time.Second).Unix()})),
			"token expired at 2030-01-02T03:03:34Z"},
		{"expired exactly at the skew", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"exp": t0.Add(-30 * time.Second).Unix()})),
			"token expired"},
		{"nbf in the future", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"nbf": t0.Add(time.Minute).Unix()})),
			"not valid before 2030-01-02T03:05:05Z"},
		{"iat in the future", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"iat": t0.Add(time.Minute).Unix()})),
			"issued in the future"},
		{"missing exp", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"exp": nil})), "no exp claim"},
		{"null exp", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"exp": json.RawMessage("null")})), "no exp claim"},
		{"missing sub", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"sub": nil})), "no sub claim"},
		{"empty sub", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"sub": ""})), "no sub claim"},
		{"tampered payload", tampered, "signature does not verify"},
		{"signature from another key", sigSwapped, "signature does not verify"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "signature does not verify"},
		{"newline inside the payload", parts[0] + "." + parts[1][:10] + "\n" + parts[1][10:] + "." + parts[2], "not a compact JWS"},
		{"padded segment", parts[0] + "=." + parts[1] + "." + parts[2], "not a compact JWS"},
		{"oversized", sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{"pad": big})), "over the limit of 8192"},
		{"ES256 header, RSA key id", sign(t, jose.ES256, k.ec, "rsa1", valid(nil)), "cannot verify ES256"},
		{"RS256 header, EC key id", sign(t, jose.RS256, k.rsa, "ec1", valid(nil)), "cannot verify RS256"},
		{"PS256 not allowed", sign(t, jose.PS256, k.rsa, "rsa1", valid(nil)), `algorithm "PS256" not allowed`},
		{"RS256 when only ES256 is allowed", sign(t, jose.RS256, k.rsa, "rsa1", claims(onlyES.issuer, nil)),
			`algorithm "RS256" not allowed for issuer ` + onlyES.issuer},
		{"other issuer's token, first issuer's key", sign(t, jose.ES256, k.ec, "ec1", claims(other.issuer, nil)),
			"signature does not verify"},
		{"other issuer's token, first issuer's RSA key", sign(t, jose.RS256, k.rsa, "rsa1", claims(other.issuer, nil)),
			`unknown key id "rsa1"`},
		{"first issuer's token, iss of the other", sign(t, jose.ES256, k.ec2, "ec1", valid(nil)), "signature does not verify"},
		{"claims not an object", sign(t, jose.ES256, k.ec, "ec1", `["iss"]`), "no readable iss"},
		{"two dots, garbage", "a.b.c", "no readable iss"},
		{"header not JSON", "eyJ." + parts[1] + "." + parts[2], "malformed token"},
		{"b64 false", func() string {
			opts := (&jose.SignerOptions{}).WithBase64(false).WithHeader("kid", "ec1")
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.ec}, opts)
			body, _ := json.Marshal(valid(nil))
			jws, _ := s.Sign(body)
			out, _ := jws.CompactSerialize()
			return out
		}(), "unsupported b64 header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), creds(tc.tok), t0)
			if err == nil {
				t.Fatalf("authenticated %+v", p)
			}
			wantNotProven(t, err, tc.reason)
			if strings.Contains(err.Error(), tc.tok) {
				t.Fatal("the reason contains the token")
			}
		})
	}

	// The good token still passes, and within the skew too.
	if _, err := a.Authenticate(context.Background(), creds(good), t0); err != nil {
		t.Fatal(err)
	}
	edge := sign(t, jose.ES256, k.ec, "ec1", valid(map[string]any{
		"exp": t0.Add(-29 * time.Second).Unix(), "nbf": t0.Add(29 * time.Second).Unix(), "iat": t0.Add(29 * time.Second).Unix(),
	}))
	if _, err := a.Authenticate(context.Background(), creds(edge), t0); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
}

func TestHandles(t *testing.T) {
	idp, a, k := setup(t)
	good := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))
	big := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, map[string]any{"pad": strings.Repeat("y", 20000)}))
	huge := forge(map[string]any{"alg": "ES256"}, claims(idp.issuer, map[string]any{"pad": strings.Repeat("z", 70000)}), nil)
	for _, tc := range []struct {
		name string
		c    *identity.Credentials
		want bool
	}{
		{"configured issuer", creds(good), true},
		{"oversized, configured issuer", creds(big), true},
		{"beyond the peek bound", creds(huge), false},
		{"alg none, configured issuer (refused later)", creds(forge(map[string]any{"alg": "none"}, claims(idp.issuer, nil), nil)), true},
		{"other issuer", creds(sign(t, jose.ES256, k.ec, "ec1", claims("https://other.example", nil))), false},
		{"issuer in upper-case claim name", creds(forge(map[string]any{"alg": "ES256"}, map[string]any{"ISS": idp.issuer}, nil)), false},
		{"iss not a string", creds(forge(map[string]any{"alg": "ES256"}, map[string]any{"iss": 42}, nil)), false},
		{"API key", creds("wk_abc_def"), false},
		{"opaque token", creds("opaque-token"), false},
		{"empty", creds(""), false},
		{"nil credentials", nil, false},
		{"four segments", creds(good + ".x"), false},
		{"payload not base64", creds("a.!!!.c"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Handles(tc.c); got != tc.want {
				t.Fatalf("Handles = %v, want %v", got, tc.want)
			}
		})
	}
	// An oversized token of a configured issuer is handled, then refused.
	_, err := a.Authenticate(context.Background(), creds(big), t0)
	wantNotProven(t, err, "over the limit")
	if _, err := a.Authenticate(context.Background(), nil, t0); !errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("nil credentials: %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	base := config.OIDCProvider{Issuer: "https://idp.example", Audiences: []string{"warden"}, JWKSFile: "unused.json"}
	for _, tc := range []struct {
		name string
		edit func(*config.OIDCProvider)
		want string
	}{
		{"alg none", func(p *config.OIDCProvider) { p.Algorithms = []string{"ES256", "none"} }, `"none" is never accepted`},
		{"alg NONE", func(p *config.OIDCProvider) { p.Algorithms = []string{"NONE"} }, "never accepted"},
		{"HS256", func(p *config.OIDCProvider) { p.Algorithms = []string{"HS256"} }, `HMAC algorithm "HS256" is never accepted`},
		{"hs512", func(p *config.OIDCProvider) { p.Algorithms = []string{"hs512"} }, "HMAC"},
		{"unknown alg", func(p *config.OIDCProvider) { p.Algorithms = []string{"RS257"} }, `unsupported algorithm "RS257"`},
		{"lower-case alg", func(p *config.OIDCProvider) { p.Algorithms = []string{"es256"} }, "unsupported algorithm"},
		{"no issuer", func(p *config.OIDCProvider) { p.Issuer = "" }, "issuer is required"},
		{"no audiences", func(p *config.OIDCProvider) { p.Audiences = nil }, "audiences"},
		{"empty audience", func(p *config.OIDCProvider) { p.Audiences = []string{""} }, "empty audience"},
		{"file and url", func(p *config.OIDCProvider) { p.JWKSURL = "https://idp.example/jwks" }, "exclusive"},
		{"plain http jwks_url", func(p *config.OIDCProvider) { p.JWKSFile, p.JWKSURL = "", "http://idp.example/jwks" },
			"must be https"},
		{"plain http issuer for discovery", func(p *config.OIDCProvider) { p.JWKSFile, p.Issuer = "", "http://idp.example" },
			"must be https"},
		{"relative jwks_url", func(p *config.OIDCProvider) { p.JWKSFile, p.JWKSURL = "", "/jwks" }, "not an absolute URL"},
		{"skew too large", func(p *config.OIDCProvider) { p.ClockSkew = config.Duration(6 * time.Minute) }, "clock_skew"},
		{"negative skew", func(p *config.OIDCProvider) { p.ClockSkew = config.Duration(-time.Second) }, "clock_skew"},
		{"max bytes too large", func(p *config.OIDCProvider) { p.MaxTokenBytes = 1 << 20 }, "max_token_bytes"},
		{"negative refresh", func(p *config.OIDCProvider) { p.MinRefreshInterval = config.Duration(-time.Second) },
			"min_refresh_interval"},
		{"bad kind", func(p *config.OIDCProvider) { p.Kind = "robot" }, `kind "robot"`},
		{"missing jwks_file", func(p *config.OIDCProvider) { p.JWKSFile = filepath.Join(t.TempDir(), "nope.json") },
			"jwks_file"},
		{"missing ca_file", func(p *config.OIDCProvider) { p.JWKSFile, p.CAFile = "", "/nonexistent/ca.pem" }, "ca_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := base
			tc.edit(&pc)
			a, err := New(context.Background(), []config.OIDCProvider{pc}, Options{})
			if err == nil {
				_ = a.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want %q", err, tc.want)
			}
		})
	}
	t.Run("duplicate issuer", func(t *testing.T) {
		idp := newIdP(t, jwk(testKeys(t).ec, "ec1"))
		_, err := New(context.Background(), []config.OIDCProvider{idp.provider(), idp.provider()}, Options{})
		if err == nil || !strings.Contains(err.Error(), "configured twice") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestDefaults(t *testing.T) {
	idp := newIdP(t, jwk(testKeys(t).ec, "ec1"))
	a := newAuth(t, Options{}, config.OIDCProvider{Issuer: idp.issuer, Audiences: []string{"warden"}})
	p := a.byIssuer[idp.issuer]
	if !slices.Equal(p.algs, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}) || p.skew != 30*time.Second ||
		p.maxBytes != 8192 || p.minRefresh != 30*time.Second || p.kind != "user" ||
		p.claims != (config.ClaimMapping{Subject: "sub", Groups: "groups", Roles: "roles", Scopes: "scope"}) {
		t.Fatalf("defaults not applied: %+v", p)
	}
	if a.Name() != "oidc" || !slices.Equal(a.Issuers(), []string{idp.issuer}) {
		t.Fatal("Name/Issuers")
	}
}

func TestClaimsMapping(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	custom := newIdP(t, jwk(k.ec, "ec1"))
	pc := custom.provider()
	pc.Kind = "agent"
	pc.Claims = config.ClaimMapping{Subject: "email", Groups: "https://example.com/groups",
		Roles: "realm_access.roles", Scopes: "scp"}
	a := newAuth(t, Options{}, idp.provider(), pc)

	authTime := t0.Add(-time.Hour)
	for _, tc := range []struct {
		name   string
		claims map[string]any
		check  func(t *testing.T, p gateway.Principal)
	}{
		{"groups, roles, scope string", claims(idp.issuer, map[string]any{
			"groups": []string{"eng", "ml"}, "roles": []string{"admin"}, "scope": "chat:write  models:read",
		}), func(t *testing.T, p gateway.Principal) {
			if !slices.Equal(p.Groups, []string{"eng", "ml"}) || !slices.Equal(p.Roles, []string{"admin"}) ||
				!slices.Equal(p.Scopes, []string{"chat:write", "models:read"}) {
				t.Fatalf("%+v", p)
			}
		}},
		{"scope array, single group string", claims(idp.issuer, map[string]any{
			"scope": []string{"a", "b"}, "groups": "solo",
		}), func(t *testing.T, p gateway.Principal) {
			if !slices.Equal(p.Scopes, []string{"a", "b"}) || !slices.Equal(p.Groups, []string{"solo"}) || p.Roles != nil {
				t.Fatalf("%+v", p)
			}
		}},
		{"aud list containing ours", claims(idp.issuer, map[string]any{"aud": []string{"other", "warden"}}),
			func(t *testing.T, p gateway.Principal) {}},
		{"auth_time and amr mfa", claims(idp.issuer, map[string]any{"auth_time": authTime.Unix(), "amr": []string{"pwd", "mfa"}}),
			func(t *testing.T, p gateway.Principal) {
				if !p.MFA || !p.AuthTime.Equal(authTime) {
					t.Fatalf("%+v", p)
				}
			}},
		{"amr hwk", claims(idp.issuer, map[string]any{"amr": []string{"hwk"}}), func(t *testing.T, p gateway.Principal) {
			if !p.MFA {
				t.Fatal("MFA false")
			}
		}},
		{"amr pwd only, no jti, no iat", claims(idp.issuer, map[string]any{"amr": []string{"pwd"}, "jti": nil, "iat": nil}),
			func(t *testing.T, p gateway.Principal) {
				if p.MFA || p.CredentialID != "" || !p.AuthTime.Equal(t0.Add(-time.Minute)) { // falls back to nbf
					t.Fatalf("%+v", p)
				}
			}},
		{"fractional exp", claims(idp.issuer, map[string]any{"exp": float64(t0.Add(time.Minute).Unix()) + 0.5}),
			func(t *testing.T, p gateway.Principal) {
				if !p.ExpiresAt.Equal(t0.Add(time.Minute + 500*time.Millisecond)) {
					t.Fatalf("exp %v", p.ExpiresAt)
				}
			}},
		{"custom mapping, nested and namespaced claims", claims(custom.issuer, map[string]any{
			"email":                      "bot@example.com",
			"https://example.com/groups": []string{"agents"},
			"realm_access":               map[string]any{"roles": []string{"runner"}},
			"scp":                        "x y",
		}), func(t *testing.T, p gateway.Principal) {
			if p.ID != "bot@example.com" || p.Kind != "agent" || !slices.Equal(p.Groups, []string{"agents"}) ||
				!slices.Equal(p.Roles, []string{"runner"}) || !slices.Equal(p.Scopes, []string{"x", "y"}) {
				t.Fatalf("%+v", p)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", tc.claims)), t0)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p)
		})
	}

	// Claims of the wrong type are not proven, with a reason naming the claim.
	for _, tc := range []struct {
		name   string
		claims map[string]any
		reason string
	}{
		{"sub number", claims(idp.issuer, map[string]any{"sub": 42}), `claim "sub" must be a string`},
		{"exp string", claims(idp.issuer, map[string]any{"exp": "tomorrow"}), `claim "exp" must be a NumericDate`},
		{"exp negative", claims(idp.issuer, map[string]any{"exp": -1}), `claim "exp" must be a NumericDate`},
		{"exp huge", claims(idp.issuer, map[string]any{"exp": 1e300}), `claim "exp" must be a NumericDate`},
		{"nbf bool", claims(idp.issuer, map[string]any{"nbf": true}), `claim "nbf" must be a NumericDate`},
		{"aud number", claims(idp.issuer, map[string]any{"aud": 7}), `claim "aud" must be a string or an array`},
		{"groups object", claims(idp.issuer, map[string]any{"groups": map[string]any{"a": 1}}), `claim "groups"`},
		{"roles mixed array", claims(idp.issuer, map[string]any{"roles": []any{"a", 1}}), `claim "roles"`},
		{"scope number", claims(idp.issuer, map[string]any{"scope": 3}), `claim "scope"`},
		{"amr string list with number", claims(idp.issuer, map[string]any{"amr": []any{1}}), `claim "amr"`},
		{"jti number", claims(idp.issuer, map[string]any{"jti": 1}), `claim "jti" must be a string`},
		{"auth_time string", claims(idp.issuer, map[string]any{"auth_time": "x"}), `claim "auth_time"`},
		{"custom subject missing", claims(custom.issuer, nil), "no email claim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", tc.claims)), t0)
			wantNotProven(t, err, tc.reason)
		})
	}
}

func TestKidRotation(t *testing.T) {
	idp, a, k := setup(t)
	before := idp.jwksHits.Load()
	// The IdP rotates: ec2 appears (and ec1 is withdrawn).
	idp.setKeys(jwk(k.rsa, "rsa1"), jwk(k.ec2, "ec2"))
	tok := sign(t, jose.ES256, k.ec2, "ec2", claims(idp.issuer, nil))
	p, err := a.Authenticate(context.Background(), creds(tok), t0)
	if err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if p.ID != "alice" {
		t.Fatalf("%+v", p)
	}
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches, want 1", got)
	}
	// The withdrawn key no longer verifies.
	old := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))
	_, err = a.Authenticate(context.Background(), creds(old), t0)
	wantNotProven(t, err, `unknown key id "ec1"`)
}

func TestRefreshRateLimit(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	clock := newFakeClock()
	a := newAuth(t, Options{Now: clock.Now}, idp.provider())
	before := idp.jwksHits.Load()

	flood := func(round int) {
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Go(func() {
				tok := sign(t, jose.ES256, k.ec, "unknown-"+string(rune('a'+round))+"-"+string(rune('a'+i%26)), claims(idp.issuer, nil))
				_, err := a.Authenticate(context.Background(), creds(tok), t0)
				if !errors.Is(err, identity.ErrNotProven) {
					t.Errorf("err = %v", err)
				}
			})
		}
		wg.Wait()
	}
	flood(0)
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("first interval: %d fetches, want 1", got)
	}
	clock.Advance(29 * time.Second)
	flood(1)
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("still within the interval: %d fetches, want 1", got)
	}
	clock.Advance(time.Second)
	flood(2)
	if got := idp.jwksHits.Load() - before; got != 2 {
		t.Fatalf("next interval: %d fetches, want 2", got)
	}
}

func TestIdPDownAtStart(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	idp.down.Store(true)
	a := newAuth(t, Options{retryMin: 10 * time.Millisecond, retryMax: 20 * time.Millisecond}, idp.provider())
	tok := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))
	if !a.Handles(creds(tok)) {
		t.Fatal("Handles = false while the IdP is down")
	}
	_, err := a.Authenticate(context.Background(), creds(tok), t0)
	if err == nil || errors.Is(err, identity.ErrNotProven) || !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("IdP down: err = %v; want ErrKeysUnavailable (503), not ErrNotProven", err)
	}
	// Forgeries are still refused, and still 401: alg is checked before keys are needed.
	_, err = a.Authenticate(context.Background(), creds(forge(map[string]any{"alg": "none"}, claims(idp.issuer, nil), nil)), t0)
	wantNotProven(t, err, "not allowed")

	idp.down.Store(false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = a.Authenticate(context.Background(), creds(tok), t0)
		if err == nil {
			break
		}
		if errors.Is(err, identity.ErrNotProven) {
			t.Fatalf("during recovery: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestIdPDownLater(t *testing.T) {
	idp, a, k := setup(t)
	idp.down.Store(true)
	// Known keys keep working while the IdP is down.
	if _, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))), t0); err != nil {
		t.Fatal(err)
	}
	// A kid that needs a refresh cannot be decided: 503, not 401.
	_, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec2, "ec2", claims(idp.issuer, nil))), t0)
	if !errors.Is(err, ErrKeysUnavailable) || errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("err = %v; want ErrKeysUnavailable", err)
	}
}

func TestDiscoveryIssuerMismatch(t *testing.T) {
	idp := newIdP(t, jwk(testKeys(t).ec, "ec1"))
	idp.docIssuer = "https://evil.example"
	_, err := New(context.Background(), []config.OIDCProvider{idp.provider()}, Options{})
	if err == nil || !strings.Contains(err.Error(), `names issuer "https://evil.example"`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDiscoveryInsecureJWKSURI(t *testing.T) {
	idp := newIdP(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": idp.issuer, "jwks_uri": "http://idp.example/jwks"})
	})
	idp.srv.Config.Handler = mux
	_, err := New(context.Background(), []config.OIDCProvider{idp.provider()}, Options{})
	if err == nil || !strings.Contains(err.Error(), "must be https") {
		t.Fatalf("err = %v", err)
	}
}

func TestJWKSURLAndFile(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"), jwk(k.rsa, "rsa1"))

	byURL := config.OIDCProvider{Issuer: "https://login.example", Audiences: []string{"warden"}, JWKSURL: idp.issuer + "/jwks"}
	body, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(k.ec, "ec1")}})
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	byFile := config.OIDCProvider{Issuer: "urn:example:static", Audiences: []string{"warden"}, JWKSFile: file}
	a := newAuth(t, Options{}, byURL, byFile)
	if idp.discHits.Load() != 0 {
		t.Fatal("discovery used despite jwks_url")
	}
	for _, iss := range []string{byURL.Issuer, byFile.Issuer} {
		if _, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", claims(iss, nil))), t0); err != nil {
			t.Fatalf("%s: %v", iss, err)
		}
	}
}

func TestCAFile(t *testing.T) {
	k := testKeys(t)
	var issuer string
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(k.ec, "ec1")}})
	})
	srv := newTLSServer(t, mux)
	issuer = srv.URL
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jose.ES256, k.ec, "ec1", claims(issuer, nil))

	// Without the CA the issuer is unreachable: 503, not 401.
	plain := newAuth(t, Options{}, config.OIDCProvider{Issuer: issuer, Audiences: []string{"warden"}})
	if _, err := plain.Authenticate(context.Background(), creds(tok), t0); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("without ca_file: %v", err)
	}
	a := newAuth(t, Options{}, config.OIDCProvider{Issuer: issuer, Audiences: []string{"warden"}, CAFile: ca})
	if _, err := a.Authenticate(context.Background(), creds(tok), t0); err != nil {
		t.Fatalf("with ca_file: %v", err)
	}
}

func TestFetchBounds(t *testing.T) {
	k := testKeys(t)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"over 1 MiB", []byte(`{"keys":[],"pad":"` + strings.Repeat("p", 1<<20) + `"}`)},
		{"not JSON", []byte("<html>")},
		{"no usable keys", []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","kid":"h"}]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp := newIdP(t, jwk(k.ec, "ec1"))
			idp.jwksBody = tc.body
			a := newAuth(t, Options{}, idp.provider())
			_, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))), t0)
			if !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("err = %v; want ErrKeysUnavailable", err)
			}
		})
	}
}

func TestParseKeySetSkipsUnusableKeys(t *testing.T) {
	k := testKeys(t)
	ec, _ := json.Marshal(jwk(k.ec, "ec1"))
	encKey := jwk(k.rsa, "enc1")
	encKey.Use = "enc"
	enc, _ := json.Marshal(encKey)
	priv, _ := json.Marshal(jose.JSONWebKey{Key: k.ec2, KeyID: "leaked"})
	body := `{"keys":[` + string(ec) + `,` + string(enc) + `,` + string(priv) +
		`,{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"EC","crv":"P-256","x":"AA","y":"AA","kid":"bad"}]}`
	ks, err := parseKeySet([]byte(body), slogDiscard())
	if err != nil {
		t.Fatal(err)
	}
	if ks.n != 2 || len(ks.byKid["ec1"]) != 1 || len(ks.byKid["leaked"]) != 1 || ks.byKid["hmac"] != nil || ks.byKid["enc1"] != nil {
		t.Fatalf("kept %d keys: %v", ks.n, ks.byKid)
	}
	if pub, ok := ks.byKid["leaked"][0].key.(*ecdsa.PublicKey); !ok || !pub.Equal(&k.ec2.PublicKey) {
		t.Fatal("the leaked private key was not reduced to its public key")
	}
	if !ks.byKid["leaked"][0].fits(jose.ES256) || ks.byKid["ec1"][0].fits(jose.RS256) || ks.byKid["ec1"][0].fits(jose.ES384) {
		t.Fatal("fits")
	}
}

func TestDeclaredKeyAlg(t *testing.T) {
	k := testKeys(t)
	key := jwk(k.rsa, "rsa1")
	key.Algorithm = "PS256"
	idp := newIdP(t, key)
	pc := idp.provider()
	pc.Algorithms = []string{"RS256", "PS256"}
	a := newAuth(t, Options{}, pc)
	_, err := a.Authenticate(context.Background(), creds(sign(t, jose.RS256, k.rsa, "rsa1", claims(idp.issuer, nil))), t0)
	wantNotProven(t, err, "cannot verify RS256")
	if _, err := a.Authenticate(context.Background(), creds(sign(t, jose.PS256, k.rsa, "rsa1", claims(idp.issuer, nil))), t0); err != nil {
		t.Fatal(err)
	}
}

func TestCheckFetchURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://idp.example/jwks", true},
		{"http://127.0.0.1:8080/jwks", true},
		{"http://localhost/jwks", true},
		{"http://[::1]:9/jwks", true},
		{"http://idp.example/jwks", false},
		{"http://127.0.0.1.evil.example/jwks", false},
		{"ftp://idp.example/jwks", false},
		{"file:///etc/passwd", false},
		{"/jwks", false},
		{"https://user:secret@idp.example/", true},
	} {
		if err := checkFetchURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.url, err)
		} else if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks the password", tc.url)
		}
	}
}

func TestRevalidate(t *testing.T) {
	idp, a, k := setup(t)
	p, err := a.Authenticate(context.Background(), creds(sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))), t0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		p    *gateway.Principal
		now  time.Time
		ok   bool
	}{
		{"fresh", &p, t0, true},
		{"after exp, within the skew", &p, p.ExpiresAt.Add(29 * time.Second), true},
		{"after exp and the skew", &p, p.ExpiresAt.Add(30 * time.Second), false},
		{"unknown issuer", &gateway.Principal{Issuer: "https://other.example", ExpiresAt: p.ExpiresAt}, t0, false},
		{"no expiry", &gateway.Principal{Issuer: idp.issuer}, t0, false},
		{"nil", nil, t0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.Revalidate(tc.p, tc.now)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, identity.ErrNotProven) {
				t.Fatalf("err = %v; want not proven", err)
			}
		})
	}
}

func TestCache(t *testing.T) {
	idp, a, k := setup(t)
	tok := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, map[string]any{"groups": []string{"g"}}))
	p1, err := a.Authenticate(context.Background(), creds(tok), t0)
	if err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache has %d entries", a.cache.len())
	}
	p1.Groups[0] = "changed by the caller"
	p2, err := a.Authenticate(context.Background(), creds(tok), t0)
	if err != nil || p2.Groups[0] != "g" {
		t.Fatalf("cached: %+v, %v", p2, err)
	}
	// Time checks still apply to a cached token.
	_, err = a.Authenticate(context.Background(), creds(tok), t0.Add(10*time.Minute))
	wantNotProven(t, err, "token expired")
	// A cached token stops working once its key leaves the key set.
	idp.setKeys(jwk(k.ec2, "ec2"))
	if err := a.byIssuer[idp.issuer].refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), creds(tok), t0)
	wantNotProven(t, err, `unknown key id "ec1"`)
	// Failures are never cached.
	if a.cache.len() != 0 {
		t.Fatalf("cache has %d entries", a.cache.len())
	}

	// Bounded.
	c := newTokenCache(10)
	prov := a.byIssuer[idp.issuer]
	for i := range 100 {
		c.put(sha256.Sum256([]byte{byte(i)}), &cacheEntry{p: prov, times: tokenTimes{exp: t0.Add(time.Hour)}}, t0)
	}
	if c.len() > 10 {
		t.Fatalf("cache grew to %d", c.len())
	}
}

func TestCacheDisabled(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	a := newAuth(t, Options{CacheSize: -1}, idp.provider())
	tok := sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil))
	for range 2 {
		if _, err := a.Authenticate(context.Background(), creds(tok), t0); err != nil {
			t.Fatal(err)
		}
	}
	if a.cache != nil {
		t.Fatal("cache not disabled")
	}
}

// TestStage runs the authenticator behind the identify stage: 401 for a
// forgery, 503 while keys are unavailable, the principal otherwise.
func TestStage(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	down := newIdP(t, jwk(k.ec, "ec1"))
	down.down.Store(true)
	a := newAuth(t, Options{retryMin: time.Hour}, idp.provider(), down.provider())
	st := identity.NewStage(nil, []identity.Authenticator{a}, func() time.Time { return t0 })
	for _, tc := range []struct {
		name   string
		tok    string
		status int
	}{
		{"valid", sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, nil)), 0},
		{"alg none", forge(map[string]any{"alg": "none"}, claims(idp.issuer, nil), nil), http.StatusUnauthorized},
		{"oversized", sign(t, jose.ES256, k.ec, "ec1", claims(idp.issuer, map[string]any{"pad": strings.Repeat("x", 9000)})), http.StatusUnauthorized},
		{"other issuer", sign(t, jose.ES256, k.ec, "ec1", claims("https://other.example", nil)), http.StatusUnauthorized},
		{"issuer down", sign(t, jose.ES256, k.ec, "ec1", claims(down.issuer, nil)), http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := http.NewRequest(http.MethodGet, "http://warden/v1/models", nil)
			r.Header.Set("Authorization", "Bearer "+tc.tok)
			ex := &gateway.Exchange{Request: r}
			called := false
			err := st.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
			if tc.status == 0 {
				if err != nil || !called || ex.Principal == nil || ex.Principal.ID != "alice" || ex.Revalidate == nil {
					t.Fatalf("err = %v, principal %+v", err, ex.Principal)
				}
				return
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) || ge.Status != tc.status || called {
				t.Fatalf("err = %v; want status %d", err, tc.status)
			}
		})
	}
}

func TestNoProviders(t *testing.T) {
	a := newAuth(t, Options{})
	if a.Handles(creds("a.b.c")) {
		t.Fatal("Handles = true")
	}
	_, err := a.Authenticate(context.Background(), creds("a.b.c"), t0)
	wantNotProven(t, err, "no issuers configured")
}

func TestClip(t *testing.T) {
	s := strings.Repeat("é", 100)
	got := clip(s)
	if !utf8.ValidString(got) || len(got) > 100 || !strings.HasSuffix(got, "…") {
		t.Fatalf("clip = %q", got)
	}
}
