package mcp

import (
	"context"
	"encoding/json"
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
// that caused them.

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

// runOwn runs one of warden's own requests; tests replace it to run them
// in line.
var runOwn = func(f func()) { go f() }

// sendOwn sends method with body to the MCP server of ex's route, in the
// session sid, in the background.
func (g *Gateway) sendOwn(ex *gateway.Exchange, what, sid, method string, body []byte) {
	if g.Upstream == nil || ex.Route == nil || ex.Request == nil || sid == "" {
		return
	}
	g.ownOnce.Do(func() { g.own = make(chan struct{}, maxOwnRequests) })
	log := g.logger().With("request_id", ex.ID, "server", ex.Route.Name, "what", what)
	select {
	case g.own <- struct{}{}:
	default:
		log.Warn("mcp: too many of warden's own requests to MCP servers in flight; not sent")
		return
	}
	h := http.Header{SessionHeader: {sid}, gateway.RequestIDHeader: {ex.ID}}
	if v := ex.Request.Header.Get(protocolHeader); v != "" {
		h.Set(protocolHeader, v)
	}
	if body != nil {
		h.Set("Content-Type", "application/json")
		h.Set("Accept", "application/json, text/event-stream")
	}
	route, path := ex.Route.Name, *ex.Request.URL
	runOwn(func() {
		defer func() { <-g.own }()
		ctx, cancel := context.WithTimeout(context.Background(), ownRequestTimeout)
		defer cancel()
		status, err := g.Upstream(ctx, route, &path, method, h, body)
		switch {
		case err != nil:
			log.Warn("mcp: warden's own request to the MCP server failed", "method", method, "error", err.Error())
		case status >= 300:
			log.Info("mcp: the MCP server refused warden's own request", "method", method, "status", status)
		default:
			log.Info("mcp: warden's own request to the MCP server", "method", method, "status", status)
		}
	})
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
