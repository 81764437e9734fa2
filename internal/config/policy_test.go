package config

import (
	"slices"
	"testing"
	"time"
)

func TestPolicyRules(t *testing.T) {
	policy := func(block string) []edit {
		return []edit{{"  dir: policies\n", "  dir: policies\n" + block}}
	}
	p := lPolicyDir + 1 // the first line after "dir:"
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{"defaults", nil, nil},
		{"all fields", policy("  timezone: Europe/Berlin\n  networks:\n    corp: [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n" +
			"    v6: [\"2001:db8::/32\", \"2001:db8::1\"]\n  reload: false\n  reload_interval: 5s\n"), nil},
		{"UTC", policy("  timezone: UTC\n"), nil},
		{"unknown time zone", policy("  timezone: Mars/Olympus\n"),
			[]want{{"policy.timezone", p, `"Mars/Olympus" is not an IANA time zone name`}}},
		{"host time zone", policy("  timezone: Local\n"),
			[]want{{"policy.timezone", p, "is not an IANA time zone name"}}},
		{"reload_interval too short", policy("  reload_interval: 10ms\n"),
			[]want{{"policy.reload_interval", p, "must be between 100ms and 1h0m0s"}}},
		{"reload_interval too long", policy("  reload_interval: 2h\n"),
			[]want{{"policy.reload_interval", p, "must be between"}}},
		{"memo off", policy("  memo_entries: 0\n"), nil},
		{"memo negative", policy("  memo_entries: -1\n"),
			[]want{{"policy.memo_entries", p, "must be between 0 (off) and 1000000"}}},
		{"memo too large", policy("  memo_entries: 1000001\n"),
			[]want{{"policy.memo_entries", p, "must be between"}}},
		{"reload not a boolean", policy("  reload: sometimes\n"),
			[]want{{"policy.reload", p, "must be true or false"}}},
		{"network name", policy("  networks:\n    Corp Net: [\"10.0.0.0/8\"]\n"),
			[]want{{"policy.networks.Corp Net", p + 1, "lower case letters"}}},
		{"network without prefixes", policy("  networks:\n    corp: []\n"),
			[]want{{"policy.networks.corp", p + 1, "at least one CIDR prefix"}}},
		{"host bits set", policy("  networks:\n    corp: [\"10.0.0.0/8\", \"10.1.2.3/16\"]\n"),
			[]want{{"policy.networks.corp[1]", p + 1, `has host bits set; write 10.1.0.0/16`}}},
		{"not a prefix", policy("  networks:\n    corp:\n      - 10.0.0.0/8\n      - office\n"),
			[]want{{"policy.networks.corp[1]", p + 3, "neither a CIDR prefix"}}},
		{"bad mask", policy("  networks:\n    corp: [\"10.0.0.0/40\"]\n"),
			[]want{{"policy.networks.corp[0]", p + 1, "not a CIDR prefix"}}},
		{"mapped IPv4 prefix", policy("  networks:\n    corp: [\"::ffff:10.0.0.0/104\"]\n"),
			[]want{{"policy.networks.corp[0]", p + 1, "dotted form"}}},
		{"unknown field", policy("  reload_intervall: 1s\n"),
			[]want{{"policy.reload_intervall", p, `did you mean "reload_interval"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := applyEdits(t, base, tc.edits)
			_, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	cfg, err := Parse([]byte(base), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policy
	if p.Timezone != "UTC" || p.ReloadInterval != Duration(time.Second) || !p.ReloadOn() || p.Networks != nil || p.Memo() != 4096 {
		t.Errorf("defaults = %+v", p)
	}
	if loc, err := p.Location(); err != nil || loc.String() != "UTC" {
		t.Errorf("Location() = %v, %v", loc, err)
	}
	doc := applyEdits(t, base, []edit{{"  dir: policies\n",
		"  dir: policies\n  timezone: America/New_York\n  reload: false\n  networks: {corp: [\"10.0.0.0/8\"]}\n  memo_entries: 0\n"}})
	if cfg, err = Parse([]byte(doc), "warden.yaml"); err != nil {
		t.Fatal(err)
	}
	p = cfg.Policy
	if loc, err := p.Location(); err != nil || loc.String() != "America/New_York" || p.ReloadOn() ||
		!slices.Equal(p.Networks["corp"], []string{"10.0.0.0/8"}) || p.Memo() != 0 {
		t.Errorf("policy = %+v, location %v, %v", p, loc, err)
	}
}
