#!/usr/bin/env bash
# Throughput and latency of steemgate against nginx, on loopback.
#
# Why: the gateway sits on every request of the apps behind it, so its cost
# per request must be known against the obvious alternative (nginx, alone or
# with `auth_request` to a forward-auth service). This starts, with private
# configs and ports, and stops at exit:
#   - an upstream: nginx answering a fixed 200 "ok";
#   - nginx as a plain reverse proxy to it (keepalive upstream connections);
#   - nginx with `auth_request` to steemgate's /.steemgate/auth;
#   - the smallest pingora proxy (bench/pingora_bare.rs): the floor under
#     any pingora-based proxy here, so the table separates pingora's cost
#     from steemgate's;
#   - steemgate with a `public` route (/public) and a `required` route (/app),
#     its chain a devnet producing blocks on request; and a second one on
#     tokio's work-stealing runtime (`work_stealing: on`), so that the two
#     runtimes are compared in the same run;
# logs a session in with a simulated transfer, and loads each target in turn
# with the same wrk flags, rotating the order every round. Results: a table
# on stdout and bench/results/latest.md + latest.json (latest-redis.* with
# --store redis, which also counts Redis commands per authenticated request).
#
# Usage: bench/run.sh [--store embedded|redis] [--rounds N]
#        bench/run.sh --h2   HTTP/2 over TLS against nginx with http2, loaded
#                            by h2load (bench/h2.sh; results bench/results/h2.md)
# Env:   WRK_FLAGS  (default "-t1 -c32 -d5s --latency")
#        GATE_THREADS (default: nproc)   NGINX_WORKERS (default: nproc)
#        UPSTREAM_WORKERS (default 1)    STEEMGATE_BIN (skip the build)
#        BENCH_KEEP_WORK=1 keeps the temp dir (configs, logs, raw wrk output)

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [[ "${1:-}" == --h2 ]]; then
    shift
    exec "$BENCH_DIR/h2.sh" "$@"
fi

STORE_KIND="embedded"
ROUNDS="${ROUNDS:-3}"
while (($#)); do
    case "$1" in
    --store) STORE_KIND="${2:-}"; shift 2 ;;
    --rounds) ROUNDS="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$STORE_KIND" == embedded || "$STORE_KIND" == redis ]] || die "--store is embedded or redis"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
WRK_FLAGS="${WRK_FLAGS:--t1 -c32 -d5s --latency}"
NGINX_WORKERS="${NGINX_WORKERS:-$(nproc)}"
UPSTREAM_WORKERS="${UPSTREAM_WORKERS:-1}"

require_tools nginx:nginx wrk:wrk curl:curl jq:jq python3:python3
if [[ "$STORE_KIND" == redis ]]; then
    require_tools redis-server:redis-server redis-cli:redis-tools
fi
bench_init
build_release
build_pingora_bare

# 1. The upstream: a fixed 200 "ok"; /…/whoami echoes X-Steem-Account (checks only).
UPSTREAM_PORT="$(free_port)"
UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"
cat >"$WORK_DIR/upstream.conf" <<EOF
worker_processes $UPSTREAM_WORKERS;
$(nginx_common upstream)
http {
$(nginx_http_common upstream)
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        default_type text/plain;
        location ~ /whoami\$ { return 200 "account=\$http_x_steem_account\n"; }
        location / { return 200 "ok\n"; }
    }
}
EOF
start_bg upstream nginx -p "$WORK_DIR" -e "$WORK_DIR/upstream-error.log" -c "$WORK_DIR/upstream.conf"
UPSTREAM_PID="$LAST_PID"
wait_ok "$UPSTREAM_URL/"

# 2. The store, the devnet and the gateway.
start_store "$STORE_KIND"
start_devnet
# nginx runs with `access_log off`; the gateway too, like for like
# (bench/access_log.sh measures what the access log costs).
if [[ -z "${GATE_EXTRA_YAML:-}" ]]; then
    GATE_EXTRA_YAML='log: {access: off}'
fi
start_gateway gateway "$STORE_URL" "$UPSTREAM_URL"
GATE_PORT="${GATE_URL##*:}"
MAIN_GATE_URL="$GATE_URL" MAIN_GATE_PID="$GATE_PID"
# The same gateway on tokio's work-stealing runtime (`work_stealing: on`), so
# that both runtimes are compared in one run; its own embedded store (one
# process per store directory), or the same Redis. start_gateway sets
# GATE_URL and GATE_PID: they go back to the main gateway's afterwards.
WS_STORE_URL="$STORE_URL"
[[ "$STORE_KIND" == redis ]] || WS_STORE_URL="file:$WORK_DIR/store-work-stealing"
GATE_EXTRA_YAML="$GATE_EXTRA_YAML
work_stealing: on" start_gateway gateway-work-stealing "$WS_STORE_URL" "$UPSTREAM_URL"
WS_GATE_URL="$GATE_URL" WS_GATE_PID="$GATE_PID"
GATE_URL="$MAIN_GATE_URL" GATE_PID="$MAIN_GATE_PID"

