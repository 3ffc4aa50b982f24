//! Wallet logins (issue 10): a signed challenge text, or a signed login
//! transfer, verified on the server.
//!
//! Why here and not in the proxy: like [`super::sessions`], these rules are
//! the security core and must be testable without pingora. The proxy hands
//! over the session key, the request's Host and the wallet's answer, and
//! gets back a fact ("logged in", or a refusal naming the reason).
//!
//! Both methods follow the same shape:
//! 1. `issue`: the server builds what the wallet must sign (the
//!    [`LoginChallenge`] text, or an unsigned transfer to the gateway's
//!    account whose memo is a fresh, ordinary login challenge of this
//!    session) and stores its own copy under the session, one at a time.
//! 2. `verify_*`: the stored copy is TAKEN first (atomic get-and-delete), so
//!    an answer can be tried once; a second try finds nothing ("replayed").
//!    The signature is checked against the stored copy's bytes, never
//!    against what the browser sent back; the account's authority is read
//!    fresh from the chain (posting for text, active for a transfer); only
//!    `key_auths` count (see [`crate::chain::crypto::authority`]).
//! 3. A signed transfer logs the session in at once and is broadcast; the
//!    block follower then claims its memo like any memo transfer (which
//!    replaces the login proof). The login is undone if the follower
//!    processes a block past the transaction's expiration while the proof
//!    is still the unconfirmed one: [`crate::store::pending::settle_due`], run
//!    by whichever instance follows the chain, from a
//!    [`PendingConfirmation`] recorded in the store before the login (so it
//!    survives the verifying instance), and [`confirm_or_revoke`], a task
//!    in the verifying instance that also keeps its session cache right.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::challenge::new_memo;
use super::session_cache::SessionCache;
use crate::chain::crypto::authority::{Authority, AuthorityError, Role};
use crate::chain::crypto::serialize::ref_block_from_id;
use crate::chain::crypto::{
    ChainTime, LoginChallenge, Operation, RecoverError, SignatureError, Transaction,
    TransferOperation, recover_message_signer, recover_transaction_signers,
};
use crate::chain::status::ChainStatusHandle;
use crate::chain::{AccountName, ChainName, RpcCall, RpcError};
use crate::clock::{UnixTime, now_unix};
use crate::config::LoginMethod;
use crate::store::pending;
use crate::store::{LoginProof, SessionKey, SharedStore, StoreError, WalletChallenge};

/// How often [`confirm_or_revoke`] looks at the follower's progress.
const CONFIRM_POLL: Duration = Duration::from_secs(1);

/// What the wallet logins need to know.
#[derive(Clone, Debug)]
pub struct WalletSettings {
    pub methods: Vec<LoginMethod>,
    pub chain: ChainName,
    /// The gateway's account (the transfer's `to`).
    pub pay_to: AccountName,
    /// The login amount as a legacy asset, e.g. `"0.001 STEEM"`.
    pub amount: String,
    pub memo_prefix: String,
    pub challenge_ttl: Duration,
    pub transfer_expiration: Duration,
    pub session_ttl: Duration,
}

/// Why a wallet login was refused (401): the message names the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "no login challenge is pending for this session: it was already used (a replay) or never issued"
    )]
    NoChallenge,
    #[error("the login challenge has expired; ask for a new one")]
    Expired,
    #[error("the pending challenge is for the {0} method, not this one")]
    WrongMethod(&'static str),
    #[error("the challenge was issued for another site ({0}), not this one")]
    OtherSite(String),
    #[error("the signed challenge names another site ({0})")]
    SignedOtherSite(String),
    #[error("the signed challenge names another chain ({0})")]
    SignedOtherChain(&'static str),
    #[error("the signed challenge names another account (@{0})")]
    SignedOtherAccount(String),
    #[error("the signed challenge is not the one this gateway issued")]
    SignedOtherChallenge,
    #[error("account @{0} does not exist on the chain")]
    UnknownAccount(String),
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
    #[error("{0}")]
    Authority(#[from] AuthorityError),
    #[error("the transaction was tampered with: {0}")]
    Tampered(String),
    #[error("the transaction carries no signature")]
    Unsigned,
    #[error("the session has ended; reload the login page")]
    SessionGone,
    #[error("the chain refused the login transfer: {0}")]
    ChainRefused(String),
}

/// Why a wallet request failed.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The request itself is malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The proof was checked and refused (401).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// This method is switched off (404).
    #[error("this login method is not enabled")]
    Disabled,
    /// Something we depend on failed (503): never a login.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the chain could not be asked: {0}")]
    Chain(RpcError),
    #[error("the operating system's random source failed")]
    Randomness,
}

/// What `issue` hands to the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Issued {
    /// The exact text for `requestSignBuffer`.
    Signature { challenge: String, expires_in: u64 },
    /// The unsigned transaction for `requestSignTx`.
    SignedTransfer {
        transaction: Transaction,
        expires_in: u64,
    },
}

