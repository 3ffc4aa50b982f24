//! Wiring: one process with the proxy, the chain follower, the admin server
//! and the built-in upstreams (and, in `demo`, the devnet).
//!
//! Why here and not in `main`: tests and `demo` build the same process from
//! a [`Config`]. Pingora owns the runtimes (one per service): every async
//! client (RPC, Redis) is created by the service that uses it, inside its
//! own runtime, never on a temporary runtime in `main`.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use pingora::server::configuration::ServerConf;
use pingora::server::{Server, ShutdownWatch};
use pingora::services::background::{BackgroundService, background_service};

use crate::admin::{AdminState, Metrics};
use crate::auth::cookie::CookieCodec;
use crate::auth::session_cache::{self, SessionCache};
use crate::auth::sessions::{SessionManager, SessionSettings};
use crate::auth::wallet::{WalletLogins, WalletSettings};
use crate::chain::follower::{Follower, FollowerSettings};
use crate::chain::rpc::RpcClient;
use crate::chain::status::ChainStatusHandle;
use crate::chain::{RpcCall, Symbol};
use crate::config::{Config, Upstream};
use crate::pages::Pages;
use crate::proxy::routes::RouteTable;
use crate::proxy::{Gateway, GatewayServices, GatewayState, PaymentInfo};
use crate::store::{SessionKey, SharedStore};

/// Extra services run in the same process.
#[derive(Default)]
pub struct Extras {
    /// `steemgate demo`: the devnet and the listener it serves on.
    pub devnet: Option<(crate::chain::devnet::Devnet, TcpListener)>,
    /// The config file, re-read on SIGHUP (`steemgate run`); `None`: no reload.
    pub config_path: Option<std::path::PathBuf>,
}

/// An axum app served as a pingora background service on a listener bound
/// before the server starts (so its address is known to the routes).
struct AxumService {
    name: &'static str,
    listener: Mutex<Option<TcpListener>>,
    router: axum::Router,
}

/// Moves a listener bound before the server started into the service's own
/// runtime (once; a second start finds nothing).
fn take_listener(
    slot: &Mutex<Option<TcpListener>>,
    service: &str,
) -> Option<tokio::net::TcpListener> {
    let listener = slot.lock().ok()?.take()?;
    match listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
    {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::error!(service, error = %e, "cannot serve");
            None
        }
    }
}

#[async_trait]
impl BackgroundService for AxumService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(listener) = take_listener(&self.listener, self.name) else {
            return;
        };
        let served = axum::serve(listener, self.router.clone())
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(service = self.name, error = %e, "server stopped");
        }
    }
}

fn axum_service(
    name: &'static str,
    listener: TcpListener,
    router: axum::Router,
) -> impl pingora::services::ServiceWithDependents {
    background_service(
        name,
        AxumService {
            name,
            listener: Mutex::new(Some(listener)),
            router,
        },
    )
}

/// Follows the chain (and sweeps expired store entries) in its own runtime.
struct ChainService {
    config: Arc<Config>,
    store: SharedStore,
    status: ChainStatusHandle,
    logins: tokio::sync::broadcast::Sender<SessionKey>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl BackgroundService for ChainService {
    async fn start(&self, shutdown: ShutdownWatch) {
        let chain = &self.config.chain;
        let rpc = Arc::new(RpcClient::new(chain.nodes.clone(), chain.request_timeout));
        let settings = FollowerSettings {
            chain: chain.name,
            account: chain.account.clone(),
            min_amount_units: chain.min_amount_units,
            confirm: chain.confirm,
            challenge_ttl: self.config.session.challenge_ttl,
            session_ttl: self.config.session.ttl,
            instance_id: instance_id(),
        };
        let follower = Follower::new(
            rpc.clone(),
            self.store.clone(),
            settings,
            self.status.clone(),
            self.logins.clone(),
        );
        let checked_store = self.store.clone();
        tokio::spawn(async move {
            match checked_store.startup_warnings().await {
                Ok(warnings) => {
                    for warning in warnings {
                        tracing::warn!("store: {warning}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot check the store at startup"),
            }
        });
        let sweeper_store = self.store.clone();
        let mut sweeper_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        if let Err(e) = sweeper_store.sweep_expired(crate::clock::now_unix()).await {
                            tracing::warn!(error = %e, "sweeping expired sessions failed");
                        }
                    }
                    _ = sweeper_shutdown.changed() => break,
                }
            }
        });
        let failover_rpc = rpc.clone();
        let failover_metrics = self.metrics.clone();
        let mut failover_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut reported = 0;
            let mut interval = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        let total = failover_rpc.failovers();
                        failover_metrics.node_failovers.inc_by(total.saturating_sub(reported));
                        reported = total;
                    }
                    _ = failover_shutdown.changed() => break,
                }
            }
        });
        let metrics = self.metrics.clone();
        let mut login_events = self.logins.subscribe();
        tokio::spawn(async move {
            while let Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) =
                login_events.recv().await
            {
                metrics.logins.inc();
            }
        });
        follower.run(shutdown).await;
    }
}

