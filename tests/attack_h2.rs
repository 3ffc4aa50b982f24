//! HTTP/2 on the TLS listener keeps the identity guarantees of HTTP/1
//! (tests/attack_headers.rs): the real binary with `tls.http2` at its
//! default (on), the header-echo upstream (HTTP/1.1) and two clients:
//!
//! - a raw one that writes frames and HPACK literals by hand, so it can send
//!   what a well-behaved client never would (uppercase names, a second
//!   `:path`, connection-specific fields, names with spaces, floods);
//! - the `h2` crate's client for well-formed requests whose response headers
//!   matter (the login's `Set-Cookie`).
//!
//! Whatever the client sends, the upstream sees no client-sent identity, at
//! most one gateway-set `X-Steem-Account`, never the gateway's cookie, and the
//! other cookies joined into one `Cookie` header. Floods end with the abusive
//! connection closed, the gateway answering another client, and its memory
//! bounded.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::gateway::{GATE, Stack, upstream_saw};
use support::tls::{tls_config, tls_stack_with};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441).
const ENABLE_CONNECT_PROTOCOL: u16 = 0x8;

/// The test config with short connection deadlines, so floods end soon.
fn short_limits(config: String) -> String {
    config.replacen(
        "limits: {new_sessions_per_minute: 0, status_per_minute: 0}",
        "limits: {new_sessions_per_minute: 0, status_per_minute: 0, header_timeout: 2s, idle_timeout: 2s}",
        1,
    )
}

fn h2_stack() -> (Stack, String, tempfile::TempDir) {
    tls_stack_with("", false, short_limits)
}

/// An HPACK integer with an `prefix`-bit prefix, the first byte's high bits
/// set to `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, prefix: u32, value: usize) {
    let max = (1usize << prefix) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 128 {
        out.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    out.push(rest as u8);
}

/// A header block of literal fields without indexing, names and values
/// raw (no Huffman): any bytes, exactly as given.
fn header_block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in fields {
        block.push(0x00);
        hpack_int(&mut block, 0, 7, name.len());
        block.extend_from_slice(name);
        hpack_int(&mut block, 0, 7, value.len());
        block.extend_from_slice(value);
    }
    block
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len();
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The `:status` of a response header block that opens a fresh HPACK
/// context: an indexed static entry or a literal with the static name.
fn status_of(block: &[u8]) -> Option<u16> {
    let first = *block.first()?;
    let indexed = match first {
        0x88 => Some(200),
        0x89 => Some(204),
        0x8a => Some(206),
        0x8b => Some(304),
        0x8c => Some(400),
        0x8d => Some(404),
        0x8e => Some(500),
        _ => None,
    };
    if indexed.is_some() {
        return indexed;
    }
    // Literal (with, without or never indexing) naming static entry 8..=14.
    let name_index = match first {
        0x48..=0x4e => first & 0x3f,
        0x08..=0x0e | 0x18..=0x1e => first & 0x0f,
        _ => return None,
    };
    if !(8..=14).contains(&name_index) {
        return None;
    }
    let len_byte = *block.get(1)?;
    let len = usize::from(len_byte & 0x7f);
    let value = block.get(2..2 + len)?;
    let digits = if len_byte & 0x80 == 0 {
        String::from_utf8(value.to_vec()).ok()?
    } else {
        huffman_digits(value)?
    };
    digits.parse().ok()
}

/// Decodes a Huffman-coded string of decimal digits (RFC 7541 Appendix B:
/// `0`-`2` are 5 bits, `3`-`9` 6 bits).
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out = String::new();
    let mut at = 0;
    let code = |from: usize, n: usize| -> Option<u32> {
        let slice = bits.get(from..from + n)?;
        Some(slice.iter().fold(0u32, |acc, b| acc << 1 | u32::from(*b)))
    };
    while at < bits.len() {
        // Padding: the rest is all ones and shorter than a byte.
        if bits.len() - at < 8 && bits[at..].iter().all(|b| *b == 1) {
            break;
        }
        match code(at, 5)? {
            c @ 0..=2 => {
                out.push(char::from(b'0' + c as u8));
                at += 5;
            }
            _ => {
                let c = code(at, 6)?;
                if !(0b011001..=0b011111).contains(&c) {
                    return None;
                }
                out.push(char::from(b'3' + (c - 0b011001) as u8));
                at += 6;
            }
        }
    }
    Some(out)
}

