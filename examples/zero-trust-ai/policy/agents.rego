# Scenario: an AI agent may call only the models and tools granted to the
# user it acts for, and never more than the agent itself is allowed.
#
# An agent (principal.kind "agent") acting for a user carries the user in
# principal.on_behalf_of (a delegated warden token, docs/identity.md). Then:
#   - it is entitled to an action only if both the agent's and the user's
#     catalog entries list it for the segment;
#   - it may name only models and tools in both lists;
#   - generative calls carry a max_tokens cap.
# An agent with no user may only exchange its credential for a delegated
# token (catalog.agent_solo_actions). Users, too, may name only the models
# and tools granted to them; the agent rules build on that.
#
# Every rule starts with a test of principal.kind or action against a
# constant, so OPA's rule index skips the rules that cannot apply: a
# service's request evaluates none of this file.
package warden.authz

import data.zt.catalog
import data.zt.lib

# --- delegation --------------------------------------------------------------

deny contains msg if {
	input.principal.kind == "agent"
	input.principal.on_behalf_of == ""
	not catalog.agent_solo_actions[input.resource.segment][input.action]
	msg := sprintf("agent %s acts for no user: agents may only act on behalf of a registered user", [input.principal.id])
}

deny contains msg if {
	input.principal.kind == "agent"
	not lib.users[input.principal.on_behalf_of] # lib.user is undefined, in one lookup
	input.principal.on_behalf_of != ""
	msg := sprintf("agent %s acts for %q, who is not a registered user", [input.principal.id, input.principal.on_behalf_of])
}

# --- entitlements ------------------------------------------------------------

# Acting for a user: the intersection of the two entitlements. On its own:
# only the solo actions, and only if the agent is entitled. Both are in
# lib.delegation_grounds, keyed by agent, user ("" for itself), segment and
# action: one lookup checks that the agent and its user are registered and
# entitled.
grounds contains msg if {
	input.principal.kind == "agent"
	msg := lib.delegation_grounds[input.principal.id][input.principal.on_behalf_of][input.resource.segment][input.action]
}

# --- models and tools ----------------------------------------------------------

# Users and agents name only models granted to them. A request for a model
# action that names no model is denied too ("" is in no list). The user's
# list is lib.record.models, read straight from the catalog: one lookup
# into a constant rather than the evaluation of lib.record.
deny contains msg if {
	input.principal.kind == "user"
	catalog.model_actions[input.action]
	not catalog.principals[input.principal.id].models[input.resource.model]
	lib.known
	msg := sprintf("model %q is not granted to user %s", [input.resource.model, input.principal.id])
}

# An agent names only models granted to it and, acting for a user, to the
# user as well. lib.delegated_models holds what both lists allow; only a
# model outside it needs the rules that say which list it is missing from.
deny contains msg if {
	input.principal.kind == "agent"
	catalog.model_actions[input.action]
	not lib.delegated_models[input.principal.id][input.principal.on_behalf_of][input.resource.model]
	some msg in agent_model_denials
}

agent_model_denials contains msg if {
	not lib.record.models[input.resource.model]
	lib.known
	msg := sprintf("model %q is not granted to agent %s", [input.resource.model, input.principal.id])
}

agent_model_denials contains msg if {
	not lib.user.models[input.resource.model]
	lib.user
	msg := sprintf("model %q is not granted to %s, for whom agent %s acts", [input.resource.model, input.principal.on_behalf_of, input.principal.id])
}

deny contains msg if {
	catalog.tool_call_actions[input.action]
	input.principal.kind == "user"
	not catalog.principals[input.principal.id].tools[input.resource.tool] # lib.record.tools
	lib.known
	msg := sprintf("tool %q is not granted to user %s", [input.resource.tool, input.principal.id])
}

# The same for tools (lib.delegated_tools).
deny contains msg if {
	input.principal.kind == "agent"
	catalog.tool_call_actions[input.action]
	not lib.delegated_tools[input.principal.id][input.principal.on_behalf_of][input.resource.tool]
	some msg in agent_tool_denials
}

agent_tool_denials contains msg if {
	not lib.record.tools[input.resource.tool]
	lib.known
	msg := sprintf("tool %q is not granted to agent %s", [input.resource.tool, input.principal.id])
}

agent_tool_denials contains msg if {
	not lib.user.tools[input.resource.tool]
	lib.user
	msg := sprintf("tool %q is not granted to %s, for whom agent %s acts", [input.resource.tool, input.principal.on_behalf_of, input.principal.id])
}

# --- tool arguments ------------------------------------------------------------

# Argument constraint: read_file reads only inside the workspace of the user
# the call is for (the caller's own; for an agent, its user's), and never
# climbs out of it with "..". warden puts a tools/call's arguments in
# input.resource.arguments. The rule binds the argument, so the list check
# (warden asks with no arguments) still shows the tool, and every call is
# checked; a path that is not a string, or a user without a workspace, is
# denied. Reasons are audited: the sentence never echoes the argument.
deny contains "read_file is limited to the workspace of the user the call is for" if {
	catalog.tool_call_actions[input.action]
	input.resource.tool == "read_file"
	path := input.resource.arguments.path
	not in_workspace(path, tool_user.workspace)
}

# tool_user is the catalog entry of the user a tool call is for.
tool_user := lib.record if input.principal.kind == "user"

tool_user := lib.user if input.principal.kind == "agent"

in_workspace(path, ws) if {
	is_string(path)
	startswith(path, ws)
	not regex.match(`(^|/)\.\.(/|$)`, path)
}

# --- token caps ----------------------------------------------------------------

# An agent's generative calls are capped at the smaller of its own cap and
# the model's; warden lowers the request's max_tokens to it.
obligations["max_tokens"] := min([own, object.get(catalog.model_max_tokens, input.resource.model, own)]) if {
	input.principal.kind == "agent"
	catalog.generative_actions[input.action]
	own := lib.token_caps[input.principal.id]
}
