//! The Redis store: state shared by several gateways behind a load balancer.
//!
//! Why: instances must agree on sessions, on which transfer claimed a memo
//! (first claim wins across processes) and on which instance follows the
//! chain. Redis gives that with atomic Lua scripts and native key expiry.
//! Three set-ups ([`RedisSpec`], parsed from `store:`): one Redis
//! (`redis://`), a master found through Sentinel (`redis+sentinel://`), or
//! a Redis Cluster (`redis+cluster://`); `rediss…` for TLS. The `redis`
//! crate's own Sentinel and async Cluster clients do the discovery,
//! `MOVED`/`ASK` redirects and slot-map refreshes.
//!
//! Key layout (`{prefix}` is configurable, so several deployments can share
//! one Redis):
//! - `{prefix}:s:{session_key}`: hash `created_at`, `expires_at`,
//!   `memo_expires_at` (decimal), `account`, `memo`, `login` (JSON),
//!   `revoked_reason`, each
//!   optional field absent when `None`; expires at `expires_at` (EXPIREAT).
//! - `{prefix}:c:{canonical memo}`: hash `session`, `expires_at`,
//!   `claimed_by`; expires at `expires_at` plus the challenge's ttl.
//! - `{prefix}:w:{session_key}`: the session's wallet challenge (JSON
//!   string), expiring at its `expires_at` plus a grace; taken with GETDEL.
//! - `{prefix}:cursor`: the follower's last processed block (one key).
//! - `{prefix}:lease:follower`: the follower lease holder (PX ttl).
//! - `{prefix}:v:{name}`: a named value (no TTL), e.g. the assertion keys.
//! - `{prefix}:pending`: pending wallet confirmations (sorted set).
//! - channel `{prefix}:revoked`: session keys deleted by any instance (one
//!   subscriber per store; whether it is subscribed right now is reported by
//!   `revocation_feed_status`, so session caches stop while it is down). The
//!   subscriber PINGs its connection every op timeout: no PONG within one
//!   more counts as down (a frozen server or a blackholed path raises no
//!   error by itself), and it reconnects.
//!
//! **Cluster: one hash tag per deployment.** On a Cluster every key is
//! spelled with the prefix in braces, `{steemgate}:s:…`, `{steemgate}:c:…`:
//! Redis hashes only the part in braces, so all keys of one deployment live
//! in one slot. That is what makes every atomic operation a one-slot script:
//! a claim is found by its memo alone (the follower sees nothing else) and
//! must write the session the challenge names, and issuing a challenge
//! writes both; no split of the two keys by session or by memo can put both
//! in one slot, because each is random and chosen separately. A script
//! touching two slots would be refused (`CROSSSLOT`), and two separate
//! writes would lose "first claim wins". The price is that one deployment's
//! keys live on one master (and its replicas): the Cluster gives failover
//! and spreads *deployments* (prefixes) over masters, not one deployment's
//! sessions. That fits the load: with a warm session cache an
//! authenticated request sends no command at all, so Redis sees logins,
//! logouts and cache misses. Without a Cluster the braces are left out, so
//! the keys of existing single-Redis deployments keep their names. The
//! revocation channel uses classic `PUBLISH`, which a Cluster delivers to
//! every node, so the subscriber may listen on any node.
//!
//! **Failover.** Replication is asynchronous: a write acknowledged by a
//! master that dies before a replica has it is lost when that replica is
//! promoted. A lost login only asks the visitor to log in again; a lost
//! logout or revocation would re-open a session, so those two wait
//! (`WAIT`) until `wait_replicas` replicas have them (default 1 with
//! Sentinel and Cluster) and report an error otherwise: the gateway then
//! says the logout failed instead of pretending it worked. The script and
//! its `WAIT` go as one pipeline on a connection used for nothing else
//! (the durable lane): `WAIT` counts the writes of the connection it runs
//! on, so it always counts this one, and while it blocks (a replica down)
//! no other store call waits behind it. With Sentinel,
//! a connection is dropped after any failure, and the next call asks the
//! sentinels for the master again; a demoted master's `READONLY` answer is
//! such a failure.
//!
//! Hashes instead of JSON strings so the Lua scripts edit single fields and
//! never re-encode numbers (Lua's doubles would mangle large integers).
//!
//! Every call is bounded by `op_timeout`: an unreachable Redis answers an
//! error quickly, never a hang and never "no such session". Connections are
//! created lazily, per tokio runtime that uses the store (one for every
//! call, one for the writes that `WAIT`): pingora runs each service on its
//! own runtime, and a connection's I/O driver must live in a runtime that
//! keeps running. The threads of a per-thread runtime count as one runtime. On one Redis they are
//! `ConnectionManager`s (they reconnect by themselves after a restart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncCommands, AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    Script, TlsCertificates, TlsMode,
};
use tokio::sync::{broadcast, watch};

use super::challenge_keep_until;
use super::memo::canonical_memo;
use super::{
    ChainCursor, Claim, ClaimOutcome, Grant, LoginProof, PendingConfirmation, SessionKey,
    SessionRecord, Store, StoreError, StoreResult, WALLET_CHALLENGE_GRACE_SECS, WalletChallenge,
};
use crate::clock::{UnixTime, now_unix};

/// The latest expiry Redis is given (9999-12-31): larger values would make
/// EXPIREAT fail after the other commands of a transaction already ran.
use super::MAX_EXPIRY;

/// How many revocations a slow session cache may fall behind before it
/// sees `Lagged` (and must drop everything).
const REVOCATION_BUFFER: usize = 1024;

/// How often a claim re-reads a challenge whose session changed under it.
const CLAIM_ATTEMPTS: usize = 3;

/// Pause before the revocation subscriber reconnects.
const SUBSCRIBER_RETRY: Duration = Duration::from_millis(500);

/// Issues a challenge. KEYS: session hash, challenge hash. ARGV: session
/// key, memo as given, expires_at, keep_until, now.
const ISSUE_SCRIPT: &str = r#"
local session_expires = redis.call('HGET', KEYS[1], 'expires_at')
if (not session_expires) or tonumber(session_expires) <= tonumber(ARGV[5]) then
  return 'no_session'
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 'memo_in_use'
end
redis.call('HSET', KEYS[2], 'session', ARGV[1], 'expires_at', ARGV[3])
redis.call('EXPIREAT', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[1], 'memo', ARGV[2], 'memo_expires_at', ARGV[3])
if redis.call('HEXISTS', KEYS[1], 'account') == 0
   and tonumber(session_expires) < tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'expires_at', ARGV[4])
  redis.call('EXPIREAT', KEYS[1], ARGV[4])
end
return 'ok'
"#;

/// Claims a challenge. KEYS: challenge hash, session hash (the session the
/// caller read from the challenge; on a Cluster it shares the challenge's
/// hash tag, so both keys are in one slot). ARGV: session id as read,
/// account, block_time, now, new session expiry, login proof JSON.
///
/// Every read comes before the first write, and both keys are declared, so
/// a Cluster node that does not own the slot (e.g. during a migration)
/// refuses the whole script instead of claiming the memo and then failing
/// on the session. `moved` means the challenge now names another session:
/// the caller reads it again.
const CLAIM_SCRIPT: &str = r#"
local challenge = redis.call('HMGET', KEYS[1], 'session', 'expires_at', 'claimed_by')
if not challenge[1] then
  return {'unknown'}
end
if challenge[1] ~= ARGV[1] then
  return {'moved'}
end
if challenge[3] then
  return {'claimed'}
end
if tonumber(ARGV[3]) >= tonumber(challenge[2]) then
  return {'expired'}
end
local session_expires = redis.call('HGET', KEYS[2], 'expires_at')
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[2])
if (not session_expires) or tonumber(session_expires) <= tonumber(ARGV[4]) then
  return {'gone', challenge[1]}
