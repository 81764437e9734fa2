package identity

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// stageFixture is a store with an active, a revoked and an expired key.
type stageFixture struct {
	ks                        *KeyStore
	active, revoked, expired  string
	activeRec, revRec, expRec KeyRecord
	now                       time.Time
}

func newStageFixture(t *testing.T) *stageFixture {
	t.Helper()
	f := &stageFixture{ks: openStore(t, tempStorePath(t))}
	created := time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)
	f.ks.now = func() time.Time { return created }
	f.now = created.Add(2 * time.Hour)
	f.active, f.activeRec = mustCreate(t, f.ks, "svc-chat", "", []string{"chat"}, 90*24*time.Hour)
	f.revoked, f.revRec = mustCreate(t, f.ks, "svc-old", "", nil, 0)
	f.expired, f.expRec = mustCreate(t, f.ks, "svc-short", "", nil, time.Hour)
	if err := f.ks.Revoke(f.revRec.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

func newExchange(h http.Header) (*gateway.Exchange, *httptest.ResponseRecorder) {
	req := httptest.NewRequest(http.MethodPost, "https://warden.test/v1/chat/completions", nil)
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	return &gateway.Exchange{ID: "req-1", Request: req, Writer: gateway.NewResponseWriter(rec)}, rec
}

func TestAPIKeyStage(t *testing.T) {
	f := newStageFixture(t)
	_, activeSecret, _ := ParseAPIKey(f.active)
	unknown := KeyPrefix + "ffffffffffffffffffffffff" + f.active[len(KeyPrefix)+KeyIDLen:]

	type hdr = map[string][]string
	tests := []struct {
		name       string
		header     hdr
		wantStatus int // 0: next is called
		wantCode   string
		wantCause  error  // internal cause, for invalid keys
		wantChall  string // WWW-Authenticate
	}{
		{"bearer", hdr{"Authorization": {"Bearer " + f.active}}, 0, "", nil, ""},
		{"lowercase scheme", hdr{"Authorization": {"bearer " + f.active}}, 0, "", nil, ""},
		{"uppercase scheme", hdr{"Authorization": {"BEARER " + f.active}}, 0, "", nil, ""},
		{"several spaces", hdr{"Authorization": {"Bearer   " + f.active}}, 0, "", nil, ""},
		{"x-api-key", hdr{"X-Api-Key": {f.active}}, 0, "", nil, ""},
		{"both, same key", hdr{"Authorization": {"Bearer " + f.active}, "X-Api-Key": {f.active}}, 0, "", nil, ""},

		{"missing", hdr{}, 401, "missing_credentials", nil, `Bearer realm="warden"`},
		{"other headers only", hdr{"Cookie": {"k=" + f.active}}, 401, "missing_credentials", nil, `Bearer realm="warden"`},
		{"two authorization headers", hdr{"Authorization": {"Bearer " + f.active, "Bearer " + f.active}}, 401, "invalid_credentials", nil, `Bearer realm="warden", error="invalid_request"`},
		{"two x-api-key headers", hdr{"X-Api-Key": {f.active, f.active}}, 401, "invalid_credentials", nil, ""},
		{"both, different keys", hdr{"Authorization": {"Bearer " + f.active}, "X-Api-Key": {f.revoked}}, 401, "invalid_credentials", nil, ""},
		{"basic scheme", hdr{"Authorization": {"Basic " + f.active}}, 401, "invalid_credentials", nil, ""},
		{"no scheme", hdr{"Authorization": {f.active}}, 401, "invalid_credentials", nil, ""},
		{"scheme glued to key", hdr{"Authorization": {"Bearer" + f.active}}, 401, "invalid_credentials", nil, ""},
		{"scheme only", hdr{"Authorization": {"Bearer"}}, 401, "invalid_credentials", nil, ""},
		{"empty authorization", hdr{"Authorization": {""}}, 401, "invalid_credentials", nil, ""},
		{"empty x-api-key", hdr{"X-Api-Key": {""}}, 401, "invalid_credentials", nil, ""},
		{"two tokens", hdr{"Authorization": {"Bearer " + f.active + " extra"}}, 401, "invalid_credentials", nil, ""},

		{"revoked", hdr{"Authorization": {"Bearer " + f.revoked}}, 401, "invalid_api_key", ErrRevokedKey, `Bearer realm="warden", error="invalid_token"`},
		{"expired", hdr{"Authorization": {"Bearer " + f.expired}}, 401, "invalid_api_key", ErrExpiredKey, ""},
		{"wrong secret", hdr{"Authorization": {"Bearer " + otherSecret(f.active)}}, 401, "invalid_api_key", ErrWrongSecret, ""},
		{"unknown id", hdr{"Authorization": {"Bearer " + unknown}}, 401, "invalid_api_key", ErrUnknownKey, ""},
		{"unrecognised token shape", hdr{"Authorization": {"Bearer sk-" + activeSecret}}, 401, "invalid_token", ErrNotProven, ""},
		{"revoked via x-api-key", hdr{"X-Api-Key": {f.revoked}}, 401, "invalid_api_key", ErrRevokedKey, ""},
	}
	stage := NewAPIKeyStage(f.ks, func() time.Time { return f.now })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex, rec := newExchange(tt.header)
			called := false
			err := stage.Handle(ex, func(ex *gateway.Exchange) error {
				called = true
				return nil
			})
			if tt.wantStatus == 0 {
				if err != nil || !called {
					t.Fatalf("err = %v, next called = %v", err, called)
				}
				p := ex.Principal
				if p == nil || p.ID != "svc-chat" || p.Kind != gateway.KindService || p.AuthMethod != "api_key" ||
					p.CredentialID != f.activeRec.ID || !p.AuthTime.Equal(f.now) ||
					!p.ExpiresAt.Equal(f.activeRec.ExpiresAt) || len(p.Scopes) != 1 || p.Scopes[0] != "chat" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			if called || ex.Principal != nil {
				t.Fatal("next called or principal set on failure")
			}
			var ge *gateway.Error
			if !errors.As(err, &ge) {
				t.Fatalf("err = %v, want *gateway.Error", err)
			}
			if ge.Status != tt.wantStatus || ge.Code != tt.wantCode || ge.Type != gateway.TypeAuthentication {
				t.Fatalf("error = %d %s %s, want %d %s", ge.Status, ge.Type, ge.Code, tt.wantStatus, tt.wantCode)
			}
			if tt.wantCode == "invalid_api_key" && ge.Message != "invalid or expired API key" {
				t.Fatalf("public message = %q", ge.Message)
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Fatalf("cause = %v, want %v", ge.Err, tt.wantCause)
			}
			chall := rec.Header().Get("WWW-Authenticate")
			if !strings.HasPrefix(chall, `Bearer realm="warden"`) || tt.wantChall != "" && chall != tt.wantChall {
				t.Fatalf("WWW-Authenticate = %q, want %q", chall, tt.wantChall)
			}
			assertNoSecret(t, ge, tt.header)
		})
	}
}

