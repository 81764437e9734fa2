// Package grant keeps warden's just-in-time grants: time-bound permissions
// that a principal requests and a different principal holding the approver
// role approves. It guarantees that a grant is active only between its
// approval and its expiry, whatever the store file says or the sweeper did;
// that no one approves a grant they requested or that is for them; and that
// while the store cannot be read no grant is active at all.
//
// A grant goes requested → approved → (revoked | expired), or requested →
// (denied | revoked | expired): a request that is not approved by its
// decide_by time lapses. Every step is kept in the grant's history with the
// principal who took it and the id of the request that did it, so that each
// step can be found in the audit log.
package grant

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-ai/warden/internal/gateway"
)

// States of a grant. A stored grant is in one of them; Grant.Status gives
// the effective state at a time, in which a grant past its expiry (or a
// request past its decide_by) is expired even before the sweeper records it.
const (
	StateRequested = "requested"
	StateApproved  = "approved"
	StateDenied    = "denied"
	StateRevoked   = "revoked"
	StateExpired   = "expired"
)

// Steps of a grant's history.
const (
	StepRequest = "request"
	StepApprove = "approve"
	StepDeny    = "deny"
	StepRevoke  = "revoke"
	StepExpire  = "expire"
)

// Limits and defaults.
const (
	// HardMaxDuration bounds every grant, whatever the configuration says.
	HardMaxDuration = 7 * 24 * time.Hour
	// DefaultMaxDuration is the longest grant when Options give none.
	DefaultMaxDuration = 8 * time.Hour
	// MinDuration is the shortest grant.
	MinDuration = time.Second
	// DefaultApproverRole is the approver role when Options give none.
	DefaultApproverRole = "grant-approver"
	// DefaultPendingTTL is how long a request waits for a decision before
	// it lapses.
	DefaultPendingTTL = 24 * time.Hour
	// DefaultRetention is how long an ended grant (denied, revoked,
	// expired) stays in the store; the audit log keeps the record for good.
	DefaultRetention = 30 * 24 * time.Hour

	// MaxPendingPerPrincipal bounds the open requests for one principal and
	// the open requests made by one principal.
	MaxPendingPerPrincipal = 10
	// MaxActivePerPrincipal bounds one principal's active grants.
	MaxActivePerPrincipal = 20
	// MaxOpen bounds the open requests and active grants of all principals.
	MaxOpen = 1000
	// MaxRecords bounds the grants in the store, ended ones included.
	MaxRecords = 10000

	maxIDBytes       = 256 // principal ids
	maxActionBytes   = 128
	maxResourceBytes = 256
	maxReasonBytes   = 512
	maxHistory       = 8
	// MaxRequestBytes bounds a request document (ParseRequest).
	MaxRequestBytes = 16 << 10
)

// Errors. Store methods return errors wrapping exactly one of them.
var (
	ErrInvalid     = errors.New("invalid grant")
	ErrNotFound    = errors.New("no such grant")
	ErrForbidden   = errors.New("not permitted")
	ErrConflict    = errors.New("wrong state")
	ErrLimit       = errors.New("grant limit reached")
	ErrUnavailable = errors.New("grant store unavailable")
)

