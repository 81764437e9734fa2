package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-ai/warden/internal/config"
	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
)

// RFC 8693 identifiers.
const (
	GrantTypeTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"
)

// OAuth error codes (RFC 6749 §5.2, RFC 8693 §2.2.2).
const (
	ErrCodeInvalidRequest       = "invalid_request"
	ErrCodeInvalidClient        = "invalid_client"
	ErrCodeInvalidGrant         = "invalid_grant"
	ErrCodeInvalidScope         = "invalid_scope"
	ErrCodeInvalidTarget        = "invalid_target"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
	ErrCodeServerError          = "server_error"
	ErrCodeUnavailable          = "temporarily_unavailable"
)

const (
	maxFormBytes        = 64 << 10
	maxSubjectTokenSize = 16 << 10
	maxExpiresIn        = 365 * 24 * 3600 // seconds; anything above max_ttl is capped anyway
)

// Exchanger serves the RFC 8693 token exchange at POST /v1/warden/token: a
// proven caller obtains a short-lived warden token for itself, narrowed in
// scope, or — presenting a user's token as subject_token — a delegation
// token that names the caller as the actor for that user.
type Exchanger struct {
	iss           *Issuer
	verifySubject func(ctx context.Context, token string) (gateway.Principal, error)
	audience      string
	ttl, maxTTL   time.Duration
	now           func() time.Time
}

// NewExchanger returns an exchanger that issues with iss. verifySubject
// proves a subject_token (the server wires it to the identity stage's
// authenticators); its errors wrapping identity.ErrNotProven are
// invalid_grant, any other error is a fault. nil refuses subject tokens.
func NewExchanger(iss *Issuer, verifySubject func(ctx context.Context, token string) (gateway.Principal, error), cfg config.Tokens) *Exchanger {
	cfg = WithDefaults(cfg)
	return &Exchanger{
		iss: iss, verifySubject: verifySubject, audience: cfg.Issuer,
		ttl: cfg.TTL.D(), maxTTL: cfg.MaxTTL.D(), now: time.Now,
	}
}

// exchangeRequest is a parsed token exchange request.
type exchangeRequest struct {
	subjectToken     string
	subjectTokenType string
	scopes           []string // requested; nil when scope was not given
	expiresIn        time.Duration
	audience         string
}

// oauthError is an RFC 6749 §5.2 error response.
type oauthError struct {
	status int
	code   string
	desc   string // public: never contains a token
	cause  error  // internal
}

func badRequest(code, format string, args ...any) *oauthError {
	return &oauthError{status: http.StatusBadRequest, code: code, desc: fmt.Sprintf(format, args...)}
}

// tokenResponse is the RFC 8693 §2.2.1 response.
type tokenResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope"`
}

