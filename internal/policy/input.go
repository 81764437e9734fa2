package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/warden-ai/warden/internal/gateway"
)

// Input is the document a policy sees as `input`. The gateway builds it from
// the Exchange (NewInput); `warden policy eval` reads it from JSON
// (ParseInput). Times are RFC 3339 to the second: in UTC, except
// context.local_time, which carries the offset of the policy time zone.
// Every field is always present in the document except
// principal.expires_at; lists are [] rather than null.
type Input struct {
	Principal PrincipalInput `json:"principal"`
	Action    string         `json:"action"` // "chat.completions", "models.list", "http.post", ...
	Resource  ResourceInput  `json:"resource"`
	Context   ContextInput   `json:"context"`
	Grants    []GrantInput   `json:"grants"` // the principal's active just-in-time grants
	// Sanctions are the automated responses in force for the principal
	// (internal/respond): "quarantine" never reaches policy (the sanctions
	// stage refuses first), "require_mfa" and "throttle" do.
	Sanctions []string `json:"sanctions"`

	posture *ast.Term // Context.Posture converted by NewInput, nil if not yet
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
	Tool    string `json:"tool"` // MCP tool named by the request, "" if none
	// Arguments are the arguments of an MCP tools/call or prompts/get, {}
	// if none: the JSON object the agent sent, numbers exact.
	Arguments map[string]any `json:"arguments"`
}

// MarshalJSON encodes absent arguments as {}, as Value does.
func (r ResourceInput) MarshalJSON() ([]byte, error) {
	type plain ResourceInput
	q := plain(r)
	if q.Arguments == nil {
		q.Arguments = map[string]any{}
	}
	return json.Marshal(q)
}

// ContextInput is the circumstance of the request. Unix, Weekday, Hour and
// the Local* fields are derived from Time and Timezone (see SetTime).
type ContextInput struct {
	Time    time.Time `json:"time"`
	Unix    int64     `json:"unix"`
	Weekday string    `json:"weekday"` // Mon, Tue, Wed, Thu, Fri, Sat, Sun (UTC)
	Hour    int       `json:"hour"`    // 0-23, UTC

	Timezone     string    `json:"timezone"`      // IANA name of the policy time zone, "UTC" by default
	LocalTime    time.Time `json:"local_time"`    // Time in Timezone, with its offset
	LocalWeekday string    `json:"local_weekday"` // weekday in Timezone
	LocalHour    int       `json:"local_hour"`    // 0-23 in Timezone

	SourceIP string   `json:"source_ip"`
	Networks []string `json:"networks"` // names of the configured networks holding SourceIP, sorted
	Geo      GeoInput `json:"geo"`

	Posture       map[string]any `json:"posture"`        // verified posture claims, {} if none
	PostureSource string         `json:"posture_source"` // "header" | "mtls" | ""
	Risk          float64        `json:"risk"`           // 0..1

	DataClasses  []string `json:"data_classes"`  // sorted unique classes of the findings so far
	FindingTypes []string `json:"finding_types"` // sorted unique types of the findings so far

	RequestID    string      `json:"request_id"`
	RequestBytes int64       `json:"request_bytes"`
	Tokens       TokensInput `json:"tokens"`
}

// MarshalJSON encodes absent lists as [] and absent posture as {}, as Value does.
func (c ContextInput) MarshalJSON() ([]byte, error) {
	type plain ContextInput
	q := plain(c)
	for _, l := range []*[]string{&q.Networks, &q.DataClasses, &q.FindingTypes} {
		if *l == nil {
			*l = []string{}
		}
	}
	if q.Posture == nil {
		q.Posture = map[string]any{}
	}
	return json.Marshal(q)
}

// GeoInput is where the source address is; "" and 0 when unknown.
type GeoInput struct {
	Country string `json:"country"` // ISO 3166-1 alpha-2
	City    string `json:"city"`
	ASN     uint32 `json:"asn"`
	Org     string `json:"org"`
}

// TokensInput is the token budget of the request.
type TokensInput struct {
	Prompt int64 `json:"prompt"` // prompt tokens counted so far (0 before counting)
	Max    int64 `json:"max"`    // largest of max_tokens, max_completion_tokens, max_output_tokens in the body; 0 if none
}

