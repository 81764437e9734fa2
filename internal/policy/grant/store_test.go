package grant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T, path string, c *clock) *Store {
	t.Helper()
	s, err := Open(path, Options{MaxDuration: 8 * time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	alice = Actor{ID: "alice", RequestID: "req-a"}
	bob   = Actor{ID: "bob", Roles: []string{DefaultApproverRole}, RequestID: "req-b"}
	carol = Actor{ID: "carol", Roles: []string{DefaultApproverRole}, RequestID: "req-c"}
	dave  = Actor{ID: "dave", Roles: []string{"admin"}, RequestID: "req-d"}
	chat  = Request{Action: "chat.completions", Segment: "inference", Duration: Duration(time.Hour), Reason: "incident 42"}
)

func TestApprovalRules(t *testing.T) {
	tests := []struct {
		name    string
		by      Actor    // requester
		req     Request  // the request
		approve Actor    // approver
		wantErr error    // from Approve; nil: approved
		wantMsg string   // part of the error message
		active  []string // principals with an active grant afterwards
	}{
		{name: "a different approver with the role approves", by: alice, req: chat, approve: bob, active: []string{"alice"}},
		{name: "self-approval by the requester is refused", by: bob, req: chat, approve: bob,
			wantErr: ErrForbidden, wantMsg: "requested this grant"},
		{name: "approval by the grantee is refused", by: carol, req: with(chat, func(r *Request) { r.Principal = "bob" }), approve: bob,
			wantErr: ErrForbidden, wantMsg: "the grant is for bob"},
		{name: "approver without the role is refused", by: alice, req: chat, approve: dave,
			wantErr: ErrForbidden, wantMsg: `needs the role "grant-approver"`},
		{name: "no roles at all is refused", by: alice, req: chat, approve: Actor{ID: "erin"},
			wantErr: ErrForbidden},
		{name: "a grant requested for someone else is theirs", by: alice, req: with(chat, func(r *Request) { r.Principal = "svc-1" }), approve: bob,
			active: []string{"svc-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
			g, err := s.Request(tc.req, tc.by)
			if err != nil {
				t.Fatal(err)
			}
			if g.State != StateRequested {
				t.Fatalf("state %q", g.State)
			}
			c.Add(time.Minute)
			got, err := s.Approve(g.ID, tc.approve, "ok")
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("Approve: %v, want %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Approve: %q does not say %q", err, tc.wantMsg)
			}
			for _, p := range []string{"alice", "bob", "carol", "svc-1"} {
				gs, err := s.Active(p, c.Now())
				if err != nil {
					t.Fatal(err)
				}
				want := contains(tc.active, p)
				if (len(gs) == 1) != want || len(gs) > 1 {
					t.Fatalf("Active(%s) = %v, want active %v", p, gs, want)
				}
			}
			if tc.wantErr != nil {
				return
			}
			// The approval starts the grant.
			if !got.NotBefore.Equal(c.Now()) || !got.ExpiresAt.Equal(c.Now().Add(time.Hour)) || got.ApprovedBy != tc.approve.ID {
				t.Fatalf("approved grant %+v", got)
			}
			if n := len(got.History); n != 2 || got.History[1].Step != StepApprove || got.History[1].RequestID != tc.approve.RequestID || got.History[1].Note != "ok" {
				t.Fatalf("history %+v", got.History)
			}
		})
	}
}

func with(r Request, f func(*Request)) Request {
	f(&r)
	return r
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestRequestValidation(t *testing.T) {
	long := strings.Repeat("x", 600)
	tests := []struct {
		name string
		req  Request
		want string // part of the error; "" means accepted
	}{
		{"valid", chat, ""},
		{"wildcard action", with(chat, func(r *Request) { r.Action = "*" }), ""},
		{"with resource", with(chat, func(r *Request) { r.Resource = "meta-llama/Llama-3.1-8B" }), ""},
		{"duration at the maximum", with(chat, func(r *Request) { r.Duration = Duration(8 * time.Hour) }), ""},
		{"duration above the maximum", with(chat, func(r *Request) { r.Duration = Duration(8*time.Hour + time.Second) }), "longer than the maximum 8h0m0s"},
		{"duration above the hard maximum", with(chat, func(r *Request) { r.Duration = Duration(30 * 24 * time.Hour) }), "longer than the maximum"},
		{"no duration", with(chat, func(r *Request) { r.Duration = 0 }), "duration: required"},
		{"fractional seconds", with(chat, func(r *Request) { r.Duration = Duration(1500 * time.Millisecond) }), "whole number of seconds"},
		{"negative duration", with(chat, func(r *Request) { r.Duration = Duration(-time.Hour) }), "shorter than 1s"},
		{"no reason", with(chat, func(r *Request) { r.Reason = "  " }), "reason: required"},
		{"oversize reason", with(chat, func(r *Request) { r.Reason = long }), "reason: longer than 512"},
		{"control characters in reason", with(chat, func(r *Request) { r.Reason = "a\nb" }), "control characters"},
		{"bidi override in reason", with(chat, func(r *Request) { r.Reason = "a\u202eb" }), "control characters"},
		{"no action", with(chat, func(r *Request) { r.Action = "" }), "action: required"},
		{"bad action", with(chat, func(r *Request) { r.Action = "Chat Completions" }), "action: must be"},
		{"grant management", with(chat, func(r *Request) { r.Action = "grant.approve" }), "cannot permit grant management"},
		{"no segment", with(chat, func(r *Request) { r.Segment = "" }), "segment: required"},
		{"bad segment", with(chat, func(r *Request) { r.Segment = "../x" }), "segment: must be"},
		{"oversize resource", with(chat, func(r *Request) { r.Resource = long }), "resource: longer than 256"},
		{"resource with space", with(chat, func(r *Request) { r.Resource = "a b" }), "resource: must be printable"},
		{"principal with space", with(chat, func(r *Request) { r.Principal = "a b" }), "principal: must be"},
		{"oversize principal", with(chat, func(r *Request) { r.Principal = long }), "principal: longer than 256"},
	}
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), newClock())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Request(tc.req, alice)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalid saying %q", err, tc.want)
			}
		})
	}
	// The actor is checked too.
	if _, err := s.Request(chat, Actor{ID: ""}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("empty actor: %v", err)
	}
	if _, err := s.Request(chat, Actor{ID: "x", RequestID: "a b"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad request id: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
	g, err := s.Request(with(chat, func(r *Request) { r.Duration = Duration(10 * time.Minute) }), alice)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour + 700*time.Millisecond) // approval starts the clock, not the request
	if _, err := s.Approve(g.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	approvedAt := c.Now().Truncate(time.Second) // the store keeps whole seconds
	if gs, _ := s.Active("alice", approvedAt.Add(-time.Nanosecond)); len(gs) != 0 {
		t.Fatal("active before its approval")
	}
	if gs, _ := s.Active("alice", approvedAt.Add(10*time.Minute-time.Nanosecond)); len(gs) != 1 || gs[0].ID != g.ID || gs[0].ApprovedBy != "bob" {
		t.Fatalf("not active just before expiry: %v", gs)
	}
	// At the expiry the grant is over, without any sweep.
	if gs, _ := s.Active("alice", approvedAt.Add(10*time.Minute)); len(gs) != 0 {
		t.Fatal("active at its expiry")
	}
	c.Add(10 * time.Minute)
	if s.IsActive(g.ID, c.Now()) {
		t.Fatal("IsActive after expiry")
	}
	got, err := s.Get(g.ID, alice)
	if err != nil || got.State != StateExpired || !got.EndedAt.Equal(approvedAt.Add(10*time.Minute)) {
		t.Fatalf("Get after expiry: %+v, %v", got, err)
	}
	if _, err := s.Revoke(g.ID, bob, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("revoke of an expired grant: %v", err)
	}
	if !s.Due(c.Now()) {
		t.Fatal("sweep not due")
	}
	// A record failure marks nothing.
	boom := errors.New("audit down")
	if done, err := s.Expire(c.Now(), func(Grant) error { return boom }); !errors.Is(err, boom) || len(done) != 0 {
		t.Fatalf("Expire with failing record: %v, %v", done, err)
	}
	var recorded []Grant
	done, err := s.Expire(c.Now(), func(g Grant) error { recorded = append(recorded, g); return nil })
	if err != nil || len(done) != 1 || len(recorded) != 1 || recorded[0].State != StateExpired || recorded[0].ApprovedBy != "bob" {
		t.Fatalf("Expire: %v %v %v", done, recorded, err)
	}
	if h := recorded[0].History; h[len(h)-1].Step != StepExpire || h[len(h)-1].By != "" {
		t.Fatalf("history %+v", h)
	}
	// Recorded once: a second sweep finds nothing.
	if done, err := s.Expire(c.Now(), func(Grant) error { t.Fatal("recorded twice"); return nil }); err != nil || len(done) != 0 {
		t.Fatalf("second Expire: %v %v", done, err)
	}
	if s.Due(c.Now()) {
		t.Fatal("still due after the sweep")
	}
	// Past the retention period the ended grant leaves the store.
	c.Add(DefaultRetention)
	if !s.Due(c.Now()) {
		t.Fatal("prune not due")
	}
	if _, err := s.Expire(c.Now(), func(Grant) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(g.ID, bob); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned grant: %v", err)
	}
}

func TestRequestLapses(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
	g, err := s.Request(chat, alice)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(DefaultPendingTTL)
	if _, err := s.Approve(g.ID, bob, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("approval of a lapsed request: %v", err)
	}
	var rec Grant
	if _, err := s.Expire(c.Now(), func(g Grant) error { rec = g; return nil }); err != nil {
		t.Fatal(err)
	}
	if rec.ID != g.ID || rec.State != StateExpired || rec.ApprovedBy != "" || !rec.EndedAt.Equal(g.DecideBy) {
		t.Fatalf("lapsed request recorded as %+v", rec)
	}
}

func TestDenyAndRevoke(t *testing.T) {
	tests := []struct {
		name    string
		approve bool   // approve before the step
		step    string // StepDeny or StepRevoke
		by      Actor
		wantErr error
		state   string // state afterwards
	}{
		{"approver denies a request", false, StepDeny, bob, nil, StateDenied},
		{"requester withdraws a request", false, StepDeny, alice, nil, StateDenied},
		{"stranger cannot deny", false, StepDeny, dave, ErrNotFound, StateRequested},
		{"approved grant cannot be denied", true, StepDeny, carol, ErrConflict, StateApproved},
		{"approver revokes an active grant", true, StepRevoke, carol, nil, StateRevoked},
		{"grantee gives up an active grant", true, StepRevoke, alice, nil, StateRevoked},
		{"stranger cannot revoke", true, StepRevoke, dave, ErrNotFound, StateApproved},
		{"a request can be revoked", false, StepRevoke, bob, nil, StateRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
			g, err := s.Request(chat, alice)
			if err != nil {
				t.Fatal(err)
			}
			if tc.approve {
				if _, err := s.Approve(g.ID, bob, ""); err != nil {
					t.Fatal(err)
				}
			}
			c.Add(time.Minute)
			var got Grant
			if tc.step == StepDeny {
				got, err = s.Deny(g.ID, tc.by, "no")
			} else {
				got, err = s.Revoke(g.ID, tc.by, "done")
			}
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("%s: %v, want %v", tc.step, err, tc.wantErr)
			}
			cur, err := s.Get(g.ID, bob)
			if err != nil || cur.State != tc.state {
				t.Fatalf("state %q (%v), want %q", cur.State, err, tc.state)
			}
			if tc.wantErr == nil && (got.EndedBy != tc.by.ID || !got.EndedAt.Equal(c.Now())) {
				t.Fatalf("ended %+v", got)
			}
			if active := s.IsActive(g.ID, c.Now()); active != (tc.state == StateApproved) {
				t.Fatalf("active %v in state %s", active, tc.state)
			}
		})
	}
}

