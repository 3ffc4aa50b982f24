//! The gateway's own HTTP endpoints under `/.steemgate/`, and its pages.
//!
//! Why here: these are the only answers the gateway makes up itself, so they
//! share one response builder ([`super::respond`]) and one page renderer. A
//! store failure is always a 503, never "not logged in"; a template failure
//! is a plain-text 503, never a panic or a proxied request.
//!
//! - `GET  /.steemgate/login?rd=PATH`: the interstitial login page.
//! - `GET  /.steemgate/status[?wait=SECS]`: JSON status; with `wait`, a long
//!   poll that returns as soon as the session is logged in.
//! - `POST /.steemgate/logout`: revokes the session, clears the cookie.
//! - `GET  /.steemgate/auth`: 200 + `X-Steem-Account`, or 401 (forward auth).
//! - `GET  /.steemgate/assets/NAME`: the pages' static files ([`ASSETS`]).
//! - `GET  /.steemgate/qr.svg`: the QR code of this session's hot-sign link
//!   (the login page swaps it in when the memo is renewed).
//! - `POST /.steemgate/challenge`, `POST /.steemgate/verify`: wallet logins
//!   (see [`super::wallet`]).
//! - `POST /.steemgate/devnet/transfer`: devnet only, simulates the transfer.
//! - `GET  /.steemgate/jwks.json`: the public keys that verify
//!   `X-Steem-Assertion` (see `auth::assertion`).

use std::time::Duration;

use pingora::proxy::Session;
use serde::Serialize;
use serde_json::json;

use super::hotsign;
use super::redirect::safe_redirect_target;
use super::respond::LocalResponse;
use super::{GatewayState, wants_html};
use crate::auth::sessions::{ChallengeChange, LiveSession, SessionError};
use crate::store::{SessionRecord, UnixTime, now_unix};

/// The pages' static files: (path, content type, body). Scripts must be
/// served files, never inline: the page CSP allows `script-src 'self'` only.
const ASSETS: &[(&str, &str, &str)] = &[(
    "/.steemgate/assets/login.js",
    "text/javascript; charset=utf-8",
    include_str!("../../templates/assets/login.js"),
)];
/// Longest long poll a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// Largest request body an endpoint reads (the devnet form).
const MAX_BODY: usize = 4096;

/// Routes a `/.steemgate/...` request.
pub async fn handle(
    state: &GatewayState,
    session: &mut Session,
    path: &str,
    query: Option<&str>,
) -> pingora::Result<()> {
    let method = session.req_header().method.clone();
    let params = Query::parse(query);
    match (method.as_str(), path) {
        ("GET" | "HEAD", "/.steemgate/login") => {
            login_page(state, session, params.get("rd").unwrap_or("/")).await
        }
        ("GET" | "HEAD", "/.steemgate/status") => {
            if client_ip(state, session).is_some_and(|ip| !state.limits.allow_status(ip)) {
                return too_many_requests(state, session).await;
            }
            status(state, session, params.wait()).await
        }
        ("POST", "/.steemgate/logout") => logout(state, session).await,
        ("POST", "/.steemgate/challenge") => super::wallet::challenge(state, session).await,
        ("POST", "/.steemgate/verify") => super::wallet::verify(state, session).await,
        ("GET" | "HEAD", "/.steemgate/auth") => forward_auth(state, session).await,
        ("GET" | "HEAD", asset) if asset.starts_with("/.steemgate/assets/") => {
            match ASSETS.iter().find(|(name, _, _)| *name == asset) {
                Some((_, content_type, body)) => {
                    LocalResponse::new(200, content_type, *body)
                        .send(session)
                        .await
                }
                None => {
                    message_page(
                        state,
                        session,
                        404,
                        "Not found",
                        "There is nothing at this address.",
                    )
                    .await
                }
            }
        }
        ("GET" | "HEAD", "/.steemgate/qr.svg") => qr_code(state, session).await,
        ("GET" | "HEAD", "/.steemgate/jwks.json") => jwks(state, session).await,
        ("POST", "/.steemgate/devnet/transfer") if state.devnet.is_some() => {
            devnet_transfer(state, session).await
        }
        (
            _,
            "/.steemgate/login"
            | "/.steemgate/status"
            | "/.steemgate/logout"
            | "/.steemgate/auth"
            | "/.steemgate/challenge"
            | "/.steemgate/verify",
        ) => {
            LocalResponse::text(405, "method not allowed\n")
                .send(session)
                .await
        }
        _ => {
            message_page(
                state,
                session,
                404,
                "Not found",
                "There is nothing at this address.",
            )
            .await
        }
    }
}

