package warden.authz

allow := true

obligations := {"require_mfa": true}
