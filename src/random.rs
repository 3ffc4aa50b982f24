//! The operating system's random source, the only one the gateway uses.
//!
//! Why a module of its own: session ids, memo codes, wallet nonces and
//! signing keys all need unpredictable bytes, in auth and in chain code
//! alike. The 2018 original used a non-cryptographic RNG; here every secret
//! comes from the kernel, and a failure is an error (answered with 503),
//! never a panic and never a weaker fallback.

use rand::TryRng;
use rand::rngs::SysRng;

/// Fills `buf` from the operating system's CSPRNG.
pub fn os_random(buf: &mut [u8]) -> Result<(), RandomnessUnavailable> {
    SysRng
        .try_fill_bytes(buf)
        .map_err(|e| RandomnessUnavailable(e.to_string()))
}

/// The OS random source failed: mint nothing, answer 503.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomnessUnavailable(String);
