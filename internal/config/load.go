package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// maxConfigBytes bounds the config file: it is operator input, but a config
// generator gone wrong should get an error, not an OOM.
const maxConfigBytes = 4 << 20

// Load reads, decodes, defaults, validates and resolves the config file at
// path. Relative paths in the file are resolved against the file's directory.
// Beyond what Parse checks, Load checks the world the config points at: TLS
// and CA files exist and parse, credential env vars are set and credential
// files are readable and non-empty, and the policy directory exists. Every
// problem found is reported at once in a *ValidationError.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, maxConfigBytes)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, v, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	cfg.Dir = filepath.Dir(abs)
	cfg.resolvePaths()
	cfg.checkFiles(v)
	cfg.checkContextFiles(v)
	cfg.checkGrantsFiles(v)
	cfg.checkResponsesFiles(v)
	cfg.checkModelsFiles(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes, defaults and validates a config document; name is used in
// error messages. Relative paths are left as written and nothing outside the
// document is looked at (files, environment): Load does that.
//
// A document that is not valid YAML, holds more than one YAML document, or
// fails validation yields a *ValidationError listing every problem with its
// field path and line.
func Parse(data []byte, name string) (*Config, error) {
	cfg, v, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parse decodes and validates data. A non-nil error means the document could
// not be decoded at all; otherwise cfg is decoded and defaulted, and v holds
// the problems found so far (possibly none), so that Load can add its own.
func parse(data []byte, name string) (*Config, *validator, error) {
	v := &validator{file: name}
	fatal := func(line int, field, msg string) (*Config, *validator, error) {
		v.errs = append(v.errs, FieldError{File: name, Line: line, Field: field, Message: msg})
		return nil, nil, v.err()
	}

	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return fatal(0, "", "empty document: expected a mapping with listeners, routes, policy, ...")
		}
		line, msg := yamlErrorLine(err.Error())
		return fatal(line, "", "invalid YAML: "+msg)
	}
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		line := second.Line
		if line == 0 {
			line, _ = yamlErrorLine(fmt.Sprint(err))
		}
		return fatal(line, "", "more than one YAML document; a config file holds exactly one (remove the \"---\" separator)")
	}
	v.root = &root
	top := documentContent(&root)
	switch {
	case top == nil || top.Kind == yaml.ScalarNode && top.Tag == "!!null":
		return fatal(0, "", "empty document: expected a mapping with listeners, routes, policy, ...")
	case top.Kind != yaml.MappingNode:
		return fatal(top.Line, "", "the top level must be a mapping (listeners:, routes:, ...), not "+kindName(top))
	}

	if err := checkExpansion(top); err != nil {
		line, msg := yamlErrorLine(err.Error())
		return fatal(line, "", msg)
	}

	var cfg Config
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	decErr := strict.Decode(&cfg)
	var te *yaml.TypeError
	if decErr != nil && !errors.As(decErr, &te) {
		// Not a per-field problem (e.g. excessive aliasing): decoding stopped.
		line, msg := yamlErrorLine(decErr.Error())
		return fatal(line, "", msg)
	}

	// Walk the tree against the schema: unknown and duplicate keys with
	// their full field path, and an index from line to field path so that
	// yaml.v3's type errors (which carry only a line) name the field too.
	w := &walker{v: v, lines: map[int]string{}, errLines: map[int]bool{}}
	w.walk(top, reflect.TypeOf(cfg), "")
	if te != nil {
		for _, s := range te.Errors {
			line, msg := yamlErrorLine(s)
			if line > 0 && w.errLines[line] {
				continue // already reported with its path by the walk
			}
			field := w.lines[line]
			v.errs = append(v.errs, FieldError{File: name, Line: line, Field: field, Message: friendlyTypeError(msg)})
			if field != "" {
				v.markUndecoded(field)
			}
		}
	}

	cfg.applyDefaults()
	cfg.validate(v)
	return &cfg, v, nil
}

// maxExpandedNodes bounds the size of the document with every alias
// expanded, so that a "billion laughs" document is rejected before anything
// walks it. Real configs are a few hundred nodes.
const maxExpandedNodes = 100_000

