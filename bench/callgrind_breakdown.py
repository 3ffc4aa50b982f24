#!/usr/bin/env python3
"""Per-request instructions of the gateway's own steps, from a callgrind dump.

Why: bench/instructions.sh gives one total per request; this says where it
goes (inclusive costs: a function with everything it calls), so a change can
be attributed. Reads `callgrind_annotate --inclusive=yes --threshold=100`
output on stdin.

Usage: callgrind_annotate --inclusive=yes --threshold=100 DUMP | callgrind_breakdown.py N
"""

import re
import sys

# (label, pattern on the function name); the first matching line counts.
STEPS = [
    ("request_filter", r"Gateway as pingora_proxy::proxy_trait::ProxyHttp>::request_filter::\{\{closure\}\} \["),
    ("  path canonicalization", r"steemgate::proxy::path::canonical(ize)? \["),
    ("  session lookup (account_of)", r"steemgate::proxy::Gateway::account_of::\{\{closure\}\} \["),
    ("    cookie parse + MAC verify", r"SessionManager::session_from_cookies \["),
    ("    store key + cache lookup", r"steemgate::auth::sessions::SessionManager::account::\{\{closure\}\} \["),
    ("upstream_peer", r"ProxyHttp>::upstream_peer::\{\{closure\}\} \["),
    ("upstream_request_filter", r"ProxyHttp>::upstream_request_filter::\{\{closure\}\} \["),
    ("  header hygiene (sanitize)", r"steemgate::proxy::headers::sanitize_upstream_request \["),
    ("  forwarding chain (client_chain)", r"steemgate::proxy::headers::client_chain \["),
    ("logging (metrics)", r"ProxyHttp>::logging::\{\{closure\}\} \["),
    ("glibc malloc (all callers)", r"malloc\.c:malloc \["),
    ("glibc free (all callers)", r"malloc\.c:free \["),
    ("jemalloc malloc, out-of-line part (all callers)", r":_rjem_je_malloc_default \["),
    ("jemalloc realloc (all callers)", r"jemalloc\.c:_rjem_realloc \["),
    ("memcpy (all callers)", r":__memcpy_avx_unaligned_erms \["),
]


def main():
    count = int(sys.argv[1])
    costs = {}
    for line in sys.stdin:
        match = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
        if not match:
            continue
        value = int(match.group(1).replace(",", ""))
        name = match.group(2)
        for label, pattern in STEPS:
            if label not in costs and re.search(pattern, name):
                costs[label] = value
    print("| step (inclusive) | instructions/request |")
    print("|---|---:|")
    for label, _ in STEPS:
        # Allocator rows of the allocator not in use come out near zero.
        if costs.get(label, 0) / count >= 10:
            shown = label.replace("  ", "&nbsp;&nbsp;")
            print(f"| {shown} | {costs[label] / count:,.0f} |")


if __name__ == "__main__":
    main()
