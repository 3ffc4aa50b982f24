//! The block follower: reads new blocks in order and turns matching
//! transfers into claims on login challenges.
//!
//! Why: the chain is the only proof of a login. The follower keeps a cursor
//! in the store (so a restart neither misses nor replays blocks), never
//! replays history on a fresh store, bounds catch-up to what a live challenge
//! can still need, and refuses every transfer that is not exactly a login
//! payment to our account ([`match_transfer`] names each refusal). Only one
//! instance follows at a time (store lease); the others just report status.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::asset::{AmountError, Symbol};
use super::block::{Block, TransferOp};
use super::rpc::{MAX_BATCH, RpcClient};
use super::status::ChainStatusHandle;
use super::{AccountName, ChainName, Confirm, RpcError};
use crate::clock::now_unix;
use crate::store::memo::canonical_memo;
use crate::store::{ChainCursor, Claim, ClaimOutcome, SessionKey, SharedStore, StoreError};

/// Block interval of both chains.
pub const BLOCK_SECONDS: u64 = 3;
/// Longest memo the chain accepts (bytes).
pub const MAX_MEMO_BYTES: usize = 2048;
/// Seconds the follower lease is held for; renewed every round.
pub const LEASE_SECS: u64 = 15;
/// Extra blocks kept on top of the challenge window when skipping ahead.
const CATCH_UP_MARGIN_BLOCKS: u64 = 20;
/// Time after a new head was seen before polling fast for the next one.
const NEXT_BLOCK_EXPECTED_AFTER: Duration = Duration::from_millis(2500);
const FAST_POLL: Duration = Duration::from_millis(250);
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(5);
/// How many processed block ids are remembered to notice a fork (a block
/// whose `previous` is not the block we processed) and find where it began.
/// Forks on Steem/Hive are a few blocks deep; 2 × 21 witnesses is ample.
const REMEMBERED_BLOCK_IDS: u64 = 64;

/// What the follower needs to know from the configuration.
#[derive(Clone, Debug)]
pub struct FollowerSettings {
    pub chain: ChainName,
    /// The gateway's account: login transfers go to it.
    pub account: AccountName,
    /// Smallest accepted amount, in thousandths.
    pub min_amount_units: u64,
    pub confirm: Confirm,
    pub challenge_ttl: Duration,
    pub session_ttl: Duration,
    /// Identifies this process for the follower lease.
    pub instance_id: String,
}

/// Why a transfer is not a login payment.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("sent to {0:?}, not to the gateway's account")]
    WrongRecipient(String),
    #[error("{0} is not accepted on this chain")]
    AssetNotAccepted(&'static str),
    #[error("{units} thousandths is below the minimum of {min}")]
    BelowMinimum { units: u64, min: u64 },
    #[error("undecodable amount: {0}")]
    BadAmount(AmountError),
    #[error("the memo is encrypted")]
    EncryptedMemo,
    #[error("the memo is {0} bytes, over the limit of {MAX_MEMO_BYTES}")]
    MemoTooLong(usize),
    #[error("the memo is empty")]
    EmptyMemo,
    #[error("the memo contains control characters")]
    MemoControlChars,
    #[error("sender {0:?} is not a valid account name")]
    InvalidSender(String),
}

/// Decides whether `op` is a login payment; if so returns the canonical memo
/// (to look the challenge up) and the validated sender.
pub fn match_transfer(
    op: &TransferOp,
    settings: &FollowerSettings,
) -> Result<(String, AccountName), Mismatch> {
    if op.to != settings.account.as_str() {
        return Err(Mismatch::WrongRecipient(op.to.clone()));
    }
    let amount = op
        .amount
        .as_ref()
        .map_err(|e| Mismatch::BadAmount(e.clone()))?;
    if !Symbol::accepted(settings.chain).contains(&amount.symbol) {
        return Err(Mismatch::AssetNotAccepted(amount.symbol.as_str()));
    }
    if amount.units < settings.min_amount_units {
        return Err(Mismatch::BelowMinimum {
            units: amount.units,
            min: settings.min_amount_units,
        });
    }
    if op.memo.len() > MAX_MEMO_BYTES {
        return Err(Mismatch::MemoTooLong(op.memo.len()));
    }
    let memo = op.memo.trim();
    if memo.is_empty() {
        return Err(Mismatch::EmptyMemo);
    }
    if memo.starts_with('#') {
        return Err(Mismatch::EncryptedMemo);
    }
    if memo.chars().any(char::is_control) {
        return Err(Mismatch::MemoControlChars);
    }
    let sender =
        AccountName::parse(&op.from).map_err(|_| Mismatch::InvalidSender(op.from.clone()))?;
    Ok((canonical_memo(memo), sender))
}

