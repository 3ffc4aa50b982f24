//! The policy engine over a scripted node: every condition against real
//! recorded answers (tests/fixtures/chain-policy), `all`/`any`/`not`, the
//! cache (hits make no call, concurrent first requests share one read),
//! freshness after the ttl, `forget`, and every fault failing closed
//! (node error, garbage, a node that hangs, an unknown community), with
//! the last decision served only while younger than `max_stale`.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use steemgate::chain::facts::{CommunityName, CommunityRole};
use steemgate::chain::{AccountName, ChainName, RpcCall, RpcError};
use steemgate::config::{Condition, Policy, PolicyCacheConfig};
use steemgate::policy::{Outcome, PolicyEngine, PolicyMetrics, Verdict};

/// How the scripted node misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// Every call: a JSON-RPC error.
    NodeError,
    /// Every call: no node answered.
    Unavailable,
    /// Every call answers a string instead of the object.
    Garbage,
    /// Never answers.
    Hang,
}

/// A node whose answers tests set per method and key.
struct ScriptedNode {
    /// `method` + `|` + key (account, `observer>account`, community) → result.
    answers: Mutex<HashMap<String, Value>>,
    fault: Mutex<Fault>,
    delay: Mutex<Duration>,
    calls: AtomicUsize,
}

impl ScriptedNode {
    fn new() -> Arc<Self> {
        let node = Arc::new(Self {
            answers: Mutex::new(HashMap::new()),
            fault: Mutex::new(Fault::None),
            delay: Mutex::new(Duration::ZERO),
            calls: AtomicUsize::new(0),
        });
        node.set(
            "condenser_api.get_dynamic_global_properties",
            "",
            recorded("steem-condenser_api.get_dynamic_global_properties-2022-07-30.json"),
        );
        node
    }

    fn set(&self, method: &str, key: &str, result: Value) {
        self.answers
            .lock()
            .unwrap()
            .insert(format!("{method}|{key}"), result);
    }

    /// The account `name`: the recorded inertia account renamed, with `edit`.
    fn account(&self, name: &str, edit: impl FnOnce(&mut Value)) {
        let mut account =
            recorded("steem-condenser_api.get_accounts-inertia-2022-07-30.json")[0].clone();
        account["name"] = json!(name);
        edit(&mut account);
        self.set("condenser_api.get_accounts", name, json!([account]));
    }

    /// Steem's `bridge.get_profile {account, observer}`: observer → account.
    fn relation(&self, observer: &str, account: &str, followed: bool, muted: bool) {
        let mut context = json!({"followed": followed});
        if muted {
            context["muted"] = json!(true);
        }
        self.set(
            "bridge.get_profile",
            &format!("{observer}>{account}"),
            json!({"name": account, "context": context, "id": 1}),
        );
    }

    fn community(&self, name: &str, observer: &str, role: &str, subscribed: bool) {
        self.set(
            "bridge.get_community",
            &format!("{name}>{observer}"),
            json!({"name": name, "title": "Quiet Readers", "id": 7,
                   "context": {"role": role, "subscribed": subscribed, "title": ""}}),
        );
    }

