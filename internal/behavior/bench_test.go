package behavior

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

var benchBody = []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant for the support team. Answer briefly."},{"role":"user","content":"Summarize the following ticket in two sentences: the customer reports that invoices generated after the March update show the wrong VAT rate for deliveries to Austria, and asks for corrected copies of three invoices."}],"max_tokens":256}`)

func benchObs(i int, ids []string, at time.Time) Observation {
	return Observation{At: at, Kind: "service", ID: ids[i%len(ids)], Source: netip.AddrFrom4([4]byte{10, 1, byte(i % 7), 9}),
		Model: "gpt-4o-mini", Status: 200, PromptTokens: 180, CompletionTokens: 120, BytesOut: 900, Prompt: 0x0123456789abcdef,
		ClientHello: 0x5eed0000 + uint64(i%3)}
}

// BenchmarkObserve is the engine's cost per request on the request path,
// without the prompt sketch (see BenchmarkObserveWithSketch).
func BenchmarkObserve(b *testing.B) {
	e, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "svc-" + strconv.Itoa(i)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			o := benchObs(i, ids, t0.Add(time.Duration(i)*time.Millisecond))
			e.Observe(&o)
			i++
		}
	})
}

// BenchmarkObserveWithSketch adds extracting and sketching the prompt of a
// typical chat request body, as the stage does.
func BenchmarkObserveWithSketch(b *testing.B) {
	e, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, 10000)
	for i := range ids {
		ids[i] = "svc-" + strconv.Itoa(i)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := benchObs(i, ids, t0.Add(time.Duration(i)*time.Millisecond))
		o.Prompt = Sketch(PromptText(benchBody))
		e.Observe(&o)
	}
}

func BenchmarkSketch(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	for i := 0; i < b.N; i++ {
		Sketch(PromptText(benchBody))
	}
}

// TestMemoryMillionPrincipals measures the heap of baselines for 1,000,000
// principals. It allocates about half a gigabyte, so it runs only with
// BEHAVIOR_MEM=1.
func TestMemoryMillionPrincipals(t *testing.T) {
	if os.Getenv("BEHAVIOR_MEM") == "" {
		t.Skip("set BEHAVIOR_MEM=1 to measure the memory of 1,000,000 baselines")
	}
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("spiffe://example.org/ns/prod/sa/svc-%07d", i)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	e, err := New(Options{MaxPrincipals: n})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		o := benchObs(i, ids, t0.Add(time.Duration(i)*time.Millisecond))
		e.Observe(&o)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if got := e.Stats().Principals; got != n {
		t.Fatalf("%d principals kept, want %d", got, n)
	}
	heap := after.HeapAlloc - before.HeapAlloc
	t.Logf("1,000,000 principals: heap %.1f MiB (%.0f bytes each; state %d bytes), total from OS %.1f MiB",
		float64(heap)/(1<<20), float64(heap)/n, StateBytes, float64(after.Sys)/(1<<20))
	if heap > 1<<30 {
		t.Fatalf("heap %d bytes exceeds 1 GiB", heap)
	}
	runtime.KeepAlive(e)
	runtime.KeepAlive(ids)
}
