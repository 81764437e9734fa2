package config

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// identityBase is a valid config with an identity section; the table in
// TestIdentityRules edits it and expects errors on its lines (below).
const identityBase = `listeners:
  - name: public
    address: "127.0.0.1:8443"
    tls:
      mode: self_signed
      client_auth: optional
routes:
  - name: local
    prefix: /v1/
    segment: inference
    upstream:
      url: http://127.0.0.1:11434
policy:
  dir: policies
identity:
` + mtlsBlock + `  oidc:
    - name: corp
      issuer: https://login.example.com/realms/corp
      audiences: [warden]
      jwks_url: https://login.example.com/realms/corp/certs
      algorithms: [RS256, ES256]
      clock_skew: 30s
      max_token_bytes: 8192
      min_refresh_interval: 30s
      kind: user
      claims:
        subject: sub
    - issuer: http://127.0.0.1:9999
      audiences: [warden-test]
      jwks_file: oidc/jwks.json
  tokens:
    issuer: warden
    keys_path: token-keys.json
    ttl: 5m
    max_ttl: 1h
    rotate_every: 24h
` + mfaBlock + `  revocations_path: revocations.json
  revalidate_interval: 250ms
`

const mtlsBlock = `  mtls:
    trust_domains:
      - name: prod.example.org
        bundle_file: spiffe/prod.pem
    workload_api_socket: unix:///run/spire/agent.sock
    kinds:
      - path_prefix: /agent/
        kind: agent
`

const mfaBlock = `  mfa:
    store_path: mfa.json
    encryption_key:
      env: WARDEN_MFA_KEY
    issuer: warden
    elevated_ttl: 10m
`

// Line numbers of identityBase.
const (
	iTLS         = 4
	iClientAuth  = 6
	iMTLS        = 16
	iTD0         = 18
	iBundle      = 19
	iSocket      = 20
	iKind0       = 22
	iKindKind    = 23
	iOIDC0       = 25
	iIssuer0     = 26
	iAud0        = 27
	iJWKSURL     = 28
	iAlgs        = 29
	iSkew        = 30
	iMaxTok      = 31
	iMinRefresh  = 32
	iOIDCKind    = 33
	iSubject     = 35
	iOIDC1       = 36
	iJWKSFile1   = 38
	iTokens      = 39
	iTokIssuer   = 40
	iTokKeys     = 41
	iTTL         = 42
	iMaxTTL      = 43
	iRotate      = 44
	iMFA         = 45
	iStore       = 46
	iEncKey      = 47
	iEncEnv      = 48
	iMFAIssuer   = 49
	iElevated    = 50
	iRevocations = 51
	iRevalidate  = 52
)

// checkLines asserts that each numbered line of doc contains its text, so
// that the line constants above cannot drift from the document.
func checkLines(t *testing.T, doc string, lines map[int]string) {
	t.Helper()
	all := strings.Split(doc, "\n")
	for n, s := range lines {
		if n < 1 || n > len(all) || !strings.Contains(all[n-1], s) {
			t.Errorf("line %d is not the line with %q", n, s)
		}
	}
}

func TestIdentityBaseLines(t *testing.T) {
	checkLines(t, identityBase, map[int]string{
		iTLS: "tls:", iClientAuth: "client_auth:", iMTLS: "mtls:", iTD0: "- name: prod.example.org",
		iBundle: "bundle_file:", iSocket: "workload_api_socket:", iKind0: "- path_prefix:", iKindKind: "kind: agent",
		iOIDC0: "- name: corp", iIssuer0: "issuer: https://login", iAud0: "audiences: [warden]", iJWKSURL: "jwks_url:",
		iAlgs: "algorithms:", iSkew: "clock_skew:", iMaxTok: "max_token_bytes:", iMinRefresh: "min_refresh_interval:",
		iOIDCKind: "kind: user", iSubject: "subject:", iOIDC1: "- issuer: http://127.0.0.1", iJWKSFile1: "jwks_file:",
		iTokens: "tokens:", iTokIssuer: "issuer: warden", iTokKeys: "keys_path:", iTTL: "ttl: 5m", iMaxTTL: "max_ttl:",
		iRotate: "rotate_every:", iMFA: "mfa:", iStore: "store_path:", iEncKey: "encryption_key:", iEncEnv: "env:",
		iMFAIssuer: "issuer: warden", iElevated: "elevated_ttl:", iRevocations: "revocations_path:", iRevalidate: "revalidate_interval:",
	})
}

