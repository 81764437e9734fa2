// Package oidc proves principals from OpenID Connect / JWT bearer tokens: an
// Authenticator returns a principal only for a token whose signature verifies
// under a key published by a configured issuer, with an allowed asymmetric
// algorithm that fits the key's type, and whose iss, aud, exp, nbf and iat
// claims hold within the issuer's clock skew; everything else is refused as
// not proven (401), and an issuer whose keys cannot be fetched authenticates
// nobody (503) until they can.
//
// Tokens are parsed and verified with go-jose (never by hand). "none" and
// HMAC algorithms are refused at configuration time, so a public key can
// never be used as an HMAC secret. Keys come from a JWKS file, a JWKS URL or
// OIDC discovery (<issuer>/.well-known/openid-configuration, whose issuer
// must equal the configured one), fetched over HTTPS only (plain HTTP only to
// loopback), with bounded sizes and timeouts. An unknown key id triggers at
// most one refetch per min_refresh_interval per issuer, shared by concurrent
// requests (if that refetch fails, the token is answered with a 503 rather
// than refused); keys are also refetched hourly so that a key withdrawn by
// the issuer stops verifying.
//
// If an issuer's keys cannot be fetched when New runs, New still succeeds:
// tokens of that issuer fail closed with an error wrapping
// ErrKeysUnavailable (not identity.ErrNotProven, so a 503) while the keys
// are fetched again in the background with exponential backoff.
//
// Verified tokens are remembered (by SHA-256 of the token, bounded in number)
// so that a client reusing its token does not pay for the signature check on
// every request; the time-dependent claims are still checked on every use,
// and a cached token stops authenticating as soon as its key leaves the
// issuer's key set.
package oidc
