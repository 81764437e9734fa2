package config

import (
	"strings"
	"testing"
	"time"
)

const behaviorBase = `listeners:
  - address: "127.0.0.1:8443"
routes:
  - name: local
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:11434
policy:
  dir: policy/
`

func TestBehaviorConfig(t *testing.T) {
	c, err := Parse([]byte(behaviorBase), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := c.Behavior
	if b.Enabled || b.HalfLife.D() != time.Hour || b.Threshold != DefaultBehaviorThreshold || b.Warmup != 30 ||
		b.Window != 500 || b.Cooldown.D() != time.Minute || b.MaxPrincipals != 1<<20 || b.MaxNetworks != 1<<16 || b.IdleTTL.D() != 720*time.Hour {
		t.Fatalf("defaults %+v", b)
	}
	tests := []struct {
		yaml, want string
	}{
		{"behavior:\n  enabled: true\n  half_life: 500ms\n", "t.yaml:13: behavior.half_life: 500ms: must be between 1s and 720h"},
		{"behavior:\n  threshold: 1\n", "t.yaml:12: behavior.threshold: 1: must be between 2 and 100"},
		{"behavior:\n  warmup: -3\n", "t.yaml:12: behavior.warmup: -3"},
		{"behavior:\n  window: 5\n", "t.yaml:12: behavior.window: 5"},
		{"behavior:\n  cooldown: -1s\n", "t.yaml:12: behavior.cooldown"},
		{"behavior:\n  max_principals: -1\n", "t.yaml:12: behavior.max_principals"},
		{"behavior:\n  max_networks: 100000000\n", "t.yaml:12: behavior.max_networks"},
		{"behavior:\n  idle_ttl: 10s\n", "t.yaml:12: behavior.idle_ttl"},
		{"behavior:\n  sensitivity: high\n", "sensitivity"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(behaviorBase+tc.yaml), "t.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	c, err = Parse([]byte(behaviorBase+"behavior:\n  enabled: true\n  threshold: 20\n  half_life: 2h\n"), "t.yaml")
	if err != nil || !c.Behavior.Enabled || c.Behavior.Threshold != 20 || c.Behavior.HalfLife.D() != 2*time.Hour {
		t.Fatalf("%+v %v", c, err)
	}
}
