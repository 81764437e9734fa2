// Package revoke is warden's durable list of revoked tokens and subjects; it
// fails closed: while the list cannot be read, every check reports an error
// wrapping ErrUnavailable (and the bool checks report "revoked").
//
// An entry revokes one token by its jti (kind "token") or every token of a
// principal issued at or before the revocation (kind "subject"). Entries
// carry the time after which they can be dropped: a token's expiry, or a
// retention period for subjects. The list is a JSON file shared by every
// warden process and the `warden token revoke` command: writers serialise
// with an advisory lock and replace the file atomically; readers poll it
// (Watch) and check a lock-free, immutable snapshot. A missing file is an
// empty list at Open; a file that disappears later is an error, never an
// empty list.
package revoke

import (
	"bytes"
	"context"
	"crypto/sha256"
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

// Entry kinds.
const (
	KindToken   = "token"   // Value is a token's jti
	KindSubject = "subject" // Value is a principal id (a token's sub, or its act.sub)
)

// Defaults and limits.
const (
	// DefaultRetention is how long an entry without Until is kept: long
	// enough to outlive every token it can concern.
	DefaultRetention = 30 * 24 * time.Hour
	// DefaultWatchInterval is the polling interval Watch uses when given none.
	DefaultWatchInterval = 250 * time.Millisecond

	fileVersion    = 1
	maxFileBytes   = 64 << 20
	maxValueLen    = 256
	maxReasonLen   = 256
	fullCheckEvery = 20 // Watch re-reads and hashes the file every so many ticks regardless of its stamp
	lockTimeout    = 30 * time.Second
)

// Errors. Check errors wrap exactly one of ErrRevoked and ErrUnavailable.
var (
	ErrUnavailable = errors.New("revocation list unavailable")
	ErrRevoked     = errors.New("revoked")
	ErrInvalid     = errors.New("invalid revocation")
)

// Entry is one revocation.
type Entry struct {
	Kind  string `json:"kind"`  // KindToken or KindSubject
	Value string `json:"value"` // jti or principal id
	// Until is when the entry can be dropped: for a token its expiry; for a
	// subject the end of the block (default At + DefaultRetention).
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
	// At is when the revocation was made. A subject revocation ends the
	// tokens of that subject issued at or before At (whole seconds).
	At time.Time `json:"at"`
}

type entryKey struct{ kind, value string }

// listFile is the on-disk document: {"version":1,"entries":[...]}.
type listFile struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
}

// snapshot is an immutable view of the list; err != nil is the fail-closed
// error state.
type snapshot struct {
	entries map[entryKey]Entry
	err     error
	stamp   localfile.Stamp
	sum     [sha256.Size]byte
}

// List is the revocation list. Checks are lock-free: they read an immutable
// snapshot published through an atomic pointer.
type List struct {
	path string
	now  func() time.Time

	snap    atomic.Pointer[snapshot]
	mu      sync.Mutex // serialises reading the file and publishing a snapshot
	writeMu sync.Mutex // queues this process's writers before the file lock
	// existed is set once the file was seen; a file that disappears later
	// is an error, not an empty list (which would un-revoke everything).
	existed atomic.Bool
}

// errVanished is the error state of a list whose file disappeared.
var errVanished = errors.New("the file disappeared; restore it (or restart warden to start an empty list)")

// Open opens the list at path. A missing file is an empty list (created by
// the first Revoke); a file that cannot be read or parsed is an error.
func Open(path string) (*List, error) {
	if path == "" {
		return nil, errors.New("revoke: empty path")
	}
	l := &List{path: filepath.Clean(path), now: time.Now}
	s := l.load()
	if s.err != nil {
		return nil, s.err
	}
	l.snap.Store(s)
	return l, nil
}

var errNotOpened = &snapshot{err: fmt.Errorf("revoke: %w: list not opened (use Open)", ErrUnavailable)}

func (l *List) current() *snapshot {
	if l == nil {
		return errNotOpened
	}
	if s := l.snap.Load(); s != nil {
		return s
	}
	return errNotOpened
}

// Path is the list file's path.
func (l *List) Path() string { return l.path }

// Healthy returns nil while the list is serving, or an error wrapping
// ErrUnavailable when the last reload failed (for /readyz).
func (l *List) Healthy() error {
	if s := l.current(); s.err != nil {
		return unavailable(s.err)
	}
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("revoke: %w: %w", ErrUnavailable, err)
}

// IsRevoked reports whether an entry of kind for value is in force at now.
// While the list is unavailable it reports true (fail closed); use Check or
// Healthy to tell the two apart.
func (l *List) IsRevoked(kind, value string, now time.Time) bool {
	s := l.current()
	if s.err != nil {
		return true
	}
	e, ok := s.entries[entryKey{kind, value}]
	return ok && now.Before(e.Until)
}

