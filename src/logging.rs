//! Log setup: `tracing` for our code, pingora's `log` records bridged in.
//!
//! Why configurable by environment: the filter (`STEEMGATE_LOG`, e.g.
//! `info` or `debug,pingora=info`) and the format (`STEEMGATE_LOG_FORMAT=json`)
//! must be changeable without editing the config. Per-request lines are
//! debug-level only: logging on the hot path halves proxy throughput.

/// Installs the global subscriber (once; later calls do nothing).
pub fn init() {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("STEEMGATE_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "info,pingora=warn,pingora_core=warn,pingora_proxy=warn",
            )
        });
    let json = std::env::var("STEEMGATE_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
