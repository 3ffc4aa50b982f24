//! The stale-follows report: the built-in demo upstream app.
//!
//! Why it exists: it shows what an app behind steemgate looks like. It trusts
//! only the `X-Steem-Account` header the gateway sets, and for that account
//! lists every followed account that has not posted for more than N days so
//! the visitor can prune their feed. Unlike the 2018 original (one page of
//! 1,000 follows) it reads the whole follow list.
//!
//! Layout: [`fetch`] talks to the chain (pagination, batching), [`stale`]
//! applies a threshold to fetched data, [`cache`] keeps fetched data per
//! account; this file is the HTTP side (identity, query, HTML/JSON, errors).

pub mod cache;
pub mod fetch;
pub mod stale;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Json, Response};
use serde::Serialize;
use time::OffsetDateTime;

use crate::auth::identity::{NoIdentity, forwarded_account};
use crate::chain::{AccountName, ChainName, RpcCall, RpcError};
use crate::config::ReportConfig;
use crate::pages::Pages;

pub use cache::{FollowCache, FollowData};
pub use fetch::{Activity, fetch_activity, fetch_following};
pub use stale::{InactiveBy, StaleAccount, stale_accounts};

/// The header the gateway sets to the logged-in account.
/// The report's template (extends `base.html`).
pub const TEMPLATE: &str = "stale_follows.html";
/// Accepted `?days=` range.
pub const DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3650;

/// Reports how many seconds the chain data lags the head, if known.
pub type BehindSeconds = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// How the report behaves.
#[derive(Clone)]
pub struct ReportSettings {
    /// Decides the profile links (steemit.com or peakd.com).
    pub chain: ChainName,
    /// Threshold when the request has no `?days=`.
    pub default_days: u32,
    /// How long fetched follow data is reused.
    pub cache_ttl: Duration,
    /// Most accounts kept in the cache; the oldest is evicted first.
    pub cache_capacity: usize,
    /// Bound on the whole fetch (all pages and batches) of one request.
    pub request_budget: Duration,
    /// Most `get_accounts` batches in flight at once.
    pub concurrency: usize,
    /// Shown in the page footer.
    pub site_name: Option<String>,
    /// Optional lag of the chain data, shown on the page when it answers.
    pub behind_seconds: Option<BehindSeconds>,
}

impl ReportSettings {
    /// Defaults: 40 days, 5 min cache of 1,000 accounts, 10 s budget, 4
    /// concurrent batches.
    pub fn new(chain: ChainName) -> Self {
        Self {
            chain,
            default_days: 40,
            cache_ttl: Duration::from_secs(300),
            cache_capacity: 1000,
            request_budget: Duration::from_secs(10),
            concurrency: 4,
            site_name: None,
            behind_seconds: None,
        }
    }

    /// Defaults with the operator's `report:` section applied.
    pub fn from_config(config: &ReportConfig, chain: ChainName) -> Self {
        Self {
            default_days: config.stale_days,
            cache_ttl: config.cache_ttl,
            ..Self::new(chain)
        }
    }
}

impl fmt::Debug for ReportSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportSettings")
            .field("chain", &self.chain)
            .field("default_days", &self.default_days)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .field("request_budget", &self.request_budget)
            .field("concurrency", &self.concurrency)
            .field("site_name", &self.site_name)
            .field(
                "behind_seconds",
                &self.behind_seconds.as_ref().map(|_| "<provider>"),
            )
            .finish()
    }
}

/// Why a report could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the chain node failed: {0}")]
    Node(#[from] RpcError),
    #[error("the chain node did not answer within {0:?}")]
    Timeout(Duration),
}

impl ReportError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReportError::Node(_) => StatusCode::BAD_GATEWAY,
            ReportError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// The JSON answer (also the core of the HTML page).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub account: String,
    pub threshold_days: u32,
    pub by: &'static str,
    pub following: usize,
    pub stale: Vec<StaleAccount>,
}

/// The app: chain access, pages, settings and the follow-data cache.
pub struct StaleFollows {
    rpc: Arc<dyn RpcCall>,
    pages: Arc<Pages>,
    settings: ReportSettings,
    cache: FollowCache,
}

