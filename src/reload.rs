//! Config reload on SIGHUP, without dropping a connection.
//!
//! Why: changing an allowlist or a route should not cost every visitor a
//! reconnect (and every long poll its wait). The proxy reads its per-request
//! state from one `ArcSwap<GatewayState>`; a reload parses and validates the
//! same config file, builds a new state from it (routes with allowlists and
//! assertion flags, templates, site name, limits, trusted proxies) sharing
//! everything that lives across reloads (sessions, metrics, the chain view,
//! the assertion keys), and swaps it in. Requests already running finish on
//! the state they started with.
//!
//! A file that fails validation changes nothing: the error (with key and
//! line) is logged and the running config stays. Settings the running
//! process cannot change (listeners, TLS, threads, work stealing, store, chain, session,
//! login, report, assertion keys, a new built-in upstream) are reported as
//! "restart needed" and keep their running values, `log:` among them; a
//! SIGHUP does reopen the access log file (after log rotation moved it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::config::{Config, Upstream};
use crate::pages::Pages;
use crate::proxy::GatewayState;
use crate::proxy::routes::RouteTable;

/// Logged once the SIGHUP handler is installed (tests wait for it).
pub const READY_MESSAGE: &str = "config reload on SIGHUP enabled";

/// Resolves a route's upstream: DNS for `http://`, the already running
/// listener for `builtin:`.
pub fn resolve_upstream(
    upstream: &Upstream,
    builtins: &[(String, SocketAddr)],
) -> Result<SocketAddr, String> {
    match upstream {
        Upstream::Http { host, port } => {
            std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))
                .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host}:{port} resolves to no address"))
        }
        Upstream::Builtin(name) => builtins
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| format!("builtin {name} is not running (restart needed)")),
    }
}

/// The config keys that differ between `running` and `new` but only take
/// effect after a restart.
pub fn restart_needed(
    running: &Config,
    new: &Config,
    builtins: &[(String, SocketAddr)],
) -> Vec<&'static str> {
    let mut keys = Vec::new();
    let mut differs = |changed: bool, key: &'static str| {
        if changed {
            keys.push(key);
        }
    };
    differs(running.listen != new.listen, "listen");
    differs(running.tls != new.tls, "tls");
    differs(running.admin_listen != new.admin_listen, "admin_listen");
    differs(running.threads != new.threads, "threads");
    differs(running.work_stealing != new.work_stealing, "work_stealing");
    differs(running.store != new.store, "store");
    differs(running.chain != new.chain, "chain");
    differs(running.session != new.session, "session");
    differs(
        running.memo_prefix != new.memo_prefix || running.login != new.login,
        "login",
    );
    differs(
        running.limits.header_timeout != new.limits.header_timeout
            || running.limits.idle_timeout != new.limits.idle_timeout,
        "limits.header_timeout/idle_timeout",
    );
    differs(running.report != new.report, "report");
    differs(running.assertion != new.assertion, "assertion");
    differs(running.log != new.log, "log");
    differs(
        new.routes.iter().any(|r| match &r.upstream {
            Upstream::Builtin(name) => !builtins.iter().any(|(n, _)| n == name),
            Upstream::Http { .. } => false,
        }),
        "routes (a new builtin upstream)",
    );
    keys
}

/// A new gateway state from `new`, sharing the long-lived parts of `old`.
/// Limits keep their buckets when unchanged.
pub fn reloaded_state(
    old: &GatewayState,
    running: &Config,
    new: &Config,
    builtins: &[(String, SocketAddr)],
) -> anyhow::Result<GatewayState> {
    let routes = RouteTable::compile(&new.routes, |u| resolve_upstream(u, builtins))?;
    let pages = Arc::new(Pages::new(new.templates_dir.as_deref())?);
    let limits = if running.limits == new.limits {
        old.limits.clone()
    } else {
        Arc::new(crate::proxy::limits::ClientLimits::new(&new.limits))
    };
    let route_counters = crate::proxy::RouteCounters::new(&old.services.metrics, &routes);
    // Cached decisions stay valid only while the policies they decided and
    // the cache settings are the same.
    let policies = if running.policies == new.policies && running.policy_cache == new.policy_cache {
        old.policies.clone()
    } else {
        // `chain` needs a restart: the engine keeps reading the chain the
        // process is connected to.
        Arc::new(crate::policy::PolicyEngine::new(
            old.policies.chain(),
            old.services.chain.clone(),
            &new.policies,
            new.policy_cache,
            old.services.metrics.policy.clone(),
        ))
    };
    let oidc = if running.oidc == new.oidc && running.assertion == new.assertion {
        old.oidc.clone()
    } else {
        oidc_provider(new, &old.services.store)
    };
    Ok(GatewayState {
        services: old.services.clone(),
        routes,
        route_counters,
        pages,
        site_name: new.site_name.clone(),
        limits,
        trusted_proxies: new.trusted_proxies.clone(),
        policies,
        oidc,
    })
}

/// The OpenID Provider of `config`, if it has `oidc:`. Its keys rotate with
/// the assertion keys' period; a reload that changes `oidc` builds a new one
/// (the keys stay: they live in the store).
pub fn oidc_provider(
    config: &Config,
    store: &crate::store::SharedStore,
) -> Option<Arc<crate::oidc::Provider>> {
    config.oidc.clone().map(|oidc| {
        Arc::new(crate::oidc::Provider::new(
            oidc,
            store.clone(),
            config.chain.name.as_str(),
            config.assertion.rotate_every,
        ))
    })
}

/// Reloads `path` on every SIGHUP.
pub struct ReloadService {
    pub path: PathBuf,
    /// The config the process started with (restart-only settings stay).
    pub started_with: Arc<Config>,
    /// The config the proxy runs on now.
    pub running: std::sync::Mutex<Arc<Config>>,
    pub state: Arc<ArcSwap<GatewayState>>,
    pub builtins: Vec<(String, SocketAddr)>,
    /// Reopened on every SIGHUP, whether the config reloads or not.
    pub access_log: Option<crate::access_log::AccessLog>,
}

impl ReloadService {
    /// One reload: everything or nothing.
    pub fn reload(&self) {
        if let Some(access_log) = &self.access_log {
            access_log.reopen();
        }
        let new = match Config::load(&self.path) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "config reload failed; keeping the running config");
                return;
            }
        };
        let restart = restart_needed(&self.started_with, &new, &self.builtins);
        if !restart.is_empty() {
            tracing::warn!(keys = ?restart, "config reload: these settings changed but need a restart; keeping their running values");
        }
        let Ok(mut running) = self.running.lock() else {
            tracing::error!("config reload state poisoned; keeping the running config");
            return;
        };
        let old = self.state.load_full();
        match reloaded_state(&old, &running, &new, &self.builtins) {
            Ok(state) => {
                self.state.store(Arc::new(state));
                *running = Arc::new(new);
                tracing::info!(path = %self.path.display(), routes = running.routes.len(), "config reloaded");
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "config reload failed; keeping the running config");
            }
        }
    }
}

#[async_trait]
impl BackgroundService for ReloadService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(stream) => stream,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; config reload disabled");
                return;
            }
        };
        tracing::info!(path = %self.path.display(), "{READY_MESSAGE}");
        loop {
            tokio::select! {
                received = hangups.recv() => {
                    if received.is_none() {
                        return;
                    }
                    self.reload();
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}
