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
		{"ttl over the maximum", "svc", "", nil, MaxKeyTTL + time.Second},
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
	if _, rec, err := ks.Create("svc", "", nil, MaxKeyTTL); err != nil || rec.ExpiresAt.Sub(rec.CreatedAt) != MaxKeyTTL {
		t.Fatalf("Create with the maximum ttl = %+v, %v", rec, err)
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
		{"bad rotated_from", `{"version":1,"keys":[` + strings.Replace(goodRec, `"kind"`, `"rotated_from":"nope","kind"`, 1) + `]}`, "keys[0]: rotated_from"},
		{"rotated_to itself", `{"version":1,"keys":[` + strings.Replace(goodRec, `"kind"`, `"rotated_to":"0123456789abcdef01234567","kind"`, 1) + `]}`, "keys[0]: rotated_to"},
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
	t.Run("optional fields", func(t *testing.T) {
		path := tempStorePath(t)
		rec := strings.Replace(goodRec, `"kind"`, `"last_used":"2030-02-01T00:00:00Z","rotated_from":"89abcdef0123456789abcdef","rotated_to":"fedcba9876543210fedcba98","kind"`, 1)
		if err := os.WriteFile(path, []byte(`{"version":1,"keys":[`+rec+`]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		recs := openStore(t, path).List()
		if len(recs) != 1 || !recs[0].LastUsed.Equal(time.Date(2030, 2, 1, 0, 0, 0, 0, time.UTC)) ||
			recs[0].RotatedFrom != "89abcdef0123456789abcdef" || recs[0].RotatedTo != "fedcba9876543210fedcba98" {
			t.Fatalf("records = %+v", recs)
		}
	})
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
	// A moving clock: every call may advance the key's last-used time, the
	// worst case for the hot path's bookkeeping.
	b.Run("valid-parallel-clock", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := ks.Authenticate(key, time.Now()); err != nil {
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

const day = 24 * time.Hour

// fileRecords reads the store file with a fresh KeyStore, as another process
// (or a restart) would see it, indexed by id.
func fileRecords(t *testing.T, path string) map[string]KeyRecord {
	t.Helper()
	out := map[string]KeyRecord{}
	for _, r := range openStore(t, path).List() {
		out[r.ID] = r
	}
	return out
}

func TestRotate(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name       string
		ttl        time.Duration // the old key's lifetime; 0: never expires
		rotateAt   time.Duration // since t0
		overlap    time.Duration
		wantOldEnd time.Duration // the old key's ExpiresAt after the rotation, since t0
		wantNewTTL time.Duration // 0: never expires
	}{
		{"overlap 24h", 90 * day, 10 * day, day, 11 * day, 90 * day},
		{"overlap 0 stops the old key at once", 90 * day, 10 * day, 0, 10 * day, 90 * day},
		{"overlap past the old expiry keeps the expiry", 90 * day, 89 * day, 7 * day, 90 * day, 90 * day},
		{"never-expiring key: new one never expires, old one ends after the overlap", 0, 10 * day, time.Hour, 10*day + time.Hour, 0},
		{"sub-second rotation time is truncated", time.Hour, 30*time.Minute + 500*time.Millisecond, time.Minute, 31 * time.Minute, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempStorePath(t)
			ks := openStore(t, path)
			ks.now = func() time.Time { return t0 }
			oldKey, old := mustCreate(t, ks, "agent-planner", gateway.KindAgent, []string{"chat", "models:read"}, tt.ttl)
			at := t0.Add(tt.rotateAt)

			newKey, rec, err := ks.Rotate(old.ID, tt.overlap, at)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			created := at.Truncate(time.Second)
			if rec.ID == old.ID || rec.Hash == old.Hash || rec.Subject != old.Subject || rec.Kind != old.Kind ||
				!slices.Equal(rec.Scopes, old.Scopes) || rec.RotatedFrom != old.ID || rec.RotatedTo != "" ||
				!rec.CreatedAt.Equal(created) || !rec.RevokedAt.IsZero() || !rec.LastUsed.IsZero() {
				t.Fatalf("new record = %+v (old %+v)", rec, old)
			}
			if tt.wantNewTTL == 0 && !rec.ExpiresAt.IsZero() || tt.wantNewTTL != 0 && !rec.ExpiresAt.Equal(created.Add(tt.wantNewTTL)) {
				t.Fatalf("new ExpiresAt = %v, want a lifetime of %s from %v", rec.ExpiresAt, tt.wantNewTTL, created)
			}
			if kid, _, err := ParseAPIKey(newKey); err != nil || kid != rec.ID {
				t.Fatalf("new key does not match its record: %v", err)
			}

			// Both records changed durably, in the file.
			oldEnd := t0.Add(tt.wantOldEnd)
			recs := fileRecords(t, path)
			if o := recs[old.ID]; o.RotatedTo != rec.ID || !o.ExpiresAt.Equal(oldEnd) || !o.RevokedAt.IsZero() {
				t.Fatalf("old record after rotation = %+v, want rotated_to %s and expiry %v", o, rec.ID, oldEnd)
			}
			if n := recs[rec.ID]; n.RotatedFrom != old.ID || n.Hash != rec.Hash {
				t.Fatalf("new record in the file = %+v", n)
			}

			// During the overlap both keys work.
			if oldEnd.After(at) {
				during := oldEnd.Add(-time.Nanosecond)
				for _, key := range []string{oldKey, newKey} {
					if _, err := ks.Authenticate(key, during); err != nil {
						t.Fatalf("during the overlap: %v", err)
					}
				}
				if err := ks.Check(old.ID, during); err != nil {
					t.Fatalf("Check(old) during the overlap: %v", err)
				}
			}
			// After it the old key is refused and long-lived exchanges on it end.
			if _, err := ks.Authenticate(oldKey, oldEnd); !errors.Is(err, ErrExpiredKey) {
				t.Fatalf("old key after the overlap: %v, want ErrExpiredKey", err)
			}
			if err := ks.Check(old.ID, oldEnd); !errors.Is(err, ErrExpiredKey) {
				t.Fatalf("Check(old) after the overlap: %v, want ErrExpiredKey", err)
			}
			p, err := ks.Authenticate(newKey, oldEnd)
			if err != nil {
				t.Fatalf("new key after the overlap: %v", err)
			}
			if p.ID != old.Subject || p.Kind != old.Kind || !slices.Equal(p.Scopes, old.Scopes) || p.CredentialID != rec.ID {
				t.Fatalf("new key's principal = %+v", p)
			}
			// The successor can be rotated in turn and keeps the lifetime.
			_, next, err := ks.Rotate(rec.ID, 0, oldEnd)
			if err != nil {
				t.Fatalf("rotating the successor: %v", err)
			}
			if next.RotatedFrom != rec.ID || tt.wantNewTTL != 0 && next.ExpiresAt.Sub(next.CreatedAt) != tt.wantNewTTL {
				t.Fatalf("second rotation = %+v", next)
			}
		})
	}
}

func TestRotateRefused(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	path := tempStorePath(t)
	ks := openStore(t, path)
	ks.now = func() time.Time { return t0 }
	_, active := mustCreate(t, ks, "svc-active", "", nil, 90*day)
	_, revoked := mustCreate(t, ks, "svc-revoked", "", nil, 90*day)
	_, short := mustCreate(t, ks, "svc-short", "", nil, time.Hour)
	_, rotated := mustCreate(t, ks, "svc-rotated", "", nil, 90*day)
	if err := ks.Revoke(revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ks.Rotate(rotated.ID, day, t0); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Hour)
	tests := []struct {
		name    string
		id      string
		overlap time.Duration
		wantErr error
	}{
		{"unknown id", "000000000000000000000000", day, ErrUnknownKey},
		{"malformed id", "not-an-id", day, ErrMalformedKey},
		{"revoked", revoked.ID, day, ErrRevokedKey},
		{"expired", short.ID, day, ErrExpiredKey},
		{"already rotated, even during its overlap", rotated.ID, day, ErrAlreadyRotated},
		{"negative overlap", active.ID, -time.Second, ErrInvalidArgument},
		{"overlap over the maximum", active.ID, MaxKeyTTL + time.Second, ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, rec, err := ks.Rotate(tt.id, tt.overlap, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Rotate = %v, want %v", err, tt.wantErr)
			}
			if key != "" || rec.ID != "" {
				t.Fatal("a key was returned with the error")
			}
		})
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused rotation changed the store")
	}
}

// TestRotateConcurrent rotates one key from two processes at once: exactly
// one rotation wins, and the key has exactly one successor.
func TestRotateConcurrent(t *testing.T) {
	path := tempStorePath(t)
	a, b := openStore(t, path), openStore(t, path)
	_, rec := mustCreate(t, a, "svc", "", nil, 90*day)
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, ks := range []*KeyStore{a, b} {
		wg.Go(func() { _, _, errs[i] = ks.Rotate(rec.ID, time.Hour, time.Now()) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("want exactly one successful rotation, got %v and %v", errs[0], errs[1])
	}
	if err := cmpOr(errs[0], errs[1]); !errors.Is(err, ErrAlreadyRotated) {
		t.Fatalf("losing rotation: %v, want ErrAlreadyRotated", err)
	}
	if n := len(fileRecords(t, path)); n != 2 {
		t.Fatalf("store has %d keys, want 2", n)
	}
}

func cmpOr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func TestLastUsed(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	path := tempStorePath(t)
	ks := openStore(t, path)
	ks.now = func() time.Time { return t0 }
	keyA, a := mustCreate(t, ks, "svc-a", "", nil, 90*day)
	keyB, b := mustCreate(t, ks, "svc-b", "", nil, 90*day)
	lastUsed := func(ks *KeyStore, id string) time.Time {
		t.Helper()
		for _, r := range ks.List() {
			if r.ID == id {
				return r.LastUsed
			}
		}
		t.Fatalf("key %s not listed", id)
		return time.Time{}
	}
	auth := func(ks *KeyStore, key string, at time.Time) {
		t.Helper()
		if _, err := ks.Authenticate(key, at); err != nil {
			t.Fatalf("Authenticate: %v", err)
		}
	}
	fileBefore := func() []byte {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}

	if !lastUsed(ks, a.ID).IsZero() {
		t.Fatal("a new key has a last-used time")
	}
	written := fileBefore()

	// Authenticate records the time in memory, to the second, never backwards,
	// only on success, and writes nothing.
	t1 := t0.Add(time.Hour + 700*time.Millisecond)
	auth(ks, keyA, t1)
	auth(ks, keyA, t0.Add(time.Minute))
	if _, err := ks.Authenticate(otherSecret(keyB), t1); err == nil {
		t.Fatal("wrong secret accepted")
	}
	if got := lastUsed(ks, a.ID); !got.Equal(t1.Truncate(time.Second)) {
		t.Fatalf("last used = %v, want %v", got, t1.Truncate(time.Second))
	}
	if !lastUsed(ks, b.ID).IsZero() {
		t.Fatal("a failed authentication counted as a use")
	}
	if !bytes.Equal(fileBefore(), written) {
		t.Fatal("Authenticate wrote the store file")
	}
	if got := fileRecords(t, path)[a.ID].LastUsed; !got.IsZero() {
		t.Fatalf("last used reached the file before a flush: %v", got)
	}

	// A flush persists it; a flush with nothing new does not write.
	if err := ks.FlushLastUsed(); err != nil {
		t.Fatalf("FlushLastUsed: %v", err)
	}
	recs := fileRecords(t, path)
	if got := recs[a.ID].LastUsed; !got.Equal(t1.Truncate(time.Second)) {
		t.Fatalf("persisted last used = %v", got)
	}
	if !recs[b.ID].LastUsed.IsZero() {
		t.Fatal("an unused key got a last-used time")
	}
	fi1, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	auth(ks, keyA, t1) // the same second: nothing new
	if err := ks.FlushLastUsed(); err != nil {
		t.Fatal(err)
	}
	if fi2, err := os.Stat(path); err != nil || !os.SameFile(fi1, fi2) {
		t.Fatalf("a flush with nothing new rewrote the file (%v)", err)
	}

	// Another server on the same file: the later time wins in both directions.
	other := openStore(t, path)
	t3 := t0.Add(3 * time.Hour)
	auth(other, keyA, t3)
	if err := other.FlushLastUsed(); err != nil {
		t.Fatal(err)
	}
	auth(ks, keyA, t0.Add(2*time.Hour))
	if err := ks.FlushLastUsed(); err != nil {
		t.Fatal(err)
	}
	if got := fileRecords(t, path)[a.ID].LastUsed; !got.Equal(t3) {
		t.Fatalf("a flush moved last used back to %v, want %v", got, t3)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(ks, a.ID); !got.Equal(t3) {
		t.Fatalf("in memory after a reload: %v, want %v", got, t3)
	}

	// Uses survive a reload that happens before the flush.
	t4 := t0.Add(4 * time.Hour)
	auth(ks, keyB, t4)
	mustCreate(t, other, "svc-c", "", nil, day)
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := lastUsed(ks, b.ID); !got.Equal(t4) {
		t.Fatalf("after a reload: %v, want %v", got, t4)
	}

	// ... and the error state: a corrupt file is neither read nor
	// overwritten, and the time is written once the file is repaired.
	good := fileBefore()
	corrupt := []byte(`{"version":1,"keys":[`)
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err == nil {
		t.Fatal("Reload of a corrupt file succeeded")
	}
	if err := ks.FlushLastUsed(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("FlushLastUsed on a corrupt file = %v, want an error naming it", err)
	}
	if !bytes.Equal(fileBefore(), corrupt) {
		t.Fatal("a flush overwrote a corrupt store")
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := ks.FlushLastUsed(); err != nil {
		t.Fatal(err)
	}
	if got := fileRecords(t, path)[b.ID].LastUsed; !got.Equal(t4) {
		t.Fatalf("after repair the flush wrote %v, want %v", got, t4)
	}
}

// TestFlushKeepsOtherWrites: between a server's Authenticate and its flush,
// the CLI (another KeyStore on the same file) changes the store; the flush,
// made from the server's stale view, must not undo any of it.
func TestFlushKeepsOtherWrites(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	used := t0.Add(time.Hour)
	tests := []struct {
		name    string
		cli     func(t *testing.T, cli *KeyStore, id string)
		check   func(t *testing.T, r KeyRecord, present bool)
		wantErr error // the server's Authenticate after the flush
	}{
		{
			name: "revoke",
			cli: func(t *testing.T, cli *KeyStore, id string) {
				if err := cli.Revoke(id); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r KeyRecord, present bool) {
				if !present || r.RevokedAt.IsZero() || !r.LastUsed.Equal(used) {
					t.Fatalf("record = %+v (present %v), want revoked with last_used %v", r, present, used)
				}
			},
			wantErr: ErrRevokedKey,
		},
		{
			name: "rotate with overlap 0",
			cli: func(t *testing.T, cli *KeyStore, id string) {
				if _, _, err := cli.Rotate(id, 0, used); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, r KeyRecord, present bool) {
				if !present || r.RotatedTo == "" || !r.ExpiresAt.Equal(used) || !r.LastUsed.Equal(used) {
					t.Fatalf("record = %+v (present %v), want rotated, expired at %v", r, present, used)
				}
			},
			wantErr: ErrExpiredKey,
		},
		{
			name: "revoke and prune",
			cli: func(t *testing.T, cli *KeyStore, id string) {
				if err := cli.Revoke(id); err != nil {
					t.Fatal(err)
				}
				if n, err := cli.Prune(0, used.Add(time.Hour)); err != nil || n != 1 {
					t.Fatalf("Prune = %d, %v", n, err)
				}
			},
			check: func(t *testing.T, r KeyRecord, present bool) {
				if present {
					t.Fatalf("the flush resurrected a pruned key: %+v", r)
				}
			},
			wantErr: ErrUnknownKey,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempStorePath(t)
			server, cli := openStore(t, path), openStore(t, path)
			cli.now = func() time.Time { return t0 }
			key, rec := mustCreate(t, cli, "svc", "", nil, 90*day)
			_, bystander := mustCreate(t, cli, "svc-other", "", nil, 90*day)
			if err := server.Reload(); err != nil {
				t.Fatal(err)
			}
			if _, err := server.Authenticate(key, used); err != nil {
				t.Fatal(err)
			}
			tt.cli(t, cli, rec.ID)
			if err := server.FlushLastUsed(); err != nil { // no reload: the server's view is stale
				t.Fatalf("FlushLastUsed: %v", err)
			}
			recs := fileRecords(t, path)
			r, ok := recs[rec.ID]
			tt.check(t, r, ok)
			if _, ok := recs[bystander.ID]; !ok {
				t.Fatal("the flush lost another key")
			}
			if _, err := server.Authenticate(key, used.Add(time.Second)); !errors.Is(err, tt.wantErr) {
				t.Fatalf("server after the flush: %v, want %v", err, tt.wantErr)
			}
		})
	}

	t.Run("deleted store is not recreated", func(t *testing.T) {
		path := tempStorePath(t)
		server := openStore(t, path)
		key, _ := mustCreate(t, server, "svc", "", nil, day)
		if _, err := server.Authenticate(key, time.Now()); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := server.FlushLastUsed(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the flush recreated the store: %v", err)
		}
	})
}

// TestFlushRacingRevoke runs a server that authenticates and flushes as fast
// as it can against a CLI that revokes keys one by one: every revocation
// must survive, whatever the interleaving.
func TestFlushRacingRevoke(t *testing.T) {
	path := tempStorePath(t)
	cli := openStore(t, path)
	const n = 12
	keys := make([]string, n)
	ids := make([]string, n)
	for i := range n {
		var rec KeyRecord
		keys[i], rec = mustCreate(t, cli, fmt.Sprintf("svc-%d", i), "", nil, day)
		ids[i] = rec.ID
	}
	server := openStore(t, path)
	base := time.Now()
	for _, key := range keys {
		if _, err := server.Authenticate(key, base); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			_ = server.Reload()
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Go(func() {
		for s := int64(1); ctx.Err() == nil; s++ {
			for _, key := range keys {
				_, _ = server.Authenticate(key, base.Add(time.Duration(s)*time.Second)) // revoked ones fail, fine
			}
			if err := server.FlushLastUsed(); err != nil {
				t.Errorf("FlushLastUsed: %v", err)
				return
			}
			// Without a pause this loop re-takes the file lock at once and
			// starves the revoking side of the race (flock is not fair).
			time.Sleep(500 * time.Microsecond)
		}
	})
	for _, id := range ids {
		if err := cli.Revoke(id); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	if err := server.FlushLastUsed(); err != nil {
		t.Fatal(err)
	}
	recs := fileRecords(t, path)
	for _, id := range ids {
		if r := recs[id]; r.RevokedAt.IsZero() {
			t.Fatalf("a flush undid the revocation of %s: %+v", id, r)
		}
	}
	for _, id := range ids {
		if recs[id].LastUsed.IsZero() {
			t.Fatalf("no last-used time was persisted for %s", id)
		}
	}
}

func TestRunLastUsedFlusher(t *testing.T) {
	path := tempStorePath(t)
	ks := openStore(t, path)
	key, rec := mustCreate(t, ks, "svc", "", nil, day)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ks.RunLastUsedFlusher(ctx, 10*time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			<-done
			stopped = true
		}
	}
	defer stop()

	at := time.Now().UTC().Truncate(time.Second)
	if _, err := ks.Authenticate(key, at); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the flusher to write last_used", func() bool {
		return fileRecords(t, path)[rec.ID].LastUsed.Equal(at)
	})

	// A failing flush is logged once, and its recovery too.
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Authenticate(key, at.Add(time.Minute)); err != nil { // the snapshot is still good
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the failure to be logged", func() bool { return strings.Contains(logs.String(), "cannot write") })
	time.Sleep(50 * time.Millisecond)
	if c := strings.Count(logs.String(), "cannot write"); c != 1 {
		t.Fatalf("the same failure was logged %d times:\n%s", c, logs.String())
	}
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the recovery", func() bool {
		return strings.Contains(logs.String(), "written again")
	})
	if got := openStoreOrZero(path)[rec.ID]; !got.Equal(at.Add(time.Minute)) {
		t.Fatalf("last used after recovery = %v", got)
	}
	stop()
	_, secret, _ := ParseAPIKey(key)
	if strings.Contains(logs.String(), secret) {
		t.Fatal("logs contain the secret")
	}
}

// openStoreOrZero returns the last-used times in the file at path.
func openStoreOrZero(path string) map[string]time.Time {
	out := map[string]time.Time{}
	if ks, err := OpenKeyStore(path); err == nil {
		for _, r := range ks.List() {
			out[r.ID] = r.LastUsed
		}
	}
	return out
}

func TestPrune(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(100 * day)
	type key struct {
		name      string
		ttl       time.Duration
		revokeAt  time.Duration // since t0; 0: not revoked
		deadSince time.Duration // since t0, for the table below; -1: active
	}
	keys := []key{
		{"active", 200 * day, 0, -1},
		{"never expires", 0, 0, -1},
		{"expired 40d ago", 60 * day, 0, 60 * day},
		{"expired 10d ago", 90 * day, 0, 90 * day},
		{"revoked 40d ago", 0, 60 * day, 60 * day},
		{"revoked 10d ago", 200 * day, 90 * day, 90 * day},
		{"revoked 10d ago, expired 40d ago", 60 * day, 90 * day, 60 * day},
		{"revoked in the future (clock skew)", 0, 150 * day, 150 * day},
	}
	tests := []struct {
		name      string
		olderThan time.Duration
		wantGone  []string
	}{
		{"30 days", 30 * day, []string{"expired 40d ago", "revoked 40d ago", "revoked 10d ago, expired 40d ago"}},
		{"0 prunes every dead key", 0, []string{"expired 40d ago", "expired 10d ago", "revoked 40d ago", "revoked 10d ago", "revoked 10d ago, expired 40d ago"}},
		{"exactly 40 days is not longer than 40 days", 40 * day, nil},
		{"a year prunes nothing", 365 * day, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempStorePath(t)
			ks := openStore(t, path)
			ids := map[string]string{}
			for _, k := range keys {
				ks.now = func() time.Time { return t0 }
				_, rec := mustCreate(t, ks, "svc", "", nil, k.ttl)
				ids[k.name] = rec.ID
				if k.revokeAt != 0 {
					ks.now = func() time.Time { return t0.Add(k.revokeAt) }
					if err := ks.Revoke(rec.ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			before, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := ks.Prune(tt.olderThan, now)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			if n != len(tt.wantGone) {
				t.Fatalf("Prune = %d, want %d", n, len(tt.wantGone))
			}
			recs := fileRecords(t, path)
			for _, k := range keys {
				_, present := recs[ids[k.name]]
				if gone := slices.Contains(tt.wantGone, k.name); present == gone {
					t.Errorf("%s: present = %v", k.name, present)
				}
			}
			if after, err := os.Stat(path); n == 0 && (err != nil || !os.SameFile(before, after)) {
				t.Fatalf("a prune of nothing rewrote the file (%v)", err)
			}
		})
	}
	t.Run("negative age", func(t *testing.T) {
		ks := openStore(t, tempStorePath(t))
		if _, err := ks.Prune(-time.Second, now); !errors.Is(err, ErrInvalidArgument) {
			t.Fatalf("Prune(-1s) = %v", err)
		}
	})
	t.Run("corrupt store", func(t *testing.T) {
		path := tempStorePath(t)
		if err := os.WriteFile(path, []byte(`{"version":1,"keys":[]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		ks := openStore(t, path)
		if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Prune(0, now); err == nil {
			t.Fatal("Prune of a corrupt store succeeded")
		}
		if data, _ := os.ReadFile(path); string(data) != "garbage" {
			t.Fatal("Prune overwrote a corrupt store")
		}
	})
}
