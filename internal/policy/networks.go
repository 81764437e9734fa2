package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// Networks are named sets of address prefixes (config policy.networks).
// The input's context.networks lists the names of those that hold the
// source address. A nil *Networks holds nothing. Safe for concurrent use.
type Networks struct {
	names    []string         // sorted
	prefixes [][]netip.Prefix // prefixes[i] belong to names[i]
}

// networkNameRE is what a network name may be: it appears in policies.
var networkNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ParsePrefix reads a CIDR prefix ("10.0.0.0/8", "2001:db8::/32") or a
// single address (a /32 or /128). Host bits must be zero, so that what is
// written is what matches: "10.0.0.1/8" is an error.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR prefix nor an IP address", s)
		}
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not allowed", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix: %w", s, err)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 prefixes in dotted form", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; write %s", s, m)
	}
	return p, nil
}

// NewNetworks parses named networks: name → CIDR prefixes or addresses.
// Names are 1-63 lower case letters, digits, '_', '.' or '-'; every network
// needs at least one prefix.
func NewNetworks(m map[string][]string) (*Networks, error) {
	if len(m) == 0 {
		return nil, nil
	}
	n := &Networks{}
	for name := range m {
		n.names = append(n.names, name)
	}
	slices.Sort(n.names)
	for _, name := range n.names {
		if !networkNameRE.MatchString(name) {
			return nil, fmt.Errorf("policy: network %q: name must be 1-63 lower case letters, digits, '_', '.' or '-'", name)
		}
		if len(m[name]) == 0 {
			return nil, fmt.Errorf("policy: network %q: no prefixes", name)
		}
		var ps []netip.Prefix
		for _, s := range m[name] {
			p, err := ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("policy: network %q: %w", name, err)
			}
			ps = append(ps, p)
		}
		n.prefixes = append(n.prefixes, ps)
	}
	return n, nil
}

// Match returns the sorted names of the networks that hold ip (IPv4-mapped
// IPv6 addresses count as IPv4), nil if none.
func (n *Networks) Match(ip netip.Addr) []string {
	if n == nil || !ip.IsValid() {
		return nil
	}
	ip = ip.Unmap().WithZone("")
	var out []string
	for i, ps := range n.prefixes {
		for _, p := range ps {
			if p.Contains(ip) {
				out = append(out, n.names[i])
				break
			}
		}
	}
	return out
}

// Names returns the configured network names, sorted.
func (n *Networks) Names() []string {
	if n == nil {
		return nil
	}
	return slices.Clone(n.names)
}
