//! Access policies end to end: the real gateway process, its chain the
//! seeded devnet (community hive-100001: alice admin, bob mod, carol a
//! subscribed member, demo outside) behind a proxy that can break the
//! `bridge.*` calls on demand. Checks the 403 (JSON and page), optional
//! routes, forward auth `?policy=`, the assertion's `policies` claim, the
//! identity header, freshness after the ttl and after logout, and failing
//! closed: an unknown community, a node failing with and without a
//! decision young enough to serve, and the metrics of it all.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use support::gateway::{Background, Stack, get, post, upstream_saw};

const POLICIES: &str = r#"policies:
  members: {community: hive-100001}
  staff: {community: {name: hive-100001, role: mod}}
  ghosts: {community: hive-199999}
  unused: {accounts: [alice]}
  friends: {followed_by: alice}
  clean: {not: {muted_by: bob}}
policy_cache: {ttl: 1s, max_stale: MAX_STALE}
routes:
  - {path: /friends, upstream: "http://UPSTREAM", auth: required, policy: friends}
  - {path: /clean, upstream: "http://UPSTREAM", auth: required, policy: clean}
  - {path: /club, upstream: "http://UPSTREAM", auth: required, policy: members}
  - {path: /staff, upstream: "http://UPSTREAM", auth: required, policy: [members, staff]}
  - {path: /feed, upstream: "http://UPSTREAM", auth: optional, policy: members}
  - {path: /ghost, upstream: "http://UPSTREAM", auth: required, policy: ghosts}
  - {path: /signed, upstream: "http://UPSTREAM", auth: required, policy: members, assertion: true}
"#;

/// A node proxy in front of the devnet: forwards every call, except that
/// while `broken` is set, `bridge.*` calls get an HTML 502 (a dead hivemind
/// behind a load balancer) while blocks still flow.
struct BreakableNode {
    server: Background,
    broken: Arc<AtomicBool>,
}

impl BreakableNode {
    fn start(target: String) -> Self {
        let broken = Arc::new(AtomicBool::new(false));
        let flag = broken.clone();
        let server = Background::start(move |listener, stop| async move {
            // reqwest is built without a default TLS provider (plain HTTP here).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::new();
            let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
                let client = client.clone();
                let target = target.clone();
                let flag = flag.clone();
                async move {
                    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let bridge = request["method"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("bridge."));
                    if bridge && flag.load(Ordering::SeqCst) {
                        return (
                            axum::http::StatusCode::BAD_GATEWAY,
                            "<html><body>502 Bad Gateway</body></html>".to_string(),
                        );
                    }
                    let answer = client
                        .post(&target)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(response) => (
                            axum::http::StatusCode::OK,
                            response.text().await.unwrap_or_default(),
                        ),
                        Err(e) => (axum::http::StatusCode::BAD_GATEWAY, e.to_string()),
                    }
                }
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .await;
        });
        Self { server, broken }
    }

    fn set_broken(&self, broken: bool) {
        self.broken.store(broken, Ordering::SeqCst);
    }
}

/// The seeded stack with the policies above, its node behind a
/// [`BreakableNode`].
fn start(max_stale: &str) -> (Stack, BreakableNode) {
    let mut node = None;
    let stack = Stack::start_seeded_with(|config| {
        let devnet = config
            .lines()
            .find_map(|l| l.trim().strip_prefix("nodes: [\"")?.strip_suffix("\"]"))
            .expect("the devnet URL in the test config")
            .to_string();
        let upstream = config
            .lines()
            .find_map(|l| {
                l.split("upstream: \"http://")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(str::to_string)
            })
            .expect("the upstream address");
        let breakable = BreakableNode::start(devnet.clone());
        let config = config.replace(&devnet, &format!("http://{}", breakable.server.addr));
        node = Some(breakable);
        let extra = POLICIES
            .replace("UPSTREAM", &upstream)
            .replace("MAX_STALE", max_stale);
        // `policies:` and `policy_cache:` before the test config's routes,
        // the policy routes first in its list.
        config.replace("routes:\n", &extra)
    });
    (stack, node.expect("node proxy started"))
}

fn json_get(stack: &Stack, path: &str, cookie: &str, extra: &[&str]) -> (u16, Value) {
    let header = format!("Cookie: {cookie}");
    let mut headers = vec!["Accept: application/json", header.as_str()];
    headers.extend_from_slice(extra);
    let response = get(stack.addr(), path, &headers);
    let body = serde_json::from_str(&response.body).unwrap_or(Value::String(response.body.clone()));
    (response.status, body)
}

