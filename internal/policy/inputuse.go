package policy

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// field is one field of the input document: a top-level section, or a key
// of the principal, resource or context object.
type field uint8

// The fields of the input document.
const (
	fPrincipal field = iota
	fAction
	fResource
	fContext
	fGrants
	fSanctions

	fKind // principal
	fID
	fOnBehalfOf
	fAuthMethod
	fCredentialID
	fAuthTime
	fExpiresAt
	fScopes
	fIssuer
	fGroups
	fRoles
	fMFA
	fWorkload

	fRoute // resource
	fSegment
	fAPI
	fMethod
	fPath
	fModel
	fStream
	fTool
	fArguments

	fTime // context
	fUnix
	fWeekday
	fHour
	fTimezone
	fLocalTime
	fLocalWeekday
	fLocalHour
	fSourceIP
	fNetworks
	fGeo
	fPosture
	fPostureSource
	fRisk
	fDataClasses
	fFindingTypes
	fRequestID
	fRequestBytes
	fTokens

	numFields
)

// fieldSet marks fields in use.
type fieldSet [numFields]bool

// allFields is every field: the whole input document.
var allFields = func() (s fieldSet) {
	for i := range s {
		s[i] = true
	}
	return s
}()

// inputSections are the top-level keys of the input document; the keys of
// those that are objects name their fields.
var inputSections = map[string]struct {
	f    field
	keys map[string]field // nil: not an object (action, grants)
}{
	"principal": {fPrincipal, map[string]field{
		"kind": fKind, "id": fID, "on_behalf_of": fOnBehalfOf, "auth_method": fAuthMethod,
		"credential_id": fCredentialID, "auth_time": fAuthTime, "expires_at": fExpiresAt, "scopes": fScopes,
		"issuer": fIssuer, "groups": fGroups, "roles": fRoles, "mfa": fMFA, "workload": fWorkload,
	}},
	"action": {fAction, nil},
	"resource": {fResource, map[string]field{
		"route": fRoute, "segment": fSegment, "api": fAPI, "method": fMethod, "path": fPath,
		"model": fModel, "stream": fStream, "tool": fTool, "arguments": fArguments,
	}},
	"context": {fContext, map[string]field{
		"time": fTime, "unix": fUnix, "weekday": fWeekday, "hour": fHour, "timezone": fTimezone,
		"local_time": fLocalTime, "local_weekday": fLocalWeekday, "local_hour": fLocalHour,
		"source_ip": fSourceIP, "networks": fNetworks, "geo": fGeo, "posture": fPosture,
		"posture_source": fPostureSource, "risk": fRisk, "data_classes": fDataClasses,
		"finding_types": fFindingTypes, "request_id": fRequestID, "request_bytes": fRequestBytes,
		"tokens": fTokens,
	}},
	"grants":    {fGrants, nil},
	"sanctions": {fSanctions, nil},
}

// inputUse returns the fields of the input document that the compiled
// modules can reach. The engine builds only those for each decision: a
// field no module refers to cannot affect the evaluation, so leaving it out
// changes nothing but the cost.
//
// It reads every reference to input in the compiled modules (imports
// resolved, local aliases rewritten into references):
//
//   - input.S.K (S principal, resource or context; K a string): field K of S;
//   - input.S with nothing after it, or a non-constant key after it
//     (input.context[k]), or S action or grants: all of S;
//   - input alone, input[x], or anything else: the whole document.
//
// Everything the policy can do with input goes through such references:
// passing input.context to a function or object.get refers to all of it.
func inputUse(modules map[string]*ast.Module) fieldSet {
	var use fieldSet
	whole := func() { use = allFields }
	section := func(f field, keys map[string]field) {
		use[f] = true
		for _, k := range keys {
			use[k] = true
		}
	}
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case ast.Ref:
			if len(x) > 0 && x[0].Equal(ast.InputRootDocument) {
				ref(x, &use, whole, section)
			}
			for _, t := range x[1:] { // references inside references: input.a[input.b]
				vis.Walk(t)
			}
			return true // the head was handled: do not see it as a bare variable
		case ast.Var:
			if x.Equal(ast.InputRootDocument.Value) {
				whole()
			}
		}
		return false
	})
	for _, m := range modules {
		vis.Walk(m)
	}
	return use
}

// ref marks what one reference to input reaches.
func ref(r ast.Ref, use *fieldSet, whole func(), section func(field, map[string]field)) {
	if len(r) < 2 {
		whole()
		return
	}
	name, ok := r[1].Value.(ast.String)
	if !ok {
		whole()
		return
	}
	sec, ok := inputSections[string(name)]
	if !ok {
		return // no such part of the input: always undefined, with or without the rest
	}
	if len(r) < 3 || sec.keys == nil {
		section(sec.f, sec.keys)
		return
	}
	key, ok := r[2].Value.(ast.String)
	if !ok {
		section(sec.f, sec.keys)
		return
	}
	use[sec.f] = true
	if f, ok := sec.keys[string(key)]; ok {
		use[f] = true
	}
}
