//! A non-persistent [`Store`] in a mutex-guarded map.
//!
//! Why it exists: it is the reference implementation of the store semantics
//! (the other stores are held to the same behaviour by the conformance
//! suite), and it lets tests of the follower and the proxy run without a
//! database. Everything is lost when the process exits, so it is never the
//! production store.
//!
//! Semantics worth knowing (shared by every store):
//! - an expired session (`expires_at <= now`) reads as absent;
//! - a challenge record is kept for a grace period after its deadline equal
//!   to its own time-to-live, so a transfer made in time but processed after
//!   a follower outage still matches (the deadline is judged by block time);
//!   the pending session is kept alive at least as long;
//! - claims are atomic: the first matching transfer wins.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::memo::canonical_memo;
use super::{
    ChainCursor, ChallengeRecord, Claim, ClaimOutcome, Grant, LoginProof, PendingConfirmation,
    SessionKey, SessionRecord, Store, StoreError, StoreResult, WALLET_CHALLENGE_GRACE_SECS,
    WalletChallenge, challenge_keep_until,
};
use crate::clock::{UnixTime, now_unix};

/// A challenge plus the wall-clock time until which the store remembers it.
#[derive(Clone, Debug)]
struct StoredChallenge {
    record: ChallengeRecord,
    keep_until: UnixTime,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionKey, SessionRecord>,
    challenges: HashMap<String, StoredChallenge>,
    wallet_challenges: HashMap<SessionKey, WalletChallenge>,
    /// By (expiration, session, txid): the order the follower settles them.
    pending: BTreeMap<(UnixTime, String, String), PendingConfirmation>,
    cursor: Option<ChainCursor>,
    /// Named values ([`Store::get_value`]).
    values: HashMap<String, String>,
    /// Grants ([`Store::put_grant`]).
    grants: HashMap<String, Grant>,
}

fn pending_order(pending: &PendingConfirmation) -> (UnixTime, String, String) {
    (
        pending.expiration,
        pending.key.as_str().to_string(),
        pending.proof.txid.clone(),
    )
}

