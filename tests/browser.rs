//! The login page in a real browser: Debian's headless Chromium, driven over
//! the DevTools protocol, against the real gateway binary, an in-test devnet
//! and the header-echo upstream (see `support::gateway`).
//!
//! Why: the login page is mostly behaviour that only a browser shows (the
//! long poll that returns the visitor, the `<noscript>` refresh, the Keychain
//! button, the CSP letting our own script run). Each test skips with a notice
//! when `chromium` is missing, and fails instead under
//! `STEEMGATE_REQUIRE_SYSTEM_DEPS=1` (CI).
//!
//! Screenshots of the login page are written to
//! `$CARGO_TARGET_TMPDIR/screenshots/` on every run, and to
//! `docs/screenshots/` when `STEEMGATE_SCREENSHOTS=update` (they hold a random
//! memo, so refreshing the committed ones is a deliberate act).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use headless_chrome::Tab;
use headless_chrome::protocol::cdp::{Emulation, Page};
use serde_json::{Value, json};
use support::browser::{
    Chromium, STEP, assert_only_loopback, echoed, eval, inject_on_new_document, location,
    record_requests, wait_for,
};
use support::gateway::{GATE, Stack, upstream_saw};

fn memo_on_page(tab: &Tab) -> String {
    let memo = eval(tab, "document.getElementById('memo').textContent.trim()");
    let memo = memo.as_str().unwrap_or_default().to_string();
    assert!(memo.len() >= 16, "no memo on the login page: {memo:?}");
    memo
}

