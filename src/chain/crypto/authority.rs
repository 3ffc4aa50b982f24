//! An account's posting/active authority and whether recovered keys satisfy
//! it.
//!
//! Why: a valid signature only proves "someone holds key K". Whether K may
//! act as the account is the account's authority as the node lists it
//! (`condenser_api.get_accounts`): weighted `key_auths` against a
//! `weight_threshold`. The gateway's rule is narrower than the chain's, and
//! fails closed:
//! - only `key_auths` count; `account_auths` (apps granted posting rights)
//!   are ignored, since an app's key must not log a user in;
//! - the memo key never counts (it is a read key, often stored in apps);
//!   a signature by it is refused with its own message;
//! - a threshold the presented keys cannot reach (multisig) is refused with
//!   the weights, not silently;
//! - a threshold of 0 (the genesis "anyone" authority) is refused.

use std::collections::HashSet;

use super::keys::{KeyError, MAINNET_PREFIX, PublicKey, decode_key_string};

/// Which of an account's authorities to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Owner,
    Active,
    Posting,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Active => "active",
            Role::Posting => "posting",
        }
    }
}

/// Why recovered keys do not prove the account.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("the signing key is not one of the account's {0} keys")]
    NoMatchingKey(&'static str),
    #[error("the signature was made with the account's memo key; sign with the {0} key instead")]
    MemoKeyOnly(&'static str),
    #[error(
        "the account's {role} authority needs weight {need} but the signing keys carry {have}; \
         multi-signature accounts cannot log in with a single key"
    )]
    ThresholdNotMet {
        role: &'static str,
        have: u64,
        need: u32,
    },
    #[error("the account's {0} authority has weight_threshold 0; refused")]
    ZeroThreshold(&'static str),
}

/// Why an account answer could not be read as authorities.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityParseError {
    #[error("account answer lacks a valid {0:?}")]
    Field(String),
    #[error("account answer has a malformed key {key:?}: {error}")]
    Key { key: String, error: KeyError },
}

/// One authority of one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    pub role: Role,
    pub weight_threshold: u32,
    /// Keys and weights. Entries whose bytes are not a curve point (the
    /// null key) are dropped when parsing: no signature recovers to them.
    pub key_auths: Vec<(PublicKey, u16)>,
    /// Listed for completeness; never counted.
    pub account_auths: Vec<(String, u16)>,
    /// The account's memo key, kept so a memo-key signature gets a clear
    /// refusal. `None` when it is the null key.
    pub memo_key: Option<PublicKey>,
}

/// Reads a key string from a node answer: a bad checksum is a broken answer
/// (error), a valid encoding of a non-point is a key nobody holds (`None`).
fn node_key(text: &str) -> Result<Option<PublicKey>, AuthorityParseError> {
    let malformed = |error| AuthorityParseError::Key {
        key: text.to_string(),
        error,
    };
    let bytes = decode_key_string(text, MAINNET_PREFIX).map_err(malformed)?;
    match PublicKey::from_compressed(&bytes) {
        Ok(key) => Ok(Some(key)),
        Err(KeyError::NotOnCurve) => Ok(None),
        Err(error) => Err(malformed(error)),
    }
}

fn weighted_pairs<'a>(
    value: &'a serde_json::Value,
    field: &str,
) -> Result<Vec<(&'a str, u16)>, AuthorityParseError> {
    let bad = || AuthorityParseError::Field(field.to_string());
    let entries = value.as_array().ok_or_else(bad)?;
    entries
        .iter()
        .map(|entry| {
            let pair = entry.as_array().filter(|p| p.len() == 2).ok_or_else(bad)?;
            let name = pair[0].as_str().ok_or_else(bad)?;
            let weight = pair[1]
                .as_u64()
                .and_then(|w| u16::try_from(w).ok())
                .ok_or_else(bad)?;
            Ok((name, weight))
        })
        .collect()
}

impl Authority {
    /// Reads `role`'s authority (and the memo key) from one account object
    /// of a `condenser_api.get_accounts` answer.
    pub fn from_account(
        account: &serde_json::Value,
        role: Role,
    ) -> Result<Self, AuthorityParseError> {
        let memo_text = account
            .get("memo_key")
            .and_then(|v| v.as_str())
            .ok_or_else(|| AuthorityParseError::Field("memo_key".to_string()))?;
        let memo_key = node_key(memo_text)?;
        let authority = account
            .get(role.as_str())
            .ok_or_else(|| AuthorityParseError::Field(role.as_str().to_string()))?;
        Self::from_authority_json(authority, role, memo_key)
    }

    /// Reads an authority object `{weight_threshold, key_auths, account_auths}`.
    pub fn from_authority_json(
        authority: &serde_json::Value,
        role: Role,
        memo_key: Option<PublicKey>,
    ) -> Result<Self, AuthorityParseError> {
        let field = |name: &str| {
            authority
                .get(name)
                .ok_or_else(|| AuthorityParseError::Field(format!("{}.{name}", role.as_str())))
        };
        let weight_threshold = field("weight_threshold")?
            .as_u64()
            .and_then(|w| u32::try_from(w).ok())
            .ok_or_else(|| {
                AuthorityParseError::Field(format!("{}.weight_threshold", role.as_str()))
            })?;
        let mut key_auths = Vec::new();
        for (text, weight) in weighted_pairs(field("key_auths")?, "key_auths")? {
            if let Some(key) = node_key(text)? {
                key_auths.push((key, weight));
            }
        }
        let account_auths = weighted_pairs(field("account_auths")?, "account_auths")?
            .into_iter()
            .map(|(name, weight)| (name.to_string(), weight))
            .collect();
        Ok(Authority {
            role,
            weight_threshold,
            key_auths,
            account_auths,
            memo_key,
        })
    }

    /// Whether `keys` (recovered from signatures) reach the threshold with
    /// `key_auths` alone. Each distinct key counts once.
    pub fn satisfied_by(&self, keys: &[PublicKey]) -> Result<(), AuthorityError> {
        let role = self.role.as_str();
        if self.weight_threshold == 0 {
            return Err(AuthorityError::ZeroThreshold(role));
        }
        let presented: HashSet<&PublicKey> = keys.iter().collect();
        let mut counted: HashSet<&PublicKey> = HashSet::new();
        let mut have: u64 = 0;
        for (key, weight) in &self.key_auths {
            if presented.contains(key) && counted.insert(key) {
                have += u64::from(*weight);
            }
        }
        if counted.is_empty() {
            let memo_signed = self
                .memo_key
                .as_ref()
                .is_some_and(|memo| presented.contains(memo));
            return Err(if memo_signed {
                AuthorityError::MemoKeyOnly(role)
            } else {
                AuthorityError::NoMatchingKey(role)
            });
        }
        if have < u64::from(self.weight_threshold) {
            return Err(AuthorityError::ThresholdNotMet {
                role,
                have,
                need: self.weight_threshold,
            });
        }
        Ok(())
    }
}
