package warden.authz

allow := true

reasons contains "fine"

reasons contains 42
