package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// Credentials are what a client presented, extracted once per request.
type Credentials struct {
	// Bearer is the token from "Authorization: Bearer" or "X-Api-Key", "" if none.
	Bearer string
	// PeerCerts is the TLS client certificate chain as presented, leaf first,
	// NOT verified by the TLS layer: the mTLS authenticator verifies it, so
	// that a bad certificate gets a 401 and an audit record.
	PeerCerts []*x509.Certificate
	// Header is the request's header, for authenticators that need more
	// (e.g. a step-up code). Read only.
	Header http.Header
}

// BearerKind is the shape of a bearer token, decided without verifying it.
type BearerKind int

// Bearer token shapes.
const (
	BearerUnknown BearerKind = iota
	BearerAPIKey             // wk_<id>_<secret>
	BearerJWT                // three base64url segments: an OIDC JWT or a warden token
)

// KindOf classifies a bearer token by shape only.
func KindOf(token string) BearerKind {
	switch {
	case strings.HasPrefix(token, KeyPrefix):
		return BearerAPIKey
	case strings.Count(token, ".") == 2:
		return BearerJWT
	default:
		return BearerUnknown
	}
}

// CompactJWS reports whether token is a JWS in compact serialization
// (RFC 7515 §7.1): three segments of unpadded base64url characters joined by
// dots, the last (the signature) possibly empty. Verifiers refuse anything
// else before parsing, so that a token with whitespace, padding or other
// characters a lenient base64 decoder would skip is never accepted.
func CompactJWS(token string) bool {
	dots := 0
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case c == '.':
			dots++
			if dots > 2 || i == 0 || token[i-1] == '.' && dots == 2 {
				return false // no empty header or payload
			}
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return dots == 2
}

// ErrNotProven is wrapped by every error that means "a credential was
// presented but does not prove anyone" (401). Any other error from an
// Authenticator means "broken" and fails closed (503).
var ErrNotProven = errors.New("credential not proven")

// NotProven wraps a reason as an ErrNotProven error.
func NotProven(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotProven, fmt.Sprintf(format, args...))
}

// An Authenticator proves a principal from one kind of credential.
//
// Handles reports whether c carries this authenticator's kind of credential
// (by shape, e.g. a JWT whose unverified iss is one of its issuers). The
// identity stage asks every authenticator in order and uses the first that
// handles the credential; a credential nobody handles is refused.
//
// Authenticate proves it: an error wrapping ErrNotProven is a 401, with a
// reason for the audit log that never contains the credential itself; any
// other error is a fault (503, fail closed).
type Authenticator interface {
	Name() string
	Handles(c *Credentials) bool
	Authenticate(ctx context.Context, c *Credentials, now time.Time) (gateway.Principal, error)
}

// A Revalidator re-checks an authenticated principal during a long-lived
// exchange: nil while its credential is still good; an error once it was
// revoked or has expired.
type Revalidator interface {
	Revalidate(p *gateway.Principal, now time.Time) error
}

// PeerAuthenticator proves a principal from the TLS client certificate.
type PeerAuthenticator interface {
	Authenticator
}

// Stage is the identify stage: it extracts the credentials once, proves them
// with the configured authenticators and sets ex.Principal, or ends the
// exchange with 401 (not proven) or 503 (identity broken: fail closed).
//
// When a client presents both a certificate and a bearer token, both must
// verify; the bearer names the principal and the certificate's identity is
// recorded as Principal.Workload.
type Stage struct {
	bearer []Authenticator
	peer   Authenticator // nil: client certificates are ignored
	now    func() time.Time
}

// NewStage returns an identify stage. peer may be nil.
func NewStage(peer Authenticator, bearer []Authenticator, now func() time.Time) *Stage {
	if now == nil {
		now = time.Now
	}
	return &Stage{bearer: bearer, peer: peer, now: now}
}

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex == nil || ex.Request == nil {
		return errors.New("identity: stage: exchange without request")
	}
	r := ex.Request
	creds := &Credentials{Header: r.Header}
	if r.TLS != nil {
		creds.PeerCerts = r.TLS.PeerCertificates
	}
	token, err := extractKey(r.Header)
	switch {
	case errors.Is(err, errNoCredentials):
	case err != nil:
		s.challenge(ex, bearerChallenge+`, error="invalid_request"`)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_credentials",
			err, msgMalformed)
	default:
		creds.Bearer = token
	}
	now := s.now()
	ctx := r.Context()

	var peerP *gateway.Principal
	var peerAuth Authenticator
	if len(creds.PeerCerts) > 0 && s.peer != nil {
		p, err := s.peer.Authenticate(ctx, creds, now)
		if err != nil {
			return s.fail(ex, err, "invalid_client_certificate", "the client certificate was not accepted")
		}
		peerP, peerAuth = &p, s.peer
	}

	var p gateway.Principal
	var auth Authenticator
	switch {
	case creds.Bearer != "":
		for _, a := range s.bearer {
			if a.Handles(creds) {
				auth = a
				break
			}
		}
		if auth == nil {
			s.challenge(ex, bearerChallenge+`, error="invalid_token"`)
			return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_token",
				NotProven("no authenticator accepts this kind of bearer token"), msgInvalidToken)
		}
		p, err = auth.Authenticate(ctx, creds, now)
		if err != nil {
			code, msg := "invalid_token", msgInvalidToken
			if KindOf(creds.Bearer) == BearerAPIKey {
				code, msg = "invalid_api_key", msgInvalidKey
			}
			return s.fail(ex, err, code, msg)
		}
		if peerP != nil {
			p.Workload = peerP.ID
		}
	case peerP != nil:
		p, auth = *peerP, peerAuth
		peerAuth = nil
	default:
		// RFC 6750 §3.1: a request without credentials gets a bare challenge.
		s.challenge(ex, bearerChallenge)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "missing_credentials",
			errNoCredentials, msgMissing)
	}
	ex.Principal = &p
	ex.Revalidate = revalidator(&p, auth, peerP, peerAuth)
	return next(ex)
}

