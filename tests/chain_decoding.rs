//! Every recorded node answer in `tests/fixtures/steem-rpc/` decodes as the
//! real node meant it: block numbers, transfers, head numbers, node errors.
//!
//! Why: decoding is where untrusted node output enters the gateway. The
//! fixtures are real recordings (see their SOURCES.md); a new fixture that
//! this file does not classify fails the suite, so none goes unchecked.

mod support;

use serde_json::Value;
use steemgate::chain::block::{
    GlobalProperties, TransferOp, decode_transfer_op, parse_block, rpc_result,
};
use steemgate::chain::{Amount, ChainName, RpcError, Symbol};
use time::macros::datetime;

const DIR: &str = "steem-rpc";

fn load(name: &str) -> Value {
    serde_json::from_str(&support::fixture(&format!("{DIR}/{name}")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The `result` of a raw recorded body, or the value itself for "result only" files.
fn result_of(v: &Value) -> Value {
    if v.get("jsonrpc").is_some() || (v.get("id").is_some() && v.get("result").is_some()) {
        rpc_result(v).expect("envelope with result").clone()
    } else {
        v.clone()
    }
}

fn unix(dt: time::OffsetDateTime) -> u64 {
    u64::try_from(dt.unix_timestamp()).unwrap()
}

fn amount(units: u64, symbol: Symbol) -> Result<Amount, steemgate::chain::asset::AmountError> {
    Ok(Amount { units, symbol })
}

fn steem_block(name: &str, number: u64) -> steemgate::chain::block::Block {
    let v = load(name);
    parse_block(number, &result_of(&v), ChainName::Steem)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: block missing"))
}

fn check_single_transfer(
    name: &str,
    number: u64,
    id: &str,
    at: time::OffsetDateTime,
    expected: TransferOp,
) {
    let block = steem_block(name, number);
    assert_eq!(block.number, number);
    assert_eq!(block.block_id, id);
    assert_eq!(block.timestamp, unix(at));
    assert_eq!(block.transfers, vec![expected], "{name}");
}

fn props(name: &str) -> GlobalProperties {
    GlobalProperties::from_json(&result_of(&load(name))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn node_error(name: &str) -> (i64, String) {
    let v = load(name);
    // Raw bodies carry the envelope; the hivemind pattern holds only the error object.
    let envelope = if v.get("jsonrpc").is_some() {
        v
    } else {
        serde_json::json!({"jsonrpc": "2.0", "error": v, "id": 1})
    };
    match rpc_result(&envelope) {
        Err(RpcError::Node { code, message }) => (code, message),
        other => panic!("{name}: expected a node error, got {other:?}"),
    }
}

fn history_transfers(name: &str) -> Vec<(u64, TransferOp)> {
    let v = load(name);
    let entries = match &v {
        Value::Object(map) => map["history"].as_array().expect("history array").clone(),
        Value::Array(entries) => entries.clone(),
        _ => panic!("{name}: unexpected shape"),
    };
    entries
        .iter()
        .map(|entry| {
            let body = &entry[1];
            let txid = body["trx_id"].as_str().expect("trx_id");
            let op = decode_transfer_op(&body["op"], txid, ChainName::Hive)
                .expect("a transfer")
                .expect("well-formed");
            (body["block"].as_u64().expect("block"), op)
        })
        .collect()
}

fn check_fixture(name: &str) {
    match name {
        "steem-condenser_get_block-48404683-transfer.json" => check_single_transfer(
            name,
            48404683,
            "02e298cbe273f89beca994bc97665be5ae669dcb",
            datetime!(2020-11-07 20:22:33 UTC),
            TransferOp {
                from: "topfivefamily".into(),
                to: "esclavos75".into(),
                amount: amount(2000, Symbol::Steem),
                memo: "Anunciando los ganadores del concurso. Observa Piensa Escribe. ".into(),
                txid: "8f766735cd072430ef69dae2e8ef931ddebb8ba9".into(),
            },
        ),
        "steem-condenser_get_block-48404773-transfer.json" => {
            let block = steem_block(name, 48404773);
            assert_eq!(block.timestamp, unix(datetime!(2020-11-07 20:27:09 UTC)));
            assert_eq!(block.transfers.len(), 1, "32 votes are skipped");
            let t = &block.transfers[0];
            assert_eq!((t.from.as_str(), t.to.as_str()), ("xiguang", "suanky"));
            assert_eq!(t.amount, amount(69, Symbol::Steem));
            assert_eq!(t.txid, "3289cb65529f36142baf0f201493a68f188249e1");
            assert!(t.memo.starts_with("Hi, @suanky"));
        }
        "steem-condenser_get_block-48405087-transfer-0.001STEEM.json" => {
            let block = steem_block(name, 48405087);
            assert_eq!(block.block_id, "02e29a5f57eab2adc6a42748ef08a4a36c1a7d47");
            let t = &block.transfers[..];
            assert_eq!(t.len(), 1);
            assert_eq!(
                (t[0].from.as_str(), t[0].to.as_str()),
                ("executive-board", "zbnbscharge1")
            );
            assert_eq!(t[0].amount, amount(1, Symbol::Steem));
            assert!(
                t[0].memo.starts_with("❗ Hello zbnbscharge1"),
                "non-ASCII memo kept intact"
            );
        }
        "steem-condenser_get_block-48416003-transfer.json" => check_single_transfer(
            name,
            48416003,
            "02e2c503fdd82d480cc9fc152477c12f3bef44d2",
            datetime!(2020-11-08 06:00:33 UTC),
            TransferOp {
                from: "coin-doubler".into(),
                to: "dlease".into(),
                amount: amount(451, Symbol::Steem),
                memo: "renew 5f4da3a33344d5001835b482".into(),
                txid: "738b13c35e978334ec0c6477ddb0f172a67cfd7b".into(),
            },
        ),
        "hive-block_api_get_block-1000000.json" => {
            let block = parse_block(1000000, &load(name), ChainName::Hive)
                .unwrap()
                .unwrap();
            assert_eq!(block.block_id, "000f4240e8f91385f7bff8f5aeebddc9b14e4281");
            assert_eq!(block.timestamp, unix(datetime!(2016-04-29 04:12:00 UTC)));
            assert!(block.transfers.is_empty());
        }
        "hive-block_api_get_block_range-1000781-transfer-extracted.json" => {
            let v = load(name);
            let wrapped = serde_json::json!({"block": v["blocks"][0]});
            let block = parse_block(1000781, &wrapped, ChainName::Hive)
                .unwrap()
                .unwrap();
            assert_eq!(block.timestamp, unix(datetime!(2016-04-29 04:51:15 UTC)));
            assert_eq!(
                block.transfers,
                vec![TransferOp {
                    from: "openledger".into(),
                    to: "register".into(),
                    amount: amount(10000, Symbol::Hive),
                    memo: String::new(),
                    txid: "5dd9f574fb0028342f5aa016f26d38dbfeae9693".into(),
                }],
                "the account_create op is skipped"
            );
        }
        "hive-condenser_get_block-non_existing-null.json" => {
            assert_eq!(
                parse_block(1000000000, &load(name), ChainName::Hive).unwrap(),
                None
            );
        }
        "steem-transaction-transfer-2016-03-25.json" => {
            let v = load(name);
            let block = serde_json::json!({
                "timestamp": "2016-03-25T13:49:00",
                "block_id": format!("00000001{}", "ab".repeat(16)), "previous": "0".repeat(40),
                "transactions": [v], "transaction_ids": ["made-up-for-the-test"]
            });
            let block = parse_block(1, &block, ChainName::Steem).unwrap().unwrap();
            assert_eq!(block.transfers.len(), 1);
            assert_eq!(
                (
                    block.transfers[0].from.as_str(),
                    block.transfers[0].to.as_str()
                ),
                ("admin", "steemit")
            );
            assert_eq!(block.transfers[0].amount, amount(833000, Symbol::Steem));
            assert_eq!(block.transfers[0].memo, "");
        }
        "steem-condenser_get_dynamic_global_properties-2020-11-07.json" => assert_eq!(
            props(name),
            GlobalProperties {
                head_block_number: 48403721,
                head_block_time: unix(datetime!(2020-11-07 19:33:30 UTC)),
                last_irreversible_block_num: 48403705,
            }
        ),
        "steem-condenser_get_dynamic_global_properties-2017-12-13.json" => assert_eq!(
            props(name),
            GlobalProperties {
                head_block_number: 18059859,
                head_block_time: unix(datetime!(2017-12-13 21:04:54 UTC)),
                last_irreversible_block_num: 18059838,
            }
        ),
        "steem-database_api_get_dynamic_global_properties-2017-12-13.json" => assert_eq!(
            props(name),
            GlobalProperties {
                head_block_number: 18059860,
                head_block_time: unix(datetime!(2017-12-13 21:04:57 UTC)),
                last_irreversible_block_num: 18059839,
            }
        ),
        "hive-condenser_get_dynamic_global_properties-api.openhive.network-2020-11-07.json" => {
            assert_eq!(
                props(name),
                GlobalProperties {
                    head_block_number: 48487317,
                    head_block_time: unix(datetime!(2020-11-07 20:16:30 UTC)),
                    last_irreversible_block_num: 48487302,
                }
            )
        }
        "hive-condenser_get_dynamic_global_properties-block5000000.json"
        | "hive-database_api_get_dynamic_global_properties-block5000000-NAI.json" => assert_eq!(
            props(name),
            GlobalProperties {
                head_block_number: 5000000,
                head_block_time: unix(datetime!(2016-09-15 19:47:21 UTC)),
                last_irreversible_block_num: 4999980,
            }
        ),
        "steem-error-condenser_get_block-no-params.json" => {
            let (code, message) = node_error(name);
            assert_eq!(code, -32003);
            assert_eq!(
                message,
                "Assert Exception:args.size() == 1: Expected #s argument(s), was 0"
            );
        }
        "steem-error-condenser_get_following-no-params.json" => {
            assert_eq!(node_error(name), (-32602, "Invalid parameters".to_string()));
        }
        "hive-error-condenser_get_following-limit-1001.json" => {
            assert_eq!(
                node_error(name),
                (
                    -32602,
                    "Assert Exception:limit = 1001 outside valid range [1:1000]".to_string()
                )
            );
        }
        "hive-condenser_get_account_history-blocktrades-transfers.json" => {
            let legacy = history_transfers(name);
            let nai = history_transfers(
                "hive-account_history_api_get_account_history-blocktrades-transfers-NAI.json",
            );
            assert_eq!(legacy.len(), 16);
            assert_eq!(
                legacy, nai,
                "legacy and NAI forms of the same 16 transfers agree"
            );
            assert_eq!(legacy[0].0, 4747375);
            assert_eq!(legacy[0].1.from, "stealthtrader");
            assert_eq!(legacy[0].1.amount, amount(1372, Symbol::Hbd));
            assert_eq!(legacy[0].1.memo, "54ff32be-1446-4582-b2ef-43c645821a3e");
            assert_eq!(legacy[0].1.txid, "0e4bf604dfa68169b01dd537901ebf7bd775470f");
            assert!(
                legacy
                    .iter()
                    .all(|(_, t)| t.to == "blocktrades" || t.from == "blocktrades")
            );
            assert_eq!(legacy[1].1.amount, amount(20556, Symbol::Hive));
        }
        "hive-account_history_api_get_account_history-blocktrades-transfers-NAI.json" => {
            // Compared against the legacy form above; here: every entry is a transfer.
            assert_eq!(history_transfers(name).len(), 16);
        }
        "hive-condenser_get_ops_in_block-2797050.json" => {
            let v = load(name);
            let ops: Vec<&Value> = v.as_array().unwrap().iter().map(|e| &e["op"]).collect();
            assert_eq!(ops.len(), 3);
            assert!(
                ops.iter()
                    .all(|op| decode_transfer_op(op, "t", ChainName::Hive).is_none()),
                "no transfer here"
            );
        }
        // Account and follow answers belong to the report module; here they
        // only need to be valid answers that are not mistaken for blocks.
        "hive-condenser_get_accounts-fullnodeupdate-api.hive.blog-2020-11-07.json"
        | "hive-condenser_get_accounts-multiple-incl-nonexistent.json"
        | "steem-condenser_get_accounts-inertia-2020-11-07.json"
        | "steem-condenser_get_accounts-steemit-2017-12-13.json" => {
            let accounts = result_of(&load(name));
            let names: Vec<&str> = accounts
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["name"].as_str().unwrap())
                .collect();
            let expected: &[&str] = match name {
                n if n.contains("fullnodeupdate") => &["fullnodeupdate"],
                n if n.contains("multiple") => &["gtg", "steemit", "alice", "temp", "dan"],
                n if n.contains("inertia") => &["inertia"],
                _ => &["steemit"],
            };
            assert_eq!(names, expected);
            assert_refused_for_its_shape(
                parse_block(claimed_height(&accounts), &accounts, ChainName::Steem),
                name,
            );
        }
        "hive-condenser_get_following-gtg-start-stellabelle-2025.json"
        | "hive-condenser_get_following-proskynneo-limit10-2021-newest-first.json"
        | "hive-condenser_get_following-proskynneo-limit10-2025-alphabetical.json"
        | "steem-follow_api_get_followers-inertia-2016.json" => {
            let follows = result_of(&load(name));
            let follows = follows.as_array().unwrap();
            let expected_len = if name.contains("stellabelle") {
                1
            } else if name.contains("inertia") {
                100
            } else {
                10
            };
            assert_eq!(follows.len(), expected_len);
            assert!(
                follows
                    .iter()
                    .all(|f| f["what"] == serde_json::json!(["blog"]))
            );
            assert!(GlobalProperties::from_json(&Value::Array(follows.clone())).is_err());
        }
        n if n.starts_with("hive-bridge.get_relationship_between_accounts-") => {
            // The devnet answers in exactly this shape (tests/devnet.rs):
            // five booleans, the one in the file name true.
            let relation = result_of(&load(name));
            let object = relation.as_object().unwrap();
            let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "blacklists",
                    "follows",
                    "follows_blacklists",
                    "follows_muted",
                    "ignores"
                ]
            );
            let set: Vec<&str> = object
                .iter()
                .filter(|(_, v)| v.as_bool().unwrap())
                .map(|(k, _)| k.as_str())
                .collect();
            let kind = n
                .trim_start_matches("hive-bridge.get_relationship_between_accounts-")
                .trim_end_matches(".json");
            let expected: Vec<&str> = if kind == "none" { vec![] } else { vec![kind] };
            assert_eq!(set, expected, "{name}");
            assert!(GlobalProperties::from_json(&relation).is_err());
        }
        other => panic!("fixture {other} is not classified in tests/chain_decoding.rs"),
    }
}

#[test]
fn every_fixture_decodes_as_recorded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(DIR);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 28, "fixtures present: {}", names.len());
    for name in &names {
        check_fixture(name);
    }
}

