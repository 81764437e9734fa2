package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// fixture: two configured trust domains, example.org and partner.org, with
// their bundle files, and an Authenticator over them.
type fixture struct {
	dir                      string
	ca, partner              *testCA
	examplePath, partnerPath string
	bundles                  *FileBundles
	cfg                      config.MTLS
	auth                     *Authenticator
}

func newFixture(t testing.TB, mod func(*config.MTLS)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), ca: newCA(t, "example.org"), partner: newCA(t, "partner.org")}
	f.examplePath = filepath.Join(f.dir, "example.pem")
	f.partnerPath = filepath.Join(f.dir, "partner.pem")
	writeAtomic(t, f.examplePath, pemCerts(f.ca.cert))
	writeAtomic(t, f.partnerPath, pemCerts(f.partner.cert))
	f.cfg = config.MTLS{
		TrustDomains: []config.TrustDomain{
			{Name: "example.org", BundleFile: f.examplePath},
			{Name: "partner.org", BundleFile: f.partnerPath},
		},
		Kinds: []config.KindRule{
			{PathPrefix: "/agent/", Kind: gateway.KindAgent},
			{PathPrefix: "/user", Kind: gateway.KindUser},
		},
	}
	if mod != nil {
		mod(&f.cfg)
	}
	var err error
	f.bundles, err = NewFileBundles(f.cfg.TrustDomains, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.auth = New(f.bundles, f.cfg, Options{})
	return f
}

func creds(chain ...*x509.Certificate) *identity.Credentials {
	return &identity.Credentials{PeerCerts: chain}
}

type outcome int

const (
	proven outcome = iota
	notProven
	fault
)

func (o outcome) String() string { return [...]string{"proven", "not proven", "fault"}[o] }

func classify(err error) outcome {
	switch {
	case err == nil:
		return proven
	case errors.Is(err, identity.ErrNotProven):
		return notProven
	default:
		return fault
	}
}

