//! Path confusion attacks: the route decision and the upstream must read
//! one path.
//!
//! Why: bypasses like CVE-2025-54576 (query), GHSA-pxq7 (fragment) and
//! Envoy CVE-2021-39206 (prefix) came from the gateway authorising one path
//! while the upstream served another. Named tricks run against the real
//! binary with two upstreams (`A` behind required routes, `B` behind public
//! ones); a property test generates paths from tricky segments and checks
//! them in-process against `canonicalize` + `RouteTable::find` (many
//! cases), then a smaller sample against the live binary.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use steemgate::config::{AuthMode, Config, Upstream};
use steemgate::proxy::path::canonicalize;
use steemgate::proxy::routes::RouteTable;
use support::attack::{AttackStack, QUICK, exchange};

const HOST: &str = "127.0.0.1";

/// The live stack's route table, in-process (A = port 1, B = port 2).
fn table() -> RouteTable {
    let yaml = r#"chain: {name: steem, account: gate-test}
session: {secret: "property-test-secret-0123456789abcdef"}
routes:
  - {host: "127.0.0.1", path: /, upstream: "http://127.0.0.1:1", auth: required}
  - {path: /app, upstream: "http://127.0.0.1:1", auth: required}
  - {path: /ws, upstream: "http://127.0.0.1:1", auth: required}
  - {path: /admin, upstream: "http://127.0.0.1:1", auth: required, allow: [alice]}
  - {path: /public, upstream: "http://127.0.0.1:2", auth: public}
  - {path: /maybe, upstream: "http://127.0.0.1:2", auth: optional}
  - {host: "other.example", path: /, upstream: "http://127.0.0.1:2", auth: public}
"#;
    let config = Config::from_yaml(yaml, std::path::Path::new(".")).unwrap();
    RouteTable::compile(&config.routes, |upstream| match upstream {
        Upstream::Http { port, .. } => Ok(std::net::SocketAddr::from(([127, 0, 0, 1], *port))),
        Upstream::Builtin(_) => Err("no builtins here".to_string()),
    })
    .unwrap()
}

/// Upstream name ("A"/"B") and auth of the route for a canonical path.
fn route_of(table: &RouteTable, host: &str, path: &str) -> Option<(&'static str, AuthMode, usize)> {
    table.find(Some(host), path).map(|(index, route)| {
        let name = if route.upstream.port() == 1 { "A" } else { "B" };
        (name, route.auth, index)
    })
}

/// Resolves dot segments and empty segments like a lenient upstream.
fn lenient_resolve(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// Ways an upstream might read the canonical path it receives: as is;
/// percent-decoded once (then cut at `?`/`#`, `\` read as `/`, dots
/// resolved); decoded twice.
fn upstream_readings(canonical: &str) -> Vec<String> {
    let once = percent_encoding::percent_decode_str(canonical)
        .decode_utf8_lossy()
        .into_owned();
    let twice = percent_encoding::percent_decode_str(&once)
        .decode_utf8_lossy()
        .into_owned();
    let mut readings = vec![canonical.to_string()];
    for decoded in [once, twice] {
        let cut = decoded
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .replace('\\', "/");
        readings.push(lenient_resolve(&cut));
        readings.push(lenient_resolve(&decoded.replace('\\', "/")));
    }
    readings
}

/// The gateway's reading of a raw origin-form target: `Err` = it answers 400.
fn gateway_path(raw: &str) -> Result<String, String> {
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    if query.is_some_and(|q| q.contains('#')) {
        return Err("fragment in query".into());
    }
    canonicalize(path).map_err(|e| e.to_string())
}

const SEGMENTS: &[&str] = &[
    "public",
    "maybe",
    "app",
    "admin",
    "ws",
    "x",
    "publicx",
    "PUBLIC",
    "",
    ".",
    "..",
    "...",
    "%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "\\",
    ";x",
    "%3b",
    "?",
    "#",
    "%3f",
    "%3F",
    "%23",
    "%252e",
    "%252f",
    "%25",
    "%c0%ae",
    "%c0%af",
    "%e2%80%a5",
    "%e2%80%a4",
    "%ef%bc%8f",
    "%ef%bc%8e",
    "%61pp",
    "%70ublic",
    "%00",
    "%20",
    "%09",
    " ",
    "~",
    "%7e",
    "%2e%2e%2f",
    "%252e%252e",
    ".%252e",
    "%25%32%65%25%32%65",
    "%25%32e.",
    "..;",
    "%2e%2e;x",
    "caf%c3%a9",
    "//",
    "/..",
    "./",
    "%ff",
];

fn tricky_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SEGMENTS), 1..7)
        .prop_map(|segments| format!("/{}", segments.join("/")))
}

