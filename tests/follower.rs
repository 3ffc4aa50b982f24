//! The follower against fake nodes on loopback: logins by transfer, every
//! refusal, restarts, catch-up, and node failover.
//!
//! Why: this is the whole login path on the chain side. Time is driven by
//! the fake chain's block timestamps, never by sleeping for block intervals.

#[path = "support/fake_node.rs"]
mod fake_node;
mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_node::{Behaviour, FakeChain, FakeNode, dead_node, transfer};
use steemgate::chain::follower::{Follower, FollowerError, FollowerSettings};
use steemgate::chain::rpc::RpcClient;
use steemgate::chain::status::ChainStatusHandle;
use steemgate::chain::{AccountName, ChainName, Confirm, RpcError};
use steemgate::clock::{UnixTime, now_unix};
use steemgate::store::faulty::FaultyStore;
use steemgate::store::memory::MemoryStore;
use steemgate::store::{ChainCursor, SessionKey, SessionRecord, SharedStore, Store};
use tokio::sync::broadcast;

const GATE: &str = "steemgate";
const TTL: u64 = 600;

fn settings(chain: ChainName) -> FollowerSettings {
    FollowerSettings {
        chain,
        account: AccountName::parse(GATE).unwrap(),
        min_amount_units: 1,
        confirm: Confirm::Head,
        challenge_ttl: Duration::from_secs(TTL),
        session_ttl: Duration::from_secs(3600),
        instance_id: "test-instance".into(),
    }
}

struct Harness {
    chain: FakeChain,
    nodes: Vec<FakeNode>,
    rpc: Arc<RpcClient>,
    store: Arc<MemoryStore>,
    status: ChainStatusHandle,
    logins_tx: broadcast::Sender<SessionKey>,
    logins: broadcast::Receiver<SessionKey>,
    settings: FollowerSettings,
}

impl Harness {
    async fn new(chain_name: ChainName) -> Self {
        Self::with_nodes(chain_name, &[Behaviour::Good], Duration::from_secs(5)).await
    }

    async fn with_nodes(
        chain_name: ChainName,
        behaviours: &[Behaviour],
        timeout: Duration,
    ) -> Self {
        let chain = FakeChain::new(now_unix());
        let mut nodes = Vec::new();
        for behaviour in behaviours {
            nodes.push(FakeNode::start(&chain, *behaviour).await);
        }
        let urls = nodes.iter().map(|n| n.url.clone()).collect();
        Self::build(chain, nodes, urls, chain_name, timeout)
    }

    fn build(
        chain: FakeChain,
        nodes: Vec<FakeNode>,
        urls: Vec<url::Url>,
        chain_name: ChainName,
        timeout: Duration,
    ) -> Self {
        let (logins_tx, logins) = broadcast::channel(16);
        Self {
            chain,
            nodes,
            rpc: Arc::new(RpcClient::new(urls, timeout)),
            store: Arc::new(MemoryStore::new()),
            status: ChainStatusHandle::new(),
            logins_tx,
            logins,
            settings: settings(chain_name),
        }
    }

    fn follower(&self) -> Follower {
        self.follower_on(self.store.clone())
    }

    fn follower_on(&self, store: SharedStore) -> Follower {
        Follower::new(
            self.rpc.clone(),
            store,
            self.settings.clone(),
            self.status.clone(),
            self.logins_tx.clone(),
        )
    }

    /// A pending session with a live challenge `memo`.
    async fn challenge(&self, session: &str, memo: &str) -> SessionKey {
        self.challenge_until(session, memo, now_unix() + TTL).await
    }

    async fn challenge_until(&self, session: &str, memo: &str, expires_at: UnixTime) -> SessionKey {
        let key = SessionKey(session.to_string());
        let now = now_unix();
        self.store
            .put_session(&key, &SessionRecord::pending(now, now + 60))
            .await
            .unwrap();
        self.store
            .issue_challenge(&key, memo, expires_at)
            .await
            .unwrap();
        key
    }

