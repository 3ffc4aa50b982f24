//! Where sessions, login challenges and the chain cursor live.
//!
//! Why one trait: a single gateway keeps its state in an embedded, crash-safe
//! database; several gateways behind a load balancer share it through Redis.
//! Both implement [`Store`], and one conformance suite (`tests/store_conformance.rs`)
//! holds them to the same behaviour. Every method can fail: callers on a
//! `required` route map any error to 503, never to "not logged in".
//!
//! Keys: sessions are stored under [`SessionKey`], a hash of the session id,
//! so a copy of the store does not hold usable cookies. Challenges are stored
//! under their memo in canonical (lowercase) form.

pub mod embedded;
pub mod faulty;
pub mod memo;
pub mod memory;
pub mod pending;
pub mod redis;
pub mod timed;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;

/// When a store may forget a challenge expiring at `expires_at` issued at
/// `now`: its expiry plus a grace equal to its ttl, so a transfer made in
/// time but processed after downtime still matches. Every store uses this.
pub fn challenge_keep_until(expires_at: UnixTime, now: UnixTime) -> UnixTime {
    expires_at.saturating_add(expires_at.saturating_sub(now))
}

/// The store key of a session: hex of a hash of the session id (see
/// `auth::cookie::SessionId::store_key`). Never the id itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionKey(pub String);

impl SessionKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, non-reversible id of the session for audit logs: lines about
    /// one session correlate, but none reveals a store key or a cookie.
    pub fn log_id(&self) -> String {
        use blake2::digest::Digest;
        let digest =
            blake2::Blake2b::<blake2::digest::consts::U8>::new_with_prefix(b"steemgate-audit-log")
                .chain_update(self.0.as_bytes())
                .finalize();
        hex::encode(digest)
    }
}

/// A way to log in: what a [`LoginProof`] or a wallet challenge is for,
/// and a `login.methods` value in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginMethod {
    /// A memo transfer, seen by the block follower (always on).
    Transfer,
    /// A wallet signs a challenge text with the posting key (free, instant).
    Signature,
    /// A wallet signs a login transfer the gateway built (active key); the
    /// session is logged in at once and revoked if it never lands.
    SignedTransfer,
}

impl LoginMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginMethod::Transfer => "transfer",
            LoginMethod::Signature => "signature",
            LoginMethod::SignedTransfer => "signed_transfer",
        }
    }
}

/// How a session was logged in: enough to audit it later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginProof {
    /// `transfer` for a memo transfer; `signature` and `signed_transfer`
    /// (unconfirmed until the follower sees it) for wallet logins.
    pub method: LoginMethod,
    pub txid: String,
    pub block_num: u64,
    /// Block time of the proving transfer.
    pub block_time: UnixTime,
}

/// One browser session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub created_at: UnixTime,
    /// When the store forgets the session. A pending session lives about as
    /// long as its challenge; a logged-in one for `session.ttl`.
    pub expires_at: UnixTime,
    /// The logged-in account, lowercase and validated; `None` while pending.
    pub account: Option<String>,
    /// The memo of the session's current challenge, if one was issued.
    pub memo: Option<String>,
    /// When that memo stops being accepted (judged by block time).
    pub memo_expires_at: UnixTime,
    pub login: Option<LoginProof>,
    /// Why a login of this session was undone (an instant signed transfer
    /// that never reached the chain), for the login page to say so. Cleared
    /// by the next login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

impl SessionRecord {
    /// A fresh pending session without a challenge yet.
    pub fn pending(now: UnixTime, expires_at: UnixTime) -> Self {
        Self {
            created_at: now,
            expires_at,
            account: None,
            memo: None,
            memo_expires_at: 0,
            login: None,
            revoked_reason: None,
        }
    }

    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at > now
    }
}

/// A login challenge, stored under its memo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeRecord {
    pub session: SessionKey,
    /// Transfers in blocks timestamped at or after this do not count.
    pub expires_at: UnixTime,
    /// Set once, by the first matching transfer.
    pub claimed_by: Option<String>,
}

/// How long a store keeps a wallet challenge after its expiry, so a late
/// answer is told "expired" rather than "no challenge".
pub const WALLET_CHALLENGE_GRACE_SECS: u64 = 300;

