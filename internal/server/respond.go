package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/behavior"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
	"github.com/warden-ai/warden/internal/identity/token"
	"github.com/warden-ai/warden/internal/registry"
	"github.com/warden-ai/warden/internal/respond"
)

// Sanction actions: the native endpoints' actions (see gateway's native
// endpoint table).
const (
	actionSanctionList   = "sanction.list"
	actionSanctionCreate = "sanction.create"
	actionSanctionLift   = "sanction.lift"

	// sanctionSweepInterval is how often lapsed sanctions are recorded and
	// removed; a lapsed sanction is inactive without it.
	sanctionSweepInterval = time.Second
)

// buildResponses opens the sanctions store of cfg.Responses, builds the
// responder with its playbooks and webhooks, registers the sanctions
// endpoints with proxy, hooks throttles into the limit stage, and starts
// webhook delivery, the store watcher and the lapse sweeper, which run
// until ctx ends. It returns the sanctions stage (to run right after
// identify); with responses disabled that stage only clears ex.Sanctions
// and the endpoints answer 404 (no handler). It runs after buildIdentity
// and buildLimits.
func (s *Server) buildResponses(ctx context.Context, cfg *config.Config, proxy *gateway.Proxy) (gateway.Stage, error) {
	rc := &cfg.Responses
	if !rc.On() {
		return gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
			ex.Sanctions = nil
			return next(ex)
		}), nil
	}
	store, err := respond.Open(rc.Path)
	if err != nil {
		return nil, fmt.Errorf("responses: %w", err)
	}
	s.extraChecks["sanctions"] = store.Healthy
	stage := respond.NewStage(store)

	var hooks []*respond.Webhook
	for _, w := range rc.Webhooks {
		secret, err := w.Secret()
		if err != nil {
			return nil, fmt.Errorf("responses.webhooks %q: %w", w.Name, err)
		}
		h, err := respond.NewWebhook(respond.WebhookOptions{Name: w.Name, URL: w.URL, Secret: secret,
			Timeout: w.Timeout.D(), MaxAttempts: w.MaxAttempts, QueueSize: w.QueueSize, Logger: s.logger})
		if err != nil {
			return nil, fmt.Errorf("responses: %w", err)
		}
		hooks = append(hooks, h)
	}
	routeModel := map[string]string{} // route name → the registry model it is bound to
	for _, rt := range cfg.Routes {
		if rt.Model != nil {
			routeModel[rt.Name] = rt.Model.Name
		}
	}
	playbooks := make([]respond.Playbook, 0, len(rc.Playbooks))
	for _, p := range rc.Playbooks {
		pb := respond.Playbook{Name: p.Name, MinScore: p.Match.MinScore, MinRisk: p.Match.MinRisk,
			Features: p.Match.Features, Kinds: p.Match.Kinds}
		for _, a := range p.Actions {
			pb.Actions = append(pb.Actions, respond.Action{Type: a.Type, Duration: a.Duration.D(), Class: a.Class,
				Webhook: a.Webhook, Route: a.Route, Model: routeModel[a.Route]})
		}
		playbooks = append(playbooks, pb)
	}
	var rollback respond.Rollbacker
	if s.models != nil { // built before (internal/server/models.go)
		rollback = &modelRollbacker{store: s.models}
	}
	var hasClass func(string) bool
	if s.limits != nil {
		hasClass = s.limits.HasClass
		s.limits.ClassOverride = stage.ThrottleClass
	}
	rv := &credentialRevoker{keys: s.keys, revoked: s.ident.revoked,
		tokenTTL: token.WithDefaults(cfg.Identity.Tokens).MaxTTL.D(), seen: stage.AuthMethodOf}
	r, err := respond.New(respond.Options{
		Store: store, Playbooks: playbooks, Webhooks: hooks, Revoker: rv, Rollback: rollback, Audit: s.audit,
		HasClass: hasClass, MFA: cfg.Identity.MFA != nil, MaxDuration: rc.MaxDuration.D(),
		Logger: s.logger, Registerer: s.metrics.Registry(),
	})
	if err != nil {
		return nil, fmt.Errorf("responses: %w", err)
	}
	s.responder = r
	api := &sanctionAPI{r: r}
	for _, action := range []string{actionSanctionList, actionSanctionCreate, actionSanctionLift} {
		proxy.HandleNative(action, api)
	}
	go store.Watch(ctx, respond.DefaultWatchInterval, s.logger)
	go r.Run(ctx, sanctionSweepInterval)
	return stage, nil
}

