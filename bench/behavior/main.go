// Command behavior evaluates the behaviour engine (internal/behavior): it
// replays synthetic benign traffic from many principals plus five attacks
// through the real engine with a simulated clock, for several seeds, and
// prints per attack the detection rate and the requests until detection,
// and the false alarms per 10,000 benign requests.
//
// The engine's constants were chosen on the -seeds (train) runs; -heldout
// seeds, never looked at while tuning, are reported separately:
//
//	go run ./bench/behavior -seeds 1-5 -heldout 101-105 -principals 500 -days 14
//
// -client says what the engine learns of the client software (tls: the TLS
// fingerprint, ua: the User-Agent only, off: nothing, the engine before
// client fingerprints); -stolen-client which client a stolen credential is
// used from (new, ua: a new one copying the victim's User-Agent, replay:
// the victim's, population: one drawn by popularity); -stolen-at when (night:
// 01:00–04:00 of the owner's time zone; day: the owner's office hours,
// often while the owner is active too); -stolen-usage how (mimic: with the
// owner's models, sizes and prompt style; own: with the attacker's own
// habits). -v prints the misses, false alarms
// by driving features and a sample of them; -trace user-0042 writes one
// principal's requests and anomalies to stderr.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/behavior/behaviorsim"
)

func main() {
	seeds := flag.String("seeds", "1-5", "train seeds: comma-separated seeds or ranges (1-5); one run per seed")
	heldout := flag.String("heldout", "", "held-out seeds (same syntax), reported separately; e.g. 101-105")
	principals := flag.Int("principals", 500, "principals per run")
	days := flag.Int("days", 14, "simulated days per run (attacks start on day 4 or later)")
	attacks := flag.Int("attacks", 20, "instances of each attack per run")
	threshold := flag.Float64("threshold", behavior.DefaultThreshold, "engine threshold")
	client := flag.String("client", behaviorsim.ClientTLS, "what the engine learns of the client software: tls (TLS fingerprint and User-Agent), ua (User-Agent only: a plaintext listener) or off")
	stolen := flag.String("stolen-client", behaviorsim.StolenNew, "the stolen credential's client: new (never used by the principal), ua (new, with the victim's User-Agent), replay (the victim's TLS fingerprint and User-Agent) or population (drawn by popularity)")
	stolenAt := flag.String("stolen-at", behaviorsim.StolenNight, "when the stolen credential is used: night (01:00-04:00 of the owner's time zone) or day (the owner's office hours: often concurrently with the owner)")
	usage := flag.String("stolen-usage", behaviorsim.StolenMimic, "how the stolen credential is used: mimic (the owner's models, sizes and prompt style) or own (the attacker's own habits, a user profile drawn like any other)")
	only := flag.String("only", "", "comma-separated attack kinds to inject (default all)")
	verbose := flag.Bool("v", false, "print misses and false alarms by driving features")
	trace := flag.String("trace", "", "write the requests of this principal (e.g. user-0042) and the engine's verdicts to stderr")
	flag.Parse()
	fmt.Printf("command: go run ./bench/behavior -seeds %s -heldout %s -principals %d -days %d -attacks %d -threshold %g -client %s -stolen-client %s -stolen-at %s",
		*seeds, *heldout, *principals, *days, *attacks, *threshold, *client, *stolen, *stolenAt)
	if *usage != behaviorsim.StolenMimic {
		fmt.Printf(" -stolen-usage %s", *usage)
	}
	if *only != "" {
		fmt.Printf(" -only %s", *only)
	}
	fmt.Println()
	var kinds []string
	if *only != "" {
		kinds = strings.Split(*only, ",")
	}
	sc := simConfig{principals: *principals, days: *days, attacks: *attacks, threshold: *threshold, client: *client,
		stolen: *stolen, stolenAt: *stolenAt, usage: *usage, only: kinds, verbose: *verbose, trace: *trace}
	for _, g := range []struct{ name, list string }{{"train seeds", *seeds}, {"held-out seeds", *heldout}} {
		if g.list == "" {
			continue
		}
		list, err := parseSeeds(g.list)
		if err != nil {
			fmt.Fprintln(os.Stderr, "behavior:", err)
			os.Exit(2)
		}
		fmt.Printf("\n### %s %s\n\n", g.name, g.list)
		run(list, sc)
	}
}

type simConfig struct {
	principals, days, attacks int
	threshold                 float64
	client, stolen, stolenAt  string
	usage                     string
	only                      []string
	verbose                   bool
	trace                     string
}

func run(seeds []uint64, c simConfig) {
	verbose := c.verbose
	var results []*behaviorsim.Result
	var totalFA, totalBenign int
	fmt.Println("| seed | requests | benign | false alarms | per 10k benign | principals | by kind | elapsed |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, seed := range seeds {
		r, err := behaviorsim.Run(behaviorsim.Config{Seed: seed, Principals: c.principals, Days: c.days,
			AttacksPer: c.attacks, Only: c.only, Engine: behavior.Options{Threshold: c.threshold},
			Client: c.client, StolenClient: c.stolen, StolenAt: c.stolenAt, StolenUsage: c.usage, Trace: c.trace, TraceOut: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results = append(results, r)
		totalFA += r.FalseAlarms
		totalBenign += r.BenignRequests
		fmt.Printf("| %d | %d | %d | %d | %.3f | %d | %v | %s |\n", seed, r.Requests, r.BenignRequests, r.FalseAlarms,
			r.FalseAlarmsPer10k(), r.FalseAlarmPrincipals, r.FalseAlarmsBy, r.Elapsed.Round(1e7))
		if verbose {
			for _, m := range r.FalseAlarmSample {
				fmt.Println("    false alarm:", m)
			}
			for _, m := range r.Misses {
				fmt.Println("    miss:", m)
			}
			type kv struct {
				k string
				n int
			}
			var fa []kv
			for k, n := range r.FalseAlarmsByFeatures {
				fa = append(fa, kv{k, n})
			}
			sort.Slice(fa, func(i, j int) bool { return fa[i].n > fa[j].n || fa[i].n == fa[j].n && fa[i].k < fa[j].k })
			for _, x := range fa {
				fmt.Printf("    false alarms %4d  %s\n", x.n, x.k)
			}
		}
	}
	fmt.Printf("\nall: %d false alarms in %d benign requests = %.3f per 10,000\n\n", totalFA, totalBenign,
		float64(totalFA)*1e4/float64(max(totalBenign, 1)))
	fmt.Print(behaviorsim.Report(results))
}

// parseSeeds parses "1,2,7-9".
func parseSeeds(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad seed %q", f)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a || b-a > 1000 {
				return nil, fmt.Errorf("bad seed range %q", f)
			}
		}
		for x := a; x <= b; x++ {
			out = append(out, x)
		}
	}
	return out, nil
}
