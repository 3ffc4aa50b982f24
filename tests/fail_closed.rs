//! Fail closed everywhere: a corrupt store, unreachable chain nodes and
//! templates that break at render time never let a request through to a
//! `required` route, never crash the gateway, and show in `/ready`.
//!
//! Why a suite of its own: "any doubt fails closed" is the gateway's central
//! promise (Authelia CVE-2021-32637 was a fail-open on an error path). Each
//! test starts the real binary, breaks one dependency, and checks what a
//! visitor and an operator see, then (where the fault can clear) that the
//! gateway recovers by itself.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::gateway::{GATE, GatewayProcess, Stack, get, test_config};
use support::{free_addr, wait_until};

/// Whether a response came from the echo upstream (it answers JSON naming
/// the request's headers).
fn proxied(response: &support::gateway::Response) -> bool {
    response.body.contains("\"headers\"") && response.body.contains("\"target\"")
}

/// Logs `account` in on `stack`, then stops the gateway (store kept).
fn stack_with_session(account: &str) -> (Stack, String) {
    let mut stack = Stack::start();
    let cookie = stack.login_as(account);
    let response = get(stack.addr(), "/", &[&format!("Cookie: {cookie}")]);
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(proxied(&response));
    stack.gateway.stop();
    (stack, cookie)
}

/// How a gateway started on a damaged store behaved.
enum Start {
    /// It exited: its status and what it wrote to stderr.
    Refused(std::process::ExitStatus, String),
    /// It listens: the running process.
    Running(GatewayProcess),
}

/// Starts the binary on `config` and waits for it to either exit or listen.
fn start_or_exit(config_path: &std::path::Path, addr: SocketAddr, admin: SocketAddr) -> Start {
    let stderr_path = config_path.with_extension("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_steemgate"))
        .args(["run", "--config"])
        .arg(config_path)
        .env_remove("STEEMGATE_SECRET")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Start::Refused(status, std::fs::read_to_string(&stderr_path).unwrap());
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
            && TcpStream::connect_timeout(&admin, Duration::from_millis(100)).is_ok()
        {
            let _ = child.kill();
            let _ = child.wait();
            // Start it again under the harness, which kills it on drop.
            let config = std::fs::read_to_string(config_path).unwrap();
            let dir = config_path.parent().unwrap();
            return Start::Running(GatewayProcess::start(&config, dir, addr, admin));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the gateway neither exited nor listened within 20 s");
}

fn corrupt_store_case(damage: impl Fn(&std::path::Path)) {
    let (stack, cookie) = stack_with_session("alice");
    let store_dir = stack.dir.path().join("store");
    let files: Vec<_> = std::fs::read_dir(&store_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty(), "the store wrote a file");
    for file in &files {
        damage(file);
    }
    let (addr, admin) = (free_addr(), free_addr());
    let config = test_config(
        addr,
        admin,
        &stack.devnet.url(),
        stack.upstream.addr,
        &store_dir,
    );
    let config_path = stack.dir.path().join("damaged.yaml");
    std::fs::write(&config_path, config).unwrap();
    match start_or_exit(&config_path, addr, admin) {
        Start::Refused(status, stderr) => {
            eprintln!("refused to start on the damaged store: {}", stderr.trim());
            assert!(!status.success());
            assert!(
                stderr.to_lowercase().contains("store"),
                "the error names the store: {stderr}"
            );
        }
        Start::Running(_gateway) => {
            eprintln!("started on the damaged store");
            // Running on a damaged store: a required route is never proxied.
            for _ in 0..3 {
                let response = get(addr, "/", &[&format!("Cookie: {cookie}")]);
                assert!(
                    !proxied(&response),
                    "proxied on a corrupt store: {response:?}"
                );
                assert!(
                    matches!(response.status, 503 | 302 | 303 | 401),
                    "{response:?}"
                );
            }
            let ready = get(admin, "/ready", &[]);
            if ready.status == 200 {
                // The store opened (redb repaired it): then the session
                // must either be intact or gone, never another account.
                let response = get(addr, "/", &[&format!("Cookie: {cookie}")]);
                assert!(!proxied(&response) || response.body.contains("alice"));
            }
        }
    }
}

