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
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
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
	// contract (allow not a boolean, reasons not strings, a malformed
	// obligation, ...).
	ErrEvaluation = errors.New("policy evaluation failed")
	// ErrUnavailable means the engine could not produce a decision: the
	// caller's context ended, or the evaluation panicked.
	ErrUnavailable = errors.New("policy engine unavailable")
)

// outputs are the four output rules, in the order of the query's result
// variables.
var outputs = [...]ast.Var{"allow", "deny", "reasons", "obligations"}

// Indexes into outputs.
const (
	outAllow = iota
	outDeny
	outReasons
	outObligations
)

// decisionQuery builds the query that evaluates only the output rules the
// policy defines; helper rules are evaluated only when an output rule
// needs them. A rule that is always defined (a default, a multi-value
// rule, an object built from rules with longer heads) is bound directly;
// any other rule is wrapped in a comprehension, so that an undefined rule
// yields an empty array instead of making the whole query undefined. wrapped
// records which. A rule the policy does not define is left out: its value
// is undefined. Unification (=) rather than assignment (:=) keeps the
// result variables' names: the compiler rewrites := variables.
//
// A wrong guess can only fail closed: if a rule bound directly were
// undefined, the query would have no result, and Decide denies with an
// error.
func decisionQuery(c *ast.Compiler) (query string, wrapped [len(outputs)]bool) {
	var parts []string
	for i, name := range outputs {
		ref := ast.MustParseRef("data." + Package + "." + string(name))
		node := c.RuleTree.Find(ref)
		if node == nil {
			continue
		}
		if alwaysDefined(node, len(ref)) {
			parts = append(parts, fmt.Sprintf("%s = %s", name, ref))
			continue
		}
		wrapped[i] = true
		parts = append(parts, fmt.Sprintf("%s = [x%d | x%d = %s]", name, i, i, ref))
	}
	if len(parts) == 0 {
		// No output rule at all: the query must still have one result.
		parts = append(parts, "true")
	}
	return strings.Join(parts, "; "), wrapped
}

// alwaysDefined reports whether the document at a rule tree node (whose
// path has n terms) is defined whatever the input: it has a default or a
// constant rule, or every rule there is multi-value (an empty set when
// none matches) or has a head longer than the path (an object, empty when
// none matches), as has a node with only rules below it.
func alwaysDefined(node *ast.TreeNode, n int) bool {
	rules := make([]*ast.Rule, 0, len(node.Values))
	for _, r := range node.Values {
		if len(r.Head.Args) > 0 {
			return false
		}
		if r.Default || constRule(r) {
			return true
		}
		rules = append(rules, r)
	}
	if len(rules) == 0 {
		return len(node.Children) > 0
	}
	for _, r := range rules {
		// The head's reference is relative to the package: the rule's full
		// path is the package's path and the head's. A single-value rule
		// whose full path is longer than the node's (obligations[k] := v)
		// builds an object there, empty when none matches.
		if r.Head.RuleKind() != ast.MultiValue && ruleRefLen(r) <= n {
			return false
		}
	}
	return true
}

// ruleRefLen is the number of terms in the rule's full path (package path
// and head reference); a rule outside a module is taken as its head alone.
func ruleRefLen(r *ast.Rule) int {
	n := len(r.Head.Ref())
	if r.Module != nil && r.Module.Package != nil {
		n += len(r.Module.Package.Path)
	}
	return n
}

// Engine is a compiled policy with its query prepared once. It is immutable
// and safe for concurrent use; to change the policy, Load a new Engine and
// Swap it into the Stage.
type Engine struct {
	compiler *ast.Compiler
	qc       ast.QueryCompiler
	query    ast.Body           // compiled
	wrapped  [len(outputs)]bool // which outputs the query wraps in an array
	consts   *constNode         // constant rules, served without evaluation
	folded   *constNode         // rules that cannot depend on the request, evaluated at load
	store    storage.Store
	version  string
	files    []string
	loadedAt time.Time
	fields   fieldSet // the input fields the policy can reach; see inputUse
}

// policyFile is one loaded .rego file.
type policyFile struct {
	rel  string // path relative to the policy dir, slash-separated
	path string // path as opened, used in error messages
	src  []byte
}

// snapshot is one read of a policy directory: the policy files and the
// test files, each sorted by relative path. Compiling and testing the same
// snapshot means the tests that pass are the tests of the policy loaded.
type snapshot struct {
	dir   string
	files []policyFile // *.rego except *_test.rego
	tests []policyFile // *_test.rego
}

