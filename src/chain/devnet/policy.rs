//! The devnet's policy data: account facts (age, reputation, stake,
//! witness votes, proxy), a community with roles and subscribers, the
//! `bridge.get_community`/`get_community_context` answers, and the
//! `devnet.*` methods that change them at runtime.
//!
//! Why: access policies (issue 15) decide on these facts, and the demo
//! and tests must show a visitor being refused, changing something on the
//! (simulated) chain, and being let in, without any network. Answers keep
//! the exact shapes of the recorded hivemind answers in
//! `tests/fixtures/chain-policy/`; changes show in the next answer (no
//! block is needed, as hivemind reflects a subscribe within a block or
//! two).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::server::RpcFailure;
use super::{ChainState, DEVNET_WITNESS, Devnet, DevnetError, SimAccount, format_chain_time};
use crate::chain::ChainName;
use crate::chain::account::AccountName;
use crate::chain::facts::{CommunityName, CommunityRole, Vests};
use crate::clock::UnixTime;

/// The demo community.
pub const DEMO_COMMUNITY: &str = "hive-100001";
/// Its title.
pub const DEMO_COMMUNITY_TITLE: &str = "Quiet Readers";
/// VESTS a new devnet account holds (1000 VESTS ≈ 0.55 SP/HP).
pub(super) const DEFAULT_VESTS_MICRO: u64 = 1_000 * MICRO;
/// Most witnesses one account may vote for (both chains).
const MAX_WITNESS_VOTES: usize = 30;
const MICRO: u64 = 1_000_000;
const DAY: u64 = 86_400;

/// A simulated community (hivemind's view of it).
#[derive(Clone, Debug)]
pub(super) struct SimCommunity {
    id: u64,
    title: String,
    about: String,
    created: UnixTime,
    /// Accounts with a role other than guest, with their role title.
    roles: BTreeMap<String, (CommunityRole, String)>,
    /// Subscribers and when they subscribed.
    subscribers: BTreeMap<String, UnixTime>,
}

/// Changes to an account's policy facts (`devnet.set_account`); `None`
/// leaves a fact as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub reputation: Option<i64>,
    pub vesting_shares: Option<Vests>,
    pub delegated: Option<Vests>,
    pub received: Option<Vests>,
    pub created: Option<UnixTime>,
    /// `Some(None)` clears the proxy.
    pub proxy: Option<Option<String>>,
}

/// Parses VESTS as people type them: `"1000"`, `"1000.5"`,
/// `"1000.500000 VESTS"` (at most 6 decimals).
pub fn parse_vests(raw: &str) -> Result<Vests, DevnetError> {
    let bad = || {
        DevnetError::InvalidFact(format!(
            "{raw:?} is not an amount of VESTS (like \"1000.000000 VESTS\" or \"1000\")"
        ))
    };
    let number = raw.trim();
    let number = number.strip_suffix("VESTS").unwrap_or(number).trim_end();
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty()
        || frac.len() > 6
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let int: u64 = int.parse().map_err(|_| bad())?;
    let frac: u64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    int.checked_mul(MICRO)
        .and_then(|v| v.checked_add(frac))
        .map(Vests)
        .ok_or_else(bad)
}

fn account_name(raw: &str) -> Result<AccountName, DevnetError> {
    AccountName::parse(raw).map_err(|source| DevnetError::InvalidAccount {
        name: raw.to_string(),
        source,
    })
}

fn community_name(raw: &str) -> Result<CommunityName, DevnetError> {
    CommunityName::parse(raw).map_err(DevnetError::InvalidFact)
}

impl ChainState {
    fn known_account(&mut self, raw: &str) -> Result<(String, &mut SimAccount), DevnetError> {
        let name = account_name(raw)?.as_str().to_string();
        match self.accounts.get_mut(&name) {
            Some(account) => Ok((name, account)),
            None => Err(DevnetError::UnknownAccount(name)),
        }
    }

