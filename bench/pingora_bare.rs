//! The floor of any pingora proxy on this machine (a benchmark tool, not a
//! test and not part of steemgate).
//!
//! Why: `bench/run.sh` compares steemgate with nginx. When steemgate is
//! slower, the question is whether our code costs it or pingora itself does.
//! This is the smallest pingora reverse proxy: every request goes to one
//! upstream, no routing, no header work, no session, no metrics, with the
//! same pingora version and server settings as steemgate (threads, runtime
//! flavour, the same `HttpPeer` options). `bench/run.sh` loads it as the `pingora-bare` target,
//! so the gap between it and nginx is pingora's, and the gap between it and
//! steemgate is ours.
//!
//! Run by `bench/run.sh`; by hand:
//! `cargo bench --bench pingora_bare -- LISTEN UPSTREAM THREADS`
//! (e.g. `127.0.0.1:8081 127.0.0.1:8082 2`).

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        let mut peer = HttpPeer::new(self.upstream, false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        Ok(Box::new(peer))
    }
}

fn main() {
    // `cargo bench` appends `--bench`; ignore flags.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [listen, upstream, threads] = args.as_slice() else {
        eprintln!("usage: pingora_bare LISTEN UPSTREAM THREADS");
        std::process::exit(2);
    };
    let (Ok(upstream), Ok(threads)) = (upstream.parse::<SocketAddr>(), threads.parse::<usize>())
    else {
        eprintln!("UPSTREAM must be an address like 127.0.0.1:8080 and THREADS a number");
        std::process::exit(2);
    };
    // Like steemgate's default (`work_stealing: off`): a current-thread
    // runtime per thread that accepts, serves and pools on its own (the
    // pingora-core patch, vendor/pingora-core/PATCHED.md change 2).
    // BARE_WORK_STEALING=1 runs pingora's work-stealing runtime instead, like
    // steemgate's `work_stealing: on`.
    let work_stealing = std::env::var("BARE_WORK_STEALING").is_ok_and(|v| v == "1");
    let conf = ServerConf {
        threads,
        work_stealing,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(5),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Bare { upstream },
        "pingora bare",
    );
    proxy.add_tcp(listen);
    server.add_service(proxy);
    server.run_forever();
}
