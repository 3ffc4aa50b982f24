//! Wallet logins in a real browser (issue 10): headless Chromium on the login
//! page, with a stub Keychain injected before the page's scripts. The stub
//! records what the page asks Keychain to sign and keeps the callback; the
//! test signs in Rust with keys the in-test devnet serves for the account
//! (the crate's own signer and serializer, see `support::wallet`) and hands
//! the answer back through the stored callback, as the extension would.
//!
//! Why: `tests/wallet_login.rs` proves the server's checks; only a browser
//! shows that `login.js` asks for exactly the right thing (account, text or
//! transaction, key type), posts the wallet's answer, and returns the visitor
//! to the protected URL, or shows the gateway's refusal and stays put.
//! Skips with a notice when `chromium` is missing (fails under
//! `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`).

mod support;

use headless_chrome::Tab;
use serde_json::{Value, json};
use steemgate::chain::ChainName;
use steemgate::chain::crypto::LoginChallenge;
use support::browser::{
    Chromium, STEP, assert_only_loopback, echoed, eval, inject_on_new_document, location,
    record_requests, wait_for,
};
use support::gateway::{GATE, Stack, upstream_saw};
use support::wallet::{Wallet, key_from, set_keys, sign_text, sign_transaction};

/// Stands in for the Keychain extension. Signing requests are recorded in
/// `window.__keychainRequests` (method, arguments, argument count) and their
/// callbacks kept in `window.__keychainCallbacks`, for the test to answer.
const KEYCHAIN_STUB: &str = r#"
window.__keychainRequests = [];
window.__keychainCallbacks = [];
(function () {
  function keep(method, args) {
    args = Array.prototype.slice.call(args);
    window.__keychainRequests.push({
      method: method,
      args: args.slice(0, 3),
      count: args.length,
      callback: typeof args[3]
    });
    window.__keychainCallbacks.push(args[3]);
  }
  window.steem_keychain = {
    requestHandshake: function (callback) { callback(); },
    requestTransfer: function () { keep("requestTransfer", arguments); },
    requestSignBuffer: function (account, message, keyType, callback) {
      keep("requestSignBuffer", arguments);
    },
    requestSignTx: function (account, tx, keyType, callback) {
      keep("requestSignTx", arguments);
    }
  };
})();
"#;

