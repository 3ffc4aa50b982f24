//! Benchmark of the stale-follows page in Chromium (not a test, no
//! assertions): page weight and time to interactive for accounts following
//! 5,000 and 10,000 (issue 16: "renders without freezing a phone").
//!
//! Why: the report pages its table (500 rows a page) and carries every
//! stale name for "select all"; this measures what that costs where it
//! matters, in a real browser: the HTML bytes, the script's bytes, the
//! server's time for a cached page, and Chromium's navigation timing
//! (`domInteractive`, `DOMContentLoaded`, `load`) plus the moment the page
//! script has wired the table (`performance.mark("stale-ready")`), and how
//! long a click on "Select all" blocks the page. Each size is measured on a
//! desktop viewport and on a phone (390×844, touch, CPU slowed 4× with
//! DevTools' throttling), 5 loads each, medians reported.
//!
//! The report runs in-process behind a tiny layer that sets
//! `X-Steem-Account` (as the gateway would), its chain a fake node with
//! zero latency whose accounts are nearly all stale (the worst case for
//! the page: every stale name goes into the "select all" list), on loopback.
//!
//! Run: `bench/report_page.sh` (writes bench/results/report-page.{md,json}).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Request};
use headless_chrome::protocol::cdp::Emulation;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};
use steemgate::chain::{ChainName, RpcCall, RpcError};
use steemgate::pages::Pages;
use steemgate::report::{ReportSettings, StaleFollows, router};

const SIZES: [usize; 2] = [5_000, 10_000];
const LOADS: usize = 5;

/// A node following `names`: alphabetical pages, exclusive start; account i
/// last posted (i * 37) % 1500 days ago, every 9th never.
struct Node {
    names: Vec<String>,
}

#[async_trait::async_trait]
impl RpcCall for Node {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match method {
            "condenser_api.get_following" => {
                let start = params[1].as_str().unwrap_or("");
                let limit = params[3].as_u64().unwrap_or(0) as usize;
                let from = if start.is_empty() {
                    0
                } else {
                    self.names.partition_point(|n| n.as_str() <= start)
                };
                Ok(Value::Array(
                    self.names[from..]
                        .iter()
                        .take(limit)
                        .map(|n| json!({"follower": "owner", "following": n, "what": ["blog"]}))
                        .collect(),
                ))
            }
            "condenser_api.get_accounts" => {
                let now = time::OffsetDateTime::now_utc();
                let wanted = params[0].as_array().cloned().unwrap_or_default();
                Ok(Value::Array(
                    wanted
                        .iter()
                        .map(|n| {
                            let name = n.as_str().unwrap_or("");
                            let i: i64 = name.trim_start_matches("user").parse().unwrap_or(0);
                            let last = if i % 9 == 0 {
                                "1970-01-01T00:00:00".to_string()
                            } else {
                                let at = now - time::Duration::days((i * 37) % 1500);
                                format!(
                                    "{:04}-{:02}-{:02}T12:00:00",
                                    at.year(),
                                    u8::from(at.month()),
                                    at.day()
                                )
                            };
                            json!({"name": name, "last_post": last, "last_root_post": last})
                        })
                        .collect(),
                ))
            }
            other => Err(RpcError::Decode(format!("unexpected {other}"))),
        }
    }
}

/// Serves the report for `follows` follows on a loopback port.
fn serve(runtime: &tokio::runtime::Runtime, follows: usize) -> SocketAddr {
    let mut names: Vec<String> = (0..follows).map(|i| format!("user{i:05}")).collect();
    names.sort();
    let app = Arc::new(StaleFollows::new(
        Arc::new(Node { names }),
        Arc::new(Pages::new(None).expect("pages")),
        ReportSettings {
            request_budget: Duration::from_secs(60),
            ..ReportSettings::new(ChainName::Steem)
        },
    ));
    let routes = router(app).layer(axum::middleware::map_request(
        |mut request: Request<axum::body::Body>| async move {
            request
                .headers_mut()
                .insert("x-steem-account", HeaderValue::from_static("owner"));
            request
        },
    ));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, routes).await;
        });
        addr
    })
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn eval(tab: &Tab, expression: &str) -> Value {
    tab.evaluate(expression, true)
        .expect("evaluate")
        .value
        .unwrap_or(Value::Null)
}

/// One load of `url`: navigation timing and the select-all click, in ms.
fn load(tab: &Tab, url: &str) -> Value {
    tab.navigate_to(url)
        .and_then(|t| t.wait_until_navigated())
        .expect("navigate");
    let started = Instant::now();
    while eval(
        tab,
        "performance.getEntriesByName('stale-ready').length > 0 && performance.getEntriesByType('navigation')[0].loadEventEnd > 0",
    ) != json!(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the page never became ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let timing = eval(
        tab,
        "(function () {
           var n = performance.getEntriesByType('navigation')[0];
           var ready = performance.getEntriesByName('stale-ready')[0].startTime;
           var t = performance.now();
           document.getElementById('select-all').click();
           var selectAll = performance.now() - t;
           t = performance.now();
           document.getElementById('select-none').click();
           var clear = performance.now() - t;
           return JSON.stringify({
             response_end: n.responseEnd, dom_interactive: n.domInteractive,
             dom_content_loaded: n.domContentLoadedEventEnd, load: n.loadEventEnd,
             script_ready: ready, select_all_click: selectAll, clear_click: clear,
             transfer_bytes: n.transferSize, body_bytes: n.decodedBodySize,
             rows: document.querySelectorAll('tbody tr').length
           });
         })()",
    );
    serde_json::from_str(timing.as_str().expect("timing")).expect("timing JSON")
}

