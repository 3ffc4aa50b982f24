//! Access policies as operators write them (`policies:`), checked while
//! they are read.
//!
//! Why a file of its own: a policy is a small language (conditions nested
//! with `all`/`any`/`not`), not a flat setting. Its grammar is written by
//! hand instead of derived, so that every mistake names the condition and
//! its line (serde_norway attaches the position of the value being read
//! when a visitor fails) and so that a map holding two conditions is an
//! error instead of one of them being silently dropped. The result is the
//! checked [`Condition`] tree the evaluator in `crate::policy` walks; no
//! other module parses policies.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

use crate::chain::AccountName;
use crate::chain::facts::{CommunityName, CommunityRole};

use super::scalar::HumanDuration;

/// The condition names, as the YAML spells them (and `check` lists them).
pub const CONDITION_NAMES: [&str; 12] = [
    "all",
    "any",
    "not",
    "account_age",
    "reputation",
    "stake",
    "followed_by",
    "follows",
    "muted_by",
    "community",
    "witness_vote",
    "accounts",
];

/// Longest `account_age` a condition may ask for (older than the chains).
const MAX_ACCOUNT_AGE: Duration = Duration::from_secs(20 * 365 * 86_400);
/// Reputation scores the front-ends can show lie well inside this range.
const REPUTATION_RANGE: (f64, f64) = (-100.0, 100.0);
/// More STEEM/HIVE power than either chain has.
const MAX_STAKE: f64 = 1e12;
/// Most chain reads one policy may need (follows, mutes, communities):
/// each is one node call when a visitor is first evaluated.
pub const MAX_READS_PER_POLICY: usize = 16;

/// One condition of a policy, checked.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Every condition holds (a plain YAML list means this too).
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// The account was created at least this long ago.
    AccountAge(Duration),
    /// The front-ends' reputation score is at least this.
    Reputation(f64),
    /// Effective STEEM/HIVE power (own − delegated out + delegated in) is at least this.
    Stake(f64),
    /// This account follows the visitor.
    FollowedBy(AccountName),
    /// The visitor follows this account.
    Follows(AccountName),
    /// This account has muted (ignored) the visitor.
    MutedBy(AccountName),
    /// Subscribed to the community or holding a role in it (`role: None`),
    /// or holding at least `role`.
    Community {
        name: CommunityName,
        role: Option<CommunityRole>,
    },
    /// The visitor votes for this witness (directly or through a proxy).
    WitnessVote(AccountName),
    /// The visitor is one of these accounts.
    Accounts(BTreeSet<AccountName>),
}

impl Condition {
    /// The YAML name of this condition.
    pub fn name(&self) -> &'static str {
        match self {
            Condition::All(_) => "all",
            Condition::Any(_) => "any",
            Condition::Not(_) => "not",
            Condition::AccountAge(_) => "account_age",
            Condition::Reputation(_) => "reputation",
            Condition::Stake(_) => "stake",
            Condition::FollowedBy(_) => "followed_by",
            Condition::Follows(_) => "follows",
            Condition::MutedBy(_) => "muted_by",
            Condition::Community { .. } => "community",
            Condition::WitnessVote(_) => "witness_vote",
            Condition::Accounts(_) => "accounts",
        }
    }

    /// Calls `visit` on this condition and every condition inside it.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Condition)) {
        visit(self);
        match self {
            Condition::All(items) | Condition::Any(items) => {
                for item in items {
                    item.walk(visit);
                }
            }
            Condition::Not(inner) => inner.walk(visit),
            _ => {}
        }
    }

    /// How many node calls a first evaluation needs beyond the account
    /// itself: one per distinct relationship or community asked about.
    pub fn reads(&self) -> usize {
        let mut relations = BTreeSet::new();
        let mut communities = BTreeSet::new();
        self.walk(&mut |condition| match condition {
            Condition::FollowedBy(other) | Condition::MutedBy(other) => {
                relations.insert((other.as_str().to_string(), true));
            }
            Condition::Follows(other) => {
                relations.insert((other.as_str().to_string(), false));
            }
            Condition::Community { name, .. } => {
                communities.insert(name.as_str().to_string());
            }
            _ => {}
        });
        relations.len() + communities.len()
    }
}

