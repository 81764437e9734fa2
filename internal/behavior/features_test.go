package behavior

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Tests of the features added for the stolen-credential misses and the
// false alarms of templated services (docs/behavior.md): new networks and
// clients counted only when their run of hours ends, new clients of young
// principals, runs of near duplicates and saturated event rates, and the
// half pace of new_network_off_hours from a known client.

const (
	laptopHello   = 0x1234
	attackerHello = 0x9876
)

var officeAddr = netip.MustParseAddr("10.0.0.7")

// officeWeek feeds user alice days of office hours: 30 requests from
// 09:00 to 14:00 UTC, every 10 minutes, from the office network and her
// laptop. It fails the test on a false alarm.
func officeWeek(t *testing.T, e *Engine, at *time.Time, days int) {
	t.Helper()
	for d := 0; d < days; d++ {
		for i := 0; i < 30; i++ {
			*at = t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*10*time.Minute)
			o := Observation{At: *at, Kind: "user", ID: "alice", Source: officeAddr, Model: "m1", Status: 200,
				PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: laptopHello,
				Prompt: Sketch(ordinaryPrompt(uint64(d*100 + i)))}
			if a := e.Observe(&o); a != nil {
				t.Fatalf("day %d: false alarm %s", d, a.Reason)
			}
		}
	}
}

// session sends n requests of alice from src and hello, one every gap from
// start, with distinct prompts; it returns the request that alarmed (1..n)
// and its anomaly, or 0.
func session(e *Engine, at *time.Time, start time.Time, n int, gap time.Duration, src string, hello uint64) (int, *Anomaly) {
	*at = start
	for i := 1; i <= n; i++ {
		o := Observation{At: *at, Kind: "user", ID: "alice", Source: netip.MustParseAddr(src), Model: "m1", Status: 200,
			PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: hello,
			Prompt: Sketch(fmt.Appendf(nil, "a different question number %d on %x", i, splitmixTest(uint64(start.Unix())+uint64(i))))}
		if a := e.Observe(&o); a != nil {
			return i, a
		}
		*at = at.Add(gap)
	}
	return 0, nil
}

// ordinaryPrompt is a prompt of ten words drawn from a small vocabulary:
// an ordinary user's prompts, which are not near duplicates of each other
// (a new user whose first prompts are near duplicates of each other is
// judged against the users' population rate during its warm-up).
func ordinaryPrompt(seed uint64) []byte {
	words := strings.Fields("budget report meeting summary translate email draft schedule review invoice " +
		"customer travel policy explain compare write list table chart recipe python error deploy contract " +
		"weather history poem letter question answer plan team project design test release data model")
	var b []byte
	for i := range 10 {
		seed = splitmixTest(seed + uint64(i))
		b = append(append(b, words[seed%uint64(len(words))]...), ' ')
	}
	return b
}

func splitmixTest(x uint64) uint64 {
	x += 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

func stateOf(e *Engine, kind, id string) state {
	key := e.principalHash(kind, id)
	sh := e.users.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return *sh.at(sh.idx[key])
}

// TestNewClientAcrossTheHour: a stolen credential used from a new client on
// a new network whose first request falls in the last seconds of an hour:
// the next hour must not count that network and client as familiar (they
// are counted when their run of consecutive active hours ends), so
// new_client keeps gathering evidence. Whether the session starts early or
// late in the hour makes no difference.
func TestNewClientAcrossTheHour(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start time.Duration // after midnight of day 7
	}{
		{"starts at 11:10", 11*time.Hour + 10*time.Minute},
		{"starts at 11:59:50", 11*time.Hour + 59*time.Minute + 50*time.Second},
		{"starts at 16:59:55", 16*time.Hour + 59*time.Minute + 55*time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			officeWeek(t, e, &at, 7)
			i, a := session(e, &at, t0.Add(7*24*time.Hour-9*time.Hour+tc.start), 50, 40*time.Second, "203.0.113.7", attackerHello)
			if a == nil || !hasFeature(a, "new_client") || i > 10 {
				t.Fatalf("anomaly after %d requests: %+v", i, a)
			}
			t.Logf("detected after %d requests: %s", i, a.Reason)
		})
	}
}

