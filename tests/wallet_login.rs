//! Wallet logins end to end (issue 10): the real binary, the in-test devnet
//! serving keys generated here, and a wallet simulated with the crate's own
//! Keychain-compatible signers. Both methods must log in (the upstream sees
//! the account) and every forgery must be refused with its own reason.

mod support;

use std::net::SocketAddr;

use serde_json::{Value, json};
use steemgate::chain::crypto::Transaction;
use support::gateway::{GATE, Response, Stack, get, raw_request, upstream_saw};
use support::wallet::{Wallet, key_from, set_keys, sign_text, sign_transaction};

/// A JSON POST with an optional Host override and cookie.
fn post_json(
    addr: SocketAddr,
    path: &str,
    host: Option<&str>,
    cookie: Option<&str>,
    body: &Value,
) -> Response {
    let body = body.to_string();
    let host = host.map_or_else(|| addr.to_string(), str::to_string);
    let cookie = cookie.map_or_else(String::new, |c| format!("Cookie: {c}\r\n"));
    let raw = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n{cookie}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw_request(addr, raw.as_bytes())
}

/// Asks for a challenge; returns (cookie, answer JSON).
fn challenge(stack: &Stack, cookie: Option<&str>, account: &str, method: &str) -> (String, Value) {
    let response = post_json(
        stack.addr(),
        "/.steemgate/challenge",
        None,
        cookie,
        &json!({"account": account, "method": method}),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let cookie = response
        .session_cookie()
        .or_else(|| cookie.map(str::to_string))
        .expect("a session cookie");
    (cookie, response.json())
}

fn verify(stack: &Stack, cookie: &str, body: &Value) -> Response {
    post_json(stack.addr(), "/.steemgate/verify", None, Some(cookie), body)
}

fn assert_refused(response: &Response, needle: &str) {
    assert_eq!(response.status, 401, "{}", response.body);
    let error = response.json()["error"].as_str().unwrap_or("").to_string();
    assert!(
        error.contains(needle),
        "expected a refusal mentioning {needle:?}, got {error:?}"
    );
}

fn upstream_account(stack: &Stack, cookie: &str) -> Vec<String> {
    let response = get(stack.addr(), "/app", &[&format!("Cookie: {cookie}")]);
    assert_eq!(response.status, 200, "{}", response.body);
    upstream_saw(&response.json(), "x-steem-account")
}

/// `r ‖ (n − s)` with the recovery bit flipped: the malleated twin.
fn high_s_twin(signature_hex: &str) -> String {
    use k256::elliptic_curve::PrimeField;
    let compact: [u8; 65] = hex::decode(signature_hex).unwrap().try_into().unwrap();
    let s_bytes: [u8; 32] = compact[33..].try_into().unwrap();
    let negated = -k256::Scalar::from_repr(s_bytes.into()).unwrap();
    let mut twin = compact;
    twin[0] = 27 + 4 + (((compact[0] - 27) & 3) ^ 1);
    twin[33..].copy_from_slice(&negated.to_bytes());
    hex::encode(twin)
}

/// The test config plus `login:` lines (indented by two spaces).
fn with_login(lines: &'static str) -> impl FnOnce(String) -> String {
    move |config| config.replace("routes:\n", &format!("login:\n{lines}routes:\n"))
}

/// A gateway whose devnet knows `alice` with fresh keys (no app authorities).
fn gateway_knowing_alice() -> (Stack, Wallet) {
    let stack = Stack::start();
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    (stack, alice)
}

#[test]
fn a_signed_challenge_logs_in_at_once_and_cannot_be_replayed() {
    let (stack, alice) = gateway_knowing_alice();

    let (cookie, answer) = challenge(&stack, None, "alice", "signature");
    let text = answer["challenge"].as_str().expect("challenge text");
    assert!(text.contains("account: alice"), "{text}");
    assert!(text.contains(&format!("site: {}", stack.addr())), "{text}");
    assert!(answer["expires_in"].as_u64().is_some_and(|s| s > 0));
    let signature = sign_text(&alice.posting, text);

    let response = verify(&stack, &cookie, &json!({"signature": signature}));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["authenticated"], json!(true));
    assert_eq!(response.json()["account"], json!("alice"));
    assert_eq!(upstream_account(&stack, &cookie), vec!["alice"]);

    // The nonce was consumed: the same answer again is a replay.
    let replay = verify(&stack, &cookie, &json!({"signature": signature}));
    assert_refused(&replay, "already used");
}

