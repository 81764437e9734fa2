package gateway

import (
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
)

// RouteSpec is what the router needs to know about a configured route.
type RouteSpec struct {
	Name        string
	Prefix      string // starts and ends with "/"
	API         string // "openai", "http" or "mcp"
	Segment     string
	Upstream    string // base URL
	StripPrefix bool
}

// openAIEndpoint is one OpenAI-compatible endpoint warden exposes.
type openAIEndpoint struct {
	suffix  string // path after the route prefix
	method  string
	action  string
	hasBody bool
}

// openAIEndpoints is the closed list of OpenAI-compatible endpoints. Anything
// else under an openai route is unknown (404): deny by default applies to
// API surface too.
var openAIEndpoints = []openAIEndpoint{
	{"chat/completions", http.MethodPost, "chat.completions", true},
	{"completions", http.MethodPost, "completions", true},
	{"embeddings", http.MethodPost, "embeddings", true},
	{"responses", http.MethodPost, "responses", true},
	{"models", http.MethodGet, "models.list", false},
}

// NativeRoute is the route of warden's own endpoints. They belong to the
// "control" segment, pass through the same identify/authorize stages as
// every other request, and are served by a NativeHandler instead of an upstream.
var NativeRoute = &Route{Name: "warden", Segment: "control", API: "warden"}

// nativeEndpoints are warden's own endpoints under /v1/warden/: path
// pattern → method → action. They take precedence over any configured
// route. A pattern segment "{id}" matches one path segment of id characters
// (validModelID); the handler reads the id from the path.
var nativeEndpoints = map[string]map[string]string{
	"/v1/warden/token":      {http.MethodPost: "token.exchange"},    // RFC 8693 token exchange
	"/v1/warden/mfa/verify": {http.MethodPost: "mfa.verify"},        // TOTP step-up
	"/v1/warden/revoke":     {http.MethodPost: "credential.revoke"}, // admin: revoke a key, token or subject
	// just-in-time grants
	"/v1/warden/grants":              {http.MethodGet: "grant.list", http.MethodPost: "grant.request"},
	"/v1/warden/grants/{id}/approve": {http.MethodPost: "grant.approve"},
	"/v1/warden/grants/{id}/deny":    {http.MethodPost: "grant.deny"},
	"/v1/warden/grants/{id}/revoke":  {http.MethodPost: "grant.revoke"},
	// automated-response sanctions (quarantine, require_mfa, throttle)
	"/v1/warden/sanctions":      {http.MethodGet: "sanction.list", http.MethodPost: "sanction.create"},
	"/v1/warden/sanctions/{id}": {http.MethodDelete: "sanction.lift"},
	// model registry (internal/server/models.go)
	"/v1/warden/models":               {http.MethodGet: "model.list", http.MethodPost: "model.register"},
	"/v1/warden/models/{id}":          {http.MethodGet: "model.get"},
	"/v1/warden/models/{id}/verify":   {http.MethodPost: "model.verify"},
	"/v1/warden/models/{id}/promote":  {http.MethodPost: "model.promote"},
	"/v1/warden/models/{id}/rollback": {http.MethodPost: "model.rollback"},
	"/v1/warden/datasets":             {http.MethodGet: "dataset.list", http.MethodPost: "dataset.register"},
	"/v1/warden/datasets/{id}":        {http.MethodGet: "dataset.get"},
	// MCP tool pins (internal/server/mcp.go)
	"/v1/warden/mcp/pins":    {http.MethodGet: "mcp.pin.list"},
	"/v1/warden/mcp/approve": {http.MethodPost: "mcp.pin.approve"},
}

// nativeParamPatterns are the nativeEndpoints patterns with an "{id}"
// segment, split at "/".
var nativeParamPatterns = func() [][]string {
	var out [][]string
	for pat := range nativeEndpoints {
		if strings.Contains(pat, "{id}") {
			out = append(out, strings.Split(pat, "/"))
		}
	}
	return out
}()

// nativePattern returns the nativeEndpoints pattern p matches, "" if none.
func nativePattern(p string) string {
	if _, ok := nativeEndpoints[p]; ok && !strings.Contains(p, "{") {
		return p
	}
	n := strings.Count(p, "/") + 1
	for _, pat := range nativeParamPatterns {
		if n != len(pat) {
			continue
		}
		segs := strings.Split(p, "/") // bounded: as many segments as the pattern
		match := true
		for i := range pat {
			if pat[i] == "{id}" && !validModelID(segs[i]) || pat[i] != "{id}" && segs[i] != pat[i] {
				match = false
				break
			}
		}
		if match {
			return strings.Join(pat, "/")
		}
	}
	return ""
}

