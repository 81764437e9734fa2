# Package zt.lib holds the lookups the warden.authz rules share. Every rule
# here is a constant-time lookup into zt.catalog or a comparison; none of
# them builds strings. Rego caches each of them for the request, so the
# rules that use them pay for the lookup once.
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

# --- usual context -------------------------------------------------------------

# usual_context: network, country and local hour are all usual for the
# caller. This is the one check on the common path; scrutiny.rego looks at
# the three signals one by one only when it fails.
usual_context if {
	on_usual_network
	in_usual_country
	at_usual_hour
}

# usual is where and when the caller normally works.
usual := object.get(record, "usual", catalog.default_usual)

# on_usual_network: the source address is in one of the caller's usual
# networks (context.networks lists the configured networks containing it).
on_usual_network if {
	some n in input.context.networks
	usual.networks[n]
}

# in_usual_country: the source address is not located, or is located in one
# of the caller's usual countries. An address without a location (private
# ranges, no geo database) is judged by the network check alone.
in_usual_country if input.context.geo.country == ""

in_usual_country if usual.countries[input.context.geo.country]

# at_usual_hour: the local hour is in the caller's usual window
# [from, to); a window with from > to wraps past midnight (22-6 is 22:00
# to 05:59).
at_usual_hour if {
	w := usual.hours
	w.from <= input.context.local_hour
	input.context.local_hour < w.to
}

at_usual_hour if {
	w := usual.hours
	w.from > w.to
	input.context.local_hour >= w.from
}

at_usual_hour if {
	w := usual.hours
	w.from > w.to
	input.context.local_hour < w.to
}
