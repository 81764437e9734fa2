package grant

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

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/store/localfile"
)

// Store file format and behaviour.
const (
	fileVersion  = 1
	maxFileBytes = 64 << 20
	// DefaultWatchInterval is the polling interval Watch uses when given none.
	DefaultWatchInterval = 250 * time.Millisecond
	fullCheckEvery       = 20 // Watch re-reads and hashes the file every so many ticks regardless of its stamp
	lockTimeout          = 30 * time.Second
	maxRequestIDBytes    = 128
)

// grantFile is the on-disk document: {"version":1,"grants":[...]}.
type grantFile struct {
	Version int     `json:"version"`
	Grants  []Grant `json:"grants"`
}

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// MaxDuration is the longest grant that can be requested or approved
	// (default DefaultMaxDuration, never more than HardMaxDuration).
	MaxDuration time.Duration
	// ApproverRole is the role an approver must hold (default DefaultApproverRole).
	ApproverRole string
	// PendingTTL is how long a request waits for a decision (default DefaultPendingTTL).
	PendingTTL time.Duration
	// Retention is how long ended grants are kept (default DefaultRetention).
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Actor is the principal taking a step, as proven by the identity stage.
type Actor struct {
	ID    string
	Roles []string
	// RequestID is the warden request id of the step, recorded in the
	// grant's history so that the step's audit record can be found.
	RequestID string
}

// snapshot is an immutable view of the store; err != nil is the
// fail-closed error state, in which no grant is active.
type snapshot struct {
	grants []Grant          // sorted by RequestedAt, then ID
	byID   map[string]int   // index into grants
	active map[string][]int // principal id -> indexes of approved grants
	// nextDue is the earliest time at which the sweeper has work: an open
	// grant ends or an ended one leaves the retention period. Zero: never.
	nextDue time.Time
	err     error
	stamp   localfile.Stamp
	sum     [sha256.Size]byte
}

// Store keeps grants in a JSON file shared by every warden process that
// names it. Reads (Active, List, Get) are lock-free: they use an immutable
// snapshot published through an atomic pointer. Writes serialise across
// processes with an advisory lock on path+".lock", re-read the file under
// the lock, and replace it atomically; Watch picks up other processes'
// writes. A missing file is an empty store at Open; a file that disappears
// later is an error, never an empty store (which would lose the history).
type Store struct {
	path      string
	maxDur    time.Duration
	role      string
	pending   time.Duration
	retention time.Duration
	now       func() time.Time

	snap    atomic.Pointer[snapshot]
	mu      sync.Mutex // serialises reading the file and publishing a snapshot
	writeMu sync.Mutex // queues this process's writers before the file lock
	existed atomic.Bool
}

// errVanished is the error state of a store whose file disappeared.
var errVanished = errors.New("the file disappeared; restore it (or restart warden to start an empty store)")

// Open opens the store at path. A missing file is an empty store (created by
// the first write); a file that cannot be read or parsed is an error.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("grant: store: empty path")
	}
	s := &Store{path: filepath.Clean(path), maxDur: opts.MaxDuration, role: opts.ApproverRole,
		pending: opts.PendingTTL, retention: opts.Retention, now: opts.Now}
	if s.maxDur <= 0 {
		s.maxDur = DefaultMaxDuration
	}
	if s.maxDur > HardMaxDuration {
		return nil, fmt.Errorf("grant: store: max duration %s is above the hard limit %s", s.maxDur, HardMaxDuration)
	}
	if s.role == "" {
		s.role = DefaultApproverRole
	}
	if s.pending <= 0 {
		s.pending = DefaultPendingTTL
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.load()
	if snap.err != nil {
		return nil, snap.err
	}
	s.snap.Store(snap)
	return s, nil
}

var errNotOpened = &snapshot{err: fmt.Errorf("grant: %w: store not opened (use Open)", ErrUnavailable)}

func (s *Store) current() *snapshot {
	if s == nil {
		return errNotOpened
	}
	if p := s.snap.Load(); p != nil {
		return p
	}
	return errNotOpened
}

// Path is the store file's path.
func (s *Store) Path() string { return s.path }

