//! One canonical request path for both the route decision and the upstream.
//!
//! Why: gateways are bypassed when the router and the upstream read a path
//! differently (`/public/../app`, `/%61pp`, `//app`, `/app;x`, `%2F`). Here the
//! path is canonicalized once; the route is chosen on the result and the
//! upstream receives exactly the same path. What cannot be made unambiguous
//! is refused with 400: encoded slashes and backslashes, backslashes, `;`
//! path parameters, NUL and control characters, non-origin-form targets,
//! double encoding (`%252e`), escapes that are not valid UTF-8 (overlong
//! `%c0%ae`), and encoded look-alikes of `.`, `/`, `\` (`%E2%80%A5` is
//! `‥`, which NFKC-normalizing upstreams read as `..`).

/// Why a request target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the request target must be a path starting with '/'")]
    NotOriginForm,
    #[error("encoded '/' or '\\' in a path is ambiguous")]
    EncodedSeparator,
    #[error("'\\' in a path is ambiguous")]
    Backslash,
    #[error("';' path parameters are not accepted")]
    PathParameter,
    #[error(
        "control characters, spaces, '#' or look-alikes of '.', '/', '\\' are not allowed in a path"
    )]
    BadCharacter,
    #[error("malformed, double or non-UTF-8 percent-encoding in the path")]
    BadEncoding,
    #[error("path too long")]
    TooLong,
}

use std::borrow::Cow;

/// Longest path accepted (bytes, before canonicalization).
pub const MAX_PATH_LEN: usize = 8 * 1024;

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Characters that read as `.`, `/` or `\\` after Unicode (NFKC)
/// normalization or to a human: a path or redirect must not contain them.
pub fn is_separator_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{2024}' // ONE DOT LEADER (NFKC '.')
            | '\u{2025}' // TWO DOT LEADER (NFKC '..')
            | '\u{2026}' // HORIZONTAL ELLIPSIS (NFKC '...')
            | '\u{FE52}' // SMALL FULL STOP
            | '\u{FF0E}' // FULLWIDTH FULL STOP
            | '\u{3002}' // IDEOGRAPHIC FULL STOP (a dot in IDNA hosts)
            | '\u{FF61}' // HALFWIDTH IDEOGRAPHIC FULL STOP
            | '\u{2044}' // FRACTION SLASH
            | '\u{2215}' // DIVISION SLASH
            | '\u{29F8}' // BIG SOLIDUS
            | '\u{FF0F}' // FULLWIDTH SOLIDUS
            | '\u{2571}' // BOX DRAWINGS LIGHT DIAGONAL
            | '\u{0338}' // COMBINING LONG SOLIDUS OVERLAY
            | '\u{2100}'..='\u{2101}' // ℀ ℁ (NFKC 'a/c', 'a/s')
            | '\u{2105}'..='\u{2106}' // ℅ ℆ (NFKC 'c/o', 'c/u')
            | '\u{2216}' // SET MINUS
            | '\u{29F5}' // REVERSE SOLIDUS OPERATOR
            | '\u{29F9}' // BIG REVERSE SOLIDUS
            | '\u{FE68}' // SMALL REVERSE SOLIDUS (NFKC '\\')
            | '\u{FF3C}' // FULLWIDTH REVERSE SOLIDUS (NFKC '\\')
            | '\u{2572}' // BOX DRAWINGS LIGHT DIAGONAL UPPER LEFT
    )
}

/// Canonicalizes the path part of a request target (no query).
///
/// Percent-encoded unreserved characters are decoded (`%61` → `a`,
/// `%2e` → `.`), other escapes are kept with uppercase hex, `.` and `..`
/// segments are resolved (never above the root), and empty segments
/// (`//`) are dropped. A trailing slash is kept.
pub fn canonicalize(raw: &str) -> Result<String, PathError> {
    canonical(raw).map(Cow::into_owned)
}