/// No fixture, in any position, can make the decoders panic; non-block and
/// non-properties answers are refused with an error rather than misread.
#[test]
fn decoders_refuse_the_wrong_answer_without_panicking() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(DIR);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for candidate in [v.clone(), result_of_lenient(&v)] {
            for chain in [ChainName::Steem, ChainName::Hive] {
                // Asked under the height its block_id names (if any), so
                // that the refusal is about the shape, not the height check.
                let block = parse_block(claimed_height(&candidate), &candidate, chain);
                let is_block_fixture = name.contains("get_block") && !name.contains("error");
                if !is_block_fixture && !candidate.is_null() {
                    assert_refused_for_its_shape(block, &name);
                }
            }
            let props = GlobalProperties::from_json(&candidate);
            if !name.contains("global_properties") {
                assert!(
                    props.is_err(),
                    "{name} must not decode as global properties"
                );
            }
        }
    }
}

/// The block number a value's `block_id` names (its first 4 bytes), or 7.
fn claimed_height(v: &Value) -> u64 {
    v["block_id"]
        .as_str()
        .and_then(|id| id.get(..8))
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .unwrap_or(7)
}

/// `parse_block` refused `name`, and not merely for naming another height.
fn assert_refused_for_its_shape(
    outcome: Result<Option<steemgate::chain::block::Block>, RpcError>,
    name: &str,
) {
    match outcome {
        Err(e) => {
            let why = e.to_string();
            assert!(
                !why.contains("asked for block") && !why.contains("as its previous block"),
                "{name} was refused for its height, not its shape: {why}"
            );
        }
        Ok(block) => panic!("{name} decoded as a block: {block:?}"),
    }
}

