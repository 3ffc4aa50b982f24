//! Several gateways behind one load balancer, sharing one Redis: the real
//! binary, twice, against one in-test devnet and a private `redis-server`
//! (or a private Sentinel set or Cluster, `support::redis_ha`).
//!
//! Why end to end: what matters here (a login seen by every instance, a
//! logout honoured everywhere, exactly one follower, failing closed while
//! Redis is down, no Redis read per request in steady state) only shows
//! between processes. Every test skips with a notice when `redis-server` is
//! not installed (and fails under `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use steemgate::auth::cookie::CookieCodec;
use steemgate::store::Store;
use steemgate::store::redis::RedisStore;
use support::gateway::{
    Background, GATE, GatewayProcess, Response, SECRET, TestDevnet, echo_upstream, get, metric,
    post, start_login_at, test_config_with_store, upstream_saw, wait_logged_in_at,
};
use support::redis_ha::{ClusterSet, SentinelSet};
use support::redis_server::RedisServer;
use support::wallet::{Wallet, set_keys_on, sign_transaction};
use support::{free_addr, wait_until};

/// Two gateways on one Redis (or a Sentinel set: `R`) and one devnet.
struct Pair<R = RedisServer> {
    gateways: Vec<GatewayProcess>,
    devnet: TestDevnet,
    redis: R,
    _upstream: Background,
    _dir: tempfile::TempDir,
}

impl Pair {
    /// `None` when `redis-server` is missing. `session_extra`: extra
    /// `session:` lines for both configs.
    fn start(redis_args: &[&str], session_extra: &str) -> Option<Self> {
        let redis = RedisServer::start_with_args(redis_args)?;
        let url = redis.url();
        Some(Self::start_on(redis, &url, session_extra))
    }
}

impl<R> Pair<R> {
    /// Two gateways on the store at `store_url`, which `redis` runs.
    fn start_on(redis: R, store_url: &str, session_extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let devnet = TestDevnet::start();
        devnet.produce_block(None);
        let upstream = echo_upstream();
        // The two configs differ only in their listen and admin addresses.
        let gateways = (0..2)
            .map(|_| {
                let (addr, admin) = (free_addr(), free_addr());
                let config = test_config_with_store(
                    addr,
                    admin,
                    &devnet.url(),
                    upstream.addr,
                    store_url,
                    session_extra,
                );
                GatewayProcess::start(&config, dir.path(), addr, admin)
            })
            .collect();
        let pair = Self {
            gateways,
            devnet,
            redis,
            _upstream: upstream,
            _dir: dir,
        };
        for gateway in &pair.gateways {
            assert!(
                wait_until(Duration::from_secs(30), || get(
                    gateway.admin,
                    "/ready",
                    &[]
                )
                .status
                    == 200),
                "gateway {} never became ready",
                gateway.addr
            );
        }
        pair
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.gateways[i].addr
    }

    fn admin(&self, i: usize) -> SocketAddr {
        self.gateways[i].admin
    }

    /// Logs `account` in through instance `via`: (cookie, memo, txid).
    fn login_via(&self, via: usize, account: &str) -> (String, String, String) {
        let (cookie, memo) = start_login_at(self.addr(via));
        let txid = self.devnet.transfer(account, GATE, "0.001 STEEM", &memo);
        self.devnet.produce_block(None);
        wait_logged_in_at(self.addr(via), &cookie, account, 10);
        (cookie, memo, txid)
    }

    /// Instances currently holding the follower lease.
    fn lease_holders(&self) -> Vec<usize> {
        (0..self.gateways.len())
            .filter(|&i| metric(self.admin(i), "steemgate_follower_lease_held") == Some(1.0))
            .collect()
    }

    /// Waits (bounded) until some instance holds the follower lease; the holders.
    fn wait_for_a_follower(&self) -> Vec<usize> {
        let mut holders = Vec::new();
        assert!(
            wait_until(Duration::from_secs(20), || {
                holders = self.lease_holders();
                !holders.is_empty()
            }),
            "nobody follows the chain"
        );
        holders
    }

    /// [`Pair::lease_holders`] when only instance `alive` still answers.
    fn lease_holders_alive(&self, alive: usize) -> Vec<usize> {
        (metric(self.admin(alive), "steemgate_follower_lease_held") == Some(1.0))
            .then_some(alive)
            .into_iter()
            .collect()
    }
}