// Load reads every *.rego file under dir (recursively, *_test.rego
// excluded), compiles them once as Rego v1 and prepares the decision query.
// It fails if dir holds no policy file, if a file does not parse or compile
// (OPA's error names file:line), or if no file declares package warden.authz.
func Load(ctx context.Context, dir string) (*Engine, error) {
	s, err := readSnapshot(dir)
	if err != nil {
		return nil, err
	}
	return s.compile(ctx)
}

// compile builds the engine of the snapshot's policy files. A panic in
// OPA's parser or compiler is an error: a policy file must never take
// warden down, least of all a file edited while warden runs.
func (s *snapshot) compile(ctx context.Context) (e *Engine, err error) {
	defer func() {
		if r := recover(); r != nil {
			e, err = nil, fmt.Errorf("policy: compile %s: %w", s.dir, &panicError{value: r, stack: debug.Stack()})
		}
	}()
	return s.compileUnguarded(ctx)
}

func (s *snapshot) compileUnguarded(ctx context.Context) (*Engine, error) {
	if len(s.files) == 0 {
		return nil, fmt.Errorf("policy: load %s: no policy files (*.rego other than *_test.rego)", s.dir)
	}
	modules, err := s.parse()
	if err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	query, wrapped := decisionQuery(compiler)
	body, err := ast.ParseBodyWithOpts(query, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("policy: prepare query: %w", err)
	}
	qc := compiler.QueryCompiler()
	compiled, err := qc.Compile(body)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare query: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: load %s: %w", s.dir, err)
	}
	store := inmem.New()
	consts := constRules(compiler)
	e := &Engine{
		compiler: compiler,
		qc:       qc,
		query:    compiled,
		wrapped:  wrapped,
		consts:   consts,
		folded:   foldRules(ctx, compiler, qc, store, consts),
		store:    store,
		version:  version(s.files),
		loadedAt: time.Now(),
		fields:   inputUse(compiler.Modules),
	}
	for _, f := range s.files {
		e.files = append(e.files, f.rel)
	}
	return e, nil
}

// parse parses the snapshot's policy files as Rego v1 and checks that one
// declares package warden.authz.
func (s *snapshot) parse() (map[string]*ast.Module, error) {
	modules := make(map[string]*ast.Module, len(s.files))
	found := false
	for _, f := range s.files {
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
		return nil, fmt.Errorf("policy: load %s: no file declares package %s", s.dir, Package)
	}
	return modules, nil
}

// noMetrics skips the per-evaluation metrics OPA would otherwise allocate.
var noMetrics = metrics.NoOp()

// noBaseCache is a base-document cache that never holds anything: warden
// loads no data documents, so there is nothing to cache, and OPA would
// otherwise allocate a cache for every evaluation.
type noBaseCache struct{}

func (noBaseCache) Get(ast.Ref) ast.Value  { return nil }
func (noBaseCache) Put(ast.Ref, ast.Value) {}

var _ topdown.BaseCache = noBaseCache{}

