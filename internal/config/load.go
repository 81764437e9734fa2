package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gopkg.in/yaml.v3"
)

// maxConfigBytes bounds the config file: it is operator input, but a config
// generator gone wrong should get an error, not an OOM.
const maxConfigBytes = 4 << 20

// Load reads, decodes, defaults, validates and resolves the config file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxConfigBytes)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, filepath.Base(path))
	if err != nil {
		return nil, err
	}
	cfg.Dir = filepath.Dir(abs)
	cfg.resolvePaths()
	return cfg, nil
}

// Parse decodes and validates a config document; name is used in error
// messages. Relative paths are left as written (Load resolves them).
func Parse(data []byte, name string) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config: %s: empty document", name)
		}
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	var cfg Config
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	cfg.applyDefaults()
	if err := cfg.validate(name, &root); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// UnmarshalYAML decodes a Go duration string such as "10s" or "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: duration must be a string like \"10s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: invalid duration %q: %v", n.Line, s, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func (c *Config) applyDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i)
		}
		if l.TLS.Mode == "" {
			if l.TLS.CertFile != "" || l.TLS.KeyFile != "" {
				l.TLS.Mode = TLSModeFiles
			} else {
				l.TLS.Mode = TLSModeSelfSigned
			}
		}
		if l.ReadHeaderTimeout == 0 {
			l.ReadHeaderTimeout = Duration(10 * time.Second)
		}
		if l.ReadTimeout == 0 {
			l.ReadTimeout = Duration(60 * time.Second)
		}
		if l.IdleTimeout == 0 {
			l.IdleTimeout = Duration(120 * time.Second)
		}
		if l.MaxHeaderBytes == 0 {
			l.MaxHeaderBytes = 64 << 10
		}
		if l.MaxBodyBytes == 0 {
			l.MaxBodyBytes = 4 << 20
		}
	}
	if c.Admin.Address == "" {
		c.Admin.Address = "127.0.0.1:9090"
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.API == "" {
			r.API = APIOpenAI
		}
		if r.Upstream.Timeout == 0 {
			r.Upstream.Timeout = Duration(60 * time.Second)
		}
		if r.Upstream.DialTimeout == 0 {
			r.Upstream.DialTimeout = Duration(5 * time.Second)
		}
		if cr := r.Upstream.Credential; cr != nil {
			if cr.Header == "" {
				cr.Header = "Authorization"
			}
			if cr.Scheme == "" && http2Canonical(cr.Header) == "Authorization" {
				cr.Scheme = "Bearer"
			}
		}
	}
	if c.Keys.Path == "" {
		c.Keys.Path = "keys.json"
	}
	if c.Audit.Path == "" {
		c.Audit.Path = "audit.log"
	}
}

func (c *Config) resolvePaths() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.Dir, p)
	}
	for i := range c.Listeners {
		c.Listeners[i].TLS.CertFile = abs(c.Listeners[i].TLS.CertFile)
		c.Listeners[i].TLS.KeyFile = abs(c.Listeners[i].TLS.KeyFile)
	}
	for i := range c.Routes {
		u := &c.Routes[i].Upstream
		u.CAFile = abs(u.CAFile)
		if u.Credential != nil {
			u.Credential.File = abs(u.Credential.File)
		}
	}
	c.Keys.Path = abs(c.Keys.Path)
	c.Policy.Dir = abs(c.Policy.Dir)
	c.Audit.Path = abs(c.Audit.Path)
}
