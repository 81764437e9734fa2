package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// VerifyOptions configure VerifyBackend.
type VerifyOptions struct {
	// Verifier checks checkpoint signatures. Required: a checkpoint is only
	// as good as the key it is checked with, so it must come from outside
	// the log (the configured key file, or --key).
	Verifier note.Verifier
	// Origin, if set, is the origin the checkpoint must name.
	Origin string
	// Checkpoint, if set, is the signed checkpoint to verify against
	// instead of the latest one stored in the log (e.g. a witness's copy).
	Checkpoint []byte
	// Others are further signed checkpoints (e.g. a witness's copy) that
	// must be of a prefix of the log; each result is in Report.Others.
	Others []NamedCheckpoint
	// Workers hashing records in parallel; default GOMAXPROCS.
	Workers int
}

// NamedCheckpoint is a signed checkpoint and where it came from.
type NamedCheckpoint struct {
	Name   string
	Signed []byte
}

// OtherResult is the check of one of VerifyOptions.Others.
type OtherResult struct {
	Name       string
	Checkpoint *Checkpoint // nil if it did not open
	Err        error       // nil: the log is consistent with it
}

// Report describes a verified log.
type Report struct {
	Origin     string      // the checkpoint's origin
	Records    int64       // records in the log, Pending ones included
	Head       string      // base64 root hash of the tree of the first HeadSize records
	HeadSize   int64       // records with stored hashes: Records - Pending
	Checkpoint *Checkpoint // the checkpoint verified against; nil if the log has none
	// Tail = Records - checkpointed size: records after the checkpoint. No
	// signature covers them yet; those with stored hashes are verified
	// against them, the Pending ones for framing and position.
	Tail int64
	// Archived leading records were not re-read: their stored hashes were
	// checked against the tree and the checkpoint, their contents were not.
	Archived int64
	// Pending records are the last ones of Records, stored without their
	// stored hashes, which warden writes with the next checkpoint (or recomputes
	// at its next start after a crash): they are checked for framing and
	// position only. TornBytes are the bytes of an incomplete record at the
	// end (a write in progress, or a torn tail the next start repairs).
	Pending, TornBytes int64
	// Repairs are torn tails the backend repaired when it was opened.
	Repairs []string
	Others  []OtherResult
}

// Checkpointed is the number of records the checkpoint covers.
func (r *Report) Checkpointed() int64 {
	if r.Checkpoint == nil {
		return 0
	}
	return r.Checkpoint.Tree.N
}

// VerifyError names the first bad entry of a log. When the damage can only
// be bracketed (records and hashes rewritten consistently, so that only the
// signed root disagrees), it lies in [Index, End).
type VerifyError struct {
	Index  int64
	End    int64 // > Index when only a range is known
	Reason string
}

func (e *VerifyError) Error() string {
	if e.End > e.Index+1 {
		return fmt.Sprintf("records %d..%d: %s", e.Index, e.End-1, e.Reason)
	}
	return fmt.Sprintf("record %d: %s", e.Index, e.Reason)
}

// pender is implemented by backends that can report what is stored beyond
// Size (FileBackend opened read-only).
type pender interface{ Pending() (int64, int64) }