// checkExpansion rejects documents whose aliases expand to too many nodes
// or refer to themselves. It visits each node once.
func checkExpansion(top *yaml.Node) error {
	const inProgress = -1
	sizes := map[*yaml.Node]int{}
	var size func(n *yaml.Node, depth int) (int, error)
	size = func(n *yaml.Node, depth int) (int, error) {
		if n == nil {
			return 0, nil
		}
		if depth > 10_000 {
			return 0, errors.New("document nests too deeply")
		}
		switch s, ok := sizes[n]; {
		case ok && s == inProgress:
			return 0, fmt.Errorf("line %d: anchor refers to itself", n.Line)
		case ok:
			return s, nil
		}
		sizes[n] = inProgress
		total := 1
		children := n.Content
		if n.Kind == yaml.AliasNode {
			children = []*yaml.Node{n.Alias}
		}
		for _, c := range children {
			s, err := size(c, depth+1)
			if err != nil {
				return 0, err
			}
			total += s
			if total > maxExpandedNodes {
				return 0, fmt.Errorf("document expands to more than %d nodes through aliases", maxExpandedNodes)
			}
		}
		sizes[n] = total
		return total, nil
	}
	_, err := size(top, 0)
	return err
}

func documentContent(root *yaml.Node) *yaml.Node {
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil
		}
		return root.Content[0]
	}
	return root
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlErrorLine splits a yaml.v3 message "yaml: line 7: msg" or "line 7: msg"
// into 7 and "msg". Messages without a line give 0.
func yamlErrorLine(s string) (int, string) {
	m := yamlLineRE.FindStringSubmatch(s)
	if m == nil {
		return 0, strings.TrimPrefix(s, "yaml: ")
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return 0, s
	}
	return n, s[len(m[0]):]
}

var typeErrRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `.*`)? into (.+)$")

// friendlyTypeError rewrites yaml.v3's "cannot unmarshal !!str `abc` into
// int" as "must be an integer, not a string". The value itself is dropped:
// it may be a secret pasted into the wrong field.
func friendlyTypeError(msg string) string {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	got := map[string]string{
		"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean",
		"seq": "a list", "map": "a mapping", "null": "null", "binary": "binary data", "timestamp": "a timestamp",
	}[m[1]]
	if got == "" {
		got = "!!" + m[1]
	}
	var want string
	switch t := m[2]; {
	case t == "int" || t == "int64":
		want = "an integer"
		switch m[1] {
		case "int":
			return "integer out of range"
		case "float":
			return "must be a whole number within range"
		}
	case t == "bool":
		want = "true or false"
	case t == "string":
		want = "a string"
	case strings.HasPrefix(t, "[]"):
		want = "a list"
	case strings.HasPrefix(t, "config.") || strings.HasPrefix(t, "*config."):
		want = "a mapping"
	default:
		want = t
	}
	return fmt.Sprintf("must be %s, not %s", want, got)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	default:
		return "a scalar"
	}
}

var durationType = reflect.TypeOf(Duration(0))

// walker checks a YAML tree against the schema's struct types.
type walker struct {
	v        *validator
	lines    map[int]string // line -> deepest field path on it
	errLines map[int]bool   // lines the walk reported an error on
}

func (w *walker) errorf(line int, field, format string, args ...any) {
	w.v.errs = append(w.v.errs, FieldError{File: w.v.file, Line: line, Field: field, Message: fmt.Sprintf(format, args...)})
	w.errLines[line] = true
}

// walk descends n along type t. The depth is bounded by the schema's type
// depth, so aliases cannot make it loop.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
		if n == nil {
			return
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == durationType {
		return
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		// yaml.v3 silently truncates 1.5 to 1: sizes are whole numbers.
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!float" {
			w.errorf(n.Line, path, "must be a whole number, like 65536")
			w.v.markUndecoded(path)
		}
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // yaml.v3 reports the type error
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				w.walkMerge(val, t, path)
				continue
			}
			p := join(path, k.Value)
			w.lines[k.Line] = p
			if val.Line != k.Line {
				w.lines[val.Line] = p
			}
			if first, dup := seen[k.Value]; dup {
				w.errorf(k.Line, p, "duplicate key (first set at line %d)", first)
				// yaml.v3 drops a mapping with a duplicate key as a whole.
				w.v.markUndecoded(path)
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				w.errorf(k.Line, p, "unknown field %s", suggest(k.Value, t))
				continue
			}
			w.walk(val, ft, p)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[item.Line] = p
			w.walk(item, t.Elem(), p)
		}
	}
}

