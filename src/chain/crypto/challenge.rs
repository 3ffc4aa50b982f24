//! The text a visitor signs for the zero-fee (sign-buffer) login.
//!
//! Why: a bare random string signed with a posting key could be replayed on
//! any other site that asks the same account to sign it. The challenge
//! therefore names the site, the chain, the account, a one-time nonce and
//! an expiry, in a fixed human-readable layout the wallet shows verbatim:
//!
//! ```text
//! steemgate login
//! site: example.com
//! chain: steem
//! account: alice
//! nonce: 2f1c7a3e9b5d4c60a8e1f2b3c4d5e6f7
//! expires: 2026-01-01T00:10:00Z
//! ```
//!
//! The parser is strict (exact lines, order, `\n` separators, lowercase,
//! canonical forms; it re-renders and compares) so the verifier can compare
//! every field with what the server stored and nothing else can hide in the
//! signed bytes.

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

use crate::chain::{AccountName, ChainName};
use crate::random::os_random;

const TITLE: &str = "steemgate login";
const EXPIRES_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
/// Random bytes in a freshly minted nonce (hex doubles it).
const NONCE_BYTES: usize = 16;

/// Why a challenge could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("challenge must be exactly 6 lines starting with {TITLE:?}")]
    Layout,
    #[error("challenge line {line} must be \"{key}: <value>\"")]
    Line { line: usize, key: &'static str },
    #[error("site {0:?} is not a lowercase host name with an optional port")]
    Site(String),
    #[error("chain {0:?} is not steem or hive")]
    Chain(String),
    #[error("account {0:?} is not a canonical account name")]
    Account(String),
    #[error("nonce must be 32 to 64 lowercase hex characters")]
    Nonce,
    #[error("expiry {0:?} is not YYYY-MM-DDTHH:MM:SSZ")]
    Expires(String),
    #[error("challenge is not in canonical form")]
    NotCanonical,
    #[error("the operating system's random source failed")]
    Randomness,
}

/// A parsed or freshly built sign-buffer challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginChallenge {
    site: String,
    chain: ChainName,
    account: AccountName,
    nonce: String,
    expires: OffsetDateTime,
}

fn valid_site(site: &str) -> bool {
    let (host, port) = match site.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (site, None),
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

fn valid_nonce(nonce: &str) -> bool {
    (32..=64).contains(&nonce.len())
        && nonce.len().is_multiple_of(2)
        && nonce
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl LoginChallenge {
    /// A new challenge with a fresh random nonce. The site (the request's
    /// Host) is lowercased; the expiry is cut to whole seconds.
    pub fn new(
        site: &str,
        chain: ChainName,
        account: AccountName,
        expires: OffsetDateTime,
    ) -> Result<Self, ChallengeError> {
        let mut random = [0u8; NONCE_BYTES];
        os_random(&mut random).map_err(|_| ChallengeError::Randomness)?;
        Self::with_nonce(site, chain, account, &hex::encode(random), expires)
    }

    /// A challenge with a given nonce (the server's stored copy, tests).
    pub fn with_nonce(
        site: &str,
        chain: ChainName,
        account: AccountName,
        nonce: &str,
        expires: OffsetDateTime,
    ) -> Result<Self, ChallengeError> {
        let site = site.to_ascii_lowercase();
        if !valid_site(&site) {
            return Err(ChallengeError::Site(site));
        }
        if !valid_nonce(nonce) {
            return Err(ChallengeError::Nonce);
        }
        let expires = expires
            .to_offset(time::UtcOffset::UTC)
            .replace_nanosecond(0)
            .map_err(|_| ChallengeError::Expires(expires.to_string()))?;
        if expires.format(EXPIRES_FORMAT).is_err() || expires.year() < 1970 || expires.year() > 9999
        {
            return Err(ChallengeError::Expires(expires.to_string()));
        }
        Ok(LoginChallenge {
            site,
            chain,
            account,
            nonce: nonce.to_string(),
            expires,
        })
    }

    /// Parses the exact text a wallet signed.
    pub fn parse(text: &str) -> Result<Self, ChallengeError> {
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() != 6 || lines[0] != TITLE {
            return Err(ChallengeError::Layout);
        }
        let keys = ["site", "chain", "account", "nonce", "expires"];
        let mut values = [""; 5];
        for (index, key) in keys.iter().enumerate() {
            let line = lines[index + 1];
            let value = line
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(": "))
                .filter(|v| !v.is_empty() && v.trim() == *v)
                .ok_or(ChallengeError::Line {
                    line: index + 2,
                    key,
                })?;
            values[index] = value;
        }
        let [site, chain, account, nonce, expires] = values;
        if !valid_site(site) {
            return Err(ChallengeError::Site(site.to_string()));
        }
        let chain = match chain {
            "steem" => ChainName::Steem,
            "hive" => ChainName::Hive,
            other => return Err(ChallengeError::Chain(other.to_string())),
        };
        let account_name = AccountName::parse(account)
            .ok()
            .filter(|name| name.as_str() == account)
            .ok_or_else(|| ChallengeError::Account(account.to_string()))?;
        let expires_at = time::PrimitiveDateTime::parse(expires, EXPIRES_FORMAT)
            .map_err(|_| ChallengeError::Expires(expires.to_string()))?
            .assume_utc();
        let parsed = Self::with_nonce(site, chain, account_name, nonce, expires_at)?;
        if parsed.to_message() != text {
            return Err(ChallengeError::NotCanonical);
        }
        Ok(parsed)
    }

    /// The exact text to hand to `requestSignBuffer`.
    pub fn to_message(&self) -> String {
        let expires = self.expires.format(EXPIRES_FORMAT).unwrap_or_default();
        format!(
            "{TITLE}\nsite: {}\nchain: {}\naccount: {}\nnonce: {}\nexpires: {expires}",
            self.site,
            self.chain.as_str(),
            self.account.as_str(),
            self.nonce
        )
    }

    /// `sha256(message bytes)`: what the wallet signs.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.to_message().as_bytes()).into()
    }

    /// True once `now` has reached the expiry.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires
    }

    pub fn site(&self) -> &str {
        &self.site
    }
    pub fn chain(&self) -> ChainName {
        self.chain
    }
    pub fn account(&self) -> &AccountName {
        &self.account
    }
    pub fn nonce(&self) -> &str {
        &self.nonce
    }
    pub fn expires(&self) -> OffsetDateTime {
        self.expires
    }
}
