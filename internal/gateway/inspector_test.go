package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// inspectorFunc adapts a function to ResponseInspector.
type inspectorFunc func(ex *Exchange, res *http.Response) (func(), error)

func (f inspectorFunc) InspectResponse(ex *Exchange, res *http.Response) (func(), error) {
	return f(ex, res)
}

// TestResponseInspectorHook: the inspector sees every proxied response
// before the client; what it writes into the body is what the client
// gets, done runs after the body was sent, and a refusal sends nothing of
// the upstream's answer (a *Error as it is, anything else 502).
func TestResponseInspectorHook(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"secret":"upstream-said-this"}`))
	}))
	t.Cleanup(up.Close)
	tests := []struct {
		name       string
		inspect    func(ex *Exchange, res *http.Response) (func(), error)
		wantStatus int
		wantBody   string
		wantDone   bool
	}{
		{"rewrite", func(ex *Exchange, res *http.Response) (func(), error) {
			_ = res.Body.Close()
			res.Body = io.NopCloser(strings.NewReader(`{"secret":"[MASKED]"}`))
			res.ContentLength = -1
			res.Header.Del("Content-Length")
			return func() { ex.Findings = append(ex.Findings, Finding{Type: "t", Where: "response"}) }, nil
		}, 200, `{"secret":"[MASKED]"}`, true},
		{"refuse with a gateway error", func(*Exchange, *http.Response) (func(), error) {
			return nil, Errorf(http.StatusForbidden, TypePermission, "content_blocked", errors.New("blocked"), "blocked by policy")
		}, 403, `"content_blocked"`, false},
		{"refuse with another error", func(*Exchange, *http.Response) (func(), error) {
			return nil, errors.New("cannot inspect")
		}, 502, `"upstream_unavailable"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := NewRouter([]RouteSpec{{Name: "inference", Prefix: "/v1/", API: "openai", Segment: "inference", Upstream: up.URL}})
			if err != nil {
				t.Fatal(err)
			}
			px, err := NewProxy([]UpstreamSpec{{Route: "inference", URL: up.URL}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			px.SetResponseInspector(inspectorFunc(tt.inspect))
			var findings []Finding
			record := StageFunc(func(ex *Exchange, next func(*Exchange) error) error {
				err := next(ex)
				findings = ex.Findings
				return err
			})
			h := NewHandler([]Stage{record, rt, allowAll, &BodyReader{MaxBytes: 1024}, px}, HandlerOptions{})
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
			r.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("status %d body %s, want %d with %s", w.Code, w.Body, tt.wantStatus, tt.wantBody)
			}
			if strings.Contains(w.Body.String(), "upstream-said-this") {
				t.Fatalf("the upstream's answer reached the client: %s", w.Body)
			}
			if got := len(findings) == 1; got != tt.wantDone {
				t.Fatalf("done ran: %v, want %v", got, tt.wantDone)
			}
		})
	}
}