/// Decoded query parameters of an endpoint request (first value wins).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(query.map_or_else(Vec::new, |q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        }))
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// The long-poll time asked for with `wait=SECONDS`, at most [`MAX_WAIT`].
    pub fn wait(&self) -> Duration {
        self.get("wait")
            .and_then(|w| w.parse::<u64>().ok())
            .map_or(Duration::ZERO, |s| Duration::from_secs(s).min(MAX_WAIT))
    }
}

/// The status document (also the body of a 401 on `required` routes).
#[derive(Debug, Serialize)]
pub struct StatusView {
    pub authenticated: bool,
    pub account: Option<String>,
    pub pay_to: String,
    pub amount: String,
    pub memo: Option<String>,
    /// The hot-sign transfer link for `memo` (wallet-independent payment).
    pub hot_sign_url: Option<String>,
    pub expires_in: Option<u64>,
    pub login_url: &'static str,
    pub simulated: bool,
    pub chain: ChainView,
    /// The offered login methods (`transfer`, `signature`, `signed_transfer`).
    pub methods: Vec<&'static str>,
    /// Why this session's last login was undone, while it is logged out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ChainView {
    pub name: String,
    pub head_block: Option<u64>,
    pub behind_seconds: Option<u64>,
    /// A node answered within the last 30 s.
    pub reachable: bool,
}

pub(super) fn status_view(
    state: &GatewayState,
    record: &SessionRecord,
    now: UnixTime,
) -> StatusView {
    let snapshot = state.chain_status.snapshot();
    let authenticated = record.account.is_some();
    StatusView {
        authenticated,
        account: record.account.clone(),
        pay_to: state.payment.pay_to.clone(),
        amount: state.payment.amount.clone(),
        memo: if authenticated {
            None
        } else {
            record.memo.clone()
        },
        hot_sign_url: record
            .memo
            .as_deref()
            .filter(|_| !authenticated)
            .map(|memo| hotsign::hot_sign_url(&state.payment, memo)),
        expires_in: (!authenticated).then(|| record.memo_expires_at.saturating_sub(now)),
        login_url: "/.steemgate/login",
        simulated: state.devnet.is_some(),
        chain: ChainView {
            name: state.payment.chain.clone(),
            head_block: (snapshot.head_block > 0).then_some(snapshot.head_block),
            behind_seconds: state.chain_status.behind_seconds(now),
            reachable: state.chain_status.is_healthy(now),
        },
        methods: state
            .wallet
            .settings()
            .methods
            .iter()
            .map(|m| m.as_str())
            .collect(),
        revoked_reason: record.revoked_reason.clone().filter(|_| !authenticated),
    }
}

pub(super) fn presented_session(
    state: &GatewayState,
    session: &Session,
) -> Option<crate::auth::cookie::SessionId> {
    let cookies = session.req_header().headers.get_all(http::header::COOKIE);
    state
        .sessions
        .session_from_cookies(cookies.iter().map(|v| v.as_bytes()))
}

/// The session for a login page or status request, or a 503 already sent.
pub(super) async fn live_session(
    state: &GatewayState,
    session: &mut Session,
) -> pingora::Result<Option<LiveSession>> {
    let presented = presented_session(state, session);
    let ip = client_ip(state, session);
    let may_create = || ip.is_none_or(|ip| state.limits.allow_new_session(ip));
    match state
        .sessions
        .ensure_challenge(presented, now_unix(), may_create)
        .await
    {
        Ok(live) => {
            match live.challenge {
                ChallengeChange::Kept => {}
                ChallengeChange::Issued => state.metrics.challenges_issued.inc(),
                ChallengeChange::RenewedExpired => {
                    state.metrics.challenges_issued.inc();
                    state.metrics.challenges_expired.inc();
                }
            }
            if live.is_new {
                tracing::info!(
                    target: "steemgate::audit",
                    session = %live.key.log_id(),
                    client = ?ip,
                    "login session created"
                );
            }
            Ok(Some(live))
        }
        Err(SessionError::RateLimited) => {
            too_many_requests(state, session).await?;
            Ok(None)
        }
        Err(e) => {
            state.metrics.store_errors.inc();
            tracing::warn!(error = %e, "cannot create or read a session");
            unavailable_page(state, session).await?;
            Ok(None)
        }
    }
}

