//! The stale-follows report end to end, against a fake node.
//!
//! Why these tests: the report's value is reading the *whole* follow list
//! whatever order the backend uses, asking for accounts in bounded batches,
//! and answering every failure (no identity, bad query, dead or slow node)
//! with a clear status instead of a guess or a hang. The fake node records
//! every call so the tests can assert what was asked, not just what came out.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use steemgate::chain::{AccountName, ChainName, RpcCall, RpcError};
use steemgate::pages::Pages;
use steemgate::report::{ReportSettings, StaleFollows, fetch_following, router};
use time::OffsetDateTime;
use tower::ServiceExt;

/// How a backend orders `get_following` and treats `start`.
#[derive(Clone, Copy, Debug)]
enum FollowOrder {
    /// steemd: alphabetical, the start entry comes back again.
    AlphabeticalInclusive,
    /// current hivemind: alphabetical, the start entry is skipped.
    AlphabeticalExclusive,
    /// 2021-2024 hivemind: newest first, exclusive start.
    NewestFirstExclusive,
    /// A newest-first backend that repeats the start entry.
    NewestFirstInclusive,
    /// A broken backend that ignores `start` and always returns page one.
    IgnoresStart,
}

/// What the fake does when called.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Answer,
    Fail,
    Hang,
}

/// A node holding one follower's follow list (oldest follow first) and some
/// accounts' activity timestamps.
struct FakeNode {
    follows: Vec<(String, &'static str)>,
    order: FollowOrder,
    accounts: HashMap<String, Value>,
    behaviour: Behaviour,
    delay: Duration,
    following_calls: Mutex<Vec<Value>>,
    /// Follows the chain has dropped since (an applied unfollow).
    unfollowed: Mutex<HashSet<String>>,
    account_batches: Mutex<Vec<usize>>,
    /// `bridge.get_profile` calls (one relationship read each).
    profile_calls: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl FakeNode {
    fn new(follows: Vec<String>, order: FollowOrder) -> Self {
        Self {
            follows: follows.into_iter().map(|name| (name, "blog")).collect(),
            order,
            accounts: HashMap::new(),
            behaviour: Behaviour::Answer,
            delay: Duration::ZERO,
            following_calls: Mutex::new(Vec::new()),
            profile_calls: AtomicUsize::new(0),
            unfollowed: Mutex::new(HashSet::new()),
            account_batches: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        }
    }

    fn with_account(mut self, name: &str, last_post: &str, last_root_post: &str) -> Self {
        let account = json!({"name": name, "last_post": last_post, "last_root_post": last_root_post, "balance": "1.000 STEEM"});
        self.accounts.insert(name.to_string(), account);
        self
    }

    fn calls(&self) -> usize {
        self.following_calls.lock().unwrap().len() + self.account_batches.lock().unwrap().len()
    }

    fn get_following(&self, params: &Value) -> Result<Value, RpcError> {
        let start = params[1].as_str().expect("start is a string");
        assert_eq!(params[2], "blog");
        let limit = params[3].as_u64().expect("limit") as usize;
        if limit > 1000 {
            return Err(RpcError::Node {
                code: -32602,
                message: format!("limit = {limit} outside valid range [1:1000]"),
            });
        }
        let unfollowed = self.unfollowed.lock().unwrap().clone();
        let mut listed: Vec<&(String, &str)> = self
            .follows
            .iter()
            .filter(|(name, _)| !unfollowed.contains(name))
            .collect();
        match self.order {
            FollowOrder::AlphabeticalInclusive
            | FollowOrder::AlphabeticalExclusive
            | FollowOrder::IgnoresStart => listed.sort_by(|a, b| a.0.cmp(&b.0)),
            FollowOrder::NewestFirstExclusive | FollowOrder::NewestFirstInclusive => {
                listed.reverse()
            }
        }
        let from = if start.is_empty() || matches!(self.order, FollowOrder::IgnoresStart) {
            0
        } else {
            let Some(at) = listed.iter().position(|(name, _)| name == start) else {
                return Ok(json!([]));
            };
            match self.order {
                FollowOrder::AlphabeticalInclusive | FollowOrder::NewestFirstInclusive => at,
                _ => at + 1,
            }
        };
        let page: Vec<Value> = listed
            .iter()
            .skip(from)
            .take(limit)
            .map(|(name, what)| json!({"follower": "owner", "following": name, "what": [what]}))
            .collect();
        Ok(Value::Array(page))
    }

    /// Steem's `bridge.get_profile {account, observer}`: whether the owner
    /// (the observer) follows `account` now.
    fn profile(&self, params: &Value) -> Value {
        let name = params["account"].as_str().expect("account");
        assert_eq!(params["observer"], "owner");
        let followed = self
            .follows
            .iter()
            .any(|(n, what)| n == name && *what == "blog")
            && !self.unfollowed.lock().unwrap().contains(name);
        json!({"name": name, "id": 1, "context": {"followed": followed}})
    }

    fn get_accounts(&self, params: &Value) -> Value {
        let names = params[0].as_array().expect("[[names]]");
        // Answer in reverse order: the app must match by name, not position.
        Value::Array(
            names
                .iter()
                .rev()
                .filter_map(|name| self.accounts.get(name.as_str()?).cloned())
                .collect(),
        )
    }
}

#[async_trait::async_trait]
impl RpcCall for FakeNode {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match method {
            "condenser_api.get_following" => {
                self.following_calls.lock().unwrap().push(params.clone())
            }
            "condenser_api.get_accounts" => self
                .account_batches
                .lock()
                .unwrap()
                .push(params[0].as_array().map_or(0, Vec::len)),
            "bridge.get_profile" => {
                self.profile_calls.fetch_add(1, AtomicOrdering::SeqCst);
            }
            other => panic!("unexpected method {other}"),
        }
        let now = self.in_flight.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, AtomicOrdering::SeqCst);
        match self.behaviour {
            Behaviour::Hang => std::future::pending::<()>().await,
            Behaviour::Fail => {
                self.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
                return Err(RpcError::Unavailable(
                    "connection refused by every node".into(),
                ));
            }
            Behaviour::Answer => {}
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, AtomicOrdering::SeqCst);
        match method {
            "condenser_api.get_following" => self.get_following(&params),
            "bridge.get_profile" => Ok(self.profile(&params)),
            _ => Ok(self.get_accounts(&params)),
        }
    }
}