impl Issued {
    pub fn to_json(&self) -> Value {
        match self {
            Issued::Signature {
                challenge,
                expires_in,
            } => json!({"challenge": challenge, "expires_in": expires_in}),
            Issued::SignedTransfer {
                transaction,
                expires_in,
            } => json!({"transaction": transaction, "expires_in": expires_in}),
        }
    }
}

/// A logged-in signed transfer, waiting for the chain (kept in the store).
pub use crate::store::PendingConfirmation;

/// The outcome of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletLogin {
    pub account: String,
    /// Set for a signed transfer (already watched, see
    /// [`WalletLogins::watching`]).
    pub pending: Option<PendingConfirmation>,
}

/// Wallet logins on top of the store and the chain.
pub struct WalletLogins {
    store: SharedStore,
    chain: Arc<dyn RpcCall>,
    settings: WalletSettings,
    /// Set by [`WalletLogins::watching`]: each instant login then gets a
    /// [`confirm_or_revoke`] task of this service's own.
    watcher: Option<Watcher>,
}

/// What the confirm-or-revoke tasks need: the follower's progress, and the
/// session cache they keep right.
struct Watcher {
    status: ChainStatusHandle,
    cache: Arc<SessionCache>,
}

impl WalletLogins {
    pub fn new(store: SharedStore, chain: Arc<dyn RpcCall>, settings: WalletSettings) -> Self {
        Self {
            store,
            chain,
            settings,
            watcher: None,
        }
    }

    /// Watches every instant login in this process until the chain confirms
    /// it or it is revoked (see [`confirm_or_revoke`]); the durable
    /// guarantee stays with the follower either way.
    pub fn watching(mut self, status: ChainStatusHandle, cache: Arc<SessionCache>) -> Self {
        self.watcher = Some(Watcher { status, cache });
        self
    }

    pub fn settings(&self) -> &WalletSettings {
        &self.settings
    }

    pub fn enabled(&self, method: LoginMethod) -> bool {
        self.settings.methods.contains(&method)
    }

