package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
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

	"github.com/jackc/pgx/v5"

	"github.com/warden-ai/warden/internal/standin"
)

// The kill -9 test: warden in sync mode under concurrent load is killed
// with SIGKILL at a random moment, again and again. After every kill,
// `warden audit verify` must pass (torn bytes at the end are reported), the
// next start must report any repair it made, and every request that got an
// answer (2xx or 4xx: acknowledged) must be in the log. WARDEN_KILL_CYCLES
// sets the number of kills (default 5); the full run is
//
//	WARDEN_KILL_CYCLES=100 go test ./e2e -run 'TestKill9$' -timeout 30m -v
func TestKill9(t *testing.T) {
	runKill9(t, "")
}

// TestKill9Postgres is TestKill9 with the log in PostgreSQL
// (WARDEN_TEST_POSTGRES), in a schema of its own.
func TestKill9Postgres(t *testing.T) {
	dsn := os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set: give a PostgreSQL DSN to run the kill -9 test against the PostgreSQL audit backend")
	}
	runKill9(t, dsn)
}

func killCycles(t *testing.T) int {
	s := os.Getenv("WARDEN_KILL_CYCLES")
	if s == "" {
		return 5
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("WARDEN_KILL_CYCLES=%q: want a positive number", s)
	}
	return n
}

func randN(max int64) int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(max))
	if err != nil {
		panic(err)
	}
	return n.Int64()
}

// killRig is the fixed part of the test: config, keys, upstream, client.
type killRig struct {
	t        *testing.T
	dir, cfg string
	base     string
	admin    string
	upKey    string
	client   *http.Client
	appKey   string // allowed: 200
	readKey  string // denied chat: 403
	proc     *exec.Cmd
	stderr   *lockedBuffer
	postgres bool
}

func newKillRig(t *testing.T, dsn string) *killRig {
	dir := t.TempDir()
	r := &killRig{t: t, dir: dir, upKey: "upstream-secret-kill9", postgres: dsn != ""}
	up := httptest.NewServer(&standin.Server{APIKey: r.upKey})
	t.Cleanup(up.Close)
	pool := writeCert(t, dir)
	must(t, os.MkdirAll(filepath.Join(dir, "policy"), 0o700))
	for _, f := range []string{"authz.rego", "authz_test.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "policy", f))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dir, "policy", f), b, 0o600))
	}
	must(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	listen, admin := freeAddr(t), freeAddr(t)
	auditCfg := "audit:\n  path: data/audit\n  mode: sync\n  checkpoint:\n    interval: 500ms\n"
	if dsn != "" {
		schema := killSchema(t, dsn)
		auditCfg = fmt.Sprintf("audit:\n  backend: postgres\n  postgres:\n    dsn: %q\n    schema: %s\n  mode: sync\n  checkpoint:\n    interval: 500ms\n", dsn, schema)
	}
	cfg := fmt.Sprintf(`listeners:
  - name: public
    address: %s
    read_header_timeout: 2s
    max_body_bytes: 65536
    tls:
      cert_file: cert.pem
      key_file: key.pem
admin:
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
keys:
  path: data/keys.json
policy:
  dir: policy
%s`, listen, admin, up.URL, auditCfg)
	r.cfg = filepath.Join(dir, "warden.yaml")
	must(t, os.WriteFile(r.cfg, []byte(cfg), 0o600))
	keys := &env{t: t, keysPath: filepath.Join(dir, "data", "keys.json")}
	r.appKey, _ = keys.createKey("kill9-app", "inference:*")
	r.readKey, _ = keys.createKey("kill9-readonly", "inference:models.list")
	r.base, r.admin = "https://"+listen, "http://"+admin
	r.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
	}}
	t.Cleanup(func() {
		if r.proc != nil && r.proc.ProcessState == nil {
			_ = r.proc.Process.Kill()
			_ = r.proc.Wait()
		}
	})
	return r
}

