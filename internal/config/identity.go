package config

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Listener client certificate modes (tls.client_auth).
const (
	ClientAuthNone     = "none"     // no client certificate is asked for
	ClientAuthOptional = "optional" // asked for; a client without one may prove itself otherwise
	ClientAuthRequire  = "require"  // a client without a certificate is refused
)

// Principal kinds, for identity.mtls.kinds[].kind and identity.oidc[].kind.
const (
	KindUser    = "user"
	KindService = "service"
	KindAgent   = "agent"
)

// Identity defaults.
const (
	DefaultClientAuth         = ClientAuthNone
	DefaultRevocationsPath    = "revocations.json"
	DefaultRevalidateInterval = Duration(250 * time.Millisecond)

	DefaultTokenIssuer      = "warden"
	DefaultTokenKeysPath    = "token-keys.json"
	DefaultTokenTTL         = Duration(5 * time.Minute)
	DefaultTokenMaxTTL      = Duration(time.Hour)
	DefaultTokenRotateEvery = Duration(24 * time.Hour)

	DefaultOIDCClockSkew          = Duration(30 * time.Second)
	DefaultOIDCMaxTokenBytes      = 8192
	DefaultOIDCMinRefreshInterval = Duration(30 * time.Second)
	DefaultOIDCKind               = KindUser
	DefaultClaimSubject           = "sub"
	DefaultClaimGroups            = "groups"
	DefaultClaimRoles             = "roles"
	DefaultClaimScopes            = "scope"

	// DefaultMTLSKind is the kind of a SPIFFE ID that no kinds rule matches.
	DefaultMTLSKind = KindService

	DefaultMFAStorePath   = "mfa.json"
	DefaultMFAIssuer      = "warden"
	DefaultMFAElevatedTTL = Duration(10 * time.Minute)
)

// Identity limits.
const (
	MinRevalidateInterval      = Duration(10 * time.Millisecond)
	MaxRevalidateInterval      = Duration(time.Second) // revoked streams are cut within 1s
	MaxOIDCClockSkew           = Duration(5 * time.Minute)
	MinOIDCMaxTokenBytes       = 512
	MaxOIDCMaxTokenBytes       = 64 << 10
	MinOIDCMinRefreshInterval  = Duration(time.Second)
	MaxTokenMaxTTL             = Duration(24 * time.Hour)
	MinTokenRotateEvery        = Duration(time.Minute)
	MinMFAElevatedTTL          = Duration(time.Minute)
	MaxMFAElevatedTTL          = Duration(24 * time.Hour)
	MFAEncryptionKeyBytes      = 32
	maxJWKSBytes               = 1 << 20
	maxTrustDomainNameBytes    = 255 // SPIFFE-ID §2.1
	maxClaimNameBytes          = 256
	maxTokenIssuerBytes        = 256
	maxMFAIssuerBytes          = 64
	maxWorkloadSocketPathBytes = 104 // sun_path on the BSDs; Linux allows 108
)

// DefaultOIDCAlgorithms is the default of identity.oidc[].algorithms.
// Read it only; applyDefaults gives each provider its own copy.
var DefaultOIDCAlgorithms = []string{"RS256", "ES256"}

// oidcAlgorithms are the JWS algorithms (RFC 7518 §3.1, RFC 8037) an OIDC
// provider may be configured with: asymmetric signatures only.
var oidcAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

