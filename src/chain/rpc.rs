//! The JSON-RPC 2.0 client that talks to Steem/Hive nodes, with failover.
//!
//! Why: public nodes go down, hang, answer HTML error pages from a proxy,
//! cut answers short, or fall behind the chain. A login must still be seen
//! within seconds, so every call walks a configured list of nodes: a node
//! that fails is skipped for an exponential backoff (1 s doubling to 60 s)
//! and retried after it. One call tries each node at most once.
//!
//! What counts as a failure of a node (try the next one): timeout, refused
//! connection, any HTTP error status, a body that is not JSON (HTML error
//! pages, truncated answers), a JSON-RPC `error` object (not penalised with a
//! backoff: the request may be at fault), and for the global properties a
//! head block older than `stale_after`.

use std::ops::RangeInclusive;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::block::{Block, GlobalProperties, node_error, parse_block, rpc_result, truncate};
use super::{ChainName, RpcCall, RpcError};
use crate::clock::now_unix;

/// Most calls jussi accepts in one batch request.
pub const MAX_BATCH: usize = 50;
/// Default age after which a node's head block counts as stale.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(90);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest answer body read from a node (50 blocks are well under this).
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// What the admin service shows about one node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    pub url: String,
    /// Not currently backing off.
    pub healthy: bool,
    /// Consecutive failures (0 after a success).
    pub failures: u32,
}

#[derive(Default)]
struct Health {
    failures: u32,
    backoff_until: Option<Instant>,
}

struct Node {
    url: url::Url,
    health: Mutex<Health>,
}

/// How one node answered one HTTP request.
enum Exchange {
    /// Valid JSON came back.
    Json(Value),
    /// The node could not be used (the reason, for logs and errors).
    Failed(String),
}

/// A JSON-RPC client over a list of nodes. Cheap to build; share in an `Arc`.
pub struct RpcClient {
    nodes: Vec<Node>,
    http: Result<reqwest::Client, String>,
    stale_after: Duration,
    next_id: AtomicU64,
    failovers: AtomicU64,
}

impl RpcClient {
    /// A client over `nodes` (tried in this order) with a per-request
    /// `timeout`. Needs no runtime.
    pub fn new(nodes: Vec<url::Url>, timeout: Duration) -> Self {
        // reqwest is built with `rustls-no-provider`: pick ring once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("steemgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"));
        Self {
            nodes: nodes
                .into_iter()
                .map(|url| Node {
                    url,
                    health: Mutex::new(Health::default()),
                })
                .collect(),
            http,
            stale_after: DEFAULT_STALE_AFTER,
            next_id: AtomicU64::new(1),
            failovers: AtomicU64::new(0),
        }
    }

    /// Sets the age after which a node's head block is stale (default 90 s).
    pub fn with_stale_after(mut self, stale_after: Duration) -> Self {
        self.stale_after = stale_after;
        self
    }

    /// Health of every configured node, in configured order.
    pub fn node_statuses(&self) -> Vec<NodeStatus> {
        let now = Instant::now();
        self.nodes
            .iter()
            .map(|node| {
                let health = lock(&node.health);
                NodeStatus {
                    url: node.url.to_string(),
                    healthy: health.backoff_until.is_none_or(|until| until <= now),
                    failures: health.failures,
                }
            })
            .collect()
    }

    /// How many times a call moved on from a node to the next (for metrics).
    pub fn failovers(&self) -> u64 {
        self.failovers.load(Ordering::Relaxed)
    }

