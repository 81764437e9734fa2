package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

func tempStorePath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "keys.json")
}

func openStore(t testing.TB, path string) *KeyStore {
	t.Helper()
	ks, err := OpenKeyStore(path)
	if err != nil {
		t.Fatalf("OpenKeyStore: %v", err)
	}
	return ks
}

func mustCreate(t testing.TB, ks *KeyStore, subject, kind string, scopes []string, ttl time.Duration) (string, KeyRecord) {
	t.Helper()
	key, rec, err := ks.Create(subject, kind, scopes, ttl)
	if err != nil {
		t.Fatalf("Create(%q): %v", subject, err)
	}
	return key, rec
}

// otherSecret returns key with a different but well-formed secret.
func otherSecret(key string) string {
	last := key[KeyLen-1]
	repl := byte('A')
	if last == 'A' {
		repl = 'E'
	}
	return key[:KeyLen-1] + string(repl)
}

func TestCreateAuthenticate(t *testing.T) {
	path := tempStorePath(t)
	ks := openStore(t, path)
	created := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ks.now = func() time.Time { return created }

	svcKey, svc := mustCreate(t, ks, "svc-billing", "", []string{"chat", "models:read"}, time.Hour)
	agentKey, agent := mustCreate(t, ks, "agent:planner", gateway.KindAgent, nil, 0)
	revKey, rev := mustCreate(t, ks, "svc-old", gateway.KindService, nil, time.Hour)
	if err := ks.Revoke(rev.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if svc.Kind != gateway.KindService || !svc.CreatedAt.Equal(created) || !svc.ExpiresAt.Equal(created.Add(time.Hour)) {
		t.Fatalf("record = %+v", svc)
	}
	if !agent.ExpiresAt.IsZero() {
		t.Fatalf("ttl 0 must mean never expires, got %v", agent.ExpiresAt)
	}
	unknownKey := KeyPrefix + "ffffffffffffffffffffffff" + svcKey[len(KeyPrefix)+KeyIDLen:]

	now := created.Add(time.Minute)
	tests := []struct {
		name    string
		key     string
		now     time.Time
		wantErr error
		wantSub string
	}{
		{"service key", svcKey, now, nil, "svc-billing"},
		{"agent key never expires", agentKey, created.Add(100 * 365 * 24 * time.Hour), nil, "agent:planner"},
		{"just before expiry", svcKey, created.Add(time.Hour - time.Nanosecond), nil, "svc-billing"},
		{"at expiry", svcKey, created.Add(time.Hour), ErrExpiredKey, ""},
		{"after expiry", svcKey, created.Add(2 * time.Hour), ErrExpiredKey, ""},
		{"revoked", revKey, now, ErrRevokedKey, ""},
		{"revoked with wrong secret is a wrong secret", otherSecret(revKey), now, ErrWrongSecret, ""},
		{"wrong secret", otherSecret(svcKey), now, ErrWrongSecret, ""},
		{"unknown id", unknownKey, now, ErrUnknownKey, ""},
		{"malformed", "wk_nope", now, ErrMalformedKey, ""},
		{"empty", "", now, ErrMalformedKey, ""},
		{"whole key with Bearer prefix", "Bearer " + svcKey, now, ErrMalformedKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ks.Authenticate(tt.key, tt.now)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if _, secret, perr := ParseAPIKey(tt.key); perr == nil && strings.Contains(err.Error(), secret) {
					t.Fatalf("error %q contains the secret", err)
				}
				if p.ID != "" {
					t.Fatalf("principal %+v returned with error", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.ID != tt.wantSub || p.AuthMethod != "api_key" || !p.AuthTime.Equal(tt.now) {
				t.Fatalf("principal = %+v", p)
			}
		})
	}

	p, err := ks.Authenticate(svcKey, now)
	if err != nil {
		t.Fatal(err)
	}
	want := gateway.Principal{Kind: gateway.KindService, ID: "svc-billing", AuthMethod: "api_key",
		CredentialID: svc.ID, AuthTime: now, ExpiresAt: created.Add(time.Hour), Scopes: []string{"chat", "models:read"}}
	if fmt.Sprint(p) != fmt.Sprint(want) {
		t.Fatalf("principal = %+v\nwant        %+v", p, want)
	}
	// The principal's scopes are a copy: a later stage cannot edit the store.
	p.Scopes[0] = "admin"
	if p2, _ := ks.Authenticate(svcKey, now); p2.Scopes[0] != "chat" {
		t.Fatalf("scopes aliased the snapshot: %v", p2.Scopes)
	}
	if p, _ := ks.Authenticate(agentKey, now); p.Kind != gateway.KindAgent {
		t.Fatalf("agent kind = %q", p.Kind)
	}
}

func TestCreateValidation(t *testing.T) {
	ks := openStore(t, tempStorePath(t))
	tests := []struct {
		name    string
		subject string
		kind    string
		scopes  []string
		ttl     time.Duration
	}{
		{"empty subject", "", "", nil, 0},
		{"space in subject", "svc billing", "", nil, 0},
		{"newline in subject", "svc\nbilling", "", nil, 0},
		{"non-ASCII subject", "svc-bïlling", "", nil, 0},
		{"long subject", strings.Repeat("s", maxSubjectLen+1), "", nil, 0},
		{"user kind", "svc", gateway.KindUser, nil, 0},
		{"unknown kind", "svc", "robot", nil, 0},
		{"empty scope", "svc", "", []string{"a", ""}, 0},
		{"comma scope", "svc", "", []string{"a,b"}, 0},
		{"duplicate scope", "svc", "", []string{"a", "a"}, 0},
		{"too many scopes", "svc", "", make([]string, maxScopes+1), 0},
		{"negative ttl", "svc", "", nil, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, _, err := ks.Create(tt.subject, tt.kind, tt.scopes, tt.ttl)
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
			if key != "" {
				t.Fatal("key returned with an error")
			}
		})
	}
	if _, err := os.Stat(ks.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid creates wrote the store: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	ks := openStore(t, tempStorePath(t))
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ks.now = func() time.Time { return t0 }
	_, rec := mustCreate(t, ks, "svc", "", nil, 0)

	tests := []struct {
		name    string
		id      string
		wantErr error
	}{
		{"unknown id", "000000000000000000000000", ErrUnknownKey},
		{"malformed id", "not-an-id", ErrMalformedKey},
		{"whole key is not an id", testKey, ErrMalformedKey},
		{"known id", rec.ID, nil},
		{"again is a no-op", rec.ID, nil},
	}
	for i, tt := range tests {
		ks.now = func() time.Time { return t0.Add(time.Duration(i+1) * time.Hour) }
		err := ks.Revoke(tt.id)
		if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Fatalf("%s: Revoke(%q) = %v, want %v", tt.name, tt.id, err, tt.wantErr)
		}
	}
	recs := ks.List()
	if len(recs) != 1 || !recs[0].RevokedAt.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("revocation time must be the first one: %+v", recs)
	}
	if got := recs[0].Status(t0); got != StatusRevoked {
		t.Fatalf("Status = %q", got)
	}
}