func (c *Config) applyIdentityDefaults() {
	for i := range c.Listeners {
		if c.Listeners[i].TLS.ClientAuth == "" {
			c.Listeners[i].TLS.ClientAuth = DefaultClientAuth
		}
	}
	id := &c.Identity
	if id.RevocationsPath == "" {
		id.RevocationsPath = DefaultRevocationsPath
	}
	if id.RevalidateInterval == 0 {
		id.RevalidateInterval = DefaultRevalidateInterval
	}
	t := &id.Tokens
	if t.Issuer == "" {
		t.Issuer = DefaultTokenIssuer
	}
	if t.KeysPath == "" {
		t.KeysPath = DefaultTokenKeysPath
	}
	if t.TTL == 0 {
		t.TTL = DefaultTokenTTL
	}
	if t.MaxTTL == 0 {
		t.MaxTTL = DefaultTokenMaxTTL
	}
	if t.RotateEvery == 0 {
		t.RotateEvery = DefaultTokenRotateEvery
	}
	for i := range id.OIDC {
		o := &id.OIDC[i]
		if o.Name == "" {
			o.Name = issuerName(o.Issuer)
		}
		if len(o.Algorithms) == 0 {
			o.Algorithms = slices.Clone(DefaultOIDCAlgorithms)
		}
		if o.ClockSkew == 0 {
			o.ClockSkew = DefaultOIDCClockSkew
		}
		if o.MaxTokenBytes == 0 {
			o.MaxTokenBytes = DefaultOIDCMaxTokenBytes
		}
		if o.MinRefreshInterval == 0 {
			o.MinRefreshInterval = DefaultOIDCMinRefreshInterval
		}
		if o.Kind == "" {
			o.Kind = DefaultOIDCKind
		}
		cl := &o.Claims
		if cl.Subject == "" {
			cl.Subject = DefaultClaimSubject
		}
		if cl.Groups == "" {
			cl.Groups = DefaultClaimGroups
		}
		if cl.Roles == "" {
			cl.Roles = DefaultClaimRoles
		}
		if cl.Scopes == "" {
			cl.Scopes = DefaultClaimScopes
		}
	}
	if m := id.MFA; m != nil {
		if m.StorePath == "" {
			m.StorePath = DefaultMFAStorePath
		}
		if m.Issuer == "" {
			m.Issuer = DefaultMFAIssuer
		}
		if m.ElevatedTTL == 0 {
			m.ElevatedTTL = DefaultMFAElevatedTTL
		}
	}
}

// issuerName is the default name of an OIDC provider: its issuer's host in
// lower case, or "" when that is not a valid name (validation then asks for
// one).
func issuerName(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil {
		return ""
	}
	name := strings.ToLower(u.Hostname())
	if !routeNameRE.MatchString(name) {
		return ""
	}
	return name
}

func (c *Config) resolveIdentityPaths(abs func(string) string) {
	id := &c.Identity
	if id.MTLS != nil {
		for i := range id.MTLS.TrustDomains {
			id.MTLS.TrustDomains[i].BundleFile = abs(id.MTLS.TrustDomains[i].BundleFile)
		}
	}
	for i := range id.OIDC {
		id.OIDC[i].JWKSFile = abs(id.OIDC[i].JWKSFile)
		id.OIDC[i].CAFile = abs(id.OIDC[i].CAFile)
	}
	id.Tokens.KeysPath = abs(id.Tokens.KeysPath)
	if id.MFA != nil {
		id.MFA.StorePath = abs(id.MFA.StorePath)
		id.MFA.EncryptionKey.File = abs(id.MFA.EncryptionKey.File)
	}
	id.RevocationsPath = abs(id.RevocationsPath)
}

// mtlsConfigured reports whether identity.mtls can verify client certificates.
func (c *Config) mtlsConfigured() bool {
	m := c.Identity.MTLS
	return m != nil && (len(m.TrustDomains) > 0 || m.WorkloadAPISocket != "")
}

