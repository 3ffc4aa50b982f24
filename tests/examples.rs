//! The shipped examples work as documented: every config in `config/`,
//! `config/examples/` and `examples/forward-auth/` passes `steemgate check`
//! (and a broken one fails naming the key and line), and the upstream
//! examples (Rust, Python, Node) run behind the real gateway: they greet the
//! account the gateway proved, a spoofed header changes nothing, and they
//! refuse a request carrying more than one identity value.
//! Python and Node tests skip with a notice when `python3` / `node` are
//! missing (and fail under STEEMGATE_REQUIRE_SYSTEM_DEPS=1).

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use support::gateway::{Stack, get};
use support::{free_addr, system_binary};

const SECRET_FOR_CHECK: &str = "examples-test-secret-0123456789abcdef";

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn check(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_steemgate"))
        .args(["check", "--config"])
        .arg(config)
        // The deployment examples take the secret from the environment.
        .env("STEEMGATE_SECRET", SECRET_FOR_CHECK)
        .output()
        .expect("run steemgate check")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir().join(dir))
        .unwrap_or_else(|e| panic!("read {dir}: {e}"))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_config_passes_check() {
    let mut checked = 0;
    let steemgate_configs = ["config", "config/examples"]
        .into_iter()
        .flat_map(yaml_files)
        // The only steemgate config there (traefik.yml is Traefik's).
        .chain([manifest_dir().join("examples/forward-auth/steemgate.yaml")]);
    for file in steemgate_configs {
        let output = check(&file);
        assert!(
            output.status.success(),
            "{} fails check: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("OK"));
        checked += 1;
    }
    // config/steemgate.yaml, three in config/examples, one for forward auth.
    assert!(checked >= 5, "only {checked} configs found");
}

#[test]
fn a_broken_copy_of_an_example_fails_naming_key_and_line() {
    let original = std::fs::read_to_string(manifest_dir().join("config/examples/single-app.yaml"))
        .expect("read single-app.yaml");
    let line = original
        .lines()
        .position(|l| l.trim_start().starts_with("challenge_ttl:"))
        .expect("single-app.yaml sets challenge_ttl")
        + 1;
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, original.replace("challenge_ttl:", "challenge_tl:")).expect("write");
    let output = check(&broken);
    assert!(!output.status.success(), "a misspelled key must fail");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("challenge_tl"), "{stderr}");
    assert!(stderr.contains(&format!("line {line}")), "{stderr}");
}

/// An example app started with `--listen 127.0.0.1:0`; its first stdout line
/// says where it listens. Killed on drop.
struct ExampleApp {
    addr: SocketAddr,
    child: Child,
}

impl ExampleApp {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example app");
        let stdout = child.stdout.take().expect("stdout");
        let mut first = String::new();
        BufReader::new(stdout)
            .read_line(&mut first)
            .expect("read the app's first line");
        let addr = first
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("the app did not say where it listens: {first:?}")
            });
        Self { addr, child }
    }
}

impl Drop for ExampleApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test gateway with every route pointed at `app` instead of the echo app.
fn gateway_in_front_of(app: SocketAddr) -> Stack {
    Stack::start_with(move |config| {
        let marker = "upstream: \"http://";
        let start = config.find(marker).expect("an http upstream") + marker.len();
        let end = start + config[start..].find('"').expect("closing quote");
        let echo = config[start..end].to_string();
        config.replace(&format!("http://{echo}\""), &format!("http://{app}\""))
    })
}

/// The behaviour every upstream example promises.
fn exercise(app: &ExampleApp) {
    let stack = gateway_in_front_of(app.addr);
    // Anonymous on a public route, a client's claim stripped by the gateway.
    let public = get(stack.addr(), "/public/", &["X-Steem-Account: mallory"]);
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(public.body, "Hello, anonymous visitor\n");

    let cookie = format!("Cookie: {}", stack.login_as("alice"));
    for spoof in [
        "X-Steem-Account: mallory",
        "x-steem-account: mallory",
        "X_Steem_Account: mallory",
        "X-Steem-Account: mallory, alice",
    ] {
        let greeting = get(stack.addr(), "/app", &[&cookie, spoof]);
        assert_eq!(greeting.status, 200, "{}", greeting.body);
        assert_eq!(greeting.body, "Hello @alice\n", "with {spoof:?}");
    }

    // Straight to the app (what the loopback bind prevents in production):
    // it refuses anything but one account name.
    for bad in [
        &["X-Steem-Account: alice", "X-Steem-Account: bob"][..],
        &["X-Steem-Account: alice, bob"][..],
        &["X-Steem-Account: <script>"][..],
    ] {
        let direct = get(app.addr, "/", bad);
        assert_eq!(direct.status, 400, "{bad:?} gave {}", direct.body);
        assert!(direct.body.starts_with("refused:"), "{}", direct.body);
    }
}

