package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
)

// TestPolicyReloadsWithoutRestart edits the policy of a running warden: a
// valid edit changes the next decisions, a broken edit leaves the previous
// policy in force and is reported, and SIGHUP reloads on demand.
func TestPolicyReloadsWithoutRestart(t *testing.T) {
	e := startWarden(t)
	ctx := context.Background()
	app := e.client(e.appKey, "/v1/")
	policyFile := filepath.Join(e.dir, "policy", "authz.rego")
	original, err := os.ReadFile(policyFile)
	must(t, err)

	chat := func() error {
		_, err := app.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model:    "warden-standin-small",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
		})
		return err
	}
	denied := func(err error) bool {
		var ae *openai.Error
		return errors.As(err, &ae) && ae.StatusCode == 403 && ae.Code == "policy_denied"
	}
	status := func() map[string]any {
		t.Helper()
		res, err := http.Get(e.admin + "/policy")
		must(t, err)
		defer res.Body.Close()
		var st map[string]any
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
			t.Fatalf("GET /policy: %d %s", res.StatusCode, b)
		}
		return st
	}
	// replace writes the policy file the way an editor saving it does.
	replace := func(src []byte) {
		t.Helper()
		tmp := policyFile + ".tmp"
		must(t, os.WriteFile(tmp, src, 0o600))
		must(t, os.Rename(tmp, policyFile))
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; GET /policy: %v", what, status())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	must(t, chat())
	first := status()
	if v, _ := first["version"].(string); !strings.HasPrefix(v, "sha256:") || first["last_error"] != "" {
		t.Fatalf("GET /policy at start: %v", first)
	}

	// A valid edit: block the model the client uses. The quickstart tests
	// beside the policy still pass, so the edit is taken.
	blocking := strings.Replace(string(original), `input.resource.model in {"internal-finetune-raw"}`,
		`input.resource.model in {"internal-finetune-raw", "warden-standin-small"}`, 1)
	if blocking == string(original) {
		t.Fatal("the quickstart policy no longer has the blocked-model line this test edits")
	}
	replace([]byte(blocking))
	waitFor("the edited policy to deny", func() bool { return denied(chat()) })
	second := status()
	if second["version"] == first["version"] || second["last_error"] != "" {
		t.Fatalf("GET /policy after the edit: %v", second)
	}

	// A broken edit: the previous (blocking) policy stays in force.
	replace([]byte("package warden.authz\n\nallow if {\n"))
	waitFor("the broken edit to be reported", func() bool {
		msg, _ := status()["last_error"].(string)
		return strings.Contains(msg, "rego_parse_error")
	})
	if st := status(); st["version"] != second["version"] {
		t.Fatalf("a broken edit replaced the policy: %v", st)
	}
	if err := chat(); !denied(err) {
		t.Fatalf("after the broken edit the previous policy should still deny, got %v", err)
	}
	res, err := http.Get(e.admin + "/metrics")
	must(t, err)
	m, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(m), `warden_policy_reloads_total{result="failure"} 1`) ||
		!strings.Contains(string(m), `warden_policy_info{version="`+second["version"].(string)+`"} 1`) {
		t.Errorf("metrics do not report the failed reload and the version in force")
	}

	// Fixing the file recovers; SIGHUP reloads without waiting for the poll
	// (and does not stop warden: the chat below needs it running).
	replace(original)
	must(t, e.proc.Process.Signal(syscall.SIGHUP))
	waitFor("the original policy to allow again", func() bool { return chat() == nil })
	if st := status(); st["version"] != first["version"] || st["last_error"] != "" {
		t.Fatalf("GET /policy after the fix: %v", st)
	}
}

// policyStatus returns GET /policy of the admin listener.
func (e *env) policyStatus(t *testing.T) map[string]any {
	t.Helper()
	res, err := http.Get(e.admin + "/policy")
	must(t, err)
	defer res.Body.Close()
	var st map[string]any
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("GET /policy: %d %s", res.StatusCode, b)
	}
	return st
}

