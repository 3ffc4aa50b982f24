//! `POST /.steemgate/challenge` bodies, below HTTP: the input is the
//! request's `Host` on the first line and the body after it. The body
//! parse (`parse_challenge_request`) feeds `WalletLogins::issue` with an
//! in-memory store and a fake chain (see `common/wallet.rs`).
//!
//! Properties: the memo-transfer method is never issued a challenge; an
//! issued text parses back to this site, chain and account; an issued
//! transfer pays exactly the configured amount to the gateway and
//! serializes; every issued challenge, signed as a wallet would with the
//! account's key, logs the session in (a challenge we hand out can always
//! be completed); a refusal is a bad request, never a store or chain
//! failure, and stores nothing.
#![no_main]

#[path = "common/wallet.rs"]
mod wallet;

use libfuzzer_sys::fuzz_target;
use steemgate::auth::wallet::{Issued, WalletError};
use steemgate::chain::AccountName;
use steemgate::chain::crypto::{LoginChallenge, Operation};
use steemgate::config::LoginMethod;
use steemgate::proxy::wallet::parse_challenge_request;
use wallet::*;

fuzz_target!(|data: &[u8]| {
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (Ok(host), body) = (std::str::from_utf8(&data[..newline]), &data[newline + 1..]) else {
        return;
    };
    // As the proxy reads the site from Host.
    let site = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if site.is_empty() {
        return;
    }
    let Ok(request) = parse_challenge_request(body) else {
        return;
    };
    assert_ne!(request.method, LoginMethod::Transfer);
    let account = AccountName::parse(request.account.trim());
    block_on(async {
        let (store, logins, key) = world();
        open_session(&store, &key).await;
        let issued = logins
            .issue(&key, &site, &request.account, request.method, NOW)
            .await;
        let issued = match issued {
            Ok(issued) => issued,
            Err(WalletError::BadRequest(_)) => {
                let pending = store
                    .take_wallet_challenge(&key)
                    .await
                    .unwrap_or_else(|e| panic!("memory store: {e}"));
                assert!(pending.is_none(), "a refused request stored a challenge");
                return;
            }
            Err(other) => panic!("issuing failed as {other:?}, not as a bad request"),
        };
        let account = account.unwrap_or_else(|e| panic!("issued for an invalid account: {e}"));
        let login = match issued {
            Issued::Signature {
                challenge,
                expires_in,
            } => {
                assert_eq!(request.method, LoginMethod::Signature);
                assert_eq!(expires_in, 300);
                let parsed = LoginChallenge::parse(&challenge)
                    .unwrap_or_else(|e| panic!("issued an unreadable challenge: {e}"));
                assert_eq!(parsed.site(), site);
                assert_eq!(parsed.chain(), CHAIN);
                assert_eq!(parsed.account(), &account);
                let signature = sign(POSTING_WIF, &parsed.digest());
                logins
                    .verify_signature(&key, &site, &signature, Some(&challenge), NOW)
                    .await
            }
            Issued::SignedTransfer {
                mut transaction, ..
            } => {
                assert_eq!(request.method, LoginMethod::SignedTransfer);
                let [Operation::Transfer(transfer)] = transaction.operations.as_slice() else {
                    panic!("issued {:?}", transaction.operations);
                };
                assert_eq!(transfer.from, account.as_str());
                assert_eq!(transfer.to, GATE);
                assert_eq!(transfer.amount, "0.001 STEEM");
                assert!(transfer.memo.starts_with("login:"));
                let digest = transaction_digest(&transaction)
                    .unwrap_or_else(|| panic!("issued a transaction that does not serialize"));
                transaction.signatures = vec![sign(ACTIVE_WIF, &digest)];
                let answer = serde_json::to_value(&transaction)
                    .unwrap_or_else(|e| panic!("issued a transaction that is not JSON: {e}"));
                logins.verify_transaction(&key, &answer, NOW).await
            }
        };
        match login {
            Ok(login) => assert_eq!(login.account, account.as_str()),
            Err(e) => panic!("a correctly signed answer to our own challenge failed: {e:?}"),
        }
    });
});
