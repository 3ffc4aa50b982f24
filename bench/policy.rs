//! Benchmark of access-policy decisions (not a test, no assertions).
//!
//! Why: a policy sits on every request of the routes it guards. Its cached
//! decision must cost next to nothing, and a first decision must stay
//! within one node round trip: target p95 < 150 ms against a node that
//! answers every call after 50 ms. This runs the real RPC client against a
//! loopback JSON-RPC node (axum) with that delay, and measures
//! - cold: 300 first decisions of a policy needing five reads (account,
//!   vesting ratio, a community, two follows), 20 visitors at a time;
//! - cached: the same decisions again, 1,000,000 lookups.
//!
//! Results go to stdout and `bench/results/policy.md`.
//! Run: `cargo bench --bench policy` (an optimized build; `--profile dev`
//! works too, the cold numbers are dominated by the node delay).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};
use steemgate::chain::facts::CommunityName;
use steemgate::chain::rpc::RpcClient;
use steemgate::chain::{AccountName, ChainName};
use steemgate::config::{Condition, Policy, PolicyCacheConfig};
use steemgate::policy::{Outcome, PolicyEngine, PolicyMetrics};

const NODE_LATENCY: Duration = Duration::from_millis(50);
const VISITORS: usize = 300;
const CONCURRENCY: usize = 20;
const CACHED_LOOKUPS: usize = 1_000_000;

/// Answers the five calls the policy makes, for any account, after the delay.
async fn node(Json(request): Json<Value>) -> Json<Value> {
    tokio::time::sleep(NODE_LATENCY).await;
    let method = request["method"].as_str().unwrap_or("");
    let params = &request["params"];
    let result = match method {
        "condenser_api.get_accounts" => {
            let name = params[0][0].as_str().unwrap_or("x");
            json!([{"name": name, "created": "2019-03-01T10:00:00", "reputation": "95832978796820",
                    "vesting_shares": "2000000.000000 VESTS", "delegated_vesting_shares": "0.000000 VESTS",
                    "received_vesting_shares": "0.000000 VESTS", "witness_votes": ["gtg"], "proxy": ""}])
        }
        "condenser_api.get_dynamic_global_properties" => {
            json!({"total_vesting_fund_steem": "157102910.021 STEEM",
                   "total_vesting_shares": "283918139943.616774 VESTS"})
        }
        "bridge.get_community" => json!({"name": params["name"], "title": "Bench", "id": 1,
            "context": {"role": "member", "subscribed": true, "title": ""}}),
        "bridge.get_profile" => json!({"name": params["account"], "id": 2,
            "context": {"followed": true}}),
        _ => Value::Null,
    };
    Json(json!({"jsonrpc": "2.0", "result": result, "id": request["id"]}))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, axum::Router::new().route("/", post(node))).await;
        });
        let url = url::Url::parse(&format!("http://{addr}/")).expect("url");
        let rpc = Arc::new(RpcClient::new(vec![url], Duration::from_secs(5)));
        let account = |n: &str| AccountName::parse(n).expect("name");
        let policy = Arc::new(Policy {
            name: Arc::from("regulars"),
            condition: Condition::All(vec![
                Condition::AccountAge(Duration::from_secs(30 * 86_400)),
                Condition::Reputation(40.0),
                Condition::Stake(50.0),
                Condition::Community {
                    name: CommunityName::parse("hive-123456").expect("community"),
                    role: None,
                },
                Condition::Any(vec![
                    Condition::FollowedBy(account("alice")),
                    Condition::FollowedBy(account("bob")),
                ]),
            ]),
        });
        let engine = Arc::new(PolicyEngine::new(
            ChainName::Steem,
            rpc,
            &[policy],
            PolicyCacheConfig::default(),
            PolicyMetrics::new(),
        ));
        let visitors: Vec<String> = (0..VISITORS).map(|i| format!("visitor{i}")).collect();

        let mut cold = Vec::with_capacity(VISITORS);
        for chunk in visitors.chunks(CONCURRENCY) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|visitor| {
                    let engine = engine.clone();
                    let visitor = visitor.clone();
                    tokio::spawn(async move {
                        let started = Instant::now();
                        let outcome = engine.decide(&visitor, "regulars").await;
                        (started.elapsed(), matches!(outcome, Outcome::Decided(d) if d.passed()))
                    })
                })
                .collect();
            for task in tasks {
                let (elapsed, passed) = task.await.expect("task");
                assert!(passed, "the bench policy must pass");
                cold.push(elapsed);
            }
        }
        cold.sort();

        let started = Instant::now();
        for i in 0..CACHED_LOOKUPS {
            let visitor = &visitors[i % VISITORS];
            let outcome = engine.decide(visitor, "regulars").await;
            std::hint::black_box(&outcome);
        }
        let cached = started.elapsed() / CACHED_LOOKUPS as u32;

        let report = format!(
            "# Policy decisions\n\n\
             `cargo bench --bench policy` ({} build): the real RPC client against a loopback node answering every call after {} ms; \
             a policy of five reads (account, vesting ratio, community, two follows), {VISITORS} visitors, {CONCURRENCY} at a time.\n\n\
             | measure | value |\n|---|---|\n\
             | cold decision p50 | {:.1} ms |\n| cold decision p95 | {:.1} ms (target < 150 ms) |\n| cold decision max | {:.1} ms |\n\
             | cached decision | {} ns per lookup ({CACHED_LOOKUPS} lookups) |\n",
            if cfg!(debug_assertions) { "debug" } else { "optimized" },
            NODE_LATENCY.as_millis(),
            percentile(&cold, 0.5).as_secs_f64() * 1000.0,
            percentile(&cold, 0.95).as_secs_f64() * 1000.0,
            cold.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
            cached.as_nanos(),
        );
        println!("{report}");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/results/policy.md");
        if let Err(e) = std::fs::write(path, &report) {
            eprintln!("cannot write {path}: {e}");
        }
    });
}
