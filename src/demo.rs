//! `steemgate demo` and `steemgate devnet`: everything offline.
//!
//! Why: a visitor of the README must see a login work end to end with only
//! a Rust toolchain: no node, no Redis, no app. The demo runs the gateway on
//! the embedded store, the devnet (a simulated chain, labelled as such on
//! every page), the `hello` app on `/`, on `/members` (an access policy:
//! subscribers of the devnet's demo community, which `demo` can join from
//! the 403 page) and on `/vip` (for `alice` only: the allowlist and its 403
//! page), the stale-follows report on `/stale`, and prints how to simulate
//! the login transfer.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::chain::ChainName;
use crate::chain::devnet::{Devnet, DevnetOptions};
use crate::config::Config;

/// The account the demo gateway is paid at.
pub const DEMO_GATE_ACCOUNT: &str = "gate-demo";

/// The only account the demo's `/vip` route lets in (its allowlist):
/// logged in as anyone else, a visitor sees the 403 page.
pub const DEMO_MEMBER: &str = "alice";

/// The devnet community whose subscribers the demo's `/members` policy
/// admits (`demo` is not subscribed at first).
pub const DEMO_COMMUNITY: &str = "hive-100001";

/// A fresh 32-byte secret from the OS CSPRNG, hex-encoded.
pub fn fresh_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    crate::random::os_random(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// The demo's OpenID client: a public client (PKCE, no secret) for the
/// example relying party in `examples/oidc-rp`, which listens on
/// [`DEMO_OIDC_RP`].
pub const DEMO_OIDC_CLIENT: &str = "example-rp";
pub const DEMO_OIDC_RP: &str = "http://127.0.0.1:8090";

/// The demo's OpenID issuer: the listen address, reached over loopback
/// (an unspecified address such as 0.0.0.0 is reached as 127.0.0.1).
fn demo_issuer(listen: &str) -> String {
    match listen.parse::<std::net::SocketAddr>() {
        Ok(addr) if addr.ip().is_loopback() => format!("http://{addr}"),
        Ok(addr) => format!("http://127.0.0.1:{}", addr.port()),
        Err(_) => format!("http://{listen}"),
    }
}

/// Runs the offline demo on `listen` (never returns on success).
pub fn run(listen: &str, block_interval: Duration) -> anyhow::Result<()> {
    let devnet_listener = TcpListener::bind("127.0.0.1:0").context("binding the devnet port")?;
    let devnet_addr = devnet_listener.local_addr()?;
    let data_dir = PathBuf::from("data/demo");
    // The devnet forgets its chain on exit, so the demo store starts fresh too.
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("clearing {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(&data_dir)?;
    // The devnet runs in this process: a timeout only fires when the machine
    // is busy (a build beside the demo), and the report's batches of 3,000
    // follows should then be slow, not a "chain node failed" page.
    let issuer = demo_issuer(listen);
    let yaml = format!(
        r#"listen: "{listen}"
site_name: "steemgate demo"
chain:
  name: steem
  nodes: ["http://{devnet_addr}"]
  account: {DEMO_GATE_ACCOUNT}
  devnet: true
  request_timeout: 10s
session:
  secret: "{secret}"
  challenge_ttl: 15m
store: "file:{store}"
policies:
  members:
    community: {DEMO_COMMUNITY}
oidc:
  issuer: "{issuer}"
  clients:
    - client_id: {DEMO_OIDC_CLIENT}
      name: "Example app"
      redirect_uris: ["{rp}/callback"]
      post_logout_redirect_uris: ["{rp}/"]
routes:
  - {{path: /, upstream: "builtin:hello", auth: required}}
  - {{path: /public, upstream: "builtin:hello", auth: public}}
  - {{path: /stale, upstream: "builtin:stale-follows", auth: required}}
  - {{path: /members, upstream: "builtin:hello", auth: required, policy: members}}
  - {{path: /vip, upstream: "builtin:hello", auth: required, allow: [{DEMO_MEMBER}]}}
"#,
        secret = fresh_secret()?,
        store = data_dir.display(),
        issuer = issuer,
        rp = DEMO_OIDC_RP,
    );
    let config = Config::from_yaml(&yaml, std::path::Path::new(".")).context("demo config")?;
    let devnet = Devnet::new(DevnetOptions {
        chain: ChainName::Steem,
        block_interval: (!block_interval.is_zero()).then_some(block_interval),
        seed: true,
        start_block: 1000,
    });
    println!(
        "\nsteemgate demo (SIMULATED chain: a local devnet, no real funds)\n\
         \n  open        http://{listen}/            (protected: you will be asked to log in)\n\
         \x20 public      http://{listen}/public\n\
         \x20 report      http://{listen}/stale       (stale follows of the logged-in account)\n\
         \x20 members     http://{listen}/members     (subscribers of {DEMO_COMMUNITY}: an access policy read from the chain)\n\
         \x20 vip         http://{listen}/vip         (only @{DEMO_MEMBER} may enter: an allowlist)\n\
         \x20 OpenID      {issuer}/.well-known/openid-configuration  (client `{DEMO_OIDC_CLIENT}`: run examples/oidc-rp)\n\
         \nTo log in, press \"Simulate transfer\" on the login page, or send the memo it shows with:\n\
         \n  steemgate devnet transfer --node http://{devnet_addr} --from demo --to {DEMO_GATE_ACCOUNT} --amount \"0.001 STEEM\" --memo \"<memo>\"\n\
         \n(try account `demo`: it follows ~3,000 accounts for the report)\n"
    );
    crate::server::run(
        config,
        crate::server::Extras {
            devnet: Some((devnet, devnet_listener)),
            config_path: None,
        },
    )
}

/// Runs a standalone devnet until Ctrl-C.
pub fn run_devnet(
    listen: &str,
    chain: &str,
    block_interval: Duration,
    seed: bool,
) -> anyhow::Result<()> {
    let chain = match chain {
        "steem" => ChainName::Steem,
        "hive" => ChainName::Hive,
        other => anyhow::bail!("unknown chain {other:?}: steem or hive"),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        let addr = listener.local_addr()?;
        let devnet = Devnet::new(DevnetOptions {
            chain,
            block_interval: (!block_interval.is_zero()).then_some(block_interval),
            seed,
            start_block: 1000,
        });
        println!("devnet: a SIMULATED {} chain on http://{addr} (JSON-RPC; Ctrl-C stops it)", chain.as_str());
        println!("  submit a transfer: steemgate devnet transfer --node http://{addr} --from alice --to gate-demo --memo CODE");
        devnet
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })
}
