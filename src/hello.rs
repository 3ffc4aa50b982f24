//! `builtin:hello`, the smallest possible protected app.
//!
//! Why: `steemgate demo` needs an upstream that shows the identity the
//! gateway forwarded, and operators need a one-line way to check a
//! deployment. Like any upstream it trusts only `X-Steem-Account`, which
//! the gateway guarantees to be its own. It renders with the gateway's own
//! templates (`hello.html` on `base.html`), so the demo looks like one
//! product: the page names the account and links the report (when the
//! config mounts one) and the logout.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::auth::identity::forwarded_account;
use crate::chain::AccountName;
use crate::pages::Pages;

/// The page's own CSP (the gateway passes an upstream's headers through):
/// no script at all, the base layout's inline styles, forms to this origin.
const HELLO_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the page needs besides the request.
#[derive(Debug, Clone, Default)]
pub struct HelloSettings {
    /// Shown in the footer, like on the gateway's pages.
    pub site_name: Option<String>,
    /// Path of the stale-follows report, linked when the config mounts one.
    pub report_path: Option<String>,
}

struct App {
    pages: Arc<Pages>,
    settings: HelloSettings,
}

#[derive(Serialize)]
struct Context<'a> {
    account: Option<&'a str>,
    report_path: Option<&'a str>,
    site_name: Option<&'a str>,
}

/// The app: every path answers the same greeting.
pub fn router(pages: Arc<Pages>, settings: HelloSettings) -> axum::Router {
    let app = Arc::new(App { pages, settings });
    axum::Router::new().fallback(move |headers: HeaderMap| {
        let app = app.clone();
        async move { hello(&app, &headers) }
    })
}

fn hello(app: &App, headers: &HeaderMap) -> Response {
    // Absent, repeated or not exactly as the gateway writes it: the page
    // greets an anonymous visitor.
    let account = forwarded_account(headers).ok();
    let context = Context {
        account: account.as_ref().map(AccountName::as_str),
        report_path: app.settings.report_path.as_deref(),
        site_name: app.settings.site_name.as_deref(),
    };
    let (status, body) = match app.pages.render("hello.html", context) {
        Ok(html) => (StatusCode::OK, html),
        Err(error) => {
            tracing::error!(%error, "cannot render the hello page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "<!doctype html><html lang=\"en\"><meta charset=utf-8><title>Page error</title>\
                 <main><h1>Page error</h1><p>The hello page could not be rendered.</p></main></html>"
                    .to_string(),
            )
        }
    };
    (
        status,
        [
            ("content-security-policy", HELLO_CSP.to_string()),
            ("cache-control", "no-store".to_string()),
            (
                "x-hello-account",
                account.map(|a| a.to_string()).unwrap_or_default(),
            ),
        ],
        Html(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn page(settings: HelloSettings, accounts: &[&str]) -> (StatusCode, HeaderMap, String) {
        let pages = Arc::new(Pages::new(None).unwrap());
        let mut request = Request::builder().uri("/anything");
        for account in accounts {
            request = request.header(crate::auth::identity::IDENTITY_HEADER, *account);
        }
        let response = router(pages, settings)
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn names_the_account_and_links_the_report_and_the_logout() {
        let settings = HelloSettings {
            site_name: Some("Demo <site>".into()),
            report_path: Some("/stale".into()),
        };
        let (status, headers, html) = page(settings, &["alice"]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["x-hello-account"], "alice");
        assert_eq!(headers["content-security-policy"], HELLO_CSP);
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("<main>"), "{html}");
        assert!(html.contains("<h1>Hello @alice</h1>"), "{html}");
        // minijinja escapes the slash of a value.
        assert!(html.contains("href=\"&#x2f;stale\""), "{html}");
        assert!(
            html.contains("<form method=\"post\" action=\"/.steemgate/logout\">"),
            "{html}"
        );
        // The base layout's footer, escaped.
        assert!(html.contains("Demo &lt;site&gt;"), "{html}");
        assert!(!html.contains("<script"), "{html}");
    }

    #[tokio::test]
    async fn without_a_report_route_there_is_no_report_link() {
        let (_, _, html) = page(HelloSettings::default(), &["alice"]).await;
        assert!(html.contains("Hello @alice"), "{html}");
        assert!(!html.contains("stale"), "{html}");
    }

    #[tokio::test]
    async fn no_single_valid_account_is_an_anonymous_visitor() {
        for accounts in [&[][..], &["alice", "bob"][..], &["Not An Account"][..]] {
            let (status, headers, html) = page(HelloSettings::default(), accounts).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(headers["x-hello-account"], "", "{accounts:?}");
            assert!(html.contains("Hello, anonymous visitor"), "{html}");
            assert!(html.contains("href=\"/.steemgate/login?rd=%2F\""), "{html}");
            assert!(!html.contains("/.steemgate/logout"), "{html}");
        }
    }
}
