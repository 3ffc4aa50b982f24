//! OpenID authorization requests and token-endpoint client authentication,
//! from raw bytes: the first line is an `Authorization` header value, the
//! rest a query string / form body.
//!
//! Properties: nothing panics; an accepted request names a registered
//! client, one of ITS registered redirect URIs, the openid scope and (for
//! the public client) an S256 challenge; a refusal sent to a client goes
//! to a URI registered for it (never an unregistered one: invariant 6),
//! and every location built starts with that registered URI; client
//! authentication succeeds only with the registered secret, and never for
//! a public client that sends one.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use steemgate::config::{OidcClient, OidcConfig, SigningAlg};
use steemgate::oidc::client_auth::authenticate;
use steemgate::oidc::request::{AuthorizeError, parse};

const SECRET: &str = "app-secret-0123456789";

fn config() -> OidcConfig {
    let client = |id: &str, secret: Option<&str>, uris: &[&str]| {
        Arc::new(OidcClient {
            id: id.into(),
            name: id.into(),
            secret: secret.map(|s| s.as_bytes().to_vec()),
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            post_logout_redirect_uris: vec![],
            policies: vec![],
            signing_alg: SigningAlg::RS256,
            require_pkce: secret.is_none(),
        })
    };
    OidcConfig {
        issuer: "https://gate.example".into(),
        token_ttl: Duration::from_secs(300),
        clients: vec![
            client("app", Some(SECRET), &["https://app.example/cb", "https://app.example/cb?x=1"]),
            client("spa", None, &["http://127.0.0.1:9/cb", "com.example.app:/cb"]),
        ],
    }
}

fuzz_target!(|data: &[u8]| {
    let config = config();
    let (header, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(rest).into_owned().collect();
    let named = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    match parse(&config, &params) {
        Ok(request) => {
            assert!(request.client.redirect_uris.iter().any(|u| u == request.redirect.as_str()));
            assert_eq!(named("client_id"), Some(request.client.id.as_str()));
            assert!(request.scope.split(' ').any(|s| s == "openid"));
            if request.client.secret.is_none() || request.client.require_pkce {
                assert!(request.code_challenge.is_some());
            }
            let location = request.redirect.with_params(&[("code", "c"), ("state", "s")]);
            assert!(location.starts_with(request.redirect.as_str().split('?').next().unwrap_or("")));
        }
        Err(AuthorizeError::Redirect(error)) => {
            let client = config.client(named("client_id").unwrap_or("")).expect("a registered client");
            assert!(client.redirect_uris.iter().any(|u| u == error.redirect.as_str()));
            let location = error.location(&config.issuer);
            assert!(location.starts_with(error.redirect.as_str().split('?').next().unwrap_or("")));
        }
        Err(AuthorizeError::Page(_)) => {}
    }
    if let Ok(client) = authenticate(&config, header, &params) {
        match &client.secret {
            Some(secret) => {
                // Either the form's or the Basic header's secret was right.
                let posted = named("client_secret").map(str::as_bytes) == Some(secret.as_slice());
                assert!(posted || header.is_some());
            }
            // RFC 6749 §3.2: a parameter sent without a value counts as omitted.
            None => assert!(named("client_secret").is_none_or(str::is_empty)),
        }
    }
});
