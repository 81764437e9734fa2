package limit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ai/warden/internal/gateway"
)

// Window is a calendar window of a token budget, in UTC.
type Window uint8

// Windows.
const (
	Minute Window = iota + 1
	Hour
	Day
	Month
)

// ParseWindow reads "minute", "hour", "day" or "month".
func ParseWindow(s string) (Window, bool) {
	switch s {
	case "minute":
		return Minute, true
	case "hour":
		return Hour, true
	case "day":
		return Day, true
	case "month":
		return Month, true
	}
	return 0, false
}

func (w Window) String() string {
	switch w {
	case Minute:
		return "minute"
	case Hour:
		return "hour"
	case Day:
		return "day"
	case Month:
		return "month"
	}
	return "window(" + strconv.Itoa(int(w)) + ")"
}

// Bounds returns the window holding now: its start and end, in UTC.
func (w Window) Bounds(now time.Time) (start, end time.Time) {
	now = now.UTC()
	switch w {
	case Minute:
		start = now.Truncate(time.Minute)
		return start, start.Add(time.Minute)
	case Hour:
		start = now.Truncate(time.Hour)
		return start, start.Add(time.Hour)
	case Day:
		start = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 0, 1)
	case Month:
		start = time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	return now, now
}

// Class is a named set of limits (config limits.classes). Every limit is
// kept per principal; ByRoute and ByModel split it further.
type Class struct {
	Name     string
	Requests *RequestLimit // nil: no request limit
	Tokens   []TokenLimit  // token budgets, one per window at most
	ByRoute  bool          // a separate limit per route
	ByModel  bool          // a separate limit per model
}

// RequestLimit allows Limit requests Per period on average, at most Burst
// at once (GCRA).
type RequestLimit struct {
	Limit int64
	Per   time.Duration
	Burst int64 // 0: Limit
}

// TokenLimit is a token budget per calendar window.
type TokenLimit struct {
	Window Window
	Limit  int64
}

// Options configure the stage.
type Options struct {
	Backend Backend
	Classes []Class
	// Defaults maps a principal kind (user, service, agent) to the class
	// that applies when the policy names none. A kind without a default
	// is not limited unless the policy's rate_class obligation names a class.
	Defaults map[string]string
	// FailOpen lets exchanges through when the backend cannot answer
	// (counted in a metric and logged); the default fails closed (503).
	FailOpen bool
	// Tokenizer counts prompt and completion tokens; required when a
	// class has token budgets.
	Tokenizer *Tokenizer
	// Registerer receives the stage's metrics; nil: none.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	Now        func() time.Time // default time.Now
}

// stageChecks is the most checks of one exchange: a request limit and
// one budget per window.
const stageChecks = 1 + int(Month)

// Codes of the stage's errors.
const (
	CodeRateLimited      = "rate_limit_exceeded"         // 429: too many requests
	CodeTokenBudget      = "token_budget_exceeded"       // 429: the token budget of a window is used up
	CodeReservationLarge = "token_reservation_too_large" // 400: prompt + max_tokens exceed a whole budget
	CodeUnavailable      = "rate_limit_unavailable"      // 503: the backend cannot answer (fail closed)
)

// Stage is the limit stage: after authorize, before the proxy. It charges
// the exchange's class atomically or refuses it with 429 and Retry-After,
// and reconciles the tokens reserved with the usage of the response.
type Stage struct {
	backend  Backend
	classes  map[string]*class
	defaults map[string]*class
	failOpen bool
	tok      *Tokenizer
	logger   *slog.Logger
	now      func() time.Time
	m        *metrics

	openLogged atomic.Int64 // unix ns of the last fail-open log line
	openQuiet  atomic.Int64 // fail-open exchanges not logged since

	// ClassOverride, when set, names a class that applies to the principal
	// instead of the obligation's or the default (a throttle imposed by
	// automated response, internal/respond). It is called once per exchange
	// and must be cheap; a name that is not a configured class fails the
	// exchange closed. Set it before the stage serves.
	ClassOverride func(p *gateway.Principal) (class string, ok bool)
}

type class struct {
	Class
	interval time.Duration
	burst    int64
}