// RevokedSubject reports whether the subject id was revoked, at now, for a
// token issued at issuedAt: a subject revocation ends the tokens issued at or
// before it, not later ones. While the list is unavailable it reports true.
func (l *List) RevokedSubject(id string, issuedAt, now time.Time) bool {
	s := l.current()
	if s.err != nil {
		return true
	}
	return s.subjectRevoked(id, issuedAt, now)
}

func (s *snapshot) subjectRevoked(id string, issuedAt, now time.Time) bool {
	e, ok := s.entries[entryKey{KindSubject, id}]
	return ok && now.Before(e.Until) && !issuedAt.After(e.At)
}

// Check reports whether a token is still good at now: nil, or an error
// wrapping ErrRevoked (its jti is revoked, or one of subjects was revoked at
// or after issuedAt) or ErrUnavailable (fail closed). Empty subjects are
// skipped.
func (l *List) Check(jti string, subjects []string, issuedAt, now time.Time) error {
	s := l.current()
	if s.err != nil {
		return unavailable(s.err)
	}
	if e, ok := s.entries[entryKey{KindToken, jti}]; ok && now.Before(e.Until) {
		return fmt.Errorf("revoke: token %s: %w at %s", jti, ErrRevoked, e.At.UTC().Format(time.RFC3339))
	}
	for _, id := range subjects {
		if id != "" && s.subjectRevoked(id, issuedAt, now) {
			return fmt.Errorf("revoke: subject %q: %w", id, ErrRevoked)
		}
	}
	return nil
}

// Entries returns the entries of the current snapshot (expired ones
// included until the next write prunes them), oldest first; nil while the
// list is unavailable.
func (l *List) Entries() []Entry {
	s := l.current()
	if s.err != nil {
		return nil
	}
	out := make([]Entry, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, e)
	}
	sortEntries(out)
	return out
}

// Revoke adds e to the list durably (the file is replaced atomically and
// fsynced before Revoke returns) and publishes it in this process. At
// defaults to now and is truncated to whole seconds; Until defaults to At +
// DefaultRetention and must be in the future. Revoking what is already
// revoked merges the two: the later Until wins and, for a subject, the later
// At (which ends more tokens). Entries past their Until are dropped.
// Invalid entries give an error wrapping ErrInvalid.
func (l *List) Revoke(e Entry) error {
	if l == nil || l.path == "" || l.now == nil {
		return errNotOpened.err
	}
	now := l.now()
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC().Truncate(time.Second)
	if e.Until.IsZero() {
		e.Until = e.At.Add(DefaultRetention)
	}
	e.Until = e.Until.UTC()
	if err := validateEntry(e); err != nil {
		return fmt.Errorf("revoke: %w: %w", ErrInvalid, err)
	}
	if !e.Until.After(now) {
		return fmt.Errorf("revoke: %w: until %s is not in the future", ErrInvalid, e.Until.Format(time.RFC3339))
	}
	err := l.update(now, func(m map[entryKey]Entry) bool {
		k := entryKey{e.Kind, e.Value}
		old, ok := m[k]
		if !ok {
			m[k] = e
			return true
		}
		merged := old
		if e.Until.After(merged.Until) {
			merged.Until = e.Until
		}
		if e.Kind == KindSubject && e.At.After(merged.At) {
			merged.At = e.At
		}
		if e.Reason != "" {
			merged.Reason = e.Reason
		}
		if merged == old {
			return false
		}
		m[k] = merged
		return true
	})
	if err != nil {
		return fmt.Errorf("revoke: %s %q: %w", e.Kind, e.Value, err)
	}
	return nil
}

// Reload re-reads the list file now. On failure the list enters the error
// state and the error is returned; a later successful reload leaves it.
func (l *List) Reload() error {
	l.poll(true)
	return l.Healthy()
}

// Watch polls the list file every interval (DefaultWatchInterval if <= 0)
// and reloads it when it changed, so revocations written by another process
// take effect within about one interval. It blocks until ctx is done.
// Transitions into and out of the error state are logged. Entries hold
// token ids and principal ids, no secrets.
func (l *List) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
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
		old, cur, replaced := l.poll(tick%fullCheckEvery == 0)
		if !replaced {
			continue
		}
		switch {
		case cur.err != nil:
			if old.err == nil || old.err.Error() != cur.err.Error() {
				logger.Error("revoke: revocation list unavailable; warden tokens are refused until it is fixed",
					"path", l.path, "err", cur.err)
			}
		case old.err != nil:
			logger.Info("revoke: revocation list recovered", "path", l.path, "entries", len(cur.entries))
		default:
			logger.Info("revoke: revocation list reloaded", "path", l.path, "entries", len(cur.entries))
		}
	}
}

// poll reloads the file if it changed (or always, if force or in the error
// state) and reports the snapshots before and after and whether it replaced
// the entries or the error.
func (l *List) poll(force bool) (old, cur *snapshot, replaced bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old = l.current()
	if !force && old.err == nil {
		if st, err := localfile.StatPath(l.path); err == nil && st == old.stamp {
			return old, old, false
		}
	}
	next := l.load()
	if old.err == nil && next.err == nil && next.sum == old.sum {
		if next.stamp != old.stamp {
			l.snap.Store(&snapshot{entries: old.entries, stamp: next.stamp, sum: old.sum})
		}
		return old, l.snap.Load(), false
	}
	l.snap.Store(next)
	return old, next, true
}

