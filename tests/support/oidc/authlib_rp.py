"""A relying party built on Python's authlib, driven by tests/oidc_rp.rs.

Why: the provider must work with OpenID Connect libraries that nobody in
this project wrote. This script does what such a relying party does, with
authlib's own code for every protocol step: discovery, the authorization URL
(state, nonce, PKCE S256), the code exchange (client_secret_basic,
client_secret_post or a public client), the ID token checked against the
provider's JWKS (signature, iss, aud, exp, iat, nonce, at_hash when present),
and userinfo.

Protocol with the test (one JSON object per line):
  1. prints {"authorize_url": ..., "state": ..., "nonce": ...}
  2. reads one line: the URL the provider redirected the browser to
  3. prints {"ok": true, "id_token_header": ..., "claims": ..., "userinfo": ...,
     "token_type": ..., "expires_in": ..., "discovery": ...}
     or {"ok": false, "error": "..."} (and exits 1) when any check fails.
"""

import argparse
import json
import sys

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebToken
from authlib.oidc.core import CodeIDToken


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret")
    parser.add_argument(
        "--auth-method",
        default="client_secret_basic",
        choices=["client_secret_basic", "client_secret_post", "none"],
    )
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--alg", default="RS256")
    args = parser.parse_args()

    http = requests.Session()
    # Only loopback, and never a redirect followed behind the library's back.
    http.trust_env = False
    discovery_url = args.issuer.rstrip("/") + "/.well-known/openid-configuration"
    response = http.get(discovery_url, timeout=10, allow_redirects=False)
    response.raise_for_status()
    metadata = response.json()
    if metadata.get("issuer") != args.issuer:
        raise ValueError("discovery names issuer %r, expected %r" % (metadata.get("issuer"), args.issuer))

    session = OAuth2Session(
        client_id=args.client_id,
        client_secret=args.client_secret,
        scope="openid profile",
        redirect_uri=args.redirect_uri,
        token_endpoint_auth_method=args.auth_method,
        code_challenge_method="S256",
    )
    session.trust_env = False
    code_verifier = generate_token(48)
    nonce = generate_token(20)
    authorize_url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    emit({"authorize_url": authorize_url, "state": state, "nonce": nonce})

    callback = sys.stdin.readline().strip()
    # authlib checks the state and takes the code from the callback URL.
    token = session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=code_verifier,
        allow_redirects=False,
    )

    jwks = http.get(metadata["jwks_uri"], timeout=10, allow_redirects=False)
    jwks.raise_for_status()
    # Only the client's registered algorithm is accepted.
    jwt = JsonWebToken([args.alg])
    claims = jwt.decode(
        token["id_token"],
        jwks.json(),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": args.issuer}},
        claims_params={
            "nonce": nonce,
            "client_id": args.client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate(leeway=5)

    userinfo = session.get(metadata["userinfo_endpoint"], timeout=10, allow_redirects=False)
    userinfo.raise_for_status()

    emit(
        {
            "ok": True,
            "id_token_header": dict(claims.header),
            "claims": dict(claims),
            "userinfo": userinfo.json(),
            "token_type": token.get("token_type"),
            "expires_in": token.get("expires_in"),
            "scope": token.get("scope"),
            "discovery": metadata,
        }
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the test shows whatever failed
        emit({"ok": False, "error": "%s: %s" % (type(error).__name__, error)})
        sys.exit(1)
