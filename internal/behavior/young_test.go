package behavior

import (
	"testing"
	"time"
)

// Tests of the session-7 changes (docs/behavior.md): a new network at a
// rare hour judged for principals seen for less than 3 days, such a
// network held back from familiarity while its run of hours goes on even
// before there is evidence against it, and near-duplicate prompts tested
// against a threefold rise.

// youngHistory gives alice two days of history: sessions of 12 requests at
// 10:00 and 15:00 UTC on day 0 and at 11:00 on day 1, from the office
// network and her laptop. It fails the test on a false alarm.
func youngHistory(t *testing.T, e *Engine, at *time.Time) time.Time {
	t.Helper()
	day := t0.Add(-9 * time.Hour) // midnight UTC
	for _, h := range []time.Duration{10 * time.Hour, 15 * time.Hour, 24*time.Hour + 11*time.Hour} {
		if i, a := session(e, at, day.Add(h), 12, time.Minute, "10.0.0.7", laptopHello); a != nil {
			t.Fatalf("history: false alarm at %d: %s", i, a.Reason)
		}
	}
	return day
}

// TestYoungPrincipalNewNetwork: a user seen for less than 3 days has no
// hours of its own, but its kind's profile aligned on its active hours
// says which hours are far from its day: a sustained session from a new
// network there is reported on new_network_off_hours even from the user's
// own client software (a stolen credential used from the victim's build),
// an evening session from a new network or a night session from a known
// one is not.
func TestYoungPrincipalNewNetwork(t *testing.T) {
	for _, tc := range []struct {
		name      string
		at        time.Duration // after midnight UTC of day 1
		src       string
		n         int
		wantAlarm bool
	}{
		{"own client, new network, 02:00 next night", 26 * time.Hour, "203.0.113.7", 50, true},
		{"own client, new network, 20:00 (evening)", 20 * time.Hour, "203.0.113.7", 50, false},
		{"own client, office network, 02:00", 26 * time.Hour, "10.0.0.7", 50, false},
		{"own client, new network, 02:00, 3 requests", 26 * time.Hour, "203.0.113.7", 3, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }})
			day := youngHistory(t, e, &at)
			start := day.Add(24*time.Hour + tc.at)
			if st := stateOf(e, "user", "alice"); start.Unix()-st.firstSeen >= hoursAfter {
				t.Fatal("not a young principal")
			}
			i, a := session(e, &at, start, tc.n, 40*time.Second, tc.src, laptopHello)
			switch {
			case tc.wantAlarm && (a == nil || !hasFeature(a, "new_network_off_hours") || i > 40):
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

// TestRareNewNetworkHeldBack: a new network used at an hour rare for the
// principal, in a session that crosses into the next hour, is not counted
// as familiar at that hour even when no evidence was gathered against it
// (here: during the warm-up, which does not judge networks); the same at
// an ordinary hour is counted as before.
func TestRareNewNetworkHeldBack(t *testing.T) {
	for _, tc := range []struct {
		name        string
		at          time.Duration // after midnight UTC of day 2
		wantCounted bool
	}{
		{"02:59:40, rare", 2*time.Hour + 59*time.Minute + 40*time.Second, false},
		{"12:59:40, usual", 12*time.Hour + 59*time.Minute + 40*time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var at time.Time
			e := newEngine(t, Options{Now: func() time.Time { return at }, Warmup: 1000})
			day := youngHistory(t, e, &at)
			at = day.Add(2*24*time.Hour + tc.at)
			for i := 1; i <= 6; i++ { // (without prompts: the warm-up judges users' near duplicates)
				o := Observation{At: at, Kind: "user", ID: "alice", Source: mustAddr("203.0.113.7"), Model: "m1", Status: 200,
					PromptTokens: 150, CompletionTokens: 200, BytesOut: 1100, ClientHello: laptopHello}
				if a := e.Observe(&o); a != nil {
					t.Fatalf("alarm at %d during the warm-up: %s", i, a.Reason)
				}
				at = at.Add(30 * time.Second)
			}
			st := stateOf(e, "user", "alice")
			if st.flags&flagGraduated != 0 {
				t.Fatal("warm-up over")
			}
			counted := false
			nk := uint32(mix64(prefixKey(mustAddr("203.0.113.7"))^e.salt)) | 1
			for j, n := range st.nets {
				if n == nk && st.netN[j] > 0 {
					counted = true
				}
			}
			if counted != tc.wantCounted {
				t.Fatalf("new network counted: %v, want %v (nets %v, counts %v)", counted, tc.wantCounted, st.nets, st.netN)
			}
		})
	}
}

// TestPromptAltRate: near duplicates are tested against a threefold rise
// (at least 50%) where other events are tested against a sixfold one, so
// that probing whose prompts are near duplicates only about two times in
// three drives the statistic upwards from a baseline of 15%; at the
// baseline rate the statistic still drifts downwards, and a common event
// is tested as before.
func TestPromptAltRate(t *testing.T) {
	drift := func(q, p0, p1 float32) float32 {
		return q*bernoulliStep(true, p0, p1) + (1-q)*bernoulliStep(false, p0, p1)
	}
	for _, tc := range []struct {
		p0, q     float32
		wantUp    bool // drift at rate q with the prompt alternative
		sixfoldUp bool // … with the sixfold one
	}{
		{0.15, 0.6, true, true},
		{0.15, 0.4, true, false},
		{0.2, 0.5, true, false},
		{0.05, 0.05, false, false},
		{0.15, 0.15, false, false},
		{0.3, 0.3, false, false},
	} {
		p1 := altRateBy(tc.p0, promptAltFactor)
		if up := drift(tc.q, tc.p0, p1) > 0; up != tc.wantUp {
			t.Errorf("p0 %v, rate %v: prompt alternative %v drifts up: %v", tc.p0, tc.q, p1, up)
		}
		if up := drift(tc.q, tc.p0, altRate(tc.p0)) > 0; up != tc.sixfoldUp {
			t.Errorf("p0 %v, rate %v: sixfold alternative drifts up: %v", tc.p0, tc.q, up)
		}
	}
	for _, p0 := range []float32{0.3, 0.5, 0.8} {
		if a, b := altRateBy(p0, promptAltFactor), altRate(p0); a != b {
			t.Errorf("p0 %v: prompt alternative %v, other events %v", p0, a, b)
		}
	}
}
