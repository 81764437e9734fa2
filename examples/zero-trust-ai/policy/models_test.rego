# Tests for models.rego: the model registry's endpoints.
package zt.test.models

import data.warden.authz
import data.zt.test.fixtures as f

model_ep(path) := {"route": "warden", "segment": "control", "api": "warden", "method": "POST", "path": path}

with_roles(inp, roles) := object.union(inp, {"principal": {"roles": roles}})

promote := f.as_user(f.bob, "model.promote", model_ep("/v1/warden/models/llama/promote"))

test_promote_without_role_denied if {
	not authz.allow with input as promote
}

test_promote_with_role_allowed_with_mfa if {
	inp := with_roles(promote, ["model-approver"])
	authz.allow with input as inp
	f.obligations_of(inp).require_mfa
}

test_agent_never_promotes if {
	inp := with_roles(f.as_agent(f.planner, f.alice, "model.rollback", model_ep("/v1/warden/models/llama/rollback")), ["model-approver"])
	not authz.allow with input as inp
}

test_publisher_registers if {
	inp := with_roles(f.as_user(f.alice, "model.register", model_ep("/v1/warden/models")), ["model-publisher"])
	authz.allow with input as inp
}

test_users_list if {
	authz.allow with input as f.as_user(f.alice, "model.list", model_ep("/v1/warden/models"))
}

test_publisher_registers_datasets if {
	inp := with_roles(f.as_user(f.alice, "dataset.register", model_ep("/v1/warden/datasets")), ["model-publisher"])
	authz.allow with input as inp
	not authz.allow with input as f.as_user(f.alice, "dataset.register", model_ep("/v1/warden/datasets"))
}

test_users_list_datasets if {
	authz.allow with input as f.as_user(f.alice, "dataset.list", model_ep("/v1/warden/datasets"))
}
