package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

func http2Canonical(h string) string { return textproto.CanonicalMIMEHeaderKey(h) }

// FieldError is one validation error: the field path, the line it is on (0
// when neither the field nor any parent is in the file) and what is wrong.
// Field is empty for problems with the document as a whole (syntax, several
// documents). Messages never contain secret values.
type FieldError struct {
	File    string
	Line    int
	Field   string // e.g. "routes[1].upstream.url"
	Message string
}

func (e FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// ValidationError lists every problem found in a config file, in line order
// (problems with no line last).
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config: invalid")
	if len(e.Errors) == 1 {
		b.WriteString(": ")
		b.WriteString(e.Errors[0].Error())
		return b.String()
	}
	fmt.Fprintf(&b, " (%d problems)", len(e.Errors))
	for i, fe := range e.Errors {
		if i == maxPrintedErrors {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Errors)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

// maxPrintedErrors bounds the message of a ValidationError; Errors has them all.
const maxPrintedErrors = 50

// Limits.
const (
	MaxHeaderBytesLimit = 1 << 20 // max_header_bytes upper bound: 1 MiB
	MaxBodyBytesLimit   = 1 << 30 // max_body_bytes upper bound: 1 GiB
)

var (
	routeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	segmentRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

const (
	nameRule    = "must be 1-63 lower case letters, digits, '_', '.' or '-', starting with a letter or digit"
	segmentRule = "must be 1-63 lower case letters, digits, '_' or '-', starting with a letter or digit"
)

// forbiddenCredentialHeaders cannot carry a credential: they are hop-by-hop
// (RFC 9110 §7.6.1; removed by proxies, so the credential would never
// arrive), frame or describe the message (overwriting them breaks the
// request), or are set by the transport.
var forbiddenCredentialHeaders = map[string]bool{
	"host": true, "connection": true, "content-length": true, "transfer-encoding": true,
	"te": true, "trailer": true, "upgrade": true, "keep-alive": true, "proxy-connection": true,
	"proxy-authorization": true, "proxy-authenticate": true, "content-type": true,
	"content-encoding": true, "expect": true,
}

// validate checks the decoded, defaulted config; it only looks at the
// document, never at files or the environment.
func (c *Config) validate(v *validator) {
	if len(c.Listeners) == 0 {
		v.add("listeners", "at least one listener is required")
	}
	listenerNames := map[string]int{}
	type addr struct {
		hp    hostPort
		index int
	}
	var addrs []addr
	for i := range c.Listeners {
		l := &c.Listeners[i]
		p := fmt.Sprintf("listeners[%d]", i)
		if !routeNameRE.MatchString(l.Name) {
			v.add(p+".name", fmt.Sprintf("%q: %s", l.Name, nameRule))
		} else if j, dup := listenerNames[l.Name]; dup {
			v.add(p+".name", fmt.Sprintf("duplicate listener name %q (also listeners[%d])", l.Name, j))
		} else {
			listenerNames[l.Name] = i
		}
		if l.Address == "" {
			v.add(p+".address", "required: host:port to listen on, e.g. \"127.0.0.1:8443\" or \":8443\"")
		} else if hp, err := parseHostPort(l.Address); err != nil {
			v.add(p+".address", fmt.Sprintf("%q: %v", l.Address, err))
		} else {
			for _, o := range addrs {
				if hp.conflicts(o.hp) {
					v.add(p+".address", fmt.Sprintf("%q conflicts with listeners[%d].address %q", l.Address, o.index, c.Listeners[o.index].Address))
					break
				}
			}
			addrs = append(addrs, addr{hp, i})
		}
		switch l.TLS.Mode {
		case TLSModeFiles:
			if l.TLS.CertFile == "" {
				v.add(p+".tls.cert_file", "required with mode files")
			}
			if l.TLS.KeyFile == "" {
				v.add(p+".tls.key_file", "required with mode files")
			}
		case TLSModeSelfSigned, TLSModeOff, TLSModeSPIFFE:
			if l.TLS.Mode == TLSModeSPIFFE && (c.Identity.MTLS == nil || c.Identity.MTLS.WorkloadAPISocket == "") {
				v.add(p+".tls.mode", "mode spiffe takes warden's certificate from the SPIRE Workload API: set identity.mtls.workload_api_socket")
			}
			if l.TLS.CertFile != "" {
				v.add(p+".tls.cert_file", fmt.Sprintf("only used with mode files (mode is %s)", l.TLS.Mode))
			}
			if l.TLS.KeyFile != "" {
				v.add(p+".tls.key_file", fmt.Sprintf("only used with mode files (mode is %s)", l.TLS.Mode))
			}
		default:
			v.add(p+".tls.mode", fmt.Sprintf("unknown mode %q (files, self_signed, spiffe, off)", l.TLS.Mode))
		}
		v.positive(p+".read_header_timeout", l.ReadHeaderTimeout)
		v.positive(p+".read_timeout", l.ReadTimeout)
		v.positive(p+".idle_timeout", l.IdleTimeout)
		if l.MaxHeaderBytes < 1 || l.MaxHeaderBytes > MaxHeaderBytesLimit {
			v.add(p+".max_header_bytes", fmt.Sprintf("%d: must be between 1 and %d (1 MiB)", l.MaxHeaderBytes, MaxHeaderBytesLimit))
		}
		if l.MaxBodyBytes < 1 || l.MaxBodyBytes > MaxBodyBytesLimit {
			v.add(p+".max_body_bytes", fmt.Sprintf("%d: must be between 1 and %d (1 GiB)", l.MaxBodyBytes, MaxBodyBytesLimit))
		}
	}

	if a := c.Admin.Address; a != "off" {
		if hp, err := parseHostPort(a); err != nil {
			v.add("admin.address", fmt.Sprintf("%q: %v (or \"off\" to disable the admin listener)", a, err))
		} else {
			for _, o := range addrs {
				if hp.conflicts(o.hp) {
					v.add("admin.address", fmt.Sprintf("%q conflicts with listeners[%d].address %q", a, o.index, c.Listeners[o.index].Address))
					break
				}
			}
		}
	}

	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is required")
	}
	routeNames := map[string]int{}
	prefixes := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		p := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Name == "":
			v.add(p+".name", "required")
		case !routeNameRE.MatchString(r.Name):
			v.add(p+".name", fmt.Sprintf("%q: %s", r.Name, nameRule))
		default:
			if j, dup := routeNames[r.Name]; dup {
				v.add(p+".name", fmt.Sprintf("duplicate route name %q (also routes[%d])", r.Name, j))
			} else {
				routeNames[r.Name] = i
			}
		}
		if r.Prefix == "" {
			v.add(p+".prefix", "required: a path prefix such as \"/v1/\"")
		} else if err := checkPrefix(r.Prefix); err != nil {
			v.add(p+".prefix", fmt.Sprintf("%q: %v", r.Prefix, err))
		} else if j, dup := prefixes[r.Prefix]; dup {
			v.add(p+".prefix", fmt.Sprintf("duplicate prefix %q (also routes[%d])", r.Prefix, j))
		} else {
			prefixes[r.Prefix] = i
		}
		if r.API != APIOpenAI && r.API != APIHTTP && r.API != APIMCP {
			v.add(p+".api", fmt.Sprintf("unknown api %q (openai, http, mcp)", r.API))
		}
		switch {
		case r.Segment == "":
			v.add(p+".segment", "required: every route belongs to a segment (e.g. inference, training, deployment)")
		case !segmentRE.MatchString(r.Segment):
			v.add(p+".segment", fmt.Sprintf("%q: %s", r.Segment, segmentRule))
		}
		c.validateUpstream(v, p+".upstream", &r.Upstream)
	}

	if c.Keys.Path == "" {
		v.add("keys.path", "required")
	}
	c.validatePolicy(v)
	c.validateGrants(v)
	c.validateAudit(v)
	c.validateContext(v)
	c.validateGuards(v)
	c.validateLimits(v)
	c.validateBehavior(v)
	c.validateResponses(v)
	c.validateModels(v)
	c.validateMCP(v)
	c.validateRuntime(v)
	c.validateIdentity(v)
}

