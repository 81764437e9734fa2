package limit

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard/sse"
)

// maxCaptureBytes bounds the non-streamed response body usageWriter keeps
// to read its usage; past it the completion is estimated from the size.
const maxCaptureBytes = 8 << 20

// Usage is the token usage of a response, as the upstream reported it or
// as warden counted it.
type Usage struct {
	Prompt     int64
	Completion int64
	Reported   bool // the upstream reported it (a usage object)
	// Seen is false when nothing of a successful response could be read
	// (not a 2xx, not JSON or SSE): the caller charges nothing.
	Seen bool
}

// usageJSON is the usage object of the OpenAI APIs: chat and completions
// (prompt/completion), responses (input/output), embeddings (prompt only).
type usageJSON struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

func (u *usageJSON) get() (prompt, completion int64, ok bool) {
	if u == nil {
		return 0, 0, false
	}
	pick := func(a, b *int64) int64 {
		switch {
		case a != nil:
			return max(0, *a)
		case b != nil:
			return max(0, *b)
		}
		return 0
	}
	ok = u.PromptTokens != nil || u.InputTokens != nil || u.CompletionTokens != nil || u.OutputTokens != nil
	return pick(u.PromptTokens, u.InputTokens), pick(u.CompletionTokens, u.OutputTokens), ok
}

// delta is the generated text of one streamed choice or one output.
type delta struct {
	Content   json.RawMessage `json:"content"`
	Refusal   string          `json:"refusal"`
	ToolCalls []struct {
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	} `json:"tool_calls"`
}

// chunk is one SSE event of a chat completion, completion or response stream.
type chunk struct {
	Usage   *usageJSON `json:"usage"`
	Choices []struct {
		Delta   delta  `json:"delta"`
		Message delta  `json:"message"`
		Text    string `json:"text"`
	} `json:"choices"`
	// Responses API: {"type":"response.output_text.delta","delta":"..."} and
	// {"type":"response.completed","response":{"usage":{...}}}.
	Type     string          `json:"type"`
	Delta    json.RawMessage `json:"delta"`
	Output   json.RawMessage `json:"output"`
	Response *struct {
		Usage *usageJSON `json:"usage"`
	} `json:"response"`
}

// UsageWriter sits between the proxy and the client's writer: it passes
// every byte and header through unchanged and reads the usage the
// upstream reports, or counts the generated text when it reports none.
// Install it with Wrap; read the outcome with Usage.
type UsageWriter struct {
	w     *gateway.ResponseWriter
	tok   *Tokenizer
	model string

	mode    int // modeUndecided, modeJSON, modeSSE, modeIgnore
	buf     []byte
	pooled  *[]byte // where buf came from (bufPool), until released
	over    bool
	written int64
	parser  sse.Parser
	usage   Usage
	counted int64 // completion tokens counted in a stream

	parsed         bool  // the JSON body was read
	bodyCompletion int64 // completion tokens counted in it
}

const (
	modeUndecided = iota
	modeJSON
	modeSSE
	modeIgnore
)

// NewUsageWriter returns a writer that passes through to w and counts
// with tok in model's encoding.
func NewUsageWriter(w *gateway.ResponseWriter, tok *Tokenizer, model string) *UsageWriter {
	return &UsageWriter{w: w, tok: tok, model: model}
}

// Header implements http.ResponseWriter.
func (u *UsageWriter) Header() http.Header { return u.w.Header() }

// WriteHeader implements http.ResponseWriter.
func (u *UsageWriter) WriteHeader(status int) {
	if status >= 200 && u.mode == modeUndecided {
		u.decide(status)
	}
	u.w.WriteHeader(status)
}

func (u *UsageWriter) decide(status int) {
	u.mode = modeIgnore
	if status < 200 || status > 299 {
		return
	}
	mt := u.w.Header().Get("Content-Type")
	if mt != "application/json" && mt != "text/event-stream" { // the usual ones need no parsing
		mt, _, _ = mime.ParseMediaType(mt)
	}
	switch {
	case mt == "text/event-stream":
		u.mode = modeSSE
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		u.mode = modeJSON
	}
	u.usage.Seen = u.mode != modeIgnore
}

// Write implements http.ResponseWriter.
func (u *UsageWriter) Write(p []byte) (int, error) {
	if u.mode == modeUndecided {
		u.decide(http.StatusOK)
	}
	u.written += int64(len(p))
	switch u.mode {
	case modeJSON:
		if !u.over {
			if len(u.buf)+len(p) > maxCaptureBytes {
				u.over = true
				u.release()
			} else {
				if u.pooled == nil && u.buf == nil {
					u.pooled = getBuf()
					u.buf = (*u.pooled)[:0]
				}
				u.buf = append(u.buf, p...)
			}
		}
	case modeSSE:
		// The parser never fails on input; an oversized event is skipped.
		_ = u.parser.Feed(p, u.event)
	}
	return u.w.Write(p)
}

// Flush implements http.Flusher.
func (u *UsageWriter) Flush() { u.w.Flush() }

// Unwrap returns the client's writer, for http.ResponseController.
func (u *UsageWriter) Unwrap() http.ResponseWriter { return u.w }

