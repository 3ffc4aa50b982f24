//! Exact fixed-point amounts in both of the chain's asset encodings.
//!
//! Why: the original app never checked what was paid. Matching needs the
//! asset and an exact comparison with the minimum, so amounts are integers of
//! the asset's smallest unit (all four liquid assets have precision 3), never
//! floats. Nodes answer either the legacy string form (`"0.001 STEEM"`) or the
//! NAI object form (`{"amount":"1","precision":3,"nai":"@@000000021"}`); both
//! decode to [`Amount`].

use std::fmt;

use super::ChainName;

/// The liquid assets a login transfer may be paid in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Symbol {
    Steem,
    Sbd,
    Hive,
    Hbd,
}

impl Symbol {
    pub fn as_str(self) -> &'static str {
        match self {
            Symbol::Steem => "STEEM",
            Symbol::Sbd => "SBD",
            Symbol::Hive => "HIVE",
            Symbol::Hbd => "HBD",
        }
    }

    /// The native (non-dollar) asset of a chain.
    pub fn native(chain: ChainName) -> Self {
        match chain {
            ChainName::Steem => Symbol::Steem,
            ChainName::Hive => Symbol::Hive,
        }
    }

    /// The assets a chain pays in: native first, then its dollar asset.
    pub fn accepted(chain: ChainName) -> [Symbol; 2] {
        match chain {
            ChainName::Steem => [Symbol::Steem, Symbol::Sbd],
            ChainName::Hive => [Symbol::Hive, Symbol::Hbd],
        }
    }

    /// Reads a symbol as a node of `chain` writes it. Hive nodes may still
    /// echo the pre-fork names STEEM/SBD; on Hive those mean HIVE/HBD.
    pub fn from_legacy(raw: &str, chain: ChainName) -> Option<Self> {
        let symbol = match raw {
            "STEEM" => Symbol::Steem,
            "SBD" => Symbol::Sbd,
            "HIVE" => Symbol::Hive,
            "HBD" => Symbol::Hbd,
            _ => return None,
        };
        Some(match (chain, symbol) {
            (ChainName::Hive, Symbol::Steem) => Symbol::Hive,
            (ChainName::Hive, Symbol::Sbd) => Symbol::Hbd,
            (_, s) => s,
        })
    }

    /// Reads a NAI (`@@000000021` native, `@@000000013` dollar) for `chain`.
    pub fn from_nai(nai: &str, chain: ChainName) -> Option<Self> {
        match (nai, chain) {
            ("@@000000021", ChainName::Steem) => Some(Symbol::Steem),
            ("@@000000013", ChainName::Steem) => Some(Symbol::Sbd),
            ("@@000000021", ChainName::Hive) => Some(Symbol::Hive),
            ("@@000000013", ChainName::Hive) => Some(Symbol::Hbd),
            _ => None,
        }
    }
}

/// The decimal places of every liquid asset on both chains.
pub const PRECISION: u32 = 3;
const SCALE: u64 = 10u64.pow(PRECISION);

/// An exact amount: `units` thousandths of `symbol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Amount {
    pub units: u64,
    pub symbol: Symbol,
}

/// Why an amount could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount {0:?} is not of the form \"0.001 STEEM\"")]
    Malformed(String),
    #[error("unknown asset {0:?}")]
    UnknownAsset(String),
    #[error("amount must have exactly {PRECISION} decimals, got {0:?}")]
    Precision(String),
    #[error("amount {0:?} is out of range")]
    Range(String),
}

impl Amount {
    /// Parses the legacy string form, `"0.001 STEEM"`.
    pub fn parse_legacy(raw: &str, chain: ChainName) -> Result<Self, AmountError> {
        let (number, symbol) = raw
            .trim()
            .split_once(' ')
            .ok_or_else(|| AmountError::Malformed(raw.to_string()))?;
        let symbol = Symbol::from_legacy(symbol.trim(), chain)
            .ok_or_else(|| AmountError::UnknownAsset(symbol.to_string()))?;
        let units = parse_decimal_units(number).map_err(|e| match e {
            DecimalError::Precision => AmountError::Precision(raw.to_string()),
            DecimalError::Range => AmountError::Range(raw.to_string()),
            DecimalError::Malformed => AmountError::Malformed(raw.to_string()),
        })?;
        Ok(Amount { units, symbol })
    }

