package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Batch bounds for group commit: one write and one fsync cover at most this
// many records, or about this many bytes (the batch is closed once it
// reaches the bound, so it may exceed it by one line).
const (
	maxBatchRecords = 1024
	maxBatchBytes   = 1 << 20
	queueLen        = 4096
)

// ErrClosed is returned by Append after Close, and by Healthy.
var ErrClosed = errors.New("audit: log closed")

// Options configure a Log. The zero value is usable.
type Options struct {
	// Logger receives the log's own errors (a failed write or fsync).
	// Default slog.Default().
	Logger *slog.Logger

	// wrapFile lets tests substitute a failing file.
	wrapFile func(logFile) logFile
}

// logFile is what the writer needs from the file.
type logFile interface {
	io.Writer
	Sync() error
	Close() error
}

// Log is an open audit log. Append is safe for concurrent use; records are
// written in the order their sequence numbers say.
//
// Once a write or fsync fails, the Log is failed for good: the batch in
// flight and every later Append return an error and Healthy reports it. The
// file may then end in a partial line, which the next Open reports rather
// than repairs.
type Log struct {
	path   string
	f      logFile
	logger *slog.Logger

	mu     sync.RWMutex // held for reading while queueing, for writing to close reqs
	closed bool
	reqs   chan *pending
	done   chan struct{} // closed when the writer goroutine has exited

	isClosed atomic.Bool
	failErr  atomic.Pointer[error]

	// Owned by the writer goroutine once Open returns.
	seq  uint64
	prev [32]byte
}

// pending is one queued record and, once written, its outcome.
type pending struct {
	mid  []byte     // encodeMiddle's output
	done chan error // buffered; receives exactly one value
	seq  uint64
	prev [32]byte
	hash [32]byte
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens the audit log at path, creating it with mode 0600 if it does not
// exist. An existing log is verified from the first record to the last to
// recover the chain's head; a broken chain or a torn tail is an error that
// names the line, and the file is left as it is. On systems with flock, a
// second Open of the same file (in this or another process) fails.
func Open(path string, opts Options) (*Log, error) {
	if path == "" {
		return nil, errors.New("audit: open: no path given")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: %w (is another warden using this audit log?)", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("audit: open %s: not a regular file", path)
	}
	if created {
		// Make the new directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: open %s: sync directory: %w", path, err)
		}
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		logger.Warn("audit: log file is readable or writable by others; chmod 600 it", "path", path, "mode", perm.String())
	}

	l := &Log{
		path:   path,
		f:      f,
		logger: logger,
		reqs:   make(chan *pending, queueLen),
		done:   make(chan struct{}),
	}
	if fi.Size() > 0 {
		rep, err := verifyReader(io.NewSectionReader(f, 0, fi.Size()))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: open %s: %w\n%s", path, err, recoveryAdvice(path, err))
		}
		l.seq = rep.Records
		if _, err := hex.Decode(l.prev[:], []byte(rep.Head)); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: open %s: head %q: %w", path, rep.Head, err)
		}
	}
	if opts.wrapFile != nil {
		l.f = opts.wrapFile(l.f)
	}
	go l.run()
	return l, nil
}

// recoveryAdvice tells the operator what to do about a log Open refused.
func recoveryAdvice(path string, err error) string {
	var ve *VerifyError
	if errors.As(err, &ve) && ve.Torn {
		return fmt.Sprintf("The last write to the audit log was interrupted (crash or full disk). warden does not repair the log.\n"+
			"Keep a copy of %[1]s as evidence; then either move it aside so that warden starts a new log, or, once you\n"+
			"have confirmed line %[2]d is a partial record, truncate the file to %[3]d bytes (truncate -s %[3]d %[1]s).", path, ve.Line, ve.Offset)
	}
	return fmt.Sprintf("The audit log is damaged or was tampered with. warden does not repair the log.\n"+
		"Inspect it with 'warden audit verify --log %[1]s', keep it as evidence, and move it aside so that warden starts a new log.", path)
}

// Append writes r to the log and returns once it is on stable storage. It
// assigns r.Seq, r.Prev and r.Hash, and normalizes r as written: Time in UTC
// (the current time if zero), Reason truncated to MaxReasonBytes, and
// anything from a '?' in Path cut off. r is encoded before Append queues it;
// Append keeps no reference to r or its fields.
//
// If ctx ends before the record is queued, it is not written. If ctx ends
// while waiting for the write, Append returns ctx's error and the record
// may or may not be written; callers that must know, such as the audit
// stage, pass a context without cancellation.
func (l *Log) Append(ctx context.Context, r *Record) error {
	if err := l.Healthy(); err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	normalize(r)
	mid, err := encodeMiddle(r)
	if err != nil {
		return fmt.Errorf("audit: append: %w", err)
	}
	// seq (≤ 20 digits), prev and hash (64 each), field names and "\n".
	if len(mid)+len(`{"seq":,,"prev":"","hash":""}`)+20+2*hashHexLen+1 > MaxLineBytes {
		return fmt.Errorf("audit: append: record of %d bytes is larger than the %d-byte line limit", len(mid), MaxLineBytes)
	}
	p := pendingPool.Get().(*pending)
	p.mid = mid

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		pendingPool.Put(p)
		return fmt.Errorf("audit: append: %w", ErrClosed)
	}
	select {
	case l.reqs <- p:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		pendingPool.Put(p)
		return fmt.Errorf("audit: append: %w", ctx.Err())
	}

	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("audit: append: %w", err)
		}
		r.Seq = p.seq
		r.Prev = hex.EncodeToString(p.prev[:])
		r.Hash = hex.EncodeToString(p.hash[:])
		p.mid = nil
		pendingPool.Put(p)
		return nil
	case <-ctx.Done():
		// The writer still owns p; it is not returned to the pool.
		return fmt.Errorf("audit: append: record may or may not be written: %w", ctx.Err())
	}
}

