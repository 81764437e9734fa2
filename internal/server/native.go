package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/warden-ai/warden/internal/gateway"
	"github.com/warden-ai/warden/internal/identity"
	"github.com/warden-ai/warden/internal/identity/revoke"
)

// jwksPath is where warden publishes the public keys of its token issuer
// (RFC 8414 / OpenID discovery convention). It is public key material, so it
// is served without authentication, outside the stage chain.
const jwksPath = "/.well-known/jwks.json"

// withJWKS serves GET /.well-known/jwks.json from jwks and everything else
// from next. An exact path match only: no ServeMux, whose path cleaning and
// redirects would bypass the chain's own canonical-path checks.
func withJWKS(jwks, next http.Handler) http.Handler {
	if jwks == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == jwksPath && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			jwks.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// revoker serves POST /v1/warden/revoke, the admin API for revocation. It
// runs behind audit, identify and authorize like every request: policy
// decides who may revoke (action "credential.revoke" in segment "control").
//
// Body (application/json):
//
//	{"kind":"api_key","id":"<key id>"}
//	{"kind":"token","id":"<jti>","until":"<RFC 3339, default now + tokens.max_ttl>"}
//	{"kind":"subject","id":"<principal id>","until":"<default now + 30 days>"}
//
// A subject revocation ends every warden token of the subject (as subject or
// as acting agent) issued before it, and revokes the subject's API keys.
// Revocations are durable and reach running streams within a second.
type revoker struct {
	keys     *identity.KeyStore
	revoked  *revoke.List
	tokenTTL time.Duration
}

type revokeRequest struct {
	Kind   string    `json:"kind"`
	ID     string    `json:"id"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

func badRevoke(cause error, format string, args ...any) error {
	return gateway.Errorf(http.StatusBadRequest, gateway.TypeInvalidRequest, "invalid_revocation", cause, format, args...)
}

// ServeExchange implements gateway.NativeHandler.
func (rv *revoker) ServeExchange(ex *gateway.Exchange) error {
	if ct := ex.Request.Header.Get("Content-Type"); ct != "application/json" {
		return gateway.Errorf(http.StatusUnsupportedMediaType, gateway.TypeInvalidRequest, "unsupported_media_type", nil,
			"Content-Type must be application/json")
	}
	dec := json.NewDecoder(bytes.NewReader(ex.Body))
	dec.DisallowUnknownFields()
	var req revokeRequest
	if err := dec.Decode(&req); err != nil {
		return badRevoke(err, "the body must be a JSON object with kind, id and optionally until and reason")
	}
	if req.ID == "" || len(req.ID) > 1024 {
		return badRevoke(nil, "id is required (at most 1024 bytes)")
	}
	if len(req.Reason) > 256 {
		return badRevoke(nil, "reason is at most 256 bytes")
	}
	now := time.Now()
	reason := req.Reason
	if reason == "" {
		reason = "revoked by " + ex.Principal.ID
	}
	result := map[string]any{"kind": req.Kind, "id": req.ID}
	switch req.Kind {
	case "api_key":
		if err := rv.keys.Revoke(req.ID); err != nil {
			if errors.Is(err, identity.ErrUnknownKey) || errors.Is(err, identity.ErrInvalidArgument) {
				return gateway.Errorf(http.StatusNotFound, gateway.TypeNotFound, "unknown_credential", err, "no such API key")
			}
			return fmt.Errorf("revoke api key: %w", err) // store fault: 500, nothing claimed
		}
	case "token", "subject":
		until := req.Until
		if until.IsZero() {
			until = now.Add(rv.tokenTTL)
			if req.Kind == "subject" {
				until = now.Add(revoke.DefaultRetention)
			}
		}
		if !until.After(now) {
			return badRevoke(nil, "until must be in the future")
		}
		kind := revoke.KindToken
		if req.Kind == "subject" {
			kind = revoke.KindSubject
		}
		if err := revoke.ValidValue(req.ID); err != nil {
			return badRevoke(err, "id is not a valid token id or principal id")
		}
		if err := rv.revoked.Revoke(revoke.Entry{Kind: kind, Value: req.ID, Until: until, Reason: reason, At: now}); err != nil {
			return fmt.Errorf("revoke %s: %w", req.Kind, err)
		}
		result["until"] = until.UTC().Format(time.RFC3339)
		if req.Kind == "subject" {
			n := 0
			for _, k := range rv.keys.List() {
				if k.Subject == req.ID && k.RevokedAt.IsZero() {
					if err := rv.keys.Revoke(k.ID); err != nil {
						return fmt.Errorf("revoke api key %s of subject: %w", k.ID, err)
					}
					n++
				}
			}
			result["api_keys_revoked"] = n
		}
	default:
		return badRevoke(nil, "kind must be api_key, token or subject")
	}
	ex.Writer.Header().Set("Content-Type", "application/json")
	ex.Writer.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(ex.Writer).Encode(map[string]any{"revoked": result})
}

var _ gateway.NativeHandler = (*revoker)(nil)
