//! Rotating signing keys, kept in the store and shared by every instance.
//!
//! Why a module of its own: two things the gateway signs need the same key
//! life cycle: `X-Steem-Assertion` (EdDSA) and OpenID Connect ID tokens
//! (RS256 by default, ES256 or EdDSA when a client registers it). Every
//! instance sharing a store must sign with the same key and publish the
//! same JWKS, a restart must keep the key, and rotation must never leave a
//! verifier holding a token whose `kid` it cannot find.
//!
//! How: one JSON document per ring under a store name. The first instance
//! to need a key creates it with a compare-and-set write; the others read
//! it. A new key is made every `rotate_every`; the previous one stays
//! published for another full period (far longer than any token lives), and
//! older ones are dropped. Instances re-read the ring at most every
//! [`KEYRING_REFRESH`], and keep signing with a loaded key through a store
//! outage for as long as every instance still publishes it. Private keys
//! never leave the store and this process.
//!
//! Key material: Ed25519 seeds (32 bytes), P-256 keys as PKCS#8 (made by
//! `ring`), RSA-2048 keys as PKCS#1 (made by the constant-time `rsa` 0.10).
//! Signing is jsonwebtoken's pure-Rust backend.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::clock::UnixTime;
use crate::config::SigningAlg;
use crate::store::{SharedStore, StoreError};

/// How often an instance re-reads a key ring from the store (to pick up a
/// key another instance rotated in).
pub const KEYRING_REFRESH: Duration = Duration::from_secs(60);
/// Size of generated RSA keys.
const RSA_BITS: usize = 2048;

/// Why nothing could be signed: every case fails closed (the caller
/// answers 503 or an OpenID `server_error`).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stored signing key ring is unreadable: {0}")]
    Corrupt(String),
    #[error("cannot make a signing key: {0}")]
    KeyGeneration(String),
    #[error("cannot sign: {0}")]
    Signing(String),
    #[error("the signing key ring kept changing under concurrent updates")]
    Contended,
}

fn eddsa() -> SigningAlg {
    SigningAlg::EdDSA
}

/// One key as stored: when it was made, its algorithm and its private
/// material (base64url, no padding). Rings written before OpenID support
/// have no `alg`: they are Ed25519.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKey {
    pub created_at: UnixTime,
    #[serde(default = "eddsa")]
    pub alg: SigningAlg,
    /// Ed25519: the 32-byte seed; ES256: PKCS#8; RS256: PKCS#1.
    pub seed: String,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("created_at", &self.created_at)
            .field("alg", &self.alg)
            .field("seed", &"(redacted)")
            .finish()
    }
}

impl StoredKey {
    /// A fresh key from the OS random source. RSA takes tens of
    /// milliseconds: call it off the async runtime.
    pub fn generate(alg: SigningAlg, created_at: UnixTime) -> Result<Self, KeyError> {
        let material = match alg {
            SigningAlg::EdDSA => {
                let mut seed = [0u8; 32];
                crate::random::os_random(&mut seed)
                    .map_err(|e| KeyError::KeyGeneration(e.to_string()))?;
                seed.to_vec()
            }
            SigningAlg::ES256 => {
                let rng = ring::rand::SystemRandom::new();
                ring::signature::EcdsaKeyPair::generate_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &rng,
                )
                .map_err(|_| KeyError::KeyGeneration("P-256 key generation failed".into()))?
                .as_ref()
                .to_vec()
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey;
                let key = rsa::PrivateKey::new(&mut rand::rngs::SysRng, RSA_BITS)
                    .map_err(|e| KeyError::KeyGeneration(e.to_string()))?;
                key.to_pkcs1_der()
                    .map_err(|e| KeyError::KeyGeneration(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
        };
        Ok(Self {
            created_at,
            alg,
            seed: URL_SAFE_NO_PAD.encode(material),
        })
    }
}

/// The key ring document: newest key first, at most two keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredKeyRing {
    pub keys: Vec<StoredKey>,
}

impl StoredKeyRing {
    fn parse(text: &str) -> Result<Self, KeyError> {
        let ring: Self =
            serde_json::from_str(text).map_err(|e| KeyError::Corrupt(e.to_string()))?;
        if ring.keys.is_empty() {
            return Err(KeyError::Corrupt("no keys".into()));
        }
        Ok(ring)
    }

