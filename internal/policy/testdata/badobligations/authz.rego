package warden.authz

allow := true

obligations := ["mask"] if input.action == "array"

obligations := {1: "mask"} if input.action == "numeric_key"
