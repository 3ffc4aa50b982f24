//! Access policies: may this (already identified) account enter?
//!
//! Why a module of its own, beside `auth`: `auth` answers *who* a visitor
//! is; this answers *who may enter*, from what the chain knows about an
//! account (community roles, follows, reputation, age, stake, witness
//! votes). It takes an account, never a session, so it does not depend on
//! `auth`; `proxy` asks both.
//!
//! The hot path is a cache read: a decision is kept per (policy, account)
//! for `policy_cache.ttl` and found without allocating. A first (or
//! expired) decision reads the chain once, in parallel ([`gather`]), is
//! bounded by `policy_cache.timeout`, and is shared by every concurrent
//! request for the same pair (moka's `try_get_with`). When the chain cannot
//! be read, the last decision serves while younger than
//! `policy_cache.max_stale`; otherwise the answer is
//! [`Outcome::Undecidable`], which `proxy` turns into a 503: a policy never
//! fails open and never claims "you are not a member" without the chain
//! having said so.

pub mod evaluate;
pub mod gather;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use crate::chain::facts::FactError;
use crate::chain::{AccountName, ChainName, RpcCall};
use crate::config::{Policy, PolicyCacheConfig};

pub use evaluate::{Failure, Remedy, Verdict};
use gather::Needs;

/// Most (account) decisions kept per policy; beyond, the least used go.
const MAX_DECISIONS_PER_POLICY: u64 = 100_000;

/// After a failed evaluation, requests for the same (policy, account) are
/// answered without the chain (stale or undecidable) this long, at most
/// the ttl.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// A policy's decision for one account.
#[derive(Debug)]
pub struct Decision {
    pub policy: Arc<str>,
    pub verdict: Verdict,
    /// When the chain was read for it.
    pub decided_at: Instant,
}

impl Decision {
    pub fn passed(&self) -> bool {
        matches!(self.verdict, Verdict::Pass)
    }
}

/// What [`PolicyEngine::decide`] answers.
#[derive(Debug, Clone)]
pub enum Outcome {
    Decided(Arc<Decision>),
    /// No decision fresh enough could be made: fail closed.
    Undecidable {
        policy: Arc<str>,
        why: String,
    },
}

/// Prometheus metrics of policy decisions; created once and shared by
/// every engine a reload builds (registered by `admin`).
#[derive(Clone)]
pub struct PolicyMetrics {
    /// By policy and outcome: pass, fail, undecidable, stale (served past ttl).
    pub decisions: IntCounterVec,
    /// By policy: decisions answered from the cache without a chain read.
    pub cache_hits: IntCounterVec,
    /// By policy: node calls made to evaluate it.
    pub chain_reads: IntCounterVec,
    /// By policy: time of a first (uncached) evaluation.
    pub evaluation_seconds: HistogramVec,
}

impl PolicyMetrics {
    pub fn new() -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|_| unreachable!("static metric definition"))
        };
        Self {
            decisions: counter(
                "policy_decisions_total",
                "Policy decisions by policy and outcome (pass, fail, undecidable, stale)",
                &["policy", "outcome"],
            ),
            cache_hits: counter(
                "policy_cache_hits_total",
                "Policy decisions answered from the cache",
                &["policy"],
            ),
            chain_reads: counter(
                "policy_chain_reads_total",
                "Node calls made to evaluate policies",
                &["policy"],
            ),
            evaluation_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "policy_evaluation_seconds",
                    "Time of uncached policy evaluations (chain reads included)",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
                ]),
                &["policy"],
            )
            .unwrap_or_else(|_| unreachable!("static metric definition")),
        }
    }

    /// Every collector, for registration.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.decisions.clone()),
            Box::new(self.cache_hits.clone()),
            Box::new(self.chain_reads.clone()),
            Box::new(self.evaluation_seconds.clone()),
        ]
    }
}

impl Default for PolicyMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// One policy's caches.
struct PolicySlot {
    policy: Arc<Policy>,
    needs: Needs,
    /// Decisions younger than `ttl`: answered without reading the chain.
    fresh: Cache<String, Arc<Decision>>,
    /// The last decision per account, kept `max_stale`: served only when a
    /// new evaluation fails.
    last_good: Cache<String, Arc<Decision>>,
    /// Accounts whose last evaluation failed, for a short back-off.
    failing: Cache<String, ()>,
    /// This policy's counters, resolved once: counting a cached decision
    /// hashes no label values.
    counters: SlotCounters,
}

