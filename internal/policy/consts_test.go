package policy

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// writePolicy writes authz.rego with src, and the other files given as
// name, source pairs, into a new directory.
func writePolicy(t *testing.T, src string, more ...string) string {
	t.Helper()
	dir := t.TempDir()
	files := append([]string{"authz.rego", src}, more...)
	for i := 0; i+1 < len(files); i += 2 {
		if err := os.WriteFile(filepath.Join(dir, files[i]), []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestConstRules(t *testing.T) {
	e := mustLoad(t, writePolicy(t, `package warden.authz

table := {"a": {"x", "y"}, "b": set()}
limit := 3
nested.path.value := "v"
from_input := input.action
from_rule := limit
with_body := 1 if input.action == "x"
default with_default := 1
with_else := 1 if input.action == "x" else := 2
twice := 1 if input.action == "x"
twice := 1 if input.action == "y"
parts contains "a"
obj["k"] := 1
f(x) := 1
comprehension := {x | some x in [1, 2]}

allow := true
`))
	want := map[string]string{
		"data.warden.authz.table":             `{"a": {"x", "y"}, "b": set()}`,
		"data.warden.authz.limit":             `3`,
		"data.warden.authz.nested.path.value": `"v"`,
		"data.warden.authz.allow":             `true`,
		"data.warden.authz.obj.k":             `1`,
	}
	for _, name := range []string{"table", "limit", "nested.path.value", "from_input", "from_rule", "with_body",
		"with_default", "with_else", "twice", "parts", "obj.k", "obj", "f", "comprehension", "allow", "nested", "nested.path"} {
		ref := ast.MustParseRef("data.warden.authz." + name)
		got := e.consts.get(ref)
		w, ok := want[ref.String()]
		switch {
		case ok && got == nil:
			t.Errorf("%s: not a constant, want %s", ref, w)
		case ok && got.String() != w:
			t.Errorf("%s = %s, want %s", ref, got, w)
		case !ok && got != nil:
			t.Errorf("%s = %s, want no constant", ref, got)
		}
	}
	if got := e.consts.get(ast.MustParseRef("input.table")); got != nil {
		t.Errorf("input.table = %v, want nil", got)
	}
	if got := e.consts.get(ast.MustParseRef(`data.warden.authz.table.a`)); got != nil {
		t.Errorf("a ref into a constant = %v, want nil (only exact paths)", got)
	}
}

// TestConstRulesDecide checks that serving constant rules without
// evaluating them decides as OPA does, `with` included.
func TestConstRulesDecide(t *testing.T) {
	e := mustLoad(t, writePolicy(t, `package warden.authz

import data.warden.lib

models := {"gpt-4o-mini": {"max_tokens": 64}}

allow if models[input.resource.model]

deny contains "model replaced by with" if {
	not allow with models as {}
}

deny contains msg if {
	lib.blocked[input.resource.model]
	msg := sprintf("model %s is blocked", [input.resource.model])
}

obligations["max_tokens"] := models[input.resource.model].max_tokens
`, "lib.rego", `package warden.lib

blocked := {"bad"}
`))
	if e.consts.get(ast.MustParseRef("data.warden.lib.blocked")) == nil {
		t.Fatal("no constant rules found")
	}
	ctx := context.Background()
	in := baseInput()
	d, err := e.Decide(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || !slices.Equal(d.Reasons, []string{"model replaced by with"}) {
		t.Errorf("Decide = %+v, want the deny of the rule that replaces a constant with `with`", d)
	}
	if d.Obligations["max_tokens"] == nil {
		t.Errorf("obligations = %v, want max_tokens from the constant", d.Obligations)
	}
	in.Resource.Model = "bad"
	if d, err = e.Decide(ctx, in); err != nil {
		t.Fatal(err)
	}
	if d.Allow || !slices.Equal(d.Reasons, []string{"model bad is blocked", "model replaced by with"}) {
		t.Errorf("Decide = %+v, want the deny from the constant in another package", d)
	}
}

// TestConstRulesExamples checks, on every shipped example request, that
// the gateway's decision (constants served from the tree) is the traced
// one (every rule evaluated).
func TestConstRulesExamples(t *testing.T) {
	for _, set := range benchSets {
		e := mustLoad(t, set.dir)
		if e.consts == nil {
			continue
		}
		for _, in := range benchInputs(t, set.dir) {
			d, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			x, err := e.Explain(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != x.Decision.Allow || !slices.Equal(d.Reasons, x.Decision.Reasons) ||
				!strings.EqualFold(jsonValue(d.Obligations), jsonValue(x.Decision.Obligations)) {
				t.Errorf("%s %s: Decide = %+v, Explain = %+v", set.name, in.Context.RequestID, d, x.Decision)
			}
		}
	}
}

// TestDecisionQuery checks which output rules the query binds directly,
// which it wraps, and that both shapes read the same.
func TestDecisionQuery(t *testing.T) {
	tests := []struct {
		name, src   string
		wantQuery   string
		wantAllow   bool
		wantReasons []string
		wantOblig   []string
	}{
		{name: "defaults, sets and object rules are bound directly",
			src: "default allow := false\nallow if input.action == \"chat.completions\"\ndeny contains \"no\" if input.action == \"x\"\n" +
				"reasons contains \"yes\" if allow\nobligations[\"audit_level\"] := \"full\" if allow\n",
			wantQuery: `allow = data.warden.authz.allow; deny = data.warden.authz.deny; reasons = data.warden.authz.reasons; ` +
				`obligations = data.warden.authz.obligations`,
			wantAllow: true, wantReasons: []string{"yes"}, wantOblig: []string{"audit_level"}},
		{name: "rules that may be undefined are wrapped, missing rules left out",
			src:       "allow if input.action == \"chat.completions\"\nobligations := {\"audit_level\": \"full\"} if input.action == \"x\"\n",
			wantQuery: `allow = [x0 | x0 = data.warden.authz.allow]; obligations = [x3 | x3 = data.warden.authz.obligations]`,
			wantAllow: true, wantReasons: nil},
		{name: "undefined allow denies",
			src:       "allow if input.action == \"x\"\n",
			wantQuery: `allow = [x0 | x0 = data.warden.authz.allow]`,
			wantAllow: false, wantReasons: []string{ReasonDefaultDeny}},
		{name: "only a deny",
			src:       "deny contains \"no\" if input.action == \"x\"\n",
			wantQuery: `deny = data.warden.authz.deny`,
			wantAllow: false, wantReasons: []string{ReasonDefaultDeny}},
		{name: "object rules with a variable key are bound directly",
			src: "allow := true\nobligations[k] := v if { input.action == \"x\"; some k, v in {\"audit_level\": \"full\"} }\n" +
				"deny contains \"no\" if input.action == \"y\"\n",
			wantQuery: `allow = data.warden.authz.allow; deny = data.warden.authz.deny; obligations = data.warden.authz.obligations`,
			wantAllow: true},
		{name: "object rules with a variable key, matching",
			src:       "allow := true\nobligations[k] := v if { some k, v in {\"audit_level\": \"full\"} }\n",
			wantQuery: `allow = data.warden.authz.allow; obligations = data.warden.authz.obligations`,
			wantAllow: true, wantOblig: []string{"audit_level"}},
		{name: "nested object rules",
			src:       "allow := true\nobligations.mask.pii := \"mask\" if input.action == \"x\"\n",
			wantQuery: `allow = data.warden.authz.allow; obligations = data.warden.authz.obligations`,
			wantAllow: true, wantOblig: []string{"mask"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := mustLoad(t, writePolicy(t, "package warden.authz\n\n"+tc.src))
			q, _ := decisionQuery(e.compiler)
			if q != tc.wantQuery {
				t.Errorf("query\n%s\nwant\n%s", q, tc.wantQuery)
			}
			d, err := e.Decide(context.Background(), baseInput())
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.wantAllow || !slices.Equal(d.Reasons, tc.wantReasons) {
				t.Errorf("Decide = %+v, want allow %v reasons %q", d, tc.wantAllow, tc.wantReasons)
			}
			var obl []string
			for k := range d.Obligations {
				obl = append(obl, k)
			}
			slices.Sort(obl)
			if !slices.Equal(obl, tc.wantOblig) {
				t.Errorf("obligations %v, want %v", obl, tc.wantOblig)
			}
		})
	}
}
