package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"gopkg.in/yaml.v3"
)

// base is a valid config; the table below edits it and expects errors on
// its line numbers (shown on the right).
const base = `listeners:
  - name: public
    address: "127.0.0.1:8443"
    tls:
      mode: self_signed
    read_timeout: 60s
    max_header_bytes: 65536
    max_body_bytes: 4194304
admin:
  address: "127.0.0.1:9090"
routes:
  - name: openai
    prefix: /v1/
    api: openai
    segment: inference
    upstream:
      url: https://api.openai.com
      timeout: 60s
      credential:
        env: OPENAI_API_KEY
  - name: local
    prefix: /local/
    api: http
    segment: training
    upstream:
      url: http://127.0.0.1:11434
keys:
  path: keys.json
policy:
  dir: policies
audit:
  path: audit.log
`

// Line numbers of base, for readability of the table.
const (
	lListener0     = 2
	lAddress       = 3
	lTLS           = 4
	lMode          = 5
	lReadTimeout   = 6
	lMaxHeader     = 7
	lMaxBody       = 8
	lAdminAddress  = 10
	lRoutes        = 11
	lRoute0        = 12
	lPrefix        = 13
	lAPI           = 14
	lSegment       = 15
	lUpstream      = 16
	lURL           = 17
	lTimeout       = 18
	lCredential    = 19
	lEnv           = 20
	lRoute1        = 21
	lPrefix1       = 22
	lURL1          = 26
	lAuditPath     = 32
	lAfterListener = 9 // "admin:"; listeners inserted before it start here
)

type edit struct{ old, new string }

type want struct {
	field string
	line  int
	msg   string // substring of the message
}

func applyEdits(t *testing.T, doc string, edits []edit) string {
	t.Helper()
	for _, e := range edits {
		if n := strings.Count(doc, e.old); n != 1 {
			t.Fatalf("edit %q matches %d times in the base config, want 1", e.old, n)
		}
		doc = strings.Replace(doc, e.old, e.new, 1)
	}
	return doc
}

// checkErrors asserts that err is a *ValidationError holding exactly the
// wanted errors (field, line and a message substring), in any order.
func checkErrors(t *testing.T, err error, wants []want) {
	t.Helper()
	if len(wants) == 0 {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v (%T), want *ValidationError", err, err)
	}
	got := ve.Errors
	for _, w := range wants {
		found := false
		for _, fe := range got {
			if fe.Field == w.field && fe.Line == w.line && strings.Contains(fe.Message, w.msg) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("missing error {field %q, line %d, message containing %q}", w.field, w.line, w.msg)
		}
	}
	if len(got) != len(wants) || t.Failed() {
		t.Errorf("got %d errors, want %d:\n%v", len(got), len(wants), err)
	}
}

