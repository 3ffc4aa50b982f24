//! The devnet: a local, SIMULATED Steem/Hive node.
//!
//! Why it exists: the gateway, its tests, its demo and app developers all need
//! a chain that accepts a login transfer on request, produces blocks when told
//! to, and answers the few JSON-RPC methods the gateway uses, in the exact
//! shapes real nodes return (see `tests/fixtures/steem-rpc/`), without any
//! network access and without real money. Nothing here is signed or
//! consensus-checked: ids, signatures and keys are deterministic stand-ins,
//! and every HTTP answer says so (`X-Devnet: simulated`).
//!
//! Layout: this file holds the chain state and the Rust API; [`server`] the
//! JSON-RPC over HTTP front; `shapes` the node-shaped JSON; `seed` the demo
//! accounts; `follows` the follow graph and the follow operations that
//! change it; [`client`] the helpers the CLI uses to talk to a running devnet.
//!
//! Memory is bounded: at most [`MAX_BLOCKS`] recent blocks are kept and older
//! block numbers answer `null` (as a node answers for a block it does not
//! have). Blocks below `start_block` that fall inside that window are
//! synthesized as empty "pre-history" blocks, so a follower that starts a few
//! blocks behind the head still finds a consistent chain.

pub mod client;
mod follows;
mod policy;
mod seed;
pub mod server;
mod shapes;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use blake2::{Blake2b512, Digest};

use super::ChainName;
use super::account::{AccountName, AccountNameError};
use super::asset::{Amount, AmountError, Symbol};
use crate::clock::{UnixTime, now_unix};

pub use client::{
    follow_rpc, produce_block_rpc, set_account_rpc, set_role_rpc, submit_transfer_rpc,
    subscribe_rpc, unsubscribe_rpc, witness_vote_rpc,
};
pub use policy::{AccountUpdate, DEMO_COMMUNITY, DEMO_COMMUNITY_TITLE, parse_vests};

/// The number of most recent blocks the devnet remembers.
pub const MAX_BLOCKS: u64 = 100_000;

/// The longest memo the chain accepts (`STEEM_MAX_MEMO_SIZE`).
pub const MAX_MEMO_BYTES: usize = 2048;

/// Seconds between two blocks on both chains; used to date pre-history.
const BLOCK_SECONDS: u64 = 3;

/// Seconds a simulated transaction stays valid (its `expiration`).
const TX_LIFETIME_SECONDS: u64 = 600;

/// The witness named in every simulated block.
pub const DEVNET_WITNESS: &str = "devnet-witness";

/// How to run a devnet.
#[derive(Clone, Debug)]
pub struct DevnetOptions {
    /// Which chain to imitate: decides asset symbols and field names.
    pub chain: ChainName,
    /// Produce a block this often; `None` produces blocks only on request.
    pub block_interval: Option<Duration>,
    /// Create the deterministic demo accounts (see [`SEEDED_ACCOUNTS`]).
    pub seed: bool,
    /// The head block number right after start.
    pub start_block: u64,
}

impl Default for DevnetOptions {
    fn default() -> Self {
        Self {
            chain: ChainName::Steem,
            block_interval: None,
            seed: true,
            start_block: 1000,
        }
    }
}

/// The named accounts a seeded devnet holds (besides about 3,000 generated
/// accounts that `demo` follows), with the policy facts they are seeded
/// with (reputation score, stake at the devnet's vesting ratio, ≈ SP/HP):
///
/// | account | created | reputation | stake | witness votes |
/// |---|---|---|---|---|
/// | `demo` | 2 years ago | ≈ 55 | ≈ 600 | `devnet-witness` |
/// | `alice` | 2016 | ≈ 65 | ≈ 10,000 | none: proxies to `demo` |
/// | `bob` | 1 year ago | ≈ 45 | ≈ 100 own, delegates ≈ 27 to `carol` | none |
/// | `carol` | 1 year ago | ≈ 35 | ≈ 5 own + ≈ 27 received | `devnet-witness` |
/// | `gate-demo` | 1 year ago | 25 | ≈ 0.55 | none |
/// | `newbie` | 2 days ago | 25 (raw 0) | ≈ 0.55 | none |
/// | `spammer` | 100 days ago | ≈ 6 (negative raw) | ≈ 0.55 | none |
/// | `devnet-witness` | 2016 | ≈ 57 | ≈ 1,000 | itself |
///
/// The demo community [`DEMO_COMMUNITY`] ("Quiet Readers"): owner
/// `gate-demo`, admin `alice`, mod `bob`, member `carol` (subscribed),
/// `demo` neither a member nor subscribed.
pub const SEEDED_ACCOUNTS: [&str; 8] = [
    seed::DEMO_ACCOUNT,
    "alice",
    "bob",
    "carol",
    seed::GATEWAY_ACCOUNT,
    "newbie",
    "spammer",
    DEVNET_WITNESS,
];