    async fn account_of(&self, key: &SessionKey) -> Option<String> {
        self.store
            .get_session(key)
            .await
            .unwrap()
            .and_then(|s| s.account)
    }
}

#[tokio::test]
async fn a_transfer_with_the_memo_logs_the_session_in() {
    let mut h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s1", "login:K7Q2-M9XD").await;
    let block = h.chain.produce(vec![transfer(
        "alice",
        GATE,
        "0.001 STEEM",
        "login:K7Q2-M9XD",
    )]);

    let report = follower.poll_once().await.unwrap();
    assert_eq!(
        (report.blocks_processed, report.logins, report.head),
        (1, 1, block)
    );
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("alice"));
    let proof = session.login.unwrap();
    assert_eq!(
        (proof.method.as_str(), proof.block_num, proof.block_time),
        ("transfer", block, h.chain.head_time())
    );
    assert_eq!(h.logins.try_recv().unwrap(), key);
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(block)
    );
    let snapshot = h.status.snapshot();
    assert_eq!(
        (snapshot.head_block, snapshot.processed_block),
        (block, block)
    );
    assert!(h.status.is_healthy(now_unix()));
}

#[tokio::test]
async fn dollar_assets_work_on_their_own_chain() {
    for (chain_name, amount) in [
        (ChainName::Steem, "0.001 SBD"),
        (ChainName::Hive, "0.001 HBD"),
        (ChainName::Hive, "0.001 HIVE"),
    ] {
        let h = Harness::new(chain_name).await;
        let follower = h.follower();
        follower.poll_once().await.unwrap();
        let key = h.challenge("s", "memo-1").await;
        h.chain
            .produce(vec![transfer("bob", GATE, amount, "memo-1")]);
        follower.poll_once().await.unwrap();
        assert_eq!(
            h.account_of(&key).await.as_deref(),
            Some("bob"),
            "{amount} on {chain_name:?}"
        );
    }
}

#[tokio::test]
async fn transfers_that_are_not_login_payments_change_nothing() {
    let mut h = Harness::new(ChainName::Steem).await;
    h.settings.min_amount_units = 5;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let cases = [
        (
            "below-minimum",
            transfer("alice", GATE, "0.004 STEEM", "below-minimum"),
        ),
        (
            "wrong-recipient",
            transfer("alice", "someoneelse", "1.000 STEEM", "wrong-recipient"),
        ),
        (
            "wrong-asset",
            transfer("alice", GATE, "1.000 HIVE", "wrong-asset"),
        ),
        (
            "encrypted",
            transfer("alice", GATE, "1.000 STEEM", "#encrypted"),
        ),
    ];
    let mut keys = Vec::new();
    for (memo, _) in &cases {
        // "#encrypted" canonicalises to itself: the challenge exists, the transfer is still refused.
        let challenge_memo = if *memo == "encrypted" {
            "#encrypted"
        } else {
            memo
        };
        keys.push(h.challenge(memo, challenge_memo).await);
    }
    h.chain
        .produce(cases.iter().map(|(_, t)| t.clone()).collect());
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (1, 0));
    for key in &keys {
        assert_eq!(h.account_of(key).await, None, "{key:?}");
    }
    // The exact minimum does log in.
    h.chain.produce(vec![transfer(
        "alice",
        GATE,
        "0.005 STEEM",
        "below-minimum",
    )]);
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    assert_eq!(h.account_of(&keys[0]).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn memo_case_and_whitespace_do_not_matter() {
    let h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let a = h.challenge("a", "login:K7Q2-M9XD").await;
    let b = h.challenge("b", "LOGIN:ABCD-EFGH").await;
    h.chain.produce(vec![
        transfer("alice", GATE, "0.001 STEEM", "  login:k7q2-m9xd\n"),
        transfer("Bob", GATE, "0.001 STEEM", "Login:abcd-EFGH "),
    ]);
    assert_eq!(follower.poll_once().await.unwrap().logins, 2);
    assert_eq!(h.account_of(&a).await.as_deref(), Some("alice"));
    assert_eq!(
        h.account_of(&b).await.as_deref(),
        Some("bob"),
        "sender names are lowercased"
    );
}

#[tokio::test]
async fn a_transfer_in_a_block_after_the_deadline_is_refused() {
    let h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let deadline = h.chain.head_time() + 30;
    let late = h.challenge_until("late", "memo-late", deadline).await;
    let on_time = h.challenge_until("on-time", "memo-on-time", deadline).await;
    h.chain.produce_at(
        deadline - 1,
        vec![transfer("alice", GATE, "0.001 STEEM", "memo-on-time")],
    );
    h.chain.produce_at(
        deadline,
        vec![transfer("alice", GATE, "0.001 STEEM", "memo-late")],
    );
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (2, 1));
    assert_eq!(h.account_of(&on_time).await.as_deref(), Some("alice"));
    assert_eq!(h.account_of(&late).await, None);
    assert_eq!(
        h.store.challenge("memo-late").unwrap().unwrap().claimed_by,
        None
    );
}

