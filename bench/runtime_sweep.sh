#!/usr/bin/env bash
# pingora's runtime choices, measured on the bare pingora proxy: worker
# threads, work stealing (one multi-thread tokio runtime) or not (one
# current-thread runtime per thread), and the syscalls each makes per request.
#
# Why: issue 19 asks for the runtime defaults the numbers support. The bare
# proxy (bench/pingora_bare.rs) has no steemgate code, so what changes here is
# pingora's and tokio's cost alone. steemgate's own `threads:` is measured
# with `GATE_THREADS=1 bench/run.sh` against the default.
#
# This starts (private ports and temp dir, stopped at exit) the nginx
# upstream of bench/run.sh and, per configuration and round (the order
# rotates), the bare proxy; loads it with wrk (WRK_FLAGS, default
# `-t1 -c32 -d5s`) and reads its user and system CPU time from /proc. With
# `--strace`, it also counts the proxy's syscalls for 2,000 requests over 4
# keep-alive connections (bench/loop_client.py) under `strace -c`.
#
# Usage: bench/runtime_sweep.sh [--rounds N] [--strace]
# Env:   PINGORA_BARE_BIN (skip the build), WRK_FLAGS, CONFIGS (default
#        "1:1 2:1 2:0", THREADS:WORK_STEALING)
# Results: bench/results/runtime-sweep.md and .json

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=4
STRACE=""
while (($#)); do
    case "$1" in
    --rounds) ROUNDS="${2:-}"; shift 2 ;;
    --strace) STRACE=1; shift ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
WRK_FLAGS="${WRK_FLAGS:--t1 -c32 -d5s}"
read -r -a CONFIG_LIST <<<"${CONFIGS:-1:1 2:1 2:0}"

require_tools nginx:nginx wrk:wrk curl:curl jq:jq python3:python3
[[ -n "$STRACE" ]] && require_tools strace:strace
bench_init
build_pingora_bare
start_ok_upstream

SAMPLES="$WORK_DIR/samples.jsonl"
: >"$SAMPLES"

# start_bare THREADS WORK_STEALING: the bare proxy on a free port (sets BARE_PID, BARE_URL).
start_bare() {
    local port
    port="$(free_port)"
    BARE_URL="http://127.0.0.1:$port/"
    BARE_WORK_STEALING="$2" start_bg "bare-$1-$2" "$PINGORA_BARE" "127.0.0.1:$port" "127.0.0.1:$UPSTREAM_PORT" "$1"
    BARE_PID="$LAST_PID"
    wait_ok "$BARE_URL"
}

stop_bare() {
    kill "$BARE_PID" 2>/dev/null || true
    wait "$BARE_PID" 2>/dev/null || true
}

cpu_ticks_of() { awk '{print $14 + $15, $14, $15}' "/proc/$1/stat"; }

for ((round = 1; round <= ROUNDS; round++)); do
    count=${#CONFIG_LIST[@]}
    for ((k = 0; k < count; k++)); do
        config="${CONFIG_LIST[$(((k + round - 1) % count))]}"
        threads="${config%%:*}"
        stealing="${config##*:}"
        start_bare "$threads" "$stealing"
        # shellcheck disable=SC2086 # WRK_FLAGS is a list of flags
        wrk -t1 -c16 -d1s "$BARE_URL" >/dev/null
        read -r _ user0 sys0 < <(cpu_ticks_of "$BARE_PID")
        # shellcheck disable=SC2086
        wrk $WRK_FLAGS "$BARE_URL" >"$WORK_DIR/wrk.txt"
        read -r _ user1 sys1 < <(cpu_ticks_of "$BARE_PID")
        requests="$(awk '/requests in/ {print $1}' "$WORK_DIR/wrk.txt")"
        rps="$(awk '/Requests\/sec/ {print $2}' "$WORK_DIR/wrk.txt")"
        grep -q "Non-2xx\|Socket errors" "$WORK_DIR/wrk.txt" && die "errors in the run: $(cat "$WORK_DIR/wrk.txt")"
        jq -n -c --arg config "$config" --argjson round "$round" --argjson threads "$threads" \
            --argjson stealing "$stealing" --argjson requests "$requests" --argjson rps "$rps" \
            --argjson user "$((user1 - user0))" --argjson sys "$((sys1 - sys0))" --argjson hz "$CLK_TCK" \
            '{config: $config, round: $round, threads: $threads, work_stealing: ($stealing == 1),
              requests_per_s: $rps,
              user_us_per_request: ($user * 1e6 / $hz / $requests),
              system_us_per_request: ($sys * 1e6 / $hz / $requests)}' >>"$SAMPLES"
        log "round $round, threads $threads, work stealing $stealing: $rps requests/s"
        stop_bare
    done