/// A named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: Arc<str>,
    pub condition: Condition,
}

/// `policy_cache:` settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyCacheConfig {
    /// A decision is reused this long per (account, policy).
    pub ttl: Duration,
    /// If the chain cannot be read, a decision up to this old may still
    /// serve; after that the route fails closed.
    pub max_stale: Duration,
    /// Longest a first evaluation may take before it counts as undecidable.
    pub timeout: Duration,
}

impl Default for PolicyCacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            max_stale: Duration::from_secs(3600),
            timeout: Duration::from_secs(3),
        }
    }
}

/// `policy_cache:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyCacheInput {
    pub ttl: Option<HumanDuration>,
    pub max_stale: Option<HumanDuration>,
    pub timeout: Option<HumanDuration>,
}

/// Whether `name` may name a policy: it appears in URLs
/// (`/.steemgate/auth?policy=NAME`), JSON and metrics labels.
pub fn valid_policy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A policy's name, checked inside its visitor so an error carries the
/// name's own line.
struct PolicyName(String);

impl<'de> Deserialize<'de> for PolicyName {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::scalar::scalar(d, "a policy name", |raw| {
            if valid_policy_name(raw) {
                Ok(PolicyName(raw.to_string()))
            } else {
                Err(format!(
                    "policy name {raw:?}: use 1 to 64 lowercase letters, digits, '_' or '-'"
                ))
            }
        })
    }
}

/// `policies:` as written: name → condition, in file order.
#[derive(Debug, Default)]
pub struct PoliciesInput(pub Vec<(String, Condition)>);

impl<'de> Deserialize<'de> for PoliciesInput {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PoliciesVisitor;
        impl<'de> Visitor<'de> for PoliciesVisitor {
            type Value = PoliciesInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of policy names to conditions")
            }
            fn visit_unit<E: de::Error>(self) -> Result<PoliciesInput, E> {
                Ok(PoliciesInput::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PoliciesInput, A::Error> {
                let mut policies: Vec<(String, Condition)> = Vec::new();
                while let Some(PolicyName(name)) = map.next_key::<PolicyName>()? {
                    if policies.iter().any(|(known, _)| *known == name) {
                        return Err(de::Error::custom(format!(
                            "policy {name:?} is defined twice"
                        )));
                    }
                    let condition = map.next_value::<Condition>()?;
                    policies.push((name, condition));
                }
                Ok(PoliciesInput(policies))
            }
        }
        d.deserialize_any(PoliciesVisitor)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ConditionVisitor)
    }
}

struct ConditionVisitor;

impl<'de> Visitor<'de> for ConditionVisitor {
    type Value = Condition;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a condition (a map with one of {}) or a list of conditions",
            CONDITION_NAMES.join(", ")
        )
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Condition, A::Error> {
        Ok(Condition::All(conditions("a plain list", seq)?))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Condition, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty map is not a condition: name one, e.g. `community: hive-123456`",
            ));
        };
        let condition = match key.as_str() {
            "all" => Condition::All(map.next_value::<ConditionList>()?.into_vec("all")?),
            "any" => Condition::Any(map.next_value::<ConditionList>()?.into_vec("any")?),
            "not" => Condition::Not(Box::new(map.next_value::<Condition>()?)),
            "account_age" => {
                let age = map.next_value::<HumanDuration>()?.0;
                if age.is_zero() || age > MAX_ACCOUNT_AGE {
                    return Err(de::Error::custom(
                        "account_age: must be more than 0 and at most 20 years (e.g. 30d)",
                    ));
                }
                Condition::AccountAge(age)
            }
            "reputation" => {
                let score = map.next_value::<f64>()?;
                if !score.is_finite() || !(REPUTATION_RANGE.0..=REPUTATION_RANGE.1).contains(&score)
                {
                    return Err(de::Error::custom(
                        "reputation: the score the front-ends show, between -100 and 100 (e.g. 40)",
                    ));
                }
                Condition::Reputation(score)
            }
            "stake" => {
                let power = map.next_value::<f64>()?;
                if !power.is_finite() || !(0.0..=MAX_STAKE).contains(&power) {
                    return Err(de::Error::custom(
                        "stake: STEEM/HIVE power, a number of at least 0 (e.g. 50)",
                    ));
                }
                Condition::Stake(power)
            }
            "followed_by" => Condition::FollowedBy(map.next_value()?),
            "follows" => Condition::Follows(map.next_value()?),
            "muted_by" => Condition::MutedBy(map.next_value()?),
            "witness_vote" => Condition::WitnessVote(map.next_value()?),
            "community" => {
                let CommunityInput { name, role } = map.next_value()?;
                Condition::Community { name, role }
            }
            "accounts" => {
                let accounts: Vec<AccountName> = map.next_value()?;
                if accounts.is_empty() {
                    return Err(de::Error::custom(
                        "accounts: list at least one account (an empty list admits nobody)",
                    ));
                }
                Condition::Accounts(accounts.into_iter().collect())
            }
            other => {
                return Err(de::Error::custom(format!(
                    "unknown condition `{other}`, expected one of: {}",
                    CONDITION_NAMES.join(", ")
                )));
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "`{extra}` next to `{key}`: one condition per map; \
                 put several under `all:` (every one must hold) or `any:` (one is enough)"
            )));
        }
        Ok(condition)
    }
}

