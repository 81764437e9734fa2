package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// Requests warden makes to an MCP server on its own, after it decided
// something the server would otherwise not learn:
//
//   - a session warden ended because the credential that opened it was
//     revoked or expired is ended at the server too (DELETE with the
//     session id, as the Streamable HTTP transport says a client ends a
//     session), so the server does not keep the session's state, and a
//     stolen session id is worth nothing there either;
//   - a server request warden did not pass to the client (refused by
//     policy, blocked by the guards, an unknown method) is answered with a
//     JSON-RPC error, so the server does not wait for its own timeout.
//
// They carry the route's upstream credential, the session id and the
// protocol version the client used, and nothing else of the client's.
// They run in the background, at most maxOwnRequests at once (more are
// logged and skipped: the server then times out on its own), each bounded
// by ownRequestTimeout, and are logged with the request id of the exchange
// that caused them. Each is also handed to Gateway.Audit (OwnRequest), sent
// or not, so that the audit log holds what warden did on its own.

// Upstream sends a request of warden's own to a route's MCP server, at the
// URL the client path maps to, with the route's credential
// (gateway.Proxy.Send). It returns the server's status.
type Upstream func(ctx context.Context, route string, path *url.URL, method string, header http.Header, body []byte) (int, error)

const (
	maxOwnRequests    = 32
	ownRequestTimeout = 10 * time.Second
	// CodeRefused is the JSON-RPC error code of warden's answer to a server
	// request it did not pass on (MCP uses -1 for a request the user
	// rejected; here the gateway's policy did).
	CodeRefused = -1
	// protocolHeader is the Streamable HTTP protocol version header.
	protocolHeader = "Mcp-Protocol-Version"
)

// OwnRequest is one of warden's own requests to an MCP server, as the audit
// log records it: what caused it and what came of it, never the session id
// itself or the credential.
type OwnRequest struct {
	ID        string             // request id of this request (sent as X-Request-Id)
	CausedBy  string             // request id of the exchange that caused it; "" for the session sweep
	What      string             // "session_end" or "server_request_refused"
	Principal *gateway.Principal // the principal of the causing exchange
	Route     string
	Upstream  string // the route's upstream base URL
	Method    string
	Path      string // the escaped path, never the query
	Session   string // SessionDigest of the session id
	Start     time.Time
	Duration  time.Duration
	Status    int    // the server's status; 0 if none
	Error     string // why it failed, or was not sent; "" if answered
	Sent      bool
}

// runOwn runs one of warden's own requests; tests replace it to run them
// in line.
var runOwn = func(f func()) { go f() }

// ownTarget is where one of warden's own requests goes, and why.
type ownTarget struct {
	causedBy  string // request id of the causing exchange; "" for the session sweep
	principal *gateway.Principal
	route     *gateway.Route
	path      url.URL // the client's URL, mapped to the server's by Upstream
	protocol  string  // Mcp-Protocol-Version the client used, if any
}

// targetOf is the target of an own request caused by exchange ex.
func targetOf(ex *gateway.Exchange) ownTarget {
	return ownTarget{causedBy: ex.ID, principal: ex.Principal, route: ex.Route, path: *ex.Request.URL,
		protocol: ex.Request.Header.Get(protocolHeader)}
}

// sendOwn sends method with body to the MCP server of ex's route, in the
// session sid, in the background.
func (g *Gateway) sendOwn(ex *gateway.Exchange, what, sid, method string, body []byte) {
	if ex.Route == nil || ex.Request == nil || ex.Request.URL == nil {
		return
	}
	g.sendOwnTo(targetOf(ex), what, sid, method, body)
}

