//! A wallet-login world for the fuzz targets: an in-memory store, a fake
//! chain whose every account has the two published test keys below, and a
//! signing oracle, so inputs can carry real signatures without the fuzzer
//! having to forge one.
//!
//! Oracle tokens, replaced where a signature is expected:
//! - `sig:posting` / `sig:active`: the account's posting / active key over
//!   the server's OWN stored copy (the challenge text, or the transaction);
//! - `sig:theirs`: the active key over the transaction as the input sent it
//!   (a wallet tricked into signing something else);
//! - `sig:other`: a key the account does not have, over the stored copy.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use steemgate::auth::wallet::{WalletLogins, WalletSettings};
use steemgate::chain::crypto::keys::{public_key_of, signing_key_from_wif};
use steemgate::chain::crypto::serialize::{digest, ref_block_from_id};
use steemgate::chain::crypto::signature::sign_compact;
use steemgate::chain::crypto::{
    ChainTime, CompactSignature, LoginChallenge, Operation, PublicKey, Transaction,
    TransferOperation,
};
use steemgate::chain::{AccountName, ChainName, RpcCall, RpcError};
use steemgate::config::LoginMethod;
use steemgate::store::memory::MemoryStore;
use steemgate::store::{SessionKey, SessionRecord, SharedStore, WalletChallenge};
use steemgate::clock::UnixTime;

/// Published test vectors (tests/fixtures/signatures), never real keys.
pub const POSTING_WIF: &str = "5JQy7moK9SvNNDxn8rKNfQYFME5VDYC2j9Mv2tb7uXV5jz3fQR8";
pub const ACTIVE_WIF: &str = "5K2yDAd9KAZ3ZitBsAPyRka9PLFemUrbcL6UziZiPaw2c6jCeLH";
pub const OTHER_WIF: &str = "5KQwrPbwdL6PhXujxW37FSSQZ1JiwsST4cqQzDeyXtP79zkvFD3";

pub const CHAIN: ChainName = ChainName::Steem;
pub const GATE: &str = "gate";
pub const SITE: &str = "app.example";
/// Wall-clock "now" of every request (2027-01-15).
pub const NOW: UnixTime = 1_800_000_000;
/// The fake head block (number 0x0123abcd) and its time.
pub const HEAD_BLOCK_ID: &str = "0123abcd9f8e7d6c5b4a39281706f5e4d3c2b1a0";
pub const HEAD_TIME: &str = "2027-01-15T08:00:00";

pub fn public(wif: &str) -> PublicKey {
    let key = signing_key_from_wif(wif).unwrap_or_else(|e| panic!("test key {wif}: {e}"));
    public_key_of(&key).unwrap_or_else(|e| panic!("test key {wif}: {e}"))
}

pub fn posting_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| public(POSTING_WIF))
}

pub fn active_key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| public(ACTIVE_WIF))
}

/// The 130-hex compact signature of `digest` by `wif`.
pub fn sign(wif: &str, digest: &[u8; 32]) -> String {
    let key = signing_key_from_wif(wif).unwrap_or_else(|e| panic!("test key {wif}: {e}"));
    let compact = sign_compact(&key, digest);
    CompactSignature::from_bytes(&compact)
        .unwrap_or_else(|e| panic!("own signature refused: {e}"))
        .to_hex()
}

/// What `requestSignBuffer` signs for a challenge text we built.
pub fn text_digest(text: &str) -> [u8; 32] {
    LoginChallenge::parse(text)
        .unwrap_or_else(|e| panic!("own challenge unreadable: {e}"))
        .digest()
}

/// The signing digest of `transaction` on [`CHAIN`], if it serializes.
pub fn transaction_digest(transaction: &Transaction) -> Option<[u8; 32]> {
    transaction
        .to_bytes()
        .ok()
        .map(|bytes| digest(CHAIN, &bytes))
}

/// Replaces an oracle token (see the module doc); anything else is kept.
/// `stored` is the digest of the server's copy, `theirs` of the sent one.
pub fn resolve(token: &str, stored: &[u8; 32], theirs: Option<&[u8; 32]>) -> String {
    match token {
        "sig:posting" => sign(POSTING_WIF, stored),
        "sig:active" => sign(ACTIVE_WIF, stored),
        "sig:other" => sign(OTHER_WIF, stored),
        "sig:theirs" => theirs.map_or_else(|| token.to_string(), |d| sign(ACTIVE_WIF, d)),
        other => other.to_string(),
    }
}

