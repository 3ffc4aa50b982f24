//! A tiny app to put behind steemgate: it greets the account the gateway
//! proved, read from the `X-Steem-Account` request header.
//!
//! Why it exists: it is the pattern every upstream should follow, in the
//! fewest lines. Run it with
//!
//! ```sh
//! cargo run --example upstream -- --listen 127.0.0.1:3000
//! ```
//!
//! and route to it, e.g. `{path: /, upstream: "http://127.0.0.1:3000", auth: required}`.
//!
//! The header is only true when the request came through the gateway, which
//! removes every client-sent spelling and sets exactly one value. So the app
//! must be reachable ONLY through the gateway: bind it to loopback (as
//! above) or firewall its port. It refuses a request carrying more than one
//! value (that never comes from the gateway) and treats a missing header as
//! an anonymous visitor (a `public` or `optional` route).
//! `tests/examples.rs` runs it behind the real gateway.

use std::net::SocketAddr;

use axum::http::{HeaderMap, StatusCode};
use clap::Parser;

#[derive(Parser)]
#[command(about = "A tiny upstream app that greets the X-Steem-Account steemgate forwards")]
struct Args {
    /// Where to listen; keep it on loopback (or firewalled) so only the gateway reaches it.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
}

/// Who the gateway says is visiting.
enum Visitor {
    Anonymous,
    Account(String),
    /// Several values, or not an account name: not from the gateway.
    Refused(&'static str),
}

fn visitor(headers: &HeaderMap) -> Visitor {
    // `get_all` matches the name in any case; other spellings
    // (X_Steem_Account, ...) are different headers and are ignored.
    let mut values = headers.get_all("x-steem-account").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return match headers.contains_key("x-steem-account") {
            true => Visitor::Refused("more than one X-Steem-Account value"),
            false => Visitor::Anonymous,
        };
    };
    match value.to_str() {
        Ok(name) if is_account_name(name) => Visitor::Account(name.to_string()),
        _ => Visitor::Refused("X-Steem-Account is not one account name"),
    }
}

/// A sanity check only (the gateway already validated the name): 3 to 16 of
/// `a-z 0-9 . -`. It also rejects a comma-joined list.
fn is_account_name(name: &str) -> bool {
    (3..=16).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

async fn greet(headers: HeaderMap) -> (StatusCode, String) {
    match visitor(&headers) {
        Visitor::Account(account) => (StatusCode::OK, format!("Hello @{account}\n")),
        Visitor::Anonymous => (StatusCode::OK, "Hello, anonymous visitor\n".to_string()),
        Visitor::Refused(why) => (StatusCode::BAD_REQUEST, format!("refused: {why}\n")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("upstream listening on http://{}", listener.local_addr()?);
    axum::serve(listener, axum::Router::new().fallback(greet)).await?;
    Ok(())
}
