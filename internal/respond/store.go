package respond

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Sanction types.
const (
	Quarantine = "quarantine"
	RequireMFA = "require_mfa"
	Throttle   = "throttle"
)

// Errors of the store. Store errors wrap exactly one of them, or are I/O
// faults (the store could not be read or written).
var (
	ErrInvalid     = errors.New("invalid sanction")
	ErrNotFound    = errors.New("no such sanction")
	ErrLimit       = errors.New("too many sanctions")
	ErrUnavailable = errors.New("sanctions unavailable")
)

// Limits of the store.
const (
	// MaxSanctions bounds the sanctions in force at once.
	MaxSanctions = 100_000
	// MaxReasonBytes bounds a sanction's reason.
	MaxReasonBytes = 512
	// MaxPrincipalIDBytes bounds the id part of a principal key.
	MaxPrincipalIDBytes = 512
	// DefaultWatchInterval is how often Watch looks for changes other
	// processes sharing the file made.
	DefaultWatchInterval = 250 * time.Millisecond

	fileVersion  = 1
	maxFileBytes = 64 << 20
	lockTimeout  = 30 * time.Second
	idPrefix     = "s_"
	idHexLen     = 24
	maxClassLen  = 63
	maxActorLen  = 512
	maxSourceLen = 128
	maxReqIDLen  = 128
)

