package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-ai/warden/internal/gateway"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// KeyRecord is one stored API key. It holds the hash of the secret, never
// the secret or the key.
//
// The optional fields are omitted when zero, so a store that never saw a
// rotation or a flush of last-used times stays readable by older binaries.
type KeyRecord struct {
	ID        string    `json:"id"`
	Hash      string    `json:"hash"` // lowercase hex SHA-256 of the secret text
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"` // service | agent
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never expires
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: not revoked
	// LastUsed is the last successful authentication, to the second; zero:
	// never. A server keeps it in memory and writes it with FlushLastUsed,
	// so the file can lag the server by one flush interval.
	LastUsed time.Time `json:"last_used,omitzero"`
	// RotatedFrom is the id of the key this one replaced (Rotate).
	RotatedFrom string `json:"rotated_from,omitempty"`
	// RotatedTo is the id of the key that replaced this one (Rotate); the
	// rotation also cut this key's ExpiresAt to the end of the overlap.
	RotatedTo string `json:"rotated_to,omitempty"`
}

// Key statuses, as reported by KeyRecord.Status.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
	StatusExpired = "expired"
)

// Status reports whether the key is active, revoked or expired at now.
// Revocation wins over expiry.
func (r KeyRecord) Status(now time.Time) string {
	switch {
	case !r.RevokedAt.IsZero():
		return StatusRevoked
	case r.expired(now):
		return StatusExpired
	default:
		return StatusActive
	}
}

func (r KeyRecord) expired(now time.Time) bool {
	return !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt)
}

// deadSince reports when the key stopped working — the earlier of its
// revocation and its expiry, counting expiry only once it has passed at now —
// and false while it is active.
func (r KeyRecord) deadSince(now time.Time) (time.Time, bool) {
	t := r.RevokedAt
	if r.expired(now) && (t.IsZero() || r.ExpiresAt.Before(t)) {
		t = r.ExpiresAt
	}
	return t, !t.IsZero()
}

// Key lifetimes.
const (
	// MaxKeyTTL is the longest finite lifetime Create accepts, and the
	// longest rotation overlap: one year. A key that should outlive that is
	// made with ttl 0 (never expires), which the CLI only does when told so
	// explicitly (--no-expiry); everything else is rotated at least yearly.
	MaxKeyTTL = 365 * 24 * time.Hour

	// DefaultLastUsedFlushInterval is how often RunLastUsedFlusher writes
	// last-used times when given no interval. Each flush that has something
	// new rewrites the store file (and makes every server watching it
	// reload), so it is minutes, not seconds.
	DefaultLastUsedFlushInterval = time.Minute
)

// Store file format.
const (
	storeVersion  = 1
	maxStoreBytes = 64 << 20 // a key file this large is a mistake, not a store

	maxSubjectLen = 256
	maxScopeLen   = 128
	maxScopes     = 64

	// DefaultWatchInterval is the polling interval Watch uses when given none.
	DefaultWatchInterval = 500 * time.Millisecond
	// fullCheckEvery makes Watch re-read and hash the file every so many
	// ticks even when its stat stamp is unchanged, as a backstop against
	// coarse timestamps and inode reuse.
	fullCheckEvery = 20
	// lockTimeout bounds the wait for another writer's advisory lock.
	lockTimeout = 30 * time.Second
)

// keyFile is the on-disk document: {"version":1,"keys":[...]}.
type keyFile struct {
	Version int         `json:"version"`
	Keys    []KeyRecord `json:"keys"`
}

// entry is a record with its hash decoded for comparison.
type entry struct {
	rec  KeyRecord
	hash [sha256.Size]byte
	// used is the key's last successful authentication in Unix seconds
	// (0: never), at least rec.LastUsed. The counter belongs to the key id,
	// not to the snapshot: every snapshot that holds the id shares it (see
	// KeyStore.used), so a request that authenticated against an older
	// snapshot still records its use.
	used *atomic.Int64
}

