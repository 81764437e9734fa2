// Package audittest is the conformance suite for audit.Backend: every
// backend (the embedded file store, PostgreSQL, ...) must pass Run, which
// checks the storage contract directly and then runs a real audit.Log and
// audit.VerifyBackend on it. A backend that passes stores exactly what the
// Log gives it, durably across reopen, and serves consistent prefixes to
// readers while it is written.
package audittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/warden-ai/warden/internal/audit"
)

// Factory creates empty storage for one test and returns the function that
// opens a Backend over it. open may be called again once the previous
// Backend is closed, and must then return a backend over the same stored
// data. Cleanup of the storage is the factory's (t.Cleanup).
type Factory func(t *testing.T) (open func(t *testing.T) audit.Backend)

// Run runs the conformance suite against the backends newStore makes.
func Run(t *testing.T, newStore Factory) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, newStore) })
	t.Run("AppendReadReopen", func(t *testing.T) { testAppendRead(t, newStore) })
	t.Run("AppendRejectsBadInput", func(t *testing.T) { testAppendRejects(t, newStore) })
	t.Run("ReadRecordsRangesAndErrors", func(t *testing.T) { testReadRanges(t, newStore) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, newStore) })
	t.Run("ReadersDuringAppends", func(t *testing.T) { testConcurrentReads(t, newStore) })
	t.Run("Log", func(t *testing.T) { testLog(t, newStore) })
	t.Run("LogRefusesAnotherKeysCheckpoint", func(t *testing.T) { testForeignKey(t, newStore) })
}

// oracle computes the stored hashes of a sequence of records with tlog,
// independently of any backend.
type oracle struct {
	hashes []tlog.Hash
	recs   [][]byte
}

func (o *oracle) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(o.hashes)) {
			return nil, fmt.Errorf("oracle: no hash %d", x)
		}
		out[i] = o.hashes[x]
	}
	return out, nil
}

// add computes the hashes of recs (appended after the current ones) and
// returns them.
func (o *oracle) add(t *testing.T, recs [][]byte) []tlog.Hash {
	t.Helper()
	start := len(o.hashes)
	for _, r := range recs {
		hs, err := tlog.StoredHashes(int64(len(o.recs)), r, o)
		if err != nil {
			t.Fatal(err)
		}
		o.hashes = append(o.hashes, hs...)
		o.recs = append(o.recs, bytes.Clone(r))
	}
	return append([]tlog.Hash(nil), o.hashes[start:]...)
}

