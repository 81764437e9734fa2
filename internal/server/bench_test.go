package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/standin"
)

// benchBody is the request body of bench/chat.lua, so that the in-process
// numbers and the wrk numbers measure the same request.
const benchBody = `{"model":"warden-standin-small","messages":[` +
	`{"role":"system","content":"You are a concise assistant for the warden load benchmark."},` +
	`{"role":"user","content":"In one sentence: why does a zero-trust gateway record every request it forwards to a model, allowed or denied?"}` +
	`],"max_tokens":64,"temperature":0,"stream":false}`

// benchUpstreamKeyEnv names the variable holding the stand-in's key.
const benchUpstreamKeyEnv = "WARDEN_BENCH_UPSTREAM_KEY"

// pipeline is a warden built from a config file the way `warden serve`
// builds it, in a temporary directory: real audit log (fsync group commit),
// real key store and key, the quickstart policy, and the stand-in model as an
// httptest upstream.
type pipeline struct {
	srv       *Server
	handler   http.Handler
	clientKey string
	auditPath string
}

func newPipeline(b *testing.B) *pipeline {
	b.Helper()
	dir := b.TempDir()
	const upstreamKey = "bench-upstream-key"
	b.Setenv(benchUpstreamKeyEnv, upstreamKey)
	up := httptest.NewServer(&standin.Server{APIKey: upstreamKey})
	b.Cleanup(up.Close)

	copyDir(b, "../../examples/quickstart/policy", filepath.Join(dir, "policy"))
	ks, err := identity.OpenKeyStore(filepath.Join(dir, "keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	// The CLI's default lifetime, so the policy's expiry rule is evaluated too.
	key, _, err := ks.Create("bench-client", "", []string{"inference:*"}, 90*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "warden.yaml")
	yaml := `listeners:
  - name: bench
    address: 127.0.0.1:0
    tls:
      mode: "off"
admin:
  address: "off"
routes:
  - name: inference
    prefix: /v1/
    api: openai
    segment: inference
    upstream:
      url: ` + up.URL + `
      timeout: 30s
      credential:
        env: ` + benchUpstreamKeyEnv + `
keys:
  path: ./keys.json
policy:
  dir: ./policy
audit:
  path: ./audit.log
`
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	return &pipeline{srv: srv, handler: srv.Handler(0), clientKey: key, auditPath: cfg.Audit.Path}
}

// do sends the benchmark request through the handler and fails unless the
// stand-in's completion came back.
func (p *pipeline) do(b *testing.B) {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(benchBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.clientKey)
	rec := httptest.NewRecorder()
	p.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"chat.completion"`)) {
		b.Errorf("status %d, body %.300s", rec.Code, rec.Body.String())
	}
}

// verify closes the server (flushing the audit log) and checks that every
// request sent through it has its record.
func (p *pipeline) verify(b *testing.B, sent int) {
	b.Helper()
	if err := p.srv.Close(); err != nil {
		b.Fatal(err)
	}
	rep, err := audit.Verify(p.auditPath, p.srv.cfg.Audit.Checkpoint.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	if rep.Records != int64(sent) {
		b.Fatalf("audit log has %d records, want %d", rep.Records, sent)
	}
}

// BenchmarkPipeline measures one chat completion through warden's full
// chain in process (audit with fsync, API key, body check, OPA policy,
// reverse proxy) to an httptest stand-in upstream. The client side is an
// httptest.ResponseRecorder, so there is no client network stack; the
// upstream hop is real loopback HTTP.
//
//   - serial: one request at a time. Every request waits for its own fsync,
//     so ns/op is about the disk's fsync latency plus the CPU cost.
//   - parallel: 16 requests in flight per CPU; group commit shares each
//     fsync, so ns/op approaches the CPU cost per request.
//
// Run: go test ./internal/server -run '^$' -bench Pipeline [-cpuprofile cpu.out]
func BenchmarkPipeline(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		p := newPipeline(b)
		p.do(b) // warm the upstream connection and the policy
		sent := 1
		b.ReportAllocs()
		for b.Loop() {
			p.do(b)
			sent++
		}
		b.StopTimer()
		p.verify(b, sent)
	})
	b.Run("parallel", func(b *testing.B) {
		p := newPipeline(b)
		p.do(b)
		var sent atomic.Int64
		sent.Add(1)
		b.ReportAllocs()
		b.SetParallelism(16)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				p.do(b)
				sent.Add(1)
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		p.verify(b, int(sent.Load()))
	})
}

func copyDir(b *testing.B, from, to string) {
	b.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		b.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(dst, src)
		src.Close()
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
