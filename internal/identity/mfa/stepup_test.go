package mfa

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// testIssuer is a small ElevatedIssuer: it records what it was asked and
// returns a fixed token, or fails.
type testIssuer struct {
	fail  error
	got   *gateway.Principal
	ttl   time.Duration
	calls int
}

func (ti *testIssuer) IssueElevated(p gateway.Principal, ttl time.Duration, now time.Time) (string, time.Time, error) {
	ti.calls++
	if ti.fail != nil {
		return "", time.Time{}, ti.fail
	}
	ti.got, ti.ttl = &p, ttl
	return "elevated-token", now.Add(ttl), nil
}

func user(id string) *gateway.Principal {
	return &gateway.Principal{Kind: gateway.KindUser, ID: id, AuthMethod: "jwt", Scopes: []string{"chat"}}
}

func newExchange(method, contentType, body string, p *gateway.Principal) (*gateway.Exchange, *httptest.ResponseRecorder) {
	req := httptest.NewRequest(method, VerifyPath, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	return &gateway.Exchange{ID: "req-1", Request: req, Writer: gateway.NewResponseWriter(rec), Body: []byte(body), Principal: p}, rec
}

func TestStepUp(t *testing.T) {
	const ttl = 7 * time.Minute
	type want struct {
		status    int
		code      string // gateway.Error code; "" for success
		challenge string // WWW-Authenticate
		cause     string // substring of the internal cause
	}
	tests := []struct {
		name        string
		method      string
		contentType string
		body        func(secret string) string // nil: the current code
		principal   *gateway.Principal
		prepare     func(t *testing.T, su *StepUp, ti *testIssuer, secret string)
		want        want
	}{
		{name: "valid code", want: want{status: 200}},
		{name: "content type with charset", contentType: "application/json; charset=utf-8", want: want{status: 200}},
		{name: "wrong code", body: func(secret string) string { return `{"code":"` + wrongCode(t, secret, base) + `"}` },
			want: want{401, "invalid_mfa_code", invalidCodeChallenge, "invalid code"}},
		{name: "replayed code", prepare: func(t *testing.T, su *StepUp, _ *testIssuer, secret string) {
			if err := su.store.Verify("alice", codeAt(t, secret, base), base); err != nil {
				t.Fatal(err)
			}
		}, want: want{401, "invalid_mfa_code", invalidCodeChallenge, "replayed"}},
		{name: "malformed code", body: func(string) string { return `{"code":"12 456"}` },
			want: want{401, "invalid_mfa_code", invalidCodeChallenge, "ASCII digits"}},
		{name: "number instead of string", body: func(string) string { return `{"code":123456}` },
			want: want{400, "invalid_request", "", "only a string"}},
		{name: "bad JSON", body: func(string) string { return `{"code":` }, want: want{400, "invalid_request", "", "not valid JSON"}},
		{name: "empty body", body: func(string) string { return `` }, want: want{400, "invalid_request", "", "empty body"}},
		{name: "missing code", body: func(string) string { return `{}` }, want: want{400, "invalid_request", "", "required"}},
		{name: "unknown field", body: func(secret string) string { return `{"code":"` + codeAt(t, secret, base) + `","user":"bob"}` },
			want: want{400, "invalid_request", "", "only a string"}},
		{name: "trailing data", body: func(secret string) string { return `{"code":"` + codeAt(t, secret, base) + `"} {}` },
			want: want{400, "invalid_request", "", "trailing"}},
		{name: "too large", body: func(string) string { return `{"code":"` + strings.Repeat("1", maxVerifyBody) + `"}` },
			want: want{413, "request_too_large", "", ""}},
		{name: "form post", contentType: "application/x-www-form-urlencoded", want: want{415, "unsupported_media_type", "", ""}},
		{name: "no content type", contentType: "-", want: want{415, "unsupported_media_type", "", ""}},
		{name: "GET", method: http.MethodGet, want: want{405, "method_not_allowed", "", ""}},
		{name: "service", principal: &gateway.Principal{Kind: gateway.KindService, ID: "alice"},
			want: want{403, "mfa_not_applicable", "", "only users"}},
		{name: "agent for a user", principal: &gateway.Principal{Kind: gateway.KindAgent, ID: "bot", OnBehalfOf: "alice"},
			want: want{403, "mfa_not_applicable", "", "only users"}},
		{name: "no principal", principal: &gateway.Principal{}, // replaced by nil below
			want: want{401, "missing_credentials", `Bearer realm="warden"`, "without a principal"}},
		{name: "not enrolled", principal: user("bob"), want: want{403, "mfa_not_enrolled", "", "not enrolled"}},
		{name: "issuer fails", prepare: func(_ *testing.T, _ *StepUp, ti *testIssuer, _ string) {
			ti.fail = errors.New("signing key unavailable")
		},
			want: want{503, "token_unavailable", "", "signing key unavailable"}},
		{name: "too many attempts", prepare: func(t *testing.T, su *StepUp, _ *testIssuer, secret string) {
			for range MaxFailures {
				_ = su.store.Verify("alice", wrongCode(t, secret, base), base)
			}
		}, want: want{429, "too_many_mfa_attempts", "", "too many"}},
		{name: "store unavailable", prepare: func(_ *testing.T, su *StepUp, _ *testIssuer, _ string) {
			su.store = openStoreAt(t, su.store.Path()+".other") // another key's file at a fresh path
			if err := localfile.WriteAtomic(su.store.Path(), []byte("{")); err != nil {
				t.Fatal(err)
			}
		}, want: want{503, "mfa_unavailable", "", "corrupt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, secret := newStore(t)
			ti := &testIssuer{}
			su := NewStepUp(s, ti, ttl)
			su.now = func() time.Time { return base }
			if tt.prepare != nil {
				tt.prepare(t, su, ti, secret)
			}
			body := `{"code":"` + codeAt(t, secret, base) + `"}`
			if tt.body != nil {
				body = tt.body(secret)
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			ct := tt.contentType
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			p := tt.principal
			switch {
			case p == nil:
				p = user("alice")
			case p.Kind == "":
				p = nil
			}
			ex, rec := newExchange(method, ct, body, p)
			err := su.ServeExchange(ex)

			if tt.want.status == 200 {
				if err != nil {
					t.Fatalf("ServeExchange = %v", err)
				}
				if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" ||
					!strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
					t.Fatalf("status %d, headers %v", rec.Code, rec.Header())
				}
				var got tokenResponse
				if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
					t.Fatalf("body %q: %v", rec.Body, err)
				}
				if got != (tokenResponse{AccessToken: "elevated-token", TokenType: "Bearer", ExpiresIn: int64(ttl / time.Second)}) {
					t.Fatalf("body = %+v", got)
				}
				if ti.got == nil || !ti.got.MFA || ti.got.ID != "alice" || ti.got.Kind != gateway.KindUser || ti.ttl != ttl {
					t.Fatalf("issuer got %+v, ttl %s", ti.got, ti.ttl)
				}
				if ex.Principal.MFA {
					t.Fatal("the exchange's principal was modified")
				}
				return
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) {
				t.Fatalf("ServeExchange = %v (%T), want *gateway.Error", err, err)
			}
			if ge.Status != tt.want.status || ge.Code != tt.want.code {
				t.Fatalf("error = %d %s (%v), want %d %s", ge.Status, ge.Code, ge, tt.want.status, tt.want.code)
			}
			if tt.want.cause != "" && (ge.Err == nil || !strings.Contains(ge.Err.Error(), tt.want.cause)) {
				t.Fatalf("cause = %v, want it to mention %q", ge.Err, tt.want.cause)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.want.challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, tt.want.challenge)
			}
			if rec.Body.Len() != 0 || ex.Writer.Started() {
				t.Fatalf("the handler wrote the error itself: %q", rec.Body)
			}
			if tt.want.status == 429 && rec.Header().Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			if tt.want.status >= 500 && tt.want.code != "token_unavailable" && ti.calls != 0 {
				t.Fatal("a token was issued although verification failed")
			}
			if tt.want.status < 500 && ti.calls != 0 {
				t.Fatal("a token was issued for a refused request")
			}
		})
	}
}

