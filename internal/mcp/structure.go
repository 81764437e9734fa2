package mcp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"sync"
)

// This file is warden's structural JSON scanner: one pass over a message
// that accepts exactly the syntax encoding/json accepts, bounds nesting at
// MaxDepth and refuses any object with two keys equal under Unicode simple
// case folding (after unescaping), at every level, reporting the first
// problem in stream order as the encoding/json Decoder.Token loop it
// replaced did (a differential fuzz test, FuzzStructure, holds it to that
// reference).
//
// Why hand-written: no JSON library refuses keys that differ only in case
// (encoding/json and jsontext detect exact duplicates at most), which is
// the check that matters here (decoders resolve such keys differently), so
// warden must scan itself anyway; doing it with Decoder.Token cost ~17 µs
// and 200 allocations for a 200-byte tools/call. This scanner allocates
// nothing per token: ASCII keys are compared case-insensitively in place,
// only keys with escapes or non-ASCII bytes are decoded and folded, and an
// object switches from a linear scan of its key spans to a map only beyond
// maxLinearKeys keys. It also records the spans of the top-level members
// and of the "params" object's members, so Parse needs no second pass.

// maxLinearKeys is the number of keys of one object compared pairwise;
// beyond it the object's folded keys go into a map.
const maxLinearKeys = 16

// keySpan is one key of an object being scanned: its text between the
// quotes and, when it has escapes or non-ASCII bytes (complex), its
// decoded and folded form.
type keySpan struct {
	start, end int
	complex    bool
	decoded    string // complex only: the key as encoding/json decodes it
	fold       string // complex only: foldKey(decoded)
}

// member is one member of a recorded object: its key and its value's span.
type member struct {
	key          keySpan
	vstart, vend int
}

// What an object's members are recorded into.
const (
	recNone = iota
	recTop
	recParams
)

// structScanner scans one message; the zero value with data set is ready.
type structScanner struct {
	data   []byte
	pos    int
	keys   []keySpan // the keys of the objects being scanned, innermost last
	top    []member  // the top-level object's members
	params []member  // the members of the top-level "params" object
	err    *ParseError
	// decoded: a complex key was decoded, so the buffers hold strings.
	decoded bool
}

// scanners keeps the scanners' buffers between messages.
var scanners = sync.Pool{New: func() any {
	return &structScanner{keys: make([]keySpan, 0, 32), top: make([]member, 0, 8), params: make([]member, 0, 8)}
}}

// newScanner returns a scanner of data from the pool; release returns it.
// Nothing the scanner recorded may be used after release.
func newScanner(data []byte) *structScanner {
	s := scanners.Get().(*structScanner)
	s.data = data
	return s
}

func (s *structScanner) release() {
	if cap(s.keys) > 1024 || cap(s.top) > 1024 || cap(s.params) > 1024 {
		return // an unusual message: let its buffers go
	}
	if s.decoded { // no decoded keys kept alive
		clear(s.keys[:cap(s.keys)])
		clear(s.top[:cap(s.top)])
		clear(s.params[:cap(s.params)])
	}
	*s = structScanner{keys: s.keys[:0], top: s.top[:0], params: s.params[:0]}
	scanners.Put(s)
}

// String byte classes.
const (
	chPlain     = iota // ASCII, no meaning inside a string
	chQuote            // "
	chBackslash        // \
	chControl          // < 0x20: not allowed in a string
	chHigh             // ≥ 0x80: part of a UTF-8 sequence (validated before)
)

var strClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c < 0x20:
			t[c] = chControl
		case c == '"':
			t[c] = chQuote
		case c == '\\':
			t[c] = chBackslash
		case c >= 0x80:
			t[c] = chHigh
		}
	}
	return t
}()

func (s *structScanner) fail(code int, msg string) bool {
	if s.err == nil {
		s.err = perr(code, msg)
	}
	return false
}

func (s *structScanner) syntax() bool { return s.fail(CodeParseError, "the message is not valid JSON") }

// run scans s.data as exactly one JSON value. Empty or white-space-only
// data is accepted (the reference did so; Parse refuses it before).
func (s *structScanner) run() *ParseError {
	s.skipSpace()
	if s.pos == len(s.data) {
		return nil
	}
	if !s.value(0, recTop) {
		return s.err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return perr(CodeParseError, "trailing data after the message")
	}
	return nil
}

