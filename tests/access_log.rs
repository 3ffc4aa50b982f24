//! The access log through the real binary: one line per answered request
//! (proxied, public, 404, redirect to login), in text and JSON, to a file or
//! stderr, never carrying cookies, memos or query strings, and nothing at
//! all with `log.access: off`.

mod support;

use std::path::Path;
use std::time::Duration;

use support::gateway::{Stack, get, raw_request};
use support::wait_until;

/// A value that looks like a one-time code in a query string.
const QUERY_SECRET: &str = "Qs3cr3tC0de7781";

/// A stack whose config has `log_lines` (top-level YAML) added.
fn start_with_top(log_lines: String, extra_route: Option<&str>) -> Stack {
    let route = extra_route.unwrap_or_default().to_string();
    Stack::start_with(move |config| {
        config.replace("routes:\n", &format!("{log_lines}routes:\n{route}"))
    })
}

/// Waits (bounded) for a line of `text()` that `matches`, and returns it;
/// fails with everything read so far.
fn wait_line(what: &str, text: impl Fn() -> String, matches: impl Fn(&str) -> bool) -> String {
    let mut found = None;
    wait_until(Duration::from_secs(10), || {
        found = text().lines().find(|l| matches(l)).map(str::to_string);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no access log line for {what} in:\n{}", text()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Splits a text line into its fields, quoted ones whole:
/// client, -, account, [time], "request", status, bytes, "route", upstream, duration.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line.trim_end();
    while !rest.is_empty() {
        let (field, tail) = match rest.as_bytes()[0] {
            b'"' => {
                let end = rest[1..].find('"').expect("closing quote") + 2;
                (&rest[..end], &rest[end..])
            }
            b'[' => {
                let end = rest.find(']').expect("closing bracket") + 1;
                (&rest[..end], &rest[end..])
            }
            _ => rest.split_at(rest.find(' ').unwrap_or(rest.len())),
        };
        out.push(field.to_string());
        rest = tail.trim_start();
    }
    assert_eq!(out.len(), 10, "a text line has 10 fields: {line:?}");
    out
}

fn is_millis(field: &str) -> bool {
    field.parse::<f64>().is_ok_and(|ms| ms >= 0.0)
        && field.split_once('.').is_some_and(|(_, d)| d.len() == 3)
}

#[test]
fn text_lines_to_a_file_for_each_kind_of_answer_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let stack = start_with_top(
        format!(
            "log: {{access: on, access_format: text, access_file: \"{}\"}}\n",
            log_path.display()
        ),
        None,
    );
    let log = || read(&log_path);
    let addr = stack.addr();

    // A proxied request of a logged-in account, sent with its cookie.
    let cookie = stack.login_as("alice");
    let cookie_value = cookie.split_once('=').unwrap().1.to_string();
    let proxied = get(
        addr,
        &format!("/app/page?code={QUERY_SECRET}"),
        &[
            &format!("Cookie: {cookie}"),
            "X-Forwarded-For: 198.51.100.9",
        ],
    );
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    let line = wait_line("the proxied request", log, |l| {
        l.contains("\"GET /app/page ")
    });
    let f = fields(&line);
    // The peer is not a trusted proxy: its X-Forwarded-For is not believed.
    assert_eq!(f[0], "127.0.0.1", "{line}");
    assert_eq!(f[1], "-");
    assert_eq!(f[2], "alice", "{line}");
    assert!(f[3].starts_with("[20") && f[3].ends_with("Z]"), "{line}");
    assert_eq!(f[4], "\"GET /app/page HTTP/1.1\"", "{line}");
    assert_eq!(f[5], "200");
    assert_eq!(f[6], proxied.body.len().to_string(), "{line}");
    assert_eq!(f[7], "\"127.0.0.1/\"", "{line}");
    assert!(is_millis(&f[8]), "upstream time: {line}");
    assert!(is_millis(&f[9]), "duration: {line}");
    assert!(
        f[9].parse::<f64>().unwrap() >= f[8].parse::<f64>().unwrap(),
        "the request lasts at least as long as its upstream part: {line}"
    );

    // A public route: no account.
    let public = get(addr, "/public/x", &[]);
    assert_eq!(public.status, 200);
    let line = wait_line("the public request", log, |l| {
        l.contains("\"GET /public/x ")
    });
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[5].as_str(), f[7].as_str()),
        ("-", "200", "\"/public\""),
        "{line}"
    );
    assert!(is_millis(&f[8]), "{line}");

    // No route for this host: 404, route `-`, nothing proxied.
    let missing = raw_request(
        addr,
        b"GET /nowhere HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(missing.status, 404);
    let line = wait_line("the 404", log, |l| l.contains("\"GET /nowhere "));
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[5].as_str(), f[7].as_str(), f[8].as_str()),
        ("-", "404", "\"-\"", "-"),
        "{line}"
    );

    // A browser without a session on a required route: 302 to the login page.
    let redirect = get(addr, "/members/area", &["Accept: text/html"]);
    assert_eq!(redirect.status, 302);
    let line = wait_line("the redirect", log, |l| l.contains("\"GET /members/area "));
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[5].as_str(), f[7].as_str(), f[8].as_str()),
        ("-", "302", "\"127.0.0.1/\"", "-"),
        "{line}"
    );

    // A logged-in account the route does not allow: 403, the account named.
    let bob = stack.login_as("bob");
    let refused = get(addr, "/admin", &[&format!("Cookie: {bob}")]);
    assert_eq!(refused.status, 403);
    let line = wait_line("the 403", log, |l| l.contains("\"GET /admin "));
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[5].as_str(), f[7].as_str(), f[8].as_str()),
        ("bob", "403", "\"/admin\"", "-"),
        "{line}"
    );

    // Forward auth vouching for an account: the account is named.
    let vouched = get(addr, "/.steemgate/auth", &[&format!("Cookie: {bob}")]);
    assert_eq!(vouched.status, 200);
    let line = wait_line("the forward auth", log, |l| {
        l.contains("\"GET /.steemgate/auth ")
    });
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[5].as_str(), f[7].as_str()),
        ("bob", "200", "\"(gateway)\""),
        "{line}"
    );

    // The gateway's own endpoint answering a memo: logged, memo not.
    let (pending, memo) = stack.start_login();
    // HTTP/1.0 tells this request's line from the other status polls.
    let status = raw_request(
        addr,
        format!(
            "GET /.steemgate/status?memo={QUERY_SECRET} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\nCookie: {pending}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(status.json()["memo"].as_str(), Some(memo.as_str()));
    let line = wait_line("the status answer", log, |l| {
        l.contains("\"GET /.steemgate/status HTTP/1.0\"")
    });
    let f = fields(&line);
    assert_eq!(
        (f[2].as_str(), f[7].as_str(), f[8].as_str()),
        ("-", "\"(gateway)\"", "-"),
        "{line}"
    );

    // Nothing secret anywhere in the file: cookies, memos, query strings.
    let all = log();
    let pending_value = pending.split_once('=').unwrap().1;
    for (what, secret) in [
        ("the session cookie", cookie_value.as_str()),
        ("a pending session cookie", pending_value),
        ("the memo", memo.as_str()),
        ("a query value", QUERY_SECRET),
        ("the cookie secret", support::gateway::SECRET),
        ("a query string", "?"),
        ("a cookie name", "steemgate="),
        ("a forwarded address", "198.51.100.9"),
    ] {
        assert!(
            !all.contains(secret),
            "{what} leaked into the access log:\n{all}"
        );
    }
    // One line per request: every line has the 10 fields.
    for line in all.lines() {
        fields(line);
    }
}

#[test]
fn json_lines_to_stderr_name_the_client_behind_a_trusted_proxy() {
    let stack = start_with_top(
        "trusted_proxies: [\"127.0.0.1/32\"]\nlog: {format: text, access_format: json}\n".into(),
        Some(&format!(
            "  - {{path: /dead, upstream: \"http://{}\", auth: public}}\n",
            support::free_addr()
        )),
    );
    let addr = stack.addr();
    let cookie = stack.login_as("alice");
    let proxied = get(
        addr,
        &format!("/app/json?token={QUERY_SECRET}"),
        &[
            &format!("Cookie: {cookie}"),
            "X-Forwarded-For: 198.51.100.9",
        ],
    );
    assert_eq!(proxied.status, 200, "{}", proxied.body);
    let missing = raw_request(
        addr,
        b"HEAD /nowhere HTTP/1.1\r\nHost: elsewhere.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(missing.status, 404);
    // An upstream that refuses: pingora's own error line names the request.
    let dead = get(addr, &format!("/dead/x?token={QUERY_SECRET}"), &[]);
    assert_eq!(dead.status, 502);

    let log = || stack.gateway.log();
    let parse = |line: &str| -> serde_json::Value {
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    };
    let line = wait_line("the proxied request", log, |l| {
        l.starts_with('{') && l.contains("\"/app/json\"")
    });
    let v = parse(&line);
    let time = v["time"].as_str().expect("time");
    assert!(time.len() == 24 && time.ends_with('Z'), "{line}");
    assert_eq!(v["client"], "198.51.100.9", "{line}");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/app/json");
    assert_eq!(v["protocol"], "HTTP/1.1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["route"], "127.0.0.1/");
    assert_eq!(v["account"], "alice");
    assert_eq!(v["bytes"], proxied.body.len());
    let upstream = v["upstream_ms"].as_f64().expect("upstream_ms");
    let duration = v["duration_ms"].as_f64().expect("duration_ms");
    assert!(upstream >= 0.0 && duration >= upstream, "{line}");
    assert_eq!(
        v.as_object().unwrap().len(),
        11,
        "exactly the documented fields: {line}"
    );

    let line = wait_line("the 404", log, |l| {
        l.starts_with('{') && l.contains("\"/nowhere\"")
    });
    let v = parse(&line);
    assert_eq!(v["method"], "HEAD");
    assert_eq!(v["status"], 404);
    assert!(
        v["route"].is_null() && v["account"].is_null() && v["upstream_ms"].is_null(),
        "{line}"
    );
    assert_eq!(v["bytes"], 0);

    let line = wait_line("the 502", log, |l| {
        l.starts_with('{') && l.contains("\"/dead/x\"")
    });
    let v = parse(&line);
    assert_eq!(v["status"], 502);
    assert!(
        v["upstream_ms"].as_f64().is_some(),
        "an attempted upstream has a time: {line}"
    );
    // Neither the access log nor pingora's error line carries the query.
    let all = log();
    assert!(
        all.contains("Fail to proxy"),
        "pingora's error line:\n{all}"
    );
    assert!(!all.contains(QUERY_SECRET), "a query value leaked:\n{all}");
}

#[test]
fn on_by_default_as_text_on_stderr() {
    let stack = Stack::start();
    let public = get(stack.addr(), "/public/default", &[]);
    assert_eq!(public.status, 200);
    let line = wait_line(
        "the public request",
        || stack.gateway.log(),
        |l| l.contains("\"GET /public/default HTTP/1.1\""),
    );
    let f = fields(&line);
    assert_eq!(
        (f[0].as_str(), f[5].as_str(), f[7].as_str()),
        ("127.0.0.1", "200", "\"/public\""),
        "{line}"
    );
}

#[test]
fn off_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let stack = start_with_top(
        format!(
            "log: {{access: off, access_file: \"{}\"}}\n",
            log_path.display()
        ),
        None,
    );
    let cookie = stack.login_as("alice");
    assert_eq!(
        get(stack.addr(), "/app/off", &[&format!("Cookie: {cookie}")]).status,
        200
    );
    assert_eq!(get(stack.addr(), "/public/off", &[]).status, 200);
    // With the log on, the file is opened (created) before the gateway
    // listens: its absence after answered requests is not a race.
    assert!(
        !log_path.exists(),
        "access: off created {}",
        log_path.display()
    );
    let stderr = stack.gateway.log();
    assert!(
        !stderr.contains("/app/off") && !stderr.contains("/public/off"),
        "access: off logged a request:\n{stderr}"
    );
}

#[test]
fn sighup_reopens_the_file_after_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("access.log");
    let stack = start_with_top(
        format!("log: {{access_file: \"{}\"}}\n", log_path.display()),
        None,
    );
    let stderr = || stack.gateway.log();
    assert!(
        wait_until(Duration::from_secs(10), || stderr()
            .contains(steemgate::reload::READY_MESSAGE)),
        "no SIGHUP handler:\n{}",
        stderr()
    );
    assert_eq!(get(stack.addr(), "/public/before", &[]).status, 200);
    wait_line(
        "the first request",
        || read(&log_path),
        |l| l.contains("/public/before"),
    );

    // logrotate: move the file away, then SIGHUP.
    let rotated = dir.path().join("access.log.1");
    std::fs::rename(&log_path, &rotated).unwrap();
    let reloads = stderr().matches("config reloaded").count();
    let pid = stack.gateway.pid().expect("gateway running");
    let killed = std::process::Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    assert!(
        wait_until(Duration::from_secs(10), || stderr()
            .matches("config reloaded")
            .count()
            > reloads),
        "no reload after SIGHUP:\n{}",
        stderr()
    );

    assert_eq!(get(stack.addr(), "/public/after", &[]).status, 200);
    wait_line(
        "the request after rotation",
        || read(&log_path),
        |l| l.contains("/public/after"),
    );
    let old = read(&rotated);
    assert!(
        old.contains("/public/before") && !old.contains("/public/after"),
        "{old}"
    );
}
