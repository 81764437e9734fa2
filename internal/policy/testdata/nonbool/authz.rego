package warden.authz

allow := "yes"
