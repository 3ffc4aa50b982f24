//! End-to-end tests of the gateway: the real binary, an in-test devnet and a
//! header-echo upstream, driven over raw HTTP/1.1 on loopback.

mod support;

use serde_json::{Value, json};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;
use support::gateway::{GATE, Stack, get, post, raw_request, read_response, upstream_saw};

fn echo(response: &support::gateway::Response) -> Value {
    assert_eq!(
        response.status, 200,
        "expected the upstream's answer, got {}: {}",
        response.status, response.body
    );
    response.json()
}

#[test]
fn browsers_are_redirected_to_login_and_scripts_get_401_json() {
    let stack = Stack::start();
    let browser = get(
        stack.addr(),
        "/app/page?x=1",
        &["Accept: text/html,application/xhtml+xml"],
    );
    assert_eq!(browser.status, 302);
    assert_eq!(
        browser.header("location"),
        Some("/.steemgate/login?rd=%2Fapp%2Fpage%3Fx%3D1")
    );

    let script = get(stack.addr(), "/app/page", &["Accept: application/json"]);
    assert_eq!(script.status, 401);
    let body = script.json();
    assert_eq!(body["authenticated"], json!(false));
    assert_eq!(body["pay_to"], json!(GATE));
    assert_eq!(body["amount"], json!("0.001 STEEM"));
    assert!(
        body["memo"].as_str().is_some_and(|m| m.len() >= 16),
        "{body}"
    );
    assert!(
        body["expires_in"]
            .as_u64()
            .is_some_and(|s| s > 800 && s <= 900),
        "{body}"
    );
    let cookie = script
        .headers_named("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("steemgate="))
        .expect("cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            cookie.contains(attribute),
            "{attribute} missing in {cookie}"
        );
    }
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP must not set Secure: {cookie}"
    );
}

#[test]
fn login_by_transfer_forwards_exactly_one_identity_and_never_the_cookie() {
    let stack = Stack::start();
    let cookie = stack.login_as("alice");
    let header = format!("Cookie: other=1; {cookie}; theme=dark");
    let seen = echo(&get(stack.addr(), "/app", &[&header]));
    assert_eq!(upstream_saw(&seen, "x-steem-account"), vec!["alice"]);
    let cookies = upstream_saw(&seen, "cookie");
    assert_eq!(
        cookies,
        vec!["other=1; theme=dark"],
        "the gateway cookie must not reach the upstream"
    );

    // The login page sends a logged-in visitor straight to rd.
    let page = get(
        stack.addr(),
        "/.steemgate/login?rd=/app/x",
        &[&header, "Accept: text/html"],
    );
    assert_eq!(page.status, 302);
    assert_eq!(page.header("location"), Some("/app/x"));
    // Forward auth answers with the identity.
    let auth = get(stack.addr(), "/.steemgate/auth", &[&header]);
    assert_eq!(auth.status, 200);
    assert_eq!(auth.header("x-steem-account"), Some("alice"));
    assert_eq!(get(stack.addr(), "/.steemgate/auth", &[]).status, 401);
}

/// Several keep-alive connections at once, several requests each, on the
/// default runtime (a current-thread runtime per thread that accepts, serves
/// and pools upstream connections on its own) and on the work-stealing one:
/// every request is served, with exactly the session's identity.
#[test]
fn both_runtimes_serve_concurrent_keep_alive_connections_with_the_identity() {
    for work_stealing in ["", "work_stealing: on\n"] {
        let stack = Stack::start_with(|config| {
            config.replacen("threads: 2\n", &format!("threads: 2\n{work_stealing}"), 1)
        });
        let cookie = stack.login_as("alice");
        let addr = stack.addr();
        let clients: Vec<_> = (0..6)
            .map(|client| {
                let cookie = cookie.clone();
                std::thread::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(20)))
                        .unwrap();
                    for request in 0..15 {
                        let head = format!(
                            "GET /app/{client}/{request} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
                        );
                        stream.write_all(head.as_bytes()).unwrap();
                        let seen = echo(&read_response(&mut stream));
                        assert_eq!(upstream_saw(&seen, "x-steem-account"), vec!["alice"]);
                    }
                })
            })
            .collect();
        for client in clients {
            client
                .join()
                .expect("every request on every connection is served");
        }
        // Each thread registered its own copy of the listening socket.
        assert!(
            !stack.gateway.log().contains("shared listener"),
            "{}",
            stack.gateway.log()
        );
    }
}

/// Client-sent identity spellings that must never reach an upstream.
const SPOOFS: &[&str] = &[
    "X-Steem-Account: mallory",
    "x-steem-account: mallory",
    "X-STEEM-ACCOUNT: mallory",
    "X_Steem_Account: mallory",
    "x_steem_account: mallory",
    "X.Steem.Account: mallory",
    "X-Steem_Account: mallory",
    "X-Steem-Account: mallory, alice",
    "X-Steem-Assertion: forged",
];

