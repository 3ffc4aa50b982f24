//! Validated configuration: what the rest of steemgate runs on.
//!
//! Why: [`input`] mirrors the YAML; this module turns it into values that are
//! already checked and defaulted (addresses parsed, secrets loaded and long
//! enough, routes sorted for matching), so no other module re-validates or
//! can meet a half-valid config. `steemgate check` and `steemgate run` both go
//! through [`Config::load`].

pub mod input;
mod locate;
pub mod oidc;
pub mod policy;
mod scalar;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::chain::{AccountName, ChainName, Confirm, Symbol};
pub use input::AuthMode;
use input::{ConfigInput, OneOrMany, UpstreamInput};
pub use oidc::{OidcClient, OidcConfig, SigningAlg};
pub use policy::{Condition, Policy, PolicyCacheConfig};

/// Shortest accepted cookie secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;
/// Environment variable that supplies the session secret.
pub const SECRET_ENV: &str = "STEEMGATE_SECRET";
/// Default `session.cache_ttl`.
pub const DEFAULT_SESSION_CACHE_TTL: Duration = Duration::from_secs(2);
/// Largest `session.cache_ttl`: a logout elsewhere may go unnoticed this long.
pub const MAX_SESSION_CACHE_TTL: Duration = Duration::from_secs(60);

/// Default public nodes, used when `chain.nodes` is absent.
pub fn default_nodes(chain: ChainName) -> &'static [&'static str] {
    match chain {
        ChainName::Steem => &[
            "https://api.steemit.com",
            "https://api.justyy.com",
            "https://api.moecki.online",
        ],
        ChainName::Hive => &[
            "https://api.hive.blog",
            "https://api.deathwing.me",
            "https://api.openhive.network",
        ],
    }
}

/// A configuration error, with the key (and line, when the YAML parser knew it).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Yaml(String),
    /// A value that parsed but is not acceptable; `key` is the full key path
    /// (`session.ttl`, `routes[2].allow`), `line` where the file spells it.
    #[error("{key}: {message}{}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Invalid {
        key: String,
        message: String,
        line: Option<usize>,
    },
}

impl ConfigError {
    /// Adds the line of the offending key, found in the YAML `text`.
    fn located_in(self, text: &str) -> Self {
        match self {
            ConfigError::Invalid {
                key,
                message,
                line: None,
            } => {
                let line = locate::key_line(text, &key);
                ConfigError::Invalid { key, message, line }
            }
            other => other,
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
        line: None,
    }
}

/// `login.methods` values: the store's own vocabulary of login proofs.
pub use crate::store::LoginMethod;

/// `login:` settings beyond the memo prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginConfig {
    /// Offered methods, without duplicates; always contains `Transfer`.
    pub methods: Vec<LoginMethod>,
    pub wallet_challenge_ttl: Duration,
    pub transfer_expiration: Duration,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            methods: vec![
                LoginMethod::Transfer,
                LoginMethod::Signature,
                LoginMethod::SignedTransfer,
            ],
            wallet_challenge_ttl: Duration::from_secs(300),
            transfer_expiration: Duration::from_secs(60),
        }
    }
}