func (s *structScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\r', '\n':
			s.pos++
		default:
			return
		}
	}
}

// value scans the value at s.pos, which is nested in depth containers.
func (s *structScanner) value(depth, rec int) bool {
	if s.pos >= len(s.data) {
		return s.syntax()
	}
	switch c := s.data[s.pos]; c {
	case '{':
		return s.object(depth+1, rec)
	case '[':
		return s.array(depth + 1)
	case '"':
		_, ok := s.str()
		return ok
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return s.number()
		}
		return s.syntax()
	}
}

func (s *structScanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.syntax()
	}
	s.pos += len(lit)
	return true
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? (RFC 8259 §6).
func (s *structScanner) number() bool {
	d, i := s.data, s.pos
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		i++
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		return s.syntax()
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.syntax()
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return s.syntax()
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return true
}

// str scans the string at s.pos (a quote) and returns its content's span,
// marked complex when it has escapes or non-ASCII bytes. Its UTF-8 was
// validated before the scan.
func (s *structScanner) str() (k keySpan, ok bool) {
	d := s.data
	i := s.pos + 1
	k.start = i
	for {
		// Eight bytes at a time while none is a quote, a backslash, a
		// control or a non-ASCII byte; then byte by byte.
		for i+8 <= len(d) && !swarSpecial(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && strClass[d[i]] == chPlain {
			i++
		}
		if i >= len(d) {
			return k, s.syntax()
		}
		switch strClass[d[i]] {
		case chQuote:
			k.end = i
			s.pos = i + 1
			return k, true
		case chHigh:
			k.complex = true
			i++
		case chControl:
			return k, s.syntax()
		case chBackslash:
			k.complex = true
			i++
			if i >= len(d) {
				return k, s.syntax()
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(d)-i < 5 || !isHex(d[i+1]) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) {
					return k, s.syntax()
				}
				i += 5
			default:
				return k, s.syntax()
			}
		}
	}
}

// swarSpecial reports whether any of the eight bytes of x is < 0x20, '"',
// '\\' or ≥ 0x80 (the zero-byte test of "Bit Twiddling Hacks", exact as a
// yes/no answer).
func swarSpecial(x uint64) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	zero := func(v uint64) uint64 { return (v - lo) & ^v & hi }
	less20 := (x - lo*0x20) & ^x & hi
	return less20|zero(x^(lo*'"'))|zero(x^(lo*'\\'))|x&hi != 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *structScanner) array(depth int) bool {
	if depth > MaxDepth {
		return s.fail(CodeInvalidRequest, "the message is nested too deeply")
	}
	s.pos++
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return true
	}
	for {
		if !s.value(depth, recNone) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return s.syntax()
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return true
		default:
			return s.syntax()
		}
	}
}

func (s *structScanner) object(depth, rec int) bool {
	if depth > MaxDepth {
		return s.fail(CodeInvalidRequest, "the message is nested too deeply")
	}
	d := s.data
	s.pos++
	s.skipSpace()
	if s.pos < len(d) && d[s.pos] == '}' {
		s.pos++
		return true
	}
	base := len(s.keys)
	var folds map[string]struct{} // beyond maxLinearKeys keys
	for {
		if s.pos >= len(d) || d[s.pos] != '"' {
			return s.syntax()
		}
		k, ok := s.str()
		if !ok {
			return false
		}
		if k.complex {
			s.decoded = true
			// Escapes are decoded as encoding/json does (lone surrogates
			// become U+FFFD), so "\u0041" and "a" collide like "A" and "a".
			if k.decoded, ok = decodeString(d[k.start-1 : k.end+1]); !ok {
				return s.syntax() // cannot happen: the string was scanned
			}
			k.fold = foldKey(k.decoded)
		}
		if !s.addKey(base, &k, &folds) {
			return s.fail(CodeInvalidRequest, "an object has duplicate keys (or keys that differ only in case)")
		}
		s.skipSpace()
		if s.pos >= len(d) || d[s.pos] != ':' {
			return s.syntax()
		}
		s.pos++
		s.skipSpace()
		vrec := recNone
		if rec == recTop && s.keyIs(&k, "params") {
			vrec = recParams
		}
		vstart := s.pos
		if !s.value(depth, vrec) {
			return false
		}
		switch rec {
		case recTop:
			s.top = append(s.top, member{key: k, vstart: vstart, vend: s.pos})
		case recParams:
			s.params = append(s.params, member{key: k, vstart: vstart, vend: s.pos})
		}
		s.skipSpace()
		if s.pos >= len(d) {
			return s.syntax()
		}
		switch d[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			s.keys = s.keys[:base]
			return true
		default:
			return s.syntax()
		}
	}
}

