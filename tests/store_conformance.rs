//! One conformance suite for every `Store`: the same async bodies run
//! against the embedded (redb) store and the Redis store (one Redis, a
//! Sentinel set, a Cluster), so all keep the semantics documented on the
//! trait. Adding a store is one `suite!` line
//! plus a harness constructor. Store-specific behaviour (reopening, file
//! locks, key TTLs, Redis restarts, Sentinel and Cluster failovers) is
//! tested at the end.

mod support;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use steemgate::clock::{UnixTime, now_unix};
use steemgate::store::embedded::EmbeddedStore;
use steemgate::store::redis::RedisStore;
use steemgate::store::timed::TimedStore;
use steemgate::store::{
    ChainCursor, Claim, ClaimOutcome, LoginMethod, LoginProof, PendingConfirmation, SessionKey,
    SessionRecord, Store, WalletChallenge,
};
use support::redis_ha::{
    ClusterSet, SentinelSet, online_replicas, shared_cluster_set, shared_sentinel_set,
    unique_prefix,
};
use support::redis_server::RedisServer;
use support::wait_until;

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

fn memory_harness() -> Option<Harness> {
    let store: Arc<dyn Store> = Arc::new(steemgate::store::memory::MemoryStore::new());
    Some(Harness {
        first: Arc::clone(&store),
        second: store,
        _keep_alive: Box::new(()),
    })
}

/// A fresh histogram like the gateway's `store_operation_seconds`.
fn store_histogram() -> prometheus::HistogramVec {
    prometheus::HistogramVec::new(
        prometheus::HistogramOpts::new("store_operation_seconds", "test"),
        &["operation", "outcome"],
    )
    .expect("histogram")
}

/// The embedded store behind the timing wrapper the gateway puts in front
/// of every store: the wrapper must delegate every method faithfully.
fn timed_harness() -> Option<Harness> {
    let dir = tempfile::tempdir().expect("tempdir");
    let inner: Arc<dyn Store> =
        Arc::new(EmbeddedStore::open(dir.path()).expect("open embedded store"));
    let store: Arc<dyn Store> = Arc::new(TimedStore::new(inner, store_histogram()));
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

/// A private CA and a certificate for 127.0.0.1 signed by it, in `dir`:
/// `ca.pem`, `cert.pem`, `key.pem`.
fn make_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "steemgate redis test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), leaf_key.serialize_pem()).unwrap();
}

/// A Redis that also listens with TLS: the server, its scratch dir, the
/// TLS port and the CA file that signed its certificate.
fn tls_server() -> Option<(RedisServer, tempfile::TempDir, u16, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let tls_port = support::free_addr().port();
    let file = |name: &str| dir.path().join(name).display().to_string();
    let server = RedisServer::start_with_args(&[
        "--tls-port",
        &tls_port.to_string(),
        "--tls-cert-file",
        &file("cert.pem"),
        "--tls-key-file",
        &file("key.pem"),
        "--tls-ca-cert-file",
        &file("ca.pem"),
        "--tls-auth-clients",
        "no",
    ])?;
    let ca = file("ca.pem");
    Some((server, dir, tls_port, ca))
}

/// Two stores on a Redis reached over TLS (`rediss://` with `ca_file`,
/// the private CA that signed the server's certificate).
fn redis_tls_harness() -> Option<Harness> {
    let (server, dir, tls_port, ca) = tls_server()?;
    let url = format!("rediss://127.0.0.1:{tls_port}?ca_file={ca}");
    let open = || -> Arc<dyn Store> {
        Arc::new(RedisStore::connect(&url, "sgtls", OP_TIMEOUT).expect("connect TLS store"))
    };
    Some(Harness {
        first: open(),
        second: open(),
        _keep_alive: Box::new((server, dir)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_trusts_only_the_configured_ca() {
    let Some((_server, _dir, tls_port, ca)) = tls_server() else {
        return;
    };
    let store = |url: String| RedisStore::connect(&url, "sgtls", OP_TIMEOUT).expect("store");
    store(format!("rediss://127.0.0.1:{tls_port}?ca_file={ca}"))
        .ping()
        .await
        .expect("trusted through ca_file");
    // The system roots do not know the private CA: refused, never a
    // plaintext fallback.
    assert!(
        store(format!("rediss://127.0.0.1:{tls_port}"))
            .ping()
            .await
            .is_err()
    );
    // Another CA file is no better.
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path());
    let other_ca = other.path().join("ca.pem").display().to_string();
    assert!(
        store(format!("rediss://127.0.0.1:{tls_port}?ca_file={other_ca}"))
            .ping()
            .await
            .is_err()
    );
}

/// Two stores on the master the shared Sentinel set names (logouts wait
/// for a replica), under a prefix of their own.
fn sentinel_harness() -> Option<Harness> {
    let set = shared_sentinel_set()?;
    let prefix = unique_prefix("sgtest");
    let open = || -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(&set.url(&prefix), &prefix, OP_TIMEOUT)
                .expect("connect sentinel store"),
        )
    };
    Some(Harness {
        first: open(),
        second: open(),
        _keep_alive: Box::new(()),
    })
}

/// Two stores on the shared three-master Cluster (logouts wait for a
/// replica), under a prefix of their own.
fn cluster_harness() -> Option<Harness> {
    let set = shared_cluster_set()?;
    let prefix = unique_prefix("sgtest");
    let open = || -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(&set.url(&prefix), &prefix, OP_TIMEOUT)
                .expect("connect cluster store"),
        )
    };
    Some(Harness {
        first: open(),
        second: open(),
        _keep_alive: Box::new(()),
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
                named_values_compare_and_set,
                wallet_challenge_is_taken_once,
                concurrent_wallet_takes_have_one_winner,
                wallet_login_and_revocation,
                a_claim_confirms_a_wallet_login,
                pending_confirmations_come_due_in_expiration_order,
                grants_are_used_once_and_expire,
                concurrent_grant_uses_have_one_first,
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
suite!(redis_tls, super::redis_tls_harness);
suite!(redis_sentinel, super::sentinel_harness);
suite!(redis_cluster, super::cluster_harness);
suite!(memory, super::memory_harness);
suite!(timed, super::timed_harness);

#[tokio::test]
async fn timed_store_observes_each_operation_with_its_outcome() {
    let histogram = store_histogram();
    let store = TimedStore::new(
        Arc::new(steemgate::store::memory::MemoryStore::new()),
        histogram.clone(),
    );
    let count = |operation: &str, outcome: &str| {
        histogram
            .with_label_values(&[operation, outcome])
            .get_sample_count()
    };
    let key = key("timed");
    assert_eq!(store.get_session(&key).await.unwrap(), None);
    store.get_session(&key).await.unwrap();
    store.ping().await.unwrap();
    // A challenge for a session that does not exist is an error.
    assert!(
        store
            .issue_challenge(&key, "login abc", now_unix() + 60)
            .await
            .is_err()
    );
    assert_eq!(count("get_session", "ok"), 2);
    assert_eq!(count("ping", "ok"), 1);
    assert_eq!(count("issue_challenge", "error"), 1);
    assert_eq!(count("issue_challenge", "ok"), 0);
}

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

fn wallet_challenge(payload: &str, expires_at: UnixTime) -> WalletChallenge {
    WalletChallenge {
        method: LoginMethod::Signature,
        account: "alice".into(),
        payload: payload.into(),
        expires_at,
    }
}

fn unconfirmed(txid: &str) -> LoginProof {
    LoginProof {
        method: LoginMethod::SignedTransfer,
        txid: txid.into(),
        block_num: 0,
        block_time: 0,
    }
}

async fn grants_are_used_once_and_expire(h: &Harness) {
    let now = now_unix();
    let name = "conformance-code";
    assert_eq!(h.first.get_grant(name, now).await.unwrap(), None);
    assert_eq!(
        h.first.use_grant(name, "t1", now + 300, now).await.unwrap(),
        None,
        "an absent grant cannot be used"
    );
    h.first.put_grant(name, "payload", now + 60).await.unwrap();
    let seen = h.second.get_grant(name, now).await.unwrap().unwrap();
    assert_eq!(seen.value, "payload");
    assert_eq!(seen.expires_at, now + 60);
    assert_eq!(seen.used_by, None);

    // First use: answers the grant as it was, then it carries the mark and
    // lives until keep_until.
    let first = h
        .second
        .use_grant(name, "t1", now + 300, now)
        .await
        .unwrap();
    assert_eq!(first.as_ref().map(|g| g.used_by.clone()), Some(None));
    assert_eq!(first.map(|g| g.value).as_deref(), Some("payload"));
    let marked = h.first.get_grant(name, now).await.unwrap().unwrap();
    assert_eq!(marked.used_by.as_deref(), Some("t1"));
    assert_eq!(marked.expires_at, now + 300);
    // A second use changes nothing and names the first.
    let again = h
        .first
        .use_grant(name, "t2", now + 900, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.used_by.as_deref(), Some("t1"));
    assert_eq!(
        h.first
            .get_grant(name, now)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        now + 300
    );
    // Seen from after its expiry it is gone, and cannot be used.
    assert_eq!(h.first.get_grant(name, now + 300).await.unwrap(), None);
    assert_eq!(
        h.first
            .use_grant(name, "t3", now + 900, now + 301)
            .await
            .unwrap(),
        None
    );
    // Putting again replaces value and mark.
    h.first.put_grant(name, "fresh", now + 60).await.unwrap();
    let fresh = h.second.get_grant(name, now).await.unwrap().unwrap();
    assert_eq!((fresh.value.as_str(), fresh.used_by), ("fresh", None));
    // Delete reports whether there was one; names are separate.
    h.first
        .put_grant("conformance-other", "x", now + 60)
        .await
        .unwrap();
    assert!(h.second.delete_grant(name).await.unwrap());
    assert!(!h.second.delete_grant(name).await.unwrap());
    assert_eq!(h.first.get_grant(name, now).await.unwrap(), None);
    assert!(
        h.first
            .get_grant("conformance-other", now)
            .await
            .unwrap()
            .is_some()
    );
    // An already expired grant is never answered.
    h.first
        .put_grant("conformance-old", "x", now - 1)
        .await
        .unwrap();
    assert_eq!(
        h.first.get_grant("conformance-old", now).await.unwrap(),
        None
    );
}

async fn concurrent_grant_uses_have_one_first(h: &Harness) {
    let now = now_unix();
    let name = "conformance-race";
    h.first.put_grant(name, "code", now + 60).await.unwrap();
    let mut users = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            Arc::clone(&h.first)
        } else {
            Arc::clone(&h.second)
        };
        users.push(tokio::spawn(async move {
            let mark = format!("user-{i}");
            let before = store.use_grant(name, &mark, now + 300, now).await.unwrap();
            (mark, before.unwrap().used_by)
        }));
    }
    let mut firsts = Vec::new();
    let mut named = Vec::new();
    for user in users {
        let (mark, used_by) = user.await.unwrap();
        match used_by {
            None => firsts.push(mark),
            Some(first) => named.push(first),
        }
    }
    assert_eq!(firsts.len(), 1, "exactly one first use: {firsts:?}");
    assert!(
        named.iter().all(|n| n == &firsts[0]),
        "{named:?} vs {firsts:?}"
    );
}

