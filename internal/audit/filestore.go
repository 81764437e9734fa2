package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-ai/warden/internal/store/localfile"
)

// The file backend keeps a log in one directory:
//
//	FORMAT                          "warden audit log, format 1\n"; written last when the log is created
//	LOCK                            flock(2)ed by the one process that writes the log
//	seg-<first index, 20 digits>.log  records, framed (frame.go); a new segment starts once one reaches SegmentBytes
//	hashes                          the stored hashes, 32 bytes each, at tlog.StoredHashIndex positions
//	checkpoints                     signed checkpoints, framed; payload = 8-byte big-endian tree size + signed note
//	archive.json                    which leading segments were moved to the archive (archive.go)
//	torn/                           bytes removed from a torn tail at open, kept as evidence
//	repairs.log                     one line per repair made at open, with its time
//
// Append writes the batch's frames to the active segment and fsyncs it,
// then writes the batch's stored hashes and fsyncs the hashes file. So
// after a crash the hashes never cover a record whose frame is not durable,
// and open can tell a torn tail (repaired) from damage (refused):
//
//   - an incomplete or garbled frame at the end of the active segment,
//     beyond what the hashes cover, is a torn write: its bytes are moved to
//     torn/ and the segment is truncated;
//   - complete records beyond what the hashes cover were written but their
//     hashes were not: their stored hashes are recomputed and written
//     ("adopted"), since in async mode their requests may have been
//     answered;
//   - a partial set of hashes beyond the last covered record is cut;
//   - hashes that cover a record that is missing or damaged mean an
//     acknowledged record was lost: open fails and names it.
//
// Every repair is logged, returned by Repairs, and shown by `warden audit
// verify`.
const (
	formatFile      = "FORMAT"
	formatText      = "warden audit log, format 1\n"
	lockFile        = "LOCK"
	hashesFile      = "hashes"
	checkpointsFile = "checkpoints"
	tornDir         = "torn"
	repairLogFile   = "repairs.log"
	segPrefix       = "seg-"
	segSuffix       = ".log"

	// DefaultSegmentBytes is the size at which a new segment is started.
	DefaultSegmentBytes = 64 << 20
)

// FileOptions configure the file backend. The zero value opens for writing
// with the defaults.
type FileOptions struct {
	// ReadOnly opens without the lock and changes nothing: a torn tail, or
	// the tail of a log being written, is left as it is and reported by
	// Pending. Size then counts only records whose stored hashes are on
	// disk.
	ReadOnly bool
	// SegmentBytes: a new segment is started once the active one holds
	// this many bytes. Default DefaultSegmentBytes.
	SegmentBytes int64
	// ArchiveDir, if set, is where ReadRecords finds archived segments.
	ArchiveDir string
	// Logger receives repairs. Default slog.Default().
	Logger *slog.Logger

	// wrap lets tests put a failing file under the writer.
	wrap func(name string, f storeFile) storeFile
}

// storeFile is what the backend needs from a file it writes.
type storeFile interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Close() error
}

// FileBackend is the embedded file store of an audit log.
type FileBackend struct {
	dir    string
	opts   FileOptions
	logger *slog.Logger
	unlock func()

	size    atomic.Int64 // records durable (with their hashes written or in tail)
	frames  atomic.Int64 // read-only: complete records in the segments, hashed or not
	nhashes atomic.Int64 // hashes written to the hashes file (changed under hmu)
	hashes  storeFile    // read with ReadAt, concurrently with Append

	// Stored hashes are kept in memory (tail) until a checkpoint, Close or
	// tailFlush of them, and then written to the hashes file and fsynced
	// with the checkpoint: appending them with every batch would make each
	// batch's fsync flush two files.
	hmu  sync.RWMutex // guards tail and nhashes' changes
	tail []tlog.Hash  // the hashes after the file's
	fmu  sync.Mutex   // serializes writes to the hashes file

	mu         sync.Mutex // serializes writers; guards what follows
	closed     bool
	failed     error
	segs       []segment // retained segments, oldest first; the last is active
	archived   archiveManifest
	seg        storeFile // the active segment (writer only)
	segSize    int64
	ckpt       storeFile // the checkpoints file (writer only)
	ckptSize   int64     // its size after the last good checkpoint
	ckptBad    error     // set when a failed write could not be undone
	lastCP     int64
	lastNote   []byte
	repairs    []string
	pending    int64 // read-only: complete records beyond Size
	missing    int64 // read-only: records the hashes cover that are not in the segments
	missingWhy string
	torn       int64 // read-only: bytes of an incomplete frame at the end
	buf        []byte
	hbuf       []byte
	ckMu       sync.Mutex // serializes AddCheckpoint; held while syncing without mu
}

// segment is one segment file.
type segment struct {
	first int64
	name  string
}

func segName(first int64) string { return fmt.Sprintf("%s%020d%s", segPrefix, first, segSuffix) }

// parseSegName returns the first index a segment file name gives.
func parseSegName(name string) (int64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(name)-len(segSuffix)]
	if len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// OpenFileBackend opens the log directory dir, creating it (mode 0700) and