impl LoginConfig {
    pub fn allows(&self, method: LoginMethod) -> bool {
        self.methods.contains(&method)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// TLS on the public listener (`tls:`); `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
    pub admin_listen: Option<SocketAddr>,
    pub threads: usize,
    /// `work_stealing`: one work-stealing tokio runtime for all threads
    /// (balances uneven load) instead of a runtime per thread that accepts,
    /// serves and pools connections on its own (less CPU per request).
    pub work_stealing: bool,
    /// Peers whose `X-Forwarded-For` is kept (the peer is appended); empty:
    /// every client-sent forwarding header is replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub chain: ChainConfig,
    pub session: SessionConfig,
    pub store: StoreLocation,
    pub site_name: Option<String>,
    pub templates_dir: Option<PathBuf>,
    pub memo_prefix: String,
    pub login: LoginConfig,
    pub report: ReportConfig,
    pub limits: LimitsConfig,
    pub assertion: AssertionConfig,
    pub log: LogConfig,
    /// Sorted: longest path prefix first, then host-specific before
    /// host-less, so the first match is the most specific.
    pub routes: Vec<Route>,
    /// Every named policy, in file order (routes hold their own `Arc`s;
    /// forward auth may name any of these).
    pub policies: Vec<Arc<Policy>>,
    pub policy_cache: PolicyCacheConfig,
    /// steemgate as an OpenID Provider (`oidc:`); `None`: off.
    pub oidc: Option<OidcConfig>,
    /// Things that work but are probably not what the operator meant
    /// (`steemgate check` prints them; `run` logs them).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    pub name: ChainName,
    pub nodes: Vec<url::Url>,
    pub account: AccountName,
    /// Minimum amount in thousandths of the asset.
    pub min_amount_units: u64,
    pub confirm: Confirm,
    pub request_timeout: Duration,
    pub devnet: bool,
}

impl ChainConfig {
    pub fn accepted_assets(&self) -> [Symbol; 2] {
        Symbol::accepted(self.name)
    }

    /// The amount a visitor is asked to send, in the native asset.
    pub fn login_amount(&self) -> crate::chain::Amount {
        crate::chain::Amount {
            units: self.min_amount_units,
            symbol: Symbol::native(self.name),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The first signs new cookies; all verify (rotation).
    pub secrets: Vec<Vec<u8>>,
    pub ttl: Duration,
    pub challenge_ttl: Duration,
    /// How long a logged-in session is served from this instance's memory
    /// before the store is read again (also the longest a logout on another
    /// instance can go unnoticed); zero disables the cache.
    pub cache_ttl: Duration,
    pub cookie_name: String,
    pub secure: Option<bool>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("ttl", &self.ttl)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("cache_ttl", &self.cache_ttl)
            .field("cookie_name", &self.cookie_name)
            .field("secure", &self.secure)
            .finish()
    }
}

/// `store:` — the store's own type: config names a store, the store
/// knows nothing of config.
pub use crate::store::StoreLocation;

/// Where log lines go is stderr; this says which and how. The access log
/// (one line per request) has its own format and destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, or per target `debug,pingora=info`.
    pub level: String,
    pub format: LogFormat,
    /// `log.access*`; `None`: `access: off`.
    pub access: Option<AccessLogConfig>,
}

/// The access log: one line per answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    pub format: LogFormat,
    /// Appended to (created if missing); `None`: stderr.
    pub file: Option<PathBuf>,
}

/// The default filter: our lines at info, pingora's only when they matter.
pub const DEFAULT_LOG_LEVEL: &str = "info,pingora=warn,pingora_core=warn,pingora_proxy=warn";

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: DEFAULT_LOG_LEVEL.to_string(),
            format: LogFormat::Text,
            access: Some(AccessLogConfig {
                format: LogFormat::Text,
                file: None,
            }),
        }
    }
}

/// `text` for people and journald, `json` for log pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportConfig {
    pub stale_days: u32,
    pub cache_ttl: Duration,
}

/// Per-client-address limits (0 disables a rate limit) and connection
/// deadlines (always on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub new_sessions_per_minute: u32,
    pub new_sessions_burst: u32,
    pub status_per_minute: u32,
    pub status_burst: u32,
    /// Longest time a request's header block may take to arrive.
    pub header_timeout: Duration,
    /// Longest a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            new_sessions_per_minute: 20,
            new_sessions_burst: 20,
            status_per_minute: 300,
            status_burst: 60,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// `tls:`: PEM files, already checked to hold a certificate chain and a
/// private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// `tls.http2`: ALPN offers `h2` as well as `http/1.1` (default on).
    /// Upstreams are spoken to in HTTP/1.1 either way.
    pub http2: bool,
}

