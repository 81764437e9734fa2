package respond

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	good := Sign(testSecret, t0, body)
	other := Sign([]byte("another-secret-another-secret-xx"), t0, body)
	tests := []struct {
		name   string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"valid", good, body, t0, nil},
		{"valid within tolerance", good, body, t0.Add(4 * time.Minute), nil},
		{"several v1, one good (secret rotation)", other + ",v1=" + strings.SplitN(good, "v1=", 2)[1], body, t0, nil},
		{"stale", good, body, t0.Add(6 * time.Minute), ErrSignatureStale},
		{"from the future", good, body, t0.Add(-6 * time.Minute), ErrSignatureStale},
		{"body changed", good, []byte(`{"id":"evt_2"}`), t0, ErrSignatureMismatch},
		{"other secret", other, body, t0, ErrSignatureMismatch},
		{"timestamp changed", strings.Replace(good, "t=", "t=1", 1), body, t0, ErrSignatureStale},
		{"no v1", "t=1772366400", body, t0, ErrSignatureMalformed},
		{"no t", "v1=" + strings.Repeat("00", 32), body, t0, ErrSignatureMalformed},
		{"short mac", "t=1772366400,v1=abcd", body, t0, ErrSignatureMalformed},
		{"garbage", "hello", body, t0, ErrSignatureMalformed},
		{"empty", "", body, t0, ErrSignatureMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(testSecret, tt.header, tt.body, tt.now, DefaultTolerance); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if !strings.HasPrefix(good, "t=1772366400,v1=") {
		t.Fatalf("signature header %q", good)
	}
}

// receiver is a test webhook endpoint that verifies what it gets.
type receiver struct {
	mu       sync.Mutex
	statuses []int // answers, in order; the last one repeats
	calls    atomic.Int32
	verified atomic.Int32
	ids      []string
	bodies   [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := int(rc.calls.Add(1))
	if Verify(testSecret, r.Header.Get(SignatureHeader), body, time.Now(), DefaultTolerance) == nil &&
		r.Header.Get("Content-Type") == "application/json" {
		rc.verified.Add(1)
	}
	rc.mu.Lock()
	rc.ids = append(rc.ids, r.Header.Get(EventIDHeader))
	rc.bodies = append(rc.bodies, body)
	status := rc.statuses[min(n, len(rc.statuses))-1]
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func newTestWebhook(t *testing.T, url string, attempts, queue int) *Webhook {
	t.Helper()
	w, err := NewWebhook(WebhookOptions{Name: "soc", URL: url, Secret: testSecret, Timeout: time.Second,
		MaxAttempts: attempts, QueueSize: queue, Backoff: func(int) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := newMetrics(nil)
	w.m = m
	return w
}

func TestWebhookDelivery(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		attempts int
		wantErr  bool
		calls    int32
	}{
		{"delivered", []int{204}, 5, false, 1},
		{"retried after 503 then delivered", []int{503, 500, 200}, 5, false, 3},
		{"429 retried", []int{429, 200}, 5, false, 2},
		{"retries bounded", []int{500}, 4, true, 4},
		{"400 not retried", []int{400}, 5, true, 1},
		{"redirect not followed", []int{302}, 5, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{statuses: tt.statuses}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			w := newTestWebhook(t, srv.URL, tt.attempts, 10)
			err := w.Deliver(context.Background(), "evt_x", []byte(`{"a":1}`))
			if (err != nil) != tt.wantErr || rc.calls.Load() != tt.calls {
				t.Fatalf("err=%v calls=%d; want err=%v calls=%d", err, rc.calls.Load(), tt.wantErr, tt.calls)
			}
			if rc.verified.Load() != tt.calls {
				t.Fatalf("%d of %d requests carried a valid signature", rc.verified.Load(), tt.calls)
			}
			for _, id := range rc.ids {
				if id != "evt_x" {
					t.Fatalf("event id %q changed across retries", id)
				}
			}
		})
	}

	t.Run("unreachable: bounded, no URL in the error", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL + "/hook?token=secret-token"
		srv.Close()
		w := newTestWebhook(t, u, 3, 10)
		start := time.Now()
		err := w.Deliver(context.Background(), "evt_y", []byte(`{}`))
		if err == nil || strings.Contains(err.Error(), "secret-token") {
			t.Fatalf("err = %v", err)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("delivery not bounded")
		}
	})

	t.Run("slow receiver: each attempt times out", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		w, err := NewWebhook(WebhookOptions{Name: "slow", URL: srv.URL, Secret: testSecret, Timeout: 50 * time.Millisecond,
			MaxAttempts: 2, QueueSize: 1, Backoff: func(int) time.Duration { return time.Millisecond }})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := w.Deliver(context.Background(), "evt_z", []byte(`{}`)); err == nil {
			t.Fatal("a hanging receiver counted as delivered")
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("two 50ms attempts took %s", d)
		}
	})
}

func TestWebhookQueueNeverBlocks(t *testing.T) {
	w := newTestWebhook(t, "https://127.0.0.1:1/hook", 1, 2) // no Run: nothing drains the queue
	got := []bool{w.Enqueue("1", nil), w.Enqueue("2", nil), w.Enqueue("3", nil)}
	if !got[0] || !got[1] || got[2] {
		t.Fatalf("enqueue results %v, want [true true false]", got)
	}
}

func TestWebhookRunDelivers(t *testing.T) {
	rc := &receiver{statuses: []int{200}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	w := newTestWebhook(t, srv.URL, 3, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	for i := range 3 {
		if !w.Enqueue("evt_"+string(rune('a'+i)), []byte(`{}`)) {
			t.Fatal("queue full")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for rc.verified.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d of 3", rc.verified.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestNewWebhookChecks(t *testing.T) {
	for _, o := range []WebhookOptions{
		{Name: "a", URL: "ftp://x", Secret: testSecret, Timeout: time.Second, MaxAttempts: 1, QueueSize: 1},
		{Name: "a", URL: "https://x", Secret: []byte("short"), Timeout: time.Second, MaxAttempts: 1, QueueSize: 1},
		{Name: "", URL: "https://x", Secret: testSecret, Timeout: time.Second, MaxAttempts: 1, QueueSize: 1},
		{Name: "a", URL: "https://x", Secret: testSecret, Timeout: 0, MaxAttempts: 1, QueueSize: 1},
	} {
		if _, err := NewWebhook(o); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
}

func TestDefaultBackoff(t *testing.T) {
	for n := 1; n <= 40; n++ {
		d := defaultBackoff(n)
		full := min(backoffBase<<min(n-1, 15), backoffMax)
		if d < full/2 || d > full {
			t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
		}
	}
}
