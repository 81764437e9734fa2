package identity

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// BenchmarkStageAPIKey measures the whole identify stage for an API key:
// header extraction, dispatch, hash and lookup, principal. Target ≤ 5 µs.
func BenchmarkStageAPIKey(b *testing.B) {
	ks, err := OpenKeyStore(filepath.Join(b.TempDir(), "keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	key, _, err := ks.Create("bench-svc", "service", []string{"inference:*"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	st := NewAPIKeyStage(ks, nil)
	req := httptest.NewRequest("GET", "/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	w := gateway.NewResponseWriter(httptest.NewRecorder())
	next := func(*gateway.Exchange) error { return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ex := &gateway.Exchange{Request: req, Writer: w}
		if err := st.Handle(ex, next); err != nil {
			b.Fatal(err)
		}
	}
}
