package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/registry"
)

// Model registry actions: the native endpoints' actions (see gateway's
// native endpoint table). Transitions are audited twice: the exchange's own
// record, and one record per state change written by the registry before
// it commits the change (action model.register, model.verify,
// model.promote, model.rollback, model.integrity).
const (
	actionModelList     = "model.list"
	actionModelRegister = "model.register"
	actionModelGet      = "model.get"
	actionModelPromote  = "model.promote"
	actionModelRollback = "model.rollback"
	actionModelVerify   = "model.verify"
	modelsPath          = "/v1/warden/models"

	actionDatasetList     = "dataset.list"
	actionDatasetRegister = "dataset.register"
	actionDatasetGet      = "dataset.get"
	datasetsPath          = "/v1/warden/datasets"
)

// buildModels opens the model registry when models.trusted_keys is set,
// registers the model endpoints and starts the watcher and the periodic
// re-verification. It returns the gate stage for routes bound to a model
// (nil when no route is).
func (s *Server) buildModels(ctx context.Context, cfg *config.Config, proxy *gateway.Proxy) (gateway.Stage, error) {
	mc := cfg.Models
	if !mc.On() {
		return nil, nil
	}
	var keys []registry.TrustedKey
	for i, k := range mc.TrustedKeys {
		pem, err := os.ReadFile(k.File)
		if err != nil {
			return nil, fmt.Errorf("models.trusted_keys[%d]: %w", i, err)
		}
		tk, err := registry.ParseTrustedKey(k.Name, pem)
		if err != nil {
			return nil, fmt.Errorf("models.trusted_keys[%d]: %w", i, err)
		}
		keys = append(keys, tk)
	}
	store, err := registry.Open(mc.Registry, registry.Options{
		Keys: keys, Roots: mc.Roots, ApproverRole: mc.ApproverRole, Logger: s.logger,
		Audit: s.auditModelEvent,
	})
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	s.models = store
	s.extraChecks["models"] = store.Healthy
	api := &modelAPI{store: store}
	for _, a := range []string{actionModelList, actionModelRegister, actionModelGet, actionModelPromote, actionModelRollback, actionModelVerify,
		actionDatasetList, actionDatasetRegister, actionDatasetGet} {
		proxy.HandleNative(a, api)
	}
	go store.Watch(ctx, time.Second)
	go store.RunRecheck(ctx, mc.ReverifyInterval.D())
	routes := map[string]string{}
	for _, r := range cfg.Routes {
		if r.Model != nil {
			routes[r.Name] = r.Model.Name
		}
	}
	if len(routes) == 0 {
		return nil, nil
	}
	return registry.NewGate(store, routes), nil
}

