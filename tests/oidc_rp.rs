//! The OpenID Provider (issue 17) driven by relying-party libraries that
//! nobody here wrote, against the real `steemgate` binary on a devnet:
//!
//! - the Rust `openidconnect` crate: discovery, the authorization URL (PKCE
//!   S256, nonce, state), the visitor's login (the simulated transfer; the
//!   gateway's code-issuing redirect followed for real), the code exchange
//!   with client_secret_basic, client_secret_post and as a public client,
//!   the ID token verified by the crate against the provider's JWKS (nonce,
//!   aud, iss, exp, signature in the client's registered alg: RS256, ES256,
//!   EdDSA), then userinfo; and once on a Hive devnet (`sub` = `hive:ACCOUNT`);
//! - Python's authlib (`tests/support/oidc/authlib_rp.py`), the same flow,
//!   its ID token checked with authlib's JWT/JWKS code. Skips with a notice
//!   without a python3 that has authlib and requests (`scripts/install-deps.sh
//!   --test` installs Debian's), and fails then under
//!   `STEEMGATE_REQUIRE_SYSTEM_DEPS=1`.
//!
//! Why: a provider that passes only its own tests may still speak a dialect;
//! these libraries are what Grafana-like apps really use.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};
use support::gateway::{Background, GatewayProcess, Stack, TestDevnet, echo_upstream, test_config};
use support::oidc::{
    self, AUTHORIZE, BASIC, Client, EDDSA, ES256, POST, PUBLIC, get_with, jwt_parts,
    login_through_authorize, redirect_to_client, single,
};