// NewStage validates o and returns the stage.
func NewStage(o Options) (*Stage, error) {
	if o.Backend == nil {
		return nil, errors.New("limit: no backend")
	}
	s := &Stage{backend: o.Backend, classes: map[string]*class{}, defaults: map[string]*class{},
		failOpen: o.FailOpen, tok: o.Tokenizer, logger: o.Logger, now: o.Now}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, c := range o.Classes {
		if c.Name == "" || s.classes[c.Name] != nil {
			return nil, fmt.Errorf("limit: class %q: empty or duplicate name", c.Name)
		}
		cl := &class{Class: c}
		if r := c.Requests; r != nil {
			if r.Limit < 1 || r.Per <= 0 || r.Burst < 0 {
				return nil, fmt.Errorf("limit: class %q: requests: limit and per must be positive", c.Name)
			}
			cl.interval = max(time.Microsecond, r.Per/time.Duration(r.Limit))
			cl.burst = r.Burst
			if cl.burst == 0 {
				cl.burst = r.Limit
			}
		}
		seen := map[Window]bool{}
		for _, t := range c.Tokens {
			if t.Limit < 1 || t.Window < Minute || t.Window > Month || seen[t.Window] {
				return nil, fmt.Errorf("limit: class %q: tokens per %s: invalid or duplicate", c.Name, t.Window)
			}
			seen[t.Window] = true
			if s.tok == nil {
				return nil, fmt.Errorf("limit: class %q has token budgets but no tokenizer", c.Name)
			}
		}
		if 1+len(c.Tokens) > stageChecks {
			return nil, fmt.Errorf("limit: class %q: too many limits", c.Name)
		}
		s.classes[c.Name] = cl
	}
	for kind, name := range o.Defaults {
		cl := s.classes[name]
		if cl == nil {
			return nil, fmt.Errorf("limit: default class for %s: unknown class %q", kind, name)
		}
		s.defaults[kind] = cl
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	return s, nil
}

// HasClass reports whether name is a configured class.
func (s *Stage) HasClass(name string) bool { return s.classes[name] != nil }

// EnforceRateClass is the enforcer of the policy's rate_class obligation
// (register it with the authorize stage's Enforce): it selects the class
// the limit stage applies. A class that is not configured refuses the
// exchange (403, a policy error): a limit the policy asked for and nobody
// applies is a promise broken silently.
func (s *Stage) EnforceRateClass(ex *gateway.Exchange, value any) error {
	name, _ := value.(string)
	if s.classes[name] == nil {
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "policy_error",
			fmt.Errorf("limit: obligation rate_class names %q, which is not a class in limits.classes", name),
			"the request is not permitted by policy")
	}
	ex.Obligations.RateClass = name
	ex.Obligations.Applied = append(ex.Obligations.Applied, "rate_class:"+name)
	return nil
}

// classFor returns the class of the exchange: the override's, else the
// obligation's, else the default of the principal's kind, else nil (not
// limited).
func (s *Stage) classFor(ex *gateway.Exchange) (*class, error) {
	if s.ClassOverride != nil {
		if name, ok := s.ClassOverride(ex.Principal); ok {
			if c := s.classes[name]; c != nil {
				ex.Obligations.Applied = append(ex.Obligations.Applied, "rate_class:"+name+":override")
				return c, nil
			}
			return nil, fmt.Errorf("limit: override class %q is not configured", name)
		}
	}
	if name := ex.Obligations.RateClass; name != "" {
		if c := s.classes[name]; c != nil {
			return c, nil
		}
		return nil, fmt.Errorf("limit: rate class %q is not configured", name)
	}
	return s.defaults[ex.Principal.Kind], nil
}

