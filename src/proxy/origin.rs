//! Is this state-changing request from one of our own pages?
//!
//! Why a module of its own: the answer decides whether login, logout and
//! the devnet's simulated transfer may run, so it must be right in every
//! current browser and refuse every cross-site forgery — and it once was
//! not: the gateway's pages sent `Referrer-Policy: no-referrer`, with which
//! Chromium sends `Origin: null` on a same-origin form POST, and an
//! `Origin`-only check refused the demo's own button.
//!
//! The decision, in order (the same design as Go's `CrossOriginProtection`):
//! 1. `Sec-Fetch-Site` is sent by every current browser (Chromium 76+,
//!    Firefox 90+, Safari 16.4+) on every request, whatever the referrer
//!    policy, and a page cannot forge it. `same-origin` and `none` (the
//!    user typed or bookmarked the request) pass; `same-site` (a sibling
//!    subdomain, possibly taken over) and `cross-site` are refused.
//! 2. Without it (an older browser), `Origin`, when present, must name this
//!    host: scheme's default port filled in, host compared without case.
//!    `Origin: null` (a sandboxed frame, a privacy-minded browser) is
//!    refused, since it cannot be told apart from a forgery.
//! 3. With neither header the client is not a current browser (curl, a
//!    script, a browser too old to send `Origin` on POST). Such a client
//!    cannot be steered by another site, and a browser that old still
//!    keeps our `SameSite=Lax` cookie off cross-site POSTs, so it passes.
//!
//! The gateway's pages also send `Referrer-Policy: same-origin` (see
//! [`super::respond`]), so browsers without `Sec-Fetch-Site` send a real
//! `Origin` on our own forms while nothing leaks to other sites.

/// The request headers the decision reads, as the client sent them.
#[derive(Clone, Copy, Debug, Default)]
pub struct OriginHeaders<'a> {
    pub sec_fetch_site: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
}

/// Why a request was refused (for the audit log; the client sees one page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrossSite {
    /// `Sec-Fetch-Site` said `cross-site`, `same-site` or something unknown.
    FetchSite,
    /// `Origin` names another host, is `null`, or cannot be read.
    Origin,
    /// `Origin` is present but the request has no usable `Host`.
    NoHost,
}

impl CrossSite {
    pub fn as_str(self) -> &'static str {
        match self {
            CrossSite::FetchSite => "sec-fetch-site",
            CrossSite::Origin => "origin",
            CrossSite::NoHost => "no-host",
        }
    }
}

