# shellcheck shell=bash
# Shared helpers for the benchmark scripts (sourced, not run).
#
# Why one file: run.sh, login_latency.sh and memory.sh all need the same
# steps: check the tools, build the release binary once, pick free loopback
# ports, start a devnet and a gateway with a private config, log a session
# in through a simulated transfer, read /proc, and stop everything they
# started (and nothing else) when they exit.

set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS_DIR="$BENCH_DIR/results"
GATE_ACCOUNT="gate-bench"
SENDER_ACCOUNT="bench"
BENCH_SECRET="benchmark-secret-not-for-production-0123456789"

# Process ids we started; killed (by id) on exit.
STARTED_PIDS=()
WORK_DIR=""

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$WORK_DIR" && -d "$WORK_DIR" && -z "${BENCH_KEEP_WORK:-}" ]]; then
        rm -rf "$WORK_DIR"
    fi
}

# Creates the temp dir and installs the exit trap.
bench_init() {
    WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/steemgate-bench.XXXXXX")"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

# require TOOL PACKAGE...: explain what is missing instead of installing it.
require_tools() {
    local missing=() tool
    for tool in "$@"; do
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        local names=() pkgs=()
        for tool in "${missing[@]}"; do
            names+=("${tool%%:*}")
            pkgs+=("${tool#*:}")
        done
        die "missing: ${names[*]}. On Debian/Ubuntu: apt-get install -y ${pkgs[*]}"
    fi
}

# The release binary, built once (cargo does nothing when it is current).
STEEMGATE=""
build_release() {
    require_tools cargo:cargo
    if [[ -n "${STEEMGATE_BIN:-}" ]]; then
        STEEMGATE="$STEEMGATE_BIN"
    else
        log "building steemgate (release; first build takes a few minutes)"
        (cd "$REPO_DIR" && cargo build --release --quiet --bin steemgate)
        STEEMGATE="${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/steemgate"
    fi
    [[ -x "$STEEMGATE" ]] || die "no binary at $STEEMGATE"
}

# build_pingora_bare: the bare pingora proxy of bench/pingora_bare.rs
# (release), or PINGORA_BARE_BIN when set. Sets PINGORA_BARE to its path.
PINGORA_BARE=""
build_pingora_bare() {
    if [[ -n "${PINGORA_BARE_BIN:-}" ]]; then
        PINGORA_BARE="$PINGORA_BARE_BIN"
        [[ -x "$PINGORA_BARE" ]] || die "no binary at $PINGORA_BARE"
        return
    fi
    log "building bench/pingora_bare.rs (release)"
    PINGORA_BARE="$(cd "$REPO_DIR" && cargo bench --no-run --bench pingora_bare \
        --message-format=json 2>/dev/null |
        jq -r 'select(.reason == "compiler-artifact" and .target.name == "pingora_bare") | .executable // empty' |
        tail -n 1)"
    [[ -x "$PINGORA_BARE" ]] || die "could not build bench/pingora_bare.rs"
}

# A free loopback port (the kernel picks it; a tiny race is acceptable here).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL [SECONDS]: until the URL answers (any HTTP status).
wait_http() {
    local url="$1" limit="${2:-30}" i
    for ((i = 0; i < limit * 10; i++)); do
        if curl -s -o /dev/null --max-time 1 "$url"; then
            return 0
        fi
        sleep 0.1
    done
    die "$url did not answer within ${limit}s"
}

# curl flags for HTTPS URLs: trust BENCH_CA (a certificate file) when set.
curl_tls() {
    CURL_TLS=()
    if [[ -n "${BENCH_CA:-}" ]]; then
        CURL_TLS=(--cacert "$BENCH_CA")
    fi
}

# wait_ok URL [SECONDS]: until the URL answers 200.
wait_ok() {
    local url="$1" limit="${2:-30}" i
    curl_tls
    for ((i = 0; i < limit * 10; i++)); do
        if [[ "$(curl -s "${CURL_TLS[@]}" -o /dev/null -w '%{http_code}' --max-time 1 "$url")" == 200 ]]; then
            return 0
        fi
        sleep 0.1
    done
    die "$url did not answer 200 within ${limit}s"
}