fn metrics(stack: &Stack) -> String {
    get(stack.gateway.admin, "/metrics", &[]).body
}

/// The value of the metric line starting with `name{` that has every label.
fn labelled(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn members_pass_others_get_a_403_that_says_why_and_optional_routes_go_anonymous() {
    let (stack, _node) = start("1h");
    assert!(
        stack
            .gateway
            .log()
            .contains("policies.unused: no route or OpenID client uses this policy"),
        "the unused policy is warned about at start:\n{}",
        stack.gateway.log()
    );
    let carol = stack.login_as("carol");
    let demo = stack.login_as("demo");

    // carol is a subscribed member: proxied with exactly her identity, whatever she sends.
    let (status, echo) = json_get(&stack, "/club", &carol, &["X-Steem-Account: alice"]);
    assert_eq!(status, 200, "{echo}");
    assert_eq!(upstream_saw(&echo, "x-steem-account"), vec!["carol"]);

    // demo is not subscribed: 403 JSON naming the policy and the condition.
    let (status, refusal) = json_get(&stack, "/club", &demo, &[]);
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["error"], "policy");
    assert_eq!(refusal["policy"], "members");
    assert_eq!(refusal["account"], "demo");
    assert_eq!(refusal["failed"][0]["condition"], "community");
    assert_eq!(refusal["failed"][0]["have"], "not subscribed");
    assert_eq!(
        refusal["failed"][0]["need"],
        json!({"community": "hive-100001", "subscribed": true})
    );

    // A browser gets the page: what failed, in words, and a logout form.
    let page = get(
        stack.addr(),
        "/club/area?x=1",
        &["Accept: text/html", &format!("Cookie: {demo}")],
    );
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Not open to @demo"), "{}", page.body);
    assert!(
        page.body.contains("@demo is not subscribed"),
        "{}",
        page.body
    );
    assert!(page.body.contains("hive-100001"));
    assert!(page.body.contains("action=\"/.steemgate/logout\""));
    // "Check again" returns here (minijinja escapes `/` in attributes).
    assert!(
        page.body.contains("href=\"&#x2f;club&#x2f;area?x=1\""),
        "{}",
        page.body
    );
    // The test gateway follows the devnet: the page offers the simulation.
    assert!(page.body.contains("action=\"/.steemgate/devnet/join\""));

    // Optional route: the member with identity, the others without.
    let (_, echo) = json_get(&stack, "/feed", &carol, &[]);
    assert_eq!(upstream_saw(&echo, "x-steem-account"), vec!["carol"]);
    let (status, echo) = json_get(&stack, "/feed", &demo, &["X-Steem-Account: demo"]);
    assert_eq!(status, 200);
    assert!(upstream_saw(&echo, "x-steem-account").is_empty(), "{echo}");

    // A list of policies: all must hold. carol is a member, not staff.
    let (status, refusal) = json_get(&stack, "/staff", &carol, &[]);
    assert_eq!(status, 403);
    assert_eq!(refusal["policy"], "staff");
    assert_eq!(refusal["failed"][0]["have"], json!({"role": "member"}));
    let bob = stack.login_as("bob");
    let (status, echo) = json_get(&stack, "/staff", &bob, &[]);
    assert_eq!(status, 200, "bob is a mod: {echo}");

    // Anonymous visitors log in first, as on any required route.
    let anonymous = get(stack.addr(), "/club", &["Accept: text/html"]);
    assert_eq!(anonymous.status, 302);
    assert!(
        anonymous
            .header("location")
            .unwrap()
            .starts_with("/.steemgate/login")
    );

    let m = metrics(&stack);
    assert!(
        labelled(
            &m,
            "steemgate_policy_decisions_total",
            &["policy=\"members\"", "outcome=\"pass\""]
        ) >= 2.0,
        "{m}"
    );
    assert!(
        labelled(
            &m,
            "steemgate_policy_decisions_total",
            &["policy=\"members\"", "outcome=\"fail\""]
        ) >= 1.0
    );
    assert!(
        labelled(
            &m,
            "steemgate_policy_chain_reads_total",
            &["policy=\"members\""]
        ) >= 3.0
    );
    assert!(m.contains("steemgate_policy_evaluation_seconds_bucket"));
}

