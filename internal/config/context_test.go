package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// contextBase is a valid config with a context section; the table in
// TestContextRules edits it and expects errors on its lines (below).
const contextBase = `listeners:
  - name: public
    address: "127.0.0.1:8443"
routes:
  - name: local
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:11434
policy:
  dir: policies
context:
  posture:
    header: X-Warden-Posture
    jwks_file: posture/jwks.json
    audience: warden
    max_age: 15m
    clock_skew: 30s
    workloads:
      - spiffe_id: spiffe://example.org/ns/prod/*
        posture: {env: prod, attested: true}
      - spiffe_id: spiffe://example.org/ns/ci/sa/builder
        posture:
          env: ci
          tags: [build, signed]
  geo:
    city_db: geo/GeoLite2-City.mmdb
    asn_db: geo/GeoLite2-ASN.mmdb
`

// Lines of contextBase.
const (
	cxContext   = 12
	cxPosture   = 13
	cxHeader    = 14
	cxJWKS      = 15
	cxAudience  = 16
	cxMaxAge    = 17
	cxSkew      = 18
	cxWorkload0 = 20
	cxPosture0  = 21
	cxWorkload1 = 22
	cxPosture1  = 23
	cxGeo       = 26
	cxCity      = 27
	cxASN       = 28
)

func TestContextBaseLines(t *testing.T) {
	checkLines(t, contextBase, map[int]string{
		cxContext: "context:", cxPosture: "posture:", cxHeader: "header:", cxJWKS: "jwks_file:", cxAudience: "audience:",
		cxMaxAge: "max_age:", cxSkew: "clock_skew:", cxWorkload0: "spiffe_id: spiffe://example.org/ns/prod/*",
		cxPosture0: "posture: {env", cxWorkload1: "spiffe_id: spiffe://example.org/ns/ci", cxPosture1: "posture:",
		cxGeo: "geo:", cxCity: "city_db:", cxASN: "asn_db:",
	})
}

