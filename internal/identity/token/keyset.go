package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Key statuses, as reported by KeyInfo.Status.
const (
	KeyActive  = "active"  // signs new tokens (the newest active key does) and verifies
	KeyRetired = "retired" // verifies the tokens it signed until DropAfter
	KeyDropped = "dropped" // verifies nothing; removed at the next write
)

const (
	keyFileVersion  = 1
	maxKeyFileBytes = 1 << 20
	kidBytes        = 12
	// DefaultWatchInterval is the polling interval Watch uses when given none.
	DefaultWatchInterval = 500 * time.Millisecond
	// DefaultMaintainInterval is how often Maintain calls EnsureCurrent.
	DefaultMaintainInterval = time.Minute
	fullCheckEvery          = 20
	lockTimeout             = 30 * time.Second
	// jwksMaxAge is the Cache-Control max-age of the JWK set, in seconds.
	jwksMaxAge = 300
)

// KeyInfo describes one signing key without its private part.
type KeyInfo struct {
	KID         string    `json:"kid"`
	Alg         string    `json:"alg"`
	Created     time.Time `json:"created"`
	RetireAfter time.Time `json:"retire_after"` // stops signing
	DropAfter   time.Time `json:"drop_after"`   // stops verifying: RetireAfter + the longest token lifetime
}

// Status reports whether the key is active, retired or dropped at now.
func (k KeyInfo) Status(now time.Time) string {
	switch {
	case now.Before(k.RetireAfter):
		return KeyActive
	case now.Before(k.DropAfter):
		return KeyRetired
	default:
		return KeyDropped
	}
}

// keyRecord is one key as stored: its info and its PKCS#8 private key.
type keyRecord struct {
	KeyInfo
	PrivateKey string `json:"private_key"` // base64 (standard) of the PKCS#8 DER
}

type keySetFile struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

// signingKey is a decoded key.
type signingKey struct {
	info   KeyInfo
	priv   *ecdsa.PrivateKey
	pub    *ecdsa.PublicKey
	jwk    jose.JSONWebKey // public only
	signer jose.Signer     // nil if the signer could not be built
}

// keySnapshot is an immutable view of the key set; err != nil is the
// fail-closed error state.
type keySnapshot struct {
	keys  []*signingKey // oldest first
	byKID map[string]*signingKey
	err   error
	stamp localfile.Stamp
	sum   [sha256.Size]byte
}

// active returns the key that signs at now: the newest key not yet retired.
func (s *keySnapshot) active(now time.Time) *signingKey {
	for i := len(s.keys) - 1; i >= 0; i-- {
		if k := s.keys[i]; now.Before(k.info.RetireAfter) {
			return k
		}
	}
	return nil
}

// verifying returns the key kid if it still verifies at now.
func (s *keySnapshot) verifying(kid string, now time.Time) *signingKey {
	if k := s.byKID[kid]; k != nil && now.Before(k.info.DropAfter) {
		return k
	}
	return nil
}

// KeySet holds warden's ES256 token signing keys in a JSON file (mode 0600)
// shared by the server and `warden token keys`. Reads are lock-free; writes
// (Rotate, EnsureCurrent) take an advisory lock on path+".lock", re-read the
// file under it and replace it atomically. Watch picks up rotations made by
// another process. The file holds private keys: nothing in it is ever logged.
type KeySet struct {
	path        string
	rotateEvery time.Duration
	maxTTL      time.Duration
	now         func() time.Time // for JWKS; tests replace it

	snap    atomic.Pointer[keySnapshot]
	mu      sync.Mutex
	writeMu sync.Mutex
}

// OpenKeySet opens the key set at path. A missing file is an empty set: call
// EnsureCurrent (the server does at start) to make the first key. A new key
// signs for rotateEvery (default 24h) and verifies for maxTTL (default 1h,
// the longest token lifetime) after that.
func OpenKeySet(path string, rotateEvery, maxTTL time.Duration) (*KeySet, error) {
	if path == "" {
		return nil, errors.New("token: key set: empty path")
	}
	if rotateEvery <= 0 {
		rotateEvery = DefaultRotateEvery
	}
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	ks := &KeySet{path: filepath.Clean(path), rotateEvery: rotateEvery, maxTTL: maxTTL, now: time.Now}
	s := ks.load()
	if s.err != nil {
		return nil, s.err
	}
	ks.snap.Store(s)
	return ks, nil
}

var errKeySetNotOpened = &keySnapshot{err: fmt.Errorf("token: %w: key set not opened (use OpenKeySet)", ErrKeysUnavailable)}

