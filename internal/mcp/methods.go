package mcp

import (
	"bytes"
	"encoding/json"

	"github.com/warden-ai/warden/internal/gateway"
)

// Actions policy sees for MCP messages (input.action). A POST's action is
// its method's; GET and DELETE are gateway.ActionMCPStream and
// gateway.ActionMCPEnd.
const (
	ActionInitialize    = "mcp.initialize"
	ActionPing          = "mcp.ping"
	ActionNotification  = "mcp.notification" // any notifications/* from the client
	ActionResponse      = "mcp.response"     // the client answering a server request (sampling, elicitation, roots)
	ActionToolsList     = "mcp.tools.list"
	ActionToolsCall     = "mcp.tools.call"
	ActionResourcesList = "mcp.resources.list"
	ActionResourcesRead = "mcp.resources.read"
	ActionPromptsList   = "mcp.prompts.list"
	ActionPromptsGet    = "mcp.prompts.get"
)

// method is what warden knows of one client-to-server method.
type method struct {
	action string
	name   string // params member naming the target ("name", "uri"); "" if none
	args   bool   // params.arguments is an object of arguments
}

// methods is the closed list of client-to-server methods of MCP 2025-06-18
// (and 2025-11-25). Anything else is refused with "method not found"
// before it reaches the server: deny by default applies to protocol
// surface too. (The draft stateless "server/discover" is not in it: the
// SDK clients then fall back to initialize and a session.)
var methods = map[string]method{
	"initialize":               {action: ActionInitialize},
	"ping":                     {action: ActionPing},
	"tools/list":               {action: ActionToolsList},
	"tools/call":               {action: ActionToolsCall, name: "name", args: true},
	"resources/list":           {action: ActionResourcesList},
	"resources/templates/list": {action: "mcp.resources.templates.list"},
	"resources/read":           {action: ActionResourcesRead, name: "uri"},
	"resources/subscribe":      {action: "mcp.resources.subscribe", name: "uri"},
	"resources/unsubscribe":    {action: "mcp.resources.unsubscribe", name: "uri"},
	"prompts/list":             {action: ActionPromptsList},
	"prompts/get":              {action: ActionPromptsGet, name: "name", args: true},
	"completion/complete":      {action: "mcp.completion.complete"},
	"logging/setLevel":         {action: "mcp.logging.set_level"},
	// notifications the client sends
	"notifications/initialized":        {action: ActionNotification},
	"notifications/cancelled":          {action: ActionNotification},
	"notifications/progress":           {action: ActionNotification},
	"notifications/roots/list_changed": {action: ActionNotification},
}

// Classify names a parsed client message for policy: the action, the
// target name and the decoded arguments with their digest. A bad target
// or arguments give a ParseError (invalid params).
func Classify(m *Message) (*gateway.MCPMessage, string, *ParseError) {
	out := &gateway.MCPMessage{Method: m.Method, ID: m.ID}
	if m.IsResponse() {
		return out, ActionResponse, nil
	}
	spec, ok := methods[m.Method]
	if !ok {
		return nil, "", &ParseError{Code: CodeMethodNotFound, Message: "method not found", ID: m.ID}
	}
	if (spec.action == ActionNotification) != (m.ID == nil) {
		return nil, "", &ParseError{Code: CodeInvalidRequest, ID: m.ID,
			Message: "notifications carry no id and requests must carry one"}
	}
	bad := func(msg string) (*gateway.MCPMessage, string, *ParseError) {
		return nil, "", &ParseError{Code: CodeInvalidParams, Message: msg, ID: m.ID}
	}
	if spec.name != "" {
		raw, ok := m.Params[spec.name]
		var name string
		if !ok || json.Unmarshal(raw, &name) != nil || name == "" || len(name) > maxNameBytes {
			return bad("params." + spec.name + " must be a non-empty string")
		}
		out.Name = name
	}
	if spec.args {
		if raw, ok := m.Params["arguments"]; ok && !isNull(raw) {
			if firstByte(raw) != '{' {
				return bad("params.arguments must be an object")
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber() // policy compares exact numbers (amount ceilings)
			var args map[string]any
			if err := dec.Decode(&args); err != nil {
				return bad("params.arguments must be an object")
			}
			out.Arguments = args
			out.ArgumentsSHA256 = digest(raw)
		}
	}
	return out, spec.action, nil
}