done

# Syscalls per request, once per configuration.
SYSCALLS="$WORK_DIR/syscalls.jsonl"
: >"$SYSCALLS"
if [[ -n "$STRACE" ]]; then
    for config in "${CONFIG_LIST[@]}"; do
        threads="${config%%:*}"
        stealing="${config##*:}"
        start_bare "$threads" "$stealing"
        python3 "$BENCH_DIR/loop_client.py" "$BARE_URL" 500 --connections 4 >/dev/null
        strace -f -c -o "$WORK_DIR/strace.txt" -p "$BARE_PID" 2>/dev/null &
        strace_pid=$!
        sleep 1
        python3 "$BENCH_DIR/loop_client.py" "$BARE_URL" 2000 --connections 4 >/dev/null
        kill -INT "$strace_pid"
        wait "$strace_pid" || true
        # "% time seconds usecs/call calls [errors] syscall" rows → {syscall: calls per request}
        awk -v config="$config" '
            $NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" { calls[$NF] = $4 }
            END { printf "{\"config\":\"%s\",\"per_request\":{", config; sep="";
                  for (s in calls) { printf "%s\"%s\":%.3f", sep, s, calls[s] / 2000; sep="," }
                  print "}}" }' "$WORK_DIR/strace.txt" >>"$SYSCALLS"
        stop_bare
    done
fi

jq -s --slurpfile syscalls "$SYSCALLS" --arg wrk "$WRK_FLAGS" --argjson rounds "$ROUNDS" \
    --argjson machine "$(machine_json)" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    {wrk: $wrk, rounds: $rounds, machine: $machine, samples: .,
     configs: (group_by(.config) | map({config: .[0].config, threads: .[0].threads,
        work_stealing: .[0].work_stealing,
        requests_per_s: (map(.requests_per_s) | median),
        user_us_per_request: (map(.user_us_per_request) | median),
        system_us_per_request: (map(.system_us_per_request) | median),
        cpu_us_per_request: (map(.user_us_per_request + .system_us_per_request) | median)})),
     syscalls: $syscalls}' "$SAMPLES" >"$RESULTS_DIR/runtime-sweep.json"

{
    echo "# pingora runtime choices on the bare proxy"
    echo
    echo "\`bench/runtime_sweep.sh\` on $(date -u +%Y-%m-%dT%H:%M:%SZ) (commit $(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)): wrk \`$WRK_FLAGS\`, $ROUNDS rounds in rotating order, medians. Loopback; the load generator, the proxy and the upstream share the machine's cores."
    echo
    echo "| threads | work stealing | requests/s | user µs/request | system µs/request | CPU µs/request |"
    echo "|---:|---|---:|---:|---:|---:|"
    jq -r '.configs[] | "| \(.threads) | \(if .work_stealing then "yes (one multi-thread runtime)" else "no (a current-thread runtime per thread)" end) | \(.requests_per_s | round) | \(.user_us_per_request * 100 | round / 100) | \(.system_us_per_request * 100 | round / 100) | \(.cpu_us_per_request * 100 | round / 100) |"' \
        "$RESULTS_DIR/runtime-sweep.json"
    if [[ -n "$STRACE" ]]; then
        echo
        echo "Syscalls per request (\`strace -f -c\`, 2,000 requests over 4 keep-alive connections):"
        echo
        echo "| threads:work stealing | syscalls per request |"
        echo "|---|---|"
        jq -r '.syscalls[] | "| \(.config) | \(.per_request | to_entries | sort_by(-.value) | map(select(.value >= 0.01) | "\(.key) \(.value * 100 | round / 100)") | join(", ")) |"' \
            "$RESULTS_DIR/runtime-sweep.json"
    fi
    echo
    echo "## Machine"
    echo
    jq -r '.machine | "- CPU: \(.cpu) (\(.nproc) cores online)\n- kernel: \(.kernel)"' "$RESULTS_DIR/runtime-sweep.json"
} >"$RESULTS_DIR/runtime-sweep.md"
cat "$RESULTS_DIR/runtime-sweep.md"