/// The client's address for limits and audit lines: the connection's peer,
/// or behind a trusted proxy the real client from `X-Forwarded-For`.
pub(super) fn client_ip(state: &GatewayState, session: &Session) -> Option<std::net::IpAddr> {
    let peer = session.client_addr().and_then(|a| a.as_inet())?.ip();
    super::headers::client_ip(peer, session.req_header(), &state.trusted_proxies)
}

/// 429: this client asked for too many new sessions or status polls.
pub(super) async fn too_many_requests(
    state: &GatewayState,
    session: &mut Session,
) -> pingora::Result<()> {
    let message = "Too many requests from your address. Please wait a minute and try again.";
    let response = if wants_html(session) {
        LocalResponse::html(
            429,
            render_message(state, 429, "Slow down", message, None, None),
        )
    } else {
        LocalResponse::json(429, &json!({"error": message}))
    };
    response
        .header("retry-after", "60".to_string())
        .send(session)
        .await
}

pub(super) fn new_cookie(state: &GatewayState, live: &LiveSession) -> Option<String> {
    live.is_new.then(|| state.sessions.set_cookie(&live.id))
}

async fn login_page(state: &GatewayState, session: &mut Session, rd: &str) -> pingora::Result<()> {
    let rd = safe_redirect_target(rd);
    let Some(live) = live_session(state, session).await? else {
        return Ok(());
    };
    let cookie = new_cookie(state, &live);
    if live.record.account.is_some() {
        return LocalResponse::redirect(&rd)
            .set_cookie(cookie)
            .send(session)
            .await;
    }
    let now = now_unix();
    let view = status_view(state, &live.record, now);
    let qr_svg = view.hot_sign_url.as_deref().and_then(hotsign::qr_svg);
    let context = json!({
        "site_name": state.site_name,
        "host": session.req_header().headers.get(http::header::HOST).and_then(|h| h.to_str().ok()),
        "payment": state.payment,
        "status": view,
        "qr_svg": qr_svg,
        "rd": rd,
        "simulated": state.devnet.is_some(),
    });
    match state.pages.render("login.html", &context) {
        Ok(html) => {
            LocalResponse::html(200, html)
                .set_cookie(cookie)
                .send(session)
                .await
        }
        Err(e) => {
            tracing::error!(error = %e, "login page failed to render");
            LocalResponse::text(503, "the login page is unavailable; try again shortly\n")
                .set_cookie(cookie)
                .send(session)
                .await
        }
    }
}

/// The QR code of the presented session's hot-sign link, as an SVG image;
/// 404 when the session has no pending memo (logged in, or none yet).
async fn qr_code(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    let record = match presented_session(state, session) {
        Some(id) => state.sessions.store().get_session(&id.store_key()).await,
        None => Ok(None),
    };
    let svg = match record {
        Ok(Some(record)) => {
            let view = status_view(state, &record, now_unix());
            view.hot_sign_url.as_deref().and_then(hotsign::qr_svg)
        }
        Ok(None) => None,
        Err(e) => {
            state.metrics.store_errors.inc();
            tracing::warn!(error = %e, "QR code: store unavailable");
            return LocalResponse::text(503, "store unavailable\n")
                .send(session)
                .await;
        }
    };
    match svg {
        Some(svg) => {
            LocalResponse::new(200, "image/svg+xml", svg)
                .header("content-security-policy", "default-src 'none'".to_string())
                .send(session)
                .await
        }
        None => {
            LocalResponse::text(404, "no login in progress\n")
                .send(session)
                .await
        }
    }
}

