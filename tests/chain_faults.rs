//! Chain faults: nodes that lie or blunder, blocks that are huge or odd, and
//! forks. The follower must never crash, never miss a login a valid block
//! holds, and never log a session in twice.
//!
//! Why a suite of its own: the follower trusts nothing a node says (issue 8,
//! hardening), and each fault here is a way a real or hostile node has been
//! seen to answer (shuffled JSON-RPC batches, a block for another height,
//! re-served blocks after a fork, megabyte blocks, memos at the size limit).

#[path = "support/fake_node.rs"]
mod fake_node;
mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_node::{Behaviour, FakeChain, FakeNode, Transfer, transfer};
use steemgate::chain::follower::{Follower, FollowerSettings, PollReport};
use steemgate::chain::rpc::RpcClient;
use steemgate::chain::status::ChainStatusHandle;
use steemgate::chain::{AccountName, ChainName, Confirm};
use steemgate::clock::now_unix;
use steemgate::store::memory::MemoryStore;
use steemgate::store::{ChainCursor, SessionKey, SessionRecord, Store};
use tokio::sync::broadcast;

const GATE: &str = "steemgate";
const TTL: u64 = 600;

struct Harness {
    chain: FakeChain,
    nodes: Vec<FakeNode>,
    rpc: Arc<RpcClient>,
    store: Arc<MemoryStore>,
    logins_tx: broadcast::Sender<SessionKey>,
    logins: broadcast::Receiver<SessionKey>,
}

impl Harness {
    async fn new(behaviours: &[Behaviour]) -> Self {
        let chain = FakeChain::new(now_unix());
        let mut nodes = Vec::new();
        for behaviour in behaviours {
            nodes.push(FakeNode::start(&chain, *behaviour).await);
        }
        Self::with(chain, nodes)
    }

    fn with(chain: FakeChain, nodes: Vec<FakeNode>) -> Self {
        let urls = nodes.iter().map(|n| n.url.clone()).collect();
        let (logins_tx, logins) = broadcast::channel(64);
        Self {
            chain,
            nodes,
            rpc: Arc::new(RpcClient::new(urls, Duration::from_secs(5))),
            store: Arc::new(MemoryStore::new()),
            logins_tx,
            logins,
        }
    }

    fn follower(&self) -> Follower {
        self.follower_on(self.store.clone())
    }

    fn follower_on(&self, store: steemgate::store::SharedStore) -> Follower {
        Follower::new(
            self.rpc.clone(),
            store,
            FollowerSettings {
                chain: ChainName::Steem,
                account: AccountName::parse(GATE).unwrap(),
                min_amount_units: 1,
                confirm: Confirm::Head,
                challenge_ttl: Duration::from_secs(TTL),
                session_ttl: Duration::from_secs(3600),
                instance_id: "chain-faults".into(),
            },
            ChainStatusHandle::new(),
            self.logins_tx.clone(),
        )
    }

