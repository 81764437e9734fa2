package policy

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestFoldRules checks which rules are evaluated at load: those that
// cannot depend on the request, and no other.
func TestFoldRules(t *testing.T) {
	e := mustLoad(t, writePolicy(t, `package warden.authz

import data.warden.lib

catalog := {"a": {"hours": {"from": 9, "to": 11}}, "b": {}}
hours[id] := {h | some h in numbers.range(0, 23); catalog[id].hours.from <= h; h < catalog[id].hours.to} if some id, _ in catalog
count_a := count(hours.a)
never := 1 if count_a > 100
from_lib := lib.double(3)
uses_input := input.action
uses_impure := 1 if uses_input == "x"
uses_time := time.now_ns()
uses_custom := warden_test.panic(1)
uses_with if {
	count_a == 2 with input as {}
}
divides := 1 / 0
f(x) := x + 1

allow := true
`, "lib.rego", `package warden.lib

double(x) := 2 * x
`))
	want := map[string]string{
		"data.warden.authz.hours":    `{"a": {9, 10}, "b": set()}`,
		"data.warden.authz.count_a":  `2`,
		"data.warden.authz.never":    `undefined`,
		"data.warden.authz.from_lib": `6`,
	}
	for _, name := range []string{"catalog", "hours", "count_a", "never", "from_lib", "uses_input", "uses_impure",
		"uses_time", "uses_custom", "uses_with", "divides", "f", "allow"} {
		ref := ast.MustParseRef("data.warden.authz." + name)
		got := "not folded"
		if n := e.folded.lookup(ref); n != nil {
			switch {
			case n.undefined:
				got = "undefined"
			case n.value != nil:
				got = n.value.String()
			}
		}
		w, ok := want[ref.String()]
		if !ok {
			w = "not folded"
		}
		if got != w {
			t.Errorf("%s: %s, want %s", ref, got, w)
		}
	}
}

// TestFoldRulesDecide checks that decisions using folded rules are OPA's:
// values, undefined, `with` replacing what a folded rule is made of, and an
// error in a rule that reads no input still failing closed per decision.
func TestFoldRulesDecide(t *testing.T) {
	e := mustLoad(t, writePolicy(t, `package warden.authz

catalog := {"chat.completions": {"max": 3}, "embeddings": {"max": 0}}
limits[a] := c.max if some a, c in catalog
open := {a | some a, m in limits; m > 0}
nothing := 1 if count(open) > 5

allow if input.action in open
deny contains "nothing" if nothing
deny contains "replaced" if {
	input.action == "models.list"
	count(open) == 0 with catalog as {}
}
reasons contains sprintf("limit %d", [limits[input.action]])
broken := 1 / 0
obligations["bad"] := broken if input.action == "completions"
`))
	in := baseInput()
	d, err := e.Decide(context.Background(), in)
	if err != nil || !d.Allow || !slices.Equal(d.Reasons, []string{"limit 3"}) {
		t.Errorf("chat.completions: %+v, %v", d, err)
	}
	in.Action = "embeddings"
	if d, err = e.Decide(context.Background(), in); err != nil || d.Allow {
		t.Errorf("embeddings: %+v, %v", d, err)
	}
	in.Action = "models.list"
	if d, err = e.Decide(context.Background(), in); err != nil || !slices.Equal(d.Reasons, []string{"replaced"}) {
		t.Errorf("models.list: %+v, %v", d, err)
	}
	in.Action = "completions"
	if d, err = e.Decide(context.Background(), in); !errors.Is(err, ErrEvaluation) || d.Allow {
		t.Errorf("completions: %+v, %v, want an evaluation error", d, err)
	}
	if e.folded.lookup(ast.MustParseRef("data.warden.authz.open")) == nil {
		t.Error("open was not folded")
	}
}
