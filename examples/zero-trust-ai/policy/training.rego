# Scenario: a training service may write training data and nothing else.
#
# The catalog already gives the trainer only http.post and http.put on the
# training segment. This file makes that a hard boundary: whatever the
# catalog, a flow or a JIT grant says, a principal with profile
# "training-writer" is denied every request that is not a write to a route
# in the training segment. No inference, no deployment, no reads (not even of
# training data: reading back what it wrote is an exfiltration path).
package warden.authz

import data.zt.lib

deny contains msg if {
	lib.profiles[input.principal.id] == "training-writer"
	not training_write
	msg := sprintf("training service %s may only write training data (http.post or http.put on segment training), not %s on segment %q", [input.principal.id, input.action, input.resource.segment])
}

training_write if {
	input.resource.segment == "training"
	input.action == "http.post"
}

training_write if {
	input.resource.segment == "training"
	input.action == "http.put"
}