// the log in it if needed. For writing it takes the directory's lock,
// repairs a torn tail and reports it (Repairs); damage it cannot attribute
// to an interrupted write is an error naming the first record affected (a
// *CorruptError), and nothing is changed.
func OpenFileBackend(dir string, opts FileOptions) (*FileBackend, error) {
	if dir == "" {
		return nil, errors.New("audit: open: no log directory given")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	for attempt := 0; ; attempt++ {
		b := &FileBackend{dir: dir, opts: opts, logger: opts.Logger}
		if b.logger == nil {
			b.logger = slog.Default()
		}
		err := b.open()
		if err == nil {
			return b, nil
		}
		_ = b.closeFiles()
		// A reader may race a writer starting a segment, or an archiver
		// moving one: what looks like a gap is looked at again.
		var ce *CorruptError
		if opts.ReadOnly && attempt < 2 && errors.As(err, &ce) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return nil, fmt.Errorf("audit: open %s: %w", dir, err)
	}
}

func (b *FileBackend) path(name string) string { return filepath.Join(b.dir, name) }

func (b *FileBackend) open() error {
	fi, err := os.Stat(b.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !b.opts.ReadOnly:
		if err := os.MkdirAll(b.dir, 0o700); err != nil {
			return err
		}
		if err := localfile.SyncDir(filepath.Dir(b.dir)); err != nil {
			return fmt.Errorf("sync parent directory: %w", err)
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return errors.New("not a directory. audit.path names the log directory; a file there may be a log " +
			"of an older warden (one JSON line per record): keep it as evidence and move it aside")
	}
	if !b.opts.ReadOnly {
		unlock, err := localfile.Lock(b.path(lockFile), 0)
		if err != nil {
			return fmt.Errorf("%w (is another warden writing this audit log?)", err)
		}
		b.unlock = unlock
	}
	format, err := os.ReadFile(b.path(formatFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if b.opts.ReadOnly {
			return errors.New("not an audit log: no FORMAT file")
		}
		if err := b.create(); err != nil {
			return err
		}
	case err != nil:
		return err
	case string(format) != formatText:
		return fmt.Errorf("FORMAT is %.60q, want %q: not a log this warden can read", format, formatText)
	}
	// The hashes are sized first: a writer fsyncs records before their
	// hashes, so a reader that sizes the hashes before it looks at the
	// segments never sees hashes without their records.
	flags := os.O_RDONLY
	if !b.opts.ReadOnly {
		flags = os.O_RDWR | os.O_APPEND
	}
	hf, err := b.openFile(hashesFile, flags)
	if err != nil {
		return err
	}
	b.hashes = hf
	hst, err := os.Stat(b.path(hashesFile))
	if err != nil {
		return err
	}
	if b.archived, err = readManifest(b.dir); err != nil {
		return err
	}
	if err := b.listSegments(); err != nil {
		return err
	}
	if err := b.openCheckpoints(flags); err != nil {
		return err
	}
	if err := b.recoverTail(hst.Size()); err != nil {
		return err
	}
	if b.opts.ReadOnly {
		return b.readRepairLog()
	}
	return b.writeRepairLog()
}

// writeRepairLog appends this open's repairs to repairs.log, the log
// directory's durable record of them, which `warden audit verify` shows.
func (b *FileBackend) writeRepairLog() error {
	if len(b.repairs) == 0 {
		return nil
	}
	f, err := os.OpenFile(b.path(repairLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record the repairs: %w", err)
	}
	now := time.Now().UTC().Format(time.RFC3339)
	var buf []byte
	for _, r := range b.repairs {
		buf = fmt.Appendf(buf, "%s %s\n", now, strings.ReplaceAll(r, "\n", " "))
	}
	err = writeAll(f, buf)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record the repairs in %s: %w", repairLogFile, err)
	}
	return nil
}

// readRepairLog loads the repairs recorded by earlier writers.
func (b *FileBackend) readRepairLog() error {
	data, _, err := localfile.ReadFile(b.path(repairLogFile), 4<<20)
	if err != nil {
		return fmt.Errorf("%s: %w", repairLogFile, err)
	}
	for l := range strings.SplitSeq(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			b.repairs = append(b.repairs, l)
		}
	}
	return nil
}

// create makes a new, empty log in an empty directory.
func (b *FileBackend) create() error {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		switch n := e.Name(); {
		case n == lockFile, n == hashesFile, n == checkpointsFile, n == segName(0), strings.HasPrefix(n, "."+formatFile+".tmp"):
			// Left by a creation that was interrupted: empty or a header only.
			if fi, err := e.Info(); err != nil || fi.Size() > fileHeaderLen {
				return fmt.Errorf("no FORMAT file, but %s holds data: not an audit log directory, or a damaged one", n)
			}
		default:
			return fmt.Errorf("no FORMAT file and the directory is not empty (%s): not an audit log directory", n)
		}
	}
	for _, f := range []struct {
		name string
		head []byte
	}{{segName(0), fileHeader(segmentMagic, 0)}, {hashesFile, nil}, {checkpointsFile, fileHeader(checkpointMagic, 0)}} {
		if err := writeNew(b.path(f.name), f.head); err != nil {
			return err
		}
	}
	if err := localfile.WriteAtomic(b.path(formatFile), []byte(formatText)); err != nil {
		return fmt.Errorf("write FORMAT: %w", err)
	}
	return nil
}

// writeNew creates (or truncates) path with data, fsynced, mode 0600.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

func (b *FileBackend) openFile(name string, flags int) (storeFile, error) {
	f, err := os.OpenFile(b.path(name), flags, 0o600)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if flags != os.O_RDONLY && b.opts.wrap != nil {
		return b.opts.wrap(name, f), nil
	}
	return f, nil
}

// listSegments finds the retained segments and checks that they continue
// the archive and that each header agrees with its name.
func (b *FileBackend) listSegments() error {
	ents, err := os.ReadDir(b.dir)
	if err != nil {
		return err
	}
	b.segs = b.segs[:0]
	for _, e := range ents {
		first, ok := parseSegName(e.Name())
		if !ok {
			continue
		}
		if b.archived.has(e.Name()) {
			// Archiving copied it and updated the manifest, then stopped
			// before removing it: the archive copy is authoritative.
			continue
		}
		b.segs = append(b.segs, segment{first: first, name: e.Name()})
	}
	slices.SortFunc(b.segs, func(x, y segment) int { return cmp.Compare(x.first, y.first) })
	if len(b.segs) == 0 {
		return &CorruptError{Index: b.archived.next(), Reason: "no segment file: the records were deleted"}
	}
	if want := b.archived.next(); b.segs[0].first != want {
		return &CorruptError{Index: want, Where: b.segs[0].name,
			Reason: fmt.Sprintf("the first segment starts at record %d: records %d..%d are missing", b.segs[0].first, want, b.segs[0].first-1)}
	}
	for i, s := range b.segs {
		if i > 0 && s.first == b.segs[i-1].first {
			return &CorruptError{Index: s.first, Where: s.name, Reason: "two segments start at the same record"}
		}
		if err := b.checkSegHeader(s, i == len(b.segs)-1); err != nil {
			return err
		}
	}
	return nil
}

// checkSegHeader reads a segment's header. The active segment's header may
// be short after a crash while it was being created; that is repaired by
// recoverTail.
func (b *FileBackend) checkSegHeader(s segment, active bool) error {
	f, err := os.Open(b.path(s.name))
	if err != nil {
		return err
	}
	defer f.Close()
	var h [fileHeaderLen]byte
	n, err := io.ReadFull(f, h[:])
	if active && n < fileHeaderLen && (err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF)) {
		return nil
	}
	if err != nil {
		return &CorruptError{Index: s.first, Where: s.name, Reason: fmt.Sprintf("cannot read the segment header: %v", err)}
	}
	first, err := parseFileHeader(h[:], segmentMagic)
	if err != nil {
		return &CorruptError{Index: s.first, Where: s.name, Reason: "bad segment header: " + err.Error()}
	}
	if first != s.first {
		return &CorruptError{Index: s.first, Where: s.name,
			Reason: fmt.Sprintf("the header says the segment starts at record %d: segments were renamed", first)}
	}
	return nil
}

