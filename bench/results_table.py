#!/usr/bin/env python3
"""Turns run.sh's wrk samples into the results table (markdown + JSON).

Why a separate script: medians over rounds, ratios and the markdown table
are easier to get right in Python than in bash, and keeping them here lets
the table be re-rendered from a saved samples file. Standard library only.
"""

import argparse
import json
import statistics
import sys

ORDER = [
    "upstream-direct",
    "nginx-plain",
    "nginx-auth_request",
    "pingora-bare",
    "steemgate-public",
    "steemgate-authenticated",
    "steemgate-authenticated-work-stealing",
    "steemgate-policy",
]
DESCRIPTIONS = {
    "upstream-direct": "the upstream alone (reference: the load generator's ceiling)",
    "nginx-plain": "nginx reverse proxy → upstream",
    "nginx-auth_request": "nginx `auth_request` to steemgate `/.steemgate/auth` → upstream",
    "pingora-bare": "the smallest pingora proxy (bench/pingora_bare.rs) → upstream: the floor under steemgate",
    "steemgate-public": "steemgate, `public` route → upstream",
    "steemgate-authenticated": "steemgate, `required` route, logged-in cookie → upstream",
    "steemgate-authenticated-work-stealing": "the same on tokio's work-stealing runtime (`work_stealing: on`; the default is a runtime per thread)",
    "steemgate-policy": "steemgate, `required` route with a chain policy (cached decision), logged-in cookie → upstream",
}


def median_of(samples, key):
    return statistics.median(key(s) for s in samples)


def summarize(samples):
    by_target = {}
    for sample in samples:
        by_target.setdefault(sample["target"], []).append(sample["result"])
    rows = {}
    for target, results in by_target.items():
        rows[target] = {
            "rps": median_of(results, lambda r: r["rps"]),
            "p50_ms": median_of(results, lambda r: r["latency_us"]["p50"]) / 1000,
            "p99_ms": median_of(results, lambda r: r["latency_us"]["p99"]) / 1000,
            "proxy_cpu_us_per_request": median_of(
                results, lambda r: r.get("proxy_cpu_us_per_request") or 0.0
            ),
            "rps_per_round": [round(r["rps"], 1) for r in results],
            "requests": sum(r["requests"] for r in results),
        }
    return rows


def ratio(rows, a, b):
    if a in rows and b in rows and rows[b]["rps"] > 0:
        return rows[a]["rps"] / rows[b]["rps"]
    return None


def markdown(rows, ratios, machine, settings, extra):
    out = []
    out.append(f"# steemgate benchmark ({settings['store']} store)\n")
    out.append(
        f"`bench/run.sh{' --store redis' if settings['store'] == 'redis' else ''}` on "
        f"{machine['date']} (commit {machine['commit']}). wrk `{settings['wrk_flags']}`, "
        f"{settings['rounds']} rounds in rotating order, medians over rounds. "
        "Loopback only; the load generator, the proxies and the upstream share the same cores.\n"
    )
    out.append(
        "| target | what | requests/s | p50 ms | p99 ms | CPU µs/request | requests/s per round |"
    )
    out.append("|---|---|---:|---:|---:|---:|---|")
    for target in ORDER:
        if target not in rows:
            continue
        row = rows[target]
        per_round = ", ".join(f"{v:,.0f}" for v in row["rps_per_round"])
        out.append(
            f"| {target} | {DESCRIPTIONS.get(target, '')} | {row['rps']:,.0f} | "
            f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | "
            f"{row['proxy_cpu_us_per_request']:.1f} | {per_round} |"
        )
    out.append("")
    out.append(
        "CPU µs/request: user+system time of the processes under test per request "
        "(upstream-direct: the upstream's worker; nginx: the front nginx's workers; "
        "nginx-auth_request: those plus steemgate; steemgate: the gateway), from /proc. "
        "Less sensitive than requests/s to other load on the machine.\n"
    )
    for name, value in ratios.items():
        shown = "n/a" if value is None else f"{value:.2f}×"
        out.append(f"- {name}: **{shown}**")
    out.append("")
    redis = extra.get("redis")
    if redis:
        out.append("## Redis commands per authenticated request\n")
        out.append(
            f"- steady state: **{redis['commands_per_request']:.3f}** commands per request "
            f"({redis['commands_total']:,} commands for {redis['requests']:,} requests in "
            f"{redis['seconds']:.1f} s, minus the background rate of "
            f"{redis['idle_commands_per_second']:.2f}/s measured idle)"
        )
        by_command = ", ".join(
            f"`{k}` {v:,}" for k, v in sorted(redis["commands_during_run"].items())
        )
        out.append(f"- by command during the run: {by_command}")
        out.append("")
    out.append("## Machine\n")
    out.append(f"- CPU: {machine['cpu']} ({machine['nproc']} cores online)")
    out.append(f"- kernel: {machine['kernel']}")
    out.append(
        f"- load average before the rounds: {machine.get('loadavg_before', '?')} "
        "(other work on the machine skews the numbers)"
    )
    out.append(
        f"- nginx {machine['nginx']}, wrk {machine['wrk']}, {machine['rustc']}"
        + (f", redis {machine['redis']}" if settings["store"] == "redis" else "")
    )
    out.append(
        f"- steemgate threads: {settings['gateway_threads']}; front nginx workers: "
        f"{settings['nginx_workers']}; upstream nginx workers: {settings['upstream_workers']}"
    )
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--machine", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--extra", required=True)
    parser.add_argument("--markdown", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()

    with open(args.samples, encoding="utf-8") as f:
        samples = [json.loads(line) for line in f if line.strip()]
    with open(args.machine, encoding="utf-8") as f:
        machine = json.load(f)
    with open(args.settings, encoding="utf-8") as f:
        settings = json.load(f)
    with open(args.extra, encoding="utf-8") as f:
        extra = json.loads(f.read() or "{}")

    rows = summarize(samples)
    ratios = {
        "steemgate-authenticated / nginx-plain": ratio(
            rows, "steemgate-authenticated", "nginx-plain"
        ),
        "steemgate-policy / steemgate-authenticated": ratio(
            rows, "steemgate-policy", "steemgate-authenticated"
        ),
        "steemgate-authenticated / steemgate-authenticated-work-stealing": ratio(
            rows, "steemgate-authenticated", "steemgate-authenticated-work-stealing"
        ),
        "steemgate-authenticated / steemgate-public": ratio(
            rows, "steemgate-authenticated", "steemgate-public"
        ),
        "steemgate-public / nginx-plain": ratio(rows, "steemgate-public", "nginx-plain"),
        "steemgate-public / pingora-bare": ratio(rows, "steemgate-public", "pingora-bare"),
        "pingora-bare / nginx-plain": ratio(rows, "pingora-bare", "nginx-plain"),
        "steemgate-authenticated / nginx-auth_request": ratio(
            rows, "steemgate-authenticated", "nginx-auth_request"
        ),
    }
    text = markdown(rows, ratios, machine, settings, extra)
    with open(args.markdown, "w", encoding="utf-8") as f:
        f.write(text)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(
            {
                "machine": machine,
                "settings": settings,
                "targets": rows,
                "ratios": ratios,
                **extra,
                "samples": samples,
            },
            f,
            indent=2,
        )
        f.write("\n")
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
