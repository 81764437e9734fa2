package limit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	tiktoken "github.com/pkoukk/tiktoken-go"
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

func useOfflineRanks() { offline.Do(func() { tiktoken.SetBpeLoader(ranksLoader) }) }

func init() { useOfflineRanks() }

// maxExactBytes bounds the text counted exactly in one call; beyond it the
// rest is estimated at one token per 3 bytes (more than any tiktoken
// encoding gives for natural text), so a huge body costs bounded CPU and
// is never under-counted by much.
const maxExactBytes = 1 << 20

// Tokenizer counts tokens as OpenAI's tiktoken does, offline. The zero
// value is not usable; use NewTokenizer.
type Tokenizer struct {
	encs map[string]*encoding // read-only after NewTokenizer
}

// encoding is one encoding: tiktoken-go's, and the fast encoder that
// counts exactly as it does (pretok.go, bpe.go) when there is one.
type encoding struct {
	tk   *tiktoken.Tiktoken
	fast *fastEncoder
}

// NewTokenizer loads the given encodings (all known ones when none is
// named) from the ranks embedded in the binary: no network, ever.
func NewTokenizer(encodings ...string) (*Tokenizer, error) {
	if len(encodings) == 0 {
		encodings = []string{EncodingO200k, EncodingCL100k}
	}
	useOfflineRanks()
	t := &Tokenizer{encs: map[string]*encoding{}}
	for _, name := range encodings {
		enc, err := tiktoken.GetEncoding(name)
		if err != nil {
			return nil, fmt.Errorf("limit: tokenizer %s: %w", name, err)
		}
		fast, err := newFastEncoder(name)
		if err != nil {
			return nil, fmt.Errorf("limit: tokenizer %s: %w", name, err)
		}
		t.encs[name] = &encoding{tk: enc, fast: fast}
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
func (t *Tokenizer) Count(model, text string) int64 { return t.count(model, text, false) }

// countBytes is Count of b, which is not kept.
func (t *Tokenizer) countBytes(model string, b []byte) int64 {
	return t.count(model, bytesString(b), false)
}

// countSlow is Count with tiktoken-go itself (the reference of the tests).
func (t *Tokenizer) countSlow(model, text string) int64 { return t.count(model, text, true) }

func (t *Tokenizer) count(model, text string, slow bool) (n int64) {
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
	switch {
	case enc == nil:
		return int64(len(text)+2)/3 + rest
	case enc.fast != nil && !slow:
		return enc.fast.count(text) + rest
	}
	return int64(len(enc.tk.EncodeOrdinary(text))) + rest
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

// estState is the reusable state of one estimate: the text collected
// and scratch space for keys and scalar strings.
type estState struct {
	text, key, val, model []byte
}

var estPool = sync.Pool{New: func() any { return &estState{text: make([]byte, 0, 2048)} }}

// EstimateRequest counts the prompt tokens of an OpenAI-compatible JSON
// request body (chat completions, completions, responses, embeddings) and
// reads its generation limit. model is used when the body names none. A
// body that is not a JSON object (or null) is an error (the caller
// decides; the estimate is then the byte estimate).
//
// It reads the body once (jscan.go): the strings that count are unescaped
// into one pooled buffer, each followed by a newline, in the order of the
// body, and that text is counted at once. Counted: every message (3
// tokens each, 1 more with a name, 3 for the reply, and every string in
// it), and every string of prompt, input, instructions, tools and
// functions except the values of the keys that carry no text (skipKey);
// a prompt or input given as token ids counts one token per id. Keys
// match case-insensitively, as encoding/json (and so an upstream written
// in Go) matches them; a field of an unexpected type is ignored rather
// than failing the estimate; a text field given twice is counted twice
// (never less than the upstream reads), a scalar given twice counts as
// the last one.
func (t *Tokenizer) EstimateRequest(body []byte, model string) (Estimate, error) {
	st := estPool.Get().(*estState)
	defer func() {
		if cap(st.text) <= maxPooledBuf {
			st.text, st.key, st.val, st.model = st.text[:0], st.key[:0], st.val[:0], st.model[:0]
			estPool.Put(st)
		}
	}()
	s := jscan{b: body}
	switch s.peek() {
	case 'n':
		s.literal("null")
		if s.err {
			return Estimate{}, errRequestBody
		}
		return Estimate{}, nil
	case '{':
		s.i++
	default:
		return Estimate{}, errRequestBody
	}
	var e Estimate
	var maxTok [3]int64
	var n int64
	hasModel := false
	for first := true; s.more(first, '}'); first = false {
		k := s.key(&st.key)
		if s.err {
			break
		}
		switch field := requestField(k); field {
		case fieldModel:
			if v, ok := s.str(&st.val); ok && len(v) > 0 {
				st.model = append(st.model[:0], v...)
				hasModel = true
			}
		case fieldMessages:
			e.Prompt += s.messages(st)
		case fieldText:
			if ids, ok := s.tokenIDs(); ok {
				e.Prompt += ids // a prompt given as token ids
				continue
			}
			st.text = s.collect(st.text, 0, &st.key)
		case fieldMaxTokens, fieldMaxCompletionTokens, fieldMaxOutputTokens:
			maxTok[field-fieldMaxTokens] = s.numberField(&st.val)
		case fieldN:
			n = s.numberField(&st.val)
		default:
			s.skip()
		}
	}
	if s.err {
		return Estimate{}, errRequestBody
	}
	if hasModel {
		model = bytesString(st.model) // used before st returns to the pool
	}
	e.Prompt += t.countBytes(model, st.text)

	limit := max(maxTok[0], maxTok[1], maxTok[2])
	e.Completion = satMul(limit, min(max(1, n), maxN))
	return e, nil
}

var errRequestBody = errors.New("limit: request body: not a JSON object")

// Fields of a request the estimate reads.
const (
	fieldOther = iota
	fieldModel
	fieldMessages
	fieldText // prompt, input, instructions, tools, functions
	fieldMaxTokens
	fieldMaxCompletionTokens
	fieldMaxOutputTokens
	fieldN
)

func requestField(k []byte) int {
	key := bytesString(k)
	switch {
	case strings.EqualFold(key, "model"):
		return fieldModel
	case strings.EqualFold(key, "messages"):
		return fieldMessages
	case strings.EqualFold(key, "prompt"), strings.EqualFold(key, "input"), strings.EqualFold(key, "instructions"),
		strings.EqualFold(key, "tools"), strings.EqualFold(key, "functions"):
		return fieldText
	case strings.EqualFold(key, "max_tokens"):
		return fieldMaxTokens
	case strings.EqualFold(key, "max_completion_tokens"):
		return fieldMaxCompletionTokens
	case strings.EqualFold(key, "max_output_tokens"):
		return fieldMaxOutputTokens
	case strings.EqualFold(key, "n"):
		return fieldN
	}
	return fieldOther
}

// messages reads the messages array: the overhead of each message in
// tokens, its strings appended to st.text.
func (s *jscan) messages(st *estState) int64 {
	if s.peek() != '[' {
		if s.peek() != 'n' {
			st.text = s.collect(st.text, 0, &st.key) // not a list: its text still counts
		} else {
			s.skip()
		}
		return 0
	}
	s.i++
	if !s.enter() {
		return 0
	}
	var tokens int64
	for first := true; s.more(first, ']'); first = false {
		if first {
			tokens += tokensReply
		}
		if s.peek() != '{' {
			st.text = s.collect(st.text, 0, &st.key)
			continue
		}
		s.i++
		if !s.enter() {
			return 0
		}
		tokens += tokensPerMessage
		named := false
		for f := true; s.more(f, '}'); f = false {
			k := s.key(&st.key)
			if string(k) == "name" && !named {
				named = true
				tokens += tokensPerName
			}
			// Every value of a message counts, whatever its key (role,
			// content, name, tool calls and their arguments...).
			st.text = s.collect(st.text, 0, &st.key)
		}
		s.leave()
	}
	s.leave()
	return tokens
}

// maxCollectDepth: strings nested deeper are not counted.
const maxCollectDepth = 64

// collect appends every string in the value at s.i (each followed by a
// newline) to dst, except the values of keys skipKey names.
func (s *jscan) collect(dst []byte, depth int, kbuf *[]byte) []byte {
	if depth > maxCollectDepth {
		s.skip()
		return dst
	}
	switch s.peek() {
	case '"':
		n := len(dst)
		dst = s.appendString(dst)
		if s.err {
			return dst[:n]
		}
		return append(dst, '\n')
	case '[':
		s.i++
		if !s.enter() {
			return dst
		}
		for first := true; s.more(first, ']'); first = false {
			dst = s.collect(dst, depth+1, kbuf)
		}
		s.leave()
	case '{':
		s.i++
		if !s.enter() {
			return dst
		}
		for first := true; s.more(first, '}'); first = false {
			if skipKey(s.key(kbuf)) {
				s.skip()
				continue
			}
			dst = s.collect(dst, depth+1, kbuf)
		}
		s.leave()
	default:
		s.skip()
	}
	return dst
}

// skipKey: keys whose values hold no text a model reads as tokens (or
// not as text): image and audio payloads are billed by size, not by their
// base64.
func skipKey(k []byte) bool {
	switch string(k) {
	case "type", "id", "tool_call_id", "image_url", "input_audio", "file_data", "detail":
		return true
	}
	return false
}

// numberField reads a generation limit or n: a JSON number, or a string
// holding one (as encoding/json reads a json.Number); anything else is 0.
func (s *jscan) numberField(buf *[]byte) int64 {
	switch c := s.peek(); {
	case c == '"':
		v, ok := s.str(buf)
		if !ok || !validNumber(v) {
			return 0
		}
		return wholeNumber(json.Number(bytesString(v)))
	case c == '-' || ('0' <= c && c <= '9'):
		v := s.number()
		if s.err {
			return 0
		}
		return wholeNumber(json.Number(bytesString(v)))
	}
	s.skip()
	return 0
}

// tokenIDs reads a prompt given as token ids: a non-empty array of
// integers, or a non-empty array of such arrays (null counting as an
// empty one, as encoding/json decodes it), and returns their number. When
// the value is anything else, s is left where it was.
func (s *jscan) tokenIDs() (int64, bool) {
	mark, depth := s.i, s.depth
	if s.peek() != '[' {
		return 0, false
	}
	if n, ok := s.intArray(); ok && n > 0 {
		return n, true
	}
	s.i, s.err, s.depth = mark, false, depth
	s.peek()
	s.i++
	total, elems := int64(0), 0
	for first := true; s.more(first, ']'); first = false {
		elems++
		switch s.peek() {
		case 'n':
			s.literal("null")
		case '[':
			n, ok := s.intArray()
			if !ok {
				s.i, s.err, s.depth = mark, false, depth
				return 0, false
			}
			total += n
		default:
			s.i, s.err, s.depth = mark, false, depth
			return 0, false
		}
	}
	if s.err || elems == 0 {
		s.i, s.err, s.depth = mark, false, depth
		return 0, false
	}
	return total, true
}

// intArray reads an array of integers (or nulls) and returns its length;
// false (s then somewhere inside) when it is anything else.
func (s *jscan) intArray() (int64, bool) {
	s.i++ // [
	n := int64(0)
	for first := true; s.more(first, ']'); first = false {
		switch c := s.peek(); {
		case c == 'n':
			s.literal("null")
		case c == '-' || ('0' <= c && c <= '9'):
			v := s.number()
			if _, ok := integer(v); !ok || s.err {
				return 0, false
			}
		default:
			return 0, false
		}
		n++
	}
	return n, !s.err
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