// allowedMethods is the Allow header value for an endpoint's methods.
func allowedMethods(methods map[string]string) string {
	out := make([]string, 0, len(methods))
	for m := range methods {
		out = append(out, m)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// genericMethods are the methods an "http" route accepts.
var genericMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Router is the stage that matches the request to a route and names the
// action. It rejects non-canonical paths, unknown routes and endpoints and
// wrong methods before any other work is done.
type Router struct {
	routes []routeEntry // longest prefix first
}

type routeEntry struct {
	spec  RouteSpec
	route *Route
}

// NewRouter builds the route table.
func NewRouter(specs []RouteSpec) (*Router, error) {
	rt := &Router{}
	for _, s := range specs {
		if !strings.HasPrefix(s.Prefix, "/") || !strings.HasSuffix(s.Prefix, "/") {
			return nil, fmt.Errorf("gateway: route %q: prefix %q must start and end with /", s.Name, s.Prefix)
		}
		if s.API != "openai" && s.API != "http" && s.API != APIMCP {
			return nil, fmt.Errorf("gateway: route %q: unknown api %q", s.Name, s.API)
		}
		rt.routes = append(rt.routes, routeEntry{spec: s, route: &Route{
			Name: s.Name, Segment: s.Segment, Upstream: s.Upstream, API: s.API,
		}})
	}
	sort.SliceStable(rt.routes, func(i, j int) bool { return len(rt.routes[i].spec.Prefix) > len(rt.routes[j].spec.Prefix) })
	return rt, nil
}

// Handle implements Stage.
func (rt *Router) Handle(ex *Exchange, next func(*Exchange) error) error {
	r := ex.Request
	p := r.URL.Path
	if p == "" || p[0] != '/' || !canonicalPath(p) || strings.Contains(r.URL.RawPath, "%2") {
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "invalid_path", nil,
			"the request path is not in canonical form")
	}
	if r.Header.Get("Upgrade") != "" {
		return Errorf(http.StatusBadRequest, TypeInvalidRequest, "upgrade_not_supported", nil,
			"protocol upgrades are not supported")
	}
	if strings.HasPrefix(p, "/v1/warden/") {
		methods, ok := nativeEndpoints[nativePattern(p)]
		if !ok {
			return Errorf(http.StatusNotFound, TypeNotFound, "unknown_endpoint", nil, "unknown endpoint")
		}
		ex.Route = NativeRoute
		action, ok := methods[r.Method]
		if !ok {
			return methodNotAllowed(ex, allowedMethods(methods))
		}
		ex.Action = action
		return next(ex)
	}
	var e *routeEntry
	for i := range rt.routes {
		if strings.HasPrefix(p, rt.routes[i].spec.Prefix) {
			e = &rt.routes[i]
			break
		}
	}
	if e == nil {
		return Errorf(http.StatusNotFound, TypeNotFound, "unknown_route", nil, "no route for %s", "this path")
	}
	ex.Route = e.route
	suffix := p[len(e.spec.Prefix):]
	if e.spec.API == APIMCP {
		return routeMCP(ex, suffix, next)
	}
	if e.spec.API == "http" {
		if !genericMethods[r.Method] {
			return methodNotAllowed(ex, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		}
		ex.Action = "http." + strings.ToLower(r.Method)
		return next(ex)
	}
	// OpenAI-compatible API: a closed set of endpoints.
	if strings.HasPrefix(suffix, "models/") {
		id := suffix[len("models/"):]
		if !validModelID(id) {
			return Errorf(http.StatusNotFound, TypeNotFound, "unknown_endpoint", nil, "unknown endpoint")
		}
		if r.Method != http.MethodGet {
			return methodNotAllowed(ex, http.MethodGet)
		}
		ex.Action, ex.Model = "models.get", id
		return next(ex)
	}
	for i := range openAIEndpoints {
		ep := &openAIEndpoints[i]
		if ep.suffix != suffix {
			continue
		}
		if r.Method != ep.method {
			return methodNotAllowed(ex, ep.method)
		}
		ex.Action = ep.action
		return next(ex)
	}
	return Errorf(http.StatusNotFound, TypeNotFound, "unknown_endpoint", nil, "unknown endpoint")
}

// APIMCP is the route kind of an MCP server behind warden: the Streamable
// HTTP transport (MCP 2025-06-18, "Transports") at exactly the route's
// prefix. The router names the HTTP-level action; the MCP stage
// (internal/mcp) refines a POST's action from the JSON-RPC method.
const APIMCP = "mcp"

// MCP actions the router sets. A POST starts as ActionMCPMessage and the
// MCP stage replaces it with the method's action (mcp.tools.call, ...).
const (
	ActionMCPMessage = "mcp.message"     // POST: one JSON-RPC message
	ActionMCPStream  = "mcp.stream"      // GET: the server-initiated SSE stream
	ActionMCPEnd     = "mcp.session.end" // DELETE: end the session
)

// routeMCP matches a request on an MCP route: the endpoint is the prefix
// itself (one MCP endpoint per route), with POST, GET or DELETE.
func routeMCP(ex *Exchange, suffix string, next func(*Exchange) error) error {
	if suffix != "" {
		return Errorf(http.StatusNotFound, TypeNotFound, "unknown_endpoint", nil, "unknown endpoint")
	}
	switch ex.Request.Method {
	case http.MethodPost:
		ex.Action = ActionMCPMessage
	case http.MethodGet:
		ex.Action = ActionMCPStream
	case http.MethodDelete:
		ex.Action = ActionMCPEnd
	default:
		return methodNotAllowed(ex, "DELETE, GET, POST")
	}
	return next(ex)
}

func methodNotAllowed(ex *Exchange, allow string) error {
	ex.Writer.Header().Set("Allow", allow)
	return Errorf(http.StatusMethodNotAllowed, TypeInvalidRequest, "method_not_allowed", nil,
		"method %s is not allowed here", sanitizeMethod(ex.Request.Method))
}

// sanitizeMethod keeps an attacker-chosen method from carrying arbitrary text
// into an error message.
func sanitizeMethod(m string) string {
	if len(m) > 16 {
		return "(method too long)"
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return "(invalid method)"
		}
	}
	return m
}

// canonicalPath reports whether p has no dot segments, no empty segments and
// no control characters. A trailing slash is allowed.
func canonicalPath(p string) bool {
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	trimmed := strings.TrimSuffix(p, "/")
	if trimmed == "" {
		return true
	}
	return path.Clean(trimmed) == trimmed
}

// validModelID accepts the characters model ids use in practice, one path segment.
func validModelID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@':
		default:
			return false
		}
	}
	return id != "." && id != ".."
}

var _ Stage = (*Router)(nil)