func TestAuthenticate(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	rogue := newCA(t, "example.org") // claims the trust domain, not in its bundle
	evil := newCA(t, "evil.org")     // a trust domain nobody configured
	inter := f.ca.intermediate(t, now.Add(-time.Hour), now.Add(24*time.Hour))
	expiredInter := f.ca.intermediate(t, now.Add(-48*time.Hour), now.Add(-time.Hour))

	withInter := inter.leaf(t, []string{"spiffe://example.org/agent/planner"})
	tests := []struct {
		name      string
		chain     []*x509.Certificate
		want      outcome
		wantID    string
		wantKind  string
		wantIss   string
		wantInErr string
	}{
		{"agent svid", f.ca.leaf(t, []string{"spiffe://example.org/agent/planner"}).chain, proven,
			"spiffe://example.org/agent/planner", gateway.KindAgent, "example.org", ""},
		{"service svid, default kind", f.ca.leaf(t, []string{"spiffe://example.org/ns/prod/sa/api"}).chain, proven,
			"spiffe://example.org/ns/prod/sa/api", gateway.KindService, "example.org", ""},
		{"user prefix without slash matches the segment", f.ca.leaf(t, []string{"spiffe://example.org/user/alice"}).chain, proven,
			"spiffe://example.org/user/alice", gateway.KindUser, "example.org", ""},
		{"user prefix does not match a longer segment", f.ca.leaf(t, []string{"spiffe://example.org/users/alice"}).chain, proven,
			"spiffe://example.org/users/alice", gateway.KindService, "example.org", ""},
		{"second trust domain", f.partner.leaf(t, []string{"spiffe://partner.org/agent/x"}).chain, proven,
			"spiffe://partner.org/agent/x", gateway.KindAgent, "partner.org", ""},
		{"intermediate presented", withInter.chain, proven,
			"spiffe://example.org/agent/planner", gateway.KindAgent, "example.org", ""},

		{"another trust domain", evil.leaf(t, []string{"spiffe://evil.org/agent/x"}).chain, notProven, "", "", "", `"evil.org" is not configured`},
		{"other domain's id signed by a configured CA", f.ca.leaf(t, []string{"spiffe://partner.org/agent/x"}).chain, notProven, "", "", "", "does not verify"},
		{"untrusted CA claiming the trust domain", rogue.leaf(t, []string{"spiffe://example.org/agent/x"}).chain, notProven, "", "", "", "does not verify"},
		{"expired leaf", f.ca.leaf(t, []string{"spiffe://example.org/a"}, withValidity(now.Add(-2*time.Hour), now.Add(-time.Minute))).chain,
			notProven, "", "", "", "expired"},
		{"not yet valid leaf", f.ca.leaf(t, []string{"spiffe://example.org/a"}, withValidity(now.Add(time.Hour), now.Add(2*time.Hour))).chain,
			notProven, "", "", "", "not yet valid"},
		{"expired intermediate", expiredInter.leaf(t, []string{"spiffe://example.org/a"}, withValidity(now.Add(-2*time.Hour), now.Add(-90*time.Minute))).chain,
			notProven, "", "", "", "does not verify"},
		{"intermediate missing", inter.leaf(t, []string{"spiffe://example.org/agent/other"}).chain[:1], notProven, "", "", "", "does not verify"},
		{"no SPIFFE ID where one is required", f.ca.leaf(t, nil, withCN("api.example.org")).chain, notProven, "", "", "", "no SPIFFE ID"},
		{"non-SPIFFE URI SAN only", f.ca.leaf(t, []string{"https://example.org/x"}, withCN("api")).chain, notProven, "", "", "", "no SPIFFE ID"},
		{"two SPIFFE URI SANs", f.ca.leaf(t, []string{"spiffe://example.org/a", "spiffe://example.org/admin"}).chain, notProven, "", "", "", "exactly one"},
		{"SPIFFE and https URI SANs", f.ca.leaf(t, []string{"spiffe://example.org/a", "https://example.org/"}).chain, notProven, "", "", "", "exactly one"},
		{"malformed SPIFFE ID", f.ca.leaf(t, []string{"spiffe://Example.org/a"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		{"SPIFFE ID with dot segment", f.ca.leaf(t, []string{"spiffe://example.org/agent/../admin"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		{"SPIFFE ID with fragment", f.ca.leaf(t, []string{"spiffe://example.org/a#b"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		{"SPIFFE ID with user info", f.ca.leaf(t, []string{"spiffe://admin@example.org/a"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		{"SPIFFE ID with port", f.ca.leaf(t, []string{"spiffe://example.org:443/a"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		// RFC 3986 §3.1: schemes are case-insensitive; the CA vouched for this very ID.
		{"upper-case scheme names the same ID", f.ca.leaf(t, []string{"SPIFFE://example.org/a"}).chain, proven,
			"spiffe://example.org/a", gateway.KindService, "example.org", ""},
		{"SPIFFE ID with query", f.ca.leaf(t, []string{"spiffe://example.org/a?admin=1"}).chain, notProven, "", "", "", "malformed SPIFFE ID"},
		{"leaf is a CA", f.ca.leaf(t, []string{"spiffe://example.org/a"}, withCAFlag()).chain, notProven, "", "", "", "CA"},
		{"server-only extended key usage", f.ca.leaf(t, []string{"spiffe://example.org/a"}, withEKU(x509.ExtKeyUsageServerAuth)).chain,
			notProven, "", "", "", "client authentication"},
		{"empty chain", nil, notProven, "", "", "", "no client certificate"},
		{"nil certificate", []*x509.Certificate{nil}, notProven, "", "", "", "empty certificate"},
		{"chain too long", make11(withInter.chain[0]), notProven, "", "", "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.auth.Authenticate(context.Background(), creds(tt.chain...), now)
			if got := classify(err); got != tt.want {
				t.Fatalf("outcome %v (err %v), want %v", got, err, tt.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantInErr)
				}
				if p.ID != "" || p.Kind != "" || p.CredentialID != "" {
					t.Errorf("principal %+v returned with an error", p)
				}
				return
			}
			if p.ID != tt.wantID || p.Kind != tt.wantKind || p.Issuer != tt.wantIss || p.AuthMethod != Method {
				t.Errorf("principal %+v, want id %q kind %q issuer %q method %q", p, tt.wantID, tt.wantKind, tt.wantIss, Method)
			}
		})
	}
}

func make11(c *x509.Certificate) []*x509.Certificate {
	out := make([]*x509.Certificate, 11)
	for i := range out {
		out[i] = c
	}
	return out
}

func TestPrincipalFields(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now().Truncate(time.Second)
	l := f.ca.leaf(t, []string{"spiffe://example.org/agent/a"}, withValidity(now.Add(-time.Minute), now.Add(30*time.Minute)))
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(l.cert.Raw)
	want := gateway.Principal{
		Kind: gateway.KindAgent, ID: "spiffe://example.org/agent/a", AuthMethod: "mtls",
		CredentialID: hex.EncodeToString(sum[:16]), Issuer: "example.org",
		AuthTime: now, ExpiresAt: l.cert.NotAfter,
	}
	if !equalPrincipal(p, want) {
		t.Errorf("principal\n got %+v\nwant %+v", p, want)
	}
	// The second request is served from the cache and says the same, with its own time.
	later := now.Add(time.Minute)
	p2, err := f.auth.Authenticate(context.Background(), creds(l.chain...), later)
	if err != nil {
		t.Fatal(err)
	}
	want.AuthTime = later
	if !equalPrincipal(p2, want) {
		t.Errorf("cached principal\n got %+v\nwant %+v", p2, want)
	}
}

func equalPrincipal(a, b gateway.Principal) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.AuthMethod == b.AuthMethod && a.CredentialID == b.CredentialID &&
		a.Issuer == b.Issuer && a.AuthTime.Equal(b.AuthTime) && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.OnBehalfOf == "" && b.OnBehalfOf == "" && len(a.Scopes) == 0 && len(a.Groups) == 0 && len(a.Roles) == 0 &&
		!a.MFA && a.Workload == ""
}

// The request time, not the wall clock, decides validity — also for a
// leaf already in the cache.
func TestAuthenticateUsesRequestTime(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	l := f.ca.leaf(t, []string{"spiffe://example.org/a"}, withValidity(now.Add(-time.Minute), now.Add(time.Hour)))
	for _, tt := range []struct {
		name string
		at   time.Time
		want outcome
	}{
		{"now", now, proven},
		{"after expiry, cached", now.Add(2 * time.Hour), notProven},
		{"before validity", now.Add(-time.Hour), notProven},
		{"now again", now.Add(time.Second), proven},
		{"exactly at not-after", l.cert.NotAfter.Add(time.Nanosecond), notProven},
	} {
		_, err := f.auth.Authenticate(context.Background(), creds(l.chain...), tt.at)
		if got := classify(err); got != tt.want {
			t.Errorf("%s: %v (err %v), want %v", tt.name, got, err, tt.want)
		}
	}
	// A zero time means Options.Now.
	a := New(f.bundles, f.cfg, Options{Now: func() time.Time { return now.Add(3 * time.Hour) }})
	if _, err := a.Authenticate(context.Background(), creds(l.chain...), time.Time{}); classify(err) != notProven {
		t.Errorf("zero time with a clock 3h ahead: %v, want not proven", err)
	}
}

func TestAuthenticateNonSPIFFE(t *testing.T) {
	f := newFixture(t, func(c *config.MTLS) { c.AllowNonSPIFFE = true })
	rogue := newCA(t, "example.org")
	tests := []struct {
		name      string
		chain     []*x509.Certificate
		want      outcome
		wantID    string
		wantIss   string
		wantInErr string
	}{
		{"common name", f.ca.leaf(t, nil, withCN("billing-batch")).chain, proven, "billing-batch", "example.org", ""},
		{"second trust domain's CA", f.partner.leaf(t, nil, withCN("partner-job")).chain, proven, "partner-job", "partner.org", ""},
		{"https URI SAN is not a SPIFFE ID", f.ca.leaf(t, []string{"https://example.org/x"}, withCN("web")).chain, proven, "web", "example.org", ""},
		{"SVID still works", f.ca.leaf(t, []string{"spiffe://example.org/agent/a"}).chain, proven, "spiffe://example.org/agent/a", "example.org", ""},
		{"untrusted CA", rogue.leaf(t, nil, withCN("billing-batch")).chain, notProven, "", "", "does not verify"},
		{"no common name", f.ca.leaf(t, nil).chain, notProven, "", "", "common name"},
		{"common name posing as a SPIFFE ID", f.ca.leaf(t, nil, withCN("spiffe://example.org/admin")).chain, notProven, "", "", "names a SPIFFE ID"},
		{"upper-case scheme in common name", f.ca.leaf(t, nil, withCN("SPIFFE://example.org/admin")).chain, notProven, "", "", "names a SPIFFE ID"},
		{"two SPIFFE IDs are still refused", f.ca.leaf(t, []string{"spiffe://example.org/a", "spiffe://example.org/b"}, withCN("x")).chain, notProven, "", "", "exactly one"},
		{"expired", f.ca.leaf(t, nil, withCN("old"), withValidity(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))).chain, notProven, "", "", "does not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.auth.Authenticate(context.Background(), creds(tt.chain...), time.Now())
			if got := classify(err); got != tt.want {
				t.Fatalf("outcome %v (err %v), want %v", got, err, tt.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantInErr) {
					t.Errorf("error %q does not mention %q", err, tt.wantInErr)
				}
				return
			}
			if p.ID != tt.wantID || p.Issuer != tt.wantIss || p.AuthMethod != Method {
				t.Errorf("principal %+v, want id %q issuer %q", p, tt.wantID, tt.wantIss)
			}
			if !strings.HasPrefix(p.ID, "spiffe://") && p.Kind != gateway.KindService {
				t.Errorf("kind %q, want service", p.Kind)
			}
		})
	}
}

// cfg.TrustDomains narrows what a source offers; without it the source decides.
func TestTrustDomainAllowlist(t *testing.T) {
	ex, other := newCA(t, "example.org"), newCA(t, "other.org")
	set := x509bundle.NewSet(
		x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString("example.org"), []*x509.Certificate{ex.cert}),
		x509bundle.FromX509Authorities(spiffeid.RequireTrustDomainFromString("other.org"), []*x509.Certificate{other.cert}),
	)
	otherLeaf := other.leaf(t, []string{"spiffe://other.org/a"}).chain
	exLeaf := ex.leaf(t, []string{"spiffe://example.org/a"}).chain
	tests := []struct {
		name      string
		tds       []config.TrustDomain
		chain     []*x509.Certificate
		want      outcome
		wantInErr string
	}{
		{"listed", []config.TrustDomain{{Name: "example.org"}}, exLeaf, proven, ""},
		{"in the source but not listed", []config.TrustDomain{{Name: "example.org"}}, otherLeaf, notProven, "not configured"},
		{"no list: the source decides", nil, otherLeaf, proven, ""},
		{"an invalid name narrows, never widens", []config.TrustDomain{{Name: "Not A Domain!"}}, otherLeaf, notProven, "not configured"},
		{"listed, source has no bundle", []config.TrustDomain{{Name: "third.org"}}, newCA(t, "third.org").leaf(t, []string{"spiffe://third.org/a"}).chain, notProven, "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(set, config.MTLS{TrustDomains: tt.tds}, Options{})
			_, err := a.Authenticate(context.Background(), creds(tt.chain...), time.Now())
			if got := classify(err); got != tt.want {
				t.Fatalf("outcome %v (err %v), want %v", got, err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantInErr)
			}
		})
	}
	if _, err := New(nil, config.MTLS{}, Options{}).Authenticate(context.Background(), creds(exLeaf...), time.Now()); classify(err) != fault {
		t.Errorf("nil source: %v, want a fault", err)
	}
}

func TestHandlesAndName(t *testing.T) {
	a := New(x509bundle.NewSet(), config.MTLS{}, Options{})
	if a.Name() != "mtls" {
		t.Errorf("Name() = %q", a.Name())
	}
	if a.Handles(nil) || a.Handles(&identity.Credentials{Bearer: "x"}) {
		t.Error("handles credentials without a certificate")
	}
	if !a.Handles(creds(&x509.Certificate{})) {
		t.Error("does not handle a certificate")
	}
}

func TestRevalidate(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	l := f.ca.leaf(t, []string{"spiffe://example.org/agent/a"})
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Revalidate(&p, now.Add(time.Second)); err != nil {
		t.Fatalf("revalidate while valid: %v", err)
	}
	if err := f.auth.Revalidate(&p, p.ExpiresAt); classify(err) != notProven {
		t.Errorf("revalidate at expiry: %v, want not proven", err)
	}
	for _, tt := range []struct {
		name string
		mod  func(p *gateway.Principal)
	}{
		{"unknown credential id", func(p *gateway.Principal) { p.CredentialID = strings.Repeat("00", 16) }},
		{"malformed credential id", func(p *gateway.Principal) { p.CredentialID = "zz" }},
		{"another principal's credential", func(p *gateway.Principal) { p.ID = "spiffe://example.org/admin" }},
	} {
		q := p
		tt.mod(&q)
		if err := f.auth.Revalidate(&q, now); classify(err) != notProven {
			t.Errorf("%s: %v, want not proven", tt.name, err)
		}
	}
	if err := f.auth.Revalidate(nil, now); classify(err) != notProven {
		t.Errorf("nil principal: %v, want not proven", err)
	}

	// The CA is removed from the bundle (rotated out): the running exchange ends.
	writeAtomic(t, f.examplePath, pemCerts(newCA(t, "example.org").cert))
	if err := f.bundles.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Revalidate(&p, now.Add(2*time.Second)); classify(err) != notProven {
		t.Errorf("revalidate after the CA was removed: %v, want not proven", err)
	}
	// And it was forgotten: putting the CA back does not revive the exchange.
	writeAtomic(t, f.examplePath, pemCerts(f.ca.cert))
	if err := f.bundles.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Revalidate(&p, now.Add(3*time.Second)); classify(err) != notProven {
		t.Errorf("revalidate after the CA came back: %v, want not proven (reconnect)", err)
	}
}

func TestRevalidateKeepsUnrelatedRotation(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	l := f.ca.leaf(t, []string{"spiffe://example.org/a"})
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
	if err != nil {
		t.Fatal(err)
	}
	// A new CA is added next to the old one (the usual rotation overlap).
	writeAtomic(t, f.examplePath, pemCerts(f.ca.cert, newCA(t, "example.org").cert))
	if err := f.bundles.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := f.auth.Revalidate(&p, now.Add(time.Second)); err != nil {
		t.Errorf("revalidate after a CA was added: %v", err)
	}
}

func TestRevalidateFaults(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	l := f.ca.leaf(t, []string{"spiffe://example.org/a"})
	p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, f.examplePath, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if err := f.bundles.Reload(); err == nil {
		t.Fatal("reload of a corrupt bundle succeeded")
	}
	err = f.auth.Revalidate(&p, now.Add(time.Second))
	if classify(err) != fault || !errors.Is(err, ErrBundleUnavailable) {
		t.Errorf("revalidate with a corrupt bundle: %v, want ErrBundleUnavailable (fail closed)", err)
	}
}

func TestCacheEviction(t *testing.T) {
	f := newFixture(t, nil)
	f.auth = New(f.bundles, f.cfg, Options{CacheSize: 2})
	now := time.Now()
	var ps []gateway.Principal
	for _, id := range []string{"a", "b", "c"} {
		l := f.ca.leaf(t, []string{"spiffe://example.org/" + id})
		p, err := f.auth.Authenticate(context.Background(), creds(l.chain...), now)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if n := f.auth.cache.len(); n != 2 {
		t.Errorf("cache holds %d, want 2", n)
	}
	if err := f.auth.Revalidate(&ps[0], now); classify(err) != notProven {
		t.Errorf("evicted principal: %v, want not proven", err)
	}
	for _, p := range ps[1:] {
		if err := f.auth.Revalidate(&p, now); err != nil {
			t.Errorf("%s: %v", p.ID, err)
		}
	}
	// A refused certificate is never cached.
	bad := newCA(t, "example.org").leaf(t, []string{"spiffe://example.org/x"})
	if _, err := f.auth.Authenticate(context.Background(), creds(bad.chain...), now); err == nil {
		t.Fatal("rogue certificate accepted")
	}
	if f.auth.cache.get(credKey(sha256.Sum256(bad.cert.Raw))) != nil {
		t.Error("a refused certificate was cached")
	}
}

func TestPathHasPrefix(t *testing.T) {
	for _, tt := range []struct {
		path, prefix string
		want         bool
	}{
		{"/agent/x", "/agent/", true},
		{"/agent/x", "/agent", true},
		{"/agent", "/agent", true},
		{"/agents/x", "/agent", false},
		{"/agent", "/agent/", false},
		{"/x", "", true},
		{"/x", "/", true},
		{"", "/a", false},
	} {
		if got := pathHasPrefix(tt.path, tt.prefix); got != tt.want {
			t.Errorf("pathHasPrefix(%q, %q) = %v, want %v", tt.path, tt.prefix, got, tt.want)
		}
	}
}
