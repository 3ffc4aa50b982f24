#!/usr/bin/env python3
"""A tiny OpenID Connect relying party for steemgate ("Sign in with Steem").

It is what Grafana, Gitea or any OpenID app does, in one file: a "Sign in
with Steem" link that starts the authorization code flow (state, nonce,
PKCE S256), the callback that exchanges the code (client_secret_basic with a
secret, as a public client without one), the ID token checked against the
provider's JWKS (signature in the registered alg, iss, aud, exp, iat,
nonce), userinfo, and a page naming the account. Every protocol step is
authlib's; the web server is Python's http.server.

Against `steemgate demo` (which registers this app as the public client
`example-rp`), the defaults are all it needs:

    python3 examples/oidc-rp/app.py

Against a gateway with your own config (a confidential client):

    python3 examples/oidc-rp/app.py --issuer http://127.0.0.1:8080 \
        --client-id example-rp --client-secret-file rp.secret --listen 127.0.0.1:8090

Needs authlib and requests (Debian: python3-authlib python3-requests). See
README.md beside this file for the gateway side; tests/browser_oidc.rs runs
it in a real browser against the real gateway.
"""

import argparse
import html
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebToken
from authlib.oidc.core import CodeIDToken

COOKIE = "rp_session"


class RelyingParty:
    def __init__(self, args):
        self.issuer = args.issuer.rstrip("/")
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.alg = args.alg
        public = (args.public_url or "http://%s" % args.listen).rstrip("/")
        self.redirect_uri = public + "/callback"
        self.after_logout = public + "/"
        self.http = requests.Session()
        self.http.trust_env = False
        self.metadata = None
        # session id -> {"flow": {...}} while signing in, then {"account", ...}
        self.sessions = {}
        self.lock = threading.Lock()

    def discover(self):
        if self.metadata is None:
            url = self.issuer + "/.well-known/openid-configuration"
            response = self.http.get(url, timeout=10, allow_redirects=False)
            response.raise_for_status()
            metadata = response.json()
            if metadata.get("issuer") != self.issuer:
                raise ValueError("the provider names issuer %r" % metadata.get("issuer"))
            self.metadata = metadata
        return self.metadata

    def oauth(self, **extra):
        session = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.client_secret,
            scope="openid profile",
            redirect_uri=self.redirect_uri,
            # Without a secret: a public client, held to its PKCE verifier.
            token_endpoint_auth_method="client_secret_basic" if self.client_secret else "none",
            code_challenge_method="S256",
            **extra
        )
        session.trust_env = False
        return session

    def start(self, fresh=False):
        """A new sign-in: (session id, the provider's authorization URL).
        `fresh` asks the provider for a new login (prompt=login), e.g. to
        switch accounts."""
        metadata = self.discover()
        flow = {"verifier": generate_token(48), "nonce": generate_token(20)}
        extra = {"prompt": "login"} if fresh else {}
        url, state = self.oauth().create_authorization_url(
            metadata["authorization_endpoint"],
            code_verifier=flow["verifier"],
            nonce=flow["nonce"],
            **extra
        )
        flow["state"] = state
        sid = secrets.token_urlsafe(24)
        with self.lock:
            self.sessions[sid] = {"flow": flow}
        return sid, url

    def finish(self, sid, callback_url):
        """The callback: the code exchanged, the ID token checked, userinfo."""
        with self.lock:
            flow = self.sessions.get(sid, {}).pop("flow", None)
        if flow is None:
            raise ValueError("no sign-in in progress in this browser")
        metadata = self.discover()
        oauth = self.oauth()
        # Checks the state, then redeems the code with the PKCE verifier.
        token = oauth.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback_url,
            state=flow["state"],
            code_verifier=flow["verifier"],
            allow_redirects=False,
        )
        jwks = self.http.get(metadata["jwks_uri"], timeout=10, allow_redirects=False)
        jwks.raise_for_status()
        claims = JsonWebToken([self.alg]).decode(
            token["id_token"],
            jwks.json(),
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": self.issuer}},
            claims_params={
                "nonce": flow["nonce"],
                "client_id": self.client_id,
                "access_token": token["access_token"],
            },
        )
        claims.validate(leeway=5)
        userinfo = oauth.get(metadata["userinfo_endpoint"], timeout=10, allow_redirects=False)
        userinfo.raise_for_status()
        profile = userinfo.json()
        if profile.get("sub") != claims["sub"]:
            raise ValueError("userinfo names another subject")
        with self.lock:
            self.sessions[sid] = {
                "account": profile.get("preferred_username", claims["sub"]),
                "sub": claims["sub"],
                "chain": claims.get("chain"),
                "amr": claims.get("amr"),
                "id_token": token["id_token"],
            }

    def signed_in(self, sid):
        with self.lock:
            session = self.sessions.get(sid) or {}
        return session if "account" in session else None

    def end(self, sid):
        """Forgets the session; the URL that ends the gateway's session too."""
        with self.lock:
            session = self.sessions.pop(sid, None) or {}
        end_session = self.discover().get("end_session_endpoint")
        if not end_session or "id_token" not in session:
            return "/"
        query = urllib.parse.urlencode(
            {
                "id_token_hint": session["id_token"],
                "client_id": self.client_id,
                "post_logout_redirect_uri": self.after_logout,
            }
        )
        return end_session + "?" + query


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Example app</title></head>
<body><main><h1>%s</h1>%s</main></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    rp = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        sys.stderr.write("rp: " + (format % args) + "\n")

    def session_id(self):
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value
        return None

    def page(self, status, heading, body, cookie=None):
        data = (PAGE % (html.escape(heading), body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def redirect(self, location, cookie=None):
        self.send_response(303)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        if cookie is not None:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()

    def do_GET(self):
        path, _, query = self.path.partition("?")
        sid = self.session_id()
        try:
            if path == "/":
                session = self.rp.signed_in(sid) if sid else None
                if session:
                    details = json.dumps(
                        {"sub": session["sub"], "chain": session["chain"], "amr": session["amr"]}
                    )
                    self.page(
                        200,
                        "Signed in as @%s" % session["account"],
                        '<p id="account">%s</p><pre id="claims">%s</pre>'
                        '<p><a id="switch" href="/login?fresh=1">Sign in with another account</a></p>'
                        '<p><a href="/logout">Sign out</a></p>'
                        % (html.escape(session["account"]), html.escape(details)),
                    )
                else:
                    self.page(
                        200,
                        "Example app",
                        '<p>You are not signed in.</p><p><a id="signin" href="/login">Sign in with Steem</a></p>',
                    )
            elif path == "/login":
                fresh = urllib.parse.parse_qs(query).get("fresh") == ["1"]
                new_sid, url = self.rp.start(fresh=fresh)
                self.redirect(url, "%s=%s; Path=/; HttpOnly; SameSite=Lax" % (COOKIE, new_sid))
            elif path == "/callback":
                params = urllib.parse.parse_qs(query)
                if "error" in params:
                    reason = params.get("error_description", params["error"])[0]
                    self.page(
                        403,
                        "Not signed in",
                        '<p id="error">%s: %s</p><p><a href="/">Back</a></p>'
                        % (html.escape(params["error"][0]), html.escape(reason)),
                    )
                    return
                if not sid:
                    raise ValueError("no sign-in in progress in this browser")
                self.rp.finish(sid, self.rp.redirect_uri + "?" + query)
                self.redirect("/")
            elif path == "/logout":
                location = self.rp.end(sid) if sid else "/"
                self.redirect(location, "%s=; Path=/; Max-Age=0" % COOKIE)
            else:
                self.page(404, "Not found", "")
        except Exception as error:  # shown, never a half-signed-in session
            self.page(
                502,
                "Sign-in failed",
                '<p id="error">%s</p>' % html.escape("%s: %s" % (type(error).__name__, error)),
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", default="http://127.0.0.1:8080")
    parser.add_argument("--client-id", default="example-rp")
    parser.add_argument("--client-secret", help="none: a public client (PKCE only)")
    parser.add_argument("--client-secret-file")
    parser.add_argument("--alg", default="RS256", choices=["RS256", "ES256", "EdDSA"])
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument(
        "--public-url",
        help="the app's address as browsers see it (default http://LISTEN); "
        "the redirect URI is PUBLIC_URL/callback",
    )
    args = parser.parse_args()
    if args.client_secret_file:
        with open(args.client_secret_file) as f:
            args.client_secret = f.read().strip()
    host, _, port = args.listen.rpartition(":")
    Handler.rp = RelyingParty(args)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(
        "example relying party on http://%s/ (redirect URI %s)" % (args.listen, Handler.rp.redirect_uri),
        flush=True,
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
