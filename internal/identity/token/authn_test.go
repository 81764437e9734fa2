package token

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

func TestIssueVerifyRoundtrip(t *testing.T) {
	k := newKit(t)
	tests := []struct {
		name   string
		claims Claims
		want   gateway.Principal
	}{
		{
			name:   "user",
			claims: Claims{Subject: "alice", Scopes: []string{"inference:chat", "models:read"}, Groups: []string{"eng team"}, Roles: []string{"dev"}},
			want: gateway.Principal{Kind: "user", ID: "alice", Scopes: []string{"inference:chat", "models:read"},
				Groups: []string{"eng team"}, Roles: []string{"dev"}},
		},
		{
			name:   "service",
			claims: Claims{Subject: "spiffe://prod.example.org/billing", Kind: "service", Scopes: []string{"seg:*"}},
			want:   gateway.Principal{Kind: "service", ID: "spiffe://prod.example.org/billing", Scopes: []string{"seg:*"}},
		},
		{
			name:   "agent acting for a user",
			claims: Claims{Subject: "alice", Actor: "agent-planner", Scopes: []string{"tools:search"}},
			want:   gateway.Principal{Kind: "agent", ID: "agent-planner", OnBehalfOf: "alice", Scopes: []string{"tools:search"}},
		},
		{
			name:   "agent on its own",
			claims: Claims{Subject: "agent-cron", Kind: "agent"},
			want:   gateway.Principal{Kind: "agent", ID: "agent-cron"},
		},
		{
			name:   "mfa",
			claims: Claims{Subject: "alice", MFA: true, Scopes: []string{"admin"}},
			want:   gateway.Principal{Kind: "user", ID: "alice", MFA: true, Scopes: []string{"admin"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, exp, err := k.iss.Issue(tt.claims, 0, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !exp.Equal(t0.Add(5 * time.Minute)) {
				t.Fatalf("exp = %v, want the 5m default", exp)
			}
			if !k.auth.Handles(creds(tok)) {
				t.Fatal("Handles = false for warden's own token")
			}
			p, err := k.auth.Authenticate(context.Background(), creds(tok), t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if p.CredentialID == "" || len(p.CredentialID) != 22 {
				t.Fatalf("jti %q: want 128 random bits, base64url", p.CredentialID)
			}
			want := tt.want
			want.AuthMethod, want.Issuer, want.CredentialID = "token", "warden", p.CredentialID
			want.AuthTime, want.ExpiresAt = t0, exp
			if !principalsEqual(p, want) {
				t.Fatalf("principal\n got %+v\nwant %+v", p, want)
			}
			if err := k.auth.Revalidate(&p, t0.Add(time.Minute)); err != nil {
				t.Fatalf("Revalidate = %v", err)
			}
			if err := k.auth.Revalidate(&p, exp); !notProven(err) {
				t.Fatalf("Revalidate at exp = %v, want not proven", err)
			}
		})
	}
}

func principalsEqual(a, b gateway.Principal) bool {
	return a.Kind == b.Kind && a.ID == b.ID && a.OnBehalfOf == b.OnBehalfOf && a.AuthMethod == b.AuthMethod &&
		a.CredentialID == b.CredentialID && a.Issuer == b.Issuer && a.AuthTime.Equal(b.AuthTime) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.Roles, b.Roles) && a.MFA == b.MFA && a.Workload == b.Workload
}

func TestTokenHeaderAndClaims(t *testing.T) {
	k := newKit(t)
	tok := k.issue(t, Claims{Subject: "alice", Actor: "agent-1", Scopes: []string{"a", "b"}, MFA: true}, 0, t0)
	h, p, _, ok := segments(tok)
	if !ok {
		t.Fatal("not a compact JWS")
	}
	for _, want := range []string{`"alg":"ES256"`, `"typ":"at+jwt"`, `"kid":"` + k.activeKey(t, t0).info.KID + `"`} {
		if !strings.Contains(string(h), want) {
			t.Fatalf("header %s lacks %s", h, want)
		}
	}
	for _, want := range []string{`"iss":"warden"`, `"sub":"alice"`, `"act":{"sub":"agent-1"}`, `"kind":"agent"`,
		`"scope":"a b"`, `"amr":["mfa"]`, `"aud":"warden"`, `"client_id":"agent-1"`, `"iat":`, `"nbf":`, `"exp":`, `"jti":`} {
		if !strings.Contains(string(p), want) {
			t.Fatalf("payload %s lacks %s", p, want)
		}
	}
}

func TestAuthenticateRejects(t *testing.T) {
	k := newKit(t)
	key := k.activeKey(t, t0)
	kid := key.info.KID
	good := k.issue(t, Claims{Subject: "alice", Scopes: []string{"inference:chat"}}, 0, t0)

	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.pub)
	if err != nil {
		t.Fatal(err)
	}
	pubJWK, err := key.jwk.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	noneHeader := b64json(t, map[string]string{"alg": "none", "kid": kid, "typ": "at+jwt"})
	goodPayload := strings.Split(good, ".")[1]

	wire := func(edit func(w *wireClaims)) wireClaims {
		w := validWire(t0)
		if edit != nil {
			edit(&w)
		}
		return w
	}
	tests := []struct {
		name string
		tok  string
		now  time.Time
	}{
		{"empty", "", t0},
		{"garbage", "not a token", t0},
		{"three empty segments", "..", t0},
		{"tampered payload", rewritePayload(t, good, func(m map[string]any) { m["scope"] = "admin" }), t0},
		{"tampered subject", rewritePayload(t, good, func(m map[string]any) { m["sub"] = "root" }), t0},
		{"added actor", rewritePayload(t, good, func(m map[string]any) { m["act"] = map[string]string{"sub": "evil"} }), t0},
		{"tampered signature", good[:len(good)-4] + flip(good[len(good)-4:]), t0},
		{"signature removed", strings.Join(strings.Split(good, ".")[:2], ".") + ".", t0},
		{"alg none", noneHeader + "." + goodPayload + ".", t0},
		{"HS256 keyed with the public key (DER)", signRaw(t, jose.HS256, pubDER, kid, Type, wire(nil)), t0},
		{"HS256 keyed with the public key (JWK)", signRaw(t, jose.HS256, pubJWK, kid, Type, wire(nil)), t0},
		{"RS256", signRaw(t, jose.RS256, rsaKey, kid, Type, wire(nil)), t0},
		{"ES256 by a foreign key under warden's kid", signRaw(t, jose.ES256, foreign, kid, Type, wire(nil)), t0},
		{"unknown kid", signRaw(t, jose.ES256, foreign, "unknown-kid", Type, wire(nil)), t0},
		{"no kid", signRaw(t, jose.ES256, key.priv, "", Type, wire(nil)), t0},
		{"typ JWT", signRaw(t, jose.ES256, key.priv, kid, "JWT", wire(nil)), t0},
		{"no typ", signRaw(t, jose.ES256, key.priv, kid, "", wire(nil)), t0},
		{"expired", good, t0.Add(5*time.Minute + ClockSkew + time.Second)},
		{"nbf in the future", k.issue(t, Claims{Subject: "alice", Scopes: []string{"a"}}, 0, t0.Add(time.Minute)), t0},
		{"iat in the future", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) {
			w.NotBefore = nil
			w.IssuedAt = w.Expiry
		})), t0},
		{"other issuer signed by warden's key", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.Issuer = "https://idp.example" })), t0},
		{"other audience", k.issue(t, Claims{Subject: "alice", Audience: []string{"mcp-server"}}, 0, t0), t0},
		{"no exp", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.Expiry = nil })), t0},
		{"no iat", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.IssuedAt = nil })), t0},
		{"no jti", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.ID = "" })), t0},
		{"no sub", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.Subject = "" })), t0},
		{"bad kind", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.Kind = "root" })), t0},
		{"act with kind service", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) {
			w.Kind, w.Act = "service", &actClaim{Sub: "agent"}
		})), t0},
		{"act without sub", signRaw(t, jose.ES256, key.priv, kid, Type, wire(func(w *wireClaims) { w.Act = &actClaim{} })), t0},
		{"too large", good + strings.Repeat("A", MaxTokenBytes), t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := k.auth.Authenticate(context.Background(), creds(tt.tok), tt.now)
			if !notProven(err) {
				t.Fatalf("Authenticate = %+v, %v; want not proven", p, err)
			}
			t.Logf("reason: %v", err)
			if p.ID != "" {
				t.Fatalf("a principal came back with the error: %+v", p)
			}
			if tt.tok != "" && len(tt.tok) > 20 && strings.Contains(err.Error(), tt.tok) {
				t.Fatal("the reason contains the token")
			}
		})
	}

	// Within the clock skew a token is still good.
	if _, err := k.auth.Verify(good, t0.Add(5*time.Minute+ClockSkew-time.Second)); err != nil {
		t.Fatalf("within skew: %v", err)
	}
}

