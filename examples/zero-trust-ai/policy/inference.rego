# Scenario: an inference service has no access to training data or
# deployment configuration.
#
# catalog.flows has no inference -> training or inference -> deployment
# flow, so such calls are already cross-segment denials. That deny yields to
# a JIT grant; this one does not: a principal with profile
# "inference-server" never reaches those segments, grant or not. A
# compromised model server must not be able to poison training data or
# change what gets deployed.
package warden.authz

import data.zt.lib

deny contains msg if {
	input.resource.segment == "training"
	lib.profiles[input.principal.id] == "inference-server"
	msg := inference_denied
}

deny contains msg if {
	input.resource.segment == "deployment"
	lib.profiles[input.principal.id] == "inference-server"
	msg := inference_denied
}

inference_denied := sprintf("inference service %s has no access to segment %s (%s denied)", [input.principal.id, input.resource.segment, input.action])