async fn wallet_challenge_is_taken_once(h: &Harness) {
    let now = now_unix();
    let k = key("wallet-once");
    assert_eq!(h.first.take_wallet_challenge(&k).await.unwrap(), None);
    h.first
        .put_wallet_challenge(&k, &wallet_challenge("first", now + 60))
        .await
        .unwrap();
    h.first
        .put_wallet_challenge(&k, &wallet_challenge("second", now + 60))
        .await
        .unwrap();
    assert_eq!(
        h.second.take_wallet_challenge(&k).await.unwrap(),
        Some(wallet_challenge("second", now + 60)),
        "a new challenge replaces the previous one"
    );
    assert_eq!(h.first.take_wallet_challenge(&k).await.unwrap(), None);
    assert_eq!(h.second.take_wallet_challenge(&k).await.unwrap(), None);
    // An expired challenge is still returned during its grace (callers
    // say "expired" rather than "replayed"), and only once.
    h.first
        .put_wallet_challenge(&k, &wallet_challenge("late", now - 5))
        .await
        .unwrap();
    assert_eq!(
        h.first.take_wallet_challenge(&k).await.unwrap(),
        Some(wallet_challenge("late", now - 5))
    );
    assert_eq!(h.first.take_wallet_challenge(&k).await.unwrap(), None);
    // Other sessions do not see it.
    h.first
        .put_wallet_challenge(&k, &wallet_challenge("mine", now + 60))
        .await
        .unwrap();
    assert_eq!(
        h.second
            .take_wallet_challenge(&key("wallet-other"))
            .await
            .unwrap(),
        None
    );
}

