//! `oidc:` — steemgate as an OpenID Provider ("Sign in with Steem/Hive").
//!
//! Why a file of its own: the clients an operator registers are the trust
//! anchors of every OpenID flow. Exact redirect URIs, secrets of a useful
//! length, a signing algorithm the relying party expects: each is checked
//! here once, with the key path of the mistake, so the provider
//! (`crate::oidc`) only ever sees ready values and never re-validates.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::scalar::{HumanDuration, OneOrMany};
use super::{ConfigError, Policy, duration_in, invalid, resolve_policy_names};

/// The YAML `oidc:` section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcInput {
    pub issuer: String,
    pub token_ttl: Option<HumanDuration>,
    pub clients: Vec<OidcClientInput>,
}

/// One `oidc.clients[i]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcClientInput {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub policy: Option<OneOrMany>,
    pub id_token_signed_response_alg: Option<SigningAlg>,
    pub name: Option<String>,
    /// Refuse authorization requests without PKCE (always so for public
    /// clients). Off by default for confidential clients: some apps
    /// (Gitea) send neither PKCE nor a nonce.
    pub require_pkce: Option<bool>,
}

/// How ID tokens for a client are signed (its registration's
/// `id_token_signed_response_alg`). RS256 is the default: OpenID Connect
/// Core requires every provider to offer it and most relying parties
/// expect it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }
}

/// The checked `oidc:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct OidcConfig {
    /// The origin relying parties know the provider by, without a trailing
    /// slash (`https://auth.example.com`): discovery lives at
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// Lifetime of ID and access tokens.
    pub token_ttl: Duration,
    pub clients: Vec<Arc<OidcClient>>,
}

impl OidcConfig {
    pub fn client(&self, client_id: &str) -> Option<&Arc<OidcClient>> {
        self.clients.iter().find(|c| c.id == client_id)
    }
}

/// A registered relying party.
#[derive(Clone, PartialEq)]
pub struct OidcClient {
    pub id: String,
    /// Shown to visitors ("Back to Grafana").
    pub name: String,
    /// `None`: a public client, which must use PKCE.
    pub secret: Option<Vec<u8>>,
    /// Compared exactly, byte for byte.
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Every one must pass for the account to be let in.
    pub policies: Vec<Arc<Policy>>,
    pub signing_alg: SigningAlg,
    /// Authorization requests must carry an S256 `code_challenge` (true
    /// for every public client).
    pub require_pkce: bool,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "(redacted)"))
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("policies", &self.policies.len())
            .field("signing_alg", &self.signing_alg)
            .field("require_pkce", &self.require_pkce)
            .finish()
    }
}

/// Shortest accepted client secret.
pub const MIN_CLIENT_SECRET_LEN: usize = 16;
/// Most registered clients (each is scanned on a request).
const MAX_CLIENTS: usize = 256;
/// Longest redirect URI accepted in the config (and so in a request).
pub const MAX_REDIRECT_URI_LEN: usize = 2048;

