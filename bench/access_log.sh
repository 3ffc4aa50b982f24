#!/usr/bin/env bash
# What the access log costs: the authenticated route with the log off, on
# (text, to a file) and on (JSON, to a file).
#
# Why: per-request logging on pingora's request path once halved its
# throughput here; the access log hands records to its own thread instead,
# and the goal (issue 13) is >= 0.9x the requests/s with it on. This starts,
# with private configs and ports, and stops at exit: an nginx upstream
# answering a fixed 200 "ok", a devnet, and three gateways that differ only
# in `log:`; logs a session in on each; then loads each one's `required`
# route with the same wrk flags, rotating the order every round. Only one
# gateway is loaded at a time. Results: a table on stdout and
# bench/results/access-log.md + .json, with the lines each log holds
# against the requests it answered and the dropped-line counter.
#
# Usage: bench/access_log.sh [--rounds N]
# Env:   WRK_FLAGS (default "-t1 -c32 -d5s --latency")  GATE_THREADS (default: nproc)
#        STEEMGATE_BIN (skip the build)  BENCH_KEEP_WORK=1 keeps the temp dir

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-3}"
while (($#)); do
    case "$1" in
    --rounds) ROUNDS="${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds must be a positive number"
WRK_FLAGS="${WRK_FLAGS:--t1 -c32 -d5s --latency}"

require_tools nginx:nginx wrk:wrk curl:curl jq:jq python3:python3
bench_init
build_release

start_ok_upstream 4096
start_devnet

# name|log: section. Each gateway has its own store and session.
VARIANTS=(
    "off|log: {access: off}"
    "text-file|log: {access: on, access_format: text, access_file: \"$WORK_DIR/access-text.log\"}"
    "json-file|log: {access: on, access_format: json, access_file: \"$WORK_DIR/access-json.log\"}"
)
declare -A URL PID COOKIE ADMIN
for variant in "${VARIANTS[@]}"; do
    name="${variant%%|*}"
    GATE_EXTRA_YAML="${variant#*|}" start_gateway "gate-$name" "file:$WORK_DIR/store-$name" "$UPSTREAM_URL"
    URL[$name]="$GATE_URL"
    PID[$name]="$GATE_PID"
    ADMIN[$name]="$GATE_ADMIN_URL"
    log "logging a session in on gate-$name"
    COOKIE[$name]="$(login_session "$GATE_URL")"
    got="$(curl -s --max-time 5 -H "Cookie: ${COOKIE[$name]}" -w ' %{http_code}' "$GATE_URL/app" | tr -d '\n')"
    [[ "$got" == "ok 200" ]] || die "gate-$name /app answered '$got'"
done

count_lines() { if [[ -f "$1" ]]; then wc -l <"$1"; else echo 0; fi; }

BENCH_LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
SAMPLES="$WORK_DIR/samples.jsonl"
: >"$SAMPLES"
count=${#VARIANTS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((k = 0; k < count; k++)); do
        variant="${VARIANTS[$(((k + round - 1) % count))]}"
        name="${variant%%|*}"
        log "round $round/$ROUNDS: $name"
        out="$WORK_DIR/wrk-$round-$name"
        ticks_before="$(cpu_ticks "${PID[$name]}")"
        # shellcheck disable=SC2086 # WRK_FLAGS is a list of flags
        wrk $WRK_FLAGS -s "$BENCH_DIR/wrk_json.lua" -H "Cookie: ${COOKIE[$name]}" "${URL[$name]}/app" \
            >"$out.raw" 2>&1 || die "wrk failed: $(cat "$out.raw")"
        ticks=$(($(cpu_ticks "${PID[$name]}") - ticks_before))
        sed -n 's/^WRK_JSON //p' "$out.raw" >"$out.json"
        [[ -s "$out.json" ]] || die "wrk printed no result: $(cat "$out.raw")"
        bad="$(jq '.errors | .connect + .read + .write + .status + .timeout' "$out.json")"
        [[ "$bad" == 0 ]] || die "$name: $(jq -c .errors "$out.json") errors; see $out.raw"
        jq -c --arg v "$name" --argjson r "$round" --argjson ticks "$ticks" --argjson hz "$CLK_TCK" \
            '{variant: $v, round: $r, rps: .rps, requests: .requests, p50_us: .latency_us.p50,
              p99_us: .latency_us.p99, cpu_us_per_request: ($ticks * 1e6 / $hz / .requests)}' \
            "$out.json" >>"$SAMPLES"
        sleep 1
    done
done

# What each log holds: lines (after the writer caught up) and drops.
sleep 2
LOGS="$WORK_DIR/logs.json"
{
    for variant in "${VARIANTS[@]}"; do
        name="${variant%%|*}"
        dropped="$(curl -s "${ADMIN[$name]}/metrics" | awk '$1 == "steemgate_access_log_dropped_total" {print $2}')"
        answered="$(curl -s "${ADMIN[$name]}/metrics" |
            awk '/^steemgate_requests_total\{/ {s += $2} END {print s + 0}')"
        file="$WORK_DIR/access-${name%-file}.log"
        [[ "$name" == off ]] && file="$WORK_DIR/none"
        jq -n --arg v "$name" --argjson lines "$(count_lines "$file")" --argjson answered "$answered" \
            --argjson dropped "${dropped:-0}" '{variant: $v, lines: $lines, answered: $answered, dropped: $dropped}'
    done
} | jq -s . >"$LOGS"
machine_json >"$WORK_DIR/machine.json"

