package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// guardsRego masks personal data for every chat request and blocks
// secrets for the model "strict".
const guardsRego = `package warden.authz

obligations := {"mask": {"pii": "mask"}} if input.resource.model != "strict"

obligations := {"mask": {"pii": "mask", "secret": "block"}} if input.resource.model == "strict"
`

// TestGuardsMaskAndBlock: with a policy's mask obligation, personal data in
// a prompt reaches the model masked (the stand-in echoes the prompt in its
// reply), a secret under a block rule is refused with 403 before the
// upstream, and the audit record carries the findings: types and spans,
// never the values.
func TestGuardsMaskAndBlock(t *testing.T) {
	e := startWardenOpts(t, options{Policy: map[string]string{"guards.rego": guardsRego}})
	const (
		email  = "jane.doe@example.com"
		card   = "4111 1111 1111 1111"
		awsKey = "AKIAIOSFODNN7EXAMPLE"
	)
	post := func(model, prompt string, stream bool) (int, string, string) {
		t.Helper()
		body, _ := json.Marshal(map[string]any{"model": model, "stream": stream,
			"messages": []any{map[string]string{"role": "user", "content": prompt}}})
		req, err := http.NewRequest(http.MethodPost, e.base+"/v1/chat/completions", bytes.NewReader(body))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+e.appKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := e.httpClient.Do(req)
		must(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		must(t, err)
		return res.StatusCode, string(b), res.Header.Get("X-Request-Id")
	}

	code, body, maskedID := post("warden-standin-small", "Mail "+email+", card "+card+".", false)
	if code != http.StatusOK {
		t.Fatalf("masked request: %d %s", code, body)
	}
	if strings.Contains(body, email) || strings.Contains(body, card) ||
		!strings.Contains(body, "[EMAIL]") || !strings.Contains(body, "[PAYMENT_CARD]") {
		t.Fatalf("the stand-in did not see the prompt masked: %s", body)
	}

	code, body, _ = post("warden-standin-small", "Mail "+email+" please", true)
	if code != http.StatusOK || strings.Contains(body, email) || !strings.Contains(body, "[EMAIL]") || !strings.Contains(body, "data: [DONE]") {
		t.Fatalf("masked stream: %d %s", code, body)
	}

	code, body, blockedID := post("strict", "my key is "+awsKey, false)
	if code != http.StatusForbidden || !strings.Contains(body, `"content_blocked"`) || strings.Contains(body, awsKey) {
		t.Fatalf("secret under a block rule: %d %s", code, body)
	}

	must(t, e.proc.Process.Signal(syscall.SIGTERM))
	if err := e.proc.Wait(); err != nil {
		t.Fatalf("warden exit: %v", err)
	}
	raw, err := readAuditRaw(e.auditPath)
	must(t, err)
	for _, v := range []string{email, card, awsKey, "4111"} {
		if strings.Contains(string(raw), v) {
			t.Fatalf("the audit log holds %q in clear", v)
		}
	}
	exported, errOut, exit := runCLI(t, "audit", "export", "--log", e.auditPath)
	if exit != 0 {
		t.Fatalf("audit export: exit %d: %s", exit, errOut)
	}
	type finding struct {
		Type, Class, Where, Action string
		Start, End                 int64
	}
	records := map[string][]finding{}
	sc := bufio.NewScanner(strings.NewReader(exported))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r struct {
			RequestID string    `json:"request_id"`
			Findings  []finding `json:"findings"`
		}
		must(t, json.Unmarshal(sc.Bytes(), &r))
		records[r.RequestID] = r.Findings
	}
	got := func(id string) map[string]finding {
		m := map[string]finding{}
		for _, f := range records[id] {
			if f.End <= f.Start {
				t.Errorf("finding without a span: %+v", f)
			}
			m[f.Where+":"+f.Type] = f
		}
		return m
	}
	m := got(maskedID)
	if m["request:email"].Action != "masked" || m["request:payment_card"].Action != "masked" || m["request:email"].Class != "pii" {
		t.Errorf("masked request findings %+v", records[maskedID])
	}
	if b := got(blockedID); b["request:aws_access_key"].Action != "blocked" || b["request:aws_access_key"].Class != "secret" {
		t.Errorf("blocked request findings %+v", records[blockedID])
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "guards.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("hash key file: %v %v", fi, err)
	}
}