// validateIdentity checks tls.client_auth of every listener and the
// identity section; like validate, it only looks at the document.
func (c *Config) validateIdentity(v *validator) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d].tls.client_auth", i)
		switch l.TLS.ClientAuth {
		case ClientAuthNone:
		case ClientAuthOptional, ClientAuthRequire:
			if l.TLS.Mode == TLSModeOff {
				v.add(p, fmt.Sprintf("%s needs TLS: client certificates are sent in the TLS handshake, and tls.mode is off", l.TLS.ClientAuth))
			}
			if !c.mtlsConfigured() {
				v.add(p, fmt.Sprintf("%s needs identity.mtls (trust_domains or workload_api_socket) to verify client certificates", l.TLS.ClientAuth))
			}
		default:
			v.add(p, fmt.Sprintf("unknown client_auth %q (none, optional, require)", l.TLS.ClientAuth))
		}
	}

	id := &c.Identity
	if id.MTLS != nil {
		validateMTLS(v, "identity.mtls", id.MTLS)
	}
	names := map[string]int{}
	issuers := map[string]int{}
	for i := range id.OIDC {
		validateOIDC(v, fmt.Sprintf("identity.oidc[%d]", i), i, &id.OIDC[i], names, issuers)
	}
	c.validateTokens(v, "identity.tokens", &id.Tokens)
	if id.MFA != nil {
		validateMFA(v, "identity.mfa", id.MFA)
	}
	if id.RevocationsPath == "" {
		v.add("identity.revocations_path", "required")
	}
	if d := id.RevalidateInterval; d < MinRevalidateInterval || d > MaxRevalidateInterval {
		v.add("identity.revalidate_interval", fmt.Sprintf("%s: must be between %s and %s (revoked streams must end within 1s)",
			d.D(), MinRevalidateInterval.D(), MaxRevalidateInterval.D()))
	}

	// Data files warden writes must be distinct. keys.path and audit.path
	// are compared in validate.
	files := c.dataFiles()
	for j := 2; j < len(files); j++ {
		f := files[j]
		if f.path == "" {
			continue
		}
		for _, o := range files[:j] {
			if o.path != "" && filepath.Clean(o.path) == filepath.Clean(f.path) {
				v.add(f.field, fmt.Sprintf("must not be the same file as %s", o.field))
				break
			}
		}
	}
}

type dataFile struct{ field, path string }

// dataFiles lists the files warden writes, which must all differ; keys.path
// and audit.path come first.
func (c *Config) dataFiles() []dataFile {
	fs := []dataFile{
		{"keys.path", c.Keys.Path},
		{"audit.path", c.Audit.Path},
		{"identity.tokens.keys_path", c.Identity.Tokens.KeysPath},
		{"identity.revocations_path", c.Identity.RevocationsPath},
	}
	if c.Identity.MFA != nil {
		fs = append(fs, dataFile{"identity.mfa.store_path", c.Identity.MFA.StorePath})
	}
	return fs
}

func validateMTLS(v *validator, p string, m *MTLS) {
	if len(m.TrustDomains) == 0 && m.WorkloadAPISocket == "" {
		v.add(p, "at least one of trust_domains or workload_api_socket is required")
	}
	seen := map[string]int{}
	for i := range m.TrustDomains {
		td := &m.TrustDomains[i]
		tp := fmt.Sprintf("%s.trust_domains[%d]", p, i)
		if err := checkTrustDomain(td.Name); err != nil {
			v.add(tp+".name", err.Error())
		} else if j, dup := seen[td.Name]; dup {
			v.add(tp+".name", fmt.Sprintf("duplicate trust domain %q (also %s.trust_domains[%d])", td.Name, p, j))
		} else {
			seen[td.Name] = i
		}
		if td.BundleFile == "" {
			v.add(tp+".bundle_file", "required: a PEM file of the trust domain's CA certificates")
		}
	}
	if s := m.WorkloadAPISocket; s != "" {
		if err := checkWorkloadAPISocket(s); err != nil {
			v.add(p+".workload_api_socket", fmt.Sprintf("%q: %v", s, err))
		}
	}
	prefixes := map[string]int{}
	for i := range m.Kinds {
		k := &m.Kinds[i]
		kp := fmt.Sprintf("%s.kinds[%d]", p, i)
		switch {
		case k.PathPrefix == "":
			v.add(kp+".path_prefix", "required: a SPIFFE ID path prefix such as \"/agent/\"")
		case !strings.HasPrefix(k.PathPrefix, "/"):
			v.add(kp+".path_prefix", fmt.Sprintf("%q: must start with \"/\" (the path of a SPIFFE ID, without spiffe://<trust domain>)", k.PathPrefix))
		default:
			if j, dup := prefixes[k.PathPrefix]; dup {
				v.add(kp+".path_prefix", fmt.Sprintf("duplicate path_prefix %q (also %s.kinds[%d]): the first match wins, so this rule never applies", k.PathPrefix, p, j))
			} else {
				prefixes[k.PathPrefix] = i
			}
		}
		if k.Kind == "" {
			v.add(kp+".kind", "required: user, service or agent")
		} else {
			checkKind(v, kp+".kind", k.Kind)
		}
	}
}

