//! The embedded default store: one crash-safe redb file in a directory.
//!
//! Why: a single gateway should keep its sessions, challenges and chain
//! cursor across restarts without running a database server. redb commits
//! durably (fsync) by default, so a crash loses at most the transaction in
//! flight, never a half-written one.
//!
//! redb is synchronous, so every transaction runs on tokio's blocking pool
//! (`spawn_blocking`) and never stalls the async runtime. Each trait call is
//! exactly one transaction; a claim reads the challenge and the session and
//! writes both in one write transaction, so it is atomic (redb allows one
//! writer at a time, and the file lock keeps other processes out).
//!
//! Values are JSON (serde_json). Expired records stay on disk until
//! [`Store::sweep_expired`] removes them, but reads treat them as absent.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::memo::canonical_memo;
use super::{
    ChainCursor, ChallengeRecord, Claim, ClaimOutcome, Grant, LoginProof, PendingConfirmation,
    SessionKey, SessionRecord, Store, StoreError, StoreResult, WALLET_CHALLENGE_GRACE_SECS,
    WalletChallenge, challenge_keep_until,
};
use crate::clock::{UnixTime, now_unix};

/// Session key → JSON [`SessionRecord`].
const SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("sessions");
/// Canonical memo → JSON [`StoredChallenge`].
const CHALLENGES: TableDefinition<&str, &[u8]> = TableDefinition::new("challenges");
/// Session key → JSON [`WalletChallenge`] (one per session).
const WALLET_CHALLENGES: TableDefinition<&str, &[u8]> = TableDefinition::new("wallet_challenges");
/// `{expiration:020} {session key} {txid}` → JSON [`PendingConfirmation`]:
/// the zero-padded expiration first, so a range scan finds the due ones.
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_confirmations");
/// Small named values such as the chain cursor.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CURSOR_KEY: &str = "cursor";
/// Text-valued settings beside [`META`]: the cursor's block id.
const META_TEXT: TableDefinition<&str, &str> = TableDefinition::new("meta_text");
const CURSOR_ID_KEY: &str = "cursor_id";
/// Named values ([`Store::get_value`]): name → text. Created on first write.
const VALUES: TableDefinition<&str, &str> = TableDefinition::new("values");
/// Grants (OpenID codes and access tokens) by name: JSON [`Grant`].
const GRANTS: TableDefinition<&str, &[u8]> = TableDefinition::new("grants");

/// The file inside the store directory.
pub const DATABASE_FILE: &str = "steemgate.redb";

/// The page cache redb may use. Sessions are a few hundred bytes each, so
/// 100,000 live sessions are tens of MiB on disk; the cache only bounds how
/// much of that stays in memory (redb's default would be 1 GiB).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A challenge as stored: the record plus when the store may forget it.
#[derive(Serialize, Deserialize)]
struct StoredChallenge {
    record: ChallengeRecord,
    /// `expires_at` plus a grace equal to the challenge's ttl (see
    /// [`Store::issue_challenge`]).
    keep_until: UnixTime,
}

/// The store of a single gateway: a redb database in a directory.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, which is created too.
    ///
    /// Fails with an error naming the file if another process (or another
    /// `EmbeddedStore` in this one) has it open, or if the file is not a
    /// valid redb database. Opening verifies the file's checksums, so a
    /// damaged file is refused rather than trusted.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::new(format!(
                "cannot create store directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join(DATABASE_FILE);
        let open_result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .set_check_integrity_on_open(true)
                .create(&path)
        }));
        let db = match open_result {
            Ok(Ok(db)) => db,
            Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
                return Err(StoreError::new(format!(
                    "store database {} is already open (locked by another gateway process?)",
                    path.display()
                )));
            }
            Ok(Err(e)) => {
                return Err(StoreError::new(format!(
                    "cannot open store database {} (corrupt or not a steemgate store?): {e}",
                    path.display()
                )));
            }
            Err(_) => {
                return Err(StoreError::new(format!(
                    "cannot open store database {}: the file is corrupt",
                    path.display()
                )));
            }
        };
        let store = Self {
            db: Arc::new(db),
            path: Arc::new(path),
        };
        store.create_tables()?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the tables so read transactions never meet a missing one.
    fn create_tables(&self) -> StoreResult<()> {
        let txn = self
            .db
            .begin_write()
            .map_err(|e| self.error("begin write", e))?;
        txn.open_table(SESSIONS)
            .map_err(|e| self.error("open sessions", e))?;
        txn.open_table(CHALLENGES)
            .map_err(|e| self.error("open challenges", e))?;
        txn.open_table(META)
            .map_err(|e| self.error("open meta", e))?;
        txn.open_table(META_TEXT)
            .map_err(|e| self.error("open meta text", e))?;
        txn.open_table(WALLET_CHALLENGES)
            .map_err(|e| self.error("open wallet challenges", e))?;
        txn.open_table(PENDING)
            .map_err(|e| self.error("open pending confirmations", e))?;
        txn.open_table(GRANTS)
            .map_err(|e| self.error("open grants", e))?;
        txn.commit().map_err(|e| self.error("commit", e))
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> StoreError {
        error_at(&self.path, what, e)
    }

    /// Runs `op` on the blocking pool with the database and its path.
    async fn blocking<T, F>(&self, op: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database, &Path) -> StoreResult<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || op(&db, &path))
            .await
            .map_err(|e| error_at(&self.path, "blocking task", e))?
    }
}