/// `count` distinct names whose follow order (by an odd multiplier) differs
/// from their alphabetical order.
fn follow_names(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("user{:05}", (i * 7919) % count))
        .collect()
}

fn chain_time(days_ago: i64) -> String {
    let at = OffsetDateTime::now_utc() - time::Duration::days(days_ago) - time::Duration::hours(1);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn settings() -> ReportSettings {
    ReportSettings {
        request_budget: Duration::from_millis(200),
        cache_ttl: Duration::from_secs(3600),
        ..ReportSettings::new(ChainName::Steem)
    }
}

fn app(node: Arc<FakeNode>, settings: ReportSettings) -> Arc<StaleFollows> {
    Arc::new(StaleFollows::new(
        node,
        Arc::new(Pages::new(None).unwrap()),
        settings,
    ))
}

fn owner() -> AccountName {
    AccountName::parse("owner").unwrap()
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn get(app: &Arc<StaleFollows>, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router(Arc::clone(app))
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_as(app: &Arc<StaleFollows>, account: &str, uri: &str) -> Answer {
    get(app, uri, &[("x-steem-account", account)]).await
}

// ---------------------------------------------------------------- pagination

#[tokio::test]
async fn every_backend_order_yields_exactly_all_follows() {
    let names = follow_names(2500);
    let expected: HashSet<String> = names.iter().cloned().collect();
    for order in [
        FollowOrder::AlphabeticalInclusive,
        FollowOrder::AlphabeticalExclusive,
        FollowOrder::NewestFirstExclusive,
        FollowOrder::NewestFirstInclusive,
    ] {
        let node = FakeNode::new(names.clone(), order);
        let got = fetch_following(&node, &owner()).await.unwrap();
        assert_eq!(got.len(), 2500, "{order:?}");
        let unique: HashSet<String> = got.iter().map(|n| n.as_str().to_string()).collect();
        assert_eq!(unique, expected, "{order:?}");

        let calls = node.following_calls.lock().unwrap().clone();
        assert_eq!(calls.len(), 3, "{order:?}: two full pages and a short one");
        assert_eq!(calls[0], json!(["owner", "", "blog", 1000]));
        // Each next page starts at the last name of the page before.
        for pair in calls.windows(2) {
            let previous_page = node.get_following(&pair[0]).unwrap();
            let last = previous_page.as_array().unwrap().last().unwrap()["following"].clone();
            assert_eq!(pair[1][1], last, "{order:?}");
        }
    }
}

#[tokio::test]
async fn an_exact_multiple_of_a_page_ends_on_the_empty_or_repeated_page() {
    for (order, expected_calls) in [
        (FollowOrder::AlphabeticalExclusive, 3),
        (FollowOrder::AlphabeticalInclusive, 3),
        (FollowOrder::NewestFirstExclusive, 3),
    ] {
        let node = FakeNode::new(follow_names(2000), order);
        let got = fetch_following(&node, &owner()).await.unwrap();
        assert_eq!(got.iter().collect::<HashSet<_>>().len(), 2000, "{order:?}");
        assert_eq!(got.len(), 2000, "{order:?}");
        assert_eq!(
            node.following_calls.lock().unwrap().len(),
            expected_calls,
            "{order:?}"
        );
    }
}

#[tokio::test]
async fn a_short_page_stops_and_a_node_ignoring_start_cannot_loop() {
    let node = FakeNode::new(follow_names(999), FollowOrder::AlphabeticalInclusive);
    assert_eq!(fetch_following(&node, &owner()).await.unwrap().len(), 999);
    assert_eq!(node.following_calls.lock().unwrap().len(), 1);

    let node = FakeNode::new(follow_names(2500), FollowOrder::IgnoresStart);
    let got = fetch_following(&node, &owner()).await.unwrap();
    assert_eq!(got.len(), 1000, "only the distinct names it ever returned");
    assert_eq!(
        node.following_calls.lock().unwrap().len(),
        2,
        "the page that brought nothing new ends it"
    );
}

#[tokio::test]
async fn non_blog_entries_are_skipped_but_still_advance_the_cursor() {
    let mut node = FakeNode::new(follow_names(1500), FollowOrder::AlphabeticalExclusive);
    let mut sorted: Vec<String> = node.follows.iter().map(|(n, _)| n.clone()).collect();
    sorted.sort();
    // The last entry of page one and one more are muted, not followed.
    let muted = [sorted[999].clone(), sorted[1200].clone()];
    for entry in node.follows.iter_mut() {
        if muted.contains(&entry.0) {
            entry.1 = "ignore";
        }
    }
    let got = fetch_following(&node, &owner()).await.unwrap();
    assert_eq!(got.len(), 1498);
    assert!(
        got.iter()
            .all(|name| !muted.contains(&name.as_str().to_string()))
    );
    assert_eq!(
        node.following_calls.lock().unwrap()[1][1],
        json!(sorted[999])
    );
}

/// A node answering every `get_following` with one recorded fixture.
struct FixtureNode(Value);

#[async_trait::async_trait]
impl RpcCall for FixtureNode {
    async fn call(&self, _method: &str, _params: Value) -> Result<Value, RpcError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn recorded_hivemind_pages_parse_in_either_order() {
    let read = |file: &str| {
        serde_json::from_str::<Value>(&support::fixture(&format!("steem-rpc/{file}"))).unwrap()
    };
    let alphabetical =
        read("hive-condenser_get_following-proskynneo-limit10-2025-alphabetical.json");
    let newest_first =
        read("hive-condenser_get_following-proskynneo-limit10-2021-newest-first.json");
    let owner = AccountName::parse("proskynneo").unwrap();
    let a = fetch_following(&FixtureNode(alphabetical), &owner)
        .await
        .unwrap();
    let b = fetch_following(&FixtureNode(newest_first), &owner)
        .await
        .unwrap();
    assert_eq!(a.len(), 10);
    assert_eq!(b.len(), 10);
    assert_eq!(b[0].as_str(), "webosfritos");
    assert!(a.iter().any(|n| n.as_str() == "stellabelle"));

    let gtg = read("hive-condenser_get_following-gtg-start-stellabelle-2025.json");
    let got = fetch_following(&FixtureNode(gtg), &AccountName::parse("gtg").unwrap())
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(AccountName::as_str).collect::<Vec<_>>(),
        ["thebluepanda"]
    );
}

// ---------------------------------------------------------------- accounts

#[tokio::test]
async fn accounts_are_fetched_in_bounded_batches_with_bounded_concurrency() {
    let mut node = FakeNode::new(follow_names(4500), FollowOrder::AlphabeticalExclusive);
    for (i, (name, _)) in node.follows.clone().iter().enumerate() {
        if i % 100 != 0 {
            node = node.with_account(name, &chain_time(60), &chain_time(60));
        }
    }
    node.delay = Duration::from_millis(5);
    let node = Arc::new(node);
    let app = app(
        Arc::clone(&node),
        ReportSettings {
            concurrency: 2,
            request_budget: Duration::from_secs(30),
            ..settings()
        },
    );
    let answer = get_as(&app, "owner", "/stale?format=json").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let report = answer.json();
    assert_eq!(report["following"], 4500);
    assert_eq!(
        report["stale"].as_array().unwrap().len(),
        4455,
        "45 unknown names are left out"
    );

    let mut batches = node.account_batches.lock().unwrap().clone();
    batches.sort_unstable();
    assert_eq!(batches, [500, 1000, 1000, 1000, 1000]);
    // Both permitted batches start before either answers, never more.
    assert_eq!(node.max_in_flight.load(AtomicOrdering::SeqCst), 2);
}

// ---------------------------------------------------------------- the report

/// The recorded Hive answer for gtg, steemit, alice, temp, dan and a
/// nonexistent name: alice never posted, all others stopped in 2016.
fn recorded_accounts_node() -> FakeNode {
    let recorded: Value = serde_json::from_str(&support::fixture(
        "steem-rpc/hive-condenser_get_accounts-multiple-incl-nonexistent.json",
    ))
    .unwrap();
    let follows = ["gtg", "steemit", "alice", "temp", "dan", "not.existing"]
        .map(String::from)
        .to_vec();
    let mut node = FakeNode::new(follows, FollowOrder::AlphabeticalInclusive);
    for account in recorded.as_array().unwrap() {
        node.accounts.insert(
            account["name"].as_str().unwrap().to_string(),
            account.clone(),
        );
    }
    node
}

#[tokio::test]
async fn json_report_has_the_exact_shape_with_never_posted_first() {
    let app = app(Arc::new(recorded_accounts_node()), settings());
    let answer = get(
        &app,
        "/stale/",
        &[("x-steem-account", "owner"), ("accept", "application/json")],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.content_type.starts_with("application/json"));
    let report = answer.json();
    let keys: HashSet<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["account", "threshold_days", "by", "following", "stale"])
    );
    assert_eq!(report["account"], "owner");
    assert_eq!(report["threshold_days"], 40);
    assert_eq!(report["by"], "last_post");
    assert_eq!(report["following"], 6);
    let stale = report["stale"].as_array().unwrap();
    for entry in stale {
        let keys: HashSet<&str> = entry
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, HashSet::from(["name", "last_post", "days_inactive"]));
    }
    let names: Vec<&str> = stale.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["alice", "steemit", "temp", "dan", "gtg"],
        "not.existing is left out"
    );
    assert_eq!(
        stale[0],
        json!({"name": "alice", "last_post": "1970-01-01T00:00:00", "days_inactive": null})
    );
    assert_eq!(stale[4]["last_post"], "2016-09-15T18:43:51");
    assert!(stale[4]["days_inactive"].as_u64().unwrap() > 3000);
}

