//! Identity and forwarding header attacks against the real binary.
//!
//! Why: a client-sent `X-Steem-Account` that survives in any spelling is a
//! full authentication bypass (Caddy GHSA-7r4p, oauth2-proxy CVE-2025-64484,
//! Traefik CVE-2024-45410). Every spelling is sent here on every route kind,
//! anonymous and logged in, and on every error path; the recording upstream
//! shows exactly what arrived. Forwarding headers are checked the same way,
//! with and without a `trusted_proxies` entry.

mod support;

use support::attack::{AttackStack, QUICK, Seen, exchange, request};

/// A header spoof: raw header lines (CRLF-separated, may be several).
struct Spoof {
    lines: String,
    /// Whether HTTP parsing must refuse the request outright (400).
    rejected: bool,
}

fn ok(lines: &str) -> Spoof {
    Spoof {
        lines: lines.to_string(),
        rejected: false,
    }
}

fn bad(lines: &str) -> Spoof {
    Spoof {
        lines: lines.to_string(),
        rejected: true,
    }
}

/// The marker every spoof carries; it must never reach an upstream.
const EVIL: &str = "mallory";

fn spoofs() -> Vec<Spoof> {
    let long = format!("X-Steem-Account: {EVIL}{}", "m".repeat(8 * 1024));
    let many: Vec<String> = (0..50)
        .map(|_| format!("x-steem-account: {EVIL}"))
        .collect();
    vec![
        ok("X-Steem-Account: mallory"),
        ok("x-steem-account: mallory"),
        ok("X-STEEM-ACCOUNT: mallory"),
        ok("x-StEeM-aCcOuNt: mallory"),
        ok("X_Steem_Account: mallory"),
        ok("x_steem_account: mallory"),
        ok("X_STEEM_ACCOUNT: mallory"),
        ok("X.Steem.Account: mallory"),
        ok("X-Steem_Account: mallory"),
        ok("X_Steem-Account: mallory"),
        ok("X.Steem-Account: mallory"),
        ok("X-Steem.Account: mallory"),
        ok("X-Steem-Account:mallory"),
        ok("X-Steem-Account:     mallory     "),
        ok("X-Steem-Account:\tmallory\t"),
        ok("X-Steem-Account: mallory, alice"),
        ok("X-Steem-Account: bob,mallory"),
        ok("X-Steem-Account: ,mallory,"),
        ok("X-Steem-Account:"),
        ok("X-Steem-Account: mallory\r\nX-Steem-Account: alice"),
        ok("X-Steem-Account: mallory\r\nX_Steem_Account: mallory\r\nX.Steem.Account: mallory"),
        ok(&long),
        ok(&many.join("\r\n")),
        ok("Connection: X-Steem-Account\r\nX-Steem-Account: mallory"),
        ok("Connection: close, x_steem_account\r\nX_Steem_Account: mallory"),
        ok("Connection: keep-alive, X-Steem-Account, X.Steem.Account\r\nX.Steem.Account: mallory"),
        ok("Connection: X-Steem-Assertion\r\nX-Steem-Assertion: mallory"),
        ok("X-Steem-Assertion: mallory"),
        ok("X_Steem_Assertion: mallory"),
        ok("X-Steem-Account: m\u{e4}llory mallory"),
        // obs-fold (RFC 9112 §5.2): a continuation line must not smuggle a value.
        bad("X-Steem-Account: bob\r\n mallory"),
        bad("X-Other: x\r\n\tX-Steem-Account: mallory"),
        bad("X-Other: x\r\n X-Steem-Account: mallory"),
        // Whitespace between name and colon must be refused (RFC 9112 §5.1).
        bad("X-Steem-Account : mallory"),
        bad("X-Steem-Account\t: mallory"),
        bad("X-Steem-Account: mal\0lory"),
    ]
}