/// Why a polling round stopped early. Nothing after the failure point was
/// marked processed.
#[derive(Debug, thiserror::Error)]
pub enum FollowerError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one polling round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub blocks_processed: u64,
    pub logins: u64,
    /// Head block number reported by the node.
    pub head: u64,
    /// The block this round aimed for (head or last irreversible).
    pub target: u64,
    /// The last processed block after the round.
    pub cursor: u64,
    /// Instant logins revoked because their transfer can no longer land.
    pub revoked: u64,
}

/// Follows the chain and logs visitors in. Run with [`Follower::run`].
pub struct Follower {
    rpc: Arc<RpcClient>,
    store: SharedStore,
    settings: FollowerSettings,
    status: ChainStatusHandle,
    logins: broadcast::Sender<SessionKey>,
    /// Ids of the last processed blocks, by number (this process only).
    processed_ids: Mutex<BTreeMap<u64, String>>,
}

impl Follower {
    pub fn new(
        rpc: Arc<RpcClient>,
        store: SharedStore,
        settings: FollowerSettings,
        status: ChainStatusHandle,
        logins: broadcast::Sender<SessionKey>,
    ) -> Self {
        Self {
            rpc,
            store,
            settings,
            status,
            logins,
            processed_ids: Mutex::new(BTreeMap::new()),
        }
    }

    /// Most blocks behind the target worth reading: older blocks cannot hold
    /// a transfer for any challenge the store still keeps (a challenge lives
    /// its ttl plus an equal grace).
    pub fn max_catch_up_blocks(&self) -> u64 {
        2 * self.settings.challenge_ttl.as_secs() / BLOCK_SECONDS + CATCH_UP_MARGIN_BLOCKS
    }

    /// One round: read the head, then process every new block up to the
    /// target (head or last irreversible block) in order, then settle the
    /// instant logins whose transaction expired before the last processed
    /// block (see [`crate::store::pending::settle_due`]): the follower, not the
    /// instance that verified them, so that they are settled even if that
    /// instance died.
    pub async fn poll_once(&self) -> Result<PollReport, FollowerError> {
        let mut report = self.follow_blocks().await?;
        let processed_time = self.status.snapshot().processed_time;
        match crate::store::pending::settle_due(&self.store, processed_time, now_unix()).await {
            Ok(revoked) => report.revoked = revoked,
            // The blocks are processed; the records stay for the next round.
            Err(e) => tracing::warn!(error = %e, "cannot settle pending instant logins"),
        }
        Ok(report)
    }

