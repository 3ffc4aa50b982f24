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
//! - `POST /.steemgate/devnet/broadcast`: devnet only, the report's
//!   "Simulate wallet" (see [`super::simwallet`]).
//! - `GET  /.steemgate/jwks.json`: the public keys that verify
//!   `X-Steem-Assertion` (see `auth::assertion`).

use std::time::Duration;

use pingora::proxy::Session;
use serde_json::json;

use super::hotsign;
use super::messages::{message_page, not_found_page, store_failed, unavailable_page};
use super::query::Query;
use super::redirect::safe_redirect_target;
use super::respond::LocalResponse;
use super::visitor::{
    client_ip, live_session, new_cookie, presented_session, same_origin, status_view,
    too_many_requests,
};
use super::{GatewayState, wants_html};
use crate::clock::now_unix;
use crate::store::SessionRecord;

/// The pages' static files: (path, content type, body). Scripts must be
/// served files, never inline: the page CSP allows `script-src 'self'` only.
const ASSETS: &[(&str, &str, &str)] = &[(
    "/.steemgate/assets/login.js",
    "text/javascript; charset=utf-8",
    include_str!("../../templates/assets/login.js"),
)];

/// Routes a `/.steemgate/...` request. `vouched` receives the account the
/// gateway vouched for in its answer (forward auth), for the access log.
pub async fn handle(
    state: &GatewayState,
    session: &mut Session,
    path: &str,
    query: Option<&str>,
    vouched: &mut Option<String>,
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
            status(state, session, params.wait(), params.get("policy")).await
        }
        ("POST", "/.steemgate/logout") => logout(state, session).await,
        ("POST", "/.steemgate/challenge") => super::wallet::challenge(state, session).await,
        ("POST", "/.steemgate/verify") => super::wallet::verify(state, session).await,
        ("GET" | "HEAD", "/.steemgate/auth") => {
            forward_auth(state, session, params.get("policy"), vouched).await
        }
        ("GET" | "HEAD", asset) if asset.starts_with("/.steemgate/assets/") => {
            match ASSETS.iter().find(|(name, _, _)| *name == asset) {
                Some((_, content_type, body)) => {
                    LocalResponse::new(200, content_type, *body)
                        .send(session)
                        .await
                }
                None => not_found_page(state, session).await,
            }
        }
        (_, oidc) if oidc.starts_with("/.steemgate/oidc/") => {
            super::oidc::handle(state, session, oidc, query).await
        }
        ("GET" | "HEAD", "/.steemgate/qr.svg") => qr_code(state, session).await,
        ("GET" | "HEAD", "/.steemgate/jwks.json") => jwks(state, session).await,
        ("POST", "/.steemgate/devnet/transfer") if state.services.simulated => {
            devnet_transfer(state, session).await
        }
        ("POST", "/.steemgate/devnet/join") if state.services.simulated => {
            super::policy::devnet_join(state, session).await
        }
        ("POST", "/.steemgate/devnet/broadcast") if state.services.simulated => {
            super::simwallet::broadcast(state, session).await
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
        _ => not_found_page(state, session).await,
    }
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
        "payment": state.services.payment,
        "status": view,
        "qr_svg": qr_svg,
        "rd": rd,
        "simulated": state.services.simulated,
        "oidc_client": super::oidc::client_name_of_return(state, &rd).await,
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
        Some(id) => state.services.sessions.record(&id.store_key()).await,
        None => Ok(None),
    };
    let svg = match record {
        Ok(Some(record)) => {
            let view = status_view(state, &record, now_unix());
            view.hot_sign_url.as_deref().and_then(hotsign::qr_svg)
        }
        Ok(None) => None,
        Err(e) => {
            state.services.metrics.store_errors.inc();
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
    policy: Option<&str>,
) -> pingora::Result<()> {
    let mut logins = state.services.logins.subscribe();
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
            match state.services.sessions.record(&live.key).await {
                Ok(Some(record)) => live.record = record,
                Ok(None) => break,
                Err(e) => {
                    state.services.metrics.store_errors.inc();
                    tracing::warn!(error = %e, "store unavailable during long poll");
                    return unavailable_page(state, session).await;
                }
            }
        }
    }
    let view = status_view(state, &live.record, now_unix());
    let mut body = serde_json::to_value(&view).unwrap_or_default();
    // `?policy=a,b`: how the logged-in visitor fares with those policies.
    if let (Some(names), Some(account)) = (policy, live.record.account.as_deref())
        && let Some(fields) = body.as_object_mut()
    {
        let mut names = super::policy::policy_names(names);
        names.truncate(MAX_POLICIES_PER_QUERY);
        fields.insert(
            "policies".into(),
            super::policy::policy_report(state, account, &names).await,
        );
    }
    LocalResponse::json(200, &body)
        .set_cookie(cookie)
        .send(session)
        .await
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
        && let Err(e) = super::visitor::end_session(state, &id, None).await
    {
        return store_failed(state, session, "logout failed", &e).await;
    }
    let clear = Some(state.services.sessions.clear_cookie());
    if wants_html(session) {
        super::messages::logged_out_page(state, session, clear).await
    } else {
        LocalResponse::json(200, &json!({"authenticated": false}))
            .set_cookie(clear)
            .send(session)
            .await
    }
}