#[test]
fn a_store_file_overwritten_with_garbage_is_never_proxied_through() {
    corrupt_store_case(|file| {
        let len = std::fs::metadata(file).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(file, garbage).unwrap();
    });
}

#[test]
fn a_truncated_store_file_is_never_proxied_through() {
    corrupt_store_case(|file| {
        let len = std::fs::metadata(file).unwrap().len();
        let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        handle.set_len(len / 3).unwrap();
    });
}

#[test]
fn a_store_file_damaged_past_its_header_is_never_proxied_through() {
    // The header stays valid, the pages after it are garbage: the store may
    // open and fail on reads instead.
    corrupt_store_case(|file| {
        let mut bytes = std::fs::read(file).unwrap();
        let start = 4096.min(bytes.len());
        for (i, byte) in bytes[start..].iter_mut().enumerate() {
            *byte ^= (i * 151 % 255) as u8 | 1;
        }
        std::fs::write(file, bytes).unwrap();
    });
}

/// A TCP forwarder on a fixed address that can be switched on later: until
/// then nothing listens there (a node that is down).
struct SwitchableNode {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SwitchableNode {
    fn down() -> Self {
        Self {
            addr: free_addr(),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// Starts forwarding connections to `target`.
    fn bring_up(&mut self, target: SocketAddr) {
        let listener = TcpListener::bind(self.addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = self.stop.clone();
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        std::thread::spawn(move || forward(client, target));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }));
    }
}

fn forward(client: TcpStream, target: SocketAddr) {
    let Ok(upstream) = TcpStream::connect(target) else {
        return;
    };
    let (mut client_read, mut upstream_write) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let (mut upstream_read, mut client_write) = (upstream, client);
    let one_way = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut upstream_write);
        let _ = upstream_write.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = [0u8; 8192];
    loop {
        match upstream_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_write.shutdown(std::net::Shutdown::Both);
    let _ = one_way.join();
}

impl Drop for SwitchableNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn with_every_chain_node_down_sessions_still_work_and_ready_says_no() {
    let (stack, cookie) = stack_with_session("alice");
    let mut node = SwitchableNode::down();
    let (addr, admin) = (free_addr(), free_addr());
    let config = test_config(
        addr,
        admin,
        &format!("http://{}", node.addr),
        stack.upstream.addr,
        &stack.dir.path().join("store"),
    );
    let gateway = GatewayProcess::start(&config, stack.dir.path(), addr, admin);
    // The harness may have moved to fresh ports if these were taken.
    let (addr, admin) = (gateway.addr, gateway.admin);

    // The existing session keeps working; the identity is the session's.
    let response = get(addr, "/", &[&format!("Cookie: {cookie}")]);
    assert_eq!(response.status, 200, "{}", response.body);
    let echo = response.json();
    assert_eq!(
        support::gateway::upstream_saw(&echo, "x-steem-account"),
        vec!["alice".to_string()]
    );
    // The operator sees it; a new visitor is told.
    let ready = get(admin, "/ready", &[]);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["chain"], serde_json::json!(false));
    let page = get(addr, "/.steemgate/login", &["Accept: text/html"]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("cannot reach"), "{}", page.body);
    let status = get(addr, "/.steemgate/status", &["Accept: application/json"]);
    assert_eq!(
        status.json()["chain"]["reachable"],
        serde_json::json!(false)
    );
    // No one is let in without a session.
    let anonymous = get(addr, "/", &[]);
    assert!(!proxied(&anonymous));

