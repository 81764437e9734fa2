package limit

import (
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/warden-ai/warden/internal/jsonstr"
)

// jscan is a small strict JSON scanner over a byte slice: it reads the
// few fields the limit stage needs in one pass, unescaping the strings
// it collects into a reused buffer, and skips (while validating)
// everything else. It is hand-written rather than encoding/json/jsontext
// because jsontext is still behind GOEXPERIMENT=jsonv2 in this Go, and
// because the estimate wants no allocation per message or string: the
// body was already validated by the body stage, but EstimateRequest is
// also called on anything, so the scanner validates as it goes, never
// panics, and reports a syntax error as encoding/json would (strings
// are unescaped as encoding/json does, invalid UTF-8 and lone surrogates
// becoming U+FFFD).
type jscan struct {
	b     []byte
	i     int
	err   bool
	depth int
}

// maxNesting is encoding/json's limit too.
const maxNesting = 10000

func (s *jscan) fail() {
	s.err = true
	s.i = len(s.b)
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *jscan) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// enter and leave bound the nesting of arrays and objects.
func (s *jscan) enter() bool {
	s.depth++
	if s.depth > maxNesting {
		s.fail()
		return false
	}
	return true
}

func (s *jscan) leave() { s.depth-- }

// more reports whether another element of an array or object follows;
// first is true before the first element (the opening bracket consumed).
func (s *jscan) more(first bool, end byte) bool {
	if s.err {
		return false
	}
	if first {
		return !s.consume(end)
	}
	switch s.peek() {
	case ',':
		s.i++
		return true
	case end:
		s.i++
		return false
	}
	s.fail()
	return false
}

// key reads an object key and the colon after it. The key is a slice of
// the body or, when it has escapes, of buf (valid until the next key).
func (s *jscan) key(buf *[]byte) []byte {
	if s.peek() != '"' {
		s.fail()
		return nil
	}
	start, end, escaped := s.rawString()
	var k []byte
	if escaped {
		*buf = jsonstr.AppendUnescaped((*buf)[:0], s.b[start:end])
		k = *buf
	} else {
		k = s.b[start:end]
	}
	if !s.consume(':') {
		s.fail()
	}
	return k
}

// rawString validates the string at s.i (an opening quote) and returns
// the span of its contents and whether it has escapes or bytes to
// replace (invalid UTF-8).
func (s *jscan) rawString() (start, end int, escaped bool) {
	s.i++
	start = s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			end = s.i
			s.i++
			return start, end, escaped
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				s.fail()
				return 0, 0, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if jsonstr.Hex4(s.b[s.i+2:]) < 0 {
					s.fail()
					return 0, 0, false
				}
				s.i += 6
			default:
				s.fail()
				return 0, 0, false
			}
		case c < 0x20:
			s.fail()
			return 0, 0, false
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				escaped = true
			}
			s.i += n
		}
	}
	s.fail()
	return 0, 0, false
}

// appendString appends the unescaped string at s.i to dst.
func (s *jscan) appendString(dst []byte) []byte {
	start, end, escaped := s.rawString()
	if s.err {
		return dst
	}
	if !escaped {
		return append(dst, s.b[start:end]...)
	}
	return jsonstr.AppendUnescaped(dst, s.b[start:end])
}

// number validates the number at s.i and returns its text.
func (s *jscan) number() []byte {
	start := s.i
	b := s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.fail()
		return nil
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.fail()
			return nil
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			s.fail()
			return nil
		}
	}
	s.i = i
	return b[start:i]
}

func (s *jscan) literal(lit string) {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return
	}
	s.fail()
}

// skip validates and skips one value.
func (s *jscan) skip() {
	switch s.peek() {
	case '"':
		s.rawString()
	case '{':
		s.i++
		if !s.enter() {
			return
		}
		for first := true; s.more(first, '}'); first = false {
			if s.peek() != '"' {
				s.fail()
				return
			}
			s.rawString()
			if !s.consume(':') {
				s.fail()
				return
			}
			s.skip()
		}
		s.leave()
	case '[':
		s.i++
		if !s.enter() {
			return
		}
		for first := true; s.more(first, ']'); first = false {
			s.skip()
		}
		s.leave()
	case 't':
		s.literal("true")
	case 'f':
		s.literal("false")
	case 'n':
		s.literal("null")
	default:
		s.number()
	}
}

// str returns the span of a string value without escapes (a numeric
// string, a model name) as bytes, unescaping into buf when needed; ok is
// false when the value is not a string (it is then skipped).
func (s *jscan) str(buf *[]byte) (v []byte, ok bool) {
	if s.peek() != '"' {
		s.skip()
		return nil, false
	}
	start, end, escaped := s.rawString()
	if s.err {
		return nil, false
	}
	if !escaped {
		return s.b[start:end], true
	}
	*buf = jsonstr.AppendUnescaped((*buf)[:0], s.b[start:end])
	return *buf, true
}

// integer reports whether b (a valid JSON number) is an integer that
// fits an int64, as encoding/json requires to decode it into one.
func integer(b []byte) (int64, bool) {
	for _, c := range b {
		if c == '.' || c == 'e' || c == 'E' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(bytesString(b), 10, 64)
	return v, err == nil
}

// validNumber reports whether b is a JSON number and nothing else.
func validNumber(b []byte) bool {
	s := jscan{b: b}
	s.number()
	return !s.err && s.i == len(b)
}

// bytesString views b as a string for a call that does not keep it.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
