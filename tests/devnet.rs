//! The devnet over real HTTP on loopback: protocol forms, node-shaped
//! answers (compared with recorded real-node fixtures), the simulation
//! methods and the background producer.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use steemgate::chain::ChainName;
use steemgate::chain::devnet::{Devnet, DevnetOptions, produce_block_rpc, submit_transfer_rpc};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    url: url::Url,
    devnet: Devnet,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    http: reqwest::Client,
}

impl Running {
    async fn start(chain: ChainName, block_interval: Option<Duration>) -> Self {
        let devnet = Devnet::new(DevnetOptions {
            chain,
            block_interval,
            seed: true,
            start_block: 1000,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(devnet.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        let _ = rustls::crypto::ring::default_provider().install_default();
        Running {
            url: url::Url::parse(&format!("http://{addr}/")).expect("url"),
            devnet,
            stop: Some(stop),
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        let response = self
            .http
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .expect("devnet answers");
        assert_eq!(
            response
                .headers()
                .get("x-devnet")
                .and_then(|v| v.to_str().ok()),
            Some("simulated"),
            "every response is labelled as simulated"
        );
        response
    }

    async fn post(&self, body: Value) -> Value {
        let response = self.post_raw(body.to_string()).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON answer")
    }

    /// `condenser_api.METHOD` with positional params; returns the whole envelope.
    async fn call(&self, method: &str, params: Value) -> Value {
        self.post(json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
            .await
    }

    async fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.call(method, params).await;
        assert!(answer.get("error").is_none(), "{method} failed: {answer}");
        assert_eq!(answer["id"], 7);
        answer["result"].clone()
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let finished = tokio::time::timeout(Duration::from_secs(10), task).await;
            let served = finished
                .expect("server stops on shutdown")
                .expect("server task");
            served.expect("server ran without I/O error");
        }
    }
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&support::fixture(&format!("steem-rpc/{name}"))).expect("fixture is JSON")
}

/// The recorded `result` (raw bodies) or the bare value (pattern files).
fn fixture_result(name: &str) -> Value {
    let value = fixture(name);
    match value.get("result") {
        Some(result) if value.get("jsonrpc").is_some() => result.clone(),
        _ => value,
    }
}

fn keys(value: &Value) -> BTreeSet<String> {
    value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn dynamic_global_properties_and_head_advance() {
    let net = Running::start(ChainName::Steem, None).await;
    let props = net
        .result("condenser_api.get_dynamic_global_properties", json!([]))
        .await;
    assert_eq!(props["head_block_number"], 1000);
    assert_eq!(props["current_witness"], "devnet-witness");
    let head_id = props["head_block_id"].as_str().expect("head_block_id");
    assert_eq!(head_id.len(), 40);
    assert!(
        head_id.starts_with("000003e8"),
        "the id starts with the block number: {head_id}"
    );
    assert!(props["last_irreversible_block_num"].as_u64().expect("lib") < 1000);
    assert!(
        props["virtual_supply"]
            .as_str()
            .expect("supply")
            .ends_with(" STEEM")
    );

    let produced = net.result("devnet.produce_block", json!({})).await;
    assert_eq!(produced["block_num"], 1001);
    let props = net
        .result("condenser_api.get_dynamic_global_properties", json!([]))
        .await;
    assert_eq!(props["head_block_number"], 1001);
    assert_eq!(net.devnet.head(), 1001);
    let info = net.result("devnet.info", json!([])).await;
    assert_eq!(
        info,
        json!({"simulated": true, "chain": "steem", "head": 1001, "block_interval_ms": null, "max_blocks_kept": 100000})
    );
    net.stop().await;
}

#[tokio::test]
async fn transfer_lands_in_the_next_block() {
    let net = Running::start(ChainName::Steem, None).await;
    let submitted = net
        .result(
            "devnet.transfer",
            json!({"from": "demo", "to": "gate-demo", "amount": "0.001 STEEM", "memo": "steemgate:abc123 ❗"}),
        )
        .await;
    assert_eq!(submitted["simulated"], true);
    let txid = submitted["txid"].as_str().expect("txid").to_string();
    assert_eq!(txid.len(), 40);
    // Still pending: the current head does not hold it.
    let head = net.result("condenser_api.get_block", json!([1000])).await;
    assert_eq!(head["transactions"], json!([]));

    let number = net.result("devnet.produce_block", json!([])).await["block_num"]
        .as_u64()
        .expect("number");
    let block = net.result("condenser_api.get_block", json!([number])).await;
    assert_eq!(block["transaction_ids"], json!([txid]));
    assert_eq!(block["previous"], head["block_id"], "blocks link");
    let tx = &block["transactions"][0];
    assert_eq!(tx["transaction_id"], txid.as_str());
    assert_eq!(tx["block_num"], number);
    assert_eq!(
        tx["operations"],
        json!([["transfer", {"from": "demo", "to": "gate-demo", "amount": "0.001 STEEM", "memo": "steemgate:abc123 ❗"}]])
    );
    // get_ops_in_block lists the same transfer, then the virtual reward.
    let ops = net
        .result("condenser_api.get_ops_in_block", json!([number, false]))
        .await;
    assert_eq!(ops[0]["trx_id"], txid.as_str());
    assert_eq!(ops[0]["op"][1]["memo"], "steemgate:abc123 ❗");
    assert_eq!(ops[0]["virtual_op"], 0);
    let virtual_only = net
        .result("condenser_api.get_ops_in_block", json!([number, true]))
        .await;
    assert!(
        virtual_only
            .as_array()
            .expect("ops")
            .iter()
            .all(|op| op["virtual_op"] == 1)
    );
    // The next block is empty again.
    let next = net.result("devnet.produce_block", json!([])).await["block_num"]
        .as_u64()
        .expect("number");
    assert_eq!(
        net.result("condenser_api.get_block", json!([next])).await["transaction_ids"],
        json!([])
    );
    net.stop().await;
}

#[tokio::test]
async fn invalid_transfers_are_refused_with_a_json_rpc_error() {
    let net = Running::start(ChainName::Steem, None).await;
    for params in [
        json!({"from": "x", "to": "gate-demo", "amount": "0.001 STEEM"}),
        json!({"from": "demo", "to": "gate-demo", "amount": "0.001 HIVE"}),
        json!({"from": "demo", "to": "gate-demo", "amount": "1 STEEM"}),
        json!({"from": "demo", "to": "gate-demo"}),
        json!(["demo", "gate-demo", 5]),
    ] {
        let answer = net.call("devnet.transfer", params.clone()).await;
        assert_eq!(answer["error"]["code"], -32602, "{params} → {answer}");
    }
    // Positional form, and an unknown sender becomes an account.
    let ok = net
        .result(
            "devnet.transfer",
            json!(["newcomer", "gate-demo", "0.002 SBD", "m"]),
        )
        .await;
    assert!(ok["txid"].is_string());
    let accounts = net
        .result("condenser_api.get_accounts", json!([["newcomer"]]))
        .await;
    assert_eq!(accounts[0]["name"], "newcomer");
    net.stop().await;
}

#[tokio::test]
async fn call_form_and_batches_answer_with_matching_ids() {
    let net = Running::start(ChainName::Steem, None).await;
    let answer = net
        .post(json!({"jsonrpc": "2.0", "id": 3, "method": "call", "params": ["condenser_api", "get_block", [1000]]}))
        .await;
    assert_eq!(answer["id"], 3);
    assert!(
        answer["result"]["block_id"]
            .as_str()
            .expect("block")
            .starts_with("000003e8")
    );

    let batch = net
        .post(json!([
            {"jsonrpc": "2.0", "id": "a", "method": "condenser_api.get_dynamic_global_properties", "params": []},
            {"jsonrpc": "2.0", "id": 11, "method": "call", "params": ["condenser_api", "get_accounts", [["alice"]]]},
            {"jsonrpc": "2.0", "id": 12, "method": "condenser_api.no_such_method", "params": []},
        ]))
        .await;
    let batch = batch.as_array().expect("batch answer is an array");
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0]["id"], "a");
    assert_eq!(batch[0]["result"]["head_block_number"], 1000);
    assert_eq!(batch[1]["id"], 11);
    assert_eq!(batch[1]["result"][0]["name"], "alice");
    assert_eq!(batch[2]["id"], 12);
    assert_eq!(batch[2]["error"]["code"], -32601);
    net.stop().await;
}

#[tokio::test]
async fn future_and_forgotten_blocks_are_null() {
    let net = Running::start(ChainName::Steem, None).await;
    assert_eq!(
        fixture_result("hive-condenser_get_block-non_existing-null.json"),
        Value::Null
    );
    assert_eq!(
        net.result("condenser_api.get_block", json!([1001])).await,
        Value::Null
    );
    assert_eq!(
        net.result("condenser_api.get_block", json!([1_000_000_000]))
            .await,
        Value::Null
    );
    assert_eq!(
        net.result("condenser_api.get_block", json!([0])).await,
        Value::Null
    );
    assert_eq!(
        net.result("condenser_api.get_block", json!([-1])).await,
        Value::Null
    );
    assert_eq!(
        net.result("condenser_api.get_ops_in_block", json!([1001, false]))
            .await,
        json!([])
    );
    // Pre-history below start_block is served (empty) so a follower can start behind the head.
    let earlier = net.result("condenser_api.get_block", json!([998])).await;
    let start = net.result("condenser_api.get_block", json!([999])).await;
    assert_eq!(start["previous"], earlier["block_id"]);
    assert_eq!(earlier["transactions"], json!([]));
    // A wrong argument count is the steemd assertion, not a crash.
    let wrong = net.call("condenser_api.get_block", json!([])).await;
    assert_eq!(wrong["error"]["code"], -32003);
    let recorded = fixture("steem-error-condenser_get_block-no-params.json");
    assert_eq!(wrong["error"]["code"], recorded["error"]["code"]);
    net.stop().await;
}

/// Pages through `get_following` like a careful client: each page starts at
/// the last name of the previous one, and the repeated start is dropped.
async fn all_following(net: &Running, account: &str, limit: u64) -> (Vec<String>, usize) {
    let mut names: Vec<String> = Vec::new();
    let mut pages = 0;
    let mut start = Value::Null;
    loop {
        let page = net
            .result(
                "condenser_api.get_following",
                json!([account, start, "blog", limit]),
            )
            .await;
        pages += 1;
        let page = page.as_array().expect("page").clone();
        let mut fresh = 0;
        for entry in &page {
            assert_eq!(entry["follower"], account);
            assert_eq!(entry["what"], json!(["blog"]));
            let name = entry["following"].as_str().expect("following").to_string();
            if names.last() == Some(&name) {
                continue;
            }
            names.push(name);
            fresh += 1;
        }
        if fresh == 0 || (page.len() as u64) < limit {
            return (names, pages);
        }
        start = json!(names.last().expect("a name"));
    }
}

#[tokio::test]
async fn following_pages_over_the_seeded_demo_account() {
    let net = Running::start(ChainName::Steem, None).await;
    let first = net
        .result(
            "condenser_api.get_following",
            json!(["demo", null, "blog", 1000]),
        )
        .await;
    let first = first.as_array().expect("page");
    assert_eq!(first.len(), 1000);
    // On Steem the start account is included.
    let last = first[999]["following"].clone();
    let second = net
        .result(
            "condenser_api.get_following",
            json!(["demo", last, "blog", 5]),
        )
        .await;
    assert_eq!(second[0]["following"], last);

    let (names, pages) = all_following(&net, "demo", 1000).await;
    assert_eq!(names.len(), 3000);
    assert!(pages >= 3);
    let unique: BTreeSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "every name exactly once");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "alphabetical");
    let (small_pages, _) = all_following(&net, "demo", 333).await;
    assert_eq!(small_pages, names);

    let over = net
        .call(
            "condenser_api.get_following",
            json!(["demo", null, "blog", 1001]),
        )
        .await;
    let recorded = fixture("hive-error-condenser_get_following-limit-1001.json");
    assert_eq!(over["error"]["code"], recorded["code"]);
    assert_eq!(over["error"]["message"], recorded["message"]);
    assert_eq!(keys(&over["error"]["data"]), keys(&recorded["data"]));
    let zero = net
        .call(
            "condenser_api.get_following",
            json!(["demo", null, "blog", 0]),
        )
        .await;
    assert_eq!(zero["error"]["code"], -32602);
    let missing = net.call("condenser_api.get_following", json!([])).await;
    let recorded = fixture("steem-error-condenser_get_following-no-params.json");
    assert_eq!(missing["error"], recorded["error"]);
    net.stop().await;
}