// snapshot is an immutable view of the store. Exactly one of keys (possibly
// empty) and err is meaningful: err != nil is the fail-closed error state.
type snapshot struct {
	keys  map[string]*entry
	err   error
	stamp localfile.Stamp   // stat of the file the snapshot was read from
	sum   [sha256.Size]byte // SHA-256 of the file content; zero if the file is missing
}

// KeyStore holds API keys for service accounts and agents, hashed, in a JSON
// file. Authenticate is lock-free: it reads an immutable snapshot published
// through an atomic pointer, and records the key's last use in a per-key
// atomic counter. Create, Revoke, Rotate, Prune and FlushLastUsed serialise
// across processes with an advisory lock on path+".lock", re-read the file
// under the lock, change only what they own, and replace the file atomically,
// so concurrent CLI invocations and servers never lose each other's writes.
type KeyStore struct {
	path string
	now  func() time.Time

	snap atomic.Pointer[snapshot]
	// mu serialises reading the file and publishing a snapshot within this
	// process, so a slow reload can never publish content older than what a
	// concurrent write already published. It also guards the used map.
	mu sync.Mutex
	// writeMu queues this process's writers fairly before they contend for
	// the cross-process file lock.
	writeMu sync.Mutex

	// used maps each key id in the latest good snapshot to its last-used
	// counter (see entry.used). It outlives snapshots, including the error
	// state, so a reload never loses uses that were not flushed yet.
	used map[string]*atomic.Int64
	// usedDirty is set when a counter advanced since the last flush began.
	usedDirty atomic.Bool
}

// OpenKeyStore opens the key store at path. A missing file is an empty store
// (it is created by the first Create); a file that cannot be read or parsed is
// an error naming the path.
func OpenKeyStore(path string) (*KeyStore, error) {
	if path == "" {
		return nil, errors.New("identity: key store: empty path")
	}
	ks := &KeyStore{path: filepath.Clean(path), now: time.Now}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	s := ks.load()
	if s.err != nil {
		return nil, s.err
	}
	ks.snap.Store(s)
	return ks, nil
}

// errNotOpened is the error state of a KeyStore not made by OpenKeyStore.
var errNotOpened = &snapshot{err: errors.New("key store not opened (use OpenKeyStore)")}

// current returns the published snapshot; a KeyStore that was never opened
// is in the error state rather than a nil dereference.
func (ks *KeyStore) current() *snapshot {
	if s := ks.snap.Load(); s != nil {
		return s
	}
	return errNotOpened
}

// Path is the store file's path.
func (ks *KeyStore) Path() string { return ks.path }

