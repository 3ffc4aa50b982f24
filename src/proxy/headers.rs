//! Request header hygiene before anything reaches an upstream.
//!
//! Why: the most common way auth gateways are bypassed is a client-sent
//! identity header that survives (other case, duplicate, `X_Steem_Account`
//! that CGI/WSGI/Rack merge with the dashed name, or a `Connection:` token
//! that makes a later hop drop the gateway's own header). Every spelling is
//! removed here, on every proxied request, before the gateway adds exactly
//! one value. The gateway's own cookie is removed too, and client-supplied
//! forwarding headers are replaced, not trusted — except `X-Forwarded-For`
//! from a peer listed in `trusted_proxies`, which is kept with the peer
//! appended (see [`client_chain`]).

use http::{HeaderName, HeaderValue};
use pingora::ErrorType::InvalidHTTPHeader;
use pingora::OrErr;
use pingora::http::RequestHeader;

/// The identity header the gateway sets.
pub use crate::auth::identity::IDENTITY_HEADER;
/// Reserved for the signed assertion: treated like the identity header.
pub const ASSERTION_HEADER: &str = "x-steem-assertion";

/// Client forwarding headers: replaced by the gateway's own values.
const FORWARDING_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// Whether `name` is a spelling of the lowercase, dashed `canonical`:
/// ASCII case-insensitive, with `_` and `.` read as `-` (CGI/WSGI/Rack
/// merge them), and surrounding whitespace ignored.
fn spells(name: &str, canonical: &str) -> bool {
    let name = name.trim();
    name.len() == canonical.len()
        && name.bytes().zip(canonical.bytes()).all(|(a, b)| {
            let a = match a.to_ascii_lowercase() {
                b'_' | b'.' => b'-',
                other => other,
            };
            a == b
        })
}

/// Whether a header name is any spelling of a header only the gateway may
/// set (see [`spells`]).
pub fn is_reserved_name(name: &str) -> bool {
    [IDENTITY_HEADER, ASSERTION_HEADER]
        .iter()
        .any(|reserved| spells(name, reserved))
}

/// Whether a header name is any spelling of a client forwarding header
/// (`X_Forwarded_For` reaches a WSGI app as `HTTP_X_FORWARDED_FOR` too).
pub fn is_forwarding_name(name: &str) -> bool {
    FORWARDING_HEADERS.iter().any(|f| spells(name, f))
}

/// Tokens of `Connection` that are not hop-by-hop headers to drop.
fn is_connection_option(token: &str) -> bool {
    token.eq_ignore_ascii_case("keep-alive")
        || token.eq_ignore_ascii_case("close")
        || token.eq_ignore_ascii_case("upgrade")
}

/// The client addresses the upstream is told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientChain {
    /// The `X-Forwarded-For` value to send: the peer alone, or a trusted
    /// peer's chain with the peer appended.
    pub forwarded_for: String,
    /// The `X-Real-IP` value: the nearest address that is not a trusted proxy.
    pub real_ip: String,
}

/// Works out the forwarding chain for a connection from `peer`.
///
/// An untrusted peer's `X-Forwarded-For` (`sent`) is ignored: the chain is
/// the peer alone. A trusted peer's chain is kept and the peer appended; the
/// real client is the right-most address that is not itself trusted. Any
/// entry that is not an IP address makes the whole sent chain untrusted
/// (fails closed to the peer alone).
pub fn client_chain<'v>(
    peer: std::net::IpAddr,
    sent: impl IntoIterator<Item = &'v [u8]>,
    trusted: &[ipnet::IpNet],
) -> ClientChain {
    let alone = || {
        let text = peer_text(peer);
        ClientChain {
            forwarded_for: text.clone(),
            real_ip: text,
        }
    };
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return alone();
    }
    let mut chain: Vec<std::net::IpAddr> = Vec::new();
    for value in sent {
        let Ok(text) = std::str::from_utf8(value) else {
            return alone();
        };
        for entry in text.split(',').map(str::trim) {
            match entry.parse::<std::net::IpAddr>() {
                Ok(ip) => chain.push(ip),
                Err(_) => return alone(),
            }
        }
    }
    chain.push(peer);
    let real_ip = chain
        .iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or_else(|| chain.first())
        .copied()
        .unwrap_or(peer);
    ClientChain {
        forwarded_for: chain
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        real_ip: real_ip.to_string(),
    }
}