#[test]
fn a_visitor_pays_and_the_page_returns_them_to_the_protected_url() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start();
    let tab = chromium.tab();
    let requests = record_requests(&tab);
    let target = format!("http://{}/app/page?x=1", stack.addr());
    tab.navigate_to(&target)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fapp%2Fpage%3Fx%3D1");
    // Without a site_name the page names the host the visitor asked for.
    assert_eq!(
        eval(&tab, "document.querySelector('h1').textContent"),
        json!(format!("Log in to {}", stack.addr()))
    );
    let memo = memo_on_page(&tab);
    // Our script ran under the strict CSP: it revealed the copy button.
    assert!(wait_for(
        &tab,
        "!document.getElementById('copy').hidden",
        STEP
    ));
    assert_eq!(
        eval(&tab, "document.querySelector('.memo-text').textContent"),
        json!(memo)
    );

    stack.devnet.transfer("alice", GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    assert!(
        wait_for(&tab, "location.pathname === '/app/page'", STEP),
        "the browser never returned to /app/page; it is at {}",
        location(&tab)
    );
    assert_eq!(location(&tab), "/app/page?x=1");
    let seen = echoed(&tab);
    assert_eq!(seen["target"], json!("/app/page?x=1"));
    assert_eq!(upstream_saw(&seen, "x-steem-account"), vec!["alice"]);
    assert_only_loopback(&requests, &stack);

    // The builtin hello upstream greets the same session by name.
    tab.navigate_to(&format!("http://{}/hello", stack.addr()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let hello = eval(&tab, "document.body.innerText");
    assert!(
        hello.as_str().is_some_and(|t| t.contains("alice")),
        "{hello}"
    );
}

#[test]
fn without_javascript_the_meta_refresh_brings_the_visitor_there() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start();
    let tab = chromium.tab();
    tab.call_method(Emulation::SetScriptExecutionDisabled { value: true })
        .expect("disable JavaScript");
    let target = format!("http://{}/app/nojs", stack.addr());
    tab.navigate_to(&target)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fapp%2Fnojs");
    // Our script never ran: the JavaScript-only controls stay hidden.
    assert_eq!(
        eval(&tab, "document.getElementById('copy').hidden"),
        json!(true)
    );
    let memo = memo_on_page(&tab);

    stack.devnet.transfer("bob", GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    // The page reloads every 5 s; give it a few rounds.
    assert!(
        wait_for(
            &tab,
            "location.pathname === '/app/nojs'",
            Duration::from_secs(40)
        ),
        "the meta refresh never brought the browser to /app/nojs; it is at {}",
        location(&tab)
    );
    assert_eq!(upstream_saw(&echoed(&tab), "x-steem-account"), vec!["bob"]);
}

#[test]
fn an_expired_code_is_replaced_everywhere_on_the_page() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    // Codes live 2 s here, so the page must keep renewing its code.
    let stack =
        Stack::start_with(|config| config.replace("challenge_ttl: 15m", "challenge_ttl: 2s"));
    let tab = chromium.tab();
    let requests = record_requests(&tab);
    tab.navigate_to(&format!("http://{}/app/renew", stack.addr()))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let first = memo_on_page(&tab);
    let changed = format!("document.getElementById('memo').textContent !== '{first}'");
    assert!(wait_for(&tab, &changed, STEP), "the code was never renewed");
    // The QR image of the new link is loaded from the gateway.
    assert!(wait_for(
        &tab,
        "(function () { var i = document.querySelector('#qr img'); return !!i && i.complete && i.naturalWidth > 0; })()",
        STEP
    ));
    // One snapshot of every place that shows the code.
    let shown = eval(
        &tab,
        "JSON.stringify({memo: document.getElementById('memo').textContent, \
           copy: document.querySelector('.memo-text').textContent, \
           link: document.querySelector('a.hot-sign').href, \
           qr: document.querySelector('#qr img').getAttribute('src'), \
           state: document.getElementById('state').textContent})",
    );
    let shown: Value = serde_json::from_str(shown.as_str().unwrap()).unwrap();
    let memo = shown["memo"].as_str().unwrap();
    assert_ne!(memo, first);
    assert_eq!(shown["copy"], json!(memo), "{shown}");
    assert_eq!(
        shown["link"],
        json!(format!(
            "https://steemlogin.com/sign/transfer?to={GATE}&amount=0.001%20STEEM&memo={memo}"
        )),
        "{shown}"
    );
    assert_eq!(
        shown["qr"],
        json!(format!("/.steemgate/qr.svg?memo={memo}"))
    );
    assert!(
        shown["state"]
            .as_str()
            .is_some_and(|s| s.contains("this is a new one")),
        "{shown}"
    );
    assert_only_loopback(&requests, &stack);
}

/// Stands in for the Keychain extension: records every `requestTransfer`
/// call and answers like a successful broadcast.
const KEYCHAIN_STUB: &str = r#"
window.__keychainCalls = [];
window.steem_keychain = {
  requestHandshake: function (callback) { callback(); },
  requestTransfer: function () {
    var args = Array.prototype.slice.call(arguments);
    window.__keychainCalls.push({ args: args.slice(0, 5), callback: typeof args[5], count: args.length });
    args[5]({ success: true, message: "stub broadcast", result: { id: "stub" } });
  }
};
"#;

#[test]
fn the_keychain_button_requests_exactly_the_login_transfer() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let stack = Stack::start_with(|config| format!("site_name: \"Example Forum\"\n{config}"));
    let tab = chromium.tab();
    let requests = record_requests(&tab);
    inject_on_new_document(&tab, KEYCHAIN_STUB);
    let target = format!("http://{}/app/keychain", stack.addr());
    tab.navigate_to(&target)
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    assert!(
        wait_for(
            &tab,
            "!document.getElementById('keychain-box').hidden",
            STEP
        ),
        "the Keychain button never appeared"
    );
    assert_eq!(
        eval(&tab, "document.querySelector('h1').textContent"),
        json!("Log in to Example Forum")
    );
    let memo = memo_on_page(&tab);
    screenshots(&tab);

    // Empty account: Keychain lets the visitor choose.
    tab.find_element("#keychain").unwrap().click().unwrap();
    // A typed account is normalised (no @, lower case).
    tab.find_element("#account").unwrap().click().unwrap();
    tab.type_str("@Alice").unwrap();
    tab.find_element("#keychain").unwrap().click().unwrap();
    let calls = eval(&tab, "JSON.stringify(window.__keychainCalls)");
    let calls: Value = serde_json::from_str(calls.as_str().unwrap()).unwrap();
    let expect = |account: &str| json!({"args": [account, GATE, "0.001", memo, "STEEM"], "callback": "function", "count": 6});
    assert_eq!(calls, json!([expect(""), expect("alice")]));
    assert!(wait_for(
        &tab,
        "document.getElementById('state').textContent.includes('Sent, waiting for the chain')",
        STEP
    ));
    // The wallet's word logs nobody in: only the chain does.
    let status = eval(
        &tab,
        "fetch('/.steemgate/status', {headers: {Accept: 'application/json'}}).then(r => r.text())",
    );
    let status: Value = serde_json::from_str(status.as_str().unwrap_or_default()).unwrap();
    assert_eq!(status["authenticated"], json!(false), "{status}");
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fapp%2Fkeychain");
    assert_only_loopback(&requests, &stack);
}

/// Desktop, phone and dark-mode phone shots of the login page in `tab`.
fn screenshots(tab: &Tab) {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let publish = std::env::var("STEEMGATE_SCREENSHOTS").as_deref() == Ok("update");
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    for (name, width, height, mobile, dark) in [
        ("login-desktop.png", 1280, 900, false, false),
        ("login-phone.png", 390, 844, true, false),
        ("login-phone-dark.png", 390, 844, true, true),
    ] {
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width,
            height,
            device_scale_factor: 1.0,
            mobile,
            scale: None,
            screen_width: None,
            screen_height: None,
            position_x: None,
            position_y: None,
            dont_set_visible_size: None,
            screen_orientation: None,
            viewport: None,
            display_feature: None,
            device_posture: None,
        })
        .expect("set the viewport");
        tab.call_method(Emulation::SetEmulatedMedia {
            media: None,
            features: Some(vec![Emulation::MediaFeature {
                name: "prefers-color-scheme".into(),
                value: if dark { "dark" } else { "light" }.into(),
            }]),
        })
        .expect("set the colour scheme");
        let png = tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot");
        assert_eq!(png_size(&png), (width, height), "{name}");
        std::fs::write(out.join(name), &png).unwrap();
        if publish {
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(docs.join(name), &png).unwrap();
        }
    }
    eprintln!("login page screenshots in {}", out.display());
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}