/// [`canonicalize`] without a copy when `raw` is already canonical (the
/// common case: every proxied request goes through this).
pub fn canonical(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if raw.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if is_plainly_canonical(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    canonicalize_in_full(raw).map(Cow::Owned)
}

/// Whether [`canonicalize_in_full`] would return `raw` unchanged, decided
/// without building anything: it starts with `/`, every byte is a printable
/// ASCII character taken as-is (no `%` escape, no `\`, `;` or `#`), and no
/// segment is empty, `.` or `..` (a single trailing `/` is kept as-is).
/// Anything else takes the full path, so a `false` here is never wrong.
fn is_plainly_canonical(raw: &str) -> bool {
    let Some(rest) = raw.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let verbatim = |b: &u8| (0x21..0x7f).contains(b) && !matches!(b, b'%' | b'\\' | b';' | b'#');
    if !raw.as_bytes().iter().all(verbatim) {
        return false;
    }
    rest.strip_suffix('/')
        .unwrap_or(rest)
        .split('/')
        .all(|segment| !matches!(segment, "" | "." | ".."))
}

/// The full canonicalization (see [`canonicalize`]), for targets that are
/// not [plainly canonical](is_plainly_canonical) already.
fn canonicalize_in_full(raw: &str) -> Result<String, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    let bytes = raw.as_bytes();
    // Decode unreserved escapes and validate every byte first.
    let mut decoded = String::with_capacity(raw.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex_value),
                    bytes.get(i + 2).copied().and_then(hex_value),
                ) else {
                    return Err(PathError::BadEncoding);
                };
                let value = hi * 16 + lo;
                if value == b'/' || value == b'\\' {
                    return Err(PathError::EncodedSeparator);
                }
                if value == b';' {
                    return Err(PathError::PathParameter);
                }
                if value < 0x20 || value == 0x7f {
                    return Err(PathError::BadCharacter);
                }
                if is_unreserved(value) {
                    decoded.push(value as char);
                } else {
                    decoded.push('%');
                    decoded.push(char::from(b"0123456789ABCDEF"[usize::from(hi)]));
                    decoded.push(char::from(b"0123456789ABCDEF"[usize::from(lo)]));
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::PathParameter),
            b'#' | b' ' => return Err(PathError::BadCharacter),
            _ if !(0x21..0x7f).contains(&b) => return Err(PathError::BadCharacter),
            _ => {
                decoded.push(b as char);
                i += 1;
            }
        }
    }
    // `%25` followed by hex is a double encoding (`%252e`, or `%25%32%65`
    // once the unreserved escapes are decoded): an upstream that decodes
    // twice would see another path.
    if decoded
        .as_bytes()
        .windows(5)
        .any(|w| w.starts_with(b"%25") && hex_value(w[3]).is_some() && hex_value(w[4]).is_some())
    {
        return Err(PathError::BadEncoding);
    }
    // What an upstream that decodes the escapes sees must be valid UTF-8
    // (no overlong `%c0%ae`) without look-alike separators.
    let fully_decoded: Vec<u8> = percent_encoding::percent_decode_str(&decoded).collect();
    let text = std::str::from_utf8(&fully_decoded).map_err(|_| PathError::BadEncoding)?;
    if text.chars().any(is_separator_lookalike) {
        return Err(PathError::BadCharacter);
    }
    let ends_in_directory = decoded.len() > 1
        && (decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/.."));
    let mut out = String::with_capacity(decoded.len());
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                let parent = out.rfind('/').unwrap_or(0);
                out.truncate(parent);
            }
            s => {
                out.push('/');
                out.push_str(s);
            }
        }
    }
    if out.is_empty() || (ends_in_directory && !out.ends_with('/')) {
        out.push('/');
    }
    Ok(out)
}

/// The parts of a request target, after canonicalization. Borrows the
/// request when the target is already canonical (the common case).
pub struct RequestTarget<'r> {
    pub path: Cow<'r, str>,
    pub query: Option<Cow<'r, str>>,
    /// Whether the target must be rewritten before proxying.
    pub changed: bool,
    /// The host of an absolute-form target's authority.
    pub authority_host: Option<String>,
}

