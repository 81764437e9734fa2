package warden.authz

allow if {
	input.action == 
}
