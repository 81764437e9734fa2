package oidc

// Red-team probes of the OIDC/JWT authenticator, beyond TestAttacks and
// TestClaimsMapping: JOSE header tricks, nested tokens and shape games. A
// passing test is a regression guard for an attack that was refused.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/identity"
)

func TestRedTeamOIDCHeaderTricks(t *testing.T) {
	k := testKeys(t)
	idp := newIdP(t, jwk(k.ec, "ec1"))
	a := newAuth(t, Options{CacheSize: -1}, idp.provider())
	good := claims(idp.issuer, nil)

	signWith := func(priv any, kid string, extra map[jose.HeaderKey]any, embed bool) string {
		t.Helper()
		opts := (&jose.SignerOptions{EmbedJWK: embed}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		for h, v := range extra {
			opts = opts.WithHeader(h, v)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: priv}, opts)
		if err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"iss":"` + idp.issuer + `","sub":"alice","aud":"warden","exp":` +
			itoa(t0.Add(5*time.Minute).Unix()) + `}`)
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
	valid := sign(t, jose.ES256, k.ec, "ec1", good)
	inner := sign(t, jose.ES256, k.ec2, "", claims(idp.issuer, map[string]any{"sub": "root"}))
	nested := func() string { // a signed JWT whose payload is another (attacker-signed) JWT
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.ec},
			(&jose.SignerOptions{}).WithContentType("JWT").WithHeader("kid", "ec1"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(inner))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}()

	for _, tc := range []struct{ name, tok string }{
		{"embedded jwk of the attacker, issuer's kid", signWith(k.ec2, "ec1", nil, true)},
		{"embedded jwk of the attacker, no kid", signWith(k.ec2, "", nil, true)},
		{"jku to the attacker", signWith(k.ec2, "ec1", map[jose.HeaderKey]any{"jku": "https://evil.example/jwks"}, false)},
		{"x5u to the attacker", signWith(k.ec2, "ec1", map[jose.HeaderKey]any{"x5u": "https://evil.example/c.pem"}, false)},
		{"unknown crit extension, issuer's key", signWith(k.ec, "ec1", map[jose.HeaderKey]any{"crit": []string{"x-ext"}, "x-ext": 1}, false)},
		{"nested JWT signed by the attacker inside the issuer's", nested},
		{"extra segment", valid + ".AAAA"},
		{"JWE-shaped (five segments)", "eyJhbGciOiJSU0EtT0FFUCJ9." + strings.Join(strings.Split(valid, ".")[1:], ".") + ".x.y"},
		{"leading space", " " + valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := creds(tc.tok)
			if !a.Handles(c) {
				return // not routed to OIDC: the stage refuses what nobody handles
			}
			p, err := a.Authenticate(context.Background(), c, t0)
			if err == nil {
				t.Fatalf("accepted as %+v", p)
			}
			if !errorsIsNotProven(err) {
				t.Fatalf("refused as a fault (503) instead of 401: %v", err)
			}
		})
	}
	if _, err := a.Authenticate(context.Background(), creds(valid), t0); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
}

func errorsIsNotProven(err error) bool {
	return err != nil && strings.Contains(err.Error(), identity.ErrNotProven.Error())
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
