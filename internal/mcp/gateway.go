package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/guard"
)

// Error codes (gateway.Error.Code, the audit record's code) of MCP refusals.
const (
	CodeParse           = "mcp_parse_error"
	CodeInvalid         = "mcp_invalid_request"
	CodeUnknownMethod   = "mcp_unknown_method"
	CodeBadParams       = "mcp_invalid_params"
	CodeSessionUnknown  = "mcp_session_not_found"
	CodeSessionOwner    = "mcp_session_principal_mismatch"
	CodeSessionRevoked  = "mcp_session_revoked"
	CodeSessionsFull    = "mcp_sessions_full"
	CodeToolNotApproved = "mcp_tool_not_approved"
	CodeResultBlocked   = "mcp_result_blocked"
	CodeBadUpstream     = "mcp_upstream_invalid"
)

// rpcCodes maps warden's error codes to JSON-RPC codes; others map by HTTP status.
var rpcCodes = map[string]int{
	CodeParse: CodeParseError, CodeInvalid: CodeInvalidRequest, CodeUnknownMethod: CodeMethodNotFound,
	CodeBadParams: CodeInvalidParams, CodeSessionUnknown: CodeSessionNotFound,
}

// Finding types of the MCP gateway itself (guard "mcp", class "integrity").
const (
	FindingToolChanged    = "tool_changed"
	FindingToolUnapproved = "tool_unapproved"
)

// Authorizer asks policy whether the exchange's principal may perform
// action on the named tool, prompt or resource, with no arguments. It
// decides what a list shows. An error fails closed.
type Authorizer func(ex *gateway.Exchange, action, name string) (bool, error)

// Gateway is the MCP gateway of every "mcp" route.
type Gateway struct {
	Sessions *Sessions
	// Pins is the tool pin store; nil turns pinning off.
	Pins *PinStore
	// Authorize filters lists; nil shows everything policy let the list through.
	Authorize Authorizer
	// Scanner (DLP) and Injection (its Document detector) scan tool
	// results, resource contents and prompts; nil skips them.
	Scanner   guard.Scanner
	Injection func(text []byte) guard.Verdict
	// Key is the tenant key for "hash" mask rules.
	Key []byte
	// MaxResponseBytes bounds one server message (default 4 MiB).
	MaxResponseBytes int64
	Logger           *slog.Logger
	// Upstream makes warden's own requests to MCP servers (upstream.go):
	// ending at the server a session warden ended, answering a server
	// request warden refused. nil: warden never sends any.
	Upstream Upstream
	// Audit records each of warden's own requests, sent or not (nil: they
	// are logged only).
	Audit func(OwnRequest) error

	ownOnce sync.Once
	own     chan struct{} // bounds warden's own requests in flight
}

func (g *Gateway) logger() *slog.Logger {
	if g.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Logger
}

func (g *Gateway) maxResponse() int64 {
	if g.MaxResponseBytes > 0 {
		return g.MaxResponseBytes
	}
	return 4 << 20
}

// Errors returns the stage that answers every refusal on an MCP route as a
// JSON-RPC error response (with the HTTP status of the refusal), so MCP
// clients see a protocol error rather than an unknown body. Place it right
// after the route match.
func (g *Gateway) Errors() gateway.Stage { return errorStage{} }

type errorStage struct{}

func (errorStage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	err := next(ex)
	if err == nil || ex.Route == nil || ex.Route.API != gateway.APIMCP || ex.Writer == nil || ex.Writer.Started() {
		return err
	}
	ge := gateway.AsError(err)
	code, ok := rpcCodes[ge.Code]
	if !ok {
		code = statusCode(ge.Status)
	}
	var id json.RawMessage
	if ex.MCP != nil {
		id = ex.MCP.ID
	}
	body := ErrorResponse(id, code, ge.Message, ge.Type, ge.Code, ex.ID)
	h := ex.Writer.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	ex.Writer.WriteHeader(ge.Status)
	_, _ = ex.Writer.Write(append(body, '\n'))
	return err
}

func statusCode(status int) int {
	switch {
	case status == http.StatusUnauthorized:
		return CodeUnauthenticated
	case status == http.StatusForbidden:
		return CodeForbidden
	case status == http.StatusNotFound:
		return CodeSessionNotFound
	case status == http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case status == http.StatusTooManyRequests:
		return CodeRateLimited
	case status >= 500:
		return CodeUnavailable
	}
	return CodeInvalidRequest
}