BUILD="release build"
[[ "$STEEMGATE" == */release/* ]] || BUILD="binary $STEEMGATE (not a release build: figures are not comparable)"
mkdir -p "$RESULTS_DIR"
python3 - "$BUILD" "$SAMPLES" "$LOGS" "$WORK_DIR/machine.json" "$WRK_FLAGS" "$ROUNDS" "${GATE_THREADS:-$(nproc)}" \
    "$RESULTS_DIR/access-log.md" "$RESULTS_DIR/access-log.json" <<'PY'
import json, statistics, sys
build, samples_path, logs_path, machine_path, flags, rounds, threads, md_path, json_path = sys.argv[1:]
samples = [json.loads(l) for l in open(samples_path) if l.strip()]
logs = {l["variant"]: l for l in json.load(open(logs_path))}
machine = json.load(open(machine_path))
order = ["off", "text-file", "json-file"]
label = {"off": "access log off", "text-file": "on, text, to a file", "json-file": "on, JSON, to a file"}
rows = {}
for v in order:
    s = [x for x in samples if x["variant"] == v]
    rows[v] = {
        "rps": statistics.median(x["rps"] for x in s),
        "rps_runs": [round(x["rps"]) for x in s],
        "p50_ms": statistics.median(x["p50_us"] for x in s) / 1000,
        "p99_ms": statistics.median(x["p99_us"] for x in s) / 1000,
        "cpu_us_per_request": statistics.median(x["cpu_us_per_request"] for x in s),
        **{k: logs[v][k] for k in ("lines", "answered", "dropped")},
    }
for v in order[1:]:
    rows[v]["ratio_to_off"] = rows[v]["rps"] / rows["off"]["rps"]
    # Per round: the same round's off run (adjacent in time).
    rows[v]["ratio_per_round"] = [
        round(a["rps"] / b["rps"], 3)
        for a in samples if a["variant"] == v
        for b in samples if b["variant"] == "off" and b["round"] == a["round"]
    ]
result = {"build": build, "machine": machine, "wrk_flags": flags, "rounds": int(rounds), "gateway_threads": int(threads),
          "route": "required, logged in", "variants": rows}
json.dump(result, open(json_path, "w"), indent=2)
m = machine
lines = [
    "# Access log cost: the authenticated route, log off vs on",
    "",
    f"{build[0].upper() + build[1:]}, commit {m['commit']}, {m['date']}: {m['nproc']} CPUs ({m['cpu']}), {m['kernel']}, "
    f"wrk {m['wrk']}, {m['rustc']}; load average before: {m['loadavg_before']}.",
    f"`wrk {flags}`, {rounds} rounds in rotating order, `threads: {threads}`, medians over rounds. "
    "Each gateway logs a session in and is loaded alone; lines and drops are counted after the runs "
    "(`answered` is `steemgate_requests_total`, including the login's own requests).",
    "",
    "| gateway | requests/s | × off | p50 ms | p99 ms | CPU µs/request | lines written | requests answered | dropped |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for v in order:
    r = rows[v]
    ratio = f"{r['ratio_to_off']:.2f}×" if "ratio_to_off" in r else "1.00×"
    lines.append(
        f"| {label[v]} | {r['rps']:,.0f} | {ratio} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
        f"{r['cpu_us_per_request']:.1f} | {r['lines']:,} | {r['answered']:,} | {r['dropped']:,} |"
    )
lines += ["", "Per-round ratios to the same round's `off` run: " + "; ".join(
    f"{label[v]}: {rows[v]['ratio_per_round']}" for v in order[1:]) + "."]
lines += ["", "Requests/s of each run: " + "; ".join(f"{label[v]}: {rows[v]['rps_runs']}" for v in order) + "."]
open(md_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "written: $RESULTS_DIR/access-log.md and .json"
