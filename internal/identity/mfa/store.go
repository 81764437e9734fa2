package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters (RFC 6238 defaults, what authenticator apps expect).
const (
	Digits     = 6
	Period     = 30 * time.Second
	periodSecs = int64(Period / time.Second)
	// Skew is how many time steps before and after the current one are
	// accepted, for clock drift and typing time.
	Skew = 1
	// secretBytes is the size of a generated TOTP secret (160 bits, as RFC
	// 4226 §4 recommends for HMAC-SHA-1).
	secretBytes = 20
)

// KeySize is the size of the encryption key (AES-256).
const KeySize = 32

// Failed-attempt limit per user.
const (
	MaxFailures   = 5
	FailureWindow = 5 * time.Minute
)

// ErrNotProven is wrapped by every error meaning "the second factor was not
// proven" (ErrNotEnrolled, ErrInvalidCode, ErrReplayedCode,
// ErrTooManyAttempts): the caller gets a 4xx, not a fault.
var ErrNotProven = errors.New("second factor not proven")

// Errors of Verify and the store. Test them with errors.Is.
var (
	ErrNotEnrolled     = fmt.Errorf("%w: user is not enrolled", ErrNotProven)
	ErrInvalidCode     = fmt.Errorf("%w: invalid code", ErrNotProven)
	ErrReplayedCode    = fmt.Errorf("%w: replayed code", ErrNotProven)
	ErrTooManyAttempts = fmt.Errorf("%w: too many failed attempts", ErrNotProven)
	// ErrUnavailable means the store cannot be trusted right now (unreadable,
	// corrupt, wrong key, a secret that does not decrypt, a failed write):
	// nothing is proven until it is fixed.
	ErrUnavailable = errors.New("mfa store unavailable")
	// ErrInvalidArgument is wrapped by Enroll and Remove for bad arguments.
	ErrInvalidArgument = errors.New("invalid argument")
)

// Limits on names.
const (
	maxUserLen   = 256
	maxIssuerLen = 64
)

var totpOpts = totp.ValidateOpts{
	Period:    uint(periodSecs),
	Skew:      Skew,
	Digits:    otp.DigitsSix,
	Algorithm: otp.AlgorithmSHA1,
}

// Enrollment is what may be shown about an enrollment: never the secret.
type Enrollment struct {
	User      string
	CreatedAt time.Time
	// Confirmed is true once a code was accepted after enrollment.
	Confirmed bool
	// LastCodeAt is the start of the time step of the last accepted code;
	// zero if none was accepted yet.
	LastCodeAt time.Time
}

// Store holds TOTP enrollments in a JSON file (mode 0600), secrets encrypted
// with AES-256-GCM. It keeps no cache: every operation reads the file, and
// every change is a read-modify-write under the write lock, so enrollments
// made by `warden mfa` take effect at once in a running server and several
// processes can share one file.
type Store struct {
	path  string
	aead  cipher.AEAD
	limit *limiter
	// writeMu queues this process's writers before they contend for the
	// cross-process file lock; it also serialises all verifications, which
	// is what makes a code usable once.
	writeMu sync.Mutex
}

// Open opens the store at path with the 32-byte encryption key. A missing
// file is an empty store (created by the first Enroll). A file that cannot
// be read, is corrupt, or was written with another key is an error wrapping
// ErrUnavailable.
func Open(path string, key []byte) (*Store, error) {
	if path == "" {
		return nil, errors.New("mfa: store: empty path")
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("mfa: store: encryption key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("mfa: store: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mfa: store: %w", err)
	}
	s := &Store{path: filepath.Clean(path), aead: aead, limit: newLimiter(MaxFailures, FailureWindow)}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseKey decodes an encryption key given as 64 hex digits or as base64
// (standard or URL alphabet, padded or not) of exactly 32 bytes. Surrounding
// white space is ignored. Errors never contain the key.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("mfa: encryption key: empty")
	}
	var key []byte
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			key = b
		}
	}
	if key == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
				key = b
				break
			}
		}
	}
	if key == nil {
		return nil, fmt.Errorf("mfa: encryption key: want %d bytes as %d hex digits or base64 (got %d characters that are neither)",
			KeySize, 2*KeySize, len(s))
	}
	if subtle.ConstantTimeCompare(key, make([]byte, KeySize)) == 1 {
		return nil, errors.New("mfa: encryption key: all zero bytes; generate one with 'openssl rand -hex 32'")
	}
	return key, nil
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// usable fails for a Store not made by Open.
func (s *Store) usable() error {
	if s == nil || s.aead == nil || s.limit == nil {
		return fmt.Errorf("mfa: %w: store not opened (use Open)", ErrUnavailable)
	}
	return nil
}

