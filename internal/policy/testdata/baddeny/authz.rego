package warden.authz

allow := true

# deny must be a set of strings, not a boolean.
deny := true if input.action == "boolean"

deny := {1, 2} if input.action == "numbers"

deny := {"a": "b"} if input.action == "object"
