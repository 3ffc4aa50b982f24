//! Headless Chromium for the browser tests (`tests/browser.rs`,
//! `tests/browser_wallet.rs`): launch, evaluate, wait, and record the
//! requests a tab makes.
//!
//! Why shared: both files drive the same login page through the DevTools
//! protocol and need the same launch flags, the same bounded polling and the
//! same "nothing but the gateway was contacted" check.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::protocol::cdp::{Network, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};

use super::gateway::Stack;

/// Longest any single browser step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// A headless Chromium with a fresh profile; both go away on drop.
pub struct Chromium {
    browser: Browser,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// `None` (after a skip notice) when `chromium` is not installed.
    pub fn launch() -> Option<Self> {
        let path = super::system_binary("chromium")?;
        let profile = tempfile::tempdir().unwrap();
        let args: Vec<&OsStr> = [
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
        ]
        .iter()
        .map(OsStr::new)
        .collect();
        let options = LaunchOptions {
            path: Some(path),
            headless: true,
            sandbox: false,
            user_data_dir: Some(profile.path().to_path_buf()),
            window_size: Some((1280, 900)),
            idle_browser_timeout: Duration::from_secs(300),
            args,
            ..LaunchOptions::default()
        };
        let browser = Browser::new(options).expect("launch chromium");
        Some(Self {
            browser,
            _profile: profile,
        })
    }

    pub fn tab(&self) -> Arc<Tab> {
        let tab = self.browser.new_tab().expect("new tab");
        tab.set_default_timeout(STEP);
        tab
    }
}

/// Runs `source` in every document the tab loads, before the page's scripts.
pub fn inject_on_new_document(tab: &Tab, source: &str) {
    tab.call_method(Page::AddScriptToEvaluateOnNewDocument {
        source: source.to_string(),
        world_name: None,
        include_command_line_api: None,
        run_immediately: None,
    })
    .expect("inject a script on new documents");
}

/// Evaluates `expression` (awaiting a promise) and returns its JSON value.
pub fn eval(tab: &Tab, expression: &str) -> Value {
    tab.evaluate(expression, true)
        .unwrap_or_else(|e| panic!("evaluate {expression}: {e}"))
        .value
        .unwrap_or(Value::Null)
}

/// Polls `expression` until it is `true` (navigations in between are fine).
pub fn wait_for(tab: &Tab, expression: &str, timeout: Duration) -> bool {
    super::wait_until(timeout, || {
        tab.evaluate(expression, false)
            .ok()
            .and_then(|o| o.value)
            .is_some_and(|v| v == json!(true))
    })
}

/// The tab's path and query.
pub fn location(tab: &Tab) -> String {
    eval(tab, "location.pathname + location.search")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Records the URL of every request the tab makes.
pub fn record_requests(tab: &Tab) -> Arc<Mutex<Vec<String>>> {
    let urls = Arc::new(Mutex::new(Vec::new()));
    let sink = urls.clone();
    tab.add_event_listener(Arc::new(
        move |event: &headless_chrome::protocol::cdp::types::Event| {
            if let headless_chrome::protocol::cdp::types::Event::NetworkRequestWillBeSent(sent) =
                event
            {
                sink.lock().unwrap().push(sent.params.request.url.clone());
            }
        },
    ))
    .expect("listen to network events");
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .expect("Network.enable");
    urls
}

/// Every recorded request went to the gateway of `stack` (and there was one).
pub fn assert_only_loopback(urls: &Mutex<Vec<String>>, stack: &Stack) {
    let urls = urls.lock().unwrap();
    assert!(!urls.is_empty(), "no request was recorded");
    let ours = format!("http://{}/", stack.addr());
    for url in urls.iter() {
        assert!(
            url.starts_with(&ours),
            "the page requested {url}, not the gateway {ours}"
        );
    }
}

/// The echo upstream's answer as the browser shows it.
pub fn echoed(tab: &Tab) -> Value {
    let text = eval(tab, "document.body.innerText");
    serde_json::from_str(text.as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the upstream page is not the echo JSON ({e}): {text}"))
}
