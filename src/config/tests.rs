//! The config's tests: every accepted form, and for every mistake the key
//! path and line an operator is told.

use super::*;
use crate::store::redis::{RedisSpec, RedisTopology};

const SECRET: &str = "test-secret-test-secret-test-secret-1234";

fn minimal(routes: &str) -> String {
    format!(
        "listen: \"127.0.0.1:8080\"\nchain:\n  name: steem\n  account: mygate\nsession:\n  secret: \"{SECRET}\"\nroutes:\n{routes}"
    )
}

fn err(text: &str) -> String {
    match Config::from_yaml(text, Path::new(".")) {
        Ok(_) => panic!("config should have been rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn example_config_is_valid() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/steemgate.yaml"
    ))
    .unwrap();
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    assert_eq!(config.chain.account.as_str(), "mygate");
    assert!(!config.routes.is_empty());
}

#[test]
fn defaults_are_applied() {
    let config = Config::from_yaml(
        &minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n"),
        Path::new("/etc"),
    )
    .unwrap();
    assert_eq!(config.chain.min_amount_units, 1);
    assert_eq!(config.chain.confirm, Confirm::Head);
    assert_eq!(config.session.challenge_ttl, Duration::from_secs(900));
    assert_eq!(config.session.ttl, Duration::from_secs(30 * 86400));
    assert_eq!(config.session.cache_ttl, Duration::from_secs(2));
    assert_eq!(
        config.store,
        StoreLocation::File(PathBuf::from("/etc/./data/steemgate"))
    );
    assert_eq!(config.chain.nodes[0].as_str(), "https://api.steemit.com/");
    assert_eq!(config.chain.login_amount().to_string(), "0.001 STEEM");
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let text = minimal(
        "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required, colour: red}\n",
    );
    let e = err(&text);
    assert!(e.contains("colour") && e.contains("line 8"), "{e}");
    let e = err(&format!(
        "{}\nbogus: 1\n",
        minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}")
    ));
    assert!(e.contains("bogus") && e.contains("line 9"), "{e}");
}

#[test]
fn bad_values_name_key_and_line() {
    let cases = [
        (
            "  - {path: /, upstream: \"ftp://x\", auth: required}\n",
            "only http://",
        ),
        (
            "  - {path: /, upstream: \"http://127.0.0.1:3000/base\", auth: required}\n",
            "without a path",
        ),
        (
            "  - {path: /, upstream: \"builtin:nope\", auth: required}\n",
            "unknown builtin",
        ),
        (
            "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: sometimes}\n",
            "sometimes",
        ),
        (
            "  - {path: app, upstream: \"http://127.0.0.1:3000\", auth: public}\n",
            "must start with '/'",
        ),
        (
            "  - {path: /a/../b, upstream: \"http://127.0.0.1:3000\", auth: public}\n",
            "'..'",
        ),
        (
            "  - {path: /.steemgate/x, upstream: \"http://127.0.0.1:3000\", auth: public}\n",
            "reserved",
        ),
        (
            "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required, allow: [\"Bad_Name\"]}\n",
            "account name",
        ),
    ];
    for (routes, needle) in cases {
        let e = err(&minimal(routes));
        assert!(e.contains(needle), "expected {needle:?} in {e}");
        assert!(e.contains("line 8"), "expected the line in {e}");
    }
}

