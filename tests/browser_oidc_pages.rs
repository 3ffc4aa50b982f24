//! The gateway's own OpenID pages, clicked in a real browser (Debian's
//! headless Chromium) as a person would: the policy refusal's "Check again",
//! "Back to …" and the devnet's "Simulate: subscribes", the re-login page's "Back to …", and the logout
//! confirmation's "Stay logged in" and "Log out". The relying party is a
//! plain loopback web server the browser lands on.
//!
//! Why a browser: the confirmation's form answers with a redirect to the
//! relying party, and browsers apply the page's CSP `form-action` to that
//! redirect; an HTTP client does not, so only a browser shows whether the
//! visitor really gets back to the app. (The example relying party's full
//! sign-in and sign-out, and the re-login button, are in
//! `browser_oidc.rs`.)

mod support;

use std::time::Duration;

use headless_chrome::Tab;
use serde_json::json;
use support::browser::{
    Chromium, STEP, assert_accessible, axe_source, click, eval, retype, screenshot, wait_for,
};
use support::gateway::{Stack, echo_upstream};

const SECRET: &str = "pages-secret-0123456789";

fn href(tab: &Tab) -> String {
    eval(tab, "location.href")
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Logs the browser in as `account` on the login page's devnet form.
/// Waits until the tab's address starts with `prefix`.
fn arrives_at(tab: &Tab, prefix: &str) -> bool {
    wait_for(
        tab,
        &format!("location.href.startsWith({})", json!(prefix)),
        STEP,
    )
}

fn log_in(tab: &Tab, stack: &Stack, account: &str) {
    tab.navigate_to(&format!("http://{}/.steemgate/login", stack.addr()))
        .unwrap();
    tab.wait_until_navigated().unwrap();
    retype(tab, "#sim-from", account);
    click(tab, "form.sim button[type=submit]");
    // The devnet needs a block for the transfer.
    let devnet = &stack.devnet;
    assert!(
        support::wait_until(STEP, || {
            devnet.produce_block(None);
            std::thread::sleep(Duration::from_millis(300));
            eval(tab, "location.pathname").as_str() != Some("/.steemgate/login")
        }),
        "never logged in as {account}: {}",
        href(tab)
    );
}

#[test]
fn the_openid_pages_take_the_visitor_where_their_controls_say() {
    let Some(chromium) = Chromium::launch() else {
        return;
    };
    let axe = axe_source();
    let rp = echo_upstream();
    let rp_origin = format!("http://{}", rp.addr);
    let addr = support::free_addr();
    let section = format!(
        r#"policies:
  members: {{community: hive-100001}}
oidc:
  issuer: "http://{addr}"
  clients:
    - client_id: app
      client_secret: "{SECRET}"
      name: The App
      redirect_uris: ["{rp_origin}/cb"]
      post_logout_redirect_uris: ["{rp_origin}/bye"]
    - client_id: club
      client_secret: "{SECRET}"
      name: The Club
      redirect_uris: ["{rp_origin}/cb"]
      policy: members
routes:"#
    );
    let stack =
        Stack::start_on_seeded_at(addr, move |config| config.replacen("routes:", &section, 1));
    let gateway = format!("http://{}", stack.addr());
    let authorize = |client: &str, extra: &str| {
        format!(
            "{gateway}/.steemgate/oidc/authorize?client_id={client}&redirect_uri={}%2Fcb&response_type=code&scope=openid&state=s-1{extra}",
            url::form_urlencoded::byte_serialize(rp_origin.as_bytes()).collect::<String>()
        )
    };
    let tab = chromium.tab();
    log_in(&tab, &stack, "demo");

    // The policy refusal: "Check again" reloads it; "Back to The Club"
    // takes the visitor to the app with access_denied.
    tab.navigate_to(&authorize("club", "")).unwrap();
    assert!(
        wait_for(&tab, "!!document.getElementById('back-to-client')", STEP),
        "{}",
        href(&tab)
    );
    assert_accessible(&tab, axe.as_deref(), "OpenID policy refusal");
    screenshot(&tab, "oidc-policy-denied");
    click(&tab, "a.button[href^='/.steemgate/oidc/authorize']");
    assert!(wait_for(
        &tab,
        "!!document.getElementById('back-to-client')",
        STEP
    ));
    click(&tab, "#back-to-client");
    let prefix = format!("{rp_origin}/cb?");
    assert!(arrives_at(&tab, &prefix), "{}", href(&tab));
    let landed = url::Url::parse(&href(&tab)).unwrap();
    let params: Vec<(String, String)> = landed.query_pairs().into_owned().collect();
    assert!(
        params.contains(&("error".into(), "access_denied".into())),
        "{params:?}"
    );
    assert!(
        params.contains(&("state".into(), "s-1".into())),
        "{params:?}"
    );
    // The devnet's "Simulate: @demo subscribes" form on the same page: the
    // subscription counts at once, and its answer's redirects end at the
    // app with a code (the page's form-action allows the app's origin).
    tab.navigate_to(&authorize("club", "")).unwrap();
    assert!(wait_for(
        &tab,
        "!!document.getElementById('back-to-client')",
        STEP
    ));
    click(&tab, "form.sim button[type=submit]");
    assert!(
        arrives_at(&tab, &format!("{prefix}code=")),
        "the subscription did not lead back to the app: {}",
        href(&tab)
    );

    // The re-login page: "Back to The App" returns login_required and
    // leaves the session alone.
    tab.navigate_to(&authorize("app", "&prompt=login")).unwrap();
    assert!(
        wait_for(&tab, "!!document.getElementById('reauth-cancel')", STEP),
        "{}",
        href(&tab)
    );
    assert_accessible(&tab, axe.as_deref(), "OpenID re-login page");
    screenshot(&tab, "oidc-reauth");
    click(&tab, "#reauth-cancel");
    assert!(arrives_at(&tab, &prefix));
    assert!(
        href(&tab).contains("error=login_required"),
        "{}",
        href(&tab)
    );
    // Still logged in: the app gets a code at once.
    tab.navigate_to(&authorize("app", "")).unwrap();
    assert!(
        arrives_at(&tab, &format!("{prefix}code=")),
        "{}",
        href(&tab)
    );

    // The logout confirmation: "Stay logged in" keeps the session; "Log
    // out" ends it and lands on the app's registered page, through the
    // page's CSP form-action.
    let logout = format!(
        "{gateway}/.steemgate/oidc/logout?client_id=app&post_logout_redirect_uri={}%2Fbye&state=s9",
        url::form_urlencoded::byte_serialize(rp_origin.as_bytes()).collect::<String>()
    );
    tab.navigate_to(&logout).unwrap();
    assert!(
        wait_for(&tab, "!!document.getElementById('confirm-logout')", STEP),
        "{}",
        href(&tab)
    );
    assert_accessible(&tab, axe.as_deref(), "OpenID logout confirmation");
    screenshot(&tab, "oidc-logout-confirm");
    click(&tab, "a.button.secondary[href='/']");
    assert!(wait_for(&tab, "location.pathname === '/'", STEP));
    tab.navigate_to(&logout).unwrap();
    assert!(wait_for(
        &tab,
        "!!document.getElementById('confirm-logout')",
        STEP
    ));
    click(&tab, "#confirm-logout");
    let bye = format!("{rp_origin}/bye?state=s9");
    assert!(
        wait_for(&tab, &format!("location.href === {}", json!(bye)), STEP),
        "the browser did not reach the app after logging out: {}",
        href(&tab)
    );
    // Logged out: the app's next sign-in goes to the login page.
    tab.navigate_to(&authorize("app", "")).unwrap();
    assert!(
        wait_for(&tab, "location.pathname === '/.steemgate/login'", STEP),
        "{}",
        href(&tab)
    );
}