// openStoreAt opens an empty store with a fresh key.
func openStoreAt(t *testing.T, path string) *Store {
	t.Helper()
	return openStore(t, path, newKey(t))
}

func TestStepUpWrongAndReplayedLookAlike(t *testing.T) {
	s, _, _, secret := newStore(t)
	su := NewStepUp(s, &testIssuer{}, 0)
	su.now = func() time.Time { return base }
	code := codeAt(t, secret, base)
	ex, _ := newExchange(http.MethodPost, "application/json", `{"code":"`+code+`"}`, user("alice"))
	if err := su.ServeExchange(ex); err != nil {
		t.Fatal(err)
	}
	public := func(body string) (string, *gateway.Error) {
		ex, _ := newExchange(http.MethodPost, "application/json", body, user("alice"))
		ge := gateway.AsError(su.ServeExchange(ex))
		w := httptest.NewRecorder()
		gateway.WriteError(w, "req-1", ge)
		return w.Body.String(), ge
	}
	replayBody, replay := public(`{"code":"` + code + `"}`)
	wrongBody, wrong := public(`{"code":"` + wrongCode(t, secret, base) + `"}`)
	if replayBody != wrongBody {
		t.Fatalf("a replayed code is distinguishable from a wrong one:\n%s\n%s", replayBody, wrongBody)
	}
	if !errors.Is(replay, ErrReplayedCode) || !errors.Is(wrong, ErrInvalidCode) {
		t.Fatalf("causes: %v / %v", replay.Err, wrong.Err)
	}
	if strings.Contains(replayBody, code) || strings.Contains(replay.Error(), code) {
		t.Fatal("the code appears in the response or the error")
	}
}