func TestPersistence(t *testing.T) {
	path := tempStorePath(t)
	a := openStore(t, path)
	key1, rec1 := mustCreate(t, a, "svc-a", "", []string{"x"}, 24*time.Hour)
	key2, rec2 := mustCreate(t, a, "agent-b", gateway.KindAgent, nil, 0)
	if err := a.Revoke(rec2.ID); err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("store mode = %v, want 0600", fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{key1, key2} {
		_, secret, _ := ParseAPIKey(key)
		if bytes.Contains(data, []byte(secret)) {
			t.Fatal("store file contains a plaintext secret")
		}
	}
	var doc struct {
		Version int               `json:"version"`
		Keys    []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != 1 || len(doc.Keys) != 2 {
		t.Fatalf("file = %s (%v)", data, err)
	}

	b := openStore(t, path)
	got := b.List()
	if len(got) != 2 {
		t.Fatalf("reopened store has %d keys", len(got))
	}
	byID := map[string]KeyRecord{got[0].ID: got[0], got[1].ID: got[1]}
	if r := byID[rec1.ID]; r.Subject != "svc-a" || !slices.Equal(r.Scopes, []string{"x"}) || !r.ExpiresAt.Equal(rec1.ExpiresAt) || r.Hash != rec1.Hash {
		t.Fatalf("record 1 after reopen = %+v, want %+v", r, rec1)
	}
	if r := byID[rec2.ID]; r.Kind != gateway.KindAgent || r.RevokedAt.IsZero() {
		t.Fatalf("record 2 after reopen = %+v", r)
	}
	if _, err := b.Authenticate(key1, time.Now()); err != nil {
		t.Fatalf("key 1 after reopen: %v", err)
	}
	if _, err := b.Authenticate(key2, time.Now()); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("key 2 after reopen: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".keys.json.tmp-*")); len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestOpenMissingFile(t *testing.T) {
	path := tempStorePath(t)
	ks := openStore(t, path)
	if n := len(ks.List()); n != 0 {
		t.Fatalf("missing file gave %d keys", n)
	}
	if err := ks.Healthy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("opening must not create the file")
	}
	if _, err := OpenKeyStore(""); err == nil {
		t.Fatal("empty path accepted")
	}
	nested := filepath.Join(t.TempDir(), "no-such-dir", "keys.json")
	deep, err := OpenKeyStore(nested)
	if err != nil {
		t.Fatalf("missing directory is a missing file: %v", err)
	}
	key, _ := mustCreate(t, deep, "svc", "", nil, 0)
	if _, err := deep.Authenticate(key, time.Now()); err != nil {
		t.Fatalf("store in a new directory: %v", err)
	}
	if fi, err := os.Stat(filepath.Dir(nested)); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o700 {
		t.Fatalf("created directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestOpenCorrupt(t *testing.T) {
	goodRec := `{"id":"0123456789abcdef01234567","hash":"` + strings.Repeat("ab", 32) + `","subject":"svc","kind":"service","created_at":"2030-01-01T00:00:00Z"}`
	tests := []struct {
		name string
		data string
		want string // substring of the error after the path
	}{
		{"empty", "", "empty file"},
		{"whitespace", "  \n", "empty file"},
		{"garbage", "not json", "invalid character"},
		{"array", "[]", "cannot unmarshal"},
		{"truncated", `{"version":1,"keys":[` + goodRec, "unexpected EOF"},
		{"no version", `{"keys":[]}`, "unsupported version 0"},
		{"version 2", `{"version":2,"keys":[]}`, "unsupported version 2"},
		{"unknown field", `{"version":1,"keys":[],"extra":1}`, "unknown field"},
		{"unknown record field", `{"version":1,"keys":[` + strings.Replace(goodRec, `"kind"`, `"secret":"x","kind"`, 1) + `]}`, "unknown field"},
		{"trailing data", `{"version":1,"keys":[]} {}`, "trailing data"},
		{"bad id", `{"version":1,"keys":[` + strings.Replace(goodRec, "0123456789abcdef01234567", "XYZ", 1) + `]}`, "keys[0]: id"},
		{"bad hash", `{"version":1,"keys":[` + strings.Replace(goodRec, strings.Repeat("ab", 32), "abc", 1) + `]}`, "keys[0]: hash"},
		{"uppercase hash", `{"version":1,"keys":[` + strings.Replace(goodRec, strings.Repeat("ab", 32), strings.Repeat("AB", 32), 1) + `]}`, "keys[0]: hash"},
		{"no subject", `{"version":1,"keys":[` + strings.Replace(goodRec, `"svc"`, `""`, 1) + `]}`, "keys[0]: subject"},
		{"bad kind", `{"version":1,"keys":[` + strings.Replace(goodRec, `"service"`, `"user"`, 1) + `]}`, "keys[0]: kind"},
		{"no created_at", `{"version":1,"keys":[` + strings.Replace(goodRec, `"2030-01-01T00:00:00Z"`, `"0001-01-01T00:00:00Z"`, 1) + `]}`, "created_at"},
		{"duplicate id", `{"version":1,"keys":[` + goodRec + "," + goodRec + `]}`, "keys[1]: duplicate id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempStorePath(t)
			if err := os.WriteFile(path, []byte(tt.data), 0o600); err != nil {
				t.Fatal(err)
			}
			ks, err := OpenKeyStore(path)
			if err == nil {
				t.Fatalf("opened a corrupt store (%d keys)", len(ks.List()))
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %s and say %q", err, path, tt.want)
			}
		})
	}
	t.Run("valid record and default kind", func(t *testing.T) {
		path := tempStorePath(t)
		data := `{"version":1,"keys":[` + strings.Replace(goodRec, `"kind":"service",`, "", 1) + `]}`
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		ks := openStore(t, path)
		if recs := ks.List(); len(recs) != 1 || recs[0].Kind != gateway.KindService {
			t.Fatalf("records = %+v", recs)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if _, err := OpenKeyStore(t.TempDir()); err == nil {
			t.Fatal("opened a directory")
		}
	})
}

func TestConcurrentCreate(t *testing.T) {
	path := tempStorePath(t)
	a := openStore(t, path)
	b := openStore(t, path)
	const workers, each = 4, 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		keys []string
	)
	for w := range 2 * workers {
		ks := a
		if w%2 == 1 {
			ks = b // two instances on one file stand for two CLI processes
		}
		wg.Go(func() {
			for i := range each {
				key, _, err := ks.Create(fmt.Sprintf("svc-%d-%d", w, i), "", nil, time.Hour)
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				mu.Lock()
				keys = append(keys, key)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	c := openStore(t, path)
	if got, want := len(c.List()), 2*workers*each; got != want {
		t.Fatalf("store has %d keys, want %d: writes were lost", got, want)
	}
	for _, key := range keys {
		if _, err := c.Authenticate(key, time.Now()); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	// The last writer in each instance published what it wrote; a reload
	// brings both up to date.
	for _, ks := range []*KeyStore{a, b} {
		if err := ks.Reload(); err != nil {
			t.Fatal(err)
		}
		if got := len(ks.List()); got != 2*workers*each {
			t.Fatalf("instance sees %d keys after reload", got)
		}
	}
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWatch(t *testing.T) {
	path := tempStorePath(t)
	server := openStore(t, path)
	cli := openStore(t, path)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		server.Watch(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	defer func() { cancel(); <-done }()

	// A key created by another process starts working.
	key, rec := mustCreate(t, cli, "svc", "", nil, time.Hour)
	waitFor(t, 2*time.Second, "the new key to work", func() bool {
		_, err := server.Authenticate(key, time.Now())
		return err == nil
	})
	// ... and stops working when another process revokes it.
	if err := cli.Revoke(rec.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFor(t, 2*time.Second, "the revocation to take effect", func() bool {
		_, err := server.Authenticate(key, time.Now())
		return errors.Is(err, ErrRevokedKey)
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("propagation took %s, want well under 1s at a 10ms interval", d)
	}

	// Corruption by hand enters the error state, a fix leaves it.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the error state", func() bool { return server.Healthy() != nil })
	if _, err := server.Authenticate(key, time.Now()); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Authenticate in error state = %v", err)
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "recovery", func() bool { return server.Healthy() == nil })

	out := logs.String()
	for _, want := range []string{"reloaded", "unavailable", "recovered"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	_, secret, _ := ParseAPIKey(key)
	if strings.Contains(out, secret) {
		t.Fatal("logs contain the secret")
	}
}

func TestCorruptReloadFailsClosed(t *testing.T) {
	path := tempStorePath(t)
	ks := openStore(t, path)
	key, _ := mustCreate(t, ks, "svc", "", nil, 0)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	for _, bad := range []string{"", "garbage", `{"version":7,"keys":[]}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := ks.Reload(); !errors.Is(err, ErrStoreUnavailable) || !strings.Contains(err.Error(), path) {
			t.Fatalf("Reload of %q = %v, want ErrStoreUnavailable naming the path", bad, err)
		}
		if _, err := ks.Authenticate(key, time.Now()); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("Authenticate = %v, want ErrStoreUnavailable", err)
		}
		if err := ks.Healthy(); !errors.Is(err, ErrStoreUnavailable) {
			t.Fatalf("Healthy = %v", err)
		}
		if ks.List() != nil {
			t.Fatal("List in error state")
		}
		// A writer must refuse to overwrite what it cannot read.
		if _, _, err := ks.Create("svc2", "", nil, 0); err == nil {
			t.Fatal("Create overwrote a corrupt store")
		}
		if data, _ := os.ReadFile(path); string(data) != bad {
			t.Fatal("corrupt file was modified")
		}
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatalf("Reload after repair: %v", err)
	}
	if _, err := ks.Authenticate(key, time.Now()); err != nil {
		t.Fatalf("Authenticate after repair: %v", err)
	}

	// A deleted file is an empty store: every key stops working.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Authenticate(key, time.Now()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("after delete: %v", err)
	}
}

func TestZeroKeyStoreFailsClosed(t *testing.T) {
	var ks KeyStore
	if _, err := ks.Authenticate(testKey, time.Now()); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Authenticate = %v", err)
	}
	if _, _, err := ks.Create("svc", "", nil, 0); err == nil {
		t.Fatal("Create on a zero KeyStore")
	}
}

// benchStore writes a store of n keys without n fsyncs and returns it with
// one valid key.
func benchStore(b *testing.B, n int) (*KeyStore, string) {
	b.Helper()
	path := tempStorePath(b)
	recs := make([]KeyRecord, 0, n)
	var key string
	for i := range n {
		id, secret, err := newKey()
		if err != nil {
			b.Fatal(err)
		}
		sum := hashSecret(secret)
		recs = append(recs, KeyRecord{ID: id, Hash: fmt.Sprintf("%x", sum), Subject: fmt.Sprintf("svc-%d", i),
			Kind: gateway.KindService, Scopes: []string{"chat"}, CreatedAt: time.Now().UTC()})
		key = formatKey(id, secret)
	}
	data, err := encodeStore(recs)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	return openStore(b, path), key
}

func BenchmarkAuthenticate(b *testing.B) {
	ks, key := benchStore(b, 10000)
	now := time.Now()
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ks.Authenticate(key, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("valid-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ks.Authenticate(key, now); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("wrong-secret", func(b *testing.B) {
		bad := otherSecret(key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ks.Authenticate(bad, now); err == nil {
				b.Fatal("accepted")
			}
		}
	})
}
