//! steemgate as an OpenID Provider: "Sign in with Steem/Hive" for any app
//! that speaks OpenID Connect.
//!
//! Why a module of its own: apps that cannot sit behind a header-trusting
//! proxy (Grafana, Gitea, oauth2-proxy, …) accept a signed ID token from a
//! provider they discover. The visitor logs in exactly as on the gateway
//! (memo transfer, wallet signature, signed transfer); this module turns
//! that login into the authorization code flow of OpenID Connect Core 1.0
//! with the OAuth 2.0 Security BCP's hardening: codes that are single-use,
//! short-lived, bound to client, redirect URI, PKCE challenge and gateway
//! session, and whose replay revokes what they issued; exact redirect URIs;
//! `iss` in every authorization response (RFC 9207).
//!
//! It holds no HTTP: `proxy::oidc` reads requests and renders pages, and
//! asks this module for decisions. State lives in the store as grants
//! (`Store::put_grant`) named by a BLAKE2b digest of the code or token, so
//! a reader of the store cannot redeem what it sees. Signing keys rotate in
//! the store like the assertion keys ([`crate::auth::keyring`]), one ring
//! per algorithm a client uses, and every instance signs with the same key.

pub mod client_auth;
pub mod request;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use blake2::digest::Digest;
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::keyring::{KeyError, SigningKeys};
use crate::clock::UnixTime;
use crate::config::{OidcClient, OidcConfig, SigningAlg};
use crate::store::{LoginMethod, SessionKey, SharedStore, StoreError};
pub use request::{AuthRequest, AuthorizeError, ClientError, RegisteredRedirect};

/// The endpoints, as discovery names them (issuer + path).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const AUTHORIZE_PATH: &str = "/.steemgate/oidc/authorize";
pub const TOKEN_PATH: &str = "/.steemgate/oidc/token";
pub const USERINFO_PATH: &str = "/.steemgate/oidc/userinfo";
pub const JWKS_PATH: &str = "/.steemgate/oidc/jwks.json";
pub const LOGOUT_PATH: &str = "/.steemgate/oidc/logout";

/// How long an authorization request waits for the visitor's login.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// How long an authorization code may be redeemed (RFC 6749 §4.1.2
/// recommends at most 10 minutes; a client redeems within seconds).
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// The logged-in visitor an authorization is issued for.
#[derive(Debug, Clone)]
pub struct Login {
    pub account: String,
    /// The gateway session: a code is only redeemable while it is logged in
    /// as `account`, and so is the access token.
    pub session: SessionKey,
    pub auth_time: UnixTime,
    pub method: LoginMethod,
}

/// What a code stands for, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    account: String,
    session: String,
    auth_time: UnixTime,
    method: LoginMethod,
}

/// What an access token stands for, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessGrant {
    client_id: String,
    account: String,
    scope: String,
    session: String,
}

/// The ID token's claims (OpenID Core §2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub iss: String,
    /// Stable and chain-qualified: `steem:alice`.
    pub sub: String,
    pub aud: String,
    pub exp: UnixTime,
    pub iat: UnixTime,
    pub auth_time: UnixTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub preferred_username: String,
    /// `steem` or `hive`.
    pub chain: String,
    /// How the visitor proved the account: `swk` (RFC 8176: proof of
    /// possession of a software key) and the login method.
    pub amr: Vec<String>,
}

/// A refusal at the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
    /// Answer `WW-Authenticate: Basic` (the client used Basic).
    pub basic_challenge: bool,
}

impl TokenError {
    fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
        }
    }
    pub fn invalid_client(description: &str, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(401, "invalid_client", description)
        }
    }
    pub fn invalid_request(description: &str) -> Self {
        Self::new(400, "invalid_request", description)
    }
    fn invalid_grant(description: &str) -> Self {
        Self::new(400, "invalid_grant", description)
    }
    /// A store or signing failure: nothing is issued (fail closed).
    fn unavailable(what: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %what, "OpenID token endpoint: cannot issue");
        Self::new(
            503,
            "temporarily_unavailable",
            "the provider cannot issue tokens right now; try again shortly",
        )
    }
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// Why a bearer token is not accepted at userinfo.
#[derive(Debug)]
pub enum BearerError {
    /// Unknown, expired, revoked, or its session logged out: 401.
    Invalid,
    /// The store failed: 503, never a guess.
    Unavailable(StoreError),
}