// GrantInput is one active just-in-time grant of the principal.
type GrantInput struct {
	ID          string    `json:"id"`
	Action      string    `json:"action"`
	Segment     string    `json:"segment"`
	Resource    string    `json:"resource"`
	RequestedBy string    `json:"requested_by"`
	ApprovedBy  string    `json:"approved_by"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// MarshalJSON encodes absent grants as [].
func (in Input) MarshalJSON() ([]byte, error) {
	type plain Input
	q := plain(in)
	if q.Grants == nil {
		q.Grants = []GrantInput{}
	}
	if q.Sanctions == nil {
		q.Sanctions = []string{}
	}
	return json.Marshal(q)
}

// SetTime sets Time and the fields derived from it, to the second: Unix,
// Weekday and Hour in UTC, and LocalTime, LocalWeekday and LocalHour in loc
// (UTC if nil), whose name becomes Timezone.
func (c *ContextInput) SetTime(t time.Time, loc *time.Location) {
	if loc == nil {
		loc = time.UTC
	}
	t = t.UTC().Truncate(time.Second)
	c.Time = t
	c.Unix = t.Unix()
	c.Weekday = weekdays[t.Weekday()]
	c.Hour = t.Hour()
	lt := t.In(loc)
	c.Timezone = loc.String()
	c.LocalTime = lt
	c.LocalWeekday = weekdays[lt.Weekday()]
	c.LocalHour = lt.Hour()
}

var weekdays = [...]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

// InputOptions is what the gateway knows beyond the exchange.
type InputOptions struct {
	// Location is the policy time zone for context.local_*; nil means UTC.
	Location *time.Location
	// Networks are the named networks for context.networks; nil means none.
	Networks *Networks
}

// ErrInput means warden could not build the input: a wiring fault or a
// value from another stage that breaks the schema. It fails closed (500).
var ErrInput = errors.New("policy: input")

// NewInput builds the policy input from an exchange. ex.Principal and
// ex.Request must be set. request_bytes is the length of the body read so
// far or, before the body is read, the declared Content-Length (0 if
// unknown). tokens.max is read from a JSON object body.
func NewInput(ex *gateway.Exchange, opts InputOptions) (Input, error) {
	return newInput(ex, opts, &allFields)
}

// newInput is NewInput that skips the work for fields not in use: the
// engine's policy cannot see them (see inputUse). Reading tokens.max from
// the body is a pass over the whole body, worth skipping when no rule
// looks at it; so is converting posture claims, whose only check is that
// they have a JSON form, which matters only to a policy that reads them.
func newInput(ex *gateway.Exchange, opts InputOptions, use *fieldSet) (Input, error) {
	if ex.Principal == nil {
		return Input{}, fmt.Errorf("%w: no principal (authorize must run after identify)", ErrInput)
	}
	if ex.Request == nil {
		return Input{}, fmt.Errorf("%w: no request", ErrInput)
	}
	p := ex.Principal
	var err error
	in := Input{
		Principal: PrincipalInput{
			Kind:         p.Kind,
			ID:           p.ID,
			OnBehalfOf:   p.OnBehalfOf,
			AuthMethod:   p.AuthMethod,
			CredentialID: p.CredentialID,
			AuthTime:     second(p.AuthTime),
			ExpiresAt:    second(p.ExpiresAt),
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
			Tool:   ex.Tool,
		},
		Context: ContextInput{RequestID: ex.ID},
	}
	if ex.Request.URL != nil {
		in.Resource.Path = ex.Request.URL.Path
	}
	if ex.MCP != nil {
		in.Resource.Arguments = ex.MCP.Arguments
	}
	if r := ex.Route; r != nil {
		in.Resource.Route, in.Resource.Segment, in.Resource.API = r.Name, r.Segment, r.API
	}
	start := ex.Start
	if start.IsZero() {
		start = time.Now()
	}
	in.Context.SetTime(start, opts.Location)
	if ex.SourceIP.IsValid() {
		ip := ex.SourceIP.Unmap()
		in.Context.SourceIP = ip.String()
		if use[fNetworks] {
			in.Context.Networks = opts.Networks.Match(ip)
		}
	}
	if a := ex.Assessment; a != nil {
		if math.IsNaN(a.Risk) || a.Risk < 0 || a.Risk > 1 {
			return Input{}, fmt.Errorf("%w: risk %v is outside 0..1", ErrInput, a.Risk)
		}
		in.Context.Risk = a.Risk
		in.Context.Posture = a.Posture
		if use[fPosture] { // converted once here, not again in value
			if in.posture, err = postureTerm(a.Posture); err != nil {
				return Input{}, fmt.Errorf("%w: %w", ErrInput, err)
			}
		}
		in.Context.PostureSource = a.PostureSource
		if g := a.Geo; g != nil {
			in.Context.Geo = GeoInput{Country: g.Country, City: g.City, ASN: g.ASN, Org: g.Org}
		}
	}
	if len(ex.Findings) > 0 && (use[fDataClasses] || use[fFindingTypes]) {
		in.Context.DataClasses, in.Context.FindingTypes = findingSets(ex.Findings)
	}
	switch {
	case ex.Body != nil:
		in.Context.RequestBytes = int64(len(ex.Body))
	case ex.Request.ContentLength > 0:
		in.Context.RequestBytes = ex.Request.ContentLength
	}
	in.Context.Tokens.Prompt = ex.Usage.PromptTokens
	if len(ex.Body) > 0 && use[fTokens] {
		max, err := RequestedMaxTokens(ex.Body)
		if err != nil {
			return Input{}, fmt.Errorf("%w: %w", ErrInput, err)
		}
		in.Context.Tokens.Max = max
	}
	if len(ex.Grants) > 0 {
		in.Grants = make([]GrantInput, len(ex.Grants))
		for i, g := range ex.Grants {
			in.Grants[i] = GrantInput{ID: g.ID, Action: g.Action, Segment: g.Segment, Resource: g.Resource,
				RequestedBy: g.RequestedBy, ApprovedBy: g.ApprovedBy, ExpiresAt: second(g.ExpiresAt)}
		}
	}
	if len(ex.Sanctions) > 0 {
		in.Sanctions = slices.Clone(ex.Sanctions)
	}
	return in, nil
}

// second returns t in UTC truncated to the second; the zero time stays zero.
func second(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Second)
}

// findingSets returns the sorted unique classes and types of findings.
func findingSets(fs []gateway.Finding) (classes, types []string) {
	classes = make([]string, 0, len(fs))
	types = make([]string, 0, len(fs))
	for _, f := range fs {
		classes = append(classes, f.Class)
		types = append(types, f.Type)
	}
	return sortUnique(classes), sortUnique(types)
}

// sortUnique sorts ss in place and drops duplicates and empty strings.
func sortUnique(ss []string) []string {
	slices.Sort(ss)
	ss = slices.Compact(ss)
	if len(ss) > 0 && ss[0] == "" {
		ss = ss[1:]
	}
	return ss
}

// maxInputBytes bounds a JSON input read by ParseInput.
const maxInputBytes = 1 << 20

// ParseInput reads one JSON input document in the shape NewInput builds.
// Unknown fields are an error. If context.time is absent the current time
// is used; context.unix, weekday, hour and the local_* fields are always
// derived from context.time and context.timezone ("UTC" if absent), as
// the gateway does. Lists are sorted as the gateway sorts them.
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
	dec.UseNumber() // posture numbers keep their exact text
	var in Input
	if err := dec.Decode(&in); err != nil {
		return Input{}, fmt.Errorf("policy: input: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Input{}, errors.New("policy: input: trailing data after the JSON document")
	}
	c := &in.Context
	loc := time.UTC
	if c.Timezone != "" {
		if loc, err = LoadLocation(c.Timezone); err != nil {
			return Input{}, fmt.Errorf("policy: input: context.timezone: %w", err)
		}
	}
	t := c.Time
	if t.IsZero() {
		t = time.Now()
	}
	c.SetTime(t, loc)
	if math.IsNaN(c.Risk) || c.Risk < 0 || c.Risk > 1 {
		return Input{}, fmt.Errorf("policy: input: context.risk %v is outside 0..1", c.Risk)
	}
	if c.Tokens.Prompt < 0 || c.Tokens.Max < 0 || c.RequestBytes < 0 {
		return Input{}, errors.New("policy: input: context.tokens and request_bytes must not be negative")
	}
	in.Principal.AuthTime, in.Principal.ExpiresAt = second(in.Principal.AuthTime), second(in.Principal.ExpiresAt)
	for i := range in.Grants {
		in.Grants[i].ExpiresAt = second(in.Grants[i].ExpiresAt)
	}
	c.Networks = sortUnique(c.Networks)
	c.DataClasses = sortUnique(c.DataClasses)
	c.FindingTypes = sortUnique(c.FindingTypes)
	if _, err := postureTerm(c.Posture); err != nil {
		return Input{}, fmt.Errorf("policy: input: %w", err)
	}
	if _, err := argumentsTerm(in.Resource.Arguments); err != nil {
		return Input{}, fmt.Errorf("policy: input: %w", err)
	}
	return in, nil
}

// LoadLocation loads an IANA time zone by name. Unlike time.LoadLocation it
// refuses "" and "Local": the policy time zone must not depend on the host.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: use an IANA name such as \"UTC\" or \"Europe/Berlin\"", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}

// Keys of the input document, built once.
var (
	kPrincipal     = ast.StringTerm("principal")
	kAction        = ast.StringTerm("action")
	kResource      = ast.StringTerm("resource")
	kContext       = ast.StringTerm("context")
	kGrants        = ast.StringTerm("grants")
	kSanctions     = ast.StringTerm("sanctions")
	kKind          = ast.StringTerm("kind")
	kID            = ast.StringTerm("id")
	kOnBehalfOf    = ast.StringTerm("on_behalf_of")
	kAuthMethod    = ast.StringTerm("auth_method")
	kCredentialID  = ast.StringTerm("credential_id")
	kAuthTime      = ast.StringTerm("auth_time")
	kExpiresAt     = ast.StringTerm("expires_at")
	kScopes        = ast.StringTerm("scopes")
	kIssuer        = ast.StringTerm("issuer")
	kGroups        = ast.StringTerm("groups")
	kRoles         = ast.StringTerm("roles")
	kMFA           = ast.StringTerm("mfa")
	kWorkload      = ast.StringTerm("workload")
	kRoute         = ast.StringTerm("route")
	kSegment       = ast.StringTerm("segment")
	kAPI           = ast.StringTerm("api")
	kMethod        = ast.StringTerm("method")
	kPath          = ast.StringTerm("path")
	kModel         = ast.StringTerm("model")
	kStream        = ast.StringTerm("stream")
	kTool          = ast.StringTerm("tool")
	kArguments     = ast.StringTerm("arguments")
	kTime          = ast.StringTerm("time")
	kUnix          = ast.StringTerm("unix")
	kWeekday       = ast.StringTerm("weekday")
	kHour          = ast.StringTerm("hour")
	kTimezone      = ast.StringTerm("timezone")
	kLocalTime     = ast.StringTerm("local_time")
	kLocalWeekday  = ast.StringTerm("local_weekday")
	kLocalHour     = ast.StringTerm("local_hour")
	kSourceIP      = ast.StringTerm("source_ip")
	kNetworks      = ast.StringTerm("networks")
	kGeo           = ast.StringTerm("geo")
	kCountry       = ast.StringTerm("country")
	kCity          = ast.StringTerm("city")
	kASN           = ast.StringTerm("asn")
	kOrg           = ast.StringTerm("org")
	kPosture       = ast.StringTerm("posture")
	kPostureSource = ast.StringTerm("posture_source")
	kRisk          = ast.StringTerm("risk")
	kDataClasses   = ast.StringTerm("data_classes")
	kFindingTypes  = ast.StringTerm("finding_types")
	kRequestID     = ast.StringTerm("request_id")
	kRequestBytes  = ast.StringTerm("request_bytes")
	kTokens        = ast.StringTerm("tokens")
	kPrompt        = ast.StringTerm("prompt")
	kMax           = ast.StringTerm("max")
	kRequestedBy   = ast.StringTerm("requested_by")
	kApprovedBy    = ast.StringTerm("approved_by")
)

// Terms shared by every input that has nothing in a place. OPA never
// modifies a term, so one may serve every evaluation.
var (
	emptyArray = ast.InternedEmptyArray
	emptyGeo   = ast.ObjectTerm(
		ast.Item(kCountry, ast.InternedTerm("")),
		ast.Item(kCity, ast.InternedTerm("")),
		ast.Item(kASN, ast.InternedTerm(0)),
		ast.Item(kOrg, ast.InternedTerm("")),
	)
	zeroTokens = ast.ObjectTerm(ast.Item(kPrompt, ast.InternedTerm(0)), ast.Item(kMax, ast.InternedTerm(0)))
)

// Value converts in to a Rego value by hand, which is about twice as fast
// as letting OPA convert the struct through JSON (see BenchmarkInputValue).
// It has the shape of in's JSON encoding, with times to the second. It
// fails only on posture claims that have no JSON form.
func (in *Input) Value() (ast.Value, error) { return in.value(&allFields) }

// value is Value with only the fields marked in use: the fields a compiled
// policy can reach (see inputUse). A policy cannot tell the difference.
func (in *Input) value(use *fieldSet) (ast.Value, error) {
	p, r, c := &in.Principal, &in.Resource, &in.Context
	var posture *ast.Term
	if use[fPosture] {
		posture = in.posture
		if posture == nil {
			var err error
			if posture, err = postureTerm(c.Posture); err != nil {
				return nil, err
			}
		}
	}
	// All string terms come from one allocation.
	n := 32 + len(p.Scopes) + len(p.Groups) + len(p.Roles) + len(c.Networks) + len(c.DataClasses) + len(c.FindingTypes) + 8*len(in.Grants)
	a := termAlloc{buf: make([]ast.Term, 0, n)}
	b := objectBuilder{use: use}

	var topItems [5][2]*ast.Term
	top := topItems[:0]
	if use[fPrincipal] {
		b.start()
		b.add(fKind, kKind, func() *ast.Term { return a.str(p.Kind) })
		b.add(fID, kID, func() *ast.Term { return a.str(p.ID) })
		b.add(fOnBehalfOf, kOnBehalfOf, func() *ast.Term { return a.str(p.OnBehalfOf) })
		b.add(fAuthMethod, kAuthMethod, func() *ast.Term { return a.str(p.AuthMethod) })
		b.add(fCredentialID, kCredentialID, func() *ast.Term { return a.str(p.CredentialID) })
		b.add(fAuthTime, kAuthTime, func() *ast.Term { return a.time(p.AuthTime, time.UTC) })
		b.add(fScopes, kScopes, func() *ast.Term { return a.strings(p.Scopes) })
		b.add(fIssuer, kIssuer, func() *ast.Term { return a.str(p.Issuer) })
		b.add(fGroups, kGroups, func() *ast.Term { return a.strings(p.Groups) })
		b.add(fRoles, kRoles, func() *ast.Term { return a.strings(p.Roles) })
		b.add(fMFA, kMFA, func() *ast.Term { return ast.InternedTerm(p.MFA) })
		b.add(fWorkload, kWorkload, func() *ast.Term { return a.str(p.Workload) })
		if !p.ExpiresAt.IsZero() {
			b.add(fExpiresAt, kExpiresAt, func() *ast.Term { return a.time(p.ExpiresAt, time.UTC) })
		}
		top = append(top, ast.Item(kPrincipal, b.term()))
	}
	if use[fAction] {
		top = append(top, ast.Item(kAction, a.str(in.Action)))
	}
	if use[fResource] {
		b.start()
		b.add(fRoute, kRoute, func() *ast.Term { return a.str(r.Route) })
		b.add(fSegment, kSegment, func() *ast.Term { return a.str(r.Segment) })
		b.add(fAPI, kAPI, func() *ast.Term { return a.str(r.API) })
		b.add(fMethod, kMethod, func() *ast.Term { return a.str(r.Method) })
		b.add(fPath, kPath, func() *ast.Term { return a.str(r.Path) })
		b.add(fModel, kModel, func() *ast.Term { return a.str(r.Model) })
		b.add(fStream, kStream, func() *ast.Term { return ast.InternedTerm(r.Stream) })
		b.add(fTool, kTool, func() *ast.Term { return a.str(r.Tool) })
		if use[fArguments] {
			args, err := argumentsTerm(r.Arguments)
			if err != nil {
				return nil, err
			}
			b.add(fArguments, kArguments, func() *ast.Term { return args })
		}
		top = append(top, ast.Item(kResource, b.term()))
	}
	if use[fContext] {
		b.start()
		b.add(fTime, kTime, func() *ast.Term { return a.time(c.Time, time.UTC) })
		b.add(fUnix, kUnix, func() *ast.Term { return intTerm(c.Unix) })
		b.add(fWeekday, kWeekday, func() *ast.Term { return a.str(c.Weekday) })
		b.add(fHour, kHour, func() *ast.Term { return ast.InternedTerm(c.Hour) })
		b.add(fTimezone, kTimezone, func() *ast.Term { return a.str(c.Timezone) })
		b.add(fLocalTime, kLocalTime, func() *ast.Term { return a.time(c.LocalTime, c.LocalTime.Location()) })
		b.add(fLocalWeekday, kLocalWeekday, func() *ast.Term { return a.str(c.LocalWeekday) })
		b.add(fLocalHour, kLocalHour, func() *ast.Term { return ast.InternedTerm(c.LocalHour) })
		b.add(fSourceIP, kSourceIP, func() *ast.Term { return a.str(c.SourceIP) })
		b.add(fNetworks, kNetworks, func() *ast.Term { return a.strings(c.Networks) })
		b.add(fGeo, kGeo, func() *ast.Term {
			g := c.Geo
			if g == (GeoInput{}) {
				return emptyGeo
			}
			return ast.ObjectTerm(
				ast.Item(kCountry, a.str(g.Country)),
				ast.Item(kCity, a.str(g.City)),
				ast.Item(kASN, intTerm(int64(g.ASN))),
				ast.Item(kOrg, a.str(g.Org)),
			)
		})
		b.add(fPosture, kPosture, func() *ast.Term { return posture })
		b.add(fPostureSource, kPostureSource, func() *ast.Term { return a.str(c.PostureSource) })
		b.add(fRisk, kRisk, func() *ast.Term { return floatTerm(c.Risk) })
		b.add(fDataClasses, kDataClasses, func() *ast.Term { return a.strings(c.DataClasses) })
		b.add(fFindingTypes, kFindingTypes, func() *ast.Term { return a.strings(c.FindingTypes) })
		b.add(fRequestID, kRequestID, func() *ast.Term { return a.str(c.RequestID) })
		b.add(fRequestBytes, kRequestBytes, func() *ast.Term { return intTerm(c.RequestBytes) })
		b.add(fTokens, kTokens, func() *ast.Term {
			if c.Tokens == (TokensInput{}) {
				return zeroTokens
			}
			return ast.ObjectTerm(ast.Item(kPrompt, intTerm(c.Tokens.Prompt)), ast.Item(kMax, intTerm(c.Tokens.Max)))
		})
		top = append(top, ast.Item(kContext, b.term()))
	}
	if use[fGrants] {
		grants := emptyArray
		if len(in.Grants) > 0 {
			terms := make([]*ast.Term, len(in.Grants))
			for i := range in.Grants {
				g := &in.Grants[i]
				terms[i] = ast.ObjectTerm(
					ast.Item(kID, a.str(g.ID)),
					ast.Item(kAction, a.str(g.Action)),
					ast.Item(kSegment, a.str(g.Segment)),
					ast.Item(kResource, a.str(g.Resource)),
					ast.Item(kRequestedBy, a.str(g.RequestedBy)),
					ast.Item(kApprovedBy, a.str(g.ApprovedBy)),
					ast.Item(kExpiresAt, a.time(g.ExpiresAt, time.UTC)),
				)
			}
			grants = ast.ArrayTerm(terms...)
		}
		top = append(top, ast.Item(kGrants, grants))
	}
	if use[fSanctions] {
		top = append(top, ast.Item(kSanctions, a.strings(in.Sanctions)))
	}
	return ast.NewObject(top...), nil
}

// objectBuilder collects the items of one input object, skipping the
// fields not in use without building their values.
// Its items live in a fixed array, which stays on the stack.
type objectBuilder struct {
	use   *fieldSet
	items [maxObjectFields][2]*ast.Term
	n     int
}

// maxObjectFields is the number of keys of the largest input object (context).
const maxObjectFields = 19

func (b *objectBuilder) start() { b.n = 0 }

func (b *objectBuilder) add(f field, key *ast.Term, value func() *ast.Term) {
	if b.use[f] {
		b.items[b.n] = ast.Item(key, value())
		b.n++
	}
}

func (b *objectBuilder) term() *ast.Term { return ast.NewTerm(ast.NewObject(b.items[:b.n]...)) }

// postureTerm converts posture claims; nil and empty are {}.
func postureTerm(p map[string]any) (*ast.Term, error) {
	if len(p) == 0 {
		return ast.InternedEmptyObject, nil
	}
	v, err := ast.InterfaceToValue(p)
	if err != nil {
		return nil, fmt.Errorf("context.posture: %w", err)
	}
	return ast.NewTerm(v), nil
}

// argumentsTerm converts MCP arguments; nil and empty are {}.
func argumentsTerm(args map[string]any) (*ast.Term, error) {
	if len(args) == 0 {
		return ast.InternedEmptyObject, nil
	}
	v, err := ast.InterfaceToValue(args)
	if err != nil {
		return nil, fmt.Errorf("resource.arguments: %w", err)
	}
	return ast.NewTerm(v), nil
}

// intTerm returns a number term, shared for small values.
func intTerm(i int64) *ast.Term {
	if i >= -1 && i <= 512 {
		return ast.InternedTerm(int(i))
	}
	return ast.NumberTerm(json.Number(strconv.FormatInt(i, 10)))
}

// floatTerm returns a number term with the text encoding/json gives f.
func floatTerm(f float64) *ast.Term {
	if f == 0 {
		return ast.InternedTerm(0)
	}
	b, err := json.Marshal(f)
	if err != nil { // NaN or ±Inf: rejected by NewInput and ParseInput before this
		return ast.InternedTerm(0)
	}
	return ast.NumberTerm(json.Number(b))
}

// termAlloc hands out string terms from one slice, saving an allocation per
// term. buf must be allocated with enough capacity for every term; beyond
// it, append allocates anew, which is correct but slower.
type termAlloc struct{ buf []ast.Term }

// str returns a term for s: a shared one for common strings ("" among them).
func (a *termAlloc) str(s string) *ast.Term {
	if t := internedString(s); t != nil {
		return t
	}
	if len(a.buf) == cap(a.buf) {
		return ast.StringTerm(s)
	}
	a.buf = append(a.buf, ast.Term{Value: ast.String(s)})
	return &a.buf[len(a.buf)-1]
}

// strings returns an array term of ss ([] for none).
func (a *termAlloc) strings(ss []string) *ast.Term {
	if len(ss) == 0 {
		return emptyArray
	}
	terms := make([]*ast.Term, len(ss))
	for i, s := range ss {
		terms[i] = a.str(s)
	}
	return ast.ArrayTerm(terms...)
}

// time returns a term for t in loc formatted as RFC 3339 to the second.
func (a *termAlloc) time(t time.Time, loc *time.Location) *ast.Term {
	var b [len(time.RFC3339) + 10]byte
	return a.str(string(t.In(loc).AppendFormat(b[:0], time.RFC3339)))
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
		"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "UTC",
		gateway.KindUser, gateway.KindService, gateway.KindAgent,
		"api_key", "mtls", "jwt", "token", "warden", "control", "header",
		"token.exchange", "mfa.verify", "credential.revoke",
		"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
		"openai", "http",
		"training", "inference", "deployment",
		"chat.completions", "completions", "embeddings", "responses", "models.list", "models.get",
		"http.get", "http.head", "http.post", "http.put", "http.patch", "http.delete", "http.options",
		"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/models",
		"pii", "secret", "injection", "leak",
	} {
		m[s] = ast.StringTerm(s)
	}
	return m
}()
