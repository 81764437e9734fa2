package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/gateway"
)

// Action types of a playbook.
const (
	ActionThrottle   = Throttle
	ActionRequireMFA = RequireMFA
	ActionQuarantine = Quarantine
	ActionRevoke     = "revoke"
	ActionWebhook    = "webhook"
	ActionRollback   = "rollback"
)

// Outcomes of an action, as reported in audit records and alerts.
const (
	OutcomeApplied    = "applied"     // the sanction is in force (new, or replacing one that ended sooner)
	OutcomeUnchanged  = "unchanged"   // a sanction of the type ending at least as late was already in force
	OutcomeRevoked    = "revoked"     // the credential is revoked
	OutcomeRolledBack = "rolled_back" // the model's previous version is active again
	OutcomeSkipped    = "skipped"     // the action does not apply to this principal or credential
	OutcomeFailed     = "failed"      // the action could not be carried out (see the error)
	OutcomeQueued     = "queued"      // the alert waits for delivery
	OutcomeDropped    = "dropped"     // the alert queue was full
)

// Audit actions of the records the responder writes itself.
const (
	AuditApply    = "sanction.apply"   // a sanction imposed (by a playbook or an operator); Code is its type
	AuditLift     = "sanction.lift"    // a sanction ended early by an operator
	AuditExpire   = "sanction.expire"  // a sanction that ended by itself
	AuditRevoke   = "respond.revoke"   // a playbook's revoke action
	AuditWebhook  = "respond.webhook"  // a playbook's alert, queued or dropped
	AuditRollback = "respond.rollback" // a playbook's model rollback
)

// SanctionsPath is where the sanctions API is served; audit records of a
// sanction name SanctionsPath/<id>.
const SanctionsPath = "/v1/warden/sanctions"

// SourceManual is the source of sanctions operators impose.
const SourceManual = "manual"

// ErrNotRevocable is what a Revoker returns for a credential warden cannot
// revoke (an OIDC token, a client certificate): the revoke action is then
// skipped, and a quarantine is the way to stop the principal.
var ErrNotRevocable = errors.New("credential cannot be revoked by warden")

// A Revoker revokes a principal's credential, durably and so that running
// streams end (the identity stage's continuous verification). It returns
// what it revoked, e.g. "API key 0123…" or "warden token jti …".
type Revoker interface {
	RevokeCredential(ctx context.Context, kind, id, credential, reason string) (string, error)
}

// A Rollbacker rolls a registry model back to the version that was active
// before the current one, durably (routes bound to the model serve it from
// the next request). changed is false when the current version is itself
// the result of a rollback: a playbook rolls back at most one step past
// the last promotion, however many anomalies follow; going further is a
// person's decision. version is the version active afterwards.
type Rollbacker interface {
	RollbackModel(ctx context.Context, model, reason, requestID string) (version string, changed bool, err error)
}

// An Auditor appends a record to the audit log.
type Auditor interface {
	Append(ctx context.Context, r *audit.Record) error
}

// Playbook is a compiled responses.playbooks entry.
type Playbook struct {
	Name     string
	MinScore float64  // 0: any
	MinRisk  float64  // 0: any
	Features []string // any of them drove the anomaly; empty: any
	Kinds    []string // the principal is of one of these kinds; empty: any
	Actions  []Action
}

// Action is one step of a playbook.
type Action struct {
	Type     string        // throttle | require_mfa | quarantine | revoke | webhook
	Duration time.Duration // throttle, require_mfa, quarantine
	Class    string        // throttle
	Webhook  string        // webhook
	Route    string        // rollback: the route, for the record
	Model    string        // rollback: the registry model bound to Route
}

// Matches reports whether the playbook acts on a.
func (p *Playbook) Matches(a behavior.Anomaly) bool {
	if a.Score < p.MinScore || a.Risk < p.MinRisk {
		return false
	}
	if len(p.Kinds) > 0 && !slices.Contains(p.Kinds, a.Kind) {
		return false
	}
	if len(p.Features) > 0 && !slices.ContainsFunc(a.Features, func(f behavior.Feature) bool {
		return slices.Contains(p.Features, f.Name)
	}) {
		return false
	}
	return true
}