// sendOwnTo sends method with body to the MCP server of t's route, in the
// session sid, in the background.
func (g *Gateway) sendOwnTo(t ownTarget, what, sid, method string, body []byte) {
	if g.Upstream == nil || t.route == nil || sid == "" {
		return
	}
	g.ownOnce.Do(func() { g.own = make(chan struct{}, maxOwnRequests) })
	rec := OwnRequest{ID: gateway.NewRequestID(), CausedBy: t.causedBy, What: what, Principal: t.principal,
		Route: t.route.Name, Upstream: t.route.Upstream, Method: method, Path: t.path.EscapedPath(), Session: SessionDigest(sid), Start: time.Now()}
	log := g.logger().With("request_id", rec.ID, "caused_by", t.causedBy, "server", t.route.Name, "what", what)
	select {
	case g.own <- struct{}{}:
	default:
		log.Warn("mcp: too many of warden's own requests to MCP servers in flight; not sent")
		rec.Error = fmt.Sprintf("not sent: %d of warden's own requests already in flight", maxOwnRequests)
		g.audit(log, rec)
		return
	}
	h := http.Header{SessionHeader: {sid}, gateway.RequestIDHeader: {rec.ID}}
	if t.protocol != "" {
		h.Set(protocolHeader, t.protocol)
	}
	if body != nil {
		h.Set("Content-Type", "application/json")
		h.Set("Accept", "application/json, text/event-stream")
	}
	path := t.path
	runOwn(func() {
		defer func() { <-g.own }()
		ctx, cancel := context.WithTimeout(context.Background(), ownRequestTimeout)
		defer cancel()
		status, err := g.Upstream(ctx, rec.Route, &path, method, h, body)
		rec.Sent, rec.Status, rec.Duration = true, status, time.Since(rec.Start)
		switch {
		case err != nil:
			rec.Error = err.Error()
			log.Warn("mcp: warden's own request to the MCP server failed", "method", method, "error", rec.Error)
		case status >= 300:
			log.Info("mcp: the MCP server refused warden's own request", "method", method, "status", status)
		default:
			log.Info("mcp: warden's own request to the MCP server", "method", method, "status", status)
		}
		g.audit(log, rec)
	})
}

// audit hands rec to Gateway.Audit. The client's outcome was decided
// before the request was made, so a failure to record it can only be
// logged: there is nothing left to fail closed.
func (g *Gateway) audit(log *slog.Logger, rec OwnRequest) {
	if g.Audit == nil {
		return
	}
	if err := g.Audit(rec); err != nil {
		log.Error("mcp: cannot record warden's own request in the audit log", "error", err.Error())
	}
}

// endUpstream ends session sid at the server: warden ended it.
func (g *Gateway) endUpstream(ex *gateway.Exchange, sid string) {
	g.sendOwn(ex, "session_end", sid, http.MethodDelete, nil)
}

// refuseServerRequest answers server request m, which warden did not pass
// to the client, with a JSON-RPC error; notifications get no answer.
func (g *Gateway) refuseServerRequest(ex *gateway.Exchange, m *Message, code int, message string) {
	if m.ID == nil || m.Method == "" || ex.Request == nil {
		return
	}
	body, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{JSONRPC: "2.0", ID: m.ID, Error: struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message}})
	if err != nil { // an id Parse accepted is valid JSON; never happens
		g.logger().Error("mcp: encode the answer to a refused server request", "request_id", ex.ID, "error", err.Error())
		return
	}
	g.sendOwn(ex, "server_request_refused", ex.Request.Header.Get(SessionHeader), http.MethodPost, body)
}

// SessionSweepInterval is how often SweepSessions checks the credentials
// that opened the live sessions.
const SessionSweepInterval = 2 * time.Second

// SweepSessions ends, every interval until ctx ends, the sessions whose
// opening credential failed (Sessions.Sweep): here, and at the server with
// warden's own DELETE, as if their client had come back. Without it, a
// session whose client never returns after a revocation would live at the
// server until the server's own idle timeout.
func (g *Gateway) SweepSessions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range g.Sessions.Sweep() {
			g.logger().Info("mcp: ended a session whose opening credential is no longer valid",
				"server", s.route.Name, "session", SessionDigest(s.id))
			g.sendOwnTo(ownTarget{principal: s.principal, route: s.route, path: s.path, protocol: s.protocol},
				"session_end", s.id, http.MethodDelete, nil)
		}
	}
}
