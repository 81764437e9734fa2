package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// revocable is a stage that proves a principal whose credential can be
// revoked by the test while the exchange runs.
func revocable(revoked *atomic.Bool) Stage {
	return StageFunc(func(ex *Exchange, next func(*Exchange) error) error {
		ex.Principal = &Principal{Kind: KindService, ID: "svc", AuthMethod: "api_key"}
		ex.Decision = &Decision{Allow: true}
		ex.Revalidate = func(time.Time) error {
			if revoked.Load() {
				return errors.New("key revoked")
			}
			return nil
		}
		return next(ex)
	})
}

func revalidatingChain(t *testing.T, upstream string, revoked *atomic.Bool) (*Handler, *Proxy) {
	t.Helper()
	rt, err := NewRouter([]RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: upstream}})
	if err != nil {
		t.Fatal(err)
	}
	px, err := NewProxy([]UpstreamSpec{{Route: "r", URL: upstream, Timeout: 10 * time.Second, DialTimeout: time.Second}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	px.RevalidateEvery(20 * time.Millisecond)
	return NewHandler([]Stage{rt, revocable(revoked), &BodyReader{MaxBytes: 1 << 10}, px}, HandlerOptions{}), px
}

// TestRevokedStreamEndsWithErrorEvent: a never-ending SSE stream is ended
// within a second of the revocation with a well-formed final error event.
func TestRevokedStreamEndsWithErrorEvent(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, "data: {\"n\":1}\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	defer up.Close()
	var revoked atomic.Bool
	h, _ := revalidatingChain(t, up.URL, &revoked)
	gw := httptest.NewServer(h)
	defer gw.Close()

	req, _ := http.NewRequest("POST", gw.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	res, err := gw.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	if line, _ := br.ReadString('\n'); line != "data: {\"n\":1}\n" {
		t.Fatalf("first line %q", line)
	}
	revokedAt := time.Now()
	revoked.Store(true)
	rest, err := io.ReadAll(br) // must end: the stream is closed by warden
	if err != nil {
		t.Fatalf("stream did not end cleanly: %v", err)
	}
	if d := time.Since(revokedAt); d > time.Second {
		t.Fatalf("stream ended %s after revocation, want < 1s", d)
	}
	s := "data: {\"n\":1}\n" + string(rest) // the whole stream as the client saw it
	if !strings.HasSuffix(s, "\n\n") || !strings.Contains(s, "event: error\ndata: {\"error\":") || !strings.Contains(s, `"code":"credential_revoked"`) {
		t.Fatalf("stream tail %q", s[max(0, len(s)-300):])
	}
	// Every event before the error event is complete.
	events := strings.Split(strings.TrimSuffix(s, "\n\n"), "\n\n")
	for _, ev := range events[:len(events)-1] {
		if ev != "" && ev != "data: {\"n\":1}" {
			t.Fatalf("broken event %q", ev)
		}
	}
}

// TestRevokedWhileWaitingForHeaders: a request still waiting for the
// upstream is ended with 401 credential_revoked, not left hanging.
func TestRevokedWhileWaitingForHeaders(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer up.Close()
	var revoked atomic.Bool
	h, _ := revalidatingChain(t, up.URL, &revoked)
	go func() { time.Sleep(100 * time.Millisecond); revoked.Store(true) }()
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/models", nil))
	if rec.Code != 401 || time.Since(start) > 2*time.Second {
		t.Fatalf("status %d after %s", rec.Code, time.Since(start))
	}
	if _, code, _ := decodeError(t, rec.Body.String()); code != "credential_revoked" {
		t.Fatalf("code %q", code)
	}
}

func TestNativeEndpoints(t *testing.T) {
	var last atomic.Pointer[seen]
	up := echoUpstream(t, &last)
	rt, _ := NewRouter([]RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "s", Upstream: up.URL}})
	px, _ := NewProxy([]UpstreamSpec{{Route: "r", URL: up.URL, Timeout: time.Second, DialTimeout: time.Second}}, nil)
	var got *Exchange
	px.HandleNative("token.exchange", NativeHandlerFunc(func(ex *Exchange) error {
		got = ex
		ex.Writer.Header().Set("Content-Type", "application/json")
		_, err := io.WriteString(ex.Writer, `{"ok":true}`)
		return err
	}))
	h := NewHandler([]Stage{rt, allowAll, &BodyReader{MaxBytes: 1024}, px}, HandlerOptions{})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"POST", "/v1/warden/token", 200, ""},
		{"GET", "/v1/warden/token", 405, "method_not_allowed"},
		{"POST", "/v1/warden/mfa/verify", 404, "unknown_endpoint"}, // not enabled here
		{"POST", "/v1/warden/other", 404, "unknown_endpoint"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader("grant_type=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.path, rec.Code, tc.status, rec.Body)
		}
		if tc.code != "" {
			if _, code, _ := decodeError(t, rec.Body.String()); code != tc.code {
				t.Fatalf("%s %s: code %q", tc.method, tc.path, code)
			}
		}
	}
	if got == nil || got.Route != NativeRoute || got.Action != "token.exchange" || string(got.Body) != "grant_type=x" {
		t.Fatalf("native handler saw %+v", got)
	}
	if last.Load() != nil {
		t.Fatal("a native endpoint reached the upstream")
	}
}