async fn concurrent_wallet_takes_have_one_winner(h: &Harness) {
    let now = now_unix();
    for round in 0..10 {
        let k = key(&format!("wallet-race-{round}"));
        h.first
            .put_wallet_challenge(&k, &wallet_challenge("race", now + 60))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = if i % 2 == 0 {
                    Arc::clone(&h.first)
                } else {
                    Arc::clone(&h.second)
                };
                let k = k.clone();
                tokio::spawn(async move { store.take_wallet_challenge(&k).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap().is_some());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

async fn wallet_login_and_revocation(h: &Harness) {
    let now = now_unix();
    let k = key("wallet-login");
    let proof = unconfirmed("tx-1");
    assert!(
        !h.first
            .login_session(&k, "alice", &proof, now + 3600)
            .await
            .unwrap(),
        "no session, no login"
    );
    h.first.put_session(&k, &pending(now, 600)).await.unwrap();
    h.first
        .issue_challenge(&k, "wallet-memo-1", now + 60)
        .await
        .unwrap();
    assert!(
        h.second
            .login_session(&k, "alice", &proof, now + 3600)
            .await
            .unwrap()
    );
    let record = h.first.get_session(&k).await.unwrap().unwrap();
    assert_eq!(record.account.as_deref(), Some("alice"));
    assert_eq!(record.login.as_ref(), Some(&proof));
    assert_eq!(record.memo, None);
    assert_eq!(record.expires_at, now + 3600);
    assert!(
        !h.first
            .revoke_login(&k, &unconfirmed("tx-other"), "no")
            .await
            .unwrap(),
        "another proof is not revoked"
    );
    assert!(
        h.first
            .revoke_login(&k, &proof, "never landed")
            .await
            .unwrap()
    );
    let record = h.second.get_session(&k).await.unwrap().unwrap();
    assert_eq!(record.account, None);
    assert_eq!(record.login, None);
    assert_eq!(record.revoked_reason.as_deref(), Some("never landed"));
    assert!(!h.first.revoke_login(&k, &proof, "again").await.unwrap());
    // The next login clears the reason.
    assert!(
        h.first
            .login_session(&k, "alice", &unconfirmed("tx-2"), now + 3600)
            .await
            .unwrap()
    );
    let record = h.first.get_session(&k).await.unwrap().unwrap();
    assert_eq!(record.revoked_reason, None);
}

async fn a_claim_confirms_a_wallet_login(h: &Harness) {
    let now = now_unix();
    let k = key("wallet-confirm");
    let proof = unconfirmed("tx-confirm");
    h.first.put_session(&k, &pending(now, 600)).await.unwrap();
    h.first
        .issue_challenge(&k, "wallet-confirm-memo", now + 60)
        .await
        .unwrap();
    assert!(
        h.first
            .login_session(&k, "alice", &proof, now + 3600)
            .await
            .unwrap()
    );
    assert_eq!(
        h.second
            .claim_challenge("WALLET-CONFIRM-MEMO", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k.clone())
    );
    let record = h.first.get_session(&k).await.unwrap().unwrap();
    assert_eq!(
        record.login.as_ref().map(|l| l.method.as_str()),
        Some("transfer")
    );
    assert!(
        !h.first.revoke_login(&k, &proof, "late").await.unwrap(),
        "a confirmed login is not revoked"
    );
    assert_eq!(
        h.first
            .get_session(&k)
            .await
            .unwrap()
            .unwrap()
            .account
            .as_deref(),
        Some("alice")
    );
}

fn pending_confirmation(name: &str, txid: &str, expiration: UnixTime) -> PendingConfirmation {
    PendingConfirmation {
        key: key(name),
        proof: unconfirmed(txid),
        expiration,
    }
}

async fn pending_confirmations_come_due_in_expiration_order(h: &Harness) {
    let now = now_unix();
    let late = pending_confirmation("pending-late", "tx-late", now + 30);
    let early = pending_confirmation("pending-early", "tx-early", now + 10);
    let middle = pending_confirmation("pending-middle", "tx-middle", now + 20);
    let twin = pending_confirmation("pending-twin", "tx-twin", now + 20);
    for pending in [&late, &early, &middle, &twin, &early] {
        h.first.add_pending_confirmation(pending).await.unwrap();
    }
    // Due means expired strictly before the given time.
    assert_eq!(
        h.second
            .due_pending_confirmations(now + 10, 10)
            .await
            .unwrap(),
        vec![]
    );
    let due = h
        .second
        .due_pending_confirmations(now + 21, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 3, "{due:?}");
    assert_eq!(due[0], early, "earliest first, recorded once");
    assert!(due.contains(&middle) && due.contains(&twin), "{due:?}");
    assert_eq!(
        h.second
            .due_pending_confirmations(now + 100, 1)
            .await
            .unwrap(),
        vec![early.clone()]
    );
    h.second.remove_pending_confirmation(&early).await.unwrap();
    h.second.remove_pending_confirmation(&early).await.unwrap();
    h.first.remove_pending_confirmation(&twin).await.unwrap();
    assert_eq!(
        h.first
            .due_pending_confirmations(now + 100, 10)
            .await
            .unwrap(),
        vec![middle, late]
    );
}

async fn session_put_get_delete(h: &Harness) {
    let now = now_unix();
    let k = key("a");
    assert_eq!(h.first.get_session(&k).await.unwrap(), None);
    let mut record = pending(now, 600);
    record.account = Some("alice".into());
    record.login = Some(LoginProof {
        method: LoginMethod::Transfer,
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
            method: LoginMethod::Transfer,
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

/// The cursor's block id travels with its number (fork detection after a
/// restart or on another instance depends on it), and a cursor without an
/// id clears an older id rather than pairing it with a new number.
async fn cursor_round_trip(h: &Harness) {
    assert_eq!(h.first.cursor().await.unwrap(), None);
    let with_id = ChainCursor::new(1_000, "000003e8aabbccddeeff00112233445566778899");
    h.first.set_cursor(&with_id).await.unwrap();
    assert_eq!(h.second.cursor().await.unwrap(), Some(with_id));
    h.second
        .set_cursor(&ChainCursor::at(u64::MAX))
        .await
        .unwrap();
    assert_eq!(
        h.first.cursor().await.unwrap(),
        Some(ChainCursor::at(u64::MAX))
    );
}

async fn ping_answers(h: &Harness) {
    h.first.ping().await.unwrap();
    h.second.ping().await.unwrap();
}

async fn named_values_compare_and_set(h: &Harness) {
    let name = "conformance-value";
    assert_eq!(h.first.get_value(name).await.unwrap(), None);
    // Create only if absent (the first instance wins).
    assert!(h.first.swap_value(name, None, "one").await.unwrap());
    assert!(!h.second.swap_value(name, None, "other").await.unwrap());
    assert_eq!(
        h.second.get_value(name).await.unwrap().as_deref(),
        Some("one")
    );
    // Replace only from the value the writer read.
    assert!(
        !h.second
            .swap_value(name, Some("stale"), "two")
            .await
            .unwrap()
    );
    assert!(h.second.swap_value(name, Some("one"), "two").await.unwrap());
    assert_eq!(
        h.first.get_value(name).await.unwrap().as_deref(),
        Some("two")
    );
    // Other names are separate.
    assert_eq!(h.first.get_value("conformance-other").await.unwrap(), None);

    // Concurrent writers from the same value: exactly one wins.
    let mut writers = Vec::new();
    for i in 0..8 {
        let store = if i % 2 == 0 {
            Arc::clone(&h.first)
        } else {
            Arc::clone(&h.second)
        };
        writers.push(tokio::spawn(async move {
            store
                .swap_value(name, Some("two"), &format!("writer-{i}"))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for writer in writers {
        winners += usize::from(writer.await.unwrap());
    }
    assert_eq!(winners, 1);
    let last = h.first.get_value(name).await.unwrap().unwrap();
    assert!(last.starts_with("writer-"), "{last}");
}

// ---- Embedded store only -------------------------------------------------

#[tokio::test]
async fn embedded_state_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = now_unix();
    let k = key("durable");
    {
        let store = EmbeddedStore::open(dir.path()).expect("open");
        store.put_session(&k, &pending(now, 600)).await.unwrap();
        store
            .issue_challenge(&k, "login:durable", now + 300)
            .await
            .unwrap();
        store
            .set_cursor(&ChainCursor::new(77, "0000004d01"))
            .await
            .unwrap();
        assert!(store.swap_value("kept", None, "value").await.unwrap());
    }
    let store = EmbeddedStore::open(dir.path()).expect("reopen");
    assert_eq!(
        store.cursor().await.unwrap(),
        Some(ChainCursor::new(77, "0000004d01"))
    );
    assert_eq!(
        store.get_value("kept").await.unwrap().as_deref(),
        Some("value")
    );
    assert_eq!(
        store
            .get_session(&k)
            .await
            .unwrap()
            .expect("session")
            .memo
            .as_deref(),
        Some("login:durable")
    );
    assert_eq!(
        store
            .claim_challenge("login:durable", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k)
    );
}

#[tokio::test]
async fn embedded_second_open_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = EmbeddedStore::open(dir.path()).expect("open");
    let error = EmbeddedStore::open(dir.path()).expect_err("second open must fail");
    let message = error.to_string();
    assert!(message.contains("already open"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[tokio::test]
async fn embedded_garbage_file_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(steemgate::store::embedded::DATABASE_FILE);
    std::fs::write(&file, b"this is not a redb database\n".repeat(400)).expect("write garbage");
    let error = EmbeddedStore::open(dir.path()).expect_err("garbage must be refused");
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
}

#[tokio::test]
async fn embedded_sweep_counts_and_forgets_expired_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let now = now_unix();
    let live = key("live");
    store
        .put_session(&live, &pending(now, 10_000))
        .await
        .unwrap();
    store
        .issue_challenge(&live, "login:short", now + 100)
        .await
        .unwrap();
    for i in 0..3 {
        store
            .put_session(
                &key(&format!("dead{i}")),
                &SessionRecord::pending(now - 100, now - 1),
            )
            .await
            .unwrap();
    }
    assert_eq!(store.sweep_expired(now).await.unwrap(), 3);
    assert_eq!(store.sweep_expired(now).await.unwrap(), 0);
    // The challenge is kept through its grace period, then swept.
    assert_eq!(store.sweep_expired(now + 150).await.unwrap(), 0);
    assert_eq!(store.sweep_expired(now + 201).await.unwrap(), 1);
    assert_eq!(
        store
            .claim_challenge("login:short", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::UnknownMemo
    );
    assert!(store.get_session(&live).await.unwrap().is_some());
}

#[tokio::test]
async fn embedded_challenge_is_forgotten_after_its_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path()).expect("open");
    let now = now_unix();
    let k = key("grace");
    store.put_session(&k, &pending(now, 10_000)).await.unwrap();
    store
        .issue_challenge(&k, "login:grace", now + 100)
        .await
        .unwrap();
    // Processed late (after downtime) but within the grace: still matches,
    // judged by the transfer's block time.
    let late = claim("alice", now + 50, now + 190);
    assert_eq!(
        store.claim_challenge("login:grace", &late).await.unwrap(),
        ClaimOutcome::LoggedIn(k.clone())
    );
    let k2 = key("grace2");
    store.put_session(&k2, &pending(now, 10_000)).await.unwrap();
    store
        .issue_challenge(&k2, "login:grace2", now + 100)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_challenge("login:grace2", &claim("bob", now + 50, now + 201))
            .await
            .unwrap(),
        ClaimOutcome::UnknownMemo
    );
}

// ---- Redis store only ----------------------------------------------------

async fn raw_redis(server: &RedisServer) -> ::redis::aio::MultiplexedConnection {
    ::redis::Client::open(server.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

async fn pttl(con: &mut ::redis::aio::MultiplexedConnection, key: &str) -> i64 {
    ::redis::cmd("PTTL")
        .arg(key)
        .query_async(con)
        .await
        .expect("PTTL")
}

#[tokio::test]
async fn redis_keys_have_ttls_matching_their_records() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "ttl", OP_TIMEOUT).expect("connect");
    let mut raw = raw_redis(&server).await;
    let now = now_unix();
    let k = key("ttl");
    store.put_session(&k, &pending(now, 600)).await.unwrap();
    let session_key = format!("ttl:s:{}", k.as_str());
    assert_eq!(store.session_key(&k), session_key);
    let ttl = pttl(&mut raw, &session_key).await;
    assert!(ttl > 0 && ttl <= 600_000, "session PTTL {ttl}");

    store
        .issue_challenge(&k, "Login:TTL", now + 300)
        .await
        .unwrap();
    let challenge_ttl = pttl(&mut raw, "ttl:c:login:ttl").await;
    assert!(
        challenge_ttl > 300_000 && challenge_ttl <= 600_000,
        "challenge PTTL {challenge_ttl}"
    );
    // The pending session was raised to outlive the challenge's grace.
    let ttl = pttl(&mut raw, &session_key).await;
    assert!(ttl > 300_000 && ttl <= 600_000, "raised session PTTL {ttl}");

    let c = claim("alice", now, now);
    store.claim_challenge("login:ttl", &c).await.unwrap();
    let ttl = pttl(&mut raw, &session_key).await;
    assert!(
        ttl > 600_000 && ttl <= 86_400_000,
        "logged-in session PTTL {ttl}"
    );
    // Claiming does not extend the claimed record's life.
    let claimed_ttl = pttl(&mut raw, "ttl:c:login:ttl").await;
    assert!(
        claimed_ttl > 0 && claimed_ttl <= challenge_ttl,
        "claimed PTTL {claimed_ttl}"
    );

    assert!(store.acquire_follower_lease("me", 30).await.unwrap());
    let lease_ttl = pttl(&mut raw, "ttl:lease:follower").await;
    assert!(
        lease_ttl > 0 && lease_ttl <= 30_000,
        "lease PTTL {lease_ttl}"
    );

    store.set_cursor(&ChainCursor::at(5)).await.unwrap();
    assert_eq!(
        pttl(&mut raw, "ttl:cursor").await,
        -1,
        "the cursor is the one key without a TTL"
    );
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut raw)
        .await
        .expect("KEYS");
    for key in &keys {
        assert!(key.starts_with("ttl:"), "{key} outside the prefix");
        if key != "ttl:cursor" {
            assert!(pttl(&mut raw, key).await > 0, "{key} has no TTL");
        }
    }
}

/// The claim script reads everything before its first write: when the
/// session read fails (here a key of the wrong type; on a Cluster, a slot
/// that moved), the memo is not burned and a later claim still works.
#[tokio::test]
async fn redis_claim_whose_session_read_fails_leaves_the_memo_unclaimed() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "rb", OP_TIMEOUT).expect("connect");
    let mut raw = raw_redis(&server).await;
    let now = now_unix();
    let k = key("readfirst");
    store.put_session(&k, &pending(now, 600)).await.unwrap();
    store
        .issue_challenge(&k, "login:readfirst", now + 300)
        .await
        .unwrap();
    let session_key = store.session_key(&k);
    let _: () = ::redis::cmd("DEL")
        .arg(&session_key)
        .query_async(&mut raw)
        .await
        .expect("DEL");
    let _: () = ::redis::cmd("SET")
        .arg(&session_key)
        .arg("not a hash")
        .query_async(&mut raw)
        .await
        .expect("SET");
    assert!(
        store
            .claim_challenge("login:readfirst", &claim("alice", now, now))
            .await
            .is_err(),
        "a session that cannot be read fails the claim"
    );
    let claimed_by: Option<String> = ::redis::cmd("HGET")
        .arg("rb:c:login:readfirst")
        .arg("claimed_by")
        .query_async(&mut raw)
        .await
        .expect("HGET");
    assert_eq!(claimed_by, None, "the failed claim burned the memo");

    // Once the session is readable again, the same memo logs it in.
    let _: () = ::redis::cmd("DEL")
        .arg(&session_key)
        .query_async(&mut raw)
        .await
        .expect("DEL");
    store.put_session(&k, &pending(now, 600)).await.unwrap();
    assert_eq!(
        store
            .claim_challenge("login:readfirst", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k.clone())
    );
}

/// The data nodes' password is never sent to the sentinels: a sentinel
/// without a password serves a master that has one (a sentinel would
/// refuse an `AUTH` it has no password for).
#[tokio::test]
async fn sentinel_without_a_password_serves_a_master_with_one() {
    let Some(master) = RedisServer::start_with_args(&["--requirepass", "data-secret"]) else {
        return;
    };
    let config = format!(
        "sentinel monitor sgpw 127.0.0.1 {} 1\n\
         sentinel auth-pass sgpw data-secret\n",
        master.port()
    );
    let Some(sentinel) = RedisServer::start_sentinel(&config) else {
        return;
    };
    let url = format!(
        "redis+sentinel://:data-secret@127.0.0.1:{}/sgpw?prefix=pw&wait_replicas=0",
        sentinel.port()
    );
    let store = RedisStore::connect(&url, "pw", OP_TIMEOUT).expect("connect");
    let k = key("sentinelpw");
    let now = now_unix();
    store.put_session(&k, &pending(now, 60)).await.unwrap();
    assert!(store.get_session(&k).await.unwrap().is_some());
    // The session went to the master, with the data password.
    let mut raw =
        ::redis::Client::open(format!("redis://:data-secret@127.0.0.1:{}", master.port()))
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection");
    let exists: bool = ::redis::cmd("EXISTS")
        .arg(store.session_key(&k))
        .query_async(&mut raw)
        .await
        .expect("EXISTS");
    assert!(exists, "the session is on the master");
}

/// A sentinel that hangs (a frozen host, a partition) at the head of the
/// list does not hold up finding the master: every sentinel is asked at
/// once and the first valid answer wins.
#[tokio::test]
async fn a_frozen_first_sentinel_does_not_hold_up_finding_the_master() {
    let Some(master) = RedisServer::start() else {
        return;
    };
    let config = format!("sentinel monitor sgfz 127.0.0.1 {} 1\n", master.port());
    let Some(frozen) = RedisServer::start_sentinel(&config) else {
        return;
    };
    let Some(healthy) = RedisServer::start_sentinel(&config) else {
        return;
    };
    frozen.signal("STOP");
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/sgfz?prefix=fz&wait_replicas=0",
        frozen.port(),
        healthy.port()
    );
    let store = RedisStore::connect(&url, "fz", OP_TIMEOUT).expect("connect");
    let now = now_unix();
    for round in 0..3 {
        let k = key(&format!("frozen{round}"));
        store.put_session(&k, &pending(now, 60)).await.unwrap();
        assert!(store.get_session(&k).await.unwrap().is_some());
    }
    frozen.signal("CONT");
}

#[tokio::test]
async fn redis_prefixes_do_not_see_each_other() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = RedisStore::connect(&server.url(), "gw-a", OP_TIMEOUT).expect("connect");
    let b = RedisStore::connect(&server.url(), "gw-b", OP_TIMEOUT).expect("connect");
    let now = now_unix();
    let k = key("shared-name");
    a.put_session(&k, &pending(now, 600)).await.unwrap();
    a.issue_challenge(&k, "login:shared", now + 300)
        .await
        .unwrap();
    a.set_cursor(&ChainCursor::at(9)).await.unwrap();
    assert!(a.acquire_follower_lease("a", 30).await.unwrap());

    assert_eq!(b.get_session(&k).await.unwrap(), None);
    assert_eq!(b.cursor().await.unwrap(), None);
    assert_eq!(
        b.claim_challenge("login:shared", &claim("bob", now, now))
            .await
            .unwrap(),
        ClaimOutcome::UnknownMemo
    );
    assert!(b.acquire_follower_lease("b", 30).await.unwrap());
    assert!(!b.delete_session(&k).await.unwrap());
    assert!(a.get_session(&k).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_follower_lease_is_exclusive_until_it_expires() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let one = RedisStore::connect(&server.url(), "lease", OP_TIMEOUT).expect("connect");
    let two = RedisStore::connect(&server.url(), "lease", OP_TIMEOUT).expect("connect");
    assert!(one.acquire_follower_lease("one", 1).await.unwrap());
    assert!(!two.acquire_follower_lease("two", 1).await.unwrap());
    assert!(
        one.acquire_follower_lease("one", 1).await.unwrap(),
        "the holder renews"
    );
    assert!(!two.acquire_follower_lease("two", 1).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert!(
        two.acquire_follower_lease("two", 1).await.unwrap(),
        "takeover after expiry"
    );
    assert!(!one.acquire_follower_lease("one", 1).await.unwrap());
}

#[tokio::test]
async fn redis_cursor_survives_a_new_connection() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    {
        let store = RedisStore::connect(&server.url(), "cur", OP_TIMEOUT).expect("connect");
        store.set_cursor(&ChainCursor::at(123)).await.unwrap();
    }
    let store = RedisStore::connect(&server.url(), "cur", OP_TIMEOUT).expect("connect");
    assert_eq!(store.cursor().await.unwrap(), Some(ChainCursor::at(123)));
}

#[tokio::test]
async fn redis_password_and_database_number_in_the_url() {
    let Some(server) = RedisServer::start_with_args(&["--requirepass", "s3cret"]) else {
        return;
    };
    let url = format!("redis://:s3cret@127.0.0.1:{}/3", server.port());
    let store = RedisStore::connect(&url, "auth", OP_TIMEOUT).expect("connect");
    store.set_cursor(&ChainCursor::at(1)).await.unwrap();
    let mut raw = ::redis::Client::open(url.as_str())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("raw");
    let in_db3: Option<u64> = ::redis::cmd("GET")
        .arg("auth:cursor")
        .query_async(&mut raw)
        .await
        .expect("GET");
    assert_eq!(in_db3, Some(1));

    let wrong = format!("redis://:wrong@127.0.0.1:{}/3", server.port());
    let refused = RedisStore::connect(&wrong, "auth", OP_TIMEOUT).expect("connect is lazy");
    let error = refused.ping().await.expect_err("wrong password must fail");
    assert!(
        !error.to_string().contains("wrong"),
        "the password leaked: {error}"
    );
    assert!(RedisStore::connect("not a url", "auth", OP_TIMEOUT).is_err());
}

/// A password with unescaped `/`, `?` and `@` still reaches Redis whole:
/// the credentials end at the last `@`.
#[tokio::test]
async fn redis_password_with_slash_question_mark_and_at_sign() {
    let Some(server) = RedisServer::start_with_args(&["--requirepass", "pa/ss?x@y"]) else {
        return;
    };
    let url = format!("redis://:pa/ss?x@y@127.0.0.1:{}/2", server.port());
    let store = RedisStore::connect(&url, "odd", OP_TIMEOUT).expect("connect");
    store.set_cursor(&ChainCursor::at(7)).await.unwrap();
    assert_eq!(store.cursor().await.unwrap(), Some(ChainCursor::at(7)));
}

/// At startup the store reports a master with fewer connected replicas
/// than `wait_replicas` (logouts there would answer 503), and nothing once
/// there are enough.
#[tokio::test]
async fn redis_warns_when_the_master_has_fewer_replicas_than_wait_replicas() {
    let Some(master) = RedisServer::start_with_args(&["--repl-diskless-sync-delay", "0"]) else {
        return;
    };
    let url = |n: u32| format!("{}?wait_replicas={n}", master.url());
    let store = RedisStore::connect(&url(1), "rep", OP_TIMEOUT).expect("connect");
    assert_eq!(
        store.replica_shortfall().await.unwrap(),
        vec![("the master".to_string(), 0)]
    );
    let warnings = store.startup_warnings().await.unwrap();
    assert!(
        warnings.len() == 1 && warnings[0].contains("wait_replicas is 1"),
        "{warnings:?}"
    );
    let none = RedisStore::connect(&url(0), "rep", OP_TIMEOUT).expect("connect");
    assert!(none.startup_warnings().await.unwrap().is_empty());

    let port = master.port().to_string();
    let Some(_replica) = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]) else {
        return;
    };
    assert!(
        wait_until(Duration::from_secs(20), || online_replicas(master.port())
            == 1),
        "the replica never came online"
    );
    assert!(store.startup_warnings().await.unwrap().is_empty());
    let two = RedisStore::connect(&url(2), "rep", OP_TIMEOUT).expect("connect");
    assert_eq!(
        two.replica_shortfall().await.unwrap(),
        vec![("the master".to_string(), 1)]
    );
}

/// On a Cluster every master is checked, each named by its address.
#[tokio::test]
async fn cluster_replica_shortfall_names_each_master() {
    let Some(set) = shared_cluster_set() else {
        return;
    };
    let prefix = unique_prefix("rep");
    let enough = RedisStore::connect(
        &format!("{}&wait_replicas=1", set.url(&prefix)),
        &prefix,
        OP_TIMEOUT,
    )
    .expect("connect");
    let ok = wait_until(Duration::from_secs(20), || {
        set.nodes
            .iter()
            .filter(|n| online_replicas(n.port()) == 1)
            .count()
            == 3
    });
    assert!(ok, "the replicas never came online");
    assert!(enough.startup_warnings().await.unwrap().is_empty());
    let too_many = RedisStore::connect(
        &format!("{}&wait_replicas=2", set.url(&prefix)),
        &prefix,
        OP_TIMEOUT,
    )
    .expect("connect");
    let short = too_many.replica_shortfall().await.unwrap();
    assert_eq!(short.len(), 3, "{short:?}");
    for (node, connected) in &short {
        assert_eq!(*connected, 1, "{node}");
        assert!(
            set.nodes
                .iter()
                .any(|n| node.contains(&n.port().to_string())),
            "{node} is not one of ours"
        );
    }
}

#[tokio::test]
async fn redis_restart_fails_fast_then_recovers_without_a_new_store() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "restart", OP_TIMEOUT).expect("connect");
    let now = now_unix();
    let k = key("restart");
    store.put_session(&k, &pending(now, 600)).await.unwrap();

    server.stop();
    // Bounded generously: the point is "an error, not a hang".
    let bound = OP_TIMEOUT * 6;
    for _ in 0..3 {
        let answer = tokio::time::timeout(bound, store.get_session(&k)).await;
        assert!(
            matches!(answer, Ok(Err(_))),
            "expected a store error, got {answer:?}"
        );
        let answer = tokio::time::timeout(
            bound,
            store.claim_challenge("login:x", &claim("a", now, now)),
        )
        .await;
        assert!(
            matches!(answer, Ok(Err(_))),
            "expected a store error, got {answer:?}"
        );
    }

    server.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if store.ping().await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the store did not reconnect");
    // The restarted server has no data (no persistence) but works.
    assert_eq!(store.get_session(&k).await.unwrap(), None);
    store.put_session(&k, &pending(now, 600)).await.unwrap();
    assert!(store.get_session(&k).await.unwrap().is_some());
    store
        .issue_challenge(&k, "login:after", now + 300)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_challenge("login:after", &claim("alice", now, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k)
    );
}

