package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
)

// runAuditCmd runs `warden audit ARGS...` as main would.
func runAuditCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"audit"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeAuditLog writes n records to path and returns the head hash.
func writeAuditLog(t *testing.T, path string, n int) string {
	t.Helper()
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var head string
	for i := 1; i <= n; i++ {
		r := &audit.Record{
			Time:      time.Date(2026, 3, 1, 12, 0, i, 0, time.UTC),
			RequestID: fmt.Sprintf("req-%d", i),
			Method:    "POST",
			Path:      "/v1/chat/completions",
			Action:    "chat.completions",
			Status:    200,
		}
		if i%2 == 0 {
			r.Principal = &audit.Principal{Kind: "agent", ID: "bot\x1b[31m", OnBehalfOf: "alice", AuthMethod: "api_key"}
			r.Decision = &audit.Decision{Allow: false, Reasons: []string{"denied"}}
			r.Status, r.Code = 403, "policy_denied"
		}
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		head = r.Hash
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return head
}

func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	head := writeAuditLog(t, path, 4)

	code, out, errOut := runAuditCmd(t, "verify", "--log", path)
	if code != exitOK || out != fmt.Sprintf("ok: 4 records, head %s\n", head) {
		t.Fatalf("intact log: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	data, _ := os.ReadFile(path)
	tampered := bytes.Replace(data, []byte(`"status":403`), []byte(`"status":200`), 1)
	if err := os.WriteFile(path, tampered, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runAuditCmd(t, "verify", "--log", path)
	if code != exitFail || !strings.Contains(out, "FAILED") || !strings.Contains(out, "line 2 (seq 2)") ||
		!strings.Contains(out, "hash mismatch") || !strings.Contains(out, "the first 1 records verify") {
		t.Fatalf("tampered log: exit %d, stdout:\n%s", code, out)
	}

	code, _, errOut = runAuditCmd(t, "verify", "--log", filepath.Join(dir, "missing.log"))
	if code != exitFail || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing log: exit %d, stderr %q", code, errOut)
	}
}

func TestAuditTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeAuditLog(t, path, 5)

	code, out, errOut := runAuditCmd(t, "tail", "-n", "2", "--log", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), out)
	}
	want := []string{
		`4  2026-03-01T12:00:04.000Z  req-4  agent:bot\x1b[31m(for alice)  POST /v1/chat/completions  chat.completions  deny  403  policy_denied`,
		`5  2026-03-01T12:00:05.000Z  req-5  -  POST /v1/chat/completions  chat.completions  -  200  -`,
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("a control character reached the terminal")
	}

	code, out, _ = runAuditCmd(t, "tail", "--json", "--log", path)
	if code != exitOK {
		t.Fatalf("--json exit %d", code)
	}
	data, _ := os.ReadFile(path)
	if out != string(data) {
		t.Errorf("--json output differs from the log:\n%s\nvs\n%s", out, data)
	}
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var r audit.Record
	if len(lines) != 5 || json.Unmarshal([]byte(lines[4]), &r) != nil || r.Seq != 5 {
		t.Errorf("--json: %d lines, last %+v", len(lines), r)
	}
}

func TestAuditWithConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	const cfgText = `listeners:
  - name: public
    address: 127.0.0.1:18443
    tls:
      mode: self_signed
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:19000
keys:
  path: ./data/keys.json
policy:
  dir: ./policy
audit:
  path: ./data/audit.log
`
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	head := writeAuditLog(t, filepath.Join(dir, "data", "audit.log"), 3)
	code, out, errOut := runAuditCmd(t, "verify", "--config", cfgPath)
	if code != exitOK || !strings.Contains(out, "ok: 3 records, head "+head) {
		t.Fatalf("verify --config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runAuditCmd(t, "tail", "--config", cfgPath, "-n", "1")
	if code != exitOK || !strings.HasPrefix(out, "3  ") {
		t.Fatalf("tail --config: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	// A config that cannot load (an upstream credential env var unset in
	// this shell) is reported with a hint towards --log.
	withCred := strings.Replace(cfgText, "url: http://127.0.0.1:19000",
		"url: http://127.0.0.1:19000\n      credential:\n        env: WARDEN_TEST_SURELY_UNSET_ENV", 1)
	if err := os.WriteFile(cfgPath, []byte(withCred), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runAuditCmd(t, "verify", "--config", cfgPath)
	if code != exitFail || !strings.Contains(errOut, "cannot load config") || !strings.Contains(errOut, "--log PATH") {
		t.Errorf("bad config: exit %d, stderr:\n%s", code, errOut)
	}
}

func TestAuditUsage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeAuditLog(t, path, 1)
	tests := []struct {
		args []string
		code int
		in   string // expected in stdout+stderr
	}{
		{nil, exitUsage, "usage:"},
		{[]string{"-h"}, exitOK, "warden audit verify"},
		{[]string{"prove"}, exitUsage, `unknown subcommand "prove"`},
		{[]string{"verify"}, exitUsage, "exactly one of --config FILE or --log PATH"},
		{[]string{"verify", "--log", path, "--config", "x.yaml"}, exitUsage, "exactly one of"},
		{[]string{"verify", "--bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"verify", "--log", path, "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"verify", "-h"}, exitOK, "-log PATH"},
		{[]string{"tail", "-n", "0", "--log", path}, exitUsage, "-n must be positive"},
		{[]string{"tail", "-n", "x", "--log", path}, exitUsage, "invalid value"},
		{[]string{"tail"}, exitUsage, "exactly one of"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runAuditCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.in) {
				t.Errorf("exit %d (want %d); output:\n%s%s", code, tt.code, out, errOut)
			}
		})
	}
}
