package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/warden-ai/warden/internal/gateway"
)

// usedFields names the fields marked in s, for messages.
func usedFields(s fieldSet) []string {
	names := map[field]string{fPrincipal: "principal", fAction: "action", fResource: "resource", fContext: "context", fGrants: "grants", fSanctions: "sanctions"}
	for sec, v := range inputSections {
		for k, f := range v.keys {
			names[f] = sec + "." + k
		}
	}
	var out []string
	for f, used := range s {
		if used {
			out = append(out, names[field(f)])
		}
	}
	slices.Sort(out)
	return out
}

func TestInputUse(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   []string // nil: the whole document
	}{
		{"keys", `allow if { input.principal.id == "a"; input.context.geo.country == "DE" }`,
			[]string{"context", "context.geo", "principal", "principal.id"}},
		{"action and grants are whole", `allow if { input.action == "x"; count(input.grants) > 0 }`,
			[]string{"action", "grants"}},
		{"section passed whole", `allow if object.get(input.resource, "model", "") == "m"`,
			[]string{"resource", "resource.api", "resource.arguments", "resource.method", "resource.model", "resource.path", "resource.route",
				"resource.segment", "resource.stream", "resource.tool"}},
		{"dynamic key", `allow if { some k; input.principal[k] == "x" }`,
			[]string{"principal", "principal.auth_method", "principal.auth_time", "principal.credential_id", "principal.expires_at",
				"principal.groups", "principal.id", "principal.issuer", "principal.kind", "principal.mfa", "principal.on_behalf_of",
				"principal.roles", "principal.scopes", "principal.workload"}},
		{"bare input", `allow if count(input) > 0`, nil},
		{"input with a dynamic section", `allow if { some s; input[s].id == "a" }`, nil},
		{"input inside a local", `allow if { x := input; x.action == "a" }`, nil},
		{"import, resolved", "import input.context as ctx\n\nallow if ctx.hour < 8", []string{"context", "context.hour"}},
		{"import used whole", "import input.resource as res\n\nallow if count(res) > 1", []string{"resource", "resource.api", "resource.arguments",
			"resource.method", "resource.model", "resource.path", "resource.route", "resource.segment", "resource.stream", "resource.tool"}},
		{"reference inside a reference", `allow if data.m[input.resource.model]`, []string{"resource", "resource.model"}},
		{"unknown section", `allow if input.nope.x == 1`, []string{}},
		{"deeper path", `allow if input.context.tokens.max > 10`, []string{"context", "context.tokens"}},
		{"with modifier", `allow if f with input.context.hour as 3
f if input.context.hour == 3`, []string{"context", "context.hour"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "package warden.authz\n\n" + tt.policy + "\n"
			m, err := ast.ParseModuleWithOpts("p.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
			if c.Compile(map[string]*ast.Module{"p.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			got := inputUse(c.Modules)
			want := tt.want
			if want == nil {
				want = usedFields(allFields)
			}
			if g := usedFields(got); !slices.Equal(g, want) && !(len(g) == 0 && len(want) == 0) {
				t.Errorf("inputUse = %q, want %q", g, want)
			}
		})
	}
}

// TestPrunedInputDecidesAlike: for every policy in testdata and the shipped
// examples, deciding with the pruned input gives exactly the decision the
// whole input gives.
func TestPrunedInputDecidesAlike(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range benchSets {
		if _, err := os.Stat(set.dir); err == nil {
			dirs = append(dirs, set.dir)
		}
	}
	full, opts := fullExchange(t)
	inputs := map[string]*Input{}
	for name, ex := range map[string]func() *Input{
		"base": func() *Input { in := baseInput(); return &in },
		"full": func() *Input {
			in, err := NewInput(full, opts)
			if err != nil {
				t.Fatal(err)
			}
			return &in
		},
		"bench": func() *Input {
			in, err := NewInput(benchExchange(), benchInputOptions)
			if err != nil {
				t.Fatal(err)
			}
			return &in
		},
	} {
		inputs[name] = ex()
	}
	for _, dir := range dirs {
		e, err := Load(context.Background(), dir)
		if err != nil {
			continue // the load-error fixtures
		}
		// The stage builds only the fields in use, from the exchange.
		for _, action := range []string{full.Action, "embeddings", "mfa.verify"} {
			ex, _ := fullExchange(t)
			ex.Action = action
			whole, err := NewInput(ex, opts)
			if err != nil {
				t.Fatal(err)
			}
			want, werr := e.decide(context.Background(), &whole, &allFields, nil)
			if werr == nil {
				EnforceObligations(&want)
				DenyUnenforced(&want, func(string) bool { return false }) // the stage has no enforcers
			}
			s := NewStage(e, nil)
			s.SetInputOptions(opts)
			herr := s.Handle(ex, func(*gateway.Exchange) error { return nil })
			if ex.Decision == nil || !reflect.DeepEqual(*ex.Decision, want) || (herr == nil) != want.Allow {
				t.Errorf("%s, stage, action %s: %+v, %v; whole input: %+v, %v", dir, action, ex.Decision, herr, want, werr)
			}
		}
		for name, in := range inputs {
			for _, action := range []string{in.Action, "embeddings", "models.list", "mfa.verify", "grant.request"} {
				in := *in
				in.Action = action
				pruned, perr := e.Decide(context.Background(), in)
				whole, werr := e.decide(context.Background(), &in, &allFields, nil)
				if !reflect.DeepEqual(pruned, whole) || (perr == nil) != (werr == nil) {
					t.Errorf("%s, input %s, action %s: pruned %+v, %v; whole %+v, %v", dir, name, action, pruned, perr, whole, werr)
				}
			}
		}
	}
}