    fn fault(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn recorded(file: &str) -> Value {
    let text = support::fixture(&format!("chain-policy/{file}"));
    serde_json::from_str::<Value>(&text).unwrap()["result"].clone()
}

fn key_of(method: &str, params: &Value) -> String {
    match method {
        "condenser_api.get_accounts" => params[0][0].as_str().unwrap_or("").to_string(),
        "bridge.get_profile" => format!(
            "{}>{}",
            params["observer"].as_str().unwrap_or(""),
            params["account"].as_str().unwrap_or("")
        ),
        "bridge.get_community" => format!(
            "{}>{}",
            params["name"].as_str().unwrap_or(""),
            params["observer"].as_str().unwrap_or("")
        ),
        _ => String::new(),
    }
}

#[async_trait::async_trait]
impl RpcCall for ScriptedNode {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let fault = *self.fault.lock().unwrap();
        match fault {
            Fault::None => {}
            Fault::NodeError => {
                return Err(RpcError::Node {
                    code: -32603,
                    message: "Internal Error".into(),
                });
            }
            Fault::Unavailable => return Err(RpcError::Unavailable("connection refused".into())),
            Fault::Garbage => return Ok(json!("<html>502 Bad Gateway</html>")),
            Fault::Hang => std::future::pending::<()>().await,
        }
        let key = format!("{method}|{}", key_of(method, &params));
        match self.answers.lock().unwrap().get(&key) {
            Some(result) => Ok(result.clone()),
            // What hivemind answers for an unknown community / profile.
            None if method.starts_with("bridge.") => Ok(Value::Null),
            None => Ok(json!([])),
        }
    }
}

fn account(name: &str) -> AccountName {
    AccountName::parse(name).unwrap()
}

fn community(name: &str) -> CommunityName {
    CommunityName::parse(name).unwrap()
}

fn policy(name: &str, condition: Condition) -> Arc<Policy> {
    Arc::new(Policy {
        name: Arc::from(name),
        condition,
    })
}

/// Subscribers of (or role holders in) hive-100001.
fn members() -> Arc<Policy> {
    policy(
        "members",
        Condition::Community {
            name: community("hive-100001"),
            role: None,
        },
    )
}

fn settings(ttl_ms: u64, max_stale_ms: u64) -> PolicyCacheConfig {
    PolicyCacheConfig {
        ttl: Duration::from_millis(ttl_ms),
        max_stale: Duration::from_millis(max_stale_ms),
        timeout: Duration::from_millis(500),
    }
}

fn engine(
    node: &Arc<ScriptedNode>,
    policies: &[Arc<Policy>],
    settings: PolicyCacheConfig,
) -> PolicyEngine {
    engine_on(ChainName::Steem, node, policies, settings)
}

fn engine_on(
    chain: ChainName,
    node: &Arc<ScriptedNode>,
    policies: &[Arc<Policy>],
    settings: PolicyCacheConfig,
) -> PolicyEngine {
    PolicyEngine::new(
        chain,
        node.clone(),
        policies,
        settings,
        PolicyMetrics::new(),
    )
}

const LONG: PolicyCacheConfig = PolicyCacheConfig {
    ttl: Duration::from_secs(600),
    max_stale: Duration::from_secs(3600),
    timeout: Duration::from_millis(500),
};

/// The verdict, failing the test if the engine could not decide.
async fn verdict(engine: &PolicyEngine, visitor: &str, policy: &str) -> Verdict {
    match engine.decide(visitor, policy).await {
        Outcome::Decided(decision) => decision.verdict.clone(),
        Outcome::Undecidable { why, .. } => panic!("{policy} for {visitor} undecidable: {why}"),
    }
}

fn failures(verdict: Verdict) -> Vec<Value> {
    match verdict {
        Verdict::Pass => panic!("expected a failure"),
        Verdict::Fail(failures) => failures
            .iter()
            .map(|f| serde_json::to_value(f).unwrap())
            .collect(),
    }
}

#[tokio::test]
async fn reputation_stake_and_age_come_from_the_recorded_account() {
    // inertia (Steem, 2022-07-30): raw reputation "227525885010794" → 73.21;
    // 117295.640891 own − 93867.151911 delegated + 2035812.208844 received
    // = 2059240.697824 VESTS × 157102910.021 STEEM / 283918139943.616774
    // VESTS = 1139.457 SP; created 2016-07-13.
    let node = ScriptedNode::new();
    node.account("bob", |_| {});
    let all = |rep: f64, stake: f64, days: u64| {
        Condition::All(vec![
            Condition::Reputation(rep),
            Condition::Stake(stake),
            Condition::AccountAge(Duration::from_secs(days * 86_400)),
        ])
    };
    let policies = [
        policy("pass", all(73.0, 1139.0, 3000)),
        policy("rep", all(73.5, 1139.0, 3000)),
        policy("stake", all(73.0, 1140.0, 3000)),
        policy("age", all(73.0, 1139.0, 40_000)),
    ];
    let engine = engine(&node, &policies, LONG);
    assert_eq!(verdict(&engine, "bob", "pass").await, Verdict::Pass);

    let rep = failures(verdict(&engine, "bob", "rep").await);
    assert_eq!(rep.len(), 1, "{rep:?}");
    assert_eq!(rep[0]["condition"], "reputation");
    assert_eq!(rep[0]["need"], json!(73.5));
    assert_eq!(rep[0]["have"], json!(73.21));

    let stake = failures(verdict(&engine, "bob", "stake").await);
    assert_eq!(stake[0]["condition"], "stake");
    assert_eq!(stake[0]["have"], json!(1139.457));

    let age = failures(verdict(&engine, "bob", "age").await);
    assert_eq!(age[0]["condition"], "account_age");
    assert_eq!(age[0]["need"]["days"], json!(40_000));
    let have_days = age[0]["have"]["days"].as_u64().unwrap();
    assert!(have_days > 3700, "created 2016-07-13, {have_days} days ago");
}

#[tokio::test]
async fn negative_and_zero_reputation_score_below_and_at_25() {
    let node = ScriptedNode::new();
    node.account("spammer", |a| {
        a["reputation"] = json!(-7_000_000_000_000i64)
    });
    node.account("fresh", |a| a["reputation"] = json!(0));
    let policies = [policy("r", Condition::Reputation(25.0))];
    let engine = engine(&node, &policies, LONG);
    assert_eq!(verdict(&engine, "fresh", "r").await, Verdict::Pass);
    let spam = failures(verdict(&engine, "spammer", "r").await);
    // log10(7e12) − 9 = 3.845 → 25 − 34.61 = −9.61.
    assert_eq!(spam[0]["have"], json!(-9.61));
}

#[tokio::test]
async fn community_membership_and_roles() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "sub", "guest", true);
    node.community("hive-100001", "outsider", "guest", false);
    node.community("hive-100001", "muted", "muted", true);
    node.community("hive-100001", "moderator", "mod", false);
    node.community("hive-100001", "member", "member", false);
    let policies = [
        policy(
            "members",
            Condition::Community {
                name: community("hive-100001"),
                role: None,
            },
        ),
        policy(
            "staff",
            Condition::Community {
                name: community("hive-100001"),
                role: Some(CommunityRole::Mod),
            },
        ),
    ];
    let engine = engine(&node, &policies, LONG);
    for who in ["sub", "moderator", "member"] {
        assert_eq!(
            verdict(&engine, who, "members").await,
            Verdict::Pass,
            "{who}"
        );
    }
    let outsider = failures(verdict(&engine, "outsider", "members").await);
    assert_eq!(outsider[0]["condition"], "community");
    assert_eq!(outsider[0]["have"], "not subscribed");
    assert_eq!(
        outsider[0]["remedy"],
        json!({"kind": "join_community", "community": "hive-100001"})
    );
    let muted = failures(verdict(&engine, "muted", "members").await);
    assert_eq!(muted[0]["have"], "muted");
    assert!(
        muted[0].get("remedy").is_none(),
        "subscribing does not help a muted account"
    );

    assert_eq!(verdict(&engine, "moderator", "staff").await, Verdict::Pass);
    let member = failures(verdict(&engine, "member", "staff").await);
    assert_eq!(
        member[0]["need"],
        json!({"community": "hive-100001", "role": "mod"})
    );
    assert_eq!(member[0]["have"], json!({"role": "member"}));
}

