// Package token issues and verifies warden's own short-lived access tokens:
// ES256-signed JWTs (RFC 9068 "at+jwt") that prove a principal only while
// their signature verifies with a key in warden's key set, they are within
// their lifetime and neither they nor their subject are revoked.
//
// A token names its subject (sub) and, when an agent acts for a user, the
// agent as the actor (act, RFC 8693 §4.1). Tokens are obtained from the
// RFC 8693 token exchange endpoint (Exchanger), narrowed in scope; signing
// keys rotate on a schedule (KeySet) and are published as a JWK set.
package token

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

// Defaults for config.Tokens and the identity file paths.
const (
	DefaultIssuer          = "warden"
	DefaultKeysFile        = "token-keys.json"
	DefaultRevocationsFile = "revocations.json"
	DefaultTTL             = 5 * time.Minute
	DefaultMaxTTL          = time.Hour
	DefaultRotateEvery     = 24 * time.Hour
)

// Token format.
const (
	// Type is the JOSE "typ" header of warden tokens (RFC 9068 §2.1).
	Type = "at+jwt"
	// Algorithm is the only signature algorithm warden signs and accepts.
	Algorithm = "ES256"
	// ClockSkew is tolerated on exp, nbf and iat.
	ClockSkew = 5 * time.Second
	// MaxTokenBytes bounds a token: larger ones are refused before parsing
	// and never issued.
	MaxTokenBytes = 8192

	maxScopes   = 64
	maxScopeLen = 128
	maxAttrs    = 64 // groups, roles, audiences
	maxAttrLen  = 256
)

// Errors.
var (
	// ErrKeysUnavailable wraps failures of the key set (unreadable or
	// corrupt file): verification and issuing fail closed.
	ErrKeysUnavailable = errors.New("token signing keys unavailable")
	// ErrNoSigningKey means the key set has no active key (see EnsureCurrent).
	ErrNoSigningKey = errors.New("no active token signing key")
	// ErrInvalidClaims wraps claims that cannot be issued.
	ErrInvalidClaims = errors.New("invalid token claims")
)

// WithDefaults returns cfg with zero fields set to their defaults: issuer
// "warden", keys "token-keys.json" (relative: the caller resolves it), ttl
// 5m, max_ttl 1h, rotate_every 24h. A ttl above max_ttl is lowered to it.
func WithDefaults(cfg config.Tokens) config.Tokens {
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.KeysPath == "" {
		cfg.KeysPath = DefaultKeysFile
	}
	if cfg.TTL <= 0 {
		cfg.TTL = config.Duration(DefaultTTL)
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = config.Duration(DefaultMaxTTL)
	}
	if cfg.TTL > cfg.MaxTTL {
		cfg.TTL = cfg.MaxTTL
	}
	if cfg.RotateEvery <= 0 {
		cfg.RotateEvery = config.Duration(DefaultRotateEvery)
	}
	return cfg
}

// validID checks a subject or actor id: 1–256 bytes of UTF-8 without spaces
// or control characters (the rule of the revocation list, so every id that
// can be issued can be revoked).
func validID(s string) error { return revoke.ValidValue(s) }

// ValidScope reports whether s is a scope token as RFC 6749 §3.3 defines it
// (1*( %x21 / %x23-5B / %x5D-7E )), at most 128 bytes.
func ValidScope(s string) bool {
	if s == "" || len(s) > maxScopeLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// validAttrs checks groups, roles or audiences: at most 64 values of 1–256
// bytes of UTF-8 text without control characters.
func validAttrs(name string, vals []string) error {
	if len(vals) > maxAttrs {
		return fmt.Errorf("%s: more than %d", name, maxAttrs)
	}
	for i, v := range vals {
		switch {
		case v == "":
			return fmt.Errorf("%s[%d]: empty", name, i)
		case len(v) > maxAttrLen:
			return fmt.Errorf("%s[%d]: longer than %d bytes", name, i, maxAttrLen)
		case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
			return fmt.Errorf("%s[%d]: must be UTF-8 text without control characters", name, i)
		}
	}
	return nil
}
