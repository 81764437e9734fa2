package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // policy.timezone and context.timezone must not depend on the host's zoneinfo

	"github.com/warden-ai/warden/internal/policy"
)

func init() {
	register("policy", "test and evaluate Rego policies (test DIR, eval --dir DIR --input FILE)", runPolicy)
}

const policyUsage = `usage:
  warden policy test DIR
  warden policy eval --dir DIR --input FILE [--json | --trace]

test  runs the Rego unit tests (rules named test_* in *.rego, usually
      *_test.rego) found under DIR with OPA's tester, printing PASS, FAIL,
      ERROR or SKIP per test and a summary. Exits 0 only if at least one
      test ran and none failed.

eval  loads the policy in DIR as 'warden serve' does, evaluates it for the
      JSON input document in FILE ('-' for standard input) and prints the
      decision the gateway would make with its explanation: the reasons,
      the obligations, and every rule that fired (name, file:line, value).
      --json prints the same as JSON; --trace adds OPA's full trace. The
      exit status is 0 whenever a decision was made, allow or deny.

The input document and the output contract are described in docs/policy.md.
`

func runPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return exitOK
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "eval":
		return policyEval(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
		return exitUsage
	}
}

// policyFlags returns a flag set that reports errors on stderr.
func policyFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden policy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: warden policy %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parsePolicyFlags parses args, returning an exit code when the command
// should stop (help or a usage error).
func parsePolicyFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	return 0, false
}

// checkDir reports a usage error unless dir is an existing directory.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

func policyTest(args []string, stdout, stderr io.Writer) int {
	fs := policyFlags("test", "test DIR", stderr)
	if code, stop := parsePolicyFlags(fs, args); stop {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitUsage
	}
	dir := fs.Arg(0)
	if err := checkDir(dir); err != nil {
		fmt.Fprintf(stderr, "warden policy test: %v\n", err)
		return exitUsage
	}
	results, err := policy.RunTests(context.Background(), dir)
	if err != nil {
		fmt.Fprintf(stderr, "warden policy test: %v\n", err)
		return exitFail
	}
	if len(results) == 0 {
		fmt.Fprintf(stderr, "warden policy test: no tests found in %s (tests are rules named test_*, usually in *_test.rego)\n", dir)
		return exitFail
	}
	var passed, failed, skipped int
	for _, r := range results {
		switch r.Outcome {
		case policy.OutcomePass:
			passed++
		case policy.OutcomeSkip:
			skipped++
		default:
			failed++
		}
		fmt.Fprintf(stdout, "%-5s %s (%s:%d, %s)\n", r.Outcome, r.Name, r.File, r.Line, r.Duration.Round(time.Microsecond))
		if r.Outcome == policy.OutcomeError && r.Err != nil {
			fmt.Fprintf(stdout, "      %s\n", indent(r.Err.Error()))
		}
		if r.Outcome != policy.OutcomePass && r.Output != "" {
			fmt.Fprintf(stdout, "      output:\n      %s\n", indent(strings.TrimRight(r.Output, "\n")))
		}
	}
	fmt.Fprintf(stdout, "--\n%d tests: %d passed, %d failed, %d skipped\n", len(results), passed, failed, skipped)
	if failed > 0 {
		return exitFail
	}
	return exitOK
}

// indent indents continuation lines to line up under a result.
func indent(s string) string { return strings.ReplaceAll(s, "\n", "\n      ") }

// evalOutput is what `warden policy eval --json` prints.
type evalOutput struct {
	Allow         bool               `json:"allow"`
	Reasons       []string           `json:"reasons"`
	Obligations   map[string]any     `json:"obligations,omitempty"`
	PolicyVersion string             `json:"policy_version"`
	Error         string             `json:"error,omitempty"`
	Fired         []policy.FiredRule `json:"fired"`
	Notes         []string           `json:"notes,omitempty"`
}