func (ks *KeySet) current() *keySnapshot {
	if ks == nil {
		return errKeySetNotOpened
	}
	if s := ks.snap.Load(); s != nil {
		return s
	}
	return errKeySetNotOpened
}

// Path is the key file's path.
func (ks *KeySet) Path() string { return ks.path }

// MaxTTL is the longest token lifetime the key set's verification windows
// are sized for.
func (ks *KeySet) MaxTTL() time.Duration { return ks.maxTTL }

// Healthy returns nil while the key set is serving, or an error wrapping
// ErrKeysUnavailable.
func (ks *KeySet) Healthy() error {
	if s := ks.current(); s.err != nil {
		return s.err
	}
	return nil
}

// Keys lists the keys of the current snapshot, oldest first, without their
// private parts; nil while the set is unavailable.
func (ks *KeySet) Keys() []KeyInfo {
	s := ks.current()
	if s.err != nil {
		return nil
	}
	out := make([]KeyInfo, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.info
	}
	return out
}

// Rotate makes a new key that signs from now on; keys that were still active
// retire now and keep verifying for at most MaxTTL. Dropped keys are removed.
func (ks *KeySet) Rotate(now time.Time) (KeyInfo, error) {
	var info KeyInfo
	err := ks.update(now, func(recs []keyRecord) ([]keyRecord, error) {
		rec, err := ks.newRecord(now, recs)
		if err != nil {
			return nil, err
		}
		retireActive(recs, now, ks.maxTTL)
		info = rec.KeyInfo
		return append(recs, rec), nil
	})
	if err != nil {
		return KeyInfo{}, fmt.Errorf("token: rotate: %w", err)
	}
	return info, nil
}

// EnsureCurrent rotates when no key is active at now or the newest active
// key is older than rotateEvery, and reports whether it did. Several
// processes calling it at once make one new key: the check is repeated under
// the file lock.
func (ks *KeySet) EnsureCurrent(now time.Time) (rotated bool, err error) {
	if s := ks.current(); s.err == nil {
		if k := s.active(now); k != nil && now.Sub(k.info.Created) < ks.rotateEvery {
			return false, nil
		}
	}
	err = ks.update(now, func(recs []keyRecord) ([]keyRecord, error) {
		for i := len(recs) - 1; i >= 0; i-- {
			if r := recs[i]; now.Before(r.RetireAfter) && now.Sub(r.Created) < ks.rotateEvery {
				return nil, errNoChange // another process rotated in the meantime
			}
		}
		rec, err := ks.newRecord(now, recs)
		if err != nil {
			return nil, err
		}
		retireActive(recs, now, ks.maxTTL)
		rotated = true
		return append(recs, rec), nil
	})
	if err != nil {
		return false, fmt.Errorf("token: ensure current key: %w", err)
	}
	return rotated, nil
}

// retireActive stops every still-active key from signing at now; each keeps
// verifying for at most maxTTL, long enough for every token it signed.
func retireActive(recs []keyRecord, now time.Time, maxTTL time.Duration) {
	now = now.UTC().Truncate(time.Second)
	for i := range recs {
		r := &recs[i]
		if now.Before(r.RetireAfter) {
			r.RetireAfter = now
			if d := now.Add(maxTTL); d.Before(r.DropAfter) {
				r.DropAfter = d
			}
		}
	}
}

func (ks *KeySet) newRecord(now time.Time, existing []keyRecord) (keyRecord, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return keyRecord{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return keyRecord{}, err
	}
	var kid string
	for {
		b := make([]byte, kidBytes)
		if _, err := rand.Read(b); err != nil {
			return keyRecord{}, err
		}
		kid = base64.RawURLEncoding.EncodeToString(b)
		if !slices.ContainsFunc(existing, func(r keyRecord) bool { return r.KID == kid }) {
			break
		}
	}
	created := now.UTC().Truncate(time.Second)
	retire := created.Add(ks.rotateEvery)
	return keyRecord{
		KeyInfo: KeyInfo{
			KID: kid, Alg: Algorithm, Created: created,
			RetireAfter: retire, DropAfter: retire.Add(ks.maxTTL),
		},
		PrivateKey: base64.StdEncoding.EncodeToString(der),
	}, nil
}

// JWKS returns the public keys that verify at the current time as an RFC
// 7517 JWK set: kty, crv, x, y, kid, alg and use only. It returns nil while
// the set is unavailable.
func (ks *KeySet) JWKS() []byte {
	s := ks.current()
	if s.err != nil {
		return nil
	}
	now := ks.now()
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range s.keys {
		if now.Before(k.info.DropAfter) {
			set.Keys = append(set.Keys, k.jwk)
		}
	}
	out, err := json.Marshal(set)
	if err != nil {
		return nil
	}
	return out
}

