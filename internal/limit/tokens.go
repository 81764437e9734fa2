package limit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	tiktoken "github.com/pkoukk/tiktoken-go"
	loader "github.com/pkoukk/tiktoken-go-loader"
)

// Encodings the tokenizer knows.
const (
	EncodingO200k  = "o200k_base"
	EncodingCL100k = "cl100k_base"
)

// offline installs the loader of the ranks embedded in the binary
// (tiktoken-go-loader) before any encoding is loaded: the library's
// default loader would download them at run time. It runs from
// NewTokenizer, not init, so that package-level variables initialised
// before init cannot reach the default loader.
var offline sync.Once

func useOfflineRanks() { offline.Do(func() { tiktoken.SetBpeLoader(loader.NewOfflineLoader()) }) }

func init() { useOfflineRanks() }

// maxExactBytes bounds the text counted exactly in one call; beyond it the
// rest is estimated at one token per 3 bytes (more than any tiktoken
// encoding gives for natural text), so a huge body costs bounded CPU and
// is never under-counted by much.
const maxExactBytes = 1 << 20

// Tokenizer counts tokens as OpenAI's tiktoken does, offline. The zero
// value is not usable; use NewTokenizer.
type Tokenizer struct {
	encs map[string]*tiktoken.Tiktoken // read-only after NewTokenizer
}

// NewTokenizer loads the given encodings (all known ones when none is
// named) from the ranks embedded in the binary: no network, ever.
func NewTokenizer(encodings ...string) (*Tokenizer, error) {
	if len(encodings) == 0 {
		encodings = []string{EncodingO200k, EncodingCL100k}
	}
	useOfflineRanks()
	t := &Tokenizer{encs: map[string]*tiktoken.Tiktoken{}}
	for _, name := range encodings {
		enc, err := tiktoken.GetEncoding(name)
		if err != nil {
			return nil, fmt.Errorf("limit: tokenizer %s: %w", name, err)
		}
		t.encs[name] = enc
	}
	return t, nil
}

// EncodingFor names the encoding of a model: o200k_base for the GPT-4o,
// GPT-4.1/4.5/5 and o-series families and for models warden does not
// know (today's default), cl100k_base for GPT-4, GPT-3.5 and the
// text-embedding models.
func EncodingFor(model string) string {
	m := strings.ToLower(model)
	if i := strings.LastIndexByte(m, '/'); i >= 0 { // "openai/gpt-4", "ft:gpt-4..." keeps working
		m = m[i+1:]
	}
	m = strings.TrimPrefix(m, "ft:")
	switch {
	case strings.HasPrefix(m, "gpt-4o"), strings.HasPrefix(m, "chatgpt-4o"), strings.HasPrefix(m, "gpt-4.1"),
		strings.HasPrefix(m, "gpt-4.5"), strings.HasPrefix(m, "gpt-5"), strings.HasPrefix(m, "o1"),
		strings.HasPrefix(m, "o3"), strings.HasPrefix(m, "o4"), strings.HasPrefix(m, "gpt-oss"):
		return EncodingO200k
	case strings.HasPrefix(m, "gpt-4"), strings.HasPrefix(m, "gpt-3.5"), strings.HasPrefix(m, "gpt-35"),
		strings.HasPrefix(m, "text-embedding-"):
		return EncodingCL100k
	}
	return EncodingO200k
}

// Count returns the number of tokens of text in the model's encoding
// (special tokens are counted as ordinary text, as upstreams bill them).
// It never panics: a tokenizer fault falls back to the byte estimate.
func (t *Tokenizer) Count(model, text string) (n int64) {
	if text == "" {
		return 0
	}
	enc := t.encs[EncodingFor(model)]
	if enc == nil {
		for _, e := range t.encs { // the one loaded
			enc = e
			break
		}
	}
	rest := int64(0)
	if len(text) > maxExactBytes {
		rest = int64(len(text)-maxExactBytes+2) / 3
		text = text[:maxExactBytes]
	}
	defer func() {
		if recover() != nil {
			n = int64(len(text)+2)/3 + rest
		}
	}()
	if enc == nil {
		return int64(len(text)+2)/3 + rest
	}
	return int64(len(enc.EncodeOrdinary(text))) + rest
}

// Estimate is what a request will cost in tokens at most, as far as the
// request tells.
type Estimate struct {
	Prompt int64 // tokens of the input
	// Completion is the most tokens the request may generate (max_tokens,
	// max_completion_tokens or max_output_tokens, times n); 0 when the
	// request sets no limit.
	Completion int64
}

// Per-message overhead of chat formats (OpenAI's cookbook: every message
// is wrapped in <|start|>{role/name}\n{content}<|end|>\n, and every reply
// is primed with <|start|>assistant<|message|>).
const (
	tokensPerMessage = 3
	tokensPerName    = 1
	tokensReply      = 3
)

