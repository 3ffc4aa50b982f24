//! Health, readiness and metrics, on `admin_listen` only.
//!
//! Why a separate listener: side doors on the public port (a `/metrics` or
//! health check that answers 200 to anyone) are a recurring gateway flaw.
//! The public proxy has no route to these handlers at all; they are served
//! by their own small HTTP server bound to the admin address.
//!
//! - `/health`: the process is up (always 200).
//! - `/ready`: 200 only when the store answers and the chain follower has a
//!   recent successful poll; 503 otherwise, with the reason.
//! - `/metrics`: Prometheus text format.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::chain::status::ChainStatusHandle;
use crate::clock::now_unix;
use crate::store::SharedStore;

/// The gateway's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    pub logins: IntCounter,
    pub challenges_issued: IntCounter,
    /// Memo challenges that expired unclaimed while their session lived on
    /// (the visitor came back and got a new code).
    pub challenges_expired: IntCounter,
    /// Duration of every store operation (see `store::timed`).
    pub store_operations: HistogramVec,
    pub store_errors: IntCounter,
    pub chain_head: IntGauge,
    pub blocks_behind: IntGauge,
    pub node_failovers: IntCounter,
    /// 1 while this instance holds the follower lease (follows the chain).
    pub follower_lease: IntGauge,
    /// Access log records dropped because the writer fell behind.
    pub access_log_dropped: IntCounter,
    /// Access policy decisions, cache hits, chain reads, evaluation time.
    pub policy: crate::policy::PolicyMetrics,
    /// OpenID authorization codes issued, by client.
    pub oidc_codes: IntCounterVec,
    /// OpenID token responses, by client.
    pub oidc_tokens: IntCounterVec,
    /// OpenID token endpoint refusals, by OAuth error code.
    pub oidc_token_errors: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("steemgate".into()), None).unwrap_or_default();
        let requests = IntCounterVec::new(
            Opts::new("requests_total", "Requests by route and status"),
            &["route", "status"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let store_operations = HistogramVec::new(
            HistogramOpts::new(
                "store_operation_seconds",
                "Duration of store operations by operation and outcome (ok, error)",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["operation", "outcome"],
        )
        .unwrap_or_else(|_| unreachable!("static metric definition"));
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).unwrap_or_else(|_| unreachable!("static metric definition"))
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
                .unwrap_or_else(|_| unreachable!("static metric definition"))
        };
        let gauge = |name: &str, help: &str| {
            IntGauge::new(name, help).unwrap_or_else(|_| unreachable!("static metric definition"))
        };
        let metrics = Self {
            requests,
            logins: counter(
                "logins_total",
                "Logins: by a matching transfer, a wallet signature, or an instant transfer's confirmation",
            ),
            challenges_issued: counter(
                "challenges_issued_total",
                "Memo challenges issued (new login sessions and renewals of expired codes)",
            ),
            challenges_expired: counter(
                "challenges_expired_total",
                "Memo challenges that expired unclaimed and were renewed for a returning visitor",
            ),
            store_operations,
            store_errors: counter("store_errors_total", "Requests that met a store failure"),
            chain_head: gauge("chain_head_block", "Head block number last seen"),
            blocks_behind: gauge(
                "chain_blocks_behind",
                "Blocks between the node head and the last processed block",
            ),
            node_failovers: counter(
                "node_failovers_total",
                "RPC calls that moved to another node",
            ),
            follower_lease: gauge(
                "follower_lease_held",
                "1 while this instance holds the follower lease and follows the chain",
            ),
            access_log_dropped: counter(
                "access_log_dropped_total",
                "Access log lines dropped because the writer fell behind (never waited for)",
            ),
            policy: crate::policy::PolicyMetrics::new(),
            oidc_codes: counter_vec(
                "oidc_codes_issued_total",
                "OpenID authorization codes issued, by client",
                "client",
            ),
            oidc_tokens: counter_vec(
                "oidc_tokens_issued_total",
                "OpenID token responses (ID and access token), by client",
                "client",
            ),
            oidc_token_errors: counter_vec(
                "oidc_token_errors_total",
                "OpenID token endpoint refusals, by OAuth error (invalid_grant, invalid_client, ...)",
                "error",
            ),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 14] = [
            Box::new(metrics.requests.clone()),
            Box::new(metrics.logins.clone()),
            Box::new(metrics.challenges_issued.clone()),
            Box::new(metrics.challenges_expired.clone()),
            Box::new(metrics.store_operations.clone()),
            Box::new(metrics.store_errors.clone()),
            Box::new(metrics.chain_head.clone()),
            Box::new(metrics.blocks_behind.clone()),
            Box::new(metrics.node_failovers.clone()),
            Box::new(metrics.follower_lease.clone()),
            Box::new(metrics.access_log_dropped.clone()),
            Box::new(metrics.oidc_codes.clone()),
            Box::new(metrics.oidc_tokens.clone()),
            Box::new(metrics.oidc_token_errors.clone()),
        ];
        for collector in collectors.into_iter().chain(metrics.policy.collectors()) {
            if let Err(e) = metrics.registry.register(collector) {
                tracing::error!(error = %e, "metric registration failed");
            }
        }
        metrics
    }

    /// Counts a finished request.
    pub fn observe_request(&self, route: &str, status: u16) {
        self.requests
            .with_label_values(&[route, status_label(status)])
            .inc();
    }

    /// Counters for requests of the route labelled `route` (see
    /// [`RouteRequestCounters`]): resolve once, count every request.
    pub fn route_request_counters(&self, route: &str) -> RouteRequestCounters {
        RouteRequestCounters {
            route: route.to_string(),
            requests: self.requests.clone(),
            by_status: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Status labels of `requests_total`, indexed by [`status_index`].
const STATUS_LABELS: [&str; 20] = [
    "200", "204", "301", "302", "304", "400", "401", "403", "404", "405", "500", "502", "503",
    "504", "1xx", "2xx", "3xx", "4xx", "5xx", "other",
];

/// The position of a status code's label in [`STATUS_LABELS`].
fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        204 => 1,
        301 => 2,
        302 => 3,
        304 => 4,
        400 => 5,
        401 => 6,
        403 => 7,
        404 => 8,
        405 => 9,
        500 => 10,
        502 => 11,
        503 => 12,
        504 => 13,
        100..=199 => 14,
        201..=299 => 15,
        300..=399 => 16,
        402..=499 => 17,
        501..=599 => 18,
        _ => 19,
    }
}