/// A name for this process in the follower lease.
fn instance_id() -> String {
    let mut random = [0u8; 6];
    let _ = crate::random::os_random(&mut random);
    format!("{}-{}", std::process::id(), hex::encode(random))
}

/// Fails at once when `listen` cannot be bound. pingora retries a taken
/// port for 30 s and then stops its proxy thread while the process (admin
/// listener, follower) keeps running: an operator would see a live process
/// that never serves. The probe socket is closed before pingora binds.
fn ensure_listen_address_free(listen: SocketAddr) -> anyhow::Result<()> {
    TcpListener::bind(listen).map(drop).with_context(|| {
        format!("cannot listen on {listen} (listen): is another process using it?")
    })
}

/// Binds a loopback listener for a built-in upstream.
fn bind_loopback() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0").context("binding a loopback port for a built-in upstream")
}

/// The stale-follows report, reading the chain through its own RPC client.
fn stale_follows_router(
    config: &Config,
    pages: Arc<Pages>,
    chain_status: ChainStatusHandle,
) -> axum::Router {
    let rpc: Arc<dyn RpcCall> = Arc::new(RpcClient::new(
        config.chain.nodes.clone(),
        config.chain.request_timeout,
    ));
    let mut settings =
        crate::report::ReportSettings::from_config(&config.report, config.chain.name);
    settings.site_name = config.site_name.clone();
    settings.simulated = config.chain.devnet;
    settings.behind_seconds = Some(Arc::new(move || {
        chain_status.behind_seconds(crate::clock::now_unix())
    }));
    crate::report::router(Arc::new(crate::report::StaleFollows::new(
        rpc, pages, settings,
    )))
}

/// The hello app's footer and report link: the first stale-follows route
/// (one without a host restriction preferred).
fn hello_settings(config: &Config) -> crate::hello::HelloSettings {
    let is_report = |route: &&crate::config::Route| matches!(&route.upstream, Upstream::Builtin(name) if name == "stale-follows");
    let report = config
        .routes
        .iter()
        .filter(is_report)
        .min_by_key(|route| route.host.is_some());
    crate::hello::HelloSettings {
        site_name: config.site_name.clone(),
        report_path: report.map(|route| route.path.clone()),
    }
}

/// Opens the configured store.
pub fn open_store(config: &Config) -> anyhow::Result<SharedStore> {
    crate::store::open(&config.store).context("opening the store")
}

/// Binds one loopback listener per built-in upstream the routes name and
/// adds its app to `server`; returns their addresses for the route table.
fn add_builtin_upstreams(
    server: &mut Server,
    config: &Config,
    pages: &Arc<Pages>,
    chain_status: &ChainStatusHandle,
) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    let mut builtin_addrs: Vec<(String, SocketAddr)> = Vec::new();
    for route in &config.routes {
        let Upstream::Builtin(name) = &route.upstream else {
            continue;
        };
        if builtin_addrs.iter().any(|(n, _)| n == name) {
            continue;
        }
        let listener = bind_loopback()?;
        builtin_addrs.push((name.clone(), listener.local_addr()?));
        let router = match name.as_str() {
            "hello" => crate::hello::router(pages.clone(), hello_settings(config)),
            "stale-follows" => stale_follows_router(config, pages.clone(), chain_status.clone()),
            other => anyhow::bail!("unknown builtin upstream {other}"),
        };
        server.add_service(axum_service("builtin upstream", listener, router));
    }
    Ok(builtin_addrs)
}

