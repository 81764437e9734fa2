package mfa

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
)

// VerifyPath is where StepUp is served (the gateway's native endpoint).
const VerifyPath = "/v1/warden/mfa/verify"

// DefaultElevatedTTL is the lifetime of an elevated token when none is configured.
const DefaultElevatedTTL = 10 * time.Minute

// maxVerifyBody bounds the step-up request body: {"code":"123456"} is 17 bytes.
const maxVerifyBody = 1024

// Challenge headers (RFC 6750 §3, RFC 9470 §3).
const (
	// StepUpChallenge is the WWW-Authenticate value of StepUpRequired.
	StepUpChallenge = `Bearer realm="warden", error="insufficient_user_authentication", ` +
		`error_description="step-up required", acr_values="mfa"`
	invalidCodeChallenge = `Bearer realm="warden", error="invalid_token"`
)

// Public messages.
const (
	msgStepUpRequired = "multi-factor authentication required: POST a TOTP code to " + VerifyPath +
		", then retry with the returned token"
	msgInvalidCode = "the MFA code was not accepted; wait for the next code and try again"
)

// An ElevatedIssuer issues a short-lived token for a principal whose second
// factor was just verified (p.MFA is true).
type ElevatedIssuer interface {
	IssueElevated(p gateway.Principal, ttl time.Duration, now time.Time) (token string, expires time.Time, err error)
}

// StepUp serves POST /v1/warden/mfa/verify: an authenticated user presents a
// TOTP code and gets an elevated token. It is a gateway.NativeHandler.
type StepUp struct {
	store *Store
	iss   ElevatedIssuer
	ttl   time.Duration
	now   func() time.Time
}

// NewStepUp returns the step-up endpoint. elevatedTTL <= 0 means
// DefaultElevatedTTL; the issuer may cap it further.
func NewStepUp(store *Store, iss ElevatedIssuer, elevatedTTL time.Duration) *StepUp {
	if elevatedTTL <= 0 {
		elevatedTTL = DefaultElevatedTTL
	}
	return &StepUp{store: store, iss: iss, ttl: elevatedTTL, now: time.Now}
}

// tokenResponse is the success body, shaped like an OAuth 2.0 token response
// (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
}

// ServeExchange implements gateway.NativeHandler. On success it writes the
// token response and returns nil; otherwise it returns a *gateway.Error for
// the chain to write (setting only WWW-Authenticate / Retry-After itself).
func (s *StepUp) ServeExchange(ex *gateway.Exchange) error {
	if s == nil || s.store == nil || s.iss == nil || s.now == nil {
		return errors.New("mfa: step-up endpoint not configured (use NewStepUp)")
	}
	if ex == nil || ex.Request == nil || ex.Writer == nil {
		return errors.New("mfa: step-up: exchange without request or writer")
	}
	if ex.Principal == nil {
		// The identify stage runs first; reaching here unproven is a wiring fault.
		setHeader(ex, "WWW-Authenticate", `Bearer realm="warden"`)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "missing_credentials",
			errors.New("mfa: step-up reached without a principal"), "authentication required")
	}
	p := *ex.Principal
	if p.Kind != gateway.KindUser {
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "mfa_not_applicable",
			fmt.Errorf("mfa: step-up by %s %s: only users have a second factor", p.Kind, p.ID),
			"multi-factor step-up applies to users only")
	}
	if ex.Request.Method != http.MethodPost {
		setHeader(ex, "Allow", http.MethodPost)
		return gateway.Errorf(http.StatusMethodNotAllowed, gateway.TypeInvalidRequest, "method_not_allowed", nil,
			"use POST")
	}
	if mt, _, err := mime.ParseMediaType(ex.Request.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return gateway.Errorf(http.StatusUnsupportedMediaType, gateway.TypeInvalidRequest, "unsupported_media_type", nil,
			`the body must be application/json: {"code":"123456"}`)
	}
	body, err := requestBody(ex)
	if err != nil {
		return err
	}
	code, err := parseVerifyRequest(body)
	if err != nil {
		return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_request",
			fmt.Errorf("mfa: step-up: %w", err), `the body must be {"code":"123456"}`)
	}

	now := s.now()
	if err := s.store.Verify(p.ID, code, now); err != nil {
		return s.verifyError(ex, err)
	}

	p.MFA = true
	p.Scopes = slices.Clone(p.Scopes)
	p.Groups = slices.Clone(p.Groups)
	p.Roles = slices.Clone(p.Roles)
	token, expires, err := s.iss.IssueElevated(p, s.ttl, now)
	if err != nil {
		// The code is spent; the user waits for the next one.
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "token_unavailable",
			fmt.Errorf("mfa: step-up for %s: issue elevated token: %w", p.ID, err),
			"the second factor was verified but no token could be issued; try again with the next code")
	}
	if token == "" || !expires.After(now) {
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "token_unavailable",
			fmt.Errorf("mfa: step-up for %s: issuer returned an empty or expired token", p.ID),
			"the second factor was verified but no token could be issued; try again with the next code")
	}
	out, err := json.Marshal(tokenResponse{
		AccessToken: token,
		TokenType:   "Bearer",
		ExpiresIn:   int64(math.Ceil(expires.Sub(now).Seconds())),
	})
	if err != nil {
		return fmt.Errorf("mfa: step-up: encode response: %w", err)
	}
	h := ex.Writer.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store") // RFC 6749 §5.1
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	ex.Writer.WriteHeader(http.StatusOK)
	if _, err := ex.Writer.Write(append(out, '\n')); err != nil {
		return fmt.Errorf("mfa: step-up: write response: %w", err)
	}
	return nil
}

