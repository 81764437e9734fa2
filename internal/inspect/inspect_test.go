package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
	"github.com/warden-ai/warden/internal/guard/dlp"
)

const (
	email  = "jane.doe@example.com"
	card   = "4111 1111 1111 1111"
	awsKey = "AKIAIOSFODNN7EXAMPLE"
)

func newGuards() *Guards {
	return &Guards{Scanner: guard.Multi(dlp.New()), Key: bytes.Repeat([]byte{7}, 32), MaxOutputBytes: 1 << 20}
}

func newExchange(ct, body string) *gateway.Exchange {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	if ct != "" {
		r.Header.Set("Content-Type", ct)
	}
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return &gateway.Exchange{ID: "req-1", Request: r, Body: []byte(body)}
}

func chatBody(prompt string) string {
	b, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]string{"role": "user", "content": prompt}}})
	return string(b)
}

// run runs Detect with next as the rest of the chain.
func run(g *Guards, ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	return g.Detect().Handle(ex, next)
}

func TestDetectRecordsFindingsWithoutValues(t *testing.T) {
	g := newGuards()
	ex := newExchange("application/json", chatBody("mail "+email+" card "+card))
	called := false
	err := run(g, ex, func(ex *gateway.Exchange) error {
		called = true
		return nil
	})
	if err != nil || !called {
		t.Fatalf("err %v, next called %v", err, called)
	}
	types := map[string]bool{}
	for _, f := range ex.Findings {
		if f.Where != guard.WhereRequest || f.Guard != "dlp" || f.Action != "flagged" {
			t.Errorf("finding %+v", f)
		}
		if !strings.Contains(string(ex.Body[f.Start:f.End]), strings.Split(email, "@")[0]) && f.Type == "email" {
			t.Errorf("email span %d..%d = %q", f.Start, f.End, ex.Body[f.Start:f.End])
		}
		types[f.Type] = true
	}
	if !types["email"] || !types["payment_card"] || len(ex.Findings) != 2 {
		t.Fatalf("findings %+v", ex.Findings)
	}
	b, _ := json.Marshal(ex.Findings)
	if strings.Contains(string(b), email) || strings.Contains(string(b), "4111") {
		t.Fatalf("findings carry a value: %s", b)
	}
	if _, ok := g.scans.Load(ex); ok {
		t.Fatal("the scan outlived the exchange")
	}
}

