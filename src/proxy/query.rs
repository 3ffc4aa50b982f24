//! Decoded query parameters of the gateway's own endpoints.
//!
//! Why its own file: both the session endpoints (`endpoints`) and the OpenID
//! endpoints (`oidc`) read queries, and `endpoints` dispatches to `oidc`; a
//! shared reader below both keeps the two free of a circle.

use std::time::Duration;

/// Longest long poll a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

/// Decoded query parameters of an endpoint request (first value wins).
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(query: Option<&str>) -> Self {
        Query(query.map_or_else(Vec::new, |q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        }))
    }
    /// Every pair, in order (repeated keys kept).
    pub fn into_pairs(self) -> Vec<(String, String)> {
        self.0
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
    /// The long-poll time asked for with `wait=SECONDS`, at most [`MAX_WAIT`].
    pub fn wait(&self) -> Duration {
        self.get("wait")
            .and_then(|w| w.parse::<u64>().ok())
            .map_or(Duration::ZERO, |s| Duration::from_secs(s).min(MAX_WAIT))
    }
}
