package e2e

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRevocationEndsRunningStream: zero trust means a credential is checked
// for as long as it is used. A stream that is running when its API key is
// revoked with `warden keys revoke` ends within a second, with a final SSE
// error event rather than a cut connection.
func TestRevocationEndsRunningStream(t *testing.T) {
	e := startWardenWith(t, 250*time.Millisecond) // ~20 chunks: a 5 s stream
	req, err := http.NewRequest("POST", e.base+"/v1/chat/completions", strings.NewReader(
		`{"model":"warden-standin-small","stream":true,"messages":[{"role":"user","content":"a long answer please"}]}`))
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+e.appKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := e.httpClient.Do(req)
	must(t, err)
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "data: ") {
		t.Fatalf("first line %q", sc.Text())
	}
	if _, errOut, code := runCLI(t, "keys", "revoke", "--store", e.keysPath, e.appID); code != 0 {
		t.Fatalf("keys revoke: exit %d: %s", code, errOut)
	}
	revokedAt := time.Now()
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	elapsed := time.Since(revokedAt)
	if elapsed > 1500*time.Millisecond { // 1 s budget plus process start of the CLI's write landing
		t.Fatalf("stream ran %s after the revocation", elapsed)
	}
	tail := strings.Join(lines, "\n")
	if strings.Contains(tail, "data: [DONE]") {
		t.Fatal("the stream completed: revocation did not take effect")
	}
	if !strings.Contains(tail, "event: error") || !strings.Contains(tail, `"code":"credential_revoked"`) {
		t.Fatalf("no final error event; tail:\n%s", tail)
	}
	t.Logf("stream ended %s after `warden keys revoke` returned", elapsed.Round(time.Millisecond))
}
