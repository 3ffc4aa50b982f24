//! The stale-follows report: the built-in demo upstream app.
//!
//! Why it exists: it shows what an app behind steemgate looks like. It trusts
//! only the `X-Steem-Account` header the gateway sets, and for that account
//! lists every followed account that has not posted for more than N days so
//! the visitor can prune their feed. Unlike the 2018 original (one page of
//! 1,000 follows) it reads the whole follow list.
//!
//! It is also the tool to act on the list (issue 16): an overview with a
//! server-drawn histogram ([`overview`]), sorting, selection, CSV, and the
//! unfollow of the selection through the visitor's own wallet. The report
//! never holds a key: it hands the page the exact follow operations
//! (`chain::follow`) and hot-sign links (`chain::hotsign`), the wallet signs
//! and broadcasts, and the report only believes the chain: `?verify=` drops
//! its cache for the account and re-reads the follow list.
//!
//! Layout: [`fetch`] talks to the chain (pagination, batching), [`stale`]
//! applies a threshold to fetched data, [`cache`] keeps fetched data per
//! account, [`overview`] draws the chart; this file is the HTTP side
//! (identity, query, HTML/JSON/CSV, the page script, errors).

pub mod cache;
pub mod fetch;
pub mod overview;
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
use crate::chain::crypto::Operation;
use crate::chain::follow::unfollow_operation;
use crate::chain::hotsign::custom_json_url;
use crate::chain::{AccountName, ChainName, RpcCall, RpcError};
use crate::config::ReportConfig;
use crate::pages::Pages;

pub use cache::{FollowCache, FollowData};
pub use fetch::{Activity, fetch_activity, fetch_following};
pub use stale::{InactiveBy, SortBy, StaleAccount, sort_stale, stale_accounts};

/// The report's template (extends `base.html`).
pub const TEMPLATE: &str = "stale_follows.html";
/// The page script, served by the report itself at `?asset=stale.js` (the
/// page CSP allows scripts from this origin only, never inline).
pub const SCRIPT: &str = include_str!("../../templates/assets/stale.js");
/// The report's own CSP: its script, inline styles and the chart, nothing
/// from other hosts; `fetch` only to this origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// Rows per HTML page (`?page=`): a 10,000-follow account stays light on a
/// phone; CSV and JSON always carry every row.
pub const PAGE_SIZE: usize = 500;
/// Follow operations per wallet request: Hive refuses a sixth `custom_json`
/// of one account in one block, so each batch of 5 is confirmed on the
/// chain before the next is sent.
pub const UNFOLLOW_BATCH: usize = 5;
/// Most names one `?prepare=` or `?verify=` request may name.
pub const MAX_NAMES_PER_REQUEST: usize = 50;
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
    /// The chain is the devnet: the page offers the gateway's clearly
    /// labelled "Simulate wallet" (`POST /.steemgate/devnet/broadcast`).
    pub simulated: bool,
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
            simulated: false,
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
            .field("simulated", &self.simulated)
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
    #[error("the chain node could not say: {0}")]
    Facts(#[from] crate::chain::facts::FactError),
}

