package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/warden-ai/warden/internal/gateway"
)

// Public messages. They say nothing about rules or reasons: those go to the
// Decision and the audit record only.
const (
	msgDenied      = "the request is not permitted by policy"
	msgUnavailable = "authorization is temporarily unavailable; the request was not forwarded"
	msgInternal    = "internal error; the request was not forwarded"
)

// ReasonObligationNotMet prefixes the reason recorded when an enforcer
// refused an allowed exchange: "obligation not met: <key>".
const ReasonObligationNotMet = "obligation not met: "

// Error codes the stage returns.
const (
	CodeDenied      = "policy_denied"      // 403: the policy denied, or allowed with an obligation warden cannot enforce
	CodeError       = "policy_error"       // 403: the policy failed (runtime error, malformed output)
	CodeUnavailable = "policy_unavailable" // 503: the engine failed (panic, context ended, no engine)
)

// Stage is the authorize stage: it evaluates the policy for each exchange,
// always records the Decision in ex.Decision, and calls next only on an
// allow. Its Engine can be replaced at any time with Swap.
type Stage struct {
	engine    atomic.Pointer[Engine]
	logger    *slog.Logger
	enforcers map[string]ObligationFunc // set before serving, read-only after
	input     InputOptions              // set before serving, read-only after
	memoMax   int                       // set before serving, read-only after
	memo      atomic.Pointer[decisionMemo]

	memoHits, memoMisses atomic.Uint64
}

// ObligationFunc enforces one kind of obligation on an allowed exchange. It
// gets the obligation's value from the policy; a returned error ends the
// exchange (e.g. a 401 step-up challenge for require_mfa), nil lets it go on.
type ObligationFunc func(ex *gateway.Exchange, value any) error

// Enforce registers the enforcer of an obligation kind. It must be called
// before the stage serves. An obligation that the policy returns and that
// has no enforcer here denies the request.
//
// warden's own enforcers: EnforceMaxTokens (max_tokens), EnforceAuditLevel
// (audit_level), mfa.RequireMFA (require_mfa); mask gets its enforcer from
// the guard stage (internal/inspect) when guards are enabled. rate_class
// has none until the limit stage exists, so it denies.
func (s *Stage) Enforce(kind string, fn ObligationFunc) {
	if s.enforcers == nil {
		s.enforcers = map[string]ObligationFunc{}
	}
	s.enforcers[kind] = fn
}

// NewStage returns an authorize stage evaluating e. A nil logger discards.
func NewStage(e *Engine, logger *slog.Logger) *Stage {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Stage{logger: logger, memoMax: DefaultMemoEntries}
	s.engine.Store(e)
	return s
}

// SetMemoEntries sets how many decisions the stage remembers (see
// decisionMemo); 0 turns the memo off. The default is DefaultMemoEntries.
// It must be called before the stage serves.
func (s *Stage) SetMemoEntries(n int) { s.memoMax = n }

// MemoStats returns how many decisions were taken from the memo and how
// many were evaluated while it was in use, since the stage was made.
func (s *Stage) MemoStats() (hits, misses uint64) {
	return s.memoHits.Load(), s.memoMisses.Load()
}

// memoFor returns the memo of engine e, making it when e is new.
func (s *Stage) memoFor(e *Engine) *decisionMemo {
	m := s.memo.Load()
	if m != nil && m.engine == e {
		return m
	}
	n := newDecisionMemo(e, s.memoMax)
	if s.memo.CompareAndSwap(m, n) {
		return n
	}
	if m = s.memo.Load(); m != nil && m.engine == e {
		return m
	}
	return n // another engine's memo won the race: use this one for this exchange only
}

// Decide decides in with the engine in force, through the memo: the
// decision Handle would make for an exchange with this input, without the
// obligations' enforcement. The MCP gateway asks it about each tool,
// prompt and resource a list would show.
func (s *Stage) Decide(ctx context.Context, in Input) (gateway.Decision, error) {
	e := s.engine.Load()
	if e == nil {
		return gateway.Decision{Reasons: []string{ReasonUnavailable}}, fmt.Errorf("policy: decide: %w: no engine loaded", ErrUnavailable)
	}
	return s.decide(ctx, e, &in)
}

// decide is e.Decide through the memo.
func (s *Stage) decide(ctx context.Context, e *Engine, in *Input) (gateway.Decision, error) {
	m := s.memoFor(e)
	if m.off || ctx.Err() != nil { // Decide answers an ended context
		return e.Decide(ctx, *in)
	}
	kp := memoKeys.Get().(*[]byte)
	defer memoKeys.Put(kp)
	key, ok := memoKey((*kp)[:0], in, &e.fields)
	if cap(key) <= maxMemoKey {
		*kp = key[:0]
	}
	if !ok || len(key) > maxMemoKey {
		return e.Decide(ctx, *in)
	}
	if d, ok := m.get(key); ok {
		s.memoHits.Add(1)
		return d, nil
	}
	s.memoMisses.Add(1)
	d, err := e.Decide(ctx, *in)
	if err == nil {
		m.put(key, d)
	}
	return d, err
}

