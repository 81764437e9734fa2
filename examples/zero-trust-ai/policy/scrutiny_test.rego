# Tests for scrutiny.rego: unusual network, country or hour, and risk.
package zt.test.scrutiny

import data.warden.authz
import data.zt.test.fixtures as f

alice_chat := f.as_user(f.alice, "chat.completions", f.chat("gpt-4o"))

step_up_obligations := {"require_mfa": true, "audit_level": "full"}

# --- users: unusual means MFA ----------------------------------------------------------

test_usual_context_no_step_up if {
	f.obligations_of(alice_chat) == {}
	f.obligations_of(f.with_context(alice_chat, {"networks": ["office", "corp-vpn"], "geo": {"country": "NL"}})) == {}
}

test_unusual_network_requires_mfa if {
	inp := f.with_context(alice_chat, {"source_ip": "203.0.113.9", "networks": []})
	f.allowed(inp) # allowed subject to the obligation, which warden enforces
	f.obligations_of(inp) == step_up_obligations
	"step-up: source 203.0.113.9 (networks []) is on none of alice@example.org's usual networks; MFA required" in f.reasons_of(inp)
}

test_other_configured_network_is_unusual if {
	inp := f.with_context(alice_chat, {"networks": ["guest-wifi"]})
	f.obligations_of(inp).require_mfa
}

test_unusual_network_with_mfa_done if {
	inp := object.union(f.with_context(alice_chat, {"networks": ["guest-wifi"]}), {"principal": {"mfa": true}})
	f.obligations_of(inp) == step_up_obligations
	"step-up: source 10.1.2.3 (networks [guest-wifi]) is on none of alice@example.org's usual networks; MFA verified" in f.reasons_of(inp)
}

test_unusual_country_requires_mfa if {
	inp := f.with_context(alice_chat, {"source_ip": "198.51.100.4", "geo": {"country": "US", "city": "Ashburn"}})
	f.obligations_of(inp) == step_up_obligations
	"step-up: source 198.51.100.4 is located in US, outside alice@example.org's usual countries; MFA required" in f.reasons_of(inp)
}

test_unknown_country_judged_by_network if {
	f.obligations_of(f.with_context(alice_chat, {"geo": {"country": ""}})) == {}
}

test_unusual_hour_requires_mfa if {
	inp := f.with_context(alice_chat, {"local_hour": 22, "local_time": "2025-06-02T22:00:00+02:00", "hour": 20})
	f.obligations_of(inp) == step_up_obligations
	"step-up: local hour 22 (Europe/Berlin) is outside alice@example.org's usual hours 7-20; MFA required" in f.reasons_of(inp)
}

# The usual window is [from, to): 07:00 is usual, 20:00 is not.
test_hour_window_edges if {
	f.obligations_of(f.with_context(alice_chat, {"local_hour": 7})) == {}
	f.obligations_of(f.with_context(alice_chat, {"local_hour": 19})) == {}
	f.obligations_of(f.with_context(alice_chat, {"local_hour": 6})).require_mfa
	f.obligations_of(f.with_context(alice_chat, {"local_hour": 20})).require_mfa
}

# The local hour counts, not the UTC hour.
test_local_hour_not_utc_hour if {
	f.obligations_of(f.with_context(alice_chat, {"hour": 3, "local_hour": 9})) == {}
}

# bob has no "usual" entry: default_usual (office networks, EU, 7-20).
test_default_usual_applies if {
	bob_chat := f.as_user(f.bob, "chat.completions", f.chat("gpt-4o-mini"))
	f.obligations_of(f.with_context(bob_chat, {"networks": ["office"], "geo": {"country": "AT"}})) == {}
	f.obligations_of(f.with_context(bob_chat, {"networks": ["guest-wifi"]})).require_mfa
}

test_several_signals_give_several_reasons if {
	inp := f.with_context(alice_chat, {"networks": [], "geo": {"country": "US"}, "local_hour": 3})
	count({r | some r in f.reasons_of(inp); startswith(r, "step-up: ")}) == 3
	f.obligations_of(inp) == step_up_obligations
}

# The step-up endpoint itself must stay reachable from anywhere.
test_step_up_endpoint_exempt if {
	inp := f.with_context(f.as_user(f.alice, "mfa.verify", f.mfa_verify), {"networks": [], "local_hour": 23})
	f.allowed(inp)
	f.obligations_of(inp) == {}
	f.allowed(f.with_context(f.as_user(f.alice, "mfa.verify", f.mfa_verify), {"risk": 0.6}))
}

# --- risk --------------------------------------------------------------------------------

test_low_risk_no_step_up if {
	f.obligations_of(f.with_context(alice_chat, {"risk": 0.49})) == {}
}

test_medium_risk_requires_mfa_for_users if {
	inp := f.with_context(alice_chat, {"risk": 0.5})
	f.allowed(inp)
	f.obligations_of(inp) == step_up_obligations
	"step-up: risk score 0.5 of alice@example.org; MFA required" in f.reasons_of(inp)
	f.obligations_of(f.with_context(alice_chat, {"risk": 0.79})).require_mfa
}