#[tokio::test]
async fn hive_devnet_uses_hive_symbols_and_exclusive_following_start() {
    let net = Running::start(ChainName::Hive, None).await;
    let page = net
        .result(
            "condenser_api.get_following",
            json!(["demo", null, "blog", 10]),
        )
        .await;
    let tenth = page[9]["following"].clone();
    let next = net
        .result(
            "condenser_api.get_following",
            json!(["demo", tenth, "blog", 10]),
        )
        .await;
    assert_ne!(
        next[0]["following"], tenth,
        "Hive's hivemind excludes the start account"
    );
    let (names, _) = all_following(&net, "demo", 1000).await;
    assert_eq!(names.len(), 3000);

    let txid = net
        .result(
            "devnet.transfer",
            json!(["demo", "gate-demo", "0.001 HIVE", "hi"]),
        )
        .await["txid"]
        .clone();
    let number = net.result("devnet.produce_block", json!([])).await["block_num"].clone();
    let block = net.result("condenser_api.get_block", json!([number])).await;
    assert_eq!(block["transaction_ids"], json!([txid]));
    assert_eq!(
        block["transactions"][0]["operations"][0][1]["amount"],
        "0.001 HIVE"
    );
    let ops = net
        .result("condenser_api.get_ops_in_block", json!([number, false]))
        .await;
    assert_eq!(
        ops[0]["virtual_op"], false,
        "Hive writes virtual_op as a boolean"
    );
    // Pre-fork names are read as Hive's (the shared Amount rules) and written as HIVE/HBD.
    net.result(
        "devnet.transfer",
        json!(["demo", "gate-demo", "0.002 SBD", ""]),
    )
    .await;
    let number = net.result("devnet.produce_block", json!([])).await["block_num"].clone();
    let block = net.result("condenser_api.get_block", json!([number])).await;
    assert_eq!(
        block["transactions"][0]["operations"][0][1]["amount"],
        "0.002 HBD"
    );
    let refused = net
        .call(
            "devnet.transfer",
            json!(["demo", "gate-demo", "0.001 EOS", ""]),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602);
    let accounts = net
        .result("condenser_api.get_accounts", json!([["demo"]]))
        .await;
    assert!(
        accounts[0]["hbd_balance"]
            .as_str()
            .expect("hbd")
            .ends_with(" HBD")
    );
    net.stop().await;
}

