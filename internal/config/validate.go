package config

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"gopkg.in/yaml.v3"
)

func http2Canonical(h string) string { return textproto.CanonicalMIMEHeaderKey(h) }

// FieldError is one validation error: the field path, the line it is on (0
// when the field is absent from the file) and what is wrong.
type FieldError struct {
	File    string
	Line    int
	Field   string // e.g. "routes[1].upstream.url"
	Message string
}

func (e FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Message)
	}
	return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Message)
}

// ValidationError lists every problem found in a config file.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config: invalid")
	for _, fe := range e.Errors {
		b.WriteString("\n  ")
		b.WriteString(fe.Error())
	}
	return b.String()
}

func (c *Config) validate(name string, root *yaml.Node) error {
	v := &validator{file: name, root: root}
	if len(c.Listeners) == 0 {
		v.add("listeners", "at least one listener is required")
	}
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		if l.Address == "" {
			v.add(p+".address", "required (host:port)")
		}
		switch l.TLS.Mode {
		case TLSModeFiles:
			if l.TLS.CertFile == "" || l.TLS.KeyFile == "" {
				v.add(p+".tls", "mode files needs cert_file and key_file")
			}
		case TLSModeSelfSigned, TLSModeOff:
			if l.TLS.CertFile != "" || l.TLS.KeyFile != "" {
				v.add(p+".tls.mode", "cert_file/key_file are only used with mode files")
			}
		default:
			v.add(p+".tls.mode", fmt.Sprintf("unknown mode %q (files, self_signed, off)", l.TLS.Mode))
		}
		if l.MaxBodyBytes < 0 || l.MaxBodyBytes > 1<<30 {
			v.add(p+".max_body_bytes", "must be between 1 and 1073741824")
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.Name == "" {
			v.add(p+".name", "required")
		}
		if !strings.HasPrefix(r.Prefix, "/") || !strings.HasSuffix(r.Prefix, "/") {
			v.add(p+".prefix", "must start and end with \"/\"")
		} else if seen[r.Prefix] {
			v.add(p+".prefix", fmt.Sprintf("duplicate prefix %q", r.Prefix))
		}
		seen[r.Prefix] = true
		if r.API != APIOpenAI && r.API != APIHTTP {
			v.add(p+".api", fmt.Sprintf("unknown api %q (openai, http)", r.API))
		}
		if r.Segment == "" {
			v.add(p+".segment", "required: every route belongs to a segment")
		}
		if r.Upstream.URL == "" {
			v.add(p+".upstream.url", "required")
		}
		if cr := r.Upstream.Credential; cr != nil {
			if (cr.Env == "") == (cr.File == "") {
				v.add(p+".upstream.credential", "exactly one of env or file is required")
			}
			if h := http.CanonicalHeaderKey(cr.Header); h == "Host" || h == "Connection" {
				v.add(p+".upstream.credential.header", fmt.Sprintf("%q cannot carry a credential", cr.Header))
			}
		}
	}
	if len(c.Routes) == 0 {
		v.add("routes", "at least one route is required")
	}
	if c.Policy.Dir == "" {
		v.add("policy.dir", "required: warden denies everything without a policy")
	}
	if len(v.errs) > 0 {
		return &ValidationError{Errors: v.errs}
	}
	return nil
}

type validator struct {
	file string
	root *yaml.Node
	errs []FieldError
}

func (v *validator) add(field, msg string) {
	v.errs = append(v.errs, FieldError{File: v.file, Line: lineOf(v.root, field), Field: field, Message: msg})
}

// lineOf finds the line of a field path like "routes[1].upstream.url" in the
// YAML tree. When the field itself is absent it returns the line of its
// nearest present parent, and 0 if none is present.
func lineOf(root *yaml.Node, path string) int {
	n := root
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := 0
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			key = part[:i]
			if _, err := fmt.Sscanf(part[i+1:len(part)-1], "%d", &idx); err != nil {
				return line
			}
		}
		if n == nil || n.Kind != yaml.MappingNode {
			return line
		}
		var next *yaml.Node
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == key {
				next = n.Content[j+1]
				line = n.Content[j].Line
				break
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	if n != nil && n.Line > 0 {
		line = n.Line
	}
	return line
}