// verifyError maps a Verify error to the public error. A wrong and a
// replayed code look the same to the client; the cause tells them apart in
// the log and the audit record.
func (s *StepUp) verifyError(ex *gateway.Exchange, err error) error {
	switch {
	case errors.Is(err, ErrTooManyAttempts):
		if d, ok := RetryAfter(err); ok {
			setHeader(ex, "Retry-After", strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10))
		}
		return gateway.Errorf(http.StatusTooManyRequests, gateway.TypeRateLimit, "too_many_mfa_attempts", err,
			"too many failed MFA attempts; wait before trying again")
	case errors.Is(err, ErrNotEnrolled):
		return gateway.Errorf(http.StatusForbidden, gateway.TypePermission, "mfa_not_enrolled", err,
			"no second factor is enrolled for this user; ask an administrator to enroll one")
	case errors.Is(err, ErrInvalidCode), errors.Is(err, ErrReplayedCode):
		setHeader(ex, "WWW-Authenticate", invalidCodeChallenge)
		return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "invalid_mfa_code", err, msgInvalidCode)
	default:
		setHeader(ex, "Retry-After", "1")
		return gateway.Errorf(http.StatusServiceUnavailable, gateway.TypeServer, "mfa_unavailable", err,
			"multi-factor verification is unavailable; try again later")
	}
}

// StepUpRequired is the error the policy stage returns when the decision
// carries the require_mfa obligation and ex.Principal.MFA is false: 401
// "mfa_required" with the RFC 9470 step-up challenge in WWW-Authenticate
// (set on ex.Writer). The chain writes the JSON body.
func StepUpRequired(ex *gateway.Exchange) *gateway.Error {
	setHeader(ex, "WWW-Authenticate", StepUpChallenge)
	who := "unknown principal"
	if ex != nil && ex.Principal != nil {
		who = ex.Principal.Kind + " " + ex.Principal.ID
	}
	return gateway.Errorf(http.StatusUnauthorized, gateway.TypeAuthentication, "mfa_required",
		fmt.Errorf("mfa: policy obligation require_mfa: %s has no verified second factor", who), msgStepUpRequired)
}

// RequireMFA enforces the require_mfa obligation; its signature is the
// policy stage's ObligationFunc, so the gateway registers it with
// Enforce("require_mfa", mfa.RequireMFA). value true lets the exchange go on
// only when the principal has a verified second factor, else it returns
// StepUpRequired; false requires nothing; any other value is a policy
// fault and fails closed.
func RequireMFA(ex *gateway.Exchange, value any) error {
	required, ok := value.(bool)
	if !ok {
		return fmt.Errorf("mfa: obligation require_mfa: want true or false, got %T", value)
	}
	if !required {
		return nil
	}
	if ex != nil && ex.Principal != nil && ex.Principal.MFA {
		return nil
	}
	return StepUpRequired(ex)
}

func setHeader(ex *gateway.Exchange, key, value string) {
	if ex != nil && ex.Writer != nil {
		ex.Writer.Header().Set(key, value)
	}
}

// requestBody returns the body read by the body stage, or reads it (bounded)
// when no body stage ran.
func requestBody(ex *gateway.Exchange) ([]byte, error) {
	body := ex.Body
	if body == nil && ex.Request.Body != nil && ex.Request.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(ex.Request.Body, maxVerifyBody+1))
		if err != nil {
			return nil, gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_request",
				fmt.Errorf("mfa: step-up: read body: %w", err), "the request body could not be read")
		}
		body = b
	}
	if len(body) > maxVerifyBody {
		return nil, gateway.Errorf(http.StatusRequestEntityTooLarge, gateway.TypeInvalidRequest, "request_too_large", nil,
			"the request body is larger than %d bytes", maxVerifyBody)
	}
	return body, nil
}

// parseVerifyRequest decodes {"code":"123456"} strictly: one JSON object, no
// other fields, nothing after it. It does not check the code's format
// (Verify does, and counts a malformed code as a failed attempt).
func parseVerifyRequest(body []byte) (string, error) {
	if len(body) > maxVerifyBody {
		return "", fmt.Errorf("body larger than %d bytes", maxVerifyBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req struct {
		Code *string `json:"code"`
	}
	if err := dec.Decode(&req); err != nil {
		// The decoder's message may quote the input; say what was wrong in
		// general terms so that nothing the client sent reaches the log.
		var syn *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return "", errors.New("empty body")
		case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
			return "", errors.New("body is not valid JSON")
		default:
			return "", errors.New(`body is not an object with only a string "code"`)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("trailing data after the JSON object")
	}
	if req.Code == nil {
		return "", errors.New(`"code" is required`)
	}
	return *req.Code, nil
}

// Interface guard.
var _ gateway.NativeHandler = (*StepUp)(nil)
