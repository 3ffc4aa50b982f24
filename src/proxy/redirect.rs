//! Post-login redirect targets: local paths only.
//!
//! Why: the `rd` parameter is the classic open redirect of auth gateways
//! (`//evil.com`, `/\evil.com`, `https://evil.com`, tab/newline tricks that
//! browsers strip, encoded variants). A target is accepted only if it is a
//! path on this site in every reading; anything else becomes `/`.

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
    // Check the raw form and the forms a browser or upstream may decode to.
    let once = percent_decode_str(rd).decode_utf8_lossy().into_owned();
    let twice = percent_decode_str(&once).decode_utf8_lossy().into_owned();
    [rd, once.as_str(), twice.as_str()]
        .iter()
        .all(|form| looks_local(form))
}

fn looks_local(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // `//host` and `/\host` are network-path references in browsers.
    if matches!(bytes.get(1), Some(b'/') | Some(b'\\')) {
        return false;
    }
    // Browsers strip tabs/newlines and treat backslashes as slashes; any
    // whitespace or control character is suspect in a redirect.
    !path
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
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
        ] {
            assert_eq!(safe_redirect_target(rd), "/", "{rd:?}");
        }
    }
}
