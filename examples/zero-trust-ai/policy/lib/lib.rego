# Package zt.lib holds the lookups the warden.authz rules share. Every rule
# here is a constant-time lookup into zt.catalog (or into usual_sets, derived
# from it at load) or a comparison; none of them builds strings. Rego
# caches each of them for the request, so the rules that use them pay for
# the lookup once.
package zt.lib

import data.zt.catalog

# record is the caller's entry in the catalog; undefined for an unknown
# principal (which authz.rego denies).
record := catalog.principals[input.principal.id]

# known: the caller is in the catalog with the kind its credential claims.
known if record.kind == input.principal.kind

# user is the catalog entry of the user an agent acts for. Undefined unless
# the caller is an agent, on_behalf_of is set and names a registered user.
user := u if {
	input.principal.kind == "agent"
	u := catalog.principals[input.principal.on_behalf_of]
	u.kind == "user"
}

# profiles[id] is the profile of a principal that has one (training.rego,
# inference.rego): record.profile, looked up without evaluating record.
profiles[id] := p.profile if some id, p in catalog.principals

# users holds the ids of the registered users: for an agent, user is
# defined exactly when users[input.principal.on_behalf_of] is. It reads only
# the catalog, so warden computes it at load (see "tables computed at load"
# below) and the check is one lookup.
users contains id if {
	some id, p in catalog.principals
	p.kind == "user"
}

# --- usual context -------------------------------------------------------------

# usual_context: network, country and local hour are all usual for the
# caller. This is the one check on the common path: one rule, three lookups
# into the caller's row of usual_sets. scrutiny.rego looks at the three
# signals one by one only when it fails.
usual_context if {
	u := usual_sets[input.principal.id]
	u.hours[input.context.local_hour]
	u.countries[input.context.geo.country]
	some n in input.context.networks
	u.networks[n]
}

# usual is where and when the caller normally works.
usual := object.get(record, "usual", catalog.default_usual)

# usual_sets is, per principal in the catalog, its usual context as sets to
# look up: networks; countries, with "" (an address without a location);
# and the local hours (0-23) inside the window. It reads only the catalog,
# never the request, so warden computes it once, when it loads the policy
# (docs/policy.md, "Writing fast policies"), and a request pays for a lookup, not for this.
usual_sets[id] := {
	"networks": object.get(u, "networks", set()),
	"countries": (object.get(u, "countries", set()) | {""}),
	"hours": {h | some h in numbers.range(0, 23); in_window(u, h)},
} if {
	some id, p in catalog.principals
	u := object.get(p, "usual", catalog.default_usual)
}

# in_window: hour h is in the usual window [from, to) of u; a window with
# from > to wraps past midnight (22-6 is 22:00 to 05:59).
in_window(u, h) if {
	u.hours.from <= h
	h < u.hours.to
}

in_window(u, h) if {
	u.hours.from > u.hours.to
	h >= u.hours.from
}

in_window(u, h) if {
	u.hours.from > u.hours.to
	h < u.hours.to
}

# The three signals, for the sentences scrutiny.rego writes.

# on_usual_network: the source address is in one of the caller's usual
# networks (context.networks lists the configured networks containing it).
on_usual_network if {
	some n in input.context.networks
	usual_sets[input.principal.id].networks[n]
}

# in_usual_country: the source address is not located, or is located in one
# of the caller's usual countries. An address without a location (private
# ranges, no geo database) is judged by the network check alone.
in_usual_country if input.context.geo.country == ""

in_usual_country if usual_sets[input.principal.id].countries[input.context.geo.country]

# at_usual_hour: the local hour is in the caller's usual window.
at_usual_hour if usual_sets[input.principal.id].hours[input.context.local_hour]

# --- tables computed at load -----------------------------------------------------
#
# The rules below read only the catalog, never the request, so warden
# evaluates each of them once, when it loads the policy (docs/policy.md,
# "Writing fast policies"): a request pays for one lookup into a table, not
# for the joins that built it. Each table is keyed so that the lookup also
# makes the checks its rule in warden.authz would otherwise make one by one
# (registered, right kind, entitled); a request the table has no entry for
# goes to the general rules, which give the reasons.

# entitlement_grounds[kind][id][segment][action] is the allow reason of a
# user or service entitled to action on segment. The path starts with the
# catalog's kind of the principal, so a lookup with the request's kind is
# also the check that the principal is known.
entitlement_grounds[kind][id][segment][action] := sprintf("entitlement: %s may %s on segment %s", [id, action, segment]) if {
	some id, p in catalog.principals
	kind := p.kind
	kind != "agent"
	some segment, actions in p.entitlements
	some action in actions
}

# delegation_grounds[agent][user][segment][action] is the allow reason of
# an agent acting for a registered user when both are entitled; user "" is
# the agent acting for itself, which it may only for the solo actions.
delegation_grounds[id][user][segment][action] := sprintf("delegation: agent %s acting for %s; both are entitled to %s on segment %s", [id, user, action, segment]) if {
	some id, agent in catalog.principals
	agent.kind == "agent"
	some user, u in catalog.principals
	u.kind == "user"
	some segment, actions in agent.entitlements
	some action in actions
	u.entitlements[segment][action]
}

delegation_grounds[id][""][segment][action] := sprintf("entitlement: agent %s may %s on segment %s for itself", [id, action, segment]) if {
	some id, agent in catalog.principals
	agent.kind == "agent"
	some segment, actions in catalog.agent_solo_actions
	some action in actions
	agent.entitlements[segment][action]
}

# delegated_models[agent][user] and delegated_tools[agent][user] are the
# models and tools an agent may name acting for a registered user (in both
# lists) or, user "", for itself (in its own).
delegated_models[id][user] := agent.models & u.models if {
	some id, agent in catalog.principals
	agent.kind == "agent"
	some user, u in catalog.principals
	u.kind == "user"
}

delegated_models[id][""] := agent.models if {
	some id, agent in catalog.principals
	agent.kind == "agent"
}

delegated_tools[id][user] := agent.tools & u.tools if {
	some id, agent in catalog.principals
	agent.kind == "agent"
	some user, u in catalog.principals
	u.kind == "user"
}

delegated_tools[id][""] := agent.tools if {
	some id, agent in catalog.principals
	agent.kind == "agent"
}

# plain_calls[id][segment][action] holds when the call neither goes to an
# unknown segment nor crosses segments without a flow (segments.rego, "the
# usual call"): the segment is a known one, and it is the principal's home
# (for the actions the principal is entitled to there) or a flow allows the
# action from the home into it. A call not in the table is not denied for
# that: it goes through the segment rules.
plain_calls[id][segment][action] if {
	some id, p in catalog.principals
	some segment, actions in catalog.flows[p.home]
	catalog.segments[segment]
	some action in actions
}

plain_calls[id][segment][action] if {
	some id, p in catalog.principals
	segment := p.home
	catalog.segments[segment]
	some action in p.entitlements[segment]
}

# token_caps[id] is the max_tokens cap of a principal's own (agents.rego).
token_caps[id] := object.get(p, "max_tokens", catalog.default_agent_max_tokens) if some id, p in catalog.principals
