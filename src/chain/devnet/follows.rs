//! The devnet's follow graph: who follows (blog) or mutes (ignore) whom, the
//! follow operations that change it, and the node methods that read it.
//!
//! Why a file of its own: follows are the one kind of state the devnet
//! changes through a wallet-signed `custom_json` (the stale-follows report's
//! unfollow) rather than through a transfer, and the access-policy work reads
//! the same graph through `bridge.get_relationship_between_accounts`. The
//! rules mirror the nodes:
//! - `get_following` / `get_followers` `(account, start, follow_type, limit)`
//!   list one kind (`blog` or `ignore`), alphabetical by the other account,
//!   at most 1,000 entries; `start` is included on Steem and excluded on Hive
//!   (see `tests/fixtures/steem-rpc` and the chain-policy fixtures);
//! - a follow operation is checked when it is broadcast (id `follow`, the
//!   follower's posting authority, see [`crate::chain::follow`]) and applied
//!   when the block that holds it is produced; `what: []` removes the
//!   relation, `["blog"]` and `["ignore"]` replace it.

use std::collections::BTreeMap;
use std::ops::Bound;

use serde_json::{Value, json};

use super::{ChainState, DevnetError};
use crate::chain::crypto::{Authority, CustomJsonOperation, PublicKey, Role, Transaction};
use crate::chain::follow::{Follow, FollowWhat, parse_follow};
use crate::chain::{AccountName, ChainName};

/// `get_following` / `get_followers` limit, as hivemind enforces it.
pub const MAX_FOLLOW_LIMIT: i64 = 1000;

/// Directed relations, indexed both ways; only `Blog` and `Ignore` are
/// stored (`Nothing` is the absence of an entry).
#[derive(Debug, Default)]
pub(super) struct FollowGraph {
    /// follower → (following → kind)
    out: BTreeMap<String, BTreeMap<String, FollowWhat>>,
    /// following → (follower → kind)
    inbound: BTreeMap<String, BTreeMap<String, FollowWhat>>,
}

impl FollowGraph {
    /// Sets `follower`'s relation to `following`.
    pub(super) fn set(&mut self, follower: &str, following: &str, what: FollowWhat) {
        fn put(
            map: &mut BTreeMap<String, BTreeMap<String, FollowWhat>>,
            from: &str,
            to: &str,
            what: FollowWhat,
        ) {
            if what == FollowWhat::Nothing {
                if let Some(edges) = map.get_mut(from) {
                    edges.remove(to);
                    if edges.is_empty() {
                        map.remove(from);
                    }
                }
            } else {
                map.entry(from.to_string())
                    .or_default()
                    .insert(to.to_string(), what);
            }
        }
        put(&mut self.out, follower, following, what);
        put(&mut self.inbound, following, follower, what);
    }

    pub(super) fn apply(&mut self, follow: &Follow) {
        self.set(
            follow.follower.as_str(),
            follow.following.as_str(),
            follow.what,
        );
    }

    /// `account1`'s relation to `account2`.
    pub(super) fn relation(&self, account1: &str, account2: &str) -> FollowWhat {
        self.out
            .get(account1)
            .and_then(|edges| edges.get(account2))
            .copied()
            .unwrap_or(FollowWhat::Nothing)
    }