test_high_risk_denied_for_users if {
	inp := f.with_context(alice_chat, {"risk": 0.8})
	f.deny_of(inp) == {"risk score 0.8 of alice@example.org is at or above 0.8"}
	f.denied(object.union(f.with_context(alice_chat, {"risk": 0.95}), {"principal": {"mfa": true}}))
}

test_high_risk_denies_step_up_too if {
	f.denied(f.with_context(f.as_user(f.alice, "mfa.verify", f.mfa_verify), {"risk": 0.9}))
}

test_medium_risk_denied_for_services if {
	inp := f.with_context(f.as_trainer("http.post", f.training_post), {"risk": 0.6})
	f.deny_of(inp) == {"risk score 0.6 of spiffe://ml.example.org/training/trainer calls for step-up; a service has no MFA path, so the request is denied"}
}

test_risk_edges_for_services if {
	post := f.as_trainer("http.post", f.training_post)
	f.allowed(f.with_context(post, {"risk": 0.49}))
	f.denied_because(
		f.with_context(post, {"risk": 0.5}),
		"risk score 0.5 of spiffe://ml.example.org/training/trainer calls for step-up; a service has no MFA path, so the request is denied",
	)
	f.deny_of(f.with_context(post, {"risk": 0.8})) == {"risk score 0.8 of spiffe://ml.example.org/training/trainer is at or above 0.8"}
}

test_medium_risk_denied_for_agents if {
	f.denied(f.with_context(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o")), {"risk": 0.5}))
}

# --- services and agents: unusual means deny ------------------------------------------------

test_service_from_unusual_network_denied if {
	inp := f.with_context(f.as_trainer("http.post", f.training_post), {"source_ip": "10.9.9.9", "networks": ["corp-vpn"]})
	f.deny_of(inp) == {"source 10.9.9.9 (networks [corp-vpn]) is on none of spiffe://ml.example.org/training/trainer's usual networks; a service has no MFA path, so the request is denied"}
	not authz.obligations.require_mfa with input as inp
}

test_service_from_no_network_denied if {
	f.denied(f.with_context(f.as_inference("chat.completions", f.chat("gpt-4o")), {"networks": []}))
}

test_service_from_unusual_country_denied if {
	f.denied(f.with_context(f.as_inference("chat.completions", f.chat("gpt-4o")), {"geo": {"country": "CN"}}))
	f.allowed(f.with_context(f.as_inference("chat.completions", f.chat("gpt-4o")), {"geo": {"country": "NL"}}))
}

# The deployer works 06:00-22:00 local time (night change freeze).
test_service_outside_its_hours_denied if {
	deploy := f.as_deployer("http.put", f.deployment_put)
	f.allowed(f.with_context(deploy, {"local_hour": 6}))
	f.allowed(f.with_context(deploy, {"local_hour": 21}))
	f.denied_because(
		f.with_context(deploy, {"local_hour": 23}),
		"local hour 23 (Europe/Berlin) is outside spiffe://ml.example.org/deployment/deployer's usual hours 6-22; a service has no MFA path, so the request is denied",
	)
}

# Services around the clock: any hour is usual.
test_service_any_hour if {
	f.allowed(f.with_context(f.as_trainer("http.post", f.training_post), {"local_hour": 0}))
	f.allowed(f.with_context(f.as_trainer("http.post", f.training_post), {"local_hour": 23}))
}

test_agent_from_unusual_network_denied if {
	inp := f.with_context(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o")), {"networks": ["office"]})
	f.denied_because(inp, "source 10.1.2.3 (networks [office]) is on none of spiffe://ml.example.org/agent/planner's usual networks; an agent has no MFA path, so the request is denied")
}

# An agent is judged by its own usual context, not its user's.
test_agent_judged_by_own_context if {
	f.allowed(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o")))
}

# --- calm is the usual context and a low risk ---------------------------------------

# scrutiny.rego writes lib.usual_context's lookups out in calm; the two must
# agree on every signal, for every kind of caller.
calm_agrees(inp) if is_calm(inp) == expected_calm(inp)

expected_calm(inp) if {
	data.zt.lib.usual_context with input as inp
	inp.context.risk < 0.5
}

else := false

is_calm(inp) if authz.calm with input as inp

else := false

test_calm_is_usual_context_and_low_risk if {
	agent := f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o"))
	every inp in [
		alice_chat,
		agent,
		f.with_context(alice_chat, {"networks": ["guest-wifi"]}),
		f.with_context(alice_chat, {"networks": []}),
		f.with_context(alice_chat, {"networks": ["guest-wifi", "office"]}),
		f.with_context(alice_chat, {"geo": {"country": "US"}}),
		f.with_context(alice_chat, {"geo": {"country": ""}}),
		f.with_context(alice_chat, {"local_hour": 3}),
		f.with_context(alice_chat, {"local_hour": 20}),
		f.with_context(alice_chat, {"risk": 0.5}),
		f.with_context(alice_chat, {"risk": 0.49}),
		f.with_context(agent, {"networks": ["office"]}),
		object.union(alice_chat, {"principal": {"id": "mallory@example.org"}}),
	] {
		calm_agrees(inp)
	}
}
