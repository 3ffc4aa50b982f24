//! Who is calling the token endpoint: client authentication and PKCE.
//! Pure: no I/O, unit-tested.
//!
//! Why a file of its own: this is where a stolen code is stopped. A
//! confidential client proves itself with its secret (`client_secret_basic`
//! or `client_secret_post`, never both at once, RFC 6749 §2.3), compared in
//! constant time over digests so neither content nor length leaks; a public
//! client has no secret and is held to its PKCE verifier instead.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use blake2::digest::Digest;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::TokenError;
use crate::config::{OidcClient, OidcConfig};

/// Authenticates the caller of the token endpoint from its `Authorization`
/// header (if any) and form.
pub fn authenticate(
    config: &OidcConfig,
    authorization: Option<&[u8]>,
    form: &[(String, String)],
) -> Result<Arc<OidcClient>, TokenError> {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            // Sent without a value = omitted (RFC 6749 §3.2).
            .filter(|v| !v.is_empty())
    };
    let (client_id, secret, basic) = match authorization {
        Some(header) => {
            let (id, secret, raw_secret) = parse_basic(header).ok_or_else(|| {
                TokenError::invalid_client(
                    "the Authorization header is not valid Basic credentials",
                    true,
                )
            })?;
            if field("client_secret").is_some() {
                return Err(TokenError::invalid_request(
                    "use one client authentication method, not Basic and client_secret together",
                ));
            }
            if field("client_id").is_some_and(|form_id| form_id != id) {
                return Err(TokenError::invalid_client(
                    "client_id in the form differs from the Basic credentials",
                    true,
                ));
            }
            (id, Some((secret, Some(raw_secret))), true)
        }
        None => {
            let Some(id) = field("client_id") else {
                return Err(TokenError::invalid_client(
                    "no client authentication",
                    false,
                ));
            };
            (
                id.to_string(),
                field("client_secret").map(|s| (s.to_string(), None)),
                false,
            )
        }
    };
    let unknown = || TokenError::invalid_client("unknown client or wrong secret", basic);
    let client = config.client(&client_id).ok_or_else(unknown)?;
    match (&client.secret, secret) {
        // RFC 6749 §2.3.1 form-encodes Basic credentials, but many clients
        // do not: either reading of the secret may match (both are always
        // compared, so the time says nothing about which).
        (Some(expected), Some((given, raw)))
            if secrets_equal(expected, given.as_bytes())
                | raw
                    .as_ref()
                    .is_some_and(|raw| secrets_equal(expected, raw.as_bytes())) => {}
        (Some(_), _) => return Err(unknown()),
        // A public client proves nothing here; PKCE holds it to its code.
        (None, None) => {}
        (None, Some(_)) => {
            return Err(TokenError::invalid_client(
                "this client is registered as public (no secret)",
                basic,
            ));
        }
    }
    Ok(Arc::clone(client))
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1):
/// the id, the decoded secret and the secret as sent.
fn parse_basic(header: &[u8]) -> Option<(String, String, String)> {
    let text = std::str::from_utf8(header).ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?, secret.to_string()))
}

/// Constant time in content and length: both sides are hashed first.
fn secrets_equal(expected: &[u8], given: &[u8]) -> bool {
    let a = blake2::Blake2b512::digest(expected);
    let b = blake2::Blake2b512::digest(given);
    a.ct_eq(&b).into()
}

/// Whether `verifier` answers the S256 `challenge` (RFC 7636 §4.6).
pub fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    if !super::request::is_pkce_value(verifier) {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        crate::oidc::test_config("s3cret:with/odd chars", "https://app.example/cb")
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
        )
    }

    #[test]
    fn basic_and_post_authenticate_confidential_clients() {
        let cfg = config();
        let header = basic("app", "s3cret:with/odd chars");
        assert_eq!(
            authenticate(&cfg, Some(header.as_bytes()), &[]).unwrap().id,
            "app"
        );
        // A client that does not form-encode its Basic credentials.
        let raw = format!("Basic {}", STANDARD.encode("app:s3cret:with/odd chars"));
        assert_eq!(
            authenticate(&cfg, Some(raw.as_bytes()), &[]).unwrap().id,
            "app"
        );
        let post = form(&[
            ("client_id", "app"),
            ("client_secret", "s3cret:with/odd chars"),
        ]);
        assert_eq!(authenticate(&cfg, None, &post).unwrap().id, "app");
    }

    #[test]
    fn wrong_missing_or_doubled_credentials_are_refused() {
        let cfg = config();
        let wrong = basic("app", "s3cret:with/odd charz");
        let e = authenticate(&cfg, Some(wrong.as_bytes()), &[]).unwrap_err();
        assert_eq!(
            (e.status, e.error, e.basic_challenge),
            (401, "invalid_client", true)
        );
        let e = authenticate(&cfg, None, &form(&[("client_id", "app")])).unwrap_err();
        assert_eq!((e.status, e.error), (401, "invalid_client"));
        let e = authenticate(
            &cfg,
            None,
            &form(&[("client_id", "ghost"), ("client_secret", "x")]),
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_client");
        let e = authenticate(&cfg, None, &[]).unwrap_err();
        assert_eq!(e.error, "invalid_client");
        let good = basic("app", "s3cret:with/odd chars");
        let e = authenticate(
            &cfg,
            Some(good.as_bytes()),
            &form(&[("client_secret", "s3cret:with/odd chars")]),
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_request");
        let e =
            authenticate(&cfg, Some(good.as_bytes()), &form(&[("client_id", "spa")])).unwrap_err();
        assert_eq!(e.error, "invalid_client");
        let e = authenticate(&cfg, Some(b"Bearer abc"), &[]).unwrap_err();
        assert_eq!(e.error, "invalid_client");
    }

    #[test]
    fn public_clients_carry_no_secret() {
        let cfg = config();
        assert_eq!(
            authenticate(&cfg, None, &form(&[("client_id", "spa")]))
                .unwrap()
                .id,
            "spa"
        );
        let e = authenticate(
            &cfg,
            None,
            &form(&[("client_id", "spa"), ("client_secret", "x")]),
        )
        .unwrap_err();
        assert_eq!(e.error, "invalid_client");
    }

    #[test]
    fn pkce_s256_of_rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(
            challenge,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl"
        ));
        assert!(!pkce_matches(challenge, challenge));
        assert!(!pkce_matches(challenge, "short"));
    }
}