#[tokio::test]
async fn a_replayed_memo_changes_nothing_first_sender_wins() {
    let h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "memo-x").await;
    h.chain.produce(vec![
        transfer("alice", GATE, "0.001 STEEM", "memo-x"),
        transfer("mallory", GATE, "0.001 STEEM", "memo-x"),
    ]);
    h.chain
        .produce(vec![transfer("eve", GATE, "0.001 STEEM", "memo-x")]);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (2, 1));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(
        h.store
            .challenge("memo-x")
            .unwrap()
            .unwrap()
            .claimed_by
            .as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn a_restart_resumes_at_the_persisted_cursor() {
    let h = Harness::new(ChainName::Steem).await;
    let start = h.follower().poll_once().await.unwrap().head;
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(start)
    );
    let key = h.challenge("s", "memo-restart").await;
    // Produced while no follower runs.
    h.chain.produce_empty(3);
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-restart")]);
    h.chain.produce_empty(2);

    let report = h.follower().poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (6, 1));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(start + 6)
    );
}

#[tokio::test]
async fn a_fresh_store_starts_at_the_head_and_never_replays_history() {
    let h = Harness::new(ChainName::Steem).await;
    let key = h.challenge("s", "memo-old").await;
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-old")]);
    let head = h.chain.produce_empty(2);
    let follower = h.follower();
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (0, 0));
    assert_eq!(h.store.cursor().await.unwrap().map(|c| c.block), Some(head));
    h.chain.produce_empty(1);
    assert_eq!(follower.poll_once().await.unwrap().blocks_processed, 1);
    assert_eq!(h.account_of(&key).await, None);
}

#[tokio::test]
async fn catching_up_uses_batches_of_at_most_fifty() {
    let h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    let start = follower.poll_once().await.unwrap().head;
    let key = h.challenge("s", "memo-late-in-batch").await;
    h.chain.produce_empty(109);
    h.chain.produce(vec![transfer(
        "alice",
        GATE,
        "0.001 STEEM",
        "memo-late-in-batch",
    )]);
    h.chain.produce_empty(10);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (120, 1));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    // The first 1: a fresh start reads its start block (for its id).
    assert_eq!(h.nodes[0].batch_sizes(), vec![1, 50, 50, 20]);
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(start + 120)
    );
}

#[tokio::test]
async fn far_behind_skips_blocks_no_live_challenge_can_need() {
    let mut h = Harness::new(ChainName::Steem).await;
    h.settings.challenge_ttl = Duration::from_secs(60);
    let follower = h.follower();
    let max_lag = follower.max_catch_up_blocks();
    assert_eq!(max_lag, 2 * 60 / 3 + 20);
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "memo-ancient").await;
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-ancient")]);
    let head = h.chain.produce_empty(max_lag + 10);
    let report = follower.poll_once().await.unwrap();
    assert_eq!(report.blocks_processed, max_lag);
    assert_eq!(h.store.cursor().await.unwrap().map(|c| c.block), Some(head));
    assert_eq!(
        h.account_of(&key).await,
        None,
        "the skipped block was not read"
    );
}