/// Why the devnet refused a request, or a devnet client call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DevnetError {
    #[error("invalid account name {name:?}: {source}")]
    InvalidAccount {
        name: String,
        source: AccountNameError,
    },
    #[error("invalid amount: {0}")]
    InvalidAmount(#[from] AmountError),
    #[error("{0} is not an asset of the {1} chain")]
    WrongAsset(&'static str, &'static str),
    #[error("a transfer must move a positive amount")]
    ZeroAmount,
    #[error("memo is {0} bytes, the chain accepts at most {MAX_MEMO_BYTES}")]
    MemoTooLong(usize),
    #[error("invalid public key {0}")]
    InvalidKey(String),
    #[error("invalid transaction: {0}")]
    InvalidTransaction(String),
    #[error("invalid timestamp {0:?}: expected YYYY-MM-DDTHH:MM:SS")]
    InvalidTimestamp(String),
    #[error("no such account {0:?} on the devnet")]
    UnknownAccount(String),
    #[error("no such community {0:?} on the devnet")]
    UnknownCommunity(String),
    /// A policy fact that cannot be set (bad role, reputation, VESTS…).
    #[error("{0}")]
    InvalidFact(String),
    /// The devnet answered with a JSON-RPC error.
    #[error("devnet error {code}: {message}")]
    Rpc { code: i64, message: String },
    /// The devnet could not be reached or did not answer over HTTP.
    #[error("cannot reach the devnet: {0}")]
    Http(String),
    /// The devnet answered something that is not the expected shape.
    #[error("unexpected devnet answer: {0}")]
    Decode(String),
}

/// A simulated account.
#[derive(Clone, Debug)]
struct SimAccount {
    id: u64,
    created: UnixTime,
    /// Last post or comment; 0 means never (the chain writes 1970-01-01).
    last_post: UnixTime,
    /// Last top-level post; 0 means never.
    last_root_post: UnixTime,
    post_count: u64,
    /// Thousandths of the chain's native asset.
    native_units: u64,
    /// Thousandths of the chain's dollar asset.
    dollar_units: u64,
    /// Raw reputation (served as a string, as nodes do).
    reputation_raw: i64,
    /// Own VESTS, in micro-VESTS.
    vesting_micro: u64,
    /// VESTS delegated out, in micro-VESTS.
    delegated_micro: u64,
    /// VESTS delegated in, in micro-VESTS.
    received_micro: u64,
    /// Witnesses voted for (at most 30, as on chain).
    witness_votes: BTreeSet<String>,
    /// Witness vote proxy.
    proxy: Option<String>,
}

impl SimAccount {
    /// A fresh account as `ensure_account` and the seed create it.
    fn new(id: u64, created: UnixTime) -> Self {
        Self {
            id,
            created,
            last_post: 0,
            last_root_post: 0,
            post_count: 0,
            native_units: 1_000_000,
            dollar_units: 100_000,
            reputation_raw: 0,
            vesting_micro: policy::DEFAULT_VESTS_MICRO,
            delegated_micro: 0,
            received_micro: 0,
            witness_votes: BTreeSet::new(),
            proxy: None,
        }
    }
}

/// A transfer, validated.
#[derive(Clone, Debug)]
struct Transfer {
    from: AccountName,
    to: AccountName,
    amount: Amount,
    memo: String,
}

/// A simulated signed transaction holding one transfer.
#[derive(Clone, Debug)]
struct SimTransaction {
    id: String,
    ref_block_num: u16,
    ref_block_prefix: u32,
    expiration: UnixTime,
    signature: String,
    transfer: Transfer,
}

