//! The gateway: pingora's `ProxyHttp`, kept thin.
//!
//! Why thin: the decisions live in plain modules that are tested without a
//! proxy: [`path`] (one canonical path), [`routes`] (which upstream, which
//! auth mode), [`headers`] (what the upstream may see), [`redirect`]
//! (local-only redirect targets), [`respond`] (every locally generated
//! answer), [`endpoints`] (`/.steemgate/*`), and `auth::sessions` (who the
//! browser is). This file only sequences them per request:
//!
//! 1. `request_filter`: canonicalize the target; answer `/.steemgate/*`
//!    locally; pick the route (none → 404); check the session for
//!    `optional`/`required` routes (store trouble → 503 on `required`);
//!    rewrite the target to its canonical form.
//! 2. `upstream_peer`: the route's pre-resolved upstream.
//! 3. `upstream_request_filter`: header hygiene, then exactly one identity.
//! 4. `logging`: count the answer, hand a record to the access log.

pub mod conn_guard;
pub mod endpoints;
pub mod headers;
pub mod hotsign;
pub mod limits;
pub mod messages;
pub mod oidc;
pub mod origin;
pub mod path;
pub mod policy;
pub mod query;
pub mod redirect;
pub mod respond;
pub mod routes;
pub mod simwallet;
pub mod visitor;
pub mod wallet;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::prelude::HttpPeer;
use pingora::proxy::{ProxyHttp, Session};

use crate::access_log::{AccessLog, Record, RouteName};
use crate::admin::{Metrics, RouteRequestCounters};
use crate::auth::sessions::SessionManager;
use crate::chain::RpcCall;
use crate::chain::status::ChainStatusHandle;
use crate::clock::now_unix;
use crate::config::AuthMode;
use crate::pages::Pages;
use crate::store::SessionKey;
use headers::{ForwardedFor, client_chain, sanitize_upstream_request};
use routes::RouteTable;

/// Largest total size of request header fields the gateway accepts (pingora
/// itself allows 1 MiB); above it the answer is 431 and nothing is proxied.
pub const MAX_REQUEST_HEADER_BYTES: usize = 64 * 1024;

fn request_header_bytes(session: &Session) -> usize {
    session
        .req_header()
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// What the login page and status endpoint tell a visitor to pay.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PaymentInfo {
    /// The gateway's account.
    pub pay_to: String,
    /// `"0.001 STEEM"`
    pub amount: String,
    /// `"0.001"`
    pub amount_decimal: String,
    /// `"STEEM"`
    pub currency: String,
    /// `"steem"` or `"hive"`
    pub chain: String,
}

/// What the proxy runs on: services built once for the process, and the
/// settings a SIGHUP reload replaces (see `reload.rs`). A request takes one
/// snapshot of it for its whole life.
pub struct GatewayState {
    /// Built once at start; a reload keeps the same `Arc`.
    pub services: Arc<GatewayServices>,
    pub routes: RouteTable,
    /// `requests_total` counters per route (same order as `routes`), then
    /// one for answers the gateway gives itself: see [`RouteCounters`].
    pub route_counters: RouteCounters,
    pub pages: Arc<Pages>,
    pub site_name: Option<String>,
    /// Per-client limits on new sessions and status polls.
    pub limits: Arc<limits::ClientLimits>,
    /// Peers whose `X-Forwarded-For` is kept (config `trusted_proxies`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Access policies and their decisions (rebuilt when a reload changes
    /// `policies` or `policy_cache`).
    pub policies: Arc<crate::policy::PolicyEngine>,
    /// The OpenID Provider (`oidc:`), if configured (rebuilt when a reload
    /// changes `oidc`).
    pub oidc: Option<Arc<crate::oidc::Provider>>,
}

/// The gateway's long-lived services: sessions, the chain, wallet logins,
/// assertions, metrics. Nothing here changes on reload.
pub struct GatewayServices {
    pub sessions: Arc<SessionManager>,
    pub chain_status: ChainStatusHandle,
    pub payment: PaymentInfo,
    /// Wakes long-polling status requests when the follower logs a session in.
    pub logins: tokio::sync::broadcast::Sender<SessionKey>,
    /// The chain is the devnet (`chain.devnet`): the login page offers
    /// "simulate transfer", answered through `chain`.
    pub simulated: bool,
    /// The chain's RPC (real nodes or the devnet): wallet logins read
    /// account authorities and broadcast instant login transfers with it.
    pub chain: Arc<dyn RpcCall>,
    /// Wallet logins (`/.steemgate/challenge`, `/.steemgate/verify`).
    pub wallet: Arc<crate::auth::wallet::WalletLogins>,
    pub metrics: Arc<Metrics>,
    /// Whether the public listener is TLS (decides `X-Forwarded-Proto`).
    pub tls: bool,
    /// Mints `X-Steem-Assertion` for routes with `assertion: true`.
    pub assertions: Arc<crate::auth::assertion::Asserter>,
    /// The store (the OpenID provider is built on it, at start and reload).
    pub store: crate::store::SharedStore,
}

