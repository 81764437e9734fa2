# Just-in-time grants for the quickstart policy (docs/grants.md).
#
# warden puts the caller's active grants in input.grants:
#
#   [{"id", "action", "segment", "resource", "requested_by", "approved_by", "expires_at"}]
#
# Only grants that were approved by someone else holding the approver role,
# and that have not expired or been revoked, are ever in that list. The
# rules here merge with authz.rego: same package, same rule names.
package warden.authz

# The role that may approve grants. It must equal policy.grants.approver_role
# in warden.yaml (default "grant-approver"); warden checks it again when a
# grant is approved.
grant_approver_role := "grant-approver"

# --- Using grants -----------------------------------------------------------

# granting_grants are the caller's grants that permit this request: same
# segment, the action or "*", the resource (route, model or tool) if the
# grant names one, and not expired at the request's time. No grant ever
# permits the grant endpoints themselves.
granting_grants contains g if {
	not startswith(input.action, "grant.")
	input.resource.segment != ""
	some g in input.grants
	g.segment == input.resource.segment
	g.action in {input.action, "*"}
	grant_resource_matches(g)
	time.parse_rfc3339_ns(input.context.time) < time.parse_rfc3339_ns(g.expires_at)
}

grant_resource_matches(g) if g.resource == ""

grant_resource_matches(g) if g.resource == input.resource.route

grant_resource_matches(g) if g.resource == input.resource.model

grant_resource_matches(g) if g.resource == input.resource.tool

# (Each rule below starts with input.grants[0], which OPA's rule index
# checks before evaluating the rule: without a grant, they cost nothing.)
allow if {
	input.grants[0]
	count(granting_grants) > 0
}

reasons contains msg if {
	input.grants[0]
	some g in granting_grants
	msg := sprintf("grant %s approved by %s allows %s on segment %s until %s", [g.id, g.approved_by, input.action, input.resource.segment, g.expires_at])
}

# --- The grant endpoints (segment "control") --------------------------------

# Any proven principal may ask for a grant, for itself or for another
# principal; the request does nothing until someone else approves it.
allow if {
	input.action == "grant.request"
	input.resource.segment == "control"
}

reasons contains "any proven principal may request a grant" if {
	input.action == "grant.request"
	input.resource.segment == "control"
}

# Any proven principal may list, deny and revoke: warden shows and lets act
# on only the caller's own grants (requested by it or for it) unless the
# caller holds the approver role. Withdrawing a request or giving up a grant
# early only ever removes access.
allow if {
	input.action in {"grant.list", "grant.deny", "grant.revoke"}
	input.resource.segment == "control"
}

reasons contains msg if {
	input.action in {"grant.list", "grant.deny", "grant.revoke"}
	input.resource.segment == "control"
	msg := sprintf("%s: own grants, or any grant for holders of the role %s", [input.action, grant_approver_role])
}

# Only users holding the approver role approve; warden also refuses an
# approval by the grant's requester or grantee. Agents and services never
# approve grants, not even with the role.
allow if {
	input.action == "grant.approve"
	grant_approval_permitted
}

grant_approval_permitted if {
	input.action == "grant.approve"
	input.resource.segment == "control"
	input.principal.kind == "user"
	grant_approver_role in input.principal.roles
}

reasons contains msg if {
	input.action == "grant.approve"
	grant_approval_permitted
	msg := sprintf("user %s holds the role %s", [input.principal.id, grant_approver_role])
}