func TestParseRules(t *testing.T) {
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{name: "base is valid"},

		// runtime
		{"gc percent too small", []edit{{"admin:\n", "runtime:\n  gc_percent: 5\nadmin:\n"}},
			[]want{{"runtime.gc_percent", lAfterListener + 1, "between 10 and 10000"}}},
		{"gc off and a memory limit ok", []edit{{"admin:\n", "runtime:\n  gc_percent: -1\n  memory_limit_bytes: 1073741824\nadmin:\n"}}, nil},
		{"memory limit too small", []edit{{"admin:\n", "runtime:\n  memory_limit_bytes: 1000\nadmin:\n"}},
			[]want{{"runtime.memory_limit_bytes", lAfterListener + 1, "at least 67108864"}}},
		{"runtime unknown field", []edit{{"admin:\n", "runtime:\n  gogc: 400\nadmin:\n"}},
			[]want{{"runtime.gogc", lAfterListener + 1, "unknown field"}}},

		// listeners
		{"no listeners", []edit{{"listeners:\n  - name: public\n    address: \"127.0.0.1:8443\"\n    tls:\n      mode: self_signed\n    read_timeout: 60s\n    max_header_bytes: 65536\n    max_body_bytes: 4194304\n", "listeners: []\n"}},
			[]want{{"listeners", 1, "at least one listener"}}},
		{"address missing", []edit{{`address: "127.0.0.1:8443"`, `address: ""`}},
			[]want{{"listeners[0].address", lAddress, "required"}}},
		{"address without port", []edit{{`address: "127.0.0.1:8443"`, `address: "127.0.0.1"`}},
			[]want{{"listeners[0].address", lAddress, "missing port"}}},
		{"address port not numeric", []edit{{`address: "127.0.0.1:8443"`, `address: "127.0.0.1:https"`}},
			[]want{{"listeners[0].address", lAddress, "port must be a number"}}},
		{"address port too large", []edit{{`address: "127.0.0.1:8443"`, `address: "127.0.0.1:65536"`}},
			[]want{{"listeners[0].address", lAddress, "between 0 and 65535"}}},
		{"address bad host", []edit{{`address: "127.0.0.1:8443"`, `address: "bad_host!:8443"`}},
			[]want{{"listeners[0].address", lAddress, "neither an IP address nor a valid host name"}}},
		{"address host name ok", []edit{{`address: "127.0.0.1:8443"`, `address: "localhost:8443"`}}, nil},
		{"address all interfaces ok", []edit{{`address: "127.0.0.1:8443"`, `address: ":8443"`}}, nil},
		{"duplicate listener name and address", []edit{{"admin:\n", "  - name: public\n    address: \"127.0.0.1:8443\"\nadmin:\n"}},
			[]want{
				{"listeners[1].name", lAfterListener, "duplicate listener name"},
				{"listeners[1].address", lAfterListener + 1, "conflicts with listeners[0].address"},
			}},
		{"wildcard address conflicts", []edit{{"admin:\n", "  - name: other\n    address: \"0.0.0.0:8443\"\nadmin:\n"}},
			[]want{{"listeners[1].address", lAfterListener + 1, "conflicts"}}},
		{"same port other family ok", []edit{{"admin:\n", "  - name: other\n    address: \"[::1]:8443\"\nadmin:\n"}}, nil},
		{"port 0 twice ok", []edit{
			{`address: "127.0.0.1:8443"`, `address: "127.0.0.1:0"`},
			{"admin:\n", "  - name: other\n    address: \"127.0.0.1:0\"\nadmin:\n"},
		}, nil},
		{"default listener names", []edit{{"  - name: public\n", "  - name: listener1\n"}, {"admin:\n", "  - address: \"127.0.0.1:8444\"\nadmin:\n"}},
			[]want{{"listeners[1].name", lAfterListener, "duplicate listener name \"listener1\""}}},
		{"listener name format", []edit{{"name: public", "name: Public Listener"}},
			[]want{{"listeners[0].name", lListener0, "lower case"}}},
		{"tls unknown mode", []edit{{"mode: self_signed", "mode: https"}},
			[]want{{"listeners[0].tls.mode", lMode, `unknown mode "https"`}}},
		{"tls files without cert and key", []edit{{"mode: self_signed", "mode: files"}},
			[]want{
				{"listeners[0].tls.cert_file", lTLS, "required with mode files"},
				{"listeners[0].tls.key_file", lTLS, "required with mode files"},
			}},
		{"tls files implied by cert_file", []edit{{"mode: self_signed", "cert_file: tls.crt"}},
			[]want{{"listeners[0].tls.key_file", lTLS, "required with mode files"}}},
		{"tls cert_file with self_signed", []edit{{"mode: self_signed", "mode: self_signed\n      cert_file: tls.crt"}},
			[]want{{"listeners[0].tls.cert_file", lMode + 1, "only used with mode files"}}},
		{"tls off ok", []edit{{"mode: self_signed", "mode: off"}}, nil},
		{"negative timeout", []edit{{"read_timeout: 60s", "read_timeout: -5s"}},
			[]want{{"listeners[0].read_timeout", lReadTimeout, "greater than 0"}}},
		{"duration without unit", []edit{{"read_timeout: 60s", "read_timeout: 60"}},
			[]want{{"listeners[0].read_timeout", lReadTimeout, "invalid duration"}}},
		{"negative header and idle timeouts", []edit{{"read_timeout: 60s", "read_header_timeout: -1s\n    idle_timeout: -1ms"}},
			[]want{
				{"listeners[0].read_header_timeout", lReadTimeout, "greater than 0"},
				{"listeners[0].idle_timeout", lReadTimeout + 1, "greater than 0"},
			}},
		{"max_header_bytes too large", []edit{{"max_header_bytes: 65536", "max_header_bytes: 1048577"}},
			[]want{{"listeners[0].max_header_bytes", lMaxHeader, "between 1 and 1048576"}}},
		{"max_header_bytes 1 MiB ok", []edit{{"max_header_bytes: 65536", "max_header_bytes: 1048576"}}, nil},
		{"max_header_bytes negative", []edit{{"max_header_bytes: 65536", "max_header_bytes: -1"}},
			[]want{{"listeners[0].max_header_bytes", lMaxHeader, "between 1 and"}}},
		{"max_body_bytes too large", []edit{{"max_body_bytes: 4194304", "max_body_bytes: 1073741825"}},
			[]want{{"listeners[0].max_body_bytes", lMaxBody, "between 1 and 1073741824"}}},
		{"max_body_bytes negative", []edit{{"max_body_bytes: 4194304", "max_body_bytes: -10"}},
			[]want{{"listeners[0].max_body_bytes", lMaxBody, "between 1 and"}}},
		{"max_header_bytes fractional", []edit{{"max_header_bytes: 65536", "max_header_bytes: 1.5"}},
			[]want{{"listeners[0].max_header_bytes", lMaxHeader, "whole number"}}},
		{"max_body_bytes overflows", []edit{{"max_body_bytes: 4194304", "max_body_bytes: 99999999999999999999"}},
			[]want{{"listeners[0].max_body_bytes", lMaxBody, "whole number"}}},
		{"max_body_bytes exponent", []edit{{"max_body_bytes: 4194304", "max_body_bytes: 4e6"}},
			[]want{{"listeners[0].max_body_bytes", lMaxBody, "whole number"}}},
		{"max_header_bytes not a number", []edit{{"max_header_bytes: 65536", "max_header_bytes: 64KiB"}},
			[]want{{"listeners[0].max_header_bytes", lMaxHeader, "must be an integer, not a string"}}},

		// admin
		{"admin off ok", []edit{{`address: "127.0.0.1:9090"`, `address: "off"`}}, nil},
		{"admin bad address", []edit{{`address: "127.0.0.1:9090"`, `address: "localhost"`}},
			[]want{{"admin.address", lAdminAddress, `or "off"`}}},
		{"admin same as listener", []edit{{`address: "127.0.0.1:9090"`, `address: "127.0.0.1:8443"`}},
			[]want{{"admin.address", lAdminAddress, "conflicts with listeners[0].address"}}},

		// routes
		{"no routes", []edit{{"routes:\n", "routes: []\nx-routes:\n"}},
			[]want{
				{"routes", lRoutes, "at least one route"},
				{"x-routes", lRoutes + 1, "unknown field"},
			}},
		{"routes not a list", []edit{{"routes:\n", "routes: {}\nx-routes:\n"}},
			[]want{
				{"routes", lRoutes, "must be a list, not a mapping"},
				{"x-routes", lRoutes + 1, "unknown field"},
			}},
		{"route name missing", []edit{{"  - name: openai\n    prefix: /v1/\n", "  - prefix: /v1/\n"}},
			[]want{{"routes[0].name", lRoute0, "required"}}},
		{"route name invalid", []edit{{"name: openai", "name: OpenAI"}},
			[]want{{"routes[0].name", lRoute0, "lower case"}}},
		{"route name too long", []edit{{"name: openai", "name: " + strings.Repeat("a", 64)}},
			[]want{{"routes[0].name", lRoute0, "1-63"}}},
		{"route name duplicate", []edit{{"name: local", "name: openai"}},
			[]want{{"routes[1].name", lRoute1, "duplicate route name"}}},
		{"prefix without leading slash", []edit{{"prefix: /v1/", "prefix: v1/"}},
			[]want{{"routes[0].prefix", lPrefix, "start and end"}}},
		{"prefix without trailing slash", []edit{{"prefix: /v1/", "prefix: /v1"}},
			[]want{{"routes[0].prefix", lPrefix, "start and end"}}},
		{"prefix with dot dot", []edit{{"prefix: /v1/", "prefix: /v1/../"}},
			[]want{{"routes[0].prefix", lPrefix, `".."`}}},
		{"prefix with double slash", []edit{{"prefix: /v1/", "prefix: /v1//x/"}},
			[]want{{"routes[0].prefix", lPrefix, `"//"`}}},
		{"prefix with dot segment", []edit{{"prefix: /v1/", "prefix: /./v1/"}},
			[]want{{"routes[0].prefix", lPrefix, `"."`}}},
		{"prefix with percent", []edit{{"prefix: /v1/", "prefix: /v%201/"}},
			[]want{{"routes[0].prefix", lPrefix, "'%' is not allowed"}}},
		{"prefix with space", []edit{{"prefix: /v1/", `prefix: "/v 1/"`}},
			[]want{{"routes[0].prefix", lPrefix, "' ' is not allowed"}}},
		{"prefix with query", []edit{{"prefix: /v1/", `prefix: "/v1?x/"`}},
			[]want{{"routes[0].prefix", lPrefix, "'?' is not allowed"}}},
		{"prefix root ok", []edit{{"prefix: /v1/", "prefix: /"}}, nil},
		{"prefix missing", []edit{{"    prefix: /v1/\n", ""}},
			[]want{{"routes[0].prefix", lRoute0, "required"}}},
		{"prefix duplicate", []edit{{"prefix: /local/", "prefix: /v1/"}},
			[]want{{"routes[1].prefix", lPrefix1, "duplicate prefix"}}},
		{"api unknown", []edit{{"api: openai", "api: grpc"}},
			[]want{{"routes[0].api", lAPI, `unknown api "grpc"`}}},
		{"segment missing", []edit{{"    segment: inference\n", ""}},
			[]want{{"routes[0].segment", lRoute0, "required"}}},
		{"segment invalid", []edit{{"segment: inference", "segment: infer.ence"}},
			[]want{{"routes[0].segment", lSegment, "lower case"}}},
		{"url missing", []edit{{"      url: https://api.openai.com\n", ""}},
			[]want{{"routes[0].upstream.url", lUpstream, "required"}}},
		{"url scheme", []edit{{"url: https://api.openai.com", "url: ftp://api.openai.com"}},
			[]want{{"routes[0].upstream.url", lURL, "http or https"}}},
		{"url no scheme", []edit{{"url: https://api.openai.com", "url: api.openai.com"}},
			[]want{{"routes[0].upstream.url", lURL, "http or https"}}},
		{"url userinfo", []edit{{"url: https://api.openai.com", "url: https://user:hunter2@api.openai.com"}},
			[]want{{"routes[0].upstream.url", lURL, "user info"}}},
		{"url query", []edit{{"url: https://api.openai.com", "url: https://api.openai.com/v1?key=x"}},
			[]want{{"routes[0].upstream.url", lURL, "query"}}},
		{"url empty query", []edit{{"url: https://api.openai.com", "url: https://api.openai.com/v1?"}},
			[]want{{"routes[0].upstream.url", lURL, "query"}}},
		{"url fragment", []edit{{"url: https://api.openai.com", "url: 'https://api.openai.com/#x'"}},
			[]want{{"routes[0].upstream.url", lURL, "fragment"}}},
		{"url no host", []edit{{"url: https://api.openai.com", "url: https:///v1"}},
			[]want{{"routes[0].upstream.url", lURL, "host"}}},
		{"url bad port", []edit{{"url: https://api.openai.com", "url: https://api.openai.com:99999"}},
			[]want{{"routes[0].upstream.url", lURL, "port"}}},
		{"url unparsable", []edit{{"url: https://api.openai.com", "url: 'https://api.openai.com/%zz'"}},
			[]want{{"routes[0].upstream.url", lURL, "not a valid URL"}}},
		{"url with path ok", []edit{{"url: https://api.openai.com", "url: https://example.com/openai/v1"}}, nil},
		{"timeout negative", []edit{{"      timeout: 60s", "      timeout: -1s"}},
			[]want{{"routes[0].upstream.timeout", lTimeout, "greater than 0"}}},
		{"dial_timeout negative", []edit{{"      timeout: 60s", "      timeout: 60s\n      dial_timeout: -3s"}},
			[]want{{"routes[0].upstream.dial_timeout", lTimeout + 1, "greater than 0"}}},
		{"ca_file with http", []edit{{"url: http://127.0.0.1:11434\n", "url: http://127.0.0.1:11434\n      ca_file: ca.pem\n"}},
			[]want{{"routes[1].upstream.ca_file", lURL1 + 1, "only used with an https upstream"}}},
		{"ca_file with https ok", []edit{{"      timeout: 60s", "      ca_file: ca.pem"}}, nil},
		{"credential env and file", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        file: key.txt"}},
			[]want{{"routes[0].upstream.credential", lCredential, "exactly one of env or file"}}},
		{"credential neither", []edit{{"env: OPENAI_API_KEY", "header: X-Api-Key"}},
			[]want{{"routes[0].upstream.credential", lCredential, "exactly one of env or file"}}},
		{"credential file ok", []edit{{"env: OPENAI_API_KEY", "file: secrets/openai.key"}}, nil},
		{"credential env name invalid", []edit{{"env: OPENAI_API_KEY", "env: 1KEY"}},
			[]want{{"routes[0].upstream.credential.env", lEnv, "name of an environment variable"}}},
		{"credential header not a token", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: X Api Key"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "valid HTTP header name"}}},
		{"credential header empty colon", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: 'X-Key:'"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "valid HTTP header name"}}},
		{"credential header host", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: host"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "Host cannot carry a credential"}}},
		{"credential header te", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: TE"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "cannot carry a credential"}}},
		{"credential header proxy-authorization", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: Proxy-Authorization"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "cannot carry a credential"}}},
		{"credential header transfer-encoding", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: Transfer-Encoding"}},
			[]want{{"routes[0].upstream.credential.header", lEnv + 1, "cannot carry a credential"}}},
		{"credential custom header ok", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        header: x-api-key"}}, nil},
		{"credential scheme with space", []edit{{"env: OPENAI_API_KEY", "env: OPENAI_API_KEY\n        scheme: Bearer hunter2"}},
			[]want{{"routes[0].upstream.credential.scheme", lEnv + 1, "authentication scheme"}}},

		// keys, policy, audit
		{"policy dir missing", []edit{{"policy:\n  dir: policies\n", ""}},
			[]want{{"policy.dir", 0, "required"}}},
		{"policy dir empty", []edit{{"dir: policies", "dir: \"\""}},
			[]want{{"policy.dir", 30, "required"}}},
		{"audit path equals keys path", []edit{{"path: audit.log", "path: ./keys.json"}},
			[]want{{"audit.path", lAuditPath, "same file as keys.path"}}},

		// decoding
		{"unknown field", []edit{{"api: openai", "api: openai\n    bogus: 1"}},
			[]want{{"routes[0].bogus", lAPI + 1, `unknown field "bogus"`}}},
		{"misspelt field", []edit{{`address: "127.0.0.1:8443"`, `adress: "127.0.0.1:8443"`}},
			[]want{
				{"listeners[0].adress", lAddress, `did you mean "address"`},
				{"listeners[0].address", lListener0, "required"},
			}},
		{"duplicate key", []edit{{"  - name: public\n", "  - name: public\n    name: again\n"}},
			[]want{{"listeners[0].name", lListener0 + 1, "duplicate key (first set at line 2)"}}},
		{"upstream not a mapping", []edit{{"    upstream:\n      url: http://127.0.0.1:11434\n", "    upstream: http://127.0.0.1:11434\n"}},
			[]want{{"routes[1].upstream", lURL1 - 1, "must be a mapping, not a string"}}},
		{"bool field not a bool", []edit{{"api: openai", "api: openai\n    strip_prefix: sometimes"}},
			[]want{{"routes[0].strip_prefix", lAPI + 1, "true or false"}}},
		{"several errors at once", []edit{
			{"mode: self_signed", "mode: plain"},
			{"prefix: /v1/", "prefix: /v1"},
			{"url: http://127.0.0.1:11434", "url: gopher://127.0.0.1"},
		}, []want{
			{"listeners[0].tls.mode", lMode, "unknown mode"},
			{"routes[0].prefix", lPrefix, "start and end"},
			{"routes[1].upstream.url", lURL1, "http or https"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := applyEdits(t, base, tt.edits)
			cfg, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tt.want)
			if err == nil && cfg == nil {
				t.Fatal("nil config without an error")
			}
			if err != nil && cfg != nil {
				t.Fatal("config returned with an error")
			}
		})
	}
}

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"empty", "", []want{{"", 0, "empty document"}}},
		{"only comments", "# nothing\n\n# here\n", []want{{"", 0, "empty document"}}},
		{"null", "~\n", []want{{"", 0, "empty document"}}},
		{"bare separator", "---\n", []want{{"", 0, "empty document"}}},
		{"top-level list", "- a\n- b\n", []want{{"", 1, "top level must be a mapping"}}},
		{"top-level scalar", "hello\n", []want{{"", 1, "top level must be a mapping"}}},
		{"two documents", base + "---\nlisteners: []\n", []want{{"", 33, "more than one YAML document"}}},
		{"trailing empty document", base + "---\n", []want{{"", 33, "more than one YAML document"}}},
		{"broken second document", base + "---\n: : :\n", []want{{"", 33, "more than one YAML document"}}},
		{"error in a merged value", "listeners:\n  - &l\n    address: \"127.0.0.1:8443\"\n    max_body_bytes: -1\n  - <<: *l\n    name: second\n" + base[strings.Index(base, "admin:"):],
			[]want{
				{"listeners[0].max_body_bytes", 4, "between 1 and"},
				{"listeners[1].address", 5, "conflicts"},
				{"listeners[1].max_body_bytes", 5, "between 1 and"},
			}},
		{"leading separator ok", "---\n" + base, nil},
		{"document end marker ok", base + "...\n", nil},
		{"syntax error", "listeners:\n  - address: x\n    name: a: b\n", []want{{"", 3, "invalid YAML"}}},
		{"tab indentation", "listeners:\n\t- address: x\n", []want{{"", 2, "invalid YAML"}}},
		{"alias bomb", aliasBomb(), []want{{"", 0, "more than 100000 nodes"}}},
		{"self-referencing anchor", "listeners: &l [*l]\n", []want{{"", 1, "refers to itself"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.doc), "warden.yaml")
			checkErrors(t, err, tt.want)
			if (err == nil) == (cfg == nil) {
				t.Fatalf("cfg = %v, err = %v: want exactly one", cfg, err)
			}
		})
	}
}

// aliasBomb is a "billion laughs" document.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		b.WriteString("a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]\n")
	}
	b.WriteString("routes: [*a8]\n")
	return b.String()
}

