package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// Backend stores an audit log: the records, the Merkle tree's stored hashes
// (tlog's dense StoredHashIndex order) and the signed checkpoints. It only
// stores and returns bytes; the Log above it owns ordering, hashing and
// signing, so that every backend produces the same tree and Verify can check
// any of them. The interface lives here, beside its only user, rather than in
// internal/store: it is shaped by the Merkle log (stored hash indexes,
// checkpoints) and means nothing to the rest of warden.
//
// The file backend (OpenFileBackend) is the default. A backend is used by
// one Log at a time for writing; readers (Verify, the CLI) may use another
// instance over the same storage at the same time and must see a consistent
// prefix. The conformance suite in internal/audit/audittest states the
// contract as tests; every backend must pass it.
type Backend interface {
	// Size returns the number of records stored durably together with all
	// of their stored hashes. Records are numbered from 0.
	Size(ctx context.Context) (int64, error)

	// Append stores records first, first+1, ... and their stored hashes,
	// which start at tlog.StoredHashIndex(0, first) and number
	// tlog.StoredHashCount(first+len(records)) -
	// tlog.StoredHashCount(first). first must equal Size. When Append
	// returns nil, all of it is durable; when it returns an error, any
	// prefix may be stored and the caller stops using the backend for
	// writing (the next open repairs or reports what is there).
	Append(ctx context.Context, first int64, records [][]byte, hashes []tlog.Hash) error

	// ReadHashes returns stored hashes by stored hash index
	// (tlog.HashReader). Asking for a hash that is not stored is an error.
	ReadHashes(indexes []int64) ([]tlog.Hash, error)

	// ReadRecords calls fn for records start, start+1, ..., end-1 in order,
	// and stops at fn's first error, which it returns. The record slice is
	// valid only during the call. Records that were moved to an archive are
	// not read: if start is below the first retained record, ReadRecords
	// returns an *ArchivedError without calling fn. Records that cannot be
	// read as stored (a bad checksum, a missing file) give a
	// *CorruptError naming the index.
	ReadRecords(ctx context.Context, start, end int64, fn func(index int64, record []byte) error) error

	// AddCheckpoint durably stores a signed checkpoint of the tree of the
	// first size records. size must be larger than that of every checkpoint
	// already stored and at most Size.
	AddCheckpoint(ctx context.Context, size int64, signed []byte) error

	// Checkpoints calls fn for each stored checkpoint, oldest first, and
	// stops at fn's first error, which it returns.
	Checkpoints(ctx context.Context, fn func(size int64, signed []byte) error) error

	// LatestCheckpoint returns the newest stored checkpoint; nil and size 0
	// if there is none.
	LatestCheckpoint(ctx context.Context) (size int64, signed []byte, err error)

	// Close releases the backend. It does not make anything durable that
	// Append had not.
	Close() error
}

// Repairer is implemented by backends that can find a torn tail at open
// (a write cut short by a crash or a full disk) and repair it. Repairs
// returns what was repaired, in words, for the log, the metrics and
// `warden audit verify`; nil if nothing was.
type Repairer interface {
	Repairs() []string
}

// ArchivedError says that the records before First are in the archive and
// were not read.
type ArchivedError struct {
	First int64 // the first record still in the log
}

func (e *ArchivedError) Error() string {
	return fmt.Sprintf("records before %d are archived; give the archive directory to read them", e.First)
}

// CorruptError says that the stored form of a record, or of the storage
// around it, is damaged. Index is the first record affected.
type CorruptError struct {
	Index  int64
	Where  string // file or table, and offset, when known
	Reason string
}

func (e *CorruptError) Error() string {
	if e.Where != "" {
		return fmt.Sprintf("record %d (%s): %s", e.Index, e.Where, e.Reason)
	}
	return fmt.Sprintf("record %d: %s", e.Index, e.Reason)
}

// ErrClosed is returned by Append after Close, and by Healthy.
var ErrClosed = errors.New("audit: log closed")

// hashesFor returns how many stored hashes records [first, first+n) add.
func hashesFor(first, n int64) int64 {
	return tlog.StoredHashCount(first+n) - tlog.StoredHashCount(first)
}

// recordsCovered returns the largest n with tlog.StoredHashCount(n) ≤
// hashes: how many records a store of that many hashes fully covers.
func recordsCovered(hashes int64) int64 {
	// StoredHashCount(n) ≥ n, so n ≤ hashes; it grows monotonically.
	lo, hi := int64(0), hashes
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if tlog.StoredHashCount(mid) <= hashes {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}