/// What came back for one stream.
#[derive(Debug, Default)]
struct Outcome {
    status: Option<u16>,
    body: Vec<u8>,
    /// RST_STREAM error code for the stream.
    reset: Option<u32>,
    /// GOAWAY error code.
    goaway: Option<u32>,
    /// The connection ended (EOF or error) before the stream did.
    closed: bool,
}

impl Outcome {
    /// The echo upstream's description of the proxied request, if the
    /// request reached it.
    fn echo(&self) -> Option<Value> {
        if self.status != Some(200) {
            return None;
        }
        let value: Value = serde_json::from_slice(&self.body).ok()?;
        value.get("headers").is_some().then_some(value)
    }
}

/// A TLS connection that agreed to h2 by ALPN, spoken to frame by frame.
struct RawH2 {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    /// The gateway's SETTINGS parameters (from its first SETTINGS frame).
    settings: Vec<(u16, u32)>,
}

impl RawH2 {
    /// Connects, checks ALPN chose h2 and sends the preface and an empty
    /// SETTINGS frame.
    fn connect(addr: SocketAddr, ca: &str) -> Self {
        let mut config = tls_config(ca);
        config.alpn_protocols = vec![b"h2".to_vec()];
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let socket = TcpStream::connect(addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        socket
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        while tls.conn.is_handshaking() {
            tls.conn.complete_io(&mut tls.sock).unwrap();
        }
        assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]), "ALPN");
        let mut raw = Self {
            tls,
            settings: Vec::new(),
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        raw.send(&hello).unwrap();
        raw
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// The next frame: (type, flags, stream, payload); `None` at EOF or on
    /// an error (including the read timeout).
    fn read_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        self.tls.read_exact(&mut head).ok()?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.tls.read_exact(&mut payload).ok()?;
        Some((head[3], head[4], stream, payload))
    }

    /// Answers what the connection needs (SETTINGS ACK, PING ACK) and
    /// returns the frame for the caller to look at.
    fn next_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let (kind, flags, stream, payload) = self.read_frame()?;
        match kind {
            SETTINGS if flags & ACK == 0 => {
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    self.settings.push((id, value));
                }
                let _ = self.send(&frame(SETTINGS, ACK, 0, &[]));
            }
            PING if flags & ACK == 0 => {
                let _ = self.send(&frame(PING, ACK, 0, &payload));
            }
            _ => {}
        }
        Some((kind, flags, stream, payload))
    }

    /// Reads until `stream` ends (or is reset, or the connection goes).
    fn outcome(&mut self, stream: u32) -> Outcome {
        let mut outcome = Outcome::default();
        loop {
            let Some((kind, flags, id, payload)) = self.next_frame() else {
                outcome.closed = true;
                return outcome;
            };
            match kind {
                HEADERS if id == stream => {
                    if outcome.status.is_none() {
                        outcome.status = status_of(&payload);
                    }
                    if flags & END_STREAM != 0 {
                        return outcome;
                    }
                }
                DATA if id == stream => {
                    outcome.body.extend_from_slice(&payload);
                    if flags & END_STREAM != 0 {
                        return outcome;
                    }
                }
                RST_STREAM if id == stream => {
                    outcome.reset = payload
                        .get(..4)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    return outcome;
                }
                GOAWAY => {
                    outcome.goaway = payload
                        .get(4..8)
                        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    return outcome;
                }
                _ => {}
            }
        }
    }

    /// Sends one request (a complete header block, no body) on `stream`
    /// and reads its outcome.
    fn request(&mut self, stream: u32, fields: &[(&[u8], &[u8])]) -> Outcome {
        let block = header_block(fields);
        if self
            .send(&frame(HEADERS, END_STREAM | END_HEADERS, stream, &block))
            .is_err()
        {
            return Outcome {
                closed: true,
                ..Outcome::default()
            };
        }
        self.outcome(stream)
    }

    /// Reads frames until the gateway closes the connection. `Some` (with
    /// the GOAWAY error codes seen on the way) if it did, `None` if the
    /// connection was still open after `bound`.
    fn wait_closed(&mut self, bound: Duration) -> Option<Vec<u32>> {
        let started = std::time::Instant::now();
        let mut goaways = Vec::new();
        loop {
            let mut head = [0u8; 9];
            match self.tls.read_exact(&mut head) {
                Ok(()) => {
                    let len = (usize::from(head[0]) << 16)
                        | (usize::from(head[1]) << 8)
                        | usize::from(head[2]);
                    let mut payload = vec![0u8; len];
                    if self.tls.read_exact(&mut payload).is_err() {
                        return Some(goaways);
                    }
                    if head[3] == GOAWAY
                        && let Some(code) = payload.get(4..8)
                    {
                        goaways.push(u32::from_be_bytes([code[0], code[1], code[2], code[3]]));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return Some(goaways),
            }
            if started.elapsed() >= bound {
                return None;
            }
        }
    }
}

/// Sends `fields` on a fresh connection (stream 1).
fn exchange(addr: SocketAddr, ca: &str, fields: &[(&[u8], &[u8])]) -> Outcome {
    RawH2::connect(addr, ca).request(1, fields)
}

/// `:method GET`, `:scheme https`, `:authority 127.0.0.1:PORT`, `:path`.
fn pseudo(authority: &str, path: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
        (b":authority".to_vec(), authority.as_bytes().to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
    ]
}

fn borrow(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<(&[u8], &[u8])> {
    fields
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect()
}

/// Logs `account` in over HTTP/2 (the h2 crate's client): returns the
/// session cookie `name=value`.
fn login_over_h2(stack: &Stack, ca: &str, account: &str) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut h2 = H2Client::connect(stack.addr(), ca).await;
        let (status, headers, body) = h2
            .get("/.steemgate/status", &[("accept", "application/json")])
            .await;
        assert_eq!(status, 200);
        let set_cookie = headers
            .get("set-cookie")
            .expect("a session cookie over h2")
            .to_str()
            .unwrap()
            .to_string();
        assert!(set_cookie.starts_with("__Host-steemgate="), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let status: Value = serde_json::from_slice(&body).unwrap();
        let memo = status["memo"].as_str().expect("memo").to_string();
        stack.devnet.transfer(account, GATE, "0.001 STEEM", &memo);
        stack.devnet.produce_block(None);
        for _ in 0..10 {
            let (_, _, body) = h2
                .get(
                    "/.steemgate/status?wait=2",
                    &[("accept", "application/json"), ("cookie", &cookie)],
                )
                .await;
            let status: Value = serde_json::from_slice(&body).unwrap();
            if status["authenticated"] == Value::Bool(true) {
                assert_eq!(status["account"], account);
                return cookie;
            }
        }
        panic!("never logged in over h2");
    })
}

