package guard

import (
	"encoding/binary"
	"net/http"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxJSONDepth is how deeply a JSON body may nest arrays and objects.
// Deeper documents are refused (an InputError), never walked.
const MaxJSONDepth = 128

// maxKeyContext is the longest member name passed to the scanner as
// context for its value.
const maxKeyContext = 64

// jsonKind is the kind of a JSON value.
type jsonKind uint8

const (
	jString jsonKind = iota + 1
	jNumber
	jLiteral // true, false, null
	jObject
	jArray
)

// pathElem is one step from the root to a value: a member name (key != nil)
// or an array index.
type pathElem struct {
	key   []byte // decoded member name; nil inside an array
	index int    // position in the array, or in the object
}

// jsonValue is a value seen by walkJSON. For strings [s, e) is the raw
// content between the quotes and esc says whether it has escapes; for
// other values it is the whole value.
type jsonValue struct {
	kind jsonKind
	s, e int
	esc  bool
	// keyS, keyE is the raw content span of the member name right before
	// the value (-1 when the value is an array element or the root).
	keyS, keyE int
}

// walkJSON validates d as one JSON document (RFC 8259) and calls visit for
// every scalar value when it is read and for every object and array when it
// closes, with the path to it. path is reused between calls. It allocates
// only for member names that contain escapes.
func walkJSON(d []byte, visit func(path []pathElem, v jsonValue) error) error {
	var stackBuf [MaxJSONDepth]struct {
		open  byte
		start int
	}
	pathBuf := make([]pathElem, 0, 16)
	path := pathBuf
	depth := 0
	keyS, keyE := -1, -1
	i := skipWS(d, 0)
	const (
		stValue = iota
		stKey
		stAfter
	)
	state := stValue
	for {
		switch state {
		case stValue:
			if i >= len(d) {
				return errJSON(i, "unexpected end")
			}
			v := jsonValue{keyS: keyS, keyE: keyE, s: i}
			keyS, keyE = -1, -1
			switch c := d[i]; {
			case c == '{' || c == '[':
				if depth == MaxJSONDepth {
					return inputErrorf(http.StatusBadRequest, "json_too_deep", "the JSON body nests deeper than %d levels", MaxJSONDepth)
				}
				stackBuf[depth].open, stackBuf[depth].start = c, i
				depth++
				i = skipWS(d, i+1)
				closer := byte('}')
				if c == '[' {
					closer = ']'
				}
				if i < len(d) && d[i] == closer {
					depth--
					i++
					kind := jObject
					if c == '[' {
						kind = jArray
					}
					if err := visit(path, jsonValue{kind: kind, s: v.s, e: i, keyS: -1, keyE: -1}); err != nil {
						return err
					}
					state = stAfter
					continue
				}
				if c == '{' {
					path = append(path, pathElem{index: 0})
					state = stKey
				} else {
					path = append(path, pathElem{index: 0})
					state = stValue
				}
				continue
			case c == '"':
				end, esc, err := scanString(d, i+1)
				if err != nil {
					return err
				}
				v.kind, v.s, v.e, v.esc = jString, i+1, end, esc
				i = end + 1
			case c == '-' || (c >= '0' && c <= '9'):
				end, err := scanNumber(d, i)
				if err != nil {
					return err
				}
				v.kind, v.e = jNumber, end
				i = end
			case c == 't' || c == 'f' || c == 'n':
				lit := "null"
				if c == 't' {
					lit = "true"
				} else if c == 'f' {
					lit = "false"
				}
				if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
					return errJSON(i, "invalid literal")
				}
				v.kind, v.e = jLiteral, i+len(lit)
				i += len(lit)
			default:
				return errJSON(i, "unexpected character")
			}
			if err := visit(path, v); err != nil {
				return err
			}
			state = stAfter
		case stKey:
			if i >= len(d) || d[i] != '"' {
				return errJSON(i, "expected a member name")
			}
			end, esc, err := scanString(d, i+1)
			if err != nil {
				return err
			}
			key := d[i+1 : end]
			if esc {
				key = decodeString(nil, key)
			}
			path[len(path)-1].key = key
			keyS, keyE = i+1, end
			i = skipWS(d, end+1)
			if i >= len(d) || d[i] != ':' {
				return errJSON(i, "expected ':'")
			}
			i = skipWS(d, i+1)
			state = stValue
		case stAfter:
			i = skipWS(d, i)
			if depth == 0 {
				if i != len(d) {
					return errJSON(i, "data after the JSON value")
				}
				return nil
			}
			if i >= len(d) {
				return errJSON(i, "unexpected end")
			}
			top := stackBuf[depth-1]
			switch c := d[i]; {
			case c == ',':
				i = skipWS(d, i+1)
				path[len(path)-1].index++
				if top.open == '{' {
					state = stKey
				} else {
					state = stValue
				}
			case (c == '}' && top.open == '{') || (c == ']' && top.open == '['):
				depth--
				path = path[:len(path)-1]
				i++
				kind := jObject
				if c == ']' {
					kind = jArray
				}
				if err := visit(path, jsonValue{kind: kind, s: top.start, e: i, keyS: -1, keyE: -1}); err != nil {
					return err
				}
			default:
				return errJSON(i, "expected ',' or the end of the container")
			}
		}
	}
}