    async fn challenge(&self, session: &str, memo: &str) -> SessionKey {
        let key = SessionKey(session.to_string());
        let now = now_unix();
        self.store
            .put_session(&key, &SessionRecord::pending(now, now + 60))
            .await
            .unwrap();
        self.store
            .issue_challenge(&key, memo, now + TTL)
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

    /// Polls until the cursor reaches the node's head (a fork takes one
    /// extra round); sums the logins. Panics after 10 rounds.
    async fn catch_up(&self, follower: &Follower) -> u64 {
        let mut logins = 0;
        for _ in 0..10 {
            let PollReport {
                logins: round_logins,
                cursor,
                target,
                ..
            } = follower.poll_once().await.unwrap();
            logins += round_logins;
            if cursor == target {
                return logins;
            }
        }
        panic!("the follower did not catch up in 10 rounds");
    }

    /// Every login announced so far.
    fn announced(&mut self) -> Vec<SessionKey> {
        std::iter::from_fn(|| self.logins.try_recv().ok()).collect()
    }
}

fn pay(from: &str, memo: &str) -> Transfer {
    transfer(from, GATE, "0.001 STEEM", memo)
}

/// Blocks around one login transfer, so that batches hold several blocks.
fn produce_login_among_empties(chain: &FakeChain, login: Transfer) -> u64 {
    chain.produce_empty(4);
    let block = chain.produce(vec![login]);
    chain.produce_empty(3);
    block
}

#[tokio::test]
async fn batch_answers_in_reverse_order_are_put_back_by_id() {
    let mut h = Harness::new(&[Behaviour::ReverseBatch]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:rev").await;
    produce_login_among_empties(&h.chain, pay("alice", "login:rev"));
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.logins, report.cursor), (1, h.chain.head()));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert!(h.nodes[0].batch_sizes().iter().any(|&n| n > 1));
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn shuffled_batch_ids_are_refused_and_an_honest_node_is_asked() {
    // Alone, the lying node stalls the follower: nothing is processed.
    let h = Harness::new(&[Behaviour::ShuffleBatchIds]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let start = h.store.cursor().await.unwrap().map(|c| c.block);
    let key = h.challenge("s", "login:shuffle").await;
    produce_login_among_empties(&h.chain, pay("alice", "login:shuffle"));
    assert!(follower.poll_once().await.is_err());
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        start,
        "no block accepted"
    );
    assert_eq!(h.account_of(&key).await, None);

    // With an honest node behind it, the login goes through.
    let mut h = Harness::new(&[Behaviour::ShuffleBatchIds, Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:shuffle").await;
    produce_login_among_empties(&h.chain, pay("alice", "login:shuffle"));
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.logins, report.cursor), (1, h.chain.head()));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(h.announced(), vec![key]);
    let statuses = h.rpc.node_statuses();
    assert!(statuses[0].failures > 0, "the lying node is penalised");
    assert_eq!(statuses[1].failures, 0);
}

#[tokio::test]
async fn a_block_of_another_height_is_refused_even_when_empty() {
    // Only empty blocks: nothing but the block id tells the heights apart.
    let h = Harness::new(&[Behaviour::WrongBlock]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let start = h.store.cursor().await.unwrap().map(|c| c.block);
    h.chain.produce_empty(3);
    assert!(follower.poll_once().await.is_err());
    assert_eq!(h.store.cursor().await.unwrap().map(|c| c.block), start);

    let mut h = Harness::new(&[Behaviour::WrongBlock, Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:height").await;
    let block = produce_login_among_empties(&h.chain, pay("bob", "login:height"));
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("bob"));
    assert_eq!(session.login.unwrap().block_num, block, "the real block");
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn a_block_with_ten_thousand_transfers_logs_in_exactly_once() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:needle").await;
    let decoy = h.challenge("decoy", "login:decoy-never-paid").await;
    let mut transfers = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        transfers.push(match i {
            // The login, then a replay of its memo by someone else.
            6_000 => pay("alice", "login:needle"),
            9_999 => pay("mallory", "login:needle"),
            // Other payments to other accounts.
            i if i % 3 == 0 => transfer(
                "carol",
                "someone-else",
                "1.000 STEEM",
                "login:decoy-never-paid",
            ),
            // To us, with memos that are no challenge.
            i => pay("dave", &format!("login:other-{i}")),
        });
    }
    h.chain.produce(transfers);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.logins), (1, 1));
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(h.account_of(&decoy).await, None);
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn memos_at_and_over_the_size_limit_and_odd_text() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    // A challenge memo of exactly the chain's limit still works.
    let at_limit = "a".repeat(2048);
    let long_key = h.challenge("long", &at_limit).await;
    // One byte over: refused, even though a challenge has that memo.
    let over_limit = "b".repeat(2049);
    let over_key = h.challenge("over", &over_limit).await;
    // Multi-byte text at the limit, and odd code points.
    let emoji = "😀".repeat(512);
    let emoji_key = h.challenge("emoji", &emoji).await;
    let odd = "login:\u{FFFD}\u{200B}\u{FEFF}x";
    let odd_key = h.challenge("odd", odd).await;
    h.chain.produce(vec![
        pay("alice", &at_limit),
        pay("bob", &over_limit),
        pay("carol", &emoji),
        pay("dave", odd),
        pay("erin", &"c".repeat(100_000)),
        pay("frank", "login:\u{0}nul"),
        pay("grace", "\u{7f}\u{1b}[31m"),
    ]);
    let report = follower.poll_once().await.unwrap();
    assert_eq!(report.blocks_processed, 1);
    assert_eq!(h.account_of(&long_key).await.as_deref(), Some("alice"));
    assert_eq!(h.account_of(&over_key).await, None);
    assert_eq!(h.account_of(&emoji_key).await.as_deref(), Some("carol"));
    assert_eq!(h.account_of(&odd_key).await.as_deref(), Some("dave"));
    assert_eq!(report.logins, 3);
    assert_eq!(h.announced().len(), 3);
}