end
redis.call('HSET', KEYS[2], 'account', ARGV[2], 'login', ARGV[6], 'expires_at', ARGV[5])
redis.call('HDEL', KEYS[2], 'memo')
redis.call('EXPIREAT', KEYS[2], ARGV[5])
return {'ok', challenge[1]}
"#;

/// Logs a live session in. KEYS: session hash. ARGV: now, account, login
/// proof JSON, new expiry.
const LOGIN_SCRIPT: &str = r#"
local session_expires = redis.call('HGET', KEYS[1], 'expires_at')
if (not session_expires) or tonumber(session_expires) <= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'account', ARGV[2], 'login', ARGV[3], 'expires_at', ARGV[4])
redis.call('HDEL', KEYS[1], 'memo', 'revoked_reason')
redis.call('EXPIREAT', KEYS[1], ARGV[4])
return 1
"#;

/// Undoes an unconfirmed login. KEYS: session hash. ARGV: now, expected
/// login proof JSON, reason, revocation channel, session key.
const REVOKE_LOGIN_SCRIPT: &str = r#"
local session = redis.call('HMGET', KEYS[1], 'expires_at', 'login')
if (not session[1]) or tonumber(session[1]) <= tonumber(ARGV[1]) then
  return 0
end
if session[2] ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[1], 'account', 'login')
redis.call('HSET', KEYS[1], 'revoked_reason', ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"#;

/// Replaces a session record. KEYS: session hash. ARGV: expiry, then
/// field, value pairs.
const PUT_SESSION_SCRIPT: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
"#;

/// Deletes a session and tells every instance. KEYS: session hash.
/// ARGV: revocation channel, session key. Answers 1 if it existed.
const DELETE_SESSION_SCRIPT: &str = r#"
local deleted = redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2])
return deleted
"#;

/// Takes the lease if free, renews it if `holder` has it. KEYS: lease key.
/// ARGV: holder, ttl in milliseconds.
const LEASE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#;

/// Compare-and-set of a named value. KEYS: the value key. ARGV: `1` if a
/// current value is expected (else `0`), the expected value, the new value.
const SWAP_VALUE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then
    return 0
  end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

/// Stores a grant: KEYS: the grant key. ARGV: value, expires_at (Unix
/// seconds). Replaces any previous grant and its use mark.
const PUT_GRANT_SCRIPT: &str = r#"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1
"#;

/// First use of a grant: KEYS: the grant key. ARGV: mark, keep_until, now.
/// Answers nil when absent or expired, else {value, expires_at, mark or ''}
/// as they were before; marks (and extends) only an unmarked grant.
const USE_GRANT_SCRIPT: &str = r#"
local f = redis.call('HMGET', KEYS[1], 'v', 'e', 'm')
if not f[1] or not f[2] or tonumber(f[2]) <= tonumber(ARGV[3]) then
  return false
end
if not f[3] then
  redis.call('HSET', KEYS[1], 'm', ARGV[1], 'e', ARGV[2])
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  return {f[1], f[2], ''}
end
return {f[1], f[2], f[3]}
"#;

static PUT_GRANT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(PUT_GRANT_SCRIPT));
static USE_GRANT: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(USE_GRANT_SCRIPT));

/// Which Redis set-up the store talks to.
#[derive(Clone, PartialEq, Eq)]
pub enum RedisTopology {
    /// One Redis (`redis://`, `rediss://`): the URL as the `redis` crate
    /// reads it (our own query parameters removed).
    Single { url: String },
    /// A master found through Sentinel (`redis+sentinel://`).
    Sentinel {
        /// The sentinels to ask, `(host, port)`.
        sentinels: Vec<(String, u16)>,
        /// The master's name in the sentinels' configuration.
        master: String,
        /// The database number on the data nodes.
        db: i64,
        /// The sentinels' password when it differs from the data nodes'.
        sentinel_password: Option<String>,
    },
    /// Seed nodes of a Redis Cluster (`redis+cluster://`).
    Cluster { nodes: Vec<(String, u16)> },
}

impl std::fmt::Debug for RedisTopology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never a password: the single URL without its credentials.
        match self {
            Self::Single { url } => {
                let shown = url::Url::parse(url).map_or_else(
                    |_| "(unparsable)".to_string(),
                    |mut url| {
                        let _ = url.set_password(None);
                        url.to_string()
                    },
                );
                f.debug_struct("Single").field("url", &shown).finish()
            }
            Self::Sentinel {
                sentinels,
                master,
                db,
                sentinel_password,
            } => f
                .debug_struct("Sentinel")
                .field("sentinels", sentinels)
                .field("master", master)
                .field("db", db)
                .field("sentinel_password", &sentinel_password.is_some())
                .finish(),
            Self::Cluster { nodes } => f.debug_struct("Cluster").field("nodes", nodes).finish(),
        }
    }
}

/// A checked `store:` Redis location: where, with which credentials, under
/// which key prefix, and how many replicas must acknowledge a logout.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSpec {
    pub topology: RedisTopology,
    /// TLS to every node (`rediss…`).
    pub tls: bool,
    /// The data nodes' ACL user, if any.
    pub username: Option<String>,
    /// The data nodes' password (from the URL or `password_file`).
    pub password: Option<String>,
    /// The key prefix (`?prefix=`, default `steemgate`).
    pub prefix: String,
    /// With TLS: the PEM roots to trust instead of the system's
    /// (`?ca_file=`), e.g. a private CA.
    pub ca_pem: Option<Vec<u8>>,
    /// Replicas that must acknowledge (`WAIT`) a logout or a revocation
    /// before it counts as done (`?wait_replicas=`; default 1 with Sentinel
    /// and Cluster, 0 on a single Redis).
    pub wait_replicas: u32,
}

