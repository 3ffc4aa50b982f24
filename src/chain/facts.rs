//! The facts an access policy asks of the chain: an account's age,
//! reputation, stake and witness votes, whether one account follows or mutes
//! another, and an account's role and subscription in a community.
//!
//! Why a module of its own: policies (issue 15) decide who may enter from
//! these facts, so each must mean exactly what the front-ends show, and a
//! node answer that is not what we asked for must be an error, never a
//! default (a missing `reputation` is not 0, a missing `subscribed` is not
//! `false`): the policy layer turns errors into "undecidable" and fails
//! closed. Decoding is pure (`decode_*`, over `serde_json::Value`, for tests
//! and fuzzing); the `fetch_*` functions make one call each over
//! [`RpcCall`] and decode it.
//!
//! # Which call answers which fact
//!
//! | fact | Steem | Hive | source read |
//! |---|---|---|---|
//! | age, reputation, stake, witness votes, proxy | `condenser_api.get_accounts [[name]]` | same | fixtures `steem-condenser_api.get_accounts-inertia-2022-07-30.json`, `hive-condenser_api.get_accounts-*.json`: `created` without zone, `reputation` a string, legacy `"… VESTS"` strings with 6 decimals, `witness_votes`, `proxy` `""` for none |
//! | VESTS → STEEM/HIVE power | `condenser_api.get_dynamic_global_properties`: `total_vesting_fund_steem` / `total_vesting_shares` | same, `total_vesting_fund_hive` | both `*get_dynamic_global_properties-2022-07-30.json` fixtures |
//! | X follows / mutes Y | `bridge.get_profile {account: Y, observer: X}` → `context.followed`, `context.muted` | `bridge.get_relationship_between_accounts {account1: X, account2: Y}` → `follows`, `ignores`, `blacklists` | steemit/hivemind `hive/server/serve.py` registers no `bridge.get_relationship_between_accounts`; its `bridge.get_profile` adds the observer's `_follow_contexts` (`hive/server/hive_api/objects.py`): `followed` = state 1 or 3, `muted: true` only when state 2 or 3 (the key is absent otherwise). Hive: fixtures `hive-bridge.get_relationship_between_accounts-*.json` |
//! | role, subscription, title of a community | `bridge.get_community {name, observer}` → `title`, `context.role`, `context.subscribed` | same | steemit/hivemind `hive/server/hive_api/community.py` (`get_community`, `_append_observer_roles`/`_subs`, roles muted/guest/member/mod/admin/owner); Hive: fixtures `hive-bridge.get_community-*-observer-*.json` |
//!
//! Why not `condenser_api.get_following` with `start` = Y on Steem: Steem's
//! hivemind orders a follower's follows by time and seeks with
//! `created_at <= (time of the X→Y row)`, so `start` is inclusive, but rows
//! of the same block tie with Y, and an unfollowed Y (state 0) makes the
//! page list older follows instead: "Y is not on the page" would need a
//! second guess. Hive's hivemind excludes `start` altogether (fixture
//! `get_followers-steemit-start-steemlinks-limit3`). `get_profile` with an
//! observer reads the one X→Y row, which is exact. Note: Steem's hivemind
//! caches `get_following` answers (30 s, mutes 300 s); `get_profile`'s
//! observer context is read per call.
//!
//! Mutes: on Hive, `ignores` here is `ignores || blacklists` (account1 put
//! account2 on its blacklist), because an operator writing
//! `not: {muted_by: alice}` means "alice has not muted or blacklisted the
//! visitor". Steem's hivemind has no per-account blacklists.
//!
//! Every condition of issue 15 has a source on both chains (see
//! [`unsupported`]).

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value, json};

use super::block::{kind, parse_timestamp, truncate};
use super::{AccountName, Amount, ChainName, RpcCall, RpcError, Symbol};
use crate::clock::UnixTime;

/// VESTS in their smallest unit (micro-VESTS: nodes write 6 decimals).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vests(pub u64);

