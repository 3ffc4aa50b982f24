#!/usr/bin/env python3
"""Where a proxy's instructions per request go, from a callgrind dump.

Why: bench/instructions.sh gives one total per request; this says where it
goes, in the same steps for steemgate, a bare pingora proxy and nginx, so a
change can be attributed and the three compared. Every step is defined by
function-name patterns (printed with the table, so it can be reproduced):

  incl  inclusive cost (the function with everything it calls) of the first
        function matching each pattern, summed over the patterns: a step
        that is one call (reading the request head);
  self  self cost (the function's own instructions) of every function
        matching the pattern, summed: spread-out work without one entry
        point (the allocator, memcpy, tokio's scheduler). A pattern on a
        source file (`.../client.rs:`) counts that file's code wherever the
        compiler inlined it (callgrind names inlined code `file:caller`);
  incl+self  the first pattern inclusive, the others self.

Rows overlap: an `incl` step contains the allocator and memcpy it calls.

Usage:
  callgrind_breakdown.py json --kind steemgate|pingora|nginx --name NAME \
      --requests N --per-request P DUMP      one column as JSON
  callgrind_breakdown.py table [--machine M.json --command CMD ...] COLUMN.json...
                                             the markdown tables
  callgrind_breakdown.py patterns            the pattern table alone
Runs `callgrind_annotate --inclusive=yes|no --threshold=100` from / (from
inside the repository it resolves source paths and groups inlined code
differently).
"""

import argparse
import json
import re
import subprocess
import sys

# Function names in callgrind_annotate's output end with " [object]".
END = r" \["

# glibc's string functions (ifunc variants: avx, evex, erms, sse2...).
MEMCPY = r"__mem(cpy|move)\w* \["
# Allocator code, by source file (inlined parts count where they are).
GLIBC_MALLOC = r"/malloc/(malloc|arena|hooks)\.c:"
JEMALLOC = r"jemalloc"
NGINX_POOL = r"\?\?\?:ngx_(palloc|pnalloc|pcalloc|pmemalign|memalign|pfree|create_pool|destroy_pool|reset_pool|alloc|calloc|free_chain|chain_get_free_buf|alloc_chain_link|create_temp_buf) \["

# (label, (mode, [patterns])). Pingora's steps are the same functions in
# steemgate and the bare proxy. "self" patterns on a source file count the
# code of that file wherever the compiler inlined it.
PINGORA = {
    "downstream read + parse (read_request)": (
        "incl",
        [r"pingora_core::protocols::http::v1::server::HttpSession::read_request::\{\{closure\}\}" + END],
    ),
    "  request header construction (RequestHeader::build + case-preserving appends inlined in read_request)": (
        "incl+self",
        [
            r"pingora_http::RequestHeader::build" + END,
            r"pingora-http-[\d.]+/src/lib\.rs:pingora_core::protocols::http::v1::server::HttpSession::read_request::",
        ],
    ),
    "upstream request header clone": (
        "incl",
        [r"<pingora_http::RequestHeader as core::clone::Clone>::clone" + END],
    ),
    "pingora's upstream header sanitizing (hop-by-hop)": (
        "incl",
        [r"pingora_proxy::proxy_common::sanitize_h1_upstream_request" + END],
    ),
    "upstream pool lookup (reused_stream)": (
        "incl",
        [r"pingora_core::connectors::TransportConnector::reused_stream::\{\{closure\}\}" + END],
    ),
    "  peer hashing (reuse_hash)": ("incl", [r"::reuse_hash" + END]),
    "connection back to the pool (release_http_session)": (
        "incl",
        [r"pingora_core::connectors::http::Connector<C>::release_http_session::\{\{closure\}\}" + END],
    ),
    "upstream write + response read/parse (HTTP/1 client code, self)": (
        "self",
        [r"(?:pingora-core-[\d.]+|vendor/pingora-core)/src/protocols/http/v1/client\.rs:"],
    ),
    "response serialization + write (write_response_header)": (
        "incl",
        [r"pingora_core::protocols::http::v1::server::HttpSession::write_response_header::\{\{closure\}\}" + END],
    ),
    "tokio scheduler + I/O driver code (self, by source file)": ("self", [r"tokio-[\d.]+/src/runtime/"]),
    "  tokio park + I/O driver turn (park_internal, incl)": (
        "incl",
        [
            # work-stealing runtime
            r"tokio::runtime::scheduler::multi_thread::worker::Context::park_internal" + END,
            # per-thread runtime (steemgate's default, `work_stealing: off`)
            r"tokio::runtime::scheduler::current_thread::Context::park_internal" + END,
        ],
    ),
    "  tokio task wake-ups (wake_by_val + wake_by_ref, incl; partly inside park)": (
        "incl",
        [r"tokio::runtime::task::waker::wake_by_val" + END, r"tokio::runtime::task::waker::wake_by_ref" + END],
    ),
    "  tokio task spawns (Handle::spawn, incl)": (
        "incl",
        [r"tokio::runtime::scheduler::Handle::spawn" + END],
    ),
}