impl std::fmt::Debug for RedisSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the passwords.
        let mode = match &self.topology {
            RedisTopology::Single { .. } => "single",
            RedisTopology::Sentinel { .. } => "sentinel",
            RedisTopology::Cluster { .. } => "cluster",
        };
        f.debug_struct("RedisSpec")
            .field("mode", &mode)
            .field("tls", &self.tls)
            .field("prefix", &self.prefix)
            .field("wait_replicas", &self.wait_replicas)
            .field("ca_file", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// The most replicas a logout may be made to wait for.
const MAX_WAIT_REPLICAS: u32 = 16;

impl RedisSpec {
    /// Parses a `store:` value: `redis://`, `rediss://`,
    /// `redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]/MASTER[/DB]`,
    /// `redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT…]` (and the
    /// `rediss+…` forms), with the query parameters `prefix`,
    /// `password_file`, `sentinel_password`, `sentinel_password_file`,
    /// `wait_replicas`, `ca_file` (TLS only). Relative files are read from
    /// `base`.
    /// Errors never echo a password.
    pub fn parse(raw: &str, base: &std::path::Path) -> Result<Self, String> {
        let raw = raw.trim();
        let (scheme, rest) = raw
            .split_once("://")
            .ok_or("expected redis://, rediss://, redis+sentinel:// or redis+cluster://")?;
        let (mode, tls) = match scheme {
            "redis" => ("single", false),
            "rediss" => ("single", true),
            "redis+sentinel" => ("sentinel", false),
            "rediss+sentinel" => ("sentinel", true),
            "redis+cluster" => ("cluster", false),
            "rediss+cluster" => ("cluster", true),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}: expected redis, rediss, redis+sentinel, \
                     rediss+sentinel, redis+cluster or rediss+cluster"
                ));
            }
        };
        // The credentials end at the LAST `@`, cut before any other parsing:
        // a password may hold unescaped `/`, `?` or `@`, and no later step
        // (nor any error) sees it. An `@` in a query value is written `%40`.
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        // A fragment means nothing here, and the redis crate reads
        // `#insecure` as "skip certificate checks": refuse every fragment.
        if rest.contains('#') {
            return Err(
                "a Redis URL takes no #fragment (`#insecure` would turn TLS certificate \
                 checks off; write a `#` inside a query value as `%23`)"
                    .to_string(),
            );
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let mut prefix = "steemgate".to_string();
        let mut password_file = None;
        let mut sentinel_password = None;
        let mut sentinel_password_file = None;
        let mut wait_replicas = None;
        let mut ca_file = None;
        let mut passthrough = Vec::new();
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "prefix" => {
                    if value.is_empty() || value.contains(['{', '}']) || value.len() > 64 {
                        return Err(
                            "`prefix` must be 1 to 64 characters without braces".to_string()
                        );
                    }
                    prefix = value.into_owned();
                }
                "password_file" => password_file = Some(value.into_owned()),
                "ca_file" if tls => ca_file = Some(value.into_owned()),
                "ca_file" => {
                    return Err("`ca_file` needs TLS: use a rediss… scheme".to_string());
                }
                "sentinel_password" if mode == "sentinel" => {
                    sentinel_password = Some(value.into_owned())
                }
                "sentinel_password_file" if mode == "sentinel" => {
                    sentinel_password_file = Some(value.into_owned())
                }
                "wait_replicas" => {
                    let n: u32 = value
                        .parse()
                        .ok()
                        .filter(|n| *n <= MAX_WAIT_REPLICAS)
                        .ok_or(format!(
                            "`wait_replicas` must be a number from 0 to {MAX_WAIT_REPLICAS}"
                        ))?;
                    wait_replicas = Some(n);
                }
                // The redis crate's own single-node URL parameters.
                "insecure" => {
                    return Err(
                        "`insecure` is not accepted: TLS certificate checks cannot be \
                         turned off (use `ca_file` for a private CA)"
                            .to_string(),
                    );
                }
                "protocol" if mode == "single" => {
                    passthrough.push((key.into_owned(), value.into_owned()))
                }
                other => return Err(format!("unknown query parameter {other:?}")),
            }
        }
        let read_secret = |what: &str, path: &str| -> Result<String, String> {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the {what} file {}: {e}", path.display()))?;
            let secret = text.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                return Err(format!("the {what} file {} is empty", path.display()));
            }
            Ok(secret.to_string())
        };
        let ca_pem = match &ca_file {
            None => None,
            Some(file) => {
                let path = base.join(file);
                let pem = std::fs::read(&path)
                    .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
                if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                    return Err(format!(
                        "the CA file {} holds no PEM certificate",
                        path.display()
                    ));
                }
                Some(pem)
            }
        };
        let (hosts, path) = match before_query.split_once('/') {
            Some((a, p)) => (a, p),
            None => (before_query, ""),
        };
        let decode = |s: &str| -> Result<String, String> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "the credentials are not valid UTF-8 once decoded".to_string())
        };
        let (username, mut password) = match userinfo {
            None => (None, None),
            Some(info) => {
                let (user, pass) = match info.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (info, None),
                };
                let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
                let pass = pass.filter(|p| !p.is_empty()).map(decode).transpose()?;
                (user, pass)
            }
        };
        if let Some(file) = &password_file {
            if password.is_some() {
                return Err("give the password in the URL or in `password_file`, not both".into());
            }
            password = Some(read_secret("password", file)?);
        }
        if let Some(file) = &sentinel_password_file {
            if sentinel_password.is_some() {
                return Err(
                    "give `sentinel_password` or `sentinel_password_file`, not both".into(),
                );
            }
            sentinel_password = Some(read_secret("sentinel password", file)?);
        }
        let topology = match mode {
            "single" => {
                // The redis crate reads the rest (host, port, db, user,
                // password) itself; check it here so `steemgate check` sees it.
                let mut url = url::Url::parse(&format!("{scheme}://{before_query}"))
                    .map_err(|e| format!("invalid Redis URL: {e}"))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err("the Redis URL needs a host".into());
                }
                // The credentials go in through `Url`, which escapes them.
                if let Some(user) = &username {
                    url.set_username(user)
                        .map_err(|()| "invalid Redis URL".to_string())?;
                }
                if password_file.is_none() && password.is_some() {
                    url.set_password(password.as_deref())
                        .map_err(|()| "invalid Redis URL".to_string())?;
                }
                if passthrough.is_empty() {
                    url.set_query(None);
                } else {
                    url.query_pairs_mut().clear().extend_pairs(&passthrough);
                }
                let url = url.to_string();
                redis::Client::open(url.as_str()).map_err(|e| format!("invalid Redis URL: {e}"))?;
                RedisTopology::Single { url }
            }
            "sentinel" => {
                let sentinels = parse_hosts(hosts, 26379)?;
                let mut parts = path.split('/');
                let master = parts.next().unwrap_or_default();
                if master.is_empty() {
                    return Err(
                        "a Sentinel URL names the master after the hosts: …/MASTER_NAME[/DB]"
                            .into(),
                    );
                }
                let master = decode(master)?;
                let db = match parts.next() {
                    None | Some("") => 0,
                    Some(db) => db
                        .parse::<i64>()
                        .ok()
                        .filter(|db| (0..=15).contains(db))
                        .ok_or("the database number after the master name must be 0 to 15")?,
                };
                if parts.next().is_some() {
                    return Err("a Sentinel URL path is /MASTER_NAME[/DB], nothing more".into());
                }
                RedisTopology::Sentinel {
                    sentinels,
                    master,
                    db,
                    sentinel_password,
                }
            }
            _ => {
                if !path.is_empty() {
                    return Err(
                        "a Cluster URL has no path: Redis Cluster has only database 0".into(),
                    );
                }
                RedisTopology::Cluster {
                    nodes: parse_hosts(hosts, 6379)?,
                }
            }
        };
        let default_wait = match topology {
            RedisTopology::Single { .. } => 0,
            _ => 1,
        };
        Ok(Self {
            topology,
            tls,
            username: if mode == "single" { None } else { username },
            password: if mode == "single" && password_file.is_none() {
                None
            } else {
                password
            },
            prefix,
            ca_pem,
            wait_replicas: wait_replicas.unwrap_or(default_wait),
        })
    }
}

/// `HOST:PORT[,HOST:PORT…]` (IPv6 hosts in brackets); a missing port is
/// `default_port`.
fn parse_hosts(list: &str, default_port: u16) -> Result<Vec<(String, u16)>, String> {
    let mut hosts = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("an empty host in the host list".into());
        }
        let (host, port) = if let Some(rest) = item.strip_prefix('[') {
            let (host, after) = rest
                .split_once(']')
                .ok_or(format!("{item:?}: unclosed [ in an IPv6 address"))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or(format!("{item:?}: expected :PORT after ]"))?,
                    ),
                ),
            }
        } else {
            match item.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (item, None),
            }
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(format!("{item:?}: not a host name or address"));
        }
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(format!("{item:?}: the port must be 1 to 65535"))?,
        };
        hosts.push((host.to_string(), port));
    }
    Ok(hosts)
}

/// The store of gateways sharing one Redis (single, Sentinel or Cluster).
pub struct RedisStore {
    backend: Arc<Backend>,
    prefix: String,
    /// What every key starts with: the prefix, in braces on a Cluster (a
    /// hash tag: every key of one deployment in one slot).
    key_base: String,
    op_timeout: Duration,
    wait_replicas: u32,
    /// Lazily created connections: per tokio runtime using the store, one
    /// shared by every call and one for the writes that `WAIT` ([`Lane`]).
    connections: Mutex<HashMap<(tokio::runtime::Id, Lane), Connection>>,
    issue_script: Script,
    claim_script: Script,
    lease_script: Script,
    swap_value_script: Script,
    login_script: Script,
    put_session_script: Script,
    revoked: broadcast::Sender<SessionKey>,
    /// `true` while the subscriber is subscribed to the revocation channel.
    feed_up: watch::Sender<bool>,
    /// Started by the first [`Store::revocations`] call.
    subscriber_started: OnceLock<()>,
    /// Dropped with the store, which stops the subscriber task.
    alive: watch::Sender<()>,
}

