package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// readBack returns the stored bytes of records [0, n) of the log in dir.
func readBack(t *testing.T, dir string) [][]byte {
	t.Helper()
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	n, _ := b.Size(context.Background())
	var out [][]byte
	if err := b.ReadRecords(context.Background(), 0, n, func(_ int64, r []byte) error {
		out = append(out, bytes.Clone(r))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendStoresRecordsAsTreeLeaves(t *testing.T) {
	l, dir := openTemp(t, Options{})
	recs := appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	stored := readBack(t, dir)
	if len(stored) != 3 {
		t.Fatalf("%d records stored, want 3", len(stored))
	}
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i, r := range recs {
		if r.Index != int64(i) {
			t.Errorf("record %d: Index %d", i, r.Index)
		}
		// The stored bytes are exactly the JSON of the record as Append
		// returned it, and the leaf is their RFC 6962 leaf hash.
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored[i], want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, stored[i], want)
		}
		leaf, err := b.ReadHashes([]int64{tlog.StoredHashIndex(0, int64(i))})
		if err != nil {
			t.Fatal(err)
		}
		if leaf[0] != tlog.RecordHash(want) {
			t.Errorf("record %d: stored leaf hash is not RecordHash of the stored bytes", i)
		}
	}
	rep, err := verify(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3 || rep.Checkpointed() != 3 || rep.Tail != 0 || rep.Origin != testOrigin {
		t.Errorf("report %+v", rep)
	}
}

func TestRecordFieldOrder(t *testing.T) {
	r := sampleRecord(1)
	r.Full = &Full{RequestHeaders: []string{"Authorization"}, ResponseSHA256: strings.Repeat("cd", 32)}
	r.Index = 7
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"index":7,"time":"2026-03-01T12:00:00.124456789Z","request_id":"req-0001","principal":{"kind":"agent","id":`)) {
		t.Errorf("unexpected encoding: %s", b)
	}
	for _, f := range []string{"index", "time", "request_id", "principal", "kind", "id", "on_behalf_of", "auth_method",
		"credential_id", "issuer", "mfa", "source_ip", "method", "path", "action", "resource", "route", "segment", "api",
		"model", "stream", "decision", "allow", "reasons", "obligations", "policy_version", "applied", "max_tokens",
		"findings", "guard", "type", "class", "where", "start", "end", "score", "grants", "status", "upstream",
		"upstream_status", "latency_ms", "upstream_ms", "bytes_in", "bytes_out", "body_sha256", "usage",
		"prompt_tokens", "completion_tokens", "reported", "full", "request_headers", "response_sha256"} {
		if !bytes.Contains(b, []byte(`"`+f+`":`)) {
			t.Errorf("field %q missing from %s", f, b)
		}
	}
	body, err := encodeBody(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendRecord(nil, 7, body); !bytes.Equal(got, b) {
		t.Errorf("appendRecord differs from json.Marshal:\n got %s\nwant %s", got, b)
	}
}

func TestReopenContinues(t *testing.T) {
	l, dir := openTemp(t, Options{})
	appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		l, err := Open(dir, testOptions(t, Options{}))
		if err != nil {
			t.Fatalf("reopen %d: %v", round, err)
		}
		recs := appendN(t, l, 10*(round+1), 2)
		if want := int64(3 + 2*round); recs[0].Index != want {
			t.Errorf("round %d: first index after reopen %d, want %d", round, recs[0].Index, want)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if rep, err := verify(t, dir); err != nil || rep.Records != 7 || rep.Tail != 0 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no unix modes")
	}
	l, dir := openTemp(t, Options{})
	appendN(t, l, 0, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v %v", fi.Mode().Perm(), err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", e.Name(), fi.Mode().Perm())
		}
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	l, dir := openTemp(t, Options{})
	defer l.Close()
	l2, err := Open(dir, testOptions(t, Options{}))
	if err == nil {
		l2.Close()
		t.Fatal("second Open of the same log succeeded")
	}
	if !strings.Contains(err.Error(), "another warden") {
		t.Errorf("error %v", err)
	}
}

func TestConcurrentAppendsKeepOrder(t *testing.T) {
	const goroutines, each = 50, 40
	l, dir := openTemp(t, Options{SegmentBytes: 16 << 10, CheckpointEvery: 100})
	var wg sync.WaitGroup
	idx := make([][]int64, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(i)
				r.RequestID = fmt.Sprintf("g%02d-%03d", g, i)
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				idx[g] = append(idx[g], r.Index)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := verify(t, dir)
	if err != nil || rep.Records != goroutines*each {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	// Each goroutine's records are stored in the order it appended them,
	// at the indexes Append reported.
	stored := readBack(t, dir)
	for g := range goroutines {
		if !slices.IsSorted(idx[g]) {
			t.Errorf("goroutine %d: indexes out of order: %v", g, idx[g])
		}
		for i, x := range idx[g] {
			r, err := ParseRecord(stored[x])
			if err != nil || r.RequestID != fmt.Sprintf("g%02d-%03d", g, i) {
				t.Fatalf("record %d: %v %v", x, r.RequestID, err)
			}
		}
	}
	ents, _ := filepath.Glob(filepath.Join(dir, "seg-*.log"))
	if len(ents) < 3 {
		t.Errorf("%d segments with 16 KiB segments; want several", len(ents))
	}
}

func TestGroupCommit(t *testing.T) {
	fs := newFaults()
	fs.gate, fs.started = make(chan struct{}), make(chan struct{})
	l, dir := openTemp(t, Options{wrap: fs.wrap})
	const n = 200
	var wg sync.WaitGroup
	// The first append's write blocks on the gate, so the rest queue up and
	// must be committed together.
	wg.Go(func() { goAppend(t, l, 0) })
	<-fs.started
	for i := range n - 1 {
		wg.Go(func() { goAppend(t, l, i+1) })
	}
	for len(l.reqs) < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(fs.gate)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if w, s := fs.count(fs.writes, "seg"), fs.count(fs.syncs, "seg"); w != 2 || s != 2 {
		t.Errorf("segment: %d writes, %d fsyncs for %d records; want 2 and 2", w, s, n)
	}
	// Stored hashes are written once, with the checkpoint at Close, not
	// with each batch.
	if w := fs.count(fs.writes, "hashes"); w != 1 {
		t.Errorf("hashes: %d writes, want 1", w)
	}
	if rep, err := verify(t, dir); err != nil || rep.Records != n {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestBatchByteBound(t *testing.T) {
	fs := newFaults()
	fs.gate, fs.started = make(chan struct{}), make(chan struct{})
	l, dir := openTemp(t, Options{wrap: fs.wrap})
	reason := strings.Repeat("r", MaxReasonBytes-100)
	var wg sync.WaitGroup
	wg.Go(func() { goAppend(t, l, 0) })
	<-fs.started
	// Records of ~600 KiB each (a long decision obligation), 20 of them.
	big := map[string]any{"blob": strings.Repeat("b", 600<<10)}
	const n = 20
	for i := range n {
		wg.Go(func() {
			r := sampleRecord(i)
			r.Reason = reason
			r.Decision.Obligations = big
			if err := l.Append(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	for len(l.reqs) < n {
		time.Sleep(time.Millisecond)
	}
	close(fs.gate)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if m := fs.count(fs.maxWrite, "seg"); m > maxBatchBytes+MaxRecordBytes {
		t.Errorf("largest write %d bytes, bound is about %d", m, maxBatchBytes)
	}
	if w := fs.count(fs.writes, "seg"); w < 1+(n*600<<10)/maxBatchBytes {
		t.Errorf("%d writes for %d bytes", w, n*600<<10)
	}
	if rep, err := verify(t, dir); err != nil || rep.Records != n+1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestFailedState(t *testing.T) {
	diskFull := errors.New("no space left on device")
	tests := []struct {
		name  string
		fault func(*faults)
	}{
		{"segment write fails", func(f *faults) { f.failWrite["seg"] = diskFull }},
		{"segment short write", func(f *faults) { f.short["seg"] = true }},
		{"segment fsync fails", func(f *faults) { f.failSync["seg"] = diskFull }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFaults()
			l, dir := openTemp(t, Options{wrap: fs.wrap})
			appendN(t, l, 0, 2)
			if err := l.Healthy(); err != nil {
				t.Fatalf("Healthy before the failure: %v", err)
			}
			fs.set(tt.fault)

			// Several waiters in flight: all get the error, none hangs.
			var wg sync.WaitGroup
			var failures sync.Map
			for i := range 20 {
				wg.Go(func() {
					if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
						failures.Store(i, err)
					}
				})
			}
			wg.Wait()
			for i := range 20 {
				if _, ok := failures.Load(i); !ok {
					t.Errorf("append %d succeeded on a failing log", i)
				}
			}
			if l.Healthy() == nil {
				t.Fatal("Healthy() is nil after a failure")
			}
			// Once failed, always failed, even if the disk recovers.
			fs.set(func(f *faults) { clear(f.failWrite); clear(f.failSync); clear(f.short) })
			writes := fs.count(fs.writes, "seg")
			err := l.Append(context.Background(), sampleRecord(99))
			if err == nil || !strings.Contains(err.Error(), "log failed") {
				t.Errorf("Append after failure: %v", err)
			}
			if fs.count(fs.writes, "seg") != writes {
				t.Error("a failed log wrote again")
			}
			if err := l.Close(); err == nil {
				t.Error("Close of a failed log returned nil")
			}
			// The next open repairs whatever the failed batch left and
			// keeps the acknowledged records; the log verifies.
			l2, err := Open(dir, testOptions(t, Options{}))
			if err != nil {
				t.Fatalf("reopen after the failure: %v", err)
			}
			if n := l2.Stats().Records; n < 2 {
				t.Errorf("records before the failure lost: %d", n)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			if rep, err := verify(t, dir); err != nil || rep.Records < 2 || rep.Tail != 0 {
				t.Errorf("verify after reopen: %+v %v", rep, err)
			}
		})
	}
}

func TestAppendRejectsBadRecordsWithoutFailing(t *testing.T) {
	l, dir := openTemp(t, Options{})
	tests := []struct {
		name string
		rec  func() *Record
		want string
	}{
		{"too large", func() *Record {
			r := sampleRecord(1)
			r.Decision.Obligations = map[string]any{"x": strings.Repeat("x", MaxRecordBytes)}
			return r
		}, "limit"},
		{"not encodable", func() *Record { r := sampleRecord(1); r.LatencyMS = math.NaN(); return r }, "encode record"},
		{"year out of range", func() *Record { r := sampleRecord(1); r.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC); return r }, "encode record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := l.Append(context.Background(), tt.rec())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want %q", err, tt.want)
			}
			if h := l.Healthy(); h != nil {
				t.Errorf("a rejected record failed the log: %v", h)
			}
		})
	}
	appendN(t, l, 1, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := verify(t, dir); err != nil || rep.Records != 1 {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

func TestAppendNormalizes(t *testing.T) {
	l, _ := openTemp(t, Options{})
	defer l.Close()
	r := sampleRecord(1)
	r.Time = time.Date(2026, 1, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	r.Path = "/v1/models?api_key=sk-secret"
	r.Reason = strings.Repeat("é", 2000)
	r.Decision.Reasons = make([]string, MaxListLen+5)
	r.Grants = []string{strings.Repeat("g", MaxReasonBytes+1)}
	r.Findings = make([]Finding, MaxFindings+1)
	caller := r.Decision
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Time.Location() != time.UTC || !r.Time.Equal(time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("time %v", r.Time)
	}
	if r.Path != "/v1/models" {
		t.Errorf("path %q", r.Path)
	}
	if len(r.Reason) > MaxReasonBytes || !utf8.ValidString(r.Reason) || !strings.HasSuffix(r.Reason, truncMark) {
		t.Errorf("reason of %d bytes, valid %v", len(r.Reason), utf8.ValidString(r.Reason))
	}
	if len(r.Decision.Reasons) != MaxListLen || len(caller.Reasons) != MaxListLen+5 {
		t.Errorf("reasons %d (caller's %d): the list is cut in the record, not in the caller's decision", len(r.Decision.Reasons), len(caller.Reasons))
	}
	if len(r.Grants[0]) > MaxReasonBytes || len(r.Findings) != MaxFindings {
		t.Errorf("grant of %d bytes, %d findings", len(r.Grants[0]), len(r.Findings))
	}
	want := []string{"reason", "decision.reasons", "grants", "findings"}
	if !slices.Equal(r.Truncated, want) {
		t.Errorf("truncated %v, want %v", r.Truncated, want)
	}
	z := &Record{RequestID: "zero-time"}
	if err := l.Append(context.Background(), z); err != nil || z.Time.IsZero() {
		t.Errorf("zero time not filled: %v %v", z.Time, err)
	}
}

func TestAppendContextAndClose(t *testing.T) {
	l, dir := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Append(ctx, sampleRecord(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
	appendN(t, l, 2, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := l.Append(context.Background(), sampleRecord(3)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	if !errors.Is(l.Healthy(), ErrClosed) {
		t.Errorf("Healthy after Close: %v", l.Healthy())
	}
	if rep, err := verify(t, dir); err != nil || rep.Records != 1 {
		t.Errorf("verify: %+v %v (the cancelled record must not be written)", rep, err)
	}
}

func TestCloseFlushesQueued(t *testing.T) {
	fs := newFaults()
	fs.gate, fs.started = make(chan struct{}), make(chan struct{})
	l, dir := openTemp(t, Options{wrap: fs.wrap})
	var wg sync.WaitGroup
	wg.Go(func() { goAppend(t, l, 0) })
	<-fs.started
	for i := range 10 {
		wg.Go(func() { goAppend(t, l, i+1) })
	}
	for len(l.reqs) < 10 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	close(fs.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if rep, err := verify(t, dir); err != nil || rep.Records != 11 || rep.Tail != 0 {
		t.Errorf("verify: %+v %v", rep, err)
	}
}

// checkpointSizes returns the sizes of the stored checkpoints of dir.
func checkpointSizes(t *testing.T, dir string) []int64 {
	t.Helper()
	b, err := OpenFileBackend(dir, FileOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var sizes []int64
	if err := b.Checkpoints(context.Background(), func(size int64, _ []byte) error {
		sizes = append(sizes, size)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return sizes
}

func TestCheckpointPolicy(t *testing.T) {
	t.Run("every N records and at close", func(t *testing.T) {
		l, dir := openTemp(t, Options{CheckpointEvery: 10, CheckpointInterval: time.Hour})
		appendN(t, l, 0, 25)
		deadline := time.Now().Add(5 * time.Second)
		for l.Stats().Checkpointed < 20 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := l.Stats().Checkpointed; got != 20 {
			t.Errorf("checkpointed %d after 25 appends with every=10, want 20", got)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if sizes := checkpointSizes(t, dir); !slices.Equal(sizes, []int64{10, 20, 25}) {
			t.Errorf("checkpoints %v, want [10 20 25]", sizes)
		}
	})
	t.Run("interval", func(t *testing.T) {
		l, _ := openTemp(t, Options{CheckpointEvery: 1 << 40, CheckpointInterval: 40 * time.Millisecond})
		defer l.Close()
		appendN(t, l, 0, 3)
		deadline := time.Now().Add(5 * time.Second)
		for l.Stats().Checkpointed < 3 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if got := l.Stats().Checkpointed; got != 3 {
			t.Errorf("checkpointed %d, want 3 within the interval", got)
		}
		if cp := l.Checkpoint(); cp == nil || cp.Origin != testOrigin || cp.Tree.N != 3 {
			t.Errorf("checkpoint %+v", cp)
		}
	})
}

func TestCheckpointFailureFailsClosedAndRecovers(t *testing.T) {
	diskFull := errors.New("no space left on device")
	for _, tt := range []struct {
		name  string
		fault func(*faults)
	}{
		{"checkpoint write fails", func(f *faults) { f.failWrite["checkpoints"] = diskFull }},
		{"checkpoint fsync fails", func(f *faults) { f.failSync["checkpoints"] = diskFull }},
		{"hashes write before the checkpoint fails", func(f *faults) { f.failWrite["hashes"] = diskFull }},
		{"hashes fsync before the checkpoint fails", func(f *faults) { f.failSync["hashes"] = diskFull }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFaults()
			l, dir := openTemp(t, Options{wrap: fs.wrap, CheckpointEvery: 1, CheckpointInterval: 20 * time.Millisecond})
			appendN(t, l, 0, 1)
			fs.set(tt.fault)
			appendN(t, l, 1, 1)
			deadline := time.Now().Add(5 * time.Second)
			for l.Healthy() == nil && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := l.Healthy(); err == nil || !strings.Contains(err.Error(), "checkpoint") {
				t.Fatalf("Healthy with checkpoints failing: %v", err)
			}
			if err := l.Append(context.Background(), sampleRecord(2)); err == nil {
				t.Error("Append succeeded while checkpoints fail")
			}
			fs.set(func(f *faults) { clear(f.failWrite); clear(f.failSync) })
			for l.Healthy() != nil && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if err := l.Healthy(); err != nil {
				t.Fatalf("Healthy after the disk recovered: %v", err)
			}
			appendN(t, l, 3, 1)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			// A failed write was cut back: the history is intact.
			if rep, err := verify(t, dir); err != nil || rep.Records != 3 || rep.Tail != 0 {
				t.Fatalf("verify: %+v %v", rep, err)
			}
			if sizes := checkpointSizes(t, dir); !slices.IsSorted(sizes) || sizes[len(sizes)-1] != 3 {
				t.Errorf("checkpoints %v", sizes)
			}
		})
	}
}

func TestAsyncMode(t *testing.T) {
	t.Run("bounded pending, flushed at close", func(t *testing.T) {
		fs := newFaults()
		fs.gate, fs.started = make(chan struct{}), make(chan struct{})
		l, dir := openTemp(t, Options{Mode: ModeAsync, MaxPending: 4, MaxDelay: time.Millisecond, wrap: fs.wrap})
		for i := range 4 { // returns at once although nothing is written
			if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
				t.Fatal(err)
			}
		}
		<-fs.started
		fifth := make(chan error)
		go func() { fifth <- l.Append(context.Background(), sampleRecord(4)) }()
		select {
		case err := <-fifth:
			t.Fatalf("a fifth record was accepted with 4 pending and max_pending 4: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(fs.gate)
		if err := <-fifth; err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if rep, err := verify(t, dir); err != nil || rep.Records != 5 || rep.Tail != 0 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
	t.Run("a failed write is counted as lost and fails the log", func(t *testing.T) {
		fs := newFaults()
		l, _ := openTemp(t, Options{Mode: ModeAsync, MaxPending: 8, wrap: fs.wrap})
		fs.set(func(f *faults) { f.failSync["seg"] = errors.New("EIO") })
		if err := l.Append(context.Background(), sampleRecord(0)); err != nil {
			t.Fatalf("async Append reported the write's outcome: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for l.Healthy() == nil && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if l.Healthy() == nil || l.Stats().Lost != 1 {
			t.Fatalf("healthy %v, lost %d", l.Healthy(), l.Stats().Lost)
		}
		if err := l.Append(context.Background(), sampleRecord(1)); err == nil {
			t.Error("Append on a failed async log succeeded")
		}
		_ = l.Close()
	})
}

func TestOpenRefusesAnotherOriginOrKey(t *testing.T) {
	dir := writeLog(t, 2, Options{})
	_, other := keys(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"other origin", Options{Origin: "another/log"}, "origin"},
		{"other key", Options{Key: other}, "not signed by the verifier key"},
		{"bad origin", Options{Origin: "has space"}, "origin"},
		{"bad mode", Options{Mode: "sometimes"}, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Open(dir, testOptions(t, tt.opts))
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "no checkpoint key") {
		t.Errorf("Open without a key: %v", err)
	}
}

// A crash leaves records after the last checkpoint; the next open checks
// them and anchors them with a checkpoint.
func TestOpenAnchorsRecordsAfterCrash(t *testing.T) {
	l, dir := openTemp(t, Options{CheckpointEvery: 5, CheckpointInterval: time.Hour})
	appendN(t, l, 0, 8)
	for l.Stats().Checkpointed < 5 {
		time.Sleep(time.Millisecond)
	}
	crashed := copyDir(t, dir) // what the disk held when the process died
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Stored hashes are written at checkpoints: records after it may have
	// none on disk yet (pending) and are recomputed at the next open.
	rep, err := verify(t, crashed)
	if err != nil || rep.Checkpointed() != 5 || rep.Tail != 3 || rep.Records != 8 {
		t.Fatalf("before reopen: %+v %v (want 3 records after the checkpoint)", rep, err)
	}
	l2, err := Open(crashed, testOptions(t, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if st := l2.Stats(); st.Checkpointed != 8 {
		t.Errorf("after reopen: checkpointed %d, want 8", st.Checkpointed)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWitness(t *testing.T) {
	t.Run("directory gets a file named after the origin", func(t *testing.T) {
		w := t.TempDir()
		dir := writeLog(t, 3, Options{Witness: w})
		got, err := os.ReadFile(filepath.Join(w, "test_audit.checkpoint"))
		if err != nil {
			t.Fatal(err)
		}
		k, _ := keys(t)
		cp, err := OpenCheckpoint(got, k.Verifier())
		if err != nil || cp.Tree.N != 3 {
			t.Fatalf("witness checkpoint %+v %v", cp, err)
		}
		rep, err := verify(t, dir)
		if err != nil || !bytes.Equal(rep.Checkpoint.Signed, got) {
			t.Errorf("the witness holds another checkpoint than the log: %v", err)
		}
	})
	t.Run("a rolled-back log cannot overwrite the witness", func(t *testing.T) {
		w := filepath.Join(t.TempDir(), "witness.checkpoint")
		l, dir := openTemp(t, Options{Witness: w})
		appendN(t, l, 0, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		old := copyDir(t, dir) // a backup of 3 records
		l, err := Open(dir, testOptions(t, Options{Witness: w}))
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 3, 3)
		if err := l.Close(); err != nil { // the witness now holds 6
			t.Fatal(err)
		}
		// The backup of 3 records is restored: it does not extend the
		// witness's 6, and is refused at open.
		if l, err := Open(old, testOptions(t, Options{Witness: w})); err == nil {
			l.Close()
			t.Fatal("a rolled-back log opened")
		} else if !strings.Contains(err.Error(), "does not extend") {
			t.Fatalf("error %v", err)
		}
		// Opened without the witness and written to, its next checkpoint
		// still cannot replace the witness's.
		l, err = Open(old, testOptions(t, Options{CheckpointEvery: 1}))
		if err != nil {
			t.Fatal(err)
		}
		appendN(t, l, 9, 4) // 7 records; the first 6 differ from the witnessed ones
		_ = l.Close()
		l, err = Open(old, testOptions(t, Options{Witness: w}))
		if err == nil {
			l.Close()
			t.Fatal("a forked log opened")
		}
		if !strings.Contains(err.Error(), "fork") {
			t.Errorf("forked log: %v", err)
		}
		k, _ := keys(t)
		got, _ := os.ReadFile(w)
		if cp, err := OpenCheckpoint(got, k.Verifier()); err != nil || cp.Tree.N != 6 {
			t.Errorf("the witness was overwritten: %+v %v", cp, err)
		}
	})
}

func TestStats(t *testing.T) {
	l, _ := openTemp(t, Options{CheckpointEvery: 2})
	appendN(t, l, 0, 2)
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Checkpointed < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	st := l.Stats()
	if st.Records != 2 || st.Checkpointed != 2 || st.Mode != ModeSync || st.Err != "" || st.CheckpointTime.IsZero() {
		t.Errorf("stats %+v", st)
	}
	k, _ := keys(t)
	if l.VerifierKey() != k.VerifierKey() || l.Origin() != testOrigin {
		t.Errorf("key %q origin %q", l.VerifierKey(), l.Origin())
	}
	_ = l.Close()
	if st := l.Stats(); st.Err == "" {
		t.Error("stats of a closed log show no error")
	}
}
