package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// allowAll is a test stage standing in for identity+policy: it sets a proven
// principal and an allow decision, so tests of the proxy exercise only the proxy.
var allowAll = StageFunc(func(ex *Exchange, next func(*Exchange) error) error {
	ex.Principal = &Principal{Kind: KindService, ID: "svc-test", AuthMethod: "api_key"}
	ex.Decision = &Decision{Allow: true}
	return next(ex)
})

func newTestChain(t *testing.T, upstream string, extra ...UpstreamSpec) *Handler {
	t.Helper()
	rt, err := NewRouter([]RouteSpec{
		{Name: "inference", Prefix: "/v1/", API: "openai", Segment: "inference", Upstream: upstream},
		{Name: "generic", Prefix: "/svc/", API: "http", Segment: "deployment", Upstream: upstream},
		{Name: "stripped", Prefix: "/team/v1/", API: "openai", Segment: "inference", Upstream: upstream, StripPrefix: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	specs := append([]UpstreamSpec{
		{Route: "inference", URL: upstream, CredentialHeader: "Authorization", CredentialValue: "Bearer upstream-secret",
			Timeout: 2 * time.Second, DialTimeout: time.Second},
		{Route: "generic", URL: upstream, Timeout: 2 * time.Second, DialTimeout: time.Second},
		{Route: "stripped", URL: upstream + "/v1", StripPrefix: "/team/v1/", Timeout: 2 * time.Second, DialTimeout: time.Second},
	}, extra...)
	px, err := NewProxy(specs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return NewHandler([]Stage{rt, allowAll, &BodyReader{MaxBytes: 1024}, px}, HandlerOptions{})
}

type seen struct {
	method, path, query string
	header              http.Header
	body                string
}

func echoUpstream(t *testing.T, last *atomic.Pointer[seen]) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last.Store(&seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=upstream")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func decodeError(t *testing.T, body string) (typ, code, reqID string) {
	t.Helper()
	var e struct {
		Error struct {
			Message, Type, Code string
			RequestID           string `json:"request_id"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, body)
	}
	if e.Error.Message == "" {
		t.Fatalf("error body has no message: %q", body)
	}
	return e.Error.Type, e.Error.Code, e.Error.RequestID
}

func TestRequestValidation(t *testing.T) {
	var last atomic.Pointer[seen]
	up := echoUpstream(t, &last)
	h := newTestChain(t, up.URL)
	const chat = `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"chat ok", "POST", "/v1/chat/completions", "application/json", chat, 200, ""},
		{"charset ok", "POST", "/v1/chat/completions", "application/json; charset=utf-8", chat, 200, ""},
		{"models list", "GET", "/v1/models", "", "", 200, ""},
		{"model get", "GET", "/v1/models/gpt-4o-mini", "", "", 200, ""},
		{"embeddings", "POST", "/v1/embeddings", "application/json", `{"model":"e","input":"x"}`, 200, ""},
		{"responses", "POST", "/v1/responses", "application/json", `{"model":"m","input":"x"}`, 200, ""},
		{"completions", "POST", "/v1/completions", "application/json", `{"model":"m","prompt":"x"}`, 200, ""},
		{"unknown route", "GET", "/nope", "", "", 404, "unknown_route"},
		{"unknown endpoint", "POST", "/v1/files", "application/json", `{}`, 404, "unknown_endpoint"},
		{"model id traversal", "GET", "/v1/models/..", "", "", 400, "invalid_path"},
		{"dot segment", "POST", "/v1/x/../chat/completions", "application/json", chat, 400, "invalid_path"},
		{"double slash", "POST", "/v1//chat/completions", "application/json", chat, 400, "invalid_path"},
		{"wrong method", "GET", "/v1/chat/completions", "", "", 405, "method_not_allowed"},
		{"unknown method", "BREW", "/v1/chat/completions", "", "", 405, "method_not_allowed"},
		{"wrong content type", "POST", "/v1/chat/completions", "text/plain", chat, 415, "unsupported_media_type"},
		{"no content type", "POST", "/v1/chat/completions", "", chat, 415, "unsupported_media_type"},
		{"malformed json", "POST", "/v1/chat/completions", "application/json", `{"model":`, 400, "invalid_json"},
		{"json array", "POST", "/v1/chat/completions", "application/json", `[1,2]`, 400, "invalid_json"},
		{"json null", "POST", "/v1/chat/completions", "application/json", `null`, 400, "invalid_json"},
		{"trailing garbage", "POST", "/v1/chat/completions", "application/json", `{} x`, 400, "invalid_json"},
		{"invalid utf8", "POST", "/v1/chat/completions", "application/json", "{\"model\":\"\xff\xfe\"}", 400, "invalid_utf8"},
		{"model not string", "POST", "/v1/chat/completions", "application/json", `{"model":42}`, 400, "invalid_model"},
		{"stream not bool", "POST", "/v1/chat/completions", "application/json", `{"model":"m","stream":"yes"}`, 400, "invalid_stream"},
		{"oversized", "POST", "/v1/chat/completions", "application/json", `{"model":"` + strings.Repeat("a", 2000) + `"}`, 413, "body_too_large"},
		{"body on GET", "GET", "/v1/models", "application/json", `{}`, 400, "unexpected_body"},
		{"generic any body", "PUT", "/svc/deploy", "application/octet-stream", "\x00\x01", 200, ""},
		{"generic bad method", "BREW", "/svc/deploy", "", "", 405, "method_not_allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req := httptest.NewRequest(tc.method, tc.path, body)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			id := rec.Header().Get(RequestIDHeader)
			if len(id) != 32 {
				t.Fatalf("request id header %q", id)
			}
			if tc.code != "" {
				_, code, rid := decodeError(t, rec.Body.String())
				if code != tc.code {
					t.Fatalf("code %q, want %q", code, tc.code)
				}
				if rid != id {
					t.Fatalf("body request id %q != header %q", rid, id)
				}
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Fatalf("error content type %q", ct)
				}
			}
		})
	}
}

func TestProxyRewritesCredentialsAndPath(t *testing.T) {
	var last atomic.Pointer[seen]
	up := echoUpstream(t, &last)
	h := newTestChain(t, up.URL)

	req := httptest.NewRequest("POST", "/v1/chat/completions?x=1", strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer client-secret")
	req.Header.Set("X-Api-Key", "client-secret-2")
	req.Header.Set("Cookie", "a=b")
	req.Header.Set("Connection", "keep-alive, X-Hop")
	req.Header.Set("X-Hop", "1")
	req.Header.Set("X-Request-Id", "client-chosen")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	s := last.Load()
	if s.path != "/v1/chat/completions" || s.query != "x=1" {
		t.Fatalf("upstream path %q query %q", s.path, s.query)
	}
	if got := s.header.Get("Authorization"); got != "Bearer upstream-secret" {
		t.Fatalf("upstream Authorization %q", got)
	}
	for _, hname := range []string{"X-Api-Key", "Cookie", "X-Hop", "Accept-Encoding"} {
		if v := s.header.Get(hname); v != "" {
			t.Fatalf("%s leaked upstream: %q", hname, v)
		}
	}
	if got := s.header.Get("X-Request-Id"); got != rec.Header().Get(RequestIDHeader) || got == "client-chosen" {
		t.Fatalf("upstream request id %q", got)
	}
	if s.body != `{"model":"m"}` {
		t.Fatalf("upstream body %q", s.body)
	}
	if rec.Header().Get("Set-Cookie") != "" {
		t.Fatal("upstream Set-Cookie reached the client")
	}

	// Strip prefix: /team/v1/models -> upstream /v1 + /models.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/team/v1/models", nil))
	if rec.Code != 200 || last.Load().path != "/v1/models" {
		t.Fatalf("strip prefix: status %d path %q", rec.Code, last.Load().path)
	}
	// A route without a credential sends none, and the client's is still stripped.
	req = httptest.NewRequest("GET", "/svc/x", nil)
	req.Header.Set("Authorization", "Bearer client-secret")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || last.Load().header.Get("Authorization") != "" {
		t.Fatalf("generic route: status %d auth %q", rec.Code, last.Load().header.Get("Authorization"))
	}
}

func TestUpstreamFailures(t *testing.T) {
	// A port with nothing listening: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + ln.Addr().String()
	ln.Close()

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()

	for _, tc := range []struct {
		name, url string
		timeout   time.Duration
		status    int
		code      string
	}{
		{"refused", deadURL, time.Second, 502, "upstream_unavailable"},
		{"timeout", slow.URL, 100 * time.Millisecond, 504, "upstream_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, _ := NewRouter([]RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: tc.url}})
			px, err := NewProxy([]UpstreamSpec{{Route: "r", URL: tc.url, Timeout: tc.timeout, DialTimeout: time.Second}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := NewHandler([]Stage{rt, allowAll, &BodyReader{MaxBytes: 1024}, px}, HandlerOptions{})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			typ, code, _ := decodeError(t, rec.Body.String())
			if code != tc.code || typ != TypeUpstream {
				t.Fatalf("type %q code %q", typ, code)
			}
			if strings.Contains(rec.Body.String(), "127.0.0.1") {
				t.Fatalf("error leaks upstream address: %s", rec.Body)
			}
		})
	}
}

func TestProxyRefusesWithoutDecision(t *testing.T) {
	var last atomic.Pointer[seen]
	up := echoUpstream(t, &last)
	rt, _ := NewRouter([]RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: up.URL}})
	px, _ := NewProxy([]UpstreamSpec{{Route: "r", URL: up.URL, Timeout: time.Second, DialTimeout: time.Second}}, nil)
	for name, st := range map[string]Stage{
		"no principal": StageFunc(func(ex *Exchange, next func(*Exchange) error) error { return next(ex) }),
		"deny decision": StageFunc(func(ex *Exchange, next func(*Exchange) error) error {
			ex.Principal = &Principal{ID: "x"}
			ex.Decision = &Decision{Allow: false}
			return next(ex)
		}),
	} {
		t.Run(name, func(t *testing.T) {
			h := NewHandler([]Stage{rt, st, px}, HandlerOptions{})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models", nil))
			if rec.Code != 500 || last.Load() != nil {
				t.Fatalf("status %d, upstream reached: %v", rec.Code, last.Load() != nil)
			}
		})
	}
}

func TestChainErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stage  Stage
		status int
		code   string
	}{
		{"plain error fails closed", StageFunc(func(*Exchange, func(*Exchange) error) error { return errors.New("db down: secret=s3cr3t-zz") }), 500, "internal_error"},
		{"typed error", StageFunc(func(*Exchange, func(*Exchange) error) error {
			return Errorf(401, TypeAuthentication, "invalid_api_key", errors.New("key s3cr3t-zz revoked"), "invalid API key")
		}), 401, "invalid_api_key"},
		{"end of chain", StageFunc(func(ex *Exchange, next func(*Exchange) error) error { return next(ex) }), 500, "internal_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := NewHandler([]Stage{tc.stage}, HandlerOptions{})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
			if rec.Code != tc.status {
				t.Fatalf("status %d", rec.Code)
			}
			if _, code, _ := decodeError(t, rec.Body.String()); code != tc.code {
				t.Fatalf("code %q", code)
			}
			if strings.Contains(rec.Body.String(), "s3cr3t-zz") {
				t.Fatalf("internal cause leaked: %s", rec.Body)
			}
		})
	}
}

// TestSSEIsForwardedEventByEvent checks that each upstream event reaches the
// client before the upstream sends the next one: no buffering.
func TestSSEIsForwardedEventByEvent(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		_, _ = io.WriteString(w, "data: {\"n\":1}\n\n")
		_ = rc.Flush()
		<-release // hold the stream open until the client has seen event 1
		_, _ = io.WriteString(w, "data: {\"n\":2}\n\ndata: [DONE]\n\n")
		_ = rc.Flush()
	}))
	defer up.Close()
	h := newTestChain(t, up.URL)
	gw := httptest.NewServer(h)
	defer gw.Close()

	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(res.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "data: {\"n\":1}\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(3 * time.Second):
		close(release)
		t.Fatal("first event was buffered: not received before the upstream continued")
	}
	close(release)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: [DONE]") {
		t.Fatalf("rest of stream %q", rest)
	}
}
