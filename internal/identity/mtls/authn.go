package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// Method is the Principal.AuthMethod of principals proven by a client certificate.
const Method = "mtls"

// maxChainLen bounds the presented chain (leaf and intermediates).
const maxChainLen = 10

// Options tune an Authenticator.
type Options struct {
	// Now is the clock used when Authenticate or Revalidate get a zero time. Default time.Now.
	Now func() time.Time
	// CacheSize is how many verified leaves are remembered (least recently
	// used first out) so that the next request with the same certificate and
	// Revalidate are cheap. Default DefaultCacheSize.
	CacheSize int
}

// Authenticator proves principals from TLS client certificates: X.509-SVIDs
// verified against SPIFFE trust bundles, and, with allow_non_spiffe,
// certificates without a SPIFFE ID named by their subject common name.
//
// A certificate is accepted for trust domain T only when T is configured (in
// cfg.TrustDomains when that list is not empty, else when the source has a
// bundle for T) and the chain verifies against T's bundle at the request
// time. A verified leaf is remembered by its SHA-256 fingerprint with the
// chain it verified through; that result is re-used while the chain's root
// is still in T's bundle and the request time is inside the validity window
// of every certificate of the chain, and the presented chain is verified
// again otherwise. (The TLS handshake has proven possession of the leaf's
// key; which intermediates a client sends again does not change what the
// leaf is.)
type Authenticator struct {
	src            x509bundle.Source
	allowed        map[spiffeid.TrustDomain]struct{} // nil: any trust domain src has a bundle for
	allowedOrder   []spiffeid.TrustDomain            // the configured trust domains, for non-SPIFFE certificates
	allowNonSPIFFE bool
	kinds          []config.KindRule
	now            func() time.Time
	cache          *leafCache
}

// New returns an authenticator that verifies client certificates against src.
func New(src x509bundle.Source, cfg config.MTLS, opts Options) *Authenticator {
	a := &Authenticator{
		src:            src,
		allowNonSPIFFE: cfg.AllowNonSPIFFE,
		kinds:          append([]config.KindRule(nil), cfg.Kinds...),
		now:            opts.Now,
		cache:          newLeafCache(opts.CacheSize),
	}
	if a.now == nil {
		a.now = time.Now
	}
	if len(cfg.TrustDomains) > 0 {
		// A non-nil allowlist even if no name parses: a typo must narrow
		// trust, never widen it to whatever the source offers.
		a.allowed = make(map[spiffeid.TrustDomain]struct{}, len(cfg.TrustDomains))
		for _, c := range cfg.TrustDomains {
			td, err := spiffeid.TrustDomainFromString(c.Name)
			if err != nil {
				continue
			}
			if _, dup := a.allowed[td]; !dup {
				a.allowed[td] = struct{}{}
				a.allowedOrder = append(a.allowedOrder, td)
			}
		}
	}
	return a
}

// Name implements identity.Authenticator.
func (a *Authenticator) Name() string { return Method }

// Handles implements identity.Authenticator: a client certificate was presented.
func (a *Authenticator) Handles(c *identity.Credentials) bool {
	return c != nil && len(c.PeerCerts) > 0
}

// Authenticate implements identity.Authenticator. c.PeerCerts is the chain
// as the client presented it, leaf first, not verified by TLS.
func (a *Authenticator) Authenticate(_ context.Context, c *identity.Credentials, now time.Time) (gateway.Principal, error) {
	if now.IsZero() {
		now = a.now()
	}
	if c == nil || len(c.PeerCerts) == 0 {
		return gateway.Principal{}, identity.NotProven("no client certificate")
	}
	if len(c.PeerCerts) > maxChainLen {
		return gateway.Principal{}, identity.NotProven("client certificate chain longer than %d certificates", maxChainLen)
	}
	for _, cert := range c.PeerCerts {
		if cert == nil || len(cert.Raw) == 0 {
			return gateway.Principal{}, identity.NotProven("empty certificate in the client chain")
		}
	}
	full := sha256.Sum256(c.PeerCerts[0].Raw)
	if e := a.cache.get(credKey(full)); e != nil && e.full == full {
		ok, err := a.stillValid(e, now)
		if err != nil {
			return gateway.Principal{}, err
		}
		if ok {
			return e.principal(now), nil
		}
	}
	e, err := a.verify(c.PeerCerts, full, now)
	if err != nil {
		return gateway.Principal{}, err
	}
	a.cache.put(e)
	return e.principal(now), nil
}

