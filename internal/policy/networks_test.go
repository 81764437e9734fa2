package policy

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: " 192.168.1.0/24 ", want: "192.168.1.0/24"},
		{in: "2001:db8::/32", want: "2001:db8::/32"},
		{in: "10.1.2.3", want: "10.1.2.3/32"},
		{in: "::ffff:10.1.2.3", want: "10.1.2.3/32"},
		{in: "2001:db8::1", want: "2001:db8::1/128"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "10.0.0.1/8", err: "host bits set; write 10.0.0.0/8"},
		{in: "::ffff:10.0.0.0/104", err: "dotted form"},
		{in: "10.0.0.0/33", err: "not a CIDR prefix"},
		{in: "fe80::1%eth0", err: "zoned"},
		{in: "corp", err: "neither a CIDR prefix nor an IP address"},
		{in: "", err: "neither"},
	}
	for _, tt := range tests {
		p, err := ParsePrefix(tt.in)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePrefix(%q) = %v, %v; want error containing %q", tt.in, p, err, tt.err)
			}
		case err != nil || p.String() != tt.want:
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tt.in, p, err, tt.want)
		}
	}
}

func TestNetworks(t *testing.T) {
	n, err := NewNetworks(map[string][]string{
		"corp":    {"10.0.0.0/8", "192.168.0.0/16"},
		"lab":     {"10.20.0.0/16"},
		"v6":      {"2001:db8::/32"},
		"gateway": {"203.0.113.7"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := n.Names(); !slices.Equal(got, []string{"corp", "gateway", "lab", "v6"}) {
		t.Errorf("Names() = %q", got)
	}
	tests := []struct {
		ip   string
		want []string
	}{
		{"10.1.2.3", []string{"corp"}},
		{"10.20.0.9", []string{"corp", "lab"}},
		{"::ffff:10.20.0.9", []string{"corp", "lab"}},
		{"192.168.255.255", []string{"corp"}},
		{"203.0.113.7", []string{"gateway"}},
		{"203.0.113.8", nil},
		{"2001:db8::42", []string{"v6"}},
		{"2001:db9::42", nil},
		{"fe80::1%eth0", nil},
	}
	for _, tt := range tests {
		if got := n.Match(netip.MustParseAddr(tt.ip)); !slices.Equal(got, tt.want) {
			t.Errorf("Match(%s) = %q, want %q", tt.ip, got, tt.want)
		}
	}
	if got := (*Networks)(nil).Match(netip.MustParseAddr("10.0.0.1")); got != nil {
		t.Errorf("nil Networks matched %q", got)
	}
	if got := n.Match(netip.Addr{}); got != nil {
		t.Errorf("invalid address matched %q", got)
	}

	for _, bad := range []map[string][]string{
		{"Corp": {"10.0.0.0/8"}},
		{"corp net": {"10.0.0.0/8"}},
		{"corp": {}},
		{"corp": {"10.0.0.1/8"}},
		{"corp": {"not-an-ip"}},
	} {
		if _, err := NewNetworks(bad); err == nil {
			t.Errorf("NewNetworks(%v): no error", bad)
		}
	}
	if n, err := NewNetworks(nil); n != nil || err != nil {
		t.Errorf("NewNetworks(nil) = %v, %v; want nil, nil", n, err)
	}
}

// TestPolicyCIDRHelpers: policies can test addresses with OPA's
// net.cidr_contains as well as with the named networks warden computes.
func TestPolicyCIDRHelpers(t *testing.T) {
	e := mustLoad(t, "testdata/networks")
	nets, err := NewNetworks(map[string][]string{"corp": {"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip          string
		wantReasons []string
	}{
		{"10.0.0.7", []string{"named network corp", "net.cidr_contains 10.0.0.0/8"}},
		{"192.168.1.1", []string{ReasonDefaultDeny}},
		{"2001:db8::1", []string{ReasonDefaultDeny}},
	}
	for _, tt := range tests {
		ex := newExchange()
		ex.SourceIP = netip.MustParseAddr(tt.ip)
		in, err := NewInput(ex, InputOptions{Networks: nets})
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.Decide(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Reasons, tt.wantReasons) {
			t.Errorf("%s: reasons %q, want %q", tt.ip, d.Reasons, tt.wantReasons)
		}
	}
}

// FuzzParsePrefix: no panic; what parses is a masked prefix that holds its
// own address, and printing and parsing it again gives the same prefix.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "10.0.0.1/8", "::ffff:1.2.3.4", "2001:db8::/32", "1.2.3.4", "fe80::1%z", "/", "1.2.3.4/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p.Masked() != p || !p.Contains(p.Addr()) {
			t.Fatalf("ParsePrefix(%q) = %v: not a valid masked prefix", s, p)
		}
		again, err := ParsePrefix(p.String())
		if err != nil || again != p {
			t.Fatalf("ParsePrefix(%q) = %v, but %v parses as %v, %v", s, p, p, again, err)
		}
	})
}
