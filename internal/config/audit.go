package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Audit is the audit log: an append-only Merkle log with signed checkpoints
// (docs/audit.md).
type Audit struct {
	// Backend is where the log is stored: "file" (default: the directory
	// Path) or "postgres" (a schema in the PostgreSQL database of
	// Postgres; Path is then not used).
	Backend string `yaml:"backend"`
	// Postgres is the database of backend: postgres.
	Postgres AuditPostgres `yaml:"postgres"`
	// Path is the log directory of backend: file; default "audit.log" (the name of the file
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

// AuditPostgres is the PostgreSQL database holding the log.
type AuditPostgres struct {
	// DSN is the connection string (a postgres:// URL or key=value
	// pairs). It may hold a password: prefer DSNEnv. Warden never logs the
	// password.
	DSN string `yaml:"dsn"`
	// DSNEnv names the environment variable holding the DSN, read when
	// the log is opened. Exactly one of DSN and DSNEnv is set.
	DSNEnv string `yaml:"dsn_env"`
	// Schema is the PostgreSQL schema of the log's tables, created at the
	// first start; default "warden_audit". One schema holds one log, and
	// only one warden writes it at a time.
	Schema string `yaml:"schema"`
	// Timeout bounds each database operation; a request whose record
	// cannot be committed within it is refused (503). Default 10s; 100ms
	// to 5m.
	Timeout Duration `yaml:"timeout"`
}

// ConnString returns the DSN: DSN, or the value of the variable DSNEnv.
func (p *AuditPostgres) ConnString() (string, error) {
	switch {
	case p.DSN != "" && p.DSNEnv != "":
		return "", errors.New("config: audit.postgres: both dsn and dsn_env are set; use one")
	case p.DSN != "":
		return p.DSN, nil
	case p.DSNEnv != "":
		v, ok := os.LookupEnv(p.DSNEnv)
		if !ok || strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("config: audit.postgres.dsn_env: environment variable %s is not set or empty", p.DSNEnv)
		}
		return strings.TrimSpace(v), nil
	}
	return "", errors.New("config: audit.postgres: neither dsn nor dsn_env is set")
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
	AuditBackendFile          = "file"
	AuditBackendPostgres      = "postgres"
	DefaultAuditSchema        = "warden_audit"
	DefaultAuditPGTimeout     = Duration(10 * time.Second)
	MinAuditPGTimeout         = Duration(100 * time.Millisecond)
	MaxAuditPGTimeout         = Duration(5 * time.Minute)
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

// auditSchemaRE is what audit.postgres.schema may be: a lower-case SQL
// identifier (internal/audit/pgstore checks the same).
var auditSchemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c *Config) applyAuditDefaults() {
	a := &c.Audit
	if a.Backend == "" {
		a.Backend = AuditBackendFile
	}
	if a.Backend == AuditBackendPostgres {
		if a.Postgres.Schema == "" {
			a.Postgres.Schema = DefaultAuditSchema
		}
		if a.Postgres.Timeout == 0 {
			a.Postgres.Timeout = DefaultAuditPGTimeout
		}
	}
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
	pg := &a.Postgres
	switch a.Backend {
	case AuditBackendFile:
		for _, f := range []struct {
			field string
			set   bool
		}{
			{"audit.postgres.dsn", pg.DSN != ""}, {"audit.postgres.dsn_env", pg.DSNEnv != ""},
			{"audit.postgres.schema", pg.Schema != ""}, {"audit.postgres.timeout", pg.Timeout != 0},
		} {
			if f.set {
				v.add(f.field, "only with backend: postgres")
			}
		}
	case AuditBackendPostgres:
		switch {
		case pg.DSN != "" && pg.DSNEnv != "":
			v.add("audit.postgres.dsn_env", "give dsn or dsn_env, not both")
		case pg.DSN == "" && pg.DSNEnv == "":
			v.add("audit.postgres", "dsn or dsn_env is required with backend: postgres, e.g. dsn_env: WARDEN_AUDIT_DSN")
		case pg.DSNEnv != "" && !envNameRE.MatchString(pg.DSNEnv):
			v.add("audit.postgres.dsn_env", fmt.Sprintf("%q: must be an environment variable name, e.g. WARDEN_AUDIT_DSN", pg.DSNEnv))
		case pg.DSN != "" && !strings.HasPrefix(pg.DSN, "postgres://") && !strings.HasPrefix(pg.DSN, "postgresql://") && !strings.Contains(pg.DSN, "="):
			v.add("audit.postgres.dsn", "must be a postgres:// URL or key=value pairs such as \"host=db dbname=warden\"")
		}
		if !auditSchemaRE.MatchString(pg.Schema) {
			v.add("audit.postgres.schema", fmt.Sprintf("%q: must be 1 to 63 lower-case letters, digits or '_', not starting with a digit", pg.Schema))
		}
		if d := pg.Timeout; d < MinAuditPGTimeout || d > MaxAuditPGTimeout {
			v.add("audit.postgres.timeout", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinAuditPGTimeout.D(), MaxAuditPGTimeout.D()))
		}
	default:
		v.add("audit.backend", fmt.Sprintf("%q: must be file or postgres", a.Backend))
	}
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
	if a.Backend == AuditBackendFile && a.Path != "" && !v.failed("audit.path") {
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