func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"valid.yaml", nil},
		{"valid_anchors.yaml", nil},
		{"minimal.yaml", nil},
		{"invalid_empty.yaml", []want{{"", 0, "empty document"}}},
		{"invalid_syntax.yaml", []want{{"", 2, "invalid YAML"}}},
		{"invalid_multidoc.yaml", []want{{"", 11, "more than one YAML document"}}},
		{"invalid_unknown.yaml", []want{
			{"listeners[0].adress", 2, `did you mean "address"`},
			{"listeners[0].address", 2, "required"},
			{"routes[0].upstream.timout", 9, `did you mean "timeout"`},
			{"loging", 12, "known fields: listeners, admin, routes, keys, policy, audit"},
		}},
		{"invalid_types.yaml", []want{
			{"listeners[0].max_header_bytes", 3, "must be an integer"},
			{"listeners[0].idle_timeout", 4, "duration must be a string"},
			{"listeners[0].read_timeout", 5, "invalid duration \"30\""},
			{"routes[0].strip_prefix", 10, "true or false"},
			{"routes[0].upstream", 11, "must be a mapping"},
		}},
		{"invalid_many.yaml", []want{
			{"listeners[0].address", 4, "missing port"},
			{"listeners[0].tls.mode", 6, "unknown mode"},
			{"listeners[0].read_timeout", 7, "greater than 0"},
			{"listeners[1].name", 8, "duplicate listener name"},
			{"listeners[1].max_body_bytes", 10, "between 1 and"},
			{"admin.address", 12, "conflicts with listeners[1].address"},
			{"routes[0].name", 14, "lower case"},
			{"routes[0].segment", 14, "required"},
			{"routes[0].prefix", 15, "start and end"},
			{"routes[0].api", 16, "unknown api"},
			{"routes[0].upstream.url", 18, "user info"},
			{"routes[0].upstream.credential.env", 20, "environment variable"},
			{"routes[0].upstream.credential.header", 21, "Connection cannot carry"},
			{"routes[0].upstream.credential.bogus", 22, "unknown field"},
			{"policy.dir", 23, "required"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, tt.file)
			checkErrors(t, err, tt.want)
			if err == nil {
				return
			}
			// Secrets never appear in messages, and errors come in line order.
			if msg := err.Error(); strings.Contains(msg, "hunter2") {
				t.Errorf("error leaks a secret:\n%s", msg)
			}
			var ve *ValidationError
			errors.As(err, &ve)
			for i := 1; i < len(ve.Errors); i++ {
				if a, b := ve.Errors[i-1].Line, ve.Errors[i].Line; b != 0 && (a == 0 || a > b) {
					t.Errorf("errors not in line order: %d before %d", a, b)
				}
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	data, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listeners[0]
	if l.Name != "listener0" || l.TLS.Mode != TLSModeSelfSigned || l.ReadHeaderTimeout.D() != 10*time.Second ||
		l.ReadTimeout.D() != time.Minute || l.IdleTimeout.D() != 2*time.Minute ||
		l.MaxHeaderBytes != 64<<10 || l.MaxBodyBytes != 4<<20 {
		t.Errorf("listener defaults: %+v", l)
	}
	r := cfg.Routes[0]
	if r.API != APIOpenAI || r.StripPrefix || r.Upstream.Timeout.D() != time.Minute || r.Upstream.DialTimeout.D() != 5*time.Second {
		t.Errorf("route defaults: %+v", r)
	}
	if cfg.Admin.Address != "127.0.0.1:9090" || cfg.Keys.Path != "keys.json" || cfg.Audit.Path != "audit.log" {
		t.Errorf("defaults: admin %q keys %q audit %q", cfg.Admin.Address, cfg.Keys.Path, cfg.Audit.Path)
	}
	if cfg.Policy.Dir != "policies" || cfg.Dir != "" {
		t.Errorf("Parse must not resolve paths: policy.dir %q, Dir %q", cfg.Policy.Dir, cfg.Dir)
	}

	// Credential header and scheme defaults.
	doc := applyEdits(t, base, []edit{{"    upstream:\n      url: http://127.0.0.1:11434\n",
		"    upstream:\n      url: http://127.0.0.1:11434\n      credential:\n        header: api-key\n        env: LOCAL_KEY\n"}})
	cfg, err = Parse([]byte(doc), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Routes[0].Upstream.Credential; c.Header != "Authorization" || c.Scheme != "Bearer" {
		t.Errorf("credential defaults: %+v", c)
	}
	if c := cfg.Routes[1].Upstream.Credential; c.Header != "api-key" || c.Scheme != "" {
		t.Errorf("custom header must have no default scheme: %+v", c)
	}

	// The full fixture keeps every value it sets.
	data, err = os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = Parse(data, "valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l = cfg.Listeners[0]
	if l.ReadHeaderTimeout.D() != 5*time.Second || l.ReadTimeout.D() != 2*time.Minute || l.IdleTimeout.D() != 90*time.Second ||
		l.MaxHeaderBytes != 32768 || l.MaxBodyBytes != 8388608 || l.TLS.CertFile != "certs/tls.crt" {
		t.Errorf("listener values: %+v", l)
	}
	if cfg.Listeners[1].TLS.Mode != TLSModeOff {
		t.Errorf("mode off decoded as %q", cfg.Listeners[1].TLS.Mode)
	}
	if r := cfg.Routes[1]; !r.StripPrefix || r.API != APIHTTP || r.Upstream.Credential.File != "secrets/azure.key" {
		t.Errorf("route values: %+v", r)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		fe   FieldError
		want string
	}{
		{FieldError{"w.yaml", 7, "routes[0].name", "required"}, "w.yaml:7: routes[0].name: required"},
		{FieldError{"w.yaml", 0, "policy.dir", "required"}, "w.yaml: policy.dir: required"},
		{FieldError{"w.yaml", 3, "", "invalid YAML: x"}, "w.yaml:3: invalid YAML: x"},
	} {
		if got := tt.fe.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	one := &ValidationError{Errors: []FieldError{{"w.yaml", 7, "a", "b"}}}
	if got, want := one.Error(), "config: invalid: w.yaml:7: a: b"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	two := &ValidationError{Errors: []FieldError{{"w.yaml", 7, "a", "b"}, {"w.yaml", 9, "c", "d"}}}
	if got, want := two.Error(), "config: invalid (2 problems)\n  w.yaml:7: a: b\n  w.yaml:9: c: d"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLineOf(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(base), &root); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{
		"listeners":                         1,
		"listeners[0]":                      lListener0,
		"listeners[0].tls":                  lTLS,
		"listeners[0].tls.mode":             lMode,
		"listeners[0].tls.cert_file":        lTLS, // absent: its parent
		"listeners[5].address":              1,
		"routes[1].upstream.url":            lURL1,
		"routes[0].upstream.credential":     lCredential,
		"routes[0].upstream.credential.env": lEnv,
		"nothing.here":                      0,
		"":                                  0,
		"routes[x]":                         0,
	} {
		if got := lineOf(&root, path); got != want {
			t.Errorf("lineOf(%q) = %d, want %d", path, got, want)
		}
	}
	if got := lineOf(nil, "listeners"); got != 0 {
		t.Errorf("lineOf(nil) = %d", got)
	}
}

// TestDocExamples keeps the YAML examples in docs/config.md valid.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/config.md")
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("docs/config.md not found")
	}
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```yaml\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("no yaml examples in docs/config.md")
	}
	for i, b := range blocks {
		end := strings.Index(b, "```")
		if end < 0 {
			t.Fatalf("example %d is not closed", i)
		}
		if _, err := Parse([]byte(b[:end]), "docs/config.md example"); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, perm os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), perm); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("WARDEN_TEST_SECRET", "sk-test-1234\n")
	t.Setenv("WARDEN_TEST_EMPTY", "")
	t.Setenv("WARDEN_TEST_NEWLINES", "\r\n")
	t.Setenv("WARDEN_TEST_CTL", "sk-a\nX-Injected: 1")
	os.Unsetenv("WARDEN_TEST_UNSET")

	tests := []struct {
		name    string
		cred    *Credential
		want    string
		wantErr string
	}{
		{"env", &Credential{Env: "WARDEN_TEST_SECRET"}, "sk-test-1234", ""},
		{"env unset", &Credential{Env: "WARDEN_TEST_UNSET"}, "", "env WARDEN_TEST_UNSET is not set"},
		{"env empty", &Credential{Env: "WARDEN_TEST_EMPTY"}, "", "env WARDEN_TEST_EMPTY is empty"},
		{"env only newline", &Credential{Env: "WARDEN_TEST_NEWLINES"}, "", "is empty"},
		{"env header injection", &Credential{Env: "WARDEN_TEST_CTL"}, "", "control character"},
		{"file lf", &Credential{File: write("lf", "sk-file-1\n", 0o600)}, "sk-file-1", ""},
		{"file crlf", &Credential{File: write("crlf", "sk-file-2\r\n", 0o600)}, "sk-file-2", ""},
		{"file no newline", &Credential{File: write("plain", "sk-file-3", 0o600)}, "sk-file-3", ""},
		{"file keeps inner spaces", &Credential{File: write("sp", "a b\n", 0o600)}, "a b", ""},
		{"file empty", &Credential{File: write("empty", "", 0o600)}, "", "is empty"},
		{"file only newline", &Credential{File: write("nl", "\n", 0o600)}, "", "is empty"},
		{"file two lines", &Credential{File: write("two", "sk-x\nsk-y\n", 0o600)}, "", "control character"},
		{"file missing", &Credential{File: filepath.Join(dir, "missing")}, "", "does not exist"},
		{"file is a directory", &Credential{File: dir}, "", "not a regular file"},
		{"file too large", &Credential{File: write("big", strings.Repeat("k", maxSecretBytes+1), 0o600)}, "", "larger than"},
		{"both", &Credential{Env: "WARDEN_TEST_SECRET", File: "x"}, "", "both env and file"},
		{"neither", &Credential{}, "", "neither env nor file"},
		{"nil", nil, "", "none configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cred.Secret()
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("Secret() = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Secret() error = %v, want one containing %q", err, tt.wantErr)
			}
			if got != "" {
				t.Errorf("Secret() returned %q with an error", got)
			}
			for _, s := range []string{"sk-", "X-Injected"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks the secret: %v", err)
				}
			}
		})
	}

	if os.Geteuid() != 0 { // root reads anything
		p := write("unreadable", "sk-z\n", 0o000)
		if _, err := (&Credential{File: p}).Secret(); err == nil || !strings.Contains(err.Error(), "not readable") {
			t.Errorf("unreadable file: %v", err)
		}
	}
}

