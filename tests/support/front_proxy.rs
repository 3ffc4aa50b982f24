//! Runs a real front proxy (Debian's nginx or caddy) from one of the
//! configs in `examples/forward-auth/` for one test: the example file is
//! used as written, with only its documented placeholder addresses swapped
//! for test ports and scratch paths added, so a test proves the example.
//! Killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_addr, system_binary, wait_until};

/// A running front proxy listening on `addr`.
pub struct FrontProxy {
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    log_path: PathBuf,
    child: Option<Child>,
}

/// The text of `examples/forward-auth/<name>`.
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/forward-auth")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Replaces `from` with `to`, insisting `from` occurs exactly `count` times,
/// so a test notices when the example drifts from what it substitutes.
pub fn replace_exactly(text: &str, from: &str, to: &str, count: usize) -> String {
    assert_eq!(
        text.matches(from).count(),
        count,
        "expected {count} occurrence(s) of {from:?} in the example"
    );
    text.replace(from, to)
}

/// Which front proxy, for readiness checks and messages.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nginx,
    Caddy,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Nginx => "nginx",
            Kind::Caddy => "caddy",
        }
    }
}

/// Attempts on fresh ports before giving up.
const ATTEMPTS: usize = 5;

impl FrontProxy {
    /// nginx with `examples/forward-auth/nginx.conf`, its steemgate and app
    /// upstreams pointed at `gateway` and `app`. `None` when nginx is missing.
    pub fn nginx(gateway: SocketAddr, app: SocketAddr) -> Option<Self> {
        let binary = system_binary("nginx")?;
        Some(Self::start_retrying(Kind::Nginx, |addr, dir| {
            let scratch = dir.display().to_string();
            let mut conf = example("nginx.conf");
            conf = replace_exactly(&conf, "listen 80;", &format!("listen {addr};"), 1);
            conf = replace_exactly(
                &conf,
                "server 127.0.0.1:8080;",
                &format!("server {gateway};"),
                1,
            );
            conf = replace_exactly(
                &conf,
                "server 127.0.0.1:3000;",
                &format!("server {app};"),
                1,
            );
            let scratch_paths = format!(
                "http {{\n    access_log {scratch}/access.log;\n    client_body_temp_path {scratch}/client_body;\n    proxy_temp_path {scratch}/proxy;\n    fastcgi_temp_path {scratch}/fastcgi;\n    uwsgi_temp_path {scratch}/uwsgi;\n    scgi_temp_path {scratch}/scgi;\n"
            );
            conf = replace_exactly(&conf, "http {\n", &scratch_paths, 1);
            let conf_path = dir.join("nginx.conf");
            std::fs::write(&conf_path, conf).expect("write nginx.conf");
            let mut command = Command::new(&binary);
            command
                .arg("-p")
                .arg(dir)
                .arg("-e")
                .arg("stderr")
                .arg("-c")
                .arg(&conf_path)
                .arg("-g")
                .arg(format!(
                    "daemon off; pid {scratch}/nginx.pid; error_log stderr;"
                ));
            command
        }))
    }

    /// caddy with `examples/forward-auth/Caddyfile`, its site address and
    /// upstreams pointed at test ports, the admin API off. `None` when caddy
    /// is missing.
    pub fn caddy(gateway: SocketAddr, app: SocketAddr) -> Option<Self> {
        let binary = system_binary("caddy")?;
        Some(Self::start_retrying(Kind::Caddy, |addr, dir| {
            let mut conf = example("Caddyfile");
            conf = replace_exactly(
                &conf,
                "http://app.example.com",
                &format!("http://{addr}"),
                1,
            );
            conf = replace_exactly(&conf, "127.0.0.1:8080", &gateway.to_string(), 2);
            conf = replace_exactly(&conf, "127.0.0.1:3000", &app.to_string(), 2);
            conf = format!("{{\n\tadmin off\n}}\n\n{conf}");
            let conf_path = dir.join("Caddyfile");
            std::fs::write(&conf_path, conf).expect("write Caddyfile");
            let mut command = Command::new(&binary);
            command
                .args(["run", "--adapter", "caddyfile", "--config"])
                .arg(&conf_path)
                .env("HOME", dir)
                .env("XDG_DATA_HOME", dir.join("data"))
                .env("XDG_CONFIG_HOME", dir.join("config"));
            command
        }))
    }

    /// The proxy's port comes from a probe socket that is closed first (a
    /// proxy cannot take a listening socket from us), so another test may
    /// take it meanwhile: a proxy that cannot bind is started again on a
    /// fresh port. `command` builds the command line for an address and a
    /// scratch directory.
    fn start_retrying(kind: Kind, command: impl Fn(SocketAddr, &Path) -> Command) -> Self {
        for attempt in 1..=ATTEMPTS {
            let addr = free_addr();
            let dir = scratch_dir();
            let log_path = dir.path().join(format!("{}.stderr", kind.name()));
            let log = std::fs::File::create(&log_path).expect("proxy log");
            let child = command(addr, dir.path())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", kind.name()));
            let mut proxy = Self {
                addr,
                dir,
                log_path,
                child: Some(child),
            };
            match proxy.wait_ready(kind) {
                Ok(()) => return proxy,
                Err(why) => {
                    proxy.stop();
                    let taken = proxy
                        .log()
                        .to_lowercase()
                        .contains("address already in use");
                    if !taken || attempt == ATTEMPTS {
                        panic!(
                            "{} did not serve on {addr}: {why}:\n{}",
                            kind.name(),
                            proxy.log()
                        );
                    }
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Ready means: the child still runs, it says it bound its listener
    /// (nginx writes its pid file only after binding; caddy logs "server
    /// running"), and the port gives an HTTP answer from that kind of
    /// server (not just an accepted connection).
    fn wait_ready(&mut self, kind: Kind) -> Result<(), String> {
        let mut exited = None;
        let ready = wait_until(Duration::from_secs(20), || {
            if let Some(status) = super::child_exited(&mut self.child) {
                exited = Some(status);
                return true;
            }
            let bound = match kind {
                Kind::Nginx => self.dir.path().join("nginx.pid").is_file(),
                Kind::Caddy => self.log().contains("server running"),
            };
            bound
                && http_server_header(self.addr)
                    .is_some_and(|server| server.to_lowercase().starts_with(kind.name()))
        });
        match (exited, ready) {
            (None, true) => Ok(()),
            (Some(status), _) => Err(format!("exited ({status})")),
            (None, false) => Err("no HTTP answer within 20 s".to_string()),
        }
    }

    /// What the proxy wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        super::stop_child(&mut self.child);
    }
}

impl Drop for FrontProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A scratch directory that a proxy's unprivileged workers may enter
/// (nginx started as root runs its workers as `nobody`).
fn scratch_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("scratch dir");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755));
    }
    dir
}

/// The `Server` header of the answer to `GET /` on `addr`, if an HTTP
/// server answers there within a second.
fn http_server_header(addr: SocketAddr) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    if !head.starts_with("HTTP/1.") {
        return None;
    }
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("server"))
        .map(|(_, value)| value.trim().to_string())
}
