package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runSanctionsCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(append([]string{"sanctions"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestSanctionsUsage(t *testing.T) {
	t.Setenv("WARDEN_URL", "")
	t.Setenv("WARDEN_API_KEY", "")
	t.Setenv("WARDEN_TOKEN", "")
	conn := []string{"--server", "http://127.0.0.1:1", "--key-file", "/nonexistent"}
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"no subcommand", nil, "usage:"},
		{"unknown subcommand", []string{"ban"}, `unknown subcommand "ban"`},
		{"add: missing flags", []string{"add"}, "--principal, --type, --reason, --duration required"},
		{"add: throttle needs a class", []string{"add", "--principal", "agent:x", "--type", "throttle", "--duration", "1h", "--reason", "r"}, "--class required"},
		{"add: bad principal", []string{"add", "--principal", "x", "--type", "quarantine", "--duration", "1h", "--reason", "r"}, "want KIND:ID"},
		{"add: bad type", []string{"add", "--principal", "agent:x", "--type", "ban", "--duration", "1h", "--reason", "r"}, "want quarantine, require_mfa or throttle"},
		{"add: class on quarantine", []string{"add", "--principal", "agent:x", "--type", "quarantine", "--class", "slow", "--duration", "1h", "--reason", "r"}, "--class is for --type throttle only"},
		{"add: no server", []string{"add", "--principal", "agent:x", "--type", "quarantine", "--duration", "1h", "--reason", "r"}, "--server URL (or $WARDEN_URL) is required"},
		{"add: plain http off loopback", []string{"add", "--principal", "agent:x", "--type", "quarantine", "--duration", "1h", "--reason", "r", "--server", "http://example.org"}, "loopback addresses only"},
		{"add: unreadable key file", append([]string{"add", "--principal", "agent:x", "--type", "quarantine", "--duration", "1h", "--reason", "r"}, conn...), "--key-file"},
		{"lift: no id", []string{"lift"}, "exactly one sanction ID"},
		{"lift: bad id", []string{"lift", "g_0123"}, "is not a sanction id"},
		{"list: bad principal", []string{"list", "--principal", "robot:x"}, "want KIND:ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runSanctionsCmd(t, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errOut, tt.msg)
			}
		})
	}
	if code, out, _ := runSanctionsCmd(t, "help"); code != exitOK || !strings.Contains(out, "quarantine") {
		t.Fatalf("help: %d %q", code, out)
	}
}

// TestSanctionsClient runs the client against a stand-in of the API: the
// requests it sends and how it prints the answers.
func TestSanctionsClient(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization")+" "+string(b))
		w.Header().Set("Content-Type", "application/json")
		s := `{"id":"s_0123456789abcdef01234567","principal":"agent:x","type":"throttle","class":"slow","reason":"r\u001b[31m","source":"manual","created_by":"ops","created_at":"2026-03-01T12:00:00Z","expires_at":"2026-03-01T13:00:00Z"}`
		switch r.Method {
		case http.MethodGet:
			_, _ = io.WriteString(w, `{"sanctions":[`+s+`]}`)
		case http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"sanction":`+s+`,"changed":true}`)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"message":"no such sanction","code":"unknown_sanction","request_id":"r1"}}`)
		}
	}))
	defer srv.Close()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("wk_test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := []string{"--server", srv.URL, "--key-file", keyFile}

	code, out, errOut := runSanctionsCmd(t, append([]string{"add", "--principal", "agent:x", "--type", "throttle", "--class", "slow",
		"--duration", "1h", "--reason", "noisy"}, conn...)...)
	if code != 0 || out != "s_0123456789abcdef01234567\n" || !strings.Contains(errOut, "throttle (slow) on agent:x until 2026-03-01T13:00:00Z") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	var body map[string]string
	if err := json.Unmarshal([]byte(strings.SplitN(got[0], " ", 5)[4]), &body); err != nil ||
		body["principal"] != "agent:x" || body["type"] != "throttle" || body["class"] != "slow" || body["duration"] != "1h0m0s" ||
		!strings.HasPrefix(got[0], "POST /v1/warden/sanctions Bearer wk_test") {
		t.Fatalf("request: %q", got[0])
	}
	code, out, _ = runSanctionsCmd(t, append([]string{"list", "--principal", "agent:x"}, conn...)...)
	if code != 0 || !strings.Contains(got[1], "GET /v1/warden/sanctions?principal=agent%3Ax") || !strings.Contains(out, "throttle (slow)") ||
		strings.Contains(out, "\x1b") {
		t.Fatalf("list: %d %q (request %q)", code, out, got[1])
	}
	code, _, errOut = runSanctionsCmd(t, append([]string{"lift", "s_0123456789abcdef01234567"}, conn...)...)
	if code != exitFail || !strings.Contains(errOut, "404 unknown_sanction") || !strings.HasPrefix(got[2], "DELETE /v1/warden/sanctions/s_0123456789abcdef01234567") {
		t.Fatalf("lift: %d %q", code, errOut)
	}
}