// recoverTail scans the active segment, reconciles it with the hashes file
// (hashBytes long) and repairs a torn tail, or, read-only, records it.
func (b *FileBackend) recoverTail(hashBytes int64) error {
	active := b.segs[len(b.segs)-1]
	if err := b.repairShortHeader(&active); err != nil {
		return err
	}
	active = b.segs[len(b.segs)-1]
	count, goodEnd, fileEnd, scanErr := scanSegment(b.path(active.name))
	if scanErr != nil {
		return scanErr
	}
	records := active.first + count
	tornBytes := fileEnd - goodEnd

	h := hashBytes / tlog.HashSize
	covered := recordsCovered(h)
	if b.opts.ReadOnly && (covered > records || covered == records && h > tlog.StoredHashCount(covered)) {
		// Damage: hashes for records that are not there. A reader still
		// serves the records that are, so that Verify can name the first
		// bad one; Missing reports the rest.
		b.size.Store(records)
		b.frames.Store(records)
		b.nhashes.Store(min(h, tlog.StoredHashCount(covered)))
		b.missing = max(covered-records, 1)
		b.missingWhy = fmt.Sprintf("stored hashes exist for %d more records than the log holds: acknowledged records were deleted or cut off", b.missing)
		if tornBytes > 0 {
			b.missingWhy = fmt.Sprintf("the record at offset %d of %s cannot be read (bad length or checksum) although its stored hashes exist: "+
				"it was changed or the segment is damaged; the %d records from it on are not readable", goodEnd, active.name, b.missing)
		}
		return nil
	}
	if covered > records {
		reason := fmt.Sprintf("stored hashes cover %d records but only %d are in the segments: acknowledged records are missing", covered, records)
		if tornBytes > 0 {
			reason += fmt.Sprintf(" (the frame at offset %d of %s is damaged)", goodEnd, active.name)
		}
		return &CorruptError{Index: records, Where: active.name, Reason: reason}
	}
	wantHashes := tlog.StoredHashCount(covered)
	partialHashBytes := hashBytes - wantHashes*tlog.HashSize

	if b.opts.ReadOnly {
		b.size.Store(covered)
		b.frames.Store(records)
		b.nhashes.Store(wantHashes)
		b.pending = records - covered
		b.torn = tornBytes
		return nil
	}
	if partialHashBytes > 0 && covered == records {
		return &CorruptError{Index: records, Where: hashesFile,
			Reason: "the hashes file holds hashes for a record that is not in the segments: an acknowledged record is missing"}
	}
	if tornBytes > 0 {
		if err := b.truncate(active.name, goodEnd, fileEnd); err != nil {
			return err
		}
		b.repair("torn tail: moved %d bytes of an incomplete record from offset %d of %s to %s/ and truncated the segment (a write interrupted by a crash or a full disk; the record was never acknowledged in sync mode)",
			tornBytes, goodEnd, active.name, tornDir)
	}
	b.segSize = goodEnd
	seg, err := b.openFile(active.name, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	b.seg = seg
	// Stored hashes are fsynced when a checkpoint is made and at Close, not
	// with every batch: after a crash, those of the records after the last
	// checkpoint may be missing (or, on file systems that can expose blocks
	// that were never written, wrong). They are recomputed from the
	// records, which are durable. A clean shutdown leaves nothing to do.
	from := min(covered, b.lastCP)
	b.size.Store(covered)
	b.nhashes.Store(wantHashes)
	if from == records && partialHashBytes == 0 {
		return nil
	}
	missing, differ, err := b.recomputeHashes(from, records, h)
	if err != nil {
		return fmt.Errorf("recompute the stored hashes of records %d..%d: %w", from, records-1, err)
	}
	if missing > 0 || differ > 0 || partialHashBytes > 0 {
		msg := fmt.Sprintf("recomputed the stored hashes of records %d..%d from the records: %d were missing or incomplete "+
			"(hashes are fsynced when a checkpoint is made; a crash loses those written since)", from, records-1, missing)
		if differ > 0 {
			msg += fmt.Sprintf(", %d differed from the hashes on disk (kept in %s/)", differ, tornDir)
		}
		b.repair("%s", msg)
	}
	return nil
}

// recomputeHashes replaces the stored hashes from record from on (the
// hashes file holds have hashes) by those computed from records [from,
// to), and returns how many records had no complete hashes on disk and how
// many had different ones.
func (b *FileBackend) recomputeHashes(from, to, have int64) (missing, differ int64, err error) {
	base := tlog.StoredHashIndex(0, from)
	var old []byte
	if have > base {
		old = make([]byte, (have-base)*tlog.HashSize)
		if _, err := b.hashes.ReadAt(old, base*tlog.HashSize); err != nil {
			return 0, 0, err
		}
	}
	b.nhashes.Store(base)
	b.size.Store(to) // let ReadRecords reach them
	var computed []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x >= base {
				if x-base >= int64(len(computed)) {
					return nil, fmt.Errorf("hash %d is not computed yet", x)
				}
				out[i] = computed[x-base]
				continue
			}
			h, err := b.ReadHashes([]int64{x})
			if err != nil {
				return nil, err
			}
			out[i] = h[0]
		}
		return out, nil
	})
	err = b.ReadRecords(context.Background(), from, to, func(i int64, rec []byte) error {
		hs, err := tlog.StoredHashes(i, rec, r)
		if err != nil {
			return err
		}
		at := int64(len(computed))
		switch end := (at + int64(len(hs))) * tlog.HashSize; {
		case end > int64(len(old)):
			missing++
		default:
			for j, h := range hs {
				if !bytes.Equal(h[:], old[(at+int64(j))*tlog.HashSize:(at+int64(j)+1)*tlog.HashSize]) {
					differ++
					break
				}
			}
		}
		computed = append(computed, hs...)
		return nil
	})
	b.size.Store(from)
	if err != nil {
		return 0, 0, err
	}
	end := have * tlog.HashSize
	if fi, err := os.Stat(b.path(hashesFile)); err == nil {
		end = fi.Size()
	}
	if differ > 0 {
		if err := b.quarantine(hashesFile, base*tlog.HashSize, end); err != nil {
			return 0, 0, err
		}
	}
	if err := os.Truncate(b.path(hashesFile), base*tlog.HashSize); err != nil {
		return 0, 0, err
	}
	if err := b.writeHashes(computed, true); err != nil {
		return 0, 0, err
	}
	b.size.Store(to)
	return missing, differ, nil
}