// TestPolicyReloadUnderLoad reloads the policy of a running warden 20
// times (SIGHUP, with the directory watched as well) while clients keep
// sending chat completions: no request fails, every reload is taken, and
// every audit record names the policy version that decided it, one of
// those that were in force.
func TestPolicyReloadUnderLoad(t *testing.T) {
	e := startWarden(t)
	policyFile := filepath.Join(e.dir, "policy", "authz.rego")
	original, err := os.ReadFile(policyFile)
	must(t, err)
	body := `{"model":"warden-standin-small","messages":[{"role":"user","content":"hello"}]}`
	chat := func() (int, error) {
		req, err := http.NewRequest(http.MethodPost, e.base+"/v1/chat/completions", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+e.appKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := e.httpClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return res.StatusCode, err
	}
	if code, err := chat(); err != nil || code != 200 {
		t.Fatalf("chat before the reloads: %d %v", code, err)
	}

	versions := map[string]bool{e.policyStatus(t)["version"].(string): true}
	var sent, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, err := chat()
				sent.Add(1)
				if err != nil || code != 200 {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("status %d, %v", code, err))
				}
			}
		}()
	}

	const reloads = 20
	prev := e.policyStatus(t)
	for i := 1; i <= reloads; i++ {
		// Each generation differs (a comment), so each has its own version;
		// the tests beside the policy pass for all of them.
		src := fmt.Sprintf("%s\n# reload generation %d\n", original, i)
		tmp := policyFile + ".tmp"
		must(t, os.WriteFile(tmp, []byte(src), 0o600))
		must(t, os.Rename(tmp, policyFile))
		must(t, e.proc.Process.Signal(syscall.SIGHUP))
		deadline := time.Now().Add(30 * time.Second)
		for {
			st := e.policyStatus(t)
			if st["version"] != prev["version"] {
				if st["last_error"] != "" {
					t.Fatalf("reload %d: %v", i, st)
				}
				versions[st["version"].(string)] = true
				prev = st
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload %d was not taken; GET /policy: %v", i, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let requests run on this version
	}
	close(stop)
	wg.Wait()

	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during %d reloads; first: %v", failed.Load(), sent.Load(), reloads, firstFailure.Load())
	}
	st := e.policyStatus(t)
	if n, _ := st["reloads"].(float64); n < reloads || st["failures"] != float64(0) || len(versions) != reloads+1 {
		t.Fatalf("after %d reloads: GET /policy %v, %d versions seen", reloads, st, len(versions))
	}

	// Every decision in the audit log carries the version that made it.
	out, errOut, code := runCLI(t, "audit", "tail", "--log", e.auditPath, "-n", "100000", "--json")
	if code != 0 {
		t.Fatalf("audit tail: exit %d: %s", code, errOut)
	}
	used := map[string]int{}
	records := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			Path     string `json:"path"`
			Status   int    `json:"status"`
			Decision *struct {
				Allow         bool   `json:"allow"`
				PolicyVersion string `json:"policy_version"`
			} `json:"decision"`
		}
		must(t, json.Unmarshal(sc.Bytes(), &r))
		if r.Path != "/v1/chat/completions" {
			continue
		}
		records++
		if r.Decision == nil || !r.Decision.Allow || !versions[r.Decision.PolicyVersion] {
			t.Fatalf("audit record without the version of a policy in force: %s", sc.Bytes())
		}
		used[r.Decision.PolicyVersion]++
	}
	must(t, sc.Err())
	if int64(records) < sent.Load() || len(used) < 2 {
		t.Fatalf("audit log: %d chat records for %d requests, decided by %d versions", records, sent.Load(), len(used))
	}
	t.Logf("%d requests during %d reloads, 0 failed; %d audit records decided by %d policy versions", sent.Load(), reloads, records, len(used))
}

// TestPolicyEvalCLI runs `warden policy eval` on the zero-trust example
// requests: it prints the decision, the policy version, the reasons and
// the rules that fired, with their file and line.
func TestPolicyEvalCLI(t *testing.T) {
	dir := filepath.Join("..", "examples", "zero-trust-ai", "policy")
	requests := filepath.Join("..", "examples", "zero-trust-ai", "requests")
	tests := []struct {
		request, decision, reason, fired string
	}{
		{"agent-for-bob-asks-for-gpt-4o.json", "deny",
			`model "gpt-4o" is not granted to bob@example.org, for whom agent spiffe://ml.example.org/agent/planner acts`,
			"data.warden.authz.deny (" + filepath.Join(dir, "agents.rego") + ":"},
		{"agent-for-alice-chats.json", "allow", "delegation: agent spiffe://ml.example.org/agent/planner acting for alice@example.org",
			"data.warden.authz.grounds (" + filepath.Join(dir, "agents.rego") + ":"},
	}
	for _, tt := range tests {
		t.Run(tt.request, func(t *testing.T) {
			out, errOut, code := runCLI(t, "policy", "eval", "--dir", dir, "--input", filepath.Join(requests, tt.request))
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			for _, want := range []string{"decision: " + tt.decision + "\n", "policy:   sha256:", "reasons:\n", tt.reason, "rules fired (", tt.fired} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			out, errOut, code = runCLI(t, "policy", "eval", "--dir", dir, "--input", filepath.Join(requests, tt.request), "--json")
			var x struct {
				Allow         bool     `json:"allow"`
				Reasons       []string `json:"reasons"`
				PolicyVersion string   `json:"policy_version"`
				Fired         []struct {
					Rule string `json:"rule"`
					File string `json:"file"`
					Line int    `json:"line"`
				} `json:"fired"`
			}
			if code != 0 || json.Unmarshal([]byte(out), &x) != nil {
				t.Fatalf("--json: exit %d\n%s%s", code, out, errOut)
			}
			if x.Allow != (tt.decision == "allow") || !strings.HasPrefix(x.PolicyVersion, "sha256:") || len(x.Fired) == 0 || x.Fired[0].Line == 0 {
				t.Errorf("--json: %s", out)
			}
		})
	}
}
