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
	// Context configures where the request context policy sees comes from:
	// device/workload posture, geolocation, time zone.
	Context Context `yaml:"context"`
	// Identity configures the ways callers prove who they are beyond API keys:
	// mTLS with SPIFFE IDs, OIDC/JWT, warden-issued tokens and MFA step-up.
	Identity Identity `yaml:"identity"`
	// Guards configures DLP over request and response bodies (guards.go).
	Guards Guards `yaml:"guards"`
	// Limits configures rate limits and token budgets (limits.go).
	Limits Limits `yaml:"limits"`
	// Behavior configures behavioural baselines, anomalies and risk (behavior.go).
	Behavior Behavior `yaml:"behavior"`
	// Responses configures automated response: playbooks and sanctions (responses.go).
	Responses Responses `yaml:"responses"`
	// Models configures the model registry and its serving gate (models.go).
	Models Models `yaml:"models"`
	// MCP configures the MCP gateway of "api: mcp" routes (mcp.go).
	MCP MCP `yaml:"mcp"`
	// Runtime tunes the Go runtime: garbage collector target and memory
	// limit (runtime.go).
	Runtime Runtime `yaml:"runtime"`

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
	TLSModeSPIFFE     = "spiffe"      // warden's own X.509-SVID from the SPIRE Workload API (identity.mtls.workload_api_socket), rotating
)