func (o *oracle) root(t *testing.T, n int64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(n, o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// record is a stored-form record at index i, as audit.Log writes them.
func record(i int64, size int) []byte {
	b := fmt.Appendf(nil, `{"index":%d,"time":"2026-03-01T12:00:00Z","request_id":"req-%d","method":"POST","path":"/v1/x","status":200,"pad":"`, i, i)
	for len(b) < size-2 {
		b = append(b, byte('a'+i%26))
	}
	return append(b, `"}`...)
}

func records(from, n int64) [][]byte {
	var out [][]byte
	for i := from; i < from+n; i++ {
		out = append(out, record(i, 100+int(i%7)*40))
	}
	return out
}

func mustSize(t *testing.T, b audit.Backend) int64 {
	t.Helper()
	n, err := b.Size(context.Background())
	if err != nil {
		t.Fatalf("Size: %v", err)
	}
	return n
}

func closeB(t *testing.T, b audit.Backend) {
	t.Helper()
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// readAll returns records [start, end) of b.
func readAll(t *testing.T, b audit.Backend, start, end int64) [][]byte {
	t.Helper()
	var out [][]byte
	next := start
	err := b.ReadRecords(context.Background(), start, end, func(i int64, r []byte) error {
		if i != next {
			return fmt.Errorf("ReadRecords gave index %d, want %d", i, next)
		}
		next++
		out = append(out, bytes.Clone(r))
		return nil
	})
	if err != nil {
		t.Fatalf("ReadRecords(%d, %d): %v", start, end, err)
	}
	if next != end {
		t.Fatalf("ReadRecords(%d, %d) stopped at %d", start, end, next)
	}
	return out
}

func testEmpty(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	defer closeB(t, b)
	ctx := context.Background()
	if n := mustSize(t, b); n != 0 {
		t.Fatalf("empty backend has Size %d", n)
	}
	if size, signed, err := b.LatestCheckpoint(ctx); err != nil || signed != nil || size != 0 {
		t.Fatalf("LatestCheckpoint of an empty backend: %d %q %v", size, signed, err)
	}
	if err := b.ReadRecords(ctx, 0, 0, func(int64, []byte) error { return errors.New("called") }); err != nil {
		t.Fatalf("ReadRecords(0, 0): %v", err)
	}
	if err := b.ReadRecords(ctx, 0, 1, func(int64, []byte) error { return nil }); err == nil {
		t.Fatal("ReadRecords(0, 1) of an empty backend succeeded")
	}
	if _, err := b.ReadHashes([]int64{0}); err == nil {
		t.Fatal("ReadHashes of a hash that is not stored succeeded")
	}
	if err := b.Checkpoints(ctx, func(int64, []byte) error { return errors.New("called") }); err != nil {
		t.Fatalf("Checkpoints of an empty backend: %v", err)
	}
}

func testAppendRead(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	ctx := context.Background()
	var o oracle
	var next int64
	for _, n := range []int64{1, 1, 2, 5, 13, 100, 3} { // odd batch sizes cross subtree boundaries
		recs := records(next, n)
		if err := b.Append(ctx, next, recs, o.add(t, recs)); err != nil {
			t.Fatalf("Append(%d, %d records): %v", next, n, err)
		}
		next += n
		if got := mustSize(t, b); got != next {
			t.Fatalf("Size %d after appending up to %d", got, next)
		}
	}
	check := func(b audit.Backend) {
		t.Helper()
		got := readAll(t, b, 0, next)
		for i := range got {
			if !bytes.Equal(got[i], o.recs[i]) {
				t.Fatalf("record %d reads back as %q, want %q", i, got[i], o.recs[i])
			}
		}
		idx := make([]int64, len(o.hashes))
		for i := range idx {
			idx[i] = int64(i)
		}
		hs, err := b.ReadHashes(idx)
		if err != nil {
			t.Fatalf("ReadHashes(all): %v", err)
		}
		for i := range hs {
			if hs[i] != o.hashes[i] {
				t.Fatalf("stored hash %d differs", i)
			}
		}
		// Unsorted and repeated indexes too.
		hs, err = b.ReadHashes([]int64{5, 0, 5, 3})
		if err != nil || hs[0] != o.hashes[5] || hs[1] != o.hashes[0] || hs[2] != o.hashes[5] || hs[3] != o.hashes[3] {
			t.Fatalf("ReadHashes(5,0,5,3): %v", err)
		}
		if _, err := b.ReadHashes([]int64{int64(len(o.hashes))}); err == nil {
			t.Fatal("ReadHashes past the end succeeded")
		}
		root, err := tlog.TreeHash(next, b)
		if err != nil || root != o.root(t, next) {
			t.Fatalf("TreeHash over the backend: %v", err)
		}
	}
	check(b)
	closeB(t, b)
	b = open(t)
	defer closeB(t, b)
	if got := mustSize(t, b); got != next {
		t.Fatalf("Size %d after reopen, want %d", got, next)
	}
	check(b)
	// Appending continues after reopen.
	recs := records(next, 7)
	if err := b.Append(ctx, next, recs, o.add(t, recs)); err != nil {
		t.Fatalf("Append after reopen: %v", err)
	}
	next += 7
	check(b)
}

func testAppendRejects(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	defer closeB(t, b)
	ctx := context.Background()
	var o oracle
	recs := records(0, 3)
	hs := o.add(t, recs)
	tests := []struct {
		name  string
		first int64
		recs  [][]byte
		hs    []tlog.Hash
	}{
		{"gap", 1, recs, hs},
		{"negative first", -1, recs, hs},
		{"too few hashes", 0, recs, hs[:len(hs)-1]},
		{"too many hashes", 0, recs, append(append([]tlog.Hash(nil), hs...), tlog.Hash{})},
		{"empty record", 0, [][]byte{{}}, hs[:1]},
		{"record too large", 0, [][]byte{bytes.Repeat([]byte("x"), audit.MaxRecordBytes+1)}, hs[:1]},
	}
	for _, tt := range tests {
		if err := b.Append(ctx, tt.first, tt.recs, tt.hs); err == nil {
			t.Errorf("%s: Append succeeded", tt.name)
		}
		if n := mustSize(t, b); n != 0 {
			t.Fatalf("%s: Size %d after a rejected Append", tt.name, n)
		}
	}
	// Rejected input leaves the backend usable.
	if err := b.Append(ctx, 0, recs, hs); err != nil {
		t.Fatalf("Append after rejected ones: %v", err)
	}
	if err := b.Append(ctx, 0, recs, hs); err == nil {
		t.Fatal("appending records 0..2 twice succeeded")
	}
	if n := mustSize(t, b); n != 3 {
		t.Fatalf("Size %d, want 3", n)
	}
}

func testReadRanges(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	defer closeB(t, b)
	ctx := context.Background()
	var o oracle
	recs := records(0, 40)
	if err := b.Append(ctx, 0, recs, o.add(t, recs)); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, 40}, {0, 1}, {39, 40}, {17, 23}, {40, 40}} {
		got := readAll(t, b, r[0], r[1])
		for i, g := range got {
			if !bytes.Equal(g, recs[r[0]+int64(i)]) {
				t.Fatalf("range %v: record %d differs", r, r[0]+int64(i))
			}
		}
	}
	for _, r := range [][2]int64{{0, 41}, {-1, 3}, {5, 4}, {41, 42}} {
		if err := b.ReadRecords(ctx, r[0], r[1], func(int64, []byte) error { return nil }); err == nil {
			t.Errorf("ReadRecords(%d, %d) succeeded", r[0], r[1])
		}
	}
	stop := errors.New("stop here")
	n := 0
	err := b.ReadRecords(ctx, 0, 40, func(int64, []byte) error {
		n++
		if n == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("ReadRecords with fn failing at the 5th: %v after %d", err, n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.ReadRecords(cctx, 0, 40, func(int64, []byte) error { return nil }); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("ReadRecords with a cancelled context: %v, want nil or context.Canceled", err)
	}
}

func testCheckpoints(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	ctx := context.Background()
	var o oracle
	recs := records(0, 10)
	if err := b.Append(ctx, 0, recs, o.add(t, recs)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddCheckpoint(ctx, 11, []byte("cp11")); err == nil {
		t.Error("a checkpoint larger than the log was stored")
	}
	for _, size := range []int64{3, 7} {
		if err := b.AddCheckpoint(ctx, size, fmt.Appendf(nil, "cp%d\n", size)); err != nil {
			t.Fatalf("AddCheckpoint(%d): %v", size, err)
		}
	}
	for _, size := range []int64{7, 5} {
		if err := b.AddCheckpoint(ctx, size, []byte("again")); err == nil {
			t.Errorf("AddCheckpoint(%d) after 7 succeeded", size)
		}
	}
	check := func(b audit.Backend, want []int64) {
		t.Helper()
		size, signed, err := b.LatestCheckpoint(ctx)
		last := want[len(want)-1]
		if err != nil || size != last || string(signed) != fmt.Sprintf("cp%d\n", last) {
			t.Fatalf("LatestCheckpoint: %d %q %v", size, signed, err)
		}
		var got []int64
		err = b.Checkpoints(ctx, func(size int64, signed []byte) error {
			if string(signed) != fmt.Sprintf("cp%d\n", size) {
				return fmt.Errorf("checkpoint %d holds %q", size, signed)
			}
			got = append(got, size)
			return nil
		})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("Checkpoints: %v %v, want %v", got, err, want)
		}
	}
	check(b, []int64{3, 7})
	closeB(t, b)
	b = open(t)
	defer closeB(t, b)
	check(b, []int64{3, 7})
	if err := b.AddCheckpoint(ctx, 10, []byte("cp10\n")); err != nil {
		t.Fatal(err)
	}
	check(b, []int64{3, 7, 10})
}

// testConcurrentReads has a reader check, while a writer appends, that
// whatever Size says is there can be read and hashes to the oracle's tree.
func testConcurrentReads(t *testing.T, newStore Factory) {
	open := newStore(t)
	b := open(t)
	defer closeB(t, b)
	ctx := context.Background()
	var o oracle
	const batches, per = 60, 17
	var mu sync.Mutex
	roots := map[int64]tlog.Hash{0: o.root(t, 0)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for k := range batches {
			recs := records(int64(k*per), per)
			hs := o.add(t, recs)
			mu.Lock()
			roots[int64((k+1)*per)] = o.root(t, int64((k+1)*per))
			mu.Unlock()
			if err := b.Append(ctx, int64(k*per), recs, hs); err != nil {
				t.Errorf("Append: %v", err)
				return
			}
		}
	})
	reads := 0
	for {
		finished := false
		select {
		case <-done:
			finished = true
		default:
		}
		n := mustSize(t, b)
		mu.Lock()
		want, ok := roots[n]
		mu.Unlock()
		if !ok {
			t.Fatalf("Size %d is not at a batch boundary: a reader saw a partial batch", n)
		}
		if got, err := tlog.TreeHash(n, b); err != nil || got != want {
			t.Fatalf("TreeHash(%d) during appends: %v", n, err)
		}
		if n > 0 {
			readAll(t, b, max(0, n-per), n)
		}
		reads++
		if n == batches*per {
			break
		}
		if finished {
			t.Fatalf("the writer stopped at %d records", n)
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	if reads < 2 {
		t.Logf("only %d reads overlapped the appends", reads)
	}
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

// testLog runs a real Log on the backend: concurrent appends, checkpoints,
// verification, proofs, reopen.
func testLog(t *testing.T, newStore Factory) {
	open := newStore(t)
	key := newKey(t, "audittest/log")
	opts := audit.Options{Key: key, Origin: "audittest/log", CheckpointEvery: 50, CheckpointInterval: time.Hour}
	l, err := audit.OpenBackend(open(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 8, 40
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := &audit.Record{RequestID: fmt.Sprintf("g%d-%d", g, i), Method: "POST", Path: "/v1/chat/completions", Status: 200}
				if err := l.Append(context.Background(), r); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b := open(t)
	ctx := context.Background()
	rep, err := audit.VerifyBackend(ctx, b, audit.VerifyOptions{Verifier: key.Verifier(), Origin: "audittest/log"})
	if err != nil {
		t.Fatalf("VerifyBackend: %v", err)
	}
	if rep.Records != goroutines*each || rep.Checkpointed() != goroutines*each || rep.Tail != 0 {
		t.Fatalf("report %+v: want %d records, all checkpointed", rep, goroutines*each)
	}
	var sizes []int64
	_ = b.Checkpoints(ctx, func(size int64, _ []byte) error { sizes = append(sizes, size); return nil })
	if len(sizes) < 2 {
		t.Errorf("checkpoints %v: want one every 50 records and one at Close", sizes)
	}
	for _, idx := range []int64{0, 1, 160, goroutines*each - 1} {
		if _, _, err := audit.Prove(ctx, b, idx, rep.Checkpoint); err != nil {
			t.Errorf("Prove(%d): %v", idx, err)
		}
	}
	old, err := audit.FindCheckpoint(ctx, b, key.Verifier(), sizes[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Consistency(b, old, rep.Checkpoint); err != nil {
		t.Errorf("Consistency(%d, %d): %v", old.Tree.N, rep.Checkpoint.Tree.N, err)
	}
	if _, _, err := audit.Find(ctx, b, "g3-7"); err != nil {
		t.Errorf("Find by request id: %v", err)
	}
	closeB(t, b)

	// Reopen and continue.
	l, err = audit.OpenBackend(open(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &audit.Record{RequestID: "after-reopen", Method: "GET", Path: "/v1/models", Status: 200}
	if err := l.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Index != goroutines*each {
		t.Errorf("first index after reopen %d, want %d", r.Index, goroutines*each)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b = open(t)
	defer closeB(t, b)
	if rep, err := audit.VerifyBackend(ctx, b, audit.VerifyOptions{Verifier: key.Verifier()}); err != nil || rep.Records != goroutines*each+1 || rep.Tail != 0 {
		t.Fatalf("after reopen: %+v %v", rep, err)
	}
}

// testForeignKey: a log whose checkpoints another key signed is refused by
// Open and by Verify.
func testForeignKey(t *testing.T, newStore Factory) {
	open := newStore(t)
	a, other := newKey(t, "audittest/a"), newKey(t, "audittest/b")
	l, err := audit.OpenBackend(open(t), audit.Options{Key: a, Origin: "audittest/a"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), &audit.Record{RequestID: "x", Method: "GET", Path: "/", Status: 200}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b := open(t)
	if l, err := audit.OpenBackend(b, audit.Options{Key: other, Origin: "audittest/a"}); err == nil {
		l.Close()
		t.Fatal("a Log opened a log whose checkpoint another key signed")
	}
	closeB(t, b)
	b = open(t)
	defer closeB(t, b)
	_, err = audit.VerifyBackend(context.Background(), b, audit.VerifyOptions{Verifier: other.Verifier()})
	var ce *audit.CheckpointError
	if !errors.As(err, &ce) {
		t.Fatalf("VerifyBackend with another key: %v, want a *CheckpointError", err)
	}
}
