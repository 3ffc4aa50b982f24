#!/usr/bin/env bash
# HTTP/2 over TLS: steemgate's TLS listener against nginx with http2, in the
# same run, loaded by h2load (nghttp2-client). Run as `bench/run.sh --h2`.
#
# Why: browsers speak h2 to the gateway (`tls.http2`, on by default) while
# upstreams stay HTTP/1.1; this measures what that costs against nginx doing
# the same (TLS + h2 in front, HTTP/1.1 keepalive to the upstream). Starts,
# with private configs, a throwaway certificate and free ports, and stops at
# exit: the nginx "ok" upstream, a devnet, steemgate with `tls:` (routes
# /public and /app), nginx with `listen … ssl http2` proxying to the same
# upstream; logs a session in; then runs each target in turn, rotating the
# order every round:
#   nginx-h2             h2load → nginx (TLS, h2) → upstream
#   steemgate-h2-public  h2load → steemgate (TLS, h2), public route
#   steemgate-h2-auth    h2load → steemgate (TLS, h2), required route, logged in
#   nginx-tls-h1 / steemgate-tls-h1-auth: the same over TLS with HTTP/1.1
#                        (h2load --h1 -m 1: one request at a time per
#                        connection, as browsers do; pingora does not
#                        pipeline), to separate h2 from TLS costs
# Results: bench/results/h2.md and h2.json.
#
# Env:   H2LOAD_FLAGS (default "-c 32 -m 10 -t 1 -D 5"), ROUNDS (default 3)
#        GATE_THREADS (default: nproc)  NGINX_WORKERS (default: nproc)
#        STEEMGATE_BIN (skip the build)  BENCH_KEEP_WORK=1 keeps the temp dir

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS="${ROUNDS:-3}"
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
H2LOAD_FLAGS="${H2LOAD_FLAGS:--c 32 -m 10 -t 1 -D 5}"
NGINX_WORKERS="${NGINX_WORKERS:-$(nproc)}"

require_tools nginx:nginx h2load:nghttp2-client openssl:openssl curl:curl jq:jq python3:python3
bench_init
build_release

# A throwaway self-signed certificate for 127.0.0.1 (h2load does not verify;
# curl trusts it for the login).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$WORK_DIR/key.pem" -out "$WORK_DIR/cert.pem" 2>/dev/null ||
    die "openssl could not make a certificate"
BENCH_CA="$WORK_DIR/cert.pem"

