//! Deciding which followed accounts are stale, from already fetched data.
//!
//! Why separate from fetching: the cache keeps the raw follow list and
//! activity, and every request applies its own threshold and `by` here, so a
//! visitor trying `?days=90` after `?days=40` costs no node call.

use serde::Serialize;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::fetch::Activity;

const SECONDS_PER_DAY: i64 = 86_400;

/// Which timestamp counts as "last activity".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InactiveBy {
    /// `last_post`: posts and replies (the default).
    LastPost,
    /// `last_root_post`: top-level posts only (`?by=root`).
    LastRootPost,
}

impl InactiveBy {
    pub fn as_str(self) -> &'static str {
        match self {
            InactiveBy::LastPost => "last_post",
            InactiveBy::LastRootPost => "last_root_post",
        }
    }
}

/// One stale followed account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StaleAccount {
    pub name: String,
    /// The timestamp `by` selected, as the node gave it.
    pub last_post: String,
    /// Whole days since then; `None` when the account never posted.
    pub days_inactive: Option<u64>,
    #[serde(skip)]
    at: Option<PrimitiveDateTime>,
}

/// The followed accounts inactive for more than `threshold_days` whole days
/// as of `now`: never-posted accounts first, then the longest inactive.
/// Accounts whose timestamp lies in the future (clock skew) count as active.
pub fn stale_accounts(
    activity: &[Activity],
    threshold_days: u32,
    by: InactiveBy,
    now: OffsetDateTime,
) -> Vec<StaleAccount> {
    let mut stale: Vec<StaleAccount> = activity
        .iter()
        .filter_map(|account| {
            let (raw, at) = match by {
                InactiveBy::LastPost => (&account.last_post, account.last_post_at),
                InactiveBy::LastRootPost => (&account.last_root_post, account.last_root_post_at),
            };
            let days_inactive = match at {
                None => None,
                Some(at) => {
                    let seconds = (now - at.assume_utc()).whole_seconds();
                    let days = u64::try_from(seconds.div_euclid(SECONDS_PER_DAY)).unwrap_or(0);
                    if days <= u64::from(threshold_days) {
                        return None;
                    }
                    Some(days)
                }
            };
            Some(StaleAccount {
                name: account.name.as_str().to_string(),
                last_post: raw.clone(),
                days_inactive,
                at,
            })
        })
        .collect();
    // `None` (never) sorts before any time, older times before newer.
    stale.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.name.cmp(&b.name)));
    stale
}

/// How the table is ordered (`?sort=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    /// Longest inactive first, never-posted before everyone (the default).
    DaysInactive,
    /// Account name, a to z.
    Name,
    /// Most recent post first, never-posted last.
    LastPost,
}

impl SortBy {
    /// The `?sort=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            SortBy::DaysInactive => "days",
            SortBy::Name => "name",
            SortBy::LastPost => "last_post",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "" | "days" | "days_inactive" => Some(SortBy::DaysInactive),
            "name" => Some(SortBy::Name),
            "last_post" | "recent" => Some(SortBy::LastPost),
            _ => None,
        }
    }
}

/// Orders `stale` (as [`stale_accounts`] returned it) by `sort`; ties by name.
pub fn sort_stale(stale: &mut [StaleAccount], sort: SortBy) {
    match sort {
        SortBy::DaysInactive => {
            stale.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.name.cmp(&b.name)));
        }
        SortBy::Name => stale.sort_by(|a, b| a.name.cmp(&b.name)),
        SortBy::LastPost => {
            stale.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.name.cmp(&b.name)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::AccountName;
    use crate::report::fetch::parse_chain_time;

    fn activity(name: &str, last_post: &str, last_root_post: &str) -> Activity {
        Activity {
            name: AccountName::parse(name).unwrap(),
            last_post: last_post.into(),
            last_post_at: parse_chain_time("last_post", last_post).unwrap(),
            last_root_post: last_root_post.into(),
            last_root_post_at: parse_chain_time("last_root_post", last_root_post).unwrap(),
        }
    }

    #[test]
    fn threshold_is_whole_days_and_order_is_most_stale_first() {
        let now = time::macros::datetime!(2020-03-01 12:00 UTC);
        let data = [
            activity(
                "exactly-forty",
                "2020-01-21T12:00:00",
                "2020-01-21T12:00:00",
            ),
            activity(
                "forty-and-a-bit",
                "2020-01-21T11:59:59",
                "2020-01-21T11:59:59",
            ),
            activity("forty-one", "2020-01-20T12:00:00", "2020-01-20T12:00:00"),
            activity("ancient", "2016-01-01T00:00:00", "2016-01-01T00:00:00"),
            activity("never", "1970-01-01T00:00:00", "1970-01-01T00:00:00"),
            activity("future", "2020-04-01T00:00:00", "2020-04-01T00:00:00"),
        ];
        let names: Vec<_> = stale_accounts(&data, 40, InactiveBy::LastPost, now)
            .into_iter()
            .map(|s| (s.name, s.days_inactive))
            .collect();
        assert_eq!(
            names,
            [
                ("never".to_string(), None),
                ("ancient".to_string(), Some(1521)),
                ("forty-one".to_string(), Some(41))
            ]
        );
        let mut stale = stale_accounts(&data, 40, InactiveBy::LastPost, now);
        let order =
            |stale: &[StaleAccount]| stale.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        sort_stale(&mut stale, SortBy::Name);
        assert_eq!(order(&stale), ["ancient", "forty-one", "never"]);
        sort_stale(&mut stale, SortBy::LastPost);
        assert_eq!(order(&stale), ["forty-one", "ancient", "never"]);
        sort_stale(&mut stale, SortBy::DaysInactive);
        assert_eq!(order(&stale), ["never", "ancient", "forty-one"]);
        assert_eq!(SortBy::parse("name"), Some(SortBy::Name));
        assert_eq!(SortBy::parse(""), Some(SortBy::DaysInactive));
        assert_eq!(SortBy::parse("size"), None);
    }
}