func (c *Config) validateUpstream(v *validator, p string, u *Upstream) {
	// The URL is never echoed: it may carry a credential.
	https := false
	if u.URL == "" {
		v.add(p+".url", "required: the upstream base URL, e.g. \"https://api.openai.com\"")
	} else if err := checkUpstreamURL(u.URL); err != nil {
		v.add(p+".url", err.Error())
	} else {
		https = strings.HasPrefix(strings.ToLower(u.URL), "https:")
	}
	v.positive(p+".timeout", u.Timeout)
	v.positive(p+".dial_timeout", u.DialTimeout)
	if u.CAFile != "" && u.URL != "" && !https {
		v.add(p+".ca_file", "only used with an https upstream")
	}
	cr := u.Credential
	if cr == nil {
		return
	}
	// Credential values are never echoed either: a secret pasted into the
	// wrong field must not end up in a log.
	cp := p + ".credential"
	if (cr.Env == "") == (cr.File == "") {
		v.add(cp, "exactly one of env or file is required")
	}
	if cr.Env != "" && !envNameRE.MatchString(cr.Env) {
		v.add(cp+".env", "must be the name of an environment variable (letters, digits and '_', not starting with a digit), not the secret itself")
	}
	switch {
	case !validToken(cr.Header):
		v.add(cp+".header", "must be a valid HTTP header name (RFC 9110 token)")
	case forbiddenCredentialHeaders[strings.ToLower(cr.Header)]:
		v.add(cp+".header", fmt.Sprintf("%s cannot carry a credential (hop-by-hop or message framing header)", http2Canonical(cr.Header)))
	}
	if cr.Scheme != "" && !validToken(cr.Scheme) {
		v.add(cp+".scheme", "must be an authentication scheme such as \"Bearer\" (an RFC 9110 token: no spaces), not the secret itself")
	}
}

