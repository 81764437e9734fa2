package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

// t0 is the fixed "now" of most tests.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

var testCfg = config.Tokens{
	Issuer:      "warden",
	TTL:         config.Duration(5 * time.Minute),
	MaxTTL:      config.Duration(time.Hour),
	RotateEvery: config.Duration(24 * time.Hour),
}

// kit is a key set with one key made at t0, an empty revocation list, an
// issuer and an authenticator, all in a temporary directory.
type kit struct {
	dir  string
	keys *KeySet
	rl   *revoke.List
	iss  *Issuer
	auth *Authenticator
}

func newKit(t testing.TB) *kit {
	t.Helper()
	dir := t.TempDir()
	keys, err := OpenKeySet(filepath.Join(dir, "token-keys.json"), testCfg.RotateEvery.D(), testCfg.MaxTTL.D())
	if err != nil {
		t.Fatal(err)
	}
	keys.now = func() time.Time { return t0 }
	if rotated, err := keys.EnsureCurrent(t0); err != nil || !rotated {
		t.Fatalf("EnsureCurrent = %v, %v", rotated, err)
	}
	rl, err := revoke.Open(filepath.Join(dir, "revocations.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &kit{dir: dir, keys: keys, rl: rl, iss: NewIssuer(keys, testCfg), auth: NewAuthenticator(keys, rl, testCfg)}
}

func (k *kit) issue(t testing.TB, c Claims, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, _, err := k.iss.Issue(c, ttl, now)
	if err != nil {
		t.Fatalf("Issue(%+v): %v", c, err)
	}
	return tok
}

func (k *kit) activeKey(t testing.TB, now time.Time) *signingKey {
	t.Helper()
	key := k.keys.current().active(now)
	if key == nil {
		t.Fatal("no active key")
	}
	return key
}

// signRaw signs arbitrary claims with key under kid and typ, bypassing the
// Issuer's checks, to build tokens the Issuer would never make.
func signRaw(t testing.TB, alg jose.SignatureAlgorithm, key any, kid, typ string, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// validWire returns the claims of a well-formed user token issued at now.
func validWire(now time.Time) wireClaims {
	return wireClaims{
		Claims: jwt.Claims{
			Issuer: "warden", Subject: "alice", Audience: jwt.Audience{"warden"}, ID: "jti-raw-1",
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
		},
		Kind:  "user",
		Scope: "inference:chat",
	}
}

// segments splits a compact JWS into its decoded parts.
func segments(tok string) (header, payload, sig []byte, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, nil, nil, false
	}
	var err error
	if header, err = base64.RawURLEncoding.DecodeString(parts[0]); err != nil {
		return nil, nil, nil, false
	}
	if payload, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		return nil, nil, nil, false
	}
	if sig, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, nil, nil, false
	}
	return header, payload, sig, true
}

// rewritePayload replaces a token's payload, keeping its header and signature.
func rewritePayload(t testing.TB, tok string, edit func(m map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(out)
	return strings.Join(parts, ".")
}

func b64json(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func notProven(err error) bool { return err != nil && errors.Is(err, identity.ErrNotProven) }

func creds(tok string) *identity.Credentials { return &identity.Credentials{Bearer: tok} }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// verifyWith returns a verifySubject function: "oidc:NAME" tokens come from
// users (a stand-in for the OIDC authenticator), "oidc-down" is a fault, and
// anything else goes to the warden token authenticator.
func verifyWith(auth *Authenticator, users map[string]gateway.Principal, now func() time.Time) func(context.Context, string) (gateway.Principal, error) {
	return func(_ context.Context, tok string) (gateway.Principal, error) {
		if tok == "oidc-down" {
			return gateway.Principal{}, errors.New("jwks unreachable")
		}
		if name, ok := strings.CutPrefix(tok, "oidc:"); ok {
			p, ok := users[name]
			if !ok {
				return gateway.Principal{}, identity.NotProven("unknown test user")
			}
			return p, nil
		}
		return auth.Verify(tok, now())
	}
}
