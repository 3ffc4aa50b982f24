//! The `steemgate` subcommands a newcomer runs first, run as the binary:
//! `secret`, `devnet` (serve, `transfer`, `follow`, `produce-block`, the policy
//! commands `subscribe`, `set-role`, `set-account`, `witness-vote`) and `demo`.
//!
//! Why: the README's quick start is these commands. Library tests cover the
//! pieces, but only running the binary shows that the flags parse, that
//! what it prints is what it did, and that the demo really logs a visitor in
//! and serves the stale-follows report for the seeded `demo` account.
//! Everything listens on loopback; every process is killed at the end.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Response, get, post, raw_request};
use support::{free_addr, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_steemgate");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("STEEMGATE_SECRET")
        .output()
        .expect("run steemgate")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// A child process killed (and reaped) on drop, its stdout and stderr in
/// files of a scratch directory.
struct Running {
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Running {
    /// Starts `steemgate args…` with `cwd` as its working directory.
    fn start(args: &[&str], cwd: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env_remove("STEEMGATE_SECRET")
            .env("STEEMGATE_LOG", "info")
            .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("start steemgate");
        Self {
            child: Some(child),
            dir,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout")).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Sends SIGINT (Ctrl-C) and waits (bounded) for the exit status.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let pid = self.child.as_ref().expect("running").id();
        let sent = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
        let mut status = None;
        let stopped = wait_until(Duration::from_secs(10), || {
            status = self.exited();
            status.is_some()
        });
        assert!(stopped, "no exit within 10 s of Ctrl-C");
        self.child = None;
        status.unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ------------------------------------------------------------------ secret

#[test]
fn secret_prints_a_fresh_64_hex_digit_secret_that_check_accepts() {
    let first = run(&["secret"]);
    let second = run(&["secret"]);
    let mut secrets = Vec::new();
    for output in [&first, &second] {
        assert!(output.status.success(), "{}", stderr(output));
        let text = stdout(output);
        // One line: the secret and a newline, nothing else.
        let secret = text.strip_suffix('\n').expect("ends with a newline");
        assert_eq!(secret.len(), 64, "{text:?}");
        assert!(
            secret
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "lowercase hex: {text:?}"
        );
        secrets.push(secret.to_string());
    }
    assert_ne!(secrets[0], secrets[1], "two runs print two secrets");
    // Each of 32 bytes can be anything: two 32-byte draws share a byte in
    // the same place now and then, but never more than a handful.
    let same = secrets[0]
        .as_bytes()
        .chunks(2)
        .zip(secrets[1].as_bytes().chunks(2))
        .filter(|(a, b)| a == b)
        .count();
    assert!(same < 8, "{same} equal bytes: not random: {secrets:?}");

    // The printed secret is what `session.secret` takes.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("steemgate.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:8080\"\nchain:\n  name: steem\n  account: gate\nsession:\n  secret: \"{}\"\nstore: \"file:./data\"\nroutes:\n  - {{path: /, upstream: \"http://127.0.0.1:3000\", auth: required}}\n",
            secrets[0]
        ),
    )
    .unwrap();
    let check = run(&["check", "--config", config.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );
    assert!(stdout(&check).contains(": OK ("), "{}", stdout(&check));
}

#[test]
fn check_validates_sentinel_and_cluster_stores_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sentinel.pw"), "s3cret\n").unwrap();
    let config = dir.path().join("steemgate.yaml");
    let with_store = |store: &str| {
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:8080\"\nchain:\n  name: steem\n  account: gate\nsession:\n  secret: \"{}\"\nstore: \"{store}\"\nroutes:\n  - {{path: /, upstream: \"http://127.0.0.1:3000\", auth: required}}\n",
                "ab".repeat(32)
            ),
        )
        .unwrap();
        run(&["check", "--config", config.to_str().unwrap()])
    };
    for good in [
        "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2:26379/mymaster/1?prefix=gw&sentinel_password_file=sentinel.pw",
        "rediss+cluster://:pw@10.0.0.1:7000,10.0.0.2:7000?prefix=gw",
    ] {
        let check = with_store(good);
        assert!(
            check.status.success(),
            "{good}: {}{}",
            stdout(&check),
            stderr(&check)
        );
        assert!(stdout(&check).contains(": OK ("), "{}", stdout(&check));
    }
    for (bad, words) in [
        ("redis+sentinel://:hunter2@10.0.0.1:26379", "MASTER_NAME"),
        ("redis+cluster://:hunter2@10.0.0.1:7000/3", "no path"),
        (
            "redis+sentinel://h/m?sentinel_password_file=nope.pw",
            "cannot read",
        ),
    ] {
        let check = with_store(bad);
        assert!(!check.status.success(), "{bad} accepted");
        let text = format!("{}{}", stdout(&check), stderr(&check));
        assert!(
            text.contains("store") && text.contains("line 7") && text.contains(words),
            "{bad}: {text}"
        );
        assert!(
            !text.contains("hunter2"),
            "a password in the output: {text}"
        );
    }
}

// ------------------------------------------------------------------ devnet

/// One JSON-RPC call to the devnet at `addr`: its `result`.
fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_request(addr, raw.as_bytes()).json();
    assert!(answer.get("error").is_none(), "{method}: {answer}");
    answer["result"].clone()
}