// MaxDuration is the longest grant the store accepts.
func (s *Store) MaxDuration() time.Duration { return s.maxDur }

// ApproverRole is the role approvers must hold.
func (s *Store) ApproverRole() string { return s.role }

// IsApprover reports whether a holds the approver role.
func (s *Store) IsApprover(a Actor) bool { return slices.Contains(a.Roles, s.role) }

// Healthy returns nil while the store is serving, or an error wrapping
// ErrUnavailable when the last reload failed (for /readyz).
func (s *Store) Healthy() error {
	if c := s.current(); c.err != nil {
		return unavailable(c.err)
	}
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("grant: %w: %w", ErrUnavailable, err)
}

// Active returns principal's grants that are active at now, in the shape
// policy sees. While the store is unavailable it returns an error wrapping
// ErrUnavailable and no grants.
func (s *Store) Active(principal string, now time.Time) ([]gateway.Grant, error) {
	c := s.current()
	if c.err != nil {
		return nil, unavailable(c.err)
	}
	var out []gateway.Grant
	for _, i := range c.active[principal] {
		if g := &c.grants[i]; g.Active(now) {
			out = append(out, g.Gateway())
		}
	}
	return out, nil
}

// IsActive reports whether the grant id is active at now (false while the
// store is unavailable).
func (s *Store) IsActive(id string, now time.Time) bool {
	c := s.current()
	if c.err != nil {
		return false
	}
	i, ok := c.byID[id]
	return ok && c.grants[i].Active(now)
}

// Visible reports whether a may see g: approvers see every grant, anyone
// else the grants they requested or that are for them.
func (s *Store) Visible(a Actor, g *Grant) bool {
	return s.IsApprover(a) || (a.ID != "" && (g.Principal == a.ID || g.RequestedBy == a.ID))
}

// Get returns the grant id as it stands now (see Grant.At), if a may see
// it; otherwise an error wrapping ErrNotFound.
func (s *Store) Get(id string, a Actor) (Grant, error) {
	c := s.current()
	if c.err != nil {
		return Grant{}, unavailable(c.err)
	}
	i, ok := c.byID[id]
	if !ok || !s.Visible(a, &c.grants[i]) {
		return Grant{}, fmt.Errorf("grant: %s: %w", clip(id, 64), ErrNotFound)
	}
	return c.grants[i].At(s.now()), nil
}

// Filter selects grants for List. Empty fields match everything.
type Filter struct {
	Principal   string
	RequestedBy string
	// Status is an effective state (requested, approved, denied, revoked,
	// expired), "open" (requested or approved) or "" for any.
	Status string
	// Limit bounds the result (default and maximum 1000).
	Limit int
}

// Statuses accepted by Filter.Status besides "".
var filterStatuses = []string{StateRequested, StateApproved, StateDenied, StateRevoked, StateExpired, "open"}

// List returns the grants a may see that match f, newest request first, as
// they stand now.
func (s *Store) List(f Filter, a Actor) ([]Grant, error) {
	if f.Status != "" && !slices.Contains(filterStatuses, f.Status) {
		return nil, fmt.Errorf("grant: list: %w: status must be one of %s", ErrInvalid, strings.Join(filterStatuses, ", "))
	}
	if f.Limit <= 0 || f.Limit > MaxOpen {
		f.Limit = MaxOpen
	}
	c := s.current()
	if c.err != nil {
		return nil, unavailable(c.err)
	}
	now := s.now()
	out := []Grant{}
	for i := len(c.grants) - 1; i >= 0 && len(out) < f.Limit; i-- {
		g := &c.grants[i]
		if !s.Visible(a, g) ||
			(f.Principal != "" && g.Principal != f.Principal) ||
			(f.RequestedBy != "" && g.RequestedBy != f.RequestedBy) {
			continue
		}
		st := g.Status(now)
		if f.Status != "" && st != f.Status && !(f.Status == "open" && (st == StateRequested || st == StateApproved)) {
			continue
		}
		out = append(out, g.At(now))
	}
	return out, nil
}

