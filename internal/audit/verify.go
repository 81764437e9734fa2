package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Report summarizes a verified log.
type Report struct {
	Records uint64 // number of records; also the seq of the last one
	Head    string // hex hash of the last record; ZeroHash for an empty log
}

// VerifyError names the first line of a log that does not verify.
type VerifyError struct {
	Line   int    // 1-based line number
	Seq    uint64 // seq written on that line; 0 if the line could not be parsed
	Reason string // what is wrong
	Offset int64  // byte offset of the start of the line
	Torn   bool   // the line is the last one and has no "\n": an interrupted write
}

func (e *VerifyError) Error() string {
	if e.Seq != 0 {
		return fmt.Sprintf("line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Reason)
}

// Verify reads the log at path from start to end and recomputes the hash
// chain. It returns a *VerifyError naming the first line that was changed,
// deleted, inserted or moved, and an ordinary error if the file cannot be
// read. A last line without "\n" (a torn write) is an error too.
//
// Verify cannot tell that records were removed from the end of the log: a
// prefix of a valid log is a valid log. Detecting truncation needs the head
// to be anchored elsewhere, which the signed checkpoints of the Merkle log
// will provide; until then, compare Report.Head with a head recorded earlier.
//
// Verify streams the file: memory use is bounded by MaxLineBytes, whatever
// the size of the log.
func Verify(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	rep, err := verifyReader(f)
	if err != nil {
		return rep, fmt.Errorf("audit: verify %s: %w", path, err)
	}
	return rep, nil
}

// verifyReader verifies the chain read from r. On error, the report covers
// the records before the bad line.
func verifyReader(r io.Reader) (Report, error) {
	lr := newLineReader(r)
	h := sha256.New()
	var (
		prev    [sha256.Size]byte
		sum     [sha256.Size]byte
		prevHex = []byte(ZeroHash)
		seq     uint64
	)
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			return Report{Records: seq, Head: string(prevHex)}, nil
		}
		rep := Report{Records: seq, Head: string(prevHex)}
		if err != nil {
			return rep, lr.lineError(0, err)
		}
		rec, err := parseLine(line)
		if err != nil {
			return rep, lr.lineError(0, err)
		}
		want := seq + 1
		switch {
		case rec.Seq != want:
			return rep, lr.lineError(rec.Seq, fmt.Errorf("seq is %d, want %d: a record was deleted, inserted or moved", rec.Seq, want))
		case rec.Prev != string(prevHex):
			return rep, lr.lineError(rec.Seq, fmt.Errorf("prev does not match the hash of the previous record: a record was deleted, inserted, moved or changed"))
		}
		head, stored, _ := splitHash(line) // parseLine checked the shape
		if rec.Hash != string(stored) {
			return rep, lr.lineError(rec.Seq, fmt.Errorf("malformed record: more than one hash field"))
		}
		h.Reset()
		h.Write(prev[:])
		h.Write(head)
		h.Write(closeHash)
		h.Sum(sum[:0])
		var got [2 * sha256.Size]byte
		hex.Encode(got[:], sum[:])
		if !bytes.Equal(got[:], stored) {
			return rep, lr.lineError(rec.Seq, fmt.Errorf("hash mismatch: the record was changed"))
		}
		seq = want
		prev = sum
		prevHex = append(prevHex[:0], got[:]...)
	}
}

// errTorn and errTooLong are the line reader's errors.
var (
	errTorn    = errors.New("torn tail: the last line has no newline (an interrupted write?)")
	errTooLong = errors.New("line longer than " + strconv.Itoa(MaxLineBytes) + " bytes")
)

// lineReader yields the lines of a log, bounded by MaxLineBytes.
type lineReader struct {
	br      *bufio.Reader
	long    []byte // holds a line longer than br's buffer
	line    int    // number of the line last returned
	off     int64  // offset of the line last returned
	nextOff int64
}

// lineBufSize is the reader's buffer; longer lines (up to MaxLineBytes) are
// assembled in lineReader.long.
const lineBufSize = 64 << 10

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, lineBufSize)}
}

// readError is a failure of the underlying reader, as opposed to bad content.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

// next returns the next line without its "\n". The slice is valid until the
// next call. It returns io.EOF at a clean end, errTorn for a last line
// without "\n", errTooLong for a line longer than MaxLineBytes ("\n"
// included) and a *readError if reading failed.
func (lr *lineReader) next() ([]byte, error) {
	lr.line++
	lr.off = lr.nextOff
	b, err := lr.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		lr.long = append(lr.long[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = lr.br.ReadSlice('\n')
			if len(lr.long)+len(b) > MaxLineBytes {
				return nil, errTooLong
			}
			lr.long = append(lr.long, b...)
		}
		b = lr.long
	}
	lr.nextOff += int64(len(b))
	switch {
	case err == nil:
		return b[:len(b)-1], nil
	case errors.Is(err, io.EOF):
		if len(b) == 0 {
			return nil, io.EOF
		}
		return b, errTorn
	default:
		return nil, &readError{fmt.Errorf("read line %d: %w", lr.line, err)}
	}
}

// lineError turns a problem with the current line into a *VerifyError; a
// read error is returned as it is.
func (lr *lineReader) lineError(seq uint64, err error) error {
	if re := (*readError)(nil); errors.As(err, &re) {
		return err
	}
	return &VerifyError{Line: lr.line, Seq: seq, Reason: err.Error(), Offset: lr.off, Torn: errors.Is(err, errTorn)}
}

// ReadAll calls fn for each record of the log at path, in order, and stops at
// the first error fn returns (which ReadAll returns, wrapped). It checks that
// each line is a well-formed record but does not verify the chain; use
// Verify for that. A last line without "\n" is skipped, since it may be a
// write in progress.
func ReadAll(path string, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: read: %w", err)
	}
	defer f.Close()
	lr := newLineReader(f)
	for {
		line, err := lr.next()
		if errors.Is(err, io.EOF) || errors.Is(err, errTorn) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", path, lr.lineError(0, err))
		}
		rec, err := parseLine(line)
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", path, lr.lineError(0, err))
		}
		if err := fn(rec); err != nil {
			return fmt.Errorf("audit: read %s: line %d: %w", path, lr.line, err)
		}
	}
}

// Tail returns the last n records of the log at path, oldest first. Like
// ReadAll, it does not verify the chain. It reads the whole file, keeping
// only n records in memory.
func Tail(path string, n int) ([]Record, error) {
	if n <= 0 {
		return nil, fmt.Errorf("audit: tail: n must be positive, got %d", n)
	}
	ring := make([]Record, 0, min(n, 1024))
	next := 0 // where the next record goes once the ring is full
	err := ReadAll(path, func(r Record) error {
		if len(ring) < n {
			ring = append(ring, r)
			return nil
		}
		ring[next] = r
		next = (next + 1) % n
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(ring))
	out = append(out, ring[next:]...)
	return append(out, ring[:next]...), nil
}