/// `assertion:` (signed identity assertions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionConfig {
    /// The fixed `iss` claim; `None`: the request's origin.
    pub issuer: Option<String>,
    pub rotate_every: Duration,
}

impl Default for AssertionConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            rotate_every: DEFAULT_ROTATE_EVERY,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    Http { host: String, port: u16 },
    Builtin(String),
}

#[derive(Debug, Clone)]
pub struct Route {
    pub host: Option<String>,
    pub path: String,
    pub upstream: Upstream,
    pub auth: AuthMode,
    /// Empty: every logged-in account may pass.
    pub allow: Vec<AccountName>,
    /// Send a signed `X-Steem-Assertion` with the account.
    pub assertion: bool,
    /// Policies that must all hold (empty: none).
    pub policies: Vec<Arc<Policy>>,
}

impl Route {
    /// Whether `path` (canonical) is under this route's prefix, on a segment
    /// boundary: `/app` matches `/app` and `/app/x`, not `/apple`.
    pub fn matches_path(&self, path: &str) -> bool {
        if self.path == "/" {
            return true;
        }
        match path.strip_prefix(self.path.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::from_yaml(&text, base)
    }

    /// Parses and validates YAML text; relative paths resolve against `base`.
    pub fn from_yaml(text: &str, base: &Path) -> Result<Config, ConfigError> {
        let input: ConfigInput =
            serde_norway::from_str(text).map_err(|e| ConfigError::Yaml(e.to_string()))?;
        Self::validate(input, base).map_err(|e| e.located_in(text))
    }

    fn validate(input: ConfigInput, base: &Path) -> Result<Config, ConfigError> {
        let listen = parse_addr(
            "listen",
            input.listen.as_deref().unwrap_or("127.0.0.1:8080"),
        )?;
        let tls = input.tls.map(|t| validate_tls(t, base)).transpose()?;
        let admin_listen = input
            .admin_listen
            .as_deref()
            .map(|a| parse_addr("admin_listen", a))
            .transpose()?;
        if admin_listen == Some(listen) {
            return Err(invalid(
                "admin_listen",
                "must differ from listen: admin endpoints never share the public listener",
            ));
        }
        let threads = match input.threads {
            Some(n) if !(1..=MAX_THREADS).contains(&n) => {
                return Err(invalid(
                    "threads",
                    format!("must be between 1 and {MAX_THREADS}"),
                ));
            }
            Some(n) => n,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        };

        let chain_in = input.chain;
        let nodes: Vec<url::Url> = match chain_in.nodes {
            Some(nodes) if nodes.is_empty() => {
                return Err(invalid("chain.nodes", "needs at least one node URL"));
            }
            Some(nodes) => nodes.into_iter().map(|n| n.0).collect(),
            None => default_nodes(chain_in.name)
                .iter()
                .filter_map(|n| url::Url::parse(n).ok())
                .collect(),
        };
        let min_amount_units = crate::chain::asset::parse_min_amount(
            chain_in.min_amount.as_deref().unwrap_or("0.001"),
        )
        .map_err(|e| invalid("chain.min_amount", e))?;
        let request_timeout = duration_in(
            "chain.request_timeout",
            chain_in
                .request_timeout
                .map_or(Duration::from_secs(5), |d| d.0),
            MS * 100,
            MINUTE * 2,
        )?;
        let chain = ChainConfig {
            name: chain_in.name,
            nodes,
            account: chain_in.account,
            min_amount_units,
            confirm: chain_in.confirm.unwrap_or(Confirm::Head),
            request_timeout,
            devnet: chain_in.devnet,
        };

        let session = validate_session(input.session, base)?;
        let store = parse_store(
            input.store.as_deref().unwrap_or("file:./data/steemgate"),
            base,
        )?;

        let policies = validate_policies(input.policies, chain.name)?;
        let mut routes: Vec<Route> = Vec::with_capacity(input.routes.0.len());
        for (i, r) in input.routes.0.into_iter().enumerate() {
            let route_policies = route_policies(i, r.policy, r.auth, &policies)?;
            routes.push(Route {
                host: r.host.map(|h| h.0),
                path: r.path.0,
                upstream: match r.upstream {
                    UpstreamInput::Http { host, port } => Upstream::Http { host, port },
                    UpstreamInput::Builtin(name) => Upstream::Builtin(name),
                },
                auth: r.auth,
                allow: r.allow,
                assertion: r.assertion,
                policies: route_policies,
            });
        }
        let mut warnings = Vec::new();
        let oidc = input
            .oidc
            .map(|o| oidc::validate_oidc(o, base, &policies, &mut warnings))
            .transpose()?;
        warnings.extend(unused_policy_warnings(&policies, &routes, oidc.as_ref()));
        let policy_cache = validate_policy_cache(input.policy_cache)?;
        for (i, route) in routes.iter().enumerate() {
            if let Some(first) = routes[..i]
                .iter()
                .position(|r| r.host == route.host && r.path == route.path)
            {
                return Err(invalid(
                    &format!("routes[{i}].path"),
                    format!(
                        "duplicate route for host {} and path {:?} (same as routes[{first}])",
                        route.host.as_deref().unwrap_or("(any)"),
                        route.path
                    ),
                ));
            }
            if !route.allow.is_empty() && route.auth != AuthMode::Required {
                return Err(invalid(
                    &format!("routes[{i}].allow"),
                    "an allowlist only makes sense on an `auth: required` route",
                ));
            }
            if route.assertion && route.auth == AuthMode::Public {
                return Err(invalid(
                    &format!("routes[{i}].assertion"),
                    "a public route has no visitor account to assert: use `auth: optional` or `auth: required`",
                ));
            }
        }
        let assertion = validate_assertion(input.assertion)?;
        // A key must outlive the tokens it signed by a margin: the previous
        // key stays published one period after the next one signs.
        if let Some(oidc) = &oidc
            && assertion.rotate_every < oidc.token_ttl * 2
        {
            return Err(invalid(
                "oidc.token_ttl",
                format!(
                    "must be at most half of assertion.rotate_every ({}), which also rotates the OpenID keys",
                    humantime::format_duration(assertion.rotate_every)
                ),
            ));
        }
        let log = validate_log(input.log, base)?;
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then(b.host.is_some().cmp(&a.host.is_some()))
        });

