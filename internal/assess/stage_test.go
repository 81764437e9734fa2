package assess

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
)

// riskFunc adapts a function to RiskSource.
type riskFunc func(string) float64

func (f riskFunc) Risk(id string) float64 { return f(id) }

const (
	prodSvc  = "spiffe://example.org/ns/prod/sa/app"
	stageSvc = "spiffe://example.org/ns/staging/sa/app"
)

var testWorkloads = []config.WorkloadPosture{
	{SPIFFEID: "spiffe://example.org/ns/prod/sa/admin", Posture: config.Attributes{"env": "prod", "tier": "admin"}},
	{SPIFFEID: "spiffe://example.org/ns/prod/*", Posture: config.Attributes{"env": "prod", "attested": true, "labels": []any{"a", "b"}}},
	{SPIFFEID: "spiffe://example.org/ns/staging/sa/app", Posture: config.Attributes{"env": "staging"}},
	{SPIFFEID: "spiffe://example.org/*", Posture: config.Attributes{"env": "unknown"}},
}

func newTestStage(t testing.TB, dir string, risk RiskSource) (*Stage, *issuer) {
	t.Helper()
	is := newIssuer(t, dir)
	pc := postureConfig(is.jwks)
	pc.Workloads = testWorkloads
	city, asn := geoFiles(t, dir)
	s, err := New(config.Context{Posture: &pc, Geo: &config.Geo{CityDB: city, ASNDB: asn}},
		Options{Risk: risk, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, is
}

// run passes ex through s and reports whether next was called.
func run(s *Stage, ex *gateway.Exchange) (bool, error) {
	called := false
	err := s.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
	return called, err
}

func exchange(p *gateway.Principal, src string, headers ...string) *gateway.Exchange {
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	for _, h := range headers {
		r.Header.Add(config.DefaultPostureHeader, h)
	}
	ex := &gateway.Exchange{Request: r, Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Principal: p}
	if src != "" {
		ex.SourceIP = netip.MustParseAddr(src)
	}
	return ex
}

func TestStagePosture(t *testing.T) {
	s, is := newTestStage(t, t.TempDir(), nil)
	tok := func(sub string) string { return sign(t, is.ed, jose.EdDSA, is.edKID, claims(sub)) }
	signedPosture := claims("x")["posture"]
	apiKey := &gateway.Principal{Kind: "service", ID: "svc-a", AuthMethod: "api_key"}
	mtlsP := func(id string) *gateway.Principal {
		return &gateway.Principal{Kind: "service", ID: id, AuthMethod: "mtls", Issuer: "example.org"}
	}
	agent := &gateway.Principal{Kind: "agent", ID: "agent-7", OnBehalfOf: "alice", AuthMethod: "token"}
	withWorkload := &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Workload: stageSvc}

	tests := []struct {
		name       string
		p          *gateway.Principal
		headers    []string
		wantSource string
		want       map[string]any // nil: no posture
		wantErr    bool           // 401 invalid_posture
	}{
		{"no header, api key", apiKey, nil, "", nil, false},
		{"valid header", apiKey, []string{tok("svc-a")}, SourceHeader, signedPosture.(map[string]any), false},
		{"header for another principal", apiKey, []string{tok("svc-b")}, "", nil, true},
		{"agent with the user's posture", agent, []string{tok("alice")}, "", nil, true},
		{"agent with its own posture", agent, []string{tok("agent-7")}, SourceHeader, signedPosture.(map[string]any), false},
		{"forged header", apiKey, []string{unsigned(t, claims("svc-a"))}, "", nil, true},
		{"empty header", apiKey, []string{""}, "", nil, true},
		{"two headers", apiKey, []string{tok("svc-a"), tok("svc-a")}, "", nil, true},
		{"mtls, prefix rule", mtlsP(prodSvc), nil, SourceMTLS,
			map[string]any{"env": "prod", "attested": true, "labels": []any{"a", "b"}, "spiffe_id": prodSvc}, false},
		{"mtls, exact rule before the prefix", mtlsP("spiffe://example.org/ns/prod/sa/admin"), nil, SourceMTLS,
			map[string]any{"env": "prod", "tier": "admin", "spiffe_id": "spiffe://example.org/ns/prod/sa/admin"}, false},
		{"mtls, exact rule", mtlsP(stageSvc), nil, SourceMTLS, map[string]any{"env": "staging", "spiffe_id": stageSvc}, false},
		{"mtls, prefix does not match a sibling", mtlsP("spiffe://example.org/ns/production/sa/x"), nil, SourceMTLS,
			map[string]any{"env": "unknown", "spiffe_id": "spiffe://example.org/ns/production/sa/x"}, false},
		{"mtls, prefix does not match its base", mtlsP("spiffe://example.org/ns/staging"), nil, SourceMTLS,
			map[string]any{"env": "unknown", "spiffe_id": "spiffe://example.org/ns/staging"}, false},
		{"mtls, other trust domain", mtlsP("spiffe://other.org/ns/prod/sa/app"), nil, "", nil, false},
		{"mtls, certificate named by its common name", mtlsP("legacy-batch"), nil, "", nil, false},
		{"bearer with an mTLS workload", withWorkload, nil, SourceMTLS, map[string]any{"env": "staging", "spiffe_id": stageSvc}, false},
		{"spiffe id of a non-mtls principal is not a workload", &gateway.Principal{Kind: "service", ID: prodSvc, AuthMethod: "jwt"}, nil, "", nil, false},
		{"header wins over mtls", mtlsP(prodSvc), []string{tok(prodSvc)}, SourceHeader, signedPosture.(map[string]any), false},
		{"bad header with mtls is refused, not mtls posture", mtlsP(prodSvc), []string{tok("someone")}, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := exchange(tt.p, "203.0.113.7", tt.headers...)
			called, err := run(s, ex)
			if ex.Assessment == nil {
				t.Fatal("Assessment not set")
			}
			if got := ex.Request.Header.Values(config.DefaultPostureHeader); len(got) != 0 {
				t.Fatalf("posture header left on the request: %q", got)
			}
			if tt.wantErr {
				ge, ok := errors.AsType[*gateway.Error](err)
				if !ok || ge.Status != http.StatusUnauthorized || ge.Code != CodeInvalidPosture || !errors.Is(err, ErrInvalidPosture) {
					t.Fatalf("err = %v, want 401 %s", err, CodeInvalidPosture)
				}
				if ge.Message != msgInvalidPosture {
					t.Fatalf("public message %q", ge.Message)
				}
				if called {
					t.Fatal("next was called")
				}
				if ex.Assessment.Posture != nil || ex.Assessment.PostureSource != "" {
					t.Fatalf("posture %v from %q kept on a refused exchange", ex.Assessment.Posture, ex.Assessment.PostureSource)
				}
				if ex.Writer.Header().Get("WWW-Authenticate") == "" {
					t.Fatal("401 without a challenge")
				}
				return
			}
			if err != nil || !called {
				t.Fatalf("err = %v, next called = %v", err, called)
			}
			a := ex.Assessment
			if a.PostureSource != tt.wantSource {
				t.Fatalf("source %q, want %q", a.PostureSource, tt.wantSource)
			}
			if tt.want == nil {
				if a.Posture != nil {
					t.Fatalf("posture %v, want none", a.Posture)
				}
				return
			}
			if !reflect.DeepEqual(a.Posture, tt.want) {
				t.Fatalf("posture %#v\nwant %#v", a.Posture, tt.want)
			}
			if a.Geo == nil || a.Geo.Country != "DE" || a.Geo.ASN != 64500 {
				t.Fatalf("geo %+v", a.Geo)
			}
		})
	}

	t.Run("workload posture is a copy per request", func(t *testing.T) {
		ex := exchange(mtlsP(prodSvc), "")
		if _, err := run(s, ex); err != nil {
			t.Fatal(err)
		}
		ex.Assessment.Posture["env"] = "tampered"
		ex.Assessment.Posture["labels"].([]any)[0] = "tampered"
		ex2 := exchange(mtlsP(prodSvc), "")
		if _, err := run(s, ex2); err != nil {
			t.Fatal(err)
		}
		if ex2.Assessment.Posture["env"] != "prod" || ex2.Assessment.Posture["labels"].([]any)[0] != "a" {
			t.Fatalf("one request changed another's posture: %v", ex2.Assessment.Posture)
		}
	})
}

