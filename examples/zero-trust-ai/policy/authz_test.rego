# Tests for authz.rego: identity checks, the catch-all deny reason and the
# audit obligation.
package zt.test.authz

import data.warden.authz
import data.zt.test.fixtures as f

test_unknown_principal_denied if {
	inp := f.request("spiffe://ml.example.org/training/rogue", "service", "http.post", f.training_post, ["training-cluster"])
	f.deny_of(inp) == {"principal spiffe://ml.example.org/training/rogue (service) is not registered in any segment"}
	not authz.allow with input as inp
	count(f.reasons_of(inp)) == 0
}

# An unknown principal is denied even with a grant that would match.
test_unknown_principal_with_grant_denied if {
	g := {"id": "g-1", "action": "http.post", "segment": "training", "resource": "", "requested_by": "x", "approved_by": f.alice, "expires_at": "2025-06-02T12:00:00Z"}
	inp := object.union(
		f.request("spiffe://ml.example.org/training/rogue", "service", "http.post", f.training_post, ["training-cluster"]),
		{"grants": [g]},
	)
	f.denied_because(inp, "principal spiffe://ml.example.org/training/rogue (service) is not registered in any segment")
	not authz.allow with input as inp
}

test_kind_mismatch_denied if {
	inp := f.request(f.trainer, "agent", "http.post", f.training_post, ["training-cluster"])
	f.denied_because(inp, "principal spiffe://ml.example.org/training/trainer is registered as a service but authenticated as a agent")
}

test_expired_credential_denied if {
	inp := object.union(f.as_trainer("http.post", f.training_post), {"principal": {"expires_at": "2025-06-02T09:00:00Z"}})
	f.deny_of(inp) == {"credential cred_01 expired at 2025-06-02T09:00:00Z"}
}

test_credential_expiring_now_denied if {
	f.denied(object.union(f.as_trainer("http.post", f.training_post), {"principal": {"expires_at": f.now}}))
}

test_valid_credential_allowed if {
	f.allowed(object.union(f.as_trainer("http.post", f.training_post), {"principal": {"expires_at": "2025-06-02T10:00:01Z"}}))
}

test_every_deny_of_a_registered_principal_has_a_reason if {
	inp := f.as_user(f.bob, "models.get", f.models_get("gpt-4o-mini"))
	f.deny_of(inp) == {"bob@example.org has no entitlement or active grant for models.get on segment inference"}
}

test_plain_allow_has_no_obligations if {
	f.obligations_of(f.as_deployer("http.put", f.deployment_put)) == {}
}
