//! One conformance suite for every `Store`: the same async bodies run
//! against the embedded (redb) store and the Redis store, so both keep the
//! semantics documented on the trait. Adding a store is one `suite!` line
//! plus a harness constructor. Store-specific behaviour (reopening, file
//! locks, key TTLs, Redis restarts) is tested at the end.

mod support;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use steemgate::store::embedded::EmbeddedStore;
use steemgate::store::redis::RedisStore;
use steemgate::store::{
    Claim, ClaimOutcome, LoginProof, SessionKey, SessionRecord, Store, UnixTime, now_unix,
};
use support::redis_server::RedisServer;

const OP_TIMEOUT: Duration = Duration::from_millis(500);

/// Two handles on one store's state (for Redis, two separate connections)
/// and whatever must stay alive while they are used.
struct Harness {
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
    _keep_alive: Box<dyn Any + Send + Sync>,
}

fn embedded_harness() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(dir.path()).expect("open embedded store"));
    Some(Harness {
        first: Arc::clone(&store),
        second: store,
        _keep_alive: Box::new(dir),
    })
}

fn redis_harness() -> Option<Harness> {
    let server = RedisServer::start()?;
    let open = || -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(&server.url(), "sgtest", OP_TIMEOUT).expect("connect redis store"),
        )
    };
    Some(Harness {
        first: open(),
        second: open(),
        _keep_alive: Box::new(server),
    })
}

/// Runs every conformance body against the store built by `$harness`.
macro_rules! suite {
    ($module:ident, $harness:path) => {
        mod $module {
            suite!(@bodies $harness;
                session_put_get_delete,
                expired_sessions_are_invisible,
                issue_challenge_needs_a_live_session,
                challenge_round_trip,
                claim_unknown_memo,
                claim_after_expiry_is_refused_and_changes_nothing,
                claim_logs_the_session_in,
                claim_for_a_deleted_session_is_gone_and_blocks_replays,
                concurrent_claims_have_one_winner,
                sweep_keeps_live_sessions,
                cursor_round_trip,
                ping_answers,
            );
        }
    };
    (@bodies $harness:path; $($body:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $body() {
                if let Some(harness) = $harness() {
                    super::$body(&harness).await;
                }
            }
        )*
    };
}

suite!(embedded, super::embedded_harness);
suite!(redis, super::redis_harness);

fn key(name: &str) -> SessionKey {
    SessionKey(format!("{name:0>64}"))
}

fn pending(now: UnixTime, ttl: u64) -> SessionRecord {
    SessionRecord::pending(now, now + ttl)
}

fn claim(account: &str, block_time: UnixTime, now: UnixTime) -> Claim {
    Claim {
        account: account.to_string(),
        txid: format!("tx-{account}"),
        block_num: 4242,
        block_time,
        session_ttl_secs: 86_400,
        now,
    }
}

async fn session_put_get_delete(h: &Harness) {
    let now = now_unix();
    let k = key("a");
    assert_eq!(h.first.get_session(&k).await.unwrap(), None);
    let mut record = pending(now, 600);
    record.account = Some("alice".into());
    record.login = Some(LoginProof {
        method: "transfer".into(),
        txid: "abc".into(),
        block_num: 7,
        block_time: now - 3,
    });
    h.first.put_session(&k, &record).await.unwrap();
    assert_eq!(
        h.second.get_session(&k).await.unwrap(),
        Some(record.clone())
    );

    record.account = Some("bob".into());
    h.first.put_session(&k, &record).await.unwrap();
    assert_eq!(h.first.get_session(&k).await.unwrap(), Some(record));

    assert!(h.first.delete_session(&k).await.unwrap());
    assert_eq!(h.second.get_session(&k).await.unwrap(), None);
    assert!(!h.first.delete_session(&k).await.unwrap());
}

