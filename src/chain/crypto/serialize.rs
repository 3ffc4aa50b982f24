//! The chain's legacy binary transaction format, the signing digest and the
//! transaction id.
//!
//! Why: a wallet signs `sha256(chain_id ‖ serialized transaction)`, not the
//! JSON it shows. For the instant transfer login the gateway builds the
//! transaction itself, keeps its own copy, and verifies the wallet's
//! signature against the bytes of THAT copy, so nothing the browser sends
//! back can change what was signed. The serializer therefore has to match
//! the node's byte for byte: little-endian integers, LEB128 varint lengths,
//! assets as `i64 amount ‖ u8 precision ‖ 7-byte symbol` (HIVE/HBD are
//! written with the legacy STEEM/SBD symbol bytes, as hived does), time as
//! u32 seconds. [`Transaction`] mirrors the JSON wallets return, so a
//! returned transaction can be compared field by field with the stored one.
//!
//! Only the operations a login needs (`transfer`, plus `vote` for the
//! published vectors) and `custom_json` (the follow/unfollow operations of
//! the stale-follows report, which the devnet applies) are supported; anything else is refused, never
//! approximated. Non-empty `extensions` are refused for the same reason.

use std::fmt;

use sha2::{Digest, Sha256};
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::keys::PublicKey;
use crate::chain::ChainName;

/// Why a transaction or value could not be serialized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerializeError {
    #[error("asset {0:?} is not \"<amount> <SYMBOL>\" with at most 7 symbol letters")]
    Asset(String),
    #[error("time {0:?} is not YYYY-MM-DDTHH:MM:SS within 1970..2106")]
    Time(String),
    #[error("string of {0} bytes is too long to serialize")]
    StringTooLong(usize),
    #[error("{0} items are too many to serialize")]
    TooMany(usize),
    #[error("transaction extensions must be empty")]
    Extensions,
    #[error("block id {0:?} is not 40 hex characters")]
    BlockId(String),
}

/// The chain id that prefixes every signing digest.
pub fn chain_id(chain: ChainName) -> [u8; 32] {
    let mut id = [0u8; 32];
    if chain == ChainName::Hive {
        id[..4].copy_from_slice(&[0xbe, 0xea, 0xb0, 0xde]);
    }
    id
}

/// `sha256(chain_id ‖ tx_bytes)`: what the wallet signs.
pub fn digest(chain: ChainName, tx_bytes: &[u8]) -> [u8; 32] {
    digest_with_chain_id(&chain_id(chain), tx_bytes)
}

/// [`digest`] for an explicit chain id (Hive blocks before HF24 were signed
/// with the all-zero Steem id).
pub fn digest_with_chain_id(chain_id: &[u8; 32], tx_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(chain_id);
    hasher.update(tx_bytes);
    hasher.finalize().into()
}

/// The transaction id: hex of the first 20 bytes of `sha256(tx_bytes)`.
pub fn transaction_id(tx_bytes: &[u8]) -> String {
    let hash = Sha256::digest(tx_bytes);
    hex::encode(&hash[..20])
}

/// `(ref_block_num, ref_block_prefix)` for a transaction that references
/// the block with id `block_id` (40 hex): the low 16 bits of the block
/// number (the id's first 4 bytes, big-endian) and the id's bytes 4..8 read
/// little-endian. The node rejects a transaction whose reference does not
/// match a recent block, which bounds how long a signed login stays usable.
pub fn ref_block_from_id(block_id: &str) -> Result<(u16, u32), SerializeError> {
    let bad = || SerializeError::BlockId(block_id.chars().take(64).collect());
    if block_id.len() != 40 {
        return Err(bad());
    }
    let bytes = hex::decode(block_id).map_err(|_| bad())?;
    let ref_block_num = u16::from_be_bytes([bytes[2], bytes[3]]);
    let ref_block_prefix = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    Ok((ref_block_num, ref_block_prefix))
}

/// A point in chain time: whole seconds since 1970 in a u32, written in JSON
/// as `YYYY-MM-DDTHH:MM:SS` (UTC, no zone suffix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChainTime(pub u32);

