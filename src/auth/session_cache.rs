//! An in-process cache of validated, logged-in sessions.
//!
//! Why: with the Redis store every proxied request would otherwise cost a
//! Redis round trip. The cache keeps "session key → account" for a short
//! time (`session.cache_ttl`), so in steady state a busy browser costs one
//! store read per `cache_ttl`, not one per request.
//!
//! Entries are found by the session id whose cookie MAC has just verified,
//! not by its store key: a hit then costs no second hash (the store key is a
//! BLAKE2b of the id, ≈ 2,300 instructions, a tenth of the gateway's own
//! work per request). The revocation feed names store keys, so each shard
//! also maps store key → id, and an eviction looks in every shard (a handful
//! of lock acquisitions per logout, none per request).
//!
//! What is (and is not) cached, for correctness:
//! - only logged-in results: "anonymous" is never cached, so a session that
//!   just logged in (through any instance) is seen by the next request;
//! - never a store error;
//! - an entry is served for at most `cache_ttl` after the store read that
//!   produced it, and never past the session's own expiry;
//! - a revocation evicts at once: locally on logout, and from other
//!   instances through [`follow_revocations`]; while that feed is down the
//!   cache answers nothing (every request goes to the store, so a dead Redis
//!   means 503, never a cached pass), and it is emptied when the feed comes
//!   back or lags (revocations may have been missed).
//!
//! Implementation: a fixed number of shards, each a `std::sync::RwLock`
//! around a `HashMap`. That is all this needs (get, insert, remove, clear,
//! a size bound) and compiles to nothing extra; `moka` would bring a heavy
//! dependency for features we do not use, and `dashmap` (only a transitive
//! dependency today) would save a dozen lines at the cost of a direct one.
//! A full shard first drops its stale entries, then an arbitrary one: with
//! entries that live two seconds any choice is good enough.
//!
//! An epoch counter closes the race between a store read and a revocation
//! arriving while it is in flight: a read only inserts its result if no
//! eviction happened since it started.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::cookie::SessionId;
use crate::clock::UnixTime;
use crate::store::SessionKey;

/// Default bound on cached sessions.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Shards, to keep lock contention low on many proxy threads.
const SHARDS: usize = 16;

struct Entry {
    account: String,
    /// The id's store key, to drop the reverse index entry with the entry.
    key: SessionKey,
    cached_at: Instant,
    /// The session's own expiry (Unix seconds).
    session_expires_at: UnixTime,
}

/// One shard: the entries by session id, and the same entries' ids by store
/// key (the two maps always hold the same sessions).
#[derive(Default)]
struct Shard {
    by_id: HashMap<SessionId, Entry>,
    ids_by_key: HashMap<SessionKey, SessionId>,
}

impl Shard {
    /// Caches `entry` for `id`, replacing any entry it had.
    fn insert(&mut self, id: SessionId, entry: Entry) {
        self.remove_id(&id);
        self.ids_by_key.insert(entry.key.clone(), id.clone());
        self.by_id.insert(id, entry);
    }

    /// Drops the entries cached `ttl` or longer before `now`.
    fn drop_stale(&mut self, now: Instant, ttl: Duration) {
        let ids_by_key = &mut self.ids_by_key;
        self.by_id.retain(|_, entry| {
            let fresh = now.saturating_duration_since(entry.cached_at) < ttl;
            if !fresh {
                ids_by_key.remove(&entry.key);
            }
            fresh
        });
    }

    fn remove_id(&mut self, id: &SessionId) {
        if let Some(entry) = self.by_id.remove(id) {
            self.ids_by_key.remove(&entry.key);
        }
    }

    fn remove_key(&mut self, key: &SessionKey) {
        if let Some(id) = self.ids_by_key.remove(key) {
            self.by_id.remove(&id);
        }
    }

    fn clear(&mut self) {
        self.by_id.clear();
        self.ids_by_key.clear();
    }
}

