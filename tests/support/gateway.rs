//! Starts the real `steemgate` binary with an in-test devnet and a
//! header-echo upstream, and talks raw HTTP/1.1 to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{free_addr, wait_until};

pub const SECRET: &str = "integration-test-secret-0123456789abcdef";
pub const GATE: &str = "gate-test";

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// `name=value` of the Set-Cookie for the session cookie, if any.
    pub fn session_cookie(&self) -> Option<String> {
        self.headers_named("set-cookie")
            .into_iter()
            .find(|c| c.starts_with("steemgate="))
            .map(|c| c.split(';').next().unwrap_or("").to_string())
    }
}

/// Sends `raw` (a complete HTTP/1.1 request) and reads one response. The
/// request should carry `Connection: close` unless the caller knows better.
pub fn raw_request(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    stream.write_all(raw).expect("write");
    read_response(&mut stream)
}

/// Reads one response from `stream` (a body framed by Content-Length or
/// chunked, else read to close), so that a keep-alive connection can carry
/// the next request afterwards.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let head_end;
    loop {
        let n = stream.read(&mut chunk).expect("read");
        assert!(
            n > 0,
            "connection closed before a response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            head_end = pos + 4;
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let mut body = buf[head_end..].to_vec();
    match length {
        Some(len) => {
            while body.len() < len {
                let n = stream.read(&mut chunk).expect("read body");
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            body.truncate(len);
        }
        None => {
            // Read to close (chunked bodies from tests' Connection: close requests).
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&chunk[..n]),
                }
                if chunked && body.ends_with(b"0\r\n\r\n") {
                    break;
                }
            }
            if chunked {
                body = dechunk(&body);
            }
        }
    }
    Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..pos]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = pos + 2;
        out.extend_from_slice(&data[start..(start + size).min(data.len())]);
        data = &data[(start + size + 2).min(data.len())..];
    }
    out
}

/// A GET with extra header lines (each `Name: value`).
pub fn get(addr: SocketAddr, path: &str, headers: &[&str]) -> Response {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw_request(addr, raw.as_bytes())
}

/// A POST with a form body.
pub fn post(addr: SocketAddr, path: &str, headers: &[&str], body: &str) -> Response {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    raw_request(addr, raw.as_bytes())
}

/// A tokio runtime on its own thread running one server future until dropped.
pub struct Background {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    pub fn start<F, Fut>(serve: F) -> Self
    where
        F: FnOnce(tokio::net::TcpListener, tokio::sync::oneshot::Receiver<()>) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, stop_rx).await;
            });
        });
        let addr = addr_rx.recv().expect("background server address");
        Self {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An upstream that answers every request with JSON describing it:
/// `{"method","target","headers":[[name,value],...]}` (duplicates kept).
pub fn echo_upstream() -> Background {
    Background::start(|listener, stop| async move {
        let app = axum::Router::new().fallback(|req: axum::extract::Request| async move {
            let headers: Vec<Value> = req
                .headers()
                .iter()
                .map(|(n, v)| json!([n.as_str(), String::from_utf8_lossy(v.as_bytes())]))
                .collect();
            axum::Json(json!({"method": req.method().as_str(), "target": req.uri().to_string(), "headers": headers}))
        });
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop.await;
            })
            .await;
    })
}

/// An in-test devnet (blocks only on request).
pub struct TestDevnet {
    pub server: Background,
}

impl TestDevnet {
    pub fn start() -> Self {
        Self::start_with_seed(false)
    }

    /// With the demo accounts (`demo` follows 3,000 generated accounts).
    pub fn start_seeded() -> Self {
        Self::start_with_seed(true)
    }