impl ReportError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReportError::Node(_) | ReportError::Facts(_) => StatusCode::BAD_GATEWAY,
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

    /// The report for `account` as of now (most stale first).
    pub async fn report(
        &self,
        account: &AccountName,
        threshold_days: u32,
        by: InactiveBy,
    ) -> Result<Report, ReportError> {
        let data = self.follow_data(account).await?;
        Ok(Self::report_of(account, &data, threshold_days, by))
    }

    fn report_of(
        account: &AccountName,
        data: &FollowData,
        threshold_days: u32,
        by: InactiveBy,
    ) -> Report {
        Report {
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
        }
    }

    /// After a broadcast: asks the chain, one relationship read per name
    /// (at most [`UNFOLLOW_BATCH`] at a time), whether `account` still
    /// follows each of `names`; splits them into gone and still followed.
    /// The cached report is dropped only when it still lists a name the
    /// chain shows as gone, so naming accounts never followed costs one
    /// read each and never a whole follow list.
    pub async fn verify_unfollowed(
        &self,
        account: &AccountName,
        names: &[AccountName],
    ) -> Result<(Vec<String>, Vec<String>), ReportError> {
        let budget = self.settings.request_budget;
        let chain = self.settings.chain;
        let rpc = self.rpc.as_ref();
        let reads = async {
            let mut relations: Vec<(&AccountName, bool)> = Vec::with_capacity(names.len());
            for chunk in names.chunks(UNFOLLOW_BATCH) {
                let found = futures::future::try_join_all(chunk.iter().map(|name| {
                    crate::chain::facts::fetch_relationship(rpc, chain, account, name)
                }))
                .await?;
                relations.extend(chunk.iter().zip(found).map(|(n, r)| (n, r.follows)));
            }
            Ok::<_, crate::chain::facts::FactError>(relations)
        };
        let relations = tokio::time::timeout(budget, reads)
            .await
            .map_err(|_| ReportError::Timeout(budget))??;
        let (still, gone): (Vec<_>, Vec<_>) =
            relations.into_iter().partition(|(_, follows)| *follows);
        let names_of = |list: Vec<(&AccountName, bool)>| {
            list.iter()
                .map(|(n, _)| n.as_str().to_string())
                .collect::<Vec<_>>()
        };
        let gone = names_of(gone);
        if let Some(cached) = self.cache.peek(account)
            && cached
                .activity
                .iter()
                .any(|a| gone.iter().any(|g| g == a.name.as_str()))
        {
            self.cache.invalidate(account);
        }
        Ok((gone, names_of(still)))
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

/// What the request asks for besides the report itself.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    /// The report as HTML, JSON or CSV.
    Report(Format),
    /// `?prepare=a,b`: the unfollow operations and hot-sign links of names.
    Prepare(Vec<AccountName>),
    /// `?verify=a,b`: which of the names the chain still shows as followed.
    Verify(Vec<AccountName>),
    /// `?asset=stale.js`: the page script.
    Script,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Html,
    Json,
    Csv,
}

