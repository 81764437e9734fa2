package token

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

type exchangeKit struct {
	*kit
	ex    *Exchanger
	users map[string]gateway.Principal
}

func newExchangeKit(t *testing.T) *exchangeKit {
	t.Helper()
	k := newKit(t)
	users := map[string]gateway.Principal{
		"alice": {Kind: "user", ID: "alice", AuthMethod: "jwt", Issuer: "https://idp.example",
			Scopes: []string{"inference:chat", "tools:search", "admin"}, Groups: []string{"eng"}, Roles: []string{"dev"},
			ExpiresAt: t0.Add(time.Hour), MFA: true},
		"alice-soon": {Kind: "user", ID: "alice", AuthMethod: "jwt", Scopes: []string{"inference:chat"}, ExpiresAt: t0.Add(90 * time.Second)},
		"alice-gone": {Kind: "user", ID: "alice", AuthMethod: "jwt", Scopes: []string{"inference:chat"}, ExpiresAt: t0.Add(500 * time.Millisecond)},
		"bob":        {Kind: "user", ID: "bob", AuthMethod: "jwt", Scopes: []string{"inference:chat"}, ExpiresAt: t0.Add(time.Hour)},
		"nokind":     {ID: "ghost", AuthMethod: "jwt", Scopes: []string{"inference:chat"}},
		"svc":        {Kind: "service", ID: "svc-batch", AuthMethod: "jwt", Scopes: []string{"inference:chat"}},
	}
	now := func() time.Time { return t0 }
	// The test callers' API keys (k1 and the like) are all good.
	k.auth.CheckParents(func(string, string, time.Time) error { return nil })
	ex := NewExchanger(k.iss, verifyWith(k.auth, users, now), testCfg)
	ex.now = now
	return &exchangeKit{kit: k, ex: ex, users: users}
}

type exchangeResult struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
	err    error
}

func (k *exchangeKit) do(t *testing.T, caller *gateway.Principal, method, contentType string, form url.Values) exchangeResult {
	t.Helper()
	return k.doRaw(t, caller, method, contentType, form.Encode())
}

func (k *exchangeKit) doRaw(t *testing.T, caller *gateway.Principal, method, contentType, body string) exchangeResult {
	t.Helper()
	r := httptest.NewRequest(method, "/v1/warden/token", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	ex := &gateway.Exchange{Request: r, Writer: gateway.NewResponseWriter(rec), Body: []byte(body), Principal: caller}
	err := k.ex.ServeExchange(ex)
	res := exchangeResult{status: rec.Code, header: rec.Header(), raw: rec.Body.String(), err: err}
	if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
		t.Fatalf("response is not JSON: %q", rec.Body.String())
	}
	return res
}

const formCT = "application/x-www-form-urlencoded"

