package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-ai/warden/internal/audit"
	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/inspect"
	"github.com/warden-ai/warden/internal/mcp"
	"github.com/warden-ai/warden/internal/policy"
)

// buildMCP builds the MCP gateway when a route has "api: mcp" (nil
// otherwise): the session table, the tool pin store, list filtering by
// policy, and result scanning by the guards. It makes the proxy's response
// inspector send MCP routes' responses through the MCP gateway (which runs
// the guards itself) and every other response through the guards, and it
// registers the pin admin endpoints (GET /v1/warden/mcp/pins, POST
// /v1/warden/mcp/approve). Until ctx ends, it ends the sessions whose
// opening credential failed, here and at the server (SweepSessions).
func (s *Server) buildMCP(ctx context.Context, cfg *config.Config, guards *inspect.Guards, authorize *policy.Stage, proxy *gateway.Proxy) (*mcp.Gateway, error) {
	if !cfg.MCPRoutes() {
		return nil, nil
	}
	mc := &cfg.MCP
	g := &mcp.Gateway{
		Sessions:         mcp.NewSessions(mc.MaxSessions, mc.SessionIdle.D()),
		MaxResponseBytes: mc.MaxResponseBytes,
		Logger:           s.logger,
		// warden's own requests: ending a session it ended, answering a
		// server request it refused (internal/mcp/upstream.go)
		Upstream: proxy.Send,
		Audit: func(r mcp.OwnRequest) error {
			return s.audit.Append(context.Background(), ownRequestRecord(r))
		},
	}
	if mc.Pins.Mode != mcp.PinOff {
		pins, err := mcp.OpenPinStore(mc.Pins.Path, mc.Pins.Mode)
		if err != nil {
			return nil, err
		}
		g.Pins = pins
		proxy.HandleNative("mcp.pin.list", gateway.NativeHandlerFunc(func(ex *gateway.Exchange) error {
			return writeNativeJSON(ex, map[string]any{"mode": pins.Mode(), "pins": pins.List()})
		}))
		proxy.HandleNative("mcp.pin.approve", gateway.NativeHandlerFunc(func(ex *gateway.Exchange) error {
			return approvePin(ex, pins)
		}))
	}
	loc, err := cfg.Policy.Location()
	if err != nil {
		return nil, err
	}
	nets, err := policy.NewNetworks(cfg.Policy.Networks)
	if err != nil {
		return nil, fmt.Errorf("policy.networks: %w", err)
	}
	g.Authorize = mcpAuthorizer(authorize, policy.InputOptions{Location: loc, Networks: nets})
	var other gateway.ResponseInspector
	if guards != nil {
		g.Scanner, g.Key = guards.Scanner, guards.Key
		if guards.Injection != nil {
			g.Injection = guards.Injection.Document
		}
		other = guards.Responses()
	}
	proxy.SetResponseInspector(routeInspector{mcp: g, other: other})
	go g.SweepSessions(ctx, mcp.SessionSweepInterval)
	return g, nil
}

// Codes of warden's own requests to MCP servers in the audit log; their
// action is "mcp." and what the request was for (mcp.OwnRequest.What):
// mcp.session_end, mcp.server_request_refused.
const (
	codeOwnRequest        = "warden_request"
	codeOwnRequestNotSent = "warden_request_not_sent"
	codeOwnRequestFailed  = "warden_request_failed"
)

// ownRequestRecord is the audit record of one of warden's own requests to
// an MCP server. No client is waiting for it: Status is 0, the server's
// answer is UpstreamStatus, Principal is the principal whose exchange
// caused it, and Reason names that exchange's request id and the outcome.
func ownRequestRecord(r mcp.OwnRequest) *audit.Record {
	rec := &audit.Record{
		Time:           r.Start,
		RequestID:      r.ID,
		Principal:      audit.PrincipalOf(r.Principal),
		Method:         r.Method,
		Path:           r.Path,
		Action:         "mcp." + r.What,
		Resource:       &audit.Resource{Route: r.Route, API: gateway.APIMCP, MCPSession: r.Session},
		Code:           codeOwnRequest,
		Upstream:       audit.SafeURL(r.Upstream),
		UpstreamStatus: r.Status,
		LatencyMS:      float64(r.Duration.Microseconds()) / 1000,
	}
	switch {
	case !r.Sent:
		rec.Code = codeOwnRequestNotSent
		rec.Reason = fmt.Sprintf("warden's own request, caused by %s, %s", cause(r), r.Error)
	case r.Error != "":
		rec.Code = codeOwnRequestFailed
		rec.Reason = fmt.Sprintf("warden's own request, caused by %s, failed: %s", cause(r), r.Error)
	default:
		rec.Reason = fmt.Sprintf("warden's own request, caused by %s; the server answered %d", cause(r), r.Status)
	}
	return rec
}

