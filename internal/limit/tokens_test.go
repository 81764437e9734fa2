package limit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
)

// TestTokenizerVectors: counts match OpenAI's tiktoken (reference values
// from tiktoken for these strings), with the ranks embedded (this test
// runs without network).
func TestTokenizerVectors(t *testing.T) {
	for _, tc := range []struct {
		model, text string
		want        int64
	}{
		{"gpt-4", "hello world", 2},
		{"gpt-4o", "hello world", 2},
		{"gpt-4", "tiktoken is great!", 6},
		{"gpt-3.5-turbo", "", 0},
		{"gpt-4", "<|endoftext|>", 7}, // special tokens count as text
	} {
		if got := testTok.Count(tc.model, tc.text); got != tc.want {
			t.Errorf("Count(%q, %q) = %d, want %d", tc.model, tc.text, got, tc.want)
		}
	}
	// Beyond maxExactBytes the rest is estimated, bounded and generous.
	big := strings.Repeat("a ", maxExactBytes) // 2 MiB
	if n := testTok.Count("gpt-4o", big); n < maxExactBytes/2 || n > maxExactBytes {
		t.Errorf("large text: %d tokens", n)
	}
}

func TestEncodingFor(t *testing.T) {
	for model, want := range map[string]string{
		"gpt-4o": EncodingO200k, "gpt-4o-mini-2024-07-18": EncodingO200k, "o3-mini": EncodingO200k, "gpt-5": EncodingO200k,
		"gpt-4.1-nano": EncodingO200k, "gpt-4-turbo": EncodingCL100k, "gpt-4": EncodingCL100k, "gpt-3.5-turbo-0125": EncodingCL100k,
		"text-embedding-3-small": EncodingCL100k, "ft:gpt-4-0613:org::id": EncodingCL100k, "openai/gpt-4": EncodingCL100k,
		"llama-3-70b": EncodingO200k, "": EncodingO200k,
	} {
		if got := EncodingFor(model); got != want {
			t.Errorf("EncodingFor(%q) = %s, want %s", model, got, want)
		}
	}
}

func TestEstimateRequest(t *testing.T) {
	hello := testTok.Count("gpt-4o", "Hello\n")
	for _, tc := range []struct {
		name          string
		body          string
		prompt, compl int64
		promptAtLeast bool
		wantErr       bool
	}{
		{"chat", `{"model":"gpt-4o","messages":[{"role":"user","content":"Hello"}]}`, tokensReply + tokensPerMessage + testTok.Count("gpt-4o", "user\nHello\n"), 0, false, false},
		{"chat with name and limits", `{"model":"gpt-4o","max_tokens":100,"max_completion_tokens":256.0,"n":2,"messages":[{"role":"user","name":"bob","content":"Hello"}]}`, 0, 512, true, false},
		{"parts and images", `{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"text","text":"Hello"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}`, 0, 0, true, false},
		{"completion", `{"model":"gpt-3.5-turbo-instruct","prompt":"Hello","max_tokens":7}`, hello, 7, false, false},
		{"token ids", `{"model":"x","prompt":[1,2,3,4]}`, 4, 0, false, false},
		{"nested token ids", `{"model":"x","input":[[1,2],[3]]}`, 3, 0, false, false},
		{"embeddings", `{"model":"text-embedding-3-small","input":["Hello","Hello"]}`, 2 * testTok.Count("text-embedding-3-small", "Hello\n"), 0, false, false},
		{"responses", `{"model":"gpt-4o","instructions":"Be brief","input":"Hello","max_output_tokens":2.56e2}`, 0, 256, true, false},
		{"negative and huge n", `{"model":"gpt-4o","prompt":"Hi","max_tokens":-5,"n":1e9}`, 0, 0, true, false},
		{"not an object", `[1,2`, 0, 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := testTok.EstimateRequest([]byte(tc.body), "")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error: %+v", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Completion != tc.compl || (tc.promptAtLeast && e.Prompt < 1) || (!tc.promptAtLeast && e.Prompt != tc.prompt) {
				t.Fatalf("estimate %+v, want prompt %d completion %d", e, tc.prompt, tc.compl)
			}
		})
	}
	// The image's base64 is not counted as text.
	withImage, _ := testTok.EstimateRequest([]byte(`{"model":"gpt-4o","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`+strings.Repeat("QUJD", 5000)+`"}}]}]}`), "")
	if withImage.Prompt > 20 {
		t.Fatalf("image data counted as text: %d tokens", withImage.Prompt)
	}
}

