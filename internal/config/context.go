package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Context configures the sources of the request context that policy sees
// beyond the request itself: device/workload posture, geolocation. The
// principal's risk score comes from behaviour and needs no configuration.
type Context struct {
	// Posture is where device and workload posture comes from: a signed
	// header and/or the workload's SPIFFE ID. nil: no posture.
	Posture *Posture `yaml:"posture"`
	// Geo locates the source address in MaxMind-format databases. nil: no geo.
	Geo *Geo `yaml:"geo"`
}

// Posture configures device and workload posture.
type Posture struct {
	// Header is the request header carrying a signed posture assertion (a
	// compact JWS). Default "X-Warden-Posture". It is removed before the
	// request is forwarded. Only with jwks_file.
	Header string `yaml:"header"`
	// JWKSFile is the JSON Web Key Set of the posture service (an MDM or
	// device-posture service) whose signed assertions are accepted. Ed25519
	// (EdDSA) and P-256 (ES256) public keys only. Reloaded when it changes.
	// Unset: signed posture headers are off (the header is still removed).
	JWKSFile string `yaml:"jwks_file"`
	// Audience must be in the assertion's aud. Default "warden". Only with jwks_file.
	Audience string `yaml:"audience"`
	// MaxAge bounds an assertion's lifetime: exp - iat. Default 15m, at most
	// 24h. Only with jwks_file.
	MaxAge Duration `yaml:"max_age"`
	// ClockSkew is tolerated on exp, nbf and iat. Default 30s, at most 5m.
	// Only with jwks_file.
	ClockSkew Duration `yaml:"clock_skew"`
	// Workloads map SPIFFE IDs to posture attributes for principals proven by
	// mTLS (or whose bearer credential came with a client certificate). The
	// first matching rule applies.
	Workloads []WorkloadPosture `yaml:"workloads"`
}

// WorkloadPosture gives the posture of the workloads whose SPIFFE ID matches.
type WorkloadPosture struct {
	// SPIFFEID is a SPIFFE ID, matched exactly, or a SPIFFE ID followed by
	// "/*", which matches every ID below it (not the ID itself):
	// "spiffe://example.org/ns/prod/*".
	SPIFFEID string `yaml:"spiffe_id"`
	// Posture is the attributes policy sees as input.context.posture, e.g.
	// {env: prod, attested: true}. The key "spiffe_id" is reserved: warden
	// sets it to the matched ID.
	Posture Attributes `yaml:"posture"`
}

// Attributes are JSON-compatible posture attributes.
type Attributes map[string]any

// Geo configures MaxMind-format (.mmdb) databases: GeoLite2/GeoIP2 City or
// Country, and an ASN database. Files are reloaded when they change.
type Geo struct {
	CityDB string `yaml:"city_db"` // country (and city) of an address
	ASNDB  string `yaml:"asn_db"`  // autonomous system number and organisation
}

// Context defaults and limits.
const (
	DefaultPostureHeader    = "X-Warden-Posture"
	DefaultPostureAudience  = "warden"
	DefaultPostureMaxAge    = Duration(15 * time.Minute)
	DefaultPostureClockSkew = Duration(30 * time.Second)

	MaxPostureMaxAge    = Duration(24 * time.Hour)
	MaxPostureClockSkew = Duration(5 * time.Minute)
	// MaxPostureBytes bounds the posture attributes as compact JSON, from a
	// header or from the config.
	MaxPostureBytes = 4096
	// MaxPostureDepth bounds the nesting of posture attributes; the
	// attributes object itself is depth 1.
	MaxPostureDepth = 5
	// PostureSPIFFEIDKey is the posture attribute warden sets to the matched
	// SPIFFE ID for workload posture.
	PostureSPIFFEIDKey = "spiffe_id"

	// MaxGeoDBBytes bounds a geo database file (it is read into memory).
	MaxGeoDBBytes = 1 << 30

	maxPostureAudienceBytes = 256
)

// postureReservedHeaders may not carry a posture assertion: they carry
// credentials, framing or routing that other parts of warden own.
var postureReservedHeaders = []string{
	"Authorization", "Proxy-Authorization", "X-Api-Key", "Api-Key", "Cookie", "X-Warden-Token",
	"Host", "Connection", "Content-Length", "Content-Type", "Content-Encoding", "Transfer-Encoding",
	"Te", "Trailer", "Upgrade", "Keep-Alive", "Proxy-Connection", "X-Request-Id",
}

