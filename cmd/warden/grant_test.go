package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/server"
)

func runGrantCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb strings.Builder
	code = run(append([]string{"grant"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// grantServer is a real warden serving TLS with a certificate only caFile
// verifies, the quickstart policy with grants, and key files holding
// warden tokens for users.
type grantServer struct {
	url     string
	caFile  string
	cfgPath string
	dir     string
}

func startGrantServer(t *testing.T) *grantServer {
	t.Helper()
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warden-grant-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	write("key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	for _, f := range []string{"authz.rego", "grants.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "policy", f))
		if err != nil {
			t.Fatal(err)
		}
		write(filepath.Join("policy", f), string(b))
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"object":"list","data":[]}`)
	}))
	t.Cleanup(upstream.Close)
	write("warden.yaml", `listeners:
  - name: public
    address: 127.0.0.1:0
    tls: {cert_file: cert.pem, key_file: key.pem}
admin: {address: "off"}
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream: {url: "`+upstream.URL+`"}
keys: {path: keys.json}
policy:
  dir: policy
  grants: {max_duration: 4h}
audit: {path: audit.log}
`)
	cfgPath := filepath.Join(dir, "warden.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(context.Background(), cfg, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return &grantServer{url: "https://" + srv.ListenerAddrs()[0], caFile: filepath.Join(dir, "cert.pem"), cfgPath: cfgPath, dir: dir}
}

// userKeyFile issues a warden token for a user with the real CLI and
// writes it to a key file.
func (s *grantServer) userKeyFile(t *testing.T, user string, roles string) string {
	t.Helper()
	args := []string{"token", "issue", "--config", s.cfgPath, "--subject", user, "--kind", "user", "--ttl", "10m"}
	if roles != "" {
		args = append(args, "--roles", roles)
	}
	var out, errb strings.Builder
	if code := run(args, &out, &errb); code != exitOK {
		t.Fatalf("token issue: %d %s", code, errb.String())
	}
	p := filepath.Join(s.dir, user+".token")
	if err := os.WriteFile(p, []byte(out.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *grantServer) conn(keyFile string) []string {
	return []string{"--server", s.url, "--ca-file", s.caFile, "--key-file", keyFile}
}

func TestGrantCLIFlow(t *testing.T) {
	s := startGrantServer(t)
	alice := s.userKeyFile(t, "alice", "")
	bob := s.userKeyFile(t, "bob", "grant-approver")

	code, out, errOut := runGrantCmd(t, append([]string{"request", "--action", "chat.completions", "--segment", "inference",
		"--duration", "2h", "--reason", "incident 42"}, s.conn(alice)...)...)
	id := strings.TrimSpace(out)
	if code != exitOK || !grantIDForm(id) || !strings.Contains(errOut, "requested grant "+id+" for alice") {
		t.Fatalf("request: %d %q %q", code, out, errOut)
	}

	// The requester cannot approve: policy refuses (no approver role).
	code, _, errOut = runGrantCmd(t, append([]string{"approve", id}, s.conn(alice)...)...)
	if code != exitFail || !strings.Contains(errOut, "refused (403 policy_denied)") || !strings.Contains(errOut, "request id ") {
		t.Fatalf("approve by the requester: %d %q", code, errOut)
	}
	// Flags after the id work too.
	code, out, errOut = runGrantCmd(t, append([]string{"approve", id, "--note", "on call"}, s.conn(bob)...)...)
	if code != exitOK || !strings.Contains(out, "approved grant "+id+" for alice: chat.completions on segment inference until ") {
		t.Fatalf("approve: %d %q %q", code, out, errOut)
	}

	code, out, _ = runGrantCmd(t, append([]string{"list"}, s.conn(alice)...)...)
	if code != exitOK || !strings.Contains(out, id) || !strings.Contains(out, "approved") || !strings.Contains(out, "incident 42") {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ = runGrantCmd(t, append([]string{"list", "--json", "--status", "approved"}, s.conn(bob)...)...)
	var listed struct {
		Grants []struct {
			ID         string `json:"id"`
			ApprovedBy string `json:"approved_by"`
			History    []struct{ Step, By, Note string }
		}
	}
	if code != exitOK || json.Unmarshal([]byte(out), &listed) != nil || len(listed.Grants) != 1 || listed.Grants[0].ID != id || listed.Grants[0].ApprovedBy != "bob" {
		t.Fatalf("list --json: %d %q", code, out)
	}
	if h := listed.Grants[0].History; len(h) != 2 || h[1].By != "bob" || h[1].Note != "on call" {
		t.Fatalf("history: %+v", h)
	}

	// Self-approval: bob asks for himself and cannot approve it.
	code, out, _ = runGrantCmd(t, append([]string{"request", "--action", "*", "--segment", "inference", "--duration", "30m",
		"--reason", "drill"}, s.conn(bob)...)...)
	bid := strings.TrimSpace(out)
	if code != exitOK {
		t.Fatalf("bob's request: %d", code)
	}
	code, _, errOut = runGrantCmd(t, append([]string{"approve", bid}, s.conn(bob)...)...)
	if code != exitFail || !strings.Contains(errOut, "refused (403 grant_forbidden)") || !strings.Contains(errOut, "cannot approve it") {
		t.Fatalf("self-approval: %d %q", code, errOut)
	}
	// Above max_duration: refused by warden with the reason.
	code, _, errOut = runGrantCmd(t, append([]string{"request", "--action", "*", "--segment", "inference", "--duration", "5h",
		"--reason", "long"}, s.conn(alice)...)...)
	if code != exitFail || !strings.Contains(errOut, "longer than the maximum 4h0m0s") {
		t.Fatalf("over max_duration: %d %q", code, errOut)
	}

	code, out, _ = runGrantCmd(t, append([]string{"deny", bid, "--note", "not now"}, s.conn(bob)...)...)
	if code != exitOK || !strings.Contains(out, "denied grant "+bid) {
		t.Fatalf("deny: %d %q", code, out)
	}
	code, out, _ = runGrantCmd(t, append([]string{"revoke", id, "--json"}, s.conn(alice)...)...)
	var one struct {
		Grant struct {
			State   string `json:"state"`
			EndedBy string `json:"ended_by"`
		} `json:"grant"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &one) != nil || one.Grant.State != "revoked" || one.Grant.EndedBy != "alice" {
		t.Fatalf("revoke by the grantee: %d %q", code, out)
	}
	code, _, errOut = runGrantCmd(t, append([]string{"revoke", id}, s.conn(bob)...)...)
	if code != exitFail || !strings.Contains(errOut, "409 grant_conflict") {
		t.Fatalf("second revoke: %d %q", code, errOut)
	}
	code, out, errOut = runGrantCmd(t, append([]string{"list", "--status", "open"}, s.conn(alice)...)...)
	if code != exitOK || strings.Contains(out, id) || !strings.Contains(errOut, "no grants") {
		t.Fatalf("open grants after revoke: %d %q %q", code, out, errOut)
	}

	// The environment stands in for the flags.
	tok, err := os.ReadFile(bob)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_URL", s.url)
	t.Setenv("WARDEN_TOKEN", string(tok))
	if code, out, errOut := runGrantCmd(t, "list", "--ca-file", s.caFile, "--status", "denied"); code != exitOK || !strings.Contains(out, bid) {
		t.Fatalf("list from the environment: %d %q %q", code, out, errOut)
	}
	// Without --ca-file the self-made certificate is not trusted.
	if code, _, errOut := runGrantCmd(t, "list"); code != exitFail || !strings.Contains(errOut, "cannot reach warden") {
		t.Fatalf("untrusted certificate: %d %q", code, errOut)
	}
}