/// Status codes as static labels (no allocation per request).
fn status_label(status: u16) -> &'static str {
    STATUS_LABELS[status_index(status)]
}

/// The `requests_total` counters of one route, each resolved on its first
/// use and then kept: counting a request is one atomic add, not a hash and
/// lookup of its label values. A status never seen has no series, exactly
/// as with [`Metrics::observe_request`].
pub struct RouteRequestCounters {
    route: String,
    requests: IntCounterVec,
    by_status: [OnceLock<IntCounter>; STATUS_LABELS.len()],
}

impl RouteRequestCounters {
    /// Counts a finished request of this route.
    pub fn observe(&self, status: u16) {
        let index = status_index(status);
        self.by_status[index]
            .get_or_init(|| {
                self.requests
                    .with_label_values(&[self.route.as_str(), STATUS_LABELS[index]])
            })
            .inc();
    }
}

/// What the admin server reads.
#[derive(Clone)]
pub struct AdminState {
    pub store: SharedStore,
    pub chain: ChainStatusHandle,
    pub metrics: Arc<Metrics>,
}

/// The admin HTTP app.
pub fn router(state: AdminState) -> axum::Router {
    axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok\n" }))
        .route("/ready", axum::routing::get(ready))
        .route("/metrics", axum::routing::get(metrics))
        .with_state(state)
}

async fn ready(State(state): State<AdminState>) -> impl IntoResponse {
    let store_ok = matches!(
        tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await,
        Ok(Ok(()))
    );
    let chain_ok = state.chain.is_healthy(now_unix());
    let body =
        serde_json::json!({"ready": store_ok && chain_ok, "store": store_ok, "chain": chain_ok})
            .to_string();
    let status = if store_ok && chain_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
}

async fn metrics(State(state): State<AdminState>) -> impl IntoResponse {
    let snapshot = state.chain.snapshot();
    state
        .metrics
        .chain_head
        .set(i64::try_from(snapshot.head_block).unwrap_or(i64::MAX));
    state.metrics.blocks_behind.set(
        i64::try_from(snapshot.head_block.saturating_sub(snapshot.processed_block))
            .unwrap_or(i64::MAX),
    );
    state
        .metrics
        .follower_lease
        .set(i64::from(snapshot.following));
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_label() {
        for (status, label) in [
            (200, "200"),
            (204, "204"),
            (304, "304"),
            (404, "404"),
            (504, "504"),
            (101, "1xx"),
            (206, "2xx"),
            (307, "3xx"),
            (429, "4xx"),
            (599, "5xx"),
            (0, "other"),
            (600, "other"),
        ] {
            assert_eq!(status_label(status), label, "{status}");
        }
    }

    #[test]
    fn route_counters_count_into_the_same_series_as_observe_request() {
        let metrics = Metrics::new();
        let counters = metrics.route_request_counters("/app");
        counters.observe(200);
        counters.observe(200);
        counters.observe(429);
        metrics.observe_request("/app", 200);
        let text = metrics.render();
        assert!(
            text.contains(r#"steemgate_requests_total{route="/app",status="200"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"steemgate_requests_total{route="/app",status="4xx"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains(r#"status="500""#),
            "no series before a first use: {text}"
        );
    }
}