/// The provider: one per process (rebuilt by a reload that changes `oidc:`).
pub struct Provider {
    config: OidcConfig,
    store: SharedStore,
    chain: String,
    /// One ring per algorithm some client uses.
    keys: Vec<SigningKeys>,
}

impl Provider {
    /// `chain` is `steem` or `hive`; keys rotate every `rotate_every`.
    pub fn new(
        config: OidcConfig,
        store: SharedStore,
        chain: &str,
        rotate_every: Duration,
    ) -> Self {
        // RS256 always (Discovery 1.0 §3: it MUST be listed, and its keys
        // stay published when a reload moves every client to another alg).
        let keys = SigningAlg::ALL
            .into_iter()
            .filter(|alg| {
                *alg == SigningAlg::RS256 || config.clients.iter().any(|c| c.signing_alg == *alg)
            })
            .map(|alg| {
                SigningKeys::new(
                    Arc::clone(&store),
                    &format!("oidc-signing-keys-{}", alg.as_str()),
                    alg,
                    rotate_every,
                )
            })
            .collect();
        Self {
            config,
            store,
            chain: chain.to_string(),
            keys,
        }
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// The stable subject of an account: `steem:alice`.
    pub fn subject(&self, account: &str) -> String {
        format!("{}:{account}", self.chain)
    }

    /// The discovery document (OpenID Connect Discovery 1.0 §3).
    pub fn discovery(&self) -> serde_json::Value {
        let at = |path: &str| format!("{}{path}", self.config.issuer);
        let algs: Vec<&str> = self.keys.iter().map(|k| k.alg().as_str()).collect();
        json!({
            "issuer": self.config.issuer,
            "authorization_endpoint": at(AUTHORIZE_PATH),
            "token_endpoint": at(TOKEN_PATH),
            "userinfo_endpoint": at(USERINFO_PATH),
            "jwks_uri": at(JWKS_PATH),
            "end_session_endpoint": at(LOGOUT_PATH),
            "scopes_supported": ["openid", "profile"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": algs,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "preferred_username", "name", "profile", "chain"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "authorization_response_iss_parameter_supported": true,
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })
    }

    /// The public keys of every ring in use, newest first per ring.
    pub async fn jwks(&self, now: UnixTime) -> Result<JwkSet, KeyError> {
        let mut keys = Vec::new();
        for ring in &self.keys {
            keys.extend(ring.key_ring_at(now).await?.jwks().keys);
        }
        Ok(JwkSet { keys })
    }

    /// Checks an authorization request (see [`request::parse`]).
    pub fn parse_authorization(
        &self,
        params: &[(String, String)],
    ) -> Result<AuthRequest, AuthorizeError> {
        request::parse(&self.config, params)
    }

    /// Issues a code for `login` and answers where to send the visitor.
    pub async fn issue_code(
        &self,
        request: &AuthRequest,
        login: &Login,
        now: UnixTime,
    ) -> Result<String, IssueError> {
        let code = random_token().map_err(IssueError::Random)?;
        let grant = CodeGrant {
            client_id: request.client.id.clone(),
            redirect_uri: request.redirect.as_str().to_string(),
            code_challenge: request.code_challenge.clone(),
            nonce: request.nonce.clone(),
            scope: request.scope.clone(),
            account: login.account.clone(),
            session: login.session.as_str().to_string(),
            auth_time: login.auth_time,
            method: login.method,
        };
        let value = serde_json::to_string(&grant).map_err(|e| IssueError::Random(e.to_string()))?;
        self.store
            .put_grant(
                &grant_name("code", &code),
                &value,
                now.saturating_add(CODE_TTL.as_secs()),
            )
            .await
            .map_err(IssueError::Store)?;
        tracing::info!(
            target: "steemgate::audit",
            client = %request.client.id,
            account = %login.account,
            "OpenID authorization code issued"
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            params.push(("state", state));
        }
        params.push(("iss", self.issuer()));
        Ok(request.redirect.with_params(&params))
    }

    /// The token endpoint: authenticates the client, redeems the code once
    /// and answers the token response.
    pub async fn exchange(
        &self,
        authorization: Option<&[u8]>,
        form: &[(String, String)],
        now: UnixTime,
    ) -> Result<(Arc<OidcClient>, serde_json::Value), TokenError> {
        for name in [
            "grant_type",
            "code",
            "redirect_uri",
            "code_verifier",
            "client_id",
            "client_secret",
        ] {
            if form.iter().filter(|(k, _)| k == name).count() > 1 {
                return Err(TokenError::invalid_request(&format!(
                    "the parameter {name} appears more than once"
                )));
            }
        }
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                // Sent without a value = omitted (RFC 6749 §3.2).
                .filter(|v| !v.is_empty())
        };
        // Authenticate before touching the code: a client whose Basic
        // attempt fails and who retries with the form must still find its
        // code unused.
        let client = client_auth::authenticate(&self.config, authorization, form)?;
        match field("grant_type") {
            None => return Err(TokenError::invalid_request("grant_type is missing")),
            Some("authorization_code") => {}
            Some(_) => {
                return Err(TokenError::new(
                    400,
                    "unsupported_grant_type",
                    "only grant_type=authorization_code is supported",
                ));
            }
        }
        let Some(code) = field("code").filter(|c| !c.is_empty()) else {
            return Err(TokenError::invalid_request("code is missing"));
        };
        let code_name = grant_name("code", code);
        // Read and check first: a wrong client, redirect URI or verifier
        // does not use the code up (its rightful client can still redeem it).
        let stored = self
            .store
            .get_grant(&code_name, now)
            .await
            .map_err(TokenError::unavailable)?
            .ok_or_else(|| TokenError::invalid_grant("unknown or expired code"))?;
        if let Some(first) = stored.used_by {
            return Err(self.replayed(&code_name, &first, &client.id, now).await);
        }
        let grant: CodeGrant = serde_json::from_str(&stored.value)
            .map_err(|e| TokenError::unavailable(format!("undecodable code grant: {e}")))?;
        if grant.client_id != client.id {
            return Err(TokenError::invalid_grant(
                "the code was issued to another client",
            ));
        }
        if field("redirect_uri") != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        match (&grant.code_challenge, field("code_verifier")) {
            (Some(challenge), Some(verifier)) if client_auth::pkce_matches(challenge, verifier) => {
            }
            (Some(_), Some(_)) => {
                return Err(TokenError::invalid_grant("code_verifier does not match"));
            }
            (Some(_), None) => {
                return Err(TokenError::invalid_grant("code_verifier is missing"));
            }
            // A verifier for a code issued without a challenge: a downgrade
            // attempt (OAuth Security BCP §4.8.2).
            (None, Some(_)) => {
                return Err(TokenError::invalid_grant(
                    "code_verifier sent, but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        // Now use it, atomically: of two redemptions only one is first.
        let access_token = random_token().map_err(TokenError::unavailable)?;
        let access_name = grant_name("at", &access_token);
        let keep_until = now.saturating_add(self.config.token_ttl.as_secs());
        match self
            .store
            .use_grant(&code_name, &access_name, keep_until, now)
            .await
            .map_err(TokenError::unavailable)?
        {
            None => return Err(TokenError::invalid_grant("unknown or expired code")),
            Some(used) => {
                if let Some(first) = used.used_by {
                    return Err(self.replayed(&code_name, &first, &client.id, now).await);
                }
            }
        }
        let session_live = self
            .session_is(&grant.session, &grant.account, now)
            .await
            .map_err(TokenError::unavailable)?;
        if !session_live {
            return Err(TokenError::invalid_grant(
                "the visitor logged out of the gateway since the code was issued",
            ));
        }
        let expires_at = now.saturating_add(self.config.token_ttl.as_secs());
        let access = AccessGrant {
            client_id: client.id.clone(),
            account: grant.account.clone(),
            scope: grant.scope.clone(),
            session: grant.session.clone(),
        };
        let access_value = serde_json::to_string(&access).map_err(TokenError::unavailable)?;
        self.store
            .put_grant(&access_name, &access_value, expires_at)
            .await
            .map_err(TokenError::unavailable)?;
        // A replay that raced this redemption deleted the access token
        // before it was stored: it left a mark, which is checked after the
        // store (either the replay's delete comes after our write, or its
        // mark is seen here).
        if self
            .store
            .get_grant(&replay_mark(&code_name), now)
            .await
            .map_err(TokenError::unavailable)?
            .is_some()
        {
            let _ = self.store.delete_grant(&access_name).await;
            return Err(TokenError::invalid_grant(
                "the code was replayed while it was redeemed; nothing is issued",
            ));
        }
        let claims = IdTokenClaims {
            iss: self.config.issuer.clone(),
            sub: self.subject(&grant.account),
            aud: client.id.clone(),
            exp: expires_at,
            iat: now,
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            preferred_username: grant.account.clone(),
            chain: self.chain.clone(),
            amr: vec!["swk".to_string(), grant.method.as_str().to_string()],
        };
        let id_token = self
            .sign_id_token(&client, &claims, now)
            .await
            .map_err(TokenError::unavailable)?;
        tracing::info!(
            target: "steemgate::audit",
            client = %client.id,
            account = %grant.account,
            "OpenID tokens issued"
        );
        let body = json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self.config.token_ttl.as_secs(),
            "id_token": id_token,
            "scope": grant.scope,
        });
        Ok((client, body))
    }

    /// A code used a second time: mark the replay (for a redemption still
    /// in flight), revoke what the first use issued, refuse.
    async fn replayed(
        &self,
        code_name: &str,
        first: &str,
        client: &str,
        now: UnixTime,
    ) -> TokenError {
        let keep = now.saturating_add(self.config.token_ttl.as_secs());
        let marked = self
            .store
            .put_grant(&replay_mark(code_name), "replayed", keep)
            .await;
        let revoked = self.store.delete_grant(first).await;
        tracing::warn!(
            target: "steemgate::audit",
            client = %client,
            marked = marked.is_ok(),
            revoked = ?revoked,
            "OpenID code replayed: its access token is revoked"
        );
        TokenError::invalid_grant("the code was already used; what it issued is revoked")
    }

    /// Keeps an authorization request's parameters for the way back from
    /// the login page (the browser carries only a short id in `rd`, so no
    /// parameter is mangled by redirect-target checks or cut by a length
    /// limit); for `PENDING_TTL`.
    pub async fn park(
        &self,
        params: &[(String, String)],
        now: UnixTime,
    ) -> Result<String, IssueError> {
        let id = random_token().map_err(IssueError::Random)?;
        let value = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter())
            .finish();
        self.store
            .put_grant(
                &grant_name("pending", &id),
                &value,
                now.saturating_add(PENDING_TTL.as_secs()),
            )
            .await
            .map_err(IssueError::Store)?;
        Ok(id)
    }

    /// The parameters parked under `id`, if still kept.
    pub async fn resume(
        &self,
        id: &str,
        now: UnixTime,
    ) -> Result<Option<Vec<(String, String)>>, StoreError> {
        Ok(self
            .store
            .get_grant(&grant_name("pending", id), now)
            .await?
            .map(|g| {
                url::form_urlencoded::parse(g.value.as_bytes())
                    .into_owned()
                    .collect()
            }))
    }

    async fn sign_id_token(
        &self,
        client: &OidcClient,
        claims: &IdTokenClaims,
        now: UnixTime,
    ) -> Result<String, KeyError> {
        let keys = self
            .keys
            .iter()
            .find(|k| k.alg() == client.signing_alg)
            .ok_or_else(|| KeyError::Signing("no key ring for the client's algorithm".into()))?;
        let ring = keys.key_ring_at(now).await?;
        let claims = claims.clone();
        // RSA signing is milliseconds of arithmetic: off the async runtime.
        tokio::task::spawn_blocking(move || ring.sign(&claims, "JWT"))
            .await
            .map_err(|e| KeyError::Signing(e.to_string()))?
    }

    /// Whether session `key` is live and logged in as `account`.
    async fn session_is(
        &self,
        key: &str,
        account: &str,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let record = self.store.get_session(&SessionKey(key.to_string())).await?;
        Ok(record.is_some_and(|r| r.is_live(now) && r.account.as_deref() == Some(account)))
    }

    /// The userinfo answer for an access token.
    pub async fn userinfo(
        &self,
        access_token: &str,
        now: UnixTime,
    ) -> Result<serde_json::Value, BearerError> {
        let grant = self
            .store
            .get_grant(&grant_name("at", access_token), now)
            .await
            .map_err(BearerError::Unavailable)?
            .ok_or(BearerError::Invalid)?;
        let access: AccessGrant =
            serde_json::from_str(&grant.value).map_err(|_| BearerError::Invalid)?;
        // A client removed by a reload has no valid tokens left.
        if self.config.client(&access.client_id).is_none() {
            return Err(BearerError::Invalid);
        }
        if !self
            .session_is(&access.session, &access.account, now)
            .await
            .map_err(BearerError::Unavailable)?
        {
            return Err(BearerError::Invalid);
        }
        let mut claims = json!({
            "sub": self.subject(&access.account),
            "preferred_username": access.account,
            "chain": self.chain,
        });
        if access.scope.split(' ').any(|s| s == "profile")
            && let Some(fields) = claims.as_object_mut()
        {
            fields.insert("name".into(), json!(access.account));
            fields.insert("profile".into(), json!(self.profile_url(&access.account)));
        }
        Ok(claims)
    }

    fn profile_url(&self, account: &str) -> String {
        if self.chain == "hive" {
            format!("https://peakd.com/@{account}")
        } else {
            format!("https://steemit.com/@{account}")
        }
    }

    /// The client and subject of an `id_token_hint` we signed (expired is
    /// fine: RP-Initiated Logout 1.0 §2 lets a relying party send an old
    /// one). `None` if it is not ours or not for a registered client.
    pub async fn id_token_hint(
        &self,
        token: &str,
        now: UnixTime,
    ) -> Result<Option<(Arc<OidcClient>, String)>, KeyError> {
        let jwks = self.jwks(now).await?;
        Ok(verify_hint(&jwks, self.issuer(), &self.config, token))
    }
}

/// Why no code could be issued: the visitor sees a 503, the client nothing.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(StoreError),
    #[error("cannot make a code: {0}")]
    Random(String),
}

/// The client and subject of `token` if one of `jwks` signed it for a
/// registered client of `issuer` (expiry ignored; the algorithm is the
/// key's own, never the token header's choice).
fn verify_hint(
    jwks: &JwkSet,
    issuer: &str,
    config: &OidcConfig,
    token: &str,
) -> Option<(Arc<OidcClient>, String)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let jwk = jwks.find(&header.kid?)?;
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).ok()?;
    let alg = match jwk.common.key_algorithm? {
        jsonwebtoken::jwk::KeyAlgorithm::RS256 => jsonwebtoken::Algorithm::RS256,
        jsonwebtoken::jwk::KeyAlgorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        jsonwebtoken::jwk::KeyAlgorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
        _ => return None,
    };
    if header.alg != alg {
        return None;
    }
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation)
        .ok()?
        .claims;
    let client = config.client(&claims.aud)?;
    Some((Arc::clone(client), claims.sub))
}