/// A one-time wallet login challenge (issue 10), stored under the session
/// it was issued to: at most one per session, a new one replaces it, and
/// taking it deletes it (so a second answer finds nothing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletChallenge {
    /// `"signature"` or `"signed_transfer"`.
    pub method: LoginMethod,
    /// The account it was issued for, lowercase.
    pub account: String,
    /// What the wallet must sign, as the server built it: the exact
    /// challenge text, or the unsigned transaction as JSON.
    pub payload: String,
    /// Wall-clock time from which an answer is refused as expired.
    pub expires_at: UnixTime,
}

/// An instant login (a verified, signed login transfer) waiting for the
/// chain. Recorded in the store before the session is logged in, so that
/// whichever instance follows the chain settles it (see
/// [`Store::due_pending_confirmations`]) even if the verifying instance dies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingConfirmation {
    pub key: SessionKey,
    /// The unconfirmed proof the session was logged in with (its `txid` is
    /// the transaction's id).
    pub proof: LoginProof,
    /// The transaction's expiration (chain time): no block after it can
    /// include the transfer.
    pub expiration: UnixTime,
}

/// A matching transfer, as the follower saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// Sender, validated and lowercase.
    pub account: String,
    pub txid: String,
    pub block_num: u64,
    pub block_time: UnixTime,
    /// How long the logged-in session lives from `now`.
    pub session_ttl_secs: u64,
    /// Wall-clock time of the claim (for the new session expiry).
    pub now: UnixTime,
}

impl Claim {
    /// The proof a memo-transfer login records.
    pub fn proof(&self) -> LoginProof {
        LoginProof {
            method: LoginMethod::Transfer,
            txid: self.txid.clone(),
            block_num: self.block_num,
            block_time: self.block_time,
        }
    }

    /// When the session it logs in expires (capped where every store can
    /// keep it: Redis scripts count in doubles).
    pub fn session_expires_at(&self) -> UnixTime {
        self.now
            .saturating_add(self.session_ttl_secs)
            .min(MAX_EXPIRY)
    }
}

/// The latest expiry a record may carry (9999-12-31T23:59:59Z).
pub const MAX_EXPIRY: UnixTime = 253_402_300_799;

impl SessionRecord {
    /// What a claim does to a session — the one definition every store
    /// persists (atomically, each its own way): the account is set, the
    /// proof recorded, the memo cleared and the expiry extended.
    pub fn apply_claim(&mut self, claim: &Claim) {
        self.account = Some(claim.account.clone());
        self.login = Some(claim.proof());
        self.memo = None;
        self.expires_at = claim.session_expires_at();
    }
}

/// What a claim did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The session is now logged in as the claim's account.
    LoggedIn(SessionKey),
    /// No live challenge has this memo.
    UnknownMemo,
    /// The transfer's block is at or after the challenge's expiry.
    Expired,
    /// Somebody claimed the memo first.
    AlreadyClaimed,
    /// The challenge existed but its session was logged out or expired.
    SessionGone,
}

/// How far the follower got: the last fully processed block and, when
/// known, its id.
///
/// Why the id is kept with the number: a micro-fork that replaces the
/// blocks at and just below the cursor is only noticed by comparing the next
/// block's `previous` with the id we processed. Kept in memory only, that id
/// was lost on a fresh start and on every restart, and a login transfer in
/// a re-produced block was never seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCursor {
    pub block: u64,
    /// Hex block id; `None` for a cursor written before ids were kept.
    pub block_id: Option<String>,
}

impl ChainCursor {
    pub fn new(block: u64, block_id: impl Into<String>) -> Self {
        Self {
            block,
            block_id: Some(block_id.into()),
        }
    }

    /// A cursor without an id (older stores, tests, benchmarks).
    pub fn at(block: u64) -> Self {
        Self {
            block,
            block_id: None,
        }
    }

    /// `NUMBER` or `NUMBER:ID`, as the text-valued stores keep it.
    pub fn encode(&self) -> String {
        match &self.block_id {
            Some(id) => format!("{}:{id}", self.block),
            None => self.block.to_string(),
        }
    }

    /// Reads [`ChainCursor::encode`]'s form; anything else is a corrupt
    /// store (an error, never "no cursor", which would skip to the head).
    pub fn decode(text: &str) -> StoreResult<Self> {
        let (number, id) = match text.split_once(':') {
            Some((number, id)) => (number, Some(id)),
            None => (text, None),
        };
        let block = number
            .parse::<u64>()
            .map_err(|_| StoreError::new(format!("corrupt chain cursor {text:?}")))?;
        match id {
            Some(id)
                if !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                Ok(Self::new(block, id))
            }
            Some(_) => Err(StoreError::new(format!("corrupt chain cursor {text:?}"))),
            None => Ok(Self::at(block)),
        }
    }
}