// checkActor validates the principal taking a step.
func checkActor(a Actor) error {
	if err := validIDField("principal id", a.ID, false); err != nil {
		return fmt.Errorf("%w: %w", ErrForbidden, err)
	}
	if len(a.RequestID) > maxRequestIDBytes || !printableASCII(a.RequestID) {
		return fmt.Errorf("%w: request id: at most %d printable ASCII characters", ErrInvalid, maxRequestIDBytes)
	}
	return nil
}

// Request records a request for a grant by a (for req.Principal, or for a
// when that is empty) and returns it. The request lapses if it is not
// approved within the pending period. Errors wrap ErrInvalid, ErrLimit or
// ErrUnavailable.
func (s *Store) Request(req Request, a Actor) (Grant, error) {
	if err := checkActor(a); err != nil {
		return Grant{}, fmt.Errorf("grant: request: %w", err)
	}
	if req.Principal == "" {
		req.Principal = a.ID
	}
	if err := req.Validate(s.maxDur); err != nil {
		return Grant{}, fmt.Errorf("grant: request: %w", err)
	}
	var out Grant
	err := s.update(func(gs []Grant, now time.Time) ([]Grant, bool, error) {
		if len(gs) >= MaxRecords {
			return nil, false, fmt.Errorf("%w: the store holds %d grants; ended ones leave it after the retention period", ErrLimit, len(gs))
		}
		open, forPrincipal, byRequester := 0, 0, 0
		for i := range gs {
			st := gs[i].Status(now)
			if st != StateRequested && st != StateApproved {
				continue
			}
			open++
			if st == StateRequested && gs[i].Principal == req.Principal {
				forPrincipal++
			}
			if st == StateRequested && gs[i].RequestedBy == a.ID {
				byRequester++
			}
		}
		switch {
		case open >= MaxOpen:
			return nil, false, fmt.Errorf("%w: %d open requests and active grants in total", ErrLimit, open)
		case forPrincipal >= MaxPendingPerPrincipal:
			return nil, false, fmt.Errorf("%w: %d open requests for %s", ErrLimit, forPrincipal, req.Principal)
		case byRequester >= MaxPendingPerPrincipal:
			return nil, false, fmt.Errorf("%w: %d open requests made by %s", ErrLimit, byRequester, a.ID)
		}
		id, err := newID(gs)
		if err != nil {
			return nil, false, err
		}
		out = Grant{
			ID: id, State: StateRequested, Principal: req.Principal, Action: req.Action, Segment: req.Segment,
			Resource: req.Resource, Duration: req.Duration, Reason: req.Reason,
			RequestedBy: a.ID, RequestedAt: now, DecideBy: now.Add(s.pending),
			History: []Event{{Step: StepRequest, By: a.ID, At: now, RequestID: a.RequestID}},
		}
		return append(gs, out), true, nil
	})
	if err != nil {
		return Grant{}, fmt.Errorf("grant: request: %w", err)
	}
	return out.At(s.now()), nil
}

// Approve approves the requested grant id. a must hold the approver role
// and be neither the requester nor the grantee. The grant starts now and
// expires after its duration. Errors wrap ErrForbidden, ErrNotFound,
// ErrConflict (not an open request, or its duration is above the current
// maximum), ErrLimit, ErrInvalid or ErrUnavailable.
func (s *Store) Approve(id string, a Actor, note string) (Grant, error) {
	return s.step(StepApprove, id, a, note)
}

// Deny denies the requested grant id. Approvers may deny any request;
// the requester and the grantee may withdraw theirs.
func (s *Store) Deny(id string, a Actor, note string) (Grant, error) {
	return s.step(StepDeny, id, a, note)
}

// Revoke ends the grant id, requested or active, at once. Approvers may
// revoke any grant; the requester and the grantee may give up theirs.
func (s *Store) Revoke(id string, a Actor, note string) (Grant, error) {
	return s.step(StepRevoke, id, a, note)
}

