//! The OpenID Provider end to end, from the provider's side: the real
//! gateway process on the seeded devnet, three registered clients (RS256
//! confidential, ES256 public, EdDSA confidential behind a community
//! policy). ID tokens of every algorithm are verified against the served
//! JWKS; `prompt`/`max_age` force a fresh login; a policy refusal explains
//! itself and sends `access_denied` back; RP-initiated logout with and
//! without `id_token_hint`, and its refusals; a reload adds a client.
//! (Relying-party libraries and the attack matrix are in `oidc_rp.rs` and
//! `oidc_attacks.rs`.)

mod support;

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use sha2::Digest;
use support::gateway::{Response, Stack, get, post};

const SECRET: &str = "grafana-secret-0123456789";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn oidc_section(addr: SocketAddr, extra_client: &str) -> String {
    format!(
        r#"policies:
  members: {{community: hive-100001}}
oidc:
  issuer: "http://{addr}"
  token_ttl: 2m
  clients:
    - client_id: grafana
      client_secret: "{SECRET}"
      name: Grafana
      redirect_uris: ["https://grafana.example.com/login/generic_oauth"]
      post_logout_redirect_uris: ["https://grafana.example.com/login"]
    - client_id: spa
      redirect_uris: ["http://127.0.0.1:9/cb"]
      id_token_signed_response_alg: ES256
    - client_id: club
      client_secret: "{SECRET}"
      name: The Club
      redirect_uris: ["https://club.example.com/cb"]
      id_token_signed_response_alg: EdDSA
      policy: members
{extra_client}routes:"#
    )
}

fn start(extra_client: &str) -> Stack {
    let addr = support::free_addr();
    let section = oidc_section(addr, extra_client);
    Stack::start_on_seeded_at(addr, move |config| config.replacen("routes:", &section, 1))
}

