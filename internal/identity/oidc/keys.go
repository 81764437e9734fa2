package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
)

// Fetch bounds.
const (
	maxResponseBytes = 1 << 20 // discovery documents and JWKS
	fetchTimeout     = 10 * time.Second
	maxRedirects     = 5
	minRSABits       = 2048
)

// permanentError marks a fetch failure that retrying will not fix (the
// issuer's discovery document names another issuer, an insecure jwks_uri):
// New fails on it instead of retrying in the background.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// source is where a provider's keys come from: a file, a JWKS URL, or OIDC
// discovery from the issuer.
type source struct {
	issuer  string
	file    string
	jwksURL string
	client  *http.Client
}

func newSource(pc config.OIDCProvider, base *http.Client) (*source, error) {
	s := &source{issuer: pc.Issuer, file: pc.JWKSFile, jwksURL: pc.JWKSURL}
	switch {
	case s.file != "" && s.jwksURL != "":
		return nil, errors.New("jwks_file and jwks_url are exclusive")
	case s.file != "":
		return s, nil
	case s.jwksURL != "":
		if err := checkFetchURL(s.jwksURL); err != nil {
			return nil, fmt.Errorf("jwks_url: %w", err)
		}
	default:
		if err := checkFetchURL(s.issuer); err != nil {
			return nil, fmt.Errorf("issuer (used for discovery, no jwks_url or jwks_file set): %w", err)
		}
	}
	c, err := newClient(base, pc.CAFile)
	if err != nil {
		return nil, err
	}
	s.client = c
	return s, nil
}

// newClient returns a copy of base (or a default client) with a timeout,
// redirects restricted to secure URLs, and caFile's roots when set.
func newClient(base *http.Client, caFile string) (*http.Client, error) {
	var c http.Client
	if base != nil {
		c = *base
	}
	if c.Timeout == 0 {
		c.Timeout = fetchTimeout
	}
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("ca_file %s: no PEM certificates", caFile)
		}
		var tr *http.Transport
		switch t := c.Transport.(type) {
		case nil:
			tr = http.DefaultTransport.(*http.Transport).Clone()
		case *http.Transport:
			tr = t.Clone()
		default:
			return nil, fmt.Errorf("ca_file: the HTTP client's transport is a %T, not an *http.Transport", t)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
		tr.TLSClientConfig.MinVersion = max(tr.TLSClientConfig.MinVersion, tls.VersionTLS12)
		c.Transport = tr
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxRedirects {
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		}
		if err := checkFetchURL(req.URL.String()); err != nil {
			return fmt.Errorf("redirect: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c, nil
}

// checkFetchURL accepts https URLs, and plain http only to loopback.
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %w", err)
	}
	if u.Host == "" {
		return fmt.Errorf("%s: not an absolute URL", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
			return nil
		}
	}
	return fmt.Errorf("%s: must be https (plain http only to localhost)", u.Redacted())
}

// fetch reads and parses the key set.
func (s *source) fetch(ctx context.Context, log *slog.Logger) (*keySet, error) {
	var body []byte
	var err error
	switch {
	case s.file != "":
		body, err = readFileLimited(s.file)
	case s.jwksURL != "":
		body, err = s.get(ctx, s.jwksURL)
	default:
		var u string
		if u, err = s.discover(ctx); err != nil {
			return nil, err
		}
		body, err = s.get(ctx, u)
	}
	if err != nil {
		return nil, err
	}
	return parseKeySet(body, log)
}

// discover reads the issuer's OpenID Provider metadata (OpenID Connect
// Discovery 1.0 §4) and returns its jwks_uri. The document's issuer must be
// the configured one exactly (§4.3).
func (s *source) discover(ctx context.Context) (string, error) {
	u := strings.TrimSuffix(s.issuer, "/") + "/.well-known/openid-configuration"
	body, err := s.get(ctx, u)
	if err != nil {
		return "", err
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery document %s: %w", u, err)
	}
	if doc.Issuer != s.issuer {
		return "", &permanentError{fmt.Errorf("discovery document %s names issuer %q, not the configured %q",
			u, clip(doc.Issuer), s.issuer)}
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery document %s has no jwks_uri", u)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", &permanentError{fmt.Errorf("discovery document %s: jwks_uri %w", u, err)}
	}
	return doc.JWKSURI, nil
}

