package mcp

import (
	"bytes"
	"encoding/json"

	"github.com/warden-ai/warden/internal/jsonstr"
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
		w.scratch = append(w.scratch[:0], k...) // no allocation per key
		if !w.fn(w.scratch, false) {
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
			w.scratch = jsonstr.AppendUnescaped(w.scratch[:0], body)
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
				w.scratch = jsonstr.AppendUnescaped(w.scratch[:0], key)
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
