package warden.authz_test

import data.warden.authz

model_req(action, roles) := {
	"principal": {"kind": "user", "id": "u@example.org", "roles": roles, "scopes": []},
	"action": action,
	"resource": {"route": "warden", "segment": "control", "api": "warden"},
	"context": {"time": "2025-06-01T10:00:00Z"},
}

test_anyone_lists_models if {
	authz.allow with input as model_req("model.list", [])
}

test_promote_needs_approver if {
	not authz.allow with input as model_req("model.promote", [])
	not authz.allow with input as model_req("model.promote", ["model-publisher"])
	authz.allow with input as model_req("model.promote", ["model-approver"])
}

test_rollback_needs_approver if {
	not authz.allow with input as model_req("model.rollback", ["model-publisher"])
	authz.allow with input as model_req("model.rollback", ["model-approver"])
}

test_register_needs_publisher_or_approver if {
	not authz.allow with input as model_req("model.register", [])
	authz.allow with input as model_req("model.register", ["model-publisher"])
	authz.allow with input as model_req("model.verify", ["model-approver"])
}

test_datasets_like_models if {
	authz.allow with input as model_req("dataset.list", [])
	authz.allow with input as model_req("dataset.get", [])
	not authz.allow with input as model_req("dataset.register", [])
	authz.allow with input as model_req("dataset.register", ["model-publisher"])
}
