//! Session lifecycle on top of the store: find, create, challenge, log out.
//!
//! Why separate from the proxy: the rules for sessions (never adopt an
//! unknown id, a fresh memo whenever the old one expired, what the cookie
//! says) are the security core and must be testable without pingora. The
//! proxy only hands this module cookie header values and gets back facts.

use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, SameSite};

use super::challenge::new_memo;
use super::cookie::{CookieCodec, SessionId};
use super::session_cache::SessionCache;
use crate::clock::UnixTime;
use crate::random::RandomnessUnavailable;
use crate::store::{SessionKey, SessionRecord, SharedStore, StoreError};

/// Settings from `session:` and `login:` in the config.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub ttl: Duration,
    pub challenge_ttl: Duration,
    pub memo_prefix: String,
    /// The cookie's name as sent (already `__Host-`-prefixed when Secure).
    pub cookie_name: String,
    pub secure: bool,
}

impl SessionSettings {
    /// The cookie name to use: `__Host-<name>` when Secure, so a sibling
    /// subdomain cannot plant (toss) a session cookie for us.
    pub fn effective_cookie_name(name: &str, secure: bool) -> String {
        if secure {
            format!("__Host-{name}")
        } else {
            name.to_string()
        }
    }
}

/// Why a session operation failed: never the visitor's fault, so 503.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Randomness(#[from] RandomnessUnavailable),
    /// A new session was needed but this client may not create one now.
    #[error("too many new sessions from this client")]
    RateLimited,
}

/// A session that exists in the store.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: SessionId,
    pub key: SessionKey,
    pub record: SessionRecord,
    /// True when the id was minted by this call: the response must set the cookie.
    pub is_new: bool,
    /// What this call did to the session's memo challenge.
    pub challenge: ChallengeChange,
}

/// What [`SessionManager::ensure_challenge`] did to the memo challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeChange {
    /// The current challenge is still valid (or the session is logged in).
    Kept,
    /// A challenge was issued where there was none.
    Issued,
    /// The previous challenge expired unclaimed and was replaced.
    RenewedExpired,
}

/// Session operations for the gateway.
pub struct SessionManager {
    store: SharedStore,
    codec: CookieCodec,
    settings: SessionSettings,
    /// Logged-in sessions recently read from the store (see
    /// [`super::session_cache`]); disabled unless set with [`SessionManager::with_cache`].
    cache: Arc<SessionCache>,
}

impl SessionManager {
    /// Without a session cache: every lookup reads the store.
    pub fn new(store: SharedStore, codec: CookieCodec, settings: SessionSettings) -> Self {
        Self {
            store,
            codec,
            settings,
            cache: Arc::new(SessionCache::disabled()),
        }
    }

