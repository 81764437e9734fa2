package identity

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// APIKeyStage is the identify stage for warden API keys. It reads the key
// from "Authorization: Bearer <key>" (RFC 6750 §2.1) or, only when there is
// no Authorization header, from "X-Api-Key: <key>", authenticates it against
// a KeyStore and sets ex.Principal. It never calls next without a principal.
type APIKeyStage struct {
	ks  *KeyStore
	now func() time.Time
}

// NewAPIKeyStage returns a stage authenticating against ks; now is the clock
// (time.Now if nil).
func NewAPIKeyStage(ks *KeyStore, now func() time.Time) *APIKeyStage {
	if now == nil {
		now = time.Now
	}
	return &APIKeyStage{ks: ks, now: now}
}

// Public answers. One message for every key failure, so that a caller cannot
// tell an unknown id from a wrong secret, a revoked key or an expired one.
const (
	msgInvalidKey   = "invalid or expired API key"
	msgMissing      = "missing API key: send Authorization: Bearer <key>"
	msgMalformed    = "malformed credentials: send one Authorization: Bearer <key> header"
	msgUnavailable  = "identity service unavailable; retry later"
	bearerChallenge = `Bearer realm="warden"`
)

// Header-extraction failures. They describe the shape of the headers only,
// never their content.
var (
	errNoCredentials        = errors.New("no Authorization or X-Api-Key header")
	errMultipleAuthz        = errors.New("more than one Authorization header")
	errMultipleAPIKey       = errors.New("more than one X-Api-Key header")
	errConflictingHeaders   = errors.New("the Authorization and X-Api-Key headers carry different keys")
	errUnsupportedScheme    = errors.New("the Authorization scheme is not Bearer")
	errMalformedCredentials = errors.New("malformed Bearer credentials")
)

// Handle authenticates the exchange or ends it with 401 (no or bad
// credentials) or 503 (key store unavailable: fail closed).
func (s *APIKeyStage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex == nil || ex.Request == nil || s.ks == nil {
		return errors.New("identity: api key stage: exchange without request or stage without store")
	}
	key, err := extractKey(ex.Request.Header)
	switch {
	case errors.Is(err, errNoCredentials):
		// RFC 6750 §3.1: a request without credentials gets a bare challenge.
		s.challenge(ex, bearerChallenge)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "missing_credentials",
			err, msgMissing)
	case err != nil:
		s.challenge(ex, bearerChallenge+`, error="invalid_request"`)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_credentials",
			err, msgMalformed)
	}

	now := s.now()
	p, err := s.ks.Authenticate(key, now)
	switch {
	case err == nil:
	case errors.Is(err, ErrStoreUnavailable):
		if ex.Writer != nil {
			ex.Writer.Header().Set("Retry-After", "1")
		}
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "identity_unavailable",
			err, msgUnavailable)
	case errors.Is(err, ErrMalformedKey), errors.Is(err, ErrUnknownKey), errors.Is(err, ErrWrongSecret),
		errors.Is(err, ErrRevokedKey), errors.Is(err, ErrExpiredKey):
		// err names the reason and the key id, never the secret (see Authenticate).
		s.challenge(ex, bearerChallenge+`, error="invalid_token"`)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_api_key",
			err, msgInvalidKey)
	default:
		return gateway.AsError(err) // unexpected: 500, fail closed
	}
	ex.Principal = &p
	return next(ex)
}

// challenge sets WWW-Authenticate, which RFC 9110 §11.6.1 requires on a 401.
func (s *APIKeyStage) challenge(ex *gateway.Exchange, value string) {
	if ex.Writer != nil {
		ex.Writer.Header().Set("WWW-Authenticate", value)
	}
}

// extractKey returns the presented key. It prefers Authorization (scheme
// matched case-insensitively, RFC 9110 §11.1) and reads X-Api-Key only when
// Authorization is absent; if both are present they must carry the same key.
// More than one of either header is refused: a proxy in front of warden and
// warden could otherwise disagree on which one counts. The key itself is not
// validated here; Authenticate does that.
func extractKey(h http.Header) (string, error) {
	authz := h.Values("Authorization")
	apiKey := h.Values("X-Api-Key")
	if len(authz) > 1 {
		return "", errMultipleAuthz
	}
	if len(apiKey) > 1 {
		return "", errMultipleAPIKey
	}
	if len(authz) == 0 {
		if len(apiKey) == 0 {
			return "", errNoCredentials
		}
		if !validToken(apiKey[0]) {
			return "", errMalformedCredentials
		}
		return apiKey[0], nil
	}
	key, err := parseBearer(authz[0])
	if err != nil {
		return "", err
	}
	if len(apiKey) == 1 && apiKey[0] != key {
		return "", errConflictingHeaders
	}
	return key, nil
}

// parseBearer parses `Bearer 1*SP token` (RFC 6750 §2.1). Leading and
// trailing whitespace has already been trimmed by the HTTP server.
func parseBearer(v string) (string, error) {
	const scheme = "Bearer"
	if len(v) < len(scheme) || !strings.EqualFold(v[:len(scheme)], scheme) {
		return "", errUnsupportedScheme
	}
	rest := v[len(scheme):]
	if rest == "" || rest[0] != ' ' {
		if rest == "" {
			return "", errMalformedCredentials
		}
		return "", errUnsupportedScheme // e.g. "Bearerx ..."
	}
	token := strings.TrimLeft(rest, " ")
	if !validToken(token) {
		return "", errMalformedCredentials
	}
	return token, nil
}

// validToken reports whether a credential is non-empty and free of
// whitespace. Its exact format is checked by ParseAPIKey.
func validToken(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \t\r\n")
}

var _ gateway.Stage = (*APIKeyStage)(nil)
