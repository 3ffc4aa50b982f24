//! Redis without a single point of failure, for one test: a Sentinel set
//! (a master, two replicas, three sentinels) or a Cluster (three masters,
//! three replicas), all private processes on random loopback ports,
//! stopped on drop. Built from [`RedisServer`], so every process is
//! "ready" only when it answers with its own pid.
//!
//! Timeouts are short (a node counts as down after 1 s) so a failover
//! takes seconds, not the production default of half a minute.

use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::redis_server::RedisServer;
use super::{system_binary, wait_until};

/// A set shared by every test of one test binary that only reads and
/// writes keys (each under its own prefix, see [`unique_prefix`]): started
/// once, on first use. Tests that kill or freeze nodes build their own.
///
/// A `static` is never dropped, so the set's processes are stopped by a
/// watchdog instead: a `sh` holding the read end of a pipe whose write end
/// only this test process holds. When the process exits, however it exits,
/// the pipe closes and the watchdog kills the nodes and removes their
/// scratch directories.
struct Shared<S> {
    set: S,
    _watchdog: Child,
}

/// The watchdog of `nodes`: kills them and removes their scratch
/// directories once this test process has exited.
fn watchdog(nodes: &[&RedisServer]) -> Child {
    let pids: Vec<String> = nodes
        .iter()
        .filter_map(|n| n.pid())
        .map(|p| p.to_string())
        .collect();
    let dirs: Vec<String> = nodes
        .iter()
        .map(|n| format!("'{}'", n.dir().display()))
        .collect();
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "read _ignored; kill -KILL {} 2>/dev/null; rm -rf {}",
            pids.join(" "),
            dirs.join(" ")
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the watchdog of a shared Redis set")
}

/// The Sentinel set shared by this test binary (`None` without redis-server).
pub fn shared_sentinel_set() -> Option<&'static SentinelSet> {
    static SET: OnceLock<Option<Shared<SentinelSet>>> = OnceLock::new();
    SET.get_or_init(|| {
        SentinelSet::start().map(|set| {
            let nodes: Vec<&RedisServer> = set.nodes.iter().chain(&set.sentinels).collect();
            let watchdog = watchdog(&nodes);
            Shared {
                set,
                _watchdog: watchdog,
            }
        })
    })
    .as_ref()
    .map(|shared| &shared.set)
}

/// The Cluster shared by this test binary (`None` without redis-server).
pub fn shared_cluster_set() -> Option<&'static ClusterSet> {
    static SET: OnceLock<Option<Shared<ClusterSet>>> = OnceLock::new();
    SET.get_or_init(|| {
        ClusterSet::start().map(|set| {
            let nodes: Vec<&RedisServer> = set.nodes.iter().collect();
            let watchdog = watchdog(&nodes);
            Shared {
                set,
                _watchdog: watchdog,
            }
        })
    })
    .as_ref()
    .map(|shared| &shared.set)
}

/// A key prefix no other test of this process uses (`NAME-N`), so tests
/// sharing one set never see each other's keys, cursor, lease or values.
pub fn unique_prefix(name: &str) -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{name}-{n}")
}

/// The master's name in the sentinels' configuration.
pub const MASTER_NAME: &str = "sgmaster";

/// A synchronous connection to `127.0.0.1:port`.
pub fn raw(port: u16) -> redis::Connection {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("client");
    let connection = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    connection
}

/// Data nodes sync a new replica at once (the default waits 5 s to
/// gather more replicas).
const SYNC_NOW: [&str; 2] = ["--repl-diskless-sync-delay", "0"];

/// Replicas that `port` (a master) reports as `state=online`: past the
/// initial sync, so `WAIT` can count them.
pub fn online_replicas(port: u16) -> usize {
    let mut con = raw(port);
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut con)
        .unwrap_or_default();
    info.lines()
        .filter(|l| l.starts_with("slave") && l.contains("state=online"))
        .count()
}

/// A master, two replicas and three sentinels watching them (quorum 2).
pub struct SentinelSet {
    /// Data nodes; the first started as the master.
    pub nodes: Vec<RedisServer>,
    pub sentinels: Vec<RedisServer>,
}

impl SentinelSet {
    /// `None` when `redis-server` is missing.
    pub fn start() -> Option<Self> {
        let master = RedisServer::start_with_args(&SYNC_NOW)?;
        let port = master.port().to_string();
        let mut nodes = vec![master];
        for _ in 0..2 {
            nodes.push(RedisServer::start_with_args(&[
                SYNC_NOW[0],
                SYNC_NOW[1],
                "--replicaof",
                "127.0.0.1",
                &port,
            ])?);
        }
        let config = format!(
            "sentinel monitor {MASTER_NAME} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 4000\n\
             sentinel parallel-syncs {MASTER_NAME} 2\n"
        );
        let sentinels = (0..3)
            .map(|_| RedisServer::start_sentinel(&config))
            .collect::<Option<Vec<_>>>()?;
        let set = Self { nodes, sentinels };
        // Ready when both replicas are in sync and every sentinel knows
        // them and the other sentinels (else a failover could not start).
        let ready = wait_until(Duration::from_secs(20), || {
            set.sentinels.iter().all(|s| {
                let mut con = raw(s.port());
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("REPLICAS")
                    .arg(MASTER_NAME)
                    .query(&mut con)
                    .unwrap_or_default();
                let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("SENTINELS")
                    .arg(MASTER_NAME)
                    .query(&mut con)
                    .unwrap_or_default();
                replicas.len() == 2 && others.len() == 2
            }) && set.connected_replicas() == 2
        });
        assert!(ready, "the sentinel set never became ready");
        Some(set)
    }