func exchangeForm(kv ...string) url.Values {
	v := url.Values{"grant_type": {GrantTypeTokenExchange}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestExchangeIssues(t *testing.T) {
	k := newExchangeKit(t)
	agentKey := &gateway.Principal{Kind: "agent", ID: "agent-planner", AuthMethod: "api_key", CredentialID: "k1",
		Scopes: []string{"inference:chat", "tools:*"}, ExpiresAt: t0.Add(90 * 24 * time.Hour)}
	service := &gateway.Principal{Kind: "service", ID: "svc-billing", AuthMethod: "api_key",
		Scopes: []string{"inference:chat", "models:read", "seg:*"}}
	// An agent token (agent-planner for alice) presented by its own actor.
	agentTok := k.issue(t, Claims{Subject: "alice", Actor: "agent-planner", Scopes: []string{"inference:chat", "tools:search"}}, 0, t0)
	agentTokPrincipal, err := k.auth.Verify(agentTok, t0)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		caller     *gateway.Principal
		form       url.Values
		want       gateway.Principal // Kind, ID, OnBehalfOf, Scopes, Groups, MFA checked
		wantScope  string
		wantExpiry time.Duration
	}{
		{
			name:       "self-narrowing",
			caller:     service,
			form:       exchangeForm("scope", "models:read seg:training"),
			want:       gateway.Principal{Kind: "service", ID: "svc-billing", Scopes: []string{"models:read", "seg:training"}},
			wantScope:  "models:read seg:training",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:       "self, default scope is everything held",
			caller:     service,
			form:       exchangeForm("expires_in", "60"),
			want:       gateway.Principal{Kind: "service", ID: "svc-billing", Scopes: []string{"inference:chat", "models:read", "seg:*"}},
			wantScope:  "inference:chat models:read seg:*",
			wantExpiry: time.Minute,
		},
		{
			name:       "expires_in capped at max_ttl",
			caller:     service,
			form:       exchangeForm("scope", "inference:chat", "expires_in", "86400"),
			want:       gateway.Principal{Kind: "service", ID: "svc-billing", Scopes: []string{"inference:chat"}},
			wantScope:  "inference:chat",
			wantExpiry: time.Hour,
		},
		{
			name:   "delegation: agent for user, intersection of both",
			caller: agentKey,
			form: exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT,
				"scope", "inference:chat tools:search admin"),
			want: gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice",
				Scopes: []string{"inference:chat", "tools:search"}, Groups: []string{"eng"}, Roles: []string{"dev"}},
			wantScope:  "inference:chat tools:search",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:   "delegation, default scope is the intersection",
			caller: agentKey,
			form:   exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeAccessToken),
			want: gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice",
				Scopes: []string{"inference:chat", "tools:search"}, Groups: []string{"eng"}, Roles: []string{"dev"}},
			wantScope:  "inference:chat tools:search",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:   "delegation by a service caller",
			caller: service,
			form:   exchangeForm("subject_token", "oidc:bob", "subject_token_type", TokenTypeJWT),
			want: gateway.Principal{Kind: "agent", ID: "svc-billing", OnBehalfOf: "bob",
				Scopes: []string{"inference:chat"}},
			wantScope:  "inference:chat",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:   "delegation capped by the subject's expiry",
			caller: agentKey,
			form:   exchangeForm("subject_token", "oidc:alice-soon", "subject_token_type", TokenTypeJWT, "expires_in", "600"),
			want: gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice",
				Scopes: []string{"inference:chat"}},
			wantScope:  "inference:chat",
			wantExpiry: 90 * time.Second,
		},
		{
			name:   "agent token narrowed by its actor keeps the user",
			caller: &agentTokPrincipal,
			form:   exchangeForm("scope", "tools:search"),
			want: gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice",
				Scopes: []string{"tools:search"}},
			wantScope:  "tools:search",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:   "agent token as its own subject",
			caller: &agentTokPrincipal,
			form:   exchangeForm("subject_token", agentTok, "subject_token_type", TokenTypeAccessToken, "expires_in", "3600"),
			want: gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice",
				Scopes: []string{"inference:chat", "tools:search"}},
			wantScope:  "inference:chat tools:search",
			wantExpiry: 5 * time.Minute, // capped by the agent token's own expiry
		},
		{
			name:   "self with own subject token keeps mfa",
			caller: &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Issuer: "https://idp.example", Scopes: []string{"inference:chat", "admin"}},
			form:   exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT, "scope", "admin"),
			want: gateway.Principal{Kind: "user", ID: "alice", Scopes: []string{"admin"}, Groups: []string{"eng"}, Roles: []string{"dev"},
				MFA: true},
			wantScope:  "admin",
			wantExpiry: 5 * time.Minute,
		},
		{
			name:       "audience warden accepted",
			caller:     service,
			form:       exchangeForm("scope", "inference:chat", "audience", "warden", "requested_token_type", TokenTypeAccessToken),
			want:       gateway.Principal{Kind: "service", ID: "svc-billing", Scopes: []string{"inference:chat"}},
			wantScope:  "inference:chat",
			wantExpiry: 5 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := k.do(t, tt.caller, http.MethodPost, formCT, tt.form)
			if res.err != nil || res.status != http.StatusOK {
				t.Fatalf("status %d, err %v, body %s", res.status, res.err, res.raw)
			}
			if res.header.Get("Cache-Control") != "no-store" || res.header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", res.header)
			}
			if res.body["issued_token_type"] != TokenTypeAccessToken || res.body["token_type"] != "Bearer" {
				t.Fatalf("body %v", res.body)
			}
			if got := res.body["scope"]; got != tt.wantScope {
				t.Fatalf("scope %q, want %q", got, tt.wantScope)
			}
			if got := time.Duration(res.body["expires_in"].(float64)) * time.Second; got != tt.wantExpiry {
				t.Fatalf("expires_in %v, want %v", got, tt.wantExpiry)
			}
			p, err := k.auth.Verify(res.body["access_token"].(string), t0)
			if err != nil {
				t.Fatalf("issued token does not verify: %v", err)
			}
			w := tt.want
			if p.Kind != w.Kind || p.ID != w.ID || p.OnBehalfOf != w.OnBehalfOf || !slices.Equal(p.Scopes, w.Scopes) ||
				!slices.Equal(p.Groups, w.Groups) || !slices.Equal(p.Roles, w.Roles) || p.MFA != w.MFA {
				t.Fatalf("principal\n got %+v\nwant %+v", p, w)
			}
			if !p.ExpiresAt.Equal(t0.Add(tt.wantExpiry)) {
				t.Fatalf("token exp %v, want %v", p.ExpiresAt, t0.Add(tt.wantExpiry))
			}
		})
	}
}