// Authenticate checks a presented key at time now and returns the principal
// it proves. Errors wrap exactly one of ErrStoreUnavailable, ErrMalformedKey,
// ErrUnknownKey, ErrWrongSecret, ErrRevokedKey, ErrExpiredKey; they carry the
// key id when it could be parsed and never the secret. The secret is checked
// before revocation and expiry, so only the holder of a key learns its state.
// A success records now as the key's last use, in memory (see FlushLastUsed).
func (ks *KeyStore) Authenticate(presented string, now time.Time) (gateway.Principal, error) {
	s := ks.current()
	if s.err != nil {
		return gateway.Principal{}, fmt.Errorf("identity: %w: %w", ErrStoreUnavailable, s.err)
	}
	id, secret, err := ParseAPIKey(presented)
	if err != nil {
		return gateway.Principal{}, fmt.Errorf("identity: %w", err)
	}
	sum := hashSecret(secret) // before the lookup: same work for known and unknown ids
	e, ok := s.keys[id]
	if !ok {
		return gateway.Principal{}, fmt.Errorf("identity: key %s: %w", id, ErrUnknownKey)
	}
	if subtle.ConstantTimeCompare(sum[:], e.hash[:]) != 1 {
		return gateway.Principal{}, fmt.Errorf("identity: key %s: %w", id, ErrWrongSecret)
	}
	if !e.rec.RevokedAt.IsZero() {
		return gateway.Principal{}, fmt.Errorf("identity: key %s: %w (at %s)", id, ErrRevokedKey,
			e.rec.RevokedAt.UTC().Format(time.RFC3339))
	}
	if e.rec.expired(now) {
		return gateway.Principal{}, fmt.Errorf("identity: key %s: %w (at %s)", id, ErrExpiredKey,
			e.rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	ks.markUsed(e, now)
	return gateway.Principal{
		Kind:         e.rec.Kind,
		ID:           e.rec.Subject,
		AuthMethod:   AuthMethodAPIKey,
		CredentialID: id,
		AuthTime:     now,
		ExpiresAt:    e.rec.ExpiresAt,
		Scopes:       slices.Clone(e.rec.Scopes), // the snapshot is shared and immutable
	}, nil
}

// Check re-checks a key that authenticated earlier: it must still be in the
// store, unrevoked and unexpired. Long-lived exchanges call it to end when
// their key is revoked (see APIKeyAuthenticator.Revalidate).
func (ks *KeyStore) Check(id string, now time.Time) error {
	s := ks.current()
	if s.err != nil {
		return fmt.Errorf("identity: %w: %w", ErrStoreUnavailable, s.err)
	}
	e, ok := s.keys[id]
	switch {
	case !ok:
		return fmt.Errorf("identity: key %s: %w", id, ErrUnknownKey)
	case !e.rec.RevokedAt.IsZero():
		return fmt.Errorf("identity: key %s: %w (at %s)", id, ErrRevokedKey, e.rec.RevokedAt.UTC().Format(time.RFC3339))
	case e.rec.expired(now):
		return fmt.Errorf("identity: key %s: %w (at %s)", id, ErrExpiredKey, e.rec.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// markUsed records now as the key's last use. It costs one atomic load while
// the stored second is current, so under load each key's counter is written
// at most once a second, and the store-wide dirty flag only when it was
// clear.
func (ks *KeyStore) markUsed(e *entry, now time.Time) {
	if e.used != nil && advance(e.used, now.Unix()) && !ks.usedDirty.Load() {
		ks.usedDirty.Store(true)
	}
}

// advance raises u to sec if sec is later and reports whether it did.
func advance(u *atomic.Int64, sec int64) bool {
	for {
		old := u.Load()
		if old >= sec {
			return false
		}
		if u.CompareAndSwap(old, sec) {
			return true
		}
	}
}

// unixSeconds is t in Unix seconds, 0 for the zero time ("never").
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// Healthy returns nil when the store is serving, or an error wrapping
// ErrStoreUnavailable when the last reload failed (for /readyz).
func (ks *KeyStore) Healthy() error {
	if s := ks.current(); s.err != nil {
		return fmt.Errorf("identity: %w: %w", ErrStoreUnavailable, s.err)
	}
	return nil
}

// List returns the keys in the current snapshot, oldest first, with the
// last-used times this process recorded and has not flushed yet. It returns
// nil while the store is in the error state.
func (ks *KeyStore) List() []KeyRecord {
	s := ks.current()
	if s.err != nil {
		return nil
	}
	out := make([]KeyRecord, 0, len(s.keys))
	for _, e := range s.keys {
		r := e.rec
		r.Scopes = slices.Clone(r.Scopes)
		if sec := e.used.Load(); sec > unixSeconds(r.LastUsed) {
			r.LastUsed = time.Unix(sec, 0).UTC()
		}
		out = append(out, r)
	}
	sortRecords(out)
	return out
}

// Create makes a new key for subject and returns it in plaintext together
// with its record. The plaintext is returned once and stored nowhere. kind
// defaults to service; ttl 0 means the key never expires, and a finite ttl
// may not exceed MaxKeyTTL. Invalid arguments wrap ErrInvalidArgument.
func (ks *KeyStore) Create(subject, kind string, scopes []string, ttl time.Duration) (plaintext string, rec KeyRecord, err error) {
	if kind == "" {
		kind = gateway.KindService
	}
	if err := validateSubject(subject); err != nil {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w: %w", ErrInvalidArgument, err)
	}
	if err := validateKind(kind); err != nil {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w: %w", ErrInvalidArgument, err)
	}
	if err := validateScopes(scopes); err != nil {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w: %w", ErrInvalidArgument, err)
	}
	if ttl < 0 {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w: negative ttl %s", ErrInvalidArgument, ttl)
	}
	if ttl > MaxKeyTTL {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w: ttl %s is longer than the maximum %s (use 0 for a key that never expires)",
			ErrInvalidArgument, ttl, MaxKeyTTL)
	}
	err = ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		id, secret, err := newUniqueKey(recs)
		if err != nil {
			return nil, err
		}
		sum := hashSecret(secret)
		created := ks.now().UTC().Truncate(time.Second)
		rec = KeyRecord{
			ID:        id,
			Hash:      hex.EncodeToString(sum[:]),
			Subject:   subject,
			Kind:      kind,
			CreatedAt: created,
		}
		if len(scopes) > 0 {
			rec.Scopes = slices.Clone(scopes)
		}
		if ttl > 0 {
			rec.ExpiresAt = created.Add(ttl)
		}
		plaintext = formatKey(id, secret)
		return append(recs, rec), nil
	})
	if err != nil {
		return "", KeyRecord{}, fmt.Errorf("identity: create key: %w", err)
	}
	rec.Scopes = slices.Clone(rec.Scopes)
	return plaintext, rec, nil
}

// Revoke marks the key with the given id revoked. An unknown id is an error
// wrapping ErrUnknownKey; revoking a revoked key is a no-op that keeps the
// original revocation time.
func (ks *KeyStore) Revoke(id string) error {
	if !ValidKeyID(id) {
		return fmt.Errorf("identity: revoke key: %w: id must be %d lowercase hex digits", ErrMalformedKey, KeyIDLen)
	}
	err := ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		i := slices.IndexFunc(recs, func(r KeyRecord) bool { return r.ID == id })
		if i < 0 {
			return nil, ErrUnknownKey
		}
		if !recs[i].RevokedAt.IsZero() {
			return nil, errNoChange
		}
		recs[i].RevokedAt = ks.now().UTC().Truncate(time.Second)
		return recs, nil
	})
	if err != nil {
		return fmt.Errorf("identity: revoke key %s: %w", id, err)
	}
	return nil
}

