package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/standin"
)

// TestModelIntegrity drives the model registry through the real binary:
// two versions of a model are signed with `warden model sign`, registered
// by a publisher, promoted by an approver (a publisher is refused), and the
// gated route forwards to the active version with its identity in the
// upstream headers. A wrongly signed version is refused at registration.
// One changed byte in the active version's weights stops the route within
// the re-verification interval (503 model_unverified) with an audit record
// naming the changed file; `warden model rollback` makes the previous
// version serve again; every transition is in the audit log.
func TestModelIntegrity(t *testing.T) {
	dir := t.TempDir()
	upKey := "upstream-secret-" + fmt.Sprint(time.Now().UnixNano())
	model := &standin.Server{APIKey: upKey}
	up := httptest.NewServer(model)
	t.Cleanup(up.Close)
	pool := writeCert(t, dir)

	// Two model versions and a signing key, as a publisher would make them.
	mkModel := func(version string) string {
		d := filepath.Join(dir, "models", "llama-"+version)
		must(t, os.MkdirAll(filepath.Join(d, "tokenizer"), 0o700))
		must(t, os.WriteFile(filepath.Join(d, "weights.bin"), []byte(strings.Repeat("w"+version, 50000)), 0o600))
		must(t, os.WriteFile(filepath.Join(d, "config.json"), []byte(`{"version":"`+version+`"}`), 0o600))
		must(t, os.WriteFile(filepath.Join(d, "tokenizer", "vocab.txt"), []byte("a\nb\n"), 0o600))
		return d
	}
	cli := func(args ...string) string {
		t.Helper()
		out, errOut, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("warden %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	keyPrefix := filepath.Join(dir, "release")
	cli("model", "keygen", "--out", keyPrefix)
	v1, v2, v3 := mkModel("v1"), mkModel("v2"), mkModel("v3")
	cli("model", "sign", "--key", keyPrefix+".key", "--name", "llama", v1)
	cli("model", "sign", "--key", keyPrefix+".key", "--name", "llama", v2)
	rogue := filepath.Join(dir, "rogue")
	cli("model", "keygen", "--type", "ed25519", "--out", rogue)
	cli("model", "sign", "--key", rogue+".key", "--name", "llama", v3)
	cli("model", "verify", "--key", keyPrefix+".pub", "--name", "llama", v1)

	must(t, os.MkdirAll(filepath.Join(dir, "policy"), 0o700))
	for _, f := range []string{"authz.rego", "models.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "policy", f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "policy", f), b, 0o600))
	}
	must(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listeners:
  - name: public
    address: %s
    tls:
      cert_file: cert.pem
      key_file: key.pem
admin:
  address: %s
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    model:
      name: llama
    upstream:
      url: %s
      timeout: 5s
      credential:
        env: WARDEN_E2E_UPSTREAM_KEY
keys:
  path: data/keys.json
policy:
  dir: policy
audit:
  path: data/audit.log
models:
  registry: data/registry
  roots: [models]
  reverify_interval: 200ms
  trusted_keys:
    - name: release
      file: release.pub
`, listen, admin, up.URL)
	cfgPath := filepath.Join(dir, "warden.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	t.Setenv("WARDEN_E2E_UPSTREAM_KEY", upKey)
	auditPath := filepath.Join(dir, "data", "audit.log")

	keysPath := filepath.Join(dir, "data", "keys.json")
	out := cli("keys", "create", "--store", keysPath, "--subject", "app", "--scopes", "inference:*", "--json")
	var appKey struct{ Key string }
	must(t, json.Unmarshal([]byte(out), &appKey))

	proc := exec.Command(wardenBin, "serve", "--config", cfgPath)
	stderr := &lockedBuffer{}
	proc.Stderr = stderr
	must(t, proc.Start())
	t.Cleanup(func() {
		_ = proc.Process.Kill()
		_ = proc.Wait()
		if t.Failed() {
			t.Logf("warden stderr:\n%s", stderr.String())
		}
	})
	base := "https://" + listen
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	for deadline := time.Now().Add(20 * time.Second); ; {
		res, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("warden did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	userToken := func(name, roles string) string {
		t.Helper()
		tok := cli("token", "issue", "--config", cfgPath, "--subject", name, "--kind", "user", "--ttl", "30m", "--roles", roles)
		p := filepath.Join(dir, name+".token")
		must(t, os.WriteFile(p, []byte(tok), 0o600))
		return p
	}
	publisher := userToken("pat@example.org", "model-publisher")
	approver := userToken("ann@example.org", "model-approver")
	modelCLI := func(keyFile string, args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(append([]string{"model"}, args...),
			"--server", base, "--ca-file", filepath.Join(dir, "cert.pem"), "--key-file", keyFile)...)
	}
	okCLI := func(keyFile string, args ...string) string {
		t.Helper()
		out, errOut, code := modelCLI(keyFile, args...)
		if code != 0 {
			t.Fatalf("warden model %s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	chat := func() (int, string) {
		t.Helper()
		req, err := http.NewRequest("POST", base+"/v1/chat/completions",
			strings.NewReader(`{"model":"warden-standin-small","messages":[{"role":"user","content":"hi"}]}`))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+appKey.Key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Warden-Model-Version", "llama@forged") // replaced by the gate
		res, err := hc.Do(req)
		must(t, err)
		defer res.Body.Close()
		var body struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.Error.Code
	}
	wantServes := func(version string) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			status, code := chat()
			if status == 200 {
				if got := model.LastHeaders().Get("X-Warden-Model-Version"); got != "llama@"+version {
					t.Fatalf("upstream saw model version %q, want llama@%s", got, version)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("route does not serve %s: %d %s", version, status, code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Nothing is active: the route refuses.
	if status, code := chat(); status != 503 || code != "model_unverified" {
		t.Fatalf("before any promotion: %d %s, want 503 model_unverified", status, code)
	}
	// A publisher registers; the rogue-signed version is refused.
	okCLI(publisher, "register", "--name", "llama", "--version", "v1", "--source", "run-1", v1)
	okCLI(publisher, "register", "--name", "llama", "--version", "v2", "--source", "run-2", v2)
	if _, errOut, code := modelCLI(publisher, "register", "--name", "llama", "--version", "v3", v3); code != 1 ||
		!strings.Contains(errOut, "model_signature_invalid") {
		t.Fatalf("rogue-signed register: exit %d: %s", code, errOut)
	}
	// Only an approver promotes.
	if _, errOut, code := modelCLI(publisher, "promote", "--version", "v1", "llama"); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("publisher promote: exit %d: %s", code, errOut)
	}
	okCLI(approver, "promote", "--version", "v1", "llama")
	wantServes("v1")
	okCLI(approver, "promote", "--version", "v2", "llama")
	wantServes("v2")
	if out := okCLI(approver, "list", "llama"); !strings.Contains(out, "v2") || !strings.Contains(out, "active") || !strings.Contains(out, "retired") {
		t.Fatalf("model list:\n%s", out)
	}

	// One changed byte in the active version: refused within the interval.
	w := filepath.Join(v2, "weights.bin")
	b, err := os.ReadFile(w)
	must(t, err)
	b[1000] ^= 1
	must(t, os.WriteFile(w, b, 0o600))
	for deadline := time.Now().Add(5 * time.Second); ; {
		status, code := chat()
		if status == 503 && code == "model_unverified" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tampered model still served: %d %s", status, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Promoting the tampered version again is refused.
	if _, errOut, code := modelCLI(approver, "promote", "--version", "v2", "llama"); code != 1 || !strings.Contains(errOut, "409") {
		t.Fatalf("promote of the active tampered version: exit %d: %s", code, errOut)
	}

	// Roll back: the previous version serves at once.
	okCLI(approver, "rollback", "--reason", "tampered weights", "llama")
	wantServes("v1")

	// Datasets: two signed versions with a chain of custody, registered in
	// the registry through the admin API. A child before its parent is
	// refused; the chain is checked against what is registered.
	mkData := func(version string) string {
		d := filepath.Join(dir, "models", "corpus-"+version)
		must(t, os.MkdirAll(d, 0o700))
		must(t, os.WriteFile(filepath.Join(d, "part-0.jsonl"), []byte(strings.Repeat(`{"text":"`+version+`"}`+"\n", 100)), 0o600))
		return d
	}
	ds1, ds2 := mkData("v1"), mkData("v2")
	cli("dataset", "sign", "--key", keyPrefix+".key", "--name", "corpus", "--version", "v1", "--source", "crawl-2025-05",
		"--license", "CC-BY-4.0", ds1)
	cli("dataset", "sign", "--key", keyPrefix+".key", "--name", "corpus", "--version", "v2", "--parent", "v1",
		"--parent-signature", filepath.Join(ds1, "model.sig"), "--transformation", "dedup + PII scrub", ds2)
	datasetCLI := func(keyFile string, args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(append([]string{"dataset"}, args...),
			"--server", base, "--ca-file", filepath.Join(dir, "cert.pem"), "--key-file", keyFile)...)
	}
	if _, errOut, code := datasetCLI(publisher, "register", ds2); code != 1 || !strings.Contains(errOut, "v1") {
		t.Fatalf("register of a child before its parent: exit %d: %s", code, errOut)
	}
	if _, errOut, code := datasetCLI(appKeyFile(t, dir, appKey.Key), "register", ds1); code != 1 || !strings.Contains(errOut, "403") {
		t.Fatalf("register by a key without the publisher role: exit %d: %s", code, errOut)
	}
	for _, d := range []string{ds1, ds2} {
		if out, errOut, code := datasetCLI(publisher, "register", d); code != 0 || !strings.Contains(out, "registered") {
			t.Fatalf("dataset register %s: exit %d: %s%s", d, code, out, errOut)
		}
	}
	if out, errOut, code := datasetCLI(publisher, "list", "corpus"); code != 0 || !strings.Contains(out, "v2") ||
		!strings.Contains(out, "(origin)") || !strings.Contains(out, "CC-BY-4.0") {
		t.Fatalf("dataset list: exit %d:\n%s%s", code, out, errOut)
	}

	// The audit log holds every transition and the integrity failure, with
	// the changed file named.
	seen := map[string]bool{}
	var integrity string
	must(t, audit.ReadAll(auditPath, func(ar audit.Record) error {
		seen[ar.Action+" "+ar.Code] = true
		if ar.Action == "model.integrity" && ar.Code == "model_integrity_refused" {
			integrity = ar.Reason
		}
		return nil
	}))
	for _, want := range []string{
		"model.register model_register", "model.verify model_verify", "model.promote model_promote",
		"model.rollback model_rollback", "model.integrity model_integrity_refused", "dataset.register dataset_register",
		"model.promote policy_denied", "chat.completions model_unverified",
	} {
		if !seen[want] {
			t.Errorf("no audit record %q; have %v", want, seen)
		}
	}
	if !strings.Contains(integrity, `changed "weights.bin"`) {
		t.Errorf("integrity record does not name the changed file: %q", integrity)
	}
}

// appKeyFile writes an API key to a file for the CLI's --key-file.
func appKeyFile(t *testing.T, dir, key string) string {
	t.Helper()
	p := filepath.Join(dir, "app.key")
	must(t, os.WriteFile(p, []byte(key), 0o600))
	return p
}
