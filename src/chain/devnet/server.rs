//! The devnet's JSON-RPC over HTTP front, and its block producer.
//!
//! Why: the gateway's RPC client must not know it talks to a simulation, so
//! this speaks the same protocol as a public node: JSON-RPC 2.0 on `POST /`,
//! single requests and batches, the `condenser_api.METHOD` form, the bare
//! `METHOD` form (jussi routes it to condenser_api) and the legacy
//! `call` form. Errors use the codes real nodes use (see the error fixtures);
//! bad input never panics and never yields a 500. On top of that, a few
//! `devnet.*` methods drive the simulation (submit a transfer, follow,
//! produce a block, set an account's keys, drop broadcasts; and, in `policy`,
//! the community and account facts access policies read), and every response
//! carries `X-Devnet: simulated`. `condenser_api.broadcast_transaction`
//! queues a wallet-signed transfer (signatures are not checked) or follow
//! operations (see `follows`). Hivemind's `bridge.get_community` and
//! `get_community_context` are answered by `policy`;
//! `bridge.get_relationship_between_accounts` (Hive) and `bridge.get_profile`
//! with an observer (Steem) read the follow graph.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Devnet, DevnetError, follows, parse_chain_time, shapes};

/// The header every devnet response carries.
pub const DEVNET_HEADER: &str = "x-devnet";

/// Most names one `get_accounts` call may ask for (as on real nodes).
const MAX_ACCOUNTS_PER_CALL: usize = 1000;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcFailure {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcFailure {
    fn parse_error(detail: impl Into<String>) -> Self {
        Self {
            code: -32700,
            message: "Parse Error".into(),
            data: Some(json!(detail.into())),
        }
    }

    fn invalid_request(detail: &str) -> Self {
        Self {
            code: -32600,
            message: "Invalid Request".into(),
            data: Some(json!(detail)),
        }
    }

    pub(super) fn method_not_found(method: &str) -> Self {
        Self {
            code: -32601,
            message: "Method not found".into(),
            data: Some(json!(format!("{method} is not simulated by this devnet"))),
        }
    }

    /// hivemind's answer to bad parameters (see the get_following error fixture).
    pub(super) fn invalid_params(detail: impl Into<String>) -> Self {
        Self {
            code: -32602,
            message: "Invalid parameters".into(),
            data: Some(json!(detail.into())),
        }
    }

    /// steemd/hived's failed `FC_ASSERT`, e.g. a wrong argument count.
    fn assert_failed(method: &str, expression: String) -> Self {
        Self {
            code: -32003,
            message: format!("Assert Exception:{expression}"),
            data: Some(json!({
                "code": 10,
                "name": "assert_exception",
                "message": "Assert Exception",
                "stack": [{
                    "context": {"level": "error", "file": "condenser_api.cpp", "line": 0, "method": method, "hostname": "", "timestamp": ""},
                    "format": expression,
                    "data": {}
                }]
            })),
        }
    }

    /// hivemind's range assertion (the recorded limit-1001 error).
    fn hivemind_assert(expression: String) -> Self {
        use blake2::{Blake2b512, Digest};
        let assert_hash = hex::encode(&Blake2b512::digest(expression.as_bytes())[..10]);
        Self {
            code: -32602,
            message: format!("Assert Exception:{expression}"),
            data: Some(json!({
                "assert_hash": assert_hash,
                "code": 10,
                "extension": {"assertion_expression": expression},
                "message": "Assert Exception",
                "name": "assert_exception",
                "stack": [{
                    "context": {"file": "", "hostname": "", "level": "error", "line": 0, "method": "", "thread_name": "", "timestamp": ""},
                    "data": {"category": "hivemind"},
                    "format": ""
                }]
            })),
        }
    }

    fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let (Some(data), Value::Object(map)) = (&self.data, &mut error) {
            map.insert("data".into(), data.clone());
        }
        error
    }
}

impl From<DevnetError> for RpcFailure {
    fn from(error: DevnetError) -> Self {
        RpcFailure::invalid_params(error.to_string())
    }
}

/// The HTTP routes: `POST /` JSON-RPC, `GET /` a plain-text notice.
pub fn router(devnet: Devnet) -> Router {
    Router::new()
        .route("/", get(notice).post(rpc))
        .fallback(not_found)
        .with_state(devnet)
        .layer(axum::middleware::map_response(label_simulated))
}

