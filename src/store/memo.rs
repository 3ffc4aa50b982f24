//! The form in which memos are kept and compared.
//!
//! Why here: the store keys challenges by memo, and every backend must
//! agree with the follower (which reads memos off the chain) and with the
//! challenge issuer on one spelling. The store owns that spelling; the
//! layers above call it instead of each backend reaching up into auth.

/// The form memos are stored and compared in: trimmed, ASCII-lowercased
/// (wallets and people change case and add spaces; the code is
/// case-insensitive by design).
pub fn canonical_memo(memo: &str) -> String {
    memo.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::canonical_memo;

    #[test]
    fn case_and_surrounding_space_do_not_matter() {
        assert_eq!(canonical_memo("  Login:AB-cd \n"), "login:ab-cd");
        assert_eq!(canonical_memo("login:ab-cd"), "login:ab-cd");
    }
}