func (s *Store) step(step, id string, a Actor, note string) (Grant, error) {
	fail := func(err error) (Grant, error) {
		return Grant{}, fmt.Errorf("grant: %s %s: %w", step, clip(id, 64), err)
	}
	if err := checkActor(a); err != nil {
		return fail(err)
	}
	if err := validText("note", note, false); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrInvalid, err))
	}
	if !ValidID(id) {
		return fail(ErrNotFound)
	}
	approver := s.IsApprover(a)
	if step == StepApprove && !approver {
		return fail(fmt.Errorf("%w: approving needs the role %q", ErrForbidden, s.role))
	}
	var out Grant
	err := s.update(func(gs []Grant, now time.Time) ([]Grant, bool, error) {
		i := slices.IndexFunc(gs, func(g Grant) bool { return g.ID == id })
		if i < 0 || !s.Visible(a, &gs[i]) {
			return nil, false, ErrNotFound
		}
		g := &gs[i]
		st := g.Status(now)
		switch step {
		case StepApprove:
			if a.ID == g.RequestedBy {
				return nil, false, fmt.Errorf("%w: %s requested this grant and cannot approve it", ErrForbidden, a.ID)
			}
			if a.ID == g.Principal {
				return nil, false, fmt.Errorf("%w: the grant is for %s, who cannot approve it", ErrForbidden, a.ID)
			}
			if st != StateRequested {
				return nil, false, fmt.Errorf("%w: the grant is %s; only a requested grant can be approved", ErrConflict, st)
			}
			if g.Duration.D() > s.maxDur {
				return nil, false, fmt.Errorf("%w: its duration %s is above the current maximum %s; deny it and request again",
					ErrConflict, g.Duration.D(), s.maxDur)
			}
			n := 0
			for j := range gs {
				if gs[j].Principal == g.Principal && gs[j].Active(now) {
					n++
				}
			}
			if n >= MaxActivePerPrincipal {
				return nil, false, fmt.Errorf("%w: %s already has %d active grants", ErrLimit, g.Principal, n)
			}
			g.State, g.ApprovedBy, g.NotBefore, g.ExpiresAt = StateApproved, a.ID, now, now.Add(g.Duration.D())
		case StepDeny:
			if st != StateRequested {
				return nil, false, fmt.Errorf("%w: the grant is %s; only a requested grant can be denied", ErrConflict, st)
			}
			g.State, g.EndedBy, g.EndedAt = StateDenied, a.ID, now
		case StepRevoke:
			if st != StateRequested && st != StateApproved {
				return nil, false, fmt.Errorf("%w: the grant is %s already", ErrConflict, st)
			}
			g.State, g.EndedBy, g.EndedAt = StateRevoked, a.ID, now
		default:
			return nil, false, fmt.Errorf("unknown step %q", step) // programming error: fail closed
		}
		g.History = append(g.History, Event{Step: step, By: a.ID, At: now, RequestID: a.RequestID, Note: note})
		out = *g
		return gs, true, nil
	})
	if err != nil {
		return fail(err)
	}
	return out.At(s.now()), nil
}

// Due reports whether Expire has work at now: an open grant that ended by
// itself, or an ended grant past the retention period. It is cheap.
func (s *Store) Due(now time.Time) bool {
	c := s.current()
	return c.err == nil && !c.nextDue.IsZero() && !now.Before(c.nextDue)
}

// Expire records the end of every requested or approved grant that has
// ended by itself at now, and drops ended grants past the retention period.
// Under the store's lock it calls record with each newly expired grant
// (State expired) and marks the grant expired only if record succeeded, so
// that each expiry is recorded once across every process sharing the store
// (at least once if a process dies between the two). It stops at the first
// record error and returns the grants it marked with that error.
func (s *Store) Expire(now time.Time, record func(Grant) error) ([]Grant, error) {
	var done []Grant
	var recErr error
	err := s.update(func(gs []Grant, _ time.Time) ([]Grant, bool, error) {
		done = done[:0]
		changed := false
		for i := range gs {
			g := &gs[i]
			if (g.State != StateRequested && g.State != StateApproved) || g.Status(now) != StateExpired {
				continue
			}
			e := g.At(now) // State expired, EndedAt the end time
			e.History = append(e.History, Event{Step: StepExpire, At: e.EndedAt})
			if recErr = record(e); recErr != nil {
				break
			}
			*g = e
			done = append(done, e)
			changed = true
		}
		return gs, changed, nil
	})
	if err != nil {
		return done, fmt.Errorf("grant: expire: %w", err)
	}
	if recErr != nil {
		return done, fmt.Errorf("grant: expire: %w", recErr)
	}
	return done, nil
}