    /// The accounts `follower` relates to with `what`, alphabetical.
    #[cfg(test)]
    pub(super) fn following(&self, follower: &str, what: FollowWhat) -> Vec<String> {
        self.out
            .get(follower)
            .map(|edges| {
                edges
                    .iter()
                    .filter(|(_, kind)| **kind == what)
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Which side of the relation a listing walks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Direction {
    /// `get_following`: the accounts `account` follows.
    Following,
    /// `get_followers`: the accounts that follow `account`.
    Followers,
}

/// A node's "bad parameters" answer.
pub(super) type ParamError = String;

/// `get_following` / `get_followers` arguments, positional as condenser_api
/// takes them (`[account, start, follow_type, limit]`).
pub(super) struct ListArgs<'a> {
    account: &'a str,
    start: &'a str,
    what: FollowWhat,
    limit: usize,
}

/// Reads and checks the arguments as hivemind does; `Err(Ok(limit))` is the
/// range assertion on `limit`, `Err(Err(text))` any other bad parameter.
pub(super) fn list_args(args: &[Value]) -> Result<ListArgs<'_>, Result<i64, ParamError>> {
    let bad = |text: &str| Err(Err(text.to_string()));
    let Some(account) = args.first().filter(|v| !v.is_null()) else {
        return bad("'account' parameter lacking default value");
    };
    let Some(account) = account.as_str() else {
        return bad("account must be a string");
    };
    if AccountName::parse(account).is_err() {
        return Err(Err(format!("invalid account name {account:?}")));
    }
    let start = match args.get(1) {
        None | Some(Value::Null) => "",
        Some(Value::String(start)) => start.as_str(),
        Some(_) => return bad("start must be an account name or null"),
    };
    let what = match args.get(2) {
        None | Some(Value::Null) => FollowWhat::Blog,
        Some(Value::String(kind)) if kind == "blog" => FollowWhat::Blog,
        Some(Value::String(kind)) if kind == "ignore" => FollowWhat::Ignore,
        Some(Value::String(_)) => {
            return bad("Unsupported follow_type, valid values: blog, ignore");
        }
        Some(_) => return bad("follow type must be a string"),
    };
    let limit = match args.get(3) {
        None | Some(Value::Null) => MAX_FOLLOW_LIMIT,
        Some(value) => match value.as_i64() {
            Some(limit) => limit,
            None => return bad("limit must be an integer"),
        },
    };
    if !(1..=MAX_FOLLOW_LIMIT).contains(&limit) {
        return Err(Ok(limit));
    }
    Ok(ListArgs {
        account,
        start,
        what,
        limit: usize::try_from(limit).unwrap_or(1000),
    })
}

/// The entries of one `get_following` / `get_followers` page.
pub(super) fn list(state: &ChainState, direction: Direction, args: &ListArgs<'_>) -> Value {
    let map = match direction {
        Direction::Following => &state.follows.out,
        Direction::Followers => &state.follows.inbound,
    };
    let Some(edges) = map.get(args.account) else {
        return json!([]);
    };
    let start = args.start;
    let exclusive = state.chain == ChainName::Hive && !start.is_empty();
    let entries: Vec<Value> = edges
        .range::<str, _>((Bound::Included(start), Bound::Unbounded))
        .filter(|(name, _)| !(exclusive && name.as_str() == start))
        .filter(|(_, kind)| **kind == args.what)
        .take(args.limit)
        .map(|(other, kind)| {
            let (follower, following) = match direction {
                Direction::Following => (args.account, other.as_str()),
                Direction::Followers => (other.as_str(), args.account),
            };
            super::shapes::follow_entry(follower, following, kind.as_list())
        })
        .collect();
    Value::Array(entries)
}

/// `bridge.get_relationship_between_accounts` for `[account1, account2]`
/// (or `{account1, account2}`): Hive's shape; the blacklist and
/// "follows muted" lists of Hive's communities are not simulated (false).
pub(super) fn relationship(state: &ChainState, params: &Value) -> Result<Value, ParamError> {
    let pick = |name: &str, index: usize| match params {
        Value::Object(map) => map.get(name),
        Value::Array(items) => items.get(index),
        _ => None,
    };
    let mut names = Vec::new();
    for (name, index) in [("account1", 0), ("account2", 1)] {
        let raw = pick(name, index)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name} must be an account name"))?;
        let account = AccountName::parse(raw)
            .ok()
            .filter(|account| account.as_str() == raw)
            .ok_or_else(|| format!("invalid account name {raw:?}"))?;
        names.push(account);
    }
    let relation = state.follows.relation(names[0].as_str(), names[1].as_str());
    Ok(json!({
        "blacklists": false,
        "follows": relation == FollowWhat::Blog,
        "follows_blacklists": false,
        "follows_muted": false,
        "ignores": relation == FollowWhat::Ignore,
    }))
}

/// Steem's `bridge.get_profile {account, observer}`, the way steemit's
/// hivemind answers it: the profile of `account` with the observer's
/// `context` (`followed`: the observer follows the account; `muted: true`
/// only when the observer mutes it). `null` for an account the devnet does
/// not hold (as hivemind answers for an unknown name). Steem's hivemind has
/// no `get_relationship_between_accounts`, so this is how Steem clients
/// (and `chain::facts`) read one follow relation.
pub(super) fn profile(state: &ChainState, params: &Value) -> Result<Value, ParamError> {
    let field = |name: &str| -> Result<&str, ParamError> {
        params
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{name} must be an account name"))
    };
    let account = field("account")?;
    let Some(held) = state.accounts.get(account) else {
        return Ok(Value::Null);
    };
    let mut profile = json!({
        "id": held.id,
        "name": account,
        "created": super::format_chain_time(held.created),
        "post_count": held.post_count,
        "stats": {
            "followers": state.follows.inbound.get(account).map_or(0, |m| m.values().filter(|w| **w == FollowWhat::Blog).count()),
            "following": state.follows.out.get(account).map_or(0, |m| m.values().filter(|w| **w == FollowWhat::Blog).count()),
        },
        "metadata": {"profile": {}},
    });
    if let Some(observer) = params.get("observer").filter(|o| !o.is_null()) {
        let observer = observer
            .as_str()
            .ok_or_else(|| "observer must be an account name".to_string())?;
        let relation = state.follows.relation(observer, account);
        let mut context = json!({"followed": relation == FollowWhat::Blog});
        if relation == FollowWhat::Ignore {
            context["muted"] = json!(true);
        }
        profile["context"] = context;
    }
    Ok(profile)
}

/// Checks one broadcast `custom_json`: it must be a follow operation, and
/// when the follower has keys (`devnet.set_keys`) the transaction's
/// signatures must satisfy their posting authority, as the chain requires
/// for `required_posting_auths`. Accounts left with the null key are not
/// signature-checked (as the devnet's transfers are not).
pub(super) fn check_broadcast(
    state: &ChainState,
    transaction: &Transaction,
    op: &CustomJsonOperation,
) -> Result<Follow, DevnetError> {
    let follow = parse_follow(op).map_err(|e| DevnetError::InvalidTransaction(e.to_string()))?;
    if let Some(keys) = state.authorities.get(follow.follower.as_str())
        && !keys.posting.is_empty()
    {
        let mut key_auths = Vec::new();
        for (key, weight) in &keys.posting {
            let key = PublicKey::parse(key)
                .map_err(|e| DevnetError::InvalidKey(format!("{key}: {e}")))?;
            key_auths.push((key, *weight));
        }
        let authority = Authority {
            role: Role::Posting,
            weight_threshold: keys.posting_threshold,
            key_auths,
            account_auths: Vec::new(),
            memo_key: None,
        };
        let signers = crate::chain::crypto::recover_transaction_signers(
            state.chain,
            transaction,
            &transaction.signatures,
        )
        .map_err(|e| {
            DevnetError::InvalidTransaction(format!(
                "missing posting authority of {}: {e}",
                follow.follower
            ))
        })?;
        authority.satisfied_by(&signers).map_err(|e| {
            DevnetError::InvalidTransaction(format!(
                "missing posting authority of {}: {e}",
                follow.follower
            ))
        })?;
    }
    Ok(follow)
}

/// Most `custom_json` operations one account may have in one block (Hive
/// refuses a sixth: "already submitted 5 custom json operation(s) this
/// block"); the devnet applies the same limit to follow operations.
pub const MAX_CUSTOM_JSON_PER_BLOCK: usize = 5;

/// Refuses `new` follows when, with those already waiting for the next
/// block, one follower would have more than [`MAX_CUSTOM_JSON_PER_BLOCK`].
pub(super) fn check_block_limit(pending: &[Follow], new: &[Follow]) -> Result<(), DevnetError> {
    for follow in new {
        let count = pending
            .iter()
            .chain(new)
            .filter(|other| other.follower == follow.follower)
            .count();
        if count > MAX_CUSTOM_JSON_PER_BLOCK {
            return Err(DevnetError::InvalidTransaction(format!(
                "account {} would have {count} custom json operations in this block; at most {MAX_CUSTOM_JSON_PER_BLOCK} are allowed",
                follow.follower
            )));
        }
    }
    Ok(())
}

/// A follow from `devnet.follow {follower, following, what}`: the same
/// checks as a broadcast operation (names, one relation, no self-follow),
/// built through the operation itself so both paths agree.
pub(super) fn simulated_follow(
    follower: &str,
    following: &str,
    what: &[String],
) -> Result<Follow, DevnetError> {
    let name = |raw: &str| {
        AccountName::parse(raw).map_err(|source| DevnetError::InvalidAccount {
            name: raw.to_string(),
            source,
        })
    };
    let follower = name(follower)?;
    let following = name(following)?;
    let what = FollowWhat::from_list(what).ok_or_else(|| {
        DevnetError::InvalidTransaction("what must be [], [\"blog\"] or [\"ignore\"]".into())
    })?;
    let op = crate::chain::follow::follow_operation(&follower, &following, what);
    parse_follow(&op).map_err(|e| DevnetError::InvalidTransaction(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_replace_each_other_and_nothing_removes_them() {
        let mut graph = FollowGraph::default();
        graph.set("bob", "carol", FollowWhat::Blog);
        assert_eq!(graph.relation("bob", "carol"), FollowWhat::Blog);
        assert_eq!(graph.relation("carol", "bob"), FollowWhat::Nothing);
        graph.set("bob", "carol", FollowWhat::Ignore);
        assert_eq!(
            graph.following("bob", FollowWhat::Blog),
            Vec::<String>::new()
        );
        assert_eq!(graph.following("bob", FollowWhat::Ignore), vec!["carol"]);
        graph.set("bob", "carol", FollowWhat::Nothing);
        assert!(graph.out.is_empty() && graph.inbound.is_empty());
    }
}
