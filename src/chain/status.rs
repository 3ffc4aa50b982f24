//! What the gateway knows about the chain right now: head, processed block,
//! whether a node answered lately, whether this instance follows.
//!
//! Why a module of its own: the follower writes it, while the pages, the
//! admin endpoints and the wallet logins (which wait for the follower's
//! progress) only read it; none of them should depend on the follower for
//! that.

use std::sync::{Arc, Mutex};

use crate::clock::UnixTime;

/// A successful poll within this many seconds means the follower is healthy.
pub const HEALTHY_WITHIN_SECS: u64 = 30;

/// What the gateway knows about the chain right now.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ChainSnapshot {
    pub head_block: u64,
    pub head_time: UnixTime,
    /// Last block whose transfers were processed (by any instance).
    pub processed_block: u64,
    /// Its timestamp; 0 while unknown.
    pub processed_time: UnixTime,
    /// Wall-clock time of the last successful poll.
    pub last_ok: Option<UnixTime>,
    /// Whether this instance holds the follower lease.
    pub following: bool,
}

/// Shared view of the follower's progress, for health checks and metrics.
#[derive(Clone, Debug, Default)]
pub struct ChainStatusHandle {
    inner: Arc<Mutex<ChainSnapshot>>,
}

impl ChainStatusHandle {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> ChainSnapshot {
        self.with(|s| s.clone())
    }

    /// How far processing lags behind `now` (seconds since the processed
    /// block's timestamp); `None` while nothing is known.
    pub fn behind_seconds(&self, now: UnixTime) -> Option<u64> {
        self.with(|s| (s.processed_time > 0).then(|| now.saturating_sub(s.processed_time)))
    }

    /// A poll succeeded within the last [`HEALTHY_WITHIN_SECS`].
    pub fn is_healthy(&self, now: UnixTime) -> bool {
        self.with(|s| {
            s.last_ok
                .is_some_and(|ok| now.saturating_sub(ok) <= HEALTHY_WITHIN_SECS)
        })
    }

    /// Records a successful read of the chain head at wall-clock `now`.
    pub fn record_head(&self, head_block: u64, head_time: UnixTime, now: UnixTime) {
        self.with(|s| {
            s.head_block = head_block;
            s.head_time = head_time;
            s.last_ok = Some(now);
        });
    }

    /// Records that every block up to `block` (timestamp `time`, 0 if
    /// unknown) has been processed.
    pub fn record_processed(&self, block: u64, time: UnixTime) {
        self.with(|s| {
            s.processed_block = block;
            s.processed_time = time;
        });
    }

    pub fn set_following(&self, following: bool) {
        self.with(|s| s.following = following);
    }

    fn with<T>(&self, f: impl FnOnce(&mut ChainSnapshot) -> T) -> T {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}