// Revalidate implements identity.Revalidator: the certificate has not
// expired, its trust domain is still configured, and its chain still
// verifies against the current bundle (a CA removed from the bundle ends
// the exchange). A principal whose verification is no longer remembered is
// refused: the client reconnects and is verified again.
func (a *Authenticator) Revalidate(p *gateway.Principal, now time.Time) error {
	if now.IsZero() {
		now = a.now()
	}
	if p == nil {
		return identity.NotProven("no principal to revalidate")
	}
	if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
		return identity.NotProven("client certificate expired at %s", p.ExpiresAt.UTC().Format(time.RFC3339))
	}
	key, ok := parseCredentialID(p.CredentialID)
	if !ok {
		return identity.NotProven("unknown client certificate id")
	}
	e := a.cache.get(key)
	if e == nil || e.id != p.ID {
		return identity.NotProven("client certificate verification expired from the cache; reconnect")
	}
	ok, err := a.stillValid(e, now)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	ne, err := a.verify(e.certs, e.full, now)
	if err != nil {
		a.cache.remove(key)
		return err
	}
	if ne.id != e.id {
		a.cache.remove(key)
		return identity.NotProven("client certificate no longer names the same principal")
	}
	a.cache.put(ne)
	return nil
}

// verified is the outcome of verifying one leaf. Never modified once built.
type verified struct {
	full      [sha256.Size]byte
	key       [credKeyLen]byte
	credID    string              // hex of key
	certs     []*x509.Certificate // the presented chain, for re-verification
	spiffe    bool                // the ID is a SPIFFE ID (else a subject common name)
	id        string
	td        spiffeid.TrustDomain
	kind      string
	root      *x509.Certificate // the bundle authority the chain verified to
	notBefore time.Time         // validity window of the verified chain
	notAfter  time.Time
}

func (e *verified) principal(now time.Time) gateway.Principal {
	return gateway.Principal{
		Kind:         e.kind,
		ID:           e.id,
		AuthMethod:   Method,
		CredentialID: e.credID,
		Issuer:       e.td.Name(),
		AuthTime:     now,
		ExpiresAt:    e.notAfter,
	}
}

// stillValid reports whether a remembered verification holds at now: inside
// the chain's validity window, trust domain configured, root still in its
// bundle. An error is a fault (bundle unavailable).
func (a *Authenticator) stillValid(e *verified, now time.Time) (bool, error) {
	if now.Before(e.notBefore) || !now.Before(e.notAfter) {
		return false, nil
	}
	b, err := a.bundleFor(e.td)
	if err != nil {
		if errors.Is(err, identity.ErrNotProven) {
			return false, nil // verify says why
		}
		return false, err
	}
	return b.HasX509Authority(e.root), nil
}

// verify verifies a presented chain at now.
func (a *Authenticator) verify(certs []*x509.Certificate, full [sha256.Size]byte, now time.Time) (*verified, error) {
	leaf := certs[0]
	id, hasID, err := spiffeIDOf(leaf)
	if err != nil {
		return nil, identity.NotProven("%v", err)
	}
	if err := checkLeaf(leaf); err != nil {
		return nil, identity.NotProven("%v", err)
	}
	e := &verified{full: full, key: credKey(full), certs: append([]*x509.Certificate(nil), certs...)}
	e.credID = hex.EncodeToString(e.key[:])
	if !hasID {
		if !a.allowNonSPIFFE {
			return nil, identity.NotProven("certificate has no SPIFFE ID")
		}
		return a.verifyNonSPIFFE(e, now)
	}

	td := id.TrustDomain()
	b, err := a.bundleFor(td)
	if err != nil {
		return nil, err
	}
	_, chains, err := x509svid.Verify(certs, b, x509svid.WithTime(now))
	if err != nil {
		return nil, identity.NotProven("certificate of %s does not verify against the bundle of trust domain %q: %v",
			id, td.Name(), err)
	}
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil, errors.New("mtls: verification returned no chain")
	}
	e.spiffe, e.id, e.td, e.kind = true, id.String(), td, a.kindFor(id.Path())
	e.root, e.notBefore, e.notAfter = window(chains[0])
	return e, nil
}

// verifyNonSPIFFE verifies a certificate without a SPIFFE ID against the
// bundle of each configured trust domain in turn; the first that verifies
// it is its issuer.
func (a *Authenticator) verifyNonSPIFFE(e *verified, now time.Time) (*verified, error) {
	leaf := e.certs[0]
	cn := leaf.Subject.CommonName
	switch {
	case cn == "":
		return nil, identity.NotProven("certificate has neither a SPIFFE ID nor a subject common name")
	case len(cn) >= len("spiffe:") && strings.EqualFold(cn[:len("spiffe:")], "spiffe:"):
		// Only a URI SAN verified against its own trust domain may name a SPIFFE ID.
		return nil, identity.NotProven("certificate without a SPIFFE ID names a SPIFFE ID in its common name")
	case len(a.allowedOrder) == 0:
		return nil, identity.NotProven("certificate has no SPIFFE ID and no trust domain is configured for such certificates")
	}
	var fault error
	for _, td := range a.allowedOrder {
		b, err := a.bundleFor(td)
		if err != nil {
			if !errors.Is(err, identity.ErrNotProven) {
				fault = err
			}
			continue
		}
		chains, err := leaf.Verify(x509.VerifyOptions{
			Roots:         certPool(b.X509Authorities()),
			Intermediates: certPool(e.certs[1:]),
			CurrentTime:   now,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, // checked on the leaf by checkLeaf
		})
		if err != nil || len(chains) == 0 || len(chains[0]) == 0 {
			continue
		}
		e.id, e.td, e.kind = cn, td, gateway.KindService
		e.root, e.notBefore, e.notAfter = window(chains[0])
		return e, nil
	}
	if fault != nil {
		// It might have verified against the bundle that cannot be read: fail closed.
		return nil, fault
	}
	return nil, identity.NotProven("certificate without a SPIFFE ID does not verify against any configured trust bundle")
}

