//! Signed identity assertions: the `X-Steem-Assertion` header.
//!
//! Why: `X-Steem-Account` is only trustworthy if nothing but the gateway can
//! reach the upstream. An upstream that cannot guarantee that (a shared
//! network, a misrouted port, a second proxy in front) verifies a short-lived
//! JWT instead: signed with Ed25519 (`EdDSA`) by keys only the gateway holds,
//! checked against the public keys the gateway serves at
//! `GET /.steemgate/jwks.json`.
//!
//! Claims: `iss` (config `assertion.issuer`, else `{scheme}://{host}`),
//! `aud` (the request's host), `sub` (the account), `iat`, `exp`
//! (`iat + 5 min`), `chain` (`steem`/`hive`) and a random `jti`.
//!
//! Keys live in the store (one JSON document under [`KEYRING_NAME`]), so
//! every instance sharing a store signs with the same key and a restart
//! keeps it. The first instance to need a key creates it with a
//! compare-and-set write; the others read it. A new key is made every
//! `assertion.rotate_every` (default 7 days); the previous key stays in the
//! JWKS for another full period, long after every token it signed (5 min)
//! has expired, so an upstream never meets a `kid` it cannot find after a
//! refetch. Private keys never leave the store and this process.
//!
//! Hot path: a token is reused for [`TOKEN_REUSE`] per (account, audience,
//! issuer), so signing (~20 µs) happens about once a minute per visitor and
//! host, and the key ring is re-read from the store at most every
//! [`KEYRING_REFRESH`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};

use super::keyring::SigningKeys;
pub use super::keyring::{KEYRING_REFRESH, KeyError, KeyRing};
use crate::clock::{UnixTime, now_unix};
use crate::config::SigningAlg;
use crate::store::SharedStore;

/// Store name of the key ring document.
pub const KEYRING_NAME: &str = "assertion-signing-keys";
/// How long an assertion is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long a minted assertion is reused for the same account and host
/// (an upstream always receives one with at least 4 minutes left).
pub const TOKEN_REUSE: Duration = Duration::from_secs(60);
// The shortest accepted `assertion.rotate_every` (a config bound) must let
// the previous key outlive every token it signed plus every instance's
// refresh delay.
const _: () = assert!(
    crate::config::MIN_ROTATE_EVERY.as_secs() >= TOKEN_TTL.as_secs() + KEYRING_REFRESH.as_secs()
);
/// Most cached tokens kept before the cache is cleared.
const MAX_CACHED_TOKENS: usize = 50_000;

/// Why no assertion could be made: every case fails closed (no header on
/// an optional route's request would look anonymous; the proxy answers 503).
pub type AssertionError = KeyError;

/// The claims of an assertion.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssertionClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: UnixTime,
    pub exp: UnixTime,
    /// `steem` or `hive`.
    pub chain: String,
    pub jti: String,
    /// The access policies the account satisfied on this route (absent
    /// when the route has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
}

/// Settings from the config (`assertion:`).
#[derive(Debug, Clone)]
pub struct AssertionSettings {
    /// Fixed `iss`; `None`: the request's origin (`{scheme}://{host}`).
    pub issuer: Option<String>,
    pub rotate_every: Duration,
    /// `steem` or `hive`.
    pub chain: String,
}

struct CachedToken {
    token: String,
    minted_at: UnixTime,
}

/// Mints assertions and serves the JWKS; one per process, shared by all
/// requests.
pub struct Asserter {
    settings: AssertionSettings,
    keys: SigningKeys,
    tokens: Mutex<HashMap<(String, String, String, String), CachedToken>>,
}

