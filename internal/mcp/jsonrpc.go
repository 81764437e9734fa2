// Package mcp is warden's MCP gateway: it parses the JSON-RPC 2.0 messages
// of the MCP Streamable HTTP transport, binds sessions to the principal that
// opened them, names each message's action for policy, filters what the
// server lists, pins tool definitions against rug pulls and passes tool
// results through the guards.
//
// Its guarantee: a message reaches the MCP server only when warden parsed
// it as the server will (one JSON object, no duplicate or case-variant keys,
// bounded size and depth), it belongs to a session of the same principal
// and policy allowed it; what the server answers to it reaches the agent
// only after list filtering, pin checks and the guards, and anything warden
// cannot parse is refused, never passed on.
//
// Why warden parses JSON-RPC itself (its own structural scanner, see
// structure.go, and encoding/json for values) rather than with the MCP Go
// SDK: the SDK is an endpoint (client or server) with its own
// session state machine, lenient decoding and goroutines per connection;
// a gateway must instead see each message exactly once, byte for byte as
// the server will see it, refuse what is ambiguous (duplicate keys, keys
// differing only in case, which decoders resolve differently) and forward
// the original bytes. The SDK is used in the end-to-end tests as the real
// client and server on either side.
package mcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"unicode"
	"unicode/utf8"
)

// JSON-RPC 2.0 error codes (JSON-RPC 2.0 §5.1) and warden's own in the
// implementation-defined server-error range -32000..-32099.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	CodeUnauthenticated = -32001 // no or a failed credential (HTTP 401)
	CodeForbidden       = -32003 // refused by policy, a pin or a guard (HTTP 403)
	CodeSessionNotFound = -32004 // unknown or ended session (HTTP 404)
	CodeTooLarge        = -32013 // message larger than allowed (HTTP 413)
	CodeRateLimited     = -32029 // HTTP 429
	CodeUnavailable     = -32050 // warden or the server cannot answer (HTTP 5xx)
)

// MaxDepth bounds the nesting of arrays and objects in a message.
const MaxDepth = 64

// maxMethodBytes and maxNameBytes bound a method and a tool, prompt or
// resource name.
const (
	maxMethodBytes = 128
	maxNameBytes   = 1024
)

// Message is one JSON-RPC 2.0 message, parsed strictly.
type Message struct {
	ID     json.RawMessage            // nil: a notification (or a response without an id)
	Method string                     // "" for a response
	Params map[string]json.RawMessage // nil when absent
	Result json.RawMessage            // responses only
	Error  json.RawMessage            // responses only
}

// IsRequest reports whether m is a request (a method and an id).
func (m *Message) IsRequest() bool { return m.Method != "" && m.ID != nil }

// IsResponse reports whether m is a response (no method).
func (m *Message) IsResponse() bool { return m.Method == "" }

// ParseError is why a message was refused, with its JSON-RPC code. ID is
// the message's id when it could be read (for the error response).
type ParseError struct {
	Code    int
	Message string
	ID      json.RawMessage
}

func (e *ParseError) Error() string { return "mcp: " + e.Message }

func perr(code int, msg string) *ParseError { return &ParseError{Code: code, Message: msg} }

// Parse parses one JSON-RPC 2.0 message. It refuses batches (removed from
// MCP in 2025-06-18 and a way to multiply one request's work), anything that
// is not valid UTF-8 JSON, nesting deeper than MaxDepth, and objects with
// duplicate keys or keys that differ only in case (see structScanner).
// Nothing it returns aliases data.
func Parse(data []byte) (*Message, *ParseError) {
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
	s := newScanner(data)
	defer s.release()
	if err := s.run(); err != nil {
		return nil, err
	}
	// The top-level members, by name; any other is unknown. Each appears at
	// most once (duplicates were refused).
	var jsonrpc, id, method, prm, result, rpcErr json.RawMessage
	unknown := false
	setMembers := func() {
		for i := range s.top {
			mb := &s.top[i]
			raw := json.RawMessage(s.data[mb.vstart:mb.vend:mb.vend])
			switch s.keyString(&mb.key) {
			case "jsonrpc":
				jsonrpc = raw
			case "id":
				id = raw
			case "method":
				method = raw
			case "params":
				prm = raw
			case "result":
				result = raw
			case "error":
				rpcErr = raw
			default:
				unknown = true
			}
		}
	}
	setMembers()
	if result != nil || rpcErr != nil || prm != nil && !isNull(prm) {
		// What the message returns is sliced from one copy of it (the id
		// is copied apart below: it lives as long as the exchange).
		s.data = bytes.Clone(data)
		setMembers()
	}
	m := &Message{}
	// The id first, so that later errors can name it.
	if id != nil {
		if !validID(id) {
			return nil, perr(CodeInvalidRequest, "\"id\" must be a string or an integer")
		}
		m.ID = bytes.Clone(id)
	}
	fail := func(code int, msg string) (*Message, *ParseError) {
		return nil, &ParseError{Code: code, Message: msg, ID: m.ID}
	}
	if unknown {
		return fail(CodeInvalidRequest, "unknown member in the message")
	}
	if v, ok := jsonString(jsonrpc); !ok || v != "2.0" {
		return fail(CodeInvalidRequest, "\"jsonrpc\" must be \"2.0\"")
	}
	if method != nil {
		v, ok := jsonString(method)
		if !ok || v == "" || len(v) > maxMethodBytes {
			return fail(CodeInvalidRequest, "\"method\" must be a non-empty string")
		}
		m.Method = v
		if result != nil {
			return fail(CodeInvalidRequest, "a request must not carry \"result\"")
		}
		if rpcErr != nil {
			return fail(CodeInvalidRequest, "a request must not carry \"error\"")
		}
		if prm != nil && !isNull(prm) {
			if prm[0] != '{' {
				return fail(CodeInvalidParams, "\"params\" must be an object")
			}
			m.Params = make(map[string]json.RawMessage, len(s.params))
			for i := range s.params {
				mb := &s.params[i]
				m.Params[s.keyString(&mb.key)] = s.data[mb.vstart:mb.vend:mb.vend]
			}
		}
		return m, nil
	}
	// A response.
	if prm != nil {
		return fail(CodeInvalidRequest, "a response must not carry \"params\"")
	}
	if (result != nil) == (rpcErr != nil) {
		return fail(CodeInvalidRequest, "a message needs a \"method\", or exactly one of \"result\" and \"error\"")
	}
	if id == nil {
		return fail(CodeInvalidRequest, "a response must carry an \"id\"")
	}
	if rpcErr != nil && rpcErr[0] != '{' {
		return fail(CodeInvalidRequest, "\"error\" must be an object")
	}
	m.Result, m.Error = result, rpcErr
	return m, nil
}