// repairShortHeader handles an active segment whose header is incomplete:
// the process stopped while creating it, before any record was written.
func (b *FileBackend) repairShortHeader(active *segment) error {
	fi, err := os.Stat(b.path(active.name))
	if err != nil {
		return err
	}
	if fi.Size() >= fileHeaderLen {
		return nil
	}
	if b.opts.ReadOnly {
		if len(b.segs) > 1 {
			b.segs = b.segs[:len(b.segs)-1]
			return nil
		}
		return &CorruptError{Index: active.first, Where: active.name, Reason: "incomplete segment header"}
	}
	if err := b.truncate(active.name, 0, fi.Size()); err != nil {
		return err
	}
	if err := writeNew(b.path(active.name), fileHeader(segmentMagic, active.first)); err != nil {
		return err
	}
	b.repair("rewrote the incomplete header of %s (the segment was being created when warden stopped)", active.name)
	return nil
}

// scanSegment reads a segment's frames and returns how many are complete
// and valid, where the last of them ends, and the file's size. Scanning
// stops at the first incomplete or malformed frame.
func scanSegment(path string) (count, goodEnd, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, err
	}
	fr := newFrameReader(f, fileHeaderLen)
	if _, err := fr.r.Discard(fileHeaderLen); err != nil {
		return 0, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	for {
		_, err := fr.next()
		if errors.Is(err, io.EOF) || errors.Is(err, errFrameShort) || errors.Is(err, errFrameBad) {
			return count, fr.off, fi.Size(), nil
		}
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", path, err)
		}
		count++
	}
}

