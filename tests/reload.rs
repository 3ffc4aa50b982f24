//! Config reload on SIGHUP: the real binary re-reads its file, a changed
//! allowlist applies to the next request, a keep-alive connection opened
//! before the reload keeps working, a broken file keeps the running config
//! (and says why), and restart-only changes are reported.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use steemgate::reload::READY_MESSAGE;
use support::gateway::{Stack, get};
use support::wait_until;

fn exchange(stream: &mut TcpStream, path: &str, host: &str) -> (u16, String) {
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "connection closed");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a content-length on the keep-alive answer");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (status, String::from_utf8_lossy(&body).to_string())
}

#[test]
fn sighup_applies_a_new_allowlist_keeps_connections_and_refuses_a_broken_file() {
    let stack = Stack::start();
    assert!(
        wait_until(Duration::from_secs(10), || stack
            .gateway
            .log()
            .contains(READY_MESSAGE)),
        "reload handler never installed"
    );
    let alice = format!("Cookie: {}", stack.login_as("alice"));
    assert_eq!(get(stack.addr(), "/admin", &[&alice]).status, 200);

    let mut kept = TcpStream::connect(stack.addr()).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let host = stack.addr().to_string();
    assert_eq!(exchange(&mut kept, "/public", &host).0, 200);

    // Only bob may use /admin now.
    let path = &stack.gateway.config_path;
    let original = std::fs::read_to_string(path).unwrap();
    assert!(original.contains("allow: [alice]"));
    std::fs::write(path, original.replace("allow: [alice]", "allow: [bob]")).unwrap();
    stack.reload_and_wait_for("config reloaded");
    assert_eq!(get(stack.addr(), "/admin", &[&alice]).status, 403);
    // The connection opened before the reload still serves requests.
    assert_eq!(exchange(&mut kept, "/public", &host).0, 200);

    // A broken file: refused with its key and line, the running config stays.
    std::fs::write(
        path,
        original.replace("allow: [alice]", "allow: [alice], colour: red"),
    )
    .unwrap();
    stack.reload_and_wait_for("config reload failed");
    let log = stack.gateway.log();
    let failure = log
        .lines()
        .rev()
        .find(|l| l.contains("config reload failed"))
        .unwrap();
    assert!(
        failure.contains("colour") && failure.contains("line"),
        "{failure}"
    );
    assert_eq!(get(stack.addr(), "/admin", &[&alice]).status, 403);
    assert_eq!(exchange(&mut kept, "/public", &host).0, 200);

    // Restart-only settings are reported, the rest still applies.
    let moved = original.replace(
        &format!("listen: \"{}\"", stack.addr()),
        "listen: \"127.0.0.1:1\"",
    );
    assert_ne!(moved, original);
    std::fs::write(path, moved).unwrap();
    stack.reload_and_wait_for("config reloaded");
    let log = stack.gateway.log();
    assert!(
        log.lines()
            .any(|l| l.contains("need a restart") && l.contains("listen")),
        "{log}"
    );
    assert_eq!(get(stack.addr(), "/admin", &[&alice]).status, 200);
}
