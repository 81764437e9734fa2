package behavior

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC) // a Monday

func newEngine(t *testing.T, o Options) *Engine {
	t.Helper()
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []Options{
		{Threshold: -1}, {Threshold: math.NaN()}, {Threshold: math.Inf(1)}, {Warmup: -1}, {Window: 1},
		{HalfLife: time.Millisecond}, {Cooldown: -time.Second}, {MaxPrincipals: -1}, {MaxNetworks: -2}, {QueueSize: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// steady feeds a principal n ordinary requests, one every gap.
func steady(e *Engine, kind, id string, start time.Time, n int, gap time.Duration) (time.Time, int) {
	alarms := 0
	at := start
	for i := 0; i < n; i++ {
		o := Observation{At: at, Kind: kind, ID: id, Source: netip.MustParseAddr("10.0.0.7"), Model: "m1",
			Status: 200, PromptTokens: int64(150 + i%50), CompletionTokens: int64(200 + (i*7)%80), BytesOut: int64(1100 + (i*13)%300),
			Prompt: Sketch([]byte("question number " + strings.Repeat("x", i%5) + " about topic " + string(rune('a'+i%26)) + " " + string(rune('a'+(i*7)%26))))}
		if e.Observe(&o) != nil {
			alarms++
		}
		at = at.Add(gap)
	}
	return at, alarms
}

// TestEngineScenarios: one principal with a week of ordinary traffic, then
// one kind of abuse; each must be reported within 50 requests, naming the
// feature that drove it.
func TestEngineScenarios(t *testing.T) {
	tests := []struct {
		name    string
		feature string
		abuse   func(i int, o *Observation)
	}{
		{"denial spike", "denial_ratio", func(i int, o *Observation) { o.Status, o.BytesOut, o.PromptTokens, o.CompletionTokens = 403, 200, 0, 0 }},
		{"large outputs", "response_bytes", func(i int, o *Observation) { o.CompletionTokens, o.BytesOut = 8000, 34000 }},
		{"model probing", "distinct_models", func(i int, o *Observation) { o.Model = "probe-" + string(rune('a'+i%26)) + string(rune('a'+i/26)) }},
		{"templated prompts", "prompt_similarity", func(i int, o *Observation) {
			o.Prompt = Sketch([]byte("Translate the following English sentence into French and give only the translation please thank you: item " + string(rune('a'+i%26))))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			at = t0
			// a week of office hours, 60 requests a day
			for d := 0; d < 7; d++ {
				var alarms int
				_, alarms = steady(e, "user", "alice", t0.Add(time.Duration(d)*24*time.Hour), 60, 5*time.Minute)
				if alarms > 0 {
					t.Fatalf("day %d: %d false alarms", d, alarms)
				}
				at = t0.Add(time.Duration(d+1) * 24 * time.Hour)
			}
			for i := 1; i <= 50; i++ {
				o := Observation{At: at, Kind: "user", ID: "alice", RequestID: "r", Source: netip.MustParseAddr("10.0.0.7"), Model: "m1",
					Status: 200, PromptTokens: 170, CompletionTokens: 220, BytesOut: 1200, Prompt: Sketch([]byte("an ordinary question " + string(rune('a'+i%26))))}
				tc.abuse(i, &o)
				if a := e.Observe(&o); a != nil {
					if len(a.Features) == 0 || a.Features[0].Name != tc.feature && !hasFeature(a, tc.feature) {
						t.Fatalf("anomaly after %d requests driven by %+v, want %s", i, a.Features, tc.feature)
					}
					if a.Principal != "user:alice" || a.Score < 0.5 || a.Score > 1 || a.Risk < a.Score || a.Reason == "" {
						t.Fatalf("anomaly %+v", a)
					}
					if r := e.Risk("alice"); math.Abs(r-a.Risk) > 1e-6 {
						t.Fatalf("Risk = %v, anomaly says %v", r, a.Risk)
					}
					t.Logf("detected after %d requests: %s", i, a.Reason)
					return
				}
				at = at.Add(10 * time.Second)
			}
			t.Fatal("not detected within 50 requests")
		})
	}
}

func hasFeature(a *Anomaly, name string) bool {
	for _, f := range a.Features {
		if f.Name == name {
			return true
		}
	}
	return false
}

// TestNewPrincipalExtreme: a brand-new credential whose first requests are
// all refused is caught during warm-up, against the population prior (the
// e2e burst).
func TestNewPrincipalExtreme(t *testing.T) {
	e := newEngine(t, Options{})
	at := t0
	o := Observation{At: at, Kind: "service", ID: "fresh", Source: netip.MustParseAddr("192.0.2.1"), Status: 200}
	e.Observe(&o)
	for i := 1; i <= 15; i++ {
		at = at.Add(100 * time.Millisecond)
		o := Observation{At: at, Kind: "service", ID: "fresh", Source: netip.MustParseAddr("192.0.2.1"), Status: 403, Model: "m"}
		if a := e.Observe(&o); a != nil {
			if !hasFeature(a, "denial_ratio") || a.Risk <= 0.5 {
				t.Fatalf("anomaly %+v", a)
			}
			t.Logf("detected after %d denials: risk %.2f, %s", i, a.Risk, a.Reason)
			return
		}
	}
	t.Fatal("15 denials in a row from a new credential not detected")
}

// TestWarmupQuiet: a new principal's ordinary first requests raise nothing.
func TestWarmupQuiet(t *testing.T) {
	e := newEngine(t, Options{})
	if _, alarms := steady(e, "agent", "new-agent", t0, 200, 3*time.Second); alarms != 0 {
		t.Fatalf("%d alarms for ordinary traffic of a new principal", alarms)
	}
}

func TestRiskDecayAndKinds(t *testing.T) {
	var now time.Time
	e := newEngine(t, Options{HalfLife: time.Hour, Now: func() time.Time { return now }})
	now = t0
	var a *Anomaly
	for i := 0; i < 30 && a == nil; i++ {
		o := Observation{At: now, Kind: "agent", ID: "bot", Source: netip.MustParseAddr("192.0.2.1"), Status: 403}
		a = e.Observe(&o)
	}
	if a == nil {
		t.Fatal("no anomaly")
	}
	if got := e.Risk("bot"); math.Abs(got-a.Risk) > 1e-6 {
		t.Fatalf("Risk(bot) = %v, want %v", got, a.Risk)
	}
	if got := e.RiskOf("user", "bot"); got != 0 {
		t.Fatalf("a user named bot has risk %v", got)
	}
	now = now.Add(time.Hour)
	if got := e.Risk("bot"); math.Abs(got-a.Risk/2) > 1e-3 {
		t.Fatalf("after one half-life Risk = %v, want %v", got, a.Risk/2)
	}
	if got := e.Risk("nobody"); got != 0 {
		t.Fatalf("unknown principal risk %v", got)
	}
}

func TestCooldown(t *testing.T) {
	e := newEngine(t, Options{Cooldown: time.Minute})
	n := 0
	at := t0
	for i := 0; i < 200; i++ {
		o := Observation{At: at, Kind: "service", ID: "s", Source: netip.MustParseAddr("192.0.2.1"), Status: 403}
		if e.Observe(&o) != nil {
			n++
		}
		at = at.Add(time.Second)
	}
	if n < 3 || n > 4 { // 200 s of denials: one anomaly a minute
		t.Fatalf("%d anomalies in 200s with a 1m cooldown", n)
	}
}

// TestUnauthenticatedNetwork: failed requests without a principal are kept
// per source network and reported as kind "network".
func TestUnauthenticatedNetwork(t *testing.T) {
	e := newEngine(t, Options{})
	at := t0
	for i := 0; i < 200; i++ {
		o := Observation{At: at, Source: netip.MustParseAddr("203.0.113.77"), Status: 401}
		if a := e.Observe(&o); a != nil {
			if a.Kind != KindNetwork || a.ID != "203.0.113.0/24" || a.Principal != "network:203.0.113.0/24" {
				t.Fatalf("anomaly %+v", a)
			}
			if e.Stats().Networks != 1 || e.Stats().Principals != 0 {
				t.Fatalf("stats %+v", e.Stats())
			}
			return
		}
		at = at.Add(200 * time.Millisecond)
	}
	t.Fatal("a flood of 401s from one network was not reported")
}

func TestEviction(t *testing.T) {
	e := newEngine(t, Options{MaxPrincipals: 1000})
	for i := 0; i < 5000; i++ {
		o := Observation{At: t0.Add(time.Duration(i) * time.Second), Kind: "user", ID: "u" + itoa(i), Status: 200}
		e.Observe(&o)
	}
	st := e.Stats()
	if st.Principals > 1000+numShards || st.Principals < 900 || st.Evicted < 3900 {
		t.Fatalf("stats %+v", st)
	}
	e.Sweep(t0.Add(5000*time.Second + DefaultIdleTTL + time.Second))
	if st := e.Stats(); st.Principals != 0 {
		t.Fatalf("after the idle sweep: %+v", st)
	}
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		if i /= 10; i == 0 {
			return string(b[n:])
		}
	}
}

type recResponder struct {
	mu  sync.Mutex
	got []Anomaly
	err error
}

func (r *recResponder) Respond(_ context.Context, a Anomaly) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, a)
	if r.err != nil {
		return r.err
	}
	panic("responder bug") // Run must survive it
}