func TestContextRules(t *testing.T) {
	const (
		p  = "context.posture"
		w0 = "context.posture.workloads[0]"
		w1 = "context.posture.workloads[1]"
	)
	noJWKS := edit{"    header: X-Warden-Posture\n    jwks_file: posture/jwks.json\n    audience: warden\n    max_age: 15m\n    clock_skew: 30s\n", ""}
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{"valid", nil, nil},
		{"workloads only", []edit{noJWKS}, nil},
		{"jwks only", []edit{{"    workloads:\n      - spiffe_id: spiffe://example.org/ns/prod/*\n        posture: {env: prod, attested: true}\n      - spiffe_id: spiffe://example.org/ns/ci/sa/builder\n        posture:\n          env: ci\n          tags: [build, signed]\n", ""}}, nil},
		{"empty context", []edit{{contextBase[strings.Index(contextBase, "context:\n"):], "context: {}\n"}}, nil},
		{"empty posture", []edit{{contextBase[strings.Index(contextBase, "  posture:\n"):strings.Index(contextBase, "  geo:")], "  posture: {}\n"}},
			[]want{{p, cxPosture, "set jwks_file"}}},
		{"header without jwks", []edit{{"    jwks_file: posture/jwks.json\n", ""}},
			[]want{{p + ".header", cxHeader, "only used with jwks_file"}, {p + ".audience", cxAudience - 1, "only used with jwks_file"},
				{p + ".max_age", cxMaxAge - 1, "only used with jwks_file"}, {p + ".clock_skew", cxSkew - 1, "only used with jwks_file"}}},
		{"reserved header", []edit{{"header: X-Warden-Posture", "header: authorization"}}, []want{{p + ".header", cxHeader, "reserved"}}},
		{"invalid header", []edit{{"header: X-Warden-Posture", `header: "X Posture"`}}, []want{{p + ".header", cxHeader, "not a valid HTTP header name"}}},
		{"empty audience", []edit{{"audience: warden", `audience: " "`}}, []want{{p + ".audience", cxAudience, "must not be empty"}}},
		{"audience with a space", []edit{{"audience: warden", `audience: "war den"`}}, []want{{p + ".audience", cxAudience, "spaces"}}},
		{"audience too long", []edit{{"audience: warden", "audience: " + strings.Repeat("a", 257)}}, []want{{p + ".audience", cxAudience, "at most 256"}}},
		{"max_age too long", []edit{{"max_age: 15m", "max_age: 25h"}}, []want{{p + ".max_age", cxMaxAge, "at most 24h"}}},
		{"max_age negative", []edit{{"max_age: 15m", "max_age: -1m"}}, []want{{p + ".max_age", cxMaxAge, "greater than 0s"}}},
		{"clock_skew too long", []edit{{"clock_skew: 30s", "clock_skew: 6m"}}, []want{{p + ".clock_skew", cxSkew, "between 0s and 5m"}}},
		{"spiffe_id missing", []edit{{"      - spiffe_id: spiffe://example.org/ns/prod/*\n        posture", "      - posture"}},
			[]want{{w0 + ".spiffe_id", cxWorkload0, "required"}}},
		{"spiffe_id not spiffe", []edit{{"spiffe://example.org/ns/prod/*", "https://example.org/ns/prod/*"}}, []want{{w0 + ".spiffe_id", cxWorkload0, "not a SPIFFE ID followed by"}}},
		{"wildcard in the middle", []edit{{"spiffe://example.org/ns/prod/*", "spiffe://example.org/*/prod"}}, []want{{w0 + ".spiffe_id", cxWorkload0, "last path segment"}}},
		{"partial wildcard", []edit{{"spiffe://example.org/ns/prod/*", "spiffe://example.org/ns/prod*"}}, []want{{w0 + ".spiffe_id", cxWorkload0, "last path segment"}}},
		{"upper-case trust domain", []edit{{"spiffe://example.org/ns/ci/sa/builder", "spiffe://Example.org/ns/ci"}}, []want{{w1 + ".spiffe_id", cxWorkload1, "not a SPIFFE ID"}}},
		{"duplicate spiffe_id", []edit{{"spiffe://example.org/ns/ci/sa/builder", "spiffe://example.org/ns/prod/*"}}, []want{{w1 + ".spiffe_id", cxWorkload1, "duplicate"}}},
		{"trust domain wildcard", []edit{{"spiffe://example.org/ns/ci/sa/builder", "spiffe://example.org/*"}}, nil},
		{"posture missing", []edit{{"        posture: {env: prod, attested: true}\n", ""}}, []want{{w0 + ".posture", cxWorkload0, "required"}}},
		{"posture empty", []edit{{"posture: {env: prod, attested: true}", "posture: {}"}}, []want{{w0 + ".posture", cxPosture0, "required"}}},
		{"posture a string", []edit{{"posture: {env: prod, attested: true}", "posture: prod"}}, []want{{w0 + ".posture", cxPosture0, "must be a mapping"}}},
		{"posture reserved key", []edit{{"posture: {env: prod, attested: true}", "posture: {spiffe_id: x}"}}, []want{{w0 + ".posture", cxPosture0, "reserved"}}},
		{"posture non-string key", []edit{{"posture: {env: prod, attested: true}", "posture: {env: {1: a}}"}}, []want{{w0 + ".posture", cxPosture0, "keys must be strings"}}},
		{"posture NaN", []edit{{"posture: {env: prod, attested: true}", "posture: {score: .nan}"}}, []want{{w0 + ".posture", cxPosture0, "finite"}}},
		{"posture too deep", []edit{{"posture: {env: prod, attested: true}", "posture: {a: {b: {c: {d: {e: {f: 1}}}}}}"}}, []want{{w0 + ".posture", cxPosture0, "levels deep"}}},
		{"posture at max depth", []edit{{"posture: {env: prod, attested: true}", "posture: {a: {b: {c: {d: [1]}}}}"}}, nil},
		{"posture too large", []edit{{"posture: {env: prod, attested: true}", "posture: {blob: " + strings.Repeat("x", MaxPostureBytes) + "}"}},
			[]want{{w0 + ".posture", cxPosture0, "must be at most 4096"}}},
		{"posture with a timestamp", []edit{{"posture: {env: prod, attested: true}", "posture: {since: 2025-01-02}"}}, nil},
		{"geo empty", []edit{{"    city_db: geo/GeoLite2-City.mmdb\n    asn_db: geo/GeoLite2-ASN.mmdb\n", ""}, {"  geo:\n", "  geo: {}\n"}},
			[]want{{"context.geo", cxGeo, "at least one of city_db or asn_db"}}},
		{"geo asn only", []edit{{"    city_db: geo/GeoLite2-City.mmdb\n", ""}}, nil},
		{"unknown field", []edit{{"    asn_db:", "    isp_db: x\n    asn_db:"}}, []want{{"context.geo.isp_db", cxASN, "unknown field"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := applyEdits(t, contextBase, tt.edits)
			_, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tt.want)
		})
	}
}

