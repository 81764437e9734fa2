package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Version states. A version is staged when registered, verified once its
// signature and every file digest check out, active while it is the one
// served, and retired when another version replaced it.
const (
	StateStaged   = "staged"
	StateVerified = "verified"
	StateActive   = "active"
	StateRetired  = "retired"
)

// Store errors, for the API to map to statuses.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid request")
)

// DefaultApproverRole is the role that may promote and roll back models.
const DefaultApproverRole = "model-approver"

const (
	registryFile = "registry.json"
	lockFile     = "registry.lock"
	bundleDir    = "bundles"
	maxHistory   = 1000
	maxDocBytes  = 256 << 20
	lockTimeout  = 10 * time.Second
)

// Provenance is what the registrant says about where a model version came
// from; it is recorded, not verified.
type Provenance struct {
	Source string `json:"source,omitempty"` // e.g. a training run, a hub URL
	Commit string `json:"commit,omitempty"` // e.g. the training code revision
	Notes  string `json:"notes,omitempty"`
}

// ModelVersion is one registered version of a model.
type ModelVersion struct {
	Version      string       `json:"version"`
	State        string       `json:"state"`
	Dir          string       `json:"dir"`           // the model directory, absolute
	BundleSHA256 string       `json:"bundle_sha256"` // of the stored bundle file
	RootDigest   string       `json:"root_digest"`   // the signed subject digest
	Signer       string       `json:"signer"`        // the trusted key that signed it
	Files        []FileDigest `json:"files"`
	Provenance   Provenance   `json:"provenance"`
	RegisteredAt time.Time    `json:"registered_at"`
	RegisteredBy string       `json:"registered_by"`
	VerifiedAt   time.Time    `json:"verified_at,omitzero"`
	ActivatedAt  time.Time    `json:"activated_at,omitzero"`
	RetiredAt    time.Time    `json:"retired_at,omitzero"`
	LastError    string       `json:"last_error,omitempty"` // why the last verification failed
}

// Model is a registered model: its versions and the history of its
// transitions, oldest first.
type Model struct {
	Name     string          `json:"name"`
	Versions []*ModelVersion `json:"versions"`
	History  []Event         `json:"history"`
}

// DatasetVersion is one registered dataset version.
type DatasetVersion struct {
	DatasetProvenance
	Dir          string    `json:"dir"`
	RootDigest   string    `json:"root_digest"`
	BundleSHA256 string    `json:"bundle_sha256"`
	Signer       string    `json:"signer"`
	RegisteredAt time.Time `json:"registered_at"`
	RegisteredBy string    `json:"registered_by"`
}

// Dataset is a registered dataset and its versions.
type Dataset struct {
	Name     string            `json:"name"`
	Versions []*DatasetVersion `json:"versions"`
}

// Event is one transition, as recorded in a model's history and in the
// audit log.
type Event struct {
	Time      time.Time `json:"time"`
	Action    string    `json:"action"` // model.register, model.verify, model.promote, model.rollback, model.integrity, dataset.register
	Name      string    `json:"name"`
	Version   string    `json:"version"`
	From      string    `json:"from,omitempty"` // state before ("" when new)
	To        string    `json:"to,omitempty"`   // state after
	Actor     string    `json:"actor"`
	RequestID string    `json:"request_id,omitempty"`
	OK        bool      `json:"ok"`
	Reason    string    `json:"reason"`
}

// Actor is who asks for a transition.
type Actor struct {
	ID        string
	Roles     []string
	RequestID string
	// System marks warden's own automated response (a playbook's
	// rollback): it holds no role, policy authorised the playbook.
	System bool
}

type document struct {
	Format   int                 `json:"format"`
	Models   map[string]*Model   `json:"models"`
	Datasets map[string]*Dataset `json:"datasets"`
}

// Options configure a Store.
type Options struct {
	Keys         []TrustedKey // trusted signer keys
	Roots        []string     // directories model and dataset directories must be under
	ApproverRole string       // default DefaultApproverRole
	// Audit records an event; a transition is committed only after its
	// event was recorded (fail closed). nil records nothing.
	Audit   func(ctx context.Context, ev Event) error
	Logger  *slog.Logger
	Workers int
	Now     func() time.Time
}

