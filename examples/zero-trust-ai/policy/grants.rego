# Just-in-time grants: a time-bound permission one principal requested and a
# different principal approved (input.grants, the caller's grants as the
# grant stage found them). An active grant that matches the request allows
# it, and also lifts the cross-segment deny (segments.rego): it is the
# explicit, approved, expiring exception to segmentation. It does not lift
# any other deny: the training and inference boundaries, agent delegation
# limits, scrutiny, risk, secrets and the identity checks all still apply.
#
# A grant matches when, checked here again as defence in depth:
#   - it is not for a grant endpoint (no grant ever permits grant.*);
#   - its segment is the route's segment;
#   - its action is the request's action, or "*";
#   - its resource is "", the route, the model or the tool of the request;
#   - it has started (not_before, if present) and has not expired
#     (expires_at; expired from that instant on);
#   - it was approved, and not by the requester or the caller itself;
#   - it is the caller's (principal, if present, is the caller's id).
package warden.authz

import data.zt.lib

active_grants contains g if {
	not startswith(input.action, "grant.")
	some g in input.grants
	g.segment == input.resource.segment
	grant_actions(g.action)
	grant_resources(g.resource)
	input.context.time < g.expires_at
	object.get(g, "not_before", "") <= input.context.time
	g.approved_by != ""
	g.approved_by != g.requested_by
	g.approved_by != input.principal.id
	object.get(g, "principal", input.principal.id) == input.principal.id
}

grant_actions("*")

grant_actions(a) if a == input.action

grant_resources("")

grant_resources(r) if r == input.resource.route

grant_resources(r) if r == input.resource.model

grant_resources(r) if r == input.resource.tool

granted if {
	input.grants[0]
	count(active_grants) > 0
}

# A grant allows only a registered principal (authz.rego denies the others
# anyway; this keeps the allow itself honest).
grounds contains msg if {
	input.grants[0]
	some g in active_grants
	lib.known
	msg := sprintf("JIT grant %s (requested by %s, approved by %s, until %s) allows %s on segment %s", [g.id, g.requested_by, g.approved_by, g.expires_at, input.action, input.resource.segment])
}
