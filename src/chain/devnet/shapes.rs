//! Node-shaped JSON for the devnet's answers.
//!
//! Why a file of its own: the devnet is only useful if its answers decode
//! exactly like a real node's. Each builder here mirrors a recorded answer in
//! `tests/fixtures/steem-rpc/` (same keys, same value types, same asset and
//! time formats), per chain: Hive renamed many fields (`sbd` → `hbd`,
//! `steem` → `hive`) after its fork. Values that do not matter to a
//! simulation (supplies, manabars, keys) are plausible constants.

use serde_json::{Value, json};

use super::{ChainState, DEVNET_WITNESS, SimAccount, SimBlock, format_chain_time};
use crate::chain::ChainName;
use crate::chain::asset::{Amount, Symbol};

/// The all-zero public key ("STM1111…"): obviously not a real key.
pub const NULL_PUBLIC_KEY: &str = "STM1111111111111111111111111111111114T1Anm";

const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// `"1.234 STEEM"`.
fn asset(units: u64, symbol: Symbol) -> String {
    Amount { units, symbol }.to_string()
}

fn native(chain: ChainName) -> Symbol {
    Symbol::native(chain)
}

fn dollar(chain: ChainName) -> Symbol {
    Symbol::accepted(chain)[1]
}

/// `condenser_api.get_block`.
pub fn block(block: &SimBlock) -> Value {
    let transactions: Vec<Value> = block
        .transactions
        .iter()
        .enumerate()
        .map(|(index, tx)| {
            json!({
                "ref_block_num": tx.ref_block_num,
                "ref_block_prefix": tx.ref_block_prefix,
                "expiration": format_chain_time(tx.expiration),
                "operations": [transfer_op(&tx.transfer)],
                "extensions": [],
                "signatures": [tx.signature],
                "transaction_id": tx.id,
                "block_num": block.number,
                "transaction_num": index,
            })
        })
        .collect();
    let transaction_ids: Vec<&str> = block.transactions.iter().map(|tx| tx.id.as_str()).collect();
    let merkle_root = if transaction_ids.is_empty() {
        ZERO_ID.to_string()
    } else {
        hex::encode(&blake_digest(transaction_ids.concat().as_bytes())[..20])
    };
    json!({
        "previous": hex::encode(block.previous),
        "timestamp": format_chain_time(block.timestamp),
        "witness": DEVNET_WITNESS,
        "transaction_merkle_root": merkle_root,
        "extensions": [],
        "witness_signature": format!("1f{}", hex::encode(blake_digest(&block.id))),
        "transactions": transactions,
        "block_id": hex::encode(block.id),
        "signing_key": NULL_PUBLIC_KEY,
        "transaction_ids": transaction_ids,
    })
}

fn blake_digest(data: &[u8]) -> Vec<u8> {
    use blake2::{Blake2b512, Digest};
    Blake2b512::digest(data).to_vec()
}

fn transfer_op(transfer: &super::Transfer) -> Value {
    json!(["transfer", {
        "from": transfer.from.as_str(),
        "to": transfer.to.as_str(),
        "amount": transfer.amount.to_string(),
        "memo": transfer.memo,
    }])
}

/// `condenser_api.get_ops_in_block`: the block's transfers (left out when
/// `only_virtual`), then the virtual producer reward, as nodes list them.
pub fn ops_in_block(state: &ChainState, block: &SimBlock, only_virtual: bool) -> Value {
    // Steem nodes write `virtual_op` as a number, Hive nodes as a boolean.
    let virtual_flag = |is_virtual: bool| match state.chain {
        ChainName::Steem => json!(u8::from(is_virtual)),
        ChainName::Hive => json!(is_virtual),
    };
    let timestamp = format_chain_time(block.timestamp);
    let mut ops = Vec::new();
    if !only_virtual {
        for (index, tx) in block.transactions.iter().enumerate() {
            ops.push(json!({
                "trx_id": tx.id,
                "block": block.number,
                "trx_in_block": index,
                "op_in_trx": 0,
                "virtual_op": virtual_flag(false),
                "timestamp": timestamp,
                "op": transfer_op(&tx.transfer),
            }));
        }
    }
    ops.push(json!({
        "trx_id": ZERO_ID,
        "block": block.number,
        "trx_in_block": u32::MAX,
        "op_in_trx": 0,
        "virtual_op": virtual_flag(true),
        "timestamp": timestamp,
        "op": ["producer_reward", {"producer": DEVNET_WITNESS, "vesting_shares": "1.000000 VESTS"}],
    }));
    Value::Array(ops)
}

