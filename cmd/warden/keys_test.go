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

	"github.com/warden-ai/warden/internal/identity"
)

// runKeysCmd runs the registered `keys` command as main would.
func runKeysCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c, ok := commands["keys"]
	if !ok {
		t.Fatal(`command "keys" is not registered`)
	}
	var out, errOut bytes.Buffer
	code = c.run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestKeysCreateListRevoke(t *testing.T) {
	store := filepath.Join(t.TempDir(), "data", "keys.json")

	// create: the key alone on stdout, the warning on stderr.
	code, out, errOut := runKeysCmd(t, "create", "--subject", "svc-billing", "--scopes", "inference:chat, models:read", "--store", store)
	if code != exitOK {
		t.Fatalf("create exit %d: %s", code, errOut)
	}
	key := strings.TrimSuffix(out, "\n")
	if strings.Contains(key, "\n") {
		t.Fatalf("stdout must be the key on its own line, got %q", out)
	}
	id, secret, err := identity.ParseAPIKey(key)
	if err != nil {
		t.Fatalf("printed key does not parse: %v", err)
	}
	if !strings.Contains(errOut, "will not be shown again") || strings.Contains(errOut, secret) {
		t.Fatalf("stderr = %q", errOut)
	}

	// create --json, agent, flags after the store, never-expiring.
	code, out, errOut = runKeysCmd(t, "create", "--store", store, "--subject", "agent-planner", "--kind", "agent", "--ttl", "0", "--json")
	if code != exitOK {
		t.Fatalf("create --json exit %d: %s", code, errOut)
	}
	var created struct {
		ID, Key, Subject, Kind string
		Scopes                 []string
		ExpiresAt              *time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("create --json output %q: %v", out, err)
	}
	if created.Subject != "agent-planner" || created.Kind != "agent" || created.ExpiresAt != nil || created.Scopes == nil {
		t.Fatalf("create --json = %+v", created)
	}
	if kid, _, err := identity.ParseAPIKey(created.Key); err != nil || kid != created.ID {
		t.Fatalf("create --json key/id mismatch: %v", err)
	}

	// The default TTL is 90 days.
	ks, err := identity.OpenKeyStore(store)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ks.Authenticate(key, time.Now())
	if err != nil {
		t.Fatalf("created key does not authenticate: %v", err)
	}
	if d := time.Until(p.ExpiresAt); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Fatalf("default expiry in %s, want 90 days", d)
	}
	if strings.Join(p.Scopes, ",") != "inference:chat,models:read" {
		t.Fatalf("scopes = %v", p.Scopes)
	}

	// list: a table with both keys, active, no hashes.
	code, out, errOut = runKeysCmd(t, "list", "--store", store)
	if code != exitOK {
		t.Fatalf("list exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") {
		t.Fatalf("list output:\n%s", out)
	}
	for _, want := range []string{"SUBJECT", "KIND", "SCOPES", "CREATED", "EXPIRES", "STATUS", id, created.ID,
		"svc-billing", "agent-planner", "inference:chat,models:read", "never", "active"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	for _, r := range ks.List() {
		if strings.Contains(out, r.Hash) {
			t.Fatal("list prints hashes")
		}
	}

	// revoke (ID before the flags), then list shows it revoked and the key fails.
	code, out, errOut = runKeysCmd(t, "revoke", id, "--store", store)
	if code != exitOK || !strings.Contains(out, id) {
		t.Fatalf("revoke exit %d: %s %s", code, out, errOut)
	}
	code, out, _ = runKeysCmd(t, "revoke", "--store", store, id)
	if code != exitOK || !strings.Contains(out, "already revoked") {
		t.Fatalf("second revoke exit %d: %s", code, out)
	}
	code, out, errOut = runKeysCmd(t, "list", "--json", "--store", store)
	if code != exitOK {
		t.Fatalf("list --json exit %d: %s", code, errOut)
	}
	if strings.Contains(out, `"hash"`) {
		t.Fatal("list --json prints hashes")
	}
	var listed []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(out), &listed); err != nil || len(listed) != 2 {
		t.Fatalf("list --json = %s (%v)", out, err)
	}
	status := map[string]string{listed[0].ID: listed[0].Status, listed[1].ID: listed[1].Status}
	if status[id] != "revoked" || status[created.ID] != "active" {
		t.Fatalf("statuses = %v", status)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Authenticate(key, time.Now()); !errors.Is(err, identity.ErrRevokedKey) {
		t.Fatalf("revoked key: %v", err)
	}

	// revoke accepts a whole key and never echoes it.
	code, out, errOut = runKeysCmd(t, "revoke", "--store", store, created.Key)
	if code != exitOK || strings.Contains(out+errOut, created.Key) {
		t.Fatalf("revoke by key exit %d: %s %s", code, out, errOut)
	}

	fi, err := os.Stat(store)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v %v", fi, err)
	}
}