// walkMerge follows a "<<" merge key: its value is a mapping, an alias to
// one, or a list of those.
func (w *walker) walkMerge(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.SequenceNode {
		for _, item := range n.Content {
			if item.Kind != yaml.SequenceNode {
				w.walk(item, t, path)
			}
		}
		return
	}
	w.walk(n, t, path)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps a struct's YAML keys to their field types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

// suggest quotes key and names the closest known field, or lists them all.
func suggest(key string, t reflect.Type) string {
	var names []string
	best, bestDist := "", 3
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("%q; did you mean %q?", key, best)
	}
	return fmt.Sprintf("%q (known fields: %s)", key, strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance, for short keys only.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// UnmarshalYAML decodes a Go duration string such as "10s" or "1m30s".
// Errors are *yaml.TypeError so that decoding goes on and every bad field is
// reported, not just the first.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if n.Kind != yaml.ScalarNode || n.Decode(&s) != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: duration must be a string like \"10s\"", n.Line)}}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		shown := s
		if len(shown) > 24 {
			shown = shown[:21] + "..."
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q: use a number with a unit, like \"500ms\", \"10s\" or \"2m\"", n.Line, shown)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Defaults.
const (
	DefaultReadHeaderTimeout = Duration(10 * time.Second)
	DefaultReadTimeout       = Duration(60 * time.Second)
	DefaultIdleTimeout       = Duration(120 * time.Second)
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultMaxBodyBytes      = 4 << 20
	DefaultAdminAddress      = "127.0.0.1:9090"
	DefaultUpstreamTimeout   = Duration(60 * time.Second)
	DefaultDialTimeout       = Duration(5 * time.Second)
	DefaultKeysPath          = "keys.json"
	DefaultAuditPath         = "audit.log"
)

func (c *Config) applyDefaults() {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("listener%d", i)
		}
		if l.TLS.Mode == "" {
			if l.TLS.CertFile != "" || l.TLS.KeyFile != "" {
				l.TLS.Mode = TLSModeFiles
			} else {
				l.TLS.Mode = TLSModeSelfSigned
			}
		}
		if l.ReadHeaderTimeout == 0 {
			l.ReadHeaderTimeout = DefaultReadHeaderTimeout
		}
		if l.ReadTimeout == 0 {
			l.ReadTimeout = DefaultReadTimeout
		}
		if l.IdleTimeout == 0 {
			l.IdleTimeout = DefaultIdleTimeout
		}
		if l.MaxHeaderBytes == 0 {
			l.MaxHeaderBytes = DefaultMaxHeaderBytes
		}
		if l.MaxBodyBytes == 0 {
			l.MaxBodyBytes = DefaultMaxBodyBytes
		}
	}
	if c.Admin.Address == "" {
		c.Admin.Address = DefaultAdminAddress
	}
	for i := range c.Routes {
		r := &c.Routes[i]
		if r.API == "" {
			r.API = APIOpenAI
		}
		if r.Upstream.Timeout == 0 {
			r.Upstream.Timeout = DefaultUpstreamTimeout
		}
		if r.Upstream.DialTimeout == 0 {
			r.Upstream.DialTimeout = DefaultDialTimeout
		}
		if cr := r.Upstream.Credential; cr != nil {
			if cr.Header == "" {
				cr.Header = "Authorization"
			}
			if cr.Scheme == "" && http2Canonical(cr.Header) == "Authorization" {
				cr.Scheme = "Bearer"
			}
		}
	}
	if c.Keys.Path == "" {
		c.Keys.Path = DefaultKeysPath
	}
	c.applyAuditDefaults()
	c.applyIdentityDefaults()
	c.applyContextDefaults()
	c.applyGrantsDefaults()
	c.applyGuardsDefaults()
	c.applyLimitsDefaults()
	c.applyBehaviorDefaults()
	c.applyResponsesDefaults()
	c.applyModelsDefaults()
	c.applyMCPDefaults()
	c.applyRuntimeDefaults()
	c.applyPolicyDefaults()
}

func (c *Config) resolvePaths() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.Dir, p)
	}
	for i := range c.Listeners {
		c.Listeners[i].TLS.CertFile = abs(c.Listeners[i].TLS.CertFile)
		c.Listeners[i].TLS.KeyFile = abs(c.Listeners[i].TLS.KeyFile)
	}
	for i := range c.Routes {
		u := &c.Routes[i].Upstream
		u.CAFile = abs(u.CAFile)
		if u.Credential != nil {
			u.Credential.File = abs(u.Credential.File)
		}
	}
	c.Keys.Path = abs(c.Keys.Path)
	c.Policy.Dir = abs(c.Policy.Dir)
	c.Policy.Grants.Path = abs(c.Policy.Grants.Path)
	c.resolveAuditPaths(abs)
	c.resolveIdentityPaths(abs)
	c.resolveContextPaths(abs)
	c.resolveGuardsPaths(abs)
	c.resolveLimitsPaths(abs)
	c.resolveResponsesPaths(abs)
	c.resolveModelsPaths(abs)
	c.MCP.Pins.Path = abs(c.MCP.Pins.Path)
}
