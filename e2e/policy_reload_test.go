package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
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