/// The `h2` crate's client over rustls (ALPN h2 only).
struct H2Client {
    send: h2::client::SendRequest<bytes::Bytes>,
    authority: String,
}

impl H2Client {
    async fn connect(addr: SocketAddr, ca: &str) -> Self {
        let mut config = tls_config(ca);
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        let (send, connection) = h2::client::handshake(tls).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self {
            send,
            authority: format!("127.0.0.1:{}", addr.port()),
        }
    }

    /// GET `path` with `headers` (each pair its own field, in order).
    async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, http::HeaderMap, Vec<u8>) {
        let mut request = http::Request::builder()
            .uri(format!("https://{}{path}", self.authority))
            .body(())
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let send = self.send.clone();
        let mut send = send.ready().await.unwrap();
        let (response, _) = send.send_request(request, true).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(20), response)
            .await
            .expect("an answer within 20 s")
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            bytes.extend_from_slice(&chunk);
        }
        (status, headers, bytes)
    }
}

/// Header fields as sent: (name, value) bytes, pseudo-headers included.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// How a spoofing request may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Well-formed h2: proxied, the spoofed fields stripped.
    Proxied,
    /// Malformed h2 (RFC 9113 §8.2, §8.3): never proxied.
    Refused,
}

/// The spoof matrix: (what, the fields sent, expected).
/// Every case carries `mallory` somewhere a careless gateway would forward.
fn spoof_cases(authority: &str, path: &str) -> Vec<(&'static str, Fields, Expect)> {
    let base = || pseudo(authority, path);
    let with = |extra: &[(&str, &str)]| {
        let mut fields = base();
        fields.extend(
            extra
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        fields
    };
    let replace_path = |new_path: &str| {
        let mut fields = base();
        fields[3].1 = new_path.as_bytes().to_vec();
        fields.push((b"x-steem-account".to_vec(), b"mallory".to_vec()));
        fields
    };
    use Expect::*;
    vec![
        (
            "lowercase",
            with(&[("x-steem-account", "mallory")]),
            Proxied,
        ),
        (
            "duplicates",
            with(&[
                ("x-steem-account", "mallory"),
                ("x-steem-account", "mallory"),
            ]),
            Proxied,
        ),
        (
            "underscore alias",
            with(&[("x_steem_account", "mallory")]),
            Proxied,
        ),
        (
            "dot alias",
            with(&[("x.steem.account", "mallory")]),
            Proxied,
        ),
        (
            "mixed alias",
            with(&[("x-steem_account", "mallory")]),
            Proxied,
        ),
        (
            "assertion",
            with(&[("x-steem-assertion", "mallory")]),
            Proxied,
        ),
        (
            "uppercase",
            with(&[("X-Steem-Account", "mallory")]),
            Refused,
        ),
        (
            "capital alias",
            with(&[("X_Steem_Account", "mallory")]),
            Refused,
        ),
        (
            "connection names it",
            with(&[
                ("x-steem-account", "mallory"),
                ("connection", "x-steem-account"),
            ]),
            Refused,
        ),
        (
            "te gzip",
            with(&[("x-steem-account", "mallory"), ("te", "gzip")]),
            Refused,
        ),
        (
            "upgrade",
            with(&[("x-steem-account", "mallory"), ("upgrade", "websocket")]),
            Refused,
        ),
        (
            "keep-alive",
            with(&[("x-steem-account", "mallory"), ("keep-alive", "timeout=5")]),
            Refused,
        ),
        (
            "proxy-connection",
            with(&[
                ("x-steem-account", "mallory"),
                ("proxy-connection", "keep-alive"),
            ]),
            Refused,
        ),
        (
            "transfer-encoding",
            with(&[
                ("x-steem-account", "mallory"),
                ("transfer-encoding", "chunked"),
            ]),
            Refused,
        ),
        (
            "name with a space",
            with(&[("x-steem account", "mallory")]),
            Refused,
        ),
        (
            "name ending in a space",
            with(&[("x-steem-account ", "mallory")]),
            Refused,
        ),
        (
            "name with a colon",
            with(&[("x-steem-account:", "mallory")]),
            Refused,
        ),
        (
            "unknown pseudo-header",
            with(&[(":x-steem-account", "mallory")]),
            Refused,
        ),
        (
            "CRLF in a value",
            with(&[("x-note", "a\r\nx-steem-account: mallory")]),
            Refused,
        ),
        (
            "LF in a value",
            with(&[("x-note", "a\nx-steem-account: mallory")]),
            Refused,
        ),
        (
            "second :path",
            {
                let mut fields = with(&[("x-steem-account", "mallory")]);
                fields.insert(4, (b":path".to_vec(), b"/public".to_vec()));
                fields
            },
            Refused,
        ),
        (
            "pseudo-header after a field",
            {
                let mut fields = base();
                let path = fields.pop().unwrap();
                fields.push((b"x-steem-account".to_vec(), b"mallory".to_vec()));
                fields.push(path);
                fields
            },
            Refused,
        ),
        ("path without a slash", replace_path(&path[1..]), Refused),
        (
            "absolute-form path",
            replace_path(&format!("https://evil.example{path}")),
            Refused,
        ),
        ("asterisk path", replace_path("*"), Refused),
        ("empty path", replace_path(""), Refused),
        (
            "host disagrees with :authority",
            with(&[("host", "evil.example"), ("x-steem-account", "mallory")]),
            Refused,
        ),
        (
            "host equal to :authority",
            with(&[("host", authority), ("x-steem-account", "mallory")]),
            Proxied,
        ),
        (
            "two hosts",
            with(&[
                ("host", authority),
                ("host", "evil.example"),
                ("x-steem-account", "mallory"),
            ]),
            Refused,
        ),
    ]
}

/// Runs the spoof matrix against `path`; `account` is who the upstream
/// must see (`None`: nobody), `cookie` the session to send.
fn run_spoof_matrix(
    stack: &Stack,
    ca: &str,
    path: &str,
    cookie: Option<&str>,
    account: Option<&str>,
) {
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    // The baseline can fail: a plain request is proxied with the right identity.
    let mut baseline = pseudo(&authority, path);
    if let Some(cookie) = cookie {
        baseline.push((b"cookie".to_vec(), cookie.as_bytes().to_vec()));
    }
    let outcome = exchange(stack.addr(), ca, &borrow(&baseline));
    let echo = outcome
        .echo()
        .unwrap_or_else(|| panic!("baseline not proxied: {outcome:?}"));
    let expected: Vec<String> = account.into_iter().map(str::to_string).collect();
    assert_eq!(upstream_saw(&echo, "x-steem-account"), expected);
    // HTTP/1.1 upstream: one Host, from :authority; the scheme forwarded.
    assert_eq!(
        upstream_saw(&echo, "host"),
        vec![authority.clone()],
        "{echo}"
    );
    assert_eq!(upstream_saw(&echo, "x-forwarded-proto"), vec!["https"]);

    let mut failures = Vec::new();
    for (what, mut fields, expect) in spoof_cases(&authority, path) {
        if let Some(cookie) = cookie {
            fields.push((b"cookie".to_vec(), cookie.as_bytes().to_vec()));
        }
        let outcome = exchange(stack.addr(), ca, &borrow(&fields));
        let echo = outcome.echo();
        eprintln!(
            "{what}: status {:?}, reset {:?}, goaway {:?}, closed {}, proxied {}",
            outcome.status,
            outcome.reset,
            outcome.goaway,
            outcome.closed,
            echo.is_some()
        );
        if let Some(echo) = &echo {
            let text = echo.to_string();
            if text.contains("mallory") {
                failures.push(format!("{what}: the upstream saw mallory: {text}"));
            }
            if upstream_saw(echo, "x-steem-account") != expected {
                failures.push(format!(
                    "{what}: identity {:?}",
                    upstream_saw(echo, "x-steem-account")
                ));
            }
            if !upstream_saw(echo, "x-steem-assertion").is_empty() {
                failures.push(format!("{what}: an assertion reached the upstream"));
            }
        }
        match (expect, echo.is_some()) {
            (Expect::Proxied, false) => failures.push(format!("{what}: not proxied: {outcome:?}")),
            (Expect::Refused, true) => {
                failures.push(format!("{what}: a malformed request was proxied"))
            }
            (Expect::Refused, false) => {
                // Refused by h2 (RST_STREAM PROTOCOL_ERROR) or by pingora (400).
                let refused = outcome.reset.is_some()
                    || outcome.goaway.is_some()
                    || outcome.status.is_some_and(|s| (400..500).contains(&s));
                if !refused {
                    failures.push(format!("{what}: neither reset nor 4xx: {outcome:?}"));
                }
            }
            (Expect::Proxied, true) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spoofed_identities_over_h2_never_reach_the_upstream_anonymous() {
    let (stack, ca, _certs) = h2_stack();
    run_spoof_matrix(&stack, &ca, "/maybe/x", None, None);
}

#[test]
fn spoofed_identities_over_h2_never_reach_the_upstream_logged_in() {
    let (stack, ca, _certs) = h2_stack();
    let cookie = login_over_h2(&stack, &ca, "alice");
    run_spoof_matrix(&stack, &ca, "/app", Some(&cookie), Some("alice"));
}

/// RFC 9113 §8.2.3 lets a client split `cookie` into crumbs, one field
/// each: the session is found in any crumb, the gateway's cookie never
/// reaches the upstream however it was split, and the other cookies reach
/// it as one `Cookie` header joined with "; " (HTTP/1.1 allows only one).
#[test]
fn cookie_crumbs_in_every_position_find_the_session_and_never_leak_it() {
    let (stack, ca, _certs) = h2_stack();
    let session = login_over_h2(&stack, &ca, "alice");
    let forged = "__Host-steemgate=v1.forged.forged";
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("first", vec![session.clone(), "a=1".into(), "b=2".into()]),
        ("middle", vec!["a=1".into(), session.clone(), "b=2".into()]),
        ("last", vec!["a=1".into(), "b=2".into(), session.clone()]),
        (
            "inside a crumb",
            vec![format!("a=1; {session}"), "b=2".into()],
        ),
        (
            "forged before",
            vec!["a=1".into(), forged.into(), session.clone(), "b=2".into()],
        ),
        (
            "forged after",
            vec!["a=1".into(), session.clone(), "b=2".into(), forged.into()],
        ),
        (
            "forged in a crumb",
            vec![format!("a=1; {forged}"), session.clone(), "b=2".into()],
        ),
        (
            "twice",
            vec!["a=1".into(), session.clone(), "b=2".into(), session.clone()],
        ),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut h2 = H2Client::connect(stack.addr(), &ca).await;
        for (what, crumbs) in &cases {
            let headers: Vec<(&str, &str)> =
                crumbs.iter().map(|c| ("cookie", c.as_str())).collect();
            let (status, _, body) = h2.get("/app", &headers).await;
            assert_eq!(status, 200, "{what}: {}", String::from_utf8_lossy(&body));
            let echo: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(
                upstream_saw(&echo, "x-steem-account"),
                vec!["alice"],
                "{what}"
            );
            assert_eq!(
                upstream_saw(&echo, "cookie"),
                vec!["a=1; b=2"],
                "{what}: {echo}"
            );
            assert!(!echo.to_string().contains("steemgate="), "{what}: {echo}");
        }
        // Anonymous on an optional route: a forged session crumb is dropped too.
        let (status, _, body) = h2
            .get(
                "/maybe/x",
                &[("cookie", "a=1"), ("cookie", forged), ("cookie", "b=2")],
            )
            .await;
        assert_eq!(status, 200);
        let echo: Value = serde_json::from_slice(&body).unwrap();
        assert!(upstream_saw(&echo, "x-steem-account").is_empty());
        assert_eq!(upstream_saw(&echo, "cookie"), vec!["a=1; b=2"]);
        // A required route without a session crumb is not proxied.
        let (status, _, body) = h2
            .get("/app", &[("cookie", "a=1"), ("cookie", forged)])
            .await;
        assert_ne!(status, 200);
        assert!(
            serde_json::from_slice::<Value>(&body).map_or(true, |v| v.get("headers").is_none())
        );
    });
}

/// The gateway does not announce RFC 8441 (extended CONNECT), so browsers
/// open WebSockets over HTTP/1.1 (tests/browser_h2.rs checks that they do).
#[test]
fn the_gateway_does_not_offer_websockets_over_h2() {
    let (stack, ca, _certs) = h2_stack();
    let mut raw = RawH2::connect(stack.addr(), &ca);
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    let outcome = raw.request(1, &borrow(&pseudo(&authority, "/public")));
    assert_eq!(outcome.status, Some(200), "{outcome:?}");
    assert!(!raw.settings.is_empty(), "no SETTINGS from the gateway");
    assert!(
        !raw.settings
            .iter()
            .any(|(id, value)| *id == ENABLE_CONNECT_PROTOCOL && *value != 0),
        "{:?}",
        raw.settings
    );
    // An extended CONNECT anyway is not proxied.
    let mut connect = vec![
        (b":method".to_vec(), b"CONNECT".to_vec()),
        (b":protocol".to_vec(), b"websocket".to_vec()),
        (b":scheme".to_vec(), b"https".to_vec()),
        (b":authority".to_vec(), authority.as_bytes().to_vec()),
        (b":path".to_vec(), b"/public".to_vec()),
    ];
    connect.push((b"sec-websocket-version".to_vec(), b"13".to_vec()));
    let outcome = exchange(stack.addr(), &ca, &borrow(&connect));
    assert!(outcome.echo().is_none(), "{outcome:?}");
}

/// The gateway's resident memory (kB).
fn rss_kb(stack: &Stack) -> u64 {
    let pid = stack.gateway.pid().expect("gateway running");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Another client gets a proxied answer.
fn assert_serves_another_client(stack: &Stack, ca: &str, when: &str) {
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    let outcome = exchange(stack.addr(), ca, &borrow(&pseudo(&authority, "/public")));
    assert!(
        outcome.echo().is_some(),
        "{when}: another client got {outcome:?}"
    );
}

/// Runs `flood` on an abusive connection, then checks: another client is
/// served while that connection is still there and after it is gone, the
/// gateway closes it, and the gateway's memory grew by less than 64 MB.
fn flood_is_bounded(what: &str, flood: impl FnOnce(&mut RawH2, &str)) {
    let (stack, ca, _certs) = h2_stack();
    assert_serves_another_client(&stack, &ca, "before");
    let before = rss_kb(&stack);
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    let mut abusive = RawH2::connect(stack.addr(), &ca);
    flood(&mut abusive, &authority);
    assert_serves_another_client(&stack, &ca, &format!("during the {what}"));
    let flooded = std::time::Instant::now();
    let goaways = abusive
        .wait_closed(Duration::from_secs(60))
        .unwrap_or_else(|| panic!("the gateway never closed the {what} connection"));
    eprintln!(
        "{what}: closed by the gateway {:?} after the flood; GOAWAY codes seen: {goaways:?}",
        flooded.elapsed()
    );
    assert_serves_another_client(&stack, &ca, &format!("after the {what}"));
    let after = rss_kb(&stack);
    assert!(
        after < before + 64 * 1024,
        "{what}: memory grew from {before} kB to {after} kB"
    );
}

/// CVE-2023-44487: open streams and reset them at once, many times.
#[test]
fn rapid_reset_is_bounded() {
    flood_is_bounded("rapid reset", |raw, authority| {
        let block = header_block(&borrow(&pseudo(authority, "/public")));
        let mut sent = 0;
        for batch in 0..100u32 {
            let mut bytes = Vec::new();
            for i in 0..100u32 {
                let stream = 2 * (batch * 100 + i) + 1;
                bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, stream, &block));
                bytes.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
            }
            if raw.send(&bytes).is_err() {
                break;
            }
            sent += 100;
        }
        eprintln!("rapid reset: {sent} streams opened and reset");
        assert!(sent > 0);
    });
}

/// CVE-2024-27316 class: a header block that never ends, in many
/// CONTINUATION frames, far above the header-list limit.
#[test]
fn continuation_flood_is_bounded() {
    flood_is_bounded("CONTINUATION flood", |raw, authority| {
        let block = header_block(&borrow(&pseudo(authority, "/public")));
        raw.send(&frame(HEADERS, END_STREAM, 1, &block)).unwrap();
        let filler = vec![b'a'; 1000];
        let mut sent = 0usize;
        for i in 0..20_000u32 {
            let name = format!("x-filler-{i}");
            let field = header_block(&[(name.as_bytes(), filler.as_slice())]);
            if raw.send(&frame(CONTINUATION, 0, 1, &field)).is_err() {
                break;
            }
            sent += field.len();
        }
        eprintln!("CONTINUATION flood: {sent} header bytes written");
        // Whether the gateway stopped reading or closed, it did not take
        // in the whole 20 MB header block.
        assert!(sent < 20_000 * 1000, "the gateway read {sent} header bytes");
    });
}

/// SETTINGS frames, each needing an ACK, from a client that never reads.
#[test]
fn settings_flood_is_bounded() {
    flood_is_bounded("SETTINGS flood", |raw, _| {
        let one = frame(SETTINGS, 0, 0, &[0, 0x3, 0, 0, 0, 100]);
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        for _ in 0..200 {
            if raw.send(&batch).is_err() {
                break;
            }
        }
    });
}

/// PING frames, each needing an ACK, from a client that never reads.
#[test]
fn ping_flood_is_bounded() {
    flood_is_bounded("PING flood", |raw, _| {
        let one = frame(PING, 0, 0, &[7; 8]);
        let batch: Vec<u8> = one.iter().copied().cycle().take(one.len() * 1000).collect();
        for _ in 0..200 {
            if raw.send(&batch).is_err() {
                break;
            }
        }
    });
}

/// A TLS connection that chose h2 but never sends the preface is closed
/// after `limits.header_timeout`; an h2 connection with nothing in flight
/// after `limits.idle_timeout`.
#[test]
fn silent_and_idle_h2_connections_are_closed() {
    let (stack, ca, _certs) = h2_stack();
    let mut config = tls_config(&ca);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let socket = TcpStream::connect(stack.addr()).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut silent = rustls::StreamOwned::new(connection, socket);
    while silent.conn.is_handshaking() {
        silent.conn.complete_io(&mut silent.sock).unwrap();
    }
    assert_eq!(silent.conn.alpn_protocol(), Some(&b"h2"[..]));
    // The gateway's SETTINGS may come first; then it must close.
    let mut buf = [0u8; 256];
    let closed = loop {
        match silent.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false;
            }
            Err(_) => break true,
        }
    };
    assert!(closed, "a silent h2 connection stayed open");

    let mut idle = RawH2::connect(stack.addr(), &ca);
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    let outcome = idle.request(1, &borrow(&pseudo(&authority, "/public")));
    assert!(outcome.echo().is_some(), "{outcome:?}");
    assert!(
        idle.wait_closed(Duration::from_secs(30)).is_some(),
        "an idle h2 connection stayed open"
    );
}