// TestUsageWriter: what the writer reads from responses, byte for byte
// passed through.
func TestUsageWriter(t *testing.T) {
	for _, tc := range []struct {
		name, ctype, body string
		status            int
		want              Usage
	}{
		{"chat usage", "application/json", `{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, 200, Usage{3, 4, true, true}},
		{"responses usage", "application/json; charset=utf-8", `{"output":[{"content":[{"text":"hi"}]}],"usage":{"input_tokens":9,"output_tokens":2}}`, 200, Usage{9, 2, true, true}},
		{"embeddings usage", "application/json", `{"data":[],"usage":{"prompt_tokens":5,"total_tokens":5}}`, 200, Usage{5, 0, true, true}},
		{"no usage: counted", "application/json", `{"choices":[{"message":{"content":"hello world"}}]}`, 200, Usage{100, 2, false, true}},
		{"tool call counted", "application/json", `{"choices":[{"message":{"tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]}`, 200, Usage{100, 2, false, true}},
		{"error status", "application/json", `{"error":{"message":"x"}}`, 500, Usage{}},
		{"not json", "text/plain", `hello`, 200, Usage{}},
		{"broken json", "application/json", `{"choices":`, 200, Usage{100, 3, false, true}},
		{"responses stream", "text/event-stream", "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"hello world\"}\n\n" +
			"data: {\"type\":\"response.completed\",\"response\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":2}}}\n\n", 200, Usage{11, 2, true, true}},
		{"responses stream counted", "text/event-stream", "data: {\"type\":\"response.output_text.delta\",\"delta\":\"hello world\"}\n\n", 200, Usage{100, 2, false, true}},
		{"completions stream counted", "text/event-stream", "data: {\"choices\":[{\"text\":\"hello\"}]}\r\n\r\ndata: {\"choices\":[{\"text\":\" world\"}]}\r\n\r\ndata: [DONE]\r\n\r\n", 200, Usage{100, 2, false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			gw := gateway.NewResponseWriter(rec)
			uw := NewUsageWriter(gw, testTok, "gpt-4o")
			w := gateway.NewResponseWriter(uw)
			w.Header().Set("Content-Type", tc.ctype)
			w.WriteHeader(tc.status)
			for i := 0; i < len(tc.body); i += 7 { // split anywhere
				_, _ = w.Write([]byte(tc.body[i:min(i+7, len(tc.body))]))
			}
			w.Flush()
			if got := uw.Usage(100); got != tc.want {
				t.Fatalf("usage %+v, want %+v", got, tc.want)
			}
			if rec.Body.String() != tc.body || rec.Code != tc.status || gw.Status() != tc.status || gw.BytesWritten() != int64(len(tc.body)) {
				t.Fatalf("not passed through: %d %q", rec.Code, rec.Body.String())
			}
		})
	}
	// An oversized body is estimated from its size, and not kept.
	rec := httptest.NewRecorder()
	uw := NewUsageWriter(gateway.NewResponseWriter(rec), testTok, "gpt-4o")
	uw.Header().Set("Content-Type", "application/json")
	chunk := []byte(strings.Repeat("x", 1<<20))
	for range 9 {
		_, _ = uw.Write(chunk)
	}
	if got := uw.Usage(1); got.Reported || got.Completion != 9*(1<<20)/4 || uw.buf != nil {
		t.Fatalf("oversized: %+v (kept %d bytes)", got, len(uw.buf))
	}
	_ = http.StatusOK
}
