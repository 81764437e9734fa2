package guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/guard/sse"
)

// Defaults for ResponseOptions.
const (
	// DefaultMaxResponseBytes bounds a non-streamed response body that is
	// read whole to be inspected.
	DefaultMaxResponseBytes = 16 << 20
	// maxStreams bounds the content fields of one SSE response that are
	// inspected as streams (choices × fields × tool calls).
	maxStreams = 64
	// maxResponseFindings bounds the findings kept for one response.
	maxResponseFindings = 1024
)

// ErrOutputTooLarge ends a response whose content exceeds MaxContentBytes.
var ErrOutputTooLarge = errors.New("guard: response content exceeds the output limit")

// ResponseOptions configure the inspection of an upstream response.
type ResponseOptions struct {
	Scanner   Scanner // what to look for (required)
	Policy    *Policy // what to do with it; nil flags only
	RequestID string  // put in the error event that ends a stream
	// MaxContentBytes is the most content (the decoded text of content
	// fields, or the data of plain-text events) a response may carry; 0 is
	// no limit. A stream that exceeds it ends with an error event.
	MaxContentBytes int64
	// MaxEventBytes bounds one SSE line or event; 0 is
	// sse.DefaultMaxEventBytes.
	MaxEventBytes int
	// MaxHold bounds the content a stream holds back; 0 is DefaultMaxHold.
	MaxHold int
	// MaxBodyBytes bounds a non-streamed body; 0 is DefaultMaxResponseBytes.
	MaxBodyBytes int64
}

// Inspection is what InspectResponse did to one response. For a stream the
// findings are complete once the body has been read to its end.
type Inspection struct {
	stream   *SSERewriter
	findings []Finding
	err      error
}

// Findings returns what was found in the response and what was done.
// Offsets are in the logical content stream of each field for streams, in
// the body for a JSON or text body.
func (in *Inspection) Findings() []Finding {
	if in.stream != nil {
		return in.stream.Findings()
	}
	return in.findings
}

// Err reports why a stream was ended early (a *BlockedError,
// ErrOutputTooLarge, sse.ErrEventTooLarge, an upstream read error), or nil.
func (in *Inspection) Err() error {
	if in.stream != nil {
		return in.stream.Err()
	}
	return in.err
}

// InspectResponse is meant for httputil.ReverseProxy.ModifyResponse. An
// SSE response gets its body replaced by an SSERewriter (content is masked
// as it streams; a block or an oversized output ends the stream with an
// error event, never a cut connection). A JSON or text response is read
// whole (at most MaxBodyBytes), scanned and rewritten; its Content-Length
// is updated. Other media types (images, audio) pass uninspected.
//
// The returned error means the response must not reach the client: a
// *BlockedError (policy, 403), ErrOutputTooLarge, a body too large or
// unreadable, a compressed body (warden asks upstreams for identity), or a
// JSON body that is not JSON. The caller answers with its own error.
func InspectResponse(res *http.Response, opt ResponseOptions) (*Inspection, error) {
	if opt.Scanner == nil {
		return nil, errors.New("guard: InspectResponse without a scanner")
	}
	if ce := res.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return nil, fmt.Errorf("guard: cannot inspect a %q-encoded response", ce)
	}
	ct := res.Header.Get("Content-Type")
	if isEventStream(ct) {
		rw := NewSSERewriter(res.Body, opt)
		res.Body = rw
		res.ContentLength = -1
		res.Header.Del("Content-Length")
		return &Inspection{stream: rw}, nil
	}
	f, err := FormatOf(ct)
	if err != nil || res.Body == nil || res.Body == http.NoBody {
		return &Inspection{}, nil // binary or empty: nothing to inspect
	}
	limit := opt.MaxBodyBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, limit+1))
	_ = res.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("guard: read response: %w", err)
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("guard: response body exceeds %d bytes", limit)
	}
	fs, err := ScanBody(opt.Scanner, f, body)
	if err != nil {
		return nil, fmt.Errorf("guard: response: %w", err)
	}
	out, err := RedactBody(opt.Policy, f, body, fs)
	if err != nil {
		return nil, err
	}
	if opt.MaxContentBytes > 0 && int64(len(out)) > opt.MaxContentBytes {
		return nil, ErrOutputTooLarge
	}
	res.Body = io.NopCloser(bytes.NewReader(out))
	res.ContentLength = int64(len(out))
	res.Header.Set("Content-Length", strconv.Itoa(len(out)))
	return &Inspection{findings: fs}, nil
}

func isEventStream(ct string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "text/event-stream")
}

