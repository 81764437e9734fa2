package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/warden-ai/warden/internal/identity/mfa"
)

const mfaTestKeyHex = "8f2b6c1d4e5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

// runMfaCmd runs the registered `mfa` command as main would.
func runMfaCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	c, ok := commands["mfa"]
	if !ok {
		t.Fatal(`command "mfa" is not registered`)
	}
	var out, errOut bytes.Buffer
	code = c.run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestMfaEnrollListRemove(t *testing.T) {
	t.Setenv("WARDEN_TEST_MFA_KEY", mfaTestKeyHex)
	store := filepath.Join(t.TempDir(), "data", "mfa.json")
	sel := []string{"--store", store, "--key-env", "WARDEN_TEST_MFA_KEY"}

	// enroll: the URL and the secret on stdout, the note on stderr.
	code, out, errOut := runMfaCmd(t, append([]string{"enroll", "--user", "alice@example.com"}, sel...)...)
	if code != exitOK {
		t.Fatalf("enroll exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("stdout = %q, want the URL and the secret", out)
	}
	key, err := otp.NewKeyFromURL(lines[0])
	if err != nil || key.Secret() != lines[1] || key.Issuer() != "warden" || key.AccountName() != "alice@example.com" {
		t.Fatalf("URL %q / secret %q: %v", lines[0], lines[1], err)
	}
	if !strings.Contains(errOut, "neither is shown again") || strings.Contains(errOut, lines[1]) {
		t.Fatalf("stderr = %q", errOut)
	}

	// The printed secret works with the store.
	k, _ := mfa.ParseKey(mfaTestKeyHex)
	st, err := mfa.Open(store, k)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c, err := totp.GenerateCode(lines[1], now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Verify("alice@example.com", c, now); err != nil {
		t.Fatalf("printed secret does not verify: %v", err)
	}

	// Enrolling again needs --replace.
	code, _, errOut = runMfaCmd(t, append([]string{"enroll", "--user", "alice@example.com"}, sel...)...)
	if code != exitFail || !strings.Contains(errOut, "--replace") {
		t.Fatalf("second enroll exit %d: %s", code, errOut)
	}
	code, out, errOut = runMfaCmd(t, append([]string{"enroll", "--user", "alice@example.com", "--replace", "--issuer", "Acme"}, sel...)...)
	if code != exitOK || strings.Contains(out, lines[1]) || !strings.Contains(out, "issuer=Acme") || !strings.Contains(errOut, "re-enrolled") {
		t.Fatalf("enroll --replace exit %d: %q %s", code, out, errOut)
	}
	newSecret := strings.Split(strings.TrimSpace(out), "\n")[1]
	if code, _, errOut = runMfaCmd(t, append([]string{"enroll", "--user", "bob"}, sel...)...); code != exitOK {
		t.Fatalf("enroll bob exit %d: %s", code, errOut)
	}

	// list: users, never secrets.
	code, out, errOut = runMfaCmd(t, append([]string{"list"}, sel...)...)
	if code != exitOK || !strings.Contains(out, "alice@example.com") || !strings.Contains(out, "bob") ||
		!strings.HasPrefix(out, "USER") {
		t.Fatalf("list exit %d: %q %s", code, out, errOut)
	}
	code, out, _ = runMfaCmd(t, append([]string{"list", "--json"}, sel...)...)
	var listed []struct {
		User      string    `json:"user"`
		CreatedAt time.Time `json:"created_at"`
		Confirmed bool      `json:"confirmed"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 || listed[0].User != "alice@example.com" {
		t.Fatalf("list --json exit %d: %q", code, out)
	}
	data, _ := os.ReadFile(store)
	for _, s := range []string{lines[1], newSecret} {
		if strings.Contains(out, s) || bytes.Contains(data, []byte(s)) {
			t.Fatal("a secret appears in list output or in the store file")
		}
	}

	// remove.
	code, out, errOut = runMfaCmd(t, append([]string{"remove", "--user", "bob"}, sel...)...)
	if code != exitOK || !strings.Contains(out, "removed") {
		t.Fatalf("remove exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = runMfaCmd(t, append([]string{"remove", "--user", "bob"}, sel...)...)
	if code != exitFail || !strings.Contains(errOut, "not enrolled") {
		t.Fatalf("second remove exit %d: %s", code, errOut)
	}
	_, out, _ = runMfaCmd(t, append([]string{"list"}, sel...)...)
	if strings.Contains(out, "bob") {
		t.Fatalf("bob still listed: %q", out)
	}
}

func TestMfaWithConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policy"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mfa.key"), []byte(mfaTestKeyHex+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const base = `listeners:
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
	write := func(text string) string {
		p := filepath.Join(dir, "warden.yaml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// No identity.mfa: a clear error.
	cfgPath := write(base)
	code, _, errOut := runMfaCmd(t, "list", "--config", cfgPath)
	if code != exitFail || !strings.Contains(errOut, "mfa is not configured") {
		t.Fatalf("list without identity.mfa: exit %d: %s", code, errOut)
	}

	// store_path and the key file relative to the config.
	cfgPath = write(base + `identity:
  mfa:
    store_path: ./data/mfa.json
    issuer: Acme
    encryption_key:
      file: ./mfa.key
`)
	code, out, errOut := runMfaCmd(t, "enroll", "--config", cfgPath, "--user", "carol")
	if code != exitOK {
		t.Fatalf("enroll --config exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "issuer=Acme") {
		t.Fatalf("issuer from the config not used: %q", out)
	}
	k, _ := mfa.ParseKey(mfaTestKeyHex)
	st, err := mfa.Open(filepath.Join(dir, "data", "mfa.json"), k)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := st.List(); err != nil || len(list) != 1 || list[0].User != "carol" {
		t.Fatalf("store at store_path: %+v, %v", list, err)
	}

	// The key from an environment variable; a wrong key fails closed.
	t.Setenv("WARDEN_TEST_MFA_WRONG_KEY", strings.Repeat("ab", 32))
	cfgPath = write(base + `identity:
  mfa:
    store_path: ./data/mfa.json
    encryption_key:
      env: WARDEN_TEST_MFA_WRONG_KEY
`)
	code, _, errOut = runMfaCmd(t, "list", "--config", cfgPath)
	if code != exitFail || !strings.Contains(errOut, "wrong encryption key") {
		t.Fatalf("list with the wrong key: exit %d: %s", code, errOut)
	}
}

func TestMfaUsage(t *testing.T) {
	t.Setenv("WARDEN_TEST_MFA_KEY", mfaTestKeyHex)
	t.Setenv("WARDEN_TEST_MFA_BAD_KEY", "not-a-key")
	store := filepath.Join(t.TempDir(), "mfa.json")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", nil, exitUsage, "usage:"},
		{"help", []string{"help"}, exitOK, ""},
		{"unknown subcommand", []string{"code", "--secret", "JBSWY3DPEHPK3PXP"}, exitUsage, "unknown subcommand"},
		{"enroll without user", []string{"enroll", "--store", store, "--key-env", "WARDEN_TEST_MFA_KEY"}, exitUsage, "--user is required"},
		{"enroll without store", []string{"enroll", "--user", "a"}, exitUsage, "--config FILE or --store PATH"},
		{"store without key-env", []string{"list", "--store", store}, exitUsage, "--key-env"},
		{"both", []string{"list", "--store", store, "--config", "x.yaml"}, exitUsage, "not both"},
		{"key-env with config", []string{"list", "--config", "x.yaml", "--key-env", "X"}, exitUsage, "--key-env goes with --store"},
		{"unset key env", []string{"list", "--store", store, "--key-env", "WARDEN_TEST_SURELY_UNSET_ENV"}, exitFail, "not set"},
		{"bad key", []string{"list", "--store", store, "--key-env", "WARDEN_TEST_MFA_BAD_KEY"}, exitFail, "encryption key"},
		{"invalid user", []string{"enroll", "--user", "a b", "--store", store, "--key-env", "WARDEN_TEST_MFA_KEY"}, exitUsage, "printable ASCII"},
		{"positional", []string{"list", "--store", store, "--key-env", "WARDEN_TEST_MFA_KEY", "extra"}, exitUsage, "unexpected argument"},
		{"bad flag", []string{"list", "--nope"}, exitUsage, "not defined"},
		{"flag help", []string{"enroll", "-h"}, exitOK, "usage: warden mfa enroll"},
		{"missing config", []string{"list", "--config", filepath.Join(t.TempDir(), "nope.yaml")}, exitFail, "--store PATH --key-env VAR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runMfaCmd(t, tt.args...)
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			if strings.Contains(out+errOut, "not-a-key") {
				t.Fatal("the key text was printed")
			}
		})
	}
}