// Reload re-reads the store file now. On failure the store enters the
// error state (no grant is active) and the error is returned; a later
// successful reload leaves it.
func (s *Store) Reload() error {
	s.poll(true)
	return s.Healthy()
}

// Watch polls the store file every interval (DefaultWatchInterval if <= 0)
// and reloads it when it changed, so that grants approved or revoked by
// another process take effect within about one interval. It blocks until
// ctx is done. Transitions into and out of the error state are logged.
func (s *Store) Watch(ctx context.Context, interval time.Duration, logger *slog.Logger) {
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
		old, cur, replaced := s.poll(tick%fullCheckEvery == 0)
		if !replaced {
			continue
		}
		switch {
		case cur.err != nil:
			if old.err == nil || old.err.Error() != cur.err.Error() {
				logger.Error("grant: grant store unavailable; no just-in-time grant is honoured until it is fixed",
					"path", s.path, "err", cur.err)
			}
		case old.err != nil:
			logger.Info("grant: grant store recovered", "path", s.path, "grants", len(cur.grants))
		default:
			logger.Debug("grant: grant store reloaded", "path", s.path, "grants", len(cur.grants))
		}
	}
}

// poll reloads the file if it changed (or always, if force or in the error
// state) and reports the snapshots before and after and whether it replaced
// the grants or the error.
func (s *Store) poll(force bool) (old, cur *snapshot, replaced bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old = s.current()
	if !force && old.err == nil {
		if st, err := localfile.StatPath(s.path); err == nil && st == old.stamp {
			return old, old, false
		}
	}
	next := s.load()
	if old.err == nil && next.err == nil && next.sum == old.sum {
		if next.stamp != old.stamp {
			c := *old
			c.stamp = next.stamp
			s.snap.Store(&c)
		}
		return old, s.snap.Load(), false
	}
	s.snap.Store(next)
	return old, next, true
}

// load reads the file into a new snapshot; failures give an error snapshot.
// s.mu must be held.
func (s *Store) load() *snapshot {
	data, st, err := localfile.ReadFile(s.path, maxFileBytes)
	if err != nil {
		return &snapshot{err: unavailable(err)}
	}
	if !st.Exists {
		if s.existed.Load() {
			return &snapshot{err: unavailable(fmt.Errorf("%s: %w", s.path, errVanished))}
		}
		return s.newSnapshot(nil, st, [sha256.Size]byte{})
	}
	s.existed.Store(true)
	gs, err := Decode(data)
	if err != nil {
		return &snapshot{err: unavailable(fmt.Errorf("%s: %w", s.path, err)), stamp: st}
	}
	return s.newSnapshot(gs, st, sha256.Sum256(data))
}

func (s *Store) newSnapshot(gs []Grant, st localfile.Stamp, sum [sha256.Size]byte) *snapshot {
	c := &snapshot{grants: gs, byID: make(map[string]int, len(gs)), active: map[string][]int{}, stamp: st, sum: sum}
	for i := range gs {
		g := &gs[i]
		c.byID[g.ID] = i
		due := g.endsAt()
		if g.State == StateApproved {
			c.active[g.Principal] = append(c.active[g.Principal], i)
		}
		if due.IsZero() {
			due = g.EndedAt.Add(s.retention)
		}
		if c.nextDue.IsZero() || due.Before(c.nextDue) {
			c.nextDue = due
		}
	}
	return c
}

