# Unit tests for grants.rego. Run them with: warden policy test examples/quickstart/policy
package warden.grants_test

import data.warden.authz

# A user with no scopes asks for chat completions on the inference segment.
base := {
	"principal": {
		"kind": "user",
		"id": "alice@example.org",
		"on_behalf_of": "",
		"auth_method": "jwt",
		"credential_id": "tok_01",
		"auth_time": "2025-06-02T09:59:00Z",
		"scopes": [],
		"groups": [],
		"roles": [],
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
	},
	"context": {
		"time": "2025-06-02T10:00:00Z",
		"unix": 1748858400,
		"weekday": "Mon",
		"hour": 10,
		"source_ip": "10.0.0.7",
		"request_id": "req_01",
		"request_bytes": 128,
	},
	"grants": [],
	"sanctions": [],
}

# An active grant for chat completions on the inference segment.
chat_grant := {
	"id": "g_0123456789abcdef01234567",
	"action": "chat.completions",
	"segment": "inference",
	"resource": "",
	"requested_by": "alice@example.org",
	"approved_by": "bob@example.org",
	"expires_at": "2025-06-02T11:00:00Z",
}

with_grant(g) := object.union(base, {"grants": [g]})

test_no_grant_no_access if {
	not authz.allow with input as base
	count(authz.reasons) == 0 with input as base
}

test_no_grants_field_no_access if {
	inp := json.remove(base, ["grants"])
	not authz.allow with input as inp
}

test_matching_grant_allows_and_says_why if {
	inp := with_grant(chat_grant)
	authz.allow with input as inp
	count(authz.deny) == 0 with input as inp
	authz.reasons == {"grant g_0123456789abcdef01234567 approved by bob@example.org allows chat.completions on segment inference until 2025-06-02T11:00:00Z"} with input as inp
}

test_wildcard_action_allows if {
	authz.allow with input as with_grant(object.union(chat_grant, {"action": "*"}))
}

test_grant_for_other_action_or_segment_does_not_allow if {
	not authz.allow with input as with_grant(object.union(chat_grant, {"action": "embeddings"}))
	not authz.allow with input as with_grant(object.union(chat_grant, {"segment": "training"}))
	not authz.allow with input as with_grant(object.union(chat_grant, {"segment": "training", "action": "*"}))
}

test_resource_matches_route_model_or_tool if {
	authz.allow with input as with_grant(object.union(chat_grant, {"resource": "openai"}))
	authz.allow with input as with_grant(object.union(chat_grant, {"resource": "gpt-4o-mini"}))
	tool_call := object.union(with_grant(object.union(chat_grant, {"action": "*", "resource": "search"})), {"resource": {"tool": "search"}})
	authz.allow with input as tool_call
}

# base has no resource.tool: a grant for a tool matches no request without
# one, and a grant with no resource still matches.
test_request_without_tool if {
	not authz.allow with input as with_grant(object.union(chat_grant, {"resource": "search"}))
	authz.allow with input as with_grant(chat_grant)
}

test_resource_mismatch_does_not_allow if {
	not authz.allow with input as with_grant(object.union(chat_grant, {"resource": "gpt-4o"}))
	not authz.allow with input as with_grant(object.union(chat_grant, {"resource": "other-route"}))
}

test_expired_grant_does_not_allow if {
	# expiry is exclusive: at expires_at the grant is over
	not authz.allow with input as with_grant(object.union(chat_grant, {"expires_at": "2025-06-02T10:00:00Z"}))
	not authz.allow with input as with_grant(object.union(chat_grant, {"expires_at": "2025-06-02T09:00:00Z"}))
}

test_grant_does_not_override_deny if {
	inp := object.union(with_grant(chat_grant), {"resource": {"model": "internal-finetune-raw"}})
	authz.deny == {"model internal-finetune-raw is blocked by policy"} with input as inp
}

# control is the segment of warden's own endpoints.
control(action, kind, roles) := object.union(base, {
	"action": action,
	"principal": {"kind": kind, "roles": roles},
	"resource": {"route": "warden", "segment": "control", "api": "warden", "path": "/v1/warden/grants", "model": ""},
})

test_anyone_proven_may_request_list_deny_and_revoke if {
	every action in ["grant.request", "grant.list", "grant.deny", "grant.revoke"] {
		every kind in ["user", "service", "agent"] {
			authz.allow with input as control(action, kind, [])
		}
	}
}

test_only_users_with_the_approver_role_approve if {
	authz.allow with input as control("grant.approve", "user", ["grant-approver"])
	authz.reasons == {"user alice@example.org holds the role grant-approver"} with input as control("grant.approve", "user", ["grant-approver"])
	not authz.allow with input as control("grant.approve", "user", [])
	not authz.allow with input as control("grant.approve", "user", ["admin"])
	not authz.allow with input as control("grant.approve", "agent", ["grant-approver"])
	not authz.allow with input as control("grant.approve", "service", ["grant-approver"])
}

test_a_grant_never_permits_grant_management if {
	g := object.union(chat_grant, {"action": "*", "segment": "control"})
	inp := object.union(control("grant.approve", "user", []), {"grants": [g]})
	not authz.allow with input as inp
}

test_grant_endpoints_only_in_control_segment if {
	inp := object.union(control("grant.approve", "user", ["grant-approver"]), {"resource": {"segment": "inference"}})
	not authz.allow with input as inp
}