// SSERewriter reads an upstream server-sent event stream and gives a
// well-formed stream with the policy carried out. It understands OpenAI's
// streaming formats: chat.completion.chunk events (choices[].delta.content,
// refusal, reasoning and tool call arguments), the Responses API's *.delta
// events, and "data: [DONE]". Each content field is one logical stream
// across events: a value split over several events is found, and text is
// held back while it could still be part of one; held text is released in
// a copy of the field's last event when the field ends (finish_reason, the
// item's next non-delta event, [DONE] or the end of the stream). Every
// other string of every event, and the data of non-JSON events, is masked
// event by event. Log probabilities, which repeat the tokens, are dropped
// when the policy can rewrite text.
//
// A block, content beyond MaxContentBytes, an oversized event or an
// upstream read error ends the stream with
//
//	event: error
//	data: {"error":{"message":…,"type":…,"code":…,"request_id":…}}
//
// after the last complete event, never with a cut connection.
type SSERewriter struct {
	src    io.ReadCloser
	opt    ResponseOptions
	parser sse.Parser
	in     []byte
	out    []byte
	off    int
	done   bool
	err    error

	streams  []*fieldStream // in order of creation
	content  int64
	findings []Finding // from event-by-event masking
	dropped  int
}

// fieldStream is one content field followed across events.
type fieldStream struct {
	key    string
	choice string // chat: the choice index; Responses: the item id
	st     *Stream
	tmpl   sse.Event // the field's last event, to carry held text when it ends
	closed bool
}

// NewSSERewriter wraps an upstream SSE body.
func NewSSERewriter(src io.ReadCloser, opt ResponseOptions) *SSERewriter {
	r := &SSERewriter{src: src, opt: opt, in: make([]byte, 32<<10)}
	r.parser.MaxEventBytes = opt.MaxEventBytes
	return r
}

// errStop stops the parser after the stream was ended.
var errStop = errors.New("guard: stream ended")

// Read implements io.Reader.
func (r *SSERewriter) Read(p []byte) (int, error) {
	for r.off == len(r.out) {
		if r.done {
			return 0, io.EOF
		}
		r.out, r.off = r.out[:0], 0
		n, err := r.src.Read(r.in)
		if n > 0 {
			if perr := r.parser.Feed(r.in[:n], r.handle); perr != nil && perr != errStop {
				r.end(perr) // an oversized event
			}
		}
		if err != nil && !r.done {
			if err == io.EOF {
				r.parser.End()
				r.flushStreams(func(*fieldStream) bool { return true })
				r.done = true
			} else {
				r.end(fmt.Errorf("guard: upstream stream: %w", err))
			}
		}
	}
	n := copy(p, r.out[r.off:])
	r.off += n
	return n, nil
}

// Close closes the upstream body.
func (r *SSERewriter) Close() error { return r.src.Close() }

// Err reports why the stream was ended early, or nil.
func (r *SSERewriter) Err() error { return r.err }

// Findings returns the findings of all content streams, then those of
// event-by-event masking (at most 1024 in all).
func (r *SSERewriter) Findings() []Finding {
	var out []Finding
	for _, fs := range r.streams {
		out = append(out, fs.st.Findings()...)
	}
	out = append(out, r.findings...)
	if len(out) > maxResponseFindings {
		out = out[:maxResponseFindings]
	}
	return out
}

// end finishes the stream with an error event.
func (r *SSERewriter) end(cause error) {
	if r.done {
		return
	}
	var be *BlockedError
	if !errors.As(cause, &be) && !errors.Is(cause, ErrOutputTooLarge) {
		// The upstream failed: what is held is masked and may go first.
		if out, err := r.flushInto(r.out, func(*fieldStream) bool { return true }); err != nil {
			cause = err
		} else {
			r.out = out
		}
	}
	r.err = cause
	r.done = true
	switch {
	case errors.As(cause, &be):
		r.out = sse.AppendError(r.out, "the response was blocked by policy ("+be.Finding.Type+")",
			"permission_error", "content_blocked", r.opt.RequestID)
	case errors.Is(cause, ErrOutputTooLarge):
		r.out = sse.AppendError(r.out, "the response exceeded the output limit", "invalid_request_error",
			"output_too_large", r.opt.RequestID)
	case errors.Is(cause, sse.ErrEventTooLarge):
		r.out = sse.AppendError(r.out, "the upstream sent an event larger than allowed", "upstream_error",
			"event_too_large", r.opt.RequestID)
	default:
		r.out = sse.AppendError(r.out, "the upstream stream failed", "upstream_error", "upstream_aborted", r.opt.RequestID)
	}
	_ = r.src.Close()
}