#[tokio::test]
async fn irreversible_mode_waits_for_the_last_irreversible_block() {
    let mut h = Harness::new(ChainName::Steem).await;
    h.settings.confirm = Confirm::Irreversible;
    h.chain.set_irreversible_lag(2);
    h.chain.produce_empty(3);
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "memo-irr").await;
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-irr")]);
    h.chain.produce_empty(1);
    follower.poll_once().await.unwrap();
    assert_eq!(h.account_of(&key).await, None, "not yet irreversible");
    h.chain.produce_empty(1);
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
}

#[tokio::test]
async fn a_head_going_backwards_is_waited_out() {
    let h = Harness::new(ChainName::Steem).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let head = h.chain.produce_empty(5);
    follower.poll_once().await.unwrap();
    h.chain.rewind_head(head - 3);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.head), (0, head - 3));
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(head),
        "cursor never moves back"
    );
}

#[tokio::test]
async fn bad_nodes_fail_over_to_the_good_one() {
    let chain = FakeChain::new(now_unix());
    let behaviours = [
        Behaviour::Html503,
        Behaviour::Garbage,
        Behaviour::Truncated,
        Behaviour::Hang,
        Behaviour::Stale,
        Behaviour::Good,
    ];
    let mut nodes = Vec::new();
    for behaviour in behaviours {
        nodes.push(FakeNode::start(&chain, behaviour).await);
    }
    let (_dead, dead_url) = dead_node();
    let mut urls = vec![dead_url];
    urls.extend(nodes.iter().map(|n| n.url.clone()));
    let h = Harness::build(
        chain,
        nodes,
        urls,
        ChainName::Steem,
        Duration::from_millis(300),
    );

    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "memo-failover").await;
    h.chain.produce(vec![transfer(
        "alice",
        GATE,
        "0.001 STEEM",
        "memo-failover",
    )]);
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));

    let statuses = h.rpc.node_statuses();
    assert_eq!(statuses.len(), 7);
    for status in &statuses[..6] {
        assert!(!status.healthy && status.failures >= 1, "{status:?}");
    }
    assert!(statuses[6].healthy && statuses[6].failures == 0);
    assert!(h.rpc.failovers() >= 6);
    // The good node served the blocks; backing-off nodes were skipped.
    // The start block (fresh store), then the new block.
    assert_eq!(h.nodes[5].batch_sizes(), vec![1, 1]);
    assert!(
        h.nodes[4].batch_sizes().is_empty(),
        "the stale node, backing off, served no blocks"
    );
}

#[tokio::test]
async fn node_errors_and_stale_heads_when_no_node_is_better() {
    let chain = FakeChain::new(now_unix());
    let erroring = [
        FakeNode::start(&chain, Behaviour::NodeError).await,
        FakeNode::start(&chain, Behaviour::NodeError).await,
    ];
    let rpc = RpcClient::new(
        erroring.iter().map(|n| n.url.clone()).collect(),
        Duration::from_secs(5),
    );
    match rpc.global_properties().await {
        Err(RpcError::Node { code, message }) => assert_eq!(
            (code, message.as_str()),
            (-32603, "Internal Error: database lock timeout")
        ),
        other => panic!("expected a node error, got {other:?}"),
    }

    let stale = FakeNode::start(&chain, Behaviour::Stale).await;
    let (_dead, dead_url) = dead_node();
    let rpc = RpcClient::new(
        vec![dead_url.clone(), stale.url.clone()],
        Duration::from_secs(5),
    );
    let props = rpc.global_properties().await.unwrap();
    assert_eq!(props.head_block_number, chain.head());
    assert_eq!(
        props.head_block_time,
        chain.head_time() - 600,
        "the freshest stale answer"
    );

    let rpc = RpcClient::new(vec![dead_url], Duration::from_secs(5));
    assert!(matches!(
        rpc.global_properties().await,
        Err(RpcError::Unavailable(_))
    ));
    // Stale detection is configurable.
    let rpc = RpcClient::new(vec![stale.url.clone()], Duration::from_secs(5))
        .with_stale_after(Duration::from_secs(3600));
    rpc.global_properties().await.unwrap();
    assert!(rpc.node_statuses()[0].healthy);
}