// truncate cuts name to size, first copying bytes [size, end) to torn/.
func (b *FileBackend) truncate(name string, size, end int64) error {
	if end > size {
		if err := b.quarantine(name, size, end); err != nil {
			return fmt.Errorf("keep the torn tail of %s: %w", name, err)
		}
	}
	f, err := os.OpenFile(b.path(name), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", name, err)
	}
	return nil
}

// quarantine copies bytes [from, to) of name to a new file under torn/.
func (b *FileBackend) quarantine(name string, from, to int64) error {
	src, err := os.Open(b.path(name))
	if err != nil {
		return err
	}
	defer src.Close()
	dir := b.path(tornDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(dir, fmt.Sprintf("%s-%s-at-%d.bin", time.Now().UTC().Format("20060102T150405.000000000Z"), name, from))
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.NewSectionReader(src, from, to-from)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return localfile.SyncDir(dir)
}

// writeHashes appends hashes to the hashes file, fsyncing it if sync.
func (b *FileBackend) writeHashes(hashes []tlog.Hash, sync bool) error {
	buf := b.hbuf[:0]
	for _, h := range hashes {
		buf = append(buf, h[:]...)
	}
	if cap(buf) <= 1<<20 {
		b.hbuf = buf
	}
	if err := writeAll(b.hashes, buf); err != nil {
		return fmt.Errorf("write %s: %w", hashesFile, err)
	}
	if sync {
		if err := b.hashes.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", hashesFile, err)
		}
	}
	b.nhashes.Add(int64(len(hashes)))
	return nil
}

func writeAll(w io.Writer, p []byte) error {
	n, err := w.Write(p)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return err
}

func (b *FileBackend) repair(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	b.repairs = append(b.repairs, msg)
	b.logger.Warn("audit: repaired at open: "+msg, "dir", b.dir)
}

// openCheckpoints reads the checkpoints file, repairing (or, read-only,
// ignoring) a torn last frame.
func (b *FileBackend) openCheckpoints(flags int) error {
	f, err := os.Open(b.path(checkpointsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("%s: cannot read the header: %w", checkpointsFile, err)
	}
	if _, err := parseFileHeader(h[:], checkpointMagic); err != nil {
		return fmt.Errorf("%s: %w", checkpointsFile, err)
	}
	fr := newFrameReader(f, fileHeaderLen)
	var last int64 = -1
	for {
		p, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errFrameShort) || errors.Is(err, errFrameBad) {
			if b.opts.ReadOnly {
				break
			}
			if err := b.truncate(checkpointsFile, fr.off, fi.Size()); err != nil {
				return err
			}
			b.repair("torn tail: moved %d bytes of an incomplete checkpoint from offset %d of %s to %s/",
				fi.Size()-fr.off, fr.off, checkpointsFile, tornDir)
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", checkpointsFile, err)
		}
		size, note, err := splitCheckpointFrame(p)
		if err != nil {
			return fmt.Errorf("%s at offset %d: %w", checkpointsFile, fr.off-int64(len(p))-frameHeaderLen, err)
		}
		if size <= last {
			return fmt.Errorf("%s: checkpoint of size %d after one of size %d: the file was tampered with", checkpointsFile, size, last)
		}
		last = size
		b.lastCP, b.lastNote = size, append([]byte(nil), note...)
	}
	if b.opts.ReadOnly {
		return nil
	}
	b.ckptSize = fr.off
	cf, err := b.openFile(checkpointsFile, flags)
	if err != nil {
		return err
	}
	b.ckpt = cf
	return nil
}

// splitCheckpointFrame splits a checkpoints-file payload into the tree size
// and the signed note.
func splitCheckpointFrame(p []byte) (int64, []byte, error) {
	if len(p) < 9 {
		return 0, nil, errors.New("checkpoint frame too short")
	}
	size := binary.BigEndian.Uint64(p[:8])
	if size > 1<<62 {
		return 0, nil, errors.New("checkpoint size out of range")
	}
	return int64(size), p[8:], nil
}

// Size implements Backend.
func (b *FileBackend) Size(context.Context) (int64, error) { return b.size.Load(), nil }

// Repairs implements Repairer: the repairs made when this backend was
// opened for writing; for a backend opened read-only, every repair any
// writer recorded in repairs.log, with its time.
func (b *FileBackend) Repairs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.repairs)
}

// Pending reports, for a backend opened read-only, what is stored beyond
// Size: complete records whose stored hashes are not on disk (an append in
// progress, or a torn tail the next writer repairs), and the bytes of an
// incomplete frame at the end of the active segment.
func (b *FileBackend) Pending() (records, tornBytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending, b.torn
}

// Missing reports, for a backend opened read-only, how many records the
// stored hashes cover beyond the records in the segments: acknowledged
// records that were deleted or cut off. A writer refuses to open such a
// log; a reader serves the records that are there so that Verify can name
// the first bad one.
func (b *FileBackend) Missing() (int64, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.missing, b.missingWhy
}

// Dir is the log directory.
func (b *FileBackend) Dir() string { return b.dir }

