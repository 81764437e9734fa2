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
)

// KeyRecord is one stored API key. It holds the hash of the secret, never
// the secret or the key.
type KeyRecord struct {
	ID        string    `json:"id"`
	Hash      string    `json:"hash"` // lowercase hex SHA-256 of the secret text
	Subject   string    `json:"subject"`
	Kind      string    `json:"kind"` // service | agent
	Scopes    []string  `json:"scopes,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never expires
	RevokedAt time.Time `json:"revoked_at,omitzero"` // zero: not revoked
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
}

// snapshot is an immutable view of the store. Exactly one of keys (possibly
// empty) and err is meaningful: err != nil is the fail-closed error state.
type snapshot struct {
	keys  map[string]*entry
	err   error
	stamp fileStamp         // stat of the file the snapshot was read from
	sum   [sha256.Size]byte // SHA-256 of the file content; zero if the file is missing
}

// fileStamp identifies one version of the store file cheaply.
type fileStamp struct {
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64 // UnixNano
}

// KeyStore holds API keys for service accounts and agents, hashed, in a JSON
// file. Authenticate is lock-free: it reads an immutable snapshot published
// through an atomic pointer. Create and Revoke serialise across processes with
// an advisory lock on path+".lock", re-read the file under the lock, and
// replace it atomically, so concurrent CLI invocations never lose writes.
type KeyStore struct {
	path string
	now  func() time.Time

	snap atomic.Pointer[snapshot]
	// mu serialises reading the file and publishing a snapshot within this
	// process, so a slow reload can never publish content older than what a
	// concurrent write already published.
	mu sync.Mutex
	// writeMu queues this process's writers fairly before they contend for
	// the cross-process file lock.
	writeMu sync.Mutex
}

// OpenKeyStore opens the key store at path. A missing file is an empty store
// (it is created by the first Create); a file that cannot be read or parsed is
// an error naming the path.
func OpenKeyStore(path string) (*KeyStore, error) {
	if path == "" {
		return nil, errors.New("identity: key store: empty path")
	}
	ks := &KeyStore{path: filepath.Clean(path), now: time.Now}
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
	return gateway.Principal{
		Kind:         e.rec.Kind,
		ID:           e.rec.Subject,
		AuthMethod:   "api_key",
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

// Healthy returns nil when the store is serving, or an error wrapping
// ErrStoreUnavailable when the last reload failed (for /readyz).
func (ks *KeyStore) Healthy() error {
	if s := ks.current(); s.err != nil {
		return fmt.Errorf("identity: %w: %w", ErrStoreUnavailable, s.err)
	}
	return nil
}

// List returns the keys in the current snapshot, oldest first. It returns
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
		out = append(out, r)
	}
	sortRecords(out)
	return out
}

// Create makes a new key for subject and returns it in plaintext together
// with its record. The plaintext is returned once and stored nowhere. kind
// defaults to service; ttl 0 means the key never expires. Invalid arguments
// wrap ErrInvalidArgument.
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
	err = ks.update(func(recs []KeyRecord) ([]KeyRecord, error) {
		var id, secret string
		for {
			var err error
			if id, secret, err = newKey(); err != nil {
				return nil, err
			}
			// 96 random bits make a collision practically impossible; checking
			// costs nothing and keeps ids unique even with a broken RNG seed.
			if !slices.ContainsFunc(recs, func(r KeyRecord) bool { return r.ID == id }) {
				break
			}
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
		if st, err := statPath(ks.path); err == nil && st == old.stamp {
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
func (ks *KeyStore) load() *snapshot {
	data, st, err := readStore(ks.path)
	if err != nil {
		return &snapshot{err: err}
	}
	if !st.exists {
		return &snapshot{keys: map[string]*entry{}, stamp: st}
	}
	recs, err := decodeStore(ks.path, data)
	if err != nil {
		return &snapshot{err: err, stamp: st}
	}
	return newSnapshot(recs, st, sha256.Sum256(data))
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
	unlock, err := lockFile(ks.path+".lock", lockTimeout)
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
	if err := writeFileAtomic(ks.path, out); err != nil {
		return err
	}
	// Stat while still holding the lock, so the stamp belongs to our content.
	st, err := statPath(ks.path)
	if err != nil {
		st = fileStamp{} // Watch will notice the mismatch and re-read
	}
	ks.mu.Lock()
	ks.snap.Store(newSnapshot(recs, st, sha256.Sum256(out)))
	ks.mu.Unlock()
	return nil
}

func newSnapshot(recs []KeyRecord, st fileStamp, sum [sha256.Size]byte) *snapshot {
	keys := make(map[string]*entry, len(recs))
	for _, r := range recs {
		h, _ := parseHash(r.Hash) // validated by decodeStore or computed by Create
		keys[r.ID] = &entry{rec: r, hash: h}
	}
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
// with exists=false. Errors name the path.
func readStore(path string) ([]byte, fileStamp, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fileStamp{}, nil
	}
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("identity: key store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("identity: key store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fileStamp{}, fmt.Errorf("identity: key store %s: not a regular file", path)
	}
	if fi.Size() > maxStoreBytes {
		return nil, fileStamp{}, fmt.Errorf("identity: key store %s: larger than %d bytes", path, maxStoreBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxStoreBytes+1))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("identity: key store: read %s: %w", path, err)
	}
	if len(data) > maxStoreBytes {
		return nil, fileStamp{}, fmt.Errorf("identity: key store %s: larger than %d bytes", path, maxStoreBytes)
	}
	if data == nil {
		data = []byte{} // an existing empty file is not a missing file
	}
	return data, stampOf(fi), nil
}

// statPath returns the stamp of the file at path; a missing file is a valid
// stamp with exists=false.
func statPath(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return stampOf(fi), nil
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

// writeFileAtomic replaces path with data: a temporary file in the same
// directory (mode 0600) is written and fsynced, renamed over path, and the
// directory is fsynced so the rename survives a crash. Readers see the old
// file or the new one, never a mix.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("identity: key store: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return fmt.Errorf("identity: key store: %w", err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("identity: key store: write %s: %w", tmp, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("identity: key store: sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("identity: key store: close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("identity: key store: %w", err)
	}
	if err = syncDir(dir); err != nil {
		// The new file is in place; only its durability across a crash is in doubt.
		return fmt.Errorf("identity: key store: sync directory %s: %w", dir, err)
	}
	return nil
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
