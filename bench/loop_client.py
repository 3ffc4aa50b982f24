#!/usr/bin/env python3
"""Sends N identical GET requests over keep-alive connections and checks each answer.

Why: instruction counts per request (bench/instructions.sh) need an exact
request count and the same bytes on the wire as wrk sends (request line,
Host, Cookie), from a client whose own cost is not measured. One request at
a time per connection; --connections spreads them round robin.

Usage: loop_client.py URL N [--cookie VALUE] [--connections C] [--expect 200]
"""

import argparse
import socket
import sys
import urllib.parse


def read_response(sock, buf):
    """Reads one HTTP/1.1 response (Content-Length or chunked); returns (status, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed in the body")
            rest += chunk
        return status, rest[length:]
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            rest = rest[size + 2 :]
            if size == 0:
                return status, rest
    raise ValueError("response without Content-Length or chunked body")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("count", type=int)
    parser.add_argument("--cookie")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--expect", type=int, default=200)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.url)
    request = f"GET {url.path or '/'} HTTP/1.1\r\nHost: {url.netloc}\r\n"
    if args.cookie:
        request += f"Cookie: {args.cookie}\r\n"
    request = (request + "\r\n").encode()
    conns = []
    for _ in range(args.connections):
        sock = socket.create_connection((url.hostname, url.port or 80))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append([sock, b""])
    for i in range(args.count):
        conn = conns[i % len(conns)]
        conn[0].sendall(request)
        status, conn[1] = read_response(conn[0], conn[1])
        if status != args.expect:
            sys.exit(f"request {i}: status {status}, expected {args.expect}")
    for sock, _ in conns:
        sock.close()


if __name__ == "__main__":
    main()