#[tokio::test]
async fn follows_mutes_any_and_not() {
    let node = ScriptedNode::new();
    node.relation("alice", "bob", true, false);
    node.relation("carol", "bob", false, false);
    node.relation("alice", "eve", false, true);
    node.relation("carol", "eve", false, false);
    node.relation("bob", "carol", true, false);
    node.relation("eve", "carol", false, false);
    let friends = Condition::Any(vec![
        Condition::FollowedBy(account("alice")),
        Condition::FollowedBy(account("carol")),
    ]);
    let policies = [
        policy("friends", friends),
        policy(
            "clean",
            Condition::Not(Box::new(Condition::MutedBy(account("alice")))),
        ),
        policy("fans", Condition::Follows(account("carol"))),
    ];
    let engine = engine(&node, &policies, LONG);
    assert_eq!(verdict(&engine, "bob", "friends").await, Verdict::Pass);
    let eve = failures(verdict(&engine, "eve", "friends").await);
    assert_eq!(eve.len(), 1);
    assert_eq!(eve[0]["condition"], "any");
    assert_eq!(
        eve[0]["need"].as_array().unwrap().len(),
        2,
        "both alternatives are named"
    );

    assert_eq!(verdict(&engine, "bob", "clean").await, Verdict::Pass);
    let muted = failures(verdict(&engine, "eve", "clean").await);
    assert_eq!(muted[0]["condition"], "not");
    assert_eq!(muted[0]["have"], "muted by @alice");

    assert_eq!(verdict(&engine, "bob", "fans").await, Verdict::Pass);
    assert_eq!(
        failures(verdict(&engine, "eve", "fans").await)[0]["have"],
        "does not follow"
    );
}