/// The configured issuer, as discovery states it (a retried start moves
/// the listener, not the issuer written in the config).
fn issuer(stack: &Stack) -> String {
    let doc = get(stack.addr(), "/.well-known/openid-configuration", &[]).json();
    doc["issuer"].as_str().unwrap().to_string()
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn authorize_path(client: &str, redirect: &str, extra: &str) -> String {
    format!(
        "/.steemgate/oidc/authorize?client_id={client}&redirect_uri={}&response_type=code&scope=openid%20profile&state=st-1&nonce=n-1{extra}",
        enc(redirect)
    )
}

fn authorize(stack: &Stack, cookie: Option<&str>, path: &str) -> Response {
    let header = cookie.map(|c| format!("Cookie: {c}"));
    let mut headers = vec!["Accept: text/html"];
    if let Some(h) = &header {
        headers.push(h);
    }
    get(stack.addr(), path, &headers)
}

/// The query parameters of a redirect's `Location`.
fn location_params(response: &Response) -> (url::Url, Vec<(String, String)>) {
    let location = response
        .header("location")
        .unwrap_or_else(|| panic!("no Location ({}): {}", response.status, response.body));
    let url = url::Url::parse(location).expect("absolute Location");
    let params = url.query_pairs().into_owned().collect();
    (url, params)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn code_for(stack: &Stack, cookie: &str, client: &str, redirect: &str, extra: &str) -> String {
    let response = authorize(
        stack,
        Some(cookie),
        &authorize_path(client, redirect, extra),
    );
    assert_eq!(response.status, 302, "{}", response.body);
    let (url, params) = location_params(&response);
    assert!(url.as_str().starts_with(redirect), "{url}");
    assert_eq!(param(&params, "state"), Some("st-1"));
    assert_eq!(param(&params, "iss"), Some(issuer(stack).as_str()));
    param(&params, "code").expect("a code").to_string()
}

fn token(stack: &Stack, headers: &[&str], body: &str) -> (u16, Value, Response) {
    let response = post(stack.addr(), "/.steemgate/oidc/token", headers, body);
    let json = response.json();
    (response.status, json, response)
}

fn jwks(stack: &Stack) -> JwkSet {
    let response = get(stack.addr(), "/.steemgate/oidc/jwks.json", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    serde_json::from_str(&response.body).unwrap()
}

/// Verifies `id_token` against the served JWKS with exactly `alg`.
fn verify(stack: &Stack, id_token: &str, alg: Algorithm, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, alg, "the client's registered algorithm");
    let keys = jwks(stack);
    let jwk = keys.find(&header.kid.unwrap()).expect("kid in the JWKS");
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer(stack)]);
    jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

fn basic(id: &str, secret: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    format!(
        "Authorization: Basic {}",
        STANDARD.encode(format!("{id}:{}", enc(secret)))
    )
}

#[test]
fn every_algorithm_issues_tokens_that_verify_against_the_jwks() {
    let stack = start("");
    let carol = stack.login_as("carol");

    let discovery = get(stack.addr(), "/.well-known/openid-configuration", &[]);
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.header("access-control-allow-origin"), Some("*"));
    let doc = discovery.json();
    let issuer = issuer(&stack);
    assert_eq!(doc["issuer"], json!(issuer));
    assert_eq!(
        doc["token_endpoint"],
        json!(format!("{issuer}/.steemgate/oidc/token"))
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256", "EdDSA"])
    );
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));

    // RS256, client_secret_basic.
    let code = code_for(
        &stack,
        &carol,
        "grafana",
        "https://grafana.example.com/login/generic_oauth",
        "",
    );
    let grafana_basic = basic("grafana", SECRET);
    let (status, answer, response) = token(
        &stack,
        &[&grafana_basic],
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            enc("https://grafana.example.com/login/generic_oauth")
        ),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(answer["token_type"], json!("Bearer"));
    assert_eq!(answer["expires_in"], json!(120));
    let claims = verify(
        &stack,
        answer["id_token"].as_str().unwrap(),
        Algorithm::RS256,
        "grafana",
    );
    assert_eq!(claims["sub"], json!("steem:carol"));
    assert_eq!(claims["preferred_username"], json!("carol"));
    assert_eq!(claims["nonce"], json!("n-1"));
    assert_eq!(claims["chain"], json!("steem"));
    assert_eq!(claims["amr"], json!(["swk", "transfer"]));
    assert!(claims["auth_time"].as_u64().unwrap() <= claims["iat"].as_u64().unwrap());
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        120
    );
    let info = get(
        stack.addr(),
        "/.steemgate/oidc/userinfo",
        &[&format!(
            "Authorization: Bearer {}",
            answer["access_token"].as_str().unwrap()
        )],
    );
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(
        info.json(),
        json!({"sub": "steem:carol", "preferred_username": "carol", "chain": "steem", "name": "carol", "profile": "https://steemit.com/@carol"})
    );

    // ES256, a public client with PKCE (no secret).
    let code = code_for(
        &stack,
        &carol,
        "spa",
        "http://127.0.0.1:9/cb",
        &format!(
            "&code_challenge={}&code_challenge_method=S256",
            challenge(VERIFIER)
        ),
    );
    // A wrong verifier is refused without using the code up.
    let (status, answer, _) = token(
        &stack,
        &[],
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=spa&code_verifier={}",
            enc("http://127.0.0.1:9/cb"),
            "A".repeat(43)
        ),
    );
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, answer, _) = token(
        &stack,
        &[],
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=spa&code_verifier={VERIFIER}",
            enc("http://127.0.0.1:9/cb")
        ),
    );
    assert_eq!(status, 200, "{answer}");
    verify(
        &stack,
        answer["id_token"].as_str().unwrap(),
        Algorithm::ES256,
        "spa",
    );

    // EdDSA, client_secret_post (carol is a member: the policy passes).
    let code = code_for(&stack, &carol, "club", "https://club.example.com/cb", "");
    let (status, answer, _) = token(
        &stack,
        &[],
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}&client_id=club&client_secret={}",
            enc("https://club.example.com/cb"),
            enc(SECRET)
        ),
    );
    assert_eq!(status, 200, "{answer}");
    verify(
        &stack,
        answer["id_token"].as_str().unwrap(),
        Algorithm::EdDSA,
        "club",
    );

    // The OpenID keys are not the assertion keys.
    let assertion_keys: JwkSet =
        serde_json::from_str(&get(stack.addr(), "/.steemgate/jwks.json", &[]).body).unwrap();
    for key in &jwks(&stack).keys {
        assert!(
            assertion_keys
                .find(key.common.key_id.as_deref().unwrap())
                .is_none()
        );
    }

    // A wrong secret is refused and counted; operators see both.
    let wrong = basic("club", "not-the-secret-000");
    let (status, answer, _) = token(&stack, &[&wrong], "grant_type=authorization_code&code=x");
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let metrics = get(stack.gateway.admin, "/metrics", &[]).body;
    for line in [
        "steemgate_oidc_codes_issued_total{client=\"grafana\"} 1",
        "steemgate_oidc_codes_issued_total{client=\"spa\"} 1",
        "steemgate_oidc_tokens_issued_total{client=\"club\"} 1",
        "steemgate_oidc_token_errors_total{error=\"invalid_client\"} 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }

    // Public clients call from pages: a preflight is answered.
    let preflight = support::gateway::raw_request(
        stack.addr(),
        format!(
            "OPTIONS /.steemgate/oidc/userinfo HTTP/1.1\r\nHost: {}\r\nOrigin: http://127.0.0.1:9\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\nConnection: close\r\n\r\n",
            stack.addr()
        )
        .as_bytes(),
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(
        preflight
            .header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
}

#[test]
fn prompt_and_max_age_ask_for_a_fresh_login_and_none_never_shows_a_page() {
    let stack = start("");
    let redirect = "https://grafana.example.com/login/generic_oauth";

    // Not logged in: to the login page, which will come back here.
    let fresh = authorize(&stack, None, &authorize_path("grafana", redirect, ""));
    assert_eq!(fresh.status, 302);
    let location = fresh.header("location").unwrap();
    assert!(
        location.starts_with("/.steemgate/login?rd=%2F.steemgate%2Foidc%2Fauthorize%3F"),
        "{location}"
    );
    let login = get(stack.addr(), location, &["Accept: text/html"]);
    assert_eq!(login.status, 200);
    assert!(
        login
            .body
            .contains("<strong>Grafana</strong> asks you to sign in"),
        "{}",
        login.body
    );
    // prompt=none and not logged in: login_required, at the client.
    let none = authorize(
        &stack,
        None,
        &authorize_path("grafana", redirect, "&prompt=none"),
    );
    let (url, params) = location_params(&none);
    assert!(url.as_str().starts_with(redirect));
    assert_eq!(param(&params, "error"), Some("login_required"));
    assert_eq!(param(&params, "state"), Some("st-1"));

    let carol = stack.login_as("carol");
    // Logged in: no page, a code at once (prompt=none too).
    code_for(&stack, &carol, "grafana", redirect, "&prompt=none");
    // prompt=login: our page asks first (a link from another site must
    // not end the session); its form, from our own origin, ends this
    // session and goes to the login page, and the way back no longer asks
    // for a fresh login (no loop).
    let ask = authorize(
        &stack,
        Some(&carol),
        &authorize_path("grafana", redirect, "&prompt=login"),
    );
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("id=\"reauth\""), "{}", ask.body);
    assert!(ask.body.contains("asks for a fresh login"), "{}", ask.body);
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));
    let form = format!(
        "reauth=yes&client_id=grafana&redirect_uri={}&response_type=code&scope=openid&state=st-1&prompt=login",
        enc(redirect)
    );
    let cookie = format!("Cookie: {carol}");
    let cross = post(
        stack.addr(),
        "/.steemgate/oidc/authorize",
        &[
            &cookie,
            "Sec-Fetch-Site: cross-site",
            "Origin: https://evil.example",
        ],
        &form,
    );
    assert_eq!(cross.status, 403);
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));
    let origin = format!("Origin: http://{}", stack.addr());
    let again = post(
        stack.addr(),
        "/.steemgate/oidc/authorize",
        &[&cookie, "Sec-Fetch-Site: same-origin", &origin],
        &form,
    );
    assert_eq!(again.status, 302, "{}", again.body);
    let location = again.header("location").unwrap();
    assert!(location.starts_with("/.steemgate/login?rd="), "{location}");
    assert!(!location.contains("prompt"), "{location}");
    assert!(again.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(stack.status(&carol)["authenticated"], json!(false));
    // A relying party's own form post is the same request as a GET.
    let posted = post(
        stack.addr(),
        "/.steemgate/oidc/authorize",
        &[],
        &format!(
            "client_id=grafana&redirect_uri={}&response_type=code&scope=openid",
            enc(redirect)
        ),
    );
    assert_eq!(posted.status, 303);
    assert!(
        posted
            .header("location")
            .unwrap()
            .starts_with("/.steemgate/oidc/authorize?client_id=grafana")
    );
    // max_age=0 with a login older than a second is a fresh login too.
    let carol = stack.login_as("carol");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let old = authorize(
        &stack,
        Some(&carol),
        &authorize_path("grafana", redirect, "&max_age=0&prompt=none"),
    );
    let (_, params) = location_params(&old);
    assert_eq!(param(&params, "error"), Some("login_required"));
    let old = authorize(
        &stack,
        Some(&carol),
        &authorize_path("grafana", redirect, "&max_age=0"),
    );
    assert_eq!(old.status, 200);
    assert!(old.body.contains("id=\"reauth\""), "{}", old.body);
}