        let stale_days = input.report.stale_days.unwrap_or(40);
        if !(1..=3650).contains(&stale_days) {
            return Err(invalid("report.stale_days", "must be between 1 and 3650"));
        }
        let login = validate_login(&input.login)?;
        let memo_prefix = input.login.memo_prefix.unwrap_or_default();
        if memo_prefix.len() > 64
            || memo_prefix.starts_with('#')
            || memo_prefix.chars().any(|c| c.is_control())
        {
            return Err(invalid(
                "login.memo_prefix",
                "at most 64 printable characters, not starting with '#'",
            ));
        }
        Ok(Config {
            listen,
            tls,
            admin_listen,
            threads,
            work_stealing: input.work_stealing.is_some_and(|switch| switch.0),
            trusted_proxies: input.trusted_proxies.into_iter().map(|p| p.0).collect(),
            chain,
            session,
            store,
            site_name: input.site_name,
            templates_dir: input.templates_dir.map(|p| base.join(p)),
            memo_prefix,
            login,
            report: ReportConfig {
                stale_days,
                cache_ttl: duration_in(
                    "report.cache_ttl",
                    input.report.cache_ttl.map_or(MINUTE * 5, |d| d.0),
                    Duration::ZERO,
                    DAY * 7,
                )?,
            },
            assertion,
            log,
            limits: {
                let defaults = LimitsConfig::default();
                let l = input.limits;
                LimitsConfig {
                    new_sessions_per_minute: at_most(
                        "limits.new_sessions_per_minute",
                        l.new_sessions_per_minute
                            .unwrap_or(defaults.new_sessions_per_minute),
                        MAX_RATE,
                    )?,
                    new_sessions_burst: at_most(
                        "limits.new_sessions_burst",
                        l.new_sessions_burst.unwrap_or(defaults.new_sessions_burst),
                        MAX_RATE,
                    )?,
                    status_per_minute: at_most(
                        "limits.status_per_minute",
                        l.status_per_minute.unwrap_or(defaults.status_per_minute),
                        MAX_RATE,
                    )?,
                    status_burst: at_most(
                        "limits.status_burst",
                        l.status_burst.unwrap_or(defaults.status_burst),
                        MAX_RATE,
                    )?,
                    header_timeout: duration_in(
                        "limits.header_timeout",
                        l.header_timeout.map_or(defaults.header_timeout, |d| d.0),
                        MS * 100,
                        MINUTE * 5,
                    )?,
                    idle_timeout: duration_in(
                        "limits.idle_timeout",
                        l.idle_timeout.map_or(defaults.idle_timeout, |d| d.0),
                        SECOND,
                        HOUR,
                    )?,
                }
            },
            routes,
            policies,
            policy_cache,
            oidc,
            warnings,
        })
    }
}