async fn label_simulated(mut response: Response) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static(DEVNET_HEADER),
        HeaderValue::from_static("simulated"),
    );
    response
}

async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        "SIMULATED steemgate devnet: only / exists (GET for help, POST for JSON-RPC)\n",
    )
        .into_response()
}

async fn notice(State(devnet): State<Devnet>) -> Response {
    let chain = devnet.chain();
    let symbol = crate::chain::asset::Symbol::native(chain).as_str();
    let text = format!(
        "steemgate devnet: a SIMULATED {chain} chain. Nothing here is real: no real accounts, no real money,\n\
         no signatures. Head block: {head}.\n\n\
         JSON-RPC 2.0 on POST / (condenser_api.get_dynamic_global_properties, get_block, get_ops_in_block,\n\
         get_following, get_followers, get_accounts, broadcast_transaction; also the \"call\" form\n\
         and batches; bridge.get_community, bridge.get_community_context,\n\
         bridge.get_relationship_between_accounts, bridge.get_profile).\n\n\
         Submit a simulated transfer:\n  \
         curl -s -X POST URL -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"devnet.transfer\",\
         \"params\":{{\"from\":\"demo\",\"to\":\"gate-demo\",\"amount\":\"0.001 {symbol}\",\"memo\":\"YOUR-MEMO\"}}}}'\n\
         It lands in the next block; produce one now with\n  \
         curl -s -X POST URL -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"devnet.produce_block\"}}'\n\n\
         Follow, mute (what [\"ignore\"]) or unfollow (what []) in the next block:\n  \
         curl -s -X POST URL -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"devnet.follow\",\
         \"params\":{{\"follower\":\"demo\",\"following\":\"alice\",\"what\":[\"blog\"]}}}}'\n",
        chain = chain.as_str(),
        head = devnet.head(),
    );
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn rpc(State(devnet): State<Devnet>, body: Bytes) -> Response {
    let answer = answer_body(&devnet, &body);
    ([(CONTENT_TYPE, "application/json")], answer.to_string()).into_response()
}

/// Answers a raw request body: a single request or a batch.
pub fn answer_body(devnet: &Devnet, body: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            return envelope(Value::Null, Err(RpcFailure::parse_error(error.to_string())));
        }
    };
    match request {
        Value::Array(batch) if batch.is_empty() => {
            envelope(Value::Null, Err(RpcFailure::invalid_request("empty batch")))
        }
        Value::Array(batch) => Value::Array(
            batch
                .into_iter()
                .map(|one| answer_one(devnet, one))
                .collect(),
        ),
        single => answer_one(devnet, single),
    }
}

fn envelope(id: Value, outcome: Result<Value, RpcFailure>) -> Value {
    match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": id}),
        Err(failure) => json!({"jsonrpc": "2.0", "error": failure.to_json(), "id": id}),
    }
}

fn answer_one(devnet: &Devnet, request: Value) -> Value {
    let Value::Object(mut request) = request else {
        return envelope(
            Value::Null,
            Err(RpcFailure::invalid_request(
                "a request must be a JSON object",
            )),
        );
    };
    let id = request.remove("id").unwrap_or(Value::Null);
    if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return envelope(
            id,
            Err(RpcFailure::invalid_request("jsonrpc must be \"2.0\"")),
        );
    }
    let Some(method) = request
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return envelope(
            id,
            Err(RpcFailure::invalid_request("method must be a string")),
        );
    };
    let params = request.remove("params").unwrap_or(Value::Null);
    envelope(id, dispatch(devnet, &method, params))
}

/// Resolves the three method forms to `(api, method, params)` and runs it.
fn dispatch(devnet: &Devnet, method: &str, params: Value) -> Result<Value, RpcFailure> {
    if method == "call" {
        let Value::Array(mut parts) = params else {
            return Err(RpcFailure::invalid_params(
                "call expects [api, method, args]",
            ));
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(RpcFailure::invalid_params(
                "call expects [api, method, args]",
            ));
        }
        let args = if parts.len() == 3 {
            parts.remove(2)
        } else {
            json!([])
        };
        let (Some(api), Some(name)) = (parts[0].as_str(), parts[1].as_str()) else {
            return Err(RpcFailure::invalid_params(
                "call expects [api, method, args] with string api and method",
            ));
        };
        return run(devnet, api, name, args);
    }
    match method.split_once('.') {
        Some((api, name)) => run(devnet, api, name, params),
        None => run(devnet, "condenser_api", method, params),
    }
}