#[test]
fn devnet_serves_and_its_client_commands_transfer_and_produce_blocks() {
    let cwd = tempfile::tempdir().unwrap();
    // Port 0: the devnet binds it and prints the address it got (no race).
    let mut devnet = Running::start(
        &["devnet", "--listen", "127.0.0.1:0", "--block-interval", "0"],
        cwd.path(),
    );
    let mut url = None;
    let announced = wait_until(Duration::from_secs(20), || {
        url = devnet
            .stdout()
            .split("chain on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string);
        url.is_some() || devnet.exited().is_some()
    });
    let url = url.unwrap_or_else(|| {
        panic!(
            "devnet announced no address (announced: {announced}):\n{}{}",
            devnet.stdout(),
            devnet.stderr()
        )
    });
    assert!(devnet.stdout().contains("SIMULATED steem chain"));
    let addr: SocketAddr = url
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not an http://address: {url}"));

    // Seeded by default: `demo` exists and follows the generated accounts.
    let accounts = rpc(addr, "condenser_api.get_accounts", json!([["demo"]]));
    assert_eq!(accounts[0]["name"], "demo", "{accounts}");
    // Blocks only on request (--block-interval 0).
    let head = rpc(
        addr,
        "condenser_api.get_dynamic_global_properties",
        json!([]),
    )["head_block_number"]
        .as_u64()
        .unwrap();

    let transfer = run(&[
        "devnet",
        "transfer",
        "--node",
        &url,
        "--from",
        "demo",
        "--to",
        "gate-demo",
        "--memo",
        "cli-memo-1",
    ]);
    assert!(transfer.status.success(), "{}", stderr(&transfer));
    let printed = stdout(&transfer);
    let txid = printed
        .strip_prefix("simulated transfer ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no txid in {printed:?}"))
        .to_string();
    assert!(
        printed.contains("demo -> gate-demo, 0.001 STEEM, memo \"cli-memo-1\""),
        "{printed}"
    );

    let produced = run(&["devnet", "produce-block", "--node", &url]);
    assert!(produced.status.success(), "{}", stderr(&produced));
    assert_eq!(
        stdout(&produced),
        format!("simulated block {} produced\n", head + 1)
    );
    // The block holds exactly that transfer, as printed.
    let block = rpc(addr, "condenser_api.get_block", json!([head + 1]));
    assert_eq!(block["transaction_ids"], json!([txid]), "{block}");
    let op = &block["transactions"][0]["operations"][0];
    assert_eq!(op[0], "transfer", "{block}");
    assert_eq!(
        (
            &op[1]["from"],
            &op[1]["to"],
            &op[1]["amount"],
            &op[1]["memo"]
        ),
        (
            &json!("demo"),
            &json!("gate-demo"),
            &json!("0.001 STEEM"),
            &json!("cli-memo-1")
        )
    );

    // A transfer the devnet refuses: a clear error and a failing exit.
    let refused = run(&[
        "devnet",
        "transfer",
        "--node",
        &url,
        "--from",
        "demo",
        "--to",
        "gate-demo",
        "--amount",
        "0.001 HIVE",
        "--memo",
        "x",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).starts_with("error: "),
        "{}",
        stderr(&refused)
    );
    assert!(stdout(&refused).is_empty());

    // `devnet follow`: bob follows demo, then mutes carol's follow of
    // alice away (unfollow); both land with the next block.
    let follows_of = |account: &str, kind: &str| -> Vec<String> {
        rpc(
            addr,
            "condenser_api.get_following",
            json!([account, null, kind, 100]),
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["following"].as_str().unwrap().to_string())
        .collect()
    };
    assert_eq!(follows_of("carol", "blog"), ["alice"]);
    let follow = run(&[
        "devnet",
        "follow",
        "--node",
        &url,
        "--follower",
        "bob",
        "--following",
        "demo",
    ]);
    assert!(follow.status.success(), "{}", stderr(&follow));
    assert!(
        stdout(&follow).contains("bob -> demo, what [\"blog\"]"),
        "{}",
        stdout(&follow)
    );
    let unfollow = run(&[
        "devnet",
        "follow",
        "--node",
        &url,
        "--follower",
        "carol",
        "--following",
        "alice",
        "--what",
        "none",
    ]);
    assert!(unfollow.status.success(), "{}", stderr(&unfollow));
    assert!(follows_of("bob", "blog").contains(&"alice".to_string()));
    assert!(
        !follows_of("bob", "blog").contains(&"demo".to_string()),
        "not before the block"
    );
    assert!(
        run(&["devnet", "produce-block", "--node", &url])
            .status
            .success()
    );
    assert!(follows_of("bob", "blog").contains(&"demo".to_string()));
    assert!(follows_of("carol", "blog").is_empty());
    let refused = run(&[
        "devnet",
        "follow",
        "--node",
        &url,
        "--follower",
        "bob",
        "--following",
        "bob",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("follow itself"),
        "{}",
        stderr(&refused)
    );

    // Ctrl-C stops it cleanly.
    let status = devnet.interrupt();
    assert!(status.success(), "{status}: {}", devnet.stderr());
}

#[test]
fn devnet_refuses_an_unknown_chain_and_a_dead_node_clearly() {
    let unknown = run(&["devnet", "--listen", "127.0.0.1:0", "--chain", "eos"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("unknown chain \"eos\""),
        "{}",
        stderr(&unknown)
    );
    // A port that is held and refuses connections.
    let closed = support::ClosedPort::new();
    let dead = format!("http://{}", closed.addr());
    let produce = run(&["devnet", "produce-block", "--node", &dead]);
    assert_eq!(produce.status.code(), Some(1));
    assert!(
        stderr(&produce).starts_with("error: "),
        "{}",
        stderr(&produce)
    );
}

/// The policy commands (`subscribe`, `unsubscribe`, `set-role`,
/// `set-account`, `witness-vote`) change what the devnet answers next, say
/// what they did, and fail with a clear error on bad input.
#[test]
fn devnet_policy_commands_change_what_the_devnet_answers() {
    let cwd = tempfile::tempdir().unwrap();
    let mut devnet = Running::start(
        &["devnet", "--listen", "127.0.0.1:0", "--block-interval", "0"],
        cwd.path(),
    );
    let mut url = None;
    wait_until(Duration::from_secs(20), || {
        url = devnet
            .stdout()
            .split("chain on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string);
        url.is_some() || devnet.exited().is_some()
    });
    let url = url.unwrap_or_else(|| panic!("no address:\n{}{}", devnet.stdout(), devnet.stderr()));
    let addr: SocketAddr = url.strip_prefix("http://").unwrap().parse().unwrap();
    let context = |account: &str| {
        rpc(
            addr,
            "bridge.get_community_context",
            json!({"name": "hive-100001", "account": account}),
        )
    };
    let ok = |args: &[&str]| {
        let mut all = vec!["devnet"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--node", &url]);
        let output = run(&all);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };

    assert_eq!(
        context("demo"),
        json!({"role": "guest", "subscribed": false, "title": ""})
    );
    assert_eq!(
        ok(&["subscribe", "--account", "demo"]),
        "simulated: demo subscribed to hive-100001\n"
    );
    assert_eq!(context("demo")["subscribed"], true);
    ok(&["set-role", "--account", "demo", "--role", "mod"]);
    assert_eq!(context("demo")["role"], "mod");
    ok(&[
        "unsubscribe",
        "--account",
        "demo",
        "--community",
        "hive-100001",
    ]);
    assert_eq!(
        context("demo"),
        json!({"role": "mod", "subscribed": false, "title": ""})
    );

    ok(&[
        "set-account",
        "--account",
        "newbie",
        "--reputation",
        "-7000000000",
        "--vesting-shares",
        "2000",
        "--created",
        "2020-01-02T03:04:05",
    ]);
    let newbie = &rpc(addr, "condenser_api.get_accounts", json!([["newbie"]]))[0];
    assert_eq!(
        (
            &newbie["reputation"],
            &newbie["vesting_shares"],
            &newbie["created"]
        ),
        (
            &json!("-7000000000"),
            &json!("2000.000000 VESTS"),
            &json!("2020-01-02T03:04:05")
        )
    );
    assert_eq!(
        ok(&[
            "witness-vote",
            "--account",
            "newbie",
            "--witness",
            "devnet-witness"
        ]),
        "simulated: newbie votes for witness devnet-witness\n"
    );
    ok(&[
        "witness-vote",
        "--account",
        "demo",
        "--witness",
        "devnet-witness",
        "--unvote",
    ]);
    let votes = |name: &str| {
        rpc(addr, "condenser_api.get_accounts", json!([[name]]))[0]["witness_votes"].clone()
    };
    assert_eq!(votes("newbie"), json!(["devnet-witness"]));
    assert_eq!(votes("demo"), json!([]));

    for refused in [
        vec!["set-role", "--account", "demo", "--role", "king"],
        vec!["subscribe", "--account", "nobody"],
        vec!["set-account", "--account", "demo"],
        vec![
            "set-account",
            "--account",
            "demo",
            "--vesting-shares",
            "lots",
        ],
    ] {
        let mut all = vec!["devnet"];
        all.extend_from_slice(&refused);
        all.extend_from_slice(&["--node", &url]);
        let output = run(&all);
        assert_eq!(output.status.code(), Some(1), "{refused:?}");
        assert!(
            stderr(&output).starts_with("error: "),
            "{refused:?}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).is_empty());
    }
    let status = devnet.interrupt();
    assert!(status.success(), "{status}: {}", devnet.stderr());
}

// -------------------------------------------------------------------- demo

/// `steemgate demo` on a free loopback port, in a scratch working directory
/// (it keeps its store in `data/demo` there). The port comes from a probe
/// socket: when the demo exits because someone took it, it starts again on
/// a fresh one.
fn start_demo(cwd: &Path) -> (Running, SocketAddr) {
    for _ in 0..3 {
        let addr = free_addr();
        let listen = addr.to_string();
        let mut demo = Running::start(
            &["demo", "--listen", &listen, "--block-interval", "300ms"],
            cwd,
        );
        let mut exited = None;
        let up = wait_until(Duration::from_secs(30), || {
            exited = demo.exited();
            exited.is_some() || answers(addr, "/.steemgate/login")
        });
        match exited {
            None if up => return (demo, addr),
            Some(_) if demo.stderr().contains("in use") => continue,
            _ => panic!(
                "demo did not serve on {addr} (exit {exited:?}):\n{}{}",
                demo.stdout(),
                demo.stderr()
            ),
        }
    }
    panic!("the demo's port was taken three times");
}

/// Whether an HTTP server answers `path` on `addr` with a 200.
fn answers(addr: SocketAddr, path: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        && get(addr, path, &["Accept: text/html"]).status == 200
}

fn cookie_header(cookie: &str) -> String {
    format!("Cookie: {cookie}")
}

#[test]
fn demo_logs_in_the_seeded_account_by_simulated_transfer_and_serves_its_stale_report() {
    let cwd = tempfile::tempdir().unwrap();
    let (demo, addr) = start_demo(cwd.path());
    // What it prints is where it listens, and it says the chain is simulated.
    let banner = demo.stdout();
    assert!(banner.contains("SIMULATED chain"), "{banner}");
    assert!(banner.contains(&format!("http://{addr}/stale")), "{banner}");
    // Its embedded store lives under the working directory.
    assert!(cwd.path().join("data/demo").is_dir());

    // The protected start page sends a visitor to the login page.
    let start = get(addr, "/", &["Accept: text/html"]);
    assert_eq!(start.status, 302, "{start:?}");
    assert_eq!(start.header("location"), Some("/.steemgate/login?rd=%2F"));
    let login = get(addr, "/.steemgate/login?rd=%2F", &["Accept: text/html"]);
    assert_eq!(login.status, 200);
    assert!(login.body.contains("Simulate transfer"), "{}", login.body);
    let cookie = login
        .session_cookie()
        .expect("the login page sets a cookie");

    // The page's own form, as a browser sends it from the page.
    let simulated = post(
        addr,
        "/.steemgate/devnet/transfer",
        &[
            &cookie_header(&cookie),
            &format!("Origin: http://{addr}"),
            "Sec-Fetch-Site: same-origin",
        ],
        "from=demo&rd=%2F",
    );
    assert_eq!(simulated.status, 302, "{simulated:?}");
    assert_eq!(simulated.header("x-devnet"), Some("simulated"));
    // The demo's devnet makes blocks by itself (every 300 ms here).
    let mut status = Value::Null;
    let logged_in = wait_until(Duration::from_secs(30), || {
        status = get(
            addr,
            "/.steemgate/status?wait=2",
            &["Accept: application/json", &cookie_header(&cookie)],
        )
        .json();
        status["authenticated"] == json!(true)
    });
    assert!(logged_in, "never logged in: {status}");
    assert_eq!(status["account"], "demo");
    assert_eq!(status["simulated"], true);

    // The hello app is told the account.
    let hello = get(addr, "/", &["Accept: text/html", &cookie_header(&cookie)]);
    assert_eq!(hello.status, 200, "{hello:?}");
    assert!(hello.body.contains("@demo"), "{}", hello.body);

    // The stale-follows report through the gateway, for `demo` (who follows
    // 3,000 generated accounts): JSON first, then the page's rows.
    let report = fetch_report(addr, &cookie, "/stale?format=json", "application/json");
    assert_eq!(report.status, 200, "{report:?}");
    let json = report.json();
    assert_eq!(json["account"], "demo");
    assert_eq!(json["following"], 3000);
    let threshold = json["threshold_days"].as_u64().unwrap();
    let stale = json["stale"].as_array().unwrap();
    // The seed makes about half of the follows quiet: many rows, not all.
    assert!(
        stale.len() > 300 && stale.len() < 3000,
        "{} stale rows",
        stale.len()
    );
    for row in stale {
        assert!(
            row["days_inactive"].is_null()
                || row["days_inactive"].as_u64().is_some_and(|d| d > threshold),
            "{row}"
        );
    }
    let page = fetch_report(addr, &cookie, "/stale", "text/html");
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("Stale follows of @demo"),
        "{}",
        page.body
    );
    // One row per stale account, 500 to a page; the count says them all.
    let rows = page.body.matches("<tr data-name=").count();
    assert_eq!(rows, stale.len().min(steemgate::report::PAGE_SIZE));
    assert!(
        page.body.contains(&format!(
            "<strong class=\"stale-count\">{}</strong>",
            stale.len()
        )),
        "the count names every stale account"
    );
    let first = stale[0]["name"].as_str().unwrap();
    assert!(page.body.contains(&format!("@{first}</a>")), "{first}");

    // A client-sent identity header does not change whose report it is.
    let forged = get(
        addr,
        "/stale?format=json",
        &[
            "Accept: application/json",
            &cookie_header(&cookie),
            "X-Steem-Account: alice",
        ],
    );
    assert_eq!(forged.json()["account"], "demo");
    // And without a session, no report.
    let anonymous = get(addr, "/stale?format=json", &["Accept: application/json"]);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    drop(demo);
}

/// A report request, retried a few times on a node timeout: the demo's node
/// timeout (2 s) and report budget are real-time, and a debug build on a
/// busy machine can overrun them (502 "timed out" or 504). A report that
/// never works still fails the test.
fn fetch_report(addr: SocketAddr, cookie: &str, path: &str, accept: &str) -> Response {
    let mut last = None;
    for _ in 0..10 {
        let response = get(
            addr,
            path,
            &[&format!("Accept: {accept}"), &cookie_header(cookie)],
        );
        let slow = response.status == 504
            || (response.status == 502 && response.body.contains("timed out"));
        if !slow {
            return response;
        }
        last = Some(response);
    }
    panic!("the report timed out ten times: {last:?}");
}