#[test]
fn a_signed_login_transfer_logs_in_at_once_and_is_confirmed_by_the_chain() {
    let (stack, alice) = gateway_knowing_alice();

    let (cookie, answer) = challenge(&stack, None, "alice", "signed_transfer");
    let transaction = &answer["transaction"];
    let op = &transaction["operations"][0];
    assert_eq!(op[0], json!("transfer"));
    assert_eq!(op[1]["from"], json!("alice"));
    assert_eq!(op[1]["to"], json!(GATE));
    assert_eq!(op[1]["amount"], json!("0.001 STEEM"));
    let memo = op[1]["memo"].as_str().unwrap().to_string();

    let signed = sign_transaction(&alice.active, transaction);
    let response = verify(&stack, &cookie, &json!({"transaction": signed}));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["authenticated"], json!(true));
    assert_eq!(upstream_account(&stack, &cookie), vec!["alice"]);

    // The broadcast transfer lands in the next block under its own id, and
    // the follower's claim confirms the session (it stays logged in even
    // after a block far past the transaction's expiration).
    let txid = serde_json::from_value::<Transaction>(signed)
        .unwrap()
        .id()
        .unwrap();
    let block = stack.devnet.produce_block(None);
    let ops = stack
        .devnet
        .rpc("condenser_api.get_ops_in_block", json!([block, false]));
    assert!(
        ops.as_array()
            .unwrap()
            .iter()
            .any(|o| o["trx_id"] == json!(txid) && o["op"][1]["memo"] == json!(memo)),
        "{ops}"
    );
    // One login by the wallet, a second by the follower's claim.
    let confirmed = support::wait_until(std::time::Duration::from_secs(15), || {
        support::gateway::metric(stack.gateway.admin, "steemgate_logins_total") == Some(2.0)
    });
    assert!(confirmed, "the follower never claimed the login transfer");
    // Chain time well past the expiration: a confirmed login stays. The
    // follower settles instant logins after each round; once it has
    // processed a block produced after it had processed the late one, the
    // round that saw the late block has settled (the revoking twin of this
    // check is `a_signed_transfer_that_never_lands_is_revoked_...`).
    let late = stack.devnet.produce_block(Some(&future_chain_time(3600)));
    support::gateway::wait_processed(stack.gateway.admin, late);
    let next = stack.devnet.produce_block(Some(&future_chain_time(3603)));
    support::gateway::wait_processed(stack.gateway.admin, next);
    assert_eq!(stack.status(&cookie)["authenticated"], json!(true));
    assert_eq!(upstream_account(&stack, &cookie), vec!["alice"]);
}

/// `YYYY-MM-DDTHH:MM:SS`, `seconds` from now.
fn future_chain_time(seconds: u64) -> String {
    steemgate::chain::devnet::format_chain_time(steemgate::clock::now_unix() + seconds)
}

#[test]
fn a_signed_transfer_that_never_lands_is_revoked_after_its_expiration() {
    let stack = Stack::start_with(with_login("  transfer_expiration: 10s\n"));
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    stack
        .devnet
        .rpc("devnet.drop_broadcasts", json!({"drop": true}));

    let (cookie, answer) = challenge(&stack, None, "alice", "signed_transfer");
    let signed = sign_transaction(&alice.active, &answer["transaction"]);
    let response = verify(&stack, &cookie, &json!({"transaction": signed}));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(upstream_account(&stack, &cookie), vec!["alice"]);

    // A block dated after the expiration: the transfer can no longer land.
    stack.devnet.produce_block(Some(&future_chain_time(60)));
    let revoked = support::wait_until(std::time::Duration::from_secs(15), || {
        stack.status(&cookie)["authenticated"] == json!(false)
    });
    assert!(revoked, "the unconfirmed login was never revoked");
    let status = stack.status(&cookie);
    assert!(
        status["revoked_reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not reach the chain")),
        "{status}"
    );
    let app = get(
        stack.addr(),
        "/app",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
    );
    assert_eq!(app.status, 401, "{}", app.body);
}

#[test]
fn signatures_by_the_wrong_key_are_refused_with_the_reason() {
    let stack = Stack::start();
    let alice = Wallet::new("alice");
    let app_key = key_from("some-app/posting");
    set_keys(
        &stack,
        "alice",
        &alice,
        json!({"posting_account_auths": [["some-app", 1]]}),
    );
    set_keys(
        &stack,
        "some-app",
        &Wallet {
            posting: key_from("some-app/posting"),
            active: key_from("some-app/active"),
            memo: key_from("some-app/memo"),
        },
        json!({}),
    );

    // The memo key.
    let (cookie, answer) = challenge(&stack, None, "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&alice.memo, text)}),
    );
    assert_refused(&response, "memo key");

    // An app granted posting rights in account_auths only.
    let (cookie, answer) = challenge(&stack, Some(&cookie), "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&app_key, text)}),
    );
    assert_refused(&response, "not one of the account's posting keys");

    // A high-S twin of a valid signature.
    let (cookie, answer) = challenge(&stack, Some(&cookie), "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let twin = high_s_twin(&sign_text(&alice.posting, text));
    let response = verify(&stack, &cookie, &json!({"signature": twin}));
    assert_refused(&response, "high S");

    // Multisig: one key of weight 1 cannot meet threshold 2.
    set_keys(&stack, "alice", &alice, json!({"posting_threshold": 2}));
    let (cookie, answer) = challenge(&stack, Some(&cookie), "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&alice.posting, text)}),
    );
    assert_refused(&response, "needs weight 2");

    // The posting key signing a transfer (active authority needed).
    set_keys(&stack, "alice", &alice, json!({}));
    let (cookie, answer) = challenge(&stack, Some(&cookie), "alice", "signed_transfer");
    let signed = sign_transaction(&alice.posting, &answer["transaction"]);
    let response = verify(&stack, &cookie, &json!({"transaction": signed}));
    assert_refused(&response, "not one of the account's active keys");

    // An account the chain does not know.
    let (cookie, answer) = challenge(&stack, Some(&cookie), "nobody-here", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&alice.posting, text)}),
    );
    assert_refused(&response, "does not exist");

    assert_eq!(stack.status(&cookie)["authenticated"], json!(false));
}

