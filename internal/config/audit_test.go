package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditDefaults(t *testing.T) {
	cfg, err := Parse([]byte(base), "base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	if a.Path != "audit.log" || a.Mode != AuditModeSync || a.Async != (AuditAsync{}) || a.ArchiveDir != "" {
		t.Errorf("audit defaults: %+v", a)
	}
	cp := a.Checkpoint
	if cp.KeyFile != "audit-checkpoint.key" || cp.Origin != "warden/audit" || cp.Every != 1000 || cp.Interval.D() != 10*time.Second || cp.Witness != "" {
		t.Errorf("checkpoint defaults: %+v", cp)
	}
	async := strings.Replace(base, "  path: audit.log\n", "  path: audit.log\n  mode: async\n", 1)
	cfg, err = Parse([]byte(async), "async.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.Async.MaxPending != 1024 || cfg.Audit.Async.MaxDelay.D() != 50*time.Millisecond {
		t.Errorf("async defaults: %+v", cfg.Audit.Async)
	}
}

func TestAuditValidation(t *testing.T) {
	const at = "audit:\n  path: audit.log\n"
	l := lAuditPath // line of "path: audit.log"
	tests := []struct {
		name  string
		audit string // replaces the audit section
		want  []want
	}{
		{"full", at + `  mode: async
  async:
    max_pending: 10
    max_delay: 5ms
  checkpoint:
    key_file: secrets/audit.key
    origin: example.com/warden/audit
    every: 50
    interval: 2s
    witness: /mnt/witness/
  archive_dir: /var/lib/warden/audit-archive
`, nil},
		{"bad mode", at + "  mode: sometimes\n", []want{{"audit.mode", l + 1, "sync or async"}}},
		{"async settings in sync mode", at + "  async:\n    max_pending: 5\n    max_delay: 1s\n", []want{
			{"audit.async.max_pending", l + 2, "only with mode: async"},
			{"audit.async.max_delay", l + 3, "only with mode: async"},
		}},
		{"async bounds", at + "  mode: async\n  async:\n    max_pending: 2000000\n    max_delay: 20s\n", []want{
			{"audit.async.max_pending", l + 3, "between 1 and 1000000"},
			{"audit.async.max_delay", l + 4, "between 1ms and 10s"},
		}},
		{"origin with space", at + "  checkpoint:\n    origin: my log\n", []want{{"audit.checkpoint.origin", l + 2, "spaces"}}},
		{"origin with plus", at + "  checkpoint:\n    origin: a+b\n", []want{{"audit.checkpoint.origin", l + 2, "'+'"}}},
		{"every negative", at + "  checkpoint:\n    every: -1\n", []want{{"audit.checkpoint.every", l + 2, "at least 1"}}},
		{"interval too short", at + "  checkpoint:\n    interval: 1ms\n", []want{{"audit.checkpoint.interval", l + 2, "between 100ms and 1h0m0s"}}},
		{"key inside the log", at + "  checkpoint:\n    key_file: audit.log/key\n", []want{{"audit.checkpoint.key_file", l + 2, "kept apart"}}},
		{"witness inside the log", at + "  checkpoint:\n    witness: ./audit.log/w\n", []want{{"audit.checkpoint.witness", l + 2, "proves nothing"}}},
		{"archive is the log", at + "  archive_dir: audit.log\n", []want{{"audit.archive_dir", l + 1, "inside audit.path"}}},
		{"key is the keys file", at + "  checkpoint:\n    key_file: keys.json\n", []want{{"audit.checkpoint.key_file", l + 2, "same file as keys.path"}}},
		{"witness is the key", at + "  checkpoint:\n    key_file: k\n    witness: k\n", []want{{"audit.checkpoint.witness", l + 3, "same file as audit.checkpoint.key_file"}}},
		{"keys inside the log", "audit:\n  path: .\n", []want{
			{"audit.checkpoint.key_file", l - 1, "kept apart"},
			{"audit.path", l, "must not hold keys.path"},
		}},
		{"unknown field", at + "  dir: x\n", []want{{"audit.dir", l + 1, "unknown field"}}},
		{"postgres", at + "  backend: postgres\n  postgres:\n    dsn_env: WARDEN_AUDIT_DSN\n    schema: audit_prod\n    timeout: 3s\n", nil},
		{"postgres dsn", at + "  backend: postgres\n  postgres:\n    dsn: postgres://warden@db/warden\n", nil},
		{"bad backend", at + "  backend: s3\n", []want{{"audit.backend", l + 1, "file or postgres"}}},
		{"postgres without dsn", at + "  backend: postgres\n  postgres:\n    schema: a\n", []want{{"audit.postgres", l + 2, "dsn or dsn_env is required"}}},
		{"postgres both dsn", at + "  backend: postgres\n  postgres:\n    dsn: host=db\n    dsn_env: X\n", []want{{"audit.postgres.dsn_env", l + 4, "not both"}}},
		{"postgres bad env", at + "  backend: postgres\n  postgres:\n    dsn_env: my-dsn\n", []want{{"audit.postgres.dsn_env", l + 3, "environment variable name"}}},
		{"postgres bad dsn", at + "  backend: postgres\n  postgres:\n    dsn: db.example.com\n", []want{{"audit.postgres.dsn", l + 3, "postgres:// URL"}}},
		{"postgres bad schema and timeout", at + "  backend: postgres\n  postgres:\n    dsn: host=db\n    schema: Audit-Log\n    timeout: 1h\n", []want{
			{"audit.postgres.schema", l + 4, "lower-case"},
			{"audit.postgres.timeout", l + 5, "between 100ms and 5m0s"},
		}},
		{"postgres settings with the file backend", at + "  postgres:\n    dsn: host=db\n", []want{{"audit.postgres.dsn", l + 2, "only with backend: postgres"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, at, tt.audit, 1)
			_, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tt.want)
		})
	}
}

