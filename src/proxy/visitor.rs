//! Who is asking: the visitor's address, session and page-made-ness.
//!
//! Why a module of its own: every gateway endpoint (the pages, the status
//! poll, the wallet logins) asks the same questions about the request in
//! front of it — which session its cookie names (creating one when it may),
//! whether it may create one more, where it really comes from behind
//! trusted proxies, whether it comes from one of our own pages — and
//! answers a refusal the same way. Keeping them here lets the endpoint
//! modules depend on this one instead of on each other.

use pingora::proxy::Session;
use serde::Serialize;
use serde_json::json;

use super::GatewayState;
use super::hotsign;
use super::messages::{message_page, not_found_page, render_message, unavailable_page};
use super::respond::LocalResponse;
use super::wants_html;
use crate::auth::sessions::{ChallengeChange, LiveSession, SessionError};
use crate::clock::{UnixTime, now_unix};
use crate::store::SessionRecord;

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
    let snapshot = state.services.chain_status.snapshot();
    let authenticated = record.account.is_some();
    StatusView {
        authenticated,
        account: record.account.clone(),
        pay_to: state.services.payment.pay_to.clone(),
        amount: state.services.payment.amount.clone(),
        memo: if authenticated {
            None
        } else {
            record.memo.clone()
        },
        hot_sign_url: record
            .memo
            .as_deref()
            .filter(|_| !authenticated)
            .map(|memo| hotsign::hot_sign_url(&state.services.payment, memo)),
        expires_in: (!authenticated).then(|| record.memo_expires_at.saturating_sub(now)),
        login_url: "/.steemgate/login",
        simulated: state.services.simulated,
        chain: ChainView {
            name: state.services.payment.chain.clone(),
            head_block: (snapshot.head_block > 0).then_some(snapshot.head_block),
            behind_seconds: state.services.chain_status.behind_seconds(now),
            reachable: state.services.chain_status.is_healthy(now),
        },
        methods: state
            .services
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
        .services
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
        .services
        .sessions
        .ensure_challenge(presented, now_unix(), may_create)
        .await
    {
        Ok(live) => {
            match live.challenge {
                ChallengeChange::Kept => {}
                ChallengeChange::Issued => state.services.metrics.challenges_issued.inc(),
                ChallengeChange::RenewedExpired => {
                    state.services.metrics.challenges_issued.inc();
                    state.services.metrics.challenges_expired.inc();
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
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "cannot create or read a session");
            unavailable_page(state, session).await?;
            Ok(None)
        }
    }
}

/// Ends session `id` on the server (logout, a fresh login asked for by an
/// OpenID client): the account's policy decisions go with it, so logging in
/// again rechecks the chain at once. `account` when the caller knows it.
pub(super) async fn end_session(
    state: &GatewayState,
    id: &crate::auth::cookie::SessionId,
    account: Option<&str>,
) -> Result<(), crate::store::StoreError> {
    let account = match account {
        Some(account) => Some(account.to_string()),
        None => state
            .services
            .sessions
            .account(id, now_unix())
            .await
            .ok()
            .flatten(),
    };
    if let Some(account) = account {
        state.policies.forget(&account).await;
    }
    state.services.sessions.logout(id).await.map(drop)
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
    live.is_new
        .then(|| state.services.sessions.set_cookie(&live.id))
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

/// The form of a devnet simulation button (`/.steemgate/devnet/*`), or
/// `None` after answering: 404 unless the chain is the devnet, 403 for a
/// cross-site request, 413 for a form too large.
pub async fn devnet_form(
    state: &GatewayState,
    session: &mut Session,
) -> pingora::Result<Option<Vec<(String, String)>>> {
    if !state.services.simulated {
        not_found_page(state, session).await?;
        return Ok(None);
    }
    if !same_origin(session) {
        message_page(
            state,
            session,
            403,
            "Forbidden",
            "Cross-site requests are refused.",
        )
        .await?;
        return Ok(None);
    }
    super::messages::read_form(state, session).await
}
