package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	code, out, errOut = runKeysCmd(t, "create", "--store", store, "--subject", "agent-planner", "--kind", "agent", "--no-expiry", "--json")
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
	for _, want := range []string{"SUBJECT", "KIND", "SCOPES", "CREATED", "EXPIRES", "LAST USED", "STATUS", id, created.ID,
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
		{"unknown subcommand", []string{"frobnicate"}, exitUsage, "unknown subcommand"},
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
		{"rotate without id", []string{"rotate", "--store", store}, exitUsage, "exactly one key ID"},
		{"rotate malformed id", []string{"rotate", "--store", store, "nope"}, exitUsage, "not a key id"},
		{"rotate unknown id", []string{"rotate", "--store", store, "0123456789abcdef01234567"}, exitFail, "no key with id"},
		{"rotate negative overlap", []string{"rotate", "--store", store, "--overlap", "-1h", "0123456789abcdef01234567"}, exitUsage, "negative"},
		{"rotate overlap over the maximum", []string{"rotate", "--store", store, "--overlap", "366d", "0123456789abcdef01234567"}, exitUsage, "maximum"},
		{"rotate corrupt store", []string{"rotate", "--store", corrupt, "0123456789abcdef01234567"}, exitFail, corrupt},
		{"prune extra argument", []string{"prune", "--store", store, "extra"}, exitUsage, "unexpected argument"},
		{"prune bad age", []string{"prune", "--store", store, "--older-than", "soon"}, exitUsage, "invalid value"},
		{"prune corrupt store", []string{"prune", "--store", corrupt}, exitFail, corrupt},
		{"prune empty store", []string{"prune", "--store", store}, exitOK, "pruned 0 keys"},
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

func TestKeysCreateExpiry(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		want        int
		wantErr     string        // substring of stderr
		wantTTL     time.Duration // on success; 0: never expires
		wantNoStore bool
	}{
		{"default 90 days", nil, exitOK, "", 90 * 24 * time.Hour, false},
		{"ttl 365d is the maximum", []string{"--ttl", "365d"}, exitOK, "", 365 * 24 * time.Hour, false},
		{"no-expiry", []string{"--no-expiry"}, exitOK, "expires: never", 0, false},
		{"ttl 0 needs --no-expiry", []string{"--ttl", "0"}, exitUsage, "--no-expiry", 0, true},
		{"ttl 0s needs --no-expiry", []string{"--ttl", "0s"}, exitUsage, "--no-expiry", 0, true},
		{"ttl over the maximum", []string{"--ttl", "366d"}, exitUsage, "maximum of 365d", 0, true},
		{"ttl over the maximum in hours", []string{"--ttl", "8761h"}, exitUsage, "maximum of 365d", 0, true},
		{"no-expiry with ttl", []string{"--no-expiry", "--ttl", "30d"}, exitUsage, "not both", 0, true},
		{"no-expiry with ttl 0", []string{"--ttl", "0", "--no-expiry"}, exitUsage, "not both", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := filepath.Join(t.TempDir(), "keys.json")
			args := append([]string{"create", "--store", store, "--subject", "svc"}, tt.args...)
			code, out, errOut := runKeysCmd(t, args...)
			if code != tt.want || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s", code, tt.want, tt.wantErr, errOut)
			}
			if tt.wantNoStore {
				if _, err := os.Stat(store); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a refused create wrote the store: %v", err)
				}
				return
			}
			ks, err := identity.OpenKeyStore(store)
			if err != nil {
				t.Fatal(err)
			}
			p, err := ks.Authenticate(strings.TrimSpace(out), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			recs := ks.List()
			if len(recs) != 1 {
				t.Fatalf("%d keys", len(recs))
			}
			if tt.wantTTL == 0 && !p.ExpiresAt.IsZero() || tt.wantTTL != 0 && recs[0].ExpiresAt.Sub(recs[0].CreatedAt) != tt.wantTTL {
				t.Fatalf("key expires at %v (created %v), want a lifetime of %s", recs[0].ExpiresAt, recs[0].CreatedAt, tt.wantTTL)
			}
		})
	}
}