// JWKSHandler serves JWKS at /.well-known/jwks.json: GET or HEAD, cacheable
// for 5 minutes; 503 while the key set is unavailable.
func (ks *KeySet) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		body := ks.JWKS()
		if body == nil {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "token signing keys unavailable", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", jwksMaxAge))
		h.Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusOK)
			return
		}
		_, _ = w.Write(append(body, '\n'))
	})
}

// Reload re-reads the key file now; on failure the set enters the error
// state (verification and issuing fail with ErrKeysUnavailable).
func (ks *KeySet) Reload() error {
	ks.poll(true)
	return ks.Healthy()
}

// Watch polls the key file every interval (DefaultWatchInterval if <= 0) and
// reloads it when it changed, so rotations made by the CLI or another
// replica take effect. It blocks until ctx is done. Only paths, counts and
// key ids are logged, never key material.
func (ks *KeySet) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		old, cur, replaced := ks.poll(tick%fullCheckEvery == 0)
		if !replaced {
			continue
		}
		switch {
		case cur.err != nil:
			if old.err == nil || old.err.Error() != cur.err.Error() {
				logger.Error("token: signing key set unavailable; warden tokens are neither issued nor accepted until it is fixed",
					"path", ks.path, "err", cur.err)
			}
		case old.err != nil:
			logger.Info("token: signing key set recovered", "path", ks.path, "keys", len(cur.keys))
		default:
			logger.Info("token: signing key set reloaded", "path", ks.path, "keys", len(cur.keys))
		}
	}
}

// Maintain calls EnsureCurrent every interval (DefaultMaintainInterval if
// <= 0) until ctx is done, so keys rotate on schedule; it logs rotations and
// failures (never key material).
func (ks *KeySet) Maintain(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultMaintainInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rotated, err := ks.EnsureCurrent(time.Now())
		switch {
		case err != nil:
			logger.Error("token: signing key rotation failed", "path", ks.path, "err", err)
		case rotated:
			kid := ""
			if k := ks.current().active(time.Now()); k != nil {
				kid = k.info.KID
			}
			logger.Info("token: signing key rotated", "path", ks.path, "kid", kid)
		}
	}
}

func (ks *KeySet) poll(force bool) (old, cur *keySnapshot, replaced bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old = ks.current()
	if !force && old.err == nil {
		if st, err := localfile.StatPath(ks.path); err == nil && st == old.stamp {
			return old, old, false
		}
	}
	next := ks.load()
	if old.err == nil && next.err == nil && next.sum == old.sum {
		if next.stamp != old.stamp {
			ks.snap.Store(&keySnapshot{keys: old.keys, byKID: old.byKID, stamp: next.stamp, sum: old.sum})
		}
		return old, ks.snap.Load(), false
	}
	ks.snap.Store(next)
	return old, next, true
}

func (ks *KeySet) load() *keySnapshot {
	data, st, err := localfile.ReadFile(ks.path, maxKeyFileBytes)
	if err != nil {
		return &keySnapshot{err: fmt.Errorf("token: %w: %w", ErrKeysUnavailable, err)}
	}
	if !st.Exists {
		return &keySnapshot{byKID: map[string]*signingKey{}, stamp: st}
	}
	_, keys, err := decodeKeySet(ks.path, data)
	if err != nil {
		return &keySnapshot{err: fmt.Errorf("token: %w: %w", ErrKeysUnavailable, err), stamp: st}
	}
	return newKeySnapshot(keys, st, sha256.Sum256(data))
}

func newKeySnapshot(keys []*signingKey, st localfile.Stamp, sum [sha256.Size]byte) *keySnapshot {
	by := make(map[string]*signingKey, len(keys))
	for _, k := range keys {
		by[k.info.KID] = k
	}
	return &keySnapshot{keys: keys, byKID: by, stamp: st, sum: sum}
}

var errNoChange = errors.New("no change")