// checkTrustDomain checks a SPIFFE trust domain name with the rule of
// spiffeid.TrustDomainFromString, but refuses the spiffe:// form that it
// also accepts: the config names trust domains, not IDs.
func checkTrustDomain(name string) error {
	switch {
	case name == "":
		return errors.New("required: a SPIFFE trust domain name such as \"prod.example.org\"")
	case strings.Contains(name, ":/"):
		return fmt.Errorf("%q: write the trust domain name without a scheme or path, e.g. \"prod.example.org\", not \"spiffe://prod.example.org\"", name)
	case len(name) > maxTrustDomainNameBytes:
		return fmt.Errorf("must be at most %d characters", maxTrustDomainNameBytes)
	}
	if _, err := spiffeid.TrustDomainFromString(name); err != nil {
		msg := fmt.Sprintf("%q: not a SPIFFE trust domain name: only lower case letters, digits, '.', '-' and '_' are allowed", name)
		if lower := strings.ToLower(name); lower != name {
			if _, err := spiffeid.TrustDomainFromString(lower); err == nil {
				msg += fmt.Sprintf(" (write %q)", lower)
			}
		}
		return errors.New(msg)
	}
	return nil
}

// checkWorkloadAPISocket checks a SPIFFE Workload API address:
// unix:///absolute/path or tcp://IP:port, as go-spiffe's workloadapi accepts
// them (it does not resolve host names).
func checkWorkloadAPISocket(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL: use \"unix:///absolute/path\" or \"tcp://IP:port\"")
	}
	switch {
	case u.Scheme != "unix" && u.Scheme != "tcp" || u.Opaque != "":
		return errors.New("must be \"unix:///absolute/path\" or \"tcp://IP:port\"")
	case u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must be a plain %s:// address, with no user info, query or fragment", u.Scheme)
	}
	if u.Scheme == "unix" {
		switch {
		case u.Host != "":
			return errors.New("must be \"unix://\" followed by an absolute path, e.g. \"unix:///run/spire/agent.sock\" (three slashes)")
		case !strings.HasPrefix(u.Path, "/") || u.Path == "/" || strings.HasSuffix(u.Path, "/"):
			return errors.New("must name a socket by its absolute path, e.g. \"unix:///run/spire/agent.sock\"")
		case len(u.Path) > maxWorkloadSocketPathBytes:
			return fmt.Errorf("socket path must be at most %d bytes", maxWorkloadSocketPathBytes)
		}
		return nil
	}
	if u.Path != "" {
		return errors.New("a tcp address has no path: \"tcp://IP:port\"")
	}
	if _, err := netip.ParseAddr(u.Hostname()); err != nil {
		return errors.New("host must be an IP address (the Workload API client does not resolve names): \"tcp://IP:port\"")
	}
	if n, err := strconv.Atoi(u.Port()); err != nil || n < 1 || n > 65535 {
		return errors.New("needs a port between 1 and 65535: \"tcp://IP:port\"")
	}
	return nil
}

func checkKind(v *validator, field, kind string) {
	switch kind {
	case KindUser, KindService, KindAgent:
	default:
		v.add(field, fmt.Sprintf("unknown kind %q (user, service, agent)", kind))
	}
}

