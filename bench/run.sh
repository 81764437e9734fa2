#!/usr/bin/env bash
# warden load harness (issue #3). See bench/README.md.
#
# Runs one wrk workload (POST /v1/chat/completions, ~320-byte JSON body)
# against three targets in turn, in the same run, with the same settings:
#   direct  wrk -> stand-in upstream
#   nginx   wrk -> nginx (plain reverse proxy, keepalive upstream) -> stand-in
#   warden  wrk -> warden (audit with fsync group commit, API key, body
#           validation, OPA policy, proxy) -> stand-in
# and prints requests/s, p50, p99, the ratio warden/nginx and the p99 added
# over direct. The summary also goes to bench/out/latest.md.
#
# Knobs (environment): THREADS CONNS DURATION WARMUP ROUNDS PIN CLIENT_CPUS
# SERVER_CPUS BASE_PORT KEEP_WORKDIR; see bench/README.md.
set -euo pipefail

# ---------------------------------------------------------------- settings
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}          # one level, or several separated by spaces: "16 64"
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
ROUNDS=${ROUNDS:-1}         # >1 repeats direct/nginx/warden and reports the median round
PIN=${PIN:-auto}            # auto: pin when there are at least 2 CPUs; 1: pin; 0: do not pin
CLIENT_CPUS=${CLIENT_CPUS:-0}
SERVER_CPUS=${SERVER_CPUS:-1}
BASE_PORT=${BASE_PORT:-18080}
KEEP_WORKDIR=${KEEP_WORKDIR:-0}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT_DIR="$HERE/out"
OUT_MD="$OUT_DIR/latest.md"
LUA="$HERE/chat.lua"

PORT_STANDIN=$BASE_PORT
PORT_NGINX=$((BASE_PORT + 1))
PORT_WARDEN=$((BASE_PORT + 2))
PORT_ADMIN=$((BASE_PORT + 3))

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# seconds parses a wrk duration (15, 15s, 2m, 1h) into seconds.
seconds() {
	local d=$1
	case $d in
	*s) echo "${d%s}" ;;
	*m) echo $((${d%m} * 60)) ;;
	*h) echo $((${d%h} * 3600)) ;;
	*) echo "$d" ;;
	esac
}

for v in THREADS ROUNDS BASE_PORT; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer"
done
for c in $CONNS; do
	[[ $c =~ ^[0-9]+$ && $c -ge $THREADS ]] || die "CONNS entries must be integers >= THREADS ($THREADS): $c"
done
for d in "$DURATION" "$WARMUP"; do
	[[ $d =~ ^[0-9]+[smh]?$ ]] || die "durations look like 15s, 2m or 30: $d"
done
DUR_S=$(seconds "$DURATION")
WARM_S=$(seconds "$WARMUP")