#[test]
fn spoofed_identity_headers_never_reach_upstreams() {
    let stack = Stack::start();
    let cookie = format!("Cookie: {}", stack.login_as("bob"));
    for (path, logged_in, want) in [
        ("/public/x", false, None),
        ("/public/x", true, None),
        ("/maybe/x", false, None),
        ("/maybe/x", true, Some("bob")),
        ("/app", true, Some("bob")),
    ] {
        for spoof in SPOOFS {
            let mut headers = vec![*spoof, "Accept: application/json"];
            if logged_in {
                headers.push(&cookie);
            }
            // Duplicated and combined with Connection tricks.
            let connection = "Connection: close, X-Steem-Account, X_Steem_Account";
            for extra in [None, Some(*spoof), Some(connection)] {
                let mut all = headers.clone();
                if let Some(extra) = extra {
                    all.push(extra);
                }
                let seen = echo(&get(stack.addr(), path, &all));
                let values = upstream_saw(&seen, "x-steem-account");
                match want {
                    Some(account) => assert_eq!(values, vec![account], "{path} {all:?}"),
                    None => assert!(values.is_empty(), "{path} {all:?} leaked {values:?}"),
                }
                assert!(
                    upstream_saw(&seen, "x-steem-assertion").is_empty(),
                    "{path} {all:?}"
                );
            }
        }
    }
}

#[test]
fn tampered_or_junk_cookies_are_just_no_session() {
    let stack = Stack::start();
    let cookie = stack.login_as("carol");
    let value = cookie.trim_start_matches("steemgate=").to_string();
    let mut flipped = value.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let long = "A".repeat(3000);
    for bad in [
        format!("steemgate={flipped}"),
        format!("steemgate={}", &value[..value.len() - 5]),
        "steemgate=".to_string(),
        "steemgate=v1.%00.%ff".to_string(),
        format!("steemgate={long}"),
        "steemgate=v1.AAAA.BBBB; steemgate=junk".to_string(),
        "=====; ;;; steemgate".to_string(),
    ] {
        let header = format!("Cookie: {bad}");
        let response = get(stack.addr(), "/app", &[&header, "Accept: application/json"]);
        assert_eq!(response.status, 401, "{bad:.60} → {}", response.body);
    }
    // A forged duplicate before the real cookie does not hide it.
    let header = format!("Cookie: steemgate=v1.AAAA.BBBB; {cookie}");
    assert_eq!(
        upstream_saw(
            &echo(&get(stack.addr(), "/app", &[&header])),
            "x-steem-account"
        ),
        vec!["carol"]
    );
}

#[test]
fn allowlist_optional_public_and_unrouted_requests() {
    let stack = Stack::start();
    let alice = format!("Cookie: {}", stack.login_as("alice"));
    let bob = format!("Cookie: {}", stack.login_as("bob"));
    assert_eq!(
        upstream_saw(
            &echo(&get(stack.addr(), "/admin/panel", &[&alice])),
            "x-steem-account"
        ),
        vec!["alice"]
    );
    let denied = get(stack.addr(), "/admin/panel", &[&bob, "Accept: text/html"]);
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains("@bob"), "{}", denied.body);
    // The 403 page offers to log out and use another account.
    assert!(
        denied
            .body
            .contains(r#"<form method="post" action="/.steemgate/logout">"#),
        "{}",
        denied.body
    );
    assert!(denied.header("content-security-policy").is_some());

    let anonymous = echo(&get(stack.addr(), "/maybe", &[]));
    assert!(upstream_saw(&anonymous, "x-steem-account").is_empty());
    assert_eq!(
        upstream_saw(
            &echo(&get(stack.addr(), "/maybe", &[&bob])),
            "x-steem-account"
        ),
        vec!["bob"]
    );
    assert!(
        upstream_saw(
            &echo(&get(stack.addr(), "/public", &[&bob])),
            "x-steem-account"
        )
        .is_empty()
    );

    // No route for this host: the gateway answers 404 itself.
    let raw = b"GET /anything HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\nAccept: application/json\r\n\r\n";
    let unrouted = raw_request(stack.addr(), raw);
    assert_eq!(unrouted.status, 404);
    assert!(unrouted.body.contains("error"), "{}", unrouted.body);
}