/// Checks every policy against what the chain can answer and how many
/// reads it needs; returns them in file order.
fn validate_policies(
    input: policy::PoliciesInput,
    chain: ChainName,
) -> Result<Vec<Arc<Policy>>, ConfigError> {
    let mut policies = Vec::with_capacity(input.0.len());
    for (name, condition) in input.0 {
        let key = format!("policies.{name}");
        let mut unsupported = None;
        condition.walk(&mut |c| {
            if unsupported.is_none() {
                unsupported = crate::chain::facts::unsupported(chain, c.name()).map(|why| {
                    format!(
                        "`{}` cannot be decided on {}: {why}",
                        c.name(),
                        chain.as_str()
                    )
                });
            }
        });
        if let Some(message) = unsupported {
            return Err(invalid(&key, message));
        }
        let reads = condition.reads();
        if reads > policy::MAX_READS_PER_POLICY {
            return Err(invalid(
                &key,
                format!(
                    "needs {reads} chain reads per visitor (follows, mutes, communities); \
                     at most {} keep a first visit fast: split it into several policies",
                    policy::MAX_READS_PER_POLICY
                ),
            ));
        }
        policies.push(Arc::new(Policy {
            name: Arc::from(name.as_str()),
            condition,
        }));
    }
    Ok(policies)
}

/// `routes[i].policy`: names resolved to policies, each once.
fn route_policies(
    i: usize,
    named: Option<OneOrMany>,
    auth: AuthMode,
    policies: &[Arc<Policy>],
) -> Result<Vec<Arc<Policy>>, ConfigError> {
    let key = format!("routes[{i}].policy");
    let Some(named) = named else {
        return Ok(Vec::new());
    };
    if auth == AuthMode::Public {
        return Err(invalid(
            &key,
            "a public route has no visitor account to check: use `auth: required` (or `optional`, where a visitor who fails is proxied anonymously)",
        ));
    }
    resolve_policy_names(&key, named, policies)
}

/// A `policy:` value (one name or a list) resolved to the named policies,
/// each once; `key` names the setting in errors.
fn resolve_policy_names(
    key: &str,
    named: OneOrMany,
    policies: &[Arc<Policy>],
) -> Result<Vec<Arc<Policy>>, ConfigError> {
    let names = match named {
        OneOrMany::One(name) => vec![name],
        OneOrMany::Many(names) if names.is_empty() => {
            return Err(invalid(
                key,
                "an empty list: name at least one policy or drop the key",
            ));
        }
        OneOrMany::Many(names) => names,
    };
    let mut resolved: Vec<Arc<Policy>> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim();
        let Some(policy) = policies.iter().find(|p| &*p.name == name) else {
            let known: Vec<&str> = policies.iter().map(|p| &*p.name).collect();
            return Err(invalid(
                key,
                if known.is_empty() {
                    format!("no policy named {name:?}: define it under `policies:`")
                } else {
                    format!("no policy named {name:?} (defined: {})", known.join(", "))
                },
            ));
        };
        if !resolved.iter().any(|p| Arc::ptr_eq(p, policy)) {
            resolved.push(Arc::clone(policy));
        }
    }
    Ok(resolved)
}

