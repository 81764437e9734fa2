package gateway

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstreamModes builds the same routes once over a plain-http upstream (the
// synchronous client) and once over https (ReverseProxy + Transport), so
// tests can check the two forward identically.
func upstreamModes(t *testing.T, handler http.Handler) map[string]struct {
	h  *Handler
	px *Proxy
} {
	t.Helper()
	out := map[string]struct {
		h  *Handler
		px *Proxy
	}{}
	for _, mode := range []string{"http", "https"} {
		var srv *httptest.Server
		var tlsConf *tls.Config
		if mode == "http" {
			srv = httptest.NewServer(handler)
		} else {
			srv = httptest.NewTLSServer(handler)
			tlsConf = srv.Client().Transport.(*http.Transport).TLSClientConfig
		}
		t.Cleanup(srv.Close)
		rt, err := NewRouter([]RouteSpec{
			{Name: "inference", Prefix: "/v1/", API: "openai", Segment: "inference", Upstream: srv.URL},
			{Name: "generic", Prefix: "/svc/", API: "http", Segment: "deployment", Upstream: srv.URL},
			{Name: "stripped", Prefix: "/team/v1/", API: "openai", Segment: "inference", Upstream: srv.URL, StripPrefix: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		px, err := NewProxy([]UpstreamSpec{
			{Route: "inference", URL: srv.URL, CredentialHeader: "Authorization", CredentialValue: "Bearer upstream-secret",
				Timeout: 2 * time.Second, DialTimeout: time.Second, TLSConfig: tlsConf},
			{Route: "generic", URL: srv.URL + "/base?fixed=1", Timeout: 2 * time.Second, DialTimeout: time.Second, TLSConfig: tlsConf},
			{Route: "stripped", URL: srv.URL + "/v1/", StripPrefix: "/team/v1/", Timeout: 2 * time.Second, DialTimeout: time.Second, TLSConfig: tlsConf},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(px.Close)
		if mode == "http" && len(px.plain) != 3 || mode == "https" && len(px.proxies) != 3 {
			t.Fatalf("%s upstreams not served by the expected client: %d plain, %d https", mode, len(px.plain), len(px.proxies))
		}
		out[mode] = struct {
			h  *Handler
			px *Proxy
		}{NewHandler([]Stage{rt, allowAll, &BodyReader{MaxBytes: 1 << 16}, px}, HandlerOptions{}), px}
	}
	return out
}

// TestUpstreamParity sends the same requests through both clients and
// checks the upstream sees the same request and the client the same
// response.
func TestUpstreamParity(t *testing.T) {
	type view struct {
		Method, Path, RawPath, Query, Body, Host string
		Header                                   http.Header
	}
	var last atomic.Pointer[view]
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h := r.Header.Clone()
		h.Del("X-Request-Id") // differs per request
		last.Store(&view{r.Method, r.URL.Path, r.URL.RawPath, r.URL.RawQuery, string(b), "", h})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "session=upstream")
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("X-Up-Kept", "1")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	modes := upstreamModes(t, upstream)

	type result struct {
		up     view
		status int
		header http.Header
		body   string
	}
	cases := []struct {
		name, method, target, body string
		header                     map[string]string
	}{
		{"chat with client credentials and hop headers", "POST", "/v1/chat/completions?x=1&y=%20z", `{"model":"m"}`, map[string]string{
			"Content-Type": "application/json", "Authorization": "Bearer client", "X-Api-Key": "k", "Cookie": "a=b",
			"Openai-Organization": "org", "Connection": "keep-alive, X-Hop", "X-Hop": "1", "Te": "trailers",
			"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil", "Forwarded": "for=6.6.6.6", "Accept-Encoding": "gzip",
			"X-Warden-Token": "t", "Proxy-Authorization": "Basic x", "X-Custom": "kept"}},
		{"strip prefix into a path with a trailing slash", "GET", "/team/v1/models", "", nil},
		{"upstream path and query joined", "GET", "/svc/a/b?q=1", "", nil},
		{"empty POST", "POST", "/svc/x", "", map[string]string{"Content-Type": "application/json"}},
		{"DELETE", "DELETE", "/svc/item/1", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]result{}
			for mode, m := range modes {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req := httptest.NewRequest(tc.method, tc.target, body)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				rec := httptest.NewRecorder()
				last.Store(nil)
				m.h.ServeHTTP(rec, req)
				up := last.Load()
				if up == nil {
					t.Fatalf("%s: the upstream saw nothing; status %d: %s", mode, rec.Code, rec.Body)
				}
				hdr := rec.Header().Clone()
				hdr.Del(RequestIDHeader)
				hdr.Del("Date")
				got[mode] = result{*up, rec.Code, hdr, rec.Body.String()}
			}
			p, s := got["http"], got["https"]
			if p.up.Method != s.up.Method || p.up.Path != s.up.Path || p.up.RawPath != s.up.RawPath ||
				p.up.Query != s.up.Query || p.up.Body != s.up.Body {
				t.Fatalf("upstream request differs:\n http  %+v\n https %+v", p.up, s.up)
			}
			if !sameHeader(p.up.Header, s.up.Header) {
				t.Fatalf("upstream headers differ:\n http  %v\n https %v", p.up.Header, s.up.Header)
			}
			if p.status != s.status || p.body != s.body || !sameHeader(p.header, s.header) {
				t.Fatalf("client response differs:\n http  %d %v %q\n https %d %v %q", p.status, p.header, p.body, s.status, s.header, s.body)
			}
			for _, leaked := range []string{"Authorization", "X-Api-Key", "Cookie", "Openai-Organization", "X-Hop",
				"Forwarded", "X-Forwarded-Host", "Accept-Encoding", "X-Warden-Token", "Proxy-Authorization"} {
				v := p.up.Header.Get(leaked)
				if leaked == "Authorization" && strings.HasPrefix(tc.target, "/v1/") {
					if v != "Bearer upstream-secret" {
						t.Fatalf("Authorization upstream %q, want the route's credential", v)
					}
					continue
				}
				if leaked == "X-Forwarded-Host" && v == "example.com" {
					continue // httptest.NewRequest's Host, set by warden
				}
				if v != "" {
					t.Fatalf("%s reached the upstream: %q", leaked, v)
				}
			}
			if xff := p.up.Header.Get("X-Forwarded-For"); xff != "192.0.2.1" {
				t.Fatalf("X-Forwarded-For %q, want only the client's address", xff)
			}
			if tc.header["X-Custom"] != "" && p.up.Header.Get("X-Custom") != "kept" {
				t.Fatal("an end-to-end client header was dropped")
			}
			if p.header.Get("Set-Cookie") != "" || p.header.Get("X-Up-Hop") != "" || p.header.Get("X-Up-Kept") != "1" {
				t.Fatalf("response headers: %v", p.header)
			}
		})
	}
}

func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb := b[k]
		if strings.Join(va, "\x00") != strings.Join(vb, "\x00") {
			return false
		}
	}
	return true
}

// countingServer counts the TCP connections the upstream accepts.
func countingServer(t *testing.T, h http.Handler, idle time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.IdleTimeout = idle
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func plainChain(t *testing.T, url string, timeout time.Duration) (*Handler, *Proxy) {
	t.Helper()
	rt, err := NewRouter([]RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: url}})
	if err != nil {
		t.Fatal(err)
	}
	px, err := NewProxy([]UpstreamSpec{{Route: "r", URL: url, Timeout: timeout, DialTimeout: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(px.Close)
	return NewHandler([]Stage{rt, allowAll, &BodyReader{MaxBytes: 1 << 16}, px}, HandlerOptions{}), px
}

func TestUpstreamConnectionReuse(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Query().Get("mode") {
		case "empty":
			w.WriteHeader(http.StatusNoContent)
		case "chunked":
			w.(http.Flusher).Flush() // no Content-Length: chunked
			_, _ = w.Write([]byte(`{"chunked":true}`))
		default:
			_, _ = w.Write([]byte(`{"ok":true}`))
		}
	}), time.Minute)
	h, _ := plainChain(t, srv.URL, 2*time.Second)
	for i := range 60 {
		method, path := "POST", "/v1/chat/completions"
		switch i % 4 {
		case 1:
			method, path = "GET", "/v1/models"
		case 2:
			path += "?mode=empty"
		case 3:
			path += "?mode=chunked"
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, jsonRequest(method, path, `{"a":1}`))
		if rec.Code >= 300 {
			t.Fatalf("request %d (%s %s): status %d: %s", i, method, path, rec.Code, rec.Body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("60 sequential requests used %d upstream connections, want 1 (pooled)", n)
	}

	// Concurrent requests: each borrows its own connection; none is lost.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 20 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, jsonRequest("POST", "/v1/chat/completions", `{}`))
				if rec.Code != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d concurrent requests failed", failed.Load())
	}
	if n := conns.Load(); n > 9 {
		t.Fatalf("8 concurrent clients opened %d upstream connections", n)
	}
}

// TestUpstreamStaleConnection: an upstream that closed an idle pooled
// connection must not fail the next request.
func TestUpstreamStaleConnection(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}), 30*time.Millisecond)
	for _, tc := range []struct {
		name       string
		method     string
		probeAfter time.Duration
	}{
		{"POST detected by the probe before reuse", "POST", time.Millisecond},
		{"GET retried on a fresh connection", "GET", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, px := plainChain(t, srv.URL, 2*time.Second)
			px.plain["r"].probeAfter = tc.probeAfter
			before := conns.Load()
			for i := range 3 {
				rec := httptest.NewRecorder()
				path := "/v1/chat/completions"
				if tc.method == "GET" {
					path = "/v1/models"
				}
				h.ServeHTTP(rec, jsonRequest(tc.method, path, `{}`))
				if rec.Code != 200 {
					t.Fatalf("request %d after the upstream closed the idle connection: %d %s", i, rec.Code, rec.Body)
				}
				time.Sleep(150 * time.Millisecond) // the upstream's idle timeout passes
			}
			if n := conns.Load() - before; n != 3 {
				t.Fatalf("%d connections for 3 requests spaced past the upstream's idle timeout, want 3", n)
			}
		})
	}
}

