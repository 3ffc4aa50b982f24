//! The session cookie: a random id plus a keyed BLAKE2b MAC.
//!
//! Why this shape: the cookie must be unforgeable without a server round
//! trip (so a flood of junk cookies costs only a hash, never a store lookup),
//! and revocable (so it is only a pointer to a server-side session). Format:
//! `v1.<base64url(32-byte id)>.<base64url(32-byte MAC)>`, the MAC being
//! BLAKE2b-256 keyed with a key derived from `session.secret`, over
//! `"v1." || id`. Verification tries every configured secret (rotation), in
//! constant time through [`blake2::digest::Mac::verify_slice`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blake2::digest::consts::{U16, U32};
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2b512, Blake2bMac};

use crate::random::{RandomnessUnavailable, os_random};
use crate::store::SessionKey;

type CookieMac = Blake2bMac<U32>;

/// Bytes of randomness in a session id (256 bits).
pub const SESSION_ID_LEN: usize = 32;
const VERSION: &str = "v1";
/// Longest cookie value we even try to decode; anything longer is junk.
const MAX_COOKIE_VALUE: usize = 256;

/// A session id: 32 bytes from the OS CSPRNG. Never logged, never stored
/// as-is (see [`SessionId::store_key`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; SESSION_ID_LEN]);

/// For the session cache, which finds a verified id without hashing it into
/// its store key first. Only the first 8 bytes are fed to the hasher: the id
/// is CSPRNG output chosen by the gateway, and the cache is only asked for
/// ids whose cookie MAC verified, so no client can pick ids that collide;
/// 8 random bytes spread as well as 32, for a quarter of the hashing.
impl std::hash::Hash for SessionId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (head, _) = self.0.split_at(8);
        state.write(head);
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionId(..)")
    }
}

impl SessionId {
    pub fn generate() -> Result<Self, RandomnessUnavailable> {
        let mut id = [0u8; SESSION_ID_LEN];
        os_random(&mut id)?;
        Ok(Self(id))
    }

    /// A fixed id, for tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; SESSION_ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The key this session is stored under: BLAKE2b-128 of the id, hex. A
    /// leaked store therefore holds no cookie that would work.
    pub fn store_key(&self) -> SessionKey {
        let digest = blake2::Blake2b::<U16>::new_with_prefix(b"steemgate-session-key")
            .chain_update(self.0)
            .finalize();
        // Into a stack buffer first: `hex::encode` builds its String a char
        // at a time, and this runs on every authenticated request.
        let mut text = [0u8; 32];
        match hex::encode_to_slice(digest, &mut text) {
            Ok(()) => SessionKey(String::from_utf8_lossy(&text).into_owned()),
            Err(_) => SessionKey(hex::encode(digest)),
        }
    }
}

/// Bytes of the cookie's MAC (BLAKE2b-256).
const MAC_LEN: usize = 32;

/// Decodes unpadded base64url that must come to exactly `N` bytes, without
/// allocating (this runs on every authenticated request).
fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    // Room for the decoder's length estimate of any N-byte encoding; longer
    // input fails to fit and is rejected like any other wrong length.
    let mut buf = [0u8; 64];
    let len = URL_SAFE_NO_PAD.decode_slice(text, &mut buf).ok()?;
    buf.get(..len)?.try_into().ok()
}

/// Signs and verifies session cookies with the configured secrets.
#[derive(Clone)]
pub struct CookieCodec {
    /// One MAC per secret, already keyed and fed the `"v1."` prefix (the key
    /// block is hashed once here, not on every request); the first signs,
    /// all verify.
    macs: Vec<CookieMac>,
}

