//! Steem/Hive public keys (`STM…`) and WIF private keys.
//!
//! Why: every wallet login ends in comparing a recovered secp256k1 key with
//! the keys a node lists for the account, and nodes list them as text:
//! `STM` + base58(33-byte compressed point ‖ first 4 bytes of
//! ripemd160(point)). Both chains kept the `STM` prefix. A key string whose
//! checksum does not match is refused rather than guessed at, and a string
//! that decodes to 33 bytes which are not a curve point (the chain's "null"
//! key `STM1111…114T1Anm`) is reported as such, so callers can tell "broken
//! answer" from "key nobody can sign with".
//!
//! WIF parsing is here for tests and tools that sign like a wallet does; the
//! gateway itself never holds a user's private key.

use std::fmt;
use std::str::FromStr;

use k256::ecdsa::{SigningKey, VerifyingKey};
use ripemd::Ripemd160;
use sha2::{Digest, Sha256};

/// The address prefix both Steem and Hive mainnets use.
pub const MAINNET_PREFIX: &str = "STM";

/// Longest text accepted before base58 decoding is even tried (a key string
/// is 53 characters): keeps hostile input from costing quadratic time.
const MAX_ENCODED_LEN: usize = 128;

/// Why a key string or key bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("public key must start with {expected:?}")]
    WrongPrefix { expected: String },
    #[error("key text is {0} characters, too long to be a key")]
    TooLong(usize),
    #[error("key is not valid base58")]
    Base58,
    #[error("key decodes to {0} bytes, expected {1}")]
    Length(usize, usize),
    #[error("key checksum does not match (mistyped or corrupted key)")]
    Checksum,
    #[error("key bytes are not a compressed secp256k1 point")]
    NotOnCurve,
    #[error("WIF version byte is {0:#04x}, expected 0x80")]
    WifVersion(u8),
    #[error("WIF secret is not a valid secp256k1 scalar")]
    InvalidSecret,
}

/// A secp256k1 public key as the chain uses it: always compared and printed
/// in compressed form.
#[derive(Clone)]
pub struct PublicKey {
    compressed: [u8; 33],
    key: VerifyingKey,
}

impl PublicKey {
    /// Builds from 33 SEC1-compressed bytes (`02`/`03` ‖ x).
    pub fn from_compressed(bytes: &[u8]) -> Result<Self, KeyError> {
        let compressed: [u8; 33] = bytes
            .try_into()
            .map_err(|_| KeyError::Length(bytes.len(), 33))?;
        if !matches!(compressed[0], 0x02 | 0x03) {
            return Err(KeyError::NotOnCurve);
        }
        let key = VerifyingKey::from_sec1_bytes(&compressed).map_err(|_| KeyError::NotOnCurve)?;
        Ok(PublicKey { compressed, key })
    }

    /// Wraps a k256 key (e.g. one just recovered from a signature).
    pub fn from_verifying_key(key: VerifyingKey) -> Result<Self, KeyError> {
        let point = key.to_sec1_point(true);
        Self::from_compressed(point.as_bytes())
    }

    /// Parses an `STM…` key string, checksum included.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        Self::parse_with_prefix(text, MAINNET_PREFIX)
    }

    /// Parses a key string with another address prefix (testnets use `STX`,
    /// `TST`).
    pub fn parse_with_prefix(text: &str, prefix: &str) -> Result<Self, KeyError> {
        let bytes = decode_key_string(text, prefix)?;
        Self::from_compressed(&bytes)
    }

    /// The 33 compressed bytes, as serialized inside transactions.
    pub fn to_compressed(&self) -> [u8; 33] {
        self.compressed
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key string with a chosen prefix.
    pub fn to_string_with_prefix(&self, prefix: &str) -> String {
        encode_key_bytes(&self.compressed, prefix)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.compressed == other.compressed
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.compressed.hash(state);
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_string_with_prefix(MAINNET_PREFIX))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The 4-byte checksum of a public key string: ripemd160 of the key bytes.
fn key_checksum(bytes: &[u8]) -> [u8; 4] {
    let hash = Ripemd160::digest(bytes);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Decodes `PREFIX` + base58(33 bytes ‖ checksum) to the 33 bytes, without
/// requiring them to be a curve point (the chain's null key is not one).
pub fn decode_key_string(text: &str, prefix: &str) -> Result<[u8; 33], KeyError> {
    if text.len() > MAX_ENCODED_LEN {
        return Err(KeyError::TooLong(text.len()));
    }
    let body = text
        .strip_prefix(prefix)
        .ok_or_else(|| KeyError::WrongPrefix {
            expected: prefix.to_string(),
        })?;
    let raw = bs58::decode(body)
        .into_vec()
        .map_err(|_| KeyError::Base58)?;
    if raw.len() != 37 {
        return Err(KeyError::Length(raw.len(), 37));
    }
    let (key, checksum) = raw.split_at(33);
    if key_checksum(key) != checksum {
        return Err(KeyError::Checksum);
    }
    let mut bytes = [0u8; 33];
    bytes.copy_from_slice(key);
    Ok(bytes)
}

/// Encodes 33 key bytes as `PREFIX` + base58(bytes ‖ ripemd160 checksum).
pub fn encode_key_bytes(bytes: &[u8; 33], prefix: &str) -> String {
    let mut raw = Vec::with_capacity(37);
    raw.extend_from_slice(bytes);
    raw.extend_from_slice(&key_checksum(bytes));
    format!("{prefix}{}", bs58::encode(raw).into_string())
}

/// The WIF checksum: the first 4 bytes of sha256(sha256(payload)).
fn wif_checksum(payload: &[u8]) -> [u8; 4] {
    let hash = Sha256::digest(Sha256::digest(payload));
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Parses a WIF private key (`5…`: base58 of 0x80 ‖ secret ‖ checksum).
pub fn signing_key_from_wif(wif: &str) -> Result<SigningKey, KeyError> {
    if wif.len() > MAX_ENCODED_LEN {
        return Err(KeyError::TooLong(wif.len()));
    }
    let raw = bs58::decode(wif).into_vec().map_err(|_| KeyError::Base58)?;
    if raw.len() != 37 {
        return Err(KeyError::Length(raw.len(), 37));
    }
    let (payload, checksum) = raw.split_at(33);
    if wif_checksum(payload) != checksum {
        return Err(KeyError::Checksum);
    }
    if payload[0] != 0x80 {
        return Err(KeyError::WifVersion(payload[0]));
    }
    SigningKey::from_slice(&payload[1..]).map_err(|_| KeyError::InvalidSecret)
}

/// Formats a private key as WIF (the inverse of [`signing_key_from_wif`]).
pub fn signing_key_to_wif(key: &SigningKey) -> String {
    let mut raw = Vec::with_capacity(37);
    raw.push(0x80);
    raw.extend_from_slice(&key.to_bytes());
    let checksum = wif_checksum(&raw);
    raw.extend_from_slice(&checksum);
    bs58::encode(raw).into_string()
}

/// The public key belonging to a private key.
pub fn public_key_of(key: &SigningKey) -> Result<PublicKey, KeyError> {
    PublicKey::from_verifying_key(*key.verifying_key())
}