    fn community_mut(&mut self, raw: &str) -> Result<&mut SimCommunity, DevnetError> {
        let name = community_name(raw)?;
        self.communities
            .get_mut(name.as_str())
            .ok_or_else(|| DevnetError::UnknownCommunity(name.to_string()))
    }

    fn now(&self) -> UnixTime {
        crate::clock::now_unix().max(self.head_time)
    }
}

impl Devnet {
    /// `account` subscribes to `community` (no-op if it already is).
    pub fn subscribe(&self, account: &str, community: &str) -> Result<(), DevnetError> {
        let mut state = self.lock();
        let now = state.now();
        let (name, _) = state.known_account(account)?;
        state
            .community_mut(community)?
            .subscribers
            .entry(name)
            .or_insert(now);
        Ok(())
    }

    /// `account` leaves `community` (no-op if it was not subscribed). Its
    /// role, if any, stays, as on chain.
    pub fn unsubscribe(&self, account: &str, community: &str) -> Result<(), DevnetError> {
        let mut state = self.lock();
        let (name, _) = state.known_account(account)?;
        state.community_mut(community)?.subscribers.remove(&name);
        Ok(())
    }

    /// Gives `account` a role in `community` (`guest` removes its role).
    pub fn set_role(&self, community: &str, account: &str, role: &str) -> Result<(), DevnetError> {
        let role: CommunityRole = role.parse().map_err(DevnetError::InvalidFact)?;
        let mut state = self.lock();
        let (name, _) = state.known_account(account)?;
        let community = state.community_mut(community)?;
        if role == CommunityRole::Guest {
            community.roles.remove(&name);
        } else {
            let title = community
                .roles
                .get(&name)
                .map(|(_, title)| title.clone())
                .unwrap_or_default();
            community.roles.insert(name, (role, title));
        }
        Ok(())
    }

    /// Changes an account's policy facts.
    pub fn set_account(&self, account: &str, update: AccountUpdate) -> Result<(), DevnetError> {
        let proxy = match &update.proxy {
            Some(Some(raw)) if !raw.is_empty() => Some(Some(account_name(raw)?.to_string())),
            Some(_) => Some(None),
            None => None,
        };
        let mut state = self.lock();
        if let Some(Some(proxy)) = &proxy
            && !state.accounts.contains_key(proxy)
        {
            return Err(DevnetError::UnknownAccount(proxy.clone()));
        }
        let (name, sim) = state.known_account(account)?;
        if let Some(Some(proxy)) = &proxy
            && *proxy == name
        {
            return Err(DevnetError::InvalidFact(
                "an account cannot proxy its witness votes to itself".into(),
            ));
        }
        if let Some(reputation) = update.reputation {
            sim.reputation_raw = reputation;
        }
        if let Some(vests) = update.vesting_shares {
            sim.vesting_micro = vests.micro();
        }
        if let Some(vests) = update.delegated {
            sim.delegated_micro = vests.micro();
        }
        if let Some(vests) = update.received {
            sim.received_micro = vests.micro();
        }
        if let Some(created) = update.created {
            sim.created = created;
        }
        if let Some(proxy) = proxy {
            // Setting a proxy clears the account's own votes, as on chain.
            if proxy.is_some() {
                sim.witness_votes.clear();
            }
            sim.proxy = proxy;
        }
        Ok(())
    }

    /// `account` votes for (`approve`) or unvotes `witness`, as
    /// `account_witness_vote` does: refused while the account has a proxy
    /// or beyond 30 votes.
    pub fn witness_vote(
        &self,
        account: &str,
        witness: &str,
        approve: bool,
    ) -> Result<(), DevnetError> {
        let mut state = self.lock();
        let (witness, _) = state.known_account(witness)?;
        let (_, sim) = state.known_account(account)?;
        if sim.proxy.is_some() {
            return Err(DevnetError::InvalidFact(
                "a proxy is set: clear it before voting for a witness".into(),
            ));
        }
        if approve {
            if !sim.witness_votes.contains(&witness) && sim.witness_votes.len() >= MAX_WITNESS_VOTES
            {
                return Err(DevnetError::InvalidFact(format!(
                    "an account may vote for at most {MAX_WITNESS_VOTES} witnesses"
                )));
            }
            sim.witness_votes.insert(witness);
        } else {
            sim.witness_votes.remove(&witness);
        }
        Ok(())
    }
}

