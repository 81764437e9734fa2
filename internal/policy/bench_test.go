package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/warden-ai/warden/internal/gateway"
)

const quickstart = "../../examples/quickstart/policy"

// BenchmarkDecide measures one decision with the quickstart policy, input
// conversion included.
func BenchmarkDecide(b *testing.B) {
	e := mustLoad(b, quickstart)
	in := baseInput()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.Decide(ctx, in)
		if err != nil || !d.Allow {
			b.Fatalf("Decide = %+v, %v", d, err)
		}
	}
}

// BenchmarkDecideEvalInput is the alternative Decide does not take: handing
// the Input struct to OPA (rego.EvalInput), which converts it through JSON.
// Everything else is as in Decide.
func BenchmarkDecideEvalInput(b *testing.B) {
	e := mustLoad(b, quickstart)
	in := baseInput()
	input := func() rego.EvalOption { return rego.EvalInput(in) }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := e.decide(ctx, input)
		if err != nil || !d.Allow {
			b.Fatalf("decide = %+v, %v", d, err)
		}
	}
}

// BenchmarkInputValue measures the hand-built conversion alone.
func BenchmarkInputValue(b *testing.B) {
	in := baseInput()
	b.ReportAllocs()
	for b.Loop() {
		_ = in.Value()
	}
}

// BenchmarkStage measures the authorize stage end to end: input from the
// exchange, decision, obligations.
func BenchmarkStage(b *testing.B) {
	s := NewStage(mustLoad(b, quickstart), nil)
	ex := newExchange()
	next := func(*gateway.Exchange) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Handle(ex, next); err != nil {
			b.Fatal(err)
		}
	}
}
