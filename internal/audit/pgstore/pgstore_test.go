package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/audit/audittest"
	"github.com/warden-ai/warden/internal/audit/pgstore"
)

// dsn returns the test database, or skips.
func dsn(t *testing.T) string {
	t.Helper()
	d := os.Getenv("WARDEN_TEST_POSTGRES")
	if d == "" {
		t.Skip("WARDEN_TEST_POSTGRES is not set: give a PostgreSQL DSN, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable, to run the PostgreSQL audit backend tests")
	}
	return d
}

// newSchema returns a fresh schema name, dropped when the test ends.
func newSchema(t *testing.T, d string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "audit_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, d)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

func open(t *testing.T, d, schema string, ro bool) *pgstore.Backend {
	t.Helper()
	b, err := pgstore.Open(context.Background(), d, pgstore.Options{Schema: schema, ReadOnly: ro})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return b
}

func TestConformance(t *testing.T) {
	d := dsn(t)
	t.Parallel()
	audittest.Run(t, func(t *testing.T) func(t *testing.T) audit.Backend {
		schema := newSchema(t, d)
		return func(t *testing.T) audit.Backend { return open(t, d, schema, false) }
	})
}

func newKey(t *testing.T, name string) *audit.Key {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.NewKey(skey, vkey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeLog writes n records with a Log and closes it.
func writeLog(t *testing.T, d, schema string, key *audit.Key, n int) {
	t.Helper()
	l, err := audit.OpenBackend(open(t, d, schema, false), audit.Options{Key: key, Origin: "test/pg", CheckpointEvery: 7})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := l.Append(context.Background(), &audit.Record{RequestID: fmt.Sprintf("r%d", i), Method: "POST", Path: "/v1/x", Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// Only one process writes a log: a second writer is refused while the
// first is open, and gets the lock once it is closed; readers are not
// refused.
func TestSingleWriter(t *testing.T) {
	d := dsn(t)
	t.Parallel()
	schema := newSchema(t, d)
	a := open(t, d, schema, false)
	_, err := pgstore.Open(context.Background(), d, pgstore.Options{Schema: schema, Timeout: 500 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "writer lock") {
		t.Fatalf("second writer: %v, want a writer lock error", err)
	}
	r := open(t, d, schema, true)
	if _, err := r.Size(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Append(context.Background(), 0, nil, nil); err == nil {
		t.Error("Append on a read-only backend succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := open(t, d, schema, false)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}

// Migrations are recorded and idempotent; a read-only open of a schema
// without a log, and a log written by a newer warden, are refused.
func TestMigrations(t *testing.T) {
	d := dsn(t)
	t.Parallel()
	schema := newSchema(t, d)
	if _, err := pgstore.Open(context.Background(), d, pgstore.Options{Schema: schema, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "no audit log") {
		t.Fatalf("read-only open of an empty schema: %v", err)
	}
	for range 2 {
		if err := open(t, d, schema, false).Close(); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var versions []int
	rows, _ := c.Query(ctx, "SELECT version FROM "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" ORDER BY version")
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil || fmt.Sprint(versions) != "[1]" {
		t.Fatalf("schema versions %v %v", versions, err)
	}
	if _, err := c.Exec(ctx, "INSERT INTO "+pgx.Identifier{schema, "schema_version"}.Sanitize()+" (version) VALUES (99)"); err != nil {
		t.Fatal(err)
	}
	for _, ro := range []bool{false, true} {
		if _, err := pgstore.Open(ctx, d, pgstore.Options{Schema: schema, ReadOnly: ro}); err == nil || !strings.Contains(err.Error(), "newer warden") {
			t.Errorf("open (read-only %v) of a newer schema: %v", ro, err)
		}
	}
}

// Verify finds a record changed, or deleted, in the table.
func TestVerifyDetectsTampering(t *testing.T) {
	d := dsn(t)
	t.Parallel()
	ctx := context.Background()
	key := newKey(t, "test/pg")
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tests := []struct {
		name, sql string
		first     int64
	}{
		{"changed", `UPDATE %s SET data = convert_to(replace(convert_from(data, 'UTF8'), '"status":200', '"status":403'), 'UTF8') WHERE idx = 11`, 11},
		{"deleted", `DELETE FROM %s WHERE idx = 5`, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := newSchema(t, d)
			writeLog(t, d, schema, key, 20)
			b := open(t, d, schema, true)
			defer b.Close()
			rep, err := audit.VerifyBackend(ctx, b, audit.VerifyOptions{Verifier: key.Verifier()})
			if err != nil || rep.Records != 20 || rep.Tail != 0 {
				t.Fatalf("untouched log: %+v %v", rep, err)
			}
			tag, err := c.Exec(ctx, fmt.Sprintf(tt.sql, pgx.Identifier{schema, "records"}.Sanitize()))
			if err != nil || tag.RowsAffected() != 1 {
				t.Fatalf("tamper: %v %v", tag, err)
			}
			_, err = audit.VerifyBackend(ctx, b, audit.VerifyOptions{Verifier: key.Verifier()})
			var ve *audit.VerifyError
			var ce *audit.CorruptError
			switch {
			case errors.As(err, &ve):
				if ve.Index > tt.first {
					t.Errorf("first bad record %d, want ≤ %d: %v", ve.Index, tt.first, err)
				}
			case errors.As(err, &ce):
				if ce.Index != tt.first {
					t.Errorf("corrupt record %d, want %d: %v", ce.Index, tt.first, err)
				}
			default:
				t.Fatalf("VerifyBackend of a tampered log: %v, want a VerifyError or CorruptError", err)
			}
		})
	}
}

// A database that cannot be reached is a clear error at open, naming the
// database without its password; a Log whose database goes away fails
// closed: Append returns an error and Healthy reports it.
func TestDatabaseDown(t *testing.T) {
	d := dsn(t)
	t.Parallel()
	_, err := pgstore.Open(context.Background(), "postgres://warden:s3cret@127.0.0.1:1/none?sslmode=disable&connect_timeout=2", pgstore.Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("open of an unreachable database: %v", err)
	}
	schema := newSchema(t, d)
	key := newKey(t, "test/pg")
	b := open(t, d, schema, false)
	l, err := audit.OpenBackend(b, audit.Options{Key: key, Origin: "test/pg"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.Append(ctx, &audit.Record{RequestID: "before", Method: "GET", Path: "/", Status: 200}); err != nil {
		t.Fatal(err)
	}
	// Cut the writer's session off, as a database restart would.
	c, err := pgx.Connect(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "warden-audit "+schema); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, &audit.Record{RequestID: "after", Method: "GET", Path: "/", Status: 200}); err == nil {
		t.Fatal("Append succeeded after the database session was lost")
	}
	if l.Healthy() == nil {
		t.Fatal("Healthy is nil after a failed append")
	}
	// What was acknowledged is there.
	r := open(t, d, schema, true)
	defer r.Close()
	if _, _, err := audit.Find(ctx, r, "before"); err != nil {
		t.Fatalf("acknowledged record: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db?sslmode=disable": "postgres://u:xxxxx@h:5432/db?sslmode=disable",
		"postgres://u@h/db":                         "postgres://u@h/db",
		"postgres://u@h/db?password=pw":             "postgres://u@h/db?password=xxxxx",
		"host=h user=u password=pw dbname=db":       "host=h user=u password=xxxxx dbname=db",
		"host=h user=u dbname=db":                   "host=h user=u dbname=db",
	} {
		if got := pgstore.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
