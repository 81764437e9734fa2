package assess

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/config"
)

// ErrInvalidPosture is wrapped by every error that means "a posture
// assertion was presented but is not accepted" (401). Any other error from
// Verify is a fault (fail closed).
var ErrInvalidPosture = errors.New("posture assertion not accepted")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidPosture, fmt.Sprintf(format, args...))
}

// Posture token limits.
const (
	// MaxPostureTokenBytes refuses larger assertions before parsing.
	MaxPostureTokenBytes = 8192
	maxJWKSBytes         = 1 << 20
	maxJWKSKeys          = 64
	// maxNumericDate bounds exp, iat and nbf (year 5138): beyond it a
	// NumericDate is not a time anybody means.
	maxNumericDate = 1e11
)

// postureAlgs are the only signature algorithms accepted (RFC 8037 EdDSA
// with Ed25519, RFC 7518 §3.4 ES256). "none", HMAC and everything else are
// refused before any key is looked at.
var postureAlgs = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}

// PostureVerifier verifies signed posture assertions against the keys of a
// JWKS file, which it reloads when the file changes.
type PostureVerifier struct {
	file     string
	audience string
	maxAge   time.Duration
	skew     time.Duration
	logger   *slog.Logger

	keys atomic.Pointer[postureKeys]

	mu      sync.Mutex // serialises Reload; guards the fields below
	sum     [sha256.Size]byte
	lastErr error
}

// postureKeys is an immutable snapshot of the verification keys.
type postureKeys struct {
	keys []postureKey
}

type postureKey struct {
	kid string
	alg jose.SignatureAlgorithm // the algorithm the key type is defined for
	key any                     // ed25519.PublicKey or *ecdsa.PublicKey (P-256)
}

// NewPostureVerifier loads the keys of cfg.JWKSFile; a file without usable
// keys is an error. cfg must come from a loaded config (defaults applied).
func NewPostureVerifier(cfg config.Posture, logger *slog.Logger) (*PostureVerifier, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.JWKSFile == "":
		return nil, errors.New("assess: posture: no jwks_file")
	case cfg.Audience == "":
		return nil, errors.New("assess: posture: no audience")
	case cfg.MaxAge <= 0:
		return nil, errors.New("assess: posture: max_age must be positive")
	case cfg.ClockSkew < 0:
		return nil, errors.New("assess: posture: clock_skew must not be negative")
	}
	v := &PostureVerifier{file: cfg.JWKSFile, audience: cfg.Audience, maxAge: cfg.MaxAge.D(),
		skew: cfg.ClockSkew.D(), logger: logger}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Healthy returns nil when the keys in the file are the keys in service,
// else why the last reload was refused.
func (v *PostureVerifier) Healthy() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.lastErr
}

// Reload re-reads the JWKS file and puts its keys in service if it changed
// and is valid. A file that cannot be read or holds a key that is not
// acceptable leaves the previous keys in service; the error is returned,
// logged once and reported by Healthy.
func (v *PostureVerifier) Reload() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	data, err := readBounded(v.file, maxJWKSBytes)
	if err != nil {
		err = fmt.Errorf("assess: posture jwks_file: %w", err)
		v.refuse(err)
		v.sum = [sha256.Size]byte{} // read again next time
		return err
	}
	sum := sha256.Sum256(data)
	if sum == v.sum {
		return v.lastErr // unchanged: in service, or refused and reported
	}
	v.sum = sum
	ks, err := parsePostureKeys(data)
	if err != nil {
		err = fmt.Errorf("assess: posture jwks_file %s: %w", v.file, err)
		v.refuse(err)
		return err
	}
	first := v.keys.Load() == nil
	v.keys.Store(ks)
	v.lastErr = nil
	if !first {
		v.logger.Info("assess: posture keys reloaded", "file", v.file, "keys", len(ks.keys))
	}
	return nil
}

func (v *PostureVerifier) refuse(err error) {
	if v.keys.Load() != nil {
		v.logger.Error("assess: posture keys not reloaded; the previous keys stay in service", "err", err)
	}
	v.lastErr = err
}

