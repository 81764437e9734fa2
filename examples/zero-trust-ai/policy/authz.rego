# Zero-trust micro-segmentation for AI systems: the entry point.
#
# warden evaluates package warden.authz for every request and reads allow,
# deny, reasons and obligations (docs/policy.md). It forwards a request only
# if allow is true and deny is empty, so:
#
#   - allow is true when there is a ground for it: one sentence in the set
#     `grounds` naming the rule that grants, which is also the allow's reason:
#       an entitlement in the catalog             (segments.rego, agents.rego)
#       an active, approved just-in-time grant    (grants.rego)
#       a user's self-service call to warden      (segments.rego)
#   - every other file only adds deny reasons or obligations:
#       segments.rego     routes need a known segment; cross-segment calls
#                         are denied unless a flow or a grant allows them
#       training.rego     the training-data writer writes training data only
#       inference.rego    inference workloads never reach training/deployment
#       agents.rego       agents act for a user, with the user's models and
#                         tools (never more than their own), capped tokens
#       scrutiny.rego     unusual network, country or hour; risk score
#       data_classes.rego secrets denied, PII masked
#
# Data lives in catalog/ (package zt.catalog), shared lookups in lib/
# (package zt.lib).
#
# Speed: the decision budget is tens of microseconds, and each expression
# Rego evaluates costs about one. So rules that apply only to one kind of
# caller, action or segment start with `input.<field> == "<constant>"`: OPA's
# rule index skips them without evaluating anything when that does not hold.
# Allow reasons are looked up in tables derived from the catalog at load
# (lib/lib.rego, "tables computed at load"); groups of rare denies sit
# behind one cheap test (`allow == false` below, `calm == false` in
# scrutiny.rego: both rules have a default, so the comparison is the
# negation, and costs less than `not`).
# Rules on the common path start with their cheapest test, and strings are
# built (sprintf) only in rules that fire.
package warden.authz

import data.zt.lib

# Deny by default.
default allow := false

allow if grounds[_]

# The grounds of an allow are its reasons; scrutiny.rego and
# data_classes.rego add notes on the obligations they set (step-up,
# masking). The max_tokens cap is in the obligations alone.
reasons contains msg if some msg in grounds

# --- identity ----------------------------------------------------------------

# Zero trust: a proven credential is not enough, the principal must also be
# registered in the catalog (and so have a home segment).
# The credential's kind must also be the catalog's: a service key presented
# as an agent (or the reverse) is a misissued credential.
#
# Every ground requires a registered principal, so an unknown one is never
# allowed: its deny sits with the catch-all below, behind `allow == false`, which
# an allowed request passes in one step.
refusal := unknown_principal if not lib.known

unknown_principal := sprintf("principal %s is registered as a %s but authenticated as a %s", [input.principal.id, lib.record.kind, input.principal.kind]) if {
	lib.record
} else := sprintf("principal %s (%s) is not registered in any segment", [input.principal.id, input.principal.kind])

# Defence in depth: the identity stage already refuses expired credentials.
# Expired from the expiry instant on (JWT "exp", RFC 7519 section 4.1.4).
# Both times are RFC 3339 UTC to the second, so they compare as strings.
deny contains msg if {
	input.principal.expires_at <= input.context.time
	msg := sprintf("credential %s expired at %s", [input.principal.credential_id, input.principal.expires_at])
}

# --- every deny has a reason ---------------------------------------------------

# A principal that no rule allowed gets a reason saying why, rather than
# warden's generic default-deny text: refusal is unknown_principal (above)
# for one not registered, not_allowed for a registered one. (Routes without
# a segment already have theirs.)
deny contains msg if {
	allow == false # not allow (allow is true or, by default, false)
	msg := refusal
}

refusal := not_allowed if {
	input.resource.segment != ""
	lib.known
}

not_allowed := sprintf("agent %s acting for %q: no entitlement of both the agent and the user, and no active grant, covers %s on segment %s", [input.principal.id, input.principal.on_behalf_of, input.action, input.resource.segment]) if {
	input.principal.kind == "agent"
} else := sprintf("%s has no entitlement or active grant for %s on segment %s", [input.principal.id, input.action, input.resource.segment])

# --- obligations -------------------------------------------------------------

# Requests let through by a JIT grant or under step-up are audited in full
# (step-up: scrutiny.rego, with obligations.require_mfa; max_tokens:
# agents.rego; mask: data_classes.rego).
obligations["audit_level"] := "full" if {
	input.grants[0]
	granted
}
