package mtls

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/warden-ai/warden/internal/config"
)

// Errors a bundle source returns. The Authenticator refuses a certificate of
// an unknown trust domain (401) and fails closed on an unavailable bundle (503).
var (
	// ErrUnknownTrustDomain: no bundle is configured for the trust domain.
	ErrUnknownTrustDomain = errors.New("mtls: trust domain not configured")
	// ErrBundleUnavailable: the trust domain is configured but its bundle
	// cannot be used right now (a corrupt bundle file, a closed source).
	ErrBundleUnavailable = errors.New("mtls: trust bundle unavailable")
)

// DefaultWatchInterval is how often Watch polls bundle files when given no interval.
const DefaultWatchInterval = 5 * time.Second

// maxBundleBytes bounds a bundle file: real bundles are a few kilobytes.
const maxBundleBytes = 4 << 20

// FileBundles is an x509bundle.Source over PEM bundle files, one per trust
// domain, reloaded when their content changes.
//
// A bundle file that cannot be read or parsed on a reload, or that holds no
// certificate, fails closed for its trust domain: the previous bundle is
// dropped, GetX509BundleForTrustDomain returns ErrBundleUnavailable (so its
// certificates get a 503, never a pass), Healthy reports the error, and the
// next successful reload restores it. Keeping the old bundle instead would
// keep trusting a CA that the operator may have just removed. Replace bundle
// files atomically (write a temporary file, then rename it) so that a reload
// never sees half a file.
type FileBundles struct {
	logger *slog.Logger

	reloadMu sync.Mutex // one Reload at a time

	mu      sync.RWMutex
	domains map[spiffeid.TrustDomain]*fileBundle
	order   []spiffeid.TrustDomain // config order, for stable logs and errors
}

// fileBundle is the state of one trust domain's bundle file. Guarded by FileBundles.mu.
type fileBundle struct {
	td     spiffeid.TrustDomain
	path   string
	bundle *x509bundle.Bundle // nil while err != nil; never mutated once published
	err    error              // why the last load failed; nil when bundle is good
	sum    [sha256.Size]byte  // content hash of the last file read; zero after a read error
}

// NewFileBundles loads the bundle file of every trust domain. Any trust
// domain that cannot be loaded is an error: warden does not start with a
// broken trust configuration. logger may be nil.
func NewFileBundles(tds []config.TrustDomain, logger *slog.Logger) (*FileBundles, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &FileBundles{logger: logger, domains: make(map[spiffeid.TrustDomain]*fileBundle, len(tds))}
	for i, c := range tds {
		td, err := spiffeid.TrustDomainFromString(c.Name)
		if err != nil {
			return nil, fmt.Errorf("mtls: trust_domains[%d]: name %q: %w", i, c.Name, err)
		}
		if _, dup := b.domains[td]; dup {
			return nil, fmt.Errorf("mtls: trust_domains[%d]: trust domain %q listed twice", i, td)
		}
		if c.BundleFile == "" {
			return nil, fmt.Errorf("mtls: trust_domains[%d]: trust domain %q: bundle_file is required", i, td)
		}
		fb := &fileBundle{td: td, path: c.BundleFile}
		data, err := readBundleFile(fb.path)
		if err != nil {
			return nil, fmt.Errorf("mtls: trust domain %q: %w", td, err)
		}
		bundle, err := parseBundle(td, data)
		if err != nil {
			return nil, fmt.Errorf("mtls: trust domain %q: bundle %s: %w", td, fb.path, err)
		}
		fb.bundle, fb.sum = bundle, sha256.Sum256(data)
		b.domains[td] = fb
		b.order = append(b.order, td)
	}
	return b, nil
}

// GetX509BundleForTrustDomain implements x509bundle.Source. The returned
// bundle is never modified afterwards: a reload publishes a new one.
func (b *FileBundles) GetX509BundleForTrustDomain(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	fb, ok := b.domains[td]
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: %q", ErrUnknownTrustDomain, td)
	case fb.err != nil:
		return nil, fmt.Errorf("%w: trust domain %q: %w", ErrBundleUnavailable, td, fb.err)
	}
	return fb.bundle, nil
}

