package policy

import (
	"encoding/binary"
	"math"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/warden-ai/warden/internal/gateway"
)

// DefaultMemoEntries is the default size of the decision memo.
const DefaultMemoEntries = 4096

// maxMemoKey is the longest key remembered: inputs larger than this (long
// tool arguments, many grants) are evaluated every time, which bounds the
// memo's memory to about DefaultMemoEntries × 4 KiB.
const maxMemoKey = 4 << 10

// decisionMemo remembers the decisions of one engine by the part of the
// input its policy can read, so that a caller who repeats a request (the
// same principal, action, resource, the same second, the same findings...)
// is not evaluated again. This is sound because such a decision is a
// function of exactly that part of the input:
//
//   - the key is every input field the compiled modules can reach
//     (inputUse), encoded without loss: two inputs with the same key give
//     the policy the same input document (TestMemoKeyCoversValue checks
//     this field by field);
//   - the engine's data store is empty and never written, and the memo
//     belongs to one engine: a reload compiles a new engine with a new memo;
//   - a policy that calls a built-in whose result is not a function of its
//     arguments (time.now_ns, http.send, rand.intn, io.jwt.decode_verify,
//     print...) or a function registered by the program gets no memo at
//     all (memoizable);
//   - only decisions made without an error are remembered, and a remembered
//     decision is handed out as a copy, so that nothing done to one
//     exchange's decision reaches another's.
//
// It is bounded: two generations of at most max/2 entries each; when the
// young one is full it becomes the old one and the old one is dropped, so
// the decisions in use stay and the memory is at most max keys and
// decisions. The time is in the key to the second whenever the policy
// reads it, so most entries of a busy gateway are a few seconds old.
type decisionMemo struct {
	engine *Engine
	off    bool // the engine's policy may not be memoized, or the memo is disabled
	half   int

	mu         sync.Mutex
	young, old map[string]gateway.Decision
}

// newDecisionMemo returns a memo of at most max decisions for e; it is
// off if max is not positive or e's policy may not be memoized.
func newDecisionMemo(e *Engine, max int) *decisionMemo {
	if max <= 0 || !memoizable(e.compiler.Modules) {
		return &decisionMemo{engine: e, off: true}
	}
	half := max / 2
	if half < 1 {
		half = 1
	}
	return &decisionMemo{engine: e, half: half, young: make(map[string]gateway.Decision)}
}

// get returns a copy of the decision remembered under key.
func (m *decisionMemo) get(key []byte) (gateway.Decision, bool) {
	m.mu.Lock()
	d, ok := m.young[string(key)]
	if !ok {
		if d, ok = m.old[string(key)]; ok {
			m.putLocked(string(key), d) // still in use: keep it young
		}
	}
	m.mu.Unlock()
	if !ok {
		return gateway.Decision{}, false
	}
	return copyDecision(d), true
}

// put remembers a copy of d under key.
func (m *decisionMemo) put(key []byte, d gateway.Decision) {
	d = copyDecision(d)
	m.mu.Lock()
	m.putLocked(string(key), d)
	m.mu.Unlock()
}

func (m *decisionMemo) putLocked(key string, d gateway.Decision) {
	if len(m.young) >= m.half {
		m.old = m.young
		m.young = make(map[string]gateway.Decision, m.half)
	}
	m.young[key] = d
}

// copyDecision returns d with its own reasons and obligations. Reasons are
// clipped, so that an append to them allocates anew.
func copyDecision(d gateway.Decision) gateway.Decision {
	if d.Reasons != nil {
		d.Reasons = append([]string(nil), d.Reasons...)[:len(d.Reasons):len(d.Reasons)]
	}
	if d.Obligations != nil {
		o := make(map[string]any, len(d.Obligations))
		for k, v := range d.Obligations {
			o[k] = copyJSON(v)
		}
		d.Obligations = o
	}
	return d
}

// copyJSON deep-copies a value of ast.JSON's making: maps, slices and
// immutable scalars.
func copyJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		o := make(map[string]any, len(v))
		for k, x := range v {
			o[k] = copyJSON(x)
		}
		return o
	case []any:
		o := make([]any, len(v))
		for i, x := range v {
			o[i] = copyJSON(x)
		}
		return o
	default:
		return v
	}
}

// memoizable reports whether the decisions of the compiled modules are a
// function of their input alone: every built-in they call is one of OPA's
// own, deterministic by OPA's account, and neither reads the clock nor
// prints (impureBuiltins).
func memoizable(modules map[string]*ast.Module) bool {
	ok := true
	call := func(op *ast.Term) { ok = ok && pureCall(op) } // a policy function's body is walked too
	vis := ast.NewGenericVisitor(func(x any) bool {
		if !ok {
			return true
		}
		switch x := x.(type) {
		case *ast.Expr:
			if x.IsCall() {
				call(x.Terms.([]*ast.Term)[0])
			}
			for _, w := range x.With {
				// `with f as g` replaces a function by another: g is called.
				if r, isRef := w.Value.Value.(ast.Ref); isRef {
					if _, builtin := defaultBuiltins[r.String()]; builtin {
						call(w.Value)
					}
				}
			}
		case ast.Call:
			call(x[0])
		}
		return !ok
	})
	for _, m := range modules {
		vis.Walk(m)
	}
	return ok
}

