package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Reloader keeps a Stage's engine in step with its policy directory. A
// reload reads the directory once, compiles the policy files and runs the
// Rego tests (*_test.rego) of that same read; only if both succeed does
// the new engine replace the old one, atomically (Stage.Swap). Otherwise
// the old engine stays and the error is reported: in the log, to the
// OnResult hook (metrics) and in Status (the admin API).
type Reloader struct {
	dir      string
	stage    *Stage
	logger   *slog.Logger
	onResult func(ReloadResult)

	mu       sync.Mutex // serialises reloads; guards the fields below
	attempts string     // fingerprint of the last snapshot tried (policy + tests)
	status   Status
}

// Status is what the admin API reports about the loaded policy.
type Status struct {
	Dir         string    `json:"dir"`
	Version     string    `json:"version"`               // the version in force
	Files       []string  `json:"files"`                 // its files, relative to Dir
	LoadedAt    time.Time `json:"loaded_at"`             // when it was put in force
	LastAttempt time.Time `json:"last_attempt"`          // the last reload, successful or not
	LastError   string    `json:"last_error"`            // why the last reload failed; "" if it did not
	Reloads     uint64    `json:"reloads"`               // successful reloads since the start
	Failures    uint64    `json:"failures"`              // failed reloads since the start
	FailedTests []string  `json:"failed_tests,omitzero"` // tests that failed the last reload
}

// ReloadResult is the outcome of one reload, for metrics.
type ReloadResult struct {
	OK      bool
	Version string // the version in force after the reload
	Err     error  // why it failed
}

// ReloaderOptions tune a Reloader.
type ReloaderOptions struct {
	Logger   *slog.Logger       // nil discards
	OnResult func(ReloadResult) // called after every reload attempt; nil for none
	// Fingerprint identifies what stage's current engine was loaded from
	// (Snapshot.Fingerprint); a directory with the same fingerprint is not
	// reloaded by Poll. "" reloads on the first poll.
	Fingerprint string
}

// maxFailedTests bounds the failing tests named in an error.
const maxFailedTests = 5

// NewReloader returns a reloader for the policy in dir, whose engine stage
// currently runs. The engine must have been loaded from dir.
func NewReloader(dir string, stage *Stage, opts ReloaderOptions) *Reloader {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{dir: dir, stage: stage, logger: opts.Logger, onResult: opts.OnResult, attempts: opts.Fingerprint}
	r.status.Dir = dir
	if e := stage.Engine(); e != nil {
		r.status.Version, r.status.Files, r.status.LoadedAt = e.version, e.Files(), e.loadedAt
	}
	return r
}

// LoadSnapshot loads the policy in dir as Load does and also returns the
// fingerprint of the files read (policy and tests), for ReloaderOptions.
func LoadSnapshot(ctx context.Context, dir string) (*Engine, string, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, "", err
	}
	e, err := s.compile(ctx)
	if err != nil {
		return nil, "", err
	}
	return e, s.fingerprint(), nil
}

// Status returns the current status.
func (r *Reloader) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.status
	st.Files = slices.Clone(st.Files)
	st.FailedTests = slices.Clone(st.FailedTests)
	return st
}

// Reload reads, compiles and tests the policy directory and swaps the new
// engine in if all of that succeeds, whether or not the files changed
// (SIGHUP). On failure the old engine stays in force and the error is
// returned and recorded.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := readSnapshot(r.dir)
	if err != nil {
		return r.failed(err, nil)
	}
	return r.apply(ctx, s)
}

// Poll reloads if the policy or test files changed since the last attempt.
// A change is acted on once the directory reads the same twice, settle
// apart, so that a file caught in the middle of a write is not reported as
// a broken policy. It reports whether it attempted a reload.
func (r *Reloader) Poll(ctx context.Context, settle time.Duration) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := readSnapshot(r.dir)
	if err != nil {
		if r.attempts == "error:"+err.Error() {
			return false, nil // the same failure as last time: reported already
		}
		r.attempts = "error:" + err.Error()
		return true, r.failed(err, nil)
	}
	fp := s.fingerprint()
	if fp == r.attempts {
		return false, nil
	}
	for range 10 { // wait for the directory to settle, but not for ever
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(settle):
		}
		again, err := readSnapshot(r.dir)
		if err != nil {
			r.attempts = "error:" + err.Error()
			return true, r.failed(err, nil)
		}
		if again.fingerprint() == fp {
			break
		}
		s, fp = again, again.fingerprint()
	}
	r.attempts = fp
	return true, r.apply(ctx, s)
}

// Watch polls the directory every interval until ctx ends. Reload errors
// are reported through Status, OnResult and the log, not returned.
func (r *Reloader) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = time.Second
	}
	settle := min(interval/2, 250*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, _ = r.Poll(ctx, settle)
		}
	}
}

// apply compiles and tests s and swaps it in. r.mu is held.
func (r *Reloader) apply(ctx context.Context, s *snapshot) error {
	r.attempts = s.fingerprint()
	e, err := s.compile(ctx)
	if err != nil {
		return r.failed(err, nil)
	}
	results, err := s.runTests(ctx)
	if err != nil {
		return r.failed(err, nil)
	}
	var failed []string
	for _, t := range results {
		if t.Outcome == OutcomeFail || t.Outcome == OutcomeError {
			failed = append(failed, fmt.Sprintf("%s %s (%s:%d)", t.Outcome, t.Name, t.File, t.Line))
		}
	}
	if len(failed) > 0 {
		shown := failed[:min(len(failed), maxFailedTests)]
		msg := fmt.Sprintf("%d of %d tests did not pass: %s", len(failed), len(results), strings.Join(shown, "; "))
		if len(failed) > len(shown) {
			msg += "; ..."
		}
		return r.failed(errors.New(msg), failed)
	}
	old := r.stage.Swap(e)
	now := time.Now()
	r.status.Version, r.status.Files, r.status.LoadedAt = e.version, e.Files(), now
	r.status.LastAttempt, r.status.LastError, r.status.FailedTests = now, "", nil
	r.status.Reloads++
	var oldVersion string
	if old != nil {
		oldVersion = old.version
	}
	r.logger.Info("policy: reloaded", "dir", r.dir, "version", e.version, "previous_version", oldVersion,
		"files", len(r.status.Files), "tests", len(results))
	if r.onResult != nil {
		r.onResult(ReloadResult{OK: true, Version: e.version})
	}
	return nil
}

// failed records a failed reload. r.mu is held.
func (r *Reloader) failed(err error, failedTests []string) error {
	err = fmt.Errorf("policy: reload %s: %w", r.dir, err)
	r.status.LastAttempt = time.Now()
	r.status.LastError = err.Error()
	r.status.FailedTests = failedTests
	r.status.Failures++
	r.logger.Error("policy: reload failed; the previous policy stays in force",
		"dir", r.dir, "version", r.status.Version, "err", err)
	if r.onResult != nil {
		r.onResult(ReloadResult{Version: r.status.Version, Err: err})
	}
	return err
}
