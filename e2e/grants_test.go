package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/audit"
)

// TestJustInTimeGrants drives just-in-time grants through the real binary:
// a user without scopes is refused, asks for a grant with `warden grant
// request`, cannot approve it herself, an approver approves it with `warden
// grant approve`, the same request is then allowed with the grant named in
// the decision, self-approval by an approver is refused, revocation ends the
// grant at once, a short grant expires by itself, and every step, the expiry
// included, is in the audit log.
func TestJustInTimeGrants(t *testing.T) {
	rego, err := os.ReadFile(filepath.Join("..", "examples", "quickstart", "policy", "grants.rego"))
	must(t, err)
	e := startWardenOpts(t, options{Policy: map[string]string{"grants.rego": string(rego)}})
	t.Setenv("WARDEN_E2E_UPSTREAM_KEY", e.upstreamKey) // the CLI loads the same config
	cfgPath := filepath.Join(e.dir, "warden.yaml")

	// Users prove themselves with warden tokens; bob holds the approver role.
	userToken := func(name, roles string) string {
		t.Helper()
		args := []string{"token", "issue", "--config", cfgPath, "--subject", name, "--kind", "user", "--ttl", "30m"}
		if roles != "" {
			args = append(args, "--roles", roles)
		}
		out, errOut, code := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("token issue: %s", errOut)
		}
		p := filepath.Join(e.dir, name+".token")
		must(t, os.WriteFile(p, []byte(out), 0o600))
		return p
	}
	alice := userToken("alice@example.org", "")
	bob := userToken("bob@example.org", "grant-approver")
	grantCLI := func(keyFile string, args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, append(append([]string{"grant"}, args...),
			"--server", e.base, "--ca-file", filepath.Join(e.dir, "cert.pem"), "--key-file", keyFile)...)
	}
	chat := func(keyFile string) int {
		t.Helper()
		tok, err := os.ReadFile(keyFile)
		must(t, err)
		req, err := http.NewRequest("POST", e.base+"/v1/chat/completions",
			strings.NewReader(`{"model":"warden-standin-small","messages":[{"role":"user","content":"hi"}]}`))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		req.Header.Set("Content-Type", "application/json")
		res, err := e.httpClient.Do(req)
		must(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	waitChat := func(what string, keyFile string, want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got := chat(keyFile)
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: chat status %d, want %d", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if s := chat(alice); s != 403 {
		t.Fatalf("chat without a grant: %d", s)
	}

	var id string
	t.Run("request, self-approval refused, approval by an approver", func(t *testing.T) {
		out, errOut, code := grantCLI(alice, "request", "--action", "chat.completions", "--segment", "inference",
			"--duration", "1h", "--reason", "incident 42: summarise the postmortem")
		id = strings.TrimSpace(out)
		if code != 0 || !strings.HasPrefix(id, "g_") {
			t.Fatalf("request: exit %d: %s %s", code, out, errOut)
		}
		if s := chat(alice); s != 403 {
			t.Fatalf("chat with a pending request: %d", s)
		}
		if _, errOut, code := grantCLI(alice, "approve", id); code != 1 || !strings.Contains(errOut, "403 policy_denied") {
			t.Fatalf("approval by the requester: exit %d: %s", code, errOut)
		}
		out, errOut, code = grantCLI(bob, "approve", id, "--note", "on call")
		if code != 0 || !strings.Contains(out, "approved grant "+id+" for alice@example.org") {
			t.Fatalf("approve: exit %d: %s %s", code, out, errOut)
		}
		waitChat("chat with the grant", alice, 200, 2*time.Second)
	})

	t.Run("an approver cannot approve a grant for herself", func(t *testing.T) {
		out, errOut, code := grantCLI(bob, "request", "--action", "*", "--segment", "inference", "--duration", "10m", "--reason", "drill")
		if code != 0 {
			t.Fatalf("request: %s", errOut)
		}
		_, errOut, code = grantCLI(bob, "approve", strings.TrimSpace(out))
		if code != 1 || !strings.Contains(errOut, "403 grant_forbidden") || !strings.Contains(errOut, "cannot approve it") {
			t.Fatalf("self-approval: exit %d: %s", code, errOut)
		}
	})

	t.Run("above the maximum duration", func(t *testing.T) {
		_, errOut, code := grantCLI(alice, "request", "--action", "*", "--segment", "inference", "--duration", "9h", "--reason", "long")
		if code != 1 || !strings.Contains(errOut, "longer than the maximum 8h0m0s") {
			t.Fatalf("9h grant: exit %d: %s", code, errOut)
		}
	})

	t.Run("list shows own grants and, to approvers, all", func(t *testing.T) {
		out, _, code := grantCLI(alice, "list", "--json")
		var l struct {
			Grants []struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"grants"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Grants) != 1 || l.Grants[0].ID != id || l.Grants[0].State != "approved" {
			t.Fatalf("alice's list: exit %d: %s", code, out)
		}
		out, _, code = grantCLI(bob, "list", "--json")
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil || len(l.Grants) != 2 {
			t.Fatalf("approver's list: exit %d: %s", code, out)
		}
	})

	t.Run("revoked: denied again at once", func(t *testing.T) {
		out, errOut, code := grantCLI(bob, "revoke", id, "--note", "incident closed")
		if code != 0 || !strings.Contains(out, "revoked grant "+id) {
			t.Fatalf("revoke: exit %d: %s %s", code, out, errOut)
		}
		if s := chat(alice); s != 403 {
			t.Fatalf("chat after revocation: %d", s)
		}
	})

	var shortID string
	t.Run("a short grant expires by itself", func(t *testing.T) {
		out, errOut, code := grantCLI(alice, "request", "--action", "chat.completions", "--segment", "inference",
			"--duration", "2s", "--reason", "quick check")
		shortID = strings.TrimSpace(out)
		if code != 0 {
			t.Fatalf("request: %s", errOut)
		}
		if _, errOut, code := grantCLI(bob, "approve", shortID); code != 0 {
			t.Fatalf("approve: %s", errOut)
		}
		waitChat("chat within the short grant", alice, 200, time.Second)
		waitChat("chat after expiry", alice, 403, 5*time.Second)
		out, _, code = grantCLI(alice, "list", "--status", "expired")
		if code != 0 || !strings.Contains(out, shortID) {
			t.Fatalf("expired list: exit %d: %s", code, out)
		}
	})

	t.Run("every step is audited", func(t *testing.T) {
		type rec struct {
			Action    string `json:"action"`
			Path      string `json:"path"`
			Status    int    `json:"status"`
			Code      string `json:"code"`
			Reason    string `json:"reason"`
			Principal *struct {
				ID string `json:"id"`
			} `json:"principal"`
			Decision *struct {
				Allow   bool     `json:"allow"`
				Reasons []string `json:"reasons"`
			} `json:"decision"`
		}
		// The records as the audit package reads them, in their JSON form.
		find := func(f func(r rec) bool) bool {
			found := false
			must(t, audit.ReadAll(e.auditPath, func(ar audit.Record) error {
				b, err := json.Marshal(ar)
				if err != nil {
					return err
				}
				var r rec
				if err := json.Unmarshal(b, &r); err != nil {
					return err
				}
				found = found || f(r)
				return nil
			}))
			return found
		}
		by := func(r rec, who string) bool { return r.Principal != nil && r.Principal.ID == who }
		allow := func(r rec) bool { return r.Decision != nil && r.Decision.Allow }
		steps := []struct {
			name string
			f    func(r rec) bool
		}{
			{"chat denied before the grant", func(r rec) bool {
				return r.Action == "chat.completions" && by(r, "alice@example.org") && !allow(r) && r.Status == 403
			}},
			{"request by alice", func(r rec) bool {
				return r.Action == "grant.request" && by(r, "alice@example.org") && allow(r) && r.Status == 201
			}},
			{"approval by alice refused by policy", func(r rec) bool {
				return r.Action == "grant.approve" && by(r, "alice@example.org") && !allow(r) && r.Path == "/v1/warden/grants/"+id+"/approve"
			}},
			{"approval by bob", func(r rec) bool {
				return r.Action == "grant.approve" && by(r, "bob@example.org") && allow(r) && r.Status == 200 && r.Path == "/v1/warden/grants/"+id+"/approve"
			}},
			{"self-approval refused by warden", func(r rec) bool {
				return r.Action == "grant.approve" && by(r, "bob@example.org") && r.Status == 403 && r.Code == "grant_forbidden"
			}},
			{"chat allowed by the grant, which the decision names", func(r rec) bool {
				if r.Action != "chat.completions" || !by(r, "alice@example.org") || !allow(r) {
					return false
				}
				want := fmt.Sprintf("grant %s approved by bob@example.org", id)
				for _, reason := range r.Decision.Reasons {
					if strings.Contains(reason, want) {
						return true
					}
				}
				return false
			}},
			{"revocation by bob", func(r rec) bool {
				return r.Action == "grant.revoke" && by(r, "bob@example.org") && allow(r) && r.Status == 200 && r.Path == "/v1/warden/grants/"+id+"/revoke"
			}},
			{"list by alice", func(r rec) bool { return r.Action == "grant.list" && by(r, "alice@example.org") && allow(r) }},
			{"expiry of the short grant", func(r rec) bool {
				return r.Action == "grant.expire" && r.Principal == nil && r.Code == "grant_expired" &&
					r.Path == "/v1/warden/grants/"+shortID && strings.Contains(r.Reason, "for alice@example.org") &&
					strings.Contains(r.Reason, "approved by bob@example.org")
			}},
		}
		deadline := time.Now().Add(5 * time.Second) // the sweeper runs every second
		for _, st := range steps {
			for !find(st.f) {
				if time.Now().After(deadline) {
					t.Fatalf("no audit record: %s", st.name)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		// Tokens never reach the audit log.
		tok, err := os.ReadFile(bob)
		must(t, err)
		sig := strings.Split(strings.TrimSpace(string(tok)), ".")
		if len(sig) != 3 {
			t.Fatalf("not a JWT: %d parts", len(sig))
		}
		must(t, audit.ReadAll(e.auditPath, func(ar audit.Record) error {
			b, err := json.Marshal(ar)
			if err == nil && strings.Contains(string(b), sig[2]) {
				return fmt.Errorf("a token is in the audit record of request %s", ar.RequestID)
			}
			return err
		}))
	})
}