    /// Processes every new block up to the target.
    async fn follow_blocks(&self) -> Result<PollReport, FollowerError> {
        let props = self.rpc.global_properties().await?;
        self.status
            .record_head(props.head_block_number, props.head_block_time, now_unix());
        let target = match self.settings.confirm {
            Confirm::Head => props.head_block_number,
            Confirm::Irreversible => props.last_irreversible_block_num,
        };
        let mut report = PollReport {
            head: props.head_block_number,
            target,
            ..PollReport::default()
        };
        let stored = match self.store.cursor().await? {
            Some(stored) => Some(stored),
            // The store lost its cursor while this process was following
            // (a Redis restarted without persistence): resume where this
            // process got, never at the head, or a login in the blocks in
            // between would be skipped.
            None => match self.last_processed() {
                Some((block, id)) => {
                    tracing::warn!(
                        block,
                        "the store lost the chain cursor: resuming after the last block this process processed"
                    );
                    let cursor = ChainCursor::new(block, id);
                    self.store.set_cursor(&cursor).await?;
                    Some(cursor)
                }
                None => None,
            },
        };
        let Some(stored) = stored else {
            // A fresh store starts at the chain's present: never replay
            // history. The start block's id is kept with the cursor, so a
            // fork that replaces it is noticed at the next block.
            let Some(Some(start)) = self
                .rpc
                .get_blocks(target..=target, self.settings.chain)
                .await?
                .pop()
            else {
                tracing::debug!(block = target, "start block not available yet; next round");
                return Ok(report);
            };
            self.store
                .set_cursor(&ChainCursor::new(target, start.block_id.clone()))
                .await?;
            self.remember_id(target, &start.block_id);
            self.status.record_processed(target, start.timestamp);
            tracing::info!(
                block = target,
                "fresh store: following from the current block"
            );
            report.cursor = target;
            return Ok(report);
        };
        let cursor = stored.block;
        // The remembered ids must continue the stored cursor. After a
        // restart they are gone, and while another instance followed (or
        // after a skip ahead) they are stale: the store is the truth, and
        // its durable id still links the next block to what was processed.
        let continues = self.last_processed().is_some_and(|(number, id)| {
            number == cursor
                && stored
                    .block_id
                    .as_ref()
                    .is_none_or(|stored_id| *stored_id == id)
        });
        if !continues {
            lock(&self.processed_ids).clear();
            if let Some(id) = &stored.block_id {
                self.remember_id(cursor, id);
            }
        }
        report.cursor = cursor;
        if cursor >= target {
            if self.status.snapshot().processed_block != cursor {
                self.status.record_processed(cursor, 0);
            }
            if cursor > target {
                tracing::debug!(cursor, target, "node is behind our cursor; waiting");
            }
            return Ok(report);
        }
        let mut next = cursor + 1;
        let max_lag = self.max_catch_up_blocks();
        if target - cursor > max_lag {
            next = target - max_lag + 1;
            // Nothing remembered links to the first block read now.
            lock(&self.processed_ids).clear();
            tracing::warn!(
                cursor,
                target,
                skipped = next - cursor - 1,
                "far behind the chain: skipping blocks older than any live challenge"
            );
        }
        while next <= target {
            let last = target.min(next + MAX_BATCH as u64 - 1);
            let blocks = self
                .rpc
                .get_blocks(next..=last, self.settings.chain)
                .await?;
            for (number, block) in (next..=last).zip(blocks) {
                let Some(block) = block else {
                    tracing::debug!(block = number, "block not available yet; next round");
                    return Ok(report);
                };
                if let Some(expected) = self.processed_id(number - 1)
                    && expected != block.previous
                {
                    let base = self
                        .fork_base(number - 1, props.last_irreversible_block_num)
                        .await?;
                    tracing::warn!(
                        block = number,
                        resume_after = base,
                        "chain fork: re-reading the blocks after the common ancestor"
                    );
                    self.store
                        .set_cursor(&match self.processed_id(base) {
                            Some(id) => ChainCursor::new(base, id),
                            None => ChainCursor::at(base),
                        })
                        .await?;
                    self.forget_ids_after(base);
                    self.status.record_processed(base, 0);
                    report.cursor = base;
                    return Ok(report);
                }
                report.logins += self.process_block(&block).await?;
                self.remember_id(number, &block.block_id);
                self.store
                    .set_cursor(&ChainCursor::new(number, block.block_id.clone()))
                    .await?;
                self.status.record_processed(number, block.timestamp);
                report.blocks_processed += 1;
                report.cursor = number;
            }
            next = last + 1;
        }
        Ok(report)
    }

    /// The newest block this process processed, with its id.
    fn last_processed(&self) -> Option<(u64, String)> {
        lock(&self.processed_ids)
            .last_key_value()
            .map(|(number, id)| (*number, id.clone()))
    }

    /// The id of block `number` as processed by this process, if remembered.
    fn processed_id(&self, number: u64) -> Option<String> {
        lock(&self.processed_ids).get(&number).cloned()
    }

    fn remember_id(&self, number: u64, id: &str) {
        let mut ids = lock(&self.processed_ids);
        ids.insert(number, id.to_string());
        while ids.len() as u64 > REMEMBERED_BLOCK_IDS {
            ids.pop_first();
        }
    }

    fn forget_ids_after(&self, base: u64) {
        let mut ids = lock(&self.processed_ids);
        let _ = ids.split_off(&(base + 1));
    }

