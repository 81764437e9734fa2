package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/gateway"
)

// FuzzAuthenticate feeds arbitrary strings to the authenticator: it must
// never panic, and it must never return a principal for content warden did
// not sign. (Encodings may vary — base64 trailing bits, ECDSA signature
// malleability — so the check compares the decoded header and payload with
// those of the tokens the issuer made.)
func FuzzAuthenticate(f *testing.F) {
	k := newKit(f)
	key := k.activeKey(f, t0)
	signed := map[string]bool{}
	add := func(tok string) {
		h, p, _, ok := segments(tok)
		if !ok {
			f.Fatal("issuer made a token that does not split")
		}
		signed[string(h)+"\x00"+string(p)] = true
		f.Add(tok)
	}
	add(k.issue(f, Claims{Subject: "alice", Scopes: []string{"inference:chat"}}, 0, t0))
	add(k.issue(f, Claims{Subject: "alice", Actor: "agent-1", Scopes: []string{"tools:*"}, MFA: true}, 0, t0))
	add(k.issue(f, Claims{Subject: "svc", Kind: "service", Groups: []string{"g"}, Roles: []string{"r"}}, 0, t0))
	good := k.issue(f, Claims{Subject: "bob"}, 0, t0)
	add(good)
	f.Add(rewritePayload(f, good, func(m map[string]any) { m["sub"] = "root" }))
	f.Add(signRaw(f, jose.HS256, []byte(strings.Repeat("k", 32)), key.info.KID, Type, validWire(t0)))
	f.Add(b64json(f, map[string]string{"alg": "none", "typ": "at+jwt", "kid": key.info.KID}) + "." + strings.Split(good, ".")[1] + ".")
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA", strings.Repeat("A.", 5000)} {
		f.Add(s)
	}
	now := t0.Add(time.Minute)
	f.Fuzz(func(t *testing.T, tok string) {
		c := creds(tok)
		_ = k.auth.Handles(c)
		p, err := k.auth.Authenticate(context.Background(), c, now)
		if err != nil {
			if p.ID != "" || p.Kind != "" {
				t.Fatalf("principal returned with an error: %+v", p)
			}
			if !notProven(err) {
				t.Fatalf("a fault for input alone (the stores are healthy): %v", err)
			}
			return
		}
		h, pl, _, ok := segments(tok)
		if !ok || !signed[string(h)+"\x00"+string(pl)] {
			t.Fatalf("principal %+v for content warden did not sign: %q", p, tok)
		}
		if p.ID == "" || p.AuthMethod != AuthMethod || p.CredentialID == "" {
			t.Fatalf("incomplete principal %+v", p)
		}
	})
}

// FuzzParseExchangeForm checks the token exchange form parser: no panics,
// and whatever it accepts is well-formed.
func FuzzParseExchangeForm(f *testing.F) {
	f.Add(formCT, []byte(exchangeForm("scope", "a b seg:*", "expires_in", "60").Encode()))
	f.Add(formCT+"; charset=UTF-8", []byte(exchangeForm("subject_token", "x.y.z", "subject_token_type", TokenTypeJWT).Encode()))
	f.Add(formCT, []byte("grant_type="+GrantTypeTokenExchange+"&scope=%20%20&audience=warden"))
	f.Add("application/json", []byte(`{}`))
	f.Add(formCT, []byte("grant_type=a&grant_type=b"))
	f.Add(formCT, []byte("%zz"))
	f.Add("", []byte(nil))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req, oe := parseExchangeForm(contentType, body)
		if oe != nil {
			if oe.status != http.StatusBadRequest || oe.code == "" || oe.desc == "" {
				t.Fatalf("bad error %+v", oe)
			}
			return
		}
		for _, s := range req.scopes {
			if !ValidScope(s) {
				t.Fatalf("accepted invalid scope %q", s)
			}
		}
		if len(req.scopes) > maxScopes {
			t.Fatalf("%d scopes accepted", len(req.scopes))
		}
		if req.subjectToken != "" && req.subjectTokenType != TokenTypeJWT && req.subjectTokenType != TokenTypeAccessToken {
			t.Fatalf("subject token type %q accepted", req.subjectTokenType)
		}
		if req.subjectToken == "" && req.subjectTokenType != "" {
			t.Fatal("type without token accepted")
		}
		if req.expiresIn < 0 || req.expiresIn > maxExpiresIn*time.Second {
			t.Fatalf("expires_in %v accepted", req.expiresIn)
		}
	})
}

// FuzzServeExchange runs whole exchanges with an arbitrary body: the
// response is always a complete JSON document and never 200 for a body
// that does not parse.
func FuzzServeExchange(f *testing.F) {
	k := newKit(f)
	now := func() time.Time { return t0 }
	ex := NewExchanger(k.iss, verifyWith(k.auth, nil, now), testCfg)
	ex.now = now
	f.Add([]byte(exchangeForm("scope", "a").Encode()))
	f.Add([]byte(exchangeForm("subject_token", "oidc:x", "subject_token_type", TokenTypeJWT).Encode()))
	caller := gateway.Principal{Kind: "service", ID: "svc", Scopes: []string{"a", "seg:*"}}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/warden/token", nil)
		r.Header.Set("Content-Type", formCT)
		rec := httptest.NewRecorder()
		c := caller
		err := ex.ServeExchange(&gateway.Exchange{Request: r, Writer: gateway.NewResponseWriter(rec), Body: body, Principal: &c})
		if rec.Body.Len() == 0 || !utf8.Valid(rec.Body.Bytes()) {
			t.Fatalf("empty or invalid response for %q", body)
		}
		if (err == nil) != (rec.Code == http.StatusOK) {
			t.Fatalf("status %d with error %v", rec.Code, err)
		}
		if _, oe := parseExchangeForm(formCT, body); oe != nil && rec.Code == http.StatusOK {
			t.Fatal("200 for a form the parser refuses")
		}
	})
}
