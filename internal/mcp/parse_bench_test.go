package mcp

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// Typical messages of a tools/call exchange, as the MCP Go SDK sends them.
var (
	benchRequest = []byte(`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"_meta":{"progressToken":"p-17"},"name":"read_file","arguments":{"path":"/srv/reports/2026/q3-summary.md","max_bytes":65536,"follow_links":false}}}`)
	benchResult  = []byte(`{"jsonrpc":"2.0","id":17,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat("Quarterly revenue grew 4% over the previous quarter; see the attached table. ", 12) +
		`"}],"structuredContent":{"bytes":912,"truncated":false},"isError":false}}`)
)

// BenchmarkParse: Parse of a typical tools/call request and of a typical
// tools/call result (~1 KB of text).
func BenchmarkParse(b *testing.B) {
	for _, bm := range []struct {
		name string
		msg  []byte
	}{{"request", benchRequest}, {"result", benchResult}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bm.msg)))
			for b.Loop() {
				if _, pe := Parse(bm.msg); pe != nil {
					b.Fatal(pe)
				}
			}
		})
	}
}

// BenchmarkHandleResult: the gateway's pass over a tools/call result
// event (parse, result members, scan with a scanner that finds nothing),
// and the SSE rewriter around it, as the proxy reads it.
func BenchmarkHandleResult(b *testing.B) {
	g := &Gateway{Scanner: fakeScanner{}}
	b.Run("handle", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.handle(newExchange(ActionToolsCall, "17"), benchResult); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sse", func(b *testing.B) {
		stream := append(append([]byte("event: message\nid: 1\ndata: "), benchResult...), "\n\n"...)
		buf := make([]byte, 32<<10)
		b.ReportAllocs()
		for b.Loop() {
			r := &sseRewriter{src: io.NopCloser(bytes.NewReader(stream)), g: g, ex: newExchange(ActionToolsCall, "17"), max: 1 << 20}
			for {
				if _, err := r.Read(buf); err != nil {
					break
				}
			}
		}
	})
}
