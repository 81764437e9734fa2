package token

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

// AuthMethod is the Principal.AuthMethod of warden tokens.
const AuthMethod = "token"

// allowedAlgs is the algorithm allowlist handed to go-jose: a token whose
// alg is anything else (none, HS256, RS256, ...) is refused before any key
// is looked at.
var allowedAlgs = []jose.SignatureAlgorithm{jose.ES256}

// Authenticator proves principals from warden tokens. It implements
// identity.Authenticator and identity.Revalidator.
type Authenticator struct {
	keys        *KeySet
	revoked     *revoke.List
	issuer      string
	parentCheck func(method, id string, now time.Time) error
}

// NewAuthenticator returns an authenticator that verifies with keys, checks
// revocations in revoked and expects cfg's issuer. A nil revoked list fails
// closed: every token is refused as a fault.
func NewAuthenticator(keys *KeySet, revoked *revoke.List, cfg config.Tokens) *Authenticator {
	cfg = WithDefaults(cfg)
	return &Authenticator{keys: keys, revoked: revoked, issuer: cfg.Issuer}
}

// CheckParents sets how the parents of a token (the credentials it was
// derived from) other than warden tokens are re-checked: check returns nil
// for a credential that is still good and for auth methods it does not
// track (a JWT or a certificate has no revocation of its own here; its
// subject's revocation and its expiry, which bounds the token's, apply),
// an error wrapping identity.ErrNotProven for one that is revoked or
// expired, and any other error when it cannot tell (the token is then
// refused as a fault). Without it, a token derived from an API key is
// refused as a fault. It returns a.
func (a *Authenticator) CheckParents(check func(method, id string, now time.Time) error) *Authenticator {
	a.parentCheck = check
	return a
}

// Name implements identity.Authenticator.
func (a *Authenticator) Name() string { return "warden_token" }

// Handles implements identity.Authenticator: a bearer token shaped like a
// JWT whose unverified iss is warden's issuer. The payload is decoded
// untrusted and bounded; it only routes the token.
func (a *Authenticator) Handles(c *identity.Credentials) bool {
	return c != nil && a.HandlesToken(c.Bearer)
}

// HandlesToken is Handles for a bare token.
func (a *Authenticator) HandlesToken(token string) bool {
	if len(token) > MaxTokenBytes || identity.KindOf(token) != identity.BearerJWT {
		return false
	}
	iss, ok := unverifiedIssuer(token)
	return ok && iss == a.issuer
}

// unverifiedIssuer reads the iss of a compact JWS without verifying it.
func unverifiedIssuer(token string) (string, bool) {
	_, rest, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	payload, _, ok := strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", false
	}
	var v struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false
	}
	return v.Iss, true
}

// Authenticate implements identity.Authenticator.
func (a *Authenticator) Authenticate(_ context.Context, c *identity.Credentials, now time.Time) (gateway.Principal, error) {
	if c == nil {
		return gateway.Principal{}, identity.NotProven("no credentials")
	}
	return a.Verify(c.Bearer, now)
}