#[tokio::test]
async fn redis_revocations_reach_other_instances() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let deleting = RedisStore::connect(&server.url(), "rev", OP_TIMEOUT).expect("connect");
    let caching = RedisStore::connect(&server.url(), "rev", OP_TIMEOUT).expect("connect");
    let other_prefix = RedisStore::connect(&server.url(), "other", OP_TIMEOUT).expect("connect");
    let mut revoked = caching.revocations().expect("redis has revocations");
    let k = key("revoked");
    // The subscriber connects in the background: repeat until it hears one.
    let mut heard = None;
    for _ in 0..50 {
        other_prefix
            .delete_session(&key("elsewhere"))
            .await
            .unwrap();
        deleting.delete_session(&k).await.unwrap();
        if let Ok(Ok(key)) = tokio::time::timeout(Duration::from_millis(100), revoked.recv()).await
        {
            heard = Some(key);
            break;
        }
    }
    assert_eq!(heard, Some(k), "only this prefix's revocations are heard");
}

#[test]
fn redis_store_is_built_outside_a_runtime_and_used_in_several() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = Arc::new(RedisStore::connect(&server.url(), "rt", OP_TIMEOUT).expect("connect"));
    for block in 1..=3u64 {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = Arc::clone(&store);
        runtime.block_on(async move {
            store.set_cursor(&ChainCursor::at(block)).await.unwrap();
            assert_eq!(store.cursor().await.unwrap(), Some(ChainCursor::at(block)));
        });
        // The runtime (and its connection) is gone; the next one reconnects.
    }
}

