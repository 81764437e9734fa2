# Two ways to test the source address: the named networks warden computes
# from policy.networks, and OPA's net.cidr_contains.
package warden.authz

allow if "corp" in input.context.networks

reasons contains "named network corp" if "corp" in input.context.networks

reasons contains "net.cidr_contains 10.0.0.0/8" if {
	input.context.source_ip != ""
	net.cidr_contains("10.0.0.0/8", input.context.source_ip)
}
