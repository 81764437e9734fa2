package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// sampleRecord is a fully populated record, seq/prev/hash unset.
func sampleRecord(i int) *Record {
	return &Record{
		Time:      time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).Add(time.Duration(i) * time.Millisecond),
		RequestID: fmt.Sprintf("req-%04d", i),
		Principal: &Principal{Kind: "agent", ID: "spiffe://example.org/agent/bot", OnBehalfOf: "alice",
			AuthMethod: "api_key", CredentialID: "key_01"},
		SourceIP: "192.0.2.10",
		Method:   "POST",
		Path:     "/v1/chat/completions",
		Route:    "openai",
		Segment:  "inference",
		Action:   "chat.completions",
		Model:    "gpt-4o-mini",
		Stream:   true,
		Decision: &Decision{Allow: true, Reasons: []string{"role:engineer"},
			Obligations: map[string]any{"max_tokens": 512, "mask_pii": true}, PolicyVersion: "v7"},
		Status:         200,
		Upstream:       "https://api.openai.example",
		UpstreamStatus: 200,
		LatencyMS:      12.5,
		UpstreamMS:     10.25,
		BytesIn:        42,
		BytesOut:       1024,
		BodySHA256:     strings.Repeat("ab", 32),
	}
}

func openTemp(t testing.TB, opts Options) (*Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l, path
}