/// The gateway's long-lived services (sessions and their cache, wallet
/// logins, assertions), built once from the config.
fn build_services(
    config: &Config,
    store: &SharedStore,
    chain_status: &ChainStatusHandle,
    logins: &tokio::sync::broadcast::Sender<SessionKey>,
    metrics: &Arc<Metrics>,
) -> (Arc<GatewayServices>, Arc<SessionCache>) {
    let tls = config.tls.is_some();
    // Cookies are Secure (and `__Host-` named) over TLS unless the config says otherwise.
    let secure = config.session.secure.unwrap_or(tls);
    let session_cache = Arc::new(SessionCache::new(
        config.session.cache_ttl,
        session_cache::DEFAULT_CAPACITY,
    ));
    let sessions = Arc::new(
        SessionManager::new(
            store.clone(),
            CookieCodec::new(&config.session.secrets),
            SessionSettings {
                ttl: config.session.ttl,
                challenge_ttl: config.session.challenge_ttl,
                memo_prefix: config.memo_prefix.clone(),
                cookie_name: SessionSettings::effective_cookie_name(
                    &config.session.cookie_name,
                    secure,
                ),
                secure,
            },
        )
        .with_cache(session_cache.clone()),
    );
    let login_amount = config.chain.login_amount();
    let chain_rpc: Arc<dyn RpcCall> = Arc::new(RpcClient::new(
        config.chain.nodes.clone(),
        config.chain.request_timeout,
    ));
    let wallet = Arc::new(
        WalletLogins::new(
            store.clone(),
            chain_rpc.clone(),
            WalletSettings {
                methods: config.login.methods.clone(),
                chain: config.chain.name,
                pay_to: config.chain.account.clone(),
                amount: login_amount.to_string(),
                memo_prefix: config.memo_prefix.clone(),
                challenge_ttl: config.login.wallet_challenge_ttl,
                transfer_expiration: config.login.transfer_expiration,
                session_ttl: config.session.ttl,
            },
        )
        .watching(chain_status.clone(), session_cache.clone()),
    );
    let services = Arc::new(GatewayServices {
        sessions,
        chain_status: chain_status.clone(),
        payment: PaymentInfo {
            pay_to: config.chain.account.to_string(),
            amount: login_amount.to_string(),
            amount_decimal: login_amount.decimal(),
            currency: Symbol::native(config.chain.name).as_str().to_string(),
            chain: config.chain.name.as_str().to_string(),
        },
        logins: logins.clone(),
        simulated: config.chain.devnet,
        chain: chain_rpc,
        wallet,
        metrics: metrics.clone(),
        tls,
        assertions: Arc::new(crate::auth::assertion::Asserter::new(
            store.clone(),
            crate::auth::assertion::AssertionSettings {
                issuer: config.assertion.issuer.clone(),
                rotate_every: config.assertion.rotate_every,
                chain: config.chain.name.as_str().to_string(),
            },
        )),
        store: store.clone(),
    });
    (services, session_cache)
}

