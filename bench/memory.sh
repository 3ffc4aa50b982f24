#!/usr/bin/env bash
# Resident memory (VmRSS) of steemgate holding 100,000 live sessions in the
# embedded store. Each cookie-less GET /.steemgate/status creates a session
# with a memo challenge (the most a visitor can make the gateway store), sent
# by wrk with bench/sessions.lua until SESSIONS responses or MAX_SECONDS.
# Writes bench/results/memory.md and .json.
#
# The store directory defaults to /dev/shm (each session is two fsync'd redb
# transactions; on tmpfs they are quick). redb reads and writes the file
# (no mmap), so the file's location does not change the process's RSS.
#
# Env: SESSIONS (100000), MAX_SECONDS (600), STORE_DIR (a temp dir under
#      /dev/shm if present), GATE_THREADS, STEEMGATE_BIN, BENCH_KEEP_WORK=1

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SESSIONS="${SESSIONS:-100000}"
MAX_SECONDS="${MAX_SECONDS:-600}"
case "${1:-}" in -h | --help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac

require_tools wrk:wrk curl:curl jq:jq python3:python3
bench_init
build_release
if [[ -n "${STORE_DIR:-}" ]]; then
    store_dir="$STORE_DIR"
elif [[ -d /dev/shm && -w /dev/shm ]]; then
    store_dir="$(mktemp -d /dev/shm/steemgate-bench-store.XXXXXX)"
    trap 'cleanup; rm -rf "$store_dir"' EXIT
else
    store_dir="$WORK_DIR/store"
fi
start_devnet
# Every session here comes from one client address: lift the per-client
# limits on new sessions and status polls (0 disables a limit).
GATE_EXTRA_YAML="limits: {new_sessions_per_minute: 0, status_per_minute: 0}" \
    start_gateway gateway "file:$store_dir" "builtin:hello"

metric() {
    curl -s "$GATE_ADMIN_URL/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
sleep 2
rss_idle="$(rss_kib "$GATE_PID")"
log "idle RSS ${rss_idle} KiB; creating $SESSIONS sessions (at most ${MAX_SECONDS}s)"
started=$(date +%s)
# wrk waits out its whole -d even after the script stops it: watch the
# session count and interrupt wrk (SIGINT makes it print its summary).
SESSIONS="$SESSIONS" wrk -t1 -c16 -d"${MAX_SECONDS}s" --timeout 10s -s "$BENCH_DIR/sessions.lua" \
    "$GATE_URL/.steemgate/status" >"$WORK_DIR/wrk.raw" 2>&1 &
wrk_pid=$!
STARTED_PIDS+=("$wrk_pid")
while kill -0 "$wrk_pid" 2>/dev/null; do
    sleep 0.5
    count="$(metric steemgate_challenges_issued_total)"
    if ((${count:-0} >= SESSIONS)); then
        kill -INT "$wrk_pid" 2>/dev/null || true
        break
    fi
done
wait "$wrk_pid" || die "wrk failed: $(cat "$WORK_DIR/wrk.raw")"
elapsed=$(($(date +%s) - started))
wrk_json="$(sed -n 's/^WRK_JSON //p' "$WORK_DIR/wrk.raw")"
created="$(metric steemgate_challenges_issued_total)"
sleep 2
rss_full="$(rss_kib "$GATE_PID")"
hwm="$(hwm_kib "$GATE_PID")"
# One authenticated-size read of every page would not change the picture;
# a second sample after a pause shows whether memory is still moving.
sleep 5
rss_later="$(rss_kib "$GATE_PID")"
db_bytes="$(stat -c %s "$store_dir/steemgate.redb")"
store_fs="$(df --output=fstype "$store_dir" | tail -n1)"

mkdir -p "$RESULTS_DIR"
machine_json >"$WORK_DIR/machine.json"
jq -n --argjson wrk "${wrk_json:-null}" --argjson created "${created:-0}" \
    --argjson idle "$rss_idle" --argjson full "$rss_full" --argjson later "$rss_later" \
    --argjson hwm "$hwm" --argjson db "$db_bytes" --argjson secs "$elapsed" \
    --arg fs "$store_fs" --slurpfile machine "$WORK_DIR/machine.json" '
    {sessions_created: $created, seconds: $secs, rss_idle_kib: $idle, rss_kib: $full,
     rss_after_5s_kib: $later, vm_hwm_kib: $hwm, store_file_bytes: $db, store_fs: $fs,
     bytes_per_session: (if $created > 0 then ($full - $idle) * 1024 / $created else null end),
     wrk: $wrk, machine: $machine[0]}' >"$RESULTS_DIR/memory.json"
jq -r '
  "# Memory with live sessions (embedded store)\n",
  "`bench/memory.sh` on \(.machine.date) (commit \(.machine.commit)): \(.sessions_created) sessions created by cookie-less `GET /.steemgate/status` in \(.seconds) s (store file on \(.store_fs)).\n",
  "| sessions | VmRSS idle | VmRSS with sessions | VmRSS 5 s later | VmHWM | growth per session | store file |",
  "|---:|---:|---:|---:|---:|---:|---:|",
  "| \(.sessions_created) | \(.rss_idle_kib / 1024 | floor) MiB | \(.rss_kib / 1024 | floor) MiB | \(.rss_after_5s_kib / 1024 | floor) MiB | \(.vm_hwm_kib / 1024 | floor) MiB | \(.bytes_per_session // 0 | floor) B | \(.store_file_bytes / 1048576 | floor) MiB |\n",
  "Machine: \(.machine.cpu), \(.machine.nproc) cores, \(.machine.kernel)."
' "$RESULTS_DIR/memory.json" | tee "$RESULTS_DIR/memory.md"
log "written: $RESULTS_DIR/memory.md and .json"