// VerifyBackend checks a whole log against its latest signed checkpoint (or
// opts.Checkpoint):
//
//   - the checkpoint's signature with opts.Verifier (another key's
//     checkpoint is a *CheckpointError);
//   - every record against its stored leaf hash (RFC 6962 leaf hash of the
//     stored bytes), that it names its own index, and every stored interior
//     hash against its children: a changed, deleted, inserted or reordered
//     record is a *VerifyError naming the first one;
//   - the root of the first N records against the checkpoint's; a log
//     shorter than its checkpoint is a *VerifyError at the first missing
//     record.
//
// Records after the checkpoint are checked the same way and counted in
// Report.Tail; whether an unsigned tail is acceptable is the caller's call.
// Archived records are checked through their stored hashes only. An error
// that is neither says the log could not be read.
func VerifyBackend(ctx context.Context, b Backend, opts VerifyOptions) (Report, error) {
	var rep Report
	if opts.Verifier == nil {
		return rep, errors.New("audit: verify: no verifier key given")
	}
	n, err := b.Size(ctx)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: %w", err)
	}
	rep.Records, rep.HeadSize = n, n
	if r, ok := b.(Repairer); ok {
		rep.Repairs = r.Repairs()
	}
	if p, ok := b.(pender); ok {
		rep.Pending, rep.TornBytes = p.Pending()
	}
	signed := opts.Checkpoint
	if signed == nil {
		if _, signed, err = b.LatestCheckpoint(ctx); err != nil {
			return rep, fmt.Errorf("audit: verify: %w", err)
		}
	}
	var cp *Checkpoint
	if signed != nil {
		if cp, err = OpenCheckpoint(signed, opts.Verifier); err != nil {
			return rep, err
		}
		if opts.Origin != "" && cp.Origin != opts.Origin {
			return rep, &CheckpointError{Reason: fmt.Sprintf("origin %q, want %q: another log's checkpoint", cp.Origin, opts.Origin)}
		}
		rep.Checkpoint, rep.Origin = cp, cp.Origin
		rep.Tail = max(0, n+rep.Pending-cp.Tree.N)
	} else {
		rep.Tail = n + rep.Pending
	}
	rep.Records, rep.HeadSize = n+rep.Pending, n
	// Records first, so that a deleted record is named where it was, not
	// where the log now ends.
	if rep.Archived, err = scanLog(ctx, b, n, opts.Workers); err != nil {
		return rep, err
	}
	// Records stored after the last stored hash have nothing to be checked
	// against yet; they must at least be readable and in their place.
	if rep.Pending > 0 {
		err := b.ReadRecords(ctx, n, n+rep.Pending, func(i int64, rec []byte) error {
			if got, err := storedIndex(rec); err != nil || got != i {
				return &VerifyError{Index: i, Reason: fmt.Sprintf("the record at position %d (not yet hashed) is not record %d: malformed, or records were reordered", i, i)}
			}
			return nil
		})
		var ve *VerifyError
		var ce *CorruptError
		switch {
		case errors.As(err, &ve):
			return rep, ve
		case errors.As(err, &ce):
			return rep, &VerifyError{Index: ce.Index, Reason: "cannot be read as stored: " + ce.Error()}
		case err != nil:
			return rep, fmt.Errorf("audit: verify: read records: %w", err)
		}
	}
	if m, ok := b.(interface{ Missing() (int64, string) }); ok {
		if count, why := m.Missing(); count > 0 {
			return rep, &VerifyError{Index: n, End: n + count, Reason: why}
		}
	}
	if cp != nil && cp.Tree.N > n {
		return rep, &VerifyError{Index: n, End: cp.Tree.N, Reason: fmt.Sprintf(
			"the log is shorter than its checkpoint: the checkpoint covers %d records, the log holds %d; the missing ones were deleted", cp.Tree.N, n)}
	}
	if cp != nil {
		th, err := tlog.TreeHash(cp.Tree.N, b)
		if err != nil {
			return rep, fmt.Errorf("audit: verify: tree hash: %w", err)
		}
		if th != cp.Tree.Hash {
			lo, hi := bracket(ctx, b, opts.Verifier, cp)
			return rep, &VerifyError{Index: lo, End: hi, Reason: fmt.Sprintf(
				"the records and stored hashes agree with each other, but the tree of %d records does not have the signed root: "+
					"records were changed and their hashes recomputed (by someone with write access); the earliest checkpoint that no longer verifies bounds the change",
				cp.Tree.N)}
		}
	}
	head, err := tlog.TreeHash(n, b)
	if err != nil {
		return rep, fmt.Errorf("audit: verify: tree hash: %w", err)
	}
	rep.Head = head.String()
	for _, o := range opts.Others {
		res := OtherResult{Name: o.Name}
		res.Checkpoint, res.Err = OpenCheckpoint(o.Signed, opts.Verifier)
		if res.Err == nil {
			res.Err = consistentPrefix(b, n, res.Checkpoint)
		}
		rep.Others = append(rep.Others, res)
	}
	return rep, nil
}

