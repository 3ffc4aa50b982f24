//! The YAML as operators write it: serde types, nothing else.
//!
//! Why separate from [`super::Config`]: the file format must reject unknown
//! keys and report the key and line of every mistake, while the rest of the
//! gateway wants validated, ready-to-use values. Checks that concern a single
//! value (a duration, an account, a URL) happen *during* deserialization
//! through the newtypes below, *inside* their visitors (see [`scalar`]), so
//! serde_norway's error carries the key path and the line of the value;
//! checks across values run in `Config::validate`, whose errors get their
//! line from [`super::locate`].

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, SeqAccess, Visitor};

use crate::chain::{AccountName, ChainName, Confirm};

pub(crate) use super::scalar::scalar;
pub use super::scalar::{HumanDuration, OneOrMany};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigInput {
    pub listen: Option<String>,
    /// TLS on the public listener: `{cert: PATH, key: PATH}` (PEM).
    pub tls: Option<TlsInput>,
    pub admin_listen: Option<String>,
    pub threads: Option<usize>,
    /// `false` (the default): each thread accepts, serves and keeps upstream
    /// connections of its own; `true`: tokio's work-stealing scheduler.
    pub work_stealing: Option<Switch>,
    /// Peers (IPs or CIDRs) whose `X-Forwarded-For` is kept; empty by default.
    #[serde(default)]
    pub trusted_proxies: Vec<ProxyNet>,
    pub chain: ChainInput,
    #[serde(default)]
    pub session: SessionInput,
    pub store: Option<String>,
    pub site_name: Option<String>,
    pub templates_dir: Option<PathBuf>,
    #[serde(default)]
    pub login: LoginInput,
    #[serde(default)]
    pub report: ReportInput,
    #[serde(default)]
    pub limits: LimitsInput,
    /// Signed identity assertions (`X-Steem-Assertion`).
    #[serde(default)]
    pub assertion: AssertionInput,
    #[serde(default)]
    pub log: LogInput,
    /// Named access policies decided by chain facts.
    #[serde(default)]
    pub policies: super::policy::PoliciesInput,
    #[serde(default)]
    pub policy_cache: super::policy::PolicyCacheInput,
    /// steemgate as an OpenID Provider.
    pub oidc: Option<super::oidc::OidcInput>,
    pub routes: Routes,
}

/// Log filter and format; `STEEMGATE_LOG` / `STEEMGATE_LOG_FORMAT` override.
/// `access*`: the per-request access log (on by default, to stderr).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogInput {
    pub level: Option<String>,
    pub format: Option<super::LogFormat>,
    pub access: Option<Switch>,
    /// Defaults to `format`.
    pub access_format: Option<super::LogFormat>,
    /// Absent: stderr.
    pub access_file: Option<PathBuf>,
}

/// `on`/`off` (YAML 1.2 reads those as strings) or `true`/`false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch(pub bool);

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct SwitchVisitor;
        impl Visitor<'_> for SwitchVisitor {
            type Value = Switch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("`on` or `off`")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Switch, E> {
                Ok(Switch(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Switch, E> {
                match v.to_ascii_lowercase().as_str() {
                    "on" | "true" => Ok(Switch(true)),
                    "off" | "false" => Ok(Switch(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(SwitchVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainInput {
    pub name: ChainName,
    pub nodes: Option<Vec<NodeUrl>>,
    pub account: AccountName,
    pub min_amount: Option<String>,
    pub confirm: Option<Confirm>,
    pub request_timeout: Option<HumanDuration>,
    /// Marks the nodes as a local simulation (the devnet): the login page
    /// then offers a "simulate transfer" button. Never set for real chains.
    #[serde(default)]
    pub devnet: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionInput {
    pub secret: Option<OneOrMany>,
    pub secret_file: Option<PathBuf>,
    pub ttl: Option<HumanDuration>,
    pub challenge_ttl: Option<HumanDuration>,
    /// How long a logged-in session is served from memory before the store
    /// is asked again; `0s` disables the cache.
    pub cache_ttl: Option<HumanDuration>,
    pub cookie_name: Option<String>,
    /// `true`/`false` forces the cookie's Secure flag; absent: Secure when
    /// served over TLS.
    pub secure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub memo_prefix: Option<String>,
    /// Which login methods are offered (default: all three).
    pub methods: Option<Vec<super::LoginMethod>>,
    /// How long a wallet challenge (sign-buffer text or unsigned login
    /// transfer) may be answered.
    pub wallet_challenge_ttl: Option<HumanDuration>,
    /// The `expiration` of an instant login transfer, after the head block.
    pub transfer_expiration: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportInput {
    pub stale_days: Option<u32>,
    pub cache_ttl: Option<HumanDuration>,
}

/// Per-client-address limits (0 disables one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsInput {
    pub new_sessions_per_minute: Option<u32>,
    pub new_sessions_burst: Option<u32>,
    pub status_per_minute: Option<u32>,
    pub status_burst: Option<u32>,
    pub header_timeout: Option<HumanDuration>,
    pub idle_timeout: Option<HumanDuration>,
}

/// `tls:`: the public listener's certificate chain and private key (PEM).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsInput {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Offer HTTP/2 to browsers by ALPN (`on`/`off`, default on).
    pub http2: Option<Switch>,
}

/// `assertion:`: how signed identity assertions are made.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionInput {
    /// The `iss` claim; absent: the request's origin (`https://host`).
    pub issuer: Option<String>,
    /// How often a new signing key is made (default 7d, at least 1h).
    pub rotate_every: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Required,
    Optional,
    Public,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteInput {
    pub host: Option<HostName>,
    pub path: RoutePath,
    pub upstream: UpstreamInput,
    pub auth: AuthMode,
    #[serde(default)]
    pub allow: Vec<AccountName>,
    /// Also send a signed `X-Steem-Assertion` JWT with the account.
    #[serde(default)]
    pub assertion: bool,
    /// A policy name, or a list of names that must all hold.
    pub policy: Option<OneOrMany>,
}

/// A trusted proxy: an IP address (`10.0.0.5`, `::1`) or a CIDR network
/// (`10.0.0.0/8`), checked while the parser still knows the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(pub ipnet::IpNet);

impl<'de> Deserialize<'de> for ProxyNet {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "an IP address or CIDR network", |raw| {
            let text = raw.trim();
            let parsed = match text.parse::<ipnet::IpNet>() {
                Ok(net) => Ok(net.trunc()),
                Err(_) => text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from),
            };
            parsed.map(ProxyNet).map_err(|_| {
                format!(
                    "invalid trusted proxy {raw:?}: write an IP address (10.0.0.5) or a CIDR network (10.0.0.0/8)"
                )
            })
        })
    }
}

/// A chain node URL: `http://` or `https://` with a host.
#[derive(Debug, Clone)]
pub struct NodeUrl(pub url::Url);

impl<'de> Deserialize<'de> for NodeUrl {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a node URL", |raw| {
            let url = url::Url::parse(raw.trim())
                .map_err(|e| format!("invalid node URL {raw:?}: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(format!(
                    "node URL {raw:?} must be http:// or https:// with a host"
                ));
            }
            Ok(NodeUrl(url))
        })
    }
}

/// A host name to match, lowercase, without port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(pub String);

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a host name", |raw| {
            let host = raw.trim().to_ascii_lowercase();
            let valid = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!(
                    "invalid host {raw:?}: a DNS name like app.example.com, without scheme or port"
                ));
            }
            Ok(HostName(host))
        })
    }
}