// Result is what one action did.
type Result struct {
	Type      string    `json:"type"`
	Outcome   string    `json:"outcome"`
	Sanction  string    `json:"sanction,omitempty"` // the sanction's id
	Class     string    `json:"class,omitempty"`    // a throttle's class
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Detail    string    `json:"detail,omitempty"` // what was revoked, why it was skipped or failed
}

// Options configure a Responder.
type Options struct {
	Store     *Store
	Playbooks []Playbook
	Webhooks  []*Webhook
	Revoker   Revoker    // required when a playbook revokes
	Rollback  Rollbacker // required when a playbook rolls back
	Audit     Auditor    // required
	// HasClass reports whether a throttle class is configured in
	// limits.classes; nil: none is (throttle is refused).
	HasClass func(name string) bool
	// MFA reports whether step-up is configured (identity.mfa); without it
	// require_mfa is refused (nobody could satisfy it).
	MFA bool
	// MaxDuration caps every sanction (responses.max_duration).
	MaxDuration time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Now         func() time.Time
}

// Responder carries out playbooks for the behaviour engine
// (behavior.Responder) and sanctions for operators (Impose, Lift).
type Responder struct {
	store     *Store
	playbooks []Playbook
	hooks     map[string]*Webhook
	revoker   Revoker
	rollback  Rollbacker
	audit     Auditor
	hasClass  func(string) bool
	mfa       bool
	maxDur    time.Duration
	logger    *slog.Logger
	now       func() time.Time
	m         *metrics
}

