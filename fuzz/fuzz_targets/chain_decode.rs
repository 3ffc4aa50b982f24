//! Node answers (JSON-RPC results): blocks, global properties, amounts and
//! transfer matching never panic on any JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steemgate::chain::block::{GlobalProperties, parse_block};
use steemgate::chain::follower::{FollowerSettings, match_transfer};
use steemgate::chain::{AccountName, Amount, ChainName, Confirm};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = GlobalProperties::from_json(&value);
    let _ = Amount::from_json(&value, ChainName::Steem);
    let _ = Amount::from_json(&value, ChainName::Hive);
    let Ok(account) = AccountName::parse("gate-fuzz") else { return };
    let settings = FollowerSettings {
        chain: ChainName::Steem,
        account,
        min_amount_units: 1,
        confirm: Confirm::Head,
        challenge_ttl: std::time::Duration::from_secs(900),
        session_ttl: std::time::Duration::from_secs(86400),
        instance_id: "fuzz".into(),
    };
    for chain in [ChainName::Steem, ChainName::Hive] {
        if let Ok(Some(block)) = parse_block(1, &value, chain) {
            for transfer in &block.transfers {
                if let Ok((memo, sender)) = match_transfer(transfer, &settings) {
                    assert!(!memo.is_empty() && !memo.starts_with('#'));
                    assert_eq!(sender.as_str(), sender.as_str().to_ascii_lowercase());
                }
            }
        }
    }
});
