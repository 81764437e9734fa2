package grant

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

func TestStage(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "grants.json")
	s := openStore(t, path, c)
	g, err := s.Request(chat, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(g.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	st := NewStage(s, nil)
	st.now = c.Now
	stale := []gateway.Grant{{ID: "stale"}}

	tests := []struct {
		name      string
		principal *gateway.Principal
		advance   time.Duration
		corrupt   bool
		want      []string // grant ids in ex.Grants
	}{
		{name: "the principal's active grant", principal: &gateway.Principal{ID: "alice"}, want: []string{g.ID}},
		{name: "another principal has none", principal: &gateway.Principal{ID: "bob"}},
		{name: "no principal, no grants", principal: nil},
		{name: "an expired grant is not set", principal: &gateway.Principal{ID: "alice"}, advance: time.Hour},
		{name: "an unreadable store sets none and goes on", principal: &gateway.Principal{ID: "alice"}, corrupt: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.Add(tc.advance)
			if tc.corrupt {
				if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := s.Reload(); err == nil {
					t.Fatal("corrupt store reloaded")
				}
			}
			ex := &gateway.Exchange{Principal: tc.principal, Grants: stale}
			called := false
			err := st.Handle(ex, func(ex *gateway.Exchange) error { called = true; return nil })
			if err != nil || !called {
				t.Fatalf("Handle: %v, next called %v", err, called)
			}
			var got []string
			for _, g := range ex.Grants {
				got = append(got, g.ID)
			}
			if len(got) != len(tc.want) || len(got) > 0 && got[0] != tc.want[0] {
				t.Fatalf("ex.Grants = %v, want %v", got, tc.want)
			}
			if len(ex.Grants) == 1 && (ex.Grants[0].ApprovedBy != "bob" || ex.Grants[0].Segment != "inference") {
				t.Fatalf("grant as policy sees it: %+v", ex.Grants[0])
			}
		})
	}
}

// BenchmarkStage measures the per-request cost of the grant stage for a
// principal without grants (the common case) and with one active grant.
func BenchmarkStage(b *testing.B) {
	path := filepath.Join(b.TempDir(), "grants.json")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200; i++ { // other principals' grants in the store
		g, err := s.Request(with(chat, func(r *Request) { r.Principal = "svc-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }), alice)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Approve(g.ID, bob, ""); err != nil {
			b.Fatal(err)
		}
	}
	g, err := s.Request(chat, carol)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Approve(g.ID, bob, ""); err != nil {
		b.Fatal(err)
	}
	st := NewStage(s, nil)
	next := func(*gateway.Exchange) error { return nil }
	for _, p := range []string{"nobody", "carol"} {
		b.Run(p, func(b *testing.B) {
			ex := &gateway.Exchange{Principal: &gateway.Principal{ID: p}}
			b.ReportAllocs()
			for b.Loop() {
				if err := st.Handle(ex, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
