package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// limitsRego selects a rate class by model: "slow-model" gets one request
// an hour, "budget-model" a token budget; other models get the default
// class of service principals.
const limitsRego = `package warden.authz

obligations := {"rate_class": "slow"} if input.resource.model == "slow-model"

obligations := {"rate_class": "budget"} if input.resource.model == "budget-model"
`

// limitsYAML is appended to the e2e config (the options field for an
// appended block is named for its first user, identity).
const limitsYAML = `limits:
  defaults:
    service: standard
  classes:
    - name: standard
      requests: {limit: 3, per: 1m}
    - name: slow
      requests: {limit: 1, per: 1h}
    - name: budget
      tokens: {hour: 60}
`

// TestLimits: the real binary refuses over-limit requests with 429,
// Retry-After and an OpenAI-shaped error; the policy's rate_class
// obligation is in effect (no longer a deny); a token budget is charged
// with the upstream's reported usage, streaming included; the audit
// record says which limit fired; and the metrics count it.
func TestLimits(t *testing.T) {
	// A budget window must not end in the middle of the test.
	if now := time.Now().UTC(); now.Minute() == 59 && now.Second() > 30 {
		time.Sleep(time.Duration(61-now.Second()) * time.Second)
	}
	e := startWardenOpts(t, options{Policy: map[string]string{"limits.rego": limitsRego}, Identity: limitsYAML})
	type reply struct {
		code       int
		retryAfter string
		id         string
		body       string
		errType    string
		errCode    string
	}
	post := func(model string, maxTokens int, stream bool) reply {
		t.Helper()
		req := map[string]any{"model": model, "stream": stream,
			"messages": []any{map[string]string{"role": "user", "content": "Count to three please"}}}
		if maxTokens > 0 {
			req["max_tokens"] = maxTokens
		}
		b, _ := json.Marshal(req)
		hr, err := http.NewRequest(http.MethodPost, e.base+"/v1/chat/completions", bytes.NewReader(b))
		must(t, err)
		hr.Header.Set("Authorization", "Bearer "+e.appKey)
		hr.Header.Set("Content-Type", "application/json")
		res, err := e.httpClient.Do(hr)
		must(t, err)
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		must(t, err)
		r := reply{code: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), id: res.Header.Get("X-Request-Id"), body: string(body)}
		var eb struct{ Error struct{ Type, Code string } }
		if json.Unmarshal(body, &eb) == nil {
			r.errType, r.errCode = eb.Error.Type, eb.Error.Code
		}
		return r
	}

	// The default class: 3 requests a minute, all at once.
	for i := range 3 {
		if r := post("warden-standin-small", 0, false); r.code != 200 {
			t.Fatalf("request %d: %d %s", i, r.code, r.body)
		}
	}
	over := post("warden-standin-small", 0, false)
	if over.code != http.StatusTooManyRequests || over.retryAfter != "20" || over.errType != "rate_limit_error" || over.errCode != "rate_limit_exceeded" {
		t.Fatalf("4th request: %d Retry-After %q %s", over.code, over.retryAfter, over.body)
	}

	// The rate_class obligation: its own class, enforced (before this
	// issue a policy returning rate_class denied every request).
	slow := post("slow-model", 0, false)
	if slow.code != 200 {
		t.Fatalf("first slow-model request: %d %s", slow.code, slow.body)
	}
	slowOver := post("slow-model", 0, false)
	ra, _ := strconv.Atoi(slowOver.retryAfter)
	if slowOver.code != http.StatusTooManyRequests || ra < 3590 || ra > 3600 {
		t.Fatalf("second slow-model request: %d Retry-After %q %s", slowOver.code, slowOver.retryAfter, slowOver.body)
	}

	// The token budget (60 an hour): each request reserves its prompt
	// (about 12 tokens) plus max_tokens 20, and after the response is
	// charged what the stand-in reports (about 19). Two requests pass only
	// because the first was reconciled (two reservations of about 32 would
	// exceed 60); the third is refused.
	var budgetIDs []string
	for i, stream := range []bool{false, true} {
		r := post("budget-model", 20, stream)
		if r.code != 200 {
			t.Fatalf("budget request %d: %d %s", i, r.code, r.body)
		}
		if stream && !strings.Contains(r.body, "data: [DONE]") {
			t.Fatalf("stream: %s", r.body)
		}
		budgetIDs = append(budgetIDs, r.id)
	}
	budgetOver := post("budget-model", 20, false)
	ra, _ = strconv.Atoi(budgetOver.retryAfter)
	if budgetOver.code != http.StatusTooManyRequests || budgetOver.errCode != "token_budget_exceeded" || ra < 1 || ra > 3600 {
		t.Fatalf("over the token budget: %d Retry-After %q %s", budgetOver.code, budgetOver.retryAfter, budgetOver.body)
	}

	res, err := http.Get(e.admin + "/metrics")
	must(t, err)
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, m := range []string{
		`warden_limit_refused_total{class="standard",limit="requests"} 1`,
		`warden_limit_refused_total{class="slow",limit="requests"} 1`,
		`warden_limit_refused_total{class="budget",limit="tokens_hour"} 1`,
		`warden_limit_tokens_total{class="budget",source="reported"}`,
	} {
		if !strings.Contains(string(metrics), m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	must(t, e.proc.Process.Signal(syscall.SIGTERM))
	if err := e.proc.Wait(); err != nil {
		t.Fatalf("warden exit: %v", err)
	}
	exported, errOut, exit := runCLI(t, "audit", "export", "--log", e.auditPath)
	if exit != 0 {
		t.Fatalf("audit export: exit %d: %s", exit, errOut)
	}
	type record struct {
		RequestID   string `json:"request_id"`
		Status      int    `json:"status"`
		Code        string `json:"code"`
		Reason      string `json:"reason"`
		Obligations *struct {
			RateClass string   `json:"rate_class"`
			Applied   []string `json:"applied"`
		} `json:"obligations"`
		Usage *struct {
			PromptTokens     int64 `json:"prompt_tokens"`
			CompletionTokens int64 `json:"completion_tokens"`
			Reported         bool  `json:"reported"`
		} `json:"usage"`
	}
	records := map[string]record{}
	sc := bufio.NewScanner(strings.NewReader(exported))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		must(t, json.Unmarshal(sc.Bytes(), &r))
		records[r.RequestID] = r
	}
	if r := records[over.id]; r.Status != 429 || r.Code != "rate_limit_exceeded" || !strings.Contains(r.Reason, `class "standard": requests 3 per 1m0s`) {
		t.Errorf("audit of the request-limited exchange: %+v", r)
	}
	if r := records[slowOver.id]; r.Status != 429 || r.Obligations == nil || r.Obligations.RateClass != "slow" || !strings.Contains(r.Reason, `class "slow"`) {
		t.Errorf("audit of the obligation-limited exchange: %+v", r)
	}
	if r := records[budgetOver.id]; r.Status != 429 || r.Code != "token_budget_exceeded" || !strings.Contains(r.Reason, `class "budget": tokens per hour 60`) {
		t.Errorf("audit of the budget-limited exchange: %+v", r)
	}
	for _, id := range budgetIDs {
		if r := records[id]; r.Usage == nil || !r.Usage.Reported || r.Usage.CompletionTokens == 0 || r.Usage.PromptTokens == 0 {
			t.Errorf("audit usage of a budget exchange %s: %+v", id, r.Usage)
		}
	}
}