/// A block, either produced or synthesized pre-history.
#[derive(Clone, Debug)]
struct SimBlock {
    number: u64,
    id: [u8; 20],
    previous: [u8; 20],
    timestamp: UnixTime,
    transactions: Vec<SimTransaction>,
}

/// Everything the devnet knows; one lock guards it all.
#[derive(Debug)]
struct ChainState {
    chain: ChainName,
    block_interval: Option<Duration>,
    start_block: u64,
    /// Produced blocks, oldest first, contiguous, never empty after `new`.
    blocks: VecDeque<SimBlock>,
    head_number: u64,
    head_id: [u8; 20],
    head_time: UnixTime,
    /// Time of the first produced block: pre-history is dated before it.
    genesis_time: UnixTime,
    pending: Vec<SimTransaction>,
    accounts: BTreeMap<String, SimAccount>,
    /// Who follows or mutes whom.
    follows: follows::FollowGraph,
    /// Follow operations waiting for the next block.
    pending_follows: Vec<crate::chain::follow::Follow>,
    next_account_id: u64,
    transactions_submitted: u64,
    /// Keys set with `devnet.set_keys`, served by `get_accounts`.
    authorities: BTreeMap<String, SimAuthorities>,
    /// `devnet.drop_broadcasts`: accept broadcasts but never include them.
    drop_broadcasts: bool,
    /// Communities by name (`hive-…`).
    communities: BTreeMap<String, policy::SimCommunity>,
}

/// An account's keys as tests set them (`devnet.set_keys`): served instead
/// of the null key, so wallet signatures can be checked on the devnet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimAuthorities {
    /// `(key, weight)` pairs; keys as `STM…` strings.
    pub posting: Vec<(String, u16)>,
    pub posting_threshold: u32,
    pub posting_account_auths: Vec<(String, u16)>,
    pub active: Vec<(String, u16)>,
    pub active_threshold: u32,
    pub active_account_auths: Vec<(String, u16)>,
    /// `None`: the null key.
    pub memo: Option<String>,
}

/// A running simulated chain. Cheap to clone: clones share one state.
#[derive(Clone, Debug)]
pub struct Devnet {
    state: Arc<Mutex<ChainState>>,
}

impl Devnet {
    /// Creates the chain with its first block (number `start_block`, dated
    /// now) and, when asked, the demo accounts.
    pub fn new(opts: DevnetOptions) -> Self {
        let now = now_unix();
        let start_block = opts.start_block.max(1);
        let mut state = ChainState {
            chain: opts.chain,
            block_interval: opts.block_interval,
            start_block,
            blocks: VecDeque::new(),
            head_number: start_block - 1,
            head_id: prehistory_id(start_block - 1),
            head_time: now.saturating_sub(BLOCK_SECONDS),
            genesis_time: now,
            pending: Vec::new(),
            accounts: BTreeMap::new(),
            follows: follows::FollowGraph::default(),
            pending_follows: Vec::new(),
            next_account_id: 1,
            transactions_submitted: 0,
            authorities: BTreeMap::new(),
            drop_broadcasts: false,
            communities: BTreeMap::new(),
        };
        if opts.seed {
            seed::seed(&mut state, now);
        }
        state.produce(Some(now));
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// Which chain this devnet imitates.
    pub fn chain(&self) -> ChainName {
        self.lock().chain
    }

    /// The current head block number.
    pub fn head(&self) -> u64 {
        self.lock().head_number
    }

    /// Queues a transfer for the next block and returns its transaction id.
    /// Names are validated like the chain does; an unknown sender or
    /// recipient becomes a simulated account. Balances are not enforced.
    pub fn submit_transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        memo: &str,
    ) -> Result<String, DevnetError> {
        let mut state = self.lock();
        let transfer = state.validate_transfer(from, to, amount, memo)?;
        Ok(state.queue(transfer))
    }

