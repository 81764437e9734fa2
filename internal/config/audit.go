package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Audit is the audit log: an append-only Merkle log with signed checkpoints
// (docs/audit.md).
type Audit struct {
	// Path is the log directory; default "audit.log" (the name of the file
	// older wardens wrote). It is created (mode 0700) at the first start.
	Path string `yaml:"path"`
	// Mode is "sync" (default: a request is answered only once its record
	// is durable) or "async" (answered once queued; see Async).
	Mode string `yaml:"mode"`
	// Async bounds what async mode may lose in a crash.
	Async AuditAsync `yaml:"async"`
	// Checkpoint configures the signed checkpoints.
	Checkpoint AuditCheckpoint `yaml:"checkpoint"`
	// ArchiveDir is where `warden audit archive` moves old segments.
	ArchiveDir string `yaml:"archive_dir"`
}

// AuditAsync bounds async mode's loss window.
type AuditAsync struct {
	// MaxPending is the most records answered but not yet durable.
	// Default 1024; 1 to 1,000,000.
	MaxPending int `yaml:"max_pending"`
	// MaxDelay is the longest the writer waits to batch records before it
	// commits. Default 50ms; 1ms to 10s.
	MaxDelay Duration `yaml:"max_delay"`
}

// AuditCheckpoint configures signed checkpoints.
type AuditCheckpoint struct {
	// KeyFile holds the Ed25519 signing key (note format), generated with
	// mode 0600 at the first start if absent. Default
	// "audit-checkpoint.key"; never inside Path.
	KeyFile string `yaml:"key_file"`
	// Origin names the log in its checkpoints and the key. Default
	// "warden/audit".
	Origin string `yaml:"origin"`
	// Every: a checkpoint is made once this many records were added since
	// the last one. Default 1000.
	Every int64 `yaml:"every"`
	// Interval: a checkpoint is made this long after records were added,
	// whatever their number. Default 10s; 100ms to 1h.
	Interval Duration `yaml:"interval"`
	// Witness, if set, is a file, or an existing directory, that gets a
	// copy of every checkpoint; it must not be inside Path.
	Witness string `yaml:"witness"`
}

// Audit defaults and limits.
const (
	AuditModeSync             = "sync"
	AuditModeAsync            = "async"
	DefaultAuditKeyFile       = "audit-checkpoint.key"
	DefaultAuditOrigin        = "warden/audit"
	DefaultAuditEvery         = 1000
	DefaultAuditInterval      = Duration(10 * time.Second)
	MinAuditInterval          = Duration(100 * time.Millisecond)
	MaxAuditInterval          = Duration(time.Hour)
	DefaultAuditMaxPending    = 1024
	MaxAuditMaxPending        = 1_000_000
	DefaultAuditMaxDelay      = Duration(50 * time.Millisecond)
	MinAuditMaxDelay          = Duration(time.Millisecond)
	MaxAuditMaxDelay          = Duration(10 * time.Second)
	maxAuditOriginLen         = 255
	auditAsyncOnlyWithAsyncMs = "only with mode: async"
)

func (c *Config) applyAuditDefaults() {
	a := &c.Audit
	if a.Path == "" {
		a.Path = DefaultAuditPath
	}
	if a.Mode == "" {
		a.Mode = AuditModeSync
	}
	if a.Mode == AuditModeAsync {
		if a.Async.MaxPending == 0 {
			a.Async.MaxPending = DefaultAuditMaxPending
		}
		if a.Async.MaxDelay == 0 {
			a.Async.MaxDelay = DefaultAuditMaxDelay
		}
	}
	cp := &a.Checkpoint
	if cp.KeyFile == "" {
		cp.KeyFile = DefaultAuditKeyFile
	}
	if cp.Origin == "" {
		cp.Origin = DefaultAuditOrigin
	}
	if cp.Every == 0 {
		cp.Every = DefaultAuditEvery
	}
	if cp.Interval == 0 {
		cp.Interval = DefaultAuditInterval
	}
}

func (c *Config) resolveAuditPaths(abs func(string) string) {
	a := &c.Audit
	a.Path = abs(a.Path)
	a.ArchiveDir = abs(a.ArchiveDir)
	a.Checkpoint.KeyFile = abs(a.Checkpoint.KeyFile)
	a.Checkpoint.Witness = abs(a.Checkpoint.Witness)
}

// pathWithin reports whether path is dir or inside it (both cleaned).
func pathWithin(path, dir string) bool {
	path, dir = filepath.Clean(path), filepath.Clean(dir)
	if path == dir {
		return true
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel)
}

// checkAuditOrigin applies the rules of a checkpoint origin (it is also the
// signing key's name in the note format).
func checkAuditOrigin(s string) error {
	if len(s) > maxAuditOriginLen || !utf8.ValidString(s) {
		return fmt.Errorf("must be at most %d bytes of UTF-8", maxAuditOriginLen)
	}
	for _, r := range s {
		if r == '+' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return errors.New("must not contain spaces, '+' or control characters, e.g. \"example.com/warden/audit\"")
		}
	}
	return nil
}