/// A failure of the store itself (unreachable, corrupt, timeout). Never a
/// reason to let a request through.
#[derive(Debug, thiserror::Error)]
#[error("store error: {0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        Self(msg.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The state of a gateway (or of several sharing one Redis).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The session, if it exists and has not expired: a record with
    /// `expires_at <= now` is `None` even if the store still holds it.
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>>;

    /// Creates or replaces a session; it is forgotten at `record.expires_at`.
    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()>;

    /// Revokes a session. Returns whether it existed (an expired record
    /// may count as absent). Stores shared by several gateways also tell
    /// the others (see [`Store::revocations`]).
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool>;

    /// Atomically records a new challenge `memo` for the session and sets it
    /// as the session's current memo (the previous memo simply expires).
    /// Fails if the session does not exist (or has expired), or if a live
    /// challenge already uses the memo.
    ///
    /// Stores `ChallengeRecord { session: key, expires_at, claimed_by: None }`
    /// under `canonical_memo(memo)` and sets `session.memo = memo` (as given)
    /// and `session.memo_expires_at = expires_at`. The challenge is kept until
    /// `expires_at + (expires_at - now)`: a grace equal to its ttl, so a
    /// transfer made in time but processed after downtime still matches. A
    /// pending session's `expires_at` is raised to at least that too.
    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()>;

    /// Atomically claims the challenge `memo` (any case; it is canonicalised)
    /// for a transfer: first claim wins, across processes; a later one
    /// changes nothing.
    ///
    /// - no challenge kept under the memo (as of `claim.now`) → `UnknownMemo`;
    /// - already claimed → `AlreadyClaimed`;
    /// - `claim.block_time >= expires_at` → `Expired` (record unchanged);
    /// - otherwise `claimed_by = account` (the claimed record keeps blocking
    ///   replays until it is forgotten), then if the session is gone or
    ///   expired → `SessionGone`, else the session gets `account`,
    ///   `login = LoginProof { method: "transfer", txid, block_num,
    ///   block_time }`, `memo = None` and
    ///   `expires_at = claim.now + claim.session_ttl_secs` → `LoggedIn(key)`.
    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome>;

    /// The last block the follower fully processed (and its id), if any.
    async fn cursor(&self) -> StoreResult<Option<ChainCursor>>;

    /// Records that every block up to `cursor.block` has been processed;
    /// number and id are written together, atomically.
    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()>;

    /// Cheap liveness check for `/ready`.
    async fn ping(&self) -> StoreResult<()>;

    /// Problems worth a warning at startup (e.g. fewer replicas than the
    /// configured durability needs). Stores with nothing to say say nothing.
    async fn startup_warnings(&self) -> StoreResult<Vec<String>> {
        Ok(Vec::new())
    }

    /// Deletes expired sessions and challenges; returns how many. Stores
    /// with native expiry may do nothing.
    async fn sweep_expired(&self, now: UnixTime) -> StoreResult<usize>;

    /// Asks to be (or stay) the one instance that follows the chain for
    /// `ttl_secs`: granted if nobody holds the lease or `holder` already
    /// does (which renews it), refused while another holder's lease lives.
    /// Single-instance stores always grant it.
    async fn acquire_follower_lease(&self, holder: &str, ttl_secs: u64) -> StoreResult<bool>;

    /// Session keys revoked by any gateway sharing this store, for
    /// instances that cache sessions in memory. `None` when the store has no
    /// other instances to hear from. A lagged receiver (or a gap while the
    /// store reconnects) may have missed revocations: drop the whole cache.
    fn revocations(&self) -> Option<tokio::sync::broadcast::Receiver<SessionKey>>;

    /// Whether [`Store::revocations`] is hearing the other instances right
    /// now: `true` while subscribed, `false` while the feed is down (then a
    /// session cache must not answer from memory, and must drop everything
    /// when it turns `true` again: revocations may have been missed). `None`
    /// for stores without other instances. Call after `revocations()`.
    fn revocation_feed_status(&self) -> Option<tokio::sync::watch::Receiver<bool>>;

    // ---- Named values (issue 9: the assertion signing keys) ----------------

    /// A small named document (e.g. `auth::assertion::KEYRING_NAME`), if
    /// set. Named values never expire.
    async fn get_value(&self, name: &str) -> StoreResult<Option<String>>;

    /// Compare-and-set: writes `value` under `name` only if the current
    /// value is `expected` (`None`: nothing stored), atomically across every
    /// instance sharing the store. Returns whether it wrote; `false` means
    /// someone else changed it first (read it again).
    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool>;

    /// Stores `challenge` as the session's one wallet challenge, replacing
    /// any previous one. It is kept until `challenge.expires_at +`
    /// [`WALLET_CHALLENGE_GRACE_SECS`]. Does not check the session.
    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()>;

    /// Atomically takes (reads and deletes) the session's wallet challenge:
    /// of two concurrent calls at most one gets it. Returns it even if
    /// expired (callers judge `expires_at`), `None` once forgotten.
    async fn take_wallet_challenge(&self, key: &SessionKey)
    -> StoreResult<Option<WalletChallenge>>;

    /// Logs a live session in at once (a verified wallet signature): sets
    /// `account`, `login = proof`, `expires_at`, clears `memo` and
    /// `revoked_reason`. The session's challenge records stay, so a memo
    /// transfer for it still matches (and confirms it). Returns `false` if
    /// the session does not exist or has expired.
    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool>;

    /// Undoes a login that was never confirmed: if the session's `login` is
    /// still exactly `proof`, clears `account` and `login`, sets
    /// `revoked_reason = reason`, and tells other instances as a logout does.
    /// Returns whether it did (`false`: confirmed meanwhile, or gone).
    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool>;

    /// Records an instant login waiting for the chain, until
    /// [`Store::remove_pending_confirmation`]. Recording the same one twice
    /// keeps one.
    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()>;

    /// Up to `limit` recorded pending confirmations whose `expiration` is
    /// before `time`, earliest expiration first.
    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>>;

    /// Forgets one pending confirmation (absent is fine).
    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()>;

    // ---- Grants (issue 17: OpenID authorization codes and access tokens) --

    /// Stores `value` under `name` until `expires_at`, replacing any grant
    /// of that name (and its use mark).
    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()>;

    /// The grant under `name`, if stored and `expires_at > now`.
    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>>;

    /// Forgets the grant under `name`; returns whether one was stored.
    async fn delete_grant(&self, name: &str) -> StoreResult<bool>;

    /// Marks the first use of a grant, atomically across every instance:
    /// returns the grant as it was *before* this call (`None` if absent or
    /// expired). If its `used_by` was `None`, this call was the first use:
    /// `used_by` is now `mark` and the grant is kept until `keep_until`.
    /// Otherwise nothing changes and `used_by` names the first use (a
    /// replayed OpenID code: what it issued must be revoked).
    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>>;
}

