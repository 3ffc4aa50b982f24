//! Log setup: `tracing` for our code, pingora's `log` records bridged in.
//!
//! Why both config and environment: operators set the filter and format in
//! the config (`log: {level, format}`) with the rest of the deployment, and
//! `STEEMGATE_LOG` (e.g. `debug,pingora=info`) / `STEEMGATE_LOG_FORMAT=json`
//! override it for one run without editing the file. Per-request lines are
//! debug-level only: logging on the hot path halves proxy throughput. The
//! access log (`crate::access_log`) is separate: its own thread writes it.

use crate::config::{DEFAULT_LOG_LEVEL, LogConfig, LogFormat};

/// Installs the global subscriber (once; later calls do nothing). `config`
/// is the `log:` section when a config file is in use.
pub fn init(config: Option<&LogConfig>) {
    let configured = config.map_or(DEFAULT_LOG_LEVEL, |c| c.level.as_str());
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEEMGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::builder().parse(configured))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_LEVEL));
    let format = match std::env::var("STEEMGATE_LOG_FORMAT") {
        Ok(f) if f.eq_ignore_ascii_case("json") => LogFormat::Json,
        Ok(f) if f.eq_ignore_ascii_case("text") => LogFormat::Text,
        _ => config.map_or(LogFormat::Text, |c| c.format),
    };
    // Colours only on a terminal: log files and journald get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
