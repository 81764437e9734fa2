// Package policy decides whether an exchange may proceed by evaluating the
// operator's Rego policies (package warden.authz) in an embedded OPA, and
// guarantees deny by default: no allow, a deny, an error, a panic or an
// output it cannot read never yields an allow.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/warden-ai/warden/internal/gateway"
)

// Package is the Rego package warden evaluates.
const Package = "warden.authz"

// Reasons warden records in a Decision when the policy could not give its own.
const (
	ReasonDefaultDeny = "default deny: no policy rule allowed the request"
	ReasonError       = "policy evaluation failed"
	ReasonUnavailable = "policy engine unavailable"
)

// Errors returned by Decide, to be told apart with errors.Is.
var (
	// ErrEvaluation means the policy is at fault: a Rego runtime error
	// (conflicting values, a failing built-in) or an output that breaks the
	// contract (allow not a boolean, reasons not strings, ...).
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrUnavailable means the engine could not produce a decision: the
	// caller's context ended, or the evaluation panicked.
	ErrUnavailable = errors.New("policy engine unavailable")
)

// query evaluates only the four output rules. Each is wrapped in a
// comprehension so that an undefined rule yields an empty array instead of
// making the whole query undefined, and helper rules are evaluated only when
// an output rule needs them.
const query = `allow := [x | x := data.warden.authz.allow]; ` +
	`deny := [x | x := data.warden.authz.deny]; ` +
	`reasons := [x | x := data.warden.authz.reasons]; ` +
	`obligations := [x | x := data.warden.authz.obligations]`

// Engine is a compiled policy with its query prepared once. It is immutable
// and safe for concurrent use; to change the policy, Load a new Engine.
type Engine struct {
	query   rego.PreparedEvalQuery
	version string
	files   []string
}

// policyFile is one loaded .rego file.
type policyFile struct {
	rel  string // path relative to the policy dir, slash-separated
	path string // path as opened, used in error messages
	src  []byte
}

// Load reads every *.rego file under dir (recursively, *_test.rego
// excluded), compiles them once as Rego v1 and prepares the decision query.
// It fails if dir holds no policy file, if a file does not parse or compile
// (OPA's error names file:line), or if no file declares package warden.authz.
func Load(ctx context.Context, dir string) (*Engine, error) {
	files, err := readPolicyFiles(dir)
	if err != nil {
		return nil, err
	}
	modules := make(map[string]*ast.Module, len(files))
	found := false
	for _, f := range files {
		m, err := ast.ParseModuleWithOpts(f.path, string(f.src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return nil, fmt.Errorf("policy: parse: %w", err)
		}
		if m.Package.Path.String() == "data."+Package {
			found = true
		}
		modules[f.path] = m
	}
	if !found {
		return nil, fmt.Errorf("policy: load %s: no file declares package %s", dir, Package)
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	pq, err := rego.New(
		rego.Query(query),
		rego.Compiler(compiler),
		rego.SetRegoVersion(ast.RegoV1),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(keepTerm),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare query: %w", err)
	}
	e := &Engine{query: pq, version: version(files)}
	for _, f := range files {
		e.files = append(e.files, f.rel)
	}
	return e, nil
}

// noMetrics skips the per-evaluation metrics OPA would otherwise allocate.
var noMetrics = metrics.NoOp()

// keepTerm makes the prepared query return *ast.Term values as they are, so
// that the output is read without a round trip through Go values.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

// readPolicyFiles returns the policy files under dir sorted by relative path.
func readPolicyFiles(dir string) ([]policyFile, error) {
	var files []policyFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			return nil
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		files = append(files, policyFile{rel: filepath.ToSlash(rel), path: path, src: src})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: load %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("policy: load %s: no policy files (*.rego other than *_test.rego)", dir)
	}
	slices.SortFunc(files, func(a, b policyFile) int { return strings.Compare(a.rel, b.rel) })
	return files, nil
}

// version hashes the files' relative paths and contents, each
// length-prefixed so that no two different sets hash alike.
func version(files []policyFile) string {
	h := sha256.New()
	var n [8]byte
	for _, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.rel)))
		h.Write(n[:])
		h.Write([]byte(f.rel))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.src)))
		h.Write(n[:])
		h.Write(f.src)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Version identifies the loaded policy: "sha256:" and the hex SHA-256 over
// the sorted relative paths and contents of the policy files.
func (e *Engine) Version() string { return e.version }

// Files returns the loaded policy files, relative to the policy dir, sorted.
func (e *Engine) Files() []string { return slices.Clone(e.files) }

// Decide evaluates the policy for in. The decision denies unless the
// policy's allow is true and its deny is empty; its Reasons are the deny
// reasons, the allow reasons, or ReasonDefaultDeny. An error always comes
// with a deny (Reasons ReasonError or ReasonUnavailable); it wraps
// ErrEvaluation when the policy is at fault and ErrUnavailable when the
// engine is. PolicyVersion is always set. Obligations are returned as the
// policy gave them; see EnforceObligations.
func (e *Engine) Decide(ctx context.Context, in Input) (gateway.Decision, error) {
	return e.decide(ctx, func() rego.EvalOption { return rego.EvalParsedInput(in.Value()) })
}

// decide evaluates the policy. input returns the option that supplies the
// input document; it is called under the same panic guard as the evaluation.
func (e *Engine) decide(ctx context.Context, input func() rego.EvalOption) (d gateway.Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = e.fail(ErrUnavailable, &panicError{value: r, stack: debug.Stack()})
		}
	}()
	if err := ctx.Err(); err != nil {
		return e.fail(ErrUnavailable, err)
	}
	// Cancel the evaluation when ctx ends. context.AfterFunc costs less than
	// the goroutine OPA would otherwise start for every evaluation.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	rs, err := e.query.Eval(ctx,
		input(),
		rego.EvalExternalCancel(cancel),
		rego.EvalMetrics(noMetrics),
	)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil || topdown.IsCancel(err) {
			return e.fail(ErrUnavailable, errors.Join(cerr, err))
		}
		return e.fail(ErrEvaluation, err)
	}
	out, err := readOutput(rs)
	if err != nil {
		return e.fail(ErrEvaluation, err)
	}
	d = gateway.Decision{PolicyVersion: e.version, Obligations: out.obligations}
	switch {
	case len(out.deny) > 0:
		d.Reasons = out.deny
	case out.allow:
		d.Allow = true
		d.Reasons = out.reasons
	default:
		d.Reasons = []string{ReasonDefaultDeny}
	}
	return d, nil
}

// fail returns the deny that goes with an error of the given kind
// (ErrEvaluation or ErrUnavailable) and the wrapped error.
func (e *Engine) fail(kind, err error) (gateway.Decision, error) {
	reason := ReasonError
	if kind == ErrUnavailable {
		reason = ReasonUnavailable
	}
	return gateway.Decision{Reasons: []string{reason}, PolicyVersion: e.version},
		fmt.Errorf("policy: decide: %w: %w", kind, err)
}

// panicError is a panic recovered during evaluation.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }
