package warden.authz

# Division by zero is a built-in error; with strict built-in errors it
# fails the evaluation instead of leaving the rule undefined.
allow if {
	per_byte := 1000 / input.context.request_bytes
	per_byte < 10
}

# A malformed time fails the same way.
deny contains "expired" if {
	input.action == "time"
	time.parse_rfc3339_ns(input.principal.id) < 0
}