/// What the query string asked for.
#[derive(Debug)]
struct ReportQuery {
    days: u32,
    by: InactiveBy,
    sort: SortBy,
    /// 1-based page of the HTML table.
    page: usize,
    action: Action,
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
    let params = match parse_query(query, app.settings.default_days, wants_json) {
        Ok(params) => params,
        Err(why) => return reply.error(StatusCode::BAD_REQUEST, "Bad request", &why),
    };
    let outcome = match &params.action {
        Action::Script => return script(),
        Action::Prepare(names) if names.contains(&account) => {
            return reply.error(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "An account cannot unfollow itself.",
            );
        }
        Action::Prepare(names) => {
            return no_store(Json(app.prepare(&account, names)).into_response());
        }
        Action::Verify(names) => match app.verify_unfollowed(&account, names).await {
            Ok((gone, still)) => {
                return no_store(
                    Json(serde_json::json!({
                        "account": account.as_str(),
                        "gone": gone,
                        "still_following": still,
                    }))
                    .into_response(),
                );
            }
            Err(error) => Err(error),
        },
        Action::Report(format) => app.follow_data(&account).await.map(|data| (*format, data)),
    };
    match outcome {
        Ok((format, data)) => {
            let mut report = StaleFollows::report_of(&account, &data, params.days, params.by);
            sort_stale(&mut report.stale, params.sort);
            match format {
                Format::Json => no_store(Json(report).into_response()),
                Format::Csv => csv(&report),
                Format::Html => reply.page(&report, &data, &params),
            }
        }
        Err(error) => {
            tracing::warn!(account = %account, %error, "stale-follows report failed");
            let title = match error {
                ReportError::Node(_) | ReportError::Facts(_) => "The chain node failed",
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

impl StaleFollows {
    /// The unfollow operations of `names` for `account`'s wallet, and per
    /// name the hot-sign link and the operation JSON to copy. Serialized
    /// from structs, so fields keep the chain's order in the answer.
    fn prepare(&self, account: &AccountName, names: &[AccountName]) -> Prepared {
        let mut operations = Vec::with_capacity(names.len());
        let mut by_hand = Vec::with_capacity(names.len());
        for name in names {
            let op = unfollow_operation(account, name);
            let hot_sign_url = custom_json_url(self.settings.chain, &op);
            let operation = Operation::CustomJson(op);
            by_hand.push(ByHand {
                name: name.as_str().to_string(),
                hot_sign_url,
                // Serializing strings cannot fail.
                operation: serde_json::to_string(&operation).unwrap_or_default(),
            });
            operations.push(operation);
        }
        Prepared {
            account: account.as_str().to_string(),
            key_type: "Posting",
            operations,
            by_hand,
        }
    }
}

/// The `?prepare=` answer.
#[derive(Serialize)]
struct Prepared {
    account: String,
    /// What to pass as Keychain's key type.
    key_type: &'static str,
    /// For `requestBroadcast`, in one batch.
    operations: Vec<Operation>,
    by_hand: Vec<ByHand>,
}

/// One account's unfollow for a wallet without Keychain.
#[derive(Serialize)]
struct ByHand {
    name: String,
    hot_sign_url: String,
    /// The operation as JSON text, to copy.
    operation: String,
}

fn script() -> Response {
    let mut response = SCRIPT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `name,last_post,days_inactive` with CRLF line ends (RFC 4180); a
/// never-posted account has `never` as its last post and no days. Names are
/// chain account names (letters, digits, `-`, `.`), so no field needs
/// quoting and none can start a spreadsheet formula.
fn csv(report: &Report) -> Response {
    let mut body = String::with_capacity(32 * (report.stale.len() + 1));
    body.push_str("name,last_post,days_inactive\r\n");
    for row in &report.stale {
        body.push_str(&row.name);
        body.push(',');
        match row.days_inactive {
            Some(days) => {
                body.push_str(&row.last_post);
                body.push(',');
                body.push_str(&days.to_string());
            }
            None => body.push_str("never,"),
        }
        body.push_str("\r\n");
    }
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let filename = format!(
        "attachment; filename=\"stale-follows-{}-{}d.csv\"",
        report.account, report.threshold_days
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    no_store(response)
}

/// JSON when `?format=json`, or when the client accepts JSON and the query
/// does not force another `?format=`.
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

/// `a,b,c`: 1 to [`MAX_NAMES_PER_REQUEST`] canonical account names.
fn parse_names(key: &str, value: &str) -> Result<Vec<AccountName>, String> {
    let mut names = Vec::new();
    for raw in value.split(',').filter(|raw| !raw.is_empty()) {
        let name = AccountName::parse(raw)
            .ok()
            .filter(|name| name.as_str() == raw)
            .ok_or_else(|| format!("{key}: {raw:?} is not an account name."))?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() || names.len() > MAX_NAMES_PER_REQUEST {
        return Err(format!(
            "{key} takes 1 to {MAX_NAMES_PER_REQUEST} account names, comma-separated."
        ));
    }
    Ok(names)
}

fn parse_query(query: &str, default_days: u32, wants_json: bool) -> Result<ReportQuery, String> {
    let mut days = None;
    let mut by = None;
    let mut sort = None;
    let mut page = None;
    let mut format = None;
    let mut action = None;
    let mut set_action = |value: Action| {
        if action.replace(value).is_some() {
            return Err("Give only one of prepare, verify and asset.".to_string());
        }
        Ok(())
    };
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
            "sort" => {
                if sort.is_some() {
                    return Err("Give ?sort= only once.".into());
                }
                sort = Some(SortBy::parse(&value).ok_or_else(|| {
                    format!("sort must be \"name\", \"days\" or \"last_post\", got {value:?}.")
                })?);
            }
            "page" => {
                if page.is_some() {
                    return Err("Give ?page= only once.".into());
                }
                page = Some(
                    value
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|p| (1..=100_000).contains(p))
                        .ok_or_else(|| {
                            format!("page must be a whole number from 1, got {value:?}.")
                        })?,
                );
            }
            "format" => {
                if format.is_some() {
                    return Err("Give ?format= only once.".into());
                }
                format = Some(match value.as_ref() {
                    "html" => Format::Html,
                    "json" => Format::Json,
                    "csv" => Format::Csv,
                    other => {
                        return Err(format!(
                            "format must be \"html\", \"json\" or \"csv\", got {other:?}."
                        ));
                    }
                });
            }
            "prepare" => set_action(Action::Prepare(parse_names("prepare", &value)?))?,
            "verify" => set_action(Action::Verify(parse_names("verify", &value)?))?,
            "asset" => {
                if value != "stale.js" {
                    return Err(format!("there is no asset {value:?}."));
                }
                set_action(Action::Script)?;
            }
            _ => {}
        }
    }
    let format = format.unwrap_or(if wants_json {
        Format::Json
    } else {
        Format::Html
    });
    Ok(ReportQuery {
        days: days.unwrap_or(default_days),
        by: by.unwrap_or(InactiveBy::LastPost),
        sort: sort.unwrap_or(SortBy::DaysInactive),
        page: page.unwrap_or(1),
        action: action.unwrap_or(Action::Report(format)),
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

/// A link in the pager or a sortable column header.
#[derive(Serialize)]
struct Link {
    href: String,
    text: String,
    current: bool,
}

/// Everything `stale_follows.html` can use.
#[derive(Serialize)]
struct PageContext<'a> {
    account: &'a str,
    chain: &'static str,
    threshold_days: u32,
    by: &'static str,
    /// `post` or `root`, as the query writes it.
    by_param: &'static str,
    sort: &'static str,
    following: usize,
    stale_count: usize,
    never_count: usize,
    rows: Vec<Row<'a>>,
    /// Every stale name (all pages), for "select all stale".
    all_stale: Vec<&'a str>,
    sort_links: Vec<Link>,
    pages: Vec<Link>,
    page: usize,
    page_count: usize,
    first_row: usize,
    last_row: usize,
    csv_href: String,
    json_href: String,
    chart: overview::Overview,
    batch_size: usize,
    simulated: bool,
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

    fn page(&self, report: &Report, data: &FollowData, query: &ReportQuery) -> Response {
        let settings = &self.app.settings;
        let page_count = report.stale.len().div_ceil(PAGE_SIZE).max(1);
        let page = query.page.min(page_count);
        let start = (page - 1) * PAGE_SIZE;
        let shown = report.stale.iter().skip(start).take(PAGE_SIZE);
        let rows: Vec<Row<'_>> = shown
            .map(|stale| Row {
                name: &stale.name,
                profile_url: self.app.profile_url(&stale.name),
                last_post: &stale.last_post,
                days_inactive: stale.days_inactive,
            })
            .collect();
        let by_param = match query.by {
            InactiveBy::LastPost => "post",
            InactiveBy::LastRootPost => "root",
        };
        let href = |sort: SortBy, page: usize, format: Option<&str>| {
            let mut href = format!(
                "?days={}&by={by_param}&sort={}",
                report.threshold_days,
                sort.as_str()
            );
            if page > 1 {
                href.push_str(&format!("&page={page}"));
            }
            if let Some(format) = format {
                href.push_str(&format!("&format={format}"));
            }
            href
        };
        let sort_links = [
            (SortBy::Name, "Account"),
            (SortBy::DaysInactive, "Inactive"),
            (SortBy::LastPost, "Last post"),
        ]
        .into_iter()
        .map(|(sort, text)| Link {
            href: href(sort, 1, None),
            text: text.to_string(),
            current: sort == query.sort,
        })
        .collect();
        let pages = (1..=page_count)
            .map(|n| Link {
                href: href(query.sort, n, None),
                text: n.to_string(),
                current: n == page,
            })
            .collect();
        let context = PageContext {
            account: &report.account,
            chain: settings.chain.as_str(),
            threshold_days: report.threshold_days,
            by: report.by,
            by_param,
            sort: query.sort.as_str(),
            following: report.following,
            stale_count: report.stale.len(),
            never_count: report
                .stale
                .iter()
                .filter(|s| s.days_inactive.is_none())
                .count(),
            first_row: if rows.is_empty() { 0 } else { start + 1 },
            last_row: start + rows.len(),
            rows,
            all_stale: report.stale.iter().map(|s| s.name.as_str()).collect(),
            sort_links,
            pages,
            page,
            page_count,
            csv_href: href(query.sort, 1, Some("csv")),
            json_href: href(query.sort, 1, Some("json")),
            chart: overview::overview(
                &data.activity,
                report.threshold_days,
                query.by,
                OffsetDateTime::now_utc(),
            ),
            batch_size: UNFOLLOW_BATCH,
            simulated: settings.simulated,
            behind_seconds: settings.behind_seconds.as_ref().and_then(|behind| behind()),
            site_name: settings.site_name.as_deref(),
        };
        match self.app.pages.render(TEMPLATE, context) {
            Ok(html) => {
                let mut response = no_store(Html(html).into_response());
                response.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                );
                response
            }
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
        let q = parse_query("", 40, false).unwrap();
        assert_eq!((q.days, q.by), (40, InactiveBy::LastPost));
        assert_eq!(q.action, Action::Report(Format::Html));
        assert_eq!((q.sort, q.page), (SortBy::DaysInactive, 1));
        let q = parse_query("days=90&by=root&format=json", 40, false).unwrap();
        assert_eq!((q.days, q.by), (90, InactiveBy::LastRootPost));
        assert_eq!(q.action, Action::Report(Format::Json));
        let q = parse_query("sort=name&page=3&format=csv", 40, true).unwrap();
        assert_eq!((q.sort, q.page), (SortBy::Name, 3));
        assert_eq!(q.action, Action::Report(Format::Csv));
        assert_eq!(
            parse_query("", 40, true).unwrap().action,
            Action::Report(Format::Json)
        );
        let q = parse_query("verify=bob,alice,bob", 40, false).unwrap();
        let names = |raw: &[&str]| {
            raw.iter()
                .map(|n| AccountName::parse(n).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(q.action, Action::Verify(names(&["bob", "alice"])));
        let q = parse_query("prepare=carol", 40, false).unwrap();
        assert_eq!(q.action, Action::Prepare(names(&["carol"])));
        assert_eq!(
            parse_query("asset=stale.js", 40, false).unwrap().action,
            Action::Script
        );
        for bad in [
            "days=0",
            "days=3651",
            "days=abc",
            "days=-1",
            "days=1&days=2",
            "by=comments",
            "days=",
            "sort=size",
            "sort=name&sort=days",
            "page=0",
            "page=x",
            "format=xml",
            "verify=",
            "verify=Bob",
            "verify=a",
            "prepare=alice&verify=bob",
            "asset=../etc/passwd",
        ] {
            assert!(parse_query(bad, 40, false).is_err(), "{bad}");
        }
        let too_many = (0..=MAX_NAMES_PER_REQUEST)
            .map(|i| format!("name{i:03}"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(parse_query(&format!("verify={too_many}"), 40, false).is_err());
        assert_eq!(parse_query("days=3650", 40, false).unwrap().days, 3650);
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