func flip(s string) string {
	b := []byte(s)
	if b[0] == 'A' {
		b[0] = 'B'
	} else {
		b[0] = 'A'
	}
	return string(b)
}

func TestHandles(t *testing.T) {
	k := newKit(t)
	key := k.activeKey(t, t0)
	other := validWire(t0)
	other.Issuer = "https://idp.example"
	tests := []struct {
		name string
		tok  string
		want bool
	}{
		{"warden token", k.issue(t, Claims{Subject: "alice"}, 0, t0), true},
		{"other issuer", signRaw(t, jose.ES256, key.priv, key.info.KID, Type, other), false},
		{"api key", "wk_0123456789abcdef01234567_" + strings.Repeat("A", 43), false},
		{"garbage", "a.b.c", false},
		{"payload not json", "e30." + b64json(t, "x")[:2] + ".sig", false},
		{"iss not a string", "e30." + b64json(t, map[string]any{"iss": 1}) + ".sig", false},
		{"too large", "e30." + b64json(t, map[string]any{"iss": "warden", "x": strings.Repeat("a", MaxTokenBytes)}) + ".sig", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.auth.Handles(creds(tt.tok)); got != tt.want {
				t.Fatalf("Handles = %v, want %v", got, tt.want)
			}
		})
	}
	if k.auth.Handles(nil) {
		t.Fatal("Handles(nil)")
	}
	if k.auth.Name() == "" {
		t.Fatal("empty Name")
	}
}