NGINX = {
    "request line + header lines parsing (ngx_http_parse_request_line, ngx_http_parse_header_line: the latter parses the upstream's response headers too)": (
        "incl",
        [
            r"ngx_http_parse_request_line" + END,
            r"ngx_http_parse_header_line" + END,
        ],
    ),
    "request processing up to the content phase (ngx_http_process_request)": (
        "incl",
        [r"ngx_http_process_request" + END],
    ),
    "upstream connect/reuse + request build + write (ngx_http_upstream_init)": (
        "incl",
        [r"ngx_http_upstream_init" + END],
    ),
    "response status line parse (ngx_http_parse_status_line)": ("incl", [r"ngx_http_parse_status_line" + END]),
    "response serialization + write (ngx_http_send_header)": (
        "incl",
        [r"ngx_http_send_header" + END],
    ),
    "event loop, everything (ngx_process_events_and_timers)": (
        "incl",
        [r"ngx_process_events_and_timers" + END],
    ),
}

def gateway_phase(name):
    """steemgate's `ProxyHttp` phase NAME, everything it calls included."""
    return ("incl", [r"Gateway as pingora_proxy::proxy_trait::ProxyHttp>::" + name + r"::\{\{closure\}\}" + END])


STEEMGATE_OWN = {
    "steemgate: request_filter": gateway_phase("request_filter"),
    "  path canonicalization": ("incl", [r"steemgate::proxy::path::parse_request_target" + END]),
    "  Host header → route host (routes::request_host)": ("incl", [r"core::option::Option<T>::or_else" + END]),
    "  store key + session cache lookup": (
        "incl",
        [r"steemgate::auth::sessions::SessionManager::account::\{\{closure\}\}" + END],
    ),
    "steemgate: upstream_peer": gateway_phase("upstream_peer"),
    "steemgate: upstream_request_filter": gateway_phase("upstream_request_filter"),
    "  header hygiene (sanitize_upstream_request)": ("incl", [r"steemgate::proxy::headers::sanitize_upstream_request" + END]),
    "    of which pingora's insert_header": ("incl", [r"pingora_http::RequestHeader::insert_header" + END]),
    "steemgate: logging (metrics)": gateway_phase("logging"),
    # The deadline wrapper around every downstream socket (`proxy::conn_guard`):
    # its own code only, not the socket reads and writes it passes on.
    "steemgate: connection guard (conn_guard, self)": ("self", [r"steemgate::proxy::conn_guard::"]),
}

COMMON = {
    "allocator (self, all callers)": None,
    "memcpy/memmove (self, all callers)": ("self", [MEMCPY]),
}


def rules(kind):
    """The (label, (mode, patterns)) rows for one kind of target."""
    allocator = {
        "steemgate": ("self", [JEMALLOC]),
        "pingora": ("self", [GLIBC_MALLOC]),
        "nginx": ("self", [GLIBC_MALLOC, NGINX_POOL]),
    }[kind]
    rows = []
    if kind in ("steemgate", "pingora"):
        rows += list(PINGORA.items())
    if kind == "steemgate":
        rows += list(STEEMGATE_OWN.items())
    if kind == "nginx":
        rows += list(NGINX.items())
    rows.append(("allocator (self, all callers)", allocator))
    rows.append(("memcpy/memmove (self, all callers)", COMMON["memcpy/memmove (self, all callers)"]))
    return rows


def all_labels():
    """Every row label, in table order."""
    labels = list(PINGORA) + list(NGINX) + list(STEEMGATE_OWN) + list(COMMON)
    return list(dict.fromkeys(labels))


