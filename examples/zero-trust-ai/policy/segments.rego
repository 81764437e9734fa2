# Micro-segmentation: every route belongs to a segment, every principal has
# a home segment, and a call from one segment into another is denied unless
# a flow in catalog/segments.rego or an active JIT grant allows it. Inside
# the rules a principal may do what its entitlements list, nothing more.
package warden.authz

import data.zt.catalog
import data.zt.lib

# --- the usual call --------------------------------------------------------------

# Two of the denies below, the unknown segment and the cross-segment call
# that no flow allows, form the set segment_denials. Neither can fire for a
# call in lib.plain_calls (a known segment that is the caller's home, or one
# a flow from the home allows the action into), so such a call, the usual
# one, skips both with one lookup; any other call (an unknown principal, a
# segment or action outside the table) goes through them.
deny contains msg if {
	not lib.plain_calls[input.principal.id][input.resource.segment][input.action]
	some msg in segment_denials
}

# --- segment of the route ----------------------------------------------------

deny contains msg if {
	input.resource.segment == ""
	msg := sprintf("route %q has no segment: every route must belong to one", [input.resource.route])
}

segment_denials contains msg if {
	not catalog.segments[input.resource.segment]
	input.resource.segment != ""
	msg := sprintf("segment %q of route %q is not a known segment", [input.resource.segment, input.resource.route])
}

# --- cross-segment calls -----------------------------------------------------

# A call to a route outside the caller's home segment needs a flow for its
# action (catalog.flows) or an active JIT grant: the grant is the explicit,
# time-bound, approved exception.
segment_denials contains msg if {
	input.resource.segment != lib.record.home
	not catalog.flows[lib.record.home][input.resource.segment][input.action]
	input.resource.segment != ""
	not granted
	msg := sprintf("cross-segment call denied: %s (segment %s) may not %s on segment %s", [input.principal.id, lib.record.home, input.action, input.resource.segment])
}

# --- entitlements ------------------------------------------------------------

# A user or service is entitled when its catalog entry lists the action for
# the route's segment. (Agents: agents.rego.) lib.entitlement_grounds holds
# the reason for every such entry, keyed by kind, principal, segment and
# action: one lookup checks that the principal is known and entitled.
grounds contains msg if {
	input.principal.kind in {"user", "service"}
	msg := lib.entitlement_grounds[input.principal.kind][input.principal.id][input.resource.segment][input.action]
}

# --- self-service on warden's endpoints ----------------------------------------

# Any registered user may step up with a second factor (the endpoint checks
# the TOTP code itself) and may ask for a JIT grant (someone else approves).
grounds contains msg if {
	input.resource.segment == "control"
	input.principal.kind == "user"
	catalog.user_self_service[input.action]
	lib.known
	msg := sprintf("self-service: users may call %s on warden's control segment", [input.action])
}

# Only users holding the approver role approve grants; services and agents
# never do, not even with the role.
grounds contains msg if {
	input.action == "grant.approve"
	input.resource.segment == "control"
	input.principal.kind == "user"
	catalog.grant_approver_role in input.principal.roles
	lib.known
	msg := sprintf("user %s holds the role %s and may approve grants", [input.principal.id, catalog.grant_approver_role])
}

# Only users holding the security admin role list, impose and lift
# sanctions (docs/respond.md); services and agents never do.
grounds contains msg if {
	input.resource.segment == "control"
	input.action in catalog.sanction_actions
	input.principal.kind == "user"
	catalog.sanctions_admin_role in input.principal.roles
	lib.known
	msg := sprintf("user %s holds the role %s and may %s", [input.principal.id, catalog.sanctions_admin_role, input.action])
}