impl CookieCodec {
    /// `secrets` must be non-empty (config validation guarantees >= 32 bytes each).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        let macs = secrets
            .iter()
            .map(|secret| {
                let key = Blake2b512::new_with_prefix(b"steemgate-cookie-mac-v1")
                    .chain_update(secret.as_ref())
                    .finalize();
                Self::keyed_mac(&key)
            })
            .collect();
        Self { macs }
    }

    fn keyed_mac(key: &[u8]) -> CookieMac {
        // A 64-byte key is always a valid BLAKE2b key length.
        let mut mac = <CookieMac as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("64-byte BLAKE2b key"));
        mac.update(VERSION.as_bytes());
        mac.update(b".");
        mac
    }

    /// The cookie value for `id`, signed with the current secret.
    pub fn encode(&self, id: &SessionId) -> String {
        let Some(mac) = self.macs.first() else {
            unreachable!("CookieCodec needs at least one secret")
        };
        let mut mac = mac.clone();
        mac.update(&id.0);
        let tag = mac.finalize().into_bytes();
        format!(
            "{VERSION}.{}.{}",
            URL_SAFE_NO_PAD.encode(id.0),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The session id in `value` if its MAC verifies under any secret.
    /// Malformed, truncated, oversized or tampered values are `None`.
    pub fn decode(&self, value: &str) -> Option<SessionId> {
        if value.len() > MAX_COOKIE_VALUE {
            return None;
        }
        let mut parts = value.split('.');
        let (Some(version), Some(id_b64), Some(tag_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if version != VERSION {
            return None;
        }
        let id: [u8; SESSION_ID_LEN] = decode_exact(id_b64)?;
        let tag: [u8; MAC_LEN] = decode_exact(tag_b64)?;
        let valid = self.macs.iter().any(|mac| {
            let mut mac = mac.clone();
            mac.update(&id);
            mac.verify_slice(&tag).is_ok()
        });
        valid.then_some(SessionId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> CookieCodec {
        CookieCodec::new(&["0123456789abcdef0123456789abcdef"])
    }

    #[test]
    fn roundtrip() {
        let id = SessionId::generate().unwrap();
        let value = codec().encode(&id);
        assert_eq!(codec().decode(&value), Some(id));
    }

    #[test]
    fn ids_are_random_and_distinct() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.store_key(), b.store_key());
        assert_eq!(a.store_key().as_str().len(), 32);
    }

    #[test]
    fn rejects_tampering_and_junk() {
        let id = SessionId::generate().unwrap();
        let value = codec().encode(&id);
        // Flip each character of the value in turn: none may verify.
        for i in 0..value.len() {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            if let Ok(tampered) = String::from_utf8(bytes)
                && tampered != value
            {
                assert_eq!(codec().decode(&tampered), None, "tampered at {i}");
            }
        }
        for junk in [
            "",
            ".",
            "v1..",
            "v1.x.y",
            "v2.a.b",
            &value[..value.len() - 1],
            &format!("{value}.x"),
            &"A".repeat(10_000),
        ] {
            assert_eq!(codec().decode(junk), None, "{junk:.40}");
        }
    }

    #[test]
    fn store_key_is_the_hex_of_a_keyed_blake2b_128_of_the_id() {
        let id = SessionId([7u8; SESSION_ID_LEN]);
        let digest = blake2::Blake2b::<U16>::new_with_prefix(b"steemgate-session-key")
            .chain_update([7u8; SESSION_ID_LEN])
            .finalize();
        assert_eq!(id.store_key().as_str(), hex::encode(digest));
    }

    #[test]
    fn ids_and_tags_of_the_wrong_length_never_verify() {
        let id = SessionId::generate().unwrap();
        let value = codec().encode(&id);
        let parts: Vec<&str> = value.split('.').collect();
        let (id_b64, tag_b64) = (parts[1], parts[2]);
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        let long = URL_SAFE_NO_PAD.encode([1u8; 33]);
        let huge = URL_SAFE_NO_PAD.encode([1u8; 100]);
        for (i, t) in [
            (short.as_str(), tag_b64),
            (long.as_str(), tag_b64),
            (huge.as_str(), tag_b64),
            (id_b64, short.as_str()),
            (id_b64, long.as_str()),
            (id_b64, &tag_b64[..tag_b64.len() - 2]),
        ] {
            assert_eq!(codec().decode(&format!("v1.{i}.{t}")), None, "{i}.{t}");
        }
        assert_eq!(
            decode_exact::<4>(&URL_SAFE_NO_PAD.encode([9u8; 4])),
            Some([9u8; 4])
        );
        assert_eq!(decode_exact::<4>(&URL_SAFE_NO_PAD.encode([9u8; 5])), None);
        assert_eq!(decode_exact::<4>("!!!!!!"), None);
    }

    #[test]
    fn other_secret_does_not_verify_but_rotation_does() {
        let id = SessionId::generate().unwrap();
        let old = CookieCodec::new(&["old-secret-old-secret-old-secret-!"]);
        let value = old.encode(&id);
        assert_eq!(codec().decode(&value), None);
        let rotated = CookieCodec::new(&[
            "new-secret-new-secret-new-secret-!",
            "old-secret-old-secret-old-secret-!",
        ]);
        assert_eq!(rotated.decode(&value), Some(id.clone()));
        // New cookies are signed with the first (new) secret.
        let fresh = rotated.encode(&id);
        assert_eq!(old.decode(&fresh), None);
    }
}