    /// `redis+sentinel://…` for the three sentinels, keys under `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port()))
            .collect();
        format!(
            "redis+sentinel://{}/{MASTER_NAME}?prefix={prefix}",
            hosts.join(",")
        )
    }

    /// The port the sentinels name as master now (the first that answers).
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let mut con = raw(s.port());
            let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER_NAME)
                .query(&mut con)
                .ok()?;
            addr.map(|(_, port)| port)
        })
    }

    /// The index in `nodes` of the current master.
    pub fn master_index(&self) -> usize {
        let port = self.master_port().expect("a master");
        self.nodes
            .iter()
            .position(|n| n.port() == port)
            .expect("the master is one of ours")
    }

    /// Replicas the current master reports as online.
    pub fn connected_replicas(&self) -> usize {
        self.master_port().map_or(0, online_replicas)
    }

    /// Kills the master and waits until the sentinels name another node
    /// that says it is a master; the new master's index.
    pub fn kill_master_and_wait_for_failover(&mut self) -> usize {
        let old = self.master_index();
        self.nodes[old].stop();
        let old_port = self.nodes[old].port();
        let mut new = None;
        let switched = wait_until(Duration::from_secs(30), || {
            let Some(port) = self.master_port().filter(|p| *p != old_port) else {
                return false;
            };
            let is_master = is_master(port);
            if is_master {
                new = self.nodes.iter().position(|n| n.port() == port);
            }
            is_master && new.is_some()
        });
        assert!(switched, "the sentinels never promoted a replica");
        new.expect("a new master")
    }
}

/// Three masters with one replica each, slots spread by `redis-cli
/// --cluster create`.
pub struct ClusterSet {
    pub nodes: Vec<RedisServer>,
}

impl ClusterSet {
    /// `None` when `redis-server` or `redis-cli` is missing.
    pub fn start() -> Option<Self> {
        let cli = system_binary("redis-cli")?;
        let nodes = (0..6)
            .map(|_| RedisServer::start_cluster_node(&SYNC_NOW))
            .collect::<Option<Vec<_>>>()?;
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = std::process::Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let set = Self { nodes };
        // Ready when every node agrees the cluster is ok and each master
        // has its replica past the initial sync.
        let ok = wait_until(Duration::from_secs(20), || {
            set.nodes.iter().all(|n| cluster_ok(n.port()))
                && set
                    .nodes
                    .iter()
                    .map(|n| online_replicas(n.port()))
                    .sum::<usize>()
                    == 3
        });
        assert!(
            ok,
            "the cluster never reached cluster_state:ok with 3 replicas online"
        );
        Some(set)
    }

    /// `redis+cluster://…` with every node as a seed, keys under `prefix`.
    pub fn url(&self, prefix: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        format!("redis+cluster://{}?prefix={prefix}", hosts.join(","))
    }

    /// The index of the running node serving `slot` as master.
    pub fn master_of_slot(&mut self, slot: u16) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        live.into_iter().find(|&i| {
            let mut con = raw(self.nodes[i].port());
            let nodes: String = redis::cmd("CLUSTER")
                .arg("NODES")
                .query(&mut con)
                .unwrap_or_default();
            nodes.lines().any(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                fields
                    .get(2)
                    .is_some_and(|f| f.contains("myself") && f.contains("master"))
                    && fields.get(7) == Some(&"connected")
                    && fields[8..].iter().any(|range| slot_in(range, slot))
            })
        })
    }

    /// `CLUSTER KEYSLOT key`.
    pub fn slot_of(&self, key: &str) -> u16 {
        let mut con = raw(self.nodes[0].port());
        redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut con)
            .expect("keyslot")
    }

    /// `CLUSTER MYID` of node `index`.
    pub fn node_id(&self, index: usize) -> String {
        let mut con = raw(self.nodes[index].port());
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut con)
            .expect("myid")
    }
}

/// Whether the node on `port` says `ROLE` master.
pub fn is_master(port: u16) -> bool {
    let mut con = raw(port);
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap_or_default();
    matches!(role.first(), Some(redis::Value::BulkString(b)) if b == b"master")
}

/// `cluster_state:ok` in `CLUSTER INFO` on `port`.
pub fn cluster_ok(port: u16) -> bool {
    let mut con = raw(port);
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut con)
        .unwrap_or_default();
    info.contains("cluster_state:ok")
}

/// Whether a `CLUSTER NODES` slot field (`5461` or `0-5460`) holds `slot`.
fn slot_in(range: &str, slot: u16) -> bool {
    match range.split_once('-') {
        Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
            (Ok(a), Ok(b)) => (a..=b).contains(&slot),
            _ => false,
        },
        None => range.parse::<u16>() == Ok(slot),
    }
}
