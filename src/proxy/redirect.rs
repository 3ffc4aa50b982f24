//! Post-login redirect targets: local paths only.
//!
//! Why: the `rd` parameter is the classic open redirect of auth gateways
//! (`//evil.com`, `/\evil.com`, `https://evil.com`, tab/newline tricks that
//! browsers strip, encoded variants at any depth, Unicode look-alikes of `/`
//! and `\\`). A target is accepted only if it is a path on this site in every
//! reading; anything else becomes `/`.

use percent_encoding::percent_decode_str;

/// `rd` if it is a safe local path, else `/`.
pub fn safe_redirect_target(rd: &str) -> String {
    if is_local_path(rd) {
        rd.to_string()
    } else {
        "/".to_string()
    }
}

fn is_local_path(rd: &str) -> bool {
    if rd.len() > 2048 {
        return false;
    }
    // Check the raw form and every form a browser or upstream may decode
    // to, down to the fixed point (each decoding only shrinks the text).
    let mut form = rd.to_string();
    for _ in 0..MAX_DECODINGS {
        if !looks_local(&form) {
            return false;
        }
        let next = percent_decode_str(&form).decode_utf8_lossy().into_owned();
        if next == form {
            return true;
        }
        form = next;
    }
    // Still decoding after that many rounds: nothing legitimate looks like this.
    false
}

/// Percent-decoding rounds a target may need before it is stable.
const MAX_DECODINGS: usize = 8;

fn looks_local(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // `//host` and `/\host` are network-path references in browsers.
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return false;
    }
    // Dot segments and empty segments in the path part resolve to another
    // path in the browser: `/.//evil.com` becomes `//evil.com`.
    let path_part = path.split(['?', '#']).next().unwrap_or("");
    if path_part.contains("//") || path_part.split('/').any(|s| s == "." || s == "..") {
        return false;
    }
    // Browsers strip tabs/newlines and treat backslashes as slashes; any
    // whitespace or control character is suspect in a redirect.
    !path.chars().any(|c| {
        c.is_control() || c.is_whitespace() || c == '\\' || super::path::is_separator_lookalike(c)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass() {
        for rd in [
            "/",
            "/app",
            "/app?x=1&y=http://z",
            "/a/b#frag",
            "/%E2%9C%93",
        ] {
            assert_eq!(safe_redirect_target(rd), rd, "{rd}");
        }
    }

    #[test]
    fn everything_off_site_becomes_root() {
        for rd in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "http:evil.com",
            "evil.com",
            "",
            "/%2F%2Fevil.com",
            "%2F%2Fevil.com",
            "/%5Cevil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/%09/evil.com",
            "/%252F%252Fevil.com",
            "javascript:alert(1)",
            "\\\\evil.com",
            " /x",
            "/x\r\nSet-Cookie: a=b",
            "///evil.com",
            "/.//evil.com",
            "/%2e%2e//evil.com",
            "/%25252F%25252Fevil.com",
            "/%EF%BC%8Fevil.com",
            "/\u{FF0F}evil.com",
        ] {
            assert_eq!(safe_redirect_target(rd), "/", "{rd:?}");
        }
    }
}
