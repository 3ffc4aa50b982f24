//! Route table: which upstream and which auth mode a request gets.
//!
//! Why: the decision must be cheap (every request) and unambiguous. Routes
//! come from the config already sorted most-specific first (longest path
//! prefix, then host routes before host-less ones), upstream addresses are
//! resolved once at startup,
//! and matching runs on the canonical path only.

use std::net::SocketAddr;

use crate::chain::AccountName;
use crate::config::{AuthMode, Route};

/// A route ready for traffic.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    pub host: Option<String>,
    pub path: String,
    pub auth: AuthMode,
    pub allow: Vec<AccountName>,
    pub upstream: SocketAddr,
    /// Send a signed `X-Steem-Assertion` with the account.
    pub assertion: bool,
    /// Label for metrics and logs: the configured path (and host).
    pub label: std::sync::Arc<str>,
    /// Names of the policies that must all hold (empty: none).
    pub policies: Vec<std::sync::Arc<str>>,
}

impl CompiledRoute {
    pub fn allows(&self, account: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| a.as_str() == account)
    }
}

/// Why routes could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("route {route}: {message}")]
pub struct RouteError {
    pub route: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<CompiledRoute>,
}

impl RouteTable {
    /// Compiles config routes; `resolve` turns an upstream into an address
    /// (DNS for `http://`, the internal listener for `builtin:`).
    pub fn compile(
        routes: &[Route],
        mut resolve: impl FnMut(&crate::config::Upstream) -> Result<SocketAddr, String>,
    ) -> Result<Self, RouteError> {
        let compiled = routes
            .iter()
            .map(|route| {
                let label = match &route.host {
                    Some(host) => format!("{host}{}", route.path),
                    None => route.path.clone(),
                };
                let upstream = resolve(&route.upstream).map_err(|message| RouteError {
                    route: label.clone(),
                    message,
                })?;
                Ok(CompiledRoute {
                    host: route.host.clone(),
                    path: route.path.clone(),
                    auth: route.auth,
                    allow: route.allow.clone(),
                    upstream,
                    assertion: route.assertion,
                    label: label.into(),
                    policies: route.policies.iter().map(|p| p.name.clone()).collect(),
                })
            })
            .collect::<Result<Vec<_>, RouteError>>()?;
        Ok(Self { routes: compiled })
    }

    /// The most specific route for `host` (lowercase, without port) and a
    /// canonical `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<(usize, &CompiledRoute)> {
        self.routes.iter().enumerate().find(|(_, route)| {
            let host_ok = match (&route.host, host) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            };
            host_ok && path_matches(&route.path, path)
        })
    }

    pub fn get(&self, index: usize) -> Option<&CompiledRoute> {
        self.routes.get(index)
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

fn path_matches(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The host a request is for, lowercase, without port: from an
/// absolute-form target's authority if present (RFC 9112 §3.2.2), else the
/// `Host` header.
pub fn request_host(uri: &http::Uri, host_header: Option<&[u8]>) -> Option<String> {
    match uri.authority() {
        Some(authority) => Some(normalize_host(authority.host())),
        None => host_from_header(host_header?),
    }
}

/// The host of a `Host` header value, lowercase, without port.
pub fn host_from_header(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?.trim();
    (!text.is_empty()).then(|| normalize_host(strip_port(text)))
}

fn normalize_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`; anything else unchanged.
fn strip_port(header: &str) -> &str {
    if header.starts_with('[') {
        return header.split_inclusive(']').next().unwrap_or(header);
    }
    match header.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_from_header_or_absolute_uri() {
        let origin: http::Uri = "/x".parse().unwrap();
        assert_eq!(
            request_host(&origin, Some(b"App.Example.com:8080")).as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            request_host(&origin, Some(b"app.example.com")).as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            request_host(&origin, Some(b"[::1]:80")).as_deref(),
            Some("::1")
        );
        assert_eq!(
            request_host(&origin, Some(b"app.example.com.")).as_deref(),
            Some("app.example.com")
        );
        assert_eq!(request_host(&origin, None), None);
        let absolute: http::Uri = "http://other.example/x".parse().unwrap();
        assert_eq!(
            request_host(&absolute, Some(b"app.example.com")).as_deref(),
            Some("other.example")
        );
    }
}