// consistentPrefix checks that c is a checkpoint of a prefix of the log of
// n verified records.
func consistentPrefix(b Backend, n int64, c *Checkpoint) error {
	if c.Tree.N > n {
		return &VerifyError{Index: n, End: c.Tree.N, Reason: fmt.Sprintf("this checkpoint covers %d records but the log holds %d: records were deleted, or the log was rolled back", c.Tree.N, n)}
	}
	th, err := tlog.TreeHash(c.Tree.N, b)
	if err != nil {
		return fmt.Errorf("tree hash: %w", err)
	}
	if th != c.Tree.Hash {
		return &VerifyError{Index: 0, End: c.Tree.N, Reason: "the log's first records do not have this checkpoint's root: the log was rewritten (a fork)"}
	}
	return nil
}

// bracket finds, from the stored checkpoint history, the largest size whose
// checkpoint still verifies and the smallest that does not: the change is
// between them.
func bracket(ctx context.Context, b Backend, v note.Verifier, cp *Checkpoint) (lo, hi int64) {
	hi = cp.Tree.N
	_ = b.Checkpoints(ctx, func(size int64, signed []byte) error {
		if size >= hi {
			return nil
		}
		c, err := OpenCheckpoint(signed, v)
		if err != nil || c.Tree.N != size {
			return nil
		}
		th, err := tlog.TreeHash(size, b)
		if err != nil {
			return err
		}
		if th == c.Tree.Hash {
			lo = max(lo, size)
		} else {
			hi = min(hi, size)
		}
		return nil
	})
	return lo, hi
}

// verifyBatch is a run of consecutive records handed to a worker.
type verifyBatch struct {
	first    int64
	n        int
	data     []byte  // the records, concatenated
	ends     []int32 // end offset of each record in data
	archived bool    // records not read: check stored hashes only
}

const (
	verifyBatchRecords = 4096
	verifyBatchBytes   = 4 << 20
)

// batchFree is a fixed set of batches for one scan: memory stays bounded
// (and is not churned through the garbage collector) however long the log.
type batchFree chan *verifyBatch

func newBatchFree(n int) batchFree {
	f := make(batchFree, n)
	for range n {
		f <- newBatch()
	}
	return f
}

func newBatch() *verifyBatch {
	return &verifyBatch{data: make([]byte, 0, verifyBatchBytes+MaxRecordBytes), ends: make([]int32, 0, verifyBatchRecords)}
}

// get waits for a free batch, or returns nil once ctx ends.
func (f batchFree) get(ctx context.Context, first int64) *verifyBatch {
	select {
	case bt := <-f:
		bt.reset(first)
		return bt
	case <-ctx.Done():
		return nil
	}
}

func (f batchFree) put(bt *verifyBatch) { f <- bt }

func (bt *verifyBatch) reset(first int64) {
	bt.first, bt.n, bt.archived = first, 0, false
	bt.data, bt.ends = bt.data[:0], bt.ends[:0]
}

