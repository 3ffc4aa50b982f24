//! A request head from the network: the input is the request target on the
//! first line, then `Name: value` header lines. It goes through everything
//! the gateway reads from a head before any store lookup: the session
//! cookie among many `Cookie` headers, the upstream header rewrite, the
//! `X-Forwarded-For` chain and client address, Host parsing, the
//! same-origin decision (`Sec-Fetch-Site` / `Origin` / `Host`) and the
//! endpoints' query parameters.
//!
//! In header values `$SESSION` stands for a valid session cookie value of
//! this gateway and `$FORGED` for one signed with another secret, so inputs
//! can carry a real cookie.
//!
//! Properties: only our own signed value yields a session, and a plain
//! `steemgate=<value>` pair always does; the upstream request carries
//! exactly the gateway's identity header (or none), none of the client's
//! reserved or forwarding spellings, no gateway cookie, every other cookie
//! byte for byte, and untouched framing headers; the client address is the
//! peer unless the peer is trusted, and then an address of the chain
//! (right-most untrusted); the same-origin decision follows
//! `Sec-Fetch-Site` when sent, and an accepted `Origin` names the host the
//! router sees; `wait` is bounded and `rd` stays local.
#![no_main]

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pingora_http::RequestHeader;
use steemgate::auth::cookie::{CookieCodec, SessionId};
use steemgate::auth::sessions::{SessionManager, SessionSettings};
use steemgate::proxy::query::{MAX_WAIT, Query};
use steemgate::proxy::headers::{
    ForwardedFor, IDENTITY_HEADER, client_chain, client_ip, is_forwarding_name, is_reserved_name,
    sanitize_upstream_request,
};
use steemgate::proxy::origin::{OriginHeaders, check};
use steemgate::proxy::redirect::safe_redirect_target;
use steemgate::proxy::routes::{host_from_header, request_host};
use steemgate::store::memory::MemoryStore;

const COOKIE: &str = "steemgate";

struct Fixture {
    sessions: SessionManager,
    id: SessionId,
    valid: String,
    forged: String,
    trusted: Vec<ipnet::IpNet>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let codec = CookieCodec::new(&["fuzzing-secret-fuzzing-secret-0123456789"]);
        let other = CookieCodec::new(&["another-secret-another-secret-0123456789"]);
        let id = SessionId::generate().unwrap_or_else(|e| panic!("{e}"));
        let valid = codec.encode(&id);
        let forged = other.encode(&id);
        let settings = SessionSettings {
            ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(900),
            memo_prefix: "login:".into(),
            cookie_name: COOKIE.into(),
            secure: false,
        };
        let sessions = SessionManager::new(Arc::new(MemoryStore::new()), codec, settings);
        let trusted = ["10.0.0.0/8", "::1/128"]
            .iter()
            .filter_map(|net| net.parse().ok())
            .collect();
        Fixture {
            sessions,
            id,
            valid,
            forged,
            trusted,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let mut lines = data.split(|&b| b == b'\n');
    let Some(target) = lines.next() else {
        return;
    };
    let Ok(mut req) = RequestHeader::build("GET", target, None) else {
        return;
    };
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let Ok(name) = String::from_utf8(line[..colon].to_vec()) else {
            continue;
        };
        let value = substitute(line[colon + 1..].trim_ascii(), fixture);
        let _ = req.append_header(name, value.as_slice());
    }
    cookies(&req, fixture);
    let peers: [IpAddr; 3] = [
        IpAddr::from([10, 0, 0, 1]),
        IpAddr::from([203, 0, 113, 5]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    for peer in peers {
        forwarding(&req, peer, fixture);
    }
    origin_and_host(&req);
    let query = Query::parse(req.uri.query());
    assert!(query.wait() <= MAX_WAIT);
    if let Some(rd) = query.get("rd") {
        let target = safe_redirect_target(rd);
        assert!(target.starts_with('/') && !target.starts_with("//"));
    }
});

fn substitute(value: &[u8], fixture: &Fixture) -> Vec<u8> {
    let text = String::from_utf8_lossy(value);
    if !text.contains('$') {
        return value.to_vec();
    }
    let Ok(text) = std::str::from_utf8(value) else {
        return value.to_vec();
    };
    text.replace("$SESSION", &fixture.valid)
        .replace("$FORGED", &fixture.forged)
        .into_bytes()
}

fn cookie_values(req: &RequestHeader) -> Vec<&[u8]> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .map(|v| v.as_bytes())
        .collect()
}

