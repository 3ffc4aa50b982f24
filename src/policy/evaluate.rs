//! Deciding a policy from facts already read: pure, no I/O.
//!
//! Why apart from the reading ([`super::gather`]): the decision is the part
//! that must be exactly right (which condition failed, what would satisfy
//! it, `any`/`not` semantics) and is tested here over hand-built facts;
//! reading is where nodes fail, and a missing fact is an error there, so
//! this code never decides on a guess.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::chain::AccountName;
use crate::chain::facts::{
    AccountFacts, CommunityFacts, CommunityName, CommunityRole, Relationship, VestingRatio,
};
use crate::clock::UnixTime;
use crate::config::Condition;

/// What the chain said about one visitor, as far as one policy needs it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `get_accounts` of the visitor (ages, reputation, stake, votes).
    pub account: Option<AccountFacts>,
    pub vesting: Option<VestingRatio>,
    /// `(follower, following)` → their relationship.
    pub relations: BTreeMap<(AccountName, AccountName), Relationship>,
    pub communities: BTreeMap<CommunityName, CommunityFacts>,
    /// The witness votes that count for the visitor: their own, or those of
    /// the proxy they delegate their votes to (followed to its end).
    pub witness_votes: Option<WitnessVotes>,
    /// When the facts were read (seconds since the epoch).
    pub now: UnixTime,
}

/// The witness votes that count for a visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WitnessVotes {
    pub votes: Vec<AccountName>,
    /// The account whose votes these are, when not the visitor's own.
    pub via_proxy: Option<AccountName>,
}

/// Something the visitor could do so that a failed condition holds (the
/// demo offers a button for it; the page names it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Remedy {
    JoinCommunity { community: String },
}

/// One condition that did not hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// The condition's YAML name (`community`, `not`, `any`, …).
    pub condition: &'static str,
    /// What would satisfy it.
    pub need: Value,
    /// What the chain shows instead.
    pub have: Value,
    /// The same in plain words, for the page.
    #[serde(skip)]
    pub explain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remedy: Option<Remedy>,
}

/// The result of one policy for one visitor.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Pass,
    /// Why not: every failed condition on the deciding path.
    Fail(Vec<Failure>),
}

/// A fact the evaluation needed was not read: a bug in gathering, treated
/// as undecidable (never as a pass or a plain fail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("missing chain fact: {0}")]
pub struct MissingFact(pub String);

/// Decides `condition` for the visitor the facts describe.
pub fn decide(
    condition: &Condition,
    visitor: &AccountName,
    facts: &Facts,
) -> Result<Verdict, MissingFact> {
    let mut failures = Vec::new();
    if check(condition, visitor, facts, &mut failures)? {
        Ok(Verdict::Pass)
    } else {
        Ok(Verdict::Fail(failures))
    }
}

fn need_account(facts: &Facts) -> Result<&AccountFacts, MissingFact> {
    facts
        .account
        .as_ref()
        .ok_or_else(|| MissingFact("the visitor's account".into()))
}

fn relation(
    facts: &Facts,
    follower: &AccountName,
    following: &AccountName,
) -> Result<Relationship, MissingFact> {
    facts
        .relations
        .get(&(follower.clone(), following.clone()))
        .copied()
        .ok_or_else(|| MissingFact(format!("whether @{follower} follows @{following}")))
}

fn days(seconds: u64) -> u64 {
    seconds / 86_400
}

fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).floor() / scale
}

