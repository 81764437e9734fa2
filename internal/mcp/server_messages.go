package mcp

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
)

// An MCP server does not only answer: on the stream of a request, or on
// the session's own stream (GET), it may send the client requests of its
// own and notifications. Some of them are an attack surface of their own:
// sampling/createMessage asks the client's model to run a prompt the
// server wrote (a compromised server's way to drive the agent's model
// directly), elicitation/create asks the user for information (a phishing
// channel), roots/list asks which directories the client exposes. warden
// treats them as it treats client requests: a closed list of methods,
// policy for every request, the guards over their content.

// Actions policy sees for server-to-client requests (input.action). The
// principal is the client whose session the request would reach.
const (
	ActionServerPing        = "mcp.server.ping"
	ActionServerRoots       = "mcp.server.roots.list"
	ActionServerSampling    = "mcp.server.sampling"
	ActionServerElicitation = "mcp.server.elicitation"
)

// Finding types of refused server messages (guard "mcp", class "integrity",
// where "server_message").
const (
	FindingServerMethodUnknown      = "server_method_unknown"
	FindingServerRequestDenied      = "server_request_denied"
	FindingServerResponseUnexpected = "server_response_unexpected"
	FindingServerMessageBlocked     = "server_message_blocked"
)

// serverMethods is the closed list of server-to-client methods of MCP
// 2025-06-18 and 2025-11-25: requests (with an action, decided by policy)
// and notifications (no action: passed after the guards). Anything else is
// dropped.
var serverMethods = map[string]string{
	"ping":                   ActionServerPing,
	"roots/list":             ActionServerRoots,
	"sampling/createMessage": ActionServerSampling,
	"elicitation/create":     ActionServerElicitation,

	"notifications/cancelled":              "",
	"notifications/progress":               "",
	"notifications/message":                "",
	"notifications/resources/updated":      "",
	"notifications/resources/list_changed": "",
	"notifications/tools/list_changed":     "",
	"notifications/prompts/list_changed":   "",
	"notifications/elicitation/complete":   "",
}

// serverMessage checks a request or notification the server sent and
// returns what to pass to the client, or nil to drop it. A dropped
// request is answered with a JSON-RPC error when the gateway can reach the
// server on its own (Gateway.Upstream; otherwise its server sees what it
// sees from a client that does not answer: its own timeout). Every drop is a finding on the
// exchange whose stream carried the message, and a log line. An error
// (policy or the guards could not decide) ends the stream: fail closed.
func (g *Gateway) serverMessage(ex *gateway.Exchange, m *Message, data []byte) ([]byte, error) {
	action, known := serverMethods[m.Method]
	isRequest := action != ""
	if !known || isRequest != (m.ID != nil) {
		g.dropServerMessage(ex, m, FindingServerMethodUnknown, "not a server-to-client method of MCP (or a request without an id)")
		g.refuseServerRequest(ex, m, CodeMethodNotFound, "method not found")
		return nil, nil
	}
	if isRequest && g.Authorize != nil {
		allow, err := g.Authorize(ex, action, "")
		if err != nil {
			return nil, fmt.Errorf("mcp: authorize %s from the server: %w", m.Method, err)
		}
		if !allow {
			g.dropServerMessage(ex, m, FindingServerRequestDenied, "policy does not allow "+action+" for this principal")
			g.refuseServerRequest(ex, m, CodeRefused, "refused by the gateway: policy does not allow this request")
			return nil, nil
		}
	}
	if len(m.Params) == 0 {
		return data, nil
	}
	changed, blocked, err := g.scanMembers(ex, m.Params, guard.WhereServerMessage)
	if err != nil {
		return nil, err
	}
	if blocked != nil {
		g.dropServerMessage(ex, m, FindingServerMessageBlocked, "the guards' findings in it are blocked by the mask obligation")
		g.refuseServerRequest(ex, m, CodeRefused, "refused by the gateway: the request carries content that may not reach the client")
		return nil, nil
	}
	if !changed {
		return data, nil
	}
	params, err := json.Marshal(m.Params)
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode server message: %w", err)
	}
	out, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id,omitempty"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params"`
	}{"2.0", m.ID, m.Method, params})
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode server message: %w", err)
	}
	return out, nil
}

// scanError passes the error a server answered with through the guards,
// as a result: its message and data reach the agent's model as well.
func (g *Gateway) scanError(ex *gateway.Exchange, m *Message, data []byte) ([]byte, error) {
	members, ok := objectMembers(m.Error)
	if !ok {
		return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, nil, "the MCP server sent an invalid error")
	}
	changed, blocked, err := g.scanMembers(ex, members, guard.WhereToolResult)
	if err != nil {
		return nil, err
	}
	if blocked != nil {
		return ErrorResponse(m.ID, CodeForbidden, "the server's error was blocked by policy: it contains content that may not reach the agent",
			gateway.TypePermission, CodeResultBlocked, ex.ID), nil
	}
	if !changed {
		return data, nil
	}
	e, err := json.Marshal(members)
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode error: %w", err)
	}
	out, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   json.RawMessage `json:"error"`
	}{"2.0", m.ID, e})
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode error: %w", err)
	}
	return out, nil
}

// dropServerMessage records that a server message was not passed on.
func (g *Gateway) dropServerMessage(ex *gateway.Exchange, m *Message, typ, why string) {
	ex.Findings = append(ex.Findings, gateway.Finding{Guard: "mcp", Type: typ, Class: "integrity",
		Where: guard.WhereServerMessage, Action: "blocked"})
	method := m.Method
	if len(method) > 64 {
		method = method[:64] + "…"
	}
	g.logger().Warn("mcp: a message from the server was not passed to the client",
		"request_id", ex.ID, "server", routeName(ex), "method", method, "finding", typ, "why", why)
}

func routeName(ex *gateway.Exchange) string {
	if ex.Route == nil {
		return ""
	}
	return ex.Route.Name
}

// errNotTheResponse refuses a JSON body that is not the response to the
// request it answers.
var errNotTheResponse = mcpErr(http.StatusBadGateway, CodeBadUpstream, nil,
	"the MCP server answered with a message that is not the response to the request")
