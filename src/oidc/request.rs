//! The authorization request: parameters in, a checked request or the
//! right kind of refusal out. Pure: no I/O, unit-tested.
//!
//! Why a file of its own: the order of checks is the security of the
//! endpoint. Until the client and its redirect URI are known to be
//! registered, nothing may be sent to the redirect URI (an error there
//! would make the provider an open redirector, RFC 6749 §4.1.2.1): those
//! refusals are pages. After that, every refusal goes back to the client
//! as `error=…` with its `state` and our `iss` (RFC 9207), so the client
//! can tell the user what happened.

use std::sync::Arc;

use crate::config::OidcClient;
use crate::config::OidcConfig;

/// Longest `state` / `nonce` accepted (they are echoed and stored).
pub const MAX_STATE_LEN: usize = 4096;
pub const MAX_NONCE_LEN: usize = 512;

/// Scopes granted when asked for; others are ignored (OpenID Core §5.4).
const KNOWN_SCOPES: [&str; 2] = ["openid", "profile"];

/// A redirect URI that is registered for the client: only these are ever
/// sent a visitor (security invariant 6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredRedirect(String);

impl RegisteredRedirect {
    /// `uri` if `client` registered it exactly.
    pub fn of(client: &OidcClient, uri: &str) -> Option<Self> {
        client
            .redirect_uris
            .iter()
            .any(|r| r == uri)
            .then(|| Self(uri.to_string()))
    }

    /// `uri` if `client` registered it as a post-logout redirect exactly.
    pub fn after_logout(client: &OidcClient, uri: &str) -> Option<Self> {
        client
            .post_logout_redirect_uris
            .iter()
            .any(|r| r == uri)
            .then(|| Self(uri.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URI with `params` appended to its query (an existing query is
    /// kept, as RFC 6749 §3.1.2 requires).
    pub fn with_params(&self, params: &[(&str, &str)]) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) => {
                {
                    let mut query = url.query_pairs_mut();
                    for (k, v) in params {
                        query.append_pair(k, v);
                    }
                }
                url.to_string()
            }
            // Registered URIs were parsed when the config was checked.
            Err(_) => self.0.clone(),
        }
    }
}

/// What `prompt` asks for (OpenID Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No page may be shown: answer at once or `login_required`.
    pub none: bool,
    /// A fresh login, even if the visitor is logged in (`login`,
    /// `select_account`).
    pub login: bool,
}

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub client: Arc<OidcClient>,
    pub redirect: RegisteredRedirect,
    /// The granted scopes, space-separated (`openid` always first).
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<u64>,
}

/// Why an authorization request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// The client or redirect URI is unknown: show a page, redirect nowhere.
    Page(String),
    /// Send the visitor back to the client with an OAuth error.
    Redirect(ClientError),
}

/// An OAuth error for a registered redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub redirect: RegisteredRedirect,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
}

impl ClientError {
    /// The URL to send the visitor to.
    pub fn location(&self, issuer: &str) -> String {
        let mut params = vec![
            ("error", self.error),
            ("error_description", self.description.as_str()),
        ];
        if let Some(state) = &self.state {
            params.push(("state", state));
        }
        params.push(("iss", issuer));
        self.redirect.with_params(&params)
    }
}

/// Parameters that must not repeat (RFC 6749 §3.1).
const SINGLE: [&str; 11] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "response_mode",
];

