package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/warden-ai/warden/internal/gateway"
)

// Input is the document a policy sees as `input`. The gateway builds it from
// the Exchange (NewInput); `warden policy eval` reads it from JSON
// (ParseInput). Times are RFC 3339 in UTC with second precision, so two
// times compare correctly as strings too.
type Input struct {
	Principal PrincipalInput `json:"principal"`
	Action    string         `json:"action"` // "chat.completions", "models.list", "http.post", ...
	Resource  ResourceInput  `json:"resource"`
	Context   ContextInput   `json:"context"`
}

// PrincipalInput is who is calling, as proven by the identity stage.
type PrincipalInput struct {
	Kind         string    `json:"kind"` // user | service | agent
	ID           string    `json:"id"`
	OnBehalfOf   string    `json:"on_behalf_of"` // "" unless an agent acts for a user
	AuthMethod   string    `json:"auth_method"`
	CredentialID string    `json:"credential_id"`
	AuthTime     time.Time `json:"auth_time"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"` // omitted: the credential does not expire
	Scopes       []string  `json:"scopes"`
	Issuer       string    `json:"issuer"` // OIDC issuer, SPIFFE trust domain, "warden", "" for API keys
	Groups       []string  `json:"groups"`
	Roles        []string  `json:"roles"`
	MFA          bool      `json:"mfa"`      // a second factor was verified for this credential
	Workload     string    `json:"workload"` // SPIFFE ID of the mTLS peer when a bearer credential named the principal
}

// MarshalJSON encodes absent lists as [] rather than null, as Value does, so
// that a policy never has to tell "no groups" from "groups unknown".
func (p PrincipalInput) MarshalJSON() ([]byte, error) {
	type plain PrincipalInput // no MarshalJSON: avoids recursion
	q := plain(p)
	for _, l := range []*[]string{&q.Scopes, &q.Groups, &q.Roles} {
		if *l == nil {
			*l = []string{}
		}
	}
	return json.Marshal(q)
}

// ResourceInput is what the request targets.
type ResourceInput struct {
	Route   string `json:"route"`   // config name of the matched route
	Segment string `json:"segment"` // training | inference | deployment | ...
	API     string `json:"api"`     // openai | http
	Method  string `json:"method"`
	Path    string `json:"path"`
	Model   string `json:"model"` // model named in the request body, "" if none
	Stream  bool   `json:"stream"`
}

// ContextInput is the circumstance of the request. Unix, Weekday and Hour
// are derived from Time (see SetTime).
type ContextInput struct {
	Time         time.Time `json:"time"`
	Unix         int64     `json:"unix"`
	Weekday      string    `json:"weekday"` // Mon, Tue, Wed, Thu, Fri, Sat, Sun
	Hour         int       `json:"hour"`    // 0-23, UTC
	SourceIP     string    `json:"source_ip"`
	RequestID    string    `json:"request_id"`
	RequestBytes int64     `json:"request_bytes"`
}

// SetTime sets Time and the fields derived from it, in UTC, to the second.
func (c *ContextInput) SetTime(t time.Time) {
	t = t.UTC().Truncate(time.Second)
	c.Time = t
	c.Unix = t.Unix()
	c.Weekday = t.Weekday().String()[:3]
	c.Hour = t.Hour()
}

