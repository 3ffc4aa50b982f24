//! Asset strings: the follower's exact amounts (`Amount`, legacy and NAI
//! forms), the transaction serializer's assets (`LegacyAsset`) and the
//! operator's minimum (`parse_min_amount`).
//!
//! Properties: what parses prints back to a string that parses equal; the
//! follower and the serializer read a canonical legacy string the same way
//! (amount, three decimals, symbol bytes), so a transfer the gateway builds
//! is the transfer the follower matches; a minimum is at least 0.001 and
//! survives printing as a decimal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steemgate::chain::asset::parse_min_amount;
use steemgate::chain::crypto::serialize::LegacyAsset;
use steemgate::chain::{Amount, ChainName, Symbol};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for chain in [ChainName::Steem, ChainName::Hive] {
        if let Ok(amount) = Amount::parse_legacy(text, chain) {
            legacy_amount(text, amount, chain);
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text)
            && let Ok(amount) = Amount::from_json(&value, chain)
        {
            assert_eq!(Amount::parse_legacy(&amount.to_string(), chain), Ok(amount));
        }
    }
    if let Ok(asset) = LegacyAsset::parse(text) {
        assert!(asset.precision <= 18);
        assert!(!asset.symbol.is_empty() && asset.symbol.len() <= 7);
        assert!(asset.symbol.bytes().all(|b| b.is_ascii_uppercase()));
        let printed = print(&asset);
        assert_eq!(
            LegacyAsset::parse(&printed).as_ref(),
            Ok(&asset),
            "{printed}"
        );
    }
    if let Ok(units) = parse_min_amount(text) {
        assert!(units >= 1);
        let decimal = Amount {
            units,
            symbol: Symbol::Steem,
        }
        .decimal();
        assert_eq!(parse_min_amount(&decimal), Ok(units), "{decimal}");
    }
});

fn legacy_amount(text: &str, amount: Amount, chain: ChainName) {
    let printed = amount.to_string();
    assert_eq!(Amount::parse_legacy(&printed, chain), Ok(amount));
    // Canonical input (one space and no other whitespace, as nodes write
    // it): the serializer must read the same asset. The follower also trims
    // whitespace around the parts, the serializer does not: both fine.
    // Amounts past i64 cannot exist on chain.
    let canonical =
        text.chars().filter(|c| c.is_whitespace()).count() == 1 && text.matches(' ').count() == 1;
    let Ok(units) = i64::try_from(amount.units) else {
        return;
    };
    if canonical {
        let asset = LegacyAsset::parse(text)
            .unwrap_or_else(|e| panic!("follower reads {text:?}, serializer refuses: {e}"));
        assert_eq!(asset.amount, units);
        assert_eq!(asset.precision, 3);
        let expected = LegacyAsset::parse(&format!("0.001 {}", amount.symbol.as_str()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(asset.wire_symbol(), expected.wire_symbol());
    }
}

/// A `LegacyAsset` written back as its string form.
fn print(asset: &LegacyAsset) -> String {
    let sign = if asset.amount < 0 { "-" } else { "" };
    let digits = asset.amount.unsigned_abs().to_string();
    let precision = usize::from(asset.precision);
    if precision == 0 {
        return format!("{sign}{digits} {}", asset.symbol);
    }
    let padded = format!("{digits:0>width$}", width = precision + 1);
    let (whole, fraction) = padded.split_at(padded.len() - precision);
    format!("{sign}{whole}.{fraction} {}", asset.symbol)
}
