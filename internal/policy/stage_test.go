package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

var testStart = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// newExchange returns an exchange as the stages before authorize leave it:
// identified, routed, body read.
func newExchange() *gateway.Exchange {
	body := `{"model":"gpt-4o-mini","messages":[]}`
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	return &gateway.Exchange{
		ID:       "req_01",
		Start:    testStart,
		Request:  req,
		Writer:   gateway.NewResponseWriter(httptest.NewRecorder()),
		SourceIP: netip.MustParseAddr("10.0.0.7"),
		Route:    &gateway.Route{Name: "openai", Segment: "inference", Upstream: "http://127.0.0.1:9", API: "openai"},
		Action:   "chat.completions",
		Model:    "gpt-4o-mini",
		Body:     []byte(body),
		Principal: &gateway.Principal{
			Kind:         gateway.KindService,
			ID:           "spiffe://example.org/billing-bot",
			AuthMethod:   "api_key",
			CredentialID: "key_01",
			AuthTime:     testStart.Add(-time.Minute),
			Scopes:       []string{"inference:chat.completions"},
		},
	}
}

func TestStage(t *testing.T) {
	tests := []struct {
		name        string
		dir         string // "" for no engine
		edit        func(*gateway.Exchange)
		wantNext    bool
		wantStatus  int
		wantCode    string
		wantReasons []string
		wantCause   error // errors.Is on the returned error
		wantLog     string
	}{
		{name: "allow", dir: "basic", wantNext: true, wantReasons: []string{"chat completions are open"}},
		{name: "default deny", dir: "basic", edit: func(ex *gateway.Exchange) { ex.Action = "embeddings" },
			wantStatus: 403, wantCode: CodeDenied, wantReasons: []string{ReasonDefaultDeny}},
		{name: "deny with reasons", dir: "basic", edit: func(ex *gateway.Exchange) { ex.Model = "bad" },
			wantStatus: 403, wantCode: CodeDenied, wantReasons: []string{"model bad is blocked"}},
		{name: "unknown obligations deny", dir: "obligations", edit: func(ex *gateway.Exchange) { ex.Action = "unknown" },
			wantStatus: 403, wantCode: CodeDenied,
			wantReasons: []string{"unsupported obligation: cap"}},
		{name: "known obligations without enforcers deny", dir: "obligations",
			wantStatus: 403, wantCode: CodeDenied,
			wantReasons: []string{"unsupported obligation: audit_level (not enabled on this gateway)",
				"unsupported obligation: mask (not enabled on this gateway)",
				"unsupported obligation: max_tokens (not enabled on this gateway)",
				"unsupported obligation: rate_class (not enabled on this gateway)",
				"unsupported obligation: require_mfa (not enabled on this gateway)"}},
		{name: "malformed obligation", dir: "obligations", edit: func(ex *gateway.Exchange) { ex.Action = "bad_max_tokens_zero" },
			wantStatus: 403, wantCode: CodeError, wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "obligation max_tokens"},
		{name: "input from a broken assessment", dir: "basic", edit: func(ex *gateway.Exchange) {
			ex.Assessment = &gateway.Assessment{Risk: 7}
		}, wantStatus: 500, wantCode: "internal_error", wantReasons: []string{ReasonError}, wantCause: ErrInput, wantLog: "level=ERROR"},
		{name: "empty obligations allow", dir: "basic",
			edit:     func(ex *gateway.Exchange) { ex.Request.URL.Path = "/empty-obligations" },
			wantNext: true, wantReasons: []string{"chat completions are open"}},
		{name: "non-boolean allow", dir: "nonbool", wantStatus: 403, wantCode: CodeError,
			wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "level=WARN"},
		{name: "malformed reasons", dir: "badreasons", wantStatus: 403, wantCode: CodeError,
			wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "level=WARN"},
		{name: "runtime error", dir: "conflict", wantStatus: 403, wantCode: CodeError,
			wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "eval_conflict_error"},
		{name: "built-in error", dir: "divzero", edit: func(ex *gateway.Exchange) { ex.Action = "time" },
			wantStatus: 403, wantCode: CodeError, wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "eval_builtin_error"},
		{name: "malformed deny", dir: "baddeny", edit: func(ex *gateway.Exchange) { ex.Action = "boolean" },
			wantStatus: 403, wantCode: CodeError, wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "deny is boolean"},
		{name: "malformed mask obligation", dir: "obligations", edit: func(ex *gateway.Exchange) { ex.Action = "bad_mask_action" },
			wantStatus: 403, wantCode: CodeError, wantReasons: []string{ReasonError}, wantCause: ErrEvaluation, wantLog: "obligation mask"},
		{name: "panic", dir: "panic", wantStatus: 503, wantCode: CodeUnavailable,
			wantReasons: []string{ReasonUnavailable}, wantCause: ErrUnavailable, wantLog: "stack="},
		{name: "client gone", dir: "basic", edit: func(ex *gateway.Exchange) {
			ctx, cancel := context.WithCancel(ex.Request.Context())
			cancel()
			ex.Request = ex.Request.WithContext(ctx)
		}, wantStatus: 503, wantCode: CodeUnavailable, wantReasons: []string{ReasonUnavailable},
			wantCause: context.Canceled, wantLog: "level=WARN"},
		{name: "deadline passed", dir: "basic", edit: func(ex *gateway.Exchange) {
			ctx, cancel := context.WithDeadline(ex.Request.Context(), testStart)
			_ = cancel
			ex.Request = ex.Request.WithContext(ctx)
		}, wantStatus: 503, wantCode: CodeUnavailable, wantReasons: []string{ReasonUnavailable},
			wantCause: context.DeadlineExceeded, wantLog: "level=ERROR"},
		{name: "no principal", dir: "basic", edit: func(ex *gateway.Exchange) { ex.Principal = nil },
			wantStatus: 500, wantCode: "internal_error", wantReasons: []string{ReasonError}, wantLog: "level=ERROR"},
		{name: "no engine", dir: "", wantStatus: 503, wantCode: CodeUnavailable,
			wantReasons: []string{ReasonUnavailable}, wantLog: "level=ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e *Engine
			if tt.dir != "" {
				e = mustLoad(t, "testdata/"+tt.dir)
			}
			var logs bytes.Buffer
			s := NewStage(e, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
			ex := newExchange()
			if tt.edit != nil {
				tt.edit(ex)
			}
			called := false
			err := s.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })

			if ex.Decision == nil {
				t.Fatal("ex.Decision not set")
			}
			if e != nil && ex.Decision.PolicyVersion != e.Version() {
				t.Errorf("PolicyVersion = %q, want %q", ex.Decision.PolicyVersion, e.Version())
			}
			if !slices.Equal(ex.Decision.Reasons, tt.wantReasons) {
				t.Errorf("Reasons = %q, want %q", ex.Decision.Reasons, tt.wantReasons)
			}
			if called != tt.wantNext {
				t.Errorf("next called = %v, want %v", called, tt.wantNext)
			}
			if ex.Decision.Allow != tt.wantNext {
				t.Errorf("Decision.Allow = %v, want %v", ex.Decision.Allow, tt.wantNext)
			}
			if tt.wantNext {
				if err != nil {
					t.Fatalf("Handle: %v", err)
				}
				return
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) {
				t.Fatalf("Handle = %v, want a *gateway.Error", err)
			}
			if ge.Status != tt.wantStatus || ge.Code != tt.wantCode {
				t.Errorf("status, code = %d, %q; want %d, %q", ge.Status, ge.Code, tt.wantStatus, tt.wantCode)
			}
			switch ge.Status {
			case 403:
				if ge.Type != gateway.TypePermission || ge.Message != "the request is not permitted by policy" {
					t.Errorf("type, message = %q, %q", ge.Type, ge.Message)
				}
			case 500, 503:
				if ge.Type != gateway.TypeServer {
					t.Errorf("type = %q, want %q", ge.Type, gateway.TypeServer)
				}
			}
			for _, r := range ex.Decision.Reasons {
				if strings.Contains(ge.Message, r) {
					t.Errorf("public message %q leaks reason %q", ge.Message, r)
				}
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("Handle = %v, want it to wrap %v", err, tt.wantCause)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("log = %q, want it to contain %q", logs.String(), tt.wantLog)
			}
		})
	}
}