/// The grant that says a code was replayed.
fn replay_mark(code_name: &str) -> String {
    format!("{code_name}:replayed")
}

/// 256 bits from the OS CSPRNG, base64url.
fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    crate::random::os_random(&mut bytes).map_err(|e| e.to_string())?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The store name of a code or token: a digest, never the secret itself.
fn grant_name(kind: &str, secret: &str) -> String {
    let digest = blake2::Blake2b::<blake2::digest::consts::U32>::new_with_prefix(b"steemgate-oidc")
        .chain_update(kind.as_bytes())
        .chain_update([0u8])
        .chain_update(secret.as_bytes())
        .finalize();
    format!("oidc-{kind}:{}", hex::encode(digest))
}

/// A provider config for unit tests: an `app` client with `secret` and a
/// public `spa` client, both registered for `redirect`.
#[cfg(test)]
pub(crate) fn test_config(secret: &str, redirect: &str) -> OidcConfig {
    let client = |id: &str, secret: Option<&str>| {
        Arc::new(OidcClient {
            id: id.into(),
            name: id.into(),
            secret: secret.map(|s| s.as_bytes().to_vec()),
            redirect_uris: vec![redirect.into()],
            post_logout_redirect_uris: vec![],
            policies: vec![],
            signing_alg: SigningAlg::RS256,
            require_pkce: secret.is_none(),
        })
    };
    OidcConfig {
        issuer: "https://gate.example".into(),
        token_ttl: Duration::from_secs(300),
        clients: vec![client("app", Some(secret)), client("spa", None)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{LoginProof, SessionRecord};

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "https://app.example/cb";

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A provider on a memory store with `alice` logged in, and a code for
    /// the public client issued at `now`.
    async fn code_at(now: UnixTime) -> (Provider, String) {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let session = SessionKey("s".repeat(64));
        store
            .put_session(&session, &SessionRecord::pending(now, now + 3600))
            .await
            .unwrap();
        let proof = LoginProof {
            method: LoginMethod::Transfer,
            txid: "tx".into(),
            block_num: 1,
            block_time: now,
        };
        assert!(
            store
                .login_session(&session, "alice", &proof, now + 3600)
                .await
                .unwrap()
        );
        let provider = Provider::new(
            test_config("0123456789abcdef", REDIRECT),
            store,
            "steem",
            Duration::from_secs(7 * 86400),
        );
        let request = provider
            .parse_authorization(&form(&[
                ("client_id", "spa"),
                ("redirect_uri", REDIRECT),
                ("response_type", "code"),
                ("scope", "openid"),
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]))
            .unwrap();
        let login = Login {
            account: "alice".into(),
            session,
            auth_time: now,
            method: LoginMethod::Transfer,
        };
        let location = provider.issue_code(&request, &login, now).await.unwrap();
        let code = url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        (provider, code)
    }

    fn redeem(code: &str) -> Vec<(String, String)> {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ])
    }

    #[tokio::test]
    async fn a_code_is_good_for_its_lifetime_and_not_a_second_longer() {
        let now = crate::clock::now_unix();
        let (provider, code) = code_at(now).await;
        let late = now + CODE_TTL.as_secs();
        let refused = provider
            .exchange(None, &redeem(&code), late)
            .await
            .unwrap_err();
        assert_eq!((refused.status, refused.error), (400, "invalid_grant"));

        let (provider, code) = code_at(now).await;
        let (client, answer) = provider
            .exchange(None, &redeem(&code), late - 1)
            .await
            .unwrap();
        assert_eq!(client.id, "spa");
        assert_eq!(answer["token_type"], "Bearer");
    }

    #[tokio::test]
    async fn a_replay_mark_left_during_a_redemption_withholds_its_tokens() {
        let now = crate::clock::now_unix();
        let (provider, code) = code_at(now).await;
        // A replay that ran while this redemption was between its use of
        // the code and the storing of its access token left its mark.
        provider
            .store
            .put_grant(
                &replay_mark(&grant_name("code", &code)),
                "replayed",
                now + 60,
            )
            .await
            .unwrap();
        let refused = provider
            .exchange(None, &redeem(&code), now)
            .await
            .unwrap_err();
        assert_eq!(refused.error, "invalid_grant");
        // And the code stays used: a further try is a replay.
        let again = provider
            .exchange(None, &redeem(&code), now)
            .await
            .unwrap_err();
        assert!(
            again.description.contains("already used"),
            "{}",
            again.description
        );
    }
}