// TestRunDelivers: Run hands each anomaly to Record, then the Responder;
// a failing or panicking responder is counted and does not stop it; a full
// queue drops reports (counted) but never the risk.
func TestRunDelivers(t *testing.T) {
	var mu sync.Mutex
	var recorded []Anomaly
	resp := &recResponder{}
	var respErrs, drops int
	var at time.Time
	e := newEngine(t, Options{QueueSize: 1, Cooldown: time.Second, Now: func() time.Time { return at },
		Record: func(_ context.Context, a Anomaly) error {
			mu.Lock()
			defer mu.Unlock()
			recorded = append(recorded, a)
			return nil
		},
		Responder: resp,
		Hooks:     Hooks{RespondErr: func() { mu.Lock(); respErrs++; mu.Unlock() }, Dropped: func() { drops++ }},
	})
	// Without Run the queue fills: the second anomaly is dropped, its risk is not.
	at = t0
	var as []*Anomaly
	for i := 0; i < 400 && len(as) < 2; i++ {
		o := Observation{At: at, Kind: "service", ID: "s", Source: netip.MustParseAddr("192.0.2.1"), Status: 403}
		if a := e.Observe(&o); a != nil {
			as = append(as, a)
		}
		at = at.Add(100 * time.Millisecond)
	}
	if len(as) != 2 || drops != 1 || e.Stats().Dropped != 1 {
		t.Fatalf("%d anomalies, %d drops, stats %+v", len(as), drops, e.Stats())
	}
	if r := e.RiskOf("service", "s"); math.Abs(r-as[1].Risk) > 1e-3 {
		t.Fatalf("risk %v, want %v (raised by the dropped anomaly too)", r, as[1].Risk)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, errs := len(recorded), respErrs
		mu.Unlock()
		if n == 1 && errs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recorded %d, responder errors %d", n, errs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp.mu.Lock()
	resp.err = errors.New("down")
	resp.mu.Unlock()
	cancel()
	<-done
	if recorded[0].Principal != "service:s" || len(resp.got) != 1 {
		t.Fatalf("recorded %+v, responded %d", recorded, len(resp.got))
	}
}

func TestObserveAllocs(t *testing.T) {
	e := newEngine(t, Options{})
	o := Observation{At: t0, Kind: "service", ID: "svc", Source: netip.MustParseAddr("10.0.0.1"), Model: "m", Status: 200,
		PromptTokens: 10, CompletionTokens: 10, BytesOut: 100, Prompt: 42, UserAgent: "sdk/1.0"}
	e.Observe(&o)
	if n := testing.AllocsPerRun(1000, func() { o.At = o.At.Add(time.Second); e.Observe(&o) }); n != 0 {
		t.Fatalf("Observe allocates %v times per call", n)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestNewClient: after a week of one user's office hours from one client
// and network, a new network alone (a café, a trip with one's own laptop)
// and a new client alone (a browser update, a new laptop at the office) do
// not alarm; a new client on a new network — a stolen credential used from
// the attacker's machine — does, at an ordinary hour, naming new_client.
// Without a TLS fingerprint the User-Agent stands for the client.
func TestNewClient(t *testing.T) {
	const laptop, attacker = 0x1234, 0x9876
	office := netip.MustParseAddr("10.0.0.7")
	for _, tc := range []struct {
		name      string
		hello     uint64
		ua        string
		src       string
		wantAlarm bool
	}{
		{"known client, new network", laptop, "", "198.51.100.7", false},
		{"new client, known network", attacker, "", "10.0.0.7", false},
		{"new client, new network", attacker, "", "203.0.113.7", true},
		{"new User-Agent, new network, no TLS", 0, "curl/8.5.0", "203.0.113.7", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			for d := 0; d < 7; d++ {
				for i := 0; i < 30; i++ { // 09:00–14:00, every 10 minutes
					at = t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*10*time.Minute)
					o := Observation{At: at, Kind: "user", ID: "alice", Source: office, Model: "m1", Status: 200,
						PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: laptop}
					if tc.hello == 0 { // a plaintext listener: the User-Agent only
						o.ClientHello, o.UserAgent = 0, "Mozilla/5.0 Firefox/140.0"
					}
					if a := e.Observe(&o); a != nil {
						t.Fatalf("day %d: false alarm %s", d, a.Reason)
					}
				}
			}
			at = t0.Add(7*24*time.Hour + 2*time.Hour) // 11:00, an ordinary hour
			for i := 1; i <= 30; i++ {
				o := Observation{At: at, Kind: "user", ID: "alice", Source: netip.MustParseAddr(tc.src), Model: "m1", Status: 200,
					PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: tc.hello, UserAgent: tc.ua}
				if a := e.Observe(&o); a != nil {
					if !tc.wantAlarm || !hasFeature(a, "new_client") || i > 10 {
						t.Fatalf("anomaly after %d requests: %s", i, a.Reason)
					}
					t.Logf("detected after %d requests: %s", i, a.Reason)
					return
				}
				at = at.Add(30 * time.Second)
			}
			if tc.wantAlarm {
				t.Fatal("not detected within 30 requests")
			}
		})
	}
}
