# The model registry (docs/models.md): who may read it, register versions,
# and promote or roll back. warden's registry checks the approver role
# again; promote and rollback also require MFA here.
package warden.authz

import data.zt.lib

# Must equal models.approver_role in warden.yaml (default "model-approver").
model_approver_role := "model-approver"

model_publisher_role := "model-publisher"

model_admin_actions := {"model.promote", "model.rollback"}

# Registered users may read the registry.
grounds contains msg if {
	input.resource.segment == "control"
	input.action in {"model.list", "model.get", "dataset.list", "dataset.get"}
	input.principal.kind == "user"
	lib.known
	msg := sprintf("users may read the model registry (%s)", [input.action])
}

# Publishers (users or services, e.g. the training pipeline) register and
# re-verify versions; approvers may too.
grounds contains msg if {
	input.resource.segment == "control"
	input.action in {"model.register", "model.verify", "dataset.register"}
	input.principal.kind in {"user", "service"}
	some role in input.principal.roles
	role in {model_publisher_role, model_approver_role}
	lib.known
	msg := sprintf("%s holds the role %s and may %s", [input.principal.id, role, input.action])
}

# Only users holding the approver role promote and roll back; services and
# agents never do (automated rollback runs inside warden, not through here).
grounds contains msg if {
	input.resource.segment == "control"
	input.action in model_admin_actions
	input.principal.kind == "user"
	model_approver_role in input.principal.roles
	lib.known
	msg := sprintf("user %s holds the role %s and may %s", [input.principal.id, model_approver_role, input.action])
}

# Changing what every inference serves is a privileged act: step up first.
obligations["require_mfa"] if {
	input.resource.segment == "control"
	input.action in model_admin_actions
}
