# Data classes found in the request by warden's guards
# (context.data_classes, e.g. "pii", "secret"; context.finding_types, e.g.
# "email", "payment_card", "aws_access_key"):
#   - a secret never passes, whoever sends it and wherever it goes;
#   - PII passes masked: the mask obligation tells warden what to do per
#     class or finding type ("mask", "hash" or "block").
# Most requests carry no finding: each rule here starts by looking at the
# first element of the list, which OPA's rule index checks before it
# evaluates the rule at all, so an empty list costs nothing here.
package warden.authz

import data.zt.catalog

deny contains msg if {
	input.context.data_classes[0]
	some c in input.context.data_classes
	catalog.deny_classes[c]
	msg := sprintf("request carries %s data (%s): secrets are never forwarded", [c, concat(", ", input.context.finding_types)])
}

# A prompt injection, in the caller's words or planted in third-party content
# (a tool result), never reaches a model. The reason names no rule or span.
deny contains "prompt injection detected in the request" if {
	input.context.data_classes[0]
	"injection" in input.context.data_classes
}

# mask is {class or finding type: action} for what the guards found. A
# finding type always comes with its class, so no class means no mask.
mask := m if {
	input.context.data_classes[0]
	m := object.union(
		{c: a | some c in input.context.data_classes; a := catalog.mask_classes[c]},
		{t: a | some t in input.context.finding_types; a := catalog.mask_types[t]},
	)
	count(m) > 0
}

obligations["mask"] := mask if input.context.data_classes[0]

reasons contains msg if {
	input.context.data_classes[0]
	some k, a in mask
	msg := sprintf("%s in the request: %s", [k, a])
}