// TLS configures a listener's TLS. With no fields set, the mode is
// self_signed; with cert_file or key_file set, it is files. Plaintext
// requires mode "off".
type TLS struct {
	Mode     string `yaml:"mode"`      // files | self_signed | off
	CertFile string `yaml:"cert_file"` // PEM chain; mode files only (required there)
	KeyFile  string `yaml:"key_file"`  // PEM key; mode files only (required there)
	// ClientAuth is whether the listener asks clients for a certificate:
	// none (default) | optional | require (the ClientAuth* constants).
	// optional and require need TLS (mode files or self_signed) and
	// identity.mtls. The certificate is verified by the mTLS authenticator,
	// not the TLS handshake, so that a bad one is a 401 with an audit record.
	ClientAuth string `yaml:"client_auth"`
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
	API     string `yaml:"api"`     // openai (default) | http | mcp
	Segment string `yaml:"segment"` // required: training, inference, deployment, ...; [a-z0-9][a-z0-9_-]{0,62}
	// StripPrefix removes Prefix from the path before it is appended to the upstream URL path.
	StripPrefix bool     `yaml:"strip_prefix"`
	Upstream    Upstream `yaml:"upstream"`
	// Model binds the route to a registry model: it forwards only while the model's active version is verified (models.go).
	Model *RouteModel `yaml:"model"`
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

// Identity configures authentication methods. API keys (keys.path) are always on.
type Identity struct {
	// MTLS verifies client certificates as SPIFFE X.509-SVIDs.
	MTLS *MTLS `yaml:"mtls"`
	// OIDC lists trusted OpenID Connect / JWT issuers.
	OIDC []OIDCProvider `yaml:"oidc"`
	// Tokens configures warden-issued short-lived tokens (RFC 8693 exchange).
	Tokens Tokens `yaml:"tokens"`
	// MFA configures TOTP step-up for human users.
	MFA *MFA `yaml:"mfa"`
	// RevocationsPath is the durable list of revoked token ids and subjects. Default "revocations.json".
	RevocationsPath string `yaml:"revocations_path"`
	// RevalidateInterval is how often a long-lived exchange (an SSE stream)
	// re-checks its credential; a revoked or expired one ends the stream.
	// Default 250ms; at most 1s.
	RevalidateInterval Duration `yaml:"revalidate_interval"`
}

// MTLS configures client-certificate authentication with SPIFFE IDs.
type MTLS struct {
	// TrustDomains are the SPIFFE trust domains whose X.509 bundles (PEM CA
	// certificates) verify client certificates. Bundle files are reloaded when they change.
	TrustDomains []TrustDomain `yaml:"trust_domains"`
	// WorkloadAPISocket, when set (e.g. "unix:///run/spire/agent.sock"),
	// takes warden's own SVID and the trust bundles from a SPIRE agent instead
	// of files; both rotate without a restart.
	WorkloadAPISocket string `yaml:"workload_api_socket"`
	// AllowNonSPIFFE accepts verified certificates without a SPIFFE ID (the
	// principal is then the certificate's subject common name). Default false.
	AllowNonSPIFFE bool `yaml:"allow_non_spiffe"`
	// Kinds maps SPIFFE ID path prefixes to principal kinds; the first match
	// wins, and the default kind is "service".
	Kinds []KindRule `yaml:"kinds"`
}

// TrustDomain is one SPIFFE trust domain and its bundle.
type TrustDomain struct {
	Name       string `yaml:"name"`        // e.g. "prod.example.org"
	BundleFile string `yaml:"bundle_file"` // PEM CA certificates of the trust domain
}

// KindRule maps a SPIFFE ID path prefix to a principal kind.
type KindRule struct {
	PathPrefix string `yaml:"path_prefix"` // e.g. "/agent/"
	Kind       string `yaml:"kind"`        // user | service | agent
}

// OIDCProvider is one trusted issuer of JWT access or ID tokens.
type OIDCProvider struct {
	Name   string `yaml:"name"`
	Issuer string `yaml:"issuer"` // must equal the token's iss exactly
	// Audiences: the token's aud must contain one of them. Required.
	Audiences []string `yaml:"audiences"`
	// JWKSURL or JWKSFile give the keys; with neither, they are discovered
	// from <issuer>/.well-known/openid-configuration.
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
	// CAFile verifies the issuer's HTTPS endpoints instead of the system roots.
	CAFile string `yaml:"ca_file"`
	// Algorithms allowed for this issuer. Default [RS256, ES256]. "none" and
	// HMAC algorithms are never accepted.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew tolerated on exp, nbf and iat. Default 30s, at most 5m.
	ClockSkew Duration `yaml:"clock_skew"`
	// MaxTokenBytes refuses larger tokens before parsing. Default 8192.
	MaxTokenBytes int `yaml:"max_token_bytes"`
	// MinRefreshInterval rate-limits JWKS refreshes triggered by an unknown kid. Default 30s.
	MinRefreshInterval Duration `yaml:"min_refresh_interval"`
	// Kind is the principal kind of this issuer's subjects. Default "user".
	Kind string `yaml:"kind"`
	// Claims maps token claims to principal attributes.
	Claims ClaimMapping `yaml:"claims"`
}

// ClaimMapping names the claims that carry principal attributes.
type ClaimMapping struct {
	Subject string `yaml:"subject"` // default "sub"
	Groups  string `yaml:"groups"`  // default "groups"
	Roles   string `yaml:"roles"`   // default "roles"
	Scopes  string `yaml:"scopes"`  // default "scope" (space-separated string or array)
}

// Tokens configures warden-issued tokens.
type Tokens struct {
	// Issuer is the iss of warden's tokens. Default "warden".
	Issuer string `yaml:"issuer"`
	// KeysPath holds the signing keys (private, mode 0600). Default "token-keys.json".
	KeysPath string `yaml:"keys_path"`
	// TTL is the default lifetime of an issued token. Default 5m.
	TTL Duration `yaml:"ttl"`
	// MaxTTL caps a requested lifetime. Default 1h.
	MaxTTL Duration `yaml:"max_ttl"`
	// RotateEvery is how often a new signing key is made; old keys keep
	// verifying until every token they signed has expired. Default 24h.
	RotateEvery Duration `yaml:"rotate_every"`
}

// MFA configures TOTP step-up.
type MFA struct {
	// StorePath holds TOTP enrollments, secrets encrypted at rest. Default "mfa.json".
	StorePath string `yaml:"store_path"`
	// EncryptionKey names the 32-byte key (hex or base64) that encrypts TOTP secrets at rest.
	EncryptionKey Credential `yaml:"encryption_key"`
	// Issuer is the label shown in authenticator apps. Default "warden".
	Issuer string `yaml:"issuer"`
	// ElevatedTTL is the lifetime of the elevated token a valid code yields. Default 10m.
	ElevatedTTL Duration `yaml:"elevated_ttl"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("10s").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
