package behavior

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

// TestStageNewClientTLS: through a real TLS listener (the server's
// FingerprintListener and ConnContext), the stage reads each connection's
// ClientHello fingerprint into the observation. After a week of one user's
// office hours from one client, requests from a new network with the same
// client do not alarm; from a new network with another TLS client (the same
// User-Agent) they do, naming new_client.
func TestStageNewClientTLS(t *testing.T) {
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var anomalies []*Anomaly
	e, err := New(Options{Now: clock, Hooks: Hooks{Anomaly: func(a *Anomaly) { mu.Lock(); anomalies = append(anomalies, a); mu.Unlock() }}})
	if err != nil {
		t.Fatal(err)
	}
	identify := gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
		ex.Principal = &gateway.Principal{Kind: "user", ID: "alice"}
		ex.SourceIP = netip.MustParseAddr(ex.Request.Header.Get("X-Test-Source")) // the network, simulated
		return next(ex)
	})
	respond := gateway.StageFunc(func(ex *gateway.Exchange, _ func(*gateway.Exchange) error) error {
		_, err := ex.Writer.Write([]byte(`{"ok":true}`))
		return err
	})
	h := gateway.NewHandler([]gateway.Stage{identify, NewStage(e), respond}, gateway.HandlerOptions{Now: clock})
	ts := httptest.NewUnstartedServer(h)
	cfg := &tls.Config{}
	ts.Listener = gateway.FingerprintListener(ts.Listener, cfg)
	ts.TLS = cfg
	ts.Config.ConnContext = gateway.ConnContext
	ts.StartTLS()
	defer ts.Close()

	laptop := ts.Client()
	otherTr := laptop.Transport.(*http.Transport).Clone() // another TLS stack: TLS 1.2 with P-256 only
	otherTr.TLSClientConfig.MaxVersion, otherTr.TLSClientConfig.CurvePreferences = tls.VersionTLS12, []tls.CurveID{tls.CurveP256}
	other := &http.Client{Transport: otherTr}
	send := func(c *http.Client, at time.Time, src string) {
		t.Helper()
		mu.Lock()
		now = at
		mu.Unlock()
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m1","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("X-Test-Source", src)
		req.Header.Set("User-Agent", "same-agent/1.0") // only the TLS stacks differ
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	found := func() []*Anomaly { mu.Lock(); defer mu.Unlock(); return slices.Clone(anomalies) }

	for d := 0; d < 6; d++ { // office hours, 09:00–11:30
		for i := 0; i < 16; i++ {
			send(laptop, t0.Add(time.Duration(d)*24*time.Hour+time.Duration(i)*10*time.Minute), "10.0.0.7")
		}
	}
	if a := found(); len(a) > 0 {
		t.Fatalf("false alarm: %s", a[0].Reason)
	}
	day6 := t0.Add(6*24*time.Hour + 2*time.Hour) // 11:00
	for i := 0; i < 20; i++ {                    // the user's own laptop, from a café
		send(laptop, day6.Add(time.Duration(i)*30*time.Second), "198.51.100.7")
	}
	if a := found(); len(a) > 0 {
		t.Fatalf("own client on a new network: %s", a[0].Reason)
	}
	day7 := day6.Add(24 * time.Hour)
	for i := 1; i <= 20; i++ { // another client, from another new network
		send(other, day7.Add(time.Duration(i)*30*time.Second), "203.0.113.7")
		if a := found(); len(a) > 0 {
			if !hasFeature(a[0], "new_client") {
				t.Fatalf("anomaly without new_client: %s", a[0].Reason)
			}
			t.Logf("detected after %d requests: %s", i, a[0].Reason)
			return
		}
	}
	t.Fatal("a new TLS client on a new network was not detected within 20 requests")
}