// addKey adds k to the keys of the object whose keys start at base, and
// reports false when the object already has a key equal to it under
// simple case folding.
func (s *structScanner) addKey(base int, k *keySpan, folds *map[string]struct{}) bool {
	if *folds != nil {
		f := s.foldOf(k)
		if _, dup := (*folds)[f]; dup {
			return false
		}
		(*folds)[f] = struct{}{}
		return true
	}
	for i := base; i < len(s.keys); i++ {
		if s.sameKey(&s.keys[i], k) {
			return false
		}
	}
	s.keys = append(s.keys, *k)
	if len(s.keys)-base > maxLinearKeys {
		m := make(map[string]struct{}, 2*maxLinearKeys)
		for i := base; i < len(s.keys); i++ {
			m[s.foldOf(&s.keys[i])] = struct{}{}
		}
		*folds = m
		s.keys = s.keys[:base]
	}
	return true
}

// foldOf returns k's folded form (foldKey of its decoded text).
func (s *structScanner) foldOf(k *keySpan) string {
	if k.complex {
		return k.fold
	}
	b := make([]byte, k.end-k.start)
	for i, c := range s.data[k.start:k.end] {
		b[i] = upperASCII(c)
	}
	return string(b)
}

// sameKey reports whether a and b fold to the same key. A simple key is
// ASCII, and an ASCII letter's fold is its upper case (the smallest rune
// of its orbit, as foldKey picks), so it is compared byte by byte.
func (s *structScanner) sameKey(a, b *keySpan) bool {
	switch {
	case !a.complex && !b.complex:
		x, y := s.data[a.start:a.end], s.data[b.start:b.end]
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i] != y[i] && upperASCII(x[i]) != upperASCII(y[i]) {
				return false
			}
		}
		return true
	case a.complex && b.complex:
		return a.fold == b.fold
	case a.complex:
		return foldIsASCII(a.fold, s.data[b.start:b.end])
	default:
		return foldIsASCII(b.fold, s.data[a.start:a.end])
	}
}

// foldIsASCII reports whether fold is the fold of the ASCII text b.
func foldIsASCII(fold string, b []byte) bool {
	if len(fold) != len(b) {
		return false
	}
	for i := range b {
		if fold[i] != upperASCII(b[i]) {
			return false
		}
	}
	return true
}

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// keyIs reports whether k, decoded, is name.
func (s *structScanner) keyIs(k *keySpan, name string) bool {
	if k.complex {
		return k.decoded == name
	}
	return string(s.data[k.start:k.end]) == name
}

// decodeString decodes the scanned JSON string quoted as encoding/json
// does.
func decodeString(quoted []byte) (string, bool) {
	body := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), true
	}
	var v string
	if json.Unmarshal(quoted, &v) != nil {
		return "", false
	}
	return v, true
}

// keyString returns k decoded.
func (s *structScanner) keyString(k *keySpan) string {
	if k.complex {
		return k.decoded
	}
	return string(s.data[k.start:k.end])
}

// objectMembers returns the members of raw, one JSON object, by decoded
// key, their values slices of raw: what json.Unmarshal into a
// map[string]json.RawMessage gives for an object without duplicate keys,
// at a fraction of the cost. ok is false when raw is not such an object.
func objectMembers(raw []byte) (members map[string]json.RawMessage, ok bool) {
	if firstByte(raw) != '{' {
		return nil, false
	}
	s := newScanner(raw)
	defer s.release()
	if s.run() != nil {
		return nil, false
	}
	members = make(map[string]json.RawMessage, len(s.top))
	for i := range s.top {
		mb := &s.top[i]
		members[s.keyString(&mb.key)] = raw[mb.vstart:mb.vend:mb.vend]
	}
	return members, true
}
