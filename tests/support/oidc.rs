//! The OpenID Provider under test (issue 17): a gateway on the seeded devnet
//! with a set of registered relying parties, and the raw HTTP steps of the
//! code flow (authorize, log in, token, userinfo) that the relying-party
//! libraries (`tests/oidc_rp.rs`) and the attack cases (`tests/oidc_attacks.rs`)
//! share.
//!
//! Why raw HTTP here: the attack cases must send what no library would
//! (duplicate parameters, wrong secrets, forged tokens) and see every
//! status and `Location` exactly. The libraries do their own HTTP.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use url::Url;

use super::gateway::{GATE, Response, Stack, get, post};

pub const AUTHORIZE: &str = "/.steemgate/oidc/authorize";
pub const TOKEN: &str = "/.steemgate/oidc/token";
pub const USERINFO: &str = "/.steemgate/oidc/userinfo";
pub const JWKS: &str = "/.steemgate/oidc/jwks.json";
pub const LOGOUT: &str = "/.steemgate/oidc/logout";
pub const DISCOVERY: &str = "/.well-known/openid-configuration";

/// A registered relying party.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub id: &'static str,
    /// `None`: a public client (PKCE required).
    pub secret: Option<&'static str>,
    pub redirect_uri: &'static str,
    /// The registered `id_token_signed_response_alg`.
    pub alg: &'static str,
}

/// Confidential, RS256 (the default): the one most tests use.
pub const BASIC: Client = Client {
    id: "rp-basic",
    secret: Some("basic-secret-0123456789abcdefghijklmnop"),
    redirect_uri: "https://rp.example.com/callback",
    alg: "RS256",
};
/// Confidential, for client_secret_post.
pub const POST: Client = Client {
    id: "rp-post",
    secret: Some("post-secret-0123456789abcdefghijklmnopq"),
    redirect_uri: "https://post.example.com/login/generic_oauth",
    alg: "RS256",
};
/// Public: no secret, PKCE S256 required.
pub const PUBLIC: Client = Client {
    id: "rp-public",
    secret: None,
    redirect_uri: "https://spa.example.com/callback",
    alg: "RS256",
};
pub const ES256: Client = Client {
    id: "rp-es256",
    secret: Some("es256-secret-0123456789abcdefghijklmnop"),
    redirect_uri: "https://es.example.com/callback",
    alg: "ES256",
};
pub const EDDSA: Client = Client {
    id: "rp-eddsa",
    secret: Some("eddsa-secret-0123456789abcdefghijklmnop"),
    redirect_uri: "https://ed.example.com/callback",
    alg: "EdDSA",
};
/// Confidential, with `policy: members` (subscribers of the devnet's
/// community hive-100001: alice, bob, carol; `demo` is outside).
pub const MEMBERS: Client = Client {
    id: "rp-members",
    secret: Some("members-secret-0123456789abcdefghijklmn"),
    redirect_uri: "https://club.example.com/callback",
    alg: "RS256",
};

/// Where [`BASIC`] may send a visitor after RP-initiated logout.
pub const POST_LOGOUT: &str = "https://rp.example.com/bye";

pub const CLIENTS: [Client; 6] = [BASIC, POST, PUBLIC, ES256, EDDSA, MEMBERS];

/// The `policies:` and `oidc:` blocks for `issuer` with [`CLIENTS`] and
/// `extra_clients` (more `    - {…}` lines).
pub fn oidc_yaml(issuer: &str, extra_clients: &str) -> String {
    let mut yaml = format!(
        "policies:\n  members: {{community: hive-100001}}\noidc:\n  issuer: \"{issuer}\"\n  token_ttl: 5m\n  clients:\n"
    );
    for client in CLIENTS {
        yaml.push_str(&format!(
            "    - client_id: {}\n      redirect_uris: [\"{}\"]\n      id_token_signed_response_alg: {}\n",
            client.id, client.redirect_uri, client.alg
        ));
        if let Some(secret) = client.secret {
            yaml.push_str(&format!("      client_secret: \"{secret}\"\n"));
        }
        if client.id == MEMBERS.id {
            yaml.push_str("      policy: members\n");
        }
        if client.id == BASIC.id {
            yaml.push_str(&format!(
                "      post_logout_redirect_uris: [\"{POST_LOGOUT}\"]\n"
            ));
        }
    }
    yaml.push_str(extra_clients);
    yaml
}