func TestGrantCLIFailures(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	if err := os.WriteFile(key, []byte("wk_secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	spaced := filepath.Join(dir, "spaced")
	if err := os.WriteFile(spaced, []byte("two words"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WARDEN_URL", "")
	t.Setenv("WARDEN_API_KEY", "")
	t.Setenv("WARDEN_TOKEN", "")
	// A server that is not warden: HTML 404 for everything.
	notWarden := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>nope</html>", http.StatusNotFound)
	}))
	t.Cleanup(notWarden.Close)
	// A closed port: nothing listens.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	const id = "g_0123456789abcdef01234567"
	tests := []struct {
		name string
		args []string
		code int
		msg  string // in stderr
	}{
		{"no subcommand", nil, exitUsage, "usage:"},
		{"unknown subcommand", []string{"extend"}, exitUsage, `unknown subcommand "extend"`},
		{"help", []string{"--help"}, exitOK, ""},
		{"subcommand help", []string{"approve", "-h"}, exitOK, "usage: warden grant approve"},
		{"request without flags", []string{"request", "--server", notWarden.URL, "--key-file", key}, exitUsage, "--action, --segment, --reason, --duration required"},
		{"negative duration", []string{"request", "--action", "a", "--segment", "s", "--reason", "r", "--duration", "-1h"}, exitUsage, "must be positive"},
		{"request with an argument", []string{"request", "extra"}, exitUsage, "unexpected argument"},
		{"approve without id", []string{"approve", "--key-file", key}, exitUsage, "exactly one grant ID"},
		{"approve with two ids", []string{"approve", id, id}, exitUsage, "exactly one grant ID"},
		{"malformed id", []string{"revoke", "g_XYZ"}, exitUsage, "is not a grant id"},
		{"id with a path", []string{"approve", "../../token"}, exitUsage, "is not a grant id"},
		{"no server", []string{"list", "--key-file", key}, exitUsage, "--server URL (or $WARDEN_URL) is required"},
		{"plain http off loopback", []string{"list", "--server", "http://warden.example:8443", "--key-file", key}, exitUsage, "loopback addresses only"},
		{"server with credentials", []string{"list", "--server", "https://u:p@warden.example", "--key-file", key}, exitUsage, "must not hold credentials"},
		{"server not http", []string{"list", "--server", "ftp://warden.example", "--key-file", key}, exitUsage, "want https://"},
		{"no credential", []string{"list", "--server", notWarden.URL}, exitUsage, "no credential"},
		{"missing key file", []string{"list", "--server", notWarden.URL, "--key-file", filepath.Join(dir, "none")}, exitUsage, "--key-file"},
		{"empty key file", []string{"list", "--server", notWarden.URL, "--key-file", empty}, exitUsage, "is empty"},
		{"key file with spaces", []string{"list", "--server", notWarden.URL, "--key-file", spaced}, exitUsage, "holds a space"},
		{"ca file not PEM", []string{"list", "--server", notWarden.URL, "--key-file", key, "--ca-file", notPEM}, exitUsage, "no PEM certificate"},
		{"bad status", []string{"list", "--status", "active"}, exitUsage, `--status "active"`},
		{"negative limit", []string{"list", "--limit", "-1"}, exitUsage, "--limit"},
		{"not warden", []string{"list", "--server", notWarden.URL, "--key-file", key}, exitFail, "not a warden error body"},
		{"unreachable", []string{"deny", id, "--server", closed, "--key-file", key, "--timeout", "2s"}, exitFail, "cannot reach warden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runGrantCmd(t, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("exit %d, stderr %q (stdout %q); want exit %d and %q", code, errOut, out, tc.code, tc.msg)
			}
			if strings.Contains(out+errOut, "wk_secret") {
				t.Fatal("the credential was printed")
			}
		})
	}
}

func TestGrantSafe(t *testing.T) {
	for in, want := range map[string]string{
		"":            "-",
		"alice":       "alice",
		"a b":         "a b",
		"\x1b[31mred": `\x1b[31mred`,
		"a\u202eb":    `a\u202eb`,
		"\xff":        `\xff`,
	} {
		if got := grantSafe(in); got != want {
			t.Errorf("grantSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
