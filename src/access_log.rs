//! The access log: one line per request the gateway answers.
//!
//! Why a module of its own, with a thread of its own: operators ask "who
//! accessed what" first, and expect the answer in a line like nginx's; but
//! formatting and writing a line per request on the proxy's threads once
//! halved pingora's throughput here. So the request path only moves a small
//! [`Record`] into a bounded channel (`try_send`: a full channel drops the
//! record and counts it in `steemgate_access_log_dropped_total`, it never
//! waits), and one dedicated thread formats the records and writes them
//! through a `BufWriter`. The writer drains the channel every
//! [`WRITE_INTERVAL`] rather than blocking on it: a request never has to
//! wake a sleeping thread (a futex call and a context switch per request
//! otherwise), and lines reach the file within that interval.
//!
//! What a record holds is what may be logged: the path without its query
//! (query strings can carry codes and tokens), never a header value, a
//! cookie, a memo or a secret.
//!
//! Text lines start like nginx's `combined` format, so tools that read it
//! take them as they are:
//!
//! ```text
//! CLIENT - ACCOUNT [TIME] "METHOD PATH PROTOCOL" STATUS BYTES "ROUTE" UPSTREAM_MS DURATION_MS
//! 203.0.113.7 - alice [2026-12-02T13:04:07.123Z] "GET /app/page HTTP/1.1" 200 5120 "/app" 1.204 1.532
//! ```

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::time::{Duration, SystemTime};

use crate::config::{AccessLogConfig, LogFormat};

/// Records waiting for the writer; beyond this they are dropped (counted).
/// With [`WRITE_INTERVAL`], room for 300,000 requests/s, ten times what
/// the gateway serves on two cores.
pub const CHANNEL_CAPACITY: usize = 16 * 1024;
/// How often the writer drains the channel, writes and flushes.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(50);
/// The longest path a line carries (longer ones end in `...`).
const MAX_PATH: usize = 2048;

/// Which route answered: a configured route, the gateway's own endpoints
/// (`/.steemgate/*`), or none (a 404 or a request refused before routing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteName {
    None,
    Gateway,
    Route(Arc<str>),
}

/// The route of the gateway's own answers, as in `requests_total`.
pub const GATEWAY_ROUTE: &str = "(gateway)";

/// One answered request, as the proxy hands it over.
#[derive(Debug, Clone)]
pub struct Record {
    pub time: SystemTime,
    /// The real client (behind trusted proxies); `None` for a client without
    /// an IP address (a Unix socket).
    pub client: Option<IpAddr>,
    pub method: http::Method,
    pub version: http::Version,
    /// The path only: never the query.
    pub path: String,
    /// `0`: no response was sent (the client went away first).
    pub status: u16,
    pub route: RouteName,
    /// The account sent upstream (or refused with a 403).
    pub account: Option<String>,
    /// From choosing the upstream to the end of its response; `None` when
    /// nothing was proxied.
    pub upstream: Option<Duration>,
    /// Response body bytes sent to the client.
    pub bytes: usize,
    /// From the request's header to the end of the answer.
    pub duration: Duration,
}

/// The path of a request for a record: its query cut off, and at most
/// [`MAX_PATH`] bytes.
pub fn loggable_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.len() <= MAX_PATH {
        return path.to_string();
    }
    let mut end = MAX_PATH;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &path[..end])
}

/// The proxy's end of the access log. Cloning is cheap; the writer thread
/// stops once every clone is gone.
#[derive(Clone)]
pub struct AccessLog {
    records: SyncSender<Record>,
    dropped: prometheus::IntCounter,
    reopen: Arc<AtomicBool>,
}

impl AccessLog {
    /// Opens the destination and starts the writer thread. A file that
    /// cannot be opened is an error here, at startup, not a silent loss.
    pub fn start(config: &AccessLogConfig, dropped: prometheus::IntCounter) -> io::Result<Self> {
        let reopen = Arc::new(AtomicBool::new(false));
        let writer = Writer::new(config, reopen.clone())?;
        let (records, queue) = std::sync::mpsc::sync_channel(CHANNEL_CAPACITY);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || writer.run(&queue))?;
        Ok(Self {
            records,
            dropped,
            reopen,
        })
    }

    /// Hands a record to the writer; never waits. A full channel drops it
    /// and counts the drop.
    pub fn record(&self, record: Record) {
        match self.records.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.dropped.inc(),
        }
    }

    /// Asks the writer to reopen a file destination before its next line
    /// (after log rotation moved the file away; sent on SIGHUP).
    pub fn reopen(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("log.access_file {}: {e}", path.display())))
}

/// Where lines go: stderr, or a file appended to (and its path, to reopen).
type Output = BufWriter<Box<dyn Write + Send>>;

struct Writer {
    format: LogFormat,
    out: Output,
    /// `Some` for a file destination.
    path: Option<PathBuf>,
    reopen: Arc<AtomicBool>,
}