// Messages returns the stage that parses the message of a POST, names its
// action, tool and arguments for policy, and checks the session binding.
// Place it after the body reader and before the guards and authorize.
func (g *Gateway) Messages() gateway.Stage { return messageStage{g} }

type messageStage struct{ g *Gateway }

func mcpErr(status int, code string, cause error, msg string) *gateway.Error {
	typ := gateway.TypeInvalidRequest
	switch status {
	case http.StatusForbidden:
		typ = gateway.TypePermission
	case http.StatusNotFound:
		typ = gateway.TypeNotFound
	case http.StatusServiceUnavailable:
		typ = gateway.TypeServer
	}
	return &gateway.Error{Status: status, Type: typ, Code: code, Message: msg, Err: cause}
}

func parseFailure(pe *ParseError) *gateway.Error {
	code := CodeInvalid
	switch pe.Code {
	case CodeParseError:
		code = CodeParse
	case CodeMethodNotFound:
		code = CodeUnknownMethod
	case CodeInvalidParams:
		code = CodeBadParams
	}
	return mcpErr(http.StatusBadRequest, code, pe, pe.Message)
}

func (s messageStage) Handle(ex *gateway.Exchange, next func(*gateway.Exchange) error) error {
	if ex.Route == nil || ex.Route.API != gateway.APIMCP {
		return next(ex)
	}
	if ex.Principal == nil {
		return errors.New("mcp: message stage ran before identify")
	}
	g := s.g
	r := ex.Request
	sid := r.Header.Get(SessionHeader)
	if len(r.Header.Values(SessionHeader)) > 1 || (sid != "" && !ValidSessionID(sid)) {
		return mcpErr(http.StatusBadRequest, CodeInvalid, nil, "invalid "+SessionHeader+" header")
	}
	switch r.Method {
	case http.MethodPost:
		if err := checkContentType(r.Header.Values("Content-Type")); err != nil {
			return err
		}
		m, pe := Parse(ex.Body)
		if pe != nil {
			ex.MCP = &gateway.MCPMessage{ID: pe.ID, Session: SessionDigest(sid)}
			return parseFailure(pe)
		}
		msg, action, pe := Classify(m)
		if pe != nil {
			ex.MCP = &gateway.MCPMessage{ID: pe.ID, Method: m.Method, Session: SessionDigest(sid)}
			return parseFailure(pe)
		}
		msg.Session = SessionDigest(sid)
		ex.MCP, ex.Action, ex.Tool = msg, action, msg.Name
		if action == ActionInitialize {
			if sid != "" {
				return mcpErr(http.StatusBadRequest, CodeInvalid, nil, "initialize must not carry a session id")
			}
			return next(ex)
		}
	default: // GET (the server's stream) and DELETE (end the session) need a session
		ex.MCP = &gateway.MCPMessage{Session: SessionDigest(sid)}
		if sid == "" {
			return mcpErr(http.StatusBadRequest, CodeInvalid, nil, "a "+r.Method+" needs an "+SessionHeader+" header")
		}
	}
	if sid != "" {
		if err := g.Sessions.check(ex.Route.Name, sid, ex.Principal, r.Header.Get(protocolHeader)); err != nil {
			if errors.Is(err, errSessionEndedNow) {
				g.endUpstream(ex, sid) // the session ended here just now
			}
			return sessionError(err)
		}
	}
	if ex.Action == ActionToolsCall && g.Pins != nil && !g.Pins.Callable(ex.Route.Name, ex.Tool) {
		return mcpErr(http.StatusForbidden, CodeToolNotApproved,
			fmt.Errorf("mcp: tool %q of %q has no approved pin (unlisted, pending or changed)", ex.Tool, ex.Route.Name),
			"the tool's definition is not approved; it cannot be called")
	}
	err := next(ex)
	if r.Method == http.MethodDelete && err == nil && ex.UpstreamStatus >= 200 && ex.UpstreamStatus < 300 {
		g.Sessions.End(ex.Route.Name, sid)
	}
	if ge, ok := errors.AsType[*gateway.Error](err); ok && ge.Code == gateway.CodeCredentialRevoked && sid != "" {
		// The exchange's credential failed while it ran (a stream cut on
		// revocation). If the session's opening credential failed too, the
		// session is over: here, and at the server.
		if errors.Is(g.Sessions.Check(ex.Route.Name, sid, ex.Principal), errSessionEndedNow) {
			g.endUpstream(ex, sid)
		}
	}
	return err
}