// ServeExchange handles one token exchange. ex.Principal is the caller,
// proven by the identity stage; ex.Body is the form. On success it writes
// the 200 response and returns nil. On failure it writes the RFC 6749 §5.2
// JSON error itself and returns a *gateway.Error with the same status and
// the OAuth error code as Code, for the audit record.
func (e *Exchanger) ServeExchange(ex *gateway.Exchange) error {
	if ex == nil || ex.Request == nil {
		return errors.New("token: exchange: exchange without request")
	}
	resp, oe := e.exchange(ex)
	if oe != nil {
		return e.fail(ex, oe)
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return e.fail(ex, &oauthError{status: http.StatusInternalServerError, code: ErrCodeServerError,
			desc: "the token could not be issued", cause: err})
	}
	if ex.Writer != nil {
		h := ex.Writer.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
		h.Set("Pragma", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		ex.Writer.WriteHeader(http.StatusOK)
		_, _ = ex.Writer.Write(append(body, '\n'))
	}
	return nil
}

func (e *Exchanger) exchange(ex *gateway.Exchange) (*tokenResponse, *oauthError) {
	r := ex.Request
	if r.Method != http.MethodPost {
		if ex.Writer != nil {
			ex.Writer.Header().Set("Allow", http.MethodPost)
		}
		return nil, &oauthError{status: http.StatusMethodNotAllowed, code: ErrCodeInvalidRequest,
			desc: "the token endpoint accepts POST only"}
	}
	if ex.Principal == nil {
		return nil, &oauthError{status: http.StatusUnauthorized, code: ErrCodeInvalidClient,
			desc: "the caller is not authenticated"}
	}
	if !validKind(ex.Principal.Kind) {
		return nil, &oauthError{status: http.StatusInternalServerError, code: ErrCodeServerError,
			desc: "the caller's identity is incomplete", cause: fmt.Errorf("caller kind %q", ex.Principal.Kind)}
	}
	req, oe := parseExchangeForm(r.Header.Get("Content-Type"), ex.Body)
	if oe != nil {
		return nil, oe
	}
	if req.audience != "" && req.audience != e.audience {
		return nil, badRequest(ErrCodeInvalidTarget, "warden issues tokens for audience %q only", e.audience)
	}
	caller := *ex.Principal
	now := e.now()

	var subject *gateway.Principal
	if req.subjectToken != "" {
		if e.verifySubject == nil {
			return nil, badRequest(ErrCodeInvalidRequest, "subject_token is not supported here")
		}
		sp, err := e.verifySubject(r.Context(), req.subjectToken)
		switch {
		case errors.Is(err, identity.ErrNotProven):
			oe := badRequest(ErrCodeInvalidGrant, "the subject token is not valid")
			oe.cause = err
			return nil, oe
		case err != nil:
			return nil, &oauthError{status: http.StatusServiceUnavailable, code: ErrCodeUnavailable,
				desc: "the subject token cannot be verified right now", cause: err}
		}
		if !validKind(sp.Kind) || sp.ID == "" {
			oe := badRequest(ErrCodeInvalidGrant, "the subject token does not name a principal")
			oe.cause = fmt.Errorf("subject kind %q", sp.Kind)
			return nil, oe
		}
		subject = &sp
	}

	claims, limits, oe := delegate(caller, subject)
	if oe != nil {
		return nil, oe
	}
	if claims.Parents = dedupe(claims.Parents); len(claims.Parents) > MaxParents {
		return nil, badRequest(ErrCodeInvalidGrant, "the credentials are derived from more than %d others: exchange a fresh credential instead", MaxParents)
	}
	var holders [][]string
	if subject != nil {
		holders = append(holders, subject.Scopes)
	}
	holders = append(holders, caller.Scopes)
	claims.Scopes = intersectScopes(req.scopes, req.scopes != nil, holders...)
	if len(claims.Scopes) == 0 {
		if req.scopes != nil {
			return nil, badRequest(ErrCodeInvalidScope, "none of the requested scopes is held")
		}
		return nil, badRequest(ErrCodeInvalidScope, "there is no scope to issue")
	}

	ttl := e.ttl
	if req.expiresIn > 0 {
		ttl = req.expiresIn
	}
	ttl = min(ttl, e.maxTTL)
	// A new token never outlives the credentials it was derived from.
	for _, l := range limits {
		if !l.at.IsZero() {
			ttl = min(ttl, l.at.Sub(now))
			if ttl < time.Second {
				return nil, badRequest(ErrCodeInvalidGrant, "the %s expires too soon to derive a token from it", l.what)
			}
		}
	}
	tok, exp, err := e.iss.Issue(claims, ttl, now)
	if err != nil {
		switch {
		case errors.Is(err, ErrInvalidClaims):
			oe := badRequest(ErrCodeInvalidRequest, "a token cannot be issued for this principal")
			oe.cause = err
			return nil, oe
		case errors.Is(err, ErrNoSigningKey), errors.Is(err, ErrKeysUnavailable):
			return nil, &oauthError{status: http.StatusServiceUnavailable, code: ErrCodeUnavailable,
				desc: "tokens cannot be issued right now", cause: err}
		default:
			return nil, &oauthError{status: http.StatusInternalServerError, code: ErrCodeServerError,
				desc: "the token could not be issued", cause: err}
		}
	}
	return &tokenResponse{
		AccessToken:     tok,
		IssuedTokenType: TokenTypeAccessToken,
		TokenType:       "Bearer",
		ExpiresIn:       exp.Unix() - now.Unix(),
		Scope:           strings.Join(claims.Scopes, " "),
	}, nil
}

type expiryLimit struct {
	what string
	at   time.Time
}

// delegate decides who the new token is for:
//   - no subject token: the caller itself (narrowing its own credential;
//     an agent acting for a user stays so);
//   - the caller's own token as subject: the same principal;
//   - a user's token presented by anyone else: a delegation token, sub =
//     the user, act = the caller, kind agent.
//
// Delegated tokens are not delegated further: a subject that already has
// an actor may be exchanged by that actor only, and a caller acting for one
// user cannot become the actor for another.
func delegate(caller gateway.Principal, subject *gateway.Principal) (Claims, []expiryLimit, *oauthError) {
	callerLimit := expiryLimit{"caller's credential", caller.ExpiresAt}
	if subject == nil {
		c := principalClaims(caller)
		return c, []expiryLimit{callerLimit}, nil
	}
	limits := []expiryLimit{{"subject token", subject.ExpiresAt}, callerLimit}
	s := *subject
	if sameIdentity(s, caller) {
		c := principalClaims(s)
		c.Parents = append(c.Parents, lineage(caller)...)
		return c, limits, nil
	}
	switch {
	case s.OnBehalfOf != "":
		return Claims{}, nil, badRequest(ErrCodeInvalidGrant, "a delegated subject token can be exchanged by its actor only")
	case s.Kind != gateway.KindUser:
		return Claims{}, nil, badRequest(ErrCodeInvalidGrant, "only a user's token can be delegated")
	case caller.Kind != gateway.KindAgent && caller.Kind != gateway.KindService:
		// A user holding another user's token does not become an "agent"
		// acting for them: only agents and services act for users.
		return Claims{}, nil, badRequest(ErrCodeInvalidGrant, "only an agent or a service can act for a user")
	case caller.OnBehalfOf != "" && caller.OnBehalfOf != s.ID:
		return Claims{}, nil, badRequest(ErrCodeInvalidGrant, "a caller acting for one user cannot act for another")
	case caller.ID == s.ID:
		return Claims{}, nil, badRequest(ErrCodeInvalidGrant, "the caller and the subject have the same id but are different principals")
	}
	return Claims{
		Subject: s.ID,
		Kind:    gateway.KindAgent,
		Actor:   caller.ID,
		Groups:  s.Groups, // the policy sees the user's attributes and the agent's id
		Roles:   s.Roles,
		// The user's issuer: who vouched for the user the agent acts for.
		OriginIssuer: s.Issuer,
		// MFA is not delegated: a second factor proves the user, not the agent.
		// Revoking the user's credential or the agent's ends the token.
		Parents: append(lineage(s), lineage(caller)...),
	}, limits, nil
}

// sameIdentity: the same principal, vouched for by the same issuer (an
// OIDC sub is unique only within its issuer: a partner IdP's "alice" is not
// the corporate "alice").
func sameIdentity(a, b gateway.Principal) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.OnBehalfOf == b.OnBehalfOf && a.Issuer == b.Issuer
}

