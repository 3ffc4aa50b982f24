//! The chain facts policies decide on (issue 15), pinned against recorded
//! node answers in `tests/fixtures/chain-policy/` (see its SOURCES.md):
//! dates, reputation as string and number, stake through both chains'
//! vesting ratios, relationships, community roles and subscriptions; and
//! that the fetchers ask each chain the right method and refuse garbage.
//!
//! Why: these values decide who may enter a route. Each conversion must be
//! the one the front-ends show, and an answer we do not understand must be
//! an error (the policy then fails closed), never a default.

mod support;

use std::sync::Mutex;

use serde_json::{Value, json};
use steemgate::chain::block::rpc_result;
use steemgate::chain::facts::{
    self, AccountFacts, CommunityName, CommunityRole, FactError, Relationship, Vests,
    decode_account, decode_account_reputations, decode_community, decode_community_context,
    decode_community_roles, decode_get_accounts, decode_profile_relationship, decode_relationship,
    decode_reputation, decode_subscribers, decode_vesting_ratio, parse_chain_time,
    reputation_score,
};
use steemgate::chain::{AccountName, ChainName, RpcCall, RpcError};

fn load(name: &str) -> Value {
    let text = support::fixture(&format!("chain-policy/{name}"));
    let envelope: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    rpc_result(&envelope).unwrap().clone()
}

fn name(raw: &str) -> AccountName {
    AccountName::parse(raw).unwrap()
}

fn community(raw: &str) -> CommunityName {
    CommunityName::parse(raw).unwrap()
}

