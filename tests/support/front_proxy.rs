//! Runs a real front proxy (Debian's nginx or caddy) from one of the
//! configs in `examples/forward-auth/` for one test: the example file is
//! used as written, with only its documented placeholder addresses swapped
//! for test ports and scratch paths added, so a test proves the example.
//! Killed on drop.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_addr, system_binary, wait_for_port};

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

impl FrontProxy {
    /// nginx with `examples/forward-auth/nginx.conf`, its steemgate and app
    /// upstreams pointed at `gateway` and `app`. `None` when nginx is missing.
    pub fn nginx(gateway: SocketAddr, app: SocketAddr) -> Option<Self> {
        let binary = system_binary("nginx")?;
        let addr = free_addr();
        let dir = scratch_dir();
        let scratch = dir.path().display().to_string();
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
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let log_path = dir.path().join("nginx.stderr");
        let log = std::fs::File::create(&log_path).expect("nginx log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg("stderr")
            .arg("-c")
            .arg(&conf_path)
            .arg("-g")
            .arg(format!(
                "daemon off; pid {scratch}/nginx.pid; error_log stderr;"
            ))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start nginx");
        Some(Self::wait(addr, dir, log_path, child, "nginx"))
    }

    /// caddy with `examples/forward-auth/Caddyfile`, its site address and
    /// upstreams pointed at test ports, the admin API off. `None` when caddy
    /// is missing.
    pub fn caddy(gateway: SocketAddr, app: SocketAddr) -> Option<Self> {
        let binary = system_binary("caddy")?;
        let addr = free_addr();
        let dir = scratch_dir();
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
        let conf_path = dir.path().join("Caddyfile");
        std::fs::write(&conf_path, conf).expect("write Caddyfile");
        let log_path = dir.path().join("caddy.stderr");
        let log = std::fs::File::create(&log_path).expect("caddy log");
        let child = Command::new(binary)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf_path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start caddy");
        Some(Self::wait(addr, dir, log_path, child, "caddy"))
    }

    fn wait(
        addr: SocketAddr,
        dir: tempfile::TempDir,
        log_path: PathBuf,
        child: Child,
        name: &str,
    ) -> Self {
        let mut proxy = Self {
            addr,
            dir,
            log_path,
            child: Some(child),
        };
        if !wait_for_port(addr, Duration::from_secs(20)) {
            proxy.stop();
            panic!("{name} did not listen on {addr}:\n{}", proxy.log());
        }
        proxy
    }

    /// What the proxy wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
