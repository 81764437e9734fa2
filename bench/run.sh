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
# SERVER_CPUS BASE_PORT KEEP_WORKDIR BASELINE_GO PROFILE RATE, and for diagnosis only
# AUDIT_DIR, WARDEN_ENV and WARDEN_BIN; see bench/README.md.
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
BASELINE_GO=${BASELINE_GO:-0} # 1 adds the "go-rp" target: a bare Go httputil.ReverseProxy (bench/goproxy)
RATE=${RATE:-0}               # >0 adds one run per target at this fixed offered load (req/s), first CONNS entry
RATE_GEN=${RATE_GEN:-open}    # fixed-load generator: open (bench/openload, Poisson, open loop) or wrk (closed loop, delay())
PROFILE=${PROFILE:-0}         # 1 adds an unmeasured warden run under `perf record` and a CPU breakdown
AUDIT_DIR=${AUDIT_DIR:-}    # diagnosis: put warden's audit log here (default: the work dir, on disk)
WARDEN_ENV=${WARDEN_ENV:-}  # diagnosis: extra environment for warden only, e.g. "GOGC=400"
WARDEN_BIN=${WARDEN_BIN:-}  # diagnosis: run this warden binary instead of building the repo

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT_DIR="$HERE/out"
OUT_MD="$OUT_DIR/latest.md"
LUA="$HERE/chat.lua"

PORT_STANDIN=$BASE_PORT
PORT_NGINX=$((BASE_PORT + 1))
PORT_WARDEN=$((BASE_PORT + 2))
PORT_ADMIN=$((BASE_PORT + 3))
PORT_GORP=$((BASE_PORT + 4))

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

[[ $RATE =~ ^[0-9]+$ ]] || die "RATE must be a non-negative integer (requests per second)"
[[ $RATE_GEN == open || $RATE_GEN == wrk ]] || die "RATE_GEN must be open or wrk"
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
if [[ $PROFILE == 1 ]]; then
	command -v perf >/dev/null 2>&1 || die "PROFILE=1 needs perf (Debian: apt-get install linux-perf)"
fi

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
for p in "$PORT_STANDIN" "$PORT_NGINX" "$PORT_WARDEN" "$PORT_ADMIN" "$PORT_GORP"; do
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
		if [[ -n $AUDIT_DIR && -n ${AUDIT_PATH:-} ]]; then rm -rf "$(dirname "$AUDIT_PATH")"; fi
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
mkdir -p "$WORK/bin"
if [[ -n $WARDEN_BIN ]]; then
	[[ -x $WARDEN_BIN ]] || die "WARDEN_BIN=$WARDEN_BIN is not an executable"
	log "using the prebuilt $WARDEN_BIN (diagnostic run)"
	cp "$WARDEN_BIN" "$WORK/bin/warden"