// AuthenticateBearer proves a bearer token with the stage's bearer
// authenticators, exactly as a request carrying it would be proven. Token
// exchange uses it to verify an RFC 8693 subject_token.
func (s *Stage) AuthenticateBearer(ctx context.Context, token string, now time.Time) (gateway.Principal, error) {
	c := &Credentials{Bearer: token}
	for _, a := range s.bearer {
		if a.Handles(c) {
			return a.Authenticate(ctx, c, now)
		}
	}
	return gateway.Principal{}, NotProven("no authenticator accepts this kind of bearer token")
}

// revalidator combines the re-checks of every credential that was used.
func revalidator(p *gateway.Principal, auth Authenticator, peerP *gateway.Principal, peerAuth Authenticator) func(time.Time) error {
	var checks []func(time.Time) error
	if rv, ok := auth.(Revalidator); ok {
		checks = append(checks, func(now time.Time) error { return rv.Revalidate(p, now) })
	} else if !p.ExpiresAt.IsZero() {
		exp := p.ExpiresAt
		checks = append(checks, func(now time.Time) error {
			if !now.Before(exp) {
				return NotProven("credential expired at %s", exp.UTC().Format(time.RFC3339))
			}
			return nil
		})
	}
	if peerP != nil && peerAuth != nil {
		if rv, ok := peerAuth.(Revalidator); ok {
			checks = append(checks, func(now time.Time) error { return rv.Revalidate(peerP, now) })
		}
	}
	if len(checks) == 0 {
		return nil
	}
	return func(now time.Time) error {
		for _, c := range checks {
			if err := c(now); err != nil {
				return err
			}
		}
		return nil
	}
}

// fail maps an authenticator error to 401 (not proven) or 503 (broken).
func (s *Stage) fail(ex *gateway.Exchange, err error, code, msg string) error {
	if errors.Is(err, ErrNotProven) {
		s.challenge(ex, bearerChallenge+`, error="invalid_token"`)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, code, err, "%s", msg)
	}
	if ex.Writer != nil {
		ex.Writer.Header().Set("Retry-After", "1")
	}
	return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "identity_unavailable", err, msgUnavailable)
}

// challenge sets WWW-Authenticate, which RFC 9110 §11.6.1 requires on a 401.
func (s *Stage) challenge(ex *gateway.Exchange, value string) {
	if ex.Writer != nil {
		ex.Writer.Header().Set("WWW-Authenticate", value)
	}
}

// APIKeyAuthenticator proves principals from warden API keys.
type APIKeyAuthenticator struct {
	ks *KeyStore
}

// NewAPIKeyAuthenticator returns an authenticator over ks.
func NewAPIKeyAuthenticator(ks *KeyStore) *APIKeyAuthenticator { return &APIKeyAuthenticator{ks: ks} }

// Name implements Authenticator.
func (a *APIKeyAuthenticator) Name() string { return "api_key" }

// Handles implements Authenticator: tokens shaped like a warden API key.
func (a *APIKeyAuthenticator) Handles(c *Credentials) bool { return KindOf(c.Bearer) == BearerAPIKey }

// Authenticate implements Authenticator.
func (a *APIKeyAuthenticator) Authenticate(_ context.Context, c *Credentials, now time.Time) (gateway.Principal, error) {
	p, err := a.ks.Authenticate(c.Bearer, now)
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, ErrMalformedKey), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrWrongSecret),
		errors.Is(err, ErrRevokedKey), errors.Is(err, ErrExpiredKey):
		return gateway.Principal{}, fmt.Errorf("%w: %w", ErrNotProven, err)
	default:
		return gateway.Principal{}, err // ErrStoreUnavailable and anything unexpected: fail closed
	}
}

// AuthMethodAPIKey is the auth_method of a principal proven by an API key.
const AuthMethodAPIKey = "api_key"

// CheckParent re-checks a credential another one was derived from (see
// gateway.Principal.Parents): an API key must still exist, unrevoked and
// unexpired. Other auth methods are not tracked by the key store (nil).
func (a *APIKeyAuthenticator) CheckParent(method, id string, now time.Time) error {
	if method != AuthMethodAPIKey {
		return nil
	}
	return a.Revalidate(&gateway.Principal{CredentialID: id}, now)
}

// Revalidate implements Revalidator: the key must still exist, unrevoked and unexpired.
func (a *APIKeyAuthenticator) Revalidate(p *gateway.Principal, now time.Time) error {
	if err := a.ks.Check(p.CredentialID, now); err != nil {
		if errors.Is(err, ErrStoreUnavailable) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrNotProven, err)
	}
	return nil
}

var (
	_ gateway.Stage = (*Stage)(nil)
	_ Authenticator = (*APIKeyAuthenticator)(nil)
	_ Revalidator   = (*APIKeyAuthenticator)(nil)
)
