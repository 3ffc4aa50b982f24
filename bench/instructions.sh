#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: deterministic where
# requests/s is not.
#
# Why: on a shared machine wall-clock throughput moves by ±30 % with other
# load, so a 5 % improvement is invisible in bench/run.sh. Instructions the
# gateway executes per request do not depend on load. This starts (private
# ports and temp dir, stopped at exit) an nginx upstream answering "ok", a
# devnet, and steemgate under `valgrind --tool=callgrind` with the same
# routes as run.sh; logs a session in; warms up; then counts, in separate
# callgrind dumps:
#   idle           the background work alone (chain follower polls) for IDLE_SECONDS,
#   public         N requests to the `public` route (with the cookie, like run.sh),
#   authenticated  N requests to the `required` route, logged in;
# and reports per request (total − idle rate × phase duration) / N, plus
# where it goes (bench/callgrind_breakdown.py: the gateway's own steps).
# User-space instructions only: the kernel's share (syscalls, wake-ups) is
# not counted by callgrind.
#
# Usage: bench/instructions.sh [--store embedded|redis] [--requests N]
# Env:   STEEMGATE_BIN (skip the build), GATE_THREADS (default 2),
#        CONNECTIONS (default 4, requests round robin over them),
#        IDLE_SECONDS (default 10), BENCH_KEEP_WORK=1 keeps the dumps,
#        GATE_EXTRA_YAML (default `log: {access: off}`).
# Results: bench/results/instructions[-redis].md and .json.

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STORE_KIND="embedded"
REQUESTS=2000
while (($#)); do
    case "$1" in
    --store) STORE_KIND="${2:-}"; shift 2 ;;
    --requests) REQUESTS="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$STORE_KIND" == embedded || "$STORE_KIND" == redis ]] || die "--store is embedded or redis"
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ ]] || die "--requests must be a positive number"
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
build_release

start_ok_upstream 1024

start_store "$STORE_KIND"
start_devnet
log "starting steemgate under callgrind (slow to start)"
GATE_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=$WORK_DIR/callgrind.out" \
    GATE_READY_SECONDS=180 start_gateway gateway "$STORE_URL" "$UPSTREAM_URL"
COOKIE="$(login_session "$GATE_URL")"

client() {
    python3 "$BENCH_DIR/loop_client.py" --cookie "$COOKIE" --connections "$CONNECTIONS" "$@"
}
log "warming up"
client "$GATE_URL/public" 400
client "$GATE_URL/app" 400

# dump NAME: callgrind's counters since the last zeroing, as one dump file
# (found by its trigger line; this runs in a subshell); prints its Ir.
dump() {
    callgrind_control --dump="$1" "$GATE_PID" >/dev/null
    local file="" i
    for ((i = 0; i < 100; i++)); do
        file="$(grep -l "^desc: Trigger: dump $1\$" "$WORK_DIR"/callgrind.out.* 2>/dev/null | head -n1)" || true
        [[ -n "$file" ]] && grep -q '^totals:' "$file" && break
        sleep 0.1
    done
    [[ -n "$file" ]] && grep -q '^totals:' "$file" || die "no callgrind dump for $1"
    cp "$file" "$WORK_DIR/dump-$1"
    awk '/^totals:/ {print $2}' "$file"
}
zero() { callgrind_control --zero "$GATE_PID" >/dev/null; }
now() { date +%s.%N; }

log "idle: ${IDLE_SECONDS}s of background work"
zero; t0="$(now)"; sleep "$IDLE_SECONDS"; t1="$(now)"
IDLE_IR="$(dump idle)"
IDLE_SECS="$(echo "$t1 - $t0" | bc -l)"

declare -A IR SECS
for phase in public authenticated; do
    path=/public
    [[ "$phase" == authenticated ]] && path=/app
    log "$phase: $REQUESTS requests to $path"
    zero; t0="$(now)"
    client "$GATE_URL$path" "$REQUESTS"
    t1="$(now)"
    IR[$phase]="$(dump "$phase")"
    SECS[$phase]="$(echo "$t1 - $t0" | bc -l)"
done

# Where each phase's instructions go (inclusive costs of the gateway's steps).
# callgrind_annotate runs from / : from inside the repository it resolves
# source paths and groups inlined code differently.
for phase in public authenticated; do
    (cd / && callgrind_annotate --inclusive=yes --threshold=100 "$WORK_DIR/dump-$phase" 2>/dev/null) |
        python3 "$BENCH_DIR/callgrind_breakdown.py" "$REQUESTS" >"$WORK_DIR/breakdown-$phase.md"
done

SUFFIX=""
[[ "$STORE_KIND" == redis ]] && SUFFIX="-redis"
mkdir -p "$RESULTS_DIR"
machine_json >"$WORK_DIR/machine.json"
jq -n --arg store "$STORE_KIND" --argjson n "$REQUESTS" --argjson conns "$CONNECTIONS" \
    --argjson threads "$GATE_THREADS" \
    --argjson idle_ir "$IDLE_IR" --argjson idle_s "$IDLE_SECS" \
    --argjson pub_ir "${IR[public]}" --argjson pub_s "${SECS[public]}" \
    --argjson auth_ir "${IR[authenticated]}" --argjson auth_s "${SECS[authenticated]}" \
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
    echo "\`bench/instructions.sh\` on $(jq -r .machine.date "$RESULTS_DIR/instructions$SUFFIX.json") (commit $(jq -r .machine.commit "$RESULTS_DIR/instructions$SUFFIX.json")): callgrind, $REQUESTS requests per phase over $CONNECTIONS keep-alive connections, gateway threads: $GATE_THREADS. User-space instructions of the gateway process; background work (the chain follower) measured idle and subtracted."
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
    for phase in public authenticated; do
        echo
        echo "## $phase: where it goes"
        echo
        echo "Inclusive: each step with everything it calls (allocator and memcpy rows count all callers, pingora's too); background not subtracted."
        echo
        cat "$WORK_DIR/breakdown-$phase.md"
    done
} >"$RESULTS_DIR/instructions$SUFFIX.md"
head -n 12 "$RESULTS_DIR/instructions$SUFFIX.md"
log "written: $RESULTS_DIR/instructions$SUFFIX.md and .json"