fn unused_policy_warnings(
    policies: &[Arc<Policy>],
    routes: &[Route],
    oidc: Option<&OidcConfig>,
) -> Vec<String> {
    let clients = oidc.map_or(&[][..], |o| &o.clients[..]);
    policies
        .iter()
        .filter(|policy| {
            !routes
                .iter()
                .any(|r| r.policies.iter().any(|p| Arc::ptr_eq(p, policy)))
                && !clients
                    .iter()
                    .any(|c| c.policies.iter().any(|p| Arc::ptr_eq(p, policy)))
        })
        .map(|policy| {
            format!(
                "policies.{}: no route or OpenID client uses this policy (only forward auth can: /.steemgate/auth?policy={})",
                policy.name, policy.name
            )
        })
        .collect()
}

fn validate_policy_cache(
    input: policy::PolicyCacheInput,
) -> Result<PolicyCacheConfig, ConfigError> {
    let defaults = PolicyCacheConfig::default();
    let ttl = duration_in(
        "policy_cache.ttl",
        input.ttl.map_or(defaults.ttl, |d| d.0),
        SECOND,
        DAY,
    )?;
    let max_stale = duration_in(
        "policy_cache.max_stale",
        input.max_stale.map_or(defaults.max_stale.max(ttl), |d| d.0),
        Duration::ZERO,
        DAY * 7,
    )?;
    if max_stale < ttl {
        return Err(invalid(
            "policy_cache.max_stale",
            format!(
                "must be at least policy_cache.ttl ({}): a decision is always good for its ttl",
                humantime::format_duration(ttl)
            ),
        ));
    }
    let timeout = duration_in(
        "policy_cache.timeout",
        input.timeout.map_or(defaults.timeout, |d| d.0),
        MS * 100,
        MINUTE,
    )?;
    Ok(PolicyCacheConfig {
        ttl,
        max_stale,
        timeout,
    })
}

/// Resolves the TLS paths and checks that they hold what pingora will load
/// (it panics on bad files; here the error names the key).
fn validate_tls(input: input::TlsInput, base: &Path) -> Result<TlsConfig, ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let cert = base.join(&input.cert);
    let key = base.join(&input.key);
    let certs = CertificateDer::pem_file_iter(&cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            invalid(
                "tls.cert",
                format!(
                    "cannot read a PEM certificate chain from {}: {e}",
                    cert.display()
                ),
            )
        })?;
    if certs.is_empty() {
        return Err(invalid(
            "tls.cert",
            format!("{} holds no PEM certificate", cert.display()),
        ));
    }
    PrivateKeyDer::from_pem_file(&key).map_err(|e| {
        invalid(
            "tls.key",
            format!("cannot read a PEM private key from {}: {e}", key.display()),
        )
    })?;
    let utf8 = |path: &Path, name: &str| {
        path.to_str()
            .map(|_| ())
            .ok_or_else(|| invalid(name, "the path must be valid UTF-8"))
    };
    utf8(&cert, "tls.cert")?;
    utf8(&key, "tls.key")?;
    let http2 = input.http2.is_none_or(|switch| switch.0);
    Ok(TlsConfig { cert, key, http2 })
}