/// Checks an authorization request's parameters (query or form).
pub fn parse(
    config: &OidcConfig,
    params: &[(String, String)],
) -> Result<AuthRequest, AuthorizeError> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let repeated = SINGLE
        .iter()
        .copied()
        .find(|name| params.iter().filter(|(k, _)| k == name).count() > 1);
    if let Some(name @ ("client_id" | "redirect_uri")) = repeated {
        return Err(AuthorizeError::Page(format!(
            "The sign-in request names {name} more than once."
        )));
    }
    let Some(client_id) = get("client_id").filter(|c| !c.is_empty()) else {
        return Err(AuthorizeError::Page(
            "The sign-in request does not say which application it is for (client_id).".into(),
        ));
    };
    let Some(client) = config.client(client_id) else {
        return Err(AuthorizeError::Page(
            "The application asking you to sign in is not registered with this gateway.".into(),
        ));
    };
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(AuthorizeError::Page(
            "The sign-in request does not say where to return (redirect_uri).".into(),
        ));
    };
    let Some(redirect) = RegisteredRedirect::of(client, redirect_uri) else {
        return Err(AuthorizeError::Page(format!(
            "The address {} asked to return to is not registered for it, so the gateway will not send you there.",
            client.name
        )));
    };
    // From here on the client is told. `state` is echoed only if sane.
    let state = get("state")
        .filter(|s| s.len() <= MAX_STATE_LEN)
        .map(str::to_string);
    let refuse = |error: &'static str, description: &str| {
        Err(AuthorizeError::Redirect(ClientError {
            redirect: redirect.clone(),
            error,
            description: description.to_string(),
            state: state.clone(),
        }))
    };
    if let Some(name) = repeated {
        return refuse(
            "invalid_request",
            &format!("the parameter {name} appears more than once"),
        );
    }
    if get("state").is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return refuse("invalid_request", "state is too long");
    }
    if get("request").is_some() {
        return refuse("request_not_supported", "request objects are not supported");
    }
    if get("request_uri").is_some() {
        return refuse("request_uri_not_supported", "request_uri is not supported");
    }
    if get("registration").is_some() {
        return refuse(
            "registration_not_supported",
            "dynamic registration is not supported",
        );
    }
    match get("response_type") {
        None => return refuse("invalid_request", "response_type is missing"),
        Some("code") => {}
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "only the authorization code flow (response_type=code) is supported",
            );
        }
    }
    match get("response_mode") {
        None | Some("query") => {}
        Some(_) => {
            return refuse("invalid_request", "only response_mode=query is supported");
        }
    }
    let asked: Vec<&str> = get("scope").unwrap_or("").split(' ').collect();
    if !asked.contains(&"openid") {
        return refuse(
            "invalid_scope",
            "the openid scope is required: this is an OpenID Connect provider",
        );
    }
    let scope = KNOWN_SCOPES
        .iter()
        .filter(|s| asked.contains(s))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let nonce = match get("nonce") {
        Some(n) if n.len() > MAX_NONCE_LEN => {
            return refuse("invalid_request", "nonce is too long");
        }
        other => other.map(str::to_string),
    };
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => {
            return refuse(
                "invalid_request",
                "code_challenge_method without code_challenge",
            );
        }
        (Some(challenge), Some("S256")) => {
            if !is_pkce_value(challenge) {
                return refuse(
                    "invalid_request",
                    "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
                );
            }
            Some(challenge.to_string())
        }
        // Absent means `plain` (RFC 7636 §4.3), which is refused: it gives
        // no protection against a stolen code.
        (Some(_), _) => {
            return refuse(
                "invalid_request",
                "only code_challenge_method=S256 is supported",
            );
        }
    };
    if client.require_pkce && code_challenge.is_none() {
        return refuse(
            "invalid_request",
            "this client must use PKCE (code_challenge with S256)",
        );
    }
    let mut prompt = Prompt::default();
    for value in get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|v| !v.is_empty())
    {
        match value {
            "none" => prompt.none = true,
            "login" | "select_account" => prompt.login = true,
            // Registration with the operator is the consent.
            "consent" => {}
            _ => return refuse("invalid_request", "unknown prompt value"),
        }
    }
    if prompt.none
        && get("prompt").is_some_and(|p| p.split(' ').filter(|v| !v.is_empty()).count() > 1)
    {
        return refuse(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        );
    }
    let max_age = match get("max_age") {
        None => None,
        Some(raw) => match raw.parse::<u64>() {
            Ok(age) => Some(age),
            Err(_) => return refuse("invalid_request", "max_age must be a number of seconds"),
        },
    };
    Ok(AuthRequest {
        client: Arc::clone(client),
        redirect,
        scope,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
    })
}