func TestAuditLoad(t *testing.T) {
	dir, path := testDir(t)
	editFile(t, dir, "path: data/audit.log", "path: data/audit\n  checkpoint:\n    witness: witness/\n  archive_dir: archive")
	mkdir(t, dir, "witness")
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Audit
	for got, want := range map[string]string{
		a.Path:               filepath.Join(dir, "data/audit"),
		a.Checkpoint.KeyFile: filepath.Join(dir, "audit-checkpoint.key"),
		a.Checkpoint.Witness: filepath.Join(dir, "witness"),
		a.ArchiveDir:         filepath.Join(dir, "archive"),
	} {
		if got != want {
			t.Errorf("resolved %q, want %q", got, want)
		}
	}
	// A witness in a missing directory, an archive that is a file.
	editFile(t, dir, "witness: witness/", "witness: nowhere/w.checkpoint")
	put(t, dir, "archive", "x")
	_, err = Load(path)
	checkErrors(t, err, []want{
		{"audit.checkpoint.witness", vAuditPath + 2, "does not exist"},
		{"audit.archive_dir", vAuditPath + 3, "not a directory"},
	})
}

func TestAuditPostgresConnString(t *testing.T) {
	doc := strings.Replace(base, "  path: audit.log\n", "  path: audit.log\n  backend: postgres\n  postgres:\n    dsn_env: WARDEN_TEST_AUDIT_DSN\n", 1)
	cfg, err := Parse([]byte(doc), "pg.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pg := cfg.Audit.Postgres
	if cfg.Audit.Backend != AuditBackendPostgres || pg.Schema != DefaultAuditSchema || pg.Timeout != DefaultAuditPGTimeout {
		t.Errorf("postgres defaults: %+v", cfg.Audit)
	}
	t.Setenv("WARDEN_TEST_AUDIT_DSN", "")
	if _, err := pg.ConnString(); err == nil || !strings.Contains(err.Error(), "WARDEN_TEST_AUDIT_DSN") {
		t.Errorf("ConnString with the variable empty: %v", err)
	}
	t.Setenv("WARDEN_TEST_AUDIT_DSN", "postgres://u@h/db\n")
	if s, err := pg.ConnString(); err != nil || s != "postgres://u@h/db" {
		t.Errorf("ConnString: %q %v", s, err)
	}
	cfg, err = Parse([]byte(base), "base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Audit.Backend != AuditBackendFile || cfg.Audit.Postgres != (AuditPostgres{}) {
		t.Errorf("file backend defaults: %+v", cfg.Audit)
	}
}