// integrity is what this process last found when it verified the files
// of a version.
type integrity struct {
	ok        bool
	checkedAt time.Time
	err       string
}

// Store is the registry: a JSON document in a directory, written
// atomically under a file lock, with the bundles beside it. Every process
// sharing the directory reloads it when it changes.
type Store struct {
	dir  string
	opts Options

	writeMu sync.Mutex
	doc     atomic.Pointer[document]
	stamp   atomic.Pointer[localfile.Stamp]
	integ   atomic.Pointer[map[string]integrity] // key: name@version#root
	integMu sync.Mutex
}

// Open opens (creating if needed) the registry in dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("registry: empty directory")
	}
	if opts.ApproverRole == "" {
		opts.ApproverRole = DefaultApproverRole
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(dir, bundleDir), 0o700); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	s := &Store{dir: dir, opts: opts}
	empty := map[string]integrity{}
	s.integ.Store(&empty)
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// ApproverRole is the role promote and rollback require.
func (s *Store) ApproverRole() string { return s.opts.ApproverRole }

// Healthy reports whether the registry file can still be read.
func (s *Store) Healthy() error {
	if _, err := localfile.StatPath(filepath.Join(s.dir, registryFile)); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}

func (s *Store) read() (*document, localfile.Stamp, error) {
	data, st, err := localfile.ReadFile(filepath.Join(s.dir, registryFile), maxDocBytes)
	if err != nil {
		return nil, st, fmt.Errorf("registry: %w", err)
	}
	d := &document{Format: 1, Models: map[string]*Model{}, Datasets: map[string]*Dataset{}}
	if data == nil {
		return d, st, nil
	}
	if err := json.Unmarshal(data, d); err != nil {
		return nil, st, fmt.Errorf("registry: %s: %w", registryFile, err)
	}
	if d.Format != 1 {
		return nil, st, fmt.Errorf("registry: %s: unknown format %d", registryFile, d.Format)
	}
	if d.Models == nil {
		d.Models = map[string]*Model{}
	}
	if d.Datasets == nil {
		d.Datasets = map[string]*Dataset{}
	}
	for name, m := range d.Models {
		if m == nil || m.Name != name {
			return nil, st, fmt.Errorf("registry: %s: model %q is malformed", registryFile, name)
		}
		for _, v := range m.Versions {
			if v == nil || !validHexDigest(v.RootDigest) {
				return nil, st, fmt.Errorf("registry: %s: model %q has a malformed version", registryFile, name)
			}
			for _, f := range v.Files {
				if !validHexDigest(f.SHA256) {
					return nil, st, fmt.Errorf("registry: %s: model %q version %q has a malformed digest", registryFile, name, v.Version)
				}
			}
		}
	}
	return d, st, nil
}

func (s *Store) reload() error {
	d, st, err := s.read()
	if err != nil {
		return err
	}
	s.doc.Store(d)
	s.stamp.Store(&st)
	return nil
}

// Watch reloads the registry when another process changed it, every
// interval until ctx ends.
func (s *Store) Watch(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := localfile.StatPath(filepath.Join(s.dir, registryFile))
		if err != nil || st == *s.stamp.Load() {
			continue
		}
		s.writeMu.Lock()
		if err := s.reload(); err != nil {
			s.opts.Logger.Error("registry: reload failed; keeping the last good state", "err", err)
		}
		s.writeMu.Unlock()
	}
}

