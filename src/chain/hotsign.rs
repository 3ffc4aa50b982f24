//! Hot-sign links: a URL of the chain's usual signing service (SteemLogin on
//! Steem, Hive Signer on Hive) that asks the visitor to sign one operation.
//!
//! Why in `chain`: the login page links a transfer (`proxy::hotsign`) and
//! the stale-follows report links an unfollow (`report`); both must encode
//! values exactly the same way (a memo or a follow json mangled on its way
//! to the wallet is an operation that never happens), and `report` may not
//! use `proxy`. Every value is percent-encoded except RFC 3986 unreserved
//! characters, so a space is `%20` (not `+`) and `#`, `&`, `=` stay inside
//! their parameter. Following a link is the visitor's choice; nothing here
//! talks to the service.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::ChainName;
use super::crypto::CustomJsonOperation;

/// Everything but RFC 3986 unreserved characters is encoded.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The signing service of `chain`, without a trailing slash.
pub fn signer_base(chain: ChainName) -> &'static str {
    match chain {
        ChainName::Hive => "https://hivesigner.com",
        ChainName::Steem => "https://steemlogin.com",
    }
}

/// `value` percent-encoded for a query parameter.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// The link that asks to sign a transfer (`amount` as `"0.001 STEEM"`).
pub fn transfer_url(chain: ChainName, to: &str, amount: &str, memo: &str) -> String {
    format!(
        "{}/sign/transfer?to={}&amount={}&memo={}",
        signer_base(chain),
        encode(to),
        encode(amount),
        encode(memo)
    )
}

/// The link that asks to sign one `custom_json` (the account lists as JSON
/// arrays, as both services expect them).
pub fn custom_json_url(chain: ChainName, op: &CustomJsonOperation) -> String {
    // Serializing lists of strings cannot fail.
    let list = |names: &[String]| serde_json::to_string(names).unwrap_or_default();
    format!(
        "{}/sign/custom-json?required_auths={}&required_posting_auths={}&id={}&json={}",
        signer_base(chain),
        encode(&list(&op.required_auths)),
        encode(&list(&op.required_posting_auths)),
        encode(&op.id),
        encode(&op.json)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::AccountName;

    #[test]
    fn transfer_links_encode_every_value_exactly() {
        assert_eq!(
            transfer_url(ChainName::Hive, "gate-test", "0.001 HIVE", "sg-AB12"),
            "https://hivesigner.com/sign/transfer?to=gate-test&amount=0.001%20HIVE&memo=sg-AB12"
        );
        let url = transfer_url(ChainName::Steem, "gate-test", "0.001 STEEM", "a b&c=#d+é");
        assert_eq!(
            url,
            "https://steemlogin.com/sign/transfer?to=gate-test&amount=0.001%20STEEM&memo=a%20b%26c%3D%23d%2B%C3%A9"
        );
        let parsed = url::Url::parse(&url).unwrap();
        let memo = parsed.query_pairs().find(|(k, _)| k == "memo").unwrap().1;
        assert_eq!(memo, "a b&c=#d+é");
    }

    #[test]
    fn the_unfollow_link_carries_the_exact_operation() {
        let op = crate::chain::follow::unfollow_operation(
            &AccountName::parse("demo").unwrap(),
            &AccountName::parse("kalo-art").unwrap(),
        );
        let url = custom_json_url(ChainName::Steem, &op);
        assert!(
            url.starts_with("https://steemlogin.com/sign/custom-json?"),
            "{url}"
        );
        let parsed = url::Url::parse(&url).unwrap();
        let get = |key: &str| {
            parsed
                .query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
                .unwrap()
        };
        assert_eq!(get("required_auths"), "[]");
        assert_eq!(get("required_posting_auths"), r#"["demo"]"#);
        assert_eq!(get("id"), "follow");
        assert_eq!(get("json"), op.json);
        assert!(
            custom_json_url(ChainName::Hive, &op)
                .starts_with("https://hivesigner.com/sign/custom-json?")
        );
    }
}
