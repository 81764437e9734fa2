# Quickstart authorization policy for warden.
#
# warden evaluates package warden.authz for every request and reads four
# rules: allow (boolean), deny (set of reason strings), reasons (set of
# strings explaining an allow) and obligations (object). It forwards the
# request only if allow is true and deny is empty. See docs/policy.md.
#
# The rule here: a principal may perform action A on a route in segment S
# only if it holds the scope "S:A" or "S:*". Two deny rules apply on top.
package warden.authz

# Deny by default: warden denies when allow is not true, but saying so makes
# the policy read the same in `warden policy eval` output.
default allow := false

allow if count(granting_scopes) > 0

# granting_scopes are the principal's scopes that permit this action on this
# segment: "S:A" for the exact action or "S:*" for every action in S.
granting_scopes contains scope if {
	input.resource.segment != ""
	input.action != ""
	some scope in input.principal.scopes
	scope in {
		sprintf("%s:%s", [input.resource.segment, input.action]),
		sprintf("%s:*", [input.resource.segment]),
	}
}

# reasons explain an allow; warden records them in the audit log.
reasons contains msg if {
	some scope in granting_scopes
	msg := sprintf("scope %s grants %s on segment %s", [scope, input.action, input.resource.segment])
}

# Models no principal may use, whatever its scopes. The set is written in
# the rule, not in a separate rule, so that OPA's rule index skips the rule
# for every other model without evaluating it.
deny contains msg if {
	input.resource.model in {"internal-finetune-raw"}
	msg := sprintf("model %s is blocked by policy", [input.resource.model])
}

# Defence in depth: the identity stage already rejects expired credentials.
# A credential is expired from its expiry time on (as JWT "exp", RFC 7519
# section 4.1.4). Principals whose credential does not expire have no
# expires_at, so this rule does not apply to them. Both times are RFC 3339
# in UTC to the second, so they compare correctly as strings, with no
# parsing on every request.
deny contains msg if {
	expires_at := input.principal.expires_at
	expires_at <= input.context.time
	msg := sprintf("credential %s expired at %s", [input.principal.credential_id, expires_at])
}

# Any proven human user may step up with a TOTP code: the step-up endpoint
# checks the code itself. Other warden endpoints (token exchange, revocation)
# need the scope "control:<action>" like any other action.
allow if {
	input.action == "mfa.verify"
	input.resource.segment == "control"
	input.principal.kind == "user"
}

reasons contains "users may step up with a second factor" if {
	input.action == "mfa.verify"
	input.resource.segment == "control"
	input.principal.kind == "user"
}

# Users holding the role "security-admin" list, impose and lift sanctions
# (quarantine, require_mfa, throttle: docs/respond.md). Anyone else needs
# the scope "control:<action>" like any other action.
sanctions_admin_role := "security-admin"

allow if {
	input.action in {"sanction.list", "sanction.create", "sanction.lift"}
	input.resource.segment == "control"
	input.principal.kind == "user"
	sanctions_admin_role in input.principal.roles
}

reasons contains msg if {
	input.action in {"sanction.list", "sanction.create", "sanction.lift"}
	input.resource.segment == "control"
	input.principal.kind == "user"
	sanctions_admin_role in input.principal.roles
	msg := sprintf("user %s holds the role %s", [input.principal.id, sanctions_admin_role])
}