/// `condenser_api.get_dynamic_global_properties`.
pub fn dynamic_global_properties(state: &ChainState) -> Value {
    let chain = state.chain;
    let (n, d) = (native(chain), dollar(chain));
    let head = state.head_number;
    let time = format_chain_time(state.head_time);
    let maintenance = format_chain_time(state.head_time + 3600);
    let mut props = json!({
        "head_block_number": head,
        "head_block_id": hex::encode(state.head_id),
        "time": time,
        "current_witness": DEVNET_WITNESS,
        "total_pow": 514_415,
        "num_pow_witnesses": 172,
        "virtual_supply": asset(411_540_435_530, n),
        "current_supply": asset(370_827_284_770, n),
        "confidential_supply": asset(0, n),
        "maximum_block_size": 65_536,
        "required_actions_partition_percent": 0,
        "current_aslot": head + 243_749,
        "recent_slots_filled": "340282366920938463463374607431768211455",
        "participation_count": 128,
        "last_irreversible_block_num": state.last_irreversible(),
        "vote_power_reserve_rate": 10,
        "delegation_return_period": 432_000,
        "reverse_auction_seconds": 300,
        "available_account_subsidies": 17_322_174,
        "next_maintenance_time": maintenance,
        "last_budget_time": format_chain_time(state.head_time.saturating_sub(600)),
        "content_reward_percent": 6500,
        "vesting_reward_percent": 1500,
        "sps_fund_percent": 1000,
        "sps_interval_ledger": asset(42_140, d),
        "downvote_pool_percent": 2500,
    });
    let renamed = match chain {
        ChainName::Steem => json!({
            "init_sbd_supply": asset(0, d),
            "current_sbd_supply": asset(5_781_267_408, d),
            "confidential_sbd_supply": asset(0, d),
            // The ratio of the recorded 2022-07-30 answer (tests/fixtures/
            // chain-policy): 553.34 STEEM per million VESTS.
            "total_vesting_fund_steem": asset(157_102_910_021, n),
            "total_vesting_shares": "283918139943.616774 VESTS",
            "total_reward_fund_steem": asset(0, n),
            "total_reward_shares2": "0",
            "pending_rewarded_vesting_shares": "688898046.681557 VESTS",
            "pending_rewarded_vesting_steem": asset(347_510_601, n),
            "sbd_interest_rate": 0,
            "sbd_print_rate": 1100,
            "sbd_stop_percent": 1000,
            "sbd_start_percent": 900,
        }),
        ChainName::Hive => json!({
            "init_hbd_supply": asset(0, d),
            "current_hbd_supply": asset(4_648_230_912, d),
            // The recorded 2022-07-30 ratio: 549.74 HIVE per million VESTS.
            "total_vesting_fund_hive": asset(161_382_579_103, n),
            "total_vesting_shares": "293562877606.209599 VESTS",
            "total_reward_fund_hive": asset(0, n),
            "total_reward_shares2": "0",
            "pending_rewarded_vesting_shares": "779114388.346618 VESTS",
            "pending_rewarded_vesting_hive": asset(393_975_350, n),
            "hbd_interest_rate": 0,
            "hbd_print_rate": 10000,
            "hbd_stop_percent": 1000,
            "hbd_start_percent": 900,
            "next_daily_maintenance_time": format_chain_time(state.head_time + 86_400),
        }),
    };
    merge(&mut props, renamed);
    if chain == ChainName::Hive {
        // Hive dropped confidential supplies.
        if let Value::Object(map) = &mut props {
            map.remove("confidential_supply");
        }
    }
    props
}

fn merge(target: &mut Value, extra: Value) {
    if let (Value::Object(target), Value::Object(extra)) = (target, extra) {
        target.extend(extra);
    }
}

fn authority(account_auths: &[&str]) -> Value {
    let auths: Vec<Value> = account_auths.iter().map(|name| json!([name, 1])).collect();
    json!({"weight_threshold": 1, "account_auths": auths, "key_auths": [[NULL_PUBLIC_KEY, 1]]})
}

fn weighted(pairs: &[(String, u16)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(name, weight)| json!([name, weight]))
        .collect()
}

/// The authorities set with `devnet.set_keys` into an account answer.
fn apply_keys(value: &mut Value, keys: &super::SimAuthorities) {
    let posting = json!({
        "weight_threshold": keys.posting_threshold,
        "account_auths": weighted(&keys.posting_account_auths),
        "key_auths": weighted(&keys.posting),
    });
    let active = json!({
        "weight_threshold": keys.active_threshold,
        "account_auths": weighted(&keys.active_account_auths),
        "key_auths": weighted(&keys.active),
    });
    merge(
        value,
        json!({
            "posting": posting,
            "active": active,
            "memo_key": keys.memo.as_deref().unwrap_or(NULL_PUBLIC_KEY),
        }),
    );
}