    /// Issues a challenge of `method` for `account` to the (existing)
    /// session `key`, replacing any pending wallet challenge. `site` is the
    /// request's Host.
    pub async fn issue(
        &self,
        key: &SessionKey,
        site: &str,
        account: &str,
        method: LoginMethod,
        now: UnixTime,
    ) -> Result<Issued, WalletError> {
        if !self.enabled(method) || method == LoginMethod::Transfer {
            return Err(WalletError::Disabled);
        }
        let account = AccountName::parse(account.trim())
            .map_err(|e| WalletError::BadRequest(format!("invalid account name: {e}")))?;
        let ttl = self.settings.challenge_ttl.as_secs().max(1);
        match method {
            LoginMethod::Signature => {
                let expires_at = now.saturating_add(ttl);
                let expires = i64::try_from(expires_at)
                    .ok()
                    .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok())
                    .ok_or_else(|| WalletError::BadRequest("clock out of range".into()))?;
                let challenge =
                    LoginChallenge::new(site, self.settings.chain, account.clone(), expires)
                        .map_err(|e| match e {
                            crate::chain::crypto::ChallengeError::Randomness => {
                                WalletError::Randomness
                            }
                            other => WalletError::BadRequest(format!(
                                "cannot build a challenge for this site: {other}"
                            )),
                        })?;
                let text = challenge.to_message();
                self.store
                    .put_wallet_challenge(
                        key,
                        &WalletChallenge {
                            method: LoginMethod::Signature,
                            account: account.as_str().to_string(),
                            payload: text.clone(),
                            expires_at,
                        },
                    )
                    .await?;
                Ok(Issued::Signature {
                    challenge: text,
                    expires_in: ttl,
                })
            }
            _ => self.issue_transfer(key, site, &account, now).await,
        }
    }

    async fn issue_transfer(
        &self,
        key: &SessionKey,
        site: &str,
        account: &AccountName,
        now: UnixTime,
    ) -> Result<Issued, WalletError> {
        let props = self
            .chain
            .call("condenser_api.get_dynamic_global_properties", json!([]))
            .await
            .map_err(WalletError::Chain)?;
        let bad_answer = |what: &str| {
            WalletError::Chain(RpcError::Decode(format!(
                "get_dynamic_global_properties lacks a valid {what}"
            )))
        };
        let head_id = props
            .get("head_block_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad_answer("head_block_id"))?;
        let (ref_block_num, ref_block_prefix) =
            ref_block_from_id(head_id).map_err(|_| bad_answer("head_block_id"))?;
        let head_time = props
            .get("time")
            .and_then(Value::as_str)
            .and_then(|t| ChainTime::parse(t).ok())
            .ok_or_else(|| bad_answer("time"))?;
        let lifetime = u32::try_from(self.settings.transfer_expiration.as_secs())
            .unwrap_or(3600)
            .max(1);
        let expiration = ChainTime(head_time.unix_seconds().saturating_add(lifetime));
        let memo = new_memo(&self.settings.memo_prefix).map_err(|_| WalletError::Randomness)?;
        let transaction = Transaction {
            ref_block_num,
            ref_block_prefix,
            expiration,
            operations: vec![Operation::Transfer(TransferOperation {
                from: account.as_str().to_string(),
                to: self.settings.pay_to.as_str().to_string(),
                amount: self.settings.amount.clone(),
                memo: memo.clone(),
            })],
            extensions: Vec::new(),
            signatures: Vec::new(),
        };
        // Fails now rather than at verify time if it cannot be serialized.
        transaction
            .to_bytes()
            .map_err(|e| WalletError::BadRequest(format!("cannot build the transfer: {e}")))?;
        // The memo is an ordinary challenge of this session, valid for any
        // block up to and including the expiration: the follower's claim
        // then matches it like a memo transfer.
        let chain_expiry = UnixTime::from(expiration.unix_seconds()).saturating_add(1);
        self.store
            .issue_challenge(key, &memo, chain_expiry.max(now.saturating_add(1)))
            .await?;
        let payload = serde_json::to_string(&transaction)
            .map_err(|e| WalletError::BadRequest(format!("cannot encode the transfer: {e}")))?;
        let ttl = self.settings.transfer_expiration.as_secs().max(1);
        self.store
            .put_wallet_challenge(
                key,
                &WalletChallenge {
                    method: LoginMethod::SignedTransfer,
                    account: account.as_str().to_string(),
                    payload,
                    expires_at: now.saturating_add(ttl),
                },
            )
            .await?;
        tracing::debug!(site, "instant login transfer issued");
        Ok(Issued::SignedTransfer {
            transaction,
            expires_in: ttl,
        })
    }

    /// Takes the session's pending challenge of `method`: one try only.
    async fn take(
        &self,
        key: &SessionKey,
        method: LoginMethod,
        now: UnixTime,
    ) -> Result<WalletChallenge, WalletError> {
        let stored = self
            .store
            .take_wallet_challenge(key)
            .await?
            .ok_or(Refusal::NoChallenge)?;
        if stored.method != method {
            return Err(Refusal::WrongMethod(stored.method.as_str()).into());
        }
        if stored.expires_at <= now {
            return Err(Refusal::Expired.into());
        }
        Ok(stored)
    }

    /// The account's `role` authority, read fresh from the chain.
    async fn authority(&self, account: &str, role: Role) -> Result<Authority, WalletError> {
        let answer = self
            .chain
            .call("condenser_api.get_accounts", json!([[account]]))
            .await
            .map_err(WalletError::Chain)?;
        let entry = answer
            .as_array()
            .ok_or_else(|| {
                WalletError::Chain(RpcError::Decode("get_accounts is not an array".into()))
            })?
            .iter()
            .find(|entry| entry.get("name").and_then(Value::as_str) == Some(account))
            .ok_or_else(|| Refusal::UnknownAccount(account.to_string()))?;
        Authority::from_account(entry, role)
            .map_err(|e| WalletError::Chain(RpcError::Decode(e.to_string())))
    }

    /// Verifies a `requestSignBuffer` answer and logs the session in.
    /// `signed_text`, when the page sends it, is only used to name what
    /// differs: the signature is always checked over the stored text.
    pub async fn verify_signature(
        &self,
        key: &SessionKey,
        site: &str,
        signature_hex: &str,
        signed_text: Option<&str>,
        now: UnixTime,
    ) -> Result<WalletLogin, WalletError> {
        if !self.enabled(LoginMethod::Signature) {
            return Err(WalletError::Disabled);
        }
        let stored = self.take(key, LoginMethod::Signature, now).await?;
        let challenge = LoginChallenge::parse(&stored.payload)
            .map_err(|e| StoreError::new(format!("stored challenge is unreadable: {e}")))?;
        if challenge.site() != site.to_ascii_lowercase() {
            return Err(Refusal::OtherSite(challenge.site().to_string()).into());
        }
        if let Some(text) = signed_text.filter(|text| *text != stored.payload) {
            return Err(describe_other_challenge(&challenge, text).into());
        }
        let signer = recover_message_signer(stored.payload.as_bytes(), signature_hex.trim())
            .map_err(Refusal::Signature)?;
        let authority = self.authority(&stored.account, Role::Posting).await?;
        authority
            .satisfied_by(std::slice::from_ref(&signer))
            .map_err(Refusal::Authority)?;
        let proof = LoginProof {
            method: LoginMethod::Signature,
            txid: String::new(),
            block_num: 0,
            block_time: now,
        };
        self.log_in(key, &stored.account, &proof, now).await?;
        Ok(WalletLogin {
            account: stored.account,
            pending: None,
        })
    }

    /// Verifies a `requestSignTx` answer against the stored transaction,
    /// logs the session in and broadcasts the transfer.
    pub async fn verify_transaction(
        &self,
        key: &SessionKey,
        signed: &Value,
        now: UnixTime,
    ) -> Result<WalletLogin, WalletError> {
        if !self.enabled(LoginMethod::SignedTransfer) {
            return Err(WalletError::Disabled);
        }
        let stored = self.take(key, LoginMethod::SignedTransfer, now).await?;
        let ours: Transaction = serde_json::from_str(&stored.payload)
            .map_err(|e| StoreError::new(format!("stored transaction is unreadable: {e}")))?;
        let theirs: Transaction = serde_json::from_value(signed.clone())
            .map_err(|e| Refusal::Tampered(format!("not the issued transaction ({e})")))?;
        compare_transactions(&ours, &theirs).map_err(Refusal::Tampered)?;
        let signers = recover_transaction_signers(self.settings.chain, &ours, &theirs.signatures)
            .map_err(|e| match e {
            RecoverError::Unsigned => Refusal::Unsigned,
            RecoverError::Signature { error, .. } => Refusal::Signature(error),
            RecoverError::Serialize(e) => Refusal::Tampered(e.to_string()),
        })?;
        let authority = self.authority(&stored.account, Role::Active).await?;
        authority
            .satisfied_by(&signers)
            .map_err(Refusal::Authority)?;
        let txid = ours
            .id()
            .map_err(|e| Refusal::Tampered(format!("cannot serialize: {e}")))?;
        let proof = LoginProof {
            method: LoginMethod::SignedTransfer,
            txid,
            block_num: 0,
            block_time: 0,
        };
        let pending = PendingConfirmation {
            key: key.clone(),
            proof: proof.clone(),
            expiration: UnixTime::from(ours.expiration.unix_seconds()),
        };
        // Recorded before the login, so that whichever instance follows the
        // chain revokes it if the transfer never lands, even if this one
        // dies right after (see `store::pending::settle_due`).
        self.store.add_pending_confirmation(&pending).await?;
        self.log_in(key, &stored.account, &proof, now).await?;
        let mut broadcast = ours.clone();
        broadcast.signatures = theirs.signatures.clone();
        match self
            .chain
            .call("condenser_api.broadcast_transaction", json!([broadcast]))
            .await
        {
            Ok(_) => {}
            Err(RpcError::Node { message, .. }) => {
                let refusal = Refusal::ChainRefused(message);
                self.store
                    .revoke_login(key, &proof, &refusal.to_string())
                    .await?;
                return Err(refusal.into());
            }
            // Perhaps sent, perhaps not: the follower will tell.
            Err(e) => tracing::warn!(error = %e, "broadcasting an instant login transfer failed"),
        }
        if let Some(watcher) = &self.watcher {
            tokio::spawn(confirm_or_revoke(
                self.store.clone(),
                watcher.status.clone(),
                watcher.cache.clone(),
                pending.clone(),
            ));
        }
        Ok(WalletLogin {
            account: stored.account,
            pending: Some(pending),
        })
    }

    async fn log_in(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        now: UnixTime,
    ) -> Result<(), WalletError> {
        let expires_at = now.saturating_add(self.settings.session_ttl.as_secs());
        if self
            .store
            .login_session(key, account, proof, expires_at)
            .await?
        {
            Ok(())
        } else {
            Err(Refusal::SessionGone.into())
        }
    }
}