// get fetches u, requiring 200 and at most maxResponseBytes.
func (s *source) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err) // *url.Error names the URL, password stripped
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %s", req.URL.Redacted(), resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", req.URL.Redacted(), err)
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", req.URL.Redacted(), maxResponseBytes)
	}
	return b, nil
}

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("jwks_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks_file %s: %w", path, err)
	}
	if len(b) > maxResponseBytes {
		return nil, fmt.Errorf("jwks_file %s: larger than %d bytes", path, maxResponseBytes)
	}
	return b, nil
}

// keySet is an immutable snapshot of an issuer's verification keys.
type keySet struct {
	byKid map[string][]*verifyKey // "" holds keys without a kid
	n     int
}

// verifyKey is one public verification key.
type verifyKey struct {
	kid string
	alg string // the JWK's declared alg, "" if none
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	fp  [32]byte
}

// fits reports whether k may verify a signature made with alg: the key type
// (and curve) must be the one alg is defined for (RFC 7518 §3), and a JWK
// that declares an alg is used only with it (RFC 7517 §4.4).
func (k *verifyKey) fits(alg jose.SignatureAlgorithm) bool {
	if k.alg != "" && k.alg != string(alg) {
		return false
	}
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		_, ok := k.key.(*rsa.PublicKey)
		return ok
	case jose.ES256:
		return isCurve(k.key, elliptic.P256())
	case jose.ES384:
		return isCurve(k.key, elliptic.P384())
	case jose.ES512:
		return isCurve(k.key, elliptic.P521())
	case jose.EdDSA:
		_, ok := k.key.(ed25519.PublicKey)
		return ok
	default:
		return false
	}
}

func isCurve(key any, c elliptic.Curve) bool {
	ec, ok := key.(*ecdsa.PublicKey)
	return ok && ec.Curve == c
}

// has reports whether the set still holds the key kid with thumbprint fp.
func (ks *keySet) has(kid string, fp [32]byte) bool {
	for _, k := range ks.byKid[kid] {
		if k.fp == fp {
			return true
		}
	}
	return false
}

// parseKeySet reads a JWKS (RFC 7517 §5), keeping the public signature keys
// it can use and skipping (with a log line) the others, so that one odd key
// does not take down an issuer.
func parseKeySet(body []byte, log *slog.Logger) (*keySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	ks := &keySet{byKid: make(map[string][]*verifyKey)}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			log.Warn("oidc: skipping unreadable JWKS key", "index", i, "err", err)
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			log.Warn("oidc: the JWKS publishes a private key; using its public half only", "kid", k.KeyID)
			k = k.Public()
		}
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < minRSABits {
				log.Warn("oidc: skipping short RSA key", "kid", k.KeyID, "bits", pub.N.BitLen())
				continue
			}
		case *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			log.Warn("oidc: skipping key of unsupported type", "kid", k.KeyID, "type", fmt.Sprintf("%T", k.Key))
			continue
		}
		if k.Algorithm != "" {
			if _, err := allowedAlgorithm(k.Algorithm); err != nil {
				log.Warn("oidc: skipping key with an unusable alg", "kid", k.KeyID, "alg", k.Algorithm)
				continue
			}
		}
		fp, err := k.Thumbprint(crypto.SHA256)
		if err != nil || len(fp) != 32 {
			log.Warn("oidc: skipping key without a thumbprint", "kid", k.KeyID, "err", err)
			continue
		}
		ks.byKid[k.KeyID] = append(ks.byKid[k.KeyID], &verifyKey{kid: k.KeyID, alg: k.Algorithm, key: k.Key, fp: [32]byte(fp)})
		ks.n++
	}
	if ks.n == 0 {
		return nil, fmt.Errorf("JWKS: no usable signature keys among %d", len(raw.Keys))
	}
	return ks, nil
}
