//! Benchmark of the chain follower catching up (not a test, no assertions).
//!
//! Why: issue 7 asks for catch-up >= 500 blocks/s against a node 20 ms away,
//! so that a gateway restarted after an outage is back in step quickly. This
//! serves a devnet (2,000 blocks, each with a login transfer to someone
//! else and one to the gateway) behind a 20 ms delay per HTTP request, puts
//! a follower 2,000 blocks behind, and times one `poll_once` that reads them
//! all (batches of 50 blocks per request), with the in-memory store and
//! with the embedded (redb) store the gateway uses by default.
//!
//! Run: `cargo bench --bench catchup --profile dev` (debug code: slower than
//! release) or without `--profile` for an optimized build.

use std::sync::Arc;
use std::time::{Duration, Instant};

use steemgate::chain::devnet::{Devnet, DevnetOptions};
use steemgate::chain::follower::{Follower, FollowerSettings};
use steemgate::chain::rpc::RpcClient;
use steemgate::chain::status::ChainStatusHandle;
use steemgate::chain::{AccountName, ChainName, Confirm};
use steemgate::store::SharedStore;
use steemgate::store::StoreLocation;

const BLOCKS: u64 = 2000;
const NODE_DELAY: Duration = Duration::from_millis(20);
const GATE: &str = "gate-bench";

async fn delayed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    tokio::time::sleep(NODE_DELAY).await;
    next.run(request).await
}

async fn catch_up(devnet: &Devnet, node: url::Url, store: SharedStore, label: &str) {
    let head = devnet.head();
    store
        .set_cursor(&steemgate::store::ChainCursor::at(head - BLOCKS))
        .await
        .expect("setting the cursor");
    let (logins, _) = tokio::sync::broadcast::channel(16);
    let follower = Follower::new(
        Arc::new(RpcClient::new(vec![node], Duration::from_secs(30))),
        store,
        FollowerSettings {
            chain: ChainName::Steem,
            account: AccountName::parse(GATE).expect("account name"),
            min_amount_units: 1,
            confirm: Confirm::Head,
            challenge_ttl: Duration::from_secs(3 * BLOCKS),
            session_ttl: Duration::from_secs(86_400),
            instance_id: "bench".into(),
        },
        ChainStatusHandle::default(),
        logins,
    );
    let started = Instant::now();
    let report = follower.poll_once().await.expect("catching up");
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{label:>9}: {} blocks in {seconds:.2} s = {:.0} blocks/s (cursor {} of head {})",
        report.blocks_processed,
        report.blocks_processed as f64 / seconds,
        report.cursor,
        report.head
    );
}

#[tokio::main]
async fn main() {
    let devnet = Devnet::new(DevnetOptions {
        seed: false,
        ..DevnetOptions::default()
    });
    for i in 0..BLOCKS {
        devnet
            .submit_transfer("alice", "bob", "0.001 STEEM", &format!("not ours {i}"))
            .expect("transfer");
        devnet
            .submit_transfer("carol", GATE, "0.001 STEEM", &format!("login nobody-{i}"))
            .expect("transfer");
        devnet.produce_block(None);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding loopback");
    let node: url::Url = format!("http://{}/", listener.local_addr().expect("address"))
        .parse()
        .expect("node url");
    let app = devnet.router().layer(axum::middleware::from_fn(delayed));
    tokio::spawn(async move { axum::serve(listener, app).await });
    println!("follower catching up {BLOCKS} blocks from a node answering after {NODE_DELAY:?}:");

    let memory: SharedStore = Arc::new(steemgate::store::memory::MemoryStore::new());
    catch_up(&devnet, node.clone(), memory, "memory").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let embedded =
        steemgate::store::open(&StoreLocation::File(dir.path().join("store"))).expect("store");
    catch_up(&devnet, node, embedded, "embedded").await;
}
