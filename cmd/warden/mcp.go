package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"
)

func init() {
	register("mcp", "list and approve pinned MCP tool definitions (a client of warden's MCP pin API)", runMCP)
}

const mcpUsage = `usage:
  warden mcp pins    [--json] [connection flags]
  warden mcp approve [--digest SHA256] [--json] [connection flags] SERVER TOOL

connection flags:
  --server URL      warden's data-plane URL, e.g. https://warden.example:8443 (default $WARDEN_URL)
  --key-file FILE   file holding your API key or bearer token
                    (default $WARDEN_API_KEY, then $WARDEN_TOKEN)
  --ca-file FILE    PEM certificate(s) that verify warden's TLS certificate (default: system roots)
  --timeout 10s     how long to wait for warden

warden pins the definition (description and schemas) of every tool an MCP
server lists. A tool seen for the first time (mcp.pins.mode: approve) or a
tool whose definition changed is hidden from agents and cannot be called
until it is approved. 'pins' lists them; 'approve' approves the definition
awaiting approval of TOOL on SERVER (the route name). Without --digest it
approves the digest 'pins' shows as pending; give --digest to approve only
the definition you reviewed. Both go through warden's identity, policy
(actions mcp.pin.list and mcp.pin.approve, segment control) and audit.

Exit status: 0 done, 1 refused by warden or warden unreachable, 2 bad usage.
`

func runMCP(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mcpUsage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, mcpUsage)
		return exitOK
	case "pins":
		return mcpPins(args[1:], stdout, stderr)
	case "approve":
		return mcpApprove(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "warden mcp: unknown subcommand %q\n\n%s", args[0], mcpUsage)
		return exitUsage
	}
}

type mcpPin struct {
	Server     string    `json:"server"`
	Tool       string    `json:"tool"`
	Status     string    `json:"status"`
	Digest     string    `json:"digest"`
	Pending    string    `json:"pending"`
	FirstSeen  time.Time `json:"first_seen"`
	ChangedAt  time.Time `json:"changed_at"`
	ApprovedAt time.Time `json:"approved_at"`
	ApprovedBy string    `json:"approved_by"`
}

func mcpFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("warden mcp "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warden mcp %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func fetchPins(c *grantClient) ([]mcpPin, json.RawMessage, error) {
	raw, err := c.do(http.MethodGet, "/v1/warden/mcp/pins", nil, nil)
	if err != nil {
		return nil, nil, err
	}
	var body struct {
		Pins []mcpPin `json:"pins"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, nil, fmt.Errorf("warden's answer: %w", err)
	}
	return body.Pins, raw, nil
}

func short(d string) string {
	if len(d) > 16 {
		return d[:16]
	}
	return d
}

func mcpPins(args []string, stdout, stderr io.Writer) int {
	fs := mcpFlagSet("pins", "[--json] [connection flags]", stderr)
	var conn grantConn
	conn.register(fs)
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return exitUsage
	}
	c, code := conn.client("(mcp pins)", stderr)
	if c == nil {
		return code
	}
	pins, raw, err := fetchPins(c)
	if err != nil {
		fmt.Fprintf(stderr, "warden mcp pins: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("(mcp pins)", raw, stdout, stderr)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tTOOL\tSTATUS\tAPPROVED\tPENDING\tAPPROVED BY")
	for _, p := range pins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", grantSafe(p.Server), grantSafe(p.Tool), grantSafe(p.Status),
			short(p.Digest), short(p.Pending), grantSafe(p.ApprovedBy))
	}
	if err := tw.Flush(); err != nil {
		return exitFail
	}
	return exitOK
}

func mcpApprove(args []string, stdout, stderr io.Writer) int {
	fs := mcpFlagSet("approve", "[--digest SHA256] [--json] [connection flags] SERVER TOOL", stderr)
	var conn grantConn
	conn.register(fs)
	dig := fs.String("digest", "", "approve only this definition digest (default: the one awaiting approval)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() != 2 {
		fmt.Fprint(stderr, "warden mcp approve: SERVER and TOOL are required\n")
		return exitUsage
	}
	server, tool := fs.Arg(0), fs.Arg(1)
	c, code := conn.client("(mcp approve)", stderr)
	if c == nil {
		return code
	}
	d := *dig
	if d == "" {
		pins, _, err := fetchPins(c)
		if err != nil {
			fmt.Fprintf(stderr, "warden mcp approve: %v\n", err)
			return exitFail
		}
		for _, p := range pins {
			if p.Server == server && p.Tool == tool {
				d = p.Pending
			}
		}
		if d == "" {
			fmt.Fprintf(stderr, "warden mcp approve: %s/%s has no definition awaiting approval\n", grantSafe(server), grantSafe(tool))
			return exitFail
		}
	}
	raw, err := c.do(http.MethodPost, "/v1/warden/mcp/approve", nil, map[string]string{"server": server, "tool": tool, "digest": d})
	if err != nil {
		fmt.Fprintf(stderr, "warden mcp approve: %v\n", err)
		return exitFail
	}
	if conn.asJSON {
		return grantPrintJSON("(mcp approve)", raw, stdout, stderr)
	}
	fmt.Fprintf(stdout, "approved %s/%s definition %s\n", grantSafe(server), grantSafe(tool), d)
	return exitOK
}