// TestRunCounting: networks and clients are counted once per active hour;
// one never used before is held back while its run of consecutive hours
// goes on only when there is evidence against it, so a new principal's
// only network and client become familiar as before.
func TestRunCounting(t *testing.T) {
	var at time.Time
	e := newEngine(t, Options{Now: func() time.Time { return at }})
	// A new service, busy for five hours in a row from one network.
	for i := 0; i < 5*60; i++ {
		at = t0.Add(time.Duration(i) * time.Minute)
		o := Observation{At: at, Kind: "service", ID: "svc", Source: officeAddr, Model: "m1", Status: 200,
			PromptTokens: 100, CompletionTokens: 100, BytesOut: 700, ClientHello: laptopHello}
		if a := e.Observe(&o); a != nil {
			t.Fatalf("false alarm: %s", a.Reason)
		}
	}
	st := stateOf(e, "service", "svc")
	if n, active := maxU16(st.netN[:]), sum24(&st.hours); n != 4 || active != 4 || maxU16(st.clientN[:]) != 4 {
		t.Fatalf("after 5 hours: network counted in %d hours, client in %d, active hours %d; want 4", n, maxU16(st.clientN[:]), active)
	}
}

func maxU16(s []uint16) uint16 {
	var m uint16
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// TestYoungPrincipalNewClient: a user with only two active hours of history
// has no habits to compare with, but its kind's hours profile, aligned on
// those hours, says which hours are far from its day: a new client on a
// new network there is judged (new_client), one in the evening is not. Its
// own client on a new network there is judged too, more slowly
// (new_network_off_hours, at half the pace: before session 7 it was not,
// the hours of a principal with fewer than 3 active hours being taken as
// uniform).
func TestYoungPrincipalNewClient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hour      time.Duration // UTC, day 4; the history is at 10:00 and 15:00
		hello     uint64
		wantAlarm bool
		feature   string
		within    int
	}{
		{"new client, new network, 01:00", 25 * time.Hour, attackerHello, true, "new_client", 25},
		{"new client, new network, 19:00 (evening)", 19 * time.Hour, attackerHello, false, "", 0},
		{"known client, new network, 01:00", 25 * time.Hour, laptopHello, true, "new_network_off_hours", 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			day := t0.Add(-9 * time.Hour) // midnight UTC
			for _, h := range []time.Duration{10 * time.Hour, 24*time.Hour + 15*time.Hour} {
				if i, a := session(e, &at, day.Add(h), 15, time.Minute, "10.0.0.7", laptopHello); a != nil {
					t.Fatalf("history: false alarm at %d: %s", i, a.Reason)
				}
			}
			i, a := session(e, &at, day.Add(3*24*time.Hour+tc.hour), 50, 40*time.Second, "203.0.113.7", tc.hello)
			if st := stateOf(e, "user", "alice"); sum24(&st.hours) > 3 {
				t.Fatalf("%d active hours: not a young principal", sum24(&st.hours))
			}
			switch {
			case tc.wantAlarm && (a == nil || !hasFeature(a, tc.feature) || i > tc.within):
				t.Fatalf("anomaly after %d requests: %+v", i, a)
			case !tc.wantAlarm && a != nil:
				t.Fatalf("false alarm after %d requests: %s", i, a.Reason)
			}
			if a != nil {
				t.Logf("detected after %d requests: %s", i, a.Reason)
			}
		})
	}
}