/// What a route case expects.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// Proxied to this upstream with this identity (or none).
    Proxied(&'static str, Option<&'static str>),
    /// Answered by the gateway with this status; no upstream reached.
    Local(u16),
}

struct Case {
    path: &'static str,
    logged_in: bool,
    host: Option<&'static str>,
    want: Want,
}

fn cases() -> Vec<Case> {
    let case = |path, logged_in, host, want| Case {
        path,
        logged_in,
        host,
        want,
    };
    vec![
        case("/public/x", false, None, Want::Proxied("B", None)),
        case("/public/x", true, None, Want::Proxied("B", None)),
        case("/maybe/x", false, None, Want::Proxied("B", None)),
        case("/maybe/x", true, None, Want::Proxied("B", Some("bob"))),
        case("/app/x", true, None, Want::Proxied("A", Some("bob"))),
        case("/", true, None, Want::Proxied("A", Some("bob"))),
        case("/app/x", false, None, Want::Local(401)),
        case("/admin/x", true, None, Want::Local(403)),
        case(
            "/anything",
            true,
            Some("unrouted.example"),
            Want::Local(404),
        ),
        case("/dead/x", true, None, Want::Local(502)),
        case("/deadreq/x", true, None, Want::Local(502)),
    ]
}

fn assert_clean(seen: &Seen, context: &str) {
    assert!(
        !seen.raw_head.contains(EVIL),
        "{context}: the spoofed value reached the upstream:\n{}",
        seen.raw_head
    );
    assert!(
        seen.trailers.is_empty(),
        "{context}: trailers reached the upstream: {:?}",
        seen.trailers
    );
    assert!(
        seen.header_values("x-steem-assertion").is_empty(),
        "{context}"
    );
}

#[test]
fn identity_spoofs_on_every_route_and_error_path() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    let spoofs = spoofs();
    assert!(spoofs.len() >= 30);
    let mut checked = 0;
    for spoof in &spoofs {
        for case in cases() {
            stack.clear();
            let host = case
                .host
                .map_or_else(|| stack.addr().to_string(), str::to_string);
            let mut raw = format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n{}\r\n",
                case.path, spoof.lines
            );
            if case.logged_in {
                raw.push_str(&bob);
                raw.push_str("\r\n");
            }
            raw.push_str("\r\n");
            let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
            let context = format!(
                "{:?} on {} (logged in: {})",
                spoof.lines.chars().take(80).collect::<String>(),
                case.path,
                case.logged_in
            );
            let seen = stack.all_seen();
            if spoof.rejected {
                assert_eq!(reply.status(), Some(400), "{context}: {}", reply.text());
                assert!(
                    seen.is_empty(),
                    "{context}: a refused request reached {seen:?}"
                );
                checked += 1;
                continue;
            }
            match case.want {
                Want::Proxied(upstream, identity) => {
                    assert_eq!(reply.status(), Some(200), "{context}: {}", reply.text());
                    assert_eq!(seen.len(), 1, "{context}: {seen:?}");
                    assert_eq!(seen[0].upstream, upstream, "{context}");
                    assert_clean(&seen[0], &context);
                    let values = seen[0].header_values("x-steem-account");
                    match identity {
                        Some(account) => assert_eq!(values, vec![account], "{context}"),
                        None => assert!(values.is_empty(), "{context}: {values:?}"),
                    }
                }
                Want::Local(status) => {
                    assert_eq!(reply.status(), Some(status), "{context}: {}", reply.text());
                    assert!(seen.is_empty(), "{context}: reached {seen:?}");
                    let head = reply.first_head().to_ascii_lowercase();
                    assert!(
                        !head.contains("x-steem-account") && !head.contains("x_steem_account"),
                        "{context}: identity header in the error response: {head}"
                    );
                    assert!(!reply.text().contains(EVIL), "{context}: echoed the spoof");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, spoofs.len() * cases().len());
}

#[test]
fn forward_auth_endpoint_reports_only_the_session_identity() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    for spoof in spoofs().iter().filter(|s| !s.rejected) {
        let raw = format!(
            "GET /.steemgate/auth HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{}\r\n{bob}\r\n\r\n",
            stack.addr(),
            spoof.lines
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        assert_eq!(reply.status(), Some(200), "{}", reply.text());
        let head = reply.first_head().to_ascii_lowercase();
        assert_eq!(head.matches("x-steem-account:").count(), 1, "{head}");
        assert!(head.contains("x-steem-account: bob"), "{head}");
        assert!(!head.contains(EVIL), "{head}");
    }
}

#[test]
fn http_1_0_requests_get_the_same_hygiene() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    for (path, cookie, want) in [
        ("/maybe/x", Some(bob.as_str()), Some("bob")),
        ("/maybe/x", None, None),
        ("/public/x", Some(bob.as_str()), None),
    ] {
        for host in [format!("Host: {}\r\n", stack.addr()), String::new()] {
            stack.clear();
            let raw = format!(
                "GET {path} HTTP/1.0\r\n{host}X-Steem-Account: mallory\r\nX_Steem_Account: mallory\r\n{}\r\n",
                cookie.map_or(String::new(), |c| format!("{c}\r\n"))
            );
            let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
            assert_eq!(
                reply.status(),
                Some(200),
                "{path} {host:?}: {}",
                reply.text()
            );
            let seen = stack.b.seen();
            assert_eq!(seen.len(), 1);
            assert_clean(&seen[0], path);
            let values = seen[0].header_values("x-steem-account");
            assert_eq!(
                values,
                want.map(|w| vec![w.to_string()]).unwrap_or_default()
            );
        }
    }
    // Anonymous HTTP/1.0 on a required route is stopped at the gateway.
    stack.clear();
    let raw = format!(
        "GET /app/x HTTP/1.0\r\nHost: {}\r\nX-Steem-Account: mallory\r\n\r\n",
        stack.addr()
    );
    assert_eq!(
        exchange(stack.addr(), raw.as_bytes(), QUICK).status(),
        Some(401)
    );
    assert!(stack.all_seen().is_empty());
}