# start_bg NAME CMD...: runs CMD in the background, logging to WORK_DIR/NAME.log.
LAST_PID=""
start_bg() {
    local name="$1"
    shift
    "$@" >"$WORK_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

# nginx_common NAME [CONNECTIONS] / nginx_http_common NAME: the lines every private nginx of
# the benchmarks shares (pid, logs, temp paths under WORK_DIR, no access log).
nginx_common() {
    cat <<EOF
daemon off;
pid $WORK_DIR/$1.pid;
error_log $WORK_DIR/$1-error.log warn;
events { worker_connections ${2:-4096}; }
EOF
}
nginx_http_common() {
    cat <<EOF
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK_DIR/$1-body;
    proxy_temp_path $WORK_DIR/$1-proxy;
    fastcgi_temp_path $WORK_DIR/$1-fastcgi;
    uwsgi_temp_path $WORK_DIR/$1-uwsgi;
    scgi_temp_path $WORK_DIR/$1-scgi;
EOF
}

# cpu_ticks PID...: user+system CPU time of the processes (all threads), in clock ticks.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
CLK_TCK="$(getconf CLK_TCK)"

# The upstream every benchmark proxies to: nginx answering a fixed 200
# "ok", without logging of its own. Sets UPSTREAM_PORT and UPSTREAM_URL.
start_ok_upstream() {
    local connections="${1:-4096}"
    UPSTREAM_PORT="$(free_port)"
    UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT"
    cat >"$WORK_DIR/upstream.conf" <<CONF
worker_processes 1;
$(nginx_common upstream "$connections")
http {
$(nginx_http_common upstream)
    server {
        listen 127.0.0.1:$UPSTREAM_PORT;
        default_type text/plain;
        location / { return 200 "ok\n"; }
    }
}
CONF
    start_bg upstream nginx -p "$WORK_DIR" -e "$WORK_DIR/upstream-error.log" -c "$WORK_DIR/upstream.conf"
    wait_ok "$UPSTREAM_URL/"
}

# start_store embedded|redis: the gateway's store; for redis a private
# redis-server without persistence. Sets STORE_URL (and REDIS_PORT).
STORE_URL=""
REDIS_PORT=""
start_store() {
    local i
    if [[ "$1" == redis ]]; then
        REDIS_PORT="$(free_port)"
        start_bg redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
            --appendonly no --daemonize no --dir "$WORK_DIR"
        for ((i = 0; i < 100; i++)); do
            redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
            sleep 0.1
        done
        STORE_URL="redis://127.0.0.1:$REDIS_PORT/0"
    else
        STORE_URL="file:$WORK_DIR/store"
    fi
}

# Starts a devnet producing blocks only on request. Sets DEVNET_URL.
DEVNET_URL=""
start_devnet() {
    local port
    port="$(free_port)"
    DEVNET_URL="http://127.0.0.1:$port"
    start_bg devnet "$STEEMGATE" devnet --listen "127.0.0.1:$port" --block-interval 0 --no-seed
    wait_http "$DEVNET_URL/"
}

# start_gateway NAME STORE UPSTREAM_URL: a gateway with a `public` route
# (/public), a `required` route (/app), a `required` route with a chain
# policy (/club) and the devnet as its chain;
# GATE_EXTRA_YAML is appended to its config.
# Sets GATE_URL, GATE_ADMIN_URL and GATE_PID.
GATE_URL=""
GATE_ADMIN_URL=""
GATE_PID=""
start_gateway() {
    local name="$1" store="$2" upstream="$3" port admin_port
    port="$(free_port)"
    admin_port="$(free_port)"
    GATE_URL="http://127.0.0.1:$port"
    GATE_ADMIN_URL="http://127.0.0.1:$admin_port"
    cat >"$WORK_DIR/$name.yaml" <<EOF
listen: "127.0.0.1:$port"
admin_listen: "127.0.0.1:$admin_port"
threads: ${GATE_THREADS:-$(nproc)}
chain:
  name: steem
  nodes: ["$DEVNET_URL"]
  account: $GATE_ACCOUNT
  devnet: true
session:
  secret: "$BENCH_SECRET"
store: "$store"
routes:
  - {path: /public, upstream: "$upstream", auth: public}
  - {path: /app, upstream: "$upstream", auth: required}
  - {path: /club, upstream: "$upstream", auth: required, policy: regulars}
policies:
  # Read from the devnet on the first request, then a cached decision.
  regulars: {all: [{reputation: 0}, {stake: 0}]}
${GATE_EXTRA_YAML:-}
EOF
    "$STEEMGATE" check --config "$WORK_DIR/$name.yaml" >/dev/null
    # GATE_WRAPPER (e.g. "valgrind --tool=callgrind") runs the gateway under a
    # tool that execs it, so GATE_PID is still the gateway's process.
    local wrapper=()
    read -r -a wrapper <<<"${GATE_WRAPPER:-}"
    start_bg "$name" env STEEMGATE_LOG="${STEEMGATE_LOG:-warn}" "${wrapper[@]}" \
        "$STEEMGATE" run --config "$WORK_DIR/$name.yaml"
    GATE_PID="$LAST_PID"
    # /ready: the store answers and the follower has polled the chain, so a
    # transfer in the next block cannot be skipped by a first poll after it.
    wait_ok "$GATE_ADMIN_URL/ready" "${GATE_READY_SECONDS:-60}"
}

# rpc METHOD PARAMS_JSON: one JSON-RPC call to the devnet; prints the result.
rpc() {
    curl -s --max-time 10 -X POST "$DEVNET_URL/" -H 'Content-Type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$1\",\"params\":$2}" | jq -ce '.result'
}

# login_session GATE_URL: logs a fresh session in with a simulated transfer
# (status → transfer with its memo → produce a block → poll until the status
# names the account). Prints the `Cookie` header value (name=value).
login_session() {
    local gate="$1" headers body memo pay_to cookie i
    headers="$WORK_DIR/status.headers"
    curl_tls
    body="$(curl -s "${CURL_TLS[@]}" --max-time 10 -D "$headers" "$gate/.steemgate/status")"
    memo="$(jq -er '.memo' <<<"$body")" || die "status has no memo: $body"
    pay_to="$(jq -er '.pay_to' <<<"$body")"
    cookie="$(tr -d '\r' <"$headers" | sed -n 's/^[Ss]et-[Cc]ookie: *\([^;]*\).*/\1/p' | head -n1)"
    [[ -n "$cookie" ]] || die "status answer set no cookie"
    "$STEEMGATE" devnet transfer --node "$DEVNET_URL" --from "$SENDER_ACCOUNT" --to "$pay_to" \
        --amount "0.001 STEEM" --memo "$memo" >/dev/null
    "$STEEMGATE" devnet produce-block --node "$DEVNET_URL" >/dev/null
    for ((i = 0; i < 150; i++)); do
        body="$(curl -s "${CURL_TLS[@]}" --max-time 10 -H "Cookie: $cookie" "$gate/.steemgate/status")"
        if [[ "$(jq -r '.account // empty' <<<"$body")" == "$SENDER_ACCOUNT" ]]; then
            printf '%s\n' "$cookie"
            return 0
        fi
        sleep 0.1
    done
    die "the session was not logged in within 15s: $body"
}

# rss_kib PID: resident set size in KiB (VmRSS).
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Machine facts as JSON (for the results files).
machine_json() {
    local cpu kernel nginx_v wrk_v rustc_v redis_v
    cpu="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    kernel="$(uname -sr)"
    nginx_v="$(nginx -v 2>&1 | sed 's/^nginx version: //')" || nginx_v="-"
    wrk_v="$( (wrk -v 2>&1 || true) | head -n1 | awk '{print $2}')"
    rustc_v="$(rustc -V 2>/dev/null)" || rustc_v="-"
    redis_v="$(redis-server --version 2>/dev/null | awk '{print $3}' | sed 's/^v=//')" || redis_v="-"
    jq -n --arg nproc "$(nproc)" --arg cpu "${cpu:-unknown}" --arg kernel "$kernel" \
        --arg nginx "$nginx_v" --arg wrk "$wrk_v" --arg rustc "$rustc_v" --arg redis "${redis_v:--}" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg load "${BENCH_LOAD_BEFORE:-$(cut -d' ' -f1-3 /proc/loadavg)}" \
        --arg commit "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        '{nproc: ($nproc|tonumber), cpu: $cpu, kernel: $kernel, nginx: $nginx, wrk: $wrk,
          rustc: $rustc, redis: $redis, date: $date, commit: $commit, loadavg_before: $load}'
}