/// The in-memory store. Cheap to create; share it as `Arc<MemoryStore>`.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::new("memory store lock poisoned by a panic"))
    }

    /// The raw challenge record under `memo` (any case), ignoring retention.
    /// For tests and diagnostics.
    pub fn challenge(&self, memo: &str) -> StoreResult<Option<ChallengeRecord>> {
        Ok(self
            .lock()?
            .challenges
            .get(&canonical_memo(memo))
            .map(|stored| stored.record.clone()))
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        let now = now_unix();
        Ok(self
            .lock()?
            .sessions
            .get(key)
            .filter(|s| s.is_live(now))
            .cloned())
    }

    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()> {
        self.lock()?.sessions.insert(key.clone(), record.clone());
        Ok(())
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let now = now_unix();
        let removed = self.lock()?.sessions.remove(key);
        Ok(removed.is_some_and(|s| s.is_live(now)))
    }

    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let now = now_unix();
        let keep_until = challenge_keep_until(expires_at, now);
        let mut state = self.lock()?;
        let canonical = canonical_memo(memo);
        if state
            .challenges
            .get(&canonical)
            .is_some_and(|c| c.keep_until > now)
        {
            return Err(StoreError::new(
                "cannot issue a challenge: a live challenge already uses this memo",
            ));
        }
        let session = match state.sessions.get_mut(key) {
            Some(session) if session.is_live(now) => session,
            _ => {
                return Err(StoreError::new(
                    "cannot issue a challenge: the session does not exist",
                ));
            }
        };
        session.memo = Some(memo.to_string());
        session.memo_expires_at = expires_at;
        if session.account.is_none() {
            session.expires_at = session.expires_at.max(keep_until);
        }
        state.challenges.insert(
            canonical,
            StoredChallenge {
                record: ChallengeRecord {
                    session: key.clone(),
                    expires_at,
                    claimed_by: None,
                },
                keep_until,
            },
        );
        Ok(())
    }

    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome> {
        let mut state = self.lock()?;
        let Some(stored) = state.challenges.get_mut(&canonical_memo(memo)) else {
            return Ok(ClaimOutcome::UnknownMemo);
        };
        if stored.keep_until <= claim.now {
            return Ok(ClaimOutcome::UnknownMemo);
        }
        if stored.record.claimed_by.is_some() {
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
        if claim.block_time >= stored.record.expires_at {
            return Ok(ClaimOutcome::Expired);
        }
        stored.record.claimed_by = Some(claim.account.clone());
        let key = stored.record.session.clone();
        let Some(session) = state
            .sessions
            .get_mut(&key)
            .filter(|s| s.is_live(claim.now))
        else {
            return Ok(ClaimOutcome::SessionGone);
        };
        session.apply_claim(claim);
        Ok(ClaimOutcome::LoggedIn(key))
    }

    async fn cursor(&self) -> StoreResult<Option<ChainCursor>> {
        Ok(self.lock()?.cursor.clone())
    }

    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()> {
        self.lock()?.cursor = Some(cursor.clone());
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        self.lock().map(|_| ())
    }

    async fn sweep_expired(&self, now: UnixTime) -> StoreResult<usize> {
        let mut state = self.lock()?;
        let count = |state: &State| {
            state.sessions.len() + state.challenges.len() + state.wallet_challenges.len()
        };
        let before = count(&state);
        state.sessions.retain(|_, s| s.is_live(now));
        state.challenges.retain(|_, c| c.keep_until > now);
        state
            .wallet_challenges
            .retain(|_, c| c.expires_at.saturating_add(WALLET_CHALLENGE_GRACE_SECS) > now);
        let grants_before = state.grants.len();
        state.grants.retain(|_, g| g.is_live(now));
        Ok(before - count(&state) + (grants_before - state.grants.len()))
    }

    /// One process owns this store: it always follows the chain.
    async fn acquire_follower_lease(&self, _holder: &str, _ttl_secs: u64) -> StoreResult<bool> {
        Ok(true)
    }

    /// No other instance shares this store: nothing to hear.
    fn revocations(&self) -> Option<tokio::sync::broadcast::Receiver<SessionKey>> {
        None
    }

    fn revocation_feed_status(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()> {
        self.lock()?
            .wallet_challenges
            .insert(key.clone(), challenge.clone());
        Ok(())
    }

    async fn take_wallet_challenge(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<WalletChallenge>> {
        let now = now_unix();
        Ok(self
            .lock()?
            .wallet_challenges
            .remove(key)
            .filter(|c| c.expires_at.saturating_add(WALLET_CHALLENGE_GRACE_SECS) > now))
    }

    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let now = now_unix();
        let mut state = self.lock()?;
        let Some(session) = state.sessions.get_mut(key).filter(|s| s.is_live(now)) else {
            return Ok(false);
        };
        session.account = Some(account.to_string());
        session.login = Some(proof.clone());
        session.expires_at = expires_at;
        session.memo = None;
        session.revoked_reason = None;
        Ok(true)
    }

    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool> {
        let now = now_unix();
        let mut state = self.lock()?;
        let Some(session) = state
            .sessions
            .get_mut(key)
            .filter(|s| s.is_live(now) && s.login.as_ref() == Some(proof))
        else {
            return Ok(false);
        };
        session.account = None;
        session.login = None;
        session.revoked_reason = Some(reason.to_string());
        Ok(true)
    }

    async fn get_value(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.lock()?.values.get(name).cloned())
    }

    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        let mut state = self.lock()?;
        if state.values.get(name).map(String::as_str) != expected {
            return Ok(false);
        }
        state.values.insert(name.to_string(), value.to_string());
        Ok(true)
    }

    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.lock()?
            .pending
            .insert(pending_order(pending), pending.clone());
        Ok(())
    }

    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>> {
        Ok(self
            .lock()?
            .pending
            .values()
            .take_while(|pending| pending.expiration < time)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.lock()?.pending.remove(&pending_order(pending));
        Ok(())
    }

    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()> {
        self.lock()?.grants.insert(
            name.to_string(),
            Grant {
                value: value.to_string(),
                expires_at,
                used_by: None,
            },
        );
        Ok(())
    }

    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>> {
        Ok(self
            .lock()?
            .grants
            .get(name)
            .filter(|g| g.is_live(now))
            .cloned())
    }

    async fn delete_grant(&self, name: &str) -> StoreResult<bool> {
        Ok(self.lock()?.grants.remove(name).is_some())
    }

    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        let mut state = self.lock()?;
        let Some(grant) = state.grants.get_mut(name).filter(|g| g.is_live(now)) else {
            return Ok(None);
        };
        let before = grant.clone();
        if grant.used_by.is_none() {
            grant.used_by = Some(mark.to_string());
            grant.expires_at = keep_until;
        }
        Ok(Some(before))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SessionKey {
        SessionKey(s.to_string())
    }

    fn claim(account: &str, block_time: UnixTime, now: UnixTime) -> Claim {
        Claim {
            account: account.to_string(),
            txid: "ab".repeat(20),
            block_num: 7,
            block_time,
            session_ttl_secs: 3600,
            now,
        }
    }

    #[tokio::test]
    async fn challenge_then_claim_logs_in_once() {
        let store = MemoryStore::new();
        let now = now_unix();
        store
            .put_session(&key("s1"), &SessionRecord::pending(now, now + 60))
            .await
            .unwrap();
        store
            .issue_challenge(&key("s1"), "Login:AbC", now + 600)
            .await
            .unwrap();
        let pending = store.get_session(&key("s1")).await.unwrap().unwrap();
        assert_eq!(pending.memo.as_deref(), Some("Login:AbC"));
        assert_eq!(pending.memo_expires_at, now + 600);
        assert!(
            pending.expires_at >= now + 1200,
            "pending session outlives the challenge grace"
        );
        assert_eq!(
            store.challenge("login:abc").unwrap().unwrap().session,
            key("s1")
        );

        let outcome = store
            .claim_challenge("login:abc", &claim("alice", now, now))
            .await
            .unwrap();
        assert_eq!(outcome, ClaimOutcome::LoggedIn(key("s1")));
        let session = store.get_session(&key("s1")).await.unwrap().unwrap();
        assert_eq!(session.account.as_deref(), Some("alice"));
        assert_eq!(session.memo, None);
        assert_eq!(session.expires_at, now + 3600);
        assert_eq!(session.login.unwrap().block_num, 7);

        let again = store
            .claim_challenge("login:abc", &claim("mallory", now, now))
            .await
            .unwrap();
        assert_eq!(again, ClaimOutcome::AlreadyClaimed);
        let session = store.get_session(&key("s1")).await.unwrap().unwrap();
        assert_eq!(session.account.as_deref(), Some("alice"));
    }

    #[tokio::test]
    async fn refusals() {
        let store = MemoryStore::new();
        let now = now_unix();
        assert!(
            store
                .issue_challenge(&key("missing"), "m", now + 60)
                .await
                .is_err()
        );
        assert_eq!(
            store
                .claim_challenge("nope", &claim("alice", now, now))
                .await
                .unwrap(),
            ClaimOutcome::UnknownMemo
        );

        store
            .put_session(&key("s"), &SessionRecord::pending(now, now + 60))
            .await
            .unwrap();
        store
            .issue_challenge(&key("s"), "m", now + 60)
            .await
            .unwrap();
        let late = store
            .claim_challenge("m", &claim("alice", now + 60, now))
            .await
            .unwrap();
        assert_eq!(late, ClaimOutcome::Expired);
        assert_eq!(
            store.challenge("m").unwrap().unwrap().claimed_by,
            None,
            "an expired claim changes nothing"
        );

        store.delete_session(&key("s")).await.unwrap();
        let gone = store
            .claim_challenge("m", &claim("alice", now, now))
            .await
            .unwrap();
        assert_eq!(gone, ClaimOutcome::SessionGone);
    }

    #[tokio::test]
    async fn expiry_and_sweep() {
        let store = MemoryStore::new();
        let now = now_unix();
        store
            .put_session(&key("old"), &SessionRecord::pending(now - 100, now))
            .await
            .unwrap();
        store
            .put_session(&key("live"), &SessionRecord::pending(now, now + 100))
            .await
            .unwrap();
        store
            .issue_challenge(&key("live"), "memo", now + 10)
            .await
            .unwrap();
        assert!(store.get_session(&key("old")).await.unwrap().is_none());
        assert!(store.get_session(&key("live")).await.unwrap().is_some());
        assert_eq!(store.sweep_expired(now).await.unwrap(), 1);
        // Well after the challenge's grace and the session's expiry.
        assert_eq!(store.sweep_expired(now + 1000).await.unwrap(), 2);
        assert_eq!(store.cursor().await.unwrap(), None);
        store
            .set_cursor(&ChainCursor::new(42, "2a00"))
            .await
            .unwrap();
        assert_eq!(
            store.cursor().await.unwrap(),
            Some(ChainCursor::new(42, "2a00"))
        );
        store.ping().await.unwrap();
    }
}