impl StaleFollows {
    pub fn new(rpc: Arc<dyn RpcCall>, pages: Arc<Pages>, settings: ReportSettings) -> Self {
        let cache = FollowCache::new(settings.cache_ttl, settings.cache_capacity);
        Self {
            rpc,
            pages,
            settings,
            cache,
        }
    }

    pub fn settings(&self) -> &ReportSettings {
        &self.settings
    }

    /// The follow list and followed accounts' activity of `account`, from the
    /// cache or the node, bounded by `request_budget`.
    pub async fn follow_data(&self, account: &AccountName) -> Result<Arc<FollowData>, ReportError> {
        let budget = self.settings.request_budget;
        let fetch = || async {
            let following = fetch_following(self.rpc.as_ref(), account).await?;
            let activity =
                fetch_activity(self.rpc.as_ref(), &following, self.settings.concurrency).await?;
            Ok::<_, ReportError>(FollowData {
                following: following.len(),
                activity,
            })
        };
        tokio::time::timeout(budget, self.cache.get_or_fetch(account, fetch))
            .await
            .map_err(|_| ReportError::Timeout(budget))?
    }

    /// The report for `account` as of now.
    pub async fn report(
        &self,
        account: &AccountName,
        threshold_days: u32,
        by: InactiveBy,
    ) -> Result<Report, ReportError> {
        let data = self.follow_data(account).await?;
        Ok(Report {
            account: account.as_str().to_string(),
            threshold_days,
            by: by.as_str(),
            following: data.following,
            stale: stale_accounts(
                &data.activity,
                threshold_days,
                by,
                OffsetDateTime::now_utc(),
            ),
        })
    }

    fn profile_url(&self, name: &str) -> String {
        match self.settings.chain {
            ChainName::Steem => format!("https://steemit.com/@{name}"),
            ChainName::Hive => format!("https://peakd.com/@{name}"),
        }
    }
}

/// The app's router: every path and method lands in one handler, so the
/// gateway can mount it under any prefix and forward full paths.
pub fn router(app: Arc<StaleFollows>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

/// What the query string asked for.
struct ReportQuery {
    days: u32,
    by: InactiveBy,
}

async fn handle(
    State(app): State<Arc<StaleFollows>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let query = uri.query().unwrap_or("");
    let wants_json = wants_json(&headers, query);
    let reply = Reply {
        app: &app,
        wants_json,
    };
    if method != Method::GET && method != Method::HEAD {
        let mut response = reply.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "This report only answers GET requests.",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let account = match account_from_headers(&headers) {
        Ok(account) => account,
        Err(why) => return reply.error(StatusCode::UNAUTHORIZED, "Not logged in", &why),
    };
    let params = match parse_query(query, app.settings.default_days) {
        Ok(params) => params,
        Err(why) => return reply.error(StatusCode::BAD_REQUEST, "Bad request", &why),
    };
    match app.report(&account, params.days, params.by).await {
        Ok(report) if wants_json => no_store(Json(report).into_response()),
        Ok(report) => reply.page(&report),
        Err(error) => {
            tracing::warn!(account = %account, %error, "stale-follows report failed");
            let title = match error {
                ReportError::Node(_) => "The chain node failed",
                ReportError::Timeout(_) => "The chain node is too slow",
            };
            reply.error(
                error.status(),
                title,
                &format!("{error}. Please try again in a minute."),
            )
        }
    }
}

/// JSON when `?format=json`, or when the client accepts JSON and the query
/// does not force `?format=html`.
fn wants_json(headers: &HeaderMap, query: &str) -> bool {
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key == "format" {
            return value == "json";
        }
    }
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.to_ascii_lowercase().contains("application/json"))
}

/// The account from exactly one `X-Steem-Account` header holding a canonical
/// account name; anything else is refused.
fn account_from_headers(headers: &HeaderMap) -> Result<AccountName, String> {
    forwarded_account(headers).map_err(|why| match why {
        NoIdentity::Missing | NoIdentity::Repeated => "This page needs a login through the steemgate gateway (exactly one X-Steem-Account header).".to_string(),
        NoIdentity::Malformed => "The X-Steem-Account header is not an account name.".to_string(),
    })
}

