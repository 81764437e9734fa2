package policy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRunTestsQuickstart(t *testing.T) {
	results, err := RunTests(context.Background(), "../../examples/quickstart/policy")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 6 {
		t.Errorf("%d tests ran, want the quickstart's tests (at least 6)", len(results))
	}
	for _, r := range results {
		if r.Outcome != OutcomePass {
			t.Errorf("%s (%s:%d): %s %v %s", r.Name, r.File, r.Line, r.Outcome, r.Err, r.Output)
		}
	}
}

func TestRunTestsOutcomes(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow if input.action == \"chat.completions\"\n",
		"authz_test.rego": `package warden.authz_test

import data.warden.authz

test_pass if authz.allow with input as {"action": "chat.completions"}

test_fail if authz.allow with input as {"action": "embeddings"}

test_error if {
	x := 1 / count([])
	x > 0
}

todo_test_later if false

# data.json files are not loaded: warden policies are .rego only.
test_no_data if not data.config
`,
		"data.json": `{"config": {"a": 1}}`,
	})
	results, err := RunTests(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"test_pass": OutcomePass, "test_fail": OutcomeFail, "test_error": OutcomeError,
		"todo_test_later": OutcomeSkip, "test_no_data": OutcomePass,
	}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(results), len(want), results)
	}
	line := 0
	for _, r := range results {
		short := r.Name[strings.LastIndex(r.Name, ".")+1:]
		if want[short] != r.Outcome {
			t.Errorf("%s: outcome %s, want %s (err %v)", r.Name, r.Outcome, want[short], r.Err)
		}
		if r.Line <= line {
			t.Errorf("results not sorted by line: %s at %d after %d", r.Name, r.Line, line)
		}
		line = r.Line
		if !strings.HasSuffix(r.File, "authz_test.rego") {
			t.Errorf("%s: file %q", r.Name, r.File)
		}
	}
}

func TestRunTestsErrors(t *testing.T) {
	results, err := RunTests(context.Background(), writeFiles(t, map[string]string{
		"authz.rego": "package warden.authz\n\nallow := true\n",
	}))
	if err != nil || len(results) != 0 {
		t.Errorf("dir without tests: %d results, err %v; want none, nil", len(results), err)
	}
	_, err = RunTests(context.Background(), writeFiles(t, map[string]string{
		"authz_test.rego": "package warden.authz_test\n\ntest_x if undefined_fn(1)\n",
	}))
	if err == nil || !strings.Contains(err.Error(), "authz_test.rego:3") {
		t.Errorf("compile error: err = %v, want it to name authz_test.rego:3", err)
	}
	if _, err := RunTests(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing dir: no error")
	}
}