// Verify proves a principal from a warden token at now. Errors wrap
// identity.ErrNotProven when the token proves nobody (malformed, other alg,
// unknown key, bad signature, wrong type or issuer or audience, outside its
// lifetime, revoked); any other error is a fault (key set or revocation list
// unavailable: fail closed). Reasons never contain the token.
func (a *Authenticator) Verify(token string, now time.Time) (gateway.Principal, error) {
	if len(token) > MaxTokenBytes {
		return gateway.Principal{}, identity.NotProven("token: larger than %d bytes", MaxTokenBytes)
	}
	if !identity.CompactJWS(token) {
		return gateway.Principal{}, identity.NotProven("token: malformed: not a compact JWS")
	}
	s := a.keys.current()
	if s.err != nil {
		return gateway.Principal{}, s.err
	}
	if a.revoked == nil {
		return gateway.Principal{}, fmt.Errorf("token: %w: no revocation list", revoke.ErrUnavailable)
	}
	tok, err := jwt.ParseSigned(token, allowedAlgs)
	if err != nil {
		return gateway.Principal{}, identity.NotProven("token: malformed or algorithm not allowed: %v", err)
	}
	if len(tok.Headers) != 1 {
		return gateway.Principal{}, identity.NotProven("token: want exactly one signature")
	}
	h := tok.Headers[0]
	if h.Algorithm != Algorithm {
		return gateway.Principal{}, identity.NotProven("token: algorithm not allowed")
	}
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, Type) && !strings.EqualFold(typ, "application/"+Type) {
		return gateway.Principal{}, identity.NotProven("token: typ is not %s", Type)
	}
	k := s.verifying(h.KeyID, now)
	if k == nil {
		return gateway.Principal{}, identity.NotProven("token: unknown or dropped signing key %q", clip(h.KeyID, 64))
	}
	var wc wireClaims
	if err := tok.Claims(k.pub, &wc); err != nil {
		return gateway.Principal{}, identity.NotProven("token: signature or claims invalid: %v", err)
	}
	if err := wc.ValidateWithLeeway(jwt.Expected{Issuer: a.issuer, AnyAudience: jwt.Audience{a.issuer}, Time: now}, ClockSkew); err != nil {
		return gateway.Principal{}, identity.NotProven("token: %v", err)
	}
	switch {
	case wc.Expiry == nil:
		return gateway.Principal{}, identity.NotProven("token: no exp")
	case wc.IssuedAt == nil:
		return gateway.Principal{}, identity.NotProven("token: no iat")
	case wc.ID == "" || revoke.ValidValue(wc.ID) != nil:
		return gateway.Principal{}, identity.NotProven("token: missing or invalid jti")
	case validID(wc.Subject) != nil:
		return gateway.Principal{}, identity.NotProven("token: missing or invalid sub")
	}
	p := gateway.Principal{
		Kind:         wc.Kind,
		ID:           wc.Subject,
		AuthMethod:   AuthMethod,
		CredentialID: wc.ID,
		Issuer:       "warden",
		AuthTime:     wc.IssuedAt.Time().UTC(),
		ExpiresAt:    wc.Expiry.Time().UTC(),
		Scopes:       strings.Fields(wc.Scope),
		Groups:       wc.Groups,
		Roles:        wc.Roles,
		MFA:          slices.Contains(wc.AMR, "mfa"),
	}
	if len(wc.Parents) > MaxParents {
		return gateway.Principal{}, identity.NotProven("token: more than %d parents", MaxParents)
	}
	for _, parent := range wc.Parents {
		if err := validParent(parent); err != nil {
			return gateway.Principal{}, identity.NotProven("token: invalid parent %q: %v", clip(parent, 64), err)
		}
	}
	p.Parents = wc.Parents
	if wc.SrcIss != "" {
		if validOrigin(wc.SrcIss) != nil {
			return gateway.Principal{}, identity.NotProven("token: invalid src_iss")
		}
		p.Issuer = wc.SrcIss // who vouched for the identity the token was derived from
	}
	if wc.Act != nil {
		if validID(wc.Act.Sub) != nil {
			return gateway.Principal{}, identity.NotProven("token: invalid act.sub")
		}
		if p.Kind != "" && p.Kind != gateway.KindAgent {
			return gateway.Principal{}, identity.NotProven("token: act with kind %q", clip(p.Kind, 16))
		}
		p.Kind, p.ID, p.OnBehalfOf = gateway.KindAgent, wc.Act.Sub, wc.Subject
	}
	if p.Kind == "" {
		p.Kind = gateway.KindUser
	}
	if !validKind(p.Kind) {
		return gateway.Principal{}, identity.NotProven("token: invalid kind %q", clip(p.Kind, 16))
	}
	if err := a.checkRevoked(&p, now); err != nil {
		return gateway.Principal{}, err
	}
	return p, nil
}

// Revalidate implements identity.Revalidator: the token must not have
// expired and neither it nor its subject or actor may have been revoked
// since. A running stream calls it and ends when it fails.
func (a *Authenticator) Revalidate(p *gateway.Principal, now time.Time) error {
	if p == nil || p.CredentialID == "" {
		return identity.NotProven("token: no token to revalidate")
	}
	if !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt) {
		return identity.NotProven("token: expired at %s", p.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if a.revoked == nil {
		return fmt.Errorf("token: %w: no revocation list", revoke.ErrUnavailable)
	}
	return a.checkRevoked(p, now)
}

// checkRevoked checks the jti and, for tokens issued at or before a subject
// revocation, the subject and the actor; then every parent credential: a
// warden token's jti against the revocation list, anything else with the
// parent check (see CheckParents).
func (a *Authenticator) checkRevoked(p *gateway.Principal, now time.Time) error {
	if err := a.checkList(p.CredentialID, []string{p.ID, p.OnBehalfOf}, p.AuthTime, now); err != nil {
		return err
	}
	for _, parent := range p.Parents {
		method, id, _ := strings.Cut(parent, ":")
		if method == AuthMethod {
			if err := a.checkList(id, nil, time.Time{}, now); err != nil {
				return fmt.Errorf("token: derived from token %s: %w", id, err)
			}
			continue
		}
		if a.parentCheck == nil {
			if method == identity.AuthMethodAPIKey {
				return fmt.Errorf("token: derived from API key %s, which cannot be checked here: %w", id, revoke.ErrUnavailable)
			}
			continue
		}
		if err := a.parentCheck(method, id, now); err != nil {
			return fmt.Errorf("token: derived from %s: %w", clip(parent, 80), err)
		}
	}
	return nil
}

// checkList checks one token id and subjects against the revocation list.
func (a *Authenticator) checkList(jti string, subjects []string, issuedAt, now time.Time) error {
	err := a.revoked.Check(jti, subjects, issuedAt, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, revoke.ErrRevoked):
		return fmt.Errorf("%w: %w", identity.ErrNotProven, err)
	default:
		return err // unavailable: fail closed (503)
	}
}

// clip bounds attacker-controlled text quoted in a reason.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var (
	_ identity.Authenticator = (*Authenticator)(nil)
	_ identity.Revalidator   = (*Authenticator)(nil)
)