#[tokio::test]
async fn get_accounts_omits_unknown_names() {
    let net = Running::start(ChainName::Steem, None).await;
    let accounts = net
        .result(
            "condenser_api.get_accounts",
            json!([[
                "alice",
                "not.existing.account",
                "carol",
                "Alice",
                "gate-demo",
                "demo",
                "bob"
            ]]),
        )
        .await;
    let names: Vec<&str> = accounts
        .as_array()
        .expect("list")
        .iter()
        .map(|a| a["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alice", "carol", "gate-demo", "demo", "bob"]);
    assert_eq!(
        accounts[1]["last_post"], "1970-01-01T00:00:00",
        "carol never posted"
    );
    assert_ne!(
        accounts[4]["last_post"], accounts[4]["last_root_post"],
        "bob replies but does not root-post"
    );
    assert!(
        accounts[0]["balance"]
            .as_str()
            .expect("balance")
            .ends_with(" STEEM")
    );
    assert!(
        accounts[0]["sbd_balance"]
            .as_str()
            .expect("sbd")
            .ends_with(" SBD")
    );
    let bad = net
        .call("condenser_api.get_accounts", json!([[1, 2]]))
        .await;
    assert_eq!(bad["error"]["code"], -32602);
    net.stop().await;
}

#[tokio::test]
async fn protocol_errors_are_json_rpc_errors_not_crashes() {
    let net = Running::start(ChainName::Steem, None).await;
    let unknown = net
        .call("condenser_api.get_witness_schedule_of_mars", json!([]))
        .await;
    assert_eq!(unknown["error"]["code"], -32601);
    assert_eq!(unknown["id"], 7);
    let other_api = net
        .call("database_api.get_dynamic_global_properties", json!({}))
        .await;
    assert_eq!(other_api["error"]["code"], -32601);

    for body in ["{not json", "", "[1,", "\u{0}"] {
        let response = net.post_raw(body).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.expect("JSON error");
        assert_eq!(answer["error"]["code"], -32700, "{body:?} → {answer}");
        assert_eq!(answer["id"], Value::Null);
    }
    for (body, code) in [
        (json!([]), -32600),
        (json!(42), -32600),
        (
            json!({"id": 1, "method": "condenser_api.get_block", "params": [1]}),
            -32600,
        ),
        (json!({"jsonrpc": "2.0", "id": 1, "method": 5}), -32600),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "call", "params": "x"}),
            -32602,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "condenser_api.get_block", "params": {"n": 1}}),
            -32602,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "condenser_api.get_block", "params": ["abc"]}),
            -32602,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "devnet.produce_block", "params": {"timestamp": "tomorrow"}}),
            -32602,
        ),
    ] {
        let answer = net.post(body.clone()).await;
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
    }
    let batch = net
        .post(json!([1, {"jsonrpc": "2.0", "id": 2, "method": "devnet.info"}]))
        .await;
    assert_eq!(batch[0]["error"]["code"], -32600);
    assert_eq!(batch[1]["result"]["simulated"], true);
    net.stop().await;
}

