//! Signed identity assertions end to end: the real binary adds an
//! `X-Steem-Assertion` JWT on routes with `assertion: true`, and the
//! upstream verifies it against the JWKS fetched from the gateway with the
//! same crate an upstream would use (jsonwebtoken).

mod support;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use steemgate::auth::assertion::{AssertionClaims, KEYRING_NAME};
use steemgate::auth::keyring::{StoredKey, StoredKeyRing};
use steemgate::config::SigningAlg;
use steemgate::store::Store;
use support::gateway::{GatewayProcess, Stack, get, upstream_saw};

const ISSUER: &str = "https://gate.test";

/// The test config plus assertion routes and a fixed issuer.
fn with_assertion_routes(config: String) -> String {
    let start = config
        .find("upstream: \"http://")
        .expect("an http upstream")
        + 11;
    let end = start + config[start..].find('"').expect("closing quote");
    let upstream = &config[start..end];
    let extra = format!(
        "routes:\n  - {{path: /signed, upstream: \"{upstream}\", auth: required, assertion: true}}\n  - {{path: /signed-maybe, upstream: \"{upstream}\", auth: optional, assertion: true}}\n"
    );
    config.replacen("routes:\n", &extra, 1).replacen(
        "limits:",
        &format!("assertion: {{issuer: \"{ISSUER}\"}}\nlimits:"),
        1,
    )
}

fn echo(response: &support::gateway::Response) -> Value {
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

fn jwks(stack: &Stack) -> JwkSet {
    let response = get(stack.addr(), "/.steemgate/jwks.json", &[]);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/jwk-set+json")
    );
    serde_json::from_str(&response.body).expect("a JWKS")
}

/// Verifies `token` like an upstream would: signature by a JWKS key named
/// by its `kid`, issuer, audience and expiry.
fn verify(token: &str, keys: &JwkSet) -> AssertionClaims {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("a kid");
    let jwk = keys.find(&kid).expect("the kid is in the JWKS");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["127.0.0.1"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<AssertionClaims>(
        token,
        &DecodingKey::from_jwk(jwk).expect("usable JWK"),
        &validation,
    )
    .expect("the assertion verifies")
    .claims
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("header")
        .kid
        .expect("kid")
}

#[test]
fn assertion_verifies_against_the_jwks_with_the_right_claims() {
    let stack = Stack::start_with(with_assertion_routes);
    let cookie = stack.login_as("alice");
    let header = format!("Cookie: {cookie}");
    let seen = echo(&get(
        stack.addr(),
        "/signed/page",
        &[
            &header,
            "X-Steem-Assertion: forged.by.client",
            "X_Steem_Assertion: forged2",
        ],
    ));
    let tokens = upstream_saw(&seen, "x-steem-assertion");
    assert_eq!(tokens.len(), 1, "exactly one assertion: {tokens:?}");
    assert!(!tokens[0].contains("forged"));
    let claims = verify(&tokens[0], &jwks(&stack));
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.aud, "127.0.0.1");
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.chain, "steem");
    assert_eq!(claims.exp - claims.iat, 300);
    assert_eq!(upstream_saw(&seen, "x-steem-account"), vec!["alice"]);

    // Optional assertion route, logged in: signed too.
    let maybe = echo(&get(stack.addr(), "/signed-maybe", &[&header]));
    let token = upstream_saw(&maybe, "x-steem-assertion");
    assert_eq!(verify(&token[0], &jwks(&stack)).sub, "alice");

    // Anonymous on the optional route: no assertion, and a forged one is gone.
    let anonymous = echo(&get(
        stack.addr(),
        "/signed-maybe",
        &["X-Steem-Assertion: forged.by.client"],
    ));
    assert!(upstream_saw(&anonymous, "x-steem-assertion").is_empty());
    assert!(upstream_saw(&anonymous, "x-steem-account").is_empty());

    // Routes without `assertion: true`: the account only, never a client's token.
    for path in ["/app", "/maybe"] {
        let plain = echo(&get(
            stack.addr(),
            path,
            &[&header, "X-Steem-Assertion: forged.by.client"],
        ));
        assert!(
            upstream_saw(&plain, "x-steem-assertion").is_empty(),
            "{path}"
        );
        assert_eq!(upstream_saw(&plain, "x-steem-account"), vec!["alice"]);
    }

    // A token for one account never verifies as another: tampering breaks it.
    let mut parts: Vec<String> = tokens[0].split('.').map(str::to_string).collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&engine.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = Value::from("mallory");
    parts[1] = engine.encode(payload.to_string());
    let keys = jwks(&stack);
    let jwk = keys.find(&kid_of(&tokens[0])).unwrap();
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["127.0.0.1"]);
    assert!(
        jsonwebtoken::decode::<AssertionClaims>(
            &parts.join("."),
            &DecodingKey::from_jwk(jwk).unwrap(),
            &validation
        )
        .is_err()
    );
}

