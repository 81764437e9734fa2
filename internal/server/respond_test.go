package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/mfa"
	"github.com/warden-ai/warden/internal/identity/token"
	"github.com/warden-ai/warden/internal/registry"
	"github.com/warden-ai/warden/internal/respond"
)

const testWebhookSecret = "0123456789abcdef0123456789abcdef-webhook"

// alertSink is a webhook receiver that keeps the alerts whose signature
// verifies.
type alertSink struct {
	mu     sync.Mutex
	alerts []respond.Alert
	bad    int
}

func (s *alertSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if respond.Verify([]byte(testWebhookSecret), r.Header.Get(respond.SignatureHeader), body, time.Now(), respond.DefaultTolerance) != nil {
		s.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var a respond.Alert
	if err := json.Unmarshal(body, &a); err != nil {
		s.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.alerts = append(s.alerts, a)
}

func (s *alertSink) wait(t *testing.T, n int) []respond.Alert {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got, bad := append([]respond.Alert(nil), s.alerts...), s.bad
		s.mu.Unlock()
		if bad > 0 {
			t.Fatalf("%d alerts failed verification", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d alerts delivered, want %d", len(got), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jti returns the jti claim of a JWT.
func jti(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.ID == "" {
		t.Fatalf("no jti in %s: %v", b, err)
	}
	return c.ID
}

// TestRespondThroughThePipeline drives the Responder the behaviour engine
// calls, in process, and checks each action on the very next request:
// require_mfa (RFC 9470 challenge, satisfied by an MFA token), throttle
// (the limit stage's class), revoke of an API key and of a warden token,
// and signed webhook alerts.
func TestRespondThroughThePipeline(t *testing.T) {
	sink := &alertSink{}
	hook := httptest.NewServer(sink)
	defer hook.Close()
	t.Setenv("WARDEN_TEST_MFA_KEY", strings.Repeat("ab", 32))
	t.Setenv("WARDEN_TEST_WEBHOOK_SECRET", testWebhookSecret)
	e := newGrantEnv(t, `identity:
  mfa:
    encryption_key: {env: WARDEN_TEST_MFA_KEY}
limits:
  classes:
    - name: slow
      requests: {limit: 2, per: 1h}
responses:
  webhooks:
    - name: soc
      url: "`+hook.URL+`/hook"
      secret_env: WARDEN_TEST_WEBHOOK_SECRET
      max_attempts: 2
  playbooks:
    - name: lockdown
      match: {min_score: 0.9}
      actions:
        - {type: revoke}
        - {type: webhook, webhook: soc}
    - name: stepup
      match: {min_score: 0.5, kinds: [user], features: [off_hours]}
      actions:
        - {type: require_mfa, duration: 1h}
        - {type: throttle, class: slow, duration: 1h}
        - {type: webhook, webhook: soc}
`)
	r := e.srv.Responder()
	if r == nil {
		t.Fatal("no responder")
	}
	ctx := context.Background()
	scopes := []string{"inference:*"}
	alice := e.token(token.Claims{Subject: "alice@example.org", Kind: "user", Scopes: scopes})
	bob := e.token(token.Claims{Subject: "bob@example.org", Kind: "user", Scopes: scopes})
	ks, err := identity.OpenKeyStore(e.cfg.Keys.Path)
	if err != nil {
		t.Fatal(err)
	}
	key, rec, err := ks.Create("etl", "service", scopes, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	for who, tok := range map[string]string{"alice": alice, "bob": bob, "etl": key} {
		if s := e.chat(tok); s != 200 {
			t.Fatalf("%s before any anomaly: %d", who, s)
		}
	}

	t.Run("require_mfa and throttle", func(t *testing.T) {
		err := r.Respond(ctx, behavior.Anomaly{Kind: "user", ID: "alice@example.org", Score: 0.7, Risk: 0.5,
			Reason: "off_hours", Features: []behavior.Feature{{Name: "off_hours", Value: 1, Score: 5}}})
		if err != nil {
			t.Fatal(err)
		}
		s, body, h := e.do("POST", "/v1/chat/completions", alice, chatBody)
		if s != 401 || errCode(body) != "mfa_required" || h.Get("WWW-Authenticate") != mfa.StepUpChallenge {
			t.Fatalf("next request: %d %v %q", s, body, h.Get("WWW-Authenticate"))
		}
		// The step-up endpoint stays reachable (no enrollment here: 403, not 401).
		if s, body, _ := e.do("POST", mfa.VerifyPath, alice, `{"code":"123456"}`); s != 403 || errCode(body) != "mfa_not_enrolled" {
			t.Fatalf("step-up under require_mfa: %d %v", s, body)
		}
		// With a second factor: allowed, but throttled to two requests an
		// hour (the step-up request above was the first).
		stepped := e.token(token.Claims{Subject: "alice@example.org", Kind: "user", Scopes: scopes, MFA: true})
		if s := e.chat(stepped); s != 200 {
			t.Fatalf("with MFA: %d", s)
		}
		if s, body, _ := e.do("POST", "/v1/chat/completions", stepped, chatBody); s != 429 || errCode(body) != "rate_limit_exceeded" {
			t.Fatalf("throttled: %d %v", s, body)
		}
		alerts := sink.wait(t, 1)
		if a := alerts[0]; a.Playbook != "stepup" || a.Anomaly.Principal != "user:alice@example.org" || len(a.Actions) != 2 {
			t.Fatalf("alert: %+v", a)
		}
	})

	t.Run("revoke an API key", func(t *testing.T) {
		err := r.Respond(ctx, behavior.Anomaly{Kind: "service", ID: "etl", Credential: rec.ID, Score: 0.95, Reason: "tokens_out"})
		if err != nil {
			t.Fatal(err)
		}
		if s, body, _ := e.do("POST", "/v1/chat/completions", key, chatBody); s != 401 {
			t.Fatalf("revoked key: %d %v", s, body)
		}
		alerts := sink.wait(t, 2)
		if a := alerts[1]; a.Playbook != "lockdown" || a.Actions[0].Outcome != respond.OutcomeRevoked ||
			a.Actions[0].Detail != "API key "+rec.ID {
			t.Fatalf("alert: %+v", a)
		}
	})

	t.Run("revoke a warden token", func(t *testing.T) {
		err := r.Respond(ctx, behavior.Anomaly{Kind: "user", ID: "bob@example.org", Credential: jti(t, bob), Score: 0.99})
		if err != nil {
			t.Fatal(err)
		}
		if s := e.chat(bob); s != 401 {
			t.Fatalf("revoked token: %d", s)
		}
		// Another token of bob's still works: the credential was revoked, not bob.
		if s := e.chat(e.token(token.Claims{Subject: "bob@example.org", Kind: "user", Scopes: scopes})); s != 200 {
			t.Fatalf("bob's other token: %d", s)
		}
	})

	t.Run("every action is audited", func(t *testing.T) {
		recs := auditRecords(t, e.cfg.Audit.Path)
		for _, w := range []struct{ action, who string }{
			{respond.AuditApply, "alice@example.org"},
			{respond.AuditRevoke, "etl"},
			{respond.AuditRevoke, "bob@example.org"},
			{respond.AuditWebhook, "alice@example.org"},
		} {
			if len(findAudit(recs, w.action, w.who)) == 0 {
				t.Errorf("no %s record for %s", w.action, w.who)
			}
		}
		if n := len(findAudit(recs, respond.AuditApply, "alice@example.org")); n != 2 {
			t.Errorf("%d sanction.apply records for alice, want 2 (require_mfa, throttle)", n)
		}
	})
}

// TestSanctionsAPI: the endpoints behind identity and policy, and a
// quarantine that holds across a restart of the server.
func TestSanctionsAPI(t *testing.T) {
	e := newGrantEnv(t, "")
	admin := e.token(token.Claims{Subject: "ops@example.org", Kind: "user",
		Scopes: []string{"control:sanction.create", "control:sanction.list", "control:sanction.lift"}})
	victim := e.token(token.Claims{Subject: "mallory", Kind: "agent", Scopes: []string{"inference:*", "control:sanction.list"}})
	if s := e.chat(victim); s != 200 {
		t.Fatalf("before: %d", s)
	}
	// Policy: a principal without the scopes cannot impose or lift.
	if s, body, _ := e.do("POST", respond.SanctionsPath, victim,
		`{"principal":"user:ops@example.org","type":"quarantine","duration":"1h","reason":"x"}`); s != 403 || errCode(body) != "policy_denied" {
		t.Fatalf("create without scope: %d %v", s, body)
	}
	for _, tt := range []struct{ body, code string }{
		{`{"principal":"agent:mallory","type":"quarantine","duration":"1h"}`, "invalid_sanction"},
		{`{"principal":"agent:mallory","type":"quarantine","duration":"forever","reason":"x"}`, "invalid_sanction"},
		{`{"principal":"mallory","type":"quarantine","duration":"1h","reason":"x"}`, "invalid_sanction"},
		{`{"principal":"agent:mallory","type":"throttle","class":"slow","duration":"1h","reason":"x"}`, "invalid_sanction"},
		{`{"principal":"agent:mallory","type":"require_mfa","duration":"1h","reason":"x"}`, "invalid_sanction"},
		{`{"principal":"agent:mallory","type":"quarantine","duration":"1h","reason":"x","extra":1}`, "invalid_sanction"},
	} {
		if s, body, _ := e.do("POST", respond.SanctionsPath, admin, tt.body); s != 400 || errCode(body) != tt.code {
			t.Errorf("%s: %d %v", tt.body, s, body)
		}
	}
	s, body, h := e.do("POST", respond.SanctionsPath, admin,
		`{"principal":"agent:mallory","type":"quarantine","duration":"1h","reason":"incident 12"}`)
	sn, _ := body["sanction"].(map[string]any)
	id, _ := sn["id"].(string)
	if s != 201 || !respond.ValidID(id) || h.Get("Location") != respond.SanctionsPath+"/"+id {
		t.Fatalf("create: %d %v", s, body)
	}
	for _, path := range []string{"/v1/chat/completions", respond.SanctionsPath} {
		method, b := "POST", chatBody
		if path == respond.SanctionsPath {
			method, b = "GET", ""
		}
		s, body, _ := e.do(method, path, victim, b)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if s != 403 || errCode(body) != "quarantined" || strings.Contains(msg, "incident") || strings.Contains(msg, "ops") {
			t.Fatalf("quarantined %s: %d %v", path, s, body)
		}
	}
	s, body, _ = e.do("GET", respond.SanctionsPath+"?principal=agent:mallory", admin, "")
	if list, _ := body["sanctions"].([]any); s != 200 || len(list) != 1 {
		t.Fatalf("list: %d %v", s, body)
	}
	if s, body, _ := e.do("GET", respond.SanctionsPath+"?who=x", admin, ""); s != 400 {
		t.Fatalf("bad filter: %d %v", s, body)
	}

	// A restart: a new server over the same files.
	if err := e.srv.Close(); err != nil {
		t.Fatal(err)
	}
	srv2, err := New(context.Background(), e.cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Close()
	hs := httptest.NewServer(srv2.Handler(0))
	defer hs.Close()
	e.base = hs.URL
	if s, body, _ := e.do("POST", "/v1/chat/completions", victim, chatBody); s != 403 || errCode(body) != "quarantined" {
		t.Fatalf("after restart: %d %v", s, body)
	}
	if s, body, _ := e.do("DELETE", respond.SanctionsPath+"/s_000000000000000000000000", admin, ""); s != 404 || errCode(body) != "unknown_sanction" {
		t.Fatalf("lift unknown: %d %v", s, body)
	}
	if s, body, _ := e.do("DELETE", respond.SanctionsPath+"/"+id, admin, ""); s != 200 {
		t.Fatalf("lift: %d %v", s, body)
	}
	if s := e.chat(victim); s != 200 {
		t.Fatalf("after the lift: %d", s)
	}
	recs := auditRecords(t, e.cfg.Audit.Path)
	for _, w := range []struct {
		action, who string
		n           int
	}{
		{respond.AuditApply, "mallory", 1},        // the sanction, on its principal
		{"sanction.create", "ops@example.org", 7}, // the requests, by the operator (6 refused)
		{respond.AuditLift, "mallory", 1},
	} {
		if got := len(findAudit(recs, w.action, w.who)); got != w.n {
			t.Errorf("%d %s records for %s, want %d", got, w.action, w.who, w.n)
		}
	}
}

// TestSanctionsStoreUnreadableAtStart: warden does not start over a store
// it cannot read.
func TestSanctionsStoreUnreadableAtStart(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	cfg.Responses.Path = filepath.Join(t.TempDir(), "sanctions.json")
	if err := os.WriteFile(cfg.Responses.Path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, Options{})
	if err == nil {
		s.Close()
		t.Fatal("started over a corrupt sanctions store")
	}
	if !strings.Contains(err.Error(), "responses") {
		t.Fatalf("error does not name the section: %v", err)
	}
}

func TestResponsesDisabled(t *testing.T) {
	cfg := newTestConfig(t, "http://127.0.0.1:1")
	off := false
	cfg.Responses = config.Responses{Enabled: &off}
	s, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Responder() != nil {
		t.Fatal("a responder while disabled")
	}
}

// TestRespondRollsBackModel: a playbook's rollback makes the model's
// previous version active again, durably in the registry, and the very next
// request on the bound route is served by it; a second anomaly does not roll
// back further.
func TestRespondRollsBackModel(t *testing.T) {
	var mu sync.Mutex
	var served []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		served = append(served, r.Header.Get(registry.HeaderModelVersion))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"cmpl-1","object":"chat.completion","choices":[]}`)
	}))
	defer up.Close()
	last := func() string {
		mu.Lock()
		defer mu.Unlock()
		return served[len(served)-1]
	}

	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	signer, err := registry.ParseSigner(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err := os.WriteFile(filepath.Join(dir, "signer.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	models := filepath.Join(dir, "models")
	bundles := map[string][]byte{}
	for _, v := range []string{"v1", "v2"} {
		d := filepath.Join(models, v)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "weights.bin"), []byte("weights of "+v), 0o600); err != nil {
			t.Fatal(err)
		}
		b, _, err := registry.SignModel(context.Background(), d, signer, registry.SignOptions{Name: "llama"})
		if err != nil {
			t.Fatal(err)
		}
		bundles[v] = b
	}
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "quickstart", "policy", "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "authz.rego"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	cfgText := `listeners:
  - name: test
    address: 127.0.0.1:0
    tls: {mode: "off"}
admin:
  address: "off"
routes:
  - name: chat
    prefix: /v1/
    segment: inference
    model: {name: llama}
    upstream: {url: "` + up.URL + `"}
keys: {path: keys.json}
policy: {dir: policy}
audit: {path: audit.log}
models:
  roots: ["` + models + `"]
  trusted_keys:
    - {name: release, file: signer.pub}
responses:
  playbooks:
    - name: bad-model
      match: {min_score: 0.8, features: [prompt_similarity]}
      actions:
        - {type: rollback, route: chat}
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
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler(0))
	defer hs.Close()
	ctx := context.Background()
	ops := registry.Actor{ID: "ops", Roles: []string{cfg.Models.ApproverRole}}
	for _, v := range []string{"v1", "v2"} {
		if _, err := srv.models.Register(ctx, registry.RegisterRequest{Name: "llama", Version: v,
			Dir: filepath.Join(models, v), Bundle: bundles[v]}, ops); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.models.Promote(ctx, "llama", v, ops); err != nil {
			t.Fatal(err)
		}
	}
	ks, err := identity.OpenKeyStore(cfg.Keys.Path)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := ks.Create("app", "service", []string{"inference:*"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.keys.Reload(); err != nil {
		t.Fatal(err)
	}
	e := &grantEnv{t: t, cfg: cfg, srv: srv, base: hs.URL}
	if s := e.chat(key); s != 200 || last() != "llama@v2" {
		t.Fatalf("before: %d %q", s, last())
	}
	a := behavior.Anomaly{Kind: "service", ID: "app", Score: 0.9, Reason: "prompt_similarity",
		Features: []behavior.Feature{{Name: "prompt_similarity", Value: 0.99, Score: 8}}}
	if err := srv.Responder().Respond(ctx, a); err != nil {
		t.Fatal(err)
	}
	if s := e.chat(key); s != 200 || last() != "llama@v1" {
		t.Fatalf("after the rollback: %d %q", s, last())
	}
	// Again: at most one step past the last promotion.
	if err := srv.Responder().Respond(ctx, a); err != nil {
		t.Fatal(err)
	}
	if m, _ := srv.models.Model("llama"); m.Versions[0].State != registry.StateActive {
		t.Fatalf("rolled back further: %+v", m.Versions)
	}
	recs := auditRecords(t, cfg.Audit.Path)
	if got := findAudit(recs, respond.AuditRollback, "app"); len(got) != 2 || got[0]["code"] != "model_rolled_back" ||
		got[1]["code"] != "rollback_unchanged" {
		t.Fatalf("rollback records: %v", got)
	}
}
