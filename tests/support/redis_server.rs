//! A private `redis-server` for one test: random loopback port, scratch
//! directory, no persistence, killed on drop. Tests that need Redis call
//! [`RedisServer::start`] and return early on `None` (binary missing: the
//! skip notice, or a panic under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`, comes
//! from `system_binary`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_addr, system_binary, wait_for_port};

pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A running server, or `None` when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with_args(&[])
    }

    /// Like [`RedisServer::start`] with extra `redis-server` arguments
    /// (e.g. `["--requirepass", "secret"]`).
    pub fn start_with_args(extra_args: &[&str]) -> Option<Self> {
        let binary = system_binary("redis-server")?;
        let mut server = Self {
            binary,
            port: free_addr().port(),
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            dir: tempfile::tempdir().expect("redis scratch dir"),
            child: None,
        };
        server.spawn();
        Some(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (add `/db` or credentials as needed).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone: no persistence).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let addr = format!("127.0.0.1:{}", self.port)
            .parse()
            .expect("loopback addr");
        assert!(
            wait_for_port(addr, Duration::from_secs(10)),
            "redis-server did not listen on {addr}"
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