#[test]
fn identity_in_request_trailers_never_arrives() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    for (path, cookie, upstream, want) in [
        ("/maybe/x", Some(bob.as_str()), "B", Some("bob")),
        ("/maybe/x", None, "B", None),
        ("/public/x", None, "B", None),
        ("/app/x", Some(bob.as_str()), "A", Some("bob")),
    ] {
        stack.clear();
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nTrailer: X-Steem-Account, X_Steem_Account\r\n{}\r\n5\r\nhello\r\n0\r\nX-Steem-Account: mallory\r\nX_Steem_Account: mallory\r\n\r\n",
            stack.addr(),
            cookie.map_or(String::new(), |c| format!("{c}\r\n"))
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        let seen = stack.all_seen();
        match reply.status() {
            // Refusing trailers outright is also safe.
            Some(400) => assert!(seen.is_empty(), "{path}: {seen:?}"),
            other => {
                assert_eq!(other, Some(200), "{path}: {}", reply.text());
                assert_eq!(seen.len(), 1, "{path}: {seen:?}");
                assert_eq!(seen[0].upstream, upstream);
                assert_eq!(seen[0].body, b"hello");
                assert_clean(&seen[0], path);
                let values = seen[0].header_values("x-steem-account");
                assert_eq!(
                    values,
                    want.map(|w| vec![w.to_string()]).unwrap_or_default(),
                    "{path}"
                );
            }
        }
    }
}

#[test]
fn h2c_prior_knowledge_is_not_spoken_and_reaches_nothing() {
    // No TLS and no h2c option on the listener: an HTTP/2 preface must not
    // turn into a proxied request.
    let stack = AttackStack::start();
    let mut raw = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    raw.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS frame
    let reply = exchange(stack.addr(), &raw, QUICK);
    assert!(
        matches!(reply.status(), None | Some(400) | Some(505)),
        "{}",
        reply.text()
    );
    assert!(stack.all_seen().is_empty());
}

