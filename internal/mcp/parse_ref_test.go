package mcp

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// This file keeps the Decoder.Token-based Parse that structure.go
// replaced, unchanged but renamed, as the reference the differential fuzz
// tests (FuzzParseDifferential, FuzzStructure) hold the new scanner to:
// same acceptance, same error code and message, same message fields.

// parseRef is the former Parse. It refuses batches (removed from
// MCP in 2025-06-18 and a way to multiply one request's work), anything that
// is not valid UTF-8 JSON, nesting deeper than MaxDepth, and objects with
// duplicate keys or keys that differ only in case (see checkStructure).
func parseRef(data []byte) (*Message, *ParseError) {
	if !utf8.Valid(data) {
		return nil, perr(CodeParseError, "the message is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, perr(CodeInvalidRequest, "empty message")
	}
	if trimmed[0] == '[' {
		return nil, perr(CodeInvalidRequest, "JSON-RPC batches are not supported; send one message per request")
	}
	if trimmed[0] != '{' {
		return nil, perr(CodeInvalidRequest, "the message must be a JSON object")
	}
	if err := checkStructureRef(data); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, perr(CodeParseError, "the message is not valid JSON")
	}
	m := &Message{}
	// The id first, so that later errors can name it.
	if raw, ok := top["id"]; ok {
		if !validIDRef(raw) {
			return nil, perr(CodeInvalidRequest, "\"id\" must be a string or an integer")
		}
		m.ID = raw
	}
	fail := func(code int, msg string) (*Message, *ParseError) {
		return nil, &ParseError{Code: code, Message: msg, ID: m.ID}
	}
	for k := range top {
		switch k {
		case "jsonrpc", "id", "method", "params", "result", "error":
		default:
			return fail(CodeInvalidRequest, "unknown member in the message")
		}
	}
	var version string
	if raw, ok := top["jsonrpc"]; !ok || json.Unmarshal(raw, &version) != nil || version != "2.0" {
		return fail(CodeInvalidRequest, "\"jsonrpc\" must be \"2.0\"")
	}
	if raw, ok := top["method"]; ok {
		if json.Unmarshal(raw, &m.Method) != nil || m.Method == "" || len(m.Method) > maxMethodBytes {
			return fail(CodeInvalidRequest, "\"method\" must be a non-empty string")
		}
		if _, ok := top["result"]; ok {
			return fail(CodeInvalidRequest, "a request must not carry \"result\"")
		}
		if _, ok := top["error"]; ok {
			return fail(CodeInvalidRequest, "a request must not carry \"error\"")
		}
		if raw, ok := top["params"]; ok && !isNull(raw) {
			if firstByte(raw) != '{' {
				return fail(CodeInvalidParams, "\"params\" must be an object")
			}
			if err := json.Unmarshal(raw, &m.Params); err != nil {
				return fail(CodeInvalidParams, "\"params\" must be an object")
			}
		}
		return m, nil
	}
	// A response.
	if _, ok := top["params"]; ok {
		return fail(CodeInvalidRequest, "a response must not carry \"params\"")
	}
	res, hasRes := top["result"]
	e, hasErr := top["error"]
	if hasRes == hasErr {
		return fail(CodeInvalidRequest, "a message needs a \"method\", or exactly one of \"result\" and \"error\"")
	}
	if _, ok := top["id"]; !ok {
		return fail(CodeInvalidRequest, "a response must carry an \"id\"")
	}
	if hasErr && firstByte(e) != '{' {
		return fail(CodeInvalidRequest, "\"error\" must be an object")
	}
	m.Result, m.Error = res, e
	return m, nil
}

// validIDRef reports whether raw is a JSON string or an integer (MCP ids are
// strings or integers and never null in a request).
func validIDRef(raw json.RawMessage) bool {
	switch c := firstByte(raw); {
	case c == '"':
		var s string
		return json.Unmarshal(raw, &s) == nil && len(s) <= 256
	case c == '-' || (c >= '0' && c <= '9'):
		var n json.Number
		if json.Unmarshal(raw, &n) != nil || len(raw) > 32 {
			return false
		}
		_, err := n.Int64()
		return err == nil
	}
	return false
}

// checkStructureRef validates data as exactly one JSON value, nested at most
// MaxDepth deep, whose objects have no two keys equal under Unicode simple
// case folding. Decoders differ on such keys (encoding/json takes the last
// and matches struct fields case-insensitively, others take the first or
// match exactly), so a message carrying them could mean one thing to
// policy and another to the server: it is refused.
func checkStructureRef(data []byte) *ParseError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		object bool
		keys   map[string]struct{}
		key    bool // an object's next token is a key
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return perr(CodeParseError, "the message is not valid JSON")
			}
			return nil
		}
		if err != nil {
			return perr(CodeParseError, "the message is not valid JSON")
		}
		top := len(stack) - 1
		if top >= 0 && stack[top].object && stack[top].key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:top]
				if len(stack) == 0 {
					return atEOFRef(dec)
				}
				if stack[len(stack)-1].object {
					stack[len(stack)-1].key = true
				}
				continue
			}
			k, _ := tok.(string)
			f := foldKey(k)
			if stack[top].keys == nil {
				stack[top].keys = map[string]struct{}{}
			}
			if _, dup := stack[top].keys[f]; dup {
				return perr(CodeInvalidRequest, "an object has duplicate keys (or keys that differ only in case)")
			}
			stack[top].keys[f] = struct{}{}
			stack[top].key = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{', '[':
			if len(stack) >= MaxDepth {
				return perr(CodeInvalidRequest, "the message is nested too deeply")
			}
			stack = append(stack, frame{object: d == '{', key: d == '{'})
			continue
		case '}', ']':
			stack = stack[:top]
		}
		// A value ended: an enclosing object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].key = true
		}
		if len(stack) == 0 {
			return atEOFRef(dec)
		}
	}
}

// atEOFRef checks that nothing but white space follows the value dec read.
func atEOFRef(dec *json.Decoder) *ParseError {
	if _, err := dec.Token(); err != io.EOF {
		return perr(CodeParseError, "trailing data after the message")
	}
	return nil
}
