package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// Mode says when Append returns.
type Mode string

const (
	// ModeSync: Append returns once the record is durable (the default).
	// Its stored hashes, derived from it, are made durable with the next
	// checkpoint and recomputed at open if a crash came first.
	ModeSync Mode = "sync"
	// ModeAsync: Append returns once the record is queued. At most
	// MaxPending records are queued or being written at any time, and the
	// writer starts a commit at most MaxDelay after a record is queued: a
	// crash loses at most MaxPending acknowledged records, written in the
	// last MaxDelay plus one fsync.
	ModeAsync Mode = "async"
)

// Defaults for Options.
const (
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	DefaultMaxPending         = 1024
	DefaultMaxDelay           = 50 * time.Millisecond
)

// Group commit bounds: one Backend.Append covers at most this many records,
// or about this many bytes.
const (
	maxBatchRecords = 4096
	maxBatchBytes   = 4 << 20
	queueLen        = 8192
)

// Options configure a Log.
type Options struct {
	// Key signs checkpoints. Required.
	Key *Key
	// Origin names the log in its checkpoints. Default DefaultOrigin. A log
	// whose checkpoints name another origin is refused.
	Origin string
	// Mode is ModeSync (default) or ModeAsync.
	Mode Mode
	// MaxPending and MaxDelay bound async mode's loss window; defaults
	// DefaultMaxPending and DefaultMaxDelay.
	MaxPending int
	MaxDelay   time.Duration
	// A checkpoint is made once CheckpointEvery records were added since
	// the last one, or CheckpointInterval after a record was added, and at
	// Close. Defaults DefaultCheckpointEvery and DefaultCheckpointInterval.
	CheckpointEvery    int64
	CheckpointInterval time.Duration
	// Witness, if set, is a file, or an existing directory, that receives a
	// copy of every checkpoint (see writeWitness).
	Witness string
	// SegmentBytes is passed to the file backend by Open.
	SegmentBytes int64
	// Logger receives the log's errors and repairs. Default slog.Default().
	Logger *slog.Logger

	wrap func(name string, f storeFile) storeFile // tests: passed to the file backend
}

// Log is an open audit log: an append-only Merkle tree of records with
// signed checkpoints, on a Backend. Append is safe for concurrent use.
//
// Once the backend fails to store a batch, the Log is failed for good:
// the batch in flight and every later Append return an error and Healthy
// reports it. A checkpoint that cannot be stored or witnessed makes Healthy
// report an error too, until a later attempt succeeds.
type Log struct {
	b      Backend
	key    *Key
	origin string
	opts   Options
	logger *slog.Logger

	mu     sync.RWMutex // held for reading while queueing, for writing to close reqs
	closed bool
	reqs   chan *pending
	slots  chan struct{} // async: one per record not yet durable
	done   chan struct{} // closed when the writer has exited
	cpReq  chan struct{} // wakes the checkpointer
	cpDone chan struct{} // closed when the checkpointer has exited

	isClosed atomic.Bool
	failErr  atomic.Pointer[error]
	cpErr    atomic.Pointer[error]
	size     atomic.Int64 // records durable
	lost     atomic.Int64 // async: acknowledged records whose batch failed

	cpMu      sync.Mutex
	cpWant    tlog.Tree // the newest tree the writer asked to checkpoint
	cp        *Checkpoint
	cpTime    time.Time
	witnessOK time.Time

	repairs []string
}

