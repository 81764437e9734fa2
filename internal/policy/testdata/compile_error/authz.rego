package warden.authz

default allow := false

allow if {
	input.action == "chat.completions"
	undefined_function(input.resource.model)
}