/// `peer` as text. Formatting an address goes through `std::fmt` (≈ 1,500
/// instructions, a tenth of the gateway's own work on a proxied request),
/// and every request of a keep-alive connection asks for the same peer, so
/// each thread remembers the last one it formatted.
fn peer_text(peer: std::net::IpAddr) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(std::net::IpAddr, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        match &*last {
            Some((ip, text)) if *ip == peer => Some(text.clone()),
            _ => {
                let text = peer.to_string();
                *last = Some((peer, text.clone()));
                Some(text)
            }
        }
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| peer.to_string())
}

/// The real client's address for a request from `peer`: the peer itself,
/// or, when the peer is a trusted proxy, the right-most untrusted address of
/// its `X-Forwarded-For` chain (see [`client_chain`]).
pub fn client_ip(
    peer: std::net::IpAddr,
    req: &RequestHeader,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    // The common case, without building the forwarding chain: an untrusted
    // peer is the client, whatever it claims in `X-Forwarded-For`.
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let sent = req
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.as_bytes());
    client_chain(peer, sent, trusted).real_ip.parse().ok()
}

/// Facts about the client connection the upstream is told about.
pub struct ForwardedFor<'a> {
    pub client: Option<ClientChain>,
    pub host: Option<&'a str>,
    pub proto: &'static str,
}

/// Rewrites the upstream request: strips every reserved-header spelling,
/// headers named in `Connection`, the gateway's cookie and client
/// forwarding headers; then sets the forwarding headers and, when
/// `account` is given, exactly one `X-Steem-Account`.
pub fn sanitize_upstream_request(
    req: &mut RequestHeader,
    cookie_name: &str,
    forwarded: &ForwardedFor<'_>,
    account: Option<&str>,
) -> pingora::Result<()> {
    // Headers named by Connection are hop-by-hop: they end here.
    let mut doomed: Vec<HeaderName> = Vec::new();
    let mut connection_options: Vec<String> = Vec::new();
    let mut has_connection = false;
    for value in req.headers.get_all(http::header::CONNECTION) {
        has_connection = true;
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if is_connection_option(token) {
                connection_options.push(token.to_ascii_lowercase());
            } else if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                doomed.push(name);
            }
        }
    }
    doomed.extend(
        req.headers
            .keys()
            .filter(|name| is_reserved_name(name.as_str()) || is_forwarding_name(name.as_str()))
            .cloned(),
    );
    for name in &doomed {
        // Never let a Connection token remove framing the proxy needs.
        if name == http::header::HOST
            || name == http::header::CONTENT_LENGTH
            || name == http::header::TRANSFER_ENCODING
        {
            continue;
        }
        req.remove_header(name);
    }
    if has_connection {
        req.remove_header(&http::header::CONNECTION);
    }
    if !connection_options.is_empty() {
        connection_options.dedup();
        req.insert_header(http::header::CONNECTION, connection_options.join(", "))?;
    }

    strip_cookie(req, cookie_name)?;

    if let Some(client) = &forwarded.client {
        req.insert_header("x-forwarded-for", client.forwarded_for.as_str())?;
        req.insert_header("x-real-ip", client.real_ip.as_str())?;
    }
    if let Some(host) = forwarded.host {
        req.insert_header("x-forwarded-host", host)?;
    }
    // `http` or `https`: a static value, never copied.
    let proto = match forwarded.proto {
        "http" => HeaderValue::from_static("http"),
        "https" => HeaderValue::from_static("https"),
        other => HeaderValue::from_str(other)
            .explain_err(InvalidHTTPHeader, |_| "invalid X-Forwarded-Proto")?,
    };
    req.insert_header("x-forwarded-proto", proto)?;
    if let Some(account) = account {
        req.insert_header(IDENTITY_HEADER, account)?;
    }
    Ok(())
}