// newUniqueKey returns a fresh id and secret whose id is not in recs.
func newUniqueKey(recs []KeyRecord) (id, secret string, err error) {
	for {
		if id, secret, err = newKey(); err != nil {
			return "", "", err
		}
		// 96 random bits make a collision practically impossible; checking
		// costs nothing and keeps ids unique even with a broken RNG seed.
		if !slices.ContainsFunc(recs, func(r KeyRecord) bool { return r.ID == id }) {
			return id, secret, nil
		}
	}
}

// Rotate replaces the key id with a new one and returns the new key in
// plaintext (once; it is stored nowhere) with its record. The new key has
// the old key's subject, kind and scopes, RotatedFrom = id, and a fresh
// lifetime equal to the old key's original one (ExpiresAt − CreatedAt,
// counted from now; never-expiring stays never-expiring). The old key gets
// RotatedTo = the new id, and its ExpiresAt becomes the earlier of its own
// and now+overlap: both keys work during the overlap, so clients can switch
// without downtime, and overlap 0 stops the old key at once. Both changes are
// one atomic write, so no reader ever sees one without the other.
//
// Rotating a revoked, expired or already rotated key is an error (wrapping
// ErrRevokedKey, ErrExpiredKey or ErrAlreadyRotated; an unknown id wraps
// ErrUnknownKey). overlap must be between 0 and MaxKeyTTL.
func (ks *KeyStore) Rotate(id string, overlap time.Duration, now time.Time) (plaintext string, newRec KeyRecord, err error) {
	if !ValidKeyID(id) {
		return "", KeyRecord{}, fmt.Errorf("identity: rotate key: %w: id must be %d lowercase hex digits", ErrMalformedKey, KeyIDLen)
	}
	if overlap < 0 || overlap > MaxKeyTTL {
		return "", KeyRecord{}, fmt.Errorf("identity: rotate key %s: %w: overlap %s must be between 0 and %s",
			id, ErrInvalidArgument, overlap, MaxKeyTTL)
	}
	now = now.UTC()
	err = ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		i := slices.IndexFunc(recs, func(r KeyRecord) bool { return r.ID == id })
		if i < 0 {
			return nil, ErrUnknownKey
		}
		old := recs[i]
		switch {
		case !old.RevokedAt.IsZero():
			return nil, fmt.Errorf("%w (at %s)", ErrRevokedKey, old.RevokedAt.UTC().Format(time.RFC3339))
		case old.expired(now):
			return nil, fmt.Errorf("%w (at %s)", ErrExpiredKey, old.ExpiresAt.UTC().Format(time.RFC3339))
		case old.RotatedTo != "":
			return nil, fmt.Errorf("%w (to %s; rotate that key instead)", ErrAlreadyRotated, old.RotatedTo)
		}
		var lifetime time.Duration
		if !old.ExpiresAt.IsZero() {
			if lifetime = old.ExpiresAt.Sub(old.CreatedAt); lifetime <= 0 {
				return nil, fmt.Errorf("%w: the key expires before it was created", ErrInvalidArgument)
			}
		}
		newID, secret, err := newUniqueKey(recs)
		if err != nil {
			return nil, err
		}
		sum := hashSecret(secret)
		created := now.Truncate(time.Second)
		newRec = KeyRecord{
			ID:          newID,
			Hash:        hex.EncodeToString(sum[:]),
			Subject:     old.Subject,
			Kind:        old.Kind,
			Scopes:      slices.Clone(old.Scopes),
			CreatedAt:   created,
			RotatedFrom: old.ID,
		}
		if lifetime > 0 {
			newRec.ExpiresAt = created.Add(lifetime)
		}
		// Truncated down, so overlap 0 ends the old key at (not after) now.
		if cutoff := now.Add(overlap).Truncate(time.Second); old.ExpiresAt.IsZero() || cutoff.Before(old.ExpiresAt) {
			recs[i].ExpiresAt = cutoff
		}
		recs[i].RotatedTo = newID
		plaintext = formatKey(newID, secret)
		return append(recs, newRec), nil
	})
	if err != nil {
		return "", KeyRecord{}, fmt.Errorf("identity: rotate key %s: %w", id, err)
	}
	newRec.Scopes = slices.Clone(newRec.Scopes)
	return plaintext, newRec, nil
}

