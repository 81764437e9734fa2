package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const quickstartPolicy = "../../examples/quickstart/policy"

// runPolicyCmd runs `warden policy ARGS...` as main would.
func runPolicyCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"policy"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// writePolicyFiles writes files into a new temporary dir and returns it.
func writePolicyFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPolicyTestQuickstart(t *testing.T) {
	code, out, errOut := runPolicyCmd(t, "test", quickstartPolicy)
	if code != exitOK {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"PASS  data.warden.authz_test.test_allow_with_exact_scope",
		"PASS  data.warden.authz_test.test_blocked_model_denied",
		"PASS  data.warden.authz_test.test_expired_credential_denied",
		" 0 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "FAIL") || strings.Contains(out, "ERROR") {
		t.Errorf("stdout reports failures:\n%s", out)
	}
}

func TestPolicyTestOutcomes(t *testing.T) {
	const policy = "package warden.authz\n\nallow if input.action == \"chat.completions\"\n"
	tests := []struct {
		name     string
		files    map[string]string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"failing test", map[string]string{
			"authz.rego": policy,
			"authz_test.rego": "package warden.authz_test\n\nimport data.warden.authz\n\n" +
				"test_ok if authz.allow with input as {\"action\": \"chat.completions\"}\n\n" +
				"test_wrong if authz.allow with input as {\"action\": \"embeddings\"}\n",
		}, exitFail, []string{"PASS  data.warden.authz_test.test_ok", "FAIL  data.warden.authz_test.test_wrong", "2 tests: 1 passed, 1 failed"}, ""},
		{"erroring test", map[string]string{
			"authz_test.rego": "package warden.authz_test\n\ntest_div if 1 / count([]) > 0\n",
		}, exitFail, []string{"ERROR data.warden.authz_test.test_div", "divide by zero"}, ""},
		{"no tests", map[string]string{"authz.rego": policy}, exitFail, nil, "no tests found"},
		{"compile error", map[string]string{
			"authz.rego": "package warden.authz\n\nallow if nope(1)\n",
		}, exitFail, nil, "authz.rego:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPolicyCmd(t, "test", writePolicyFiles(t, tt.files))
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
		})
	}
}

const evalInput = `{
  "principal": {"kind": "service", "id": "billing-bot", "auth_method": "api_key", "credential_id": "key_01",
                "auth_time": "2025-06-02T09:59:00Z", "scopes": ["inference:*"]},
  "action": "chat.completions",
  "resource": {"route": "inference", "segment": "inference", "api": "openai", "method": "POST",
               "path": "/v1/chat/completions", "model": "%MODEL%", "stream": false},
  "context": {"time": "2025-06-02T10:00:00Z", "source_ip": "10.0.0.7", "request_id": "req_01", "request_bytes": 128}
}`

