//! Shared helpers for integration tests: free ports, system binaries, waiting.
#![allow(dead_code)]

pub mod front_proxy;
pub mod gateway;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Set by `.ci/run`: a test that needs a missing system binary fails instead
/// of skipping.
pub const REQUIRE_ENV: &str = "STEEMGATE_REQUIRE_SYSTEM_DEPS";

/// The path of a system binary, or `None` after printing a skip notice.
/// Panics instead when `STEEMGATE_REQUIRE_SYSTEM_DEPS=1` (CI).
pub fn system_binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
            panic!("{name} is required ({REQUIRE_ENV}=1) but was not found on PATH");
        }
        eprintln!("SKIPPED: `{name}` not found on PATH; install it to run this test");
    }
    found
}

/// A loopback port that is ours but refuses connections: a socket bound
/// to it that does not listen (the kernel answers connection attempts with
/// a reset, and nobody else can bind the port while it is held). A "down"
/// node or upstream for as long as the test needs, which can later come up
/// on the same address with [`ClosedPort::listen`].
pub struct ClosedPort {
    socket: socket2::Socket,
    addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )
        .expect("tcp socket");
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any.into()).expect("bind 127.0.0.1:0");
        let addr = socket
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("an inet address");
        Self { socket, addr }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts listening on the same address.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(128).expect("listen");
        self.socket.into()
    }
}

impl Default for ClosedPort {
    fn default() -> Self {
        Self::new()
    }
}

/// A loopback address with a port nobody listens on right now. The probe
/// socket is closed: someone else may take the port before the caller
/// binds it. Prefer binding 127.0.0.1:0 and keeping the listener, or
/// [`ClosedPort`]; for processes that bind themselves, retry on "in use".
pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr")
}

/// The exit status of the test's child process, if it has exited.
pub fn child_exited(child: &mut Option<std::process::Child>) -> Option<std::process::ExitStatus> {
    child.as_mut().and_then(|c| c.try_wait().ok().flatten())
}

/// Kills and reaps the test's child process, if it still runs.
pub fn stop_child(child: &mut Option<std::process::Child>) {
    if let Some(mut running) = child.take() {
        let _ = running.kill();
        let _ = running.wait();
    }
}

/// Polls `check` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A fixture from `tests/fixtures/`.
pub fn fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}
pub mod attack;
pub mod browser;
pub mod oidc;
pub mod redis_ha;
pub mod redis_server;
pub mod tls;
pub mod wallet;
