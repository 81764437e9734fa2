package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

const (
	secretBody  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"my card is 4111 1111 1111 1111, key sk-live-SECRET"}]}`
	secretQuery = "api_key=sk-query-SECRET"
	secretAuthz = "Bearer sk-header-SECRET"
)

func newExchange(ctx context.Context) *gateway.Exchange {
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/chat/completions?"+secretQuery, strings.NewReader(secretBody))
	req.Header.Set("Authorization", secretAuthz)
	return &gateway.Exchange{
		ID:       "req-stage-1",
		Start:    time.Now().Add(-15 * time.Millisecond),
		Request:  req,
		Writer:   gateway.NewResponseWriter(httptest.NewRecorder()),
		SourceIP: netip.MustParseAddr("198.51.100.7"),
		Body:     []byte(secretBody),
	}
}

func identified(ex *gateway.Exchange) {
	ex.Principal = &gateway.Principal{Kind: gateway.KindAgent, ID: "spiffe://example.org/agent/bot", OnBehalfOf: "alice",
		AuthMethod: "api_key", CredentialID: "key_01", Issuer: "warden", Scopes: []string{"chat"}}
	ex.Route = &gateway.Route{Name: "openai", Segment: "inference", Upstream: "https://api.openai.example", API: "openai"}
	ex.Action, ex.Model, ex.Stream = "chat.completions", "gpt-4o-mini", true
}

// onlyRecord returns the only record of the log in dir, which must verify.
func onlyRecord(t *testing.T, dir string) Record {
	t.Helper()
	if _, err := verify(t, dir); err != nil {
		t.Fatal(err)
	}
	var recs []Record
	if err := ReadAll(dir, func(r Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	return recs[0]
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestStageRecordsOutcomes(t *testing.T) {
	bodySum := sha256.Sum256([]byte(secretBody))
	tests := []struct {
		name       string
		next       func(ex *gateway.Exchange) error
		wantStatus int
		wantCode   string
		wantReason string
		wantOut    int64
		wantAllow  *bool
	}{
		{
			name: "allowed",
			next: func(ex *gateway.Exchange) error {
				identified(ex)
				ex.Decision = &gateway.Decision{Allow: true, Reasons: []string{"role:engineer"},
					Obligations: map[string]any{"max_tokens": 256}, PolicyVersion: "v3"}
				ex.UpstreamStatus, ex.UpstreamTime = 200, 8*time.Millisecond
				ex.Writer.WriteHeader(http.StatusOK)
				_, _ = ex.Writer.Write([]byte("data: hello\n\n"))
				return nil
			},
			wantStatus: 200, wantOut: int64(len("data: hello\n\n")), wantAllow: ptr(true),
		},
		{
			name: "denied by policy",
			next: func(ex *gateway.Exchange) error {
				identified(ex)
				ex.Decision = &gateway.Decision{Allow: false, Reasons: []string{"segment_forbidden"}, PolicyVersion: "v3"}
				return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "policy_denied",
					errors.New("rule deny_training matched"), "the policy does not allow this request")
			},
			wantStatus: 403, wantCode: "policy_denied", wantReason: "rule deny_training matched", wantAllow: ptr(false),
		},
		{
			name: "unauthenticated",
			next: func(ex *gateway.Exchange) error {
				return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_api_key",
					errors.New("key id key_99 not found"), "invalid API key")
			},
			wantStatus: 401, wantCode: "invalid_api_key", wantReason: "key id key_99 not found",
		},
		{
			name:       "internal fault",
			next:       func(ex *gateway.Exchange) error { return errors.New("boom") },
			wantStatus: 500, wantCode: "internal_error", wantReason: "boom",
		},
		{
			name: "error after the response started",
			next: func(ex *gateway.Exchange) error {
				ex.Writer.WriteHeader(http.StatusOK)
				_, _ = ex.Writer.Write([]byte("partial"))
				return gateway.Errorf(http.StatusBadGateway, gateway.TypeUpstream, "upstream_error",
					errors.New("stream reset"), "upstream failed")
			},
			wantStatus: 200, wantCode: "upstream_error", wantReason: "stream reset", wantOut: 7,
		},
		{
			name:       "nothing written, no error",
			next:       func(ex *gateway.Exchange) error { return nil },
			wantStatus: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := openTemp(t, Options{})
			s := NewStage(l, quietLogger())
			ex := newExchange(context.Background())
			called := false
			var orig error
			err := s.Handle(ex, func(ex *gateway.Exchange) error { called = true; orig = tt.next(ex); return orig })
			if !called {
				t.Fatal("next not called")
			}
			if err != orig { //nolint:errorlint // the very same error must come back
				t.Errorf("Handle returned %v, want the original %v", err, orig)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			r := onlyRecord(t, path)
			if r.Status != tt.wantStatus || r.Code != tt.wantCode || !strings.Contains(r.Reason, tt.wantReason) {
				t.Errorf("status %d code %q reason %q; want %d %q %q", r.Status, r.Code, r.Reason,
					tt.wantStatus, tt.wantCode, tt.wantReason)
			}
			if tt.wantReason == "" && r.Reason != "" {
				t.Errorf("reason %q, want none", r.Reason)
			}
			if r.BytesOut != tt.wantOut {
				t.Errorf("bytes_out %d, want %d", r.BytesOut, tt.wantOut)
			}
			if r.RequestID != "req-stage-1" || r.Method != "POST" || r.Path != "/v1/chat/completions" ||
				r.SourceIP != "198.51.100.7" || r.BytesIn != int64(len(secretBody)) ||
				r.BodySHA256 != hex.EncodeToString(bodySum[:]) || r.LatencyMS < 15 {
				t.Errorf("request fields: %+v", r)
			}
			if tt.wantAllow == nil {
				if r.Decision != nil || r.Principal != nil {
					t.Errorf("decision %+v principal %+v, want none", r.Decision, r.Principal)
				}
				return
			}
			if r.Decision == nil || r.Decision.Allow != *tt.wantAllow || r.Decision.PolicyVersion != "v3" {
				t.Errorf("decision %+v", r.Decision)
			}
			if p := r.Principal; p == nil || *p != (Principal{Kind: "agent", ID: "spiffe://example.org/agent/bot",
				OnBehalfOf: "alice", AuthMethod: "api_key", CredentialID: "key_01", Issuer: "warden"}) {
				t.Errorf("principal %+v", r.Principal)
			}
			if r.Resource == nil || *r.Resource != (Resource{Route: "openai", Segment: "inference", API: "openai", Model: "gpt-4o-mini"}) ||
				r.Upstream != "https://api.openai.example" || r.Action != "chat.completions" || !r.Stream {
				t.Errorf("resource fields: %+v %+v", r, r.Resource)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestStageRefusesWhenUnhealthy(t *testing.T) {
	fs := newFaults()
	l, _ := openTemp(t, Options{wrap: fs.wrap})
	fs.set(func(f *faults) { f.failSync["seg"] = errors.New("EIO") })
	_ = l.Append(context.Background(), sampleRecord(1)) // fails the log
	if l.Healthy() == nil {
		t.Fatal("log still healthy")
	}
	writes := fs.count(fs.writes, "seg")
	s := NewStage(l, quietLogger())
	for range 3 {
		ex := newExchange(context.Background())
		err := s.Handle(ex, func(*gateway.Exchange) error {
			t.Fatal("next called while the audit log is unavailable")
			return nil
		})
		ge := gateway.AsError(err)
		if ge.Status != http.StatusServiceUnavailable || ge.Code != "audit_unavailable" || ge.Type != gateway.TypeServer ||
			ge.Message != "the audit log is unavailable; requests are refused" {
			t.Errorf("error %+v", ge)
		}
		if ex.Writer.Started() {
			t.Error("the stage wrote a response itself")
		}
	}
	if fs.count(fs.writes, "seg") != writes {
		t.Error("an append was attempted on an unhealthy log")
	}
	_ = l.Close()

	// A closed log refuses too.
	l2, _ := openTemp(t, Options{})
	l2.Close()
	err := NewStage(l2, quietLogger()).Handle(newExchange(context.Background()), func(*gateway.Exchange) error {
		t.Fatal("next called on a closed log")
		return nil
	})
	if gateway.AsError(err).Code != "audit_unavailable" {
		t.Errorf("closed log: %v", err)
	}
}

func TestStageAppendFailure(t *testing.T) {
	denied := gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "policy_denied", nil, "denied")
	tests := []struct {
		name    string
		next    func(ex *gateway.Exchange) error
		want503 bool
	}{
		{"denial replaced before the response started", func(*gateway.Exchange) error { return denied }, true},
		{"success replaced before the response started", func(*gateway.Exchange) error { return nil }, true},
		{"response already started: connection aborted", func(ex *gateway.Exchange) error {
			ex.Writer.WriteHeader(http.StatusOK)
			_, _ = ex.Writer.Write([]byte("ok"))
			return nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFaults()
			l, _ := openTemp(t, Options{wrap: fs.wrap})
			defer l.Close()
			fs.set(func(f *faults) { f.failWrite["seg"] = errors.New("no space left on device") })
			var logs bytes.Buffer
			s := NewStage(l, slog.New(slog.NewTextHandler(&logs, nil)))
			called := false
			var aborted any
			var err error
			func() {
				defer func() { aborted = recover() }()
				err = s.Handle(newExchange(context.Background()), func(ex *gateway.Exchange) error {
					called = true
					return tt.next(ex)
				})
			}()
			if !tt.want503 && aborted != http.ErrAbortHandler { //nolint:errorlint // sentinel compared by identity
				t.Errorf("recovered %v, want http.ErrAbortHandler: a started response must not complete unrecorded", aborted)
			}
			if tt.want503 && aborted != nil {
				t.Errorf("unexpected panic %v", aborted)
			}
			if !called {
				t.Fatal("next not called while the log was healthy")
			}
			if tt.want503 {
				ge := gateway.AsError(err)
				if ge.Status != 503 || ge.Code != "audit_unavailable" || !strings.Contains(ge.Error(), "no space left") {
					t.Errorf("error %v, want 503 audit_unavailable", err)
				}
			} else if err != nil {
				t.Errorf("error %v, want the original nil", err)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("append failure not logged: %s", logs.String())
			}
		})
	}
}

func TestStageRecordsAndRepanics(t *testing.T) {
	tests := []struct {
		name       string
		value      any
		wantReason string
	}{
		{"abort handler", http.ErrAbortHandler, "stream aborted: net/http: abort Handler"},
		{"other panic", "index out of range", "panic: index out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, path := openTemp(t, Options{})
			s := NewStage(l, quietLogger())
			ex := newExchange(context.Background())
			var got any
			func() {
				defer func() { got = recover() }()
				_ = s.Handle(ex, func(ex *gateway.Exchange) error {
					ex.Writer.WriteHeader(http.StatusOK)
					_, _ = ex.Writer.Write([]byte("data: par"))
					panic(tt.value)
				})
			}()
			if got != tt.value {
				t.Fatalf("re-panicked with %v, want %v", got, tt.value)
			}
			l.Close()
			r := onlyRecord(t, path)
			if r.Code != "aborted" || r.Status != 200 || r.BytesOut != 9 || r.Reason != tt.wantReason {
				t.Errorf("record: status %d code %q reason %q bytes_out %d", r.Status, r.Code, r.Reason, r.BytesOut)
			}
		})
	}
}

func TestStageClientDisconnectStillRecords(t *testing.T) {
	l, path := openTemp(t, Options{})
	s := NewStage(l, quietLogger())
	ctx, cancel := context.WithCancel(context.Background())
	ex := newExchange(ctx)
	err := s.Handle(ex, func(ex *gateway.Exchange) error {
		cancel() // the client hangs up mid-exchange
		return gateway.Errorf(499, gateway.TypeInvalidRequest, "client_closed", context.Canceled, "client closed")
	})
	if gateway.AsError(err).Code != "client_closed" {
		t.Errorf("err %v", err)
	}
	l.Close()
	if r := onlyRecord(t, path); r.Code != "client_closed" {
		t.Errorf("record %+v", r)
	}
}

// Nothing secret reaches the audit log: not the body, not the query, not the
// client's credentials.
func TestStageRecordsNoSecrets(t *testing.T) {
	l, path := openTemp(t, Options{})
	s := NewStage(l, quietLogger())
	ex := newExchange(context.Background())
	_ = s.Handle(ex, func(ex *gateway.Exchange) error {
		identified(ex)
		ex.Route.Upstream = "https://user:upstream-SECRET@api.example/v1?token=SECRET"
		return nil
	})
	l.Close()
	var data []byte
	for _, p := range segFiles(t, path) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	for _, secret := range []string{"SECRET", "4111 1111", "sk-", "api_key=", "messages"} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the audit log contains %q:\n%s", secret, data)
		}
	}
	sum := sha256.Sum256([]byte(secretBody))
	if !bytes.Contains(data, []byte(`"body_sha256":"`+hex.EncodeToString(sum[:])+`"`)) {
		t.Errorf("body digest missing:\n%s", data)
	}
	if r := onlyRecord(t, path); r.Upstream != "https://api.example/v1" {
		t.Errorf("upstream %q", r.Upstream)
	}
}

func TestStageConcurrent(t *testing.T) {
	l, path := openTemp(t, Options{})
	s := NewStage(l, quietLogger())
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_ = s.Handle(newExchange(context.Background()), func(*gateway.Exchange) error { return nil })
		})
	}
	wg.Wait()
	l.Close()
	if rep, err := verify(t, path); err != nil || rep.Records != 50 {
		t.Errorf("Verify: %+v %v", rep, err)
	}
}

// The record carries what the later stages did: obligations, findings,
// grants and usage; at audit level "full" also the request's header names
// and the digest of the response body.
func TestStageRecordsStagesOutcomes(t *testing.T) {
	const answer = `{"choices":[{"message":{"content":"hi"}}]}`
	tests := []struct {
		name      string
		level     string
		early     bool // a byte is sent before the audit level is set
		wantFull  bool
		wantRespH bool
	}{
		{"standard level", "", false, false, false},
		{"full level", "full", false, true, true},
		{"full level set after bytes were sent", "full", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := openTemp(t, Options{})
			s := NewStage(l, quietLogger())
			ex := newExchange(context.Background())
			orig := ex.Writer
			_ = s.Handle(ex, func(ex *gateway.Exchange) error {
				identified(ex)
				if tt.early {
					ex.Writer.WriteHeader(http.StatusOK)
					_, _ = ex.Writer.Write([]byte("x"))
				}
				ex.Decision = &gateway.Decision{Allow: true, PolicyVersion: "v9"}
				ex.Obligations = gateway.Obligations{MaxTokens: 256, AuditLevel: tt.level, Applied: []string{"cap_max_tokens:256"},
					Mask: map[string]string{"email": "mask"}}
				ex.Grants = []gateway.Grant{{ID: "grant-7", Reason: "incident 42", Principal: "bot"}}
				ex.Findings = []gateway.Finding{{Guard: "dlp", Type: "email", Class: "pii", Where: "request", Start: 10, End: 27, Action: "masked"}}
				ex.Usage = gateway.Usage{PromptTokens: 11, CompletionTokens: 22, Reported: true}
				ex.Tool = "search"
				_, _ = ex.Writer.Write([]byte(answer))
				return nil
			})
			if ex.Writer != orig {
				t.Error("the exchange's writer was not restored")
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			r := onlyRecord(t, dir)
			if o := r.Obligations; o == nil || o.MaxTokens != 256 || o.AuditLevel != tt.level || len(o.Applied) != 1 || o.Mask["email"] != "mask" {
				t.Errorf("obligations %+v", r.Obligations)
			}
			if len(r.Grants) != 1 || r.Grants[0] != "grant-7" {
				t.Errorf("grants %v", r.Grants)
			}
			if len(r.Findings) != 1 || r.Findings[0] != (Finding{Guard: "dlp", Type: "email", Class: "pii", Where: "request", Start: 10, End: 27, Action: "masked"}) {
				t.Errorf("findings %+v", r.Findings)
			}
			if u := r.Usage; u == nil || *u != (Usage{PromptTokens: 11, CompletionTokens: 22, Reported: true}) {
				t.Errorf("usage %+v", r.Usage)
			}
			if r.Resource == nil || r.Resource.Tool != "search" {
				t.Errorf("resource %+v", r.Resource)
			}
			if (r.Full != nil) != tt.wantFull {
				t.Fatalf("full %+v, want present: %v", r.Full, tt.wantFull)
			}
			if r.Full == nil {
				return
			}
			if strings.Join(r.Full.RequestHeaders, ",") != "Authorization" {
				t.Errorf("request headers %v", r.Full.RequestHeaders)
			}
			sum := sha256.Sum256([]byte(answer))
			if got := r.Full.ResponseSHA256; tt.wantRespH != (got == hex.EncodeToString(sum[:])) || (!tt.wantRespH && got != "") {
				t.Errorf("response sha256 %q", got)
			}
		})
	}
}

// Flushing (SSE) reaches the client's writer through the audit stage.
func TestStageKeepsFlushing(t *testing.T) {
	l, _ := openTemp(t, Options{})
	defer l.Close()
	rec := httptest.NewRecorder()
	ex := newExchange(context.Background())
	ex.Writer = gateway.NewResponseWriter(rec)
	_ = NewStage(l, quietLogger()).Handle(ex, func(ex *gateway.Exchange) error {
		_, _ = ex.Writer.Write([]byte("data: 1\n\n"))
		if err := http.NewResponseController(ex.Writer).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		return nil
	})
	if !rec.Flushed || rec.Body.String() != "data: 1\n\n" {
		t.Errorf("flushed %v body %q", rec.Flushed, rec.Body.String())
	}
}