#[test]
fn logout_revokes_the_session_server_side() {
    let stack = Stack::start();
    let cookie = stack.login_as("alice");
    let header = format!("Cookie: {cookie}");
    let out = post(
        stack.addr(),
        "/.steemgate/logout",
        &[&header, "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200);
    assert!(
        out.headers_named("set-cookie")
            .iter()
            .any(|c| c.starts_with("steemgate=;") && c.contains("Max-Age=0"))
    );
    // Replaying the old cookie does not work: the session is gone on the server.
    assert_eq!(
        get(stack.addr(), "/app", &[&header, "Accept: application/json"]).status,
        401
    );
    // Cross-site logout attempts are refused.
    let cookie2 = format!("Cookie: {}", stack.login_as("bob"));
    let cross = post(
        stack.addr(),
        "/.steemgate/logout",
        &[&cookie2, "Origin: https://evil.example"],
        "",
    );
    assert_eq!(cross.status, 403);
    assert_eq!(
        upstream_saw(
            &echo(&get(stack.addr(), "/app", &[&cookie2])),
            "x-steem-account"
        ),
        vec!["bob"]
    );
}

/// What browsers really send on a form POST from our own pages, and what a
/// forging site can make them send: the decision follows `Sec-Fetch-Site`
/// first, then `Origin` (see src/proxy/origin.rs).
#[test]
fn logout_from_our_own_pages_works_and_from_other_sites_is_refused() {
    let stack = Stack::start();
    let own_origin = format!("Origin: http://{}", stack.addr());
    // (headers, accepted?)
    let cases: Vec<(Vec<&str>, bool)> = vec![
        // Chromium on a page with `Referrer-Policy: no-referrer`.
        (vec!["Sec-Fetch-Site: same-origin", "Origin: null"], true),
        (vec!["Sec-Fetch-Site: same-origin", &own_origin], true),
        // Typed into the address bar / a bookmark.
        (vec!["Sec-Fetch-Site: none"], true),
        // An older browser: Origin only.
        (vec![&own_origin], true),
        // curl and scripts: neither header.
        (vec![], true),
        // Forgeries.
        (
            vec!["Sec-Fetch-Site: cross-site", "Origin: https://evil.example"],
            false,
        ),
        (vec!["Sec-Fetch-Site: cross-site", &own_origin], false),
        (vec!["Sec-Fetch-Site: same-site", &own_origin], false),
        (vec!["Origin: null"], false),
        (vec!["Origin: https://evil.example"], false),
    ];
    for (headers, accepted) in cases {
        let account = "bob";
        let cookie = format!("Cookie: {}", stack.login_as(account));
        let mut all = vec![cookie.as_str(), "Accept: application/json"];
        all.extend(headers.iter().copied());
        let out = post(stack.addr(), "/.steemgate/logout", &all, "");
        let after = get(stack.addr(), "/app", &[&cookie, "Accept: application/json"]);
        if accepted {
            assert_eq!(out.status, 200, "{headers:?}: {}", out.body);
            assert_eq!(after.status, 401, "{headers:?}: still logged in");
        } else {
            assert_eq!(out.status, 403, "{headers:?}: {}", out.body);
            assert_eq!(
                upstream_saw(&echo(&after), "x-steem-account"),
                vec![account],
                "{headers:?}: logged out by a forgery"
            );
        }
    }
}

/// An image or icon of a protected path (browsers ask every page for
/// /favicon.ico) gets a plain 401: no login session is opened for it.
#[test]
fn subresources_of_protected_routes_open_no_session() {
    let stack = Stack::start();
    let icon = get(
        stack.addr(),
        "/app/favicon.ico",
        &["Sec-Fetch-Dest: image", "Accept: image/avif,image/webp,*/*"],
    );
    assert_eq!(icon.status, 401);
    assert!(
        icon.headers_named("set-cookie").is_empty(),
        "{:?}",
        icon.headers_named("set-cookie")
    );
    // A page load still goes to the login page, and a script's fetch gets
    // the status document with a session.
    let page = get(
        stack.addr(),
        "/app",
        &["Sec-Fetch-Dest: document", "Accept: text/html"],
    );
    assert_eq!(page.status, 302);
    let fetch = get(
        stack.addr(),
        "/app",
        &["Sec-Fetch-Dest: empty", "Accept: application/json"],
    );
    assert_eq!(fetch.status, 401);
    assert!(fetch.session_cookie().is_some());
    assert!(fetch.json()["memo"].is_string());
}

#[test]
fn open_redirects_are_replaced_by_root() {
    let stack = Stack::start();
    let header = format!("Cookie: {}", stack.login_as("alice"));
    for rd in [
        "//evil.com",
        "https://evil.com",
        "/\\evil.com",
        "%2F%2Fevil.com",
        "/%2F%2Fevil.com",
        "/%09/evil.com",
        "javascript:alert(1)",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        let response = get(
            stack.addr(),
            &format!("/.steemgate/login?rd={encoded}"),
            &[&header],
        );
        assert_eq!(response.status, 302, "{rd}");
        assert_eq!(response.header("location"), Some("/"), "{rd}");
    }
}

#[test]
fn path_tricks_do_not_change_the_route() {
    let stack = Stack::start();
    for path in [
        "/public/../app",
        "/public/%2e%2e/app",
        "/public/%2E%2E/app",
        "//app",
        "/public/./../app",
    ] {
        let response = get(stack.addr(), path, &["Accept: application/json"]);
        assert_eq!(
            response.status, 401,
            "{path} must reach the required route's auth check: {}",
            response.body
        );
    }
    for path in [
        "/app;x",
        "/public%2F..%2Fapp",
        "/public%5C..%5Capp",
        "/public\\..\\app",
    ] {
        let response = get(stack.addr(), path, &["Accept: application/json"]);
        assert_eq!(response.status, 400, "{path}: {}", response.body);
    }
    // The upstream receives the canonical path that was authorised.
    let seen = echo(&get(stack.addr(), "/public/a/../b/%7Ex?q=1", &[]));
    assert_eq!(seen["target"], json!("/public/b/~x?q=1"));
}

#[test]
fn admin_endpoints_are_never_on_the_public_listener() {
    let stack = Stack::start();
    for path in [
        "/metrics",
        "/health",
        "/ready",
        "/.steemgate/metrics",
        "/.steemgate/health",
    ] {
        let response = get(stack.addr(), path, &["Accept: application/json"]);
        assert!(
            !response.body.contains("steemgate_requests_total"),
            "{path}"
        );
        assert_ne!(
            response.status, 200,
            "{path} answered 200 on the public listener"
        );
    }
    let metrics = get(stack.gateway.admin, "/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("steemgate_requests_total"),
        "{}",
        metrics.body
    );
    assert_eq!(get(stack.gateway.admin, "/health", &[]).status, 200);
}

#[test]
fn sessions_survive_a_restart_and_transfers_made_while_down_still_log_in() {
    let mut stack = Stack::start();
    let alive = stack.login_as("alice");
    let (pending, memo) = stack.start_login();
    stack.gateway.stop();

    // While the gateway is down, the visitor pays and blocks move on.
    stack.devnet.transfer("dave", GATE, "0.001 STEEM", &memo);
    for _ in 0..5 {
        stack.devnet.produce_block(None);
    }
    let config = std::fs::read_to_string(&stack.gateway.config_path).unwrap();
    let (addr, admin) = (stack.gateway.addr, stack.gateway.admin);
    stack.gateway = support::gateway::GatewayProcess::start(&config, stack.dir.path(), addr, admin);
    stack.wait_ready();

    stack.wait_logged_in(&pending, "dave");
    let header = format!("Cookie: {alive}");
    assert_eq!(
        upstream_saw(
            &echo(&get(stack.addr(), "/app", &[&header])),
            "x-steem-account"
        ),
        vec!["alice"]
    );
}

#[test]
fn only_a_sufficient_transfer_to_us_in_an_accepted_asset_logs_in() {
    let stack = Stack::start();
    let (cookie, memo) = stack.start_login();
    stack
        .devnet
        .transfer("mallory", "someone-else", "0.001 STEEM", &memo);
    stack
        .devnet
        .transfer("mallory", GATE, "0.001 STEEM", &format!("#{memo}"));
    let block = stack.devnet.produce_block(None);
    stack.devnet.produce_block(None);
    // Not logged in because the follower read those transfers and refused
    // them, not because it has not got there yet.
    support::gateway::wait_processed(stack.gateway.admin, block + 1);
    let status = stack.status(&cookie);
    assert_eq!(status["authenticated"], json!(false), "{status}");
    // SBD counts on Steem; the memo matches ignoring case and whitespace.
    stack.devnet.transfer(
        "erin",
        GATE,
        "0.001 SBD",
        &format!("  {}  ", memo.to_lowercase()),
    );
    stack.devnet.produce_block(None);
    stack.wait_logged_in(&cookie, "erin");
    // A replay of the same memo by someone else changes nothing.
    stack.devnet.transfer("mallory", GATE, "0.001 STEEM", &memo);
    let replay = stack.devnet.produce_block(None);
    support::gateway::wait_processed(stack.gateway.admin, replay);
    assert_eq!(stack.status(&cookie)["account"], json!("erin"));
}

#[test]
fn the_login_page_shows_payment_memo_and_simulation_label() {
    let stack = Stack::start();
    let page = get(
        stack.addr(),
        "/.steemgate/login?rd=/app",
        &["Accept: text/html"],
    );
    assert_eq!(page.status, 200);
    let cookie = page
        .session_cookie()
        .expect("login page sets the session cookie");
    let status = stack.status(&cookie);
    let memo = status["memo"].as_str().unwrap();
    for needle in [
        memo,
        "0.001 STEEM",
        "@gate-test",
        "SIMULATION",
        "this browser",
        "/.steemgate/assets/login.js",
    ] {
        assert!(page.body.contains(needle), "login page lacks {needle:?}");
    }
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("http"),
        "{csp}"
    );
    // The simulate button logs the visitor in (devnet only).
    let simulated = post(
        stack.addr(),
        "/.steemgate/devnet/transfer",
        &[&format!("Cookie: {cookie}")],
        "from=frank&rd=%2Fapp",
    );
    assert_eq!(simulated.status, 302, "{}", simulated.body);
    stack.devnet.produce_block(None);
    stack.wait_logged_in(&cookie, "frank");
}

#[test]
fn new_sessions_and_status_polls_are_rate_limited_per_client() {
    let stack = Stack::start_with(|config| {
        config.replace(
            "limits: {new_sessions_per_minute: 0, status_per_minute: 0}",
            "limits: {new_sessions_per_minute: 3, new_sessions_burst: 3, status_per_minute: 8, status_burst: 8}",
        )
    });
    let mut cookie = String::new();
    for _ in 0..3 {
        let fresh = get(
            stack.addr(),
            "/.steemgate/status",
            &["Accept: application/json"],
        );
        assert_eq!(fresh.status, 200);
        cookie = fresh.session_cookie().expect("a new session");
    }
    let refused = get(stack.addr(), "/app", &["Accept: application/json"]);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("60"));
    assert!(
        refused.session_cookie().is_none(),
        "no session is minted when refused"
    );
    // An existing session is not affected by the new-session limit...
    let header = format!("Cookie: {cookie}");
    let existing = get(
        stack.addr(),
        "/.steemgate/status",
        &["Accept: application/json", &header],
    );
    assert_eq!(existing.status, 200);
    // ...but status polling has its own bound.
    let statuses: Vec<u16> = (0..6)
        .map(|_| {
            get(
                stack.addr(),
                "/.steemgate/status",
                &["Accept: application/json", &header],
            )
            .status
        })
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        2,
        "{statuses:?}"
    );
}