/// Decimal places of VESTS on both chains.
pub const VESTS_PRECISION: u32 = 6;
const VESTS_SCALE: u64 = 10u64.pow(VESTS_PRECISION);
/// The NAI of VESTS (`database_api` object form).
const VESTS_NAI: &str = "@@000000037";

impl Vests {
    pub const ZERO: Vests = Vests(0);

    /// Micro-VESTS.
    pub fn micro(self) -> u64 {
        self.0
    }

    /// Whole VESTS (`"123.456789"` → 123.456789), for display.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / VESTS_SCALE as f64
    }

    /// Parses `"117295.640891 VESTS"` (exactly 6 decimals, as nodes write).
    pub fn parse_legacy(raw: &str) -> Result<Self, FactError> {
        let bad = || FactError::Decode(format!("{:?} is not a VESTS amount", truncate(raw, 60)));
        let (number, symbol) = raw.split_once(' ').ok_or_else(bad)?;
        if symbol != "VESTS" {
            return Err(bad());
        }
        let (int, frac) = number.split_once('.').ok_or_else(bad)?;
        if int.is_empty()
            || frac.len() != VESTS_PRECISION as usize
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let int: u64 = int.parse().map_err(|_| bad())?;
        let frac: u64 = frac.parse().map_err(|_| bad())?;
        int.checked_mul(VESTS_SCALE)
            .and_then(|v| v.checked_add(frac))
            .map(Vests)
            .ok_or_else(bad)
    }

    /// Either wire form: the legacy string or the NAI object
    /// `{"amount": "…", "precision": 6, "nai": "@@000000037"}`.
    pub fn from_json(value: &Value) -> Result<Self, FactError> {
        match value {
            Value::String(s) => Self::parse_legacy(s),
            Value::Object(map) => {
                let bad = || {
                    FactError::Decode(format!(
                        "{} is not a VESTS amount",
                        truncate(&value.to_string(), 80)
                    ))
                };
                let amount = map.get("amount").and_then(Value::as_str).ok_or_else(bad)?;
                if map.get("precision").and_then(Value::as_u64) != Some(u64::from(VESTS_PRECISION))
                    || map.get("nai").and_then(Value::as_str) != Some(VESTS_NAI)
                    || amount.is_empty()
                    || !amount.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(bad());
                }
                amount.parse().map(Vests).map_err(|_| bad())
            }
            other => Err(FactError::Decode(format!(
                "a VESTS amount must be a string or an object, got {}",
                kind(other)
            ))),
        }
    }
}

impl fmt::Display for Vests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06} VESTS",
            self.0 / VESTS_SCALE,
            self.0 % VESTS_SCALE
        )
    }
}

/// What the chain says about one account, as far as policies care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountFacts {
    pub name: AccountName,
    /// When the account was created.
    pub created: UnixTime,
    /// The raw reputation (nodes send it as a string or a number).
    pub reputation_raw: i64,
    pub vesting_shares: Vests,
    /// Delegated out to other accounts.
    pub delegated_vesting_shares: Vests,
    /// Delegated in by other accounts.
    pub received_vesting_shares: Vests,
    /// The witnesses the account votes for itself (empty when it uses a proxy).
    pub witness_votes: Vec<AccountName>,
    /// The account its witness votes are delegated to, if any.
    pub proxy: Option<AccountName>,
}

impl AccountFacts {
    /// The reputation score the front-ends show (see [`reputation_score`]).
    pub fn reputation_score(&self) -> f64 {
        reputation_score(self.reputation_raw)
    }

    /// Own VESTS minus those delegated out plus those delegated in, never
    /// below 0: the stake the front-ends show as "effective" power.
    pub fn effective_vests(&self) -> Vests {
        let total = i128::from(self.vesting_shares.0) - i128::from(self.delegated_vesting_shares.0)
            + i128::from(self.received_vesting_shares.0);
        Vests(u64::try_from(total.max(0)).unwrap_or(u64::MAX))
    }
}