/// How the store reaches Redis.
enum Backend {
    /// Boxed: far larger than the other variants' handles.
    Single(Box<redis::Client>),
    /// Asked for the current master whenever a connection is (re)made.
    /// One client per configured sentinel.
    Sentinel(Vec<tokio::sync::Mutex<SentinelClient>>),
    Cluster {
        client: Box<ClusterClient>,
        /// One client per seed node, for the revocation subscriber (a
        /// classic `PUBLISH` on a Cluster reaches every node).
        seeds: Vec<redis::Client>,
    },
}

/// Which of a runtime's two connections a call uses.
///
/// `WAIT` blocks the connection it is sent on until the replicas answer
/// (up to half the op timeout while one is down), and Redis answers nothing
/// else on that connection meanwhile. So the writes that wait for replicas
/// (logouts, revocations) go with their `WAIT` in one pipeline on a
/// connection of their own, and every other call never queues behind them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Lane {
    /// Every call except the durable writes.
    Shared,
    /// A durable write and its `WAIT`, one pipeline at a time.
    Durable,
}

/// One runtime's connection, whatever the set-up.
#[derive(Clone)]
enum Connection {
    /// Reconnects by itself (one Redis at a fixed address).
    Manager(ConnectionManager),
    /// To the master Sentinel named; dropped after any failure so the
    /// next call asks the sentinels again.
    Master(MultiplexedConnection),
    /// Follows `MOVED`/`ASK` and refreshes the slot map by itself.
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Manager(c) => c.req_packed_command(cmd),
            Self::Master(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Master(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(c) => c.get_db(),
            Self::Master(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn tls_addr(host: &str, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_string(), port)
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (any form [`RedisSpec::parse`] reads),
    /// keys under `prefix`, every call bounded by `op_timeout`.
    pub fn connect(url: &str, prefix: &str, op_timeout: Duration) -> StoreResult<Self> {
        let mut spec = RedisSpec::parse(url, std::path::Path::new("."))
            .map_err(|e| StoreError::new(format!("invalid Redis URL: {e}")))?;
        spec.prefix = prefix.to_string();
        Self::open(&spec, op_timeout)
    }

    /// A store as `spec` says, every call bounded by `op_timeout`.
    ///
    /// Does not connect: connections open on first use, inside whichever
    /// tokio runtime uses the store. Call [`Store::ping`] to check Redis.
    pub fn open(spec: &RedisSpec, op_timeout: Duration) -> StoreResult<Self> {
        if spec.prefix.is_empty() {
            return Err(StoreError::new("the Redis key prefix must not be empty"));
        }
        // Errors never echo the URL, which may hold a password.
        let bad = |e: redis::RedisError| StoreError::new(format!("invalid Redis set-up: {e}"));
        let certificates = || TlsCertificates {
            client_tls: None,
            root_cert: spec.ca_pem.clone(),
        };
        let client_for = |info: redis::ConnectionInfo| match spec.ca_pem {
            Some(_) => redis::Client::build_with_tls(info, certificates()),
            None => redis::Client::open(info),
        };
        let (backend, key_base) = match &spec.topology {
            RedisTopology::Single { url } => {
                let mut info = url.as_str().into_connection_info().map_err(bad)?;
                if let Some(password) = &spec.password {
                    let settings = info.redis_settings().clone().set_password(password);
                    info = info.set_redis_settings(settings);
                }
                (
                    Backend::Single(Box::new(client_for(info).map_err(bad)?)),
                    spec.prefix.clone(),
                )
            }
            RedisTopology::Sentinel {
                sentinels,
                master,
                db,
                sentinel_password,
            } => {
                // One client per sentinel, asked all at once (see
                // `master_client`): the crate's own client takes the
                // sentinels' answers in list order, so one that hangs at
                // the head of the list would hold up every lookup.
                let one_sentinel = |addr: redis::ConnectionAddr| -> StoreResult<SentinelClient> {
                    let mut builder =
                        SentinelClientBuilder::new([addr], master, SentinelServerType::Master)
                            .map_err(bad)?
                            .set_client_to_redis_db(*db);
                    if spec.tls {
                        builder = builder
                            .set_client_to_redis_tls_mode(TlsMode::Secure)
                            .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                    }
                    if spec.ca_pem.is_some() {
                        builder = builder
                            .set_client_to_redis_certificates(certificates())
                            .set_client_to_sentinel_certificates(certificates());
                    }
                    if let Some(user) = &spec.username {
                        builder = builder.set_client_to_redis_username(user);
                    }
                    if let Some(password) = &spec.password {
                        builder = builder.set_client_to_redis_password(password);
                    }
                    // Only the sentinels' own password: the data nodes' is never
                    // sent to them (and sentinels without a password work).
                    if let Some(password) = sentinel_password {
                        builder = builder.set_client_to_sentinel_password(password);
                    }
                    builder.build().map_err(bad)
                };
                let clients = sentinels
                    .iter()
                    .map(|(host, port)| one_sentinel(tls_addr(host, *port, spec.tls)))
                    .collect::<StoreResult<Vec<_>>>()?;
                (
                    Backend::Sentinel(clients.into_iter().map(tokio::sync::Mutex::new).collect()),
                    spec.prefix.clone(),
                )
            }
            RedisTopology::Cluster { nodes } => {
                let infos = nodes
                    .iter()
                    .map(|(host, port)| {
                        let mut settings = RedisConnectionInfo::default();
                        if let Some(user) = &spec.username {
                            settings = settings.set_username(user);
                        }
                        if let Some(password) = &spec.password {
                            settings = settings.set_password(password);
                        }
                        tls_addr(host, *port, spec.tls)
                            .into_connection_info()
                            .map(|info| info.set_redis_settings(settings))
                    })
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .map_err(bad)?;
                let seeds = infos
                    .iter()
                    .map(|info| client_for(info.clone()))
                    .collect::<redis::RedisResult<Vec<_>>>()
                    .map_err(bad)?;
                let mut builder = ClusterClientBuilder::new(infos)
                    .connection_timeout(op_timeout)
                    .response_timeout(op_timeout);
                if let Some(user) = &spec.username {
                    builder = builder.username(user);
                }
                if let Some(password) = &spec.password {
                    builder = builder.password(password);
                }
                if spec.tls {
                    builder = builder.tls(TlsMode::Secure);
                }
                if spec.ca_pem.is_some() {
                    builder = builder.certs(certificates());
                }
                (
                    Backend::Cluster {
                        client: Box::new(builder.build().map_err(bad)?),
                        seeds,
                    },
                    format!("{{{}}}", spec.prefix),
                )
            }
        };
        let (revoked, _) = broadcast::channel(REVOCATION_BUFFER);
        let (alive, _) = watch::channel(());
        let (feed_up, _) = watch::channel(false);
        Ok(Self {
            backend: Arc::new(backend),
            prefix: spec.prefix.clone(),
            key_base,
            op_timeout,
            wait_replicas: spec.wait_replicas,
            connections: Mutex::new(HashMap::new()),
            issue_script: Script::new(ISSUE_SCRIPT),
            claim_script: Script::new(CLAIM_SCRIPT),
            lease_script: Script::new(LEASE_SCRIPT),
            swap_value_script: Script::new(SWAP_VALUE_SCRIPT),
            login_script: Script::new(LOGIN_SCRIPT),
            put_session_script: Script::new(PUT_SESSION_SCRIPT),
            revoked,
            feed_up,
            subscriber_started: OnceLock::new(),
            alive,
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}:s:{key}`.
    pub fn session_key(&self, key: &SessionKey) -> String {
        format!("{}:s:{}", self.key_base, key.as_str())
    }

    /// `{prefix}:c:{canonical memo}`.
    pub fn challenge_key(&self, memo: &str) -> String {
        format!("{}:c:{}", self.key_base, canonical_memo(memo))
    }

    /// `{prefix}:w:{key}`.
    pub fn wallet_challenge_key(&self, key: &SessionKey) -> String {
        format!("{}:w:{}", self.key_base, key.as_str())
    }

    /// `{prefix}:pending`: a sorted set of JSON pending confirmations,
    /// scored by expiration.
    pub fn pending_key(&self) -> String {
        format!("{}:pending", self.key_base)
    }

    /// `{prefix}:cursor`.
    pub fn cursor_key(&self) -> String {
        format!("{}:cursor", self.key_base)
    }

    /// `{prefix}:lease:follower`.
    pub fn lease_key(&self) -> String {
        format!("{}:lease:follower", self.key_base)
    }

    /// `{prefix}:v:{name}`, a named value.
    pub fn grant_key(&self, name: &str) -> String {
        format!("{}:g:{name}", self.key_base)
    }

    /// The key of a named value.
    pub fn value_key(&self, name: &str) -> String {
        format!("{}:v:{name}", self.key_base)
    }

    /// `{prefix}:revoked`, the pub/sub channel of revoked session keys.
    pub fn revocation_channel(&self) -> String {
        format!("{}:revoked", self.key_base)
    }

    /// The runtime whose connections a call uses. The threads of a
    /// per-thread runtime (pingora's no-steal runtime, `work_stealing: off`)
    /// are each a tokio runtime of their own, but they run and stop together
    /// as one service, like the workers of a work-stealing runtime: they
    /// share the connections of their first thread. One connection per
    /// service, as with work stealing, so that a Redis restart is noticed and
    /// recovered from once per service, not once per thread (each recovery
    /// costs one failed call).
    fn runtime_id() -> StoreResult<tokio::runtime::Id> {
        let current = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::new("the Redis store was used outside a tokio runtime"))?;
        Ok(pingora_runtime::no_steal_handles()
            .and_then(|threads| threads.first().map(tokio::runtime::Handle::id))
            .unwrap_or_else(|| current.id()))
    }

    /// This runtime's connection for `lane`, created on first use.
    async fn connection(&self, lane: Lane) -> StoreResult<Connection> {
        let runtime = Self::runtime_id()?;
        if let Some(connection) = self
            .connections
            .lock()
            .map_err(|_| StoreError::new("Redis connection table poisoned"))?
            .get(&(runtime, lane))
        {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.op_timeout))
            .set_response_timeout(Some(self.op_timeout));
        let connection = match &*self.backend {
            Backend::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(self.op_timeout))
                    .set_response_timeout(Some(self.op_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(self.op_timeout);
                Connection::Manager(
                    ConnectionManager::new_lazy_with_config(client.as_ref().clone(), config)
                        .map_err(|e| {
                            StoreError::new(format!("Redis connection setup failed: {e}"))
                        })?,
                )
            }
            Backend::Sentinel(sentinels) => {
                let client = master_client(sentinels).await.map_err(|e| {
                    StoreError::new(format!("no Redis master from the sentinels: {e}"))
                })?;
                Connection::Master(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await
                        .map_err(|e| {
                            StoreError::new(format!("cannot connect to the Redis master: {e}"))
                        })?,
                )
            }
            Backend::Cluster { client, .. } => Connection::Cluster(
                client
                    .get_async_connection()
                    .await
                    .map_err(|e| StoreError::new(format!("cannot connect to the Cluster: {e}")))?,
            ),
        };
        let mut connections = self
            .connections
            .lock()
            .map_err(|_| StoreError::new("Redis connection table poisoned"))?;
        Ok(connections
            .entry((runtime, lane))
            .or_insert(connection)
            .clone())
    }

    /// Forgets this runtime's connections to a master Sentinel named (both
    /// lanes: a failure on one usually means the master changed, and a
    /// durable connection left on a dead master would fail the next
    /// logout), so the next call asks the sentinels again.
    fn forget_master(&self) {
        if matches!(*self.backend, Backend::Sentinel(_))
            && let Ok(runtime) = Self::runtime_id()
            && let Ok(mut connections) = self.connections.lock()
        {
            connections.remove(&(runtime, Lane::Shared));
            connections.remove(&(runtime, Lane::Durable));
        }
    }

    /// Runs `op` on this runtime's connection within the op timeout.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> StoreResult<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        self.run_checked(what, |con| async move { op(con).await.map_err(into_store) })
            .await
    }

    /// Like [`RedisStore::run`] for an `op` that checks more than Redis
    /// answers (e.g. a `WAIT` count).
    async fn run_checked<T, F, Fut>(&self, what: &str, op: F) -> StoreResult<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        self.run_on(Lane::Shared, what, op).await
    }

    /// Runs `op` on this runtime's `lane` connection within the op timeout.
    async fn run_on<T, F, Fut>(&self, lane: Lane, what: &str, op: F) -> StoreResult<T>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = StoreResult<T>>,
    {
        let attempt = async { op(self.connection(lane).await?).await };
        let result = match tokio::time::timeout(self.op_timeout, attempt).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => Err(StoreError::new(format!("Redis {what} failed: {}", e.0))),
            Err(_) => Err(StoreError::new(format!(
                "Redis {what} timed out after {:?}",
                self.op_timeout
            ))),
        };
        self.forget_master();
        result
    }

    /// Runs a prepared Lua script that answers 1 for "done", 0 for "not done".
    async fn run_flag_script(
        &self,
        what: &str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> StoreResult<bool> {
        let answer: i64 = self
            .run(what, |mut con| async move {
                invocation.invoke_async(&mut con).await
            })
            .await?;
        Ok(answer == 1)
    }

    /// Runs a script whose write must survive a failover (a logout, a
    /// revocation) and answers its integer result: the script call and
    /// `WAIT wait_replicas` go in ONE pipeline on this runtime's durable
    /// connection, so the `WAIT` counts exactly that write (it cannot land
    /// on another connection after a reconnect), and other store calls never
    /// queue behind it. On a Cluster the pipeline goes to the master of
    /// `key`'s slot (every key of a deployment is in one slot). An error
    /// when fewer replicas acknowledge within half the op timeout.
    ///
    /// `fill` adds the key count, keys and arguments after the script.
    /// The script goes as `EVAL` with its source every time (a few hundred
    /// bytes per logout), not `EVALSHA`: a node that does not know the
    /// script (`NOSCRIPT`, e.g. a replica just promoted) would still run
    /// the pipeline's `WAIT`, which blocks even without a write, so a
    /// fallback would cost a second `WAIT`.
    async fn run_durable_script<F>(
        &self,
        what: &str,
        source: &str,
        key: &str,
        fill: F,
    ) -> StoreResult<i64>
    where
        F: FnOnce(&mut redis::Cmd),
    {
        // Half the op timeout, so the error below is seen before the
        // whole call times out.
        let wait_ms = u64::try_from((self.op_timeout.as_millis() / 2).max(1)).unwrap_or(u64::MAX);
        let wait_replicas = self.wait_replicas;
        let mut call = redis::cmd("EVAL");
        call.arg(source);
        fill(&mut call);
        let mut pipeline = redis::pipe();
        pipeline.add_command(call);
        if wait_replicas > 0 {
            pipeline.cmd("WAIT").arg(wait_replicas).arg(wait_ms);
        }
        // Without a `WAIT` nothing blocks: the shared connection will do.
        let lane = if wait_replicas > 0 {
            Lane::Durable
        } else {
            Lane::Shared
        };
        self.run_on(lane, what, |mut con| async move {
            let values = send_pipeline(&mut con, key, pipeline)
                .await
                .map_err(into_store)?;
            let mut values = values.into_iter();
            let answer = values
                .next()
                .ok_or_else(|| StoreError::new("no answer to the script"))?;
            let answer: i64 = redis::from_redis_value(answer.extract_error().map_err(into_store)?)
                .map_err(|e| StoreError::new(e.to_string()))?;
            if wait_replicas == 0 {
                return Ok(answer);
            }
            let acknowledged = values
                .next()
                .ok_or_else(|| StoreError::new("no answer to WAIT"))?;
            let acknowledged: i64 =
                redis::from_redis_value(acknowledged.extract_error().map_err(into_store)?)
                    .map_err(|e| StoreError::new(e.to_string()))?;
            if acknowledged < i64::from(wait_replicas) {
                return Err(StoreError::new(format!(
                    "only {acknowledged} of {wait_replicas} replicas acknowledged the write \
                     within {wait_ms} ms: a failover now could undo it"
                )));
            }
            Ok(answer)
        })
        .await
    }

    /// Masters with fewer connected replicas than `wait_replicas` (the
    /// master's address, or "the master", and its count): logouts written
    /// there answer 503 until enough replicas connect. Empty when
    /// `wait_replicas` is 0.
    pub async fn replica_shortfall(&self) -> StoreResult<Vec<(String, u32)>> {
        if self.wait_replicas == 0 {
            return Ok(Vec::new());
        }
        let infos: Vec<(String, String)> = self
            .run("read replication", |mut con| async move {
                let mut info = redis::cmd("INFO");
                info.arg("replication");
                match &mut con {
                    Connection::Cluster(cluster) => {
                        let routing =
                            RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                        let value = cluster.route_command(info, routing).await?;
                        let redis::Value::Map(per_node) = value else {
                            return Err(redis::RedisError::from((
                                redis::ErrorKind::Parse,
                                "INFO on every master did not answer per node",
                            )));
                        };
                        per_node
                            .into_iter()
                            .map(|(node, text)| {
                                Ok((
                                    redis::from_redis_value(node)?,
                                    redis::from_redis_value(text)?,
                                ))
                            })
                            .collect()
                    }
                    _ => {
                        let text: String = info.query_async(&mut con).await?;
                        Ok(vec![("the master".to_string(), text)])
                    }
                }
            })
            .await?;
        let mut short = Vec::new();
        for (node, text) in infos {
            let connected = connected_replicas(&text).ok_or_else(|| {
                StoreError::new(format!("{node} did not report its connected replicas"))
            })?;
            if connected < self.wait_replicas {
                short.push((node, connected));
            }
        }
        Ok(short)
    }

    /// A client for the revocation subscriber: the single Redis, the
    /// current master, or the `attempt`-th seed node of a Cluster.
    async fn subscriber_client(
        backend: &Backend,
        attempt: usize,
    ) -> redis::RedisResult<redis::Client> {
        match backend {
            Backend::Single(client) => Ok(client.as_ref().clone()),
            Backend::Sentinel(sentinels) => master_client(sentinels).await,
            Backend::Cluster { seeds, .. } => seeds
                .get(attempt % seeds.len().max(1))
                .cloned()
                .ok_or_else(|| {
                    redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "no seed nodes",
                    ))
                }),
        }
    }

    /// Feeds `revoked` from the `{prefix}:revoked` channel until the store
    /// is dropped, reconnecting after failures; `feed_up` says whether it is
    /// subscribed right now.
    fn start_subscriber(&self, runtime: &tokio::runtime::Handle) {
        let backend = Arc::clone(&self.backend);
        let feed_up = self.feed_up.clone();
        let channel = self.revocation_channel();
        let sender = self.revoked.downgrade();
        let mut alive = self.alive.subscribe();
        let op_timeout = self.op_timeout;
        runtime.spawn(async move {
            let mut attempt = 0usize;
            loop {
                let session = async {
                    let client = tokio::time::timeout(
                        op_timeout,
                        Self::subscriber_client(&backend, attempt),
                    )
                    .await
                    .map_err(|_| ())?
                    .map_err(|e| tracing::warn!("revocation subscriber finds no Redis: {e}"))?;
                    let mut pubsub = tokio::time::timeout(op_timeout, client.get_async_pubsub())
                        .await
                        .map_err(|_| ())?
                        .map_err(|e| {
                            tracing::warn!("revocation subscriber cannot connect to Redis: {e}")
                        })?;
                    tokio::time::timeout(op_timeout, pubsub.subscribe(&channel))
                        .await
                        .map_err(|_| ())?
                        .map_err(|e| {
                            tracing::warn!("revocation subscriber cannot subscribe: {e}")
                        })?;
                    feed_up.send_replace(true);
                    // Keepalive: a connection that dies silently (a frozen
                    // server, a blackholed path) raises no error, so the
                    // subscription is pinged every op timeout and counts
                    // as lost when a PONG is not back within one more.
                    let (mut sink, mut messages) = pubsub.split();
                    let mut keepalive = tokio::time::interval_at(
                        tokio::time::Instant::now() + op_timeout,
                        op_timeout,
                    );
                    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            message = futures::StreamExt::next(&mut messages) => {
                                let Some(message) = message else {
                                    return Err(());
                                };
                                let Some(sender) = sender.upgrade() else {
                                    return Ok(());
                                };
                                if let Ok(key) = std::str::from_utf8(message.get_payload_bytes()) {
                                    // No receivers right now is fine.
                                    let _ = sender.send(SessionKey(key.to_string()));
                                }
                            }
                            _ = keepalive.tick() => {
                                match tokio::time::timeout(
                                    op_timeout,
                                    sink.ping::<redis::Value>(),
                                )
                                .await
                                {
                                    Ok(Ok(_)) => {}
                                    Ok(Err(e)) => {
                                        tracing::warn!("revocation subscriber PING failed: {e}");
                                        return Err(());
                                    }
                                    Err(_) => {
                                        tracing::warn!(
                                            "revocation subscriber: no PONG within {op_timeout:?}, \
                                             reconnecting"
                                        );
                                        return Err(());
                                    }
                                }
                            }
                        }
                    }
                };
                tokio::select! {
                    _ = alive.changed() => return,
                    result = session => {
                        if result.is_ok() {
                            return;
                        }
                    }
                }
                // Revocations published from now on are missed until resubscribed.
                feed_up.send_replace(false);
                attempt = attempt.wrapping_add(1);
                tokio::select! {
                    _ = alive.changed() => return,
                    _ = tokio::time::sleep(SUBSCRIBER_RETRY) => {}
                }
            }
        });
    }
}

/// A Redis error as a store error (the caller adds what failed).
fn into_store(e: redis::RedisError) -> StoreError {
    StoreError::new(e.to_string())
}

/// Sends `pipeline` as one request on `con` and answers one value per
/// command (server errors included, as values). On a Cluster it goes to the
/// master of `key`'s slot, following `MOVED`/`ASK` with the whole pipeline.
async fn send_pipeline(
    con: &mut Connection,
    key: &str,
    pipeline: redis::Pipeline,
) -> redis::RedisResult<Vec<redis::Value>> {
    let count = pipeline.len();
    match con {
        Connection::Cluster(cluster) => {
            let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
            cluster.route_pipeline(pipeline, 0, count, route).await
        }
        other => redis::aio::ConnectionLike::req_packed_commands(other, &pipeline, 0, count).await,
    }
}

/// The Redis expiry for a record expiring at `at`.
/// A pending confirmation as its sorted-set member. Serde writes the
/// fields in declaration order, so the same record always gives the same
/// member (which `ZREM` relies on).
fn encode_pending(pending: &PendingConfirmation) -> StoreResult<String> {
    serde_json::to_string(pending)
        .map_err(|e| StoreError::new(format!("encode pending confirmation: {e}")))
}

/// A grant from its stored hash fields; a missing or unreadable field is
/// an error, never an empty grant.
fn grant_from_fields(
    value: Option<String>,
    expires_at: Option<&str>,
    used_by: Option<String>,
) -> StoreResult<Grant> {
    let value = value.ok_or_else(|| StoreError::new("a stored grant has no value"))?;
    let expires_at = expires_at
        .and_then(|e| e.parse::<UnixTime>().ok())
        .ok_or_else(|| StoreError::new("a stored grant has no readable expiry"))?;
    Ok(Grant {
        value,
        expires_at,
        used_by,
    })
}

fn redis_expiry(at: UnixTime) -> i64 {
    i64::try_from(at.min(MAX_EXPIRY)).unwrap_or(i64::MAX)
}

fn session_fields(record: &SessionRecord) -> StoreResult<Vec<(&'static str, String)>> {
    let mut fields = vec![
        ("created_at", record.created_at.to_string()),
        ("expires_at", record.expires_at.to_string()),
        ("memo_expires_at", record.memo_expires_at.to_string()),
    ];
    if let Some(account) = &record.account {
        fields.push(("account", account.clone()));
    }
    if let Some(memo) = &record.memo {
        fields.push(("memo", memo.clone()));
    }
    if let Some(login) = &record.login {
        let json = serde_json::to_string(login)
            .map_err(|e| StoreError::new(format!("encode login proof: {e}")))?;
        fields.push(("login", json));
    }
    if let Some(reason) = &record.revoked_reason {
        fields.push(("revoked_reason", reason.clone()));
    }
    Ok(fields)
}

fn parse_session(mut fields: HashMap<String, String>) -> StoreResult<SessionRecord> {
    fn number(fields: &HashMap<String, String>, name: &str) -> StoreResult<UnixTime> {
        let raw = fields
            .get(name)
            .ok_or_else(|| StoreError::new(format!("Redis session record lacks `{name}`")))?;
        raw.parse()
            .map_err(|_| StoreError::new(format!("Redis session record has a bad `{name}`")))
    }
    let login = match fields.remove("login") {
        Some(json) => Some(serde_json::from_str::<LoginProof>(&json).map_err(|e| {
            StoreError::new(format!("Redis session record has a bad `login`: {e}"))
        })?),
        None => None,
    };
    Ok(SessionRecord {
        created_at: number(&fields, "created_at")?,
        expires_at: number(&fields, "expires_at")?,
        memo_expires_at: number(&fields, "memo_expires_at")?,
        account: fields.remove("account"),
        memo: fields.remove("memo"),
        login,
        revoked_reason: fields.remove("revoked_reason"),
    })
}

#[async_trait::async_trait]
impl Store for RedisStore {
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        let redis_key = self.session_key(key);
        let fields: HashMap<String, String> = self
            .run("get session", |mut con| async move {
                con.hgetall(redis_key).await
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let record = parse_session(fields)?;
        Ok(record.is_live(now_unix()).then_some(record))
    }

    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()> {
        let fields = session_fields(record)?;
        let mut invocation = self.put_session_script.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .arg(redis_expiry(record.expires_at));
        for (name, value) in &fields {
            invocation.arg(*name).arg(value);
        }
        self.run_flag_script("put session", invocation)
            .await
            .map(|_| ())
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let redis_key = self.session_key(key);
        let channel = self.revocation_channel();
        // A logout must survive a failover: it counts once replicas have it.
        let deleted = self
            .run_durable_script(
                "delete session",
                DELETE_SESSION_SCRIPT,
                &redis_key,
                |call| {
                    call.arg(1).arg(&redis_key).arg(&channel).arg(key.as_str());
                },
            )
            .await?;
        Ok(deleted > 0)
    }

    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let now = now_unix();
        let keep_until = challenge_keep_until(expires_at, now);
        let mut invocation = self.issue_script.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .key(self.challenge_key(memo))
            .arg(key.as_str())
            .arg(memo)
            .arg(expires_at)
            .arg(redis_expiry(keep_until))
            .arg(now);
        let result: String = self
            .run("issue challenge", |mut con| async move {
                invocation.invoke_async(&mut con).await
            })
            .await?;
        match result.as_str() {
            "ok" => Ok(()),
            "no_session" => Err(StoreError::new(
                "cannot issue a challenge: the session does not exist",
            )),
            "memo_in_use" => Err(StoreError::new(
                "cannot issue a challenge: the memo is already in use",
            )),
            other => Err(StoreError::new(format!(
                "unexpected issue_challenge answer {other:?}"
            ))),
        }
    }

    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome> {
        // The same effect as `SessionRecord::apply_claim`; the script only
        // checks and writes atomically. The session is read first so the
        // script can declare both keys it touches.
        let login_json = encode_proof(&claim.proof())?;
        let new_expiry = claim.session_expires_at();
        let challenge_key = self.challenge_key(memo);
        for _ in 0..CLAIM_ATTEMPTS {
            let key = challenge_key.clone();
            let session: Option<String> = self
                .run("read challenge", |mut con| async move {
                    con.hget(key, "session").await
                })
                .await?;
            let Some(session) = session else {
                return Ok(ClaimOutcome::UnknownMemo);
            };
            let mut invocation = self.claim_script.prepare_invoke();
            invocation
                .key(&challenge_key)
                .key(self.session_key(&SessionKey(session.clone())))
                .arg(&session)
                .arg(&claim.account)
                .arg(claim.block_time)
                .arg(claim.now)
                .arg(new_expiry)
                .arg(&login_json);
            let answer: Vec<String> = self
                .run("claim challenge", |mut con| async move {
                    invocation.invoke_async(&mut con).await
                })
                .await?;
            match answer.as_slice() {
                [status] if status == "moved" => continue,
                [status] if status == "unknown" => return Ok(ClaimOutcome::UnknownMemo),
                [status] if status == "claimed" => return Ok(ClaimOutcome::AlreadyClaimed),
                [status] if status == "expired" => return Ok(ClaimOutcome::Expired),
                [status, _] if status == "gone" => return Ok(ClaimOutcome::SessionGone),
                [status, session] if status == "ok" => {
                    return Ok(ClaimOutcome::LoggedIn(SessionKey(session.clone())));
                }
                other => {
                    return Err(StoreError::new(format!(
                        "unexpected claim_challenge answer {other:?}"
                    )));
                }
            }
        }
        Err(StoreError::new(
            "Redis claim challenge: the challenge kept changing its session".to_string(),
        ))
    }

    async fn cursor(&self) -> StoreResult<Option<ChainCursor>> {
        let key = self.cursor_key();
        let text: Option<String> = self
            .run("get cursor", |mut con| async move { con.get(key).await })
            .await?;
        text.as_deref().map(ChainCursor::decode).transpose()
    }

    /// One key holds `NUMBER:ID`, so number and id change together.
    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()> {
        let key = self.cursor_key();
        let value = cursor.encode();
        self.run(
            "set cursor",
            |mut con| async move { con.set(key, value).await },
        )
        .await
    }

    async fn startup_warnings(&self) -> StoreResult<Vec<String>> {
        Ok(self
            .replica_shortfall()
            .await?
            .into_iter()
            .map(|(node, connected)| {
                format!(
                    "{node} has {connected} connected replica(s) but wait_replicas is {}: \
                     logouts and revocations will answer 503 until enough replicas connect",
                    self.wait_replicas
                )
            })
            .collect())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.run("ping", |mut con| async move {
            redis::cmd("PING")
                .query_async::<String>(&mut con)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Redis expires keys itself (every key but the cursor has a TTL).
    async fn sweep_expired(&self, _now: UnixTime) -> StoreResult<usize> {
        Ok(0)
    }

    async fn acquire_follower_lease(&self, holder: &str, ttl_secs: u64) -> StoreResult<bool> {
        let ttl_ms = ttl_secs.saturating_mul(1000).clamp(1, MAX_EXPIRY);
        let mut invocation = self.lease_script.prepare_invoke();
        invocation.key(self.lease_key()).arg(holder).arg(ttl_ms);
        self.run_flag_script("follower lease", invocation).await
    }

    async fn get_value(&self, name: &str) -> StoreResult<Option<String>> {
        let key = self.value_key(name);
        self.run("get value", |mut con| async move { con.get(key).await })
            .await
    }

    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        let mut invocation = self.swap_value_script.prepare_invoke();
        invocation
            .key(self.value_key(name))
            .arg(if expected.is_some() { "1" } else { "0" })
            .arg(expected.unwrap_or(""))
            .arg(value);
        self.run_flag_script("swap value", invocation).await
    }

    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()> {
        let redis_key = self.wallet_challenge_key(key);
        let json = serde_json::to_string(challenge)
            .map_err(|e| StoreError::new(format!("encode wallet challenge: {e}")))?;
        let expiry = redis_expiry(
            challenge
                .expires_at
                .saturating_add(WALLET_CHALLENGE_GRACE_SECS),
        );
        self.run("put wallet challenge", |mut con| async move {
            redis::cmd("SET")
                .arg(&redis_key)
                .arg(&json)
                .arg("EXAT")
                .arg(expiry)
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn take_wallet_challenge(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<WalletChallenge>> {
        let redis_key = self.wallet_challenge_key(key);
        // GETDEL (Redis 6.2+): read and delete in one command, so of two
        // concurrent takes only one gets the challenge.
        let json: Option<String> = self
            .run("take wallet challenge", |mut con| async move {
                redis::cmd("GETDEL")
                    .arg(&redis_key)
                    .query_async(&mut con)
                    .await
            })
            .await?;
        json.map(|json| {
            serde_json::from_str::<WalletChallenge>(&json)
                .map_err(|e| StoreError::new(format!("undecodable wallet challenge: {e}")))
        })
        .transpose()
    }

    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let proof_json = encode_proof(proof)?;
        let mut invocation = self.login_script.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .arg(now_unix())
            .arg(account)
            .arg(proof_json)
            .arg(expires_at.min(MAX_EXPIRY));
        self.run_flag_script("login session", invocation).await
    }

    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool> {
        let proof_json = encode_proof(proof)?;
        let redis_key = self.session_key(key);
        let channel = self.revocation_channel();
        let now = now_unix();
        // Like a logout, a revocation must survive a failover.
        let revoked = self
            .run_durable_script("revoke login", REVOKE_LOGIN_SCRIPT, &redis_key, |call| {
                call.arg(1)
                    .arg(&redis_key)
                    .arg(now)
                    .arg(&proof_json)
                    .arg(reason)
                    .arg(&channel)
                    .arg(key.as_str());
            })
            .await?;
        Ok(revoked == 1)
    }

    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        let member = encode_pending(pending)?;
        let set = self.pending_key();
        let expiration = pending.expiration;
        self.run("add pending confirmation", |mut con| async move {
            redis::cmd("ZADD")
                .arg(&set)
                .arg(expiration)
                .arg(&member)
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>> {
        let set = self.pending_key();
        let members: Vec<String> = self
            .run("due pending confirmations", |mut con| async move {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(&set)
                    .arg("-inf")
                    .arg(format!("({time}"))
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut con)
                    .await
            })
            .await?;
        members
            .iter()
            .map(|member| {
                serde_json::from_str(member)
                    .map_err(|e| StoreError::new(format!("undecodable pending confirmation: {e}")))
            })
            .collect()
    }

    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        let member = encode_pending(pending)?;
        let set = self.pending_key();
        self.run("remove pending confirmation", |mut con| async move {
            redis::cmd("ZREM")
                .arg(&set)
                .arg(&member)
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()> {
        let mut invocation = PUT_GRANT.prepare_invoke();
        invocation
            .key(self.grant_key(name))
            .arg(value)
            .arg(redis_expiry(expires_at));
        self.run_flag_script("put grant", invocation)
            .await
            .map(drop)
    }

    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>> {
        let key = self.grant_key(name);
        let fields: HashMap<String, String> = self
            .run("get grant", |mut con| async move { con.hgetall(key).await })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let grant = grant_from_fields(
            fields.get("v").cloned(),
            fields.get("e").map(String::as_str),
            fields.get("m").cloned(),
        )?;
        Ok(Some(grant).filter(|g| g.is_live(now)))
    }

    async fn delete_grant(&self, name: &str) -> StoreResult<bool> {
        let key = self.grant_key(name);
        let removed: i64 = self
            .run("delete grant", |mut con| async move { con.del(key).await })
            .await?;
        Ok(removed > 0)
    }

    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        if mark.is_empty() {
            return Err(StoreError::new("a grant's use mark must not be empty"));
        }
        let mut invocation = USE_GRANT.prepare_invoke();
        invocation
            .key(self.grant_key(name))
            .arg(mark)
            .arg(redis_expiry(keep_until))
            .arg(now);
        let answer: Option<Vec<String>> = self
            .run("use grant", |mut con| async move {
                invocation.invoke_async(&mut con).await
            })
            .await?;
        match answer.as_deref() {
            None => Ok(None),
            Some([value, expires_at, mark]) => grant_from_fields(
                Some(value.clone()),
                Some(expires_at),
                Some(mark.clone()).filter(|m| !m.is_empty()),
            )
            .map(Some),
            Some(other) => Err(StoreError::new(format!(
                "Redis use grant answered {} fields, not 3",
                other.len()
            ))),
        }
    }

    fn revocations(&self) -> Option<broadcast::Receiver<SessionKey>> {
        // The subscriber task needs a runtime; outside one there is no feed.
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let receiver = self.revoked.subscribe();
        self.subscriber_started
            .get_or_init(|| self.start_subscriber(&runtime));
        Some(receiver)
    }

    fn revocation_feed_status(&self) -> Option<watch::Receiver<bool>> {
        Some(self.feed_up.subscribe())
    }
}

/// A login proof as the Lua scripts store and compare it.
fn encode_proof(proof: &LoginProof) -> StoreResult<String> {
    serde_json::to_string(proof).map_err(|e| StoreError::new(format!("encode login proof: {e}")))
}

/// `connected_slaves:N` from `INFO replication`.
fn connected_replicas(info: &str) -> Option<u32> {
    info.lines()
        .find_map(|line| line.trim().strip_prefix("connected_slaves:"))
        .and_then(|n| n.trim().parse().ok())
}

/// The master as the first sentinel to answer names it (each client checks
/// the master's `ROLE` before trusting it). All sentinels are asked at once,
/// so one that is unreachable without refusing connections costs nothing
/// while another answers; the lookups still running are dropped (the
/// crate's sentinel lookups are cancellation-safe).
async fn master_client(
    sentinels: &[tokio::sync::Mutex<SentinelClient>],
) -> redis::RedisResult<redis::Client> {
    if sentinels.is_empty() {
        return Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "no sentinels",
        )));
    }
    let lookups = sentinels
        .iter()
        .map(|sentinel| Box::pin(async move { sentinel.lock().await.async_get_client().await }));
    futures::future::select_ok(lookups)
        .await
        .map(|(client, _still_running)| client)
}

#[cfg(test)]
mod replica_tests {
    use super::connected_replicas;

    #[test]
    fn connected_replicas_reads_the_info_line() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\nslave0:ip=x\r\n";
        assert_eq!(connected_replicas(info), Some(2));
        assert_eq!(connected_replicas("# Replication\r\nrole:master\r\n"), None);
        assert_eq!(connected_replicas("connected_slaves:many"), None);
    }
}