/// Runs the gateway until a shutdown signal (SIGTERM/SIGINT). Never returns
/// on success (pingora exits the process).
pub fn run(config: Config, extras: Extras) -> anyhow::Result<()> {
    let config = Arc::new(config);
    for warning in &config.warnings {
        tracing::warn!("config: {warning}");
    }
    ensure_listen_address_free(config.listen)?;
    let metrics = Arc::new(Metrics::new());
    let store: SharedStore = Arc::new(crate::store::timed::TimedStore::new(
        open_store(&config)?,
        metrics.store_operations.clone(),
    ));
    let pages = Arc::new(Pages::new(config.templates_dir.as_deref()).context("loading templates")?);
    let chain_status = ChainStatusHandle::default();
    let (logins, _) = tokio::sync::broadcast::channel::<SessionKey>(1024);

    let conf = ServerConf {
        threads: config.threads,
        work_stealing: config.work_stealing,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let server_conf = server.configuration.clone();

    // Built-in upstreams: one loopback listener each, bound now so routes know the address.
    let builtin_addrs = add_builtin_upstreams(&mut server, &config, &pages, &chain_status)?;
    let routes = RouteTable::compile(&config.routes, |upstream| {
        crate::reload::resolve_upstream(upstream, &builtin_addrs)
    })?;

    let (services, session_cache) =
        build_services(&config, &store, &chain_status, &logins, &metrics);
    let route_counters = crate::proxy::RouteCounters::new(&metrics, &routes);
    let tls = services.tls;
    let policies = Arc::new(crate::policy::PolicyEngine::new(
        config.chain.name,
        services.chain.clone(),
        &config.policies,
        config.policy_cache,
        metrics.policy.clone(),
    ));
    let oidc = crate::reload::oidc_provider(&config, &services.store);
    let state = Arc::new(GatewayState {
        services,
        routes,
        route_counters,
        pages: pages.clone(),
        site_name: config.site_name.clone(),
        limits: Arc::new(crate::proxy::limits::ClientLimits::new(&config.limits)),
        trusted_proxies: config.trusted_proxies.clone(),
        policies,
        oidc,
    });

    let state = Arc::new(arc_swap::ArcSwap::new(state));
    // The access log's writer thread starts after `bootstrap()` (a daemon
    // fork would lose it); a file that cannot be opened stops startup here.
    let access_log = config
        .log
        .access
        .as_ref()
        .map(|access| {
            crate::access_log::AccessLog::start(access, metrics.access_log_dropped.clone())
                .context("starting the access log")
        })
        .transpose()?;
    if let Some(path) = extras.config_path.clone() {
        server.add_service(background_service(
            "config reload",
            crate::reload::ReloadService {
                path,
                started_with: config.clone(),
                running: Mutex::new(config.clone()),
                state: state.clone(),
                builtins: builtin_addrs.clone(),
                access_log: access_log.clone(),
            },
        ));
    }
    // The proxy behind connection deadlines (slow headers, idle keep-alive).
    let mut gateway =
        pingora::proxy::HttpProxy::new(Gateway { state, access_log }, server_conf.clone());
    gateway.handle_init_modules();
    let (server_options, h2_options) = http2_limits(&config.limits);
    gateway.server_options = Some(server_options);
    gateway.h2_options = Some(h2_options);
    let mut proxy = pingora::services::listening::Service::new(
        "steemgate proxy".to_string(),
        crate::proxy::conn_guard::GuardedApp::new(
            gateway,
            crate::proxy::conn_guard::ConnTimeouts {
                header: config.limits.header_timeout,
                idle: config.limits.idle_timeout,
            },
        ),
    );
    match &config.tls {
        Some(files) => {
            let path = |p: &std::path::Path| p.to_str().map(str::to_string);
            let (Some(cert), Some(key)) = (path(&files.cert), path(&files.key)) else {
                anyhow::bail!("tls.cert and tls.key must be UTF-8 paths");
            };
            let mut settings = pingora::listeners::tls::TlsSettings::intermediate(&cert, &key)
                .map_err(|e| anyhow::anyhow!("setting up TLS on {}: {e}", config.listen))?;
            if files.http2 {
                // ALPN: h2 preferred, http/1.1 allowed. Off: no ALPN, as
                // before (every client speaks HTTP/1.1).
                settings.enable_h2();
            }
            proxy.add_tls_with_settings(&config.listen.to_string(), None, settings);
        }
        None => proxy.add_tcp(&config.listen.to_string()),
    }
    server.add_service(proxy);

    if let Some((devnet, listener)) = extras.devnet {
        server.add_service(background_service(
            "devnet",
            DevnetService {
                devnet,
                listener: Mutex::new(Some(listener)),
            },
        ));
    }
    if session_cache.is_enabled() {
        server.add_service(background_service(
            "session revocations",
            RevocationService {
                store: store.clone(),
                cache: session_cache,
            },
        ));
    }
    server.add_service(background_service(
        "chain follower",
        ChainService {
            config: config.clone(),
            store: store.clone(),
            status: chain_status.clone(),
            logins,
            metrics: metrics.clone(),
        },
    ));
    if let Some(admin_addr) = config.admin_listen {
        let listener = TcpListener::bind(admin_addr)
            .with_context(|| format!("binding admin_listen {admin_addr}"))?;
        let router = crate::admin::router(AdminState {
            store,
            chain: chain_status,
            metrics,
        });
        server.add_service(axum_service("admin", listener, router));
    }
    tracing::info!(listen = %config.listen, tls, admin = ?config.admin_listen, "steemgate starting");
    server.run_forever();
}

/// The bounds on downstream HTTP/2 connections (only reached over TLS with
/// `tls.http2` on; h2c is never offered).
///
/// pingora 0.9.1 already rejects malformed requests (bad pseudo-headers,
/// conflicting `:authority`/`Host`, connection-specific fields) and closes a
/// connection after 32 of them; h2 0.4.20 bounds CONTINUATION frames per
/// header block (CVE-2024-2758 class), resets of not yet accepted streams
/// (rapid reset, CVE-2023-44487) and answers PING/SETTINGS only as fast as
/// the client reads. Set here explicitly: a connection idle with no stream
/// in flight closes after `limits.idle_timeout` (as HTTP/1 keep-alive); a
/// header block is at most [`MAX_REQUEST_HEADER_BYTES`] decoded, as the
/// HTTP/1 limit; at most 100 concurrent streams; and a connection whose
/// protocol errors made the gateway reset 64 streams gets GOAWAY
/// ENHANCE_YOUR_CALM.
///
/// [`MAX_REQUEST_HEADER_BYTES`]: crate::proxy::MAX_REQUEST_HEADER_BYTES
fn http2_limits(
    limits: &crate::config::LimitsConfig,
) -> (
    pingora::apps::HttpServerOptions,
    pingora::protocols::http::v2::server::H2Options,
) {
    let mut options = pingora::apps::HttpServerOptions::default();
    options.h2_idle_timeout = Some(limits.idle_timeout);
    let mut h2 = pingora::protocols::http::v2::server::default_h2_options();
    let header_bytes = u32::try_from(crate::proxy::MAX_REQUEST_HEADER_BYTES).unwrap_or(u32::MAX);
    h2.max_header_list_size(header_bytes)
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_RESETS)
        .max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS));
    (options, h2)
}