// SetInputOptions sets the time zone and networks the input is built with.
// It must be called before the stage serves.
func (s *Stage) SetInputOptions(o InputOptions) { s.input = o }

// Enforced returns the obligation kinds this stage has an enforcer for, sorted.
func (s *Stage) Enforced() []string {
	kinds := make([]string, 0, len(s.enforcers))
	for k := range s.enforcers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// Swap makes e the engine for exchanges that start from now on and returns
// the previous one. Exchanges in flight finish with the engine they began
// with. A nil engine makes every exchange fail with 503.
func (s *Stage) Swap(e *Engine) *Engine { return s.engine.Swap(e) }

// Engine returns the current engine.
func (s *Stage) Engine() *Engine { return s.engine.Load() }

// Handle implements gateway.Stage.
func (s *Stage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	e := s.engine.Load()
	if e == nil {
		ex.Decision = &gateway.Decision{Reasons: []string{ReasonUnavailable}}
		err := errors.New("policy: no engine loaded")
		s.logger.Error("policy: unavailable", "request_id", ex.ID, "err", err)
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeUnavailable, err, msgUnavailable)
	}
	in, err := newInput(ex, s.input, &e.fields)
	if err != nil {
		// A missing principal or a value another stage got wrong is a
		// wiring fault, not a client error: fail closed.
		ex.Decision = &gateway.Decision{Reasons: []string{ReasonError}, PolicyVersion: e.version}
		s.logger.Error("policy: cannot build input", "request_id", ex.ID, "err", err)
		return gateway.Errorf(http.StatusInternalServerError, gateway.TypeServer, "internal_error", err, msgInternal)
	}

	ctx := ex.Request.Context()
	d, err := s.decide(ctx, e, &in)
	ex.Decision = &d
	if err != nil {
		d.Allow = false // Decide never allows with an error; make it impossible here too.
		if errors.Is(err, ErrUnavailable) {
			attrs := []any{"request_id", ex.ID, "policy_version", d.PolicyVersion, "err", err}
			if pe, ok := errors.AsType[*panicError](err); ok {
				attrs = append(attrs, "stack", string(pe.stack))
			}
			level := slog.LevelError
			if errors.Is(err, context.Canceled) {
				level = slog.LevelWarn // the client went away; not an engine fault
			}
			s.logger.Log(ctx, level, "policy: engine unavailable", attrs...)
			return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, CodeUnavailable, err, msgUnavailable)
		}
		s.logger.Warn("policy: evaluation error", "request_id", ex.ID, "policy_version", d.PolicyVersion, "err", err)
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeError, err, msgDenied)
	}
	EnforceObligations(&d)
	if d.Allow {
		if err := s.enforce(ex, &d); err != nil {
			s.logger.Debug("policy: obligation not met", "request_id", ex.ID, "policy_version", d.PolicyVersion, "err", err)
			return err
		}
	}
	if !d.Allow {
		s.logger.Debug("policy: denied", "request_id", ex.ID, "policy_version", d.PolicyVersion, "reasons", d.Reasons)
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, CodeDenied,
			errors.New("policy: denied: "+strings.Join(d.Reasons, "; ")), msgDenied)
	}
	return next(ex)
}

// enforce runs the enforcer of every obligation of an allow, in a fixed
// (sorted) order. A known obligation without an enforcer turns the allow
// into a deny: the policy's promise would otherwise be broken silently. An
// enforcer that refuses (a step-up challenge, a body it cannot cap) turns
// the allow into a deny too, and its error ends the exchange; an error
// that is not a *gateway.Error is an internal fault (500).
func (s *Stage) enforce(ex *gateway.Exchange, d *gateway.Decision) error {
	if len(d.Obligations) == 0 {
		return nil
	}
	if DenyUnenforced(d, func(kind string) bool { return s.enforcers[kind] != nil }) {
		return nil // nothing is carried out for a request that will not go on
	}
	for _, k := range slices.Sorted(maps.Keys(d.Obligations)) {
		if err := s.enforcers[k](ex, d.Obligations[k]); err != nil {
			d.Allow = false
			d.Reasons = append(d.Reasons, ReasonObligationNotMet+k)
			return err
		}
	}
	return nil
}

var _ gateway.Stage = (*Stage)(nil)
