//! A [`Store`] wrapper that times every operation into a Prometheus
//! histogram (`steemgate_store_operation_seconds{operation, outcome}`).
//!
//! Why a wrapper: the operator's first question when logins slow down or
//! `/ready` flaps is "is it the store?". Timing at the trait boundary covers
//! every caller (proxy, follower, wallet logins, assertion keys) and every
//! store (embedded, Redis) without touching either. It delegates every
//! method, including those with defaults in the trait: a method left out
//! here would silently answer with the trait's default instead of the real
//! store's, which is why `tests/store_conformance.rs` runs its whole suite
//! through this wrapper too.

use std::future::Future;
use std::time::Instant;

use async_trait::async_trait;
use prometheus::HistogramVec;

use super::{
    ChainCursor, Claim, ClaimOutcome, Grant, LoginProof, PendingConfirmation, SessionKey,
    SessionRecord, SharedStore, Store, StoreResult, WalletChallenge,
};
use crate::clock::UnixTime;

/// Wraps `inner`; every call is observed in `histogram` (labels:
/// operation, outcome = ok | error).
pub struct TimedStore {
    inner: SharedStore,
    histogram: HistogramVec,
}

impl TimedStore {
    pub fn new(inner: SharedStore, histogram: HistogramVec) -> Self {
        Self { inner, histogram }
    }

    async fn timed<T>(
        &self,
        operation: &str,
        call: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = call.await;
        let outcome = if result.is_ok() { "ok" } else { "error" };
        self.histogram
            .with_label_values(&[operation, outcome])
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        self.timed("get_session", self.inner.get_session(key)).await
    }

    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()> {
        self.timed("put_session", self.inner.put_session(key, record))
            .await
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        self.timed("delete_session", self.inner.delete_session(key))
            .await
    }

    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        self.timed(
            "issue_challenge",
            self.inner.issue_challenge(key, memo, expires_at),
        )
        .await
    }

    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome> {
        self.timed("claim_challenge", self.inner.claim_challenge(memo, claim))
            .await
    }

    async fn cursor(&self) -> StoreResult<Option<ChainCursor>> {
        self.timed("cursor", self.inner.cursor()).await
    }

    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()> {
        self.timed("set_cursor", self.inner.set_cursor(cursor))
            .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.timed("ping", self.inner.ping()).await
    }

    async fn startup_warnings(&self) -> StoreResult<Vec<String>> {
        self.inner.startup_warnings().await
    }

    async fn sweep_expired(&self, now: UnixTime) -> StoreResult<usize> {
        self.timed("sweep_expired", self.inner.sweep_expired(now))
            .await
    }

    async fn acquire_follower_lease(&self, holder: &str, ttl_secs: u64) -> StoreResult<bool> {
        self.timed(
            "acquire_follower_lease",
            self.inner.acquire_follower_lease(holder, ttl_secs),
        )
        .await
    }

    fn revocations(&self) -> Option<tokio::sync::broadcast::Receiver<SessionKey>> {
        self.inner.revocations()
    }

    fn revocation_feed_status(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        self.inner.revocation_feed_status()
    }

    async fn get_value(&self, name: &str) -> StoreResult<Option<String>> {
        self.timed("get_value", self.inner.get_value(name)).await
    }

    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        self.timed("swap_value", self.inner.swap_value(name, expected, value))
            .await
    }

    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()> {
        self.timed(
            "put_wallet_challenge",
            self.inner.put_wallet_challenge(key, challenge),
        )
        .await
    }

    async fn take_wallet_challenge(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<WalletChallenge>> {
        self.timed(
            "take_wallet_challenge",
            self.inner.take_wallet_challenge(key),
        )
        .await
    }

    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        self.timed(
            "login_session",
            self.inner.login_session(key, account, proof, expires_at),
        )
        .await
    }

    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool> {
        self.timed("revoke_login", self.inner.revoke_login(key, proof, reason))
            .await
    }

    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.timed(
            "add_pending_confirmation",
            self.inner.add_pending_confirmation(pending),
        )
        .await
    }

    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>> {
        self.timed(
            "due_pending_confirmations",
            self.inner.due_pending_confirmations(time, limit),
        )
        .await
    }

    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.timed(
            "remove_pending_confirmation",
            self.inner.remove_pending_confirmation(pending),
        )
        .await
    }

    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()> {
        self.timed("put_grant", self.inner.put_grant(name, value, expires_at))
            .await
    }

    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>> {
        self.timed("get_grant", self.inner.get_grant(name, now))
            .await
    }

    async fn delete_grant(&self, name: &str) -> StoreResult<bool> {
        self.timed("delete_grant", self.inner.delete_grant(name))
            .await
    }

    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        self.timed(
            "use_grant",
            self.inner.use_grant(name, mark, keep_until, now),
        )
        .await
    }
}
