package config

import (
	"bytes"
	"fmt"
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
		{"injection and canary", guards("  injection:\n    enabled: true\n    threshold: 0.9\n    document_fields: [documents, context]\n" +
			"  canary:\n    tokens: [wdn-canary-00112233445566778899aabbccddeeff]\n    token_file: canary.token\n    inject: true\n"), nil},
		{"injection off", guards("  injection:\n    enabled: false\n"), nil},
		{"threshold zero", guards("  injection:\n    threshold: 0\n"),
			[]want{{"guards.injection.threshold", g + 1, "greater than 0 and at most 1"}}},
		{"threshold above one", guards("  injection:\n    threshold: 1.5\n"),
			[]want{{"guards.injection.threshold", g + 1, "greater than 0 and at most 1"}}},
		{"document field empty and duplicate", guards("  injection:\n    document_fields:\n      - docs\n      - \"\"\n      - docs\n"),
			[]want{{"guards.injection.document_fields[1]", g + 3, "must not be empty"}, {"guards.injection.document_fields[2]", g + 4, `duplicate name "docs"`}}},
		{"injection unknown field", guards("  injection:\n    treshold: 0.5\n"),
			[]want{{"guards.injection.treshold", g + 1, `did you mean "threshold"`}}},
		{"canary token too short", guards("  canary:\n    tokens: [abc]\n"),
			[]want{{"guards.canary.tokens[0]", g + 1, "a canary must have 16 to 256"}}},
		{"canary token with a space", guards("  canary:\n    tokens:\n      - \"two words here, long\"\n"),
			[]want{{"guards.canary.tokens[0]", g + 2, "printable ASCII without spaces"}}},
		{"canary duplicate", guards("  canary:\n    tokens:\n      - wdn-canary-aaaaaaaaaaaaaaaa\n      - wdn-canary-aaaaaaaaaaaaaaaa\n"),
			[]want{{"guards.canary.tokens[1]", g + 3, "duplicate token"}}},
		{"canary file is the hash key", guards("  canary:\n    token_file: guards.key\n"),
			[]want{{"guards.canary.token_file", g + 1, "must not be the same file as guards.hash_key_file"}}},
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

func TestGuardsCanaryDefaults(t *testing.T) {
	cfg, err := Parse([]byte(base+"guards:\n  canary:\n    inject: true\n"), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Guards.Canary.TokenFile != DefaultGuardsCanaryFile || !cfg.Guards.Injection.On() {
		t.Fatalf("defaults %+v %+v", cfg.Guards.Canary, cfg.Guards.Injection)
	}
	cfg, err = Parse([]byte(base+"guards:\n  canary:\n    tokens: [wdn-canary-aaaaaaaaaaaaaaaa]\n"), "warden.yaml")
	if err != nil || cfg.Guards.Canary.TokenFile != "" {
		t.Fatalf("tokens without a file: %v %+v", err, cfg.Guards.Canary)
	}
	if cfg, err = Parse([]byte(base), "warden.yaml"); err != nil || cfg.Guards.Canary != nil {
		t.Fatalf("canaries are off by default: %v", err)
	}
}

func TestGuardsCanaryTokens(t *testing.T) {
	dir := t.TempDir()
	g := Guards{Canary: &GuardsCanary{Tokens: []string{"custom-canary-token-1"}, TokenFile: filepath.Join(dir, "canary.token")}}
	t1, err := g.CanaryTokens()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(g.Canary.TokenFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if len(t1) != 2 || t1[0] != "custom-canary-token-1" || !strings.HasPrefix(t1[1], CanaryPrefix) || len(t1[1]) != len(CanaryPrefix)+32 {
		t.Fatalf("tokens %q", t1)
	}
	t2, err := g.CanaryTokens()
	if err != nil || t2[1] != t1[1] {
		t.Fatalf("second start: %v %q", err, t2)
	}
	if err := os.Chmod(g.Canary.TokenFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CanaryTokens(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable token file: %v", err)
	}
	bad := filepath.Join(dir, "bad.token")
	if err := os.WriteFile(bad, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Guards{Canary: &GuardsCanary{TokenFile: bad}}).CanaryTokens(); err == nil {
		t.Fatal("a file without a canary was accepted")
	}
	if toks, err := (&Guards{}).CanaryTokens(); err != nil || toks != nil {
		t.Fatalf("off: %q %v", toks, err)
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
	if len(k1) != 2*MinGuardsHashKeyBytes || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated %d bytes (want %d hex digits of %d random bytes), mode %04o", len(k1),
			2*MinGuardsHashKeyBytes, MinGuardsHashKeyBytes, fi.Mode().Perm())
	}
	k2, err := g.HashKey()
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second start: %v, same key %v", err, bytes.Equal(k1, k2))
	}
	// Every generated key is the key read back after a restart. (Raw random
	// bytes lost a leading or trailing white-space byte to trimming about
	// once in twenty keys.)
	for i := range 200 {
		gi := Guards{HashKeyFile: filepath.Join(dir, fmt.Sprintf("k%d.key", i))}
		a, err := gi.HashKey()
		if err != nil {
			t.Fatal(err)
		}
		b, err := gi.HashKey()
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("key %d: read back %v, same key %v", i, err, bytes.Equal(a, b))
		}
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
