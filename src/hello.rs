//! `builtin:hello`, the smallest possible protected app.
//!
//! Why: `steemgate demo` needs an upstream that shows the identity the
//! gateway forwarded, and operators need a one-line way to check a
//! deployment. Like any upstream it trusts only `X-Steem-Account`, which
//! the gateway guarantees to be its own.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};

use crate::chain::AccountName;

/// The app: every path answers the same greeting.
pub fn router() -> axum::Router {
    axum::Router::new().fallback(hello)
}

async fn hello(headers: HeaderMap) -> impl IntoResponse {
    let mut values = headers.get_all("x-steem-account").iter();
    let account = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok().and_then(|v| AccountName::parse(v).ok()),
        _ => None,
    };
    let body = match &account {
        Some(account) => format!(
            "<!doctype html><meta charset=utf-8><meta name=viewport content=\"width=device-width\"><title>Hello</title>\
             <h1>Hello @{account}</h1><p>The gateway proved this account on chain and told this app in the \
             <code>X-Steem-Account</code> header.</p><p><a href=\"/stale\">Your stale follows</a></p>\
             <form method=post action=\"/.steemgate/logout\"><button>Log out</button></form>"
        ),
        None => "<!doctype html><meta charset=utf-8><title>Hello</title><h1>Hello, anonymous visitor</h1>\
                 <p>This page is public. <a href=\"/.steemgate/login?rd=/\">Log in</a></p>"
            .to_string(),
    };
    let status = StatusCode::OK;
    (
        status,
        [(
            "x-hello-account",
            account.map(|a| a.to_string()).unwrap_or_default(),
        )],
        Html(body),
    )
}
