//! Login challenge memos: short, one-time, random, and not the session id.
//!
//! Why: memos are public on the chain. The memo is a fresh random code drawn
//! from the OS CSPRNG, bound to one session only through the store, and
//! expires after `session.challenge_ttl`. Codes use Crockford base32 (no
//! I, L, O, U) in groups of four so people can read and type them; matching
//! ignores ASCII case and surrounding whitespace.

use crate::random::{RandomnessUnavailable, os_random};

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a code: 16 × 5 bits = 80 bits of randomness.
pub const CODE_CHARS: usize = 16;

/// A new memo: `prefix` followed by a code like `K7Q2-M9XD-3FTA-PW8E`.
pub fn new_memo(prefix: &str) -> Result<String, RandomnessUnavailable> {
    let mut random = [0u8; CODE_CHARS];
    os_random(&mut random)?;
    let mut memo = String::with_capacity(prefix.len() + CODE_CHARS + 3);
    memo.push_str(prefix);
    for (i, byte) in random.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            memo.push('-');
        }
        memo.push(ALPHABET[usize::from(byte & 31)] as char);
    }
    Ok(memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memos_have_the_documented_shape() {
        let memo = new_memo("login:").unwrap();
        assert!(memo.starts_with("login:"));
        let code = &memo["login:".len()..];
        assert_eq!(code.len(), CODE_CHARS + 3);
        assert!(
            code.split('-')
                .all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET.contains(&b)))
        );
    }

    #[test]
    fn memos_do_not_repeat() {
        let memos: std::collections::HashSet<_> =
            (0..1000).map(|_| new_memo("").unwrap()).collect();
        assert_eq!(memos.len(), 1000);
    }
}
