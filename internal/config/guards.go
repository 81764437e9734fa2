package config

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
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
	// Injection configures the prompt-injection guard over request bodies.
	Injection GuardsInjection `yaml:"injection"`
	// Canary configures canary tokens: secrets an operator places in
	// system prompts that must never appear in a response. Off unless the
	// section is present.
	Canary *GuardsCanary `yaml:"canary"`
}

// GuardsInjection configures the prompt-injection guard.
type GuardsInjection struct {
	// Enabled scores request texts with the detector. Default true (with
	// the guards).
	Enabled *bool `yaml:"enabled"`
	// Threshold replaces the detector's thresholds for prompts and
	// documents alike (0 < t ≤ 1). Default: the embedded model's.
	Threshold *float64 `yaml:"threshold"`
	// DocumentFields are JSON member names whose string values, at any
	// depth, are third-party content (retrieved documents, e-mails) and
	// are scored as documents.
	DocumentFields []string `yaml:"document_fields"`
}

// On reports whether the injection guard is enabled (the default).
func (g *GuardsInjection) On() bool { return g.Enabled == nil || *g.Enabled }

// GuardsCanary configures canary tokens.
type GuardsCanary struct {
	// Tokens are canaries written in the config: 16 to 256 printable ASCII
	// bytes without spaces.
	Tokens []string `yaml:"tokens"`
	// TokenFile holds a generated canary ("wdn-canary-" and 32 hex
	// digits), created (mode 0600) at the first start when it does not
	// exist. Default "canary.token" when Tokens is empty; when Tokens is
	// set, the file is read only if it is named.
	TokenFile string `yaml:"token_file"`
	// Inject makes warden add the first canary to the system prompt of
	// chat and Responses requests that do not carry one.
	Inject bool `yaml:"inject"`
}

// Defaults and limits of guards.
const (
	DefaultGuardsCanaryFile     = "canary.token"
	CanaryPrefix                = "wdn-canary-"
	MinCanaryBytes              = 16
	MaxCanaryBytes              = 256
	MaxGuardsDocumentFields     = 64
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
	if g.Canary != nil && len(g.Canary.Tokens) == 0 && g.Canary.TokenFile == "" {
		g.Canary.TokenFile = DefaultGuardsCanaryFile
	}
}

func (c *Config) resolveGuardsPaths(abs func(string) string) {
	c.Guards.HashKeyFile = abs(c.Guards.HashKeyFile)
	if c.Guards.Canary != nil && c.Guards.Canary.TokenFile != "" {
		c.Guards.Canary.TokenFile = abs(c.Guards.Canary.TokenFile)
	}
}

