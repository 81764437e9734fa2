package policy

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/warden-ai/warden/internal/gateway"
)

// Explanation is a decision together with the rules that made it.
type Explanation struct {
	Decision gateway.Decision
	// Fired lists every rule whose body succeeded during the evaluation,
	// once per rule and value, in the order OPA evaluated them: output
	// rules (allow, deny, reasons, obligations) and the helper rules and
	// functions they used.
	Fired []FiredRule
	// trace is OPA's full trace of the evaluation.
	trace topdown.BufferTracer
}

// ruleTracer is an OPA query tracer that keeps the full trace and notes
// each rule whose body succeeded. An Exit event on a rule is OPA's report
// that the rule's body succeeded; the rule's head is plugged with the
// body's bindings right then, as bindings change as evaluation goes on.
type ruleTracer struct {
	x    *Explanation
	seen map[FiredRule]bool
}

func (t *ruleTracer) Enabled() bool { return true }

func (t *ruleTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{PlugLocalVars: true} }

func (t *ruleTracer) TraceEvent(ev topdown.Event) {
	t.x.trace.TraceEvent(ev)
	if ev.Op != topdown.ExitOp {
		return
	}
	rule, ok := ev.Node.(*ast.Rule)
	if !ok || rule.Module == nil || rule.Head == nil {
		return
	}
	f := FiredRule{Rule: ev.Plug(ast.NewTerm(rule.Ref())).String(), Function: len(rule.Head.Args) > 0}
	if loc := rule.Head.Location; loc != nil {
		f.File, f.Line = loc.File, loc.Row
	} else if loc := rule.Location; loc != nil {
		f.File, f.Line = loc.File, loc.Row
	}
	switch {
	case rule.Head.Key != nil && rule.Head.Value == nil: // multi-value: "contains key"
		f.Value = ev.Plug(rule.Head.Key).String()
	case rule.Head.Value != nil:
		f.Value = ev.Plug(rule.Head.Value).String()
	}
	if !t.seen[f] {
		t.seen[f] = true
		t.x.Fired = append(t.x.Fired, f)
	}
}

var _ topdown.QueryTracer = (*ruleTracer)(nil)

// FiredRule is one rule whose body succeeded.
type FiredRule struct {
	Rule     string `json:"rule"`               // the document it defines, e.g. "data.warden.authz.deny"
	File     string `json:"file"`               // the file that defines it, as loaded
	Line     int    `json:"line"`               // the line of its head
	Function bool   `json:"function,omitempty"` // a function (called with arguments) rather than a rule
	// Value is what the rule contributed, in Rego syntax: the element of a
	// multi-value rule, the value of a single-value rule or function.
	Value string `json:"value,omitempty"`
}

// String renders a fired rule as "rule (file:line) = value".
func (f FiredRule) String() string {
	var b strings.Builder
	b.WriteString(f.Rule)
	if f.Function {
		b.WriteString("(...)")
	}
	fmt.Fprintf(&b, " (%s:%d)", f.File, f.Line)
	if f.Value != "" {
		b.WriteString(" = ")
		b.WriteString(f.Value)
	}
	return b.String()
}

// Explain evaluates the policy for in as Decide does, with OPA's tracer
// on, and reports which rules fired. It is for `warden policy eval`: a
// traced evaluation costs many times an untraced one, and the gateway
// never traces.
func (e *Engine) Explain(ctx context.Context, in Input) (Explanation, error) {
	var x Explanation
	d, err := e.decide(ctx, &in, &e.fields, &ruleTracer{x: &x, seen: map[FiredRule]bool{}})
	x.Decision = d
	return x, err
}

// PrettyTrace writes OPA's full trace of the evaluation, with locations.
func (x *Explanation) PrettyTrace(w io.Writer) {
	topdown.PrettyTraceWithLocation(w, x.trace)
}
