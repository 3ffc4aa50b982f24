//! "Sign in with Steem" in a real browser (Debian's headless Chromium):
//! the example relying party `examples/oidc-rp/app.py` (authlib) against
//! the real gateway running `examples/oidc-rp/steemgate.yaml` (ports
//! rewritten) on a devnet producing blocks every 300 ms.
//!
//! Every step is what a person does: open the app, click its "Sign in with
//! Steem" link, land on the gateway's login page, type an account into its
//! devnet box and press "Simulate transfer", and be sent back to the app,
//! which then names the account; "Sign in with another account" (the app
//! asks with `prompt=login`: the gateway's own page asks before it ends the
//! session, and its button, a same-origin form, must work in a real
//! browser); then "Sign out" (RP-initiated logout ends the gateway session
//! too, so signing in again shows the login page again). Both ways the app
//! can be registered are run: with a secret, and as a public client (as
//! `steemgate demo` registers it). The gateway's pages on the way are
//! checked with axe-core (skipped without it, as in `browser_demo.rs`). The code-issuing redirect, the code exchange and the ID
//! token check all happen for real between the browser, the app and the
//! gateway.
//!
//! Skips with a notice without `chromium` or a python3 with authlib and
//! requests; fails then under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use headless_chrome::Tab;
use serde_json::{Value, json};
use support::browser::{
    Chromium, STEP, assert_accessible, axe_source, click, eval, location, retype, screenshot,
    wait_for,
};
use support::gateway::{Background, GatewayProcess, SECRET, get};
use support::{free_addr, oidc, wait_until};

const EXAMPLE_SECRET: &str = "example-rp-secret-change-me-0123456789";

/// A devnet producing a block every 300 ms (as `steemgate demo` does).
fn ticking_devnet() -> Background {
    Background::start(|listener, stop| async move {
        let devnet =
            steemgate::chain::devnet::Devnet::new(steemgate::chain::devnet::DevnetOptions {
                chain: steemgate::chain::ChainName::Steem,
                block_interval: Some(Duration::from_millis(300)),
                seed: false,
                start_block: 1000,
            });
        let _ = devnet
            .serve(listener, async move {
                let _ = stop.await;
            })
            .await;
    })
}