impl ChainTime {
    pub fn parse(text: &str) -> Result<Self, SerializeError> {
        let bad = || SerializeError::Time(text.to_string());
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let parsed = PrimitiveDateTime::parse(text, format).map_err(|_| bad())?;
        let seconds = parsed.assume_utc().unix_timestamp();
        u32::try_from(seconds).map(ChainTime).map_err(|_| bad())
    }

    pub fn unix_seconds(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ChainTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
        let text = time::OffsetDateTime::from_unix_timestamp(i64::from(self.0))
            .ok()
            .and_then(|t| t.format(format).ok())
            .ok_or(fmt::Error)?;
        f.write_str(&text)
    }
}

impl serde::Serialize for ChainTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChainTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ChainTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An asset in the legacy string form (`"0.001 STEEM"`, `"-100.333 HBD"`,
/// `"123456.789000 VESTS"`), decoded for serialization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyAsset {
    pub amount: i64,
    pub precision: u8,
    /// The symbol as written in the string (HIVE stays HIVE here).
    pub symbol: String,
}

impl LegacyAsset {
    pub fn parse(text: &str) -> Result<Self, SerializeError> {
        let bad = || SerializeError::Asset(text.to_string());
        let (number, symbol) = text.split_once(' ').ok_or_else(bad)?;
        if symbol.is_empty() || symbol.len() > 7 || !symbol.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(bad());
        }
        let (negative, unsigned) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if whole.is_empty()
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (unsigned.contains('.') && fraction.is_empty())
        {
            return Err(bad());
        }
        let precision = u8::try_from(fraction.len()).map_err(|_| bad())?;
        if precision > 18 {
            return Err(bad());
        }
        let digits = format!("{whole}{fraction}");
        let magnitude: i64 = digits.parse().map_err(|_| bad())?;
        let amount = if negative { -magnitude } else { magnitude };
        Ok(LegacyAsset {
            amount,
            precision,
            symbol: symbol.to_string(),
        })
    }

    /// The 7 symbol bytes on the wire: Hive's HIVE/HBD keep Steem's legacy
    /// STEEM/SBD bytes.
    pub fn wire_symbol(&self) -> [u8; 7] {
        let name = match self.symbol.as_str() {
            "HIVE" => "STEEM",
            "HBD" => "SBD",
            other => other,
        };
        let mut out = [0u8; 7];
        for (slot, byte) in out.iter_mut().zip(name.bytes()) {
            *slot = byte;
        }
        out
    }
}

/// Appends chain-format values to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct BinaryWriter {
    bytes: Vec<u8>,
}

impl BinaryWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    pub fn i8(&mut self, value: i8) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn i16(&mut self, value: i16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn i32(&mut self, value: i32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }
    pub fn bool(&mut self, value: bool) {
        self.bytes.push(u8::from(value));
    }

    /// An unsigned LEB128 varint (lengths and counts).
    pub fn varint32(&mut self, mut value: u32) {
        loop {
            let low = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.bytes.push(low);
                return;
            }
            self.bytes.push(low | 0x80);
        }
    }

    /// A count prefix for arrays and maps.
    pub fn count(&mut self, count: usize) -> Result<(), SerializeError> {
        let value = u32::try_from(count).map_err(|_| SerializeError::TooMany(count))?;
        self.varint32(value);
        Ok(())
    }

    /// A varint length then the UTF-8 bytes.
    pub fn string(&mut self, value: &str) -> Result<(), SerializeError> {
        let len =
            u32::try_from(value.len()).map_err(|_| SerializeError::StringTooLong(value.len()))?;
        self.varint32(len);
        self.bytes.extend_from_slice(value.as_bytes());
        Ok(())
    }

    pub fn time(&mut self, value: ChainTime) {
        self.u32(value.0);
    }

    pub fn asset(&mut self, value: &LegacyAsset) {
        self.i64(value.amount);
        self.u8(value.precision);
        self.bytes.extend_from_slice(&value.wire_symbol());
    }

    pub fn public_key(&mut self, value: &PublicKey) {
        self.bytes.extend_from_slice(&value.to_compressed());
    }
}

/// `transfer` (operation id 2), in the JSON form wallets return.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferOperation {
    pub from: String,
    pub to: String,
    /// Legacy asset string, e.g. `"0.001 STEEM"`.
    pub amount: String,
    pub memo: String,
}

/// `vote` (operation id 0); present because the published vectors use it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteOperation {
    pub voter: String,
    pub author: String,
    pub permlink: String,
    pub weight: i16,
}

