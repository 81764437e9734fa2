# Tests for the helpers in lib.rego.
package zt.test.lib

import data.zt.lib

# at(id, hour) is true when hour (local) is usual for catalog principal id.
at(id, hour) if lib.at_usual_hour with input as {"principal": {"id": id}, "context": {"local_hour": hour}}

test_window_day if {
	# alice: 7-20
	at("alice@example.org", 7)
	at("alice@example.org", 19)
	not at("alice@example.org", 6)
	not at("alice@example.org", 20)
}

test_window_all_day if {
	at("spiffe://ml.example.org/training/trainer", 0)
	at("spiffe://ml.example.org/training/trainer", 23)
}

test_window_wraps_past_midnight if {
	night := {"spiffe://ml.example.org/svc/night-batch": {"kind": "service", "usual": {"hours": {"from": 22, "to": 6}}}}
	ok := {h | some h in numbers.range(0, 23); at("spiffe://ml.example.org/svc/night-batch", h)} with data.zt.catalog.principals as night
	ok == {22, 23, 0, 1, 2, 3, 4, 5}
}

test_empty_window if {
	never := {"p": {"kind": "service", "usual": {"hours": {"from": 9, "to": 9}}}}
	not at("p", 9) with data.zt.catalog.principals as never
	not at("p", 10) with data.zt.catalog.principals as never
}

test_default_usual_for_principal_without_one if {
	lib.usual == data.zt.catalog.default_usual with input as {"principal": {"id": "bob@example.org"}}
}

test_user_only_for_agents if {
	lib.user.kind == "user" with input as {"principal": {"kind": "agent", "on_behalf_of": "alice@example.org"}}
	not lib.user with input as {"principal": {"kind": "user", "on_behalf_of": "alice@example.org"}}
	not lib.user with input as {"principal": {"kind": "agent", "on_behalf_of": ""}}
	not lib.user with input as {"principal": {"kind": "agent", "on_behalf_of": "spiffe://ml.example.org/agent/triage"}}
}
