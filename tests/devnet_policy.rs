//! The devnet's policy data over real HTTP on loopback: accounts with age,
//! reputation, stake and witness votes, the demo community through
//! `bridge.get_community`/`get_community_context` in the recorded shapes,
//! the runtime changes (`devnet.subscribe`, `set_role`, `set_account`,
//! `witness_vote`), and JSON-RPC errors for bad parameters.
//!
//! Why: the demo and the policy tests decide on these answers through the
//! gateway's own RPC client and `chain::facts`; if the devnet's shapes
//! drifted from a real node's, they would test nothing.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use steemgate::chain::block::rpc_result;
use steemgate::chain::devnet::{
    DEMO_COMMUNITY, DEMO_COMMUNITY_TITLE, Devnet, DevnetError, DevnetOptions, SEEDED_ACCOUNTS,
    set_account_rpc, set_role_rpc, subscribe_rpc, unsubscribe_rpc, witness_vote_rpc,
};
use steemgate::chain::facts::{self, CommunityName, CommunityRole, FactError, Vests};
use steemgate::chain::rpc::RpcClient;
use steemgate::chain::{AccountName, ChainName, RpcError};
use steemgate::clock::now_unix;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const DAY: u64 = 86_400;

struct Running {
    url: url::Url,
    rpc: RpcClient,
    chain: ChainName,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    async fn start(chain: ChainName) -> Self {
        let devnet = Devnet::new(DevnetOptions {
            chain,
            block_interval: None,
            seed: true,
            start_block: 1000,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(devnet.serve(listener, async move {
            let _ = stopped.await;
        }));
        let url = url::Url::parse(&format!("http://{addr}/")).expect("url");
        Running {
            rpc: RpcClient::new(vec![url.clone()], Duration::from_secs(10)),
            url,
            chain,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// One JSON-RPC request; the whole envelope.
    async fn post(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": method, "params": params});
        let response = reqwest::Client::new()
            .post(self.url.clone())
            .json(&body)
            .send()
            .await
            .expect("devnet answers");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON answer")
    }

    async fn result(&self, method: &str, params: Value) -> Value {
        let answer = self.post(method, params).await;
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// The JSON-RPC error of a call that must fail.
    async fn error(&self, method: &str, params: Value) -> Value {
        let answer = self.post(method, params.clone()).await;
        assert!(
            answer.get("result").is_none(),
            "{method} {params}: {answer}"
        );
        answer["error"].clone()
    }

    async fn account(&self, name: &str) -> facts::AccountFacts {
        facts::fetch_account(&self.rpc, &AccountName::parse(name).unwrap())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn community(&self, observer: &str) -> Result<facts::CommunityFacts, FactError> {
        facts::fetch_community(
            &self.rpc,
            self.chain,
            &CommunityName::parse(DEMO_COMMUNITY).unwrap(),
            &AccountName::parse(observer).unwrap(),
        )
        .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let finished = tokio::time::timeout(Duration::from_secs(10), task).await;
            finished
                .expect("server stops on shutdown")
                .expect("server task")
                .expect("server ran without I/O error");
        }
    }
}

fn fixture_result(name: &str) -> Value {
    let text = support::fixture(&format!("chain-policy/{name}"));
    let envelope: Value = serde_json::from_str(&text).expect("fixture is JSON");
    rpc_result(&envelope).expect("fixture has a result").clone()
}

/// The structure of a JSON value: object keys with the shapes of their
/// values, the shape of an array's first element, the type of the rest.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => json!([items.first().map_or(json!("empty"), shape)]),
        Value::String(_) => json!("string"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("integer"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn pick(value: &Value, keys: &[&str]) -> Value {
    Value::Object(
        keys.iter()
            .map(|k| (k.to_string(), value[*k].clone()))
            .collect(),
    )
}

const POLICY_KEYS: [&str; 8] = [
    "created",
    "reputation",
    "vesting_shares",
    "delegated_vesting_shares",
    "received_vesting_shares",
    "witness_votes",
    "witnesses_voted_for",
    "proxy",
];

#[tokio::test]
async fn accounts_carry_policy_facts_in_the_recorded_shape() {
    for (chain, file, recorded) in [
        (
            ChainName::Steem,
            "steem-condenser_api.get_accounts-inertia-2022-07-30.json",
            "inertia",
        ),
        (
            ChainName::Hive,
            "hive-condenser_api.get_accounts-gtg-block5M.json",
            "gtg",
        ),
    ] {
        let net = Running::start(chain).await;
        let answer = net
            .result("condenser_api.get_accounts", json!([["demo"]]))
            .await;
        let recorded_account = fixture_result(file)[0].clone();
        assert_eq!(recorded_account["name"], recorded);
        assert_eq!(
            shape(&pick(&answer[0], &POLICY_KEYS)),
            shape(&pick(&recorded_account, &POLICY_KEYS)),
            "{chain:?}"
        );
        // Reputation as a string, as real nodes send it.
        assert_eq!(answer[0]["reputation"], "2200000000000");

        let now = now_unix();
        let demo = net.account("demo").await;
        assert!((demo.reputation_score() - 55.0).abs() < 0.5);
        let age_days = (now - demo.created) / DAY;
        assert!(
            (729..=731).contains(&age_days),
            "demo is {age_days} days old"
        );
        assert_eq!(
            demo.witness_votes,
            vec![AccountName::parse("devnet-witness").unwrap()]
        );
        let ratio = facts::fetch_vesting_ratio(&net.rpc, chain).await.unwrap();
        let power = ratio.power(demo.effective_vests());
        // 1,084,316 VESTS × 553.34 (Steem) or 549.74 (Hive) per million.
        let expected = match chain {
            ChainName::Steem => 600.0,
            ChainName::Hive => 596.1,
        };
        assert!((power - expected).abs() < 0.5, "{chain:?}: {power}");

        let newbie = net.account("newbie").await;
        assert_eq!(newbie.reputation_score(), 25.0);
        assert!(now - newbie.created <= 2 * DAY + 60);
        assert!(ratio.power(newbie.effective_vests()) < 1.0);
        assert!(net.account("spammer").await.reputation_score() < 25.0);
        let alice = net.account("alice").await;
        assert_eq!(alice.proxy, Some(AccountName::parse("demo").unwrap()));
        assert!(alice.witness_votes.is_empty());
        let bob = net.account("bob").await;
        let carol = net.account("carol").await;
        assert_eq!(bob.delegated_vesting_shares, carol.received_vesting_shares);
        assert!(bob.effective_vests() < bob.vesting_shares);
        for name in SEEDED_ACCOUNTS {
            net.account(name).await;
        }
        net.stop().await;
    }
}

#[tokio::test]
async fn global_properties_carry_the_recorded_vesting_ratio() {
    for (chain, file) in [
        (
            ChainName::Steem,
            "steem-condenser_api.get_dynamic_global_properties-2022-07-30.json",
        ),
        (
            ChainName::Hive,
            "hive-condenser_api.get_dynamic_global_properties-2022-07-30.json",
        ),
    ] {
        let net = Running::start(chain).await;
        let served = facts::fetch_vesting_ratio(&net.rpc, chain).await.unwrap();
        let recorded = facts::decode_vesting_ratio(&fixture_result(file), chain).unwrap();
        assert_eq!(served, recorded);
        net.stop().await;
    }
}

#[tokio::test]
async fn community_answers_in_the_recorded_shape() {
    let net = Running::start(ChainName::Hive).await;
    let served = net
        .result(
            "bridge.get_community",
            json!({"name": DEMO_COMMUNITY, "observer": "bob"}),
        )
        .await;
    let recorded = fixture_result("hive-bridge.get_community-hive-117600-observer-owner.json");
    assert_eq!(shape(&served), shape(&recorded));
    assert_eq!(served["title"], DEMO_COMMUNITY_TITLE);
    assert_eq!(
        served["context"],
        json!({"role": "mod", "subscribed": true, "title": ""})
    );
    assert_eq!(served["subscribers"], 3);
    assert_eq!(
        served["team"],
        json!([
            ["gate-demo", "owner", ""],
            ["alice", "admin", "Founder"],
            ["bob", "mod", ""]
        ])
    );
    // hivemind writes the creation time with a space.
    let created = served["created_at"].as_str().unwrap();
    assert_eq!(created.as_bytes()[10], b' ');
    facts::parse_chain_time(created).unwrap();

    // Positional params as well; without an observer the context is empty.
    let anonymous = net
        .result("bridge.get_community", json!([DEMO_COMMUNITY]))
        .await;
    assert_eq!(anonymous["context"], json!({}));

    let context = net
        .result(
            "bridge.get_community_context",
            json!({"name": DEMO_COMMUNITY, "account": "alice"}),
        )
        .await;
    let recorded =
        fixture_result("hive-bridge.get_community_context-hive-135485-admin-with-title.json");
    assert_eq!(shape(&context), shape(&recorded));
    assert_eq!(
        context,
        json!({"role": "admin", "subscribed": true, "title": "Founder"})
    );
    let demo = facts::decode_community_context(
        &net.result(
            "bridge.get_community_context",
            json!({"name": DEMO_COMMUNITY, "account": "demo"}),
        )
        .await,
    )
    .unwrap();
    assert_eq!((demo.role, demo.subscribed), (CommunityRole::Guest, false));
    net.stop().await;
}

#[tokio::test]
async fn subscribing_and_roles_show_in_the_next_answer() {
    for chain in [ChainName::Steem, ChainName::Hive] {
        let net = Running::start(chain).await;
        let before = net.community("demo").await.unwrap();
        assert_eq!(before.title, DEMO_COMMUNITY_TITLE);
        assert_eq!(
            (before.role, before.subscribed),
            (CommunityRole::Guest, false)
        );

        subscribe_rpc(&net.url, "demo", DEMO_COMMUNITY)
            .await
            .unwrap();
        let joined = net.community("demo").await.unwrap();
        assert_eq!(
            (joined.role, joined.subscribed),
            (CommunityRole::Guest, true)
        );
        // Subscribing twice is harmless.
        subscribe_rpc(&net.url, "demo", DEMO_COMMUNITY)
            .await
            .unwrap();

        set_role_rpc(&net.url, DEMO_COMMUNITY, "demo", "member")
            .await
            .unwrap();
        assert_eq!(
            net.community("demo").await.unwrap().role,
            CommunityRole::Member
        );
        unsubscribe_rpc(&net.url, "demo", DEMO_COMMUNITY)
            .await
            .unwrap();
        let left = net.community("demo").await.unwrap();
        assert_eq!((left.role, left.subscribed), (CommunityRole::Member, false));
        set_role_rpc(&net.url, DEMO_COMMUNITY, "carol", "muted")
            .await
            .unwrap();
        assert_eq!(
            net.community("carol").await.unwrap().role,
            CommunityRole::Muted
        );
        set_role_rpc(&net.url, DEMO_COMMUNITY, "demo", "guest")
            .await
            .unwrap();
        assert_eq!(
            net.community("demo").await.unwrap().role,
            CommunityRole::Guest
        );
        net.stop().await;
    }
}

#[tokio::test]
async fn account_facts_and_witness_votes_change_at_runtime() {
    let net = Running::start(ChainName::Steem).await;
    let mut fields = serde_json::Map::new();
    fields.insert("reputation".into(), json!(-5_000_000_000_000i64));
    fields.insert("vesting_shares".into(), json!("10"));
    fields.insert("delegated".into(), json!("20.5 VESTS"));
    fields.insert("received".into(), json!("1.000001"));
    fields.insert("created".into(), json!("2024-01-31T12:00:00"));
    set_account_rpc(&net.url, "demo", fields).await.unwrap();
    let demo = net.account("demo").await;
    assert_eq!(demo.reputation_raw, -5_000_000_000_000);
    assert!(demo.reputation_score() < 0.0);
    assert_eq!(demo.vesting_shares, Vests(10_000_000));
    assert_eq!(demo.delegated_vesting_shares, Vests(20_500_000));
    assert_eq!(demo.received_vesting_shares, Vests(1_000_001));
    assert_eq!(demo.effective_vests(), Vests::ZERO);
    assert_eq!(demo.created, 1_706_702_400);

    witness_vote_rpc(&net.url, "demo", "devnet-witness", false)
        .await
        .unwrap();
    witness_vote_rpc(&net.url, "demo", "alice", true)
        .await
        .unwrap();
    let demo = net.account("demo").await;
    assert_eq!(
        demo.witness_votes,
        vec![AccountName::parse("alice").unwrap()]
    );
    let raw = net
        .result("condenser_api.get_accounts", json!([["demo"]]))
        .await;
    assert_eq!(raw[0]["witnesses_voted_for"], 1);

    // A proxy clears the account's own votes and blocks direct ones.
    let mut fields = serde_json::Map::new();
    fields.insert("proxy".into(), json!("carol"));
    set_account_rpc(&net.url, "demo", fields).await.unwrap();
    let demo = net.account("demo").await;
    assert_eq!(demo.proxy, Some(AccountName::parse("carol").unwrap()));
    assert!(demo.witness_votes.is_empty());
    assert!(matches!(
        witness_vote_rpc(&net.url, "demo", "alice", true).await,
        Err(DevnetError::Rpc { code: -32602, .. })
    ));
    let mut fields = serde_json::Map::new();
    fields.insert("proxy".into(), json!(""));
    set_account_rpc(&net.url, "demo", fields).await.unwrap();
    assert_eq!(net.account("demo").await.proxy, None);
    net.stop().await;
}

#[tokio::test]
async fn unknown_communities_and_bad_parameters_are_json_rpc_errors() {
    for chain in [ChainName::Steem, ChainName::Hive] {
        let net = Running::start(chain).await;
        // Unknown community: the error a hivemind node of that chain gives.
        let error = net
            .error(
                "bridge.get_community",
                json!({"name": "hive-123456", "observer": "demo"}),
            )
            .await;
        let expected = match chain {
            ChainName::Hive => json!({"code": -32602, "message": "Invalid parameters",
                "data": "Community hive-123456 does not exist"}),
            ChainName::Steem => json!({"code": -32000, "message": "Server error",
                "data": "AssertionError: community not found"}),
        };
        assert_eq!(error, expected, "{chain:?}");
        // Through the gateway's client: an error, never a "guest".
        let unknown = facts::fetch_community(
            &net.rpc,
            chain,
            &CommunityName::parse("hive-123456").unwrap(),
            &AccountName::parse("demo").unwrap(),
        )
        .await;
        assert!(
            matches!(unknown, Err(FactError::Rpc(RpcError::Node { .. }))),
            "{unknown:?}"
        );

        let bad: BTreeMap<&str, Value> = BTreeMap::from([
            ("bridge.get_community", json!({"name": "gtg"})),
            (
                "bridge.get_community_context",
                json!({"name": DEMO_COMMUNITY}),
            ),
            ("devnet.subscribe", json!({"account": "demo"})),
            (
                "devnet.unsubscribe",
                json!({"account": "nobody", "community": DEMO_COMMUNITY}),
            ),
            (
                "devnet.set_role",
                json!({"community": DEMO_COMMUNITY, "account": "demo", "role": "boss"}),
            ),
            (
                "devnet.set_account",
                json!({"account": "demo", "reputation": 1.5}),
            ),
            (
                "devnet.witness_vote",
                json!({"account": "demo", "witness": "nobody"}),
            ),
        ]);
        for (method, params) in &bad {
            let error = net.error(method, params.clone()).await;
            assert_eq!(error["code"], -32602, "{method}: {error}");
        }
        for params in [
            json!({"account": "demo", "vesting_shares": "-1"}),
            json!({"account": "demo", "vesting_shares": 5}),
            json!({"account": "demo", "created": "yesterday"}),
            json!({"account": "demo", "proxy": "nobody"}),
            json!({"account": "demo", "stake": "5"}),
            json!(["demo"]),
        ] {
            let error = net.error("devnet.set_account", params.clone()).await;
            assert_eq!(error["code"], -32602, "{params}: {error}");
        }
        let error = net
            .error(
                "devnet.witness_vote",
                json!({"account": "demo", "witness": "alice", "approve": "yes"}),
            )
            .await;
        assert_eq!(error["code"], -32602);
        // Unknown observer: the node refuses (not an empty context).
        let error = net
            .error(
                "bridge.get_community",
                json!({"name": DEMO_COMMUNITY, "observer": "nobody"}),
            )
            .await;
        assert!(error["code"].as_i64().is_some());
        assert_eq!(
            net.error("devnet.no_such_method", json!({})).await["code"],
            -32601
        );
        assert_eq!(
            net.error("bridge.no_such_method", json!({})).await["code"],
            -32601
        );
        // Nothing changed.
        let demo = net.community("demo").await.unwrap();
        assert_eq!((demo.role, demo.subscribed), (CommunityRole::Guest, false));
        net.stop().await;
    }
}
