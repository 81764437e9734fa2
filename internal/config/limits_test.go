package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLimitsRules(t *testing.T) {
	limits := func(block string) string { return base + "limits:\n" + block }
	g := lPolicyDir + 4 // the first line inside "limits:", appended after audit.path
	oneClass := "  classes:\n    - name: standard\n      requests: {limit: 60, per: 1m}\n"
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"absent", base, nil},
		{"full", limits("  backend: redis\n  failure_mode: open\n  redis:\n    addresses: [\"127.0.0.1:6379\"]\n    password_env: REDIS_PASSWORD\n    timeout: 100ms\n" +
			"  defaults: {user: standard, service: standard, agent: agents}\n" +
			"  classes:\n    - name: standard\n      requests: {limit: 60, per: 1m, burst: 10}\n      tokens: {minute: 100000, month: 10000000}\n      by: [route, model]\n" +
			"    - name: agents\n      tokens: {day: 50000}\n"), nil},
		{"unknown backend", limits("  backend: memcached\n" + oneClass),
			[]want{{"limits.backend", g, `unknown backend "memcached"`}}},
		{"redis without section", limits("  backend: redis\n" + oneClass),
			[]want{{"limits.backend", g, "needs a limits.redis section"}}},
		{"redis section with memory", limits("  redis:\n    addresses: [\"127.0.0.1:6379\"]\n" + oneClass),
			[]want{{"limits.redis", g, "backend is memory"}}},
		{"bad failure mode", limits("  failure_mode: ajar\n" + oneClass),
			[]want{{"limits.failure_mode", g, `unknown failure mode "ajar"`}}},
		{"bad redis", limits("  backend: redis\n  redis:\n    addresses: [\"nohost\", \":6379\"]\n    password_env: \"1BAD\"\n    db: 3\n    timeout: 20s\n" + oneClass),
			[]want{
				{"limits.redis.addresses[0]", g + 2, "nohost"},
				{"limits.redis.addresses[1]", g + 2, "want host:port"},
				{"limits.redis.password_env", g + 3, "not an environment variable name"},
				{"limits.redis.db", g + 4, "only database 0"},
				{"limits.redis.timeout", g + 5, "at most 10s"},
			}},
		{"bad durations", limits("  classes:\n    - name: a\n      requests: {limit: 5, per: 0s}\n    - name: b\n      requests:\n        limit: 5\n        per: 1000h\n"),
			[]want{{"limits.classes[0].requests.per", g + 2, "must be between 1ms and 744h"}, {"limits.classes[1].requests.per", g + 6, "must be between 1ms and 744h"}}},
		{"unparseable duration", limits("  classes:\n    - name: a\n      requests:\n        limit: 5\n        per: a minute\n"),
			[]want{{"limits.classes[0].requests.per", g + 4, "invalid duration"}}},
		{"not positive", limits("  classes:\n    - name: a\n      requests:\n        limit: 0\n        per: 1m\n        burst: -1\n      tokens:\n        hour: -5\n"),
			[]want{
				{"limits.classes[0].requests.limit", g + 3, "must be between 1 and"},
				{"limits.classes[0].requests.burst", g + 5, "must be between 1 and"},
				{"limits.classes[0].tokens.hour", g + 7, "must be between 0 (no budget)"},
			}},
		{"limits nothing", limits("  classes:\n    - name: a\n      by: [route]\n"),
			[]want{{"limits.classes[0]", g + 1, "limits nothing"}}},
		{"names", limits("  classes:\n    - name: Gold\n      requests: {limit: 1, per: 1s}\n    - name: a\n      requests: {limit: 1, per: 1s}\n    - name: a\n      requests: {limit: 1, per: 1s}\n    - requests: {limit: 1, per: 1s}\n"),
			[]want{
				{"limits.classes[0].name", g + 1, `"Gold": must be 1-63 lower case`},
				{"limits.classes[2].name", g + 5, `duplicate class name "a"`},
				{"limits.classes[3].name", g + 7, "required"},
			}},
		{"dimensions", limits("  classes:\n    - name: a\n      requests: {limit: 1, per: 1s}\n      by:\n        - route\n        - route\n        - tenant\n"),
			[]want{{"limits.classes[0].by[1]", g + 5, `duplicate dimension "route"`}, {"limits.classes[0].by[2]", g + 6, `unknown dimension "tenant"`}}},
		{"unknown default class", limits("  defaults:\n    user: standard\n    agent: gold\n" + oneClass),
			[]want{{"limits.defaults.agent", g + 2, `unknown class "gold" (classes: standard)`}}},
		{"default without classes", limits("  defaults:\n    service: gold\n"),
			[]want{{"limits.defaults.service", g + 1, `unknown class "gold" (classes: none defined)`}}},
		{"unknown field", limits("  clases: []\n"),
			[]want{{"limits.clases", g, `did you mean "classes"`}}},
		{"unknown class field", limits("  classes:\n    - name: a\n      request: {limit: 1, per: 1s}\n"),
			[]want{{"limits.classes[0]", g + 1, "limits nothing"}, {"limits.classes[0].request", g + 2, `did you mean "requests"`}}},
		{"fractional limit", limits("  classes:\n    - name: a\n      requests: {limit: 1.5, per: 1s}\n"),
			[]want{{"limits.classes[0].requests.limit", g + 2, "whole number"}}},
		{"max keys", limits("  max_keys: -3\n" + oneClass),
			[]want{{"limits.max_keys", g, "must be between 1 and"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "warden.yaml")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestLimitsDefaultsAndPassword(t *testing.T) {
	dir := t.TempDir()
	doc := base + "limits:\n  backend: redis\n  redis:\n    addresses: [\"127.0.0.1:6379\"]\n    password_file: redis.pass\n" +
		"  defaults: {agent: agents}\n  classes:\n    - name: agents\n      requests: {limit: 30, per: 1m}\n"
	path := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse([]byte(doc), path)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Limits
	if !l.On() || l.Open() || l.FailureMode != "closed" || l.MaxKeys != DefaultLimitsMaxKeys {
		t.Fatalf("defaults: %+v", l)
	}
	if r := l.Redis; r.KeyPrefix != "warden:limit:" || r.Timeout.D() != 250*time.Millisecond {
		t.Fatalf("redis defaults: %+v", r)
	}
	if b := l.Classes[0].Requests.Burst; b != 30 {
		t.Fatalf("burst default %d, want the limit (30)", b)
	}
	if m := l.Defaults.ByKind(); len(m) != 1 || m["agent"] != "agents" {
		t.Fatalf("ByKind %v", m)
	}
	cfg.Dir = dir
	cfg.resolvePaths()
	if _, err := cfg.Limits.Redis.Password(); err == nil || !strings.Contains(err.Error(), "password_file") {
		t.Fatalf("missing password file: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redis.pass"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw, err := cfg.Limits.Redis.Password(); err != nil || pw != "s3cret" {
		t.Fatalf("password %q %v", pw, err)
	}
	t.Setenv("WARDEN_TEST_REDIS_PW", "")
	r := &LimitsRedis{PasswordEnv: "WARDEN_TEST_REDIS_PW"}
	if _, err := r.Password(); err == nil {
		t.Fatal("an empty password variable was accepted")
	}
}