func TestRevokedToken(t *testing.T) {
	k := newKit(t)
	tok, exp, err := k.iss.Issue(Claims{Subject: "alice", Scopes: []string{"a"}}, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.auth.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.rl.Revoke(revoke.Entry{Kind: revoke.KindToken, Value: p.CredentialID, Until: exp}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.auth.Verify(tok, t0.Add(time.Second)); !notProven(err) || !errors.Is(err, revoke.ErrRevoked) {
		t.Fatalf("revoked token: %v, want not proven (revoked)", err)
	}
	if err := k.auth.Revalidate(&p, t0.Add(time.Second)); !notProven(err) {
		t.Fatalf("Revalidate of a revoked token = %v, want not proven", err)
	}
}

func TestSubjectRevocationEndsOlderTokensOnly(t *testing.T) {
	k := newKit(t)
	older := k.issue(t, Claims{Subject: "alice", Scopes: []string{"a"}}, 0, t0)
	olderAgent := k.issue(t, Claims{Subject: "bob", Actor: "agent-x", Scopes: []string{"a"}}, 0, t0)
	pOld, err := k.auth.Verify(older, t0)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(10 * time.Second)
	for _, id := range []string{"alice", "agent-x"} {
		if err := k.rl.Revoke(revoke.Entry{Kind: revoke.KindSubject, Value: id, At: at, Until: at.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	newer := k.issue(t, Claims{Subject: "alice", Scopes: []string{"a"}}, 0, at.Add(time.Second))
	now := at.Add(2 * time.Second)
	tests := []struct {
		name    string
		tok     string
		revoked bool
	}{
		{"issued before the revocation", older, true},
		{"agent token whose actor was revoked", olderAgent, true},
		{"issued after the revocation", newer, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := k.auth.Verify(tt.tok, now)
			if tt.revoked != notProven(err) || (!tt.revoked && err != nil) {
				t.Fatalf("Verify = %v, want revoked=%v", err, tt.revoked)
			}
		})
	}
	if err := k.auth.Revalidate(&pOld, now); !notProven(err) {
		t.Fatalf("Revalidate of an older token = %v", err)
	}
}

func TestFailClosed(t *testing.T) {
	t.Run("revocation list corrupt", func(t *testing.T) {
		k := newKit(t)
		tok := k.issue(t, Claims{Subject: "alice"}, 0, t0)
		p, err := k.auth.Verify(tok, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(k.rl.Path(), []byte("{corrupt"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := k.rl.Reload(); err == nil {
			t.Fatal("Reload of a corrupt list succeeded")
		}
		_, err = k.auth.Verify(tok, t0)
		if err == nil || errors.Is(err, identity.ErrNotProven) || !errors.Is(err, revoke.ErrUnavailable) {
			t.Fatalf("Verify = %v, want a fault wrapping revoke.ErrUnavailable", err)
		}
		if err := k.auth.Revalidate(&p, t0); err == nil || errors.Is(err, identity.ErrNotProven) {
			t.Fatalf("Revalidate = %v, want a fault", err)
		}
	})
	t.Run("key set corrupt", func(t *testing.T) {
		k := newKit(t)
		tok := k.issue(t, Claims{Subject: "alice"}, 0, t0)
		if err := os.WriteFile(k.keys.Path(), []byte(`{"version":1,"keys":[{"kid":"x"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := k.keys.Reload(); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("Reload = %v", err)
		}
		_, err := k.auth.Verify(tok, t0)
		if err == nil || errors.Is(err, identity.ErrNotProven) || !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("Verify = %v, want a fault wrapping ErrKeysUnavailable", err)
		}
		if _, _, err := k.iss.Issue(Claims{Subject: "alice"}, 0, t0); !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("Issue = %v", err)
		}
	})
	t.Run("no revocation list", func(t *testing.T) {
		k := newKit(t)
		a := NewAuthenticator(k.keys, nil, testCfg)
		_, err := a.Verify(k.issue(t, Claims{Subject: "alice"}, 0, t0), t0)
		if err == nil || errors.Is(err, identity.ErrNotProven) {
			t.Fatalf("Verify = %v, want a fault", err)
		}
	})
	t.Run("unopened key set", func(t *testing.T) {
		a := NewAuthenticator(&KeySet{}, nil, testCfg)
		if _, err := a.Verify("a.b.c", t0); err == nil || errors.Is(err, identity.ErrNotProven) {
			t.Fatalf("Verify = %v, want a fault", err)
		}
	})
}

func TestIssueElevated(t *testing.T) {
	k := newKit(t)
	tests := []struct {
		name    string
		p       gateway.Principal
		ttl     time.Duration
		wantExp time.Time
		want    gateway.Principal
	}{
		{
			name:    "user",
			p:       gateway.Principal{Kind: "user", ID: "alice", Scopes: []string{"a"}, Groups: []string{"g"}, Roles: []string{"r"}, AuthMethod: "jwt"},
			ttl:     10 * time.Minute,
			wantExp: t0.Add(10 * time.Minute),
			want:    gateway.Principal{Kind: "user", ID: "alice", Scopes: []string{"a"}, Groups: []string{"g"}, Roles: []string{"r"}, MFA: true},
		},
		{
			name:    "agent for a user",
			p:       gateway.Principal{Kind: "agent", ID: "agent-1", OnBehalfOf: "alice", Scopes: []string{"a"}},
			wantExp: t0.Add(5 * time.Minute),
			want:    gateway.Principal{Kind: "agent", ID: "agent-1", OnBehalfOf: "alice", Scopes: []string{"a"}, MFA: true},
		},
		{
			name:    "capped by the credential's expiry",
			p:       gateway.Principal{Kind: "service", ID: "svc", ExpiresAt: t0.Add(2 * time.Minute)},
			ttl:     10 * time.Minute,
			wantExp: t0.Add(2 * time.Minute),
			want:    gateway.Principal{Kind: "service", ID: "svc", MFA: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, exp, err := k.iss.IssueElevated(tt.p, tt.ttl, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !exp.Equal(tt.wantExp) {
				t.Fatalf("exp = %v, want %v", exp, tt.wantExp)
			}
			p, err := k.auth.Verify(tok, t0)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.AuthMethod, want.Issuer, want.CredentialID, want.AuthTime, want.ExpiresAt = "token", "warden", p.CredentialID, t0, exp
			if !principalsEqual(p, want) {
				t.Fatalf("principal\n got %+v\nwant %+v", p, want)
			}
		})
	}
	if _, _, err := k.iss.IssueElevated(gateway.Principal{Kind: "user", ID: "a", ExpiresAt: t0}, 0, t0); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("elevating an expired credential: %v", err)
	}
}

func TestIssueInvalid(t *testing.T) {
	k := newKit(t)
	many := make([]string, maxAttrs+1)
	for i := range many {
		many[i] = "g" + string(rune('a'+i%26)) + strings.Repeat("x", i)
	}
	tests := []struct {
		name string
		c    Claims
	}{
		{"no subject", Claims{}},
		{"subject with space", Claims{Subject: "a b"}},
		{"bad kind", Claims{Subject: "a", Kind: "root"}},
		{"actor with kind service", Claims{Subject: "a", Actor: "b", Kind: "service"}},
		{"bad actor", Claims{Subject: "a", Actor: "b\n"}},
		{"bad scope", Claims{Subject: "a", Scopes: []string{`a"b`}}},
		{"scope with space", Claims{Subject: "a", Scopes: []string{"a b"}}},
		{"too many groups", Claims{Subject: "a", Groups: many}},
		{"control char in role", Claims{Subject: "a", Roles: []string{"x\x01"}}},
		{"token too large", Claims{Subject: "a", Groups: bigGroups()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := k.iss.Issue(tt.c, 0, t0); !errors.Is(err, ErrInvalidClaims) {
				t.Fatalf("Issue = %v, want ErrInvalidClaims", err)
			}
		})
	}
}

func bigGroups() []string {
	g := make([]string, 40)
	for i := range g {
		g[i] = strings.Repeat(string(rune('a'+i%26)), 200) + string(rune('A'+i))
	}
	return g
}

func TestIssueTTL(t *testing.T) {
	k := newKit(t)
	tests := []struct {
		ttl  time.Duration
		want time.Duration
	}{
		{0, 5 * time.Minute},
		{-time.Second, 5 * time.Minute},
		{time.Minute, time.Minute},
		{90 * time.Second, 90 * time.Second},
		{48 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		_, exp, err := k.iss.Issue(Claims{Subject: "alice"}, tt.ttl, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := exp.Sub(t0); got != tt.want {
			t.Errorf("ttl %v: lifetime %v, want %v", tt.ttl, got, tt.want)
		}
	}
	if _, _, err := k.iss.Issue(Claims{Subject: "alice"}, 500*time.Millisecond, t0); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("sub-second lifetime: %v", err)
	}
}

func TestNoSigningKey(t *testing.T) {
	dir := t.TempDir()
	keys, err := OpenKeySet(dir+"/k.json", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := NewIssuer(keys, testCfg).Issue(Claims{Subject: "a"}, 0, t0); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("Issue without keys = %v", err)
	}
}

// TestDerivedTokenEndsWithItsParents: a token records the credentials it
// was derived from and is refused once any of them is revoked — an API key
// through the parent check, a warden token through the revocation list,
// along a chain of exchanges — and as a fault when a parent cannot be
// checked.
func TestDerivedTokenEndsWithItsParents(t *testing.T) {
	keyErr := map[string]error{}
	check := func(method, id string, _ time.Time) error {
		if method != identity.AuthMethodAPIKey {
			return nil
		}
		return keyErr[id]
	}
	k := newKit(t)
	k.auth.CheckParents(check)
	fromKey := k.issue(t, principalClaims(gateway.Principal{Kind: "service", ID: "svc", AuthMethod: identity.AuthMethodAPIKey,
		CredentialID: "key1", Scopes: []string{"a"}}), 0, t0)
	pKey, err := k.auth.Verify(fromKey, t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api_key:key1"}; !slices.Equal(pKey.Parents, want) {
		t.Fatalf("parents %v, want %v", pKey.Parents, want)
	}
	// a token exchanged from that token: both are its parents
	fromToken := k.issue(t, principalClaims(pKey), 0, t0)
	pTok, err := k.auth.Verify(fromToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"api_key:key1", "token:" + pKey.CredentialID}; !slices.Equal(pTok.Parents, want) {
		t.Fatalf("parents %v, want %v", pTok.Parents, want)
	}
	fromJWT := k.issue(t, principalClaims(gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", CredentialID: "jti-9",
		Scopes: []string{"a"}}), 0, t0)

	at := t0.Add(time.Minute)
	// the parent token revoked: the child is refused, the key's token is not
	if err := k.rl.Revoke(revoke.Entry{Kind: revoke.KindToken, Value: pKey.CredentialID, Until: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := k.auth.Verify(fromToken, at); !notProven(err) || !errors.Is(err, revoke.ErrRevoked) {
		t.Fatalf("child of a revoked token: %v, want not proven (revoked)", err)
	}
	if err := k.auth.Revalidate(&pTok, at); !notProven(err) {
		t.Fatalf("Revalidate of a child of a revoked token: %v, want not proven", err)
	}
	// another token of the same key, its own jti not revoked
	fromKey2 := k.issue(t, principalClaims(gateway.Principal{Kind: "service", ID: "svc", AuthMethod: identity.AuthMethodAPIKey,
		CredentialID: "key1", Scopes: []string{"a"}}), 0, t0)
	pKey2, err := k.auth.Verify(fromKey2, at)
	if err != nil {
		t.Fatal(err)
	}
	// the key revoked
	keyErr["key1"] = identity.NotProven("key1 revoked")
	if _, err := k.auth.Verify(fromKey2, at); !notProven(err) {
		t.Fatalf("token of a revoked key: %v, want not proven", err)
	}
	if err := k.auth.Revalidate(&pKey2, at); !notProven(err) {
		t.Fatalf("Revalidate of a token of a revoked key: %v, want not proven", err)
	}
	// the key store cannot tell: a fault, not a refusal (fails closed)
	keyErr["key1"] = errors.New("key store unreadable")
	if _, err := k.auth.Verify(fromKey2, at); err == nil || notProven(err) {
		t.Fatalf("key store down: %v, want a fault", err)
	}
	// a JWT is not recorded as a parent: its subject's revocation and its expiry apply
	if pj, err := k.auth.Verify(fromJWT, at); err != nil || len(pj.Parents) != 0 {
		t.Fatalf("token of a JWT: parents %v, %v; want none (a JWT's id is not recorded)", pj.Parents, err)
	}
	// no parent check at all: an API key parent cannot be checked, a fault
	bare := NewAuthenticator(k.keys, k.rl, testCfg)
	if _, err := bare.Verify(fromKey2, t0); err == nil || notProven(err) {
		t.Fatalf("without a parent check: %v, want a fault", err)
	}
}

// TestParentsBounded: a chain of more than MaxParents credentials is not
// issued, and a token claiming malformed parents is refused.
func TestParentsBounded(t *testing.T) {
	k := newKit(t)
	c := Claims{Subject: "svc", Kind: "service", Scopes: []string{"a"}}
	for i := range MaxParents + 1 {
		c.Parents = append(c.Parents, fmt.Sprintf("token:t%d", i))
	}
	if _, _, err := k.iss.Issue(c, 0, t0); !errors.Is(err, ErrInvalidClaims) {
		t.Fatalf("issue with %d parents: %v, want invalid claims", len(c.Parents), err)
	}
	for _, bad := range []string{"nocolon", ":id", "API_KEY:k", "api_key:", "api_key:bad id"} {
		c.Parents = []string{bad}
		if _, _, err := k.iss.Issue(c, 0, t0); !errors.Is(err, ErrInvalidClaims) {
			t.Errorf("issue with parent %q: %v, want invalid claims", bad, err)
		}
	}
}

// TestVerifyRefusesNonCompact: a token with a newline, a space or padding
// inside is refused before parsing (a lenient base64 decoder would skip
// them and verify the token).
func TestVerifyRefusesNonCompact(t *testing.T) {
	k := newKit(t)
	tok := k.issue(t, Claims{Subject: "alice", Scopes: []string{"a"}}, 0, t0)
	if _, err := k.auth.Verify(tok, t0); err != nil {
		t.Fatal(err)
	}
	i := strings.IndexByte(tok, '.') + 5
	for _, bad := range []string{tok[:i] + "\n" + tok[i:], tok[:i] + " " + tok[i:], tok[:i] + "\r\n" + tok[i:], strings.Replace(tok, ".", "=.", 1)} {
		if _, err := k.auth.Verify(bad, t0); !notProven(err) || !strings.Contains(err.Error(), "not a compact JWS") {
			t.Errorf("Verify(%q…) = %v, want not proven (not a compact JWS)", bad[:min(len(bad), 40)], err)
		}
	}
}