// TrustDomains returns the configured trust domains, in config order.
func (b *FileBundles) TrustDomains() []spiffeid.TrustDomain {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]spiffeid.TrustDomain(nil), b.order...)
}

// Healthy returns nil when every bundle is loaded, else why not.
func (b *FileBundles) Healthy() error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var errs []error
	for _, td := range b.order {
		if fb := b.domains[td]; fb.err != nil {
			errs = append(errs, fmt.Errorf("%w: trust domain %q: %w", ErrBundleUnavailable, td, fb.err))
		}
	}
	return errors.Join(errs...)
}

// Reload re-reads every bundle file whose content changed since it was last
// read and returns the errors of the trust domains that failed now (nil when
// every changed file loaded). Unchanged files are not parsed again, and an
// unchanged broken file is not reported twice (Healthy still reports it).
func (b *FileBundles) Reload() error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	b.mu.RLock()
	order := append([]spiffeid.TrustDomain(nil), b.order...)
	b.mu.RUnlock()

	var errs []error
	for _, td := range order {
		b.mu.RLock()
		fb := b.domains[td]
		path, oldSum, hadErr := fb.path, fb.sum, fb.err != nil
		b.mu.RUnlock()

		data, err := readBundleFile(path)
		if err != nil {
			b.publish(td, nil, [sha256.Size]byte{}, err)
			errs = append(errs, fmt.Errorf("mtls: trust domain %q: %w", td, err))
			continue
		}
		sum := sha256.Sum256(data)
		if sum == oldSum {
			continue // unchanged; a broken file stays broken until it changes
		}
		bundle, err := parseBundle(td, data)
		if err != nil {
			err = fmt.Errorf("bundle %s: %w", path, err)
			b.publish(td, nil, sum, err)
			errs = append(errs, fmt.Errorf("mtls: trust domain %q: %w", td, err))
			continue
		}
		b.publish(td, bundle, sum, nil)
		b.logger.Info("mtls: trust bundle reloaded", "trust_domain", td.Name(), "path", path,
			"authorities", len(bundle.X509Authorities()), "recovered", hadErr)
	}
	return errors.Join(errs...)
}

// publish replaces one trust domain's state and logs a new failure.
func (b *FileBundles) publish(td spiffeid.TrustDomain, bundle *x509bundle.Bundle, sum [sha256.Size]byte, err error) {
	b.mu.Lock()
	fb := b.domains[td]
	// Log a failure once, not at every poll, unless it changes.
	newFailure := err != nil && (fb.err == nil || fb.err.Error() != err.Error())
	fb.bundle, fb.sum, fb.err = bundle, sum, err
	b.mu.Unlock()
	if newFailure {
		b.logger.Error("mtls: trust bundle cannot be loaded; certificates of this trust domain are refused (503) until it is fixed",
			"trust_domain", td.Name(), "path", fb.path, "error", err)
	}
}

// Watch reloads the bundle files every interval (DefaultWatchInterval when
// interval <= 0) until ctx is done. Failures are logged and reported by Healthy.
func (b *FileBundles) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = b.Reload() // logged by publish; reported by Healthy
		}
	}
}

// readBundleFile reads a bundle file, bounded by maxBundleBytes.
func readBundleFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxBundleBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: read: %w", path, err)
	}
	if len(data) > maxBundleBytes {
		return nil, fmt.Errorf("bundle %s: larger than %d bytes", path, maxBundleBytes)
	}
	return data, nil
}

// parseBundle parses PEM CA certificates into td's bundle. A bundle without
// any certificate is an error: it would refuse everyone without saying why.
func parseBundle(td spiffeid.TrustDomain, data []byte) (*x509bundle.Bundle, error) {
	bundle, err := x509bundle.Parse(td, data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if bundle.Empty() {
		return nil, errors.New("parse: no CA certificate in the bundle")
	}
	return bundle, nil
}

var _ x509bundle.Source = (*FileBundles)(nil)