#[tokio::test]
async fn an_answer_no_json_encoder_writes_fails_over() {
    // A memo the node encodes as a lone UTF-16 surrogate escape: not valid
    // JSON text for a strict parser. That node is skipped; the block still
    // counts through the honest node.
    let chain = FakeChain::new(now_unix());
    let liar = FakeNode::start_with_rewrites(
        &chain,
        Behaviour::Good,
        vec![("SURROGATE".into(), "\\ud800\\udc00\\udfff".into())],
    )
    .await;
    let honest = FakeNode::start(&chain, Behaviour::Good).await;
    let mut h = Harness::with(chain, vec![liar, honest]);
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:ok").await;
    h.chain
        .produce(vec![pay("mallory", "SURROGATE"), pay("alice", "login:ok")]);
    assert_eq!(follower.poll_once().await.unwrap().logins, 1);
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert!(h.rpc.node_statuses()[0].failures > 0);
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn a_fork_after_the_cursor_is_read_again_and_its_login_counted() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:fork").await;
    let head = h.chain.produce_empty(6);
    assert_eq!(h.catch_up(&follower).await, 0);
    let old_id = h.chain.block_id_of(head - 1);

    // The node switches to a fork from head - 3: the login transfer is in
    // a replaced block at or below our cursor, then the fork grows past it.
    h.chain.fork(head - 3);
    h.chain.produce_empty(1);
    let login_block = h.chain.produce(vec![pay("alice", "login:fork")]);
    assert!(login_block < head, "the login sits below the old cursor");
    h.chain.produce_empty(4);
    assert_ne!(h.chain.block_id_of(head - 1), old_id);

    assert_eq!(h.catch_up(&follower).await, 1);
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("alice"));
    assert_eq!(session.login.unwrap().block_num, login_block);
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(h.chain.head())
    );
    assert_eq!(h.announced(), vec![key]);
}

/// Like the real chains: a few blocks between head and last irreversible.
const IRREVERSIBLE_LAG: u64 = 15;

/// The node drops its last three blocks (the cursor's among them) and
/// produces them again with other content; the login transfer sits in the
/// oldest re-produced block, below the cursor.
fn micro_fork_with_login_below_the_cursor(chain: &FakeChain, cursor: u64, memo: &str) -> u64 {
    chain.fork(cursor - 3);
    let login_block = chain.produce(vec![pay("alice", memo)]);
    chain.produce_empty(2);
    assert_eq!(
        chain.head(),
        cursor,
        "the fork is as long as what it replaced"
    );
    chain.produce_empty(1);
    login_block
}

#[tokio::test]
async fn a_micro_fork_right_after_a_fresh_start_is_noticed() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    h.chain.set_irreversible_lag(IRREVERSIBLE_LAG);
    h.chain.produce_empty(30);
    // A fresh store starts at the head without reading any block before it.
    let follower = h.follower();
    let start = follower.poll_once().await.unwrap().cursor;
    assert_eq!(start, h.chain.head());
    let stored = h.store.cursor().await.unwrap().unwrap();
    assert_eq!(
        stored.block_id.as_deref(),
        Some(h.chain.block_id_of(start).as_str())
    );
    let key = h.challenge("s", "login:fresh-fork").await;

    let login_block = micro_fork_with_login_below_the_cursor(&h.chain, start, "login:fresh-fork");
    assert_eq!(h.catch_up(&follower).await, 1);
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("alice"));
    assert_eq!(session.login.unwrap().block_num, login_block);
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn a_micro_fork_across_a_restart_is_noticed() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    h.chain.set_irreversible_lag(IRREVERSIBLE_LAG);
    h.chain.produce_empty(30);
    let before = h.follower();
    before.poll_once().await.unwrap();
    h.chain.produce_empty(5);
    assert_eq!(h.catch_up(&before).await, 0);
    let cursor = h.chain.head();
    drop(before);
    let key = h.challenge("s", "login:restart-fork").await;

    // While the gateway is down, the node's last three blocks are replaced.
    let login_block =
        micro_fork_with_login_below_the_cursor(&h.chain, cursor, "login:restart-fork");
    let after = h.follower();
    assert_eq!(h.catch_up(&after).await, 1);
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("alice"));
    assert_eq!(session.login.unwrap().block_num, login_block);
    assert_eq!(h.announced(), vec![key]);
    assert_eq!(
        h.store.cursor().await.unwrap(),
        Some(ChainCursor::new(
            h.chain.head(),
            h.chain.block_id_of(h.chain.head())
        ))
    );
}