#[tokio::test]
async fn hive_relationships_use_the_bridge_relationship_call() {
    struct HiveNode(AtomicUsize);
    #[async_trait::async_trait]
    impl RpcCall for HiveNode {
        async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            assert_eq!(method, "bridge.get_relationship_between_accounts");
            let file = if params["account2"] == "bob" {
                "follows"
            } else {
                "ignores"
            };
            Ok(recorded(&format!(
                "hive-bridge.get_relationship_between_accounts-{file}.json"
            )))
        }
    }
    let node = Arc::new(HiveNode(AtomicUsize::new(0)));
    let policies = [policy("friends", Condition::FollowedBy(account("alice")))];
    let engine = PolicyEngine::new(
        ChainName::Hive,
        node.clone(),
        &policies,
        LONG,
        PolicyMetrics::new(),
    );
    assert!(matches!(
        engine.decide("bob", "friends").await,
        Outcome::Decided(d) if d.passed()
    ));
    assert!(matches!(
        engine.decide("eve", "friends").await,
        Outcome::Decided(d) if !d.passed()
    ));
    assert_eq!(node.0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn witness_votes_count_directly_and_through_a_proxy() {
    let node = ScriptedNode::new();
    // inertia's recorded votes include "someguy123".
    node.account("voter", |_| {});
    node.account("delegator", |a| {
        a["witness_votes"] = json!([]);
        a["proxy"] = json!("voter");
    });
    node.account("loop1", |a| {
        a["witness_votes"] = json!([]);
        a["proxy"] = json!("loop2");
    });
    node.account("loop2", |a| {
        a["witness_votes"] = json!([]);
        a["proxy"] = json!("loop1");
    });
    let policies = [policy(
        "voters",
        Condition::WitnessVote(account("someguy123")),
    )];
    let engine = engine(&node, &policies, LONG);
    assert_eq!(verdict(&engine, "voter", "voters").await, Verdict::Pass);
    assert_eq!(verdict(&engine, "delegator", "voters").await, Verdict::Pass);
    // A proxy cycle ends after the chain's 4 levels: no vote counts.
    let looped = failures(verdict(&engine, "loop1", "voters").await);
    assert_eq!(looped[0]["condition"], "witness_vote");
    let other = [policy(
        "other",
        Condition::WitnessVote(account("nobody-here")),
    )];
    let engine = self::engine(&node, &other, LONG);
    let via = failures(verdict(&engine, "delegator", "other").await);
    assert_eq!(
        via[0]["have"],
        "votes through proxy @voter, who does not vote for @nobody-here"
    );
}

#[tokio::test]
async fn accounts_lists_need_no_chain_read() {
    let node = ScriptedNode::new();
    let vip: BTreeSet<AccountName> = [account("carol"), account("dave")].into();
    let policies = [policy("vip", Condition::Accounts(vip))];
    let engine = engine(&node, &policies, LONG);
    assert_eq!(verdict(&engine, "carol", "vip").await, Verdict::Pass);
    assert_eq!(node.calls(), 0);
    let refusal = failures(verdict(&engine, "bob", "vip").await);
    assert_eq!(refusal[0]["have"], "bob");
    // The operator's list is not public: the refusal never names it.
    assert_eq!(refusal[0]["need"], "a listed account");
    let text = serde_json::to_string(&refusal).unwrap();
    assert!(!text.contains("carol") && !text.contains("dave"), "{text}");
    let Verdict::Fail(words) = verdict(&engine, "bob", "vip").await else {
        panic!("bob is not listed")
    };
    assert!(!words[0].explain.contains("carol"), "{}", words[0].explain);
    // Nor through `any`.
    let any = [policy(
        "any",
        Condition::Any(vec![
            Condition::Accounts([account("carol")].into()),
            Condition::Reputation(99.0),
        ]),
    )];
    node.account("bob", |_| {});
    let engine = self::engine(&node, &any, LONG);
    let text = serde_json::to_string(&failures(verdict(&engine, "bob", "any").await)).unwrap();
    assert!(!text.contains("carol"), "{text}");
}

#[tokio::test]
async fn a_cached_decision_makes_no_call_and_concurrent_first_requests_share_one_read() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "member", true);
    node.account("bob", |_| {});
    *node.delay.lock().unwrap() = Duration::from_millis(100);
    let policies = [policy(
        "members",
        Condition::All(vec![
            Condition::Community {
                name: community("hive-100001"),
                role: None,
            },
            Condition::Stake(1.0),
        ]),
    )];
    let engine = Arc::new(engine(&node, &policies, LONG));
    let askers: Vec<_> = (0..20)
        .map(|_| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.decide("bob", "members").await })
        })
        .collect();
    for asker in askers {
        assert!(matches!(asker.await.unwrap(), Outcome::Decided(d) if d.passed()));
    }
    // One round: the community, the account and the vesting ratio.
    assert_eq!(node.calls(), 3);
    for _ in 0..100 {
        assert!(matches!(engine.decide("bob", "members").await, Outcome::Decided(d) if d.passed()));
    }
    assert_eq!(node.calls(), 3, "cached decisions read nothing");
}

