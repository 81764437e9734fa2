package policy

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

const quickstart = "../../examples/quickstart/policy"

// benchSets are the shipped example policy sets the decision budget
// (p99 ≤ 50 µs) applies to. A set that is not in the tree yet is skipped
// with a message.
var benchSets = []struct {
	name string
	dir  string
}{
	{"quickstart", quickstart},
	{"zero-trust-ai", "../../examples/zero-trust-ai/policy"},
}

// latencies records per-operation latencies in a fixed histogram, so that
// recording allocates nothing inside the measured loop: 100 ns buckets up
// to 10 ms, then one overflow bucket.
type latencies struct {
	buckets [100_001]uint32
	n       uint64
}

const bucketWidth = 100 * time.Nanosecond

func (l *latencies) add(d time.Duration) {
	i := int(d / bucketWidth)
	if i >= len(l.buckets) {
		i = len(l.buckets) - 1
	}
	l.buckets[i]++
	l.n++
}

// quantile returns the upper bound of the bucket holding quantile q.
func (l *latencies) quantile(q float64) time.Duration {
	want := uint64(q * float64(l.n))
	var seen uint64
	for i, c := range l.buckets {
		seen += uint64(c)
		if seen > want {
			return time.Duration(i+1) * bucketWidth
		}
	}
	return time.Duration(len(l.buckets)) * bucketWidth
}

// opTimer measures each operation of a benchmark loop twice: wall time,
// which is what a request waits, and the CPU time of the benchmark's
// thread, which is what the decision costs and which other work on a
// shared machine does not inflate (it excludes time spent descheduled; it
// includes the GC work the operation is charged with).
type opTimer struct {
	wall, cpu latencies
	cpuOK     bool
	t0        time.Time
	c0        time.Duration
}

// newOpTimer locks the calling goroutine to its thread for the thread
// clock; call stop when done.
func newOpTimer() *opTimer {
	runtime.LockOSThread()
	_, ok := threadCPU()
	return &opTimer{cpuOK: ok}
}

func (o *opTimer) start() {
	if o.cpuOK {
		o.c0, _ = threadCPU()
	}
	o.t0 = time.Now()
}

func (o *opTimer) done() {
	o.wall.add(time.Since(o.t0))
	if o.cpuOK {
		c1, _ := threadCPU()
		o.cpu.add(c1 - o.c0)
	}
}

// stop reports the p50 and p99 of both clocks and unlocks the thread.
func (o *opTimer) stop(b *testing.B) {
	runtime.UnlockOSThread()
	if o.wall.n == 0 {
		return
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(o.wall.quantile(0.50)), "p50-µs")
	b.ReportMetric(us(o.wall.quantile(0.99)), "p99-µs")
	if o.cpuOK {
		b.ReportMetric(us(o.cpu.quantile(0.50)), "cpu-p50-µs")
		b.ReportMetric(us(o.cpu.quantile(0.99)), "cpu-p99-µs")
	}
}

// benchEngine loads a shipped set or skips the benchmark when it is absent.
func benchEngine(b *testing.B, dir string) *Engine {
	b.Helper()
	if _, err := os.Stat(dir); err != nil {
		b.Skipf("policy set %s is not in the tree yet: %v", dir, err)
	}
	return mustLoad(b, dir)
}

// benchExchange is newExchange with the context a zero-trust deployment
// fills in: networks, geo, posture, risk, a grant.
func benchExchange() *gateway.Exchange {
	ex := newExchange()
	ex.Principal.Scopes = []string{"inference:*"}
	ex.Principal.Groups = []string{"ml-team"}
	ex.Principal.ExpiresAt = testStart.Add(90 * 24 * time.Hour)
	ex.Assessment = &gateway.Assessment{
		Posture:       map[string]any{"managed": true, "disk_encrypted": true},
		PostureSource: "header",
		Risk:          0.1,
		Geo:           &gateway.Geo{Country: "DE", City: "Berlin", ASN: 3320, Org: "Example AG"},
	}
	return ex
}

var benchInputOptions = func() InputOptions {
	loc, err := LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	nets, err := NewNetworks(map[string][]string{"corp": {"10.0.0.0/8"}, "vpn": {"100.64.0.0/10"}})
	if err != nil {
		panic(err)
	}
	return InputOptions{Location: loc, Networks: nets}
}()

