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
	verbose := flag.Bool("v", false, "print misses and false alarms by driving features")
	flag.Parse()
	fmt.Printf("command: go run ./bench/behavior -seeds %s -heldout %s -principals %d -days %d -attacks %d -threshold %g\n",
		*seeds, *heldout, *principals, *days, *attacks, *threshold)
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
		run(list, *principals, *days, *attacks, *threshold, *verbose)
	}
}

func run(seeds []uint64, principals, days, attacks int, threshold float64, verbose bool) {
	var results []*behaviorsim.Result
	var totalFA, totalBenign int
	fmt.Println("| seed | requests | benign | false alarms | per 10k benign | by kind | elapsed |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, seed := range seeds {
		r, err := behaviorsim.Run(behaviorsim.Config{Seed: seed, Principals: principals, Days: days,
			AttacksPer: attacks, Engine: behavior.Options{Threshold: threshold}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results = append(results, r)
		totalFA += r.FalseAlarms
		totalBenign += r.BenignRequests
		fmt.Printf("| %d | %d | %d | %d | %.3f | %v | %s |\n", seed, r.Requests, r.BenignRequests, r.FalseAlarms,
			r.FalseAlarmsPer10k(), r.FalseAlarmsBy, r.Elapsed.Round(1e7))
		if verbose {
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
