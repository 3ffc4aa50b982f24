#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where
# requests/s is not.
#
# Why: on a shared machine wall-clock throughput moves by ±30 % with other
# load, so a 5 % improvement is invisible in bench/run.sh. Instructions a
# proxy executes per request do not depend on load. This starts (private
# ports and temp dir, stopped at exit) an nginx upstream answering "ok" and,
# each under `valgrind --tool=callgrind`, the proxies of bench/run.sh:
#   steemgate      with the same routes as run.sh (and a devnet; a session
#                  is logged in);
#   pingora-bare   the smallest pingora proxy (bench/pingora_bare.rs);
#   nginx          nginx as a plain reverse proxy (one process, keep-alive
#                  upstream connections, as run.sh's `nginx-plain`).
# Each is warmed up, then counted in separate callgrind dumps:
#   idle           the background work alone for IDLE_SECONDS,
#   public         (steemgate) N requests to the `public` route,
#   authenticated  (steemgate) N requests to the `required` route, logged in,
#   proxied        (pingora-bare, nginx) N requests;
# every request carries the same Cookie header (as run.sh). Reports per
# request (total − idle rate × phase duration) / N, and where it goes: one
# inclusive breakdown, in one format for all three (bench/callgrind_breakdown.py,
# which prints the function-name patterns of each step).
# User-space instructions only: the kernel's share (syscalls, wake-ups) is
# not counted by callgrind. Counts do not depend on machine load.
#
# Usage: bench/instructions.sh [--store embedded|redis] [--requests N]
#                              [--targets steemgate,pingora-bare,nginx]
# Env:   STEEMGATE_BIN, PINGORA_BARE_BIN (skip the builds), GATE_THREADS (default 2, also the
#        bare proxy's), CONNECTIONS (default 4, requests round robin over
#        them), IDLE_SECONDS (default 10), BENCH_KEEP_WORK=1 keeps the dumps,
#        GATE_EXTRA_YAML (default `log: {access: off}`).
# Results: bench/results/instructions[-redis].md and .json (steemgate), and
#          bench/results/instructions-breakdown[-redis].md and .json (all targets).

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STORE_KIND="embedded"
REQUESTS=2000
TARGET_LIST="steemgate,pingora-bare,nginx"
while (($#)); do
    case "$1" in
    --store) STORE_KIND="${2:-}"; shift 2 ;;
    --requests) REQUESTS="${2:-}"; shift 2 ;;
    --targets) TARGET_LIST="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$STORE_KIND" == embedded || "$STORE_KIND" == redis ]] || die "--store is embedded or redis"
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive number"
declare -A WANT=()
IFS=',' read -r -a _targets <<<"$TARGET_LIST"
for t in "${_targets[@]}"; do
    case "$t" in
    steemgate | pingora-bare | nginx) WANT[$t]=1 ;;
    *) die "unknown target $t (steemgate, pingora-bare, nginx)" ;;
    esac
done
CONNECTIONS="${CONNECTIONS:-4}"
IDLE_SECONDS="${IDLE_SECONDS:-10}"
export GATE_THREADS="${GATE_THREADS:-2}"
# Without the access log, as run.sh (GATE_EXTRA_YAML='log: {access: on}'
# counts what it adds).
export GATE_EXTRA_YAML="${GATE_EXTRA_YAML:-log: {access: off\}}"

require_tools nginx:nginx valgrind:valgrind callgrind_control:valgrind \
    callgrind_annotate:valgrind curl:curl jq:jq python3:python3 bc:bc
[[ "$STORE_KIND" == redis ]] && require_tools redis-server:redis-server redis-cli:redis-tools
bench_init
# The devnet and the session login need the steemgate binary in any case.
build_release
[[ -n "${WANT[pingora-bare]:-}" ]] && build_pingora_bare

start_ok_upstream 1024

# The session every request carries (also to pingora-bare and nginx, so all
# targets parse the same request bytes). Without steemgate: a cookie of the
# same shape and length.
COOKIE="steemgate=v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

client() {
    python3 "$BENCH_DIR/loop_client.py" --cookie "$COOKIE" --connections "$CONNECTIONS" "$@"
}

# dump PID PREFIX NAME: callgrind's counters of PID since the last zeroing,
# as one dump file (found by its trigger line among PREFIX.*); copies it to
# WORK_DIR/dump-NAME and prints its Ir.
dump() {
    local pid="$1" prefix="$2" name="$3" file="" i
    callgrind_control --dump="$name" "$pid" >/dev/null
    for ((i = 0; i < 100; i++)); do
        file="$(grep -l "^desc: Trigger: dump $name\$" "$prefix".* 2>/dev/null | head -n1)" || true
        [[ -n "$file" ]] && grep -q '^totals:' "$file" && break
        sleep 0.1
    done
    [[ -n "$file" ]] && grep -q '^totals:' "$file" || die "no callgrind dump for $name"
    cp "$file" "$WORK_DIR/dump-$name"
    awk '/^totals:/ {print $2}' "$file"
}
zero() { callgrind_control --zero "$1" >/dev/null; }
now() { date +%s.%N; }