#[test]
fn the_way_back_from_the_login_keeps_any_state_and_discovery_stays_on_the_issuer_host() {
    let stack = start("");
    let redirect = "https://grafana.example.com/login/generic_oauth";
    // oauth2-proxy puts the app URL in `state`; some apps make it long.
    let state = format!(
        "nonce123:https://wiki.example.com/a b/c?d=e&f=%2F{}",
        "x".repeat(1500)
    );
    let (cookie, memo) = stack.start_login();
    let path = format!(
        "/.steemgate/oidc/authorize?client_id=grafana&redirect_uri={}&response_type=code&scope=openid&state={}",
        enc(redirect),
        enc(&state)
    );
    let first = authorize(&stack, Some(&cookie), &path);
    assert_eq!(first.status, 302);
    let login = first.header("location").unwrap().to_string();
    let rd: String = url::Url::parse(&format!("http://x{login}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "rd")
        .unwrap()
        .1
        .into_owned();
    assert!(rd.starts_with("/.steemgate/oidc/authorize?resume="), "{rd}");
    // The login page the visitor sees names the app, and keeps `rd`.
    let page = get(
        stack.addr(),
        &login,
        &["Accept: text/html", &format!("Cookie: {cookie}")],
    );
    assert!(
        page.body
            .contains("<strong>Grafana</strong> asks you to sign in")
    );
    stack
        .devnet
        .transfer("carol", support::gateway::GATE, "0.001 STEEM", &memo);
    stack.devnet.produce_block(None);
    stack.wait_logged_in(&cookie, "carol");
    let back = authorize(&stack, Some(&cookie), &rd);
    let (url, params) = location_params(&back);
    assert!(url.as_str().starts_with(redirect));
    assert_eq!(param(&params, "state"), Some(state.as_str()));
    assert!(param(&params, "code").is_some());
    // An unknown resume id is a page, not a redirect.
    let gone = authorize(
        &stack,
        Some(&cookie),
        "/.steemgate/oidc/authorize?resume=nope",
    );
    assert_eq!(gone.status, 400);
    assert_eq!(gone.header("location"), None);

    // Discovery belongs to the issuer's host only.
    let other = support::gateway::raw_request(
        stack.addr(),
        b"GET /.well-known/openid-configuration HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(other.status, 404, "{}", other.body);
}

#[test]
fn a_client_policy_refusal_explains_itself_and_sends_access_denied_back() {
    let stack = start("");
    let demo = stack.login_as("demo");
    let path = authorize_path("club", "https://club.example.com/cb", "");
    let page = authorize(&stack, Some(&demo), &path);
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("hive-100001"), "{}", page.body);
    assert!(page.body.contains("Back to The Club"), "{}", page.body);
    let back = page
        .body
        .split("id=\"back-to-client\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link back to the client")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let back = url::Url::parse(&back).unwrap();
    assert!(back.as_str().starts_with("https://club.example.com/cb?"));
    let params: Vec<(String, String)> = back.query_pairs().into_owned().collect();
    assert_eq!(param(&params, "error"), Some("access_denied"));
    assert_eq!(param(&params, "state"), Some("st-1"));
    // With prompt=none, no page: access_denied at once.
    let none = authorize(&stack, Some(&demo), &format!("{path}&prompt=none"));
    let (_, params) = location_params(&none);
    assert_eq!(param(&params, "error"), Some("access_denied"));
    // Clients without a policy still let demo in.
    code_for(
        &stack,
        &demo,
        "grafana",
        "https://grafana.example.com/login/generic_oauth",
        "",
    );
}

#[test]
fn rp_initiated_logout_confirms_unless_the_hint_proves_the_client() {
    let stack = start("");
    let redirect = "https://grafana.example.com/login/generic_oauth";
    let after = "https://grafana.example.com/login";
    let basic = basic("grafana", SECRET);
    let id_token = |cookie: &str| {
        let code = code_for(&stack, cookie, "grafana", redirect, "");
        let (status, answer, _) = token(
            &stack,
            &[&basic],
            &format!(
                "grant_type=authorization_code&code={code}&redirect_uri={}",
                enc(redirect)
            ),
        );
        assert_eq!(status, 200, "{answer}");
        answer["id_token"].as_str().unwrap().to_string()
    };
    let logout = |cookie: &str, query: &str| {
        get(
            stack.addr(),
            &format!("/.steemgate/oidc/logout?{query}"),
            &["Accept: text/html", &format!("Cookie: {cookie}")],
        )
    };

    // Unregistered return address, unknown client, a token not ours: a
    // page, no redirect, still logged in.
    let carol = stack.login_as("carol");
    for query in [
        format!(
            "client_id=grafana&post_logout_redirect_uri={}",
            enc("https://evil.example/")
        ),
        format!("post_logout_redirect_uri={}", enc(after)),
        "client_id=nobody".to_string(),
    ] {
        let refused = logout(&carol, &query);
        assert_eq!(refused.status, 400, "{query}: {}", refused.body);
        assert_eq!(refused.header("location"), None);
    }
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));

    // A hint we cannot verify (alg none, a placeholder) is no hint: the
    // visitor is asked, not refused and not logged out.
    for hint in ["eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "{id_token}"] {
        let ask = logout(&carol, &format!("id_token_hint={}", enc(hint)));
        assert_eq!(ask.status, 200, "{hint}: {}", ask.body);
        assert!(ask.body.contains("confirm-logout"));
    }
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));
    // Without a hint: a page asks first; a cross-site confirmation is not
    // one; our own form's confirmation logs out and goes back.
    let ask = logout(
        &carol,
        &format!(
            "client_id=grafana&post_logout_redirect_uri={}&state=s9",
            enc(after)
        ),
    );
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("confirm-logout"), "{}", ask.body);
    // Browsers apply form-action to the redirect after the form: the
    // relying party's origin is allowed on this page, nothing else.
    let csp = ask.header("content-security-policy").unwrap();
    assert!(
        csp.contains("form-action 'self' https://grafana.example.com;"),
        "{csp}"
    );
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));
    let form = format!(
        "confirm=yes&client_id=grafana&post_logout_redirect_uri={}&state=s9",
        enc(after)
    );
    let cookie = format!("Cookie: {carol}");
    let cross = post(
        stack.addr(),
        "/.steemgate/oidc/logout",
        &[
            &cookie,
            "Sec-Fetch-Site: cross-site",
            "Origin: https://evil.example",
        ],
        &form,
    );
    assert_eq!(cross.status, 200);
    assert_eq!(stack.status(&carol)["authenticated"], json!(true));
    let origin = format!("Origin: http://{}", stack.addr());
    let confirmed = post(
        stack.addr(),
        "/.steemgate/oidc/logout",
        &[&cookie, "Sec-Fetch-Site: same-origin", &origin],
        &form,
    );
    assert_eq!(confirmed.status, 303, "{}", confirmed.body);
    assert_eq!(
        confirmed.header("location"),
        Some(format!("{after}?state=s9").as_str())
    );
    assert_eq!(stack.status(&carol)["authenticated"], json!(false));

    // With a valid hint for the logged-in account: out at once.
    let carol = stack.login_as("carol");
    let hint = id_token(&carol);
    let out = logout(
        &carol,
        &format!(
            "id_token_hint={hint}&post_logout_redirect_uri={}",
            enc(after)
        ),
    );
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(out.header("location"), Some(after));
    assert_eq!(stack.status(&carol)["authenticated"], json!(false));
    // The hint of another account asks first.
    let demo = stack.login_as("demo");
    let ask = logout(&demo, &format!("id_token_hint={hint}"));
    assert_eq!(ask.status, 200);
    assert_eq!(stack.status(&demo)["authenticated"], json!(true));
    // A logged-out visitor goes straight back.
    let gone = logout(
        "steemgate=none",
        &format!("client_id=grafana&post_logout_redirect_uri={}", enc(after)),
    );
    assert_eq!(gone.status, 302);
}

