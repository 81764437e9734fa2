package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Grants configures just-in-time grants: time-bound permissions a principal
// requests and a different principal with an approver role approves. The
// grants are kept in a JSON file that every warden process sharing it
// watches; policy sees a caller's active grants as input.grants.
type Grants struct {
	// Enabled turns just-in-time grants on. Default true. When false, the
	// grant endpoints answer 404 and policy never sees a grant.
	Enabled *bool `yaml:"enabled"`
	// Path is the grant store, a JSON file warden writes. Default "grants.json".
	Path string `yaml:"path"`
	// MaxDuration is the longest grant that can be requested or approved.
	// Default 8h; at most 168h (7 days).
	MaxDuration Duration `yaml:"max_duration"`
	// ApproverRole is the role a principal must hold (Principal.Roles, from
	// an OIDC roles claim or a warden token) to approve a grant. Default
	// "grant-approver".
	ApproverRole string `yaml:"approver_role"`
}

// Defaults and limits of policy.grants.
const (
	DefaultGrantsPath        = "grants.json"
	DefaultGrantMaxDuration  = Duration(8 * time.Hour)
	MaxGrantMaxDuration      = Duration(7 * 24 * time.Hour)
	MinGrantMaxDuration      = Duration(time.Second)
	DefaultGrantApproverRole = "grant-approver"
	maxApproverRoleBytes     = 128
)

// On reports whether just-in-time grants are enabled (the default).
func (g *Grants) On() bool { return g.Enabled == nil || *g.Enabled }

func (c *Config) applyGrantsDefaults() {
	g := &c.Policy.Grants
	if g.Path == "" {
		g.Path = DefaultGrantsPath
	}
	if g.MaxDuration == 0 {
		g.MaxDuration = DefaultGrantMaxDuration
	}
	if g.ApproverRole == "" {
		g.ApproverRole = DefaultGrantApproverRole
	}
}

// validateGrants checks policy.grants; like validate, it only looks at the
// document.
func (c *Config) validateGrants(v *validator) {
	const p = "policy.grants"
	g := &c.Policy.Grants
	if d := g.MaxDuration; d < MinGrantMaxDuration || d > MaxGrantMaxDuration {
		v.add(p+".max_duration", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinGrantMaxDuration.D(), MaxGrantMaxDuration.D()))
	}
	switch r := g.ApproverRole; {
	case r == "":
		v.add(p+".approver_role", "required")
	case len(r) > maxApproverRoleBytes:
		v.add(p+".approver_role", fmt.Sprintf("longer than %d bytes", maxApproverRoleBytes))
	case !printableNoSpace(r):
		v.add(p+".approver_role", "must be printable ASCII without spaces")
	}
	if g.Path == "" {
		v.add(p+".path", "required")
		return
	}
	for _, f := range c.dataFiles() {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(g.Path) {
			v.add(p+".path", fmt.Sprintf("must not be the same file as %s", f.field))
			return
		}
	}
}

// checkGrantsFiles is checkFiles for policy.grants: after relative paths are
// resolved, the store path must not be a directory or another data file.
func (c *Config) checkGrantsFiles(v *validator) {
	const field = "policy.grants.path"
	path := c.Policy.Grants.Path
	if path == "" || v.failed(field) {
		return
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		v.add(field, fmt.Sprintf("%s is a directory; expected a file path", path))
		return
	}
	for _, f := range c.dataFiles() {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(path) {
			v.add(field, fmt.Sprintf("must not be the same file as %s", f.field))
			return
		}
	}
}

// printableNoSpace reports whether s is printable ASCII without spaces.
func printableNoSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
