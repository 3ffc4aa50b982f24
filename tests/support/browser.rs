//! Headless Chromium for the browser tests (`tests/browser.rs`,
//! `tests/browser_wallet.rs`, `tests/browser_demo.rs`): launch, evaluate,
//! wait, record the requests a tab makes, stop links from leaving the
//! machine, and check a page with axe-core.
//!
//! Why shared: the files drive the same pages through the DevTools protocol
//! and need the same launch flags, the same bounded polling and the same
//! "nothing but the gateway was contacted" check.

use std::ffi::OsStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headless_chrome::browser::tab::ModifierKey;
use headless_chrome::protocol::cdp::{Browser, Emulation, Network, Page};
use headless_chrome::{LaunchOptions, Tab};
use serde_json::{Value, json};

use super::gateway::Stack;

/// Longest any single browser step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// A headless Chromium with a fresh profile; both go away on drop.
pub struct Chromium {
    browser: headless_chrome::Browser,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// `None` (after a skip notice) when `chromium` is not installed.
    pub fn launch() -> Option<Self> {
        Self::launch_with(&[])
    }

    /// [`Chromium::launch`] with more command-line flags.
    pub fn launch_with(extra: &[&str]) -> Option<Self> {
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
            // Tests never reach the internet: every name but the loopback
            // address resolves to nothing, whatever a page links to.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ]
        .iter()
        .chain(extra)
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
        let browser = headless_chrome::Browser::new(options).expect("launch chromium");
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
    enable_network_events(tab);
    urls
}

/// Turns on the tab's network events, for listeners added with
/// `add_event_listener`.
pub fn enable_network_events(tab: &Tab) {
    tab.call_method(Network::Enable {
        max_total_buffer_size: None,
        max_resource_buffer_size: None,
        max_post_data_size: None,
        report_direct_socket_traffic: None,
        enable_durable_messages: None,
    })
    .expect("Network.enable");
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

/// Where `scripts/browser-deps.sh` installs axe-core (pinned in
/// `tests/browser-deps/package-lock.json`).
pub const AXE_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser-deps/node_modules/axe-core/axe.min.js"
);

/// The axe-core source, or `None` after a skip notice when it is not
/// installed. Panics instead under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1` (CI).
pub fn axe_source() -> Option<String> {
    match std::fs::read_to_string(AXE_PATH) {
        Ok(source) => Some(source),
        Err(e) => {
            if std::env::var(super::REQUIRE_ENV).as_deref() == Ok("1") {
                panic!(
                    "axe-core is required ({}=1) but {AXE_PATH} cannot be read ({e}): \
                     run scripts/browser-deps.sh",
                    super::REQUIRE_ENV
                );
            }
            eprintln!(
                "SKIPPED: axe-core not installed ({AXE_PATH}); run scripts/browser-deps.sh \
                 to check the pages' accessibility"
            );
            None
        }
    }
}

/// The `serious` and `critical` axe-core violations on the tab's page, in
/// the light and the dark colour scheme: `["scheme rule: help @ targets", …]`.
/// Empty when there are none.
pub fn axe_serious_violations(tab: &Tab, axe: &str) -> Vec<String> {
    let mut found = Vec::new();
    for scheme in ["light", "dark"] {
        emulate_color_scheme(tab, scheme);
        // Injected by the DevTools protocol (not a page script), so the
        // page's CSP stays as strict as it is for visitors.
        eval(tab, &format!("{axe}\n;true"));
        let result = eval(
            tab,
            "axe.run(document, {resultTypes: ['violations']}).then(function (r) {
               return JSON.stringify(r.violations
                 .filter(function (v) { return v.impact === 'serious' || v.impact === 'critical'; })
                 .map(function (v) {
                   return v.impact + ' ' + v.id + ': ' + v.help + ' @ ' +
                     v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');
                 }));
             })",
        );
        let list: Vec<String> = serde_json::from_str(result.as_str().unwrap_or("null"))
            .unwrap_or_else(|e| panic!("axe-core gave no result ({e}): {result}"));
        found.extend(list.into_iter().map(|v| format!("{scheme} {v}")));
    }
    emulate_color_scheme(tab, "light");
    found
}

