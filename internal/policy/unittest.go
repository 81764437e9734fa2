package policy

import (
	"cmp"
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Test outcomes.
const (
	OutcomePass  = "PASS"
	OutcomeFail  = "FAIL"
	OutcomeError = "ERROR"
	OutcomeSkip  = "SKIP"
)

// TestResult is the outcome of one Rego unit test (a rule named test_*).
type TestResult struct {
	Name     string        // package and rule, e.g. "data.warden.authz_test.test_allow"
	File     string        // file that defines the test
	Line     int           // line of the test rule
	Outcome  string        // OutcomePass, OutcomeFail, OutcomeError or OutcomeSkip
	Err      error         // the evaluation error when Outcome is OutcomeError
	Duration time.Duration // time to evaluate the test
	Output   string        // what the test printed with print()
}

// testTimeout bounds the evaluation of one Rego test.
const testTimeout = 5 * time.Second

// RunTests runs the Rego unit tests found in the *.rego files under dir
// (policies and *_test.rego together, Rego v1) with OPA's tester. Built-in
// errors fail a test, as they fail a decision in the gateway. Results are
// sorted by file and line. It returns an error only if the files cannot be
// loaded or compiled; a dir without tests yields no results.
func RunTests(ctx context.Context, dir string) ([]TestResult, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: test: %w", err)
	}
	return s.runTests(ctx)
}

// runTests runs the tests of one snapshot, so that what is tested is
// exactly what is compiled from the same read. A panic while the runner
// compiles the modules is an error, as in compile. (The tests themselves
// run on goroutines of OPA's tester, out of reach of a recover here; only
// a faulty built-in could panic there.)
func (s *snapshot) runTests(ctx context.Context) (results []TestResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			results, err = nil, fmt.Errorf("policy: test: %w", &panicError{value: r, stack: debug.Stack()})
		}
	}()
	return s.runTestsUnguarded(ctx)
}

func (s *snapshot) runTestsUnguarded(ctx context.Context) ([]TestResult, error) {
	modules := make(map[string]*ast.Module, len(s.files)+len(s.tests))
	for _, f := range slices.Concat(s.files, s.tests) {
		m, err := ast.ParseModuleWithOpts(f.path, string(f.src),
			ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
		if err != nil {
			return nil, fmt.Errorf("policy: test: parse: %w", err)
		}
		modules[f.path] = m
	}
	store := inmem.New()
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("policy: test: %w", err)
	}
	defer store.Abort(ctx, txn)

	runner := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetModules(modules).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		SetTimeout(testTimeout)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return nil, fmt.Errorf("policy: test: compile: %w", err)
	}
	var results []TestResult
	for r := range ch {
		tr := TestResult{
			Name:     r.Package + "." + r.Name,
			Err:      r.Error,
			Duration: r.Duration,
			Output:   string(r.Output),
		}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		switch {
		case r.Skip:
			tr.Outcome = OutcomeSkip
		case r.Error != nil:
			tr.Outcome = OutcomeError
		case r.Fail:
			tr.Outcome = OutcomeFail
		default:
			tr.Outcome = OutcomePass
		}
		results = append(results, tr)
	}
	if err := ctx.Err(); err != nil {
		return results, fmt.Errorf("policy: test: %w", err)
	}
	slices.SortFunc(results, func(a, b TestResult) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), strings.Compare(a.Name, b.Name))
	})
	return results, nil
}
