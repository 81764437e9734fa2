package respond

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/gateway"
)

// memAudit is an in-memory audit log.
type memAudit struct {
	mu   sync.Mutex
	recs []*audit.Record
	err  error
}

func (m *memAudit) Append(_ context.Context, r *audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.recs = append(m.recs, r)
	return nil
}

func (m *memAudit) actions() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, r := range m.recs {
		out = append(out, r.Action+"/"+r.Code)
	}
	return out
}

// fakeRevoker records what it was asked to revoke.
type fakeRevoker struct {
	calls []string
	err   error
}

func (f *fakeRevoker) RevokeCredential(_ context.Context, kind, id, cred, _ string) (string, error) {
	f.calls = append(f.calls, kind+":"+id+"/"+cred)
	if f.err != nil {
		return "", f.err
	}
	return "API key " + cred, nil
}

func TestPlaybookMatches(t *testing.T) {
	a := behavior.Anomaly{Kind: "agent", ID: "bot", Score: 0.8, Risk: 0.6,
		Features: []behavior.Feature{{Name: "request_rate", Score: 9}, {Name: "new_network", Score: 4}}}
	tests := []struct {
		name string
		pb   Playbook
		want bool
	}{
		{"empty matches all", Playbook{}, true},
		{"score reached", Playbook{MinScore: 0.8}, true},
		{"score not reached", Playbook{MinScore: 0.81}, false},
		{"risk not reached", Playbook{MinRisk: 0.7}, false},
		{"kind", Playbook{Kinds: []string{"service", "agent"}}, true},
		{"other kind", Playbook{Kinds: []string{"user"}}, false},
		{"any feature", Playbook{Features: []string{"tokens_out", "new_network"}}, true},
		{"no feature", Playbook{Features: []string{"tokens_out"}}, false},
		{"all conditions", Playbook{MinScore: 0.5, MinRisk: 0.5, Kinds: []string{"agent"}, Features: []string{"request_rate"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.pb.Matches(a); got != tt.want {
				t.Fatalf("Matches = %v, want %v", got, tt.want)
			}
		})
	}
}

type rig struct {
	r     *Responder
	store *Store
	stage *Stage
	audit *memAudit
	rev   *fakeRevoker
	rc    *receiver
	clock *clock
}

func newRig(t *testing.T, playbooks []Playbook) *rig {
	t.Helper()
	g := &rig{audit: &memAudit{}, rev: &fakeRevoker{}, rc: &receiver{statuses: []int{200}}, clock: newClock()}
	srv := httptest.NewServer(g.rc)
	t.Cleanup(srv.Close)
	g.store = openAt(t, filepath.Join(t.TempDir(), "sanctions.json"), g.clock)
	hook := newTestWebhook(t, srv.URL, 3, 10)
	r, err := New(Options{Store: g.store, Playbooks: playbooks, Webhooks: []*Webhook{hook}, Revoker: g.rev, Audit: g.audit,
		HasClass: func(c string) bool { return c == "slow" }, MFA: true, MaxDuration: 24 * time.Hour, Now: g.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	g.r = r
	g.stage = NewStage(g.store)
	g.stage.now = g.clock.now
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hook.Run(ctx)
	return g
}

func TestRespond(t *testing.T) {
	playbooks := []Playbook{
		{Name: "exfil", MinScore: 0.9, Actions: []Action{
			{Type: ActionWebhook, Webhook: "soc"}, // listed first, sent last
			{Type: ActionQuarantine, Duration: time.Hour},
			{Type: ActionRevoke},
		}},
		{Name: "odd-user", MinScore: 0.5, Kinds: []string{"user"}, Actions: []Action{
			{Type: ActionRequireMFA, Duration: 30 * time.Minute},
			{Type: ActionThrottle, Class: "slow", Duration: 10 * time.Minute},
		}},
		{Name: "odd-any", MinScore: 0.5, Actions: []Action{
			{Type: ActionRequireMFA, Duration: 30 * time.Minute}, // skipped: not a user
			{Type: ActionThrottle, Class: "slow", Duration: 10 * time.Minute},
		}},
	}
	g := newRig(t, playbooks)
	ctx := context.Background()

	t.Run("throttle and require_mfa for a user", func(t *testing.T) {
		a := behavior.Anomaly{Kind: "user", ID: "alice", Credential: "jti-1", Score: 0.6, Risk: 0.4, RequestID: "req-1",
			Reason: "off_hours; new_network", At: t0}
		if err := g.r.Respond(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := g.store.Lookup("user", "alice", g.clock.t)
		if err != nil || !got.RequireMFA || got.Throttle != "slow" || got.Quarantine {
			t.Fatalf("in force: %+v %v", got, err)
		}
		if class, ok := g.stage.ThrottleClass(&gatewayPrincipalUserAlice); !ok || class != "slow" {
			t.Fatalf("limit override: %q %v", class, ok)
		}
		if acts := g.audit.actions(); len(acts) != 2 || acts[0] != AuditApply+"/require_mfa" || acts[1] != AuditApply+"/throttle" {
			t.Fatalf("audit: %v", acts)
		}
		rec := g.audit.recs[0]
		if rec.Principal == nil || rec.Principal.ID != "alice" || rec.Principal.CredentialID != "jti-1" ||
			!strings.Contains(rec.Reason, "req-1") || !strings.HasPrefix(rec.Path, SanctionsPath+"/s_") {
			t.Fatalf("audit record: %+v", rec)
		}
	})

	t.Run("the same anomaly again changes nothing", func(t *testing.T) {
		g.audit.recs = nil
		a := behavior.Anomaly{Kind: "user", ID: "alice", Score: 0.6, Reason: "again"}
		if err := g.r.Respond(ctx, a); err != nil {
			t.Fatal(err)
		}
		if acts := g.audit.actions(); len(acts) != 2 || acts[0] != AuditApply+"/require_mfa_unchanged" {
			t.Fatalf("audit: %v", acts)
		}
	})

	t.Run("require_mfa skipped for an agent", func(t *testing.T) {
		g.audit.recs = nil
		if err := g.r.Respond(ctx, behavior.Anomaly{Kind: "agent", ID: "helper", Score: 0.6}); err != nil {
			t.Fatal(err)
		}
		got, _ := g.store.Lookup("agent", "helper", g.clock.t)
		if got.RequireMFA || got.Throttle != "slow" {
			t.Fatalf("in force: %+v", got)
		}
		if acts := g.audit.actions(); len(acts) != 2 || acts[0] != AuditApply+"/require_mfa_skipped" || !strings.Contains(g.audit.recs[0].Reason, "users only") {
			t.Fatalf("audit: %v", acts)
		}
	})

	t.Run("quarantine, revoke and a signed alert", func(t *testing.T) {
		g.audit.recs = nil
		a := behavior.Anomaly{Kind: "agent", ID: "bot", Credential: "0123456789abcdef01234567", Score: 0.95, Risk: 0.9,
			RequestID: "req-9", Reason: "tokens_out 40x baseline", At: t0,
			Features: []behavior.Feature{{Name: "tokens_out", Value: 40000, Baseline: 1000, Score: 12}}}
		if err := g.r.Respond(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := g.store.Lookup("agent", "bot", g.clock.t); !got.Quarantine {
			t.Fatalf("not quarantined: %+v", got)
		}
		if len(g.rev.calls) != 1 || g.rev.calls[0] != "agent:bot/0123456789abcdef01234567" {
			t.Fatalf("revoker calls: %v", g.rev.calls)
		}
		acts := g.audit.actions()
		want := []string{AuditApply + "/quarantine", AuditRevoke + "/credential_revoked", AuditWebhook + "/webhook_queued"}
		if strings.Join(acts, " ") != strings.Join(want, " ") {
			t.Fatalf("audit: %v, want %v", acts, want)
		}
		deadline := time.Now().Add(5 * time.Second)
		for g.rc.verified.Load() < 1 {
			if time.Now().After(deadline) {
				t.Fatal("alert not delivered")
			}
			time.Sleep(5 * time.Millisecond)
		}
		g.rc.mu.Lock()
		body := g.rc.bodies[0]
		g.rc.mu.Unlock()
		var alert Alert
		if err := json.Unmarshal(body, &alert); err != nil {
			t.Fatal(err)
		}
		if alert.Playbook != "exfil" || alert.Anomaly.Principal != "agent:bot" || len(alert.Actions) != 2 ||
			alert.Actions[0].Type != Quarantine || alert.Actions[0].Outcome != OutcomeApplied ||
			alert.Actions[1].Outcome != OutcomeRevoked || !strings.HasPrefix(alert.ID, "evt_") {
			t.Fatalf("alert: %s", body)
		}
	})

	t.Run("a revoke that warden cannot do is skipped, one that fails is an error", func(t *testing.T) {
		g.audit.recs = nil
		g.rev.err = ErrNotRevocable
		err := g.r.Respond(ctx, behavior.Anomaly{Kind: "user", ID: "carol", Credential: "oidc-jti", Score: 0.99})
		if err != nil {
			t.Fatal(err)
		}
		if acts := g.audit.actions(); len(acts) != 3 || acts[1] != AuditRevoke+"/revoke_skipped" {
			t.Fatalf("audit: %v", acts)
		}
		g.rev.err = errors.New("disk full")
		if err := g.r.Respond(ctx, behavior.Anomaly{Kind: "user", ID: "dave", Credential: "jti-2", Score: 0.99}); err == nil {
			t.Fatal("a failed revocation reported as done")
		}
		g.rev.err = nil
	})

	t.Run("a network anomaly: sanctions skipped, nothing bound", func(t *testing.T) {
		g.audit.recs = nil
		a := behavior.Anomaly{Kind: behavior.KindNetwork, ID: "203.0.113.0/24", Score: 0.6, Reason: "request_rate"}
		if err := g.r.Respond(ctx, a); err != nil {
			t.Fatal(err)
		}
		if acts := g.audit.actions(); len(acts) != 2 || acts[0] != AuditApply+"/require_mfa_skipped" || acts[1] != AuditApply+"/throttle_skipped" {
			t.Fatalf("audit: %v", acts)
		}
		if list, _ := g.store.List("", g.clock.t); slices.ContainsFunc(list, func(x Sanction) bool { return strings.HasPrefix(x.Principal, "network") }) {
			t.Fatalf("a sanction on a network: %+v", list)
		}
	})

	t.Run("no playbook matches", func(t *testing.T) {
		g.audit.recs = nil
		if err := g.r.Respond(ctx, behavior.Anomaly{Kind: "agent", ID: "calm", Score: 0.1}); err != nil {
			t.Fatal(err)
		}
		if len(g.audit.recs) != 0 {
			t.Fatalf("records for a non-match: %v", g.audit.actions())
		}
	})

	t.Run("invalid anomalies are refused", func(t *testing.T) {
		for _, a := range []behavior.Anomaly{
			{Kind: "robot", ID: "x", Score: 1},
			{Kind: "agent", ID: "", Score: 1},
			{Kind: "agent", ID: "x", Principal: "agent:y", Score: 1},
			{Kind: "agent", ID: "x", Score: 1.5},
		} {
			if err := g.r.Respond(ctx, a); !errors.Is(err, ErrInvalid) {
				t.Errorf("Respond(%+v) = %v", a, err)
			}
		}
	})

	t.Run("a failed persist reports nothing taken", func(t *testing.T) {
		g.audit.recs = nil
		bad := newRig(t, playbooks)
		bad.store.snap.Store(&snapshot{err: ErrUnavailable})
		bad.store.existed.Store(true)
		bad.store.path = filepath.Join(t.TempDir(), "missing", "dir", "x.json")
		err := bad.r.Respond(ctx, behavior.Anomaly{Kind: "user", ID: "eve", Score: 0.6})
		if err == nil || len(bad.audit.recs) != 0 {
			t.Fatalf("err=%v records=%v", err, bad.audit.actions())
		}
	})
}

func TestImposeLiftSweep(t *testing.T) {
	g := newRig(t, nil)
	ctx := context.Background()
	tests := []struct {
		name, principal, typ, class string
		d                           time.Duration
		reason                      string
		ok                          bool
	}{
		{"quarantine", "agent:bot", Quarantine, "", time.Hour, "incident 7", true},
		{"throttle", "service:etl", Throttle, "slow", time.Minute, "noisy", true},
		{"mfa", "user:alice", RequireMFA, "", time.Minute, "odd login", true},
		{"mfa for an agent", "agent:bot", RequireMFA, "", time.Minute, "x", false},
		{"unknown class", "service:etl", Throttle, "fast", time.Minute, "x", false},
		{"too long", "agent:bot", Quarantine, "", 25 * time.Hour, "x", false},
		{"too short", "agent:bot", Quarantine, "", time.Millisecond, "x", false},
		{"unknown type", "agent:bot", "ban", "", time.Minute, "x", false},
		{"bad principal", "bot", Quarantine, "", time.Minute, "x", false},
		{"control characters in the reason", "agent:bot", Quarantine, "", time.Minute, "\x1b]0;pwned\x07", false},
	}
	ids := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, changed, err := g.r.Impose(ctx, tt.principal, tt.typ, tt.class, tt.d, tt.reason, "ops@example.org", "req-7")
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err %v does not wrap ErrInvalid", err)
				}
				return
			}
			if !changed || s.Source != SourceManual || s.CreatedBy != "ops@example.org" {
				t.Fatalf("sanction: %+v changed=%v", s, changed)
			}
			ids[tt.name] = s.ID
		})
	}
	g.audit.recs = nil
	if _, err := g.r.Lift(ctx, ids["quarantine"], "ops@example.org", "req-8", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := g.store.Lookup("agent", "bot", g.clock.t); got.Quarantine {
		t.Fatal("still quarantined after the lift")
	}
	if _, err := g.r.Lift(ctx, ids["quarantine"], "ops", "req-9", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second lift: %v", err)
	}
	g.clock.add(time.Minute)
	if err := g.r.SweepOnce(ctx); err != nil {
		t.Fatal(err)
	}
	acts := g.audit.actions()
	if len(acts) != 3 || acts[0] != AuditLift+"/sanction_lifted" || acts[1] != AuditExpire+"/sanction_expired" || acts[2] != AuditExpire+"/sanction_expired" {
		t.Fatalf("audit: %v", acts)
	}
	if list, _ := g.r.List(""); len(list) != 0 {
		t.Fatalf("left in force: %+v", list)
	}
	// An audit log that refuses: the sweep keeps the lapse for later.
	if _, _, err := g.r.Impose(ctx, "agent:x", Quarantine, "", time.Second, "r", "ops", ""); err != nil {
		t.Fatal(err)
	}
	g.clock.add(time.Second)
	g.audit.err = errors.New("audit down")
	if err := g.r.SweepOnce(ctx); err == nil || !g.store.Due(g.clock.t) {
		t.Fatalf("sweep with the audit log down: %v", err)
	}
}

func TestNewChecksPlaybooks(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "s.json"), newClock())
	base := Options{Store: s, Audit: &memAudit{}, MaxDuration: time.Hour}
	for _, pb := range []Playbook{
		{Name: "a", Actions: []Action{{Type: ActionThrottle, Class: "slow", Duration: time.Minute}}}, // no classes
		{Name: "b", Actions: []Action{{Type: ActionRequireMFA, Duration: time.Minute}}},              // no MFA
		{Name: "c", Actions: []Action{{Type: ActionRevoke}}},                                         // no revoker
		{Name: "d", Actions: []Action{{Type: ActionWebhook, Webhook: "nope"}}},
		{Name: "e", Actions: []Action{{Type: ActionQuarantine, Duration: 2 * time.Hour}}},
		{Name: "f", Actions: []Action{{Type: "rollback"}}},
	} {
		o := base
		o.Playbooks = []Playbook{pb}
		if _, err := New(o); err == nil {
			t.Errorf("playbook %s accepted", pb.Name)
		}
	}
}

var gatewayPrincipalUserAlice = gateway.Principal{Kind: "user", ID: "alice"}
