//! Fail closed everywhere: a store damaged while the gateway was down stops
//! the binary with a clear error; a store that breaks while it runs, chain
//! nodes that are unreachable and templates that break at render time never
//! let a request through to a `required` route, never crash the gateway, and
//! show in `/ready`.
//!
//! Why a suite of its own: "any doubt fails closed" is the gateway's central
//! promise (Authelia CVE-2021-32637 was a fail-open on an error path). Each
//! test starts the real binary, breaks one dependency, and checks what a
//! visitor and an operator see, then (where the fault can clear) that the
//! gateway recovers by itself.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::gateway::{
    GATE, GatewayProcess, Stack, TestDevnet, echo_upstream, get, start_login_at, test_config,
    test_config_with_store, upstream_saw, wait_logged_in_at, wait_processed,
};
use support::redis_server::RedisServer;
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

/// Runs `steemgate run` on `config_path` and expects it to refuse to start:
/// its exit status and what it wrote to stderr. Fails the test if it is
/// still running after 20 s (a gateway up on a damaged store).
fn run_expecting_exit(config_path: &std::path::Path) -> (std::process::ExitStatus, String) {
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
            return (status, std::fs::read_to_string(&stderr_path).unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the gateway still ran 20 s after starting on a damaged store:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
}

/// A store damaged while the gateway was down: the binary refuses to start,
/// exit status 1, and says which store file it could not open and why
/// (never a gateway that runs and treats visitors as "not logged in").
fn corrupt_store_case(damage: impl Fn(&std::path::Path)) {
    let (stack, _cookie) = stack_with_session("alice");
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
    let (status, stderr) = run_expecting_exit(&config_path);
    assert_eq!(status.code(), Some(1), "exit status; stderr: {stderr}");
    let database = store_dir.join("steemgate.redb");
    let expected = format!(
        "error: opening the store: store error: cannot open store database {} (corrupt or not a steemgate store?): ",
        database.display()
    );
    assert!(
        stderr.contains(&expected),
        "stderr names the store file and the cause; expected {expected:?} in:\n{stderr}"
    );
    // The cause follows: redb's own words, never empty.
    let line = stderr.lines().find(|l| l.contains(&expected)).unwrap();
    assert!(
        line.len() > line.find(&expected).unwrap() + expected.len(),
        "{line}"
    );
}

#[test]
fn a_store_file_overwritten_with_garbage_refuses_to_start_naming_the_store() {
    corrupt_store_case(|file| {
        let len = std::fs::metadata(file).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
        std::fs::write(file, garbage).unwrap();
    });
}

#[test]
fn a_truncated_store_file_refuses_to_start_naming_the_store() {
    corrupt_store_case(|file| {
        let len = std::fs::metadata(file).unwrap().len();
        let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
        handle.set_len(len / 3).unwrap();
    });
}

#[test]
fn a_store_file_damaged_past_its_header_refuses_to_start_naming_the_store() {
    // The header stays valid, the pages after it are garbage: redb's
    // open-time check still refuses it (if it ever opened such a file and
    // failed on reads instead, this test says so).
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
/// then the address is held but refuses connections (a node that is down).
struct SwitchableNode {
    addr: SocketAddr,
    closed: Option<support::ClosedPort>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SwitchableNode {
    fn down() -> Self {
        let closed = support::ClosedPort::new();
        Self {
            addr: closed.addr(),
            closed: Some(closed),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// Starts forwarding connections to `target`.
    fn bring_up(&mut self, target: SocketAddr) {
        let listener = self.closed.take().expect("brought up once").listen();
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
    // A required route without a session: not proxied; the redirect needs
    // no template, and the login page it leads to is the 503 above.
    let anonymous = get(addr, "/", &["Accept: text/html"]);
    assert!(!proxied(&anonymous), "{anonymous:?}");
    assert_eq!(anonymous.status, 302, "{anonymous:?}");
    assert_eq!(
        anonymous.header("location"),
        Some("/.steemgate/login?rd=%2F")
    );
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

/// steemgate has no panic-recovery path of its own to test (no
/// `catch_unwind` around request handling; a panic would be pingora's to
/// contain). What matters to a visitor is the property behind it: a
/// dependency failing in the middle of serving never lets a request through
/// to a `required` route, never looks like "not logged in", and the gateway
/// keeps serving and recovers by itself. Here the store (Redis) is killed
/// while the gateway runs.
#[test]
fn a_store_that_breaks_while_running_answers_503_on_required_routes_then_recovers() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let devnet = TestDevnet::start();
    devnet.produce_block(None);
    let upstream = echo_upstream();
    let (addr, admin) = (free_addr(), free_addr());
    // No session cache: every request asks the store.
    let config = test_config_with_store(
        addr,
        admin,
        &devnet.url(),
        upstream.addr,
        &redis.url(),
        "  cache_ttl: 0s\n",
    );
    let gateway = GatewayProcess::start(&config, dir.path(), addr, admin);
    let (addr, admin) = (gateway.addr, gateway.admin);
    assert!(wait_until(Duration::from_secs(20), || get(
        admin,
        "/ready",
        &[]
    )
    .status
        == 200));
    let (cookie, memo) = start_login_at(addr);
    devnet.transfer("alice", GATE, "0.001 STEEM", &memo);
    devnet.produce_block(None);
    wait_logged_in_at(addr, &cookie, "alice", 10);
    let ok = get(addr, "/", &[&format!("Cookie: {cookie}")]);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(upstream_saw(&ok.json(), "x-steem-account"), vec!["alice"]);

    redis.stop();
    assert!(
        wait_until(Duration::from_secs(10), || get(admin, "/ready", &[]).status
            == 503),
        "/ready never reported the store outage"
    );
    for accept in ["text/html", "application/json"] {
        // The logged-in visitor: 503, not a login redirect or a 401 (that
        // would say "not logged in").
        let response = get(
            addr,
            "/",
            &[&format!("Cookie: {cookie}"), &format!("Accept: {accept}")],
        );
        assert_eq!(response.status, 503, "{accept}: {response:?}");
        assert!(!proxied(&response), "{response:?}");
        assert!(response.header("location").is_none(), "{response:?}");
        // A visitor without a cookie is not logged in whatever the store
        // says, and is not proxied: a browser is sent to the login page
        // (a 503, below); a script's 401 would carry a fresh login, which
        // needs the store, so it gets the 503 itself.
        let anonymous = get(addr, "/", &[&format!("Accept: {accept}")]);
        assert!(!proxied(&anonymous), "{anonymous:?}");
        let expected = if accept == "text/html" { 302 } else { 503 };
        assert_eq!(anonymous.status, expected, "{accept}: {anonymous:?}");
    }
    let login = get(addr, "/.steemgate/login?rd=%2F", &["Accept: text/html"]);
    assert_eq!(login.status, 503, "{login:?}");
    assert!(login.session_cookie().is_none(), "no fresh session minted");
    let status = get(addr, "/.steemgate/status", &["Accept: application/json"]);
    assert_eq!(status.status, 503, "{status:?}");
    assert!(status.session_cookie().is_none(), "no fresh session minted");

    // Redis comes back empty (no persistence): the gateway recovers without
    // a restart; the old session is gone (not logged in), never another
    // account, and a new login works.
    redis.restart();
    assert!(
        wait_until(Duration::from_secs(20), || get(admin, "/ready", &[]).status
            == 200),
        "/ready never recovered"
    );
    let after = get(
        addr,
        "/",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
    );
    assert_eq!(after.status, 401, "{after:?}");
    assert!(!proxied(&after));
    // The emptied store is a fresh store to the follower: it starts at the
    // head it sees then. Let it get past one block before paying.
    let empty = devnet.produce_block(None);
    wait_processed(admin, empty);
    let (cookie, memo) = start_login_at(addr);
    devnet.transfer("bob", GATE, "0.001 STEEM", &memo);
    devnet.produce_block(None);
    wait_logged_in_at(addr, &cookie, "bob", 10);
    let ok = get(addr, "/", &[&format!("Cookie: {cookie}")]);
    assert_eq!(upstream_saw(&ok.json(), "x-steem-account"), vec!["bob"]);
    drop(gateway);
}