#[test]
fn audit_log_records_logins_and_refusals_without_secrets() {
    let stack = Stack::start();
    let cookie = stack.login_as("alice");
    let (_, memo) = stack.start_login();
    stack
        .devnet
        .transfer("mallory", GATE, "0.001 STEEM", &format!("#{memo}"));
    stack.devnet.produce_block(None);
    let log_path = stack
        .dir
        .path()
        .join(format!("gateway-{}.log", stack.addr().port()));
    let refused = support::wait_until(std::time::Duration::from_secs(10), || {
        std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("login transfer refused")
    });
    assert!(refused, "an encrypted-memo transfer to us is audited");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let login = log
        .lines()
        .find(|l| l.contains("login by transfer"))
        .expect("a login audit line");
    assert!(
        login.contains("alice") && login.contains("txid") && login.contains("block"),
        "{login}"
    );
    let session = login
        .split("session=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("session id");
    assert!(
        log.lines().any(|l| l.contains("login session created")
            && l.contains(session)
            && l.contains("127.0.0.1")),
        "the session's creation (with the client address) correlates with its login"
    );
    let cookie_value = cookie.trim_start_matches("steemgate=");
    assert!(
        !log.contains(cookie_value),
        "the cookie must never be logged"
    );
    assert!(
        !log.contains(support::gateway::SECRET),
        "the secret must never be logged"
    );
}

#[test]
fn the_login_page_offers_wallet_links_a_local_qr_code_and_trust_text() {
    let stack = Stack::start();
    let page = get(
        stack.addr(),
        "/.steemgate/login?rd=/app",
        &["Accept: text/html"],
    );
    assert_eq!(page.status, 200);
    let cookie = format!("Cookie: {}", page.session_cookie().expect("cookie"));
    let status = get(
        stack.addr(),
        "/.steemgate/status",
        &["Accept: application/json", &cookie],
    )
    .json();
    let memo = status["memo"].as_str().unwrap();
    let hot_sign =
        format!("https://steemlogin.com/sign/transfer?to={GATE}&amount=0.001%20STEEM&memo={memo}");
    assert_eq!(status["hot_sign_url"], json!(hot_sign));
    for needle in [
        // The site is named: no site_name here, so the Host.
        format!("Log in to {}", stack.addr()),
        // Trust text.
        "logs in <strong>this browser</strong>".to_string(),
        "No key or password is ever asked for".to_string(),
        "Do not encrypt the memo (no leading <code>#</code>)".to_string(),
        "If someone else gave you a code, do not send it".to_string(),
        // One-click and any-wallet payment, HTML-escaped in the attribute
        // (minijinja also escapes `/`).
        format!(
            r#"href="{}""#,
            hot_sign.replace('&', "&amp;").replace('/', "&#x2f;")
        ),
        r#"id="keychain""#.to_string(),
        format!(r#"data-pay-to="{GATE}""#),
        r#"data-amount="0.001""#.to_string(),
        r#"data-currency="STEEM""#.to_string(),
        // No-JS fallback.
        r#"<noscript><meta http-equiv="refresh" content="5"></noscript>"#.to_string(),
        // The QR code is inline SVG, drawn by the gateway.
        r#"<div id="qr" role="img" aria-label="QR code of the signing link"><svg"#.to_string(),
    ] {
        assert!(page.body.contains(&needle), "login page lacks {needle:?}");
    }
    // Nothing on the page loads from anywhere but the gateway itself.
    for needle in ["src=\"http", "src=\"//", "<script>", "url(http"] {
        assert!(!page.body.contains(needle), "login page has {needle:?}");
    }
    assert_eq!(page.body.matches("<script").count(), 1);

    // The script and the QR code image are served by the gateway.
    let script = get(stack.addr(), "/.steemgate/assets/login.js", &[]);
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(script.body.contains("requestTransfer"));
    assert_eq!(
        get(stack.addr(), "/.steemgate/assets/nope.js", &[]).status,
        404
    );
    let qr = get(stack.addr(), "/.steemgate/qr.svg", &[&cookie]);
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert!(qr.body.starts_with("<svg") && qr.body.ends_with("</svg>"));
    assert_eq!(get(stack.addr(), "/.steemgate/qr.svg", &[]).status, 404);

    // Logged in: no memo, no link, no QR code.
    stack.devnet.transfer("gina", GATE, "0.001 STEEM", memo);
    stack.devnet.produce_block(None);
    let cookie_value = cookie.trim_start_matches("Cookie: ");
    stack.wait_logged_in(cookie_value, "gina");
    assert_eq!(stack.status(cookie_value)["hot_sign_url"], Value::Null);
    assert_eq!(
        get(stack.addr(), "/.steemgate/qr.svg", &[&cookie]).status,
        404
    );
}

/// The test harness itself: ports come from probe sockets that are closed
/// before the gateway binds, so another test may take one first. The harness
/// must then start the gateway on fresh ports, not fail the test.
#[test]
fn the_harness_moves_a_gateway_whose_port_was_taken() {
    let stack = Stack::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let admin = support::free_addr();
    let config = support::gateway::test_config(
        addr,
        admin,
        &stack.devnet.url(),
        stack.upstream.addr,
        &stack.dir.path().join("second-store"),
    );
    let gateway = support::gateway::GatewayProcess::start(&config, stack.dir.path(), addr, admin);
    assert_ne!(gateway.addr, addr, "started on the taken port?");
    let response = get(gateway.addr, "/public/x", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    drop(taken);
}

/// pingora alone would retry a taken `listen` port for 30 s and then keep
/// the process alive without a proxy; steemgate exits at once, naming it.
#[test]
fn a_taken_listen_port_makes_run_exit_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = support::gateway::test_config(
        addr,
        support::free_addr(),
        "http://127.0.0.1:9",
        support::free_addr(),
        &dir.path().join("store"),
    );
    let config_path = dir.path().join("steemgate.yaml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steemgate"))
        .args(["run", "--config"])
        .arg(&config_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    support::wait_until(std::time::Duration::from_secs(20), || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("steemgate kept running on a taken port");
    };
    assert!(!status.success());
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains(&addr.to_string()) && stderr.contains("listen"),
        "{stderr}"
    );
    drop(taken);
}

/// The stale-follows report as a route of the gateway (`builtin:
/// stale-follows`), for an account logged in through the gateway: the
/// seeded devnet's `demo` follows 3,000 accounts.
#[test]
fn the_stale_follows_route_reports_on_the_logged_in_account() {
    let stack = Stack::start_seeded_with(|config| {
        // The report fetches 3,000 accounts: a debug build on a busy
        // machine needs more than 2 s per node call.
        config.replace("request_timeout: 2s", "request_timeout: 20s")
            + "  - {path: /stale, upstream: \"builtin:stale-follows\", auth: required}\n"
    });
    let addr = stack.addr();
    // Without a session the report is not reached.
    let anonymous = get(addr, "/stale?format=json", &["Accept: application/json"]);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");

    let cookie = format!("Cookie: {}", stack.login_as("demo"));
    let answer = get(
        addr,
        "/stale?format=json&days=40",
        &["Accept: application/json", &cookie],
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let report = answer.json();
    assert_eq!(report["account"], "demo");
    assert_eq!(report["following"], 3000);
    assert_eq!(report["threshold_days"], 40);
    let stale = report["stale"].as_array().unwrap();
    assert!(
        stale.len() > 300 && stale.len() < 3000,
        "{} rows: the seed makes about half of the follows quiet",
        stale.len()
    );
    // Every row is true of the chain: the account's last post is the one
    // the devnet has, and older than 40 days (or never).
    let now = steemgate::clock::now_unix();
    for batch in stale.chunks(100) {
        let names: Vec<&str> = batch.iter().map(|r| r["name"].as_str().unwrap()).collect();
        let accounts = stack
            .devnet
            .rpc("condenser_api.get_accounts", json!([names]));
        for (row, account) in batch.iter().zip(accounts.as_array().unwrap()) {
            assert_eq!(row["name"], account["name"]);
            assert_eq!(row["last_post"], account["last_post"], "{row}");
            let last =
                steemgate::chain::devnet::parse_chain_time(account["last_post"].as_str().unwrap())
                    .unwrap();
            assert!(last == 0 || now - last > 40 * 86_400, "{row}");
        }
    }

    // The page lists the same rows, 500 to a page, in the same order.
    let page_size = steemgate::report::PAGE_SIZE;
    let pages = stale.len().div_ceil(page_size);
    let mut listed = Vec::new();
    for n in 1..=pages {
        let page = get(
            addr,
            &format!("/stale?days=40&page={n}"),
            &["Accept: text/html", &cookie],
        );
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Stale follows of @demo"));
        let rows: Vec<String> = page
            .body
            .split("<tr data-name=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap().to_string())
            .collect();
        assert!(rows.len() <= page_size);
        listed.extend(rows);
    }
    let names: Vec<&str> = stale.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(listed, names);

    // A forged identity header or query does not change whose report it is.
    let forged = get(
        addr,
        "/stale?format=json&account=alice",
        &[
            "Accept: application/json",
            &cookie,
            "X-Steem-Account: alice",
        ],
    );
    assert_eq!(forged.json()["account"], "demo");
}

/// Production mode: a config without `chain.devnet`, its node a chain the
/// gateway does not know to be simulated. Nothing of the devnet shows.
#[test]
fn without_chain_devnet_the_simulation_is_absent() {
    let stack = Stack::start_with(|config| {
        assert!(config.contains("  devnet: true\n"));
        config.replace("  devnet: true\n", "")
    });
    let addr = stack.addr();
    let page = get(addr, "/.steemgate/login?rd=%2Fapp", &["Accept: text/html"]);
    assert_eq!(page.status, 200);
    let cookie = page.session_cookie().expect("a login session");
    for needle in ["Simulate", "SIMULATION", "devnet/transfer", "sim-from"] {
        assert!(!page.body.contains(needle), "{needle} on the login page");
    }
    let status = stack.status(&cookie);
    assert_eq!(status["simulated"], json!(false), "{status}");

    // The simulate endpoint does not exist, even for a same-origin form
    // post with a login in progress; nothing is submitted to the node.
    let head = stack
        .devnet
        .rpc("condenser_api.get_dynamic_global_properties", json!([]))["head_block_number"]
        .as_u64()
        .unwrap();
    let simulated = post(
        addr,
        "/.steemgate/devnet/transfer",
        &[
            &format!("Cookie: {cookie}"),
            &format!("Origin: http://{addr}"),
            "Sec-Fetch-Site: same-origin",
        ],
        "from=frank&rd=%2Fapp",
    );
    assert_eq!(simulated.status, 404, "{simulated:?}");
    assert!(simulated.header("x-devnet").is_none());
    let block = stack.devnet.produce_block(None);
    assert_eq!(block, head + 1);
    let transfers = stack.devnet.transfers_in(block);
    assert!(
        transfers.is_empty(),
        "the gateway submitted a transfer: {transfers:?}"
    );
    support::gateway::wait_processed(stack.gateway.admin, block);
    assert_eq!(stack.status(&cookie)["authenticated"], json!(false));

    // A real payment still logs in, and no answer carries X-Devnet.
    let memo = stack.status(&cookie)["memo"].as_str().unwrap().to_string();
    stack.devnet.transfer("frank", GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    stack.wait_logged_in(&cookie, "frank");
    for path in [
        "/.steemgate/login",
        "/.steemgate/status",
        "/app",
        "/public/x",
    ] {
        let response = get(addr, path, &[&format!("Cookie: {cookie}")]);
        assert!(
            response.header("x-devnet").is_none(),
            "{path}: {response:?}"
        );
    }
}

/// The report's "Simulate wallet": `POST /.steemgate/devnet/broadcast`
/// broadcasts the logged-in account's follow operations to the devnet, and
/// nothing else, for no one else, from no other site.
#[test]
fn the_simulated_wallet_broadcasts_only_the_visitors_own_follow_operations() {
    let stack = Stack::start_seeded_with(|config| config);
    let addr = stack.addr();
    let cookie = stack.login_as("alice");
    let following = |account: &str| -> Vec<String> {
        stack
            .devnet
            .rpc(
                "condenser_api.get_following",
                json!([account, null, "blog", 100]),
            )
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["following"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(following("alice").contains(&"bob".to_string()));
    let unfollow = |follower: &str, following: &str| {
        json!({"operations": [["custom_json", {
            "required_auths": [], "required_posting_auths": [follower], "id": "follow",
            "json": format!("[\"follow\",{{\"follower\":\"{follower}\",\"following\":\"{following}\",\"what\":[]}}]")
        }]]})
        .to_string()
    };
    let same_origin = format!("Origin: http://{addr}");
    let send =
        |headers: &[&str], body: &str| post(addr, "/.steemgate/devnet/broadcast", headers, body);
    let with_cookie = format!("Cookie: {cookie}");

    // Another site: refused before anything is read.
    let cross = send(
        &[
            &with_cookie,
            "Sec-Fetch-Site: cross-site",
            "Content-Type: application/json",
        ],
        &unfollow("alice", "bob"),
    );
    assert_eq!(cross.status, 403, "{}", cross.body);
    // No login: refused.
    let anonymous = send(
        &[&same_origin, "Content-Type: application/json"],
        &unfollow("alice", "bob"),
    );
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    // Someone else's follows, a transfer, junk: refused with the reason.
    for (body, why) in [
        (unfollow("bob", "alice"), "only for @alice"),
        (
            json!({"operations": [["transfer", {"from": "alice", "to": "bob", "amount": "1.000 STEEM", "memo": ""}]]}).to_string(),
            "follow operations only",
        ),
        ("{\"operations\": []}".to_string(), "1 to 5 operations"),
        (
            json!({"operations": [["custom_json", {"required_auths": [], "required_posting_auths": ["alice"], "id": "follow",
                "json": "[\"follow\",{\"follower\":\"alice\",\"following\":\"carol\",\"what\":[\"blog\"]}]"}]]}).to_string(),
            "only unfollows",
        ),
        ("not json".to_string(), "not a list of operations"),
    ] {
        let refused = send(&[&with_cookie, &same_origin, "Content-Type: application/json"], &body);
        assert_eq!(refused.status, 400, "{body}: {}", refused.body);
        assert_eq!(refused.json()["success"], json!(false));
        assert!(refused.json()["error"].as_str().unwrap().contains(why), "{}", refused.body);
    }
    stack.devnet.produce_block(None);
    assert!(following("alice").contains(&"bob".to_string()));
    assert!(following("bob").contains(&"alice".to_string()));

    // Her own unfollow: broadcast, applied with the next block.
    let sent = send(
        &[
            &with_cookie,
            &same_origin,
            "Sec-Fetch-Site: same-origin",
            "Content-Type: application/json",
        ],
        &unfollow("alice", "bob"),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    let answer = sent.json();
    assert_eq!(answer["success"], json!(true), "{answer}");
    assert_eq!(answer["result"]["id"].as_str().map(str::len), Some(40));
    stack.devnet.produce_block(None);
    assert!(!following("alice").contains(&"bob".to_string()));
    // The devnet's own refusal reaches the page as the wallet's error: two
    // batches of 3 in one block pass Hive's 5 custom_json per block.
    let three = |names: [&str; 3]| {
        let ops: Vec<Value> = names
            .iter()
            .map(|n| {
                json!(["custom_json", {"required_auths": [], "required_posting_auths": ["alice"], "id": "follow",
                    "json": format!("[\"follow\",{{\"follower\":\"alice\",\"following\":\"{n}\",\"what\":[]}}]")}])
            })
            .collect();
        json!({ "operations": ops }).to_string()
    };
    let first = send(
        &[&with_cookie, &same_origin, "Content-Type: application/json"],
        &three(["aaa1", "aaa2", "aaa3"]),
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let refused = send(
        &[&with_cookie, &same_origin, "Content-Type: application/json"],
        &three(["aaa4", "aaa5", "aaa6"]),
    );
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("at most 5"),
        "{}",
        refused.body
    );
}

#[test]
fn without_chain_devnet_there_is_no_simulated_wallet() {
    let stack = Stack::start_with(|config| config.replace("  devnet: true\n", ""));
    let addr = stack.addr();
    let answer = post(
        addr,
        "/.steemgate/devnet/broadcast",
        &[
            &format!("Origin: http://{addr}"),
            "Content-Type: application/json",
        ],
        "{\"operations\": []}",
    );
    assert_eq!(answer.status, 404, "{}", answer.body);
}