func TestVisibilityAndList(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
	ga, _ := s.Request(chat, alice)
	c.Add(time.Second)
	gd, _ := s.Request(chat, dave)
	c.Add(time.Second)
	gf, _ := s.Request(with(chat, func(r *Request) { r.Principal = "alice" }), dave) // dave asks for alice
	if _, err := s.Approve(ga.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	ids := func(gs []Grant) string {
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		f    Filter
		by   Actor
		want []string
	}{
		{"approver sees all, newest first", Filter{}, bob, []string{gf.ID, gd.ID, ga.ID}},
		{"alice sees hers and the one for her", Filter{}, alice, []string{gf.ID, ga.ID}},
		{"dave sees what he requested", Filter{}, dave, []string{gf.ID, gd.ID}},
		{"stranger sees nothing", Filter{}, Actor{ID: "zed"}, nil},
		{"filter by principal", Filter{Principal: "alice"}, bob, []string{gf.ID, ga.ID}},
		{"filter by requester", Filter{RequestedBy: "dave"}, bob, []string{gf.ID, gd.ID}},
		{"filter by status", Filter{Status: StateApproved}, bob, []string{ga.ID}},
		{"open", Filter{Status: "open"}, bob, []string{gf.ID, gd.ID, ga.ID}},
		{"limit", Filter{Limit: 1}, bob, []string{gf.ID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := s.List(tc.f, tc.by)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := ids(gs), strings.Join(tc.want, ","); got != want {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
	if _, err := s.List(Filter{Status: "bogus"}, bob); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	if _, err := s.Get(gd.ID, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("alice sees dave's grant: %v", err)
	}
	if _, err := s.Approve("g_nothex", bob, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
}

func TestLimits(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
	for i := 0; i < MaxPendingPerPrincipal; i++ {
		if _, err := s.Request(chat, alice); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Request(chat, alice); !errors.Is(err, ErrLimit) {
		t.Fatalf("request over the per-principal cap: %v", err)
	}
	// The cap counts requests for a principal too, whoever makes them.
	if _, err := s.Request(with(chat, func(r *Request) { r.Principal = "alice" }), dave); !errors.Is(err, ErrLimit) {
		t.Fatalf("request for alice over the cap: %v", err)
	}
	// Lapsed requests no longer count.
	c.Add(DefaultPendingTTL)
	if _, err := s.Request(chat, alice); err != nil {
		t.Fatalf("after lapse: %v", err)
	}
	// Oversize notes are refused.
	if _, err := s.Deny("g_0123456789abcdef01234567", bob, strings.Repeat("n", 513)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversize note: %v", err)
	}
}

func TestActiveCapAtApproval(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "grants.json"), c)
	approved := 0
	for approved < MaxActivePerPrincipal {
		g, err := s.Request(with(chat, func(r *Request) { r.Principal = "svc" }), alice)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Approve(g.ID, bob, ""); err != nil {
			t.Fatal(err)
		}
		approved++
	}
	g, err := s.Request(with(chat, func(r *Request) { r.Principal = "svc" }), alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(g.ID, bob, ""); !errors.Is(err, ErrLimit) {
		t.Fatalf("approval over the active cap: %v", err)
	}
}

func TestMaxDurationLoweredAfterRequest(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "grants.json")
	s := openStore(t, path, c)
	g, err := s.Request(with(chat, func(r *Request) { r.Duration = Duration(8 * time.Hour) }), alice)
	if err != nil {
		t.Fatal(err)
	}
	lower, err := Open(path, Options{MaxDuration: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lower.Approve(g.ID, bob, ""); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "above the current maximum") {
		t.Fatalf("approval above the lowered maximum: %v", err)
	}
	if _, err := Open(path, Options{MaxDuration: 8 * 24 * time.Hour}); err == nil {
		t.Fatal("a maximum above the hard limit was accepted")
	}
}

func TestWatchSeesOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grants.json")
	c := newClock()
	server := openStore(t, path, c)
	cli := openStore(t, path, c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go server.Watch(ctx, 10*time.Millisecond, nil)
	g, err := cli.Request(chat, alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Approve(g.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "approval seen", func() bool { return server.IsActive(g.ID, c.Now()) })
	if _, err := cli.Revoke(g.ID, carol, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "revocation seen", func() bool { return !server.IsActive(g.ID, c.Now()) })

	// A corrupt file puts the watcher in the error state: no grant is active.
	g2, _ := cli.Request(chat, alice)
	if _, err := cli.Approve(g2.ID, bob, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "second approval seen", func() bool { return server.IsActive(g2.ID, c.Now()) })
	if err := os.WriteFile(path, []byte(`{"version":1,"grants":[{"id":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "error state", func() bool { return server.Healthy() != nil })
	if gs, err := server.Active("alice", c.Now()); !errors.Is(err, ErrUnavailable) || len(gs) != 0 {
		t.Fatalf("Active in the error state: %v %v", gs, err)
	}
	// Writers refuse to overwrite what they cannot read.
	if _, err := cli.Request(chat, alice); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write over a corrupt file: %v", err)
	}
	// A vanished file is an error too, never an empty store.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := server.Reload(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "disappeared") {
		t.Fatalf("vanished file: %v", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open("", Options{}); err == nil {
		t.Fatal("empty path accepted")
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bad, Options{}); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt file: %v", err)
	}
	if _, err := Open(dir, Options{}); err == nil {
		t.Fatal("a directory was accepted")
	}
	var zero Store
	if _, err := zero.Active("alice", time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unopened store: %v", err)
	}
	if _, err := zero.Request(chat, alice); err == nil {
		t.Fatal("unopened store accepted a write")
	}
}

// TestConcurrentWriters runs writers in two processes and two stores in
// this one against one file: no write may be lost.
func TestConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grants.json")
	const perWriter = 8
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), "GRANT_TEST_WRITER="+path, fmt.Sprintf("GRANT_TEST_N=%d", perWriter))
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for w := 0; w < 2; w++ {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			writeMany(s, fmt.Sprintf("local%d", w), perWriter, errs)
		}(w)
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v\n%s", err, out)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.List(Filter{}, bob)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3*perWriter {
		t.Fatalf("%d grants in the store, want %d: writes were lost", len(all), 3*perWriter)
	}
	for _, g := range all {
		if g.State != StateApproved {
			t.Fatalf("grant %s is %s: an approval was lost", g.ID, g.State)
		}
	}
}

// writeMany requests and approves n grants for n distinct principals.
func writeMany(s *Store, prefix string, n int, errs chan<- error) {
	for i := 0; i < n; i++ {
		requester := Actor{ID: fmt.Sprintf("%s-%d", prefix, i)}
		g, err := s.Request(chat, requester)
		if err != nil {
			errs <- err
			return
		}
		if _, err := s.Approve(g.ID, bob, ""); err != nil {
			errs <- err
			return
		}
	}
}

// TestHelperWriter is the second process of TestConcurrentWriters.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv("GRANT_TEST_WRITER")
	if path == "" {
		t.Skip("helper process for TestConcurrentWriters")
	}
	var n int
	if _, err := fmt.Sscan(os.Getenv("GRANT_TEST_N"), &n); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	writeMany(s, "remote", n, errs)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