// tag is the principal's hash tag: its kind and id hashed, so that keys
// stay short, carry no identifier in clear, and cannot collide by choice.
func tag(p *gateway.Principal) string {
	var buf [256]byte
	b := append(append(append(buf[:0], p.Kind...), 0), p.ID...)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// modelKey is a short, brace-free name for a client-chosen model string.
func modelKey(model string) string {
	h := fnv.New64a()
	h.Write([]byte(model))
	return "m" + strconv.FormatUint(h.Sum64(), 36)
}

// tokenRoute reports whether the exchange's tokens can be counted: an
// OpenAI-compatible route with a body.
func tokenRoute(ex *gateway.Exchange) bool {
	return ex.Route != nil && ex.Route.API == "openai" && len(ex.Body) > 0
}

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex.Principal == nil {
		return errors.New("limit: stage reached without a principal")
	}
	c, err := s.classFor(ex)
	if err != nil {
		return err // a wiring fault: 500, fail closed
	}
	if c == nil {
		return next(ex)
	}
	now := s.now()
	tg := tag(ex.Principal)
	var dims [2]string
	nd := 0
	if c.ByRoute && ex.Route != nil {
		dims[nd] = "r=" + ex.Route.Name
		nd++
	}
	if c.ByModel {
		dims[nd] = modelKey(ex.Model)
		nd++
	}
	var checks [stageChecks]Check
	var windows [stageChecks]Window // of each token check
	n := 0
	if c.Requests != nil {
		checks[n] = Check{Key: key(tg, c.Name, "q", dims[:nd], false, 0), Kind: KindRate, Cost: 1,
			Interval: c.interval, Burst: c.burst}
		n++
	}
	counting := len(c.Tokens) > 0 && tokenRoute(ex)
	var est Estimate
	if counting {
		est = s.estimate(ex)
		ex.Usage = gateway.Usage{PromptTokens: est.Prompt}
	}
	reserve := est.Prompt + est.Completion
	for _, tl := range c.Tokens {
		if reserve > tl.Limit {
			s.m.refused(c.Name, "tokens_"+tl.Window.String())
			return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, CodeReservationLarge,
				fmt.Errorf("limit: class %q: reservation %d (prompt %d + completion %d) > tokens per %s %d",
					c.Name, reserve, est.Prompt, est.Completion, tl.Window, tl.Limit),
				"the request may use up to %d tokens (prompt plus max_tokens), more than the token budget per %s allows; lower max_tokens or shorten the prompt",
				reserve, tl.Window)
		}
		start, end := tl.Window.Bounds(now)
		checks[n] = Check{Key: key(tg, c.Name, windowWhat(tl.Window), dims[:nd], true, start.Unix()),
			Kind: KindWindow, Cost: reserve, Limit: tl.Limit, End: end}
		windows[n] = tl.Window
		n++
	}
	if n == 0 {
		return next(ex)
	}
	ctx := ex.Request.Context()
	res, err := s.backend.Take(ctx, tg, now, checks[:n])
	if err != nil {
		return s.unavailable(ex, c, err, next)
	}
	if !res.Allowed {
		return s.refuse(ex, c, &checks[res.Failed], windows[res.Failed], res.RetryAfter)
	}
	if !counting {
		return next(ex)
	}

	orig := ex.Writer
	uw := NewUsageWriter(orig, s.tok, ex.Model)
	ex.Writer = gateway.NewResponseWriter(uw)
	err = next(ex)
	ex.Writer = orig
	u := uw.Usage(est.Prompt)
	ex.Usage = gateway.Usage{PromptTokens: u.Prompt, CompletionTokens: u.Completion, Reported: u.Reported}
	if !u.Seen {
		ex.Usage = gateway.Usage{PromptTokens: est.Prompt}
	}
	s.m.tokens(c.Name, u)
	if delta := u.Prompt + u.Completion - reserve; delta != 0 {
		adds := make([]Adjustment, 0, len(c.Tokens))
		for _, ch := range checks[:n] {
			if ch.Kind == KindWindow {
				adds = append(adds, Adjustment{Key: ch.Key, Delta: delta, End: ch.End})
			}
		}
		// The response is out: reconcile even if the client has gone.
		actx := ctx
		if ctx.Done() != nil { // a context that cannot be canceled needs no wrapper
			actx = context.WithoutCancel(ctx)
		}
		if aerr := s.backend.Add(actx, tg, s.now(), adds); aerr != nil {
			s.m.backendError("reconcile")
			s.logger.Warn("limit: token usage not reconciled", "request_id", ex.ID, "class", c.Name,
				"delta", delta, "err", aerr)
		}
	}
	return err
}

// key builds a check key: tag, class, what, the dimensions, a window id
// (the window's start in base 36). It is Key(tg, class, what, dims...,
// win) built in one allocation.
func key(tg, class, what string, dims []string, hasWin bool, win int64) string {
	var buf [160]byte
	b := append(buf[:0], '{')
	b = append(b, tg...)
	b = append(b, '}', ':')
	b = append(b, class...)
	b = append(b, ':')
	b = append(b, what...)
	for _, d := range dims {
		b = append(b, ':')
		b = append(b, d...)
	}
	if hasWin {
		b = append(b, ':')
		b = strconv.AppendInt(b, win, 36)
	}
	return string(b)
}

// windowWhat names the counter of a token window in keys: "t" and the
// first two letters of the window.
func windowWhat(w Window) string {
	switch w {
	case Minute:
		return "tmi"
	case Hour:
		return "tho"
	case Day:
		return "tda"
	case Month:
		return "tmo"
	}
	return "t" + w.String()[:2]
}

