# Tests for agents.rego: delegation, the models and tools an agent may name,
# and token caps.
package zt.test.agents

import data.warden.authz
import data.zt.test.fixtures as f

# --- delegation ----------------------------------------------------------------------

test_agent_for_user_may_chat_with_a_model_both_have if {
	inp := f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o"))
	f.allowed(inp)
	f.reasons_of(inp) == {"delegation: agent spiffe://ml.example.org/agent/planner acting for alice@example.org; both are entitled to chat.completions on segment inference"}
	f.obligations_of(inp) == {"max_tokens": 2048}
}

test_agent_without_user_denied if {
	inp := f.as_agent(f.planner, "", "chat.completions", f.chat("gpt-4o"))
	f.denied_because(inp, "agent spiffe://ml.example.org/agent/planner acts for no user: agents may only act on behalf of a registered user")
	not authz.allow with input as inp
}

# The one thing an agent does on its own: get a token delegated by a user.
test_agent_without_user_may_exchange_its_token if {
	inp := f.as_agent(f.planner, "", "token.exchange", f.token_exchange)
	f.allowed(inp)
	f.reasons_of(inp) == {"entitlement: agent spiffe://ml.example.org/agent/planner may token.exchange on segment control for itself"}
}

test_agent_for_unknown_user_denied if {
	inp := f.as_agent(f.planner, "mallory@example.org", "chat.completions", f.chat("gpt-4o"))
	f.denied_because(inp, "agent spiffe://ml.example.org/agent/planner acts for \"mallory@example.org\", who is not a registered user")
	not authz.allow with input as inp
}

# on_behalf_of must name a user, not another workload.
test_agent_for_an_agent_denied if {
	f.denied_because(
		f.as_agent(f.planner, f.triage, "chat.completions", f.chat("gpt-4o-mini")),
		"agent spiffe://ml.example.org/agent/planner acts for \"spiffe://ml.example.org/agent/triage\", who is not a registered user",
	)
	f.denied(f.as_agent(f.planner, f.deployer, "chat.completions", f.chat("gpt-4o-mini")))
}

test_unknown_agent_denied if {
	inp := f.as_agent("spiffe://ml.example.org/agent/rogue", f.alice, "chat.completions", f.chat("gpt-4o"))
	f.denied_because(inp, "principal spiffe://ml.example.org/agent/rogue (agent) is not registered in any segment")
}

# --- never more than either ----------------------------------------------------------

# The planner may use responses, bob may not: acting for bob, neither may.
test_agent_limited_to_user_entitlements if {
	f.allowed(f.as_agent(f.planner, f.alice, "responses", object.union(f.chat("gpt-4o"), {"path": "/v1/responses"})))
	inp := f.as_agent(f.planner, f.bob, "responses", object.union(f.chat("gpt-4o-mini"), {"path": "/v1/responses"}))
	f.deny_of(inp) == {"agent spiffe://ml.example.org/agent/planner acting for \"bob@example.org\": no entitlement of both the agent and the user, and no active grant, covers responses on segment inference"}
}

# alice may use embeddings, the planner may not: acting for alice, neither may.
test_agent_limited_to_own_entitlements if {
	inp := f.as_agent(f.planner, f.alice, "embeddings", f.embeddings("gpt-4o"))
	f.denied_because(inp, "agent spiffe://ml.example.org/agent/planner acting for \"alice@example.org\": no entitlement of both the agent and the user, and no active grant, covers embeddings on segment inference")
}

test_agent_model_not_granted_to_user_denied if {
	inp := f.as_agent(f.planner, f.bob, "chat.completions", f.chat("gpt-4o"))
	f.deny_of(inp) == {"model \"gpt-4o\" is not granted to bob@example.org, for whom agent spiffe://ml.example.org/agent/planner acts"}
	f.allowed(f.as_agent(f.planner, f.bob, "chat.completions", f.chat("gpt-4o-mini")))
}

test_agent_model_not_granted_to_agent_denied if {
	# alice has text-embedding-3-small, the planner does not.
	inp := f.as_agent(f.planner, f.alice, "models.get", f.models_get("text-embedding-3-small"))
	f.denied_because(inp, "model \"text-embedding-3-small\" is not granted to agent spiffe://ml.example.org/agent/planner")
}

test_agent_model_granted_to_neither_gives_both_reasons if {
	inp := f.as_agent(f.planner, f.alice, "chat.completions", f.chat("o1"))
	f.denied_because(inp, "model \"o1\" is not granted to agent spiffe://ml.example.org/agent/planner")
	f.denied_because(inp, "model \"o1\" is not granted to alice@example.org, for whom agent spiffe://ml.example.org/agent/planner acts")
}

test_agent_request_without_model_denied if {
	f.denied_because(
		f.as_agent(f.planner, f.alice, "chat.completions", f.chat("")),
		"model \"\" is not granted to agent spiffe://ml.example.org/agent/planner",
	)
}

# models.list names no model: no model check, no token cap.
test_agent_may_list_models if {
	inp := f.as_agent(f.planner, f.alice, "models.list", f.models_list)
	f.allowed(inp)
	f.obligations_of(inp) == {}
}

