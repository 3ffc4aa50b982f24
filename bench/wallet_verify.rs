//! Benchmark of wallet-login verification (not a test, no assertions).
//!
//! Why: issue 10 promises "instant" logins; the part the gateway controls is
//! the time between the wallet's answer reaching it (`POST
//! /.steemgate/verify`) and the answer "logged in", target < 50 ms. This runs
//! the whole gateway in this process (`server::run`, embedded store in a temp
//! dir) with the devnet as its chain node, publishes a test account's keys on
//! the devnet, and for each method does 50 logins, each on a fresh session:
//! challenge, sign here (the crate's Keychain-identical signer), then times
//! the verify request alone on an already open connection. It also times the
//! signature recovery alone, in this process, to show its share.
//!
//! Run: `cargo bench --bench wallet_verify --profile dev` (debug code: slower
//! than release) or without `--profile` for an optimized build. Writes
//! `bench/results/wallet-verify.md`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steemgate::chain::ChainName;
use steemgate::chain::crypto::Transaction;
use steemgate::chain::crypto::keys::public_key_of;
use steemgate::chain::crypto::signature::sign_compact;
use steemgate::chain::crypto::{recover_message_signer, recover_transaction_signers};
use steemgate::chain::devnet::{Devnet, DevnetOptions, SimAuthorities};
use steemgate::config::Config;

const LOGINS: usize = 50;
const GATE: &str = "gate-bench";
const ACCOUNT: &str = "alice";
const TARGET_MS: f64 = 50.0;

/// One HTTP/1.1 exchange on `stream` (`Connection: close`): status,
/// headers (lowercase names) and body.
fn exchange(mut stream: TcpStream, raw: &str) -> (u16, Vec<(String, String)>, String) {
    stream
        .write_all(raw.as_bytes())
        .expect("sending the request");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("reading the answer");
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connecting to the gateway");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
}

fn request(
    method: &str,
    addr: SocketAddr,
    path: &str,
    cookie: &str,
    body: Option<&Value>,
) -> String {
    let body = body.map(Value::to_string).unwrap_or_default();
    let cookie = if cookie.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookie}\r\n")
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\n{cookie}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn key_from(label: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    SigningKey::from_slice(&seed).expect("a valid key")
}

fn stm(key: &SigningKey) -> String {
    public_key_of(key).expect("a public key").to_string()
}

/// A fresh session with a wallet challenge of `method`: (cookie, challenge).
fn challenge(addr: SocketAddr, method: &str) -> (String, Value) {
    let (status, headers, body) = exchange(
        connect(addr),
        &request("GET", addr, "/.steemgate/status", "", None),
    );
    assert_eq!(status, 200, "{body}");
    let cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .and_then(|(_, v)| v.split(';').next())
        .expect("a session cookie")
        .to_string();
    let (status, _, body) = exchange(
        connect(addr),
        &request(
            "POST",
            addr,
            "/.steemgate/challenge",
            &cookie,
            Some(&json!({"account": ACCOUNT, "method": method})),
        ),
    );
    assert_eq!(status, 200, "{body}");
    (cookie, serde_json::from_str(&body).expect("challenge JSON"))
}

/// The wallet's answer to a challenge, as Keychain would give it.
fn sign(method: &str, challenge: &Value, posting: &SigningKey, active: &SigningKey) -> Value {
    if method == "signature" {
        let text = challenge["challenge"].as_str().expect("challenge text");
        let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        json!({"signature": hex::encode(sign_compact(posting, &digest)), "challenge": text})
    } else {
        let mut tx: Transaction =
            serde_json::from_value(challenge["transaction"].clone()).expect("a transaction");
        let digest = tx.digest(ChainName::Steem).expect("a digest");
        tx.signatures
            .push(hex::encode(sign_compact(active, &digest)));
        json!({"transaction": tx})
    }
}

/// Times only the server's own signature recovery for one answer.
fn recovery_only(method: &str, challenge: &Value, answer: &Value) -> Duration {
    let started = Instant::now();
    if method == "signature" {
        let text = challenge["challenge"].as_str().unwrap_or_default();
        let signature = answer["signature"].as_str().unwrap_or_default();
        recover_message_signer(text.as_bytes(), signature).expect("recoverable");
    } else {
        let unsigned: Transaction =
            serde_json::from_value(challenge["transaction"].clone()).expect("a transaction");
        let signed: Transaction =
            serde_json::from_value(answer["transaction"].clone()).expect("a transaction");
        recover_transaction_signers(ChainName::Steem, &unsigned, &signed.signatures)
            .expect("recoverable");
    }
    started.elapsed()
}

