package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity/token"
)

// grantEnv is an in-process warden with the quickstart policy (grants
// included), an upstream that answers 200, and a token issuer for users
// with and without the approver role.
type grantEnv struct {
	t      *testing.T
	cfg    *config.Config
	srv    *Server
	base   string
	issuer *token.Issuer
}

func newGrantEnv(t *testing.T, grantsYAML string) *grantEnv {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"chat.completion","choices":[]}`)
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"authz.rego", "grants.rego"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "policy", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "policy", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfgText := `listeners:
  - name: test
    address: 127.0.0.1:0
    tls: {mode: "off"}
admin:
  address: "off"
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream: {url: "` + up.URL + `"}
keys: {path: keys.json}
policy:
  dir: policy
` + grantsYAML + `audit: {path: audit.log}
`
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler(0))
	t.Cleanup(hs.Close)
	tcfg := token.WithDefaults(cfg.Identity.Tokens)
	ks, err := token.OpenKeySet(tcfg.KeysPath, tcfg.RotateEvery.D(), tcfg.MaxTTL.D())
	if err != nil {
		t.Fatal(err)
	}
	return &grantEnv{t: t, cfg: cfg, srv: srv, base: hs.URL, issuer: token.NewIssuer(ks, tcfg)}
}

// user returns a warden token for a user with the given roles.
func (e *grantEnv) user(id string, roles ...string) string {
	return e.token(token.Claims{Subject: id, Kind: "user", Roles: roles})
}

func (e *grantEnv) token(c token.Claims) string {
	e.t.Helper()
	tok, _, err := e.issuer.Issue(c, 10*time.Minute, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request and returns the status, the decoded JSON body and the headers.
func (e *grantEnv) do(method, path, tok, body string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var v map[string]any
	_ = json.Unmarshal(b, &v)
	return res.StatusCode, v, res.Header
}

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

func (e *grantEnv) chat(tok string) int {
	s, _, _ := e.do("POST", "/v1/chat/completions", tok, chatBody)
	return s
}

func grantField(v map[string]any, field string) string {
	g, _ := v["grant"].(map[string]any)
	s, _ := g[field].(string)
	return s
}

func errCode(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// auditRecords reads the audit log through the audit package, as JSON
// objects.
func auditRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := audit.ReadAll(path, func(r audit.Record) error {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// findAudit returns the records with the action whose principal id is who
// ("" for records without a principal).
func findAudit(recs []map[string]any, action, who string) []map[string]any {
	var out []map[string]any
	for _, r := range recs {
		if r["action"] != action {
			continue
		}
		p, _ := r["principal"].(map[string]any)
		id, _ := p["id"].(string)
		if id == who {
			out = append(out, r)
		}
	}
	return out
}

func allowed(r map[string]any) bool {
	d, _ := r["decision"].(map[string]any)
	a, _ := d["allow"].(bool)
	return a
}

func TestGrantsThroughThePipeline(t *testing.T) {
	e := newGrantEnv(t, "")
	alice := e.user("alice@example.org")
	bob := e.user("bob@example.org", "grant-approver")
	carol := e.user("carol@example.org", "grant-approver")
	mallory := e.user("mallory@example.org")
	agent := e.token(token.Claims{Subject: "planner", Kind: "agent", Roles: []string{"grant-approver"}})

	if s := e.chat(alice); s != http.StatusForbidden {
		t.Fatalf("chat without a grant: %d", s)
	}
	status, v, h := e.do("POST", "/v1/warden/grants", alice,
		`{"action":"chat.completions","segment":"inference","duration":"1h","reason":"incident 42"}`)
	id := grantField(v, "id")
	if status != http.StatusCreated || grantField(v, "state") != "requested" || grantField(v, "principal") != "alice@example.org" ||
		h.Get("Location") != "/v1/warden/grants/"+id {
		t.Fatalf("request: %d %v %v", status, v, h)
	}
	if s := e.chat(alice); s != http.StatusForbidden {
		t.Fatalf("chat with a requested grant: %d", s)
	}

	refusals := []struct {
		name, path, tok string
		status          int
		code            string
	}{
		{"requester without the role: policy", "/approve", alice, 403, "policy_denied"},
		{"stranger without the role: policy", "/approve", mallory, 403, "policy_denied"},
		{"agent with the role: policy", "/approve", agent, 403, "policy_denied"},
		{"stranger cannot deny", "/deny", mallory, 404, "unknown_grant"},
	}
	for _, r := range refusals {
		if s, v, _ := e.do("POST", "/v1/warden/grants/"+id+r.path, r.tok, ""); s != r.status || errCode(v) != r.code {
			t.Fatalf("%s: %d %v", r.name, s, v)
		}
	}
	status, v, _ = e.do("POST", "/v1/warden/grants/"+id+"/approve", bob, `{"note":"on call"}`)
	if status != http.StatusOK || grantField(v, "state") != "approved" || grantField(v, "approved_by") != "bob@example.org" {
		t.Fatalf("approve: %d %v", status, v)
	}
	if s := e.chat(alice); s != http.StatusOK {
		t.Fatalf("chat with an approved grant: %d", s)
	}
	// Only the grantee benefits.
	if s := e.chat(mallory); s != http.StatusForbidden {
		t.Fatalf("chat of another user: %d", s)
	}
	// Approving twice is a conflict.
	if s, v, _ := e.do("POST", "/v1/warden/grants/"+id+"/approve", carol, ""); s != http.StatusConflict || errCode(v) != "grant_conflict" {
		t.Fatalf("second approval: %d %v", s, v)
	}

	// Self-approval: an approver asks for herself and cannot approve it.
	_, v, _ = e.do("POST", "/v1/warden/grants", carol, `{"action":"*","segment":"inference","duration":"10m","reason":"drill"}`)
	cid := grantField(v, "id")
	if s, v, _ := e.do("POST", "/v1/warden/grants/"+cid+"/approve", carol, ""); s != http.StatusForbidden || errCode(v) != "grant_forbidden" {
		t.Fatalf("self-approval: %d %v", s, v)
	}

	// Lists: own grants for users without the role, all for approvers.
	_, v, _ = e.do("GET", "/v1/warden/grants", alice, "")
	if gs, _ := v["grants"].([]any); len(gs) != 1 {
		t.Fatalf("alice's list: %v", v)
	}
	_, v, _ = e.do("GET", "/v1/warden/grants?status=open", bob, "")
	if gs, _ := v["grants"].([]any); len(gs) != 2 {
		t.Fatalf("approver's list: %v", v)
	}
	_, v, _ = e.do("GET", "/v1/warden/grants", mallory, "")
	if gs, _ := v["grants"].([]any); v["grants"] == nil || len(gs) != 0 {
		t.Fatalf("stranger's list: %v", v)
	}
	for _, q := range []string{"?bogus=1", "?status=active", "?limit=0", "?limit=x", "?principal=a&principal=b", "?status=%zz"} {
		if s, v, _ := e.do("GET", "/v1/warden/grants"+q, bob, ""); s != 400 || errCode(v) != "invalid_grant" {
			t.Fatalf("bad query %s: %d %v", q, s, v)
		}
	}

	// Revoked: denied again at once.
	if s, v, _ := e.do("POST", "/v1/warden/grants/"+id+"/revoke", carol, `{"note":"incident closed"}`); s != 200 || grantField(v, "state") != "revoked" {
		t.Fatalf("revoke: %d %v", s, v)
	}
	if s := e.chat(alice); s != http.StatusForbidden {
		t.Fatalf("chat after revocation: %d", s)
	}

	// Every step is in the audit log with action, principal and decision.
	recs := auditRecords(t, e.cfg.Audit.Path)
	steps := []struct {
		action, who string
		allow       bool
		status      float64
	}{
		{"grant.request", "alice@example.org", true, 201},
		{"grant.approve", "alice@example.org", false, 403},
		{"grant.approve", "bob@example.org", true, 200},
		{"grant.approve", "carol@example.org", true, 403},
		{"grant.revoke", "carol@example.org", true, 200},
		{"chat.completions", "alice@example.org", true, 200},
		{"chat.completions", "alice@example.org", false, 403},
	}
	for _, st := range steps {
		found := false
		for _, r := range findAudit(recs, st.action, st.who) {
			if allowed(r) == st.allow && r["status"] == st.status {
				found = true
			}
		}
		if !found {
			t.Errorf("no audit record of %s by %s (allow %v, status %v)", st.action, st.who, st.allow, st.status)
		}
	}
	// The allowed chat names the grant and its approver.
	var reason string
	for _, r := range findAudit(recs, "chat.completions", "alice@example.org") {
		if allowed(r) {
			d := r["decision"].(map[string]any)
			b, _ := json.Marshal(d["reasons"])
			reason = string(b)
		}
	}
	if !strings.Contains(reason, "grant "+id+" approved by bob@example.org") {
		t.Errorf("decision reasons of the granted chat: %s", reason)
	}
}

func TestGrantEndpointRouting(t *testing.T) {
	e := newGrantEnv(t, "")
	bob := e.user("bob@example.org", "grant-approver")
	tests := []struct {
		method, path string
		status       int
		code         string
	}{
		{"PUT", "/v1/warden/grants", 405, "method_not_allowed"},
		{"GET", "/v1/warden/grants/g_0123456789abcdef01234567/approve", 405, "method_not_allowed"},
		{"POST", "/v1/warden/grants/g_0123456789abcdef01234567/approve", 404, "unknown_grant"},
		{"POST", "/v1/warden/grants/not-a-grant-id/revoke", 404, "unknown_grant"},
		{"POST", "/v1/warden/grants/g_0123456789abcdef01234567/extend", 404, "unknown_endpoint"},
		{"POST", "/v1/warden/grants/a/b/approve", 404, "unknown_endpoint"},
		{"POST", "/v1/warden/grants/{id}/approve", 404, "unknown_endpoint"},
		{"POST", "/v1/warden/grants/", 404, "unknown_endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			s, v, h := e.do(tc.method, tc.path, bob, "")
			if s != tc.status || errCode(v) != tc.code {
				t.Fatalf("%d %v", s, v)
			}
			if s == 405 && h.Get("Allow") == "" {
				t.Fatal("no Allow header")
			}
		})
	}
	if _, _, h := e.do("PUT", "/v1/warden/grants", bob, ""); h.Get("Allow") != "GET, POST" {
		t.Fatalf("Allow: %q", h.Get("Allow"))
	}
	// Bodies are checked: media type, strict JSON, limits.
	bodies := []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"form body", "application/x-www-form-urlencoded", "action=x", 415, "unsupported_media_type"},
		{"unknown field", "application/json", `{"action":"x","admin":true}`, 400, "invalid_grant"},
		{"over the maximum", "application/json", `{"action":"chat.completions","segment":"inference","duration":"9h","reason":"r"}`, 400, "invalid_grant"},
		{"grant management", "application/json", `{"action":"grant.approve","segment":"control","duration":"1h","reason":"r"}`, 400, "invalid_grant"},
	}
	for _, tc := range bodies {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", e.base+"/v1/warden/grants", bytes.NewBufferString(tc.body))
			req.Header.Set("Authorization", "Bearer "+bob)
			req.Header.Set("Content-Type", tc.ctype)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var v map[string]any
			_ = json.NewDecoder(res.Body).Decode(&v)
			if res.StatusCode != tc.status || errCode(v) != tc.code {
				t.Fatalf("%d %v", res.StatusCode, v)
			}
		})
	}
}

func TestGrantExpiryIsSweptAndAudited(t *testing.T) {
	e := newGrantEnv(t, "  grants:\n    max_duration: 2s\n")
	alice := e.user("alice@example.org")
	bob := e.user("bob@example.org", "grant-approver")
	if s, v, _ := e.do("POST", "/v1/warden/grants", alice, `{"action":"chat.completions","segment":"inference","duration":"3s","reason":"r"}`); s != 400 ||
		!strings.Contains(fmt.Sprint(v), "longer than the maximum 2s") {
		t.Fatalf("duration above max_duration: %d %v", s, v)
	}
	_, v, _ := e.do("POST", "/v1/warden/grants", alice, `{"action":"chat.completions","segment":"inference","duration":"2s","reason":"r"}`)
	id := grantField(v, "id")
	if s, v, _ := e.do("POST", "/v1/warden/grants/"+id+"/approve", bob, ""); s != 200 {
		t.Fatalf("approve: %d %v", s, v)
	}
	if s := e.chat(alice); s != http.StatusOK {
		t.Fatalf("chat within the grant: %d", s)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := findAudit(auditRecords(t, e.cfg.Audit.Path), "grant.expire", "")
		if len(recs) == 1 {
			r := recs[0]
			if r["code"] != "grant_expired" || !strings.Contains(r["reason"].(string), "grant "+id+" for alice@example.org") ||
				!strings.Contains(r["reason"].(string), "approved by bob@example.org") || r["path"] != "/v1/warden/grants/"+id {
				t.Fatalf("expiry record: %v", r)
			}
			break
		}
		if len(recs) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d expiry records", len(recs))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := e.chat(alice); s != http.StatusForbidden {
		t.Fatalf("chat after expiry: %d", s)
	}
	_, v, _ = e.do("GET", "/v1/warden/grants?status=expired", bob, "")
	if gs, _ := v["grants"].([]any); len(gs) != 1 {
		t.Fatalf("expired list: %v", v)
	}
}

func TestGrantsDisabled(t *testing.T) {
	e := newGrantEnv(t, "  grants:\n    enabled: false\n")
	alice := e.user("alice@example.org")
	if s, v, _ := e.do("POST", "/v1/warden/grants", alice, `{"action":"chat.completions","segment":"inference","duration":"1h","reason":"r"}`); s != 404 || errCode(v) != "unknown_endpoint" {
		t.Fatalf("request with grants disabled: %d %v", s, v)
	}
	if _, err := os.Stat(e.cfg.Policy.Grants.Path); err == nil {
		t.Fatal("a grant store was created while disabled")
	}
}

func TestGrantStoreUnreadableAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{}
	cfg.Policy.Grants.Path = filepath.Join(dir, "grants.json")
	if err := os.WriteFile(cfg.Policy.Grants.Path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{extraChecks: map[string]func() error{}}
	if _, err := s.buildGrants(context.Background(), cfg, nil); err == nil || !strings.Contains(err.Error(), "policy.grants") {
		t.Fatalf("corrupt store at start: %v", err)
	}
}
