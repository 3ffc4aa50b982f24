//! Node answers read as policy facts (`chain::facts`): accounts, the
//! vesting ratio, relationships, communities, role and subscriber lists,
//! reputations, times and names never panic on any JSON, and what decodes
//! is consistent: VESTS print back to the same value, the effective stake
//! is own − delegated + received clamped at 0, scores and powers are
//! finite, and roles and community names round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use steemgate::chain::block::rpc_result;
use steemgate::chain::facts::{
    CommunityName, CommunityRole, Vests, decode_account, decode_account_reputations,
    decode_community, decode_community_context, decode_community_roles, decode_get_accounts,
    decode_profile_relationship, decode_relationship, decode_reputation, decode_subscribers,
    decode_vesting_ratio, parse_chain_time, reputation_score,
};
use steemgate::chain::{AccountName, ChainName};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let value = match rpc_result(&envelope) {
        Ok(result) => result,
        Err(_) => &envelope,
    };
    // The first account object, whether `value` is a list or one account.
    let first = value.get(0).unwrap_or(value);
    if let Ok(facts) = decode_account(first) {
        let effective = i128::from(facts.vesting_shares.0)
            - i128::from(facts.delegated_vesting_shares.0)
            + i128::from(facts.received_vesting_shares.0);
        let clamped = u64::try_from(effective.max(0)).unwrap_or(u64::MAX);
        assert_eq!(facts.effective_vests(), Vests(clamped));
        assert!(facts.reputation_score().is_finite());
        for vests in [facts.vesting_shares, facts.delegated_vesting_shares] {
            assert_eq!(Vests::parse_legacy(&vests.to_string()).ok(), Some(vests));
        }
        assert_eq!(
            decode_get_accounts(&Value::Array(vec![first.clone()]), &facts.name).ok(),
            Some(facts.clone())
        );
        let _ = decode_profile_relationship(value, &facts.name);
    }
    for chain in [ChainName::Steem, ChainName::Hive] {
        if let Ok(ratio) = decode_vesting_ratio(value, chain) {
            assert_eq!(ratio.power(Vests::ZERO), 0.0);
            let small = ratio.power(Vests(1_000_000));
            let large = ratio.power(Vests(u64::MAX));
            assert!(small.is_finite() && large.is_finite() && small <= large);
        }
    }
    let _ = decode_relationship(value);
    let _ = decode_community_context(value);
    if let Ok(roles) = decode_community_roles(value) {
        for (_, role, _) in roles {
            assert_eq!(role.as_str().parse::<CommunityRole>(), Ok(role));
        }
    }
    let _ = decode_subscribers(value);
    let _ = decode_account_reputations(value);
    if let Ok(raw) = decode_reputation(value) {
        assert!(reputation_score(raw).is_finite());
    }
    if let Some(name) = value.get("name").and_then(Value::as_str)
        && let Ok(community) = CommunityName::parse(name)
    {
        assert_eq!(community.as_str(), name);
        let _ = decode_community(value, &community);
    }
    if let Value::String(text) = value {
        let _ = parse_chain_time(text);
        let _ = Vests::parse_legacy(text);
        if let Ok(community) = CommunityName::parse(text) {
            assert_eq!(AccountName::parse(text).as_ref(), Ok(community.account()));
        }
    }
});