/// A short-lived grant ([`Store::put_grant`]): an opaque value the caller
/// encodes, when it expires, and the mark of its first use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub value: String,
    pub expires_at: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_by: Option<String>,
}

impl Grant {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at > now
    }
}

/// The store shared by the proxy, the follower and the admin service.
pub type SharedStore = Arc<dyn Store>;

/// How long one Redis operation may take before it counts as a failure.
pub const REDIS_OP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Opens the configured store. The embedded store is opened here (one per
/// process: the database file is locked); the Redis store connects lazily
/// inside each runtime that uses it.
/// Where the gateway's state lives (`store:` in the config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The embedded database in this directory.
    File(std::path::PathBuf),
    /// A Redis, a Sentinel-managed master or a Cluster
    /// (`redis://`, `redis+sentinel://`, `redis+cluster://`, TLS forms).
    Redis(redis::RedisSpec),
}

pub fn open(location: &StoreLocation) -> StoreResult<SharedStore> {
    match location {
        StoreLocation::File(dir) => Ok(Arc::new(embedded::EmbeddedStore::open(dir)?)),
        StoreLocation::Redis(spec) => {
            Ok(Arc::new(redis::RedisStore::open(spec, REDIS_OP_TIMEOUT)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChainCursor;

    #[test]
    fn cursor_text_round_trips_and_reads_the_old_number_only_form() {
        let with_id = ChainCursor::new(48_404_683, "02e29a4b6f0c");
        assert_eq!(ChainCursor::decode(&with_id.encode()).unwrap(), with_id);
        assert_eq!(ChainCursor::decode("77").unwrap(), ChainCursor::at(77));
        for corrupt in ["", "x", "7:", "7:zz", ":ab", "-1", "7:ab:cd"] {
            assert!(ChainCursor::decode(corrupt).is_err(), "{corrupt:?}");
        }
    }
}