fn error_at(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("{} ({what}): {e}", path.display()))
}

/// The [`PENDING`] key of `pending`.
fn pending_key(pending: &PendingConfirmation) -> String {
    format!(
        "{:020} {} {}",
        pending.expiration,
        pending.key.as_str(),
        pending.proof.txid
    )
}

fn decode<T: for<'de> Deserialize<'de>>(path: &Path, what: &str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| error_at(path, what, format!("undecodable record: {e}")))
}

/// The record under `key` in `table`, decoded (`what` names it in errors).
fn read_record<T: for<'de> Deserialize<'de>>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    key: &str,
    what: &str,
    path: &Path,
) -> StoreResult<Option<T>> {
    match table
        .get(key)
        .map_err(|e| error_at(path, &format!("get {what}"), e))?
    {
        Some(raw) => Ok(Some(decode(path, what, raw.value())?)),
        None => Ok(None),
    }
}

fn encode<T: Serialize>(path: &Path, value: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| error_at(path, "encode", e))
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    async fn get_session(&self, key: &SessionKey) -> StoreResult<Option<SessionRecord>> {
        let key = key.clone();
        let now = now_unix();
        self.blocking(move |db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            let table = txn
                .open_table(SESSIONS)
                .map_err(|e| error_at(path, "open sessions", e))?;
            let Some(raw) = table
                .get(key.as_str())
                .map_err(|e| error_at(path, "get session", e))?
            else {
                return Ok(None);
            };
            let record: SessionRecord = decode(path, "session", raw.value())?;
            Ok(record.is_live(now).then_some(record))
        })
        .await
    }

    async fn put_session(&self, key: &SessionKey, record: &SessionRecord) -> StoreResult<()> {
        let key = key.as_str().to_string();
        let bytes = encode(&self.path, record)?;
        self.insert_one(SESSIONS, "open sessions", "put session", key, bytes)
            .await
    }

    async fn delete_session(&self, key: &SessionKey) -> StoreResult<bool> {
        let now = now_unix();
        // An expired record counts as already gone.
        let live = self
            .remove_one(
                SESSIONS,
                "open sessions",
                "delete session",
                key.as_str(),
                move |path, raw| {
                    Ok(decode::<SessionRecord>(path, "session", raw)
                        .map(|r| r.is_live(now))
                        .unwrap_or(true))
                },
            )
            .await?;
        Ok(live.unwrap_or(false))
    }

    async fn issue_challenge(
        &self,
        key: &SessionKey,
        memo: &str,
        expires_at: UnixTime,
    ) -> StoreResult<()> {
        let key = key.clone();
        let memo = memo.to_string();
        let canonical = canonical_memo(&memo);
        let now = now_unix();
        let keep_until = challenge_keep_until(expires_at, now);
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            {
                let mut sessions = txn
                    .open_table(SESSIONS)
                    .map_err(|e| error_at(path, "open sessions", e))?;
                let mut challenges = txn
                    .open_table(CHALLENGES)
                    .map_err(|e| error_at(path, "open challenges", e))?;
                let mut session: SessionRecord = match sessions
                    .get(key.as_str())
                    .map_err(|e| error_at(path, "get session", e))?
                {
                    Some(raw) => decode(path, "session", raw.value())?,
                    None => {
                        return Err(StoreError::new(
                            "cannot issue a challenge: the session does not exist",
                        ));
                    }
                };
                if !session.is_live(now) {
                    return Err(StoreError::new(
                        "cannot issue a challenge: the session has expired",
                    ));
                }
                if let Some(raw) = challenges
                    .get(canonical.as_str())
                    .map_err(|e| error_at(path, "get challenge", e))?
                {
                    let existing: StoredChallenge = decode(path, "challenge", raw.value())?;
                    if existing.keep_until > now {
                        return Err(StoreError::new(
                            "cannot issue a challenge: the memo is already in use",
                        ));
                    }
                }
                let stored = StoredChallenge {
                    record: ChallengeRecord {
                        session: key.clone(),
                        expires_at,
                        claimed_by: None,
                    },
                    keep_until,
                };
                session.memo = Some(memo);
                session.memo_expires_at = expires_at;
                if session.account.is_none() {
                    session.expires_at = session.expires_at.max(keep_until);
                }
                challenges
                    .insert(canonical.as_str(), encode(path, &stored)?.as_slice())
                    .map_err(|e| error_at(path, "put challenge", e))?;
                sessions
                    .insert(key.as_str(), encode(path, &session)?.as_slice())
                    .map_err(|e| error_at(path, "put session", e))?;
            }
            txn.commit().map_err(|e| error_at(path, "commit", e))
        })
        .await
    }

    async fn claim_challenge(&self, memo: &str, claim: &Claim) -> StoreResult<ClaimOutcome> {
        let canonical = canonical_memo(memo);
        let claim = claim.clone();
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            let outcome = {
                let mut sessions = txn
                    .open_table(SESSIONS)
                    .map_err(|e| error_at(path, "open sessions", e))?;
                let mut challenges = txn
                    .open_table(CHALLENGES)
                    .map_err(|e| error_at(path, "open challenges", e))?;
                let mut stored: StoredChallenge = match challenges
                    .get(canonical.as_str())
                    .map_err(|e| error_at(path, "get challenge", e))?
                {
                    Some(raw) => decode(path, "challenge", raw.value())?,
                    None => return Ok(ClaimOutcome::UnknownMemo),
                };
                if stored.keep_until <= claim.now {
                    return Ok(ClaimOutcome::UnknownMemo);
                }
                if stored.record.claimed_by.is_some() {
                    return Ok(ClaimOutcome::AlreadyClaimed);
                }
                if claim.block_time >= stored.record.expires_at {
                    return Ok(ClaimOutcome::Expired);
                }
                stored.record.claimed_by = Some(claim.account.clone());
                challenges
                    .insert(canonical.as_str(), encode(path, &stored)?.as_slice())
                    .map_err(|e| error_at(path, "put challenge", e))?;
                let session_key = stored.record.session;
                let session: Option<SessionRecord> =
                    read_record(&sessions, session_key.as_str(), "session", path)?;
                match session.filter(|s| s.is_live(claim.now)) {
                    None => ClaimOutcome::SessionGone,
                    Some(mut session) => {
                        session.apply_claim(&claim);
                        sessions
                            .insert(session_key.as_str(), encode(path, &session)?.as_slice())
                            .map_err(|e| error_at(path, "put session", e))?;
                        ClaimOutcome::LoggedIn(session_key)
                    }
                }
            };
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(outcome)
        })
        .await
    }

    async fn cursor(&self) -> StoreResult<Option<ChainCursor>> {
        self.blocking(|db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            let numbers = txn
                .open_table(META)
                .map_err(|e| error_at(path, "open meta", e))?;
            let Some(block) = numbers
                .get(CURSOR_KEY)
                .map_err(|e| error_at(path, "get cursor", e))?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let texts = txn
                .open_table(META_TEXT)
                .map_err(|e| error_at(path, "open meta text", e))?;
            let id = texts
                .get(CURSOR_ID_KEY)
                .map_err(|e| error_at(path, "get cursor id", e))?
                .map(|v| v.value().to_string());
            match id {
                Some(id) => ChainCursor::decode(&format!("{block}:{id}")).map(Some),
                None => Ok(Some(ChainCursor::at(block))),
            }
        })
        .await
    }

    async fn set_cursor(&self, cursor: &ChainCursor) -> StoreResult<()> {
        let cursor = cursor.clone();
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            {
                let mut numbers = txn
                    .open_table(META)
                    .map_err(|e| error_at(path, "open meta", e))?;
                numbers
                    .insert(CURSOR_KEY, cursor.block)
                    .map_err(|e| error_at(path, "set cursor", e))?;
                let mut texts = txn
                    .open_table(META_TEXT)
                    .map_err(|e| error_at(path, "open meta text", e))?;
                match &cursor.block_id {
                    Some(id) => texts.insert(CURSOR_ID_KEY, id.as_str()).map(|_| ()),
                    None => texts.remove(CURSOR_ID_KEY).map(|_| ()),
                }
                .map_err(|e| error_at(path, "set cursor id", e))?;
            }
            txn.commit().map_err(|e| error_at(path, "commit", e))
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.blocking(|db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            txn.open_table(META)
                .map_err(|e| error_at(path, "open meta", e))?;
            Ok(())
        })
        .await
    }

    async fn sweep_expired(&self, now: UnixTime) -> StoreResult<usize> {
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            let mut removed = 0usize;
            {
                let mut sessions = txn
                    .open_table(SESSIONS)
                    .map_err(|e| error_at(path, "open sessions", e))?;
                sessions
                    .retain(|_, raw| {
                        // An undecodable record is kept: sweeping must not
                        // silently destroy evidence of corruption.
                        let keep = serde_json::from_slice::<SessionRecord>(raw)
                            .map(|s| s.is_live(now))
                            .unwrap_or(true);
                        removed += usize::from(!keep);
                        keep
                    })
                    .map_err(|e| error_at(path, "sweep sessions", e))?;
                let mut challenges = txn
                    .open_table(CHALLENGES)
                    .map_err(|e| error_at(path, "open challenges", e))?;
                challenges
                    .retain(|_, raw| {
                        let keep = serde_json::from_slice::<StoredChallenge>(raw)
                            .map(|c| c.keep_until > now)
                            .unwrap_or(true);
                        removed += usize::from(!keep);
                        keep
                    })
                    .map_err(|e| error_at(path, "sweep challenges", e))?;
                let mut wallet = txn
                    .open_table(WALLET_CHALLENGES)
                    .map_err(|e| error_at(path, "open wallet challenges", e))?;
                wallet
                    .retain(|_, raw| {
                        let keep = serde_json::from_slice::<WalletChallenge>(raw)
                            .map(|c| c.expires_at.saturating_add(WALLET_CHALLENGE_GRACE_SECS) > now)
                            .unwrap_or(true);
                        removed += usize::from(!keep);
                        keep
                    })
                    .map_err(|e| error_at(path, "sweep wallet challenges", e))?;
                let mut grants = txn
                    .open_table(GRANTS)
                    .map_err(|e| error_at(path, "open grants", e))?;
                grants
                    .retain(|_, raw| {
                        let keep = serde_json::from_slice::<Grant>(raw)
                            .map(|g| g.is_live(now))
                            .unwrap_or(true);
                        removed += usize::from(!keep);
                        keep
                    })
                    .map_err(|e| error_at(path, "sweep grants", e))?;
            }
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(removed)
        })
        .await
    }

    /// One process owns this store: it always follows the chain.
    async fn acquire_follower_lease(&self, _holder: &str, _ttl_secs: u64) -> StoreResult<bool> {
        Ok(true)
    }

    /// No other instance shares this store: nothing to hear.
    fn revocations(&self) -> Option<tokio::sync::broadcast::Receiver<SessionKey>> {
        None
    }

    fn revocation_feed_status(&self) -> Option<tokio::sync::watch::Receiver<bool>> {
        None
    }

    async fn get_value(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_string();
        self.blocking(move |db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            let table = match txn.open_table(VALUES) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(error_at(path, "open values", e)),
            };
            Ok(table
                .get(name.as_str())
                .map_err(|e| error_at(path, "get value", e))?
                .map(|v| v.value().to_string()))
        })
        .await
    }

    async fn swap_value(
        &self,
        name: &str,
        expected: Option<&str>,
        value: &str,
    ) -> StoreResult<bool> {
        let (name, expected, value) = (
            name.to_string(),
            expected.map(str::to_string),
            value.to_string(),
        );
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            {
                let mut table = txn
                    .open_table(VALUES)
                    .map_err(|e| error_at(path, "open values", e))?;
                let current = table
                    .get(name.as_str())
                    .map_err(|e| error_at(path, "get value", e))?
                    .map(|v| v.value().to_string());
                if current != expected {
                    return Ok(false);
                }
                table
                    .insert(name.as_str(), value.as_str())
                    .map_err(|e| error_at(path, "put value", e))?;
            }
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(true)
        })
        .await
    }

    async fn put_wallet_challenge(
        &self,
        key: &SessionKey,
        challenge: &WalletChallenge,
    ) -> StoreResult<()> {
        let key = key.as_str().to_string();
        let bytes = encode(&self.path, challenge)?;
        self.insert_one(
            WALLET_CHALLENGES,
            "open wallet challenges",
            "put wallet challenge",
            key,
            bytes,
        )
        .await
    }

    async fn take_wallet_challenge(
        &self,
        key: &SessionKey,
    ) -> StoreResult<Option<WalletChallenge>> {
        let now = now_unix();
        // Read and delete in one write transaction, so of two concurrent
        // takes only the first finds the challenge.
        let taken = self
            .remove_one(
                WALLET_CHALLENGES,
                "open wallet challenges",
                "take wallet challenge",
                key.as_str(),
                |path, raw| decode::<WalletChallenge>(path, "wallet challenge", raw),
            )
            .await?;
        Ok(taken.filter(|c| c.expires_at.saturating_add(WALLET_CHALLENGE_GRACE_SECS) > now))
    }

    async fn login_session(
        &self,
        key: &SessionKey,
        account: &str,
        proof: &LoginProof,
        expires_at: UnixTime,
    ) -> StoreResult<bool> {
        let key = key.clone();
        let account = account.to_string();
        let proof = proof.clone();
        let now = now_unix();
        self.update_session(key, now, move |session| {
            session.account = Some(account);
            session.login = Some(proof);
            session.expires_at = expires_at;
            session.memo = None;
            session.revoked_reason = None;
            true
        })
        .await
    }

    async fn revoke_login(
        &self,
        key: &SessionKey,
        proof: &LoginProof,
        reason: &str,
    ) -> StoreResult<bool> {
        let key = key.clone();
        let proof = proof.clone();
        let reason = reason.to_string();
        let now = now_unix();
        self.update_session(key, now, move |session| {
            if session.login.as_ref() != Some(&proof) {
                return false;
            }
            session.account = None;
            session.login = None;
            session.revoked_reason = Some(reason);
            true
        })
        .await
    }

    async fn add_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        let key = pending_key(pending);
        let bytes = encode(&self.path, pending)?;
        self.insert_one(
            PENDING,
            "open pending confirmations",
            "put pending confirmation",
            key,
            bytes,
        )
        .await
    }

    async fn due_pending_confirmations(
        &self,
        time: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<PendingConfirmation>> {
        // Every key of an expiration before `time` sorts before this one.
        let end = format!("{time:020}");
        self.blocking(move |db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            let table = txn
                .open_table(PENDING)
                .map_err(|e| error_at(path, "open pending confirmations", e))?;
            let mut due = Vec::new();
            for entry in table
                .range::<&str>(..end.as_str())
                .map_err(|e| error_at(path, "scan pending confirmations", e))?
                .take(limit)
            {
                let (_, raw) = entry.map_err(|e| error_at(path, "read pending confirmation", e))?;
                due.push(decode(path, "pending confirmation", raw.value())?);
            }
            Ok(due)
        })
        .await
    }

    async fn remove_pending_confirmation(&self, pending: &PendingConfirmation) -> StoreResult<()> {
        self.remove_one(
            PENDING,
            "open pending confirmations",
            "remove pending confirmation",
            &pending_key(pending),
            |_, _| Ok(()),
        )
        .await
        .map(drop)
    }

    async fn put_grant(&self, name: &str, value: &str, expires_at: UnixTime) -> StoreResult<()> {
        let grant = Grant {
            value: value.to_string(),
            expires_at,
            used_by: None,
        };
        let bytes = encode(&self.path, &grant)?;
        self.insert_one(GRANTS, "open grants", "put grant", name.to_string(), bytes)
            .await
    }

    async fn get_grant(&self, name: &str, now: UnixTime) -> StoreResult<Option<Grant>> {
        let name = name.to_string();
        self.blocking(move |db, path| {
            let txn = db
                .begin_read()
                .map_err(|e| error_at(path, "begin read", e))?;
            let table = txn
                .open_table(GRANTS)
                .map_err(|e| error_at(path, "open grants", e))?;
            let grant: Option<Grant> = read_record(&table, name.as_str(), "grant", path)?;
            Ok(grant.filter(|g| g.is_live(now)))
        })
        .await
    }

    async fn delete_grant(&self, name: &str) -> StoreResult<bool> {
        self.remove_one(GRANTS, "open grants", "delete grant", name, |_, _| Ok(()))
            .await
            .map(|removed| removed.is_some())
    }

    async fn use_grant(
        &self,
        name: &str,
        mark: &str,
        keep_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Grant>> {
        let (name, mark) = (name.to_string(), mark.to_string());
        // Read and mark in one write transaction: of two concurrent first
        // uses only one sees `used_by == None`.
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            let before = {
                let mut table = txn
                    .open_table(GRANTS)
                    .map_err(|e| error_at(path, "open grants", e))?;
                let grant: Option<Grant> = read_record(&table, name.as_str(), "grant", path)?;
                let Some(before) = grant.filter(|g| g.is_live(now)) else {
                    return Ok(None);
                };
                if before.used_by.is_none() {
                    let used = Grant {
                        value: before.value.clone(),
                        expires_at: keep_until,
                        used_by: Some(mark),
                    };
                    table
                        .insert(name.as_str(), encode(path, &used)?.as_slice())
                        .map_err(|e| error_at(path, "mark grant", e))?;
                }
                before
            };
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(Some(before))
        })
        .await
    }
}