/// Concurrent streams per HTTP/2 connection (browsers open at most ~100).
const H2_MAX_CONCURRENT_STREAMS: u32 = 100;
/// Streams the client reset before the gateway accepted them, per connection,
/// before it is closed with ENHANCE_YOUR_CALM (h2's default is 20).
const H2_MAX_PENDING_RESETS: usize = 20;
/// Streams the gateway reset for errors, per connection, before it is closed.
const H2_MAX_LOCAL_RESETS: usize = 64;

/// Keeps the session cache in step with logouts on other instances (a store
/// shared through Redis); with a single-instance store it has nothing to do.
struct RevocationService {
    store: SharedStore,
    cache: Arc<SessionCache>,
}

#[async_trait]
impl BackgroundService for RevocationService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Subscribing here ties the store's subscriber task to this
        // service's runtime, which runs as long as the process does.
        let Some(feed) = self.store.revocations() else {
            return;
        };
        let status = self.store.revocation_feed_status();
        tokio::select! {
            () = session_cache::follow_revocations(self.cache.clone(), feed, status) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// The devnet as a background service (`steemgate demo`).
struct DevnetService {
    devnet: crate::chain::devnet::Devnet,
    listener: Mutex<Option<TcpListener>>,
}

#[async_trait]
impl BackgroundService for DevnetService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(listener) = take_listener(&self.listener, "devnet") else {
            return;
        };
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = self.devnet.clone().serve(listener, stop).await {
            tracing::error!(error = %e, "devnet stopped");
        }
    }
}
