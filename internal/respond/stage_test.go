package respond

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity/mfa"
)

func TestStage(t *testing.T) {
	c := newClock()
	s := openAt(t, filepath.Join(t.TempDir(), "sanctions.json"), c)
	for _, x := range []Sanction{
		sanction("agent:bot", Quarantine, "", time.Hour),
		sanction("user:alice", RequireMFA, "", time.Hour),
		sanction("user:alice", Throttle, "slow", time.Hour),
		sanction("service:etl", Throttle, "slow", time.Hour),
	} {
		if _, _, err := s.Apply(x); err != nil {
			t.Fatal(err)
		}
	}
	st := NewStage(s)
	st.now = c.now

	tests := []struct {
		name      string
		p         gateway.Principal
		action    string
		status    int    // 0: next was called
		code      string // the error code
		sanctions []string
	}{
		{"quarantined", gateway.Principal{Kind: "agent", ID: "bot"}, "chat.completions", 403, CodeQuarantined, nil},
		{"quarantine blocks warden's endpoints too", gateway.Principal{Kind: "agent", ID: "bot"}, "sanction.list", 403, CodeQuarantined, nil},
		{"require_mfa without a second factor", gateway.Principal{Kind: "user", ID: "alice"}, "chat.completions", 401, "mfa_required", nil},
		{"require_mfa lets the step-up through", gateway.Principal{Kind: "user", ID: "alice"}, "mfa.verify", 0, "", []string{RequireMFA, Throttle}},
		{"require_mfa with a second factor", gateway.Principal{Kind: "user", ID: "alice", MFA: true}, "chat.completions", 0, "", []string{RequireMFA, Throttle}},
		{"throttled", gateway.Principal{Kind: "service", ID: "etl"}, "chat.completions", 0, "", []string{Throttle}},
		{"no sanction", gateway.Principal{Kind: "agent", ID: "other"}, "chat.completions", 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			ex := &gateway.Exchange{Request: httptest.NewRequest("POST", "/v1/chat/completions", nil),
				Writer: gateway.NewResponseWriter(rec), Principal: &tt.p, Action: tt.action, Sanctions: []string{"stale"}}
			called := false
			err := st.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
			if tt.status == 0 {
				if err != nil || !called {
					t.Fatalf("err=%v called=%v", err, called)
				}
				if !slices.Equal(ex.Sanctions, tt.sanctions) {
					t.Fatalf("ex.Sanctions = %v, want %v", ex.Sanctions, tt.sanctions)
				}
				return
			}
			var ge *gateway.Error
			if called || !errors.As(err, &ge) || ge.Status != tt.status || ge.Code != tt.code {
				t.Fatalf("called=%v err=%v; want %d %s", called, err, tt.status, tt.code)
			}
			if tt.code == CodeQuarantined && ge.Message != "access is suspended" {
				t.Fatalf("quarantine message %q says more than it should", ge.Message)
			}
			if tt.status == 401 && ex.Writer.Header().Get("WWW-Authenticate") != mfa.StepUpChallenge {
				t.Fatalf("no RFC 9470 challenge: %q", ex.Writer.Header().Get("WWW-Authenticate"))
			}
		})
	}

	if class, ok := st.ThrottleClass(&gateway.Principal{Kind: "service", ID: "etl"}); !ok || class != "slow" {
		t.Fatalf("ThrottleClass = %q %v", class, ok)
	}
	if _, ok := st.ThrottleClass(&gateway.Principal{Kind: "agent", ID: "other"}); ok {
		t.Fatal("ThrottleClass for an unsanctioned principal")
	}
	// Lapsed: nothing in force on the very next request, without a sweep.
	c.add(time.Hour)
	ex := &gateway.Exchange{Request: httptest.NewRequest("GET", "/v1/models", nil),
		Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Principal: &gateway.Principal{Kind: "agent", ID: "bot"}}
	if err := st.Handle(ex, func(*gateway.Exchange) error { return nil }); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if _, ok := st.ThrottleClass(&gateway.Principal{Kind: "service", ID: "etl"}); ok {
		t.Fatal("throttle outlived its expiry")
	}
}

func TestStageFailsClosed(t *testing.T) {
	st := NewStage(&Store{}) // never opened: the error state
	rec := httptest.NewRecorder()
	ex := &gateway.Exchange{Request: httptest.NewRequest("GET", "/v1/models", nil), Writer: gateway.NewResponseWriter(rec),
		Principal: &gateway.Principal{Kind: "agent", ID: "bot"}}
	var ge *gateway.Error
	err := st.Handle(ex, func(*gateway.Exchange) error { t.Fatal("next called"); return nil })
	if !errors.As(err, &ge) || ge.Status != http.StatusServiceUnavailable || ge.Code != CodeUnavailable {
		t.Fatalf("unreadable store: %v", err)
	}
	if err := st.Handle(&gateway.Exchange{}, nil); err == nil {
		t.Fatal("no principal accepted")
	}
}

func TestAuthMemo(t *testing.T) {
	var m authMemo
	m.note("k1", "api_key")
	m.note("", "token")
	if v, ok := m.get("k1"); !ok || v != "api_key" {
		t.Fatalf("get = %q %v", v, ok)
	}
	if _, ok := m.get(""); ok {
		t.Fatal("empty credential remembered")
	}
	for i := range memoMax + 10 {
		m.note(string(rune('a'+i%26))+time.Duration(i).String(), "jwt")
	}
	if m.n.Load() > memoMax {
		t.Fatalf("memo unbounded: %d", m.n.Load())
	}
}

func BenchmarkStageLookup(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "s.json"))
	if err != nil {
		b.Fatal(err)
	}
	s.now = newClock().now
	if _, _, err := s.Apply(sanction("agent:bot", Throttle, "slow", time.Hour)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Lookup("agent", "other", t0); err != nil {
			b.Fatal(err)
		}
	}
}