impl GatewayState {
    /// The scheme visitors use: `https` on a TLS listener.
    pub fn scheme(&self) -> &'static str {
        if self.services.tls { "https" } else { "http" }
    }
}

/// Label of requests the gateway answers itself (no route).
pub const GATEWAY_ROUTE_LABEL: &str = crate::access_log::GATEWAY_ROUTE;

/// The `requests_total` counters of every route, resolved once at startup
/// so that counting a request does not hash its label values.
pub struct RouteCounters {
    per_route: Vec<RouteRequestCounters>,
    gateway: RouteRequestCounters,
}

impl RouteCounters {
    pub fn new(metrics: &Metrics, routes: &RouteTable) -> Self {
        Self {
            per_route: (0..routes.len())
                .filter_map(|i| routes.get(i))
                .map(|route| metrics.route_request_counters(&route.label))
                .collect(),
            gateway: metrics.route_request_counters(GATEWAY_ROUTE_LABEL),
        }
    }

    /// The counters of route `index`; the gateway's own for `None`.
    pub fn get(&self, index: Option<usize>) -> &RouteRequestCounters {
        index
            .and_then(|i| self.per_route.get(i))
            .unwrap_or(&self.gateway)
    }
}

/// The pingora service. The state is swapped whole when the config is
/// reloaded (SIGHUP); each request keeps the snapshot it started with.
pub struct Gateway {
    pub state: Arc<arc_swap::ArcSwap<GatewayState>>,
    /// `None`: `log.access: off`. Process-wide (a reload keeps it).
    pub access_log: Option<AccessLog>,
}

/// Per-request facts gathered in `request_filter` and used afterwards.
pub struct RequestCtx {
    /// The gateway state this request runs on, from its start to its end
    /// (a reload in between does not change its route or limits).
    state: Arc<GatewayState>,
    /// Index into the route table; `None` for local answers.
    route: Option<usize>,
    /// The logged-in account to send upstream, if any.
    account: Option<String>,
    host: Option<String>,
    /// The signed `X-Steem-Assertion` to send, on routes that ask for one.
    assertion: Option<String>,
    /// When the request's header had arrived (the context is made then).
    started: Instant,
    /// The request went to `/.steemgate/*`.
    endpoint: bool,
    /// When the upstream was chosen (first attempt), and when its response
    /// ended: the access log's upstream time.
    upstream_started: Option<Instant>,
    upstream_ended: Option<Instant>,
}

/// Whether the client is a browser that should be redirected to the login
/// page (rather than get a 401 it can act on).
pub fn wants_html(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get_all(http::header::ACCEPT)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("text/html")))
}

/// The auth decision for one request on its route.
enum Admission {
    /// Proxy, with this identity (or none).
    Proceed(Option<String>),
    /// No logged-in session on a required route.
    LoginRequired,
    /// Logged in, but not on the route's allowlist.
    Forbidden(String),
    /// Logged in, but a route policy fails (required routes).
    PolicyDenied(String, Vec<Arc<crate::policy::Decision>>),
    /// A route policy cannot be decided (required routes): fail closed.
    PolicyUndecidable,
    /// The store could not answer on a required route.
    Unavailable,
}

/// The outcome of signing an identity assertion.
enum Assertion {
    Signed(String),
    /// Optional route: go on anonymously.
    DropIdentity,
    /// Required route: answer 503.
    Unavailable,
}

impl Gateway {
    /// The logged-in account of the request's session cookie. `Ok(None)` is
    /// "anonymous"; `Err` is store trouble.
    async fn account_of(
        state: &GatewayState,
        session: &Session,
    ) -> Result<Option<String>, crate::store::StoreError> {
        let cookies = session.req_header().headers.get_all(http::header::COOKIE);
        let Some(id) = state
            .services
            .sessions
            .session_from_cookies(cookies.iter().map(|v| v.as_bytes()))
        else {
            return Ok(None);
        };
        state.services.sessions.account(&id, now_unix()).await
    }

