package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// BenchmarkAppendParallel measures durable appends (sync mode: each Append
// returns after its record and hashes are fsynced) from many goroutines;
// group commit shares each write and fsync among the records queued
// meanwhile.
func BenchmarkAppendParallel(b *testing.B) {
	benchAppend(b, Options{})
}

// BenchmarkAppendParallelAsync is the same in async mode.
func BenchmarkAppendParallelAsync(b *testing.B) {
	benchAppend(b, Options{Mode: ModeAsync, MaxPending: 8192})
}

func benchAppend(b *testing.B, opts Options) {
	l, _ := openTemp(b, opts)
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(64) // many requests in flight per CPU, as in a gateway
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := l.Append(ctx, sampleRecord(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	// CPU time per record (user + system, all threads) does not depend on
	// what else the machine runs, unlike records/s.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/record")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendSerial is one caller at a time: one commit per record.
func BenchmarkAppendSerial(b *testing.B) {
	l, _ := openTemp(b, Options{})
	defer l.Close()
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		if err := l.Append(ctx, sampleRecord(1)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkVerify is `warden audit verify` (Verify: open read-only, check
// the checkpoint and every record and stored hash) over a log of
// AUDIT_BENCH_RECORDS records (default 1,000,000 sample records of about
// 800 bytes, checkpointed).
func BenchmarkVerify(b *testing.B) {
	n := int64(1_000_000)
	if s := os.Getenv("AUDIT_BENCH_RECORDS"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v <= 0 {
			b.Fatalf("AUDIT_BENCH_RECORDS=%q", s)
		}
		n = v
	}
	dir := buildBenchLog(b, n)
	k, _ := keys(b)
	vkey := k.VerifierKey()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rep, err := Verify(dir, vkey)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != n || rep.Tail != 0 {
			b.Fatalf("report %+v", rep)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/verify")
}

// buildBenchLog writes a checkpointed log of n sample records straight to
// the file backend, in large batches.
func buildBenchLog(b *testing.B, n int64) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "audit")
	fb, err := OpenFileBackend(dir, FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	body, err := encodeBody(nil, sampleRecord(0))
	if err != nil {
		b.Fatal(err)
	}
	id := []byte("req-0000")
	at := bytes.Index(body, id)
	var hashes []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	const batch = 8192
	var arena []byte
	for first := int64(0); first < n; first += batch {
		m := min(batch, n-first)
		arena = arena[:0]
		var ends []int
		for i := first; i < first+m; i++ {
			copy(body[at+4:at+8], fmt.Sprintf("%04d", i%10000)) // vary the content
			arena = appendRecord(arena, i, body)
			ends = append(ends, len(arena))
		}
		recs := make([][]byte, 0, m)
		start := len(hashes)
		off := 0
		for k, e := range ends {
			rec := arena[off:e]
			off = e
			recs = append(recs, rec)
			hs, err := tlog.StoredHashes(first+int64(k), rec, reader)
			if err != nil {
				b.Fatal(err)
			}
			hashes = append(hashes, hs...)
		}
		if err := fb.Append(context.Background(), first, recs, hashes[start:]); err != nil {
			b.Fatal(err)
		}
	}
	root, err := tlog.TreeHash(n, reader)
	if err != nil {
		b.Fatal(err)
	}
	k, _ := keys(b)
	signed, err := k.sign(testOrigin, tlog.Tree{N: n, Hash: root})
	if err != nil {
		b.Fatal(err)
	}
	if err := fb.AddCheckpoint(context.Background(), n, signed); err != nil {
		b.Fatal(err)
	}
	if err := fb.Close(); err != nil {
		b.Fatal(err)
	}
	return dir
}
