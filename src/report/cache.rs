//! A small per-account cache of fetched follow data, with shared fetches.
//!
//! Why: a report for an account following thousands costs several node
//! calls, and a visitor typically reloads or tries another threshold right
//! away. Entries live for the configured TTL, the cache holds a bounded
//! number of accounts (oldest evicted first), and concurrent requests for
//! the same account wait on one fetch instead of each asking the node.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::fetch::Activity;
use crate::chain::AccountName;

/// What one report fetch produced for one account.
#[derive(Debug)]
pub struct FollowData {
    /// Number of distinct accounts followed for their blog.
    pub following: usize,
    /// Activity of those followed accounts the node knows (unknown names are
    /// left out).
    pub activity: Vec<Activity>,
}

/// One account's entry: empty while its fetch is in flight (or after a failed
/// fetch, so the next request retries), then the data and when it arrived.
struct Slot {
    created: Instant,
    cell: OnceCell<(Instant, Arc<FollowData>)>,
}

pub struct FollowCache {
    ttl: Duration,
    capacity: usize,
    slots: Mutex<HashMap<AccountName, Arc<Slot>>>,
}

impl FollowCache {
    /// `capacity` is at least 1.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached data for `account` if fresh, otherwise the result of
    /// `fetch` (shared with any concurrent caller for the same account).
    /// Errors are not cached.
    pub async fn get_or_fetch<E, Fut>(
        &self,
        account: &AccountName,
        fetch: impl FnOnce() -> Fut,
    ) -> Result<Arc<FollowData>, E>
    where
        Fut: Future<Output = Result<FollowData, E>>,
    {
        let slot = self.slot_for(account);
        let (_, data) = slot
            .cell
            .get_or_try_init(|| async {
                fetch().await.map(|data| (Instant::now(), Arc::new(data)))
            })
            .await?;
        Ok(Arc::clone(data))
    }

    /// Forgets `account`'s entry, so the next request reads the chain again
    /// (after an unfollow the wallet reported as broadcast). A fetch already
    /// in flight finishes for its own callers but is not kept.
    pub fn invalidate(&self, account: &AccountName) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(account);
    }

    /// `account`'s data if it has arrived (fresh or not), without fetching.
    pub fn peek(&self, account: &AccountName) -> Option<Arc<FollowData>> {
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(account)
            .cloned()?;
        slot.cell.get().map(|(_, data)| Arc::clone(data))
    }

    /// Number of accounts currently held (fresh, stale or in flight).
    pub fn len(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot_for(&self, account: &AccountName) -> Arc<Slot> {
        let now = Instant::now();
        let is_fresh = |slot: &Slot| match slot.cell.get() {
            Some((fetched_at, _)) => now.duration_since(*fetched_at) < self.ttl,
            None => true,
        };
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(account)
            && is_fresh(slot)
        {
            return Arc::clone(slot);
        }
        slots.remove(account);
        if slots.len() >= self.capacity {
            slots.retain(|_, slot| is_fresh(slot));
        }
        while slots.len() >= self.capacity {
            let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, slot)| slot.created)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            slots.remove(&oldest);
        }
        let slot = Arc::new(Slot {
            created: now,
            cell: OnceCell::new(),
        });
        slots.insert(account.clone(), Arc::clone(&slot));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn data(following: usize) -> FollowData {
        FollowData {
            following,
            activity: Vec::new(),
        }
    }

    fn name(raw: &str) -> AccountName {
        AccountName::parse(raw).unwrap()
    }

    #[tokio::test]
    async fn fresh_entries_are_reused_and_capacity_evicts_the_oldest() {
        let cache = FollowCache::new(Duration::from_secs(60), 2);
        let calls = AtomicUsize::new(0);
        let fetch = |n| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(data(n)) }
        };
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || fetch(1))
                .await
                .unwrap()
                .following,
            1
        );
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || fetch(99))
                .await
                .unwrap()
                .following,
            1
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.get_or_fetch(&name("bob"), || fetch(2)).await.unwrap();
        cache
            .get_or_fetch(&name("carol"), || fetch(3))
            .await
            .unwrap();
        assert_eq!(cache.len(), 2);
        // alice was the oldest, so she was evicted and is fetched again.
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || fetch(4))
                .await
                .unwrap()
                .following,
            4
        );
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // An invalidated entry is fetched again, the others are kept.
        cache.invalidate(&name("alice"));
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || fetch(5))
                .await
                .unwrap()
                .following,
            5
        );
        assert_eq!(calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn errors_are_not_cached_and_zero_ttl_always_refetches() {
        let cache = FollowCache::new(Duration::ZERO, 10);
        assert!(
            cache
                .get_or_fetch(&name("alice"), || async { Err::<FollowData, _>("down") })
                .await
                .is_err()
        );
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || async { Ok::<_, ()>(data(1)) })
                .await
                .unwrap()
                .following,
            1
        );
        assert_eq!(
            cache
                .get_or_fetch(&name("alice"), || async { Ok::<_, ()>(data(2)) })
                .await
                .unwrap()
                .following,
            2
        );
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_fetch() {
        let cache = FollowCache::new(Duration::from_secs(60), 10);
        let calls = AtomicUsize::new(0);
        let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
        let fetch = || {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut gate = gate_rx.clone();
            async move {
                let _ = gate.wait_for(|open| *open).await;
                Ok::<_, ()>(data(7))
            }
        };
        let alice = name("alice");
        let first = cache.get_or_fetch(&alice, fetch);
        let second = cache.get_or_fetch(&alice, fetch);
        let open = async {
            tokio::task::yield_now().await;
            let _ = gate_tx.send(true);
        };
        let (a, b, ()) = tokio::join!(first, second, open);
        assert_eq!((a.unwrap().following, b.unwrap().following), (7, 7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
