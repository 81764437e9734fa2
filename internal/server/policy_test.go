package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
)

// policyEnv is an in-process warden built from a config file, with a
// policy directory the test rewrites, an API key, and an upstream that
// records the bodies it receives.
type policyEnv struct {
	t      *testing.T
	dir    string
	srv    *Server
	h      http.Handler
	key    string
	admin  string
	mu     sync.Mutex
	bodies []string
}

// policyGen allows chat completions for scope inference:* (as the
// quickstart does) and blocks the model "blocked-<gen>", so that a request
// shows which generation decided it.
func policyGen(gen int) string {
	return fmt.Sprintf(`package warden.authz

allow if "inference:*" in input.principal.scopes

reasons contains "generation %d" if allow

deny contains "model blocked by generation %d" if input.resource.model == "blocked-%d"
`, gen, gen, gen)
}

const policyGenTest = `package warden.authz_test

import data.warden.authz

test_allows_the_scope if authz.allow with input as {"principal": {"scopes": ["inference:*"]}}
`

func newPolicyEnv(t *testing.T, policyYAML string, files map[string]string) *policyEnv {
	t.Helper()
	e := &policyEnv{t: t, dir: t.TempDir()}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.bodies = append(e.bodies, string(b))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"chat.completion","choices":[]}`)
	}))
	t.Cleanup(up.Close)
	if err := os.MkdirAll(filepath.Join(e.dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		e.write(name, src)
	}
	ks, err := identity.OpenKeyStore(filepath.Join(e.dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e.key, _, err = ks.Create("policy-test", "", []string{"inference:*"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	cfgText := `listeners:
  - name: test
    address: 127.0.0.1:0
    tls: {mode: "off"}
admin:
  address: 127.0.0.1:0
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream: {url: "` + up.URL + `"}
keys: {path: keys.json}
policy:
  dir: policy
` + policyYAML + `audit: {path: audit.log}
`
	path := filepath.Join(e.dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.srv.Close() })
	e.h = e.srv.Handler(0)
	e.admin = "http://" + e.srv.AdminAddr()
	return e
}

// write replaces a policy file by renaming a complete new one over it.
func (e *policyEnv) write(name, src string) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, "policy", "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(src), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(e.dir, "policy", name)); err != nil {
		e.t.Fatal(err)
	}
}

// chat sends a chat completion through the data-plane handler and returns
// the status and the error code, if any.
func (e *policyEnv) chat(model, extra string) (int, string) {
	body := `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.key)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	var resp struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &resp)
	return rec.Code, resp.Error.Code
}

// status reads GET /policy from the admin listener.
func (e *policyEnv) status() map[string]any {
	e.t.Helper()
	code, body := getJSON(e.t, e.admin+"/policy")
	if code != http.StatusOK {
		e.t.Fatalf("GET /policy: %d %v", code, body)
	}
	return body
}