// readSnapshot reads the policy and test files under dir, each sorted by
// relative path. Symbolic links to files are followed; other non-regular
// files are skipped, and so are files and directories whose names start
// with a dot: editors' temporary files, and the "..data" and
// "..<timestamp>" entries through which Kubernetes swaps a mounted
// ConfigMap (its files are symbolic links into them, so each is read once).
func readSnapshot(dir string) (*snapshot, error) {
	s := &snapshot{dir: dir}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasPrefix(name, ".") && path != dir {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(name, ".rego") {
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
		f := policyFile{rel: filepath.ToSlash(rel), path: path, src: src}
		if strings.HasSuffix(name, "_test.rego") {
			s.tests = append(s.tests, f)
		} else {
			s.files = append(s.files, f)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: load %s: %w", dir, err)
	}
	byRel := func(a, b policyFile) int { return strings.Compare(a.rel, b.rel) }
	slices.SortFunc(s.files, byRel)
	slices.SortFunc(s.tests, byRel)
	return s, nil
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

// fingerprint identifies the snapshot's policy and test files together:
// a change to either is a change to reload.
func (s *snapshot) fingerprint() string {
	return version(s.files) + "/" + version(s.tests)
}

// Version identifies the loaded policy: "sha256:" and the hex SHA-256 over
// the sorted relative paths and contents of the policy files.
func (e *Engine) Version() string { return e.version }

// LoadedAt returns when the engine was compiled.
func (e *Engine) LoadedAt() time.Time { return e.loadedAt }

// Files returns the loaded policy files, relative to the policy dir, sorted.
func (e *Engine) Files() []string { return slices.Clone(e.files) }

// Decide evaluates the policy for in. The decision denies unless the
// policy's allow is true and its deny is empty; its Reasons are the deny
// reasons, the allow reasons, or ReasonDefaultDeny. An error always comes
// with a deny (Reasons ReasonError or ReasonUnavailable); it wraps
// ErrEvaluation when the policy is at fault (a malformed value of a known
// obligation included) and ErrUnavailable when the engine is.
// PolicyVersion is always set. Obligations are returned as the policy gave
// them; see EnforceObligations and Stage.Enforce.
func (e *Engine) Decide(ctx context.Context, in Input) (gateway.Decision, error) {
	return e.decide(ctx, &in, &e.fields, nil)
}

// decide evaluates the policy for in. It builds the input document with
// the fields in use (the engine's own, or allFields), under the same panic
// guard as the evaluation; in is not kept. tracer, if not nil, receives
// OPA's trace events (Explain); the gateway passes nil and pays nothing
// for tracing.
func (e *Engine) decide(ctx context.Context, in *Input, use *fieldSet, tracer topdown.QueryTracer) (d gateway.Decision, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = e.fail(ErrUnavailable, &panicError{value: r, stack: debug.Stack()})
		}
	}()
	if err := ctx.Err(); err != nil {
		return e.fail(ErrUnavailable, err)
	}
	v, err := in.value(use)
	if err != nil {
		return e.fail(ErrUnavailable, fmt.Errorf("input: %w", err))
	}
	// r reads the results and tells OPA when ctx has ended; see reader.
	r := readers.Get().(*reader)
	defer r.release()
	r.wrapped, r.ctx.ctx, r.input.Value = &e.wrapped, ctx, v
	txn, err := e.store.NewTransaction(ctx)
	if err != nil {
		return e.fail(ErrUnavailable, fmt.Errorf("store: %w", err))
	}
	defer e.store.Abort(ctx, txn)
	q := topdown.NewQuery(e.query).
		WithQueryCompiler(e.qc).
		WithCompiler(e.compiler).
		WithStore(e.store).
		WithTransaction(txn).
		WithInput(&r.input).
		WithStrictBuiltinErrors(true).
		WithCancel(&r.ctx).
		WithMetrics(noMetrics).
		WithBaseCache(noBaseCache{})
	if tracer != nil {
		// Traced, every rule is evaluated, so the explanation lists the
		// constant rules a decision used too. The trace keeps the input:
		// give it a term of its own rather than the pooled reader's.
		q = q.WithInput(ast.NewTerm(v)).WithQueryTracer(tracer)
	} else {
		// The cache answers for the constant and folded rules, and is
		// reused by the next decision once this one is read.
		cache := newDecisionCache(e.consts, e.folded)
		defer cache.release()
		q = q.WithVirtualCache(cache)
	}
	err = q.Iter(ctx, r.fn)
	out, n := r.out, r.n
	if err != nil {
		if cerr := ctx.Err(); cerr != nil || topdown.IsCancel(err) {
			return e.fail(ErrUnavailable, errors.Join(cerr, err))
		}
		return e.fail(ErrEvaluation, err)
	}
	if n != 1 {
		return e.fail(ErrEvaluation, fmt.Errorf("query returned %d results, want 1", n))
	}
	if err := checkObligations(out.obligations); err != nil {
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

// reader is what one evaluation needs besides the query: the input's
// term, the callback that reads the query's results, and OPA's
// cancellation signal. Readers are pooled with their callback bound, so
// that a decision allocates none of these, nor a cancellation watcher.
// Nothing keeps a reference to them past the evaluation: OPA's results are
// read into out before the reader is released.
type reader struct {
	wrapped *[len(outputs)]bool
	ctx     ctxCancel
	input   ast.Term // the input document's term
	out     output
	n       int
	fn      func(topdown.QueryResult) error // r.read
}

var readers = sync.Pool{New: func() any {
	r := &reader{}
	r.fn = r.read
	return r
}}

func (r *reader) read(qr topdown.QueryResult) error {
	r.n++
	var err error
	r.out, err = readOutput(qr, r.wrapped)
	return err
}

// release empties r, dropping what it refers to, and returns it to the pool.
func (r *reader) release() {
	*r = reader{fn: r.fn}
	readers.Put(r)
}

// ctxCancel is OPA's cancellation signal for an evaluation: cancelled once
// ctx has ended. OPA asks before every expression, so an evaluation stops
// at its next expression after ctx ends, as with a signal that a
// context.AfterFunc would set, without registering one per decision.
// Cancel does nothing: ending ctx is how warden cancels.
type ctxCancel struct{ ctx context.Context }

func (c *ctxCancel) Cancel() {}

func (c *ctxCancel) Cancelled() bool { return c.ctx.Err() != nil }

var _ topdown.Cancel = (*ctxCancel)(nil)

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
