// Package limit enforces request rate limits and token budgets per
// principal. Its guarantee: an exchange reaches the stages after it only
// when every limit of its class had room and was charged atomically (all or
// nothing); a backend that cannot answer refuses the exchange with 503
// unless the operator chose to fail open; and the tokens charged are
// reconciled with what the upstream reports once the response is complete.
//
// Request limits are GCRA (the generic cell rate algorithm: a token bucket
// kept as one timestamp). Token budgets are calendar windows in UTC (minute,
// hour, day, month): the prompt, counted with an offline tiktoken-compatible
// tokenizer, plus the completion the request may generate is reserved
// before forwarding, and the difference to the actual usage is added or
// refunded after the response.
//
// State lives in a Backend: Memory (in process, the default) or Redis
// (shared by every replica; atomic Lua scripts, keys with TTLs, all keys of
// one principal in one cluster slot).
package limit