/// The public listener's address in a test config (`listen: "ADDR"`).
pub fn listen_addr(config: &str) -> String {
    config
        .lines()
        .find_map(|l| l.strip_prefix("listen: \"")?.strip_suffix('"'))
        .expect("listen in the test config")
        .to_string()
}

/// A gateway on the seeded devnet, its issuer its own address, with
/// [`CLIENTS`] and `extra_clients` registered.
pub fn start(extra_clients: &str) -> Stack {
    let stack = Stack::start_seeded_with(|config| {
        let issuer = format!("http://{}", listen_addr(&config));
        config.replace(
            "routes:\n",
            &format!("{}routes:\n", oidc_yaml(&issuer, extra_clients)),
        )
    });
    let config = std::fs::read_to_string(&stack.gateway.config_path).expect("read the config");
    assert!(
        config.contains(&format!("issuer: \"{}\"", issuer(&stack))),
        "the gateway moved to another port after a port clash; the issuer is stale"
    );
    stack
}

pub fn issuer(stack: &Stack) -> String {
    format!("http://{}", stack.addr())
}

/// `path?query` of an authorization request: `response_type=code`,
/// `client_id`, `redirect_uri`, `scope=openid profile`, then `extra`
/// (which may repeat or add any parameter).
pub fn authorize_path(client: &Client, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("client_id", client.id);
    query.append_pair("redirect_uri", client.redirect_uri);
    query.append_pair("scope", "openid profile");
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    format!("{AUTHORIZE}?{}", query.finish())
}

/// `path?query` of an authorization request with exactly these parameters.
pub fn authorize_with(params: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    format!("{AUTHORIZE}?{}", query.finish())
}

/// A fresh PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let mut bytes = [0u8; 32];
    steemgate::random::os_random(&mut bytes).expect("random");
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge =
        URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A random URL-safe string (state, nonce).