// jsonString decodes raw, one scanned JSON value, when it is a string.
// Strings without escapes (almost all) are sliced, not decoded; common
// method names are not even copied.
func jsonString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 {
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", false
		}
		return v, true
	}
	if v, ok := knownStrings[string(body)]; ok {
		return v, true
	}
	return string(body), true
}

// knownStrings interns the method names warden knows and the version, so
// parsing them allocates nothing.
var knownStrings = func() map[string]string {
	m := map[string]string{"2.0": "2.0"}
	for k := range methods {
		m[k] = k
	}
	for _, k := range []string{"notifications/message", "notifications/resources/updated",
		"notifications/resources/list_changed", "notifications/tools/list_changed",
		"notifications/prompts/list_changed", "sampling/createMessage", "elicitation/create", "roots/list"} {
		m[k] = k
	}
	return m
}()

// validID reports whether raw, one scanned JSON value, is a JSON string of
// at most 256 bytes (decoded) or an integer that fits an int64 in at most
// 32 bytes (MCP ids are strings or integers and never null in a request).
func validID(raw []byte) bool {
	switch c := firstByte(raw); {
	case c == '"':
		if bytes.IndexByte(raw, '\\') < 0 {
			return len(raw)-2 <= 256
		}
		var s string
		return json.Unmarshal(raw, &s) == nil && len(s) <= 256
	case c == '-' || (c >= '0' && c <= '9'):
		if len(raw) > 32 {
			return false
		}
		// A scanned number: -?(0|[1-9][0-9]*) then a fraction or an
		// exponent, which make it no integer.
		neg := raw[0] == '-'
		digits := raw
		if neg {
			digits = raw[1:]
		}
		var n uint64
		for _, d := range digits {
			if d < '0' || d > '9' {
				return false
			}
			if n > (1<<63)/10 {
				return false
			}
			n = n*10 + uint64(d-'0')
		}
		if neg {
			return n <= 1<<63
		}
		return n <= 1<<63-1
	}
	return false
}

func firstByte(raw []byte) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// foldKey maps s to a canonical form under Unicode simple case folding:
// two keys fold to the same string when encoding/json's case-insensitive
// field matching would take one for the other.
func foldKey(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		b := []byte(s)
		for i, c := range b {
			if c >= 'a' && c <= 'z' { // the smallest rune of its fold orbit, as below
				b[i] = c - ('a' - 'A')
			}
		}
		return string(b)
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			if f < m {
				m = f
			}
		}
		out = append(out, m)
	}
	return string(out)
}

// digest returns the hex SHA-256 of b.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// errorResponse is a JSON-RPC error response warden writes itself.
type errorResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   errorObject     `json:"error"`
}

type errorObject struct {
	Code    int        `json:"code"`
	Message string     `json:"message"`
	Data    *errorData `json:"data,omitempty"`
}

// errorData says which warden refusal this was, for operators: the audit
// record of the request id has the reasons.
type errorData struct {
	Type      string `json:"type,omitempty"`
	Code      string `json:"code,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// ErrorResponse returns a JSON-RPC error response for id (null when nil).
func ErrorResponse(id json.RawMessage, code int, message, typ, wardenCode, requestID string) []byte {
	if id == nil {
		id = json.RawMessage("null")
	}
	r := errorResponse{JSONRPC: "2.0", ID: id, Error: errorObject{Code: code, Message: message}}
	if typ != "" || wardenCode != "" || requestID != "" {
		r.Error.Data = &errorData{Type: typ, Code: wardenCode, RequestID: requestID}
	}
	b, err := json.Marshal(r)
	if err != nil { // id was validated raw JSON; cannot happen
		return []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}`)
	}
	return b
}

// errTooLarge is returned by readBounded when the body exceeds its limit.
var errTooLarge = errors.New("mcp: message too large")

// readBounded reads r to its end, at most limit bytes.
func readBounded(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}
