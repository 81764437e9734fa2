package respond

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: t0} }
func openAt(t *testing.T, path string, c *clock) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.now = c.now
	return s
}

func sanction(principal, typ, class string, d time.Duration) Sanction {
	return Sanction{Principal: principal, Type: typ, Class: class, Reason: "test", Source: SourceManual,
		CreatedBy: "ops", ExpiresAt: t0.Add(d)}
}

func TestStoreApplyLookupPersist(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "data", "sanctions.json")
	s := openAt(t, path, c)

	tests := []struct {
		name    string
		x       Sanction
		changed bool
		err     error
	}{
		{"quarantine", sanction("agent:bot", Quarantine, "", time.Hour), true, nil},
		{"throttle", sanction("agent:bot", Throttle, "slow", 30*time.Minute), true, nil},
		{"mfa", sanction("user:alice", RequireMFA, "", time.Hour), true, nil},
		{"shorter quarantine keeps the longer", sanction("agent:bot", Quarantine, "", time.Minute), false, nil},
		{"longer quarantine replaces", sanction("agent:bot", Quarantine, "", 2*time.Hour), true, nil},
		{"other class replaces", sanction("agent:bot", Throttle, "slower", 10*time.Minute), true, nil},
		{"bad kind", sanction("robot:x", Quarantine, "", time.Hour), false, ErrInvalid},
		{"no id", sanction("agent:", Quarantine, "", time.Hour), false, ErrInvalid},
		{"bad type", sanction("agent:bot", "ban", "", time.Hour), false, ErrInvalid},
		{"throttle without class", sanction("agent:bot", Throttle, "", time.Hour), false, ErrInvalid},
		{"class on quarantine", sanction("agent:bot", Quarantine, "slow", time.Hour), false, ErrInvalid},
		{"ends at once", sanction("agent:bot", Quarantine, "", 0), false, ErrInvalid},
		{"control characters", Sanction{Principal: "agent:bot", Type: Quarantine, Reason: "a\x1b[31m", Source: "manual",
			CreatedBy: "ops", ExpiresAt: t0.Add(time.Hour)}, false, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, changed, err := s.Apply(tt.x)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || changed != tt.changed {
				t.Fatalf("changed=%v err=%v, want changed=%v", changed, err, tt.changed)
			}
		})
	}

	check := func(s *Store, at time.Time, kind, id string, want Active) {
		t.Helper()
		got, err := s.Lookup(kind, id, at)
		if err != nil || got != want {
			t.Fatalf("Lookup(%s:%s at %s) = %+v, %v; want %+v", kind, id, at.Sub(t0), got, err, want)
		}
	}
	check(s, t0, "agent", "bot", Active{Quarantine: true, Throttle: "slower"})
	check(s, t0, "user", "alice", Active{RequireMFA: true})
	check(s, t0, "user", "bot", Active{}) // another kind, same id: another principal

	// Reopened: the same sanctions, from the file alone.
	s2 := openAt(t, path, c)
	check(s2, t0, "agent", "bot", Active{Quarantine: true, Throttle: "slower"})
	check(s2, t0.Add(11*time.Minute), "agent", "bot", Active{Quarantine: true}) // the throttle lapsed by itself
	check(s2, t0.Add(2*time.Hour), "agent", "bot", Active{})
	list, err := s2.List("", t0)
	if err != nil || len(list) != 3 || list[0].Type != Throttle || list[2].Type != Quarantine {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if list, _ := s2.List("user:alice", t0); len(list) != 1 || list[0].Type != RequireMFA {
		t.Fatalf("List(user:alice) = %+v", list)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("store file mode: %v %v", fi.Mode(), err)
	}
}