// bundleFor returns td's bundle: NotProven when td is not configured, any
// other error when it is but its bundle cannot be used.
func (a *Authenticator) bundleFor(td spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	if a.allowed != nil {
		if _, ok := a.allowed[td]; !ok {
			return nil, identity.NotProven("trust domain %q is not configured", td.Name())
		}
	}
	if a.src == nil {
		return nil, errors.New("mtls: no trust bundle source")
	}
	b, err := a.src.GetX509BundleForTrustDomain(td)
	switch {
	case err != nil && errors.Is(err, ErrBundleUnavailable):
		return nil, fmt.Errorf("mtls: trust domain %q: %w", td.Name(), err)
	case err != nil:
		return nil, identity.NotProven("trust domain %q is not configured: %v", td.Name(), err)
	case b == nil:
		return nil, fmt.Errorf("mtls: trust domain %q: %w: source returned no bundle", td.Name(), ErrBundleUnavailable)
	}
	return b, nil
}

// kindFor maps a SPIFFE ID path to a principal kind: the first rule whose
// path prefix matches, by whole path segments ("/agent" matches "/agent" and
// "/agent/x", not "/agents"); default service.
func (a *Authenticator) kindFor(path string) string {
	for _, r := range a.kinds {
		if r.Kind != "" && pathHasPrefix(path, r.PathPrefix) {
			return r.Kind
		}
	}
	return gateway.KindService
}

func pathHasPrefix(path, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return strings.HasSuffix(prefix, "/") || len(path) == len(prefix) || path[len(prefix)] == '/'
}

// spiffeIDOf returns the leaf's SPIFFE ID. hasID is false when no URI SAN
// has the spiffe scheme. A leaf with a SPIFFE URI SAN must be a well-formed
// X.509-SVID: exactly one URI SAN, a valid SPIFFE ID with a path.
func spiffeIDOf(leaf *x509.Certificate) (id spiffeid.ID, hasID bool, err error) {
	n := 0
	for _, u := range leaf.URIs {
		if u != nil && strings.EqualFold(u.Scheme, "spiffe") {
			n++
		}
	}
	switch {
	case n == 0:
		return spiffeid.ID{}, false, nil
	case len(leaf.URIs) != 1:
		return spiffeid.ID{}, true, fmt.Errorf("certificate has a SPIFFE ID among %d URI SANs; an X.509-SVID has exactly one", len(leaf.URIs))
	}
	id, err = x509svid.IDFromCert(leaf)
	if err != nil {
		return spiffeid.ID{}, true, fmt.Errorf("certificate has a malformed SPIFFE ID: %w", err)
	}
	if id.Path() == "" {
		// X.509-SVID §3.1, §5.2: a leaf's SPIFFE ID has a non-root path;
		// the bare trust domain ID names the trust domain, not a workload.
		return spiffeid.ID{}, true, fmt.Errorf("certificate's SPIFFE ID %s has no path: it names a trust domain, not a workload", id)
	}
	return id, true, nil
}

// checkLeaf refuses leaves that may not authenticate a client: CAs
// (the X.509-SVID specification: a leaf sets neither cA nor keyCertSign nor
// cRLSign) and
// certificates whose extended key usage excludes client authentication.
func checkLeaf(leaf *x509.Certificate) error {
	switch {
	case leaf.IsCA:
		return errors.New("leaf certificate is a CA")
	case leaf.KeyUsage&x509.KeyUsageCertSign != 0:
		return errors.New("leaf certificate may sign certificates")
	case leaf.KeyUsage&x509.KeyUsageCRLSign != 0:
		return errors.New("leaf certificate may sign CRLs")
	}
	if len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0 {
		return nil // no extended key usage: unrestricted (RFC 5280 §4.2.1.12)
	}
	for _, u := range leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return nil
		}
	}
	return errors.New("leaf certificate's extended key usage excludes client authentication")
}

// window returns the root of a verified chain (leaf first, not empty) and
// the period in which every certificate of the chain is valid.
func window(chain []*x509.Certificate) (root *x509.Certificate, notBefore, notAfter time.Time) {
	for i, c := range chain {
		if i == 0 || c.NotBefore.After(notBefore) {
			notBefore = c.NotBefore
		}
		if i == 0 || c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	return chain[len(chain)-1], notBefore, notAfter
}

func certPool(certs []*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

var (
	_ identity.Authenticator     = (*Authenticator)(nil)
	_ identity.PeerAuthenticator = (*Authenticator)(nil)
	_ identity.Revalidator       = (*Authenticator)(nil)
)
