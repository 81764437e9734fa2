package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// constNode is a node of the tree of constant rules, keyed by the string
// terms of their paths after data: the package path, then the rule's name.
// The root stands for data.
type constNode struct {
	children  map[string]*constNode
	value     *ast.Term // the rule's value; nil for an inner node
	undefined bool      // folded (see foldRules): the document is undefined
}

// constRules finds the policy's constant rules, such as a catalog
// (`principals := {...}`): a rule with no body, no arguments, no else, no
// default, whose value is a constant (no variables, references, calls or
// comprehensions), and which is the only rule at its path, with none
// below it. Such a rule always has exactly its value, whatever the input,
// so a decision can use the value without evaluating the rule. It returns
// nil if the policy has none.
func constRules(c *ast.Compiler) *constNode {
	var root *constNode
	var walk func(*ast.TreeNode)
	walk = func(n *ast.TreeNode) {
		for _, child := range n.Children {
			walk(child)
		}
		if len(n.Values) != 1 || len(n.Children) != 0 {
			return
		}
		r := n.Values[0]
		if !constRule(r) {
			return
		}
		ref := r.Ref()
		path := ref.GroundPrefix()
		if len(path) != len(ref) {
			return
		}
		if !path[0].Equal(ast.DefaultRootDocument) {
			return
		}
		if root == nil {
			root = &constNode{}
		}
		node := root
		for _, t := range path[1:] {
			key, ok := refKey(t)
			if !ok {
				return
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
		node.value = r.Head.Value
	}
	walk(c.RuleTree)
	return root
}

// constRule reports whether r is a rule whose value never depends on its
// evaluation (see constRules).
func constRule(r *ast.Rule) bool {
	h := r.Head
	if r.Default || r.Else != nil || len(h.Args) > 0 || h.Value == nil || h.RuleKind() != ast.SingleValue {
		return false
	}
	if len(r.Body) != 1 || r.Body[0].Negated || len(r.Body[0].With) > 0 {
		return false
	}
	if t, ok := r.Body[0].Terms.(*ast.Term); !ok || !ast.Boolean(true).Equal(t.Value) {
		return false
	}
	return ast.IsConstant(h.Value.Value)
}

// refKey is the key of a path term after data: a string. Other terms
// (numbers, variables) never name a constant rule.
func refKey(t *ast.Term) (string, bool) {
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

// get returns the value of the constant rule at exactly ref.
func (n *constNode) get(ref ast.Ref) *ast.Term {
	if n := n.lookup(ref); n != nil {
		return n.value
	}
	return nil
}

// lookup returns the node at exactly ref, or nil.
func (n *constNode) lookup(ref ast.Ref) *constNode {
	if n == nil || len(ref) < 2 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	for _, t := range ref[1:] {
		key, ok := refKey(t)
		if !ok {
			return nil
		}
		if n = n.children[key]; n == nil {
			return nil
		}
	}
	return n
}