/// The cache. Cheap to share (`Arc`); all methods take `&self`.
pub struct SessionCache {
    ttl: Duration,
    shard_capacity: usize,
    shards: Vec<RwLock<Shard>>,
    hasher: RandomState,
    /// Bumped by every eviction; see the module doc.
    epoch: AtomicU64,
    /// `false` while the revocation feed is down: nothing is served.
    serving: AtomicBool,
}

impl std::fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCache")
            .field("ttl", &self.ttl)
            .field("len", &self.len())
            .finish()
    }
}

impl SessionCache {
    /// A cache serving entries for `ttl` (zero disables it), holding at most
    /// about `capacity` sessions.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        let shard_capacity = capacity.div_ceil(SHARDS).max(1);
        Self {
            ttl,
            shard_capacity,
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            epoch: AtomicU64::new(0),
            serving: AtomicBool::new(true),
        }
    }

    /// A cache that never holds anything.
    pub fn disabled() -> Self {
        Self::new(Duration::ZERO, 1)
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn is_enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    /// Whether hits are served (the revocation feed is up, or there is none).
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::SeqCst)
    }

    fn shard(&self, id: &SessionId) -> &RwLock<Shard> {
        let index = usize::try_from(self.hasher.hash_one(id) % SHARDS as u64).unwrap_or(0);
        &self.shards[index]
    }

    fn fresh(&self, entry: &Entry, now: Instant, now_unix: UnixTime) -> bool {
        now.saturating_duration_since(entry.cached_at) < self.ttl
            && entry.session_expires_at > now_unix
    }

    /// The cached account of session `id` (its cookie MAC verified), if a
    /// fresh entry exists.
    pub fn get(&self, id: &SessionId, now_unix: UnixTime) -> Option<String> {
        self.get_at(id, Instant::now(), now_unix)
    }

    /// [`SessionCache::get`] at a given instant (tests drive time with it).
    pub fn get_at(&self, id: &SessionId, now: Instant, now_unix: UnixTime) -> Option<String> {
        if !self.is_enabled() || !self.is_serving() {
            return None;
        }
        // A poisoned lock only means another thread panicked mid-update of
        // a plain map; answering "not cached" is always safe.
        let shard = self.shard(id).read().ok()?;
        shard
            .by_id
            .get(id)
            .filter(|entry| self.fresh(entry, now, now_unix))
            .map(|entry| entry.account.clone())
    }

    /// The eviction epoch: read it before the store read whose result is
    /// then passed to [`SessionCache::insert`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Caches a logged-in session read from the store under `key` (which
    /// must be `id.store_key()`), unless an eviction happened since `epoch`
    /// was read (the result may be stale).
    pub fn insert(
        &self,
        id: SessionId,
        key: SessionKey,
        account: String,
        session_expires_at: UnixTime,
        epoch: u64,
    ) {
        self.insert_at(id, key, account, session_expires_at, epoch, Instant::now());
    }

    /// [`SessionCache::insert`] at a given instant.
    pub fn insert_at(
        &self,
        id: SessionId,
        key: SessionKey,
        account: String,
        session_expires_at: UnixTime,
        epoch: u64,
        now: Instant,
    ) {
        if !self.is_enabled() || !self.is_serving() {
            return;
        }
        let Ok(mut shard) = self.shard(&id).write() else {
            return;
        };
        // Checked under the shard lock: an eviction bumps the epoch before it
        // sweeps the shards, so either this sees the bump or the sweep reaches
        // this shard after the insert (see `evict`).
        if self.epoch() != epoch {
            return;
        }
        if shard.by_id.len() >= self.shard_capacity && !shard.by_id.contains_key(&id) {
            shard.drop_stale(now, self.ttl);
            if shard.by_id.len() >= self.shard_capacity
                && let Some(victim) = shard.by_id.keys().next().cloned()
            {
                shard.remove_id(&victim);
            }
        }
        shard.insert(
            id,
            Entry {
                account,
                key,
                cached_at: now,
                session_expires_at,
            },
        );
    }

    /// Forgets the session stored under `key` (logout, revocation). The key
    /// does not say which shard holds it, so every shard is asked.
    ///
    /// The epoch is bumped before the sweep: an insert racing it either
    /// takes its shard's lock before the sweep reaches that shard (and is
    /// swept) or after the bump (and sees it, so inserts nothing).
    pub fn evict(&self, key: &SessionKey) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            match shard.write() {
                Ok(mut shard) => shard.remove_key(key),
                // Cannot tell what is in a poisoned shard: forget everything.
                Err(_) => return self.clear(),
            }
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.write().unwrap_or_else(|poisoned| {
                shard.clear_poison();
                poisoned.into_inner()
            });
            shard.clear();
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Stops serving and forgets everything (the revocation feed is down).
    pub fn suspend(&self) {
        self.serving.store(false, Ordering::SeqCst);
        self.clear();
    }

    /// Serves again from an empty cache (the feed is back; anything cached
    /// before may have been revoked meanwhile).
    pub fn resume(&self) {
        self.clear();
        self.serving.store(true, Ordering::SeqCst);
    }

    /// Cached sessions, stale ones included.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().map_or(0, |s| s.by_id.len()))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps `cache` in step with revocations from other instances until
