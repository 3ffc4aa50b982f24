//! A private `redis-server` for one test: random loopback port, scratch
//! directory, no persistence, killed on drop. Tests that need Redis call
//! [`RedisServer::start`] and return early on `None` (binary missing: the
//! skip notice, or a panic under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`, comes
//! from `system_binary`).
//!
//! redis-server cannot take a listening socket from us, so its port comes
//! from a probe socket that is closed first: another test may take the port
//! meanwhile. "Ready" therefore means that the server on the port answers
//! `INFO server` with *our* child's process id (not merely that something
//! accepts TCP), and a server that exits because the port is taken is
//! started again on a fresh port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_addr, system_binary, wait_until};

/// Attempts on fresh ports before giving up.
const ATTEMPTS: usize = 5;

pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    extra_args: Vec<String>,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Runs as a sentinel with this configuration file (written before the
    /// first start; the sentinel rewrites it).
    sentinel_config: Option<PathBuf>,
    /// A Cluster node: its bus port, picked afresh on every spawn.
    cluster_bus_port: Option<u16>,
}

/// Why a spawned server is not serving.
enum NotReady {
    /// It exited because the port was taken.
    PortTaken,
    /// Anything else: the reason and the server's log.
    Failed(String),
}

impl RedisServer {
    /// A running server, or `None` when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        Self::start_with_args(&[])
    }

    /// Like [`RedisServer::start`] with extra `redis-server` arguments
    /// (e.g. `["--requirepass", "secret"]`).
    pub fn start_with_args(extra_args: &[&str]) -> Option<Self> {
        Self::start_kind(extra_args, None, false)
    }

    /// A sentinel (`redis-server CONFIG --sentinel`) whose configuration
    /// file holds `config` (e.g. `sentinel monitor …` lines).
    pub fn start_sentinel(config: &str) -> Option<Self> {
        Self::start_kind(&[], Some(config), false)
    }

    /// A Cluster-enabled node (not yet part of a cluster), with
    /// `extra_args`.
    pub fn start_cluster_node(extra_args: &[&str]) -> Option<Self> {
        Self::start_kind(extra_args, None, true)
    }

    fn start_kind(extra_args: &[&str], sentinel: Option<&str>, cluster: bool) -> Option<Self> {
        let binary = system_binary("redis-server")?;
        let dir = tempfile::tempdir().expect("redis scratch dir");
        let sentinel_config = sentinel.map(|config| {
            let path = dir.path().join("sentinel.conf");
            std::fs::write(&path, config).expect("write sentinel.conf");
            path
        });
        let mut server = Self {
            binary,
            port: 0,
            extra_args: extra_args.iter().map(|a| a.to_string()).collect(),
            dir,
            child: None,
            sentinel_config,
            cluster_bus_port: cluster.then_some(0),
        };
        for attempt in 1..=ATTEMPTS {
            server.port = free_addr().port();
            match server.spawn() {
                Ok(()) => return Some(server),
                Err(NotReady::PortTaken) if attempt < ATTEMPTS => server.stop(),
                Err(NotReady::PortTaken) => {
                    panic!("redis-server found its port taken {ATTEMPTS} times")
                }
                Err(NotReady::Failed(why)) => panic!("redis-server did not start: {why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>` (add `/db` or credentials as needed).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its data is gone unless persistence was asked for).
    pub fn stop(&mut self) {
        super::stop_child(&mut self.child);
    }

    /// Starts the server again on the same port (clients were told that
    /// port). If someone took it meanwhile, the test fails saying so.
    pub fn restart(&mut self) {
        self.stop();
        // The port was ours a moment ago; a taker is rare, so retry briefly
        // in case the old socket lingers, then give up loudly.
        for _ in 0..3 {
            match self.spawn() {
                Ok(()) => return,
                Err(NotReady::PortTaken) => {
                    self.stop();
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(NotReady::Failed(why)) => panic!("redis-server did not restart: {why}"),
            }
        }
        panic!("redis-server could not get its port {} back", self.port);
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("redis-{}.log", self.port))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn password(&self) -> Option<&str> {
        self.extra_args
            .iter()
            .position(|a| a == "--requirepass")
            .and_then(|i| self.extra_args.get(i + 1))
            .map(String::as_str)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process: a frozen node
    /// keeps its connections but answers nothing.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The scratch directory (configuration, log, data).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Whether the process is running (not killed, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && super::child_exited(&mut self.child).is_none()
    }

    fn spawn(&mut self) -> Result<(), NotReady> {
        let mut command = Command::new(&self.binary);
        if let Some(config) = &self.sentinel_config {
            command.arg(config).arg("--sentinel");
        }
        if let Some(bus) = self.cluster_bus_port.as_mut() {
            *bus = free_addr().port();
            command
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus.to_string()])
                .args(["--cluster-node-timeout", "1000"])
                .arg("--cluster-config-file")
                .arg(self.dir.path().join(format!("nodes-{}.conf", self.port)));
        }
        let child = command
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.log_path())
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let pid = child.id();
        self.child = Some(child);
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let mut exited = None;
        let ready = wait_until(Duration::from_secs(10), || {
            if let Some(status) = super::child_exited(&mut self.child) {
                exited = Some(status);
                return true;
            }
            server_pid(addr, self.password()) == Some(pid)
        });
        match (exited, ready) {
            (None, true) => Ok(()),
            (Some(_), _) if self.log().contains("in use") => Err(NotReady::PortTaken),
            (Some(status), _) => Err(NotReady::Failed(format!(
                "exited ({status}):\n{}",
                self.log()
            ))),
            (None, false) => {
                self.stop();
                Err(NotReady::Failed(format!(
                    "no INFO answer from pid {pid} on {addr} within 10 s:\n{}",
                    self.log()
                )))
            }
        }
    }
}

/// The `process_id` that the Redis server on `addr` reports in `INFO
/// server`, or `None` when nothing there answers like Redis.
fn server_pid(addr: SocketAddr, password: Option<&str>) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    let mut request = String::new();
    if let Some(password) = password {
        request.push_str(&format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n",
            password.len()
        ));
    }
    request.push_str("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer);
        if let Some(rest) = text.split("process_id:").nth(1)
            && let Some((pid, _)) = rest.split_once("\r\n")
        {
            return pid.trim().parse().ok();
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