/// `Ok` when the request may change state; see the module doc for why.
pub fn check(headers: OriginHeaders<'_>) -> Result<(), CrossSite> {
    if let Some(site) = headers.sec_fetch_site {
        let site = trim(site);
        return if site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none") {
            Ok(())
        } else {
            Err(CrossSite::FetchSite)
        };
    }
    let Some(origin) = headers.origin else {
        return Ok(());
    };
    let origin = std::str::from_utf8(trim(origin))
        .ok()
        .and_then(Authority::from_origin)
        .ok_or(CrossSite::Origin)?;
    let host = headers
        .host
        .and_then(|h| std::str::from_utf8(trim(h)).ok())
        .and_then(|h| Authority::from_host(h, origin.default_port))
        .ok_or(CrossSite::NoHost)?;
    if origin.host.eq_ignore_ascii_case(&host.host) && origin.port == host.port {
        Ok(())
    } else {
        Err(CrossSite::Origin)
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A host and port, with the scheme's default port filled in.
struct Authority {
    host: String,
    port: u16,
    default_port: u16,
}

impl Authority {
    /// `scheme://host[:port]`, exactly as browsers serialize an origin
    /// (no path, no user info); anything else, `null` included, is `None`.
    fn from_origin(text: &str) -> Option<Self> {
        let url = url::Url::parse(text).ok()?;
        let default_port = match url.scheme() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return None;
        }
        let host = url.host_str()?.trim_end_matches('.').to_string();
        Some(Self {
            host,
            port: url.port().unwrap_or(default_port),
            default_port,
        })
    }

    /// A `Host` header (`name`, `name:port`, `[v6]:port`); the port
    /// defaults to the origin's scheme's.
    fn from_host(text: &str, default_port: u16) -> Option<Self> {
        let (host, port) = match text.rsplit_once(':') {
            Some((host, port))
                if !port.contains(']') && (!host.contains(':') || host.ends_with(']')) =>
            {
                // Digits only, as the router reads a port: `u16::parse`
                // alone would take `+80` for 80.
                if !port.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (host, Some(port.parse::<u16>().ok()?))
            }
            _ => (text, None),
        };
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.trim_end_matches('.').to_string(),
            port: port.unwrap_or(default_port),
            default_port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(
        site: Option<&str>,
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Result<(), CrossSite> {
        check(OriginHeaders {
            sec_fetch_site: site.map(str::as_bytes),
            origin: origin.map(str::as_bytes),
            host: host.map(str::as_bytes),
        })
    }

    #[test]
    fn chromium_form_post_from_a_no_referrer_page_passes() {
        // What Chromium sent for the demo's own button: Origin null.
        assert_eq!(
            decide(Some("same-origin"), Some("null"), Some("127.0.0.1:8080")),
            Ok(())
        );
    }

    #[test]
    fn fetch_site_decides_when_present() {
        let host = Some("app.example.com");
        assert_eq!(decide(Some("same-origin"), None, host), Ok(()));
        assert_eq!(decide(Some("none"), None, host), Ok(()));
        assert_eq!(decide(Some(" Same-Origin "), None, host), Ok(()));
        for refused in ["cross-site", "same-site", "", "bogus"] {
            assert_eq!(
                decide(Some(refused), Some("https://app.example.com"), host),
                Err(CrossSite::FetchSite),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn origin_decides_for_older_browsers() {
        assert_eq!(
            decide(None, Some("http://127.0.0.1:8080"), Some("127.0.0.1:8080")),
            Ok(())
        );
        assert_eq!(
            decide(
                None,
                Some("https://App.Example.com"),
                Some("app.example.com")
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                None,
                Some("https://app.example.com"),
                Some("app.example.com:443")
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                None,
                Some("http://app.example.com:80"),
                Some("app.example.com")
            ),
            Ok(())
        );
        assert_eq!(
            decide(None, Some("http://[::1]:8080"), Some("[::1]:8080")),
            Ok(())
        );
        assert_eq!(
            decide(
                None,
                Some("https://app.example.com."),
                Some("app.example.com")
            ),
            Ok(())
        );
    }

    #[test]
    fn foreign_or_unreadable_origins_are_refused() {
        let host = Some("app.example.com");
        for origin in [
            "https://evil.example",
            "https://app.example.com.evil.example",
            "https://app.example.com:8443",
            "http://app.example.com:443",
            "null",
            "",
            "app.example.com",
            "ftp://app.example.com",
            "https://app.example.com/path",
            "https://user@app.example.com",
        ] {
            assert_eq!(
                decide(None, Some(origin), host),
                Err(CrossSite::Origin),
                "{origin:?}"
            );
        }
    }

    #[test]
    fn an_origin_without_a_host_is_refused() {
        assert_eq!(
            decide(None, Some("https://app.example.com"), None),
            Err(CrossSite::NoHost)
        );
        assert_eq!(
            decide(None, Some("https://app.example.com"), Some("")),
            Err(CrossSite::NoHost)
        );
        // Found by fuzzing: `+80` passed as port 80 while the router took
        // the whole `app.example.com:+80` for the host.
        for host in [
            "app.example.com:x",
            "app.example.com:+443",
            "app.example.com:",
        ] {
            assert_eq!(
                decide(None, Some("https://app.example.com"), Some(host)),
                Err(CrossSite::NoHost),
                "{host:?}"
            );
        }
    }

    #[test]
    fn clients_that_are_not_current_browsers_pass() {
        assert_eq!(decide(None, None, Some("app.example.com")), Ok(()));
        assert_eq!(decide(None, None, None), Ok(()));
    }
}
