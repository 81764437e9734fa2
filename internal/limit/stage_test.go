package limit

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-ai/warden/internal/gateway"
)

var testTok = func() *Tokenizer {
	t, err := NewTokenizer()
	if err != nil {
		panic(err)
	}
	return t
}()

// rig runs exchanges through the limit stage between a setup stage (what
// identify, body and authorize would have set) and a fake upstream.
type rig struct {
	t        *testing.T
	stage    *Stage
	now      time.Time
	reg      *prometheus.Registry
	upstream func(ex *gateway.Exchange) error
	last     *gateway.Exchange
}

func newRig(t *testing.T, o Options) *rig {
	r := &rig{t: t, now: t0, reg: prometheus.NewRegistry()}
	if o.Backend == nil {
		o.Backend = NewMemory(MemoryOptions{})
	}
	o.Tokenizer = testTok
	o.Registerer = r.reg
	o.Now = func() time.Time { return r.now }
	st, err := NewStage(o)
	if err != nil {
		t.Fatal(err)
	}
	r.stage = st
	r.upstream = jsonUpstream(10, 5)
	return r
}

// jsonUpstream answers a chat completion reporting the given usage.
func jsonUpstream(prompt, completion int) func(ex *gateway.Exchange) error {
	return func(ex *gateway.Exchange) error {
		ex.Writer.Header().Set("Content-Type", "application/json")
		ex.Writer.WriteHeader(http.StatusOK)
		_, _ = fmt.Fprintf(ex.Writer, `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi there"}}],"usage":{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}`,
			prompt, completion, prompt+completion)
		return nil
	}
}

type call struct {
	kind, id   string
	rateClass  string // set as an authorize stage's enforcer would
	obligation any    // passed to EnforceRateClass when not nil
	body       string
	route      string
}

func (r *rig) do(c call) *httptest.ResponseRecorder {
	r.t.Helper()
	if c.kind == "" {
		c.kind = gateway.KindService
	}
	if c.id == "" {
		c.id = "svc-a"
	}
	if c.route == "" {
		c.route = "openai"
	}
	if c.body == "" {
		c.body = `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}`
	}
	setup := gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
		ex.Principal = &gateway.Principal{Kind: c.kind, ID: c.id}
		ex.Route = &gateway.Route{Name: "inference", API: c.route}
		ex.Body = []byte(c.body)
		var m struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.Unmarshal(ex.Body, &m)
		ex.Model, ex.Stream = m.Model, m.Stream
		ex.Decision = &gateway.Decision{Allow: true}
		ex.Obligations.RateClass = c.rateClass
		if c.obligation != nil {
			if err := r.stage.EnforceRateClass(ex, c.obligation); err != nil {
				return err
			}
		}
		r.last = ex
		return next(ex)
	})
	up := gateway.StageFunc(func(ex *gateway.Exchange, _ func(*gateway.Exchange) error) error { return r.upstream(ex) })
	h := gateway.NewHandler([]gateway.Stage{setup, r.stage, up}, gateway.HandlerOptions{Logger: slog.New(slog.DiscardHandler)})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(c.body)))
	return rec
}

