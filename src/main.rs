//! The `steemgate` command: a thin CLI over the library.
//!
//! `run` and `check` read a config; `demo` runs everything offline (gateway,
//! devnet, embedded store, built-in upstreams); `devnet` runs or drives the
//! simulated chain; `secret` prints a fresh cookie secret.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// jemalloc instead of glibc's malloc: a proxied request makes about a
/// hundred small allocations (most in pingora and the http crate), and
/// glibc spent ~220 instructions per malloc/free pair on them. jemalloc
/// cut ~11 % of all instructions per request; mimalloc cut ~14 % but
/// doubled resident memory with 100,000 sessions (see the README's
/// Benchmarks section).
#[global_allocator]
static GLOBAL_ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "steemgate",
    version,
    about = "Authentication gateway: visitors prove a Steem/Hive account with a memo transfer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the gateway with a config file.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file; exits non-zero naming the bad key and line.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Everything offline in one process: gateway, devnet, embedded store, demo apps.
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seconds between simulated blocks.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        block_interval: Duration,
    },
    /// Run the simulated chain (devnet), or drive a running one.
    Devnet {
        #[command(subcommand)]
        action: Option<DevnetAction>,
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: String,
        /// steem or hive
        #[arg(long, default_value = "steem")]
        chain: String,
        /// Time between blocks (e.g. 3s); 0 produces blocks only on `devnet.produce_block`.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        block_interval: Duration,
        /// Start without the seeded demo accounts and follows.
        #[arg(long)]
        no_seed: bool,
    },
    /// Print a fresh random secret for `session.secret`.
    Secret,
}

