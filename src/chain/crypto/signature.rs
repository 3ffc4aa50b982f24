//! Compact (65-byte, recoverable) secp256k1 signatures as Steem/Hive wallets
//! produce them, and public-key recovery from them.
//!
//! Why: a wallet login is proven by a signature alone; the gateway recovers
//! the signer's key from it and compares that with the account's keys. The
//! wire form is `header ‖ r ‖ s` (hex, 130 characters) where the header is
//! `27 + recovery id`, plus 4 when the key is compressed (wallets always
//! write 31..=34). Only low-S signatures are accepted: the high-S twin of a
//! valid signature is a malleated copy, and both chains refuse it.
//!
//! The signers ([`sign_compact`], [`sign_compact_dhive`]) reproduce,
//! byte for byte, what Keychain's `signBuffer` (hive-js / steem-js) and
//! dhive's `signTransaction` produce, including the "fc canonical" retry
//! loop Steem requires (r and s each a 32-byte DER integer). They exist so
//! tests and tools can act as a wallet; the gateway only ever verifies.

use ecdsa::hazmat;
use k256::ecdsa::{RecoveryId, Signature, SigningKey, VerifyingKey};
use k256::elliptic_curve::Curve;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{NonZeroScalar, Secp256k1, U256};
use sha2::{Digest, Sha256};

use super::keys::PublicKey;

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature hex must be 130 characters, got {0}")]
    HexLength(usize),
    #[error("signature is not valid hex")]
    Hex,
    #[error("signature must be 65 bytes, got {0}")]
    Length(usize),
    #[error("signature header byte {0} is outside 27..=34")]
    Header(u8),
    #[error("signature r or s is zero or not below the curve order")]
    Scalar,
    #[error("signature has a high S value (malleated copy); only low-S is accepted")]
    HighS,
    #[error("no public key can be recovered from this signature and digest")]
    Unrecoverable,
}

/// A decoded, low-S, 65-byte compact signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactSignature {
    header: u8,
    signature: Signature,
    recovery_id: RecoveryId,
}

impl CompactSignature {
    /// Decodes `header ‖ r ‖ s`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SignatureError> {
        let bytes: &[u8; 65] = bytes
            .try_into()
            .map_err(|_| SignatureError::Length(bytes.len()))?;
        let header = bytes[0];
        if !(27..=34).contains(&header) {
            return Err(SignatureError::Header(header));
        }
        let recovery_byte = (header - 27) & 3;
        let recovery_id =
            RecoveryId::from_byte(recovery_byte).ok_or(SignatureError::Header(header))?;
        let signature = Signature::from_slice(&bytes[1..]).map_err(|_| SignatureError::Scalar)?;
        if bool::from(signature.s().is_high()) {
            return Err(SignatureError::HighS);
        }
        Ok(CompactSignature {
            header,
            signature,
            recovery_id,
        })
    }

    /// Decodes the 130-character hex form wallets return.
    pub fn from_hex(text: &str) -> Result<Self, SignatureError> {
        if text.len() != 130 {
            return Err(SignatureError::HexLength(text.len()));
        }
        let bytes = hex::decode(text).map_err(|_| SignatureError::Hex)?;
        Self::from_bytes(&bytes)
    }

    pub fn to_bytes(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[0] = self.header;
        out[1..].copy_from_slice(&self.signature.to_bytes());
        out
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// The header byte as sent (27..=34).
    pub fn header(&self) -> u8 {
        self.header
    }

    /// `(header - 27) & 3`.
    pub fn recovery_id(&self) -> u8 {
        self.recovery_id.to_byte()
    }

    /// Whether r and s would each be exactly 32 bytes in DER, the extra
    /// rule Steem's fc library put on signatures. Informational: recovery
    /// accepts any low-S signature.
    pub fn is_fc_canonical(&self) -> bool {
        is_fc_canonical(&self.to_bytes())
    }

    /// Recovers the key that made this signature over `digest` (32 bytes,
    /// already hashed).
    pub fn recover(&self, digest: &[u8; 32]) -> Result<PublicKey, SignatureError> {
        let key = VerifyingKey::recover_from_prehash(digest, &self.signature, self.recovery_id)
            .map_err(|_| SignatureError::Unrecoverable)?;
        PublicKey::from_verifying_key(key).map_err(|_| SignatureError::Unrecoverable)
    }
}

