package config

import (
	"strings"
	"testing"
)

const modelsBase = `listeners:
  - address: 127.0.0.1:8443
    tls:
      mode: off
routes:
  - name: chat
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:8000/v1
%s
policy:
  dir: policy
%s`

func TestModelsConfig(t *testing.T) {
	cases := []struct {
		name, route, models, want string
	}{
		{"off by default", "", "", ""},
		{"route needs keys", "    model:\n      name: llama", "", "routes[0].model: a route bound to a registry model needs models.trusted_keys"},
		{"bad model name", "    model:\n      name: ../x", "models:\n  roots: [/m]\n  trusted_keys:\n    - {name: k, file: k.pub}", "routes[0].model.name"},
		{"roots required", "", "models:\n  trusted_keys:\n    - {name: k, file: k.pub}", "models.roots"},
		{"interval too short", "", "models:\n  roots: [/m]\n  reverify_interval: 1ms\n  trusted_keys:\n    - {name: k, file: k.pub}", "models.reverify_interval"},
		{"duplicate key", "", "models:\n  roots: [/m]\n  trusted_keys:\n    - {name: k, file: a.pub}\n    - {name: k, file: b.pub}", "duplicate key name"},
		{"unknown field", "", "models:\n  rots: [/m]", "rots"},
		{"valid", "    model:\n      name: llama", "models:\n  roots: [/m]\n  trusted_keys:\n    - {name: k, file: k.pub}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(strings.Replace(modelsBase, "%s", tc.route, 1), "%s", tc.models, 1)
			cfg, err := Parse([]byte(doc), "test.yaml")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Models.ApproverRole != DefaultModelApproverRole || cfg.Models.ReverifyInterval != DefaultModelReverify {
					t.Fatalf("defaults: %+v", cfg.Models)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