// Sanction is one sanction in force. Times are UTC.
type Sanction struct {
	ID        string    `json:"id"`              // "s_" and 24 hex digits
	Principal string    `json:"principal"`       // principal key: kind ":" id
	Type      string    `json:"type"`            // quarantine | require_mfa | throttle
	Class     string    `json:"class,omitempty"` // the rate class of a throttle
	Reason    string    `json:"reason"`          // why: the anomaly's reason, or the operator's
	Source    string    `json:"source"`          // "playbook:<name>" or "manual"
	CreatedBy string    `json:"created_by"`      // the operator's principal id, or "warden"
	RequestID string    `json:"request_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Active reports whether s is in force at now.
func (s Sanction) Active(now time.Time) bool { return now.Before(s.ExpiresAt) }

// Active is what is in force on one principal.
type Active struct {
	Quarantine bool
	RequireMFA bool
	Throttle   string // the class; "" when not throttled
}

// None reports whether nothing is in force.
func (a Active) None() bool { return !a.Quarantine && !a.RequireMFA && a.Throttle == "" }

// principalKey is a principal key split, so that a lookup builds no string.
type principalKey struct{ kind, id string }

// bound is what is in force on a principal, with the end of each part.
type bound struct {
	quarantine, mfa, throttle time.Time
	class                     string
}

// snapshot is an immutable view of the store; err != nil is the
// fail-closed error state.
type snapshot struct {
	list  []Sanction // sorted by ID
	by    map[principalKey]*bound
	next  time.Time // the earliest expiry; zero when empty
	err   error
	stamp localfile.Stamp
	sum   [sha256.Size]byte
}

func newSnapshot(list []Sanction, st localfile.Stamp, sum [sha256.Size]byte) *snapshot {
	s := &snapshot{list: list, by: make(map[principalKey]*bound, len(list)), stamp: st, sum: sum}
	for _, x := range list {
		kind, id, _ := SplitPrincipal(x.Principal) // validated by decode and Apply
		k := principalKey{kind, id}
		b := s.by[k]
		if b == nil {
			b = &bound{}
			s.by[k] = b
		}
		switch x.Type {
		case Quarantine:
			b.quarantine = x.ExpiresAt
		case RequireMFA:
			b.mfa = x.ExpiresAt
		case Throttle:
			b.throttle, b.class = x.ExpiresAt, x.Class
		}
		if s.next.IsZero() || x.ExpiresAt.Before(s.next) {
			s.next = x.ExpiresAt
		}
	}
	return s
}

// Store keeps the sanctions in force in a JSON file, {"version":1,
// "sanctions":[...]}, shared by every warden process that names it. Writers
// serialise with an advisory lock on path+".lock", re-read the file under
// it, and replace it atomically (temporary file, fsync, rename, directory
// fsync) before they publish the change or report success. Readers use an
// immutable snapshot.
type Store struct {
	path string
	now  func() time.Time

	snap    atomic.Pointer[snapshot]
	mu      sync.Mutex // serialises reading the file and publishing a snapshot
	writeMu sync.Mutex // queues this process's writers before the file lock
	existed atomic.Bool
}

// Open opens the store at path. A missing file is an empty store (created by
// the first write); a file that cannot be read or parsed is an error, and
// warden does not start.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("respond: sanctions store: empty path")
	}
	s := &Store{path: filepath.Clean(path), now: time.Now}
	snap := s.load()
	if snap.err != nil {
		return nil, snap.err
	}
	s.snap.Store(snap)
	return s, nil
}

var errNotOpened = &snapshot{err: fmt.Errorf("respond: %w: store not opened (use Open)", ErrUnavailable)}

func (s *Store) current() *snapshot {
	if s == nil {
		return errNotOpened
	}
	if p := s.snap.Load(); p != nil {
		return p
	}
	return errNotOpened
}

// Path is the store file.
func (s *Store) Path() string { return s.path }

// Healthy returns nil while the store serves, or an error wrapping
// ErrUnavailable (for /readyz).
func (s *Store) Healthy() error { return s.current().err }

// Lookup returns what is in force on the principal kind:id at now. While
// the store is in its error state it returns an error wrapping
// ErrUnavailable; the caller refuses the request. It is lock-free and does
// not allocate.
func (s *Store) Lookup(kind, id string, now time.Time) (Active, error) {
	snap := s.current()
	if snap.err != nil {
		return Active{}, snap.err
	}
	b := snap.by[principalKey{kind, id}]
	if b == nil {
		return Active{}, nil
	}
	var a Active
	a.Quarantine = now.Before(b.quarantine)
	a.RequireMFA = now.Before(b.mfa)
	if now.Before(b.throttle) {
		a.Throttle = b.class
	}
	return a, nil
}

// List returns the sanctions in force at now, on principal only when it is
// not "", ordered by expiry (soonest first).
func (s *Store) List(principal string, now time.Time) ([]Sanction, error) {
	snap := s.current()
	if snap.err != nil {
		return nil, snap.err
	}
	out := []Sanction{}
	for _, x := range snap.list {
		if x.Active(now) && (principal == "" || x.Principal == principal) {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b Sanction) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Due reports whether a sanction has ended by now and waits for Expire.
func (s *Store) Due(now time.Time) bool {
	snap := s.current()
	return snap.err == nil && !snap.next.IsZero() && !now.Before(snap.next)
}

// Apply imposes x (its ID, CreatedAt are set here when empty) and returns
// the sanction in force afterwards and whether it changed. A principal
// holds at most one sanction of each type: when one in force ends at or
// after x (and, for a throttle, names the same class) it is kept and
// changed is false; otherwise x replaces it. The change is on disk before
// Apply returns; an error means nothing changed.
func (s *Store) Apply(x Sanction) (Sanction, bool, error) {
	now := s.now().UTC()
	if x.CreatedAt.IsZero() {
		x.CreatedAt = now
	}
	x.CreatedAt = x.CreatedAt.UTC()
	x.ExpiresAt = x.ExpiresAt.UTC()
	if x.ID == "" {
		id, err := newID()
		if err != nil {
			return Sanction{}, false, err
		}
		x.ID = id
	}
	if err := validate(x); err != nil {
		return Sanction{}, false, err
	}
	if !x.ExpiresAt.After(now) {
		return Sanction{}, false, fmt.Errorf("respond: %w: it would end at once", ErrInvalid)
	}
	result, changed := x, false
	err := s.update(func(list []Sanction) ([]Sanction, error) {
		i := slices.IndexFunc(list, func(y Sanction) bool { return y.Principal == x.Principal && y.Type == x.Type })
		if i >= 0 && list[i].Active(now) && !list[i].ExpiresAt.Before(x.ExpiresAt) && list[i].Class == x.Class {
			result = list[i]
			return nil, nil // no change
		}
		if i >= 0 {
			list = slices.Delete(list, i, i+1)
		}
		if slices.ContainsFunc(list, func(y Sanction) bool { return y.ID == x.ID }) {
			return nil, fmt.Errorf("respond: %w: id %s is taken", ErrInvalid, x.ID)
		}
		if len(list) >= MaxSanctions {
			return nil, fmt.Errorf("respond: %w: %d in force", ErrLimit, len(list))
		}
		changed = true
		return append(list, x), nil
	})
	if err != nil {
		return Sanction{}, false, err
	}
	return result, changed, nil
}

// Lift ends the sanction id at once and returns it. The change is on disk
// before Lift returns.
func (s *Store) Lift(id string) (Sanction, error) {
	if !ValidID(id) {
		return Sanction{}, fmt.Errorf("respond: %w", ErrNotFound)
	}
	now := s.now().UTC()
	var lifted Sanction
	err := s.update(func(list []Sanction) ([]Sanction, error) {
		i := slices.IndexFunc(list, func(y Sanction) bool { return y.ID == id })
		if i < 0 || !list[i].Active(now) {
			return nil, fmt.Errorf("respond: %w", ErrNotFound)
		}
		lifted = list[i]
		return slices.Delete(list, i, i+1), nil
	})
	if err != nil {
		return Sanction{}, err
	}
	return lifted, nil
}

// Expire removes the sanctions that ended by now, each only after record
// accepted it (the audit record of the lapse), and returns those removed.
// A record error stops the sweep; the sanctions not recorded stay in the
// file (inactive) for the next sweep.
func (s *Store) Expire(now time.Time, record func(Sanction) error) ([]Sanction, error) {
	now = now.UTC()
	var done []Sanction
	var recErr error
	err := s.update(func(list []Sanction) ([]Sanction, error) {
		keep := list[:0:0]
		for _, x := range list {
			if x.Active(now) || recErr != nil {
				keep = append(keep, x)
				continue
			}
			if err := record(x); err != nil {
				recErr = err
				keep = append(keep, x)
				continue
			}
			done = append(done, x)
		}
		if len(done) == 0 {
			return nil, nil
		}
		return keep, nil
	})
	if err != nil {
		// The lapses were recorded but not removed: the next sweep records
		// them again, which says the same thing twice, never nothing.
		return nil, err
	}
	return done, recErr
}

// Reload re-reads the file now and publishes it.
func (s *Store) Reload() error {
	_, cur, _ := s.poll(true)
	return cur.err
}

// Watch polls the file every interval until ctx ends and publishes changes
// other processes made. A file that cannot be read puts the store in its
// error state (requests are refused) until it can be read again.
func (s *Store) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		old, cur, replaced := s.poll(n%20 == 0)
		switch {
		case !replaced:
		case cur.err != nil && (old.err == nil || old.err.Error() != cur.err.Error()):
			logger.Error("respond: sanctions store unreadable; refusing every request until it is fixed", "path", s.path, "err", cur.err)
		case cur.err == nil && old.err != nil:
			logger.Info("respond: sanctions store readable again", "path", s.path, "sanctions", len(cur.list))
		case cur.err == nil:
			logger.Info("respond: sanctions store reloaded", "path", s.path, "sanctions", len(cur.list))
		}
	}
}

// poll re-reads the file when its stamp changed (or force) and publishes
// a new snapshot when its content changed.
func (s *Store) poll(force bool) (old, cur *snapshot, replaced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old = s.current()
	if !force && old.err == nil {
		st, err := localfile.StatPath(s.path)
		if err == nil && st == old.stamp {
			return old, old, false
		}
	}
	cur = s.load()
	if cur.err == nil && old.err == nil && cur.sum == old.sum {
		return old, old, false
	}
	s.snap.Store(cur)
	return old, cur, true
}

// errVanished: a file that disappears is an error, not an empty store
// (which would lift every sanction).
var errVanished = errors.New("the file disappeared; restore it (or restart warden to start an empty store)")

func (s *Store) load() *snapshot {
	data, st, err := localfile.ReadFile(s.path, maxFileBytes)
	if err != nil {
		return &snapshot{err: fmt.Errorf("respond: %w: %w", ErrUnavailable, err)}
	}
	if data == nil {
		if s.existed.Load() {
			return &snapshot{err: fmt.Errorf("respond: %w: %s: %w", ErrUnavailable, s.path, errVanished), stamp: st}
		}
		return newSnapshot(nil, st, [sha256.Size]byte{})
	}
	s.existed.Store(true)
	list, err := Decode(data)
	if err != nil {
		return &snapshot{err: fmt.Errorf("respond: %w: %s: %w", ErrUnavailable, s.path, err), stamp: st}
	}
	return newSnapshot(list, st, sha256.Sum256(data))
}

// update runs one read-modify-write under the cross-process lock. modify
// gets a copy of the list read under the lock and returns the new list, or
// nil for no change. Ended sanctions are never dropped here: only Expire
// removes them, after their lapse is recorded.
func (s *Store) update(modify func([]Sanction) ([]Sanction, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("respond: %w: %w", ErrUnavailable, err)
	}
	unlock, err := localfile.Lock(s.path+".lock", lockTimeout)
	if err != nil {
		return fmt.Errorf("respond: %w: %w", ErrUnavailable, err)
	}
	defer unlock()
	data, _, err := localfile.ReadFile(s.path, maxFileBytes)
	if err != nil {
		return fmt.Errorf("respond: %w: %w", ErrUnavailable, err)
	}
	if data == nil && s.existed.Load() {
		return fmt.Errorf("respond: %w: %s: %w", ErrUnavailable, s.path, errVanished)
	}
	var list []Sanction
	if data != nil {
		if list, err = Decode(data); err != nil {
			return fmt.Errorf("respond: %w: %s: %w", ErrUnavailable, s.path, err) // never overwrite what we cannot read
		}
	}
	next, err := modify(slices.Clone(list))
	if err != nil || next == nil {
		if err == nil {
			s.publishRead(data, list)
		}
		return err
	}
	out, err := Encode(next)
	if err != nil {
		return err
	}
	if err := localfile.WriteAtomic(s.path, out); err != nil {
		return fmt.Errorf("respond: %w: write %s: %w", ErrUnavailable, s.path, err)
	}
	s.existed.Store(true)
	st, err := localfile.StatPath(s.path)
	if err != nil {
		st = localfile.Stamp{} // Watch notices the mismatch and re-reads
	}
	sorted, _ := Decode(out) // the canonical, sorted form of what was written
	s.mu.Lock()
	s.snap.Store(newSnapshot(sorted, st, sha256.Sum256(out)))
	s.mu.Unlock()
	return nil
}

// publishRead publishes what update read under the lock when it changed
// nothing, so that this process sees other processes' writes at once.
func (s *Store) publishRead(data []byte, list []Sanction) {
	sum := [sha256.Size]byte{}
	if data != nil {
		sum = sha256.Sum256(data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.current(); cur.err == nil && cur.sum == sum {
		return
	}
	st, err := localfile.StatPath(s.path)
	if err != nil {
		st = localfile.Stamp{}
	}
	s.snap.Store(newSnapshot(list, st, sum))
}

// storeFile is the on-disk document.
type storeFile struct {
	Version   int        `json:"version"`
	Sanctions []Sanction `json:"sanctions"`
}

// Decode parses a store file strictly: unknown fields, trailing data, a
// wrong version, an invalid sanction, a duplicate id, or two sanctions of
// one type on one principal make the whole file corrupt. The result is
// sorted by id.
func Decode(data []byte) ([]Sanction, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("corrupt: empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f storeFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("corrupt: data after the document")
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("corrupt: version %d (want %d)", f.Version, fileVersion)
	}
	if len(f.Sanctions) > MaxSanctions {
		return nil, fmt.Errorf("corrupt: %d sanctions (at most %d)", len(f.Sanctions), MaxSanctions)
	}
	ids := make(map[string]bool, len(f.Sanctions))
	kinds := make(map[[2]string]bool, len(f.Sanctions))
	for i, x := range f.Sanctions {
		if err := validate(x); err != nil {
			return nil, fmt.Errorf("corrupt: sanctions[%d]: %w", i, err)
		}
		if ids[x.ID] {
			return nil, fmt.Errorf("corrupt: sanctions[%d]: duplicate id %s", i, x.ID)
		}
		ids[x.ID] = true
		k := [2]string{x.Principal, x.Type}
		if kinds[k] {
			return nil, fmt.Errorf("corrupt: sanctions[%d]: a second %s sanction on one principal", i, x.Type)
		}
		kinds[k] = true
		f.Sanctions[i].CreatedAt = x.CreatedAt.UTC()
		f.Sanctions[i].ExpiresAt = x.ExpiresAt.UTC()
	}
	slices.SortFunc(f.Sanctions, func(a, b Sanction) int { return strings.Compare(a.ID, b.ID) })
	return f.Sanctions, nil
}

// Encode writes the store file for list, sorted by id.
func Encode(list []Sanction) ([]byte, error) {
	l := slices.Clone(list)
	if l == nil {
		l = []Sanction{}
	}
	slices.SortFunc(l, func(a, b Sanction) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(storeFile{Version: fileVersion, Sanctions: l}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("respond: encode: %w", err)
	}
	return append(b, '\n'), nil
}

// validate checks one sanction's fields.
func validate(x Sanction) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("respond: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !ValidID(x.ID) {
		return bad("id must be s_ and %d lowercase hex digits", idHexLen)
	}
	if _, _, err := SplitPrincipal(x.Principal); err != nil {
		return err
	}
	switch x.Type {
	case Quarantine, RequireMFA:
		if x.Class != "" {
			return bad("only a throttle has a class")
		}
	case Throttle:
		if !ValidClass(x.Class) {
			return bad("a throttle needs a class: 1-63 lower case letters, digits, '_', '.' or '-'")
		}
	default:
		return bad("type must be quarantine, require_mfa or throttle")
	}
	if len(x.Reason) > MaxReasonBytes || !printable(x.Reason) {
		return bad("reason must be at most %d bytes of printable text", MaxReasonBytes)
	}
	if x.Source == "" || len(x.Source) > maxSourceLen || !printable(x.Source) {
		return bad("source must be 1-%d bytes of printable text", maxSourceLen)
	}
	if x.CreatedBy == "" || len(x.CreatedBy) > maxActorLen || !printable(x.CreatedBy) {
		return bad("created_by must be 1-%d bytes of printable text", maxActorLen)
	}
	if len(x.RequestID) > maxReqIDLen || !printable(x.RequestID) {
		return bad("request_id must be at most %d bytes of printable text", maxReqIDLen)
	}
	if x.CreatedAt.IsZero() || x.ExpiresAt.IsZero() || !x.ExpiresAt.After(x.CreatedAt) {
		return bad("created_at and expires_at are required, expires_at after created_at")
	}
	if x.CreatedAt.Year() > 9999 || x.ExpiresAt.Year() > 9999 || x.CreatedAt.Year() < 1 {
		return bad("times must be within years 1 to 9999")
	}
	return nil
}

// Principal kinds a sanction can bind.
var principalKinds = map[string]bool{"user": true, "service": true, "agent": true}

// SplitPrincipal splits a principal key, kind ":" id, and checks it: kind
// is user, service or agent; id is 1-512 bytes of printable text.
func SplitPrincipal(key string) (kind, id string, err error) {
	kind, id, ok := strings.Cut(key, ":")
	switch {
	case !ok || !principalKinds[kind]:
		return "", "", fmt.Errorf("respond: %w: principal must be kind:id with kind user, service or agent", ErrInvalid)
	case id == "" || len(id) > MaxPrincipalIDBytes || !printable(id) || strings.ContainsAny(id, " \t"):
		return "", "", fmt.Errorf("respond: %w: principal id must be 1-%d bytes of printable text without spaces", ErrInvalid, MaxPrincipalIDBytes)
	}
	return kind, id, nil
}

// ValidID reports whether id has the form of a sanction id.
func ValidID(id string) bool {
	if len(id) != len(idPrefix)+idHexLen || !strings.HasPrefix(id, idPrefix) {
		return false
	}
	for i := len(idPrefix); i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidClass reports whether name has the form of a limits class name.
func ValidClass(name string) bool {
	if name == "" || len(name) > maxClassLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '_' || c == '.' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

func newID() (string, error) {
	var b [idHexLen / 2]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("respond: random id: %w", err)
	}
	return idPrefix + hex.EncodeToString(b[:]), nil
}

// printable reports whether s is valid UTF-8 without control or format
// characters (no terminal escapes, no bidi overrides).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) && r != ' ' {
			return false
		}
	}
	return true
}