/// The list under `all:` / `any:`.
struct ConditionList(Vec<Condition>);

impl ConditionList {
    fn into_vec<E: de::Error>(self, key: &str) -> Result<Vec<Condition>, E> {
        if self.0.is_empty() {
            return Err(E::custom(format!("{key}: list at least one condition")));
        }
        Ok(self.0)
    }
}

impl<'de> Deserialize<'de> for ConditionList {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = ConditionList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of conditions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ConditionList, A::Error> {
                Ok(ConditionList(conditions("the list", seq)?))
            }
        }
        d.deserialize_seq(ListVisitor)
    }
}

fn conditions<'de, A: SeqAccess<'de>>(what: &str, mut seq: A) -> Result<Vec<Condition>, A::Error> {
    let mut items = Vec::new();
    while let Some(item) = seq.next_element::<Condition>()? {
        items.push(item);
    }
    if items.is_empty() {
        return Err(de::Error::custom(format!(
            "{what} of conditions is empty: list at least one"
        )));
    }
    Ok(items)
}

/// `community: hive-123456` or `community: {name: hive-123456, role: mod}`.
struct CommunityInput {
    name: CommunityName,
    role: Option<CommunityRole>,
}

fn community_name<E: de::Error>(raw: &str) -> Result<CommunityName, E> {
    CommunityName::parse(raw.trim()).map_err(|e| E::custom(format!("community {raw:?}: {e}")))
}

impl<'de> Deserialize<'de> for CommunityInput {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CommunityVisitor;
        impl<'de> Visitor<'de> for CommunityVisitor {
            type Value = CommunityInput;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a community name (hive-123456) or {name: hive-123456, role: mod}")
            }
            fn visit_str<E: de::Error>(self, raw: &str) -> Result<CommunityInput, E> {
                Ok(CommunityInput {
                    name: community_name(raw)?,
                    role: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CommunityInput, A::Error> {
                let mut name = None;
                let mut role = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" if name.is_none() => {
                            let raw: String = map.next_value()?;
                            name = Some(community_name(&raw)?);
                        }
                        "role" if role.is_none() => {
                            let raw: String = map.next_value()?;
                            let parsed = raw
                                .trim()
                                .parse::<CommunityRole>()
                                .ok()
                                .filter(|r| *r != CommunityRole::Muted)
                                .ok_or_else(|| {
                                    de::Error::custom(format!(
                                        "role {raw:?}: one of guest, member, mod, admin, owner"
                                    ))
                                })?;
                            role = Some(parsed);
                        }
                        "name" | "role" => {
                            return Err(de::Error::custom(format!("`{key}` given twice")));
                        }
                        other => {
                            return Err(de::Error::custom(format!(
                                "unknown key `{other}` in community, expected `name` and `role`"
                            )));
                        }
                    }
                }
                let name = name.ok_or_else(|| de::Error::custom("community: `name` is missing"))?;
                Ok(CommunityInput { name, role })
            }
        }
        d.deserialize_any(CommunityVisitor)
    }
}
