package token

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestKeyRotation(t *testing.T) {
	k := newKit(t)
	old := k.activeKey(t, t0)
	if old.info.RetireAfter != t0.Add(24*time.Hour) || old.info.DropAfter != t0.Add(25*time.Hour) {
		t.Fatalf("first key times %+v", old.info)
	}
	// A token signed by the first key shortly before it retires.
	signedAt := t0.Add(23*time.Hour + 30*time.Minute)
	tokOld, expOld, err := k.iss.Issue(Claims{Subject: "alice"}, time.Hour, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	// A token with a lifetime beyond the key's drop_after, which the Issuer
	// would never sign, shows when the key stops verifying.
	long := validWire(signedAt)
	long.Expiry = jwt.NewNumericDate(t0.Add(48 * time.Hour))
	tokLong := signRaw(t, jose.ES256, old.priv, old.info.KID, Type, long)

	// Not due yet: no rotation.
	if rotated, err := k.keys.EnsureCurrent(t0.Add(23 * time.Hour)); err != nil || rotated {
		t.Fatalf("EnsureCurrent before due = %v, %v", rotated, err)
	}
	rotateAt := t0.Add(24 * time.Hour)
	if rotated, err := k.keys.EnsureCurrent(rotateAt); err != nil || !rotated {
		t.Fatalf("EnsureCurrent when due = %v, %v", rotated, err)
	}
	cur := k.activeKey(t, rotateAt)
	if cur.info.KID == old.info.KID {
		t.Fatal("no new active key after rotation")
	}
	tokNew := k.issue(t, Claims{Subject: "alice"}, 0, rotateAt)
	if h, _, _, _ := segments(tokNew); !strings.Contains(string(h), cur.info.KID) {
		t.Fatal("the new token is not signed by the new key")
	}

	tests := []struct {
		name string
		tok  string
		now  time.Time
		ok   bool
	}{
		{"old key, token before its expiry", tokOld, rotateAt.Add(10 * time.Minute), true},
		{"old key, token after its expiry", tokOld, expOld.Add(ClockSkew + time.Second), false},
		{"old key, just before drop_after", tokLong, old.info.DropAfter.Add(-time.Second), true},
		{"old key, at drop_after", tokLong, old.info.DropAfter, false},
		{"new key", tokNew, rotateAt.Add(time.Minute), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.auth.Verify(tt.tok, tt.now)
			if tt.ok && err != nil || !tt.ok && !notProven(err) {
				t.Fatalf("Verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}

	// A later write prunes the dropped key from the file.
	if _, err := k.keys.Rotate(old.info.DropAfter.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, ki := range k.keys.Keys() {
		if ki.KID == old.info.KID {
			t.Fatal("dropped key still in the file")
		}
	}
}

func TestRotateRetiresPrevious(t *testing.T) {
	k := newKit(t)
	first := k.activeKey(t, t0).info
	at := t0.Add(time.Minute)
	next, err := k.keys.Rotate(at)
	if err != nil {
		t.Fatal(err)
	}
	keys := k.keys.Keys()
	if len(keys) != 2 || keys[1].KID != next.KID {
		t.Fatalf("keys after Rotate: %+v", keys)
	}
	if keys[0].KID != first.KID || !keys[0].RetireAfter.Equal(at) || !keys[0].DropAfter.Equal(at.Add(time.Hour)) {
		t.Fatalf("previous key after Rotate: %+v", keys[0])
	}
	if got := keys[0].Status(at); got != KeyRetired {
		t.Fatalf("previous key status %q", got)
	}
	if got := keys[1].Status(at); got != KeyActive {
		t.Fatalf("new key status %q", got)
	}
	if got := keys[0].Status(at.Add(time.Hour)); got != KeyDropped {
		t.Fatalf("previous key status after drop %q", got)
	}
	// A token issued by the first key before the rotation still verifies.
	// Issue caps its expiry at the key's drop_after.
	fi, err := os.Stat(k.keys.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestIssueCappedByKeyDrop(t *testing.T) {
	k := newKit(t)
	// Two instances: one still thinks the first key is active until the
	// other's rotation is seen; its tokens must not outlive the key.
	key := k.activeKey(t, t0)
	at := key.info.DropAfter.Add(-2 * time.Hour) // active (retire is drop-1h), 2h before drop
	_, exp, err := k.iss.Issue(Claims{Subject: "a"}, time.Hour, at)
	if err != nil {
		t.Fatal(err)
	}
	if exp.After(key.info.DropAfter) {
		t.Fatalf("exp %v after the key's drop_after %v", exp, key.info.DropAfter)
	}
}

func TestEnsureCurrentConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	const n = 8
	var wg sync.WaitGroup
	rotations := make(chan bool, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks, err := OpenKeySet(path, time.Hour, time.Hour)
			if err != nil {
				t.Error(err)
				return
			}
			rotated, err := ks.EnsureCurrent(t0)
			if err != nil {
				t.Error(err)
			}
			rotations <- rotated
		}()
	}
	wg.Wait()
	close(rotations)
	count := 0
	for r := range rotations {
		if r {
			count++
		}
	}
	ks, err := OpenKeySet(path, time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if count != 1 || len(ks.Keys()) != 1 {
		t.Fatalf("%d rotations, %d keys; want exactly one", count, len(ks.Keys()))
	}
}

func TestWatchPicksUpRotation(t *testing.T) {
	k := newKit(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); k.keys.Watch(ctx, 10*time.Millisecond, discard()) }()
	defer func() { cancel(); wg.Wait() }()

	// The CLI rotates through its own KeySet.
	cli, err := OpenKeySet(k.keys.Path(), testCfg.RotateEvery.D(), testCfg.MaxTTL.D())
	if err != nil {
		t.Fatal(err)
	}
	next, err := cli.Rotate(t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	cliTok, _, err := NewIssuer(cli, testCfg).Issue(Claims{Subject: "alice"}, 0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for k.keys.current().byKID[next.KID] == nil {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := k.auth.Verify(cliTok, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("token signed with the CLI's new key: %v", err)
	}
	if got := k.activeKey(t, t0.Add(2*time.Minute)).info.KID; got != next.KID {
		t.Fatalf("server signs with %s, want the rotated key %s", got, next.KID)
	}
}

func TestJWKS(t *testing.T) {
	k := newKit(t)
	first := k.activeKey(t, t0).info
	second, err := k.keys.Rotate(t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	third, err := k.keys.Rotate(t0.Add(2 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	infos := k.keys.Keys() // drop times as shortened by the rotations
	tests := []struct {
		name string
		now  time.Time
		want []string
	}{
		{"all verifying", t0.Add(3 * time.Minute), []string{first.KID, second.KID, third.KID}},
		{"first dropped", infos[0].DropAfter, []string{second.KID, third.KID}},
		{"only the active key", infos[1].DropAfter, []string{third.KID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k.keys.now = func() time.Time { return tt.now }
			rec := httptest.NewRecorder()
			k.keys.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d", rec.Code)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=300") {
				t.Fatalf("Cache-Control %q", cc)
			}
			body := rec.Body.Bytes()
			var set jose.JSONWebKeySet
			if err := json.Unmarshal(body, &set); err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, key := range set.Keys {
				if !key.IsPublic() || !key.Valid() || key.Algorithm != "ES256" || key.Use != "sig" {
					t.Fatalf("bad key %+v", key)
				}
				kids = append(kids, key.KeyID)
			}
			slices.Sort(kids)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(kids, want) {
				t.Fatalf("kids %v, want %v", kids, want)
			}
			var raw struct{ Keys []map[string]any }
			if err := json.Unmarshal(body, &raw); err != nil {
				t.Fatal(err)
			}
			for _, m := range raw.Keys {
				if _, ok := m["d"]; ok {
					t.Fatal("private part d in the JWK set")
				}
				for field := range m {
					if !slices.Contains([]string{"kty", "crv", "x", "y", "kid", "alg", "use"}, field) {
						t.Fatalf("unexpected JWK field %q", field)
					}
				}
			}
		})
	}
	// Tokens verify with the published key (as an external verifier would).
	k.keys.now = func() time.Time { return t0 }
	tok := k.issue(t, Claims{Subject: "alice"}, 0, t0.Add(3*time.Minute))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(k.keys.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatal("signing key not in the JWK set")
	}
	var c jwt.Claims
	if err := parsed.Claims(keys[0].Key, &c); err != nil || c.Subject != "alice" {
		t.Fatalf("external verification: %v %+v", err, c)
	}

	for _, m := range []string{http.MethodHead, http.MethodPost} {
		rec := httptest.NewRecorder()
		k.keys.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(m, "/.well-known/jwks.json", nil))
		want := map[string]int{http.MethodHead: 200, http.MethodPost: 405}[m]
		if rec.Code != want {
			t.Fatalf("%s: status %d, want %d", m, rec.Code, want)
		}
	}
	// Unavailable key set: 503.
	if err := os.WriteFile(k.keys.Path(), []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = k.keys.Reload()
	rec := httptest.NewRecorder()
	k.keys.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("broken key set: status %d", rec.Code)
	}
}

func TestKeySetCorruptNeverLeaksKeys(t *testing.T) {
	k := newKit(t)
	data, err := os.ReadFile(k.keys.Path())
	if err != nil {
		t.Fatal(err)
	}
	var f keySetFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	secret := f.Keys[0].PrivateKey
	tests := []struct {
		name string
		edit func(f *keySetFile) []byte
	}{
		{"wrong alg", func(f *keySetFile) []byte { f.Keys[0].Alg = "RS256"; return mustJSON(t, f) }},
		{"truncated key", func(f *keySetFile) []byte { f.Keys[0].PrivateKey = secret[:len(secret)-8]; return mustJSON(t, f) }},
		{"not base64", func(f *keySetFile) []byte { f.Keys[0].PrivateKey = secret + "!"; return mustJSON(t, f) }},
		{"duplicate kid", func(f *keySetFile) []byte { f.Keys = append(f.Keys, f.Keys[0]); return mustJSON(t, f) }},
		{"bad times", func(f *keySetFile) []byte {
			f.Keys[0].DropAfter = f.Keys[0].Created.Add(-time.Hour)
			return mustJSON(t, f)
		}},
		{"bad kid", func(f *keySetFile) []byte { f.Keys[0].KID = "a/b"; return mustJSON(t, f) }},
		{"private key as wrong type", func(f *keySetFile) []byte {
			return []byte(strings.Replace(string(mustJSON(t, f)), `"`+secret+`"`, "123", 1))
		}},
		{"invalid json around the key", func(f *keySetFile) []byte { return []byte(strings.TrimSuffix(string(mustJSON(t, f)), "}")) }},
		{"unknown field", func(f *keySetFile) []byte {
			return []byte(strings.Replace(string(mustJSON(t, f)), `"version"`, `"x":1,"version"`, 1))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c keySetFile
			_ = json.Unmarshal(data, &c)
			path := filepath.Join(t.TempDir(), "k.json")
			if err := os.WriteFile(path, tt.edit(&c), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenKeySet(path, 0, 0)
			if !errors.Is(err, ErrKeysUnavailable) {
				t.Fatalf("OpenKeySet = %v, want ErrKeysUnavailable", err)
			}
			if strings.Contains(err.Error(), secret[:16]) || strings.Contains(err.Error(), secret[len(secret)-16:]) {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWithDefaults(t *testing.T) {
	c := WithDefaults(testCfg)
	if c.Issuer != "warden" || c.KeysPath != DefaultKeysFile || c.TTL.D() != 5*time.Minute || c.MaxTTL.D() != time.Hour || c.RotateEvery.D() != 24*time.Hour {
		t.Fatalf("WithDefaults = %+v", c)
	}
	c.TTL = c.MaxTTL * 2
	if WithDefaults(c).TTL != c.MaxTTL {
		t.Fatal("ttl above max_ttl not lowered")
	}
}

func TestRotateInTheSameSecond(t *testing.T) {
	k := newKit(t) // first key made at t0
	first := k.activeKey(t, t0).info
	next, err := k.keys.Rotate(t0.Add(300 * time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got := k.activeKey(t, t0.Add(400*time.Millisecond)).info.KID; got != next.KID {
		t.Fatalf("active key %s, want the new %s", got, next.KID)
	}
	keys := k.keys.Keys()
	if len(keys) != 2 || keys[0].KID != first.KID || keys[1].KID != next.KID {
		t.Fatalf("keys not oldest first: %+v", keys)
	}
	// Reopened from the file, the order and the active key are the same.
	ks, err := OpenKeySet(k.keys.Path(), time.Hour, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := ks.current().active(t0.Add(time.Second)); got == nil || got.info.KID != next.KID {
		t.Fatal("reopened key set signs with the wrong key")
	}
}