async fn expired_sessions_are_invisible(h: &Harness) {
    let now = now_unix();
    let k = key("expired");
    h.first
        .put_session(&k, &SessionRecord::pending(now - 100, now - 10))
        .await
        .unwrap();
    assert_eq!(h.first.get_session(&k).await.unwrap(), None);
    // expires_at == now counts as expired too.
    let edge = key("edge");
    h.first
        .put_session(&edge, &SessionRecord::pending(now - 100, now_unix()))
        .await
        .unwrap();
    assert_eq!(h.first.get_session(&edge).await.unwrap(), None);
}

async fn issue_challenge_needs_a_live_session(h: &Harness) {
    let now = now_unix();
    assert!(
        h.first
            .issue_challenge(&key("missing"), "login:AAAA", now + 600)
            .await
            .is_err()
    );
    let expired = key("expired");
    h.first
        .put_session(&expired, &SessionRecord::pending(now - 100, now - 10))
        .await
        .unwrap();
    assert!(
        h.first
            .issue_challenge(&expired, "login:BBBB", now + 600)
            .await
            .is_err()
    );
    // Nothing was recorded under the memo.
    assert_eq!(
        h.first
            .claim_challenge("login:aaaa", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::UnknownMemo
    );
}

async fn challenge_round_trip(h: &Harness) {
    let now = now_unix();
    let k = key("round");
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    let expires_at = now + 600;
    h.first
        .issue_challenge(&k, "Login:K7Q2-M9XD", expires_at)
        .await
        .unwrap();
    let session = h.second.get_session(&k).await.unwrap().expect("session");
    assert_eq!(session.memo.as_deref(), Some("Login:K7Q2-M9XD"));
    assert_eq!(session.memo_expires_at, expires_at);
    assert_eq!(session.account, None);
    // The pending session outlives the challenge and its grace period.
    assert!(
        session.expires_at > expires_at,
        "{} <= {expires_at}",
        session.expires_at
    );
    assert!(session.expires_at <= expires_at + 600);

    // A second challenge replaces the session's memo; the first one stays
    // claimable until it expires.
    h.first
        .issue_challenge(&k, "login:second", expires_at)
        .await
        .unwrap();
    let session = h.first.get_session(&k).await.unwrap().expect("session");
    assert_eq!(session.memo.as_deref(), Some("login:second"));
    // The same memo cannot be issued twice.
    assert!(
        h.first
            .issue_challenge(&k, "LOGIN:SECOND", expires_at)
            .await
            .is_err()
    );
}

async fn claim_unknown_memo(h: &Harness) {
    let now = now_unix();
    assert_eq!(
        h.first
            .claim_challenge("login:nope", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::UnknownMemo
    );
}

async fn claim_after_expiry_is_refused_and_changes_nothing(h: &Harness) {
    let now = now_unix();
    let k = key("late");
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    let expires_at = now + 600;
    h.first
        .issue_challenge(&k, "login:late", expires_at)
        .await
        .unwrap();
    for late in [expires_at, expires_at + 1] {
        assert_eq!(
            h.first
                .claim_challenge("login:late", &claim("mallory", late, now))
                .await
                .unwrap(),
            ClaimOutcome::Expired
        );
    }
    let session = h.first.get_session(&k).await.unwrap().expect("session");
    assert_eq!(session.account, None);
    // The record is unchanged: an in-time transfer still claims it.
    assert_eq!(
        h.first
            .claim_challenge("login:late", &claim("alice", expires_at - 1, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k)
    );
}

async fn claim_logs_the_session_in(h: &Harness) {
    let now = now_unix();
    let k = key("login");
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    h.first
        .issue_challenge(&k, "Login:AbCd-EfGh", now + 600)
        .await
        .unwrap();
    let winner = claim("alice", now + 3, now);
    // Matching ignores case and surrounding whitespace.
    assert_eq!(
        h.second
            .claim_challenge("  LOGIN:abcd-efgh\n", &winner)
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k.clone())
    );
    let session = h.first.get_session(&k).await.unwrap().expect("session");
    assert_eq!(session.account.as_deref(), Some("alice"));
    assert_eq!(session.memo, None);
    assert_eq!(session.expires_at, now + winner.session_ttl_secs);
    assert_eq!(session.created_at, now);
    assert_eq!(
        session.login,
        Some(LoginProof {
            method: "transfer".into(),
            txid: "tx-alice".into(),
            block_num: 4242,
            block_time: now + 3,
        })
    );
    // A replay or a later transfer changes nothing.
    for account in ["alice", "bob"] {
        assert_eq!(
            h.first
                .claim_challenge("login:abcd-efgh", &claim(account, now + 4, now))
                .await
                .unwrap(),
            ClaimOutcome::AlreadyClaimed
        );
    }
    assert_eq!(h.first.get_session(&k).await.unwrap(), Some(session));
}

async fn claim_for_a_deleted_session_is_gone_and_blocks_replays(h: &Harness) {
    let now = now_unix();
    let k = key("gone");
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    h.first
        .issue_challenge(&k, "login:gone", now + 600)
        .await
        .unwrap();
    assert!(h.first.delete_session(&k).await.unwrap());
    assert_eq!(
        h.first
            .claim_challenge("login:gone", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::SessionGone
    );
    // A session recreated under the same key is not logged in by a replay.
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    assert_eq!(
        h.first
            .claim_challenge("login:gone", &claim("bob", now, now))
            .await
            .unwrap(),
        ClaimOutcome::AlreadyClaimed
    );
    assert_eq!(
        h.first
            .get_session(&k)
            .await
            .unwrap()
            .expect("session")
            .account,
        None
    );
}

async fn concurrent_claims_have_one_winner(h: &Harness) {
    let now = now_unix();
    let k = key("race");
    h.first.put_session(&k, &pending(now, 60)).await.unwrap();
    h.first
        .issue_challenge(&k, "login:race", now + 600)
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = if i % 2 == 0 {
                Arc::clone(&h.first)
            } else {
                Arc::clone(&h.second)
            };
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let account = format!("racer{i}");
                barrier.wait().await;
                let outcome = store
                    .claim_challenge("login:race", &claim(&account, now, now))
                    .await;
                (account, outcome.expect("claim"))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (account, outcome) = task.await.expect("task");
        match outcome {
            ClaimOutcome::LoggedIn(session) => {
                assert_eq!(session, k);
                winners.push(account);
            }
            ClaimOutcome::AlreadyClaimed => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let session = h.second.get_session(&k).await.unwrap().expect("session");
    assert_eq!(session.account.as_ref(), Some(&winners[0]));
    assert_eq!(
        session.login.expect("login").txid,
        format!("tx-{}", winners[0])
    );
}

async fn sweep_keeps_live_sessions(h: &Harness) {
    let now = now_unix();
    let live = key("live");
    let dead = key("dead");
    h.first
        .put_session(&live, &pending(now, 600))
        .await
        .unwrap();
    h.first
        .issue_challenge(&live, "login:live", now + 300)
        .await
        .unwrap();
    h.first
        .put_session(&dead, &SessionRecord::pending(now - 100, now - 1))
        .await
        .unwrap();
    h.first.sweep_expired(now_unix()).await.unwrap();
    assert!(h.first.get_session(&live).await.unwrap().is_some());
    assert_eq!(h.first.get_session(&dead).await.unwrap(), None);
    assert_eq!(
        h.first
            .claim_challenge("login:live", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(live)
    );
}

async fn cursor_round_trip(h: &Harness) {
    assert_eq!(h.first.cursor().await.unwrap(), None);
    h.first.set_cursor(1_000).await.unwrap();
    assert_eq!(h.second.cursor().await.unwrap(), Some(1_000));
    h.second.set_cursor(u64::MAX).await.unwrap();
    assert_eq!(h.first.cursor().await.unwrap(), Some(u64::MAX));
}

async fn ping_answers(h: &Harness) {
    h.first.ping().await.unwrap();
    h.second.ping().await.unwrap();
}
