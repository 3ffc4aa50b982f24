//! Every visible control of every page a visitor meets, clicked in a real
//! browser (Debian's headless Chromium) against `steemgate demo` itself: the
//! binary's own demo mode, on a random loopback port, in a scratch working
//! directory (its embedded store goes to `data/demo` there). Where the demo
//! cannot show a page (429, 503), a test config does.
//!
//! Why: the demo's main button once failed in every real browser (403
//! "Cross-site requests are refused": the pages' referrer policy made
//! Chromium send `Origin: null` on our own form posts) while every curl-driven
//! test passed, because curl sends a real `Origin`. So each step under test
//! here is a click or typing, as a person does it; no API shortcut. Links
//! that leave the machine (the hot-sign wallet, chain profiles) are clicked
//! too, with the navigation cancelled (`intercept_off_site_links`) and the
//! browser unable to resolve any name but loopback.
//!
//! Every page is also checked with axe-core (no `serious` or `critical`
//! violation, light and dark scheme). axe-core is pinned in
//! `tests/browser-deps/package-lock.json` and installed by
//! `scripts/browser-deps.sh` (`npm ci`); without it the accessibility checks
//! skip with a notice, and fail under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1` (CI),
//! as the whole file does without `chromium`. Screenshots of each page go to
//! `$CARGO_TARGET_TMPDIR/screenshots/demo-*.png`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use headless_chrome::Tab;
use headless_chrome::protocol::cdp::Network;
use serde_json::{Value, json};
use support::browser::{
    Chromium, STEP, assert_accessible, axe_source, click, cookie, eval, grant_clipboard,
    inject_on_new_document, intercept_off_site_links, location, off_site_clicks, record_requests,
    retype, screenshot, wait_for,
};
use support::gateway::{Stack, get, raw_request};
use support::redis_server::RedisServer;
use support::wallet::{Wallet, sign_text, stm};
use support::{free_addr, wait_until};

/// The account the demo is paid at (`steemgate::demo::DEMO_GATE_ACCOUNT`).
const DEMO_GATE: &str = steemgate::demo::DEMO_GATE_ACCOUNT;
/// The gateway's session cookie.
const COOKIE: &str = "steemgate";

