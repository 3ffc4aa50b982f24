//! STUB (replaced by the chain branch): only the status handle the gateway reads.
use crate::store::UnixTime;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, Default)]
pub struct ChainSnapshot {
    pub head_block: u64,
    pub head_time: UnixTime,
    pub processed_block: u64,
    pub processed_time: UnixTime,
    pub last_ok: Option<UnixTime>,
    pub following: bool,
}

#[derive(Clone, Default)]
pub struct ChainStatusHandle(Arc<Mutex<ChainSnapshot>>);

impl ChainStatusHandle {
    pub fn snapshot(&self) -> ChainSnapshot {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
    pub fn behind_seconds(&self, now: UnixTime) -> Option<u64> {
        let s = self.snapshot();
        (s.processed_time > 0).then(|| now.saturating_sub(s.processed_time))
    }
    pub fn is_healthy(&self, now: UnixTime) -> bool {
        self.snapshot()
            .last_ok
            .is_some_and(|t| now.saturating_sub(t) < 30)
    }
}