// checkUpstreamURL checks an upstream base URL. Its messages never include
// the URL, which may hold a credential.
func checkUpstreamURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return fmt.Errorf("not a valid URL: %v", ue.Err)
		}
		return fmt.Errorf("not a valid URL")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https, e.g. \"https://api.openai.com\"")
	case u.User != nil:
		return fmt.Errorf("must not contain user info (user:password@): credentials in URLs leak into logs; use credential instead")
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("must have a host, e.g. \"https://api.openai.com\"")
	case u.RawQuery != "" || u.ForceQuery:
		return fmt.Errorf("must not contain a query (?...)")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("must not contain a fragment (#...)")
	}
	if u.Hostname() == "" {
		return fmt.Errorf("must have a host, e.g. \"https://api.openai.com\"")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port must be between 1 and 65535")
		}
	}
	return nil
}

// checkPrefix checks a route prefix: an absolute URL path that ends with
// "/", made of unreserved characters, sub-delims, ':' and '@' (RFC 3986
// §3.3), with no empty, "." or ".." segments and no percent-encoding, so
// that what is matched is unambiguous.
func checkPrefix(s string) error {
	if !strings.HasPrefix(s, "/") || !strings.HasSuffix(s, "/") {
		return fmt.Errorf("must start and end with \"/\"")
	}
	if strings.Contains(s, "//") {
		return fmt.Errorf("must not contain \"//\"")
	}
	if strings.Contains(s, "..") {
		return fmt.Errorf("must not contain \"..\"")
	}
	for _, c := range []byte(s) {
		if !isPathChar(c) {
			return fmt.Errorf("character %q is not allowed (letters, digits and -._~!$&'()*+,;=:@/ only)", c)
		}
	}
	for _, seg := range strings.Split(strings.Trim(s, "/"), "/") {
		if seg == "." {
			return fmt.Errorf("must not contain a \".\" segment")
		}
	}
	return nil
}

func isPathChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0
}

// validToken reports whether s is an RFC 9110 token, the syntax of header
// field names and authentication schemes (as httpguts.ValidHeaderFieldName).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// hostPort is a parsed listen address.
type hostPort struct {
	host string // normalised: IP literals canonical, names lower case
	port int
	ip   netip.Addr // valid when host is an IP literal
}

// parseHostPort checks a listen address: host:port, where host is empty (all
// interfaces), an IP literal or a DNS name, and port is 0-65535.
func parseHostPort(s string) (hostPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		msg := err.Error()
		if ae, ok := err.(*net.AddrError); ok {
			msg = ae.Err
		}
		return hostPort{}, fmt.Errorf("must be host:port, e.g. \"127.0.0.1:8443\" (%s)", msg)
	}
	if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
		return hostPort{}, fmt.Errorf("port must be a number between 0 and 65535")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n > 65535 {
		return hostPort{}, fmt.Errorf("port must be a number between 0 and 65535")
	}
	hp := hostPort{port: n}
	if host == "" {
		return hp, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		hp.ip = ip.Unmap()
		hp.host = hp.ip.String()
		return hp, nil
	}
	if !validHostname(host) {
		return hostPort{}, fmt.Errorf("host %q is neither an IP address nor a valid host name", host)
	}
	hp.host = strings.ToLower(host)
	return hp, nil
}