pub fn random_token() -> String {
    let mut bytes = [0u8; 18];
    steemgate::random::os_random(&mut bytes).expect("random");
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn is_redirect(status: u16) -> bool {
    matches!(status, 302 | 303)
}

/// The query parameters of `url` (absolute, or a path resolved on `base`).
pub fn query_of(url: &str) -> Vec<(String, String)> {
    let parsed = Url::parse(url)
        .or_else(|_| Url::parse("http://local.invalid/").and_then(|b| b.join(url)))
        .unwrap_or_else(|e| panic!("not a URL ({e}): {url}"));
    parsed.query_pairs().into_owned().collect()
}

/// The one value of `name` in `pairs` (panics when it appears twice).
pub fn single(pairs: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<&String> = pairs
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect();
    assert!(values.len() <= 1, "{name} appears {} times", values.len());
    values.first().map(|v| v.to_string())
}

/// A redirect to the relying party: its `Location` must start with the
/// registered redirect URI followed by `?`; returns the parameters.
pub fn redirect_to_client(response: &Response, client: &Client) -> Vec<(String, String)> {
    assert!(
        is_redirect(response.status),
        "expected a redirect to {}, got {}: {}",
        client.redirect_uri,
        response.status,
        response.body
    );
    let location = response.header("location").expect("Location");
    assert!(
        location.starts_with(&format!("{}?", client.redirect_uri)),
        "redirected to {location}, not to {}",
        client.redirect_uri
    );
    query_of(location)
}

/// The code of a successful authorization response (asserting `state` and
/// `iss` when given).
pub fn code_from(
    response: &Response,
    client: &Client,
    state: Option<&str>,
    issuer: &str,
) -> String {
    let params = redirect_to_client(response, client);
    assert_eq!(single(&params, "error"), None, "{params:?}");
    if let Some(state) = state {
        assert_eq!(single(&params, "state").as_deref(), Some(state));
    }
    assert_eq!(
        single(&params, "iss").as_deref(),
        Some(issuer),
        "{params:?}"
    );
    single(&params, "code").expect("a code")
}

/// `Cookie:` header line for `cookie` (`name=value`).
pub fn cookie_header(cookie: &str) -> String {
    format!("Cookie: {cookie}")
}

/// GET of `path` (an authorization request) with the session `cookie`, if any.
pub fn get_with(stack: &Stack, path: &str, cookie: Option<&str>) -> Response {
    match cookie {
        Some(cookie) => get(
            stack.addr(),
            path,
            &["Accept: text/html", &cookie_header(cookie)],
        ),
        None => get(stack.addr(), path, &["Accept: text/html"]),
    }
}

/// A visitor without a session opens `authorize` (path and query): the
/// gateway sends them to its login page, which they pass by paying the memo
/// from `account` (the devnet's simulated transfer); then they go where the
/// login page returns them (its `rd`), which must be the authorization
/// request again, and follow it. Returns (session cookie, that last
/// response: the redirect to the client).
pub fn login_through_authorize(
    stack: &Stack,
    authorize: &str,
    account: &str,
) -> (String, Response) {
    let first = get_with(stack, authorize, None);
    assert!(
        is_redirect(first.status),
        "an anonymous authorization request should go to the login page, got {}: {}",
        first.status,
        first.body
    );
    let location = first.header("location").expect("Location").to_string();
    let login = Url::parse(&format!("http://{}", stack.addr()))
        .unwrap()
        .join(&location)
        .expect("a login URL");
    assert_eq!(
        login.origin(),
        Url::parse(&format!("http://{}", stack.addr()))
            .unwrap()
            .origin(),
        "the login page is the gateway's: {location}"
    );
    assert_eq!(login.path(), "/.steemgate/login", "{location}");
    let pairs: Vec<(String, String)> = login.query_pairs().into_owned().collect();
    let rd = single(&pairs, "rd").expect("the login page is told where to return");
    assert!(
        rd.starts_with(AUTHORIZE),
        "the login page returns to {rd}, not to the authorization request"
    );
    let mut cookie = first.session_cookie();
    let login_path = format!("{}?{}", login.path(), login.query().unwrap_or_default());
    let page = get_with(stack, &login_path, cookie.as_deref());
    assert_eq!(page.status, 200, "the login page: {}", page.body);
    cookie = page.session_cookie().or(cookie);
    let mut headers = vec!["Accept: application/json".to_string()];
    if let Some(c) = &cookie {
        headers.push(cookie_header(c));
    }
    let headers_ref: Vec<&str> = headers.iter().map(String::as_str).collect();
    let status = get(stack.addr(), "/.steemgate/status", &headers_ref);
    assert_eq!(status.status, 200, "{}", status.body);
    let cookie = status
        .session_cookie()
        .or(cookie)
        .expect("the gateway gave the visitor a session cookie");
    let status = status.json();
    let memo = status["memo"].as_str().expect("a memo to pay").to_string();
    // "0.001 STEEM" or "0.001 HIVE", as the gateway asks.
    let amount = status["amount"]
        .as_str()
        .unwrap_or("0.001 STEEM")
        .to_string();
    stack.devnet.transfer(account, GATE, &amount, &memo);
    stack.devnet.produce_block(None);
    stack.wait_logged_in(&cookie, account);
    let back = get_with(stack, &rd, Some(&cookie));
    (cookie, back)
}

/// Logs `account` in on the gateway directly (no authorization request).
pub fn login(stack: &Stack, account: &str) -> String {
    stack.login_as(account)
}

/// Logs the session out on the gateway (as its own logout form does).
pub fn gateway_logout(stack: &Stack, cookie: &str) {
    let out = post(
        stack.addr(),
        "/.steemgate/logout",
        &[&cookie_header(cookie), "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200, "logout: {}", out.body);
}

/// A form body from pairs (each value form-encoded).
pub fn form(pairs: &[(&str, &str)]) -> String {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        body.append_pair(name, value);
    }
    body.finish()
}

/// `Authorization: Basic …` for client_secret_basic (RFC 6749 §2.3.1: both
/// parts form-encoded first).
pub fn basic_auth(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Authorization: Basic {}",
        STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// POST to the token endpoint with `body` and extra header lines.
pub fn token_request(stack: &Stack, headers: &[&str], body: &[(&str, &str)]) -> Response {
    let mut all = vec!["Accept: application/json"];
    all.extend_from_slice(headers);
    post(stack.addr(), TOKEN, &all, &form(body))
}

/// Redeems `code` as `client` with client_secret_basic (or as a public
/// client when it has no secret), with `verifier` when given.
pub fn redeem(stack: &Stack, client: &Client, code: &str, verifier: Option<&str>) -> Response {
    let mut body = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", client.redirect_uri),
    ];
    if let Some(v) = verifier {
        body.push(("code_verifier", v));
    }
    match client.secret {
        Some(secret) => token_request(stack, &[&basic_auth(client.id, secret)], &body),
        None => {
            body.push(("client_id", client.id));
            token_request(stack, &[], &body)
        }
    }
}

/// The JSON `error` of a token endpoint answer, with its status.
pub fn token_error(response: &Response) -> (u16, String) {
    let error = response.json()["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {}", response.body))
        .to_string();
    (response.status, error)
}

/// GET userinfo with `Authorization: Bearer token`.
pub fn userinfo(stack: &Stack, token: &str) -> Response {
    get(
        stack.addr(),
        USERINFO,
        &[
            "Accept: application/json",
            &format!("Authorization: Bearer {token}"),
        ],
    )
}

/// A userinfo answer refusing the token as RFC 6750 says: 401 with
/// `WWW-Authenticate: Bearer … error="invalid_token"`.
pub fn assert_invalid_token(response: &Response, what: &str) {
    assert_eq!(response.status, 401, "{what}: {}", response.body);
    let challenge = response
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{what}: WWW-Authenticate: {challenge}"
    );
}