start_ok_upstream
start_store embedded
start_devnet
GATE_EXTRA_YAML="log: {access: off}
tls: {cert: \"$WORK_DIR/cert.pem\", key: \"$WORK_DIR/key.pem\"}"
start_gateway gateway "$STORE_URL" "$UPSTREAM_URL"
GATE_TLS_URL="https://${GATE_URL#http://}"

NGINX_PORT="$(free_port)"
cat >"$WORK_DIR/front.conf" <<EOF
worker_processes $NGINX_WORKERS;
$(nginx_common front)
http {
$(nginx_http_common front)
    upstream app { server 127.0.0.1:$UPSTREAM_PORT; keepalive 64; }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        # nginx < 1.25.1 spells "http2 on" as a listen parameter.
        listen 127.0.0.1:$NGINX_PORT ssl http2;
        ssl_certificate $WORK_DIR/cert.pem;
        ssl_certificate_key $WORK_DIR/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { proxy_pass http://app; }
    }
}
EOF
start_bg front nginx -p "$WORK_DIR" -e "$WORK_DIR/front-error.log" -c "$WORK_DIR/front.conf"
FRONT_PID="$LAST_PID"
NGINX_URL="https://127.0.0.1:$NGINX_PORT"
wait_ok "$NGINX_URL/app" 30

log "logging a session in through the devnet (over TLS)"
COOKIE="$(login_session "$GATE_TLS_URL")"

# Both must speak h2 by ALPN and answer 200 "ok"; the required route must
# refuse an anonymous request.
for url in "$NGINX_URL/app" "$GATE_TLS_URL/app"; do
    got="$(curl -s --http2 --cacert "$BENCH_CA" -H "Cookie: $COOKIE" -w ' %{http_version} %{http_code}' "$url" | tr -d '\n')"
    [[ "$got" == "ok 2 200" ]] || die "$url answered '$got', expected 'ok 2 200' (h2)"
done
[[ "$(curl -s --http2 --cacert "$BENCH_CA" -o /dev/null -w '%{http_code}' "$GATE_TLS_URL/app")" == 401 ]] ||
    die "the required route let an anonymous request through"

FRONT_CPU_PIDS="$(pgrep -P "$FRONT_PID" | tr '\n' ' ')"
# name|h2load extra flags|url|pids charged
TARGETS=(
    "nginx-h2||$NGINX_URL/app|$FRONT_CPU_PIDS"
    "steemgate-h2-public||$GATE_TLS_URL/public|$GATE_PID"
    "steemgate-h2-auth||$GATE_TLS_URL/app|$GATE_PID"
    "nginx-tls-h1|--h1 -m 1|$NGINX_URL/app|$FRONT_CPU_PIDS"
    "steemgate-tls-h1-auth|--h1 -m 1|$GATE_TLS_URL/app|$GATE_PID"
)

# run_h2load NAME EXTRA URL OUT PID...: one run; OUT gets a JSON object.
run_h2load() {
    local name="$1" extra="$2" url="$3" out="$4"
    shift 4
    local before ticks
    before="$(cpu_ticks "$@")"
    # shellcheck disable=SC2086 # flag lists
    h2load $H2LOAD_FLAGS $extra -H "cookie: $COOKIE" "$url" >"$out.raw" 2>&1 ||
        die "h2load failed on $url: $(tail -n 5 "$out.raw")"
    ticks=$(($(cpu_ticks "$@") - before))
    python3 - "$out.raw" "$ticks" "$CLK_TCK" "$name" >"$out" <<'PY'
import json, re, sys
raw, ticks, hz, name = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def find(pattern):
    m = re.search(pattern, raw)
    if not m:
        sys.exit(f"h2load output has no {pattern!r}:\n{raw}")
    return m.groups()
rps, = find(r"finished in [\d.]+\w*, ([\d.]+) req/s")
total, done, ok, failed, errored = map(int, find(
    r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored"))
s2xx, = find(r"status codes: (\d+) 2xx")
def us(value, unit):
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
mn, mnu, mx, mxu, mean, meanu, sd, sdu = find(
    r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)")
protocol, = find(r"Application protocol: (\S+)")
print(json.dumps({
    "target": name, "protocol": protocol, "requests_per_second": float(rps),
    "requests": int(done), "succeeded": int(ok), "failed": int(failed), "errored": int(errored),
    "status_2xx": int(s2xx), "mean_us": us(mean, meanu), "max_us": us(mx, mxu),
    "cpu_us_per_request": ticks * 1e6 / hz / int(done) if int(done) else None,
}))
PY
    local bad
    bad="$(jq '.failed + .errored + (.requests - .status_2xx)' "$out")"
    [[ "$bad" == 0 ]] || die "$url: $bad failed/errored/non-2xx requests; see $out.raw"
}

BENCH_LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
SAMPLES="$WORK_DIR/samples.jsonl"
: >"$SAMPLES"
count=${#TARGETS[@]}
for ((round = 1; round <= ROUNDS; round++)); do
    for ((k = 0; k < count; k++)); do
        IFS='|' read -r name extra url pids <<<"${TARGETS[$(((k + round - 1) % count))]}"
        read -r -a pid_list <<<"$pids"
        log "round $round/$ROUNDS: $name"
        run_h2load "$name" "$extra" "$url" "$WORK_DIR/h2-$round-$name.json" "${pid_list[@]}"
        jq -c --argjson r "$round" '. + {round: $r}' "$WORK_DIR/h2-$round-$name.json" >>"$SAMPLES"
        sleep 1
    done
done

mkdir -p "$RESULTS_DIR"
machine_json >"$WORK_DIR/machine.json"
python3 - "$SAMPLES" "$WORK_DIR/machine.json" "$H2LOAD_FLAGS" "$ROUNDS" \
    "${GATE_THREADS:-$(nproc)}" "$NGINX_WORKERS" "$RESULTS_DIR/h2.md" "$RESULTS_DIR/h2.json" <<'PY'
import json, statistics, subprocess, sys
samples_path, machine_path, flags, rounds, threads, workers, md_path, json_path = sys.argv[1:]
samples = [json.loads(line) for line in open(samples_path)]
machine = json.load(open(machine_path))
h2load_version = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout.split()[-1]
order = []
for s in samples:
    if s["target"] not in order:
        order.append(s["target"])
rows = {}
for name in order:
    mine = [s for s in samples if s["target"] == name]
    rows[name] = {
        "protocol": mine[0]["protocol"],
        "rps_median": statistics.median(s["requests_per_second"] for s in mine),
        "rps_all": [s["requests_per_second"] for s in mine],
        "mean_ms_median": statistics.median(s["mean_us"] for s in mine) / 1000,
        "max_ms_median": statistics.median(s["max_us"] for s in mine) / 1000,
        "cpu_us_median": statistics.median(s["cpu_us_per_request"] for s in mine),
    }
# (a, b): a compared with b, by requests/s and by requests per CPU second
# (b's CPU µs / a's CPU µs).
PAIRS = [
    ("steemgate-h2-auth", "nginx-h2"),
    ("steemgate-h2-public", "nginx-h2"),
    ("steemgate-tls-h1-auth", "nginx-tls-h1"),
    ("steemgate-h2-auth", "steemgate-tls-h1-auth"),
]
ratios = {f"{a} / {b}": rows[a]["rps_median"] / rows[b]["rps_median"] for a, b in PAIRS}
cpu_ratios = {f"{a} / {b}": rows[b]["cpu_us_median"] / rows[a]["cpu_us_median"] for a, b in PAIRS}
settings = {"h2load_flags": flags, "h2load": h2load_version, "rounds": int(rounds),
            "gateway_threads": int(threads), "nginx_workers": int(workers)}
json.dump({"machine": machine, "settings": settings, "targets": rows, "ratios": ratios,
           "cpu_ratios": cpu_ratios,
           "samples": samples}, open(json_path, "w"), indent=2)
lines = [
    "# HTTP/2 over TLS: steemgate vs nginx (h2load, same run)",
    "",
    f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['kernel']}, load before "
    f"{machine['loadavg_before']}; nginx {machine['nginx']}, h2load {h2load_version}, commit "
    f"{machine['commit']}, {machine['date']}.",
    f"Settings: `h2load {flags}`, {rounds} rounds (order rotated), gateway threads {threads}, "
    f"nginx workers {workers}; upstream: nginx returning 200 \"ok\" over HTTP/1.1 keepalive.",
    "",
    "| target | protocol | req/s (median) | req/s per round | mean latency ms | max ms | proxy CPU µs/request |",
    "|---|---|---:|---|---:|---:|---:|",
]
for name, r in rows.items():
    lines.append(
        f"| {name} | {r['protocol']} | {r['rps_median']:.0f} | {', '.join(f'{v:.0f}' for v in r['rps_all'])} | "
        f"{r['mean_ms_median']:.2f} | {r['max_ms_median']:.1f} | {r['cpu_us_median']:.1f} |")
lines += ["", "| ratio (medians) | req/s | requests per CPU second |", "|---|---:|---:|"]
lines += [f"| {k} | {v:.2f}× | {cpu_ratios[k]:.2f}× |" for k, v in ratios.items()]
open(md_path, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "written: $RESULTS_DIR/h2.md and .json"
