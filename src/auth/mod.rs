//! Who a browser is: the signed session cookie and the login challenge.
//!
//! Why: the 2018 original used a non-cryptographic RNG and published the
//! session id in the memo. Here the session id comes from the OS CSPRNG and
//! never leaves the cookie; the memo is a separate one-time code
//! ([`challenge`]) that only points at the session from the store.

pub mod assertion;
pub mod challenge;
pub mod cookie;
pub mod session_cache;
pub mod sessions;
pub mod wallet;

use rand::TryRng;
use rand::rngs::SysRng;

/// Fills `buf` from the operating system's CSPRNG.
///
/// Never panics: if the OS cannot provide randomness there is no safe way
/// to mint a session, memo or key, so callers get an error and answer 503.
pub fn os_random(buf: &mut [u8]) -> Result<(), RandomnessUnavailable> {
    SysRng
        .try_fill_bytes(buf)
        .map_err(|e| RandomnessUnavailable(e.to_string()))
}

/// The OS random source failed: mint nothing, answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomnessUnavailable(String);