LINE = re.compile(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$")


def annotate(dump, inclusive):
    """(cost, function name) of every function in a dump."""
    out = subprocess.run(
        [
            "callgrind_annotate",
            f"--inclusive={'yes' if inclusive else 'no'}",
            "--threshold=100",
            dump,
        ],
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    total = None
    for line in out.splitlines():
        if line.startswith("-- Auto-annotated source"):
            break
        match = LINE.match(line)
        if not match:
            continue
        cost = int(match.group(1).replace(",", ""))
        if match.group(2).strip() == "PROGRAM TOTALS":
            total = cost
            continue
        # Without --inclusive, the frames that were on the stack when the
        # counters were zeroed (thread roots, tokio's poll loop) show their
        # whole inclusive cost: no function's own cost is half of the total.
        if not inclusive and total and cost * 2 > total:
            continue
        rows.append((cost, match.group(2)))
    return rows


def measure(dump, kind, requests):
    """Instructions per request of each step."""
    incl = annotate(dump, True)
    excl = annotate(dump, False)
    steps = {}
    for label, (mode, patterns) in rules(kind):
        total = 0
        for index, pattern in enumerate(patterns):
            regex = re.compile(pattern)
            if mode == "incl" or (mode == "incl+self" and index == 0):
                total += next((cost for cost, name in incl if regex.search(name)), 0)
            else:
                total += sum(cost for cost, name in excl if regex.search(name))
        steps[label] = round(total / requests)
    return steps


def pattern_rows():
    """Markdown rows: step, target kinds, mode, patterns."""
    seen = {}
    for kind in ("steemgate", "pingora", "nginx"):
        for label, (mode, patterns) in rules(kind):
            key = (label.strip(), mode, tuple(patterns))
            seen.setdefault(key, []).append(kind)
    lines = ["| step | targets | mode | function-name patterns (Python regex) |", "|---|---|---|---|"]
    for (label, mode, patterns), kinds in seen.items():
        shown = "<br>".join(f"`{p.replace('|', chr(92) + '|')}`" for p in patterns)
        lines.append(f"| {label} | {', '.join(kinds)} | {mode} | {shown} |")
    return "\n".join(lines)


def table(columns, args):
    out = []
    out.append("# Instructions per proxied request: steemgate, bare pingora, nginx")
    out.append("")
    if args.machine:
        with open(args.machine, encoding="utf-8") as f:
            machine = json.load(f)
        out.append(
            f"`{args.command}` on {machine['date']} (commit {machine['commit']}, "
            f"{machine['nginx']}, {machine['rustc']}): callgrind, "
            f"{columns[0]['requests'] if columns else 0} requests per phase over "
            f"{args.connections} keep-alive connections, {args.threads} threads for the "
            "pingora-based proxies, one nginx process; every request carries the same "
            "`Host` and `Cookie` headers and the upstream is the same nginx answering "
            "`ok`. User-space instructions of the proxy process only (the kernel's share "
            "is not counted); each target's idle background measured and subtracted from "
            "the totals. Instruction counts are exact and do not depend on the machine's "
            f"load (2 shared cores, busy; load average before: {machine['loadavg_before']})."
        )
        out.append("")
    out.append("| target | instructions/request |")
    out.append("|---|---:|")
    for col in columns:
        out.append(f"| {col['name']} | {col['per_request']:,} |")
    out.append("")
    out.append("## Where it goes")
    out.append("")
    out.append(
        "Instructions per request; `incl` rows include everything they call, `self` rows "
        "are the functions' own instructions (see the patterns below); rows overlap, so they "
        "do not add up to the total. Not subtracted: background work in the dump."
    )
    out.append("")
    out.append("| step | " + " | ".join(col["name"] for col in columns) + " |")
    out.append("|---|" + "---:|" * len(columns))
    for label in all_labels():
        cells = []
        for col in columns:
            value = col["steps"].get(label)
            cells.append("–" if value is None else f"{value:,}")
        if all(c == "–" for c in cells):
            continue
        shown = label.replace("  ", "&nbsp;&nbsp;")
        out.append(f"| {shown} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("## Patterns")
    out.append("")
    out.append(
        "From `bench/callgrind_breakdown.py` (`callgrind_breakdown.py patterns`), matched "
        "against `callgrind_annotate --threshold=100` function names (`file:function [object]`). "
        "nginx's Debian binary is stripped: only its exported functions have names, so its rows "
        "are coarser (static functions such as `ngx_http_proxy_create_request` count in the "
        "exported function that calls them)."
    )
    out.append("")
    out.append(pattern_rows())
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    one = sub.add_parser("json")
    one.add_argument("--kind", choices=["steemgate", "pingora", "nginx"], required=True)
    one.add_argument("--name", required=True)
    one.add_argument("--requests", type=int, required=True)
    one.add_argument("--per-request", type=int, required=True)
    one.add_argument("dump")
    tab = sub.add_parser("table")
    tab.add_argument("--machine")
    tab.add_argument("--command", default="bench/instructions.sh")
    tab.add_argument("--connections", default="4")
    tab.add_argument("--threads", default="2")
    tab.add_argument("columns", nargs="*")
    sub.add_parser("patterns")
    args = parser.parse_args()
    if args.cmd == "json":
        steps = measure(args.dump, args.kind, args.requests)
        json.dump(
            {
                "name": args.name,
                "kind": args.kind,
                "requests": args.requests,
                "per_request": args.per_request,
                "steps": steps,
            },
            sys.stdout,
            indent=1,
        )
        print()
    elif args.cmd == "table":
        columns = []
        for path in args.columns:
            with open(path, encoding="utf-8") as f:
                columns.append(json.load(f))
        print(table(columns, args))
    else:
        print(pattern_rows())


if __name__ == "__main__":
    main()
