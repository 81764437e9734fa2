package mtls

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-ai/warden/internal/config"
)

func TestNewFileBundlesErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "example.org")
	good := filepath.Join(dir, "good.pem")
	writeAtomic(t, good, pemCerts(ca.cert))
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		writeAtomic(t, p, data)
		return p
	}
	empty := write("empty.pem", nil)
	garbage := write("garbage.pem", []byte("this is not PEM"))
	keyOnly := write("key.pem", pemKey(t, newKey(t)))
	badDER := write("bad-der.pem", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	big := write("big.pem", bytes.Repeat([]byte("A"), maxBundleBytes+1))

	tests := []struct {
		name    string
		tds     []config.TrustDomain
		wantErr string // "" = loads
	}{
		{"good", []config.TrustDomain{{Name: "example.org", BundleFile: good}}, ""},
		{"spiffe:// form of the name", []config.TrustDomain{{Name: "spiffe://example.org", BundleFile: good}}, ""},
		{"no trust domains", nil, ""},
		{"invalid name", []config.TrustDomain{{Name: "Example.org", BundleFile: good}}, "name"},
		{"listed twice", []config.TrustDomain{{Name: "example.org", BundleFile: good}, {Name: "spiffe://example.org", BundleFile: good}}, "twice"},
		{"no bundle file", []config.TrustDomain{{Name: "example.org"}}, "bundle_file is required"},
		{"missing file", []config.TrustDomain{{Name: "example.org", BundleFile: filepath.Join(dir, "nope.pem")}}, "no such file"},
		{"empty file", []config.TrustDomain{{Name: "example.org", BundleFile: empty}}, "no CA certificate"},
		{"not PEM", []config.TrustDomain{{Name: "example.org", BundleFile: garbage}}, "parse"},
		{"a key, not a certificate", []config.TrustDomain{{Name: "example.org", BundleFile: keyOnly}}, "parse"},
		{"bad DER", []config.TrustDomain{{Name: "example.org", BundleFile: badDER}}, "parse"},
		{"too big", []config.TrustDomain{{Name: "example.org", BundleFile: big}}, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewFileBundles(tt.tds, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Healthy(); err != nil {
					t.Errorf("healthy: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestFileBundlesSource(t *testing.T) {
	f := newFixture(t, nil)
	td := spiffeid.RequireTrustDomainFromString("example.org")
	b, err := f.bundles.GetX509BundleForTrustDomain(td)
	if err != nil || !b.HasX509Authority(f.ca.cert) || len(b.X509Authorities()) != 1 {
		t.Fatalf("bundle %v, %v", b, err)
	}
	if _, err := f.bundles.GetX509BundleForTrustDomain(spiffeid.RequireTrustDomainFromString("nope.org")); !errors.Is(err, ErrUnknownTrustDomain) {
		t.Errorf("unknown trust domain: %v", err)
	}
	got := f.bundles.TrustDomains()
	if len(got) != 2 || got[0].Name() != "example.org" || got[1].Name() != "partner.org" {
		t.Errorf("TrustDomains() = %v", got)
	}
}

// Replacing the bundle file with a new CA takes effect without a restart:
// the old CA's certificates are refused, the new CA's accepted.
func TestBundleRotationWithWatch(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); f.bundles.Watch(ctx, 10*time.Millisecond) }()
	defer func() { cancel(); wg.Wait() }()

	oldLeaf := f.ca.leaf(t, []string{"spiffe://example.org/a"})
	newCAx := newCA(t, "example.org")
	newLeaf := newCAx.leaf(t, []string{"spiffe://example.org/a"})
	auth := func(l *testLeaf) error {
		_, err := f.auth.Authenticate(context.Background(), creds(l.chain...), time.Now())
		return err
	}
	if err := auth(oldLeaf); err != nil {
		t.Fatalf("old CA before rotation: %v", err)
	}
	if err := auth(newLeaf); classify(err) != notProven {
		t.Fatalf("new CA before rotation: %v, want not proven", err)
	}

	writeAtomic(t, f.examplePath, pemCerts(newCAx.cert))
	waitFor(t, "the new bundle", func() bool { return auth(newLeaf) == nil })
	if err := auth(oldLeaf); classify(err) != notProven {
		t.Errorf("old CA after rotation: %v, want not proven (even though it was cached)", err)
	}
	if err := f.bundles.Healthy(); err != nil {
		t.Errorf("healthy: %v", err)
	}
	// The other trust domain was not disturbed.
	if err := auth(f.partner.leaf(t, []string{"spiffe://partner.org/a"})); err != nil {
		t.Errorf("partner.org after example.org rotated: %v", err)
	}
}

// A corrupt bundle fails closed for its trust domain until it is fixed;
// other trust domains keep working.
func TestCorruptBundleFailsClosed(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, nil)
	f.bundles.logger = slog.New(slog.NewTextHandler(&logs, nil))
	leaf := f.ca.leaf(t, []string{"spiffe://example.org/a"})
	auth := func(l *testLeaf) error {
		_, err := f.auth.Authenticate(context.Background(), creds(l.chain...), time.Now())
		return err
	}
	if err := auth(leaf); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []struct {
		name string
		data []byte
	}{
		{"garbage", []byte("garbage")},
		{"truncated PEM", pemCerts(f.ca.cert)[:100]},
		{"empty", nil},
	} {
		t.Run(bad.name, func(t *testing.T) {
			logs.Reset()
			writeAtomic(t, f.examplePath, bad.data)
			if err := f.bundles.Reload(); err == nil {
				t.Fatal("reload of a corrupt bundle reported no error")
			}
			if err := f.bundles.Healthy(); !errors.Is(err, ErrBundleUnavailable) {
				t.Errorf("healthy: %v, want ErrBundleUnavailable", err)
			}
			err := auth(leaf) // cached before: the cache must not hide the failure
			if classify(err) != fault || !errors.Is(err, ErrBundleUnavailable) {
				t.Errorf("authenticate: %v, want a fault wrapping ErrBundleUnavailable (503)", err)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("no error logged: %q", logs.String())
			}
			if err := auth(f.partner.leaf(t, []string{"spiffe://partner.org/a"})); err != nil {
				t.Errorf("partner.org while example.org is broken: %v", err)
			}
			// The same broken file again: still unhealthy, not reported again.
			if err := f.bundles.Reload(); err != nil {
				t.Errorf("unchanged broken file reported again: %v", err)
			}
			if f.bundles.Healthy() == nil {
				t.Error("healthy after an unchanged broken file")
			}
			// Fixed: accepted again.
			writeAtomic(t, f.examplePath, pemCerts(f.ca.cert))
			if err := f.bundles.Reload(); err != nil {
				t.Fatal(err)
			}
			if err := f.bundles.Healthy(); err != nil {
				t.Errorf("healthy after the fix: %v", err)
			}
			if err := auth(leaf); err != nil {
				t.Errorf("after the fix: %v", err)
			}
		})
	}

	t.Run("deleted file", func(t *testing.T) {
		logs.Reset()
		if err := os.Remove(f.examplePath); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := f.bundles.Reload(); err == nil {
				t.Fatal("reload of a deleted bundle reported no error")
			}
		}
		if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
			t.Errorf("the same failure logged %d times over 3 polls, want once", n)
		}
		if err := auth(leaf); classify(err) != fault {
			t.Errorf("authenticate: %v, want a fault", err)
		}
		writeAtomic(t, f.examplePath, pemCerts(f.ca.cert))
		if err := f.bundles.Reload(); err != nil {
			t.Fatal(err)
		}
		if err := auth(leaf); err != nil {
			t.Errorf("after the file came back: %v", err)
		}
	})
}

// With allow_non_spiffe, a certificate that might have been issued by a
// trust domain whose bundle is broken fails closed rather than being refused.
func TestNonSPIFFEWithBrokenBundle(t *testing.T) {
	f := newFixture(t, func(c *config.MTLS) { c.AllowNonSPIFFE = true })
	writeAtomic(t, f.examplePath, []byte("garbage"))
	_ = f.bundles.Reload()
	_, err := f.auth.Authenticate(context.Background(), creds(f.ca.leaf(t, nil, withCN("job")).chain...), time.Now())
	if classify(err) != fault {
		t.Errorf("non-SPIFFE certificate with a broken bundle: %v, want a fault", err)
	}
	// One that verifies against a healthy bundle is still accepted.
	if _, err := f.auth.Authenticate(context.Background(), creds(f.partner.leaf(t, nil, withCN("job")).chain...), time.Now()); err != nil {
		t.Errorf("partner certificate: %v", err)
	}
}
