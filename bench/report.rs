//! Benchmark of the stale-follows report (not a test, no assertions).
//!
//! Why: the report must stay usable for accounts following thousands. This
//! measures a 5,000-follow report against a fake node that answers every
//! call after 50 ms (a typical public node round trip): the cold request
//! (6 follow pages + 5 account batches) and the cached one, against the
//! targets cold < 1.5 s and cached < 20 ms.
//!
//! Run: `cargo bench --bench report --profile dev` (or without `--profile`
//! for an optimized build).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use steemgate::chain::{ChainName, RpcCall, RpcError};
use steemgate::pages::Pages;
use steemgate::report::{ReportSettings, StaleFollows, router};
use tower::ServiceExt;

const FOLLOWS: usize = 5000;
const NODE_LATENCY: Duration = Duration::from_millis(50);

/// A node with `FOLLOWS` alphabetical follows (exclusive start, like current
/// hivemind) and realistic-size accounts, answering after `NODE_LATENCY`.
struct SlowNode {
    names: Vec<String>,
    metadata: String,
    calls: AtomicUsize,
}

#[async_trait::async_trait]
impl RpcCall for SlowNode {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(NODE_LATENCY).await;
        match method {
            "condenser_api.get_following" => {
                let start = params[1].as_str().unwrap_or("");
                let limit = params[3].as_u64().unwrap_or(0) as usize;
                let from = if start.is_empty() {
                    0
                } else {
                    self.names.partition_point(|n| n.as_str() <= start)
                };
                Ok(Value::Array(
                    self.names[from..]
                        .iter()
                        .take(limit)
                        .map(|n| json!({"follower": "owner", "following": n, "what": ["blog"]}))
                        .collect(),
                ))
            }
            "condenser_api.get_accounts" => {
                let wanted = params[0].as_array().cloned().unwrap_or_default();
                Ok(Value::Array(
                    wanted
                        .iter()
                        .enumerate()
                        .map(|(i, n)| {
                            let last = format!("20{:02}-0{}-15T12:00:00", 16 + i % 9, 1 + i % 9);
                            json!({"name": n, "last_post": last, "last_root_post": last,
                                   "json_metadata": self.metadata, "balance": "1.000 STEEM",
                                   "post_count": i, "reputation": "123456789"})
                        })
                        .collect(),
                ))
            }
            other => Err(RpcError::Decode(format!("unexpected {other}"))),
        }
    }
}

async fn request(app: &Arc<StaleFollows>, uri: &str) -> (u16, usize) {
    let request = Request::builder()
        .uri(uri)
        .header("x-steem-account", "owner")
        .body(Body::empty())
        .unwrap();
    let response = router(Arc::clone(app)).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body.len())
}

#[tokio::main]
async fn main() {
    let mut names: Vec<String> = (0..FOLLOWS).map(|i| format!("user{i:05}")).collect();
    names.sort();
    let node = Arc::new(SlowNode {
        names,
        metadata: "x".repeat(1500),
        calls: AtomicUsize::new(0),
    });
    let pages = Arc::new(Pages::new(None).unwrap());
    let app = Arc::new(StaleFollows::new(
        node.clone(),
        pages,
        ReportSettings::new(ChainName::Steem),
    ));

    let started = Instant::now();
    let (status, bytes) = request(&app, "/stale?format=json").await;
    let cold = started.elapsed();
    let cold_calls = node.calls.load(Ordering::SeqCst);
    println!(
        "cold   JSON: {:>8.1} ms  status {status}, {bytes} bytes, {cold_calls} node calls",
        ms(cold)
    );

    const RUNS: u32 = 20;
    for (label, uri) in [
        ("cached JSON", "/stale?format=json"),
        ("cached HTML", "/stale?days=90"),
    ] {
        let started = Instant::now();
        let mut last = (0, 0);
        for _ in 0..RUNS {
            last = request(&app, uri).await;
        }
        let each = started.elapsed() / RUNS;
        println!(
            "{label}: {:>8.2} ms  (mean of {RUNS}) status {}, {} bytes",
            ms(each),
            last.0,
            last.1
        );
    }
    let extra = node.calls.load(Ordering::SeqCst) - cold_calls;
    println!("node calls during cached requests: {extra}");
    println!(
        "targets: cold < 1500 ms ({}), cached < 20 ms",
        if cold < Duration::from_millis(1500) {
            "met"
        } else {
            "MISSED"
        }
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