fn run(devnet: &Devnet, api: &str, method: &str, params: Value) -> Result<Value, RpcFailure> {
    match api {
        "condenser_api" => {
            let args = match params {
                Value::Null => Vec::new(),
                Value::Array(args) => args,
                Value::Object(named) if matches!(method, "get_following" | "get_followers") => {
                    follow_list_params(named)
                }
                _ => {
                    return Err(RpcFailure::invalid_params(
                        "condenser_api expects positional (array) params",
                    ));
                }
            };
            condenser(devnet, method, args)
        }
        "devnet" => simulation(devnet, method, params),
        "bridge" if method == "get_relationship_between_accounts" => {
            let state = devnet.lock();
            follows::relationship(&state, &params).map_err(RpcFailure::invalid_params)
        }
        "bridge" if method == "get_profile" => {
            let state = devnet.lock();
            follows::profile(&state, &params).map_err(RpcFailure::invalid_params)
        }
        "bridge" => super::policy::bridge(devnet, method, &params)
            .unwrap_or_else(|| Err(RpcFailure::method_not_found(&format!("bridge.{method}")))),
        _ => Err(RpcFailure::method_not_found(&format!("{api}.{method}"))),
    }
}

fn condenser(devnet: &Devnet, method: &str, args: Vec<Value>) -> Result<Value, RpcFailure> {
    let expect_args = |count: std::ops::RangeInclusive<usize>| {
        if count.contains(&args.len()) {
            Ok(())
        } else {
            Err(RpcFailure::assert_failed(
                method,
                format!(
                    "args.size() == {}: Expected {} argument(s), was {}",
                    count.end(),
                    count.end(),
                    args.len()
                ),
            ))
        }
    };
    match method {
        "get_dynamic_global_properties" => {
            expect_args(0..=0)?;
            let state = devnet.lock();
            Ok(shapes::dynamic_global_properties(&state))
        }
        "get_block" => {
            expect_args(1..=1)?;
            let Some(number) = block_number(&args[0])? else {
                return Ok(Value::Null);
            };
            let state = devnet.lock();
            Ok(state
                .block(number)
                .map_or(Value::Null, |block| shapes::block(&block)))
        }
        "get_ops_in_block" => {
            expect_args(1..=2)?;
            let only_virtual = match args.get(1) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => {
                    return Err(RpcFailure::invalid_params("only_virtual must be a boolean"));
                }
            };
            let Some(number) = block_number(&args[0])? else {
                return Ok(json!([]));
            };
            let state = devnet.lock();
            Ok(state.block(number).map_or(json!([]), |block| {
                shapes::ops_in_block(&state, &block, only_virtual)
            }))
        }
        "get_following" => list_follows(devnet, follows::Direction::Following, &args),
        "get_followers" => list_follows(devnet, follows::Direction::Followers, &args),
        "get_accounts" => {
            expect_args(1..=1)?;
            let Value::Array(names) = &args[0] else {
                return Err(RpcFailure::invalid_params("get_accounts expects [[names]]"));
            };
            if names.len() > MAX_ACCOUNTS_PER_CALL {
                return Err(RpcFailure::assert_failed(
                    method,
                    format!("names.size() <= {MAX_ACCOUNTS_PER_CALL}"),
                ));
            }
            let state = devnet.lock();
            let mut accounts = Vec::new();
            for name in names {
                let Some(name) = name.as_str() else {
                    return Err(RpcFailure::invalid_params("account names must be strings"));
                };
                if let Some(account) = state.accounts.get(name) {
                    accounts.push(shapes::account_with_keys(&state, name, account));
                }
            }
            Ok(Value::Array(accounts))
        }
        "broadcast_transaction" | "broadcast_transaction_synchronous" => {
            expect_args(1..=1)?;
            let transaction: crate::chain::crypto::Transaction =
                serde_json::from_value(args[0].clone())
                    .map_err(|e| RpcFailure::invalid_params(format!("not a transaction: {e}")))?;
            // As steemd, a refused transaction is an assert with the reason
            // in the message (wallets show the message).
            let id = devnet
                .broadcast(&transaction)
                .map_err(|e| RpcFailure::assert_failed(method, e.to_string()))?;
            if method == "broadcast_transaction" {
                Ok(json!({}))
            } else {
                Ok(
                    json!({"id": id, "block_num": devnet.head() + 1, "trx_num": 0, "expired": false}),
                )
            }
        }
        _ => Err(RpcFailure::method_not_found(&format!(
            "condenser_api.{method}"
        ))),
    }
}