func TestExchangeErrors(t *testing.T) {
	k := newExchangeKit(t)
	agent := &gateway.Principal{Kind: "agent", ID: "agent-planner", AuthMethod: "api_key", Scopes: []string{"inference:chat", "tools:*"}}
	other := &gateway.Principal{Kind: "agent", ID: "agent-other", AuthMethod: "api_key", Scopes: []string{"inference:chat"}}
	agentTok := k.issue(t, Claims{Subject: "alice", Actor: "agent-planner", Scopes: []string{"inference:chat"}}, 0, t0)
	actingForBob := &gateway.Principal{Kind: "agent", ID: "agent-x", OnBehalfOf: "bob", AuthMethod: "token", Scopes: []string{"inference:chat"}}
	expiring := &gateway.Principal{Kind: "service", ID: "svc", AuthMethod: "token", Scopes: []string{"a"}, ExpiresAt: t0.Add(time.Millisecond)}
	noScopes := &gateway.Principal{Kind: "service", ID: "svc", AuthMethod: "api_key"}

	tests := []struct {
		name        string
		caller      *gateway.Principal
		method      string
		contentType string
		body        string
		status      int
		code        string
	}{
		{"wrong content type", agent, "POST", "application/json", `{"grant_type":"x"}`, 400, "invalid_request"},
		{"no content type", agent, "POST", "", exchangeForm().Encode(), 400, "invalid_request"},
		{"non-utf8 charset", agent, "POST", formCT + "; charset=iso-8859-1", exchangeForm().Encode(), 400, "invalid_request"},
		{"GET", agent, "GET", formCT, exchangeForm().Encode(), 405, "invalid_request"},
		{"no caller", nil, "POST", formCT, exchangeForm().Encode(), 401, "invalid_client"},
		{"no grant_type", agent, "POST", formCT, "scope=a", 400, "invalid_request"},
		{"wrong grant_type", agent, "POST", formCT, "grant_type=client_credentials", 400, "unsupported_grant_type"},
		{"repeated parameter", agent, "POST", formCT, exchangeForm().Encode() + "&scope=a&scope=b", 400, "invalid_request"},
		{"malformed form", agent, "POST", formCT, "grant_type=%zz", 400, "invalid_request"},
		{"subject_token without type", agent, "POST", formCT, exchangeForm("subject_token", "oidc:alice").Encode(), 400, "invalid_request"},
		{"unknown subject_token_type", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:alice", "subject_token_type", "urn:ietf:params:oauth:token-type:saml2").Encode(), 400, "invalid_request"},
		{"type without subject_token", agent, "POST", formCT, exchangeForm("subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_request"},
		{"actor_token", agent, "POST", formCT, exchangeForm("actor_token", "x", "actor_token_type", TokenTypeJWT).Encode(), 400, "invalid_request"},
		{"requested refresh token", agent, "POST", formCT,
			exchangeForm("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token").Encode(), 400, "invalid_request"},
		{"bad expires_in", agent, "POST", formCT, exchangeForm("expires_in", "-5").Encode(), 400, "invalid_request"},
		{"other audience", agent, "POST", formCT, exchangeForm("audience", "https://api.example").Encode(), 400, "invalid_target"},
		{"resource", agent, "POST", formCT, exchangeForm("resource", "https://api.example").Encode(), 400, "invalid_target"},
		{"scope not held", agent, "POST", formCT, exchangeForm("scope", "admin").Encode(), 400, "invalid_scope"},
		{"invalid scope token", agent, "POST", formCT, exchangeForm("scope", `a"b`).Encode(), 400, "invalid_scope"},
		{"scope held by caller, not by subject", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:bob", "subject_token_type", TokenTypeJWT, "scope", "tools:search").Encode(), 400, "invalid_scope"},
		{"scope held by subject, not by caller", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT, "scope", "admin").Encode(), 400, "invalid_scope"},
		{"wildcard request not covered by exact holder", other, "POST", formCT, exchangeForm("scope", "inference:*").Encode(), 400, "invalid_scope"},
		{"no scopes at all", noScopes, "POST", formCT, exchangeForm().Encode(), 400, "invalid_scope"},
		{"bad subject token", agent, "POST", formCT,
			exchangeForm("subject_token", "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"unknown subject", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:mallory", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"subject verifier down", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc-down", "subject_token_type", TokenTypeJWT).Encode(), 503, "temporarily_unavailable"},
		{"subject already expired", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:alice-gone", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"caller credential expiring", expiring, "POST", formCT, exchangeForm().Encode(), 400, "invalid_grant"},
		{"re-delegating a delegation token", other, "POST", formCT,
			exchangeForm("subject_token", agentTok, "subject_token_type", TokenTypeAccessToken).Encode(), 400, "invalid_grant"},
		{"delegating a service", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:svc", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"a user acting for another user", &gateway.Principal{Kind: "user", ID: "bob", AuthMethod: "jwt", Issuer: "https://idp.example",
			Scopes: []string{"inference:chat"}}, "POST", formCT,
			exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"subject without kind", agent, "POST", formCT,
			exchangeForm("subject_token", "oidc:nokind", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
		{"caller without kind", &gateway.Principal{ID: "x", Scopes: []string{"a"}}, "POST", formCT, exchangeForm().Encode(), 500, "server_error"},
		{"acting for another user", actingForBob, "POST", formCT,
			exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT).Encode(), 400, "invalid_grant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := k.doRaw(t, tt.caller, tt.method, tt.contentType, tt.body)
			if res.status != tt.status || res.body["error"] != tt.code {
				t.Fatalf("status %d body %s; want %d %s", res.status, res.raw, tt.status, tt.code)
			}
			if _, ok := res.body["error_description"].(string); !ok {
				t.Fatalf("no error_description: %s", res.raw)
			}
			if res.header.Get("Cache-Control") != "no-store" {
				t.Fatal("error response without Cache-Control: no-store")
			}
			var ge *gateway.Error
			if !errors.As(res.err, &ge) || ge.Status != tt.status || ge.Code != tt.code {
				t.Fatalf("returned error %v; want *gateway.Error %d %s", res.err, tt.status, tt.code)
			}
			if strings.Contains(res.raw, agentTok) || strings.Contains(res.raw, "eyJhbGciOiJIUzI1NiJ9") ||
				strings.Contains(res.err.Error(), agentTok) {
				t.Fatal("a token was echoed")
			}
		})
	}
}

func TestExchangeWithoutSigningKey(t *testing.T) {
	dir := t.TempDir()
	keys, err := OpenKeySet(dir+"/k.json", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	k := &exchangeKit{ex: NewExchanger(NewIssuer(keys, testCfg), nil, testCfg)}
	caller := &gateway.Principal{Kind: "service", ID: "svc", Scopes: []string{"a"}}
	res := k.do(t, caller, "POST", formCT, exchangeForm())
	if res.status != http.StatusServiceUnavailable || res.body["error"] != "temporarily_unavailable" {
		t.Fatalf("status %d %s", res.status, res.raw)
	}
	// Without a subject verifier, subject tokens are refused.
	res = k.do(t, caller, "POST", formCT, exchangeForm("subject_token", "x", "subject_token_type", TokenTypeJWT))
	if res.status != http.StatusBadRequest || res.body["error"] != "invalid_request" {
		t.Fatalf("status %d %s", res.status, res.raw)
	}
}

func TestHoldsAndIntersect(t *testing.T) {
	holdsTests := []struct {
		have []string
		s    string
		want bool
	}{
		{[]string{"a"}, "a", true},
		{[]string{"a"}, "b", false},
		{[]string{"seg:*"}, "seg:x", true},
		{[]string{"seg:*"}, "seg:*", true},
		{[]string{"seg:*"}, "seg:", false},
		{[]string{"seg:*"}, "segx", false},
		{[]string{"seg:*"}, "other:x", false},
		{[]string{"seg:x"}, "seg:*", false},
		{[]string{"*"}, "anything", false},
		{nil, "a", false},
	}
	for _, tt := range holdsTests {
		if got := holds(tt.have, tt.s); got != tt.want {
			t.Errorf("holds(%v, %q) = %v", tt.have, tt.s, got)
		}
	}
	intersectTests := []struct {
		req     []string
		given   bool
		holders [][]string
		want    []string
	}{
		{nil, false, [][]string{{"a", "b"}}, []string{"a", "b"}},
		{nil, false, [][]string{{"seg:*", "a"}, {"seg:x", "b"}}, []string{"seg:x"}},
		{nil, false, [][]string{{"seg:*"}, {"seg:*"}}, []string{"seg:*"}},
		{[]string{"seg:y", "a"}, true, [][]string{{"seg:*", "a"}, {"seg:*"}}, []string{"seg:y"}},
		{[]string{}, true, [][]string{{"a"}}, nil},
		{nil, false, [][]string{{"a b", `x"`}}, nil},
	}
	for _, tt := range intersectTests {
		if got := intersectScopes(tt.req, tt.given, tt.holders...); !slices.Equal(got, tt.want) {
			t.Errorf("intersectScopes(%v, %v, %v) = %v, want %v", tt.req, tt.given, tt.holders, got, tt.want)
		}
	}
}

// TestExchangeKeepsOriginIssuer: a token exchanged from an OIDC login keeps
// the login's issuer as its principal's issuer (src_iss), a delegation token
// the user's, and a token from an API key is warden's.
func TestExchangeKeepsOriginIssuer(t *testing.T) {
	k := newExchangeKit(t)
	for _, tc := range []struct {
		name   string
		caller *gateway.Principal
		form   url.Values
		want   string
	}{
		{"self, OIDC", &gateway.Principal{Kind: "user", ID: "carol", AuthMethod: "jwt", Issuer: "https://login.corp.example",
			Scopes: []string{"inference:chat"}, ExpiresAt: t0.Add(time.Hour)}, exchangeForm("scope", "inference:chat"), "https://login.corp.example"},
		{"self, API key", &gateway.Principal{Kind: "service", ID: "svc", AuthMethod: "api_key", CredentialID: "k1",
			Scopes: []string{"inference:chat"}}, exchangeForm("scope", "inference:chat"), "warden"},
		{"delegation", &gateway.Principal{Kind: "agent", ID: "planner", AuthMethod: "api_key", CredentialID: "k2",
			Scopes: []string{"inference:chat", "control:token.exchange"}},
			exchangeForm("subject_token", "oidc:alice", "subject_token_type", TokenTypeJWT, "scope", "inference:chat"), "https://idp.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := k.do(t, tc.caller, "POST", "application/x-www-form-urlencoded", tc.form)
			tok, _ := res.body["access_token"].(string)
			if res.status != 200 || tok == "" {
				t.Fatalf("status %d body %s", res.status, res.raw)
			}
			p, err := k.auth.Verify(tok, t0)
			if err != nil {
				t.Fatal(err)
			}
			if p.Issuer != tc.want || p.AuthMethod != AuthMethod {
				t.Fatalf("issuer %q auth_method %q, want %q, %q", p.Issuer, p.AuthMethod, tc.want, AuthMethod)
			}
		})
	}
}
