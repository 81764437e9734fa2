package token

// Red-team probes of the warden token verifier and the RFC 8693 exchange.
// A test that fails here demonstrates a bug (see the report); a passing test
// is a regression guard for an attack that was checked and refused.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

// redTeamExchange runs one exchange for caller and returns the issued token
// ("" when refused) and the OAuth error code.
func redTeamExchange(t *testing.T, k *exchangeKit, caller *gateway.Principal, kv ...string) (string, string) {
	t.Helper()
	res := k.do(t, caller, "POST", formCT, exchangeForm(kv...))
	if res.status != 200 {
		code, _ := res.body["error"].(string)
		return "", code
	}
	tok, _ := res.body["access_token"].(string)
	return tok, ""
}

// Regression: the actor and subject of a delegation token cannot be swapped
// by exchanging it: the user presenting the agent's delegation token is not
// its actor and is refused, so the user cannot become an "agent for herself"
// nor gain the agent's identity.
func TestRedTeamExchangeSwappedActorSubject(t *testing.T) {
	k := newExchangeKit(t)
	delegation := k.issue(t, Claims{Subject: "alice", Actor: "agent-planner", Scopes: []string{"inference:chat"}}, 0, t0)
	alice := &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Scopes: []string{"inference:chat"},
		ExpiresAt: t0.Add(time.Hour)}
	tok, code := redTeamExchange(t, k, alice, "subject_token", delegation, "subject_token_type", TokenTypeAccessToken)
	if tok != "" || code != ErrCodeInvalidGrant {
		t.Fatalf("alice exchanged the agent's delegation token: token %v, code %q", tok != "", code)
	}
	// A token minted from a delegation token never outlives it and never
	// widens its scopes.
	caller, err := k.auth.Verify(delegation, t0)
	if err != nil {
		t.Fatal(err)
	}
	tok, code = redTeamExchange(t, k, &caller, "scope", "inference:chat inference:*", "expires_in", "86400")
	if tok == "" {
		t.Fatalf("self-narrowing of a delegation token refused: %s", code)
	}
	p, err := k.auth.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "agent-planner" || p.OnBehalfOf != "alice" || strings.Join(p.Scopes, " ") != "inference:chat" ||
		p.ExpiresAt.After(caller.ExpiresAt) || p.MFA {
		t.Fatalf("chained token widened its parent: %+v (parent %+v)", p, caller)
	}
}

// Regression: JOSE header tricks on warden tokens. A token signed by an
// attacker's key that embeds that key (jwk), points at it (jku, x5u) or
// carries a certificate (x5c) under warden's own kid is refused, and so is
// an unknown critical header extension.
func TestRedTeamTokenHeaderTricks(t *testing.T) {
	k := newKit(t)
	key := k.activeKey(t, t0)
	kid := key.info.KID
	foreign, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wc := validWire(t0)

	sign := func(priv any, extra map[jose.HeaderKey]any, embedJWK bool) string {
		opts := (&jose.SignerOptions{EmbedJWK: embedJWK}).WithType(jose.ContentType(Type))
		for h, v := range extra {
			opts = opts.WithHeader(h, v)
		}
		sk := jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}}
		if embedJWK {
			sk.Key = priv
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(sk, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(wc).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for name, tok := range map[string]string{
		"embedded jwk of the attacker": sign(foreign, nil, true),
		"jku to the attacker":          sign(foreign, map[jose.HeaderKey]any{"jku": "https://evil.example/jwks"}, false),
		"x5u to the attacker":          sign(foreign, map[jose.HeaderKey]any{"x5u": "https://evil.example/cert"}, false),
		"unknown crit extension":       sign(key.priv, map[jose.HeaderKey]any{"crit": []string{"exp-ext"}, "exp-ext": true}, false),
	} {
		if p, err := k.auth.Verify(tok, t0); err == nil {
			t.Errorf("%s: accepted as %+v", name, p)
		}
	}
}

// Regression: the routing peek and the verifier agree on which claim is
// "iss". A JSON object with differently-cased duplicates ("iss" and "ISS")
// routes by a case-insensitive match; make sure such a token signed by
// warden's key but naming another issuer in the exact-case claim is refused.
func TestRedTeamTokenCaseFoldedIssuer(t *testing.T) {
	k := newKit(t)
	key := k.activeKey(t, t0)
	wc := validWire(t0)
	raw, err := json.Marshal(wc)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "iss")
	rest, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	// Exact-case "iss" first, the case-folded duplicate last: encoding/json
	// (the routing peek) lets the last case-insensitive match win.
	payload := json.RawMessage(`{"iss":"https://idp.example","ISS":"warden",` + string(rest[1:]))
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.info.KID}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(Type)))
	if err != nil {
		t.Fatal(err)
	}
	jws, err := sig.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	if !k.auth.HandlesToken(tok) {
		t.Skip("not routed to the warden verifier; nothing to check")
	}
	if p, err := k.auth.Verify(tok, t0); err == nil {
		t.Fatalf("token whose iss is another issuer accepted as %+v", p)
	}
}