/// The crate's HTTP client: our reqwest, never following a redirect (the
/// crate's own advice against SSRF).
fn http_client() -> reqwest::Client {
    // reqwest is built without a default TLS provider (plain HTTP here).
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// One request of the crate's, sent with `client`.
async fn send(
    client: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
    let response = client.execute(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut answer = http::Response::new(body);
    *answer.status_mut() = status;
    *answer.headers_mut() = headers;
    Ok(answer)
}

fn alg_of(client: &Client) -> CoreJwsSigningAlgorithm {
    match client.alg {
        "RS256" => CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        "ES256" => CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        "EdDSA" => CoreJwsSigningAlgorithm::EdDsa,
        other => panic!("no test alg {other}"),
    }
}

/// The relying party's view of one gateway: the runtime its futures run
/// on, its HTTP client and the provider metadata it discovered.
struct Rp<'a> {
    stack: &'a Stack,
    /// The gateway's chain (`steem` or `hive`): the `sub` prefix.
    chain: &'static str,
    runtime: tokio::runtime::Runtime,
    http: reqwest::Client,
    metadata: CoreProviderMetadata,
}

/// What one completed flow proved.
struct Outcome {
    cookie: String,
    payload: Value,
}

impl<'a> Rp<'a> {
    /// Discovery with the crate (which also fetches the JWKS).
    fn discover(stack: &'a Stack, chain: &'static str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let http = http_client();
        let issuer = IssuerUrl::new(oidc::issuer(stack)).expect("issuer URL");
        let metadata = {
            let client = http.clone();
            let call = move |request| send(client.clone(), request);
            runtime
                .block_on(CoreProviderMetadata::discover_async(issuer, &call))
                .unwrap_or_else(|e| panic!("discovery failed: {e:?}"))
        };
        Self {
            stack,
            chain,
            runtime,
            http,
            metadata,
        }
    }

    /// The full flow for `client` (`auth` for a confidential one), as
    /// `account`. Without `cookie` the visitor logs in on the gateway in
    /// the middle of it; with one they are already logged in and must get
    /// a code at once.
    fn flow(
        &self,
        client: &Client,
        auth: AuthType,
        account: &str,
        cookie: Option<&str>,
    ) -> Outcome {
        let call = {
            let http = self.http.clone();
            move |request| send(http.clone(), request)
        };
        let rp = CoreClient::from_provider_metadata(
            self.metadata.clone(),
            ClientId::new(client.id.to_string()),
            client.secret.map(|s| ClientSecret::new(s.to_string())),
        )
        .set_redirect_uri(RedirectUrl::new(client.redirect_uri.to_string()).expect("redirect"))
        .set_auth_type(auth);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".to_string()))
            .set_pkce_challenge(challenge)
            .url();
        let issuer = oidc::issuer(self.stack);
        assert!(
            url.as_str().starts_with(&format!("{issuer}{AUTHORIZE}?")),
            "discovery named {url} as the authorization endpoint"
        );
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        let (cookie, answer) = match cookie {
            None => login_through_authorize(self.stack, &path, account),
            Some(cookie) => (
                cookie.to_string(),
                get_with(self.stack, &path, Some(cookie)),
            ),
        };
        let params = redirect_to_client(&answer, client);
        assert_eq!(single(&params, "error"), None, "{params:?}");
        assert_eq!(
            single(&params, "state").as_deref(),
            Some(state.secret().as_str())
        );
        assert_eq!(single(&params, "iss").as_deref(), Some(issuer.as_str()));
        let code = single(&params, "code").expect("a code");

        let token = self
            .runtime
            .block_on(
                rp.exchange_code(AuthorizationCode::new(code))
                    .expect("a token endpoint")
                    .set_pkce_verifier(verifier)
                    .request_async(&call),
            )
            .unwrap_or_else(|e| panic!("{}: the code exchange failed: {e:?}", client.id));
        assert_eq!(
            token.token_type(),
            &openidconnect::core::CoreTokenType::Bearer
        );
        // token_ttl: 5m, for the access token and the ID token alike.
        let lifetime = token.expires_in().expect("expires_in").as_secs();
        assert!((295..=300).contains(&lifetime), "expires_in {lifetime}");

        let id_token = token.id_token().expect("an ID token");
        assert_eq!(
            id_token.signing_alg().expect("a signing alg"),
            &alg_of(client),
            "{} registered {}",
            client.id,
            client.alg
        );
        let verifier = rp
            .id_token_verifier()
            .set_allowed_algs(vec![alg_of(client)]);
        // The crate checks the signature against the discovered JWKS, iss,
        // aud, exp, iat and the nonce.
        let claims = id_token
            .claims(&verifier, &nonce)
            .unwrap_or_else(|e| panic!("{}: the ID token was refused: {e:?}", client.id));
        assert_eq!(
            claims.subject().as_str(),
            format!("{}:{account}", self.chain)
        );
        assert_eq!(claims.issuer().as_str(), issuer);
        assert_eq!(
            claims
                .audiences()
                .iter()
                .map(|a| a.as_str())
                .collect::<Vec<_>>(),
            vec![client.id]
        );
        assert_eq!(
            claims.preferred_username().map(|u| u.as_str()),
            Some(account)
        );
        assert!(claims.auth_time().is_some(), "no auth_time");
        assert_eq!(claims.nonce().map(|n| n.secret()), Some(nonce.secret()));
        // Another nonce (a replayed token in another login) is refused.
        assert!(
            id_token
                .claims(&verifier, &Nonce::new("another".to_string()))
                .is_err()
        );
        // A relying party that accepts RS256 only refuses the other algs:
        // the token is really signed with what was registered.
        if client.alg != "RS256" {
            let rs256_only = rp
                .id_token_verifier()
                .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256]);
            assert!(id_token.claims(&rs256_only, &nonce).is_err());
        }
        let (_, payload) = jwt_parts(&id_token.to_string());
        assert_eq!(payload["chain"], json!(self.chain), "{payload}");
        let ttl = payload["exp"].as_u64().zip(payload["iat"].as_u64());
        assert_eq!(ttl.map(|(exp, iat)| exp - iat), Some(300), "{payload}");
        let amr = payload["amr"].as_array().expect("amr is a list");
        assert!(
            !amr.is_empty() && amr.iter().all(Value::is_string),
            "amr {payload}"
        );

        let info: CoreUserInfoClaims = self
            .runtime
            .block_on(
                rp.user_info(token.access_token().clone(), Some(claims.subject().clone()))
                    .expect("a userinfo endpoint")
                    .request_async(&call),
            )
            .unwrap_or_else(|e| panic!("{}: userinfo failed: {e:?}", client.id));
        assert_eq!(info.subject().as_str(), format!("{}:{account}", self.chain));
        assert_eq!(info.preferred_username().map(|u| u.as_str()), Some(account));
        Outcome { cookie, payload }
    }
}

