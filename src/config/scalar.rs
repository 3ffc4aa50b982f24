//! Single-value YAML types converted inside their serde visitors.
//!
//! Why a file of its own: the file format ([`super::input`]), the policy
//! grammar ([`super::policy`]) and the OpenID clients ([`super::oidc`])
//! read values such as durations whose errors must carry the value's own
//! line, and lists written as one name or many; keeping them here lets
//! those modules depend on this one without depending on each other.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Reads a string scalar and converts it *inside* the visitor: serde_norway
/// then attaches the scalar's own line and full key path (`session.ttl`) to
/// a conversion error. Converting after `String::deserialize` returned would
/// report the enclosing section's line instead.
pub(crate) fn scalar<'de, D, T>(
    d: D,
    expecting: &'static str,
    convert: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: de::Deserializer<'de>,
{
    struct ScalarVisitor<F> {
        expecting: &'static str,
        convert: F,
    }
    impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for ScalarVisitor<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, raw: &str) -> Result<T, E> {
            (self.convert)(raw).map_err(E::custom)
        }
    }
    d.deserialize_str(ScalarVisitor { expecting, convert })
}

/// One string or a list of them (`policy: members`, `policy: [a, b]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A duration such as `15m`, `30d`, `500ms`.
#[derive(Debug, Clone, Copy)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar(d, "a duration such as 15m", |raw| {
            humantime::parse_duration(raw.trim())
                .map(HumanDuration)
                .map_err(|e| {
                    format!(
                        "invalid duration {raw:?} ({e}); write e.g. \"15m\", \"30d\", \"500ms\""
                    )
                })
        })
    }
}