func TestContextDefaults(t *testing.T) {
	cfg, err := Parse([]byte(applyEdits(t, contextBase, []edit{
		{"    header: X-Warden-Posture\n", ""}, {"    audience: warden\n", ""}, {"    max_age: 15m\n", ""}, {"    clock_skew: 30s\n", ""},
	})), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Context.Posture
	if p.Header != "X-Warden-Posture" || p.Audience != "warden" || p.MaxAge.D() != 15*time.Minute || p.ClockSkew.D() != 30*time.Second {
		t.Errorf("defaults: %+v", p)
	}
	if w := p.Workloads[1]; w.Posture["env"] != "ci" || len(w.Posture["tags"].([]any)) != 2 {
		t.Errorf("workload posture: %+v", w)
	}
	// Without jwks_file nothing is defaulted: the header fields would be errors.
	cfg, err = Parse([]byte(applyEdits(t, contextBase, []edit{{"    header: X-Warden-Posture\n    jwks_file: posture/jwks.json\n    audience: warden\n    max_age: 15m\n    clock_skew: 30s\n", ""}})), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Context.Posture; p.Header != "" || p.Audience != "" || p.MaxAge != 0 || p.ClockSkew != 0 {
		t.Errorf("defaults without jwks_file: %+v", p)
	}
	// No context: nothing.
	cfg, err = Parse([]byte(contextBase[:strings.Index(contextBase, "context:")]), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Context.Posture != nil || cfg.Context.Geo != nil {
		t.Errorf("context without a section: %+v", cfg.Context)
	}
}

func TestContextLoad(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "mdm-1", "x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	setup := func(t *testing.T) (dir, path string) {
		dir = t.TempDir()
		for _, d := range []string{"policies", "posture", "geo"} {
			mkdir(t, dir, d)
		}
		put(t, dir, "policies/authz.rego", "package warden\n")
		put(t, dir, "posture/jwks.json", string(jwks))
		put(t, dir, "geo/GeoLite2-City.mmdb", "database bytes; the format is checked when warden opens it")
		put(t, dir, "geo/GeoLite2-ASN.mmdb", "database bytes")
		put(t, dir, "warden.yaml", contextBase)
		return dir, filepath.Join(dir, "warden.yaml")
	}

	dir, path := setup(t)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		cfg.Context.Posture.JWKSFile: filepath.Join(dir, "posture/jwks.json"),
		cfg.Context.Geo.CityDB:       filepath.Join(dir, "geo/GeoLite2-City.mmdb"),
		cfg.Context.Geo.ASNDB:        filepath.Join(dir, "geo/GeoLite2-ASN.mmdb"),
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}

	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []want
	}{
		{"jwks missing", func(t *testing.T, dir string) { rm(t, dir, "posture/jwks.json") },
			[]want{{"context.posture.jwks_file", cxJWKS, "does not exist"}}},
		{"jwks not a key set", func(t *testing.T, dir string) { put(t, dir, "posture/jwks.json", `{"keys":[]}`) },
			[]want{{"context.posture.jwks_file", cxJWKS, "missing or empty"}}},
		{"city db missing", func(t *testing.T, dir string) { rm(t, dir, "geo/GeoLite2-City.mmdb") },
			[]want{{"context.geo.city_db", cxCity, "does not exist"}}},
		{"asn db empty", func(t *testing.T, dir string) { put(t, dir, "geo/GeoLite2-ASN.mmdb", "") },
			[]want{{"context.geo.asn_db", cxASN, "is empty"}}},
		{"city db a directory", func(t *testing.T, dir string) {
			rm(t, dir, "geo/GeoLite2-City.mmdb")
			mkdir(t, dir, "geo/GeoLite2-City.mmdb")
		}, []want{{"context.geo.city_db", cxCity, "not a regular file"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := setup(t)
			tt.setup(t, dir)
			_, err := Load(path)
			checkErrors(t, err, tt.want)
		})
	}
}

func TestCheckSPIFFEPattern(t *testing.T) {
	for s, ok := range map[string]bool{
		"spiffe://example.org/ns/prod/sa/app": true,
		"spiffe://example.org/ns/prod/*":      true,
		"spiffe://example.org/*":              true,
		"spiffe://example.org":                true,
		"spiffe://example.org/":               false,
		"spiffe://example.org/ns//x":          false,
		"spiffe://example.org/ns/*/x":         false,
		"spiffe://*":                          false,
		"spiffe://example.org/a/**":           false,
		"/*":                                  false,
		"*":                                   false,
		"":                                    false,
		"SPIFFE://example.org/x":              false,
	} {
		if err := CheckSPIFFEPattern(s); (err == nil) != ok {
			t.Errorf("CheckSPIFFEPattern(%q) = %v, want ok=%v", s, err, ok)
		}
	}
}