struct Row {
    method: &'static str,
    verify: Vec<f64>,
    recovery: Vec<f64>,
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn summary(values: &[f64]) -> [f64; 4] {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    [
        sorted[0],
        percentile(&sorted, 50),
        percentile(&sorted, 95),
        sorted[sorted.len() - 1],
    ]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split(' ').take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!("{cpu}, {cores} cores, Linux {kernel}, load average before the run: {load}")
}

fn main() {
    let machine = machine();
    let store = tempfile::tempdir().expect("temp dir");
    let devnet = Devnet::new(DevnetOptions {
        chain: ChainName::Steem,
        block_interval: None,
        seed: false,
        start_block: 1000,
    });
    devnet.produce_block(None);
    let posting = key_from("bench/posting");
    let active = key_from("bench/active");
    devnet
        .set_keys(
            ACCOUNT,
            SimAuthorities {
                posting: vec![(stm(&posting), 1)],
                posting_threshold: 1,
                active: vec![(stm(&active), 1)],
                active_threshold: 1,
                memo: Some(stm(&key_from("bench/memo"))),
                ..SimAuthorities::default()
            },
        )
        .expect("publishing the keys");
    let devnet_listener = TcpListener::bind("127.0.0.1:0").expect("binding the devnet");
    let devnet_addr = devnet_listener.local_addr().expect("devnet address");
    let free = || {
        TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
    };
    let (addr, admin) = (free(), free());
    let yaml = format!(
        r#"listen: "{addr}"
admin_listen: "{admin}"
threads: 2
chain:
  name: steem
  nodes: ["http://{devnet_addr}"]
  account: {GATE}
  devnet: true
  request_timeout: 2s
session:
  secret: "bench-secret-0123456789abcdef0123456789"
store: "file:{store}"
limits: {{new_sessions_per_minute: 0, status_per_minute: 0}}
routes:
  - {{path: /, upstream: "builtin:hello", auth: required}}
"#,
        store = store.path().join("store").display()
    );
    let config = Config::from_yaml(&yaml, std::path::Path::new(".")).expect("bench config");
    let gateway_devnet = devnet.clone();
    std::thread::spawn(move || {
        let extras = steemgate::server::Extras {
            devnet: Some((gateway_devnet, devnet_listener)),
            config_path: None,
        };
        if let Err(e) = steemgate::server::run(config, extras) {
            eprintln!("the gateway stopped: {e:#}");
        }
    });
    let ready = (0..500).any(|_| {
        let up = TcpStream::connect(admin)
            .ok()
            .map(|s| exchange(s, &request("GET", admin, "/ready", "", None)).0 == 200)
            .unwrap_or(false);
        if !up {
            std::thread::sleep(Duration::from_millis(20));
        }
        up
    });
    assert!(ready, "the gateway never became ready");

    let mut rows = Vec::new();
    for method in ["signature", "signed_transfer"] {
        let mut row = Row {
            method,
            verify: Vec::new(),
            recovery: Vec::new(),
        };
        for _ in 0..LOGINS {
            let (cookie, issued) = challenge(addr, method);
            let answer = sign(method, &issued, &posting, &active);
            let raw = request("POST", addr, "/.steemgate/verify", &cookie, Some(&answer));
            let stream = connect(addr);
            let started = Instant::now();
            let (status, _, body) = exchange(stream, &raw);
            let elapsed = started.elapsed();
            assert_eq!(status, 200, "{body}");
            let status: Value = serde_json::from_str(&body).expect("status JSON");
            assert_eq!(status["authenticated"], json!(true), "{status}");
            row.verify.push(elapsed.as_secs_f64() * 1000.0);
            row.recovery
                .push(recovery_only(method, &issued, &answer).as_secs_f64() * 1000.0);
        }
        // The signed transfers land (and are confirmed) before the next round.
        devnet.produce_block(None);
        rows.push(row);
    }

    let profile = if cfg!(debug_assertions) {
        "debug build (`--profile dev`): an optimized build is faster"
    } else {
        "optimized build"
    };
    let mut table = String::from(
        "| method | verify min | p50 | p95 | max | signature recovery alone (p50) |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    println!("POST /.steemgate/verify, {LOGINS} logins per method, {profile}:");
    for row in &rows {
        let [min, p50, p95, max] = summary(&row.verify);
        let [_, recovery, _, _] = summary(&row.recovery);
        let verdict = if p95 < TARGET_MS { "meets" } else { "MISSES" };
        println!(
            "{:>16}: min {min:.1} ms, p50 {p50:.1} ms, p95 {p95:.1} ms, max {max:.1} ms \
             (recovery alone p50 {recovery:.1} ms) - {verdict} the {TARGET_MS} ms target at p95",
            row.method
        );
        table.push_str(&format!(
            "| {} | {min:.1} ms | {p50:.1} ms | {p95:.1} ms | {max:.1} ms | {recovery:.1} ms |\n",
            row.method
        ));
    }
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let report = format!(
        "# Wallet login verification (issue 10, target < {TARGET_MS} ms)\n\n\
         `cargo bench --bench wallet_verify --profile dev` on {date}, {profile}.\n\
         The whole gateway in the bench process (embedded redb store in a temp dir)\n\
         with the in-process devnet as its node; {LOGINS} logins per method, each on a\n\
         fresh session. Timed: from sending `POST /.steemgate/verify` (the wallet's\n\
         answer) on an open loopback connection to the full answer (session logged\n\
         in). It includes taking the challenge from the store, the signature\n\
         recovery, `get_accounts` on the devnet, the login write and, for the\n\
         signed transfer, `broadcast_transaction`. The last column times the\n\
         signature recovery alone, in the bench process.\n\n\
         {table}\n\
         Machine: {machine}.\n"
    );
    let out =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/wallet-verify.md");
    std::fs::write(&out, report).expect("writing the results");
    println!("written to {}", out.display());
    // Pingora owns the gateway's runtimes: leave without waiting for them.
    std::process::exit(0);
}
