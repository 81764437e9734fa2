// Package pgstore stores warden's audit log in PostgreSQL: an audit.Backend
// whose every Append is one committed transaction (records and their stored
// hashes together, so a reader never sees one without the other), whose
// schema is created and migrated at open, and which only one process at a
// time may write, enforced by a PostgreSQL advisory lock.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-ai/warden/internal/audit"
)

// DefaultSchema is the PostgreSQL schema that holds the log unless
// Options.Schema names another.
const DefaultSchema = "warden_audit"

// DefaultTimeout bounds each database operation (connect, append, read).
const DefaultTimeout = 10 * time.Second

// readChunk bounds how many records, or about how many bytes, ReadRecords
// holds in memory between queries.
const (
	readChunkRecords = 1024
	readChunkBytes   = 4 << 20
)

// schemaRE is what Options.Schema may be: a lower-case SQL identifier.
var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CheckSchema reports whether s may name the schema of a log.
func CheckSchema(s string) error {
	if !schemaRE.MatchString(s) {
		return fmt.Errorf("schema %q: must be 1 to 63 lower-case letters, digits or '_', not starting with a digit", s)
	}
	return nil
}

// Options configure a Backend.
type Options struct {
	// Schema is the PostgreSQL schema holding the log's tables; default
	// DefaultSchema. One schema holds one log.
	Schema string
	// ReadOnly opens the log for reading only: no schema changes, no
	// writer lock, Append and AddCheckpoint fail. For `warden audit`.
	ReadOnly bool
	// Timeout bounds each database operation; default DefaultTimeout.
	Timeout time.Duration
}

// Backend is an audit.Backend in PostgreSQL. It holds two connections:
// the writer's, which holds the schema's advisory lock for as long as the
// Backend is open (it is never silently re-established: if it is lost, so
// is the lock, and Append fails), and one for reads, re-established when
// it breaks. Safe for concurrent use.
type Backend struct {
	cfg    *pgx.ConnConfig
	opts   Options
	target string // the DSN without its password, for errors

	records, hashes, checkpoints, version string // qualified table names
	recordsID, hashesID                   pgx.Identifier

	wmu sync.Mutex
	w   *pgx.Conn // nil when ReadOnly

	rmu sync.Mutex
	r   *pgx.Conn

	closed atomic.Bool
}

// Redact returns dsn with its password replaced, for logs and errors.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		q := u.Query()
		if q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	// key=value form.
	fields := strings.Fields(dsn)
	for i, f := range fields {
		if strings.HasPrefix(f, "password=") {
			fields[i] = "password=xxxxx"
		}
	}
	return strings.Join(fields, " ")
}

// lockKey is the advisory lock key of a schema's writer (and, with
// purpose "migrate", of its migrations).
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "warden/audit/%s/%s", purpose, schema)
	return int64(h.Sum64())
}

// Open connects to the database at dsn (a PostgreSQL URL or key=value
// string), creates or migrates the log's schema unless opts.ReadOnly, and
// takes the schema's writer lock: if another process holds it, Open fails.
func Open(ctx context.Context, dsn string, opts Options) (*Backend, error) {
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if err := CheckSchema(opts.Schema); err != nil {
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("pgstore: open: %w", err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > opts.Timeout {
		cfg.ConnectTimeout = opts.Timeout
	}
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = "warden-audit " + opts.Schema
	q := func(table string) string { return pgx.Identifier{opts.Schema, table}.Sanitize() }
	b := &Backend{
		cfg: cfg, opts: opts, target: Redact(dsn),
		records: q("records"), hashes: q("hashes"), checkpoints: q("checkpoints"), version: q("schema_version"),
		recordsID: pgx.Identifier{opts.Schema, "records"}, hashesID: pgx.Identifier{opts.Schema, "hashes"},
	}
	if err := b.open(ctx); err != nil {
		b.closeConns()
		return nil, fmt.Errorf("pgstore: open schema %s at %s: %w", opts.Schema, b.target, err)
	}
	return b, nil
}

func (b *Backend) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	var err error
	if !b.opts.ReadOnly {
		if b.w, err = pgx.ConnectConfig(ctx, b.cfg.Copy()); err != nil {
			return fmt.Errorf("connect: %w", err)
		}
		// The lock is retried until the open's deadline: a warden restarted
		// right after a crash may find its old session not yet gone.
		for {
			var locked bool
			if err := b.w.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey("writer", b.opts.Schema)).Scan(&locked); err != nil {
				return fmt.Errorf("take the writer lock: %w", err)
			}
			if locked {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("another process (a second warden replica?) is writing this audit log: " +
					"it holds the schema's writer lock; one log has one writer, give each replica its own audit.postgres.schema")
			case <-time.After(100 * time.Millisecond):
			}
		}
		if err := b.migrate(ctx); err != nil {
			return err
		}
	}
	if b.r, err = pgx.ConnectConfig(ctx, b.cfg.Copy()); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	v, err := b.schemaVersion(ctx, b.r)
	if err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("the schema is at version %d, this warden knows up to %d: a newer warden wrote it", v, len(migrations))
	}
	if v < len(migrations) {
		return fmt.Errorf("the schema is at version %d, want %d: start warden (serve) once to migrate it", v, len(migrations))
	}
	return nil
}