// TestPromptRuns: near duplicates are judged by what came before them. A
// service that works through its templates one batch at a time (long runs
// of near duplicates, then another template) and one that always sends the
// same template (near duplicates are the rule: they cannot rise) run for
// days without alarm; a user who starts probing with one template is
// reported within 50 requests, the run not becoming its own baseline.
func TestPromptRuns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := func(n int) []string {
		w := make([]string, n)
		for i := range w {
			w[i] = fmt.Sprintf("w%d", rng.IntN(5000))
		}
		return w
	}
	fill := func(tpl []string, slots int) uint64 {
		w := append([]string(nil), tpl...)
		for i := 0; i < slots; i++ {
			w[rng.IntN(len(w))] = fmt.Sprintf("v%d", rng.IntN(5000))
		}
		return Sketch([]byte(strings.Join(w, " ")))
	}
	tpls := [][]string{words(30), words(30), words(30)}
	for _, tc := range []struct {
		name      string
		kind      string
		n         int
		gap       time.Duration
		prompt    func(i int) uint64
		probeFrom int // 0: no probing
	}{
		{"service in batches of one template", "service", 20000, 20 * time.Second, func(i int) uint64 {
			if i%200 < 100 { // half the time batches of 25, half the time templates at random
				return fill(tpls[(i/25)%3], 3)
			}
			return fill(tpls[rng.IntN(3)], 3)
		}, 0},
		{"service with one template", "service", 20000, 20 * time.Second, func(int) uint64 { return fill(tpls[0], 2) }, 0},
		{"user starts probing", "user", 3000, 3 * time.Minute, func(int) uint64 {
			return Sketch([]byte(strings.Join(words(20), " ")))
		}, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			probe := words(25)
			for i := 0; i < tc.n; i++ {
				at = t0.Add(time.Duration(i) * tc.gap)
				o := Observation{At: at, Kind: tc.kind, ID: "p", Source: officeAddr, Model: "m1", Status: 200,
					PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: laptopHello, Prompt: tc.prompt(i)}
				if tc.probeFrom > 0 && i >= tc.probeFrom {
					o.Prompt = fill(probe, 1+rng.IntN(2))
				}
				a := e.Observe(&o)
				switch {
				case a != nil && (tc.probeFrom == 0 || i < tc.probeFrom):
					t.Fatalf("false alarm at request %d: %s", i, a.Reason)
				case a != nil:
					if !hasFeature(a, "prompt_similarity") || i-tc.probeFrom >= 50 {
						t.Fatalf("anomaly after %d probing requests: %s", i-tc.probeFrom+1, a.Reason)
					}
					t.Logf("detected after %d probing requests: %s", i-tc.probeFrom+1, a.Reason)
					return
				}
			}
			if tc.probeFrom > 0 {
				t.Fatal("probing not detected")
			}
		})
	}
}

// TestKnownClientPace: a new network at an hour rare for the principal adds
// to new_network_off_hours at half the pace when the client is one the
// principal has used: an evening session from the user's own laptop at a
// friend's does not alarm, a sustained one — an attacker replaying the
// laptop's client — still does; a new client keeps the full pace (and
// new_client).
func TestKnownClientPace(t *testing.T) {
	for _, tc := range []struct {
		name      string
		n         int
		hello     uint64
		wantAlarm int // alarm by this request; 0: none
	}{
		{"own laptop, 2 requests at 23:00", 2, laptopHello, 0},
		{"own laptop, sustained at 23:00", 50, laptopHello, 10},
		{"new client, at 23:00", 50, attackerHello, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			officeWeek(t, e, &at, 7)
			i, a := session(e, &at, t0.Add(7*24*time.Hour+14*time.Hour), tc.n, 45*time.Second, "198.51.100.7", tc.hello)
			switch {
			case tc.wantAlarm == 0 && a != nil:
				t.Fatalf("false alarm after %d requests: %s", i, a.Reason)
			case tc.wantAlarm > 0 && (a == nil || i > tc.wantAlarm):
				t.Fatalf("anomaly after %d requests (want by %d): %+v", i, tc.wantAlarm, a)
			}
			if a != nil {
				t.Logf("detected after %d requests: %s", i, a.Reason)
			}
		})
	}
}

// TestNewAccountProbing: a user whose first requests are systematic probing
// (one template, a word changed) is flagged during its warm-up on
// prompt_similarity, against the users' population rate; a new service
// whose prompts are templated from the start is not (services and agents
// are not judged on near duplicates during warm-up).
func TestNewAccountProbing(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		alarm bool
	}{{"user", true}, {"service", false}, {"agent", false}} {
		t.Run(tc.kind, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			var got *Anomaly
			n := 0
			for i := 1; i <= 30 && got == nil; i++ {
				at = t0.Add(time.Duration(i) * 7 * time.Second)
				o := Observation{At: at, Kind: tc.kind, ID: "new-" + tc.kind, Source: officeAddr, Model: "m1", Status: 200,
					PromptTokens: 40, CompletionTokens: 60, BytesOut: 400, ClientHello: laptopHello,
					Prompt: Sketch(fmt.Appendf(nil, "Classify the sentiment of this product review as positive or negative and give one reason: the %s was fine", []string{"battery", "screen", "price", "strap", "case"}[i%5]))}
				got, n = e.Observe(&o), i
			}
			switch {
			case tc.alarm && (got == nil || !hasFeature(got, "prompt_similarity")):
				t.Fatalf("a new %s probing from its first request: no prompt_similarity anomaly in 30 requests (%v)", tc.kind, got)
			case !tc.alarm && got != nil:
				t.Fatalf("a new templated %s: false alarm at request %d: %s", tc.kind, n, got.Reason)
			}
			if got != nil {
				t.Logf("flagged at request %d: %s", n, got.Reason)
			}
		})
	}
}