// ---- Redis Sentinel and Cluster: failover and resharding -----------------

/// Retries `op` (a store call) until it succeeds, for at most 30 s: the
/// store must find the new master by itself, without being rebuilt.
async fn until_ok<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = steemgate::store::StoreResult<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match op().await {
            Ok(value) => return value,
            Err(e) if std::time::Instant::now() > deadline => panic!("{what}: still {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A session logged in through a claim on `memo`.
async fn claimed_session(store: &RedisStore, name: &str, memo: &str, account: &str) -> SessionKey {
    let now = now_unix();
    let k = key(name);
    // A set just started on a busy machine may take longer than one op
    // timeout to answer its first call: that is not what these tests test.
    let record = pending(now, 600);
    until_ok("first write to a new set", || {
        store.put_session(&k, &record)
    })
    .await;
    store.issue_challenge(&k, memo, now + 600).await.unwrap();
    assert_eq!(
        store
            .claim_challenge(memo, &claim(account, now + 1, now))
            .await
            .unwrap(),
        ClaimOutcome::LoggedIn(k.clone())
    );
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_keeps_sessions_claims_once_and_never_loses_a_logout() {
    let Some(mut set) = SentinelSet::start() else {
        return;
    };
    let store = RedisStore::connect(&set.url("fo"), "fo", Duration::from_secs(1)).expect("store");
    let alice = claimed_session(&store, "alice", "login:aaaa-1111", "alice").await;
    let bob = claimed_session(&store, "bob", "login:bbbb-2222", "bob").await;
    // Bob logs out just before the master dies: the logout came back only
    // once a replica had it, so the promoted replica has it too.
    assert!(store.delete_session(&bob).await.unwrap());
    let old = set.master_index();
    let new = set.kill_master_and_wait_for_failover();
    assert_ne!(old, new);

    // The same store follows the new master.
    let record = until_ok("get alice", || store.get_session(&alice))
        .await
        .expect("alice's session survived the failover");
    assert_eq!(record.account.as_deref(), Some("alice"));
    assert_eq!(
        store.get_session(&bob).await.unwrap(),
        None,
        "bob stays out"
    );
    // Claims stay exactly-once: a replay of alice's memo changes nothing.
    let now = now_unix();
    assert_eq!(
        store
            .claim_challenge("login:aaaa-1111", &claim("mallory", now + 2, now))
            .await
            .unwrap(),
        ClaimOutcome::AlreadyClaimed
    );
    // New logins work on the new master.
    let carol = claimed_session(&store, "carol", "login:cccc-3333", "carol").await;
    let online = wait_until(Duration::from_secs(20), || {
        support::redis_ha::online_replicas(set.nodes[new].port()) == 1
    });
    assert!(online, "the other replica follows the new master");

    // With its only replica frozen, a logout cannot be made durable: the
    // store says so instead of reporting success.
    let replica = (0..3).find(|&i| i != old && i != new).expect("a replica");
    set.nodes[replica].signal("STOP");
    let refused = store.delete_session(&carol).await;
    set.nodes[replica].signal("CONT");
    let e = refused.expect_err("a logout no replica acknowledged");
    assert!(e.to_string().contains("acknowledged"), "{e}");
    // Once the replica is back, the logout is confirmed (carol is gone).
    until_ok("confirm the logout", || store.delete_session(&carol)).await;
    assert_eq!(store.get_session(&carol).await.unwrap(), None);
}

/// `CLUSTER SETSLOT slot NODE id` on every running node.
fn assign_slot(set: &mut ClusterSet, slot: u16, owner: &str) {
    for i in 0..set.nodes.len() {
        if set.nodes[i].is_running() && support::redis_ha::is_master(set.nodes[i].port()) {
            let mut con = support::redis_ha::raw(set.nodes[i].port());
            let _: () = ::redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(owner)
                .query(&mut con)
                .expect("SETSLOT NODE");
        }
    }
}

/// `MIGRATE` of `keys` from node `from` to node `to`.
fn migrate(set: &ClusterSet, from: usize, to: usize, keys: &[String]) {
    let mut con = support::redis_ha::raw(set.nodes[from].port());
    let _: () = ::redis::cmd("MIGRATE")
        .arg("127.0.0.1")
        .arg(set.nodes[to].port())
        .arg("")
        .arg(0)
        .arg(5000)
        .arg("KEYS")
        .arg(keys)
        .query(&mut con)
        .expect("MIGRATE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_survives_resharding_and_a_master_failure() {
    let Some(mut set) = ClusterSet::start() else {
        return;
    };
    let store = RedisStore::connect(&set.url("mv"), "mv", Duration::from_secs(1)).expect("store");
    let slot = set.slot_of("{mv}");
    let alice = claimed_session(&store, "alice", "login:aaaa-1111", "alice").await;
    let bob = claimed_session(&store, "bob", "login:bbbb-2222", "bob").await;

    // Move the deployment's slot to another master, alice's session first:
    // while the slot is migrating, the store follows `ASK` to her record.
    let from = set.master_of_slot(slot).expect("slot owner");
    let to = (0..6)
        .find(|&i| i != from && support::redis_ha::is_master(set.nodes[i].port()))
        .expect("another master");
    let (from_id, to_id) = (set.node_id(from), set.node_id(to));
    let setslot = |node: usize, state: &str, id: &str| {
        let mut con = support::redis_ha::raw(set.nodes[node].port());
        let _: () = ::redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(slot)
            .arg(state)
            .arg(id)
            .query(&mut con)
            .expect("SETSLOT");
    };
    setslot(to, "IMPORTING", &from_id);
    setslot(from, "MIGRATING", &to_id);
    migrate(&set, from, to, &[store.session_key(&alice)]);
    let record = store
        .get_session(&alice)
        .await
        .unwrap()
        .expect("alice via ASK");
    assert_eq!(record.account.as_deref(), Some("alice"));
    let bob_record = store
        .get_session(&bob)
        .await
        .unwrap()
        .expect("bob, not moved yet");
    assert_eq!(bob_record.account.as_deref(), Some("bob"));
    // The rest of the slot, then the new owner for everyone: `MOVED`.
    let mut con = support::redis_ha::raw(set.nodes[from].port());
    let rest: Vec<String> = ::redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(1000)
        .query(&mut con)
        .unwrap();
    assert!(!rest.is_empty());
    migrate(&set, from, to, &rest);
    assign_slot(&mut set, slot, &to_id);
    assert_eq!(set.master_of_slot(slot), Some(to));
    // Durable writes wait for a replica's acknowledgement: the new owner's
    // replica must be in sync first, or a busy machine times the WAIT out.
    let online = wait_until(Duration::from_secs(20), || {
        support::redis_ha::online_replicas(set.nodes[to].port()) == 1
    });
    assert!(online, "the new owner has its replica");
    let now = now_unix();
    assert_eq!(
        store
            .claim_challenge("login:bbbb-2222", &claim("mallory", now + 2, now))
            .await
            .unwrap(),
        ClaimOutcome::AlreadyClaimed,
        "a claim after the move is still refused"
    );
    let carol = claimed_session(&store, "carol", "login:cccc-3333", "carol").await;
    assert!(store.delete_session(&bob).await.unwrap());

    // The owner dies; its replica takes over and the same store follows.
    set.nodes[to].stop();
    let promoted = wait_until(Duration::from_secs(30), || {
        set.master_of_slot(slot).is_some_and(|i| i != to)
    });
    assert!(promoted, "no replica took over the slot");
    let record = until_ok("get carol", || store.get_session(&carol))
        .await
        .expect("carol survived the failover");
    assert_eq!(record.account.as_deref(), Some("carol"));
    assert_eq!(
        store.get_session(&bob).await.unwrap(),
        None,
        "bob stays out"
    );
    let now = now_unix();
    let replay = claim("mallory", now + 2, now);
    assert_eq!(
        until_ok("replay", || store
            .claim_challenge("login:cccc-3333", &replay))
        .await,
        ClaimOutcome::AlreadyClaimed
    );
    // Logins keep working on the promoted replica.
    claimed_session(&store, "dave", "login:dddd-4444", "dave").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_revocations_reach_a_subscriber_whose_node_died() {
    let Some(mut set) = ClusterSet::start() else {
        return;
    };
    let url = set.url("rv");
    let listener = RedisStore::connect(&url, "rv", Duration::from_secs(1)).expect("store");
    let writer = RedisStore::connect(&url, "rv", Duration::from_secs(1)).expect("store");
    let mut revoked = listener.revocations().expect("a feed");
    let mut feed = listener.revocation_feed_status().expect("a feed status");
    tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| *up))
        .await
        .expect("subscribed in time")
        .expect("feed");
    // A logout by another instance reaches the listener.
    let first = claimed_session(&writer, "first", "login:aaaa-1111", "alice").await;
    assert!(writer.delete_session(&first).await.unwrap());
    let heard = tokio::time::timeout(Duration::from_secs(5), revoked.recv())
        .await
        .expect("in time")
        .expect("a key");
    assert_eq!(heard, first);

    // The subscriber listens on the first seed: kill it. The feed goes
    // down, then up again on another node.
    set.nodes[0].stop();
    tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| !*up))
        .await
        .expect("the feed noticed")
        .expect("feed");
    tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| *up))
        .await
        .expect("resubscribed on another node")
        .expect("feed");
    // Whether or not the slot moved, the next logout is heard.
    let second = until_ok("log in after the failure", || async {
        let now = now_unix();
        let k = key("second");
        writer.put_session(&k, &pending(now, 600)).await?;
        writer
            .login_session(&k, "bob", &unconfirmed("tx-bob"), now + 600)
            .await?;
        Ok(k)
    })
    .await;
    until_ok("logout", || writer.delete_session(&second)).await;
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match revoked.recv().await {
                Ok(key) if key == second => return key,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("feed closed: {e}"),
            }
        }
    })
    .await
    .expect("the second logout heard");
    assert_eq!(heard, second);
}

