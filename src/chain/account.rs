//! Account names, validated once at the edge.
//!
//! Why: an identity that is not canonical is a classic gateway bug (case
//! variants of the same user, names the chain would never accept). Every
//! account name that reaches a session, an allowlist or a header passes
//! through [`AccountName::parse`], which applies the chain's own rules and
//! lowercases.

use std::fmt;

/// A Steem/Hive account name that satisfies the chain's naming rules.
///
/// Rules (same on both chains): 3–16 characters overall; dot-separated
/// segments, each at least 3 characters, starting with a letter, ending with
/// a letter or digit, containing only `a-z`, `0-9` and `-` (no `--`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct AccountName(String);

/// Why a string is not an account name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountNameError {
    #[error("account name must be 3 to 16 characters, got {0}")]
    Length(usize),
    #[error("account name segment {0:?} must be at least 3 characters")]
    ShortSegment(String),
    #[error("account name segment {0:?} must start with a letter")]
    BadStart(String),
    #[error("account name segment {0:?} must end with a letter or digit")]
    BadEnd(String),
    #[error("account name may contain only a-z, 0-9, '-' and '.', got {0:?}")]
    BadChar(char),
    #[error("account name may not contain \"--\"")]
    DoubleDash,
}

impl AccountName {
    /// Validates and lowercases `raw` (surrounding whitespace is not allowed:
    /// callers trim where the input format allows it).
    pub fn parse(raw: &str) -> Result<Self, AccountNameError> {
        let lower = raw.to_ascii_lowercase();
        let len = lower.chars().count();
        if !(3..=16).contains(&len) {
            return Err(AccountNameError::Length(len));
        }
        if let Some(bad) = lower
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
        {
            return Err(AccountNameError::BadChar(bad));
        }
        for segment in lower.split('.') {
            if segment.len() < 3 {
                return Err(AccountNameError::ShortSegment(segment.to_string()));
            }
            let first = segment.as_bytes()[0];
            if !first.is_ascii_lowercase() {
                return Err(AccountNameError::BadStart(segment.to_string()));
            }
            let last = segment.as_bytes()[segment.len() - 1];
            if !(last.is_ascii_lowercase() || last.is_ascii_digit()) {
                return Err(AccountNameError::BadEnd(segment.to_string()));
            }
            if segment.contains("--") {
                return Err(AccountNameError::DoubleDash);
            }
        }
        Ok(Self(lower))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for AccountName {
    /// Validates inside the visitor, so that a YAML error carries the line
    /// and key path of the name itself (not of the enclosing section).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl serde::de::Visitor<'_> for NameVisitor {
            type Value = AccountName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an account name")
            }
            fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<AccountName, E> {
                AccountName::parse(raw.trim()).map_err(E::custom)
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_names_and_lowercases() {
        for name in [
            "steemit",
            "gtg",
            "blocktrades",
            "a-b-c",
            "dan.larimer",
            "user123",
            "Inertia",
        ] {
            let parsed = AccountName::parse(name).expect(name);
            assert_eq!(parsed.as_str(), name.to_ascii_lowercase());
        }
    }

    #[test]
    fn rejects_what_the_chain_rejects() {
        for name in [
            "ab",
            "seventeen-chars-x",
            "1abc",
            "abc-",
            "a--b",
            "ab.cde",
            "abc.de",
            "ab c",
            "abc_d",
            "",
            "-abc",
            "abc.",
            "ünï",
        ] {
            assert!(
                AccountName::parse(name).is_err(),
                "{name} should be rejected"
            );
        }
    }
}