#[tokio::test]
async fn a_node_refusing_batches_gets_single_calls() {
    let h = Harness::with_nodes(
        ChainName::Steem,
        &[Behaviour::RejectBatch],
        Duration::from_secs(5),
    )
    .await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "memo-single").await;
    h.chain.produce_empty(2);
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-single")]);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (3, 1));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(h.nodes[0].batch_sizes(), vec![1, 3]);
    assert!(
        h.nodes[0].single_calls() >= 3 + 2,
        "3 blocks + 2 global properties"
    );
}

/// A memory store whose claims can fail and whose lease can be refused.
fn flaky() -> Arc<FaultyStore> {
    Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())))
}

#[tokio::test]
async fn a_store_error_stops_the_round_without_skipping_the_block() {
    let h = Harness::new(ChainName::Steem).await;
    let store = flaky();
    let follower = h.follower_on(store.clone());
    let start = follower.poll_once().await.unwrap().head;
    let key = SessionKey("s".into());
    let now = now_unix();
    store
        .put_session(&key, &SessionRecord::pending(now, now + 60))
        .await
        .unwrap();
    store
        .issue_challenge(&key, "memo-flaky", now + TTL)
        .await
        .unwrap();
    h.chain.produce_empty(1);
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-flaky")]);

    store.fail("claim_challenge");
    assert!(matches!(
        follower.poll_once().await,
        Err(FollowerError::Store(_))
    ));
    assert_eq!(
        store.cursor().await.unwrap().map(|c| c.block),
        Some(start + 1),
        "stopped before the failing block"
    );

    store.heal();
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    assert_eq!(
        store
            .get_session(&key)
            .await
            .unwrap()
            .unwrap()
            .account
            .as_deref(),
        Some("alice")
    );
}

#[tokio::test]
async fn run_logs_in_and_stops_on_shutdown() {
    let mut h = Harness::new(ChainName::Steem).await;
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(h.follower().run(shutdown_rx));
    // Wait until the follower has set its starting cursor.
    let status = h.status.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while status.snapshot().last_ok.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("first poll");
    assert!(h.status.snapshot().following);
    let key = h.challenge("s", "memo-run").await;
    h.chain
        .produce(vec![transfer("alice", GATE, "0.001 STEEM", "memo-run")]);
    let logged_in = tokio::time::timeout(Duration::from_secs(10), h.logins.recv())
        .await
        .expect("login seen");
    assert_eq!(logged_in.unwrap(), key);

    shutdown_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .unwrap();
    assert!(!h.status.snapshot().following);
}

#[tokio::test]
async fn without_the_lease_the_follower_only_watches() {
    let h = Harness::new(ChainName::Steem).await;
    let store = flaky();
    store.refuse_lease(true);
    store
        .set_cursor(&ChainCursor::at(h.chain.head() - 1))
        .await
        .unwrap();
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(h.follower_on(store.clone()).run(shutdown_rx));
    let status = h.status.clone();
    tokio::time::timeout(Duration::from_secs(10), async {
        while status.snapshot().last_ok.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("status refreshed");
    let snapshot = h.status.snapshot();
    assert!(!snapshot.following);
    assert_eq!(snapshot.head_block, h.chain.head());
    assert_eq!(
        snapshot.processed_block,
        h.chain.head() - 1,
        "progress of the instance that follows"
    );
    assert_eq!(h.status.behind_seconds(h.chain.head_time()), Some(3));
    assert_eq!(
        store.cursor().await.unwrap().map(|c| c.block),
        Some(h.chain.head() - 1),
        "a watcher never moves the cursor"
    );
    drop(shutdown_tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops when the sender is gone")
        .unwrap();
}
