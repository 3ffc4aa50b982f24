//! The identity header: its one spelling, and the one way an app behind
//! the gateway reads it.
//!
//! Why in auth: the header *is* the gateway's statement of who the visitor
//! is. The proxy sets it (after stripping every client spelling), and the
//! built-in apps read it; both take the name and the reading rule from here,
//! so an app can never accept a spelling or a form the gateway would not
//! have written.

use http::HeaderMap;

use crate::chain::AccountName;

/// The header the gateway sets upstream (lowercase, as HTTP/2 requires).
pub const IDENTITY_HEADER: &str = "x-steem-account";

/// Why a request carries no usable identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoIdentity {
    #[error("no login: the request carries no X-Steem-Account header from the gateway")]
    Missing,
    #[error("more than one X-Steem-Account header: not from the gateway")]
    Repeated,
    #[error("the X-Steem-Account header is not a canonical account name")]
    Malformed,
}

/// The account from exactly one identity header holding a canonical
/// (lowercase, valid) account name — exactly what the gateway writes.
pub fn forwarded_account(headers: &HeaderMap) -> Result<AccountName, NoIdentity> {
    let mut values = headers.get_all(IDENTITY_HEADER).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(NoIdentity::Missing),
        (Some(_), Some(_)) => return Err(NoIdentity::Repeated),
        (Some(value), None) => value,
    };
    let raw = value.to_str().map_err(|_| NoIdentity::Malformed)?;
    match AccountName::parse(raw) {
        Ok(account) if account.as_str() == raw => Ok(account),
        _ => Err(NoIdentity::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(IDENTITY_HEADER, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn only_one_canonical_name_is_an_identity() {
        assert_eq!(
            forwarded_account(&headers(&["alice"])).unwrap().as_str(),
            "alice"
        );
        assert_eq!(forwarded_account(&headers(&[])), Err(NoIdentity::Missing));
        assert_eq!(
            forwarded_account(&headers(&["alice", "bob"])),
            Err(NoIdentity::Repeated)
        );
        for bad in ["Alice", " alice", "alice ", "al", "a_b", ""] {
            assert_eq!(
                forwarded_account(&headers(&[bad])),
                Err(NoIdentity::Malformed),
                "{bad:?}"
            );
        }
    }
}
