package policy

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	e := mustLoad(t, "testdata/basic")
	file := filepath.Join("testdata", "basic", "authz.rego")
	tests := []struct {
		name      string
		edit      func(*Input)
		wantAllow bool
		wantFired []FiredRule // in evaluation order, a subsequence of what fired
		notFired  []string    // rules that must not appear
	}{
		{name: "allow", wantAllow: true, wantFired: []FiredRule{
			{Rule: "data.warden.authz.allow", File: file, Line: 4, Value: "true"},
			{Rule: "data.warden.authz.reasons", File: file, Line: 6, Value: `"chat completions are open"`},
		}, notFired: []string{"data.warden.authz.deny", "data.warden.authz.obligations"}},
		{name: "deny names the rule and its value", edit: func(in *Input) { in.Resource.Model = "bad"; in.Resource.Stream = true },
			wantFired: []FiredRule{
				{Rule: "data.warden.authz.deny", File: file, Line: 8, Value: `"model bad is blocked"`},
				{Rule: "data.warden.authz.deny", File: file, Line: 10, Value: `"streaming is off for this model"`},
			}},
		{name: "default deny: no output rule fired", edit: func(in *Input) { in.Action = "embeddings" },
			notFired: []string{"data.warden.authz.allow", "data.warden.authz.deny", "data.warden.authz.reasons"}},
		{name: "empty obligations", edit: func(in *Input) { in.Resource.Path = "/empty-obligations" }, wantAllow: true,
			wantFired: []FiredRule{{Rule: "data.warden.authz.obligations", File: file, Line: 15, Value: "{}"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput()
			if tt.edit != nil {
				tt.edit(&in)
			}
			x, err := e.Explain(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := e.Decide(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(x.Decision, plain) {
				t.Errorf("traced decision %+v differs from the untraced %+v", x.Decision, plain)
			}
			if x.Decision.Allow != tt.wantAllow {
				t.Errorf("allow = %v, want %v", x.Decision.Allow, tt.wantAllow)
			}
			i := 0
			for _, f := range x.Fired {
				if i < len(tt.wantFired) && f == tt.wantFired[i] {
					i++
				}
				if slices.Contains(tt.notFired, f.Rule) {
					t.Errorf("%s fired: %v", f.Rule, f)
				}
			}
			if i < len(tt.wantFired) {
				t.Errorf("fired = %v\nwant, in this order, %v", x.Fired, tt.wantFired)
			}
			var trace bytes.Buffer
			x.PrettyTrace(&trace)
			if !strings.Contains(trace.String(), "authz.rego:") {
				t.Errorf("OPA trace without locations:\n%.500s", trace.String())
			}
		})
	}
}

// TestExplainHelpers: rules in other packages and functions that an
// output rule used are listed with their values.
func TestExplainHelpers(t *testing.T) {
	e := mustLoad(t, "../../examples/quickstart/policy")
	in := baseInput()
	in.Principal.Scopes = []string{"inference:*", "training:*"}
	x, err := e.Explain(context.Background(), in)
	if err != nil || !x.Decision.Allow {
		t.Fatalf("Explain = %+v, %v", x.Decision, err)
	}
	var lines []string
	for _, f := range x.Fired {
		if !strings.HasSuffix(f.File, "authz.rego") && !strings.HasSuffix(f.File, ".rego") || f.Line <= 0 {
			t.Errorf("fired rule without a location: %+v", f)
		}
		lines = append(lines, f.String())
	}
	joined := strings.Join(lines, "\n")
	for _, want := range []string{
		`data.warden.authz.granting_scopes (`,
		`= "inference:*"`,
		`data.warden.authz.allow (`,
		`data.warden.authz.reasons (`,
		`= "scope inference:* grants chat.completions on segment inference"`,
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("fired rules lack %q:\n%s", want, joined)
		}
	}
	if strings.Contains(joined, `"training:*"`) {
		t.Errorf("a scope that did not grant is listed as granting:\n%s", joined)
	}
}

func TestExplainError(t *testing.T) {
	e := mustLoad(t, "testdata/conflict")
	x, err := e.Explain(context.Background(), baseInput())
	if !errors.Is(err, ErrEvaluation) || x.Decision.Allow || !slices.Equal(x.Decision.Reasons, []string{ReasonError}) {
		t.Fatalf("Explain = %+v, %v; want a deny with ErrEvaluation", x.Decision, err)
	}
}