/// Most policy names one `?policy=` may list (each is a decision).
const MAX_POLICIES_PER_QUERY: usize = 16;

async fn forward_auth(
    state: &GatewayState,
    session: &mut Session,
    policy: Option<&str>,
    vouched: &mut Option<String>,
) -> pingora::Result<()> {
    // `?policy=a,b`: every named policy must hold. Checked before the
    // session so that a typo in a proxy's config shows at once.
    let policies = policy.map(super::policy::policy_names).unwrap_or_default();
    if policies.len() > MAX_POLICIES_PER_QUERY {
        return LocalResponse::text(400, "too many policies in one request\n")
            .send(session)
            .await;
    }
    if let Some(unknown) = policies.iter().find(|p| !state.policies.knows(p)) {
        let body = format!("no policy named {unknown:?}\n");
        return LocalResponse::new(400, "text/plain; charset=utf-8", body)
            .send(session)
            .await;
    }
    let account = match presented_session(state, session) {
        None => Ok(None),
        Some(id) => state.services.sessions.account(&id, now_unix()).await,
    };
    match account {
        Ok(Some(account)) => match super::policy::route_access(state, &policies, &account).await {
            super::policy::RouteAccess::Granted => {
                *vouched = Some(account.clone());
                LocalResponse::text(200, "ok\n")
                    .header(super::headers::IDENTITY_HEADER, account)
                    .send(session)
                    .await
            }
            super::policy::RouteAccess::Denied(denied) => {
                LocalResponse::json(403, &super::policy::denial_json(&account, &denied))
                    .send(session)
                    .await
            }
            super::policy::RouteAccess::Undecidable => {
                LocalResponse::text(503, "policy undecidable: the chain cannot be read\n")
                    .send(session)
                    .await
            }
        },
        Ok(None) => {
            LocalResponse::text(401, "not logged in\n")
                .send(session)
                .await
        }
        Err(e) => {
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "forward auth: store unavailable");
            LocalResponse::text(503, "store unavailable\n")
                .send(session)
                .await
        }
    }
}

/// Whether the browser says this request loads a part of a page (image,
/// script, style, font, icon ...) rather than a page (`document`, frames)
/// or a script's own request (`empty`). Without `Sec-Fetch-Dest` (curl,
/// older browsers) it is treated as a page.
fn is_subresource(session: &Session) -> bool {
    session
        .req_header()
        .headers
        .get("sec-fetch-dest")
        .is_some_and(|dest| {
            !matches!(
                dest.as_bytes().trim_ascii(),
                b"document" | b"iframe" | b"frame" | b"empty" | b""
            )
        })
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
    if is_subresource(session) {
        // An image, script or icon (Chromium asks every page for
        // /favicon.ico) cannot log in: no session, no cookie, and nothing
        // counted against the visitor's new-session limit.
        return LocalResponse::text(401, "login required\n")
            .send(session)
            .await;
    }
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
    let Some(form) = super::visitor::devnet_form(state, session).await? else {
        return Ok(());
    };
    let devnet = &state.services.chain;
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
        Some(id) => state.services.sessions.record(&id.store_key()).await,
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
    let params = json!({"from": from.as_str(), "to": state.services.payment.pay_to, "amount": state.services.payment.amount, "memo": memo});
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

/// The JWKS of the assertion keys. Store trouble: 503 (never an empty set,
/// which an upstream could cache as "no valid keys").
async fn jwks(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    match state.services.assertions.jwks().await {
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
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "cannot load the assertion keys");
            LocalResponse::text(503, "keys unavailable\n")
                .send(session)
                .await
        }
    }
}