func (l *List) load() *snapshot {
	data, st, err := localfile.ReadFile(l.path, maxFileBytes)
	if err != nil {
		return &snapshot{err: unavailable(err)}
	}
	if !st.Exists {
		if l.existed.Load() {
			return &snapshot{err: unavailable(fmt.Errorf("%s: %w", l.path, errVanished))}
		}
		return &snapshot{entries: map[entryKey]Entry{}, stamp: st}
	}
	l.existed.Store(true)
	m, err := decode(l.path, data)
	if err != nil {
		return &snapshot{err: unavailable(err), stamp: st}
	}
	return &snapshot{entries: m, stamp: st, sum: sha256.Sum256(data)}
}

// update runs one read-modify-write of the file under the cross-process
// lock, drops expired entries, and publishes the result in this process.
// modify reports whether it changed anything.
func (l *List) update(now time.Time, modify func(map[entryKey]Entry) bool) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	unlock, err := localfile.Lock(l.path+".lock", lockTimeout)
	if err != nil {
		return err
	}
	defer unlock()

	// Re-read under the lock: another process may have written since.
	data, _, err := localfile.ReadFile(l.path, maxFileBytes)
	if err != nil {
		return err
	}
	if data == nil && l.existed.Load() {
		return fmt.Errorf("%s: %w", l.path, errVanished) // never start over silently
	}
	m := map[entryKey]Entry{}
	if data != nil {
		if m, err = decode(l.path, data); err != nil {
			return err // never overwrite a file we cannot read
		}
	}
	changed := modify(m)
	for k, e := range m {
		if !now.Before(e.Until) {
			delete(m, k)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	out, err := encode(m)
	if err != nil {
		return err
	}
	if err := localfile.WriteAtomic(l.path, out); err != nil {
		return err
	}
	l.existed.Store(true)
	st, err := localfile.StatPath(l.path)
	if err != nil {
		st = localfile.Stamp{} // Watch will notice the mismatch and re-read
	}
	l.mu.Lock()
	l.snap.Store(&snapshot{entries: m, stamp: st, sum: sha256.Sum256(out)})
	l.mu.Unlock()
	return nil
}

// decode parses the document strictly: unknown fields, trailing data, a
// wrong version or an invalid entry make the whole file corrupt. Duplicate
// entries are merged the way Revoke merges them.
func decode(path string, data []byte) (map[entryKey]Entry, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("revoke: %s: corrupt: %s", path, fmt.Sprintf(format, args...))
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corrupt(`empty file (an empty list is {"version":1,"entries":[]})`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f listFile
	if err := dec.Decode(&f); err != nil {
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("trailing data after the document")
	}
	if f.Version != fileVersion {
		return nil, corrupt("unsupported version %d (want %d)", f.Version, fileVersion)
	}
	m := make(map[entryKey]Entry, len(f.Entries))
	for i, e := range f.Entries {
		if err := validateEntry(e); err != nil {
			return nil, corrupt("entries[%d]: %v", i, err)
		}
		k := entryKey{e.Kind, e.Value}
		if old, ok := m[k]; ok {
			if old.Until.After(e.Until) {
				e.Until = old.Until
			}
			if e.Kind == KindSubject && old.At.After(e.At) {
				e.At = old.At
			}
		}
		m[k] = e
	}
	return m, nil
}

func encode(m map[entryKey]Entry) ([]byte, error) {
	entries := make([]Entry, 0, len(m))
	for _, e := range m {
		entries = append(entries, e)
	}
	sortEntries(entries)
	out, err := json.MarshalIndent(listFile{Version: fileVersion, Entries: entries}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(out, '\n'), nil
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
}

func validateEntry(e Entry) error {
	if e.Kind != KindToken && e.Kind != KindSubject {
		return fmt.Errorf("kind: must be %q or %q", KindToken, KindSubject)
	}
	if err := ValidValue(e.Value); err != nil {
		return err
	}
	if len(e.Reason) > maxReasonLen {
		return fmt.Errorf("reason: longer than %d bytes", maxReasonLen)
	}
	if !utf8.ValidString(e.Reason) || strings.ContainsFunc(e.Reason, unicode.IsControl) {
		return errors.New("reason: must be UTF-8 text without control characters")
	}
	if e.At.IsZero() {
		return errors.New("at: required")
	}
	if e.Until.IsZero() {
		return errors.New("until: required")
	}
	return nil
}

// ValidValue checks a token id or principal id for an entry: 1–256 bytes of
// UTF-8 without spaces or control characters.
func ValidValue(v string) error {
	switch {
	case v == "":
		return errors.New("value: required")
	case len(v) > maxValueLen:
		return fmt.Errorf("value: longer than %d bytes", maxValueLen)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("value: must be UTF-8 without spaces or control characters")
	}
	return nil
}