/// In-process property: 2,048 generated targets.
#[test]
fn canonical_paths_route_the_same_for_every_upstream_reading() {
    let table = table();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 2048,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&tricky_path(), |raw| {
            let Ok(canonical) = gateway_path(&raw) else {
                return Ok(()); // the gateway answers 400 itself
            };
            prop_assert_eq!(
                canonicalize(&canonical),
                Ok(canonical.clone()),
                "fixed point"
            );
            prop_assert!(
                !canonical.contains("//") && canonical.split('/').all(|s| s != "." && s != ".."),
                "{} → {}",
                raw,
                canonical
            );
            let (name, auth, index) = route_of(&table, HOST, &canonical)
                .ok_or_else(|| TestCaseError::fail("the catch-all route must match"))?;
            for reading in upstream_readings(&canonical) {
                let (other_name, _, other_index) = route_of(&table, HOST, &reading)
                    .ok_or_else(|| TestCaseError::fail("catch-all"))?;
                // Authorised as public/optional: every reading must be that route.
                // Authorised as required: the strictest check already ran.
                prop_assert!(
                    auth == AuthMode::Required || (other_index == index && other_name == name),
                    "{} authorised as {:?} on {} but an upstream may read {} (route {})",
                    raw,
                    auth,
                    name,
                    reading,
                    other_name
                );
            }
            Ok(())
        })
        .unwrap();
}

/// Live sample: anonymous requests never reach `A`; whatever reaches `B`
/// is a canonical path whose route is `B`'s.
#[test]
fn live_sample_of_generated_paths() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    let table = table();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 160,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(tricky_path(), any::<bool>()), |(raw, logged_in)| {
            stack.clear();
            let cookie = if logged_in { format!("{bob}\r\n") } else { String::new() };
            let request = format!(
                "GET {raw} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n{cookie}\r\n",
                stack.addr()
            );
            let reply = exchange(stack.addr(), request.as_bytes(), QUICK);
            let seen = stack.all_seen();
            match reply.status() {
                Some(400 | 401 | 404) | Some(403) if reply.status() != Some(403) || logged_in => {
                    prop_assert!(seen.is_empty(), "{} answered {:?} yet reached {:?}", raw, reply.status(), seen);
                }
                Some(200) => {
                    prop_assert_eq!(seen.len(), 1, "{}", raw);
                    let target = seen[0].target.clone();
                    let path = target.split('?').next().unwrap_or("");
                    prop_assert_eq!(canonicalize(path), Ok(path.to_string()), "{} sent non-canonical {}", raw, target);
                    let (name, auth, _) = route_of(&table, HOST, path)
                        .ok_or_else(|| TestCaseError::fail("catch-all"))?;
                    prop_assert_eq!(name, seen[0].upstream, "{} → {} answered by the wrong upstream", raw, target);
                    if !logged_in {
                        prop_assert!(auth != AuthMode::Required, "{} reached a required route anonymously", raw);
                    }
                    // pingora drops a fragment and encodes a space before the gateway reads the target.
                    let as_read = raw.split('#').next().unwrap_or("").replace(' ', "%20");
                    prop_assert_eq!(Ok(path.to_string()), gateway_path(&as_read), "{} authorised another path", raw);
                }
                other => prop_assert!(false, "{} → unexpected {:?}: {}", raw, other, reply.text()),
            }
            Ok(())
        })
        .unwrap();
}

/// Outcome of a named trick (anonymous, JSON client).
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The gateway refuses the request.
    Refused,
    /// The required route's auth check stops it.
    NeedsLogin,
    /// The public upstream gets exactly this target.
    PublicGets(&'static str),
}

