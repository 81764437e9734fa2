package audit

import (
	"context"
	"sync"
	"testing"
)

// BenchmarkAppendParallel measures durable appends from many goroutines; group
// commit shares each write and fsync among the records queued meanwhile.
func BenchmarkAppendParallel(b *testing.B) {
	l, _ := openTemp(b, Options{})
	defer l.Close()
	b.ReportAllocs()
	b.SetParallelism(64) // many requests in flight per CPU, as in a gateway
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
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendSerial is one caller at a time: one fsync per record.
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

func BenchmarkVerify(b *testing.B) {
	const n = 10000
	l, path := openTemp(b, Options{})
	var wg sync.WaitGroup
	for range 100 { // concurrent appends share fsyncs: a quick set-up
		wg.Go(func() {
			for range n / 100 {
				if err := l.Append(context.Background(), sampleRecord(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(n*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
