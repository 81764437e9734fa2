// Package e2e tests the real warden binary from outside: it is built once,
// configured through files and the CLI, started as a process, and spoken to
// with the official OpenAI Go SDK over TLS.
package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/warden-ai/warden/internal/standin"
)

// wardenBin is the binary under test, built once in TestMain.
var wardenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wardenBin = filepath.Join(dir, "warden")
	build := exec.Command("go", "build", "-o", wardenBin, "../cmd/warden")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building warden:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one running warden with its upstream and files.
type env struct {
	t           *testing.T
	dir         string
	base        string // https://127.0.0.1:port
	admin       string // http://127.0.0.1:port
	httpClient  *http.Client
	model       *standin.Server
	upstreamKey string
	auditPath   string // the audit log directory
	auditKey    string // its checkpoint key file
	keysPath    string
	proc        *exec.Cmd
	appKey      string // scope inference:*
	appID       string
	readKey     string // scope inference:models.list
	readID      string
	stderr      *lockedBuffer
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// writeCert writes a self-made CA-less server certificate for 127.0.0.1 and
// returns a pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool { return writeCertSerial(t, dir, 1) }

// writeCertSerial is writeCert with a chosen serial number, to tell two
// certificates apart.
func writeCertSerial(t *testing.T, dir string, serial int64) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "warden-e2e"},
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
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	must(t, os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// runCLI runs the binary with args and returns stdout, stderr and the exit code.
// readAuditRaw returns the bytes of every file of the audit log directory
// (records, hashes, checkpoints), to search for what must not be there.
func readAuditRaw(dir string) ([]byte, error) {
	var raw []byte
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		raw = append(raw, b...)
		return err
	})
	return raw, err
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(wardenBin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running warden %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func startWarden(t *testing.T) *env { return startWardenOpts(t, options{}) }

// startWardenWith starts warden in front of a stand-in model that waits
// chunkDelay between streamed chunks.
func startWardenWith(t *testing.T, chunkDelay time.Duration) *env {
	return startWardenOpts(t, options{ChunkDelay: chunkDelay})
}

// options vary the warden under test.
type options struct {
	ChunkDelay time.Duration
	TLSExtra   string            // YAML lines added under listeners[0].tls (indented 6 spaces)
	Identity   string            // an "identity:" YAML block appended to the config
	Policy     map[string]string // extra policy files (name → Rego), beside the quickstart policy
	Prepare    func(dir string)  // writes fixtures into the config directory before the start
}

func startWardenOpts(t *testing.T, o options) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), upstreamKey: "upstream-secret-" + fmt.Sprint(time.Now().UnixNano())}
	e.model = &standin.Server{APIKey: e.upstreamKey, ChunkDelay: o.ChunkDelay}
	up := httptest.NewServer(e.model)
	t.Cleanup(up.Close)
	dead := freeAddr(t) // nothing listens there

	pool := writeCert(t, e.dir)
	must(t, os.MkdirAll(filepath.Join(e.dir, "policy"), 0o700))
	for _, f := range []string{"authz.rego", "authz_test.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "policy", f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(e.dir, "policy", f), b, 0o600))
	}
	for name, text := range o.Policy {
		must(t, os.WriteFile(filepath.Join(e.dir, "policy", name), []byte(text), 0o600))
	}
	if o.Prepare != nil {
		o.Prepare(e.dir)
	}
	listen, admin := freeAddr(t), freeAddr(t)
	cfg := fmt.Sprintf(`listeners:
  - name: public
    address: %s
    read_header_timeout: 1s
    max_body_bytes: 65536
    tls:
      cert_file: cert.pem
      key_file: key.pem
%sadmin:
  address: %s
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream:
      url: %s
      timeout: 5s
      credential:
        env: WARDEN_E2E_UPSTREAM_KEY
  - name: offline
    prefix: /offline/v1/
    strip_prefix: true
    segment: inference
    upstream:
      url: http://%s/v1
      dial_timeout: 1s
keys:
  path: data/keys.json
policy:
  dir: policy
audit:
  path: data/audit.log
%s`, listen, o.TLSExtra, admin, up.URL, dead, o.Identity)
	cfgPath := filepath.Join(e.dir, "warden.yaml")
	must(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	e.auditPath = filepath.Join(e.dir, "data", "audit.log")
	e.auditKey = filepath.Join(e.dir, "audit-checkpoint.key") // audit.checkpoint.key_file's default
	e.keysPath = filepath.Join(e.dir, "data", "keys.json")
	must(t, os.MkdirAll(filepath.Join(e.dir, "data"), 0o700))

	// Keys are created before the start, as an operator would; keys created
	// later become active at the store's next poll (tested with revocation).
	e.appKey, e.appID = e.createKey("e2e-app", "inference:*")
	e.readKey, e.readID = e.createKey("e2e-readonly", "inference:models.list")

	e.proc = exec.Command(wardenBin, "serve", "--config", cfgPath)
	e.proc.Env = append(os.Environ(), "WARDEN_E2E_UPSTREAM_KEY="+e.upstreamKey)
	e.stderr = &lockedBuffer{}
	e.proc.Stderr = e.stderr
	must(t, e.proc.Start())
	t.Cleanup(func() {
		if e.proc.ProcessState == nil {
			_ = e.proc.Process.Kill()
			_ = e.proc.Wait()
		}
		if t.Failed() {
			t.Logf("warden stderr:\n%s", e.stderr.String())
		}
	})
	e.base = "https://" + listen
	e.admin = "http://" + admin
	e.httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(e.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("warden did not become ready: %v\n%s", err, e.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return e
}

// createKey makes an API key through the real CLI.
func (e *env) createKey(subject, scopes string) (key, id string) {
	e.t.Helper()
	out, errOut, code := runCLI(e.t, "keys", "create", "--store", e.keysPath, "--subject", subject, "--scopes", scopes, "--json")
	if code != 0 {
		e.t.Fatalf("keys create: exit %d: %s", code, errOut)
	}
	var k struct{ ID, Key string }
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key == "" {
		e.t.Fatalf("keys create output %q: %v", out, err)
	}
	return k.Key, k.ID
}

func (e *env) client(key, path string) openai.Client {
	return openai.NewClient(
		option.WithBaseURL(e.base+path),
		option.WithAPIKey(key),
		option.WithHTTPClient(e.httpClient),
		option.WithMaxRetries(0),
	)
}

func apiErr(t *testing.T, err error) *openai.Error {
	t.Helper()
	var ae *openai.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want an API error, got %v", err)
	}
	return ae
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestGatewayWithOpenAISDK(t *testing.T) {
	e := startWarden(t)
	ctx := context.Background()
	appKey, readKey, readID := e.appKey, e.readKey, e.readID
	const prompt = "What does warden do?"
	params := openai.ChatCompletionNewParams{
		Model:    "warden-standin-small",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	}
	app := e.client(appKey, "/v1/")

	t.Run("allowed chat completion", func(t *testing.T) {
		cc, err := app.Chat.Completions.New(ctx, params)
		must(t, err)
		if len(cc.Choices) != 1 || cc.Choices[0].Message.Content != standin.Reply(prompt) {
			t.Fatalf("completion %+v", cc.Choices)
		}
		h := e.model.LastHeaders()
		if h.Get("Authorization") != "Bearer "+e.upstreamKey {
			t.Fatalf("upstream saw Authorization %q, want warden's credential", h.Get("Authorization"))
		}
		if strings.Contains(fmt.Sprint(h), appKey) {
			t.Fatal("the client's API key reached the upstream")
		}
	})

	t.Run("streamed chat completion", func(t *testing.T) {
		stream := app.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			chunks++
			acc.AddChunk(stream.Current())
		}
		must(t, stream.Err())
		must(t, stream.Close())
		if chunks < 3 || len(acc.Choices) != 1 || acc.Choices[0].Message.Content != standin.Reply(prompt) {
			t.Fatalf("%d chunks, accumulated %+v", chunks, acc.Choices)
		}
	})

	t.Run("models list allowed for read-only key", func(t *testing.T) {
		c := e.client(readKey, "/v1/")
		page, err := c.Models.List(ctx)
		must(t, err)
		if len(page.Data) == 0 {
			t.Fatal("no models")
		}
	})

	t.Run("invalid key is 401", func(t *testing.T) {
		c := e.client("wk_not_a_real_key", "/v1/")
		_, err := c.Chat.Completions.New(ctx, params)
		if ae := apiErr(t, err); ae.StatusCode != 401 || ae.Code != "invalid_api_key" {
			t.Fatalf("got %d %q", ae.StatusCode, ae.Code)
		}
	})

	t.Run("policy denies read-only key chat with 403", func(t *testing.T) {
		c := e.client(readKey, "/v1/")
		_, err := c.Chat.Completions.New(ctx, params)
		ae := apiErr(t, err)
		if ae.StatusCode != 403 || ae.Code != "policy_denied" {
			t.Fatalf("got %d %q", ae.StatusCode, ae.Code)
		}
		if strings.Contains(ae.Message, "scope") || strings.Contains(ae.Message, "rego") {
			t.Fatalf("denial leaks policy internals: %q", ae.Message)
		}
	})

	t.Run("upstream down is 502", func(t *testing.T) {
		c := e.client(appKey, "/offline/v1/")
		_, err := c.Models.List(ctx)
		if ae := apiErr(t, err); ae.StatusCode != 502 || ae.Code != "upstream_unavailable" {
			t.Fatalf("got %d %q", ae.StatusCode, ae.Code)
		}
	})

	t.Run("revoked key is 401 within a second", func(t *testing.T) {
		if _, errOut, code := runCLI(t, "keys", "revoke", "--store", e.keysPath, readID); code != 0 {
			t.Fatalf("keys revoke: exit %d: %s", code, errOut)
		}
		deadline := time.Now().Add(time.Second + 500*time.Millisecond)
		for {
			c := e.client(readKey, "/v1/")
			_, err := c.Models.List(ctx)
			if err != nil {
				if ae := apiErr(t, err); ae.StatusCode == 401 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("revoked key still accepted: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		chat := `{"model":"m","messages":[]}`
		for _, tc := range []struct {
			name, method, path, ctype, body string
			status                          int
			code                            string
		}{
			{"unknown route", "GET", "/admin", "", "", 404, "unknown_route"},
			{"unknown method", "PATCH", "/v1/chat/completions", "application/json", chat, 405, "method_not_allowed"},
			{"wrong content type", "POST", "/v1/chat/completions", "text/plain", chat, 415, "unsupported_media_type"},
			{"malformed json", "POST", "/v1/chat/completions", "application/json", `{"model"`, 400, "invalid_json"},
			{"invalid utf-8", "POST", "/v1/chat/completions", "application/json", "{\"model\":\"\xc3\x28\"}", 400, "invalid_utf8"},
			{"oversized body", "POST", "/v1/chat/completions", "application/json", `{"x":"` + strings.Repeat("a", 70000) + `"}`, 413, "body_too_large"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, e.base+tc.path, body)
				must(t, err)
				req.Header.Set("Authorization", "Bearer "+appKey)
				if tc.ctype != "" {
					req.Header.Set("Content-Type", tc.ctype)
				}
				res, err := e.httpClient.Do(req)
				must(t, err)
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var eb struct {
					Error struct {
						Code      string
						RequestID string `json:"request_id"`
					}
				}
				if res.StatusCode != tc.status || json.Unmarshal(b, &eb) != nil || eb.Error.Code != tc.code ||
					eb.Error.RequestID != res.Header.Get("X-Request-Id") {
					t.Fatalf("got %d %s", res.StatusCode, b)
				}
			})
		}
	})

	t.Run("slow client is cut off by the header timeout", func(t *testing.T) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(e.base, "https://"), &tls.Config{RootCAs: e.httpClient.Transport.(*http.Transport).TLSClientConfig.RootCAs})
		must(t, err)
		defer conn.Close()
		_, err = io.WriteString(conn, "GET /v1/models HTTP/1.1\r\nHost: x\r\n") // never finishes the headers
		must(t, err)
		must(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
		start := time.Now()
		_, err = io.ReadAll(conn) // the server must close the connection
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection still open after %s", time.Since(start))
		}
	})

	t.Run("a repeated request is decided from the memo", func(t *testing.T) {
		hits := func() float64 {
			res, err := http.Get(e.admin + "/metrics")
			must(t, err)
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(line, `warden_policy_memo_total{result="hit"} `); ok {
					f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
					must(t, err)
					return f
				}
			}
			t.Fatal("metrics lack warden_policy_memo_total")
			return 0
		}
		before := hits()
		// Three identical requests inside a second (the policy reads the
		// time to the second): at most one crosses a second, so at least
		// one of the last two is decided from the memo.
		start := time.Now()
		for range 3 {
			_, err := app.Chat.Completions.New(ctx, params)
			must(t, err)
		}
		if time.Since(start) >= time.Second {
			t.Skip("the three requests took more than a second")
		}
		if after := hits(); after < before+1 {
			t.Fatalf("memo hits %v -> %v, want at least one more", before, after)
		}
	})

	t.Run("metrics count decisions", func(t *testing.T) {
		res, err := http.Get(e.admin + "/metrics")
		must(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for _, want := range []string{
			`warden_requests_total{decision="allow",route="inference",status="200"}`,
			`warden_requests_total{decision="deny",route="inference",status="403"}`,
			`warden_request_duration_seconds_bucket`,
		} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
	})

	// Stop warden gracefully; every request above must be in a verified log.
	must(t, e.proc.Process.Signal(syscall.SIGTERM))
	if err := e.proc.Wait(); err != nil {
		t.Fatalf("warden exit: %v\n%s", err, e.stderr.String())
	}

	t.Run("audit log verifies and holds every outcome without secrets", func(t *testing.T) {
		out, errOut, code := runCLI(t, "audit", "verify", "--log", e.auditPath, "--key", e.auditKey)
		if code != 0 {
			t.Fatalf("audit verify: exit %d: %s %s", code, out, errOut)
		}
		raw, err := readAuditRaw(e.auditPath)
		must(t, err)
		for _, secret := range []string{appKey, readKey, e.upstreamKey, strings.SplitN(appKey, "_", 3)[2]} {
			if strings.Contains(string(raw), secret) {
				t.Fatal("a secret is in the audit log in clear")
			}
		}
		exported, errOut, code := runCLI(t, "audit", "export", "--log", e.auditPath)
		if code != 0 {
			t.Fatalf("audit export: exit %d: %s", code, errOut)
		}
		statuses := map[int]int{}
		sc := bufio.NewScanner(strings.NewReader(exported))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var r struct {
				Status    int    `json:"status"`
				RequestID string `json:"request_id"`
			}
			must(t, json.Unmarshal(sc.Bytes(), &r))
			if r.RequestID == "" {
				t.Fatalf("record without request id: %s", sc.Text())
			}
			statuses[r.Status]++
		}
		for _, s := range []int{200, 401, 403, 404, 405, 413, 415, 400, 502} {
			if statuses[s] == 0 {
				t.Fatalf("no audit record with status %d (have %v)", s, statuses)
			}
		}
		// Tampering is detected by the CLI.
		bad := filepath.Join(e.dir, "tampered")
		must(t, os.CopyFS(bad, os.DirFS(e.auditPath)))
		segs, _ := filepath.Glob(filepath.Join(bad, "seg-*.log"))
		for _, seg := range segs {
			data, err := os.ReadFile(seg)
			must(t, err)
			must(t, os.WriteFile(seg, []byte(strings.Replace(string(data), `"status":403`, `"status":200`, 1)), 0o600))
		}
		if out, _, code := runCLI(t, "audit", "verify", "--log", bad, "--key", e.auditKey); code != 1 || !strings.Contains(out, "FAILED: record") {
			t.Fatalf("tampered log: exit %d, want 1: %s", code, out)
		}
	})
}