/// Names the first field in which the text the wallet signed differs from
/// the issued challenge.
fn describe_other_challenge(issued: &LoginChallenge, signed: &str) -> Refusal {
    let Ok(signed) = LoginChallenge::parse(signed) else {
        return Refusal::SignedOtherChallenge;
    };
    if signed.site() != issued.site() {
        Refusal::SignedOtherSite(signed.site().to_string())
    } else if signed.chain() != issued.chain() {
        Refusal::SignedOtherChain(signed.chain().as_str())
    } else if signed.account() != issued.account() {
        Refusal::SignedOtherAccount(signed.account().as_str().to_string())
    } else {
        Refusal::SignedOtherChallenge
    }
}

/// Compares the wallet's copy with ours, field by field (signatures aside).
/// `Err` names the first difference.
pub fn compare_transactions(ours: &Transaction, theirs: &Transaction) -> Result<(), String> {
    let differs = |field: &str| Err(format!("{field} differs from the issued transaction"));
    if theirs.ref_block_num != ours.ref_block_num {
        return differs("ref_block_num");
    }
    if theirs.ref_block_prefix != ours.ref_block_prefix {
        return differs("ref_block_prefix");
    }
    if theirs.expiration != ours.expiration {
        return differs("expiration");
    }
    if theirs.extensions != ours.extensions {
        return differs("extensions");
    }
    if theirs.operations.len() != ours.operations.len() {
        return differs("the number of operations");
    }
    for (mine, other) in ours.operations.iter().zip(&theirs.operations) {
        match (mine, other) {
            (Operation::Transfer(mine), Operation::Transfer(other)) => {
                if other.from != mine.from {
                    return differs("from");
                }
                if other.to != mine.to {
                    return differs("to");
                }
                if other.amount != mine.amount {
                    return differs("amount");
                }
                if other.memo != mine.memo {
                    return differs("memo");
                }
            }
            _ => return differs("the operation"),
        }
    }
    Ok(())
}

