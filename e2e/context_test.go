package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// postureRego requires a managed device for every request: absent posture
// is a 403 from policy, a forged one a 401 from the assess stage.
const postureRego = `package warden.authz

deny contains "a managed device is required" if {
	not input.context.posture.managed == true
}

deny contains "posture must come from the signed header" if {
	input.context.posture_source != "header"
}
`

// TestSignedPosture drives signed device posture through the real binary:
// a posture service's JWKS file is configured (by a relative path), and the
// policy requires input.context.posture.managed == true.
func TestSignedPosture(t *testing.T) {
	_, mdmKey, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	_, forgerKey, err := ed25519.GenerateKey(rand.Reader)
	must(t, err)
	e := startWardenOpts(t, options{
		Policy: map[string]string{"posture.rego": postureRego},
		Prepare: func(dir string) {
			b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
				{Key: mdmKey.Public(), KeyID: "mdm-2025", Algorithm: "EdDSA", Use: "sig"},
			}})
			must(t, err)
			must(t, os.MkdirAll(filepath.Join(dir, "posture"), 0o700))
			must(t, os.WriteFile(filepath.Join(dir, "posture", "jwks.json"), b, 0o600))
		},
		Identity: "context:\n  posture:\n    jwks_file: posture/jwks.json\n    max_age: 10m\n",
	})

	assertion := func(key ed25519.PrivateKey, sub string, posture map[string]any) string {
		t.Helper()
		now := time.Now()
		payload, err := json.Marshal(map[string]any{
			"iss": "https://mdm.example.org", "sub": sub, "aud": "warden",
			"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(5 * time.Minute).Unix(),
			"posture": posture,
		})
		must(t, err)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "mdm-2025"))
		must(t, err)
		jws, err := signer.Sign(payload)
		must(t, err)
		s, err := jws.CompactSerialize()
		must(t, err)
		return s
	}
	managed := map[string]any{"managed": true, "os": "macOS 15.5", "disk_encrypted": true}

	type errorBody struct {
		Error struct{ Message, Type, Code string }
	}
	chat := func(posture string) (int, errorBody, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, e.base+"/v1/chat/completions",
			strings.NewReader(`{"model":"warden-standin-small","messages":[{"role":"user","content":"hi"}]}`))
		must(t, err)
		req.Header.Set("Authorization", "Bearer "+e.appKey)
		req.Header.Set("Content-Type", "application/json")
		if posture != "" {
			req.Header.Set("X-Warden-Posture", posture)
		}
		res, err := e.httpClient.Do(req)
		must(t, err)
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		must(t, err)
		var body errorBody
		if res.StatusCode != http.StatusOK {
			must(t, json.Unmarshal(raw, &body))
		}
		return res.StatusCode, body, string(raw)
	}

	t.Run("valid signed posture is allowed", func(t *testing.T) {
		tok := assertion(mdmKey, "e2e-app", managed)
		status, _, raw := chat(tok)
		if status != http.StatusOK {
			t.Fatalf("status %d: %s", status, raw)
		}
		h := e.model.LastHeaders()
		if h.Get("X-Warden-Posture") != "" || strings.Contains(strings.Join(headerValues(h), " "), tok[len(tok)-20:]) {
			t.Fatal("the posture assertion reached the upstream")
		}
	})

	t.Run("forged posture is 401", func(t *testing.T) {
		for name, tok := range map[string]string{
			"signed by another key":  assertion(forgerKey, "e2e-app", managed),
			"for another principal":  assertion(mdmKey, "e2e-readonly", managed),
			"unsigned":               unsignedAssertion(t, "e2e-app", managed),
			"tampered after signing": tamper(t, assertion(mdmKey, "e2e-app", map[string]any{"managed": false}), managed),
			"not a token":            "managed=true",
		} {
			status, body, raw := chat(tok)
			if status != http.StatusUnauthorized || body.Error.Code != "invalid_posture" || body.Error.Type != "authentication_error" {
				t.Fatalf("%s: status %d: %s", name, status, raw)
			}
			for _, leak := range []string{"e2e-app", "e2e-readonly", "signature", "kid", "mdm-2025", "sub"} {
				if strings.Contains(raw, leak) {
					t.Fatalf("%s: the error leaks %q: %s", name, leak, raw)
				}
			}
		}
	})

	t.Run("no posture is 403 from policy", func(t *testing.T) {
		status, body, raw := chat("")
		if status != http.StatusForbidden || body.Error.Code != "policy_denied" {
			t.Fatalf("status %d: %s", status, raw)
		}
	})

	t.Run("verified but unmanaged posture is 403 from policy", func(t *testing.T) {
		status, body, raw := chat(assertion(mdmKey, "e2e-app", map[string]any{"managed": false}))
		if status != http.StatusForbidden || body.Error.Code != "policy_denied" {
			t.Fatalf("status %d: %s", status, raw)
		}
	})
}

// unsignedAssertion is an alg "none" JWT.
func unsignedAssertion(t *testing.T, sub string, posture map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(map[string]any{"sub": sub, "aud": "warden", "iat": time.Now().Unix(),
		"exp": time.Now().Add(time.Minute).Unix(), "posture": posture})
	must(t, err)
	return b64(map[string]string{"alg": "none"}) + "." + b64(json.RawMessage(payload)) + "."
}

// tamper swaps the posture in a signed assertion, keeping the signature.
func tamper(t *testing.T, tok string, posture map[string]any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(raw, &c))
	c["posture"] = posture
	payload, err := json.Marshal(c)
	must(t, err)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func headerValues(h http.Header) []string {
	var out []string
	for _, vs := range h {
		out = append(out, vs...)
	}
	return out
}