/// The front-ends' reputation score from the raw value: 25 for 0, else
/// `±max(log10(|raw|) − 9, 0) × 9 + 25` with the sign of `raw` (so a
/// negative raw value scores below 25). Condenser shows the integer part,
/// hivemind's `get_profile` two decimals; policies compare this unrounded
/// score (for positive scores and integer thresholds the same answer as
/// condenser's integer part).
pub fn reputation_score(raw: i64) -> f64 {
    if raw == 0 {
        return 25.0;
    }
    let level = ((raw.unsigned_abs() as f64).log10() - 9.0).max(0.0);
    let signed = if raw < 0 { -level } else { level };
    signed * 9.0 + 25.0
}

/// How many STEEM/HIVE one VEST is worth now (from the global properties).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VestingRatio {
    /// `total_vesting_fund_steem|hive` in thousandths of the native asset.
    pub fund_milli: u64,
    /// `total_vesting_shares`.
    pub shares: Vests,
}

impl VestingRatio {
    /// STEEM/HIVE power of `vests`, as the front-ends compute it
    /// (`vests × fund / shares`).
    pub fn power(&self, vests: Vests) -> f64 {
        // Exact integer product, then one division: no precision lost on
        // the large totals before the final float.
        let shares = u128::from(self.shares.0.max(1));
        let product = u128::from(vests.0) * u128::from(self.fund_milli);
        let milli = product / shares;
        let remainder = product % shares;
        (milli as f64 + remainder as f64 / shares as f64) / 1000.0
    }
}

/// How account1 relates to account2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relationship {
    /// account1 follows account2's blog.
    pub follows: bool,
    /// account1 mutes (ignores) account2; on Hive also: blacklists it.
    pub ignores: bool,
}

/// A role in a community, lowest first, named as bridge names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CommunityRole {
    Muted,
    Guest,
    Member,
    Mod,
    Admin,
    Owner,
}

impl CommunityRole {
    pub const ALL: [CommunityRole; 6] = [
        CommunityRole::Muted,
        CommunityRole::Guest,
        CommunityRole::Member,
        CommunityRole::Mod,
        CommunityRole::Admin,
        CommunityRole::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommunityRole::Muted => "muted",
            CommunityRole::Guest => "guest",
            CommunityRole::Member => "member",
            CommunityRole::Mod => "mod",
            CommunityRole::Admin => "admin",
            CommunityRole::Owner => "owner",
        }
    }
}

impl fmt::Display for CommunityRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommunityRole {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        CommunityRole::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "{:?} is not a community role (muted, guest, member, mod, admin, owner)",
                    truncate(raw, 40)
                )
            })
    }
}

/// A community's account name: `hive-` then 5 to 7 digits, the first 1–3
/// (hivemind's rule on both chains), which is also a valid account name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommunityName(AccountName);

impl CommunityName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{:?} is not a community name ({why}; like \"hive-123456\")",
                truncate(raw, 40)
            )
        };
        let digits = raw
            .strip_prefix("hive-")
            .ok_or_else(|| bad("it must start with \"hive-\""))?;
        if !(5..=7).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("\"hive-\" must be followed by 5 to 7 digits"));
        }
        if !matches!(digits.as_bytes().first(), Some(b'1'..=b'3')) {
            return Err(bad("the first digit must be 1, 2 or 3"));
        }
        AccountName::parse(raw)
            .map(CommunityName)
            .map_err(|e| bad(&e.to_string()))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The community's own account (its owner on chain).
    pub fn account(&self) -> &AccountName {
        &self.0
    }
}

impl fmt::Display for CommunityName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommunityName {
    type Err = String;
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Self::parse(raw)
    }
}

/// Deserializes a string through `FromStr`, validating inside the visitor
/// so that a YAML error carries the line of the value itself (as
/// `AccountName` does).
fn deserialize_parsed<'de, D, T>(d: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr<Err = String>,
{
    struct Parsed<T>(&'static str, std::marker::PhantomData<T>);
    impl<T: FromStr<Err = String>> serde::de::Visitor<'_> for Parsed<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: serde::de::Error>(self, raw: &str) -> Result<T, E> {
            raw.trim().parse().map_err(E::custom)
        }
    }
    d.deserialize_str(Parsed(expecting, std::marker::PhantomData))
}