func sessionError(err error) error {
	switch {
	case errors.Is(err, ErrSessionOwner):
		return mcpErr(http.StatusForbidden, CodeSessionOwner, err, "the session belongs to another principal")
	case errors.Is(err, ErrSessionRevoked):
		return mcpErr(http.StatusNotFound, CodeSessionRevoked, err, "the session has ended: the credential that opened it is no longer valid")
	default:
		return mcpErr(http.StatusNotFound, CodeSessionUnknown, err, "session not found; initialize a new session")
	}
}

// checkContentType accepts application/json, optionally with a UTF-8 charset.
func checkContentType(values []string) error {
	bad := mcpErr(http.StatusUnsupportedMediaType, CodeInvalid, nil, "Content-Type must be application/json")
	if len(values) != 1 {
		return bad
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return bad
	}
	for k, v := range params {
		if k != "charset" || (v != "utf-8" && v != "UTF-8") {
			return bad
		}
	}
	return nil
}

// InspectResponse implements gateway.ResponseInspector for MCP routes: it
// binds the session an initialize opened, and passes every message of the
// response (a JSON body or an SSE stream) through handle.
func (g *Gateway) InspectResponse(ex *gateway.Exchange, res *http.Response) (func(), error) {
	if ex.MCP == nil || ex.Principal == nil {
		return nil, errors.New("mcp: response without a parsed exchange")
	}
	if ex.Action == ActionInitialize && res.StatusCode >= 200 && res.StatusCode < 300 {
		if sid := res.Header.Get(SessionHeader); sid != "" {
			if !ValidSessionID(sid) {
				return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, nil, "the MCP server returned an invalid session id")
			}
			u := *ex.Request.URL
			if err := g.Sessions.bind(ex.Route, &u, sid, ex.Principal, ex.Revalidate); err != nil {
				status := http.StatusBadGateway
				if errors.Is(err, ErrSessionsFull) {
					status = http.StatusServiceUnavailable
				}
				return nil, mcpErr(status, CodeSessionsFull, err, "the session could not be opened")
			}
			ex.MCP.Session = SessionDigest(sid)
		}
	}
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	switch {
	case res.StatusCode == http.StatusAccepted || res.StatusCode == http.StatusNoContent || res.Request != nil && res.Request.Method == http.MethodHead:
		return nil, nil
	case ct == "text/event-stream":
		rw := &sseRewriter{src: res.Body, g: g, ex: ex, max: int(g.maxResponse())}
		res.Body = rw
		return func() {
			if rw.err != nil {
				g.logger().Info("mcp: server stream ended early", "request_id", ex.ID, "cause", rw.err.Error())
			}
		}, nil
	case ct == "application/json":
		body, err := readBounded(res.Body, g.maxResponse())
		_ = res.Body.Close()
		if err != nil {
			return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, err, "the MCP server's response could not be read")
		}
		out, err := g.handle(ex, body)
		if err != nil {
			return nil, err
		}
		if out == nil { // a JSON body is the response to the request, nothing else
			return nil, errNotTheResponse
		}
		res.Body = io.NopCloser(bytes.NewReader(out))
		res.ContentLength = int64(len(out))
		res.Header.Set("Content-Length", strconv.Itoa(len(out)))
		return nil, nil
	case res.StatusCode >= 400:
		// An error from the server that is not JSON-RPC: its body is not
		// passed on (it could say anything); the status is.
		_ = res.Body.Close()
		res.Body = io.NopCloser(bytes.NewReader(nil))
		res.ContentLength = 0
		res.Header.Del("Content-Type")
		res.Header.Set("Content-Length", "0")
		return nil, nil
	default:
		return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, nil, "the MCP server answered with an unsupported content type")
	}
}