func appendN(t testing.TB, l *Log, from, n int) []*Record {
	t.Helper()
	var recs []*Record
	for i := from; i < from+n; i++ {
		r := sampleRecord(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// goAppend appends one sample record from a goroutine other than the test's.
func goAppend(t testing.TB, l *Log, i int) {
	if err := l.Append(context.Background(), sampleRecord(i)); err != nil {
		t.Errorf("Append %d: %v", i, err)
	}
}

// writeLog writes n records to a new log, closes it and returns its path.
func writeLog(t testing.TB, n int) string {
	t.Helper()
	l, path := openTemp(t, Options{})
	appendN(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(data, []byte("\n"))[:bytes.Count(data, []byte("\n"))]
}

func TestAppendAssignsChain(t *testing.T) {
	l, path := openTemp(t, Options{})
	recs := appendN(t, l, 1, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	prev := ZeroHash
	lines := readLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.Prev != prev || len(r.Hash) != 64 {
			t.Errorf("record %d: seq %d prev %s hash %q", i, r.Seq, r.Prev, r.Hash)
		}
		// The line is exactly the JSON encoding of the record as returned.
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.TrimSuffix(lines[i], []byte("\n")); !bytes.Equal(got, want) {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got, want)
		}
		// hash = SHA-256(prev raw || encoding with hash "").
		c := *r
		c.Hash = ""
		body, _ := json.Marshal(&c)
		pb, _ := hex.DecodeString(r.Prev)
		sum := sha256.Sum256(append(pb, body...))
		if hex.EncodeToString(sum[:]) != r.Hash {
			t.Errorf("record %d: hash does not follow the documented scheme", i)
		}
		prev = r.Hash
	}
	rep, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 3 || rep.Head != recs[2].Hash {
		t.Errorf("report %+v, want 3 records head %s", rep, recs[2].Hash)
	}
}

func TestRecordFieldOrder(t *testing.T) {
	b, err := json.Marshal(sampleRecord(1))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"seq":0,"time":"2026-03-01T12:00:00.124456789Z","request_id":"req-0001","principal":{`)) ||
		!bytes.HasSuffix(b, []byte(`,"body_sha256":"`+strings.Repeat("ab", 32)+`","prev":"","hash":""}`)) {
		t.Errorf("unexpected encoding: %s", b)
	}
	for _, f := range []string{"seq", "time", "request_id", "principal", "kind", "id", "on_behalf_of", "auth_method",
		"credential_id", "source_ip", "method", "path", "route", "segment", "action", "model", "stream", "decision",
		"allow", "reasons", "obligations", "policy_version", "status", "upstream", "upstream_status", "latency_ms",
		"upstream_ms", "bytes_in", "bytes_out", "body_sha256", "prev", "hash"} {
		if !bytes.Contains(b, []byte(`"`+f+`":`)) {
			t.Errorf("field %q missing from %s", f, b)
		}
	}
}

func TestReopenContinuesChain(t *testing.T) {
	l, path := openTemp(t, Options{})
	appendN(t, l, 1, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatalf("reopen %d: %v", round, err)
		}
		recs := appendN(t, l, 10*(round+1), 2)
		if want := uint64(4 + 2*round); recs[0].Seq != want {
			t.Errorf("round %d: first seq after reopen %d, want %d", round, recs[0].Seq, want)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 7 {
		t.Errorf("records %d, want 7", rep.Records)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	l, path := openTemp(t, Options{})
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if rep, err := Verify(path); err != nil || rep.Records != 0 || rep.Head != ZeroHash {
		t.Errorf("empty log: %+v, %v", rep, err)
	}
}

func TestOpenRefusesDamagedLog(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func([]byte) []byte
		wantErr []string
	}{
		{"torn tail", func(b []byte) []byte { return b[:len(b)-1] }, []string{"line 3", "torn tail", "truncate -s"}},
		{"partial last record", func(b []byte) []byte { return b[:len(b)-40] }, []string{"line 3", "torn tail"}},
		{"unparsable last line", func(b []byte) []byte { return append(b, "garbage\n"...) }, []string{"line 4", "move it aside"}},
		{"changed record", func(b []byte) []byte { return bytes.Replace(b, []byte("req-0002"), []byte("req-9999"), 1) },
			[]string{"line 2 (seq 2)", "hash mismatch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeLog(t, 3)
			data, _ := os.ReadFile(path)
			damaged := tt.mutate(bytes.Clone(data))
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			l, err := Open(path, Options{})
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded on a damaged log")
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Errorf("error %v is not a *VerifyError", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, damaged) {
				t.Error("Open modified the damaged log")
			}
		})
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no flock")
	}
	l, path := openTemp(t, Options{})
	defer l.Close()
	l2, err := Open(path, Options{})
	if err == nil {
		l2.Close()
		t.Fatal("second Open of the same log succeeded")
	}
	if !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %v", err)
	}
}

func TestConcurrentAppendsKeepOrder(t *testing.T) {
	const goroutines, each = 50, 40
	l, path := openTemp(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	seqs := make([][]uint64, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord(i)
				r.RequestID = fmt.Sprintf("g%02d-%03d", g, i)
				if err := l.Append(context.Background(), r); err != nil {
					errs <- err
					return
				}
				seqs[g] = append(seqs[g], r.Seq)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(path)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != goroutines*each {
		t.Fatalf("records %d, want %d", rep.Records, goroutines*each)
	}
	// File order is seq order, and each goroutine's records appear in the
	// order it appended them, with the seq Append reported.
	var n uint64
	last := map[string]int{}
	err = ReadAll(path, func(r Record) error {
		n++
		if r.Seq != n {
			return fmt.Errorf("line %d has seq %d", n, r.Seq)
		}
		var g, i int
		if _, err := fmt.Sscanf(r.RequestID, "g%d-%d", &g, &i); err != nil {
			return err
		}
		if seqs[g][i] != r.Seq {
			return fmt.Errorf("%s: Append reported seq %d, file has %d", r.RequestID, seqs[g][i], r.Seq)
		}
		key := fmt.Sprint(g)
		if prev, ok := last[key]; ok && i != prev+1 {
			return fmt.Errorf("goroutine %d: record %d follows %d", g, i, prev)
		}
		last[key] = i
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// countingFile counts writes and syncs and can be made to fail.
type countingFile struct {
	logFile
	mu               sync.Mutex
	writes, syncs    int
	maxWrite         int
	failWrite        error
	failSync         error
	shortWrite       bool
	gate             chan struct{} // if set, each Write waits for it
	writeStartedOnce sync.Once
	writeStarted     chan struct{} // if set, closed when the first Write starts
}

func (c *countingFile) Write(p []byte) (int, error) {
	if c.writeStarted != nil {
		c.writeStartedOnce.Do(func() { close(c.writeStarted) })
	}
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	c.writes++
	c.maxWrite = max(c.maxWrite, len(p))
	fw, short := c.failWrite, c.shortWrite
	c.mu.Unlock()
	if fw != nil {
		// Simulate a partial write before the failure, as a full disk does.
		n, _ := c.logFile.Write(p[:len(p)/2])
		return n, fw
	}
	if short {
		return c.logFile.Write(p[:len(p)-1])
	}
	return c.logFile.Write(p)
}

func (c *countingFile) Sync() error {
	c.mu.Lock()
	c.syncs++
	fs := c.failSync
	c.mu.Unlock()
	if fs != nil {
		return fs
	}
	return c.logFile.Sync()
}

func TestGroupCommit(t *testing.T) {
	cf := &countingFile{gate: make(chan struct{}), writeStarted: make(chan struct{})}
	l, path := openTemp(t, Options{wrapFile: func(f logFile) logFile { cf.logFile = f; return cf }})
	const n = 200
	var wg sync.WaitGroup
	// The first append's write blocks on the gate, so the rest queue up and
	// must be committed together.
	wg.Go(func() { goAppend(t, l, 0) })
	<-cf.writeStarted
	for i := range n - 1 {
		wg.Go(func() { goAppend(t, l, i+1) })
	}
	for len(l.reqs) < n-1 {
		time.Sleep(time.Millisecond)
	}
	close(cf.gate)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if cf.writes != 2 || cf.syncs != 2 {
		t.Errorf("%d writes, %d syncs for %d records; want 2 and 2", cf.writes, cf.syncs, n)
	}
	if rep, err := Verify(path); err != nil || rep.Records != n {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestBatchByteBound(t *testing.T) {
	cf := &countingFile{gate: make(chan struct{}), writeStarted: make(chan struct{})}
	l, path := openTemp(t, Options{wrapFile: func(f logFile) logFile { cf.logFile = f; return cf }})
	big := "/" + strings.Repeat("p", 200<<10) // ~200 KiB a record
	var wg sync.WaitGroup
	wg.Go(func() { goAppend(t, l, 0) })
	<-cf.writeStarted
	const n = 20
	for i := range n {
		wg.Go(func() {
			r := sampleRecord(i)
			r.Path = big
			if err := l.Append(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	for len(l.reqs) < n {
		time.Sleep(time.Millisecond)
	}
	close(cf.gate)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if cf.maxWrite > maxBatchBytes+len(big)+4096 {
		t.Errorf("largest write %d bytes, bound is about %d", cf.maxWrite, maxBatchBytes)
	}
	if cf.writes < 1+(n*len(big))/maxBatchBytes {
		t.Errorf("%d writes for %d bytes", cf.writes, n*len(big))
	}
	if rep, err := Verify(path); err != nil || rep.Records != n+1 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}

func TestFailedState(t *testing.T) {
	diskFull := errors.New("no space left on device")
	tests := []struct {
		name string
		file func(*countingFile)
	}{
		{"write fails", func(c *countingFile) { c.failWrite = diskFull }},
		{"short write", func(c *countingFile) { c.shortWrite = true }},
		{"fsync fails", func(c *countingFile) { c.failSync = diskFull }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cf := &countingFile{}
			l, path := openTemp(t, Options{wrapFile: func(f logFile) logFile { cf.logFile = f; return cf }})
			appendN(t, l, 1, 2)
			if err := l.Healthy(); err != nil {
				t.Fatalf("Healthy before the failure: %v", err)
			}
			cf.mu.Lock()
			tt.file(cf)
			cf.mu.Unlock()

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
			cf.mu.Lock()
			cf.failWrite, cf.failSync, cf.shortWrite = nil, nil, false
			writes := cf.writes
			cf.mu.Unlock()
			err := l.Append(context.Background(), sampleRecord(99))
			if err == nil || !strings.Contains(err.Error(), "log failed") {
				t.Errorf("Append after failure: %v", err)
			}
			if cf.writes != writes {
				t.Error("a failed log wrote again")
			}
			if err := l.Close(); err == nil {
				t.Error("Close of a failed log returned nil")
			}
			// The first two records are intact; whatever followed is
			// reported, not repaired.
			rep, verr := Verify(path)
			if rep.Records < 2 {
				t.Errorf("records before the failure lost: %+v %v", rep, verr)
			}
		})
	}
}

func TestFailedStateClosedFile(t *testing.T) {
	l, _ := openTemp(t, Options{})
	appendN(t, l, 1, 1)
	if err := l.f.Close(); err != nil { // the descriptor goes away under the log
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), sampleRecord(2)); err == nil {
		t.Fatal("Append to a closed file succeeded")
	}
	if err := l.Healthy(); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Errorf("Healthy: %v", err)
	}
	_ = l.Close()
}

func TestAppendRejectsBadRecordsWithoutFailing(t *testing.T) {
	l, path := openTemp(t, Options{})
	defer l.Close()
	tests := []struct {
		name string
		rec  func() *Record
		want string
	}{
		{"too large", func() *Record { r := sampleRecord(1); r.Path = "/" + strings.Repeat("x", MaxLineBytes); return r }, "line limit"},
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
	if rep, err := Verify(path); err != nil || rep.Records != 1 {
		t.Errorf("Verify: %+v %v", rep, err)
	}
}

func TestAppendNormalizes(t *testing.T) {
	l, _ := openTemp(t, Options{})
	defer l.Close()
	r := sampleRecord(1)
	r.Time = time.Date(2026, 1, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	r.Path = "/v1/models?api_key=sk-secret"
	r.Reason = strings.Repeat("é", 2000)
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
	z := &Record{RequestID: "zero-time"}
	if err := l.Append(context.Background(), z); err != nil || z.Time.IsZero() {
		t.Errorf("zero time not filled: %v %v", z.Time, err)
	}
}

func TestAppendContextAndClose(t *testing.T) {
	l, path := openTemp(t, Options{})
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
	if rep, err := Verify(path); err != nil || rep.Records != 1 {
		t.Errorf("Verify: %+v %v (the cancelled record must not be written)", rep, err)
	}
}

func TestCloseFlushesQueued(t *testing.T) {
	cf := &countingFile{gate: make(chan struct{}), writeStarted: make(chan struct{})}
	l, path := openTemp(t, Options{wrapFile: func(f logFile) logFile { cf.logFile = f; return cf }})
	var wg sync.WaitGroup
	wg.Go(func() { goAppend(t, l, 0) })
	<-cf.writeStarted
	for i := range 10 {
		wg.Go(func() { goAppend(t, l, i+1) })
	}
	for len(l.reqs) < 10 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- l.Close() }()
	close(cf.gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if rep, err := Verify(path); err != nil || rep.Records != 11 {
		t.Errorf("Verify: %+v %v", rep, err)
	}
}

func TestTailAndReadAll(t *testing.T) {
	path := writeLog(t, 7)
	tests := []struct {
		n     int
		first string
		count int
	}{
		{1, "req-0007", 1},
		{3, "req-0005", 3},
		{7, "req-0001", 7},
		{50, "req-0001", 7},
	}
	for _, tt := range tests {
		recs, err := Tail(path, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != tt.count || recs[0].RequestID != tt.first || recs[len(recs)-1].RequestID != "req-0007" {
			t.Errorf("Tail(%d): %d records from %s", tt.n, len(recs), recs[0].RequestID)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq != recs[i-1].Seq+1 {
				t.Errorf("Tail(%d): out of order", tt.n)
			}
		}
	}
	if _, err := Tail(path, 0); err == nil {
		t.Error("Tail(0) succeeded")
	}
	stop := errors.New("stop")
	n := 0
	err := ReadAll(path, func(Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("ReadAll stop: %v after %d", err, n)
	}
	// A write in progress (no "\n" yet) is skipped by readers.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":8,"time":"20`)
	f.Close()
	if recs, err := Tail(path, 1); err != nil || recs[0].Seq != 7 {
		t.Errorf("Tail with a partial line: %v %v", recs, err)
	}
	if _, err := Tail(filepath.Join(t.TempDir(), "missing"), 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestObligationNumbersRoundTrip(t *testing.T) {
	l, path := openTemp(t, Options{})
	r := sampleRecord(1)
	r.Decision.Obligations = map[string]any{"big": uint64(1<<63 + 1), "f": 0.1, "nested": map[string]any{"b": 1, "a": []any{"x", 2}}}
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	recs, err := Tail(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(&recs[0])
	if line := bytes.TrimSpace(readLines(t, path)[0]); !bytes.Equal(got, line) {
		t.Errorf("re-encoding a read record changed it:\n got %s\nwant %s", got, line)
	}
}

var _ io.Writer = (*countingFile)(nil)