// update runs one read-modify-write of the key file under the cross-process
// lock, drops keys past DropAfter, and publishes the result.
func (ks *KeySet) update(now time.Time, modify func([]keyRecord) ([]keyRecord, error)) error {
	if ks == nil || ks.path == "" {
		return errKeySetNotOpened.err
	}
	ks.writeMu.Lock()
	defer ks.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(ks.path), 0o700); err != nil {
		return err
	}
	unlock, err := localfile.Lock(ks.path+".lock", lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	data, _, err := localfile.ReadFile(ks.path, maxKeyFileBytes)
	if err != nil {
		return err
	}
	var recs []keyRecord
	if data != nil {
		if recs, _, err = decodeKeySet(ks.path, data); err != nil {
			return err // never overwrite a file we cannot read
		}
	}
	recs, err = modify(recs)
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	recs = slices.DeleteFunc(recs, func(r keyRecord) bool { return !now.Before(r.DropAfter) })
	sortKeyRecords(recs)
	out, err := encodeKeySet(recs)
	if err != nil {
		return err
	}
	// Decode what we are about to publish, exactly as a reader would.
	_, keys, err := decodeKeySet(ks.path, out)
	if err != nil {
		return err
	}
	if err := localfile.WriteAtomic(ks.path, out); err != nil {
		return err
	}
	st, err := localfile.StatPath(ks.path)
	if err != nil {
		st = localfile.Stamp{}
	}
	ks.mu.Lock()
	ks.snap.Store(newKeySnapshot(keys, st, sha256.Sum256(out)))
	ks.mu.Unlock()
	return nil
}

// sortKeyRecords orders keys oldest first: by creation, then by retirement
// (a key retired by a rotation in the same second as its successor was
// created sorts before it), then by kid.
func sortKeyRecords(recs []keyRecord) {
	slices.SortFunc(recs, func(a, b keyRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		if c := a.RetireAfter.Compare(b.RetireAfter); c != 0 {
			return c
		}
		return strings.Compare(a.KID, b.KID)
	})
}

func encodeKeySet(recs []keyRecord) ([]byte, error) {
	if recs == nil {
		recs = []keyRecord{}
	}
	out, err := json.MarshalIndent(keySetFile{Version: keyFileVersion, Keys: recs}, "", "  ")
	if err != nil {
		return nil, errors.New("encode key set") // never wrap: the value holds private keys
	}
	return append(out, '\n'), nil
}

// decodeKeySet parses the key file strictly. Error messages never quote
// the file's content.
func decodeKeySet(path string, data []byte) ([]keyRecord, []*signingKey, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("key set %s: corrupt: %s", path, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil, corrupt(`empty file (an empty key set is {"version":1,"keys":[]})`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f keySetFile
	if err := dec.Decode(&f); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, nil, corrupt("invalid JSON at byte %d", se.Offset)
		}
		return nil, nil, corrupt("%v", err) // type errors name fields and types, not values
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, corrupt("trailing data after the document")
	}
	if f.Version != keyFileVersion {
		return nil, nil, corrupt("unsupported version %d (want %d)", f.Version, keyFileVersion)
	}
	sortKeyRecords(f.Keys)
	keys := make([]*signingKey, 0, len(f.Keys))
	seen := make(map[string]bool, len(f.Keys))
	for i, r := range f.Keys {
		k, err := decodeKey(r)
		if err != nil {
			return nil, nil, corrupt("keys[%d]: %v", i, err)
		}
		if seen[r.KID] {
			return nil, nil, corrupt("keys[%d]: duplicate kid %q", i, r.KID)
		}
		seen[r.KID] = true
		keys = append(keys, k)
	}
	return f.Keys, keys, nil
}

func decodeKey(r keyRecord) (*signingKey, error) {
	if !validKID(r.KID) {
		return nil, errors.New("kid: must be 1-64 characters of [A-Za-z0-9_-]")
	}
	if r.Alg != Algorithm {
		return nil, fmt.Errorf("alg: must be %s", Algorithm)
	}
	if r.Created.IsZero() || r.RetireAfter.Before(r.Created) || r.DropAfter.Before(r.RetireAfter) {
		return nil, errors.New("times: want created <= retire_after <= drop_after")
	}
	der, err := base64.StdEncoding.DecodeString(r.PrivateKey)
	if err != nil {
		return nil, errors.New("private_key: not base64")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("private_key: not a PKCS#8 private key")
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		return nil, errors.New("private_key: not an ECDSA P-256 key")
	}
	pub := &priv.PublicKey
	k := &signingKey{
		info: r.KeyInfo,
		priv: priv,
		pub:  pub,
		jwk:  jose.JSONWebKey{Key: pub, KeyID: r.KID, Algorithm: Algorithm, Use: "sig"},
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: r.KID, Algorithm: Algorithm}},
		(&jose.SignerOptions{}).WithType(Type))
	if err != nil {
		return nil, errors.New("private_key: cannot sign with it")
	}
	k.signer = signer
	return k, nil
}

func validKID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
