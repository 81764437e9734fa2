# The model registry's endpoints for the quickstart policy (docs/models.md).
#
# warden serves a model version only after its signature and every file
# digest verify; these rules decide who may drive the registry. The rules
# merge with authz.rego: same package, same rule names.
package warden.authz

# The role that may promote and roll back models. It must equal
# models.approver_role in warden.yaml (default "model-approver"); warden's
# registry checks it again on every promote and rollback.
model_approver_role := "model-approver"

# The role that may register and re-verify versions (approvers may too).
model_publisher_role := "model-publisher"

# Any proven principal may read the registry (models and datasets).
allow if {
	input.action in {"model.list", "model.get", "dataset.list", "dataset.get"}
	input.resource.segment == "control"
}

reasons contains "any proven principal may read the model registry" if {
	input.action in {"model.list", "model.get", "dataset.list", "dataset.get"}
	input.resource.segment == "control"
}

# Publishers and approvers register model and dataset versions and ask for
# re-verification.
allow if {
	input.action in {"model.register", "model.verify", "dataset.register"}
	input.resource.segment == "control"
	some role in input.principal.roles
	role in {model_publisher_role, model_approver_role}
}

reasons contains msg if {
	input.action in {"model.register", "model.verify", "dataset.register"}
	input.resource.segment == "control"
	some role in input.principal.roles
	role in {model_publisher_role, model_approver_role}
	msg := sprintf("role %s may %s", [role, input.action])
}

# Only approvers promote and roll back.
allow if {
	input.action in {"model.promote", "model.rollback"}
	input.resource.segment == "control"
	model_approver_role in input.principal.roles
}

reasons contains msg if {
	input.action in {"model.promote", "model.rollback"}
	input.resource.segment == "control"
	model_approver_role in input.principal.roles
	msg := sprintf("role %s may %s", [model_approver_role, input.action])
}