func TestDetectRefusesUninspectableBodies(t *testing.T) {
	tests := []struct {
		ct, body string
		status   int
		code     string
	}{
		{"image/png", "\x89PNG....", 415, "unsupported_media_type"},
		{"application/json", `{"a":`, 400, "invalid_json"},
		{"text/plain", "bad \xff utf8", 400, "invalid_utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			ex := newExchange(tt.ct, tt.body)
			err := run(newGuards(), ex, func(*gateway.Exchange) error {
				t.Fatal("next called for a body that cannot be inspected")
				return nil
			})
			ge, ok := errors.AsType[*gateway.Error](err)
			if !ok || ge.Status != tt.status || ge.Code != tt.code {
				t.Fatalf("err %v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	// No body: nothing to inspect, whatever the type.
	ex := newExchange("image/png", "")
	ex.Body = nil
	if err := run(newGuards(), ex, func(*gateway.Exchange) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestEnforceMask(t *testing.T) {
	body := chatBody("mail " + email + " card " + card + " key " + awsKey)
	tests := []struct {
		name     string
		rules    any
		status   int // 0: allowed
		want     []string
		wantNot  []string
		applied  string
		internal bool
	}{
		{name: "mask pii", rules: map[string]any{"pii": "mask"}, want: []string{"[EMAIL]", "[PAYMENT_CARD]", awsKey},
			wantNot: []string{email, card}, applied: "mask:1:2"},
		{name: "hash email, mask secrets", rules: map[string]any{"email": "hash", "secret": "mask"},
			want: []string{"[EMAIL:", "[AWS_ACCESS_KEY]", card}, wantNot: []string{email, awsKey}, applied: "mask:2:2"},
		{name: "block secrets", rules: map[string]any{"pii": "mask", "secret": "block"}, status: 403},
		{name: "nothing named", rules: map[string]any{"iban": "mask"}, want: []string{email, card, awsKey}, applied: "mask:1:0"},
		{name: "bad action", rules: map[string]any{"pii": "redact"}, internal: true},
		{name: "not an object", rules: "mask", internal: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGuards()
			ex := newExchange("application/json", body)
			var err error
			runErr := run(g, ex, func(ex *gateway.Exchange) error {
				err = g.EnforceMask(ex, tt.rules)
				return err
			})
			if !errors.Is(runErr, err) {
				t.Fatalf("Detect changed the error: %v vs %v", runErr, err)
			}
			ge, isGE := errors.AsType[*gateway.Error](err)
			switch {
			case tt.internal:
				if err == nil || isGE {
					t.Fatalf("err %v, want an internal fault", err)
				}
				return
			case tt.status != 0:
				if !isGE || ge.Status != tt.status || ge.Code != CodeContentBlocked {
					t.Fatalf("err %v, want %d", err, tt.status)
				}
				if strings.Contains(ge.Message, awsKey) || strings.Contains(ge.Message, "aws") {
					t.Errorf("public message leaks: %q", ge.Message)
				}
				if strings.Contains(err.Error(), awsKey) {
					t.Errorf("error leaks the value: %v", err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			got := string(ex.Body)
			if !json.Valid(ex.Body) {
				t.Fatalf("body is not JSON: %s", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("body %s lacks %q", got, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("body %s still has %q", got, w)
				}
			}
			if ex.Request.ContentLength != int64(len(ex.Body)) || ex.Request.Header.Get("Content-Length") != strconv.Itoa(len(ex.Body)) {
				t.Errorf("Content-Length %d / %q for a body of %d", ex.Request.ContentLength, ex.Request.Header.Get("Content-Length"), len(ex.Body))
			}
			if len(ex.Obligations.Mask) == 0 || ex.Obligations.Applied[0] != tt.applied {
				t.Errorf("obligations %+v, want applied %s", ex.Obligations, tt.applied)
			}
		})
	}
}

func TestEnforceMaskRecordsActions(t *testing.T) {
	g := newGuards()
	ex := newExchange("text/plain", "mail "+email+" key "+awsKey)
	err := run(g, ex, func(ex *gateway.Exchange) error {
		return g.EnforceMask(ex, map[string]any{"email": "mask", "secret": "block"})
	})
	if !errors.Is(err, guard.ErrBlocked) {
		t.Fatalf("err %v, want a block", err)
	}
	got := map[string]string{}
	for _, f := range ex.Findings {
		got[f.Type] = f.Action
	}
	if got["email"] != "masked" || got["aws_access_key"] != "blocked" {
		t.Fatalf("actions %v", got)
	}
}

// A body rewritten after Detect (by another enforcer) is scanned again: the
// old offsets must never be applied to new bytes.
func TestEnforceMaskRescansReplacedBody(t *testing.T) {
	g := newGuards()
	ex := newExchange("text/plain", "nothing to see here")
	err := run(g, ex, func(ex *gateway.Exchange) error {
		ex.Body = []byte("now " + email)
		return g.EnforceMask(ex, map[string]any{"pii": "mask"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(ex.Body) != "now [EMAIL]" {
		t.Fatalf("body %q", ex.Body)
	}
	if len(ex.Findings) != 1 || ex.Findings[0].Action != "masked" {
		t.Fatalf("findings %+v", ex.Findings)
	}
}

func TestEnforceMaskHashWithoutKeyFailsClosed(t *testing.T) {
	g := newGuards()
	g.Key = nil
	ex := newExchange("text/plain", "mail "+email)
	err := run(g, ex, func(ex *gateway.Exchange) error {
		return g.EnforceMask(ex, map[string]any{"pii": "hash"})
	})
	if err == nil || gateway.AsError(err).Status != http.StatusInternalServerError {
		t.Fatalf("err %v, want a 500", err)
	}
	if !strings.Contains(string(ex.Body), email) || ex.Obligations.Mask != nil {
		t.Fatal("state changed on failure")
	}
}

// proxyEnv is a gateway chain with the inspector on the proxy, in front of
// an upstream that answers with what reply gives.
type proxyEnv struct {
	h        http.Handler
	mu       sync.Mutex
	findings []gateway.Finding
}

func newProxyEnv(t *testing.T, g *Guards, rules map[string]string, reply func(w http.ResponseWriter, body []byte)) *proxyEnv {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reply(w, b)
	}))
	t.Cleanup(up.Close)
	router, err := gateway.NewRouter([]gateway.RouteSpec{{Name: "r", Prefix: "/v1/", API: "openai", Segment: "inference", Upstream: up.URL}})
	if err != nil {
		t.Fatal(err)
	}
	proxy, err := gateway.NewProxy([]gateway.UpstreamSpec{{Route: "r", URL: up.URL}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	proxy.SetResponseInspector(g.Responses())
	e := &proxyEnv{}
	allow := gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
		ex.Principal = &gateway.Principal{Kind: "user", ID: "u"}
		ex.Decision = &gateway.Decision{Allow: true}
		if rules != nil {
			if err := g.EnforceMask(ex, rules); err != nil {
				return err
			}
		}
		return next(ex)
	})
	record := gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
		err := next(ex)
		e.mu.Lock()
		e.findings = append([]gateway.Finding(nil), ex.Findings...)
		e.mu.Unlock()
		return err
	})
	e.h = gateway.NewHandler([]gateway.Stage{record, router, &gateway.BodyReader{MaxBytes: 1 << 20}, g.Detect(), allow, proxy}, gateway.HandlerOptions{})
	return e
}

func (e *proxyEnv) post(body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func echoJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	out, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"message": map[string]string{"role": "assistant", "content": "you said: " + string(body)}}}})
	_, _ = w.Write(out)
}

func TestProxyMasksRequestAndResponse(t *testing.T) {
	var upstreamSaw string
	e := newProxyEnv(t, newGuards(), map[string]string{"pii": "mask"}, func(w http.ResponseWriter, b []byte) {
		upstreamSaw = string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"reach me at ` + email + `"}}]}`))
	})
	w := e.post(chatBody("I am " + email))
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if strings.Contains(upstreamSaw, email) || !strings.Contains(upstreamSaw, "[EMAIL]") {
		t.Errorf("upstream saw %s", upstreamSaw)
	}
	if got := w.Body.String(); strings.Contains(got, email) || !strings.Contains(got, "reach me at [EMAIL]") {
		t.Errorf("client got %s", got)
	}
	if w.Header().Get("Content-Length") != strconv.Itoa(w.Body.Len()) {
		t.Errorf("Content-Length %q for %d bytes", w.Header().Get("Content-Length"), w.Body.Len())
	}
	var where []string
	for _, f := range e.findings {
		where = append(where, f.Where+":"+f.Type+":"+f.Action)
	}
	if strings.Join(where, ",") != "request:email:masked,response:email:masked" {
		t.Errorf("findings %v", where)
	}
}

func TestProxyBlocksResponse(t *testing.T) {
	e := newProxyEnv(t, newGuards(), map[string]string{"secret": "block"}, func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"choices":[{"message":{"content":"the key is ` + awsKey + `"}}]}`))
	})
	w := e.post(chatBody("hello"))
	if w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), awsKey) || !strings.Contains(w.Body.String(), CodeContentBlocked) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestProxyStreamBlockEndsWithErrorEvent(t *testing.T) {
	e := newProxyEnv(t, newGuards(), map[string]string{"pii": "mask", "secret": "block"}, func(w http.ResponseWriter, b []byte) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, piece := range []string{"mail ", "jane.doe@exa", "mple.com ok ", "key AKIAIOSF", "ODNN7EXAMPLE done"} {
			c, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": piece}}}})
			_, _ = w.Write([]byte("data: " + string(c) + "\n\n"))
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write([]byte("data: [DONE]\n\n"))
	})
	w := e.post(chatBody("hello"))
	got := w.Body.String()
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, got)
	}
	if strings.Contains(got, "AKIA") || strings.Contains(got, "jane.doe") || strings.Contains(got, "[DONE]") {
		t.Fatalf("stream leaked or went on after the block:\n%s", got)
	}
	if !strings.Contains(got, "[EMAIL]") {
		t.Errorf("email not masked:\n%s", got)
	}
	if !strings.HasSuffix(got, "\n\n") || !strings.Contains(got, "event: error\ndata: ") || !strings.Contains(got, `"code":"content_blocked"`) {
		t.Fatalf("stream does not end with an error event:\n%s", got)
	}
	blocked := false
	for _, f := range e.findings {
		if f.Where == guard.WhereResponse && f.Type == "aws_access_key" && f.Action == "blocked" {
			blocked = true
		}
	}
	if !blocked {
		t.Errorf("findings %+v lack the blocked key", e.findings)
	}
}

func TestProxyOutputLimit(t *testing.T) {
	g := newGuards()
	g.MaxOutputBytes = 150
	e := newProxyEnv(t, g, nil, echoJSON)
	if w := e.post(chatBody(strings.Repeat("long text ", 20))); w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), CodeOutputTooLarge) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w := e.post(`{"a":"b"}`); w.Code != 200 {
		t.Fatalf("a small answer: status %d: %s", w.Code, w.Body)
	}
}