// migrations are applied in order; migration i brings the schema to
// version i+1. Never change one that shipped: add another.
var migrations = []string{
	// 1: records, their stored hashes (tlog.StoredHashIndex order) and the
	// signed checkpoints.
	`CREATE TABLE %[1]s.records (
		idx  bigint PRIMARY KEY CHECK (idx >= 0),
		data bytea NOT NULL CHECK (length(data) > 0)
	);
	CREATE TABLE %[1]s.hashes (
		idx  bigint PRIMARY KEY CHECK (idx >= 0),
		hash bytea NOT NULL CHECK (length(hash) = 32)
	);
	CREATE TABLE %[1]s.checkpoints (
		size      bigint PRIMARY KEY CHECK (size > 0),
		signed    bytea NOT NULL,
		stored_at timestamptz NOT NULL DEFAULT now()
	);`,
}

// migrate creates the schema and applies the migrations it lacks, in one
// transaction under an advisory lock, so concurrent opens are safe.
func (b *Backend) migrate(ctx context.Context) error {
	schema := pgx.Identifier{b.opts.Schema}.Sanitize()
	tx, err := b.w.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("migrate", b.opts.Schema)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+schema); err != nil {
		return fmt.Errorf("migrate: create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+b.version+
		" (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		return fmt.Errorf("migrate: create %s: %w", b.version, err)
	}
	var v int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+b.version).Scan(&v); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("migrate: the schema is at version %d, this warden knows up to %d: a newer warden wrote it", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[i], schema)); err != nil {
			return fmt.Errorf("migrate: to version %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+b.version+" (version) VALUES ($1)", i+1); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", i+1, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

func (b *Backend) schemaVersion(ctx context.Context, c *pgx.Conn) (int, error) {
	var v int
	err := c.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+b.version).Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "42P01" || pe.Code == "3F000") { // undefined_table, invalid_schema_name
		return 0, fmt.Errorf("no audit log in schema %s (warden has not written one there)", b.opts.Schema)
	}
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// reader runs fn on the read connection, reconnecting first if it broke.
func (b *Backend) reader(ctx context.Context, fn func(ctx context.Context, c *pgx.Conn) error) error {
	if b.closed.Load() {
		return audit.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if b.r == nil || b.r.IsClosed() {
		c, err := pgx.ConnectConfig(ctx, b.cfg.Copy())
		if err != nil {
			return fmt.Errorf("reconnect to %s: %w", b.target, err)
		}
		b.r = c
	}
	return fn(ctx, b.r)
}

// writer runs fn on the writer's connection, which holds the lock.
func (b *Backend) writer(ctx context.Context, fn func(ctx context.Context, c *pgx.Conn) error) error {
	if b.opts.ReadOnly {
		return errors.New("the log is open read-only")
	}
	if b.closed.Load() {
		return audit.ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.Timeout)
	defer cancel()
	b.wmu.Lock()
	defer b.wmu.Unlock()
	if b.w.IsClosed() {
		return fmt.Errorf("the connection to %s that held the writer lock was lost; restart warden to take the lock again", b.target)
	}
	return fn(ctx, b.w)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (b *Backend) size(ctx context.Context, q querier) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, "SELECT coalesce(max(idx) + 1, 0) FROM "+b.records).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// Size returns the number of records; each was committed with its hashes.
func (b *Backend) Size(ctx context.Context) (int64, error) {
	var n int64
	err := b.reader(ctx, func(ctx context.Context, c *pgx.Conn) (err error) {
		n, err = b.size(ctx, c)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: size: %w", err)
	}
	return n, nil
}

// Append stores the records and their stored hashes in one transaction:
// when it returns nil, the transaction is committed (durable as PostgreSQL
// makes commits durable: synchronous_commit on, the default), and when it
// returns an error nothing of it is visible, unless the commit itself was
// cut off, in which case all of it may be.
func (b *Backend) Append(ctx context.Context, first int64, records [][]byte, hashes []tlog.Hash) error {
	n := int64(len(records))
	if first < 0 {
		return fmt.Errorf("pgstore: append: first record %d", first)
	}
	want := tlog.StoredHashCount(first+n) - tlog.StoredHashCount(first)
	if int64(len(hashes)) != want {
		return fmt.Errorf("pgstore: append: %d hashes for records %d..%d, want %d", len(hashes), first, first+n-1, want)
	}
	for i, r := range records {
		if len(r) == 0 || len(r) > audit.MaxRecordBytes {
			return fmt.Errorf("pgstore: append: record %d is %d bytes (1..%d)", first+int64(i), len(r), audit.MaxRecordBytes)
		}
	}
	err := b.writer(ctx, func(ctx context.Context, c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		size, err := b.size(ctx, tx)
		if err != nil {
			return err
		}
		if size != first {
			return fmt.Errorf("first record %d, but the log holds %d", first, size)
		}
		if n == 0 {
			return nil
		}
		if _, err := tx.CopyFrom(ctx, b.recordsID, []string{"idx", "data"}, pgx.CopyFromSlice(len(records), func(i int) ([]any, error) {
			return []any{first + int64(i), records[i]}, nil
		})); err != nil {
			return fmt.Errorf("copy records: %w", err)
		}
		base := tlog.StoredHashCount(first)
		if _, err := tx.CopyFrom(ctx, b.hashesID, []string{"idx", "hash"}, pgx.CopyFromSlice(len(hashes), func(i int) ([]any, error) {
			return []any{base + int64(i), hashes[i][:]}, nil
		})); err != nil {
			return fmt.Errorf("copy hashes: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("pgstore: append records %d..%d: %w", first, first+n-1, err)
	}
	return nil
}

// ReadHashes returns stored hashes by stored hash index.
func (b *Backend) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	uniq := append([]int64(nil), indexes...)
	sort.Slice(uniq, func(i, j int) bool { return uniq[i] < uniq[j] })
	k := 0
	for i, x := range uniq {
		if i == 0 || x != uniq[k-1] {
			uniq[k] = x
			k++
		}
	}
	uniq = uniq[:k]
	got := make(map[int64]tlog.Hash, len(uniq))
	err := b.reader(context.Background(), func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT idx, hash FROM "+b.hashes+" WHERE idx = ANY($1)", uniq)
		if err != nil {
			return err
		}
		var idx int64
		var h []byte
		_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
			if len(h) != len(tlog.Hash{}) {
				return &audit.CorruptError{Index: -1, Where: fmt.Sprintf("table %s, idx %d", b.hashes, idx), Reason: "stored hash is not 32 bytes"}
			}
			got[idx] = tlog.Hash(h)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: read hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		h, ok := got[x]
		if !ok {
			return nil, fmt.Errorf("pgstore: read hashes: stored hash %d is not stored", x)
		}
		out[i] = h
	}
	return out, nil
}

// ReadRecords calls fn for records start..end-1, reading them in chunks;
// fn runs while no connection is held, so it may call the Backend.
func (b *Backend) ReadRecords(ctx context.Context, start, end int64, fn func(int64, []byte) error) error {
	if start < 0 || end < start {
		return fmt.Errorf("pgstore: read records %d..%d: bad range", start, end)
	}
	if start == end {
		return nil
	}
	n, err := b.Size(ctx)
	if err != nil {
		return err
	}
	if end > n {
		return fmt.Errorf("pgstore: read records %d..%d: the log holds %d", start, end, n)
	}
	type rec struct {
		idx  int64
		data []byte
	}
	var chunk []rec
	for next := start; next < end; {
		chunk = chunk[:0]
		err := b.reader(ctx, func(ctx context.Context, c *pgx.Conn) error {
			rows, err := c.Query(ctx, "SELECT idx, data FROM "+b.records+" WHERE idx >= $1 AND idx < $2 ORDER BY idx LIMIT $3",
				next, end, readChunkRecords)
			if err != nil {
				return err
			}
			defer rows.Close()
			bytes := 0
			for rows.Next() {
				var r rec
				if err := rows.Scan(&r.idx, &r.data); err != nil {
					return err
				}
				chunk = append(chunk, r)
				if bytes += len(r.data); bytes >= readChunkBytes {
					break
				}
			}
			return rows.Err()
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("pgstore: read records from %d: %w", next, err)
		}
		if len(chunk) == 0 {
			return &audit.CorruptError{Index: next, Where: "table " + b.records, Reason: "record missing"}
		}
		for _, r := range chunk {
			if r.idx != next {
				return &audit.CorruptError{Index: next, Where: "table " + b.records, Reason: "record missing"}
			}
			if err := fn(r.idx, r.data); err != nil {
				return err
			}
			next++
		}
	}
	return nil
}

// AddCheckpoint stores a signed checkpoint of the first size records.
func (b *Backend) AddCheckpoint(ctx context.Context, size int64, signed []byte) error {
	err := b.writer(ctx, func(ctx context.Context, c *pgx.Conn) error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		n, err := b.size(ctx, tx)
		if err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(size), 0) FROM "+b.checkpoints).Scan(&last); err != nil {
			return err
		}
		switch {
		case size > n:
			return fmt.Errorf("the log holds %d records", n)
		case size <= last:
			return fmt.Errorf("a checkpoint of %d records is already stored", last)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+b.checkpoints+" (size, signed) VALUES ($1, $2)", size, signed); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return fmt.Errorf("pgstore: add checkpoint of %d records: %w", size, err)
	}
	return nil
}

// Checkpoints calls fn for each stored checkpoint, oldest first.
func (b *Backend) Checkpoints(ctx context.Context, fn func(int64, []byte) error) error {
	type cp struct {
		size   int64
		signed []byte
	}
	var all []cp
	err := b.reader(ctx, func(ctx context.Context, c *pgx.Conn) error {
		rows, err := c.Query(ctx, "SELECT size, signed FROM "+b.checkpoints+" ORDER BY size")
		if err != nil {
			return err
		}
		var x cp
		_, err = pgx.ForEachRow(rows, []any{&x.size, &x.signed}, func() error {
			all = append(all, x)
			return nil
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("pgstore: checkpoints: %w", err)
	}
	for _, x := range all {
		if err := fn(x.size, x.signed); err != nil {
			return err
		}
	}
	return nil
}

// LatestCheckpoint returns the newest stored checkpoint.
func (b *Backend) LatestCheckpoint(ctx context.Context) (int64, []byte, error) {
	var size int64
	var signed []byte
	err := b.reader(ctx, func(ctx context.Context, c *pgx.Conn) error {
		err := c.QueryRow(ctx, "SELECT size, signed FROM "+b.checkpoints+" ORDER BY size DESC LIMIT 1").Scan(&size, &signed)
		if errors.Is(err, pgx.ErrNoRows) {
			size, signed = 0, nil
			return nil
		}
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("pgstore: latest checkpoint: %w", err)
	}
	return size, signed, nil
}

// Schema is the schema holding the log.
func (b *Backend) Schema() string { return b.opts.Schema }

// Target is the database the log is in, without the password.
func (b *Backend) Target() string { return b.target }

// Close closes the connections, which releases the writer lock.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.rmu.Lock()
	defer b.rmu.Unlock()
	return b.closeConns()
}

func (b *Backend) closeConns() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, c := range []*pgx.Conn{b.w, b.r} {
		if c != nil {
			if err := c.Close(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pgstore: close: %w", err)
	}
	return nil
}

var _ audit.Backend = (*Backend)(nil)