# The floor: the smallest pingora proxy, same threads as the gateway.
BARE_PORT="$(free_port)"
start_bg pingora-bare "$PINGORA_BARE" "127.0.0.1:$BARE_PORT" "127.0.0.1:$UPSTREAM_PORT" \
    "${GATE_THREADS:-$(nproc)}"
BARE_PID="$LAST_PID"
wait_http "http://127.0.0.1:$BARE_PORT/"

# 3. nginx in front: a plain proxy and one asking steemgate via auth_request.
PLAIN_PORT="$(free_port)"
AUTHREQ_PORT="$(free_port)"
cat >"$WORK_DIR/front.conf" <<EOF
worker_processes $NGINX_WORKERS;
$(nginx_common front)
http {
$(nginx_http_common front)
    upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    upstream gate { server 127.0.0.1:$GATE_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$PLAIN_PORT;
        location / { proxy_pass http://app; }
    }
    server {
        listen 127.0.0.1:$AUTHREQ_PORT;
        location = /_steemgate_auth {
            internal;
            proxy_pass http://gate/.steemgate/auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Connection "";
        }
        location / {
            auth_request /_steemgate_auth;
            auth_request_set \$steem_account \$upstream_http_x_steem_account;
            proxy_set_header X-Steem-Account \$steem_account;
            proxy_set_header Connection "";
            proxy_pass http://app;
        }
    }
}
EOF
start_bg front nginx -p "$WORK_DIR" -e "$WORK_DIR/front-error.log" -c "$WORK_DIR/front.conf"
FRONT_PID="$LAST_PID"
wait_http "http://127.0.0.1:$PLAIN_PORT/"

# 4. A logged-in session.
log "logging a session in through the devnet"
COOKIE="$(login_session "$GATE_URL")"
WS_COOKIE="$(login_session "$WS_GATE_URL")"

# Process ids whose CPU time is charged to a target (nginx: its workers).
nginx_workers() { pgrep -P "$1" | tr '\n' ' '; }
UPSTREAM_CPU_PIDS="$(nginx_workers "$UPSTREAM_PID")"
FRONT_CPU_PIDS="$(nginx_workers "$FRONT_PID")"

# name|url|pids of the proxy under test|cookie — every target but the
# work-stealing gateway's gets the same Cookie header (that gateway has its
# own session, with the same size of cookie).
TARGETS=(
    "upstream-direct|$UPSTREAM_URL/app|$UPSTREAM_CPU_PIDS|$COOKIE"
    "nginx-plain|http://127.0.0.1:$PLAIN_PORT/app|$FRONT_CPU_PIDS|$COOKIE"
    "nginx-auth_request|http://127.0.0.1:$AUTHREQ_PORT/app|$FRONT_CPU_PIDS $GATE_PID|$COOKIE"
    "pingora-bare|http://127.0.0.1:$BARE_PORT/app|$BARE_PID|$COOKIE"
    "steemgate-public|$GATE_URL/public|$GATE_PID|$COOKIE"
    "steemgate-authenticated|$GATE_URL/app|$GATE_PID|$COOKIE"
    "steemgate-authenticated-work-stealing|$WS_GATE_URL/app|$WS_GATE_PID|$WS_COOKIE"
    "steemgate-policy|$GATE_URL/club|$GATE_PID|$COOKIE"
)

# Each target must answer 200, and the identity must reach the upstream.
expect_body() {
    local url="$1" want="$2" cookie="${3:-$COOKIE}" got
    got="$(curl -s --max-time 5 -H "Cookie: $cookie" -w ' %{http_code}' "$url" | tr -d '\n')"
    [[ "$got" == "$want 200" ]] || die "$url answered '$got', expected '$want 200'"
}
for target in "${TARGETS[@]}"; do
    IFS='|' read -r _ url _ cookie <<<"$target"
    expect_body "$url" "ok" "$cookie"
done
expect_body "$WS_GATE_URL/app/whoami" "account=$SENDER_ACCOUNT" "$WS_COOKIE"
expect_body "http://127.0.0.1:$AUTHREQ_PORT/app/whoami" "account=$SENDER_ACCOUNT"
expect_body "$GATE_URL/app/whoami" "account=$SENDER_ACCOUNT"
expect_body "$GATE_URL/club/whoami" "account=$SENDER_ACCOUNT"
expect_body "$GATE_URL/public/whoami" "account="
[[ "$(curl -s -o /dev/null -w '%{http_code}' "$GATE_URL/app")" == 401 ]] ||
    die "the required route let an anonymous request through"
[[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AUTHREQ_PORT/app")" == 401 ]] ||
    die "auth_request let an anonymous request through"

# run_wrk URL OUT COOKIE [PID...]: one wrk run; OUT gets the WRK_JSON object,
# plus the CPU time the given processes used per request.
run_wrk() {
    local url="$1" out="$2" cookie="$3"
    shift 3
    local ticks_before
    ticks_before="$(cpu_ticks "$@")"
    # shellcheck disable=SC2086 # WRK_FLAGS is a list of flags
    wrk $WRK_FLAGS -s "$BENCH_DIR/wrk_json.lua" -H "Cookie: $cookie" "$url" >"$out.raw" 2>&1 ||
        die "wrk failed on $url: $(cat "$out.raw")"
    sed -n 's/^WRK_JSON //p' "$out.raw" >"$out"
    [[ -s "$out" ]] || die "wrk printed no result for $url: $(cat "$out.raw")"
    local ticks=$(($(cpu_ticks "$@") - ticks_before))
    jq --argjson ticks "$ticks" --argjson hz "$CLK_TCK" \
        '. + {proxy_cpu_us_per_request: (if .requests > 0 then $ticks * 1e6 / $hz / .requests else null end)}' \
        "$out" >"$out.tmp" && mv "$out.tmp" "$out"
    local bad
    bad="$(jq '.errors | .connect + .read + .write + .status + .timeout' "$out")"
    [[ "$bad" == 0 ]] || die "$url: $(jq -c .errors "$out") errors (non-2xx or socket errors); see $out.raw"
}

# 5. The rounds: the order rotates so no target always runs first or last.
BENCH_LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
SAMPLES="$WORK_DIR/samples.jsonl"
: >"$SAMPLES"
count=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((k = 0; k < count; k++)); do
        target="${TARGETS[$(((k + round - 1) % count))]}"
        IFS='|' read -r name url pid_list cookie <<<"$target"
        read -r -a pids <<<"$pid_list"
        log "round $round/$ROUNDS: $name"
        run_wrk "$url" "$WORK_DIR/wrk-$round-$name.json" "$cookie" "${pids[@]}"
        jq -c --arg t "$name" --argjson r "$round" --argjson pos "$k" \
            '{target: $t, round: $r, position: $pos, result: .}' \
            "$WORK_DIR/wrk-$round-$name.json" >>"$SAMPLES"
        sleep 1
    done
done

# 6. Redis commands per authenticated request (steady state).
EXTRA="{}"
if [[ "$STORE_KIND" == redis ]]; then
    # Calls by command, without the INFO calls this script makes.
    redis_calls() {
        redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' |
            sed -n 's/^cmdstat_\([^:]*\):calls=\([0-9]*\).*/\1 \2/p' | grep -v '^info ' |
            jq -Rn '[inputs | split(" ") | {key: .[0], value: (.[1]|tonumber)}] | from_entries'
    }
    log "redis: background commands over 5 idle seconds"
    idle_before="$(redis_calls)"; sleep 5; idle_after="$(redis_calls)"
    log "redis: commands during one authenticated run"
    load_before="$(redis_calls)"
    run_wrk "$GATE_URL/app" "$WORK_DIR/wrk-redis-count.json" "$COOKIE" "$GATE_PID"
    load_after="$(redis_calls)"
    EXTRA="$(jq -n --argjson ib "$idle_before" --argjson ia "$idle_after" \
        --argjson lb "$load_before" --argjson la "$load_after" \
        --slurpfile w "$WORK_DIR/wrk-redis-count.json" '
        def delta(a; b): [b | to_entries[] | {key, value: (.value - (a[.key] // 0))}
                          | select(.value > 0)] | from_entries;
        (delta($ib; $ia)) as $idle | (delta($lb; $la)) as $load |
        ($w[0].requests) as $n | ($w[0].duration_us / 1e6) as $secs |
        ([$idle[]] | add // 0) as $idle_total | ([$load[]] | add // 0) as $load_total |
        {redis: {requests: $n, seconds: $secs, idle_commands_per_second: ($idle_total / 5),
                 commands_during_run: $load, commands_total: $load_total,
                 commands_per_request_raw: ($load_total / $n),
                 commands_per_request: (($load_total - $idle_total / 5 * $secs) / $n)}}')"
fi

# 7. The report.
SUFFIX=""
[[ "$STORE_KIND" == redis ]] && SUFFIX="-redis"
mkdir -p "$RESULTS_DIR"
machine_json >"$WORK_DIR/machine.json"
jq -n --arg flags "$WRK_FLAGS" --arg store "$STORE_KIND" --argjson rounds "$ROUNDS" \
    --argjson gate_threads "${GATE_THREADS:-$(nproc)}" --argjson nginx_workers "$NGINX_WORKERS" \
    --argjson upstream_workers "$UPSTREAM_WORKERS" \
    '{wrk_flags: $flags, store: $store, rounds: $rounds, gateway_threads: $gate_threads,
      nginx_workers: $nginx_workers, upstream_workers: $upstream_workers}' >"$WORK_DIR/settings.json"
python3 "$BENCH_DIR/results_table.py" --samples "$SAMPLES" --machine "$WORK_DIR/machine.json" \
    --settings "$WORK_DIR/settings.json" --extra <(printf '%s' "$EXTRA") \
    --markdown "$RESULTS_DIR/latest$SUFFIX.md" --json "$RESULTS_DIR/latest$SUFFIX.json"
errors="$(cat "$WORK_DIR/gateway.log" "$WORK_DIR/gateway-work-stealing.log" | grep -c ' ERROR ' || true)"
((errors == 0)) || log "note: the gateway logged $errors ERROR lines (see BENCH_KEEP_WORK=1)"
log "written: $RESULTS_DIR/latest$SUFFIX.md and .json"