// Append implements Backend.
func (b *FileBackend) Append(_ context.Context, first int64, records [][]byte, hashes []tlog.Hash) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.opts.ReadOnly:
		return errors.New("audit: append: the log is open read-only")
	case b.closed:
		return fmt.Errorf("audit: append: %w", ErrClosed)
	case b.failed != nil:
		return fmt.Errorf("audit: append: an earlier write failed: %w", b.failed)
	case first != b.size.Load():
		return fmt.Errorf("audit: append: first record %d, but the log holds %d", first, b.size.Load())
	case int64(len(hashes)) != hashesFor(first, int64(len(records))):
		return fmt.Errorf("audit: append: %d hashes for records %d..%d, want %d", len(hashes), first, first+int64(len(records))-1,
			hashesFor(first, int64(len(records))))
	case len(records) == 0:
		return nil
	}
	for i, r := range records {
		if len(r) == 0 || len(r) > maxFramePayload {
			return fmt.Errorf("audit: append: record %d is %d bytes (1..%d)", first+int64(i), len(r), maxFramePayload)
		}
	}
	if b.segSize >= b.opts.SegmentBytes && first > b.segs[len(b.segs)-1].first {
		if err := b.roll(first); err != nil {
			b.failed = err
			return fmt.Errorf("audit: append: %w", err)
		}
	}
	buf := b.buf[:0]
	for _, r := range records {
		buf = appendFrame(buf, r)
	}
	if cap(buf) <= 8<<20 {
		b.buf = buf
	}
	name := b.segs[len(b.segs)-1].name
	if err := writeAll(b.seg, buf); err != nil {
		b.failed = fmt.Errorf("write %s: %w", name, err)
		return fmt.Errorf("audit: append: %w", b.failed)
	}
	if err := syncData(b.seg); err != nil {
		b.failed = fmt.Errorf("fsync %s: %w", name, err)
		return fmt.Errorf("audit: append: %w", b.failed)
	}
	b.segSize += int64(len(buf))
	// The hashes are derived from the records, which are now durable; they
	// are written and fsynced before a checkpoint covers them
	// (AddCheckpoint) and recomputed at open if a crash lost them
	// (recoverTail).
	b.hmu.Lock()
	b.tail = append(b.tail, hashes...)
	pending := len(b.tail)
	b.hmu.Unlock()
	b.size.Add(int64(len(records)))
	if pending >= tailFlush {
		// The records are stored; a failed write of their hashes is retried
		// at the next flush, unless the file could not be cut back.
		if err := b.flushTail(false); err != nil {
			var fe *fatalError
			if errors.As(err, &fe) {
				b.failed = err
			}
			b.logger.Error("audit: writing stored hashes failed; retried at the next checkpoint", "err", err)
		}
	}
	return nil
}

// fatalError marks a storage failure that leaves a file in an unknown
// state: the backend refuses further writes.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// tailFlush is how many stored hashes Append keeps in memory before it
// writes them to the hashes file (without fsync) on its own.
const tailFlush = 1 << 15

// flushTail writes the hashes in tail to the hashes file, and fsyncs it if
// sync. Hashes appended meanwhile stay in tail.
func (b *FileBackend) flushTail(sync bool) error {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	b.hmu.RLock()
	pending := b.tail[:len(b.tail):len(b.tail)] // append never writes below len
	b.hmu.RUnlock()
	var err error
	if len(pending) > 0 {
		buf := make([]byte, 0, len(pending)*tlog.HashSize)
		for _, h := range pending {
			buf = append(buf, h[:]...)
		}
		if werr := writeAll(b.hashes, buf); werr != nil {
			err = fmt.Errorf("write %s: %w", hashesFile, werr)
		}
	}
	if err == nil && sync {
		if serr := b.hashes.Sync(); serr != nil {
			err = fmt.Errorf("fsync %s: %w", hashesFile, serr)
		}
	}
	if err != nil {
		// Whatever reached the file is not trusted (after a failed fsync
		// the kernel may have dropped it): cut the file back and keep the
		// hashes in tail for the next attempt. If even that fails, the
		// file is in an unknown state and the backend fails.
		if terr := os.Truncate(b.path(hashesFile), b.nhashes.Load()*tlog.HashSize); terr != nil {
			return &fatalError{fmt.Errorf("%w; and %s could not be cut back: %v", err, hashesFile, terr)}
		}
		return err
	}
	if len(pending) > 0 {
		b.hmu.Lock()
		b.nhashes.Add(int64(len(pending)))
		b.tail = append(b.tail[:0:0], b.tail[len(pending):]...)
		b.hmu.Unlock()
	}
	return nil
}

// roll seals the active segment and starts one whose first record is first.
func (b *FileBackend) roll(first int64) error {
	name := segName(first)
	if err := writeNew(b.path(name), fileHeader(segmentMagic, first)); err != nil {
		return err
	}
	if err := localfile.SyncDir(b.dir); err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	f, err := b.openFile(name, os.O_RDWR|os.O_APPEND)
	if err != nil {
		return err
	}
	if err := b.seg.Close(); err != nil {
		f.Close()
		return fmt.Errorf("close %s: %w", b.segs[len(b.segs)-1].name, err)
	}
	b.seg, b.segSize = f, fileHeaderLen
	b.segs = append(b.segs, segment{first: first, name: name})
	return nil
}