// A stolen API key is revoked with `warden keys revoke`. Every request made
// with the key is refused from then on, and running streams end — but a
// warden token the thief minted from the key before the revocation keeps
// working, through the identify stage, for its whole lifetime (up to
// max_ttl, 1h by default; the thief picks expires_in). Nothing links the
// derived token to the key: it carries no parent credential id, and
// Verify/Revalidate check only its own jti and its sub/act.
func TestRedTeamDerivedTokenOutlivesRevokedAPIKey(t *testing.T) {
	k := newExchangeKit(t)
	ks, err := identity.OpenKeyStore(filepath.Join(k.dir, "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	key, rec, err := ks.Create("billing-svc", "service", []string{"inference:*", "control:token.exchange"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	k.auth.CheckParents(identity.NewAPIKeyAuthenticator(ks).CheckParent) // as the server wires it
	prove := func(bearer string, at time.Time) (*gateway.Principal, error) {
		r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
		r.Header.Set("Authorization", "Bearer "+bearer)
		ex := &gateway.Exchange{Request: r}
		err := identity.NewStage(nil, []identity.Authenticator{identity.NewAPIKeyAuthenticator(ks), k.auth},
			func() time.Time { return at }).Handle(ex, func(*gateway.Exchange) error { return nil })
		return ex.Principal, err
	}

	caller, err := prove(key, t0)
	if err != nil {
		t.Fatal(err)
	}
	derived, code := redTeamExchange(t, k, caller, "scope", "inference:*", "expires_in", "3600")
	if derived == "" {
		t.Fatalf("exchange refused: %s", code)
	}
	if err := ks.Revoke(rec.ID); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(30 * time.Minute)
	if _, err := prove(key, later); err == nil {
		t.Fatal("revoked key still accepted")
	}
	if p, err := prove(derived, later); err == nil {
		t.Errorf("30 minutes after its API key was revoked, a token derived from it still proves %s %q (scopes %v, expires %s)",
			p.Kind, p.ID, p.Scopes, p.ExpiresAt.Format(time.RFC3339))
	}
}

// The same with a parent warden token: `warden token revoke --jti` ends
// that token, but not the narrower token its holder exchanged it for a
// moment before.
func TestRedTeamDerivedTokenOutlivesRevokedParentToken(t *testing.T) {
	k := newExchangeKit(t)
	parent := k.issue(t, Claims{Subject: "svc-batch", Kind: "service", Scopes: []string{"inference:*"}}, time.Hour, t0)
	caller, err := k.auth.Verify(parent, t0)
	if err != nil {
		t.Fatal(err)
	}
	child, code := redTeamExchange(t, k, &caller, "scope", "inference:chat", "expires_in", "3600")
	if child == "" {
		t.Fatalf("exchange refused: %s", code)
	}
	if err := k.rl.Revoke(revoke.Entry{Kind: revoke.KindToken, Value: caller.CredentialID, At: t0,
		Until: caller.ExpiresAt}); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(10 * time.Minute)
	if _, err := k.auth.Verify(parent, later); !notProven(err) {
		t.Fatalf("revoked parent still verifies: %v", err)
	}
	if p, err := k.auth.Verify(child, later); err == nil {
		t.Errorf("after its parent token %s was revoked, the token derived from it still proves %s %q until %s",
			caller.CredentialID, p.Kind, p.ID, p.ExpiresAt.Format(time.RFC3339))
	}
}

// OIDC subjects are unique only per issuer (OpenID Connect Core §2: "sub ...
// locally unique ... within the Issuer"), and warden supports several
// issuers at once. The identity stage keeps them apart (Principal.Issuer), so
// a policy can trust the corporate IdP's "alice" and not a partner IdP's
// "alice". A self-exchange must not erase that difference: otherwise any
// configured issuer can mint, through /v1/warden/token, a warden token that
// is indistinguishable from the one the corporate "alice" gets — same id,
// kind, issuer ("warden") and auth_method — with its own groups, roles and
// mfa claim.
func TestRedTeamExchangeLaundersIssuer(t *testing.T) {
	k := newExchangeKit(t)
	corp := &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Issuer: "https://login.corp.example",
		Scopes: []string{"inference:chat"}, Groups: []string{"eng"}, ExpiresAt: t0.Add(time.Hour)}
	partner := &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Issuer: "https://partner-idp.example",
		Scopes: []string{"inference:chat"}, Groups: []string{"admins"}, MFA: true, ExpiresAt: t0.Add(time.Hour)}

	corpTok, code := redTeamExchange(t, k, corp)
	if corpTok == "" {
		t.Fatalf("corp exchange refused: %s", code)
	}
	partnerTok, _ := redTeamExchange(t, k, partner)
	if partnerTok == "" {
		// Refusing to exchange (or to exchange across issuers) is a fix.
		return
	}
	cp, err := k.auth.Verify(corpTok, t0)
	if err != nil {
		t.Fatal(err)
	}
	pp, err := k.auth.Verify(partnerTok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Kind == pp.Kind && cp.ID == pp.ID && cp.Issuer == pp.Issuer && cp.AuthMethod == pp.AuthMethod &&
		cp.OnBehalfOf == pp.OnBehalfOf {
		t.Errorf("a partner IdP's \"alice\" (issuer %s) was exchanged into a warden token that policy cannot tell "+
			"from the corporate \"alice\" (issuer %s): both are {kind %q, id %q, issuer %q, auth_method %q}; "+
			"the partner's token carries groups %v, mfa %v",
			partner.Issuer, corp.Issuer, pp.Kind, pp.ID, pp.Issuer, pp.AuthMethod, pp.Groups, pp.MFA)
	}
}

// The same laundering through the subject_token path: a caller presents a
// subject token of another issuer whose sub equals its own id. sameIdentity
// compares only id, kind and on_behalf_of, so the token is treated as "the
// caller's own token" and the *other issuer's* mfa claim, groups and roles
// are copied into a warden token for the caller.
func TestRedTeamExchangeSubjectFromOtherIssuerIsNotSameIdentity(t *testing.T) {
	k := newExchangeKit(t)
	k.users["alice-partner"] = gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt",
		Issuer: "https://partner-idp.example", Scopes: []string{"inference:chat"}, Groups: []string{"admins"},
		Roles: []string{"owner"}, MFA: true, ExpiresAt: t0.Add(time.Hour)}
	corp := &gateway.Principal{Kind: "user", ID: "alice", AuthMethod: "jwt", Issuer: "https://login.corp.example",
		Scopes: []string{"inference:chat"}, Groups: []string{"eng"}, ExpiresAt: t0.Add(time.Hour)}

	tok, _ := redTeamExchange(t, k, corp, "subject_token", "oidc:alice-partner", "subject_token_type", TokenTypeJWT)
	if tok == "" {
		return // refused: correct
	}
	p, err := k.auth.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.MFA || strings.Contains(strings.Join(p.Groups, ","), "admins") {
		t.Errorf("corporate alice + a partner IdP's token for \"alice\" gave a warden token with mfa=%v groups=%v roles=%v "+
			"taken from the partner issuer", p.MFA, p.Groups, p.Roles)
	}
}