// NewInput builds the policy input from an exchange. ex.Principal and
// ex.Request must be set. request_bytes is the length of the body read so
// far or, before the body is read, the declared Content-Length (0 if unknown).
func NewInput(ex *gateway.Exchange) (Input, error) {
	if ex.Principal == nil {
		return Input{}, errors.New("policy: input: no principal (authorize must run after identify)")
	}
	if ex.Request == nil {
		return Input{}, errors.New("policy: input: no request")
	}
	p := ex.Principal
	in := Input{
		Principal: PrincipalInput{
			Kind:         p.Kind,
			ID:           p.ID,
			OnBehalfOf:   p.OnBehalfOf,
			AuthMethod:   p.AuthMethod,
			CredentialID: p.CredentialID,
			AuthTime:     p.AuthTime,
			ExpiresAt:    p.ExpiresAt,
			Scopes:       p.Scopes,
			Issuer:       p.Issuer,
			Groups:       p.Groups,
			Roles:        p.Roles,
			MFA:          p.MFA,
			Workload:     p.Workload,
		},
		Action: ex.Action,
		Resource: ResourceInput{
			Method: ex.Request.Method,
			Model:  ex.Model,
			Stream: ex.Stream,
		},
		Context: ContextInput{RequestID: ex.ID},
	}
	if ex.Request.URL != nil {
		in.Resource.Path = ex.Request.URL.Path
	}
	if r := ex.Route; r != nil {
		in.Resource.Route, in.Resource.Segment, in.Resource.API = r.Name, r.Segment, r.API
	}
	start := ex.Start
	if start.IsZero() {
		start = time.Now()
	}
	in.Context.SetTime(start)
	if ex.SourceIP.IsValid() {
		in.Context.SourceIP = ex.SourceIP.Unmap().String()
	}
	switch {
	case ex.Body != nil:
		in.Context.RequestBytes = int64(len(ex.Body))
	case ex.Request.ContentLength > 0:
		in.Context.RequestBytes = ex.Request.ContentLength
	}
	return in, nil
}

// maxInputBytes bounds a JSON input read by ParseInput.
const maxInputBytes = 1 << 20

