package behaviorsim

import (
	"testing"
)

// TestAttacksDetected: each attack kind, injected alone into a small
// population, is detected by the engine — most instances within 50 of the
// attack's requests.
func TestAttacksDetected(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	for _, k := range Attacks {
		t.Run(k, func(t *testing.T) {
			t.Parallel()
			r, err := Run(Config{Seed: 11, Principals: 150, Days: 8, AttacksPer: 10, Only: []string{k}})
			if err != nil {
				t.Fatal(err)
			}
			a := r.Attacks[k]
			if a == nil || a.Instances != 10 {
				t.Fatalf("attack results %+v", a)
			}
			if a.Within(50) < 8 {
				t.Fatalf("%s: %d of %d detected within 50 requests (until: %v)", k, a.Within(50), a.Instances, a.Until)
			}
			t.Logf("%s: %d/%d detected, median %d requests", k, a.Detected, a.Instances, a.Median())
		})
	}
}

// TestBenignFalseAlarms: two weeks of benign traffic only, from principals
// of every kind, stays within the budget of 1 false alarm per 10,000
// requests.
func TestBenignFalseAlarms(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	r, err := Run(Config{Seed: 5, Principals: 200, Days: 14, NoAttacks: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.BenignRequests < 500000 {
		t.Fatalf("only %d benign requests", r.BenignRequests)
	}
	if r.FalseAlarmsPer10k() > 1 {
		t.Fatalf("%d false alarms in %d benign requests (%.2f per 10k): %v", r.FalseAlarms, r.BenignRequests,
			r.FalseAlarmsPer10k(), r.FalseAlarmSample)
	}
	t.Logf("%d false alarms in %d benign requests (%.3f per 10k)", r.FalseAlarms, r.BenignRequests, r.FalseAlarmsPer10k())
}

// TestStolenAt: a stolen credential used during the owner's office hours
// (often while the owner works too) is detected like one used at night
// when the attacker's client is new; the runs count the instances during
// which the owner was active. An unknown StolenAt is refused.
func TestStolenAt(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	for _, at := range []string{StolenNight, StolenDay} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			r, err := Run(Config{Seed: 12, Principals: 150, Days: 8, AttacksPer: 10, Only: []string{Stolen}, StolenAt: at})
			if err != nil {
				t.Fatal(err)
			}
			a := r.Attacks[Stolen]
			if a.Within(50) < 9 {
				t.Fatalf("%d of %d detected within 50 requests (until: %v)", a.Within(50), a.Instances, a.Until)
			}
			if a.Concurrent < 0 || a.Concurrent > a.Instances || at == StolenNight && a.Concurrent > 2 {
				t.Fatalf("owner active during %d of %d instances", a.Concurrent, a.Instances)
			}
			t.Logf("%s: %d/%d within 50, owner active during %d", at, a.Within(50), a.Instances, a.Concurrent)
		})
	}
	if _, err := Run(Config{Seed: 1, Days: 8, StolenAt: "noon"}); err == nil {
		t.Fatal("StolenAt noon accepted")
	}
}

// TestStolenUsage: a stolen credential used with the attacker's own habits
// (its own models, sizes and prompts) is detected at least as well as one
// that mimics its owner; the attacker's draws come from their own random
// stream. An unknown StolenUsage is refused.
func TestStolenUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	for _, tc := range []struct {
		usage  string
		client string
	}{{StolenMimic, StolenReplay}, {StolenOwn, StolenReplay}} {
		t.Run(tc.usage, func(t *testing.T) {
			t.Parallel()
			r, err := Run(Config{Seed: 13, Principals: 150, Days: 8, AttacksPer: 10, Only: []string{Stolen},
				StolenClient: tc.client, StolenUsage: tc.usage})
			if err != nil {
				t.Fatal(err)
			}
			a := r.Attacks[Stolen]
			if a.Instances != 10 || a.Within(50) < 8 {
				t.Fatalf("%d of %d detected within 50 requests (until: %v)", a.Within(50), a.Instances, a.Until)
			}
			t.Logf("%s, %s client: %d/%d within 50, median %d", tc.usage, tc.client, a.Within(50), a.Instances, a.Median())
		})
	}
	if _, err := Run(Config{Seed: 1, Days: 8, StolenUsage: "polite"}); err == nil {
		t.Fatal("StolenUsage polite accepted")
	}
}