const FORWARDING_SPOOFS: &[&str] = &[
    "X-Forwarded-For: 6.6.6.6",
    "x-forwarded-for: 6.6.6.7",
    "X_Forwarded_For: 6.6.6.8",
    "X.Forwarded.For: 6.6.6.9",
    "X-Forwarded-Host: evil.example",
    "X_Forwarded_Host: evil.example",
    "X-Forwarded-Proto: https",
    "X_Forwarded_Proto: https",
    "X-Forwarded-Port: 443",
    "X-Forwarded-Prefix: /evil",
    "Forwarded: for=6.6.6.6;host=evil.example;proto=https",
    "X-Real-IP: 6.6.6.6",
    "X_Real_IP: 6.6.6.6",
    "X-Real.Ip: 6.6.6.6",
];

fn forwarding_request(stack: &AttackStack) -> String {
    let mut headers: Vec<&str> = FORWARDING_SPOOFS.to_vec();
    headers.push("Accept: application/json");
    request(stack.addr(), "GET", "/public/x", &headers)
}

fn only(seen: &Seen, name: &str) -> Vec<String> {
    seen.header_values(name)
}

#[test]
fn client_forwarding_headers_are_replaced_when_the_peer_is_not_trusted() {
    let stack = AttackStack::start();
    let reply = stack.send(&forwarding_request(&stack));
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    let seen = &stack.b.seen()[0];
    assert!(!seen.raw_head.contains("6.6.6."), "{}", seen.raw_head);
    assert!(!seen.raw_head.contains("evil"), "{}", seen.raw_head);
    assert_eq!(only(seen, "x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(only(seen, "x-real-ip"), vec!["127.0.0.1"]);
    assert_eq!(only(seen, "x-forwarded-proto"), vec!["http"]);
    assert_eq!(only(seen, "x-forwarded-host"), vec!["127.0.0.1"]);
    assert!(only(seen, "forwarded").is_empty());
    assert!(only(seen, "x-forwarded-port").is_empty());
    assert!(only(seen, "x-forwarded-prefix").is_empty());
}

#[test]
fn a_trusted_proxy_keeps_its_forwarded_for_chain_and_is_appended() {
    let stack = AttackStack::start_with("trusted_proxies: [\"127.0.0.0/8\"]");
    let raw = request(
        stack.addr(),
        "GET",
        "/public/x",
        &[
            "X-Forwarded-For: 203.0.113.9, 10.1.1.1",
            "X-Forwarded-Host: evil.example",
            "X-Real-IP: 6.6.6.6",
            "X_Forwarded_For: 6.6.6.6",
        ],
    );
    let reply = stack.send(&raw);
    assert_eq!(reply.status(), Some(200), "{}", reply.text());
    let seen = &stack.b.seen()[0];
    assert_eq!(
        only(seen, "x-forwarded-for"),
        vec!["203.0.113.9, 10.1.1.1, 127.0.0.1"]
    );
    assert_eq!(only(seen, "x-real-ip"), vec!["10.1.1.1"]);
    // Only the chain is trusted: the host is still the gateway's reading.
    assert_eq!(only(seen, "x-forwarded-host"), vec!["127.0.0.1"]);
    assert!(!seen.raw_head.contains("6.6.6.6"), "{}", seen.raw_head);

    // A malformed chain from a trusted peer fails closed to the peer alone.
    stack.clear();
    let raw = request(
        stack.addr(),
        "GET",
        "/public/x",
        &["X-Forwarded-For: 203.0.113.9, <script>"],
    );
    assert_eq!(stack.send(&raw).status(), Some(200));
    assert_eq!(
        only(&stack.b.seen()[0], "x-forwarded-for"),
        vec!["127.0.0.1"]
    );
}