// Prune deletes the records of keys that have been dead — revoked, or
// expired — for longer than olderThan at now, and reports how many it
// deleted. Active keys are never pruned. A pruned key is still refused (as
// unknown), so pruning undoes no revocation; it only drops records that no
// longer serve a purpose and keeps the file small.
func (ks *KeyStore) Prune(olderThan time.Duration, now time.Time) (n int, err error) {
	if olderThan < 0 {
		return 0, fmt.Errorf("identity: prune keys: %w: negative age %s", ErrInvalidArgument, olderThan)
	}
	err = ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		n = 0
		kept := recs[:0]
		for _, r := range recs {
			if since, dead := r.deadSince(now); dead && now.Sub(since) > olderThan {
				n++
				continue
			}
			kept = append(kept, r)
		}
		if n == 0 {
			return nil, errNoChange
		}
		return kept, nil
	})
	if err != nil {
		return 0, fmt.Errorf("identity: prune keys: %w", err)
	}
	return n, nil
}

// FlushLastUsed writes the last-used times that Authenticate recorded in
// memory to the store file. It does nothing when no time advanced since the
// last flush. Otherwise, under the store lock, it re-reads the file and sets
// last_used to the later of the file's value and memory's for the ids present
// in that file, and nothing else: a key revoked, rotated or pruned by another
// process in the meantime stays so, and no deleted key comes back. A file it
// cannot read is an error and is left alone; the times stay in memory for the
// next flush.
//
// A server calls it periodically (RunLastUsedFlusher) and once more after it
// stopped serving.
func (ks *KeyStore) FlushLastUsed() error {
	if !ks.usedDirty.Swap(false) {
		return nil
	}
	err := ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		ks.mu.Lock()
		defer ks.mu.Unlock()
		changed := false
		for i := range recs {
			u := ks.used[recs[i].ID]
			if u == nil {
				continue
			}
			if sec := u.Load(); sec > unixSeconds(recs[i].LastUsed) {
				recs[i].LastUsed = time.Unix(sec, 0).UTC()
				changed = true
			}
		}
		if !changed {
			return nil, errNoChange
		}
		return recs, nil
	})
	if err != nil {
		ks.usedDirty.Store(true) // keep the times for the next attempt
		return fmt.Errorf("identity: flush last-used times: %w", err)
	}
	return nil
}