fn phone(tab: &Tab, on: bool) {
    if on {
        tab.call_method(Emulation::SetDeviceMetricsOverride {
            width: 390,
            height: 844,
            device_scale_factor: 2.0,
            mobile: true,
            scale: None,
            screen_width: None,
            screen_height: None,
            position_x: None,
            position_y: None,
            dont_set_visible_size: None,
            screen_orientation: None,
            viewport: None,
            display_feature: None,
            device_posture: None,
        })
        .expect("phone metrics");
        tab.call_method(Emulation::SetCPUThrottlingRate { rate: 4.0 })
            .expect("throttle");
    } else {
        tab.call_method(Emulation::ClearDeviceMetricsOverride(None))
            .expect("clear metrics");
        tab.call_method(Emulation::SetCPUThrottlingRate { rate: 1.0 })
            .expect("unthrottle");
    }
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = Browser::new(LaunchOptions {
        path: Some(chromium.into()),
        headless: true,
        sandbox: false,
        user_data_dir: Some(profile.path().to_path_buf()),
        window_size: Some((1280, 900)),
        idle_browser_timeout: Duration::from_secs(600),
        args: [
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
        ]
        .iter()
        .map(std::ffi::OsStr::new)
        .collect(),
        ..LaunchOptions::default()
    })
    .expect("launch chromium");
    let chromium_version = browser.get_version().map(|v| v.product).unwrap_or_default();
    let tab = browser.new_tab().expect("tab");
    let mut results = Vec::new();
    for follows in SIZES {
        let addr = serve(&runtime, follows);
        let url = format!("http://{addr}/stale");
        // Warm the report's cache (the cold fetch is bench/report.rs's job).
        let (html, server_ms, script_bytes, csv_bytes) = runtime.block_on(async {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::new();
            let body = |url: String| {
                let client = client.clone();
                async move {
                    client
                        .get(url)
                        .send()
                        .await
                        .expect("request")
                        .bytes()
                        .await
                        .expect("body")
                }
            };
            let html = String::from_utf8_lossy(&body(url.clone()).await).into_owned();
            let mut server_ms = Vec::new();
            for _ in 0..LOADS {
                let t = Instant::now();
                body(url.clone()).await;
                server_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let script = body(format!("{url}?asset=stale.js")).await.len();
            let csv = body(format!("{url}?format=csv")).await.len();
            (html, server_ms, script, csv)
        });
        let stale = html
            .split("<strong class=\"stale-count\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
        for device in ["desktop", "phone"] {
            phone(&tab, device == "phone");
            let loads: Vec<Value> = (0..LOADS).map(|_| load(&tab, &url)).collect();
            let pick = |key: &str| {
                median(
                    loads
                        .iter()
                        .map(|l| l[key].as_f64().unwrap_or(0.0))
                        .collect(),
                )
            };
            let row = json!({
                "follows": follows,
                "stale": stale,
                "device": device,
                "rows_on_page": loads[0]["rows"],
                "html_bytes": html.len(),
                "script_bytes": script_bytes,
                "csv_bytes_all_rows": csv_bytes,
                "server_cached_html_ms_median": median(server_ms.clone()),
                "dom_interactive_ms": pick("dom_interactive"),
                "dom_content_loaded_ms": pick("dom_content_loaded"),
                "load_ms": pick("load"),
                "script_ready_ms": pick("script_ready"),
                "select_all_click_ms": pick("select_all_click"),
                "clear_click_ms": pick("clear_click"),
            });
            println!("{row}");
            results.push(row);
        }
        phone(&tab, false);
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results");
    std::fs::create_dir_all(&out).expect("results dir");
    let document = json!({
        "what": "stale-follows page in headless Chromium, medians of 5 loads (cached report)",
        "chromium": chromium_version,
        "profile": if cfg!(debug_assertions) { "dev (unoptimized server)" } else { "release" },
        "page_size_rows": steemgate::report::PAGE_SIZE,
        "results": results,
    });
    std::fs::write(
        out.join("report-page.json"),
        serde_json::to_string_pretty(&document).expect("json") + "\n",
    )
    .expect("write json");
    let mut md = String::from(
        "# Stale-follows page in Chromium (issue 16)\n\n\
         `bench/report_page.sh`: the report's HTML page for an account following 5,000 and 10,000,\n\
         nearly all of them stale (the worst case), cached report, loopback, headless Chromium. Phone: 390×844,\n\
         touch, CPU throttled 4× (DevTools). Times in ms from navigation start, medians of 5 loads.\n\
         \"ready\" is the moment the page script has wired the table; \"select all\" is how long a\n\
         click on \"Select all N stale\" blocks the page.\n\n",
    );
    md.push_str(&format!(
        "Chromium: {chromium_version}; server built with the {} profile.\n\n",
        document["profile"].as_str().unwrap_or("")
    ));
    md.push_str("| follows | stale | device | rows shown | HTML bytes | script bytes | CSV bytes (all rows) | server ms | DOM interactive | DOMContentLoaded | load | ready | select all |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} |\n",
            r["follows"], r["stale"], r["device"].as_str().unwrap_or(""), r["rows_on_page"], r["html_bytes"], r["script_bytes"],
            r["csv_bytes_all_rows"], r["server_cached_html_ms_median"].as_f64().unwrap_or(0.0),
            r["dom_interactive_ms"].as_f64().unwrap_or(0.0), r["dom_content_loaded_ms"].as_f64().unwrap_or(0.0),
            r["load_ms"].as_f64().unwrap_or(0.0), r["script_ready_ms"].as_f64().unwrap_or(0.0),
            r["select_all_click_ms"].as_f64().unwrap_or(0.0),
        ));
    }
    std::fs::write(out.join("report-page.md"), md).expect("write md");
    println!("wrote {}", out.join("report-page.md").display());
}
