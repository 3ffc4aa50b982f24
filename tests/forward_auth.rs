//! Forward auth end to end: Debian's nginx (and caddy, when installed) run
//! the configs in `examples/forward-auth/` in front of the header-echo app,
//! asking the real steemgate binary `GET /.steemgate/auth` on every request.
//! This proves the examples, not just the endpoint: anonymous browsers are
//! sent to the login page, API clients get 401, the login works entirely
//! through the front proxy, the app sees exactly one `X-Steem-Account` (never a
//! client's), never the gateway's cookie, and logout takes effect.

mod support;

use std::net::SocketAddr;

use serde_json::json;
use support::front_proxy::FrontProxy;
use support::gateway::{GATE, Response, Stack, get, post, upstream_saw};

/// Client-sent identity claims; each must be gone before the app.
const SPOOFS: &[&[&str]] = &[
    &["X-Steem-Account: mallory"],
    &["x-steem-account: mallory"],
    &["X-STEEM-ACCOUNT: mallory"],
    &["X_Steem_Account: mallory"],
    &["x_steem_account: mallory"],
    &["X.Steem.Account: mallory"],
    &["X-Steem_Account: mallory"],
    &["X-Steem-Account: mallory, alice"],
    &["X-Steem-Account: mallory", "x-steem-account: eve"],
];

fn front_get(front: &FrontProxy, path: &str, headers: &[&str]) -> Response {
    get(front.addr, path, headers)
}

/// The app's echo of a request that must have reached it.
fn app_echo(front: &FrontProxy, response: Response) -> serde_json::Value {
    assert_eq!(
        response.status,
        200,
        "expected the app's answer, got {}: {}\nproxy log:\n{}",
        response.status,
        response.body,
        front.log()
    );
    let echo = response.json();
    assert!(echo["headers"].is_array(), "not the echo app: {echo}");
    echo
}

/// Logs `account` in using only the front proxy's address (plus the devnet
/// for the transfer); returns the session cookie `name=value`.
fn login_through(stack: &Stack, front: &FrontProxy, account: &str) -> String {
    let status = front_get(front, "/.steemgate/status", &["Accept: application/json"]);
    assert_eq!(status.status, 200, "{}", status.body);
    let cookie = status.session_cookie().expect("status sets the cookie");
    let doc = status.json();
    assert_eq!(doc["pay_to"], json!(GATE));
    let memo = doc["memo"].as_str().expect("memo").to_string();
    stack.devnet.transfer(account, GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    let header = format!("Cookie: {cookie}");
    for _ in 0..10 {
        let polled = front_get(
            front,
            "/.steemgate/status?wait=2",
            &["Accept: application/json", &header],
        );
        assert_eq!(polled.status, 200, "{}", polled.body);
        let polled = polled.json();
        if polled["authenticated"] == json!(true) {
            assert_eq!(polled["account"], json!(account));
            return cookie;
        }
    }
    panic!("never logged in through the front proxy");
}

/// The whole forward-auth story against one front proxy.
fn exercise(stack: &Stack, front: &FrontProxy) {
    // Anonymous browser: to the login page, with the way back.
    let browser = front_get(front, "/app/page?x=1", &["Accept: text/html,*/*;q=0.8"]);
    assert_eq!(browser.status, 302, "{}\n{}", browser.body, front.log());
    assert_eq!(
        browser.header("location"),
        Some("/.steemgate/login?rd=/app/page?x=1")
    );
    // Anonymous API client: 401, nothing reaches the app.
    let api = front_get(front, "/app/page", &["Accept: application/json"]);
    assert_eq!(api.status, 401, "{}", api.body);
    assert_eq!(api.json()["authenticated"], json!(false));
    assert!(
        api.header("www-authenticate")
            .is_some_and(|h| h.starts_with("SteemTransfer")),
        "{:?}",
        api.headers
    );
    // A client's claim does not get an anonymous visitor in.
    let claimed = front_get(
        front,
        "/app/page",
        &["Accept: application/json", "X-Steem-Account: alice"],
    );
    assert_eq!(claimed.status, 401);

    // steemgate's pages work through the proxy.
    let page = front_get(front, "/.steemgate/login?rd=/app", &["Accept: text/html"]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(GATE),
        "login page names the account to pay"
    );
    let script = front_get(front, "/.steemgate/assets/login.js", &[]);
    assert_eq!(script.status, 200);

    let cookie = login_through(stack, front, "alice");
    let cookie_header = format!("Cookie: other=1; {cookie}; theme=dark");

    // The app sees exactly the gateway's identity, whatever the client sends.
    for spoof in SPOOFS {
        let mut headers = vec![cookie_header.as_str(), "Accept: application/json"];
        headers.extend_from_slice(spoof);
        let echo = app_echo(front, front_get(front, "/app/page", &headers));
        assert_eq!(
            upstream_saw(&echo, "x-steem-account"),
            vec!["alice"],
            "spoof {spoof:?} changed the identity: {echo}"
        );
        let cookies = upstream_saw(&echo, "cookie").join("; ");
        assert!(
            !cookies.contains("steemgate="),
            "the gateway's cookie reached the app: {cookies:?}"
        );
        assert!(
            cookies.contains("other=1") && cookies.contains("theme=dark"),
            "the app's own cookies must pass: {cookies:?}"
        );
        // The public part never carries an identity, logged in or not.
        for with_cookie in [true, false] {
            let mut headers = vec!["Accept: application/json"];
            if with_cookie {
                headers.push(&cookie_header);
            }
            headers.extend_from_slice(spoof);
            let echo = app_echo(front, front_get(front, "/public/x", &headers));
            assert!(
                upstream_saw(&echo, "x-steem-account").is_empty(),
                "spoof {spoof:?} reached the public app: {echo}"
            );
        }
    }

    // Logout through the proxy (same-origin POST), then anonymous again.
    let origin = format!("Origin: http://{}", front.addr);
    let logout = post(
        front.addr,
        "/.steemgate/logout",
        &[
            &format!("Cookie: {cookie}"),
            &origin,
            "Accept: application/json",
        ],
        "",
    );
    assert_eq!(logout.status, 200, "{}", logout.body);
    let after = front_get(
        front,
        "/app/page",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
    );
    assert_eq!(after.status, 401, "{}", after.body);
}

fn app_addr(stack: &Stack) -> SocketAddr {
    stack.upstream.addr
}

#[test]
fn nginx_auth_request_example_protects_the_app() {
    let stack = Stack::start();
    let Some(nginx) = FrontProxy::nginx(stack.addr(), app_addr(&stack)) else {
        return;
    };
    exercise(&stack, &nginx);
    // The auth subrequest location is internal: clients cannot reach it.
    assert_eq!(front_get(&nginx, "/.steemgate/auth", &[]).status, 404);
}

#[test]
fn caddy_forward_auth_example_protects_the_app() {
    let stack = Stack::start();
    let Some(caddy) = FrontProxy::caddy(stack.addr(), app_addr(&stack)) else {
        return;
    };
    exercise(&stack, &caddy);
}
