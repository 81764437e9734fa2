package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// Claims are what a token says about its principal.
type Claims struct {
	Subject string // sub: the principal, or the user an agent acts for
	// Kind is user, service or agent ("" means user, or agent when Actor is set).
	Kind string
	// Actor is the id of the agent acting for Subject; it becomes the act
	// claim {"sub": Actor} (RFC 8693 §4.1) and makes Kind agent.
	Actor    string
	Scopes   []string // RFC 6749 §3.3 scope tokens; the scope claim, space-separated
	Groups   []string
	Roles    []string
	MFA      bool     // amr ["mfa"] (RFC 8176)
	Audience []string // aud; default [issuer]. warden accepts only tokens whose aud holds its issuer.
	// OriginIssuer is who vouched for the identity the token was derived
	// from (an OIDC issuer, a SPIFFE trust domain); it becomes the src_iss
	// claim and the principal's issuer, so that policy can still tell a
	// partner IdP's "alice" from the corporate one after an exchange. Empty
	// (or warden's own issuer): the principal's issuer is warden's.
	OriginIssuer string
	// Parents are the credentials the token is derived from, as
	// "auth_method:credential_id" (see gateway.Principal.Parents): the token
	// is refused once any of them is revoked.
	Parents []string
}

// wireClaims is the JWT payload. Field names follow RFC 7519, RFC 8693
// (act, scope), RFC 9068 (client_id) and RFC 8176 (amr).
type wireClaims struct {
	jwt.Claims
	Kind     string    `json:"kind,omitempty"`
	Act      *actClaim `json:"act,omitempty"`
	Scope    string    `json:"scope,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	Groups   []string  `json:"groups,omitempty"`
	Roles    []string  `json:"roles,omitempty"`
	AMR      []string  `json:"amr,omitempty"`
	Parents  []string  `json:"parents,omitempty"` // warden's own: see Claims.Parents
	SrcIss   string    `json:"src_iss,omitempty"` // warden's own: see Claims.OriginIssuer
}

// actClaim is the RFC 8693 §4.1 actor claim.
type actClaim struct {
	Sub string `json:"sub"`
}

// Issuer signs warden tokens with the active key of a KeySet.
type Issuer struct {
	keys   *KeySet
	issuer string
	ttl    time.Duration
	maxTTL time.Duration
}

// NewIssuer returns an issuer over keys with cfg's issuer, ttl and max_ttl
// (defaults applied with WithDefaults).
func NewIssuer(keys *KeySet, cfg config.Tokens) *Issuer {
	cfg = WithDefaults(cfg)
	return &Issuer{keys: keys, issuer: cfg.Issuer, ttl: cfg.TTL.D(), maxTTL: cfg.MaxTTL.D()}
}

// IssuerName is the iss of the tokens this issuer signs.
func (i *Issuer) IssuerName() string { return i.issuer }

// Keys is the key set the issuer signs with.
func (i *Issuer) Keys() *KeySet { return i.keys }

// Issue signs a token for c that is valid from now for ttl (the configured
// default when ttl <= 0, at most max_ttl, and never beyond the signing key's
// verification window). It returns the token and its expiry (whole seconds).
// Invalid claims give an error wrapping ErrInvalidClaims; a key set without
// an active key, ErrNoSigningKey; a broken one, ErrKeysUnavailable.
func (i *Issuer) Issue(c Claims, ttl time.Duration, now time.Time) (token string, exp time.Time, err error) {
	wc, err := i.claims(c)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue: %w: %w", ErrInvalidClaims, err)
	}
	s := i.keys.current()
	if s.err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue: %w", s.err)
	}
	k := s.active(now)
	if k == nil || k.signer == nil {
		return "", time.Time{}, fmt.Errorf("token: issue: %w", ErrNoSigningKey)
	}
	if ttl <= 0 {
		ttl = i.ttl
	}
	ttl = min(ttl, i.maxTTL)
	exp = now.Add(ttl)
	if exp.After(k.info.DropAfter) {
		exp = k.info.DropAfter // a token never outlives the key that verifies it
	}
	iat := now.Unix()
	if exp.Unix() <= iat {
		return "", time.Time{}, fmt.Errorf("token: issue: %w: lifetime under one second", ErrInvalidClaims)
	}
	jti, err := newJTI()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue: %w", err)
	}
	nd := func(t time.Time) *jwt.NumericDate { return jwt.NewNumericDate(t) }
	wc.IssuedAt, wc.NotBefore, wc.Expiry = nd(now), nd(now), nd(exp)
	wc.ID = jti
	token, err = jwt.Signed(k.signer).Claims(wc).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: issue: sign: %w", err)
	}
	if len(token) > MaxTokenBytes {
		return "", time.Time{}, fmt.Errorf("token: issue: %w: the token would be %d bytes, more than %d (too many groups, roles or scopes)",
			ErrInvalidClaims, len(token), MaxTokenBytes)
	}
	return token, time.Unix(exp.Unix(), 0).UTC(), nil
}

// IssueElevated issues a token for the same principal as p — subject, kind,
// actor when p acts for a user, scopes, groups and roles — with MFA set: the
// token a verified second factor yields. ttl as in Issue; the token also
// never outlives p's own credential (p.ExpiresAt, when set).
func (i *Issuer) IssueElevated(p gateway.Principal, ttl time.Duration, now time.Time) (token string, expires time.Time, err error) {
	c := principalClaims(p)
	c.MFA = true
	if ttl <= 0 {
		ttl = i.ttl
	}
	if !p.ExpiresAt.IsZero() {
		left := p.ExpiresAt.Sub(now)
		if left < time.Second {
			return "", time.Time{}, fmt.Errorf("token: issue elevated: %w: the principal's credential has expired", ErrInvalidClaims)
		}
		ttl = min(ttl, left)
	}
	return i.Issue(c, ttl, now)
}

// principalClaims mirrors p: an agent acting for a user becomes sub=user,
// act=agent; anyone else sub=id with their kind.
func principalClaims(p gateway.Principal) Claims {
	c := Claims{
		Subject: p.ID,
		Kind:    p.Kind,
		Scopes:  slices.Clone(p.Scopes),
		Groups:  slices.Clone(p.Groups),
		Roles:   slices.Clone(p.Roles),
		MFA:     p.MFA,
		Parents: lineage(p),
		// A warden token's principal already carries its origin (or
		// warden's issuer, which claims drops).
		OriginIssuer: p.Issuer,
	}
	if p.OnBehalfOf != "" {
		c.Subject, c.Actor, c.Kind = p.OnBehalfOf, p.ID, gateway.KindAgent
	}
	return c
}

// MaxParents bounds how many credentials a token may be derived from (its
// chain of exchanges, both sides of a delegation).
const MaxParents = 8

// lineage is what a token derived from p is derived from: p's own parents
// and p's credential, when warden can revoke it (an API key, a warden
// token). A JWT or a certificate has no revocation of its own here — its
// subject's revocation and its expiry, which caps the token's, apply — and
// its id is whatever the issuer chose, so it is not recorded.
func lineage(p gateway.Principal) []string {
	out := slices.Clone(p.Parents)
	if (p.AuthMethod == identity.AuthMethodAPIKey || p.AuthMethod == AuthMethod) && p.CredentialID != "" {
		out = append(out, p.AuthMethod+":"+p.CredentialID)
	}
	return out
}

// validOrigin checks an origin issuer: at most 512 bytes of printable
// UTF-8 ("" is none).
func validOrigin(s string) error {
	if len(s) > 512 || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return errors.New("not a short printable string")
	}
	return nil
}

// validParent checks the shape of a parent: "auth_method:credential_id".
func validParent(p string) error {
	method, id, ok := strings.Cut(p, ":")
	if !ok || method == "" || len(method) > 32 || strings.Trim(method, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return errors.New(`want "auth_method:credential_id"`)
	}
	return validID(id)
}

// claims validates c and builds the payload without the times and jti.
func (i *Issuer) claims(c Claims) (*wireClaims, error) {
	if err := validID(c.Subject); err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	kind := c.Kind
	if c.Actor != "" {
		if err := validID(c.Actor); err != nil {
			return nil, fmt.Errorf("actor: %w", err)
		}
		if kind != "" && kind != gateway.KindAgent {
			return nil, fmt.Errorf("kind %q: a token with an actor is an agent's", kind)
		}
		kind = gateway.KindAgent
	}
	if kind == "" {
		kind = gateway.KindUser
	}
	if !validKind(kind) {
		return nil, fmt.Errorf("kind %q: must be user, service or agent", kind)
	}
	if len(c.Scopes) > maxScopes {
		return nil, fmt.Errorf("scopes: more than %d", maxScopes)
	}
	for _, s := range c.Scopes {
		if !ValidScope(s) {
			return nil, fmt.Errorf("scope %q: not an RFC 6749 scope token", s)
		}
	}
	if err := validAttrs("groups", c.Groups); err != nil {
		return nil, err
	}
	if err := validAttrs("roles", c.Roles); err != nil {
		return nil, err
	}
	if err := validAttrs("audience", c.Audience); err != nil {
		return nil, err
	}
	if len(c.Parents) > MaxParents {
		return nil, fmt.Errorf("parents: derived from more than %d credentials", MaxParents)
	}
	for _, p := range c.Parents {
		if err := validParent(p); err != nil {
			return nil, fmt.Errorf("parent %q: %w", clip(p, 64), err)
		}
	}
	origin := c.OriginIssuer
	if origin == i.issuer || origin == DefaultIssuer {
		origin = ""
	}
	if err := validOrigin(origin); err != nil {
		return nil, fmt.Errorf("origin issuer: %w", err)
	}
	aud := jwt.Audience(dedupe(c.Audience))
	if len(aud) == 0 {
		aud = jwt.Audience{i.issuer}
	}
	wc := &wireClaims{
		Claims:   jwt.Claims{Issuer: i.issuer, Subject: c.Subject, Audience: aud},
		Kind:     kind,
		Scope:    strings.Join(dedupe(c.Scopes), " "),
		ClientID: c.Subject,
		Groups:   dedupe(c.Groups),
		Roles:    dedupe(c.Roles),
		Parents:  dedupe(c.Parents),
		SrcIss:   origin,
	}
	if c.Actor != "" {
		wc.Act = &actClaim{Sub: c.Actor}
		wc.ClientID = c.Actor // RFC 9068 §2.2: the client the token was issued to
	}
	if c.MFA {
		wc.AMR = []string{"mfa"}
	}
	return wc, nil
}

func validKind(k string) bool {
	return k == gateway.KindUser || k == gateway.KindService || k == gateway.KindAgent
}

// newJTI returns 128 random bits, base64url.
func newJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token: random jti: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// dedupe returns vals without repeats, in order; nil for none.
func dedupe(vals []string) []string {
	if len(vals) == 0 {
		return nil
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