// RunLastUsedFlusher calls FlushLastUsed every interval
// (DefaultLastUsedFlushInterval if <= 0) until ctx is done; run it in its own
// goroutine. It does not flush on exit: the owner calls FlushLastUsed once
// more after it stopped serving. A failing flush is logged when it starts
// failing (or fails differently) and when it recovers; the times are kept in
// memory meanwhile.
func (ks *KeyStore) RunLastUsedFlusher(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultLastUsedFlushInterval
	}
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		switch err := ks.FlushLastUsed(); {
		case err != nil:
			if err.Error() != lastErr {
				logger.Warn("identity: cannot write API key last-used times; keeping them in memory",
					"path", ks.path, "err", err)
			}
			lastErr = err.Error()
		case lastErr != "":
			logger.Info("identity: API key last-used times written again", "path", ks.path)
			lastErr = ""
		}
	}
}

// Reload re-reads the store file now. On failure the store enters the error
// state (Authenticate fails with ErrStoreUnavailable) and the error is
// returned; a later successful reload leaves it.
func (ks *KeyStore) Reload() error {
	ks.poll(true)
	return ks.Healthy()
}

// Watch polls the store file every interval (DefaultWatchInterval if <= 0)
// and reloads it when it changed, so keys created or revoked by another
// process take effect within about one interval. It blocks until ctx is done;
// run it in its own goroutine. Transitions into and out of the error state
// are logged; nothing secret is in the store, so nothing secret is logged.
func (ks *KeyStore) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
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
				logger.Error("identity: API key store unavailable; API key authentication fails closed until it is fixed",
					"path", ks.path, "err", cur.err)
			}
		case old.err != nil:
			logger.Info("identity: API key store recovered", "path", ks.path, "keys", len(cur.keys))
		default:
			logger.Info("identity: API key store reloaded", "path", ks.path, "keys", len(cur.keys))
		}
	}
}

// poll reloads the file if it changed (or always, if force or in the error
// state) and reports the snapshots before and after and whether it replaced
// the keys or the error.
func (ks *KeyStore) poll(force bool) (old, cur *snapshot, replaced bool) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	old = ks.snap.Load()
	if !force && old != nil && old.err == nil {
		if st, err := localfile.StatPath(ks.path); err == nil && st == old.stamp {
			return old, old, false
		}
	}
	next := ks.load()
	if old != nil && old.err == nil && next.err == nil && next.sum == old.sum {
		// Same content under a new stamp (touched, or rewritten identically):
		// keep the keys, remember the stamp.
		if next.stamp != old.stamp {
			ks.snap.Store(&snapshot{keys: old.keys, stamp: next.stamp, sum: old.sum})
		}
		return old, ks.snap.Load(), false
	}
	ks.snap.Store(next)
	return old, next, true
}

// load reads the file into a new snapshot; failures give an error snapshot.
// ks.mu must be held.
func (ks *KeyStore) load() *snapshot {
	data, st, err := readStore(ks.path)
	if err != nil {
		return &snapshot{err: err}
	}
	if !st.Exists {
		return ks.newSnapshot(nil, st, [sha256.Size]byte{})
	}
	recs, err := decodeStore(ks.path, data)
	if err != nil {
		return &snapshot{err: err, stamp: st}
	}
	return ks.newSnapshot(recs, st, sha256.Sum256(data))
}

