package limit

import (
	"net/http/httptest"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
)

// FuzzEstimateRequest: any body is estimated or refused, never a panic
// or a negative count, and as the reference built on encoding/json and
// tiktoken-go estimates it (refEstimate).
func FuzzEstimateRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}],"max_tokens":5}`,
		`{"prompt":[1,2,3],"n":3,"max_tokens":1e300}`,
		`{"input":[[1],[2,3]],"instructions":"x","tools":[{"type":"function","function":{"name":"f"}}]}`,
		`{"messages":[1,"x",{"content":[{"type":"text","text":"<|endoftext|>"}]}]}`,
		`null`, `"x"`, `{"max_tokens":"5"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := testTok.EstimateRequest(body, "gpt-4")
		if err == nil && (e.Prompt < 0 || e.Completion < 0) {
			t.Fatalf("negative estimate %+v", e)
		}
		if len(body) > 4096 {
			return // tiktoken-go merges long pieces in quadratic time
		}
		if want, werr := refEstimate(body, "gpt-4"); (err != nil) != (werr != nil) || e != want {
			t.Fatalf("estimate %+v, %v; reference %+v, %v", e, err, want, werr)
		}
	})
}

// FuzzUsageWriter: any response, JSON or SSE, passes through unchanged
// and yields a non-negative usage.
func FuzzUsageWriter(f *testing.F) {
	f.Add("text/event-stream", []byte("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":-4}}\n\n"))
	f.Add("application/json", []byte(`{"usage":{"input_tokens":3},"choices":[{"message":{"content":["a",{"b":"c"}]}}]}`))
	f.Add("text/event-stream", []byte("data: {\"type\":\"x.delta\",\"delta\":\"\\ud800\"}\r\r"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		rec := httptest.NewRecorder()
		uw := NewUsageWriter(gateway.NewResponseWriter(rec), testTok, "gpt-4o")
		uw.Header().Set("Content-Type", ctype)
		half := len(body) / 2
		_, _ = uw.Write(body[:half])
		_, _ = uw.Write(body[half:])
		u := uw.Usage(7)
		if u.Prompt < 0 || u.Completion < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		if rec.Body.String() != string(body) {
			t.Fatal("body changed")
		}
	})
}