async fn status(
    state: &GatewayState,
    session: &mut Session,
    wait: Duration,
) -> pingora::Result<()> {
    let mut logins = state.logins.subscribe();
    let Some(mut live) = live_session(state, session).await? else {
        return Ok(());
    };
    let cookie = new_cookie(state, &live);
    if live.record.account.is_none() && !wait.is_zero() {
        let deadline = tokio::time::Instant::now() + wait;
        // Woken by our own follower at once; re-read the store every second
        // too, for logins another instance saw.
        while live.record.account.is_none() && tokio::time::Instant::now() < deadline {
            let tick = tokio::time::Instant::now() + Duration::from_secs(1);
            let _ = tokio::time::timeout_at(tick.min(deadline), async {
                loop {
                    match logins.recv().await {
                        Ok(key) if key == live.key => break,
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            continue;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await;
                        }
                    }
                }
            })
            .await;
            match state.sessions.store().get_session(&live.key).await {
                Ok(Some(record)) => live.record = record,
                Ok(None) => break,
                Err(e) => {
                    state.metrics.store_errors.inc();
                    tracing::warn!(error = %e, "store unavailable during long poll");
                    return unavailable_page(state, session).await;
                }
            }
        }
    }
    let view = status_view(state, &live.record, now_unix());
    let body = serde_json::to_value(&view).unwrap_or_default();
    LocalResponse::json(200, &body)
        .set_cookie(cookie)
        .send(session)
        .await
}

/// Whether a state-changing request comes from one of our own pages (see
/// [`super::origin`] for the decision); a refusal is audited.
pub(super) fn same_origin(session: &Session) -> bool {
    let headers = &session.req_header().headers;
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes());
    match super::origin::check(super::origin::OriginHeaders {
        sec_fetch_site: header("sec-fetch-site"),
        origin: header("origin"),
        host: header("host"),
    }) {
        Ok(()) => true,
        Err(why) => {
            tracing::info!(
                target: "steemgate::audit",
                path = session.req_header().uri.path(),
                refused_by = why.as_str(),
                "cross-site request refused"
            );
            false
        }
    }
}

async fn logout(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    if !same_origin(session) {
        return message_page(
            state,
            session,
            403,
            "Forbidden",
            "Cross-site logout requests are refused.",
        )
        .await;
    }
    if let Some(id) = presented_session(state, session)
        && let Err(e) = state.sessions.logout(&id).await
    {
        state.metrics.store_errors.inc();
        tracing::warn!(error = %e, "logout failed: store unavailable");
        return unavailable_page(state, session).await;
    }
    let clear = Some(state.sessions.clear_cookie());
    if wants_html(session) {
        let html = render_message(
            state,
            200,
            "Logged out",
            "You are logged out on this browser.",
            Some(("/.steemgate/login", "Log in again")),
            None,
        );
        LocalResponse::html(200, html)
            .set_cookie(clear)
            .send(session)
            .await
    } else {
        LocalResponse::json(200, &json!({"authenticated": false}))
            .set_cookie(clear)
            .send(session)
            .await
    }
}

async fn forward_auth(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    let account = match presented_session(state, session) {
        None => Ok(None),
        Some(id) => state.sessions.account(&id, now_unix()).await,
    };
    match account {
        Ok(Some(account)) => {
            LocalResponse::text(200, "ok\n")
                .header(super::headers::IDENTITY_HEADER, account)
                .send(session)
                .await
        }
        Ok(None) => {
            LocalResponse::text(401, "not logged in\n")
                .send(session)
                .await
        }
        Err(e) => {
            state.metrics.store_errors.inc();
            tracing::warn!(error = %e, "forward auth: store unavailable");
            LocalResponse::text(503, "store unavailable\n")
                .send(session)
                .await
        }
    }
}

/// The login page's URL, returning to `rd` afterwards.
fn login_url(rd: &str) -> String {
    let rd: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
    format!("/.steemgate/login?rd={rd}")
}

/// A `required` route without a logged-in session: browsers go to the
/// login page; other clients get 401 with the status document (and the
/// session cookie), so scripts can log in too.
pub async fn login_required(
    state: &GatewayState,
    session: &mut Session,
    original: &str,
) -> pingora::Result<()> {
    if wants_html(session) {
        return LocalResponse::redirect(&login_url(original))
            .send(session)
            .await;
    }
    let Some(live) = live_session(state, session).await? else {
        return Ok(());
    };
    let cookie = new_cookie(state, &live);
    let view = status_view(state, &live.record, now_unix());
    let body = serde_json::to_value(&view).unwrap_or_default();
    LocalResponse::json(401, &body)
        .header(
            "www-authenticate",
            "SteemTransfer realm=\"steemgate\"".to_string(),
        )
        .set_cookie(cookie)
        .send(session)
        .await
}