    /// What the route's auth mode makes of the visitor. Store trouble on
    /// an optional route proceeds anonymously (no identity is the safe
    /// side); on a required route it is `Unavailable`, never "not logged in".
    async fn admit(
        state: &GatewayState,
        session: &Session,
        route: &routes::CompiledRoute,
    ) -> Admission {
        if route.auth == AuthMode::Public {
            return Admission::Proceed(None);
        }
        let account = match Self::account_of(state, session).await {
            Ok(account) => account,
            Err(e) => {
                state.services.metrics.store_errors.inc();
                if route.auth == AuthMode::Required {
                    tracing::warn!(error = %e, "store unavailable on required route; refusing");
                    return Admission::Unavailable;
                }
                tracing::warn!(error = %e, "store unavailable on optional route; proxying anonymously");
                return Admission::Proceed(None);
            }
        };
        match (route.auth, account) {
            (AuthMode::Required, None) => Admission::LoginRequired,
            (AuthMode::Required, Some(account)) if !route.allows(&account) => {
                Admission::Forbidden(account)
            }
            (auth, Some(account)) if !route.policies.is_empty() => {
                match (
                    auth,
                    policy::route_access(state, &route.policies, &account).await,
                ) {
                    (_, policy::RouteAccess::Granted) => Admission::Proceed(Some(account)),
                    (AuthMode::Required, policy::RouteAccess::Denied(denied)) => {
                        Admission::PolicyDenied(account, denied)
                    }
                    (AuthMode::Required, policy::RouteAccess::Undecidable) => {
                        Admission::PolicyUndecidable
                    }
                    // Optional routes: a visitor the policy does not admit
                    // (or cannot decide) is proxied anonymously.
                    _ => Admission::Proceed(None),
                }
            }
            (_, account) => Admission::Proceed(account),
        }
    }

    /// Signs the `X-Steem-Assertion` of `account` for `host`. On failure a
    /// required route is `Unavailable`; an optional one proceeds without
    /// the identity (an account without its assertion is not sent).
    async fn sign_assertion(
        state: &GatewayState,
        account: &str,
        host: &str,
        required: bool,
        policies: &[Arc<str>],
    ) -> Assertion {
        let issuer = state.services.assertions.issuer_for(state.scheme(), host);
        match state
            .services
            .assertions
            .assertion(account, host, &issuer, policies)
            .await
        {
            Ok(token) => Assertion::Signed(token),
            Err(e) => {
                state.services.metrics.store_errors.inc();
                if required {
                    tracing::warn!(error = %e, "cannot sign the identity assertion; refusing");
                    Assertion::Unavailable
                } else {
                    tracing::warn!(error = %e, "cannot sign the identity assertion; proxying anonymously");
                    Assertion::DropIdentity
                }
            }
        }
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            state: self.state.load_full(),
            route: None,
            account: None,
            host: None,
            assertion: None,
            started: Instant::now(),
            endpoint: false,
            upstream_started: None,
            upstream_ended: None,
        }
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let state = &*ctx.state;
        if request_header_bytes(session) > MAX_REQUEST_HEADER_BYTES {
            messages::message_page(
                state,
                session,
                431,
                "Request headers too large",
                "The request's header fields are too large.",
            )
            .await?;
            return Ok(true);
        }
        let req = session.req_header();
        let mut target = match path::parse_request_target(
            req.raw_path(),
            req.headers.get(http::header::HOST).map(|v| v.as_bytes()),
        ) {
            Ok(target) => target,
            Err(why) => {
                messages::message_page(state, session, 400, "Bad request", &why).await?;
                return Ok(true);
            }
        };
        let req = session.req_header();
        ctx.host = target.authority_host.take().or_else(|| {
            routes::request_host(
                &req.uri,
                req.headers.get(http::header::HOST).map(|v| v.as_bytes()),
            )
        });

        if target.path == crate::oidc::DISCOVERY_PATH
            && let Some(provider) = &state.oidc
            && oidc::is_issuer_host(provider, ctx.host.as_deref())
        {
            ctx.endpoint = true;
            oidc::discovery(provider, session).await?;
            return Ok(true);
        }
        if target.path == "/.steemgate" || target.path.starts_with("/.steemgate/") {
            ctx.endpoint = true;
            let path = target.path.into_owned();
            let query = target.query.map(Cow::into_owned);
            endpoints::handle(state, session, &path, query.as_deref(), &mut ctx.account).await?;
            return Ok(true);
        }

        let Some((index, route)) = state.routes.find(ctx.host.as_deref(), &target.path) else {
            messages::not_found_page(state, session).await?;
            return Ok(true);
        };
        ctx.route = Some(index);