impl RequestTarget<'_> {
    /// The canonical target as sent upstream: path and query.
    pub fn to_origin_form(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.to_string(),
        }
    }
}

/// Splits an origin-form target and canonicalizes its path; `changed` says
/// whether the canonical path differs from the one sent.
fn canonical_origin_form(origin_form: &str) -> Result<(Cow<'_, str>, Option<&str>, bool), String> {
    let (raw_path, query) = match origin_form.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (origin_form, None),
    };
    let path = canonical(raw_path).map_err(|e| e.to_string())?;
    if query.is_some_and(|q| q.contains('#')) {
        return Err("'#' is not allowed in the request target".into());
    }
    let changed = path != raw_path;
    Ok((path, query, changed))
}

/// Reads a request target as the client sent it (`raw`, and its `Host`
/// header): origin form, or absolute form whose authority must agree with
/// `Host`. The error is the reason given to the client with a 400.
pub fn parse_request_target<'r>(
    raw: &'r [u8],
    host_header: Option<&[u8]>,
) -> Result<RequestTarget<'r>, String> {
    let raw = std::str::from_utf8(raw).map_err(|_| "request target is not UTF-8".to_string())?;
    if raw.starts_with('/') {
        let (path, query, changed) = canonical_origin_form(raw)?;
        return Ok(RequestTarget {
            path,
            query: query.map(Cow::Borrowed),
            changed,
            authority_host: None,
        });
    }
    // Absolute-form (RFC 9112 §3.2.2). pingora keeps it verbatim in
    // `raw_path` and leaves scheme and authority off `req.uri`, so parse
    // the raw target: route on its path, take the host from its
    // authority, and refuse a Host header that disagrees.
    let absolute: http::Uri = raw
        .parse()
        .map_err(|_| "the request target must be a path".to_string())?;
    let (Some("http" | "https"), Some(authority)) = (absolute.scheme_str(), absolute.authority())
    else {
        return Err("the request target must be a path".into());
    };
    if authority.as_str().contains('@') {
        return Err("credentials in the request target are not accepted".into());
    }
    let target_host = super::routes::host_from_header(authority.as_str().as_bytes());
    let host_header = host_header.and_then(super::routes::host_from_header);
    if host_header.is_some() && target_host != host_header {
        return Err("the Host header does not match the absolute request target".into());
    }
    let origin_form = absolute.path_and_query().map_or("/", |pq| pq.as_str());
    let (path, query, _) = canonical_origin_form(origin_form)?;
    Ok(RequestTarget {
        path: Cow::Owned(path.into_owned()),
        query: query.map(|q| Cow::Owned(q.to_string())),
        changed: true,
        authority_host: target_host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dot_segments_and_decodes_unreserved() {
        let cases = [
            ("/", "/"),
            ("/app", "/app"),
            ("/app/", "/app/"),
            ("/public/../app", "/app"),
            ("/public/%2e%2e/app", "/app"),
            ("/public/%2E%2e/app", "/app"),
            ("/public/.%2e/app", "/app"),
            ("//app", "/app"),
            ("/a//b///c", "/a/b/c"),
            ("/%61pp", "/app"),
            ("/../../etc", "/etc"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/.", "/a/"),
            ("/..", "/"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/x%7e", "/x~"),
            ("/100%25", "/100%25"),
            ("/100%25off", "/100%25off"),
        ];
        for (raw, want) in cases {
            assert_eq!(canonicalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn refuses_ambiguous_targets() {
        let cases = [
            ("app", PathError::NotOriginForm),
            ("*", PathError::NotOriginForm),
            ("http://evil/app", PathError::NotOriginForm),
            ("/a%2Fb", PathError::EncodedSeparator),
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5Cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/app;x", PathError::PathParameter),
            ("/app%3bx", PathError::PathParameter),
            ("/a%00", PathError::BadCharacter),
            ("/a#b", PathError::BadCharacter),
            ("/a%zz", PathError::BadEncoding),
            ("/a%2", PathError::BadEncoding),
            ("/public/%252e%252e/app", PathError::BadEncoding),
            ("/a%252Fb", PathError::BadEncoding),
            ("/a%25%32%65%25%32%65/b", PathError::BadEncoding),
            ("/%c0%ae%c0%ae/app", PathError::BadEncoding),
            ("/%e0%80%af", PathError::BadEncoding),
            ("/a%ff", PathError::BadEncoding),
            ("/public/%E2%80%A5/app", PathError::BadCharacter),
            ("/%EF%BC%8Fapp", PathError::BadCharacter),
            ("/%EF%BC%BCapp", PathError::BadCharacter),
        ];
        for (raw, want) in cases {
            assert_eq!(canonicalize(raw), Err(want), "{raw}");
        }
    }

    #[test]
    fn the_shortcut_agrees_with_the_full_canonicalization() {
        // Hand-picked edges of the shortcut: each must give what the full
        // path gives, whichever of the two answers.
        for raw in [
            "/",
            "//",
            "/a",
            "/a/",
            "/a//",
            "/a/b",
            "/a/./b",
            "/a/../b",
            "/.",
            "/..",
            "/a/.",
            "/a/..",
            "/.a",
            "/..a",
            "/a.",
            "/a..",
            "/...",
            "/a/b/",
            "/~x_y-z.",
            "/a%41",
            "/a;b",
            "/a#b",
            "/a b",
            "/a\\b",
            "/caf\u{e9}",
            "a",
            "",
            "/a\t",
            "/a/\u{7f}",
            "/!$&'()*+,=:@",
        ] {
            assert_eq!(
                canonical(raw).map(Cow::into_owned),
                canonicalize_in_full(raw),
                "{raw:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn the_shortcut_agrees_on_any_path(raw in "/[a-z./%;#\\\\2eE~ -]{0,12}") {
            let fast = canonical(&raw).map(Cow::into_owned);
            proptest::prop_assert_eq!(fast, canonicalize_in_full(&raw));
        }

        #[test]
        fn the_shortcut_agrees_on_any_bytes(raw in "\\PC{0,10}") {
            let fast = canonical(&raw).map(Cow::into_owned);
            proptest::prop_assert_eq!(fast, canonicalize_in_full(&raw));
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        for raw in ["/public/../app", "//x//y/", "/%61/%2e/b", "/a/b/..", "/"] {
            let once = canonicalize(raw).unwrap();
            assert_eq!(canonicalize(&once).unwrap(), once, "{raw}");
        }
    }

    #[test]
    fn request_targets_in_origin_and_absolute_form() {
        let t = parse_request_target(b"/a/./b?x=1", Some(b"app.example.com")).unwrap();
        assert_eq!(
            (t.path.as_ref(), t.query.as_deref(), t.changed),
            ("/a/b", Some("x=1"), true)
        );
        assert_eq!(t.to_origin_form(), "/a/b?x=1");
        let t =
            parse_request_target(b"http://App.example.com/x", Some(b"app.example.com")).unwrap();
        assert_eq!(t.authority_host.as_deref(), Some("app.example.com"));
        assert_eq!(t.path, "/x");
        for (raw, host) in [
            (&b"http://evil.example/x"[..], Some(&b"app.example.com"[..])),
            (b"http://user@app.example.com/x", None),
            (b"ftp://app.example.com/x", None),
            (b"/a?b#c", None),
            (b"/\xff", None),
            (b"/a%2fb", None),
            (b"*", None),
        ] {
            assert!(parse_request_target(raw, host).is_err(), "{raw:?}");
        }
        assert!(parse_request_target(&[b'/', 0xff], None).is_err());
    }
}
