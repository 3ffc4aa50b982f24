//! The Redis store: state shared by several gateways behind a load balancer.
//!
//! Why: instances must agree on sessions, on which transfer claimed a memo
//! (first claim wins across processes) and on which instance follows the
//! chain. Redis gives that with atomic Lua scripts and native key expiry.
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
//! - channel `{prefix}:revoked`: session keys deleted by any instance (one
//!   subscriber per store; whether it is subscribed right now is reported by
//!   `revocation_feed_status`, so session caches stop while it is down).
//!
//! Hashes instead of JSON strings so the Lua scripts edit single fields and
//! never re-encode numbers (Lua's doubles would mangle large integers).
//!
//! Every call is bounded by `op_timeout`: an unreachable Redis answers an
//! error quickly, never a hang and never "no such session". Connections are
//! `ConnectionManager`s (they reconnect by themselves after a Redis restart),
//! created lazily, one per tokio runtime that uses the store: pingora runs
//! each service on its own runtime, and a connection's I/O driver must live
//! in a runtime that keeps running.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use tokio::sync::{broadcast, watch};

use super::challenge_keep_until;
use super::memo::canonical_memo;
use super::{
    ChainCursor, Claim, ClaimOutcome, LoginProof, PendingConfirmation, SessionKey, SessionRecord,
    Store, StoreError, StoreResult, WALLET_CHALLENGE_GRACE_SECS, WalletChallenge,
};
use crate::clock::{UnixTime, now_unix};

/// The latest expiry Redis is given (9999-12-31): larger values would make
/// EXPIREAT fail after the other commands of a transaction already ran.
use super::MAX_EXPIRY;

/// How many revocations a slow session cache may fall behind before it
/// sees `Lagged` (and must drop everything).
const REVOCATION_BUFFER: usize = 1024;

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

/// Claims a challenge. KEYS: challenge hash. ARGV: session key prefix
/// (`{prefix}:s:`), account, block_time, now, new session expiry, login
/// proof JSON. The session key comes from the challenge, so this script
/// needs a standalone Redis (not Cluster).
const CLAIM_SCRIPT: &str = r#"
local challenge = redis.call('HMGET', KEYS[1], 'session', 'expires_at', 'claimed_by')
if not challenge[1] then
  return {'unknown'}
end
if challenge[3] then
  return {'claimed'}
end
if tonumber(ARGV[3]) >= tonumber(challenge[2]) then
  return {'expired'}
end
redis.call('HSET', KEYS[1], 'claimed_by', ARGV[2])
local session = ARGV[1] .. challenge[1]
local session_expires = redis.call('HGET', session, 'expires_at')
if (not session_expires) or tonumber(session_expires) <= tonumber(ARGV[4]) then
  return {'gone', challenge[1]}
end
redis.call('HSET', session, 'account', ARGV[2], 'login', ARGV[6], 'expires_at', ARGV[5])
redis.call('HDEL', session, 'memo')
redis.call('EXPIREAT', session, ARGV[5])
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