        match Self::admit(state, session, route).await {
            Admission::Proceed(account) => ctx.account = account,
            Admission::LoginRequired => {
                let original = target.to_origin_form();
                endpoints::login_required(state, session, &original).await?;
                return Ok(true);
            }
            Admission::Forbidden(account) => {
                messages::forbidden_page(state, session, &account).await?;
                // For the access log only: nothing is proxied.
                ctx.account = Some(account);
                return Ok(true);
            }
            Admission::PolicyDenied(account, denied) => {
                let original = target.to_origin_form();
                policy::denied_page(state, session, &account, &denied, &original, None).await?;
                ctx.account = Some(account);
                return Ok(true);
            }
            Admission::PolicyUndecidable => {
                policy::undecidable_page(state, session).await?;
                return Ok(true);
            }
            Admission::Unavailable => {
                messages::unavailable_page(state, session).await?;
                return Ok(true);
            }
        }

        if route.assertion
            && let Some(account) = ctx.account.clone()
        {
            let Some(host) = ctx.host.clone() else {
                messages::message_page(
                    state,
                    session,
                    400,
                    "Bad request",
                    "A Host header is required.",
                )
                .await?;
                return Ok(true);
            };
            let required = route.auth == AuthMode::Required;
            // Proxied with an account on a route with policies: every one of
            // them held (see `admit`), so the assertion names them all.
            match Self::sign_assertion(state, &account, &host, required, &route.policies).await {
                Assertion::Signed(token) => ctx.assertion = Some(token),
                Assertion::DropIdentity => ctx.account = None,
                Assertion::Unavailable => {
                    messages::unavailable_page(state, session).await?;
                    return Ok(true);
                }
            }
        }

        if target.changed {
            let rebuilt = target.to_origin_form();
            match rebuilt.parse::<http::Uri>() {
                Ok(uri) => session.req_header_mut().set_uri(uri),
                Err(_) => {
                    messages::message_page(
                        state,
                        session,
                        400,
                        "Bad request",
                        "The request target is malformed.",
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let route = ctx
            .route
            .and_then(|i| ctx.state.routes.get(i))
            .ok_or_else(|| {
                pingora::Error::explain(pingora::ErrorType::InternalError, "no route chosen")
            })?;
        ctx.upstream_started.get_or_insert_with(Instant::now);
        let mut peer = HttpPeer::new(route.upstream, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream_request: &mut pingora::http::RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let state = &*ctx.state;
        let client = session.client_addr().and_then(|a| a.as_inet()).map(|peer| {
            client_chain(
                peer.ip(),
                upstream_request
                    .headers
                    .get_all("x-forwarded-for")
                    .iter()
                    .map(|v| v.as_bytes()),
                &state.trusted_proxies,
            )
        });
        let forwarded = ForwardedFor {
            client,
            host: ctx.host.as_deref(),
            proto: state.scheme(),
        };
        sanitize_upstream_request(
            upstream_request,
            &state.services.sessions.settings().cookie_name,
            &forwarded,
            ctx.account.as_deref(),
        )?;
        if let Some(token) = &ctx.assertion {
            upstream_request.insert_header(headers::ASSERTION_HEADER, token.as_str())?;
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        _session: &mut Session,
        _body: &mut Option<bytes::Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<Duration>> {
        if end_of_stream {
            ctx.upstream_ended = Some(Instant::now());
        }
        Ok(None)
    }

    /// What pingora's own error lines say about the request: its default
    /// carries the query string, which may hold a code or a token.
    fn request_summary(&self, session: &Session, _ctx: &RequestCtx) -> String {
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        format!("{} {}, Host: {host}", req.method, req.uri.path())
    }

    async fn logging(
        &self,
        session: &mut Session,
        _e: Option<&pingora::Error>,
        ctx: &mut RequestCtx,
    ) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        ctx.state.route_counters.get(ctx.route).observe(status);
        if let Some(log) = &self.access_log {
            log.record(access_record(session, ctx, status));
        }
    }
}

/// The access log's record of a finished request: cheap to build (the
/// path is the one allocation), formatted later by the log's own thread.
fn access_record(session: &Session, ctx: &mut RequestCtx, status: u16) -> Record {
    let now = Instant::now();
    let state = &*ctx.state;
    let req = session.req_header();
    let client = visitor::client_ip(state, session);
    let route = match ctx.route {
        Some(index) => state.routes.get(index).map_or(RouteName::None, |route| {
            RouteName::Route(route.label.clone())
        }),
        None if ctx.endpoint => RouteName::Gateway,
        None => RouteName::None,
    };
    Record {
        time: std::time::SystemTime::now(),
        client,
        method: req.method.clone(),
        version: req.version,
        path: crate::access_log::loggable_path(req.uri.path()),
        status,
        route,
        account: ctx.account.take(),
        upstream: ctx.upstream_started.map(|start| {
            ctx.upstream_ended
                .unwrap_or(now)
                .saturating_duration_since(start)
        }),
        bytes: session.body_bytes_sent(),
        duration: now.saturating_duration_since(ctx.started),
    }
}