/// The fc "canonical" test on a 65-byte compact signature: neither r nor s
/// has its top bit set, nor a redundant leading zero byte.
pub fn is_fc_canonical(compact: &[u8; 65]) -> bool {
    let half_ok = |first: u8, second: u8| first & 0x80 == 0 && !(first == 0 && second & 0x80 == 0);
    half_ok(compact[1], compact[2]) && half_ok(compact[33], compact[34])
}

/// One ECDSA signature with the nonce drawn from RFC 6979 over
/// (`secret`, `nonce_seed`, `extra`), signing `digest`.
fn sign_with_nonce_seed(
    secret: &NonZeroScalar,
    digest: &[u8; 32],
    nonce_seed: &[u8],
    extra: &[u8],
) -> (Signature, RecoveryId) {
    let order = Secp256k1::ORDER;
    let secret_bytes = secret.to_bytes();
    let mut nonces =
        rfc6979::KGenerator::<Sha256, U256>::new(&secret_bytes, nonce_seed, extra, &order);
    loop {
        let mut nonce_bytes = k256::FieldBytes::default();
        nonces.fill_next_k(&mut nonce_bytes);
        if let Some(nonce) = NonZeroScalar::from_repr(nonce_bytes).into_option()
            && let Ok(signed) = hazmat::sign_prehashed(secret, &nonce, digest)
        {
            return signed;
        }
    }
}

fn compact_bytes(signature: &Signature, recovery_id: RecoveryId) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[0] = 27 + 4 + recovery_id.to_byte();
    out[1..].copy_from_slice(&signature.to_bytes());
    out
}

/// Signs `digest` exactly as hive-js / steem-js `Signature.signBufferSha256`
/// (what Keychain's `requestSignBuffer` calls): attempt `n` takes its
/// RFC 6979 nonce from `digest` (n = 0) or `sha256(digest ‖ n zero bytes)`,
/// and attempts continue until the result is fc canonical. Header 31..=34.
pub fn sign_compact(key: &SigningKey, digest: &[u8; 32]) -> [u8; 65] {
    let secret = key.as_nonzero_scalar();
    let mut attempt = 0usize;
    loop {
        let seed: [u8; 32] = if attempt == 0 {
            *digest
        } else {
            let mut hasher = Sha256::new();
            hasher.update(digest);
            hasher.update(vec![0u8; attempt]);
            hasher.finalize().into()
        };
        let (signature, recovery_id) = sign_with_nonce_seed(secret, digest, &seed, &[]);
        let compact = compact_bytes(&signature, recovery_id);
        if is_fc_canonical(&compact) {
            return compact;
        }
        attempt += 1;
    }
}

/// Signs `digest` exactly as dhive `PrivateKey.sign` (used by its
/// `signTransaction`): libsecp256k1 RFC 6979 with extra data
/// `sha256(digest ‖ [attempt])`, attempt counting from 1, until fc
/// canonical. Header 31..=34.
pub fn sign_compact_dhive(key: &SigningKey, digest: &[u8; 32]) -> [u8; 65] {
    let secret = key.as_nonzero_scalar();
    let mut attempt = 0u8;
    loop {
        attempt = attempt.wrapping_add(1);
        let mut hasher = Sha256::new();
        hasher.update(digest);
        hasher.update([attempt]);
        let extra: [u8; 32] = hasher.finalize().into();
        let (signature, recovery_id) = sign_with_nonce_seed(secret, digest, digest, &extra);
        let compact = compact_bytes(&signature, recovery_id);
        if is_fc_canonical(&compact) {
            return compact;
        }
    }
}