// Responder returns the responder the behaviour engine reports anomalies
// to; nil when responses are disabled.
func (s *Server) Responder() behavior.Responder {
	if s.responder == nil {
		return nil
	}
	return s.responder
}

// credentialRevoker is the revoke action: an API key through the key store,
// a warden token by its jti through the revocation list. Both are durable
// and reach running streams through the identity stage's revalidation.
type credentialRevoker struct {
	keys     *identity.KeyStore
	revoked  *revoke.List
	tokenTTL time.Duration
	// seen says how a credential was last proven here (the sanctions
	// stage remembers), to tell a warden token from an OIDC token.
	seen func(credentialID string) (string, bool)
}

// RevokeCredential implements respond.Revoker.
func (cr *credentialRevoker) RevokeCredential(_ context.Context, _, id, cred, reason string) (string, error) {
	method, known := cr.seen(cred)
	if identity.ValidKeyID(cred) && (!known || method == "api_key") {
		for _, k := range cr.keys.List() {
			if k.ID != cred {
				continue
			}
			if k.Subject != id {
				return "", fmt.Errorf("API key %s belongs to %s, not to %s: not revoked", cred, k.Subject, id)
			}
			if err := cr.keys.Revoke(cred); err != nil {
				return "", err
			}
			return "API key " + cred, nil
		}
		if known {
			return "", fmt.Errorf("API key %s: %w", cred, identity.ErrUnknownKey)
		}
	}
	if known && method != token.AuthMethod {
		return "", respond.ErrNotRevocable
	}
	if revoke.ValidValue(cred) != nil {
		return "", respond.ErrNotRevocable
	}
	now := time.Now()
	if err := cr.revoked.Revoke(revoke.Entry{Kind: revoke.KindToken, Value: cred, Until: now.Add(cr.tokenTTL),
		Reason: reason, At: now}); err != nil {
		return "", err
	}
	return "warden token jti " + cred, nil
}

// respondActor is who the registry records for a playbook's rollback.
const respondActor = "warden:respond"

// modelRollbacker is the rollback action: the registry makes the version
// active before the current one active again (after verifying it), durably,
// and the gate of every route bound to the model serves it from the next
// request. It rolls back at most one step past the last promotion.
type modelRollbacker struct {
	store *registry.Store
}

// RollbackModel implements respond.Rollbacker.
func (mr *modelRollbacker) RollbackModel(ctx context.Context, model, reason, requestID string) (string, bool, error) {
	m, err := mr.store.Model(model)
	if err != nil {
		return "", false, err
	}
	// The latest activation: a rollback means this model is already at a
	// rolled-back version; only a new promotion re-arms the playbook.
	for i := len(m.History) - 1; i >= 0; i-- {
		e := m.History[i]
		if !e.OK || e.To != registry.StateActive {
			continue
		}
		if e.Action == actionModelRollback {
			return e.Version, false, nil
		}
		break
	}
	mv, err := mr.store.Rollback(ctx, model, registry.Actor{ID: respondActor, System: true, RequestID: requestID}, reason)
	if err != nil {
		return "", false, err
	}
	return mv.Version, true, nil
}

// sanctionAPI serves the sanctions endpoints. Each runs behind audit,
// identify, sanctions and authorize like every request: policy decides who
// may call which (actions sanction.list, sanction.create and sanction.lift
// in segment "control").
//
//	GET    /v1/warden/sanctions?principal=kind:id                                      → 200 {"sanctions":[...]}
//	POST   /v1/warden/sanctions {"principal","type","duration","class","reason"}       → 201 {"sanction":{...},"changed":bool}
//	DELETE /v1/warden/sanctions/{id}                                                    → 200 {"sanction":{...}}
type sanctionAPI struct {
	r *respond.Responder
}

type sanctionRequest struct {
	Principal string `json:"principal"`
	Type      string `json:"type"`
	Duration  string `json:"duration"`
	Class     string `json:"class"`
	Reason    string `json:"reason"`
}

