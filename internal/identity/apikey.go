// API keys for service accounts and agents.
//
// A key is wk_<id>_<secret>, always exactly 71 bytes, where:
//
//   - "wk_" is a fixed prefix, so keys are recognisable by secret scanners
//     and in logs ("warden key").
//   - <id> is 12 bytes from crypto/rand as 24 lowercase hex digits. The id is
//     not secret: it names the key in the store, in `warden keys list`, in
//     logs and in the audit record (Principal.CredentialID). Hex was chosen
//     over base32 because every digit carries full information, there is a
//     single canonical spelling, and it contains no '_'.
//   - <secret> is 32 bytes (256 bits) from crypto/rand, base64url without
//     padding (RFC 4648 §5): 43 characters of [A-Za-z0-9_-]. Only the
//     canonical encoding is accepted (the two unused low bits of the last
//     character must be zero), so one secret has exactly one spelling.
//
// Because the secret alphabet contains '_', ParseAPIKey splits by position,
// never by separator. Only hex(SHA-256(secret)) is stored, where secret is the
// 43-character base64url text; see hashSecret for why a fast hash is right.

package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// Key format constants.
const (
	KeyPrefix    = "wk_"
	keyIDBytes   = 12
	KeyIDLen     = 2 * keyIDBytes // 24 lowercase hex digits
	keySecretLen = 32
	// KeySecretLen is the length of the base64url (no padding) secret text.
	KeySecretLen = (keySecretLen*8 + 5) / 6 // 43
	// KeyLen is the length of a whole key: prefix, id, '_', secret.
	KeyLen = len(KeyPrefix) + KeyIDLen + 1 + KeySecretLen // 71
)

// Sentinel errors. Authenticate wraps exactly one of them (plus the key id
// when it could be parsed); callers match with errors.Is. The public answer
// for all credential failures is the same, so these are for logs and audit.
var (
	ErrMalformedKey     = errors.New("malformed API key")
	ErrUnknownKey       = errors.New("unknown API key id")
	ErrWrongSecret      = errors.New("wrong API key secret")
	ErrRevokedKey       = errors.New("revoked API key")
	ErrExpiredKey       = errors.New("expired API key")
	ErrStoreUnavailable = errors.New("API key store unavailable")
	// ErrInvalidArgument marks bad input to Create (subject, kind, scopes,
	// ttl), Rotate (overlap) and Prune (age).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrAlreadyRotated is Rotate's refusal to rotate a key a second time;
	// rotate its successor instead. Authenticate never returns it.
	ErrAlreadyRotated = errors.New("API key already rotated")
)

// b64urlIndex maps a byte to its base64url value, or -1 if it is not in the
// alphabet.
var b64urlIndex = func() (t [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// ParseAPIKey splits a presented key into its id and secret. It accepts only
// the exact format described in the package documentation: the exact prefix,
// exact lengths, lowercase hex id, canonical base64url secret. It never
// panics and does no work proportional to the input beyond a length check.
// The returned strings are substrings of s.
func ParseAPIKey(s string) (id, secret string, err error) {
	if len(s) != KeyLen {
		return "", "", fmt.Errorf("%w: length %d, want %d", ErrMalformedKey, len(s), KeyLen)
	}
	if s[:len(KeyPrefix)] != KeyPrefix {
		return "", "", fmt.Errorf("%w: missing %q prefix", ErrMalformedKey, KeyPrefix)
	}
	id = s[len(KeyPrefix) : len(KeyPrefix)+KeyIDLen]
	if s[len(KeyPrefix)+KeyIDLen] != '_' {
		return "", "", fmt.Errorf("%w: missing separator after id", ErrMalformedKey)
	}
	secret = s[len(KeyPrefix)+KeyIDLen+1:]
	if !ValidKeyID(id) {
		return "", "", fmt.Errorf("%w: id is not %d lowercase hex digits", ErrMalformedKey, KeyIDLen)
	}
	if !validSecret(secret) {
		return "", "", fmt.Errorf("%w: secret is not canonical base64url", ErrMalformedKey)
	}
	return id, secret, nil
}

// ValidKeyID reports whether id is a well-formed key id (24 lowercase hex digits).
func ValidKeyID(id string) bool {
	if len(id) != KeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// validSecret reports whether s is the canonical unpadded base64url encoding
// of exactly 32 bytes. It is equivalent to
// base64.RawURLEncoding.Strict().DecodeString succeeding with 32 bytes, but
// does not allocate.
func validSecret(s string) bool {
	if len(s) != KeySecretLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if b64urlIndex[s[i]] < 0 {
			return false
		}
	}
	// 43 characters carry 258 bits; the last character's 2 low bits are padding
	// and must be zero in the canonical encoding.
	return b64urlIndex[s[len(s)-1]]&3 == 0
}

// newKey returns a fresh random id and secret.
func newKey() (id, secret string, err error) {
	var buf [keyIDBytes + keySecretLen]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", "", fmt.Errorf("identity: random: %w", err)
	}
	id = hex.EncodeToString(buf[:keyIDBytes])
	secret = base64.RawURLEncoding.EncodeToString(buf[keyIDBytes:])
	clear(buf[:])
	return id, secret, nil
}

// formatKey joins an id and a secret into a key.
func formatKey(id, secret string) string { return KeyPrefix + id + "_" + secret }

// hashSecret returns SHA-256 of the secret text.
//
// A plain, fast hash is the right tool here, and bcrypt/scrypt/argon2 would
// only cost CPU on every request: slow, salted password hashes exist to make
// guessing low-entropy human passwords expensive after the hash file leaks.
// These secrets are 256 bits from crypto/rand, so there is nothing to guess —
// a brute-force search of 2^256 candidates is infeasible at any hash speed,
// and a salt adds nothing because no two secrets collide and no precomputed
// table can cover the space. What remains is preimage resistance, which
// SHA-256 provides. Lookup is by the non-secret id and the comparison of
// hashes is constant-time, so timing reveals nothing about the secret either.
func hashSecret(secret string) [sha256.Size]byte {
	if len(secret) == KeySecretLen {
		var buf [KeySecretLen]byte // on the stack: no allocation per request
		copy(buf[:], secret)
		return sha256.Sum256(buf[:])
	}
	return sha256.Sum256([]byte(secret))
}