func (c *Config) applyContextDefaults() {
	p := c.Context.Posture
	if p == nil || p.JWKSFile == "" {
		return
	}
	if p.Header == "" {
		p.Header = DefaultPostureHeader
	}
	if p.Audience == "" {
		p.Audience = DefaultPostureAudience
	}
	if p.MaxAge == 0 {
		p.MaxAge = DefaultPostureMaxAge
	}
	if p.ClockSkew == 0 {
		p.ClockSkew = DefaultPostureClockSkew
	}
}

func (c *Config) resolveContextPaths(abs func(string) string) {
	if p := c.Context.Posture; p != nil {
		p.JWKSFile = abs(p.JWKSFile)
	}
	if g := c.Context.Geo; g != nil {
		g.CityDB = abs(g.CityDB)
		g.ASNDB = abs(g.ASNDB)
	}
}

// validateContext checks the context section; like validate, it only looks
// at the document.
func (c *Config) validateContext(v *validator) {
	if p := c.Context.Posture; p != nil {
		validatePosture(v, "context.posture", p)
	}
	if g := c.Context.Geo; g != nil && g.CityDB == "" && g.ASNDB == "" {
		v.add("context.geo", "at least one of city_db or asn_db is required (or remove geo)")
	}
}

func validatePosture(v *validator, p string, ps *Posture) {
	if ps.JWKSFile == "" {
		if len(ps.Workloads) == 0 {
			v.add(p, "set jwks_file (signed posture headers), workloads (posture by SPIFFE ID), or both; or remove posture")
		}
		for _, f := range []struct {
			name string
			set  bool
		}{{"header", ps.Header != ""}, {"audience", ps.Audience != ""}, {"max_age", ps.MaxAge != 0}, {"clock_skew", ps.ClockSkew != 0}} {
			if f.set {
				v.add(p+"."+f.name, "only used with jwks_file: signed posture headers need the posture service's keys")
			}
		}
	} else {
		if err := CheckPostureHeader(ps.Header); err != nil {
			v.add(p+".header", err.Error())
		}
		switch a := ps.Audience; {
		case strings.TrimSpace(a) == "":
			v.add(p+".audience", "must not be empty")
		case len(a) > maxPostureAudienceBytes:
			v.add(p+".audience", fmt.Sprintf("must be at most %d characters", maxPostureAudienceBytes))
		case strings.ContainsFunc(a, isSpaceOrControl):
			v.add(p+".audience", "must not contain spaces or control characters")
		}
		if d := ps.MaxAge; d <= 0 || d > MaxPostureMaxAge {
			v.add(p+".max_age", fmt.Sprintf("%s: must be greater than 0s and at most %s", d.D(), MaxPostureMaxAge.D()))
		}
		if d := ps.ClockSkew; d < 0 || d > MaxPostureClockSkew {
			v.add(p+".clock_skew", fmt.Sprintf("%s: must be between 0s and %s", d.D(), MaxPostureClockSkew.D()))
		}
	}
	seen := map[string]int{}
	for i := range ps.Workloads {
		w := &ps.Workloads[i]
		wp := fmt.Sprintf("%s.workloads[%d]", p, i)
		if w.SPIFFEID == "" {
			v.add(wp+".spiffe_id", "required: a SPIFFE ID, or one followed by \"/*\" to match every ID below it")
		} else if err := CheckSPIFFEPattern(w.SPIFFEID); err != nil {
			v.add(wp+".spiffe_id", fmt.Sprintf("%q: %v", clipValue(w.SPIFFEID), err))
		} else if j, dup := seen[w.SPIFFEID]; dup {
			v.add(wp+".spiffe_id", fmt.Sprintf("duplicate spiffe_id (also %s.workloads[%d]): the first match wins, so this rule never applies", p, j))
		} else {
			seen[w.SPIFFEID] = i
		}
		if len(w.Posture) == 0 {
			v.add(wp+".posture", "required: a mapping of posture attributes, e.g. {env: prod, attested: true}")
		} else if _, err := w.Posture.JSON(); err != nil {
			v.add(wp+".posture", err.Error())
		}
	}
}

