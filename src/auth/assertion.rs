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

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::clock::{UnixTime, now_unix};
use crate::store::{SharedStore, StoreError};

/// Store name of the key ring document.
pub const KEYRING_NAME: &str = "assertion-signing-keys";
/// How long an assertion is valid.
pub const TOKEN_TTL: Duration = Duration::from_secs(300);
/// How long a minted assertion is reused for the same account and host
/// (an upstream always receives one with at least 4 minutes left).
pub const TOKEN_REUSE: Duration = Duration::from_secs(60);
/// How often an instance re-reads the key ring from the store (to pick up
/// a key another instance rotated in).
pub const KEYRING_REFRESH: Duration = Duration::from_secs(60);
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
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored assertion key ring is unreadable: {0}")]
    Corrupt(String),
    #[error("cannot make an assertion key: {0}")]
    KeyGeneration(String),
    #[error("cannot sign the assertion: {0}")]
    Signing(String),
    #[error("the assertion key ring kept changing under concurrent updates")]
    Contended,
}

/// One key as stored: its creation time and 32-byte Ed25519 seed.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKey {
    pub created_at: UnixTime,
    /// base64url (no padding) of the private seed.
    pub seed: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("created_at", &self.created_at)
            .field("seed", &"(redacted)")
            .finish()
    }
}

impl StoredKey {
    /// A fresh key from the OS random source.
    pub fn generate(created_at: UnixTime) -> Result<Self, AssertionError> {
        let mut seed = [0u8; 32];
        crate::random::os_random(&mut seed)
            .map_err(|e| AssertionError::KeyGeneration(e.to_string()))?;
        Ok(Self {
            created_at,
            seed: URL_SAFE_NO_PAD.encode(seed),
        })
    }
}

/// The key ring document: newest key first, at most two keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKeyRing {
    pub keys: Vec<StoredKey>,
}

impl StoredKeyRing {
    fn parse(text: &str) -> Result<Self, AssertionError> {
        let ring: Self =
            serde_json::from_str(text).map_err(|e| AssertionError::Corrupt(e.to_string()))?;
        if ring.keys.is_empty() {
            return Err(AssertionError::Corrupt("no keys".into()));
        }
        Ok(ring)
    }

    pub fn to_json(&self) -> Result<String, AssertionError> {
        serde_json::to_string(self).map_err(|e| AssertionError::Corrupt(e.to_string()))
    }

    /// The ring that should be stored at `now`, if it differs from `self`
    /// (`None`: nothing stored yet): a first key; or, once the newest key is
    /// `rotate_every` old, a new key followed by the previous one (older
    /// keys are dropped: they signed nothing for a whole period).
    pub fn next_generation(
        current: Option<&Self>,
        now: UnixTime,
        rotate_every: Duration,
        fresh: impl FnOnce() -> Result<StoredKey, AssertionError>,
    ) -> Result<Option<Self>, AssertionError> {
        let newest = current.and_then(|ring| ring.keys.first());
        match newest {
            Some(key) if key.created_at.saturating_add(rotate_every.as_secs()) > now => Ok(None),
            Some(key) => Ok(Some(Self {
                keys: vec![fresh()?, key.clone()],
            })),
            None => Ok(Some(Self {
                keys: vec![fresh()?],
            })),
        }
    }
}

/// A usable key: signing half, public JWK, and its id.
struct RingKey {
    kid: String,
    created_at: UnixTime,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl RingKey {
    fn from_stored(stored: &StoredKey) -> Result<Self, AssertionError> {
        let raw = URL_SAFE_NO_PAD
            .decode(stored.seed.as_bytes())
            .map_err(|e| AssertionError::Corrupt(format!("key seed: {e}")))?;
        let seed: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| AssertionError::Corrupt("key seed is not 32 bytes".into()))?;
        let signing = SigningKey::from_bytes(&seed);
        let der = signing
            .to_pkcs8_der()
            .map_err(|e| AssertionError::Corrupt(format!("key encoding: {e}")))?;
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                key_type: OctetKeyPairType::OctetKeyPair,
                curve: EllipticCurve::Ed25519,
                x: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
            }),
        };
        // RFC 7638 thumbprint: the same key always has the same id.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| AssertionError::Corrupt(format!("key thumbprint: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        Ok(Self {
            kid,
            created_at: stored.created_at,
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            jwk,
        })
    }
}

/// The loaded key ring of this instance.
pub struct KeyRing {
    /// Newest first; never empty.
    keys: Vec<RingKey>,
    loaded_at: UnixTime,
}