/// `examples/oidc-rp/app.py`, killed on drop.
struct ExampleRp {
    addr: SocketAddr,
    child: Option<Child>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ExampleRp {
    /// The app as `client_id`, with `secret` or (`None`) as a public client.
    fn start(
        python: &std::path::Path,
        addr: SocketAddr,
        issuer: &str,
        client_id: &str,
        secret: Option<&str>,
    ) -> Self {
        let mut command = Command::new(python);
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/oidc-rp/app.py"
            ))
            .args(["--issuer", issuer, "--client-id", client_id])
            .args(["--listen", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(secret) = secret {
            command.args(["--client-secret", secret]);
        }
        let mut child = command.spawn().expect("start the example relying party");
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut all = sink.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let mut rp = Self {
            addr,
            child: Some(child),
            log,
        };
        let up = wait_until(Duration::from_secs(20), || {
            support::child_exited(&mut rp.child).is_none()
                && std::net::TcpStream::connect(addr).is_ok()
        });
        assert!(up, "the example RP did not start:\n{}", rp.log());
        rp
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for ExampleRp {
    fn drop(&mut self) {
        support::stop_child(&mut self.child);
    }
}

/// The example's gateway config on this test's ports and devnet, plus a
/// public client like `steemgate demo`'s for the app at `public_rp`.
fn example_config(
    gateway: SocketAddr,
    admin: SocketAddr,
    devnet: SocketAddr,
    rp: SocketAddr,
    public_rp: SocketAddr,
    store: &std::path::Path,
) -> String {
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/oidc-rp/steemgate.yaml"
    ))
    .expect("read the example config");
    let replacements = [
        ("http://127.0.0.1:8091", format!("http://{devnet}")),
        ("127.0.0.1:8080", gateway.to_string()),
        ("127.0.0.1:9090", admin.to_string()),
        ("127.0.0.1:8090", rp.to_string()),
        (
            "file:data/oidc-example",
            format!("file:{}", store.display()),
        ),
        // The gateway under test never takes the secret from the environment.
        ("session:", format!("session:\n  secret: \"{SECRET}\"")),
    ];
    let mut config = example;
    for (from, to) in replacements {
        assert!(
            config.contains(from),
            "the example config no longer has {from}"
        );
        config = config.replace(from, &to);
    }
    let public_client = format!(
        "    - client_id: {PUBLIC_CLIENT}\n      redirect_uris: [\"http://{public_rp}/callback\"]\n      post_logout_redirect_uris: [\"http://{public_rp}/\"]\n"
    );
    let marker = "\n# steemgate needs at least one route";
    assert!(
        config.contains(marker),
        "the example config changed its layout"
    );
    config.replace(marker, &format!("{public_client}{marker}"))
}

/// The public client the test adds (the demo's `example-rp` is public too).
const PUBLIC_CLIENT: &str = "example-rp-public";

/// The tab's origin.
fn origin(tab: &Tab) -> String {
    eval(tab, "location.origin")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn body_text(tab: &Tab) -> String {
    eval(tab, "document.body ? document.body.innerText : ''")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the tab is on `origin` with an `<h1>` containing `heading`.
fn wait_for_heading(tab: &Tab, origin_url: &str, heading: &str, rp: &ExampleRp) {
    let check = format!(
        "location.origin === {} && !!document.querySelector('h1') && \
         document.querySelector('h1').textContent.includes({})",
        json!(origin_url),
        json!(heading)
    );
    assert!(
        wait_for(tab, &check, STEP),
        "expected {heading:?} on {origin_url}; the browser is at {}{} showing:\n{}\n--- RP log:\n{}",
        origin(tab),
        location(tab),
        body_text(tab),
        rp.log()
    );
}

/// Waits for the gateway's login page (with its simulation box ready).
fn wait_for_login_page(tab: &Tab, gateway: &str, rp: &ExampleRp) {
    let check = format!(
        "location.origin === {} && location.pathname === '/.steemgate/login' && \
         !!document.querySelector('form.sim button[type=submit]')",
        json!(gateway)
    );
    assert!(
        wait_for(tab, &check, STEP),
        "expected the gateway's login page; the browser is at {}{} showing:\n{}\n--- RP log:\n{}",
        origin(tab),
        location(tab),
        body_text(tab),
        rp.log()
    );
}

/// Opens the app, signs in as `account` through the gateway's login page
/// (Simulate transfer), checks what the app shows; with `switch_to`, signs
/// in with that other account through the app's prompt=login link (the
/// gateway's own page asks first); then signs out, and checks that signing
/// in again asks again (the gateway session ended). The gateway's pages are
/// checked with axe-core when it is installed.
fn sign_in_and_out(
    tab: &Tab,
    rp: &ExampleRp,
    issuer: &str,
    account: &str,
    switch_to: Option<&str>,
    axe: Option<&str>,
    shot: &str,
) {
    let rp_origin = rp.url("");
    tab.navigate_to(&rp.url("/"))
        .and_then(|t| t.wait_until_navigated())
        .expect("open the example app");
    wait_for_heading(tab, &rp_origin, "Example app", rp);
    assert_eq!(
        eval(tab, "document.getElementById('signin').textContent"),
        json!("Sign in with Steem")
    );

    // The link goes to the gateway's login page (through /authorize).
    click(tab, "#signin");
    wait_for_login_page(tab, issuer, rp);
    let rd = eval(tab, "new URLSearchParams(location.search).get('rd')");
    assert!(
        rd.as_str()
            .is_some_and(|rd| rd.starts_with(oidc::AUTHORIZE)),
        "the login page returns to {rd}, not to the authorization request"
    );
    assert_accessible(tab, axe, "login (for an OpenID client)");
    screenshot(tab, &format!("{shot}-login"));

    // Simulate transfer, as a person would.
    retype(tab, "#sim-from", account);
    click(tab, "form.sim button[type=submit]");

    // Back on the app, signed in.
    wait_for_heading(tab, &rp_origin, &format!("Signed in as @{account}"), rp);
    screenshot(tab, &format!("{shot}-signed-in"));
    let claims: Value = serde_json::from_str(
        eval(tab, "document.getElementById('claims').textContent")
            .as_str()
            .unwrap_or_default(),
    )
    .expect("the app shows the ID token's claims");
    assert_eq!(claims["sub"], json!(format!("steem:{account}")));
    assert_eq!(claims["chain"], json!("steem"));
    assert!(
        claims["amr"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("transfer"))),
        "{claims}"
    );

    if let Some(other) = switch_to {
        // "Sign in with another account": prompt=login. The gateway asks
        // on its own page before it ends the session; pressing its button
        // (a same-origin form, as browsers really send it) leads to the
        // login page, and back to the app as the other account.
        click(tab, "#switch");
        let asks = format!(
            "location.origin === {} && !!document.getElementById('reauth')",
            json!(issuer)
        );
        assert!(
            wait_for(tab, &asks, STEP),
            "no re-login page; the browser is at {}{} showing:\n{}",
            origin(tab),
            location(tab),
            body_text(tab)
        );
        assert_accessible(tab, axe, "log in again");
        screenshot(tab, &format!("{shot}-reauth"));
        click(tab, "#reauth");
        wait_for_login_page(tab, issuer, rp);
        retype(tab, "#sim-from", other);
        click(tab, "form.sim button[type=submit]");
        wait_for_heading(tab, &rp_origin, &format!("Signed in as @{other}"), rp);
    }

    // Sign out: the app forgets the visitor and sends them through the
    // gateway's end-session endpoint, which ends the gateway session too and
    // sends them back to the app (or asks on its own page first).
    click(tab, "a[href='/logout']");
    let back_or_gateway = format!(
        "(location.origin === {rp} && document.body.innerText.includes('not signed in')) || \
         location.origin === {gw}",
        rp = json!(rp_origin),
        gw = json!(issuer)
    );
    assert!(
        wait_for(tab, &back_or_gateway, STEP),
        "sign-out went to {}{}: {}",
        origin(tab),
        location(tab),
        body_text(tab)
    );
    if origin(tab) == issuer {
        screenshot(tab, &format!("{shot}-logout-page"));
        click(tab, "form button[type=submit]");
        wait_for_heading(tab, &rp_origin, "Example app", rp);
    }
    // The gateway session is gone: signing in again asks again.
    click(tab, "#signin");
    wait_for_login_page(tab, issuer, rp);
}

#[test]
fn sign_in_with_steem_from_the_example_app_in_a_real_browser() {
    let Some(python) = oidc::python_with(&["authlib", "requests"]) else {
        return;
    };
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let devnet = ticking_devnet();
    let dir = tempfile::tempdir().expect("scratch dir");
    let (gateway_addr, admin_addr) = (free_addr(), free_addr());
    let (rp_addr, public_rp_addr) = (free_addr(), free_addr());
    let config = example_config(
        gateway_addr,
        admin_addr,
        devnet.addr,
        rp_addr,
        public_rp_addr,
        &dir.path().join("store"),
    );
    let gateway = GatewayProcess::start(&config, dir.path(), gateway_addr, admin_addr);
    assert_eq!(
        gateway.addr, gateway_addr,
        "the gateway moved ports after a clash; the example's issuer is stale"
    );
    assert!(
        wait_until(Duration::from_secs(20), || get(
            gateway.admin,
            "/ready",
            &[]
        )
        .status
            == 200),
        "the gateway never became ready:\n{}",
        gateway.log()
    );
    let issuer = format!("http://{gateway_addr}");
    let tab = chromium.tab();
    let axe = axe_source();

    // The example as the config registers it: a confidential client; then
    // "Sign in with another account".
    let rp = ExampleRp::start(
        &python,
        rp_addr,
        &issuer,
        "example-rp",
        Some(EXAMPLE_SECRET),
    );
    sign_in_and_out(
        &tab,
        &rp,
        &issuer,
        "demo",
        Some("bob"),
        axe.as_deref(),
        "oidc-confidential",
    );

    // The example as `steemgate demo` registers it: a public client (PKCE).
    let public = ExampleRp::start(&python, public_rp_addr, &issuer, PUBLIC_CLIENT, None);
    sign_in_and_out(
        &tab,
        &public,
        &issuer,
        "alice",
        None,
        axe.as_deref(),
        "oidc-public",
    );
    assert!(
        gateway
            .log()
            .contains("client=example-rp-public account=alice"),
        "no tokens issued to the public client:\n{}",
        gateway.log()
    );
}
