# Scenario: access from an unusual network or hour raises scrutiny.
#
# A request is unusual for its principal when it comes from none of the
# principal's usual networks, from a country outside its usual ones, or at a
# local hour outside its usual window (catalog/principals.rego, "usual").
# The behaviour stage's risk score (context.risk, 0..1) adds to that:
#
#                  user                      service, agent (no MFA path)
#   unusual        require MFA               deny
#   risk >= 0.5    require MFA               deny
#   risk >= 0.8    deny                      deny
#
# MFA is an obligation: warden answers 401 mfa_required unless the user's
# credential already carries a verified second factor (principal.mfa), and
# the user steps up at /v1/warden/mfa/verify. That endpoint is itself exempt
# from the step-up, or a user could never reach it.
#
# The common path costs one check, calm (below); the sentences saying
# which signal fired are built only when it fails.
package warden.authz

import data.zt.catalog
import data.zt.lib

# --- signals -----------------------------------------------------------------

# unusual holds one sentence per signal that fired (evaluate it only after
# `not lib.usual_context`).
unusual contains msg if {
	not lib.on_usual_network
	msg := sprintf("source %s (networks [%s]) is on none of %s's usual networks", [input.context.source_ip, concat(", ", input.context.networks), input.principal.id])
}

unusual contains msg if {
	not lib.in_usual_country
	msg := sprintf("source %s is located in %s, outside %s's usual countries", [input.context.source_ip, input.context.geo.country, input.principal.id])
}

unusual contains msg if {
	not lib.usual_sets[input.principal.id].hours[input.context.local_hour] # not lib.at_usual_hour, in one lookup
	msg := sprintf("local hour %d (%s) is outside %s's usual hours %d-%d", [input.context.local_hour, input.context.timezone, input.principal.id, lib.usual.hours.from, lib.usual.hours.to])
}

# scrutiny: a registered caller in an unusual context. (Unknown callers are
# denied by authz.rego and have no usual context to compare with.)
# Registered: lib.record is defined, looked up in the catalog directly.
scrutiny if {
	not lib.usual_context
	catalog.principals[input.principal.id]
}

# --- calm: the usual case ----------------------------------------------------------

# calm: the usual context and a risk score below 0.5. Nothing in this file
# denies, or asks for a step-up, when the request is calm, so every rule
# here is behind a `calm == false` test (calm has a default, so that is
# `not calm`, at less cost): the common path costs that one check (one
# comparison and three lookups). The lookups are lib.usual_context's,
# written out here so that the check is one rule rather than two; calm is
# `input.context.risk < 0.5` and lib.usual_context (scrutiny_test.rego
# checks that the two agree).
default calm := false

calm if {
	input.context.risk < 0.5
	u := lib.usual_sets[input.principal.id]
	u.hours[input.context.local_hour]
	u.countries[input.context.geo.country]
	some n in input.context.networks
	u.networks[n]
}

deny contains msg if {
	calm == false
	some msg in context_denials
}

# --- risk score ------------------------------------------------------------------

# Risk thresholds (0.5: step-up, 0.8: deny) are literals: comparing with a
# literal is one evaluation step, looking up a constant costs more.

# From 0.8: deny everyone.
context_denials contains msg if {
	input.context.risk >= 0.8
	msg := sprintf("risk score %v of %s is at or above 0.8", [input.context.risk, input.principal.id])
}

# From 0.5, services and agents have no MFA path: deny. (Users step up,
# below.)
context_denials contains msg if {
	input.principal.kind == "service"
	input.context.risk >= 0.5
	input.context.risk < 0.8
	msg := sprintf("risk score %v of %s calls for step-up; a service has no MFA path, so the request is denied", [input.context.risk, input.principal.id])
}

context_denials contains msg if {
	input.principal.kind == "agent"
	input.context.risk >= 0.5
	input.context.risk < 0.8
	msg := sprintf("risk score %v of %s calls for step-up; an agent has no MFA path, so the request is denied", [input.context.risk, input.principal.id])
}

# --- services and agents: no MFA path, deny --------------------------------------

context_denials contains msg if {
	input.principal.kind == "service"
	scrutiny
	some u in unusual
	msg := sprintf("%s; a service has no MFA path, so the request is denied", [u])
}

context_denials contains msg if {
	input.principal.kind == "agent"
	scrutiny
	some u in unusual
	msg := sprintf("%s; an agent has no MFA path, so the request is denied", [u])
}

# --- users: step up --------------------------------------------------------------

# step_up: a user must pass MFA, because of an unusual context or a risk
# score from 0.5. The step-up endpoint itself is exempt.
step_up if {
	input.principal.kind == "user"
	scrutiny
	not step_up_endpoint
}

step_up if {
	input.principal.kind == "user"
	input.context.risk >= 0.5
	input.context.risk < 0.8
	not step_up_endpoint
}

step_up_endpoint if {
	input.action == "mfa.verify"
	input.resource.segment == "control"
}

# A step-up obliges the user to pass MFA (obligations.require_mfa, true) and
# has the request audited in full. A calm request stops this rule, and the
# reasons below, at their second test.
obligations[key] := value if {
	input.principal.kind == "user"
	calm == false
	step_up
	some key, value in {"require_mfa": true, "audit_level": "full"}
}

mfa_state := "MFA verified" if input.principal.mfa

else := "MFA required"

reasons contains msg if {
	input.principal.kind == "user"
	calm == false
	step_up
	some msg in step_up_reasons
}

step_up_reasons contains msg if {
	scrutiny
	some u in unusual
	msg := sprintf("step-up: %s; %s", [u, mfa_state])
}

step_up_reasons contains msg if {
	input.context.risk >= 0.5
	msg := sprintf("step-up: risk score %v of %s; %s", [input.context.risk, input.principal.id, mfa_state])
}
