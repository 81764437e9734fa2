package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/policy"
)

func init() {
	register("policy", "test and evaluate Rego policies (test DIR, eval --dir DIR --input FILE)", runPolicy)
}

const policyUsage = `usage:
  warden policy test DIR
  warden policy eval --dir DIR --input FILE

test  runs the Rego unit tests (rules named test_* in *.rego, usually
      *_test.rego) found under DIR with OPA's tester, printing PASS, FAIL,
      ERROR or SKIP per test and a summary. Exits 0 only if at least one
      test ran and none failed.

eval  loads the policy in DIR as 'warden serve' does, evaluates it for the
      JSON input document in FILE ('-' for standard input) and prints the
      decision as JSON: allow, reasons, obligations, policy_version. The
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

// evalOutput is what `warden policy eval` prints.
type evalOutput struct {
	Allow         bool           `json:"allow"`
	Reasons       []string       `json:"reasons"`
	Obligations   map[string]any `json:"obligations,omitempty"`
	PolicyVersion string         `json:"policy_version"`
	Error         string         `json:"error,omitempty"`
}

func policyEval(args []string, stdout, stderr io.Writer) int {
	fs := policyFlags("eval", "eval --dir DIR --input FILE", stderr)
	dir := fs.String("dir", "", "policy directory (all *.rego except *_test.rego, recursively)")
	inputPath := fs.String("input", "", "JSON input document; '-' reads standard input")
	if code, stop := parsePolicyFlags(fs, args); stop {
		return code
	}
	if *dir == "" || *inputPath == "" || fs.NArg() != 0 {
		fs.Usage()
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
	d, err := e.Decide(ctx, in)
	// Show what the gateway would do: it denies obligations it cannot enforce.
	policy.EnforceObligations(&d)
	out := evalOutput{Allow: d.Allow && err == nil, Reasons: d.Reasons, Obligations: d.Obligations, PolicyVersion: d.PolicyVersion}
	if out.Reasons == nil {
		out.Reasons = []string{}
	}
	if err != nil {
		out.Error = err.Error()
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if werr := enc.Encode(out); werr != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", werr)
		return exitFail
	}
	if err != nil {
		fmt.Fprintf(stderr, "warden policy eval: %v\n", err)
		return exitFail
	}
	return exitOK
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