// killSchema returns a fresh schema name, dropped when the test ends.
func killSchema(t *testing.T, dsn string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "kill9_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// start starts warden and waits until it is ready; it returns the repairs
// the audit log reports having made at this start.
func (r *killRig) start() []string {
	t := r.t
	t.Helper()
	r.proc = exec.Command(wardenBin, "serve", "--config", r.cfg)
	r.proc.Env = append(os.Environ(), "WARDEN_E2E_UPSTREAM_KEY="+r.upKey)
	r.stderr = &lockedBuffer{}
	r.proc.Stderr = r.stderr
	must(t, r.proc.Start())
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(r.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) || r.exited() {
			t.Fatalf("warden did not become ready: %v\n%s", err, r.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := http.Get(r.admin + "/audit/status")
	must(t, err)
	defer res.Body.Close()
	var st struct {
		Healthy bool     `json:"healthy"`
		Repairs []string `json:"repairs"`
	}
	if err := json.NewDecoder(res.Body).Decode(&st); err != nil || !st.Healthy {
		t.Fatalf("audit status: %+v %v", st, err)
	}
	return st.Repairs
}

func (r *killRig) exited() bool {
	return r.proc.ProcessState != nil
}

// load sends chat completions from workers until stop is closed and
// returns the request ids that were answered with 2xx or 4xx.
func (r *killRig) load(stop <-chan struct{}, workers int) (acked []string, refused int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	body := []byte(`{"model":"warden-standin-small","messages":[{"role":"user","content":"kill nine"}]}`)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := r.appKey
				if (w+i)%5 == 0 {
					key = r.readKey // policy denies: a 403, also acknowledged and audited
				}
				req, err := http.NewRequest("POST", r.base+"/v1/chat/completions", bytes.NewReader(body))
				if err != nil {
					panic(err)
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				res, err := r.client.Do(req)
				if err != nil {
					continue // killed mid-request: not acknowledged
				}
				_, err = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				id := res.Header.Get("X-Request-Id")
				mu.Lock()
				switch {
				case err != nil:
				case res.StatusCode >= 200 && res.StatusCode < 500 && id != "":
					acked = append(acked, id)
				default:
					refused++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return acked, refused
}

// cli runs warden with args against the rig's config.
func (r *killRig) cli(args ...string) (string, string, int) {
	cmd := exec.Command(wardenBin, append(args, "--config", r.cfg)...)
	cmd.Env = append(os.Environ(), "WARDEN_E2E_UPSTREAM_KEY="+r.upKey)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		r.t.Fatalf("running warden %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// logged returns the request ids in the log, via `warden audit export`.
func (r *killRig) logged() map[string]bool {
	t := r.t
	out, errOut, code := r.cli("audit", "export")
	if code != 0 {
		t.Fatalf("audit export: exit %d: %s", code, errOut)
	}
	ids := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 2<<20)
	for sc.Scan() {
		var rec struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit export line %q: %v", sc.Text(), err)
		}
		ids[rec.RequestID] = true
	}
	must(t, sc.Err())
	return ids
}

func runKill9(t *testing.T, dsn string) {
	cycles := killCycles(t)
	r := newKillRig(t, dsn)
	began := time.Now()
	var acked []string
	repairs, tornSeen, refusedTotal := 0, 0, 0
	expectRepair := false
	for c := range cycles {
		got := r.start()
		if expectRepair && len(got) == 0 {
			t.Fatalf("cycle %d: verify reported a torn tail after the kill, but the start reported no repair\n%s", c, r.stderr.String())
		}
		if len(got) > 0 {
			if !strings.Contains(r.stderr.String(), "torn tail") {
				t.Fatalf("cycle %d: the log was repaired (%q) but warden's log does not say so:\n%s", c, got, r.stderr.String())
			}
			if repairs == 0 {
				t.Logf("cycle %d: the start reported repairs (later ones are counted, not shown): %q", c, got)
			}
			repairs += len(got)
		}
		// Everything acknowledged before the earlier kills survived them,
		// and their repairs.
		checkAcked(t, c, acked, r.logged())

		stop := make(chan struct{})
		var cycleAcked []string
		var refused int
		done := make(chan struct{})
		go func() {
			defer close(done)
			cycleAcked, refused = r.load(stop, 8)
		}()
		time.Sleep(time.Duration(200+randN(1300)) * time.Millisecond)
		must(t, r.proc.Process.Signal(syscall.SIGKILL))
		_ = r.proc.Wait()
		close(stop)
		<-done
		acked = append(acked, cycleAcked...)
		refusedTotal += refused
		if len(cycleAcked) == 0 {
			t.Fatalf("cycle %d: no request was answered before the kill\n%s", c, r.stderr.String())
		}

		// The killed log verifies; records after the last checkpoint are
		// the tail a crash leaves, and torn bytes are reported.
		out, errOut, code := r.cli("audit", "verify", "--allow-tail")
		if code != 0 {
			t.Fatalf("cycle %d: audit verify after SIGKILL: exit %d\n%s%s", c, code, out, errOut)
		}
		expectRepair = strings.Contains(out, "torn:")
		if expectRepair {
			tornSeen++
		}
	}
	// A last start repairs and anchors what the last kill left; then a
	// clean stop, and the log verifies without any tail.
	if got := r.start(); len(got) > 0 {
		repairs += len(got)
	} else if expectRepair {
		t.Fatalf("final start: verify reported a torn tail, but the start reported no repair")
	}
	logged := r.logged()
	checkAcked(t, cycles, acked, logged)
	must(t, r.proc.Process.Signal(syscall.SIGTERM))
	if err := r.proc.Wait(); err != nil {
		t.Fatalf("warden did not stop cleanly: %v\n%s", err, r.stderr.String())
	}
	out, errOut, code := r.cli("audit", "verify")
	if code != 0 {
		t.Fatalf("audit verify after a clean stop: exit %d\n%s%s", code, out, errOut)
	}
	// The other commands read the log through the same backend.
	id := acked[randN(int64(len(acked)))]
	for _, args := range [][]string{{"audit", "show", id}, {"audit", "prove", id}, {"audit", "tail", "-n", "3"}} {
		out, errOut, code := r.cli(args...)
		if code != 0 || (args[1] != "tail" && !strings.Contains(out, id)) {
			t.Fatalf("warden %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if !r.postgres {
		// Every repair made is in the log's own record of repairs.
		if n := strings.Count(out, "repaired at an earlier start"); n < repairs {
			t.Errorf("verify lists %d repairs, the starts reported %d:\n%s", n, repairs, out)
		}
	}
	backend := "file"
	if r.postgres {
		backend = "postgres"
	}
	t.Logf("kill -9 (%s backend, sync mode): %d cycles, %d acknowledged requests all in the log (%d records), %d kills left torn bytes, %d repairs reported, %d requests refused, %s",
		backend, cycles, len(acked), len(logged), tornSeen, repairs, refusedTotal, time.Since(began).Round(time.Second))
}

// checkAcked fails the test unless every acknowledged id is logged.
func checkAcked(t *testing.T, cycle int, acked []string, logged map[string]bool) {
	t.Helper()
	var missing []string
	for _, id := range acked {
		if !logged[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("before cycle %d: %d of %d acknowledged requests are not in the audit log, e.g. %v",
			cycle, len(missing), len(acked), missing[:min(5, len(missing))])
	}
}

// With the log in PostgreSQL, warden fails closed: it does not start
// against a database it cannot reach (and names it without the password),
// and once running, losing the database session gets requests a 503.
func TestAuditPostgresDown(t *testing.T) {
	dsn := os.Getenv("WARDEN_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set: give a PostgreSQL DSN to run the PostgreSQL audit backend's failure test")
	}
	r := newKillRig(t, dsn)
	r.start()
	body := `{"model":"warden-standin-small","messages":[{"role":"user","content":"hi"}]}`
	post := func() (int, string) {
		req, err := http.NewRequest("POST", r.base+"/v1/chat/completions", strings.NewReader(body))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+r.appKey)
		req.Header.Set("Content-Type", "application/json")
		res, err := r.client.Do(req)
		must(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, b := post(); code != 200 {
		t.Fatalf("before the outage: %d %s", code, b)
	}
	cfg, err := os.ReadFile(r.cfg)
	must(t, err)
	schema := configSchema(t, string(cfg))
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	must(t, err)
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "warden-audit "+schema); err != nil {
		t.Fatal(err)
	}
	// pg_terminate_backend only signals: wait until the sessions are gone.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var n int
		must(t, c.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", "warden-audit "+schema).Scan(&n))
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions of warden's audit log still there", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The request whose append meets the lost session fails the log. The
	// audit stage replaces its answer with a 503 if the response has not
	// started, and aborts the connection if it has: never a 200 without a
	// record. Every request after it is refused before it reaches the upstream.
	req, err := http.NewRequest("POST", r.base+"/v1/chat/completions", strings.NewReader(body))
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+r.appKey)
	req.Header.Set("Content-Type", "application/json")
	if res, err := r.client.Do(req); err == nil {
		b, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		t.Logf("the request that met the lost session: %d", res.StatusCode)
		if rerr == nil && (res.StatusCode != 503 || !strings.Contains(string(b), "audit_unavailable")) {
			t.Fatalf("after the database session was lost: %d %s, want 503 audit_unavailable or an aborted connection", res.StatusCode, b)
		}
	} else {
		t.Logf("the request that met the lost session: connection aborted (%v)", err)
	}
	for range 3 {
		if code, b := post(); code != 503 || !strings.Contains(b, "audit_unavailable") {
			t.Fatalf("after the log failed: %d %s, want 503 audit_unavailable\n%s", code, b, r.stderr.String())
		}
	}
	res, err := http.Get(r.admin + "/audit/status")
	must(t, err)
	st, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(st), `"healthy":false`) || !strings.Contains(string(st), "pgstore") {
		t.Fatalf("audit status after the loss: %s", st)
	}
	must(t, r.proc.Process.Signal(syscall.SIGTERM))
	_ = r.proc.Wait()

	// A database that cannot be reached: warden does not start.
	bad := strings.Replace(string(cfg), fmt.Sprintf("dsn: %q", dsn),
		`dsn: "postgres://warden:hunter2@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"`, 1)
	must(t, os.WriteFile(r.cfg, []byte(bad), 0o600))
	cmd := exec.Command(wardenBin, "serve", "--config", r.cfg)
	cmd.Env = append(os.Environ(), "WARDEN_E2E_UPSTREAM_KEY="+r.upKey)
	var errb strings.Builder
	cmd.Stderr = &errb
	done := make(chan error, 1)
	must(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("warden kept running without its audit database")
	}
	if err == nil || !strings.Contains(errb.String(), "127.0.0.1:1") || strings.Contains(errb.String(), "hunter2") {
		t.Fatalf("start without the database: %v\n%s", err, errb.String())
	}
}

// configSchema returns the audit.postgres.schema of a config.
func configSchema(t *testing.T, cfg string) string {
	for line := range strings.Lines(cfg) {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "schema: "); ok {
			return s
		}
	}
	t.Fatal("no schema in the config")
	return ""
}
