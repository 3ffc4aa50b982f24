//! Wall-clock time in whole seconds, as every expiry is kept.
//!
//! Why a module of its own: the store's records, the chain's block times,
//! the RPC client's staleness check and the pages all speak the same
//! seconds-since-epoch; none of them should reach into another layer for it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub type UnixTime = u64;

/// The current wall-clock time in [`UnixTime`]; 0 if the system clock is
/// set before 1970 (which makes everything look expired: fail closed).
pub fn now_unix() -> UnixTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
