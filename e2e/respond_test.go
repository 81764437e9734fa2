package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
)

// restart stops warden gracefully and starts it again on the same config
// and files, and waits until it is ready.
func (e *env) restart(t *testing.T) {
	t.Helper()
	must(t, e.proc.Process.Signal(syscall.SIGTERM))
	_ = e.proc.Wait()
	e.proc = exec.Command(wardenBin, "serve", "--config", filepath.Join(e.dir, "warden.yaml"))
	e.proc.Env = append(os.Environ(), "WARDEN_E2E_UPSTREAM_KEY="+e.upstreamKey)
	e.proc.Stderr = e.stderr
	must(t, e.proc.Start())
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(e.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("warden did not become ready after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestManualQuarantineSurvivesRestart: an operator quarantines a service
// with `warden sanctions add`; its very next request is refused with 403
// "quarantined" and nothing else; warden restarts and the quarantine still
// holds; `warden sanctions lift` ends it and the service is served again.
// The sanction and its lift are in the audit log.
func TestManualQuarantineSurvivesRestart(t *testing.T) {
	e := startWarden(t)
	adminKey, _ := e.createKey("e2e-secops", "control:sanction.create,control:sanction.list,control:sanction.lift")
	keyFile := filepath.Join(e.dir, "secops.key")
	must(t, os.WriteFile(keyFile, []byte(adminKey+"\n"), 0o600))
	sanctions := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(append([]string{"sanctions"}, args...),
			"--server", e.base, "--ca-file", filepath.Join(e.dir, "cert.pem"), "--key-file", keyFile)...)
	}
	chat := func() (int, string, string) {
		t.Helper()
		req, err := http.NewRequest("POST", e.base+"/v1/chat/completions",
			strings.NewReader(`{"model":"warden-standin-small","messages":[{"role":"user","content":"hi"}]}`))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+e.appKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := e.httpClient.Do(req)
		must(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var body struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &body)
		return res.StatusCode, body.Error.Code, body.Error.Message
	}
	if s, _, _ := chat(); s != 200 {
		t.Fatalf("before: %d", s)
	}

	// The key store is polled: the admin key may take a moment to work.
	var id string
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, errOut, code := sanctions("add", "--principal", "service:e2e-app", "--type", "quarantine",
			"--duration", "1h", "--reason", "e2e drill: exfiltration suspected")
		if code == 0 {
			id = strings.TrimSpace(out)
			if !strings.HasPrefix(id, "s_") || !strings.Contains(errOut, "quarantine on service:e2e-app until") {
				t.Fatalf("add: %q %q", out, errOut)
			}
			break
		}
		if time.Now().After(deadline) || !strings.Contains(errOut, "401") {
			t.Fatalf("add: exit %d: %s", code, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}

	s, code, msg := chat()
	if s != 403 || code != "quarantined" {
		t.Fatalf("next request: %d %s", s, code)
	}
	if strings.Contains(msg, "exfiltration") || strings.Contains(msg, "secops") || strings.Contains(msg, "1h") {
		t.Fatalf("the refusal says too much: %q", msg)
	}

	e.restart(t)
	if s, code, _ := chat(); s != 403 || code != "quarantined" {
		t.Fatalf("after the restart: %d %s", s, code)
	}
	out, errOut, rc := sanctions("list", "--json")
	var l struct {
		Sanctions []struct{ ID, Principal, Type string }
	}
	if rc != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Sanctions) != 1 || l.Sanctions[0].ID != id ||
		l.Sanctions[0].Type != "quarantine" {
		t.Fatalf("list: exit %d: %s %s", rc, out, errOut)
	}
	out, errOut, rc = sanctions("lift", id)
	if rc != 0 || !strings.Contains(out, "lifted quarantine on service:e2e-app") {
		t.Fatalf("lift: exit %d: %s %s", rc, out, errOut)
	}
	if s, code, _ := chat(); s != 200 {
		t.Fatalf("after the lift: %d %s", s, code)
	}
	if _, errOut, rc := sanctions("lift", id); rc != 1 || !strings.Contains(errOut, "404 unknown_sanction") {
		t.Fatalf("second lift: exit %d: %s", rc, errOut)
	}

	// Every step is in the audit log: the sanction and its lift on the
	// quarantined principal, the refusals, the operator's requests.
	counts := map[string]int{}
	must(t, audit.ReadAll(e.auditPath, func(r audit.Record) error {
		who := ""
		if r.Principal != nil {
			who = r.Principal.ID
		}
		counts[r.Action+"|"+r.Code+"|"+who]++
		return nil
	}))
	for _, k := range []string{
		"sanction.apply|quarantine|e2e-app",
		"sanction.lift|sanction_lifted|e2e-app",
		"chat.completions|quarantined|e2e-app",
		"sanction.create||e2e-secops",
		"sanction.lift||e2e-secops",
	} {
		if counts[k] == 0 {
			t.Errorf("no audit record %s; have %v", k, counts)
		}
	}
	if counts["chat.completions|quarantined|e2e-app"] != 2 {
		t.Errorf("%d quarantined refusals recorded, want 2", counts["chat.completions|quarantined|e2e-app"])
	}
}