// handle processes one parsed block.
func (r *SSERewriter) handle(ev *sse.Event) error {
	if r.done {
		return errStop
	}
	if ev.IsComment || !ev.HasData {
		r.out = sse.AppendEvent(r.out, ev)
		return nil
	}
	data := ev.Data
	if !utf8.Valid(data) {
		data = bytes.ToValidUTF8(data, []byte("\uFFFD")) // as an event stream decoder does
	}
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		if err := r.flushStreams(func(*fieldStream) bool { return true }); err != nil {
			return err
		}
		r.out = sse.AppendEvent(r.out, ev)
		return nil
	}
	out, err := r.rewrite(ev, data)
	if err != nil {
		r.end(err)
		return errStop
	}
	r.out = append(r.out, out...)
	return nil
}

// field is one content field of an event.
type field struct {
	key    string // the logical stream it belongs to
	choice string // chat choice index or Responses item id, for flushing
	s, e   int    // the string literal, quotes included
}

// shape is what rewrite needs to know about an event's JSON.
type shape struct {
	fields   []field
	logprobs [][2]int // values to drop
	finished []string // chat choices that end in this event
	item     string   // Responses: the item id of a non-delta event; "*" for none
	isDelta  bool
	other    bool // neither a chat chunk nor a Responses event
}

// rewrite returns the blocks that replace ev: synthetic events releasing
// held text of fields that end here, then ev itself with its content
// fields replaced by what their streams release and every other string
// masked.
func (r *SSERewriter) rewrite(ev *sse.Event, data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return r.plainEvent(ev, data)
	}
	sh, ok := r.analyse(data)
	if !ok {
		return r.plainEvent(ev, data)
	}
	var pre []byte // synthetic events that go before this one
	// Responses: an item's non-delta event ends its delta streams.
	if !sh.isDelta && !sh.other {
		in := func(fs *fieldStream) bool { return sh.item == "*" || fs.choice == sh.item }
		var err error
		if pre, err = r.flushInto(pre, in); err != nil {
			return nil, err
		}
	}
	// Feed this event's fields into their streams.
	repl := make(map[int][]byte, len(sh.fields))
	present := map[*fieldStream]bool{}
	for i, f := range sh.fields {
		fs, err := r.stream(f.key, f.choice)
		if err != nil {
			return nil, err
		}
		text := decodeString(nil, data[f.s+1:f.e-1])
		r.content += int64(len(text))
		if r.opt.MaxContentBytes > 0 && r.content > r.opt.MaxContentBytes {
			return nil, ErrOutputTooLarge
		}
		released, err := fs.st.Write(nil, text)
		if err != nil {
			return nil, err
		}
		repl[i] = released
		fs.tmpl = cloneEvent(ev, data)
		fs.closed = false
		present[fs] = true
	}
	// Chat: a finish_reason ends the choice's streams. Held text of a field
	// in this event goes into it; of other fields, into a copy of their
	// last event before this one.
	for _, c := range sh.finished {
		for i, f := range sh.fields {
			if f.choice != c {
				continue
			}
			fs, _ := r.stream(f.key, f.choice)
			tail, err := fs.st.Flush(nil)
			if err != nil {
				return nil, err
			}
			repl[i] = append(repl[i], tail...)
			fs.closed = true
		}
		in := func(fs *fieldStream) bool { return fs.choice == c && !present[fs] }
		var err error
		if pre, err = r.flushInto(pre, in); err != nil {
			return nil, err
		}
	}
	body, err := r.build(data, sh, repl)
	if err != nil {
		return nil, err
	}
	out := append(pre, sse.AppendEvent(nil, &sse.Event{Type: ev.Type, Data: body, HasData: true, ID: ev.ID, HasID: ev.HasID, Retry: ev.Retry})...)
	return out, nil
}

// plainEvent masks the data of a non-JSON event as one text.
func (r *SSERewriter) plainEvent(ev *sse.Event, data []byte) ([]byte, error) {
	r.content += int64(len(data))
	if r.opt.MaxContentBytes > 0 && r.content > r.opt.MaxContentBytes {
		return nil, ErrOutputTooLarge
	}
	fs := r.opt.Scanner.Scan(data)
	if err := r.opt.Policy.Decide(fs); err != nil {
		return nil, err
	}
	r.keep(fs)
	out := r.opt.Policy.Apply(nil, data, fs)
	return sse.AppendEvent(nil, &sse.Event{Type: ev.Type, Data: out, HasData: true, ID: ev.ID, HasID: ev.HasID, Retry: ev.Retry}), nil
}

func (r *SSERewriter) keep(fs []Finding) {
	for _, f := range fs {
		if len(r.findings) < maxResponseFindings {
			r.findings = append(r.findings, f)
		} else {
			r.dropped++
		}
	}
}