// memoKey appends to b the key of in: every field in use, in value's
// order, each tagged with its field number, strings and lists with their
// lengths, times as value formats them (seconds and zone offset). It
// reports false when it cannot key in (posture or arguments with no text
// form); the decision is then made without the memo.
func memoKey(b []byte, in *Input, use *fieldSet) ([]byte, bool) {
	p, r, c := &in.Principal, &in.Resource, &in.Context
	str := func(f field, s string) {
		if use[f] {
			b = appendStr(append(b, byte(f)), s)
		}
	}
	strs := func(f field, ss []string) {
		if use[f] {
			b = appendStrs(append(b, byte(f)), ss)
		}
	}
	i64 := func(f field, i int64) {
		if use[f] {
			b = append(b, byte(f))
			b = binary.AppendVarint(b, i)
		}
	}
	boolean := func(f field, v bool) {
		if use[f] {
			b = append(b, byte(f), 0)
			if v {
				b[len(b)-1] = 1
			}
		}
	}
	tm := func(t time.Time, loc *time.Location) {
		t = t.In(loc)
		_, off := t.Zone()
		b = binary.AppendVarint(b, t.Unix())
		b = binary.AppendVarint(b, int64(off))
	}
	stamp := func(f field, t time.Time, loc *time.Location) {
		if use[f] {
			b = append(b, byte(f))
			tm(t, loc)
		}
	}
	term := func(f field, t *ast.Term) bool {
		if !use[f] {
			return true
		}
		b = append(b, byte(f))
		n := len(b)
		b = append(b, 0, 0, 0, 0)
		var err error
		if b, err = t.AppendText(b); err != nil {
			return false
		}
		binary.BigEndian.PutUint32(b[n:], uint32(len(b)-n-4))
		return true
	}

	if use[fPrincipal] {
		b = append(b, byte(fPrincipal))
		str(fKind, p.Kind)
		str(fID, p.ID)
		str(fOnBehalfOf, p.OnBehalfOf)
		str(fAuthMethod, p.AuthMethod)
		str(fCredentialID, p.CredentialID)
		stamp(fAuthTime, p.AuthTime, time.UTC)
		strs(fScopes, p.Scopes)
		str(fIssuer, p.Issuer)
		strs(fGroups, p.Groups)
		strs(fRoles, p.Roles)
		boolean(fMFA, p.MFA)
		str(fWorkload, p.Workload)
		if use[fExpiresAt] {
			// value leaves expires_at out when zero: say which.
			b = append(b, byte(fExpiresAt), 0)
			if !p.ExpiresAt.IsZero() {
				b[len(b)-1] = 1
				tm(p.ExpiresAt, time.UTC)
			}
		}
	}
	if use[fAction] {
		b = appendStr(append(b, byte(fAction)), in.Action)
	}
	if use[fResource] {
		b = append(b, byte(fResource))
		str(fRoute, r.Route)
		str(fSegment, r.Segment)
		str(fAPI, r.API)
		str(fMethod, r.Method)
		str(fPath, r.Path)
		str(fModel, r.Model)
		boolean(fStream, r.Stream)
		str(fTool, r.Tool)
		if use[fArguments] {
			args, err := argumentsTerm(r.Arguments)
			if err != nil || !term(fArguments, args) {
				return b, false
			}
		}
	}
	if use[fContext] {
		b = append(b, byte(fContext))
		stamp(fTime, c.Time, time.UTC)
		i64(fUnix, c.Unix)
		str(fWeekday, c.Weekday)
		i64(fHour, int64(c.Hour))
		str(fTimezone, c.Timezone)
		stamp(fLocalTime, c.LocalTime, c.LocalTime.Location())
		str(fLocalWeekday, c.LocalWeekday)
		i64(fLocalHour, int64(c.LocalHour))
		str(fSourceIP, c.SourceIP)
		strs(fNetworks, c.Networks)
		if use[fGeo] {
			b = append(b, byte(fGeo))
			b = appendStrs(b, []string{c.Geo.Country, c.Geo.City, c.Geo.Org})
			b = binary.AppendUvarint(b, uint64(c.Geo.ASN))
		}
		if use[fPosture] {
			posture := in.posture
			if posture == nil {
				var err error
				if posture, err = postureTerm(c.Posture); err != nil {
					return b, false
				}
			}
			if !term(fPosture, posture) {
				return b, false
			}
		}
		str(fPostureSource, c.PostureSource)
		if use[fRisk] {
			b = append(b, byte(fRisk))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.Risk))
		}
		strs(fDataClasses, c.DataClasses)
		strs(fFindingTypes, c.FindingTypes)
		str(fRequestID, c.RequestID)
		i64(fRequestBytes, c.RequestBytes)
		if use[fTokens] {
			b = append(b, byte(fTokens))
			b = binary.AppendVarint(b, c.Tokens.Prompt)
			b = binary.AppendVarint(b, c.Tokens.Max)
		}
	}
	if use[fGrants] {
		b = append(b, byte(fGrants))
		b = binary.AppendUvarint(b, uint64(len(in.Grants)))
		for i := range in.Grants {
			g := &in.Grants[i]
			b = appendStrs(b, []string{g.ID, g.Action, g.Segment, g.Resource, g.RequestedBy, g.ApprovedBy})
			tm(g.ExpiresAt, time.UTC)
		}
	}
	if use[fSanctions] {
		b = appendStrs(append(b, byte(fSanctions)), in.Sanctions)
	}
	return b, true
}

// appendStr appends s with its length first.
func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// appendStrs appends the number of strings, then each with appendStr.
func appendStrs(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// memoKeys are key buffers, reused.
var memoKeys = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