func TestStoreLiftAndExpire(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "sanctions.json")
	s := openAt(t, path, c)
	q, _, err := s.Apply(sanction("agent:bot", Quarantine, "", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := s.Apply(sanction("user:alice", RequireMFA, "", time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	if _, err := s.Lift("s_000000000000000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lift unknown: %v", err)
	}
	if _, err := s.Lift("../etc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lift malformed: %v", err)
	}
	got, err := s.Lift(q.ID)
	if err != nil || got.ID != q.ID {
		t.Fatalf("lift: %+v %v", got, err)
	}
	if a, _ := s.Lookup("agent", "bot", t0); !a.None() {
		t.Fatalf("lifted quarantine still active: %+v", a)
	}
	if a, _ := openAt(t, path, c).Lookup("agent", "bot", t0); !a.None() {
		t.Fatalf("lifted quarantine back after reopen: %+v", a)
	}

	// Not due yet: nothing to sweep.
	if s.Due(t0) {
		t.Fatal("due before expiry")
	}
	c.add(time.Minute)
	if !s.Due(c.t) {
		t.Fatal("not due after expiry")
	}
	// A failing record keeps the sanction in the file for the next sweep.
	boom := errors.New("audit down")
	if done, err := s.Expire(c.t, func(Sanction) error { return boom }); !errors.Is(err, boom) || len(done) != 0 {
		t.Fatalf("expire with failing record: %v %v", done, err)
	}
	if !s.Due(c.t) {
		t.Fatal("unrecorded lapse no longer due")
	}
	var recorded []string
	done, err := s.Expire(c.t, func(x Sanction) error { recorded = append(recorded, x.ID); return nil })
	if err != nil || len(done) != 1 || done[0].ID != m.ID || len(recorded) != 1 {
		t.Fatalf("expire: %v %v %v", done, recorded, err)
	}
	if s.Due(c.t.Add(time.Hour)) {
		t.Fatal("still due after the sweep")
	}
	if list, _ := openAt(t, path, c).List("", t0); len(list) != 0 {
		t.Fatalf("expired sanction still in the file: %+v", list)
	}
}

func TestStoreFailsClosed(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct{ name, content string }{
		{"not json", "{"},
		{"empty", ""},
		{"wrong version", `{"version":2,"sanctions":[]}`},
		{"unknown field", `{"version":1,"sanctions":[],"extra":1}`},
		{"trailing data", `{"version":1,"sanctions":[]} {}`},
		{"bad entry", `{"version":1,"sanctions":[{"id":"x"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".json")
			if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(p); err == nil {
				t.Fatal("Open accepted a corrupt store")
			}
		})
	}

	// A store whose file is corrupted while serving refuses lookups and
	// writes, and never overwrites what it cannot read.
	c := newClock()
	p := filepath.Join(dir, "live.json")
	s := openAt(t, p, c)
	if _, _, err := s.Apply(sanction("agent:bot", Quarantine, "", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reload of a corrupt file: %v", err)
	}
	if _, err := s.Lookup("agent", "bot", t0); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lookup in the error state: %v", err)
	}
	if s.Healthy() == nil {
		t.Fatal("healthy in the error state")
	}
	if _, _, err := s.Apply(sanction("agent:other", Quarantine, "", time.Hour)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("apply over a corrupt file: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "garbage" {
		t.Fatal("a corrupt store was overwritten")
	}
	// A file that disappears is not an empty store.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("reload of a vanished file: %v", err)
	}
}

func TestStoreSeesOtherWriters(t *testing.T) {
	c := newClock()
	p := filepath.Join(t.TempDir(), "sanctions.json")
	a, b := openAt(t, p, c), openAt(t, p, c)
	if _, _, err := a.Apply(sanction("service:etl", Quarantine, "", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Lookup("service", "etl", t0); !got.Quarantine {
		t.Fatal("second process does not see the sanction")
	}
	// Writes from both survive: b re-reads under the lock.
	if _, _, err := b.Apply(sanction("service:etl", Throttle, "slow", time.Hour)); err != nil {
		t.Fatal(err)
	}
	if list, _ := openAt(t, p, c).List("", t0); len(list) != 2 {
		t.Fatalf("lost a write: %+v", list)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	x := sanction("user:alice@example.org", RequireMFA, "", time.Hour)
	x.ID, x.CreatedAt, x.RequestID = "s_0123456789abcdef01234567", t0, "req-1"
	b, err := Encode([]Sanction{x})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || len(got) != 1 || got[0] != x {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	dup, _ := Encode([]Sanction{x, x})
	if _, err := Decode(dup); err == nil {
		t.Fatal("duplicate ids accepted")
	}
	y := x
	y.ID = "s_0123456789abcdef01234568"
	two, _ := Encode([]Sanction{x, y})
	if _, err := Decode(two); err == nil {
		t.Fatal("two require_mfa sanctions on one principal accepted")
	}
}
