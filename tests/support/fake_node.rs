//! A fake Steem/Hive node on 127.0.0.1:0 whose chain the test controls.
//!
//! Why: the follower and the RPC client must be tested against the answers
//! real nodes give (the recorded condenser_api shapes) and against the ways
//! real nodes fail (HTML 503 pages, garbage, cut-off bodies, hangs, stale
//! heads, JSON-RPC errors, refused batches), without any network access.
//! Several nodes can serve one shared chain; time is the blocks' timestamps.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

/// How a fake node answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Good,
    /// HTTP 503 with an HTML page, like a proxy in front of a dead node.
    Html503,
    /// HTTP 200 with a body that is not JSON.
    Garbage,
    /// HTTP 200 with the real answer cut in half.
    Truncated,
    /// Never answers.
    Hang,
    /// Real answers, but global properties report a head 10 minutes old.
    Stale,
    /// Every call gets a JSON-RPC error.
    NodeError,
    /// Single calls work; a batch gets a JSON-RPC error object.
    RejectBatch,
    /// Batch answers come back in reverse order (ids intact).
    ReverseBatch,
    /// Batch answers keep their order but their ids are rotated by one, so
    /// every result carries another call's id.
    ShuffleBatchIds,
    /// `get_block n` answers block n + 1 (when it exists).
    WrongBlock,
}

/// One fake transfer: from, to, amount (legacy string), memo.
#[derive(Clone, Debug)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: String,
    pub memo: String,
}

pub fn transfer(from: &str, to: &str, amount: &str, memo: &str) -> Transfer {
    Transfer {
        from: from.into(),
        to: to.into(),
        amount: amount.into(),
        memo: memo.into(),
    }
}

struct ChainState {
    blocks: BTreeMap<u64, (u64, Value)>,
    head: u64,
    irreversible_lag: u64,
    /// Bumped by [`FakeChain::fork`]: later blocks get other ids.
    fork: u64,
}

/// A chain shared by several fake nodes.
#[derive(Clone)]
pub struct FakeChain {
    state: Arc<Mutex<ChainState>>,
}

pub const FIRST_BLOCK: u64 = 48_404_683;

impl FakeChain {
    /// A chain whose head block `FIRST_BLOCK` is timestamped `head_time`.
    pub fn new(head_time: u64) -> Self {
        let chain = Self {
            state: Arc::new(Mutex::new(ChainState {
                blocks: BTreeMap::new(),
                head: FIRST_BLOCK - 1,
                irreversible_lag: 0,
                fork: 0,
            })),
        };
        chain.produce_at(head_time, vec![]);
        chain
    }

    /// The next block, 3 s after the head, holding `transfers`. Returns its number.
    pub fn produce(&self, transfers: Vec<Transfer>) -> u64 {
        let time = self.head_time() + 3;
        self.produce_at(time, transfers)
    }

    /// `count` empty blocks; returns the new head.
    pub fn produce_empty(&self, count: u64) -> u64 {
        for _ in 0..count {
            self.produce(vec![]);
        }
        self.head()
    }