// update runs fn on a fresh copy of the document under the file lock,
// records events through the audit hook, then writes the document.
func (s *Store) update(ctx context.Context, fn func(d *document) ([]Event, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	unlock, err := localfile.Lock(filepath.Join(s.dir, lockFile), lockTimeout)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer unlock()
	d, _, err := s.read()
	if err != nil {
		return err
	}
	events, err := fn(d)
	if err != nil {
		return err
	}
	for _, ev := range events {
		if s.opts.Audit != nil {
			if err := s.opts.Audit(ctx, ev); err != nil {
				return fmt.Errorf("registry: audit %s: %w; nothing was changed", ev.Action, err)
			}
		}
		if m := d.Models[ev.Name]; m != nil && strings.HasPrefix(ev.Action, "model.") {
			m.History = append(m.History, ev)
			if n := len(m.History); n > maxHistory {
				m.History = slices.Clone(m.History[n-maxHistory:])
			}
		}
	}
	data, err := json.MarshalIndent(d, "", " ")
	if err != nil {
		return fmt.Errorf("registry: encode: %w", err)
	}
	if err := localfile.WriteAtomic(filepath.Join(s.dir, registryFile), data); err != nil {
		return fmt.Errorf("registry: write: %w", err)
	}
	return s.reload()
}

// checkDir resolves dir and checks that it is under one of the roots.
func (s *Store) checkDir(dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%w: dir %q must be an absolute path", ErrInvalid, clip(dir))
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%w: dir %q: %v", ErrInvalid, clip(dir), err)
	}
	for _, r := range s.opts.Roots {
		rr, err := filepath.EvalSymlinks(r)
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(rr, real); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel) {
			return real, nil
		}
	}
	return "", fmt.Errorf("%w: dir %q is not under a configured model root (models.roots)", ErrForbidden, clip(dir))
}

func (s *Store) bundlePath(kind, name, version string) string {
	return filepath.Join(s.dir, bundleDir, kind, name, version+".sigstore.json")
}

