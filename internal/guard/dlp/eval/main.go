// Command eval measures the DLP detector on a labelled dataset in the
// pii-dev.jsonl format (one {"text", "entities": [{"type","start","end"}]}
// object per line) and prints precision and recall per type.
//
//	go run ./internal/guard/dlp/eval -data ../shared/datasets/pii-dev.jsonl
//
// A prediction counts when a labelled entity of the same type has exactly
// its span; private keys count by overlap, because the dataset labels only
// the header line and warden masks the whole block. Any finding in a
// lookalike-only row is a false alarm. It exits 1 when a type is below
// -min precision or recall, or a lookalike row is flagged.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/warden-ai/warden/internal/guard/dlp"
)

func main() {
	data := flag.String("data", "../shared/datasets/pii-dev.jsonl", "labelled dataset (JSON lines)")
	minScore := flag.Float64("min", 0.98, "lowest acceptable precision and recall per type")
	errs := flag.Int("errors", 20, "how many misses and false alarms to list")
	flag.Parse()
	f, err := os.Open(*data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(2)
	}
	defer f.Close()
	rep, err := evaluate(f, dlp.New(), *errs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "eval:", err)
		os.Exit(2)
	}
	rep.write(os.Stdout)
	for _, e := range rep.Errors {
		fmt.Println("  ", e)
	}
	if bad := rep.failures(*minScore); len(bad) > 0 {
		for _, b := range bad {
			fmt.Println("FAIL:", b)
		}
		os.Exit(1)
	}
}

// failures lists what misses the bar.
func (rep *Report) failures(minScore float64) []string {
	var out []string
	for _, t := range datasetValues() {
		s := rep.Types[t]
		if s.precision() < minScore {
			out = append(out, fmt.Sprintf("%s precision %.4f < %.2f", t, s.precision(), minScore))
		}
		if s.recall() < minScore {
			out = append(out, fmt.Sprintf("%s recall %.4f < %.2f", t, s.recall(), minScore))
		}
	}
	if rep.LookalikeFlagged > 0 {
		out = append(out, fmt.Sprintf("%d lookalike-only rows flagged", rep.LookalikeFlagged))
	}
	return out
}