func TestKeysUsageAndFailures(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "keys.json")
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string // substring of stderr
	}{
		{"no subcommand", nil, exitUsage, "usage:"},
		{"help", []string{"-h"}, exitOK, ""},
		{"unknown subcommand", []string{"rotate"}, exitUsage, "unknown subcommand"},
		{"create -h", []string{"create", "-h"}, exitOK, "--subject"},
		{"create without subject", []string{"create", "--store", store}, exitUsage, "--subject is required"},
		{"create without store", []string{"create", "--subject", "svc"}, exitUsage, "--config FILE or --store PATH is required"},
		{"create with both", []string{"create", "--subject", "svc", "--store", store, "--config", "x.yaml"}, exitUsage, "not both"},
		{"create bad kind", []string{"create", "--subject", "svc", "--kind", "user", "--store", store}, exitUsage, "service or agent"},
		{"create bad ttl", []string{"create", "--subject", "svc", "--ttl", "soon", "--store", store}, exitUsage, "invalid value"},
		{"create negative ttl", []string{"create", "--subject", "svc", "--ttl", "-1h", "--store", store}, exitUsage, "negative"},
		{"create empty scope", []string{"create", "--subject", "svc", "--scopes", "a,,b", "--store", store}, exitUsage, "empty scope"},
		{"create bad subject", []string{"create", "--subject", "svc billing", "--store", store}, exitUsage, "subject"},
		{"create unknown flag", []string{"create", "--subjekt", "svc", "--store", store}, exitUsage, "flag provided but not defined"},
		{"create extra argument", []string{"create", "--subject", "svc", "--store", store, "extra"}, exitUsage, "unexpected argument"},
		{"create in corrupt store", []string{"create", "--subject", "svc", "--store", corrupt}, exitFail, corrupt},
		{"list corrupt store", []string{"list", "--store", corrupt}, exitFail, corrupt},
		{"list missing config", []string{"list", "--config", filepath.Join(dir, "nope.yaml")}, exitFail, "--store PATH"},
		{"list empty store", []string{"list", "--store", store}, exitOK, "no keys"},
		{"revoke without id", []string{"revoke", "--store", store}, exitUsage, "exactly one key ID"},
		{"revoke two ids", []string{"revoke", "--store", store, "a", "b"}, exitUsage, "exactly one key ID"},
		{"revoke malformed id", []string{"revoke", "--store", store, "nope"}, exitUsage, "not a key id"},
		{"revoke unknown id", []string{"revoke", "--store", store, "0123456789abcdef01234567"}, exitFail, "no key with id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runKeysCmd(t, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.want, out, errOut)
			}
			if !strings.Contains(errOut+out, tt.wantErr) {
				t.Fatalf("output lacks %q\nstdout: %s\nstderr: %s", tt.wantErr, out, errOut)
			}
		})
	}
	if data, _ := os.ReadFile(corrupt); string(data) != "{not json" {
		t.Fatal("a failed create modified the corrupt store")
	}
}

func TestKeysWithConfig(t *testing.T) {
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
`
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runKeysCmd(t, "create", "--config", cfgPath, "--subject", "svc")
	if code != exitOK {
		t.Fatalf("create --config exit %d: %s", code, errOut)
	}
	ks, err := identity.OpenKeyStore(filepath.Join(dir, "data", "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Authenticate(strings.TrimSpace(out), time.Now()); err != nil {
		t.Fatalf("key created through --config is not in keys.path: %v", err)
	}

	// A config whose upstream credential env var is unset here fails to load;
	// the message says so and points at --store.
	withCred := strings.Replace(cfgText, "url: http://127.0.0.1:19000",
		"url: http://127.0.0.1:19000\n      credential:\n        env: WARDEN_TEST_SURELY_UNSET_ENV", 1)
	if err := os.WriteFile(cfgPath, []byte(withCred), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runKeysCmd(t, "list", "--config", cfgPath)
	if code != exitFail || !strings.Contains(errOut, "WARDEN_TEST_SURELY_UNSET_ENV") && !strings.Contains(errOut, "credential") || !strings.Contains(errOut, "--store") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}