/// `name=value` pairs of Cookie values, trimmed, empty ones skipped.
fn pairs(values: &[&[u8]]) -> Vec<Vec<u8>> {
    values
        .iter()
        .flat_map(|v| v.split(|&b| b == b';'))
        .map(|p| p.trim_ascii().to_vec())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a pair is named like the gateway cookie, whitespace around the
/// name ignored as the cookie parser ignores it (Unicode whitespace too).
fn is_ours(pair: &[u8]) -> bool {
    let name = match pair.iter().position(|&b| b == b'=') {
        Some(i) => &pair[..i],
        None => pair,
    };
    String::from_utf8_lossy(name).trim() == COOKIE
}

fn cookies(req: &RequestHeader, fixture: &Fixture) {
    let values = cookie_values(req);
    let found = fixture
        .sessions
        .session_from_cookies(values.iter().copied());
    let valid = fixture.valid.as_bytes();
    let carried = values
        .iter()
        .any(|v| v.windows(valid.len()).any(|w| w == valid));
    if let Some(id) = &found {
        assert_eq!(id, &fixture.id, "a session other than ours");
        assert!(carried, "a session without our signed value");
    }
    // A plain `steemgate=<our value>` pair in a UTF-8 header is found.
    let plain = values.iter().any(|v| {
        std::str::from_utf8(v).is_ok()
            && v.split(|&b| b == b';').any(|p| {
                let p = p.trim_ascii();
                is_ours(p)
                    && p.iter()
                        .position(|&b| b == b'=')
                        .is_some_and(|i| p[i + 1..].trim_ascii() == valid)
            })
    });
    if plain {
        assert_eq!(
            found.as_ref(),
            Some(&fixture.id),
            "our cookie was not found"
        );
    }
}

fn forwarding(req: &RequestHeader, peer: IpAddr, fixture: &Fixture) {
    let trusted = &fixture.trusted;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let sent = req
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes());
    let chain = client_chain(peer, sent, trusted);
    let entries: Vec<IpAddr> = chain
        .forwarded_for
        .split(", ")
        .map(|e| e.parse().unwrap_or_else(|_| panic!("bad entry {e:?}")))
        .collect();
    let real: IpAddr = chain
        .real_ip
        .parse()
        .unwrap_or_else(|_| panic!("bad real ip"));
    assert_eq!(entries.last(), Some(&peer));
    assert_eq!(client_ip(peer, req, trusted), Some(real));
    if !is_trusted(&peer) {
        assert_eq!(entries, vec![peer], "an untrusted peer's chain was kept");
        assert_eq!(real, peer);
    } else if is_trusted(&real) {
        assert!(entries.iter().all(is_trusted));
        assert_eq!(entries.first(), Some(&real));
    } else {
        let at = entries
            .iter()
            .rposition(|ip| *ip == real)
            .unwrap_or_else(|| panic!("real ip not in the chain"));
        assert!(
            entries[at + 1..].iter().all(is_trusted),
            "not the right-most"
        );
    }

    let host = request_host(&req.uri, req.headers.get("host").map(|v| v.as_bytes()));
    for account in [None, Some("alice")] {
        let mut upstream = req.clone();
        let forwarded = ForwardedFor {
            client: Some(chain.clone()),
            host: host.as_deref(),
            proto: "http",
        };
        sanitize_upstream_request(&mut upstream, COOKIE, &forwarded, account)
            .unwrap_or_else(|e| panic!("rewriting the upstream request failed: {e}"));
        upstream_is_clean(req, &upstream, account, &chain, host.as_deref(), fixture);
    }
}

