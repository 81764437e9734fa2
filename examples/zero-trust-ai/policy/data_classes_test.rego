# Tests for data_classes.rego: secrets denied, PII masked.
package zt.test.data_classes

import data.zt.test.fixtures as f

alice_chat := f.as_user(f.alice, "chat.completions", f.chat("gpt-4o"))

test_secret_denied if {
	inp := f.with_context(alice_chat, {"data_classes": ["secret"], "finding_types": ["aws_access_key"]})
	f.deny_of(inp) == {"request carries secret data (aws_access_key): secrets are never forwarded"}
}

test_secret_denied_for_every_principal if {
	f.denied(f.with_context(f.as_trainer("http.post", f.training_post), {"data_classes": ["pii", "secret"], "finding_types": ["email", "private_key"]}))
	f.denied(f.with_context(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o")), {"data_classes": ["secret"]}))
}

test_pii_masked if {
	inp := f.with_context(alice_chat, {"data_classes": ["pii"], "finding_types": ["email"]})
	f.allowed(inp)
	f.obligations_of(inp) == {"mask": {"pii": "mask"}}
	"pii in the request: mask" in f.reasons_of(inp)
}

test_payment_card_blocked if {
	inp := f.with_context(alice_chat, {"data_classes": ["pii"], "finding_types": ["email", "payment_card"]})
	f.obligations_of(inp) == {"mask": {"pii": "mask", "payment_card": "block"}}
}

test_pii_in_training_data_masked if {
	inp := f.with_context(f.as_trainer("http.post", f.training_post), {"data_classes": ["pii"], "finding_types": ["phone"]})
	f.allowed(inp)
	f.obligations_of(inp) == {"mask": {"pii": "mask"}}
}

test_agent_pii_masked_and_capped if {
	inp := f.with_context(f.as_agent(f.planner, f.alice, "chat.completions", f.chat("gpt-4o")), {"data_classes": ["pii"]})
	f.obligations_of(inp) == {"mask": {"pii": "mask"}, "max_tokens": 2048}
}

test_no_findings_no_mask if {
	f.obligations_of(alice_chat) == {}
}

# A prompt injection is denied, direct or indirect, with a reason that says
# only that.
test_injection_denied if {
	inp := f.with_context(alice_chat, {"data_classes": ["injection"], "finding_types": ["injection"]})
	f.deny_of(inp) == {"prompt injection detected in the request"}
	f.denied(f.with_context(alice_chat, {"data_classes": ["injection", "pii"], "finding_types": ["email", "indirect_injection"]}))
}

# Classes with no rule here add nothing.
test_other_classes_ignored if {
	inp := f.with_context(alice_chat, {"data_classes": ["leak"], "finding_types": ["canary_leak"]})
	f.allowed(inp)
	f.obligations_of(inp) == {}
}
