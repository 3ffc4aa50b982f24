//! Open-redirect attacks on the post-login `rd` target.
//!
//! Why: `rd` is the classic open redirect of auth gateways (four
//! oauth2-proxy advisories, Authelia, Vouch, Pomerium). A corpus of several
//! hundred payloads (`tests/fixtures/open-redirect-payloads.txt`) must all
//! become `/` in `safe_redirect_target`, a sample must come back as a local
//! `Location` from the live binary (login page with a logged-in cookie, and
//! the devnet simulate form), and legitimate local targets must pass
//! unchanged.

mod support;

use steemgate::proxy::redirect::safe_redirect_target;
use support::attack::{AttackStack, QUICK, exchange};
use support::fixture;

/// The corpus with placeholders replaced by the raw characters.
fn payloads() -> Vec<String> {
    fixture("open-redirect-payloads.txt")
        .lines()
        .filter(|line| !line.starts_with("# ") && !line.is_empty())
        .map(|line| {
            line.replace("{TAB}", "\t")
                .replace("{LF}", "\n")
                .replace("{CR}", "\r")
                .replace("{NUL}", "\0")
                .replace("{SP}", " ")
                .replace("{FF}", "\u{c}")
                .replace("{VT}", "\u{b}")
        })
        .collect()
}

/// Local targets that must survive unchanged.
const LEGITIMATE: &[&str] = &[
    "/",
    "/app",
    "/app/",
    "/app/page?x=1&y=2",
    "/app?rd=//evil.com",
    "/app?next=%2Fhome",
    "/a/b#frag",
    "/%E2%9C%93",
    "/caf%C3%A9/menu",
    "/@alice",
    "/@alice/a-post-permlink",
    "/.well-known/security.txt",
    // A dot-file path on this site, not a host: local in every reading.
    "/.evil.com",
    "/search?q=a+b",
    "/x;y=1",
    "/app/~user",
    "/100%25",
];

#[test]
fn every_corpus_payload_becomes_root() {
    let payloads = payloads();
    assert!(payloads.len() >= 300, "corpus has only {}", payloads.len());
    let escaped: Vec<&String> = payloads
        .iter()
        .filter(|rd| safe_redirect_target(rd) != "/")
        .collect();
    assert!(
        escaped.is_empty(),
        "payloads kept as redirect targets: {escaped:#?}"
    );
}

#[test]
fn every_corpus_payload_with_a_local_looking_prefix_becomes_root() {
    // The same payloads behind prefixes a checker might trust.
    for payload in payloads() {
        for prefix in ["/", "/%2F", "/\\"] {
            let rd = format!("{prefix}{payload}");
            if rd.starts_with("/@")
                || rd.starts_with("/.")
                || rd.starts_with("/?")
                || rd.starts_with("/#")
            {
                continue; // local paths by construction ("/@evil.com" is a path here)
            }
            let kept = safe_redirect_target(&rd);
            assert!(
                kept == "/" || !kept[1..].starts_with(['/', '\\']),
                "{rd:?} kept as {kept:?}"
            );
        }
    }
}

#[test]
fn legitimate_local_targets_pass_unchanged() {
    for rd in LEGITIMATE {
        assert_eq!(safe_redirect_target(rd), *rd, "{rd}");
    }
}

fn url_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn location(reply: &support::attack::Exchange) -> Option<String> {
    reply
        .first_head()
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .map(str::to_string)
}

#[test]
fn live_login_page_and_devnet_form_redirect_only_locally() {
    let stack = AttackStack::start();
    let alice = stack.cookie_for("alice");
    let sample: Vec<String> = payloads().into_iter().step_by(7).collect();
    assert!(sample.len() >= 60);
    for rd in &sample {
        let raw = format!(
            "GET /.steemgate/login?rd={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: text/html\r\n{alice}\r\n\r\n",
            url_encode(rd),
            stack.addr()
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        assert_eq!(reply.status(), Some(302), "{rd:?}: {}", reply.text());
        assert_eq!(location(&reply).as_deref(), Some("/"), "{rd:?}");
    }
    for rd in LEGITIMATE {
        let raw = format!(
            "GET /.steemgate/login?rd={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{alice}\r\n\r\n",
            url_encode(rd),
            stack.addr()
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        assert_eq!(location(&reply).as_deref(), Some(*rd), "{rd}");
    }

    // The devnet simulate form carries rd back to the login page, sanitized.
    let (pending, _memo) = stack.stack.start_login();
    for rd in sample.iter().step_by(3) {
        let body = format!("from=frank&rd={}", url_encode(rd));
        let raw = format!(
            "POST /.steemgate/devnet/transfer HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nCookie: {pending}\r\n\r\n{body}",
            stack.addr(),
            body.len()
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        assert_eq!(reply.status(), Some(302), "{rd:?}: {}", reply.text());
        assert_eq!(
            location(&reply).as_deref(),
            Some("/.steemgate/login?rd=%2F"),
            "{rd:?}"
        );
    }
}
