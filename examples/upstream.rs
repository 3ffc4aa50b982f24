//! A tiny app to put behind steemgate: it greets the account the gateway
//! proved, read from the `X-Steem-Account` request header.
//!
//! Why it exists: it is the pattern every upstream should follow, in the
//! fewest lines. Run it with
//!
//! ```sh
//! cargo run --example upstream -- --listen 127.0.0.1:3000
//! ```
//!
//! and route to it, e.g. `{path: /, upstream: "http://127.0.0.1:3000", auth: required}`.
//!
//! The header is only true when the request came through the gateway, which
//! removes every client-sent spelling and sets exactly one value. So the app
//! must be reachable ONLY through the gateway: bind it to loopback (as
//! above) or firewall its port. It refuses a request carrying more than one
//! value (that never comes from the gateway) and treats a missing header as
//! an anonymous visitor (a `public` or `optional` route).
//!
//! Stronger: with `--gateway URL` (the gateway's public URL) it trusts an
//! account only with a valid `X-Steem-Assertion` (routes with
//! `assertion: true`): a JWT signed by the gateway, verified against the
//! keys at `URL/.steemgate/jwks.json` (refetched when a token names a key it
//! has not seen: the gateway rotates keys), for this host, unexpired, whose
//! `sub` is the `X-Steem-Account` value. Then a request that bypassed the
//! gateway cannot claim an account.
//! `tests/examples.rs` runs it behind the real gateway, both ways.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::sync::RwLock;

#[derive(Parser)]
#[command(about = "A tiny upstream app that greets the X-Steem-Account steemgate forwards")]
struct Args {
    /// Where to listen; keep it on loopback (or firewalled) so only the gateway reaches it.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The gateway's URL (e.g. http://127.0.0.1:8080): require and verify
    /// X-Steem-Assertion against its JWKS.
    #[arg(long)]
    gateway: Option<url::Url>,
}

/// Verifies assertions against the gateway's JWKS, cached.
struct Verifier {
    jwks_url: url::Url,
    http: reqwest::Client,
    keys: RwLock<JwkSet>,
}

impl Verifier {
    fn new(gateway: &url::Url) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Self {
            jwks_url: gateway.join("/.steemgate/jwks.json")?,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?,
            keys: RwLock::new(JwkSet::default()),
        })
    }

    /// The key named `kid`, refetching the JWKS once if it is unknown.
    async fn key(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(jwk) = self.keys.read().await.find(kid) {
            return DecodingKey::from_jwk(jwk).ok();
        }
        let fresh: JwkSet = self
            .http
            .get(self.jwks_url.clone())
            .send()
            .await
            .ok()?
            .error_for_status()
            .ok()?
            .json()
            .await
            .ok()?;
        let key = fresh
            .find(kid)
            .and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
        *self.keys.write().await = fresh;
        key
    }

    /// Whether `token` is the gateway's assertion that `account` visits `host`.
    async fn confirms(&self, token: &str, account: &str, host: &str) -> bool {
        let Ok(header) = jsonwebtoken::decode_header(token) else {
            return false;
        };
        let (Algorithm::EdDSA, Some(kid)) = (header.alg, header.kid) else {
            return false;
        };
        let Some(key) = self.key(&kid).await else {
            return false;
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[host]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        validation.sub = Some(account.to_string());
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).is_ok()
    }
}

/// The request's host without port (the assertion's audience).
fn host_of(headers: &HeaderMap) -> Option<String> {
    let host = headers.get("host")?.to_str().ok()?;
    let url = url::Url::parse(&format!("http://{host}/")).ok()?;
    Some(
        url.host_str()?
            .trim_matches(['[', ']'])
            .to_ascii_lowercase(),
    )
}

/// Who the gateway says is visiting.
enum Visitor {
    Anonymous,
    Account(String),
    /// Several values, or not an account name: not from the gateway.
    Refused(&'static str),
}

fn visitor(headers: &HeaderMap) -> Visitor {
    // `get_all` matches the name in any case; other spellings
    // (X_Steem_Account, ...) are different headers and are ignored.
    let mut values = headers.get_all("x-steem-account").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key("x-steem-account") {
            true => Visitor::Refused("more than one X-Steem-Account value"),
            false => Visitor::Anonymous,
        };
    };
    match value.to_str() {
        Ok(name) if is_account_name(name) => Visitor::Account(name.to_string()),
        _ => Visitor::Refused("X-Steem-Account is not one account name"),
    }
}

/// A sanity check only (the gateway already validated the name): 3 to 16 of
/// `a-z 0-9 . -`. It also rejects a comma-joined list.
fn is_account_name(name: &str) -> bool {
    (3..=16).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

async fn greet(
    State(verifier): State<Option<Arc<Verifier>>>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    match visitor(&headers) {
        Visitor::Account(account) => match verifier {
            None => (StatusCode::OK, format!("Hello @{account}\n")),
            Some(verifier) => {
                let mut tokens = headers.get_all("x-steem-assertion").iter();
                let token = match (tokens.next(), tokens.next()) {
                    (Some(token), None) => token.to_str().unwrap_or_default(),
                    _ => "",
                };
                let host = host_of(&headers).unwrap_or_default();
                if verifier.confirms(token, &account, &host).await {
                    (StatusCode::OK, format!("Hello @{account} (verified)\n"))
                } else {
                    (
                        StatusCode::UNAUTHORIZED,
                        "refused: no valid X-Steem-Assertion for this account\n".to_string(),
                    )
                }
            }
        },
        Visitor::Anonymous => (StatusCode::OK, "Hello, anonymous visitor\n".to_string()),
        Visitor::Refused(why) => (StatusCode::BAD_REQUEST, format!("refused: {why}\n")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let verifier = args
        .gateway
        .as_ref()
        .map(Verifier::new)
        .transpose()?
        .map(Arc::new);
    println!("upstream listening on http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(greet).with_state(verifier);
    axum::serve(listener, app).await?;
    Ok(())
}
