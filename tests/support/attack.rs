//! Helpers for the attack suites (`tests/attack_*.rs`).
//!
//! Why a separate harness: attack tests must see *exactly* what reached an
//! upstream, including requests a proxy should never have forwarded
//! (smuggled requests, premature upgrades, trailers). So the upstreams here
//! are raw-TCP HTTP/1.1 servers that log every request they parse, on every
//! connection, and name themselves in their answers; the client side sends
//! raw bytes and tolerates a gateway that answers 400 and closes, or just
//! closes. The gateway config has two named upstreams (`A` for required
//! routes, `B` for public/optional ones) and a dead one, so a test can tell
//! which upstream a request reached.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::free_addr;
use super::gateway::{GATE, GatewayProcess, SECRET, Stack, TestDevnet, echo_upstream};

/// One request as an upstream parsed it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub upstream: &'static str,
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub trailers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub raw_head: String,
}

impl Seen {
    /// Values of `name`, any spelling (case, `_`, `.`).
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let normal = |s: &str| s.trim().to_ascii_lowercase().replace(['_', '.'], "-");
        self.headers
            .iter()
            .chain(self.trailers.iter())
            .filter(|(n, _)| normal(n) == normal(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A raw-TCP HTTP/1.1 upstream that records every request and answers with
/// JSON `{"upstream","method","target","headers"}`. A request with
/// `Upgrade` gets `101` and then every byte is echoed back.
pub struct RecordingUpstream {
    pub name: &'static str,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RecordingUpstream {
    pub fn start(name: &'static str) -> Self {
        let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_log = log.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let log = thread_log.clone();
                        tokio::spawn(serve_connection(name, stream, log));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        let addr = addr_rx.recv().expect("recording upstream address");
        Self {
            name,
            addr,
            log,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Everything received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for RecordingUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn split_header(line: &str) -> (String, String) {
    match line.split_once(':') {
        Some((n, v)) => (n.to_string(), v.trim().to_string()),
        None => (line.to_string(), String::new()),
    }
}

async fn read_line(reader: &mut BufReader<tokio::net::TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line).await.ok()?;
    if n == 0 {
        return None;
    }
    Some(
        String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string(),
    )
}

async fn serve_connection(
    name: &'static str,
    stream: tokio::net::TcpStream,
    log: Arc<Mutex<Vec<Seen>>>,
) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(request_line) = read_line(&mut reader).await else {
            return;
        };
        if request_line.is_empty() {
            continue;
        }
        let mut raw_head = format!("{request_line}\r\n");
        let mut headers = Vec::new();
        loop {
            let Some(line) = read_line(&mut reader).await else {
                return;
            };
            if line.is_empty() {
                break;
            }
            raw_head.push_str(&line);
            raw_head.push_str("\r\n");
            headers.push(split_header(&line));
        }
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let has = |name: &str| {
            headers
                .iter()
                .filter(|(n, _): &&(String, String)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        let mut body = Vec::new();
        let mut trailers = Vec::new();
        if !has("transfer-encoding").is_empty() {
            loop {
                let Some(size_line) = read_line(&mut reader).await else {
                    return;
                };
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                if size == 0 {
                    loop {
                        let Some(line) = read_line(&mut reader).await else {
                            return;
                        };
                        if line.is_empty() {
                            break;
                        }
                        trailers.push(split_header(&line));
                    }
                    break;
                }
                let mut chunk = vec![0u8; size + 2];
                if reader.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                chunk.truncate(size);
                body.extend_from_slice(&chunk);
            }
        } else if let Some(length) = has("content-length").first() {
            let length: usize = length.parse().unwrap_or(0);
            body = vec![0u8; length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        let upgrade = !has("upgrade").is_empty();
        let header_json: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
        log.lock().unwrap().push(Seen {
            upstream: name,
            method: method.clone(),
            target: target.clone(),
            headers,
            trailers,
            body,
            raw_head,
        });
        let stream = reader.get_mut();
        if upgrade {
            let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if reader.get_mut().write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let body =
            json!({"upstream": name, "method": method, "target": target, "headers": header_json})
                .to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// What came back on a raw connection: all bytes until the gateway closed
/// it (or `timeout` passed without more data).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub bytes: Vec<u8>,
}

impl Exchange {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).to_string()
    }
    /// Status of the first response, if one came.
    pub fn status(&self) -> Option<u16> {
        let text = self.text();
        let line = text.lines().next()?;
        line.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
    }
    /// Number of response status lines in the bytes.
    pub fn response_count(&self) -> usize {
        self.text().matches("HTTP/1.1 ").count() + self.text().matches("HTTP/1.0 ").count()
    }
    /// The head of the first response (up to the blank line).
    pub fn first_head(&self) -> String {
        let text = self.text();
        text.split("\r\n\r\n").next().unwrap_or("").to_string()
    }
    /// The JSON body of the first response.
    pub fn json(&self) -> Value {
        let text = self.text();
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let end = body.find("HTTP/1.").unwrap_or(body.len());
        serde_json::from_str(&body[..end]).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}

/// Writes `raw`, then reads until close or `timeout` of silence. Never
/// panics on a reset or early close: the bytes so far are returned.
pub fn exchange(addr: SocketAddr, raw: &[u8], timeout: Duration) -> Exchange {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    let _ = stream.write_all(raw);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    Exchange { bytes }
}

/// The usual short wait for a gateway that should answer at once.
pub const QUICK: Duration = Duration::from_secs(3);

/// The gateway with two recording upstreams and a dead one.
pub struct AttackStack {
    pub stack: Stack,
    /// Behind the `required` routes (`/`, `/app`, `/ws`, `/admin`).
    pub a: RecordingUpstream,
    /// Behind `/public` (public), `/maybe` (optional) and host `other.example`.
    pub b: RecordingUpstream,
    /// Nobody listens here: `/dead` (optional) and `/deadreq` (required).
    pub dead: SocketAddr,
    /// Holds `dead` (bound, refusing connections) so nobody else takes it.
    _dead_port: super::ClosedPort,
}

impl AttackStack {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// `extra` is YAML added at the top level (e.g. `trusted_proxies`).
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let devnet = TestDevnet::start();
        devnet.produce_block(None);
        let a = RecordingUpstream::start("A");
        let b = RecordingUpstream::start("B");
        let dead_port = super::ClosedPort::new();
        let dead = dead_port.addr();
        let (addr, admin) = (free_addr(), free_addr());
        let config = format!(
            r#"listen: "{addr}"
admin_listen: "{admin}"
threads: 2
{extra}
chain:
  name: steem
  nodes: ["{devnet}"]
  account: {GATE}
  devnet: true
  request_timeout: 2s
session:
  secret: "{SECRET}"
store: "file:{store}"
limits: {{new_sessions_per_minute: 0, status_per_minute: 0}}
routes:
  - {{host: "127.0.0.1", path: /, upstream: "http://{a}", auth: required}}
  - {{path: /app, upstream: "http://{a}", auth: required}}
  - {{path: /ws, upstream: "http://{a}", auth: required}}
  - {{path: /admin, upstream: "http://{a}", auth: required, allow: [alice]}}
  - {{path: /public, upstream: "http://{b}", auth: public}}
  - {{path: /maybe, upstream: "http://{b}", auth: optional}}
  - {{path: /dead, upstream: "http://{dead}", auth: optional}}
  - {{path: /deadreq, upstream: "http://{dead}", auth: required}}
  - {{host: "other.example", path: /, upstream: "http://{b}", auth: public}}
"#,
            devnet = devnet.url(),
            store = dir.path().join("store").display(),
            a = a.addr,
            b = b.addr,
        );
        let gateway = GatewayProcess::start(&config, dir.path(), addr, admin);
        let stack = Stack {
            gateway,
            devnet,
            upstream: echo_upstream(),
            dir,
        };
        stack.wait_ready();
        Self {
            stack,
            a,
            b,
            dead,
            _dead_port: dead_port,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.stack.addr()
    }

    /// `Cookie: steemgate=…` header line for a fresh login as `account`.
    pub fn cookie_for(&self, account: &str) -> String {
        format!("Cookie: {}", self.stack.login_as(account))
    }

    /// Everything both live upstreams received.
    pub fn all_seen(&self) -> Vec<Seen> {
        let mut all = self.a.seen();
        all.extend(self.b.seen());
        all
    }

    pub fn clear(&self) {
        self.a.clear();
        self.b.clear();
    }

    /// Sends one raw request (`Host` is the gateway's address unless the
    /// caller wrote one) and returns what came back.
    pub fn send(&self, raw: &str) -> Exchange {
        exchange(self.addr(), raw.as_bytes(), QUICK)
    }
}

/// `GET path` with extra header lines, `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> String {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw
}