/// A request to the `required` route `/app` with the session cookie.
fn app(addr: SocketAddr, cookie: &str, accept: &str) -> Response {
    get(
        addr,
        "/app",
        &[&format!("Cookie: {cookie}"), &format!("Accept: {accept}")],
    )
}

/// The identity the upstream saw, or `None` when the gateway answered itself.
fn forwarded_account(response: &Response) -> Option<Vec<String>> {
    (response.status == 200)
        .then(|| serde_json::from_str::<Value>(&response.body).ok())
        .flatten()
        .filter(|echo| echo.get("headers").is_some())
        .map(|echo| upstream_saw(&echo, "x-steem-account"))
}

fn logins_total<R>(pair: &Pair<R>, instances: &[usize]) -> f64 {
    instances
        .iter()
        .map(|&i| metric(pair.admin(i), "steemgate_logins_total").unwrap_or(0.0))
        .sum()
}

/// `cmdstat_<command>:calls=N` from Redis `INFO commandstats`.
fn redis_calls(redis: &RedisServer) -> HashMap<String, u64> {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut connection = client.get_connection().unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut connection)
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

#[test]
fn a_login_through_one_instance_is_honoured_by_the_other_and_binds_once() {
    let Some(pair) = Pair::start(&[], "") else {
        return;
    };
    let (cookie, memo, txid) = pair.login_via(0, "alice");

    for i in 0..2 {
        let response = app(pair.addr(i), &cookie, "application/json");
        assert_eq!(
            forwarded_account(&response),
            Some(vec!["alice".to_string()]),
            "instance {i}: {} {}",
            response.status,
            response.body
        );
    }

    // Replaying alice's memo from another account changes nothing, no
    // matter which instance follows: one login in total, the first proof stays.
    pair.devnet.transfer("mallory", GATE, "0.001 STEEM", &memo);
    let replay_block = pair.devnet.produce_block(None);
    let store = RedisStore::connect(&pair.redis.url(), "steemgate", Duration::from_secs(2))
        .expect("connect");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let processed = wait_until(Duration::from_secs(20), || {
        runtime
            .block_on(store.cursor())
            .unwrap()
            .is_some_and(|cursor| cursor.block >= replay_block)
    });
    assert!(processed, "the replay block was never processed");
    assert_eq!(
        logins_total(&pair, &[0, 1]),
        1.0,
        "one login event in total"
    );

    // The stored proof is alice's transfer.
    let value = cookie.split_once('=').unwrap().1;
    let id = CookieCodec::new(&[SECRET])
        .decode(value)
        .expect("our cookie");
    let record = runtime
        .block_on(store.get_session(&id.store_key()))
        .unwrap()
        .expect("alice's session");
    assert_eq!(record.account.as_deref(), Some("alice"));
    assert_eq!(record.login.expect("login proof").txid, txid);
}

#[test]
fn a_logout_on_one_instance_is_refused_on_the_other() {
    // A long cache: only the revocation feed can make instance 0 forget in time.
    let Some(pair) = Pair::start(&[], "  cache_ttl: 60s\n") else {
        return;
    };
    let (cookie, _, _) = pair.login_via(0, "alice");
    for i in 0..2 {
        assert_eq!(
            forwarded_account(&app(pair.addr(i), &cookie, "application/json")),
            Some(vec!["alice".to_string()]),
            "instance {i} serves alice (and caches her)"
        );
    }

    let out = post(
        pair.addr(1),
        "/.steemgate/logout",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200, "{}", out.body);
    // The instance that logged out forgets at once.
    assert_eq!(app(pair.addr(1), &cookie, "application/json").status, 401);
    // The other hears the revocation, well within its 60 s cache time.
    let refused = wait_until(Duration::from_secs(10), || {
        app(pair.addr(0), &cookie, "application/json").status == 401
    });
    assert!(refused, "instance 0 still honoured a revoked session");
    assert_eq!(app(pair.addr(0), &cookie, "application/json").status, 401);
}