# measure PID PREFIX TARGET PHASE:URL...: an idle dump, then one dump per
# phase of REQUESTS requests; records IR[TARGET-PHASE], SECS[...] and the
# idle rate RATE[TARGET].
declare -A IR=() SECS=() RATE=()
measure() {
    local pid="$1" prefix="$2" target="$3" spec phase url t0 t1 idle_ir
    shift 3
    log "$target: ${IDLE_SECONDS}s of background work"
    zero "$pid"; t0="$(now)"; sleep "$IDLE_SECONDS"; t1="$(now)"
    idle_ir="$(dump "$pid" "$prefix" "$target-idle")"
    IR[$target-idle]="$idle_ir"
    SECS[$target-idle]="$(echo "$t1 - $t0" | bc -l)"
    RATE[$target]="$(echo "$idle_ir / ${SECS[$target-idle]}" | bc -l)"
    for spec in "$@"; do
        phase="${spec%%:*}"
        url="${spec#*:}"
        log "$target $phase: $REQUESTS requests to $url"
        zero "$pid"; t0="$(now)"
        client "$url" "$REQUESTS"
        t1="$(now)"
        IR[$target-$phase]="$(dump "$pid" "$prefix" "$target-$phase")"
        SECS[$target-$phase]="$(echo "$t1 - $t0" | bc -l)"
    done
}

# per_request TARGET PHASE: (phase Ir − idle rate × duration) / N, rounded.
per_request() {
    printf '%.0f' "$(echo "(${IR[$1-$2]} - ${RATE[$1]} * ${SECS[$1-$2]}) / $REQUESTS" | bc -l)"
}

# breakdown TARGET PHASE KIND: the step table of one dump as JSON.
breakdown() {
    python3 "$BENCH_DIR/callgrind_breakdown.py" json --kind "$3" --name "$1 $2" --requests "$REQUESTS" \
        --per-request "$(per_request "$1" "$2")" "$WORK_DIR/dump-$1-$2" \
        >"$WORK_DIR/breakdown-$1-$2.json"
}

COLUMNS_JSON=()

# 1. steemgate, with its store, devnet and a logged-in session.
if [[ -n "${WANT[steemgate]:-}" ]]; then
    start_store "$STORE_KIND"
    start_devnet
    log "starting steemgate under callgrind (slow to start)"
    GATE_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=$WORK_DIR/gate.cg" \
        GATE_READY_SECONDS=180 start_gateway gateway "$STORE_URL" "$UPSTREAM_URL"
    COOKIE="$(login_session "$GATE_URL")"
    log "steemgate: warming up"
    client "$GATE_URL/public" 400
    client "$GATE_URL/app" 400
    measure "$GATE_PID" "$WORK_DIR/gate.cg" steemgate \
        "public:$GATE_URL/public" "authenticated:$GATE_URL/app"
    kill "$GATE_PID" 2>/dev/null || true
    breakdown steemgate public steemgate
    breakdown steemgate authenticated steemgate
    COLUMNS_JSON+=("$WORK_DIR/breakdown-steemgate-authenticated.json" "$WORK_DIR/breakdown-steemgate-public.json")
fi

# 2. The bare pingora proxy, same threads.
if [[ -n "${WANT[pingora-bare]:-}" ]]; then
    BARE_PORT="$(free_port)"
    log "starting pingora-bare under callgrind"
    start_bg pingora-bare valgrind --tool=callgrind --callgrind-out-file="$WORK_DIR/bare.cg" \
        "$PINGORA_BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UPSTREAM_PORT" "$GATE_THREADS"
    BARE_PID="$LAST_PID"
    wait_ok "http://127.0.0.1:$BARE_PORT/" 180
    log "pingora-bare: warming up"
    client "http://127.0.0.1:$BARE_PORT/app" 800
    measure "$BARE_PID" "$WORK_DIR/bare.cg" pingora-bare "proxied:http://127.0.0.1:$BARE_PORT/app"
    kill "$BARE_PID" 2>/dev/null || true
    breakdown pingora-bare proxied pingora
    COLUMNS_JSON+=("$WORK_DIR/breakdown-pingora-bare-proxied.json")
fi

# 3. nginx as a plain reverse proxy (run.sh's `nginx-plain`), one process
#    (master_process off) so that callgrind follows all of its work.
if [[ -n "${WANT[nginx]:-}" ]]; then
    PLAIN_PORT="$(free_port)"
    cat >"$WORK_DIR/front.conf" <<CONF