func policyEval(args []string, stdout, stderr io.Writer) int {
	fs := policyFlags("eval", "eval --dir DIR --input FILE [--json | --trace]", stderr)
	dir := fs.String("dir", "", "policy directory (all *.rego except *_test.rego, recursively)")
	inputPath := fs.String("input", "", "JSON input document; '-' reads standard input")
	asJSON := fs.Bool("json", false, "print the decision and its explanation as JSON")
	trace := fs.Bool("trace", false, "also print OPA's full evaluation trace (text output only)")
	if code, stop := parsePolicyFlags(fs, args); stop {
		return code
	}
	if *dir == "" || *inputPath == "" || fs.NArg() != 0 {
		fs.Usage()
		return exitUsage
	}
	if *asJSON && *trace {
		fmt.Fprintln(stderr, "warden policy eval: --trace prints text; it cannot be combined with --json")
		return exitUsage
	}
	if err := checkDir(*dir); err != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", err)
		return exitUsage
	}
	in, err := readInput(*inputPath)
	if err != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", err)
		return exitUsage
	}
	ctx := context.Background()
	e, err := policy.Load(ctx, *dir)
	if err != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", err)
		return exitFail
	}
	x, err := e.Explain(ctx, in)
	d := x.Decision
	// Show what the gateway would do: it denies obligations it does not
	// know and those it has no enforcer for.
	var notes []string
	if err == nil && !policy.EnforceObligations(&d) {
		policy.DenyUnenforced(&d, evalEnforced)
		if _, ok := d.Obligations[policy.ObligationRequireMFA]; ok && d.Allow {
			notes = append(notes, "require_mfa is enforced only when identity.mfa is configured; without it the gateway denies")
		}
		if _, ok := d.Obligations[policy.ObligationMask]; ok && d.Allow {
			notes = append(notes, "mask is enforced by the guards, which are on by default; with guards.enabled: false the gateway denies")
		}
	}
	out := evalOutput{Allow: d.Allow && err == nil, Reasons: d.Reasons, Obligations: d.Obligations,
		PolicyVersion: d.PolicyVersion, Fired: x.Fired, Notes: notes}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	if out.Fired == nil {
		out.Fired = []policy.FiredRule{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	var werr error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		werr = enc.Encode(out)
	} else {
		werr = printEvalText(stdout, out)
		if werr == nil && *trace {
			fmt.Fprintln(stdout, "\ntrace:")
			x.PrettyTrace(stdout)
		}
	}
	if werr != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", werr)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", err)
		return exitFail
	}
	return exitOK
}

// evalEnforced reports whether `warden serve` has an enforcer for an
// obligation kind: the policy package's own, require_mfa (when
// identity.mfa is configured) and mask (when the guards are enabled, the
// default); eval says so in a note. rate_class has none yet.
func evalEnforced(kind string) bool {
	return policy.Enforcers()[kind] != nil || kind == policy.ObligationRequireMFA || kind == policy.ObligationMask
}

// printEvalText prints the decision and its explanation for people.
func printEvalText(w io.Writer, out evalOutput) error {
	var b strings.Builder
	decision := "deny"
	if out.Allow {
		decision = "allow"
	}
	fmt.Fprintf(&b, "decision: %s\n", decision)
	fmt.Fprintf(&b, "policy:   %s\n", out.PolicyVersion)
	if out.Error != "" {
		fmt.Fprintf(&b, "error:    %s\n", indent(out.Error))
	}
	b.WriteString("reasons:\n")
	for _, r := range out.Reasons {
		fmt.Fprintf(&b, "  - %s\n", r)
	}
	if len(out.Obligations) > 0 {
		b.WriteString("obligations:\n")
		keys := make([]string, 0, len(out.Obligations))
		for k := range out.Obligations {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v, err := json.Marshal(out.Obligations[k])
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, "  %s: %s\n", k, v)
		}
	}
	for _, n := range out.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	fmt.Fprintf(&b, "rules fired (%d):\n", len(out.Fired))
	for _, f := range out.Fired {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// readInput reads the input document from path, or standard input for "-".
func readInput(path string) (policy.Input, error) {
	if path == "-" {
		return policy.ParseInput(os.Stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return policy.Input{}, err
	}
	defer f.Close()
	in, err := policy.ParseInput(f)
	if err != nil {
		return policy.Input{}, fmt.Errorf("%s: %w", path, err)
	}
	return in, nil
}
