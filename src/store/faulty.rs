//! A store that delegates to another and fails on demand: the one test
//! double for store trouble.
//!
//! Why in the library (and not in each test file): the gateway's promise
//! is that a failing store never lets a request through and never looks
//! like "not logged in". Unit tests (session cache, follower) and
//! integration tests need the same double to prove it, and since every
//! [`Store`] method is required, a wrapper that forgets to delegate does
//! not compile. The gateway itself never constructs one.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{
    ChainCursor, Claim, ClaimOutcome, Grant, LoginProof, PendingConfirmation, SessionKey,
    SessionRecord, SharedStore, Store, StoreError, StoreResult, WalletChallenge,
};
use crate::clock::UnixTime;

/// Every operation's name, as [`FaultyStore::fail`] and
/// [`FaultyStore::calls`] take it: the trait method's name.
pub const ALL_OPERATIONS: &[&str] = &[
    "get_session",
    "put_session",
    "delete_session",
    "issue_challenge",
    "claim_challenge",
    "cursor",
    "set_cursor",
    "ping",
    "sweep_expired",
    "acquire_follower_lease",
    "get_value",
    "swap_value",
    "put_wallet_challenge",
    "take_wallet_challenge",
    "login_session",
    "revoke_login",
    "add_pending_confirmation",
    "due_pending_confirmations",
    "remove_pending_confirmation",
    "put_grant",
    "get_grant",
    "delete_grant",
    "use_grant",
];

/// Delegates every call to `inner`, except the operations set to fail.
pub struct FaultyStore {
    inner: Mutex<SharedStore>,
    failing: Mutex<HashSet<&'static str>>,
    refuse_lease: AtomicBool,
    calls: Mutex<HashMap<&'static str, usize>>,
}

impl FaultyStore {
    pub fn new(inner: SharedStore) -> Self {
        Self {
            inner: Mutex::new(inner),
            failing: Mutex::new(HashSet::new()),
            refuse_lease: AtomicBool::new(false),
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// From now on `operation` (a name in [`ALL_OPERATIONS`]) fails with a
    /// store error.
    pub fn fail(&self, operation: &'static str) {
        lock(&self.failing).insert(operation);
    }

    /// Every operation fails, as when the store is unreachable.
    pub fn fail_all(&self) {
        lock(&self.failing).extend(ALL_OPERATIONS.iter().copied());
    }

    /// From now on delegates to `fresh`: everything stored so far is lost,
    /// as when a Redis without persistence restarts.
    pub fn lose_everything(&self, fresh: SharedStore) {
        *lock(&self.inner) = fresh;
    }

    fn inner(&self) -> SharedStore {
        lock(&self.inner).clone()
    }

    /// Every operation works again.
    pub fn heal(&self) {
        lock(&self.failing).clear();
    }

    /// The follower lease is refused (another instance holds it) or not.
    pub fn refuse_lease(&self, refuse: bool) {
        self.refuse_lease.store(refuse, Ordering::SeqCst);
    }

    /// How many times `operation` was called (failed calls included).
    pub fn calls(&self, operation: &str) -> usize {
        lock(&self.calls).get(operation).copied().unwrap_or(0)
    }

    fn enter(&self, operation: &'static str) -> StoreResult<()> {
        *lock(&self.calls).entry(operation).or_insert(0) += 1;
        if lock(&self.failing).contains(operation) {
            return Err(StoreError::new(format!("injected failure: {operation}")));
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.enter("get_session")?;
        self.inner().get_session(key).await
    }
    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()> {
        self.enter("put_session")?;
        self.inner().put_session(key, record).await
    }
    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.enter("delete_session")?;
        self.inner().delete_session(key).await
    }
    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        self.enter("issue_challenge")?;
        self.inner().issue_challenge(key, memo, expires_at).await
    }
    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome> {
        self.enter("claim_challenge")?;
        self.inner().claim_challenge(memo, claim).await
    }
    async fn cursor(&self) -> StoreResult<Option<ChainCursor>> {
        self.enter("cursor")?;
        self.inner().cursor().await
    }
    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()> {
        self.enter("set_cursor")?;
        self.inner().set_cursor(cursor).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.enter("ping")?;
        self.inner().ping().await
    }
    async fn sweep_expired(&self, now: UnixTime) -> StoreResult<usize> {
        self.enter("sweep_expired")?;
        self.inner().sweep_expired(now).await
    }
    async fn acquire_follower_lease(&self, holder: &str, ttl_secs: u64) -> StoreResult<bool> {
        self.enter("acquire_follower_lease")?;
        if self.refuse_lease.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.inner().acquire_follower_lease(holder, ttl_secs).await
    }
    fn revocations(&self) -> Option<tokio::sync::broadcast::Receiver<SessionKey>> {
        self.inner().revocations()
    }
    fn revocation_feed_status(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.inner().revocation_feed_status()
    }
    async fn get_value(&self, name: &str) -> StoreResult<Option<String>> {
        self.enter("get_value")?;
        self.inner().get_value(name).await
    }
    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        self.enter("swap_value")?;
        self.inner().swap_value(name, expected, value).await
    }
    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()> {
        self.enter("put_wallet_challenge")?;
        self.inner().put_wallet_challenge(key, challenge).await
    }
    async fn take_wallet_challenge(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<WalletChallenge>> {
        self.enter("take_wallet_challenge")?;
        self.inner().take_wallet_challenge(key).await
    }
    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        self.enter("login_session")?;
        self.inner()
            .login_session(key, account, proof, expires_at)
            .await
    }
    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool> {
        self.enter("revoke_login")?;
        self.inner().revoke_login(key, proof, reason).await
    }
    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.enter("add_pending_confirmation")?;
        self.inner().add_pending_confirmation(pending).await
    }
    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>> {
        self.enter("due_pending_confirmations")?;
        self.inner().due_pending_confirmations(time, limit).await
    }
    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.enter("remove_pending_confirmation")?;
        self.inner().remove_pending_confirmation(pending).await
    }
    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()> {
        self.enter("put_grant")?;
        self.inner().put_grant(name, value, expires_at).await
    }
    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>> {
        self.enter("get_grant")?;
        self.inner().get_grant(name, now).await
    }
    async fn delete_grant(&self, name: &str) -> StoreResult<bool> {
        self.enter("delete_grant")?;
        self.inner().delete_grant(name).await
    }
    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        self.enter("use_grant")?;
        self.inner().use_grant(name, mark, keep_until, now).await
    }
}