func TestStepUpUnconfigured(t *testing.T) {
	ex, _ := newExchange(http.MethodPost, "application/json", `{"code":"123456"}`, user("alice"))
	for name, su := range map[string]*StepUp{"nil": nil, "zero": {}, "no issuer": NewStepUp(&Store{}, nil, 0)} {
		if err := su.ServeExchange(ex); err == nil {
			t.Errorf("%s: ServeExchange succeeded", name)
		}
	}
	s, _, _, _ := newStore(t)
	if err := NewStepUp(s, &testIssuer{}, 0).ServeExchange(nil); err == nil {
		t.Error("nil exchange accepted")
	}
	if got := NewStepUp(s, &testIssuer{}, -1).ttl; got != DefaultElevatedTTL {
		t.Errorf("default TTL %s", got)
	}
}

func TestStepUpRequired(t *testing.T) {
	ex, rec := newExchange(http.MethodPost, "application/json", `{}`, user("alice"))
	ge := StepUpRequired(ex)
	if ge.Status != http.StatusUnauthorized || ge.Type != gateway.TypeAuthentication || ge.Code != "mfa_required" ||
		!strings.Contains(ge.Message, VerifyPath) {
		t.Fatalf("StepUpRequired = %+v", ge)
	}
	h := rec.Header().Get("WWW-Authenticate")
	for _, part := range []string{`Bearer realm="warden"`, `error="insufficient_user_authentication"`, `acr_values="mfa"`, `error_description="step-up required"`} {
		if !strings.Contains(h, part) {
			t.Fatalf("WWW-Authenticate %q lacks %s", h, part)
		}
	}
	if ge.Err == nil || !strings.Contains(ge.Err.Error(), "user alice") {
		t.Fatalf("cause = %v", ge.Err)
	}
	// The chain writes the body: machine-readable code, the request id.
	w := httptest.NewRecorder()
	gateway.WriteError(w, ex.ID, ge)
	var body struct {
		Error struct{ Code, Type, Message, RequestID string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "mfa_required" {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if ge := StepUpRequired(nil); ge == nil || ge.Code != "mfa_required" {
		t.Fatal("StepUpRequired(nil) must still return the error")
	}
}

func TestRequireMFA(t *testing.T) {
	elevated := user("alice")
	elevated.MFA = true
	tests := []struct {
		name      string
		p         *gateway.Principal
		value     any
		want      string // "" ok, "mfa_required", or "fault"
		challenge bool
	}{
		{"no second factor", user("alice"), true, "mfa_required", true},
		{"elevated", elevated, true, "", false},
		{"not required", user("alice"), false, "", false},
		{"no principal", nil, true, "mfa_required", true},
		{"string value", elevated, "true", "fault", false},
		{"nil value", elevated, nil, "fault", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, rec := newExchange(http.MethodPost, "application/json", `{}`, tt.p)
			err := RequireMFA(ex, tt.value)
			var ge *gateway.Error
			switch tt.want {
			case "":
				if err != nil {
					t.Fatalf("RequireMFA = %v", err)
				}
			case "fault":
				if err == nil || errors.As(err, &ge) {
					t.Fatalf("RequireMFA = %v, want a plain error (500, fail closed)", err)
				}
			default:
				if !errors.As(err, &ge) || ge.Code != tt.want || ge.Status != http.StatusUnauthorized {
					t.Fatalf("RequireMFA = %v, want %s", err, tt.want)
				}
			}
			if got := rec.Header().Get("WWW-Authenticate") == StepUpChallenge; got != tt.challenge {
				t.Fatalf("challenge set = %v, want %v", got, tt.challenge)
			}
		})
	}
}