func (e *Exchanger) fail(ex *gateway.Exchange, oe *oauthError) error {
	if ex.Writer != nil && !ex.Writer.Started() {
		body, _ := json.Marshal(struct {
			Error       string `json:"error"`
			Description string `json:"error_description,omitempty"`
		}{oe.code, oe.desc}) // cannot fail: only strings
		h := ex.Writer.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		if oe.status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", `Bearer realm="warden"`)
		}
		if oe.status == http.StatusServiceUnavailable {
			h.Set("Retry-After", "1")
		}
		ex.Writer.WriteHeader(oe.status)
		_, _ = ex.Writer.Write(append(body, '\n'))
	}
	cause := oe.cause
	if cause == nil {
		cause = errors.New(oe.desc)
	}
	return gateway.Errorf(oe.status, errorType(oe), oe.code, fmt.Errorf("token: exchange: %w", cause), "%s", oe.desc)
}

func errorType(oe *oauthError) string {
	switch {
	case oe.status == http.StatusUnauthorized:
		return gateway.TypeAuthentication
	case oe.status >= 500:
		return gateway.TypeServer
	case oe.code == ErrCodeInvalidScope || oe.code == ErrCodeInvalidGrant:
		return gateway.TypePermission
	default:
		return gateway.TypeInvalidRequest
	}
}