    fn start_with_seed(seed: bool) -> Self {
        let server = Background::start(move |listener, stop| async move {
            let devnet =
                steemgate::chain::devnet::Devnet::new(steemgate::chain::devnet::DevnetOptions {
                    chain: steemgate::chain::ChainName::Steem,
                    block_interval: None,
                    seed,
                    start_block: 1000,
                });
            let _ = devnet
                .serve(listener, async move {
                    let _ = stop.await;
                })
                .await;
        });
        Self { server }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn rpc(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: devnet\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let response = raw_request(self.server.addr, raw.as_bytes());
        let value = response.json();
        assert!(
            value.get("error").is_none(),
            "devnet {method} failed: {value}"
        );
        value["result"].clone()
    }

    pub fn transfer(&self, from: &str, to: &str, amount: &str, memo: &str) -> String {
        let result = self.rpc(
            "devnet.transfer",
            json!({"from": from, "to": to, "amount": amount, "memo": memo}),
        );
        result["txid"].as_str().unwrap_or_default().to_string()
    }

    /// Produces a block (optionally with a `YYYY-MM-DDTHH:MM:SS` timestamp).
    pub fn produce_block(&self, timestamp: Option<&str>) -> u64 {
        let params = match timestamp {
            Some(ts) => json!({"timestamp": ts}),
            None => json!({}),
        };
        self.rpc("devnet.produce_block", params)["block_num"]
            .as_u64()
            .expect("block_num")
    }

    /// The transfer operations in `block` (to check that nothing was paid).
    pub fn transfers_in(&self, block: u64) -> Vec<Value> {
        let ops = self.rpc("condenser_api.get_ops_in_block", json!([block, false]));
        ops.as_array()
            .expect("get_ops_in_block answers a list")
            .iter()
            .filter(|o| o["op"][0] == json!("transfer"))
            .cloned()
            .collect()
    }
}

/// Whether an HTTP server answers a GET of `path` on `addr` within a second.
fn answers_http(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 8];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}

/// The real binary, killed on drop.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config_path: PathBuf,
    /// The public listener speaks TLS (`tls:` in the config).
    tls: bool,
    child: Option<Child>,
}