#[test]
fn named_path_tricks_against_the_live_binary() {
    let stack = AttackStack::start();
    let host = stack.addr().to_string();
    let origin = |target: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
        )
    };
    let with_host = |target: &str, host: &str| {
        format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
        )
    };
    use Expect::*;
    let cases: Vec<(String, Expect)> = vec![
        (origin("/public/../app"), NeedsLogin),
        (origin("/public/%2e%2e/app"), NeedsLogin),
        (origin("/public/%2E%2E/app"), NeedsLogin),
        (origin("/public/./%2e./app"), NeedsLogin),
        (origin("/%2e%2e/app"), NeedsLogin),
        (origin("//app"), NeedsLogin),
        (origin("///public/../app"), NeedsLogin),
        (origin("/PUBLIC/x"), NeedsLogin),
        (origin("/publicx"), NeedsLogin),
        (origin("/%70ublic/../app"), NeedsLogin),
        (origin("/public%3f/../app"), NeedsLogin),
        (origin("/public%3F/../app"), NeedsLogin),
        (origin("/public%23/../app"), NeedsLogin),
        (origin("/app;x"), Refused),
        (origin("/public;/../app"), Refused),
        (origin("/public/..;/app"), Refused),
        (origin("/public%2F..%2Fapp"), Refused),
        (origin("/public/..%2fapp"), Refused),
        (origin("/public%5C..%5Capp"), Refused),
        (origin("/public\\..\\app"), Refused),
        // pingora drops a fragment before anything else reads the target.
        (origin("/public#/../app"), PublicGets("/public")),
        (origin("/public?x#/../app"), PublicGets("/public?x")),
        (origin("/app#/../public"), NeedsLogin),
        (origin("/public/%252e%252e/app"), Refused),
        (origin("/public/%252e%252e%252fapp"), Refused),
        (origin("/public/%25%32%65%25%32%65/app"), Refused),
        (origin("/public/%c0%ae%c0%ae/app"), Refused),
        (origin("/public/%c0%ae%c0%ae%c0%afapp"), Refused),
        (origin("/public/%e2%80%a5/app"), Refused),
        (origin("/public/%ef%bc%8e%ef%bc%8e/app"), Refused),
        (origin("/public/%ef%bc%8fapp"), Refused),
        (origin("/public/\u{2025}/app"), Refused),
        (origin("/public/x%00"), Refused),
        (origin("*"), Refused),
        (origin("app"), Refused),
        (origin("/public?/../app"), PublicGets("/public?/../app")),
        (origin("/public/.../app"), PublicGets("/public/.../app")),
        (origin("/public/a/../b/%7Ex"), PublicGets("/public/b/~x")),
        (origin("/app/../public/x"), PublicGets("/public/x")),
        // Absolute-form targets: routed on their own path, Host must agree.
        (origin(&format!("http://{host}/app")), NeedsLogin),
        (origin(&format!("http://{host}/public/../app")), NeedsLogin),
        (
            origin(&format!("http://{host}/public/x")),
            PublicGets("/public/x"),
        ),
        (with_host("http://other.example/x", &host), Refused),
        (
            with_host(&format!("http://{host}/public/x"), "other.example"),
            Refused,
        ),
        (with_host("http://127.0.0.1/app", "other.example"), Refused),
        (
            with_host("http://127.0.0.1@other.example/x", "other.example"),
            Refused,
        ),
        (with_host("ftp://127.0.0.1/public/x", "127.0.0.1"), Refused),
        (
            with_host("http://other.example/x/../y", "other.example"),
            PublicGets("/y"),
        ),
        (
            with_host("http://other.example/x/../y", "Other.Example"),
            Refused,
        ),
        // pingora's own target/Host reconciliation refuses this spelling.
        (
            with_host("HTTP://OTHER.EXAMPLE./x/../y", "other.example"),
            Refused,
        ),
        (
            "GET http://other.example/x HTTP/1.1\r\nConnection: close\r\n\r\n".to_string(),
            PublicGets("/x"),
        ),
        // Host spellings pick the host route consistently.
        (with_host("/x", "OTHER.Example"), PublicGets("/x")),
        (with_host("/x", "other.example."), PublicGets("/x")),
        (with_host("/x", "other.example:9999"), PublicGets("/x")),
        (with_host("/x", "127.0.0.1."), NeedsLogin),
        (with_host("/x", "127.0.0.1:1"), NeedsLogin),
    ];
    for (raw, expect) in cases {
        stack.clear();
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        let first_line = raw.lines().next().unwrap_or_default().to_string();
        let seen = stack.all_seen();
        assert!(
            stack.a.seen().is_empty(),
            "{first_line}: an anonymous request reached the required upstream: {seen:?}"
        );
        match expect {
            Refused => {
                assert_eq!(reply.status(), Some(400), "{raw:?}: {}", reply.text());
                assert!(seen.is_empty(), "{first_line}: {seen:?}");
            }
            NeedsLogin => {
                assert_eq!(reply.status(), Some(401), "{raw:?}: {}", reply.text());
                assert!(seen.is_empty(), "{first_line}: {seen:?}");
            }
            PublicGets(target) => {
                assert_eq!(reply.status(), Some(200), "{raw:?}: {}", reply.text());
                assert_eq!(seen.len(), 1, "{first_line}");
                assert_eq!(seen[0].upstream, "B", "{first_line}");
                assert_eq!(seen[0].target, target, "{first_line}");
            }
        }
    }
}

#[test]
fn a_logged_in_path_trick_still_reaches_only_the_authorised_upstream() {
    let stack = AttackStack::start();
    let bob = stack.cookie_for("bob");
    for (path, upstream, target) in [
        ("/app/../public/x", "B", "/public/x"),
        ("/public/../app/x", "A", "/app/x"),
        ("/public/%2e%2e/admin/../app", "A", "/app"),
    ] {
        stack.clear();
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{bob}\r\n\r\n",
            stack.addr()
        );
        let reply = exchange(stack.addr(), raw.as_bytes(), QUICK);
        assert_eq!(reply.status(), Some(200), "{path}: {}", reply.text());
        let seen = stack.all_seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].upstream, seen[0].target.as_str()),
            (upstream, target),
            "{path}"
        );
    }
    // bob is not on /admin's allowlist, however the path is spelled.
    for path in [
        "/public/../admin",
        "/%61dmin",
        "//admin/",
        "/app/../admin/x",
    ] {
        stack.clear();
        let raw = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n{bob}\r\n\r\n",
            stack.addr()
        );
        assert_eq!(
            exchange(stack.addr(), raw.as_bytes(), QUICK).status(),
            Some(403),
            "{path}"
        );
        assert!(stack.all_seen().is_empty(), "{path}");
    }
}