impl Writer {
    fn new(config: &AccessLogConfig, reopen: Arc<AtomicBool>) -> io::Result<Self> {
        let sink: Box<dyn Write + Send> = match &config.file {
            Some(path) => Box::new(open_append(path)?),
            None => Box::new(io::stderr()),
        };
        Ok(Self {
            format: config.format,
            out: BufWriter::with_capacity(64 * 1024, sink),
            path: config.file.clone(),
            reopen,
        })
    }

    /// Until every sender is gone: drain, write, flush, sleep.
    fn run(mut self, queue: &Receiver<Record>) {
        let mut line = String::with_capacity(512);
        let mut failing = false;
        loop {
            self.reopen_if_asked();
            let mut result = Ok(());
            let mut wrote = false;
            let open = loop {
                match queue.try_recv() {
                    Ok(record) => {
                        line.clear();
                        format_record(self.format, &record, &mut line);
                        if result.is_ok() {
                            result = self.out.write_all(line.as_bytes());
                        }
                        wrote = true;
                    }
                    Err(TryRecvError::Empty) => break true,
                    Err(TryRecvError::Disconnected) => break false,
                }
            };
            if wrote && result.is_ok() {
                result = self.out.flush();
            }
            // Report a failing destination once, and its recovery once.
            match result {
                Err(e) if !failing => {
                    failing = true;
                    tracing::error!(error = %e, "access log: cannot write; lines are lost until it works again");
                }
                Ok(()) if failing && wrote => {
                    failing = false;
                    tracing::info!("access log: writing again");
                }
                _ => {}
            }
            if !open {
                return;
            }
            std::thread::sleep(WRITE_INTERVAL);
        }
    }

    fn reopen_if_asked(&mut self) {
        if !self.reopen.swap(false, Ordering::Relaxed) {
            return;
        }
        let Some(path) = &self.path else {
            return;
        };
        match open_append(path) {
            Ok(file) => {
                let _ = self.out.flush();
                self.out = BufWriter::with_capacity(64 * 1024, Box::new(file));
            }
            Err(e) => {
                tracing::error!(error = %e, "access log: cannot reopen; writing to the old file");
            }
        }
    }
}

/// One line (with its newline) in `format`.
pub fn format_record(format: LogFormat, record: &Record, out: &mut String) {
    match format {
        LogFormat::Text => format_text(record, out),
        LogFormat::Json => format_json(record, out),
    }
}

fn millis(d: Duration) -> f64 {
    // Microsecond resolution: three decimals of a millisecond.
    d.as_micros() as f64 / 1000.0
}

fn route_text(route: &RouteName) -> Option<&str> {
    match route {
        RouteName::None => None,
        RouteName::Gateway => Some(GATEWAY_ROUTE),
        RouteName::Route(label) => Some(label),
    }
}

fn version_text(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-02T13:04:07.123Z`.
fn push_time(time: SystemTime, out: &mut String) {
    use std::fmt::Write as _;
    let t = time::OffsetDateTime::from(time);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
}

/// Appends `text` with everything outside printable ASCII, `"` and `\`
/// written as `\xHH` (as nginx does): a line stays one line, and its
/// quoted fields cannot be closed from inside.
fn push_escaped(text: &str, out: &mut String) {
    use std::fmt::Write as _;
    for byte in text.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'"' && byte != b'\\' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "\\x{byte:02X}");
        }
    }
}

fn format_text(r: &Record, out: &mut String) {
    use std::fmt::Write as _;
    match r.client {
        Some(ip) => {
            let _ = write!(out, "{ip}");
        }
        None => out.push('-'),
    }
    out.push_str(" - ");
    match &r.account {
        Some(account) => push_escaped(account, out),
        None => out.push('-'),
    }
    out.push_str(" [");
    push_time(r.time, out);
    out.push_str("] \"");
    push_escaped(r.method.as_str(), out);
    out.push(' ');
    push_escaped(&r.path, out);
    out.push(' ');
    out.push_str(version_text(r.version));
    let _ = write!(out, "\" {} {} \"", r.status, r.bytes);
    match route_text(&r.route) {
        Some(route) => push_escaped(route, out),
        None => out.push('-'),
    }
    out.push_str("\" ");
    match r.upstream {
        Some(d) => {
            let _ = write!(out, "{:.3}", millis(d));
        }
        None => out.push('-'),
    }
    let _ = writeln!(out, " {:.3}", millis(r.duration));
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    time: &'a str,
    client: Option<String>,
    method: &'a str,
    path: &'a str,
    protocol: &'static str,
    status: u16,
    route: Option<&'a str>,
    account: Option<&'a str>,
    upstream_ms: Option<f64>,
    bytes: usize,
    duration_ms: f64,
}