test_agent_tool_granted_to_both_allowed if {
	inp := f.as_agent(f.planner, f.alice, "tools.call", f.tool("search"))
	f.allowed(inp)
	f.reasons_of(inp) == {"delegation: agent spiffe://ml.example.org/agent/planner acting for alice@example.org; both are entitled to tools.call on segment tools"}
	f.allowed(f.as_agent(f.planner, f.bob, "tools.call", f.tool("search")))
}

test_agent_tool_not_granted_to_user_denied if {
	inp := f.as_agent(f.planner, f.alice, "tools.call", f.tool("calendar"))
	f.deny_of(inp) == {"tool \"calendar\" is not granted to alice@example.org, for whom agent spiffe://ml.example.org/agent/planner acts"}
}

test_agent_tool_not_granted_to_agent_denied if {
	inp := f.as_agent(f.planner, f.alice, "tools.call", f.tool("jira"))
	f.deny_of(inp) == {"tool \"jira\" is not granted to agent spiffe://ml.example.org/agent/planner"}
}

test_agent_without_tools_may_call_none if {
	f.denied(f.as_agent(f.triage, f.alice, "tools.call", f.tool("search")))
}

# --- users' own models and tools -------------------------------------------------------

test_user_model_not_granted_denied if {
	inp := f.as_user(f.bob, "chat.completions", f.chat("gpt-4o"))
	f.deny_of(inp) == {"model \"gpt-4o\" is not granted to user bob@example.org"}
}

test_user_tool_not_granted_denied if {
	f.denied_because(f.as_user(f.bob, "tools.call", f.tool("jira")), "tool \"jira\" is not granted to user bob@example.org")
	f.allowed(f.as_user(f.alice, "tools.call", f.tool("jira")))
}

test_user_gets_no_token_cap if {
	f.obligations_of(f.as_user(f.bob, "chat.completions", f.chat("gpt-4o-mini"))) == {}
}

# --- token caps ------------------------------------------------------------------------

# The smaller of the agent's cap (4096) and the model's (2048).
test_agent_token_cap_model_smaller if {
	f.obligations_of(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o"))) == {"max_tokens": 2048}
}

test_agent_token_cap_equal if {
	f.obligations_of(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o-mini"))) == {"max_tokens": 4096}
}

# The triage agent has no cap of its own: default_agent_max_tokens (1024).
test_agent_token_cap_default if {
	inp := f.as_agent(f.triage, f.bob, "chat.completions", f.chat("gpt-4o-mini"))
	f.allowed(inp)
	f.obligations_of(inp) == {"max_tokens": 1024}
}

# Embeddings produce no tokens: no cap.
test_agent_embeddings_not_capped if {
	inp := f.as_agent(f.planner, f.alice, "embeddings", f.embeddings("gpt-4o"))
	not authz.obligations.max_tokens with input as inp
}

# --- MCP (warden's gateway: actions mcp.*) ------------------------------------------

test_agent_may_open_an_mcp_session_and_list_tools if {
	every action in ["mcp.initialize", "mcp.notification", "mcp.tools.list", "mcp.ping", "mcp.session.end"] {
		f.allowed(f.as_agent(f.planner, f.alice, action, f.mcp_session))
	}
	# The triage agent has no tool entitlements: not even a session.
	f.denied(f.as_agent(f.triage, f.alice, "mcp.initialize", f.mcp_session))
}

# tools/list shows what this allows: warden asks per tool with no arguments.
test_agent_mcp_call_only_tools_granted_to_its_user if {
	f.allowed(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.mcp_call("search", {"q": "zero trust"})))
	f.allowed(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.tool("read_file")))
	f.deny_of(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.tool("calendar"))) == {"tool \"calendar\" is not granted to alice@example.org, for whom agent spiffe://ml.example.org/agent/planner acts"}
	f.deny_of(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.tool("jira"))) == {"tool \"jira\" is not granted to agent spiffe://ml.example.org/agent/planner"}
	f.denied(f.as_agent(f.planner, f.bob, "mcp.tools.call", f.tool("code_exec")))
}

test_read_file_limited_to_the_users_workspace if {
	reason := "read_file is limited to the workspace of the user the call is for"
	f.allowed(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alice/notes.md"})))
	f.allowed(f.as_agent(f.planner, f.bob, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/bob/report.csv"})))
	f.allowed(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alice/a/b.txt"})))

	# Another user's workspace, outside any workspace, climbing out, not a string.
	f.deny_of(f.as_agent(f.planner, f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/bob/report.csv"}))) == {reason}
	f.denied_because(f.as_agent(f.planner, f.bob, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alice/notes.md"})), reason)
	f.denied_because(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/etc/shadow"})), reason)
	f.denied_because(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alice/../bob/report.csv"})), reason)
	f.denied_because(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alice/.."})), reason)
	f.denied_because(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": ["/srv/workspaces/alice/x"]})), reason)
	f.denied_because(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/srv/workspaces/alicex/notes.md"})), reason)
}

# The reason never echoes the argument: it is audited.
test_read_file_reason_does_not_echo_the_path if {
	every msg in f.deny_of(f.as_user(f.alice, "mcp.tools.call", f.mcp_call("read_file", {"path": "/etc/secret-name"}))) {
		not contains(msg, "secret-name")
	}
}