fn account(file: &str, who: &str) -> AccountFacts {
    decode_get_accounts(&load(file), &name(who)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[test]
fn steem_account_2022_all_fields() {
    let inertia = account(
        "steem-condenser_api.get_accounts-inertia-2022-07-30.json",
        "inertia",
    );
    assert_eq!(inertia.name, name("inertia"));
    // "2016-07-13T06:44:33" (no zone: UTC).
    assert_eq!(inertia.created, 1_468_392_273);
    // Sent as the string "227525885010794".
    assert_eq!(inertia.reputation_raw, 227_525_885_010_794);
    // log10(227525885010794) = 14.35703; (14.35703 − 9) × 9 + 25 = 73.213.
    assert!(close(inertia.reputation_score(), 73.2133, 1e-3));
    assert_eq!(inertia.vesting_shares, Vests(117_295_640_891));
    assert_eq!(inertia.delegated_vesting_shares, Vests(93_867_151_911));
    assert_eq!(inertia.received_vesting_shares, Vests(2_035_812_208_844));
    // 117295.640891 − 93867.151911 + 2035812.208844 = 2059240.697824 VESTS.
    assert_eq!(inertia.effective_vests(), Vests(2_059_240_697_824));
    assert_eq!(inertia.witness_votes.len(), 30);
    assert_eq!(inertia.witness_votes[0], name("abit"));
    assert_eq!(inertia.proxy, None);
}

#[test]
fn hive_accounts_2022_and_block_5m() {
    let full = account(
        "hive-condenser_api.get_accounts-fullnodeupdate-2022-07-30.json",
        "fullnodeupdate",
    );
    assert_eq!(full.created, 1_527_763_581); // 2018-05-31T10:46:21
    assert_eq!(full.reputation_raw, 66_739_978_115_904);
    // 3163608.831672 − 198556.066920 + 8200.502706 = 2973253.267458 VESTS.
    assert_eq!(full.effective_vests(), Vests(2_973_253_267_458));
    assert!(full.witness_votes.is_empty());
    assert_eq!(full.proxy, Some(name("holger80")));

    let ned = account("hive-condenser_api.get_accounts-ned-2022-07-30.json", "ned");
    assert_eq!(ned.created, 1_459_434_105); // 2016-03-31T14:21:45
    assert_eq!(ned.delegated_vesting_shares, Vests::ZERO);
    assert_eq!(ned.effective_vests(), Vests(23_385_678_073_471));

    let gtg = account("hive-condenser_api.get_accounts-gtg-block5M.json", "gtg");
    assert_eq!(gtg.created, 1_467_307_338); // 2016-06-30T17:22:18
    assert_eq!(gtg.reputation_raw, 3_924_899_966_690);
    assert_eq!(gtg.witness_votes.len(), 20);
    assert!(gtg.witness_votes.contains(&name("gtg")));
    assert!(gtg.witness_votes.contains(&name("smooth.witness")));
    assert_eq!(gtg.proxy, None);
}

/// The score agrees with the one hivemind computes for its profiles (two
/// decimals) over the same 5M-block replay: gtg 57.34, steemit 35.01.
#[test]
fn reputation_score_matches_the_front_ends() {
    let gtg = account("hive-condenser_api.get_accounts-gtg-block5M.json", "gtg");
    let profile = load("hive-bridge.get_profile-gtg.json");
    let shown = profile["reputation"].as_f64().unwrap();
    assert_eq!(shown, 57.34);
    assert_eq!((gtg.reputation_score() * 100.0).round() / 100.0, shown);

    let steemit = decode_account_reputations(&load(
        "hive-condenser_api.get_account_reputations-steemit-limit1.json",
    ))
    .unwrap();
    assert_eq!(steemit, vec![(name("steemit"), 12_944_616_889)]);
    let shown = load("hive-bridge.get_profile-steemit.json")["reputation"]
        .as_f64()
        .unwrap();
    assert_eq!(
        (reputation_score(steemit[0].1) * 100.0).round() / 100.0,
        shown
    );

    // 0 is 25; anything up to 10^9 is 25 too; negative scores below 25.
    assert_eq!(reputation_score(0), 25.0);
    assert_eq!(reputation_score(999_999_999), 25.0);
    assert_eq!(reputation_score(-999_999_999), 25.0);
    // log10(980601486666) = 11.99149; −(11.99149 − 9) × 9 + 25 = −1.923.
    assert!(close(reputation_score(-980_601_486_666), -1.9234, 1e-3));
    assert!(reputation_score(i64::MIN).is_finite());
    assert!(reputation_score(i64::MAX).is_finite());
}

#[test]
fn reputation_as_string_number_negative_and_zero() {
    // Hivemind answers a number, the old fat node the same value as a string.
    let number = decode_account_reputations(&load(
        "hive-condenser_api.get_account_reputations-steemit-limit1.json",
    ))
    .unwrap();
    let string = decode_account_reputations(&load(
        "hive-condenser_api.get_account_reputations-steemit-limit1-fatnode.json",
    ))
    .unwrap();
    assert_eq!(number, string);

    let many = decode_account_reputations(&load(
        "hive-condenser_api.get_account_reputations-a-limit100.json",
    ))
    .unwrap();
    assert_eq!(many.len(), 100);
    let negative: Vec<_> = many.iter().filter(|(_, r)| *r < 0).collect();
    assert_eq!(negative, vec![&(name("a11at"), -980_601_486_666)]);
    assert_eq!(many.iter().filter(|(_, r)| *r == 0).count(), 93);

    // reputation_api: an object, string and number mixed in one answer.
    let mixed = decode_account_reputations(&load(
        "hive-reputation_api.get_account_reputations-gtg-trimmed.json",
    ))
    .unwrap();
    assert_eq!(mixed[0], (name("gtg"), 159_384_765_130_418));
    assert_eq!(mixed[1], (name("gtg.witnesses"), -812_428_337_593));
    assert_eq!(mixed[3], (name("gtgdevcorp"), 0));

    assert_eq!(decode_reputation(&json!("-5")).unwrap(), -5);
    assert_eq!(decode_reputation(&json!(0)).unwrap(), 0);
    for garbage in [
        json!(1.5),
        json!("1.5"),
        json!(""),
        json!("-"),
        json!("12a"),
        json!(" 12"),
        json!("99999999999999999999"),
        json!(1e300),
        json!(18446744073709551615u64),
        json!(null),
        json!(true),
        json!([1]),
    ] {
        assert!(decode_reputation(&garbage).is_err(), "{garbage}");
    }
}

#[test]
fn stake_with_both_chains_global_properties() {
    let steem = decode_vesting_ratio(
        &load("steem-condenser_api.get_dynamic_global_properties-2022-07-30.json"),
        ChainName::Steem,
    )
    .unwrap();
    assert_eq!(steem.fund_milli, 157_102_910_021);
    assert_eq!(steem.shares, Vests(283_918_139_943_616_774));
    let inertia = account(
        "steem-condenser_api.get_accounts-inertia-2022-07-30.json",
        "inertia",
    );
    // 2059240.697824 VESTS × 157102910.021 STEEM / 283918139943.616774 VESTS
    // = 1139.458 SP (effective); own 117295.640891 VESTS alone = 64.904 SP.
    assert!(close(
        steem.power(inertia.effective_vests()),
        1139.4577,
        1e-3
    ));
    assert!(close(steem.power(inertia.vesting_shares), 64.9042, 1e-3));
    // 1,000,000 VESTS ≈ 553.339 SP in July 2022.
    assert!(close(steem.power(Vests(1_000_000_000_000)), 553.3388, 1e-3));
    assert_eq!(steem.power(Vests::ZERO), 0.0);

    let hive = decode_vesting_ratio(
        &load("hive-condenser_api.get_dynamic_global_properties-2022-07-30.json"),
        ChainName::Hive,
    )
    .unwrap();
    assert_eq!(hive.fund_milli, 161_382_579_103);
    let full = account(
        "hive-condenser_api.get_accounts-fullnodeupdate-2022-07-30.json",
        "fullnodeupdate",
    );
    // 2973253.267458 VESTS × 161382579.103 HIVE / 293562877606.209599 VESTS = 1634.509 HP.
    assert!(close(hive.power(full.effective_vests()), 1634.5094, 1e-3));
    let ned = account("hive-condenser_api.get_accounts-ned-2022-07-30.json", "ned");
    // 23385678.073471 VESTS → 12855.989 HP.
    assert!(close(hive.power(ned.effective_vests()), 12855.9887, 1e-3));

    // Each chain reads its own fund field: the other chain's answer fails.
    assert!(
        decode_vesting_ratio(
            &load("steem-condenser_api.get_dynamic_global_properties-2022-07-30.json"),
            ChainName::Hive
        )
        .is_err()
    );
    assert!(
        decode_vesting_ratio(
            &load("hive-condenser_api.get_dynamic_global_properties-2022-07-30.json"),
            ChainName::Steem
        )
        .is_err()
    );
    // The largest possible stake does not overflow.
    assert!(steem.power(Vests(u64::MAX)).is_finite());
}

#[test]
fn effective_vests_saturates_at_zero() {
    let mut facts = account("hive-condenser_api.get_accounts-ned-2022-07-30.json", "ned");
    facts.vesting_shares = Vests(5);
    facts.received_vesting_shares = Vests(1);
    facts.delegated_vesting_shares = Vests(10);
    assert_eq!(facts.effective_vests(), Vests::ZERO);
    facts.vesting_shares = Vests(u64::MAX);
    facts.received_vesting_shares = Vests(u64::MAX);
    facts.delegated_vesting_shares = Vests::ZERO;
    assert_eq!(facts.effective_vests(), Vests(u64::MAX));
}

/// database_api answers VESTS as NAI objects; they decode to the same units.
#[test]
fn vests_in_nai_form() {
    let found = load("hive-database_api.find_accounts-gtg-steemit-2020.json");
    let gtg = &found["accounts"][0];
    assert_eq!(
        Vests::from_json(&gtg["received_vesting_shares"]).unwrap(),
        Vests(8_629_626_789_290)
    );
    assert_eq!(
        Vests::from_json(&json!("8629626.789290 VESTS")).unwrap(),
        Vests(8_629_626_789_290)
    );
    // find_accounts has no `reputation` and no `witness_votes`: not an
    // account answer we can use, and no default fills the gap.
    assert!(decode_account(gtg).is_err());
}

#[test]
fn relationships_hive() {
    let cases = [
        (
            "follows",
            Relationship {
                follows: true,
                ignores: false,
            },
        ),
        (
            "ignores",
            Relationship {
                follows: false,
                ignores: true,
            },
        ),
        (
            "none",
            Relationship {
                follows: false,
                ignores: false,
            },
        ),
        // alice follows hivewatchers' blacklist: not a follow, not a mute.
        (
            "follows_blacklists",
            Relationship {
                follows: false,
                ignores: false,
            },
        ),
    ];
    for (file, expected) in cases {
        let v = load(&format!(
            "hive-bridge.get_relationship_between_accounts-{file}.json"
        ));
        assert_eq!(decode_relationship(&v).unwrap(), expected, "{file}");
    }
    // A blacklist entry counts as a mute.
    let blacklisted = json!({"blacklists": true, "follows": false, "follows_blacklists": false,
        "follows_muted": false, "ignores": false});
    assert!(decode_relationship(&blacklisted).unwrap().ignores);
    for garbage in [
        json!({}),
        json!({"follows": true}),
        json!({"follows": "true", "ignores": false}),
        json!({"follows": true, "ignores": false, "blacklists": 1}),
        json!([true, false]),
        json!(null),
    ] {
        assert!(decode_relationship(&garbage).is_err(), "{garbage}");
    }
}

#[test]
fn relationships_from_profiles() {
    // Hive's get_profile with an observer (roelandp follows gtg).
    let v = load("hive-bridge.get_profile-gtg-observer-roelandp.json");
    assert_eq!(
        decode_profile_relationship(&v, &name("gtg")).unwrap(),
        Relationship {
            follows: true,
            ignores: false
        }
    );
    // Asked about someone else: refused.
    assert!(decode_profile_relationship(&v, &name("roelandp")).is_err());
    // Without an observer there is no context: an error, not "not followed".
    let plain = load("hive-bridge.get_profile-gtg.json");
    assert!(decode_profile_relationship(&plain, &name("gtg")).is_err());

    // Steem's hivemind: `muted` only when true (steemit/hivemind _follow_contexts).
    let steem = |context: Value| json!({"id": 1, "name": "gtg", "context": context});
    let none = decode_profile_relationship(&steem(json!({"followed": false})), &name("gtg"));
    assert_eq!(none.unwrap(), Relationship::default());
    let muted = decode_profile_relationship(
        &steem(json!({"followed": false, "muted": true})),
        &name("gtg"),
    );
    assert_eq!(
        muted.unwrap(),
        Relationship {
            follows: false,
            ignores: true
        }
    );
    let both = decode_profile_relationship(
        &steem(json!({"followed": true, "muted": true})),
        &name("gtg"),
    );
    assert_eq!(
        both.unwrap(),
        Relationship {
            follows: true,
            ignores: true
        }
    );
    assert!(matches!(
        decode_profile_relationship(&Value::Null, &name("gtg")),
        Err(FactError::NoSuchAccount(_))
    ));
    for garbage in [
        steem(json!({})),
        steem(json!({"followed": 1})),
        steem(json!({"followed": true, "muted": "no"})),
        steem(json!(null)),
        json!({"name": 5, "context": {"followed": true}}),
        json!("gtg"),
    ] {
        assert!(
            decode_profile_relationship(&garbage, &name("gtg")).is_err(),
            "{garbage}"
        );
    }
}

#[test]
fn communities_with_an_observer() {
    let owner = decode_community(
        &load("hive-bridge.get_community-hive-117600-observer-owner.json"),
        &community("hive-117600"),
    )
    .unwrap();
    assert_eq!(owner.title, "@hive-117600");
    assert_eq!(owner.role, CommunityRole::Owner);
    assert!(!owner.subscribed);

    let guest = decode_community(
        &load("hive-bridge.get_community-hive-171487-observer-subscribed-guest.json"),
        &community("hive-171487"),
    )
    .unwrap();
    assert_eq!(guest.title, "Banana");
    assert_eq!(guest.role, CommunityRole::Guest);
    assert!(guest.subscribed);

    // Without an observer the context is {}: undecidable, not "guest".
    let no_observer = load("hive-bridge.get_community-hive-135485.json");
    assert!(decode_community(&no_observer, &community("hive-135485")).is_err());
    // The answer names another community: refused.
    assert!(
        decode_community(
            &load("hive-bridge.get_community-hive-171487-observer-subscribed-guest.json"),
            &community("hive-117600")
        )
        .is_err()
    );
    assert!(matches!(
        decode_community(&Value::Null, &community("hive-117600")),
        Err(FactError::NoSuchCommunity(_))
    ));
    let with = |context: Value| json!({"name": "hive-117600", "title": "T", "context": context});
    for garbage in [
        with(json!({"role": "boss", "subscribed": true})),
        with(json!({"role": "guest", "subscribed": "yes"})),
        with(json!({"role": "guest"})),
        with(json!({"subscribed": false})),
        with(json!([])),
        json!({"name": "hive-117600", "context": {"role": "guest", "subscribed": false}}),
    ] {
        assert!(
            decode_community(&garbage, &community("hive-117600")).is_err(),
            "{garbage}"
        );
    }
}

#[test]
fn community_contexts() {
    let cases = [
        (
            "hive-135485-admin-with-title",
            CommunityRole::Admin,
            true,
            "Bill Gates",
        ),
        ("hive-117600-mod", CommunityRole::Mod, false, ""),
        (
            "hive-117600-guest-not-subscribed",
            CommunityRole::Guest,
            false,
            "",
        ),
    ];
    for (file, role, subscribed, title) in cases {
        let context = decode_community_context(&load(&format!(
            "hive-bridge.get_community_context-{file}.json"
        )))
        .unwrap();
        assert_eq!(context.role, role, "{file}");
        assert_eq!(context.subscribed, subscribed, "{file}");
        assert_eq!(context.title, title, "{file}");
    }
}

#[test]
fn community_role_lists_and_order() {
    let roles =
        decode_community_roles(&load("hive-bridge.list_community_roles-hive-117600.json")).unwrap();
    let names: Vec<_> = roles.iter().map(|(a, r, _)| (a.as_str(), *r)).collect();
    assert_eq!(
        names,
        vec![
            ("hive-117600", CommunityRole::Owner),
            ("abit", CommunityRole::Admin),
            ("good-karma", CommunityRole::Admin),
            ("test-safari", CommunityRole::Admin),
            ("roadscape", CommunityRole::Mod),
            ("gtg", CommunityRole::Member),
        ]
    );
    let positional = decode_community_roles(&load(
        "hive-bridge.list_community_roles-hive-135485-positional.json",
    ))
    .unwrap();
    assert_eq!(
        positional[2],
        (
            name("test-safari"),
            CommunityRole::Admin,
            "Bill Gates".to_string()
        )
    );
    let owner_only = decode_community_roles(&load(
        "hive-bridge.list_community_roles-hive-186669-owner-only.json",
    ))
    .unwrap();
    assert_eq!(
        owner_only,
        vec![(name("hive-186669"), CommunityRole::Owner, String::new())]
    );

    // guest < member < mod < admin < owner, muted lowest.
    let mut shuffled = vec![
        CommunityRole::Owner,
        CommunityRole::Guest,
        CommunityRole::Mod,
        CommunityRole::Muted,
        CommunityRole::Admin,
        CommunityRole::Member,
    ];
    shuffled.sort();
    assert_eq!(shuffled, CommunityRole::ALL.to_vec());
    for role in CommunityRole::ALL {
        assert_eq!(role.as_str().parse::<CommunityRole>().unwrap(), role);
    }
    for bad in ["Owner", "moderator", "", "owner "] {
        assert!(bad.parse::<CommunityRole>().is_err(), "{bad}");
    }
    for garbage in [
        json!([["abit", "admin"]]),
        json!([["abit", "king", ""]]),
        json!([["ab", "admin", ""]]),
        json!([["abit", "admin", null]]),
        json!({"abit": "admin"}),
    ] {
        assert!(decode_community_roles(&garbage).is_err(), "{garbage}");
    }
}

#[test]
fn subscriber_lists_in_2016_and_2021_date_formats() {
    let subs = decode_subscribers(&load("hive-bridge.list_subscribers-hive-135485.json")).unwrap();
    assert_eq!(subs.len(), 4);
    assert_eq!(subs[0].account, name("good-karma"));
    assert_eq!(subs[0].since, 1_473_962_511); // "2016-09-15T18:01:51"
    assert_eq!(subs[0].title, None);
    assert_eq!(subs[3].role, CommunityRole::Admin);
    assert_eq!(subs[3].title.as_deref(), Some("Bill Gates"));
    let one = decode_subscribers(&load(
        "hive-bridge.list_subscribers-hive-135485-limit1.json",
    ))
    .unwrap();
    assert_eq!(one, subs[..1].to_vec());
    let live = decode_subscribers(&load(
        "hive-bridge.list_subscribers-hive-111111-limit10-devportal.json",
    ))
    .unwrap();
    assert_eq!(live.len(), 10);
    assert_eq!(live[0].since, 1_613_654_142); // "2021-02-18 13:15:42" (space)
    assert!(
        live.windows(2).all(|w| w[0].since >= w[1].since),
        "newest first"
    );
    assert!(decode_subscribers(&json!([["gtg", "guest", 3, "2016-09-15T18:01:51"]])).is_err());
    assert!(decode_subscribers(&json!([["gtg", "guest", null, "yesterday"]])).is_err());
}

#[test]
fn chain_times_in_every_format_nodes_use() {
    let expected = 1_468_392_273; // 2016-07-13 06:44:33 UTC
    for raw in [
        "2016-07-13T06:44:33",
        "2016-07-13 06:44:33",
        "2016-07-13T06:44:33Z",
        "2016-07-13T06:44:33.000",
        "2016-07-13T06:44:33.123456Z",
    ] {
        assert_eq!(parse_chain_time(raw).unwrap(), expected, "{raw}");
    }
    // The community fixture's created_at (hivemind writes a space).
    let c = load("hive-bridge.get_community-hive-135485.json");
    assert_eq!(
        parse_chain_time(c["created_at"].as_str().unwrap()).unwrap(),
        1_473_962_490
    );
    for bad in [
        "",
        "2016-07-13",
        "2016-07-13T06:44:33+02:00",
        "2016-07-13T06:44:33.",
        "2016-07-13T06:44:33.x",
        "2016-07-13_06:44:33",
        "2016-13-13T06:44:33",
        "1969-12-31T23:59:59",
        "2016-07-13T06:44:33ZZ",
        "２016-07-13T06:44:33",
    ] {
        assert!(parse_chain_time(bad).is_err(), "{bad}");
    }
}

#[test]
fn garbage_accounts_are_errors_never_defaults() {
    let good = load("steem-condenser_api.get_accounts-inertia-2022-07-30.json")[0].clone();
    assert!(decode_account(&good).is_ok());
    let broken = |key: &str, value: Option<Value>| {
        let mut v = good.clone();
        match value {
            Some(value) => v[key] = value,
            None => {
                v.as_object_mut().unwrap().remove(key);
            }
        }
        v
    };
    let cases = [
        broken("reputation", None),
        broken("reputation", Some(json!(73.2))),
        broken("reputation", Some(json!("NaN"))),
        broken("created", None),
        broken("created", Some(json!(1468392273))),
        broken("created", Some(json!("yesterday"))),
        broken("vesting_shares", None),
        broken("vesting_shares", Some(json!("117295.640891 STEEM"))),
        broken("vesting_shares", Some(json!(117295.640891))),
        broken("delegated_vesting_shares", Some(json!("-1.000000 VESTS"))),
        broken("received_vesting_shares", Some(json!("1e9 VESTS"))),
        broken(
            "received_vesting_shares",
            Some(json!("184467440737095.516160 VESTS")),
        ),
        broken("witness_votes", None),
        broken("witness_votes", Some(json!("abit"))),
        broken("witness_votes", Some(json!([1]))),
        broken("witness_votes", Some(json!(["Not A Name!"]))),
        broken("proxy", None),
        broken("proxy", Some(json!(null))),
        broken("proxy", Some(json!("x"))),
        broken("name", Some(json!("ab"))),
    ];
    for case in cases {
        assert!(decode_account(&case).is_err(), "{case}");
    }
    let me = name("inertia");
    assert!(matches!(
        decode_get_accounts(&json!([]), &me),
        Err(FactError::NoSuchAccount(_))
    ));
    assert!(decode_get_accounts(&json!([good.clone(), good.clone()]), &me).is_err());
    assert!(decode_get_accounts(&json!({"0": good}), &me).is_err());
    assert!(decode_get_accounts(&json!(null), &me).is_err());
    // The node answered for another account.
    let other = load("hive-condenser_api.get_accounts-ned-2022-07-30.json");
    assert!(decode_get_accounts(&other, &me).is_err());
}

#[test]
fn garbage_global_properties_are_errors() {
    let good = load("steem-condenser_api.get_dynamic_global_properties-2022-07-30.json");
    for (key, value) in [
        ("total_vesting_fund_steem", json!("0.000 STEEM")),
        ("total_vesting_fund_steem", json!("157102910.021 SBD")),
        ("total_vesting_fund_steem", json!(157102910.021)),
        ("total_vesting_shares", json!("0.000000 VESTS")),
        ("total_vesting_shares", json!("283918139943.616774")),
        ("total_vesting_shares", json!(null)),
    ] {
        let mut v = good.clone();
        v[key] = value.clone();
        assert!(
            decode_vesting_ratio(&v, ChainName::Steem).is_err(),
            "{key}: {value}"
        );
    }
    assert!(decode_vesting_ratio(&json!([]), ChainName::Steem).is_err());
}

#[test]
fn community_names_parse_with_clear_errors() {
    assert_eq!(community("hive-123456").as_str(), "hive-123456");
    assert_eq!(community("hive-123456").account(), &name("hive-123456"));
    let error = CommunityName::parse("gtg").unwrap_err();
    assert!(error.contains("hive-"), "{error}");
    for bad in [
        "hive-12",
        "hive-923456",
        "hive-123456x",
        "HIVE-123456",
        "hive-",
    ] {
        assert!(CommunityName::parse(bad).is_err(), "{bad}");
    }
}

/// Both chains answer every issue-15 condition (module doc table).
#[test]
fn every_condition_has_a_source_on_both_chains() {
    for chain in [ChainName::Steem, ChainName::Hive] {
        for condition in facts::CONDITIONS {
            assert_eq!(facts::unsupported(chain, condition), None, "{condition}");
        }
    }
}

/// A node that answers from a table and records what it was asked.
struct FakeNode {
    answers: Vec<(&'static str, Result<Value, RpcError>)>,
    asked: Mutex<Vec<(String, Value)>>,
}

impl FakeNode {
    fn new(answers: Vec<(&'static str, Result<Value, RpcError>)>) -> Self {
        Self {
            answers,
            asked: Mutex::new(Vec::new()),
        }
    }

    fn asked(&self) -> Vec<(String, Value)> {
        self.asked.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl RpcCall for FakeNode {
    async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.asked
            .lock()
            .unwrap()
            .push((method.to_string(), params));
        self.answers
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, answer)| answer.clone())
            .unwrap_or_else(|| {
                Err(RpcError::Node {
                    code: -32601,
                    message: format!("Method not found {method}"),
                })
            })
    }
}

#[tokio::test]
async fn fetchers_ask_the_right_method_per_chain() {
    let node = FakeNode::new(vec![
        (
            "condenser_api.get_accounts",
            Ok(load(
                "steem-condenser_api.get_accounts-inertia-2022-07-30.json",
            )),
        ),
        (
            "condenser_api.get_dynamic_global_properties",
            Ok(load(
                "steem-condenser_api.get_dynamic_global_properties-2022-07-30.json",
            )),
        ),
        (
            "bridge.get_profile",
            Ok(json!({"name": "inertia", "context": {"followed": true}})),
        ),
        (
            "bridge.get_community",
            Ok(load(
                "hive-bridge.get_community-hive-171487-observer-subscribed-guest.json",
            )),
        ),
    ]);
    let facts = facts::fetch_account(&node, &name("inertia")).await.unwrap();
    assert_eq!(facts.reputation_raw, 227_525_885_010_794);
    let ratio = facts::fetch_vesting_ratio(&node, ChainName::Steem)
        .await
        .unwrap();
    assert_eq!(ratio.fund_milli, 157_102_910_021);
    let rel = facts::fetch_relationship(&node, ChainName::Steem, &name("alice"), &name("inertia"))
        .await
        .unwrap();
    assert_eq!(
        rel,
        Relationship {
            follows: true,
            ignores: false
        }
    );
    let c = facts::fetch_community(
        &node,
        ChainName::Steem,
        &community("hive-171487"),
        &name("gtg"),
    )
    .await
    .unwrap();
    assert!(c.subscribed);
    assert_eq!(
        node.asked(),
        vec![
            ("condenser_api.get_accounts".into(), json!([["inertia"]])),
            (
                "condenser_api.get_dynamic_global_properties".into(),
                json!([])
            ),
            (
                "bridge.get_profile".into(),
                json!({"account": "inertia", "observer": "alice"})
            ),
            (
                "bridge.get_community".into(),
                json!({"name": "hive-171487", "observer": "gtg"})
            ),
        ]
    );

    let hive = FakeNode::new(vec![(
        "bridge.get_relationship_between_accounts",
        Ok(load(
            "hive-bridge.get_relationship_between_accounts-ignores.json",
        )),
    )]);
    let rel = facts::fetch_relationship(
        &hive,
        ChainName::Hive,
        &name("tuck-fheman"),
        &name("tonyson"),
    )
    .await
    .unwrap();
    assert_eq!(
        rel,
        Relationship {
            follows: false,
            ignores: true
        }
    );
    assert_eq!(
        hive.asked(),
        vec![(
            "bridge.get_relationship_between_accounts".into(),
            json!({"account1": "tuck-fheman", "account2": "tonyson"})
        )]
    );
    // The Hive fund field on a Steem answer: a decode error.
    assert!(matches!(
        facts::fetch_vesting_ratio(&node, ChainName::Hive).await,
        Err(FactError::Decode(_))
    ));
}

#[tokio::test]
async fn fetch_errors_are_kept_apart() {
    let node = FakeNode::new(vec![
        ("condenser_api.get_accounts", Ok(json!([]))),
        (
            "bridge.get_community",
            Err(RpcError::Node {
                code: -32000,
                message: "community not found".into(),
            }),
        ),
        (
            "bridge.get_profile",
            Err(RpcError::Unavailable("all nodes timed out".into())),
        ),
    ]);
    assert!(matches!(
        facts::fetch_account(&node, &name("nobody")).await,
        Err(FactError::NoSuchAccount(n)) if n == "nobody"
    ));
    assert!(matches!(
        facts::fetch_community(
            &node,
            ChainName::Steem,
            &community("hive-123456"),
            &name("gtg")
        )
        .await,
        Err(FactError::NoSuchCommunity(_))
    ));
    assert!(matches!(
        facts::fetch_relationship(&node, ChainName::Steem, &name("alice"), &name("bob")).await,
        Err(FactError::Rpc(RpcError::Unavailable(_)))
    ));
    // Hive: the method is missing on this node: an RPC error, not "no".
    assert!(matches!(
        facts::fetch_relationship(&node, ChainName::Hive, &name("alice"), &name("bob")).await,
        Err(FactError::Rpc(RpcError::Node { code: -32601, .. }))
    ));
    // A node error not about the community (e.g. the observer is unknown).
    let other = FakeNode::new(vec![(
        "bridge.get_community",
        Err(RpcError::Node {
            code: -32602,
            message: "account not found: `gtg`".into(),
        }),
    )]);
    assert!(matches!(
        facts::fetch_community(
            &other,
            ChainName::Hive,
            &community("hive-123456"),
            &name("gtg")
        )
        .await,
        Err(FactError::Rpc(RpcError::Node { .. }))
    ));
}