/// One seeded account's facts: name, creation time (`None`: as `seed`
/// made it), raw reputation, own/delegated/received whole VESTS, witness
/// votes, proxy.
type SeedFacts = (
    &'static str,
    Option<UnixTime>,
    i64,
    [u64; 3],
    &'static [&'static str],
    Option<&'static str>,
);

/// The policy facts of the seeded accounts (see `SEEDED_ACCOUNTS`), and
/// the demo community. Runs after the named accounts of `seed` exist.
pub(super) fn seed(state: &mut ChainState, now: UnixTime) {
    // 2016-07-01: an early account.
    const EARLY: UnixTime = 1_467_331_200;
    for (name, created) in [
        ("newbie", now.saturating_sub(2 * DAY)),
        ("spammer", now.saturating_sub(100 * DAY)),
        (DEVNET_WITNESS, EARLY),
    ] {
        state.ensure_account(name, created);
    }
    // (account, created, raw reputation, own / delegated / received VESTS,
    // witness votes, proxy). Scores: 2.2e12 → 55.1, 3e13 → 65.3,
    // 1.67e11 → 45.0, 1.3e10 → 35.0, 3.6e12 → 57.0, −1.2e11 → 6.3.
    // 1,084,316 VESTS ≈ 600 SP at the devnet's Steem ratio (553.34 SP per
    // million VESTS).
    let facts: [SeedFacts; 8] = [
        (
            super::seed::DEMO_ACCOUNT,
            Some(now.saturating_sub(730 * DAY)),
            2_200_000_000_000,
            [1_084_316, 0, 0],
            &[DEVNET_WITNESS],
            None,
        ),
        (
            "alice",
            Some(EARLY + 30 * DAY),
            30_000_000_000_000,
            [18_072_000, 0, 0],
            &[],
            Some(super::seed::DEMO_ACCOUNT),
        ),
        (
            "bob",
            None,
            167_000_000_000,
            [180_720, 50_000, 0],
            &[],
            None,
        ),
        (
            "carol",
            None,
            13_000_000_000,
            [9_036, 0, 50_000],
            &[DEVNET_WITNESS],
            None,
        ),
        (
            super::seed::GATEWAY_ACCOUNT,
            None,
            0,
            [1_000, 0, 0],
            &[],
            None,
        ),
        ("newbie", None, 0, [1_000, 0, 0], &[], None),
        ("spammer", None, -120_000_000_000, [1_000, 0, 0], &[], None),
        (
            DEVNET_WITNESS,
            None,
            3_600_000_000_000,
            [1_807_200, 0, 0],
            &[DEVNET_WITNESS],
            None,
        ),
    ];
    for (name, created, reputation, [own, delegated, received], votes, proxy) in facts {
        if let Some(account) = state.accounts.get_mut(name) {
            if let Some(created) = created {
                account.created = created;
            }
            account.reputation_raw = reputation;
            account.vesting_micro = own * MICRO;
            account.delegated_micro = delegated * MICRO;
            account.received_micro = received * MICRO;
            account.witness_votes = votes.iter().map(|w| w.to_string()).collect();
            account.proxy = proxy.map(str::to_string);
        }
    }
    let created = now.saturating_sub(200 * DAY);
    let role = |role, title: &str| (role, title.to_string());
    state.communities.insert(
        DEMO_COMMUNITY.to_string(),
        SimCommunity {
            id: 100_001,
            title: DEMO_COMMUNITY_TITLE.to_string(),
            about: "SIMULATED devnet community for the steemgate demo.".to_string(),
            created,
            roles: BTreeMap::from([
                (
                    super::seed::GATEWAY_ACCOUNT.to_string(),
                    role(CommunityRole::Owner, ""),
                ),
                ("alice".to_string(), role(CommunityRole::Admin, "Founder")),
                ("bob".to_string(), role(CommunityRole::Mod, "")),
                ("carol".to_string(), role(CommunityRole::Member, "")),
            ]),
            subscribers: BTreeMap::from([
                ("alice".to_string(), created),
                ("bob".to_string(), created + DAY),
                ("carol".to_string(), created + 2 * DAY),
            ]),
        },
    );
}

