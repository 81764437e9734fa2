package config

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Models configures the model registry (docs/models.md): which signer keys
// warden trusts, where model directories may be registered from, who may
// promote and roll back, and how often active versions are verified again.
// Routes bind to a registry model with routes[].model; such a route
// forwards only while the model's active version is verified.
type Models struct {
	// Registry is the registry directory warden writes (registry.json and
	// the signature bundles). Default "model-registry".
	Registry string `yaml:"registry"`
	// TrustedKeys are the public keys (PEM, ECDSA P-256 or Ed25519) whose
	// signatures warden accepts. Required when any route names a model.
	TrustedKeys []ModelKey `yaml:"trusted_keys"`
	// Roots are the directories model and dataset directories must be
	// under to be registered. Required with trusted_keys.
	Roots []string `yaml:"roots"`
	// ApproverRole is the role a principal must hold to promote or roll
	// back a model. Default "model-approver".
	ApproverRole string `yaml:"approver_role"`
	// ReverifyInterval is how often the files of every active version are
	// hashed again; a version whose files changed stops being served.
	// Default 5m; at least 100ms.
	ReverifyInterval Duration `yaml:"reverify_interval"`
}

// ModelKey is one trusted signer key.
type ModelKey struct {
	Name string `yaml:"name"` // recorded as the signer of what it verifies
	File string `yaml:"file"` // PEM public key
}

// RouteModel binds a route to a registry model.
type RouteModel struct {
	Name string `yaml:"name"` // the registry model name
}

// Defaults of models.
const (
	DefaultModelRegistry     = "model-registry"
	DefaultModelApproverRole = "model-approver"
	DefaultModelReverify     = Duration(5 * time.Minute)
	minModelReverify         = Duration(100 * time.Millisecond)
)

// On reports whether the registry is configured (it has trusted keys).
func (m *Models) On() bool { return len(m.TrustedKeys) > 0 }

func (c *Config) applyModelsDefaults() {
	m := &c.Models
	if m.Registry == "" {
		m.Registry = DefaultModelRegistry
	}
	if m.ApproverRole == "" {
		m.ApproverRole = DefaultModelApproverRole
	}
	if m.ReverifyInterval == 0 {
		m.ReverifyInterval = DefaultModelReverify
	}
}

func (c *Config) resolveModelsPaths(abs func(string) string) {
	m := &c.Models
	m.Registry = abs(m.Registry)
	for i := range m.TrustedKeys {
		m.TrustedKeys[i].File = abs(m.TrustedKeys[i].File)
	}
	for i := range m.Roots {
		m.Roots[i] = abs(m.Roots[i])
	}
}

// validateModels checks models and routes[].model; it only looks at the document.
func (c *Config) validateModels(v *validator) {
	const p = "models"
	m := &c.Models
	for i := range c.Routes {
		rm := c.Routes[i].Model
		if rm == nil {
			continue
		}
		rp := fmt.Sprintf("routes[%d].model", i)
		if err := validModelName(rm.Name); err != nil {
			v.add(rp+".name", err.Error())
		}
		if !m.On() {
			v.add(rp, "a route bound to a registry model needs models.trusted_keys")
		}
	}
	if m.ReverifyInterval < minModelReverify {
		v.add(p+".reverify_interval", fmt.Sprintf("%s: must be at least %s", m.ReverifyInterval.D(), minModelReverify.D()))
	}
	switch r := m.ApproverRole; {
	case len(r) > maxApproverRoleBytes:
		v.add(p+".approver_role", fmt.Sprintf("longer than %d bytes", maxApproverRoleBytes))
	case !printableNoSpace(r):
		v.add(p+".approver_role", "must be printable ASCII without spaces")
	}
	names := map[string]int{}
	for i, k := range m.TrustedKeys {
		kp := fmt.Sprintf("%s.trusted_keys[%d]", p, i)
		if !routeNameRE.MatchString(k.Name) {
			v.add(kp+".name", fmt.Sprintf("%q: %s", k.Name, nameRule))
		} else if j, dup := names[k.Name]; dup {
			v.add(kp+".name", fmt.Sprintf("duplicate key name %q (also %s.trusted_keys[%d])", k.Name, p, j))
		} else {
			names[k.Name] = i
		}
		if k.File == "" {
			v.add(kp+".file", "required: a PEM public key file")
		}
	}
	if m.On() && len(m.Roots) == 0 {
		v.add(p+".roots", "required with trusted_keys: the directories model directories may be registered from")
	}
	for i, r := range m.Roots {
		if r == "" {
			v.add(fmt.Sprintf("%s.roots[%d]", p, i), "empty path")
		}
	}
}

// checkModelsFiles is checkFiles for models: key files exist, roots are
// directories, the registry is not a file.
func (c *Config) checkModelsFiles(v *validator) {
	m := &c.Models
	if !m.On() {
		return
	}
	for i, k := range m.TrustedKeys {
		f := fmt.Sprintf("models.trusted_keys[%d].file", i)
		if k.File == "" || v.failed(f) {
			continue
		}
		if _, err := readFile(k.File, 64<<10); err != nil {
			v.add(f, err.Error())
		}
	}
	for i, r := range m.Roots {
		f := fmt.Sprintf("models.roots[%d]", i)
		if r == "" || v.failed(f) {
			continue
		}
		if err := checkDir(r); err != nil {
			v.add(f, err.Error())
		}
	}
	if fi, err := os.Stat(m.Registry); err == nil && !fi.IsDir() {
		v.add("models.registry", fmt.Sprintf("%s is a file; models.registry names a directory", m.Registry))
	}
	for _, f := range c.dataFiles() {
		if f.path != "" && filepath.Clean(f.path) == filepath.Clean(m.Registry) {
			v.add("models.registry", "must not be the same path as "+f.field)
		}
	}
}

// validModelName is registry.ValidName (config does not import registry).
func validModelName(s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("required: 1 to 128 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '-' || c == '_') && i > 0:
		default:
			return fmt.Errorf("%q: use letters, digits, '.', '-' and '_' (not first)", s)
		}
	}
	return nil
}