master_process off;
worker_processes 1;
$(nginx_common front 1024)
http {
$(nginx_http_common front)
    upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$PLAIN_PORT;
        location / { proxy_pass http://app; }
    }
}
CONF
    log "starting nginx under callgrind"
    start_bg nginx-front valgrind --tool=callgrind --callgrind-out-file="$WORK_DIR/nginx.cg" \
        nginx -p "$WORK_DIR" -e "$WORK_DIR/front-error.log" -c "$WORK_DIR/front.conf"
    NGINX_PID="$LAST_PID"
    wait_ok "http://127.0.0.1:$PLAIN_PORT/" 180
    log "nginx: warming up"
    client "http://127.0.0.1:$PLAIN_PORT/app" 800
    measure "$NGINX_PID" "$WORK_DIR/nginx.cg" nginx "proxied:http://127.0.0.1:$PLAIN_PORT/app"
    kill "$NGINX_PID" 2>/dev/null || true
    breakdown nginx proxied nginx
    COLUMNS_JSON+=("$WORK_DIR/breakdown-nginx-proxied.json")
fi

SUFFIX=""
[[ "$STORE_KIND" == redis ]] && SUFFIX="-redis"
mkdir -p "$RESULTS_DIR"
machine_json >"$WORK_DIR/machine.json"
MACHINE_DATE="$(jq -r .date "$WORK_DIR/machine.json")"
MACHINE_COMMIT="$(jq -r .commit "$WORK_DIR/machine.json")"
COMMAND="bench/instructions.sh --store $STORE_KIND --requests $REQUESTS --targets $TARGET_LIST"

# steemgate's own file (same shape as before this script measured others).
if [[ -n "${WANT[steemgate]:-}" ]]; then
    jq -n --arg store "$STORE_KIND" --argjson n "$REQUESTS" --argjson conns "$CONNECTIONS" \
        --argjson threads "$GATE_THREADS" \
        --argjson idle_ir "${IR[steemgate-idle]}" --argjson idle_s "${SECS[steemgate-idle]}" \
        --argjson pub_ir "${IR[steemgate-public]}" --argjson pub_s "${SECS[steemgate-public]}" \
        --argjson auth_ir "${IR[steemgate-authenticated]}" --argjson auth_s "${SECS[steemgate-authenticated]}" \
        --slurpfile machine "$WORK_DIR/machine.json" '
        ($idle_ir / $idle_s) as $rate |
        def phase($ir; $s): {instructions: $ir, seconds: $s,
            background_instructions: ($rate * $s),
            per_request: ((($ir - $rate * $s) / $n) | round)};
        {store: $store, requests: $n, connections: $conns, gateway_threads: $threads,
         idle: {instructions: $idle_ir, seconds: $idle_s, per_second: ($rate | round)},
         public: phase($pub_ir; $pub_s), authenticated: phase($auth_ir; $auth_s),
         machine: $machine[0]}' >"$RESULTS_DIR/instructions$SUFFIX.json"
    {
        echo "# steemgate instructions per request ($STORE_KIND store)"
        echo
        echo "\`$COMMAND\` on $MACHINE_DATE (commit $MACHINE_COMMIT): callgrind, $REQUESTS requests per phase over $CONNECTIONS keep-alive connections, gateway threads: $GATE_THREADS. User-space instructions of the gateway process; background work (the chain follower) measured idle and subtracted. Instruction counts do not depend on the machine's load (2 shared cores, busy)."
        echo
        echo "| route | instructions/request | phase instructions | background subtracted |"
        echo "|---|---:|---:|---:|"
        for phase in public authenticated; do
            jq -r --arg p "$phase" '.[$p] | "| \($p) | \(.per_request) | \(.instructions) | \(.background_instructions | round) |"' \
                "$RESULTS_DIR/instructions$SUFFIX.json"
        done
        echo
        jq -r '"Idle background: \(.idle.per_second) instructions/s over \(.idle.seconds | . * 10 | round / 10) s."' \
            "$RESULTS_DIR/instructions$SUFFIX.json"
        echo
        echo "Where it goes, side by side with bare pingora and nginx: \`instructions-breakdown$SUFFIX.md\`."
    } >"$RESULTS_DIR/instructions$SUFFIX.md"
fi

# The side-by-side breakdown.
python3 "$BENCH_DIR/callgrind_breakdown.py" table --machine "$WORK_DIR/machine.json" \
    --command "$COMMAND" --connections "$CONNECTIONS" --threads "$GATE_THREADS" \
    "${COLUMNS_JSON[@]}" >"$RESULTS_DIR/instructions-breakdown$SUFFIX.md"
jq -s --slurpfile machine "$WORK_DIR/machine.json" --arg command "$COMMAND" \
    '{command: $command, machine: $machine[0], columns: .}' "${COLUMNS_JSON[@]}" \
    >"$RESULTS_DIR/instructions-breakdown$SUFFIX.json"
sed -n '1,/^## Where/p' "$RESULTS_DIR/instructions-breakdown$SUFFIX.md" | head -n 20
log "written: $RESULTS_DIR/instructions-breakdown$SUFFIX.md and .json"
