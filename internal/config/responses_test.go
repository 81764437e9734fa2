package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestResponsesRules(t *testing.T) {
	responses := func(block string) string { return base + "responses:\n" + block }
	withLimits := func(block string) string {
		return base + "limits:\n  classes:\n    - name: slow\n      requests: {limit: 5, per: 1m}\n" + "responses:\n" + block
	}
	withMFA := func(block string) string {
		return base + "identity:\n  mfa:\n    encryption_key: {env: MFA_KEY}\n" + "responses:\n" + block
	}
	g := lAuditPath + 2 // the first line inside "responses:"
	hook := "  webhooks:\n    - name: soc\n      url: https://soc.example.org/hook\n      secret_env: SOC_SECRET\n"
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"absent", base, nil},
		{"disabled", responses("  enabled: false\n"), nil},
		{"full", withLimits("  path: data/sanctions.json\n  max_duration: 24h\n" + hook +
			"  playbooks:\n    - name: exfil\n      match: {min_score: 0.9, features: [tokens_out], kinds: [agent, service]}\n" +
			"      actions:\n        - {type: quarantine, duration: 1h}\n        - {type: revoke}\n        - {type: webhook, webhook: soc}\n" +
			"    - name: noisy\n      match: {min_score: 0.5}\n      actions:\n        - {type: throttle, class: slow, duration: 15m}\n"), nil},
		{"require_mfa with mfa", withMFA("  playbooks:\n    - name: a\n      actions:\n        - {type: require_mfa, duration: 30m}\n"), nil},
		{"require_mfa without mfa", responses("  playbooks:\n    - name: a\n      actions:\n        - {type: require_mfa, duration: 30m}\n"),
			[]want{{"responses.playbooks[0].actions[0].type", g + 3, "needs identity.mfa"}}},
		{"throttle without the class", responses("  playbooks:\n    - name: a\n      actions:\n        - {type: throttle, class: slow, duration: 1m}\n        - {type: throttle, duration: 1m}\n"),
			[]want{
				{"responses.playbooks[0].actions[0].class", g + 3, `unknown class "slow": define it in limits.classes`},
				{"responses.playbooks[0].actions[1].type", g + 4, "duplicate action throttle"},
				{"responses.playbooks[0].actions[1].class", g + 4, "required"},
			}},
		{"rollback", strings.Replace(base, "    segment: inference\n", "    segment: inference\n    model: {name: llama}\n", 1) +
			"models:\n  roots: [/m]\n  trusted_keys:\n    - {name: k, file: k.pub}\n" +
			"responses:\n  playbooks:\n    - name: a\n      actions:\n        - {type: rollback, route: openai}\n", nil},
		{"rollback needs a bound route", responses("  playbooks:\n    - name: a\n      actions:\n        - type: rollback\n        - {type: rollback, route: local}\n        - {type: rollback, route: nope}\n        - {type: revoke, route: local}\n"),
			[]want{
				{"responses.playbooks[0].actions[0].route", g + 3, "required"},
				{"responses.playbooks[0].actions[1].route", g + 4, "not bound to a registry model"},
				{"responses.playbooks[0].actions[2].route", g + 5, `unknown route "nope"`},
				{"responses.playbooks[0].actions[3].route", g + 6, "only a rollback names a route"},
			}},
		{"unknown action and missing type", responses("  playbooks:\n    - name: a\n      actions:\n        - type: ban\n        - duration: 1m\n"),
			[]want{
				{"responses.playbooks[0].actions[0].type", g + 3, `unknown action "ban"`},
				{"responses.playbooks[0].actions[1].type", g + 4, "required"},
			}},
		{"durations", responses("  max_duration: 2h\n  playbooks:\n    - name: a\n      actions:\n        - {type: quarantine, duration: 3h}\n        - {type: revoke, duration: 1m}\n        - {type: quarantine, duration: 0s}\n"),
			[]want{
				{"responses.playbooks[0].actions[0].duration", g + 4, "responses.max_duration (2h0m0s)"},
				{"responses.playbooks[0].actions[1].duration", g + 5, "takes no duration"},
				{"responses.playbooks[0].actions[2].type", g + 6, "duplicate action quarantine"},
				{"responses.playbooks[0].actions[2].duration", g + 6, "must be between 1s"},
			}},
		{"max duration bounds", responses("  max_duration: 1000h\n"),
			[]want{{"responses.max_duration", g, "must be between 1s and 720h"}}},
		{"match bounds", responses("  playbooks:\n    - name: a\n      match:\n        min_score: 1.5\n        min_risk: -1\n        features: [\"Bad Name\"]\n        kinds: [robot]\n      actions: [{type: revoke}]\n"),
			[]want{
				{"responses.playbooks[0].match.min_score", g + 3, "between 0 and 1"},
				{"responses.playbooks[0].match.min_risk", g + 4, "between 0 and 1"},
				{"responses.playbooks[0].match.features[0]", g + 5, "feature name"},
				{"responses.playbooks[0].match.kinds[0]", g + 6, `unknown kind "robot"`},
			}},
		{"names and no actions", responses("  playbooks:\n    - name: A\n      actions: [{type: revoke}]\n    - name: b\n      actions: [{type: revoke}]\n    - name: b\n      actions: []\n"),
			[]want{
				{"responses.playbooks[0].name", g + 1, "must be 1-63 lower case"},
				{"responses.playbooks[2].name", g + 5, `duplicate playbook name "b"`},
				{"responses.playbooks[2].actions", g + 6, "at least one action"},
			}},
		{"webhooks", responses("  webhooks:\n    - name: a\n      url: http://soc.example.org/hook\n      secret_env: S\n      secret_file: f\n" +
			"      timeout: 2m\n      max_attempts: 50\n      queue_size: -1\n    - name: a\n      url: https://user:pw@x.example/\n      secret_env: \"1X\"\n" +
			"  playbooks:\n    - name: p\n      actions:\n        - {type: webhook, webhook: nope}\n        - {type: webhook}\n"),
			[]want{
				{"responses.webhooks[0]", g + 1, "exactly one of secret_env or secret_file"},
				{"responses.webhooks[0].url", g + 2, "loopback addresses only"},
				{"responses.webhooks[0].timeout", g + 5, "at most 1m0s"},
				{"responses.webhooks[0].max_attempts", g + 6, "between 1 and 20"},
				{"responses.webhooks[0].queue_size", g + 7, "between 1 and 100000"},
				{"responses.webhooks[1].name", g + 8, `duplicate webhook name "a"`},
				{"responses.webhooks[1].url", g + 9, "must not carry credentials"},
				{"responses.webhooks[1].secret_env", g + 10, "not an environment variable name"},
				{"responses.playbooks[0].actions[0].webhook", g + 14, `unknown webhook "nope"`},
				{"responses.playbooks[0].actions[1].webhook", g + 15, "required"},
			}},
		{"loopback http webhook", responses("  webhooks:\n    - name: local\n      url: http://127.0.0.1:9999/hook\n      secret_env: S\n"), nil},
		{"disabled with playbooks", responses("  enabled: false\n  playbooks:\n    - name: a\n      actions: [{type: revoke}]\n"),
			[]want{{"responses.enabled", g, "playbooks are configured"}}},
		{"same file as the key store", responses("  path: keys.json\n"),
			[]want{{"responses.path", g, "must not be the same file as keys.path"}}},
		{"unknown field", responses("  playbook: []\n"),
			[]want{{"responses.playbook", g, `did you mean "playbooks"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "warden.yaml")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestResponsesDefaultsAndSecret(t *testing.T) {
	dir := t.TempDir()
	doc := base + "responses:\n  webhooks:\n    - name: soc\n      url: https://soc.example.org/hook\n      secret_file: soc.secret\n"
	cfg, err := Parse([]byte(doc), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Responses
	if !r.On() || r.Path != DefaultSanctionsPath || r.MaxDuration.D() != 7*24*time.Hour {
		t.Fatalf("defaults: %+v", r)
	}
	w := r.Webhooks[0]
	if w.Timeout.D() != 5*time.Second || w.MaxAttempts != 5 || w.QueueSize != 1000 {
		t.Fatalf("webhook defaults: %+v", w)
	}
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(doc, "dir: policies", "dir: .", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "responses.webhooks[0].secret_file") {
		t.Fatalf("missing secret file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "soc.secret"), []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "at least 32 are required") {
		t.Fatalf("short secret: %v", err)
	}
	secret := strings.Repeat("ab", 32)
	if err := os.WriteFile(filepath.Join(dir, "soc.secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENAI_API_KEY", "sk-test")
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := loaded.Responses.Webhooks[0].Secret(); err != nil || string(got) != secret {
		t.Fatalf("secret %q %v", got, err)
	}
	if loaded.Responses.Path != filepath.Join(dir, DefaultSanctionsPath) {
		t.Fatalf("path not resolved: %s", loaded.Responses.Path)
	}
}
