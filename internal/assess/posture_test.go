package assess

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestPostureVerify(t *testing.T) {
	dir := t.TempDir()
	is := newIssuer(t, dir)
	v, err := NewPostureVerifier(postureConfig(is.jwks), nil)
	if err != nil {
		t.Fatal(err)
	}
	const sub = "spiffe://example.org/ns/prod/sa/app"
	with := func(edit func(c map[string]any)) map[string]any {
		c := claims(sub)
		edit(c)
		return c
	}
	_, otherEd, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	deep := map[string]any{"x": 1}
	for range 6 {
		deep = map[string]any{"n": deep}
	}
	edSign := func(c any) string { return sign(t, is.ed, jose.EdDSA, is.edKID, c) }

	tests := []struct {
		name    string
		token   string
		wantErr string // "" = accepted; else a substring of the reason
	}{
		{"valid EdDSA", edSign(claims(sub)), ""},
		{"valid ES256", sign(t, is.ec, jose.ES256, is.ecKID, claims(sub)), ""},
		{"valid without kid", sign(t, is.ed, jose.EdDSA, "", claims(sub)), ""},
		{"aud array containing warden", edSign(with(func(c map[string]any) { c["aud"] = []string{"mdm", "warden"} })), ""},
		{"expired within clock skew", edSign(with(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-10*time.Minute).Unix(), testNow.Add(-20*time.Second).Unix()
		})), ""},
		{"lifetime exactly max_age", edSign(with(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-time.Minute).Unix(), testNow.Add(14*time.Minute).Unix()
		})), ""},
		{"fractional NumericDate", edSign(with(func(c map[string]any) { c["exp"] = float64(testNow.Add(time.Minute).Unix()) + 0.5 })), ""},

		{"expired", edSign(with(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-10*time.Minute).Unix(), testNow.Add(-31*time.Second).Unix()
		})), "expired"},
		{"wrong sub", edSign(with(func(c map[string]any) { c["sub"] = "spiffe://example.org/ns/prod/sa/other" })), "is not the principal"},
		{"sub missing", edSign(with(func(c map[string]any) { delete(c, "sub") })), "no sub"},
		{"sub null", edSign(with(func(c map[string]any) { c["sub"] = nil })), "no sub"},
		{"sub not a string", edSign(with(func(c map[string]any) { c["sub"] = 7 })), "claims"},
		{"wrong aud", edSign(with(func(c map[string]any) { c["aud"] = "mdm" })), "aud does not name"},
		{"aud array without warden", edSign(with(func(c map[string]any) { c["aud"] = []string{"mdm"} })), "aud does not name"},
		{"aud missing", edSign(with(func(c map[string]any) { delete(c, "aud") })), "no aud"},
		{"aud a number", edSign(with(func(c map[string]any) { c["aud"] = 1 })), "aud is not"},
		{"missing exp", edSign(with(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"missing iat", edSign(with(func(c map[string]any) { delete(c, "iat") })), "no iat"},
		{"exp a string", edSign(with(func(c map[string]any) { c["exp"] = "tomorrow" })), "NumericDate"},
		{"exp negative", edSign(with(func(c map[string]any) { c["exp"] = -1 })), "NumericDate"},
		{"exp absurdly far", edSign(with(func(c map[string]any) { c["exp"] = 1e300 })), "NumericDate"},
		{"lifetime over max_age", edSign(with(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(-time.Minute).Unix(), testNow.Add(15*time.Minute).Unix()
		})), "over max_age"},
		{"exp before iat", edSign(with(func(c map[string]any) { c["exp"] = testNow.Add(-2 * time.Minute).Unix() })), "not after iat"},
		{"issued in the future", edSign(with(func(c map[string]any) {
			c["iat"], c["exp"] = testNow.Add(time.Minute).Unix(), testNow.Add(5*time.Minute).Unix()
		})), "future"},
		{"not yet valid", edSign(with(func(c map[string]any) { c["nbf"] = testNow.Add(time.Minute).Unix() })), "not valid before"},
		{"wrong key, same kid", sign(t, otherEd, jose.EdDSA, is.edKID, claims(sub)), "does not verify"},
		{"wrong EC key, no kid", sign(t, otherEC, jose.ES256, "", claims(sub)), "does not verify"},
		{"unknown kid", sign(t, is.ed, jose.EdDSA, "ed-2", claims(sub)), "no EdDSA key"},
		{"EdDSA kid of the EC key", sign(t, is.ed, jose.EdDSA, is.ecKID, claims(sub)), "no EdDSA key"},
		{"alg none", unsigned(t, claims(sub)), "not allowed"},
		{"HS256 with the public key as secret", sign(t, is.pubRaw, jose.HS256, is.edKID, claims(sub)), "not allowed"},
		{"HS256 with the JWKS as secret", sign(t, is.jwksB, jose.HS256, is.edKID, claims(sub)), "not allowed"},
		{"ES384", sign(t, p384, jose.ES384, "", claims(sub)), "not allowed"},
		{"RS256", sign(t, rsaKey, jose.RS256, "", claims(sub)), "not allowed"},
		{"oversize token", edSign(with(func(c map[string]any) { c["pad"] = strings.Repeat("a", MaxPostureTokenBytes) })), "over the limit"},
		{"oversize posture", edSign(with(func(c map[string]any) {
			c["posture"] = map[string]any{"managed": true, "blob": strings.Repeat("b", 4100)}
		})), "posture claim is"},
		{"deep nesting", edSign(with(func(c map[string]any) { c["posture"] = deep })), "levels deep"},
		{"deep nesting in arrays", edSign(with(func(c map[string]any) {
			c["posture"] = map[string]any{"a": []any{[]any{[]any{[]any{[]any{1}}}}}}
		})), "levels deep"},
		{"posture missing", edSign(with(func(c map[string]any) { delete(c, "posture") })), "no posture"},
		{"posture null", edSign(with(func(c map[string]any) { c["posture"] = nil })), "not a JSON object"},
		{"posture an array", edSign(with(func(c map[string]any) { c["posture"] = []any{"managed"} })), "not a JSON object"},
		{"posture a string", edSign(with(func(c map[string]any) { c["posture"] = "managed" })), "not a JSON object"},
		{"duplicate sub", edSign([]byte(`{"sub":"someone-else","sub":"` + sub + `","aud":"warden","iat":` +
			itoa(testNow.Unix()) + `,"exp":` + itoa(testNow.Add(time.Minute).Unix()) + `,"posture":{"managed":true}}`)), "duplicate member"},
		{"duplicate posture key", edSign([]byte(`{"sub":"` + sub + `","aud":"warden","iat":` +
			itoa(testNow.Unix()) + `,"exp":` + itoa(testNow.Add(time.Minute).Unix()) + `,"posture":{"managed":false,"managed":true}}`)), "duplicate member"},
		{"payload not an object", edSign([]byte(`["warden"]`)), "not a JSON object"},
		{"payload not JSON", edSign([]byte(`posture`)), "claims"},
		{"empty", "", "malformed"},
		{"garbage", "a.b.c", "malformed"},
		{"two dots only", "..", "not allowed"},
		{"JSON serialization", `{"payload":"e30","signatures":[]}`, "malformed"},
		{"b64 false", func() string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: is.ed},
				(&jose.SignerOptions{}).WithBase64(false).WithHeader("kid", is.edKID))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign([]byte(`{"sub":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			s, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), "b64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Verify(tt.token, sub, testNow)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				want := claims(sub)["posture"].(map[string]any)
				if got["managed"] != true || !reflect.DeepEqual(got["os"], map[string]any{"name": "macOS", "version": "15.5"}) ||
					len(got) != len(want) {
					t.Fatalf("posture = %#v", got)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, posture %v", got)
			}
			if !errors.Is(err, ErrInvalidPosture) {
				t.Fatalf("err = %v, want ErrInvalidPosture", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if got != nil {
				t.Fatalf("posture %v returned with an error", got)
			}
			if len(tt.token) > 40 && strings.Contains(err.Error(), tt.token[len(tt.token)-40:]) {
				t.Fatal("the reason contains the assertion")
			}
		})
	}

	t.Run("empty principal", func(t *testing.T) {
		if _, err := v.Verify(edSign(with(func(c map[string]any) { c["sub"] = "" })), "", testNow); !errors.Is(err, ErrInvalidPosture) {
			t.Fatalf("err = %v", err)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPostureKeys(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
		keys    int
	}{
		{"Ed25519 and P-256", jwksOf(t, jose.JSONWebKey{Key: pub, KeyID: "a"}, jose.JSONWebKey{Key: &ec.PublicKey, KeyID: "b", Algorithm: "ES256"}), "", 2},
		{"private key", jwksOf(t, jose.JSONWebKey{Key: priv, KeyID: "a"}), "private or secret", 0},
		{"symmetric key", jwksOf(t, jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "a"}), "private or secret", 0},
		{"RSA key", jwksOf(t, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "a"}), "only Ed25519", 0},
		{"P-384 key", jwksOf(t, jose.JSONWebKey{Key: &p384.PublicKey, KeyID: "a"}), "P-256", 0},
		{"alg does not fit", jwksOf(t, jose.JSONWebKey{Key: pub, KeyID: "a", Algorithm: "ES256"}), "does not fit", 0},
		{"encryption key", jwksOf(t, jose.JSONWebKey{Key: pub, KeyID: "a", Use: "enc"}), "use is", 0},
		{"one bad key among good ones", jwksOf(t, jose.JSONWebKey{Key: pub, KeyID: "a"}, jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "r"}), "only Ed25519", 0},
		{"no keys", []byte(`{"keys":[]}`), "missing or empty", 0},
		{"not JSON", []byte(`keys`), "not a JSON Web Key Set", 0},
		{"unreadable key", []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"!!"}]}`), "key 0", 0},
		{"too many keys", []byte(`{"keys":[` + strings.Repeat(`{},`, maxJWKSKeys) + `{}]}`), "at most", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := parsePostureKeys(tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(ks.keys) != tt.keys {
					t.Fatalf("%d keys, want %d", len(ks.keys), tt.keys)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestPostureReload(t *testing.T) {
	dir := t.TempDir()
	is := newIssuer(t, dir)
	v, err := NewPostureVerifier(postureConfig(is.jwks), nil)
	if err != nil {
		t.Fatal(err)
	}
	const sub = "svc"
	oldTok := sign(t, is.ed, jose.EdDSA, is.edKID, claims(sub))
	if _, err := v.Verify(oldTok, sub, testNow); err != nil {
		t.Fatal(err)
	}

	// Rotation: the file now holds only a new key.
	pub2, priv2, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, is.jwks, jwksOf(t, jose.JSONWebKey{Key: pub2, KeyID: "ed-2"}))
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(oldTok, sub, testNow); !errors.Is(err, ErrInvalidPosture) {
		t.Fatalf("a token of the removed key: err = %v", err)
	}
	newTok := sign(t, priv2, jose.EdDSA, "ed-2", claims(sub))
	if _, err := v.Verify(newTok, sub, testNow); err != nil {
		t.Fatal(err)
	}

	// A bad file keeps the keys in service and is reported.
	writeFile(t, is.jwks, []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	if err := v.Reload(); err == nil {
		t.Fatal("a JWKS with a secret key was loaded")
	}
	if err := v.Healthy(); err == nil || !strings.Contains(err.Error(), "private or secret") {
		t.Fatalf("Healthy = %v", err)
	}
	if _, err := v.Verify(newTok, sub, testNow); err != nil {
		t.Fatalf("the keys in service were dropped: %v", err)
	}
	// Unchanged bad file: still reported, not re-parsed.
	if err := v.Reload(); err == nil || v.Healthy() == nil {
		t.Fatal("the refused file stopped being reported")
	}
	// A missing file, too.
	if err := os.Remove(is.jwks); err != nil {
		t.Fatal(err)
	}
	if err := v.Reload(); err == nil || v.Healthy() == nil {
		t.Fatal("a missing file is not reported")
	}
	// A good file again: healthy.
	writeFile(t, is.jwks, jwksOf(t, jose.JSONWebKey{Key: pub2, KeyID: "ed-2"}))
	if err := v.Reload(); err != nil || v.Healthy() != nil {
		t.Fatalf("Reload = %v, Healthy = %v", err, v.Healthy())
	}

	if _, err := NewPostureVerifier(postureConfig(filepath.Join(dir, "missing.json")), nil); err == nil {
		t.Fatal("a missing JWKS file was accepted at start")
	}
}