/// The decoded header and payload of a compact JWS (signature unchecked).
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut decode = |what: &str| -> Value {
        let part = parts
            .next()
            .unwrap_or_else(|| panic!("no JWT {what} in {token}"));
        let bytes = URL_SAFE_NO_PAD
            .decode(part)
            .unwrap_or_else(|e| panic!("JWT {what} is not base64url ({e})"));
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT {what} is not JSON ({e})"))
    };
    let header = decode("header");
    let payload = decode("payload");
    (header, payload)
}

/// A Python 3 interpreter (on PATH, then Debian's /usr/bin/python3) that
/// can import every module in `modules`; `None` after a skip notice, a panic
/// under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`. (A pyenv or venv `python3`
/// first on PATH may lack the Debian packages that
/// `scripts/install-deps.sh --test` installs.)
pub fn python_with(modules: &[&str]) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("python3"))
                .filter(|c| c.is_file())
                .collect()
        })
        .unwrap_or_default();
    candidates.push(PathBuf::from("/usr/bin/python3"));
    let import = format!("import {}", modules.join(", "));
    let found = candidates.into_iter().find(|python| {
        std::process::Command::new(python)
            .args(["-c", &import])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        let what = format!("python3 with {}", modules.join(", "));
        if std::env::var(super::REQUIRE_ENV).as_deref() == Ok("1") {
            panic!(
                "{what} is required ({}=1) but none was found: run scripts/install-deps.sh --test",
                super::REQUIRE_ENV
            );
        }
        eprintln!("SKIPPED: no {what}; run scripts/install-deps.sh --test to run this test");
    }
    found
}

/// The gateway's address as a `SocketAddr` (for the RP examples).
pub fn addr(stack: &Stack) -> SocketAddr {
    stack.addr()
}
