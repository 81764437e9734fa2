# Who may do what: every principal warden should let in, keyed by
# input.principal.id (a SPIFFE ID for workloads, the OIDC subject or e-mail
# for people, the API key subject otherwise). A principal not listed here is
# denied, whatever its credential says.
#
# Fields:
#   kind          user | service | agent; must match input.principal.kind
#   home          the principal's own segment. Calls to routes in any other
#                 segment are cross-segment calls (see flows in segments.rego).
#                 People and agents live in "workspace", a segment with no
#                 routes of its own.
#   profile       optional hard boundary enforced by a focused file:
#                 "training-writer" (training.rego), "inference-server"
#                 (inference.rego). No entitlement or grant lifts it.
#   entitlements  {segment: {actions}} the principal may perform.
#   models        users and agents: the models they may name. An agent gets
#                 the intersection of its own list and its user's.
#   tools         users and agents: the MCP tools they may call, intersected
#                 the same way.
#   workspace     users: the directory their tools' file arguments must stay
#                 in (read_file; an agent gets the workspace of its user).
#   max_tokens    agents: cap on max_tokens (default default_agent_max_tokens).
#   usual         where and when the principal normally works (scrutiny.rego):
#                 networks  names of configured networks (context.networks)
#                 countries ISO 3166-1 alpha-2 codes (context.geo.country)
#                 hours     {"from": H, "to": H} local hours, from inclusive,
#                           to exclusive; from > to wraps past midnight,
#                           {"from": 0, "to": 24} is any hour.
#                 Missing: default_usual.
package zt.catalog

principals := {
	# Scenario: a training service may write training data and nothing else.
	"spiffe://ml.example.org/training/trainer": {
		"kind": "service",
		"home": "training",
		"profile": "training-writer",
		"entitlements": {"training": {"http.post", "http.put"}},
		"usual": {"networks": {"training-cluster"}, "countries": {"DE"}, "hours": {"from": 0, "to": 24}},
	},
	# A second training workload: reads training data and scores it against
	# the served models (the one training -> inference flow).
	"spiffe://ml.example.org/training/evaluator": {
		"kind": "service",
		"home": "training",
		"entitlements": {
			"training": {"http.get"},
			"inference": {"embeddings", "chat.completions"},
		},
		"usual": {"networks": {"training-cluster"}, "countries": {"DE"}, "hours": {"from": 0, "to": 24}},
	},
	# Scenario: an inference service has no access to training data or
	# deployment configuration. It may use the served models (a RAG
	# orchestrator calling embeddings and chat).
	"spiffe://ml.example.org/inference/server": {
		"kind": "service",
		"home": "inference",
		"profile": "inference-server",
		"entitlements": {"inference": {"chat.completions", "embeddings", "models.list", "models.get"}},
		"usual": {"networks": {"inference-cluster"}, "countries": {"DE", "NL"}, "hours": {"from": 0, "to": 24}},
	},
	# The deployment pipeline: manages deployment configuration and checks the
	# served models after a rollout. Rollouts run 06:00-22:00 local time
	# (a night change freeze); outside it the service is denied.
	"spiffe://ml.example.org/deployment/deployer": {
		"kind": "service",
		"home": "deployment",
		"entitlements": {
			"deployment": {"http.get", "http.post", "http.put", "http.delete"},
			"inference": {"models.list", "models.get"},
		},
		"usual": {"networks": {"deploy-cluster"}, "countries": {"DE"}, "hours": {"from": 6, "to": 22}},
	},
	# An ML engineer.
	"alice@example.org": {
		"kind": "user",
		"home": "workspace",
		"entitlements": {
			"inference": {"chat.completions", "completions", "embeddings", "responses", "models.list", "models.get"},
			"tools": {"tools.call", "mcp.tools.call", "mcp.initialize", "mcp.notification", "mcp.ping", "mcp.tools.list", "mcp.stream", "mcp.session.end", "mcp.response"},
			"training": {"http.get"},
			"deployment": {"http.get"},
		},
		"models": {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"},
		"tools": {"search", "jira", "read_file"},
		"workspace": "/srv/workspaces/alice/",
		"usual": {"networks": {"corp-vpn", "office"}, "countries": {"DE", "NL"}, "hours": {"from": 7, "to": 20}},
	},
	# An analyst: chat with the small model and web search, nothing else.
	# No "usual" entry: default_usual applies.
	"bob@example.org": {
		"kind": "user",
		"home": "workspace",
		"entitlements": {
			"inference": {"chat.completions", "models.list"},
			"tools": {"tools.call", "mcp.tools.call", "mcp.initialize", "mcp.notification", "mcp.ping", "mcp.tools.list", "mcp.stream", "mcp.session.end", "mcp.response"},
		},
		"models": {"gpt-4o-mini"},
		"tools": {"search", "read_file"},
		"workspace": "/srv/workspaces/bob/",
	},
	# Scenario: an AI agent may call only the models and tools granted to the
	# user it acts for, and never more than the agent itself is allowed.
	# The planner may use gpt-4o and gpt-4o-mini and three tools; acting for
	# alice it gets gpt-4o, gpt-4o-mini and search (alice has no calendar or
	# code_exec; the planner has no jira); acting for bob, gpt-4o-mini and search.
	# Both may let it read_file, each only inside their own workspace.
	"spiffe://ml.example.org/agent/planner": {
		"kind": "agent",
		"home": "workspace",
		"entitlements": {
			"inference": {"chat.completions", "responses", "models.list"},
			"tools": {"tools.call", "mcp.tools.call", "mcp.initialize", "mcp.notification", "mcp.ping", "mcp.tools.list", "mcp.stream", "mcp.session.end", "mcp.response"},
			"control": {"token.exchange"},
		},
		"models": {"gpt-4o", "gpt-4o-mini"},
		"tools": {"search", "calendar", "code_exec", "read_file"},
		"max_tokens": 4096,
		"usual": {"networks": {"agent-runtime"}, "countries": {"DE"}, "hours": {"from": 0, "to": 24}},
	},
	# A triage agent with no max_tokens of its own: default_agent_max_tokens.
	"spiffe://ml.example.org/agent/triage": {
		"kind": "agent",
		"home": "workspace",
		"entitlements": {
			"inference": {"chat.completions"},
			"control": {"token.exchange"},
		},
		"models": {"gpt-4o-mini"},
		"tools": set(),
		"usual": {"networks": {"agent-runtime"}, "countries": {"DE"}, "hours": {"from": 0, "to": 24}},
	},
}

# default_usual applies to a principal without its own "usual" entry: the
# corporate networks, the EU countries the company works from, office hours.
# A workload without its own entry is therefore unusual almost everywhere and
# denied (it has no MFA path): give every service and agent an entry.
default_usual := {
	"networks": {"corp-vpn", "office"},
	"countries": {"DE", "NL", "FR", "AT"},
	"hours": {"from": 7, "to": 20},
}

# Per-model cap on max_tokens for agents; the obligation is the smallest of
# this and the agent's own cap.
model_max_tokens := {
	"gpt-4o": 2048,
	"gpt-4o-mini": 4096,
}

# Cap for agents without a max_tokens of their own.
default_agent_max_tokens := 1024