    /// Decodes either wire form from a JSON value.
    pub fn from_json(value: &serde_json::Value, chain: ChainName) -> Result<Self, AmountError> {
        match value {
            serde_json::Value::String(s) => Self::parse_legacy(s, chain),
            serde_json::Value::Object(map) => {
                let amount = map.get("amount").and_then(|v| v.as_str());
                let precision = map.get("precision").and_then(|v| v.as_u64());
                let nai = map.get("nai").and_then(|v| v.as_str());
                let (Some(amount), Some(precision), Some(nai)) = (amount, precision, nai) else {
                    return Err(AmountError::Malformed(value.to_string()));
                };
                let symbol = Symbol::from_nai(nai, chain)
                    .ok_or_else(|| AmountError::UnknownAsset(nai.to_string()))?;
                if precision != u64::from(PRECISION) {
                    return Err(AmountError::Precision(value.to_string()));
                }
                if amount.is_empty() || !amount.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(AmountError::Malformed(value.to_string()));
                }
                let units = amount
                    .parse::<u64>()
                    .map_err(|_| AmountError::Range(value.to_string()))?;
                Ok(Amount { units, symbol })
            }
            other => Err(AmountError::Malformed(other.to_string())),
        }
    }

    /// The decimal part alone, `"0.001"`.
    pub fn decimal(&self) -> String {
        format!("{}.{:03}", self.units / SCALE, self.units % SCALE)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.symbol.as_str())
    }
}

enum DecimalError {
    Malformed,
    Precision,
    Range,
}

/// `"12.345"` → 12345. Exactly three decimals, as nodes write them.
fn parse_decimal_units(number: &str) -> Result<u64, DecimalError> {
    let (int, frac) = number.split_once('.').ok_or(DecimalError::Precision)?;
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::Malformed);
    }
    if frac.len() != PRECISION as usize {
        return Err(DecimalError::Precision);
    }
    let int: u64 = int.parse().map_err(|_| DecimalError::Range)?;
    let frac: u64 = frac.parse().map_err(|_| DecimalError::Malformed)?;
    int.checked_mul(SCALE)
        .and_then(|v| v.checked_add(frac))
        .ok_or(DecimalError::Range)
}

/// Parses an operator-written minimum such as `"0.001"` (1 to 3 decimals
/// allowed, no symbol) into thousandths.
pub fn parse_min_amount(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (int, frac) = raw.split_once('.').unwrap_or((raw, ""));
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 3
    {
        return Err(format!(
            "{raw:?} is not a decimal amount with at most 3 decimals, like \"0.001\""
        ));
    }
    let int: u64 = int.parse().map_err(|_| format!("{raw:?} is too large"))?;
    let frac_units: u64 = format!("{frac:0<3}")
        .parse()
        .map_err(|_| format!("{raw:?} is malformed"))?;
    let units = int
        .checked_mul(SCALE)
        .and_then(|v| v.checked_add(frac_units))
        .ok_or_else(|| format!("{raw:?} is too large"))?;
    if units == 0 {
        return Err("the minimum amount must be at least 0.001".to_string());
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn legacy_and_nai_agree() {
        let legacy = Amount::parse_legacy("0.001 STEEM", ChainName::Steem).unwrap();
        let nai = Amount::from_json(
            &json!({"amount":"1","precision":3,"nai":"@@000000021"}),
            ChainName::Steem,
        )
        .unwrap();
        assert_eq!(legacy, nai);
        assert_eq!(legacy.units, 1);
        assert_eq!(legacy.to_string(), "0.001 STEEM");
    }

    #[test]
    fn hive_reads_pre_fork_symbols_as_hive() {
        let a = Amount::parse_legacy("1.500 SBD", ChainName::Hive).unwrap();
        assert_eq!(a.symbol, Symbol::Hbd);
        assert_eq!(a.units, 1500);
        let b = Amount::parse_legacy("2.000 HIVE", ChainName::Steem).unwrap();
        assert_eq!(
            b.symbol,
            Symbol::Hive,
            "a HIVE amount on steem stays HIVE (and is then not accepted)"
        );
    }

    #[test]
    fn rejects_malformed_amounts() {
        for raw in [
            "0.01 STEEM",
            "1 STEEM",
            "0.0001 STEEM",
            "abc STEEM",
            "0.001",
            "0.001 VESTS",
            "-0.001 STEEM",
            "99999999999999999999.000 STEEM",
            "",
        ] {
            assert!(
                Amount::parse_legacy(raw, ChainName::Steem).is_err(),
                "{raw}"
            );
        }
        assert!(
            Amount::from_json(
                &json!({"amount":"1","precision":6,"nai":"@@000000037"}),
                ChainName::Steem
            )
            .is_err()
        );
        assert!(
            Amount::from_json(
                &json!({"amount":"-1","precision":3,"nai":"@@000000021"}),
                ChainName::Steem
            )
            .is_err()
        );
        assert!(Amount::from_json(&json!(0.001), ChainName::Steem).is_err());
    }

    #[test]
    fn min_amount_parsing() {
        assert_eq!(parse_min_amount("0.001"), Ok(1));
        assert_eq!(parse_min_amount("1"), Ok(1000));
        assert_eq!(parse_min_amount("0.5"), Ok(500));
        assert!(parse_min_amount("0").is_err());
        assert!(parse_min_amount("0.0001").is_err());
        assert!(parse_min_amount("1e3").is_err());
    }
}
