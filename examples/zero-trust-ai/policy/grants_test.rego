# Tests for grants.rego: just-in-time grants.
package zt.test.grants

import data.warden.authz
import data.zt.test.fixtures as f

# alice wants to change deployment configuration: no flow, no entitlement.
alice_put := f.as_user(f.alice, "http.put", f.deployment_put)

grant := {
	"id": "g-42",
	"action": "http.put",
	"segment": "deployment",
	"resource": "deployment",
	"requested_by": f.alice,
	"approved_by": f.bob,
	"expires_at": "2025-06-02T11:00:00Z",
}

with_grant(inp, g) := object.union(inp, {"grants": [g]})

test_without_grant_denied if {
	f.deny_of(alice_put) == {
		"cross-segment call denied: alice@example.org (segment workspace) may not http.put on segment deployment",
		"alice@example.org has no entitlement or active grant for http.put on segment deployment",
	}
}

test_active_grant_allows if {
	inp := with_grant(alice_put, grant)
	f.allowed(inp)
	f.reasons_of(inp) == {"JIT grant g-42 (requested by alice@example.org, approved by bob@example.org, until 2025-06-02T11:00:00Z) allows http.put on segment deployment"}
	f.obligations_of(inp) == {"audit_level": "full"}
}

test_grant_with_any_action_or_resource if {
	f.allowed(with_grant(alice_put, object.union(grant, {"action": "*"})))
	f.allowed(with_grant(alice_put, object.union(grant, {"resource": ""})))
}

test_grant_for_a_model if {
	inp := f.as_user(f.bob, "embeddings", f.embeddings("gpt-4o-mini"))
	f.denied(inp)
	g := object.union(grant, {"action": "embeddings", "segment": "inference", "resource": "gpt-4o-mini", "requested_by": f.bob, "approved_by": f.alice})
	f.allowed(with_grant(inp, g))
}

test_expired_grant_denied if {
	inp := with_grant(alice_put, object.union(grant, {"expires_at": "2025-06-02T09:59:59Z"}))
	f.denied(inp)
	not authz.allow with input as inp
}

test_grant_expiring_now_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"expires_at": f.now})))
}

test_grant_not_yet_valid_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"not_before": "2025-06-02T10:30:00Z"})))
	f.allowed(with_grant(alice_put, object.union(grant, {"not_before": "2025-06-02T09:30:00Z"})))
}

test_grant_for_another_segment_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"segment": "training"})))
	f.denied(with_grant(alice_put, object.union(grant, {"segment": ""})))
}

test_grant_for_another_action_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"action": "http.delete"})))
}

test_grant_for_another_resource_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"resource": "deployment-eu"})))
}

test_self_approved_grant_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"approved_by": f.alice})))
	f.denied(with_grant(alice_put, object.union(grant, {"requested_by": f.bob, "approved_by": f.bob})))
}

test_unapproved_grant_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"approved_by": ""})))
}

test_grant_of_another_principal_denied if {
	f.denied(with_grant(alice_put, object.union(grant, {"principal": f.bob})))
	f.allowed(with_grant(alice_put, object.union(grant, {"principal": f.alice})))
}

test_one_matching_grant_among_several if {
	stale := object.union(grant, {"id": "g-41", "expires_at": "2025-06-01T00:00:00Z"})
	inp := object.union(alice_put, {"grants": [stale, grant]})
	f.allowed(inp)
	f.reasons_of(inp) == {"JIT grant g-42 (requested by alice@example.org, approved by bob@example.org, until 2025-06-02T11:00:00Z) allows http.put on segment deployment"}
}

# A grant lifts segmentation, nothing else.
test_grant_does_not_lift_scrutiny if {
	inp := f.with_context(with_grant(alice_put, grant), {"risk": 0.9})
	f.denied_because(inp, "risk score 0.9 of alice@example.org is at or above 0.8")
}

test_grant_does_not_lift_secret_deny if {
	f.denied(f.with_context(with_grant(alice_put, grant), {"data_classes": ["secret"]}))
}

test_grant_does_not_lift_agent_model_limits if {
	inp := f.as_agent(f.planner, f.bob, "chat.completions", f.chat("gpt-4o"))
	g := object.union(grant, {"action": "chat.completions", "segment": "inference", "resource": "", "requested_by": f.planner})
	f.denied_because(with_grant(inp, g), "model \"gpt-4o\" is not granted to bob@example.org, for whom agent spiffe://ml.example.org/agent/planner acts")
}

test_grant_to_unusual_user_still_steps_up if {
	inp := f.with_context(with_grant(alice_put, grant), {"networks": []})
	f.allowed(inp)
	f.obligations_of(inp) == {"require_mfa": true, "audit_level": "full"}
}

# No grant ever permits the grant endpoints themselves.
test_grant_never_permits_grant_endpoints if {
	approve := f.as_user(f.bob, "grant.approve", {"route": "warden", "segment": "control", "api": "warden", "method": "POST", "path": "/v1/warden/grants/g-1/approve"})
	g := object.union(grant, {"action": "*", "segment": "control", "resource": "", "requested_by": f.bob, "approved_by": f.alice})
	f.denied(with_grant(approve, g))
	not authz.allow with input as with_grant(approve, g)
}
