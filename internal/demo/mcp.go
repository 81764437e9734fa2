package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The demo's MCP server: two tools, one the agent is granted and one it is not.
const (
	demoAllowedTool   = "search_docs"
	demoForbiddenTool = "delete_repo"
)

type searchIn struct {
	Query string `json:"query"`
}

type repoIn struct {
	Repo string `json:"repo"`
}

// searchResult is search_docs' deterministic answer.
func searchResult(q string) string {
	return fmt.Sprintf("1 result for %q: docs/mcp.md — warden authorizes every tool call by policy.", q)
}

// toolServer is the demo's in-process MCP server (the official Go SDK over
// Streamable HTTP). It counts the tools it ran, so the tour can show that
// a refused call never reached it.
type toolServer struct {
	srv     *http.Server
	addr    string
	deletes atomic.Int32
}

func startToolServer() (*toolServer, error) {
	ts := &toolServer{}
	s := mcp.NewServer(&mcp.Implementation{Name: "demo-tools", Version: "1.0.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: demoAllowedTool, Description: "Search the documentation."},
		func(_ context.Context, _ *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: searchResult(in.Query)}}}, nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: demoForbiddenTool, Description: "Delete a repository."},
		func(_ context.Context, _ *mcp.CallToolRequest, _ repoIn) (*mcp.CallToolResult, any, error) {
			ts.deletes.Add(1)
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "deleted"}}}, nil, nil
		})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: mcp server: %w", err)
	}
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s },
		&mcp.StreamableHTTPOptions{DisableLocalhostProtection: true})
	ts.srv = &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ts.addr = ln.Addr().String()
	go func() { _ = ts.srv.Serve(ln) }()
	return ts, nil
}

func (ts *toolServer) Close() { _ = ts.srv.Close() }

// mcpPolicy is added to the quickstart policy for the tour: an agent calls
// a tool only when one of its scopes names it ("tool:<name>"); the MCP
// protocol itself (initialize, tools/list, …) goes by the quickstart's
// "segment:action" scopes.
const mcpPolicy = `package warden.authz

allow if {
	input.resource.api == "mcp"
	input.action == "mcp.tools.call"
	sprintf("tool:%s", [input.resource.tool]) in input.principal.scopes
}
`

// agentScopes are the demo agent's: the MCP protocol on segment "tools"
// and one tool.
var agentScopes = []string{
	"tools:mcp.initialize", "tools:mcp.notification", "tools:mcp.ping", "tools:mcp.tools.list",
	"tools:mcp.session.end", "tool:" + demoAllowedTool,
}

// countingTransport authenticates the agent's MCP client, counts its HTTP
// requests (each is one MCP message, one audit record) and remembers the
// last status.
type countingTransport struct {
	t    *tour
	key  string
	next http.RoundTripper

	mu   sync.Mutex
	last int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.key)
	c.mu.Lock()
	c.t.requests++
	c.mu.Unlock()
	res, err := c.next.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.last = res.StatusCode
		c.mu.Unlock()
	}
	return res, err
}

func (c *countingTransport) lastStatus() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// mcpSteps are the tour's MCP steps: an agent connects through warden with
// the official MCP client, sees only its tool, calls it, and is refused
// the other.
func (t *tour) mcpSteps(key string, ts *toolServer) {
	ctx := context.Background()
	ct := &countingTransport{t: t, key: key, next: t.client.Transport}
	var cs *mcp.ClientSession
	t.step("MCP: an agent's tools/list shows only the tools it may call", func() error {
		c := mcp.NewClient(&mcp.Implementation{Name: "demo-agent", Version: "1.0.0"}, nil)
		var err error
		cs, err = c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: t.base + "/mcp/",
			HTTPClient: &http.Client{Transport: ct, Timeout: 10 * time.Second}, MaxRetries: -1, DisableStandaloneSSE: true}, nil)
		if err != nil {
			return fmt.Errorf("connect through warden: %w", err)
		}
		res, err := cs.ListTools(ctx, &mcp.ListToolsParams{})
		if err != nil {
			return err
		}
		var names []string
		for _, tl := range res.Tools {
			names = append(names, tl.Name)
		}
		if strings.Join(names, ",") != demoAllowedTool {
			return fmt.Errorf("tools/list = %v, want [%s]", names, demoAllowedTool)
		}
		t.detail("the server has %s and %s; the agent sees %v", demoAllowedTool, demoForbiddenTool, names)
		return nil
	})
	t.step("MCP: a call of the granted tool is forwarded (tools/call "+demoAllowedTool+")", func() error {
		if cs == nil {
			return errors.New("no session")
		}
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: demoAllowedTool, Arguments: map[string]any{"query": "tool pinning"}})
		if err != nil {
			return err
		}
		want := searchResult("tool pinning")
		if res.IsError || len(res.Content) != 1 {
			return fmt.Errorf("unexpected result %+v", res)
		}
		tc, ok := res.Content[0].(*mcp.TextContent)
		if !ok || tc.Text != want {
			return fmt.Errorf("unexpected result %+v", res.Content[0])
		}
		t.detail("%d, the tool said: %q", ct.lastStatus(), want)
		return nil
	})
	t.step("MCP: a call of a tool the agent was not granted is refused (tools/call "+demoForbiddenTool+", 403)", func() error {
		if cs == nil {
			return errors.New("no session")
		}
		defer func() { _ = cs.Close() }() // DELETE: ends the session (one more audited message)
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: demoForbiddenTool, Arguments: map[string]any{"repo": "warden"}})
		if err == nil {
			return errors.New("the call was allowed")
		}
		if st := ct.lastStatus(); st != http.StatusForbidden || !strings.Contains(err.Error(), "not permitted by policy") {
			return fmt.Errorf("status %d: %v", st, err)
		}
		if n := ts.deletes.Load(); n != 0 {
			return fmt.Errorf("the server ran %s %d times", demoForbiddenTool, n)
		}
		t.detail("403, JSON-RPC error -32003 %q; the server never saw the call", "the request is not permitted by policy")
		return nil
	})
}
