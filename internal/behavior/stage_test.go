package behavior

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/warden-ai/warden/internal/gateway"
)

func TestObservationOf(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hello world again"}]}`)
	tests := []struct {
		name   string
		ex     func() *gateway.Exchange
		err    error
		status int
		id     string
		sketch bool
	}{
		{"written response", func() *gateway.Exchange {
			ex := &gateway.Exchange{Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Principal: &gateway.Principal{Kind: "user", ID: "a"}, Body: body}
			ex.Writer.WriteHeader(201)
			_, _ = ex.Writer.Write([]byte("abc"))
			return ex
		}, nil, 201, "a", true},
		{"refused before writing", func() *gateway.Exchange {
			return &gateway.Exchange{Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Principal: &gateway.Principal{Kind: "user", ID: "a"}}
		}, gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "policy_denied", nil, "no"), 403, "a", false},
		{"internal error", func() *gateway.Exchange { return &gateway.Exchange{} }, errors.New("boom"), 500, "", false},
		{"no principal", func() *gateway.Exchange {
			return &gateway.Exchange{Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Body: body, SourceIP: netip.MustParseAddr("192.0.2.1")}
		}, gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_api_key", nil, "no"), 401, "", false},
	}
	for _, tc := range tests {
		var o Observation
		ex := tc.ex()
		ObservationOf(ex, tc.err, &o)
		if o.Status != tc.status || o.ID != tc.id || (o.Prompt != 0) != tc.sketch {
			t.Errorf("%s: %+v", tc.name, o)
		}
	}
}

func TestStagePassesOutcome(t *testing.T) {
	e, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := NewStage(e)
	want := gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "policy_denied", nil, "no")
	ex := &gateway.Exchange{Writer: gateway.NewResponseWriter(httptest.NewRecorder()), Principal: &gateway.Principal{Kind: "service", ID: "s"}}
	if got := st.Handle(ex, func(*gateway.Exchange) error { return want }); got != want {
		t.Fatalf("Handle returned %v, want the chain's error", got)
	}
	if e.Stats().Principals != 1 {
		t.Fatalf("stats %+v", e.Stats())
	}
}