// Healthy returns nil while the log accepts appends, and otherwise why not:
// ErrClosed after Close, or the write or fsync error that failed the log.
func (l *Log) Healthy() error {
	if e := l.failErr.Load(); e != nil {
		return *e
	}
	if l.isClosed.Load() {
		return ErrClosed
	}
	return nil
}

// Path is the file the log writes to.
func (l *Log) Path() string { return l.path }

// Close writes every record already queued, stops the writer and closes the
// file. It returns the error that failed the log, if any, and the close
// error. Close is idempotent; Append after Close returns ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.isClosed.Store(true)
	close(l.reqs)
	l.mu.Unlock()
	<-l.done
	var errs []error
	if e := l.failErr.Load(); e != nil {
		errs = append(errs, *e)
	}
	if err := l.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close: %w", err))
	}
	return errors.Join(errs...)
}

// fail puts the log in the failed state; the first cause wins.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("audit: log failed, every append is refused until warden is restarted: %w", err)
	if l.failErr.CompareAndSwap(nil, &err) {
		l.logger.Error("audit: log failed; requests are refused", "path", l.path, "err", err)
		return err
	}
	return *l.failErr.Load()
}

// run is the single writer: it takes a batch of queued records, chains and
// writes them with one write call, fsyncs once, then answers each waiter.
func (l *Log) run() {
	defer close(l.done)
	w := &batchWriter{h: sha256.New(), buf: make([]byte, 0, 64<<10)}
	var batch []*pending
	for {
		p, ok := <-l.reqs
		if !ok {
			return
		}
		// Let the requests that are about to append do so before this batch
		// is cut: without the yield the writer wakes for the first record and
		// fsyncs it almost alone (measured: 1.7 records per fsync at 32
		// connections; with it, +48 % req/s and a third of the context
		// switches — bench/RESULTS.md). Durability is unchanged: every
		// appender still waits for the fsync of its own record.
		runtime.Gosched()
		batch = append(batch[:0], p)
		more := true
	fill:
		for len(batch) < maxBatchRecords {
			select {
			case q, ok := <-l.reqs:
				if !ok {
					more = false
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		for rest := batch; len(rest) > 0; {
			if e := l.failErr.Load(); e != nil {
				for _, p := range rest {
					p.done <- *e
				}
				break
			}
			rest = rest[l.writeBatch(w, rest):]
		}
		clear(batch) // drop references for the pool's sake
		if !more {
			return
		}
	}
}

// batchWriter is the writer goroutine's scratch state.
type batchWriter struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// writeBatch chains a prefix of ps (all of it, or up to the byte bound),
// writes and fsyncs it, answers its waiters and returns its length.
func (l *Log) writeBatch(w *batchWriter, ps []*pending) int {
	buf := w.buf[:0]
	seq, prev := l.seq, l.prev
	n := 0
	for _, p := range ps {
		if n > 0 && len(buf) >= maxBatchBytes {
			break
		}
		seq++
		start := len(buf)
		buf = append(buf, `{"seq":`...)
		buf = strconv.AppendUint(buf, seq, 10)
		buf = append(buf, ',')
		buf = append(buf, p.mid...)
		buf = append(buf, `,"prev":"`...)
		buf = hex.AppendEncode(buf, prev[:])
		buf = append(buf, `","hash":"`...)
		// hash = SHA-256(prev || line with hash "")
		w.h.Reset()
		w.h.Write(prev[:])
		w.h.Write(buf[start:])
		w.h.Write(closeHash)
		w.h.Sum(w.sum[:0])
		buf = hex.AppendEncode(buf, w.sum[:])
		buf = append(buf, closeHash...)
		buf = append(buf, '\n')
		p.seq, p.prev, p.hash = seq, prev, w.sum
		prev = w.sum
		n++
	}
	if cap(buf) <= 4*maxBatchBytes {
		w.buf = buf // keep the grown buffer unless one huge batch inflated it
	}
	err := l.commit(buf)
	if err == nil {
		l.seq, l.prev = seq, prev
	}
	for _, p := range ps[:n] {
		p.done <- err
	}
	return n
}

var closeHash = []byte(`"}`)

// commit writes buf with one write call and fsyncs. Any failure fails the log.
func (l *Log) commit(buf []byte) error {
	n, err := l.f.Write(buf)
	if err == nil && n != len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		return l.fail(fmt.Errorf("write %s: %w", l.path, err))
	}
	if err := l.f.Sync(); err != nil {
		return l.fail(fmt.Errorf("fsync %s: %w", l.path, err))
	}
	return nil
}

// syncDir makes a new directory entry durable. Windows cannot fsync a
// directory; there it is a no-op.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}