    /// One JSON-RPC call with failover; returns its `result`.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_checked(method, &params, |_| Verdict::Good).await
    }

    /// The chain's global properties from a node whose head is fresh. If
    /// every node is stale, the freshest stale answer.
    pub async fn global_properties(&self) -> Result<GlobalProperties, RpcError> {
        let stale_after = self.stale_after.as_secs();
        let result = self
            .call_checked(
                "condenser_api.get_dynamic_global_properties",
                &json!([]),
                |result| match GlobalProperties::from_json(result) {
                    Err(e) => Verdict::Bad(e.to_string()),
                    Ok(props) if now_unix().saturating_sub(props.head_block_time) > stale_after => {
                        Verdict::Stale(props.head_block_time)
                    }
                    Ok(_) => Verdict::Good,
                },
            )
            .await?;
        GlobalProperties::from_json(&result)
    }

    /// Blocks `range` via batched `condenser_api.get_block`, in order; `None`
    /// for a block not produced yet.
    pub async fn get_blocks(
        &self,
        range: RangeInclusive<u64>,
        chain: ChainName,
    ) -> Result<Vec<Option<Block>>, RpcError> {
        let numbers: Vec<u64> = range.collect();
        let calls: Vec<(&str, Value)> = numbers
            .iter()
            .map(|n| ("condenser_api.get_block", json!([n])))
            .collect();
        // A node whose answer is not the block asked for (wrong number,
        // shuffled batch ids, broken shape) is failed over like a dead one.
        let answers = self
            .batch_checked(&calls, |index, answer| match numbers.get(index) {
                Some(number) => parse_block(*number, answer, chain)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                None => Err(format!("answer {index} was not asked for")),
            })
            .await?;
        numbers
            .iter()
            .zip(answers)
            .map(|(number, answer)| parse_block(*number, &answer?, chain))
            .collect()
    }

    /// Several calls, sent as JSON-RPC batches of at most [`MAX_BATCH`].
    /// The outer error means no node answered a chunk at all; inner errors
    /// are per call. A node that rejects batches gets single calls instead.
    pub async fn batch(
        &self,
        calls: &[(&str, Value)],
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        self.batch_checked(calls, |_, _| Ok(())).await
    }

    /// [`Self::batch`] where `check(index, result)` judges each `result`
    /// (index into `calls`): a node with any result refused is treated as
    /// failed and the next node is asked.
    pub async fn batch_checked(
        &self,
        calls: &[(&str, Value)],
        check: impl Fn(usize, &Value) -> Result<(), String>,
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        let mut results = Vec::with_capacity(calls.len());
        for (chunk_index, chunk) in calls.chunks(MAX_BATCH).enumerate() {
            let offset = chunk_index * MAX_BATCH;
            results.extend(
                self.batch_chunk(chunk, |index, result| check(offset + index, result))
                    .await?,
            );
        }
        Ok(results)
    }

    async fn batch_chunk(
        &self,
        chunk: &[(&str, Value)],
        check: impl Fn(usize, &Value) -> Result<(), String>,
    ) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
        let first_id = self
            .next_id
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        let request: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, (method, params))| request_object(method, params, first_id + i as u64))
            .collect();
        let body = Value::Array(request).to_string();
        let mut failures = Vec::new();
        let mut partial: Option<Vec<Result<Value, RpcError>>> = None;
        let mut rejected_batch = false;
        for (attempt, index) in self.attempt_order().into_iter().enumerate() {
            if attempt > 0 {
                self.failovers.fetch_add(1, Ordering::Relaxed);
            }
            let node = &self.nodes[index];
            match self.exchange(node, &body).await {
                Exchange::Failed(why) => {
                    self.mark_failed(node, &why);
                    failures.push(format!("{}: {why}", node.url));
                }
                Exchange::Json(Value::Array(items)) => {
                    let checked = match_batch(items, first_id, chunk.len()).and_then(|answers| {
                        for (index, answer) in answers.iter().enumerate() {
                            if let Ok(result) = answer {
                                check(index, result)
                                    .map_err(|why| format!("answer {index}: {why}"))?;
                            }
                        }
                        Ok(answers)
                    });
                    match checked {
                        Ok(answers) => {
                            self.mark_ok(node);
                            if answers.iter().all(Result::is_ok) {
                                return Ok(answers);
                            }
                            // Some calls got node errors: another node may do better.
                            partial = Some(answers);
                        }
                        Err(why) => {
                            self.mark_failed(node, &why);
                            failures.push(format!("{}: {why}", node.url));
                        }
                    }
                }
                Exchange::Json(other) => {
                    // A single object answering a batch: the node refuses batches.
                    let why = match rpc_result(&other) {
                        Err(e) => e.to_string(),
                        Ok(_) => "answered a batch with a single result".to_string(),
                    };
                    tracing::debug!(node = %node.url, "batch refused ({why}); falling back to single calls");
                    rejected_batch = true;
                    failures.push(format!("{}: {why}", node.url));
                }
            }
        }
        if let Some(answers) = partial {
            return Ok(answers);
        }
        if rejected_batch {
            let mut answers = Vec::with_capacity(chunk.len());
            for (index, (method, params)) in chunk.iter().enumerate() {
                let answer = self
                    .call_checked(method, params, |result| match check(index, result) {
                        Ok(()) => Verdict::Good,
                        Err(why) => Verdict::Bad(why),
                    })
                    .await;
                answers.push(answer);
            }
            return Ok(answers);
        }
        Err(RpcError::Unavailable(summary(&failures)))
    }

    /// The failover loop of a single call; `check` judges a `result`.
    async fn call_checked(
        &self,
        method: &str,
        params: &Value,
        check: impl Fn(&Value) -> Verdict,
    ) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = request_object(method, params, id).to_string();
        let mut failures = Vec::new();
        let mut last_node_error = None;
        let mut last_decode_error = None;
        let mut freshest_stale: Option<(u64, Value)> = None;
        for (attempt, index) in self.attempt_order().into_iter().enumerate() {
            if attempt > 0 {
                self.failovers.fetch_add(1, Ordering::Relaxed);
            }
            let node = &self.nodes[index];
            let envelope = match self.exchange(node, &body).await {
                Exchange::Json(v) => v,
                Exchange::Failed(why) => {
                    self.mark_failed(node, &why);
                    failures.push(format!("{}: {why}", node.url));
                    continue;
                }
            };
            let result = match rpc_result(&envelope) {
                Ok(result) => result,
                Err(RpcError::Node { code, message }) => {
                    tracing::debug!(node = %node.url, method, code, "node error: {message}");
                    self.mark_ok(node);
                    last_node_error = Some(RpcError::Node { code, message });
                    continue;
                }
                Err(other) => {
                    self.mark_failed(node, &other.to_string());
                    failures.push(format!("{}: {other}", node.url));
                    continue;
                }
            };
            if envelope
                .get("id")
                .and_then(Value::as_u64)
                .is_some_and(|got| got != id)
            {
                let why = "answer carries another request's id";
                self.mark_failed(node, why);
                failures.push(format!("{}: {why}", node.url));
                continue;
            }
            match check(result) {
                Verdict::Good => {
                    self.mark_ok(node);
                    return Ok(result.clone());
                }
                Verdict::Stale(head_time) => {
                    let why = format!("head block time {head_time} is stale");
                    self.mark_failed(node, &why);
                    failures.push(format!("{}: {why}", node.url));
                    if freshest_stale
                        .as_ref()
                        .is_none_or(|(best, _)| head_time > *best)
                    {
                        freshest_stale = Some((head_time, result.clone()));
                    }
                }
                Verdict::Bad(why) => {
                    self.mark_failed(node, &why);
                    failures.push(format!("{}: {why}", node.url));
                    last_decode_error = Some(RpcError::Decode(why));
                }
            }
        }
        if let Some((_, result)) = freshest_stale {
            tracing::warn!(method, "every node is stale; using the freshest answer");
            return Ok(result);
        }
        if let Some(error) = last_node_error.or(last_decode_error) {
            return Err(error);
        }
        Err(RpcError::Unavailable(summary(&failures)))
    }

    /// Nodes to try, in order: those not backing off (configured order), then
    /// the backing-off node whose backoff ends first. Each at most once.
    fn attempt_order(&self) -> Vec<usize> {
        let now = Instant::now();
        let mut ready = Vec::new();
        let mut waiting: Option<(Instant, usize)> = None;
        for (index, node) in self.nodes.iter().enumerate() {
            match lock(&node.health).backoff_until {
                Some(until) if until > now => {
                    if waiting.is_none_or(|(best, _)| until < best) {
                        waiting = Some((until, index));
                    }
                }
                _ => ready.push(index),
            }
        }
        ready.extend(waiting.map(|(_, index)| index));
        ready
    }

    /// One HTTP POST of `body` to `node`, read as JSON.
    async fn exchange(&self, node: &Node, body: &str) -> Exchange {
        let http = match &self.http {
            Ok(http) => http,
            Err(why) => return Exchange::Failed(why.clone()),
        };
        let response = http
            .post(node.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await;
        let mut response = match response {
            Ok(response) => response,
            Err(e) => return Exchange::Failed(describe(&e)),
        };
        let status = response.status();
        if !status.is_success() {
            return Exchange::Failed(format!("HTTP {status}"));
        }
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        return Exchange::Failed(format!(
                            "answer larger than {MAX_BODY_BYTES} bytes"
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Exchange::Failed(describe(&e)),
            }
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) => Exchange::Json(v),
            Err(e) => Exchange::Failed(format!(
                "answer is not JSON ({e}): {:?}",
                truncate(&String::from_utf8_lossy(&bytes), 80)
            )),
        }
    }

    fn mark_failed(&self, node: &Node, why: &str) {
        let mut health = lock(&node.health);
        health.failures = health.failures.saturating_add(1);
        let exponent = health.failures.saturating_sub(1).min(16);
        let backoff = FIRST_BACKOFF
            .saturating_mul(1u32 << exponent)
            .min(MAX_BACKOFF);
        health.backoff_until = Some(Instant::now() + backoff);
        tracing::debug!(node = %node.url, failures = health.failures, ?backoff, "node failed: {why}");
    }

    fn mark_ok(&self, node: &Node) {
        let mut health = lock(&node.health);
        if health.failures > 0 {
            tracing::info!(node = %node.url, "node answers again");
        }
        *health = Health::default();
    }
}