impl GatewayProcess {
    /// Starts `steemgate run` with `config` (YAML) and waits for both listeners.
    ///
    /// The ports come from [`free_addr`], which closes its probe socket: in
    /// the moment before the gateway binds, another test may take the same
    /// port. When the gateway exits saying the address is in use, it is
    /// started again on fresh ports (the config's addresses rewritten, and
    /// `addr` / `admin` updated: use them, not the ones passed in). Any other
    /// early exit fails with the gateway's log.
    pub fn start(config: &str, dir: &std::path::Path, addr: SocketAddr, admin: SocketAddr) -> Self {
        let (mut config, mut addr, mut admin) = (config.to_string(), addr, admin);
        for attempt in 1..=3 {
            let mut gateway = Self::spawn(&config, dir, addr, admin);
            match gateway.wait_listening() {
                Ok(()) => return gateway,
                Err(log) if log.contains("in use") && attempt < 3 => {
                    gateway.stop();
                    let (new_addr, new_admin) = (free_addr(), free_addr());
                    // Quoted, as the test configs write them, so that no
                    // longer port sharing the digits is touched.
                    config = config
                        .replace(&format!("\"{addr}\""), &format!("\"{new_addr}\""))
                        .replace(&format!("\"{admin}\""), &format!("\"{new_admin}\""));
                    (addr, admin) = (new_addr, new_admin);
                }
                Err(log) => panic!("gateway on {addr} did not start:\n{log}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn spawn(config: &str, dir: &std::path::Path, addr: SocketAddr, admin: SocketAddr) -> Self {
        let config_path = dir.join(format!("steemgate-{}.yaml", addr.port()));
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join(format!("gateway-{}.log", addr.port()))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_steemgate"))
            .args(["run", "--config"])
            .arg(&config_path)
            .env("STEEMGATE_LOG", "info,steemgate=debug")
            .env_remove("STEEMGATE_SECRET")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start steemgate");
        Self {
            addr,
            admin,
            config_path,
            tls: config.lines().any(|line| line.starts_with("tls:")),
            child: Some(child),
        }
    }

    /// Waits (bounded) until both listeners accept; on an early exit or a
    /// timeout, the reason and the gateway's log.
    fn wait_listening(&mut self) -> Result<(), String> {
        let mut exited = None;
        let mut port_taken = false;
        let listening = wait_until(Duration::from_secs(30), || {
            // pingora retries a taken port for 30 s; no need to wait for that.
            if self.log().contains(" is in use") {
                port_taken = true;
                return true;
            }
            if let Some(status) = super::child_exited(&mut self.child) {
                exited = Some(status);
                return true;
            }
            // An HTTP answer, not just an accepted connection: a socket
            // someone else holds on the port accepts too. A TLS listener
            // cannot answer plain HTTP; there the admin answer and the
            // log's "in use" line stand in.
            let public = if self.tls {
                TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
            } else {
                answers_http(self.addr, "/.steemgate/harness-probe")
            };
            public && answers_http(self.admin, "/health")
        });
        if port_taken {
            return Err(format!("a port is in use:\n{}", self.log()));
        }
        match (exited, listening) {
            (None, true) => Ok(()),
            (Some(status), _) => Err(format!("exited ({status}):\n{}", self.log())),
            (None, false) => Err(format!(
                "{} or {} not listening after 30 s:\n{}",
                self.addr,
                self.admin,
                self.log()
            )),
        }
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The gateway's log so far (stderr).
    pub fn log(&self) -> String {
        let dir = self.config_path.parent().expect("config dir");
        std::fs::read_to_string(dir.join(format!("gateway-{}.log", self.addr.port())))
            .unwrap_or_default()
    }

    pub fn stop(&mut self) {
        super::stop_child(&mut self.child);
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Gateway config for tests: routes to `upstream`, devnet at `devnet_url`.
pub fn test_config(
    addr: SocketAddr,
    admin: SocketAddr,
    devnet_url: &str,
    upstream: SocketAddr,
    store_dir: &std::path::Path,
) -> String {
    test_config_with_store(
        addr,
        admin,
        devnet_url,
        upstream,
        &format!("file:{}", store_dir.display()),
        "",
    )
}

/// [`test_config`] with any `store:` value (e.g. a `redis://` URL) and extra
/// `session:` lines (each indented by two spaces, e.g. `"  cache_ttl: 60s\n"`).
pub fn test_config_with_store(
    addr: SocketAddr,
    admin: SocketAddr,
    devnet_url: &str,
    upstream: SocketAddr,
    store: &str,
    session_extra: &str,
) -> String {
    format!(
        r#"listen: "{addr}"
admin_listen: "{admin}"
threads: 2
chain:
  name: steem
  nodes: ["{devnet_url}"]
  account: {GATE}
  devnet: true
  request_timeout: 2s
session:
  secret: "{SECRET}"
  challenge_ttl: 15m
{session_extra}store: "{store}"
limits: {{new_sessions_per_minute: 0, status_per_minute: 0}}
routes:
  - {{host: "127.0.0.1", path: /, upstream: "http://{upstream}", auth: required}}
  - {{path: /public, upstream: "http://{upstream}", auth: public}}
  - {{path: /maybe, upstream: "http://{upstream}", auth: optional}}
  - {{path: /admin, upstream: "http://{upstream}", auth: required, allow: [alice]}}
  - {{path: /hello, upstream: "builtin:hello", auth: required}}
"#
    )
}

/// The value of an unlabelled metric from `/metrics` on `admin`, if present.
pub fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let response = get(admin, "/metrics", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    response.body.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.trim().parse().ok())?
    })
}

/// The last block the follower of the gateway with admin listener `admin`
/// has processed (`chain_head_block - chain_blocks_behind` on `/metrics`).
pub fn processed_block(admin: SocketAddr) -> Option<u64> {
    let head = metric(admin, "steemgate_chain_head_block")?;
    let behind = metric(admin, "steemgate_chain_blocks_behind")?;
    (head >= 1.0 && behind >= 0.0).then_some((head - behind) as u64)
}

/// Waits (bounded, 20 s) until the follower has processed `block`: after
/// that, a transfer in `block` has had every chance to log someone in, so
/// a negative check ("still not logged in") means something.
pub fn wait_processed(admin: SocketAddr, block: u64) {
    let reached = wait_until(Duration::from_secs(20), || {
        processed_block(admin).is_some_and(|done| done >= block)
    });
    assert!(
        reached,
        "the follower never processed block {block} (at {:?})",
        processed_block(admin)
    );
}

/// Starts a pending session on the gateway at `addr`: (cookie `name=value`, memo).
pub fn start_login_at(addr: SocketAddr) -> (String, String) {
    let response = get(addr, "/.steemgate/status", &["Accept: application/json"]);
    assert_eq!(response.status, 200, "{}", response.body);
    let cookie = response
        .session_cookie()
        .expect("status sets a session cookie");
    let memo = response.json()["memo"].as_str().expect("memo").to_string();
    (cookie, memo)
}

/// Long-polls status on `addr` until `account` is logged in, for at most
/// `rounds` polls of up to 2 s each.
pub fn wait_logged_in_at(addr: SocketAddr, cookie: &str, account: &str, rounds: usize) {
    let header = format!("Cookie: {cookie}");
    for _ in 0..rounds {
        let status = get(
            addr,
            "/.steemgate/status?wait=2",
            &["Accept: application/json", &header],
        )
        .json();
        if status["authenticated"] == json!(true) {
            assert_eq!(status["account"], json!(account));
            return;
        }
    }
    panic!("session never logged in as {account} on {addr}");
}

/// Everything a gateway test needs, torn down on drop (gateway first).
pub struct Stack {
    pub gateway: GatewayProcess,
    pub devnet: TestDevnet,
    pub upstream: Background,
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub fn start() -> Self {
        Self::start_with(|config| config)
    }

    /// Starts with the test config passed through `edit` first.
    pub fn start_with(edit: impl FnOnce(String) -> String) -> Self {
        Self::start_at(free_addr(), edit)
    }

    /// [`Stack::start_with`] with the public listener on `addr` (chosen
    /// beforehand, e.g. to tell an upstream where the gateway is).
    pub fn start_at(addr: SocketAddr, edit: impl FnOnce(String) -> String) -> Self {
        Self::start_on(TestDevnet::start(), addr, edit)
    }

    /// [`Stack::start_with`] on a devnet seeded with the demo accounts.
    pub fn start_seeded_with(edit: impl FnOnce(String) -> String) -> Self {
        Self::start_on(TestDevnet::start_seeded(), free_addr(), edit)
    }

    /// [`Stack::start_seeded_with`] with the public listener on `addr`.
    pub fn start_on_seeded_at(addr: SocketAddr, edit: impl FnOnce(String) -> String) -> Self {
        Self::start_on(TestDevnet::start_seeded(), addr, edit)
    }

    fn start_on(devnet: TestDevnet, addr: SocketAddr, edit: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        devnet.produce_block(None);
        let upstream = echo_upstream();
        let admin = free_addr();
        let config = edit(test_config(
            addr,
            admin,
            &devnet.url(),
            upstream.addr,
            &dir.path().join("store"),
        ));
        let gateway = GatewayProcess::start(&config, dir.path(), addr, admin);
        let stack = Self {
            gateway,
            devnet,
            upstream,
            dir,
        };
        stack.wait_ready();
        stack
    }

    /// Waits until /ready says the follower has seen the chain.
    pub fn wait_ready(&self) {
        let admin = self.gateway.admin;
        assert!(
            super::wait_until(Duration::from_secs(20), || get(admin, "/ready", &[]).status
                == 200),
            "gateway never became ready"
        );
    }

    pub fn addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// Starts a pending session: (cookie `name=value`, memo).
    pub fn start_login(&self) -> (String, String) {
        let response = get(
            self.addr(),
            "/.steemgate/status",
            &["Accept: application/json"],
        );
        assert_eq!(response.status, 200, "{}", response.body);
        let cookie = response
            .session_cookie()
            .expect("status sets a session cookie");
        let memo = response.json()["memo"].as_str().expect("memo").to_string();
        (cookie, memo)
    }

    /// Logs `account` in: returns the session cookie.
    pub fn login_as(&self, account: &str) -> String {
        let (cookie, memo) = self.start_login();
        self.devnet.transfer(account, GATE, "0.001 STEEM", &memo);
        self.devnet.produce_block(None);
        self.wait_logged_in(&cookie, account);
        cookie
    }

    /// Long-polls status until `account` is logged in (bounded).
    pub fn wait_logged_in(&self, cookie: &str, account: &str) {
        let header = format!("Cookie: {cookie}");
        for _ in 0..10 {
            let status = get(
                self.addr(),
                "/.steemgate/status?wait=2",
                &["Accept: application/json", &header],
            )
            .json();
            if status["authenticated"] == json!(true) {
                assert_eq!(status["account"], json!(account));
                return;
            }
        }
        panic!("session never logged in as {account}");
    }

    /// Sends SIGHUP and waits (10 s at most) until the gateway's log has
    /// one more line containing `marker` (e.g. "config reloaded").
    pub fn reload_and_wait_for(&self, marker: &str) {
        let before = self.gateway.log().matches(marker).count();
        let pid = self.gateway.pid().expect("gateway running");
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        assert!(
            super::wait_until(Duration::from_secs(10), || self
                .gateway
                .log()
                .matches(marker)
                .count()
                > before),
            "no {marker:?} in the log after SIGHUP:\n{}",
            self.gateway.log()
        );
    }

    /// Status document for a cookie.
    pub fn status(&self, cookie: &str) -> Value {
        get(
            self.addr(),
            "/.steemgate/status",
            &["Accept: application/json", &format!("Cookie: {cookie}")],
        )
        .json()
    }
}

/// The values of `name` (any spelling) that the echo upstream received.
pub fn upstream_saw(echo: &Value, name: &str) -> Vec<String> {
    let normal = |s: &str| s.to_ascii_lowercase().replace(['_', '.'], "-");
    echo["headers"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter(|h| normal(h[0].as_str().unwrap_or("")) == normal(name))
                .map(|h| h[1].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
