//! The wallet-login parsers on their own: signature hex, public keys, the
//! sign-buffer challenge text, transaction JSON (as the browser sends it
//! back), chain times and block ids. Each input is tried with every parser.
//!
//! Properties: whatever parses prints back to the same text (signatures in
//! lowercase hex, keys and challenge texts exactly), re-parses equal, and
//! only low-S signatures with a 27..=34 header are accepted; a transaction
//! survives a JSON round trip unchanged, equals itself field by field, and
//! its signers can be asked for without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steemgate::auth::wallet::compare_transactions;
use steemgate::chain::ChainName;
use steemgate::chain::crypto::keys::{decode_key_string, encode_key_bytes};
use steemgate::chain::crypto::serialize::ref_block_from_id;
use steemgate::chain::crypto::{
    ChainTime, CompactSignature, LoginChallenge, Operation, PublicKey, Transaction,
    recover_message_signer, recover_transaction_signers,
};

fuzz_target!(|data: &[u8]| {
    signature_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    signature_hex(text);
    public_key(text);
    challenge_text(text);
    transaction_json(text);
    if let Ok(time) = ChainTime::parse(text) {
        assert_eq!(ChainTime::parse(&time.to_string()), Ok(time));
    }
    if let Ok((num, prefix)) = ref_block_from_id(text) {
        assert_eq!(text.len(), 40);
        assert_eq!(format!("{num:04x}"), text[4..8].to_ascii_lowercase());
        let bytes: Vec<u8> = (8..16)
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
            .collect();
        assert_eq!(prefix.to_le_bytes().as_slice(), bytes.as_slice());
    }
});

fn signature_bytes(data: &[u8]) {
    let Ok(signature) = CompactSignature::from_bytes(data) else {
        return;
    };
    assert_eq!(signature.to_bytes().as_slice(), data);
    assert!((27..=34).contains(&signature.header()));
    // Recovery over any digest answers, or refuses; never panics.
    let _ = signature.recover(&[0x5a; 32]);
}

fn signature_hex(text: &str) {
    let Ok(signature) = CompactSignature::from_hex(text) else {
        return;
    };
    assert_eq!(signature.to_hex(), text.to_ascii_lowercase());
    assert_eq!(
        CompactSignature::from_hex(&signature.to_hex()),
        Ok(signature.clone())
    );
    assert!((27..=34).contains(&signature.header()));
    assert!(signature.recovery_id() <= 3);
    // The high-S twin of an accepted signature is a malleated copy: refused.
    let mut twin = signature.to_bytes();
    let s = &mut twin[33..];
    let order: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    // s' = n - s (big-endian subtraction).
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let diff = i16::from(order[i]) - i16::from(s[i]) - borrow;
        borrow = i16::from(diff < 0);
        s[i] = (diff + 256 * borrow) as u8;
    }
    assert!(
        CompactSignature::from_bytes(&twin).is_err(),
        "high-S twin accepted"
    );
    let _ = recover_message_signer(text.as_bytes(), text);
}

fn public_key(text: &str) {
    if let Ok(bytes) = decode_key_string(text, "STM") {
        assert_eq!(encode_key_bytes(&bytes, "STM"), text);
    }
    if let Ok(key) = PublicKey::parse(text) {
        assert_eq!(key.to_string_with_prefix("STM"), text);
        assert_eq!(
            PublicKey::from_compressed(&key.to_compressed()).as_ref(),
            Ok(&key)
        );
    }
}

fn challenge_text(text: &str) {
    let Ok(challenge) = LoginChallenge::parse(text) else {
        return;
    };
    assert_eq!(challenge.to_message(), text);
    let rebuilt = LoginChallenge::with_nonce(
        challenge.site(),
        challenge.chain(),
        challenge.account().clone(),
        challenge.nonce(),
        challenge.expires(),
    );
    assert_eq!(rebuilt.as_ref(), Ok(&challenge));
}

fn transaction_json(text: &str) {
    let Ok(transaction) = serde_json::from_str::<Transaction>(text) else {
        return;
    };
    let json = serde_json::to_string(&transaction)
        .unwrap_or_else(|e| panic!("a parsed transaction does not print: {e}"));
    let again: Transaction = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("a printed transaction does not parse: {e}\n{json}"));
    assert_eq!(again, transaction);
    // Equal transfers compare equal; other operations are never "the same"
    // as an issued login transfer.
    let transfers_only = transaction
        .operations
        .iter()
        .all(|op| matches!(op, Operation::Transfer(_)));
    assert_eq!(
        compare_transactions(&transaction, &again).is_ok(),
        transfers_only
    );
    if let Ok(bytes) = transaction.to_bytes() {
        assert_eq!(again.to_bytes().as_ref(), Ok(&bytes));
        assert!(transaction.extensions.is_empty());
    }
    for chain in [ChainName::Steem, ChainName::Hive] {
        let _ = recover_transaction_signers(chain, &transaction, &transaction.signatures);
    }
}
