//! Benchmark of what `WAIT` adds to a logout (not a test, no assertions).
//!
//! Why: with Sentinel or Cluster, a logout and a revocation come back only
//! once a replica has them (`wait_replicas`, default 1), so a failover
//! cannot re-open the session. That costs one replica round trip per
//! logout, never anything on an authenticated request. This starts a
//! private master and two replicas (`redis-server`, random loopback ports),
//! and times 2,000 logouts (`delete_session` of a fresh session) through
//! the real store with `wait_replicas=0` and `wait_replicas=1`.
//!
//! Then, with both replicas frozen (SIGSTOP), so a logout's `WAIT` blocks
//! for half the store timeout: how long session reads issued meanwhile on
//! the same store take. The logout and its `WAIT` go on a connection of
//! their own, so these reads should not wait for it.
//!
//! Results go to stdout and `bench/results/redis-wait.md`. On loopback the
//! round trip is tiny; across hosts add the network round trip to the
//! replica. Run: `cargo bench --bench redis_wait --profile dev`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use steemgate::clock::now_unix;
use steemgate::store::redis::RedisStore;
use steemgate::store::{SessionKey, SessionRecord, Store};

const LOGOUTS: usize = 2_000;

/// Session reads timed while a logout's `WAIT` is blocked.
const READS_DURING_WAIT: usize = 200;

/// A `redis-server` child, killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(port: u16, dir: &std::path::Path, extra: &[&str]) -> Server {
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    Server(child)
}

fn online_replicas(port: u16) -> usize {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return 0;
    };
    let Ok(mut con) = client.get_connection() else {
        return 0;
    };
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn logouts(store: &RedisStore) -> Vec<Duration> {
    let now = now_unix();
    let mut times = Vec::with_capacity(LOGOUTS);
    for i in 0..LOGOUTS {
        let key = SessionKey(format!("{i:0>64}"));
        let mut record = SessionRecord::pending(now, now + 600);
        record.account = Some("alice".into());
        store.put_session(&key, &record).await.expect("put");
        let start = Instant::now();
        store.delete_session(&key).await.expect("logout");
        times.push(start.elapsed());
    }
    times.sort();
    times
}

/// Times session reads on `store` while a logout on the same store waits
/// for replicas that are frozen; also answers how long the logout took.
async fn reads_during_blocked_wait(store: std::sync::Arc<RedisStore>) -> (Vec<Duration>, Duration) {
    let now = now_unix();
    let leaving = SessionKey(format!("{:0>64}", "leaving"));
    let staying = SessionKey(format!("{:0>64}", "staying"));
    let mut record = SessionRecord::pending(now, now + 600);
    record.account = Some("alice".into());
    store.put_session(&leaving, &record).await.expect("put");
    store.put_session(&staying, &record).await.expect("put");
    let logout_start = Instant::now();
    let logout = tokio::spawn({
        let store = std::sync::Arc::clone(&store);
        async move {
            let _refused = store.delete_session(&leaving).await;
            logout_start.elapsed()
        }
    });
    // Let the logout reach Redis and block in WAIT.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut times = Vec::with_capacity(READS_DURING_WAIT);
    for _ in 0..READS_DURING_WAIT {
        let start = Instant::now();
        store.get_session(&staying).await.expect("read");
        times.push(start.elapsed());
        if logout.is_finished() {
            break;
        }
    }
    let logout_took = logout.await.expect("logout task");
    times.sort();
    (times, logout_took)
}

fn signal(server: &Server, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.0.id().to_string())
        .status();
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master_port = free_port();
    let _master = start(master_port, dir.path(), &[]);
    let master = master_port.to_string();
    let replicas: Vec<Server> = (0..2)
        .map(|i| {
            let sub = dir.path().join(format!("r{i}"));
            std::fs::create_dir_all(&sub).expect("dir");
            start(free_port(), &sub, &["--replicaof", "127.0.0.1", &master])
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while online_replicas(master_port) < 2 {
        assert!(Instant::now() < deadline, "replicas never came online");
        std::thread::sleep(Duration::from_millis(50));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut table =
        String::from("| wait_replicas | logouts | p50 | p95 | p99 |\n|---|---|---|---|---|\n");
    for wait in [0, 1, 2] {
        let url = format!("redis://127.0.0.1:{master_port}?wait_replicas={wait}");
        let store = RedisStore::connect(&url, &format!("bench{wait}"), Duration::from_secs(1))
            .expect("store");
        let times = runtime.block_on(logouts(&store));
        let row = format!(
            "| {wait} | {LOGOUTS} | {:.0} µs | {:.0} µs | {:.0} µs |\n",
            percentile(&times, 0.50).as_secs_f64() * 1e6,
            percentile(&times, 0.95).as_secs_f64() * 1e6,
            percentile(&times, 0.99).as_secs_f64() * 1e6,
        );
        print!("{row}");
        table.push_str(&row);
    }
    // Both replicas frozen: a logout's WAIT blocks for half the timeout.
    let url = format!("redis://127.0.0.1:{master_port}?wait_replicas=1");
    let store = std::sync::Arc::new(
        RedisStore::connect(&url, "benchfrozen", Duration::from_secs(1)).expect("store"),
    );
    // Warm the connections first (the frozen replicas do not matter yet).
    runtime.block_on(async {
        let key = SessionKey(format!("{:0>64}", "warm"));
        store
            .put_session(&key, &SessionRecord::pending(now_unix(), now_unix() + 60))
            .await
            .expect("put");
        store.delete_session(&key).await.expect("warm logout");
    });
    for replica in &replicas {
        signal(replica, "STOP");
    }
    let (reads, logout_took) = runtime.block_on(reads_during_blocked_wait(store));
    for replica in &replicas {
        signal(replica, "CONT");
    }
    let frozen = format!(
        "| {} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} ms |\n",
        reads.len(),
        percentile(&reads, 0.50).as_secs_f64() * 1e6,
        percentile(&reads, 0.99).as_secs_f64() * 1e6,
        reads.last().copied().unwrap_or_default().as_secs_f64() * 1e6,
        logout_took.as_secs_f64() * 1e3,
    );
    print!("{frozen}");
    let report = format!(
        "# Logout latency with WAIT (bench/redis_wait.rs)\n\n\
         A master and two replicas on loopback (redis-server {}), a debug\n\
         build, {LOGOUTS} sequential logouts each. `wait_replicas=0` is one\n\
         script call; 1 and 2 send the script and a `WAIT` for that many\n\
         replicas in one pipeline, on the store's connection for durable\n\
         writes.\n\n{table}\n\
         ## Session reads while a logout's WAIT is blocked\n\n\
         Both replicas frozen (SIGSTOP), `wait_replicas=1`, store timeout 1 s:\n\
         the logout's `WAIT` blocks for 500 ms and the logout answers an\n\
         error. Session reads issued on the same store meanwhile, one after\n\
         the other until the logout returned (at most {READS_DURING_WAIT}):\n\n\
         | reads | p50 | p99 | max | logout took |\n|---|---|---|---|---|\n{frozen}",
        redis_version()
    );
    if let Err(e) = std::fs::write("bench/results/redis-wait.md", report) {
        eprintln!("cannot write bench/results/redis-wait.md: {e}");
    }
}

fn redis_version() -> String {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into())
}