func (c *Config) validateAudit(v *validator) {
	a := &c.Audit
	switch {
	case a.Path == "":
		v.add("audit.path", "required")
	case c.Keys.Path != "" && filepath.Clean(c.Keys.Path) == filepath.Clean(a.Path):
		v.add("audit.path", "must not be the same file as keys.path")
	case c.Keys.Path != "" && pathWithin(c.Keys.Path, a.Path):
		v.add("audit.path", "must not hold keys.path: audit.path is the log's own directory")
	}
	switch a.Mode {
	case AuditModeSync:
		if a.Async.MaxPending != 0 {
			v.add("audit.async.max_pending", auditAsyncOnlyWithAsyncMs)
		}
		if a.Async.MaxDelay != 0 {
			v.add("audit.async.max_delay", auditAsyncOnlyWithAsyncMs)
		}
	case AuditModeAsync:
		if n := a.Async.MaxPending; n < 1 || n > MaxAuditMaxPending {
			v.add("audit.async.max_pending", fmt.Sprintf("%d: must be between 1 and %d", n, MaxAuditMaxPending))
		}
		if d := a.Async.MaxDelay; d < MinAuditMaxDelay || d > MaxAuditMaxDelay {
			v.add("audit.async.max_delay", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinAuditMaxDelay.D(), MaxAuditMaxDelay.D()))
		}
	default:
		v.add("audit.mode", fmt.Sprintf("%q: must be sync or async", a.Mode))
	}
	cp := &a.Checkpoint
	if err := checkAuditOrigin(cp.Origin); err != nil {
		v.add("audit.checkpoint.origin", fmt.Sprintf("%q: %v", cp.Origin, err))
	}
	if cp.Every < 1 {
		v.add("audit.checkpoint.every", fmt.Sprintf("%d: must be at least 1", cp.Every))
	}
	if d := cp.Interval; d < MinAuditInterval || d > MaxAuditInterval {
		v.add("audit.checkpoint.interval", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinAuditInterval.D(), MaxAuditInterval.D()))
	}
	if a.Path != "" {
		for _, f := range []struct{ field, path, why string }{
			{"audit.checkpoint.key_file", cp.KeyFile, "the signing key must be kept apart from the log it signs"},
			{"audit.checkpoint.witness", cp.Witness, "a witness inside the log proves nothing"},
			{"audit.archive_dir", a.ArchiveDir, "archived segments leave the log directory"},
		} {
			if f.path != "" && pathWithin(f.path, a.Path) {
				v.add(f.field, "must not be inside audit.path: "+f.why)
			}
		}
	}
	if cp.KeyFile != "" {
		for _, o := range append(c.dataFiles(), dataFile{"policy.grants.path", c.Policy.Grants.Path}) {
			if o.field != "audit.path" && o.path != "" && filepath.Clean(o.path) == filepath.Clean(cp.KeyFile) {
				v.add("audit.checkpoint.key_file", "must not be the same file as "+o.field)
				break
			}
		}
	}
	if cp.Witness != "" && cp.KeyFile != "" && filepath.Clean(cp.Witness) == filepath.Clean(cp.KeyFile) {
		v.add("audit.checkpoint.witness", "must not be the same file as audit.checkpoint.key_file")
	}
}

// checkAuditFiles checks what the audit section points at, at Load.
func (c *Config) checkAuditFiles(v *validator) {
	a := &c.Audit
	if a.Path != "" && !v.failed("audit.path") {
		if fi, err := os.Stat(a.Path); err == nil && !fi.IsDir() {
			v.add("audit.path", fmt.Sprintf("%s is a file; audit.path names the log directory. "+
				"A file there may be an older warden's audit log (JSON lines): keep it as evidence and move it aside", a.Path))
		}
	}
	cp := &a.Checkpoint
	if cp.KeyFile != "" && !v.failed("audit.checkpoint.key_file") {
		if fi, err := os.Stat(cp.KeyFile); err == nil && !fi.Mode().IsRegular() {
			v.add("audit.checkpoint.key_file", fmt.Sprintf("%s is not a regular file", cp.KeyFile))
		}
	}
	if cp.Witness != "" && !v.failed("audit.checkpoint.witness") {
		if _, err := os.Stat(cp.Witness); errors.Is(err, fs.ErrNotExist) {
			if fi, err := os.Stat(filepath.Dir(cp.Witness)); err != nil || !fi.IsDir() {
				v.add("audit.checkpoint.witness", fmt.Sprintf("the directory of %s does not exist", cp.Witness))
			}
		}
	}
	if a.ArchiveDir != "" && !v.failed("audit.archive_dir") {
		if fi, err := os.Stat(a.ArchiveDir); err == nil && !fi.IsDir() {
			v.add("audit.archive_dir", fmt.Sprintf("%s is not a directory", a.ArchiveDir))
		}
	}
}
