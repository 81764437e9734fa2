package oidc

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
)

const fuzzIssuer = "https://idp.example"

// fuzzAuth trusts fuzzIssuer with the test keys, from a JWKS file (no network).
func fuzzAuth(f *testing.F) (*Authenticator, []any) {
	f.Helper()
	k := testKeys(f)
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(k.rsa, "rsa1"), jwk(k.ec, "ec1")}})
	if err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(f.TempDir(), "jwks.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		f.Fatal(err)
	}
	a := newAuth(f, Options{Now: newFakeClock().Now}, config.OIDCProvider{
		Issuer: fuzzIssuer, Audiences: []string{"warden"}, JWKSFile: file,
		Algorithms: []string{"RS256", "ES256", "PS256"},
	})
	return a, []any{&k.rsa.PublicKey, &k.ec.PublicKey}
}

func fuzzSeeds(f *testing.F) {
	k := testKeys(f)
	good := claims(fuzzIssuer, map[string]any{"groups": []string{"g"}, "scope": "a b"})
	for _, s := range []string{
		sign(f, jose.ES256, k.ec, "ec1", good),
		sign(f, jose.RS256, k.rsa, "rsa1", good),
		sign(f, jose.PS256, k.rsa, "rsa1", good),
		sign(f, jose.ES256, k.ec2, "ec1", good),
		sign(f, jose.ES256, k.ec, "rsa1", good),
		forge(map[string]any{"alg": "none", "kid": "ec1"}, good, nil),
		forge(map[string]any{"alg": "HS256", "kid": "rsa1"}, good, func(string) []byte { return k.rsa.N.Bytes()[:32] }),
		forge(map[string]any{"alg": "ES256", "kid": "ec1", "crit": []string{"b64"}, "b64": false}, good, nil),
		forge(map[string]any{"alg": "ES256", "kid": "ec1", "jwk": jwk(k.ec2, "x")}, good, nil),
		sign(f, jose.ES256, k.ec, "ec1", `{"iss":"`+fuzzIssuer+`","aud":["warden"],"exp":1e300,"sub":1}`),
		"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIn0.",
		"a.b.c", "..", "", "wk_a_b",
	} {
		f.Add(s)
	}
}

// FuzzAuthenticate: no panic on any token, and never a principal unless the
// token's signature verifies under one of the issuer's keys.
func FuzzAuthenticate(f *testing.F) {
	a, pubs := fuzzAuth(f)
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, tok string) {
		c := &identity.Credentials{Bearer: tok}
		_ = a.Handles(c)
		p, err := a.Authenticate(context.Background(), c, t0)
		if err != nil {
			if !errors.Is(err, identity.ErrNotProven) && !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("unexpected error class: %v", err)
			}
			if len(tok) > 24 && strings.Contains(err.Error(), tok) {
				t.Fatal("the reason contains the token")
			}
			return
		}
		if p.Issuer != fuzzIssuer || p.ID == "" || p.AuthMethod != "jwt" {
			t.Fatalf("odd principal %+v", p)
		}
		// Independent check with go-jose: the signature must verify.
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.PS256})
		if err != nil {
			t.Fatalf("authenticated a token go-jose cannot parse: %v", err)
		}
		for _, pub := range pubs {
			if _, err := jws.Verify(pub); err == nil {
				return
			}
		}
		t.Fatalf("authenticated %+v without a valid signature", p)
	})
}

// FuzzHandles: no panic; Handles claims only JWT-shaped tokens naming the issuer.
func FuzzHandles(f *testing.F) {
	a, _ := fuzzAuth(f)
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, tok string) {
		if !a.Handles(&identity.Credentials{Bearer: tok}) {
			return
		}
		if identity.KindOf(tok) != identity.BearerJWT {
			t.Fatal("handled a token that is not JWT-shaped")
		}
		if iss, ok := peekIssuer(tok); !ok || iss != fuzzIssuer {
			t.Fatalf("handled a token of issuer %q", iss)
		}
	})
}

// FuzzClaims: any verified payload maps to a principal or a not-proven reason.
func FuzzClaims(f *testing.F) {
	a, _ := fuzzAuth(f)
	p := a.byIssuer[fuzzIssuer]
	for _, s := range []string{
		`{"iss":"https://idp.example","aud":"warden","exp":1893553445,"sub":"a","groups":["x"],"scope":"a b","amr":["mfa"]}`,
		`{"iss":"https://idp.example","aud":["warden"],"exp":1.5e9,"nbf":"x"}`,
		`{"a.b":{"c":1},"a":{"b":null}}`, `[]`, `null`, `{"exp":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		cl, err := parseClaims(payload)
		if err != nil {
			if !errors.Is(err, identity.ErrNotProven) {
				t.Fatal(err)
			}
			return
		}
		pr, _, err := p.principal(cl, t0)
		if err != nil {
			if !errors.Is(err, identity.ErrNotProven) {
				t.Fatal(err)
			}
			return
		}
		if pr.ID == "" || pr.Issuer != fuzzIssuer || pr.ExpiresAt.IsZero() {
			t.Fatalf("odd principal %+v", pr)
		}
	})
}

// FuzzParseKeySet: a JWKS parses to public signature keys only, or fails.
func FuzzParseKeySet(f *testing.F) {
	k := testKeys(f)
	good, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk(k.rsa, "rsa1"), jwk(k.ec, "ec1")}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`))
	f.Add([]byte(`{"keys":null}`))
	log := slogDiscard()
	f.Fuzz(func(t *testing.T, body []byte) {
		ks, err := parseKeySet(body, log)
		if err != nil {
			return
		}
		for _, list := range ks.byKid {
			for _, vk := range list {
				switch key := vk.key.(type) {
				case *ecdsa.PublicKey:
				default:
					if !vk.fits(jose.RS256) && !vk.fits(jose.EdDSA) && !vk.fits(jose.PS256) {
						t.Fatalf("kept a key of type %T", key)
					}
				}
			}
		}
	})
}
