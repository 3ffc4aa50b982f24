//! `POST /.steemgate/verify` bodies, end to end below HTTP: the body parse
//! (`parse_verify_request`), then `WalletLogins::verify_signature` or
//! `verify_transaction` against a stored challenge, an in-memory store and
//! a fake chain (see `common/wallet.rs`, whose signing oracle lets inputs
//! carry real signatures: `"sig:posting"`, `"sig:active"`, `"sig:theirs"`,
//! `"sig:other"`).
//!
//! Properties: a login happens only for a signature by the account's right
//! key over the server's OWN stored copy (posting for text, active for a
//! transfer) of an unaltered transaction; a refusal leaves the session
//! logged out; a refusal is never a store or chain failure; an answer can
//! be tried once (the second try finds no challenge).
//!
//! A leading `!` stores the other method's challenge (wrong-method paths).
#![no_main]

#[path = "common/wallet.rs"]
mod wallet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use steemgate::config::LoginMethod;
use steemgate::auth::wallet::{
    Refusal, WalletError, WalletLogin, compare_transactions,
};
use steemgate::chain::crypto::{Transaction, recover_message_signer, recover_transaction_signers};
use steemgate::proxy::wallet::{VerifyRequest, parse_verify_request};
use wallet::*;

fuzz_target!(|data: &[u8]| {
    let (swap, body) = match data.split_first() {
        Some((b'!', rest)) => (true, rest),
        _ => (false, data),
    };
    let Ok(request) = parse_verify_request(body) else {
        return;
    };
    let text_answer = matches!(request, VerifyRequest::Signature { .. });
    let stored_method = if text_answer != swap {
        LoginMethod::Signature
    } else {
        LoginMethod::SignedTransfer
    };
    let stored_digest = if stored_method == LoginMethod::Signature {
        text_digest(STORED_TEXT)
    } else {
        transaction_digest(&stored_transaction())
            .unwrap_or_else(|| panic!("the stored transaction must serialize"))
    };
    let must_log_in = right_answer(&request, stored_method);
    let request = with_signatures(request, &stored_digest);
    block_on(async {
        let (store, logins, key) = world();
        open_session(&store, &key).await;
        store_challenge(&store, &key, stored_method).await;
        let (request, logins, key) = (&request, &logins, &key);
        let attempt = || async move {
            match request {
                VerifyRequest::Signature {
                    signature,
                    challenge,
                } => {
                    logins
                        .verify_signature(key, SITE, signature, challenge.as_deref(), NOW)
                        .await
                }
                VerifyRequest::Transaction(transaction) => {
                    logins.verify_transaction(key, transaction, NOW).await
                }
            }
        };
        let outcome = attempt().await;
        let account = store
            .get_session(key)
            .await
            .unwrap_or_else(|e| panic!("memory store: {e}"))
            .and_then(|record| record.account);
        match &outcome {
            Ok(login) => {
                assert_eq!(account.as_deref(), Some(ACCOUNT));
                check_login(request, stored_method, login);
            }
            Err(WalletError::Refused(refusal)) => {
                assert!(!must_log_in, "the right answer was refused: {refusal}");
                assert_eq!(account, None, "refused yet logged in");
            }
            Err(other) => panic!("a wallet answer failed as {other:?}, not as a refusal"),
        }
        // One try per challenge, whatever the first answer was.
        assert!(
            matches!(
                attempt().await,
                Err(WalletError::Refused(Refusal::NoChallenge))
            ),
            "a second try was not refused as a replay"
        );
    });
});

/// Whether the request (before the oracle tokens are replaced) is a right
/// answer that must log in: the account's right key over the stored copy,
/// the transaction unaltered, every signature a valid one.
fn right_answer(request: &VerifyRequest, stored_method: LoginMethod) -> bool {
    const TOKENS: [&str; 4] = ["sig:posting", "sig:active", "sig:other", "sig:theirs"];
    match request {
        VerifyRequest::Signature {
            signature,
            challenge,
        } => {
            stored_method == LoginMethod::Signature
                && signature.trim() == "sig:posting"
                && challenge.as_deref().is_none_or(|text| text == STORED_TEXT)
        }
        VerifyRequest::Transaction(value) => {
            let Ok(theirs) = serde_json::from_value::<Transaction>(value.clone()) else {
                return false;
            };
            stored_method == LoginMethod::SignedTransfer
                && compare_transactions(&stored_transaction(), &theirs).is_ok()
                && theirs
                    .signatures
                    .iter()
                    .all(|s| TOKENS.contains(&s.as_str()))
                && theirs
                    .signatures
                    .iter()
                    .any(|s| s == "sig:active" || s == "sig:theirs")
        }
    }
}

/// Replaces oracle tokens in the request's signatures.
fn with_signatures(request: VerifyRequest, stored: &[u8; 32]) -> VerifyRequest {
    match request {
        VerifyRequest::Signature {
            signature,
            challenge,
        } => VerifyRequest::Signature {
            signature: resolve(signature.trim(), stored, None),
            challenge,
        },
        VerifyRequest::Transaction(mut value) => {
            let theirs = serde_json::from_value::<Transaction>(value.clone())
                .ok()
                .and_then(|t| transaction_digest(&t));
            if let Some(signatures) = value.get_mut("signatures").and_then(Value::as_array_mut) {
                for signature in signatures {
                    if let Some(token) = signature.as_str() {
                        *signature = Value::String(resolve(token, stored, theirs.as_ref()));
                    }
                }
            }
            VerifyRequest::Transaction(value)
        }
    }
}

/// What must hold when a login went through.
fn check_login(request: &VerifyRequest, stored_method: LoginMethod, login: &WalletLogin) {
    assert_eq!(login.account, ACCOUNT);
    match request {
        VerifyRequest::Signature {
            signature,
            challenge,
        } => {
            assert_eq!(stored_method, LoginMethod::Signature);
            assert!(login.pending.is_none());
            let signer = recover_message_signer(STORED_TEXT.as_bytes(), signature.trim());
            assert_eq!(signer.as_ref(), Ok(posting_key()), "not the posting key");
            if let Some(text) = challenge {
                assert_eq!(text, STORED_TEXT, "another signed text was accepted");
            }
        }
        VerifyRequest::Transaction(value) => {
            assert_eq!(stored_method, LoginMethod::SignedTransfer);
            let ours = stored_transaction();
            let theirs: Transaction = serde_json::from_value(value.clone())
                .unwrap_or_else(|e| panic!("accepted an unreadable transaction: {e}"));
            assert_eq!(compare_transactions(&ours, &theirs), Ok(()));
            let signers = recover_transaction_signers(CHAIN, &ours, &theirs.signatures)
                .unwrap_or_else(|e| panic!("accepted unrecoverable signatures: {e}"));
            assert!(signers.contains(active_key()), "no active-key signature");
            let pending = login
                .pending
                .as_ref()
                .unwrap_or_else(|| panic!("an instant login without a pending confirmation"));
            assert_eq!(Ok(pending.proof.txid.clone()), ours.id());
        }
    }
}