    /// The next block with an explicit timestamp.
    pub fn produce_at(&self, time: u64, transfers: Vec<Transfer>) -> u64 {
        let mut state = self.state.lock().unwrap();
        let number = state.head + 1;
        let previous = state
            .blocks
            .get(&(number - 1))
            .and_then(|(_, b)| b["block_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| block_id(number - 1, 0));
        let id = block_id(number, state.fork);
        state.blocks.insert(
            number,
            (time, block_json(number, &id, &previous, time, &transfers)),
        );
        state.head = number;
        number
    }

    pub fn head(&self) -> u64 {
        self.state.lock().unwrap().head
    }

    pub fn head_time(&self) -> u64 {
        let state = self.state.lock().unwrap();
        state.blocks.get(&state.head).map(|(t, _)| *t).unwrap_or(0)
    }

    /// Last irreversible block = head - lag.
    pub fn set_irreversible_lag(&self, lag: u64) {
        self.state.lock().unwrap().irreversible_lag = lag;
    }

    /// A fork: the head goes back to `to`, and every block produced from
    /// now on has a different id than the block it replaces.
    pub fn fork(&self, to: u64) {
        let mut state = self.state.lock().unwrap();
        state.head = to;
        state.fork += 1;
    }

    /// The id the chain gives block `number` now.
    pub fn block_id_of(&self, number: u64) -> String {
        let state = self.state.lock().unwrap();
        state.blocks[&number].1["block_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Makes the node forget the head: simulates a node that went backwards.
    pub fn rewind_head(&self, to: u64) {
        self.state.lock().unwrap().head = to;
    }

    fn answer(
        &self,
        method: &str,
        params: &Value,
        behaviour: Behaviour,
    ) -> Result<Value, (i64, String)> {
        if behaviour == Behaviour::NodeError {
            return Err((-32603, "Internal Error: database lock timeout".into()));
        }
        let state = self.state.lock().unwrap();
        match method {
            "condenser_api.get_dynamic_global_properties" => {
                let head_time = state.blocks.get(&state.head).map(|(t, _)| *t).unwrap_or(0);
                let time = if behaviour == Behaviour::Stale {
                    head_time.saturating_sub(600)
                } else {
                    head_time
                };
                Ok(json!({
                    "head_block_number": state.head,
                    "head_block_id": state.blocks.get(&state.head).map(|(_, b)| b["block_id"].clone()).unwrap_or(Value::Null),
                    "time": timestamp(time),
                    "current_witness": "fakewitness",
                    "last_irreversible_block_num": state.head.saturating_sub(state.irreversible_lag),
                    "current_supply": "370827284.770 STEEM",
                    "current_sbd_supply": "5781267.408 SBD",
                }))
            }
            "condenser_api.get_block" => {
                let Some(number) = params.get(0).and_then(Value::as_u64) else {
                    return Err((
                        -32003,
                        "Assert Exception:args.size() == 1: Expected #s argument(s), was 0".into(),
                    ));
                };
                let served = if behaviour == Behaviour::WrongBlock && number < state.head {
                    number + 1
                } else {
                    number
                };
                Ok(match state.blocks.get(&served) {
                    Some((_, block)) if served <= state.head => block.clone(),
                    _ => Value::Null,
                })
            }
            other => Err((-32601, format!("Could not find method {other}"))),
        }
    }
}

/// What a fake node was asked.
#[derive(Default)]
struct Log {
    /// Size of every batch request, in order.
    batch_sizes: Vec<usize>,
    single_calls: usize,
}

struct NodeShared {
    chain: FakeChain,
    behaviour: Behaviour,
    log: Mutex<Log>,
    /// Text replacements applied to every answer body (raw JSON faults).
    rewrites: Vec<(String, String)>,
}

/// A running fake node; stops when dropped.
pub struct FakeNode {
    pub url: url::Url,
    shared: Arc<NodeShared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeNode {
    pub async fn start(chain: &FakeChain, behaviour: Behaviour) -> Self {
        Self::start_with_rewrites(chain, behaviour, vec![]).await
    }

    /// A node that replaces each `(from, to)` text in its answer bodies, for
    /// answers no JSON encoder would write (e.g. lone surrogate escapes).
    pub async fn start_with_rewrites(
        chain: &FakeChain,
        behaviour: Behaviour,
        rewrites: Vec<(String, String)>,
    ) -> Self {
        let shared = Arc::new(NodeShared {
            chain: chain.clone(),
            behaviour,
            log: Mutex::new(Log::default()),
            rewrites,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/", axum::routing::post(handle))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: url::Url::parse(&format!("http://{addr}/")).unwrap(),
            shared,
            task,
        }
    }

    pub fn batch_sizes(&self) -> Vec<usize> {
        self.shared.log.lock().unwrap().batch_sizes.clone()
    }

    pub fn single_calls(&self) -> usize {
        self.shared.log.lock().unwrap().single_calls
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback URL that refuses connections for as long as the returned
/// port is held (nobody else can take it meanwhile).
pub fn dead_node() -> (crate::support::ClosedPort, url::Url) {
    let port = crate::support::ClosedPort::new();
    let url = url::Url::parse(&format!("http://{}/", port.addr())).unwrap();
    (port, url)
}

async fn handle(State(node): State<Arc<NodeShared>>, body: Bytes) -> Response {
    match node.behaviour {
        Behaviour::Html503 => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Html("<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body></html>"),
            )
                .into_response();
        }
        Behaviour::Garbage => {
            return (StatusCode::OK, "<!DOCTYPE html><p>upstream says hi").into_response();
        }
        Behaviour::Hang => std::future::pending::<()>().await,
        _ => {}
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad json").into_response();
    };
    let answer = match &request {
        Value::Array(calls) => {
            node.log.lock().unwrap().batch_sizes.push(calls.len());
            if node.behaviour == Behaviour::RejectBatch {
                json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "batch requests are not supported"}, "id": null})
            } else {
                let mut answers: Vec<Value> =
                    calls.iter().map(|call| answer_one(&node, call)).collect();
                match node.behaviour {
                    Behaviour::ReverseBatch => answers.reverse(),
                    Behaviour::ShuffleBatchIds if answers.len() > 1 => {
                        let ids: Vec<Value> = answers.iter().map(|a| a["id"].clone()).collect();
                        for (i, answer) in answers.iter_mut().enumerate() {
                            answer["id"] = ids[(i + 1) % ids.len()].clone();
                        }
                    }
                    _ => {}
                }
                Value::Array(answers)
            }
        }
        call => {
            node.log.lock().unwrap().single_calls += 1;
            answer_one(&node, call)
        }
    };
    let mut text = answer.to_string();
    for (from, to) in &node.rewrites {
        text = text.replace(from.as_str(), to);
    }
    if node.behaviour == Behaviour::Truncated {
        return (StatusCode::OK, text[..text.len() / 2].to_string()).into_response();
    }
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

fn answer_one(node: &NodeShared, call: &Value) -> Value {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let method = call
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = call.get("params").cloned().unwrap_or(Value::Null);
    match node.chain.answer(method, &params, node.behaviour) {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err((code, message)) => {
            json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id})
        }
    }
}

pub fn timestamp(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap())
        .unwrap()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap()
}

/// Block ids start with the block number, as on the real chains.
fn block_id(number: u64, fork: u64) -> String {
    format!("{number:08x}{fork:032x}")
}

fn txid(number: u64, index: usize) -> String {
    format!("{number:032x}{index:08x}")
}

/// A block in the recorded condenser_api.get_block shape.
fn block_json(number: u64, id: &str, previous: &str, time: u64, transfers: &[Transfer]) -> Value {
    let transactions: Vec<Value> = transfers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({
                "ref_block_num": number & 0xffff,
                "ref_block_prefix": 2594021845u64,
                "expiration": timestamp(time + 60),
                "operations": [
                    ["vote", {"voter": "someone", "author": "else", "permlink": "post", "weight": 10000}],
                    ["transfer", {"from": t.from, "to": t.to, "amount": t.amount, "memo": t.memo}]
                ],
                "extensions": [],
                "signatures": ["20" .repeat(65)],
                "transaction_id": txid(number, i),
                "block_num": number,
                "transaction_num": i,
            })
        })
        .collect();
    json!({
        "previous": previous,
        "timestamp": timestamp(time),
        "witness": "fakewitness",
        "transaction_merkle_root": "0".repeat(40),
        "extensions": [],
        "witness_signature": "1f".repeat(65),
        "transactions": transactions,
        "block_id": id,
        "signing_key": "STM5sAkhBD13dp63eE89MxvC9147rYBtjf2VP7CTLygWAuKEV31RP",
        "transaction_ids": (0..transfers.len()).map(|i| txid(number, i)).collect::<Vec<_>>(),
    })
}
