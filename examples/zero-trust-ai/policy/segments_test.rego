# Tests for segments.rego: segments, cross-segment flows, entitlements and
# the users' self-service endpoints.
package zt.test.segments

import data.zt.test.fixtures as f

# --- the route's segment -----------------------------------------------------------

test_route_without_segment_denied if {
	inp := f.as_user(f.alice, "chat.completions", object.union(f.chat("gpt-4o"), {"route": "legacy", "segment": ""}))
	f.deny_of(inp) == {"route \"legacy\" has no segment: every route must belong to one"}
	f.denied(inp)
}

test_route_without_segment_denied_for_services_too if {
	inp := f.as_trainer("http.post", object.union(f.training_post, {"route": "legacy", "segment": ""}))
	f.denied_because(inp, "route \"legacy\" has no segment: every route must belong to one")
}

test_unknown_segment_denied if {
	inp := f.as_user(f.alice, "http.get", {"route": "analytics", "segment": "analytics", "api": "http"})
	f.denied_because(inp, "segment \"analytics\" of route \"analytics\" is not a known segment")
}

# --- cross-segment flows -------------------------------------------------------------

test_deployer_manages_deployment_config if {
	f.allowed(f.as_deployer("http.get", f.deployment_get))
	f.allowed(f.as_deployer("http.put", f.deployment_put))
}

# Exception deployment -> inference: read the served models after a rollout.
test_deployer_may_check_served_models if {
	f.allowed(f.as_deployer("models.list", f.models_list))
	inp := f.as_deployer("models.get", f.models_get("gpt-4o"))
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: spiffe://ml.example.org/deployment/deployer may models.get on segment inference"}
}

test_deployer_may_not_use_models if {
	f.denied_because(
		f.as_deployer("chat.completions", f.chat("gpt-4o")),
		"cross-segment call denied: spiffe://ml.example.org/deployment/deployer (segment deployment) may not chat.completions on segment inference",
	)
}

test_deployer_may_not_touch_training if {
	f.denied_because(
		f.as_deployer("http.get", f.training_get),
		"cross-segment call denied: spiffe://ml.example.org/deployment/deployer (segment deployment) may not http.get on segment training",
	)
}

# A flow is necessary, not sufficient: the entitlement is checked too.
test_flow_without_entitlement_denied if {
	inp := f.as_user(f.bob, "http.get", f.training_get)
	f.deny_of(inp) == {"bob@example.org has no entitlement or active grant for http.get on segment training"}
}

# An entitlement is not sufficient either: a missing flow denies.
test_entitlement_without_flow_denied if {
	inp := f.as_user(f.alice, "http.post", f.training_post)
	f.denied_because(inp, "cross-segment call denied: alice@example.org (segment workspace) may not http.post on segment training")
}

test_user_reads_training_data if {
	inp := f.as_user(f.alice, "http.get", f.training_get)
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: alice@example.org may http.get on segment training"}
}

test_user_reads_but_may_not_change_deployment_config if {
	f.allowed(f.as_user(f.alice, "http.get", f.deployment_get))
	f.denied_because(
		f.as_user(f.alice, "http.put", f.deployment_put),
		"cross-segment call denied: alice@example.org (segment workspace) may not http.put on segment deployment",
	)
}

test_user_chat_allowed if {
	inp := f.as_user(f.alice, "chat.completions", f.chat("gpt-4o"))
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: alice@example.org may chat.completions on segment inference"}
	f.obligations_of(inp) == {}
}

test_user_not_entitled_to_action_denied if {
	f.denied_because(
		f.as_user(f.bob, "embeddings", f.embeddings("gpt-4o-mini")),
		"bob@example.org has no entitlement or active grant for embeddings on segment inference",
	)
}

# --- self-service ------------------------------------------------------------------

test_user_may_step_up if {
	inp := f.as_user(f.bob, "mfa.verify", f.mfa_verify)
	f.allowed(inp)
	f.reasons_of(inp) == {"self-service: users may call mfa.verify on warden's control segment"}
}

test_user_may_request_a_grant if {
	f.allowed(f.as_user(f.bob, "grant.request", object.union(f.mfa_verify, {"path": "/v1/warden/grants"})))
}

test_user_may_manage_own_grants if {
	grants := object.union(f.mfa_verify, {"path": "/v1/warden/grants", "method": "GET"})
	f.allowed(f.as_user(f.bob, "grant.list", grants))
	f.allowed(f.as_user(f.bob, "grant.deny", object.union(grants, {"path": "/v1/warden/grants/g-1/deny"})))
	f.allowed(f.as_user(f.bob, "grant.revoke", object.union(grants, {"path": "/v1/warden/grants/g-1/revoke"})))
}

test_only_approvers_approve_grants if {
	approve := object.union(f.mfa_verify, {"path": "/v1/warden/grants/g-1/approve"})
	f.denied_because(
		f.as_user(f.bob, "grant.approve", approve),
		"bob@example.org has no entitlement or active grant for grant.approve on segment control",
	)
	inp := object.union(f.as_user(f.bob, "grant.approve", approve), {"principal": {"roles": ["grant-approver"]}})
	f.allowed(inp)
	f.reasons_of(inp) == {"user bob@example.org holds the role grant-approver and may approve grants"}
}

test_agents_never_approve_grants if {
	approve := object.union(f.mfa_verify, {"path": "/v1/warden/grants/g-1/approve"})
	f.denied(object.union(f.as_agent(f.planner, f.alice, "grant.approve", approve), {"principal": {"roles": ["grant-approver"]}}))
	f.denied(object.union(f.as_agent(f.planner, "", "grant.approve", approve), {"principal": {"roles": ["grant-approver"]}}))
}

test_services_do_not_use_self_service if {
	f.denied(f.as_deployer("grant.request", object.union(f.mfa_verify, {"path": "/v1/warden/grants"})))
}

test_user_may_not_revoke_credentials if {
	f.denied(f.as_user(f.alice, "credential.revoke", object.union(f.mfa_verify, {"path": "/v1/warden/revoke"})))
}

test_service_may_not_step_up if {
	f.denied(f.as_deployer("mfa.verify", f.mfa_verify))
}

test_unknown_user_may_not_step_up if {
	f.denied_because(
		f.as_user("mallory@example.org", "mfa.verify", f.mfa_verify),
		"principal mallory@example.org (user) is not registered in any segment",
	)
}

test_only_security_admins_manage_sanctions if {
	sanctions := object.union(f.mfa_verify, {"path": "/v1/warden/sanctions"})
	every action in ["sanction.list", "sanction.create", "sanction.lift"] {
		f.denied(f.as_user(f.bob, action, sanctions))
		admin := object.union(f.as_user(f.bob, action, sanctions), {"principal": {"roles": ["security-admin"]}})
		f.allowed(admin)
		f.reasons_of(admin) == {sprintf("user bob@example.org holds the role security-admin and may %s", [action])}
	}
}

test_agents_and_services_never_manage_sanctions if {
	sanctions := object.union(f.mfa_verify, {"path": "/v1/warden/sanctions"})
	f.denied(object.union(f.as_agent(f.planner, f.alice, "sanction.create", sanctions), {"principal": {"roles": ["security-admin"]}}))
	f.denied(object.union(f.as_deployer("sanction.lift", sanctions), {"principal": {"roles": ["security-admin"]}}))
}