impl<'de> serde::Deserialize<'de> for CommunityName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(d, "a community name such as hive-123456")
    }
}

impl serde::Serialize for CommunityName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for CommunityRole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_parsed(
            d,
            "a community role (muted, guest, member, mod, admin, owner)",
        )
    }
}

impl serde::Serialize for CommunityRole {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An account's standing in one community.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityFacts {
    pub name: CommunityName,
    /// The community's display title (e.g. "World News").
    pub title: String,
    /// The observer's role ("guest" when it has none).
    pub role: CommunityRole,
    /// The observer is subscribed.
    pub subscribed: bool,
}

/// `bridge.get_community_context`: an account's role, subscription and
/// (role) title in a community.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommunityContext {
    pub role: CommunityRole,
    pub subscribed: bool,
    pub title: String,
}

/// Why a fact could not be read. Every variant means "undecidable".
#[derive(Debug, Clone, thiserror::Error)]
pub enum FactError {
    #[error(transparent)]
    Rpc(RpcError),
    #[error("unexpected node answer: {0}")]
    Decode(String),
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    #[error("no such community: {0}")]
    NoSuchCommunity(String),
}

impl From<RpcError> for FactError {
    fn from(e: RpcError) -> Self {
        FactError::Rpc(e)
    }
}

fn decode(message: impl Into<String>) -> FactError {
    FactError::Decode(message.into())
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, FactError> {
    v.as_object()
        .ok_or_else(|| decode(format!("{what} must be an object, got {}", kind(v))))
}

fn field<'a>(map: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a Value, FactError> {
    map.get(key)
        .ok_or_else(|| decode(format!("{what} lacks `{key}`")))
}

fn str_field<'a>(map: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, FactError> {
    let v = field(map, key, what)?;
    v.as_str()
        .ok_or_else(|| decode(format!("{what}: `{key}` must be a string, got {}", kind(v))))
}

fn bool_field(map: &Map<String, Value>, key: &str, what: &str) -> Result<bool, FactError> {
    let v = field(map, key, what)?;
    v.as_bool().ok_or_else(|| {
        decode(format!(
            "{what}: `{key}` must be a boolean, got {}",
            kind(v)
        ))
    })
}

fn account_field(
    map: &Map<String, Value>,
    key: &str,
    what: &str,
) -> Result<AccountName, FactError> {
    let raw = str_field(map, key, what)?;
    AccountName::parse(raw).map_err(|e| decode(format!("{what}: `{key}`: {e}")))
}

/// Parses a node time: `2016-07-13T06:44:33` (condenser), also with a space
/// instead of `T` (hivemind's `created_at`), a fraction of a second and/or
/// a trailing `Z`. No other zone is accepted (nodes speak UTC).
pub fn parse_chain_time(raw: &str) -> Result<UnixTime, FactError> {
    let bad = || decode(format!("{:?} is not a node time", truncate(raw, 40)));
    let trimmed = raw.strip_suffix('Z').unwrap_or(raw);
    let (main, fraction) = match trimmed.split_once('.') {
        Some((main, fraction)) => (main, Some(fraction)),
        None => (trimmed, None),
    };
    if let Some(fraction) = fraction
        && (fraction.is_empty()
            || fraction.len() > 9
            || !fraction.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    if main.len() != 19 || !main.is_ascii() {
        return Err(bad());
    }
    let normalized = match main.as_bytes()[10] {
        b'T' => main.to_string(),
        b' ' => format!("{}T{}", &main[..10], &main[11..]),
        _ => return Err(bad()),
    };
    parse_timestamp(&normalized).map_err(|e| decode(e.to_string()))
}

/// A raw reputation as nodes send it: a JSON integer or a string of one
/// (optionally negative). Floats, empty strings and values beyond i64 are
/// errors.
pub fn decode_reputation(v: &Value) -> Result<i64, FactError> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| decode(format!("reputation {n} is not a 64-bit integer"))),
        Value::String(s) => {
            let digits = s.strip_prefix('-').unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(decode(format!(
                    "reputation {:?} is not an integer",
                    truncate(s, 40)
                )));
            }
            s.parse()
                .map_err(|_| decode(format!("reputation {:?} is out of range", truncate(s, 40))))
        }
        other => Err(decode(format!(
            "reputation must be a number or a string, got {}",
            kind(other)
        ))),
    }
}