func validateOIDC(v *validator, p string, i int, o *OIDCProvider, names, issuers map[string]int) {
	issuerOK := false
	if o.Issuer == "" {
		v.add(p+".issuer", "required: the issuer URL exactly as in the tokens' iss claim, e.g. \"https://accounts.example.com\"")
	} else if err := checkIdentityURL(o.Issuer); err != nil {
		v.add(p+".issuer", err.Error())
	} else {
		issuerOK = true
		if j, dup := issuers[o.Issuer]; dup {
			v.add(p+".issuer", fmt.Sprintf("same issuer as identity.oidc[%d]: tokens are matched to a provider by iss, so each issuer is listed once", j))
		} else {
			issuers[o.Issuer] = i
		}
	}
	switch {
	case o.Name == "":
		// The default (the issuer's host) was not a valid name.
		if issuerOK {
			v.add(p+".name", "required: the issuer's host is not a valid name; "+nameRule)
		} else if o.Issuer != "" {
			v.add(p+".name", "required: it defaults to the issuer's host, and the issuer is not valid")
		} else {
			v.add(p+".name", "required")
		}
	case !routeNameRE.MatchString(o.Name):
		v.add(p+".name", fmt.Sprintf("%q: %s", o.Name, nameRule))
	default:
		if j, dup := names[o.Name]; dup {
			v.add(p+".name", fmt.Sprintf("duplicate provider name %q (also identity.oidc[%d]); names default to the issuer's host, so set name on providers that share a host", o.Name, j))
		} else {
			names[o.Name] = i
		}
	}

	if len(o.Audiences) == 0 {
		v.add(p+".audiences", "at least one audience is required: a token's aud must name warden (e.g. its client id)")
	}
	for j, a := range o.Audiences {
		if strings.TrimSpace(a) == "" {
			v.add(fmt.Sprintf("%s.audiences[%d]", p, j), "must not be empty")
		}
	}

	if o.JWKSURL != "" {
		if err := checkIdentityURL(o.JWKSURL); err != nil {
			v.add(p+".jwks_url", err.Error())
		}
	}
	if o.JWKSURL != "" && o.JWKSFile != "" {
		v.add(p+".jwks_file", "jwks_url and jwks_file are mutually exclusive: set one, or neither to discover the keys from the issuer")
	} else if o.JWKSFile != "" && o.CAFile != "" {
		v.add(p+".ca_file", "only used when keys are fetched over https (not with jwks_file)")
	}

	seen := map[string]bool{}
	for j, alg := range o.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, j)
		switch {
		case strings.EqualFold(alg, "none"):
			v.add(ap, fmt.Sprintf("never accepted: %q means an unsigned token", alg))
		case len(alg) > 2 && strings.EqualFold(alg[:2], "HS"):
			v.add(ap, fmt.Sprintf("never accepted: %q is an HMAC algorithm; a shared secret lets anyone who verifies tokens also forge them", alg))
		case !slices.Contains(oidcAlgorithms, alg):
			v.add(ap, fmt.Sprintf("unknown algorithm %q (%s; names are case-sensitive)", alg, strings.Join(oidcAlgorithms, ", ")))
		case seen[alg]:
			v.add(ap, fmt.Sprintf("%q is listed twice", alg))
		}
		seen[alg] = true
	}

	if d := o.ClockSkew; d < 0 || d > MaxOIDCClockSkew {
		v.add(p+".clock_skew", fmt.Sprintf("%s: must be between 0s and %s", d.D(), MaxOIDCClockSkew.D()))
	}
	if n := o.MaxTokenBytes; n < MinOIDCMaxTokenBytes || n > MaxOIDCMaxTokenBytes {
		v.add(p+".max_token_bytes", fmt.Sprintf("%d: must be between %d and %d", n, MinOIDCMaxTokenBytes, MaxOIDCMaxTokenBytes))
	}
	if d := o.MinRefreshInterval; d < MinOIDCMinRefreshInterval {
		v.add(p+".min_refresh_interval", fmt.Sprintf("%s: must be at least %s (it stops a flood of unknown key ids from hammering the issuer)", d.D(), MinOIDCMinRefreshInterval.D()))
	}
	checkKind(v, p+".kind", o.Kind)
	for _, cl := range []struct{ field, name string }{
		{"subject", o.Claims.Subject}, {"groups", o.Claims.Groups}, {"roles", o.Claims.Roles}, {"scopes", o.Claims.Scopes},
	} {
		if err := checkClaimName(cl.name); err != nil {
			v.add(p+".claims."+cl.field, err.Error())
		}
	}
}