/// The store of gateways sharing one Redis.
pub struct RedisStore {
    client: redis::Client,
    prefix: String,
    op_timeout: Duration,
    /// One lazily created connection per tokio runtime using the store.
    connections: Mutex<HashMap<tokio::runtime::Id, ConnectionManager>>,
    issue_script: Script,
    claim_script: Script,
    lease_script: Script,
    swap_value_script: Script,
    login_script: Script,
    revoke_login_script: Script,
    revoked: broadcast::Sender<SessionKey>,
    /// `true` while the subscriber is subscribed to the revocation channel.
    feed_up: watch::Sender<bool>,
    /// Started by the first [`Store::revocations`] call.
    subscriber_started: OnceLock<()>,
    /// Dropped with the store, which stops the subscriber task.
    alive: watch::Sender<()>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may hold a password.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[:password@]host[:port][/db]`),
    /// keys under `prefix`, every call bounded by `op_timeout`.
    ///
    /// Does not connect: connections open on first use, inside whichever
    /// tokio runtime uses the store. Call [`Store::ping`] to check Redis.
    pub fn connect(url: &str, prefix: &str, op_timeout: Duration) -> StoreResult<Self> {
        // The parse error never echoes the URL, which may hold a password.
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::new(format!("invalid Redis URL: {e}")))?;
        if prefix.is_empty() {
            return Err(StoreError::new("the Redis key prefix must not be empty"));
        }
        let (revoked, _) = broadcast::channel(REVOCATION_BUFFER);
        let (alive, _) = watch::channel(());
        let (feed_up, _) = watch::channel(false);
        Ok(Self {
            client,
            prefix: prefix.to_string(),
            op_timeout,
            connections: Mutex::new(HashMap::new()),
            issue_script: Script::new(ISSUE_SCRIPT),
            claim_script: Script::new(CLAIM_SCRIPT),
            lease_script: Script::new(LEASE_SCRIPT),
            swap_value_script: Script::new(SWAP_VALUE_SCRIPT),
            login_script: Script::new(LOGIN_SCRIPT),
            revoke_login_script: Script::new(REVOKE_LOGIN_SCRIPT),
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
        format!("{}:s:{}", self.prefix, key.as_str())
    }

    /// `{prefix}:c:{canonical memo}`.
    pub fn challenge_key(&self, memo: &str) -> String {
        format!("{}:c:{}", self.prefix, canonical_memo(memo))
    }

    /// `{prefix}:w:{key}`.
    pub fn wallet_challenge_key(&self, key: &SessionKey) -> String {
        format!("{}:w:{}", self.prefix, key.as_str())
    }

    /// `{prefix}:pending`: a sorted set of JSON pending confirmations,
    /// scored by expiration.
    pub fn pending_key(&self) -> String {
        format!("{}:pending", self.prefix)
    }

    /// `{prefix}:cursor`.
    pub fn cursor_key(&self) -> String {
        format!("{}:cursor", self.prefix)
    }

    /// `{prefix}:lease:follower`.
    pub fn lease_key(&self) -> String {
        format!("{}:lease:follower", self.prefix)
    }

    /// `{prefix}:v:{name}`, a named value.
    pub fn value_key(&self, name: &str) -> String {
        format!("{}:v:{name}", self.prefix)
    }

    /// `{prefix}:revoked`, the pub/sub channel of revoked session keys.
    pub fn revocation_channel(&self) -> String {
        format!("{}:revoked", self.prefix)
    }

    /// This runtime's connection, created on first use.
    fn connection(&self) -> StoreResult<ConnectionManager> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::new("the Redis store was used outside a tokio runtime"))?
            .id();
        let mut connections = self
            .connections
            .lock()
            .map_err(|_| StoreError::new("Redis connection table poisoned"))?;
        if let Some(connection) = connections.get(&runtime) {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1)
            .set_max_delay(self.op_timeout);
        let connection = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| StoreError::new(format!("Redis connection setup failed: {e}")))?;
        connections.insert(runtime, connection.clone());
        Ok(connection)
    }

    /// Runs `op` on this runtime's connection within the op timeout.
    async fn run<T, F, Fut>(&self, what: &str, op: F) -> StoreResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let connection = self.connection()?;
        match tokio::time::timeout(self.op_timeout, op(connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::new(format!("Redis {what} failed: {e}"))),
            Err(_) => Err(StoreError::new(format!(
                "Redis {what} timed out after {:?}",
                self.op_timeout
            ))),
        }
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

    /// Feeds `revoked` from the `{prefix}:revoked` channel until the store
    /// is dropped, reconnecting after failures; `feed_up` says whether it is
    /// subscribed right now.
    fn start_subscriber(&self, runtime: &tokio::runtime::Handle) {
        let client = self.client.clone();
        let feed_up = self.feed_up.clone();
        let channel = self.revocation_channel();
        let sender = self.revoked.downgrade();
        let mut alive = self.alive.subscribe();
        let op_timeout = self.op_timeout;
        runtime.spawn(async move {
            loop {
                let session = async {
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
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = futures::StreamExt::next(&mut messages).await {
                        let Some(sender) = sender.upgrade() else {
                            return Ok(());
                        };
                        if let Ok(key) = std::str::from_utf8(message.get_payload_bytes()) {
                            // No receivers right now is fine.
                            let _ = sender.send(SessionKey(key.to_string()));
                        }
                    }
                    Err::<(), ()>(())
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
                tokio::select! {
                    _ = alive.changed() => return,
                    _ = tokio::time::sleep(SUBSCRIBER_RETRY) => {}
                }
            }
        });
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
        let redis_key = self.session_key(key);
        let fields = session_fields(record)?;
        let expiry = redis_expiry(record.expires_at);
        self.run("put session", |mut con| async move {
            redis::pipe()
                .atomic()
                .del(&redis_key)
                .ignore()
                .hset_multiple(&redis_key, &fields)
                .ignore()
                .expire_at(&redis_key, expiry)
                .ignore()
                .query_async::<()>(&mut con)
                .await
        })
        .await
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let redis_key = self.session_key(key);
        let channel = self.revocation_channel();
        let session = key.as_str().to_string();
        let (deleted,): (usize,) = self
            .run("delete session", |mut con| async move {
                redis::pipe()
                    .atomic()
                    .del(&redis_key)
                    .publish(&channel, &session)
                    .ignore()
                    .query_async(&mut con)
                    .await
            })
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
        // checks and writes atomically.
        let login_json = encode_proof(&claim.proof())?;
        let new_expiry = claim.session_expires_at();
        let mut invocation = self.claim_script.prepare_invoke();
        invocation
            .key(self.challenge_key(memo))
            .arg(format!("{}:s:", self.prefix))
            .arg(&claim.account)
            .arg(claim.block_time)
            .arg(claim.now)
            .arg(new_expiry)
            .arg(login_json);
        let answer: Vec<String> = self
            .run("claim challenge", |mut con| async move {
                invocation.invoke_async(&mut con).await
            })
            .await?;
        match answer.as_slice() {
            [status] if status == "unknown" => Ok(ClaimOutcome::UnknownMemo),
            [status] if status == "claimed" => Ok(ClaimOutcome::AlreadyClaimed),
            [status] if status == "expired" => Ok(ClaimOutcome::Expired),
            [status, _] if status == "gone" => Ok(ClaimOutcome::SessionGone),
            [status, session] if status == "ok" => {
                Ok(ClaimOutcome::LoggedIn(SessionKey(session.clone())))
            }
            other => Err(StoreError::new(format!(
                "unexpected claim_challenge answer {other:?}"
            ))),
        }
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
            redis::pipe()
                .atomic()
                .set(&redis_key, &json)
                .ignore()
                .expire_at(&redis_key, expiry)
                .ignore()
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
        let mut invocation = self.revoke_login_script.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .arg(now_unix())
            .arg(proof_json)
            .arg(reason)
            .arg(self.revocation_channel())
            .arg(key.as_str());
        self.run_flag_script("revoke login", invocation).await
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