// maxN bounds the n field (choices): beyond it the request is surely
// refused upstream; the estimate stays finite.
const maxN = 128

// requestBody is the part of an OpenAI request the estimate reads.
type requestBody struct {
	Model               string            `json:"model"`
	Messages            []json.RawMessage `json:"messages"`
	Prompt              json.RawMessage   `json:"prompt"`
	Input               json.RawMessage   `json:"input"`
	Instructions        json.RawMessage   `json:"instructions"`
	Tools               json.RawMessage   `json:"tools"`
	Functions           json.RawMessage   `json:"functions"`
	MaxTokens           json.Number       `json:"max_tokens"`
	MaxCompletionTokens json.Number       `json:"max_completion_tokens"`
	MaxOutputTokens     json.Number       `json:"max_output_tokens"`
	N                   json.Number       `json:"n"`
}

// EstimateRequest counts the prompt tokens of an OpenAI-compatible JSON
// request body (chat completions, completions, responses, embeddings) and
// reads its generation limit. model is used when the body names none. A
// body that is not a JSON object is an error (the caller decides; the
// estimate is then the byte estimate).
func (t *Tokenizer) EstimateRequest(body []byte, model string) (Estimate, error) {
	var req requestBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		return Estimate{}, fmt.Errorf("limit: request body: %w", err)
	}
	if req.Model != "" {
		model = req.Model
	}
	var e Estimate
	var text strings.Builder
	add := func(s string) {
		text.WriteString(s)
		text.WriteByte('\n')
	}
	if len(req.Messages) > 0 {
		e.Prompt += tokensReply
		for _, raw := range req.Messages {
			var m map[string]json.RawMessage
			if json.Unmarshal(raw, &m) != nil {
				collectStrings(raw, add)
				continue
			}
			e.Prompt += tokensPerMessage
			for k, v := range m {
				if k == "name" {
					e.Prompt += tokensPerName
				}
				collectStrings(v, add)
			}
		}
	}
	for _, raw := range []json.RawMessage{req.Prompt, req.Input, req.Instructions, req.Tools, req.Functions} {
		if n, ok := tokenIDs(raw); ok {
			e.Prompt += n // a prompt given as token ids
			continue
		}
		collectStrings(raw, add)
	}
	e.Prompt += t.Count(model, text.String())

	limit := int64(0)
	for _, v := range []json.Number{req.MaxTokens, req.MaxCompletionTokens, req.MaxOutputTokens} {
		limit = max(limit, wholeNumber(v))
	}
	n := min(max(1, wholeNumber(req.N)), maxN)
	e.Completion = satMul(limit, n)
	return e, nil
}

// maxTokenField bounds a generation limit read from a request (2^53, as
// the max_tokens obligation does).
const maxTokenField = 1 << 53

// wholeNumber reads a JSON number as a non-negative integer up to
// maxTokenField (256, 256.0 and 2.56e2 are 256); anything else is 0.
func wholeNumber(v json.Number) int64 {
	if v == "" {
		return 0
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || f != f || f <= 0 {
		return 0
	}
	if f >= maxTokenField {
		return maxTokenField
	}
	return int64(f)
}

// collectStrings passes every string in a JSON value to add, except the
// values of keys that carry no text (types, ids, image data).
func collectStrings(raw json.RawMessage, add func(string)) {
	if len(raw) == 0 {
		return
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return
	}
	walkStrings(v, add, 0)
}

// skipKeys hold no text a model reads as tokens (or not as text): image
// and audio payloads are billed by size, not by their base64.
var skipKeys = map[string]bool{"type": true, "id": true, "tool_call_id": true, "image_url": true,
	"input_audio": true, "file_data": true, "detail": true}

func walkStrings(v any, add func(string), depth int) {
	if depth > 64 {
		return
	}
	switch x := v.(type) {
	case string:
		add(x)
	case []any:
		for _, e := range x {
			walkStrings(e, add, depth+1)
		}
	case map[string]any:
		for k, e := range x {
			if !skipKeys[k] {
				walkStrings(e, add, depth+1)
			}
		}
	}
}

// tokenIDs reports the number of tokens of a prompt given as token ids:
// an array of integers, or an array of such arrays.
func tokenIDs(raw json.RawMessage) (int64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) < 2 || raw[0] != '[' {
		return 0, false
	}
	var flat []int64
	if json.Unmarshal(raw, &flat) == nil {
		return int64(len(flat)), len(flat) > 0
	}
	var nested [][]int64
	if json.Unmarshal(raw, &nested) == nil && len(nested) > 0 {
		n := int64(0)
		for _, a := range nested {
			n += int64(len(a))
		}
		return n, true
	}
	return 0, false
}