/// A route path prefix: starts with `/`, already canonical.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePath(pub String);

impl<'de> Deserialize<'de> for RoutePath {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a route path", |raw| {
            let bad = |why: &str| format!("invalid route path {raw:?}: {why}");
            if !raw.starts_with('/') {
                return Err(bad("must start with '/'"));
            }
            if raw.contains(['%', '\\', '?', '#', ';', ' ']) || raw.contains("//") {
                return Err(bad(
                    "must be a plain path without '%', '\\', '?', '#', ';', spaces or '//'",
                ));
            }
            if raw.split('/').any(|seg| seg == "." || seg == "..") {
                return Err(bad("must not contain '.' or '..' segments"));
            }
            if raw.starts_with("/.steemgate") {
                return Err(bad("/.steemgate/ is reserved for the gateway's own pages"));
            }
            let trimmed = if raw.len() > 1 {
                raw.trim_end_matches('/')
            } else {
                raw
            };
            Ok(RoutePath(trimmed.to_string()))
        })
    }
}

/// Where a route sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamInput {
    /// `http://host:port`
    Http { host: String, port: u16 },
    /// `builtin:NAME`, an upstream served by steemgate itself.
    Builtin(String),
}

pub const BUILTIN_UPSTREAMS: &[&str] = &["stale-follows", "hello"];

impl<'de> Deserialize<'de> for UpstreamInput {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "an upstream URL or builtin:NAME", parse_upstream)
    }
}

fn parse_upstream(raw: &str) -> Result<UpstreamInput, String> {
    let raw = raw.trim();
    if let Some(name) = raw.strip_prefix("builtin:") {
        if !BUILTIN_UPSTREAMS.contains(&name) {
            return Err(format!(
                "unknown builtin upstream {name:?}; known: {}",
                BUILTIN_UPSTREAMS.join(", ")
            ));
        }
        return Ok(UpstreamInput::Builtin(name.to_string()));
    }
    let url = url::Url::parse(raw).map_err(|e| format!("invalid upstream URL {raw:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "upstream {raw:?}: only http:// upstreams are supported (or builtin:NAME)"
        ));
    }
    if !(url.path() == "/" || url.path().is_empty())
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "upstream {raw:?} must be scheme://host:port without a path, query or fragment"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("upstream {raw:?} must not carry credentials"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("upstream {raw:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    Ok(UpstreamInput::Http { host, port })
}

/// The route list (at least one route; duplicates are refused in
/// `Config::validate`, which names the key path and line).
#[derive(Debug)]
pub struct Routes(pub Vec<RouteInput>);

impl<'de> Deserialize<'de> for Routes {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RoutesVisitor;
        impl<'de> Visitor<'de> for RoutesVisitor {
            type Value = Routes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of routes")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Routes, A::Error> {
                let mut routes: Vec<RouteInput> = Vec::new();
                while let Some(route) = seq.next_element::<RouteInput>()? {
                    routes.push(route);
                }
                if routes.is_empty() {
                    return Err(de::Error::custom("routes: at least one route is needed"));
                }
                Ok(Routes(routes))
            }
        }
        d.deserialize_seq(RoutesVisitor)
    }
}