func (e *policyEnv) metrics() string {
	e.t.Helper()
	res, err := http.Get(e.admin + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// TestPolicyReloadUnderLoad reloads the policy 20 times while requests
// keep flowing through the real handler: none fails, and the request after
// each reload is decided by the new policy.
func TestPolicyReloadUnderLoad(t *testing.T) {
	e := newPolicyEnv(t, "  reload: false\n", map[string]string{"authz.rego": policyGen(0), "authz_test.rego": policyGenTest})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				code, errCode := e.chat("gpt-4o-mini", "")
				sent.Add(1)
				if code != http.StatusOK {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, errCode))
				}
			}
		}()
	}
	versions := map[string]bool{e.status()["version"].(string): true}
	for gen := 1; gen <= 20; gen++ {
		e.write("authz.rego", policyGen(gen))
		if err := e.srv.ReloadPolicy(context.Background()); err != nil {
			t.Fatal(err)
		}
		if code, errCode := e.chat(fmt.Sprintf("blocked-%d", gen), ""); code != http.StatusForbidden || errCode != "policy_denied" {
			t.Fatalf("after reload %d, the new policy's block: %d %s, want 403 policy_denied", gen, code, errCode)
		}
		if code, _ := e.chat(fmt.Sprintf("blocked-%d", gen-1), ""); code != http.StatusOK {
			t.Fatalf("after reload %d, the old policy's block still applies: %d", gen, code)
		}
		st := e.status()
		v := st["version"].(string)
		if versions[v] || st["last_error"] != "" {
			t.Fatalf("after reload %d: status %v", gen, st)
		}
		versions[v] = true
	}
	cancel()
	wg.Wait()
	if failed.Load() != 0 || sent.Load() == 0 {
		t.Fatalf("%d of %d requests failed during the reloads (first: %v)", failed.Load(), sent.Load(), firstFailure.Load())
	}
	st := e.status()
	if st["reloads"].(float64) != 20 || st["failures"].(float64) != 0 {
		t.Errorf("status %v, want 20 reloads and no failure", st)
	}
	m := e.metrics()
	for _, want := range []string{
		`warden_policy_reloads_total{result="success"} 20`,
		`warden_policy_reloads_total{result="failure"} 0`,
		`warden_policy_info{version="` + st["version"].(string) + `"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Count(m, "warden_policy_info{") != 1 {
		t.Errorf("warden_policy_info has more than one series:\n%s", m)
	}
	code, ready := getJSON(t, e.admin+"/readyz")
	if code != http.StatusOK || ready["policy_version"] != st["version"] {
		t.Errorf("readyz %d %v, want the reloaded version %s", code, ready, st["version"])
	}
}

// TestPolicyWatchAndBrokenEdit: the watcher picks up an edit; a broken edit
// leaves the previous policy in force and is reported in GET /policy and
// the metrics; fixing it recovers.
func TestPolicyWatchAndBrokenEdit(t *testing.T) {
	e := newPolicyEnv(t, "  reload_interval: 100ms\n", map[string]string{"authz.rego": policyGen(0), "authz_test.rego": policyGenTest})
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; status %v", what, e.status())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if st := e.status(); st["reload"].(map[string]any)["watch"] != true || st["reload"].(map[string]any)["interval"] != "100ms" {
		t.Fatalf("status %v", st)
	}
	e.write("authz.rego", policyGen(1))
	waitFor("the edit to be reloaded", func() bool { code, _ := e.chat("blocked-1", ""); return code == http.StatusForbidden })
	good := e.status()["version"].(string)

	for _, broken := range []struct{ name, file, src, want string }{
		{"syntax", "authz.rego", "package warden.authz\n\nallow if {\n", "rego_parse_error"},
		{"failing test", "authz_test.rego", policyGenTest + "\ntest_never if false\n", "FAIL data.warden.authz_test.test_never"},
	} {
		t.Run(broken.name, func(t *testing.T) {
			before := e.status()["failures"].(float64)
			e.write(broken.file, broken.src)
			waitFor("the failure to be reported", func() bool { return e.status()["failures"].(float64) > before })
			st := e.status()
			if st["version"] != good || !strings.Contains(st["last_error"].(string), broken.want) {
				t.Fatalf("status %v, want version %s and last_error with %q", st, good, broken.want)
			}
			if code, _ := e.chat("blocked-1", ""); code != http.StatusForbidden {
				t.Errorf("the previous policy is not in force: blocked-1 gave %d", code)
			}
			if code, _ := e.chat("gpt-4o-mini", ""); code != http.StatusOK {
				t.Errorf("the previous policy is not in force: gpt-4o-mini gave %d", code)
			}
			if !strings.Contains(e.metrics(), `warden_policy_reloads_total{result="failure"}`) {
				t.Error("no failure metric")
			}
			e.write("authz.rego", policyGen(1))
			e.write("authz_test.rego", policyGenTest)
		})
	}
	e.write("authz.rego", policyGen(2))
	waitFor("recovery", func() bool { code, _ := e.chat("blocked-2", ""); return code == http.StatusForbidden })
	if st := e.status(); st["last_error"] != "" {
		t.Errorf("last_error after recovery: %v", st)
	}
}

// TestPolicySIGHUP: with watching off, SIGHUP reloads.
func TestPolicySIGHUP(t *testing.T) {
	e := newPolicyEnv(t, "  reload: false\n", map[string]string{"authz.rego": policyGen(0)})
	if st := e.status(); st["reload"].(map[string]any)["watch"] != false {
		t.Fatalf("status %v, want watch false", st)
	}
	e.write("authz.rego", policyGen(1))
	time.Sleep(50 * time.Millisecond)
	if code, _ := e.chat("blocked-1", ""); code != http.StatusOK {
		t.Fatalf("reloaded without a SIGHUP: %d", code)
	}
	// The server registered for SIGHUP in New, so the signal cannot kill
	// the test binary.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := e.chat("blocked-1", ""); code == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("SIGHUP did not reload: %v", e.status())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPolicyObligationsWiring: the server enforces max_tokens,
// audit_level and mask (the guards are on by default), and denies
// rate_class, which has no enforcer until the limit stage exists.
func TestPolicyObligationsWiring(t *testing.T) {
	e := newPolicyEnv(t, "  reload: false\n", map[string]string{"authz.rego": `package warden.authz

allow := true

obligations := {"max_tokens": 64} if input.resource.model == "capped"

obligations := {"audit_level": "full"} if input.resource.model == "audited"

obligations := {"mask": {"pii": "mask"}} if input.resource.model == "masked"

obligations := {"rate_class": "bulk"} if input.resource.model == "rated"

obligations := {"max_tokens": "64"} if input.resource.model == "malformed"
`})
	tests := []struct {
		model, extra string
		wantStatus   int
		wantCode     string
		wantBody     string // in what the upstream received
	}{
		{"capped", `,"max_tokens":4096`, 200, "", `"max_tokens":64`},
		{"capped", ``, 200, "", `{"max_completion_tokens":64,"model":"capped"`},
		{"audited", ``, 200, "", `"model":"audited"`},
		{"masked", ``, 200, "", `"model":"masked"`},
		{"rated", ``, 403, "policy_denied", ""},
		{"malformed", ``, 403, "policy_error", ""},
	}
	for _, tt := range tests {
		t.Run(tt.model+tt.extra, func(t *testing.T) {
			e.mu.Lock()
			e.bodies = nil
			e.mu.Unlock()
			code, errCode := e.chat(tt.model, tt.extra)
			if code != tt.wantStatus || errCode != tt.wantCode {
				t.Fatalf("status %d %q, want %d %q", code, errCode, tt.wantStatus, tt.wantCode)
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			if tt.wantBody == "" {
				if len(e.bodies) != 0 {
					t.Errorf("a denied request reached the upstream: %q", e.bodies)
				}
				return
			}
			if len(e.bodies) != 1 || !strings.Contains(e.bodies[0], tt.wantBody) {
				t.Errorf("upstream received %q, want %s", e.bodies, tt.wantBody)
			}
			if strings.Contains(e.bodies[0], "4096") {
				t.Errorf("the cap was not applied: %s", e.bodies[0])
			}
		})
	}
	st := e.status()
	if got := fmt.Sprint(st["obligations"]); got != "[audit_level mask max_tokens]" {
		t.Errorf("enforced obligations = %s", got)
	}
}

// TestPolicyContextConfig: policy.timezone and policy.networks reach the
// input (httptest requests come from 192.0.2.1).
func TestPolicyContextConfig(t *testing.T) {
	e := newPolicyEnv(t, `  timezone: Europe/Berlin
  networks:
    test-net: ["192.0.2.0/24"]
    other: ["10.0.0.0/8", "2001:db8::/32"]
  reload: false
`, map[string]string{"authz.rego": `package warden.authz

allow if {
	input.context.networks == ["test-net"]
	input.context.timezone == "Europe/Berlin"
	input.context.local_time != input.context.time
}
`})
	if code, errCode := e.chat("gpt-4o-mini", ""); code != http.StatusOK {
		t.Fatalf("status %d %s: the input lacks the configured networks or time zone", code, errCode)
	}
}

func TestPolicyConfigRejected(t *testing.T) {
	for name, yaml := range map[string]string{
		"bad timezone":        "  timezone: Mars/Base\n",
		"bad network":         "  networks: {corp: [\"10.0.0.1/8\"]}\n",
		"bad reload interval": "  reload_interval: 1ms\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "policy", "authz.rego"), []byte("package warden.authz\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := "listeners: [{name: t, address: \"127.0.0.1:0\", tls: {mode: \"off\"}}]\n" +
				"routes: [{name: r, prefix: /v1/, segment: inference, upstream: {url: \"http://127.0.0.1:1\"}}]\n" +
				"policy:\n  dir: policy\n" + yaml
			path := filepath.Join(dir, "warden.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(path); err == nil || !strings.Contains(err.Error(), "policy.") {
				t.Fatalf("config.Load = %v, want a policy.* error", err)
			}
		})
	}
}