// Event is one step of a grant's history.
type Event struct {
	Step string    `json:"step"`
	By   string    `json:"by,omitempty"` // principal id; "" for an expiry
	At   time.Time `json:"at"`
	// RequestID is the warden request id of the step, which names its
	// audit record; "" when the step was not a request (an expiry).
	RequestID string `json:"request_id,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Grant is one just-in-time grant as stored. The store keeps times in UTC
// to the whole second and durations in whole seconds, the precision policy
// sees, so that a grant ends for the store and for policy at one instant.
type Grant struct {
	ID        string   `json:"id"`
	State     string   `json:"state"`
	Principal string   `json:"principal"`          // the principal id it is for
	Action    string   `json:"action"`             // action it permits, "*" for any
	Segment   string   `json:"segment"`            // segment it applies to
	Resource  string   `json:"resource,omitempty"` // route, model or tool name; "" for any
	Duration  Duration `json:"duration"`           // how long it lasts once approved
	Reason    string   `json:"reason"`             // the requester's justification

	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	// DecideBy is when an undecided request lapses.
	DecideBy time.Time `json:"decide_by"`

	ApprovedBy string    `json:"approved_by,omitempty"`
	NotBefore  time.Time `json:"not_before,omitzero"` // the approval time
	ExpiresAt  time.Time `json:"expires_at,omitzero"` // NotBefore + Duration

	// EndedBy is who denied or revoked the grant ("" for an expiry).
	EndedBy string `json:"ended_by,omitempty"`
	// EndedAt is when it was denied, revoked or expired.
	EndedAt time.Time `json:"ended_at,omitzero"`

	History []Event `json:"history"`
}

// Status is the effective state of g at now: a request past DecideBy and an
// approved grant past ExpiresAt are expired.
func (g *Grant) Status(now time.Time) string {
	switch g.State {
	case StateRequested:
		if !now.Before(g.DecideBy) {
			return StateExpired
		}
	case StateApproved:
		if !now.Before(g.ExpiresAt) {
			return StateExpired
		}
	}
	return g.State
}

// Active reports whether g permits anything at now: approved, not before
// its approval and before its expiry.
func (g *Grant) Active(now time.Time) bool {
	return g.State == StateApproved && !now.Before(g.NotBefore) && now.Before(g.ExpiresAt)
}

// endsAt is when g ends by itself if nobody acts: its expiry or its
// decide_by; zero for an ended grant.
func (g *Grant) endsAt() time.Time {
	switch g.State {
	case StateRequested:
		return g.DecideBy
	case StateApproved:
		return g.ExpiresAt
	}
	return time.Time{}
}

// At returns a copy of g as it stands at now: State is the effective state
// and an expiry not yet recorded has its EndedAt.
func (g Grant) At(now time.Time) Grant {
	if st := g.Status(now); st != g.State {
		g.EndedAt = g.endsAt()
		g.State = st
	}
	g.History = append([]Event(nil), g.History...)
	return g
}

// Gateway is the shape policy sees.
func (g *Grant) Gateway() gateway.Grant {
	return gateway.Grant{
		ID: g.ID, Principal: g.Principal, Action: g.Action, Segment: g.Segment, Resource: g.Resource,
		Reason: g.Reason, RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy,
		NotBefore: g.NotBefore, ExpiresAt: g.ExpiresAt,
	}
}

// Duration is a time.Duration written in JSON as a Go duration string ("2h").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a string such as "2h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string such as "90m" or "2h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`duration must be a string such as "2h" or "30m"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`duration %q: want a number with a unit, such as "2h" or "30m"`, clip(s, 24))
	}
	*d = Duration(v)
	return nil
}

// Request is what a principal asks for.
type Request struct {
	// Principal is who the grant is for; "" means the requester.
	Principal string   `json:"principal,omitempty"`
	Action    string   `json:"action"`
	Segment   string   `json:"segment"`
	Resource  string   `json:"resource,omitempty"`
	Duration  Duration `json:"duration"`
	Reason    string   `json:"reason"`
}

// ParseRequest decodes a request document strictly: one JSON object of at
// most MaxRequestBytes, no unknown fields, nothing after it. It checks the
// syntax only; the store checks the values (Validate).
func ParseRequest(data []byte) (Request, error) {
	var r Request
	if err := decodeStrict(data, MaxRequestBytes, &r); err != nil {
		return Request{}, fmt.Errorf("grant: request: %w: %w", ErrInvalid, err)
	}
	return r, nil
}

// Note is the optional body of approve, deny and revoke: {"note": "..."}.
type Note struct {
	Note string `json:"note,omitempty"`
}

