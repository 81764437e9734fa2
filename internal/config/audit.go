package config

import "path/filepath"

// Audit is the audit log.
type Audit struct {
	Path string `yaml:"path"` // append-only log file; default "audit.log"
}

func (c *Config) validateAudit(v *validator) {
	if c.Audit.Path == "" {
		v.add("audit.path", "required")
	} else if c.Keys.Path != "" && filepath.Clean(c.Audit.Path) == filepath.Clean(c.Keys.Path) {
		v.add("audit.path", "must not be the same file as keys.path")
	}
}
