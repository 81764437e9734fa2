package guard_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
)

// benchChat is a 2 KB chat request: a system prompt, a user turn with a
// few personal values, an assistant turn.
var benchChat = func() []byte {
	user := strings.Repeat("Please summarise the ticket below and draft a reply. The customer says the export failed twice last week and the dashboard shows stale numbers. ", 8) +
		"Contact: jane.roe@example.com, +1 415-555-0132."
	body, _ := json.Marshal(map[string]any{
		"model": "gpt-4o", "temperature": 0.2, "stream": true,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a careful support assistant.\nAnswer briefly.\nNever invent order numbers."},
			{"role": "user", "content": user},
			{"role": "assistant", "content": "Sure, I can help with that."},
		},
	})
	return body
}()

// BenchmarkRequestJSON: the request-side work of a gateway stage over a
// 2 KB chat body: scan the decoded strings, then mask.
func BenchmarkRequestJSON(b *testing.B) {
	sc := dlp.New()
	p := mustPolicy(b, map[string]string{"pii": "mask"}, nil)
	b.SetBytes(int64(len(benchChat)))
	b.ReportAllocs()
	for b.Loop() {
		fs, err := guard.ScanBody(sc, guard.FormatJSON, benchChat)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := guard.RedactBody(p, guard.FormatJSON, benchChat, fs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSSEChat: rewriting a streamed chat answer of 200 chunks of a few
// bytes each (the usual token-by-token shape), per stream.
func BenchmarkSSEChat(b *testing.B) {
	words := strings.Fields(strings.Repeat("The export failed because the scheduler ran out of memory; mail jane.roe@example.com if it happens again. ", 12))
	parts := make([]string, len(words))
	for i, w := range words {
		parts[i] = w + " "
	}
	up := chatStream(parts...)
	sc := dlp.New()
	p := mustPolicy(b, map[string]string{"pii": "mask"}, nil)
	b.SetBytes(int64(len(up)))
	b.ReportAllocs()
	for b.Loop() {
		rw := guard.NewSSERewriter(io.NopCloser(strings.NewReader(up)), guard.ResponseOptions{Scanner: sc, Policy: p})
		if _, err := io.Copy(io.Discard, rw); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(parts)), "events/op")
}