#[derive(Subcommand)]
enum DevnetAction {
    /// Submit a simulated transfer to a running devnet.
    Transfer {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "0.001 STEEM")]
        amount: String,
        #[arg(long)]
        memo: String,
    },
    /// Follow, mute or unfollow on a running devnet (applied in the next block).
    Follow {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        follower: String,
        #[arg(long)]
        following: String,
        /// blog (follow), ignore (mute) or none (unfollow).
        #[arg(long, default_value = "blog", value_parser = ["blog", "ignore", "none"])]
        what: String,
    },
    /// Ask a running devnet to produce a block now.
    ProduceBlock {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
    },
    /// Subscribe an account to a community on a running devnet.
    Subscribe {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = steemgate::chain::devnet::DEMO_COMMUNITY)]
        community: String,
    },
    /// Unsubscribe an account from a community on a running devnet.
    Unsubscribe {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        account: String,
        #[arg(long, default_value = steemgate::chain::devnet::DEMO_COMMUNITY)]
        community: String,
    },
    /// Give an account a role in a community (muted, guest, member, mod, admin, owner).
    SetRole {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long, default_value = steemgate::chain::devnet::DEMO_COMMUNITY)]
        community: String,
        #[arg(long)]
        account: String,
        #[arg(long)]
        role: String,
    },
    /// Change an account's policy facts on a running devnet.
    SetAccount {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        account: String,
        /// Raw reputation (0 shows as 25; 2200000000000 as 55; negative below 25).
        #[arg(long, allow_negative_numbers = true)]
        reputation: Option<i64>,
        /// Own VESTS, e.g. "1084316" (≈ 600 SP on the devnet).
        #[arg(long)]
        vesting_shares: Option<String>,
        /// VESTS delegated out.
        #[arg(long)]
        delegated: Option<String>,
        /// VESTS delegated in.
        #[arg(long)]
        received: Option<String>,
        /// Creation time, e.g. 2024-01-31T12:00:00 (UTC).
        #[arg(long)]
        created: Option<String>,
        /// Witness vote proxy; "" clears it.
        #[arg(long)]
        proxy: Option<String>,
    },
    /// Vote (or with --unvote, unvote) for a witness on a running devnet.
    WitnessVote {
        #[arg(long, default_value = "http://127.0.0.1:8091")]
        node: url::Url,
        #[arg(long)]
        account: String,
        #[arg(long)]
        witness: String,
        #[arg(long)]
        unvote: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        steemgate::logging::init(None);
    }
    let result = match cli.command {
        Command::Run { config } => steemgate::config::Config::load(&config)
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))
            .and_then(|c| {
                steemgate::logging::init(Some(&c.log));
                let extras = steemgate::server::Extras {
                    config_path: Some(config.clone()),
                    ..Default::default()
                };
                steemgate::server::run(c, extras)
            }),
        Command::Check { config } => match steemgate::config::Config::load(&config) {
            Ok(c) => {
                for warning in &c.warnings {
                    println!("{}: warning: {warning}", config.display());
                }
                println!(
                    "{}: OK ({} routes, {} policies, chain {} as @{})",
                    config.display(),
                    c.routes.len(),
                    c.policies.len(),
                    c.chain.name.as_str(),
                    c.chain.account
                );
                Ok(())
            }
            Err(e) => Err(anyhow::anyhow!("{}: {e}", config.display())),
        },
        Command::Demo {
            listen,
            block_interval,
        } => steemgate::demo::run(&listen, block_interval),
        Command::Devnet {
            action: None,
            listen,
            chain,
            block_interval,
            no_seed,
        } => steemgate::demo::run_devnet(&listen, &chain, block_interval, !no_seed),
        Command::Devnet {
            action: Some(action),
            ..
        } => devnet_client(action),
        Command::Secret => steemgate::demo::fresh_secret().map(|s| println!("{s}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn devnet_client(action: DevnetAction) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match action {
            DevnetAction::Transfer { node, from, to, amount, memo } => {
                let txid = steemgate::chain::devnet::submit_transfer_rpc(&node, &from, &to, &amount, &memo).await?;
                println!("simulated transfer {txid} submitted: {from} -> {to}, {amount}, memo {memo:?} (it lands in the next block)");
            }
            DevnetAction::Follow { node, follower, following, what } => {
                let list: Vec<String> = if what == "none" { Vec::new() } else { vec![what.clone()] };
                steemgate::chain::devnet::follow_rpc(&node, &follower, &following, &list).await?;
                println!("simulated follow submitted: {follower} -> {following}, what {list:?} (it lands in the next block)");
            }
            DevnetAction::ProduceBlock { node } => {
                let block = steemgate::chain::devnet::produce_block_rpc(&node).await?;
                println!("simulated block {block} produced");
            }
            DevnetAction::Subscribe { node, account, community } => {
                steemgate::chain::devnet::subscribe_rpc(&node, &account, &community).await?;
                println!("simulated: {account} subscribed to {community}");
            }
            DevnetAction::Unsubscribe { node, account, community } => {
                steemgate::chain::devnet::unsubscribe_rpc(&node, &account, &community).await?;
                println!("simulated: {account} unsubscribed from {community}");
            }
            DevnetAction::SetRole { node, community, account, role } => {
                steemgate::chain::devnet::set_role_rpc(&node, &community, &account, &role).await?;
                println!("simulated: {account} is {role} in {community}");
            }
            DevnetAction::SetAccount { node, account, reputation, vesting_shares, delegated, received, created, proxy } => {
                let mut fields = serde_json::Map::new();
                if let Some(reputation) = reputation {
                    fields.insert("reputation".into(), reputation.into());
                }
                for (key, value) in [
                    ("vesting_shares", vesting_shares),
                    ("delegated", delegated),
                    ("received", received),
                    ("created", created),
                    ("proxy", proxy),
                ] {
                    if let Some(value) = value {
                        fields.insert(key.into(), value.into());
                    }
                }
                if fields.is_empty() {
                    anyhow::bail!("nothing to change: give at least one of --reputation, --vesting-shares, --delegated, --received, --created, --proxy");
                }
                steemgate::chain::devnet::set_account_rpc(&node, &account, fields).await?;
                println!("simulated: {account} updated");
            }
            DevnetAction::WitnessVote { node, account, witness, unvote } => {
                steemgate::chain::devnet::witness_vote_rpc(&node, &account, &witness, !unvote).await?;
                let verb = if unvote { "no longer votes" } else { "votes" };
                println!("simulated: {account} {verb} for witness {witness}");
            }
        }
        Ok(())
    })
}