#[tokio::test]
async fn every_response_is_labelled_simulated() {
    let net = Running::start(ChainName::Steem, None).await;
    let page = net.http.get(net.url.clone()).send().await.expect("GET /");
    assert_eq!(
        page.headers().get("x-devnet").and_then(|v| v.to_str().ok()),
        Some("simulated")
    );
    let text = page.text().await.expect("text");
    assert!(text.contains("SIMULATED"));
    assert!(text.contains("devnet.transfer"));
    let missing = net
        .http
        .get(net.url.join("/nope").expect("url"))
        .send()
        .await
        .expect("GET /nope");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing
            .headers()
            .get("x-devnet")
            .and_then(|v| v.to_str().ok()),
        Some("simulated")
    );
    let wrong_method = net.http.put(net.url.clone()).send().await.expect("PUT /");
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method
            .headers()
            .get("x-devnet")
            .and_then(|v| v.to_str().ok()),
        Some("simulated")
    );
    // post_raw asserts the header on JSON-RPC answers, errors included.
    net.post_raw("{").await;
    net.stop().await;
}

#[tokio::test]
async fn timestamp_override_places_the_block_in_time() {
    let net = Running::start(ChainName::Steem, None).await;
    let number = net
        .result(
            "devnet.produce_block",
            json!({"timestamp": "2031-01-02T03:04:05"}),
        )
        .await["block_num"]
        .clone();
    let block = net.result("condenser_api.get_block", json!([number])).await;
    assert_eq!(block["timestamp"], "2031-01-02T03:04:05");
    let props = net
        .result("condenser_api.get_dynamic_global_properties", json!([]))
        .await;
    assert_eq!(props["time"], "2031-01-02T03:04:05");
    // Back to the wall clock: never earlier than the block before.
    let next = net.result("devnet.produce_block", json!([])).await["block_num"].clone();
    assert_eq!(
        net.result("condenser_api.get_block", json!([next])).await["timestamp"],
        "2031-01-02T03:04:05"
    );
    // A block in the past, on request.
    let past = net
        .result("devnet.produce_block", json!(["2020-11-08T06:00:33"]))
        .await["block_num"]
        .clone();
    assert_eq!(
        net.result("condenser_api.get_block", json!([past])).await["timestamp"],
        "2020-11-08T06:00:33"
    );
    net.stop().await;
}

