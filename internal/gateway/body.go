package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"
)

// BodyReader is the stage that reads the request body into Exchange.Body,
// bounded by MaxBytes, and for OpenAI-compatible routes checks that it is a
// UTF-8 JSON object and extracts the model and stream fields. It runs after
// identify, so an unauthenticated caller cannot make warden parse anything.
type BodyReader struct {
	MaxBytes int64
}

// Handle implements Stage.
func (b *BodyReader) Handle(ex *Exchange, next func(*Exchange) error) error {
	r := ex.Request
	if ex.Route == nil {
		return errors.New("gateway: body stage ran before the route match")
	}
	bodyless := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions || r.Method == http.MethodDelete
	if bodyless && ex.Route.API == "openai" {
		if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
			return Errorf(http.StatusBadRequest, TypeInvalidRequest, "unexpected_body", nil,
				"a %s request must not have a body", r.Method)
		}
		return next(ex)
	}
	if r.ContentLength > b.MaxBytes {
		return tooLarge(b.MaxBytes)
	}
	body, err := io.ReadAll(http.MaxBytesReader(ex.Writer, r.Body, b.MaxBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return tooLarge(b.MaxBytes)
		}
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "body_read_failed", err,
			"the request body could not be read")
	}
	ex.Body = body
	if ex.Route.API != "openai" { // native handlers and generic routes check their own media types
		return next(ex)
	}
	if err := checkJSONContentType(r.Header.Values("Content-Type")); err != nil {
		return err
	}
	if !utf8.Valid(body) {
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_utf8", nil,
			"the request body is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_json", nil,
			"the request body must be a JSON object")
	}
	// One pass: json.Unmarshal validates the whole document before decoding.
	var fields struct {
		Model  *json.RawMessage `json:"model"`
		Stream *json.RawMessage `json:"stream"`
	}
	if err := json.Unmarshal(body, &fields); err != nil {
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_json", err,
			"the request body is not valid JSON")
	}
	if fields.Model != nil {
		var m string
		if err := json.Unmarshal(*fields.Model, &m); err != nil || m == "" || len(m) > 256 {
			return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_model", nil,
				"\"model\" must be a non-empty string of at most 256 bytes")
		}
		ex.Model = m
	}
	if fields.Stream != nil {
		if err := json.Unmarshal(*fields.Stream, &ex.Stream); err != nil {
			return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_stream", nil,
				"\"stream\" must be a boolean")
		}
	}
	return next(ex)
}

func tooLarge(limit int64) error {
	return Errorf(http.StatusRequestEntityTooLarge, TypeInvalidRequest, "body_too_large", nil,
		"the request body exceeds %d bytes", limit)
}

// checkJSONContentType accepts exactly one Content-Type of application/json,
// optionally with charset=utf-8.
func checkJSONContentType(values []string) error {
	bad := func() error {
		return Errorf(http.StatusUnsupportedMediaType, TypeInvalidRequest, "unsupported_media_type", nil,
			"Content-Type must be application/json")
	}
	if len(values) == 1 && values[0] == "application/json" {
		return nil // the common case, without parsing
	}
	if len(values) != 1 {
		return bad()
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return bad()
	}
	for k, v := range params {
		if k != "charset" || !(v == "utf-8" || v == "UTF-8" || v == "utf8") {
			return bad()
		}
	}
	return nil
}

var _ Stage = (*BodyReader)(nil)
