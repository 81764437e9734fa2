# Covers allow, deny with reasons and default deny, chosen by the input.
package warden.authz

allow if input.action == "chat.completions"

reasons contains "chat completions are open" if allow

deny contains sprintf("model %s is blocked", [input.resource.model]) if input.resource.model == "bad"

deny contains "streaming is off for this model" if {
	input.resource.model == "bad"
	input.resource.stream
}

obligations := {} if input.resource.path == "/empty-obligations"