// stream returns the stream for a field, creating it.
func (r *SSERewriter) stream(key, choice string) (*fieldStream, error) {
	for _, fs := range r.streams {
		if fs.key == key {
			return fs, nil
		}
	}
	if len(r.streams) == maxStreams {
		return nil, fmt.Errorf("guard: more than %d content streams in one response", maxStreams)
	}
	fs := &fieldStream{key: key, choice: choice, st: NewStream(r.opt.Scanner, StreamOptions{Policy: r.opt.Policy, MaxHold: r.opt.MaxHold})}
	r.streams = append(r.streams, fs)
	return fs, nil
}

// flushStreams releases the held text of the streams in selects, in
// copies of their last events.
func (r *SSERewriter) flushStreams(selects func(*fieldStream) bool) error {
	out, err := r.flushInto(r.out, selects)
	if err != nil {
		r.end(err)
		return errStop
	}
	r.out = out
	return nil
}

// flushInto appends to dst, for each selected open stream with held text,
// a copy of its last event carrying that text (and nothing else).
func (r *SSERewriter) flushInto(dst []byte, selects func(*fieldStream) bool) ([]byte, error) {
	for _, fs := range r.streams {
		if fs.closed || !selects(fs) {
			continue
		}
		tail, err := fs.st.Flush(nil)
		if err != nil {
			return nil, err
		}
		fs.closed = true
		if len(tail) == 0 {
			continue
		}
		data := fs.tmpl.Data
		sh, ok := r.analyse(data)
		if !ok {
			continue // cannot happen: the template was analysed before
		}
		repl := map[int][]byte{}
		for i, f := range sh.fields {
			if f.key == fs.key {
				repl[i] = tail
			} else {
				repl[i] = nil
			}
		}
		sh.finished = nil
		body, err := r.buildSynthetic(data, sh, repl)
		if err != nil {
			return nil, err
		}
		ev := fs.tmpl
		ev.Data = body
		dst = sse.AppendEvent(dst, &ev)
	}
	return dst, nil
}

func cloneEvent(ev *sse.Event, data []byte) sse.Event {
	return sse.Event{Type: ev.Type, Data: slices.Clone(data), HasData: true, Retry: -1}
}

// analyse finds the content fields, log probabilities and ends in an
// event's JSON. ok is false when data is not JSON.
func (r *SSERewriter) analyse(data []byte) (sh shape, ok bool) {
	type choiceInfo struct {
		index    string
		finished bool
	}
	var choices []choiceInfo // by position in "choices"
	type rawField struct {
		pos, tool int    // choice position; tool call position (-1 for none)
		name      string // content, refusal, reasoning, arguments
		s, e      int
	}
	var raws []rawField
	toolIndex := map[[2]int]string{}
	var typ, delta, itemID, outIdx, contentIdx string
	deltaSpan := [2]int{-1, -1}
	choiceAt := func(pos int) *choiceInfo {
		for len(choices) <= pos {
			choices = append(choices, choiceInfo{index: strconv.Itoa(len(choices))})
		}
		return &choices[pos]
	}
	key := func(p []pathElem, i int) string { return string(p[i].key) }
	err := walkJSON(data, func(p []pathElem, v jsonValue) error {
		raw := data[v.s:v.e]
		if len(p) == 1 {
			switch key(p, 0) {
			case "type":
				if v.kind == jString {
					typ = string(raw)
				}
			case "delta":
				if v.kind == jString {
					deltaSpan = [2]int{v.s - 1, v.e + 1}
					delta = "y"
				}
			case "item_id":
				itemID = string(raw)
			case "output_index":
				outIdx = string(raw)
			case "content_index":
				contentIdx = string(raw)
			case "logprobs":
				if v.kind == jObject || v.kind == jArray {
					sh.logprobs = append(sh.logprobs, [2]int{v.s, v.e})
				}
			}
			return nil
		}
		if len(p) < 3 || key(p, 0) != "choices" || p[1].key != nil {
			return nil
		}
		pos := p[1].index
		switch {
		case len(p) == 3 && key(p, 2) == "index" && v.kind == jNumber:
			choiceAt(pos).index = string(raw)
		case len(p) == 3 && key(p, 2) == "finish_reason" && v.kind == jString:
			choiceAt(pos).finished = true
		case len(p) == 3 && key(p, 2) == "logprobs" && (v.kind == jObject || v.kind == jArray):
			sh.logprobs = append(sh.logprobs, [2]int{v.s, v.e})
		case len(p) == 4 && key(p, 2) == "delta" && v.kind == jString:
			switch n := key(p, 3); n {
			case "content", "refusal", "reasoning_content", "reasoning":
				choiceAt(pos)
				raws = append(raws, rawField{pos: pos, tool: -1, name: n, s: v.s - 1, e: v.e + 1})
			}
		case len(p) == 7 && key(p, 2) == "delta" && key(p, 3) == "tool_calls" && p[4].key == nil &&
			key(p, 5) == "function" && key(p, 6) == "arguments" && v.kind == jString:
			choiceAt(pos)
			raws = append(raws, rawField{pos: pos, tool: p[4].index, name: "arguments", s: v.s - 1, e: v.e + 1})
		case len(p) == 6 && key(p, 2) == "delta" && key(p, 3) == "tool_calls" && p[4].key == nil &&
			key(p, 5) == "index" && v.kind == jNumber:
			toolIndex[[2]int{pos, p[4].index}] = string(raw)
		}
		return nil
	})
	if err != nil {
		return shape{}, false
	}
	switch {
	case len(choices) > 0:
		for _, f := range raws {
			c := choices[f.pos].index
			k := "chat/" + c + "/" + f.name
			if f.tool >= 0 {
				ti, ok := toolIndex[[2]int{f.pos, f.tool}]
				if !ok {
					ti = strconv.Itoa(f.tool)
				}
				k += "/" + ti
			}
			sh.fields = append(sh.fields, field{key: k, choice: c, s: f.s, e: f.e})
		}
		for _, c := range choices {
			if c.finished {
				sh.finished = append(sh.finished, c.index)
			}
		}
		sh.isDelta = true
	case strings.HasSuffix(typ, ".delta") && delta != "":
		sh.isDelta = true
		sh.fields = []field{{key: "resp/" + strings.TrimSuffix(typ, ".delta") + "/" + itemID + "/" + outIdx + "/" + contentIdx,
			choice: itemID, s: deltaSpan[0], e: deltaSpan[1]}}
	case strings.HasPrefix(typ, "response."):
		sh.item = itemID
		if sh.item == "" {
			sh.item = "*"
		}
	default:
		sh.other = true
	}
	return sh, true
}