/// `feed` closes (the store was dropped), then stops serving.
///
/// `status` (from [`crate::store::Store::revocation_feed_status`]) gates the
/// cache: down → suspended, up again → emptied and serving. A lagged feed
/// empties the cache.
pub async fn follow_revocations(
    cache: Arc<SessionCache>,
    mut feed: broadcast::Receiver<SessionKey>,
    mut status: Option<watch::Receiver<bool>>,
) {
    let mut up = true;
    if let Some(status) = status.as_mut() {
        up = *status.borrow_and_update();
        apply_feed_state(&cache, up);
    }
    loop {
        tokio::select! {
            revoked = feed.recv() => match revoked {
                Ok(key) => cache.evict(&key),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "session revocations lagged; emptying the session cache");
                    cache.clear();
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            changed = async {
                match status.as_mut() {
                    Some(s) => s.changed().await.map(|()| *s.borrow_and_update()),
                    None => std::future::pending().await,
                }
            } => match changed {
                Ok(now_up) => {
                    if now_up != up {
                        up = now_up;
                        apply_feed_state(&cache, up);
                    }
                }
                Err(_) => break,
            },
        }
    }
    cache.suspend();
}

fn apply_feed_state(cache: &SessionCache, up: bool) {
    if up {
        tracing::info!("session revocation feed up: serving the session cache");
        cache.resume();
    } else {
        tracing::warn!("session revocation feed down: session cache suspended");
        cache.suspend();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(2);

    /// A session id named `name` (its bytes are a hash of the name).
    fn id(name: &str) -> SessionId {
        use blake2::digest::Digest;
        let digest = blake2::Blake2b::<blake2::digest::consts::U32>::digest(name.as_bytes());
        SessionId::from_bytes(digest.into())
    }

    fn key(name: &str) -> SessionKey {
        id(name).store_key()
    }

    /// Inserts session `name` as the store read would.
    fn insert(
        cache: &SessionCache,
        name: &str,
        account: &str,
        expires: UnixTime,
        epoch: u64,
        at: Instant,
    ) {
        cache.insert_at(id(name), key(name), account.into(), expires, epoch, at);
    }

    #[test]
    fn serves_until_the_ttl_then_forgets() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        assert_eq!(cache.get_at(&id("a"), t0, 500), Some("alice".into()));
        assert_eq!(
            cache.get_at(&id("a"), t0 + Duration::from_millis(1999), 500),
            Some("alice".into())
        );
        assert_eq!(cache.get_at(&id("a"), t0 + TTL, 500), None);
        assert_eq!(cache.get_at(&id("b"), t0, 500), None);
    }

    #[test]
    fn never_past_the_session_expiry() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        assert_eq!(cache.get_at(&id("a"), t0, 999), Some("alice".into()));
        assert_eq!(cache.get_at(&id("a"), t0, 1_000), None);
    }

    #[test]
    fn a_zero_ttl_disables_it() {
        let cache = SessionCache::new(Duration::ZERO, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        assert!(cache.is_empty());
        assert_eq!(cache.get_at(&id("a"), t0, 0), None);
        assert!(!SessionCache::disabled().is_enabled());
    }

    #[test]
    fn the_size_is_bounded() {
        let cache = SessionCache::new(TTL, 64);
        let t0 = Instant::now();
        for i in 0..10_000 {
            insert(&cache, &format!("k{i}"), "alice", 1_000, cache.epoch(), t0);
        }
        let bound = 64usize.div_ceil(SHARDS) * SHARDS;
        assert!(cache.len() <= bound, "{} > {bound}", cache.len());
        // The newest entry is always kept.
        assert_eq!(cache.get_at(&id("k9999"), t0, 0), Some("alice".into()));
    }

    #[test]
    fn a_full_shard_drops_stale_entries_first() {
        let cache = SessionCache::new(TTL, SHARDS);
        let t0 = Instant::now();
        for i in 0..1_000 {
            insert(&cache, &format!("old{i}"), "a", 1_000, cache.epoch(), t0);
        }
        let later = t0 + TTL;
        for i in 0..1_000 {
            insert(&cache, &format!("new{i}"), "b", 1_000, cache.epoch(), later);
        }
        assert!(cache.len() <= SHARDS);
        assert_eq!(cache.get_at(&id("new999"), later, 0), Some("b".into()));
    }

    #[test]
    fn eviction_and_clear() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        insert(&cache, "b", "bob", 1_000, cache.epoch(), t0);
        cache.evict(&key("a"));
        assert_eq!(cache.get_at(&id("a"), t0, 0), None);
        assert_eq!(cache.get_at(&id("b"), t0, 0), Some("bob".into()));
        cache.clear();
        assert!(cache.is_empty());
    }

    /// Entries in the reverse index (store key → id), all shards.
    fn indexed(cache: &SessionCache) -> usize {
        cache
            .shards
            .iter()
            .map(|shard| shard.read().unwrap().ids_by_key.len())
            .sum()
    }

    #[test]
    fn eviction_by_store_key_finds_the_id_in_any_shard() {
        let cache = SessionCache::new(TTL, 10_000);
        let t0 = Instant::now();
        let names: Vec<String> = (0..200).map(|i| format!("s{i}")).collect();
        for name in &names {
            insert(&cache, name, "alice", 1_000, cache.epoch(), t0);
        }
        assert_eq!(cache.len(), 200);
        assert_eq!(indexed(&cache), 200);
        for name in &names {
            assert_eq!(cache.get_at(&id(name), t0, 0), Some("alice".into()));
            cache.evict(&key(name));
            assert_eq!(cache.get_at(&id(name), t0, 0), None, "{name}");
        }
        assert!(cache.is_empty());
        assert_eq!(
            indexed(&cache),
            0,
            "the reverse index empties with the entries"
        );
        // An unknown key evicts nothing and breaks nothing.
        insert(&cache, "kept", "bob", 1_000, cache.epoch(), t0);
        cache.evict(&key("never-cached"));
        assert_eq!(cache.get_at(&id("kept"), t0, 0), Some("bob".into()));
    }

    #[test]
    fn re_caching_an_id_replaces_its_entry_and_serves_no_other_id() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        // Re-caching the same id (a later store read) replaces, never duplicates.
        insert(&cache, "a", "alice2", 1_000, cache.epoch(), t0);
        assert_eq!(cache.len(), 1);
        assert_eq!(indexed(&cache), 1);
        assert_eq!(cache.get_at(&id("a"), t0, 0), Some("alice2".into()));
        assert_eq!(cache.get_at(&id("b"), t0, 0), None);
    }

    #[test]
    fn the_reverse_index_stays_bounded_with_the_entries() {
        let cache = SessionCache::new(TTL, 64);
        let t0 = Instant::now();
        for i in 0..5_000 {
            let at = t0 + Duration::from_millis(i);
            insert(&cache, &format!("k{i}"), "alice", 1_000, cache.epoch(), at);
        }
        assert_eq!(indexed(&cache), cache.len());
        assert!(cache.len() <= 64usize.div_ceil(SHARDS) * SHARDS);
    }

    #[test]
    fn a_read_that_raced_an_eviction_is_not_cached() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        let epoch = cache.epoch(); // the store read starts...
        cache.evict(&key("a")); // ...a revocation arrives...
        insert(&cache, "a", "alice", 1_000, epoch, t0); // ...the stale answer lands
        assert_eq!(cache.get_at(&id("a"), t0, 0), None);
    }

    #[test]
    fn suspended_serves_nothing_and_resume_starts_empty() {
        let cache = SessionCache::new(TTL, 100);
        let t0 = Instant::now();
        insert(&cache, "a", "alice", 1_000, cache.epoch(), t0);
        cache.suspend();
        assert_eq!(cache.get_at(&id("a"), t0, 0), None);
        insert(&cache, "b", "bob", 1_000, cache.epoch(), t0);
        assert_eq!(cache.get_at(&id("b"), t0, 0), None);
        cache.resume();
        assert!(cache.is_empty());
        insert(&cache, "b", "bob", 1_000, cache.epoch(), t0);
        assert_eq!(cache.get_at(&id("b"), t0, 0), Some("bob".into()));
    }

    /// Waits (bounded) until `check` holds, yielding to the listener task.
    async fn eventually(check: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if check() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    #[tokio::test]
    async fn revocations_evict_and_the_feed_state_gates_the_cache() {
        let cache = Arc::new(SessionCache::new(Duration::from_secs(60), 100));
        let (revoke, feed) = broadcast::channel(16);
        let (status_tx, status) = watch::channel(false);
        let task = tokio::spawn(follow_revocations(cache.clone(), feed, Some(status)));
        let t0 = Instant::now();
        assert!(eventually(|| !cache.is_serving()).await, "starts down");
        status_tx.send_replace(true);
        assert!(eventually(|| cache.is_serving()).await);
        insert(&cache, "a", "alice", u64::MAX, cache.epoch(), t0);
        insert(&cache, "b", "bob", u64::MAX, cache.epoch(), t0);

        revoke.send(key("a")).unwrap();
        assert!(eventually(|| cache.get_at(&id("a"), t0, 0).is_none()).await);
        assert_eq!(cache.get_at(&id("b"), t0, 0), Some("bob".into()));

        status_tx.send_replace(false);
        assert!(eventually(|| !cache.is_serving()).await);
        assert_eq!(cache.get_at(&id("b"), t0, 0), None);

        status_tx.send_replace(true);
        assert!(eventually(|| cache.is_serving()).await);
        assert!(cache.is_empty(), "resuming starts from an empty cache");

        drop(revoke);
        task.await.unwrap();
        assert!(!cache.is_serving(), "no feed any more: no cache");
    }

    #[tokio::test]
    async fn a_lagged_feed_empties_the_cache() {
        let cache = Arc::new(SessionCache::new(Duration::from_secs(60), 100));
        let (revoke, feed) = broadcast::channel(1);
        let t0 = Instant::now();
        insert(&cache, "keep?", "carol", u64::MAX, cache.epoch(), t0);
        // Overflow the feed before the listener reads it.
        for i in 0..4 {
            revoke.send(key(&format!("x{i}"))).unwrap();
        }
        let task = tokio::spawn(follow_revocations(cache.clone(), feed, None));
        assert!(eventually(|| cache.is_empty()).await);
        assert!(
            cache.is_serving(),
            "no status feed: lag alone does not suspend"
        );
        drop(revoke);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_feed_that_starts_down_suspends_at_once() {
        let cache = Arc::new(SessionCache::new(Duration::from_secs(60), 100));
        let (revoke, feed) = broadcast::channel(1);
        let (_status_tx, status) = watch::channel(false);
        let task = tokio::spawn(follow_revocations(cache.clone(), feed, Some(status)));
        assert!(eventually(|| !cache.is_serving()).await);
        drop(revoke);
        task.await.unwrap();
    }
}