func (u *UsageWriter) event(ev *sse.Event) error {
	if !ev.HasData || len(ev.Data) == 0 || ev.Data[0] != '{' {
		return nil // [DONE], comments, keep-alives
	}
	var c chunk
	if json.Unmarshal(ev.Data, &c) != nil {
		return nil
	}
	if p, cpl, ok := c.Usage.get(); ok {
		u.usage.Prompt, u.usage.Completion, u.usage.Reported = p, cpl, true
	}
	if c.Response != nil {
		if p, cpl, ok := c.Response.Usage.get(); ok {
			u.usage.Prompt, u.usage.Completion, u.usage.Reported = p, cpl, true
		}
	}
	var text strings.Builder
	for i := range c.Choices {
		ch := &c.Choices[i]
		ch.Delta.appendText(&text)
		text.WriteString(ch.Text)
	}
	if strings.HasSuffix(c.Type, ".delta") && len(c.Delta) > 0 && c.Delta[0] == '"' {
		var s string
		if json.Unmarshal(c.Delta, &s) == nil {
			text.WriteString(s)
		}
	}
	if text.Len() > 0 && u.tok != nil {
		u.counted += u.tok.Count(u.model, text.String())
	}
	return nil
}

func (d *delta) appendText(b *strings.Builder) {
	if len(d.Content) > 0 {
		collectStrings(d.Content, func(s string) { b.WriteString(s) })
	}
	b.WriteString(d.Refusal)
	for _, tc := range d.ToolCalls {
		b.WriteString(tc.Function.Name)
		b.WriteString(tc.Function.Arguments)
	}
}

// Usage returns what the response used. prompt is warden's own count of
// the prompt, used when the upstream reported no usage.
func (u *UsageWriter) Usage(prompt int64) Usage {
	if !u.usage.Seen {
		return Usage{}
	}
	if u.mode == modeJSON && !u.parsed {
		u.parsed = true
		u.bodyCompletion = u.countBody()
		u.release()
	}
	if u.usage.Reported {
		return u.usage
	}
	out := Usage{Seen: true, Prompt: prompt, Completion: u.counted}
	if u.mode == modeJSON {
		out.Completion = u.bodyCompletion
	}
	return out
}

// release returns the capture buffer to the pool; the body is not read
// again (a later Write starts a new one, which nothing reads).
func (u *UsageWriter) release() {
	if u.pooled != nil {
		*u.pooled = u.buf[:0]
		putBuf(u.pooled)
	}
	u.pooled, u.buf = nil, nil
}

// countBody reads a complete JSON response: its usage object if it has
// one (then the usage is reported), else the generated text counted.
func (u *UsageWriter) countBody() int64 {
	if u.over {
		return (u.written + 3) / 4
	}
	if p, cpl, ok := scanUsage(u.buf); ok {
		u.usage.Prompt, u.usage.Completion, u.usage.Reported = p, cpl, true
		return cpl
	}
	var c chunk
	dec := json.NewDecoder(bytes.NewReader(u.buf))
	if dec.Decode(&c) != nil {
		return (u.written + 3) / 4
	}
	if p, cpl, ok := c.Usage.get(); ok {
		u.usage.Prompt, u.usage.Completion, u.usage.Reported = p, cpl, true
		return cpl
	}
	var text strings.Builder
	for i := range c.Choices {
		ch := &c.Choices[i]
		ch.Message.appendText(&text)
		text.WriteString(ch.Text)
	}
	collectStrings(c.Output, func(s string) { text.WriteString(s) })
	if u.tok == nil {
		return int64(text.Len()+3) / 4
	}
	return u.tok.Count(u.model, text.String())
}

// scanUsage reads the usage object of a JSON response in one pass
// without allocating (jscan.go): ok when the body is a JSON object with
// one "usage" member holding at least one of the token counts, each an
// integer or null, as countBody's decoding would read them. Anything
// else (no usage, odd types, a usage given twice) is left to countBody's
// decoding.
func scanUsage(body []byte) (prompt, completion int64, ok bool) {
	s := jscan{b: body}
	if s.peek() != '{' {
		return 0, 0, false
	}
	s.i++
	var v [4]int64 // prompt_tokens, input_tokens, completion_tokens, output_tokens
	var set [4]bool
	var kbuf []byte // for keys with escapes
	seen := false
	for first := true; s.more(first, '}'); first = false {
		k := s.key(&kbuf)
		if s.err || !strings.EqualFold(bytesString(k), "usage") {
			s.skip()
			continue
		}
		if seen || s.peek() != '{' {
			return 0, 0, false
		}
		seen = true
		s.i++
		for f := true; s.more(f, '}'); f = false {
			k := s.key(&kbuf)
			i := usageField(k)
			if i < 0 {
				s.skip()
				continue
			}
			switch c := s.peek(); {
			case c == 'n':
				s.literal("null")
				set[i] = false
			case c == '-' || ('0' <= c && c <= '9'):
				n, isInt := integer(s.number())
				if !isInt || s.err {
					return 0, 0, false
				}
				v[i], set[i] = n, true
			default:
				return 0, 0, false
			}
		}
	}
	if s.err || !(set[0] || set[1] || set[2] || set[3]) {
		return 0, 0, false
	}
	pick := func(a, b int) int64 {
		switch {
		case set[a]:
			return max(0, v[a])
		case set[b]:
			return max(0, v[b])
		}
		return 0
	}
	return pick(0, 1), pick(2, 3), true
}

func usageField(k []byte) int {
	for i, name := range [...]string{"prompt_tokens", "input_tokens", "completion_tokens", "output_tokens"} {
		if strings.EqualFold(bytesString(k), name) {
			return i
		}
	}
	return -1
}

var (
	_ http.ResponseWriter = (*UsageWriter)(nil)
	_ http.Flusher        = (*UsageWriter)(nil)
)