/// Asserts no `serious` or `critical` axe-core violation on the tab's page
/// (`what` names the page in the failure); does nothing without axe-core.
pub fn assert_accessible(tab: &Tab, axe: Option<&str>, what: &str) {
    let Some(axe) = axe else {
        return;
    };
    let violations = axe_serious_violations(tab, axe);
    assert!(
        violations.is_empty(),
        "the {what} page ({}) has serious or critical accessibility violations:\n{}",
        location(tab),
        violations.join("\n")
    );
}

/// Emulates `prefers-color-scheme: scheme` (`light` or `dark`).
pub fn emulate_color_scheme(tab: &Tab, scheme: &str) {
    tab.call_method(Emulation::SetEmulatedMedia {
        media: None,
        features: Some(vec![Emulation::MediaFeature {
            name: "prefers-color-scheme".into(),
            value: scheme.into(),
        }]),
    })
    .expect("set the colour scheme");
}

/// Makes every link to another origin inert in the tab's documents: a
/// click on one is recorded in `window.__offSiteClicks` (its `href`) and its
/// navigation cancelled, so a test can click a wallet or profile link as a
/// visitor would and see where it would have gone, without leaving the
/// machine. Installed before the page's scripts; listens in the capture
/// phase on the window, ahead of any page handler.
pub fn intercept_off_site_links(tab: &Tab) {
    inject_on_new_document(
        tab,
        r#"
window.__offSiteClicks = [];
window.addEventListener("click", function (event) {
  var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
  if (link && link.origin !== location.origin) {
    window.__offSiteClicks.push(link.href);
    event.preventDefault();
  }
}, true);
"#,
    );
}

/// The off-site links clicked in the current document (see
/// [`intercept_off_site_links`]).
pub fn off_site_clicks(tab: &Tab) -> Vec<String> {
    let clicks = eval(tab, "JSON.stringify(window.__offSiteClicks)");
    serde_json::from_str(clicks.as_str().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("no off-site click record ({e}): {clicks}"))
}

/// Lets pages of `origin` read and write the clipboard without a prompt.
pub fn grant_clipboard(tab: &Tab, origin: &str) {
    tab.call_method(Browser::GrantPermissions {
        permissions: vec![
            Browser::PermissionType::ClipboardReadWrite,
            Browser::PermissionType::ClipboardSanitizedWrite,
        ],
        origin: Some(origin.to_string()),
        browser_context_id: None,
    })
    .expect("grant clipboard permissions");
}

/// The tab's cookie named `name` for its current URL, if any.
pub fn cookie(tab: &Tab, name: &str) -> Option<String> {
    tab.get_cookies()
        .expect("read the cookies")
        .into_iter()
        .find(|c| c.name == name)
        .map(|c| c.value)
}

/// Clicks `selector` (the element's centre, as a mouse would).
pub fn click(tab: &Tab, selector: &str) {
    tab.wait_for_element(selector)
        .unwrap_or_else(|e| panic!("no {selector} on {}: {e}", location(tab)))
        .click()
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

/// Replaces the text of the input `selector` as a person would: click it,
/// select all with Ctrl+A, type `text`.
pub fn retype(tab: &Tab, selector: &str, text: &str) {
    click(tab, selector);
    tab.press_key_with_modifiers("a", Some(&[ModifierKey::Ctrl]))
        .expect("Ctrl+A");
    tab.type_str(text).expect("type");
}

/// Writes a PNG of the tab's viewport to
/// `$CARGO_TARGET_TMPDIR/screenshots/NAME.png` (not committed: for looking).
pub fn screenshot(tab: &Tab, name: &str) {
    let out = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&out).expect("screenshot dir");
    let png = tab
        .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    std::fs::write(out.join(format!("{name}.png")), png).expect("write the screenshot");
}