impl Asserter {
    pub fn new(store: SharedStore, settings: AssertionSettings) -> Self {
        Self {
            keys: SigningKeys::new(
                store,
                KEYRING_NAME,
                SigningAlg::EdDSA,
                settings.rotate_every,
            ),
            settings,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The `iss` for a request to `host` over `scheme`.
    pub fn issuer_for(&self, scheme: &str, host: &str) -> String {
        self.settings
            .issuer
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{host}"))
    }

    /// An assertion that `account` is logged in, for the upstream of
    /// `audience` (the request's host).
    pub async fn assertion(
        &self,
        account: &str,
        audience: &str,
        issuer: &str,
        policies: &[Arc<str>],
    ) -> Result<String, AssertionError> {
        self.assertion_at(account, audience, issuer, policies, now_unix())
            .await
    }

    /// [`Asserter::assertion`] at a given time (tests drive rotation with it).
    pub async fn assertion_at(
        &self,
        account: &str,
        audience: &str,
        issuer: &str,
        policies: &[Arc<str>],
        now: UnixTime,
    ) -> Result<String, AssertionError> {
        let cache_key = (
            account.to_string(),
            audience.to_string(),
            issuer.to_string(),
            policies.join(","),
        );
        if let Ok(tokens) = self.tokens.lock()
            && let Some(cached) = tokens.get(&cache_key)
            && cached.minted_at <= now
            && now < cached.minted_at.saturating_add(TOKEN_REUSE.as_secs())
        {
            return Ok(cached.token.clone());
        }
        let ring = self.key_ring_at(now).await?;
        let mut jti = [0u8; 16];
        crate::random::os_random(&mut jti).map_err(|e| AssertionError::Signing(e.to_string()))?;
        let claims = AssertionClaims {
            iss: issuer.to_string(),
            aud: audience.to_string(),
            sub: account.to_string(),
            iat: now,
            exp: now.saturating_add(TOKEN_TTL.as_secs()),
            chain: self.settings.chain.clone(),
            jti: hex::encode(jti),
            policies: policies.iter().map(|p| p.to_string()).collect(),
        };
        let token = ring.sign(&claims, "JWT")?;
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() >= MAX_CACHED_TOKENS {
                tokens.clear();
            }
            tokens.insert(
                cache_key,
                CachedToken {
                    token: token.clone(),
                    minted_at: now,
                },
            );
        }
        Ok(token)
    }

    /// The JWKS document (`{"keys":[...]}`), newest key first.
    pub async fn jwks(&self) -> Result<JwkSet, AssertionError> {
        Ok(self.key_ring_at(now_unix()).await?.jwks())
    }

    /// The key ring as of `now` (see [`SigningKeys::key_ring_at`]).
    pub async fn key_ring_at(&self, now: UnixTime) -> Result<Arc<KeyRing>, AssertionError> {
        self.keys.key_ring_at(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    const DAY: u64 = 86400;

    fn asserter(store: SharedStore) -> Asserter {
        Asserter::new(
            store,
            AssertionSettings {
                issuer: Some("https://gate.example".into()),
                rotate_every: Duration::from_secs(7 * DAY),
                chain: "steem".into(),
            },
        )
    }

    fn verify(token: &str, jwks: &JwkSet, now: UnixTime) -> AssertionClaims {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let jwk = jwks.find(&kid).expect("kid in the JWKS");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&["app.example"]);
        validation.set_issuer(&["https://gate.example"]);
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<AssertionClaims>(
            token,
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert!(claims.iat <= now && now < claims.exp);
        claims
    }

    #[tokio::test]
    async fn tokens_verify_and_are_reused_briefly() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let asserter = asserter(store);
        let now = now_unix();
        let token = asserter
            .assertion_at("alice", "app.example", "https://gate.example", &[], now)
            .await
            .unwrap();
        let jwks = asserter.key_ring_at(now).await.unwrap().jwks();
        let claims = verify(&token, &jwks, now);
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.chain, "steem");
        assert_eq!(claims.exp - claims.iat, TOKEN_TTL.as_secs());
        let again = asserter
            .assertion_at(
                "alice",
                "app.example",
                "https://gate.example",
                &[],
                now + 30,
            )
            .await
            .unwrap();
        assert_eq!(again, token);
        let later = asserter
            .assertion_at(
                "alice",
                "app.example",
                "https://gate.example",
                &[],
                now + 61,
            )
            .await
            .unwrap();
        assert_ne!(later, token);
        let other = asserter
            .assertion_at("bob", "app.example", "https://gate.example", &[], now + 61)
            .await
            .unwrap();
        assert_eq!(verify(&other, &jwks, now + 61).sub, "bob");
    }

    #[tokio::test]
    async fn rotation_keeps_the_previous_key_published_then_drops_it() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let asserter = asserter(store.clone());
        let now = now_unix();
        let first = asserter.key_ring_at(now).await.unwrap();
        let first_kid = first.current_kid().unwrap().to_string();
        assert_eq!(first.jwks().keys.len(), 1);

        let rotated = asserter.key_ring_at(now + 7 * DAY).await.unwrap();
        let second_kid = rotated.current_kid().unwrap().to_string();
        assert_ne!(second_kid, first_kid);
        let kids: Vec<_> = rotated
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids, vec![second_kid.clone(), first_kid.clone()]);
        // A token signed with the new key verifies against the JWKS.
        let token = asserter
            .assertion_at(
                "alice",
                "app.example",
                "https://gate.example",
                &[],
                now + 7 * DAY,
            )
            .await
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.unwrap(),
            second_kid
        );

        // Another instance on the same store sees the same ring.
        let other = asserter_on(store.clone());
        assert_eq!(
            other
                .key_ring_at(now + 7 * DAY + 1)
                .await
                .unwrap()
                .current_kid(),
            Some(second_kid.as_str())
        );

        let third = asserter.key_ring_at(now + 14 * DAY).await.unwrap();
        let kids: Vec<_> = third
            .jwks()
            .keys
            .iter()
            .map(|k| k.common.key_id.clone().unwrap())
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[1], second_kid);
        assert!(!kids.contains(&first_kid));
    }

    fn asserter_on(store: SharedStore) -> Asserter {
        asserter(store)
    }

    #[tokio::test]
    async fn corrupt_key_ring_fails_closed() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        assert!(
            store
                .swap_value(
                    KEYRING_NAME,
                    None,
                    "{\"keys\":[{\"created_at\":1,\"seed\":\"short\"}]}"
                )
                .await
                .unwrap()
        );
        let asserter = asserter(store);
        assert!(matches!(
            asserter
                .assertion("alice", "app.example", "https://gate.example", &[])
                .await,
            Err(AssertionError::Corrupt(_))
        ));
    }
}
