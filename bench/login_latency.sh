#!/usr/bin/env bash
# Login detection latency against a devnet (see login_latency.py for what
# exactly is timed): 50 logins by default, one block per login, blocks every
# 3 s. Writes bench/results/login-latency[-TAG].md and .json.
#
# Usage: bench/login_latency.sh [--logins N] [--gap SECONDS] [--jitter SECONDS] [--tag NAME]
# Env:   STEEMGATE_BIN (skip the build), BENCH_KEEP_WORK=1

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOGINS=50 GAP=3 JITTER=0 TAG=""
while (($#)); do
    case "$1" in
    --logins) LOGINS="${2:-}"; shift 2 ;;
    --gap) GAP="${2:-}"; shift 2 ;;
    --jitter) JITTER="${2:-}"; shift 2 ;;
    --tag) TAG="-${2:-}"; shift 2 ;;
    -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

require_tools curl:curl jq:jq python3:python3
bench_init
build_release
start_devnet
start_gateway gateway "file:$WORK_DIR/store" "builtin:hello"

mkdir -p "$RESULTS_DIR"
OUT="$RESULTS_DIR/login-latency$TAG"
summary="$(python3 "$BENCH_DIR/login_latency.py" --gate "$GATE_URL" --node "$DEVNET_URL/" \
    --sender "$SENDER_ACCOUNT" --logins "$LOGINS" --gap "$GAP" --jitter "$JITTER" --json "$OUT.json")"
echo "$summary"
machine_json >"$WORK_DIR/machine.json"
jq -s '.[0] + {machine: .[1]}' "$OUT.json" "$WORK_DIR/machine.json" >"$WORK_DIR/merged.json"
mv "$WORK_DIR/merged.json" "$OUT.json"
jq -r '
  "# Login detection latency\n",
  "`bench/login_latency.sh` on \(.machine.date) (commit \(.machine.commit)): \(.logins) logins, one block per login, blocks every \(.gap_seconds) s\(if .jitter_seconds > 0 then " + 0..\(.jitter_seconds) s" else "" end). Time from `devnet.produce_block` returning (the block is at the node) to `/.steemgate/status?wait=30` answering with the account. Embedded store on disk.\n",
  "| min | p50 | p95 | max | mean |", "|---:|---:|---:|---:|---:|",
  "| \(.min_ms|floor) ms | \(.p50_ms|floor) ms | \(.p95_ms|floor) ms | \(.max_ms|floor) ms | \(.mean_ms|floor) ms |\n",
  "Machine: \(.machine.cpu), \(.machine.nproc) cores, \(.machine.kernel), load average before: \(.machine.loadavg_before)."
' "$OUT.json" >"$OUT.md"
log "written: $OUT.md and .json"