// parsePostureKeys reads a JWKS (RFC 7517 §5) strictly: every key must be
// a public Ed25519 or P-256 signature key, since a file that also holds
// something else (a private key, a shared secret) is a mistake to fix, not
// to work around.
func parsePostureKeys(data []byte) (*postureKeys, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	switch {
	case len(raw.Keys) == 0:
		return nil, errors.New("not a JSON Web Key Set: \"keys\" is missing or empty")
	case len(raw.Keys) > maxJWKSKeys:
		return nil, fmt.Errorf("%d keys: at most %d", len(raw.Keys), maxJWKSKeys)
	}
	ks := &postureKeys{}
	for i, r := range raw.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(r); err != nil {
			return nil, fmt.Errorf("key %d: %w", i, err)
		}
		if k.Use != "" && k.Use != "sig" {
			return nil, fmt.Errorf("key %d (kid %q): use is %q, not \"sig\"", i, clip(k.KeyID), clip(k.Use))
		}
		if !k.IsPublic() {
			return nil, fmt.Errorf("key %d (kid %q): a private or secret key; the file must hold only the posture service's public keys", i, clip(k.KeyID))
		}
		pk := postureKey{kid: k.KeyID, key: k.Key}
		switch pub := k.Key.(type) {
		case ed25519.PublicKey:
			pk.alg = jose.EdDSA
		case *ecdsa.PublicKey:
			if pub.Curve != elliptic.P256() {
				return nil, fmt.Errorf("key %d (kid %q): EC keys must be on P-256 (ES256)", i, clip(k.KeyID))
			}
			pk.alg = jose.ES256
		default:
			return nil, fmt.Errorf("key %d (kid %q): a %T; only Ed25519 (EdDSA) and P-256 (ES256) keys are accepted", i, clip(k.KeyID), k.Key)
		}
		if k.Algorithm != "" && k.Algorithm != string(pk.alg) {
			return nil, fmt.Errorf("key %d (kid %q): alg %q does not fit the key (want %s)", i, clip(k.KeyID), clip(k.Algorithm), pk.alg)
		}
		ks.keys = append(ks.keys, pk)
	}
	return ks, nil
}

// Watch reloads the keys every interval (2s if interval <= 0) until ctx
// ends. Failures are logged and reported by Healthy.
func (v *PostureVerifier) Watch(ctx context.Context, interval time.Duration) {
	watch(ctx, interval, func() { _ = v.Reload() })
}

// Verify checks a compact JWS posture assertion for the principal
// principalID at now and returns its posture claim. Errors wrapping
// ErrInvalidPosture mean the assertion is not accepted; their text is for
// the log and never contains the assertion.
func (v *PostureVerifier) Verify(token, principalID string, now time.Time) (map[string]any, error) {
	ks := v.keys.Load()
	if ks == nil {
		return nil, errors.New("assess: posture: no keys loaded")
	}
	if principalID == "" {
		return nil, invalid("no principal to bind the assertion to")
	}
	if len(token) > MaxPostureTokenBytes {
		return nil, invalid("assertion is %d bytes, over the limit of %d", len(token), MaxPostureTokenBytes)
	}
	jws, err := jose.ParseSignedCompact(token, postureAlgs)
	if err != nil {
		if bad, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, invalid("algorithm %q not allowed (EdDSA, ES256)", clip(string(bad.Got)))
		}
		return nil, invalid("malformed assertion: %s", clip(err.Error()))
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("malformed assertion: %d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, invalid("unsupported b64 header")
	}
	alg := jose.SignatureAlgorithm(h.Algorithm)
	var payload []byte
	tried := 0
	for _, k := range ks.keys {
		if k.alg != alg || h.KeyID != "" && k.kid != h.KeyID {
			continue
		}
		tried++
		if p, err := jws.Verify(k.key); err == nil {
			payload = p
			break
		}
	}
	switch {
	case tried == 0:
		return nil, invalid("no %s key with kid %q", alg, clip(h.KeyID))
	case payload == nil:
		return nil, invalid("signature does not verify under the %s key(s) with kid %q", alg, clip(h.KeyID))
	}
	return v.claims(payload, principalID, now)
}