// ServeExchange implements gateway.NativeHandler.
func (api *sanctionAPI) ServeExchange(ex *gateway.Exchange) error {
	p := ex.Principal
	if p == nil {
		return errors.New("sanctions endpoint reached without a principal") // the proxy checks this first
	}
	ctx := context.WithoutCancel(ex.Request.Context()) // once stored, the record is written even if the client left
	switch ex.Action {
	case actionSanctionList:
		if len(bytes.TrimSpace(ex.Body)) > 0 {
			return badSanction(nil, "a GET request must not have a body")
		}
		principal, err := sanctionFilter(ex.Request)
		if err != nil {
			return err
		}
		list, err := api.r.List(principal)
		if err != nil {
			return sanctionError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"sanctions": list})
	case actionSanctionCreate:
		if err := requireJSON(ex); err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(ex.Body))
		dec.DisallowUnknownFields()
		var req sanctionRequest
		if err := dec.Decode(&req); err != nil || dec.More() {
			return badSanction(err, "the body must be a JSON object with principal, type, duration, reason and, for a throttle, class")
		}
		if strings.TrimSpace(req.Reason) == "" {
			return badSanction(nil, "reason is required: it goes into the record")
		}
		d, err := time.ParseDuration(req.Duration)
		if err != nil {
			return badSanction(nil, "duration must be a Go duration such as \"30m\" or \"2h\"")
		}
		x, changed, err := api.r.Impose(ctx, req.Principal, req.Type, req.Class, d, req.Reason, p.ID, ex.ID)
		if err != nil {
			return sanctionError(err)
		}
		ex.Writer.Header().Set("Location", respond.SanctionsPath+"/"+x.ID)
		status := http.StatusCreated
		if !changed {
			status = http.StatusOK
		}
		return writeExchangeJSON(ex, status, map[string]any{"sanction": x, "changed": changed})
	case actionSanctionLift:
		if len(bytes.TrimSpace(ex.Body)) > 0 {
			return badSanction(nil, "a DELETE request must not have a body")
		}
		id, ok := strings.CutPrefix(ex.Request.URL.Path, respond.SanctionsPath+"/")
		if !ok || !respond.ValidID(id) {
			return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_sanction", nil, "no such sanction")
		}
		x, err := api.r.Lift(ctx, id, p.ID, ex.ID, "")
		if err != nil {
			return sanctionError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"sanction": x})
	default:
		return fmt.Errorf("sanctions endpoint: unknown action %q", ex.Action) // wiring fault: 500
	}
}

func badSanction(cause error, format string, args ...any) error {
	return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_sanction", cause, format, args...)
}

// sanctionFilter reads the list query: principal, at most once.
func sanctionFilter(r *http.Request) (string, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", badSanction(err, "the query string is malformed")
	}
	var principal string
	for k, vs := range q {
		if k != "principal" {
			return "", badSanction(nil, "unknown query parameter %q (principal)", clipParam(k))
		}
		if len(vs) != 1 {
			return "", badSanction(nil, "query parameter principal given %d times", len(vs))
		}
		principal = vs[0]
		if _, _, err := respond.SplitPrincipal(principal); err != nil {
			return "", badSanction(err, "principal must be kind:id, e.g. agent:research-bot")
		}
	}
	return principal, nil
}

// sanctionError maps responder errors to HTTP errors. Refusals name what
// was wrong with the request; an unavailable store says nothing about why.
func sanctionError(err error) error {
	switch {
	case errors.Is(err, respond.ErrInvalid):
		msg := err.Error()
		if i := strings.Index(msg, respond.ErrInvalid.Error()+": "); i >= 0 {
			msg = msg[i+len(respond.ErrInvalid.Error())+2:]
		}
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_sanction", err, "%s", msg)
	case errors.Is(err, respond.ErrNotFound):
		return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_sanction", err, "no such sanction")
	case errors.Is(err, respond.ErrLimit):
		return gateway.Errorf(http.StatusConflict, gateway.TypeInvalidRequest, "sanction_limit", err, "too many sanctions in force")
	case errors.Is(err, respond.ErrUnavailable):
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "sanctions_unavailable", err,
			"sanctions are temporarily unavailable")
	}
	return fmt.Errorf("sanctions endpoint: %w", err) // anything else is an internal fault: 500
}

var (
	_ gateway.NativeHandler = (*sanctionAPI)(nil)
	_ respond.Revoker       = (*credentialRevoker)(nil)
	_ respond.Rollbacker    = (*modelRollbacker)(nil)
)