    pub fn to_json(&self) -> Result<String, KeyError> {
        serde_json::to_string(self).map_err(|e| KeyError::Corrupt(e.to_string()))
    }

    /// Whether the ring stored at `now` must change: nothing stored yet, or
    /// the newest key is `rotate_every` old.
    pub fn needs_new_key(current: Option<&Self>, now: UnixTime, rotate_every: Duration) -> bool {
        current
            .and_then(|ring| ring.keys.first())
            .is_none_or(|key| key.created_at.saturating_add(rotate_every.as_secs()) <= now)
    }

    /// The ring that should be stored at `now`, if it differs from `self`
    /// (`None`: nothing stored yet): a first key; or, once the newest key is
    /// `rotate_every` old, a new key followed by the previous one (older
    /// keys are dropped: they signed nothing for a whole period).
    pub fn next_generation(
        current: Option<&Self>,
        now: UnixTime,
        rotate_every: Duration,
        fresh: impl FnOnce() -> Result<StoredKey, KeyError>,
    ) -> Result<Option<Self>, KeyError> {
        if !Self::needs_new_key(current, now, rotate_every) {
            return Ok(None);
        }
        let mut keys = vec![fresh()?];
        keys.extend(current.and_then(|ring| ring.keys.first()).cloned());
        Ok(Some(Self { keys }))
    }
}

/// A usable key: signing half, public JWK, and its id.
struct RingKey {
    kid: String,
    alg: SigningAlg,
    created_at: UnixTime,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl RingKey {
    fn from_stored(stored: &StoredKey) -> Result<Self, KeyError> {
        let raw = URL_SAFE_NO_PAD
            .decode(stored.seed.as_bytes())
            .map_err(|e| KeyError::Corrupt(format!("key material: {e}")))?;
        let (encoding, algorithm, key_algorithm) = match stored.alg {
            SigningAlg::EdDSA => {
                let seed: [u8; 32] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyError::Corrupt("key seed is not 32 bytes".into()))?;
                let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
                let der = signing
                    .to_pkcs8_der()
                    .map_err(|e| KeyError::Corrupt(format!("key encoding: {e}")))?;
                (
                    EncodingKey::from_ed_der(der.as_bytes()),
                    AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                        key_type: OctetKeyPairType::OctetKeyPair,
                        curve: EllipticCurve::Ed25519,
                        x: URL_SAFE_NO_PAD.encode(signing.verifying_key().to_bytes()),
                    }),
                    KeyAlgorithm::EdDSA,
                )
            }
            SigningAlg::ES256 => {
                let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &raw,
                    &ring::rand::SystemRandom::new(),
                )
                .map_err(|e| KeyError::Corrupt(format!("P-256 key: {e}")))?;
                use ring::signature::KeyPair;
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let point = pair.public_key().as_ref();
                let (x, y) = match point {
                    [4, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                    _ => return Err(KeyError::Corrupt("P-256 public key shape".into())),
                };
                (
                    EncodingKey::from_ec_der(&raw),
                    AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                        key_type: EllipticCurveKeyType::EC,
                        curve: EllipticCurve::P256,
                        x: URL_SAFE_NO_PAD.encode(x),
                        y: URL_SAFE_NO_PAD.encode(y),
                    }),
                    KeyAlgorithm::ES256,
                )
            }
            SigningAlg::RS256 => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                use rsa::traits::PublicKeyParts;
                let key = rsa::PrivateKey::from_pkcs1_der(&raw)
                    .map_err(|e| KeyError::Corrupt(format!("RSA key: {e}")))?;
                (
                    EncodingKey::from_rsa_der(&raw),
                    AlgorithmParameters::RSA(RSAKeyParameters {
                        key_type: RSAKeyType::RSA,
                        n: URL_SAFE_NO_PAD.encode(key.n_bytes()),
                        e: URL_SAFE_NO_PAD.encode(key.e_bytes()),
                    }),
                    KeyAlgorithm::RS256,
                )
            }
        };
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm),
                ..CommonParameters::default()
            },
            algorithm,
        };
        // RFC 7638 thumbprint: the same key always has the same id.
        let kid = jwk
            .thumbprint(ThumbprintHash::SHA256)
            .map_err(|e| KeyError::Corrupt(format!("key thumbprint: {e}")))?;
        jwk.common.key_id = Some(kid.clone());
        Ok(Self {
            kid,
            alg: stored.alg,
            created_at: stored.created_at,
            encoding,
            jwk,
        })
    }
}

