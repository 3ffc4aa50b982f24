//! A simulated Keychain for the wallet-login tests (`tests/wallet_login.rs`,
//! `tests/browser_wallet.rs`): an account's keys derived from a label,
//! published on the in-test devnet, and the two signing requests Keychain
//! answers, done with the crate's own signer and serializer.
//!
//! Why shared: the end-to-end tests and the browser tests must sign exactly
//! as the same wallet would, with keys the devnet serves for the account.

use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use steemgate::chain::ChainName;
use steemgate::chain::crypto::Transaction;
use steemgate::chain::crypto::keys::public_key_of;
use steemgate::chain::crypto::signature::sign_compact;

use super::gateway::{Stack, TestDevnet};

/// An account's keys, as a wallet holds them.
pub struct Wallet {
    pub posting: SigningKey,
    pub active: SigningKey,
    pub memo: SigningKey,
}

/// A key derived from `label` (the same label gives the same key).
pub fn key_from(label: &str) -> SigningKey {
    let seed: [u8; 32] = Sha256::digest(label.as_bytes()).into();
    SigningKey::from_slice(&seed).unwrap()
}

/// The `STM…` public key of `key`.
pub fn stm(key: &SigningKey) -> String {
    public_key_of(key).unwrap().to_string()
}

impl Wallet {
    pub fn new(label: &str) -> Self {
        Self {
            posting: key_from(&format!("{label}/posting")),
            active: key_from(&format!("{label}/active")),
            memo: key_from(&format!("{label}/memo")),
        }
    }
}

/// Publishes `account`'s keys on the stack's devnet; `extra` overrides fields.
pub fn set_keys(stack: &Stack, account: &str, wallet: &Wallet, extra: Value) {
    set_keys_on(&stack.devnet, account, wallet, extra);
}

/// [`set_keys`] on any in-test devnet.
pub fn set_keys_on(devnet: &TestDevnet, account: &str, wallet: &Wallet, extra: Value) {
    let mut params = json!({
        "account": account,
        "posting": [stm(&wallet.posting)],
        "active": [stm(&wallet.active)],
        "memo": stm(&wallet.memo),
    });
    if let (Value::Object(params), Value::Object(extra)) = (&mut params, extra) {
        params.extend(extra);
    }
    devnet.rpc("devnet.set_keys", params);
}

/// Signs `text` as `requestSignBuffer` does: 130 hex characters.
pub fn sign_text(key: &SigningKey, text: &str) -> String {
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    hex::encode(sign_compact(key, &digest))
}

/// Signs a transaction as `requestSignTx` does and returns the signed JSON.
pub fn sign_transaction(key: &SigningKey, transaction: &Value) -> Value {
    let mut tx: Transaction = serde_json::from_value(transaction.clone()).unwrap();
    let digest = tx.digest(ChainName::Steem).unwrap();
    tx.signatures.push(hex::encode(sign_compact(key, &digest)));
    serde_json::to_value(&tx).unwrap()
}
