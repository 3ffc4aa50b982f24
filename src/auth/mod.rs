//! Who a browser is: the signed session cookie and the login challenge.
//!
//! Why: the 2018 original used a non-cryptographic RNG and published the
//! session id in the memo. Here the session id comes from the OS CSPRNG and
//! never leaves the cookie; the memo is a separate one-time code
//! ([`challenge`]) that only points at the session from the store.

pub mod assertion;
pub mod challenge;
pub mod cookie;
pub mod identity;
pub mod keyring;
pub mod session_cache;
pub mod sessions;
pub mod wallet;