/// The policy fields of one `condenser_api.get_accounts` entry, merged
/// into the account shape by `shapes::account`.
pub(super) fn account_fields(account: &SimAccount) -> Value {
    let vests = |micro: u64| Vests(micro).to_string();
    json!({
        // Real nodes send the raw reputation as a string.
        "reputation": account.reputation_raw.to_string(),
        "vesting_shares": vests(account.vesting_micro),
        "delegated_vesting_shares": vests(account.delegated_micro),
        "received_vesting_shares": vests(account.received_micro),
        "witness_votes": account.witness_votes.iter().collect::<Vec<_>>(),
        "witnesses_voted_for": account.witness_votes.len(),
        "proxy": account.proxy.as_deref().unwrap_or(""),
    })
}

/// hivemind's time format in community answers (`2016-09-15 18:01:30`).
fn hivemind_time(at: UnixTime) -> String {
    format_chain_time(at).replacen('T', " ", 1)
}

/// The error a node gives for a community name that names no community
/// (Hive's hivemind: `find_community_id` → "Community … does not exist" as
/// invalid parameters; steemit/hivemind asserts "community not found",
/// which its jsonrpcserver 4 reports as a server error).
fn no_such_community(chain: ChainName, name: &str) -> RpcFailure {
    match chain {
        ChainName::Hive => RpcFailure::invalid_params(format!("Community {name} does not exist")),
        ChainName::Steem => RpcFailure {
            code: -32000,
            message: "Server error".into(),
            data: Some(json!("AssertionError: community not found")),
        },
    }
}

fn no_such_account(chain: ChainName, name: &str) -> RpcFailure {
    match chain {
        ChainName::Hive => RpcFailure::invalid_params(format!("Account {name} does not exist")),
        ChainName::Steem => RpcFailure {
            code: -32000,
            message: "Server error".into(),
            data: Some(json!(format!(
                "AssertionError: account not found: `{name}`"
            ))),
        },
    }
}

/// A community name parameter: invalid names get hivemind's own message.
fn community_param<'a>(params: &'a Value, key: &str, index: usize) -> Result<&'a str, RpcFailure> {
    let raw = super::server::string_param(params, key, index, true)?.unwrap_or_default();
    if CommunityName::parse(raw).is_err() {
        return Err(RpcFailure::invalid_params(
            "given community name is not valid",
        ));
    }
    Ok(raw)
}

/// An account name parameter that must name a devnet account.
fn account_param(
    state: &ChainState,
    params: &Value,
    key: &str,
    index: usize,
    required: bool,
) -> Result<Option<String>, RpcFailure> {
    let Some(raw) = super::server::string_param(params, key, index, required)? else {
        return Ok(None);
    };
    let name = AccountName::parse(raw)
        .map_err(|e| RpcFailure::invalid_params(format!("invalid account name {raw:?}: {e}")))?;
    if !state.accounts.contains_key(name.as_str()) {
        return Err(no_such_account(state.chain, name.as_str()));
    }
    Ok(Some(name.as_str().to_string()))
}

/// `{role, subscribed, title}` of `account` in `community`.
fn context(community: &SimCommunity, account: &str) -> Value {
    let (role, title) = community
        .roles
        .get(account)
        .map_or((CommunityRole::Guest, ""), |(role, title)| {
            (*role, title.as_str())
        });
    json!({
        "role": role.as_str(),
        "subscribed": community.subscribers.contains_key(account),
        "title": title,
    })
}

/// The `bridge.*` methods of this module: `get_community`,
/// `get_community_context`; `None` for other bridge methods.
pub(super) fn bridge(
    devnet: &Devnet,
    method: &str,
    params: &Value,
) -> Option<Result<Value, RpcFailure>> {
    let answer = match method {
        "get_community" => get_community(devnet, params),
        "get_community_context" => get_community_context(devnet, params),
        _ => return None,
    };
    Some(answer)
}

