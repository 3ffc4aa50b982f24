//! Node answers (JSON-RPC results): blocks, global properties, amounts and
//! transfer matching never panic on any JSON, and a transfer the matcher
//! accepts really is a login payment to the gateway.
//!
//! The block number is the one the input's `block_id` names (or one after
//! its `previous`), as the follower would have asked for it, so real blocks
//! pass the number checks and their transfers reach `match_transfer`; a
//! bare transaction (`{"operations": [...]}`) or a single operation is
//! decoded directly. Every transfer is matched twice: against a fixed
//! gateway account, and against its own recipient (so the checks after the
//! recipient's are reached).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use steemgate::store::memo::canonical_memo;
use steemgate::chain::asset::Symbol;
use steemgate::chain::block::{
    GlobalProperties, TransferOp, block_id_number, decode_transfer_op, parse_block, rpc_result,
};
use steemgate::chain::follower::{FollowerSettings, MAX_MEMO_BYTES, match_transfer};
use steemgate::chain::{AccountName, Amount, ChainName, Confirm};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // A whole JSON-RPC response, or its `result` alone.
    let value = match rpc_result(&envelope) {
        Ok(result) => result,
        Err(_) => &envelope,
    };
    let _ = GlobalProperties::from_json(value);
    for chain in [ChainName::Steem, ChainName::Hive] {
        if let Ok(amount) = Amount::from_json(value, chain) {
            // What decodes prints back to a legacy string that decodes equal.
            assert_eq!(Amount::parse_legacy(&amount.to_string(), chain), Ok(amount));
        }
        for transfer in transfers(value, chain) {
            check_match(&transfer, "gate-fuzz", chain);
            check_match(&transfer, &transfer.to, chain);
        }
    }
});

/// The transfers in `value`, read as a block, a transaction or an operation.
fn transfers(value: &Value, chain: ChainName) -> Vec<TransferOp> {
    let inner = value.get("block").unwrap_or(value);
    let number = inner
        .get("block_id")
        .and_then(Value::as_str)
        .and_then(|id| block_id_number(&id.to_ascii_lowercase()))
        .or_else(|| {
            inner
                .get("previous")
                .and_then(Value::as_str)
                .and_then(|id| block_id_number(&id.to_ascii_lowercase()))
                .map(|n| n + 1)
        })
        .unwrap_or(1);
    if let Ok(Some(block)) = parse_block(number, value, chain) {
        assert_eq!(block.number, number);
        assert_eq!(block_id_number(&block.block_id), Some(number));
        assert_eq!(
            block_id_number(&block.previous),
            Some(number.saturating_sub(1))
        );
        return block.transfers;
    }
    let operations = match value.get("operations").and_then(Value::as_array) {
        Some(operations) => operations.iter().collect(),
        None => vec![value],
    };
    let txid = value
        .get("transaction_id")
        .and_then(Value::as_str)
        .unwrap_or("fuzz");
    operations
        .into_iter()
        .filter_map(|op| decode_transfer_op(op, txid, chain))
        .filter_map(Result::ok)
        .collect()
}

fn check_match(transfer: &TransferOp, gateway: &str, chain: ChainName) {
    let Ok(account) = AccountName::parse(gateway) else {
        return;
    };
    for min_amount_units in [1, 1000] {
        let settings = FollowerSettings {
            chain,
            account: account.clone(),
            min_amount_units,
            confirm: Confirm::Head,
            challenge_ttl: std::time::Duration::from_secs(900),
            session_ttl: std::time::Duration::from_secs(86400),
            instance_id: "fuzz".into(),
        };
        let Ok((memo, sender)) = match_transfer(transfer, &settings) else {
            continue;
        };
        // Paid to the gateway, in an accepted asset, at least the minimum.
        assert_eq!(transfer.to, settings.account.as_str());
        let Ok(amount) = &transfer.amount else {
            panic!("matched a transfer whose amount did not decode");
        };
        assert!(Symbol::accepted(chain).contains(&amount.symbol));
        assert!(amount.units >= min_amount_units);
        // The memo as challenges are stored: canonical, plain, bounded.
        assert!(!memo.is_empty() && !memo.starts_with('#'));
        assert_eq!(canonical_memo(&memo), memo);
        assert!(!memo.chars().any(char::is_control));
        assert!(transfer.memo.len() <= MAX_MEMO_BYTES);
        // The sender is the transfer's own, as a valid account name.
        assert_eq!(sender.as_str(), transfer.from.to_ascii_lowercase());
        assert_eq!(AccountName::parse(sender.as_str()).as_ref(), Ok(&sender));
    }
}