#[test]
fn keys_survive_a_restart() {
    let mut stack = Stack::start_with(with_assertion_routes);
    let cookie = stack.login_as("alice");
    let header = format!("Cookie: {cookie}");
    let before = upstream_saw(
        &echo(&get(stack.addr(), "/signed", &[&header])),
        "x-steem-assertion",
    );
    let kid_before = kid_of(&before[0]);
    let keys_before = jwks(&stack);

    stack.gateway.stop();
    let config = std::fs::read_to_string(&stack.gateway.config_path).unwrap();
    let (addr, admin) = (stack.gateway.addr, stack.gateway.admin);
    stack.gateway = GatewayProcess::start(&config, stack.dir.path(), addr, admin);
    stack.wait_ready();

    assert_eq!(jwks(&stack), keys_before);
    let after = upstream_saw(
        &echo(&get(stack.addr(), "/signed", &[&header])),
        "x-steem-assertion",
    );
    assert_eq!(kid_of(&after[0]), kid_before);
    // Issued before the restart, still valid after it.
    assert_eq!(verify(&before[0], &jwks(&stack)).sub, "alice");
}

#[test]
fn a_due_rotation_keeps_the_previous_key_in_the_jwks() {
    // A store whose only key is 8 days old (rotation every 7 days).
    let store_dir = tempfile::tempdir().unwrap();
    let old_key =
        StoredKey::generate(SigningAlg::EdDSA, steemgate::clock::now_unix() - 8 * 86400).unwrap();
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let store = steemgate::store::embedded::EmbeddedStore::open(store_dir.path()).unwrap();
            let ring = StoredKeyRing {
                keys: vec![old_key.clone()],
            };
            assert!(
                store
                    .swap_value(KEYRING_NAME, None, &ring.to_json().unwrap())
                    .await
                    .unwrap()
            );
        });
    }
    let store_line = format!("store: \"file:{}\"", store_dir.path().display());
    let stack = Stack::start_with(|config| {
        let config = with_assertion_routes(config);
        let start = config.find("store: \"").unwrap();
        let end = start + config[start..].find('\n').unwrap();
        format!("{}{store_line}{}", &config[..start], &config[end..])
    });
    let keys = jwks(&stack);
    assert_eq!(keys.keys.len(), 2, "new key and the previous one");
    let old_kid = keys.keys[1].common.key_id.clone().unwrap();
    let new_kid = keys.keys[0].common.key_id.clone().unwrap();
    assert_ne!(old_kid, new_kid);

    let cookie = stack.login_as("bob");
    let token = upstream_saw(
        &echo(&get(
            stack.addr(),
            "/signed",
            &[&format!("Cookie: {cookie}")],
        )),
        "x-steem-assertion",
    );
    assert_eq!(kid_of(&token[0]), new_kid);
    assert_eq!(verify(&token[0], &keys).sub, "bob");
}
