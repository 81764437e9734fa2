package assess

import (
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/gateway"
)

// BenchmarkStage measures the per-request cost of the stage: with a signed
// posture header (EdDSA) and geo lookups, and with a workload posture only.
func BenchmarkStage(b *testing.B) {
	s, is := newTestStage(b, b.TempDir(), riskFunc(func(string) float64 { return 0.2 }))
	tok := sign(b, is.ed, jose.EdDSA, is.edKID, claims("svc"))
	next := func(*gateway.Exchange) error { return nil }

	b.Run("header+geo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ex := exchange(&gateway.Principal{ID: "svc", AuthMethod: "api_key"}, "203.0.113.7", tok)
			if err := s.Handle(ex, next); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mtls+geo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ex := exchange(&gateway.Principal{ID: prodSvc, AuthMethod: "mtls"}, "203.0.113.7")
			if err := s.Handle(ex, next); err != nil {
				b.Fatal(err)
			}
		}
	})
}