    /// Uses `cache` for [`SessionManager::account`]. Whoever builds it
    /// should also run [`super::session_cache::follow_revocations`] when the
    /// store is shared with other instances.
    pub fn with_cache(mut self, cache: Arc<SessionCache>) -> Self {
        self.cache = cache;
        self
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    /// The stored record of a session (not cached: the pages want the
    /// memo, expiry and login proof as they are now).
    pub async fn record(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        self.store.get_session(key).await
    }

    /// The session id from the request's `Cookie` header values: the first
    /// cookie with our name whose MAC verifies (a tossed or forged duplicate
    /// is skipped). Junk is simply "no session".
    pub fn session_from_cookies<'a>(
        &self,
        headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> Option<SessionId> {
        headers
            .into_iter()
            .filter_map(|raw| std::str::from_utf8(raw).ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|c| c.name() == self.settings.cookie_name)
            .find_map(|c| self.codec.decode(c.value()))
    }

    /// The logged-in account of session `id`, if any. A store failure is an
    /// error, never "anonymous".
    ///
    /// Answered from the session cache when it holds a fresh entry; only a
    /// logged-in answer is cached (a session that logs in is seen at once).
    pub async fn account(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        if let Some(account) = self.cache.get(id, now) {
            return Ok(Some(account));
        }
        let key = id.store_key();
        let epoch = self.cache.epoch();
        let Some(record) = self.store.get_session(&key).await? else {
            return Ok(None);
        };
        if !record.is_live(now) {
            return Ok(None);
        }
        if let Some(account) = &record.account {
            self.cache
                .insert(id.clone(), key, account.clone(), record.expires_at, epoch);
        }
        Ok(record.account)
    }

    /// The session for a login page or status poll: the existing one if it is
    /// logged in or has a live memo; a fresh memo if its memo expired; a
    /// brand-new session (new id, never the presented one) otherwise, if
    /// `may_create` allows it.
    pub async fn ensure_challenge(
        &self,
        presented: Option<SessionId>,
        now: UnixTime,
        may_create: impl FnOnce() -> bool,
    ) -> Result<LiveSession, SessionError> {
        if let Some(id) = presented {
            let key = id.store_key();
            if let Some(record) = self
                .store
                .get_session(&key)
                .await?
                .filter(|r| r.is_live(now))
            {
                if record.account.is_some()
                    || (record.memo.is_some() && record.memo_expires_at > now)
                {
                    return Ok(LiveSession {
                        id,
                        key,
                        record,
                        is_new: false,
                        challenge: ChallengeChange::Kept,
                    });
                }
                let expired = record.memo.is_some();
                let record = self.issue_challenge(&key, now).await?;
                return Ok(LiveSession {
                    id,
                    key,
                    record,
                    is_new: false,
                    challenge: if expired {
                        ChallengeChange::RenewedExpired
                    } else {
                        ChallengeChange::Issued
                    },
                });
            }
        }
        if !may_create() {
            return Err(SessionError::RateLimited);
        }
        let id = SessionId::generate()?;
        let key = id.store_key();
        let challenge_ttl = self.settings.challenge_ttl.as_secs().max(1);
        self.store
            .put_session(&key, &SessionRecord::pending(now, now + 2 * challenge_ttl))
            .await?;
        let record = self.issue_challenge(&key, now).await?;
        Ok(LiveSession {
            id,
            key,
            record,
            is_new: true,
            challenge: ChallengeChange::Issued,
        })
    }

    async fn issue_challenge(
        &self,
        key: &SessionKey,
        now: UnixTime,
    ) -> Result<SessionRecord, SessionError> {
        let memo = new_memo(&self.settings.memo_prefix)?;
        let expires_at = now + self.settings.challenge_ttl.as_secs().max(1);
        self.store.issue_challenge(key, &memo, expires_at).await?;
        self.store.get_session(key).await?.ok_or_else(|| {
            SessionError::Store(StoreError::new(
                "session vanished while issuing its challenge",
            ))
        })
    }

    /// Revokes the session server-side (and in this instance's cache at
    /// once; other instances hear it from the store). Returns whether one
    /// existed.
    pub async fn logout(&self, id: &SessionId) -> Result<bool, StoreError> {
        let key = id.store_key();
        self.cache.evict(&key);
        let deleted = self.store.delete_session(&key).await;
        // Again: a lookup that raced the delete may have re-cached it.
        self.cache.evict(&key);
        deleted
    }

    /// `Set-Cookie` value for a session: HttpOnly, SameSite=Lax, Path=/,
    /// Secure when configured or on TLS, lifetime `session.ttl`.
    pub fn set_cookie(&self, id: &SessionId) -> String {
        Cookie::build((self.settings.cookie_name.clone(), self.codec.encode(id)))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.settings.secure)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(self.settings.ttl.as_secs()).unwrap_or(i64::MAX),
            ))
            .build()
            .to_string()
    }

    /// `Set-Cookie` value that deletes the session cookie.
    pub fn clear_cookie(&self) -> String {
        Cookie::build((self.settings.cookie_name.clone(), ""))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.settings.secure)
            .max_age(cookie::time::Duration::ZERO)
            .build()
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{Claim, ClaimOutcome, Store};

    fn manager() -> (SessionManager, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let settings = SessionSettings {
            ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(600),
            memo_prefix: "login ".into(),
            cookie_name: "steemgate".into(),
            secure: false,
        };
        let codec = CookieCodec::new(&["unit-test-secret-unit-test-secret-0123"]);
        (SessionManager::new(store.clone(), codec, settings), store)
    }

    const NOW: UnixTime = 1_800_000_000;

    #[tokio::test]
    async fn a_new_visitor_gets_a_new_session_with_a_memo() {
        let (sessions, _) = manager();
        let live = sessions.ensure_challenge(None, NOW, || true).await.unwrap();
        assert!(live.is_new);
        let memo = live.record.memo.clone().unwrap();
        assert!(memo.starts_with("login "));
        assert_eq!(live.record.memo_expires_at, NOW + 600);
        assert_eq!(sessions.account(&live.id, NOW).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unknown_presented_id_is_never_adopted() {
        let (sessions, store) = manager();
        let forged = SessionId::generate().unwrap();
        let live = sessions
            .ensure_challenge(Some(forged.clone()), NOW, || true)
            .await
            .unwrap();
        assert!(live.is_new);
        assert_ne!(live.id, forged, "a fresh id, not the one the client chose");
        assert!(
            store
                .get_session(&forged.store_key())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn the_memo_is_kept_while_live_and_renewed_after_expiry() {
        let (sessions, _) = manager();
        let first = sessions.ensure_challenge(None, NOW, || true).await.unwrap();
        assert_eq!(first.challenge, ChallengeChange::Issued);
        let again = sessions
            .ensure_challenge(Some(first.id.clone()), NOW + 10, || true)
            .await
            .unwrap();
        assert!(!again.is_new);
        assert_eq!(again.challenge, ChallengeChange::Kept);
        assert_eq!(again.record.memo, first.record.memo);
        let later = sessions
            .ensure_challenge(Some(first.id.clone()), NOW + 601, || true)
            .await
            .unwrap();
        assert!(!later.is_new, "same session, same cookie");
        assert_eq!(later.challenge, ChallengeChange::RenewedExpired);
        assert_ne!(
            later.record.memo, first.record.memo,
            "a fresh memo once the old one expired"
        );
        assert_eq!(later.record.memo_expires_at, NOW + 601 + 600);
    }

    #[tokio::test]
    async fn a_claimed_memo_logs_the_session_in_and_logout_revokes_it() {
        let (sessions, store) = manager();
        let live = sessions.ensure_challenge(None, NOW, || true).await.unwrap();
        let memo = live.record.memo.clone().unwrap();
        let claim = Claim {
            account: "alice".into(),
            txid: "ab".repeat(20),
            block_num: 7,
            block_time: NOW + 5,
            session_ttl_secs: 3600,
            now: NOW + 6,
        };
        assert_eq!(
            store
                .claim_challenge(&memo.to_uppercase(), &claim)
                .await
                .unwrap(),
            ClaimOutcome::LoggedIn(live.key.clone())
        );
        assert_eq!(
            sessions
                .account(&live.id, NOW + 7)
                .await
                .unwrap()
                .as_deref(),
            Some("alice")
        );
        let kept = sessions
            .ensure_challenge(Some(live.id.clone()), NOW + 8, || true)
            .await
            .unwrap();
        assert_eq!(kept.record.account.as_deref(), Some("alice"));
        assert!(sessions.logout(&live.id).await.unwrap());
        assert_eq!(sessions.account(&live.id, NOW + 9).await.unwrap(), None);
    }

    #[test]
    fn cookie_headers_are_parsed_leniently_and_only_verified_ids_count() {
        let (sessions, _) = manager();
        let id = SessionId::generate().unwrap();
        let value = format!(
            "steemgate={}",
            CookieCodec::new(&["unit-test-secret-unit-test-secret-0123"]).encode(&id)
        );
        let headers: [&[u8]; 3] = [
            b"a=1; steemgate=v1.forged.mac",
            b"\xff\xfe junk",
            value.as_bytes(),
        ];
        assert_eq!(sessions.session_from_cookies(headers), Some(id));
        let none: [&[u8]; 2] = [b"steemgate=", b"other=v1.x.y"];
        assert_eq!(sessions.session_from_cookies(none), None);
    }

    #[test]
    fn cookie_attributes() {
        let (sessions, _) = manager();
        let id = SessionId::generate().unwrap();
        let set = sessions.set_cookie(&id);
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
            assert!(set.contains(attribute), "{set}");
        }
        assert!(!set.contains("Secure"));
        assert!(sessions.clear_cookie().contains("Max-Age=0"));
        assert_eq!(
            SessionSettings::effective_cookie_name("steemgate", true),
            "__Host-steemgate"
        );
    }
}

/// The session cache as seen through the manager.
#[cfg(test)]
mod cache_tests {
    use super::*;
    use crate::clock::now_unix;
    use crate::store::faulty::FaultyStore;
    use crate::store::memory::MemoryStore;
    use crate::store::{Claim, ClaimOutcome, Store};

    fn manager(store: Arc<FaultyStore>, cache_ttl: Duration) -> SessionManager {
        SessionManager::new(
            store,
            CookieCodec::new(&[b"unit-test-secret-0123456789abcdef-xyz".to_vec()]),
            SessionSettings {
                ttl: Duration::from_secs(3600),
                challenge_ttl: Duration::from_secs(600),
                memo_prefix: String::new(),
                cookie_name: "steemgate".into(),
                secure: false,
            },
        )
        .with_cache(Arc::new(SessionCache::new(cache_ttl, 1000)))
    }

    /// A fresh pending session with a memo.
    async fn pending(sessions: &SessionManager) -> LiveSession {
        sessions
            .ensure_challenge(None, now_unix(), || true)
            .await
            .unwrap()
    }

    async fn log_in(store: &FaultyStore, live: &LiveSession, account: &str) {
        let now = now_unix();
        let claim = Claim {
            account: account.into(),
            txid: "tx".into(),
            block_num: 1,
            block_time: now,
            session_ttl_secs: 3600,
            now,
        };
        let memo = crate::store::memo::canonical_memo(live.record.memo.as_deref().unwrap());
        let outcome = store.claim_challenge(&memo, &claim).await.unwrap();
        assert!(matches!(outcome, ClaimOutcome::LoggedIn(_)), "{outcome:?}");
    }

    #[tokio::test]
    async fn a_warm_cache_answers_without_the_store() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let sessions = manager(store.clone(), Duration::from_secs(60));
        let live = pending(&sessions).await;
        log_in(&store, &live, "alice").await;
        let before = store.calls("get_session");
        for _ in 0..10 {
            assert_eq!(
                sessions.account(&live.id, now_unix()).await.unwrap(),
                Some("alice".into())
            );
        }
        assert_eq!(store.calls("get_session"), before + 1);
    }

    #[tokio::test]
    async fn anonymous_is_never_cached_so_a_login_shows_at_once() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let sessions = manager(store.clone(), Duration::from_secs(60));
        let live = pending(&sessions).await;
        assert_eq!(sessions.account(&live.id, now_unix()).await.unwrap(), None);
        assert_eq!(sessions.account(&live.id, now_unix()).await.unwrap(), None);
        log_in(&store, &live, "bob").await;
        assert_eq!(
            sessions.account(&live.id, now_unix()).await.unwrap(),
            Some("bob".into())
        );
    }

    #[tokio::test]
    async fn store_errors_are_not_cached() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let sessions = manager(store.clone(), Duration::from_secs(60));
        let live = pending(&sessions).await;
        log_in(&store, &live, "carol").await;
        store.fail_all();
        assert!(sessions.account(&live.id, now_unix()).await.is_err());
        assert!(sessions.account(&live.id, now_unix()).await.is_err());
        store.heal();
        assert_eq!(
            sessions.account(&live.id, now_unix()).await.unwrap(),
            Some("carol".into())
        );
    }

    #[tokio::test]
    async fn logout_evicts_locally_at_once() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let sessions = manager(store.clone(), Duration::from_secs(60));
        let live = pending(&sessions).await;
        log_in(&store, &live, "dave").await;
        assert!(
            sessions
                .account(&live.id, now_unix())
                .await
                .unwrap()
                .is_some()
        );
        assert!(sessions.logout(&live.id).await.unwrap());
        assert_eq!(sessions.account(&live.id, now_unix()).await.unwrap(), None);
    }

    #[tokio::test]
    async fn without_a_cache_every_lookup_reads_the_store() {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        let sessions = manager(store.clone(), Duration::ZERO);
        let live = pending(&sessions).await;
        log_in(&store, &live, "erin").await;
        let before = store.calls("get_session");
        for _ in 0..3 {
            assert!(
                sessions
                    .account(&live.id, now_unix())
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        assert_eq!(store.calls("get_session"), before + 3);
    }
}