/// One policy's metric series.
struct SlotCounters {
    hits: prometheus::IntCounter,
    pass: prometheus::IntCounter,
    fail: prometheus::IntCounter,
    stale: prometheus::IntCounter,
    undecidable: prometheus::IntCounter,
}

impl SlotCounters {
    fn new(metrics: &PolicyMetrics, policy: &str) -> Self {
        let outcome = |o: &str| metrics.decisions.with_label_values(&[policy, o]);
        Self {
            hits: metrics.cache_hits.with_label_values(&[policy]),
            pass: outcome("pass"),
            fail: outcome("fail"),
            stale: outcome("stale"),
            undecidable: outcome("undecidable"),
        }
    }
}

/// Evaluates and caches the configured policies. Built anew on every
/// config (re)load, so a changed policy never meets an old decision.
pub struct PolicyEngine {
    chain: ChainName,
    rpc: Arc<dyn RpcCall>,
    settings: PolicyCacheConfig,
    slots: HashMap<Arc<str>, PolicySlot>,
    metrics: PolicyMetrics,
    /// When each account was last forgotten (kept as long as an evaluation
    /// started before could still finish).
    forgotten: Cache<String, Instant>,
}

/// Why a fresh evaluation failed (shared by every request that waited for it).
#[derive(Debug, thiserror::Error)]
enum EvaluationError {
    #[error("{0}")]
    Chain(#[from] FactError),
    #[error("{0}")]
    Missing(#[from] evaluate::MissingFact),
    #[error("the session's account is not a valid name: {0}")]
    Account(String),
    #[error("the chain did not answer within {0:?}")]
    Timeout(Duration),
}

impl PolicyEngine {
    pub fn new(
        chain: ChainName,
        rpc: Arc<dyn RpcCall>,
        policies: &[Arc<Policy>],
        settings: PolicyCacheConfig,
        metrics: PolicyMetrics,
    ) -> Self {
        let slots = policies
            .iter()
            .map(|policy| {
                let slot = PolicySlot {
                    needs: Needs::of(&policy.condition),
                    policy: Arc::clone(policy),
                    fresh: Cache::builder()
                        .max_capacity(MAX_DECISIONS_PER_POLICY)
                        .time_to_live(settings.ttl)
                        .build(),
                    last_good: Cache::builder()
                        .max_capacity(MAX_DECISIONS_PER_POLICY)
                        .time_to_live(settings.max_stale)
                        .build(),
                    counters: SlotCounters::new(&metrics, &policy.name),
                    failing: Cache::builder()
                        .max_capacity(MAX_DECISIONS_PER_POLICY)
                        .time_to_live(settings.ttl.min(FAILURE_BACKOFF))
                        .build(),
                };
                (Arc::clone(&policy.name), slot)
            })
            .collect();
        Self {
            chain,
            rpc,
            settings,
            slots,
            metrics,
            forgotten: Cache::builder()
                .max_capacity(MAX_DECISIONS_PER_POLICY)
                .time_to_live(settings.timeout.saturating_mul(2))
                .build(),
        }
    }

    /// Whether a policy of this name exists.
    pub fn knows(&self, policy: &str) -> bool {
        self.slots.contains_key(policy)
    }

    /// How long a decision is reused (said on the 403 page).
    pub fn ttl(&self) -> Duration {
        self.settings.ttl
    }

    /// The decision of `policy` for `account`: cached if fresh, else read
    /// from the chain (once for all concurrent askers), else the last one
    /// while younger than `max_stale`, else undecidable.
    pub async fn decide(&self, account: &str, policy: &str) -> Outcome {
        let Some((name, slot)) = self.slots.get_key_value(policy) else {
            return Outcome::Undecidable {
                policy: Arc::from(policy),
                why: format!("no policy named {policy:?}"),
            };
        };
        if let Some(decision) = slot.fresh.get(account).await {
            slot.counters.hits.inc();
            Self::count(slot, &decision, false);
            return Outcome::Decided(decision);
        }
        // The chain failed for this account a moment ago: do not make every
        // request wait for the nodes again (nor load them) until the
        // back-off ends.
        if slot.failing.contains_key(account) {
            return self
                .without_chain(name, slot, account, "the chain failed a moment ago")
                .await;
        }
        // One retry: a decision read before a `forget` of this account (a
        // logout while it was being read) is not kept.
        for _ in 0..2 {
            let evaluation = slot
                .fresh
                .try_get_with_by_ref(account, self.evaluate(name, slot, account))
                .await;
            match evaluation {
                Ok(decision) if self.forgotten_since(account, decision.decided_at).await => {
                    slot.fresh.invalidate(account).await;
                    slot.last_good.invalidate(account).await;
                }
                Ok(decision) => {
                    Self::count(slot, &decision, false);
                    return Outcome::Decided(decision);
                }
                Err(error) => {
                    tracing::warn!(policy, account, error = %error, "policy: cannot read the chain");
                    slot.failing.insert(account.to_string(), ()).await;
                    return self
                        .without_chain(name, slot, account, &error.to_string())
                        .await;
                }
            }
        }
        Self::undecidable(
            name,
            slot,
            "the account was logged out while it was being decided",
        )
    }

    /// The answer when the chain cannot be read: the last decision while
    /// younger than `max_stale`, else undecidable.
    async fn without_chain(
        &self,
        name: &Arc<str>,
        slot: &PolicySlot,
        account: &str,
        why: &str,
    ) -> Outcome {
        match slot.last_good.get(account).await {
            Some(decision) => {
                Self::count(slot, &decision, true);
                Outcome::Decided(decision)
            }
            None => Self::undecidable(name, slot, why),
        }
    }

    fn undecidable(name: &Arc<str>, slot: &PolicySlot, why: &str) -> Outcome {
        slot.counters.undecidable.inc();
        Outcome::Undecidable {
            policy: Arc::clone(name),
            why: why.to_string(),
        }
    }

    /// Whether `account` was forgotten after `decided_at`.
    async fn forgotten_since(&self, account: &str, decided_at: Instant) -> bool {
        self.forgotten
            .get(account)
            .await
            .is_some_and(|forgotten_at| forgotten_at > decided_at)
    }

    /// The chain the engine reads (a reload keeps the running chain).
    pub fn chain(&self) -> ChainName {
        self.chain
    }

    fn count(slot: &PolicySlot, decision: &Decision, stale: bool) {
        let counters = &slot.counters;
        match (stale, decision.passed()) {
            (true, _) => counters.stale.inc(),
            (false, true) => counters.pass.inc(),
            (false, false) => counters.fail.inc(),
        }
    }

    async fn evaluate(
        &self,
        name: &Arc<str>,
        slot: &PolicySlot,
        account: &str,
    ) -> Result<Arc<Decision>, EvaluationError> {
        let started = Instant::now();
        let account = AccountName::parse(account)
            .map_err(|e| EvaluationError::Account(format!("{account:?}: {e}")))?;
        let account = &account;
        let first_round = slot.needs.calls();
        self.metrics
            .chain_reads
            .with_label_values(&[name])
            .inc_by(first_round as u64);
        let gathered = tokio::time::timeout(
            self.settings.timeout,
            gather::gather(self.rpc.as_ref(), self.chain, account, &slot.needs),
        )
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics
            .evaluation_seconds
            .with_label_values(&[name])
            .observe(elapsed);
        let (facts, calls) =
            gathered.map_err(|_| EvaluationError::Timeout(self.settings.timeout))??;
        // Witness-vote proxies are followed in a second round.
        self.metrics
            .chain_reads
            .with_label_values(&[name])
            .inc_by(calls.saturating_sub(first_round) as u64);
        let verdict = evaluate::decide(&slot.policy.condition, account, &facts)?;
        let decision = Arc::new(Decision {
            policy: Arc::clone(name),
            verdict,
            decided_at: started,
        });
        slot.last_good
            .insert(account.as_str().to_string(), Arc::clone(&decision))
            .await;
        Ok(decision)
    }

    /// Drops every decision about `account` (logout, a simulated change on
    /// the devnet): the next request reads the chain again, and a decision
    /// still being read is not kept.
    pub async fn forget(&self, account: &str) {
        self.forgotten
            .insert(account.to_string(), Instant::now())
            .await;
        for slot in self.slots.values() {
            slot.failing.invalidate(account).await;
            slot.fresh.invalidate(account).await;
            slot.last_good.invalidate(account).await;
        }
    }
}