/// Watches one signed-transfer login until the follower confirms it (the
/// session's proof changes), the session ends, or the follower has
/// processed a block past the transaction's expiration (chain time), in
/// which case the login is revoked with [`pending::NEVER_LANDED`]. Without
/// any follower progress it revokes [`pending::CONFIRM_FAILSAFE_SECS`]
/// after expiration.
///
/// This task lives in the verifying instance and keeps its session cache
/// right; the durable guarantee is [`pending::settle_due`], run by
/// whichever instance follows the chain, from the record in the store.
pub async fn confirm_or_revoke(
    store: SharedStore,
    status: ChainStatusHandle,
    cache: Arc<SessionCache>,
    pending: PendingConfirmation,
) {
    let mut ticker = tokio::time::interval(CONFIRM_POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match store.get_session(&pending.key).await {
            Ok(Some(record)) if record.login.as_ref() == Some(&pending.proof) => {}
            Ok(_) => {
                // Confirmed, ended, or revoked by the follower of another
                // instance: this instance's cache must not keep the login.
                cache.evict(&pending.key);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot check an instant login; retrying");
                continue;
            }
        }
        if !pending::is_due(&pending, status.snapshot().processed_time, now_unix()) {
            continue;
        }
        match pending::revoke_never_landed(&store, &pending).await {
            Ok(_) => {
                cache.evict(&pending.key);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot revoke an instant login; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer_tx() -> Transaction {
        Transaction {
            ref_block_num: 1,
            ref_block_prefix: 2,
            expiration: ChainTime(1_800_000_060),
            operations: vec![Operation::Transfer(TransferOperation {
                from: "alice".into(),
                to: "gate".into(),
                amount: "0.001 STEEM".into(),
                memo: "K7Q2".into(),
            })],
            extensions: Vec::new(),
            signatures: Vec::new(),
        }
    }

    #[test]
    fn any_changed_field_is_named() {
        let ours = transfer_tx();
        let mut same = ours.clone();
        same.signatures = vec!["00".into()];
        assert_eq!(compare_transactions(&ours, &same), Ok(()));
        let edit = |f: &dyn Fn(&mut TransferOperation)| {
            let mut theirs = ours.clone();
            if let Operation::Transfer(t) = &mut theirs.operations[0] {
                f(t);
            }
            compare_transactions(&ours, &theirs).unwrap_err()
        };
        assert!(edit(&|t| t.amount = "1.000 STEEM".into()).starts_with("amount"));
        assert!(edit(&|t| t.memo = "other".into()).starts_with("memo"));
        assert!(edit(&|t| t.to = "mallory".into()).starts_with("to"));
        assert!(edit(&|t| t.from = "bob".into()).starts_with("from"));
        let mut later = ours.clone();
        later.expiration = ChainTime(1_800_000_999);
        assert!(
            compare_transactions(&ours, &later)
                .unwrap_err()
                .starts_with("expiration")
        );
        let mut doubled = ours.clone();
        doubled.operations.push(doubled.operations[0].clone());
        assert!(compare_transactions(&ours, &doubled).is_err());
    }

    #[test]
    fn a_different_signed_text_is_described_by_its_first_differing_field() {
        let expires = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let alice = AccountName::parse("alice").unwrap();
        let issued = LoginChallenge::with_nonce(
            "example.com",
            ChainName::Steem,
            alice.clone(),
            &"ab".repeat(16),
            expires,
        )
        .unwrap();
        let variant = |site: &str, chain, account: &str| {
            LoginChallenge::with_nonce(
                site,
                chain,
                AccountName::parse(account).unwrap(),
                &"ab".repeat(16),
                expires,
            )
            .unwrap()
            .to_message()
        };
        assert_eq!(
            describe_other_challenge(&issued, &variant("evil.example", ChainName::Steem, "alice")),
            Refusal::SignedOtherSite("evil.example".into())
        );
        assert_eq!(
            describe_other_challenge(&issued, &variant("example.com", ChainName::Hive, "alice")),
            Refusal::SignedOtherChain("hive")
        );
        assert_eq!(
            describe_other_challenge(&issued, &variant("example.com", ChainName::Steem, "bob")),
            Refusal::SignedOtherAccount("bob".into())
        );
        assert_eq!(
            describe_other_challenge(&issued, "hello"),
            Refusal::SignedOtherChallenge
        );
    }
}