#[test]
fn a_redis_outage_fails_closed_and_recovers_without_a_restart() {
    // Persistence, so the sessions survive the Redis restart.
    let Some(mut pair) = Pair::start(&["--appendonly", "yes"], "") else {
        return;
    };
    let (cookie, _, _) = pair.login_via(0, "alice");
    for i in 0..2 {
        assert_eq!(
            forwarded_account(&app(pair.addr(i), &cookie, "text/html")),
            Some(vec!["alice".to_string()])
        );
    }

    pair.redis.stop();
    for i in 0..2 {
        assert!(
            wait_until(Duration::from_secs(10), || get(
                pair.admin(i),
                "/ready",
                &[]
            )
            .status
                == 503),
            "/ready on instance {i} never reported the outage"
        );
    }
    // A session read from the store at most `session.cache_ttl` (2 s) ago
    // may be answered from memory until the revocation subscriber has seen
    // its connection drop (at once when idle; later on a loaded machine):
    // nothing can be revoked meanwhile, since a logout needs the store too.
    // Past that bound, every request fails closed.
    for i in 0..2 {
        assert!(
            wait_until(Duration::from_secs(4), || app(
                pair.addr(i),
                &cookie,
                "text/html"
            )
            .status
                == 503),
            "instance {i} still serves the session from memory"
        );
    }
    for round in 0..20 {
        let i = round % 2;
        let accept = if round % 4 < 2 {
            "text/html"
        } else {
            "application/json"
        };
        let response = app(pair.addr(i), &cookie, accept);
        assert_eq!(
            response.status, 503,
            "instance {i}, {accept}: {} {}",
            response.status, response.body
        );
        assert_eq!(forwarded_account(&response), None);
        if accept == "text/html" {
            assert!(
                response
                    .header("content-type")
                    .is_some_and(|t| t.starts_with("text/html")),
                "a branded page, not a bare error"
            );
        }
    }
    // The login flow is unavailable too, never a fresh anonymous session.
    assert_eq!(
        get(
            pair.addr(0),
            "/.steemgate/status",
            &["Accept: application/json"]
        )
        .status,
        503
    );

    pair.redis.restart();
    for i in 0..2 {
        assert!(
            wait_until(Duration::from_secs(20), || get(
                pair.admin(i),
                "/ready",
                &[]
            )
            .status
                == 200),
            "instance {i} did not recover"
        );
        let recovered = wait_until(Duration::from_secs(10), || {
            forwarded_account(&app(pair.addr(i), &cookie, "text/html"))
                == Some(vec!["alice".to_string()])
        });
        assert!(recovered, "instance {i} did not serve alice again");
    }
}