// New checks o and returns the responder. Webhooks deliver once Run runs.
func New(o Options) (*Responder, error) {
	if o.Store == nil || o.Audit == nil {
		return nil, errors.New("respond: a store and an audit log are required")
	}
	if o.MaxDuration <= 0 {
		return nil, errors.New("respond: no maximum sanction duration")
	}
	r := &Responder{store: o.Store, playbooks: o.Playbooks, hooks: map[string]*Webhook{}, revoker: o.Revoker, rollback: o.Rollback,
		audit: o.Audit, hasClass: o.HasClass, mfa: o.MFA, maxDur: o.MaxDuration, logger: o.Logger, now: o.Now}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.hasClass == nil {
		r.hasClass = func(string) bool { return false }
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	r.m = m
	for _, w := range o.Webhooks {
		if w == nil || r.hooks[w.name] != nil {
			return nil, fmt.Errorf("respond: webhook %q: nil or duplicate", w.name)
		}
		w.m = m
		r.hooks[w.name] = w
	}
	for i := range r.playbooks {
		pb := &r.playbooks[i]
		for _, a := range pb.Actions {
			if err := r.checkAction(a); err != nil {
				return nil, fmt.Errorf("respond: playbook %q: %w", pb.Name, err)
			}
		}
	}
	return r, nil
}

func (r *Responder) checkAction(a Action) error {
	switch a.Type {
	case ActionThrottle, ActionRequireMFA, ActionQuarantine:
		return r.checkSanction(a.Type, a.Class, a.Duration)
	case ActionRevoke:
		if r.revoker == nil {
			return errors.New("revoke: no revoker")
		}
	case ActionWebhook:
		if r.hooks[a.Webhook] == nil {
			return fmt.Errorf("webhook %q is not configured", a.Webhook)
		}
	case ActionRollback:
		if r.rollback == nil || a.Model == "" {
			return fmt.Errorf("rollback of route %q: no model registry or no model bound to the route", a.Route)
		}
	default:
		return fmt.Errorf("unknown action %q", a.Type)
	}
	return nil
}

// checkSanction says why a sanction cannot be imposed; the messages are
// meant for the operator.
func (r *Responder) checkSanction(typ, class string, d time.Duration) error {
	switch typ {
	case Throttle:
		if !r.hasClass(class) {
			return fmt.Errorf("%w: throttle class %q is not in limits.classes", ErrInvalid, class)
		}
	case RequireMFA:
		if !r.mfa {
			return fmt.Errorf("%w: require_mfa needs identity.mfa (nobody could step up)", ErrInvalid)
		}
		if class != "" {
			return fmt.Errorf("%w: only a throttle takes a class", ErrInvalid)
		}
	case Quarantine:
		if class != "" {
			return fmt.Errorf("%w: only a throttle takes a class", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: type must be quarantine, require_mfa or throttle", ErrInvalid)
	}
	if d < time.Second || d > r.maxDur {
		return fmt.Errorf("%w: duration must be between 1s and %s (responses.max_duration)", ErrInvalid, r.maxDur)
	}
	return nil
}

// Respond implements behavior.Responder: the first playbook matching a
// runs its actions in order, the webhooks last so that they report what the
// others did. Each action leaves an audit record. The error joins the
// actions that failed; the others were carried out.
func (r *Responder) Respond(ctx context.Context, a behavior.Anomaly) error {
	if err := checkAnomaly(&a); err != nil {
		r.m.anomalies.WithLabelValues("invalid").Inc()
		return err
	}
	i := slices.IndexFunc(r.playbooks, func(p Playbook) bool { return p.Matches(a) })
	if i < 0 {
		r.m.anomalies.WithLabelValues("none").Inc()
		return nil
	}
	pb := &r.playbooks[i]
	r.m.anomalies.WithLabelValues(pb.Name).Inc()
	var results []Result
	var errs []error
	for _, act := range pb.Actions {
		if act.Type == ActionWebhook {
			continue
		}
		res, err := r.act(ctx, pb, act, a)
		results = append(results, res)
		r.m.actions.WithLabelValues(act.Type, res.Outcome).Inc()
		if err != nil {
			errs = append(errs, fmt.Errorf("respond: playbook %s: %s: %w", pb.Name, act.Type, err))
		}
	}
	for _, act := range pb.Actions {
		if act.Type != ActionWebhook {
			continue
		}
		res, err := r.alert(ctx, pb, act, a, results)
		r.m.actions.WithLabelValues(act.Type, res.Outcome).Inc()
		if err != nil {
			errs = append(errs, fmt.Errorf("respond: playbook %s: webhook %s: %w", pb.Name, act.Webhook, err))
		}
	}
	return errors.Join(errs...)
}

// otherSubject reports whether an anomaly is about something other than a
// principal: unauthenticated traffic from one network
// (behavior.KindNetwork). Playbooks may still alert on it or roll a model
// back; sanctions and revocations are skipped.
func otherSubject(kind, id string) bool {
	return kind == behavior.KindNetwork && id != "" && len(id) <= MaxPrincipalIDBytes && printable(id)
}

// checkAnomaly checks what the engine reports and fills in the principal key.
func checkAnomaly(a *behavior.Anomaly) error {
	key := behavior.PrincipalKey(a.Kind, a.ID)
	if a.Principal == "" {
		a.Principal = key
	}
	if a.Principal != key {
		return fmt.Errorf("respond: %w: anomaly principal %q is not %s", ErrInvalid, clipText(a.Principal, 64), clipText(key, 64))
	}
	if _, _, err := SplitPrincipal(key); err != nil && !otherSubject(a.Kind, a.ID) {
		return err
	}
	for _, x := range []float64{a.Score, a.Risk} {
		if math.IsNaN(x) || x < 0 || x > 1 {
			return fmt.Errorf("respond: %w: anomaly score and risk must be within 0..1", ErrInvalid)
		}
	}
	return nil
}

func (r *Responder) act(ctx context.Context, pb *Playbook, act Action, a behavior.Anomaly) (Result, error) {
	res := Result{Type: act.Type}
	if act.Type != ActionRollback && !principalKinds[a.Kind] {
		res.Outcome, res.Detail = OutcomeSkipped, act.Type+" applies to principals only (this anomaly is about a "+a.Kind+")"
		return res, r.record(ctx, a, auditActionOf(act.Type), act.Type+"_skipped", "", "playbook "+pb.Name+": "+res.Detail)
	}
	switch act.Type {
	case ActionRevoke:
		return r.revoke(ctx, pb, a)
	case ActionRollback:
		return r.rollbackModel(ctx, pb, act, a)
	case ActionRequireMFA:
		if a.Kind != gateway.KindUser {
			res.Outcome, res.Detail = OutcomeSkipped, "require_mfa applies to users only (a "+a.Kind+" has no second factor)"
			return res, r.record(ctx, a, AuditApply, act.Type+"_skipped", "", "playbook "+pb.Name+": "+res.Detail)
		}
	}
	reason := "playbook " + pb.Name + ": " + a.Reason
	x := Sanction{Principal: a.Principal, Type: act.Type, Class: act.Class, Reason: clipText(safeText(reason), MaxReasonBytes),
		Source: "playbook:" + pb.Name, CreatedBy: "warden", RequestID: safeReqID(a.RequestID),
		ExpiresAt: r.now().Add(act.Duration)}
	s, changed, err := r.impose(ctx, x, a.Credential, "anomaly score "+fmtScore(a.Score)+", risk "+fmtScore(a.Risk)+"; "+reason)
	if err != nil {
		res.Outcome, res.Detail = OutcomeFailed, "the sanction could not be stored"
		return res, err
	}
	res.Outcome, res.Sanction, res.Class, res.ExpiresAt = OutcomeApplied, s.ID, s.Class, s.ExpiresAt
	if !changed {
		res.Outcome = OutcomeUnchanged
	}
	return res, nil
}

// impose stores x and then records it. A failed store reports nothing as
// taken; a failed record after a successful store leaves the sanction in
// force (the safe side) and returns the error.
func (r *Responder) impose(ctx context.Context, x Sanction, credential, why string) (Sanction, bool, error) {
	s, changed, err := r.store.Apply(x)
	if err != nil {
		return Sanction{}, false, err
	}
	if !changed {
		why = fmt.Sprintf("already in force until %s (%s); %s", s.ExpiresAt.Format(time.RFC3339), s.ID, why)
	} else {
		why = fmt.Sprintf("until %s; %s", s.ExpiresAt.Format(time.RFC3339), why)
	}
	if s.Type == Throttle {
		why = "class " + s.Class + ", " + why
	}
	code := s.Type
	if !changed {
		code += "_unchanged"
	}
	rec := sanctionRecord(r.now(), AuditApply, code, s, credential, why)
	if err := r.audit.Append(ctx, rec); err != nil {
		r.logger.Error("respond: sanction in force but not audited", "sanction", s.ID, "principal", s.Principal, "type", s.Type, "err", err)
		return s, changed, fmt.Errorf("respond: audit sanction %s: %w", s.ID, err)
	}
	if changed {
		r.logger.Warn("respond: sanction imposed", "sanction", s.ID, "principal", s.Principal, "type", s.Type,
			"class", s.Class, "until", s.ExpiresAt, "source", s.Source, "by", s.CreatedBy)
	}
	return s, changed, nil
}

func (r *Responder) revoke(ctx context.Context, pb *Playbook, a behavior.Anomaly) (Result, error) {
	res := Result{Type: ActionRevoke}
	if a.Credential == "" {
		res.Outcome, res.Detail = OutcomeSkipped, "the anomaly names no credential"
		return res, r.record(ctx, a, AuditRevoke, "revoke_skipped", "", "playbook "+pb.Name+": "+res.Detail)
	}
	what, err := r.revoker.RevokeCredential(ctx, a.Kind, a.ID, a.Credential,
		clipText(safeText("playbook "+pb.Name+": "+a.Reason), 256))
	switch {
	case errors.Is(err, ErrNotRevocable):
		res.Outcome, res.Detail = OutcomeSkipped, "warden cannot revoke this credential (not an API key or warden token)"
		return res, r.record(ctx, a, AuditRevoke, "revoke_skipped", a.Credential, "playbook "+pb.Name+": "+res.Detail)
	case err != nil:
		res.Outcome, res.Detail = OutcomeFailed, "the revocation could not be stored"
		r.logger.Error("respond: revoke failed", "principal", a.Principal, "credential", a.Credential, "err", err)
		return res, err
	}
	res.Outcome, res.Detail = OutcomeRevoked, what
	r.logger.Warn("respond: credential revoked", "principal", a.Principal, "revoked", what, "playbook", pb.Name)
	return res, r.record(ctx, a, AuditRevoke, "credential_revoked", a.Credential,
		"playbook "+pb.Name+": revoked "+what+"; anomaly score "+fmtScore(a.Score)+": "+a.Reason)
}

func (r *Responder) rollbackModel(ctx context.Context, pb *Playbook, act Action, a behavior.Anomaly) (Result, error) {
	res := Result{Type: ActionRollback}
	reason := clipText(safeText("playbook "+pb.Name+": anomaly of "+a.Principal+" (score "+fmtScore(a.Score)+"): "+a.Reason), 256)
	version, changed, err := r.rollback.RollbackModel(ctx, act.Model, reason, safeReqID(a.RequestID))
	if err != nil {
		res.Outcome, res.Detail = OutcomeFailed, "model "+act.Model+" (route "+act.Route+") could not be rolled back"
		r.logger.Error("respond: rollback failed", "model", act.Model, "route", act.Route, "playbook", pb.Name, "err", err)
		return res, err
	}
	res.Outcome, res.Detail = OutcomeRolledBack, "route "+act.Route+" serves model "+act.Model+"@"+version
	code := "model_rolled_back"
	if !changed {
		res.Outcome = OutcomeUnchanged
		res.Detail += " (already rolled back since the last promotion)"
		code = "rollback_unchanged"
	} else {
		r.logger.Warn("respond: model rolled back", "model", act.Model, "version", version, "route", act.Route, "playbook", pb.Name)
	}
	return res, r.record(ctx, a, AuditRollback, code, "", "playbook "+pb.Name+": "+res.Detail+"; anomaly score "+fmtScore(a.Score)+": "+a.Reason)
}

// Alert is the JSON body a webhook receives.
type Alert struct {
	ID        string           `json:"id"`   // unique per alert, the same on every retry (X-Warden-Event-Id)
	Type      string           `json:"type"` // "anomaly.response"
	CreatedAt time.Time        `json:"created_at"`
	Playbook  string           `json:"playbook"`
	Anomaly   behavior.Anomaly `json:"anomaly"`
	Actions   []Result         `json:"actions"` // what the playbook's other actions did
}

func (r *Responder) alert(ctx context.Context, pb *Playbook, act Action, a behavior.Anomaly, results []Result) (Result, error) {
	res := Result{Type: ActionWebhook, Detail: act.Webhook}
	w := r.hooks[act.Webhook]
	id, err := newEventID()
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, err
	}
	if results == nil {
		results = []Result{}
	}
	body, err := json.Marshal(Alert{ID: id, Type: "anomaly.response", CreatedAt: r.now().UTC(), Playbook: pb.Name,
		Anomaly: a, Actions: results})
	if err != nil {
		res.Outcome = OutcomeFailed
		return res, fmt.Errorf("encode alert: %w", err)
	}
	res.Outcome = OutcomeQueued
	if !w.Enqueue(id, body) {
		res.Outcome = OutcomeDropped
		r.logger.Error("respond: webhook queue full; alert dropped", "webhook", w.name, "event", id, "principal", a.Principal)
	}
	return res, r.record(ctx, a, AuditWebhook, "webhook_"+res.Outcome, "",
		fmt.Sprintf("playbook %s: alert %s to webhook %s %s", pb.Name, id, w.name, res.Outcome))
}

// record writes an audit record about principal a.Principal that is not a
// sanction.
func (r *Responder) record(ctx context.Context, a behavior.Anomaly, action, code, credential, reason string) error {
	rec := &audit.Record{
		Time:      r.now(),
		RequestID: gateway.NewRequestID(),
		Principal: &audit.Principal{Kind: a.Kind, ID: a.ID, CredentialID: credential},
		Path:      SanctionsPath,
		Action:    action,
		Code:      code,
		Reason:    reasonWithRequest(reason, a.RequestID),
	}
	if err := r.audit.Append(ctx, rec); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// auditActionOf is the audit action of an action type's records.
func auditActionOf(typ string) string {
	switch typ {
	case ActionRevoke:
		return AuditRevoke
	case ActionRollback:
		return AuditRollback
	case ActionWebhook:
		return AuditWebhook
	}
	return AuditApply
}

func reasonWithRequest(reason, reqID string) string {
	if reqID = safeReqID(reqID); reqID != "" {
		return reason + " (anomaly at request " + reqID + ")"
	}
	return reason
}

// sanctionRecord is the audit record of a sanction's change. No client
// request caused it (or, for an operator's, the request has its own
// record): it has a fresh request id, the sanctioned principal, and Path
// names the sanction.
func sanctionRecord(now time.Time, action, code string, s Sanction, credential, reason string) *audit.Record {
	kind, id, _ := SplitPrincipal(s.Principal)
	return &audit.Record{
		Time:      now,
		RequestID: gateway.NewRequestID(),
		Principal: &audit.Principal{Kind: kind, ID: id, CredentialID: credential},
		Path:      SanctionsPath + "/" + s.ID,
		Action:    action,
		Code:      code,
		Reason:    reasonWithRequest(fmt.Sprintf("%s %s by %s (%s): %s", s.Type, s.ID, s.CreatedBy, s.Source, reason), s.RequestID),
	}
}

// Impose imposes a sanction for an operator (the sanctions API): typ,
// class and d are checked as for a playbook; by is the operator's principal
// id, reqID the id of the API request.
func (r *Responder) Impose(ctx context.Context, principal, typ, class string, d time.Duration, reason, by, reqID string) (Sanction, bool, error) {
	if err := r.checkSanction(typ, class, d); err != nil {
		return Sanction{}, false, err
	}
	kind, _, err := SplitPrincipal(principal)
	if err != nil {
		return Sanction{}, false, err
	}
	if typ == RequireMFA && kind != gateway.KindUser {
		return Sanction{}, false, fmt.Errorf("%w: require_mfa applies to users only", ErrInvalid)
	}
	if len(reason) > MaxReasonBytes || !printable(reason) {
		return Sanction{}, false, fmt.Errorf("%w: reason must be at most %d bytes of printable text", ErrInvalid, MaxReasonBytes)
	}
	x := Sanction{Principal: principal, Type: typ, Class: class, Reason: reason, Source: SourceManual,
		CreatedBy: clipText(safeText(by), maxActorLen), RequestID: safeReqID(reqID), ExpiresAt: r.now().Add(d)}
	return r.impose(ctx, x, "", "imposed by "+x.CreatedBy+": "+reason)
}

// Lift ends sanction id early for an operator and records it.
func (r *Responder) Lift(ctx context.Context, id, by, reqID, note string) (Sanction, error) {
	s, err := r.store.Lift(id)
	if err != nil {
		return Sanction{}, err
	}
	why := "lifted by " + safeText(by)
	if note != "" {
		why += ": " + note
	}
	rec := sanctionRecord(r.now(), AuditLift, "sanction_lifted", s, "", why+" (request "+safeReqID(reqID)+")")
	r.logger.Warn("respond: sanction lifted", "sanction", s.ID, "principal", s.Principal, "type", s.Type, "by", by)
	if err := r.audit.Append(ctx, rec); err != nil {
		return s, fmt.Errorf("respond: audit lift of %s: %w", s.ID, err)
	}
	return s, nil
}

// List returns the sanctions in force, on principal when it is not "".
func (r *Responder) List(principal string) ([]Sanction, error) {
	return r.store.List(principal, r.now())
}

// Run delivers webhook alerts and records sanctions that end by themselves
// (sweeping every interval) until ctx ends.
func (r *Responder) Run(ctx context.Context, sweepEvery time.Duration) {
	for _, w := range r.hooks {
		go w.Run(ctx)
	}
	r.sweep(ctx, sweepEvery)
}

// sweep records sanctions that ended by themselves in the audit log
// (sanction.expire) and removes them from the store, every interval until
// ctx ends. A sanction is removed only after its record is written.
func (r *Responder) sweep(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.SweepOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if err.Error() != lastErr {
				r.logger.Error("respond: cannot record lapsed sanctions; they are inactive but stay unrecorded until this is fixed", "err", err)
			}
			lastErr = err.Error()
		case err == nil && lastErr != "":
			r.logger.Info("respond: lapsed sanctions recorded again")
			lastErr = ""
		}
	}
}

// SweepOnce records and removes the sanctions that have ended.
func (r *Responder) SweepOnce(ctx context.Context) error {
	now := r.now()
	if !r.store.Due(now) {
		return nil
	}
	done, err := r.store.Expire(now, func(s Sanction) error {
		return r.audit.Append(ctx, sanctionRecord(now, AuditExpire, "sanction_expired", s, "",
			"ended at "+s.ExpiresAt.Format(time.RFC3339)+"; reason was: "+s.Reason))
	})
	for _, s := range done {
		r.logger.Info("respond: sanction lapsed", "sanction", s.ID, "principal", s.Principal, "type", s.Type)
	}
	return err
}

func fmtScore(x float64) string { return fmt.Sprintf("%.2f", x) }

// safeText replaces control and format characters, so that text from the
// engine or an operator can be stored and logged.
func safeText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if printable(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || !isControl(r) {
			return r
		}
		return ' '
	}, s)
}

func isControl(r rune) bool { return !printable(string(r)) }

// clipText cuts s to at most n bytes on a rune boundary.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

func safeReqID(s string) string {
	if len(s) > maxReqIDLen || !printable(s) || strings.ContainsAny(s, " ") {
		return ""
	}
	return s
}

var _ behavior.Responder = (*Responder)(nil)
