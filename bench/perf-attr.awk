# perf-attr.awk attributes the samples of `perf script -F comm,tid,ip,sym`
# (from `perf record -g` of a warden process) to the parts of warden's
# request path, and prints each part's share of the process's CPU samples.
# bench/run.sh uses it with PROFILE=1. A sample goes to the first category,
# in the order below, that has a matching frame anywhere on its stack. So a
# frame that sits inside another (the policy stage runs inside the body
# stage's next) is counted where it does its own work.
#
#   perf script -i perf.data -F comm,tid,ip,sym | awk -f bench/perf-attr.awk

function classify(s) {
	if (s ~ /gcAssistAlloc|gcBgMarkWorker|runtime\.bgsweep|runtime\.bgscavenge|gcDrain|runtime\.gcStart|runtime\.markroot|runtime\.gcMark/)
		return "Go GC"
	if (s ~ /runtime\.newstack|runtime\.copystack|runtime\.morestack/)
		return "goroutine stack growth"
	if (s ~ /audit\.\(\*Log\)\.run|audit\.\(\*Log\)\.writeBatch|audit\.\(\*Log\)\.commit/)
		return "audit writer: chain, write, fsync"
	if (s ~ /policy\.\(\*Engine\)|policy\.NewInput|policy\.\(\*Input\)|policy\.EnforceObligations|policy\.\(\*Stage\)\.decide|policy\.memoKey|policy\.newInput/)
		return "policy: OPA evaluation and decision memo"
	if (s ~ /httputil\.\(\*ReverseProxy\)|persistConn|net\/http\.\(\*Transport\)/)
		return "reverse proxy and upstream HTTP client"
	if (s ~ /audit\.\(\*Log\)\.Append|audit\.\(\*Stage\)\.record|audit\.encode|audit\.normalize/)
		return "audit stage: build, encode, queue"
	# Stages wrap the stages after them (audit → observe → router → identify →
	# sanctions → body → assess → grants → guards → policy → limits → model
	# gate → proxy), so a category that matches a stage's Handle frame must
	# come after the categories of every stage inside it; the behaviour
	# observer is matched on its own work only (its stage wraps everything).
	if (s ~ /gateway\.\(\*syncUpstream\)/)
		return "upstream client (plain http)"
	if (s ~ /behavior\.\(\*Engine\)|behavior\.Sketch|behavior\.PromptText|behavior\.ObservationOf/)
		return "behaviour observer"
	if (s ~ /warden\/internal\/limit/)
		return "limits: rate, tokens"
	if (s ~ /warden\/internal\/registry/)
		return "model gate"
	if (s ~ /warden\/internal\/(inspect|guard)/)
		return "guards: injection, DLP, canary"
	if (s ~ /warden\/internal\/(assess|policy\/grant)/)
		return "context and grants"
	if (s ~ /warden\/internal\/mcp/)
		return "MCP messages"
	if (s ~ /gateway\.\(\*BodyReader\)/)
		return "body read and JSON check"
	if (s ~ /warden\/internal\/respond/)
		return "sanctions"
	if (s ~ /identity\./)
		return "identity: API key"
	if (s ~ /net\/http\.\(\*conn\)\.serve|gateway\.\(\*Handler\)/)
		return "inbound HTTP server and chain"
	if (s ~ /runtime\.schedule|runtime\.findRunnable|runtime\.mcall|runtime\.park_m|runtime\.goexit0|runtime\.netpoll|runtime\.sysmon|runtime\.mstart/)
		return "Go scheduler and netpoll"
	return "other"
}

function flush() {
	if (have) {
		count[classify(stack)]++
		total++
	}
	stack = ""
	have = 0
}

# A sample starts with an unindented "comm tid" line; its frames follow,
# indented, as "address symbol+offset (object)".
/^[^ \t]/ { flush(); have = 1; next }
/^[ \t]+[0-9a-f]+ / { stack = stack " " $2; next }
END {
	flush()
	for (k in count)
		printf "%5.1f%%  %s\n", count[k] * 100 / total, k
	printf "%d samples\n", total > "/dev/stderr"
}