#[tokio::test]
async fn a_change_on_chain_counts_after_the_ttl_and_at_once_after_forget() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "member", true);
    let policies = [members()];
    let engine = engine(&node, &policies, settings(300, 3000));
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    // bob leaves: within the ttl the cached pass stands …
    node.community("hive-100001", "bob", "guest", false);
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    // … and after it, the chain is read again.
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(matches!(
        verdict(&engine, "bob", "members").await,
        Verdict::Fail(_)
    ));
    // He joins again; forget (logout) rechecks at once.
    node.community("hive-100001", "bob", "member", true);
    assert!(matches!(
        verdict(&engine, "bob", "members").await,
        Verdict::Fail(_)
    ));
    engine.forget("bob").await;
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
}

#[tokio::test]
async fn every_fault_without_a_decision_is_undecidable() {
    for fault in [
        Fault::NodeError,
        Fault::Unavailable,
        Fault::Garbage,
        Fault::Hang,
    ] {
        let node = ScriptedNode::new();
        node.community("hive-100001", "bob", "member", true);
        node.account("bob", |_| {});
        node.fault(fault);
        let policies = [
            policy(
                "members",
                Condition::Community {
                    name: community("hive-100001"),
                    role: None,
                },
            ),
            policy("regulars", Condition::Reputation(10.0)),
        ];
        let engine = engine(&node, &policies, LONG);
        for name in ["members", "regulars"] {
            match engine.decide("bob", name).await {
                Outcome::Undecidable { policy, why } => {
                    assert_eq!(&*policy, name);
                    assert!(!why.is_empty());
                }
                Outcome::Decided(d) => panic!("{fault:?}: {name} decided {:?}", d.verdict),
            }
        }
    }
}

