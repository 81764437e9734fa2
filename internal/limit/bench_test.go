package limit

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkMemoryTake: one request limit and two token windows, charged
// atomically in process (the backend alone).
func BenchmarkMemoryTake(b *testing.B) {
	m := NewMemory(MemoryOptions{})
	ctx := context.Background()
	now := time.Now()
	end := now.Add(time.Hour)
	tags := make([]string, 1024)
	checks := make([][]Check, len(tags))
	for i := range tags {
		tags[i] = strconv.Itoa(i)
		checks[i] = []Check{
			{Key: Key(tags[i], "std", "q"), Kind: KindRate, Cost: 1, Interval: time.Nanosecond, Burst: 1 << 40},
			{Key: Key(tags[i], "std", "tmi"), Kind: KindWindow, Cost: 100, Limit: 1 << 50, End: end},
			{Key: Key(tags[i], "std", "tmo"), Kind: KindWindow, Cost: 100, Limit: 1 << 50, End: end},
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i & 1023
		if res, err := m.Take(ctx, tags[j], now, checks[j]); err != nil || !res.Allowed {
			b.Fatal(res, err)
		}
	}
}

// benchStage runs Stage.Handle for exchanges of 1024 principals; next
// writes a small JSON response with usage, as an upstream would.
func benchStage(b *testing.B, c Class, body string, parallel bool) {
	st, err := NewStage(Options{Backend: NewMemory(MemoryOptions{}), Classes: []Class{c},
		Defaults: map[string]string{gateway.KindService: c.Name}, Tokenizer: testTok})
	if err != nil {
		b.Fatal(err)
	}
	resp := []byte(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}`)
	next := func(ex *gateway.Exchange) error {
		ex.Writer.Header().Set("Content-Type", "application/json")
		_, _ = ex.Writer.Write(resp)
		return nil
	}
	principals := make([]*gateway.Principal, 1024)
	for i := range principals {
		principals[i] = &gateway.Principal{Kind: gateway.KindService, ID: "svc-" + strconv.Itoa(i)}
	}
	route := &gateway.Route{Name: "inference", API: "openai"}
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	run := func(i int) {
		ex := &gateway.Exchange{Request: req, Writer: gateway.NewResponseWriter(&discard{h: http.Header{}}),
			Principal: principals[i&1023], Route: route, Body: []byte(body), Model: "gpt-4o"}
		if err := st.Handle(ex, next); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		for i := 0; i < b.N; i++ {
			run(i)
		}
		return
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			run(i)
			i++
		}
	})
}

var (
	benchRequests = Class{Name: "std", Requests: &RequestLimit{Limit: 1 << 30, Per: time.Second}}
	benchBoth     = Class{Name: "std", Requests: &RequestLimit{Limit: 1 << 30, Per: time.Second},
		Tokens: []TokenLimit{{Window: Minute, Limit: 1 << 40}, {Window: Month, Limit: 1 << 40}}}
	benchBody = `{"model":"gpt-4o","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}`
)

// BenchmarkStageRequests: the limit stage with a request limit, in process.
func BenchmarkStageRequests(b *testing.B) { benchStage(b, benchRequests, benchBody, false) }

// BenchmarkStageRequestsParallel: the same, from every CPU.
func BenchmarkStageRequestsParallel(b *testing.B) { benchStage(b, benchRequests, benchBody, true) }

// BenchmarkStageTokens: request limit plus minute and month token budgets:
// the prompt counted (tiktoken), reserved, the response's usage read and
// reconciled.
func BenchmarkStageTokens(b *testing.B) { benchStage(b, benchBoth, benchBody, false) }

// BenchmarkStageTokensParallel: the same, from every CPU.
func BenchmarkStageTokensParallel(b *testing.B) { benchStage(b, benchBoth, benchBody, true) }

// countTexts are long prompts of different kinds, for ns/byte.
var countTexts = map[string]string{
	"english": strings.Repeat("The committee's report, published on Tuesday, doesn't address the 37 recommendations "+
		"made last year; instead it focuses on costs (about $4.2 million) and on what they'll do next. ", 300),
	"code": strings.Repeat("func (s *Server) handle(w http.ResponseWriter, r *http.Request) {\n\tif err := s.check(r); err != nil {\n"+
		"\t\thttp.Error(w, err.Error(), http.StatusForbidden)\n\t\treturn\n\t}\n\tfmt.Fprintf(w, \"%d items\\n\", len(s.items))\n}\n", 200),
	"cjk":   strings.Repeat("東京都は日本の首都であり、世界有数の大都市です。人口は約千四百万人。", 300),
	"mixed": strings.Repeat("Résumé: naïve café 😀👍🏽 — مرحبا بالعالم, Привет! 12345.678 ", 300),
}

// BenchmarkCount: the fast tokenizer on long prompts (ns/byte = ns/op
// divided by the bytes, reported as MB/s).
func BenchmarkCount(b *testing.B) {
	for _, name := range []string{"english", "code", "cjk", "mixed"} {
		text := countTexts[name]
		for _, slow := range []bool{false, true} {
			impl := "fast"
			if slow {
				impl = "tiktoken-go"
			}
			b.Run(name+"/"+impl, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				b.ReportAllocs()
				for b.Loop() {
					testTok.count("gpt-4o", text, slow)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(text)), "ns/byte")
			})
		}
	}
}

// BenchmarkEstimateRequest: the benchmark's request, counted.
func BenchmarkEstimateRequest(b *testing.B) {
	body := []byte(benchBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := testTok.EstimateRequest(body, ""); err != nil {
			b.Fatal(err)
		}
	}
}
