// Package jsonstr decodes the contents of JSON strings that a scanner has
// already validated, exactly as encoding/json decodes them, into a caller's
// buffer. The request scanners of internal/limit and the result walk of
// internal/mcp read JSON in one pass without building values; they need a
// string's decoded text only sometimes, and encoding/json offers no way to
// unquote one string in place (strconv.Unquote follows Go's syntax, not
// JSON's rules for surrogates), so this is written by hand.
package jsonstr

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// Hex4 decodes the four hex digits b starts with, or returns -1.
func Hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// AppendUnescaped appends the decoded text of b, the contents (without the
// quotes) of a JSON string a scanner validated, as encoding/json decodes
// it: escapes resolved, a \u escape of a lone or mismatched surrogate and
// every byte of invalid UTF-8 replaced by U+FFFD. On input that is not a
// valid string's contents it stops early; it never panics.
func AppendUnescaped(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		j := bytes.IndexByte(b[i:], '\\')
		if j < 0 {
			return appendText(dst, b[i:])
		}
		dst = appendText(dst, b[i:i+j])
		i += j + 1 // past the backslash
		if i >= len(b) {
			return dst
		}
		c := b[i]
		i++
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := Hex4(b[i:])
			if r < 0 {
				return dst
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(b)-i >= 6 && b[i] == '\\' && b[i+1] == 'u' {
					r2 = Hex4(b[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					dst = utf8.AppendRune(dst, d)
					i += 6
					continue
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst
}

// appendText appends a run without escapes, invalid UTF-8 replaced.
func appendText(dst, run []byte) []byte {
	if utf8.Valid(run) {
		return append(dst, run...)
	}
	for i := 0; i < len(run); {
		r, n := utf8.DecodeRune(run[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, run[i:i+n]...)
		}
		i += n
	}
	return dst
}
