// Package config defines warden's one YAML configuration file and loads it
// strictly: unknown fields are errors, and every validation error names the
// field path and the line it is on.
package config

import "time"

// Config is the whole configuration file.
type Config struct {
	// Listeners are the data-plane listeners clients connect to. TLS is on by default.
	Listeners []Listener `yaml:"listeners"`
	// Admin is the operations listener: /healthz, /readyz, /metrics.
	Admin Admin `yaml:"admin"`
	// Routes map path prefixes to upstream AI services.
	Routes []Route `yaml:"routes"`
	// Keys is the API key store.
	Keys Keys `yaml:"keys"`
	// Policy is the directory of .rego files.
	Policy Policy `yaml:"policy"`
	// Audit is the audit log.
	Audit Audit `yaml:"audit"`

	// Dir is the directory of the config file; relative paths are resolved
	// against it at load. Not read from YAML.
	Dir string `yaml:"-"`
}

// Listener is one data-plane listener.
type Listener struct {
	// Name identifies the listener in logs and metrics; default "listener<N>"
	// (N = its index). Unique; [a-z0-9][a-z0-9_.-]{0,62}.
	Name string `yaml:"name"`
	// Address is host:port, e.g. "127.0.0.1:8443"; an empty host listens on
	// every interface, port 0 picks a free port. Required; must not clash
	// with another listener or the admin address.
	Address string `yaml:"address"`
	TLS     TLS    `yaml:"tls"`

	// ReadHeaderTimeout bounds how long a client may take to send headers (slow clients). Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading the whole request, body included. Default 60s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// IdleTimeout bounds keep-alive idle time. Default 120s.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds request headers. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds request bodies. Default 4 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
}

// TLS modes.
const (
	TLSModeFiles      = "files"       // cert_file + key_file
	TLSModeSelfSigned = "self_signed" // generated at start, with a loud warning
	TLSModeOff        = "off"         // plaintext, with a loud warning: loopback, tests, or behind another TLS terminator
)

// TLS configures a listener's TLS. With no fields set, the mode is
// self_signed; with cert_file or key_file set, it is files. Plaintext
// requires mode "off".
type TLS struct {
	Mode     string `yaml:"mode"`      // files | self_signed | off
	CertFile string `yaml:"cert_file"` // PEM chain; mode files only (required there)
	KeyFile  string `yaml:"key_file"`  // PEM key; mode files only (required there)
}

// Admin is the operations listener. It is plaintext and should bind to loopback
// or a private interface.
type Admin struct {
	Address string `yaml:"address"` // default "127.0.0.1:9090"; "off" disables it
}

// Route API kinds.
const (
	APIOpenAI = "openai" // OpenAI-compatible endpoints only, JSON bodies checked
	APIHTTP   = "http"   // any path under the prefix, generic AI service
)

// Route maps a path prefix to an upstream.
type Route struct {
	Name    string `yaml:"name"`    // required, unique; [a-z0-9][a-z0-9_.-]{0,62}
	Prefix  string `yaml:"prefix"`  // path prefix, must start and end with "/"; unique
	API     string `yaml:"api"`     // openai (default) | http
	Segment string `yaml:"segment"` // required: training, inference, deployment, ...; [a-z0-9][a-z0-9_-]{0,62}
	// StripPrefix removes Prefix from the path before it is appended to the upstream URL path.
	StripPrefix bool     `yaml:"strip_prefix"`
	Upstream    Upstream `yaml:"upstream"`
}

// Upstream is where a route forwards to and how warden proves itself there.
type Upstream struct {
	URL string `yaml:"url"` // http or https base URL, no userinfo, no query, no fragment
	// Credential is what warden presents upstream. The client's own credentials never travel upstream.
	Credential *Credential `yaml:"credential"`
	// Timeout bounds the wait for upstream response headers (504 after it). Default 60s.
	Timeout Duration `yaml:"timeout"`
	// DialTimeout bounds connecting to the upstream. Default 5s.
	DialTimeout Duration `yaml:"dial_timeout"`
	// CAFile is a PEM bundle to verify an https upstream with, instead of the
	// system roots. Only for https upstreams.
	CAFile string `yaml:"ca_file"`
}

// Credential is a secret warden injects into upstream requests as
// "<Header>: <Scheme> <secret>" (or "<Header>: <secret>" without a scheme).
// Exactly one of Env and File names where the secret comes from; it is never
// in the config. Use Secret to read it.
type Credential struct {
	Header string `yaml:"header"` // default "Authorization"; an HTTP token, not hop-by-hop
	Scheme string `yaml:"scheme"` // default "Bearer" for Authorization, "" otherwise
	Env    string `yaml:"env"`    // environment variable holding the secret
	File   string `yaml:"file"`   // file holding the secret (trailing newline trimmed)
}

// Keys is the API key store.
type Keys struct {
	Path string `yaml:"path"` // JSON file of hashed keys; default "keys.json"
}

// Policy is the Rego policy set.
type Policy struct {
	Dir string `yaml:"dir"` // directory of .rego files; required
}

// Audit is the audit log.
type Audit struct {
	Path string `yaml:"path"` // append-only log file; default "audit.log"
}

// Duration is a time.Duration written in YAML as a Go duration string ("10s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