#[test]
fn forward_auth_evaluates_named_policies() {
    let (stack, _node) = start("1h");
    let carol = stack.login_as("carol");
    let demo = stack.login_as("demo");
    let auth = |path: &str, cookie: &str| get(stack.addr(), path, &[&format!("Cookie: {cookie}")]);
    let ok = auth("/.steemgate/auth?policy=members", &carol);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers_named("x-steem-account"), vec!["carol"]);
    let refused = auth("/.steemgate/auth?policy=members", &demo);
    assert_eq!(refused.status, 403);
    assert!(refused.headers_named("x-steem-account").is_empty());
    assert_eq!(refused.json()["failed"][0]["condition"], "community");
    assert_eq!(
        auth("/.steemgate/auth?policy=members,staff", &carol).status,
        403
    );
    assert_eq!(auth("/.steemgate/auth?policy=nonesuch", &carol).status, 400);
    assert_eq!(auth("/.steemgate/auth?policy=ghosts", &carol).status, 503);
    assert_eq!(
        get(stack.addr(), "/.steemgate/auth?policy=members", &[]).status,
        401
    );
    // Without `policy`, forward auth is what it was: any logged-in account.
    assert_eq!(auth("/.steemgate/auth", &demo).status, 200);

    // The status document reports policies without refusing anything.
    let (status, document) = json_get(
        &stack,
        "/.steemgate/status?policy=members,staff,nonesuch,ghosts",
        &carol,
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(document["account"], "carol");
    assert_eq!(document["policies"]["members"], json!({"pass": true}));
    assert_eq!(document["policies"]["staff"]["pass"], json!(false));
    assert_eq!(
        document["policies"]["staff"]["failed"][0]["condition"],
        "community"
    );
    assert_eq!(document["policies"]["nonesuch"], json!({"unknown": true}));
    assert_eq!(document["policies"]["ghosts"], json!({"undecidable": true}));
}

#[test]
fn the_assertion_names_the_policies_the_visitor_satisfied() {
    use base64::Engine;
    let (stack, _node) = start("1h");
    let carol = stack.login_as("carol");
    let (status, echo) = json_get(&stack, "/signed", &carol, &[]);
    assert_eq!(status, 200, "{echo}");
    let token = upstream_saw(&echo, "x-steem-assertion");
    assert_eq!(token.len(), 1, "{echo}");
    let payload = token[0].split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["policies"], json!(["members"]));
}

#[test]
fn joining_counts_after_the_ttl_and_at_once_after_logging_out_and_in() {
    let (stack, _node) = start("1h");
    let demo = stack.login_as("demo");
    assert_eq!(json_get(&stack, "/club", &demo, &[]).0, 403);
    stack.devnet.rpc(
        "devnet.subscribe",
        json!({"account": "demo", "community": "hive-100001"}),
    );
    // The decision is cached for the ttl (1 s), then read again.
    assert!(
        support::wait_until(Duration::from_secs(10), || json_get(
            &stack,
            "/club",
            &demo,
            &[]
        )
        .0 == 200),
        "demo never got in after subscribing"
    );
    stack.devnet.rpc(
        "devnet.unsubscribe",
        json!({"account": "demo", "community": "hive-100001"}),
    );
    // Logging out drops the decision: a new login is checked afresh at once.
    let logout = post(
        stack.addr(),
        "/.steemgate/logout",
        &[&format!("Cookie: {demo}"), "Accept: application/json"],
        "",
    );
    assert_eq!(logout.status, 200, "{}", logout.body);
    let again = stack.login_as("demo");
    assert_eq!(json_get(&stack, "/club", &again, &[]).0, 403);
}

#[test]
fn an_unknown_community_fails_closed() {
    let (stack, _node) = start("1h");
    let carol = stack.login_as("carol");
    let (status, body) = json_get(&stack, "/ghost", &carol, &[]);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "policy_unavailable");
    let page = get(
        stack.addr(),
        "/ghost",
        &["Accept: text/html", &format!("Cookie: {carol}")],
    );
    assert_eq!(page.status, 503);
    assert!(page.body.contains("decided by the chain"), "{}", page.body);
}