func TestStageObligationsKeptForAudit(t *testing.T) {
	s := NewStage(mustLoad(t, "testdata/obligations"), nil)
	ex := newExchange()
	ex.Action = "unknown"
	_ = s.Handle(ex, func(*gateway.Exchange) error { return nil })
	if len(ex.Decision.Obligations) != 2 {
		t.Errorf("Obligations = %v, want the policy's two obligations kept in the decision", ex.Decision.Obligations)
	}
}

func TestStageSwap(t *testing.T) {
	basic, nonbool := mustLoad(t, "testdata/basic"), mustLoad(t, "testdata/nonbool")
	s := NewStage(basic, nil)
	next := func(*gateway.Exchange) error { return nil }
	if err := s.Handle(newExchange(), next); err != nil {
		t.Fatalf("before swap: %v", err)
	}
	if old := s.Swap(nonbool); old != basic {
		t.Errorf("Swap returned %p, want the previous engine %p", old, basic)
	}
	if s.Engine() != nonbool {
		t.Error("Engine() is not the swapped-in engine")
	}
	ex := newExchange()
	err := s.Handle(ex, next)
	if ge := gateway.AsError(err); ge.Code != CodeError {
		t.Errorf("after swap: %v, want %s", err, CodeError)
	}
	if ex.Decision.PolicyVersion != nonbool.Version() {
		t.Errorf("PolicyVersion = %q, want the new engine's %q", ex.Decision.PolicyVersion, nonbool.Version())
	}
}