#[test]
fn duplicate_routes_are_rejected() {
    let e = err(&minimal(
        "  - {path: /app, upstream: \"http://127.0.0.1:3000\", auth: required}\n  - {path: /app/, upstream: \"http://127.0.0.1:3001\", auth: public}\n",
    ));
    assert!(
        e.contains("duplicate route") && e.contains("routes[1]") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn bad_durations_and_secrets() {
    let base = minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n");
    let e = err(&base.replace("  secret:", "  ttl: forever\n  secret:"));
    assert!(e.contains("invalid duration") && e.contains("line"), "{e}");
    let e = err(&base.replace(SECRET, "short"));
    assert!(
        e.contains("session.secret") && e.contains("32 bytes"),
        "{e}"
    );
    let e = err(&base.replace("mygate", "no"));
    assert!(e.contains("account name"), "{e}");
}

#[test]
fn routes_sort_most_specific_first() {
    let config = Config::from_yaml(
        &minimal(
            "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: public}\n  - {path: /app/admin, upstream: \"http://127.0.0.1:3000\", auth: required}\n  - {host: a.example, path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n",
        ),
        Path::new("."),
    )
    .unwrap();
    let order: Vec<_> = config
        .routes
        .iter()
        .map(|r| (r.host.clone(), r.path.clone()))
        .collect();
    assert_eq!(order[0].1, "/app/admin");
    assert_eq!(order[1], (Some("a.example".to_string()), "/".to_string()));
    assert_eq!(order[2], (None, "/".to_string()));
}

#[test]
fn prefix_matches_on_segment_boundaries() {
    let route = Route {
        host: None,
        path: "/app".into(),
        upstream: Upstream::Builtin("hello".into()),
        auth: AuthMode::Public,
        allow: vec![],
        assertion: false,
        policies: vec![],
    };
    assert!(route.matches_path("/app"));
    assert!(route.matches_path("/app/x"));
    assert!(!route.matches_path("/apple"));
    assert!(!route.matches_path("/"));
}

#[test]
fn redis_store_urls() {
    let base = minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n");
    let config = Config::from_yaml(
        &format!("{base}store: \"redis://:pw@127.0.0.1:6379/2?prefix=gw1\"\n"),
        Path::new("."),
    )
    .unwrap();
    let StoreLocation::Redis(spec) = config.store else {
        panic!("not a Redis store");
    };
    assert_eq!(
        spec.topology,
        RedisTopology::Single {
            url: "redis://:pw@127.0.0.1:6379/2".into()
        }
    );
    assert_eq!((spec.prefix.as_str(), spec.wait_replicas), ("gw1", 0));
    let e = err(&format!("{base}store: \"mysql://x\"\n"));
    assert!(e.contains("store"), "{e}");
}

fn redis_store(base: &str, value: &str, dir: &Path) -> Result<RedisSpec, String> {
    match Config::from_yaml(&format!("{base}store: \"{value}\"\n"), dir) {
        Ok(config) => match config.store {
            StoreLocation::Redis(spec) => Ok(spec),
            other => panic!("not a Redis store: {other:?}"),
        },
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn redis_sentinel_and_cluster_urls() {
    let base = minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data.pw"), "data-secret\n").unwrap();
    std::fs::write(dir.path().join("sentinel.pw"), "sentinel-secret\n").unwrap();
    let spec = redis_store(
        &base,
        "redis+sentinel://:p%40ss@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/3?prefix=gw2",
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        spec.topology,
        RedisTopology::Sentinel {
            sentinels: vec![
                ("10.0.0.1".into(), 26379),
                ("10.0.0.2".into(), 26379),
                ("::1".into(), 26380)
            ],
            master: "mymaster".into(),
            db: 3,
            sentinel_password: None,
        }
    );
    assert_eq!(spec.password.as_deref(), Some("p@ss"));
    assert_eq!(
        (spec.prefix.as_str(), spec.wait_replicas, spec.tls),
        ("gw2", 1, false)
    );
    // Data-node and sentinel passwords from two files, relative to the config.
    let spec = redis_store(
        &base,
        "rediss+sentinel://s1:26379/m?password_file=data.pw&sentinel_password_file=sentinel.pw&wait_replicas=2",
        dir.path(),
    )
    .unwrap();
    assert!(spec.tls);
    assert_eq!(spec.password.as_deref(), Some("data-secret"));
    assert!(matches!(
        spec.topology,
        RedisTopology::Sentinel { sentinel_password: Some(ref p), .. } if p == "sentinel-secret"
    ));
    assert_eq!(spec.wait_replicas, 2);
    let spec = redis_store(
        &base,
        "redis+cluster://:pw@n1:7000,n2:7001,n3?wait_replicas=0",
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        spec.topology,
        RedisTopology::Cluster {
            nodes: vec![
                ("n1".into(), 7000),
                ("n2".into(), 7001),
                ("n3".into(), 6379)
            ]
        }
    );
    assert_eq!(
        (spec.password.as_deref(), spec.wait_replicas),
        (Some("pw"), 0)
    );
    // A private CA for TLS, read from a file.
    std::fs::write(
        dir.path().join("ca.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let spec = redis_store(&base, "rediss+cluster://n1:7000?ca_file=ca.pem", dir.path()).unwrap();
    assert!(spec.tls && spec.ca_pem.is_some());
    // A single Redis may take its password from a file too.
    let spec = redis_store(
        &base,
        "redis://127.0.0.1:6379/1?password_file=data.pw",
        dir.path(),
    )
    .unwrap();
    assert_eq!(spec.password.as_deref(), Some("data-secret"));
    // A password with unescaped `/`, `?` or `@` ends at the last `@`.
    for (value, password) in [
        ("redis+sentinel://:pa/ss@h1:26379/m?prefix=p", "pa/ss"),
        ("redis+cluster://u:pa?ss@n1:7000?prefix=p", "pa?ss"),
        ("redis+cluster://:p@a/s?s@n1:7000", "p@a/s?s"),
    ] {
        let spec = redis_store(&base, value, dir.path()).unwrap();
        assert_eq!(spec.password.as_deref(), Some(password), "{value}");
        let hosts = match &spec.topology {
            RedisTopology::Sentinel { sentinels, .. } => sentinels.clone(),
            RedisTopology::Cluster { nodes } => nodes.clone(),
            RedisTopology::Single { .. } => Vec::new(),
        };
        assert_eq!(hosts.len(), 1, "{value}: {hosts:?}");
        assert_eq!(
            spec.prefix,
            if value.contains("prefix") {
                "p"
            } else {
                "steemgate"
            }
        );
    }
    let spec = redis_store(&base, "redis://u:pa/ss?x@127.0.0.1:6379/2", dir.path()).unwrap();
    let RedisTopology::Single { url } = &spec.topology else {
        panic!("single");
    };
    let parsed = url::Url::parse(url).unwrap();
    assert_eq!(
        (parsed.host_str(), parsed.path(), parsed.username()),
        (Some("127.0.0.1"), "/2", "u")
    );
    assert_eq!(
        percent_encoding::percent_decode_str(parsed.password().unwrap_or_default())
            .decode_utf8()
            .unwrap(),
        "pa/ss?x"
    );
    // Every mistake names the `store` key and its line, never the password.
    for (value, words) in [
        ("redis+sentinel://:hunter2@h1:26379", "MASTER_NAME"),
        ("redis+sentinel://h1:26379/m/99", "database number"),
        ("redis+sentinel://h1:99999/m", "port"),
        ("redis+sentinel://h1:26379,,h2/m", "empty host"),
        ("redis+cluster://:hunter2@n1:7000/2", "no path"),
        (
            "redis+cluster://n1:7000?sentinel_password=x",
            "unknown query parameter",
        ),
        (
            "redis+cluster://n1:7000?wait_replicas=many",
            "wait_replicas",
        ),
        ("redis+cluster://n1:7000?prefix={x}", "prefix"),
        (
            "redis+sentinel://h/m?password_file=missing.pw",
            "cannot read",
        ),
        (
            "redis+sentinel://:hunter2@h/m?password_file=data.pw",
            "not both",
        ),
        ("redis+sentinal://h/m", "unknown scheme"),
        ("redis://127.0.0.1:6379?prefx=a", "unknown query parameter"),
        ("redis+cluster://n1:7000?ca_file=ca.pem", "needs TLS"),
        ("rediss://n1:6379?ca_file=data.pw", "no PEM certificate"),
        ("rediss://:hunter2@n1:6379/#insecure", "fragment"),
        ("rediss://:hunter2@n1:6379#insecure", "fragment"),
        (
            "rediss+sentinel://:hunter2@h1/m?prefix=a#insecure",
            "fragment",
        ),
        ("rediss+cluster://:hunter2@n1:7000/#x", "fragment"),
        ("rediss://:hunter2@n1:6379/?insecure=true", "not accepted"),
        ("rediss+cluster://n1:7000?insecure", "not accepted"),
        ("redis+sentinel://:hunter2/pa/ss@h1:26379", "MASTER_NAME"),
        (
            "redis+sentinel://:hunter2?pa?ss@h1:26379/m?bad=1",
            "unknown query",
        ),
        ("redis+cluster://:hunter2/pa?ss@n1:99999", "port"),
        ("redis+cluster://:hunter2?x=1@n1:7000/1", "no path"),
        ("redis://:hunter2/pa?ss@:6379", "host"),
    ] {
        let e = redis_store(&base, value, dir.path()).unwrap_err();
        assert!(
            e.contains("store") && e.contains("line 9") && e.contains(words),
            "{value}: {e}"
        );
        assert!(!e.contains("hunter2"), "{value}: {e}");
    }
}

#[test]
fn session_cache_ttl() {
    let base = minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n");
    let with = |value: &str| base.replace("  secret:", &format!("  cache_ttl: {value}\n  secret:"));
    let off = Config::from_yaml(&with("0s"), Path::new(".")).unwrap();
    assert_eq!(off.session.cache_ttl, Duration::ZERO);
    let short = Config::from_yaml(&with("500ms"), Path::new(".")).unwrap();
    assert_eq!(short.session.cache_ttl, Duration::from_millis(500));
    let e = err(&with("2m"));
    assert!(e.contains("session.cache_ttl"), "{e}");
}

#[test]
fn trusted_proxies_are_ips_or_cidrs_and_empty_by_default() {
    let base = minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n");
    let config = Config::from_yaml(&base, Path::new(".")).unwrap();
    assert!(config.trusted_proxies.is_empty());
    let config = Config::from_yaml(
        &format!(
            "{base}trusted_proxies: [\"10.0.0.5\", \"192.168.7.9/16\", \"::1\", \" fd00::/8 \"]\n"
        ),
        Path::new("."),
    )
    .unwrap();
    let shown: Vec<String> = config
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        ["10.0.0.5/32", "192.168.0.0/16", "::1/128", "fd00::/8"]
    );
    for bad in ["proxy.example", "10.0.0.0/33", "10.0.0", "", "*"] {
        let e = err(&format!("{base}trusted_proxies: [\"{bad}\"]\n"));
        assert!(e.contains("trusted proxy"), "{bad}: {e}");
        assert!(e.contains("line"), "{bad}: error should carry a line: {e}");
    }
}

#[test]
fn assertion_settings_and_route_flag() {
    let config = Config::from_yaml(
        &minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required, assertion: true}\n  - {path: /p, upstream: \"http://127.0.0.1:3000\", auth: optional}\n"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(config.assertion, AssertionConfig::default());
    assert_eq!(
        config.assertion.rotate_every,
        Duration::from_secs(7 * 86400)
    );
    let flags: Vec<(String, bool)> = config
        .routes
        .iter()
        .map(|r| (r.path.clone(), r.assertion))
        .collect();
    assert_eq!(flags, vec![("/p".into(), false), ("/".into(), true)]);

    let text = format!(
        "{}assertion: {{issuer: \"https://auth.example\", rotate_every: 1d}}\n",
        minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n")
    );
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    assert_eq!(
        config.assertion.issuer.as_deref(),
        Some("https://auth.example")
    );
    assert_eq!(config.assertion.rotate_every, Duration::from_secs(86400));

    let e = err(&format!(
        "{}assertion: {{rotate_every: 5m}}\n",
        minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n")
    ));
    assert!(e.contains("assertion.rotate_every"), "{e}");
    let e = err(&minimal(
        "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: public, assertion: true}\n",
    ));
    assert!(e.contains("routes[0].assertion"), "{e}");
    let e = err(&format!(
        "{}assertion: {{issuer: \"  \"}}\n",
        minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n")
    ));
    assert!(e.contains("assertion.issuer"), "{e}");
}

#[test]
fn login_methods_default_to_all_and_must_keep_the_transfer() {
    let route = "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n";
    let config = Config::from_yaml(&minimal(route), Path::new(".")).unwrap();
    assert_eq!(config.login, LoginConfig::default());
    assert!(config.login.allows(LoginMethod::Signature));
    assert!(config.login.allows(LoginMethod::SignedTransfer));

    let with_login =
        |lines: &str| minimal(route).replace("routes:\n", &format!("login:\n{lines}routes:\n"));
    let only = Config::from_yaml(
        &with_login("  methods: [transfer, transfer]\n  transfer_expiration: 30s\n"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(only.login.methods, vec![LoginMethod::Transfer]);
    assert!(!only.login.allows(LoginMethod::Signature));
    assert_eq!(only.login.transfer_expiration, Duration::from_secs(30));

    let e = err(&with_login("  methods: [signature]\n"));
    assert!(e.contains("login.methods") && e.contains("transfer"), "{e}");
    let e = err(&with_login("  methods: [telepathy]\n"));
    assert!(e.contains("telepathy"), "{e}");
    let e = err(&with_login("  transfer_expiration: 2h\n"));
    assert!(e.contains("login.transfer_expiration"), "{e}");
    let e = err(&with_login("  wallet_challenge_ttl: 0s\n"));
    assert!(e.contains("login.wallet_challenge_ttl"), "{e}");
}

#[test]
fn log_level_and_format() {
    let route = "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n";
    let config = Config::from_yaml(&minimal(route), Path::new(".")).unwrap();
    assert_eq!(config.log, LogConfig::default());
    assert_eq!(config.log.format, LogFormat::Text);

    let text = format!(
        "{}log: {{level: \"debug,pingora=info\", format: json}}\n",
        minimal(route)
    );
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    assert_eq!(config.log.level, "debug,pingora=info");
    assert_eq!(config.log.format, LogFormat::Json);

    let e = err(&format!("{}log: {{level: \"info,=[[\"}}\n", minimal(route)));
    assert!(e.contains("log.level"), "{e}");
    let e = err(&format!("{}log: {{format: xml}}\n", minimal(route)));
    assert!(e.contains("xml") && e.contains("line"), "{e}");
    let e = err(&format!("{}log: {{colour: true}}\n", minimal(route)));
    assert!(e.contains("colour"), "{e}");
}

/// Block style, every value on its own line: each error names the full key
/// path and the line of that key (not of its section).
#[test]
fn nested_value_errors_name_the_key_path_and_its_line() {
    let route = "  - path: /\n    upstream: \"http://127.0.0.1:3000\"\n    auth: required\n";
    let base = minimal(route);
    // (replace this, with that, expected key path, expected line)
    let cases: &[(&str, &str, &str, usize)] = &[
        ("  secret:", "  ttl: forever\n  secret:", "session.ttl", 6),
        ("  secret:", "  ttl: 500d\n  secret:", "session.ttl", 6),
        (
            "  secret:",
            "  challenge_ttl: 0s\n  secret:",
            "session.challenge_ttl",
            6,
        ),
        (
            "  secret:",
            "  cache_ttl: 2m\n  secret:",
            "session.cache_ttl",
            6,
        ),
        (
            "  secret:",
            "  cookie_name: \"a b\"\n  secret:",
            "session.cookie_name",
            6,
        ),
        (
            "  account: mygate\n",
            "  account: mygate\n  request_timeout: 1y\n",
            "chain.request_timeout",
            5,
        ),
        (
            "  account: mygate\n",
            "  account: mygate\n  nodes:\n    - ftp://x\n",
            "chain.nodes[0]",
            6,
        ),
        (
            "  account: mygate\n",
            "  account: mygate\n  min_amount: lots\n",
            "chain.min_amount",
            5,
        ),
        (
            "  account: mygate\n",
            "  account: Bad_Name\n",
            "chain.account",
            4,
        ),
        (
            "    auth: required\n",
            "    auth: sometimes\n",
            "routes[0].auth",
            10,
        ),
        (
            "    upstream: \"http://127.0.0.1:3000\"\n",
            "    upstream: \"ftp://x\"\n",
            "routes[0].upstream",
            9,
        ),
        (
            "    auth: required\n",
            "    auth: required\n    allow:\n      - ok_not\n",
            "routes[0].allow[0]",
            12,
        ),
        (
            "    auth: required\n",
            "    auth: public\n    allow: [alice]\n",
            "routes[0].allow",
            11,
        ),
        (
            "routes:\n",
            "limits:\n  idle_timeout: 100000000d\nroutes:\n",
            "limits.idle_timeout",
            8,
        ),
        (
            "routes:\n",
            "limits:\n  header_timeout: 0s\nroutes:\n",
            "limits.header_timeout",
            8,
        ),
        (
            "routes:\n",
            "limits:\n  status_burst: 99999999\nroutes:\n",
            "limits.status_burst",
            8,
        ),
        (
            "routes:\n",
            "report:\n  stale_days: 0\nroutes:\n",
            "report.stale_days",
            8,
        ),
        (
            "routes:\n",
            "report:\n  cache_ttl: 30d\nroutes:\n",
            "report.cache_ttl",
            8,
        ),
        (
            "routes:\n",
            "login:\n  transfer_expiration: 2h\nroutes:\n",
            "login.transfer_expiration",
            8,
        ),
        (
            "routes:\n",
            "login:\n  methods: [signature]\nroutes:\n",
            "login.methods",
            8,
        ),
        (
            "routes:\n",
            "assertion:\n  rotate_every: 1m\nroutes:\n",
            "assertion.rotate_every",
            8,
        ),
        (
            "routes:\n",
            "log:\n  level: \"[\"\nroutes:\n",
            "log.level",
            8,
        ),
        (
            "routes:\n",
            "trusted_proxies:\n  - 10.0.0.0/99\nroutes:\n",
            "trusted_proxies[0]",
            8,
        ),
        ("routes:\n", "threads: 100000\nroutes:\n", "threads", 7),
        (
            "listen: \"127.0.0.1:8080\"",
            "listen: \"nowhere\"",
            "listen",
            1,
        ),
    ];
    for (from, to, key, line) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from:?} not found");
        let e = err(&text);
        assert!(
            e.contains(key) && e.contains(&format!("line {line}")),
            "expected {key} at line {line} in: {e}\n{text}"
        );
    }
    // A duplicate route names the second one's path.
    let e = err(&minimal(&format!(
        "{route}{}",
        route.replace("3000", "3001")
    )));
    assert!(e.contains("routes[1].path") && e.contains("line 11"), "{e}");
}

#[test]
fn access_log_keys() {
    let route = "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n";
    let with_log = |log: &str| format!("{}log: {log}\n", minimal(route));
    let load = |text: &str| Config::from_yaml(text, Path::new("/etc/steemgate")).unwrap();

    // Default: on, to stderr, in the log's format.
    let on = AccessLogConfig {
        format: LogFormat::Text,
        file: None,
    };
    assert_eq!(load(&minimal(route)).log.access, Some(on.clone()));
    assert_eq!(
        load(&with_log("{format: json}")).log.access,
        Some(AccessLogConfig {
            format: LogFormat::Json,
            file: None
        })
    );
    // YAML 1.2 reads on/off as strings; booleans work too.
    for off in ["off", "Off", "false"] {
        assert_eq!(
            load(&with_log(&format!("{{access: {off}}}"))).log.access,
            None
        );
    }
    for on_value in ["on", "true", "ON"] {
        assert_eq!(
            load(&with_log(&format!("{{access: {on_value}}}")))
                .log
                .access,
            Some(on.clone())
        );
    }
    // Own format; a relative file is relative to the config's directory.
    let config = load(&with_log(
        "{format: json, access_format: text, access_file: logs/access.log}",
    ));
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(
        config.log.access,
        Some(AccessLogConfig {
            format: LogFormat::Text,
            file: Some(PathBuf::from("/etc/steemgate/logs/access.log")),
        })
    );

    let e = err(&with_log("{access: maybe}"));
    assert!(
        e.contains("maybe") && e.contains("on") && e.contains("line"),
        "{e}"
    );
    let e = err(&with_log("{access_format: xml}"));
    assert!(e.contains("xml") && e.contains("line"), "{e}");
    let e = err(&with_log("{access_file: \"\"}"));
    assert!(e.contains("log.access_file"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let e = err(&with_log(&format!(
        "{{access_file: \"{}\"}}",
        dir.path().display()
    )));
    assert!(
        e.contains("log.access_file") && e.contains("directory"),
        "{e}"
    );
    let e = err(&with_log("{access_path: /tmp/x}"));
    assert!(e.contains("access_path"), "{e}");
}

/// The issue's example policies, in block style, on one route each.
fn with_policies(policies: &str, route_extra: &str) -> String {
    format!(
        "listen: \"127.0.0.1:8080\"\nchain:\n  name: steem\n  account: mygate\nsession:\n  secret: \"{SECRET}\"\npolicies:\n{policies}routes:\n  - path: /\n    upstream: \"http://127.0.0.1:3000\"\n    auth: required\n{route_extra}"
    )
}

const CONTRACT_POLICIES: &str = "  regulars:
    all:
      - account_age: 30d
      - reputation: 40
      - stake: 50
  friends:
    any:
      - followed_by: alice
      - followed_by: bob
  members:
    community: hive-123456
  staff:
    community: {name: hive-123456, role: mod}
  voters:
    witness_vote: gtg
  clean:
    not: {muted_by: alice}
  vip:
    accounts: [carol, dave]
  fans:
    - follows: alice
    - reputation: -5.5
";

#[test]
fn the_issue_policies_parse_into_conditions() {
    let text = with_policies(CONTRACT_POLICIES, "    policy: [regulars, friends]\n");
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    let names: Vec<&str> = config.policies.iter().map(|p| &*p.name).collect();
    assert_eq!(
        names,
        [
            "regulars", "friends", "members", "staff", "voters", "clean", "vip", "fans"
        ]
    );
    let by_name = |n: &str| {
        &config
            .policies
            .iter()
            .find(|p| &*p.name == n)
            .unwrap()
            .condition
    };
    let account = |n: &str| AccountName::parse(n).unwrap();
    let hive = crate::chain::facts::CommunityName::parse("hive-123456").unwrap();
    assert_eq!(
        by_name("regulars"),
        &Condition::All(vec![
            Condition::AccountAge(Duration::from_secs(30 * 86_400)),
            Condition::Reputation(40.0),
            Condition::Stake(50.0),
        ])
    );
    assert_eq!(
        by_name("friends"),
        &Condition::Any(vec![
            Condition::FollowedBy(account("alice")),
            Condition::FollowedBy(account("bob")),
        ])
    );
    assert_eq!(
        by_name("members"),
        &Condition::Community {
            name: hive.clone(),
            role: None
        }
    );
    assert_eq!(
        by_name("staff"),
        &Condition::Community {
            name: hive,
            role: Some(crate::chain::facts::CommunityRole::Mod)
        }
    );
    assert_eq!(by_name("voters"), &Condition::WitnessVote(account("gtg")));
    assert_eq!(
        by_name("clean"),
        &Condition::Not(Box::new(Condition::MutedBy(account("alice"))))
    );
    assert_eq!(
        by_name("vip"),
        &Condition::Accounts([account("carol"), account("dave")].into())
    );
    assert_eq!(
        by_name("fans"),
        &Condition::All(vec![
            Condition::Follows(account("alice")),
            Condition::Reputation(-5.5)
        ])
    );
    let route = &config.routes[0];
    let on_route: Vec<&str> = route.policies.iter().map(|p| &*p.name).collect();
    assert_eq!(on_route, ["regulars", "friends"]);
    // Six policies no route names: one warning each, naming forward auth.
    assert_eq!(config.warnings.len(), 6, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("policies.members"),
        "{:?}",
        config.warnings
    );
    assert!(config.warnings[0].contains("/.steemgate/auth?policy=members"));
    assert_eq!(config.policy_cache, PolicyCacheConfig::default());
}

/// Every policy mistake names its key path and line.
#[test]
fn policy_mistakes_name_the_key_path_and_line() {
    let base = with_policies(CONTRACT_POLICIES, "    policy: members\n");
    // (replace this, with that, expected words, expected line)
    let cases: &[(&str, &str, &str, usize)] = &[
        (
            "reputation: 40",
            "reputation: lots",
            "policies.regulars",
            11,
        ),
        (
            "reputation: 40",
            "reputation: 400",
            "between -100 and 100",
            11,
        ),
        ("stake: 50", "stake: -1", "stake", 12),
        (
            "account_age: 30d",
            "account_age: 30 fortnights",
            "policies.regulars",
            10,
        ),
        ("account_age: 30d", "account_age: 0s", "account_age", 10),
        (
            "followed_by: bob",
            "followed_by: B0b!",
            "policies.friends",
            16,
        ),
        (
            "followed_by: bob",
            "followed_b: bob",
            "unknown condition `followed_b`",
            16,
        ),
        (
            "community: hive-123456\n",
            "community: hive-12\n",
            "not a community name",
            18,
        ),
        ("role: mod", "role: janitor", "role \"janitor\"", 20),
        ("role: mod", "role: muted", "role \"muted\"", 20),
        (
            "witness_vote: gtg",
            "witness_vote: gtg\n    accounts: [x1y]",
            "one condition per map",
            22,
        ),
        (
            "accounts: [carol, dave]",
            "accounts: []",
            "at least one account",
            26,
        ),
        ("    any:\n", "    any: []\n    x:\n", "at least one", 14),
        (
            "    policy: members\n",
            "    policy: member\n",
            "routes[0].policy",
            34,
        ),
        (
            "    policy: members\n",
            "    policy: []\n",
            "routes[0].policy",
            34,
        ),
        (
            "    auth: required\n    policy",
            "    auth: public\n    policy",
            "public route",
            34,
        ),
        ("  vip:\n", "  Vip:\n", "policy name \"Vip\"", 25),
    ];
    for (from, to, words, line) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from:?} not found");
        let e = err(&text);
        assert!(
            e.contains(words) && e.contains(&format!("line {line}")),
            "expected {words:?} at line {line} in: {e}\n{text}"
        );
    }
}

#[test]
fn a_policy_defined_twice_is_refused() {
    let e = err(&with_policies(
        &CONTRACT_POLICIES.replace("  fans:\n", "  clean:\n"),
        "    policy: members\n",
    ));
    assert!(e.contains("policy \"clean\" is defined twice"), "{e}");
}

#[test]
fn policy_cache_settings_have_ranges() {
    let route = "  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n";
    let ok = Config::from_yaml(
        &minimal(route).replace(
            "routes:",
            "policy_cache: {ttl: 1m, max_stale: 2h, timeout: 500ms}\nroutes:",
        ),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(
        ok.policy_cache,
        PolicyCacheConfig {
            ttl: Duration::from_secs(60),
            max_stale: Duration::from_secs(7200),
            timeout: Duration::from_millis(500),
        }
    );
    // A ttl longer than the default max_stale raises max_stale with it.
    let long = Config::from_yaml(
        &minimal(route).replace("routes:", "policy_cache: {ttl: 2h}\nroutes:"),
        Path::new("."),
    )
    .unwrap();
    assert_eq!(long.policy_cache.max_stale, Duration::from_secs(7200));
    for (cache, key) in [
        ("{ttl: 0s}", "policy_cache.ttl"),
        ("{ttl: 2d}", "policy_cache.ttl"),
        ("{ttl: 10m, max_stale: 5m}", "policy_cache.max_stale"),
        ("{timeout: 2m}", "policy_cache.timeout"),
        ("{ttl: 1m, colour: red}", "colour"),
    ] {
        let e = err(&minimal(route).replace("routes:", &format!("policy_cache: {cache}\nroutes:")));
        assert!(e.contains(key), "{cache}: {e}");
    }
}

#[test]
fn a_policy_needing_too_many_reads_is_refused() {
    let many: String = (0..17)
        .map(|i| format!("      - followed_by: friend{i}\n"))
        .collect();
    let e = err(&with_policies(
        &format!("  crowd:\n    any:\n{many}"),
        "    policy: crowd\n",
    ));
    assert!(
        e.contains("policies.crowd") && e.contains("17 chain reads"),
        "{e}"
    );
}

fn with_oidc(oidc: &str) -> String {
    format!(
        "listen: \"127.0.0.1:8080\"\nchain:\n  name: steem\n  account: mygate\nsession:\n  secret: \"{SECRET}\"\npolicies:\n  members:\n    community: hive-123456\noidc:\n{oidc}routes:\n  - {{path: /, upstream: \"http://127.0.0.1:3000\", auth: required}}\n"
    )
}

const GRAFANA: &str = "    - client_id: grafana
      client_secret: \"0123456789abcdef0123\"
      redirect_uris: [\"https://grafana.example.com/login/generic_oauth\"]
      policy: members
";

#[test]
fn oidc_clients_parse_with_their_defaults() {
    let text = with_oidc(&format!(
        "  issuer: \"https://auth.example.com/\"\n  clients:\n{GRAFANA}    - client_id: spa\n      redirect_uris: [\"http://127.0.0.1:9000/cb\", \"com.example.app:/cb\"]\n      id_token_signed_response_alg: ES256\n      name: Single page\n"
    ));
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    let oidc = config.oidc.unwrap();
    assert_eq!(oidc.issuer, "https://auth.example.com");
    assert_eq!(oidc.token_ttl, Duration::from_secs(300));
    let grafana = oidc.client("grafana").unwrap();
    assert_eq!(
        grafana.secret.as_deref(),
        Some(&b"0123456789abcdef0123"[..])
    );
    assert_eq!(grafana.signing_alg, SigningAlg::RS256);
    assert_eq!(grafana.name, "grafana");
    assert_eq!(&*grafana.policies[0].name, "members");
    assert!(
        !grafana.require_pkce,
        "off by default for confidential clients"
    );
    let spa = oidc.client("spa").unwrap();
    assert!(spa.require_pkce, "always on for public clients");
    assert_eq!(spa.secret, None);
    assert_eq!(spa.signing_alg, SigningAlg::ES256);
    assert_eq!(spa.name, "Single page");
    // The policy is used by a client: no "unused policy" warning.
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn oidc_secret_files_are_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("grafana.secret"),
        "file-secret-0123456789\n",
    )
    .unwrap();
    let text = with_oidc(
        "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: grafana\n      client_secret_file: grafana.secret\n      redirect_uris: [\"https://g.example.com/cb\"]\n",
    );
    let config = Config::from_yaml(&text, dir.path()).unwrap();
    assert_eq!(
        config.oidc.unwrap().clients[0].secret.as_deref(),
        Some(&b"file-secret-0123456789"[..])
    );
}

#[test]
fn oidc_mistakes_name_key_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "  issuer: \"http://auth.example.com\"\n  clients:\n",
            "oidc.issuer: must use https",
        ),
        (
            "  issuer: \"https://auth.example.com/sub\"\n  clients:\n",
            "oidc.issuer: must be an origin",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  token_ttl: 2h\n  clients:\n",
            "oidc.token_ttl",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients: []\n",
            "oidc.clients: register at least one",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: \"bad id\"\n      redirect_uris: [\"https://a.example/cb\"]\n",
            "oidc.clients[0].client_id",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      client_secret: short\n      redirect_uris: [\"https://a.example/cb\"]\n",
            "oidc.clients[0].client_secret: a client secret needs at least 16",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      client_secret_file: /nonexistent/secret\n      redirect_uris: [\"https://a.example/cb\"]\n",
            "oidc.clients[0].client_secret_file: cannot read",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: []\n",
            "oidc.clients[0].redirect_uris: register at least one",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"http://a.example/cb\"]\n",
            "oidc.clients[0].redirect_uris[0]: must use https",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb#x\"]\n",
            "oidc.clients[0].redirect_uris[0]: must not contain a fragment",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"/cb\"]\n",
            "oidc.clients[0].redirect_uris[0]: \"/cb\" is not an absolute URL",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"javascript:alert(1)\"]\n",
            "oidc.clients[0].redirect_uris[0]: scheme javascript",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n      post_logout_redirect_uris: [\"http://evil.example/\"]\n",
            "oidc.clients[0].post_logout_redirect_uris[0]",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n      policy: nobody\n",
            "oidc.clients[0].policy: no policy named \"nobody\"",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n      require_pkce: false\n",
            "oidc.clients[0].require_pkce: a public client (no secret) always needs PKCE",
        ),
        (
            "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n",
            "oidc.clients[1].client_id: \"a\" is already registered",
        ),
    ];
    for (oidc, expected) in cases {
        let message = err(&with_oidc(oidc));
        assert!(
            message.contains(expected),
            "{message}\n  expected: {expected}"
        );
        assert!(message.contains(" at line "), "no line in: {message}");
    }
    // Unknown keys and algorithms are refused by the file format.
    let message = err(&with_oidc(
        "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n      id_token_signed_response_alg: HS256\n",
    ));
    assert!(
        message.contains("id_token_signed_response_alg"),
        "{message}"
    );
    let message = err(&with_oidc(
        "  issuer: \"https://auth.example.com\"\n  clients:\n    - client_id: a\n      redirect_uris: [\"https://a.example/cb\"]\n      grant_types: [implicit]\n",
    ));
    assert!(message.contains("grant_types"), "{message}");
}

#[test]
fn a_plain_http_loopback_issuer_is_allowed_with_a_warning() {
    let text = with_oidc(&format!(
        "  issuer: \"http://127.0.0.1:8080\"\n  clients:\n{GRAFANA}"
    ));
    let config = Config::from_yaml(&text, Path::new(".")).unwrap();
    assert_eq!(config.oidc.unwrap().issuer, "http://127.0.0.1:8080");
    assert!(config.warnings.iter().any(|w| w.starts_with("oidc.issuer")));
}

#[test]
fn oidc_tokens_must_live_at_most_half_a_key_period() {
    let text = with_oidc(&format!(
        "  issuer: \"https://auth.example.com\"\n  token_ttl: 40m\n  clients:\n{GRAFANA}"
    )) + "assertion:\n  rotate_every: 1h\n";
    let message = err(&text);
    assert!(
        message.contains("oidc.token_ttl: must be at most half of assertion.rotate_every (1h)"),
        "{message}"
    );
    let text = with_oidc(&format!(
        "  issuer: \"https://auth.example.com\"\n  token_ttl: 30m\n  clients:\n{GRAFANA}"
    )) + "assertion:\n  rotate_every: 1h\n";
    assert!(Config::from_yaml(&text, Path::new(".")).is_ok());
}

#[test]
fn tls_http2_is_on_by_default_and_a_switch() {
    let dir = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
    let with_tls = |extra: &str| {
        format!(
            "{}tls: {{cert: cert.pem, key: key.pem{extra}}}\n",
            minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n")
        )
    };
    let http2 = |extra: &str| {
        Config::from_yaml(&with_tls(extra), dir.path())
            .unwrap()
            .tls
            .unwrap()
            .http2
    };
    assert!(http2(""));
    assert!(http2(", http2: on"));
    assert!(!http2(", http2: off"));
    assert!(!http2(", http2: false"));
    let message = match Config::from_yaml(&with_tls(", http2: maybe"), dir.path()) {
        Ok(_) => panic!("http2: maybe accepted"),
        Err(e) => e.to_string(),
    };
    assert!(message.contains("tls.http2"), "{message}");
}

#[test]
fn work_stealing_is_off_by_default_and_a_switch() {
    let with = |line: &str| {
        format!(
            "{line}{}",
            minimal("  - {path: /, upstream: \"http://127.0.0.1:3000\", auth: required}\n")
        )
    };
    let work_stealing = |line: &str| {
        Config::from_yaml(&with(line), Path::new("."))
            .unwrap()
            .work_stealing
    };
    assert!(!work_stealing(""));
    assert!(work_stealing("work_stealing: on\n"));
    assert!(work_stealing("work_stealing: true\n"));
    assert!(!work_stealing("work_stealing: off\n"));
    let message = err(&with("work_stealing: sometimes\n"));
    assert!(message.contains("work_stealing"), "{message}");
    assert!(message.contains("line 1"), "{message}");
}
