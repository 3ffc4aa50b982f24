//! A real browser over the TLS listener with `tls.http2` at its default
//! (on): headless Chromium logs in with the devnet's "Simulate transfer"
//! button, its pages arrive over HTTP/2 (`nextHopProtocol` says `h2`), and a
//! page served over h2 opens a WebSocket through the gateway to an upstream
//! and exchanges a message. The gateway does not announce RFC 8441, so the
//! browser opens that WebSocket over HTTP/1.1 (status 101 in the DevTools
//! handshake event), with the gateway-set `X-Steem-Account` upstream.

mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use headless_chrome::Tab;
use headless_chrome::protocol::cdp::types::Event;
use serde_json::{Value, json};
use support::browser::{Chromium, STEP, enable_network_events, eval, location, wait_for};
use support::tls::tls_stack_with;

/// A WebSocket upstream: for each connection it first sends a JSON text
/// message describing the handshake it received (HTTP version, the
/// identity headers), then echoes every message.
struct WsUpstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WsUpstream {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                std::thread::spawn(move || serve_ws(stream));
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for WsUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// tungstenite's handshake callback returns its (large) error response type.
#[allow(clippy::result_large_err)]
fn serve_ws(stream: TcpStream) {
    let seen = Arc::new(Mutex::new(Value::Null));
    let record = seen.clone();
    let callback = move |request: &tungstenite::handshake::server::Request,
                         response: tungstenite::handshake::server::Response| {
        let values = |name: &str| -> Vec<String> {
            request
                .headers()
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).to_string())
                .collect()
        };
        *record.lock().unwrap() = json!({
            "version": format!("{:?}", request.version()),
            "account": values("x-steem-account"),
            "cookie": values("cookie"),
        });
        Ok(response)
    };
    let Ok(mut socket) = tungstenite::accept_hdr(stream, callback) else {
        return;
    };
    let hello = seen.lock().unwrap().to_string();
    if socket.send(tungstenite::Message::text(hello)).is_err() {
        return;
    }
    while let Ok(message) = socket.read() {
        if message.is_text() && socket.send(message).is_err() {
            return;
        }
    }
}

/// Records the status of every WebSocket handshake response the tab sees.
fn record_ws_handshakes(tab: &Tab) -> Arc<Mutex<Vec<(u32, String)>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    tab.add_event_listener(Arc::new(move |event: &Event| {
        if let Event::NetworkWebSocketHandshakeResponseReceived(received) = event {
            let response = &received.params.response;
            sink.lock().unwrap().push((
                response.status,
                response.headers_text.clone().unwrap_or_default(),
            ));
        }
    }))
    .expect("listen to network events");
    enable_network_events(tab);
    seen
}

fn next_hop_protocol(tab: &Tab) -> Value {
    eval(
        tab,
        "performance.getEntriesByType('navigation')[0].nextHopProtocol",
    )
}

#[test]
fn chromium_logs_in_over_h2_and_opens_a_websocket_through_the_gateway() {
    // --ignore-certificate-errors: the test CA is not in Chromium's store.
    let Some(chromium) = Chromium::launch_with(&["--ignore-certificate-errors"]) else {
        return;
    };
    let ws = WsUpstream::start();
    let ws_route = format!(
        "routes:\n  - {{host: \"127.0.0.1\", path: /ws, upstream: \"http://{}\", auth: required}}\n",
        ws.addr
    );
    let (stack, _ca, _certs) = tls_stack_with("", true, |config| {
        config.replacen("routes:\n", &ws_route, 1)
    });
    let base = format!("https://127.0.0.1:{}", stack.addr().port());
    let tab = chromium.tab();
    let handshakes = record_ws_handshakes(&tab);

    // A protected page sends the browser to the login page, over h2.
    tab.navigate_to(&format!("{base}/hello"))
        .and_then(|t| t.wait_until_navigated())
        .expect("open /hello");
    assert!(
        location(&tab).starts_with("/.steemgate/login"),
        "{}",
        location(&tab)
    );
    assert_eq!(next_hop_protocol(&tab), json!("h2"));
    assert!(
        wait_for(&tab, "!document.getElementById('copy').hidden", STEP),
        "the login page's script never ran"
    );

    // Simulate transfer (devnet): the browser lands on the app, logged in.
    eval(
        &tab,
        "document.getElementById('sim-from').value = 'demo'; \
         document.querySelector('form.sim button[type=submit]').click(); true",
    );
    // The test devnet makes blocks only when asked: one now and then
    // until the follower has seen the simulated transfer.
    let landed = "location.pathname === '/hello' && !!document.querySelector('h1') && \
                  document.querySelector('h1').textContent.includes('Hello @demo')";
    assert!(
        support::wait_until(STEP, || {
            stack.devnet.produce_block(None);
            wait_for(&tab, landed, std::time::Duration::from_secs(1))
        }),
        "not logged in: at {} showing {}",
        location(&tab),
        eval(&tab, "document.body ? document.body.innerText : ''")
    );
    assert_eq!(next_hop_protocol(&tab), json!("h2"));

    // The proxied app, over h2, with exactly the gateway's identity.
    tab.navigate_to(&format!("{base}/app"))
        .and_then(|t| t.wait_until_navigated())
        .expect("open /app");
    assert_eq!(next_hop_protocol(&tab), json!("h2"));
    let echo: Value =
        serde_json::from_str(eval(&tab, "document.body.innerText").as_str().unwrap()).unwrap();
    assert_eq!(
        support::gateway::upstream_saw(&echo, "x-steem-account"),
        vec!["demo"]
    );
    assert!(!echo.to_string().contains("steemgate="), "{echo}");

    // A WebSocket from this h2 page through the gateway.
    let script = format!(
        "new Promise(resolve => {{
            const got = [];
            const ws = new WebSocket('wss://127.0.0.1:{}/ws/echo');
            ws.onopen = () => ws.send('hello through the gateway');
            ws.onmessage = e => {{ got.push(e.data); if (got.length === 2) {{ ws.close(); resolve(JSON.stringify(got)); }} }};
            ws.onerror = () => resolve(JSON.stringify(['error'].concat(got)));
            setTimeout(() => resolve(JSON.stringify(['timeout'].concat(got))), 20000);
        }})",
        stack.addr().port()
    );
    let got = eval(&tab, &script);
    let got: Vec<Value> = serde_json::from_str(got.as_str().unwrap_or_else(|| panic!("{got}")))
        .unwrap_or_else(|e| panic!("{got}: {e}"));
    assert_eq!(got.len(), 2, "{got:?}");
    let handshake: Value = serde_json::from_str(got[0].as_str().unwrap()).unwrap();
    assert_eq!(handshake["version"], json!("HTTP/1.1"));
    assert_eq!(handshake["account"], json!(["demo"]));
    assert!(
        !handshake["cookie"].to_string().contains("steemgate="),
        "{handshake}"
    );
    assert_eq!(got[1], json!("hello through the gateway"));
    // Browser to gateway: HTTP/1.1 (101), not RFC 8441 over h2 (200).
    assert!(
        support::wait_until(STEP, || !handshakes.lock().unwrap().is_empty()),
        "no WebSocket handshake event"
    );
    let handshakes = handshakes.lock().unwrap().clone();
    assert_eq!(handshakes[0].0, 101, "{handshakes:?}");
}