// rawUpstream answers every request on a connection with fn's bytes.
func rawUpstream(t *testing.T, fn func(c net.Conn, req *http.Request)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					fn(c, req)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestUpstreamRawResponses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		raw    string
		status int
		body   string
		header map[string]string // want ("" = absent)
	}{
		{"interim 103 skipped", "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", nil},
		{"101 refused", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 502, "", nil},
		{"hop-by-hop response headers dropped", "HTTP/1.1 200 OK\r\nConnection: X-Secret-Hop\r\nX-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-End: 1\r\nContent-Length: 2\r\n\r\nok",
			200, "ok", map[string]string{"X-Secret-Hop": "", "Keep-Alive": "", "X-End": "1"}},
		{"garbage", "SMTP ready\r\n\r\n", 502, "", nil},
		{"HTTP/1.0 close-delimited body", "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", 200, "all of it", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawUpstream(t, func(c net.Conn, _ *http.Request) {
				_, _ = io.WriteString(c, tc.raw)
				if strings.HasPrefix(tc.raw, "HTTP/1.0") {
					c.Close()
				}
			})
			h, _ := plainChain(t, url, time.Second)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, jsonRequest("POST", "/v1/chat/completions", `{}`))
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 200 && rec.Body.String() != tc.body {
				t.Fatalf("body %q, want %q", rec.Body, tc.body)
			}
			if tc.status >= 500 {
				decodeError(t, rec.Body.String())
			}
			for k, want := range tc.header {
				if got := rec.Header().Get(k); got != want {
					t.Fatalf("header %s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

// TestUpstreamCutMidBody: when the upstream dies in the middle of a body,
// the client's connection is aborted; it never receives a well-formed end
// of a truncated response.
func TestUpstreamCutMidBody(t *testing.T) {
	for _, tc := range []struct{ name, head string }{
		{"chunked", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n"},
		{"content-length", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":"},
		{"event stream", "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\ne\r\ndata: {\"a\":1}\n\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawUpstream(t, func(c net.Conn, _ *http.Request) {
				_, _ = io.WriteString(c, tc.head)
				time.Sleep(20 * time.Millisecond)
				c.Close()
			})
			h, _ := plainChain(t, url, time.Second)
			front := httptest.NewServer(h)
			defer front.Close()
			res, err := http.Post(front.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
			if err != nil {
				return // aborted before the headers: also not a complete response
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			if err == nil {
				t.Fatalf("the client read a complete response from a cut upstream: %d %q", res.StatusCode, b)
			}
			if !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "EOF") {
				t.Fatalf("unexpected read error %v", err)
			}
		})
	}
}

func TestUpstreamCredentialCannotInjectHeaders(t *testing.T) {
	for _, scheme := range []string{"http", "https"} {
		_, err := NewProxy([]UpstreamSpec{{Route: "r", URL: scheme + "://127.0.0.1:1",
			CredentialHeader: "Authorization", CredentialValue: "Bearer x\r\nX-Injected: 1"}}, nil)
		if err == nil || !strings.Contains(err.Error(), "route \"r\"") {
			t.Fatalf("%s: credential with CRLF accepted (err %v)", scheme, err)
		}
	}
	if _, err := NewProxy([]UpstreamSpec{{Route: "r", URL: "http://127.0.0.1:1", CredentialHeader: "Bad Name", CredentialValue: "x"}}, nil); err == nil {
		t.Fatal("invalid credential header name accepted")
	}
}

func TestRequestURI(t *testing.T) {
	for _, tc := range []struct{ upstream, strip, in, want string }{
		{"http://u", "", "/v1/models", "/v1/models"},
		{"http://u/", "", "/v1/models?a=1", "/v1/models?a=1"},
		{"http://u/base", "", "/v1/x", "/base/v1/x"},
		{"http://u/base/", "", "/v1/x", "/base/v1/x"},
		{"http://u/base?k=v", "", "/v1/x?a=1", "/base/v1/x?k=v&a=1"},
		{"http://u/base?k=v", "", "/v1/x", "/base/v1/x?k=v"},
		{"http://u/v1", "/team/v1/", "/team/v1/models", "/v1/models"},
		{"http://u", "", "/v1/a%2Fb", "/v1/a%2Fb"},
		{"http://u/p%2Fq", "", "/v1/a", "/p%2Fq/v1/a"},
	} {
		target := mustParseURL(t, tc.upstream)
		u, err := newSyncUpstream(UpstreamSpec{URL: tc.upstream, StripPrefix: tc.strip}, target)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.requestURI(mustParseURL(t, tc.in)); got != tc.want {
			t.Errorf("upstream %q strip %q: %q -> %q, want %q", tc.upstream, tc.strip, tc.in, got, tc.want)
		}
	}
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// jsonRequest is a request the body stage accepts: GET and HEAD without a
// body, others with a JSON one.
func jsonRequest(method, path, body string) *http.Request {
	if method == "GET" || method == "HEAD" {
		return httptest.NewRequest(method, path, nil)
	}
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}
