package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Policy is the Rego policy set and what its input needs beyond the request.
type Policy struct {
	Dir string `yaml:"dir"` // directory of .rego files; required
	// Timezone is the IANA time zone of input.context.local_time,
	// local_weekday and local_hour, e.g. "Europe/Berlin". Default "UTC".
	Timezone string `yaml:"timezone"`
	// Networks name sets of CIDR prefixes (or single addresses), e.g.
	// corp: ["10.0.0.0/8", "192.168.0.0/16"]. input.context.networks lists
	// the names of those holding the source address.
	Networks map[string][]string `yaml:"networks"`
	// Reload watches Dir and reloads the policy when its files change (the
	// new files must compile and their *_test.rego tests pass, else the old
	// policy stays). Default true. SIGHUP reloads either way.
	Reload *bool `yaml:"reload"`
	// ReloadInterval is how often Dir is checked for changes. Default 1s;
	// between 100ms and 1h.
	ReloadInterval Duration `yaml:"reload_interval"`
	// Grants configures just-in-time grants.
	Grants Grants `yaml:"grants"`
	// MemoEntries is how many decisions are remembered by the part of the
	// input the policy reads, so that a repeated request is not evaluated
	// again (see docs/policy.md, "Decision memo"). 0 turns the memo off.
	// Default 4096; at most 1,000,000.
	MemoEntries *int `yaml:"memo_entries"`
}

// Defaults and limits of the policy section.
const (
	DefaultPolicyTimezone       = "UTC"
	DefaultPolicyReloadInterval = Duration(time.Second)
	MinPolicyReloadInterval     = Duration(100 * time.Millisecond)
	MaxPolicyReloadInterval     = Duration(time.Hour)
	DefaultPolicyMemoEntries    = 4096
	MaxPolicyMemoEntries        = 1_000_000
)

// Memo returns the number of decisions to remember.
func (p *Policy) Memo() int {
	if p.MemoEntries == nil {
		return DefaultPolicyMemoEntries
	}
	return *p.MemoEntries
}

// ReloadOn reports whether the policy directory is watched (the default).
func (p *Policy) ReloadOn() bool { return p.Reload == nil || *p.Reload }

// Location returns the policy time zone; call it on a validated config.
func (p *Policy) Location() (*time.Location, error) {
	name := p.Timezone
	if name == "" {
		name = DefaultPolicyTimezone
	}
	if name == "Local" {
		return nil, fmt.Errorf("policy.timezone: %q depends on the host; use an IANA name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("policy.timezone: %w", err)
	}
	return loc, nil
}

func (c *Config) applyPolicyDefaults() {
	p := &c.Policy
	if p.Timezone == "" {
		p.Timezone = DefaultPolicyTimezone
	}
	if p.ReloadInterval == 0 {
		p.ReloadInterval = DefaultPolicyReloadInterval
	}
}

// networkNameRE is what a network name may be: policies compare it.
var networkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

func (c *Config) validatePolicy(v *validator) {
	p := &c.Policy
	if p.Dir == "" {
		v.add("policy.dir", "required: warden denies everything without a policy")
	}
	if _, err := p.Location(); err != nil {
		v.add("policy.timezone", fmt.Sprintf("%q is not an IANA time zone name such as UTC or Europe/Berlin", p.Timezone))
	}
	if d := p.ReloadInterval; d < MinPolicyReloadInterval || d > MaxPolicyReloadInterval {
		v.add("policy.reload_interval", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinPolicyReloadInterval.D(), MaxPolicyReloadInterval.D()))
	}
	if n := p.Memo(); n < 0 || n > MaxPolicyMemoEntries {
		v.add("policy.memo_entries", fmt.Sprintf("%d: must be between 0 (off) and %d", n, MaxPolicyMemoEntries))
	}
	names := make([]string, 0, len(p.Networks))
	for name := range p.Networks {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f := "policy.networks." + name
		if !networkNameRE.MatchString(name) {
			v.add(f, nameRule)
			continue
		}
		if len(p.Networks[name]) == 0 {
			v.add(f, "at least one CIDR prefix is required")
		}
		for i, s := range p.Networks[name] {
			if err := checkCIDR(s); err != nil {
				v.add(fmt.Sprintf("%s[%d]", f, i), err.Error())
			}
		}
	}
}

// checkCIDR accepts a CIDR prefix without host bits set, or one address.
// internal/policy.ParsePrefix reads it the same way.
func checkCIDR(s string) error {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%q is neither a CIDR prefix (10.0.0.0/8) nor an IP address", s)
		}
		return nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR prefix like 10.0.0.0/8 or 2001:db8::/32", s)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("%q: write IPv4 prefixes in dotted form", s)
	}
	if m := p.Masked(); m != p {
		return fmt.Errorf("%q has host bits set; write %s", s, m)
	}
	return nil
}