// TestStageThroughHandler runs the stage in a gateway chain and checks the
// response a client sees: the JSON error, and that nothing leaks.
func TestStageThroughHandler(t *testing.T) {
	s, is := newTestStage(t, t.TempDir(), nil)
	var seen *gateway.Exchange
	h := gateway.NewHandler([]gateway.Stage{
		gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
			ex.Principal = &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt"} // as identify would
			return next(ex)
		}),
		s,
		gateway.StageFunc(func(ex *gateway.Exchange, _ func(*gateway.Exchange) error) error {
			seen = ex
			ex.Writer.WriteHeader(http.StatusNoContent)
			return nil
		}),
	}, gateway.HandlerOptions{Logger: discard()})

	forged := sign(t, is.ed, jose.EdDSA, is.edKID, claims("mallory"))
	r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r.Header.Set("X-Warden-Posture", forged)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusUnauthorized || seen != nil {
		t.Fatalf("status %d, reached the end: %v", w.Code, seen != nil)
	}
	var body struct {
		Error struct{ Message, Type, Code, RequestID string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Error.Code != CodeInvalidPosture || body.Error.Type != gateway.TypeAuthentication {
		t.Fatalf("body %s", w.Body.String())
	}
	for _, leak := range []string{"mallory", "alice", "sub", "kid", "ed-1", "signature", forged[:20]} {
		if strings.Contains(w.Body.String(), leak) {
			t.Fatalf("the error leaks %q: %s", leak, w.Body.String())
		}
	}

	good := sign(t, is.ed, jose.EdDSA, is.edKID, claims("alice"))
	r = httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil)
	r.Header.Set("x-warden-posture", good) // any case
	r.RemoteAddr = "203.0.113.9:4444"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusNoContent || seen == nil {
		t.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
	if seen.Assessment.PostureSource != SourceHeader || seen.Assessment.Posture["managed"] != true {
		t.Fatalf("assessment %+v", seen.Assessment)
	}
	if seen.Assessment.Geo == nil || seen.Assessment.Geo.City != "Berlin" {
		t.Fatalf("geo %+v", seen.Assessment.Geo)
	}
	if seen.Request.Header.Get("X-Warden-Posture") != "" {
		t.Fatal("the header would be forwarded")
	}
}

func TestStageRisk(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		in   float64
		want float64
	}{
		{"zero", 0, 0},
		{"in range", 0.37, 0.37},
		{"one", 1, 1},
		{"negative", -0.5, 0},
		{"above one", 7, 1},
		{"NaN", math.NaN(), 1},
		{"+Inf", math.Inf(1), 1},
		{"-Inf", math.Inf(-1), 1},
		{"negative zero", math.Copysign(0, -1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked string
			s, _ := newTestStage(t, dir, riskFunc(func(id string) float64 { asked = id; return tt.in }))
			ex := exchange(&gateway.Principal{Kind: "service", ID: "svc-r", AuthMethod: "api_key"}, "")
			if _, err := run(s, ex); err != nil {
				t.Fatal(err)
			}
			if asked != "svc-r" {
				t.Fatalf("risk asked for %q", asked)
			}
			if got := ex.Assessment.Risk; got != tt.want || math.Signbit(got) {
				t.Fatalf("risk %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("no source", func(t *testing.T) {
		s, _ := newTestStage(t, dir, nil)
		ex := exchange(&gateway.Principal{ID: "svc"}, "")
		if _, err := run(s, ex); err != nil || ex.Assessment.Risk != 0 {
			t.Fatalf("err %v, risk %v", err, ex.Assessment.Risk)
		}
	})
}

func TestStageWithoutConfig(t *testing.T) {
	s, err := New(config.Context{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Checks()) != 0 {
		t.Fatalf("checks %v without sources", s.Checks())
	}
	// An unverifiable header is still removed, and means nothing.
	ex := exchange(&gateway.Principal{ID: "svc", AuthMethod: "mtls"}, "203.0.113.7", "anything")
	called, err := run(s, ex)
	if err != nil || !called {
		t.Fatalf("err %v, called %v", err, called)
	}
	if a := ex.Assessment; a == nil || a.Posture != nil || a.PostureSource != "" || a.Geo != nil || a.Risk != 0 {
		t.Fatalf("assessment %+v", ex.Assessment)
	}
	if ex.Request.Header.Get(config.DefaultPostureHeader) != "" {
		t.Fatal("header not removed")
	}
}

func TestStageCustomHeader(t *testing.T) {
	dir := t.TempDir()
	is := newIssuer(t, dir)
	pc := postureConfig(is.jwks)
	pc.Header = "x-device-posture"
	s, err := New(config.Context{Posture: &pc}, Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	ex := exchange(&gateway.Principal{ID: "svc"}, "")
	ex.Request.Header.Set("X-Device-Posture", sign(t, is.ec, jose.ES256, is.ecKID, claims("svc")))
	if _, err := run(s, ex); err != nil || ex.Assessment.PostureSource != SourceHeader {
		t.Fatalf("err %v, assessment %+v", err, ex.Assessment)
	}
	if ex.Request.Header.Get("X-Device-Posture") != "" {
		t.Fatal("header not removed")
	}
}

func TestStageFaults(t *testing.T) {
	dir := t.TempDir()
	s, _ := newTestStage(t, dir, nil)

	t.Run("no principal", func(t *testing.T) {
		ex := exchange(nil, "", "x")
		called, err := run(s, ex)
		if err == nil || called {
			t.Fatal("ran without a principal")
		}
		if _, ok := errors.AsType[*gateway.Error](err); ok {
			t.Fatalf("err %v: want an internal error (500)", err)
		}
		if ex.Assessment == nil || ex.Request.Header.Get(config.DefaultPostureHeader) != "" {
			t.Fatal("assessment not set or header kept")
		}
	})
	t.Run("no request", func(t *testing.T) {
		if _, err := run(s, &gateway.Exchange{}); err == nil {
			t.Fatal("ran without a request")
		}
	})
	t.Run("geo closed fails closed", func(t *testing.T) {
		s2, _ := newTestStage(t, dir, nil)
		s2.Close()
		ex := exchange(&gateway.Principal{ID: "svc"}, "203.0.113.7")
		called, err := run(s2, ex)
		ge, ok := errors.AsType[*gateway.Error](err)
		if called || !ok || ge.Status != http.StatusServiceUnavailable || ge.Code != CodeContextUnavailable {
			t.Fatalf("err %v, called %v", err, called)
		}
		// A private source needs no lookup and is not refused.
		if called, err := run(s2, exchange(&gateway.Principal{ID: "svc"}, "10.0.0.1")); err != nil || !called {
			t.Fatalf("private source: err %v", err)
		}
	})

	t.Run("bad config", func(t *testing.T) {
		is := newIssuer(t, t.TempDir())
		for name, ctx := range map[string]config.Context{
			"reserved header": {Posture: &config.Posture{Header: "Authorization", JWKSFile: is.jwks, Audience: "warden", MaxAge: config.DefaultPostureMaxAge}},
			"missing jwks":    {Posture: func() *config.Posture { p := postureConfig(filepath.Join(dir, "none.json")); return &p }()},
			"bad pattern":     {Posture: &config.Posture{Workloads: []config.WorkloadPosture{{SPIFFEID: "spiffe://x/*/y", Posture: config.Attributes{"a": 1}}}}},
			"reserved key":    {Posture: &config.Posture{Workloads: []config.WorkloadPosture{{SPIFFEID: "spiffe://x/y", Posture: config.Attributes{"spiffe_id": "z"}}}}},
			"empty posture":   {Posture: &config.Posture{Workloads: []config.WorkloadPosture{{SPIFFEID: "spiffe://x/y"}}}},
			"missing geo":     {Geo: &config.Geo{CityDB: filepath.Join(dir, "none.mmdb")}},
		} {
			if _, err := New(ctx, Options{}); err == nil {
				t.Errorf("%s: accepted", name)
			}
		}
	})
}

func TestStageWatchAndChecks(t *testing.T) {
	dir := t.TempDir()
	s, _ := newTestStage(t, dir, nil)
	checks := s.Checks()
	if len(checks) != 2 || checks["context_geo"] == nil || checks["context_posture_keys"] == nil {
		t.Fatalf("checks %v", checks)
	}
	for name, c := range checks {
		if err := c(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	writeFile(t, filepath.Join(dir, "city.mmdb"), []byte("broken"))
	writeFile(t, filepath.Join(dir, "posture-jwks.json"), []byte("broken"))
	if err := s.Reload(); err == nil {
		t.Fatal("broken files reloaded")
	}
	for name, c := range checks {
		if c() == nil {
			t.Fatalf("%s: healthy with a broken file", name)
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