// ---- Durable writes on their own connection; subscriber keepalive --------

/// The blocked `WAIT` on one of the data nodes on `ports`: `(port, client
/// id)`, once the same client has been seen blocked in `WAIT` twice, 200 ms
/// apart (another test's `WAIT` on a shared set is over in far less).
fn blocked_wait(ports: &[u16]) -> Option<(u16, u64)> {
    let blocked = || -> Vec<(u16, u64)> {
        ports
            .iter()
            .flat_map(|&port| {
                let mut con = support::redis_ha::raw(port);
                let list: String = ::redis::cmd("CLIENT")
                    .arg("LIST")
                    .query(&mut con)
                    .unwrap_or_default();
                list.lines()
                    .filter(|line| {
                        line.contains(" cmd=wait ")
                            && line
                                .split(' ')
                                .any(|f| f.strip_prefix("flags=").is_some_and(|f| f.contains('b')))
                    })
                    .filter_map(|line| line.strip_prefix("id=")?.split(' ').next()?.parse().ok())
                    .map(|id| (port, id))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let first = blocked();
    std::thread::sleep(Duration::from_millis(200));
    let second = blocked();
    first.into_iter().find(|c| second.contains(c))
}

/// A logout whose `WAIT` cannot be satisfied (`url` asks for more replicas
/// than the master has) blocks only its own connection: while that `WAIT`
/// is blocked on the server, the same store reads and writes sessions, and
/// the `WAIT` is still blocked after they answered. Then the `WAIT` is
/// released (`CLIENT UNBLOCK`) and the logout reports that it is not
/// durable, as before.
async fn a_blocked_wait_holds_up_no_other_call(url: &str, prefix: &str, data_ports: &[u16]) {
    // A long timeout: the `WAIT` blocks for half of it unless released.
    let store = Arc::new(RedisStore::connect(url, prefix, Duration::from_secs(30)).expect("store"));
    let now = now_unix();
    let leaving = key("leaving");
    let staying = key("staying");
    store
        .put_session(&leaving, &pending(now, 600))
        .await
        .unwrap();
    store
        .put_session(&staying, &pending(now, 600))
        .await
        .unwrap();
    let logout = tokio::spawn({
        let store = Arc::clone(&store);
        let leaving = leaving.clone();
        async move { store.delete_session(&leaving).await }
    });
    let ports = data_ports.to_vec();
    let mut found = None;
    let blocked = wait_until(Duration::from_secs(20), || {
        found = blocked_wait(&ports);
        found.is_some()
    });
    assert!(blocked, "the logout's WAIT never blocked on a data node");
    let (port, client) = found.expect("a blocked WAIT");

    // Other calls of the same store answer while the WAIT is blocked.
    assert!(store.get_session(&staying).await.unwrap().is_some());
    store
        .put_session(&key("arriving"), &pending(now, 600))
        .await
        .unwrap();
    assert!(store.get_session(&key("arriving")).await.unwrap().is_some());
    let still = blocked_wait(&ports);
    assert_eq!(
        still,
        Some((port, client)),
        "the WAIT returned before the other calls answered"
    );
    assert!(!logout.is_finished(), "the logout came back too early");

    let mut con = support::redis_ha::raw(port);
    let unblocked: i64 = ::redis::cmd("CLIENT")
        .arg("UNBLOCK")
        .arg(client)
        .query(&mut con)
        .expect("CLIENT UNBLOCK");
    assert_eq!(unblocked, 1);
    let refused = logout.await.expect("logout task");
    let e = refused.expect_err("a logout too few replicas acknowledged");
    assert!(e.to_string().contains("acknowledged"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_blocked_wait_holds_up_no_other_call() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // No replica at all: WAIT 1 blocks until released.
    let url = format!("{}?wait_replicas=1", server.url());
    a_blocked_wait_holds_up_no_other_call(&url, "blk", &[server.port()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_a_blocked_wait_holds_up_no_other_call() {
    let Some(set) = shared_sentinel_set() else {
        return;
    };
    let prefix = unique_prefix("blk");
    // Two replicas: WAIT 3 blocks until released.
    let url = format!("{}&wait_replicas=3", set.url(&prefix));
    let ports: Vec<u16> = set.nodes.iter().map(RedisServer::port).collect();
    a_blocked_wait_holds_up_no_other_call(&url, &prefix, &ports).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_a_blocked_wait_holds_up_no_other_call() {
    let Some(set) = shared_cluster_set() else {
        return;
    };
    let prefix = unique_prefix("blk");
    // One replica per master: WAIT 2 blocks until released.
    let url = format!("{}&wait_replicas=2", set.url(&prefix));
    let ports: Vec<u16> = set.nodes.iter().map(RedisServer::port).collect();
    a_blocked_wait_holds_up_no_other_call(&url, &prefix, &ports).await;
}

/// A subscription whose server stops answering without closing anything
/// (a frozen process, like a blackholed path) is noticed by the keepalive
/// PING: the feed goes down, so session caches stop answering from memory,
/// and comes back, resubscribed, once the server answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_revocation_feed_notices_a_frozen_server_and_recovers() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let listener = RedisStore::connect(&server.url(), "ka", OP_TIMEOUT).expect("store");
    let writer = RedisStore::connect(&server.url(), "ka", OP_TIMEOUT).expect("store");
    let mut revoked = listener.revocations().expect("a feed");
    let mut feed = listener.revocation_feed_status().expect("a feed status");
    tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| *up))
        .await
        .expect("subscribed in time")
        .expect("feed");
    // Healthy: the keepalive PINGs are answered and the feed stays up.
    feed.borrow_and_update();
    let pings = || -> u64 {
        let mut con = support::redis_ha::raw(server.port());
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut con)
            .unwrap_or_default();
        info.lines()
            .find_map(|line| line.strip_prefix("cmdstat_ping:calls="))
            .and_then(|rest| rest.split(',').next())
            .and_then(|calls| calls.parse().ok())
            .unwrap_or(0)
    };
    let pinged = wait_until(Duration::from_secs(20), || pings() >= 3);
    assert!(pinged, "the subscriber sent no keepalive PING");
    assert!(
        !feed.has_changed().expect("feed") && *feed.borrow(),
        "answered PINGs took the feed down"
    );

    server.signal("STOP");
    // Bounded generously: without a keepalive the feed would stay "up"
    // forever, since nothing errors on a frozen peer.
    let noticed = tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| !*up)).await;
    server.signal("CONT");
    noticed
        .expect("the frozen server was noticed")
        .expect("feed");
    tokio::time::timeout(Duration::from_secs(10), feed.wait_for(|up| *up))
        .await
        .expect("resubscribed once the server answers")
        .expect("feed");

    // The new subscription hears logouts.
    let k = key("after-freeze");
    let mut heard = None;
    for _ in 0..50 {
        if writer.delete_session(&k).await.is_ok()
            && let Ok(Ok(key)) =
                tokio::time::timeout(Duration::from_millis(200), revoked.recv()).await
            && key == k
        {
            heard = Some(key);
            break;
        }
    }
    assert_eq!(heard, Some(k), "a logout after the freeze was heard");
}