// checkIdentityURL checks an issuer or JWKS URL: https, or http on a
// loopback host (tests); a host, no user info, no query, no fragment.
func checkIdentityURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return fmt.Errorf("not a valid URL: %v", ue.Err)
		}
		return errors.New("not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return errors.New("must be an https URL, e.g. \"https://accounts.example.com\"")
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return errors.New("must have a host, e.g. \"https://accounts.example.com\"")
	case u.User != nil:
		return errors.New("must not contain user info (user:password@)")
	case u.RawQuery != "" || u.ForceQuery:
		return errors.New("must not contain a query (?...)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return errors.New("must not contain a fragment (#...)")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return errors.New("port must be between 1 and 65535")
		}
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return errors.New("must be https: plain http is allowed only for 127.0.0.1, ::1 or localhost (tests)")
	}
	return nil
}

func loopbackHost(h string) bool {
	return strings.EqualFold(h, "localhost") || h == "127.0.0.1" || h == "::1"
}

func checkClaimName(s string) error {
	switch {
	case strings.TrimSpace(s) == "":
		return errors.New("must not be empty")
	case len(s) > maxClaimNameBytes:
		return fmt.Errorf("must be at most %d characters", maxClaimNameBytes)
	case strings.ContainsFunc(s, isSpaceOrControl):
		return fmt.Errorf("%q: a claim name has no spaces or control characters", s)
	}
	return nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (c *Config) validateTokens(v *validator, p string, t *Tokens) {
	switch {
	case t.Issuer == "":
		v.add(p+".issuer", "required")
	case len(t.Issuer) > maxTokenIssuerBytes:
		v.add(p+".issuer", fmt.Sprintf("must be at most %d characters", maxTokenIssuerBytes))
	case strings.ContainsFunc(t.Issuer, isSpaceOrControl):
		v.add(p+".issuer", "must not contain spaces or control characters")
	default:
		for i := range c.Identity.OIDC {
			if c.Identity.OIDC[i].Issuer == t.Issuer {
				v.add(p+".issuer", fmt.Sprintf("same as identity.oidc[%d].issuer: tokens are routed by iss, so warden's own issuer must differ from every OIDC issuer", i))
				break
			}
		}
	}
	if t.KeysPath == "" {
		v.add(p+".keys_path", "required")
	}
	v.positive(p+".ttl", t.TTL)
	switch {
	case t.MaxTTL < t.TTL:
		v.add(p+".max_ttl", fmt.Sprintf("%s: must be at least ttl (%s)", t.MaxTTL.D(), t.TTL.D()))
	case t.MaxTTL > MaxTokenMaxTTL:
		v.add(p+".max_ttl", fmt.Sprintf("%s: must be at most %s", t.MaxTTL.D(), MaxTokenMaxTTL.D()))
	}
	if t.RotateEvery < MinTokenRotateEvery {
		v.add(p+".rotate_every", fmt.Sprintf("%s: must be at least %s", t.RotateEvery.D(), MinTokenRotateEvery.D()))
	}
}

func validateMFA(v *validator, p string, m *MFA) {
	if m.StorePath == "" {
		v.add(p+".store_path", "required")
	}
	switch {
	case m.Issuer == "":
		v.add(p+".issuer", "required")
	case len(m.Issuer) > maxMFAIssuerBytes:
		v.add(p+".issuer", fmt.Sprintf("must be at most %d characters", maxMFAIssuerBytes))
	case strings.Contains(m.Issuer, ":"):
		v.add(p+".issuer", "must not contain ':' (it separates issuer and account in an authenticator app's label)")
	case strings.ContainsFunc(m.Issuer, func(r rune) bool { return r < ' ' || r == 0x7f }):
		v.add(p+".issuer", "must not contain control characters")
	}
	if d := m.ElevatedTTL; d < MinMFAElevatedTTL || d > MaxMFAElevatedTTL {
		v.add(p+".elevated_ttl", fmt.Sprintf("%s: must be between %s and %s", d.D(), MinMFAElevatedTTL.D(), MaxMFAElevatedTTL.D()))
	}
	// The key is never echoed, as for upstream credentials.
	kp := p + ".encryption_key"
	k := &m.EncryptionKey
	if (k.Env == "") == (k.File == "") {
		v.add(kp, "exactly one of env or file is required")
	}
	if k.Env != "" && !envNameRE.MatchString(k.Env) {
		v.add(kp+".env", "must be the name of an environment variable (letters, digits and '_', not starting with a digit), not the key itself")
	}
	if k.Header != "" {
		v.add(kp+".header", "does not apply to an encryption key (it is never sent anywhere); remove it")
	}
	if k.Scheme != "" {
		v.add(kp+".scheme", "does not apply to an encryption key (it is never sent anywhere); remove it")
	}
}

// checkIdentityFiles is checkFiles for the identity section: bundle, JWKS
// and CA files, the MFA encryption key, and the data paths.
func (c *Config) checkIdentityFiles(v *validator) {
	id := &c.Identity
	if m := id.MTLS; m != nil {
		for i := range m.TrustDomains {
			f := fmt.Sprintf("identity.mtls.trust_domains[%d].bundle_file", i)
			if path := m.TrustDomains[i].BundleFile; path != "" && !v.failed(f) {
				if err := checkBundle(path); err != nil {
					v.add(f, err.Error())
				}
			}
		}
	}
	for i := range id.OIDC {
		o := &id.OIDC[i]
		p := fmt.Sprintf("identity.oidc[%d]", i)
		if o.JWKSFile != "" && !v.failed(p+".jwks_file") {
			if err := checkJWKSFile(o.JWKSFile); err != nil {
				v.add(p+".jwks_file", err.Error())
			}
		}
		if o.CAFile != "" && !v.failed(p+".ca_file") {
			if data, err := readFile(o.CAFile, maxPEMBytes); err != nil {
				v.add(p+".ca_file", err.Error())
			} else if !x509.NewCertPool().AppendCertsFromPEM(data) {
				v.add(p+".ca_file", fmt.Sprintf("%s: no PEM certificates in it", o.CAFile))
			}
		}
	}
	if m := id.MFA; m != nil && !v.failed("identity.mfa.encryption_key") {
		field := "identity.mfa.encryption_key.env"
		if m.EncryptionKey.File != "" {
			field = "identity.mfa.encryption_key.file"
		}
		if !v.failed(field) {
			if _, err := m.Key(); err != nil {
				v.add(field, strings.TrimPrefix(err.Error(), "config: mfa encryption key: "))
			}
		}
	}

	files := c.dataFiles()
	for j, f := range files {
		if j < 2 || f.path == "" || v.failed(f.field) {
			continue // keys.path and audit.path are checked in checkFiles
		}
		if fi, err := os.Stat(f.path); err == nil && fi.IsDir() {
			v.add(f.field, fmt.Sprintf("%s is a directory; expected a file path", f.path))
			continue
		}
		for _, o := range files[:j] {
			if o.path != "" && filepath.Clean(o.path) == filepath.Clean(f.path) {
				v.add(f.field, fmt.Sprintf("must not be the same file as %s", o.field))
				break
			}
		}
	}
}

// checkBundle checks a SPIFFE X.509 bundle file: readable, with at least one
// PEM CERTIFICATE block, every one of which parses.
func checkBundle(path string) error {
	data, err := readFile(path, maxPEMBytes)
	if err != nil {
		return err
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("%s: certificate %d does not parse: %v", path, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no PEM certificates (BEGIN CERTIFICATE) in it", path)
	}
	return nil
}

// checkJWKSFile checks that path holds a JSON Web Key Set (RFC 7517 §5): a
// JSON object with a non-empty "keys" array of objects. The keys themselves
// are checked by the OIDC authenticator.
func checkJWKSFile(path string) error {
	data, err := readFile(path, maxJWKSBytes)
	if err != nil {
		return err
	}
	var set struct {
		Keys *[]map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%s: not valid JSON (at byte %d)", path, se.Offset)
		}
		return fmt.Errorf("%s: not a JSON Web Key Set ({\"keys\": [...]})", path)
	}
	if set.Keys == nil || len(*set.Keys) == 0 {
		return fmt.Errorf("%s: not a JSON Web Key Set: \"keys\" is missing or empty", path)
	}
	return nil
}

// Key returns the MFA encryption key: the secret named by EncryptionKey (an
// environment variable or a file, surrounding white space trimmed), decoded
// from 64 hex digits or base64 (standard or URL alphabet, padded or not)
// into exactly 32 bytes. Errors name the variable or file, never the key.
//
// EncryptionKey.File is read as is: call Key on a config returned by Load.
func (m *MFA) Key() ([]byte, error) {
	if m == nil {
		return nil, errors.New("config: mfa encryption key: mfa is not configured")
	}
	k := &m.EncryptionKey
	var secret, source string
	switch {
	case k.Env != "" && k.File != "":
		return nil, errors.New("config: mfa encryption key: both env and file are set; use one")
	case k.Env != "":
		source = "env " + k.Env
		val, ok := os.LookupEnv(k.Env)
		if !ok {
			return nil, fmt.Errorf("config: mfa encryption key: %s is not set", source)
		}
		secret = val
	case k.File != "":
		source = "file " + k.File
		data, err := readFile(k.File, maxSecretBytes)
		if err != nil {
			return nil, fmt.Errorf("config: mfa encryption key: %w", err)
		}
		secret = string(data)
	default:
		return nil, errors.New("config: mfa encryption key: neither env nor file is set")
	}
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return nil, fmt.Errorf("config: mfa encryption key: %s is empty", source)
	}
	key, ok := decodeKey(secret)
	switch {
	case ok && len(key) == MFAEncryptionKeyBytes:
		return key, nil
	case strings.Trim(secret, "0123456789abcdefABCDEF") == "":
		return nil, fmt.Errorf("config: mfa encryption key: %s: %d hex digits; the key must be exactly %d bytes, 64 hex digits (e.g. \"openssl rand -hex 32\")", source, len(secret), MFAEncryptionKeyBytes)
	case !ok:
		return nil, fmt.Errorf("config: mfa encryption key: %s: not hex or base64; write %d random bytes as 64 hex digits or in base64 (e.g. the output of \"openssl rand -base64 32\")", source, MFAEncryptionKeyBytes)
	default:
		return nil, fmt.Errorf("config: mfa encryption key: %s: decodes to %d bytes; the key must be exactly %d bytes (e.g. \"openssl rand -base64 32\")", source, len(key), MFAEncryptionKeyBytes)
	}
}

// decodeKey decodes s as 64 hex digits, else as base64 in any of its
// common forms.
func decodeKey(s string) ([]byte, bool) {
	if len(s) == 2*MFAEncryptionKeyBytes {
		if b, err := hex.DecodeString(s); err == nil {
			return b, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}
