package demo

import (
	"context"
	"strings"
	"testing"
)

// TestTourPasses runs the whole guided tour in-process: every step must pass.
func TestTourPasses(t *testing.T) {
	var out strings.Builder
	ok, err := Run(context.Background(), Options{Dir: t.TempDir(), Once: true, Out: &out})
	if err != nil {
		t.Fatalf("demo could not run: %v\n%s", err, out.String())
	}
	if !ok || strings.Contains(out.String(), "FAIL") {
		t.Fatalf("tour failed:\n%s", out.String())
	}
	for _, want := range []string{"allowed chat completion", "streamed", "(401)", "(403)", "502", "revoked", "PII in a prompt is masked", "a secret in a prompt is refused",
		"prompt injection is refused", "indirect injection", "canary token leaked", "canary token split",
		"MCP: an agent's tools/list shows only", "tools/call search_docs", "tools/call delete_repo, 403", "audit chain verified"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("tour output lacks %q:\n%s", want, out.String())
		}
	}
}