// testDir lays out testdata/valid.yaml with everything it points at and
// returns the config path.
func testDir(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t)
	files := map[string]string{
		"warden.yaml":       string(data),
		"certs/tls.crt":     string(certPEM),
		"certs/tls.key":     string(keyPEM),
		"certs/ca.pem":      string(certPEM),
		"secrets/azure.key": "azure-secret-value\n",
		"policies/x.rego":   "package warden\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("WARDEN_TEST_OPENAI_KEY", "openai-secret-value")
	return dir, filepath.Join(dir, "warden.yaml")
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "warden test"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func TestLoad(t *testing.T) {
	dir, path := testDir(t)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != dir {
		t.Errorf("Dir = %q, want %q", cfg.Dir, dir)
	}
	for got, want := range map[string]string{
		cfg.Listeners[0].TLS.CertFile:            filepath.Join(dir, "certs/tls.crt"),
		cfg.Listeners[0].TLS.KeyFile:             filepath.Join(dir, "certs/tls.key"),
		cfg.Routes[0].Upstream.CAFile:            filepath.Join(dir, "certs/ca.pem"),
		cfg.Routes[1].Upstream.Credential.File:   filepath.Join(dir, "secrets/azure.key"),
		cfg.Keys.Path:                            filepath.Join(dir, "data/keys.json"),
		cfg.Policy.Dir:                           filepath.Join(dir, "policies"),
		cfg.Audit.Path:                           filepath.Join(dir, "data/audit.log"),
		cfg.Routes[0].Upstream.Credential.Env:    "WARDEN_TEST_OPENAI_KEY",
		cfg.Routes[1].Upstream.Credential.Scheme: "",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if s, err := cfg.Routes[0].Upstream.Credential.Secret(); err != nil || s != "openai-secret-value" {
		t.Errorf("env secret = %q, %v", s, err)
	}
	if s, err := cfg.Routes[1].Upstream.Credential.Secret(); err != nil || s != "azure-secret-value" {
		t.Errorf("file secret = %q, %v", s, err)
	}

	// Absolute paths stay as they are.
	abs := filepath.Join(dir, "policies")
	data, _ := os.ReadFile(path)
	data = []byte(strings.Replace(string(data), "dir: policies", "dir: "+abs, 1))
	other := filepath.Join(t.TempDir(), "elsewhere.yaml")
	if err := os.WriteFile(other, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Relative files now resolve against the other directory and are
	// missing there, but the absolute policy dir is found.
	_, err = Load(other)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Load: %v", err)
	}
	for _, fe := range ve.Errors {
		if fe.Field == "policy.dir" {
			t.Errorf("absolute policy.dir not honoured: %v", fe)
		}
	}

	if _, err := Load(filepath.Join(dir, "nope.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing config file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxConfigBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized config: %v", err)
	}
}

// Lines of testdata/valid.yaml.
const (
	vTLS        = 6
	vCertFile   = 8
	vKeyFile    = 9
	vCAFile     = 32
	vEnv        = 34
	vCredFile   = 44
	vKeysPath   = 47
	vPolicyDir  = 49
	vAuditPath  = 51
	vRoute1Name = 35
)

func TestLoadChecks(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []want
	}{
		{"cert missing", func(t *testing.T, dir string) { rm(t, dir, "certs/tls.crt") },
			[]want{{"listeners[0].tls.cert_file", vCertFile, "does not exist"}}},
		{"key missing", func(t *testing.T, dir string) { rm(t, dir, "certs/tls.key") },
			[]want{{"listeners[0].tls.key_file", vKeyFile, "does not exist"}}},
		{"cert is a directory", func(t *testing.T, dir string) {
			rm(t, dir, "certs/tls.crt")
			mkdir(t, dir, "certs/tls.crt")
		}, []want{{"listeners[0].tls.cert_file", vCertFile, "not a regular file"}}},
		{"key not a key", func(t *testing.T, dir string) { put(t, dir, "certs/tls.key", "not a key\n") },
			[]want{{"listeners[0].tls", vTLS, "not a usable certificate and key"}}},
		{"key does not match cert", func(t *testing.T, dir string) {
			_, key := selfSigned(t)
			put(t, dir, "certs/tls.key", string(key))
		}, []want{{"listeners[0].tls", vTLS, "not a usable certificate and key"}}},
		{"ca missing", func(t *testing.T, dir string) { rm(t, dir, "certs/ca.pem") },
			[]want{{"routes[0].upstream.ca_file", vCAFile, "does not exist"}}},
		{"ca not PEM", func(t *testing.T, dir string) { put(t, dir, "certs/ca.pem", "hello\n") },
			[]want{{"routes[0].upstream.ca_file", vCAFile, "no PEM certificates"}}},
		{"env unset", func(t *testing.T, dir string) { unsetenv(t, "WARDEN_TEST_OPENAI_KEY") },
			[]want{{"routes[0].upstream.credential.env", vEnv, "env WARDEN_TEST_OPENAI_KEY is not set"}}},
		{"env empty", func(t *testing.T, dir string) { t.Setenv("WARDEN_TEST_OPENAI_KEY", "") },
			[]want{{"routes[0].upstream.credential.env", vEnv, "env WARDEN_TEST_OPENAI_KEY is empty"}}},
		{"secret file missing", func(t *testing.T, dir string) { rm(t, dir, "secrets/azure.key") },
			[]want{{"routes[1].upstream.credential.file", vCredFile, "does not exist"}}},
		{"secret file empty", func(t *testing.T, dir string) { put(t, dir, "secrets/azure.key", "\n") },
			[]want{{"routes[1].upstream.credential.file", vCredFile, "is empty"}}},
		{"policy dir missing", func(t *testing.T, dir string) { rmall(t, dir, "policies") },
			[]want{{"policy.dir", vPolicyDir, "does not exist"}}},
		{"policy dir is a file", func(t *testing.T, dir string) {
			rmall(t, dir, "policies")
			put(t, dir, "policies", "x")
		}, []want{{"policy.dir", vPolicyDir, "not a directory"}}},
		{"keys path is a directory, audit path a file", func(t *testing.T, dir string) {
			mkdir(t, dir, "data/keys.json")
			put(t, dir, "data/audit.log", `{"seq":1}`+"\n")
		}, []want{
			{"keys.path", vKeysPath, "is a directory"},
			{"audit.path", vAuditPath, "names the log directory"},
		}},
		{"validation and file errors together", func(t *testing.T, dir string) {
			editFile(t, dir, "name: azure.eu", "name: Azure")
			rm(t, dir, "certs/ca.pem")
			unsetenv(t, "WARDEN_TEST_OPENAI_KEY")
		}, []want{
			{"routes[1].name", vRoute1Name, "lower case"},
			{"routes[0].upstream.ca_file", vCAFile, "does not exist"},
			{"routes[0].upstream.credential.env", vEnv, "is not set"},
		}},
		{"invalid fields are not checked again", func(t *testing.T, dir string) {
			editFile(t, dir, "env: WARDEN_TEST_OPENAI_KEY", "env: 9LIVES")
			editFile(t, dir, "mode: files", "mode: filez")
		}, []want{
			{"listeners[0].tls.mode", 7, "unknown mode"},
			{"routes[0].upstream.credential.env", vEnv, "environment variable"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path := testDir(t)
			tt.setup(t, dir)
			cfg, err := Load(path)
			checkErrors(t, err, tt.want)
			if cfg != nil {
				t.Error("config returned with an error")
			}
			for _, s := range []string{"openai-secret-value", "azure-secret-value"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func rm(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func rmall(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func editFile(t *testing.T, dir, old, new string) {
	t.Helper()
	p := filepath.Join(dir, "warden.yaml")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	put(t, dir, "warden.yaml", applyEdits(t, string(data), []edit{{old, new}}))
}

// unsetenv unsets an environment variable for the test, restoring it after.
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "") // registers the restore
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// FuzzParse checks that Parse never panics, that it returns exactly one of
// a config and an error, that every error is a *ValidationError whose lines
// are inside the document, and that a valid config survives a round trip
// through YAML.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(base))
	f.Add([]byte(identityBase))
	f.Add([]byte(aliasBomb()))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Errors) == 0 {
				t.Fatalf("error is not a non-empty *ValidationError: %v", err)
			}
			lines := yamlLineCount(data)
			for _, fe := range ve.Errors {
				if fe.Line < 0 || fe.Line > lines {
					t.Fatalf("line %d outside a %d-line document: %v", fe.Line, lines, fe)
				}
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
		out, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal a valid config: %v", err)
		}
		if _, err := Parse(out, "roundtrip.yaml"); err != nil {
			t.Fatalf("a valid config does not survive a round trip: %v\n%s", err, out)
		}
	})
}

// yamlLineCount counts the lines of data as yaml.v3 numbers them: a document
// that starts with a UTF-16 byte order mark is decoded first, and \r\n, a
// lone \r, \n, NEL (U+0085), LS (U+2028) and PS (U+2029) each end a line.
func yamlLineCount(data []byte) int {
	text := string(data)
	if len(data) >= 2 && (data[0] == 0xfe && data[1] == 0xff || data[0] == 0xff && data[1] == 0xfe) {
		u := make([]uint16, 0, len(data)/2)
		for i := 2; i+1 < len(data); i += 2 {
			if data[0] == 0xfe {
				u = append(u, uint16(data[i])<<8|uint16(data[i+1]))
			} else {
				u = append(u, uint16(data[i+1])<<8|uint16(data[i]))
			}
		}
		text = string(utf16.Decode(u))
	}
	n := 1
	for _, r := range strings.ReplaceAll(text, "\r\n", "\n") {
		switch r {
		case '\n', '\r', '\u0085', '\u2028', '\u2029':
			n++
		}
	}
	return n
}