// writeBundle stores the bundle and returns its SHA-256.
func (s *Store) writeBundle(kind, name, version string, data []byte) (string, error) {
	p := s.bundlePath(kind, name, version)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", fmt.Errorf("registry: %w", err)
	}
	if err := localfile.WriteAtomic(p, data); err != nil {
		return "", fmt.Errorf("registry: store bundle: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// readBundle reads a stored bundle and checks it against its recorded digest.
func (s *Store) readBundle(kind, name, version, want string) ([]byte, error) {
	data, _, err := localfile.ReadFile(s.bundlePath(kind, name, version), maxBundleBytes)
	if err != nil {
		return nil, fmt.Errorf("registry: bundle: %w", err)
	}
	if data == nil {
		return nil, fmt.Errorf("registry: the stored bundle of %s@%s is missing", name, version)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != want {
		return nil, fmt.Errorf("%w: the stored bundle of %s@%s was altered", ErrSignature, name, version)
	}
	return data, nil
}

// RegisterRequest registers a model version.
type RegisterRequest struct {
	Name       string     `json:"name"`
	Version    string     `json:"version"`
	Dir        string     `json:"dir"`    // absolute path of the model directory on warden's host
	Bundle     []byte     `json:"bundle"` // the signature bundle (JSON)
	Provenance Provenance `json:"provenance"`
}

// Register stages a new model version and verifies it. The version is
// recorded either way (staged, with why verification failed, or
// verified); the error reports a failed verification.
func (s *Store) Register(ctx context.Context, req RegisterRequest, by Actor) (*ModelVersion, error) {
	if err := ValidName(req.Name); err != nil {
		return nil, fmt.Errorf("%w: name: %v", ErrInvalid, err)
	}
	if err := ValidName(req.Version); err != nil {
		return nil, fmt.Errorf("%w: version: %v", ErrInvalid, err)
	}
	for _, f := range []string{req.Provenance.Source, req.Provenance.Commit, req.Provenance.Notes} {
		if len(f) > 1024 {
			return nil, fmt.Errorf("%w: provenance fields are at most 1024 bytes", ErrInvalid)
		}
	}
	dir, err := s.checkDir(req.Dir)
	if err != nil {
		return nil, err
	}
	if m := s.doc.Load().Models[req.Name]; m != nil && m.version(req.Version) != nil {
		return nil, fmt.Errorf("%w: %s@%s is already registered", ErrConflict, req.Name, req.Version)
	}
	// Check the signature before anything is stored: an unsigned or
	// wrongly signed bundle is not even staged.
	signed, signer, err := verifyBundle(req.Bundle, s.opts.Keys)
	if err != nil {
		return nil, err
	}
	if signed.Dataset != nil {
		return nil, fmt.Errorf("%w: the bundle signs a dataset, not a model", ErrInvalid)
	}
	if signed.Name != req.Name {
		return nil, fmt.Errorf("%w: the signature is for model %q, not %q", ErrSignature, clip(signed.Name), req.Name)
	}
	v, verr := VerifyModel(ctx, dir, req.Bundle, s.opts.Keys, VerifyOptions{Name: req.Name, Workers: s.opts.Workers})
	now := s.opts.Now()
	var out *ModelVersion
	err = s.update(ctx, func(d *document) ([]Event, error) {
		m := d.Models[req.Name]
		if m == nil {
			m = &Model{Name: req.Name}
			d.Models[req.Name] = m
		}
		if m.version(req.Version) != nil {
			return nil, fmt.Errorf("%w: %s@%s is already registered", ErrConflict, req.Name, req.Version)
		}
		sum, err := s.writeBundle("models", req.Name, req.Version, req.Bundle)
		if err != nil {
			return nil, err
		}
		mv := &ModelVersion{Version: req.Version, State: StateStaged, Dir: dir, BundleSHA256: sum,
			RootDigest: signed.RootDigest, Signer: signer, Files: signed.Manifest.Files, Provenance: req.Provenance,
			RegisteredAt: now, RegisteredBy: by.ID}
		events := []Event{{Time: now, Action: "model.register", Name: req.Name, Version: req.Version, To: StateStaged,
			Actor: by.ID, RequestID: by.RequestID, OK: true,
			Reason: fmt.Sprintf("registered from %s; signed by %s; root digest %s", dir, signer, signed.RootDigest)}}
		if verr != nil {
			mv.LastError = verr.Error()
			events = append(events, Event{Time: now, Action: "model.verify", Name: req.Name, Version: req.Version,
				From: StateStaged, To: StateStaged, Actor: by.ID, RequestID: by.RequestID, Reason: verr.Error()})
		} else {
			mv.State, mv.VerifiedAt, mv.Files = StateVerified, now, v.Manifest.Files
			events = append(events, Event{Time: now, Action: "model.verify", Name: req.Name, Version: req.Version,
				From: StateStaged, To: StateVerified, Actor: by.ID, RequestID: by.RequestID, OK: true,
				Reason: fmt.Sprintf("signature by %s and %d file digests (%d bytes) verified", signer, v.Files, v.Bytes)})
		}
		m.Versions = append(m.Versions, mv)
		c := *mv
		out = &c
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	return out, verr
}

func (m *Model) version(v string) *ModelVersion {
	for _, mv := range m.Versions {
		if mv.Version == v {
			return mv
		}
	}
	return nil
}

func (m *Model) active() *ModelVersion {
	for _, mv := range m.Versions {
		if mv.State == StateActive {
			return mv
		}
	}
	return nil
}

// verifyVersion recomputes a version's files against its stored bundle.
func (s *Store) verifyVersion(ctx context.Context, name string, mv *ModelVersion) (*Verification, error) {
	data, err := s.readBundle("models", name, mv.Version, mv.BundleSHA256)
	if err != nil {
		return nil, err
	}
	v, err := VerifyModel(ctx, mv.Dir, data, s.opts.Keys, VerifyOptions{Name: name, Workers: s.opts.Workers})
	if err != nil {
		return nil, err
	}
	if v.RootDigest != mv.RootDigest {
		return nil, fmt.Errorf("%w: root digest %s, registered %s", ErrIntegrity, v.RootDigest, mv.RootDigest)
	}
	return v, nil
}

func (s *Store) requireApprover(by Actor, what string) error {
	if by.System {
		return nil
	}
	if by.ID == "" || !slices.Contains(by.Roles, s.opts.ApproverRole) {
		return fmt.Errorf("%w: %s requires the role %s", ErrForbidden, what, s.opts.ApproverRole)
	}
	return nil
}

// Verify re-verifies a version: a staged version that verifies becomes
// verified; the result is recorded either way.
func (s *Store) Verify(ctx context.Context, name, version string, by Actor) (*ModelVersion, error) {
	m := s.doc.Load().Models[name]
	if m == nil || m.version(version) == nil {
		return nil, fmt.Errorf("%w: no model version %s@%s", ErrNotFound, name, version)
	}
	mv := m.version(version)
	v, verr := s.verifyVersion(ctx, name, mv)
	s.setIntegrity(name, mv, verr)
	now := s.opts.Now()
	var out *ModelVersion
	err := s.update(ctx, func(d *document) ([]Event, error) {
		cur := d.Models[name].version(version)
		if cur == nil || cur.RootDigest != mv.RootDigest {
			return nil, fmt.Errorf("%w: %s@%s changed meanwhile; try again", ErrConflict, name, version)
		}
		ev := Event{Time: now, Action: "model.verify", Name: name, Version: version, From: cur.State, To: cur.State,
			Actor: by.ID, RequestID: by.RequestID}
		if verr != nil {
			cur.LastError, ev.Reason = verr.Error(), verr.Error()
		} else {
			if cur.State == StateStaged {
				cur.State = StateVerified
			}
			cur.VerifiedAt, cur.LastError = now, ""
			ev.To, ev.OK = cur.State, true
			ev.Reason = fmt.Sprintf("signature by %s and %d file digests (%d bytes) verified", v.Signer, v.Files, v.Bytes)
		}
		c := *cur
		out = &c
		return []Event{ev}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, verr
}

// Promote makes a verified (or retired) version the active one, after
// verifying its signature and every file again; the version it replaces
// is retired. It requires the approver role.
func (s *Store) Promote(ctx context.Context, name, version string, by Actor) (*ModelVersion, error) {
	if err := s.requireApprover(by, "promote"); err != nil {
		return nil, err
	}
	m := s.doc.Load().Models[name]
	if m == nil || m.version(version) == nil {
		return nil, fmt.Errorf("%w: no model version %s@%s", ErrNotFound, name, version)
	}
	mv := m.version(version)
	switch mv.State {
	case StateActive:
		return nil, fmt.Errorf("%w: %s@%s is already active", ErrConflict, name, version)
	case StateStaged:
		return nil, fmt.Errorf("%w: %s@%s is staged: it has not verified (%s)", ErrConflict, name, version, mv.LastError)
	}
	return s.activate(ctx, name, mv, by, "model.promote", "")
}

// Rollback makes the version that was active before the current one
// active again, after verifying it; the current one is retired. Playbooks
// call it with a System actor; people need the approver role.
func (s *Store) Rollback(ctx context.Context, name string, by Actor, reason string) (*ModelVersion, error) {
	if err := s.requireApprover(by, "rollback"); err != nil {
		return nil, err
	}
	m := s.doc.Load().Models[name]
	if m == nil {
		return nil, fmt.Errorf("%w: no model %s", ErrNotFound, name)
	}
	cur := m.active()
	if cur == nil {
		return nil, fmt.Errorf("%w: %s has no active version to roll back", ErrConflict, name)
	}
	var prev *ModelVersion
	for _, mv := range m.Versions {
		if mv.State == StateRetired && !mv.ActivatedAt.IsZero() && (prev == nil || mv.ActivatedAt.After(prev.ActivatedAt)) {
			prev = mv
		}
	}
	if prev == nil {
		return nil, fmt.Errorf("%w: %s has no earlier active version to roll back to", ErrConflict, name)
	}
	return s.activate(ctx, name, prev, by, "model.rollback", reason)
}

func (s *Store) activate(ctx context.Context, name string, mv *ModelVersion, by Actor, action, reason string) (*ModelVersion, error) {
	v, verr := s.verifyVersion(ctx, name, mv)
	s.setIntegrity(name, mv, verr)
	now := s.opts.Now()
	if verr != nil {
		// Record the refusal; the version stays as it was.
		_ = s.update(ctx, func(d *document) ([]Event, error) {
			if cur := d.Models[name].version(mv.Version); cur != nil {
				cur.LastError = verr.Error()
			}
			return []Event{{Time: now, Action: action, Name: name, Version: mv.Version, From: mv.State, To: mv.State,
				Actor: by.ID, RequestID: by.RequestID, Reason: "refused: verification failed: " + verr.Error()}}, nil
		})
		return nil, verr
	}
	var out *ModelVersion
	err := s.update(ctx, func(d *document) ([]Event, error) {
		m := d.Models[name]
		cur := m.version(mv.Version)
		if cur == nil || cur.RootDigest != mv.RootDigest || cur.State != mv.State {
			return nil, fmt.Errorf("%w: %s@%s changed meanwhile; try again", ErrConflict, name, mv.Version)
		}
		var events []Event
		if old := m.active(); old != nil {
			old.State, old.RetiredAt = StateRetired, now
			events = append(events, Event{Time: now, Action: action, Name: name, Version: old.Version,
				From: StateActive, To: StateRetired, Actor: by.ID, RequestID: by.RequestID, OK: true,
				Reason: fmt.Sprintf("replaced by %s", mv.Version)})
		}
		from := cur.State
		cur.State, cur.ActivatedAt, cur.VerifiedAt, cur.LastError = StateActive, now, now, ""
		why := fmt.Sprintf("re-verified: signature by %s and %d file digests (%d bytes)", v.Signer, v.Files, v.Bytes)
		if reason != "" {
			why = reason + "; " + why
		}
		events = append(events, Event{Time: now, Action: action, Name: name, Version: cur.Version, From: from,
			To: StateActive, Actor: by.ID, RequestID: by.RequestID, OK: true, Reason: why})
		c := *cur
		out = &c
		return events, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func integKey(name string, mv *ModelVersion) string {
	return name + "@" + mv.Version + "#" + mv.RootDigest
}

func (s *Store) setIntegrity(name string, mv *ModelVersion, err error) (changed bool) {
	s.integMu.Lock()
	defer s.integMu.Unlock()
	old := *s.integ.Load()
	prev, had := old[integKey(name, mv)]
	next := make(map[string]integrity, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	in := integrity{ok: err == nil, checkedAt: s.opts.Now()}
	if err != nil {
		in.err = err.Error()
	}
	next[integKey(name, mv)] = in
	s.integ.Store(&next)
	return !had || prev.ok != in.ok
}

// Recheck verifies the files of every active version again. A version
// whose files no longer match stops being served at once, and the change
// is audited (action model.integrity); one whose files match again is
// served again.
func (s *Store) Recheck(ctx context.Context) {
	d := s.doc.Load()
	names := make([]string, 0, len(d.Models))
	for n := range d.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		mv := d.Models[name].active()
		if mv == nil || ctx.Err() != nil {
			continue
		}
		_, err := s.verifyVersion(ctx, name, mv)
		if ctx.Err() != nil {
			return
		}
		if !s.setIntegrity(name, mv, err) {
			continue
		}
		ev := Event{Time: s.opts.Now(), Action: "model.integrity", Name: name, Version: mv.Version, From: StateActive,
			To: StateActive, Actor: "warden", OK: err == nil, Reason: "files verified again: serving"}
		if err != nil {
			ev.Reason = "integrity check failed: refusing to serve: " + err.Error()
			s.opts.Logger.Error("registry: active model version failed verification; refusing to serve it",
				"model", name, "version", mv.Version, "err", err)
		}
		if s.opts.Audit != nil {
			if aerr := s.opts.Audit(ctx, ev); aerr != nil {
				s.opts.Logger.Error("registry: cannot audit an integrity change", "model", name, "err", aerr)
			}
		}
	}
}

// RunRecheck calls Recheck at once and then every interval until ctx ends.
func (s *Store) RunRecheck(ctx context.Context, every time.Duration) {
	s.Recheck(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Recheck(ctx)
		}
	}
}

// Serving is what the gate needs to know about a model's active version.
type Serving struct {
	Name       string
	Version    string
	RootDigest string
}

// ErrNotServable is a model the gate must refuse.
var ErrNotServable = errors.New("model not servable")

// Servable returns the model's active version if this process has
// verified its files; otherwise an error wrapping ErrNotServable says why.
func (s *Store) Servable(name string) (Serving, error) {
	m := s.doc.Load().Models[name]
	if m == nil {
		return Serving{}, fmt.Errorf("%w: model %s is not registered", ErrNotServable, name)
	}
	mv := m.active()
	if mv == nil {
		return Serving{}, fmt.Errorf("%w: model %s has no active version", ErrNotServable, name)
	}
	in, ok := (*s.integ.Load())[integKey(name, mv)]
	switch {
	case !ok:
		return Serving{}, fmt.Errorf("%w: %s@%s has not been verified by this process yet", ErrNotServable, name, mv.Version)
	case !in.ok:
		return Serving{}, fmt.Errorf("%w: %s@%s failed verification at %s: %s", ErrNotServable, name, mv.Version,
			in.checkedAt.UTC().Format(time.RFC3339), in.err)
	}
	return Serving{Name: name, Version: mv.Version, RootDigest: mv.RootDigest}, nil
}

// Models returns a copy of every model, sorted by name.
func (s *Store) Models() []Model {
	d := s.doc.Load()
	out := make([]Model, 0, len(d.Models))
	for _, m := range d.Models {
		c := Model{Name: m.Name, History: slices.Clone(m.History)}
		for _, v := range m.Versions {
			vc := *v
			c.Versions = append(c.Versions, &vc)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Model returns a copy of one model.
func (s *Store) Model(name string) (Model, error) {
	for _, m := range s.Models() {
		if m.Name == name {
			return m, nil
		}
	}
	return Model{}, fmt.Errorf("%w: no model %s", ErrNotFound, name)
}

// Datasets returns a copy of every registered dataset, sorted by name.
func (s *Store) Datasets() []Dataset {
	d := s.doc.Load()
	out := make([]Dataset, 0, len(d.Datasets))
	for _, ds := range d.Datasets {
		c := Dataset{Name: ds.Name}
		for _, v := range ds.Versions {
			vc := *v
			c.Versions = append(c.Versions, &vc)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Dataset returns a copy of one registered dataset.
func (s *Store) Dataset(name string) (Dataset, error) {
	for _, ds := range s.Datasets() {
		if ds.Name == name {
			return ds, nil
		}
	}
	return Dataset{}, fmt.Errorf("%w: no dataset %s", ErrNotFound, name)
}

// RegisterDataset verifies a dataset version (signature, every file, and
// the chain of custody through the versions already registered) and
// records it.
func (s *Store) RegisterDataset(ctx context.Context, dir string, bundleJSON []byte, by Actor) (*DatasetVersion, error) {
	real, err := s.checkDir(dir)
	if err != nil {
		return nil, err
	}
	signed, _, err := verifyBundle(bundleJSON, s.opts.Keys)
	if err != nil {
		return nil, err
	}
	if signed.Dataset == nil {
		return nil, fmt.Errorf("%w: the bundle signs a model, not a dataset", ErrInvalid)
	}
	name := signed.Dataset.Name
	lookup := func(version string) ([]byte, error) {
		ds := s.doc.Load().Datasets[name]
		if ds == nil {
			return nil, nil
		}
		for _, v := range ds.Versions {
			if v.Version == version {
				return s.readBundle("datasets", name, version, v.BundleSHA256)
			}
		}
		return nil, nil
	}
	chain, err := VerifyDatasetChain(ctx, real, bundleJSON, s.opts.Keys, lookup)
	if err != nil {
		return nil, err
	}
	head := chain[0]
	now := s.opts.Now()
	var out *DatasetVersion
	err = s.update(ctx, func(d *document) ([]Event, error) {
		ds := d.Datasets[name]
		if ds == nil {
			ds = &Dataset{Name: name}
			d.Datasets[name] = ds
		}
		for _, v := range ds.Versions {
			if v.Version == head.Version {
				return nil, fmt.Errorf("%w: dataset %s@%s is already registered", ErrConflict, name, head.Version)
			}
		}
		sum, err := s.writeBundle("datasets", name, head.Version, bundleJSON)
		if err != nil {
			return nil, err
		}
		dv := &DatasetVersion{DatasetProvenance: *signed.Dataset, Dir: real, RootDigest: head.RootDigest,
			BundleSHA256: sum, Signer: head.Signer, RegisteredAt: now, RegisteredBy: by.ID}
		ds.Versions = append(ds.Versions, dv)
		c := *dv
		out = &c
		return []Event{{Time: now, Action: "dataset.register", Name: name, Version: head.Version, To: StateVerified,
			Actor: by.ID, RequestID: by.RequestID, OK: true,
			Reason: fmt.Sprintf("chain of custody of %d versions verified; signed by %s", len(chain), head.Signer)}}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
