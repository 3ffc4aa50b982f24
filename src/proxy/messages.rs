//! The gateway's message pages: one branded page (or JSON for scripts) per
//! status, from `message.html`.
//!
//! Why a module of its own: every endpoint and the proxy itself answer
//! 403, 404, 429 and 503 the same way; a template that fails to render
//! still yields a minimal page, never a panic or a proxied request.

use pingora::proxy::Session;
use serde_json::json;

use super::GatewayState;
use super::respond::LocalResponse;
use super::wants_html;

/// Renders `message.html`; `account` is set on a 403 for a logged-in
/// visitor (the page offers to log out and use another account).
pub(super) fn render_message(
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
/// "You are logged out", clearing the cookie with `clear`.
pub async fn logged_out_page(
    state: &GatewayState,
    session: &mut Session,
    clear: Option<String>,
) -> pingora::Result<()> {
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
}

/// `template` rendered, or `None` after a 503 was answered (a template that
/// fails at render time is never a blank or half page).
pub async fn render_or_unavailable(
    state: &GatewayState,
    session: &mut Session,
    template: &str,
    context: &serde_json::Value,
) -> pingora::Result<Option<String>> {
    match state.pages.render(template, context) {
        Ok(html) => Ok(Some(html)),
        Err(e) => {
            tracing::error!(error = %e, template, "page failed to render");
            unavailable_page(state, session).await?;
            Ok(None)
        }
    }
}

/// 404 in the visitor's format.
pub async fn not_found_page(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    message_page(
        state,
        session,
        404,
        "Not found",
        "There is nothing at this address.",
    )
    .await
}

/// A store failure met while answering: counted, logged with `what`, and
/// answered 503 (never "not logged in", never a guess).
pub async fn store_failed(
    state: &GatewayState,
    session: &mut Session,
    what: &str,
    error: &(dyn std::fmt::Display + Sync),
) -> pingora::Result<()> {
    state.services.metrics.store_errors.inc();
    tracing::warn!(error = %error, "{what}: store unavailable");
    unavailable_page(state, session).await
}

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

/// Largest form our own pages post.
const MAX_FORM_BYTES: usize = 4096;

/// A form posted by one of our pages, or `None` after answering 413 with
/// the branded page.
pub async fn read_form(
    state: &GatewayState,
    session: &mut Session,
) -> pingora::Result<Option<Vec<(String, String)>>> {
    match super::respond::read_body(session, MAX_FORM_BYTES).await? {
        Some(body) => Ok(Some(
            url::form_urlencoded::parse(&body).into_owned().collect(),
        )),
        None => {
            message_page(state, session, 413, "Too large", "The form is too large.").await?;
            Ok(None)
        }
    }
}