func TestIdentityRules(t *testing.T) {
	const (
		o0 = "identity.oidc[0]"
		o1 = "identity.oidc[1]"
		tk = "identity.tokens"
		mf = "identity.mfa"
		ca = "listeners[0].tls.client_auth"
		td = "identity.mtls.trust_domains"
	)
	setSocket := func(s string) []edit {
		return []edit{{"workload_api_socket: unix:///run/spire/agent.sock", "workload_api_socket: " + s}}
	}
	setAlgs := func(s string) []edit { return []edit{{"algorithms: [RS256, ES256]", "algorithms: " + s}} }
	setIssuer0 := func(s string) []edit {
		return []edit{{"issuer: https://login.example.com/realms/corp", "issuer: " + s}}
	}
	noMTLS := edit{mtlsBlock, ""}
	tests := []struct {
		name  string
		edits []edit
		want  []want
	}{
		{name: "base is valid"},

		// listeners[].tls.client_auth
		{"client_auth unknown", []edit{{"client_auth: optional", "client_auth: always"}},
			[]want{{ca, iClientAuth, `unknown client_auth "always" (none, optional, require)`}}},
		{"client_auth upper case", []edit{{"client_auth: optional", "client_auth: Require"}},
			[]want{{ca, iClientAuth, "unknown client_auth"}}},
		{"client_auth require ok", []edit{{"client_auth: optional", "client_auth: require"}}, nil},
		{"client_auth with mode files ok", []edit{
			{"mode: self_signed", "mode: files\n      cert_file: tls.crt\n      key_file: tls.key"},
			{"client_auth: optional", "client_auth: require"},
		}, nil},
		{"client_auth optional needs identity.mtls", []edit{noMTLS},
			[]want{{ca, iClientAuth, "optional needs identity.mtls"}}},
		{"client_auth require with tls off", []edit{{"mode: self_signed", "mode: off"}, {"client_auth: optional", "client_auth: require"}},
			[]want{{ca, iClientAuth, "require needs TLS"}}},
		{"client_auth with tls off and no mtls", []edit{{"mode: self_signed", "mode: off"}, noMTLS},
			[]want{
				{ca, iClientAuth, "needs TLS"},
				{ca, iClientAuth, "needs identity.mtls"},
			}},
		{"client_auth none without mtls ok", []edit{{"client_auth: optional", "client_auth: none"}, noMTLS}, nil},
		{"client_auth default without mtls ok", []edit{{"      client_auth: optional\n", ""}, noMTLS}, nil},
		{"client_auth none with tls off ok", []edit{{"mode: self_signed", "mode: off"}, {"client_auth: optional", "client_auth: none"}}, nil},

		// identity.mtls
		{"mtls empty", []edit{{mtlsBlock, "  mtls: {}\n"}},
			[]want{
				{"identity.mtls", iMTLS, "at least one of trust_domains or workload_api_socket"},
				{ca, iClientAuth, "needs identity.mtls"},
			}},
		{"mtls null is absent", []edit{{mtlsBlock, "  mtls:\n"}},
			[]want{{ca, iClientAuth, "needs identity.mtls"}}},
		{"mtls socket only ok", []edit{{"    trust_domains:\n      - name: prod.example.org\n        bundle_file: spiffe/prod.pem\n", ""}}, nil},
		{"mtls trust domains only ok", []edit{{"    workload_api_socket: unix:///run/spire/agent.sock\n", ""}}, nil},
		{"trust domain with scheme", []edit{{"name: prod.example.org", "name: spiffe://prod.example.org"}},
			[]want{{td + "[0].name", iTD0, "without a scheme"}}},
		{"trust domain upper case", []edit{{"name: prod.example.org", "name: Prod.Example.org"}},
			[]want{{td + "[0].name", iTD0, `not a SPIFFE trust domain name: only lower case letters, digits, '.', '-' and '_' are allowed (write "prod.example.org")`}}},
		{"trust domain bad character", []edit{{"name: prod.example.org", "name: prod@example.org"}},
			[]want{{td + "[0].name", iTD0, "not a SPIFFE trust domain name"}}},
		{"trust domain with port", []edit{{"name: prod.example.org", `name: "prod.example.org:443"`}},
			[]want{{td + "[0].name", iTD0, "not a SPIFFE trust domain name"}}},
		{"trust domain too long", []edit{{"name: prod.example.org", "name: " + strings.Repeat("a", 256)}},
			[]want{{td + "[0].name", iTD0, "at most 255"}}},
		{"trust domain underscore and dash ok", []edit{{"name: prod.example.org", "name: prod_1-x.example.org"}}, nil},
		{"trust domain missing", []edit{{"      - name: prod.example.org\n        bundle_file", "      - bundle_file"}},
			[]want{{td + "[0].name", iTD0, "required"}}},
		{"trust domain duplicate", []edit{{"bundle_file: spiffe/prod.pem\n", "bundle_file: spiffe/prod.pem\n      - name: prod.example.org\n        bundle_file: other.pem\n"}},
			[]want{{td + "[1].name", iBundle + 1, `duplicate trust domain "prod.example.org" (also identity.mtls.trust_domains[0])`}}},
		{"bundle_file missing", []edit{{"        bundle_file: spiffe/prod.pem\n", ""}},
			[]want{{td + "[0].bundle_file", iTD0, "required"}}},
		{"socket tcp ok", setSocket("tcp://127.0.0.1:8081"), nil},
		{"socket tcp ipv6 ok", setSocket("tcp://[::1]:8081"), nil},
		{"socket unix two slashes", setSocket("unix://run/spire/agent.sock"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "three slashes"}}},
		{"socket unix relative", setSocket("unix:agent.sock"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, `must be "unix:///absolute/path" or "tcp://IP:port"`}}},
		{"socket unix no path", setSocket("unix:///"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "absolute path"}}},
		{"socket unix query", setSocket("unix:///run/agent.sock?x=1"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "no user info, query or fragment"}}},
		{"socket without scheme", setSocket("/run/spire/agent.sock"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, `must be "unix:///absolute/path"`}}},
		{"socket http", setSocket("http://127.0.0.1:8081"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, `must be "unix:///absolute/path"`}}},
		{"socket tcp host name", setSocket("tcp://spire-agent:8081"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "must be an IP address"}}},
		{"socket tcp without port", setSocket("tcp://127.0.0.1"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "port"}}},
		{"socket tcp with path", setSocket("tcp://127.0.0.1:8081/x"),
			[]want{{"identity.mtls.workload_api_socket", iSocket, "no path"}}},
		{"kind path_prefix relative", []edit{{"path_prefix: /agent/", "path_prefix: agent/"}},
			[]want{{"identity.mtls.kinds[0].path_prefix", iKind0, `must start with "/"`}}},
		{"kind path_prefix missing", []edit{{"      - path_prefix: /agent/\n        kind", "      - kind"}},
			[]want{{"identity.mtls.kinds[0].path_prefix", iKind0, "required"}}},
		{"kind unknown", []edit{{"kind: agent", "kind: robot"}},
			[]want{{"identity.mtls.kinds[0].kind", iKindKind, `unknown kind "robot" (user, service, agent)`}}},
		{"kind missing", []edit{{"        kind: agent\n", ""}},
			[]want{{"identity.mtls.kinds[0].kind", iKind0, "required"}}},
		{"kind duplicate prefix", []edit{{"        kind: agent\n", "        kind: agent\n      - path_prefix: /agent/\n        kind: user\n"}},
			[]want{{"identity.mtls.kinds[1].path_prefix", iKindKind + 1, "first match wins"}}},

		// identity.oidc
		{"oidc name invalid", []edit{{"- name: corp", "- name: Corp"}},
			[]want{{o0 + ".name", iOIDC0, "lower case"}}},
		{"oidc name duplicate", []edit{{"    - issuer: http://127.0.0.1:9999", "    - name: corp\n      issuer: http://127.0.0.1:9999"}},
			[]want{{o1 + ".name", iOIDC1, `duplicate provider name "corp" (also identity.oidc[0])`}}},
		{"oidc default names clash", []edit{
			{"    - name: corp\n      issuer", "    - issuer"},
			{"issuer: http://127.0.0.1:9999", "issuer: https://login.example.com/realms/other"},
		}, []want{{o1 + ".name", iOIDC1 - 1, `duplicate provider name "login.example.com"`}}},
		{"oidc default name from ipv6 host", []edit{{"issuer: http://127.0.0.1:9999", "issuer: http://[::1]:9999"}},
			[]want{{o1 + ".name", iOIDC1, "the issuer's host is not a valid name"}}},
		{"oidc issuer missing", []edit{{"      issuer: https://login.example.com/realms/corp\n", ""}},
			[]want{{o0 + ".issuer", iOIDC0, "required"}}},
		{"oidc issuer and name missing", []edit{{"    - issuer: http://127.0.0.1:9999\n      audiences", "    - audiences"}},
			[]want{
				{o1 + ".issuer", iOIDC1, "required"},
				{o1 + ".name", iOIDC1, "required"},
			}},
		{"oidc issuer invalid and no name", []edit{{"issuer: http://127.0.0.1:9999", "issuer: ftp:///x"}},
			[]want{
				{o1 + ".issuer", iOIDC1, "must be an https URL"},
				{o1 + ".name", iOIDC1, "the issuer is not valid"},
			}},
		{"oidc issuer plain http", setIssuer0("http://login.example.com/realms/corp"),
			[]want{{o0 + ".issuer", iIssuer0, "must be https"}}},
		{"oidc issuer http localhost ok", setIssuer0("http://localhost:8080/realms/corp"), nil},
		{"oidc issuer http ::1 ok", setIssuer0("http://[::1]:8080"), nil},
		{"oidc issuer without scheme", setIssuer0("login.example.com/realms/corp"),
			[]want{{o0 + ".issuer", iIssuer0, "must be an https URL"}}},
		{"oidc issuer query", setIssuer0("https://login.example.com/realms/corp?x=1"),
			[]want{{o0 + ".issuer", iIssuer0, "query"}}},
		{"oidc issuer fragment", setIssuer0("'https://login.example.com/realms/corp#x'"),
			[]want{{o0 + ".issuer", iIssuer0, "fragment"}}},
		{"oidc issuer user info", setIssuer0("https://u:hunter2@login.example.com/realms/corp"),
			[]want{{o0 + ".issuer", iIssuer0, "user info"}}},
		{"oidc issuer bad port", setIssuer0("https://login.example.com:0/realms/corp"),
			[]want{{o0 + ".issuer", iIssuer0, "port"}}},
		{"oidc issuer duplicate", []edit{{"issuer: http://127.0.0.1:9999", "issuer: https://login.example.com/realms/corp"}},
			[]want{{o1 + ".issuer", iOIDC1, "same issuer as identity.oidc[0]"}}},
		{"oidc audiences missing", []edit{{"      audiences: [warden]\n", ""}},
			[]want{{o0 + ".audiences", iOIDC0, "at least one audience"}}},
		{"oidc audiences empty", []edit{{"audiences: [warden]", "audiences: []"}},
			[]want{{o0 + ".audiences", iAud0, "at least one audience"}}},
		{"oidc audience blank", []edit{{"audiences: [warden]", `audiences: [warden, " "]`}},
			[]want{{o0 + ".audiences[1]", iAud0, "must not be empty"}}},
		{"oidc audiences not a list", []edit{{"audiences: [warden]", "audiences: warden"}},
			[]want{{o0 + ".audiences", iAud0, "must be a list, not a string"}}},
		{"oidc jwks_url and jwks_file", []edit{{"jwks_url: https://login.example.com/realms/corp/certs", "jwks_url: https://login.example.com/realms/corp/certs\n      jwks_file: jwks.json"}},
			[]want{{o0 + ".jwks_file", iJWKSURL + 1, "mutually exclusive"}}},
		{"oidc jwks_url plain http", []edit{{"jwks_url: https://login.example.com/realms/corp/certs", "jwks_url: http://login.example.com/certs"}},
			[]want{{o0 + ".jwks_url", iJWKSURL, "must be https"}}},
		{"oidc jwks_url loopback ok", []edit{{"jwks_url: https://login.example.com/realms/corp/certs", "jwks_url: http://127.0.0.1:9999/jwks"}}, nil},
		{"oidc jwks_url query", []edit{{"jwks_url: https://login.example.com/realms/corp/certs", "jwks_url: https://login.example.com/certs?a=b"}},
			[]want{{o0 + ".jwks_url", iJWKSURL, "query"}}},
		{"oidc discovery ok", []edit{{"      jwks_url: https://login.example.com/realms/corp/certs\n", ""}}, nil},
		{"oidc ca_file with jwks_url ok", []edit{{"jwks_url: https://login.example.com/realms/corp/certs", "jwks_url: https://login.example.com/realms/corp/certs\n      ca_file: ca.pem"}}, nil},
		{"oidc ca_file with jwks_file", []edit{{"jwks_file: oidc/jwks.json", "jwks_file: oidc/jwks.json\n      ca_file: ca.pem"}},
			[]want{{o1 + ".ca_file", iJWKSFile1 + 1, "only used when keys are fetched over https"}}},
		{"oidc algorithm none", setAlgs("[RS256, none]"),
			[]want{{o0 + ".algorithms[1]", iAlgs, `never accepted: "none" means an unsigned token`}}},
		{"oidc algorithm NONE", setAlgs("[NONE]"),
			[]want{{o0 + ".algorithms[0]", iAlgs, "never accepted"}}},
		{"oidc algorithm HS256", setAlgs("[HS256, ES256]"),
			[]want{{o0 + ".algorithms[0]", iAlgs, `never accepted: "HS256" is an HMAC algorithm`}}},
		{"oidc algorithm hs512", setAlgs("[hs512]"),
			[]want{{o0 + ".algorithms[0]", iAlgs, "never accepted"}}},
		{"oidc algorithm unknown", setAlgs("[rs256]"),
			[]want{{o0 + ".algorithms[0]", iAlgs, `unknown algorithm "rs256"`}}},
		{"oidc algorithm twice", setAlgs("[ES256, ES256]"),
			[]want{{o0 + ".algorithms[1]", iAlgs, "listed twice"}}},
		{"oidc algorithm on its own line", setAlgs("\n        - RS256\n        - HS384"),
			[]want{{o0 + ".algorithms[1]", iAlgs + 2, "never accepted"}}},
		{"oidc every algorithm ok", setAlgs("[RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]"), nil},
		{"oidc algorithms empty means default", setAlgs("[]"), nil},
		{"oidc clock_skew too large", []edit{{"clock_skew: 30s", "clock_skew: 5m1s"}},
			[]want{{o0 + ".clock_skew", iSkew, "5m1s: must be between 0s and 5m0s"}}},
		{"oidc clock_skew negative", []edit{{"clock_skew: 30s", "clock_skew: -1s"}},
			[]want{{o0 + ".clock_skew", iSkew, "between 0s and 5m0s"}}},
		{"oidc clock_skew 5m ok", []edit{{"clock_skew: 30s", "clock_skew: 5m"}}, nil},
		{"oidc max_token_bytes too small", []edit{{"max_token_bytes: 8192", "max_token_bytes: 511"}},
			[]want{{o0 + ".max_token_bytes", iMaxTok, "511: must be between 512 and 65536"}}},
		{"oidc max_token_bytes too large", []edit{{"max_token_bytes: 8192", "max_token_bytes: 65537"}},
			[]want{{o0 + ".max_token_bytes", iMaxTok, "between 512 and 65536"}}},
		{"oidc max_token_bytes bounds ok", []edit{{"max_token_bytes: 8192", "max_token_bytes: 65536"}, {"jwks_file: oidc/jwks.json", "jwks_file: oidc/jwks.json\n      max_token_bytes: 512"}}, nil},
		{"oidc max_token_bytes not a number", []edit{{"max_token_bytes: 8192", "max_token_bytes: 8k"}},
			[]want{{o0 + ".max_token_bytes", iMaxTok, "must be an integer, not a string"}}},
		{"oidc min_refresh_interval too small", []edit{{"min_refresh_interval: 30s", "min_refresh_interval: 999ms"}},
			[]want{{o0 + ".min_refresh_interval", iMinRefresh, "999ms: must be at least 1s"}}},
		{"oidc min_refresh_interval 1s ok", []edit{{"min_refresh_interval: 30s", "min_refresh_interval: 1s"}}, nil},
		{"oidc min_refresh_interval without unit", []edit{{"min_refresh_interval: 30s", "min_refresh_interval: 30"}},
			[]want{{o0 + ".min_refresh_interval", iMinRefresh, "invalid duration"}}},
		{"oidc kind unknown", []edit{{"kind: user", "kind: human"}},
			[]want{{o0 + ".kind", iOIDCKind, `unknown kind "human"`}}},
		{"oidc kind agent ok", []edit{{"kind: user", "kind: agent"}}, nil},
		{"oidc claim blank", []edit{{"subject: sub", `subject: " "`}},
			[]want{{o0 + ".claims.subject", iSubject, "must not be empty"}}},
		{"oidc claim with space", []edit{{"subject: sub", "subject: sub\n        groups: my groups"}},
			[]want{{o0 + ".claims.groups", iSubject + 1, "no spaces"}}},
		{"oidc claim namespaced ok", []edit{{"subject: sub", "subject: sub\n        roles: https://example.com/roles\n        scopes: scp"}}, nil},
		{"oidc unknown field", []edit{{"audiences: [warden]", "audience: [warden]"}},
			[]want{
				{o0 + ".audience", iAud0, `did you mean "audiences"?`},
				{o0 + ".audiences", iOIDC0, "at least one audience"},
			}},

		// identity.tokens
		{"tokens issuer is an oidc issuer", []edit{{"    issuer: warden\n    keys_path", "    issuer: http://127.0.0.1:9999\n    keys_path"}},
			[]want{{tk + ".issuer", iTokIssuer, "same as identity.oidc[1].issuer: tokens are routed by iss"}}},
		{"tokens issuer with space", []edit{{"    issuer: warden\n    keys_path", "    issuer: my warden\n    keys_path"}},
			[]want{{tk + ".issuer", iTokIssuer, "spaces"}}},
		{"tokens issuer url ok", []edit{{"    issuer: warden\n    keys_path", "    issuer: https://warden.example.com\n    keys_path"}}, nil},
		{"tokens ttl negative", []edit{{"ttl: 5m", "ttl: -5m"}},
			[]want{{tk + ".ttl", iTTL, "greater than 0"}}},
		{"tokens max_ttl below ttl", []edit{{"ttl: 5m", "ttl: 2h"}},
			[]want{{tk + ".max_ttl", iMaxTTL, "1h0m0s: must be at least ttl (2h0m0s)"}}},
		{"tokens max_ttl default below ttl", []edit{{"ttl: 5m", "ttl: 2h"}, {"    max_ttl: 1h\n", ""}},
			[]want{{tk + ".max_ttl", iTokens, "must be at least ttl"}}},
		{"tokens max_ttl too large", []edit{{"max_ttl: 1h", "max_ttl: 24h1s"}},
			[]want{{tk + ".max_ttl", iMaxTTL, "must be at most 24h0m0s"}}},
		{"tokens max_ttl equal to ttl ok", []edit{{"ttl: 5m", "ttl: 24h"}, {"max_ttl: 1h", "max_ttl: 24h"}}, nil},
		{"tokens rotate_every too small", []edit{{"rotate_every: 24h", "rotate_every: 59s"}},
			[]want{{tk + ".rotate_every", iRotate, "59s: must be at least 1m0s"}}},
		{"tokens keys_path is keys.path", []edit{{"keys_path: token-keys.json", "keys_path: ./keys.json"}},
			[]want{{tk + ".keys_path", iTokKeys, "must not be the same file as keys.path"}}},

		// identity.mfa
		{"mfa absent ok", []edit{{mfaBlock, ""}}, nil},
		{"mfa empty", []edit{{mfaBlock, "  mfa: {}\n"}},
			[]want{{mf + ".encryption_key", iMFA, "exactly one of env or file"}}},
		{"mfa key env and file", []edit{{"env: WARDEN_MFA_KEY", "env: WARDEN_MFA_KEY\n      file: mfa.key"}},
			[]want{{mf + ".encryption_key", iEncKey, "exactly one of env or file"}}},
		{"mfa key file ok", []edit{{"env: WARDEN_MFA_KEY", "file: secrets/mfa.key"}}, nil},
		{"mfa key env is a key", []edit{{"env: WARDEN_MFA_KEY", "env: 9f86d081884c7d659a2feaa0c55ad015"}},
			[]want{{mf + ".encryption_key.env", iEncEnv, "not the key itself"}}},
		{"mfa key header", []edit{{"env: WARDEN_MFA_KEY", "env: WARDEN_MFA_KEY\n      header: Authorization"}},
			[]want{{mf + ".encryption_key.header", iEncEnv + 1, "does not apply to an encryption key"}}},
		{"mfa key scheme", []edit{{"env: WARDEN_MFA_KEY", "env: WARDEN_MFA_KEY\n      scheme: Bearer"}},
			[]want{{mf + ".encryption_key.scheme", iEncEnv + 1, "does not apply to an encryption key"}}},
		{"mfa issuer with colon", []edit{{"    issuer: warden\n    elevated_ttl", "    issuer: \"Example: Corp\"\n    elevated_ttl"}},
			[]want{{mf + ".issuer", iMFAIssuer, "must not contain ':'"}}},
		{"mfa issuer with space ok", []edit{{"    issuer: warden\n    elevated_ttl", "    issuer: Example Corp\n    elevated_ttl"}}, nil},
		{"mfa elevated_ttl too small", []edit{{"elevated_ttl: 10m", "elevated_ttl: 59s"}},
			[]want{{mf + ".elevated_ttl", iElevated, "59s: must be between 1m0s and 24h0m0s"}}},
		{"mfa elevated_ttl too large", []edit{{"elevated_ttl: 10m", "elevated_ttl: 25h"}},
			[]want{{mf + ".elevated_ttl", iElevated, "between 1m0s and 24h0m0s"}}},
		{"mfa elevated_ttl bounds ok", []edit{{"elevated_ttl: 10m", "elevated_ttl: 24h"}}, nil},
		{"mfa store_path is tokens.keys_path", []edit{{"store_path: mfa.json", "store_path: token-keys.json"}},
			[]want{{mf + ".store_path", iStore, "must not be the same file as identity.tokens.keys_path"}}},
		{"mfa store_path is revocations_path", []edit{{"store_path: mfa.json", "store_path: ./x/../revocations.json"}},
			[]want{{mf + ".store_path", iStore, "must not be the same file as identity.revocations_path"}}},

		// identity.revocations_path, identity.revalidate_interval
		{"revocations_path is audit.path", []edit{{"revocations_path: revocations.json", "revocations_path: audit.log"}},
			[]want{{"identity.revocations_path", iRevocations, "must not be the same file as audit.path"}}},
		{"revalidate_interval too small", []edit{{"revalidate_interval: 250ms", "revalidate_interval: 9ms"}},
			[]want{{"identity.revalidate_interval", iRevalidate, "9ms: must be between 10ms and 1s"}}},
		{"revalidate_interval too large", []edit{{"revalidate_interval: 250ms", "revalidate_interval: 1.5s"}},
			[]want{{"identity.revalidate_interval", iRevalidate, "within 1s"}}},
		{"revalidate_interval negative", []edit{{"revalidate_interval: 250ms", "revalidate_interval: -1s"}},
			[]want{{"identity.revalidate_interval", iRevalidate, "between 10ms and 1s"}}},
		{"revalidate_interval bounds ok", []edit{{"revalidate_interval: 250ms", "revalidate_interval: 1s"}}, nil},
		{"revalidate_interval lower bound ok", []edit{{"revalidate_interval: 250ms", "revalidate_interval: 10ms"}}, nil},

		// decoding
		{"identity unknown field", []edit{{"  revocations_path:", "  revocation_path: x.json\n  revocations_path:"}},
			[]want{{"identity.revocation_path", iRevocations, `did you mean "revocations_path"?`}}},
		{"mfa not a mapping", []edit{{mfaBlock, "  mfa: true\n"}},
			[]want{{"identity.mfa", iMFA, "must be a mapping, not a boolean"}}},
		{"several identity errors at once", []edit{
			{"client_auth: optional", "client_auth: sometimes"},
			{"name: prod.example.org", "name: PROD"},
			{"algorithms: [RS256, ES256]", "algorithms: [none]"},
			{"rotate_every: 24h", "rotate_every: 1s"},
			{"revalidate_interval: 250ms", "revalidate_interval: 5s"},
		}, []want{
			{ca, iClientAuth, "unknown client_auth"},
			{td + "[0].name", iTD0, "not a SPIFFE trust domain name"},
			{o0 + ".algorithms[0]", iAlgs, "never accepted"},
			{tk + ".rotate_every", iRotate, "at least 1m0s"},
			{"identity.revalidate_interval", iRevalidate, "between 10ms and 1s"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := applyEdits(t, identityBase, tt.edits)
			cfg, err := Parse([]byte(doc), "warden.yaml")
			checkErrors(t, err, tt.want)
			if (err == nil) == (cfg == nil) {
				t.Fatalf("cfg = %v, err = %v: want exactly one", cfg, err)
			}
			if err != nil {
				for _, s := range []string{"hunter2", "9f86d081884c7d659a2feaa0c55ad015"} {
					if strings.Contains(err.Error(), s) {
						t.Errorf("error leaks a secret: %v", err)
					}
				}
			}
		})
	}
}

