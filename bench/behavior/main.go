// Command behavior evaluates the behaviour engine (internal/behavior): it
// replays synthetic benign traffic from many principals plus five attacks
// through the real engine with a simulated clock, for several seeds, and
// prints per attack the detection rate and the requests until detection,
// and the false alarms per 10,000 benign requests.
//
//	go run ./bench/behavior -seeds 1,2,3 -principals 500 -days 14
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/behavior/behaviorsim"
)

func main() {
	seeds := flag.String("seeds", "1,2,3", "comma-separated seeds; one run per seed")
	principals := flag.Int("principals", 500, "principals per run")
	days := flag.Int("days", 14, "simulated days per run (attacks start on day 4 or later)")
	attacks := flag.Int("attacks", 20, "instances of each attack per run")
	threshold := flag.Float64("threshold", behavior.DefaultThreshold, "engine threshold")
	verbose := flag.Bool("v", false, "print sample false alarms")
	flag.Parse()
	var results []*behaviorsim.Result
	var totalFA, totalBenign int
	fmt.Printf("command: go run ./bench/behavior -seeds %s -principals %d -days %d -attacks %d -threshold %g\n\n",
		*seeds, *principals, *days, *attacks, *threshold)
	fmt.Println("| seed | requests | benign | false alarms | per 10k benign | by kind | elapsed |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, f := range strings.Split(*seeds, ",") {
		seed, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			fmt.Fprintf(os.Stderr, "behavior: bad seed %q\n", f)
			os.Exit(2)
		}
		r, err := behaviorsim.Run(behaviorsim.Config{Seed: seed, Principals: *principals, Days: *days,
			AttacksPer: *attacks, Engine: behavior.Options{Threshold: *threshold}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		results = append(results, r)
		totalFA += r.FalseAlarms
		totalBenign += r.BenignRequests
		fmt.Printf("| %d | %d | %d | %d | %.3f | %v | %s |\n", seed, r.Requests, r.BenignRequests, r.FalseAlarms,
			r.FalseAlarmsPer10k(), r.FalseAlarmsBy, r.Elapsed.Round(1e7))
		if *verbose {
			for _, s := range r.FalseAlarmSample {
				fmt.Println("    false alarm:", s)
			}
			for _, k := range behaviorsim.Attacks {
				if a := r.Attacks[k]; a != nil {
					fmt.Printf("    %s: %d/%d until %v\n", k, a.Detected, a.Instances, a.Until)
				}
			}
		}
	}
	fmt.Printf("\nall seeds: %d false alarms in %d benign requests = %.3f per 10,000\n\n", totalFA, totalBenign,
		float64(totalFA)*1e4/float64(max(totalBenign, 1)))
	fmt.Print(behaviorsim.Report(results))
}