// TestStageQuickstart runs exchanges through the example policy, checking
// that the input the stage builds is the one authz_test.rego assumes.
func TestStageQuickstart(t *testing.T) {
	s := NewStage(mustLoad(t, "../../examples/quickstart/policy"), nil)
	tests := []struct {
		name        string
		edit        func(*gateway.Exchange)
		wantAllow   bool
		wantReasons []string
	}{
		{"exact scope", nil, true,
			[]string{"scope inference:chat.completions grants chat.completions on segment inference"}},
		{"wildcard scope", func(ex *gateway.Exchange) { ex.Principal.Scopes = []string{"inference:*"} }, true,
			[]string{"scope inference:* grants chat.completions on segment inference"}},
		{"missing scope", func(ex *gateway.Exchange) { ex.Principal.Scopes = nil }, false,
			[]string{ReasonDefaultDeny}},
		{"wrong segment", func(ex *gateway.Exchange) { ex.Route.Segment = "training" }, false,
			[]string{ReasonDefaultDeny}},
		{"blocked model", func(ex *gateway.Exchange) { ex.Model = "internal-finetune-raw" }, false,
			[]string{"model internal-finetune-raw is blocked by policy"}},
		{"expired credential", func(ex *gateway.Exchange) { ex.Principal.ExpiresAt = testStart.Add(-time.Second) }, false,
			[]string{"credential key_01 expired at 2025-06-02T09:59:59Z"}},
		{"unexpired credential", func(ex *gateway.Exchange) { ex.Principal.ExpiresAt = testStart.Add(time.Hour) }, true,
			[]string{"scope inference:chat.completions grants chat.completions on segment inference"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := newExchange()
			if tt.edit != nil {
				tt.edit(ex)
			}
			err := s.Handle(ex, func(*gateway.Exchange) error { return nil })
			if (err == nil) != tt.wantAllow || ex.Decision.Allow != tt.wantAllow {
				t.Errorf("Handle = %v, Allow = %v; want allow %v", err, ex.Decision.Allow, tt.wantAllow)
			}
			if !slices.Equal(ex.Decision.Reasons, tt.wantReasons) {
				t.Errorf("Reasons = %q, want %q", ex.Decision.Reasons, tt.wantReasons)
			}
		})
	}
}

// TestStageObligationEnforcers: a known obligation is enforced by the
// registered enforcer; without one, the allow becomes a deny.
func TestStageObligationEnforcers(t *testing.T) {
	e, err := Load(context.Background(), "testdata/require_mfa")
	if err != nil {
		t.Fatal(err)
	}
	stepUp := gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "mfa_required", nil, "step up")
	for _, tc := range []struct {
		name     string
		enforcer ObligationFunc
		mfa      bool
		status   int // 0: next called
	}{
		{"no enforcer denies", nil, false, 403},
		{"enforcer refuses", func(ex *gateway.Exchange, v any) error {
			if v == true && !ex.Principal.MFA {
				return stepUp
			}
			return nil
		}, false, 401},
		{"enforcer passes", func(ex *gateway.Exchange, v any) error {
			if v == true && !ex.Principal.MFA {
				return stepUp
			}
			return nil
		}, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewStage(e, nil)
			if tc.enforcer != nil {
				s.Enforce(ObligationRequireMFA, tc.enforcer)
			}
			ex := newExchange()
			ex.Principal.MFA = tc.mfa
			called := false
			err := s.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
			if tc.status == 0 {
				if err != nil || !called {
					t.Fatalf("err %v called %v", err, called)
				}
				return
			}
			if called || err == nil || gateway.AsError(err).Status != tc.status {
				t.Fatalf("err %v called %v, want status %d", err, called, tc.status)
			}
			if ex.Decision == nil || ex.Decision.Obligations["require_mfa"] != true || ex.Decision.Allow {
				t.Fatalf("decision %+v, want a deny that keeps the obligation", ex.Decision)
			}
			want := "obligation not met: require_mfa"
			if tc.enforcer == nil {
				want = "unsupported obligation: require_mfa (not enabled on this gateway)"
			}
			if !slices.Contains(ex.Decision.Reasons, want) {
				t.Errorf("reasons %q lack %q", ex.Decision.Reasons, want)
			}
		})
	}
}

