package warden.authz

# Both rules fire for a request naming a model: a Rego conflict error.
allow := true if input.action != ""

allow := false if input.resource.model != ""