/// A Redis without persistence restarts empty under a running gateway:
/// the follower resumes after the last block it processed, not at the head,
/// so a login paid in the blocks in between is not skipped.
#[tokio::test]
async fn a_store_that_loses_everything_does_not_skip_blocks() {
    let h = Harness::new(&[Behaviour::Good]).await;
    let faulty = Arc::new(steemgate::store::faulty::FaultyStore::new(h.store.clone()));
    let follower = h.follower_on(faulty.clone());
    follower.poll_once().await.unwrap();
    h.chain.produce_empty(3);
    assert_eq!(h.catch_up(&follower).await, 0);
    let before = h.chain.head();

    // Redis comes back empty; a visitor starts a login on it and pays.
    let fresh = Arc::new(MemoryStore::new());
    faulty.lose_everything(fresh.clone());
    let now = now_unix();
    let key = SessionKey("after-restart".into());
    fresh
        .put_session(&key, &SessionRecord::pending(now, now + 60))
        .await
        .unwrap();
    fresh
        .issue_challenge(&key, "login:after-restart", now + TTL)
        .await
        .unwrap();
    let login_block = h.chain.produce(vec![pay("alice", "login:after-restart")]);
    h.chain.produce_empty(2);
    assert!(login_block > before);

    assert_eq!(h.catch_up(&follower).await, 1);
    let session = fresh.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.account.as_deref(), Some("alice"));
    assert_eq!(
        fresh.cursor().await.unwrap().map(|c| c.block),
        Some(h.chain.head())
    );
}

/// An instance that followed a while ago (then lost the lease while another
/// followed ahead) takes over just before a micro-fork: its old block
/// ids must not make it re-read the whole gap, and the login in the
/// re-produced block still counts.
#[tokio::test]
async fn taking_over_from_another_instance_reads_a_bounded_window_after_a_fork() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    h.chain.set_irreversible_lag(IRREVERSIBLE_LAG);
    let first = h.follower();
    first.poll_once().await.unwrap();
    h.chain.produce_empty(5);
    assert_eq!(h.catch_up(&first).await, 0);
    // Another instance follows 120 blocks on the same store (six minutes
    // of chain time: the challenge below stays valid).
    let other = h.follower();
    h.chain.produce_empty(120);
    assert_eq!(h.catch_up(&other).await, 0);
    let cursor = h.chain.head();
    let key = h.challenge("s", "login:takeover").await;

    let login_block = micro_fork_with_login_below_the_cursor(&h.chain, cursor, "login:takeover");
    let fetched_before: usize = h.nodes[0].batch_sizes().iter().sum();
    assert_eq!(h.catch_up(&first).await, 1);
    let fetched: usize = h.nodes[0].batch_sizes().iter().sum::<usize>() - fetched_before;
    assert!(
        fetched <= 2 * IRREVERSIBLE_LAG as usize + 10,
        "read {fetched} blocks to recover from a 3-block fork"
    );
    let session = h.store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(session.login.unwrap().block_num, login_block);
    assert_eq!(h.announced(), vec![key]);
}

#[tokio::test]
async fn a_fork_that_reincludes_a_claimed_transfer_logs_in_nobody_again() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:once").await;
    h.chain.produce_empty(2);
    let login_block = h.chain.produce(vec![pay("alice", "login:once")]);
    h.chain.produce_empty(2);
    assert_eq!(h.catch_up(&follower).await, 1);

    // The fork replaces the login block: the same transfer again, and a
    // front-runner with the same memo placed before it.
    h.chain.fork(login_block - 1);
    h.chain.produce(vec![
        pay("mallory", "login:once"),
        pay("alice", "login:once"),
    ]);
    h.chain.produce_empty(5);
    assert_eq!(h.catch_up(&follower).await, 0);
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(h.announced(), vec![key]);
    assert_eq!(
        h.store.cursor().await.unwrap().map(|c| c.block),
        Some(h.chain.head())
    );
}

#[tokio::test]
async fn a_head_that_goes_back_then_forks_is_waited_out_then_followed() {
    let mut h = Harness::new(&[Behaviour::Good]).await;
    let follower = h.follower();
    follower.poll_once().await.unwrap();
    let key = h.challenge("s", "login:back").await;
    let head = h.chain.produce_empty(5);
    h.catch_up(&follower).await;

    // The head goes back two blocks: nothing to do, nothing breaks.
    h.chain.fork(head - 2);
    let report = follower.poll_once().await.unwrap();
    assert_eq!((report.blocks_processed, report.cursor), (0, head));
    // The fork grows past our cursor with the login in its first block.
    h.chain.produce(vec![pay("alice", "login:back")]);
    h.chain.produce_empty(4);
    assert_eq!(h.catch_up(&follower).await, 1);
    assert_eq!(h.account_of(&key).await.as_deref(), Some("alice"));
    assert_eq!(h.announced(), vec![key]);
}
