# Segments, the flows allowed between them, and the action vocabulary.
#
# This is data written as Rego: ground values only (no references, no
# computation), so that a lookup on the request path costs an index into a
# constant, not a rebuild of the table.
package zt.catalog

# segments are the segments a route may belong to. A route whose segment is
# not listed here is denied: a new segment has to be added on purpose.
#   training    training data and training jobs (api http)
#   inference   model serving (api openai)
#   deployment  deployment configuration and rollouts (api http)
#   tools       MCP tool servers agents call (api mcp: actions mcp.*)
#   control     warden's own endpoints: token exchange, MFA step-up, grants, sanctions
segments := {"training", "inference", "deployment", "tools", "control"}

# flows are the cross-segment calls that may happen at all:
# flows[FROM][TO] is the set of actions a principal whose home segment is
# FROM may perform on a route in segment TO (FROM != TO). Anything not listed
# is a cross-segment call and is denied. A flow is necessary, not sufficient:
# the caller still needs an entitlement (catalog/principals.rego) or an active
# JIT grant. An active JIT grant is the only way across a missing flow.
#
# Calls inside a principal's home segment need no flow, only an entitlement.
flows := {
	# Training is isolated. The one exception: the evaluator scores held-out
	# data with the served embedding and chat models. The training-data
	# writer has a flow here too (it is in segment training), but the hard
	# boundary in training.rego still denies it everything except writes.
	"training": {"inference": {"embeddings", "chat.completions"}},
	# Inference workloads call nothing outside inference. No flow to training
	# or deployment exists, and inference.rego denies them even with a grant.
	"inference": {},
	# After a rollout the deployer checks that the served model answers to
	# its name: a read of the model list / one model on the inference segment.
	"deployment": {"inference": {"models.list", "models.get"}},
	# People and the agents acting for them.
	"workspace": {
		# Use the served models.
		"inference": {"chat.completions", "completions", "embeddings", "responses", "models.list", "models.get"},
		# Speak MCP to the tool servers (the session, tools/list) and call
		# their tools. Which tools, and with which arguments: agents.rego.
		"tools": {
			"mcp.tools.call", "mcp.initialize", "mcp.notification", "mcp.ping", "mcp.tools.list",
			"mcp.stream", "mcp.session.end", "mcp.response",
			"tools.call", # the name of a tool call before warden's MCP gateway (tool_call_actions)
		},
		# Data scientists may read (never write) training data; writes go
		# through the training service's pipeline.
		"training": {"http.get"},
		# Read deployment status. Changing deployment configuration needs a
		# JIT grant approved by someone else (grants.rego).
		"deployment": {"http.get"},
		# warden's own endpoints: MFA step-up, token exchange (agents get a
		# delegated token there), just-in-time grants.
		"control": {
			"mfa.verify", "token.exchange",
			"grant.request", "grant.list", "grant.deny", "grant.revoke", "grant.approve",
			# sanctions (docs/respond.md): security admins only, see sanctions_admin_role
			"sanction.list", "sanction.create", "sanction.lift",
		},
	},
}

# model_actions name a model (resource.model); for them the model must be
# granted to a human caller and, for an agent, to the agent and its user.
model_actions := {"chat.completions", "completions", "embeddings", "responses", "models.get"}

# tool_call_actions call a tool (resource.tool): the tool must be granted to
# a human caller and, for an agent, to the agent and its user. tools/list
# answers show only such tools (warden asks policy per tool, with no
# arguments). "tools.call" is kept for inputs written before warden's MCP
# gateway, which names a call mcp.tools.call.
tool_call_actions := {"mcp.tools.call", "tools.call"}

# generative_actions produce tokens; agents get a max_tokens cap on them.
generative_actions := {"chat.completions", "completions", "responses"}

# agent_solo_actions are what an agent may do without acting for a user:
# exchange its own credential for a token delegated by a user.
agent_solo_actions := {"control": {"token.exchange"}}

# user_self_service are warden endpoints any registered user may call: the
# MFA step-up (which checks the code itself), asking for a JIT grant, and
# listing, withdrawing (grant.deny) or giving up (grant.revoke) grants;
# warden lets a user see and act on only their own grants unless they hold
# the approver role. Approving is not self-service: see grant_approver_role.
user_self_service := {"mfa.verify", "grant.request", "grant.list", "grant.deny", "grant.revoke"}

# The role a user must hold to approve a JIT grant. It must equal
# policy.grants.approver_role in warden.yaml (default "grant-approver");
# warden checks it again, and refuses approval by the requester or grantee.
grant_approver_role := "grant-approver"

# The role a user must hold to list, impose and lift sanctions (quarantine,
# require_mfa, throttle: docs/respond.md). Services and agents never manage
# sanctions, not even with the role.
sanctions_admin_role := "security-admin"

# sanction_actions are the actions of warden's sanctions endpoints.
sanction_actions := {"sanction.list", "sanction.create", "sanction.lift"}