// Enroll makes a new TOTP secret for user and returns it once, as an
// otpauth:// URL (for a QR code) and as base32 text (for typing). issuer is
// the label authenticator apps show. Enrolling an enrolled user replaces the
// secret: the old one stops working. Bad arguments wrap ErrInvalidArgument.
func (s *Store) Enroll(user, issuer string, now time.Time) (otpauthURL, secretBase32 string, err error) {
	if err := s.usable(); err != nil {
		return "", "", err
	}
	if err := validateUser(user); err != nil {
		return "", "", fmt.Errorf("mfa: enroll: %w: %w", ErrInvalidArgument, err)
	}
	if err := validateIssuer(issuer); err != nil {
		return "", "", fmt.Errorf("mfa: enroll %s: %w: %w", user, ErrInvalidArgument, err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: user,
		Period:      uint(periodSecs),
		SecretSize:  secretBytes,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
		Rand:        rand.Reader,
	})
	if err != nil {
		return "", "", fmt.Errorf("mfa: enroll %s: generate secret: %w", user, err)
	}
	secret := key.Secret()
	sealed, err := s.seal(user, secret)
	if err != nil {
		return "", "", fmt.Errorf("mfa: enroll %s: %w", user, err)
	}
	rec := record{User: user, Secret: sealed, CreatedAt: now.UTC().Truncate(time.Second)}
	err = s.update(func(sf *storeFile) (bool, error) {
		if i := sf.index(user); i >= 0 {
			sf.Enrollments[i] = rec
		} else {
			sf.Enrollments = append(sf.Enrollments, rec)
		}
		return true, nil
	})
	if err != nil {
		return "", "", fmt.Errorf("mfa: enroll %s: %w", user, err)
	}
	return key.URL(), secret, nil
}

// Remove deletes user's enrollment. An unknown user wraps ErrNotEnrolled.
func (s *Store) Remove(user string) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := validateUser(user); err != nil {
		return fmt.Errorf("mfa: remove: %w: %w", ErrInvalidArgument, err)
	}
	err := s.update(func(sf *storeFile) (bool, error) {
		i := sf.index(user)
		if i < 0 {
			return false, ErrNotEnrolled
		}
		sf.Enrollments = slices.Delete(sf.Enrollments, i, i+1)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("mfa: remove %s: %w", user, err)
	}
	return nil
}

// List returns the enrollments sorted by user, without secrets.
func (s *Store) List() ([]Enrollment, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	sf, err := s.load()
	if err != nil {
		return nil, err
	}
	out := make([]Enrollment, 0, len(sf.Enrollments))
	for _, r := range sf.Enrollments {
		e := Enrollment{User: r.User, CreatedAt: r.CreatedAt, Confirmed: r.Confirmed}
		if r.LastStep > 0 {
			e.LastCodeAt = time.Unix(r.LastStep*periodSecs, 0).UTC()
		}
		out = append(out, e)
	}
	return out, nil
}

// Healthy returns nil when the store can be read with this key and every
// stored secret decrypts for its user, or an error wrapping ErrUnavailable
// (for /readyz and operators).
func (s *Store) Healthy() error {
	if err := s.usable(); err != nil {
		return err
	}
	sf, err := s.load()
	if err != nil {
		return err
	}
	for _, r := range sf.Enrollments {
		if _, err := s.openSecret(r); err != nil {
			return fmt.Errorf("mfa: store %s: %w", s.path, err)
		}
	}
	return nil
}

// Verify checks a TOTP code for user at time now and consumes it. It returns
// nil only after the accepted time step is durably recorded, so neither a
// concurrent request nor a crash lets the code (or an older one) be used
// again. Errors wrap ErrNotEnrolled, ErrInvalidCode, ErrReplayedCode or
// ErrTooManyAttempts (not proven), or ErrUnavailable (fail closed); they
// never contain the code.
func (s *Store) Verify(user, code string, now time.Time) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := validateUser(user); err != nil {
		return fmt.Errorf("mfa: verify: %w (%v)", ErrNotEnrolled, err)
	}
	release, err := s.limit.begin(user, now)
	if err != nil {
		return fmt.Errorf("mfa: verify %s: %w", user, err)
	}
	outcome := attemptAborted
	defer func() { release(outcome) }()

	if !ValidCode(code) {
		outcome = attemptFailed
		return fmt.Errorf("mfa: verify %s: %w: not %d ASCII digits", user, ErrInvalidCode, Digits)
	}
	unix := now.Unix()
	if unix < 2*periodSecs {
		return fmt.Errorf("mfa: verify %s: %w: clock reads %s", user, ErrUnavailable, now.UTC().Format(time.RFC3339))
	}
	step := unix / periodSecs

	var rejected error // not proven; set inside the transaction
	err = s.update(func(sf *storeFile) (bool, error) {
		i := sf.index(user)
		if i < 0 {
			rejected = ErrNotEnrolled
			return false, nil
		}
		r := &sf.Enrollments[i]
		secret, err := s.openSecret(*r)
		if err != nil {
			return false, err
		}
		matched, err := matchStep(secret, code, step)
		if err != nil {
			return false, err
		}
		switch {
		case matched < 0:
			rejected = ErrInvalidCode
			return false, nil
		case matched <= r.LastStep:
			rejected = fmt.Errorf("%w (time step %d, last accepted %d)", ErrReplayedCode, matched, r.LastStep)
			return false, nil
		}
		r.LastStep = matched
		r.Confirmed = true
		return true, nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("mfa: verify %s: %w", user, err)
	case rejected != nil:
		outcome = attemptFailed
		return fmt.Errorf("mfa: verify %s: %w", user, rejected)
	}
	outcome = attemptOK
	return nil
}

