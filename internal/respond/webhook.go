package respond

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>", the
	// MAC over "<t>.<body>" keyed with the webhook secret (the scheme
	// Stripe uses; see Sign and Verify).
	SignatureHeader = "X-Warden-Signature"
	// EventIDHeader is the alert's id, the same on every retry, so that a
	// receiver can drop duplicates.
	EventIDHeader = "X-Warden-Event-Id"
)

// Delivery bounds.
const (
	// DefaultTolerance is how old a signature Verify accepts by default.
	DefaultTolerance = 5 * time.Minute
	backoffBase      = 500 * time.Millisecond
	backoffMax       = 30 * time.Second
	maxResponseDrain = 64 << 10
)

// Sign returns the signature header value of body at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrSignatureMalformed = errors.New("signature header malformed")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrSignatureStale     = errors.New("signature timestamp outside the tolerance")
)

// Verify checks a signature header against body: one of its v1 values must
// be the MAC of "<t>.<body>", and t within tolerance of now (a replayed
// old alert is refused). This is what a receiver runs; docs/respond.md has
// it as a standalone snippet.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, b)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrSignatureMalformed
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignatureStale
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if subtle.ConstantTimeCompare(s, want) == 1 {
			return nil
		}
	}
	return ErrSignatureMismatch
}

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	Name        string
	URL         string
	Secret      []byte
	Timeout     time.Duration // per attempt
	MaxAttempts int
	QueueSize   int
	// Client sends the requests; default: a client that never follows
	// redirects and uses the environment's proxy settings.
	Client *http.Client
	// Backoff is the wait before attempt n+1 after n failed (n ≥ 1);
	// default: exponential from 500ms, at most 30s, with jitter.
	Backoff func(n int) time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Webhook delivers signed alerts to one receiver from a bounded queue, one
// at a time, in its own goroutine (Run): Enqueue never blocks, a full
// queue drops the alert (logged and counted), and each alert is tried at
// most MaxAttempts times with backoff, each attempt bounded by Timeout.
type Webhook struct {
	name     string
	url      string
	secret   []byte
	timeout  time.Duration
	attempts int
	queue    chan delivery
	client   *http.Client
	backoff  func(int) time.Duration
	logger   *slog.Logger
	now      func() time.Time
	m        *metrics // set by New; nil: not counted
}

type delivery struct {
	id   string
	body []byte
}

// NewWebhook checks o and returns the webhook.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("respond: webhook %q: the URL must be an http or https URL with a host", o.Name)
	}
	switch {
	case o.Name == "":
		return nil, errors.New("respond: webhook without a name")
	case len(o.Secret) < 32:
		return nil, fmt.Errorf("respond: webhook %q: the secret must be at least 32 bytes", o.Name)
	case o.Timeout <= 0 || o.MaxAttempts < 1 || o.QueueSize < 1:
		return nil, fmt.Errorf("respond: webhook %q: timeout, max_attempts and queue_size must be positive", o.Name)
	}
	w := &Webhook{name: o.Name, url: o.URL, secret: bytes.Clone(o.Secret), timeout: o.Timeout, attempts: o.MaxAttempts,
		queue: make(chan delivery, o.QueueSize), client: o.Client, backoff: o.Backoff, logger: o.Logger, now: o.Now}
	if w.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		w.client = &http.Client{Transport: tr,
			// A redirect would send the alert somewhere not configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if w.backoff == nil {
		w.backoff = defaultBackoff
	}
	if w.logger == nil {
		w.logger = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Name is the webhook's configured name.
func (w *Webhook) Name() string { return w.name }

// Enqueue queues an alert and reports whether there was room.
func (w *Webhook) Enqueue(id string, body []byte) bool {
	select {
	case w.queue <- delivery{id: id, body: body}:
		return true
	default:
		w.count("dropped")
		return false
	}
}

// Run delivers queued alerts until ctx ends; alerts still queued then are
// dropped (logged).
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			if n := len(w.queue); n > 0 {
				w.logger.Warn("respond: webhook stopping; queued alerts dropped", "webhook", w.name, "alerts", n)
			}
			return
		case d := <-w.queue:
			if err := w.Deliver(ctx, d.id, d.body); err != nil && ctx.Err() == nil {
				w.logger.Error("respond: webhook alert not delivered", "webhook", w.name, "event", d.id,
					"attempts", w.attempts, "err", err)
			}
		}
	}
}

// errPermanent marks a failure that a retry cannot fix.
type errPermanent struct{ error }

// Deliver sends one alert, retrying failures that may pass (network
// errors, timeouts, 408, 425, 429, 5xx) with backoff, at most MaxAttempts
// times in all. Each attempt is signed afresh.
func (w *Webhook) Deliver(ctx context.Context, id string, body []byte) error {
	var err error
	for n := 1; n <= w.attempts; n++ {
		var retryAfter time.Duration
		retryAfter, err = w.attempt(ctx, id, body)
		if err == nil {
			w.count("delivered")
			return nil
		}
		var perm errPermanent
		if errors.As(err, &perm) || n == w.attempts || ctx.Err() != nil {
			break
		}
		w.count("retried")
		wait := max(w.backoff(n), min(retryAfter, backoffMax))
		select {
		case <-ctx.Done():
			w.count("failed")
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	w.count("failed")
	return err
}

func (w *Webhook) attempt(ctx context.Context, id string, body []byte) (retryAfter time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, errPermanent{fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-webhook/1")
	req.Header.Set(EventIDHeader, id)
	req.Header.Set(SignatureHeader, Sign(w.secret, w.now(), body))
	res, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", redactURL(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxResponseDrain))
	res.Body.Close()
	switch s := res.StatusCode; {
	case s >= 200 && s <= 299:
		return 0, nil
	case s == http.StatusRequestTimeout || s == http.StatusTooEarly || s == http.StatusTooManyRequests || s >= 500:
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
			retryAfter = time.Duration(secs) * time.Second
		}
		return retryAfter, fmt.Errorf("receiver answered %d", s)
	default:
		return 0, errPermanent{fmt.Errorf("receiver answered %d; not retried", s)}
	}
}

// redactURL drops the URL from a client error: it may carry a token.
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func (w *Webhook) count(outcome string) {
	if w.m != nil {
		w.m.webhook.WithLabelValues(w.name, outcome).Inc()
	}
}

// defaultBackoff waits 500ms·2^(n-1), at most 30s, less a random part of
// up to half, so that many wardens do not retry in step.
func defaultBackoff(n int) time.Duration {
	d := backoffMax
	if n < 16 {
		d = min(backoffBase<<(n-1), backoffMax)
	}
	j, err := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1))
	if err != nil {
		return d
	}
	return d - time.Duration(j.Int64())
}

func newEventID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("respond: random event id: %w", err)
	}
	return "evt_" + hex.EncodeToString(b[:]), nil
}
