package revoke

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func openAt(t *testing.T, path string, now time.Time) *List {
	t.Helper()
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.now = func() time.Time { return now }
	return l
}

func TestRevokeAndCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "revocations.json")
	l := openAt(t, path, t0)
	if err := l.Healthy(); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(Entry{Kind: KindToken, Value: "jti-1", Until: t0.Add(5 * time.Minute), Reason: "leaked"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Revoke(Entry{Kind: KindSubject, Value: "alice"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		jti      string
		subjects []string
		iat, now time.Time
		revoked  bool
	}{
		{"revoked jti", "jti-1", []string{"bob"}, t0.Add(-time.Minute), t0, true},
		{"other jti", "jti-2", []string{"bob"}, t0.Add(-time.Minute), t0, false},
		{"revoked jti after its until", "jti-1", nil, t0, t0.Add(5 * time.Minute), false},
		{"subject, token issued before", "jti-3", []string{"alice"}, t0.Add(-time.Minute), t0.Add(time.Second), true},
		{"subject, token issued in the same second", "jti-3", []string{"alice"}, t0, t0.Add(time.Second), true},
		{"subject, token issued after", "jti-3", []string{"alice"}, t0.Add(time.Second), t0.Add(2 * time.Second), false},
		{"subject as actor", "jti-3", []string{"bob", "alice"}, t0.Add(-time.Minute), t0, true},
		{"subject after retention", "jti-3", []string{"alice"}, t0.Add(-time.Minute), t0.Add(DefaultRetention), false},
		{"empty subject skipped", "jti-3", []string{""}, t0, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Check(tt.jti, tt.subjects, tt.iat, tt.now)
			if got := err != nil; got != tt.revoked {
				t.Fatalf("Check = %v, want revoked=%v", err, tt.revoked)
			}
			if err != nil && (!errors.Is(err, ErrRevoked) || errors.Is(err, ErrUnavailable)) {
				t.Fatalf("Check error %v must wrap ErrRevoked only", err)
			}
		})
	}
	if !l.IsRevoked(KindToken, "jti-1", t0) || l.IsRevoked(KindToken, "jti-2", t0) || !l.IsRevoked(KindSubject, "alice", t0) {
		t.Fatal("IsRevoked disagrees with the entries")
	}
	if !l.RevokedSubject("alice", t0.Add(-time.Hour), t0) || l.RevokedSubject("alice", t0.Add(time.Hour), t0.Add(2*time.Hour)) {
		t.Fatal("RevokedSubject must end older tokens only")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	if es := l.Entries(); len(es) != 2 || es[1].Reason != "leaked" || es[0].Kind != KindSubject {
		t.Fatalf("Entries = %+v", es)
	}
}

func TestRevokeInvalid(t *testing.T) {
	l := openAt(t, filepath.Join(t.TempDir(), "r.json"), t0)
	tests := []struct {
		name string
		e    Entry
	}{
		{"no kind", Entry{Value: "x"}},
		{"bad kind", Entry{Kind: "key", Value: "x"}},
		{"no value", Entry{Kind: KindToken}},
		{"space in value", Entry{Kind: KindSubject, Value: "a b"}},
		{"control in value", Entry{Kind: KindSubject, Value: "a\x00"}},
		{"long value", Entry{Kind: KindSubject, Value: strings.Repeat("a", 257)}},
		{"control in reason", Entry{Kind: KindSubject, Value: "a", Reason: "x\ny"}},
		{"until in the past", Entry{Kind: KindToken, Value: "a", Until: t0.Add(-time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Revoke(tt.e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Revoke = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := os.Stat(l.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("invalid revocations must not create the file: %v", err)
	}
}

func TestMergeAndPrune(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	l := openAt(t, path, t0)
	must := func(e Entry) {
		t.Helper()
		if err := l.Revoke(e); err != nil {
			t.Fatal(err)
		}
	}
	must(Entry{Kind: KindToken, Value: "short", Until: t0.Add(time.Minute)})
	must(Entry{Kind: KindToken, Value: "t", Until: t0.Add(time.Hour)})
	must(Entry{Kind: KindToken, Value: "t", Until: t0.Add(time.Minute)}) // earlier until: keeps the later
	must(Entry{Kind: KindSubject, Value: "s", Until: t0.Add(time.Hour)})

	later := t0.Add(2 * time.Minute)
	l.now = func() time.Time { return later }
	must(Entry{Kind: KindSubject, Value: "s"}) // a newer subject revocation ends more tokens

	es := l.Entries()
	if len(es) != 2 {
		t.Fatalf("after prune: %+v", es)
	}
	for _, e := range es {
		switch e.Value {
		case "t":
			if !e.Until.Equal(t0.Add(time.Hour)) {
				t.Fatalf("token until = %v", e.Until)
			}
		case "s":
			if !e.At.Equal(later) || !e.Until.Equal(later.Add(DefaultRetention)) {
				t.Fatalf("subject merged = %+v", e)
			}
		default:
			t.Fatalf("unexpected entry %+v", e)
		}
	}
	if !l.RevokedSubject("s", t0.Add(time.Minute), later) {
		t.Fatal("the newer subject revocation must end a token issued between the two")
	}
}

func TestDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	l := openAt(t, path, t0)
	if err := l.Revoke(Entry{Kind: KindToken, Value: "jti-9", Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if !l2.IsRevoked(KindToken, "jti-9", t0) {
		t.Fatal("revocation lost on reopen")
	}
	if err := l2.Check("jti-9", nil, t0, t0); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Check after reopen = %v", err)
	}
}

func TestWatchPicksUpOtherWriter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	reader, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); reader.Watch(ctx, 10*time.Millisecond, discard()) }()
	defer func() { cancel(); wg.Wait() }()

	writer, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := writer.Revoke(Entry{Kind: KindToken, Value: "jti-w", Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !reader.IsRevoked(KindToken, "jti-w", time.Now()) {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the revocation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCorruptFailsClosed(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content string }{
		{"empty", ""},
		{"not json", "{"},
		{"wrong version", `{"version":2,"entries":[]}`},
		{"unknown field", `{"version":1,"entries":[],"x":1}`},
		{"bad entry", `{"version":1,"entries":[{"kind":"nope","value":"a","until":"2030-01-01T00:00:00Z","at":"2029-01-01T00:00:00Z"}]}`},
		{"trailing", `{"version":1,"entries":[]} {}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path); err == nil || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Open = %v, want an error wrapping ErrUnavailable", err)
			}
		})
	}

	// A list that goes bad while serving enters the error state.
	path := filepath.Join(dir, "live.json")
	l := openAt(t, path, t0)
	if err := l.Revoke(Entry{Kind: KindToken, Value: "a", Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Reload = %v", err)
	}
	if err := l.Check("b", []string{"x"}, t0, t0); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrRevoked) {
		t.Fatalf("Check in error state = %v, want ErrUnavailable", err)
	}
	if !l.IsRevoked(KindToken, "b", t0) || !l.RevokedSubject("x", t0, t0) {
		t.Fatal("bool checks must fail closed")
	}
	if l.Entries() != nil {
		t.Fatal("Entries in the error state must be nil")
	}
	if err := l.Revoke(Entry{Kind: KindToken, Value: "c", Until: t0.Add(time.Hour)}); err == nil {
		t.Fatal("Revoke must not overwrite a corrupt file")
	}
	if data, _ := os.ReadFile(path); string(data) != "garbage" {
		t.Fatal("corrupt file was overwritten")
	}
	// Repaired: the list recovers.
	if err := os.WriteFile(path, []byte(`{"version":1,"entries":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); err != nil {
		t.Fatalf("Reload after repair = %v", err)
	}
	if err := l.Check("b", nil, t0, t0); err != nil {
		t.Fatal(err)
	}
}

func TestZeroListFailsClosed(t *testing.T) {
	var l *List
	if err := l.Check("a", nil, t0, t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("nil list Check = %v", err)
	}
	var z List
	if !z.IsRevoked(KindToken, "a", t0) || z.Healthy() == nil {
		t.Fatal("unopened list must fail closed")
	}
	if err := z.Revoke(Entry{Kind: KindToken, Value: "a"}); err == nil {
		t.Fatal("unopened list must refuse writes")
	}
}

func TestConcurrentWritersLoseNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := Open(path) // separate instances: separate lock descriptors
			if err != nil {
				errs <- err
				return
			}
			errs <- l.Revoke(Entry{Kind: KindToken, Value: "jti-" + string(rune('a'+i)), Until: time.Now().Add(time.Hour)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Entries()); got != n {
		t.Fatalf("%d entries, want %d", got, n)
	}
}

func BenchmarkCheck(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "r.json"))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for i := range 100 {
		if err := l.Revoke(Entry{Kind: KindToken, Value: "jti-" + string(rune(0x4e00+i)), Until: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	subjects := []string{"agent-1", "alice"}
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Check("jti-x", subjects, now, now); err != nil {
			b.Fatal(err)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestVanishedFileFailsClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	l := openAt(t, path, t0)
	if err := l.Revoke(Entry{Kind: KindToken, Value: "jti-1", Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := l.Reload(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Reload after the file vanished = %v, want ErrUnavailable", err)
	}
	if err := l.Check("jti-2", nil, t0, t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Check = %v: a vanished list must not un-revoke everything", err)
	}
	if err := l.Revoke(Entry{Kind: KindToken, Value: "jti-3", Until: t0.Add(time.Hour)}); err == nil {
		t.Fatal("Revoke recreated a vanished list")
	}
	// A fresh Open (a restart) starts an empty list.
	l2, err := Open(path)
	if err != nil || l2.Healthy() != nil {
		t.Fatalf("Open after the file vanished: %v", err)
	}
}