// pending is one queued record and, once written, its outcome.
type pending struct {
	body  []byte     // encodeBody's output, in buf
	buf   *[]byte    // from bodyPool; returned once the record is copied
	done  chan error // buffered; receives exactly one value (sync mode)
	async bool
	index int64
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens (creating if needed) the audit log in directory dir on the
// file backend; see OpenBackend.
func Open(dir string, opts Options) (*Log, error) {
	b, err := OpenFileBackend(dir, FileOptions{SegmentBytes: opts.SegmentBytes, Logger: opts.Logger, wrap: opts.wrap})
	if err != nil {
		return nil, err
	}
	l, err := OpenBackend(b, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return l, nil
}

// OpenBackend opens the log stored in b, which it then owns. It checks the
// latest checkpoint (signature with opts.Key, origin, size, root hash
// against the stored hashes) and every record after it against its stored
// hashes, and refuses a log that fails any check. Records after the
// checkpoint (written before a crash) are then anchored by a new
// checkpoint. The full check of every record is `warden audit verify`.
// If OpenBackend fails, b is not closed.
func OpenBackend(b Backend, opts Options) (*Log, error) {
	if opts.Key == nil {
		return nil, errors.New("audit: open: no checkpoint key")
	}
	if opts.Origin == "" {
		opts.Origin = DefaultOrigin
	}
	if err := CheckOrigin(opts.Origin); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if opts.Mode == "" {
		opts.Mode = ModeSync
	}
	if opts.Mode != ModeSync && opts.Mode != ModeAsync {
		return nil, fmt.Errorf("audit: open: mode %q, want sync or async", opts.Mode)
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.CheckpointEvery <= 0 {
		opts.CheckpointEvery = DefaultCheckpointEvery
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	l := &Log{
		b: b, key: opts.Key, origin: opts.Origin, opts: opts, logger: opts.Logger,
		reqs:   make(chan *pending, queueLen),
		done:   make(chan struct{}),
		cpReq:  make(chan struct{}, 1),
		cpDone: make(chan struct{}),
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	if opts.Mode == ModeAsync {
		l.slots = make(chan struct{}, opts.MaxPending)
	}
	if r, ok := b.(Repairer); ok {
		l.repairs = r.Repairs()
	}
	ctx := context.Background()
	n, err := l.check(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	l.size.Store(n)
	if err := l.checkWitness(n); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if l.cp == nil || l.cp.Tree.N < n {
		// Records the previous run wrote but did not checkpoint.
		th, err := tlog.TreeHash(n, b)
		if err != nil {
			return nil, fmt.Errorf("audit: open: %w", err)
		}
		l.cpWant = tlog.Tree{N: n, Hash: th}
		if n > 0 {
			from := int64(0)
			if l.cp != nil {
				from = l.cp.Tree.N
			}
			l.logger.Warn("audit: anchoring records written after the last checkpoint (warden stopped without one: a crash?)",
				"from", from, "to", n-1)
			if err := l.checkpoint(ctx); err != nil {
				return nil, fmt.Errorf("audit: open: %w", err)
			}
		}
	} else {
		l.cpWant = l.cp.Tree
	}
	go l.checkpointer()
	go l.run()
	return l, nil
}

// check verifies the latest checkpoint and the records after it, returning
// the log's size.
func (l *Log) check(ctx context.Context) (int64, error) {
	n, err := l.b.Size(ctx)
	if err != nil {
		return 0, err
	}
	size, signed, err := l.b.LatestCheckpoint(ctx)
	if err != nil {
		return 0, err
	}
	from := int64(0)
	if signed != nil {
		cp, err := OpenCheckpoint(signed, l.key.Verifier())
		if err != nil {
			return 0, fmt.Errorf("latest stored %w (was the checkpoint key replaced? it must stay with its log)", err)
		}
		switch {
		case cp.Origin != l.origin:
			return 0, fmt.Errorf("the log's checkpoints name origin %q, the configuration %q: a log keeps its origin", cp.Origin, l.origin)
		case cp.Tree.N != size:
			return 0, fmt.Errorf("the latest checkpoint is stored as size %d but signed for %d", size, cp.Tree.N)
		case cp.Tree.N > n:
			return 0, &VerifyError{Index: n, End: cp.Tree.N, Reason: fmt.Sprintf(
				"the log is shorter than its checkpoint: it holds %d records, the checkpoint covers %d; records were deleted", n, cp.Tree.N)}
		}
		th, err := tlog.TreeHash(cp.Tree.N, l.b)
		if err != nil {
			return 0, err
		}
		if th != cp.Tree.Hash {
			return 0, &VerifyError{Index: 0, End: cp.Tree.N, Reason: "the stored hashes do not have the checkpoint's root: the log was altered; run 'warden audit verify'"}
		}
		l.cp = cp
		from = cp.Tree.N
	}
	if from < n {
		w := &verifyWorker{b: l.b, cache: map[int64]tlog.Hash{}}
		bt := newBatch()
		bt.reset(from)
		err := l.b.ReadRecords(ctx, from, n, func(i int64, rec []byte) error {
			bt.data = append(bt.data, rec...)
			bt.ends = append(bt.ends, int32(len(bt.data)))
			bt.n++
			if bt.n == verifyBatchRecords || len(bt.data) >= verifyBatchBytes {
				if err := w.check(bt); err != nil {
					return err
				}
				bt.first, bt.n, bt.data, bt.ends = i+1, 0, bt.data[:0], bt.ends[:0]
			}
			return nil
		})
		if err == nil && bt.n > 0 {
			err = w.check(bt)
		}
		if err != nil {
			return 0, fmt.Errorf("the records after the last checkpoint do not verify: %w", err)
		}
	}
	return n, nil
}

// Append adds r to the log. In sync mode it returns once r is durable and
// sets r.Index; in async mode, once r is queued (r.Index is not set). It
// normalizes r as stored: Time in UTC (the current time if zero), Path
// without a query, long strings and lists cut (see Record.Truncated). r is
// encoded before Append queues it; Append keeps no reference to r.
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
	buf := getBody()
	body, err := encodeBody(*buf, r)
	if err != nil {
		putBody(buf)
		return fmt.Errorf("audit: append: %w", err)
	}
	*buf = body
	if len(body)+len(indexPrefix)+20 > MaxRecordBytes {
		putBody(buf)
		return fmt.Errorf("audit: append: record of %d bytes is larger than the %d-byte limit", len(body), MaxRecordBytes)
	}
	async := l.slots != nil
	if async {
		select {
		case l.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("audit: append: %w", ctx.Err())
		}
	}
	p := pendingPool.Get().(*pending)
	p.body, p.buf, p.async = body, buf, async

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		l.release(p)
		return fmt.Errorf("audit: append: %w", ErrClosed)
	}
	select {
	case l.reqs <- p:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		l.release(p)
		return fmt.Errorf("audit: append: %w", ctx.Err())
	}
	if async {
		return nil
	}
	select {
	case err := <-p.done:
		if err != nil {
			return fmt.Errorf("audit: append: %w", err)
		}
		r.Index = p.index
		pendingPool.Put(p)
		return nil
	case <-ctx.Done():
		// The writer still owns p; it is not returned to the pool.
		return fmt.Errorf("audit: append: record may or may not be written: %w", ctx.Err())
	}
}

// release returns an unqueued pending record and its async slot.
func (l *Log) release(p *pending) {
	if p.async {
		<-l.slots
	}
	p.dropBody()
	pendingPool.Put(p)
}

// dropBody returns the record's buffer to the pool.
func (p *pending) dropBody() {
	if p.buf != nil {
		putBody(p.buf)
	}
	p.body, p.buf = nil, nil
}

// Healthy returns nil while the log accepts appends, and otherwise why not:
// ErrClosed after Close, the storage error that failed the log, or the
// error of the last checkpoint attempt.
func (l *Log) Healthy() error {
	if e := l.failErr.Load(); e != nil {
		return *e
	}
	if l.isClosed.Load() {
		return ErrClosed
	}
	if e := l.cpErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Backend is the log's storage, for reading (proofs, records).
func (l *Log) Backend() Backend { return l.b }

// Origin is the log's origin.
func (l *Log) Origin() string { return l.origin }

// VerifierKey is the public key that verifies the log's checkpoints.
func (l *Log) VerifierKey() string { return l.key.VerifierKey() }

// Checkpoint returns the latest checkpoint, nil before the first.
func (l *Log) Checkpoint() *Checkpoint {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.cp
}

// Stats is the state of a Log for status pages and metrics.
type Stats struct {
	Records        int64     // durable records
	Checkpointed   int64     // records covered by the latest checkpoint
	CheckpointTime time.Time // when it was made (zero if before this process)
	Mode           Mode
	Repairs        []string // torn tails repaired at open
	Lost           int64    // async: acknowledged records lost to a failed write
	Err            string   // why Healthy fails, "" if it does not
	WitnessTime    time.Time
}

// Stats returns the log's current state.
func (l *Log) Stats() Stats {
	s := Stats{Records: l.size.Load(), Mode: l.opts.Mode, Repairs: l.repairs, Lost: l.lost.Load()}
	l.cpMu.Lock()
	if l.cp != nil {
		s.Checkpointed = l.cp.Tree.N
	}
	s.CheckpointTime, s.WitnessTime = l.cpTime, l.witnessOK
	l.cpMu.Unlock()
	if err := l.Healthy(); err != nil {
		s.Err = err.Error()
	}
	return s
}

// Close writes every record already queued, makes a final checkpoint,
// stops the writer and closes the backend. It returns the error that
// failed the log, if any, a failed final checkpoint and the close error.
// Close is idempotent; Append after Close returns ErrClosed.
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
	<-l.cpDone
	var errs []error
	if e := l.failErr.Load(); e != nil {
		errs = append(errs, *e)
	} else if err := l.finalCheckpoint(); err != nil {
		errs = append(errs, fmt.Errorf("audit: close: final checkpoint: %w", err))
	}
	if err := l.b.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// finalCheckpoint anchors every record written.
func (l *Log) finalCheckpoint() error {
	n := l.size.Load()
	th, err := tlog.TreeHash(n, l.b)
	if err != nil {
		return err
	}
	l.cpMu.Lock()
	l.cpWant = tlog.Tree{N: n, Hash: th}
	l.cpMu.Unlock()
	return l.checkpoint(context.Background())
}

// fail puts the log in the failed state; the first cause wins.
func (l *Log) fail(err error) error {
	err = fmt.Errorf("audit: log failed, every append is refused until warden is restarted: %w", err)
	if l.failErr.CompareAndSwap(nil, &err) {
		l.logger.Error("audit: log failed; requests are refused", "err", err)
		return err
	}
	return *l.failErr.Load()
}

// run is the single writer: it takes a batch of queued records, hashes them
// into the tree, stores them with one Backend.Append (one fsync of records
// and one of hashes on the file backend), then answers each waiter.
func (l *Log) run() {
	defer close(l.done)
	defer close(l.cpReq)
	w := &writer{l: l, cache: map[int64]tlog.Hash{}}
	// Ticks a few times per interval, so that a record waits about one
	// interval at most for its checkpoint when traffic stops.
	tick := time.NewTicker(max(l.opts.CheckpointInterval/4, time.Millisecond))
	defer tick.Stop()
	lastWanted, lastAt := l.cpWant.N, time.Now()
	want := func(now time.Time) {
		n := l.size.Load()
		if n <= lastWanted || (n-lastWanted < l.opts.CheckpointEvery && now.Sub(lastAt) < l.opts.CheckpointInterval) {
			return
		}
		th, err := tlog.TreeHash(n, w)
		if err != nil {
			l.fail(fmt.Errorf("tree hash: %w", err))
			return
		}
		l.cpMu.Lock()
		l.cpWant = tlog.Tree{N: n, Hash: th}
		l.cpMu.Unlock()
		lastWanted, lastAt = n, now
		l.wakeCheckpointer()
	}
	var batch []*pending
	for {
		var p *pending
		select {
		case q, ok := <-l.reqs:
			if !ok {
				return
			}
			p = q
		case now := <-tick.C:
			if l.failErr.Load() == nil {
				want(now)
				if l.cpErr.Load() != nil {
					l.wakeCheckpointer() // retry a failed checkpoint or witness copy
				}
			}
			continue
		}
		// Let the requests that are about to append do so before this
		// batch is cut, so that they share its fsync (bench/RESULTS.md,
		// issue 3). Async mode also lingers up to MaxDelay to batch more.
		runtime.Gosched()
		batch = append(batch[:0], p)
		more := l.fill(&batch)
		for rest := batch; len(rest) > 0; {
			if e := l.failErr.Load(); e != nil {
				for _, p := range rest {
					l.answer(p, *e)
				}
				break
			}
			rest = rest[w.writeBatch(rest):]
		}
		clear(batch)
		if l.failErr.Load() == nil {
			want(time.Now())
		}
		if !more {
			return
		}
	}
}

// fill adds queued records to batch, up to the batch bound; in async mode
// it waits up to MaxDelay for more. It returns false once reqs is closed.
func (l *Log) fill(batch *[]*pending) bool {
	var timer <-chan time.Time
	if l.slots != nil {
		t := time.NewTimer(l.opts.MaxDelay)
		defer t.Stop()
		timer = t.C
	}
	for len(*batch) < maxBatchRecords {
		select {
		case q, ok := <-l.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, q)
			continue
		default:
		}
		if timer == nil || len(*batch) >= l.opts.MaxPending {
			return true
		}
		select {
		case q, ok := <-l.reqs:
			if !ok {
				return false
			}
			*batch = append(*batch, q)
		case <-timer:
			return true
		}
	}
	return true
}

// answer tells a waiter its record's outcome. The record has been copied
// (or will never be): its buffer goes back to the pool first, since the
// waiter reuses p as soon as it is answered.
func (l *Log) answer(p *pending, err error) {
	p.dropBody()
	if !p.async {
		p.done <- err
		return
	}
	if err != nil {
		l.lost.Add(1)
	}
	pendingPool.Put(p)
	<-l.slots
}

// writer is the writer goroutine's state; it is the tlog.HashReader for
// the batch being hashed: hashes of this batch and the previous one from
// memory, older ones from a small cache and the backend.
type writer struct {
	l        *Log
	base     int64 // stored hash index of batch[0]
	batch    []tlog.Hash
	prevBase int64
	prev     []tlog.Hash
	cache    map[int64]tlog.Hash
	recs     [][]byte
	arena    []byte
	ends     []int
}

func (w *writer) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int64
	for i, x := range indexes {
		switch {
		case x >= w.base && x < w.base+int64(len(w.batch)):
			out[i] = w.batch[x-w.base]
		case x >= w.prevBase && x < w.prevBase+int64(len(w.prev)):
			out[i] = w.prev[x-w.prevBase]
		default:
			h, ok := w.cache[x]
			if !ok {
				miss = append(miss, x)
			}
			out[i] = h
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := w.l.b.ReadHashes(miss)
	if err != nil {
		return nil, err
	}
	if len(w.cache) > 1024 {
		clear(w.cache)
	}
	for i, x := range miss {
		w.cache[x] = got[i]
	}
	return w.ReadHashes(indexes)
}

// writeBatch hashes and stores a prefix of ps (all of it, or up to the byte
// bound), answers its waiters and returns its length.
func (w *writer) writeBatch(ps []*pending) int {
	l := w.l
	first := l.size.Load()
	w.base = tlog.StoredHashIndex(0, first)
	w.batch = w.batch[:0]
	arena, ends := w.arena[:0], w.ends[:0]
	for _, p := range ps {
		if len(ends) > 0 && len(arena) >= maxBatchBytes {
			break
		}
		arena = appendRecord(arena, first+int64(len(ends)), p.body)
		ends = append(ends, len(arena))
	}
	n := len(ends)
	// Slice the records only now: arena may have moved while growing.
	w.recs = w.recs[:0]
	off := 0
	for _, e := range ends {
		w.recs = append(w.recs, arena[off:e])
		off = e
	}
	var err error
	for k, rec := range w.recs {
		var hs []tlog.Hash
		hs, err = tlog.StoredHashes(first+int64(k), rec, w)
		if err != nil {
			err = l.fail(fmt.Errorf("hash record %d: %w", first+int64(k), err))
			break
		}
		w.batch = append(w.batch, hs...)
	}
	if err == nil {
		if serr := l.b.Append(context.Background(), first, w.recs, w.batch); serr != nil {
			err = l.fail(serr)
		} else {
			l.size.Add(int64(n))
			w.prevBase, w.prev, w.batch = w.base, w.batch, w.prev
		}
	}
	w.batch = w.batch[:0]
	clear(w.recs)
	if cap(arena) <= 4*maxBatchBytes {
		w.arena = arena
	}
	w.ends = ends
	for k, p := range ps[:n] {
		p.index = first + int64(k)
		l.answer(p, err)
	}
	return n
}

// wakeCheckpointer asks the checkpointer to sign cpWant.
func (l *Log) wakeCheckpointer() {
	select {
	case l.cpReq <- struct{}{}:
	default:
	}
}

// checkpointer signs and stores checkpoints off the writer's path.
func (l *Log) checkpointer() {
	defer close(l.cpDone)
	for range l.cpReq {
		if err := l.checkpoint(context.Background()); err != nil {
			l.logger.Error("audit: checkpoint failed; requests are refused until one succeeds", "err", err)
		}
	}
}

// checkpoint signs, stores and witnesses a checkpoint of cpWant, unless one
// exists. Failures are kept in cpErr (Healthy) until one succeeds.
func (l *Log) checkpoint(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("audit: checkpoint: %w", err)
			l.cpErr.Store(&err)
		} else {
			l.cpErr.Store(nil)
		}
	}()
	l.cpMu.Lock()
	want, cur := l.cpWant, l.cp
	l.cpMu.Unlock()
	if want.N == 0 || (cur != nil && cur.Tree.N >= want.N) {
		return l.witnessRetry(cur)
	}
	signed, err := l.key.sign(l.origin, want)
	if err != nil {
		return err
	}
	if err := l.b.AddCheckpoint(ctx, want.N, signed); err != nil {
		return err
	}
	cp := &Checkpoint{Origin: l.origin, Tree: want, Signed: signed}
	l.cpMu.Lock()
	l.cp, l.cpTime = cp, time.Now()
	l.cpMu.Unlock()
	return l.writeWitness(cp)
}

// witnessRetry writes the current checkpoint to the witness again if the
// last attempt failed.
func (l *Log) witnessRetry(cp *Checkpoint) error {
	if cp == nil || l.cpErr.Load() == nil {
		return nil
	}
	return l.writeWitness(cp)
}

// WitnessPath is the file a witness setting names: the path itself, or,
// for an existing directory, a file in it named after the origin.
func WitnessPath(witness, origin string) string {
	if fi, err := os.Stat(witness); err == nil && fi.IsDir() {
		name := strings.Map(func(r rune) rune {
			if r == '/' || r == '\\' || r == ':' {
				return '_'
			}
			return r
		}, origin)
		return filepath.Join(witness, name+".checkpoint")
	}
	return witness
}

// checkWitness checks, at open, that the log of n records extends the
// checkpoint the witness holds: a log restored from an old backup, or
// rewritten, is refused before it takes a single record.
func (l *Log) checkWitness(n int64) error {
	if l.opts.Witness == "" {
		return nil
	}
	path := WitnessPath(l.opts.Witness, l.origin)
	old, st, err := localfile.ReadFile(path, maxCheckpointBytes)
	if err != nil {
		return fmt.Errorf("witness %s: %w", path, err)
	}
	if !st.Exists || len(old) == 0 {
		return nil
	}
	prev, err := OpenCheckpoint(old, l.key.Verifier())
	if err != nil {
		return fmt.Errorf("witness %s: %w", path, err)
	}
	if prev.Origin != l.origin {
		return fmt.Errorf("witness %s holds a checkpoint of origin %q, not %q", path, prev.Origin, l.origin)
	}
	if err := consistentPrefix(l.b, n, prev); err != nil {
		return fmt.Errorf("witness %s holds a checkpoint of %d records that this log does not extend (restored from an old copy, or rewritten?): %w",
			path, prev.Tree.N, err)
	}
	return nil
}

// writeWitness copies cp to the witness file, atomically. If the file
// already holds a checkpoint of this log, cp must extend it (same origin,
// at least as large, and the stored tree has its root at its size):
// otherwise the log was rolled back or forked, and the witness keeps the
// older checkpoint as evidence.
func (l *Log) writeWitness(cp *Checkpoint) error {
	if l.opts.Witness == "" {
		return nil
	}
	path := WitnessPath(l.opts.Witness, l.origin)
	old, st, err := localfile.ReadFile(path, maxCheckpointBytes)
	if err != nil {
		return fmt.Errorf("witness %s: %w", path, err)
	}
	if st.Exists && len(old) > 0 {
		prev, err := OpenCheckpoint(old, l.key.Verifier())
		if err != nil {
			return fmt.Errorf("witness %s holds a checkpoint this log's key does not verify; not overwriting it: %w", path, err)
		}
		if prev.Origin != cp.Origin {
			return fmt.Errorf("witness %s holds a checkpoint of origin %q; not overwriting it", path, prev.Origin)
		}
		if err := consistentPrefix(l.b, cp.Tree.N, prev); err != nil {
			return fmt.Errorf("witness %s holds a checkpoint of %d records this log does not extend; not overwriting it: %w", path, prev.Tree.N, err)
		}
		if prev.Tree.N == cp.Tree.N {
			l.noteWitness()
			return nil
		}
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("witness directory %s does not exist", dir)
		}
	}
	if err := localfile.WriteAtomic(path, cp.Signed); err != nil {
		return fmt.Errorf("witness %s: %w", path, err)
	}
	l.noteWitness()
	return nil
}

func (l *Log) noteWitness() {
	l.cpMu.Lock()
	l.witnessOK = time.Now()
	l.cpMu.Unlock()
}
