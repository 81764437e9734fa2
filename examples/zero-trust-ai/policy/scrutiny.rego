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
# The common path costs one check, lib.usual_context; the sentences saying
# which signal fired are built only when it fails.
package warden.authz

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
	not lib.at_usual_hour
	msg := sprintf("local hour %d (%s) is outside %s's usual hours %d-%d", [input.context.local_hour, input.context.timezone, input.principal.id, lib.usual.hours.from, lib.usual.hours.to])
}

# scrutiny: a registered caller in an unusual context. (Unknown callers are
# denied by authz.rego and have no usual context to compare with.)
scrutiny if {
	not lib.usual_context
	lib.record
}

# --- risk score ------------------------------------------------------------------

# Risk thresholds (0.5: step-up, 0.8: deny) are literals: comparing with a
# literal is one evaluation step, looking up a constant costs more. Below
# 0.5, the usual case, this one comparison is all the risk score costs:
# risk_denials is evaluated only from 0.5.
deny contains msg if {
	input.context.risk >= 0.5
	some msg in risk_denials
}

# From 0.8: deny everyone.
risk_denials contains msg if {
	input.context.risk >= 0.8
	msg := sprintf("risk score %v of %s is at or above 0.8", [input.context.risk, input.principal.id])
}

# From 0.5, services and agents have no MFA path: deny. (Users step up,
# below.)
risk_denials contains msg if {
	input.principal.kind == "service"
	input.context.risk < 0.8
	msg := sprintf("risk score %v of %s calls for step-up; a service has no MFA path, so the request is denied", [input.context.risk, input.principal.id])
}

risk_denials contains msg if {
	input.principal.kind == "agent"
	input.context.risk < 0.8
	msg := sprintf("risk score %v of %s calls for step-up; an agent has no MFA path, so the request is denied", [input.context.risk, input.principal.id])
}

# --- services and agents: no MFA path, deny --------------------------------------

deny contains msg if {
	input.principal.kind == "service"
	scrutiny
	some u in unusual
	msg := sprintf("%s; a service has no MFA path, so the request is denied", [u])
}

deny contains msg if {
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

# obligations.require_mfa is true (a rule without a value is true).
obligations["require_mfa"] if {
	input.principal.kind == "user"
	step_up
}

mfa_state := "MFA verified" if input.principal.mfa

else := "MFA required"

reasons contains msg if {
	input.principal.kind == "user"
	step_up
	scrutiny
	some u in unusual
	msg := sprintf("step-up: %s; %s", [u, mfa_state])
}

reasons contains msg if {
	input.principal.kind == "user"
	step_up
	input.context.risk >= 0.5
	msg := sprintf("step-up: risk score %v of %s; %s", [input.context.risk, input.principal.id, mfa_state])
}
