package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// behaviorRego denies every request of a principal whose behaviour risk
// is above 0.5, on top of the quickstart policy.
const behaviorRego = `package warden.authz

deny contains msg if {
	input.context.risk > 0.5
	msg := sprintf("risk score %v of %s is above 0.5", [input.context.risk, input.principal.id])
}
`

const behaviorYAML = `behavior:
  enabled: true
  half_life: 1h
  cooldown: 1m
`

// TestBehaviorDenialBurst: a burst of denied requests from one credential
// (the read-only key asking for chat completions it has no scope for)
// makes the real binary's behaviour engine report an anomaly — counted in
// the metrics and written to the audit log as a behavior.anomaly record
// that names the principal and the driving feature — and raises the
// principal's risk, which policy sees as context.risk: the read-only key's
// models.list, allowed before, is now denied. Another principal is not
// affected.
func TestBehaviorDenialBurst(t *testing.T) {
	e := startWardenOpts(t, options{Policy: map[string]string{"behavior.rego": behaviorRego}, Identity: behaviorYAML})
	do := func(key, method, path string, body []byte) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		hr, err := http.NewRequest(method, e.base+path, rd)
		must(t, err)
		hr.Header.Set("Authorization", "Bearer "+key)
		if body != nil {
			hr.Header.Set("Content-Type", "application/json")
		}
		res, err := e.httpClient.Do(hr)
		must(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := do(e.readKey, http.MethodGet, "/v1/models", nil); code != 200 {
		t.Fatalf("models.list before the burst: %d %s", code, body)
	}
	chat, _ := json.Marshal(map[string]any{"model": "warden-standin-small",
		"messages": []any{map[string]string{"role": "user", "content": "list every customer record you have"}}})
	for i := 0; i < 15; i++ {
		if code, body := do(e.readKey, http.MethodPost, "/v1/chat/completions", chat); code != 403 {
			t.Fatalf("burst request %d: %d %s", i, code, body)
		}
	}
	// The anomaly is counted at once; the risk is raised before the burst's
	// last response returns.
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := http.Get(e.admin + "/metrics")
		must(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(b), `warden_behavior_anomalies_total{feature="denial_ratio"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no denial_ratio anomaly in the metrics:\n%s", grepLines(string(b), "warden_behavior"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := do(e.readKey, http.MethodGet, "/v1/models", nil)
	if code != 403 {
		t.Fatalf("models.list after the burst: %d %s; want 403 (risk > 0.5)", code, body)
	}
	if code, body := do(e.appKey, http.MethodGet, "/v1/models", nil); code != 200 {
		t.Fatalf("another principal's models.list: %d %s", code, body)
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
		Action    string `json:"action"`
		Code      string `json:"code"`
		Reason    string `json:"reason"`
		Principal *struct {
			Kind, ID string
		} `json:"principal"`
		Findings []struct {
			Guard, Type string
		} `json:"findings"`
		Decision *struct {
			Reasons []string `json:"reasons"`
		} `json:"decision"`
	}
	var anomalies []record
	sawRiskDenial := false
	sc := bufio.NewScanner(strings.NewReader(exported))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r record
		must(t, json.Unmarshal(sc.Bytes(), &r))
		if r.Action == "behavior.anomaly" {
			anomalies = append(anomalies, r)
		}
		if r.Decision != nil && strings.Contains(strings.Join(r.Decision.Reasons, ";"), "is above 0.5") {
			sawRiskDenial = true
		}
	}
	if len(anomalies) != 1 {
		t.Fatalf("%d behavior.anomaly records, want 1 (one per cooldown):\n%s", len(anomalies), exported)
	}
	a := anomalies[0]
	if a.Principal == nil || a.Principal.ID != "e2e-readonly" || a.Code != "behavior_anomaly" ||
		!strings.Contains(a.Reason, "denial_ratio") || len(a.Findings) == 0 || a.Findings[0].Type != "denial_ratio" {
		t.Fatalf("anomaly record %+v", a)
	}
	if !sawRiskDenial {
		t.Error("no audit record of the denial for risk")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
