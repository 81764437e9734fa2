package policy

import (
	"context"
	"slices"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestDecisionCache checks that the pooled cache behaves as OPA's: exact
// references, one frame per `with`, undefined marks, copied references,
// and nothing left over for the next decision.
func TestDecisionCache(t *testing.T) {
	a := ast.MustParseRef("data.p.a")
	ab := ast.MustParseRef(`data.p.a["b"]`)
	u := ast.MustParseRef("data.p.u")
	one, two := ast.IntNumberTerm(1), ast.IntNumberTerm(2)

	c := newDecisionCache(nil, nil)
	c.Put(a, one)
	c.Put(u, nil)
	if v, undef := c.Get(a); v != one || undef {
		t.Fatalf("Get(a) = %v, %v", v, undef)
	}
	if v, undef := c.Get(ab); v != nil || undef {
		t.Fatalf("Get(a.b) = %v, %v: a value is for its exact reference only", v, undef)
	}
	if v, undef := c.Get(a[:2]); v != nil || undef {
		t.Fatalf("Get(data.p) = %v, %v", v, undef)
	}
	if v, undef := c.Get(u); v != nil || !undef {
		t.Fatalf("Get(u) = %v, %v, want undefined", v, undef)
	}
	c.Put(u, two) // OPA's cache keeps the undefined mark too
	if _, undef := c.Get(u); !undef {
		t.Fatal("undefined mark lost")
	}

	// A reference is copied: OPA may reuse the slice it passed.
	ref := ab.Copy()
	c.Put(ref, two)
	ref[2] = ast.StringTerm("c")
	if v, _ := c.Get(ab); v != two {
		t.Fatalf("Get(a.b) = %v after the caller reused its slice", v)
	}

	c.Push() // with ...
	if v, _ := c.Get(a); v != nil {
		t.Fatalf("Get(a) in a new frame = %v, want nothing", v)
	}
	c.Put(a, two)
	if v, _ := c.Get(a); v != two {
		t.Fatalf("Get(a) in the frame = %v", v)
	}
	c.Pop()
	if v, _ := c.Get(a); v != one {
		t.Fatalf("Get(a) after Pop = %v, want the outer value", v)
	}
	if keys := c.Keys(); len(keys) != 3 { // as OPA's: u has a value, if marked undefined
		t.Fatalf("Keys() = %v, want a, u and a.b", keys)
	}
	c.release()

	c = newDecisionCache(nil, nil)
	defer c.release()
	for _, r := range []ast.Ref{a, ab, u} {
		if v, undef := c.Get(r); v != nil || undef {
			t.Fatalf("Get(%v) = %v, %v in the next decision's cache", r, v, undef)
		}
	}
}

// TestDecisionCacheReuse runs decisions that differ only in their input
// one after the other: a value cached for one must never answer for the
// next.
func TestDecisionCacheReuse(t *testing.T) {
	e := mustLoad(t, writePolicy(t, `package warden.authz

model := input.resource.model

allow if model == "gpt-4o-mini"

deny contains msg if {
	not allow
	msg := sprintf("model %s", [model])
}

deny contains "replaced" if {
	not allow with input.resource.model as "gpt-4o-mini"
}
`))
	ctx := context.Background()
	in := baseInput()
	for i, m := range []string{"gpt-4o-mini", "other", "gpt-4o-mini", "x"} {
		in.Resource.Model = m
		d, err := e.Decide(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		wantAllow := m == "gpt-4o-mini"
		var want []string
		if !wantAllow {
			want = []string{"model " + m}
		}
		if d.Allow != wantAllow || (!wantAllow && !slices.Equal(d.Reasons, want)) {
			t.Errorf("decision %d (%s) = %+v", i, m, d)
		}
	}
}