    /// Queues a follow operation of `follower` for the next block (the
    /// `devnet.follow` method): `what` is `[]` (unfollow), `["blog"]`
    /// (follow) or `["ignore"]` (mute). Both accounts must be valid names.
    pub fn follow(
        &self,
        follower: &str,
        following: &str,
        what: &[String],
    ) -> Result<(), DevnetError> {
        let follow = follows::simulated_follow(follower, following, what)?;
        let mut state = self.lock();
        let now = now_unix().max(state.head_time);
        state.ensure_account(follow.follower.as_str(), now);
        state.pending_follows.push(follow);
        Ok(())
    }

    /// Sets the keys `get_accounts` serves for `account` (created if
    /// unknown). Every key must be a valid `STM…` public key.
    pub fn set_keys(&self, account: &str, keys: SimAuthorities) -> Result<(), DevnetError> {
        let name = AccountName::parse(account).map_err(|source| DevnetError::InvalidAccount {
            name: account.to_string(),
            source,
        })?;
        let all = keys
            .posting
            .iter()
            .chain(&keys.active)
            .map(|(key, _)| key)
            .chain(keys.memo.as_ref());
        for key in all {
            crate::chain::crypto::PublicKey::parse(key)
                .map_err(|e| DevnetError::InvalidKey(format!("{key}: {e}")))?;
        }
        let mut state = self.lock();
        let now = now_unix().max(state.head_time);
        state.ensure_account(name.as_str(), now);
        state.authorities.insert(name.as_str().to_string(), keys);
        Ok(())
    }

    /// While `drop`, broadcast transactions are accepted but never included
    /// (a transaction lost on its way to a witness).
    pub fn set_drop_broadcasts(&self, drop: bool) {
        self.lock().drop_broadcasts = drop;
    }

    /// Accepts a signed transaction (`condenser_api.broadcast_transaction`):
    /// its transfers go into the next block under the transaction's own id,
    /// its follow operations (`custom_json` id `follow`) are applied to the
    /// follow graph when that block is produced. Transfer signatures are not
    /// checked (the devnet has no consensus); a follow must carry the
    /// follower's posting authority when the follower has keys (see
    /// `follows::check_broadcast`). The transaction must serialize and must
    /// not have expired; one bad operation refuses the whole transaction.
    pub fn broadcast(
        &self,
        transaction: &crate::chain::crypto::Transaction,
    ) -> Result<String, DevnetError> {
        let id = transaction
            .id()
            .map_err(|e| DevnetError::InvalidTransaction(e.to_string()))?;
        let mut state = self.lock();
        let expiration = UnixTime::from(transaction.expiration.unix_seconds());
        if expiration < state.head_time {
            return Err(DevnetError::InvalidTransaction(format!(
                "transaction expired at {}, the head block is at {}",
                format_chain_time(expiration),
                format_chain_time(state.head_time)
            )));
        }
        let mut transfers = Vec::new();
        let mut follows = Vec::new();
        for operation in &transaction.operations {
            match operation {
                crate::chain::crypto::Operation::Transfer(op) => {
                    transfers.push(state.validate_transfer(&op.from, &op.to, &op.amount, &op.memo)?)
                }
                crate::chain::crypto::Operation::CustomJson(op) => {
                    follows.push(follows::check_broadcast(&state, transaction, op)?);
                }
                other => {
                    return Err(DevnetError::InvalidTransaction(format!(
                        "operation {} is not simulated",
                        other.name()
                    )));
                }
            }
        }
        follows::check_block_limit(&state.pending_follows, &follows)?;
        if state.drop_broadcasts {
            return Ok(id);
        }
        let now = now_unix().max(state.head_time);
        state.pending_follows.extend(follows);
        for transfer in transfers {
            for name in [transfer.from.as_str(), transfer.to.as_str()] {
                state.ensure_account(name, now);
            }
            state.transactions_submitted += 1;
            let transaction = SimTransaction {
                id: id.clone(),
                ref_block_num: transaction.ref_block_num,
                ref_block_prefix: transaction.ref_block_prefix,
                expiration,
                signature: transaction.signatures.first().cloned().unwrap_or_default(),
                transfer,
            };
            state.pending.push(transaction);
        }
        Ok(id)
    }

    /// Produces the next block with every queued transfer and returns its
    /// number. `timestamp` places the block at that time (tests use it to go
    /// to the future or the past); without it the block is dated now, and
    /// never earlier than the previous block.
    pub fn produce_block(&self, timestamp: Option<UnixTime>) -> u64 {
        self.lock().produce(timestamp)
    }

