package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
	"github.com/warden-ai/warden/internal/identity/token"
)

// runTokenCmd runs the registered `token` command as main would.
func runTokenCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c, ok := commands["token"]
	if !ok {
		t.Fatal(`command "token" is not registered`)
	}
	var out, errOut bytes.Buffer
	code = c.run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestTokenIssueRevoke(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "data", "token-keys.json")
	revs := filepath.Join(dir, "data", "revocations.json")

	// issue: the token alone on stdout; the jti and how to revoke on stderr.
	code, out, errOut := runTokenCmd(t, "issue", "--keys", keys, "--subject", "alice", "--actor", "agent-planner",
		"--scopes", "inference:chat, tools:search", "--ttl", "2m")
	if code != exitOK {
		t.Fatalf("issue exit %d: %s", code, errOut)
	}
	tok := strings.TrimSuffix(out, "\n")
	if strings.Count(tok, ".") != 2 || strings.Contains(tok, "\n") {
		t.Fatalf("stdout must be the token on its own line, got %q", out)
	}
	if strings.Contains(errOut, tok) || !strings.Contains(errOut, "warden token revoke --jti") {
		t.Fatalf("stderr = %q", errOut)
	}

	// The token verifies with the key file and names the agent for the user.
	ks, err := token.OpenKeySet(keys, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := revoke.Open(revs)
	if err != nil {
		t.Fatal(err)
	}
	auth := token.NewAuthenticator(ks, rl, config.Tokens{})
	p, err := auth.Verify(tok, time.Now())
	if err != nil {
		t.Fatalf("issued token does not verify: %v", err)
	}
	if p.Kind != "agent" || p.ID != "agent-planner" || p.OnBehalfOf != "alice" || strings.Join(p.Scopes, ",") != "inference:chat,tools:search" {
		t.Fatalf("principal %+v", p)
	}
	if d := time.Until(p.ExpiresAt); d > 2*time.Minute || d < time.Minute {
		t.Fatalf("expires in %s, want about 2m", d)
	}

	// revoke --jti: the token is refused from then on, also after reopening.
	code, out, errOut = runTokenCmd(t, "revoke", "--revocations", revs, "--jti", p.CredentialID, "--reason", "test")
	if code != exitOK {
		t.Fatalf("revoke exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "revoked token "+p.CredentialID) {
		t.Fatalf("revoke stdout %q", out)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(tok, time.Now()); !errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("revoked token: %v, want not proven", err)
	}
	if err := auth.Revalidate(&p, time.Now()); !errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("Revalidate of the revoked token: %v", err)
	}

	// revoke --subject ends the tokens issued before it, not later ones.
	code, out, _ = runTokenCmd(t, "issue", "--keys", keys, "--subject", "bob", "--json")
	if code != exitOK {
		t.Fatal("issue --json failed")
	}
	var issued struct {
		AccessToken string    `json:"access_token"`
		JTI         string    `json:"jti"`
		Kind        string    `json:"kind"`
		Scopes      []string  `json:"scopes"`
		ExpiresAt   time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("issue --json output %q: %v", out, err)
	}
	if issued.Kind != "user" || issued.JTI == "" || issued.Scopes == nil || issued.AccessToken == "" {
		t.Fatalf("issue --json = %+v", issued)
	}
	time.Sleep(1100 * time.Millisecond) // iat has whole seconds: revoke in a later second
	code, out, errOut = runTokenCmd(t, "revoke", "--revocations", revs, "--subject", "bob", "--until", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if code != exitOK || !strings.Contains(out, "every token of bob") {
		t.Fatalf("revoke --subject exit %d: %s %s", code, out, errOut)
	}
	if err := rl.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Verify(issued.AccessToken, time.Now()); !errors.Is(err, identity.ErrNotProven) {
		t.Fatalf("token of a revoked subject: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	_, out, _ = runTokenCmd(t, "issue", "--keys", keys, "--subject", "bob")
	if _, err := auth.Verify(strings.TrimSpace(out), time.Now()); err != nil {
		t.Fatalf("token issued after the subject revocation: %v", err)
	}
}

func TestTokenKeys(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "token-keys.json")
	code, out, errOut := runTokenCmd(t, "keys", "list", "--keys", keys)
	if code != exitOK || !strings.Contains(errOut, "no signing keys") {
		t.Fatalf("list of an empty set: exit %d %q %q", code, out, errOut)
	}
	code, out, errOut = runTokenCmd(t, "keys", "rotate", "--keys", keys)
	if code != exitOK || !strings.Contains(out, "new signing key") {
		t.Fatalf("rotate: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut = runTokenCmd(t, "keys", "rotate", "--keys", keys); code != exitOK {
		t.Fatalf("second rotate: %s", errOut)
	}
	code, out, _ = runTokenCmd(t, "keys", "list", "--keys", keys, "--json")
	if code != exitOK {
		t.Fatal("list --json failed")
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0]["status"] != "retired" || listed[1]["status"] != "active" {
		t.Fatalf("keys list --json = %s", out)
	}
	if strings.Contains(out, "private") {
		t.Fatal("keys list shows private keys")
	}
	code, out, _ = runTokenCmd(t, "keys", "list", "--keys", keys)
	if code != exitOK || !strings.Contains(out, "KID") || strings.Count(out, "\n") != 3 {
		t.Fatalf("keys list table:\n%s", out)
	}
	fi, err := os.Stat(keys)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
}

func TestTokenWithConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	const cfgText = `listeners:
  - name: public
    address: 127.0.0.1:18443
    tls:
      mode: self_signed
routes:
  - name: inference
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:19000
keys:
  path: ./data/keys.json
policy:
  dir: ./policy
audit:
  path: ./data/audit.log
identity:
  revocations_path: ./data/revoked.json
  tokens:
    keys_path: ./data/tk.json
    ttl: 1m
`
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTokenCmd(t, "issue", "--config", cfgPath, "--subject", "svc-a", "--kind", "service", "--json")
	if code != exitOK {
		t.Fatalf("issue --config exit %d: %s", code, errOut)
	}
	var issued struct {
		JTI       string `json:"jti"`
		ExpiresIn int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatal(err)
	}
	if issued.ExpiresIn != 60 {
		t.Fatalf("expires_in %d: the config's ttl (1m) was not used", issued.ExpiresIn)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "tk.json")); err != nil {
		t.Fatalf("keys_path relative to the config: %v", err)
	}
	if code, _, errOut = runTokenCmd(t, "revoke", "--config", cfgPath, "--jti", issued.JTI); code != exitOK {
		t.Fatalf("revoke --config: %s", errOut)
	}
	rl, err := revoke.Open(filepath.Join(dir, "data", "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !rl.IsRevoked(revoke.KindToken, issued.JTI, time.Now()) {
		t.Fatal("revocation not in identity.revocations_path")
	}
	// The default --until for a jti is now + max_ttl (1h by default).
	for _, e := range rl.Entries() {
		if d := time.Until(e.Until); d < 59*time.Minute || d > time.Hour {
			t.Fatalf("until in %s, want max_ttl", d)
		}
	}
}

func TestTokenUsage(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "k.json")
	revs := filepath.Join(dir, "r.json")
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", nil, exitUsage, "usage:"},
		{"help", []string{"-h"}, exitOK, "usage:"},
		{"unknown", []string{"mint"}, exitUsage, "unknown subcommand"},
		{"issue without subject", []string{"issue", "--keys", keys}, exitUsage, "--subject is required"},
		{"issue without file", []string{"issue", "--subject", "a"}, exitUsage, "--config FILE or --keys PATH"},
		{"issue with both", []string{"issue", "--subject", "a", "--keys", keys, "--config", "x.yaml"}, exitUsage, "not both"},
		{"issue bad kind", []string{"issue", "--subject", "a", "--kind", "root", "--keys", keys}, exitUsage, "--kind"},
		{"issue actor with kind service", []string{"issue", "--subject", "a", "--actor", "b", "--kind", "service", "--keys", keys}, exitUsage, "--actor"},
		{"issue empty scope", []string{"issue", "--subject", "a", "--scopes", "a,,b", "--keys", keys}, exitUsage, "empty item"},
		{"issue invalid subject", []string{"issue", "--subject", "a b", "--keys", keys}, exitUsage, "subject"},
		{"issue positional", []string{"issue", "--subject", "a", "--keys", keys, "extra"}, exitUsage, "unexpected argument"},
		{"issue corrupt keys", []string{"issue", "--subject", "a", "--keys", corrupt}, exitFail, "corrupt"},
		{"issue missing config", []string{"issue", "--subject", "a", "--config", filepath.Join(dir, "nope.yaml")}, exitFail, "--keys PATH"},
		{"revoke nothing", []string{"revoke", "--revocations", revs}, exitUsage, "--jti ID or --subject ID"},
		{"revoke both", []string{"revoke", "--revocations", revs, "--jti", "a", "--subject", "b"}, exitUsage, "not both"},
		{"revoke bad until", []string{"revoke", "--revocations", revs, "--jti", "a", "--until", "tomorrow"}, exitUsage, "RFC 3339"},
		{"revoke past until", []string{"revoke", "--revocations", revs, "--jti", "a", "--until", "2001-01-01T00:00:00Z"}, exitUsage, "not in the future"},
		{"revoke without file", []string{"revoke", "--jti", "a"}, exitUsage, "--revocations PATH"},
		{"revoke corrupt list", []string{"revoke", "--revocations", corrupt, "--jti", "a"}, exitFail, "corrupt"},
		{"revoke bad value", []string{"revoke", "--revocations", revs, "--subject", "a b"}, exitUsage, "value"},
		{"keys nothing", []string{"keys"}, exitUsage, "usage:"},
		{"keys unknown", []string{"keys", "drop"}, exitUsage, "unknown subcommand"},
		{"keys list without file", []string{"keys", "list"}, exitUsage, "--keys PATH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runTokenCmd(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", tt.want, out, errOut)
			}
		})
	}
	if data, _ := os.ReadFile(corrupt); string(data) != "{not json" {
		t.Fatal("a failed command modified a corrupt file")
	}
}