#[tokio::test]
async fn an_unknown_community_or_account_is_undecidable_not_a_refusal() {
    let node = ScriptedNode::new();
    let policies = [
        policy(
            "members",
            Condition::Community {
                name: community("hive-199999"),
                role: None,
            },
        ),
        policy("regulars", Condition::Reputation(10.0)),
    ];
    let engine = engine(&node, &policies, LONG);
    assert!(matches!(
        engine.decide("bob", "members").await,
        Outcome::Undecidable { .. }
    ));
    assert!(matches!(
        engine.decide("bob", "regulars").await,
        Outcome::Undecidable { .. }
    ));
    assert!(matches!(
        engine.decide("bob", "no-such-policy").await,
        Outcome::Undecidable { .. }
    ));
}

#[tokio::test]
async fn the_last_decision_serves_while_younger_than_max_stale_then_fails_closed() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "member", true);
    let policies = [members()];
    let engine = engine(&node, &policies, settings(200, 1200));
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    node.fault(Fault::Unavailable);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // Past the ttl, the node is down: the last decision still serves …
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    let calls = node.calls();
    assert!(calls >= 2, "a refresh was tried");
    // … until it is older than max_stale.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(
        engine.decide("bob", "members").await,
        Outcome::Undecidable { .. }
    ));
    // The node answers again: after the failure back-off (at most the
    // ttl), decided afresh.
    node.fault(Fault::None);
    let calls = node.calls();
    assert!(matches!(
        engine.decide("bob", "members").await,
        Outcome::Undecidable { .. }
    ));
    assert_eq!(
        node.calls(),
        calls,
        "within the back-off the node is not asked"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
}

#[tokio::test]
async fn during_an_outage_requests_do_not_wait_for_the_node_again_and_again() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "member", true);
    let policies = [members()];
    let engine = engine(&node, &policies, settings(300, 60_000));
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    node.fault(Fault::Hang);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // One request waits for the timeout and gets the stale decision …
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    let calls = node.calls();
    // … the next ones get it without asking the hanging node.
    for _ in 0..50 {
        assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    }
    assert_eq!(node.calls(), calls);
}

#[tokio::test]
async fn a_decision_read_while_the_account_is_forgotten_is_not_kept() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "guest", false);
    *node.delay.lock().unwrap() = Duration::from_millis(200);
    let policies = [members()];
    let engine = Arc::new(engine(&node, &policies, LONG));
    let reading = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.decide("bob", "members").await })
    };
    // bob joins and logs out while his old state is being read.
    tokio::time::sleep(Duration::from_millis(50)).await;
    node.community("hive-100001", "bob", "member", true);
    engine.forget("bob").await;
    // The read that began before the forget is thrown away and done again.
    assert!(matches!(reading.await.unwrap(), Outcome::Decided(d) if d.passed()));
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
}

#[tokio::test]
async fn without_max_stale_beyond_the_ttl_a_dead_node_fails_closed_at_once() {
    let node = ScriptedNode::new();
    node.community("hive-100001", "bob", "member", true);
    let policies = [members()];
    let engine = engine(&node, &policies, settings(200, 200));
    assert_eq!(verdict(&engine, "bob", "members").await, Verdict::Pass);
    node.fault(Fault::Hang);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(matches!(
        engine.decide("bob", "members").await,
        Outcome::Undecidable { .. }
    ));
}