    /// The period of the background producer, if any.
    pub fn block_interval(&self) -> Option<Duration> {
        self.lock().block_interval
    }

    /// The HTTP routes (JSON-RPC on `POST /`), for embedding or testing.
    pub fn router(&self) -> axum::Router {
        server::router(self.clone())
    }

    /// Runs the JSON-RPC server on `listener` and, when `block_interval` is
    /// set, the block producer; both stop when `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        server::serve(self, listener, shutdown).await
    }

    fn lock(&self) -> MutexGuard<'_, ChainState> {
        // A panic while holding the lock cannot leave the state half-written
        // in a way that matters for a simulation: keep serving.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl ChainState {
    fn validate_transfer(
        &self,
        from: &str,
        to: &str,
        amount: &str,
        memo: &str,
    ) -> Result<Transfer, DevnetError> {
        let parse_name = |raw: &str| {
            AccountName::parse(raw).map_err(|source| DevnetError::InvalidAccount {
                name: raw.to_string(),
                source,
            })
        };
        let from = parse_name(from)?;
        let to = parse_name(to)?;
        let amount = Amount::parse_legacy(amount, self.chain)?;
        if !Symbol::accepted(self.chain).contains(&amount.symbol) {
            return Err(DevnetError::WrongAsset(
                amount.symbol.as_str(),
                self.chain.as_str(),
            ));
        }
        if amount.units == 0 {
            return Err(DevnetError::ZeroAmount);
        }
        if memo.len() > MAX_MEMO_BYTES {
            return Err(DevnetError::MemoTooLong(memo.len()));
        }
        Ok(Transfer {
            from,
            to,
            amount,
            memo: memo.to_string(),
        })
    }

    /// Signs (in simulation) and queues a validated transfer.
    fn queue(&mut self, transfer: Transfer) -> String {
        let now = now_unix().max(self.head_time);
        for name in [transfer.from.as_str(), transfer.to.as_str()] {
            self.ensure_account(name, now);
        }
        self.transactions_submitted += 1;
        let mut hasher = Blake2b512::new();
        hasher.update(b"devnet-transaction");
        hasher.update(self.transactions_submitted.to_be_bytes());
        hasher.update(self.head_id);
        hasher.update(transfer.from.as_str());
        hasher.update([0]);
        hasher.update(transfer.to.as_str());
        hasher.update([0]);
        hasher.update(transfer.amount.to_string());
        hasher.update([0]);
        hasher.update(&transfer.memo);
        let digest = hasher.finalize();
        let id = hex::encode(&digest[..20]);
        let signature = format!("1f{}", hex::encode(&digest[..64]));
        let prefix_bytes = [
            self.head_id[4],
            self.head_id[5],
            self.head_id[6],
            self.head_id[7],
        ];
        let transaction = SimTransaction {
            id: id.clone(),
            ref_block_num: (self.head_number & 0xffff) as u16,
            ref_block_prefix: u32::from_le_bytes(prefix_bytes),
            expiration: now + TX_LIFETIME_SECONDS,
            signature,
            transfer,
        };
        self.pending.push(transaction);
        id
    }

    fn ensure_account(&mut self, name: &str, created: UnixTime) {
        if !self.accounts.contains_key(name) {
            let id = self.next_account_id;
            self.next_account_id += 1;
            self.accounts
                .insert(name.to_string(), SimAccount::new(id, created));
        }
    }

    fn produce(&mut self, timestamp: Option<UnixTime>) -> u64 {
        let timestamp = timestamp.unwrap_or_else(|| now_unix().max(self.head_time));
        let number = self.head_number + 1;
        let transactions = std::mem::take(&mut self.pending);
        for follow in std::mem::take(&mut self.pending_follows) {
            self.follows.apply(&follow);
        }
        let mut hasher = Blake2b512::new();
        hasher.update(b"devnet-block");
        hasher.update(number.to_be_bytes());
        hasher.update(self.head_id);
        hasher.update(timestamp.to_be_bytes());
        for transaction in &transactions {
            hasher.update(transaction.id.as_bytes());
        }
        let id = block_id(number, &hasher.finalize());
        if self.blocks.is_empty() {
            self.genesis_time = timestamp;
        }
        self.blocks.push_back(SimBlock {
            number,
            id,
            previous: self.head_id,
            timestamp,
            transactions,
        });
        while self.blocks.len() as u64 > MAX_BLOCKS {
            self.blocks.pop_front();
        }
        self.head_number = number;
        self.head_id = id;
        self.head_time = timestamp;
        number
    }

    /// Block `number`, if it exists and is still remembered.
    fn block(&self, number: u64) -> Option<SimBlock> {
        if number == 0 || number > self.head_number || number + MAX_BLOCKS <= self.head_number {
            return None;
        }
        let first_stored = self.blocks.front().map_or(self.start_block, |b| b.number);
        if number < first_stored {
            let behind = first_stored - number;
            return Some(SimBlock {
                number,
                id: prehistory_id(number),
                previous: prehistory_id(number - 1),
                timestamp: self.genesis_time.saturating_sub(behind * BLOCK_SECONDS),
                transactions: Vec::new(),
            });
        }
        let index = usize::try_from(number - first_stored).ok()?;
        self.blocks.get(index).cloned()
    }

    fn last_irreversible(&self) -> u64 {
        self.head_number.saturating_sub(2).max(1)
    }
}

