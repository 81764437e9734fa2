package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"
)

// TestTokensDelegationRevocationAndStepUp drives warden-issued tokens through
// the real binary: the published JWKS, an agent exchanging a user's OIDC token
// for a delegation token (RFC 8693), its revocation with `warden token
// revoke`, the revoke admin endpoint, and TOTP step-up with replay refused.
func TestTokensDelegationRevocationAndStepUp(t *testing.T) {
	provider := newIDP(t)
	e := startWardenOpts(t, options{
		Identity: fmt.Sprintf(`identity:
  oidc:
    - name: idp
      issuer: %s
      audiences: [warden]
  mfa:
    encryption_key:
      file: mfa.key
`, provider.srv.URL),
		Policy: map[string]string{"e2e.rego": `package warden.authz

# Embeddings need a second factor in this test.
obligations := {"require_mfa": true} if input.action == "embeddings"
`},
		Prepare: func(dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "mfa.key"), []byte(strings.Repeat("ab", 32)+"\n"), 0o600))
		},
	})
	t.Setenv("WARDEN_E2E_UPSTREAM_KEY", e.upstreamKey) // the CLI loads the same config
	cfgPath := filepath.Join(e.dir, "warden.yaml")
	do := func(method, path, authz, ctype, body string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
		must(t, err)
		if authz != "" {
			req.Header.Set("Authorization", "Bearer "+authz)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := e.httpClient.Do(req)
		must(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, b
	}
	// waitFor polls until a call returns the wanted status (key-store changes
	// made by the CLI reach the server at its next poll).
	waitFor := func(what string, want int, call func() int) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			got := call()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %d, want %d", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	alice := provider.sign(t, jose.ES256, "ec1", provider.claims()) // scope inference:*

	t.Run("JWKS is published", func(t *testing.T) {
		status, _, b := do("GET", "/.well-known/jwks.json", "", "", "")
		var set struct{ Keys []map[string]any }
		if status != 200 || json.Unmarshal(b, &set) != nil || len(set.Keys) == 0 || set.Keys[0]["kty"] != "EC" || set.Keys[0]["d"] != nil {
			t.Fatalf("status %d body %s", status, b)
		}
	})

	out, errOut, code := runCLI(t, "keys", "create", "--store", e.keysPath, "--subject", "planner-agent", "--kind", "agent",
		"--scopes", "inference:*,control:token.exchange", "--json")
	if code != 0 {
		t.Fatalf("keys create: %s", errOut)
	}
	var agent struct{ Key string }
	must(t, json.Unmarshal([]byte(out), &agent))
	waitFor("agent key active", 200, func() int { s, _, _ := do("GET", "/v1/models", agent.Key, "", ""); return s })

	var delegated string
	t.Run("agent exchanges the user's token for a delegation token", func(t *testing.T) {
		form := url.Values{
			"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":      {alice},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:jwt"},
			"scope":              {"inference:models.list"},
		}
		status, _, b := do("POST", "/v1/warden/token", agent.Key, "application/x-www-form-urlencoded", form.Encode())
		var tr struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			Scope       string `json:"scope"`
		}
		if status != 200 || json.Unmarshal(b, &tr) != nil || tr.AccessToken == "" || tr.Scope != "inference:models.list" {
			t.Fatalf("status %d body %s", status, b)
		}
		delegated = tr.AccessToken
		if s, _, b := do("GET", "/v1/models", delegated, "", ""); s != 200 {
			t.Fatalf("delegation token refused: %d %s", s, b)
		}
		// Narrowed: the delegation token may list models but not chat.
		if s, _, _ := do("POST", "/v1/chat/completions", delegated, "application/json", `{"model":"m","messages":[]}`); s != 403 {
			t.Fatalf("narrowed token could chat: %d", s)
		}
		// A caller without the control scope may not exchange.
		if s, _, _ := do("POST", "/v1/warden/token", e.appKey, "application/x-www-form-urlencoded", form.Encode()); s != 403 {
			t.Fatalf("exchange without scope: %d", s)
		}
		// A forged subject token is refused.
		form.Set("subject_token", provider.forgeHS256(t, provider.claims()))
		if s, _, b := do("POST", "/v1/warden/token", agent.Key, "application/x-www-form-urlencoded", form.Encode()); s != 400 || !strings.Contains(string(b), "invalid_grant") {
			t.Fatalf("forged subject token: %d %s", s, b)
		}
	})

	t.Run("policy and audit see the agent and the user it acts for", func(t *testing.T) {
		raw, err := readAuditRaw(e.auditPath)
		must(t, err)
		if !strings.Contains(string(raw), `"kind":"agent","id":"planner-agent","on_behalf_of":"alice@example.org","auth_method":"token"`) {
			t.Fatal("no audit record of the agent acting for alice")
		}
		if strings.Contains(string(raw), strings.Split(delegated, ".")[2]) {
			t.Fatal("a token is in the audit log")
		}
	})

	t.Run("revoked token is refused", func(t *testing.T) {
		payload, err := base64.RawURLEncoding.DecodeString(strings.Split(delegated, ".")[1])
		must(t, err)
		var claims struct{ JTI string }
		must(t, json.Unmarshal(payload, &claims))
		if _, errOut, code := runCLI(t, "token", "revoke", "--config", cfgPath, "--jti", claims.JTI); code != 0 {
			t.Fatalf("token revoke: %s", errOut)
		}
		waitFor("revoked token", 401, func() int { s, _, _ := do("GET", "/v1/models", delegated, "", ""); return s })
	})

	t.Run("revoke admin endpoint", func(t *testing.T) {
		body := fmt.Sprintf(`{"kind":"api_key","id":%q}`, e.readID)
		if s, _, _ := do("POST", "/v1/warden/revoke", e.appKey, "application/json", body); s != 403 {
			t.Fatalf("revoke without control scope: %d", s)
		}
		out, errOut, code := runCLI(t, "keys", "create", "--store", e.keysPath, "--subject", "sec-admin",
			"--scopes", "control:credential.revoke", "--json")
		if code != 0 {
			t.Fatalf("keys create: %s", errOut)
		}
		var admin struct{ Key string }
		must(t, json.Unmarshal([]byte(out), &admin))
		waitFor("admin revokes", 200, func() int { s, _, _ := do("POST", "/v1/warden/revoke", admin.Key, "application/json", body); return s })
		waitFor("revoked key", 401, func() int { s, _, _ := do("GET", "/v1/models", e.readKey, "", ""); return s })
		if s, _, _ := do("POST", "/v1/warden/revoke", admin.Key, "application/json", `{"kind":"everything"}`); s != 400 {
			t.Fatalf("bad revocation: %d", s)
		}
	})

	t.Run("a token derived from a revoked API key is refused", func(t *testing.T) {
		out, errOut, code := runCLI(t, "keys", "create", "--store", e.keysPath, "--subject", "batch-svc", "--kind", "service",
			"--scopes", "inference:*,control:token.exchange", "--json")
		if code != 0 {
			t.Fatalf("keys create: %s", errOut)
		}
		var svc struct{ Key, ID string }
		must(t, json.Unmarshal([]byte(out), &svc))
		waitFor("service key active", 200, func() int { s, _, _ := do("GET", "/v1/models", svc.Key, "", ""); return s })
		form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "scope": {"inference:models.list"}}
		status, _, b := do("POST", "/v1/warden/token", svc.Key, "application/x-www-form-urlencoded", form.Encode())
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if status != 200 || json.Unmarshal(b, &tr) != nil || tr.AccessToken == "" {
			t.Fatalf("self exchange: %d %s", status, b)
		}
		if s, _, b := do("GET", "/v1/models", tr.AccessToken, "", ""); s != 200 {
			t.Fatalf("derived token refused: %d %s", s, b)
		}
		if _, errOut, code := runCLI(t, "keys", "revoke", "--store", e.keysPath, svc.ID); code != 0 {
			t.Fatalf("keys revoke: %s", errOut)
		}
		waitFor("revoked key", 401, func() int { s, _, _ := do("GET", "/v1/models", svc.Key, "", ""); return s })
		waitFor("token derived from the revoked key", 401, func() int { s, _, _ := do("GET", "/v1/models", tr.AccessToken, "", ""); return s })
	})

	t.Run("MFA step-up with replay refused", func(t *testing.T) {
		const emb = `{"model":"warden-standin-small","input":"hello"}`
		status, h, b := do("POST", "/v1/embeddings", alice, "application/json", emb)
		if status != 401 || !strings.Contains(string(b), `"code":"mfa_required"`) ||
			!strings.Contains(h.Get("WWW-Authenticate"), "insufficient_user_authentication") {
			t.Fatalf("no step-up challenge: %d %s %q", status, b, h.Get("WWW-Authenticate"))
		}
		out, errOut, code := runCLI(t, "mfa", "enroll", "--config", cfgPath, "--user", "alice@example.org")
		if code != 0 {
			t.Fatalf("mfa enroll: %s", errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		secret := lines[len(lines)-1]
		otp, err := totp.GenerateCode(secret, time.Now())
		must(t, err)
		status, _, b = do("POST", "/v1/warden/mfa/verify", alice, "application/json", fmt.Sprintf(`{"code":%q}`, otp))
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if status != 200 || json.Unmarshal(b, &tr) != nil || tr.AccessToken == "" {
			t.Fatalf("verify: %d %s", status, b)
		}
		if s, _, b := do("POST", "/v1/embeddings", tr.AccessToken, "application/json", emb); s != 200 {
			t.Fatalf("elevated token refused: %d %s", s, b)
		}
		status, _, b = do("POST", "/v1/warden/mfa/verify", alice, "application/json", fmt.Sprintf(`{"code":%q}`, otp))
		if status != 401 || !strings.Contains(string(b), "invalid_mfa_code") {
			t.Fatalf("replayed code: %d %s", status, b)
		}
	})
}