func TestKeysRotate(t *testing.T) {
	store := filepath.Join(t.TempDir(), "keys.json")
	code, out, errOut := runKeysCmd(t, "create", "--store", store, "--subject", "agent-planner", "--kind", "agent",
		"--scopes", "chat,models:read", "--ttl", "30d")
	if code != exitOK {
		t.Fatalf("create exit %d: %s", code, errOut)
	}
	oldKey := strings.TrimSpace(out)
	oldID, _, _ := identity.ParseAPIKey(oldKey)

	// rotate --json: the new key once, the link to the old one, and when the
	// old one stops (24h by default).
	before := time.Now()
	code, out, errOut = runKeysCmd(t, "rotate", oldID, "--store", store, "--json")
	if code != exitOK {
		t.Fatalf("rotate exit %d: %s", code, errOut)
	}
	var rotated struct {
		ID, Key, Subject, Kind string
		Scopes                 []string
		CreatedAt              time.Time `json:"created_at"`
		ExpiresAt              time.Time `json:"expires_at"`
		RotatedFrom            string    `json:"rotated_from"`
		OldExpiresAt           time.Time `json:"old_expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &rotated); err != nil {
		t.Fatalf("rotate --json output %q: %v", out, err)
	}
	if rotated.RotatedFrom != oldID || rotated.Subject != "agent-planner" || rotated.Kind != "agent" ||
		strings.Join(rotated.Scopes, ",") != "chat,models:read" || rotated.ExpiresAt.Sub(rotated.CreatedAt) != 30*24*time.Hour {
		t.Fatalf("rotate --json = %+v", rotated)
	}
	if d := rotated.OldExpiresAt.Sub(before); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("old key stops in %s, want the 24h default overlap", d)
	}
	if kid, _, err := identity.ParseAPIKey(rotated.Key); err != nil || kid != rotated.ID {
		t.Fatalf("rotate --json key/id mismatch: %v", err)
	}
	if !strings.Contains(errOut, "keeps working until") || strings.Contains(errOut, rotated.Key) {
		t.Fatalf("stderr = %q", errOut)
	}

	// During the overlap both keys work.
	ks, err := identity.OpenKeyStore(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{oldKey, rotated.Key} {
		if _, err := ks.Authenticate(key, time.Now()); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	if err := ks.FlushLastUsed(); err != nil { // as the server does
		t.Fatal(err)
	}

	// list shows the rotation and the last use.
	code, out, errOut = runKeysCmd(t, "list", "--store", store)
	if code != exitOK {
		t.Fatalf("list exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "active (rotated)") || strings.Contains(out, "never") {
		t.Fatalf("list after rotate and use:\n%s", out)
	}
	code, out, _ = runKeysCmd(t, "list", "--store", store, "--json")
	var listed []struct {
		ID          string
		LastUsed    time.Time `json:"last_used"`
		RotatedFrom string    `json:"rotated_from"`
		RotatedTo   string    `json:"rotated_to"`
	}
	if err := json.Unmarshal([]byte(out), &listed); code != exitOK || err != nil || len(listed) != 2 {
		t.Fatalf("list --json = %s (%v)", out, err)
	}
	for _, l := range listed {
		if d := time.Since(l.LastUsed); d < 0 || d > time.Minute {
			t.Errorf("key %s last used %v", l.ID, l.LastUsed)
		}
		if l.ID == oldID && l.RotatedTo != rotated.ID || l.ID == rotated.ID && l.RotatedFrom != oldID {
			t.Errorf("rotation links = %+v", l)
		}
	}

	// The old key cannot be rotated again.
	code, _, errOut = runKeysCmd(t, "rotate", "--store", store, oldID)
	if code != exitFail || !strings.Contains(errOut, "already rotated") {
		t.Fatalf("second rotation of the old key: exit %d: %s", code, errOut)
	}

	// Rotating the new key by the whole key with --overlap 0 stops it at once.
	code, out, errOut = runKeysCmd(t, "rotate", "--store", store, "--overlap", "0", rotated.Key)
	if code != exitOK || strings.Contains(out+errOut, rotated.Key) || !strings.Contains(errOut, "stopped working now") {
		t.Fatalf("rotate --overlap 0 exit %d: %s %s", code, out, errOut)
	}
	third := strings.TrimSpace(out)
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Authenticate(rotated.Key, time.Now()); !errors.Is(err, identity.ErrExpiredKey) {
		t.Fatalf("key rotated with overlap 0: %v, want ErrExpiredKey", err)
	}
	if _, err := ks.Authenticate(third, time.Now()); err != nil {
		t.Fatalf("third key: %v", err)
	}
	code, _, errOut = runKeysCmd(t, "rotate", "--store", store, rotated.ID)
	if code != exitFail || !strings.Contains(errOut, "expired") {
		t.Fatalf("rotating an expired key: exit %d: %s", code, errOut)
	}

	// A revoked key cannot be rotated.
	thirdID, _, _ := identity.ParseAPIKey(third)
	if code, _, errOut := runKeysCmd(t, "revoke", "--store", store, thirdID); code != exitOK {
		t.Fatalf("revoke: %s", errOut)
	}
	code, _, errOut = runKeysCmd(t, "rotate", "--store", store, thirdID)
	if code != exitFail || !strings.Contains(errOut, "revoked") {
		t.Fatalf("rotating a revoked key: exit %d: %s", code, errOut)
	}
}

func TestKeysPrune(t *testing.T) {
	store := filepath.Join(t.TempDir(), "keys.json")
	// Two keys that died in 2020, written as an old store would hold them.
	const longDead = `{"version":1,"keys":[
  {"id":"00000000000000000000000a","hash":"` + hash64 + `","subject":"svc-revoked","kind":"service","created_at":"2020-01-01T00:00:00Z","revoked_at":"2020-02-01T00:00:00Z"},
  {"id":"00000000000000000000000b","hash":"` + hash64 + `","subject":"svc-expired","kind":"service","created_at":"2020-01-01T00:00:00Z","expires_at":"2020-03-01T00:00:00Z"}
]}`
	if err := os.WriteFile(store, []byte(longDead), 0o600); err != nil {
		t.Fatal(err)
	}
	create := func(subject string) string {
		t.Helper()
		code, out, errOut := runKeysCmd(t, "create", "--store", store, "--subject", subject, "--json")
		if code != exitOK {
			t.Fatalf("create: %s", errOut)
		}
		var c struct{ ID string }
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	active := create("svc-active")
	recent := create("svc-recent")
	if code, _, errOut := runKeysCmd(t, "revoke", "--store", store, recent); code != exitOK {
		t.Fatalf("revoke: %s", errOut)
	}
	ids := func() []string {
		t.Helper()
		ks, err := identity.OpenKeyStore(store)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range ks.List() {
			out = append(out, r.ID)
		}
		return out
	}

	tests := []struct {
		name    string
		args    []string
		wantOut string
		want    []string // remaining ids
	}{
		{"default 30 days: the long-dead keys go", nil, "pruned 2 keys revoked or expired for more than 30d", []string{active, recent}},
		{"again: nothing to do", []string{"--older-than", "30d"}, "pruned 0 keys", []string{active, recent}},
		{"0: every dead key goes, never an active one", []string{"--older-than", "0"}, "pruned 1 key ", []string{active}},
	}
	for _, tt := range tests {
		code, out, errOut := runKeysCmd(t, append([]string{"prune", "--store", store}, tt.args...)...)
		if code != exitOK || !strings.Contains(out, tt.wantOut) {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", tt.name, code, out, errOut)
		}
		got := ids()
		slices.Sort(got)
		slices.Sort(tt.want)
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%s: remaining keys %v, want %v", tt.name, got, tt.want)
		}
	}
}

// hash64 is a well-formed stored hash for hand-written records.
const hash64 = "abababababababababababababababababababababababababababababababab"
