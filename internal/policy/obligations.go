package policy

import (
	"slices"

	"github.com/warden-ai/warden/internal/gateway"
)

// knownObligations are the obligation kinds warden can enforce. Later
// issues add mask (PII), cap (max_tokens) and rate (rate class). An allow
// that carries any other kind is turned into a deny, because an obligation
// nobody enforces is a promise broken silently; a known kind is enforced by
// the enforcer the gateway registered with Stage.Enforce, or denies too.
//
//   - require_mfa: true → the principal must have passed MFA step-up
//     (Principal.MFA), else 401 with a step-up challenge.
var knownObligations = map[string]bool{
	ObligationRequireMFA: true,
}

// ObligationRequireMFA requires a second factor for the request.
const ObligationRequireMFA = "require_mfa"

// ReasonUnsupportedObligation prefixes the reason recorded for an
// obligation warden cannot enforce: "unsupported obligation: <key>".
const ReasonUnsupportedObligation = "unsupported obligation: "

// EnforceObligations fails closed on obligations warden does not enforce:
// if d allows and carries any, d becomes a deny whose reasons name each
// unsupported key (sorted). It reports whether d was changed.
func EnforceObligations(d *gateway.Decision) bool {
	if d == nil || !d.Allow || len(d.Obligations) == 0 {
		return false
	}
	var reasons []string
	for k := range d.Obligations {
		if !knownObligations[k] {
			reasons = append(reasons, ReasonUnsupportedObligation+k)
		}
	}
	if len(reasons) == 0 {
		return false
	}
	slices.Sort(reasons)
	d.Allow = false
	d.Reasons = reasons
	return true
}