// benchInputs are the decisions a benchmark of set cycles through: the
// example requests shipped beside the set (DIR/../requests/*.json), or,
// for a set without any, the allowed chat completion of benchExchange.
func benchInputs(tb testing.TB, dir string) []Input {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "..", "requests", "*.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var ins []Input
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		in, err := ParseInput(bytes.NewReader(data))
		if err != nil {
			tb.Fatalf("%s: %v", f, err)
		}
		ins = append(ins, in)
	}
	if len(ins) == 0 {
		in, err := NewInput(benchExchange(), benchInputOptions)
		if err != nil {
			tb.Fatal(err)
		}
		ins = append(ins, in)
	}
	return ins
}

// exchangeFromInput builds the exchange, and the input options, for which
// the gateway builds in (request_bytes aside: the body is rebuilt).
func exchangeFromInput(tb testing.TB, in Input) (*gateway.Exchange, InputOptions) {
	tb.Helper()
	body := fmt.Sprintf(`{"model":%q,"max_tokens":%d}`, in.Resource.Model, in.Context.Tokens.Max)
	req := httptest.NewRequest(cmp.Or(in.Resource.Method, http.MethodPost), cmp.Or(in.Resource.Path, "/"), strings.NewReader(body))
	p := in.Principal
	ex := &gateway.Exchange{
		ID:      in.Context.RequestID,
		Start:   in.Context.Time,
		Request: req,
		Writer:  gateway.NewResponseWriter(httptest.NewRecorder()),
		Route:   &gateway.Route{Name: in.Resource.Route, Segment: in.Resource.Segment, API: in.Resource.API},
		Action:  in.Action,
		Model:   in.Resource.Model,
		Stream:  in.Resource.Stream,
		Tool:    in.Resource.Tool,
		Body:    []byte(body),
		Principal: &gateway.Principal{Kind: p.Kind, ID: p.ID, OnBehalfOf: p.OnBehalfOf, AuthMethod: p.AuthMethod,
			CredentialID: p.CredentialID, Issuer: p.Issuer, AuthTime: p.AuthTime, ExpiresAt: p.ExpiresAt,
			Scopes: p.Scopes, Groups: p.Groups, Roles: p.Roles, MFA: p.MFA, Workload: p.Workload},
		Assessment: &gateway.Assessment{Posture: in.Context.Posture, PostureSource: in.Context.PostureSource, Risk: in.Context.Risk},
		Usage:      gateway.Usage{PromptTokens: in.Context.Tokens.Prompt},
	}
	if g := in.Context.Geo; g != (GeoInput{}) {
		ex.Assessment.Geo = &gateway.Geo{Country: g.Country, City: g.City, ASN: g.ASN, Org: g.Org}
	}
	for i := range max(len(in.Context.DataClasses), len(in.Context.FindingTypes)) {
		f := gateway.Finding{Guard: "dlp", Where: "request"}
		f.Class = in.Context.DataClasses[min(i, len(in.Context.DataClasses)-1)]
		f.Type = in.Context.FindingTypes[min(i, len(in.Context.FindingTypes)-1)]
		ex.Findings = append(ex.Findings, f)
	}
	for _, g := range in.Grants {
		ex.Grants = append(ex.Grants, gateway.Grant{ID: g.ID, Principal: p.ID, Action: g.Action, Segment: g.Segment,
			Resource: g.Resource, RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy, ExpiresAt: g.ExpiresAt})
	}
	var opts InputOptions
	if in.Context.SourceIP != "" {
		ip, err := netip.ParseAddr(in.Context.SourceIP)
		if err != nil {
			tb.Fatal(err)
		}
		ex.SourceIP = ip
		// Every network the input names holds exactly this address.
		nets := map[string][]string{}
		for _, n := range in.Context.Networks {
			nets[n] = []string{ip.String()}
		}
		if opts.Networks, err = NewNetworks(nets); err != nil {
			tb.Fatal(err)
		}
	}
	var err error
	if opts.Location, err = LoadLocation(cmp.Or(in.Context.Timezone, "UTC")); err != nil {
		tb.Fatal(err)
	}
	return ex, opts
}

