//! Decoding of node answers into plain types, without any I/O.
//!
//! Why a module of its own: node answers are untrusted input in several
//! shapes (condenser_api with legacy `"0.001 STEEM"` strings and
//! `["transfer", {...}]` operations; block_api/database_api with NAI amount
//! objects and `{"type": "transfer_operation", "value": {...}}`). Everything
//! the follower acts on passes through here, where every shape is checked and
//! nothing can panic: a malformed single operation is skipped, a block whose
//! structure is broken is an [`RpcError::Decode`].

use serde_json::Value;
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::asset::AmountError;
use super::{Amount, ChainName, RpcError};
use crate::clock::UnixTime;

/// The parts of `get_dynamic_global_properties` the follower needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalProperties {
    pub head_block_number: u64,
    /// Timestamp of the head block (`time` field).
    pub head_block_time: UnixTime,
    pub last_irreversible_block_num: u64,
}

impl GlobalProperties {
    /// Decodes the `result` of `condenser_api.get_dynamic_global_properties`
    /// or `database_api.get_dynamic_global_properties` (both carry the three
    /// fields under the same names).
    pub fn from_json(v: &Value) -> Result<Self, RpcError> {
        let object = v.as_object().ok_or_else(|| {
            decode_err(format!(
                "global properties must be an object, got {}",
                kind(v)
            ))
        })?;
        let head_block_number = object
            .get("head_block_number")
            .and_then(Value::as_u64)
            .ok_or_else(|| decode_err("global properties lack a numeric head_block_number"))?;
        let last_irreversible_block_num = object
            .get("last_irreversible_block_num")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                decode_err("global properties lack a numeric last_irreversible_block_num")
            })?;
        let time = object
            .get("time")
            .and_then(Value::as_str)
            .ok_or_else(|| decode_err("global properties lack a time string"))?;
        if last_irreversible_block_num > head_block_number {
            return Err(decode_err(format!(
                "last irreversible block {last_irreversible_block_num} is after the head {head_block_number}"
            )));
        }
        Ok(Self {
            head_block_number,
            head_block_time: parse_timestamp(time)?,
            last_irreversible_block_num,
        })
    }
}

/// One transfer operation found in a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferOp {
    pub from: String,
    pub to: String,
    /// The decoded amount, or why it could not be decoded (matching refuses
    /// such a transfer, with the reason in the log).
    pub amount: Result<Amount, AmountError>,
    pub memo: String,
    /// Id of the transaction holding the operation.
    pub txid: String,
}

/// A produced block, reduced to what login matching needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub number: u64,
    /// 40 hex digits; the first 8 are the block number (checked).
    pub block_id: String,
    /// Id of the block before this one (checked to name `number - 1`): the
    /// follower compares it with the block it processed last to see forks.
    pub previous: String,
    pub timestamp: UnixTime,
    /// Transfers in block order.
    pub transfers: Vec<TransferOp>,
}