/// Evaluates `condition`; on false, pushes why onto `failures`.
fn check(
    condition: &Condition,
    visitor: &AccountName,
    facts: &Facts,
    failures: &mut Vec<Failure>,
) -> Result<bool, MissingFact> {
    let mut fail = |need: Value, have: Value, explain: String, remedy: Option<Remedy>| {
        failures.push(Failure {
            condition: condition.name(),
            need,
            have,
            explain,
            remedy,
        });
        Ok(false)
    };
    match condition {
        Condition::All(items) => {
            let mut all = true;
            for item in items {
                // Every failing condition is reported, so the visitor
                // learns everything that is missing at once.
                all &= check(item, visitor, facts, failures)?;
            }
            Ok(all)
        }
        Condition::Any(items) => {
            let mut alternatives = Vec::new();
            for item in items {
                if check(item, visitor, facts, &mut alternatives)? {
                    return Ok(true);
                }
            }
            let explain = alternatives
                .iter()
                .map(|f| f.explain.as_str())
                .collect::<Vec<_>>()
                .join(" Or: ");
            let remedy = alternatives.iter().find_map(|f| f.remedy.clone());
            let need = serde_json::to_value(&alternatives).unwrap_or(Value::Null);
            fail(
                need,
                Value::Null,
                format!("Any one of these would do. {explain}"),
                remedy,
            )
        }
        Condition::Not(inner) => {
            let mut ignored = Vec::new();
            if !check(inner, visitor, facts, &mut ignored)? {
                return Ok(true);
            }
            let (need, have, explain) = describe_negated(inner, visitor, facts);
            fail(need, have, explain, None)
        }
        Condition::AccountAge(minimum) => {
            let account = need_account(facts)?;
            let age = facts.now.saturating_sub(account.created);
            if age >= minimum.as_secs() {
                return Ok(true);
            }
            let need = humantime::format_duration(*minimum);
            let have = humantime::format_duration(std::time::Duration::from_secs(age));
            fail(
                json!({"days": days(minimum.as_secs()), "seconds": minimum.as_secs()}),
                json!({"days": days(age), "seconds": age}),
                format!(
                    "Accounts created at least {need} ago only: @{visitor} was created {have} ago. Come back when it is older."
                ),
                None,
            )
        }
        Condition::Reputation(minimum) => {
            let score = need_account(facts)?.reputation_score();
            if score >= *minimum {
                return Ok(true);
            }
            fail(
                json!(minimum),
                json!(rounded(score, 2)),
                format!(
                    "A reputation of at least {minimum} is needed: @{visitor} has {:.2}.",
                    rounded(score, 2)
                ),
                None,
            )
        }
        Condition::Stake(minimum) => {
            let account = need_account(facts)?;
            let ratio = facts
                .vesting
                .as_ref()
                .ok_or_else(|| MissingFact("the chain's vesting ratio".into()))?;
            let power = ratio.power(account.effective_vests());
            if power >= *minimum {
                return Ok(true);
            }
            fail(
                json!(minimum),
                json!(rounded(power, 3)),
                format!(
                    "At least {minimum} in staked power (own, minus delegated out, plus delegated in) is needed: @{visitor} has {:.3}.",
                    rounded(power, 3)
                ),
                None,
            )
        }
        Condition::FollowedBy(other) => {
            if relation(facts, other, visitor)?.follows {
                return Ok(true);
            }
            fail(
                json!(format!("followed by @{other}")),
                json!("not followed"),
                format!("For accounts @{other} follows: @{other} does not follow @{visitor}."),
                None,
            )
        }
        Condition::Follows(other) => {
            if relation(facts, visitor, other)?.follows {
                return Ok(true);
            }
            fail(
                json!(format!("follows @{other}")),
                json!("does not follow"),
                format!(
                    "For followers of @{other}: @{visitor} does not follow @{other}. Follow @{other}, then come back."
                ),
                None,
            )
        }
        Condition::MutedBy(other) => {
            if relation(facts, other, visitor)?.ignores {
                return Ok(true);
            }
            fail(
                json!(format!("muted by @{other}")),
                json!("not muted"),
                format!("For accounts @{other} has muted: @{other} has not muted @{visitor}."),
                None,
            )
        }
        Condition::Community { name, role } => {
            let community = facts
                .communities
                .get(name)
                .ok_or_else(|| MissingFact(format!("community {name}")))?;
            let title = community_label(community);
            match role {
                None => {
                    let member = community.role != CommunityRole::Muted
                        && (community.subscribed || community.role >= CommunityRole::Member);
                    if member {
                        return Ok(true);
                    }
                    let (have, explain) = if community.role == CommunityRole::Muted {
                        (
                            "muted",
                            format!(
                                "This area is for members of {title}: @{visitor} is muted there."
                            ),
                        )
                    } else {
                        (
                            "not subscribed",
                            format!(
                                "This area is for members of {title}: @{visitor} is not subscribed. Subscribe, then come back."
                            ),
                        )
                    };
                    fail(
                        json!({"community": name.as_str(), "subscribed": true}),
                        json!(have),
                        explain,
                        (community.role != CommunityRole::Muted).then(|| Remedy::JoinCommunity {
                            community: name.as_str().to_string(),
                        }),
                    )
                }
                Some(minimum) => {
                    if community.role >= *minimum {
                        return Ok(true);
                    }
                    fail(
                        json!({"community": name.as_str(), "role": minimum.as_str()}),
                        json!({"role": community.role.as_str()}),
                        format!(
                            "This area is for the {}s of {title} (or higher): @{visitor}'s role there is {}.",
                            minimum.as_str(),
                            community.role.as_str()
                        ),
                        None,
                    )
                }
            }
        }
        Condition::WitnessVote(witness) => {
            let votes = facts
                .witness_votes
                .as_ref()
                .ok_or_else(|| MissingFact("the visitor's witness votes".into()))?;
            if votes.votes.contains(witness) {
                return Ok(true);
            }
            let (have, explain) = match &votes.via_proxy {
                Some(proxy) => (
                    json!(format!(
                        "votes through proxy @{proxy}, who does not vote for @{witness}"
                    )),
                    format!(
                        "For voters of witness @{witness}: @{visitor} votes through the proxy @{proxy}, who does not vote for @{witness}."
                    ),
                ),
                None => (
                    json!("no vote"),
                    format!(
                        "For voters of witness @{witness}: @{visitor} does not vote for @{witness}."
                    ),
                ),
            };
            fail(json!(format!("votes for @{witness}")), have, explain, None)
        }
        Condition::Accounts(accounts) => {
            if accounts.contains(visitor) {
                return Ok(true);
            }
            // The list is the operator's, not public chain data: the
            // refusal says a list exists, never who is on it.
            fail(
                json!("a listed account"),
                json!(visitor.as_str()),
                format!("This area is open to a list of accounts; @{visitor} is not on it."),
                None,
            )
        }
    }
}