/// A block number argument; `None` for numbers no block can have (negative),
/// which nodes answer with `null`.
fn block_number(raw: &Value) -> Result<Option<u64>, RpcFailure> {
    if let Some(number) = raw.as_u64() {
        return Ok(Some(number));
    }
    if raw.as_i64().is_some() {
        return Ok(None);
    }
    if let Some(text) = raw.as_str()
        && let Ok(number) = text.trim().parse::<u64>()
    {
        return Ok(Some(number));
    }
    Err(RpcFailure::invalid_params(
        "block number must be an unsigned integer",
    ))
}

/// `get_following` / `get_followers` (see `follows` for the rules).
fn list_follows(
    devnet: &Devnet,
    direction: follows::Direction,
    args: &[Value],
) -> Result<Value, RpcFailure> {
    let args = follows::list_args(args).map_err(|bad| match bad {
        Ok(limit) => RpcFailure::hivemind_assert(format!(
            "limit = {limit} outside valid range [1:{}]",
            follows::MAX_FOLLOW_LIMIT
        )),
        Err(text) => RpcFailure::invalid_params(text),
    })?;
    let state = devnet.lock();
    Ok(follows::list(&state, direction, &args))
}

/// hivemind also takes `get_following` / `get_followers` parameters by
/// name: `{account, start, follow_type, limit}` becomes positional.
fn follow_list_params(params: serde_json::Map<String, Value>) -> Vec<Value> {
    ["account", "start", "follow_type", "limit"]
        .iter()
        .map(|key| params.get(*key).cloned().unwrap_or(Value::Null))
        .collect()
}

/// A named-or-positional parameter: `params.name` or `params[index]`.
pub(super) fn param<'a>(params: &'a Value, name: &str, index: usize) -> Option<&'a Value> {
    match params {
        Value::Object(map) => map.get(name),
        Value::Array(items) => items.get(index),
        _ => None,
    }
    .filter(|value| !value.is_null())
}

pub(super) fn string_param<'a>(
    params: &'a Value,
    name: &str,
    index: usize,
    required: bool,
) -> Result<Option<&'a str>, RpcFailure> {
    match param(params, name, index) {
        None if required => Err(RpcFailure::invalid_params(format!(
            "missing parameter {name:?}"
        ))),
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(RpcFailure::invalid_params(format!(
            "parameter {name:?} must be a string"
        ))),
    }
}