#[test]
fn a_failing_node_serves_a_recent_decision_and_fails_closed_without_one() {
    let (stack, node) = start("1h");
    let carol = stack.login_as("carol");
    let bob = stack.login_as("bob");
    assert_eq!(json_get(&stack, "/club", &carol, &[]).0, 200);
    node.set_broken(true);
    // Past the ttl: carol's last decision (younger than max_stale) serves.
    std::thread::sleep(Duration::from_millis(1500));
    let (status, echo) = json_get(&stack, "/club", &carol, &[]);
    assert_eq!(status, 200, "{echo}");
    assert_eq!(upstream_saw(&echo, "x-steem-account"), vec!["carol"]);
    // bob has no decision yet: 503, never a 200 and never a 403.
    let (status, body) = json_get(&stack, "/club", &bob, &[]);
    assert_eq!(status, 503, "{body}");
    // On the optional route he goes anonymous.
    let (status, echo) = json_get(&stack, "/feed", &bob, &[]);
    assert_eq!(status, 200);
    assert!(upstream_saw(&echo, "x-steem-account").is_empty());
    let m = metrics(&stack);
    assert!(
        labelled(
            &m,
            "steemgate_policy_decisions_total",
            &["outcome=\"stale\""]
        ) >= 1.0,
        "{m}"
    );
    assert!(
        labelled(
            &m,
            "steemgate_policy_decisions_total",
            &["outcome=\"undecidable\""]
        ) >= 1.0
    );
    // The node recovers: after the failure back-off (at most the ttl) bob
    // is decided and let in.
    node.set_broken(false);
    assert!(
        support::wait_until(Duration::from_secs(10), || json_get(
            &stack,
            "/club",
            &bob,
            &[]
        )
        .0 == 200),
        "bob never got in after the node recovered"
    );
}

#[test]
fn without_a_stale_allowance_a_failing_node_closes_the_route_after_the_ttl() {
    let (stack, node) = start("1s");
    let carol = stack.login_as("carol");
    assert_eq!(json_get(&stack, "/club", &carol, &[]).0, 200);
    node.set_broken(true);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(json_get(&stack, "/club", &carol, &[]).0, 503);
}

#[test]
fn a_reload_that_changes_a_policy_drops_its_cached_decisions() {
    let (stack, _node) = start("1h");
    assert!(
        support::wait_until(Duration::from_secs(10), || stack
            .gateway
            .log()
            .contains(steemgate::reload::READY_MESSAGE)),
        "reload handler never installed"
    );
    let demo = stack.login_as("demo");
    assert_eq!(json_get(&stack, "/club", &demo, &[]).0, 403);
    // The ttl is 1 s; a reload must not wait for it (nor for max_stale).
    let path = &stack.gateway.config_path;
    let original = std::fs::read_to_string(path).unwrap();
    let changed = original.replace(
        "  members: {community: hive-100001}",
        "  members: {accounts: [demo]}",
    );
    assert_ne!(changed, original);
    std::fs::write(path, changed).unwrap();
    stack.reload_and_wait_for("config reloaded");
    let (status, echo) = json_get(&stack, "/club", &demo, &[]);
    assert_eq!(status, 200, "{echo}");
    assert_eq!(upstream_saw(&echo, "x-steem-account"), vec!["demo"]);
}

/// Follows and mutes on the Steem devnet (read with `bridge.get_profile`
/// and an observer): alice follows demo (not newbie), bob mutes carol; an unfollow on
/// chain counts after the ttl.
#[test]
fn follows_and_mutes_come_from_the_chain() {
    let (stack, _node) = start("1h");
    let demo = stack.login_as("demo");
    let carol = stack.login_as("carol");
    let newbie = stack.login_as("newbie");
    assert_eq!(json_get(&stack, "/friends", &demo, &[]).0, 200);
    let (status, refusal) = json_get(&stack, "/friends", &newbie, &[]);
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["failed"][0]["condition"], "followed_by");
    assert_eq!(json_get(&stack, "/clean", &demo, &[]).0, 200);
    let (status, refusal) = json_get(&stack, "/clean", &carol, &[]);
    assert_eq!(status, 403, "{refusal}");
    assert_eq!(refusal["failed"][0]["condition"], "not");
    assert_eq!(refusal["failed"][0]["have"], "muted by @bob");
    // alice unfollows demo on chain: after the ttl, demo is out.
    stack.devnet.rpc(
        "devnet.follow",
        json!({"follower": "alice", "following": "demo", "what": []}),
    );
    stack.devnet.produce_block(None);
    assert!(
        support::wait_until(Duration::from_secs(10), || json_get(
            &stack,
            "/friends",
            &demo,
            &[]
        )
        .0 == 403),
        "the unfollow never counted"
    );
}