#[test]
fn challenges_for_another_site_chain_or_account_are_refused() {
    let (stack, alice) = gateway_knowing_alice();

    // Signed text edited by a phishing page: each field is named.
    for (from, to, needle) in [
        (
            format!("site: {}", stack.addr()),
            "site: evil.example".to_string(),
            "another site",
        ),
        (
            "chain: steem".to_string(),
            "chain: hive".to_string(),
            "another chain",
        ),
        (
            "account: alice".to_string(),
            "account: bob".to_string(),
            "another account",
        ),
    ] {
        let (cookie, answer) = challenge(&stack, None, "alice", "signature");
        let text = answer["challenge"].as_str().unwrap();
        let forged = text.replace(&from, &to);
        assert_ne!(forged, text);
        let response = verify(
            &stack,
            &cookie,
            &json!({"signature": sign_text(&alice.posting, &forged), "challenge": forged}),
        );
        assert_refused(&response, needle);
    }

    // The same text signed for another site, without saying so: the
    // signature does not match the issued challenge, so no key matches.
    let (cookie, answer) = challenge(&stack, None, "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let forged = text.replace(&format!("site: {}", stack.addr()), "site: evil.example");
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&alice.posting, &forged)}),
    );
    assert_refused(&response, "not one of the account's posting keys");

    // A challenge issued on one Host and answered on another.
    let (cookie, answer) = challenge(&stack, None, "alice", "signature");
    let text = answer["challenge"].as_str().unwrap();
    let response = post_json(
        stack.addr(),
        "/.steemgate/verify",
        Some("other.example"),
        Some(&cookie),
        &json!({"signature": sign_text(&alice.posting, text)}),
    );
    assert_refused(&response, "another site");
}

#[test]
fn a_tampered_transaction_is_refused() {
    let (stack, alice) = gateway_knowing_alice();
    for (field, value) in [
        ("amount", json!("1000.000 STEEM")),
        ("memo", json!("another memo")),
        ("to", json!("mallory")),
    ] {
        let (cookie, answer) = challenge(&stack, None, "alice", "signed_transfer");
        let mut transaction = answer["transaction"].clone();
        transaction["operations"][0][1][field] = value;
        // Signed by the right key, but over the edited transaction.
        let signed = sign_transaction(&alice.active, &transaction);
        let response = verify(&stack, &cookie, &json!({"transaction": signed}));
        assert_refused(&response, "tampered");
        assert_refused(&response, field);
        assert_eq!(stack.status(&cookie)["authenticated"], json!(false));
    }
    // Nothing was broadcast.
    let block = stack.devnet.produce_block(None);
    let transfers = stack.devnet.transfers_in(block);
    assert!(transfers.is_empty(), "{transfers:?}");
}

#[test]
fn an_expired_challenge_is_refused() {
    let stack = Stack::start_with(with_login("  wallet_challenge_ttl: 1s\n"));
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    let (cookie, answer) = challenge(&stack, None, "alice", "signature");
    let text = answer["challenge"].as_str().unwrap().to_string();
    // The ttl is wall-clock time on the gateway: wait it out (2 s).
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let response = verify(
        &stack,
        &cookie,
        &json!({"signature": sign_text(&alice.posting, &text)}),
    );
    assert_refused(&response, "expired");
}

#[test]
fn disabled_methods_answer_404_and_the_memo_transfer_still_works() {
    let stack = Stack::start_with(with_login("  methods: [transfer]\n"));
    for method in ["signature", "signed_transfer"] {
        let response = post_json(
            stack.addr(),
            "/.steemgate/challenge",
            None,
            None,
            &json!({"account": "alice", "method": method}),
        );
        assert_eq!(response.status, 404, "{}", response.body);
    }
    let response = post_json(
        stack.addr(),
        "/.steemgate/verify",
        None,
        None,
        &json!({"signature": "00"}),
    );
    assert_eq!(response.status, 401, "{}", response.body);
    let cookie = stack.login_as("bob");
    assert_eq!(stack.status(&cookie)["methods"], json!(["transfer"]));
    assert_eq!(upstream_account(&stack, &cookie), vec!["bob"]);
}

#[test]
fn a_verify_without_any_challenge_is_refused() {
    let stack = Stack::start();
    let (cookie, _) = stack.start_login();
    let response = verify(&stack, &cookie, &json!({"signature": "1f".repeat(65)}));
    assert_refused(&response, "already used");
    let response = verify(&stack, &cookie, &json!({"nonsense": true}));
    assert_eq!(response.status, 400, "{}", response.body);
}
