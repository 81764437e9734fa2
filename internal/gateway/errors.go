package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// CodeCredentialRevoked is the Error.Code of an exchange that the proxy
// ended because its credential was revoked or expired while it ran.
const CodeCredentialRevoked = "credential_revoked"

// Error is the one error type stages return to end an exchange with a
// specific HTTP status. Message is public and must leak nothing about keys,
// policy internals or upstream details; Err is the internal cause and goes
// to the log and the audit record only.
type Error struct {
	Status  int    // HTTP status
	Type    string // OpenAI-style error type, e.g. "authentication_error"
	Code    string // machine-readable code, e.g. "invalid_api_key"
	Message string // public message
	Err     error  // internal cause, never sent to the client
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.Status, e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Error types, in the shape OpenAI clients already understand.
const (
	TypeInvalidRequest = "invalid_request_error"
	TypeAuthentication = "authentication_error"
	TypePermission     = "permission_error"
	TypeNotFound       = "not_found_error"
	TypeRateLimit      = "rate_limit_error"
	TypeUpstream       = "upstream_error"
	TypeServer         = "server_error"
)

// Errorf builds an *Error with a public message and an optional internal cause.
func Errorf(status int, typ, code string, cause error, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// AsError turns any error into an *Error. Unknown errors become a 500 with
// a generic message: an internal fault never allows and never leaks.
func AsError(err error) *Error {
	var ge *Error
	if errors.As(err, &ge) {
		return ge
	}
	return &Error{Status: http.StatusInternalServerError, Type: TypeServer, Code: "internal_error",
		Message: "internal error; the request was not forwarded", Err: err}
}

// errorBody is the JSON error body: OpenAI-shaped ({"error":{"message","type","code"}})
// plus the request id so an operator can find the audit record.
type errorBody struct {
	Error struct {
		Message   string  `json:"message"`
		Type      string  `json:"type"`
		Code      string  `json:"code"`
		Param     *string `json:"param"`
		RequestID string  `json:"request_id"`
	} `json:"error"`
}

// WriteError writes e as a JSON error response. It must be called only before
// any part of the response was sent.
func WriteError(w http.ResponseWriter, requestID string, e *Error) {
	var b errorBody
	b.Error.Message = e.Message
	b.Error.Type = e.Type
	b.Error.Code = e.Code
	b.Error.RequestID = requestID
	body, _ := json.Marshal(b) // cannot fail: only strings
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(append(body, '\n'))
}