func TestPolicyEval(t *testing.T) {
	type decision struct {
		Allow         bool           `json:"allow"`
		Reasons       []string       `json:"reasons"`
		Obligations   map[string]any `json:"obligations"`
		PolicyVersion string         `json:"policy_version"`
		Error         string         `json:"error"`
		Fired         []struct {
			Rule  string `json:"rule"`
			File  string `json:"file"`
			Line  int    `json:"line"`
			Value string `json:"value"`
		} `json:"fired"`
		Notes []string `json:"notes"`
	}
	obligations := writePolicyFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow := true\n\nobligations := {\"cap\": [\"email\"]}\n",
	})
	mask := writePolicyFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow := true\n\nobligations := {\"mask\": {\"pii\": \"mask\"}}\n",
	})
	rateClass := writePolicyFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow := true\n\nobligations := {\"rate_class\": \"bulk\"}\n",
	})
	mfa := writePolicyFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow := true\n\nobligations := {\"require_mfa\": true, \"max_tokens\": 256}\n",
	})
	nonbool := writePolicyFiles(t, map[string]string{"authz.rego": "package warden.authz\n\nallow := 1\n"})
	badObligation := writePolicyFiles(t, map[string]string{"authz.rego": "package warden.authz\n\nallow := true\n\nobligations := {\"max_tokens\": 0}\n"})
	tests := []struct {
		name        string
		dir, model  string
		wantCode    int
		wantAllow   bool
		wantReasons []string
		wantErr     string
		wantFired   string // a rule that must be listed as fired
		wantNote    string
	}{
		{"allow", quickstartPolicy, "gpt-4o-mini", exitOK, true,
			[]string{"scope inference:* grants chat.completions on segment inference"}, "", "data.warden.authz.allow", ""},
		{"deny", quickstartPolicy, "internal-finetune-raw", exitOK, false,
			[]string{"model internal-finetune-raw is blocked by policy"}, "", "data.warden.authz.deny", ""},
		{"unknown obligation", obligations, "m", exitOK, false, []string{"unsupported obligation: cap"}, "", "data.warden.authz.obligations", ""},
		{"obligation without an enforcer", rateClass, "m", exitOK, false,
			[]string{"unsupported obligation: rate_class (not enabled on this gateway)"}, "", "data.warden.authz.obligations", ""},
		{"mask needs the guards", mask, "m", exitOK, true, []string{}, "", "data.warden.authz.obligations", "guards.enabled"},
		{"require_mfa needs identity.mfa", mfa, "m", exitOK, true, []string{}, "", "data.warden.authz.obligations", "identity.mfa"},
		{"evaluation error", nonbool, "m", exitFail, false, []string{"policy evaluation failed"}, "allow is number, want boolean", "", ""},
		{"malformed obligation", badObligation, "m", exitFail, false, []string{"policy evaluation failed"}, "obligation max_tokens", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := filepath.Join(t.TempDir(), "input.json")
			if err := os.WriteFile(input, []byte(strings.Replace(evalInput, "%MODEL%", tt.model, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runPolicyCmd(t, "eval", "--dir", tt.dir, "--input", input, "--json")
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			var d decision
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatalf("stdout is not a JSON decision: %v\n%s", err, out)
			}
			if d.Allow != tt.wantAllow || strings.Join(d.Reasons, "|") != strings.Join(tt.wantReasons, "|") {
				t.Errorf("decision = %+v, want allow %v reasons %q", d, tt.wantAllow, tt.wantReasons)
			}
			if !strings.HasPrefix(d.PolicyVersion, "sha256:") {
				t.Errorf("policy_version = %q", d.PolicyVersion)
			}
			if !strings.Contains(d.Error, tt.wantErr) || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("error = %q, stderr = %q; want %q", d.Error, errOut, tt.wantErr)
			}
			if !strings.Contains(out, "\n  \"allow\"") {
				t.Errorf("output is not indented:\n%s", out)
			}
			if tt.wantFired != "" {
				found := false
				for _, f := range d.Fired {
					if f.Rule == tt.wantFired && strings.HasSuffix(f.File, ".rego") && f.Line > 0 {
						found = true
					}
				}
				if !found {
					t.Errorf("fired = %+v, want %s with its file and line", d.Fired, tt.wantFired)
				}
			}
			if !strings.Contains(strings.Join(d.Notes, "\n"), tt.wantNote) {
				t.Errorf("notes = %q, want %q", d.Notes, tt.wantNote)
			}
		})
	}
}

func TestPolicyEvalText(t *testing.T) {
	input := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(input, []byte(strings.Replace(evalInput, "%MODEL%", "internal-finetune-raw", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runPolicyCmd(t, "eval", "--dir", quickstartPolicy, "--input", input)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"decision: deny\n",
		"policy:   sha256:",
		"reasons:\n  - model internal-finetune-raw is blocked by policy\n",
		"rules fired (",
		"data.warden.authz.deny (../../examples/quickstart/policy/authz.rego:",
		`= "model internal-finetune-raw is blocked by policy"`,
		"data.warden.authz.allow (../../examples/quickstart/policy/authz.rego:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runPolicyCmd(t, "eval", "--dir", quickstartPolicy, "--input", input, "--trace")
	if code != exitOK || !strings.Contains(out, "\ntrace:\n") || !strings.Contains(out, "Enter data.warden.authz.deny") {
		t.Errorf("--trace: exit %d, output lacks OPA's trace:\n%.2000s", code, out)
	}
}

func TestPolicyUsage(t *testing.T) {
	input := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(input, []byte(`{"action": "chat.completions"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"actoin": "typo"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no subcommand", nil, exitUsage, "usage:"},
		{"help", []string{"-h"}, exitOK, ""},
		{"unknown subcommand", []string{"lint"}, exitUsage, `unknown subcommand "lint"`},
		{"test without dir", []string{"test"}, exitUsage, "usage: warden policy test DIR"},
		{"test with two dirs", []string{"test", "a", "b"}, exitUsage, "usage:"},
		{"test missing dir", []string{"test", "/nonexistent/policy"}, exitUsage, "no such file"},
		{"test help", []string{"test", "-h"}, exitOK, ""},
		{"eval without flags", []string{"eval"}, exitUsage, "-dir"},
		{"eval without input", []string{"eval", "--dir", quickstartPolicy}, exitUsage, "usage:"},
		{"eval unknown flag", []string{"eval", "--policy", quickstartPolicy}, exitUsage, "flag provided but not defined"},
		{"eval missing input file", []string{"eval", "--dir", quickstartPolicy, "--input", "/nonexistent.json"}, exitUsage, "no such file"},
		{"eval malformed input", []string{"eval", "--dir", quickstartPolicy, "--input", bad}, exitUsage, `unknown field "actoin"`},
		{"eval dir without policy", []string{"eval", "--dir", t.TempDir(), "--input", input}, exitFail, "no policy files"},
		{"eval json and trace", []string{"eval", "--dir", quickstartPolicy, "--input", input, "--json", "--trace"}, exitUsage, "cannot be combined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runPolicyCmd(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
		})
	}
}
