package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// lPolicyDir is the line of "  dir: policies" in base; a grants block
// appended after it starts on the next line.
const lPolicyDir = 30

func TestGrantsRules(t *testing.T) {
	grants := func(block string) []edit {
		return []edit{{"  dir: policies\n", "  dir: policies\n  grants:\n" + block}}
	}
	g := lPolicyDir + 2 // the first line inside "grants:"
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{"defaults", nil, nil},
		{"all fields", grants("    enabled: true\n    path: data/grants.json\n    max_duration: 24h\n    approver_role: sec-oncall\n"), nil},
		{"disabled", grants("    enabled: false\n"), nil},
		{"max_duration at the hard limit", grants("    max_duration: 168h\n"), nil},
		{"max_duration above the hard limit", grants("    max_duration: 169h\n"),
			[]want{{"policy.grants.max_duration", g, "must be between 1s and 168h0m0s"}}},
		{"max_duration too short", grants("    max_duration: 500ms\n"),
			[]want{{"policy.grants.max_duration", g, "must be between"}}},
		{"negative max_duration", grants("    max_duration: -1h\n"),
			[]want{{"policy.grants.max_duration", g, "must be between"}}},
		{"approver_role with a space", grants("    approver_role: \"grant approver\"\n"),
			[]want{{"policy.grants.approver_role", g, "printable ASCII without spaces"}}},
		{"path is the key store", grants("    path: keys.json\n"),
			[]want{{"policy.grants.path", g, "must not be the same file as keys.path"}}},
		{"path is the audit log", grants("    path: ./audit.log\n"),
			[]want{{"policy.grants.path", g, "must not be the same file as audit.path"}}},
		{"path is the revocation list", grants("    path: revocations.json\n"),
			[]want{{"policy.grants.path", g, "must not be the same file as identity.revocations_path"}}},
		{"unknown field", grants("    max_durration: 1h\n"),
			[]want{{"policy.grants.max_durration", g, `did you mean "max_duration"`}}},
		{"enabled not a boolean", grants("    enabled: maybe\n"),
			[]want{{"policy.grants.enabled", g, "must be true or false"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := applyEdits(t, base, tc.edits)
			_, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestGrantsDefaults(t *testing.T) {
	cfg, err := Parse([]byte(base), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Policy.Grants
	if !g.On() || g.Path != DefaultGrantsPath || g.MaxDuration.D() != 8*time.Hour || g.ApproverRole != "grant-approver" {
		t.Fatalf("defaults: %+v (on %v)", g, g.On())
	}
	doc := applyEdits(t, base, []edit{{"  dir: policies\n", "  dir: policies\n  grants: {enabled: false}\n"}})
	if cfg, err = Parse([]byte(doc), "warden.yaml"); err != nil || cfg.Policy.Grants.On() {
		t.Fatalf("enabled: false: %v", err)
	}
}

func TestGrantsLoad(t *testing.T) {
	dir, path := testDir(t)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, DefaultGrantsPath); cfg.Policy.Grants.Path != want {
		t.Fatalf("path %q, want %q (resolved against the config's directory)", cfg.Policy.Grants.Path, want)
	}
	// A directory where the store should be is refused at load.
	mkdir(t, dir, DefaultGrantsPath)
	_, err = Load(path)
	var ve *ValidationError
	if !asValidation(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "policy.grants.path" {
		t.Fatalf("grants path is a directory: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, DefaultGrantsPath)); err != nil {
		t.Fatal(err)
	}
	// An absolute path naming the key store, as resolved, is refused too.
	keys := filepath.Join(dir, "data", "keys.json")
	editFile(t, dir, "policy:\n", "policy:\n  grants:\n    path: "+keys+"\n")
	if _, err = Load(path); !asValidation(err, &ve) || ve.Errors[0].Field != "policy.grants.path" {
		t.Fatalf("grants path is the key store: %v", err)
	}
}

func asValidation(err error, ve **ValidationError) bool {
	v, ok := err.(*ValidationError)
	if ok {
		*ve = v
	}
	return ok
}