fn validate_assertion(input: input::AssertionInput) -> Result<AssertionConfig, ConfigError> {
    let defaults = AssertionConfig::default();
    // At least 1h: the previous key must outlive every token it signed.
    let rotate_every = duration_in(
        "assertion.rotate_every",
        input.rotate_every.map_or(defaults.rotate_every, |d| d.0),
        MIN_ROTATE_EVERY,
        DAY * 366,
    )?;
    let issuer = match input.issuer {
        Some(issuer) if issuer.trim().is_empty() || issuer.chars().any(char::is_control) => {
            return Err(invalid(
                "assertion.issuer",
                "must be a non-empty printable string such as https://auth.example.com",
            ));
        }
        other => other.map(|i| i.trim().to_string()),
    };
    Ok(AssertionConfig {
        issuer,
        rotate_every,
    })
}

fn validate_log(input: input::LogInput, base: &Path) -> Result<LogConfig, ConfigError> {
    let defaults = LogConfig::default();
    let level = match input.level {
        None => defaults.level,
        Some(level) => {
            tracing_subscriber::EnvFilter::builder()
                .parse(&level)
                .map_err(|e| {
                    invalid(
                        "log.level",
                        format!(
                            "{level:?} is not a log filter like `info` or `debug,pingora=info`: {e}"
                        ),
                    )
                })?;
            level
        }
    };
    let format = input.format.unwrap_or(defaults.format);
    let file = match input.access_file {
        Some(path) if path.as_os_str().is_empty() => {
            return Err(invalid(
                "log.access_file",
                "must be a file path (leave it out for stderr)",
            ));
        }
        Some(path) if base.join(&path).is_dir() => {
            return Err(invalid(
                "log.access_file",
                format!("{} is a directory, not a file", base.join(&path).display()),
            ));
        }
        other => other.map(|p| base.join(p)),
    };
    let access = input.access.is_none_or(|on| on.0).then(|| AccessLogConfig {
        format: input.access_format.unwrap_or(format),
        file,
    });
    Ok(LogConfig {
        level,
        format,
        access,
    })
}

/// Default `assertion.rotate_every`.
pub const DEFAULT_ROTATE_EVERY: Duration = Duration::from_secs(7 * 86400);
/// Shortest accepted `assertion.rotate_every` (auth checks at compile time
/// that it outlasts a token's life plus the key ring's refresh).
pub const MIN_ROTATE_EVERY: Duration = Duration::from_secs(3600);
const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86400);
/// Most worker threads (`threads`).
const MAX_THREADS: usize = 256;
/// Most requests per minute or burst size in `limits` (0 disables a limit).
const MAX_RATE: u32 = 1_000_000;

/// Every duration setting has a range (the README's configuration reference
/// lists them): zero where it would switch off a safety deadline, and an
/// upper bound so that no value can overflow a clock or keep state forever.
fn duration_in(
    key: &str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(value)
}

fn at_most(key: &str, value: u32, max: u32) -> Result<u32, ConfigError> {
    if value > max {
        return Err(invalid(key, format!("must be at most {max}")));
    }
    Ok(value)
}

fn validate_login(input: &input::LoginInput) -> Result<LoginConfig, ConfigError> {
    let defaults = LoginConfig::default();
    let methods = match &input.methods {
        None => defaults.methods,
        Some(listed) => {
            let mut methods = Vec::new();
            for method in listed {
                if !methods.contains(method) {
                    methods.push(*method);
                }
            }
            if !methods.contains(&LoginMethod::Transfer) {
                return Err(invalid(
                    "login.methods",
                    "must include `transfer`: the memo transfer login is always offered",
                ));
            }
            methods
        }
    };
    let wallet_challenge_ttl = duration_in(
        "login.wallet_challenge_ttl",
        input
            .wallet_challenge_ttl
            .map_or(defaults.wallet_challenge_ttl, |d| d.0),
        SECOND,
        HOUR,
    )?;
    // The chain refuses an expiration more than an hour past the head block.
    let transfer_expiration = duration_in(
        "login.transfer_expiration",
        input
            .transfer_expiration
            .map_or(defaults.transfer_expiration, |d| d.0),
        SECOND * 10,
        HOUR,
    )?;
    Ok(LoginConfig {
        methods,
        wallet_challenge_ttl,
        transfer_expiration,
    })
}