// errNoChange tells update that the modification is a no-op.
var errNoChange = errors.New("no change")

// update runs one read-modify-write of the store file under the
// cross-process lock and publishes the result in this process.
func (ks *KeyStore) update(modify func([]KeyRecord) ([]KeyRecord, error)) error {
	if ks.path == "" || ks.now == nil {
		return errNotOpened.err
	}
	ks.writeMu.Lock()
	defer ks.writeMu.Unlock()
	// The first write creates the store's directory, private to its owner.
	if err := os.MkdirAll(filepath.Dir(ks.path), 0o700); err != nil {
		return fmt.Errorf("identity: key store: %w", err)
	}
	unlock, err := localfile.Lock(ks.path+".lock", lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	// Re-read under the lock: another process may have written since our snapshot.
	data, _, err := readStore(ks.path)
	if err != nil {
		return err
	}
	var recs []KeyRecord
	if data != nil {
		if recs, err = decodeStore(ks.path, data); err != nil {
			return err // never overwrite a file we cannot read
		}
	}
	recs, err = modify(recs)
	if errors.Is(err, errNoChange) {
		// Nothing to write, but what was just read under the lock may be
		// newer than our snapshot: publish it now rather than at Watch's
		// next tick.
		ks.poll(false)
		return nil
	}
	if err != nil {
		return err
	}
	sortRecords(recs)
	out, err := encodeStore(recs)
	if err != nil {
		return err
	}
	if err := localfile.WriteAtomic(ks.path, out); err != nil {
		return fmt.Errorf("identity: key store: %w", err)
	}
	// Stat while still holding the lock, so the stamp belongs to our content.
	st, err := localfile.StatPath(ks.path)
	if err != nil {
		st = localfile.Stamp{} // Watch will notice the mismatch and re-read
	}
	ks.mu.Lock()
	ks.snap.Store(ks.newSnapshot(recs, st, sha256.Sum256(out)))
	ks.mu.Unlock()
	return nil
}

// newSnapshot builds a snapshot of recs. Each entry gets its id's last-used
// counter, carried over from earlier snapshots and raised to the record's
// last_used; counters of ids no longer present are dropped. ks.mu must be
// held.
func (ks *KeyStore) newSnapshot(recs []KeyRecord, st localfile.Stamp, sum [sha256.Size]byte) *snapshot {
	keys := make(map[string]*entry, len(recs))
	used := make(map[string]*atomic.Int64, len(recs))
	for _, r := range recs {
		h, _ := parseHash(r.Hash) // validated by decodeStore or computed by Create
		u := ks.used[r.ID]
		if u == nil {
			u = new(atomic.Int64)
		}
		advance(u, unixSeconds(r.LastUsed))
		used[r.ID] = u
		keys[r.ID] = &entry{rec: r, hash: h, used: u}
	}
	ks.used = used
	return &snapshot{keys: keys, stamp: st, sum: sum}
}

func sortRecords(recs []KeyRecord) {
	slices.SortFunc(recs, func(a, b KeyRecord) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// readStore reads the store file. A missing file gives nil data and a stamp
// with Exists=false. Errors name the path.
func readStore(path string) ([]byte, localfile.Stamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, localfile.Stamp{}, nil
	}
	if err != nil {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store %s: not a regular file", path)
	}
	if fi.Size() > maxStoreBytes {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store %s: larger than %d bytes", path, maxStoreBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStoreBytes+1))
	if err != nil {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store: read %s: %w", path, err)
	}
	if len(data) > maxStoreBytes {
		return nil, localfile.Stamp{}, fmt.Errorf("identity: key store %s: larger than %d bytes", path, maxStoreBytes)
	}
	if data == nil {
		data = []byte{} // an existing empty file is not a missing file
	}
	return data, localfile.StampOf(fi), nil
}

// decodeStore parses and validates the store document strictly: unknown
// fields, trailing data, a wrong version or any invalid record is an error
// naming the path.
func decodeStore(path string, data []byte) ([]KeyRecord, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("identity: key store %s: corrupt: %s", path, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corrupt(`empty file (an empty store is {"version":1,"keys":[]})`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var kf keyFile
	if err := dec.Decode(&kf); err != nil {
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("trailing data after the document")
	}
	if kf.Version != storeVersion {
		return nil, corrupt("unsupported version %d (want %d)", kf.Version, storeVersion)
	}
	seen := make(map[string]int, len(kf.Keys))
	for i := range kf.Keys {
		r := &kf.Keys[i]
		if r.Kind == "" {
			r.Kind = gateway.KindService
		}
		if err := validateRecord(*r); err != nil {
			return nil, corrupt("keys[%d]: %v", i, err)
		}
		if j, dup := seen[r.ID]; dup {
			return nil, corrupt("keys[%d]: duplicate id %s (also keys[%d])", i, r.ID, j)
		}
		seen[r.ID] = i
	}
	return kf.Keys, nil
}

func validateRecord(r KeyRecord) error {
	if !ValidKeyID(r.ID) {
		return fmt.Errorf("id: must be %d lowercase hex digits", KeyIDLen)
	}
	if _, ok := parseHash(r.Hash); !ok {
		return fmt.Errorf("hash: must be %d lowercase hex digits", 2*sha256.Size)
	}
	if err := validateSubject(r.Subject); err != nil {
		return err
	}
	if err := validateKind(r.Kind); err != nil {
		return err
	}
	if err := validateScopes(r.Scopes); err != nil {
		return err
	}
	if r.CreatedAt.IsZero() {
		return errors.New("created_at: required")
	}
	for _, f := range []struct{ name, id string }{{"rotated_from", r.RotatedFrom}, {"rotated_to", r.RotatedTo}} {
		if f.id != "" && (!ValidKeyID(f.id) || f.id == r.ID) {
			return fmt.Errorf("%s: must be another key's id (%d lowercase hex digits)", f.name, KeyIDLen)
		}
	}
	return nil
}

func encodeStore(recs []KeyRecord) ([]byte, error) {
	if recs == nil {
		recs = []KeyRecord{}
	}
	out, err := json.MarshalIndent(keyFile{Version: storeVersion, Keys: recs}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("identity: key store: encode: %w", err)
	}
	return append(out, '\n'), nil
}

func parseHash(s string) (h [sha256.Size]byte, ok bool) {
	if len(s) != 2*sha256.Size {
		return h, false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, false
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}

// validateSubject accepts 1–256 printable ASCII characters without spaces:
// subjects end up in tables, logs and policy input, where control or
// look-alike characters would cause confusion.
func validateSubject(s string) error {
	if s == "" {
		return errors.New("subject: required")
	}
	if len(s) > maxSubjectLen {
		return fmt.Errorf("subject: longer than %d bytes", maxSubjectLen)
	}
	if !printableASCII(s) {
		return errors.New("subject: only printable ASCII without spaces is allowed")
	}
	return nil
}

func validateKind(k string) error {
	if k != gateway.KindService && k != gateway.KindAgent {
		return fmt.Errorf("kind: must be %q or %q", gateway.KindService, gateway.KindAgent)
	}
	return nil
}

// validateScopes accepts up to 64 distinct scopes of 1–128 printable ASCII
// characters without spaces or commas.
func validateScopes(scopes []string) error {
	if len(scopes) > maxScopes {
		return fmt.Errorf("scopes: more than %d", maxScopes)
	}
	for i, s := range scopes {
		switch {
		case s == "":
			return fmt.Errorf("scopes[%d]: empty", i)
		case len(s) > maxScopeLen:
			return fmt.Errorf("scopes[%d]: longer than %d bytes", i, maxScopeLen)
		case !printableASCII(s) || strings.ContainsRune(s, ','):
			return fmt.Errorf("scopes[%d]: only printable ASCII without spaces or commas is allowed", i)
		case slices.Contains(scopes[:i], s):
			return fmt.Errorf("scopes[%d]: duplicate %q", i, s)
		}
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