impl EmbeddedStore {
    /// Removes the record under `key` from `table` in its own durable write
    /// transaction and returns what `read` makes of it, if there was one (the
    /// labels name the step in errors). An error from `read` aborts the
    /// transaction: the record stays. Of two concurrent removals only one
    /// finds the record.
    async fn remove_one<T: Send + 'static>(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        open_label: &'static str,
        remove_label: &'static str,
        key: &str,
        read: impl FnOnce(&Path, &[u8]) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<Option<T>> {
        let key = key.to_string();
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            let removed = {
                let mut table = txn
                    .open_table(table)
                    .map_err(|e| error_at(path, open_label, e))?;
                let removed = table
                    .remove(key.as_str())
                    .map_err(|e| error_at(path, remove_label, e))?;
                match removed {
                    Some(raw) => Some(read(path, raw.value())?),
                    None => None,
                }
            };
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(removed)
        })
        .await
    }

    /// Writes one encoded record under `key` in `table`, in its own durable
    /// write transaction (the labels name the step in errors).
    async fn insert_one(
        &self,
        table: TableDefinition<'static, &'static str, &'static [u8]>,
        open_label: &'static str,
        put_label: &'static str,
        key: String,
        bytes: Vec<u8>,
    ) -> StoreResult<()> {
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            {
                let mut table = txn
                    .open_table(table)
                    .map_err(|e| error_at(path, open_label, e))?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(|e| error_at(path, put_label, e))?;
            }
            txn.commit().map_err(|e| error_at(path, "commit", e))
        })
        .await
    }

    /// Reads the live session `key`, lets `change` edit it and writes it
    /// back if `change` says so, all in one write transaction. Returns
    /// whether it was written (`false` also when the session is gone).
    async fn update_session(
        &self,
        key: SessionKey,
        now: UnixTime,
        change: impl FnOnce(&mut SessionRecord) -> bool + Send + 'static,
    ) -> StoreResult<bool> {
        self.blocking(move |db, path| {
            let txn = db
                .begin_write()
                .map_err(|e| error_at(path, "begin write", e))?;
            let written = {
                let mut sessions = txn
                    .open_table(SESSIONS)
                    .map_err(|e| error_at(path, "open sessions", e))?;
                let session: Option<SessionRecord> =
                    read_record(&sessions, key.as_str(), "session", path)?;
                match session.filter(|s| s.is_live(now)) {
                    Some(mut session) => {
                        let changed = change(&mut session);
                        if changed {
                            sessions
                                .insert(key.as_str(), encode(path, &session)?.as_slice())
                                .map_err(|e| error_at(path, "put session", e))?;
                        }
                        changed
                    }
                    None => false,
                }
            };
            txn.commit().map_err(|e| error_at(path, "commit", e))?;
            Ok(written)
        })
        .await
    }
}
