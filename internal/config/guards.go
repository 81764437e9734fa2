package config

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Guards configures the request and response guards (docs/guards.md): DLP
// over request bodies before authorize, the mask obligation, and the
// inspection of upstream responses, SSE streams included.
type Guards struct {
	// Enabled turns the guards on. Default true. When false, bodies are
	// not inspected and a policy's mask obligation denies the request
	// (warden cannot carry it out).
	Enabled *bool `yaml:"enabled"`
	// HashKeyFile holds the tenant's secret for "hash" tokens (at least 32
	// bytes). Default "guards.key"; generated (32 random bytes, mode 0600)
	// at the first start when it does not exist.
	HashKeyFile string `yaml:"hash_key_file"`
	// MaxOutputBytes is the most content a response may carry (the text of
	// a stream's content fields, or a whole JSON/text body); beyond it a
	// stream ends with an error event and a body is refused (502). Default
	// 4 MiB; 0 is not allowed, at most 1 GiB.
	MaxOutputBytes int64 `yaml:"max_output_bytes"`
}

// Defaults and limits of guards.
const (
	DefaultGuardsHashKeyFile    = "guards.key"
	DefaultGuardsMaxOutputBytes = 4 << 20
	MaxGuardsMaxOutputBytes     = 1 << 30
	// MinGuardsHashKeyBytes is the shortest hash key accepted.
	MinGuardsHashKeyBytes = 32
)

// On reports whether the guards are enabled (the default).
func (g *Guards) On() bool { return g.Enabled == nil || *g.Enabled }

func (c *Config) applyGuardsDefaults() {
	g := &c.Guards
	if g.HashKeyFile == "" {
		g.HashKeyFile = DefaultGuardsHashKeyFile
	}
	if g.MaxOutputBytes == 0 {
		g.MaxOutputBytes = DefaultGuardsMaxOutputBytes
	}
}

func (c *Config) resolveGuardsPaths(abs func(string) string) {
	c.Guards.HashKeyFile = abs(c.Guards.HashKeyFile)
}

// validateGuards checks the guards section; like validate, it only looks
// at the document.
func (c *Config) validateGuards(v *validator) {
	const p = "guards"
	g := &c.Guards
	if n := g.MaxOutputBytes; n < 1 || n > MaxGuardsMaxOutputBytes {
		v.add(p+".max_output_bytes", fmt.Sprintf("%d: must be between 1 and %d", n, int64(MaxGuardsMaxOutputBytes)))
	}
	if g.HashKeyFile == "" {
		v.add(p+".hash_key_file", "required")
		return
	}
	for _, f := range c.dataFiles() {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(g.HashKeyFile) {
			v.add(p+".hash_key_file", fmt.Sprintf("must not be the same file as %s", f.field))
			return
		}
	}
}

// HashKey reads the tenant hash key from HashKeyFile, creating the file
// (32 random bytes, mode 0600, created exclusively) when it does not
// exist. A file that is shorter than MinGuardsHashKeyBytes, or readable by
// group or others, is an error: warden does not start with a weak or
// exposed key.
func (g *Guards) HashKey() ([]byte, error) {
	path := g.HashKeyFile
	if path == "" {
		return nil, errors.New("config: guards.hash_key_file is not set")
	}
	key, err := readHashKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, MinGuardsHashKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process created it first
			return readHashKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		if err := f.Sync(); err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		return key, nil
	}
	return key, err
}

func readHashKey(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("config: guards.hash_key_file %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("config: guards.hash_key_file %s: mode %04o: must not be readable by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
	}
	key = bytes.TrimSpace(key)
	if len(key) < MinGuardsHashKeyBytes {
		return nil, fmt.Errorf("config: guards.hash_key_file %s: %d bytes; at least %d are required", path, len(key), MinGuardsHashKeyBytes)
	}
	return key, nil
}