// postureClaims are the claims of a posture assertion (RFC 7519 §4.1 and
// "posture"). Pointers tell absent (or null) from zero.
type postureClaims struct {
	Sub     *string         `json:"sub"`
	Aud     json.RawMessage `json:"aud"`
	Exp     *numericDate    `json:"exp"`
	Iat     *numericDate    `json:"iat"`
	Nbf     *numericDate    `json:"nbf"`
	Posture json.RawMessage `json:"posture"`
}

// claims checks a verified payload and returns its posture.
func (v *PostureVerifier) claims(payload []byte, principalID string, now time.Time) (map[string]any, error) {
	// The payload is depth 1, the posture object depth 2.
	if err := checkJSONObject(payload, config.MaxPostureDepth+1); err != nil {
		return nil, invalid("claims: %v", err)
	}
	var c postureClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, invalid("claims: %s", clip(err.Error()))
	}
	switch {
	case c.Sub == nil:
		return nil, invalid("no sub claim")
	case *c.Sub != principalID:
		return nil, invalid("sub %q is not the principal %q", clip(*c.Sub), clip(principalID))
	}
	if err := checkAudience(c.Aud, v.audience); err != nil {
		return nil, err
	}
	switch {
	case c.Exp == nil:
		return nil, invalid("no exp claim")
	case c.Iat == nil:
		return nil, invalid("no iat claim: the assertion's age cannot be bounded")
	}
	exp, iat := c.Exp.time(), c.Iat.time()
	switch {
	case !exp.After(iat):
		return nil, invalid("exp %s is not after iat %s", stamp(exp), stamp(iat))
	case exp.Sub(iat) > v.maxAge:
		return nil, invalid("lifetime %s (exp - iat) is over max_age %s", exp.Sub(iat), v.maxAge)
	case !now.Before(exp.Add(v.skew)):
		return nil, invalid("expired at %s", stamp(exp))
	case now.Add(v.skew).Before(iat):
		return nil, invalid("issued in the future (iat %s)", stamp(iat))
	case c.Nbf != nil && now.Add(v.skew).Before(c.Nbf.time()):
		return nil, invalid("not valid before %s", stamp(c.Nbf.time()))
	}
	raw := bytes.TrimSpace(c.Posture)
	switch {
	case len(raw) == 0:
		return nil, invalid("no posture claim")
	case raw[0] != '{':
		return nil, invalid("posture claim is not a JSON object")
	case len(raw) > config.MaxPostureBytes:
		return nil, invalid("posture claim is %d bytes, over the limit of %d", len(raw), config.MaxPostureBytes)
	}
	var posture map[string]any
	if err := json.Unmarshal(raw, &posture); err != nil || posture == nil {
		return nil, invalid("posture claim is not a JSON object")
	}
	return posture, nil
}

// checkAudience checks aud (a string or an array of strings, RFC 7519
// §4.1.3) for want.
func checkAudience(raw json.RawMessage, want string) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return invalid("no aud claim")
	}
	var auds []string
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &auds); err != nil {
			return invalid("aud is not a string or an array of strings")
		}
	} else {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return invalid("aud is not a string or an array of strings")
		}
		auds = []string{s}
	}
	for _, a := range auds {
		if a == want {
			return nil
		}
	}
	return invalid("aud does not name %q", want)
}

// numericDate is an RFC 7519 NumericDate: seconds since the epoch, possibly
// fractional, bounded to [0, maxNumericDate].
type numericDate struct{ sec, nsec int64 }

// UnmarshalJSON implements json.Unmarshaler. null leaves the pointer nil.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return errors.New("a NumericDate must be a number of seconds between 0 and 1e11")
	}
	sec, frac := math.Modf(f)
	d.sec, d.nsec = int64(sec), int64(frac*1e9)
	return nil
}

func (d *numericDate) time() time.Time { return time.Unix(d.sec, d.nsec) }

// readBounded reads a regular file of at most limit bytes.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}

// clip bounds an attacker-controlled string quoted into a reason.
func clip(s string) string {
	const n = 96
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// watch calls reload every interval (2s if interval <= 0) until ctx ends.
func watch(ctx context.Context, interval time.Duration, reload func()) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reload()
		}
	}
}
