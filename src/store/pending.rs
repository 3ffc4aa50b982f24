//! Instant logins waiting for the chain: when one is given up, and how.
//!
//! Why in the store layer: an instant login (a signed transfer verified
//! before it is in a block) is recorded as a [`PendingConfirmation`] before
//! the session is logged in, so that whichever instance follows the chain
//! can undo it if the transfer never lands — even if the verifying instance
//! died. Both the follower (chain) and the verifying instance's watcher
//! (auth) apply the same rule; it lives here, below both, so that neither
//! reaches into the other.

use super::{PendingConfirmation, SharedStore, StoreError};
use crate::clock::UnixTime;

/// The reason shown when an instant login is undone.
pub const NEVER_LANDED: &str =
    "the instant login transfer did not reach the chain before it expired; please log in again";

/// If the follower makes no progress at all, an unconfirmed login is
/// revoked this long (wall clock) after the transaction's expiration.
pub const CONFIRM_FAILSAFE_SECS: u64 = 600;

/// Most pending confirmations settled per follower round.
const SETTLE_BATCH: usize = 100;

/// Whether `pending` can no longer be confirmed: the follower processed a
/// block (timestamp `processed_time`) past the transaction's expiration, or
/// the wall clock is [`CONFIRM_FAILSAFE_SECS`] past it.
pub fn is_due(pending: &PendingConfirmation, processed_time: UnixTime, now: UnixTime) -> bool {
    processed_time > pending.expiration
        || now > pending.expiration.saturating_add(CONFIRM_FAILSAFE_SECS)
}

/// Revokes the login if its proof is still the unconfirmed one (a claim by
/// the follower replaces the proof, and then nothing happens); audited.
pub async fn revoke_never_landed(
    store: &SharedStore,
    pending: &PendingConfirmation,
) -> Result<bool, StoreError> {
    let revoked = store
        .revoke_login(&pending.key, &pending.proof, NEVER_LANDED)
        .await?;
    if revoked {
        tracing::info!(
            target: "steemgate::audit",
            session = %pending.key.log_id(),
            txid = %pending.proof.txid,
            "instant login revoked: the transfer never landed"
        );
    }
    Ok(revoked)
}

/// Settles the recorded instant logins that are due (see [`is_due`]): a
/// login whose proof is still the unconfirmed one is revoked with
/// [`NEVER_LANDED`]; a confirmed or ended one is left alone. Either way
/// the record is forgotten. Returns how many logins were revoked. Run by
/// the follower after each round.
pub async fn settle_due(
    store: &SharedStore,
    processed_time: UnixTime,
    now: UnixTime,
) -> Result<u64, StoreError> {
    let time = processed_time.max(now.saturating_sub(CONFIRM_FAILSAFE_SECS));
    let mut revoked = 0;
    loop {
        let due = store.due_pending_confirmations(time, SETTLE_BATCH).await?;
        for pending in &due {
            if revoke_never_landed(store, pending).await? {
                revoked += 1;
            }
            store.remove_pending_confirmation(pending).await?;
        }
        if due.len() < SETTLE_BATCH {
            return Ok(revoked);
        }
    }
}