#[test]
fn the_openidconnect_crate_logs_in_with_every_client_kind_and_alg() {
    let stack = oidc::start("");
    let rp = Rp::discover(&stack, "steem");
    let issuer = oidc::issuer(&stack);
    assert_eq!(rp.metadata.issuer().as_str(), issuer);

    // A visitor new to the gateway logs in in the middle of the flow.
    let first = rp.flow(&BASIC, AuthType::BasicAuth, "alice", None);
    // The memo transfer is named among the methods.
    assert!(
        first.payload["amr"]
            .as_array()
            .is_some_and(|amr| amr.contains(&json!("transfer"))),
        "amr {}",
        first.payload["amr"]
    );

    // Already logged in: the other clients get codes at once, each with its
    // own way to authenticate at the token endpoint and its own alg.
    let cookie = first.cookie.as_str();
    let second = rp.flow(&POST, AuthType::RequestBody, "alice", Some(cookie));
    assert_eq!(second.payload["auth_time"], first.payload["auth_time"]);
    rp.flow(&PUBLIC, AuthType::RequestBody, "alice", Some(cookie));
    rp.flow(&ES256, AuthType::BasicAuth, "alice", Some(cookie));
    rp.flow(&EDDSA, AuthType::RequestBody, "alice", Some(cookie));

    // Another visitor, another subject.
    let bob = rp.flow(&PUBLIC, AuthType::RequestBody, "bob", None);
    assert_eq!(bob.payload["sub"], json!("steem:bob"));
}

#[test]
fn a_hive_gateway_names_hive_accounts() {
    // A gateway on a Hive devnet: the subject is `hive:ACCOUNT`.
    let devnet = TestDevnet {
        server: Background::start(|listener, stop| async move {
            let devnet =
                steemgate::chain::devnet::Devnet::new(steemgate::chain::devnet::DevnetOptions {
                    chain: steemgate::chain::ChainName::Hive,
                    block_interval: None,
                    seed: false,
                    start_block: 1000,
                });
            let _ = devnet
                .serve(listener, async move {
                    let _ = stop.await;
                })
                .await;
        }),
    };
    devnet.produce_block(None);
    let upstream = echo_upstream();
    let dir = tempfile::tempdir().expect("scratch dir");
    let (addr, admin) = (support::free_addr(), support::free_addr());
    let config = test_config(
        addr,
        admin,
        &devnet.url(),
        upstream.addr,
        &dir.path().join("store"),
    );
    assert!(config.contains("  name: steem\n"));
    let config = config.replace("  name: steem\n", "  name: hive\n").replace(
        "routes:\n",
        &format!(
            "{}routes:\n",
            oidc::oidc_yaml(&format!("http://{addr}"), "")
        ),
    );
    let gateway = GatewayProcess::start(&config, dir.path(), addr, admin);
    let stack = Stack {
        gateway,
        devnet,
        upstream,
        dir,
    };
    stack.wait_ready();
    assert_eq!(
        stack.addr(),
        addr,
        "the gateway moved ports; the issuer is stale"
    );
    let rp = Rp::discover(&stack, "hive");
    rp.flow(&ES256, AuthType::BasicAuth, "alice", None);
}