/// A chain where every account holds the posting and active test keys
/// (threshold 1, plus an account authority that must not count).
pub struct FakeChain;

fn authority(key: &PublicKey) -> Value {
    json!({
        "weight_threshold": 1,
        "account_auths": [["someone-else", 1]],
        "key_auths": [[key.to_string_with_prefix("STM"), 1]],
    })
}

#[async_trait::async_trait]
impl RpcCall for FakeChain {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match method {
            "condenser_api.get_dynamic_global_properties" => Ok(json!({
                "head_block_number": 0x0123_abcd,
                "head_block_id": HEAD_BLOCK_ID,
                "time": HEAD_TIME,
                "last_irreversible_block_num": 0x0123_abc0,
            })),
            "condenser_api.get_accounts" => {
                let name = params
                    .get(0)
                    .and_then(|names| names.get(0))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                Ok(json!([{
                    "name": name,
                    "memo_key": posting_key().to_string_with_prefix("STM"),
                    "posting": authority(posting_key()),
                    "active": authority(active_key()),
                    "owner": authority(active_key()),
                }]))
            }
            "condenser_api.broadcast_transaction" => Ok(json!({})),
            other => Err(RpcError::Decode(format!("the fake chain has no {other}"))),
        }
    }
}

pub fn settings() -> WalletSettings {
    WalletSettings {
        methods: vec![LoginMethod::Signature, LoginMethod::SignedTransfer],
        chain: CHAIN,
        pay_to: AccountName::parse(GATE).unwrap_or_else(|e| panic!("{e}")),
        amount: "0.001 STEEM".into(),
        memo_prefix: "login:".into(),
        challenge_ttl: Duration::from_secs(300),
        transfer_expiration: Duration::from_secs(600),
        session_ttl: Duration::from_secs(3600),
    }
}

/// A fresh store holding one pending session, and wallet logins over it.
pub fn world() -> (SharedStore, WalletLogins, SessionKey) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let logins = WalletLogins::new(store.clone(), Arc::new(FakeChain), settings());
    (store, logins, SessionKey("fuzz-session".into()))
}

pub async fn open_session(store: &SharedStore, key: &SessionKey) {
    store
        .put_session(key, &SessionRecord::pending(NOW, NOW + 3600))
        .await
        .unwrap_or_else(|e| panic!("memory store: {e}"));
}

/// One current-thread runtime for the whole fuzzing process.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
        })
        .block_on(future)
}

/// The account every fixture challenge is for.
pub const ACCOUNT: &str = "alice";

/// The sign-buffer challenge the server "issued" (2027-01-15T08:05:00Z).
pub const STORED_TEXT: &str = "steemgate login\nsite: app.example\nchain: steem\naccount: alice\nnonce: 0123456789abcdef0123456789abcdef\nexpires: 2027-01-15T08:05:00Z";

/// The login transfer the server "issued" (what `issue` builds).
pub fn stored_transaction() -> Transaction {
    let (ref_block_num, ref_block_prefix) =
        ref_block_from_id(HEAD_BLOCK_ID).unwrap_or_else(|e| panic!("{e}"));
    let expiration = ChainTime(
        ChainTime::parse(HEAD_TIME)
            .unwrap_or_else(|e| panic!("{e}"))
            .unix_seconds()
            + 600,
    );
    Transaction {
        ref_block_num,
        ref_block_prefix,
        expiration,
        operations: vec![Operation::Transfer(TransferOperation {
            from: ACCOUNT.into(),
            to: GATE.into(),
            amount: "0.001 STEEM".into(),
            memo: "login:abcd-efgh-jkmn-pqrs".into(),
        })],
        extensions: Vec::new(),
        signatures: Vec::new(),
    }
}

/// Stores a pending wallet challenge of `method` (`Signature` or
/// `SignedTransfer`) for the session, as `issue` would.
pub async fn store_challenge(store: &SharedStore, key: &SessionKey, method: LoginMethod) {
    let payload = if method == LoginMethod::Signature {
        STORED_TEXT.to_string()
    } else {
        serde_json::to_string(&stored_transaction()).unwrap_or_else(|e| panic!("{e}"))
    };
    store
        .put_wallet_challenge(
            key,
            &WalletChallenge {
                method,
                account: ACCOUNT.into(),
                payload,
                expires_at: NOW + 300,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("memory store: {e}"));
}
