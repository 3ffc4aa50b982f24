//! TLS on the public listener (`tls: {cert, key}`): the real binary serves
//! HTTPS with a certificate from a CA made in the test, the session cookie
//! becomes `__Host-` named and `Secure`, and upstreams are told
//! `X-Forwarded-Proto: https`. The client is reqwest on rustls trusting only
//! that CA.

mod support;

use serde_json::Value;
use support::gateway::{GATE, upstream_saw};
use support::tls::{tls_config, tls_stack, tls_stack_with};

fn client(ca_pem: &str) -> reqwest::Client {
    let tls = tls_config(ca_pem);
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// What ALPN agrees to when a client offers h2 first, with `tls.http2`
/// at its default (on) and off.
fn negotiated(tls_extra: &str) -> Option<Vec<u8>> {
    let (stack, ca, _certs) = tls_stack_with(tls_extra, false, |config| config);
    let mut config = tls_config(&ca);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(stack.addr()).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock).unwrap();
    }
    tls.conn.alpn_protocol().map(<[u8]>::to_vec)
}

#[test]
fn alpn_agrees_to_h2_by_default_and_only_http1_when_switched_off() {
    assert_eq!(negotiated("").as_deref(), Some(&b"h2"[..]));
    assert_eq!(negotiated(", http2: on").as_deref(), Some(&b"h2"[..]));
    assert_ne!(negotiated(", http2: off").as_deref(), Some(&b"h2"[..]));
}

/// With `tls.http2: off` the gateway speaks HTTP/1.1 only, over TLS too: a
/// client offering h2 first does not get it, and spoofed identities sent
/// over TLS are stripped like over plain TCP (HTTP/2: tests/attack_h2.rs).
#[test]
fn tls_with_http2_off_negotiates_http1_and_strips_spoofed_identities() {
    use std::io::{Read, Write};
    let (stack, ca, _certs) = tls_stack_with(", http2: off", false, |config| config);
    let mut config = tls_config(&ca);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let socket = std::net::TcpStream::connect(stack.addr()).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let request = format!(
        "GET /maybe/x HTTP/1.1\r\nHost: localhost:{}\r\nX-Steem-Account: mallory\r\n\
         x-steem-account: mallory\r\nX_Steem_Account: mallory\r\nX.Steem.Account: mallory\r\n\
         Connection: close, X-Steem-Account\r\n\r\n",
        stack.addr().port()
    );
    tls.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    // The gateway closes after the answer; rustls may report the close
    // without a close_notify as an error once everything was read.
    let _ = tls.read_to_end(&mut answer);
    assert_ne!(
        tls.conn.alpn_protocol(),
        Some(&b"h2"[..]),
        "the gateway must not agree to HTTP/2"
    );
    let answer = String::from_utf8_lossy(&answer).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let echo: Value = serde_json::from_str(body).unwrap();
    assert!(
        upstream_saw(&echo, "x-steem-account").is_empty(),
        "a spoofed identity reached the upstream over TLS: {echo}"
    );
}

#[test]
fn login_over_https_with_a_secure_host_cookie_and_https_forwarded_upstream() {
    let (stack, ca, _certs) = tls_stack();
    let base = format!("https://127.0.0.1:{}", stack.addr().port());
    let http = client(&ca);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let started = http
            .get(format!("{base}/.steemgate/status"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("HTTPS request to the gateway");
        assert_eq!(started.status(), 200);
        let set_cookie = started
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .unwrap()
            .to_string();
        assert!(set_cookie.starts_with("__Host-steemgate="), "{set_cookie}");
        let attributes: Vec<String> = set_cookie
            .split(';')
            .map(|a| a.trim().to_ascii_lowercase())
            .collect();
        assert!(attributes.iter().any(|a| a == "secure"), "{set_cookie}");
        assert!(attributes.iter().any(|a| a == "path=/"), "{set_cookie}");
        assert!(
            !attributes.iter().any(|a| a.starts_with("domain")),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        let status: Value = started.json().await.unwrap();
        let memo = status["memo"].as_str().expect("memo").to_string();

        stack.devnet.transfer("alice", GATE, "0.001 STEEM", &memo);
        stack.devnet.produce_block(None);
        let mut logged_in = false;
        for _ in 0..10 {
            let status: Value = http
                .get(format!("{base}/.steemgate/status?wait=2"))
                .header("accept", "application/json")
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if status["authenticated"] == Value::Bool(true) {
                assert_eq!(status["account"], "alice");
                logged_in = true;
                break;
            }
        }
        assert!(logged_in, "never logged in over HTTPS");

        let echo: Value = http
            .get(format!("{base}/app"))
            .header("cookie", &cookie)
            .header("x-forwarded-proto", "http")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(upstream_saw(&echo, "x-steem-account"), vec!["alice"]);
        assert_eq!(upstream_saw(&echo, "x-forwarded-proto"), vec!["https"]);
        assert!(upstream_saw(&echo, "cookie").is_empty());
    });

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(stack.addr()).unwrap();
    use std::io::{Read, Write};
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /public HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn unreadable_tls_files_fail_the_config_check_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "not a certificate").unwrap();
    let config = format!(
        "chain: {{name: steem, account: gate-test}}\nsession: {{secret: \"{}\"}}\ntls: {{cert: cert.pem, key: missing.pem}}\nroutes:\n  - {{path: /, upstream: \"http://127.0.0.1:3000\", auth: required}}\n",
        support::gateway::SECRET
    );
    let path = dir.path().join("steemgate.yaml");
    std::fs::write(&path, config).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_steemgate"))
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("STEEMGATE_SECRET")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tls.cert"), "{stderr}");
}