fn parse_query(query: &str, default_days: u32) -> Result<ReportQuery, String> {
    let mut days = None;
    let mut by = None;
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "days" => {
                if days.is_some() {
                    return Err("Give ?days= only once.".into());
                }
                let parsed = value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|d| DAYS_RANGE.contains(d))
                    .ok_or_else(|| {
                        format!(
                            "days must be a whole number from {} to {}, got {value:?}.",
                            DAYS_RANGE.start(),
                            DAYS_RANGE.end()
                        )
                    })?;
                days = Some(parsed);
            }
            "by" => {
                if by.is_some() {
                    return Err("Give ?by= only once.".into());
                }
                by = Some(match value.as_ref() {
                    "" | "post" | "last_post" => InactiveBy::LastPost,
                    "root" | "last_root_post" => InactiveBy::LastRootPost,
                    other => {
                        return Err(format!("by must be \"post\" or \"root\", got {other:?}."));
                    }
                });
            }
            _ => {}
        }
    }
    Ok(ReportQuery {
        days: days.unwrap_or(default_days),
        by: by.unwrap_or(InactiveBy::LastPost),
    })
}

/// The report is personal: no shared cache may keep it.
fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// Renders answers in the format the client asked for.
struct Reply<'a> {
    app: &'a StaleFollows,
    wants_json: bool,
}

#[derive(Serialize)]
struct Row<'a> {
    name: &'a str,
    profile_url: String,
    last_post: &'a str,
    days_inactive: Option<u64>,
}

/// Everything `stale_follows.html` can use.
#[derive(Serialize)]
struct PageContext<'a> {
    account: &'a str,
    chain: &'static str,
    threshold_days: u32,
    by: &'static str,
    following: usize,
    stale_count: usize,
    rows: Vec<Row<'a>>,
    behind_seconds: Option<u64>,
    site_name: Option<&'a str>,
}

impl Reply<'_> {
    fn error(&self, status: StatusCode, title: &str, message: &str) -> Response {
        if self.wants_json {
            let body = serde_json::json!({ "error": message, "status": status.as_u16() });
            return no_store((status, Json(body)).into_response());
        }
        let context = minijinja::context! {
            title, message, status => status.as_u16(), site_name => self.app.settings.site_name.as_deref(),
        };
        let body = match self.app.pages.render("message.html", context) {
            Ok(html) => Html(html).into_response(),
            Err(error) => {
                tracing::error!(%error, "cannot render the error page");
                format!("{title}: {message}").into_response()
            }
        };
        no_store((status, body).into_response())
    }

    fn page(&self, report: &Report) -> Response {
        let settings = &self.app.settings;
        let rows: Vec<Row<'_>> = report
            .stale
            .iter()
            .map(|stale| Row {
                name: &stale.name,
                profile_url: self.app.profile_url(&stale.name),
                last_post: &stale.last_post,
                days_inactive: stale.days_inactive,
            })
            .collect();
        let context = PageContext {
            account: &report.account,
            chain: settings.chain.as_str(),
            threshold_days: report.threshold_days,
            by: report.by,
            following: report.following,
            stale_count: report.stale.len(),
            rows,
            behind_seconds: settings.behind_seconds.as_ref().and_then(|behind| behind()),
            site_name: settings.site_name.as_deref(),
        };
        match self.app.pages.render(TEMPLATE, context) {
            Ok(html) => no_store(Html(html).into_response()),
            Err(error) => {
                tracing::error!(%error, "cannot render the stale-follows page");
                self.error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Page error",
                    "The report page could not be rendered.",
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = parse_query("", 40).unwrap();
        assert_eq!((q.days, q.by), (40, InactiveBy::LastPost));
        let q = parse_query("days=90&by=root&format=json", 40).unwrap();
        assert_eq!((q.days, q.by), (90, InactiveBy::LastRootPost));
        for bad in [
            "days=0",
            "days=3651",
            "days=abc",
            "days=-1",
            "days=1&days=2",
            "by=comments",
            "days=",
        ] {
            assert!(parse_query(bad, 40).is_err(), "{bad}");
        }
        assert_eq!(parse_query("days=3650", 40).unwrap().days, 3650);
    }

    #[test]
    fn json_is_chosen_by_query_or_accept() {
        let mut headers = HeaderMap::new();
        assert!(!wants_json(&headers, ""));
        assert!(wants_json(&headers, "format=json"));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&headers, ""));
        assert!(!wants_json(&headers, "format=html"));
    }
}
