//! The config's tests: every accepted form, and for every mistake the key
//! path and line an operator is told.

use super::*;

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
    assert_eq!(
        config.store,
        StoreLocation::Redis {
            url: "redis://:pw@127.0.0.1:6379/2".into(),
            prefix: "gw1".into()
        }
    );
    let e = err(&format!("{base}store: \"mysql://x\"\n"));
    assert!(e.contains("store"), "{e}");
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