// estimate counts the request's tokens; a body it cannot read is
// estimated from its size (it is JSON the body stage accepted, so this is
// rare), never zero.
func (s *Stage) estimate(ex *gateway.Exchange) Estimate {
	e, err := s.tok.EstimateRequest(ex.Body, ex.Model)
	if err != nil {
		return Estimate{Prompt: int64(len(ex.Body)+2) / 3}
	}
	return e
}

// refuse ends the exchange with 429 and Retry-After (RFC 9110 §10.2.3,
// whole seconds, rounded up).
func (s *Stage) refuse(ex *gateway.Exchange, c *class, failed *Check, win Window, retry time.Duration) error {
	secs := int64((retry + time.Second - 1) / time.Second)
	secs = max(1, secs)
	ex.Writer.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	if failed.Kind == KindRate {
		s.m.refused(c.Name, "requests")
		r := c.Requests
		return gateway.Errorf(http.StatusTooManyRequests, gateway.TypeRateLimit, CodeRateLimited,
			fmt.Errorf("limit: class %q: requests %d per %s (burst %d) exceeded", c.Name, r.Limit, r.Per, c.burst),
			"rate limit exceeded: too many requests; retry after %d seconds", secs)
	}
	w := win.String()
	s.m.refused(c.Name, "tokens_"+w)
	return gateway.Errorf(http.StatusTooManyRequests, gateway.TypeRateLimit, CodeTokenBudget,
		fmt.Errorf("limit: class %q: tokens per %s %d exceeded (requested %d)", c.Name, w, failed.Limit, failed.Cost),
		"token budget exceeded for this %s; retry after %d seconds", w, secs)
}

// logEvery bounds the fail-open log lines.
const logEvery = 10 * time.Second

// unavailable handles a backend that cannot answer: 503 (closed, the
// default) or the exchange goes on unlimited (open), counted and logged.
func (s *Stage) unavailable(ex *gateway.Exchange, c *class, err error, next func(*gateway.Exchange) error) error {
	if !s.failOpen {
		s.m.backendError("refused")
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeUnavailable, err,
			"rate limits cannot be checked right now; the request was not forwarded")
	}
	s.m.backendError("allowed")
	now := time.Now().UnixNano()
	last := s.openLogged.Load()
	if now-last >= int64(logEvery) && s.openLogged.CompareAndSwap(last, now) {
		s.logger.Warn("limit: backend unavailable; failing OPEN (limits.failure_mode: open): exchanges pass unlimited",
			"request_id", ex.ID, "class", c.Name, "err", err, "also_unlimited_since_last_log", s.openQuiet.Swap(0))
	} else {
		s.openQuiet.Add(1)
	}
	ex.Obligations.Applied = append(ex.Obligations.Applied, "rate_class:"+c.Name+":fail_open")
	return next(ex)
}

// Close closes the backend.
func (s *Stage) Close() error { return s.backend.Close() }

// Ping checks the backend (readiness).
func (s *Stage) Ping(ctx context.Context) error { return s.backend.Ping(ctx) }

// metrics are the stage's Prometheus collectors; label values come from
// the config (class names) or fixed sets.
type metrics struct {
	refusedC *prometheus.CounterVec
	backendC *prometheus.CounterVec
	tokensC  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	m.refusedC = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_limit_refused_total",
		Help: "Exchanges refused by a limit, by class and limit (requests, tokens_minute, tokens_hour, tokens_day, tokens_month).",
	}, []string{"class", "limit"})
	m.backendC = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_limit_backend_errors_total",
		Help: "Limit backend failures by outcome: refused (fail closed, 503), allowed (fail open), reconcile (usage not reconciled).",
	}, []string{"outcome"})
	m.tokensC = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_limit_tokens_total",
		Help: "Tokens charged to budgets after the response, by class and source (reported by the upstream, or counted by warden).",
	}, []string{"class", "source"})
	if reg != nil {
		for _, c := range []prometheus.Collector{m.refusedC, m.backendC, m.tokensC} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("limit: metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) refused(class, limit string) { m.refusedC.WithLabelValues(class, limit).Inc() }

func (m *metrics) backendError(outcome string) { m.backendC.WithLabelValues(outcome).Inc() }

func (m *metrics) tokens(class string, u Usage) {
	if !u.Seen {
		return
	}
	src := "counted"
	if u.Reported {
		src = "reported"
	}
	m.tokensC.WithLabelValues(class, src).Add(float64(u.Prompt + u.Completion))
}

var _ gateway.Stage = (*Stage)(nil)