// edit replaces data[s:e] with b.
type edit struct {
	s, e int
	b    []byte
}

// build returns data with content fields replaced by repl (JSON-encoded),
// log probabilities dropped and every other string masked.
func (r *SSERewriter) build(data []byte, sh shape, repl map[int][]byte) ([]byte, error) {
	return r.compose(data, sh, repl, true)
}

// buildSynthetic is build for a copy of an event: the findings of its
// other strings were recorded when the event itself was sent.
func (r *SSERewriter) buildSynthetic(data []byte, sh shape, repl map[int][]byte) ([]byte, error) {
	return r.compose(data, sh, repl, false)
}

func (r *SSERewriter) compose(data []byte, sh shape, repl map[int][]byte, record bool) ([]byte, error) {
	var edits []edit
	for i, f := range sh.fields {
		edits = append(edits, edit{f.s, f.e, AppendJSONString(nil, repl[i])})
	}
	if r.opt.Policy.Rewrites() {
		for _, lp := range sh.logprobs {
			b := []byte("null")
			if data[lp[0]] == '[' {
				b = []byte("[]")
			}
			edits = append(edits, edit{lp[0], lp[1], b})
		}
	}
	// Every other string, masked on its own.
	fs, err := ScanJSON(r.opt.Scanner, data)
	if err != nil {
		return nil, err
	}
	kept := fs[:0]
	for _, f := range fs {
		if !inEdits(f, edits) {
			kept = append(kept, f)
		}
	}
	if err := r.opt.Policy.Decide(kept); err != nil {
		return nil, err
	}
	if record {
		r.keep(kept)
	}
	for _, f := range kept {
		if f.Action == ActionMask || f.Action == ActionHash {
			edits = append(edits, edit{f.Start, f.End, r.opt.Policy.token(nil, f, data[f.Start:f.End], decodeString)})
		}
	}
	slices.SortFunc(edits, func(a, b edit) int { return a.s - b.s })
	out := make([]byte, 0, len(data)+64)
	last := 0
	for _, e := range edits {
		if e.s < last {
			continue // overlaps an earlier edit (findings of two scanners)
		}
		out = append(out, data[last:e.s]...)
		out = append(out, e.b...)
		last = e.e
	}
	return append(out, data[last:]...), nil
}

func inEdits(f Finding, edits []edit) bool {
	for _, e := range edits {
		if f.Start < e.e && e.s < f.End {
			return true
		}
	}
	return false
}

var _ io.ReadCloser = (*SSERewriter)(nil)