// update runs one read-modify-write of the file under the cross-process
// lock, drops ended grants past the retention period, and publishes the
// result in this process. modify reports whether it changed anything.
func (s *Store) update(modify func(gs []Grant, now time.Time) ([]Grant, bool, error)) error {
	if s == nil || s.path == "" || s.now == nil {
		return errNotOpened.err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return unavailable(err)
	}
	unlock, err := localfile.Lock(s.path+".lock", lockTimeout)
	if err != nil {
		return unavailable(err)
	}
	defer unlock()

	// Re-read under the lock: another process may have written since.
	data, _, err := localfile.ReadFile(s.path, maxFileBytes)
	if err != nil {
		return unavailable(err)
	}
	if data == nil && s.existed.Load() {
		return unavailable(fmt.Errorf("%s: %w", s.path, errVanished)) // never start over silently
	}
	var gs []Grant
	if data != nil {
		if gs, err = Decode(data); err != nil {
			return unavailable(fmt.Errorf("%s: %w", s.path, err)) // never overwrite a file we cannot read
		}
	}
	// Whole seconds, as policy sees times: a grant ends for the store and
	// for policy at the same instant.
	now := s.now().UTC().Truncate(time.Second)
	gs, changed, err := modify(gs, now)
	if err != nil {
		return err
	}
	kept := gs[:0]
	for _, g := range gs {
		if !g.EndedAt.IsZero() && g.State != StateRequested && g.State != StateApproved && !now.Before(g.EndedAt.Add(s.retention)) {
			changed = true
			continue
		}
		kept = append(kept, g)
	}
	gs = kept
	if !changed {
		s.poll(false) // what was read under the lock may be newer than our snapshot
		return nil
	}
	out, err := Encode(gs)
	if err != nil {
		return err
	}
	if err := localfile.WriteAtomic(s.path, out); err != nil {
		return unavailable(err)
	}
	s.existed.Store(true)
	st, err := localfile.StatPath(s.path)
	if err != nil {
		st = localfile.Stamp{} // Watch will notice the mismatch and re-read
	}
	s.mu.Lock()
	s.snap.Store(s.newSnapshot(gs, st, sha256.Sum256(out)))
	s.mu.Unlock()
	return nil
}

// newID returns a fresh grant id not in gs.
func newID(gs []Grant) (string, error) {
	for {
		var b [12]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("grant: id: %w", err)
		}
		id := "g_" + hex.EncodeToString(b[:])
		if !slices.ContainsFunc(gs, func(g Grant) bool { return g.ID == id }) {
			return id, nil
		}
	}
}