// cause names what caused one of warden's own requests.
func cause(r mcp.OwnRequest) string {
	if r.CausedBy == "" {
		return "the session sweep (the credential that opened the session is no longer valid)"
	}
	return "request " + r.CausedBy
}

// mcpAuthorizer asks the policy in force whether the exchange's principal
// may perform action on a named tool, prompt or resource (with no
// arguments): what a list shows is what the caller may use.
func mcpAuthorizer(stage *policy.Stage, opts policy.InputOptions) mcp.Authorizer {
	return func(ex *gateway.Exchange, action, name string) (bool, error) {
		cp := *ex
		cp.Action, cp.Tool = action, name
		cp.MCP = &gateway.MCPMessage{Name: name}
		if ex.MCP != nil {
			cp.MCP.Session = ex.MCP.Session
		}
		in, err := policy.NewInput(&cp, opts)
		if err != nil {
			return false, err
		}
		d, err := stage.Decide(ex.Request.Context(), in) // through the decision memo
		if err != nil {
			return false, err
		}
		policy.EnforceObligations(&d)
		return d.Allow, nil
	}
}

// routeInspector sends the responses of MCP routes to the MCP gateway and
// every other response to other (nil: not inspected).
type routeInspector struct {
	mcp   *mcp.Gateway
	other gateway.ResponseInspector
}

func (ri routeInspector) InspectResponse(ex *gateway.Exchange, res *http.Response) (func(), error) {
	if ex.Route != nil && ex.Route.API == gateway.APIMCP {
		return ri.mcp.InspectResponse(ex, res)
	}
	if ri.other == nil {
		return nil, nil
	}
	return ri.other.InspectResponse(ex, res)
}

// mcpStages returns the stage that shapes refusals on MCP routes as
// JSON-RPC errors (after the route match) and the message stage (after the
// body reader); nil when there are no MCP routes.
func mcpErrorStages(g *mcp.Gateway) []gateway.Stage {
	if g == nil {
		return nil
	}
	return []gateway.Stage{g.Errors()}
}

func mcpMessageStages(g *mcp.Gateway) []gateway.Stage {
	if g == nil {
		return nil
	}
	return []gateway.Stage{g.Messages()}
}

type approveRequest struct {
	Server string `json:"server"`
	Tool   string `json:"tool"`
	Digest string `json:"digest"`
}

// approvePin serves POST /v1/warden/mcp/approve: {"server","tool","digest"}
// approves the pending definition with that digest. Policy decides who may
// (action "mcp.pin.approve", segment "control").
func approvePin(ex *gateway.Exchange, pins *mcp.PinStore) error {
	bad := func(cause error, msg string) error {
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_approval", cause, "%s", msg)
	}
	if ct := ex.Request.Header.Get("Content-Type"); ct != "application/json" {
		return gateway.Errorf(http.StatusUnsupportedMediaType, gateway.TypeInvalidRequest, "unsupported_media_type", nil,
			"Content-Type must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(ex.Body))
	dec.DisallowUnknownFields()
	var req approveRequest
	if err := dec.Decode(&req); err != nil {
		return bad(err, "the body must be a JSON object with server, tool and digest")
	}
	if req.Server == "" || req.Tool == "" || len(req.Digest) != 64 {
		return bad(nil, "server, tool and digest (64 hex characters) are required")
	}
	ex.Tool = req.Tool
	p, err := pins.Approve(req.Server, req.Tool, req.Digest, ex.Principal.ID)
	switch {
	case errors.Is(err, mcp.ErrPinNotFound):
		return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_pin", err, "no such tool is pinned")
	case errors.Is(err, mcp.ErrPinDigest):
		return gateway.Errorf(http.StatusConflict, gateway.TypeInvalidRequest, "pin_digest_mismatch", err,
			"the digest is not the definition awaiting approval; list the pins again")
	case err != nil:
		return fmt.Errorf("approve pin: %w", err)
	}
	return writeNativeJSON(ex, map[string]any{"pin": p})
}

func writeNativeJSON(ex *gateway.Exchange, v any) error {
	ex.Writer.Header().Set("Content-Type", "application/json")
	ex.Writer.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(ex.Writer).Encode(v)
}