/// `target/debug/examples/upstream`, built once by `cargo build --example`
/// into the target directory this test runs from.
fn rust_upstream_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test runs as <target>/debug/deps/examples-<hash>.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/debug");
        let target_dir = profile_dir.parent().expect("target dir");
        let built = profile_dir.join("examples/upstream");
        // `cargo test` builds the examples before it runs the tests, so the
        // binary is normally there and current: calling cargo again from
        // inside a test would only wait on the build lock `cargo test` holds.
        if built.is_file() {
            return built;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "upstream", "--target-dir"])
            .arg(target_dir)
            .current_dir(manifest_dir())
            .status()
            .expect("run cargo build --example upstream");
        assert!(status.success(), "cargo build --example upstream failed");
        profile_dir.join("examples/upstream")
    })
}

#[test]
fn rust_upstream_example_works_behind_the_gateway() {
    let app = ExampleApp::start(Command::new(rust_upstream_binary()));
    exercise(&app);
}

#[test]
fn rust_upstream_example_verifies_assertions_with_the_gateway_jwks() {
    // The app is told the gateway's address before the gateway starts. If
    // the harness had to move the gateway (its probe port was taken), the
    // app would ask the wrong address: start both again on fresh ports.
    let (app, stack) = (0..3)
        .find_map(|_| {
            let gateway_addr = free_addr();
            let mut command = Command::new(rust_upstream_binary());
            command.args(["--gateway", &format!("http://{gateway_addr}")]);
            let app = ExampleApp::start(command);
            let app_addr = app.addr;
            let stack = Stack::start_at(gateway_addr, move |config| {
                let marker = "upstream: \"http://";
                let start = config.find(marker).expect("an http upstream") + marker.len();
                let end = start + config[start..].find('"').expect("closing quote");
                let echo = config[start..end].to_string();
                config
                    .replace(&format!("http://{echo}\""), &format!("http://{app_addr}\""))
                    .replacen(
                        "routes:\n",
                        &format!("routes:\n  - {{path: /signed, upstream: \"http://{app_addr}\", auth: required, assertion: true}}\n"),
                        1,
                    )
            });
            (stack.addr() == gateway_addr).then_some((app, stack))
        })
        .expect("the gateway kept its port in one of three tries");
    let cookie = format!("Cookie: {}", stack.login_as("alice"));
    let greeting = get(
        stack.addr(),
        "/signed",
        &[&cookie, "X-Steem-Assertion: forged"],
    );
    assert_eq!(greeting.status, 200, "{}", greeting.body);
    assert_eq!(greeting.body, "Hello @alice (verified)\n");

    // A route without assertions: the app now refuses the bare header.
    let bare = get(stack.addr(), "/app", &[&cookie]);
    assert_eq!(bare.status, 401, "{}", bare.body);
    // Straight to the app: a claimed account needs a gateway-signed token.
    for headers in [
        &["X-Steem-Account: alice"][..],
        &["X-Steem-Account: alice", "X-Steem-Assertion: e30.e30.AAAA"][..],
    ] {
        let direct = get(app.addr, "/", headers);
        assert_eq!(direct.status, 401, "{headers:?} gave {}", direct.body);
    }
    // Anonymous visitors are still fine.
    let public = get(stack.addr(), "/public/", &[]);
    assert_eq!(public.body, "Hello, anonymous visitor\n");
}

#[test]
fn python_upstream_example_works_behind_the_gateway() {
    let Some(python) = system_binary("python3") else {
        return;
    };
    let mut command = Command::new(python);
    command.arg(manifest_dir().join("examples/python/app.py"));
    exercise(&ExampleApp::start(command));
}

#[test]
fn node_upstream_example_works_behind_the_gateway() {
    let Some(node) = system_binary("node") else {
        return;
    };
    let mut command = Command::new(node);
    command.arg(manifest_dir().join("examples/node/app.js"));
    exercise(&ExampleApp::start(command));
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = system_binary("systemd-analyze") else {
        return;
    };
    // verify insists that ExecStart exists: check a copy naming the built binary.
    let unit = std::fs::read_to_string(manifest_dir().join("deploy/steemgate.service"))
        .expect("read deploy/steemgate.service");
    let installed = "/usr/local/bin/steemgate";
    assert!(unit.contains(&format!("ExecStart={installed} run")));
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("steemgate.service");
    std::fs::write(
        &copy,
        unit.replace(installed, env!("CARGO_BIN_EXE_steemgate")),
    )
    .expect("write unit copy");
    let output = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("run systemd-analyze verify");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
