package behavior

import (
	"context"
	"time"
)

// This file is the seam between the behaviour engine (baselines and
// anomaly scores, this package) and automated response (playbooks,
// internal/respond): the engine reports Anomalies to a Responder; the
// responder decides and acts. Neither imports the other's internals.

// Feature is one measured property of a principal's recent behaviour that
// contributed to an anomaly: its current value, what the baseline expects,
// and how unusual it is (a robust z-like score; larger is stranger).
type Feature struct {
	Name     string  `json:"name"`     // e.g. request_rate, tokens_out, distinct_models, denial_ratio, new_network, off_hours, prompt_similarity, new_client
	Value    float64 `json:"value"`    // the observed value
	Baseline float64 `json:"baseline"` // the baseline's centre (e.g. EWMA median)
	Score    float64 `json:"score"`    // deviation in robust units (e.g. |value-median|/MAD)
}

// Anomaly is the engine's verdict that a principal behaves abnormally. It
// names the features that drove it, so audit records and alerts explain
// themselves.
type Anomaly struct {
	Principal  string    `json:"principal"` // principal key: kind + ":" + id (see PrincipalKey)
	Kind       string    `json:"kind"`      // user | service | agent
	ID         string    `json:"id"`
	Credential string    `json:"credential,omitempty"` // non-secret id of the credential in use (API key id, token jti)
	At         time.Time `json:"at"`
	RequestID  string    `json:"request_id,omitempty"` // the exchange that tipped it
	Score      float64   `json:"score"`                // overall anomaly score, 0..1
	Risk       float64   `json:"risk"`                 // the principal's risk after this anomaly, 0..1
	Reason     string    `json:"reason"`               // one line: which features, e.g. "request_rate 14.2x baseline; new_network"
	Features   []Feature `json:"features"`
}

// A Responder acts on anomalies (throttle, require MFA, quarantine, revoke,
// alert, roll back). Respond must not block the request path for long: it is
// called from the engine's own goroutine, not from a request's.
type Responder interface {
	Respond(ctx context.Context, a Anomaly) error
}

// PrincipalKey is the key baselines, risk and sanctions are kept under.
func PrincipalKey(kind, id string) string { return kind + ":" + id }