fn jwt_algorithm(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

/// The loaded key ring of this instance.
pub struct KeyRing {
    /// Newest first; never empty.
    keys: Vec<RingKey>,
    loaded_at: UnixTime,
}

impl KeyRing {
    fn from_stored(
        ring: &StoredKeyRing,
        alg: SigningAlg,
        loaded_at: UnixTime,
    ) -> Result<Self, KeyError> {
        let keys = ring
            .keys
            .iter()
            .map(RingKey::from_stored)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(KeyError::Corrupt("no keys".into()));
        }
        if let Some(other) = keys.iter().find(|k| k.alg != alg) {
            return Err(KeyError::Corrupt(format!(
                "a {} key in the {} ring",
                other.alg.as_str(),
                alg.as_str()
            )));
        }
        Ok(Self { keys, loaded_at })
    }

    fn current(&self) -> Result<&RingKey, KeyError> {
        self.keys
            .first()
            .ok_or_else(|| KeyError::Corrupt("no keys".into()))
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

    /// A compact JWT of `claims`, signed with the newest key (its `kid` in
    /// the header, `typ` as given). RSA signing takes milliseconds: call it
    /// off the async runtime where that matters.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, KeyError> {
        let key = self.current()?;
        let mut header = Header::new(jwt_algorithm(key.alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| KeyError::Signing(e.to_string()))
    }
}

/// One rotating key ring in the store, loaded lazily; one per ring and
/// process, shared by every request.
pub struct SigningKeys {
    store: SharedStore,
    /// The store name of the ring document.
    name: String,
    alg: SigningAlg,
    rotate_every: Duration,
    ring: ArcSwapOption<KeyRing>,
    /// One store refresh at a time.
    refreshing: tokio::sync::Mutex<()>,
}

impl SigningKeys {
    pub fn new(store: SharedStore, name: &str, alg: SigningAlg, rotate_every: Duration) -> Self {
        Self {
            store,
            name: name.to_string(),
            alg,
            rotate_every,
            ring: ArcSwapOption::empty(),
            refreshing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// The key ring as of `now`: from memory while fresh, else from the
    /// store (creating or rotating the key when due).
    pub async fn key_ring_at(&self, now: UnixTime) -> Result<Arc<KeyRing>, KeyError> {
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
                    tracing::warn!(error = %e, ring = %self.name, "cannot refresh the signing keys; using the loaded ones");
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
            && now < newest.saturating_add(self.rotate_every.as_secs())
    }

    fn still_published(&self, ring: &KeyRing, now: UnixTime) -> bool {
        let newest = ring.keys.first().map_or(0, |k| k.created_at);
        now < newest.saturating_add(self.rotate_every.as_secs().saturating_mul(2))
    }

    async fn load_or_rotate(&self, now: UnixTime) -> Result<KeyRing, KeyError> {
        for _ in 0..3 {
            let raw = self.store.get_value(&self.name).await?;
            let stored = raw.as_deref().map(StoredKeyRing::parse).transpose()?;
            let fresh = if StoredKeyRing::needs_new_key(stored.as_ref(), now, self.rotate_every) {
                let alg = self.alg;
                Some(
                    tokio::task::spawn_blocking(move || StoredKey::generate(alg, now))
                        .await
                        .map_err(|e| KeyError::KeyGeneration(e.to_string()))??,
                )
            } else {
                None
            };
            let next =
                StoredKeyRing::next_generation(stored.as_ref(), now, self.rotate_every, || {
                    fresh.ok_or_else(|| KeyError::KeyGeneration("no key was made".into()))
                })?;
            match (next, stored) {
                (None, Some(stored)) => return KeyRing::from_stored(&stored, self.alg, now),
                (Some(next), _) => {
                    let written = self
                        .store
                        .swap_value(&self.name, raw.as_deref(), &next.to_json()?)
                        .await?;
                    if written {
                        tracing::info!(
                            ring = %self.name,
                            alg = self.alg.as_str(),
                            keys = next.keys.len(),
                            "signing key created (rotation)"
                        );
                        return KeyRing::from_stored(&next, self.alg, now);
                    }
                    // Another instance changed it first: read theirs.
                }
                (None, None) => return Err(KeyError::Corrupt("no keys".into())),
            }
        }
        Err(KeyError::Contended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use jsonwebtoken::{DecodingKey, Validation};

    const DAY: u64 = 86400;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        aud: String,
        exp: u64,
    }

    #[tokio::test]
    async fn every_algorithm_signs_tokens_its_jwks_verifies() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let now = crate::clock::now_unix();
        for alg in SigningAlg::ALL {
            let keys = SigningKeys::new(
                store.clone(),
                &format!("ring-{}", alg.as_str()),
                alg,
                Duration::from_secs(7 * DAY),
            );
            let ring = keys.key_ring_at(now).await.unwrap();
            let claims = Claims {
                sub: "steem:alice".into(),
                aud: "grafana".into(),
                exp: now + 300,
            };
            let token = ring.sign(&claims, "JWT").unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, jwt_algorithm(alg));
            let jwks = ring.jwks();
            let jwk = jwks.find(&header.kid.unwrap()).unwrap();
            assert_eq!(
                jwk.common.key_algorithm.map(|a| format!("{a:?}")),
                Some(alg.as_str().to_string())
            );
            let mut validation = Validation::new(jwt_algorithm(alg));
            validation.set_audience(&["grafana"]);
            let decoded = jsonwebtoken::decode::<Claims>(
                &token,
                &DecodingKey::from_jwk(jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims, claims);
            // Another process reading the same store signs with the same key.
            let other = SigningKeys::new(
                store.clone(),
                &format!("ring-{}", alg.as_str()),
                alg,
                Duration::from_secs(7 * DAY),
            );
            assert_eq!(
                other.key_ring_at(now).await.unwrap().current_kid(),
                ring.current_kid()
            );
        }
    }

    #[tokio::test]
    async fn a_ring_of_another_algorithm_is_refused() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let now = crate::clock::now_unix();
        let ed = SigningKeys::new(
            store.clone(),
            "ring",
            SigningAlg::EdDSA,
            Duration::from_secs(DAY),
        );
        ed.key_ring_at(now).await.unwrap();
        let es = SigningKeys::new(store, "ring", SigningAlg::ES256, Duration::from_secs(DAY));
        assert!(matches!(
            es.key_ring_at(now).await,
            Err(KeyError::Corrupt(_))
        ));
    }

    #[test]
    fn next_generation_rules() {
        let week = Duration::from_secs(7 * DAY);
        let key = |at| StoredKey {
            created_at: at,
            alg: SigningAlg::EdDSA,
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

    #[test]
    fn rings_stored_before_algorithms_existed_read_as_ed25519() {
        let ring = StoredKeyRing::parse(r#"{"keys":[{"created_at":5,"seed":"AAAA"}]}"#).unwrap();
        assert_eq!(ring.keys[0].alg, SigningAlg::EdDSA);
    }
}