func errJSON(off int, what string) *InputError {
	return inputErrorf(http.StatusBadRequest, "invalid_json", "the body is not valid JSON: %s at offset %d", what, off)
}

func skipWS(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\n' || d[i] == '\r' || d[i] == '\t') {
		i++
	}
	return i
}

// strPlain marks the bytes that need no attention inside a JSON string.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString returns the offset of the quote that closes the string whose
// content starts at i, and whether the content has escapes.
func scanString(d []byte, i int) (end int, esc bool, err error) {
	for {
		// Eight bytes at a time while none is '"', '\\' or a control byte.
		for i+8 <= len(d) && plain8(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		for i < len(d) && strPlain[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, false, errJSON(i, "unterminated string")
		}
		switch c := d[i]; c {
		case '"':
			return i, esc, nil
		case '\\':
			esc = true
			if i+1 >= len(d) {
				return 0, false, errJSON(i, "unterminated escape")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(d)-i < 6 || !isHex4(d[i+2:i+6]) {
					return 0, false, errJSON(i, "invalid \\u escape")
				}
				i += 6
			default:
				return 0, false, errJSON(i, "invalid escape")
			}
		default:
			return 0, false, errJSON(i, "control character in string")
		}
	}
}

// plain8 reports whether none of 8 bytes needs attention in a JSON
// string: no '"', no '\\', nothing below 0x20.
func plain8(x uint64) bool {
	const (
		ones = 0x0101010101010101
		hi   = 0x8080808080808080
	)
	q, b := x^('"'*ones), x^('\\'*ones)
	zero := func(y uint64) uint64 { return (y - ones) &^ y & hi } // may also flag bytes >= 0x80 next to a zero byte: only a slower path
	return (zero(q) | zero(b) | (x-0x20*ones)&^x&hi) == 0
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if hexVal(c) < 0 {
			return false
		}
	}
	return true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// scanNumber returns the end of the number starting at i.
func scanNumber(d []byte, i int) (int, error) {
	start := i
	if d[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(d) && d[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, errJSON(start, "invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if digits() == 0 {
			return 0, errJSON(start, "invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, errJSON(start, "invalid number")
		}
	}
	return i, nil
}

// escape returns, for the element of validated JSON string content raw at
// i, how many raw bytes it takes and the rune it stands for (size 1 and the
// byte itself for a plain byte).
func escape(raw []byte, i int) (n int, r rune, plain bool) {
	if raw[i] != '\\' {
		return 1, rune(raw[i]), true
	}
	if i+1 >= len(raw) {
		return 1, utf8.RuneError, false // a fragment ending inside an escape
	}
	switch raw[i+1] {
	case 'b':
		return 2, '\b', false
	case 'f':
		return 2, '\f', false
	case 'n':
		return 2, '\n', false
	case 'r':
		return 2, '\r', false
	case 't':
		return 2, '\t', false
	case 'u':
		if len(raw)-i < 6 || !isHex4(raw[i+2:i+6]) {
			return min(2, len(raw)-i), utf8.RuneError, false
		}
		r1 := hex4(raw[i+2:])
		if utf16.IsSurrogate(r1) {
			if len(raw)-i >= 12 && raw[i+6] == '\\' && raw[i+7] == 'u' && isHex4(raw[i+8:i+12]) {
				if r := utf16.DecodeRune(r1, hex4(raw[i+8:])); r != utf8.RuneError {
					return 12, r, false
				}
			}
			return 6, utf8.RuneError, false
		}
		return 6, r1, false
	default: // '"', '\\', '/'
		return 2, rune(raw[i+1]), false
	}
}

func hex4(b []byte) rune {
	return rune(hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3]))
}

// decodeString appends the decoded form of raw JSON string content.
func decodeString(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		n, r, _ := escape(raw, i)
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst
}

// rawOffset maps an offset in the decoded form of raw JSON string content
// to an offset in raw. An offset inside the bytes of one escaped rune maps
// to the escape's start, or with up to its end.
func rawOffset(raw []byte, dec int, up bool) int {
	r, d := 0, 0
	for r < len(raw) && d < dec {
		n, ru, plain := escape(raw, r)
		m := 1
		if !plain {
			m = utf8.RuneLen(ru)
			if m < 0 {
				m = 3
			}
		}
		if d+m > dec {
			if up {
				return r + n
			}
			return r
		}
		r += n
		d += m
	}
	return r
}

// AppendJSONString appends s as a JSON string literal, quotes included.
// Invalid UTF-8 becomes U+FFFD, so the result is always valid JSON.
func AppendJSONString(dst, s []byte) []byte {
	const hexdig = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&0xF])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hexdig[r&0xF])
		} else {
			dst = append(dst, s[i:i+n]...)
		}
		i += n
	}
	return append(dst, '"')
}