#[test]
fn exactly_one_instance_follows_and_another_takes_over_when_it_dies() {
    let Some(mut pair) = Pair::start(&[], "") else {
        return;
    };
    let holders = pair.wait_for_a_follower();
    // Over several follower rounds, always exactly one, and the same one.
    for _ in 0..10 {
        let now = pair.lease_holders();
        assert_eq!(now, holders, "exactly one, stable follower");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(holders.len(), 1);
    let dead = holders[0];
    let survivor = 1 - dead;
    pair.gateways[dead].stop(); // SIGKILL: the lease is not given back

    // A visitor logs in through the survivor; their transfer is processed
    // once the dead instance's lease (15 s) runs out.
    let (cookie, memo) = start_login_at(pair.addr(survivor));
    pair.devnet.transfer("carol", GATE, "0.001 STEEM", &memo);
    pair.devnet.produce_block(None);
    wait_logged_in_at(pair.addr(survivor), &cookie, "carol", 20);
    assert_eq!(pair.lease_holders_alive(survivor), vec![survivor]);
    assert_eq!(
        forwarded_account(&app(pair.addr(survivor), &cookie, "application/json")),
        Some(vec!["carol".to_string()])
    );
}

#[test]
fn steady_state_requests_do_not_read_redis() {
    let Some(pair) = Pair::start(&[], "  cache_ttl: 60s\n") else {
        return;
    };
    let (cookie, _, _) = pair.login_via(0, "alice");
    // Warm instance 0's cache with one request.
    assert_eq!(
        forwarded_account(&app(pair.addr(0), &cookie, "application/json")),
        Some(vec!["alice".to_string()])
    );
    let before = redis_calls(&pair.redis);
    for _ in 0..100 {
        assert_eq!(
            forwarded_account(&app(pair.addr(0), &cookie, "application/json")),
            Some(vec!["alice".to_string()])
        );
    }
    let after = redis_calls(&pair.redis);
    let reads = |stats: &HashMap<String, u64>| stats.get("hgetall").copied().unwrap_or(0);
    assert!(reads(&before) > 0, "the session was read from Redis once");
    assert_eq!(
        reads(&after),
        reads(&before),
        "100 requests with a warm cache read no session from Redis"
    );
    // A cold instance does read it: the counter above is the right one.
    assert_eq!(
        forwarded_account(&app(pair.addr(1), &cookie, "application/json")),
        Some(vec!["alice".to_string()])
    );
    assert!(reads(&redis_calls(&pair.redis)) > reads(&after));
}

/// A JSON POST to instance `addr` with the session cookie.
fn post_json(addr: SocketAddr, path: &str, cookie: &str, body: &Value) -> Response {
    post(
        addr,
        path,
        &[
            &format!("Cookie: {cookie}"),
            "Content-Type: application/json",
            "Accept: application/json",
        ],
        &body.to_string(),
    )
}

#[test]
fn an_instant_login_is_revoked_by_the_follower_when_its_verifier_died() {
    let Some(mut pair) = Pair::start(&[], "") else {
        return;
    };
    let holders = pair.wait_for_a_follower();
    assert_eq!(holders.len(), 1, "exactly one follower");
    // The instance that does NOT follow verifies the login, then dies.
    let follower = holders[0];
    let verifier = 1 - follower;
    let alice = Wallet::new("alice");
    set_keys_on(&pair.devnet, "alice", &alice, json!({}));
    // The broadcast is accepted but never included: it can only expire.
    pair.devnet
        .rpc("devnet.drop_broadcasts", json!({"drop": true}));

    let (cookie, _) = start_login_at(pair.addr(verifier));
    let issued = post_json(
        pair.addr(verifier),
        "/.steemgate/challenge",
        &cookie,
        &json!({"account": "alice", "method": "signed_transfer"}),
    );
    assert_eq!(issued.status, 200, "{}", issued.body);
    let signed = sign_transaction(&alice.active, &issued.json()["transaction"]);
    let verified = post_json(
        pair.addr(verifier),
        "/.steemgate/verify",
        &cookie,
        &json!({"transaction": signed}),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.json()["authenticated"], json!(true));
    assert_eq!(
        forwarded_account(&app(pair.addr(follower), &cookie, "application/json")),
        Some(vec!["alice".to_string()]),
        "the login is shared through Redis"
    );
    pair.gateways[verifier].stop(); // SIGKILL: its own watcher dies with it

    // A block dated after the transaction's expiration: the transfer can no
    // longer land, and the follower settles the login recorded in Redis.
    let later = steemgate::chain::devnet::format_chain_time(steemgate::clock::now_unix() + 3600);
    pair.devnet
        .rpc("devnet.produce_block", json!({"timestamp": later}));
    let status = |pair: &Pair| {
        get(
            pair.addr(follower),
            "/.steemgate/status",
            &["Accept: application/json", &format!("Cookie: {cookie}")],
        )
        .json()
    };
    assert!(
        wait_until(Duration::from_secs(15), || status(&pair)["authenticated"]
            == json!(false)),
        "the surviving follower never revoked the login"
    );
    assert!(
        status(&pair)["revoked_reason"]
            .as_str()
            .is_some_and(|r| r.contains("did not reach the chain")),
        "{}",
        status(&pair)
    );
    assert_eq!(
        app(pair.addr(follower), &cookie, "application/json").status,
        401
    );
}

/// The cursor's block as the store at `url` has it now.
fn cursor_block(runtime: &tokio::runtime::Runtime, store: &RedisStore) -> Option<u64> {
    runtime
        .block_on(store.cursor())
        .ok()
        .flatten()
        .map(|cursor| cursor.block)
}

#[test]
fn a_sentinel_failover_answers_503_then_the_same_cookies_work_everywhere() {
    let Some(set) = SentinelSet::start() else {
        return;
    };
    let url = set.url("steemgate");
    // A long cache: only the revocation feed can make an instance forget.
    let mut pair = Pair::start_on(set, &url, "  cache_ttl: 60s\n");
    let (alice, alice_memo, _) = pair.login_via(0, "alice");
    let (bob, _, _) = pair.login_via(1, "bob");
    for i in 0..2 {
        for (cookie, who) in [(&alice, "alice"), (&bob, "bob")] {
            assert_eq!(
                forwarded_account(&app(pair.addr(i), cookie, "application/json")),
                Some(vec![who.to_string()])
            );
        }
    }
    let logins_before = logins_total(&pair, &[0, 1]);
    assert_eq!(logins_before, 2.0);

    // Kill the master and keep sending traffic: every answer is alice,
    // proxied as herself, or a 503 from the gateway; never a request
    // proxied without her identity, never "not logged in".
    let old = pair.redis.master_index();
    pair.redis.nodes[old].stop();
    let killed = std::time::Instant::now();
    let mut saw_503 = [false; 2];
    let mut recovered = [None; 2];
    while recovered.iter().any(Option::is_none) && killed.elapsed() < Duration::from_secs(40) {
        for i in 0..2 {
            if recovered[i].is_some() {
                continue;
            }
            let response = app(pair.addr(i), &alice, "application/json");
            match response.status {
                200 => {
                    assert_eq!(
                        forwarded_account(&response),
                        Some(vec!["alice".to_string()])
                    );
                    if saw_503[i] {
                        recovered[i] = Some(killed.elapsed());
                    }
                }
                503 => {
                    assert_eq!(forwarded_account(&response), None);
                    saw_503[i] = true;
                }
                other => panic!(
                    "instance {i} answered {other} during the failover: {}",
                    response.body
                ),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        saw_503,
        [true, true],
        "both instances failed closed during the switch"
    );
    // The failover time to the first 200 (a figure for bench/results, not
    // an assertion).
    eprintln!("sentinel failover: first 200 after {recovered:?} (instances 0, 1)");
    assert!(
        recovered.iter().all(Option::is_some),
        "an instance did not follow the new master: {recovered:?}"
    );

    // The same cookies work on both instances.
    for i in 0..2 {
        for (cookie, who) in [(&alice, "alice"), (&bob, "bob")] {
            assert_eq!(
                forwarded_account(&app(pair.addr(i), cookie, "application/json")),
                Some(vec![who.to_string()]),
                "instance {i}, {who}"
            );
        }
    }

    // Exactly-once claims: a replay of alice's memo after the failover logs
    // nobody in, even if the follower re-reads blocks.
    pair.devnet
        .transfer("mallory", GATE, "0.001 STEEM", &alice_memo);
    let replay_block = pair.devnet.produce_block(None);
    let store = RedisStore::connect(&url, "steemgate", Duration::from_secs(2)).expect("store");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let processed = wait_until(Duration::from_secs(30), || {
        cursor_block(&runtime, &store).is_some_and(|block| block >= replay_block)
    });
    assert!(processed, "the replay block was never processed");
    // A new login after the failover works, through the other instance.
    let (carol, _, _) = pair.login_via(1, "carol");
    assert_eq!(
        forwarded_account(&app(pair.addr(0), &carol, "application/json")),
        Some(vec!["carol".to_string()])
    );
    assert_eq!(
        logins_total(&pair, &[0, 1]),
        logins_before + 1.0,
        "carol's login, and no second login from alice's memo"
    );

    // Revocation propagates after the failover: bob logs out on instance 0,
    // instance 1 (which cached him for 60 s) refuses him soon after.
    let out = post(
        pair.addr(0),
        "/.steemgate/logout",
        &[&format!("Cookie: {bob}"), "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200, "{}", out.body);
    let refused = wait_until(Duration::from_secs(10), || {
        app(pair.addr(1), &bob, "application/json").status == 401
    });
    assert!(refused, "instance 1 still honoured bob after his logout");

    // Exactly one follower after the failover, and it stays one.
    let holders = pair.wait_for_a_follower();
    assert_eq!(holders.len(), 1, "one follower: {holders:?}");
    for _ in 0..5 {
        assert_eq!(pair.lease_holders(), holders);
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `HGETALL` calls (session reads) summed over the data nodes on `ports`.
fn session_reads(ports: &[u16]) -> u64 {
    ports
        .iter()
        .map(|&port| {
            let mut connection = support::redis_ha::raw(port);
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query(&mut connection)
                .unwrap();
            info.lines()
                .find_map(|line| line.strip_prefix("cmdstat_hgetall:calls="))
                .and_then(|rest| rest.split(',').next())
                .and_then(|calls| calls.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Logs alice in, warms instance 0's cache, then 100 requests read no
/// session from the data nodes on `ports`; a cold instance does.
fn warm_requests_send_no_session_read<R>(pair: &Pair<R>, ports: &[u16]) {
    let (cookie, _, _) = pair.login_via(0, "alice");
    assert_eq!(
        forwarded_account(&app(pair.addr(0), &cookie, "application/json")),
        Some(vec!["alice".to_string()])
    );
    let before = session_reads(ports);
    assert!(before > 0, "the session was read from Redis once");
    for _ in 0..100 {
        assert_eq!(
            forwarded_account(&app(pair.addr(0), &cookie, "application/json")),
            Some(vec!["alice".to_string()])
        );
    }
    assert_eq!(
        session_reads(ports),
        before,
        "100 requests with a warm cache read no session from Redis"
    );
    assert_eq!(
        forwarded_account(&app(pair.addr(1), &cookie, "application/json")),
        Some(vec!["alice".to_string()])
    );
    assert!(session_reads(ports) > before, "a cold instance reads it");
}

#[test]
fn steady_state_requests_do_not_read_redis_on_sentinel() {
    let Some(set) = SentinelSet::start() else {
        return;
    };
    let url = set.url("steemgate");
    let ports: Vec<u16> = set.nodes.iter().map(RedisServer::port).collect();
    let pair = Pair::start_on(set, &url, "  cache_ttl: 60s\n");
    warm_requests_send_no_session_read(&pair, &ports);
}

#[test]
fn two_gateways_on_a_cluster_share_logins_and_send_no_read_when_warm() {
    let Some(set) = ClusterSet::start() else {
        return;
    };
    let url = set.url("steemgate");
    let ports: Vec<u16> = set.nodes.iter().map(RedisServer::port).collect();
    let pair = Pair::start_on(set, &url, "  cache_ttl: 60s\n");
    warm_requests_send_no_session_read(&pair, &ports);
    // A logout on one instance reaches the other through the Cluster.
    let (cookie, _, _) = pair.login_via(1, "bob");
    assert_eq!(
        forwarded_account(&app(pair.addr(0), &cookie, "application/json")),
        Some(vec!["bob".to_string()])
    );
    let out = post(
        pair.addr(1),
        "/.steemgate/logout",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200, "{}", out.body);
    let refused = wait_until(Duration::from_secs(10), || {
        app(pair.addr(0), &cookie, "application/json").status == 401
    });
    assert!(refused, "instance 0 still honoured bob after his logout");
}

#[test]
fn a_logout_no_replica_acknowledges_is_refused_not_reported_done() {
    let Some(set) = SentinelSet::start() else {
        return;
    };
    let url = set.url("steemgate");
    let pair = Pair::start_on(set, &url, "");
    let (cookie, _, _) = pair.login_via(0, "alice");
    // Both replicas freeze: the master still answers, but no replica can
    // take the deletion, so a failover now could undo it.
    let master = pair.redis.master_index();
    let replicas: Vec<usize> = (0..3).filter(|&i| i != master).collect();
    for &i in &replicas {
        pair.redis.nodes[i].signal("STOP");
    }
    let refused = post(
        pair.addr(1),
        "/.steemgate/logout",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
        "",
    );
    for &i in &replicas {
        pair.redis.nodes[i].signal("CONT");
    }
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        refused.header("set-cookie").is_none(),
        "the cookie is kept, so the visitor can log out again"
    );
    // With the replicas back, the same logout goes through and holds on
    // both instances.
    let out = post(
        pair.addr(1),
        "/.steemgate/logout",
        &[&format!("Cookie: {cookie}"), "Accept: application/json"],
        "",
    );
    assert_eq!(out.status, 200, "{}", out.body);
    for i in 0..2 {
        let gone = wait_until(Duration::from_secs(10), || {
            app(pair.addr(i), &cookie, "application/json").status == 401
        });
        assert!(gone, "instance {i} still honours the logged-out session");
    }
}