fn format_json(r: &Record, out: &mut String) {
    let mut time = String::with_capacity(24);
    push_time(r.time, &mut time);
    let line = JsonLine {
        time: &time,
        client: r.client.map(|ip| ip.to_string()),
        method: r.method.as_str(),
        path: &r.path,
        protocol: version_text(r.version),
        status: r.status,
        route: route_text(&r.route),
        account: r.account.as_deref(),
        upstream_ms: r.upstream.map(millis),
        bytes: r.bytes,
        duration_ms: millis(r.duration),
    };
    match serde_json::to_string(&line) {
        Ok(json) => out.push_str(&json),
        // Serializing these plain fields cannot fail; keep the line anyway.
        Err(_) => out.push_str("{}"),
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            time: SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_216_647_123),
            client: Some("203.0.113.7".parse().unwrap()),
            method: http::Method::GET,
            version: http::Version::HTTP_11,
            path: "/app/page".into(),
            status: 200,
            route: RouteName::Route("/app".into()),
            account: Some("alice".into()),
            upstream: Some(Duration::from_micros(1204)),
            bytes: 5120,
            duration: Duration::from_micros(1532),
        }
    }

    fn text(r: &Record) -> String {
        let mut line = String::new();
        format_record(LogFormat::Text, r, &mut line);
        line
    }

    #[test]
    fn text_line_is_nginx_like() {
        assert_eq!(
            text(&record()),
            "203.0.113.7 - alice [2026-12-02T13:04:07.123Z] \"GET /app/page HTTP/1.1\" 200 5120 \"/app\" 1.204 1.532\n"
        );
        let local = Record {
            client: None,
            account: None,
            route: RouteName::None,
            upstream: None,
            status: 404,
            ..record()
        };
        assert_eq!(
            text(&local),
            "- - - [2026-12-02T13:04:07.123Z] \"GET /app/page HTTP/1.1\" 404 5120 \"-\" - 1.532\n"
        );
        let gateway = Record {
            route: RouteName::Gateway,
            ..record()
        };
        assert!(text(&gateway).contains("\"(gateway)\""));
    }

    #[test]
    fn text_fields_cannot_break_the_line_or_its_quotes() {
        let hostile = Record {
            path: "/a\"b\\c d\ne\u{e9}".into(),
            method: http::Method::from_bytes(b"PRO\"PFIND").unwrap_or(http::Method::GET),
            ..record()
        };
        let line = text(&hostile);
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.contains("/a\\x22b\\x5Cc\\x20d\\x0Ae\\xC3\\xA9"),
            "{line}"
        );
        assert_eq!(line.matches('"').count(), 4, "{line}");
    }

    #[test]
    fn json_line_has_every_field() {
        let mut line = String::new();
        format_record(LogFormat::Json, &record(), &mut line);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["time"], "2026-12-02T13:04:07.123Z");
        assert_eq!(v["client"], "203.0.113.7");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/app/page");
        assert_eq!(v["protocol"], "HTTP/1.1");
        assert_eq!(v["status"], 200);
        assert_eq!(v["route"], "/app");
        assert_eq!(v["account"], "alice");
        assert_eq!(v["upstream_ms"], 1.204);
        assert_eq!(v["bytes"], 5120);
        assert_eq!(v["duration_ms"], 1.532);

        let mut line = String::new();
        let local = Record {
            account: None,
            upstream: None,
            route: RouteName::None,
            ..record()
        };
        format_record(LogFormat::Json, &local, &mut line);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert!(v["account"].is_null() && v["upstream_ms"].is_null() && v["route"].is_null());
    }

    #[test]
    fn paths_lose_their_query_and_excess() {
        assert_eq!(loggable_path("/a/b?code=secret"), "/a/b");
        assert_eq!(loggable_path("/a#frag"), "/a");
        let long = format!("/{}", "\u{e9}".repeat(MAX_PATH));
        let cut = loggable_path(&long);
        assert!(cut.len() <= MAX_PATH + 3 && cut.ends_with("..."));
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let (records, _queue) = std::sync::mpsc::sync_channel(1);
        let dropped = prometheus::IntCounter::new("d", "d").unwrap();
        let log = AccessLog {
            records,
            dropped: dropped.clone(),
            reopen: Arc::new(AtomicBool::new(false)),
        };
        log.record(record());
        log.record(record());
        log.record(record());
        assert_eq!(dropped.get(), 2);
    }

    #[test]
    fn the_writer_appends_lines_to_a_file_and_reopens_it_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, "earlier\n").unwrap();
        let dropped = prometheus::IntCounter::new("d", "d").unwrap();
        let log = AccessLog::start(
            &AccessLogConfig {
                format: LogFormat::Text,
                file: Some(path.clone()),
            },
            dropped.clone(),
        )
        .unwrap();
        log.record(record());
        let written = |p: &Path| {
            for _ in 0..200 {
                let text = std::fs::read_to_string(p).unwrap_or_default();
                if text.contains("alice") {
                    return text;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("no line in {}", p.display());
        };
        let text = written(&path);
        assert!(text.starts_with("earlier\n203.0.113.7 - alice"), "{text}");

        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.reopen();
        log.record(record());
        let text = written(&path);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(
            std::fs::read_to_string(&rotated).unwrap().lines().count(),
            2
        );
        assert_eq!(dropped.get(), 0);
    }
}