#[tokio::test]
async fn background_producer_makes_blocks_and_stops_on_shutdown() {
    let net = Running::start(ChainName::Steem, Some(Duration::from_millis(50))).await;
    let info = net.result("devnet.info", json!([])).await;
    assert_eq!(info["block_interval_ms"], 50);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while net.devnet.head() < 1003 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no blocks produced within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let devnet = net.devnet.clone();
    net.stop().await;
    // The producer stopped with the server: the head no longer moves.
    // Absence of progress needs a wait: 20 intervals (1 s), so a producer
    // that kept running, even slowed down by a busy machine, moves the head.
    let head = devnet.head();
    tokio::time::sleep(Duration::from_millis(20 * 50)).await;
    assert_eq!(devnet.head(), head, "the producer outlived the server");
}

#[tokio::test]
async fn client_helpers_drive_a_running_devnet() {
    let net = Running::start(ChainName::Steem, None).await;
    let txid = submit_transfer_rpc(&net.url, "demo", "gate-demo", "0.001 STEEM", "memo-1")
        .await
        .expect("submitted");
    let number = produce_block_rpc(&net.url).await.expect("produced");
    assert_eq!(number, 1001);
    let block = net.result("condenser_api.get_block", json!([number])).await;
    assert_eq!(block["transaction_ids"], json!([txid]));
    let refused = submit_transfer_rpc(&net.url, "demo", "gate-demo", "0.001 HIVE", "").await;
    assert!(
        matches!(
            refused,
            Err(steemgate::chain::devnet::DevnetError::Rpc { code: -32602, .. })
        ),
        "{refused:?}"
    );
    let url = net.url.clone();
    net.stop().await;
    let unreachable = produce_block_rpc(&url).await;
    assert!(
        matches!(
            unreachable,
            Err(steemgate::chain::devnet::DevnetError::Http(_))
        ),
        "{unreachable:?}"
    );
}