fn get_community(devnet: &Devnet, params: &Value) -> Result<Value, RpcFailure> {
    let name = community_param(params, "name", 0)?;
    let state = devnet.lock();
    let observer = account_param(&state, params, "observer", 1, false)?;
    let Some(community) = state.communities.get(name) else {
        return Err(no_such_community(state.chain, name));
    };
    // hivemind's team: owner, admins and mods, highest role first.
    let mut team: Vec<(&String, &(CommunityRole, String))> = community
        .roles
        .iter()
        .filter(|(_, (role, _))| *role >= CommunityRole::Mod)
        .collect();
    team.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    let team: Vec<Value> = team
        .into_iter()
        .map(|(name, (role, title))| json!([name, role.as_str(), title]))
        .collect();
    let context = observer.map_or_else(|| json!({}), |observer| context(community, &observer));
    Ok(json!({
        "about": community.about,
        "context": context,
        "created_at": hivemind_time(community.created),
        "description": "",
        "flag_text": "",
        "id": community.id,
        "is_nsfw": false,
        "lang": "en",
        "name": name,
        "num_authors": 0,
        "num_pending": 0,
        "settings": {},
        "subscribers": community.subscribers.len(),
        "sum_pending": 0,
        "team": team,
        "title": community.title,
        "type_id": 1,
    }))
}

fn get_community_context(devnet: &Devnet, params: &Value) -> Result<Value, RpcFailure> {
    let name = community_param(params, "name", 0)?;
    let state = devnet.lock();
    let account = account_param(&state, params, "account", 1, true)?.unwrap_or_default();
    let Some(community) = state.communities.get(name) else {
        return Err(no_such_community(state.chain, name));
    };
    Ok(context(community, &account))
}

/// The `devnet.*` methods of this module; `None` for other methods.
pub(super) fn simulation(
    devnet: &Devnet,
    method: &str,
    params: &Value,
) -> Option<Result<Value, RpcFailure>> {
    use super::server::{param, string_param};
    let required = |key: &str, index: usize| -> Result<&str, RpcFailure> {
        Ok(string_param(params, key, index, true)?.unwrap_or_default())
    };
    let answer = (|| match method {
        "subscribe" | "unsubscribe" => {
            let account = required("account", 0)?;
            let community = required("community", 1)?;
            if method == "subscribe" {
                devnet.subscribe(account, community)?;
            } else {
                devnet.unsubscribe(account, community)?;
            }
            Ok(json!({"subscribed": method == "subscribe", "simulated": true}))
        }
        "set_role" => {
            let community = required("community", 0)?;
            let account = required("account", 1)?;
            let role = required("role", 2)?;
            devnet.set_role(community, account, role)?;
            Ok(json!({"role": role, "simulated": true}))
        }
        "set_account" => {
            let account = required("account", 0)?;
            let update = account_update(params)?;
            devnet.set_account(account, update)?;
            Ok(json!({"simulated": true}))
        }
        "witness_vote" => {
            let account = required("account", 0)?;
            let witness = required("witness", 1)?;
            let approve = match param(params, "approve", 2) {
                None => true,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => return Err(RpcFailure::invalid_params("approve must be a boolean")),
            };
            devnet.witness_vote(account, witness, approve)?;
            Ok(json!({"approve": approve, "simulated": true}))
        }
        _ => Err(RpcFailure::method_not_found(method)),
    })();
    match answer {
        Err(failure) if failure.code == -32601 => None,
        answer => Some(answer),
    }
}