// auditModelEvent writes one registry transition to the audit log.
func (s *Server) auditModelEvent(ctx context.Context, ev registry.Event) error {
	id := ev.RequestID
	if id == "" {
		id = gateway.NewRequestID()
	}
	code := strings.ReplaceAll(ev.Action, ".", "_")
	if !ev.OK {
		code += "_refused"
	}
	return s.audit.Append(ctx, &audit.Record{
		Time:      ev.Time,
		RequestID: id,
		Path:      modelsPath + "/" + ev.Name,
		Action:    ev.Action,
		Resource:  &audit.Resource{Segment: "control", Model: ev.Name + "@" + ev.Version},
		Code:      code,
		Reason: fmt.Sprintf("%s %s@%s %s -> %s by %s: %s", ev.Action, ev.Name, ev.Version,
			orNone(ev.From), orNone(ev.To), ev.Actor, ev.Reason),
	})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// RollbackModel rolls the model back to its previous active version, as
// warden's automated response: no approver role is needed (the playbook
// was authorised by whoever configured it), the target version is verified
// again before it is served, and the transition is audited with actor
// "warden:respond" and the reason. It fails when the registry is not
// configured or the model has no earlier version.
func (s *Server) RollbackModel(ctx context.Context, name, reason string) error {
	if s.models == nil {
		return errors.New("server: rollback: the model registry is not configured (models.trusted_keys)")
	}
	_, err := s.models.Rollback(ctx, name, registry.Actor{ID: "warden:respond", System: true}, reason)
	return err
}

// modelAPI serves the model registry endpoints. Each runs behind audit,
// identify and authorize like every request: policy decides who may call
// which (actions model.* in segment "control"); the registry itself checks
// again that promote and rollback come from a holder of the approver role.
//
//	GET  /v1/warden/models                 → 200 {"models":[...]}
//	POST /v1/warden/models                 {"name","version","dir","bundle":{...},"provenance":{...}} → 201 {"version":{...}}
//	GET  /v1/warden/models/{name}          → 200 {"model":{...}}
//	POST /v1/warden/models/{name}/verify   {"version"} → 200 {"version":{...}}
//	POST /v1/warden/models/{name}/promote  {"version"} → 200 {"version":{...}}
//	POST /v1/warden/models/{name}/rollback {"reason"}  → 200 {"version":{...}}
type modelAPI struct {
	store *registry.Store
}

type modelRegisterBody struct {
	Name       string              `json:"name"`
	Version    string              `json:"version"`
	Dir        string              `json:"dir"`
	Bundle     json.RawMessage     `json:"bundle"`
	Provenance registry.Provenance `json:"provenance"`
}

type modelStepBody struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// datasetRegisterBody is POST /v1/warden/datasets: the dataset version's
// directory (under models.roots) and its signed manifest. Name, version,
// source, licence and parent come from the signed provenance, never from
// the request.
type datasetRegisterBody struct {
	Dir    string          `json:"dir"`
	Bundle json.RawMessage `json:"bundle"`
}

// ServeExchange implements gateway.NativeHandler.
func (api *modelAPI) ServeExchange(ex *gateway.Exchange) error {
	p := ex.Principal
	if p == nil {
		return errors.New("model endpoint reached without a principal") // the proxy checks this first
	}
	actor := registry.Actor{ID: p.ID, Roles: p.Roles, RequestID: ex.ID}
	ctx := ex.Request.Context()
	switch ex.Action {
	case actionModelList:
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"models": api.store.Models()})
	case actionModelRegister:
		if err := requireJSON(ex); err != nil {
			return err
		}
		var b modelRegisterBody
		if err := decodeModelBody(ex.Body, &b); err != nil {
			return err
		}
		mv, err := api.store.Register(ctx, registry.RegisterRequest{Name: b.Name, Version: b.Version, Dir: b.Dir,
			Bundle: b.Bundle, Provenance: b.Provenance}, actor)
		if err != nil {
			return modelError(err)
		}
		ex.Writer.Header().Set("Location", modelsPath+"/"+b.Name)
		return writeExchangeJSON(ex, http.StatusCreated, map[string]any{"version": mv})
	case actionModelGet:
		name, err := modelNameFromPath(ex.Request.URL.Path)
		if err != nil {
			return err
		}
		m, err := api.store.Model(name)
		if err != nil {
			return modelError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"model": m})
	case actionModelVerify, actionModelPromote, actionModelRollback:
		name, err := modelNameFromPath(ex.Request.URL.Path)
		if err != nil {
			return err
		}
		var b modelStepBody
		if len(bytes.TrimSpace(ex.Body)) > 0 {
			if err := requireJSON(ex); err != nil {
				return err
			}
			if err := decodeModelBody(ex.Body, &b); err != nil {
				return err
			}
		}
		if len(b.Reason) > 256 {
			return badModel(nil, "reason is at most 256 bytes")
		}
		var mv *registry.ModelVersion
		switch ex.Action {
		case actionModelVerify:
			if b.Version == "" {
				return badModel(nil, "version is required")
			}
			mv, err = api.store.Verify(ctx, name, b.Version, actor)
		case actionModelPromote:
			if b.Version == "" {
				return badModel(nil, "version is required")
			}
			mv, err = api.store.Promote(ctx, name, b.Version, actor)
		default:
			reason := b.Reason
			if reason == "" {
				reason = "rolled back by " + p.ID
			}
			mv, err = api.store.Rollback(ctx, name, actor, reason)
		}
		if err != nil {
			return modelError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"version": mv})
	case actionDatasetList:
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"datasets": api.store.Datasets()})
	case actionDatasetGet:
		rest, _ := strings.CutPrefix(ex.Request.URL.Path, datasetsPath+"/")
		if registry.ValidName(rest) != nil {
			return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_dataset", nil, "no such dataset")
		}
		ds, err := api.store.Dataset(rest)
		if err != nil {
			return modelError(err)
		}
		return writeExchangeJSON(ex, http.StatusOK, map[string]any{"dataset": ds})
	case actionDatasetRegister:
		if err := requireJSON(ex); err != nil {
			return err
		}
		var b datasetRegisterBody
		if err := decodeModelBody(ex.Body, &b); err != nil {
			return err
		}
		if b.Dir == "" || len(b.Bundle) == 0 {
			return badModel(nil, "dir and bundle are required")
		}
		dv, err := api.store.RegisterDataset(ctx, b.Dir, b.Bundle, actor)
		if err != nil {
			return modelError(err)
		}
		ex.Writer.Header().Set("Location", datasetsPath+"/"+dv.Name)
		return writeExchangeJSON(ex, http.StatusCreated, map[string]any{"version": dv})
	default:
		return fmt.Errorf("model endpoint: unknown action %q", ex.Action) // wiring fault: 500
	}
}

