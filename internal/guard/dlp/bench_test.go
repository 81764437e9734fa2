package dlp

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/guard"
)

// benchExtra are scanners run together with DLP in BenchmarkCombined. To
// measure the prompt-injection detector as well, add a file with
//
//	func init() { benchExtra = append(benchExtra, guard.Detector{Detect: …}) }
var benchExtra []guard.Scanner

// Pieces of realistic prompts: prose, code, logs, JSON, chat with the odd
// personal value. Synthetic values only.
var benchPieces = []string{
	`Could you help me rewrite the following paragraph so that it sounds more professional? We have been working on the migration for several weeks now, and although most of the services have moved over without trouble, the reporting pipeline still depends on the old scheduler. The team would like to finish before the end of the quarter, but there are open questions about ownership, on-call coverage and how we communicate the change to customers who rely on the nightly exports. `,
	`Summarize the main arguments of the essay below in three bullet points, keeping the tone neutral. The author claims that remote work improves focus for individual contributors while making mentoring harder for junior staff; she argues that companies should invest in deliberate rituals rather than return-to-office mandates, and that the real cost is invisible: fewer chance conversations, slower trust, and knowledge that never gets written down. `,
	"```go\nfunc (s *Server) handle(w http.ResponseWriter, r *http.Request) {\n\tctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)\n\tdefer cancel()\n\tresp, err := s.client.Get(ctx, \"https://api.internal.example.com/v2/items?limit=100&offset=\" + strconv.Itoa(offset))\n\tif err != nil {\n\t\thttp.Error(w, err.Error(), http.StatusBadGateway)\n\t\treturn\n\t}\n\tfor i, item := range resp.Items {\n\t\tfmt.Fprintf(w, \"%d: %s (%0.2f)\\n\", i, item.Name, item.Price)\n\t}\n}\n```\nWhy does this return 502 when the upstream is slow? ",
	"2026-03-14T09:21:07.331Z INFO  request_id=3f2c9a1e-77b0-4c1e-9d3a-5b8e0f6a2c41 method=GET path=/api/v1/orders status=200 duration=12.4ms bytes=5120\n2026-03-14T09:21:07.402Z WARN  request_id=9b1d2e3f-0a4c-4b5d-8e6f-7a8b9c0d1e2f method=POST path=/api/v1/checkout status=429 duration=0.8ms retry_after=30\n2026-03-14T09:21:08.115Z ERROR upstream timeout after 30000ms (attempt 3/3) pool=payments-v2 version=4.12.0\n",
	`{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":512,"metadata":{"ticket":"SUP-48213","order":"ORD-2025-118734","created":"2025-11-02"},"items":[{"sku":"A-1029","qty":3,"price":19.99},{"sku":"B-2210","qty":1,"price":249.00}]} `,
	`Hi, my name is Jane Roe and I need help with my account. You can email me at jane.roe@example.com or call +1 415-555-0132 after 5pm. My order number is ORD-2025-118734 and it was placed on March 3, 2026. `,
	`The Q3 numbers: revenue grew 12.5% to $4.2M, churn fell from 3.1% to 2.4%, and the median deal size was $18,400. Release 2.14.3 shipped on 2026-09-30; build 10.0.19041.1288 is still on the legacy fleet. Please draft a short update for the board. `,
	`Translate into French: "Thank you for your patience. Your refund of 120 euros has been approved and should appear within five to seven business days. If it does not, reply to this message and quote reference 88412." `,
}

// benchPrompts returns n prompts of about size bytes each, cut from the
// pieces in rotation.
func benchPrompts(n, size int) [][]byte {
	all := strings.Repeat(strings.Join(benchPieces, ""), 4)
	out := make([][]byte, n)
	off := 0
	for i := range out {
		if off+size > len(all) {
			off = (off + 97) % (len(all) - size)
		}
		out[i] = []byte(all[off : off+size])
		off += size
	}
	return out
}

func benchScan(b *testing.B, sc guard.Scanner, prompts [][]byte) {
	b.Helper()
	total := 0
	for _, p := range prompts {
		total += len(p)
	}
	b.SetBytes(int64(total / len(prompts)))
	b.ReportAllocs()
	c0, n := cpuTime(), 0
	for i := 0; b.Loop(); i++ {
		sc.Scan(prompts[i%len(prompts)])
		n++
	}
	reportCPU(b, c0, n, total/len(prompts))
}

// reportCPU adds the throughput per second of CPU time ("cpu-MB/s") and the
// CPU time per operation ("cpu-ns/op"), which a busy machine distorts less
// than wall time.
func reportCPU(b *testing.B, c0 time.Duration, n, size int) {
	b.Helper()
	if d := cpuTime() - c0; d > 0 && n > 0 {
		b.ReportMetric(float64(d.Nanoseconds())/float64(n), "cpu-ns/op")
		b.ReportMetric(float64(size)*float64(n)/d.Seconds()/1e6, "cpu-MB/s")
	}
}

// BenchmarkScan measures DLP alone over mixed 2 KB prompts and over one 1 KB
// prompt (targets: ≥ 500 MB/s per core; ≤ 20 µs for 1 KB).
func BenchmarkScan(b *testing.B) {
	sc := New()
	b.Run("mixed-2KB", func(b *testing.B) { benchScan(b, sc, benchPrompts(64, 2048)) })
	b.Run("prompt-1KB", func(b *testing.B) { benchScan(b, sc, benchPrompts(1, 1024)) })
	// Each kind of content alone, 2 KB of it.
	for i, name := range []string{"prose", "prose2", "code", "logs", "json", "chat-pii", "numbers", "translate"} {
		p := benchPieces[i]
		text := []byte(strings.Repeat(p, 2048/len(p)+1)[:2048])
		b.Run("only-"+name, func(b *testing.B) { benchScan(b, sc, [][]byte{text}) })
	}
}

// BenchmarkCombined measures the scanner a gateway runs over a request:
// DLP plus whatever benchExtra holds (the injection detector, when added).
func BenchmarkCombined(b *testing.B) {
	sc := guard.Multi(append([]guard.Scanner{New()}, benchExtra...)...)
	b.Run("mixed-2KB", func(b *testing.B) { benchScan(b, sc, benchPrompts(64, 2048)) })
	b.Run("prompt-1KB", func(b *testing.B) { benchScan(b, sc, benchPrompts(1, 1024)) })
}