// CheckPostureHeader checks a posture header name: an HTTP field name that
// does not carry credentials, framing or routing.
func CheckPostureHeader(h string) error {
	if !validToken(h) {
		return fmt.Errorf("%q is not a valid HTTP header name", clipValue(h))
	}
	for _, r := range postureReservedHeaders {
		if strings.EqualFold(h, r) {
			return fmt.Errorf("%q is reserved: it carries credentials, framing or routing; use a header of its own such as %q", h, DefaultPostureHeader)
		}
	}
	return nil
}

// CheckSPIFFEPattern checks a workload posture pattern: a SPIFFE ID, or a
// SPIFFE ID followed by "/*".
func CheckSPIFFEPattern(s string) error {
	base, prefix := strings.CutSuffix(s, "/*")
	if strings.Contains(base, "*") {
		return errors.New("\"*\" is only allowed as the last path segment (\".../*\")")
	}
	if _, err := spiffeid.FromString(base); err != nil {
		if prefix {
			return fmt.Errorf("not a SPIFFE ID followed by \"/*\": %v", err)
		}
		return fmt.Errorf("not a SPIFFE ID: %v", err)
	}
	return nil
}

// JSON returns the attributes as compact JSON, checking that they are
// JSON-compatible (string keys, finite numbers), at most MaxPostureBytes
// and MaxPostureDepth deep, and free of the reserved key "spiffe_id".
func (a Attributes) JSON() ([]byte, error) {
	if _, ok := a[PostureSPIFFEIDKey]; ok {
		return nil, fmt.Errorf("the key %q is reserved: warden sets it to the matched SPIFFE ID", PostureSPIFFEIDKey)
	}
	if err := checkAttrValue(map[string]any(a), 1); err != nil {
		return nil, err
	}
	b, err := json.Marshal(map[string]any(a))
	if err != nil {
		return nil, fmt.Errorf("not JSON-compatible: %v", err)
	}
	if len(b) > MaxPostureBytes {
		return nil, fmt.Errorf("%d bytes as JSON: must be at most %d", len(b), MaxPostureBytes)
	}
	return b, nil
}

// checkAttrValue walks a decoded YAML value: mappings with string keys,
// lists, and scalars that JSON can represent.
func checkAttrValue(x any, depth int) error {
	if a, ok := x.(Attributes); ok {
		x = map[string]any(a) // yaml.v3 gives nested mappings the outer map's type
	}
	switch t := x.(type) {
	case map[string]any:
		if depth > MaxPostureDepth {
			return fmt.Errorf("nested more than %d levels deep", MaxPostureDepth)
		}
		for k, val := range t {
			if k == "" {
				return errors.New("keys must not be empty")
			}
			if err := checkAttrValue(val, depth+1); err != nil {
				return err
			}
		}
	case []any:
		if depth > MaxPostureDepth {
			return fmt.Errorf("nested more than %d levels deep", MaxPostureDepth)
		}
		for _, val := range t {
			if err := checkAttrValue(val, depth+1); err != nil {
				return err
			}
		}
	case map[any]any:
		return errors.New("keys must be strings")
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return errors.New("numbers must be finite (no .nan or .inf)")
		}
	case nil, string, bool, int, int64, uint64, time.Time:
	default:
		return fmt.Errorf("values of type %T are not supported: use strings, numbers, booleans, lists and mappings", x)
	}
	return nil
}

// checkContextFiles is checkFiles for the context section: the posture
// JWKS is a JSON Web Key Set, the geo databases are readable regular files.
// The database format is checked when warden opens them.
func (c *Config) checkContextFiles(v *validator) {
	if p := c.Context.Posture; p != nil && p.JWKSFile != "" && !v.failed("context.posture.jwks_file") {
		if err := checkJWKSFile(p.JWKSFile); err != nil {
			v.add("context.posture.jwks_file", err.Error())
		}
	}
	if g := c.Context.Geo; g != nil {
		for _, f := range []struct{ field, path string }{{"context.geo.city_db", g.CityDB}, {"context.geo.asn_db", g.ASNDB}} {
			if f.path == "" || v.failed(f.field) {
				continue
			}
			if err := checkGeoDB(f.path); err != nil {
				v.add(f.field, err.Error())
			}
		}
	}
}

func checkGeoDB(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return describeOpenErr(path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Size() == 0:
		return fmt.Errorf("%s is empty", path)
	case fi.Size() > MaxGeoDBBytes:
		return fmt.Errorf("%s is larger than %d bytes", path, MaxGeoDBBytes)
	}
	return nil
}

// clipValue bounds a configured value quoted into an error message.
func clipValue(s string) string {
	const n = 96
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}