/// A tab on the login page of `path`, with the stub Keychain, `alice`
/// typed into the account field; returns the tab and its request recorder.
fn login_page(
    chromium: &Chromium,
    stack: &Stack,
    path: &str,
) -> (
    std::sync::Arc<Tab>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let tab = chromium.tab();
    let requests = record_requests(&tab);
    inject_on_new_document(&tab, KEYCHAIN_STUB);
    tab.navigate_to(&format!("http://{}{path}", stack.addr()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert!(
        location(&tab).starts_with("/.steemgate/login?rd="),
        "not on the login page: {}",
        location(&tab)
    );
    assert!(
        wait_for(
            &tab,
            "!document.getElementById('wallet-signature').hidden && \
             !document.getElementById('wallet-instant').hidden",
            STEP
        ),
        "the wallet login buttons never appeared"
    );
    tab.find_element("#account").unwrap().click().unwrap();
    tab.type_str("alice").unwrap();
    (tab, requests)
}

/// Clicks `button` and returns the one signing request it caused.
fn click_and_take_request(tab: &Tab, button: &str) -> Value {
    tab.find_element(button).unwrap().click().unwrap();
    assert!(
        wait_for(tab, "window.__keychainRequests.length === 1", STEP),
        "Keychain was never asked to sign; the page says {}",
        eval(tab, "document.getElementById('state').textContent")
    );
    let requests = eval(tab, "JSON.stringify(window.__keychainRequests)");
    let mut requests: Value = serde_json::from_str(requests.as_str().unwrap()).unwrap();
    requests[0].take()
}

/// Answers the pending Keychain request as a successful signing.
fn answer(tab: &Tab, result: &Value) {
    let reply = json!({"success": true, "error": null, "result": result, "message": "Signed", "request_id": 1});
    eval(
        tab,
        &format!(
            "window.__keychainRequests = []; window.__keychainCallbacks.shift()({reply}); true"
        ),
    );
}

/// How many answers the gateway forwarded from an upstream (status 200 on
/// any route; its own pages and endpoints are counted as "(gateway)").
fn upstream_answers(stack: &Stack) -> f64 {
    let metrics = support::gateway::get(stack.gateway.admin, "/metrics", &[]).body;
    metrics
        .lines()
        .filter(|line| line.starts_with("steemgate_requests_total{"))
        .filter(|line| line.contains(r#"status="200""#) && !line.contains(r#"route="(gateway)""#))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Waits for the page to return to `path` and checks the upstream saw alice.
fn assert_returned_as_alice(tab: &Tab, stack: &Stack, path: &str) {
    let pathname = path.split('?').next().unwrap();
    assert!(
        wait_for(tab, &format!("location.pathname === '{pathname}'"), STEP),
        "the browser never reached {path}; it is at {} and says {}",
        location(tab),
        eval(tab, "document.body.innerText")
    );
    assert_eq!(location(tab), path);
    let seen = echoed(tab);
    assert_eq!(seen["target"], json!(path));
    assert_eq!(upstream_saw(&seen, "x-steem-account"), vec!["alice"]);
    // The counter the refusal test relies on does count forwarded answers.
    assert!(upstream_answers(stack) >= 1.0);
}

#[test]
fn signing_the_challenge_text_logs_in_for_free_and_returns_the_visitor() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start();
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    let (tab, requests) = login_page(&chromium, &stack, "/app/signed?x=1");

    let request = click_and_take_request(&tab, "#wallet-signature");
    assert_eq!(request["method"], json!("requestSignBuffer"), "{request}");
    assert_eq!(request["count"], json!(4), "{request}");
    assert_eq!(request["callback"], json!("function"), "{request}");
    assert_eq!(request["args"][0], json!("alice"));
    assert_eq!(request["args"][2], json!("Posting"));
    // The gateway's challenge: this site, this chain, this account.
    let text = request["args"][1].as_str().expect("the challenge text");
    let challenge = LoginChallenge::parse(text).expect("a login challenge");
    assert_eq!(challenge.site(), stack.addr().to_string());
    assert_eq!(challenge.chain(), ChainName::Steem);
    assert_eq!(challenge.account().as_str(), "alice");
    assert_eq!(upstream_answers(&stack), 0.0);

    answer(&tab, &json!(sign_text(&alice.posting, text)));
    assert_returned_as_alice(&tab, &stack, "/app/signed?x=1");
    assert_only_loopback(&requests, &stack);
}

#[test]
fn signing_the_login_transfer_logs_in_at_once_and_broadcasts_it() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start();
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    let (tab, requests) = login_page(&chromium, &stack, "/app/instant");

    let request = click_and_take_request(&tab, "#wallet-instant");
    assert_eq!(request["method"], json!("requestSignTx"), "{request}");
    assert_eq!(request["count"], json!(4), "{request}");
    assert_eq!(request["callback"], json!("function"), "{request}");
    assert_eq!(request["args"][0], json!("alice"));
    assert_eq!(request["args"][2], json!("Active"));
    // Exactly one operation: the login transfer to the gateway's account.
    let transaction = &request["args"][1];
    assert_eq!(transaction["signatures"], json!([]), "{transaction}");
    let operations = transaction["operations"].as_array().expect("operations");
    assert_eq!(operations.len(), 1, "{transaction}");
    assert_eq!(operations[0][0], json!("transfer"));
    let transfer = &operations[0][1];
    assert_eq!(transfer["from"], json!("alice"));
    assert_eq!(transfer["to"], json!(GATE));
    assert_eq!(transfer["amount"], json!("0.001 STEEM"));
    let memo = transfer["memo"].as_str().expect("a memo").to_string();
    assert!(memo.len() >= 16, "{memo:?}");
    // A fresh code, not the memo shown for an ordinary transfer.
    assert_ne!(
        json!(memo),
        eval(&tab, "document.getElementById('memo').textContent.trim()")
    );

    answer(&tab, &sign_transaction(&alice.active, transaction));
    assert_returned_as_alice(&tab, &stack, "/app/instant");
    // The gateway broadcast the signed transfer: it lands in the next block.
    let block = stack.devnet.produce_block(None);
    let ops = stack
        .devnet
        .rpc("condenser_api.get_ops_in_block", json!([block, false]));
    assert!(
        ops.as_array().unwrap().iter().any(|o| o["op"]
            == json!(["transfer", {"from": "alice", "to": GATE, "amount": "0.001 STEEM", "memo": memo}])),
        "{ops}"
    );
    assert_only_loopback(&requests, &stack);
}

#[test]
fn a_signature_by_the_wrong_key_leaves_the_visitor_on_the_login_page() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start();
    let alice = Wallet::new("alice");
    set_keys(&stack, "alice", &alice, json!({}));
    let (tab, requests) = login_page(&chromium, &stack, "/app/wrong");
    let login_url = location(&tab);
    let state = "document.getElementById('state').textContent";

    // The challenge text signed with the memo key.
    let request = click_and_take_request(&tab, "#wallet-signature");
    let text = request["args"][1].as_str().unwrap();
    answer(&tab, &json!(sign_text(&alice.memo, text)));
    assert!(
        wait_for(
            &tab,
            &format!("{state}.startsWith('Not logged in: ') && {state}.includes('memo key')"),
            STEP
        ),
        "no refusal shown; the page says {}",
        eval(&tab, state)
    );

    // The login transfer signed with a key alice does not hold.
    let request = click_and_take_request(&tab, "#wallet-instant");
    answer(
        &tab,
        &sign_transaction(&key_from("stranger/active"), &request["args"][1]),
    );
    assert!(
        wait_for(
            &tab,
            &format!(
                "{state}.startsWith('Not logged in: ') && \
                 {state}.includes(\"not one of the account's active keys\")"
            ),
            STEP
        ),
        "no refusal shown; the page says {}",
        eval(&tab, state)
    );
    // Both buttons can be tried again; nobody was let through.
    assert_eq!(
        eval(
            &tab,
            "document.getElementById('wallet-signature').disabled || \
             document.getElementById('wallet-instant').disabled"
        ),
        json!(false)
    );
    assert_eq!(location(&tab), login_url);
    assert_eq!(upstream_answers(&stack), 0.0);
    let status = eval(
        &tab,
        "fetch('/.steemgate/status', {headers: {Accept: 'application/json'}}).then(r => r.text())",
    );
    let status: Value = serde_json::from_str(status.as_str().unwrap_or_default()).unwrap();
    assert_eq!(status["authenticated"], json!(false), "{status}");
    assert_only_loopback(&requests, &stack);
}