// ReadHashes implements Backend and tlog.HashReader. Runs of consecutive
// indexes in the file are read with one call.
func (b *FileBackend) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	b.hmu.RLock()
	inFile := b.nhashes.Load()
	total := inFile + int64(len(b.tail))
	fromFile := false
	for i, x := range indexes {
		switch {
		case x < 0 || x >= total:
			b.hmu.RUnlock()
			return nil, fmt.Errorf("audit: read hashes: hash %d is not stored (%d are)", x, total)
		case x >= inFile:
			out[i] = b.tail[x-inFile]
		default:
			fromFile = true
		}
	}
	b.hmu.RUnlock()
	if !fromFile {
		return out, nil
	}
	// What is in the file does not change: read it without the lock.
	var buf []byte
	for i := 0; i < len(indexes); {
		x := indexes[i]
		if x >= inFile {
			i++
			continue
		}
		j := i + 1
		for j < len(indexes) && indexes[j] == indexes[j-1]+1 && indexes[j] < inFile {
			j++
		}
		need := (j - i) * tlog.HashSize
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		buf = buf[:need]
		if _, err := b.hashes.ReadAt(buf, x*tlog.HashSize); err != nil {
			return nil, fmt.Errorf("audit: read hashes %d..%d: %w", x, indexes[j-1], err)
		}
		for k := i; k < j; k++ {
			copy(out[k][:], buf[(k-i)*tlog.HashSize:])
		}
		i = j
	}
	return out, nil
}

// segmentsFrom returns the segments holding records from start on, with
// the directory each is in.
func (b *FileBackend) segmentsFrom(start int64) ([]segment, []string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var segs []segment
	var dirs []string
	if start < b.archived.next() {
		if b.opts.ArchiveDir == "" {
			return nil, nil, &ArchivedError{First: b.archived.next()}
		}
		for _, s := range b.archived.Segments {
			segs = append(segs, segment{first: s.First, name: s.Name})
			dirs = append(dirs, b.opts.ArchiveDir)
		}
	}
	for _, s := range b.segs {
		segs = append(segs, s)
		dirs = append(dirs, b.dir)
	}
	// Drop the segments that end before start.
	k := 0
	for k+1 < len(segs) && segs[k+1].first <= start {
		k++
	}
	return segs[k:], dirs[k:], nil
}

// ReadRecords implements Backend.
func (b *FileBackend) ReadRecords(ctx context.Context, start, end int64, fn func(int64, []byte) error) error {
	// A reader may also read the records written after the last stored
	// hash (Pending).
	if size := max(b.size.Load(), b.frames.Load()); start < 0 || end < start || end > size {
		return fmt.Errorf("audit: read records %d..%d: out of range (the log holds %d)", start, end-1, size)
	}
	if start == end {
		return nil
	}
	segs, dirs, err := b.segmentsFrom(start)
	if err != nil {
		return err
	}
	i := start
	for k, s := range segs {
		if i >= end {
			break
		}
		limit := end
		if k+1 < len(segs) {
			limit = min(end, segs[k+1].first)
		}
		if err := b.readSegment(ctx, filepath.Join(dirs[k], s.name), s, i, limit, fn); err != nil {
			return err
		}
		i = limit
	}
	return nil
}

