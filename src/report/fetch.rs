//! Reading a follow list and the followed accounts from the chain.
//!
//! Why a module of its own: this is where node quirks live. `get_following`
//! pages hold at most 1,000 entries and backends disagree on their order
//! (Steem: alphabetical with an inclusive start; current hivemind:
//! alphabetical, exclusive start; 2021-2024 hivemind: newest first, exclusive
//! start). The one cursor rule that works for all of them is "start from the
//! last name of the previous page, drop names already seen, stop on a short
//! page or a page that adds nothing". `get_accounts` silently leaves out
//! unknown names, so answers are matched by `name`, never by position.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::json;
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::chain::{AccountName, RpcCall, RpcError};

/// Largest page `get_following` accepts (hivemind rejects 1001).
pub const FOLLOW_PAGE_SIZE: usize = 1000;
/// Most names sent in one `get_accounts` call.
pub const ACCOUNTS_BATCH_SIZE: usize = 1000;
/// Hard stop for a node that keeps inventing new follows: 2,000 pages is two
/// million follows, far beyond any real account.
pub const MAX_FOLLOW_PAGES: usize = 2000;

/// One `get_following` entry; other fields (`follower`) are not needed.
#[derive(Deserialize)]
struct FollowEntry {
    following: String,
    #[serde(default)]
    what: Vec<String>,
}

/// The two activity timestamps of an account, as `get_accounts` returns them.
#[derive(Deserialize)]
struct AccountEntry {
    name: String,
    last_post: String,
    last_root_post: String,
}

/// A followed account's activity. `None` means "never" (the chain's
/// `1970-01-01T00:00:00`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activity {
    pub name: AccountName,
    /// Raw `last_post` (posts and replies) as the node gave it.
    pub last_post: String,
    pub last_post_at: Option<PrimitiveDateTime>,
    /// Raw `last_root_post` (top-level posts only).
    pub last_root_post: String,
    pub last_root_post_at: Option<PrimitiveDateTime>,
}

/// Every account `account` follows for its blog, each name once, in the order
/// the node listed them.
///
/// Entries whose `what` lacks `"blog"` (ignored/muted) are skipped but still
/// advance the cursor. A follow name the chain could never hold fails the
/// whole read: it means the node is broken or hostile.
pub async fn fetch_following(
    rpc: &dyn RpcCall,
    account: &AccountName,
) -> Result<Vec<AccountName>, RpcError> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut blog_follows = Vec::new();
    let mut start = String::new();
    for _ in 0..MAX_FOLLOW_PAGES {
        let answer = rpc
            .call(
                "condenser_api.get_following",
                json!([account.as_str(), start, "blog", FOLLOW_PAGE_SIZE]),
            )
            .await?;
        let page: Vec<FollowEntry> = serde_json::from_value(answer)
            .map_err(|e| RpcError::Decode(format!("get_following: {e}")))?;
        let raw_len = page.len();
        let Some(cursor) = page.last().map(|entry| entry.following.clone()) else {
            return Ok(blog_follows);
        };
        let mut new_names = 0usize;
        for entry in page {
            if !seen.insert(entry.following.clone()) {
                continue;
            }
            new_names += 1;
            if entry.what.iter().any(|what| what == "blog") {
                blog_follows.push(parse_chain_name("get_following", &entry.following)?);
            }
        }
        if raw_len < FOLLOW_PAGE_SIZE || new_names == 0 {
            return Ok(blog_follows);
        }
        start = cursor;
    }
    Err(RpcError::Decode(format!(
        "get_following: still returning new follows after {MAX_FOLLOW_PAGES} pages"
    )))
}

/// The activity of `names`, in batches of at most [`ACCOUNTS_BATCH_SIZE`],
/// at most `concurrency` batches in flight. Names the node does not know are
/// left out; names nobody asked for are ignored.
pub async fn fetch_activity(
    rpc: &dyn RpcCall,
    names: &[AccountName],
    concurrency: usize,
) -> Result<Vec<Activity>, RpcError> {
    // The futures are built up front (they do nothing until polled): a
    // stream of closures over borrowed chunks trips axum's `Send` check.
    let calls: Vec<_> = names
        .chunks(ACCOUNTS_BATCH_SIZE)
        .map(|batch| fetch_activity_batch(rpc, batch))
        .collect();
    let batches: Vec<Vec<Activity>> = futures::stream::iter(calls)
        .buffer_unordered(concurrency.max(1))
        .try_collect()
        .await?;
    Ok(batches.into_iter().flatten().collect())
}

async fn fetch_activity_batch(
    rpc: &dyn RpcCall,
    batch: &[AccountName],
) -> Result<Vec<Activity>, RpcError> {
    let requested: Vec<&str> = batch.iter().map(AccountName::as_str).collect();
    let answer = rpc
        .call("condenser_api.get_accounts", json!([requested]))
        .await?;
    let entries: Vec<AccountEntry> = serde_json::from_value(answer)
        .map_err(|e| RpcError::Decode(format!("get_accounts: {e}")))?;
    let mut wanted: HashMap<&str, &AccountName> =
        batch.iter().map(|name| (name.as_str(), name)).collect();
    let mut found = Vec::with_capacity(entries.len());
    for entry in entries {
        // `remove` also drops a second answer for the same name.
        let Some(name) = wanted.remove(entry.name.as_str()) else {
            continue;
        };
        found.push(Activity {
            name: name.clone(),
            last_post_at: parse_chain_time("last_post", &entry.last_post)?,
            last_post: entry.last_post,
            last_root_post_at: parse_chain_time("last_root_post", &entry.last_root_post)?,
            last_root_post: entry.last_root_post,
        });
    }
    Ok(found)
}

fn parse_chain_name(what: &str, raw: &str) -> Result<AccountName, RpcError> {
    match AccountName::parse(raw) {
        Ok(name) if name.as_str() == raw => Ok(name),
        Ok(_) => Err(RpcError::Decode(format!(
            "{what}: account name {raw:?} is not lowercase"
        ))),
        Err(e) => Err(RpcError::Decode(format!(
            "{what}: {raw:?} is not an account name ({e})"
        ))),
    }
}

/// A chain timestamp (`2020-10-30T00:54:15`, UTC). The epoch (or anything
/// before it) means "never".
pub fn parse_chain_time(field: &str, raw: &str) -> Result<Option<PrimitiveDateTime>, RpcError> {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let parsed = PrimitiveDateTime::parse(raw, format)
        .map_err(|e| RpcError::Decode(format!("get_accounts: {field} {raw:?}: {e}")))?;
    if parsed.assume_utc().unix_timestamp() <= 0 {
        return Ok(None);
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_times_parse_and_epoch_means_never() {
        assert_eq!(
            parse_chain_time("last_post", "1970-01-01T00:00:00").unwrap(),
            None
        );
        let at = parse_chain_time("last_post", "2020-10-30T00:54:15")
            .unwrap()
            .unwrap();
        assert_eq!(at.assume_utc().unix_timestamp(), 1_604_019_255);
        assert!(parse_chain_time("last_post", "yesterday").is_err());
        assert!(parse_chain_time("last_post", "").is_err());
    }

    #[test]
    fn follow_names_must_be_canonical() {
        assert!(parse_chain_name("x", "gtg").is_ok());
        assert!(parse_chain_name("x", "GTG").is_err());
        assert!(parse_chain_name("x", "<script>").is_err());
    }
}