// assertNoSecret checks that neither the audit-facing error nor the client
// body contains any presented secret or whole key, and that the internal
// cause names the key id when a key was parseable.
func assertNoSecret(t *testing.T, ge *gateway.Error, h map[string][]string) {
	t.Helper()
	rec := httptest.NewRecorder()
	gateway.WriteError(rec, "req-1", ge)
	body := rec.Body.String()
	var parsed struct {
		Error struct{ Message, Code string } `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &parsed); err != nil || parsed.Error.Code != ge.Code {
		t.Fatalf("body %q: %v", body, err)
	}
	audit := ge.Error()
	for _, vs := range h {
		for _, v := range vs {
			for _, tok := range strings.Fields(v) {
				if len(tok) < 8 {
					continue
				}
				if strings.Contains(audit, tok) || strings.Contains(body, tok) {
					t.Fatalf("presented credential leaked: audit=%q body=%q", audit, body)
				}
				if id, secret, err := ParseAPIKey(tok); err == nil {
					if strings.Contains(audit, secret) || strings.Contains(body, secret) {
						t.Fatalf("secret leaked: audit=%q body=%q", audit, body)
					}
					if ge.Code == "invalid_api_key" && !strings.Contains(audit, id) {
						t.Fatalf("audit error %q does not name the key id %s", audit, id)
					}
					if strings.Contains(body, id) {
						t.Fatalf("client body names the key id: %q", body)
					}
				}
			}
		}
	}
}

func TestAPIKeyStageIdenticalPublicAnswers(t *testing.T) {
	f := newStageFixture(t)
	stage := NewAPIKeyStage(f.ks, func() time.Time { return f.now })
	var bodies []string
	for _, key := range []string{f.revoked, f.expired, otherSecret(f.active),
		KeyPrefix + "ffffffffffffffffffffffff" + f.active[len(KeyPrefix)+KeyIDLen:], "wk_short"} {
		ex, _ := newExchange(http.Header{"Authorization": {"Bearer " + key}})
		err := stage.Handle(ex, func(*gateway.Exchange) error { return nil })
		rec := httptest.NewRecorder()
		gateway.WriteError(rec, "same-id", gateway.AsError(err))
		bodies = append(bodies, rec.Body.String())
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("public answers differ:\n%s\n%s", bodies[0], b)
		}
	}
}

func TestAPIKeyStageStoreUnavailable(t *testing.T) {
	f := newStageFixture(t)
	stage := NewAPIKeyStage(f.ks, func() time.Time { return f.now })
	handle := func() (*httptest.ResponseRecorder, bool, error) {
		ex, rec := newExchange(http.Header{"Authorization": {"Bearer " + f.active}})
		called := false
		err := stage.Handle(ex, func(*gateway.Exchange) error { called = true; return nil })
		return rec, called, err
	}
	if _, called, err := handle(); err != nil || !called {
		t.Fatalf("before corruption: %v", err)
	}

	path := f.ks.Path()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{corrupt"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.ks.Reload(); err == nil {
		t.Fatal("Reload accepted a corrupt file")
	}
	rec, called, err := handle()
	var ge *gateway.Error
	if called || !errors.As(err, &ge) || ge.Status != http.StatusServiceUnavailable || ge.Code != "identity_unavailable" {
		t.Fatalf("in error state: err = %v, next called = %v", err, called)
	}
	if !errors.Is(err, ErrStoreUnavailable) || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("cause = %v, Retry-After = %q", err, rec.Header().Get("Retry-After"))
	}
	if strings.Contains(ge.Message, path) {
		t.Fatal("public message names the store path")
	}
	// Requests without credentials are still told they lack them.
	ex, _ := newExchange(http.Header{})
	if err := stage.Handle(ex, func(*gateway.Exchange) error { return nil }); gateway.AsError(err).Status != 401 {
		t.Fatalf("missing credentials in error state: %v", err)
	}

	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, called, err := handle(); err != nil || !called {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestAPIKeyStageNextError(t *testing.T) {
	f := newStageFixture(t)
	stage := NewAPIKeyStage(f.ks, nil)
	ex, _ := newExchange(http.Header{"X-Api-Key": {f.active}})
	boom := errors.New("boom")
	if err := stage.Handle(ex, func(*gateway.Exchange) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want next's error", err)
	}
	if err := stage.Handle(&gateway.Exchange{}, func(*gateway.Exchange) error { return nil }); err == nil {
		t.Fatal("exchange without request accepted")
	}
}

func FuzzExtractKey(f *testing.F) {
	f.Add("Bearer "+testKey, "", uint8(1), uint8(0))
	f.Add("", testKey, uint8(0), uint8(1))
	f.Add("bearer "+testKey, testKey, uint8(1), uint8(1))
	f.Add("Basic dXNlcjpwYXNz", "", uint8(1), uint8(0))
	f.Add("Bearer", "", uint8(2), uint8(0))
	f.Add("Bearer  \t x", "x", uint8(1), uint8(2))
	ks, err := OpenKeyStore(tempStorePath(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, authz, apiKey string, nAuthz, nAPI uint8) {
		nAuthz, nAPI = nAuthz%3, nAPI%3
		h := http.Header{}
		for range nAuthz {
			h.Add("Authorization", authz)
		}
		for range nAPI {
			h.Add("X-Api-Key", apiKey)
		}
		key, err := extractKey(h)
		switch {
		case nAuthz == 0 && nAPI == 0:
			if !errors.Is(err, errNoCredentials) {
				t.Fatalf("no headers: %q, %v", key, err)
			}
		case nAuthz > 1 || nAPI > 1:
			if err == nil {
				t.Fatal("duplicate headers accepted")
			}
		}
		if err != nil {
			if key != "" {
				t.Fatal("key returned with an error")
			}
			if len(authz) >= 8 && strings.Contains(err.Error(), authz) || len(apiKey) >= 8 && strings.Contains(err.Error(), apiKey) {
				t.Fatalf("error echoes header content: %v", err)
			}
			return
		}
		if key == "" || strings.ContainsAny(key, " \t\r\n") {
			t.Fatalf("extracted %q", key)
		}
		if nAuthz == 1 {
			if !strings.HasPrefix(strings.ToLower(authz), "bearer ") || !strings.HasSuffix(authz, key) {
				t.Fatalf("extracted %q from Authorization %q", key, authz)
			}
			if nAPI == 1 && apiKey != key {
				t.Fatal("conflicting headers accepted")
			}
		} else if key != apiKey {
			t.Fatalf("extracted %q from X-Api-Key %q", key, apiKey)
		}
		// Whatever was extracted must be handled without panic and never
		// authenticate against an empty store.
		if _, err := ks.Authenticate(key, time.Now()); err == nil {
			t.Fatal("authenticated against an empty store")
		}
	})
}