// ParseInput reads one JSON input document. Unknown fields are an error.
// If context.time is absent the current time is used; context.unix, weekday
// and hour are always derived from context.time, as the gateway does.
func ParseInput(r io.Reader) (Input, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return Input{}, fmt.Errorf("policy: input: %w", err)
	}
	if len(data) > maxInputBytes {
		return Input{}, fmt.Errorf("policy: input: larger than %d bytes", maxInputBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var in Input
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("policy: input: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Input{}, errors.New("policy: input: trailing data after the JSON document")
	}
	t := in.Context.Time
	if t.IsZero() {
		t = time.Now()
	}
	in.Context.SetTime(t)
	return in, nil
}

// Keys of the input document, built once.
var (
	kPrincipal    = ast.StringTerm("principal")
	kAction       = ast.StringTerm("action")
	kResource     = ast.StringTerm("resource")
	kContext      = ast.StringTerm("context")
	kKind         = ast.StringTerm("kind")
	kID           = ast.StringTerm("id")
	kOnBehalfOf   = ast.StringTerm("on_behalf_of")
	kAuthMethod   = ast.StringTerm("auth_method")
	kCredentialID = ast.StringTerm("credential_id")
	kAuthTime     = ast.StringTerm("auth_time")
	kExpiresAt    = ast.StringTerm("expires_at")
	kScopes       = ast.StringTerm("scopes")
	kIssuer       = ast.StringTerm("issuer")
	kGroups       = ast.StringTerm("groups")
	kRoles        = ast.StringTerm("roles")
	kMFA          = ast.StringTerm("mfa")
	kWorkload     = ast.StringTerm("workload")
	kRoute        = ast.StringTerm("route")
	kSegment      = ast.StringTerm("segment")
	kAPI          = ast.StringTerm("api")
	kMethod       = ast.StringTerm("method")
	kPath         = ast.StringTerm("path")
	kModel        = ast.StringTerm("model")
	kStream       = ast.StringTerm("stream")
	kTime         = ast.StringTerm("time")
	kUnix         = ast.StringTerm("unix")
	kWeekday      = ast.StringTerm("weekday")
	kHour         = ast.StringTerm("hour")
	kSourceIP     = ast.StringTerm("source_ip")
	kRequestID    = ast.StringTerm("request_id")
	kRequestBytes = ast.StringTerm("request_bytes")
)

// Value converts in to a Rego value by hand, which is about twice as fast
// as letting OPA convert the struct through JSON (see BenchmarkDecide and
// BenchmarkDecideEvalInput). It has the shape of in's JSON encoding, with
// times in UTC to the second.
func (in *Input) Value() ast.Value {
	p, r, c := &in.Principal, &in.Resource, &in.Context
	// All string terms come from one allocation.
	a := termAlloc{buf: make([]ast.Term, 0, 20+len(p.Scopes)+len(p.Groups)+len(p.Roles))}
	principal := make([][2]*ast.Term, 0, 13)
	principal = append(principal,
		ast.Item(kKind, a.str(p.Kind)),
		ast.Item(kID, a.str(p.ID)),
		ast.Item(kOnBehalfOf, a.str(p.OnBehalfOf)),
		ast.Item(kAuthMethod, a.str(p.AuthMethod)),
		ast.Item(kCredentialID, a.str(p.CredentialID)),
		ast.Item(kAuthTime, a.time(p.AuthTime)),
		ast.Item(kScopes, a.strings(p.Scopes)),
		ast.Item(kIssuer, a.str(p.Issuer)),
		ast.Item(kGroups, a.strings(p.Groups)),
		ast.Item(kRoles, a.strings(p.Roles)),
		ast.Item(kMFA, ast.InternedTerm(p.MFA)),
		ast.Item(kWorkload, a.str(p.Workload)),
	)
	if !p.ExpiresAt.IsZero() {
		principal = append(principal, ast.Item(kExpiresAt, a.time(p.ExpiresAt)))
	}
	return ast.NewObject(
		ast.Item(kPrincipal, ast.NewTerm(ast.NewObject(principal...))),
		ast.Item(kAction, a.str(in.Action)),
		ast.Item(kResource, ast.ObjectTerm(
			ast.Item(kRoute, a.str(r.Route)),
			ast.Item(kSegment, a.str(r.Segment)),
			ast.Item(kAPI, a.str(r.API)),
			ast.Item(kMethod, a.str(r.Method)),
			ast.Item(kPath, a.str(r.Path)),
			ast.Item(kModel, a.str(r.Model)),
			ast.Item(kStream, ast.InternedTerm(r.Stream)),
		)),
		ast.Item(kContext, ast.ObjectTerm(
			ast.Item(kTime, a.time(c.Time)),
			ast.Item(kUnix, ast.InternedTerm(c.Unix)),
			ast.Item(kWeekday, a.str(c.Weekday)),
			ast.Item(kHour, ast.InternedTerm(c.Hour)),
			ast.Item(kSourceIP, a.str(c.SourceIP)),
			ast.Item(kRequestID, a.str(c.RequestID)),
			ast.Item(kRequestBytes, ast.InternedTerm(c.RequestBytes)),
		)),
	)
}

// termAlloc hands out string terms from one slice, saving an allocation per
// term. buf must be allocated with enough capacity for every term.
type termAlloc struct{ buf []ast.Term }

// str returns a term for s: a shared one for common strings ("" among them).
func (a *termAlloc) str(s string) *ast.Term {
	if t := internedString(s); t != nil {
		return t
	}
	a.buf = append(a.buf, ast.Term{Value: ast.String(s)})
	return &a.buf[len(a.buf)-1]
}

// strings returns an array term of ss ([] for none).
func (a *termAlloc) strings(ss []string) *ast.Term {
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = a.str(s)
	}
	return ast.ArrayTerm(terms...)
}

// time returns a term for t formatted as RFC 3339 in UTC to the second.
func (a *termAlloc) time(t time.Time) *ast.Term {
	var b [len(time.RFC3339) + 10]byte
	return a.str(string(t.UTC().AppendFormat(b[:0], time.RFC3339)))
}

// internedString returns a shared term for a string that many inputs
// carry, or nil.
func internedString(s string) *ast.Term { return sharedStrings[s] }

// sharedStrings are terms for strings common in inputs. Terms are never
// modified by OPA, so one term may serve every evaluation.
var sharedStrings = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, s := range []string{
		"",
		"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
		gateway.KindUser, gateway.KindService, gateway.KindAgent,
		"api_key", "mtls", "jwt", "token", "warden", "control",
		"token.exchange", "mfa.verify",
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
		"openai", "http",
		"training", "inference", "deployment",
		"chat.completions", "completions", "embeddings", "responses", "models.list", "models.get",
		"http.get", "http.head", "http.post", "http.put", "http.patch", "http.delete", "http.options",
		"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/models",
	} {
		m[s] = ast.StringTerm(s)
	}
	return m
}()