// validateGuards checks the guards section; like validate, it only looks
// at the document.
func (c *Config) validateGuards(v *validator) {
	const p = "guards"
	g := &c.Guards
	if n := g.MaxOutputBytes; n < 1 || n > MaxGuardsMaxOutputBytes {
		v.add(p+".max_output_bytes", fmt.Sprintf("%d: must be between 1 and %d", n, int64(MaxGuardsMaxOutputBytes)))
	}
	c.validateGuardsInjection(v)
	c.validateGuardsCanary(v)
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

func (c *Config) validateGuardsInjection(v *validator) {
	const p = "guards.injection"
	in := &c.Guards.Injection
	if t := in.Threshold; t != nil && !(*t > 0 && *t <= 1) {
		v.add(p+".threshold", fmt.Sprintf("%v: must be greater than 0 and at most 1", *t))
	}
	if len(in.DocumentFields) > MaxGuardsDocumentFields {
		v.add(p+".document_fields", fmt.Sprintf("%d names: at most %d", len(in.DocumentFields), MaxGuardsDocumentFields))
		return
	}
	seen := map[string]int{}
	for i, f := range in.DocumentFields {
		fp := fmt.Sprintf("%s.document_fields[%d]", p, i)
		switch j, dup := seen[f]; {
		case f == "":
			v.add(fp, "must not be empty")
		case len(f) > 64:
			v.add(fp, fmt.Sprintf("%d bytes: at most 64", len(f)))
		case dup:
			v.add(fp, fmt.Sprintf("duplicate name %q (also %s.document_fields[%d])", f, p, j))
		default:
			seen[f] = i
		}
	}
}

func (c *Config) validateGuardsCanary(v *validator) {
	const p = "guards.canary"
	cn := c.Guards.Canary
	if cn == nil {
		return
	}
	seen := map[string]int{}
	for i, t := range cn.Tokens {
		tp := fmt.Sprintf("%s.tokens[%d]", p, i)
		if err := checkCanary(t); err != nil {
			v.add(tp, err.Error())
		} else if j, dup := seen[t]; dup {
			v.add(tp, fmt.Sprintf("duplicate token (also %s.tokens[%d])", p, j))
		} else {
			seen[t] = i
		}
	}
	if cn.TokenFile == "" {
		return
	}
	files := append(c.dataFiles(), dataFile{"guards.hash_key_file", c.Guards.HashKeyFile})
	for _, f := range files {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(cn.TokenFile) {
			v.add(p+".token_file", fmt.Sprintf("must not be the same file as %s", f.field))
			return
		}
	}
}

// checkCanary checks a canary token: MinCanaryBytes to MaxCanaryBytes of
// printable ASCII without spaces (internal/guard/canary.Check says the
// same; config does not import the guards).
func checkCanary(tok string) error {
	if len(tok) < MinCanaryBytes || len(tok) > MaxCanaryBytes {
		return fmt.Errorf("%d bytes: a canary must have %d to %d", len(tok), MinCanaryBytes, MaxCanaryBytes)
	}
	for i := 0; i < len(tok); i++ {
		if ch := tok[i]; ch <= ' ' || ch >= 0x7f {
			return errors.New("a canary must be printable ASCII without spaces")
		}
	}
	return nil
}

// CanaryTokens returns the configured canaries: the tokens written in the
// config, then the one in TokenFile, which is created ("wdn-canary-" and
// 32 random hex digits, mode 0600, created exclusively) when it does not
// exist. A token file readable by group or others, or holding something
// that is not a canary, is an error. Nil when canaries are off.
func (g *Guards) CanaryTokens() ([]string, error) {
	cn := g.Canary
	if cn == nil {
		return nil, nil
	}
	toks := append([]string(nil), cn.Tokens...)
	if cn.TokenFile == "" {
		return toks, nil
	}
	tok, err := readCanaryFile(cn.TokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("config: guards.canary.token_file: %w", err)
		}
		tok = CanaryPrefix + hex.EncodeToString(b[:])
		if err := writeExclusive(cn.TokenFile, []byte(tok+"\n")); errors.Is(err, fs.ErrExist) {
			tok, err = readCanaryFile(cn.TokenFile) // another process created it first
			if err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, fmt.Errorf("config: guards.canary.token_file: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	return append(toks, tok), nil
}

func readCanaryFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("config: guards.canary.token_file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("config: guards.canary.token_file %s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("config: guards.canary.token_file %s: mode %04o: must not be readable by group or others (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: guards.canary.token_file: %w", err)
	}
	tok := string(bytes.TrimSpace(b))
	if err := checkCanary(tok); err != nil {
		return "", fmt.Errorf("config: guards.canary.token_file %s: %w", path, err)
	}
	return tok, nil
}

// writeExclusive creates path (mode 0600, failing when it exists) with b,
// synced; on a failed write the file is removed.
func writeExclusive(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return err
	}
	return f.Close()
}

// HashKey reads the tenant hash key from HashKeyFile, creating the file
// (32 random bytes written as 64 hex digits and a newline, mode 0600,
// created exclusively) when it does not exist. The key is the file's text
// with surrounding white space removed, on the first start and every
// later one alike: random bytes written raw could begin or end with a byte
// that trimming removes, giving a different (or too short) key after a
// restart. A file that is shorter than MinGuardsHashKeyBytes, or readable by
// group or others, is an error: warden does not start with a weak or
// exposed key.
func (g *Guards) HashKey() ([]byte, error) {
	path := g.HashKeyFile
	if path == "" {
		return nil, errors.New("config: guards.hash_key_file is not set")
	}
	key, err := readHashKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, MinGuardsHashKeyBytes)
		if _, err := rand.Read(raw); err != nil {
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		key = []byte(hex.EncodeToString(raw))
		text := append(bytes.Clone(key), '\n')
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process created it first
			return readHashKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("config: guards.hash_key_file: %w", err)
		}
		if _, err := f.Write(text); err != nil {
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