#[tokio::test]
async fn answers_have_the_recorded_top_level_keys() {
    for (chain, block_fixture, props_fixture, account_fixture) in [
        (
            ChainName::Steem,
            "steem-condenser_get_block-48416003-transfer.json",
            "steem-condenser_get_dynamic_global_properties-2020-11-07.json",
            "steem-condenser_get_accounts-inertia-2020-11-07.json",
        ),
        (
            ChainName::Hive,
            "steem-condenser_get_block-48416003-transfer.json",
            "hive-condenser_get_dynamic_global_properties-api.openhive.network-2020-11-07.json",
            "hive-condenser_get_accounts-fullnodeupdate-api.hive.blog-2020-11-07.json",
        ),
    ] {
        let net = Running::start(chain, None).await;
        let symbol = if chain == ChainName::Steem {
            "STEEM"
        } else {
            "HIVE"
        };
        net.result(
            "devnet.transfer",
            json!(["alice", "bob", format!("1.000 {symbol}"), "x"]),
        )
        .await;
        net.result("devnet.produce_block", json!([])).await;

        let recorded_block = fixture_result(block_fixture);
        let block = net.result("condenser_api.get_block", json!([1001])).await;
        assert_eq!(keys(&block), keys(&recorded_block), "{chain:?} get_block");
        assert_eq!(
            keys(&block["transactions"][0]),
            keys(&recorded_block["transactions"][0]),
            "{chain:?} transaction"
        );

        let props = net
            .result("condenser_api.get_dynamic_global_properties", json!([]))
            .await;
        assert_eq!(
            keys(&props),
            keys(&fixture_result(props_fixture)),
            "{chain:?} dynamic global properties"
        );

        let accounts = net
            .result("condenser_api.get_accounts", json!([["alice"]]))
            .await;
        assert_eq!(
            keys(&accounts[0]),
            keys(&fixture_result(account_fixture)[0]),
            "{chain:?} account"
        );

        let ops = net
            .result("condenser_api.get_ops_in_block", json!([1001, false]))
            .await;
        let recorded_ops = fixture_result("hive-condenser_get_ops_in_block-2797050.json");
        assert_eq!(
            keys(&ops[0]),
            keys(&recorded_ops[0]),
            "{chain:?} ops_in_block entry"
        );

        let following = net
            .result(
                "condenser_api.get_following",
                json!(["demo", null, "blog", 1]),
            )
            .await;
        let recorded_following =
            fixture_result("hive-condenser_get_following-gtg-start-stellabelle-2025.json");
        assert_eq!(
            keys(&following[0]),
            keys(&recorded_following[0]),
            "{chain:?} follow entry"
        );
        net.stop().await;
    }
}

/// A transaction of `operations` referencing the devnet's head, valid for
/// ten minutes, signed with `keys` (none: unsigned).
async fn follow_transaction(
    net: &Running,
    operations: Vec<steemgate::chain::crypto::Operation>,
    keys: &[&k256::ecdsa::SigningKey],
) -> Value {
    use steemgate::chain::crypto::{ChainTime, Transaction};
    let props = net
        .result("condenser_api.get_dynamic_global_properties", json!([]))
        .await;
    let (ref_block_num, ref_block_prefix) = steemgate::chain::crypto::serialize::ref_block_from_id(
        props["head_block_id"].as_str().unwrap(),
    )
    .unwrap();
    let head = ChainTime::parse(props["time"].as_str().unwrap()).unwrap();
    let mut tx = Transaction {
        ref_block_num,
        ref_block_prefix,
        expiration: ChainTime(head.0 + 600),
        operations,
        extensions: Vec::new(),
        signatures: Vec::new(),
    };
    let digest = tx.digest(ChainName::Steem).unwrap();
    for key in keys {
        tx.signatures.push(hex::encode(
            steemgate::chain::crypto::signature::sign_compact(key, &digest),
        ));
    }
    serde_json::to_value(&tx).unwrap()
}

fn unfollow(follower: &str, following: &str) -> steemgate::chain::crypto::Operation {
    use steemgate::chain::AccountName;
    steemgate::chain::crypto::Operation::CustomJson(steemgate::chain::follow::unfollow_operation(
        &AccountName::parse(follower).unwrap(),
        &AccountName::parse(following).unwrap(),
    ))
}