/// A PKCE verifier or S256 challenge: 43–128 unreserved characters
/// (RFC 7636 §4.1).
pub fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The query to come back with after a (fresh) login: the same request
/// without `prompt` and `max_age`, which the login just satisfied (kept,
/// they would ask for a login again on the way back).
pub fn resume_query(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            params
                .iter()
                .filter(|(k, _)| k != "prompt" && k != "max_age"),
        )
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> OidcConfig {
        crate::oidc::test_config("0123456789abcdef", "https://app.example/cb?x=1")
    }

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("client_id", "app"),
            ("redirect_uri", "https://app.example/cb?x=1"),
            ("response_type", "code"),
            ("scope", "openid profile email"),
            ("state", "st"),
            ("nonce", "n-1"),
        ]
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
        let mut all = base();
        all.extend_from_slice(extra);
        params(&all)
    }

    fn error_of(result: Result<AuthRequest, AuthorizeError>) -> &'static str {
        match result {
            Err(AuthorizeError::Redirect(e)) => {
                assert_eq!(e.state.as_deref(), Some("st"));
                e.error
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_request_is_accepted_with_known_scopes_only() {
        let request = parse(&config(), &with(&[])).unwrap();
        assert_eq!(request.client.id, "app");
        assert_eq!(request.scope, "openid profile");
        assert_eq!(request.state.as_deref(), Some("st"));
        assert_eq!(request.nonce.as_deref(), Some("n-1"));
        assert_eq!(request.prompt, Prompt::default());
    }

    #[test]
    fn unknown_clients_and_unregistered_redirects_are_pages_never_redirects() {
        let cfg = config();
        for variant in [
            "https://app.example/cb",
            "https://app.example/cb?x=1&y=2",
            "https://APP.example/cb?x=1",
            "https://app.example/cb/?x=1",
            "https://app.example/cb/extra?x=1",
            "https://app.example.evil.com/cb?x=1",
            "https://evil.com/?x=https://app.example/cb?x=1",
            "https://user@app.example/cb?x=1",
            "http://app.example/cb?x=1",
            "",
        ] {
            let mut p = base();
            p[1] = ("redirect_uri", variant);
            assert!(
                matches!(parse(&cfg, &params(&p)), Err(AuthorizeError::Page(_))),
                "{variant}"
            );
        }
        let mut p = base();
        p[0] = ("client_id", "nobody");
        assert!(matches!(
            parse(&cfg, &params(&p)),
            Err(AuthorizeError::Page(_))
        ));
        let mut p = base();
        p.push(("client_id", "app"));
        assert!(matches!(
            parse(&cfg, &params(&p)),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn protocol_errors_go_back_to_the_client_with_state() {
        let cfg = config();
        let mut p = base();
        p[2] = ("response_type", "token");
        assert_eq!(
            error_of(parse(&cfg, &params(&p))),
            "unsupported_response_type"
        );
        let mut p = base();
        p[3] = ("scope", "profile");
        assert_eq!(error_of(parse(&cfg, &params(&p))), "invalid_scope");
        assert_eq!(
            error_of(parse(&cfg, &with(&[("nonce", "again")]))),
            "invalid_request"
        );
        assert_eq!(
            error_of(parse(&cfg, &with(&[("code_challenge", CHALLENGE)]))),
            "invalid_request",
            "a challenge without method is plain"
        );
        assert_eq!(
            error_of(parse(
                &cfg,
                &with(&[
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain")
                ])
            )),
            "invalid_request"
        );
        assert_eq!(
            error_of(parse(
                &cfg,
                &with(&[
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256")
                ])
            )),
            "invalid_request"
        );
        assert_eq!(
            error_of(parse(&cfg, &with(&[("prompt", "none login")]))),
            "invalid_request"
        );
        assert_eq!(
            error_of(parse(&cfg, &with(&[("max_age", "-1")]))),
            "invalid_request"
        );
        assert_eq!(
            error_of(parse(&cfg, &with(&[("request", "eyJ")]))),
            "request_not_supported"
        );
        assert_eq!(
            error_of(parse(&cfg, &with(&[("response_mode", "fragment")]))),
            "invalid_request"
        );
    }

    #[test]
    fn public_clients_must_use_s256() {
        let cfg = config();
        let mut p = base();
        p[0] = ("client_id", "spa");
        assert_eq!(error_of(parse(&cfg, &params(&p))), "invalid_request");
        p.push(("code_challenge", CHALLENGE));
        p.push(("code_challenge_method", "S256"));
        let request = parse(&cfg, &params(&p)).unwrap();
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn a_confidential_client_can_be_held_to_pkce() {
        let mut cfg = config();
        let mut app = (*cfg.clients[0]).clone();
        // Off by default: some apps send neither PKCE nor a nonce.
        assert!(!app.require_pkce);
        assert!(parse(&cfg, &with(&[])).is_ok());
        app.require_pkce = true;
        cfg.clients[0] = Arc::new(app);
        assert_eq!(error_of(parse(&cfg, &with(&[]))), "invalid_request");
        let request = parse(
            &cfg,
            &with(&[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]),
        )
        .unwrap();
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn prompt_and_max_age() {
        let cfg = config();
        let r = parse(
            &cfg,
            &with(&[("prompt", "login consent"), ("max_age", "60")]),
        )
        .unwrap();
        assert!(r.prompt.login && !r.prompt.none);
        assert_eq!(r.max_age, Some(60));
        let r = parse(&cfg, &with(&[("prompt", "none")])).unwrap();
        assert!(r.prompt.none);
    }

    #[test]
    fn errors_keep_the_registered_query_and_add_iss() {
        let cfg = config();
        let mut p = base();
        p[2] = ("response_type", "token");
        let Err(AuthorizeError::Redirect(e)) = parse(&cfg, &params(&p)) else {
            panic!("expected a redirect");
        };
        let location = e.location("https://gate.example");
        let url = url::Url::parse(&location).unwrap();
        assert_eq!(url.host_str(), Some("app.example"));
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("x".into(), "1".into()));
        assert!(pairs.contains(&("error".into(), "unsupported_response_type".into())));
        assert!(pairs.contains(&("state".into(), "st".into())));
        assert!(pairs.contains(&("iss".into(), "https://gate.example".into())));
    }

    #[test]
    fn resuming_drops_prompt_and_max_age_only() {
        let q = resume_query(&with(&[("prompt", "login"), ("max_age", "0")]));
        assert!(!q.contains("prompt") && !q.contains("max_age"));
        assert!(q.contains("client_id=app") && q.contains("state=st"));
    }
}