// contextKey returns the member name that names a string value: the name
// right before it, or for an array element the name of the nearest
// enclosing member.
func contextKey(path []pathElem) []byte {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i].key != nil {
			return path[i].key
		}
	}
	return nil
}

// ScanJSON scans the decoded value of every string in a JSON document (see
// FormatJSON). Offsets of the findings are byte offsets in body, always
// inside a string's content and on whole escapes.
func ScanJSON(sc Scanner, body []byte) ([]Finding, error) {
	if !utf8.Valid(body) {
		return nil, errNotUTF8()
	}
	var out []Finding
	var scratch []byte
	err := walkJSON(body, func(path []pathElem, v jsonValue) error {
		if v.kind != jString {
			return nil
		}
		var text []byte
		prefix := 0
		key := contextKey(path)
		if len(key) > maxKeyContext {
			key = nil
		}
		if !v.esc && v.keyS >= 0 && len(key) > 0 && len(key) == v.keyE-v.keyS {
			// The member name, the colon and the value are one contiguous,
			// escape-free piece of the body: scan it in place.
			text, prefix = body[v.keyS:v.e], v.s-v.keyS
		} else {
			scratch = scratch[:0]
			if len(key) > 0 {
				scratch = append(append(scratch, key...), `": "`...)
			}
			prefix = len(scratch)
			if v.esc {
				scratch = decodeString(scratch, body[v.s:v.e])
			} else {
				scratch = append(scratch, body[v.s:v.e]...)
			}
			text = scratch
		}
		for _, f := range sc.Scan(text) {
			if f.Start < prefix || f.End > len(text) || f.Start >= f.End {
				continue // in the member name
			}
			s, e := f.Start-prefix, f.End-prefix
			if v.esc {
				raw := body[v.s:v.e]
				s, e = rawOffset(raw, s, false), rawOffset(raw, e, true)
			}
			f.Start, f.End = v.s+s, v.s+e
			out = append(out, f)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortFindings(out)
	return out, nil
}

// redactJSON applies decided findings inside the string values of body.
// Findings that are not inside one string value are ignored: the output is
// valid JSON whatever fs holds.
func redactJSON(p *Policy, body []byte, fs []Finding) ([]byte, error) {
	fs = slices.Clone(fs)
	sortFindings(fs)
	out := make([]byte, 0, len(body)+64)
	last, k := 0, 0
	var local []Finding
	err := walkJSON(body, func(_ []pathElem, v jsonValue) error {
		if v.kind != jString {
			return nil
		}
		for k < len(fs) && fs[k].Start < v.s {
			k++ // before this string and not inside an earlier one
		}
		local = local[:0]
		for ; k < len(fs) && fs[k].Start < v.e; k++ {
			if f := fs[k]; f.End <= v.e && f.Start < f.End {
				f.Start -= v.s
				f.End -= v.s
				local = append(local, f)
			}
		}
		if !rewrites(local) {
			return nil
		}
		out = append(out, body[last:v.s]...)
		out = p.apply(out, body[v.s:v.e], local, decodeString)
		last = v.e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, body[last:]...), nil
}
