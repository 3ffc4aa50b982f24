#!/usr/bin/env python3
"""A tiny app to put behind steemgate, standard library only.

It greets the account steemgate proved, read from the X-Steem-Account request
header. Run it with

    python3 examples/python/app.py --listen 127.0.0.1:3000

and route to it, e.g. {path: /, upstream: "http://127.0.0.1:3000", auth: required}.

The header is only true when the request came through the gateway, which
removes every client-sent spelling and sets exactly one value: keep the app
on loopback (or firewall its port) so nothing else reaches it. A request with
more than one value is refused; no header is an anonymous visitor (a public or
optional route). Note that WSGI/CGI servers fold "_" into "-"
(HTTP_X_STEEM_ACCOUNT); http.server does not, so X_Steem_Account is simply
another header here. tests/examples.rs runs this behind the real gateway.
"""

import argparse
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT_NAME = re.compile(r"[a-z0-9.-]{3,16}")


class Greeter(BaseHTTPRequestHandler):
    # Small answers go out at once instead of waiting on Nagle's algorithm.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        # get_all matches the name in any case; other spellings are ignored.
        values = self.headers.get_all("X-Steem-Account") or []
        if not values:
            self.answer(200, "Hello, anonymous visitor\n")
        elif len(values) > 1:
            self.answer(400, "refused: more than one X-Steem-Account value\n")
        elif not ACCOUNT_NAME.fullmatch(values[0]):
            self.answer(400, "refused: X-Steem-Account is not one account name\n")
        else:
            self.answer(200, f"Hello @{values[0]}\n")

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:3000", help="HOST:PORT (keep it on loopback)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Greeter)
    print(f"upstream listening on http://{host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