/// Removes the gateway's cookie from all `Cookie` headers (HTTP/2 may send
/// several), keeping the others in one header, byte for byte (a value need
/// not be UTF-8). One pass, no copies of the values: the kept pairs go
/// straight into the new header's bytes.
fn strip_cookie(req: &mut RequestHeader, cookie_name: &str) -> pingora::Result<()> {
    let mut values = 0;
    let mut removed_any = false;
    let mut kept: Vec<u8> = Vec::new();
    for raw in req.headers.get_all(http::header::COOKIE) {
        values += 1;
        for pair in raw.as_bytes().split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            if is_cookie_named(pair, cookie_name) {
                removed_any = true;
            } else {
                if !kept.is_empty() {
                    kept.extend_from_slice(b"; ");
                }
                kept.extend_from_slice(pair);
            }
        }
    }
    if values == 0 || (!removed_any && values == 1) {
        return Ok(());
    }
    req.remove_header(&http::header::COOKIE);
    if !kept.is_empty() {
        req.insert_header(http::header::COOKIE, kept)?;
    }
    Ok(())
}

/// Whether a `name=value` pair is named `cookie_name`, with whitespace
/// around the name ignored as the cookie parser that finds the session does
/// (Unicode whitespace included), so no spelling of our cookie is kept.
fn is_cookie_named(pair: &[u8], cookie_name: &str) -> bool {
    let name = pair.split(|&b| b == b'=').next().unwrap_or(pair);
    String::from_utf8_lossy(name).trim() == cookie_name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        for (name, value) in headers {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    fn values(req: &RequestHeader, name: &str) -> Vec<String> {
        req.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }

    const FWD: ForwardedFor<'static> = ForwardedFor {
        client: None,
        host: None,
        proto: "http",
    };

    #[test]
    fn reserved_name_spellings() {
        for name in [
            "X-Steem-Account",
            "x-steem-account",
            "X_STEEM_ACCOUNT",
            "x.steem.account",
            "X-Steem_Account",
            " x-steem-account ",
            "X-Steem-Assertion",
        ] {
            assert!(is_reserved_name(name), "{name}");
        }
        for name in [
            "X-Steem-Accounts",
            "X-Steem",
            "Steem-Account",
            "x-steem-account2",
        ] {
            assert!(!is_reserved_name(name), "{name}");
        }
    }

    #[test]
    fn every_spoofed_spelling_is_replaced_by_one_value() {
        let mut req = request(&[
            ("X-Steem-Account", "mallory"),
            ("x-steem-account", "mallory2"),
            ("X_Steem_Account", "mallory3"),
            ("x.steem.account", "mallory4"),
            ("X-STEEM-ACCOUNT", "a, b"),
        ]);
        sanitize_upstream_request(&mut req, "steemgate", &FWD, Some("alice")).unwrap();
        assert_eq!(values(&req, "x-steem-account"), vec!["alice"]);
        assert!(
            req.headers
                .keys()
                .all(|k| !is_reserved_name(k.as_str()) || k == "x-steem-account")
        );
        let mut anonymous = request(&[("X_Steem_Account", "mallory")]);
        sanitize_upstream_request(&mut anonymous, "steemgate", &FWD, None).unwrap();
        assert!(
            anonymous
                .headers
                .keys()
                .all(|k| !is_reserved_name(k.as_str()))
        );
    }

    #[test]
    fn connection_listed_headers_are_dropped_and_cannot_target_identity() {
        let mut req = request(&[
            ("Connection", "keep-alive, X-Steem-Account, X-Secret"),
            ("X-Secret", "1"),
            ("X-Other", "2"),
        ]);
        sanitize_upstream_request(&mut req, "steemgate", &FWD, Some("alice")).unwrap();
        assert_eq!(values(&req, "x-steem-account"), vec!["alice"]);
        assert_eq!(values(&req, "connection"), vec!["keep-alive"]);
        assert!(values(&req, "x-secret").is_empty());
        assert_eq!(values(&req, "x-other"), vec!["2"]);
    }

    #[test]
    fn gateway_cookie_is_removed_others_kept() {
        let mut req = request(&[
            ("Cookie", "a=1; steemgate=v1.x.y; b=2"),
            ("Cookie", "steemgate=v1.z.w; c=3"),
        ]);
        sanitize_upstream_request(&mut req, "steemgate", &FWD, None).unwrap();
        assert_eq!(values(&req, "cookie"), vec!["a=1; b=2; c=3"]);
        let mut only = request(&[("Cookie", "steemgate=v1.x.y")]);
        sanitize_upstream_request(&mut only, "steemgate", &FWD, None).unwrap();
        assert!(values(&only, "cookie").is_empty());
    }

    #[test]
    fn other_cookies_are_kept_byte_for_byte() {
        // Found by fuzzing: the kept cookies went through a lossy UTF-8
        // conversion, so another application's non-UTF-8 value was rewritten.
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.append_header("Cookie", b"steemgate=v1.x.y; a=caf\xe9".as_slice())
            .unwrap();
        req.append_header(
            "Cookie",
            b"\xc2\xa0steemgate\xc2\xa0=v1.z.w; b=\xff 2".as_slice(),
        )
        .unwrap();
        sanitize_upstream_request(&mut req, "steemgate", &FWD, None).unwrap();
        let cookies: Vec<&[u8]> = req
            .headers
            .get_all("cookie")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(cookies, vec![b"a=caf\xe9; b=\xff 2".as_slice()]);
    }

    #[test]
    fn forwarding_headers_are_replaced() {
        let mut req = request(&[
            ("X-Forwarded-For", "6.6.6.6"),
            ("Forwarded", "for=6.6.6.6"),
            ("X-Real-IP", "6.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("X_Forwarded_For", "6.6.6.6"),
            ("X.Real.IP", "6.6.6.6"),
            ("x_forwarded_host", "evil.example"),
        ]);
        let fwd = ForwardedFor {
            client: Some(client_chain(
                "127.0.0.1".parse().unwrap(),
                [b"6.6.6.6".as_slice()],
                &[],
            )),
            host: Some("app.example"),
            proto: "http",
        };
        sanitize_upstream_request(&mut req, "steemgate", &fwd, None).unwrap();
        assert_eq!(values(&req, "x-forwarded-for"), vec!["127.0.0.1"]);
        assert_eq!(values(&req, "x-real-ip"), vec!["127.0.0.1"]);
        assert_eq!(values(&req, "x-forwarded-proto"), vec!["http"]);
        assert_eq!(values(&req, "x-forwarded-host"), vec!["app.example"]);
        assert!(values(&req, "forwarded").is_empty());
        let leftovers: Vec<&str> = req
            .headers
            .iter()
            .filter(|(_, v)| {
                v.as_bytes().starts_with(b"6.6.6.6") || v.as_bytes() == b"evil.example"
            })
            .map(|(n, _)| n.as_str())
            .collect();
        assert!(leftovers.is_empty(), "aliases survived: {leftovers:?}");
    }

    #[test]
    fn only_trusted_peers_extend_the_forwarding_chain() {
        let nets: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: std::net::IpAddr = "10.1.2.3".parse().unwrap();
        let outsider: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let sent = [b"198.51.100.7, 10.9.9.9".as_slice()];
        assert_eq!(
            client_chain(outsider, sent, &nets),
            ClientChain {
                forwarded_for: "203.0.113.9".into(),
                real_ip: "203.0.113.9".into()
            }
        );
        assert_eq!(
            client_chain(proxy, sent, &nets),
            ClientChain {
                forwarded_for: "198.51.100.7, 10.9.9.9, 10.1.2.3".into(),
                real_ip: "198.51.100.7".into()
            }
        );
        // Several header lines are one list, in order.
        let two = [b"1.1.1.1".as_slice(), b"2.2.2.2".as_slice()];
        assert_eq!(
            client_chain(proxy, two, &nets).forwarded_for,
            "1.1.1.1, 2.2.2.2, 10.1.2.3"
        );
        // A junk entry fails closed to the peer alone.
        for junk in [
            b"1.1.1.1, evil".as_slice(),
            b"".as_slice(),
            b"\xff".as_slice(),
        ] {
            assert_eq!(client_chain(proxy, [junk], &nets).forwarded_for, "10.1.2.3");
        }
        // The per-thread memory of the last peer never answers for another.
        for peer in ["203.0.113.9", "203.0.113.10", "2001:db8::1", "203.0.113.9"] {
            let ip: std::net::IpAddr = peer.parse().unwrap();
            for _ in 0..2 {
                let chain = client_chain(ip, sent, &nets);
                assert_eq!(
                    (chain.forwarded_for.as_str(), chain.real_ip.as_str()),
                    (peer, peer)
                );
            }
        }
        // Nothing sent: the trusted peer is the client.
        assert_eq!(
            client_chain(proxy, std::iter::empty(), &nets).real_ip,
            "10.1.2.3"
        );
    }
}
