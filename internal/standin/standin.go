// Package standin is a small, deterministic OpenAI-compatible model server
// used by `warden demo`, the end-to-end tests and the load harness. The same
// request always gets the same answer, streamed or not, so tests can assert
// on exact output. It is an upstream stand-in, never part of the request path.
package standin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Server is the stand-in model server.
type Server struct {
	// APIKey, when set, is the bearer token every request must carry (it
	// proves that warden injected its upstream credential).
	APIKey string
	// ChunkDelay is slept between streamed chunks, to make streaming visible.
	ChunkDelay time.Duration
	// Models are the model ids served; defaults to DefaultModels.
	Models []string

	mu   sync.Mutex
	last http.Header // headers of the last request, for tests
}

// DefaultModels are served when Models is empty.
var DefaultModels = []string{"warden-standin-small", "warden-standin-large"}

// Created is the fixed timestamp in every response, for determinism.
const Created = 1767225600 // 2026-01-01T00:00:00Z

// LastHeaders returns a copy of the headers of the last request received.
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Clone()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.last = r.Header.Clone()
	s.mu.Unlock()
	if s.APIKey != "" {
		want := "Bearer " + s.APIKey
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			writeErr(w, http.StatusUnauthorized, "invalid_api_key", "stand-in: missing or wrong upstream credential")
			return
		}
	}
	switch {
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		s.models(w)
	case strings.HasPrefix(r.URL.Path, "/v1/models/") && r.Method == http.MethodGet:
		s.model(w, strings.TrimPrefix(r.URL.Path, "/v1/models/"))
	case r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		s.chat(w, r)
	case r.URL.Path == "/v1/completions" && r.Method == http.MethodPost:
		s.completions(w, r)
	case r.URL.Path == "/v1/embeddings" && r.Method == http.MethodPost:
		s.embeddings(w, r)
	case r.URL.Path == "/v1/responses" && r.Method == http.MethodPost:
		s.responses(w, r)
	default:
		writeErr(w, http.StatusNotFound, "not_found", "stand-in: unknown endpoint")
	}
}

func (s *Server) modelList() []string {
	if len(s.Models) > 0 {
		return s.Models
	}
	return DefaultModels
}

func (s *Server) models(w http.ResponseWriter) {
	type m struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	var data []m
	for _, id := range s.modelList() {
		data = append(data, m{id, "model", Created, "warden-standin"})
	}
	writeJSON(w, map[string]any{"object": "list", "data": data})
}