fn result_of_lenient(v: &Value) -> Value {
    v.get("result").cloned().unwrap_or(Value::Null)
}

#[test]
fn truncated_answers_are_errors_not_panics() {
    let raw = support::fixture("steem-rpc/steem-condenser_get_block-48404683-transfer.json");
    let full: Value = serde_json::from_str(&raw).unwrap();
    let block = rpc_result(&full).unwrap().clone();
    // Every field removed in turn: either still a valid block, or a clear error.
    for key in block.as_object().unwrap().keys() {
        let mut damaged = block.clone();
        damaged.as_object_mut().unwrap().remove(key);
        let outcome = parse_block(48404683, &damaged, ChainName::Steem);
        if ["timestamp", "block_id", "transactions"].contains(&key.as_str()) {
            assert!(matches!(outcome, Err(RpcError::Decode(_))), "without {key}");
        } else if key == "transaction_ids" {
            // Each transaction still carries its own transaction_id.
            assert_eq!(outcome.unwrap().unwrap().transfers.len(), 1);
        }
    }
    // Prefixes of the raw body are not JSON at all: the RPC client treats
    // them as a failed node before decoding.
    for cut in [1, raw.len() / 2, raw.len() - 2] {
        assert!(serde_json::from_str::<Value>(&raw[..cut]).is_err());
    }
    // A block claiming another number is refused.
    let other = parse_block(48404684, &block, ChainName::Steem);
    assert!(
        matches!(&other, Err(e) if e.to_string().contains("asked for block 48404684")),
        "{other:?}"
    );
}
