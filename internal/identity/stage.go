package identity

import (
	"errors"
	"net/http"

	"strings"
	"time"
)

// NewAPIKeyStage returns an identify stage that accepts only warden API keys,
// read from "Authorization: Bearer <key>" (RFC 6750 §2.1) or, only when there
// is no Authorization header, from "X-Api-Key: <key>". now is the clock
// (time.Now if nil).
func NewAPIKeyStage(ks *KeyStore, now func() time.Time) *Stage {
	return NewStage(nil, []Authenticator{NewAPIKeyAuthenticator(ks)}, now)
}

// Public answers. One message for every key failure, so that a caller cannot
// tell an unknown id from a wrong secret, a revoked key or an expired one.
const (
	msgInvalidKey   = "invalid or expired API key"
	msgInvalidToken = "invalid or expired credentials"
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