func decodeModelBody(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badModel(err, "the body is not a valid JSON request: %v", err)
	}
	if dec.More() {
		return badModel(nil, "the body holds more than one JSON value")
	}
	return nil
}

func badModel(cause error, format string, args ...any) error {
	return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_model_request", cause, format, args...)
}

// modelNameFromPath returns {name} of /v1/warden/models/{name}[/step].
func modelNameFromPath(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, modelsPath+"/")
	name, _, _ := strings.Cut(rest, "/")
	if !ok || registry.ValidName(name) != nil {
		return "", gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_model", nil, "no such model")
	}
	return name, nil
}

// modelError maps registry errors to HTTP errors. The registry's messages
// name files and versions, which the authorised caller may see; they never
// hold key material.
func modelError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "registry: ")
	if _, ok := errors.AsType[*registry.ChainError](err); ok {
		// A dataset version whose chain of custody does not verify against
		// what the registry holds: the caller's problem, named precisely.
		return gateway.Errorf(http.StatusUnprocessableEntity, gateway.TypeInvalidRequest, "dataset_chain_broken", err, "%s", msg)
	}
	switch {
	case errors.Is(err, registry.ErrInvalid):
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_model_request", err, "%s", msg)
	case errors.Is(err, registry.ErrBundle):
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_bundle", err, "%s", msg)
	case errors.Is(err, registry.ErrNotFound):
		return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_model", err, "%s", msg)
	case errors.Is(err, registry.ErrForbidden):
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "model_forbidden", err, "%s", msg)
	case errors.Is(err, registry.ErrConflict):
		return gateway.Errorf(http.StatusConflict, gateway.TypeInvalidRequest, "model_conflict", err, "%s", msg)
	case errors.Is(err, registry.ErrSignature):
		return gateway.Errorf(http.StatusUnprocessableEntity, gateway.TypeInvalidRequest, "model_signature_invalid", err, "%s", msg)
	case errors.Is(err, registry.ErrIntegrity), errors.Is(err, registry.ErrPath):
		return gateway.Errorf(http.StatusUnprocessableEntity, gateway.TypeInvalidRequest, "model_verification_failed", err, "%s", msg)
	}
	return fmt.Errorf("model endpoint: %w", err) // anything else is an internal fault: 500
}

var _ gateway.NativeHandler = (*modelAPI)(nil)
