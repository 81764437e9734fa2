package guard

import (
	"fmt"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"
)

// InputError reports a body that cannot be inspected. A gateway stage turns
// it into a client error: Status (400, 413 or 415), Code and the public
// Message; the body is not forwarded.
type InputError struct {
	Status  int
	Code    string // invalid_utf8, invalid_json, json_too_deep, unsupported_media_type, body_too_large
	Message string
}

func (e *InputError) Error() string { return "guard: " + e.Code + ": " + e.Message }

func inputErrorf(status int, code, format string, args ...any) *InputError {
	return &InputError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Format is how a body is inspected.
type Format uint8

// Formats.
const (
	// FormatText scans the body as one text. It must be valid UTF-8.
	FormatText Format = iota + 1
	// FormatJSON scans the decoded value of every string in a JSON
	// document (not member names), so escapes such as \u0040 cannot hide a
	// value, and masks inside those strings only: the document stays valid
	// JSON with the same structure. Each value is scanned together with its
	// member name, so {"api_key": "…"} is read as the keyword it is.
	FormatJSON
)

// FormatOf chooses the format for a Content-Type: JSON for application/json
// and +json types, text for text/*, form data and a missing type. Binary
// types (images, audio, octet streams, multipart) cannot be inspected and
// give a 415 InputError.
func FormatOf(contentType string) (Format, error) {
	if strings.TrimSpace(contentType) == "" {
		return FormatText, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return 0, inputErrorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "the Content-Type could not be parsed")
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON, nil
	case strings.HasPrefix(mt, "text/"), mt == "application/x-www-form-urlencoded",
		mt == "application/x-ndjson", mt == "application/jsonl", mt == "application/xml", strings.HasSuffix(mt, "+xml"):
		return FormatText, nil
	}
	return 0, inputErrorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "a %s body cannot be inspected", mt)
}

// ScanBody scans a whole body in format f. Offsets of the findings are byte
// offsets in body. Bad input (not UTF-8, not JSON, nested deeper than
// MaxJSONDepth) gives an *InputError and no findings.
func ScanBody(sc Scanner, f Format, body []byte) ([]Finding, error) {
	switch f {
	case FormatJSON:
		return ScanJSON(sc, body)
	case FormatText:
		if !utf8.Valid(body) {
			return nil, errNotUTF8()
		}
		return sc.Scan(body), nil
	}
	return nil, fmt.Errorf("guard: unknown format %d", f)
}

// RedactBody decides the action of each finding (setting its Action) and
// returns body with masks and hashes applied. A block gives a
// *BlockedError and no body. fs are the findings ScanBody returned for the
// same body and format; when nothing is to be rewritten body itself is
// returned.
func RedactBody(p *Policy, f Format, body []byte, fs []Finding) ([]byte, error) {
	if err := p.Decide(fs); err != nil {
		return nil, err
	}
	if !rewrites(fs) {
		return body, nil
	}
	switch f {
	case FormatJSON:
		return redactJSON(p, body, fs)
	case FormatText:
		return p.Apply(make([]byte, 0, len(body)+64), body, fs), nil
	}
	return nil, fmt.Errorf("guard: unknown format %d", f)
}

func rewrites(fs []Finding) bool {
	for _, f := range fs {
		if f.Action == ActionMask || f.Action == ActionHash {
			return true
		}
	}
	return false
}

func errNotUTF8() *InputError {
	return inputErrorf(http.StatusBadRequest, "invalid_utf8", "the body is not valid UTF-8")
}