/// `custom_json` (operation id 18): an app's payload, e.g. a follow. The
/// account sets are written in the order given; wallets send them sorted
/// (the chain's `flat_set`), and one name is always sorted.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomJsonOperation {
    pub required_auths: Vec<String>,
    pub required_posting_auths: Vec<String>,
    pub id: String,
    /// The payload as a JSON text (not an object): signed byte for byte.
    pub json: String,
}

/// One operation, `["name", {fields}]` in JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Operation {
    Vote(VoteOperation),
    Transfer(TransferOperation),
    CustomJson(CustomJsonOperation),
}

impl Operation {
    /// The operation's index in the chain's operation variant.
    pub fn id(&self) -> u32 {
        match self {
            Operation::Vote(_) => 0,
            Operation::Transfer(_) => 2,
            Operation::CustomJson(_) => 18,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Operation::Vote(_) => "vote",
            Operation::Transfer(_) => "transfer",
            Operation::CustomJson(_) => "custom_json",
        }
    }

    pub fn write(&self, out: &mut BinaryWriter) -> Result<(), SerializeError> {
        out.varint32(self.id());
        match self {
            Operation::Vote(vote) => {
                out.string(&vote.voter)?;
                out.string(&vote.author)?;
                out.string(&vote.permlink)?;
                out.i16(vote.weight);
            }
            Operation::Transfer(transfer) => {
                out.string(&transfer.from)?;
                out.string(&transfer.to)?;
                out.asset(&LegacyAsset::parse(&transfer.amount)?);
                out.string(&transfer.memo)?;
            }
            Operation::CustomJson(custom) => {
                for names in [&custom.required_auths, &custom.required_posting_auths] {
                    out.count(names.len())?;
                    for name in names {
                        out.string(name)?;
                    }
                }
                out.string(&custom.id)?;
                out.string(&custom.json)?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut pair = serializer.serialize_tuple(2)?;
        pair.serialize_element(self.name())?;
        match self {
            Operation::Vote(vote) => pair.serialize_element(vote)?,
            Operation::Transfer(transfer) => pair.serialize_element(transfer)?,
            Operation::CustomJson(custom) => pair.serialize_element(custom)?,
        }
        pair.end()
    }
}

impl<'de> serde::Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let (name, body): (String, serde_json::Value) =
            serde::Deserialize::deserialize(deserializer)?;
        match name.as_str() {
            "transfer" => serde_json::from_value(body)
                .map(Operation::Transfer)
                .map_err(D::Error::custom),
            "vote" => serde_json::from_value(body)
                .map(Operation::Vote)
                .map_err(D::Error::custom),
            "custom_json" => serde_json::from_value(body)
                .map(Operation::CustomJson)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!("unsupported operation {other:?}"))),
        }
    }
}

/// A transaction in the JSON form wallets and nodes use. Unknown top-level
/// fields (a node's `transaction_id`, `block_num`…) are ignored: they are
/// not part of what is signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transaction {
    pub ref_block_num: u16,
    pub ref_block_prefix: u32,
    pub expiration: ChainTime,
    pub operations: Vec<Operation>,
    #[serde(default)]
    pub extensions: Vec<serde_json::Value>,
    /// Hex compact signatures; not part of the signed bytes.
    #[serde(default)]
    pub signatures: Vec<String>,
}

impl Transaction {
    /// The unsigned bytes (everything but `signatures`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, SerializeError> {
        if !self.extensions.is_empty() {
            return Err(SerializeError::Extensions);
        }
        let mut out = BinaryWriter::new();
        out.u16(self.ref_block_num);
        out.u32(self.ref_block_prefix);
        out.time(self.expiration);
        out.count(self.operations.len())?;
        for operation in &self.operations {
            operation.write(&mut out)?;
        }
        out.count(0)?;
        Ok(out.into_bytes())
    }

    /// The digest a wallet signs for `chain`.
    pub fn digest(&self, chain: ChainName) -> Result<[u8; 32], SerializeError> {
        Ok(digest(chain, &self.to_bytes()?))
    }

    /// The transaction id nodes report.
    pub fn id(&self) -> Result<String, SerializeError> {
        Ok(transaction_id(&self.to_bytes()?))
    }
}