// parseExchangeForm parses and checks an RFC 8693 §2.1 request body.
func parseExchangeForm(contentType string, body []byte) (exchangeRequest, *oauthError) {
	var req exchangeRequest
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return req, badRequest(ErrCodeInvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return req, badRequest(ErrCodeInvalidRequest, "the form must be UTF-8")
	}
	if len(body) > maxFormBytes {
		return req, badRequest(ErrCodeInvalidRequest, "the request body is larger than %d bytes", maxFormBytes)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return req, badRequest(ErrCodeInvalidRequest, "the request body is not a valid form")
	}
	// RFC 6749 §3.2: parameters must not be repeated; §3.1: a parameter
	// without a value is treated as omitted. Unknown parameters are ignored.
	get := func(name string) (string, *oauthError) {
		vals := form[name]
		if len(vals) > 1 {
			return "", badRequest(ErrCodeInvalidRequest, "parameter %s is repeated", name)
		}
		if len(vals) == 0 {
			return "", nil
		}
		return vals[0], nil
	}
	var p [9]string
	for i, name := range []string{"grant_type", "subject_token", "subject_token_type", "scope",
		"requested_token_type", "expires_in", "audience", "resource", "actor_token"} {
		v, oe := get(name)
		if oe != nil {
			return req, oe
		}
		p[i] = v
	}
	grantType, subjectToken, subjectTokenType, scope := p[0], p[1], p[2], p[3]
	requested, expiresIn, audience, resource, actorToken := p[4], p[5], p[6], p[7], p[8]

	switch grantType {
	case "":
		return req, badRequest(ErrCodeInvalidRequest, "grant_type is required")
	case GrantTypeTokenExchange:
	default:
		return req, badRequest(ErrCodeUnsupportedGrantType, "grant_type must be %s", GrantTypeTokenExchange)
	}
	if subjectToken != "" {
		if len(subjectToken) > maxSubjectTokenSize {
			return req, badRequest(ErrCodeInvalidRequest, "subject_token is larger than %d bytes", maxSubjectTokenSize)
		}
		switch subjectTokenType {
		case "":
			return req, badRequest(ErrCodeInvalidRequest, "subject_token_type is required with subject_token")
		case TokenTypeJWT, TokenTypeAccessToken:
		default:
			return req, badRequest(ErrCodeInvalidRequest, "subject_token_type must be %s or %s", TokenTypeAccessToken, TokenTypeJWT)
		}
		req.subjectToken, req.subjectTokenType = subjectToken, subjectTokenType
	} else if subjectTokenType != "" {
		return req, badRequest(ErrCodeInvalidRequest, "subject_token_type without subject_token")
	}
	if actorToken != "" || len(form["actor_token_type"]) > 0 {
		return req, badRequest(ErrCodeInvalidRequest, "actor_token is not supported: the authenticated caller is the actor")
	}
	switch requested {
	case "", TokenTypeAccessToken, TokenTypeJWT:
	default:
		return req, badRequest(ErrCodeInvalidRequest, "requested_token_type must be %s", TokenTypeAccessToken)
	}
	if resource != "" {
		return req, badRequest(ErrCodeInvalidTarget, "resource indicators are not supported")
	}
	req.audience = audience
	if scope != "" {
		fields := strings.Fields(scope)
		if len(fields) > maxScopes {
			return req, badRequest(ErrCodeInvalidScope, "more than %d scopes", maxScopes)
		}
		for _, s := range fields {
			if !ValidScope(s) {
				return req, badRequest(ErrCodeInvalidScope, "a requested scope is not a valid scope token")
			}
		}
		req.scopes = dedupe(fields)
		if req.scopes == nil {
			req.scopes = []string{} // scope given, but only spaces: nothing requested
		}
	}
	if expiresIn != "" {
		n, err := strconv.Atoi(expiresIn)
		if err != nil || n <= 0 || n > maxExpiresIn {
			return req, badRequest(ErrCodeInvalidRequest, "expires_in must be a positive number of seconds")
		}
		req.expiresIn = time.Duration(n) * time.Second
	}
	return req, nil
}

// holds reports whether a holder of have may use scope s: exactly, or
// through a wildcard "prefix:*" that covers every "prefix:x".
func holds(have []string, s string) bool {
	for _, h := range have {
		if h == s {
			return true
		}
		if prefix, ok := strings.CutSuffix(h, "*"); ok && strings.HasSuffix(prefix, ":") &&
			len(s) > len(prefix) && strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// intersectScopes returns the scopes every holder holds: of the requested
// ones when given, otherwise of all the holders' scopes. Invalid scope
// tokens are never issued.
func intersectScopes(requested []string, given bool, holders ...[]string) []string {
	candidates := requested
	if !given {
		candidates = nil
		for _, h := range holders {
			candidates = append(candidates, h...)
		}
	}
	var out []string
	for _, s := range candidates {
		if !ValidScope(s) || slices.Contains(out, s) {
			continue
		}
		ok := true
		for _, h := range holders {
			if !holds(h, s) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}