/// A block id as the chain builds it: the block number (big endian) in the
/// first 4 bytes, then 16 bytes of hash.
fn block_id(number: u64, digest: &[u8]) -> [u8; 20] {
    let mut id = [0u8; 20];
    id[..4].copy_from_slice(&(number as u32).to_be_bytes());
    id[4..].copy_from_slice(&digest[..16]);
    id
}

/// The deterministic id of a synthesized pre-history block (all zeros for
/// block 0, as the chain writes `previous` of block 1).
fn prehistory_id(number: u64) -> [u8; 20] {
    if number == 0 {
        return [0u8; 20];
    }
    let mut hasher = Blake2b512::new();
    hasher.update(b"devnet-prehistory");
    hasher.update(number.to_be_bytes());
    block_id(number, &hasher.finalize())
}

const CHAIN_TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");

/// `UnixTime` → `"2020-11-08T06:00:33"`, the form nodes write (UTC, no zone).
pub fn format_chain_time(at: UnixTime) -> String {
    i64::try_from(at)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|moment| moment.format(CHAIN_TIME_FORMAT).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00".to_string())
}

/// `"2020-11-08T06:00:33"` (UTC) → `UnixTime`.
pub fn parse_chain_time(raw: &str) -> Result<UnixTime, DevnetError> {
    let invalid = || DevnetError::InvalidTimestamp(raw.to_string());
    let moment =
        time::PrimitiveDateTime::parse(raw.trim(), CHAIN_TIME_FORMAT).map_err(|_| invalid())?;
    UnixTime::try_from(moment.assume_utc().unix_timestamp()).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn devnet(seed: bool) -> Devnet {
        Devnet::new(DevnetOptions {
            chain: ChainName::Steem,
            block_interval: None,
            seed,
            start_block: 1000,
        })
    }

    #[test]
    fn chain_time_round_trips() {
        assert_eq!(format_chain_time(1_604_815_233), "2020-11-08T06:00:33");
        assert_eq!(
            parse_chain_time("2020-11-08T06:00:33").ok(),
            Some(1_604_815_233)
        );
        assert_eq!(format_chain_time(0), "1970-01-01T00:00:00");
        assert!(parse_chain_time("2020-11-08 06:00:33").is_err());
        assert!(parse_chain_time("yesterday").is_err());
    }

    #[test]
    fn blocks_link_and_carry_their_number_in_the_id() {
        let net = devnet(false);
        assert_eq!(net.head(), 1000);
        net.produce_block(None);
        let state = net.lock();
        let mut previous = None;
        for number in 990..=1001 {
            let block = state.block(number).expect("block in window");
            assert_eq!(
                u32::from_be_bytes([block.id[0], block.id[1], block.id[2], block.id[3]]),
                number as u32
            );
            if let Some(previous) = previous {
                assert_eq!(
                    block.previous, previous,
                    "block {number} links to its parent"
                );
            }
            previous = Some(block.id);
        }
        assert!(state.block(1002).is_none());
        assert!(state.block(0).is_none());
    }

    #[test]
    fn old_blocks_are_forgotten_beyond_the_window() {
        let net = devnet(false);
        {
            let mut state = net.lock();
            for _ in 0..(MAX_BLOCKS + 5) {
                state.produce(Some(1_700_000_000));
            }
            assert_eq!(state.blocks.len() as u64, MAX_BLOCKS);
            let head = state.head_number;
            assert!(state.block(head - MAX_BLOCKS).is_none());
            assert!(state.block(head - MAX_BLOCKS + 1).is_some());
            assert!(state.block(1000).is_none());
        }
    }

    #[test]
    fn transfer_validation_fails_closed() {
        let net = devnet(false);
        assert!(matches!(
            net.submit_transfer("ab", "bob", "0.001 STEEM", ""),
            Err(DevnetError::InvalidAccount { .. })
        ));
        assert!(matches!(
            net.submit_transfer("alice", "bob", "0.001 HIVE", ""),
            Err(DevnetError::WrongAsset(..))
        ));
        assert!(matches!(
            net.submit_transfer("alice", "bob", "0.000 STEEM", ""),
            Err(DevnetError::ZeroAmount)
        ));
        assert!(matches!(
            net.submit_transfer("alice", "bob", "1 STEEM", ""),
            Err(DevnetError::InvalidAmount(_))
        ));
        let long_memo = "x".repeat(MAX_MEMO_BYTES + 1);
        assert!(matches!(
            net.submit_transfer("alice", "bob", "0.001 STEEM", &long_memo),
            Err(DevnetError::MemoTooLong(_))
        ));
        let txid = net
            .submit_transfer("Alice", "bob", "0.001 SBD", "memo")
            .expect("valid transfer");
        assert_eq!(txid.len(), 40);
        assert!(
            net.lock().accounts.contains_key("alice"),
            "unknown sender is created, lowercased"
        );
    }

    #[test]
    fn wall_clock_blocks_never_go_back_in_time() {
        let net = devnet(false);
        let future = now_unix() + 86_400;
        net.produce_block(Some(future));
        let number = net.produce_block(None);
        assert_eq!(net.lock().block(number).map(|b| b.timestamp), Some(future));
    }

    #[test]
    fn broadcasts_land_under_their_own_id_unless_dropped_or_expired() {
        use crate::chain::crypto::{ChainTime, Operation, Transaction, TransferOperation};
        let net = devnet(false);
        let head_time = net.lock().head_time;
        let transaction = |memo: &str, expiration: UnixTime| Transaction {
            ref_block_num: 1,
            ref_block_prefix: 2,
            expiration: ChainTime(u32::try_from(expiration).unwrap()),
            operations: vec![Operation::Transfer(TransferOperation {
                from: "alice".into(),
                to: "gate".into(),
                amount: "0.001 STEEM".into(),
                memo: memo.into(),
            })],
            extensions: Vec::new(),
            signatures: vec!["1f00".into()],
        };
        let kept = transaction("kept", head_time + 60);
        let id = net.broadcast(&kept).unwrap();
        assert_eq!(id, kept.id().unwrap());
        net.set_drop_broadcasts(true);
        net.broadcast(&transaction("lost", head_time + 60)).unwrap();
        net.set_drop_broadcasts(false);
        assert!(matches!(
            net.broadcast(&transaction("late", head_time - 1)),
            Err(DevnetError::InvalidTransaction(_))
        ));
        let number = net.produce_block(None);
        let block = net.lock().block(number).unwrap();
        let memos: Vec<&str> = block
            .transactions
            .iter()
            .map(|tx| tx.transfer.memo.as_str())
            .collect();
        assert_eq!(memos, vec!["kept"]);
        assert_eq!(block.transactions[0].id, id);
    }

    #[test]
    fn set_keys_refuses_malformed_keys() {
        let net = devnet(false);
        let keys = SimAuthorities {
            posting: vec![("STM-not-a-key".into(), 1)],
            ..SimAuthorities::default()
        };
        assert!(matches!(
            net.set_keys("alice", keys),
            Err(DevnetError::InvalidKey(_))
        ));
        assert!(!net.lock().authorities.contains_key("alice"));
    }
}
