//! Abuse limits on connections and clients: slow headers (slowloris) and
//! idle keep-alive connections are cut off after bounded times, slow request
//! bodies are not, and the per-client limits count the real client behind a
//! trusted proxy (and only there).
//!
//! Why a suite of its own: these limits are what keeps one host from holding
//! every connection or filling the store; each is checked against the real
//! binary with short deadlines set in its config. Tests wait with a bound
//! for the gateway to close a connection; they never assert timings.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::gateway::{Stack, get};

const SHORT_LIMITS: &str = "limits: {new_sessions_per_minute: 0, status_per_minute: 0, header_timeout: 1s, idle_timeout: 1s}";

fn stack_with_limits(limits: &'static str, extra: &'static str) -> Stack {
    Stack::start_with(move |config| {
        let original = "limits: {new_sessions_per_minute: 0, status_per_minute: 0}";
        assert!(config.contains(original), "the test config changed");
        format!("{extra}{}", config.replace(original, limits))
    })
}

/// Whether the peer has closed `stream` (EOF or reset), waiting at most
/// `bound` and discarding whatever it sends before closing.
fn closed_within(stream: &mut TcpStream, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

/// Reads one response with a `Content-Length` body; returns its status.
fn read_response(stream: &mut TcpStream) -> u16 {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before a full response");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if data.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

#[test]
fn a_client_trickling_its_headers_is_cut_off() {
    let stack = stack_with_limits(SHORT_LIMITS, "");
    let mut stream = connect(stack.addr());
    stream
        .write_all(b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    // One byte every 100 ms: each read is quick, the header never ends.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut cut_off = false;
    while Instant::now() < deadline {
        if stream.write_all(b"a").is_err() {
            cut_off = true;
            break;
        }
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 1024];
        match stream.read(&mut buf) {
            Ok(0) => {
                cut_off = true;
                break;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                cut_off = true;
                break;
            }
        }
    }
    assert!(cut_off, "a trickled header was still accepted after 15 s");
    // The gateway still serves others.
    assert_eq!(get(stack.addr(), "/public", &[]).status, 200);
}

#[test]
fn a_connection_that_never_sends_a_request_is_closed() {
    let stack = stack_with_limits(SHORT_LIMITS, "");
    let mut stream = connect(stack.addr());
    assert!(closed_within(&mut stream, Duration::from_secs(10)));
}

#[test]
fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
    let stack = stack_with_limits(SHORT_LIMITS, "");
    let mut stream = connect(stack.addr());
    let request = b"GET /public HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Headers in pieces, well within the header deadline: served.
    stream.write_all(&request[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(&request[10..]).unwrap();
    assert_eq!(read_response(&mut stream), 200);
    // A second request on the same connection soon after: served too.
    stream.write_all(request).unwrap();
    assert_eq!(read_response(&mut stream), 200);
    // Then nothing: the connection is closed.
    assert!(closed_within(&mut stream, Duration::from_secs(10)));
}

#[test]
fn a_slow_request_body_is_not_cut_off_by_the_header_deadline() {
    let stack = stack_with_limits(SHORT_LIMITS, "");
    let mut stream = connect(stack.addr());
    let body = "x".repeat(30);
    stream
        .write_all(
            format!(
                "POST /public HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    // The body takes longer than header_timeout (1 s) to arrive.
    for chunk in body.as_bytes().chunks(10) {
        std::thread::sleep(Duration::from_millis(600));
        stream.write_all(chunk).unwrap();
    }
    assert_eq!(read_response(&mut stream), 200);
}

fn new_session_status(addr: SocketAddr, forwarded_for: &str) -> u16 {
    get(
        addr,
        "/.steemgate/status",
        &[
            "Accept: application/json",
            &format!("X-Forwarded-For: {forwarded_for}"),
        ],
    )
    .status
}

const TWO_NEW_SESSIONS: &str =
    "limits: {new_sessions_per_minute: 2, new_sessions_burst: 2, status_per_minute: 0}";

#[test]
fn behind_a_trusted_proxy_each_real_client_has_its_own_limit() {
    let stack = stack_with_limits(TWO_NEW_SESSIONS, "trusted_proxies: [\"127.0.0.0/8\"]\n");
    let addr = stack.addr();
    assert_eq!(new_session_status(addr, "203.0.113.5"), 200);
    assert_eq!(new_session_status(addr, "203.0.113.5"), 200);
    assert_eq!(new_session_status(addr, "203.0.113.5"), 429);
    // Another client behind the same proxy is not affected.
    assert_eq!(new_session_status(addr, "203.0.113.6"), 200);
    // A client cannot escape its bucket by prepending addresses: the proxy
    // appended the real one, the right-most untrusted entry counts.
    assert_eq!(new_session_status(addr, "198.51.100.1, 203.0.113.5"), 429);
}

#[test]
fn without_a_trusted_proxy_forwarded_for_cannot_dodge_the_limit() {
    let stack = stack_with_limits(TWO_NEW_SESSIONS, "");
    let addr = stack.addr();
    assert_eq!(new_session_status(addr, "203.0.113.1"), 200);
    assert_eq!(new_session_status(addr, "203.0.113.2"), 200);
    assert_eq!(new_session_status(addr, "203.0.113.3"), 429);
}
