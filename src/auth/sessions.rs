//! Session lifecycle on top of the store: find, create, challenge, log out.
//!
//! Why separate from the proxy: the rules for sessions (never adopt an
//! unknown id, a fresh memo whenever the old one expired, what the cookie
//! says) are the security core and must be testable without pingora. The
//! proxy only hands this module cookie header values and gets back facts.

use std::time::Duration;

use cookie::{Cookie, SameSite};

use super::RandomnessUnavailable;
use super::challenge::new_memo;
use super::cookie::{CookieCodec, SessionId};
use crate::store::{SessionKey, SessionRecord, SharedStore, StoreError, UnixTime};

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
}

/// A session that exists in the store.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub id: SessionId,
    pub key: SessionKey,
    pub record: SessionRecord,
    /// True when the id was minted by this call: the response must set the cookie.
    pub is_new: bool,
}

/// Session operations for the gateway.
pub struct SessionManager {
    store: SharedStore,
    codec: CookieCodec,
    settings: SessionSettings,
}

impl SessionManager {
    pub fn new(store: SharedStore, codec: CookieCodec, settings: SessionSettings) -> Self {
        Self {
            store,
            codec,
            settings,
        }
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.settings
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
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
    pub async fn account(
        &self,
        id: &SessionId,
        now: UnixTime,
    ) -> Result<Option<String>, StoreError> {
        let record = self.store.get_session(&id.store_key()).await?;
        Ok(record.filter(|r| r.is_live(now)).and_then(|r| r.account))
    }

    /// The session for a login page or status poll: the existing one if it is
    /// logged in or has a live memo; a fresh memo if its memo expired; a
    /// brand-new session (new id, never the presented one) otherwise.
    pub async fn ensure_challenge(
        &self,
        presented: Option<SessionId>,
        now: UnixTime,
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
                    });
                }
                let record = self.issue_challenge(&key, now).await?;
                return Ok(LiveSession {
                    id,
                    key,
                    record,
                    is_new: false,
                });
            }
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

    /// Revokes the session server-side. Returns whether one existed.
    pub async fn logout(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.store.delete_session(&id.store_key()).await
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
