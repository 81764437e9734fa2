# Shared fixtures for the tests: complete input documents in the shape the
# gateway builds (docs/policy.md), one per kind of caller, and helpers to
# vary them. Tests patch a fixture with object.union (objects merge, arrays
# and scalars are replaced).
package zt.test.fixtures

import data.warden.authz

# now: Monday 2 June 2025, 10:00 UTC = 12:00 in Berlin.
now := "2025-06-02T10:00:00Z"

# request builds a full input for principal id/kind doing action on a route.
request(id, kind, action, resource, networks) := {
	"principal": {
		"kind": kind,
		"id": id,
		"on_behalf_of": "",
		"auth_method": "mtls",
		"credential_id": "cred_01",
		"auth_time": "2025-06-02T09:59:00Z",
		"scopes": [],
		"issuer": "ml.example.org",
		"groups": [],
		"roles": [],
		"mfa": false,
		"workload": "",
	},
	"action": action,
	"resource": object.union(
		{
			"route": "",
			"segment": "",
			"api": "http",
			"method": "GET",
			"path": "/",
			"model": "",
			"stream": false,
			"tool": "",
			"arguments": {},
		},
		resource,
	),
	"context": {
		"time": now,
		"unix": 1748858400,
		"weekday": "Mon",
		"hour": 10,
		"timezone": "Europe/Berlin",
		"local_time": "2025-06-02T12:00:00+02:00",
		"local_weekday": "Mon",
		"local_hour": 12,
		"source_ip": "10.1.2.3",
		"networks": networks,
		"geo": {"country": "", "city": "", "asn": 0, "org": ""},
		"posture": {},
		"posture_source": "",
		"risk": 0,
		"data_classes": [],
		"finding_types": [],
		"request_id": "req_01",
		"request_bytes": 256,
		"tokens": {"prompt": 20, "max": 0},
	},
	"grants": [],
	"sanctions": [],
}

# Routes, as warden.yaml defines them.
training_post := {"route": "training-data", "segment": "training", "api": "http", "method": "POST", "path": "/training/datasets/chat-v3/shards"}

training_put := object.union(training_post, {"method": "PUT"})

training_get := object.union(training_post, {"method": "GET"})

deployment_get := {"route": "deployment", "segment": "deployment", "api": "http", "method": "GET", "path": "/deploy/models/chat/config"}

deployment_put := object.union(deployment_get, {"method": "PUT"})

chat(model) := {"route": "inference", "segment": "inference", "api": "openai", "method": "POST", "path": "/v1/chat/completions", "model": model, "stream": false}

embeddings(model) := {"route": "inference", "segment": "inference", "api": "openai", "method": "POST", "path": "/v1/embeddings", "model": model}

models_list := {"route": "inference", "segment": "inference", "api": "openai", "method": "GET", "path": "/v1/models"}

models_get(model) := {"route": "inference", "segment": "inference", "api": "openai", "method": "GET", "path": sprintf("/v1/models/%s", [model]), "model": model}

tool(name) := {"route": "tools", "segment": "tools", "api": "mcp", "method": "POST", "path": "/mcp", "tool": name}

# mcp_call is a tools/call of name with arguments, as warden's MCP gateway
# builds it (input.resource.arguments).
mcp_call(name, args) := object.union(tool(name), {"arguments": args})

# mcp_session is the MCP route for the protocol's own messages.
mcp_session := tool("")

mfa_verify := {"route": "warden", "segment": "control", "api": "warden", "method": "POST", "path": "/v1/warden/mfa/verify"}

token_exchange := {"route": "warden", "segment": "control", "api": "warden", "method": "POST", "path": "/v1/warden/token"}

# Principals from the catalog, each on its usual network.
trainer := "spiffe://ml.example.org/training/trainer"

evaluator := "spiffe://ml.example.org/training/evaluator"

inference_server := "spiffe://ml.example.org/inference/server"

deployer := "spiffe://ml.example.org/deployment/deployer"

planner := "spiffe://ml.example.org/agent/planner"

triage := "spiffe://ml.example.org/agent/triage"

alice := "alice@example.org"

bob := "bob@example.org"

as_trainer(action, resource) := request(trainer, "service", action, resource, ["training-cluster"])

as_evaluator(action, resource) := request(evaluator, "service", action, resource, ["training-cluster"])

as_inference(action, resource) := request(inference_server, "service", action, resource, ["inference-cluster"])

as_deployer(action, resource) := request(deployer, "service", action, resource, ["deploy-cluster"])

as_user(id, action, resource) := object.union(
	request(id, "user", action, resource, ["corp-vpn"]),
	{"principal": {"auth_method": "jwt", "issuer": "https://idp.example.org"}},
)

# as_agent: agent id acting for user (user "" = acting for no one).
as_agent(id, user, action, resource) := object.union(
	request(id, "agent", action, resource, ["agent-runtime"]),
	{"principal": {"auth_method": "token", "issuer": "warden", "on_behalf_of": user}},
)

# with_context patches the context of inp.
with_context(inp, ctx) := object.union(inp, {"context": ctx})

# --- outcomes --------------------------------------------------------------------

# allowed: what warden forwards (allow true and deny empty).
allowed(inp) if {
	authz.allow with input as inp
	count(authz.deny) == 0 with input as inp
}

# denied: what warden refuses; every refusal carries at least one reason.
denied(inp) if {
	not allowed(inp)
	count(authz.deny) > 0 with input as inp
}

# denied_because: denied, with this exact reason among the reasons.
denied_because(inp, reason) if {
	denied(inp)
	reason in authz.deny with input as inp
}

deny_of(inp) := d if d := authz.deny with input as inp

reasons_of(inp) := r if r := authz.reasons with input as inp

obligations_of(inp) := o if o := authz.obligations with input as inp