fn upstream_is_clean(
    original: &RequestHeader,
    upstream: &RequestHeader,
    account: Option<&str>,
    chain: &steemgate::proxy::headers::ClientChain,
    host: Option<&str>,
    fixture: &Fixture,
) {
    let all = |name: &str| -> Vec<&[u8]> {
        upstream
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
            .collect()
    };
    // Exactly the gateway's identity, or none; no client spelling survives.
    assert_eq!(
        all(IDENTITY_HEADER),
        account.map(str::as_bytes).into_iter().collect::<Vec<_>>()
    );
    for name in upstream.headers.keys() {
        let name = name.as_str();
        if is_reserved_name(name) {
            assert_eq!(name, IDENTITY_HEADER, "reserved spelling {name:?} survived");
        }
        if is_forwarding_name(name) {
            assert!(
                [
                    "x-forwarded-for",
                    "x-real-ip",
                    "x-forwarded-host",
                    "x-forwarded-proto"
                ]
                .contains(&name),
                "forwarding spelling {name:?} survived"
            );
        }
    }
    assert_eq!(all("x-forwarded-for"), vec![chain.forwarded_for.as_bytes()]);
    assert_eq!(all("x-real-ip"), vec![chain.real_ip.as_bytes()]);
    assert_eq!(
        all("x-forwarded-host"),
        host.map(str::as_bytes).into_iter().collect::<Vec<_>>()
    );
    assert_eq!(all("x-forwarded-proto"), vec![b"http".as_slice()]);
    // Framing headers are never dropped by a Connection token.
    for framing in ["host", "content-length", "transfer-encoding"] {
        let before: Vec<&[u8]> = original
            .headers
            .get_all(framing)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(all(framing), before, "{framing} changed");
    }
    // No gateway cookie; every other cookie byte for byte, in order.
    let sent = cookie_values(original);
    let kept = all("cookie");
    assert_eq!(
        fixture.sessions.session_from_cookies(kept.iter().copied()),
        None
    );
    let kept_pairs = pairs(&kept);
    assert!(
        kept_pairs.iter().all(|p| !is_ours(p)),
        "the gateway cookie reached the upstream"
    );
    // `Connection: cookie` makes the cookies hop-by-hop: all of them end here.
    let hop_by_hop = original
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("cookie"));
    let expected: Vec<Vec<u8>> = pairs(&sent)
        .into_iter()
        .filter(|p| !is_ours(p) && !hop_by_hop)
        .collect();
    assert_eq!(kept_pairs, expected, "other cookies were changed");
}

fn origin_and_host(req: &RequestHeader) {
    let header = |name: &str| req.headers.get(name).map(|v| v.as_bytes());
    let headers = OriginHeaders {
        sec_fetch_site: header("sec-fetch-site"),
        origin: header("origin"),
        host: header("host"),
    };
    let decision = check(headers);
    if let Some(host) = request_host(&req.uri, header("host")) {
        assert_eq!(host, host.to_ascii_lowercase());
    }
    if let Some(site) = headers.sec_fetch_site {
        let site = site.trim_ascii();
        let same = site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none");
        assert_eq!(
            decision.is_ok(),
            same,
            "Sec-Fetch-Site {site:?} decided wrong"
        );
        return;
    }
    let Some(origin) = headers.origin else {
        assert!(
            decision.is_ok(),
            "a request without Origin or Sec-Fetch-Site refused"
        );
        return;
    };
    if decision.is_err() {
        return;
    }
    // An accepted Origin is an http(s) origin naming the host the router sees.
    let origin = std::str::from_utf8(origin.trim_ascii())
        .ok()
        .and_then(|o| url::Url::parse(o).ok())
        .unwrap_or_else(|| panic!("accepted an unreadable Origin"));
    assert!(matches!(origin.scheme(), "http" | "https"));
    assert!(!origin.as_str().eq_ignore_ascii_case("null"));
    let origin_host = origin
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host = headers.host.and_then(host_from_header);
    assert_eq!(
        host.as_deref(),
        Some(origin_host.as_str()),
        "Origin and Host differ"
    );
}