else
	log "building warden"
	(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/warden" ./cmd/warden)
fi
WARDEN="$WORK/bin/warden"
if [[ $BASELINE_GO == 1 ]]; then
	(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/goproxy" ./bench/goproxy)
fi
if ((RATE > 0)) && [[ $RATE_GEN == open ]]; then
	(cd "$ROOT" && timeout 600 go build -o "$WORK/bin/openload" ./bench/openload)
fi
BODY_FILE="$HERE/chat-body.json"

# Secrets for this run only.
UPSTREAM_KEY="bench-upstream-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export BENCH_UPSTREAM_KEY=$UPSTREAM_KEY

# ---------------------------------------------------------------- stand-in
log "starting the stand-in upstream on 127.0.0.1:$PORT_STANDIN"
"${SERVER_RUN[@]}" "$WARDEN" standin --addr "127.0.0.1:$PORT_STANDIN" --api-key-env BENCH_UPSTREAM_KEY \
	>"$WORK/standin.log" 2>&1 &
STANDIN_PID=$!
PIDS+=("$STANDIN_PID")

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
NGINX_PID=$!
PIDS+=("$NGINX_PID")

# ------------------------------------------------------------------- go-rp
GORP_PID=""
if [[ $BASELINE_GO == 1 ]]; then
	log "starting the bare Go reverse proxy on 127.0.0.1:$PORT_GORP"
	"${SERVER_RUN[@]}" "$WORK/bin/goproxy" -addr "127.0.0.1:$PORT_GORP" -upstream "http://127.0.0.1:$PORT_STANDIN" \
		>"$WORK/goproxy.log" 2>&1 &
	GORP_PID=$!
	PIDS+=("$GORP_PID")
fi

# ------------------------------------------------------------------ warden
mkdir -p "$WORK/warden"
cp -R "$ROOT/examples/quickstart/policy" "$WORK/warden/policy"
if [[ -n $AUDIT_DIR ]]; then
	mkdir -p "$AUDIT_DIR"
	AUDIT_PATH=$(mktemp -d "$AUDIT_DIR/warden-bench-audit.XXXXXX")/audit.log
else
	AUDIT_PATH=$WORK/warden/audit.log
fi
# How long a small synchronous write takes where the audit log lives: every
# response through warden waits for at least one fsync there.
FSYNC_DD=$(LC_ALL=C dd if=/dev/zero of="$(dirname "$AUDIT_PATH")/fsync-probe" bs=4k count=100 oflag=dsync 2>&1 | tail -1)
rm -f "$(dirname "$AUDIT_PATH")/fsync-probe"
FSYNC_MS=$(sed -n 's/.*copied, \([0-9.]*\) s.*/\1/p' <<<"$FSYNC_DD" | awk '{ printf "%.2f", $1 * 1000 / 100 }')
AUDIT_FS=$(df -T "$(dirname "$AUDIT_PATH")" | awk 'NR == 2 { print $2 " on " $1 }')
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
  path: $AUDIT_PATH
EOF
KEY_JSON=$(timeout 30 "$WARDEN" keys create --store "$WORK/warden/keys.json" --subject bench-client \
	--scopes 'inference:*' --json)
CLIENT_KEY=$(printf '%s' "$KEY_JSON" | sed -n 's/.*"key":"\([^"]*\)".*/\1/p')
[[ $CLIENT_KEY == wk_* ]] || die "could not read the key from 'warden keys create --json'"
log "starting warden on 127.0.0.1:$PORT_WARDEN (admin 127.0.0.1:$PORT_ADMIN)"
env $WARDEN_ENV "${SERVER_RUN[@]}" "$WARDEN" serve --config "$WORK/warden/warden.yaml" --log-level warn \
	>"$WORK/warden/stdout.log" 2>"$WORK/warden/stderr.log" &
WARDEN_PID=$!
PIDS+=("$WARDEN_PID")

# --------------------------------------------------------------- readiness
BODY=$(cat "$BODY_FILE")
[[ $BODY == '{'*'}' ]] || die "could not read the request body from $BODY_FILE"

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
CHECKS=("$PORT_STANDIN:Bearer $UPSTREAM_KEY" "$PORT_NGINX:Bearer $UPSTREAM_KEY" "$PORT_WARDEN:Bearer $CLIENT_KEY")
if [[ $BASELINE_GO == 1 ]]; then
	wait_for 20 "go-rp" probe "$PORT_GORP" "Bearer $UPSTREAM_KEY"
	CHECKS+=("$PORT_GORP:Bearer $UPSTREAM_KEY")
fi
# The answer must be the stand-in's completion, not an error passed through.
for t in "${CHECKS[@]}"; do
	resp=$(curl -sS --max-time 5 -X POST -H 'Content-Type: application/json' -H "Authorization: ${t#*:}" \
		--data-binary "$BODY" "http://127.0.0.1:${t%%:*}/v1/chat/completions")
	[[ $resp == *'"chat.completion"'* ]] || die "unexpected answer from port ${t%%:*}: ${resp:0:200}"
done
log "all targets ready"

# ---------------------------------------------------------------- workload
declare -A AUTH=([direct]="Bearer $UPSTREAM_KEY" [nginx]="Bearer $UPSTREAM_KEY" [go-rp]="Bearer $UPSTREAM_KEY"
	[warden]="Bearer $CLIENT_KEY")
declare -A PORT=([direct]=$PORT_STANDIN [nginx]=$PORT_NGINX [go-rp]=$PORT_GORP [warden]=$PORT_WARDEN)
TARGETS=(direct nginx warden)
if [[ $BASELINE_GO == 1 ]]; then TARGETS=(direct nginx go-rp warden); fi
RESULT=""
WARDEN_COMPLETED=0 # requests wrk saw complete against warden (warm-ups included)

# cpu_ticks PID... prints the CPU time (user + system, in clock ticks) used so
# far by the processes and their direct children (nginx's workers).
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
	local pids=("$@") p total=0 f
	for p in "$@"; do
		pids+=($(ps -o pid= --ppid "$p" || true))
	done
	for p in "${pids[@]}"; do
		f=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null) || continue
		total=$((total + ${f:-0}))
	done
	echo "$total"
}
# ctx_switches PID... prints the context switches (voluntary and not) of all
# threads of the processes and their direct children so far.
ctx_switches() {
	local pids=("$@") p
	for p in "$@"; do
		pids+=($(ps -o pid= --ppid "$p" || true))
	done
	for p in "${pids[@]}"; do
		cat /proc/"$p"/task/*/status 2>/dev/null || true
	done | awk '/ctxt_switches/ { s += $2 } END { printf "%d", s }'
}
declare -A PROXY_PID=([direct]="" [nginx]=$NGINX_PID [go-rp]=$GORP_PID [warden]=$WARDEN_PID)

# machine_busy prints the CPU ticks all CPUs have spent in user and system
# mode, plus hypervisor steal. Interrupt and softirq time (mostly the loopback
# TCP traffic of the benchmark itself) is left out: the kernel accounts it to
# no process.
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $9 }' /proc/stat; }

# children_ticks prints the CPU ticks used by this shell's finished children (wrk).
# It must run in the main shell: a subshell has its own counters.
children_ticks() {
	times >"$WORK/times"
	awk -v hz="$CLK_TCK" 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
		printf "%d", t * hz
	}' "$WORK/times"
}

# run_wrk TARGET CONNS SECONDS runs wrk once and sets RESULT to its WRK_RESULT
# line; it stops the whole run on any non-2xx response or socket error. It runs
# in the main shell (never in $(...)) so that die ends the script.
run_wrk() {
	local target=$1 conns=$2 secs=$3 out line p0=0 p1=0 u0 u1 m0 m1 w0 w1 t0 t1 ps0=0 ps1=0 us0 us1
	if [[ -n ${PROXY_PID[$target]} ]]; then
		p0=$(cpu_ticks "${PROXY_PID[$target]}")
		ps0=$(ctx_switches "${PROXY_PID[$target]}")
	fi
	u0=$(cpu_ticks "$STANDIN_PID")
	us0=$(ctx_switches "$STANDIN_PID")
	children_ticks >/dev/null # refresh
	w0=$(children_ticks)
	m0=$(machine_busy)
	t0=$(date +%s%N)
	if [[ ${WRK_RATE:-0} -gt 0 && $RATE_GEN == open ]]; then
		# Open loop: Poisson arrivals at WRK_RATE, latency from each due time.
		out=$(WRK_AUTH=${AUTH[$target]} timeout $((secs + 60)) "${CLIENT_RUN[@]}" "$WORK/bin/openload" \
			-url "http://127.0.0.1:${PORT[$target]}/v1/chat/completions" -body "$BODY_FILE" -rate "$WRK_RATE" \
			-conns "$conns" -duration "${secs}s" 2>&1) || die "openload against $target failed: $out"
	else
		out=$(WRK_AUTH=${AUTH[$target]} WRK_BODY_FILE=$BODY_FILE WRK_RATE=${WRK_RATE:-0} WRK_CONNS=$conns timeout $((secs + 60)) "${CLIENT_RUN[@]}" wrk --latency \
			-t"$THREADS" -c"$conns" -d"${secs}s" --timeout 10s -s "$LUA" "http://127.0.0.1:${PORT[$target]}") ||
			die "wrk against $target failed: $out"
	fi
	t1=$(date +%s%N)
	m1=$(machine_busy)
	w1=$(children_ticks)
	if [[ -n ${PROXY_PID[$target]} ]]; then
		p1=$(cpu_ticks "${PROXY_PID[$target]}")
		ps1=$(ctx_switches "${PROXY_PID[$target]}")
	fi
	u1=$(cpu_ticks "$STANDIN_PID")
	us1=$(ctx_switches "$STANDIN_PID")
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
	# CPU microseconds per completed request, proxy and upstream.
	# Other CPU: what the machine was busy with beyond wrk, the proxy and the
	# upstream (other processes, and steal by the hypervisor), in % of all CPUs.
	local other
	other=$(awk -v m=$((m1 - m0)) -v ours=$((p1 - p0 + u1 - u0 + w1 - w0)) -v ns=$((t1 - t0)) \
		-v hz="$CLK_TCK" -v n="$NCPU" 'BEGIN { o = (m - ours) / (ns / 1e9 * hz * n) * 100; if (o < 0) o = 0; printf "%.0f", o }')
	RESULT="$line proxy_cpu_us=$(((p1 - p0) * 1000000 / CLK_TCK / requests)) upstream_cpu_us=$(((u1 - u0) * 1000000 / CLK_TCK / requests)) other_cpu_pct=$other"
	RESULT+=" proxy_cs=$(awk -v d=$((ps1 - ps0)) -v n="$requests" 'BEGIN { printf "%.2f", d / n }')"
	RESULT+=" upstream_cs=$(awk -v d=$((us1 - us0)) -v n="$requests" 'BEGIN { printf "%.2f", d / n }')"
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

# Fixed offered load: the same request rate for every target, below
# saturation, so "p99 added" compares latency at equal load.
declare -A FIXED=()
if ((RATE > 0)); then
	fc=${CONNS%% *}
	for t in "${TARGETS[@]}"; do
		log "fixed rate $RATE req/s, c=$fc: $t warm-up ${WARM_S}s"
		WRK_RATE=$RATE run_wrk "$t" "$fc" "$WARM_S"
		log "fixed rate $RATE req/s, c=$fc: $t measure ${DUR_S}s"
		WRK_RATE=$RATE run_wrk "$t" "$fc" "$DUR_S"
		FIXED[$t]=$RESULT
		log "  $(sed 's/^WRK_RESULT //' <<<"${FIXED[$t]}")"
	done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ----------------------------------------------------------------- profile
# One more warden run, not part of the table, with perf sampling warden's
# stacks; perf-attr.awk splits the samples by pipeline part.
PROFILE_MD=""
if [[ $PROFILE == 1 ]]; then
	pc=${CONNS%% *}
	log "profile: warden under perf record, c=$pc, ${DUR_S}s"
	timeout $((DUR_S + 30)) perf record -q -F 999 -g -o "$WORK/perf.data" -p "$WARDEN_PID" -- sleep "$DUR_S" \
		>"$WORK/perf.log" 2>&1 &
	PERF_PID=$!
	run_wrk warden "$pc" "$DUR_S"
	wait "$PERF_PID" || die "perf record failed: $(cat "$WORK/perf.log")"
	PROF_CPU=$(field proxy_cpu_us "$RESULT")
	PROFILE_MD=$(timeout 300 perf script -i "$WORK/perf.data" -F comm,tid,ip,sym 2>/dev/null |
		awk -f "$HERE/perf-attr.awk" 2>/dev/null | sort -rn |
		awk -v cpu="$PROF_CPU" '{ pct = $1; sub("%", "", pct); $1 = ""; sub(/^ +/, "")
			printf "| %s | %.1f %% | %.0f |\n", $0, pct, pct * cpu / 100 }')
	[[ -n $PROFILE_MD ]] || die "perf produced no samples (see $WORK/perf.log)"
	PROFILE_MD="## Where warden's CPU goes (perf, $pc connections)

perf record -F 999 -g on the warden process during one more ${DUR_S}s run (not in the tables above):
$(field rps "$RESULT") req/s, p99 $(ms "$(field p99_us "$RESULT")") ms (slowed by perf), warden CPU ${PROF_CPU} µs/req.
Samples are attributed by stack with bench/perf-attr.awk.

| part | share of warden CPU | µs/req |
|---|---:|---:|
$PROFILE_MD
"
fi
MAX_OTHER=0
for k in "${!RES[@]}"; do
	o=$(field other_cpu_pct "${RES[$k]}")
	if ((o > MAX_OTHER)); then MAX_OTHER=$o; fi
done

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
VERIFY=$(cd "$WORK/warden" && timeout 120 "$WARDEN" audit verify --config warden.yaml) ||
	die "audit verify failed: $VERIFY"
# The records as JSON lines, to count them by status.
(cd "$WORK/warden" && timeout 120 "$WARDEN" audit export --config warden.yaml >"$WORK/audit-records.jsonl") ||
	die "audit export failed"
AUDIT_RECORDS=$(sed -n 's/^ok: \([0-9]*\) records.*/\1/p' <<<"$VERIFY")
[[ -n $AUDIT_RECORDS ]] || die "could not read the record count from: $VERIFY"
# Every request wrk saw complete was answered by warden, and warden answers only
# after the record is durable; requests cut off when wrk stops are recorded too,
# and so are the readiness probes.
((AUDIT_RECORDS >= WARDEN_COMPLETED)) ||
	die "audit log has $AUDIT_RECORDS records but wrk completed $WARDEN_COMPLETED requests through warden"
# Every record is a 200, except requests wrk cut off when it stopped (the
# client closed them: 499). Anything else means warden refused a request.
AUDIT_OK=$(grep -c '"status":200,' "$WORK/audit-records.jsonl" || true)
AUDIT_CUT=$(grep -c '"status":499,' "$WORK/audit-records.jsonl" || true)
AUDIT_OTHER=$((AUDIT_RECORDS - AUDIT_OK - AUDIT_CUT))
if ((AUDIT_OTHER != 0)); then
	KEEP_WORKDIR=1 # keep the evidence
	grep -v -e '"status":200,' -e '"status":499,' "$WORK/audit-records.jsonl" | head -5 |
		sed -n 's/.*\("seq":[0-9]*\).*\("time":"[^"]*"\).*\("status":[0-9]*\)\(,"code":"[^"]*"\)\{0,1\}\(,"reason":"[^"]*"\)\{0,1\}.*/  \1 \2 \3\4\5/p' >&2
	die "the audit log has $AUDIT_OTHER records that are neither 200 nor 499 (see $WORK/audit-records.jsonl)"
fi

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
CMD="THREADS=$THREADS CONNS=\"$CONNS\" DURATION=$DURATION WARMUP=$WARMUP ROUNDS=$ROUNDS PIN=$PIN"
[[ -n $AUDIT_DIR ]] && CMD+=" AUDIT_DIR=$AUDIT_DIR"
[[ -n $WARDEN_ENV ]] && CMD+=" WARDEN_ENV=\"$WARDEN_ENV\""
[[ -n $WARDEN_BIN ]] && CMD+=" WARDEN_BIN=$WARDEN_BIN"
[[ $BASELINE_GO == 1 ]] && CMD="BASELINE_GO=1 $CMD"
[[ $PROFILE == 1 ]] && CMD="PROFILE=1 $CMD"
((RATE > 0)) && CMD="RATE=$RATE RATE_GEN=$RATE_GEN $CMD"
CMD+=" bash bench/run.sh"

{
	echo "# warden load benchmark"
	echo
	echo "- date: $DATE"
	echo "- machine: $NCPU CPU ($CPU_MODEL), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM; load average before/after: $LOAD_BEFORE / $LOAD_AFTER"
	if ((MAX_OTHER > 10)); then
		echo "- **WARNING: other work took up to $MAX_OTHER% of the machine's CPU during a measurement (column \"other CPU %\"); these numbers are noisy**"
	fi
	echo "- software: $GO_VERSION, $NGINX_VERSION, wrk $WRK_VERSION"
	echo "- command: \`$CMD\`"
	echo "- workload: wrk -t$THREADS -d$DURATION --latency, POST /v1/chat/completions, ${#BODY}-byte JSON body; ${WARMUP} warm-up per target; $ROUNDS round(s), median round by req/s shown"
	echo "- pinning: $PIN_DESC"
	echo "- audit log: $AUDIT_FS; synchronous 4 KiB write there (dd oflag=dsync): $FSYNC_MS ms"
	if [[ -n $AUDIT_DIR ]]; then
		echo "- **DIAGNOSTIC RUN: AUDIT_DIR=$AUDIT_DIR moves the audit log off the default disk; on tmpfs fsync is a no-op, so records are NOT durable**"
	fi
	if [[ -n $WARDEN_BIN ]]; then
		echo "- **DIAGNOSTIC RUN: warden binary WARDEN_BIN=$WARDEN_BIN, not built from this tree**"
	fi
	if [[ -n $WARDEN_ENV ]]; then
		echo "- **DIAGNOSTIC RUN: warden runs with WARDEN_ENV=\"$WARDEN_ENV\"**"
	fi
	echo "- audit: \`warden audit verify\`: $VERIFY; wrk completed $WARDEN_COMPLETED requests through warden (warm-ups included), plus the readiness probes; records: $AUDIT_OK with status 200, $AUDIT_CUT with 499 (in flight when wrk stopped), 0 other"
	echo
	for c in $CONNS; do
		echo "## $c connections"
		echo
		echo "| target | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | non-2xx | proxy CPU µs/req | upstream CPU µs/req | proxy / upstream ctx switches per req | other CPU % |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		declare -A MED=()
		for t in "${TARGETS[@]}"; do
			r=$(median_round "$t" "$c")
			l=${RES[$t,$c,$r]}
			MED[$t]=$l
			pcpu=$(field proxy_cpu_us "$l")
			pcs=$(field proxy_cs "$l")
			if [[ $t == direct ]]; then pcpu="-" pcs="-"; fi
			printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s | %s |\n' "$t" "$(field rps "$l")" \
				"$(ms "$(field p50_us "$l")")" "$(ms "$(field p90_us "$l")")" "$(ms "$(field p99_us "$l")")" \
				"$(ms "$(field max_us "$l")")" "$(field requests "$l")" "$(field non2xx "$l")" \
				"$pcpu" "$(field upstream_cpu_us "$l")" "$pcs" "$(field upstream_cs "$l")" "$(field other_cpu_pct "$l")"
		done
		if ((ROUNDS > 1)); then
			echo
			echo "All rounds (req/s, p99 ms, other CPU %):"
			echo
			for t in "${TARGETS[@]}"; do
				printf -- '- %s:' "$t"
				for ((r = 1; r <= ROUNDS; r++)); do
					printf ' %s (%s, %s%%)' "$(field rps "${RES[$t,$c,$r]}")" \
						"$(ms "$(field p99_us "${RES[$t,$c,$r]}")")" "$(field other_cpu_pct "${RES[$t,$c,$r]}")"
				done
				echo
			done
		fi
		echo
		awk -v wr="$(field rps "${MED[warden]}")" -v nr="$(field rps "${MED[nginx]}")" \
			-v dp="$(field p99_us "${MED[direct]}")" -v np="$(field p99_us "${MED[nginx]}")" \
			-v gr="$(field rps "${MED[go-rp]:-}")" -v gp="$(field p99_us "${MED[go-rp]:-}")" \
			-v wp="$(field p99_us "${MED[warden]}")" -v noisy="$( ((MAX_OTHER > 10)) && echo " (noisy run, see the warning above)")" 'BEGIN {
			ratio = wr / nr
			wadd = (wp - dp) / 1000
			nadd = (np - dp) / 1000
			printf "- warden req/s / nginx req/s: **%.2f** (target >= 0.60: %s)%s\n", ratio, ratio >= 0.60 ? "met" : "MISSED", noisy
			printf "- p99 added by warden (warden p99 - direct p99): **%.2f ms** (target <= 2 ms: %s)%s\n", wadd, wadd <= 2 ? "met" : "MISSED", noisy
			printf "- p99 added by nginx (nginx p99 - direct p99): %.2f ms\n", nadd
			if (gr != "") {
				printf "- go-rp req/s / nginx req/s: %.2f; warden req/s / go-rp req/s: %.2f\n", gr / nr, wr / gr
				printf "- p99 added by go-rp (go-rp p99 - direct p99): %.2f ms\n", (gp - dp) / 1000
			}
		}'
		echo
		unset MED
	done
	if ((RATE > 0)); then
		echo "## Fixed offered load: $RATE req/s requested, ${CONNS%% *} connections"
		echo
		if [[ $RATE_GEN == open ]]; then
			echo "Open loop (bench/openload): Poisson arrivals at $RATE req/s over at most ${CONNS%% *} keep-alive connections; each latency counts from the request's due time (or from when the generator sent it, if the generator itself was late), so waiting for a busy connection counts."
		else
			echo "Closed loop (wrk delay()): each connection waits ${CONNS%% *}000/$RATE ms (whole ms) after every response. A connection's next request waits for its last response (closed loop), so a slower target is offered less load and requests bunch on timer ticks."
		fi
		echo
		echo "| target | req/s achieved | p50 ms | p90 ms | p99 ms | max ms | proxy CPU µs/req | other CPU % |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		for t in "${TARGETS[@]}"; do
			l=${FIXED[$t]}
			pcpu=$(field proxy_cpu_us "$l")
			[[ $t == direct ]] && pcpu="-"
			printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$(field rps "$l")" "$(ms "$(field p50_us "$l")")" \
				"$(ms "$(field p90_us "$l")")" "$(ms "$(field p99_us "$l")")" "$(ms "$(field max_us "$l")")" "$pcpu" \
				"$(field other_cpu_pct "$l")"
		done
		echo
		awk -v dp="$(field p99_us "${FIXED[direct]}")" -v wp="$(field p99_us "${FIXED[warden]}")" \
			-v np="$(field p99_us "${FIXED[nginx]}")" 'BEGIN {
			wadd = (wp - dp) / 1000
			printf "- p99 added by warden at equal load: **%.2f ms** (target <= 2 ms: %s)\n", wadd, wadd <= 2 ? "met" : "MISSED"
			printf "- p99 added by nginx at equal load: %.2f ms\n", (np - dp) / 1000
		}'
		echo
	fi
	if [[ -n $PROFILE_MD ]]; then echo "$PROFILE_MD"; fi
} >"$WORK/summary.md"

mkdir -p "$OUT_DIR"
cp "$WORK/summary.md" "$OUT_MD"
cat "$WORK/summary.md"
log "written to ${OUT_MD#"$ROOT"/}"