    /// After a fork seen above `top`: the highest remembered block the node
    /// still serves with the same id (everything after it must be read
    /// again). If none matches (after a restart only the cursor's id is
    /// known), the last irreversible block, which no fork can replace, or
    /// just before the oldest remembered block if that is lower.
    /// Re-reading is safe: a claimed memo can never be claimed twice.
    async fn fork_base(&self, top: u64, irreversible: u64) -> Result<u64, FollowerError> {
        // At most the last REMEMBERED_BLOCK_IDS heights: a bounded read,
        // compared height by height (the remembered ids may have gaps).
        let window = top.saturating_sub(REMEMBERED_BLOCK_IDS - 1)..=top;
        let remembered: BTreeMap<u64, String> = lock(&self.processed_ids)
            .range(window)
            .map(|(n, id)| (*n, id.clone()))
            .collect();
        let Some(oldest) = remembered.keys().next().copied() else {
            return Ok(top);
        };
        let served = self
            .rpc
            .get_blocks(oldest..=top, self.settings.chain)
            .await?;
        let base = (oldest..=top)
            .zip(served)
            .filter(|(number, theirs)| {
                remembered.get(number).is_some_and(|ours| {
                    theirs.as_ref().is_some_and(|block| &block.block_id == ours)
                })
            })
            .map(|(number, _)| number)
            .last();
        Ok(base.unwrap_or_else(|| (oldest - 1).min(irreversible)))
    }

    /// Claims every matching transfer of `block`; returns the logins.
    async fn process_block(&self, block: &Block) -> Result<u64, StoreError> {
        let mut logins = 0;
        for op in &block.transfers {
            let (memo, sender) = match match_transfer(op, &self.settings) {
                Ok(matched) => matched,
                Err(Mismatch::WrongRecipient(_)) => continue,
                Err(why) => {
                    // A transfer to us that cannot log anyone in: audited,
                    // so an operator can answer "I paid but was not let in".
                    tracing::info!(
                        target: "steemgate::audit",
                        block = block.number,
                        txid = %op.txid,
                        from = %op.from,
                        reason = %why,
                        "login transfer refused"
                    );
                    continue;
                }
            };
            let claim = Claim {
                account: sender.as_str().to_string(),
                txid: op.txid.clone(),
                block_num: block.number,
                block_time: block.timestamp,
                session_ttl_secs: self.settings.session_ttl.as_secs(),
                now: now_unix(),
            };
            match self.store.claim_challenge(&memo, &claim).await? {
                ClaimOutcome::LoggedIn(key) => {
                    logins += 1;
                    tracing::info!(
                        target: "steemgate::audit",
                        session = %key.log_id(),
                        account = %sender,
                        txid = %op.txid,
                        block = block.number,
                        "login by transfer"
                    );
                    // No receiver is fine: nobody is waiting on this session.
                    let _ = self.logins.send(key);
                }
                ClaimOutcome::UnknownMemo => {
                    tracing::debug!(block = block.number, txid = %op.txid, account = %sender, "transfer memo is no live challenge");
                }
                outcome => {
                    tracing::info!(
                        target: "steemgate::audit",
                        block = block.number,
                        txid = %op.txid,
                        account = %sender,
                        ?outcome,
                        "login transfer refused"
                    );
                }
            }
        }
        Ok(logins)
    }