/// The optional fields of `devnet.set_account` (named parameters only).
fn account_update(params: &Value) -> Result<AccountUpdate, RpcFailure> {
    use super::server::param;
    const KEYS: [&str; 7] = [
        "account",
        "reputation",
        "vesting_shares",
        "delegated",
        "received",
        "created",
        "proxy",
    ];
    let Value::Object(map) = params else {
        return Err(RpcFailure::invalid_params(
            "set_account expects named parameters",
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(RpcFailure::invalid_params(format!(
            "unknown parameter {unknown:?} (known: {})",
            KEYS.join(", ")
        )));
    }
    let vests = |key: &str| -> Result<Option<Vests>, RpcFailure> {
        match param(params, key, usize::MAX) {
            None => Ok(None),
            Some(Value::String(raw)) => Ok(Some(parse_vests(raw)?)),
            Some(_) => Err(RpcFailure::invalid_params(format!(
                "{key} must be a string such as \"1000.000000 VESTS\""
            ))),
        }
    };
    let reputation = match param(params, "reputation", usize::MAX) {
        None => None,
        Some(value) => Some(
            crate::chain::facts::decode_reputation(value)
                .map_err(|e| RpcFailure::invalid_params(format!("reputation: {e}")))?,
        ),
    };
    let created = match param(params, "created", usize::MAX) {
        None => None,
        Some(Value::String(raw)) => Some(super::parse_chain_time(raw)?),
        Some(_) => {
            return Err(RpcFailure::invalid_params(
                "created must be a time such as \"2024-01-31T12:00:00\"",
            ));
        }
    };
    let proxy = match map.get("proxy") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(raw)) => Some(Some(raw.clone())),
        Some(_) => {
            return Err(RpcFailure::invalid_params(
                "proxy must be an account name, or \"\" to clear it",
            ));
        }
    };
    Ok(AccountUpdate {
        reputation,
        vesting_shares: vests("vesting_shares")?,
        delegated: vests("delegated")?,
        received: vests("received")?,
        created,
        proxy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::devnet::DevnetOptions;
    use crate::chain::facts::reputation_score;

    fn seeded() -> Devnet {
        Devnet::new(DevnetOptions::default())
    }

    #[test]
    fn vests_as_people_type_them() {
        assert_eq!(parse_vests("1000").unwrap(), Vests(1_000_000_000));
        assert_eq!(parse_vests("1.5").unwrap(), Vests(1_500_000));
        assert_eq!(parse_vests("2.000001 VESTS").unwrap(), Vests(2_000_001));
        for bad in [
            "",
            "VESTS",
            "1.0000001",
            "-1",
            "1e3",
            "1,5",
            "99999999999999999999",
        ] {
            assert!(parse_vests(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeded_scores_are_as_documented() {
        let net = seeded();
        let state = net.lock();
        let score = |name: &str| reputation_score(state.accounts[name].reputation_raw);
        assert!((score("demo") - 55.0).abs() < 0.5);
        assert!((score("alice") - 65.0).abs() < 0.5);
        assert_eq!(score("newbie"), 25.0);
        assert!(score("spammer") < 25.0);
        assert_eq!(state.accounts["alice"].proxy.as_deref(), Some("demo"));
        assert!(
            state.accounts["demo"]
                .witness_votes
                .contains(DEVNET_WITNESS)
        );
    }

    #[test]
    fn runtime_changes_are_checked() {
        let net = seeded();
        assert!(matches!(
            net.subscribe("nobody", DEMO_COMMUNITY),
            Err(DevnetError::UnknownAccount(_))
        ));
        assert!(matches!(
            net.subscribe("demo", "hive-199999"),
            Err(DevnetError::UnknownCommunity(_))
        ));
        assert!(matches!(
            net.subscribe("demo", "not-a-community"),
            Err(DevnetError::InvalidFact(_))
        ));
        assert!(matches!(
            net.set_role(DEMO_COMMUNITY, "demo", "king"),
            Err(DevnetError::InvalidFact(_))
        ));
        // alice has a proxy: direct votes are refused.
        assert!(net.witness_vote("alice", "bob", true).is_err());
        net.set_account(
            "alice",
            AccountUpdate {
                proxy: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
        net.witness_vote("alice", "bob", true).unwrap();
        assert!(net.lock().accounts["alice"].witness_votes.contains("bob"));
        assert!(
            net.set_account(
                "demo",
                AccountUpdate {
                    proxy: Some(Some("demo".into())),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