/// One run of `tests/support/oidc/authlib_rp.py` for `client` as
/// `account` (logging in through the authorization request when
/// `cookie` is `None`); returns the script's final JSON and the cookie.
fn authlib_flow(
    python: &std::path::Path,
    stack: &Stack,
    client: &Client,
    method: &str,
    account: &str,
    cookie: Option<&str>,
) -> (Value, String) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/oidc/authlib_rp.py"
    );
    let issuer = oidc::issuer(stack);
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--issuer", &issuer, "--client-id", client.id])
        .args([
            "--redirect-uri",
            client.redirect_uri,
            "--auth-method",
            method,
        ])
        .args(["--alg", client.alg])
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(secret) = client.secret {
        command.args(["--client-secret", secret]);
    }
    let mut child = command.spawn().expect("start the authlib RP");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: Value = match lines.next() {
        Some(Ok(line)) => serde_json::from_str(&line).expect("JSON from the RP"),
        _ => {
            let output = child.wait_with_output().expect("the RP's output");
            panic!(
                "the authlib RP said nothing: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    let url = first["authorize_url"]
        .as_str()
        .unwrap_or_else(|| panic!("no authorize_url: {first}"));
    assert!(
        url.starts_with(&format!("{issuer}{AUTHORIZE}?")),
        "authlib built {url}"
    );
    let params = oidc::query_of(url);
    assert_eq!(
        single(&params, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let path = &url[issuer.len()..];
    let (cookie, answer) = match cookie {
        None => login_through_authorize(stack, path, account),
        Some(cookie) => (cookie.to_string(), get_with(stack, path, Some(cookie))),
    };
    redirect_to_client(&answer, client);
    let callback = answer.header("location").expect("Location").to_string();
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{callback}").expect("tell the RP where it was sent");
    drop(stdin);
    let last = lines.next();
    let output = child.wait_with_output().expect("the RP's exit");
    let result: Value = match last {
        Some(Ok(line)) => serde_json::from_str(&line).expect("JSON from the RP"),
        _ => panic!(
            "the authlib RP ended without a result: {}",
            String::from_utf8_lossy(&output.stderr)
        ),
    };
    assert_eq!(
        result["ok"],
        json!(true),
        "authlib refused the provider's answer: {result}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success());
    (result, cookie)
}

#[test]
fn python_authlib_logs_in_and_validates_the_id_token_against_the_jwks() {
    let Some(python) = oidc::python_with(&["authlib", "requests"]) else {
        return;
    };
    let stack = oidc::start("");
    let issuer = oidc::issuer(&stack);

    let (result, cookie) = authlib_flow(
        &python,
        &stack,
        &BASIC,
        "client_secret_basic",
        "carol",
        None,
    );
    let discovery = &result["discovery"];
    assert_eq!(discovery["issuer"], json!(issuer));
    assert_eq!(discovery["response_types_supported"], json!(["code"]));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
    for (key, path) in [
        ("authorization_endpoint", AUTHORIZE),
        ("token_endpoint", oidc::TOKEN),
        ("userinfo_endpoint", oidc::USERINFO),
        ("jwks_uri", oidc::JWKS),
        ("end_session_endpoint", oidc::LOGOUT),
    ] {
        assert_eq!(discovery[key], json!(format!("{issuer}{path}")), "{key}");
    }
    assert_eq!(result["id_token_header"]["alg"], json!("RS256"));
    assert!(result["id_token_header"]["kid"].is_string());
    let claims = &result["claims"];
    assert_eq!(claims["iss"], json!(issuer));
    assert_eq!(claims["aud"], json!(BASIC.id));
    assert_eq!(claims["sub"], json!("steem:carol"));
    assert_eq!(claims["preferred_username"], json!("carol"));
    assert_eq!(claims["chain"], json!("steem"));
    assert_eq!(
        result["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    let userinfo = &result["userinfo"];
    assert_eq!(userinfo["sub"], json!("steem:carol"));
    assert_eq!(userinfo["preferred_username"], json!("carol"));
    assert_eq!(userinfo["chain"], json!("steem"));

    // client_secret_post with an EdDSA client, and a public client, in the
    // same gateway session (no second login).
    let (ed, _) = authlib_flow(
        &python,
        &stack,
        &EDDSA,
        "client_secret_post",
        "carol",
        Some(&cookie),
    );
    assert_eq!(ed["id_token_header"]["alg"], json!("EdDSA"));
    assert_eq!(ed["claims"]["sub"], json!("steem:carol"));
    let (public, _) = authlib_flow(&python, &stack, &PUBLIC, "none", "carol", Some(&cookie));
    assert_eq!(public["claims"]["aud"], json!(PUBLIC.id));
    assert_eq!(public["userinfo"]["sub"], json!("steem:carol"));
}