# ------------------------------------------------------------ prerequisites
# wrk and nginx come from Debian, installed only when missing.
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if ((${#missing[@]})); then
	log "installing ${missing[*]} from Debian"
	SUDO=()
	((EUID == 0)) || SUDO=(sudo)
	timeout 600 "${SUDO[@]}" apt-get update -q
	timeout 600 env DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -q "${missing[@]}"
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
command -v curl >/dev/null 2>&1 || die "curl is required"
command -v go >/dev/null 2>&1 || die "go is required"

# CPU pinning: wrk on CLIENT_CPUS, every server (stand-in, nginx, warden) on
# SERVER_CPUS, identically for the three targets.
NCPU=$(nproc)
if [[ $PIN == auto ]]; then
	if ((NCPU >= 2)) && command -v taskset >/dev/null 2>&1; then PIN=1; else PIN=0; fi
fi
if [[ $PIN == 1 ]]; then
	command -v taskset >/dev/null 2>&1 || die "PIN=1 needs taskset (util-linux)"
	CLIENT_RUN=(taskset -c "$CLIENT_CPUS")
	SERVER_RUN=(taskset -c "$SERVER_CPUS")
	# Count the server CPUs for nginx's worker_processes (Go reads the affinity mask itself).
	SERVER_NCPU=$(taskset -c "$SERVER_CPUS" nproc)
	PIN_DESC="wrk on CPU $CLIENT_CPUS; stand-in + proxy on CPU $SERVER_CPUS"
else
	CLIENT_RUN=()
	SERVER_RUN=()
	SERVER_NCPU=$NCPU
	PIN_DESC="not pinned (all processes share $NCPU CPUs)"
fi

# Only 127.0.0.1, and only ports nobody else is using.
for p in "$PORT_STANDIN" "$PORT_NGINX" "$PORT_WARDEN" "$PORT_ADMIN"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "port 127.0.0.1:$p is in use; set BASE_PORT to a free range"
	fi
done

# ---------------------------------------------------------------- clean-up
WORK=$(mktemp -d "${TMPDIR:-/tmp}/warden-bench.XXXXXX")
PIDS=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [[ $KEEP_WORKDIR == 1 ]]; then
		log "work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for runs a check until it succeeds, for at most $1 seconds.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || die "$what not ready after ${secs}s (logs in $WORK)"
		sleep 0.1
	done
}

# ------------------------------------------------------------------- build
log "building warden"
mkdir -p "$WORK/bin"
(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/warden" ./cmd/warden)
WARDEN="$WORK/bin/warden"

# Secrets for this run only.
UPSTREAM_KEY="bench-upstream-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_UPSTREAM_KEY=$UPSTREAM_KEY

# ---------------------------------------------------------------- stand-in
log "starting the stand-in upstream on 127.0.0.1:$PORT_STANDIN"
"${SERVER_RUN[@]}" "$WARDEN" standin --addr "127.0.0.1:$PORT_STANDIN" --api-key-env BENCH_UPSTREAM_KEY \
	>"$WORK/standin.log" 2>&1 &
PIDS+=($!)

# ------------------------------------------------------------------- nginx
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/tmp"
NGINX_USER=""
((EUID == 0)) && NGINX_USER="user root root;" # workers keep the current user instead of nobody
cat >"$WORK/nginx/nginx.conf" <<EOF
# Plain reverse proxy for the benchmark; generated by bench/run.sh.
$NGINX_USER
worker_processes $SERVER_NCPU;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $WORK/nginx/tmp/body;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    # Keep client connections for the whole run, as Go servers do.
    keepalive_requests 1000000;
    upstream standin {
        server 127.0.0.1:$PORT_STANDIN;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$PORT_NGINX;
        location / {
            proxy_pass http://standin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
log "starting nginx on 127.0.0.1:$PORT_NGINX ($SERVER_NCPU worker(s))"
timeout 30 "$NGINX" -t -q -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" ||
	die "nginx config test failed"
"${SERVER_RUN[@]}" "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" \
	-g 'daemon off;' >"$WORK/nginx/logs/stdout.log" 2>&1 &
PIDS+=($!)

# ------------------------------------------------------------------ warden
mkdir -p "$WORK/warden"
cp -R "$ROOT/examples/quickstart/policy" "$WORK/warden/policy"
cat >"$WORK/warden/warden.yaml" <<EOF
# Generated by bench/run.sh. Plaintext listener on loopback only.
listeners:
  - name: bench
    address: 127.0.0.1:$PORT_WARDEN
    tls:
      mode: "off"
admin:
  address: 127.0.0.1:$PORT_ADMIN
routes:
  - name: inference
    prefix: /v1/
    api: openai
    segment: inference
    upstream:
      url: http://127.0.0.1:$PORT_STANDIN
      timeout: 30s
      credential:
        env: BENCH_UPSTREAM_KEY
keys:
  path: ./keys.json
policy:
  dir: ./policy
audit:
  path: ./audit.log
EOF
KEY_JSON=$(timeout 30 "$WARDEN" keys create --store "$WORK/warden/keys.json" --subject bench-client \
	--scopes 'inference:*' --json)
CLIENT_KEY=$(printf '%s' "$KEY_JSON" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[[ $CLIENT_KEY == wk_* ]] || die "could not read the key from 'warden keys create --json'"
log "starting warden on 127.0.0.1:$PORT_WARDEN (admin 127.0.0.1:$PORT_ADMIN)"
"${SERVER_RUN[@]}" "$WARDEN" serve --config "$WORK/warden/warden.yaml" --log-level warn \
	>"$WORK/warden/stdout.log" 2>"$WORK/warden/stderr.log" &
WARDEN_PID=$!
PIDS+=("$WARDEN_PID")

# --------------------------------------------------------------- readiness
BODY=$(sed -n "s/^  *\.\. '\(.*\)'\$/\1/p; s/^wrk.body = '\(.*\)'\$/\1/p" "$LUA" | tr -d '\n')
[[ $BODY == '{'*'}' ]] || die "could not read the request body from $LUA"

# probe sends the benchmark request once and succeeds only on exactly 200.
probe() {
	local port=$1 auth=$2 code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -X POST \
		-H 'Content-Type: application/json' -H "Authorization: $auth" \
		--data-binary "$BODY" "http://127.0.0.1:$port/v1/chat/completions") || return 1
	[[ $code == 200 ]]
}
wait_for 20 "stand-in" probe "$PORT_STANDIN" "Bearer $UPSTREAM_KEY"
wait_for 20 "nginx" probe "$PORT_NGINX" "Bearer $UPSTREAM_KEY"
wait_for 30 "warden /readyz" curl -fsS --max-time 2 "http://127.0.0.1:$PORT_ADMIN/readyz"
wait_for 20 "warden" probe "$PORT_WARDEN" "Bearer $CLIENT_KEY"
# The answer must be the stand-in's completion, not an error passed through.
for t in "$PORT_STANDIN:Bearer $UPSTREAM_KEY" "$PORT_NGINX:Bearer $UPSTREAM_KEY" "$PORT_WARDEN:Bearer $CLIENT_KEY"; do
	resp=$(curl -sS --max-time 5 -X POST -H 'Content-Type: application/json' -H "Authorization: ${t#*:}" \
		--data-binary "$BODY" "http://127.0.0.1:${t%%:*}/v1/chat/completions")
	[[ $resp == *'"chat.completion"'* ]] || die "unexpected answer from port ${t%%:*}: ${resp:0:200}"
done
log "all targets ready"

# ---------------------------------------------------------------- workload
declare -A AUTH=([direct]="Bearer $UPSTREAM_KEY" [nginx]="Bearer $UPSTREAM_KEY" [warden]="Bearer $CLIENT_KEY")
declare -A PORT=([direct]=$PORT_STANDIN [nginx]=$PORT_NGINX [warden]=$PORT_WARDEN)
TARGETS=(direct nginx warden)
RESULT=""
WARDEN_COMPLETED=0 # requests wrk saw complete against warden (warm-ups included)

# run_wrk TARGET CONNS SECONDS runs wrk once and sets RESULT to its WRK_RESULT
# line; it stops the whole run on any non-2xx response or socket error. It runs
# in the main shell (never in $(...)) so that die ends the script.
run_wrk() {
	local target=$1 conns=$2 secs=$3 out line
	out=$(WRK_AUTH=${AUTH[$target]} timeout $((secs + 60)) "${CLIENT_RUN[@]}" wrk --latency \
		-t"$THREADS" -c"$conns" -d"${secs}s" --timeout 10s -s "$LUA" "http://127.0.0.1:${PORT[$target]}") ||
		die "wrk against $target failed: $out"
	printf '%s\n' "$out" >>"$WORK/wrk-$target-c$conns.txt"
	line=$(grep '^WRK_RESULT ' <<<"$out") || die "no WRK_RESULT line from wrk against $target"
	# Cross-check the hook against wrk's own text output.
	if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
		die "$target returned non-2xx responses: $(grep 'Non-2xx' <<<"$out")"
	fi
	local non2xx errs requests
	non2xx=$(field non2xx "$line")
	errs=$(($(field connect "$line") + $(field read "$line") + $(field write "$line") + $(field timeout "$line")))
	requests=$(field requests "$line")
	((non2xx == 0)) || die "$target returned $non2xx non-2xx responses"
	((errs == 0)) || die "$target had $errs socket errors (connect/read/write/timeout): $line"
	((requests > 0)) || die "$target completed no requests"
	if [[ $target == warden ]]; then WARDEN_COMPLETED=$((WARDEN_COMPLETED + requests)); fi
	RESULT=$line
}

# field NAME LINE prints the value of NAME=value in LINE.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# ms formats microseconds as milliseconds with two decimals.
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }

declare -A RES # RES[target,conns,round] = WRK_RESULT line
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for c in $CONNS; do
	for ((r = 1; r <= ROUNDS; r++)); do
		for t in "${TARGETS[@]}"; do
			log "c=$c round $r/$ROUNDS: $t warm-up ${WARM_S}s"
			run_wrk "$t" "$c" "$WARM_S"
			log "c=$c round $r/$ROUNDS: $t measure ${DUR_S}s"
			run_wrk "$t" "$c" "$DUR_S"
			RES[$t,$c,$r]=$RESULT
			log "  $(sed 's/^WRK_RESULT //' <<<"${RES[$t,$c,$r]}")"
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------- audit
# Stop warden gracefully so the audit log is flushed and closed, then verify it.
log "stopping warden and verifying its audit log"
kill -TERM "$WARDEN_PID"
for _ in $(seq 200); do
	kill -0 "$WARDEN_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$WARDEN_PID" 2>/dev/null && die "warden did not stop within 20s"
wait "$WARDEN_PID" || die "warden exited with an error (see $WORK/warden/stderr.log)"
VERIFY=$(timeout 120 "$WARDEN" audit verify --log "$WORK/warden/audit.log") || die "audit verify failed: $VERIFY"
AUDIT_RECORDS=$(sed -n 's/^ok: \([0-9]*\) records.*/\1/p' <<<"$VERIFY")
[[ -n $AUDIT_RECORDS ]] || die "could not read the record count from: $VERIFY"
# Every request wrk saw complete was answered by warden, and warden answers only
# after the record is durable; requests cut off when wrk stops are recorded too,
# and so are the readiness probes.
((AUDIT_RECORDS >= WARDEN_COMPLETED)) ||
	die "audit log has $AUDIT_RECORDS records but wrk completed $WARDEN_COMPLETED requests through warden"
AUDIT_DENIED=$(grep -c '"status":[45]' "$WORK/warden/audit.log" || true)

# ----------------------------------------------------------------- summary
# median_round TARGET CONNS -> the round whose rps is the median for TARGET.
median_round() {
	local t=$1 c=$2 r
	for ((r = 1; r <= ROUNDS; r++)); do
		echo "$(field rps "${RES[$t,$c,$r]}") $r"
	done | sort -n | awk '{ a[NR] = $2 } END { print a[int((NR + 1) / 2)] }'
}

CPU_MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
GO_VERSION=$(go env GOVERSION)
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
WRK_VERSION=$(wrk -v 2>&1 | head -1 | awk '{ print $2 }' || true)
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CMD="THREADS=$THREADS CONNS=\"$CONNS\" DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS PIN=$PIN bash bench/run.sh"

{
	echo "# warden load benchmark"
	echo
	echo "- date: $DATE"
	echo "- machine: $NCPU CPU ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
	echo "- software: $GO_VERSION, $NGINX_VERSION, wrk $WRK_VERSION"
	echo "- command: \`$CMD\`"
	echo "- workload: wrk -t$THREADS -d$DURATION --latency, POST /v1/chat/completions, ${#BODY}-byte JSON body; ${WARMUP} warm-up per target; $ROUNDS round(s), median round by req/s shown"
	echo "- pinning: $PIN_DESC"
	echo "- audit: \`warden audit verify\`: $VERIFY; wrk completed $WARDEN_COMPLETED requests through warden (warm-ups included), $AUDIT_DENIED records with a 4xx/5xx status"
	echo
	for c in $CONNS; do
		echo "## $c connections"
		echo
		echo "| target | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | non-2xx |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		declare -A MED=()
		for t in "${TARGETS[@]}"; do
			r=$(median_round "$t" "$c")
			l=${RES[$t,$c,$r]}
			MED[$t]=$l
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(field rps "$l")" \
				"$(ms "$(field p50_us "$l")")" "$(ms "$(field p90_us "$l")")" "$(ms "$(field p99_us "$l")")" \
				"$(ms "$(field max_us "$l")")" "$(field requests "$l")" "$(field non2xx "$l")"
		done
		if ((ROUNDS > 1)); then
			echo
			echo "All rounds (req/s, p99 ms):"
			echo
			for t in "${TARGETS[@]}"; do
				printf -- '- %s:' "$t"
				for ((r = 1; r <= ROUNDS; r++)); do
					printf ' %s (%s)' "$(field rps "${RES[$t,$c,$r]}")" "$(ms "$(field p99_us "${RES[$t,$c,$r]}")")"
				done
				echo
			done
		fi
		echo
		awk -v wr="$(field rps "${MED[warden]}")" -v nr="$(field rps "${MED[nginx]}")" \
			-v dp="$(field p99_us "${MED[direct]}")" -v np="$(field p99_us "${MED[nginx]}")" \
			-v wp="$(field p99_us "${MED[warden]}")" 'BEGIN {
			ratio = wr / nr
			wadd = (wp - dp) / 1000
			nadd = (np - dp) / 1000
			printf "- warden req/s / nginx req/s: **%.2f** (target >= 0.60: %s)\n", ratio, ratio >= 0.60 ? "met" : "MISSED"
			printf "- p99 added by warden (warden p99 - direct p99): **%.2f ms** (target <= 2 ms: %s)\n", wadd, wadd <= 2 ? "met" : "MISSED"
			printf "- p99 added by nginx (nginx p99 - direct p99): %.2f ms\n", nadd
		}'
		echo
		unset MED
	done
} >"$WORK/summary.md"

mkdir -p "$OUT_DIR"
cp "$WORK/summary.md" "$OUT_MD"
cat "$WORK/summary.md"
log "written to ${OUT_MD#"$ROOT"/}"
