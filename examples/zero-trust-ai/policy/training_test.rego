# Tests for training.rego: the training service writes training data and
# nothing else.
package zt.test.training

import data.warden.authz
import data.zt.test.fixtures as f

guard(action, segment) := sprintf("training service %s may only write training data (http.post or http.put on segment training), not %s on segment %q", [f.trainer, action, segment])

test_trainer_may_post_training_data if {
	inp := f.as_trainer("http.post", f.training_post)
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: spiffe://ml.example.org/training/trainer may http.post on segment training"}
	f.obligations_of(inp) == {}
}

test_trainer_may_put_training_data if {
	f.allowed(f.as_trainer("http.put", f.training_put))
}

test_trainer_may_not_read_training_data if {
	inp := f.as_trainer("http.get", f.training_get)
	f.denied_because(inp, guard("http.get", "training"))
}

test_trainer_may_not_delete_training_data if {
	inp := f.as_trainer("http.delete", object.union(f.training_get, {"method": "DELETE"}))
	f.denied_because(inp, guard("http.delete", "training"))
}

# The training -> inference flow exists for the evaluator; the trainer's
# boundary still denies it.
test_trainer_may_not_call_inference if {
	f.denied_because(f.as_trainer("embeddings", f.embeddings("text-embedding-3-small")), guard("embeddings", "inference"))
	f.denied_because(f.as_trainer("chat.completions", f.chat("gpt-4o-mini")), guard("chat.completions", "inference"))
	f.denied_because(f.as_trainer("models.list", f.models_list), guard("models.list", "inference"))
}

test_trainer_may_not_touch_deployment if {
	inp := f.as_trainer("http.get", f.deployment_get)
	f.deny_of(inp) == {
		guard("http.get", "deployment"),
		"cross-segment call denied: spiffe://ml.example.org/training/trainer (segment training) may not http.get on segment deployment",
		"spiffe://ml.example.org/training/trainer has no entitlement or active grant for http.get on segment deployment",
	}
	f.denied(f.as_trainer("http.put", f.deployment_put))
}

test_trainer_may_not_use_control_endpoints if {
	f.denied_because(f.as_trainer("token.exchange", f.token_exchange), guard("token.exchange", "control"))
}

# No JIT grant lifts the boundary, not even one for training itself.
test_grant_does_not_lift_trainer_boundary if {
	g := {"id": "g-7", "action": "*", "segment": "inference", "resource": "", "requested_by": f.trainer, "approved_by": f.alice, "expires_at": "2025-06-02T12:00:00Z"}
	inp := object.union(f.as_trainer("chat.completions", f.chat("gpt-4o-mini")), {"grants": [g]})
	authz.allow with input as inp # the grant matches ...
	f.denied_because(inp, guard("chat.completions", "inference")) # ... and is overruled

	g2 := object.union(g, {"id": "g-8", "segment": "training"})
	inp2 := object.union(f.as_trainer("http.get", f.training_get), {"grants": [g2]})
	f.denied_because(inp2, guard("http.get", "training"))
}

# Another training workload is not bound by the writer's profile.
test_evaluator_may_use_the_training_inference_flow if {
	inp := f.as_evaluator("embeddings", f.embeddings("text-embedding-3-small"))
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: spiffe://ml.example.org/training/evaluator may embeddings on segment inference"}
	f.allowed(f.as_evaluator("http.get", f.training_get))
}

test_evaluator_may_not_write_training_data if {
	f.denied_because(
		f.as_evaluator("http.post", f.training_post),
		"spiffe://ml.example.org/training/evaluator has no entitlement or active grant for http.post on segment training",
	)
}

test_evaluator_flow_is_limited_to_listed_actions if {
	f.denied_because(
		f.as_evaluator("models.list", f.models_list),
		"cross-segment call denied: spiffe://ml.example.org/training/evaluator (segment training) may not models.list on segment inference",
	)
}