func errorCode(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var b struct {
		Error struct{ Type, Code, Message string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return b.Error.Code
}

func TestStageRequests(t *testing.T) {
	r := newRig(t, Options{
		Classes:  []Class{{Name: "std", Requests: &RequestLimit{Limit: 3, Per: time.Minute}}},
		Defaults: map[string]string{gateway.KindService: "std"},
	})
	for i := range 3 {
		if rec := r.do(call{}); rec.Code != 200 {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	rec := r.do(call{})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "20" || errorCode(t, rec) != CodeRateLimited {
		t.Fatalf("4th request: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `"type":"rate_limit_error"`) {
		t.Fatalf("not an OpenAI-shaped rate limit error: %s", rec.Body)
	}
	// Another principal, and a kind without a default class, are not affected.
	if rec := r.do(call{id: "svc-b"}); rec.Code != 200 {
		t.Fatalf("another principal: %d", rec.Code)
	}
	for range 5 {
		if rec := r.do(call{kind: gateway.KindUser}); rec.Code != 200 {
			t.Fatalf("a kind without a default: %d", rec.Code)
		}
	}
	r.now = r.now.Add(20 * time.Second)
	if rec := r.do(call{}); rec.Code != 200 {
		t.Fatalf("after Retry-After: %d", rec.Code)
	}
	if got := counterValue(t, r.stage.m.refusedC.WithLabelValues("std", "requests")); got != 1 {
		t.Fatalf("refused metric %v", got)
	}
}

// TestStageTokenBudgetReconciled: the reservation (prompt + max_tokens)
// is replaced by the reported usage after each response, so a budget of
// 100 fits three requests reserving 60 but using 20 each; the fourth is
// refused until the minute ends.
func TestStageTokenBudgetReconciled(t *testing.T) {
	r := newRig(t, Options{
		Classes:  []Class{{Name: "tok", Tokens: []TokenLimit{{Window: Minute, Limit: 100}, {Window: Month, Limit: 1000}}}},
		Defaults: map[string]string{gateway.KindService: "tok"},
	})
	r.upstream = jsonUpstream(12, 8)
	body := `{"model":"gpt-4o","max_tokens":50,"messages":[{"role":"user","content":"Hello"}]}`
	est, err := testTok.EstimateRequest([]byte(body), "")
	if err != nil || est.Completion != 50 || est.Prompt < 5 || est.Prompt > 15 {
		t.Fatalf("estimate %+v %v", est, err)
	}
	for i := range 3 {
		rec := r.do(call{body: body})
		if rec.Code != 200 {
			t.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
		if u := r.last.Usage; u != (gateway.Usage{PromptTokens: 12, CompletionTokens: 8, Reported: true}) {
			t.Fatalf("usage %+v", u)
		}
	}
	rec := r.do(call{body: body})
	if rec.Code != http.StatusTooManyRequests || errorCode(t, rec) != CodeTokenBudget || rec.Header().Get("Retry-After") != "30" {
		t.Fatalf("over budget: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if !strings.Contains(rec.Body.String(), "minute") {
		t.Fatalf("the message does not name the window: %s", rec.Body)
	}
	// A request that can never fit is a 400, not a 429 to retry.
	rec = r.do(call{body: `{"model":"gpt-4o","max_tokens":5000,"messages":[{"role":"user","content":"Hi"}]}`})
	if rec.Code != http.StatusBadRequest || errorCode(t, rec) != CodeReservationLarge {
		t.Fatalf("reservation above the budget: %d %s", rec.Code, rec.Body)
	}
	r.now = r.now.Add(30 * time.Second) // next minute
	if rec := r.do(call{body: body}); rec.Code != 200 {
		t.Fatalf("next minute: %d %s", rec.Code, rec.Body)
	}
	if got := counterValue(t, r.stage.m.tokensC.WithLabelValues("tok", "reported")); got != 80 {
		t.Fatalf("tokens metric %v, want 80", got)
	}
}

// TestStageStreamUsage: a stream's final usage chunk is the usage; a
// stream without one is counted from its content.
func TestStageStreamUsage(t *testing.T) {
	r := newRig(t, Options{
		Classes:  []Class{{Name: "tok", Tokens: []TokenLimit{{Window: Day, Limit: 1_000_000}}}},
		Defaults: map[string]string{gateway.KindService: "tok"},
	})
	stream := func(usage bool) func(ex *gateway.Exchange) error {
		return func(ex *gateway.Exchange) error {
			ex.Writer.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			ex.Writer.WriteHeader(200)
			for _, w := range []string{"Hello", " world", ",", " how", " are", " you", "?"} {
				fmt.Fprintf(ex.Writer, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", w)
				ex.Writer.Flush()
			}
			if usage {
				io.WriteString(ex.Writer, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":40,\"completion_tokens\":7}}\n\n")
			}
			io.WriteString(ex.Writer, "data: [DONE]\n\n")
			return nil
		}
	}
	body := `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Say hello"}]}`
	r.upstream = stream(true)
	rec := r.do(call{body: body})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "data: [DONE]") || !rec.Flushed {
		t.Fatalf("stream: %d flushed=%v %s", rec.Code, rec.Flushed, rec.Body)
	}
	if u := r.last.Usage; u != (gateway.Usage{PromptTokens: 40, CompletionTokens: 7, Reported: true}) {
		t.Fatalf("reported stream usage %+v", u)
	}
	r.upstream = stream(false)
	r.do(call{body: body})
	est, _ := testTok.EstimateRequest([]byte(body), "")
	if u := r.last.Usage; u.Reported || u.CompletionTokens != 7 || u.PromptTokens != est.Prompt {
		t.Fatalf("counted stream usage %+v (prompt estimate %d)", u, est.Prompt)
	}
	// An upstream error charges nothing: the reservation is refunded.
	r.upstream = func(ex *gateway.Exchange) error {
		return gateway.Errorf(http.StatusBadGateway, gateway.TypeUpstream, "upstream_unavailable", nil, "down")
	}
	if rec := r.do(call{body: body}); rec.Code != http.StatusBadGateway {
		t.Fatalf("upstream error: %d", rec.Code)
	}
	if u := r.last.Usage; u.CompletionTokens != 0 || u.Reported {
		t.Fatalf("usage after an upstream error %+v", u)
	}
}

// TestStageRateClassObligation: the policy's rate_class selects the
// class (here for a kind with no default), and a class that is not
// configured refuses the exchange.
func TestStageRateClassObligation(t *testing.T) {
	r := newRig(t, Options{
		Classes: []Class{{Name: "slow", Requests: &RequestLimit{Limit: 1, Per: time.Hour}}},
	})
	if rec := r.do(call{obligation: "slow"}); rec.Code != 200 {
		t.Fatalf("first under the obligation: %d", rec.Code)
	}
	if got := r.last.Obligations; got.RateClass != "slow" || len(got.Applied) != 1 || got.Applied[0] != "rate_class:slow" {
		t.Fatalf("obligations %+v", got)
	}
	rec := r.do(call{obligation: "slow"})
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "3600" {
		t.Fatalf("second under the obligation: %d %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	if rec := r.do(call{}); rec.Code != 200 {
		t.Fatalf("without the obligation (no default): %d", rec.Code)
	}
	rec = r.do(call{obligation: "gold"})
	if rec.Code != http.StatusForbidden || errorCode(t, rec) != "policy_error" {
		t.Fatalf("unknown class: %d %s", rec.Code, rec.Body)
	}
	if rec := r.do(call{obligation: 42}); rec.Code != http.StatusForbidden {
		t.Fatalf("a non-string class: %d", rec.Code)
	}
	// A class set without the enforcer (a wiring fault) fails closed.
	if rec := r.do(call{rateClass: "gold"}); rec.Code != http.StatusInternalServerError {
		t.Fatalf("unknown class reaching the stage: %d", rec.Code)
	}
}

// TestStageFailureMode: a Redis that is down refuses with 503 (closed,
// the default) or lets the exchange through, counted (open).
func TestStageFailureMode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprint("open=", open), func(t *testing.T) {
			rb, err := NewRedis(RedisOptions{Addrs: []string{dead}, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer rb.Close()
			r := newRig(t, Options{
				Backend:  rb,
				FailOpen: open,
				Classes:  []Class{{Name: "std", Requests: &RequestLimit{Limit: 1, Per: time.Hour}, Tokens: []TokenLimit{{Window: Day, Limit: 1000}}}},
				Defaults: map[string]string{gateway.KindService: "std"},
			})
			for range 3 {
				rec := r.do(call{})
				switch {
				case !open && (rec.Code != http.StatusServiceUnavailable || errorCode(t, rec) != CodeUnavailable):
					t.Fatalf("fail closed: %d %s", rec.Code, rec.Body)
				case open && rec.Code != 200:
					t.Fatalf("fail open: %d %s", rec.Code, rec.Body)
				}
			}
			outcome := map[bool]string{false: "refused", true: "allowed"}[open]
			if got := counterValue(t, r.stage.m.backendC.WithLabelValues(outcome)); got != 3 {
				t.Fatalf("backend error metric %s = %v", outcome, got)
			}
		})
	}
}

// TestStageHTTPRoute: a route whose tokens cannot be counted is limited
// by requests, and by budgets only once they are used up.
func TestStageHTTPRoute(t *testing.T) {
	r := newRig(t, Options{
		Classes:  []Class{{Name: "std", Requests: &RequestLimit{Limit: 100, Per: time.Minute}, Tokens: []TokenLimit{{Window: Minute, Limit: 10}}}},
		Defaults: map[string]string{gateway.KindService: "std"},
	})
	r.upstream = func(ex *gateway.Exchange) error {
		ex.Writer.WriteHeader(200)
		return nil
	}
	for range 3 {
		if rec := r.do(call{route: "http"}); rec.Code != 200 {
			t.Fatalf("http route: %d", rec.Code)
		}
	}
	if u := r.last.Usage; u != (gateway.Usage{}) {
		t.Fatalf("usage on an http route %+v", u)
	}
}

func TestNewStageRejects(t *testing.T) {
	m := NewMemory(MemoryOptions{})
	for name, o := range map[string]Options{
		"no backend":     {Classes: []Class{{Name: "a"}}},
		"duplicate":      {Backend: m, Classes: []Class{{Name: "a"}, {Name: "a"}}},
		"bad requests":   {Backend: m, Classes: []Class{{Name: "a", Requests: &RequestLimit{Limit: 0, Per: time.Second}}}},
		"no tokenizer":   {Backend: m, Classes: []Class{{Name: "a", Tokens: []TokenLimit{{Window: Day, Limit: 5}}}}},
		"dup window":     {Backend: m, Tokenizer: testTok, Classes: []Class{{Name: "a", Tokens: []TokenLimit{{Window: Day, Limit: 5}, {Window: Day, Limit: 6}}}}},
		"unknown defult": {Backend: m, Classes: []Class{{Name: "a"}}, Defaults: map[string]string{"user": "b"}},
	} {
		if _, err := NewStage(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestWindowBounds(t *testing.T) {
	now := time.Date(2024, 2, 29, 23, 59, 59, 5, time.FixedZone("X", 3600)) // 22:59:59 UTC
	for _, tc := range []struct {
		w          Window
		start, end string
	}{
		{Minute, "2024-02-29T22:59:00Z", "2024-02-29T23:00:00Z"},
		{Hour, "2024-02-29T22:00:00Z", "2024-02-29T23:00:00Z"},
		{Day, "2024-02-29T00:00:00Z", "2024-03-01T00:00:00Z"},
		{Month, "2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"},
	} {
		s, e := tc.w.Bounds(now)
		if s.Format(time.RFC3339) != tc.start || e.Format(time.RFC3339) != tc.end {
			t.Errorf("%s: %s .. %s", tc.w, s.Format(time.RFC3339), e.Format(time.RFC3339))
		}
		if w, ok := ParseWindow(tc.w.String()); !ok || w != tc.w {
			t.Errorf("ParseWindow(%q)", tc.w)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestStageClassOverride: an override (a throttle imposed by automated
// response) replaces the default and the obligation's class for the
// principal it names, and an override naming an unknown class fails closed.
func TestStageClassOverride(t *testing.T) {
	r := newRig(t, Options{
		Classes: []Class{
			{Name: "std", Requests: &RequestLimit{Limit: 100, Per: time.Minute}},
			{Name: "slow", Requests: &RequestLimit{Limit: 1, Per: time.Hour}},
		},
		Defaults: map[string]string{gateway.KindService: "std"},
	})
	override := map[string]string{"svc-a": "slow", "svc-bad": "gold"}
	r.stage.ClassOverride = func(p *gateway.Principal) (string, bool) {
		c, ok := override[p.ID]
		return c, ok
	}
	if rec := r.do(call{obligation: "std"}); rec.Code != 200 {
		t.Fatalf("first throttled request: %d", rec.Code)
	}
	if got := r.last.Obligations.Applied; len(got) != 2 || got[1] != "rate_class:slow:override" {
		t.Fatalf("applied %v", got)
	}
	if rec := r.do(call{obligation: "std"}); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second throttled request: %d", rec.Code)
	}
	for range 3 {
		if rec := r.do(call{id: "svc-b"}); rec.Code != 200 {
			t.Fatalf("unthrottled principal: %d", rec.Code)
		}
	}
	if rec := r.do(call{id: "svc-bad"}); rec.Code != http.StatusInternalServerError {
		t.Fatalf("unknown override class: %d", rec.Code)
	}
	delete(override, "svc-a") // lifted: the default class again
	if rec := r.do(call{}); rec.Code != 200 {
		t.Fatalf("after the throttle: %d", rec.Code)
	}
}
