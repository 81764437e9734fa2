package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzBodyReader feeds arbitrary bodies and content types through the body
// stage: it must never panic, and it must call next only for a UTF-8 JSON
// object whose model (if any) is a string and stream (if any) a boolean.
func FuzzBodyReader(f *testing.F) {
	for _, s := range []string{`{"model":"m","stream":true}`, `{}`, `[]`, `null`, "{\"a\":\"\xff\"}", `{"model":1}`, `{"stream":"x"}`, ``} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{}`), "application/json; charset=latin1")
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		ex := &Exchange{
			Request: httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(body)),
			Writer:  NewResponseWriter(httptest.NewRecorder()),
			Route:   &Route{Name: "r", API: "openai"},
		}
		ex.Request.Header.Set("Content-Type", ctype)
		called := false
		err := (&BodyReader{MaxBytes: 1 << 16}).Handle(ex, func(*Exchange) error { called = true; return nil })
		if called && err != nil {
			t.Fatalf("next called but error %v", err)
		}
		if err != nil {
			if ge := AsError(err); ge.Status < 400 || ge.Status > 499 {
				t.Fatalf("bad input gave status %d", ge.Status)
			}
		}
	})
}

// FuzzRouter checks that arbitrary paths and methods never panic and that a
// routed request always names an action.
func FuzzRouter(f *testing.F) {
	for _, p := range []string{"/v1/chat/completions", "/v1/models/x", "/v1/models/..", "/svc/a/b", "//", "/v1/%2e%2e/x", "/"} {
		f.Add(p, "GET")
	}
	rt, err := NewRouter([]RouteSpec{
		{Name: "a", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: "http://x"},
		{Name: "b", Prefix: "/svc/", API: "http", Segment: "s", Upstream: "http://x"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, method string) {
		req, err := http.NewRequest(http.MethodGet, "http://h/", nil)
		if err != nil {
			t.Skip()
		}
		req.URL.Path = path
		req.Method = method
		ex := &Exchange{Request: req, Writer: NewResponseWriter(httptest.NewRecorder())}
		_ = rt.Handle(ex, func(ex *Exchange) error {
			if ex.Action == "" || ex.Route == nil {
				t.Fatalf("routed without action: %q %q", method, path)
			}
			return nil
		})
	})
}
