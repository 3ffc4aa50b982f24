//! Wallet signatures, verified on the server (issue 10).
//!
//! Why: the memo-transfer login costs a transfer and waits for a block. A
//! wallet (Keychain) can instead sign, for free and at once, either a
//! challenge text with the posting key (`requestSignBuffer`) or a login
//! transfer the gateway built (`requestSignTx`, active key). Verifying those
//! needs: key strings ([`keys`]), compact signatures and recovery
//! ([`signature`]), the chain's binary transaction format and digest
//! ([`serialize`]), the account's authority rules ([`authority`]) and the
//! challenge text itself ([`challenge`]). This module is the pure,
//! offline part; fetching accounts and consuming nonces belong to callers.

pub mod authority;
pub mod challenge;
pub mod keys;
pub mod serialize;
pub mod signature;

pub use authority::{Authority, AuthorityError, AuthorityParseError, Role};
pub use challenge::{ChallengeError, LoginChallenge};
pub use keys::{KeyError, PublicKey};
pub use serialize::{
    ChainTime, CustomJsonOperation, Operation, SerializeError, Transaction, TransferOperation,
};
pub use signature::{CompactSignature, SignatureError};

use sha2::{Digest, Sha256};

use crate::chain::ChainName;

/// Why the signers of a transaction could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoverError {
    #[error(transparent)]
    Serialize(#[from] SerializeError),
    #[error("signature {index}: {error}")]
    Signature { index: usize, error: SignatureError },
    #[error("the transaction carries no signature")]
    Unsigned,
}

/// The key that signed `message` the way `requestSignBuffer` does
/// (`sha256` of the message bytes).
pub fn recover_message_signer(
    message: &[u8],
    signature_hex: &str,
) -> Result<PublicKey, SignatureError> {
    let digest: [u8; 32] = Sha256::digest(message).into();
    CompactSignature::from_hex(signature_hex)?.recover(&digest)
}

/// The keys that signed `unsigned` on `chain`, one per signature in
/// `signatures_hex`. Pass the server's OWN stored transaction as `unsigned`
/// and only the wallet's signatures: the signed bytes then cannot be
/// influenced by the browser.
pub fn recover_transaction_signers(
    chain: ChainName,
    unsigned: &Transaction,
    signatures_hex: &[String],
) -> Result<Vec<PublicKey>, RecoverError> {
    if signatures_hex.is_empty() {
        return Err(RecoverError::Unsigned);
    }
    let digest = unsigned.digest(chain)?;
    signatures_hex
        .iter()
        .enumerate()
        .map(|(index, hex)| {
            CompactSignature::from_hex(hex)
                .and_then(|signature| signature.recover(&digest))
                .map_err(|error| RecoverError::Signature { index, error })
        })
        .collect()
}