    // The node comes back: readiness and the page recover by themselves.
    node.bring_up(stack.devnet.server.addr);
    assert!(
        wait_until(Duration::from_secs(20), || get(admin, "/ready", &[]).status
            == 200),
        "ready never recovered"
    );
    let page = get(addr, "/.steemgate/login", &["Accept: text/html"]);
    assert!(!page.body.contains("cannot reach"));
    // And logins work again through the recovered node.
    let (new_cookie, memo) = support::gateway::start_login_at(addr);
    stack.devnet.transfer("bob", GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    support::gateway::wait_logged_in_at(addr, &new_cookie, "bob", 10);
    drop(gateway);
}

#[test]
fn templates_that_fail_at_render_time_answer_errors_never_the_upstream() {
    let templates = tempfile::tempdir().unwrap();
    // Both compile; both fail only when rendered (no such function).
    for name in ["login.html", "message.html"] {
        std::fs::write(
            templates.path().join(name),
            "<p>{{ no_such_macro(status) }}</p>",
        )
        .unwrap();
    }
    let dir = templates.path().display().to_string();
    let stack = Stack::start_with(|config| format!("templates_dir: \"{dir}\"\n{config}"));
    let addr = stack.addr();

    let login = get(addr, "/.steemgate/login", &["Accept: text/html"]);
    assert_eq!(login.status, 503, "{}", login.body);
    assert!(!proxied(&login));
    // A required route without a session: not proxied, whatever page shows.
    let anonymous = get(addr, "/", &["Accept: text/html"]);
    assert!(!proxied(&anonymous), "{anonymous:?}");
    assert_ne!(anonymous.status, 200);
    let missing = get(addr, "/.steemgate/nothing-here", &["Accept: text/html"]);
    assert_eq!(missing.status, 404);
    assert!(!proxied(&missing));

    // A logged-in visitor refused by an allow list gets the 403 fallback.
    let cookie = stack.login_as("bob");
    let forbidden = get(
        addr,
        "/admin",
        &["Accept: text/html", &format!("Cookie: {cookie}")],
    );
    assert_eq!(forbidden.status, 403);
    assert!(!proxied(&forbidden));
    // The gateway is still up and proxies what it should.
    let ok = get(addr, "/", &[&format!("Cookie: {cookie}")]);
    assert_eq!(ok.status, 200);
    assert!(proxied(&ok));
    assert_eq!(get(stack.gateway.admin, "/ready", &[]).status, 200);
}

/// A proxy whose request filter panics on `/panic`: what pingora does with
/// a panicking filter (the gateway's filters run the same way).
struct PanickyProxy {
    upstream: SocketAddr,
}

#[async_trait::async_trait]
impl pingora::proxy::ProxyHttp for PanickyProxy {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn request_filter(
        &self,
        session: &mut pingora::proxy::Session,
        _ctx: &mut (),
    ) -> pingora::Result<bool> {
        if session.req_header().uri.path() == "/panic" {
            panic!("a bug in a request filter");
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut pingora::proxy::Session,
        _ctx: &mut (),
    ) -> pingora::Result<Box<pingora::upstreams::peer::HttpPeer>> {
        Ok(Box::new(pingora::upstreams::peer::HttpPeer::new(
            self.upstream,
            false,
            String::new(),
        )))
    }
}

struct StopWhen(tokio::sync::Mutex<tokio::sync::oneshot::Receiver<()>>);

#[async_trait::async_trait]
impl pingora::server::ShutdownSignalWatch for StopWhen {
    async fn recv(&self) -> pingora::server::ShutdownSignal {
        let _ = (&mut *self.0.lock().await).await;
        pingora::server::ShutdownSignal::FastShutdown
    }
}

#[test]
fn a_panic_in_a_request_filter_drops_the_connection_and_proxies_nothing() {
    // An upstream that counts the requests it gets.
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut buf = [0u8; 4096];
            if matches!(stream.read(&mut buf), Ok(n) if n > 0) {
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });

    let addr = free_addr();
    let mut server = pingora::server::Server::new(None).unwrap();
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(
        &server.configuration,
        PanickyProxy {
            upstream: upstream_addr,
        },
    );
    service.add_tcp(&addr.to_string());
    server.add_service(service);
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        server.run(pingora::server::RunArgs {
            shutdown_signal: Box::new(StopWhen(tokio::sync::Mutex::new(stopped))),
        })
    });
    assert!(support::wait_for_port(addr, Duration::from_secs(20)));

    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty(), "no response after a panic: {answer:?}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );

    // The server survives and serves the next connection.
    let response = get(addr, "/fine", &[]);
    assert_eq!((response.status, response.body.as_str()), (200, "ok"));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // Stop the server; not joined, so a slow runtime shutdown cannot hang
    // the test.
    let _ = stop.send(());
    drop(thread);
}