/// `steemgate demo` as a child process, killed on drop.
struct Demo {
    addr: SocketAddr,
    /// The demo's devnet (its JSON-RPC address, as the demo prints it).
    devnet: Option<SocketAddr>,
    /// The demo's working directory: its store and its output.
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Demo {
    /// Starts the demo with 300 ms blocks on a free loopback port, and waits
    /// until its hello app answers and its follower has seen the chain. If
    /// another process takes the probed port first, starts again on a new one.
    fn start() -> Self {
        let mut demo = Self {
            addr: free_addr(),
            devnet: None,
            dir: tempfile::tempdir().expect("scratch dir"),
            child: None,
        };
        for attempt in 1..=3 {
            demo.spawn();
            match demo.wait_listening() {
                Ok(devnet) => {
                    demo.devnet = Some(devnet);
                    demo.wait_following();
                    return demo;
                }
                Err(log) if log.contains("in use") && attempt < 3 => {
                    demo.stop();
                    demo.addr = free_addr();
                }
                Err(log) => panic!("steemgate demo on {} did not start:\n{log}", demo.addr),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    fn output(&self, stream: &str) -> PathBuf {
        self.dir
            .path()
            .join(format!("demo-{}.{stream}", self.addr.port()))
    }

    fn spawn(&mut self) {
        let out = std::fs::File::create(self.output("out")).expect("demo stdout");
        let err = std::fs::File::create(self.output("err")).expect("demo stderr");
        let child = Command::new(env!("CARGO_BIN_EXE_steemgate"))
            .arg("demo")
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(["--block-interval", "300ms"])
            .current_dir(self.dir.path())
            .env("STEEMGATE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start steemgate demo");
        self.child = Some(child);
    }

    /// What the demo printed (stdout, then stderr).
    fn log(&self) -> String {
        let read = |stream: &str| std::fs::read_to_string(self.output(stream)).unwrap_or_default();
        format!("{}\n--- stderr\n{}", read("out"), read("err"))
    }

    /// The devnet address from the demo's printed instructions
    /// (`steemgate devnet transfer --node http://ADDR …`).
    fn printed_devnet(&self) -> Option<SocketAddr> {
        let log = self.log();
        let (_, rest) = log.split_once("--node http://")?;
        rest.split_whitespace().next()?.parse().ok()
    }

    /// Waits (bounded) for the printed devnet address and the hello app's
    /// answer on `/public`; on an early exit or a timeout, the demo's output.
    fn wait_listening(&mut self) -> Result<SocketAddr, String> {
        let mut exited = None;
        let mut devnet = None;
        let ready = wait_until(Duration::from_secs(60), || {
            if let Some(status) = support::child_exited(&mut self.child) {
                exited = Some(status);
                return true;
            }
            if self.log().contains(" is in use") {
                return true;
            }
            devnet = self.printed_devnet();
            // The demo's own hello app (public route) answering, not just
            // anything accepting TCP on the port.
            devnet.is_some()
                && std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(200))
                    .is_ok()
                && get(self.addr, "/public", &[])
                    .header("x-hello-account")
                    .is_some()
        });
        match (exited, ready, devnet) {
            (None, true, Some(devnet)) => Ok(devnet),
            (Some(status), _, _) => Err(format!("exited ({status}):\n{}", self.log())),
            _ => Err(format!("not ready after 60 s:\n{}", self.log())),
        }
    }

    /// Waits until the gateway's follower reports a head block (so a
    /// transfer in the next block is seen).
    fn wait_following(&self) {
        let first = get(
            self.addr,
            "/.steemgate/status",
            &["Accept: application/json"],
        );
        let cookie = first.session_cookie().expect("status sets a cookie");
        let header = format!("Cookie: {cookie}");
        let following = wait_until(Duration::from_secs(30), || {
            std::thread::sleep(Duration::from_millis(200));
            let status = get(
                self.addr,
                "/.steemgate/status",
                &["Accept: application/json", &header],
            );
            status.status == 200 && status.json()["chain"]["head_block"].is_u64()
        });
        assert!(
            following,
            "the demo never followed its chain:\n{}",
            self.log()
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A JSON-RPC call to the demo's devnet.
    fn rpc(&self, method: &str, params: Value) -> Value {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let raw = format!(
            "POST / HTTP/1.1\r\nHost: devnet\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let devnet = self.devnet.expect("the demo printed its devnet");
        let value = raw_request(devnet, raw.as_bytes()).json();
        assert!(value.get("error").is_none(), "devnet {method}: {value}");
        value["result"].clone()
    }

    fn stop(&mut self) {
        support::stop_child(&mut self.child);
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Opens `url` and waits for the load.
fn open(tab: &Tab, url: &str) {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
}

/// Waits until the tab shows `pathname` with an `<h1>` containing `heading`.
fn wait_for_page(tab: &Tab, pathname: &str, heading: &str) {
    let check = format!(
        "location.pathname === {} && !!document.querySelector('h1') && \
         document.querySelector('h1').textContent.includes({})",
        json!(pathname),
        json!(heading)
    );
    assert!(
        wait_for(tab, &check, STEP),
        "expected {pathname} showing {heading:?}; the browser is at {} showing {}",
        location(tab),
        eval(tab, "document.body ? document.body.innerText : ''")
    );
}

fn text(tab: &Tab, selector: &str) -> String {
    let value = eval(
        tab,
        &format!(
            "(function () {{ var e = document.querySelector({}); return e ? e.textContent.trim() : null; }})()",
            json!(selector)
        ),
    );
    value
        .as_str()
        .unwrap_or_else(|| panic!("no {selector} on {}", location(tab)))
        .to_string()
}

/// The memo the login page shows (once its script has revealed the controls).
fn memo_on_login_page(tab: &Tab) -> String {
    assert!(
        location(tab).starts_with("/.steemgate/login"),
        "not on the login page: {}",
        location(tab)
    );
    assert!(
        wait_for(tab, "!document.getElementById('copy').hidden", STEP),
        "the login page's script never ran"
    );
    let memo = text(tab, "#memo");
    assert!(memo.len() >= 16, "no memo on the login page: {memo:?}");
    memo
}

/// Types `account` into the simulation form and presses Simulate transfer.
fn simulate_transfer(tab: &Tab, account: &str) {
    assert_eq!(
        text(tab, "form.sim button[type=submit]"),
        "Simulate transfer"
    );
    retype(tab, "#sim-from", account);
    click(tab, "form.sim button[type=submit]");
}

#[test]
fn simulate_transfer_then_every_control_of_the_app_report_and_gateway_pages() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let demo = Demo::start();
    let tab = chromium.tab();
    let requests = record_requests(&tab);
    intercept_off_site_links(&tab);
    grant_clipboard(&tab, &demo.url(""));

    // The protected app sends a visitor to the login page.
    open(&tab, &demo.url("/"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2F");
    let memo = memo_on_login_page(&tab);
    assert_accessible(&tab, axe.as_deref(), "login");
    screenshot(&tab, "demo-login");

    // Copy code: the button says so and the clipboard holds the memo.
    click(&tab, "#copy");
    assert!(
        wait_for(
            &tab,
            "document.getElementById('copy').textContent === 'Copied'",
            STEP
        ),
        "no 'Copied' feedback; the button says {}",
        text(&tab, "#copy")
    );
    assert_eq!(
        eval(&tab, "navigator.clipboard.readText()"),
        json!(memo),
        "the clipboard does not hold the memo"
    );

    // The hot-sign link goes to the wallet with exactly this transfer.
    let wallet_url = format!(
        "https://steemlogin.com/sign/transfer?to={DEMO_GATE}&amount=0.001%20STEEM&memo={memo}"
    );
    assert_eq!(
        eval(&tab, "document.querySelector('a.hot-sign').href"),
        json!(wallet_url)
    );
    click(&tab, "a.hot-sign");
    assert_eq!(off_site_clicks(&tab), vec![wallet_url]);
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2F");

    // Simulate transfer: type an account, press the button, land on the app.
    simulate_transfer(&tab, "demo");
    wait_for_page(&tab, "/", "Hello @demo");
    assert!(cookie(&tab, COOKIE).is_some_and(|c| !c.is_empty()));
    assert_accessible(&tab, axe.as_deref(), "hello");
    screenshot(&tab, "demo-hello");

    // The report link, then its Update form.
    click(&tab, "a[href='/stale']");
    wait_for_page(&tab, "/stale", "Stale follows of @demo");
    assert_accessible(&tab, axe.as_deref(), "report");
    screenshot(&tab, "demo-report");
    let count = |tab: &Tab| -> u64 {
        text(tab, ".stale-count")
            .parse()
            .unwrap_or_else(|e| panic!("stale count: {e}"))
    };
    let following: u64 = text(&tab, ".following-count").parse().unwrap();
    assert!(following > 1000, "demo follows {following}");
    let (days_before, stale_before) = (
        eval(&tab, "document.querySelector('input[name=days]').value"),
        count(&tab),
    );
    assert_eq!(
        eval(&tab, "document.querySelector('select[name=by]').value"),
        json!("post")
    );
    // New threshold typed, then Tab to the select and ArrowDown to "top-level
    // posts only", as a keyboard user does, then Update.
    retype(&tab, "input[name=days]", "7");
    tab.press_key("Tab").unwrap();
    assert_eq!(
        eval(&tab, "document.activeElement.name"),
        json!("by"),
        "Tab did not reach the select"
    );
    tab.press_key("ArrowDown").unwrap();
    assert_eq!(
        eval(&tab, "document.querySelector('select[name=by]').value"),
        json!("root")
    );
    click(&tab, "form button[type=submit]");
    assert!(
        wait_for(
            &tab,
            "location.search === '?days=7&by=root&sort=days'",
            STEP
        ),
        "Update did not submit the form; at {}",
        location(&tab)
    );
    wait_for_page(&tab, "/stale", "Stale follows of @demo");
    assert_eq!(
        eval(&tab, "document.querySelector('input[name=days]').value"),
        json!("7")
    );
    assert_eq!(
        eval(&tab, "document.querySelector('select[name=by]').value"),
        json!("root")
    );
    let stale_after = count(&tab);
    assert_ne!(json!("7"), days_before);
    assert!(
        stale_after > stale_before,
        "7 days of top-level posts must find more stale follows than the default: \
         {stale_after} vs {stale_before}"
    );
    assert!(
        text(&tab, "p.muted").contains("top-level posts only"),
        "{}",
        text(&tab, "p.muted")
    );
    // The first row's profile link leaves for the chain's front end.
    let first = eval(&tab, "document.querySelector('tbody a').href");
    let first = first.as_str().expect("a profile link").to_string();
    assert!(first.starts_with("https://steemit.com/@"), "{first}");
    click(&tab, "tbody a");
    assert_eq!(off_site_clicks(&tab), vec![first]);
    // "this report" as JSON: the same numbers.
    click(&tab, "a[href*='format=json']");
    assert!(wait_for(
        &tab,
        "location.search === '?days=7&by=root&sort=days&format=json'",
        STEP
    ));
    let report: Value = serde_json::from_str(
        eval(&tab, "document.body.innerText")
            .as_str()
            .unwrap_or_default(),
    )
    .expect("the report as JSON");
    assert_eq!(report["account"], json!("demo"), "{report}");
    assert_eq!(
        report["stale"].as_array().map(Vec::len),
        Some(usize::try_from(stale_after).unwrap()),
        "{report}"
    );

    // A 404 page, and its link back to the start page.
    open(&tab, &demo.url("/.steemgate/no-such-page"));
    wait_for_page(&tab, "/.steemgate/no-such-page", "Not found");
    assert_accessible(&tab, axe.as_deref(), "404");
    screenshot(&tab, "demo-404");
    click(&tab, "main a.button");
    wait_for_page(&tab, "/", "Hello @demo");

    // Log out from the app.
    click(&tab, "form[action='/.steemgate/logout'] button");
    wait_for_page(&tab, "/.steemgate/logout", "Logged out");
    assert!(
        cookie(&tab, COOKIE).is_none_or(|c| c.is_empty()),
        "the session cookie is still set"
    );
    assert_accessible(&tab, axe.as_deref(), "logged-out");
    screenshot(&tab, "demo-logged-out");
    // "Log in again" opens a new login (a new code).
    click(&tab, "main a.button");
    assert!(wait_for(
        &tab,
        "location.pathname === '/.steemgate/login'",
        STEP
    ));
    assert_ne!(memo_on_login_page(&tab), memo);
    // The app is protected again.
    open(&tab, &demo.url("/"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2F");

    // The public page greets anonymously and its Log in link leads to login.
    open(&tab, &demo.url("/public"));
    wait_for_page(&tab, "/public", "Hello, anonymous visitor");
    assert_accessible(&tab, axe.as_deref(), "public hello");
    screenshot(&tab, "demo-public");
    click(&tab, "main a.button");
    assert!(wait_for(
        &tab,
        "location.pathname + location.search === '/.steemgate/login?rd=%2F'",
        STEP
    ));
    memo_on_login_page(&tab);

    // Every request stayed on the demo. Our pages declare an icon, so no
    // HTML page made the browser ask for /favicon.ico: on the demo that path
    // is the protected app, and each such request opened a login session
    // (after a logout, a fresh session cookie). Only the JSON view, which has
    // no HTML to declare an icon in, still makes Chromium ask.
    let requests = requests.lock().unwrap();
    for (i, url) in requests.iter().enumerate() {
        assert!(
            url.starts_with(&demo.url("/")),
            "the browser requested {url}"
        );
        if url.ends_with("/favicon.ico") {
            assert!(
                i > 0 && requests[i - 1].ends_with("format=json"),
                "an HTML page made the browser request {url}: {requests:#?}"
            );
        }
    }
}

/// Stands in for the Keychain extension: each request is recorded in
/// `window.__keychain` (method, arguments without the callback) and its
/// callback kept for `window.__keychainAnswer(reply)`.
const KEYCHAIN_STUB: &str = r#"
window.__keychain = [];
window.__keychainCallbacks = [];
(function () {
  function keep(method, args, at) {
    args = Array.prototype.slice.call(args);
    window.__keychain.push({ method: method, args: args.slice(0, at) });
    window.__keychainCallbacks.push(args[at]);
  }
  window.__keychainAnswer = function (reply) {
    window.__keychain = [];
    window.__keychainCallbacks.shift()(reply);
    return true;
  };
  window.steem_keychain = {
    requestHandshake: function (callback) { callback(); },
    requestTransfer: function () { keep("requestTransfer", arguments, 5); },
    requestSignBuffer: function () { keep("requestSignBuffer", arguments, 3); },
    requestSignTx: function () { keep("requestSignTx", arguments, 3); }
  };
})();
"#;

/// Clicks `button` and returns the one Keychain request it caused.
fn keychain_request(tab: &Tab, button: &str) -> Value {
    click(tab, button);
    assert!(
        wait_for(tab, "window.__keychain.length === 1", STEP),
        "{button} asked Keychain nothing; the page says {}",
        text(tab, "#state")
    );
    let requests = eval(tab, "JSON.stringify(window.__keychain)");
    let mut requests: Value = serde_json::from_str(requests.as_str().unwrap()).unwrap();
    requests[0].take()
}

/// Answers the pending Keychain request with `reply`.
fn keychain_answer(tab: &Tab, reply: &Value) {
    eval(tab, &format!("window.__keychainAnswer({reply})"));
}

/// Waits until the login page's status line contains `words`.
fn wait_for_state(tab: &Tab, words: &str) {
    assert!(
        wait_for(
            tab,
            &format!(
                "document.getElementById('state').textContent.includes({})",
                json!(words)
            ),
            STEP
        ),
        "the page never said {words:?}; it says {}",
        text(tab, "#state")
    );
}

#[test]
fn the_403_page_logs_out_and_every_keychain_button_works_with_a_stub_wallet() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let demo = Demo::start();
    // alice's keys on the demo's chain, as a wallet would hold them.
    let alice = Wallet::new("alice");
    demo.rpc(
        "devnet.set_keys",
        json!({"account": "alice", "posting": [stm(&alice.posting)], "active": [stm(&alice.active)], "memo": stm(&alice.memo)}),
    );
    let tab = chromium.tab();
    intercept_off_site_links(&tab);
    inject_on_new_document(&tab, KEYCHAIN_STUB);

    // bob logs in with the simulation and opens alice's page.
    open(&tab, &demo.url("/vip"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fvip");
    memo_on_login_page(&tab);
    simulate_transfer(&tab, "bob");
    wait_for_page(&tab, "/vip", "Not allowed");
    assert!(text(&tab, "main").contains("You are logged in as @bob"));
    assert_accessible(&tab, axe.as_deref(), "403");
    screenshot(&tab, "demo-403");

    // Log out from the 403 page.
    assert_eq!(
        text(&tab, "form[action='/.steemgate/logout'] button"),
        "Log out @bob to use another account"
    );
    let before = cookie(&tab, COOKIE);
    click(&tab, "form[action='/.steemgate/logout'] button");
    wait_for_page(&tab, "/.steemgate/logout", "Logged out");
    assert!(
        cookie(&tab, COOKIE).is_none_or(|c| c.is_empty()),
        "the session cookie is still set (it was {before:?}): {:?}",
        tab.get_cookies()
    );
    open(&tab, &demo.url("/vip"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fvip");

    // The Keychain buttons, with a stub wallet.
    assert!(
        wait_for(
            &tab,
            "!document.getElementById('keychain-box').hidden && \
             !document.getElementById('wallet-signature').hidden && \
             !document.getElementById('wallet-instant').hidden",
            STEP
        ),
        "the Keychain buttons never appeared"
    );
    assert_accessible(&tab, axe.as_deref(), "login with Keychain");
    screenshot(&tab, "demo-login-keychain");
    let memo = memo_on_login_page(&tab);
    retype(&tab, "#account", "@Alice");

    // "Send with Steem Keychain": the login transfer; the wallet declines.
    let request = keychain_request(&tab, "#keychain");
    assert_eq!(
        request,
        json!({"method": "requestTransfer", "args": ["alice", DEMO_GATE, "0.001", memo, "STEEM"]})
    );
    keychain_answer(&tab, &json!({"success": false, "message": "User declined"}));
    wait_for_state(&tab, "Keychain did not send the transfer: User declined");

    // "Instant login": the login transfer to sign with the active key.
    let request = keychain_request(&tab, "#wallet-instant");
    assert_eq!(request["method"], json!("requestSignTx"), "{request}");
    assert_eq!(request["args"][0], json!("alice"));
    assert_eq!(request["args"][2], json!("Active"));
    let operations = &request["args"][1]["operations"];
    assert_eq!(operations[0][0], json!("transfer"), "{request}");
    assert_eq!(operations[0][1]["from"], json!("alice"));
    assert_eq!(operations[0][1]["to"], json!(DEMO_GATE));
    assert_eq!(operations[0][1]["amount"], json!("0.001 STEEM"));
    keychain_answer(&tab, &json!({"success": false, "message": "User declined"}));
    wait_for_state(&tab, "Keychain did not sign: User declined");

    // "Sign in with Keychain": the challenge text, signed with alice's
    // posting key, logs her in and returns her to her page.
    let request = keychain_request(&tab, "#wallet-signature");
    assert_eq!(request["method"], json!("requestSignBuffer"), "{request}");
    assert_eq!(request["args"][0], json!("alice"));
    assert_eq!(request["args"][2], json!("Posting"));
    let challenge = request["args"][1].as_str().expect("the challenge text");
    keychain_answer(
        &tab,
        &json!({"success": true, "result": sign_text(&alice.posting, challenge), "message": "Signed"}),
    );
    wait_for_page(&tab, "/vip", "Hello @alice");
    assert_accessible(&tab, axe.as_deref(), "vip hello");
    assert!(off_site_clicks(&tab).is_empty());
}

/// Deletes the tab's session cookie for `addr` (a new visitor, same address).
fn forget_session(tab: &Tab, addr: SocketAddr) {
    tab.delete_cookies(vec![Network::DeleteCookies {
        name: COOKIE.to_string(),
        url: Some(format!("http://{addr}/")),
        domain: None,
        path: None,
        partition_key: None,
    }])
    .expect("delete the session cookie");
    assert_eq!(cookie(tab, COOKIE), None);
}

/// The 429 page, which the demo's limits do not show a person: a test
/// config allowing one new session a minute, and a second visitor.
#[test]
fn the_429_page_is_accessible() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let stack = Stack::start_with(|config| {
        config.replace(
            "limits: {new_sessions_per_minute: 0, status_per_minute: 0}",
            "limits: {new_sessions_per_minute: 1, new_sessions_burst: 1, status_per_minute: 0}",
        )
    });
    let tab = chromium.tab();
    let page = format!("http://{}/app/page", stack.addr());
    // The one new session this minute: the login page.
    open(&tab, &page);
    memo_on_login_page(&tab);
    // A second visitor (no cookie) from the same address: 429.
    forget_session(&tab, stack.addr());
    open(&tab, &page);
    wait_for_page(&tab, "/.steemgate/login", "Slow down");
    assert!(text(&tab, "main").contains("HTTP 429"));
    assert_accessible(&tab, axe.as_deref(), "429");
    screenshot(&tab, "demo-429");
}

/// The 503 page (the Redis store down), and its Try again button once the
/// store is back.
#[test]
fn the_503_page_is_accessible_and_try_again_recovers() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let axe = axe_source();
    let url = redis.url();
    let stack = Stack::start_with(|config| {
        let store = config
            .lines()
            .find(|line| line.starts_with("store:"))
            .expect("a store line")
            .to_string();
        config.replace(&store, &format!("store: \"{url}\""))
    });
    let tab = chromium.tab();
    let page = format!("http://{}/app/page", stack.addr());
    open(&tab, &page);
    memo_on_login_page(&tab);

    // The store goes away: 503, never "not logged in".
    redis.stop();
    open(&tab, &page);
    wait_for_page(&tab, "/app/page", "Temporarily unavailable");
    assert!(text(&tab, "main").contains("HTTP 503"));
    assert_accessible(&tab, axe.as_deref(), "503");
    screenshot(&tab, "demo-503");

    // Back again (empty): Try again reloads the address, which now leads to
    // a fresh login.
    redis.restart();
    assert_eq!(text(&tab, "main a.button"), "Try again");
    let recovered = wait_until(Duration::from_secs(20), || {
        click(&tab, "main a.button");
        std::thread::sleep(Duration::from_millis(300));
        location(&tab).starts_with("/.steemgate/login?rd=%2Fapp%2Fpage")
    });
    assert!(
        recovered,
        "Try again never reached the login page; at {} showing {}",
        location(&tab),
        text(&tab, "h1")
    );
    memo_on_login_page(&tab);
}

// ---------------------------------------------------------------- the report as a tool (issue 16)

/// Logs `demo` in with the simulated transfer and opens the report.
fn report_as_demo(tab: &Tab, demo: &Demo) {
    open(tab, &demo.url("/stale"));
    memo_on_login_page(tab);
    simulate_transfer(tab, "demo");
    wait_for_page(tab, "/stale", "Stale follows of @demo");
    assert!(
        wait_for(tab, "!document.getElementById('toolbar').hidden", STEP),
        "the report's script never ran"
    );
}

/// The names of the table rows, in order.
fn row_names(tab: &Tab) -> Vec<String> {
    let names = eval(
        tab,
        "JSON.stringify(Array.prototype.map.call(document.querySelectorAll('tbody tr'), function (r) { return r.getAttribute('data-name'); }))",
    );
    serde_json::from_str(names.as_str().unwrap()).unwrap()
}

/// Clicks the checkbox of `name` (on the current page).
fn pick(tab: &Tab, name: &str) {
    click(tab, &format!("input.pick[value='{name}']"));
}

fn checked(tab: &Tab) -> Vec<String> {
    let names = eval(
        tab,
        "JSON.stringify(Array.prototype.filter.call(document.querySelectorAll('input.pick'), function (b) { return b.checked; }).map(function (b) { return b.value; }))",
    );
    serde_json::from_str(names.as_str().unwrap()).unwrap()
}

/// The devnet's blog follows of `account` (all pages).
fn chain_follows(demo: &Demo, account: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut start = String::new();
    loop {
        let page = demo.rpc(
            "condenser_api.get_following",
            json!([account, start, "blog", 1000]),
        );
        let page = page.as_array().unwrap();
        let mut added = 0;
        for entry in page {
            let name = entry["following"].as_str().unwrap().to_string();
            if !names.contains(&name) {
                names.push(name);
                added += 1;
            }
        }
        if page.len() < 1000 || added == 0 {
            return names;
        }
        start = names.last().unwrap().clone();
    }
}

/// Waits until the progress list has an entry with `data-outcome=outcome`
/// for batch `batch`, and returns its text.
fn batch_outcome(tab: &Tab, batch: u32, outcome: &str) -> String {
    let selector = format!("#progress li[data-batch='{batch}'][data-outcome='{outcome}']");
    assert!(
        wait_for(
            tab,
            &format!("!!document.querySelector({})", json!(selector)),
            Duration::from_secs(60)
        ),
        "batch {batch} never became {outcome:?}; the progress says {}",
        text(tab, "#progress")
    );
    text(tab, &selector)
}

/// Emulates a phone screen (390×844 CSS pixels, touch) or undoes it.
fn phone(tab: &Tab, on: bool) {
    use headless_chrome::protocol::cdp::Emulation;
    if on {
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width: 390,
            height: 844,
            device_scale_factor: 2.0,
            mobile: true,
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
        .expect("phone metrics");
    } else {
        tab.call_method(Emulation::ClearDeviceMetricsOverride(None))
            .expect("clear metrics");
    }
}

#[test]
fn report_select_sort_csv_and_unfollow_with_the_simulated_wallet() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let demo = Demo::start();
    let tab = chromium.tab();
    intercept_off_site_links(&tab);
    report_as_demo(&tab, &demo);
    assert_accessible(&tab, axe.as_deref(), "report tool");
    let following: usize = text(&tab, ".following-count").parse().unwrap();
    let stale: usize = text(&tab, ".stale-count").parse().unwrap();
    assert_eq!(following, chain_follows(&demo, "demo").len());
    assert!(stale > 500, "the demo's stale follows span pages: {stale}");
    assert!(text(&tab, "main").contains(&format!("Showing 1–500 of {stale}")));
    // The chart is on the page, drawn by the server.
    assert_eq!(
        eval(&tab, "document.querySelectorAll('#chart rect.bar').length"),
        json!(26)
    );
    assert!(
        eval(
            &tab,
            "document.querySelector('#chart line.threshold') !== null"
        )
        .as_bool()
        .unwrap()
    );
    assert_eq!(
        text(&tab, "#unfollow-simulated"),
        "Unfollow with Simulate wallet"
    );
    assert!(text(&tab, ".toolbar").contains("SIMULATION"));

    // Pick three rows by clicking their checkboxes.
    let rows = row_names(&tab);
    let chosen: Vec<String> = vec![rows[0].clone(), rows[3].clone(), rows[7].clone()];
    for name in &chosen {
        pick(&tab, name);
    }
    assert_eq!(text(&tab, "#selected-count"), "3 selected");

    // Sort by name (a click on the column header): the server sorts, the
    // selection is still there.
    click(&tab, "th a[href*='sort=name']");
    assert!(
        wait_for(&tab, "location.search.includes('sort=name')", STEP),
        "the sort link did not navigate"
    );
    assert!(wait_for(
        &tab,
        "!document.getElementById('toolbar').hidden",
        STEP
    ));
    let sorted = row_names(&tab);
    let mut expected = sorted.clone();
    expected.sort();
    assert_eq!(sorted, expected, "rows in name order");
    assert_eq!(text(&tab, "#selected-count"), "3 selected");
    let mut visible_chosen: Vec<String> = chosen
        .iter()
        .filter(|n| sorted.contains(n))
        .cloned()
        .collect();
    visible_chosen.sort();
    assert_eq!(checked(&tab), visible_chosen);

    // CSV: the same rows, downloaded by a click on the link.
    let downloads = tempfile::tempdir().unwrap();
    tab.call_method(
        headless_chrome::protocol::cdp::Browser::SetDownloadBehavior {
            behavior:
                headless_chrome::protocol::cdp::Browser::SetDownloadBehaviorBehaviorOption::Allow,
            browser_context_id: None,
            download_path: Some(downloads.path().to_string_lossy().into_owned()),
            events_enabled: None,
        },
    )
    .expect("allow downloads");
    click(&tab, "a[href*='format=csv']");
    let csv_path = downloads.path().join("stale-follows-demo-40d.csv");
    assert!(
        wait_until(Duration::from_secs(30), || csv_path.exists()
            && std::fs::read_to_string(&csv_path)
                .is_ok_and(|t| t.ends_with("\r\n"))),
        "no CSV download in {:?}",
        std::fs::read_dir(downloads.path()).map(|d| d.count())
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines[0], "name,last_post,days_inactive");
    assert_eq!(lines.len(), stale + 1);
    let csv_names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        &csv_names[..sorted.len()],
        sorted
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
    );

    // Unfollow the selection with the simulated wallet: the rows disappear
    // and the chain no longer lists them.
    click(&tab, "#unfollow-simulated");
    let outcome = batch_outcome(&tab, 1, "confirmed");
    assert!(
        outcome.contains("3 of 3 confirmed on the chain"),
        "{outcome}"
    );
    assert!(text(&tab, "#progress").contains("Done: 3 unfollowed"));
    let after = row_names(&tab);
    for name in &chosen {
        assert!(!after.contains(name), "{name} is still in the table");
    }
    assert_eq!(text(&tab, "#selected-count"), "0 selected");
    assert_eq!(text(&tab, ".following-count"), (following - 3).to_string());
    let on_chain = chain_follows(&demo, "demo");
    assert_eq!(on_chain.len(), following - 3);
    for name in &chosen {
        assert!(
            !on_chain.contains(name),
            "{name} still followed on the chain"
        );
    }
    // A reload reads the chain again: the same numbers.
    open(&tab, &demo.url("/stale"));
    wait_for_page(&tab, "/stale", "Stale follows of @demo");
    assert_eq!(text(&tab, ".following-count"), (following - 3).to_string());
    assert_eq!(text(&tab, ".stale-count"), (stale - 3).to_string());

    // "Select all stale", then the by-hand panel: hot-sign links of the
    // same operation, one account at a time.
    assert!(wait_for(
        &tab,
        "!document.getElementById('toolbar').hidden",
        STEP
    ));
    click(&tab, "#select-all");
    assert_eq!(
        text(&tab, "#selected-count"),
        format!("{} selected", stale - 3)
    );
    click(&tab, "#by-hand summary");
    assert!(wait_for(
        &tab,
        "document.querySelectorAll('#by-hand-list a').length === 50",
        STEP
    ));
    let first = eval(&tab, "document.querySelector('#by-hand-list a').href");
    let first = first.as_str().unwrap().to_string();
    let link = url::Url::parse(&first).unwrap();
    assert_eq!(link.host_str(), Some("steemlogin.com"));
    let op_text = text(&tab, "#by-hand-list code");
    let json_param = link
        .query_pairs()
        .find(|(k, _)| k == "json")
        .unwrap()
        .1
        .into_owned();
    let op: Value = serde_json::from_str(&op_text).unwrap();
    assert_eq!(op[1]["json"], json!(json_param));
    click(&tab, "#by-hand-list a");
    assert_eq!(off_site_clicks(&tab), vec![first]);
    click(&tab, "#select-none");
    assert_eq!(text(&tab, "#selected-count"), "0 selected");

    // Dark mode and a phone: screenshots for the README.
    // (assert_accessible checks both schemes and leaves the light one.)
    assert_accessible(&tab, axe.as_deref(), "report tool after unfollow");
    open(&tab, &demo.url("/stale"));
    wait_for_page(&tab, "/stale", "Stale follows of @demo");
    support::browser::emulate_color_scheme(&tab, "dark");
    screenshot(&tab, "report-dark");
    support::browser::emulate_color_scheme(&tab, "light");
    screenshot(&tab, "report-light");
    phone(&tab, true);
    support::browser::emulate_color_scheme(&tab, "light");
    open(&tab, &demo.url("/stale"));
    wait_for_page(&tab, "/stale", "Stale follows of @demo");
    let overflow = eval(
        &tab,
        "document.documentElement.scrollWidth <= window.innerWidth + 1",
    );
    assert_eq!(
        overflow,
        json!(true),
        "the report scrolls sideways on a phone"
    );
    screenshot(&tab, "report-phone");
    support::browser::emulate_color_scheme(&tab, "dark");
    screenshot(&tab, "report-phone-dark");
    phone(&tab, false);
}

/// Keychain with `requestBroadcast`: each request is recorded in
/// `window.__keychain` (method, the first three arguments, the argument
/// count, the callback's type) and its callback kept for
/// `window.__keychainAnswer(reply)`.
const BROADCAST_STUB: &str = r#"
window.__keychain = [];
window.__keychainCallbacks = [];
window.__keychainAnswer = function (reply) {
  window.__keychain = [];
  window.__keychainCallbacks.shift()(reply);
  return true;
};
window.steem_keychain = {
  requestHandshake: function (callback) { callback(); },
  requestBroadcast: function () {
    var args = Array.prototype.slice.call(arguments);
    window.__keychain.push({ method: "requestBroadcast", args: args.slice(0, 3), count: args.length, callback: typeof args[3] });
    window.__keychainCallbacks.push(args[3]);
  }
};
"#;

/// Waits for the one pending Keychain request and returns it.
fn pending_broadcast(tab: &Tab) -> Value {
    assert!(
        wait_for(tab, "window.__keychain.length === 1", STEP),
        "Keychain was asked nothing; the progress says {}",
        eval(tab, "document.getElementById('progress').textContent")
    );
    let requests = eval(tab, "JSON.stringify(window.__keychain)");
    let mut requests: Value = serde_json::from_str(requests.as_str().unwrap()).unwrap();
    requests[0].take()
}

/// The exact unfollow operation of the issue, as JSON text.
fn unfollow_text(follower: &str, following: &str) -> String {
    format!(
        r#"["custom_json",{{"required_auths":[],"required_posting_auths":["{follower}"],"id":"follow","json":"[\"follow\",{{\"follower\":\"{follower}\",\"following\":\"{following}\",\"what\":[]}}]"}}]"#
    )
}

/// Signs `operations` with `key` on the demo's head block, as Keychain does.
fn signed_transaction(demo: &Demo, operations: &Value, key: &k256::ecdsa::SigningKey) -> Value {
    let props = demo.rpc("condenser_api.get_dynamic_global_properties", json!([]));
    let (num, prefix) = steemgate::chain::crypto::serialize::ref_block_from_id(
        props["head_block_id"].as_str().unwrap(),
    )
    .unwrap();
    let head = steemgate::chain::crypto::ChainTime::parse(props["time"].as_str().unwrap()).unwrap();
    let unsigned = json!({
        "ref_block_num": num,
        "ref_block_prefix": prefix,
        "expiration": steemgate::chain::crypto::ChainTime(head.0 + 60).to_string(),
        "operations": operations,
        "extensions": [],
    });
    support::wallet::sign_transaction(key, &unsigned)
}

/// A devnet broadcast that may fail (the demo's `rpc` asserts success).
fn try_broadcast(demo: &Demo, tx: &Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "condenser_api.broadcast_transaction", "params": [tx]}).to_string();
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: devnet\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw_request(demo.devnet.unwrap(), raw.as_bytes()).json()
}

#[test]
fn report_unfollow_with_a_stub_keychain_exact_operations_refusal_and_failure() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let demo = Demo::start();
    // demo's keys on the chain: the devnet checks the posting signature.
    let wallet = Wallet::new("demo");
    demo.rpc(
        "devnet.set_keys",
        json!({"account": "demo", "posting": [stm(&wallet.posting)], "active": [stm(&wallet.active)], "memo": stm(&wallet.memo)}),
    );
    let tab = chromium.tab();
    intercept_off_site_links(&tab);
    inject_on_new_document(&tab, BROADCAST_STUB);
    report_as_demo(&tab, &demo);
    assert!(
        wait_for(
            tab.as_ref(),
            "!document.getElementById('unfollow-keychain').hidden",
            STEP
        ),
        "no Keychain button with Keychain present"
    );
    let rows = row_names(&tab);

    // Seven rows: two batches (5 + 2), one requestBroadcast each.
    let chosen: Vec<String> = rows[..7].to_vec();
    for name in &chosen {
        pick(&tab, name);
    }
    click(&tab, "#unfollow-keychain");
    let mut sorted = chosen.clone();
    sorted.sort();
    for (batch, names) in sorted.chunks(5).enumerate() {
        let request = pending_broadcast(&tab);
        assert_eq!(request["method"], "requestBroadcast");
        assert_eq!(
            request["count"], 4,
            "account, operations, key type, callback"
        );
        assert_eq!(request["callback"], "function");
        assert_eq!(request["args"][0], "demo");
        assert_eq!(request["args"][2], "Posting");
        // Byte for byte: the operations as the page handed them over.
        let handed = eval(&tab, "JSON.stringify(window.__keychain[0].args[1])");
        let expected = format!(
            "[{}]",
            names
                .iter()
                .map(|n| unfollow_text("demo", n))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(handed.as_str().unwrap(), expected);
        // The wallet signs with demo's posting key and broadcasts.
        let tx = signed_transaction(&demo, &request["args"][1], &wallet.posting);
        let sent = try_broadcast(&demo, &tx);
        assert!(sent.get("error").is_none(), "{sent}");
        let id =
            steemgate::chain::crypto::Transaction::id(&serde_json::from_value(tx.clone()).unwrap())
                .unwrap();
        keychain_answer(
            &tab,
            &json!({"success": true, "error": null, "result": {"id": id}, "message": "The transaction has been broadcast successfully."}),
        );
        let outcome = batch_outcome(&tab, batch as u32 + 1, "confirmed");
        assert!(
            outcome.contains(&format!("{} of {} confirmed", names.len(), names.len())),
            "{outcome}"
        );
    }
    assert!(text(&tab, "#progress").contains("Done: 7 unfollowed"));
    let on_chain = chain_follows(&demo, "demo");
    let left = row_names(&tab);
    for name in &chosen {
        assert!(!on_chain.contains(name) && !left.contains(name), "{name}");
    }

    // A refused approval: shown as such, nothing removed, row flagged.
    let refused = left[0].clone();
    pick(&tab, &refused);
    click(&tab, "#unfollow-keychain");
    pending_broadcast(&tab);
    keychain_answer(
        &tab,
        &json!({"success": false, "error": "user_cancel", "result": null, "message": "Request was canceled by the user."}),
    );
    let outcome = batch_outcome(&tab, 1, "refused");
    assert!(outcome.contains("approval refused"), "{outcome}");
    assert!(row_names(&tab).contains(&refused));
    assert!(chain_follows(&demo, "demo").contains(&refused));
    assert_eq!(
        text(&tab, &format!("tr[data-name='{refused}'] .row-state")),
        "not sent: approval refused"
    );

    // A failing broadcast: signed with the wrong key, the node refuses it;
    // the wallet reports the node's error and the page shows it.
    click(&tab, "#unfollow-keychain");
    let request = pending_broadcast(&tab);
    let tx = signed_transaction(&demo, &request["args"][1], &wallet.active);
    let refusal = try_broadcast(&demo, &tx);
    let message = refusal["error"]["message"]
        .as_str()
        .expect("the node refuses")
        .to_string();
    assert!(message.contains("posting authority"), "{message}");
    keychain_answer(
        &tab,
        &json!({"success": false, "error": message, "result": null, "message": message}),
    );
    let outcome = batch_outcome(&tab, 1, "failed");
    assert!(
        outcome.contains("failed") && outcome.contains("posting authority"),
        "{outcome}"
    );
    assert!(row_names(&tab).contains(&refused));

    // The wallet says done but nothing reaches the chain: after the wait
    // the row is flagged as still followed, never counted as unfollowed.
    click(&tab, "#unfollow-keychain");
    pending_broadcast(&tab);
    keychain_answer(
        &tab,
        &json!({"success": true, "error": null, "result": {"id": "0000000000000000000000000000000000000000"}, "message": "done"}),
    );
    let outcome = batch_outcome(&tab, 1, "unconfirmed");
    assert!(outcome.contains("0 of 1 confirmed"), "{outcome}");
    assert!(
        outcome.contains(&format!(
            "still followed after the wallet said done: {refused}"
        )),
        "{outcome}"
    );
    assert!(text(&tab, "#progress").contains("Done: 0 unfollowed"));
    assert_eq!(
        text(&tab, &format!("tr[data-name='{refused}'] .row-state")),
        "still followed on the chain"
    );
    assert!(off_site_clicks(&tab).is_empty());
}

/// The demo's `/members` (an access policy: subscribers of the devnet's
/// community): `demo` is refused with a page that says why, "Check again"
/// rechecks, and the simulation button subscribes `demo` on the devnet and
/// lets it in, which the chain itself then confirms.
#[test]
fn the_policy_page_says_why_and_joining_the_community_lets_demo_in() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let demo = Demo::start();
    let tab = chromium.tab();
    intercept_off_site_links(&tab);

    open(&tab, &demo.url("/members"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fmembers");
    memo_on_login_page(&tab);
    simulate_transfer(&tab, "demo");
    wait_for_page(&tab, "/members", "Not open to @demo");
    let reasons = text(&tab, "ul.reasons");
    assert!(
        reasons.contains("Quiet Readers") && reasons.contains("@demo is not subscribed"),
        "{reasons}"
    );
    assert_accessible(&tab, axe.as_deref(), "policy 403");
    screenshot(&tab, "demo-policy-403");
    support::browser::emulate_color_scheme(&tab, "dark");
    screenshot(&tab, "demo-policy-403-dark");
    support::browser::emulate_color_scheme(&tab, "light");

    // "Check again": the chain has not changed, neither has the answer.
    click(&tab, "a.button.secondary");
    wait_for_page(&tab, "/members", "Not open to @demo");

    // The page's logout form logs demo out; logging in again shows the
    // same refusal (the chain has not changed).
    assert_eq!(
        text(&tab, "form[action='/.steemgate/logout'] button"),
        "Log out @demo to use another account"
    );
    click(&tab, "form[action='/.steemgate/logout'] button");
    wait_for_page(&tab, "/.steemgate/logout", "Logged out");
    open(&tab, &demo.url("/members"));
    assert_eq!(location(&tab), "/.steemgate/login?rd=%2Fmembers");
    memo_on_login_page(&tab);
    simulate_transfer(&tab, "demo");
    wait_for_page(&tab, "/members", "Not open to @demo");

    // The simulation: demo subscribes on the devnet and is let in.
    assert_eq!(
        text(&tab, "form[action='/.steemgate/devnet/join'] button"),
        "Simulate: @demo subscribes to hive-100001"
    );
    click(&tab, "form[action='/.steemgate/devnet/join'] button");
    wait_for_page(&tab, "/members", "Hello @demo");
    let community = demo.rpc(
        "bridge.get_community",
        json!({"name": "hive-100001", "observer": "demo"}),
    );
    assert_eq!(
        community["context"]["subscribed"],
        json!(true),
        "{community}"
    );
    assert!(off_site_clicks(&tab).is_empty());
}
