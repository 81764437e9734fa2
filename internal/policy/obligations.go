package policy

import (
	"slices"

	"github.com/warden-ai/warden/internal/gateway"
)

// knownObligations are the obligation kinds warden enforces. It is empty for
// now: later issues add mask (PII), cap (max_tokens), mfa (step-up) and rate
// (rate class). Until a kind is listed here, an allow that carries it is
// turned into a deny, because an obligation nobody enforces is a promise
// broken silently.
var knownObligations = map[string]bool{}

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