/// Checks `oidc:`; `policies` are the config's named policies.
pub(super) fn validate_oidc(
    input: OidcInput,
    base: &Path,
    policies: &[Arc<Policy>],
    warnings: &mut Vec<String>,
) -> Result<OidcConfig, ConfigError> {
    let issuer = check_issuer(&input.issuer).map_err(|e| invalid("oidc.issuer", e))?;
    if issuer.starts_with("http:") {
        warnings.push(format!(
            "oidc.issuer: {issuer} is plain http (accepted for a loopback host only): relying parties in production need https"
        ));
    }
    let token_ttl = duration_in(
        "oidc.token_ttl",
        input.token_ttl.map_or(Duration::from_secs(300), |d| d.0),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    )?;
    if input.clients.is_empty() {
        return Err(invalid(
            "oidc.clients",
            "register at least one client (client_id, redirect_uris)",
        ));
    }
    if input.clients.len() > MAX_CLIENTS {
        return Err(invalid(
            "oidc.clients",
            format!("at most {MAX_CLIENTS} clients"),
        ));
    }
    let mut clients: Vec<Arc<OidcClient>> = Vec::with_capacity(input.clients.len());
    for (i, c) in input.clients.into_iter().enumerate() {
        let key = |field: &str| format!("oidc.clients[{i}].{field}");
        let id = c.client_id.trim().to_string();
        if !valid_client_id(&id) {
            return Err(invalid(
                &key("client_id"),
                "1 to 128 of the characters A-Z a-z 0-9 . _ ~ -",
            ));
        }
        if let Some(first) = clients.iter().position(|other| other.id == id) {
            return Err(invalid(
                &key("client_id"),
                format!("{id:?} is already registered by oidc.clients[{first}]"),
            ));
        }
        let secret = match (c.client_secret, c.client_secret_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    &key("client_secret"),
                    "set client_secret or client_secret_file, not both",
                ));
            }
            (Some(secret), None) => Some((secret.trim().as_bytes().to_vec(), key("client_secret"))),
            (None, Some(file)) => {
                let path = base.join(&file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    invalid(
                        &key("client_secret_file"),
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                Some((text.trim().as_bytes().to_vec(), key("client_secret_file")))
            }
            (None, None) => None,
        };
        let secret = match secret {
            Some((secret, source)) if secret.len() < MIN_CLIENT_SECRET_LEN => {
                return Err(invalid(
                    &source,
                    format!(
                        "a client secret needs at least {MIN_CLIENT_SECRET_LEN} characters (make one with `steemgate secret`)"
                    ),
                ));
            }
            Some((secret, _)) => Some(secret),
            None => None,
        };
        if c.redirect_uris.is_empty() {
            return Err(invalid(
                &key("redirect_uris"),
                "register at least one redirect URI (compared exactly)",
            ));
        }
        let redirect_uris = check_uris(&key("redirect_uris"), c.redirect_uris)?;
        let post_logout_redirect_uris = check_uris(
            &key("post_logout_redirect_uris"),
            c.post_logout_redirect_uris,
        )?;
        let policies = match c.policy {
            None => Vec::new(),
            Some(named) => resolve_policy_names(&key("policy"), named, policies)?,
        };
        if secret.is_none() && c.require_pkce == Some(false) {
            return Err(invalid(
                &key("require_pkce"),
                "a public client (no secret) always needs PKCE: drop `require_pkce: false` or give the client a secret",
            ));
        }
        let require_pkce = secret.is_none() || c.require_pkce.unwrap_or(false);
        let name = match c.name {
            Some(name) if name.trim().is_empty() || name.chars().any(char::is_control) => {
                return Err(invalid(
                    &key("name"),
                    "a short printable name such as Grafana",
                ));
            }
            Some(name) => name.trim().to_string(),
            None => id.clone(),
        };
        clients.push(Arc::new(OidcClient {
            id,
            name,
            secret,
            redirect_uris,
            post_logout_redirect_uris,
            policies,
            signing_alg: c.id_token_signed_response_alg.unwrap_or(SigningAlg::RS256),
            require_pkce,
        }));
    }
    Ok(OidcConfig {
        issuer,
        token_ttl,
        clients,
    })
}

fn valid_client_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}

/// The issuer: an origin (`https://host[:port]`), no path, query,
/// fragment or credentials; plain http only for a loopback host.
fn check_issuer(raw: &str) -> Result<String, String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| format!("{raw:?} is not a URL such as https://auth.example.com: {e}"))?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(
            "must be an origin without path, query or fragment, such as https://auth.example.com"
                .to_string(),
        );
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".to_string());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(
                "must use https (plain http is accepted only for a loopback host, for tests)"
                    .to_string(),
            );
        }
        other => return Err(format!("must use https, not {other}:")),
    }
    Ok(url.origin().ascii_serialization())
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Redirect URIs as registered: absolute, no fragment (RFC 6749 §3.1.2),
/// https, http on a loopback host, or a private-use scheme of a native app
/// (`com.example.app:/callback`, RFC 8252 §7.1). Kept exactly as written.
fn check_uris(key: &str, uris: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut checked: Vec<String> = Vec::with_capacity(uris.len());
    for (j, uri) in uris.into_iter().enumerate() {
        let item = format!("{key}[{j}]");
        if uri.len() > MAX_REDIRECT_URI_LEN || uri.chars().any(|c| c.is_control() || c == ' ') {
            return Err(invalid(
                &item,
                format!("at most {MAX_REDIRECT_URI_LEN} characters, no spaces"),
            ));
        }
        let url = url::Url::parse(&uri)
            .map_err(|e| invalid(&item, format!("{uri:?} is not an absolute URL: {e}")))?;
        if url.fragment().is_some() {
            return Err(invalid(&item, "must not contain a fragment (#…)"));
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(invalid(
                    &item,
                    "must use https (plain http only for a loopback host)",
                ));
            }
            scheme if scheme.contains('.') => {}
            scheme => {
                return Err(invalid(
                    &item,
                    format!(
                        "scheme {scheme}: is neither https nor a private-use scheme such as com.example.app: (RFC 8252)"
                    ),
                ));
            }
        }
        if checked.contains(&uri) {
            return Err(invalid(&item, "listed twice"));
        }
        checked.push(uri);
    }
    Ok(checked)
}