async fn following_of(net: &Running, account: &str, kind: &str) -> Vec<String> {
    net.result(
        "condenser_api.get_following",
        json!([account, "", kind, 1000]),
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .map(|entry| {
        assert_eq!(entry["follower"], account);
        assert_eq!(entry["what"], json!([kind]));
        entry["following"].as_str().unwrap().to_string()
    })
    .collect()
}

#[tokio::test]
async fn seeded_follow_graph_has_mutes_followers_and_relationships() {
    let net = Running::start(ChainName::Steem, None).await;
    // bob mutes carol: listed only as "ignore", in the node's shape.
    let mutes = net
        .result(
            "condenser_api.get_following",
            json!(["bob", null, "ignore", 10]),
        )
        .await;
    assert_eq!(
        mutes,
        json!([{"follower": "bob", "following": "carol", "what": ["ignore"]}])
    );
    assert_eq!(following_of(&net, "bob", "blog").await, vec!["alice"]);
    let muted_by = net
        .result(
            "condenser_api.get_followers",
            json!(["carol", null, "ignore", 10]),
        )
        .await;
    assert_eq!(
        muted_by,
        json!([{"follower": "bob", "following": "carol", "what": ["ignore"]}])
    );
    // alice follows demo; get_followers of demo lists her, alphabetical by
    // follower, and named parameters (as hivemind takes them) work too.
    let followers = net
        .result(
            "condenser_api.get_followers",
            json!({"account": "demo", "start": null, "follow_type": "blog", "limit": 10}),
        )
        .await;
    assert_eq!(
        followers,
        json!([{"follower": "alice", "following": "demo", "what": ["blog"]}])
    );
    // Steem includes the start account; Hive excludes it (checked below).
    let from_bob = net
        .result(
            "condenser_api.get_followers",
            json!(["alice", "bob", "blog", 10]),
        )
        .await;
    let names: Vec<&str> = from_bob
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["follower"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["bob", "carol"]);
    // The relationship answers carry exactly the recorded Hive keys.
    let recorded: Vec<Value> = ["none", "follows", "ignores"]
        .iter()
        .map(|kind| {
            fixture_result(&format!(
                "hive-bridge.get_relationship_between_accounts-{kind}.json"
            ))
        })
        .collect();
    for (a, b, follows, ignores) in [
        ("alice", "demo", true, false),
        ("demo", "alice", false, false),
        ("bob", "carol", false, true),
        ("carol", "bob", false, false),
    ] {
        let answer = net
            .result("bridge.get_relationship_between_accounts", json!([a, b]))
            .await;
        assert_eq!(answer["follows"], follows, "{a} follows {b}");
        assert_eq!(answer["ignores"], ignores, "{a} ignores {b}");
        let shape = match (follows, ignores) {
            (true, _) => &recorded[1],
            (_, true) => &recorded[2],
            _ => &recorded[0],
        };
        assert_eq!(&answer, shape, "{a} -> {b} as the recorded answer");
    }
    let named = net
        .result(
            "bridge.get_relationship_between_accounts",
            json!({"account1": "alice", "account2": "demo"}),
        )
        .await;
    assert_eq!(named["follows"], true);
    let bad = net
        .call(
            "bridge.get_relationship_between_accounts",
            json!(["alice", "NOT OK"]),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    let bad_type = net
        .call(
            "condenser_api.get_followers",
            json!(["demo", null, "feed", 10]),
        )
        .await;
    assert_eq!(bad_type["error"]["code"], -32602, "{bad_type}");
    net.stop().await;

    let hive = Running::start(ChainName::Hive, None).await;
    let from_bob = hive
        .result(
            "condenser_api.get_followers",
            json!(["alice", "bob", "blog", 10]),
        )
        .await;
    assert_eq!(from_bob.as_array().unwrap().len(), 1, "{from_bob}");
    assert_eq!(from_bob[0]["follower"], "carol");
    hive.stop().await;
}

#[tokio::test]
async fn broadcast_follow_operations_apply_when_the_block_is_produced() {
    let net = Running::start(ChainName::Steem, None).await;
    let before = following_of(&net, "demo", "blog").await;
    assert_eq!(before.len(), 1000, "first page of the 3,000 seeded follows");
    let (first, second) = (before[0].clone(), before[1].clone());
    let tx = follow_transaction(
        &net,
        vec![unfollow("demo", &first), unfollow("demo", &second)],
        &[],
    )
    .await;
    let answer = net
        .result("condenser_api.broadcast_transaction", json!([tx]))
        .await;
    assert_eq!(answer, json!({}));
    // Nothing changes before the block.
    assert_eq!(following_of(&net, "demo", "blog").await[0], first);
    net.result("devnet.produce_block", json!({})).await;
    let after = following_of(&net, "demo", "blog").await;
    assert!(!after.contains(&first) && !after.contains(&second));
    assert_eq!(after[0], before[2]);
    let relation = net
        .result(
            "bridge.get_relationship_between_accounts",
            json!(["demo", first]),
        )
        .await;
    assert_eq!(relation["follows"], false);

    // At most 5 custom_json of one account per block, as on Hive: a
    // sixth waits for the next block.
    let six: Vec<_> = before[2..8]
        .iter()
        .map(|name| unfollow("demo", name))
        .collect();
    let tx = follow_transaction(&net, six, &[]).await;
    let too_many = net
        .call("condenser_api.broadcast_transaction", json!([tx]))
        .await;
    assert_eq!(too_many["error"]["code"], -32003, "{too_many}");
    assert!(
        too_many["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 5"),
        "{too_many}"
    );
    net.result("devnet.produce_block", json!({})).await;
    assert_eq!(following_of(&net, "demo", "blog").await[0], before[2]);

    // devnet.follow (the CLI's method): mute, then follow again.
    net.result(
        "devnet.follow",
        json!({"follower": "demo", "following": first, "what": ["ignore"]}),
    )
    .await;
    net.result("devnet.produce_block", json!({})).await;
    assert_eq!(
        following_of(&net, "demo", "ignore").await,
        vec![first.clone()]
    );
    steemgate::chain::devnet::follow_rpc(&net.url, "demo", &first, &["blog".to_string()])
        .await
        .expect("follow_rpc");
    produce_block_rpc(&net.url).await.expect("block");
    assert_eq!(following_of(&net, "demo", "blog").await[0], first);
    assert!(following_of(&net, "demo", "ignore").await.is_empty());
    let refused = net
        .call(
            "devnet.follow",
            json!({"follower": "demo", "following": "demo", "what": []}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let refused = net
        .call(
            "devnet.follow",
            json!({"follower": "demo", "following": "alice", "what": ["blog", "ignore"]}),
        )
        .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    net.stop().await;
}

#[tokio::test]
async fn follow_broadcasts_need_the_followers_posting_authority() {
    let net = Running::start(ChainName::Steem, None).await;
    let posting = support::wallet::key_from("alice/posting");
    let active = support::wallet::key_from("alice/active");
    net.result(
        "devnet.set_keys",
        json!({"account": "alice", "posting": [support::wallet::stm(&posting)], "active": [support::wallet::stm(&active)]}),
    )
    .await;
    // Refused as steemd refuses: an assert exception naming the reason.
    let refused = |answer: &Value| {
        assert_eq!(answer["error"]["code"], -32003, "{answer}");
        answer["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    // Unsigned, signed with the active key, or naming another account as
    // the posting authority: refused, and nothing is applied.
    let unsigned = follow_transaction(&net, vec![unfollow("alice", "bob")], &[]).await;
    let why = refused(
        &net.call("condenser_api.broadcast_transaction", json!([unsigned]))
            .await,
    );
    assert!(why.contains("posting authority"), "{why}");
    let wrong_key = follow_transaction(&net, vec![unfollow("alice", "bob")], &[&active]).await;
    refused(
        &net.call("condenser_api.broadcast_transaction", json!([wrong_key]))
            .await,
    );
    let mut forged = follow_transaction(&net, vec![unfollow("alice", "bob")], &[&posting]).await;
    forged["operations"][0][1]["required_posting_auths"] = json!(["bob"]);
    refused(
        &net.call("condenser_api.broadcast_transaction", json!([forged]))
            .await,
    );
    // A transfer and a non-follow custom_json are refused as a whole.
    let mut other_id = follow_transaction(&net, vec![unfollow("alice", "bob")], &[&posting]).await;
    other_id["operations"][0][1]["id"] = json!("notify");
    refused(
        &net.call("condenser_api.broadcast_transaction", json!([other_id]))
            .await,
    );
    net.result("devnet.produce_block", json!({})).await;
    assert!(
        following_of(&net, "alice", "blog")
            .await
            .contains(&"bob".to_string())
    );
    // Signed with the posting key: applied in the next block.
    let signed = follow_transaction(&net, vec![unfollow("alice", "bob")], &[&posting]).await;
    net.result("condenser_api.broadcast_transaction", json!([signed]))
        .await;
    net.result("devnet.produce_block", json!({})).await;
    assert!(
        !following_of(&net, "alice", "blog")
            .await
            .contains(&"bob".to_string())
    );
    net.stop().await;
}