// TestStageOwnEnforcers runs the obligations through the enforcers the
// policy package provides (Enforcers: max_tokens, audit_level). mask comes
// from the guard stage and rate_class from the limit stage, neither
// registered here, so both deny.
func TestStageOwnEnforcers(t *testing.T) {
	e := mustLoad(t, "testdata/obligations")
	tests := []struct {
		action      string
		body        string
		wantNext    bool
		wantReasons []string
		wantBody    string
		wantOblig   gateway.Obligations
	}{
		{action: "max_tokens", body: `{"model":"m","max_tokens":1000}`, wantNext: true,
			wantReasons: []string{"allowed with obligations"}, wantBody: `{"model":"m","max_tokens":64}`,
			wantOblig: gateway.Obligations{MaxTokens: 64, Applied: []string{"max_tokens:64:lowered"}}},
		{action: "audit_full", body: `{}`, wantNext: true, wantReasons: []string{"allowed with obligations"}, wantBody: `{}`,
			wantOblig: gateway.Obligations{AuditLevel: "full", Applied: []string{"audit_level:full"}}},
		{action: "audit_standard", body: `{}`, wantNext: true, wantReasons: []string{"allowed with obligations"}, wantBody: `{}`,
			wantOblig: gateway.Obligations{MaxTokens: 128, Applied: []string{"audit_level:standard", "max_tokens:128:kept"}}},
		{action: "mask", body: `{}`, wantReasons: []string{"unsupported obligation: mask (not enabled on this gateway)"}, wantBody: `{}`},
		{action: "rate_class", body: `{}`, wantReasons: []string{"unsupported obligation: rate_class (not enabled on this gateway)"}, wantBody: `{}`},
		// One obligation without an enforcer: the others are not carried out.
		{action: "all", body: `{"max_tokens":1000}`,
			wantReasons: []string{"unsupported obligation: mask (not enabled on this gateway)",
				"unsupported obligation: rate_class (not enabled on this gateway)",
				"unsupported obligation: require_mfa (not enabled on this gateway)"},
			wantBody: `{"max_tokens":1000}`},
		{action: "max_tokens", body: `not json`,
			wantReasons: []string{"allowed with obligations", "obligation not met: max_tokens"}, wantBody: `not json`,
			wantOblig: gateway.Obligations{MaxTokens: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.body, func(t *testing.T) {
			s := NewStage(e, nil)
			for kind, fn := range Enforcers() {
				s.Enforce(kind, fn)
			}
			if got := s.Enforced(); !slices.Equal(got, []string{ObligationAuditLevel, ObligationMaxTokens}) {
				t.Fatalf("Enforced() = %q", got)
			}
			ex := newExchange()
			ex.Action, ex.Body = tt.action, []byte(tt.body)
			called := false
			err := s.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
			if called != tt.wantNext || (err == nil) != tt.wantNext || ex.Decision.Allow != tt.wantNext {
				t.Fatalf("next %v, err %v, allow %v; want next %v", called, err, ex.Decision.Allow, tt.wantNext)
			}
			if !tt.wantNext && gateway.AsError(err).Status != http.StatusForbidden {
				t.Errorf("err = %v, want 403", err)
			}
			if !slices.Equal(ex.Decision.Reasons, tt.wantReasons) {
				t.Errorf("reasons = %q, want %q", ex.Decision.Reasons, tt.wantReasons)
			}
			if string(ex.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", ex.Body, tt.wantBody)
			}
			if ex.Obligations.MaxTokens != tt.wantOblig.MaxTokens || ex.Obligations.AuditLevel != tt.wantOblig.AuditLevel ||
				!slices.Equal(ex.Obligations.Applied, tt.wantOblig.Applied) {
				t.Errorf("obligations = %+v, want %+v", ex.Obligations, tt.wantOblig)
			}
		})
	}
}