/// One account object of `condenser_api.get_accounts`.
pub fn decode_account(v: &Value) -> Result<AccountFacts, FactError> {
    const WHAT: &str = "account";
    let map = object(v, WHAT)?;
    let name = account_field(map, "name", WHAT)?;
    let created = parse_chain_time(str_field(map, "created", WHAT)?)?;
    let reputation_raw = decode_reputation(field(map, "reputation", WHAT)?)?;
    let vests = |key: &str| Vests::from_json(field(map, key, WHAT)?);
    let vesting_shares = vests("vesting_shares")?;
    let delegated_vesting_shares = vests("delegated_vesting_shares")?;
    let received_vesting_shares = vests("received_vesting_shares")?;
    let votes = field(map, "witness_votes", WHAT)?;
    let witness_votes = votes
        .as_array()
        .ok_or_else(|| {
            decode(format!(
                "witness_votes must be an array, got {}",
                kind(votes)
            ))
        })?
        .iter()
        .map(|w| {
            w.as_str()
                .ok_or_else(|| decode(format!("a witness vote must be a string, got {}", kind(w))))
                .and_then(|w| {
                    AccountName::parse(w).map_err(|e| decode(format!("witness vote: {e}")))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let proxy = match str_field(map, "proxy", WHAT)? {
        "" => None,
        raw => Some(AccountName::parse(raw).map_err(|e| decode(format!("proxy: {e}")))?),
    };
    Ok(AccountFacts {
        name,
        created,
        reputation_raw,
        vesting_shares,
        delegated_vesting_shares,
        received_vesting_shares,
        witness_votes,
        proxy,
    })
}

/// The `result` of `condenser_api.get_accounts [[name]]`: exactly the
/// account asked for, or [`FactError::NoSuchAccount`] for `[]`.
pub fn decode_get_accounts(result: &Value, name: &AccountName) -> Result<AccountFacts, FactError> {
    let list = result.as_array().ok_or_else(|| {
        decode(format!(
            "get_accounts must answer an array, got {}",
            kind(result)
        ))
    })?;
    match list.as_slice() {
        [] => Err(FactError::NoSuchAccount(name.to_string())),
        [one] => {
            let facts = decode_account(one)?;
            if &facts.name != name {
                return Err(decode(format!(
                    "asked for account {name}, the node answered {}",
                    facts.name
                )));
            }
            Ok(facts)
        }
        more => Err(decode(format!(
            "asked for one account, the node answered {}",
            more.len()
        ))),
    }
}

/// The `result` of `get_dynamic_global_properties` on `chain`.
pub fn decode_vesting_ratio(v: &Value, chain: ChainName) -> Result<VestingRatio, FactError> {
    const WHAT: &str = "global properties";
    let map = object(v, WHAT)?;
    let fund_key = match chain {
        ChainName::Steem => "total_vesting_fund_steem",
        ChainName::Hive => "total_vesting_fund_hive",
    };
    let fund = Amount::from_json(field(map, fund_key, WHAT)?, chain)
        .map_err(|e| decode(format!("{fund_key}: {e}")))?;
    if fund.symbol != Symbol::native(chain) {
        return Err(decode(format!(
            "{fund_key} is in {}, not {}",
            fund.symbol.as_str(),
            Symbol::native(chain).as_str()
        )));
    }
    let shares = Vests::from_json(field(map, "total_vesting_shares", WHAT)?)?;
    if shares.0 == 0 || fund.units == 0 {
        return Err(decode(
            "the global properties have no vesting fund or no vesting shares",
        ));
    }
    Ok(VestingRatio {
        fund_milli: fund.units,
        shares,
    })
}

/// Hive: the `result` of `bridge.get_relationship_between_accounts`.
/// `ignores` is the mute or the blacklist (see the module doc).
pub fn decode_relationship(v: &Value) -> Result<Relationship, FactError> {
    const WHAT: &str = "relationship";
    let map = object(v, WHAT)?;
    let follows = bool_field(map, "follows", WHAT)?;
    let ignores = bool_field(map, "ignores", WHAT)?;
    let blacklists = match map.get("blacklists") {
        None => false,
        Some(_) => bool_field(map, "blacklists", WHAT)?,
    };
    Ok(Relationship {
        follows,
        ignores: ignores || blacklists,
    })
}

/// Steem: the `result` of `bridge.get_profile {account, observer}` read as
/// "observer → account". `context.followed` is required; `context.muted`
/// is sent only when true (steemit/hivemind `_follow_contexts`), and must
/// be a boolean when present. `null` means no such account.
pub fn decode_profile_relationship(
    v: &Value,
    account: &AccountName,
) -> Result<Relationship, FactError> {
    const WHAT: &str = "profile";
    if v.is_null() {
        return Err(FactError::NoSuchAccount(account.to_string()));
    }
    let map = object(v, WHAT)?;
    let name = account_field(map, "name", WHAT)?;
    if &name != account {
        return Err(decode(format!(
            "asked for the profile of {account}, the node answered {name}"
        )));
    }
    let context = object(field(map, "context", WHAT)?, "profile context")?;
    let follows = bool_field(context, "followed", "profile context")?;
    let ignores = match context.get("muted") {
        None => false,
        Some(_) => bool_field(context, "muted", "profile context")?,
    };
    Ok(Relationship { follows, ignores })
}

fn decode_role(map: &Map<String, Value>, what: &str) -> Result<CommunityRole, FactError> {
    str_field(map, "role", what)?
        .parse()
        .map_err(|e: String| decode(format!("{what}: {e}")))
}

/// The `result` of `bridge.get_community {name, observer}`: the title and
/// the observer's `context`. A `context` without role/subscribed (asked
/// without an observer) is an error.
pub fn decode_community(v: &Value, name: &CommunityName) -> Result<CommunityFacts, FactError> {
    const WHAT: &str = "community";
    if v.is_null() {
        return Err(FactError::NoSuchCommunity(name.to_string()));
    }
    let map = object(v, WHAT)?;
    let answered = str_field(map, "name", WHAT)?;
    if answered != name.as_str() {
        return Err(decode(format!(
            "asked for community {name}, the node answered {:?}",
            truncate(answered, 40)
        )));
    }
    let title = str_field(map, "title", WHAT)?.to_string();
    let context = object(field(map, "context", WHAT)?, "community context")?;
    Ok(CommunityFacts {
        name: name.clone(),
        title,
        role: decode_role(context, "community context")?,
        subscribed: bool_field(context, "subscribed", "community context")?,
    })
}

/// The `result` of `bridge.get_community_context {name, account}`.
pub fn decode_community_context(v: &Value) -> Result<CommunityContext, FactError> {
    const WHAT: &str = "community context";
    let map = object(v, WHAT)?;
    Ok(CommunityContext {
        role: decode_role(map, WHAT)?,
        subscribed: bool_field(map, "subscribed", WHAT)?,
        title: str_field(map, "title", WHAT)?.to_string(),
    })
}

/// The `result` of `get_account_reputations`: condenser_api's array of
/// `{account, reputation}` or reputation_api's `{"reputations": [...]}`,
/// with reputations as numbers or strings (both occur in one answer).
pub fn decode_account_reputations(v: &Value) -> Result<Vec<(AccountName, i64)>, FactError> {
    const WHAT: &str = "reputation entry";
    let list = match v {
        Value::Array(list) => list,
        Value::Object(map) => field(map, "reputations", "reputations")?
            .as_array()
            .ok_or_else(|| decode("`reputations` must be an array"))?,
        other => {
            return Err(decode(format!(
                "reputations must be an array or an object, got {}",
                kind(other)
            )));
        }
    };
    list.iter()
        .map(|entry| {
            let map = object(entry, WHAT)?;
            Ok((
                account_field(map, "account", WHAT)?,
                decode_reputation(field(map, "reputation", WHAT)?)?,
            ))
        })
        .collect()
}

/// The `result` of `bridge.list_community_roles`: `[account, role, title]`
/// rows (the owner row names the community account itself).
pub fn decode_community_roles(
    v: &Value,
) -> Result<Vec<(AccountName, CommunityRole, String)>, FactError> {
    let rows = v
        .as_array()
        .ok_or_else(|| decode(format!("community roles must be an array, got {}", kind(v))))?;
    rows.iter()
        .map(|row| match row.as_array().map(Vec::as_slice) {
            Some(
                [
                    Value::String(name),
                    Value::String(role),
                    Value::String(title),
                ],
            ) => Ok((
                AccountName::parse(name).map_err(|e| decode(format!("community role: {e}")))?,
                role.parse().map_err(|e: String| decode(e))?,
                title.clone(),
            )),
            _ => Err(decode(format!(
                "a community role row must be [account, role, title], got {}",
                truncate(&row.to_string(), 80)
            ))),
        })
        .collect()
}

/// One row of `bridge.list_subscribers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscriber {
    pub account: AccountName,
    pub role: CommunityRole,
    /// The role title, `null` on the wire when none was set.
    pub title: Option<String>,
    /// When the account subscribed.
    pub since: UnixTime,
}

/// The `result` of `bridge.list_subscribers`: `[account, role, title|null,
/// time]` rows (time with `T` or a space, both occur).
pub fn decode_subscribers(v: &Value) -> Result<Vec<Subscriber>, FactError> {
    let rows = v
        .as_array()
        .ok_or_else(|| decode(format!("subscribers must be an array, got {}", kind(v))))?;
    rows.iter()
        .map(|row| match row.as_array().map(Vec::as_slice) {
            Some(
                [
                    Value::String(name),
                    Value::String(role),
                    title,
                    Value::String(since),
                ],
            ) if title.is_null() || title.is_string() => Ok(Subscriber {
                account: AccountName::parse(name)
                    .map_err(|e| decode(format!("subscriber: {e}")))?,
                role: role.parse().map_err(|e: String| decode(e))?,
                title: title.as_str().map(str::to_string),
                since: parse_chain_time(since)?,
            }),
            _ => Err(decode(format!(
                "a subscriber row must be [account, role, title, time], got {}",
                truncate(&row.to_string(), 80)
            ))),
        })
        .collect()
}

/// The account's facts (`condenser_api.get_accounts`).
pub async fn fetch_account(
    rpc: &dyn RpcCall,
    name: &AccountName,
) -> Result<AccountFacts, FactError> {
    let result = rpc
        .call("condenser_api.get_accounts", json!([[name.as_str()]]))
        .await?;
    decode_get_accounts(&result, name)
}

/// The chain's current VESTS → STEEM/HIVE ratio.
pub async fn fetch_vesting_ratio(
    rpc: &dyn RpcCall,
    chain: ChainName,
) -> Result<VestingRatio, FactError> {
    let result = rpc
        .call("condenser_api.get_dynamic_global_properties", json!([]))
        .await?;
    decode_vesting_ratio(&result, chain)
}

/// Whether `follower` follows / mutes `following` (the call per chain is
/// in the module doc).
pub async fn fetch_relationship(
    rpc: &dyn RpcCall,
    chain: ChainName,
    follower: &AccountName,
    following: &AccountName,
) -> Result<Relationship, FactError> {
    match chain {
        ChainName::Steem => {
            let result = rpc
                .call(
                    "bridge.get_profile",
                    json!({"account": following.as_str(), "observer": follower.as_str()}),
                )
                .await?;
            decode_profile_relationship(&result, following)
        }
        ChainName::Hive => {
            let result = rpc
                .call(
                    "bridge.get_relationship_between_accounts",
                    json!({"account1": follower.as_str(), "account2": following.as_str()}),
                )
                .await?;
            decode_relationship(&result)
        }
    }
}

/// `observer`'s role and subscription in `community` (same call on both
/// chains). A node error naming the community (steemit/hivemind asserts
/// "community not found", Hive's says "Community … does not exist") is
/// [`FactError::NoSuchCommunity`]; other node errors stay
/// [`FactError::Rpc`].
pub async fn fetch_community(
    rpc: &dyn RpcCall,
    chain: ChainName,
    community: &CommunityName,
    observer: &AccountName,
) -> Result<CommunityFacts, FactError> {
    let _ = chain; // The same method and shape on both chains (module doc).
    let answer = rpc
        .call(
            "bridge.get_community",
            json!({"name": community.as_str(), "observer": observer.as_str()}),
        )
        .await;
    match answer {
        Ok(result) => decode_community(&result, community),
        Err(RpcError::Node { code, message })
            if message.to_ascii_lowercase().contains("community") =>
        {
            Err(FactError::NoSuchCommunity(format!(
                "{community} (node error {code}: {})",
                truncate(&message, 120)
            )))
        }
        Err(e) => Err(FactError::Rpc(e)),
    }
}

/// The policy conditions this module answers (issue 15).
pub const CONDITIONS: [&str; 8] = [
    "account_age",
    "reputation",
    "stake",
    "witness_vote",
    "follows",
    "followed_by",
    "muted_by",
    "community",
];

/// Conditions a chain cannot answer, with the reason: none today. Both
/// chains' API nodes serve a source for every condition in [`CONDITIONS`]
/// (module doc table). A row belongs here when a chain lacks a method.
const UNSUPPORTED: &[(ChainName, &str, &str)] = &[];

/// Why `chain` cannot answer `condition`, if it cannot (for `steemgate
/// check`). A condition this module does not know (`accounts`, `all`, …)
/// is not a chain fact and gets `None`: naming unknown conditions is the
/// config checker's job.
pub fn unsupported(chain: ChainName, condition: &str) -> Option<&'static str> {
    UNSUPPORTED
        .iter()
        .find(|(c, name, _)| *c == chain && *name == condition)
        .map(|(_, _, why)| *why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vests_parse_both_forms() {
        assert_eq!(
            Vests::parse_legacy("117295.640891 VESTS").unwrap(),
            Vests(117_295_640_891)
        );
        assert_eq!(
            Vests::from_json(
                &json!({"amount": "8629626789290", "precision": 6, "nai": "@@000000037"})
            )
            .unwrap(),
            Vests(8_629_626_789_290)
        );
        for bad in [
            "1.00000 VESTS",
            "1.0000000 VESTS",
            "1.000000 STEEM",
            "-1.000000 VESTS",
            " 1.000000 VESTS",
            "1.000000VESTS",
            "99999999999999999999.000000 VESTS",
            "",
        ] {
            assert!(Vests::parse_legacy(bad).is_err(), "{bad}");
        }
        assert_eq!(Vests(1_500_000).to_string(), "1.500000 VESTS");
    }

    #[test]
    fn names_and_roles_through_serde() {
        let name: CommunityName = serde_json::from_value(json!(" hive-123456 ")).unwrap();
        assert_eq!(name.as_str(), "hive-123456");
        assert_eq!(serde_json::to_value(&name).unwrap(), json!("hive-123456"));
        let error = serde_json::from_value::<CommunityName>(json!("gtg")).unwrap_err();
        assert!(
            error.to_string().contains("not a community name"),
            "{error}"
        );
        assert!(serde_json::from_value::<CommunityName>(json!(5)).is_err());
        let role: CommunityRole = serde_json::from_value(json!("mod")).unwrap();
        assert_eq!(role, CommunityRole::Mod);
        assert_eq!(serde_json::to_value(role).unwrap(), json!("mod"));
        assert!(serde_json::from_value::<CommunityRole>(json!("moderator")).is_err());
    }

    #[test]
    fn community_names() {
        for ok in ["hive-123456", "hive-10000", "hive-3999999"] {
            assert_eq!(CommunityName::parse(ok).unwrap().as_str(), ok);
        }
        for bad in [
            "hive-1234",
            "hive-12345678",
            "hive-423456",
            "Hive-123456",
            "hive-12a456",
            "steem-123456",
            "",
        ] {
            assert!(CommunityName::parse(bad).is_err(), "{bad}");
        }
    }
}
