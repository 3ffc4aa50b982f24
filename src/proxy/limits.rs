//! Per-client abuse limits on the endpoints that create state.
//!
//! Why: every anonymous visit to the login page or status endpoint can mint
//! a session and a challenge in the store, and status is polled. Without a
//! bound per client address, one host could fill the store or the memory of
//! the gateway. Two keyed token buckets (GCRA, from `governor`) limit, per
//! client IP, how fast new sessions are created and how often status is
//! asked for; together with `challenge_ttl` the first also bounds how many
//! pending sessions one address can hold (rate × ttl). Buckets of idle
//! clients are pruned regularly, so the limiter's own memory stays bounded.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::LimitsConfig;

/// Checks between two prunes of idle buckets.
const PRUNE_EVERY: u64 = 4096;

pub struct ClientLimits {
    new_sessions: Option<DefaultKeyedRateLimiter<IpAddr>>,
    status_polls: Option<DefaultKeyedRateLimiter<IpAddr>>,
    checks: AtomicU64,
}

fn limiter(per_minute: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
    let per_minute = NonZeroU32::new(per_minute)?;
    let burst = NonZeroU32::new(burst).unwrap_or(per_minute);
    Some(RateLimiter::keyed(
        Quota::per_minute(per_minute).allow_burst(burst),
    ))
}

impl ClientLimits {
    pub fn new(config: &LimitsConfig) -> Self {
        Self {
            new_sessions: limiter(config.new_sessions_per_minute, config.new_sessions_burst),
            status_polls: limiter(config.status_per_minute, config.status_burst),
            checks: AtomicU64::new(0),
        }
    }

    fn check(&self, limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>, ip: IpAddr) -> bool {
        let Some(limiter) = limiter else { return true };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).is_ok()
    }

    /// May `ip` create one more session now?
    pub fn allow_new_session(&self, ip: IpAddr) -> bool {
        self.check(self.new_sessions.as_ref(), ip)
    }

    /// May `ip` ask for its status now?
    pub fn allow_status(&self, ip: IpAddr) -> bool {
        self.check(self.status_polls.as_ref(), ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_bucket() {
        let limits = ClientLimits::new(&LimitsConfig {
            new_sessions_per_minute: 2,
            new_sessions_burst: 2,
            status_per_minute: 0,
            status_burst: 0,
            ..LimitsConfig::default()
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.allow_new_session(a));
        assert!(limits.allow_new_session(a));
        assert!(
            !limits.allow_new_session(a),
            "the third within a minute is refused"
        );
        assert!(
            limits.allow_new_session(b),
            "another address is not affected"
        );
        for _ in 0..1000 {
            assert!(limits.allow_status(a), "0 disables a limit");
        }
    }
}