    /// Follows until `shutdown` becomes true (or its sender is dropped).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut last_head = 0u64;
        let mut new_head_seen_at = Instant::now();
        let mut errors = 0u32;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let round = tokio::select! {
                round = self.round() => round,
                _ = shutdown.changed() => break,
            };
            let pause = match round {
                Ok(round) => {
                    errors = 0;
                    if round.head > last_head {
                        last_head = round.head;
                        new_head_seen_at = Instant::now();
                    }
                    if round.caught_up {
                        (new_head_seen_at + NEXT_BLOCK_EXPECTED_AFTER)
                            .saturating_duration_since(Instant::now())
                            .max(FAST_POLL)
                    } else {
                        FAST_POLL
                    }
                }
                Err(e) => {
                    errors = errors.saturating_add(1);
                    let pause = FAST_POLL
                        .saturating_mul(1u32 << errors.min(5))
                        .min(MAX_ERROR_BACKOFF);
                    tracing::warn!(error = %e, ?pause, "chain follower round failed");
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        break;
                    }
                }
            }
        }
        self.status.set_following(false);
        tracing::info!("chain follower stopped");
    }

    /// One loop iteration: follow if we hold the lease, else watch.
    async fn round(&self) -> Result<Round, FollowerError> {
        let leader = self
            .store
            .acquire_follower_lease(&self.settings.instance_id, LEASE_SECS)
            .await?;
        self.status.set_following(leader);
        if leader {
            let report = self.poll_once().await?;
            return Ok(Round {
                head: report.head,
                caught_up: report.cursor >= report.target,
            });
        }
        // Another instance follows: keep the status current for /ready.
        let props = self.rpc.global_properties().await?;
        self.status
            .record_head(props.head_block_number, props.head_block_time, now_unix());
        if let Some(cursor) = self.store.cursor().await?.map(|c| c.block) {
            let behind_blocks = props.head_block_number.saturating_sub(cursor);
            let estimated_time = props
                .head_block_time
                .saturating_sub(behind_blocks.saturating_mul(BLOCK_SECONDS));
            self.status.record_processed(cursor, estimated_time);
        }
        Ok(Round {
            head: props.head_block_number,
            caught_up: true,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave it inconsistent.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Round {
    head: u64,
    /// Nothing left to process right now: wait for the next block.
    caught_up: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Amount;

    fn settings(chain: ChainName) -> FollowerSettings {
        FollowerSettings {
            chain,
            account: AccountName::parse("gate").unwrap(),
            min_amount_units: 1,
            confirm: Confirm::Head,
            challenge_ttl: Duration::from_secs(600),
            session_ttl: Duration::from_secs(3600),
            instance_id: "test".into(),
        }
    }

    fn op(amount: &str, memo: &str) -> TransferOp {
        TransferOp {
            from: "Alice".into(),
            to: "gate".into(),
            amount: Amount::parse_legacy(amount, ChainName::Steem),
            memo: memo.into(),
            txid: "t".into(),
        }
    }

    #[test]
    fn a_login_payment_matches() {
        let (memo, sender) = match_transfer(
            &op("0.001 STEEM", "  Login:AB12 \n"),
            &settings(ChainName::Steem),
        )
        .unwrap();
        assert_eq!(memo, "login:ab12");
        assert_eq!(sender.as_str(), "alice");
        assert!(match_transfer(&op("1.000 SBD", "m"), &settings(ChainName::Steem)).is_ok());
    }

    #[test]
    fn every_refusal_is_named() {
        let s = settings(ChainName::Steem);
        let mut wrong_to = op("0.001 STEEM", "m");
        wrong_to.to = "other".into();
        assert_eq!(
            match_transfer(&wrong_to, &s),
            Err(Mismatch::WrongRecipient("other".into()))
        );
        assert_eq!(
            match_transfer(&op("0.001 HIVE", "m"), &s),
            Err(Mismatch::AssetNotAccepted("HIVE"))
        );
        assert_eq!(
            match_transfer(&op("0.001 STEEM", "m"), &settings(ChainName::Hive)),
            Err(Mismatch::AssetNotAccepted("STEEM"))
        );
        let mut high_min = settings(ChainName::Steem);
        high_min.min_amount_units = 2;
        assert_eq!(
            match_transfer(&op("0.001 STEEM", "m"), &high_min),
            Err(Mismatch::BelowMinimum { units: 1, min: 2 })
        );
        assert!(matches!(
            match_transfer(&op("1 STEEM", "m"), &s),
            Err(Mismatch::BadAmount(_))
        ));
        assert_eq!(
            match_transfer(&op("0.001 STEEM", " #secret"), &s),
            Err(Mismatch::EncryptedMemo)
        );
        assert_eq!(
            match_transfer(&op("0.001 STEEM", &"a".repeat(2049)), &s),
            Err(Mismatch::MemoTooLong(2049))
        );
        assert!(match_transfer(&op("0.001 STEEM", &"a".repeat(2048)), &s).is_ok());
        assert_eq!(
            match_transfer(&op("0.001 STEEM", " \t "), &s),
            Err(Mismatch::EmptyMemo)
        );
        assert_eq!(
            match_transfer(&op("0.001 STEEM", "lo\u{0}gin"), &s),
            Err(Mismatch::MemoControlChars)
        );
        let mut bad_sender = op("0.001 STEEM", "m");
        bad_sender.from = "a".into();
        assert_eq!(
            match_transfer(&bad_sender, &s),
            Err(Mismatch::InvalidSender("a".into()))
        );
    }

    #[test]
    fn status_handle() {
        let status = ChainStatusHandle::new();
        assert_eq!(status.behind_seconds(100), None);
        assert!(!status.is_healthy(100));
        status.record_head(10, 90, 100);
        status.record_processed(9, 87);
        assert_eq!(status.behind_seconds(100), Some(13));
        assert!(status.is_healthy(130));
        assert!(!status.is_healthy(131));
        assert_eq!(status.snapshot().head_block, 10);
    }
}
