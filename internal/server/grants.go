package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/policy/grant"
)

// Grant actions: the native endpoints' actions (see gateway's native
// endpoint table) and the sweeper's audit action.
const (
	actionGrantRequest = "grant.request"
	actionGrantApprove = "grant.approve"
	actionGrantDeny    = "grant.deny"
	actionGrantRevoke  = "grant.revoke"
	actionGrantList    = "grant.list"
	actionGrantExpire  = "grant.expire"

	// grantSweepInterval is how often the sweeper looks for grants that
	// ended by themselves; expiry itself needs no sweep (an expired grant
	// is never active), the sweep records it in the audit log and the store.
	grantSweepInterval = time.Second
	grantsPath         = "/v1/warden/grants"
)

// buildGrants opens the grant store named by policy.grants, registers the
// grant endpoints with proxy, and starts the store watcher and the expiry
// sweeper, which run until ctx ends. It returns the stage that sets
// ex.Grants; with grants disabled that stage only clears ex.Grants and the
// endpoints answer 404 (no handler).
func (s *Server) buildGrants(ctx context.Context, cfg *config.Config, proxy *gateway.Proxy) (gateway.Stage, error) {
	gc := cfg.Policy.Grants
	if !gc.On() {
		return gateway.StageFunc(func(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
			ex.Grants = nil
			return next(ex)
		}), nil
	}
	store, err := grant.Open(gc.Path, grant.Options{MaxDuration: gc.MaxDuration.D(), ApproverRole: gc.ApproverRole})
	if err != nil {
		return nil, fmt.Errorf("policy.grants: %w", err)
	}
	s.extraChecks["grants"] = store.Healthy
	api := &grantAPI{store: store}
	for _, action := range []string{actionGrantRequest, actionGrantApprove, actionGrantDeny, actionGrantRevoke, actionGrantList} {
		proxy.HandleNative(action, api)
	}
	go store.Watch(ctx, grant.DefaultWatchInterval, s.logger)
	go s.sweepGrants(ctx, store, grantSweepInterval)
	return grant.NewStage(store, s.logger), nil
}

// sweepGrants records grants that ended by themselves — expired grants and
// lapsed requests — in the audit log (action grant.expire) and marks them
// expired in the store, every interval until ctx ends. A grant is marked
// only after its audit record is written, so every expiry is audited.
func (s *Server) sweepGrants(ctx context.Context, store *grant.Store, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		if !store.Due(now) {
			continue
		}
		done, err := store.Expire(now, func(g grant.Grant) error {
			return s.audit.Append(ctx, grantExpiryRecord(g, now))
		})
		for _, g := range done {
			s.logger.Info("grant: expired", "grant", g.ID, "principal", g.Principal, "action", g.Action,
				"segment", g.Segment, "approved_by", g.ApprovedBy)
		}
		switch {
		case err != nil && ctx.Err() == nil:
			if err.Error() != lastErr {
				s.logger.Error("grant: cannot record expired grants; they are inactive but stay unrecorded until this is fixed", "err", err)
			}
			lastErr = err.Error()
		case err == nil && lastErr != "":
			s.logger.Info("grant: expired grants recorded again")
			lastErr = ""
		}
	}
}

// grantExpiryRecord is the audit record of a grant that ended by itself.
// No client request caused it: the record has a fresh request id, no
// principal and no method; Path names the grant and Reason says whose grant
// it was, what it permitted and who approved it.
func grantExpiryRecord(g grant.Grant, now time.Time) *audit.Record {
	what := fmt.Sprintf("%s on segment %s", g.Action, g.Segment)
	if g.Resource != "" {
		what += " (resource " + g.Resource + ")"
	}
	reason := fmt.Sprintf("grant %s for %s (%s) expired at %s; requested by %s, approved by %s",
		g.ID, g.Principal, what, g.EndedAt.UTC().Format(time.RFC3339), g.RequestedBy, g.ApprovedBy)
	if g.ApprovedBy == "" {
		reason = fmt.Sprintf("request for grant %s for %s (%s) by %s lapsed at %s without a decision",
			g.ID, g.Principal, what, g.RequestedBy, g.EndedAt.UTC().Format(time.RFC3339))
	}
	return &audit.Record{
		Time:      now,
		RequestID: gateway.NewRequestID(),
		Path:      grantsPath + "/" + g.ID,
		Action:    actionGrantExpire,
		Code:      "grant_expired",
		Reason:    reason,
	}
}

// grantAPI serves the grant endpoints. Each runs behind audit, identify and
// authorize like every request: policy decides who may call which (actions
// grant.request, grant.approve, grant.deny, grant.revoke and grant.list in
// segment "control"), and the store enforces what policy cannot see: that
// approvers hold the approver role and are neither the requester nor the
// grantee, and that only approvers act on other principals' grants.
//
//	POST /v1/warden/grants               {"principal","action","segment","resource","duration","reason"} → 201 {"grant":{...}}
//	POST /v1/warden/grants/{id}/approve  {"note"} (optional)                                             → 200 {"grant":{...}}
//	POST /v1/warden/grants/{id}/deny     {"note"} (optional)                                             → 200 {"grant":{...}}
//	POST /v1/warden/grants/{id}/revoke   {"note"} (optional)                                             → 200 {"grant":{...}}
//	GET  /v1/warden/grants?principal=&requested_by=&status=&limit=                                      → 200 {"grants":[...]}
type grantAPI struct {
	store *grant.Store
}