/// Request trailers (a HEADERS frame after the body) carrying an identity
/// never reach the upstream: not as trailers, not merged into the head.
#[test]
fn identity_in_h2_request_trailers_never_arrives() {
    let recorder = support::attack::RecordingUpstream::start("R");
    let route = format!(
        "routes:\n  - {{path: /rec, upstream: \"http://{}\", auth: optional}}\n",
        recorder.addr
    );
    let (stack, ca, _certs) = tls_stack_with("", false, |config| {
        short_limits(config).replacen("routes:\n", &route, 1)
    });
    let cookie = login_over_h2(&stack, &ca, "alice");
    let authority = format!("127.0.0.1:{}", stack.addr().port());
    for session in [None, Some(cookie.as_str())] {
        recorder.clear();
        let mut raw = RawH2::connect(stack.addr(), &ca);
        let mut head = vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b":scheme".to_vec(), b"https".to_vec()),
            (b":authority".to_vec(), authority.as_bytes().to_vec()),
            (b":path".to_vec(), b"/rec/x".to_vec()),
            (b"te".to_vec(), b"trailers".to_vec()),
        ];
        if let Some(cookie) = session {
            head.push((b"cookie".to_vec(), cookie.as_bytes().to_vec()));
        }
        let mut bytes = frame(HEADERS, END_HEADERS, 1, &header_block(&borrow(&head)));
        bytes.extend(frame(DATA, 0, 1, b"hello"));
        let trailers = header_block(&[
            (b"x-steem-account", b"mallory"),
            (b"x_steem_account", b"mallory"),
        ]);
        bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &trailers));
        raw.send(&bytes).unwrap();
        let outcome = raw.outcome(1);
        let seen = recorder.seen();
        eprintln!(
            "trailers: status {:?}, upstream saw {seen:?}",
            outcome.status
        );
        match outcome.status {
            // Refusing trailers outright is also safe.
            Some(400) => assert!(seen.is_empty(), "{seen:?}"),
            other => {
                assert_eq!(other, Some(200), "{outcome:?}");
                assert_eq!(seen.len(), 1, "{seen:?}");
                assert_eq!(seen[0].body, b"hello");
                assert!(
                    !seen[0].raw_head.contains("mallory"),
                    "{}",
                    seen[0].raw_head
                );
                assert!(seen[0].trailers.is_empty(), "{:?}", seen[0].trailers);
                let want: Vec<String> = session.map(|_| "alice".to_string()).into_iter().collect();
                assert_eq!(seen[0].header_values("x-steem-account"), want);
            }
        }
    }
}
