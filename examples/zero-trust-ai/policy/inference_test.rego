# Tests for inference.rego: an inference service has no access to training
# data or deployment configuration.
package zt.test.inference

import data.warden.authz
import data.zt.test.fixtures as f

guard(action, segment) := sprintf("inference service %s has no access to segment %s (%s denied)", [f.inference_server, segment, action])

test_inference_service_may_use_served_models if {
	inp := f.as_inference("chat.completions", f.chat("gpt-4o"))
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: spiffe://ml.example.org/inference/server may chat.completions on segment inference"}
	f.allowed(f.as_inference("embeddings", f.embeddings("text-embedding-3-small")))
	f.allowed(f.as_inference("models.list", f.models_list))
	f.allowed(f.as_inference("models.get", f.models_get("gpt-4o")))
}

# Services are not limited to a model list; agents and users are.
test_inference_service_has_no_model_list if {
	f.allowed(f.as_inference("chat.completions", f.chat("some-new-model")))
}

test_inference_service_not_entitled_to_completions if {
	f.denied_because(
		f.as_inference("completions", object.union(f.chat("gpt-4o"), {"path": "/v1/completions"})),
		"spiffe://ml.example.org/inference/server has no entitlement or active grant for completions on segment inference",
	)
}

test_inference_service_may_not_read_training_data if {
	inp := f.as_inference("http.get", f.training_get)
	f.deny_of(inp) == {
		guard("http.get", "training"),
		"cross-segment call denied: spiffe://ml.example.org/inference/server (segment inference) may not http.get on segment training",
		"spiffe://ml.example.org/inference/server has no entitlement or active grant for http.get on segment training",
	}
}

test_inference_service_may_not_write_training_data if {
	f.denied_because(f.as_inference("http.post", f.training_post), guard("http.post", "training"))
	f.denied_because(f.as_inference("http.put", f.training_put), guard("http.put", "training"))
}

test_inference_service_may_not_read_deployment_config if {
	f.denied_because(f.as_inference("http.get", f.deployment_get), guard("http.get", "deployment"))
}

test_inference_service_may_not_change_deployment_config if {
	f.denied_because(f.as_inference("http.put", f.deployment_put), guard("http.put", "deployment"))
	f.denied_because(f.as_inference("http.delete", object.union(f.deployment_get, {"method": "DELETE"})), guard("http.delete", "deployment"))
}

# A grant lifts the cross-segment deny and allows, but the boundary stays.
test_grant_does_not_lift_inference_boundary if {
	g := {"id": "g-9", "action": "http.get", "segment": "deployment", "resource": "", "requested_by": f.inference_server, "approved_by": f.alice, "expires_at": "2025-06-02T12:00:00Z"}
	inp := object.union(f.as_inference("http.get", f.deployment_get), {"grants": [g]})
	authz.allow with input as inp
	f.deny_of(inp) == {guard("http.get", "deployment")}
}