func TestIdentityDefaults(t *testing.T) {
	data, err := os.ReadFile("testdata/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(data, "minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Listeners[0].TLS.ClientAuth; got != ClientAuthNone {
		t.Errorf("client_auth default = %q", got)
	}
	id := cfg.Identity
	if id.MTLS != nil || id.MFA != nil || id.OIDC != nil {
		t.Errorf("mtls, mfa and oidc must stay off by default: %+v", id)
	}
	if id.RevocationsPath != "revocations.json" || id.RevalidateInterval.D() != 250*time.Millisecond {
		t.Errorf("identity defaults: %+v", id)
	}
	if tk := id.Tokens; tk.Issuer != "warden" || tk.KeysPath != "token-keys.json" || tk.TTL.D() != 5*time.Minute ||
		tk.MaxTTL.D() != time.Hour || tk.RotateEvery.D() != 24*time.Hour {
		t.Errorf("tokens defaults: %+v", tk)
	}

	cfg, err = Parse([]byte(applyEdits(t, identityBase, []edit{{mfaBlock, "  mfa:\n    encryption_key:\n      env: K\n"}})), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Identity.OIDC[1]
	if o.Name != "127.0.0.1" || !slices.Equal(o.Algorithms, []string{"RS256", "ES256"}) || o.ClockSkew.D() != 30*time.Second ||
		o.MaxTokenBytes != 8192 || o.MinRefreshInterval.D() != 30*time.Second || o.Kind != KindUser ||
		o.Claims != (ClaimMapping{Subject: "sub", Groups: "groups", Roles: "roles", Scopes: "scope"}) {
		t.Errorf("oidc defaults: %+v", o)
	}
	o.Algorithms[0] = "XX"
	if DefaultOIDCAlgorithms[0] != "RS256" {
		t.Error("a provider's algorithms alias DefaultOIDCAlgorithms")
	}
	m := cfg.Identity.MFA
	if m.StorePath != "mfa.json" || m.Issuer != "warden" || m.ElevatedTTL.D() != 10*time.Minute || m.EncryptionKey.Header != "" || m.EncryptionKey.Scheme != "" {
		t.Errorf("mfa defaults: %+v", m)
	}
	if k := cfg.Identity.MTLS.Kinds; len(k) != 1 {
		t.Errorf("kinds: %+v", k)
	}

	// A derived name is the issuer's host in lower case.
	doc := applyEdits(t, identityBase, []edit{{"    - name: corp\n      issuer: https://login.example.com", "    - issuer: https://Login.Example.COM:8443"}})
	if cfg, err = Parse([]byte(doc), "warden.yaml"); err != nil {
		t.Fatal(err)
	}
	if got := cfg.Identity.OIDC[0].Name; got != "login.example.com" {
		t.Errorf("derived name = %q", got)
	}

	// The full fixture keeps every value it sets.
	data, err = os.ReadFile("testdata/valid_identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = Parse(data, "valid_identity.yaml"); err != nil {
		t.Fatal(err)
	}
	id = cfg.Identity
	if got := []string{cfg.Listeners[0].TLS.ClientAuth, cfg.Listeners[1].TLS.ClientAuth, cfg.Listeners[2].TLS.ClientAuth}; !slices.Equal(got, []string{"require", "optional", "none"}) {
		t.Errorf("client_auth = %v", got)
	}
	if m := id.MTLS; len(m.TrustDomains) != 2 || m.TrustDomains[1] != (TrustDomain{"agents.example.org", "spiffe/agents.pem"}) ||
		m.WorkloadAPISocket != "unix:///run/spire/agent.sock" || !m.AllowNonSPIFFE || len(m.Kinds) != 2 || m.Kinds[1] != (KindRule{"/ns/humans/", KindUser}) {
		t.Errorf("mtls values: %+v", m)
	}
	if o := id.OIDC[0]; o.Name != "corp" || len(o.Audiences) != 2 || o.CAFile != "oidc/corp-ca.pem" || len(o.Algorithms) != 4 ||
		o.ClockSkew.D() != time.Minute || o.MaxTokenBytes != 16384 || o.MinRefreshInterval.D() != time.Minute ||
		o.Claims != (ClaimMapping{"preferred_username", "groups", "realm_access.roles", "scp"}) {
		t.Errorf("oidc values: %+v", o)
	}
	if o := id.OIDC[1]; o.Name != "127.0.0.1" || o.JWKSFile != "oidc/jwks.json" || o.Kind != KindAgent {
		t.Errorf("oidc values: %+v", o)
	}
	if tk := id.Tokens; tk != (Tokens{"https://warden.example.com", "data/token-keys.json", Duration(10 * time.Minute), Duration(2 * time.Hour), Duration(12 * time.Hour)}) {
		t.Errorf("tokens values: %+v", tk)
	}
	if m := id.MFA; m.StorePath != "data/mfa.json" || m.EncryptionKey.File != "secrets/mfa.key" || m.Issuer != "Example Corp" || m.ElevatedTTL.D() != 15*time.Minute {
		t.Errorf("mfa values: %+v", m)
	}
	if id.RevocationsPath != "data/revocations.json" || id.RevalidateInterval.D() != 500*time.Millisecond {
		t.Errorf("identity values: %+v", id)
	}
}

func TestIdentityFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []want
	}{
		{"valid_identity.yaml", nil},
		{"invalid_identity.yaml", []want{
			{"listeners[0].tls.client_auth", 7, "require needs TLS"},
			{"identity.mtls.trust_domains[0].name", 19, "without a scheme"},
			{"identity.mtls.trust_domains[0].bundle_file", 19, "required"},
			{"identity.mtls.trust_domains[1].name", 20, `write "prod.example.org"`},
			{"identity.mtls.workload_api_socket", 22, "three slashes"},
			{"identity.mtls.kinds[0].path_prefix", 24, `must start with "/"`},
			{"identity.mtls.kinds[0].kind", 25, `unknown kind "robot"`},
			{"identity.oidc[0].issuer", 27, "must be https"},
			{"identity.oidc[0].audiences", 28, "at least one audience"},
			{"identity.oidc[0].jwks_file", 30, "mutually exclusive"},
			{"identity.oidc[0].algorithms[0]", 31, "never accepted"},
			{"identity.oidc[0].algorithms[1]", 31, "never accepted"},
			{"identity.oidc[0].algorithms[2]", 31, "unknown algorithm"},
			{"identity.oidc[0].clock_skew", 32, "between 0s and 5m0s"},
			{"identity.oidc[0].max_token_bytes", 33, "between 512 and 65536"},
			{"identity.oidc[0].min_refresh_interval", 34, "at least 1s"},
			{"identity.oidc[0].kind", 35, `unknown kind "robot"`},
			{"identity.oidc[1].issuer", 37, "query"},
			{"identity.oidc[1].audience", 39, `did you mean "audiences"`},
			{"identity.tokens.max_ttl", 40, "at least ttl"},
			{"identity.tokens.issuer", 41, "same as identity.oidc[0].issuer"},
			{"identity.tokens.rotate_every", 43, "at least 1m0s"},
			{"identity.mfa.encryption_key.env", 46, "not the key itself"},
			{"identity.mfa.encryption_key.header", 47, "does not apply"},
			{"identity.mfa.issuer", 48, "must not contain ':'"},
			{"identity.mfa.elevated_ttl", 49, "between 1m0s and 24h0m0s"},
			{"identity.mfa.store_path", 50, "same file as keys.path"},
			{"identity.revalidate_interval", 51, "within 1s"},
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
			if msg := err.Error(); strings.Contains(msg, "0123456789abcdef") {
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

// identityDir lays out testdata/valid_identity.yaml with everything it
// points at, generated now, and returns the directory, the config path and
// the MFA key.
func identityDir(t *testing.T) (dir, path string, key []byte) {
	t.Helper()
	dir = t.TempDir()
	data, err := os.ReadFile("testdata/valid_identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := selfSigned(t)
	caPEM, _ := selfSigned(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": "test-1", "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	key = make([]byte, MFAEncryptionKeyBytes)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"warden.yaml":         string(data),
		"certs/tls.crt":       string(certPEM),
		"certs/tls.key":       string(keyPEM),
		"spiffe/prod.pem":     string(caPEM),
		"spiffe/agents.pem":   string(caPEM) + string(certPEM),
		"oidc/corp-ca.pem":    string(caPEM),
		"oidc/jwks.json":      string(jwks),
		"secrets/mfa.key":     base64.StdEncoding.EncodeToString(key) + "\n",
		"policies/authz.rego": "package warden\n",
	}
	for name, content := range files {
		mkdir(t, dir, filepath.Dir(name))
		put(t, dir, name, content)
	}
	return dir, filepath.Join(dir, "warden.yaml"), key
}

// Lines of testdata/valid_identity.yaml.
const (
	viBundle0    = 41
	viBundle1    = 43
	viCAFile     = 56
	viJWKSFile   = 69
	viTokKeys    = 73
	viStore      = 78
	viEncFile    = 80
	viRevocation = 83
)

func TestIdentityFixtureLines(t *testing.T) {
	data, err := os.ReadFile("testdata/valid_identity.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkLines(t, string(data), map[int]string{
		viBundle0: "bundle_file: spiffe/prod.pem", viBundle1: "bundle_file: spiffe/agents.pem", viCAFile: "ca_file:",
		viJWKSFile: "jwks_file:", viTokKeys: "keys_path:", viStore: "store_path:", viEncFile: "file: secrets/mfa.key",
		viRevocation: "revocations_path:",
	})
}

func TestIdentityLoad(t *testing.T) {
	dir, path, key := identityDir(t)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	id := cfg.Identity
	for got, want := range map[string]string{
		id.MTLS.TrustDomains[0].BundleFile: filepath.Join(dir, "spiffe/prod.pem"),
		id.MTLS.TrustDomains[1].BundleFile: filepath.Join(dir, "spiffe/agents.pem"),
		id.OIDC[0].CAFile:                  filepath.Join(dir, "oidc/corp-ca.pem"),
		id.OIDC[1].JWKSFile:                filepath.Join(dir, "oidc/jwks.json"),
		id.Tokens.KeysPath:                 filepath.Join(dir, "data/token-keys.json"),
		id.MFA.StorePath:                   filepath.Join(dir, "data/mfa.json"),
		id.MFA.EncryptionKey.File:          filepath.Join(dir, "secrets/mfa.key"),
		id.RevocationsPath:                 filepath.Join(dir, "data/revocations.json"),
		id.MTLS.WorkloadAPISocket:          "unix:///run/spire/agent.sock", // not a path to resolve
		id.OIDC[0].JWKSURL:                 "https://login.example.com/realms/corp/protocol/openid-connect/certs",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	got, err := id.MFA.Key()
	if err != nil || string(got) != string(key) {
		t.Errorf("Key() = %x, %v; want %x", got, err, key)
	}

	// Defaulted data paths resolve too.
	editFile(t, dir, "  revocations_path: data/revocations.json\n", "")
	editFile(t, dir, "    keys_path: data/token-keys.json\n", "")
	if cfg, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if cfg.Identity.RevocationsPath != filepath.Join(dir, "revocations.json") || cfg.Identity.Tokens.KeysPath != filepath.Join(dir, "token-keys.json") {
		t.Errorf("defaulted paths not resolved: %q, %q", cfg.Identity.RevocationsPath, cfg.Identity.Tokens.KeysPath)
	}
}

func TestIdentityLoadChecks(t *testing.T) {
	const (
		b0   = "identity.mtls.trust_domains[0].bundle_file"
		jwks = "identity.oidc[1].jwks_file"
		key  = "identity.mfa.encryption_key.file"
	)
	// A CERTIFICATE block that is not a certificate.
	badCert := "-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString([]byte("not DER")) + "\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []want
	}{
		{"all good", func(t *testing.T, dir string) {}, nil},
		{"bundle missing", func(t *testing.T, dir string) { rm(t, dir, "spiffe/prod.pem") },
			[]want{{b0, viBundle0, "does not exist"}}},
		{"bundle not PEM", func(t *testing.T, dir string) { put(t, dir, "spiffe/prod.pem", "hello\n") },
			[]want{{b0, viBundle0, "no PEM certificates"}}},
		{"bundle holds only a key", func(t *testing.T, dir string) {
			_, k := selfSigned(t)
			put(t, dir, "spiffe/prod.pem", string(k))
		}, []want{{b0, viBundle0, "no PEM certificates"}}},
		{"bundle certificate does not parse", func(t *testing.T, dir string) {
			c, _ := selfSigned(t)
			put(t, dir, "spiffe/agents.pem", string(c)+badCert)
		}, []want{{"identity.mtls.trust_domains[1].bundle_file", viBundle1, "certificate 2 does not parse"}}},
		{"bundle is a directory", func(t *testing.T, dir string) {
			rm(t, dir, "spiffe/prod.pem")
			mkdir(t, dir, "spiffe/prod.pem")
		}, []want{{b0, viBundle0, "not a regular file"}}},
		{"jwks missing", func(t *testing.T, dir string) { rm(t, dir, "oidc/jwks.json") },
			[]want{{jwks, viJWKSFile, "does not exist"}}},
		{"jwks not JSON", func(t *testing.T, dir string) { put(t, dir, "oidc/jwks.json", "{keys: []}") },
			[]want{{jwks, viJWKSFile, "not valid JSON"}}},
		{"jwks without keys", func(t *testing.T, dir string) { put(t, dir, "oidc/jwks.json", `{"kty": "OKP"}`) },
			[]want{{jwks, viJWKSFile, `"keys" is missing or empty`}}},
		{"jwks with no keys", func(t *testing.T, dir string) { put(t, dir, "oidc/jwks.json", `{"keys": []}`) },
			[]want{{jwks, viJWKSFile, `"keys" is missing or empty`}}},
		{"jwks an array", func(t *testing.T, dir string) { put(t, dir, "oidc/jwks.json", `[{"kty": "OKP"}]`) },
			[]want{{jwks, viJWKSFile, "not a JSON Web Key Set"}}},
		{"jwks too large", func(t *testing.T, dir string) {
			put(t, dir, "oidc/jwks.json", `{"keys": [{"x": "`+strings.Repeat("a", maxJWKSBytes)+`"}]}`)
		}, []want{{jwks, viJWKSFile, "larger than"}}},
		{"oidc ca missing", func(t *testing.T, dir string) { rm(t, dir, "oidc/corp-ca.pem") },
			[]want{{"identity.oidc[0].ca_file", viCAFile, "does not exist"}}},
		{"oidc ca not PEM", func(t *testing.T, dir string) { put(t, dir, "oidc/corp-ca.pem", "x\n") },
			[]want{{"identity.oidc[0].ca_file", viCAFile, "no PEM certificates"}}},
		{"mfa key missing", func(t *testing.T, dir string) { rm(t, dir, "secrets/mfa.key") },
			[]want{{key, viEncFile, "does not exist"}}},
		{"mfa key empty", func(t *testing.T, dir string) { put(t, dir, "secrets/mfa.key", " \n") },
			[]want{{key, viEncFile, "is empty"}}},
		{"mfa key too short", func(t *testing.T, dir string) {
			put(t, dir, "secrets/mfa.key", base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key")))
		}, []want{{key, viEncFile, "decodes to 16 bytes; the key must be exactly 32 bytes"}}},
		{"mfa key hex too long", func(t *testing.T, dir string) {
			put(t, dir, "secrets/mfa.key", strings.Repeat("ab", 33))
		}, []want{{key, viEncFile, "66 hex digits"}}},
		{"mfa key not encoded", func(t *testing.T, dir string) { put(t, dir, "secrets/mfa.key", "correct horse battery staple!\n") },
			[]want{{key, viEncFile, "not hex or base64"}}},
		{"mfa key hex ok", func(t *testing.T, dir string) { put(t, dir, "secrets/mfa.key", strings.Repeat("0f", 32)+"\n") }, nil},
		{"mfa key from env", func(t *testing.T, dir string) {
			editFile(t, dir, "file: secrets/mfa.key", "env: WARDEN_TEST_MFA_KEY")
			t.Setenv("WARDEN_TEST_MFA_KEY", base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
		}, nil},
		{"mfa key env unset", func(t *testing.T, dir string) {
			editFile(t, dir, "file: secrets/mfa.key", "env: WARDEN_TEST_MFA_KEY")
			unsetenv(t, "WARDEN_TEST_MFA_KEY")
		}, []want{{"identity.mfa.encryption_key.env", viEncFile, "env WARDEN_TEST_MFA_KEY is not set"}}},
		{"mfa key invalid in the document is not read", func(t *testing.T, dir string) {
			editFile(t, dir, "file: secrets/mfa.key", "file: secrets/mfa.key\n      env: WARDEN_TEST_MFA_KEY")
		}, []want{{"identity.mfa.encryption_key", viEncFile - 1, "exactly one of env or file"}}},
		{"data paths are directories", func(t *testing.T, dir string) {
			mkdir(t, dir, "data/token-keys.json")
			mkdir(t, dir, "data/mfa.json")
			mkdir(t, dir, "data/revocations.json")
		}, []want{
			{"identity.tokens.keys_path", viTokKeys, "is a directory"},
			{"identity.mfa.store_path", viStore, "is a directory"},
			{"identity.revocations_path", viRevocation, "is a directory"},
		}},
		{"same file once resolved", func(t *testing.T, dir string) {
			editFile(t, dir, "revocations_path: data/revocations.json", "revocations_path: "+filepath.Join(dir, "data/keys.json"))
			editFile(t, dir, "store_path: data/mfa.json", "store_path: "+filepath.Join(dir, "data/token-keys.json"))
		}, []want{
			{"identity.mfa.store_path", viStore, "must not be the same file as identity.tokens.keys_path"},
			{"identity.revocations_path", viRevocation, "must not be the same file as keys.path"},
		}},
		{"validation and file errors together", func(t *testing.T, dir string) {
			editFile(t, dir, "kind: agent\n  tokens", "kind: robot\n  tokens")
			rm(t, dir, "spiffe/prod.pem")
			put(t, dir, "secrets/mfa.key", "hunter2!\n")
		}, []want{
			{b0, viBundle0, "does not exist"},
			{"identity.oidc[1].kind", 70, "unknown kind"},
			{key, viEncFile, "not hex or base64"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path, mfaKey := identityDir(t)
			tt.setup(t, dir)
			cfg, err := Load(path)
			checkErrors(t, err, tt.want)
			if err == nil {
				return
			}
			if cfg != nil {
				t.Error("config returned with an error")
			}
			for _, s := range []string{base64.StdEncoding.EncodeToString(mfaKey), "hunter2", "sixteen", "correct horse", "c2l4dGVlbi"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error leaks a secret: %v", err)
				}
			}
		})
	}
}

func TestMFAKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(0xf0 + i) // base64 of it uses '+' and '/' (std) or '-' and '_' (url)
	}
	tests := []struct {
		name, secret string
		wantErr      string
	}{
		{"hex", hex.EncodeToString(raw), ""},
		{"hex upper case", strings.ToUpper(hex.EncodeToString(raw)), ""},
		{"base64", base64.StdEncoding.EncodeToString(raw), ""},
		{"base64 raw", base64.RawStdEncoding.EncodeToString(raw), ""},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), ""},
		{"base64 url raw", base64.RawURLEncoding.EncodeToString(raw), ""},
		{"surrounding white space", "\t " + base64.StdEncoding.EncodeToString(raw) + "\r\n", ""},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), "decodes to 31 bytes"},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), "decodes to 33 bytes"},
		{"hex 63 digits", hex.EncodeToString(raw)[:63], "63 hex digits; the key must be exactly 32 bytes"},
		{"passphrase", "my secret passphrase", "not hex or base64"},
		{"empty", "\n", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WARDEN_TEST_MFA_KEY", tt.secret)
			got, err := (&MFA{EncryptionKey: Credential{Env: "WARDEN_TEST_MFA_KEY"}}).Key()
			if tt.wantErr == "" {
				if err != nil || string(got) != string(raw) {
					t.Fatalf("Key() = %x, %v; want %x", got, err, raw)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Key() error = %v, want one containing %q", err, tt.wantErr)
			}
			if got != nil {
				t.Errorf("Key() returned a key with an error")
			}
			if s := strings.TrimSpace(tt.secret); s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
	for _, m := range []*MFA{nil, {}, {EncryptionKey: Credential{Env: "A", File: "b"}}} {
		if _, err := m.Key(); err == nil {
			t.Errorf("Key() on %+v: no error", m)
		}
	}
}

// TestTrustDomainRule checks that checkTrustDomain agrees with go-spiffe on
// names (it refuses the spiffe:// form, which go-spiffe also takes).
func TestTrustDomainRule(t *testing.T) {
	for _, name := range []string{
		"example.org", "prod.example.org", "a", "a-b_c.1", "EXAMPLE.org", "ex ample", "ex%41", "例え.jp",
		"example.org:8080", "example.org/x", "spiffe://example.org", "spiffe:/example.org", "", ".", "a..b",
	} {
		_, spiffeErr := spiffeid.TrustDomainFromString(name)
		err := checkTrustDomain(name)
		if strings.Contains(name, ":/") {
			if err == nil {
				t.Errorf("%q: accepted a SPIFFE ID where a trust domain name is expected", name)
			}
			continue
		}
		if (err == nil) != (spiffeErr == nil) {
			t.Errorf("%q: checkTrustDomain = %v, go-spiffe = %v", name, err, spiffeErr)
		}
	}
}

// TestTLSModeSPIFFE: a listener may take warden's certificate from the SPIRE
// Workload API, but only when a socket is configured.
func TestTLSModeSPIFFE(t *testing.T) {
	const doc = `listeners:
  - address: 127.0.0.1:8443
    tls:
      mode: spiffe
routes:
  - name: r
    prefix: /v1/
    segment: inference
    upstream: {url: "http://127.0.0.1:9000"}
policy: {dir: policy}
`
	if _, err := Parse([]byte(doc+"identity:\n  mtls:\n    workload_api_socket: unix:///run/spire/agent.sock\n"), "w.yaml"); err != nil {
		t.Fatalf("spiffe mode with a socket: %v", err)
	}
	_, err := Parse([]byte(doc), "w.yaml")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Errors) != 1 || ve.Errors[0].Field != "listeners[0].tls.mode" || ve.Errors[0].Line != 4 {
		t.Fatalf("spiffe mode without a socket: %v", err)
	}
}