func (s *Server) model(w http.ResponseWriter, id string) {
	for _, m := range s.modelList() {
		if m == id {
			writeJSON(w, map[string]any{"id": id, "object": "model", "created": Created, "owned_by": "warden-standin"})
			return
		}
	}
	writeErr(w, http.StatusNotFound, "model_not_found", "stand-in: unknown model")
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

// Reply is the deterministic answer to a prompt.
func Reply(prompt string) string {
	p := strings.Join(strings.Fields(prompt), " ")
	if len(p) > 80 {
		p = p[:80]
	}
	return "Stand-in reply: I received your message (" + p + ") and this answer is deterministic."
}

// LeakyModel is a model id for which the stand-in answers like a model an
// attack got through to: its reply repeats its system prompt (LeakReply),
// and a streamed reply comes in 7-byte pieces, so a token in the system
// prompt is split across events. It is served whether or not it is listed.
const LeakyModel = "warden-standin-leaky"

// LeakReply is the leaky model's answer for a system prompt.
func LeakReply(system string) string {
	return "Stand-in reply: my instructions say: " + system
}

// systemPrompt is the content of the first system or developer message.
func (req *chatRequest) systemPrompt() string {
	for _, m := range req.Messages {
		if m.Role == "system" || m.Role == "developer" {
			var text string
			if json.Unmarshal(m.Content, &text) == nil {
				return text
			}
		}
	}
	return ""
}

// splitBytes splits s into pieces of n bytes.
func splitBytes(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_json", "stand-in: invalid JSON body")
		return
	}
	prompt := ""
	if n := len(req.Messages); n > 0 {
		var text string
		if json.Unmarshal(req.Messages[n-1].Content, &text) == nil {
			prompt = text
		}
	}
	reply := Reply(prompt)
	pieces := splitWords
	if req.Model == LeakyModel {
		reply = LeakReply(req.systemPrompt())
		pieces = func(s string) []string { return splitBytes(s, 7) }
	}
	id := "chatcmpl-" + digest(req.Model+"\x00"+prompt)
	usage := map[string]int{"prompt_tokens": countTokens(prompt), "completion_tokens": countTokens(reply)}
	usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
	if !req.Stream {
		writeJSON(w, map[string]any{
			"id": id, "object": "chat.completion", "created": Created, "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": reply},
			}},
			"usage": usage,
		})
		return
	}
	sse := newSSE(w)
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": Created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	sse.event(chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, piece := range pieces(reply) {
		if s.ChunkDelay > 0 {
			select {
			case <-time.After(s.ChunkDelay):
			case <-r.Context().Done():
				return
			}
		}
		sse.event(chunk(map[string]any{"content": piece}, nil))
	}
	final := chunk(map[string]any{}, "stop")
	final["usage"] = usage
	sse.event(final)
	sse.done()
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Prompt any    `json:"prompt"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_json", "stand-in: invalid JSON body")
		return
	}
	prompt := fmt.Sprint(req.Prompt)
	reply := Reply(prompt)
	writeJSON(w, map[string]any{
		"id": "cmpl-" + digest(req.Model+"\x00"+prompt), "object": "text_completion", "created": Created, "model": req.Model,
		"choices": []any{map[string]any{"index": 0, "text": reply, "finish_reason": "stop", "logprobs": nil}},
		"usage":   map[string]int{"prompt_tokens": countTokens(prompt), "completion_tokens": countTokens(reply), "total_tokens": countTokens(prompt) + countTokens(reply)},
	})
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Input any    `json:"input"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_json", "stand-in: invalid JSON body")
		return
	}
	var inputs []string
	switch v := req.Input.(type) {
	case string:
		inputs = []string{v}
	case []any:
		for _, x := range v {
			inputs = append(inputs, fmt.Sprint(x))
		}
	default:
		writeErr(w, http.StatusBadRequest, "invalid_input", "stand-in: input must be a string or an array")
		return
	}
	var data []any
	tokens := 0
	for i, in := range inputs {
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vector(in, 8)})
		tokens += countTokens(in)
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": tokens, "total_tokens": tokens}})
}

func (s *Server) responses(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Input any    `json:"input"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "invalid_json", "stand-in: invalid JSON body")
		return
	}
	prompt := fmt.Sprint(req.Input)
	reply := Reply(prompt)
	id := "resp_" + digest(req.Model+"\x00"+prompt)
	writeJSON(w, map[string]any{
		"id": id, "object": "response", "created_at": Created, "status": "completed", "model": req.Model,
		"output": []any{map[string]any{
			"type": "message", "id": "msg_" + digest(reply), "status": "completed", "role": "assistant",
			"content": []any{map[string]any{"type": "output_text", "text": reply, "annotations": []any{}}},
		}},
		"usage": map[string]int{"input_tokens": countTokens(prompt), "output_tokens": countTokens(reply), "total_tokens": countTokens(prompt) + countTokens(reply)},
	})
}

// splitWords splits s into word pieces that keep their leading space, so the
// concatenation of the pieces is s.
func splitWords(s string) []string {
	var out []string
	start := 0
	for i := 1; i < len(s); i++ {
		if s[i] == ' ' {
			out = append(out, s[start:i])
			start = i
		}
	}
	return append(out, s[start:])
}

// countTokens is a rough, deterministic token count (words), good enough for a stand-in.
func countTokens(s string) int { return len(strings.Fields(s)) }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%x", sum[:12])
}

func vector(s string, n int) []float64 {
	sum := sha256.Sum256([]byte(s))
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(binary.BigEndian.Uint16(sum[2*i:]))/65535*2 - 1
	}
	return v
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "code": code}})
}

type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func newSSE(w http.ResponseWriter) *sseWriter {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

func (s *sseWriter) event(v any) {
	b, _ := json.Marshal(v)
	_, _ = fmt.Fprintf(s.w, "data: %s\n\n", b)
	_ = s.rc.Flush()
}

func (s *sseWriter) done() {
	_, _ = fmt.Fprint(s.w, "data: [DONE]\n\n")
	_ = s.rc.Flush()
}