// conflicts reports whether two listen addresses would fight over a port.
// Port 0 (an ephemeral port) never conflicts. A wildcard host ("" or "::",
// dual stack) conflicts with every host on the port, and 0.0.0.0 with every
// host that is not an IPv6 literal.
func (a hostPort) conflicts(b hostPort) bool {
	if a.port == 0 || a.port != b.port {
		return false
	}
	if a.host == b.host {
		return true
	}
	all := func(h hostPort) bool { return h.host == "" || h.ip.IsValid() && h.ip.Is6() && h.ip.IsUnspecified() }
	v4any := func(h hostPort) bool { return h.ip.IsValid() && h.ip.Is4() && h.ip.IsUnspecified() }
	notV6 := func(h hostPort) bool { return !h.ip.IsValid() || h.ip.Is4() }
	return all(a) || all(b) || v4any(a) && notV6(b) || v4any(b) && notV6(a)
}

// validHostname reports whether s is a DNS name: dot-separated labels of
// letters, digits and '-', each 1-63 long, not starting or ending with '-'.
func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validator collects FieldErrors, finding each field's line in the YAML tree.
type validator struct {
	file string
	root *yaml.Node
	errs []FieldError
	// undecoded are field paths that yaml.v3 could not decode; their values
	// (and their children's) are zero, so further errors on them are noise.
	undecoded []string
}

func (v *validator) add(field, msg string) {
	for _, u := range v.undecoded {
		if u == "" || within(field, u) {
			return
		}
	}
	v.errs = append(v.errs, FieldError{File: v.file, Line: lineOf(v.root, field), Field: field, Message: msg})
}

// markUndecoded records that yaml.v3 could not decode field. A list item
// that fails to decode is dropped from its list, which shifts the indexes
// of the items after it, so then the whole list is marked. The empty path
// marks the whole document.
func (v *validator) markUndecoded(field string) {
	if strings.HasSuffix(field, "]") {
		if i := strings.LastIndexByte(field, '['); i >= 0 {
			field = field[:i]
		}
	}
	v.undecoded = append(v.undecoded, field)
}

// positive adds an error unless d > 0.
func (v *validator) positive(field string, d Duration) {
	if d <= 0 {
		v.add(field, fmt.Sprintf("%s: must be greater than 0", d.D()))
	}
}

// failed reports whether an error was recorded for field or a parent of it.
func (v *validator) failed(field string) bool {
	for _, e := range v.errs {
		if e.Field != "" && within(field, e.Field) {
			return true
		}
	}
	return false
}

// within reports whether field is parent or a child of parent.
func within(field, parent string) bool {
	if !strings.HasPrefix(field, parent) {
		return false
	}
	rest := field[len(parent):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// err returns the collected errors, sorted by line, or nil.
func (v *validator) err() error {
	if v == nil || len(v.errs) == 0 {
		return nil
	}
	errs := slices.Clone(v.errs)
	slices.SortStableFunc(errs, func(a, b FieldError) int {
		switch {
		case a.Line == b.Line:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return a.Line - b.Line
	})
	return &ValidationError{Errors: errs}
}

// lineOf finds the line of a field path like "routes[1].upstream.url" in the
// YAML tree: the line of the field's key, or of the list item for a path
// ending in an index. When the field is absent it returns the line of its
// nearest present parent, and 0 if none is present. Aliases and merge keys
// ("<<") are followed.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	if path == "" {
		return line
	}
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			v, err := strconv.Atoi(part[i+1 : len(part)-1])
			if err != nil || v < 0 {
				return line
			}
			idx = v
		}
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		k, next := lookupKey(n, key, 0)
		if next == nil {
			return line
		}
		line = k.Line
		n = deref(next)
		if idx >= 0 {
			if n == nil || n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

// lookupKey finds key in mapping n, then in the mappings merged into n.
// When key is only in a merged mapping, the merge key is returned as the
// key node: that is the line in n where the value comes from.
func lookupKey(n *yaml.Node, key string, depth int) (k, val *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode || depth > 4 {
		return nil, nil
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Tag != "!!merge" && n.Content[j].Value == key {
			return n.Content[j], n.Content[j+1]
		}
	}
	for j := 0; j+1 < len(n.Content); j += 2 {
		if n.Content[j].Tag != "!!merge" {
			continue
		}
		srcs := []*yaml.Node{deref(n.Content[j+1])}
		if srcs[0] != nil && srcs[0].Kind == yaml.SequenceNode {
			srcs = srcs[0].Content
		}
		for _, s := range srcs {
			if _, v := lookupKey(deref(s), key, depth+1); v != nil {
				return n.Content[j], v
			}
		}
	}
	return nil, nil
}
