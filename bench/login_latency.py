#!/usr/bin/env python3
"""Login detection latency: from the block being available to the status
endpoint naming the account.

Why: the visitor waits for this after paying, so it is the gateway's part of
the login time (the chain's own ~3 s block time comes on top). For each
login this script opens a fresh session (GET /.steemgate/status: cookie and
memo), submits the transfer to the devnet, starts a long poll
(/.steemgate/status?wait=30, woken as soon as the follower logs the session
in), then, at the next block slot, calls devnet.produce_block. The latency is
the time from produce_block returning (the block is at the node) to the long
poll answering with the account. Blocks are produced every --gap seconds (3,
like the real chains) because the follower polls adaptively around the
expected next block. Standard library only; run through login_latency.sh.
"""

import argparse
import json
import math
import random
import sys
import threading
import time
import urllib.request


def http_json(url, body=None, cookie=None, timeout=40):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.loads(response.read())
        return payload, response.headers.get_all("Set-Cookie") or []


def rpc(node, method, params):
    payload, _ = http_json(node, {"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    if "result" not in payload:
        raise RuntimeError(f"{method} failed: {payload}")
    return payload["result"]


def percentile(sorted_values, pct):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def one_login(gate, node, sender, next_slot):
    status, cookies = http_json(f"{gate}/.steemgate/status")
    cookie = next((c.split(";")[0] for c in cookies if c.startswith("steemgate=")), None)
    if not cookie or not status.get("memo"):
        raise RuntimeError(f"status gave no cookie or memo: {status}")
    rpc(node, "devnet.transfer", {
        "from": sender, "to": status["pay_to"], "amount": "0.001 STEEM", "memo": status["memo"],
    })
    outcome = {}

    def long_poll():
        try:
            answer, _ = http_json(f"{gate}/.steemgate/status?wait=30", cookie=cookie)
            outcome["at"] = time.monotonic()
            outcome["account"] = answer.get("account")
        except Exception as e:  # reported below, never swallowed
            outcome["error"] = repr(e)

    poller = threading.Thread(target=long_poll)
    poller.start()
    # The long poll subscribes when its request arrives; give it a moment.
    time.sleep(max(0.2, next_slot - time.monotonic()))
    rpc(node, "devnet.produce_block", {})
    produced = time.monotonic()
    poller.join(timeout=35)
    if outcome.get("account") != sender:
        raise RuntimeError(f"login not detected: {outcome}")
    return outcome["at"] - produced, produced


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gate", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--sender", default="bench")
    parser.add_argument("--logins", type=int, default=50)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between blocks")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra random 0..J s per gap")
    parser.add_argument("--json", required=True, help="write the samples and summary here")
    args = parser.parse_args()

    latencies = []
    last_block = time.monotonic()
    for i in range(args.logins):
        slot = last_block + args.gap + random.uniform(0, args.jitter)
        latency, last_block = one_login(args.gate, args.node, args.sender, slot)
        latencies.append(latency)
        print(f"login {i + 1:3d}/{args.logins}: {latency * 1000:7.1f} ms", file=sys.stderr)

    ordered = sorted(latencies)
    summary = {
        "logins": len(ordered),
        "gap_seconds": args.gap,
        "jitter_seconds": args.jitter,
        "min_ms": ordered[0] * 1000,
        "p50_ms": percentile(ordered, 50) * 1000,
        "p95_ms": percentile(ordered, 95) * 1000,
        "max_ms": ordered[-1] * 1000,
        "mean_ms": sum(ordered) / len(ordered) * 1000,
        "samples_ms": [round(v * 1000, 2) for v in latencies],
    }
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    print(
        f"login detection latency over {summary['logins']} logins (blocks every "
        f"{args.gap:g} s{f' + 0..{args.jitter:g} s' if args.jitter else ''}): "
        f"min {summary['min_ms']:.0f} ms, p50 {summary['p50_ms']:.0f} ms, "
        f"p95 {summary['p95_ms']:.0f} ms, max {summary['max_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
