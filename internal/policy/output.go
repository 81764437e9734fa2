package policy

import (
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// output is the policy's answer, read and checked against the contract:
//
//	allow        boolean; undefined means false
//	deny         set or array of strings; any element denies, each is a reason
//	reasons      set or array of strings explaining an allow
//	obligations  object with string keys; known obligations with a valid
//	             value (checked by checkObligations)
type output struct {
	allow       bool
	deny        []string
	reasons     []string
	obligations map[string]any
}

// readOutput reads one result of the decision query. Anything that does
// not follow the contract is an error, never a silent allow or deny.
func readOutput(b topdown.QueryResult, wrapped *[len(outputs)]bool) (output, error) {
	var out output
	v, err := ruleValue(b, outAllow, wrapped)
	if err != nil {
		return out, err
	}
	if v != nil {
		allow, ok := v.(ast.Boolean)
		if !ok {
			return out, fmt.Errorf("allow is %s, want boolean", ast.ValueName(v))
		}
		out.allow = bool(allow)
	}

	if v, err = ruleValue(b, outDeny, wrapped); err != nil {
		return out, err
	}
	if out.deny, err = stringList("deny", v); err != nil {
		return out, err
	}

	if v, err = ruleValue(b, outReasons, wrapped); err != nil {
		return out, err
	}
	if out.reasons, err = stringList("reasons", v); err != nil {
		return out, err
	}

	if v, err = ruleValue(b, outObligations, wrapped); err != nil {
		return out, err
	}
	if out.obligations, err = obligationMap(v); err != nil {
		return out, err
	}
	return out, nil
}

// ruleValue returns the value of output rule i, nil if the rule is
// undefined. The query binds a rule either to its value or, if wrapped, to
// an array of its values: empty when the rule is undefined, one element
// otherwise. A rule the query leaves out (the policy does not define it)
// has no binding and is undefined.
func ruleValue(b topdown.QueryResult, i int, wrapped *[len(outputs)]bool) (ast.Value, error) {
	t := b[outputs[i]]
	if t == nil {
		return nil, nil
	}
	if !wrapped[i] {
		return t.Value, nil
	}
	arr, ok := t.Value.(*ast.Array)
	if !ok {
		return nil, fmt.Errorf("query result for %s is %s, want array", outputs[i], ast.ValueName(t.Value))
	}
	switch arr.Len() {
	case 0:
		return nil, nil
	case 1:
		return arr.Elem(0).Value, nil
	default:
		return nil, fmt.Errorf("%s has %d values, want one", outputs[i], arr.Len())
	}
}

// stringList reads a set or array of strings; nil (undefined) is empty.
// Sets come out in Rego's sorted order, arrays in theirs.
func stringList(name string, v ast.Value) ([]string, error) {
	var elems []*ast.Term
	switch v := v.(type) {
	case nil:
		return nil, nil
	case ast.Set:
		elems = v.Slice()
	case *ast.Array:
		elems = make([]*ast.Term, 0, v.Len())
		v.Foreach(func(t *ast.Term) { elems = append(elems, t) })
	default:
		return nil, fmt.Errorf("%s is %s, want a set or array of strings", name, ast.ValueName(v))
	}
	if len(elems) == 0 {
		return nil, nil
	}
	out := make([]string, len(elems))
	for i, t := range elems {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("%s contains %s %v, want only strings", name, ast.ValueName(t.Value), t)
		}
		out[i] = string(s)
	}
	return out, nil
}

// obligationMap reads the obligations object; nil (undefined) and an empty
// object are no obligations.
func obligationMap(v ast.Value) (map[string]any, error) {
	if v == nil {
		return nil, nil
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("obligations is %s, want object", ast.ValueName(v))
	}
	if obj.Len() == 0 {
		return nil, nil
	}
	out := make(map[string]any, obj.Len())
	var err error
	obj.Foreach(func(k, val *ast.Term) {
		if err != nil {
			return
		}
		key, ok := k.Value.(ast.String)
		if !ok {
			err = fmt.Errorf("obligations has key %v of type %s, want string keys", k, ast.ValueName(k.Value))
			return
		}
		var x any
		if x, err = ast.JSON(val.Value); err != nil {
			err = fmt.Errorf("obligation %s: %w", key, err)
			return
		}
		out[string(key)] = x
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
