# Unit tests for authz.rego. Run them with: warden policy test examples/quickstart/policy
package warden.authz_test

import data.warden.authz

# A request as warden builds it: service "billing-bot" calls chat completions
# on the inference segment with one exact scope.
request := {
	"principal": {
		"kind": "service",
		"id": "spiffe://example.org/billing-bot",
		"on_behalf_of": "",
		"auth_method": "api_key",
		"credential_id": "key_01",
		"auth_time": "2025-06-02T09:59:00Z",
		"scopes": ["inference:chat.completions"],
		"issuer": "",
		"groups": [],
		"roles": [],
		"mfa": false,
		"workload": "",
	},
	"action": "chat.completions",
	"resource": {
		"route": "openai",
		"segment": "inference",
		"api": "openai",
		"method": "POST",
		"path": "/v1/chat/completions",
		"model": "gpt-4o-mini",
		"stream": false,
		"tool": "",
		"arguments": {},
	},
	"context": {
		"time": "2025-06-02T10:00:00Z",
		"unix": 1748858400,
		"weekday": "Mon",
		"hour": 10,
		"timezone": "UTC",
		"local_time": "2025-06-02T10:00:00Z",
		"local_weekday": "Mon",
		"local_hour": 10,
		"source_ip": "10.0.0.7",
		"networks": [],
		"geo": {"country": "", "city": "", "asn": 0, "org": ""},
		"posture": {},
		"posture_source": "",
		"risk": 0,
		"data_classes": [],
		"finding_types": [],
		"request_id": "req_01",
		"request_bytes": 128,
		"tokens": {"prompt": 0, "max": 0},
	},
	"grants": [],
	"sanctions": [],
}

# with_scopes returns the request with the principal's scopes replaced.
with_scopes(scopes) := object.union(request, {"principal": {"scopes": scopes}})

test_allow_with_exact_scope if {
	authz.allow with input as request
	count(authz.deny) == 0 with input as request
	authz.reasons == {"scope inference:chat.completions grants chat.completions on segment inference"} with input as request
}

test_deny_without_scope if {
	inp := with_scopes([])
	not authz.allow with input as inp
	count(authz.reasons) == 0 with input as inp
}

test_deny_scope_for_other_action if {
	not authz.allow with input as with_scopes(["inference:embeddings"])
}

test_deny_scope_for_other_segment if {
	not authz.allow with input as with_scopes(["training:chat.completions"])
	not authz.allow with input as with_scopes(["training:*"])
}

test_allow_with_segment_wildcard if {
	inp := with_scopes(["inference:*"])
	authz.allow with input as inp
	authz.reasons == {"scope inference:* grants chat.completions on segment inference"} with input as inp
}

test_wildcard_covers_models_list if {
	inp := object.union(with_scopes(["inference:*"]), {
		"action": "models.list",
		"resource": {"method": "GET", "path": "/v1/models", "model": ""},
	})
	authz.allow with input as inp
}

test_both_scopes_give_both_reasons if {
	inp := with_scopes(["inference:chat.completions", "inference:*", "training:*"])
	authz.reasons == {
		"scope inference:chat.completions grants chat.completions on segment inference",
		"scope inference:* grants chat.completions on segment inference",
	} with input as inp
}

test_no_segment_never_allows if {
	inp := object.union(with_scopes([":*", ":chat.completions"]), {"resource": {"segment": ""}})
	not authz.allow with input as inp
}

test_blocked_model_denied if {
	inp := object.union(with_scopes(["inference:*"]), {"resource": {"model": "internal-finetune-raw"}})
	authz.deny == {"model internal-finetune-raw is blocked by policy"} with input as inp
}

test_expired_credential_denied if {
	inp := object.union(request, {"principal": {"expires_at": "2025-06-02T09:00:00Z"}})
	authz.deny == {"credential key_01 expired at 2025-06-02T09:00:00Z"} with input as inp
}

test_credential_expiring_now_denied if {
	inp := object.union(request, {"principal": {"expires_at": "2025-06-02T10:00:00Z"}})
	count(authz.deny) == 1 with input as inp
}

test_unexpired_credential_not_denied if {
	inp := object.union(request, {"principal": {"expires_at": "2025-06-02T11:00:00Z"}})
	count(authz.deny) == 0 with input as inp
	authz.allow with input as inp
}

# step_up is a user posting a TOTP code to warden's step-up endpoint.
step_up(kind) := object.union(request, {
	"principal": {"kind": kind, "scopes": []},
	"action": "mfa.verify",
	"resource": {"route": "warden", "segment": "control", "api": "warden", "path": "/v1/warden/mfa/verify"},
})

test_user_may_step_up if {
	authz.allow with input as step_up("user")
	"users may step up with a second factor" in authz.reasons with input as step_up("user")
}

test_service_may_not_step_up if {
	not authz.allow with input as step_up("service")
}

test_token_exchange_needs_control_scope if {
	exchange := object.union(step_up("agent"), {"action": "token.exchange"})
	not authz.allow with input as exchange
	authz.allow with input as object.union(exchange, {"principal": {"scopes": ["control:token.exchange"]}})
}

test_security_admins_manage_sanctions if {
	every action in ["sanction.list", "sanction.create", "sanction.lift"] {
		inp := object.union(step_up("user"), {"action": action, "resource": {"path": "/v1/warden/sanctions"}})
		not authz.allow with input as inp
		admin := object.union(inp, {"principal": {"roles": ["security-admin"]}})
		authz.allow with input as admin
		not authz.allow with input as object.union(admin, {"principal": {"kind": "agent"}})
		authz.allow with input as object.union(inp, {"principal": {"kind": "service", "scopes": [sprintf("control:%s", [action])]}})
	}
}