// handle checks one server message and returns what to send the client
// in its place. A message warden cannot parse is refused. The response to
// the exchange's own request is filtered (lists), pin-checked (tools/list)
// and scanned (tool results, resource contents, prompts); a blocked result
// becomes a JSON-RPC error for the same id. The server's own requests and
// notifications go through serverMessage; a response to any other request
// is dropped. nil (and no error): drop the message.
func (g *Gateway) handle(ex *gateway.Exchange, data []byte) ([]byte, error) {
	m, pe := Parse(data)
	if pe != nil {
		return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, pe, "the MCP server sent an invalid message")
	}
	if !m.IsResponse() {
		return g.serverMessage(ex, m, data)
	}
	if ex.MCP.ID == nil || !bytes.Equal(bytes.TrimSpace(m.ID), bytes.TrimSpace(ex.MCP.ID)) {
		// A stream carries the response to its own request and nothing
		// else answers: a response to another id (or on the session's
		// stream) could slip an answer to a request warden never saw.
		g.dropServerMessage(ex, m, FindingServerResponseUnexpected, "a response that answers no request of this stream")
		return nil, nil
	}
	if m.Error != nil {
		return g.scanError(ex, m, data)
	}
	// The result's members, from a scan of the already validated result
	// (not a second decode with encoding/json).
	result, ok := objectMembers(m.Result)
	if !ok {
		return nil, mcpErr(http.StatusBadGateway, CodeBadUpstream, nil, "the MCP server sent an invalid result")
	}
	var changed bool
	var err error
	switch ex.Action {
	case ActionToolsList:
		changed, err = g.filterList(ex, result, "tools", "name", ActionToolsCall, true)
	case ActionPromptsList:
		changed, err = g.filterList(ex, result, "prompts", "name", ActionPromptsGet, false)
	case ActionResourcesList:
		changed, err = g.filterList(ex, result, "resources", "uri", ActionResourcesRead, false)
	case ActionToolsCall, ActionResourcesRead, ActionPromptsGet:
		var blocked error
		changed, blocked, err = g.scanResult(ex, result)
		if err == nil && blocked != nil {
			return ErrorResponse(m.ID, CodeForbidden, "the result was blocked by policy: it contains content that may not reach the agent",
				gateway.TypePermission, CodeResultBlocked, ex.ID), nil
		}
	}
	if err != nil {
		return nil, err
	}
	if !changed {
		return data, nil
	}
	res, err := json.Marshal(result)
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode result: %w", err)
	}
	out, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
	}{"2.0", m.ID, res})
	if err != nil {
		return nil, fmt.Errorf("mcp: re-encode response: %w", err)
	}
	return out, nil
}

// filterList drops from result[key] every item policy would not let the
// principal use (action on the item's nameKey) and, for tools, every tool
// whose definition is not the approved pin.
func (g *Gateway) filterList(ex *gateway.Exchange, result map[string]json.RawMessage, key, nameKey, action string, pin bool) (bool, error) {
	raw, ok := result[key]
	if !ok || isNull(raw) {
		return false, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return false, mcpErr(http.StatusBadGateway, CodeBadUpstream, err, "the MCP server sent an invalid list")
	}
	kept := make([]map[string]json.RawMessage, 0, len(items))
	for _, it := range items {
		var name string
		if json.Unmarshal(it[nameKey], &name) != nil || name == "" {
			return false, mcpErr(http.StatusBadGateway, CodeBadUpstream, nil, "the MCP server listed an item without a "+nameKey)
		}
		if pin && g.Pins != nil {
			d, err := ToolDigest(it)
			if err != nil {
				return false, mcpErr(http.StatusBadGateway, CodeBadUpstream, err, "the MCP server listed an invalid tool")
			}
			ok, changed, err := g.Pins.Observe(ex.Route.Name, name, d)
			if err != nil {
				return false, err // the pin store cannot be written: fail closed (500)
			}
			if !ok {
				typ := FindingToolUnapproved
				if g.Pins.everApproved(ex.Route.Name, name) {
					typ = FindingToolChanged
				}
				ex.Findings = append(ex.Findings, gateway.Finding{Guard: "mcp", Type: typ, Class: "integrity",
					Where: guard.WhereResponse, Action: "blocked"})
				if changed {
					g.logger().Warn("mcp: a tool's definition changed; it is refused until approved (warden mcp approve)",
						"request_id", ex.ID, "server", ex.Route.Name, "tool", name, "digest", d)
				}
				continue
			}
		}
		if g.Authorize != nil {
			allow, err := g.Authorize(ex, action, name)
			if err != nil {
				return false, err
			}
			if !allow {
				continue
			}
		}
		kept = append(kept, it)
	}
	if len(kept) == len(items) {
		return false, nil
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return false, fmt.Errorf("mcp: re-encode list: %w", err)
	}
	result[key] = b
	return true, nil
}

// everApproved reports whether tool once had an approved definition.
func (s *PinStore) everApproved(server, tool string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pins[pinKey(server, tool)]
	return p != nil && p.Digest != ""
}