#[tokio::test]
async fn by_root_uses_last_root_post() {
    let app = app(Arc::new(recorded_accounts_node()), settings());
    let report = get_as(&app, "owner", "/stale?by=root&format=json")
        .await
        .json();
    assert_eq!(report["by"], "last_root_post");
    let stale: Vec<(&str, &str)> = report["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["last_post"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stale,
        [
            ("alice", "1970-01-01T00:00:00"),
            ("steemit", "2016-03-30T18:30:18"),
            ("temp", "2016-07-18T08:13:30"),
            ("dan", "2016-07-27T15:44:03"),
            ("gtg", "2016-08-21T12:29:18"),
        ]
    );
}

fn recent_activity_node() -> FakeNode {
    let follows = ["fresh", "middling", "ancient", "silent"]
        .map(String::from)
        .to_vec();
    FakeNode::new(follows, FollowOrder::AlphabeticalExclusive)
        .with_account("fresh", &chain_time(10), &chain_time(60))
        .with_account("middling", &chain_time(50), &chain_time(50))
        .with_account("ancient", &chain_time(100), &chain_time(100))
        .with_account("silent", "1970-01-01T00:00:00", "1970-01-01T00:00:00")
}

fn stale_summary(report: &Value) -> Vec<(String, Option<u64>)> {
    report["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["days_inactive"].as_u64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn thresholds_and_by_change_the_result_without_refetching() {
    let node = Arc::new(recent_activity_node());
    let app = app(Arc::clone(&node), settings());
    let s = |name: &str, days: Option<u64>| (name.to_string(), days);

    let default = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(
        stale_summary(&default),
        [
            s("silent", None),
            s("ancient", Some(100)),
            s("middling", Some(50))
        ]
    );
    let calls_after_first = node.calls();
    assert_eq!(calls_after_first, 2, "one follow page, one account batch");

    let ninety = get_as(&app, "owner", "/stale?days=90&format=json")
        .await
        .json();
    assert_eq!(ninety["threshold_days"], 90);
    assert_eq!(
        stale_summary(&ninety),
        [s("silent", None), s("ancient", Some(100))]
    );

    let root = get_as(&app, "owner", "/stale?by=root&format=json")
        .await
        .json();
    assert_eq!(
        stale_summary(&root),
        [
            s("silent", None),
            s("ancient", Some(100)),
            s("fresh", Some(60)),
            s("middling", Some(50))
        ]
    );

    let exactly_fifty = get_as(&app, "owner", "/stale?days=50&format=json")
        .await
        .json();
    assert_eq!(
        stale_summary(&exactly_fifty),
        [s("silent", None), s("ancient", Some(100))],
        "more than N days"
    );

    assert_eq!(
        node.calls(),
        calls_after_first,
        "cached data served every later request"
    );
}

#[tokio::test]
async fn an_expired_cache_entry_is_fetched_again() {
    let node = Arc::new(recent_activity_node());
    let app = app(
        Arc::clone(&node),
        ReportSettings {
            cache_ttl: Duration::ZERO,
            ..settings()
        },
    );
    get_as(&app, "owner", "/stale?format=json").await;
    get_as(&app, "owner", "/stale?format=json").await;
    assert_eq!(node.calls(), 4);
}

#[tokio::test]
async fn days_out_of_range_or_not_a_number_is_400() {
    let node = Arc::new(recent_activity_node());
    let app = app(Arc::clone(&node), settings());
    for query in [
        "days=0",
        "days=3651",
        "days=forty",
        "days=1.5",
        "by=comments",
        "days=5&days=6",
    ] {
        let html = get_as(&app, "owner", &format!("/stale?{query}")).await;
        assert_eq!(html.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(html.content_type.starts_with("text/html"), "{query}");
        let json = get_as(&app, "owner", &format!("/stale?{query}&format=json")).await;
        assert_eq!(json.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(json.json()["status"], 400);
    }
    let json = get_as(&app, "owner", "/stale?days=0&format=json")
        .await
        .json();
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("days must be a whole number from 1 to 3650")
    );
    assert_eq!(node.calls(), 0, "a bad query never reaches the node");
    assert_eq!(
        get_as(&app, "owner", "/stale?days=3650&format=json")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        get_as(&app, "owner", "/stale?days=1&format=json")
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn html_page_lists_names_counts_and_profile_links() {
    let node = Arc::new(recent_activity_node());
    let app = app(Arc::clone(&node), settings());
    let page = get_as(&app, "owner", "/stale/any/deeper/path").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.body.contains("Stale follows of @owner"));
    assert!(
        page.body
            .contains(r#"<strong class="following-count">4</strong>"#)
    );
    assert!(
        page.body
            .contains(r#"<strong class="stale-count">3</strong>"#)
    );
    // minijinja escapes '/' in values as `&#x2f;`, which browsers decode.
    let links = page.body.replace("&#x2f;", "/");
    assert!(
        links.contains(r#"href="https://steemit.com/@ancient""#),
        "{}",
        page.body
    );
    assert!(links.contains(r#"href="https://steemit.com/@middling""#));
    assert!(page.body.contains("never posted"));
    assert!(page.body.contains("100 days"));
    assert!(
        !page.body.contains("@fresh"),
        "active accounts are not listed"
    );
    assert!(
        !page.body.contains("behind the head block"),
        "no lag provider, no lag line"
    );
}

#[tokio::test]
async fn hive_links_to_peakd_and_shows_the_lag() {
    let node = Arc::new(recent_activity_node());
    let settings = ReportSettings {
        chain: ChainName::Hive,
        behind_seconds: Some(Arc::new(|| Some(42))),
        ..settings()
    };
    let page = get_as(&app(node, settings), "owner", "/").await;
    assert!(
        page.body
            .replace("&#x2f;", "/")
            .contains(r#"href="https://peakd.com/@ancient""#)
    );
    assert!(page.body.contains("about 42 seconds behind"));
}

#[tokio::test]
async fn hostile_values_are_escaped() {
    let app = app(Arc::new(recent_activity_node()), settings());
    let page = get_as(
        &app,
        "owner",
        "/stale?days=%3Cscript%3Ealert(1)%3C/script%3E",
    )
    .await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(!page.body.contains("<script>alert"));

    // A node returning a name the chain cannot hold fails closed, escaped.
    let node = FakeNode::new(vec!["<b>x</b>".into()], FollowOrder::AlphabeticalExclusive);
    let page = get_as(&app_for(node), "owner", "/stale").await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(
        page.body.contains("&lt;b&gt;x&lt;&#x2f;b&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("<b>x"), "{}", page.body);
}

fn app_for(node: FakeNode) -> Arc<StaleFollows> {
    app(Arc::new(node), settings())
}

// ---------------------------------------------------------------- failures

#[tokio::test]
async fn a_failing_node_gives_502() {
    let mut node = recent_activity_node();
    node.behaviour = Behaviour::Fail;
    let app = app_for(node);
    let page = get_as(&app, "owner", "/stale").await;
    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert!(page.content_type.starts_with("text/html"));
    assert!(page.body.contains("The chain node failed"));
    let json = get(
        &app,
        "/stale",
        &[("x-steem-account", "owner"), ("accept", "application/json")],
    )
    .await;
    assert_eq!(json.status, StatusCode::BAD_GATEWAY);
    assert_eq!(json.json()["status"], 502);
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("connection refused")
    );
}

#[tokio::test]
async fn a_hanging_node_gives_504_within_the_budget() {
    let mut node = recent_activity_node();
    node.behaviour = Behaviour::Hang;
    let node = Arc::new(node);
    let app = app(Arc::clone(&node), settings());
    // The budget is 200 ms; a regression that ignores it must fail this
    // test, not hang CI. The bound is generous (no timing assert), only
    // finite.
    let bounded = |uri: &'static str| {
        let app = Arc::clone(&app);
        async move {
            tokio::time::timeout(Duration::from_secs(30), get_as(&app, "owner", uri))
                .await
                .unwrap_or_else(|_| panic!("{uri} still unanswered after 30 s: budget ignored"))
        }
    };
    let page = bounded("/stale").await;
    assert_eq!(page.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(page.body.contains("too slow"));
    // A second try asks the node again: failures are not cached.
    let json = bounded("/stale?format=json").await;
    assert_eq!(json.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(node.following_calls.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_node_failing_only_on_accounts_is_also_502() {
    // Follow list fine, accounts answer is not a list of accounts.
    struct HalfBroken(FakeNode);
    #[async_trait::async_trait]
    impl RpcCall for HalfBroken {
        async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
            if method == "condenser_api.get_accounts" {
                return Ok(json!({"unexpected": true}));
            }
            self.0.call(method, params).await
        }
    }
    let node = HalfBroken(recent_activity_node());
    let app = Arc::new(StaleFollows::new(
        Arc::new(node),
        Arc::new(Pages::new(None).unwrap()),
        settings(),
    ));
    let json = get_as(&app, "owner", "/stale?format=json").await;
    assert_eq!(json.status, StatusCode::BAD_GATEWAY);
    assert!(
        json.json()["error"]
            .as_str()
            .unwrap()
            .contains("get_accounts")
    );
}

// ---------------------------------------------------------------- identity

#[tokio::test]
async fn identity_comes_only_from_one_valid_header() {
    let node = Arc::new(recent_activity_node());
    let app = app(Arc::clone(&node), settings());
    let cases: [&[(&str, &str)]; 6] = [
        &[],
        &[("cookie", "account=owner"), ("x-account", "owner")],
        &[("x-steem-account", "owner"), ("x-steem-account", "owner")],
        &[("x-steem-account", "not a name")],
        &[("x-steem-account", "Owner")],
        &[("x-steem-account", "")],
    ];
    for headers in cases {
        let answer = get(&app, "/stale?account=owner", headers).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{headers:?}");
        assert!(answer.content_type.starts_with("text/html"), "{headers:?}");
        assert!(answer.body.contains("Not logged in"));
        // Every other answer of the report needs the identity too.
        for uri in [
            "/stale?format=csv",
            "/stale?verify=fresh",
            "/stale?prepare=fresh",
            "/stale?asset=stale.js",
            "/stale?sort=name&page=2",
        ] {
            let answer = get(&app, uri, headers).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri} {headers:?}");
            assert!(!answer.body.contains("fresh"), "{uri}");
        }
    }
    let json = get(&app, "/stale", &[("accept", "application/json")]).await;
    assert_eq!(json.status, StatusCode::UNAUTHORIZED);
    assert_eq!(json.json()["status"], 401);
    assert_eq!(node.calls(), 0, "nothing is fetched for an unknown visitor");
}

#[tokio::test]
async fn only_get_is_answered() {
    let app = app(Arc::new(recent_activity_node()), settings());
    let request = Request::builder()
        .method("POST")
        .uri("/stale")
        .header("x-steem-account", "owner")
        .body(Body::empty())
        .unwrap();
    let response = router(app).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
}

// ---------------------------------------------------------------- the tool (issue 16)

/// `count` followed accounts, account i silent for 45 + i days; every 10th
/// never posted.
fn many_stale_node(count: usize) -> FakeNode {
    let names: Vec<String> = (0..count).map(|i| format!("stale{i:05}")).collect();
    let mut node = FakeNode::new(names.clone(), FollowOrder::AlphabeticalExclusive);
    for (i, name) in names.iter().enumerate() {
        let when = if i % 10 == 0 {
            "1970-01-01T00:00:00".to_string()
        } else {
            chain_time(45 + i as i64)
        };
        node = node.with_account(name, &when, &when);
    }
    node
}

fn names_in(report: &Value) -> Vec<String> {
    report["stale"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn sort_orders_every_format_and_csv_carries_the_same_rows() {
    let app = app(Arc::new(recent_activity_node()), settings());
    let by_days = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(names_in(&by_days), ["silent", "ancient", "middling"]);
    let by_name = get_as(&app, "owner", "/stale?format=json&sort=name")
        .await
        .json();
    assert_eq!(names_in(&by_name), ["ancient", "middling", "silent"]);
    let recent = get_as(&app, "owner", "/stale?format=json&sort=last_post")
        .await
        .json();
    assert_eq!(names_in(&recent), ["middling", "ancient", "silent"]);
    // The JSON keeps its documented keys whatever the sort.
    let keys: HashSet<&str> = by_name
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["account", "threshold_days", "by", "following", "stale"])
    );

    let csv = get_as(&app, "owner", "/stale?format=csv&sort=name&days=40").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.content_type, "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"stale-follows-owner-40d.csv\""
    );
    assert_eq!(csv.headers[header::CACHE_CONTROL], "private, no-store");
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines[0], "name,last_post,days_inactive");
    assert_eq!(lines.len(), 5, "header, three rows, final empty: {lines:?}");
    assert_eq!(lines[4], "");
    let by_name_rows = by_name["stale"].as_array().unwrap();
    for (line, row) in lines[1..4].iter().zip(by_name_rows) {
        let expected = match row["days_inactive"].as_u64() {
            Some(days) => format!(
                "{},{},{days}",
                row["name"].as_str().unwrap(),
                row["last_post"].as_str().unwrap()
            ),
            None => format!("{},never,", row["name"].as_str().unwrap()),
        };
        assert_eq!(*line, expected);
    }
    assert_eq!(lines[3], "silent,never,");

    // The HTML table follows the sort too and marks the sorted column.
    let html = get_as(&app, "owner", "/stale?sort=name").await.body;
    let (a, m, s) = (
        html.find("@ancient").unwrap(),
        html.find("@middling").unwrap(),
        html.find("@silent").unwrap(),
    );
    assert!(a < m && m < s, "alphabetical rows");
    assert!(html.contains(r#"aria-sort="ascending""#));
    assert!(
        html.contains("href=\"?days=40&amp;by=post&amp;sort=days\""),
        "sort links keep the threshold"
    );
}

#[tokio::test]
async fn the_page_has_the_overview_chart_selection_and_its_own_script() {
    let app = app(Arc::new(recent_activity_node()), settings());
    let page = get_as(&app, "owner", "/stale").await;
    assert_eq!(page.status, StatusCode::OK);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"));
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
    let html = page.body;
    // No inline script: the only <script> elements are the served file and
    // the JSON data block, which browsers never execute.
    let scripts: Vec<&str> = html
        .match_indices("<script")
        .map(|(i, _)| &html[i..i + 50.min(html.len() - i)])
        .collect();
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    assert!(scripts[0].starts_with("<script src=\"?asset=stale.js\""));
    assert!(scripts[1].starts_with("<script type=\"application/json\" id=\"stale-names\">"));
    let names_start = html.find("id=\"stale-names\">").unwrap() + "id=\"stale-names\">".len();
    let names_end = names_start + html[names_start..].find("</script>").unwrap();
    let names: Vec<String> = serde_json::from_str(&html[names_start..names_end]).unwrap();
    assert_eq!(names, ["silent", "ancient", "middling"]);
    // The overview: counts and an inline SVG with a bar per month, a bar
    // for never-posted accounts and the threshold line.
    assert!(html.contains(r#"<strong class="following-count">4</strong>"#));
    assert!(html.contains(r#"<strong class="stale-count">3</strong>"#));
    assert!(html.contains(r#"<strong class="never-count">1</strong>"#));
    assert!(html.contains("<svg id=\"chart\" role=\"img\""));
    assert_eq!(html.matches("<rect class=\"bar").count(), 26);
    assert!(html.contains("<title>never posted: 1</title>"));
    assert!(html.contains("class=\"threshold\""));
    assert!(
        !html.contains("http://") || !html.contains("<image"),
        "no external images"
    );
    // One checkbox per row, labelled.
    assert_eq!(html.matches("class=\"pick\"").count(), 3);
    assert!(html.contains(r#"aria-label="Select @silent""#));
    // The simulated wallet is only offered on a devnet.
    assert!(html.contains("data-simulated=\"0\""));
    assert!(!html.contains("SIMULATION"));
    let simulated = app_for_settings(ReportSettings {
        simulated: true,
        ..settings()
    });
    let html = get_as(&simulated, "owner", "/stale").await.body;
    assert!(html.contains("data-simulated=\"1\"") && html.contains("SIMULATION"));

    let script = get_as(&app, "owner", "/stale?asset=stale.js").await;
    assert_eq!(script.status, StatusCode::OK);
    assert_eq!(script.content_type, "text/javascript; charset=utf-8");
    assert_eq!(script.body, steemgate::report::SCRIPT);
    assert!(
        script
            .body
            .contains("requestBroadcast(account, operations, \"Posting\"")
    );
}

fn assert_contains_ops(body: &str, expected: &str) {
    let needle = format!("\"operations\":{expected}");
    assert!(body.contains(&needle), "{body}\nlacks\n{needle}");
}

fn app_for_settings(settings: ReportSettings) -> Arc<StaleFollows> {
    app(Arc::new(recent_activity_node()), settings)
}

#[tokio::test]
async fn prepare_hands_out_the_exact_unfollow_operations_and_links() {
    let app = app(Arc::new(recent_activity_node()), settings());
    let answer = get_as(&app, "owner", "/stale?prepare=silent,ancient").await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "private, no-store");
    let prepared = answer.json();
    assert_eq!(prepared["key_type"], "Posting");
    // Byte for byte, in the chain's field order, as the page hands them on.
    assert_contains_ops(
        &answer.body,
        r#"[["custom_json",{"required_auths":[],"required_posting_auths":["owner"],"id":"follow","json":"[\"follow\",{\"follower\":\"owner\",\"following\":\"silent\",\"what\":[]}]"}],["custom_json",{"required_auths":[],"required_posting_auths":["owner"],"id":"follow","json":"[\"follow\",{\"follower\":\"owner\",\"following\":\"ancient\",\"what\":[]}]"}]]"#,
    );
    let by_hand = prepared["by_hand"].as_array().unwrap();
    assert_eq!(by_hand[0]["name"], "silent");
    assert_eq!(
        by_hand[0]["operation"],
        r#"["custom_json",{"required_auths":[],"required_posting_auths":["owner"],"id":"follow","json":"[\"follow\",{\"follower\":\"owner\",\"following\":\"silent\",\"what\":[]}]"}]"#
    );
    let link = url::Url::parse(by_hand[0]["hot_sign_url"].as_str().unwrap()).unwrap();
    assert_eq!(link.host_str(), Some("steemlogin.com"));
    assert_eq!(link.path(), "/sign/custom-json");
    let json_param = link.query_pairs().find(|(k, _)| k == "json").unwrap().1;
    assert_eq!(
        json_param,
        r#"["follow",{"follower":"owner","following":"silent","what":[]}]"#
    );
    // Names are checked: nothing but canonical account names, at most 50.
    for bad in ["prepare=Silent", "prepare=a", "prepare=", "prepare=x%22y"] {
        let answer = get_as(&app, "owner", &format!("/stale?{bad}")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let hive = app_for_settings(ReportSettings::new(ChainName::Hive));
    let prepared = get_as(&hive, "owner", "/stale?prepare=silent").await.json();
    assert!(
        prepared["by_hand"][0]["hot_sign_url"]
            .as_str()
            .unwrap()
            .starts_with("https://hivesigner.com/sign/custom-json?")
    );
}

#[tokio::test]
async fn verify_drops_the_cache_and_believes_only_the_chain() {
    let node = Arc::new(recent_activity_node());
    let app = app(Arc::clone(&node), settings());
    let before = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(before["following"], 4);
    // The wallet says done, but the chain has not applied anything yet.
    let answer = get_as(&app, "owner", "/stale?verify=silent,ancient")
        .await
        .json();
    assert_eq!(
        answer,
        json!({"account": "owner", "gone": [], "still_following": ["silent", "ancient"]})
    );
    let fresh = get_as(&app, "owner", "/stale?format=json").await.json();
    // The chain applies one of the two; the report keeps its cache until
    // the page asks it to verify.
    node.unfollowed.lock().unwrap().insert("silent".into());
    let cached = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(
        cached["following"], 4,
        "still the cached data until verified"
    );
    assert_eq!(fresh, cached);
    let calls = node.following_calls.lock().unwrap().len();
    let profiles = node.profile_calls.load(AtomicOrdering::SeqCst);
    let answer = get_as(&app, "owner", "/stale?verify=silent,ancient")
        .await
        .json();
    assert_eq!(
        answer,
        json!({"account": "owner", "gone": ["silent"], "still_following": ["ancient"]})
    );
    // One relationship read per named account, never the whole follow list.
    assert_eq!(
        node.profile_calls.load(AtomicOrdering::SeqCst),
        profiles + 2
    );
    assert_eq!(node.following_calls.lock().unwrap().len(), calls);
    // The cache listed "silent": it is dropped, the page reads afresh.
    let after = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(after["following"], 3);
    assert_eq!(names_in(&after), ["ancient", "middling"]);
    // Naming accounts the owner never followed costs one read each and
    // leaves the cached report alone (no whole-list re-read on demand).
    let calls = node.following_calls.lock().unwrap().len();
    let answer = get_as(&app, "owner", "/stale?verify=stranger").await.json();
    assert_eq!(answer["gone"], json!(["stranger"]));
    let again = get_as(&app, "owner", "/stale?format=json").await.json();
    assert_eq!(again, after);
    assert_eq!(node.following_calls.lock().unwrap().len(), calls);
    // A failing node is an error, never "gone".
    let failing = FakeNode {
        behaviour: Behaviour::Fail,
        ..recent_activity_node()
    };
    let failing = app_for_node(failing);
    let answer = get_as(&failing, "owner", "/stale?verify=silent").await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
}

fn app_for_node(node: FakeNode) -> Arc<StaleFollows> {
    app(Arc::new(node), settings())
}

#[tokio::test]
async fn ten_thousand_follows_are_paged_but_select_all_and_csv_see_every_row() {
    let app = app(
        Arc::new(many_stale_node(10_000)),
        ReportSettings {
            request_budget: Duration::from_secs(30),
            ..settings()
        },
    );
    let page = get_as(&app, "owner", "/stale").await;
    assert_eq!(page.status, StatusCode::OK);
    let html = &page.body;
    assert_eq!(
        html.matches("class=\"pick\"").count(),
        steemgate::report::PAGE_SIZE
    );
    assert!(html.contains("page 1 of 20"));
    assert!(html.contains(r#"aria-current="page">1</a>"#));
    assert!(html.contains("href=\"?days=40&amp;by=post&amp;sort=days&amp;page=20\""));
    let names_start = html.find("id=\"stale-names\">").unwrap() + "id=\"stale-names\">".len();
    let names_end = names_start + html[names_start..].find("</script>").unwrap();
    let names: Vec<String> = serde_json::from_str(&html[names_start..names_end]).unwrap();
    assert_eq!(names.len(), 10_000);
    let last = get_as(&app, "owner", "/stale?page=20&sort=name").await.body;
    assert!(last.contains("@stale09999") && !last.contains("@stale00000<"));
    // A page past the end shows the last one.
    let beyond = get_as(&app, "owner", "/stale?page=99&sort=name").await.body;
    assert!(beyond.contains("page 20 of 20"));
    let csv = get_as(&app, "owner", "/stale?format=csv").await.body;
    assert_eq!(csv.matches("\r\n").count(), 10_001);
}