// matchStep returns the latest time step in [step-Skew, step+Skew] whose
// code equals code, or -1. Every candidate is computed and compared in
// constant time, so the time taken does not depend on which one matched.
func matchStep(secret, code string, step int64) (int64, error) {
	matched := int64(-1)
	for c := step - Skew; c <= step+Skew; c++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(c*periodSecs, 0), totpOpts)
		if err != nil {
			return -1, fmt.Errorf("%w: generate code: %w", ErrUnavailable, err)
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = c // ascending: the last match is the latest step
		}
	}
	return matched, nil
}

// ValidCode reports whether code is exactly Digits ASCII digits.
func ValidCode(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// Additional data of the key check value. User ids are printable ASCII, so
// no user id can equal it.
const (
	keyCheckAD    = "\x00warden-mfa-key-check"
	keyCheckPlain = "warden mfa key check v1"
)

// seal encrypts plaintext for user: base64(nonce || AES-256-GCM(plaintext,
// additional data = user)).
func (s *Store) seal(user, plaintext string) (string, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt: %w", err)
	}
	return base64.StdEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(plaintext), []byte(user))), nil
}

// unseal reverses seal. Errors say nothing about the content.
func (s *Store) unseal(ad, sealed string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, errors.New("malformed ciphertext")
	}
	ns := s.aead.NonceSize()
	pt, err := s.aead.Open(nil, raw[:ns], raw[ns:], []byte(ad))
	if err != nil {
		return nil, errors.New("does not decrypt")
	}
	return pt, nil
}

// openSecret decrypts a record's TOTP secret. Failure means a wrong key or a
// record tampered with or moved from another user: ErrUnavailable.
func (s *Store) openSecret(r record) (string, error) {
	pt, err := s.unseal(r.User, r.Secret)
	if err != nil {
		return "", fmt.Errorf("%w: the secret of user %s %v (wrong key, or the record was altered or moved from another user)",
			ErrUnavailable, r.User, err)
	}
	secret := string(pt)
	if !validSecret(secret) {
		return "", fmt.Errorf("%w: the secret of user %s is not base32 of at least 80 bits", ErrUnavailable, r.User)
	}
	return secret, nil
}

func (s *Store) checkKey(sf *storeFile) error {
	pt, err := s.unseal(keyCheckAD, sf.KeyCheck)
	if err != nil || subtle.ConstantTimeCompare(pt, []byte(keyCheckPlain)) != 1 {
		return fmt.Errorf("mfa: store %s: %w: wrong encryption key (the store was written with another key)", s.path, ErrUnavailable)
	}
	return nil
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// validSecret accepts unpadded upper-case base32 of 10 to 64 bytes.
func validSecret(s string) bool {
	if len(s) < 16 || len(s) > 103 {
		return false
	}
	b, err := b32.DecodeString(s)
	return err == nil && len(b) >= 10
}

// validateUser accepts 1–256 printable ASCII characters without spaces, like
// every other subject warden stores: user ids end up in tables and logs.
func validateUser(u string) error {
	switch {
	case u == "":
		return errors.New("user: required")
	case len(u) > maxUserLen:
		return fmt.Errorf("user: longer than %d bytes", maxUserLen)
	case !printableASCII(u):
		return errors.New("user: only printable ASCII without spaces is allowed")
	}
	return nil
}

// validateIssuer accepts 1–64 printable ASCII characters (spaces allowed)
// without ':' (the otpauth label separator).
func validateIssuer(iss string) error {
	switch {
	case iss == "":
		return errors.New("issuer: required")
	case len(iss) > maxIssuerLen:
		return fmt.Errorf("issuer: longer than %d bytes", maxIssuerLen)
	case strings.ContainsRune(iss, ':'):
		return errors.New("issuer: must not contain ':'")
	case strings.TrimSpace(iss) != iss || !printableASCII(strings.ReplaceAll(iss, " ", "x")):
		return errors.New("issuer: only printable ASCII is allowed, without leading or trailing spaces")
	}
	return nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// ensureDir creates the store's directory, private to its owner.
func (s *Store) ensureDir() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("mfa: store: %w", err)
	}
	return nil
}
