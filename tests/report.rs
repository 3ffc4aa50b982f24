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
    account_batches: Mutex<Vec<usize>>,
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
        let mut listed: Vec<&(String, &str)> = self.follows.iter().collect();
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