#[async_trait::async_trait]
impl RpcCall for RpcClient {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        RpcClient::call(self, method, params).await
    }
}

enum Verdict {
    Good,
    /// A valid answer whose head block (this timestamp) is too old.
    Stale(u64),
    /// The answer does not have the expected shape.
    Bad(String),
}

fn request_object(method: &str, params: &Value, id: u64) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
}

/// Puts batch answers back in request order by id; any missing, duplicate or
/// foreign id makes the whole answer unusable.
fn match_batch(
    items: Vec<Value>,
    first_id: u64,
    count: usize,
) -> Result<Vec<Result<Value, RpcError>>, String> {
    if items.len() != count {
        return Err(format!(
            "batch of {count} answered with {} items",
            items.len()
        ));
    }
    let mut slots: Vec<Option<Result<Value, RpcError>>> = (0..count).map(|_| None).collect();
    for item in items {
        let slot = item
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|id| id.checked_sub(first_id))
            .and_then(|offset| usize::try_from(offset).ok())
            .and_then(|offset| slots.get_mut(offset))
            .ok_or_else(|| "batch answer with an unknown id".to_string())?;
        if slot.is_some() {
            return Err("batch answer repeats an id".to_string());
        }
        *slot = Some(match item.get("error").filter(|e| !e.is_null()) {
            Some(error) => Err(node_error(error)),
            None => rpc_result(&item).cloned(),
        });
    }
    slots
        .into_iter()
        .map(|slot| slot.ok_or_else(|| "batch answer lacks an id".to_string()))
        .collect()
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        format!("cannot connect: {e}")
    } else {
        e.to_string()
    }
}