fn community_label(community: &CommunityFacts) -> String {
    if community.title.trim().is_empty() {
        community.name.as_str().to_string()
    } else {
        format!("{} ({})", community.title.trim(), community.name)
    }
}

/// Need, have and words for a `not: INNER` whose inner condition held.
fn describe_negated(
    inner: &Condition,
    visitor: &AccountName,
    facts: &Facts,
) -> (Value, Value, String) {
    match inner {
        Condition::MutedBy(other) => (
            json!(format!("not muted by @{other}")),
            json!(format!("muted by @{other}")),
            format!("Not for accounts @{other} has muted: @{other} has muted @{visitor}."),
        ),
        Condition::FollowedBy(other) => (
            json!(format!("not followed by @{other}")),
            json!(format!("followed by @{other}")),
            format!("Not for accounts @{other} follows: @{other} follows @{visitor}."),
        ),
        Condition::Follows(other) => (
            json!(format!("does not follow @{other}")),
            json!(format!("follows @{other}")),
            format!("Not for followers of @{other}: @{visitor} follows @{other}."),
        ),
        Condition::Accounts(_) => (
            json!(format!("not @{visitor}")),
            json!(visitor.as_str()),
            format!("@{visitor} is excluded here."),
        ),
        Condition::Community { name, .. } => {
            let title = facts
                .communities
                .get(name)
                .map(community_label)
                .unwrap_or_else(|| name.as_str().to_string());
            (
                json!({"not_community": name.as_str()}),
                json!("member"),
                format!("Not for members of {title}: @{visitor} is one."),
            )
        }
        other => (
            json!(format!("not {}", other.name())),
            json!(format!("{} holds", other.name())),
            format!(
                "Excluded: @{visitor} meets the `{}` condition this area excludes.",
                other.name()
            ),
        ),
    }
}