fn parse_addr(key: &str, raw: &str) -> Result<SocketAddr, ConfigError> {
    raw.trim().parse().map_err(|_| {
        invalid(
            key,
            format!("{raw:?} is not an address like 127.0.0.1:8080"),
        )
    })
}

fn validate_session(input: input::SessionInput, base: &Path) -> Result<SessionConfig, ConfigError> {
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let mut source = "session.secret";
    if let Ok(env_secret) = std::env::var(SECRET_ENV)
        && !env_secret.trim().is_empty()
    {
        source = SECRET_ENV;
        secrets.push(env_secret.trim().as_bytes().to_vec());
    }
    if secrets.is_empty() {
        match (input.secret, input.secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "session",
                    "set either secret or secret_file, not both",
                ));
            }
            (Some(OneOrMany::One(s)), None) => secrets.push(s.into_bytes()),
            (Some(OneOrMany::Many(list)), None) => {
                secrets.extend(list.into_iter().map(String::into_bytes))
            }
            (None, Some(file)) => {
                source = "session.secret_file";
                let path = base.join(&file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid(
                        "session.secret_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                secrets.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| l.as_bytes().to_vec()),
                );
            }
            (None, None) => {
                return Err(invalid(
                    "session.secret",
                    format!(
                        "a secret is required: set session.secret, session.secret_file or {SECRET_ENV} (make one with `steemgate secret`)"
                    ),
                ));
            }
        }
    }
    if secrets.is_empty() {
        return Err(invalid(source, "no secret found"));
    }
    if let Some(short) = secrets.iter().position(|s| s.len() < MIN_SECRET_LEN) {
        return Err(invalid(
            source,
            format!("secret #{short} is shorter than {MIN_SECRET_LEN} bytes"),
        ));
    }
    // Browsers cap a cookie's lifetime at 400 days.
    let ttl = duration_in(
        "session.ttl",
        input.ttl.map_or(DAY * 30, |d| d.0),
        MINUTE,
        DAY * 400,
    )?;
    let challenge_ttl = duration_in(
        "session.challenge_ttl",
        input.challenge_ttl.map_or(MINUTE * 15, |d| d.0),
        SECOND,
        DAY,
    )?;
    // It is how long a logout elsewhere may go unnoticed.
    let cache_ttl = duration_in(
        "session.cache_ttl",
        input.cache_ttl.map_or(DEFAULT_SESSION_CACHE_TTL, |d| d.0),
        Duration::ZERO,
        MAX_SESSION_CACHE_TTL,
    )?;
    let cookie_name = input.cookie_name.unwrap_or_else(|| "steemgate".to_string());
    if cookie_name.is_empty()
        || cookie_name.len() > 64
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "session.cookie_name",
            "1 to 64 letters, digits, '_' and '-'",
        ));
    }
    Ok(SessionConfig {
        secrets,
        ttl,
        challenge_ttl,
        cache_ttl,
        cookie_name,
        secure: input.secure,
    })
}

fn parse_store(raw: &str, base: &Path) -> Result<StoreLocation, ConfigError> {
    let raw = raw.trim();
    if let Some(path) = raw.strip_prefix("file:") {
        if path.is_empty() {
            return Err(invalid(
                "store",
                "file: needs a directory, e.g. file:./data/steemgate",
            ));
        }
        return Ok(StoreLocation::File(base.join(path)));
    }
    if raw.starts_with("redis") {
        // Errors never quote the value: it may hold a password.
        return crate::store::redis::RedisSpec::parse(raw, base)
            .map(StoreLocation::Redis)
            .map_err(|e| invalid("store", e));
    }
    Err(invalid(
        "store",
        "expected file:DIR, redis://HOST:PORT/DB, redis+sentinel://HOST:PORT,…/MASTER or redis+cluster://HOST:PORT,…",
    ))
}

#[cfg(test)]
mod tests;