#[test]
fn a_reload_registers_a_new_client_and_keeps_the_keys() {
    let stack = start("");
    let before = jwks(&stack);
    let carol = stack.login_as("carol");
    let path = authorize_path("late", "https://late.example.com/cb", "");
    assert_eq!(authorize(&stack, Some(&carol), &path).status, 400);
    let config_path = stack
        .dir
        .path()
        .join(format!("steemgate-{}.yaml", stack.addr().port()));
    let config = std::fs::read_to_string(&config_path).unwrap();
    let late = format!(
        "    - client_id: late\n      client_secret: \"{SECRET}\"\n      redirect_uris: [\"https://late.example.com/cb\"]\nroutes:"
    );
    std::fs::write(&config_path, config.replacen("routes:", &late, 1)).unwrap();
    stack.reload_and_wait_for("config reloaded");
    code_for(&stack, &carol, "late", "https://late.example.com/cb", "");
    let after = jwks(&stack);
    for key in &before.keys {
        assert!(after.find(key.common.key_id.as_deref().unwrap()).is_some());
    }
}

#[test]
fn instances_sharing_redis_share_codes_and_keys_and_fail_closed_without_it() {
    use support::gateway::{
        GATE, GatewayProcess, TestDevnet, echo_upstream, start_login_at, test_config_with_store,
        wait_logged_in_at,
    };
    let Some(mut redis) = support::redis_server::RedisServer::start() else {
        return;
    };
    let devnet = TestDevnet::start_seeded();
    devnet.produce_block(None);
    let upstream = echo_upstream();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (addr_a, addr_b) = (support::free_addr(), support::free_addr());
    // One issuer for both: the load balancer's name.
    let section = oidc_section(addr_a, "");
    let config = |addr, admin| {
        test_config_with_store(addr, admin, &devnet.url(), upstream.addr, &redis.url(), "")
            .replacen("routes:", &section, 1)
    };
    let admin_a = support::free_addr();
    let a = GatewayProcess::start(&config(addr_a, admin_a), dir_a.path(), addr_a, admin_a);
    let admin_b = support::free_addr();
    let b = GatewayProcess::start(&config(addr_b, admin_b), dir_b.path(), addr_b, admin_b);
    let (cookie, memo) = start_login_at(a.addr);
    devnet.transfer("carol", GATE, "0.001 STEEM", &memo);
    devnet.produce_block(None);
    wait_logged_in_at(a.addr, &cookie, "carol", 10);

    let redirect = "https://grafana.example.com/login/generic_oauth";
    let path = authorize_path("grafana", redirect, "");
    let issued = get(a.addr, &path, &[&format!("Cookie: {cookie}")]);
    let (_, params) = location_params(&issued);
    let code = param(&params, "code").expect("a code from A").to_string();
    let basic = basic("grafana", SECRET);
    let body = format!(
        "grant_type=authorization_code&code={code}&redirect_uri={}",
        enc(redirect)
    );
    let redeemed = post(b.addr, "/.steemgate/oidc/token", &[&basic], &body);
    assert_eq!(
        redeemed.status, 200,
        "B redeems A's code: {}",
        redeemed.body
    );
    let id_token = redeemed.json()["id_token"].as_str().unwrap().to_string();
    let kid = jsonwebtoken::decode_header(&id_token).unwrap().kid.unwrap();
    for gateway in [&a, &b] {
        let keys: JwkSet =
            serde_json::from_str(&get(gateway.addr, "/.steemgate/oidc/jwks.json", &[]).body)
                .unwrap();
        assert!(
            keys.find(&kid).is_some(),
            "every instance publishes the signing key"
        );
    }
    // The replay is noticed on the other instance.
    let replay = post(a.addr, "/.steemgate/oidc/token", &[&basic], &body);
    assert_eq!(replay.json()["error"], json!("invalid_grant"));

    // Without the store nothing is issued and nothing is guessed.
    let fresh = get(a.addr, &path, &[&format!("Cookie: {cookie}")]);
    let (_, params) = location_params(&fresh);
    let code = param(&params, "code").unwrap().to_string();
    redis.stop();
    let refused = get(
        a.addr,
        &path,
        &[&format!("Cookie: {cookie}"), "Accept: text/html"],
    );
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("location"), None);
    let token = post(
        b.addr,
        "/.steemgate/oidc/token",
        &[&basic],
        &format!(
            "grant_type=authorization_code&code={code}&redirect_uri={}",
            enc(redirect)
        ),
    );
    assert_eq!(token.status, 503, "{}", token.body);
    assert_eq!(token.json()["error"], json!("temporarily_unavailable"));
    let info = get(
        b.addr,
        "/.steemgate/oidc/userinfo",
        &[&format!(
            "Authorization: Bearer {}",
            redeemed.json()["access_token"].as_str().unwrap()
        )],
    );
    assert_eq!(info.status, 503, "{}", info.body);
}
