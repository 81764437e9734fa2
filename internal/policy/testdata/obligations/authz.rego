package warden.authz

allow := true

obligations := {"mask": {"fields": ["email"]}, "cap": {"max_tokens": 256}}