fn simulation(devnet: &Devnet, method: &str, params: Value) -> Result<Value, RpcFailure> {
    if !matches!(params, Value::Null | Value::Object(_) | Value::Array(_)) {
        return Err(RpcFailure::invalid_params(
            "params must be an object or an array",
        ));
    }
    match method {
        "transfer" => {
            let from = string_param(&params, "from", 0, true)?.unwrap_or_default();
            let to = string_param(&params, "to", 1, true)?.unwrap_or_default();
            let amount = string_param(&params, "amount", 2, true)?.unwrap_or_default();
            let memo = string_param(&params, "memo", 3, false)?.unwrap_or_default();
            let txid = devnet.submit_transfer(from, to, amount, memo)?;
            Ok(json!({"txid": txid, "simulated": true}))
        }
        "produce_block" => {
            let timestamp = string_param(&params, "timestamp", 0, false)?
                .map(parse_chain_time)
                .transpose()?;
            let block_num = devnet.produce_block(timestamp);
            Ok(json!({"block_num": block_num, "simulated": true}))
        }
        "follow" => {
            let follower = string_param(&params, "follower", 0, true)?.unwrap_or_default();
            let following = string_param(&params, "following", 1, true)?.unwrap_or_default();
            let what = match param(&params, "what", 2) {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| item.as_str().map(str::to_string))
                    .collect::<Option<Vec<String>>>(),
                _ => None,
            }
            .ok_or_else(|| {
                RpcFailure::invalid_params("what must be [], [\"blog\"] or [\"ignore\"]")
            })?;
            devnet.follow(follower, following, &what)?;
            Ok(json!({"simulated": true}))
        }
        "set_keys" => {
            let account = string_param(&params, "account", 0, true)?.unwrap_or_default();
            let keys = sim_authorities(&params)?;
            devnet.set_keys(account, keys)?;
            Ok(json!({"simulated": true}))
        }
        "drop_broadcasts" => {
            let drop = match param(&params, "drop", 0) {
                None => true,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => return Err(RpcFailure::invalid_params("drop must be a boolean")),
            };
            devnet.set_drop_broadcasts(drop);
            Ok(json!({"drop_broadcasts": drop, "simulated": true}))
        }
        "info" => {
            let interval_ms = devnet
                .block_interval()
                .map(|interval| u64::try_from(interval.as_millis()).unwrap_or(u64::MAX));
            Ok(json!({
                "simulated": true,
                "chain": devnet.chain().as_str(),
                "head": devnet.head(),
                "block_interval_ms": interval_ms,
                "max_blocks_kept": super::MAX_BLOCKS,
            }))
        }
        _ => super::policy::simulation(devnet, method, &params)
            .unwrap_or_else(|| Err(RpcFailure::method_not_found(&format!("devnet.{method}")))),
    }
}

/// `[key, …]` (weight 1 each) or `[[key, weight], …]`; absent: empty.
fn weighted_list(params: &Value, name: &str) -> Result<Vec<(String, u16)>, RpcFailure> {
    let bad = || {
        RpcFailure::invalid_params(format!(
            "{name} must be a list of keys or [name, weight] pairs"
        ))
    };
    let Some(list) = param(params, name, usize::MAX) else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = list else {
        return Err(bad());
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(key) => Ok((key.clone(), 1)),
            Value::Array(pair) if pair.len() == 2 => {
                let key = pair[0].as_str().ok_or_else(bad)?;
                let weight = pair[1]
                    .as_u64()
                    .and_then(|w| u16::try_from(w).ok())
                    .ok_or_else(bad)?;
                Ok((key.to_string(), weight))
            }
            _ => Err(bad()),
        })
        .collect()
}

fn threshold(params: &Value, name: &str) -> Result<u32, RpcFailure> {
    match param(params, name, usize::MAX) {
        None => Ok(1),
        Some(value) => value
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| RpcFailure::invalid_params(format!("{name} must be an integer"))),
    }
}

/// The parameters of `devnet.set_keys`.
fn sim_authorities(params: &Value) -> Result<super::SimAuthorities, RpcFailure> {
    Ok(super::SimAuthorities {
        posting: weighted_list(params, "posting")?,
        posting_threshold: threshold(params, "posting_threshold")?,
        posting_account_auths: weighted_list(params, "posting_account_auths")?,
        active: weighted_list(params, "active")?,
        active_threshold: threshold(params, "active_threshold")?,
        active_account_auths: weighted_list(params, "active_account_auths")?,
        memo: string_param(params, "memo", usize::MAX, false)?.map(str::to_string),
    })
}

/// Runs the HTTP server and, when configured, the block producer, until
/// `shutdown` completes.
pub(super) async fn serve(
    devnet: Devnet,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_sender.send(true);
    });
    let producer = devnet
        .block_interval()
        .map(|interval| tokio::spawn(produce_every(devnet.clone(), interval, stop.clone())));
    let mut server_stop = stop.clone();
    let result = axum::serve(listener, router(devnet))
        .with_graceful_shutdown(async move {
            let _ = server_stop.wait_for(|stopped| *stopped).await;
        })
        .await;
    if let Some(producer) = producer {
        producer.abort();
        let _ = producer.await;
    }
    signal.abort();
    result
}

async fn produce_every(
    devnet: Devnet,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // tokio's interval panics on zero.
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                devnet.produce_block(None);
            }
            _ = stop.wait_for(|stopped| *stopped) => break,
        }
    }
}