// ServeExchange implements gateway.NativeHandler.
func (api *grantAPI) ServeExchange(ex *gateway.Exchange) error {
	p := ex.Principal
	if p == nil {
		return errors.New("grant endpoint reached without a principal") // the proxy checks this first
	}
	actor := grant.Actor{ID: p.ID, Roles: p.Roles, RequestID: ex.ID}
	switch ex.Action {
	case actionGrantRequest:
		if err := requireJSON(ex); err != nil {
			return err
		}
		req, err := grant.ParseRequest(ex.Body)
		if err != nil {
			return grantError(err)
		}
		g, err := api.store.Request(req, actor)
		if err != nil {
			return grantError(err)
		}
		ex.Writer.Header().Set("Location", grantsPath+"/"+g.ID)
		return writeExchangeJSON(ex, http.StatusCreated, map[string]any{"grant": g})
	case actionGrantApprove, actionGrantDeny, actionGrantRevoke:
		id, err := grantIDFromPath(ex.Request.URL.Path)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(ex.Body)) > 0 {
			if err := requireJSON(ex); err != nil {
				return err
			}
		}
		note, err := grant.ParseNote(ex.Body)
		if err != nil {
			return grantError(err)
		}
		var g grant.Grant
		switch ex.Action {
		case actionGrantApprove:
			g, err = api.store.Approve(id, actor, note)
		case actionGrantDeny:
			g, err = api.store.Deny(id, actor, note)
		default:
			g, err = api.store.Revoke(id, actor, note)
		}
		if err != nil {
			return grantError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"grant": g})
	case actionGrantList:
		if len(bytes.TrimSpace(ex.Body)) > 0 {
			return badGrant(nil, "a GET request must not have a body")
		}
		f, err := parseGrantFilter(ex.Request)
		if err != nil {
			return err
		}
		gs, err := api.store.List(f, actor)
		if err != nil {
			return grantError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"grants": gs})
	default:
		return fmt.Errorf("grant endpoint: unknown action %q", ex.Action) // wiring fault: 500
	}
}

func badGrant(cause error, format string, args ...any) error {
	return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_grant", cause, format, args...)
}

// requireJSON accepts exactly one Content-Type of application/json,
// optionally with charset=utf-8.
func requireJSON(ex *gateway.Exchange) error {
	vals := ex.Request.Header.Values("Content-Type")
	if len(vals) == 1 {
		if mt, params, err := mime.ParseMediaType(vals[0]); err == nil && mt == "application/json" {
			if cs, ok := params["charset"]; len(params) == 0 || len(params) == 1 && ok && strings.EqualFold(cs, "utf-8") {
				return nil
			}
		}
	}
	return gateway.Errorf(http.StatusUnsupportedMediaType, gateway.TypeInvalidRequest, "unsupported_media_type", nil,
		"Content-Type must be application/json")
}

// grantIDFromPath returns {id} of /v1/warden/grants/{id}/<step>. The router
// matched the shape already; the id's form is checked here.
func grantIDFromPath(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, grantsPath+"/")
	id, _, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || !grant.ValidID(id) {
		return "", gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_grant", nil, "no such grant")
	}
	return id, nil
}

// parseGrantFilter reads the list query: principal, requested_by, status
// and limit, each at most once; anything else is an error.
func parseGrantFilter(r *http.Request) (grant.Filter, error) {
	var f grant.Filter
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return f, badGrant(err, "the query string is malformed")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return f, badGrant(nil, "query parameter %q given %d times", clipParam(k), len(vs))
		}
		v := vs[0]
		if len(v) > 256 {
			return f, badGrant(nil, "query parameter %q is longer than 256 bytes", clipParam(k))
		}
		switch k {
		case "principal":
			f.Principal = v
		case "requested_by":
			f.RequestedBy = v
		case "status":
			f.Status = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > grant.MaxOpen {
				return f, badGrant(nil, "limit must be a whole number from 1 to %d", grant.MaxOpen)
			}
			f.Limit = n
		default:
			return f, badGrant(nil, "unknown query parameter %q (principal, requested_by, status, limit)", clipParam(k))
		}
	}
	return f, nil
}

func clipParam(s string) string {
	const n = 32
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// grantError maps store errors to HTTP errors. The store's messages for
// refused requests are meant for the caller (they name nothing the caller
// may not see); an unavailable store says nothing about why.
func grantError(err error) error {
	public := strings.TrimPrefix(err.Error(), "grant: ")
	switch {
	case errors.Is(err, grant.ErrInvalid):
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_grant", err, "%s", public)
	case errors.Is(err, grant.ErrNotFound):
		return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_grant", err, "no such grant")
	case errors.Is(err, grant.ErrForbidden):
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "grant_forbidden", err, "%s", public)
	case errors.Is(err, grant.ErrConflict):
		return gateway.Errorf(http.StatusConflict, gateway.TypeInvalidRequest, "grant_conflict", err, "%s", public)
	case errors.Is(err, grant.ErrLimit):
		return gateway.Errorf(http.StatusConflict, gateway.TypeInvalidRequest, "grant_limit", err, "%s", public)
	case errors.Is(err, grant.ErrUnavailable):
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "grants_unavailable", err,
			"just-in-time grants are temporarily unavailable")
	}
	return fmt.Errorf("grant endpoint: %w", err) // anything else is an internal fault: 500
}

// writeExchangeJSON writes v as the JSON response of ex.
func writeExchangeJSON(ex *gateway.Exchange, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("grant endpoint: encode response: %w", err)
	}
	h := ex.Writer.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	ex.Writer.WriteHeader(status)
	if _, err := ex.Writer.Write(append(body, '\n')); err != nil {
		return fmt.Errorf("grant endpoint: write response: %w", err)
	}
	return nil
}

var _ gateway.NativeHandler = (*grantAPI)(nil)