// TestExchangeFromInput checks the benchmarks' helper: the gateway builds
// each shipped example request back from its exchange.
func TestExchangeFromInput(t *testing.T) {
	for _, set := range benchSets {
		if _, err := os.Stat(set.dir); err != nil {
			continue
		}
		for _, want := range benchInputs(t, set.dir) {
			ex, opts := exchangeFromInput(t, want)
			got, err := NewInput(ex, opts)
			if err != nil {
				t.Fatal(err)
			}
			got.Context.RequestBytes = want.Context.RequestBytes
			gv, err := got.Value()
			if err != nil {
				t.Fatal(err)
			}
			wv, err := want.Value()
			if err != nil {
				t.Fatal(err)
			}
			if gv.Compare(wv) != 0 {
				t.Errorf("%s %s: rebuilt input\n%v\nwant\n%v", set.name, want.Context.RequestID, gv, wv)
			}
		}
	}
}

// BenchmarkDecide measures decisions of each shipped policy set over its
// example requests, input conversion included, with per-decision p50 and
// p99 (run it on an idle machine; -benchtime 200000x gives a stable p99):
//
//	go test ./internal/policy -run '^$' -bench 'Decide|Stage' -benchtime 200000x
func BenchmarkDecide(b *testing.B) {
	for _, set := range benchSets {
		b.Run(set.name, func(b *testing.B) {
			e := benchEngine(b, set.dir)
			ins := benchInputs(b, set.dir)
			ctx := context.Background()
			allowed := 0
			for _, in := range ins {
				d, err := e.Decide(ctx, in)
				if err != nil {
					b.Fatalf("Decide(%s) = %+v, %v", in.Context.RequestID, d, err)
				}
				if d.Allow {
					allowed++
				}
			}
			b.Logf("%d requests, %d allowed by the policy", len(ins), allowed)
			timer := newOpTimer()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				in := &ins[i%len(ins)]
				i++
				timer.start()
				_, err := e.Decide(ctx, *in)
				timer.done()
				if err != nil {
					b.Fatal(err)
				}
			}
			timer.stop(b)
		})
	}
}

// BenchmarkDecideEach measures each example request on its own: the
// percentiles of BenchmarkDecide mix eight requests of different cost, so
// its p99 is the cost of the dearest one (each is 1/8 of the samples),
// not a rare event.
func BenchmarkDecideEach(b *testing.B) {
	for _, set := range benchSets {
		e := benchEngine(b, set.dir)
		for _, in := range benchInputs(b, set.dir) {
			b.Run(set.name+"/"+in.Context.RequestID, func(b *testing.B) {
				ctx := context.Background()
				timer := newOpTimer()
				b.ReportAllocs()
				for b.Loop() {
					timer.start()
					_, err := e.Decide(ctx, in)
					timer.done()
					if err != nil {
						b.Fatal(err)
					}
				}
				timer.stop(b)
			})
		}
	}
}

// BenchmarkStage measures the authorize stage end to end over the same
// requests, which is what a request pays: input from the exchange,
// decision, obligations.
func BenchmarkStage(b *testing.B) {
	for _, set := range benchSets {
		b.Run(set.name, func(b *testing.B) {
			e := benchEngine(b, set.dir)
			type prepared struct {
				s    *Stage
				ex   *gateway.Exchange
				body []byte
			}
			var ps []prepared
			for _, in := range benchInputs(b, set.dir) {
				ex, opts := exchangeFromInput(b, in)
				s := NewStage(e, nil)
				s.SetInputOptions(opts)
				s.SetMemoEntries(0) // every decision evaluated; BenchmarkStageMemo measures the memo
				for kind, fn := range Enforcers() {
					s.Enforce(kind, fn)
				}
				s.Enforce(ObligationRequireMFA, func(*gateway.Exchange, any) error { return nil })
				ps = append(ps, prepared{s, ex, ex.Body})
			}
			next := func(*gateway.Exchange) error { return nil }
			timer := newOpTimer()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				p := &ps[i%len(ps)]
				i++
				p.ex.Body, p.ex.Obligations, p.ex.Decision = p.body, gateway.Obligations{}, nil
				timer.start()
				err := p.s.Handle(p.ex, next)
				timer.done()
				if err != nil && gateway.AsError(err).Status >= 500 {
					b.Fatal(err)
				}
			}
			timer.stop(b)
		})
	}
}

// BenchmarkInputValue measures the hand-built conversion alone.
func BenchmarkInputValue(b *testing.B) {
	in, err := NewInput(benchExchange(), benchInputOptions)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Value(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewInput measures building the input from an exchange.
func BenchmarkNewInput(b *testing.B) {
	ex := benchExchange()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewInput(ex, benchInputOptions); err != nil {
			b.Fatal(err)
		}
	}
}