impl KeyRing {
    fn from_stored(ring: &StoredKeyRing, loaded_at: UnixTime) -> Result<Self, AssertionError> {
        let keys = ring
            .keys
            .iter()
            .map(RingKey::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AssertionError::Corrupt("no keys".into()));
        }
        Ok(Self { keys, loaded_at })
    }

    fn current(&self) -> Result<&RingKey, AssertionError> {
        self.keys
            .first()
            .ok_or_else(|| AssertionError::Corrupt("no keys".into()))
    }

    /// The `kid` tokens are signed with now.
    pub fn current_kid(&self) -> Option<&str> {
        self.keys.first().map(|k| k.kid.as_str())
    }

    /// The public keys, newest first.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.iter().map(|k| k.jwk.clone()).collect(),
        }
    }
}

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
    store: SharedStore,
    settings: AssertionSettings,
    ring: ArcSwapOption<KeyRing>,
    /// One store refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
    tokens: Mutex<HashMap<(String, String, String, String), CachedToken>>,
}

impl Asserter {
    pub fn new(store: SharedStore, settings: AssertionSettings) -> Self {
        Self {
            store,
            settings,
            ring: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
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
        let key = ring.current()?;
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|e| AssertionError::Signing(e.to_string()))?;
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

    /// The key ring as of `now`: from memory while fresh, else from the
    /// store (creating or rotating the key when due).
    pub async fn key_ring_at(&self, now: UnixTime) -> Result<Arc<KeyRing>, AssertionError> {
        if let Some(ring) = self.ring.load_full()
            && self.is_fresh(&ring, now)
        {
            return Ok(ring);
        }
        let _one_at_a_time = self.refreshing.lock().await;
        let loaded = self.ring.load_full();
        if let Some(ring) = &loaded
            && self.is_fresh(ring, now)
        {
            return Ok(ring.clone());
        }
        match self.load_or_rotate(now).await {
            Ok(ring) => {
                let ring = Arc::new(ring);
                self.ring.store(Some(ring.clone()));
                Ok(ring)
            }
            Err(e) => match loaded {
                // Keep signing through a store outage while every instance
                // still publishes this key (it is dropped two periods after
                // its creation at the earliest).
                Some(ring) if self.still_published(&ring, now) => {
                    tracing::warn!(error = %e, "cannot refresh the assertion keys; using the loaded ones");
                    Ok(ring)
                }
                _ => Err(e),
            },
        }
    }

    fn is_fresh(&self, ring: &KeyRing, now: UnixTime) -> bool {
        let newest = ring.keys.first().map_or(0, |k| k.created_at);
        now >= ring.loaded_at
            && now < ring.loaded_at.saturating_add(KEYRING_REFRESH.as_secs())
            && now < newest.saturating_add(self.settings.rotate_every.as_secs())
    }

    fn still_published(&self, ring: &KeyRing, now: UnixTime) -> bool {
        let newest = ring.keys.first().map_or(0, |k| k.created_at);
        now < newest.saturating_add(self.settings.rotate_every.as_secs().saturating_mul(2))
    }

    async fn load_or_rotate(&self, now: UnixTime) -> Result<KeyRing, AssertionError> {
        for _ in 0..3 {
            let raw = self.store.get_value(KEYRING_NAME).await?;
            let stored = raw.as_deref().map(StoredKeyRing::parse).transpose()?;
            let next = StoredKeyRing::next_generation(
                stored.as_ref(),
                now,
                self.settings.rotate_every,
                || StoredKey::generate(now),
            )?;
            match (next, stored) {
                (None, Some(stored)) => return KeyRing::from_stored(&stored, now),
                (Some(next), _) => {
                    let written = self
                        .store
                        .swap_value(KEYRING_NAME, raw.as_deref(), &next.to_json()?)
                        .await?;
                    if written {
                        tracing::info!(
                            keys = next.keys.len(),
                            "assertion signing key created (rotation)"
                        );
                        return KeyRing::from_stored(&next, now);
                    }
                    // Another instance changed it first: read theirs.
                }
                (None, None) => return Err(AssertionError::Corrupt("no keys".into())),
            }
        }
        Err(AssertionError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use jsonwebtoken::{DecodingKey, Validation};

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

    #[test]
    fn next_generation_rules() {
        let week = Duration::from_secs(7 * DAY);
        let key = |at| StoredKey {
            created_at: at,
            seed: format!("seed{at}"),
        };
        let made = StoredKeyRing::next_generation(None, 100, week, || Ok(key(100)))
            .unwrap()
            .unwrap();
        assert_eq!(made.keys, vec![key(100)]);
        assert!(
            StoredKeyRing::next_generation(Some(&made), 100 + 7 * DAY - 1, week, || Ok(key(0)))
                .unwrap()
                .is_none()
        );
        let ring = StoredKeyRing {
            keys: vec![key(100), key(1)],
        };
        let rotated =
            StoredKeyRing::next_generation(Some(&ring), 100 + 7 * DAY, week, || Ok(key(9)))
                .unwrap()
                .unwrap();
        assert_eq!(rotated.keys, vec![key(9), key(100)]);
    }
}