// Decode parses a store document strictly: unknown fields, trailing data, a
// wrong version, a duplicate id or any invalid grant make the whole document
// invalid. The grants come back sorted by request time, then id.
func Decode(data []byte) ([]Grant, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("corrupt: %s", fmt.Sprintf(format, args...))
	}
	if len(data) > maxFileBytes {
		return nil, corrupt("larger than %d bytes", maxFileBytes)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, corrupt(`empty file (an empty store is {"version":1,"grants":[]})`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f grantFile
	if err := dec.Decode(&f); err != nil {
		return nil, corrupt("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, corrupt("trailing data after the document")
	}
	if f.Version != fileVersion {
		return nil, corrupt("unsupported version %d (want %d)", f.Version, fileVersion)
	}
	if len(f.Grants) > MaxRecords {
		return nil, corrupt("%d grants, more than %d", len(f.Grants), MaxRecords)
	}
	seen := make(map[string]int, len(f.Grants))
	for i := range f.Grants {
		g := &f.Grants[i]
		if err := validateGrant(g); err != nil {
			return nil, corrupt("grants[%d]: %v", i, err)
		}
		if j, dup := seen[g.ID]; dup {
			return nil, corrupt("grants[%d]: duplicate id %s (also grants[%d])", i, g.ID, j)
		}
		seen[g.ID] = i
		normalize(g)
	}
	sortGrants(f.Grants)
	return f.Grants, nil
}

// Encode writes the store document for gs, sorted.
func Encode(gs []Grant) ([]byte, error) {
	if gs == nil {
		gs = []Grant{}
	}
	sortGrants(gs)
	out, err := json.MarshalIndent(grantFile{Version: fileVersion, Grants: gs}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("grant: encode: %w", err)
	}
	return append(out, '\n'), nil
}

func normalize(g *Grant) {
	for _, t := range []*time.Time{&g.RequestedAt, &g.DecideBy, &g.NotBefore, &g.ExpiresAt, &g.EndedAt} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	for i := range g.History {
		g.History[i].At = g.History[i].At.UTC()
	}
}

func sortGrants(gs []Grant) {
	slices.SortFunc(gs, func(a, b Grant) int {
		if c := a.RequestedAt.Compare(b.RequestedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// validateGrant checks a stored grant, including the invariants the store
// keeps: an approved grant was approved by someone other than its requester
// and grantee, and lasts exactly its duration from its approval.
func validateGrant(g *Grant) error {
	if !ValidID(g.ID) {
		return errors.New(`id: must be "g_" and 24 lowercase hex digits`)
	}
	errs := []error{
		validIDField("principal", g.Principal, false),
		validAction(g.Action),
		validSegment(g.Segment),
		validResource(g.Resource),
		validText("reason", g.Reason, true),
		validIDField("requested_by", g.RequestedBy, false),
		validIDField("approved_by", g.ApprovedBy, true),
		validIDField("ended_by", g.EndedBy, true),
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if d := g.Duration.D(); d < MinDuration || d > HardMaxDuration || d%time.Second != 0 {
		return fmt.Errorf("duration: %s is not a whole number of seconds between %s and %s", d, MinDuration, HardMaxDuration)
	}
	if g.RequestedAt.IsZero() || !g.DecideBy.After(g.RequestedAt) {
		return errors.New("requested_at and a later decide_by are required")
	}
	approved := g.ApprovedBy != "" || !g.NotBefore.IsZero() || !g.ExpiresAt.IsZero()
	if approved {
		switch {
		case g.ApprovedBy == "" || g.NotBefore.IsZero() || g.ExpiresAt.IsZero():
			return errors.New("an approval needs approved_by, not_before and expires_at")
		case g.ApprovedBy == g.RequestedBy || g.ApprovedBy == g.Principal:
			return errors.New("approved_by: a grant cannot be approved by its requester or its grantee")
		case !g.ExpiresAt.Equal(g.NotBefore.Add(g.Duration.D())):
			return errors.New("expires_at must be not_before + duration")
		case g.NotBefore.Before(g.RequestedAt):
			return errors.New("not_before is before requested_at")
		}
	}
	ended := !g.EndedAt.IsZero()
	switch g.State {
	case StateRequested:
		if approved || ended || g.EndedBy != "" {
			return errors.New("a requested grant has no approval and no end")
		}
	case StateApproved:
		if !approved || ended || g.EndedBy != "" {
			return errors.New("an approved grant has an approval and no end")
		}
	case StateDenied:
		if approved || !ended || g.EndedBy == "" {
			return errors.New("a denied grant has no approval, an end and ended_by")
		}
	case StateRevoked:
		if !ended || g.EndedBy == "" {
			return errors.New("a revoked grant has an end and ended_by")
		}
	case StateExpired:
		if !ended || g.EndedBy != "" {
			return errors.New("an expired grant has an end and no ended_by")
		}
	default:
		return fmt.Errorf("state: unknown %q", clip(g.State, 32))
	}
	if ended && g.EndedAt.Before(g.RequestedAt) {
		return errors.New("ended_at is before requested_at")
	}
	if len(g.History) == 0 || len(g.History) > maxHistory {
		return fmt.Errorf("history: 1 to %d events", maxHistory)
	}
	for i, e := range g.History {
		if err := validateEvent(e); err != nil {
			return fmt.Errorf("history[%d]: %w", i, err)
		}
	}
	if g.History[0].Step != StepRequest || g.History[0].By != g.RequestedBy {
		return errors.New("history: the first event is the request, by requested_by")
	}
	return nil
}

func validateEvent(e Event) error {
	switch e.Step {
	case StepRequest, StepApprove, StepDeny, StepRevoke:
		if err := validIDField("by", e.By, false); err != nil {
			return err
		}
	case StepExpire:
		if e.By != "" {
			return errors.New("by: an expiry has no principal")
		}
	default:
		return fmt.Errorf("step: unknown %q", clip(e.Step, 32))
	}
	if e.At.IsZero() {
		return errors.New("at: required")
	}
	if len(e.RequestID) > maxRequestIDBytes || !printableASCII(e.RequestID) {
		return fmt.Errorf("request_id: at most %d printable ASCII characters", maxRequestIDBytes)
	}
	return validText("note", e.Note, false)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
