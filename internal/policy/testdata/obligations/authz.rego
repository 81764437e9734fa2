# Obligations chosen by the input's action, well-formed and malformed.
package warden.authz

allow := true

reasons contains "allowed with obligations"

default obligations := {
	"mask": {"pii": "mask", "email": "hash", "secret": "block"},
	"max_tokens": 256,
	"require_mfa": false,
	"rate_class": "bulk",
	"audit_level": "full",
}

obligations := {"cap": {"max_tokens": 256}, "mask": {"pii": "mask"}} if input.action == "unknown"

obligations := {"max_tokens": 64} if input.action == "max_tokens"

obligations := {"max_tokens": 2.56e2} if input.action == "max_tokens_exponent"

obligations := {"audit_level": "full"} if input.action == "audit_full"

obligations := {"audit_level": "standard", "max_tokens": 128} if input.action == "audit_standard"

obligations := {"mask": {"pii": "mask"}} if input.action == "mask"

obligations := {"mask": {"pii": "mask"}, "max_tokens": 64, "rate_class": "bulk", "require_mfa": true, "audit_level": "full"} if input.action == "all"

obligations := {"rate_class": "bulk"} if input.action == "rate_class"

obligations := {"mask": ["email"]} if input.action == "bad_mask_type"

obligations := {"mask": {"pii": "erase"}} if input.action == "bad_mask_action"

obligations := {"mask": {"": "mask"}} if input.action == "bad_mask_key"

obligations := {"max_tokens": 0} if input.action == "bad_max_tokens_zero"

obligations := {"max_tokens": -5} if input.action == "bad_max_tokens_negative"

obligations := {"max_tokens": 2.5} if input.action == "bad_max_tokens_fraction"

obligations := {"max_tokens": "256"} if input.action == "bad_max_tokens_string"

obligations := {"max_tokens": 1e300} if input.action == "bad_max_tokens_huge"

obligations := {"require_mfa": "yes"} if input.action == "bad_require_mfa"

obligations := {"rate_class": 5} if input.action == "bad_rate_class_type"

obligations := {"rate_class": "Bulk Class"} if input.action == "bad_rate_class_name"

obligations := {"audit_level": "verbose"} if input.action == "bad_audit_level"
