package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuardsRules(t *testing.T) {
	guards := func(block string) string { return base + "guards:\n" + block }
	g := lPolicyDir + 4 // the first line inside "guards:", appended after audit.path
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"defaults", base, nil},
		{"all fields", guards("  enabled: true\n  hash_key_file: secrets/guards.key\n  max_output_bytes: 1048576\n"), nil},
		{"disabled", guards("  enabled: false\n"), nil},
		{"max_output_bytes negative", guards("  max_output_bytes: -1\n"),
			[]want{{"guards.max_output_bytes", g, "must be between 1 and"}}},
		{"max_output_bytes above the limit", guards("  max_output_bytes: 2147483648\n"),
			[]want{{"guards.max_output_bytes", g, "must be between 1 and"}}},
		{"hash key is the key store", guards("  hash_key_file: keys.json\n"),
			[]want{{"guards.hash_key_file", g, "must not be the same file as keys.path"}}},
		{"unknown field", guards("  hash_keyfile: x\n"),
			[]want{{"guards.hash_keyfile", g, `did you mean "hash_key_file"`}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "warden.yaml")
			checkErrors(t, err, tc.want)
		})
	}
}

func TestGuardsDefaultsAndPaths(t *testing.T) {
	cfg, err := Parse([]byte(base), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Guards.On() || cfg.Guards.MaxOutputBytes != DefaultGuardsMaxOutputBytes || cfg.Guards.HashKeyFile != DefaultGuardsHashKeyFile {
		t.Fatalf("defaults %+v", cfg.Guards)
	}
	cfg.Dir = "/etc/warden"
	cfg.resolvePaths()
	if cfg.Guards.HashKeyFile != "/etc/warden/guards.key" {
		t.Fatalf("hash_key_file resolved to %q", cfg.Guards.HashKeyFile)
	}
}

func TestGuardsHashKey(t *testing.T) {
	dir := t.TempDir()
	g := Guards{HashKeyFile: filepath.Join(dir, "guards.key")}
	k1, err := g.HashKey()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(g.HashKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != MinGuardsHashKeyBytes || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated %d bytes, mode %04o", len(k1), fi.Mode().Perm())
	}
	k2, err := g.HashKey()
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second start: %v, same key %v", err, bytes.Equal(k1, k2))
	}

	if err := os.Chmod(g.HashKeyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.HashKey(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key: %v", err)
	}

	short := Guards{HashKeyFile: filepath.Join(dir, "short.key")}
	if err := os.WriteFile(short.HashKeyFile, []byte("too short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := short.HashKey(); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("a short key: %v", err)
	}

	missingDir := Guards{HashKeyFile: filepath.Join(dir, "nope", "guards.key")}
	if _, err := missingDir.HashKey(); err == nil {
		t.Fatal("a key in a missing directory was accepted")
	}
}