/// One entry of `condenser_api.get_accounts`, with the keys tests set.
pub fn account_with_keys(state: &ChainState, name: &str, account: &SimAccount) -> Value {
    let mut value = self::account(state.chain, name, account);
    if let Some(keys) = state.authorities.get(name) {
        apply_keys(&mut value, keys);
    }
    value
}

/// One entry of `condenser_api.get_accounts`.
pub fn account(chain: ChainName, name: &str, account: &SimAccount) -> Value {
    let (n, d) = (native(chain), dollar(chain));
    let epoch = format_chain_time(0);
    let created = format_chain_time(account.created);
    let last_activity = account.last_post.max(account.created);
    let metadata = r#"{"profile":{"about":"SIMULATED devnet account"}}"#;
    let manabar = json!({"current_mana": "1000000000000", "last_update_time": last_activity});
    let mut value = json!({
        "id": account.id,
        "name": name,
        "owner": authority(&[]),
        "active": authority(&[]),
        "posting": authority(&[]),
        "memo_key": NULL_PUBLIC_KEY,
        "json_metadata": metadata,
        "posting_json_metadata": metadata,
        "last_owner_update": epoch,
        "last_account_update": created,
        "created": created,
        "mined": false,
        "recovery_account": "steem",
        "last_account_recovery": epoch,
        "reset_account": "null",
        "comment_count": 0,
        "lifetime_vote_count": 0,
        "post_count": account.post_count,
        "can_vote": true,
        "voting_manabar": manabar,
        "downvote_manabar": manabar,
        "voting_power": 9800,
    });
    merge(
        &mut value,
        json!({
            "balance": asset(account.native_units, n),
            "savings_balance": asset(0, n),
            "savings_withdraw_requests": 0,
            "reward_vesting_balance": "0.000000 VESTS",
            "vesting_withdraw_rate": "0.000000 VESTS",
            "next_vesting_withdrawal": "1969-12-31T23:59:59",
            "withdraw_routes": 0,
            "curation_rewards": 0,
            "posting_rewards": 0,
            "proxied_vsf_votes": [0, 0, 0, 0],
            "last_post": format_chain_time(account.last_post),
            "last_root_post": format_chain_time(account.last_root_post),
            "last_vote_time": format_chain_time(last_activity),
            "post_bandwidth": 0,
            "pending_claimed_accounts": 0,
            "vesting_balance": asset(0, n),
            "transfer_history": [],
            "market_history": [],
            "post_history": [],
            "vote_history": [],
            "other_history": [],
            "tags_usage": [],
            "guest_bloggers": [],
        }),
    );
    let dollars = asset(account.dollar_units, d);
    let renamed = match chain {
        ChainName::Steem => json!({
            "sbd_balance": dollars,
            "sbd_seconds": "0",
            "sbd_seconds_last_update": epoch,
            "sbd_last_interest_payment": epoch,
            "savings_sbd_balance": asset(0, d),
            "savings_sbd_seconds": "0",
            "savings_sbd_seconds_last_update": epoch,
            "savings_sbd_last_interest_payment": epoch,
            "reward_sbd_balance": asset(0, d),
            "reward_steem_balance": asset(0, n),
            "reward_vesting_steem": asset(0, n),
            "withdrawn": "0",
            "to_withdraw": "0",
        }),
        ChainName::Hive => json!({
            "hbd_balance": dollars,
            "hbd_seconds": "0",
            "hbd_seconds_last_update": epoch,
            "hbd_last_interest_payment": epoch,
            "savings_hbd_balance": asset(0, d),
            "savings_hbd_seconds": "0",
            "savings_hbd_seconds_last_update": epoch,
            "savings_hbd_last_interest_payment": epoch,
            "reward_hbd_balance": asset(0, d),
            "reward_hive_balance": asset(0, n),
            "reward_vesting_hive": asset(0, n),
            "post_voting_power": "1000.000000 VESTS",
            "withdrawn": 0,
            "to_withdraw": 0,
            "pending_transfers": 0,
            "delayed_votes": [],
        }),
    };
    merge(&mut value, renamed);
    merge(&mut value, super::policy::account_fields(account));
    value
}

/// One entry of `condenser_api.get_following` / `get_followers`.
pub fn follow_entry(follower: &str, following: &str, what: &[&str]) -> Value {
    json!({"follower": follower, "following": following, "what": what})
}