/// Decodes the `result` of `condenser_api.get_block [number]` or of
/// `block_api.get_block {"block_num": number}`.
///
/// `null` (condenser) and `{}` (block_api) mean the block has not been
/// produced yet: `Ok(None)`.
pub fn parse_block(number: u64, v: &Value, chain: ChainName) -> Result<Option<Block>, RpcError> {
    let block = match v {
        Value::Null => return Ok(None),
        Value::Object(map) if map.is_empty() => return Ok(None),
        Value::Object(map) => match map.get("block") {
            // block_api form: {"block": {...}}.
            Some(Value::Null) => return Ok(None),
            Some(inner @ Value::Object(_)) => inner,
            Some(other) => {
                return Err(decode_err(format!(
                    "block {number}: \"block\" is {}",
                    kind(other)
                )));
            }
            None => v,
        },
        other => {
            return Err(decode_err(format!(
                "block {number} must be an object or null, got {}",
                kind(other)
            )));
        }
    };

    let timestamp = block
        .get("timestamp")
        .and_then(Value::as_str)
        .ok_or_else(|| decode_err(format!("block {number} has no timestamp")))?;
    let timestamp = parse_timestamp(timestamp)?;
    let block_id = block
        .get("block_id")
        .and_then(Value::as_str)
        .ok_or_else(|| decode_err(format!("block {number} has no block_id")))?
        .to_ascii_lowercase();
    if block_id_number(&block_id) != Some(number) {
        return Err(decode_err(format!(
            "asked for block {number} but got block id {:?}",
            truncate(&block_id, 48)
        )));
    }
    let previous = block
        .get("previous")
        .and_then(Value::as_str)
        .ok_or_else(|| decode_err(format!("block {number} has no previous block id")))?
        .to_ascii_lowercase();
    if block_id_number(&previous) != Some(number.saturating_sub(1)) {
        return Err(decode_err(format!(
            "block {number} names {:?} as its previous block",
            truncate(&previous, 48)
        )));
    }
    let transactions = block
        .get("transactions")
        .and_then(Value::as_array)
        .ok_or_else(|| decode_err(format!("block {number} has no transactions array")))?;
    let transaction_ids = match block.get("transaction_ids") {
        None | Some(Value::Null) => None,
        Some(Value::Array(ids)) if ids.len() == transactions.len() => Some(ids),
        Some(_) => {
            return Err(decode_err(format!(
                "block {number}: transaction_ids does not list one id per transaction"
            )));
        }
    };

    let mut transfers = Vec::new();
    for (index, transaction) in transactions.iter().enumerate() {
        if let Some(recorded) = transaction.get("block_num")
            && recorded.as_u64() != Some(number)
        {
            return Err(decode_err(format!(
                "asked for block {number} but transaction {index} says it is in block {recorded}"
            )));
        }
        let operations = transaction
            .get("operations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                decode_err(format!(
                    "block {number}: transaction {index} has no operations array"
                ))
            })?;
        let txid = transaction_ids
            .and_then(|ids| ids.get(index))
            .or_else(|| transaction.get("transaction_id"))
            .and_then(Value::as_str);
        for (op_index, op) in operations.iter().enumerate() {
            match decode_transfer_op(op, txid.unwrap_or_default(), chain) {
                None => {}
                Some(Ok(_)) if txid.is_none() => {
                    return Err(decode_err(format!(
                        "block {number}: transaction {index} holds a transfer but has no transaction id"
                    )));
                }
                Some(Ok(transfer)) => transfers.push(transfer),
                Some(Err(why)) => {
                    tracing::debug!(
                        block = number,
                        transaction = index,
                        op = op_index,
                        "skipping malformed transfer: {why}"
                    );
                }
            }
        }
    }
    Ok(Some(Block {
        number,
        block_id,
        previous,
        timestamp,
        transfers,
    }))
}

/// The block number a block id names: ids are 20 bytes (40 hex digits) whose
/// first 4 bytes are the block number, big-endian. `None` for anything else.
pub fn block_id_number(id: &str) -> Option<u64> {
    if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(id.get(..8)?, 16).ok().map(u64::from)
}

/// Decodes one operation in either wire form. `None`: not a transfer;
/// `Some(Err)`: a transfer whose fields are malformed (the reason).
pub fn decode_transfer_op(
    op: &Value,
    txid: &str,
    chain: ChainName,
) -> Option<Result<TransferOp, String>> {
    let body = match op {
        // condenser form: ["transfer", {...}]
        Value::Array(pair) => match (pair.first().and_then(Value::as_str), pair.get(1)) {
            (Some("transfer"), Some(body)) if pair.len() == 2 => body,
            (Some("transfer"), _) => {
                return Some(Err("condenser transfer is not a [name, body] pair".into()));
            }
            _ => return None,
        },
        // appbase form: {"type": "transfer_operation", "value": {...}}
        Value::Object(map) => match (map.get("type").and_then(Value::as_str), map.get("value")) {
            (Some("transfer_operation"), Some(body)) => body,
            (Some("transfer_operation"), None) => {
                return Some(Err("transfer_operation without a value".into()));
            }
            _ => return None,
        },
        _ => return None,
    };
    let field = |name: &str| -> Result<String, String> {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("transfer field {name:?} is missing or not a string"))
    };
    let decoded = (|| {
        let amount = body.get("amount").ok_or("transfer has no amount")?;
        Ok(TransferOp {
            from: field("from")?,
            to: field("to")?,
            amount: Amount::from_json(amount, chain),
            memo: field("memo")?,
            txid: txid.to_string(),
        })
    })();
    Some(decoded)
}

/// Takes apart one JSON-RPC 2.0 response object: its `result`, or the node's
/// `error` as [`RpcError::Node`]. Anything else is [`RpcError::Decode`].
pub fn rpc_result(envelope: &Value) -> Result<&Value, RpcError> {
    let object = envelope.as_object().ok_or_else(|| {
        decode_err(format!(
            "a JSON-RPC response must be an object, got {}",
            kind(envelope)
        ))
    })?;
    if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
        return Err(node_error(error));
    }
    object
        .get("result")
        .ok_or_else(|| decode_err("JSON-RPC response has neither result nor error"))
}

/// Turns a JSON-RPC `error` object into [`RpcError::Node`]. A malformed error
/// object still becomes a node error (the node did refuse), with what it said.
pub fn node_error(error: &Value) -> RpcError {
    let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
    let message = match error.get("message").and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None => truncate(&error.to_string(), 300),
    };
    RpcError::Node { code, message }
}