fn summary(failures: &[String]) -> String {
    if failures.is_empty() {
        "no nodes configured".to_string()
    } else {
        failures.join("; ")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Health is plain data; a panic elsewhere cannot leave it inconsistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_are_matched_by_id() {
        let items = vec![
            json!({"jsonrpc": "2.0", "result": "b", "id": 11}),
            json!({"jsonrpc": "2.0", "error": {"code": -1, "message": "no"}, "id": 12}),
            json!({"jsonrpc": "2.0", "result": "a", "id": 10}),
        ];
        let answers = match_batch(items, 10, 3).unwrap();
        assert_eq!(answers[0].as_ref().unwrap(), "a");
        assert_eq!(answers[1].as_ref().unwrap(), "b");
        assert!(matches!(answers[2], Err(RpcError::Node { code: -1, .. })));
        assert!(
            match_batch(
                vec![
                    json!({"result": 1, "id": 10}),
                    json!({"result": 1, "id": 10})
                ],
                10,
                2
            )
            .is_err()
        );
        assert!(match_batch(vec![json!({"result": 1, "id": 99})], 10, 1).is_err());
        assert!(match_batch(vec![json!({"result": 1, "id": 10})], 10, 2).is_err());
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        let client = RpcClient::new(
            vec![url::Url::parse("http://127.0.0.1:9/").unwrap()],
            Duration::from_secs(1),
        );
        let node = &client.nodes[0];
        for _ in 0..10 {
            client.mark_failed(node, "test");
        }
        let until = lock(&node.health).backoff_until.unwrap();
        assert!(until <= Instant::now() + MAX_BACKOFF);
        assert!(until > Instant::now() + MAX_BACKOFF - Duration::from_secs(5));
        assert_eq!(client.node_statuses()[0].failures, 10);
        assert!(!client.node_statuses()[0].healthy);
        // Backing off, but the only node: still tried.
        assert_eq!(client.attempt_order(), vec![0]);
        client.mark_ok(node);
        assert!(client.node_statuses()[0].healthy);
    }
}