// readSegment calls fn for records [from, to) of segment s at path.
func (b *FileBackend) readSegment(ctx context.Context, path string, s segment, from, to int64, fn func(int64, []byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if b.archivedSince(s.name) {
			return &ArchivedError{First: b.archived.next()}
		}
		return &CorruptError{Index: max(from, s.first), Where: s.name, Reason: "the segment file is missing"}
	}
	if err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	defer f.Close()
	fr := newFrameReader(f, 0)
	var h [fileHeaderLen]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return &CorruptError{Index: s.first, Where: s.name, Reason: fmt.Sprintf("cannot read the header: %v", err)}
	}
	fr.off = fileHeaderLen
	if first, err := parseFileHeader(h[:], segmentMagic); err != nil || first != s.first {
		return &CorruptError{Index: s.first, Where: s.name, Reason: "bad segment header"}
	}
	for i := s.first; i < to; i++ {
		if i&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		off := fr.off
		p, err := fr.next()
		if err != nil {
			reason := err.Error()
			if errors.Is(err, io.EOF) {
				reason = "the segment ends before this record"
			}
			return &CorruptError{Index: i, Where: fmt.Sprintf("%s offset %d", s.name, off), Reason: reason}
		}
		if i >= from {
			if err := fn(i, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// archivedSince reports whether a segment was archived after this backend
// was opened (by `warden audit archive` running beside the writer).
func (b *FileBackend) archivedSince(name string) bool {
	m, err := readManifest(b.dir)
	if err != nil || !m.has(name) {
		return false
	}
	b.mu.Lock()
	b.archived = m
	b.mu.Unlock()
	return true
}

// AddCheckpoint implements Backend. It first fsyncs the stored hashes,
// which Append leaves to the page cache, so that every checkpointed record
// has durable hashes. Appends go on meanwhile.
func (b *FileBackend) AddCheckpoint(_ context.Context, size int64, signed []byte) error {
	b.ckMu.Lock()
	defer b.ckMu.Unlock()
	b.mu.Lock()
	var err error
	switch {
	case b.opts.ReadOnly:
		err = errors.New("the log is open read-only")
	case b.closed:
		err = ErrClosed
	case b.ckptBad != nil:
		err = b.ckptBad
	case size <= b.lastCP:
		err = fmt.Errorf("size %d is not larger than the last checkpoint's %d", size, b.lastCP)
	case size > b.size.Load():
		err = fmt.Errorf("size %d is larger than the log (%d)", size, b.size.Load())
	case len(signed) == 0 || len(signed) > maxFramePayload-8:
		err = fmt.Errorf("note of %d bytes", len(signed))
	}
	b.mu.Unlock()
	if err != nil {
		return fmt.Errorf("audit: add checkpoint: %w", err)
	}
	if err := b.flushTail(true); err != nil {
		var fe *fatalError
		if errors.As(err, &fe) {
			b.mu.Lock()
			b.failed = fmt.Errorf("stored hashes: %w", err)
			b.mu.Unlock()
		}
		return fmt.Errorf("audit: add checkpoint: %w", err)
	}
	p := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(signed)), uint64(size))
	p = append(p, signed...)
	frame := appendFrame(nil, p)
	err = writeAll(b.ckpt, frame)
	if err == nil {
		if err = b.ckpt.Sync(); err != nil {
			err = fmt.Errorf("fsync %s: %w", checkpointsFile, err)
		}
	} else {
		err = fmt.Errorf("write %s: %w", checkpointsFile, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		// Cut what may have been written, so that the next checkpoint
		// does not follow a broken frame; if that fails too, refuse
		// further checkpoints (the next open repairs the tail).
		if terr := os.Truncate(b.path(checkpointsFile), b.ckptSize); terr != nil {
			b.ckptBad = fmt.Errorf("%s could not be cut back after a failed write: %w", checkpointsFile, terr)
		}
		return fmt.Errorf("audit: add checkpoint: %w", err)
	}
	b.ckptSize += int64(len(frame))
	b.lastCP, b.lastNote = size, append([]byte(nil), signed...)
	return nil
}

// Checkpoints implements Backend.
func (b *FileBackend) Checkpoints(ctx context.Context, fn func(int64, []byte) error) error {
	f, err := os.Open(b.path(checkpointsFile))
	if err != nil {
		return fmt.Errorf("audit: checkpoints: %w", err)
	}
	defer f.Close()
	b.mu.Lock()
	last := b.lastCP
	b.mu.Unlock()
	fr := newFrameReader(f, 0)
	if _, err := fr.r.Discard(fileHeaderLen); err != nil {
		return fmt.Errorf("audit: checkpoints: %w", err)
	}
	fr.off = fileHeaderLen
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := fr.next()
		if errors.Is(err, io.EOF) || errors.Is(err, errFrameShort) {
			return nil // the end, or a checkpoint being written
		}
		if err != nil {
			return fmt.Errorf("audit: checkpoints: offset %d: %w", fr.off, err)
		}
		size, note, err := splitCheckpointFrame(p)
		if err != nil {
			return fmt.Errorf("audit: checkpoints: %w", err)
		}
		if size > last {
			return nil // added after this backend was opened
		}
		if err := fn(size, note); err != nil {
			return err
		}
	}
}

// LatestCheckpoint implements Backend.
func (b *FileBackend) LatestCheckpoint(context.Context) (int64, []byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastNote == nil {
		return 0, nil, nil
	}
	return b.lastCP, slices.Clone(b.lastNote), nil
}

// Close implements Backend. A writer's stored hashes are fsynced first.
func (b *FileBackend) Close() error {
	b.ckMu.Lock()
	defer b.ckMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	var syncErr error
	if !b.opts.ReadOnly && b.hashes != nil && b.failed == nil {
		if err := b.flushTail(true); err != nil {
			syncErr = fmt.Errorf("audit: close: %w", err)
		}
	}
	return errors.Join(syncErr, b.closeFiles())
}

func (b *FileBackend) closeFiles() error {
	var errs []error
	for _, f := range []storeFile{b.seg, b.hashes, b.ckpt} {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	b.seg, b.hashes, b.ckpt = nil, nil, nil
	if b.unlock != nil {
		b.unlock()
		b.unlock = nil
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: close: %w", errors.Join(errs...))
	}
	return nil
}

// frameReader reads frames sequentially; off is the offset of the next
// frame. The payload next returns is valid until the following call.
type frameReader struct {
	r   *bufio.Reader
	off int64
}

// frameBufSize holds the largest frame, so that payloads are returned from
// the reader's buffer without a copy.
const frameBufSize = maxFramePayload + frameHeaderLen + 4096

func newFrameReader(r io.Reader, off int64) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, frameBufSize), off: off}
}

// next returns the next frame's payload: io.EOF at a clean end,
// errFrameShort if the data ends inside a frame, errFrameBad (wrapped) for a
// malformed frame; other errors are read errors. On error, off is unchanged.
func (fr *frameReader) next() ([]byte, error) {
	h, err := fr.r.Peek(frameHeaderLen)
	if len(h) == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if len(h) < frameHeaderLen {
		if errors.Is(err, io.EOF) {
			return nil, errFrameShort
		}
		return nil, err
	}
	n, err := frameLen(h)
	if err != nil {
		return nil, err
	}
	b, err := fr.r.Peek(frameHeaderLen + n)
	if len(b) < frameHeaderLen+n {
		if errors.Is(err, io.EOF) {
			return nil, errFrameShort
		}
		return nil, err
	}
	if err := checkFrame(b, b[frameHeaderLen:]); err != nil {
		return nil, err
	}
	if _, err := fr.r.Discard(frameHeaderLen + n); err != nil {
		return nil, err
	}
	fr.off += int64(frameHeaderLen + n)
	return b[frameHeaderLen:], nil
}

var (
	_ Backend  = (*FileBackend)(nil)
	_ Repairer = (*FileBackend)(nil)
)