/// Parses a node timestamp, `"2020-11-07T20:22:33"` (UTC, no zone).
pub fn parse_timestamp(raw: &str) -> Result<UnixTime, RpcError> {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let parsed = PrimitiveDateTime::parse(raw, &format)
        .map_err(|e| decode_err(format!("timestamp {:?}: {e}", truncate(raw, 40))))?;
    let seconds = parsed.assume_utc().unix_timestamp();
    UnixTime::try_from(seconds).map_err(|_| decode_err(format!("timestamp {raw:?} is before 1970")))
}

fn decode_err(message: impl Into<String>) -> RpcError {
    RpcError::Decode(message.into())
}

/// How a JSON value's type reads in an error ("a string", "null").
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_timestamp("2020-11-07T20:22:33").unwrap(),
            1_604_780_553
        );
        for bad in [
            "",
            "2020-11-07 20:22:33",
            "2020-11-07T20:22:33Z",
            "1969-12-31T23:59:59",
            "2020-13-01T00:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn odd_shapes_never_panic() {
        let weird = [
            json!(1),
            json!("x"),
            json!([]),
            json!({"block": 3}),
            json!({"timestamp": 5}),
            json!({"timestamp": "2020-11-07T20:22:33", "block_id": "x", "transactions": [1]}),
            json!({"timestamp": "2020-11-07T20:22:33", "block_id": "x", "transactions": [], "transaction_ids": ["a"]}),
        ];
        for v in weird {
            assert!(parse_block(1, &v, ChainName::Steem).is_err(), "{v}");
        }
        let ok_with_junk_ops = json!({
            "timestamp": "2020-11-07T20:22:33", "block_id": id(1), "previous": id(0), "transaction_ids": ["t1"],
            "transactions": [{"operations": [7, ["transfer"], ["transfer", {"from": 1}], {"type": "transfer_operation"},
                ["transfer", {"from": "a", "to": "b", "amount": "x", "memo": "m"}]]}]
        });
        let block = parse_block(1, &ok_with_junk_ops, ChainName::Steem)
            .unwrap()
            .unwrap();
        assert_eq!(block.transfers.len(), 1);
        assert!(block.transfers[0].amount.is_err());
        assert_eq!(block.transfers[0].txid, "t1");
    }

    fn id(number: u32) -> String {
        format!("{number:08x}{}", "ab".repeat(16))
    }

    #[test]
    fn block_number_mismatch_is_refused() {
        let v = json!({"timestamp": "2020-11-07T20:22:33", "block_id": id(5), "previous": id(4),
            "transactions": [{"operations": [], "block_num": 5}], "transaction_ids": ["t"]});
        assert!(parse_block(6, &v, ChainName::Steem).is_err());
        assert!(parse_block(5, &v, ChainName::Steem).unwrap().is_some());
        // The id names the block even without transactions to check.
        let empty = json!({"timestamp": "2020-11-07T20:22:33", "block_id": id(7), "previous": id(6),
            "transactions": []});
        assert!(parse_block(8, &empty, ChainName::Steem).is_err());
        let block = parse_block(7, &empty, ChainName::Steem).unwrap().unwrap();
        assert_eq!((block.block_id, block.previous), (id(7), id(6)));
        // A previous id naming another block, or no previous at all.
        let mut bad_previous = empty.clone();
        bad_previous["previous"] = json!(id(5));
        assert!(parse_block(7, &bad_previous, ChainName::Steem).is_err());
        bad_previous.as_object_mut().unwrap().remove("previous");
        assert!(parse_block(7, &bad_previous, ChainName::Steem).is_err());
    }

    #[test]
    fn block_ids_name_their_block() {
        assert_eq!(block_id_number(&id(0x02e2_c4cb)), Some(0x02e2_c4cb));
        assert_eq!(block_id_number(&"0".repeat(40)), Some(0));
        for bad in [
            "",
            "x",
            "0000000",
            &"g".repeat(40),
            &"0".repeat(41),
            "0000000é0000000000000000000000000000000",
        ] {
            assert_eq!(block_id_number(bad), None, "{bad}");
        }
    }

    #[test]
    fn envelope() {
        assert_eq!(
            rpc_result(&json!({"jsonrpc": "2.0", "result": null, "id": 1})).unwrap(),
            &Value::Null
        );
        assert!(matches!(
            rpc_result(&json!({"id": 1})),
            Err(RpcError::Decode(_))
        ));
        assert!(matches!(
            rpc_result(&json!({"error": {"code": -32000, "message": "boom"}})),
            Err(RpcError::Node { code: -32000, .. })
        ));
    }
}
