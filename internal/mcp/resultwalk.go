package mcp

import (
	"bytes"
	"encoding/json"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// resultHasFindings reports whether the scanner or the injection detector
// finds anything in a result's strings: it passes them exactly the texts
// scanResult's tree walk does (every non-empty string value, member name
// and number; keyText members as content),
// decoded as encoding/json decodes them, without building the tree. Most
// results have no finding, and then need nothing else; a result with one
// is walked again by scanResult, which records and carries out the
// findings.
func (g *Gateway) resultHasFindings(result map[string]json.RawMessage) bool {
	w := stringWalker{fn: func(text []byte, content bool) bool { return len(g.scanText(text, content)) == 0 }}
	for k, raw := range result {
		if !w.fn([]byte(k), false) {
			return true
		}
		w.data, w.pos = raw, 0
		if !w.value(keyKindOf([]byte(k))) {
			return true
		}
	}
	return false
}

// How a string value is scanned, by the key of its member. Every string is
// scanned, discriminators ("type", "mimeType") and base64 payloads ("blob")
// included: a member the guards skipped would be a channel a server could
// hide a secret in (found by FuzzSSE).
const (
	keyOther = iota // scanned by the scanner (DLP)
	keyText         // "text", "systemPrompt", "message": scanned as content (the injection detector too)
)

func keyKindOf(key []byte) int {
	switch string(key) {
	case "text", "systemPrompt", "message":
		// content texts: a result's text parts; a sampling request's
		// system prompt; an elicitation's or a progress note's message
		return keyText
	}
	return keyOther
}

// stringWalker calls fn for every string value of data, one JSON value
// the structural scanner validated, with the kind of the key of the
// nearest member around it (array elements take their array's). fn's text
// is valid only during the call; fn returns false to stop the walk.
type stringWalker struct {
	data    []byte
	pos     int
	scratch []byte
	fn      func(text []byte, content bool) bool
}

func (w *stringWalker) skipSpace() {
	for w.pos < len(w.data) {
		switch w.data[w.pos] {
		case ' ', '\t', '\r', '\n':
			w.pos++
		default:
			return
		}
	}
}

// str returns the content of the string at w.pos and whether it has
// escapes, and moves past it.
func (w *stringWalker) str() (body []byte, escaped bool) {
	start := w.pos + 1
	i := start
	for {
		q := bytes.IndexByte(w.data[i:], '"')
		if q < 0 { // cannot happen: validated
			w.pos = len(w.data)
			return w.data[start:], escaped
		}
		b := bytes.IndexByte(w.data[i:i+q], '\\')
		if b < 0 {
			i += q
			w.pos = i + 1
			return w.data[start:i:i], escaped
		}
		escaped = true
		i += b + 2 // a backslash and the byte it escapes (\uXXXX's hex digits are no quote)
	}
}

func (w *stringWalker) value(kind int) bool {
	w.skipSpace()
	if w.pos >= len(w.data) {
		return true
	}
	switch w.data[w.pos] {
	case '"':
		body, escaped := w.str()
		if len(body) == 0 {
			return true
		}
		if escaped {
			w.scratch = appendUnquoted(w.scratch[:0], body)
			body = w.scratch
		}
		return w.fn(body, kind == keyText)
	case '{':
		w.pos++
		for {
			w.skipSpace()
			if w.pos >= len(w.data) || w.data[w.pos] == '}' {
				w.pos++
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				continue
			}
			key, escaped := w.str()
			if escaped {
				w.scratch = appendUnquoted(w.scratch[:0], key)
				key = w.scratch
			}
			k := keyKindOf(key)
			if len(key) > 0 && !w.fn(key, false) {
				return false
			}
			w.skipSpace()
			w.pos++ // the colon
			if !w.value(k) {
				return false
			}
		}
	case '[':
		w.pos++
		for {
			w.skipSpace()
			if w.pos >= len(w.data) || w.data[w.pos] == ']' {
				w.pos++
				return true
			}
			if w.data[w.pos] == ',' {
				w.pos++
				continue
			}
			if !w.value(kind) {
				return false
			}
		}
	default: // a number or a literal: up to the next delimiter
		start := w.pos
	literal:
		for w.pos < len(w.data) {
			switch w.data[w.pos] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				break literal
			}
			w.pos++
		}
		if c := w.data[start]; c == '-' || c >= '0' && c <= '9' { // a number: its digits are scanned
			return w.fn(w.data[start:w.pos], false)
		}
		return true
	}
}

// appendUnquoted appends the decoded form of body, the content of a
// validated JSON string, as encoding/json decodes it: a \u escape of a lone
// or mismatched surrogate becomes U+FFFD.
func appendUnquoted(dst, body []byte) []byte {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			return append(dst, body[i:]...)
		}
		dst = append(dst, body[i:i+j]...)
		i += j + 1 // past the backslash
		if i >= len(body) {
			return dst // cannot happen: validated
		}
		c := body[i]
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
			r := hex4(body[i:])
			if r < 0 {
				return dst // cannot happen: validated
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(body)-i >= 6 && body[i] == '\\' && body[i+1] == 'u' {
					r2 = hex4(body[i+2:])
				}
				if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
					dst = utf8.AppendRune(dst, d)
					i += 6
					continue
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
	return dst
}

// hex4 decodes the four hex digits b starts with, or returns -1.
func hex4(b []byte) rune {
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