// scanLog checks records [0, n) against the stored hashes in parallel and
// returns how many leading records are archived. The first failure (lowest
// index) is returned as a *VerifyError.
func scanLog(ctx context.Context, b Backend, n int64, workers int) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		mu       sync.Mutex
		firstBad *VerifyError
		other    error
		stopAt   atomic.Int64 // batches starting at or after this are skipped
	)
	stopAt.Store(n)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		var ve *VerifyError
		if errors.As(err, &ve) {
			if firstBad == nil || ve.Index < firstBad.Index {
				firstBad = ve
				stopAt.Store(ve.Index)
			}
			return
		}
		if other == nil {
			other = err
			cancel()
		}
	}

	batches := make(chan *verifyBatch, 2*workers)
	free := newBatchFree(3*workers + 1)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := &verifyWorker{b: b, cache: map[int64]tlog.Hash{}}
			for bt := range batches {
				if bt.first < stopAt.Load() {
					if err := w.check(bt); err != nil {
						fail(err)
					}
				}
				free.put(bt)
			}
		})
	}

	var archived int64
	produce := func() error {
		cur := free.get(ctx, 0)
		if cur == nil {
			return ctx.Err()
		}
		send := func(next int64) bool {
			if cur.n == 0 {
				cur.first = next
				return true
			}
			select {
			case batches <- cur:
			case <-ctx.Done():
				return false
			}
			if cur = free.get(ctx, next); cur == nil {
				return false
			}
			return true
		}
		defer func() {
			if cur != nil {
				free.put(cur)
			}
		}()
		// Where the readable records start: a backend says so for the
		// first one when the records before it are archived. Any other
		// error is left to the record-by-record pass, which names the
		// index.
		var ae *ArchivedError
		if err := b.ReadRecords(ctx, 0, 1, func(int64, []byte) error { return nil }); errors.As(err, &ae) {
			archived = min(ae.First, n)
			for i := int64(0); i < archived; i += verifyBatchRecords {
				cur.first, cur.n, cur.archived = i, int(min(verifyBatchRecords, archived-i)), true
				if !send(archived) {
					return ctx.Err()
				}
			}
		}
		cur.first = archived
		err := b.ReadRecords(ctx, archived, n, func(i int64, rec []byte) error {
			if i >= stopAt.Load() {
				return errStop
			}
			cur.data = append(cur.data, rec...)
			cur.ends = append(cur.ends, int32(len(cur.data)))
			cur.n++
			if cur.n == verifyBatchRecords || len(cur.data) >= verifyBatchBytes {
				if !send(i + 1) {
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		send(n)
		return nil
	}
	perr := produce()
	close(batches)
	wg.Wait()
	if perr != nil {
		var ce *CorruptError
		if errors.As(perr, &ce) {
			fail(&VerifyError{Index: ce.Index, Reason: "cannot be read as stored: " + ce.Error()})
		} else if !errors.Is(perr, context.Canceled) || other == nil {
			fail(fmt.Errorf("audit: verify: read records: %w", perr))
		}
	}
	switch {
	case firstBad != nil:
		return archived, firstBad
	case other != nil:
		return archived, other
	}
	return archived, ctx.Err()
}

var errStop = errors.New("stop")

// verifyWorker checks batches; cache holds stored hashes from before a
// batch (left siblings of subtrees the batch completes).
type verifyWorker struct {
	b      Backend
	cache  map[int64]tlog.Hash
	window []tlog.Hash
	base   int64
	idx    []int64
	out    []tlog.Hash
}

// ReadHashes serves the batch's own stored hashes from the window and
// earlier ones from the cache or the backend. The slice it returns is
// reused by the next call: tlog's functions do not keep it.
func (w *verifyWorker) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if cap(w.out) < len(indexes) {
		w.out = make([]tlog.Hash, len(indexes))
	}
	out := w.out[:len(indexes)]
	var miss []int64
	for i, x := range indexes {
		switch {
		case x >= w.base && x < w.base+int64(len(w.window)):
			out[i] = w.window[x-w.base]
		default:
			h, ok := w.cache[x]
			if !ok {
				miss = append(miss, x)
				continue
			}
			out[i] = h
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := w.b.ReadHashes(miss)
	if err != nil {
		return nil, err
	}
	if len(w.cache) > 4096 {
		clear(w.cache)
	}
	for i, x := range miss {
		w.cache[x] = got[i]
	}
	return w.ReadHashes(indexes)
}

func (w *verifyWorker) check(bt *verifyBatch) error {
	end := bt.first + int64(bt.n)
	w.base = tlog.StoredHashIndex(0, bt.first)
	top := tlog.StoredHashCount(end)
	w.idx = w.idx[:0]
	for x := w.base; x < top; x++ {
		w.idx = append(w.idx, x)
	}
	window, err := w.b.ReadHashes(w.idx)
	if err != nil {
		return fmt.Errorf("audit: verify: read stored hashes of records %d..%d: %w", bt.first, end-1, err)
	}
	w.window = window
	prev := int32(0)
	for k := range bt.n {
		i := bt.first + int64(k)
		at := tlog.StoredHashIndex(0, i) - w.base
		stored := w.window[at]
		if !bt.archived {
			rec := bt.data[prev:bt.ends[k]]
			prev = bt.ends[k]
			if got, err := storedIndex(rec); err != nil {
				return &VerifyError{Index: i, Reason: "malformed record: " + err.Error()}
			} else if got != i {
				return &VerifyError{Index: i, Reason: fmt.Sprintf("the record at position %d is record %d: records were deleted, inserted or reordered", i, got)}
			}
			if tlog.RecordHash(rec) != stored {
				return &VerifyError{Index: i, Reason: "the record does not match its stored hash: it was changed, or records were deleted, inserted or reordered"}
			}
		}
		hs, err := tlog.StoredHashesForRecordHash(i, stored, w)
		if err != nil {
			return fmt.Errorf("audit: verify: record %d: %w", i, err)
		}
		for j := 1; j < len(hs); j++ {
			if hs[j] != w.window[at+int64(j)] {
				return &VerifyError{Index: i, Reason: fmt.Sprintf(
					"the stored hash of the subtree ending at this record (level %d) does not match its children: the hashes file was altered", j)}
			}
		}
	}
	return nil
}

// firstReadable returns the first record ReadRecords can read: 0, or the
// first record after the archive.
func firstReadable(ctx context.Context, b Backend, n int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	err := b.ReadRecords(ctx, 0, 1, func(int64, []byte) error { return nil })
	var ae *ArchivedError
	if errors.As(err, &ae) {
		return min(ae.First, n), nil
	}
	return 0, err
}

// Readable returns how many records of b can be read: Size, and for a
// reader of a log being written also the records written after the last
// stored hash (Report.Pending), which are readable but not yet verifiable.
func Readable(ctx context.Context, b Backend) (int64, error) {
	n, err := b.Size(ctx)
	if err != nil {
		return 0, err
	}
	if p, ok := b.(pender); ok {
		recs, _ := p.Pending()
		n += recs
	}
	return n, nil
}

// ReadRange calls fn with the parsed records [start, end) of b, skipping
// archived ones, and stops at fn's first error. It does not verify hashes.
func ReadRange(ctx context.Context, b Backend, start, end int64, fn func(Record) error) error {
	n, err := Readable(ctx, b)
	if err != nil {
		return err
	}
	first, err := firstReadable(ctx, b, n)
	if err != nil {
		return err
	}
	start, end = max(start, first), min(end, n)
	if start >= end {
		return nil
	}
	return b.ReadRecords(ctx, start, end, func(i int64, data []byte) error {
		r, err := ParseRecord(data)
		if err != nil {
			return &CorruptError{Index: i, Reason: err.Error()}
		}
		if r.Index != i {
			return &CorruptError{Index: i, Reason: fmt.Sprintf("the record at position %d says it is record %d", i, r.Index)}
		}
		return fn(r)
	})
}

// Verify checks the log in the directory dir with the verifier key vkey
// (note format, or a file holding it); see VerifyBackend. The log may be in
// use by a running warden.
func Verify(dir, vkey string) (Report, error) {
	v, err := ParseVerifierKey(vkey)
	if err != nil {
		return Report{}, err
	}
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return Report{}, &VerifyError{Index: ce.Index, Reason: ce.Error()}
		}
		return Report{}, err
	}
	defer b.Close()
	return VerifyBackend(context.Background(), b, VerifyOptions{Verifier: v})
}

// ReadAll calls fn for each record of the log in dir that is not archived,
// in order, and stops at fn's first error, which it returns wrapped. It
// checks that each record is well-formed but not the hashes; use Verify for
// that.
func ReadAll(dir string, fn func(Record) error) error {
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := ReadRange(context.Background(), b, 0, 1<<62, fn); err != nil {
		return fmt.Errorf("audit: read %s: %w", dir, err)
	}
	return nil
}

// Tail returns the last n records of b (fewer if the log, or what is not
// archived of it, is shorter), oldest first.
func Tail(ctx context.Context, b Backend, n int) ([]Record, error) {
	if n <= 0 {
		return nil, fmt.Errorf("audit: tail: n must be positive, got %d", n)
	}
	size, err := Readable(ctx, b)
	if err != nil {
		return nil, err
	}
	var out []Record
	err = ReadRange(ctx, b, max(0, size-int64(n)), size, func(r Record) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// ErrNotFound is returned by Find for an id that is in no record.
var ErrNotFound = errors.New("audit: no such record")

// Find returns the stored record named by id: a log index (decimal) or a
// request id. A request id is looked up by reading the log from the start;
// archived records are not searched.
func Find(ctx context.Context, b Backend, id string) (Record, []byte, error) {
	n, err := Readable(ctx, b)
	if err != nil {
		return Record{}, nil, err
	}
	var found []byte
	if idx, err := strconv.ParseInt(id, 10, 64); err == nil {
		if idx < 0 || idx >= n {
			return Record{}, nil, fmt.Errorf("%w: index %d (the log holds %d records)", ErrNotFound, idx, n)
		}
		err := b.ReadRecords(ctx, idx, idx+1, func(_ int64, data []byte) error {
			found = bytes.Clone(data)
			return nil
		})
		if err != nil {
			return Record{}, nil, err
		}
	} else {
		quoted, _ := json.Marshal(id)
		needle := append([]byte(`"request_id":`), quoted...)
		first, err := firstReadable(ctx, b, n)
		if err != nil {
			return Record{}, nil, err
		}
		err = b.ReadRecords(ctx, first, n, func(_ int64, data []byte) error {
			if bytes.Contains(data, needle) {
				if r, err := ParseRecord(data); err == nil && r.RequestID == id {
					found = bytes.Clone(data)
					return errStop
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return Record{}, nil, err
		}
		if found == nil {
			return Record{}, nil, fmt.Errorf("%w: no record has request id %q", ErrNotFound, id)
		}
	}
	r, err := ParseRecord(found)
	if err != nil {
		return Record{}, nil, err
	}
	return r, found, nil
}

// Prove returns the inclusion proof of record index in the tree of
// checkpoint cp, and checks it (tlog.CheckRecord) against cp's signed root
// and the record's stored bytes.
func Prove(ctx context.Context, b Backend, index int64, cp *Checkpoint) (tlog.RecordProof, []byte, error) {
	if index < 0 || index >= cp.Tree.N {
		return nil, nil, fmt.Errorf("audit: prove: record %d is not covered by the checkpoint of %d records", index, cp.Tree.N)
	}
	var rec []byte
	if err := b.ReadRecords(ctx, index, index+1, func(_ int64, data []byte) error {
		rec = bytes.Clone(data)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("audit: prove: %w", err)
	}
	proof, err := tlog.ProveRecord(cp.Tree.N, index, b)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: prove: %w", err)
	}
	if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, index, tlog.RecordHash(rec)); err != nil {
		return proof, rec, &VerifyError{Index: index, Reason: "the inclusion proof does not verify against the signed root: " + err.Error()}
	}
	return proof, rec, nil
}

// Consistency returns the consistency proof between two checkpoints of the
// log and checks it (tlog.CheckTree): the newer tree holds the older one as
// a prefix.
func Consistency(b Backend, older, newer *Checkpoint) (tlog.TreeProof, error) {
	if older.Tree.N > newer.Tree.N {
		older, newer = newer, older
	}
	if older.Tree.N == 0 {
		return tlog.TreeProof{}, nil // every tree extends the empty one
	}
	proof, err := tlog.ProveTree(newer.Tree.N, older.Tree.N, b)
	if err != nil {
		return nil, fmt.Errorf("audit: consistency: %w", err)
	}
	if err := tlog.CheckTree(proof, newer.Tree.N, newer.Tree.Hash, older.Tree.N, older.Tree.Hash); err != nil {
		return proof, &VerifyError{Index: 0, End: older.Tree.N, Reason: fmt.Sprintf(
			"the checkpoint of %d records is not a prefix of the checkpoint of %d records: the log was rewritten (a fork): %v",
			older.Tree.N, newer.Tree.N, err)}
	}
	return proof, nil
}

// FindCheckpoint returns the stored checkpoint of a tree of size n,
// verified with v.
func FindCheckpoint(ctx context.Context, b Backend, v note.Verifier, n int64) (*Checkpoint, error) {
	var found []byte
	err := b.Checkpoints(ctx, func(size int64, signed []byte) error {
		if size == n {
			found = bytes.Clone(signed)
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("audit: no stored checkpoint of size %d", n)
	}
	c, err := OpenCheckpoint(found, v)
	if err != nil {
		return nil, err
	}
	if c.Tree.N != n {
		return nil, &CheckpointError{Reason: fmt.Sprintf("stored as size %d but signed for %d records", n, c.Tree.N)}
	}
	return c, nil
}