async fn devnet_transfer(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    let Some(devnet) = &state.devnet else {
        return message_page(
            state,
            session,
            404,
            "Not found",
            "There is nothing at this address.",
        )
        .await;
    };
    if !same_origin(session) {
        return message_page(
            state,
            session,
            403,
            "Forbidden",
            "Cross-site requests are refused.",
        )
        .await;
    }
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return message_page(state, session, 413, "Too large", "The form is too large.").await;
        }
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let from = form
        .iter()
        .find(|(k, _)| k == "from")
        .map_or("", |(_, v)| v.trim());
    let Ok(from) = crate::chain::AccountName::parse(from) else {
        return message_page(
            state,
            session,
            400,
            "Bad request",
            "Enter a valid account name (3 to 16 characters) to simulate a transfer from.",
        )
        .await;
    };
    let rd = form
        .iter()
        .find(|(k, _)| k == "rd")
        .map_or_else(|| "/".to_string(), |(_, v)| safe_redirect_target(v));
    let presented = presented_session(state, session);
    let record = match presented {
        Some(id) => state.sessions.store().get_session(&id.store_key()).await,
        None => Ok(None),
    };
    let memo = match record {
        Ok(Some(SessionRecord {
            memo: Some(memo), ..
        })) => memo,
        Ok(_) => {
            return message_page(
                state,
                session,
                400,
                "No login in progress",
                "Open the login page first.",
            )
            .await;
        }
        Err(_) => return unavailable_page(state, session).await,
    };
    let params = json!({"from": from.as_str(), "to": state.payment.pay_to, "amount": state.payment.amount, "memo": memo});
    if let Err(e) = devnet.call("devnet.transfer", params).await {
        tracing::warn!(error = %e, "devnet transfer failed");
        return message_page(
            state,
            session,
            502,
            "Simulation failed",
            "The devnet did not accept the simulated transfer.",
        )
        .await;
    }
    LocalResponse::redirect(&login_url(&rd))
        .header("x-devnet", "simulated".to_string())
        .send(session)
        .await
}

/// Renders `message.html`; `account` is set on a 403 for a logged-in
/// visitor (the page offers to log out and use another account).
fn render_message(
    state: &GatewayState,
    status: u16,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
    account: Option<&str>,
) -> String {
    let context = json!({
        "status": status,
        "title": title,
        "message": message,
        "site_name": state.site_name,
        "link": link.map(|(href, text)| json!({"href": href, "text": text})),
        "account": account,
    });
    state
        .pages
        .render("message.html", &context)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "message page failed to render");
            format!("<!doctype html><title>{status}</title><p>{status}</p>")
        })
}

/// A branded page (or JSON for non-browsers) with a status code.
pub async fn message_page(
    state: &GatewayState,
    session: &mut Session,
    status: u16,
    title: &str,
    message: &str,
) -> pingora::Result<()> {
    if wants_html(session) {
        LocalResponse::html(
            status,
            render_message(state, status, title, message, None, None),
        )
        .send(session)
        .await
    } else {
        LocalResponse::json(status, &json!({"error": message}))
            .send(session)
            .await
    }
}

/// 503: the store (or something we depend on) is unreachable. Never proxies.
/// The JWKS of the assertion keys. Store trouble: 503 (never an empty set,
/// which an upstream could cache as "no valid keys").
async fn jwks(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    match state.assertions.jwks().await {
        Ok(set) => match serde_json::to_value(&set) {
            Ok(value) => {
                LocalResponse::new(200, "application/jwk-set+json", value.to_string())
                    .send(session)
                    .await
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot encode the JWKS");
                LocalResponse::text(503, "keys unavailable\n")
                    .send(session)
                    .await
            }
        },
        Err(e) => {
            state.metrics.store_errors.inc();
            tracing::warn!(error = %e, "cannot load the assertion keys");
            LocalResponse::text(503, "keys unavailable\n")
                .send(session)
                .await
        }
    }
}

pub async fn unavailable_page(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    message_page(
        state,
        session,
        503,
        "Temporarily unavailable",
        "Sign-in is unavailable right now. Please try again in a moment.",
    )
    .await
}

/// 403: logged in, but not on this route's allowlist.
pub async fn forbidden_page(
    state: &GatewayState,
    session: &mut Session,
    account: &str,
) -> pingora::Result<()> {
    let message = format!("You are logged in as @{account}, which is not allowed here.");
    if wants_html(session) {
        let html = render_message(state, 403, "Not allowed", &message, None, Some(account));
        LocalResponse::html(403, html).send(session).await
    } else {
        LocalResponse::json(403, &json!({"error": message, "account": account}))
            .send(session)
            .await
    }
}
