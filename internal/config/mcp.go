package config

import "fmt"

// APIMCP is the route kind of an MCP server: the Streamable HTTP transport
// at exactly the route's prefix (docs/mcp.md).
const APIMCP = "mcp"

// MCP configures the MCP gateway of "api: mcp" routes (docs/mcp.md).
type MCP struct {
	// Pins configures tool pinning against rug pulls.
	Pins MCPPins `yaml:"pins"`
	// MaxResponseBytes bounds one message from an MCP server (a JSON body
	// or one SSE event). Default 4 MiB. Client messages are bounded by the
	// listener's max_body_bytes.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// MaxSessions bounds the open sessions warden tracks. Default 65536.
	MaxSessions int `yaml:"max_sessions"`
	// SessionIdle is how long an unused session stays bound. Default 1h.
	SessionIdle Duration `yaml:"session_idle"`
}

// MCPPins configures tool pinning.
type MCPPins struct {
	// Mode is what happens to a tool seen for the first time: "approve"
	// (default: it stays hidden and uncallable until `warden mcp approve`),
	// "tofu" (its first definition is approved) or "off" (no pinning). In
	// every mode but off a changed definition is refused until approved.
	Mode string `yaml:"mode"`
	// Path is the pin store, a JSON file warden writes. Default "mcp-pins.json".
	Path string `yaml:"path"`
}

// Defaults and limits of mcp.
const (
	DefaultMCPPinsPath         = "mcp-pins.json"
	DefaultMCPMaxResponseBytes = 4 << 20
	DefaultMCPMaxSessions      = 1 << 16
	DefaultMCPSessionIdle      = Duration(3600e9)
)

func (c *Config) applyMCPDefaults() {
	m := &c.MCP
	if m.Pins.Mode == "" {
		m.Pins.Mode = "approve"
	}
	if m.Pins.Path == "" {
		m.Pins.Path = DefaultMCPPinsPath
	}
	if m.MaxResponseBytes == 0 {
		m.MaxResponseBytes = DefaultMCPMaxResponseBytes
	}
	if m.MaxSessions == 0 {
		m.MaxSessions = DefaultMCPMaxSessions
	}
	if m.SessionIdle == 0 {
		m.SessionIdle = DefaultMCPSessionIdle
	}
}

func (c *Config) validateMCP(v *validator) {
	m := &c.MCP
	switch m.Pins.Mode {
	case "approve", "tofu", "off":
	default:
		v.add("mcp.pins.mode", fmt.Sprintf("unknown mode %q (approve, tofu, off)", m.Pins.Mode))
	}
	if m.MaxResponseBytes < 1<<10 || m.MaxResponseBytes > 64<<20 {
		v.add("mcp.max_response_bytes", "must be between 1024 and 67108864")
	}
	if m.MaxSessions < 1 || m.MaxSessions > 1<<22 {
		v.add("mcp.max_sessions", "must be between 1 and 4194304")
	}
	v.positive("mcp.session_idle", m.SessionIdle)
	for i, r := range c.Routes {
		if r.API == APIMCP && r.Model != nil {
			v.add(fmt.Sprintf("routes[%d].model", i), "an mcp route cannot be bound to a model")
		}
	}
}

// MCPRoutes reports whether any route is an MCP route.
func (c *Config) MCPRoutes() bool {
	for _, r := range c.Routes {
		if r.API == APIMCP {
			return true
		}
	}
	return false
}