// ParseNote decodes an approve, deny or revoke body; an empty body is no note.
func ParseNote(data []byte) (string, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil
	}
	var n Note
	if err := decodeStrict(data, MaxRequestBytes, &n); err != nil {
		return "", fmt.Errorf("grant: note: %w: %w", ErrInvalid, err)
	}
	if err := validText("note", n.Note, false); err != nil {
		return "", fmt.Errorf("grant: note: %w: %w", ErrInvalid, err)
	}
	return n.Note, nil
}

func decodeStrict(data []byte, max int, v any) error {
	if len(data) > max {
		return fmt.Errorf("larger than %d bytes", max)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// Validate checks a request against the limits: max is the longest
// duration allowed (HardMaxDuration caps it). Errors wrap ErrInvalid.
func (r *Request) Validate(max time.Duration) error {
	max = min(max, HardMaxDuration)
	errs := []error{
		validIDField("principal", r.Principal, true),
		validAction(r.Action),
		validSegment(r.Segment),
		validResource(r.Resource),
		validText("reason", r.Reason, true),
	}
	switch d := r.Duration.D(); {
	case d == 0:
		errs = append(errs, errors.New("duration: required"))
	case d < MinDuration:
		errs = append(errs, fmt.Errorf("duration: %s is shorter than %s", d, MinDuration))
	case d > max:
		errs = append(errs, fmt.Errorf("duration: %s is longer than the maximum %s", d, max))
	case d%time.Second != 0:
		errs = append(errs, fmt.Errorf("duration: %s is not a whole number of seconds", d))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

var (
	actionRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	segmentRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	idRE      = regexp.MustCompile(`^g_[0-9a-f]{24}$`)
)

// ValidID reports whether id has the form of a grant id: "g_" and 24
// lowercase hex digits.
func ValidID(id string) bool { return idRE.MatchString(id) }

// validIDField checks a principal id: 1-256 bytes of UTF-8 without spaces
// or control characters. optional allows "".
func validIDField(name, v string, optional bool) error {
	switch {
	case v == "" && optional:
		return nil
	case v == "":
		return fmt.Errorf("%s: required", name)
	case len(v) > maxIDBytes:
		return fmt.Errorf("%s: longer than %d bytes", name, maxIDBytes)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r)
	}):
		return fmt.Errorf("%s: must be UTF-8 without spaces or control characters", name)
	}
	return nil
}

// validAction accepts "*" or an action name. Grants never permit the grant
// endpoints themselves: a grant that let its holder approve grants would
// undo the separation of duties they exist for.
func validAction(a string) error {
	switch {
	case a == "*":
		return nil
	case a == "":
		return errors.New(`action: required (an action such as "chat.completions", or "*")`)
	case !actionRE.MatchString(a):
		return errors.New(`action: must be "*" or 1-128 lower case letters, digits, '.', '_' or '-'`)
	case strings.HasPrefix(a, "grant."):
		return errors.New("action: a grant cannot permit grant management")
	}
	return nil
}

func validSegment(s string) error {
	switch {
	case s == "":
		return errors.New("segment: required")
	case !segmentRE.MatchString(s):
		return errors.New("segment: must be 1-63 lower case letters, digits, '_' or '-'")
	}
	return nil
}

// validResource accepts "" or a route, model or tool name: 1-256 printable
// ASCII characters without spaces.
func validResource(r string) error {
	if r == "" {
		return nil
	}
	if len(r) > maxResourceBytes {
		return fmt.Errorf("resource: longer than %d bytes", maxResourceBytes)
	}
	for i := 0; i < len(r); i++ {
		if c := r[i]; c <= ' ' || c >= 0x7f {
			return errors.New("resource: must be printable ASCII without spaces")
		}
	}
	return nil
}

// validText checks a reason or note: at most 512 bytes of UTF-8 without
// control characters; required ones must hold more than white space.
func validText(name, s string, required bool) error {
	switch {
	case required && strings.TrimSpace(s) == "":
		return fmt.Errorf("%s: required", name)
	case len(s) > maxReasonBytes:
		return fmt.Errorf("%s: longer than %d bytes", name, maxReasonBytes)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
	}):
		return fmt.Errorf("%s: must be UTF-8 text without control characters", name)
	}
	return nil
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
