package policy

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// foldBudget bounds the time Load spends folding one rule; a rule that
// takes longer is left to be evaluated per decision, as it would be
// without folding.
const foldBudget = time.Second

// foldRules evaluates, once at load, every rule whose value cannot depend
// on the request: a table derived from a catalog (`by_id := {p.id: p |
// some p in catalog}`), a set computed from constants. Such a rule reads
// neither input nor any rule that does, calls only deterministic built-in
// functions (no time, randomness, network or printing), and has no
// `with`; warden's data store is empty and never written, so the rule has
// the same value in every evaluation. A decision then uses that value, or
// its being undefined, without evaluating the rule. Folded are the rule
// tree's leaves (no rule below them) whose rules all qualify, except
// functions and the constants constRules serves already. A rule whose
// evaluation fails is not folded: it fails, and so denies, per decision as
// before. It returns nil if nothing was folded.
func foldRules(ctx context.Context, c *ast.Compiler, qc ast.QueryCompiler, store storage.Store, consts *constNode) *constNode {
	p := purity{c: c, memo: map[*ast.Rule]bool{}}
	var root *constNode
	var walk func(n *ast.TreeNode, path ast.Ref)
	walk = func(n *ast.TreeNode, path ast.Ref) {
		if len(n.Children) > 0 {
			for _, child := range n.Children {
				walk(child, append(path[:len(path):len(path)], ast.NewTerm(child.Key)))
			}
			return
		}
		if len(n.Values) == 0 || ctx.Err() != nil {
			return
		}
		for _, r := range n.Values {
			if len(r.Head.Args) > 0 || !p.pure(r) {
				return
			}
		}
		if len(path) < 2 || !path[0].Equal(ast.DefaultRootDocument) || consts.get(path) != nil {
			return
		}
		v, defined, ok := foldValue(ctx, qc, c, store, path)
		if !ok {
			return
		}
		root = root.insert(path, v, !defined)
	}
	walk(c.RuleTree, nil) // the root's only child is data
	return root
}

// foldValue evaluates the document at ref.
func foldValue(ctx context.Context, qc ast.QueryCompiler, c *ast.Compiler, store storage.Store, ref ast.Ref) (v *ast.Term, defined, ok bool) {
	result := ast.Var("folded")
	body, err := qc.Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(result), ast.NewTerm(ref))))
	if err != nil {
		return nil, false, false
	}
	ctx, cancel := context.WithTimeout(ctx, foldBudget)
	defer cancel()
	stop := topdown.NewCancel()
	defer context.AfterFunc(ctx, stop.Cancel)()
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, false, false
	}
	defer store.Abort(ctx, txn)
	n := 0
	err = topdown.NewQuery(body).
		WithQueryCompiler(qc).
		WithCompiler(c).
		WithStore(store).
		WithTransaction(txn).
		WithStrictBuiltinErrors(true).
		WithCancel(stop).
		Iter(ctx, func(qr topdown.QueryResult) error {
			n++
			v = qr[result]
			return nil
		})
	if err != nil || n > 1 || (n == 1 && v == nil) {
		return nil, false, false
	}
	return v, n == 1, true
}

// purity decides which rules cannot depend on the request.
type purity struct {
	c    *ast.Compiler
	memo map[*ast.Rule]bool
}

// impureBuiltins are deterministic by OPA's account but read the clock, or
// print: folding them would change what a decision sees or logs.
var impureBuiltins = map[string]bool{
	"print":                true,
	"internal.print":       true,
	"trace":                true,
	"io.jwt.decode_verify": true,
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
}

// defaultBuiltins are OPA's own built-in functions; a function registered
// by a program (warden's tests register one that panics) is never folded.
var defaultBuiltins = func() map[string]*ast.Builtin {
	m := make(map[string]*ast.Builtin, len(ast.DefaultBuiltins))
	for _, b := range ast.DefaultBuiltins {
		m[b.Name] = b
	}
	return m
}()

// pureCall reports whether calling op can only give a result of its
// arguments: op is a function of the policy (data.…, whose own body the
// caller checks), or one of OPA's built-ins that is deterministic by OPA's
// account and neither reads the clock nor prints (impureBuiltins). A
// function registered by a program is not pure.
func pureCall(op *ast.Term) bool {
	ref, isRef := op.Value.(ast.Ref)
	if !isRef {
		return false
	}
	if ref[0].Equal(ast.DefaultRootDocument) {
		return true
	}
	b := defaultBuiltins[ref.String()]
	return b != nil && !b.Nondeterministic && !impureBuiltins[b.Name]
}

// pure reports whether r (with its else chain) reads neither input nor an
// impure rule, calls only deterministic built-ins, and has no `with`.
func (p *purity) pure(r *ast.Rule) bool {
	if v, ok := p.memo[r]; ok {
		return v
	}
	p.memo[r] = false // a cycle (the compiler forbids them) is impure
	ok := p.local(r)
	p.memo[r] = ok
	return ok
}

func (p *purity) local(r *ast.Rule) bool {
	ok := true
	call := func(op *ast.Term) { ok = ok && pureCall(op) } // a policy function's rules are checked as a data reference
	vis := ast.NewGenericVisitor(func(x any) bool {
		if !ok {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if len(x.With) > 0 {
				ok = false
			} else if x.IsCall() {
				call(x.Terms.([]*ast.Term)[0])
			}
		case ast.Call:
			call(x[0])
		case ast.Ref:
			switch {
			case x[0].Equal(ast.InputRootDocument):
				ok = false
			case x[0].Equal(ast.DefaultRootDocument):
				for _, dep := range p.rulesUnder(x.GroundPrefix()) {
					if !p.pure(dep) {
						ok = false
						break
					}
				}
			}
		case ast.Var:
			// `input` alone, as a term, is a reference too.
			if x.Equal(ast.InputRootDocument.Value) {
				ok = false
			}
		}
		return !ok
	})
	vis.Walk(r)
	return ok
}

// rulesUnder returns every rule a reference with this ground prefix may
// read: those at the prefix and below it, and those at a shorter path
// (whose value has the prefix inside it).
func (p *purity) rulesUnder(prefix ast.Ref) []*ast.Rule {
	var rules []*ast.Rule
	n := p.c.RuleTree // above data: prefix[0] is its child
	for _, t := range prefix {
		rules = append(rules, n.Values...)
		if n = n.Child(t.Value); n == nil {
			return rules
		}
	}
	n.DepthFirst(func(x *ast.TreeNode) bool {
		rules = append(rules, x.Values...)
		return false
	})
	return rules
}

// insert returns the tree n (nil: a new one) with the value, or the
// undefined mark, of the document at path.
func (n *constNode) insert(path ast.Ref, v *ast.Term, undefined bool) *constNode {
	if n == nil {
		n = &constNode{}
	}
	node := n
	for _, t := range path[1:] {
		key, ok := refKey(t)
		if !ok {
			return n
		}
		next := node.children[key]
		if next == nil {
			next = &constNode{}
			if node.children == nil {
				node.children = map[string]*constNode{}
			}
			node.children[key] = next
		}
		node = next
	}
	node.value, node.undefined = v, undefined
	return n
}
