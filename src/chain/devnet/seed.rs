//! Deterministic demo accounts for a seeded devnet.
//!
//! Why: the demo ("who among the accounts you follow went quiet?") and the
//! tests need a visitor account that follows a few thousand accounts with a
//! realistic spread of activity. A fixed-seed PRNG makes the set identical on
//! every run; dates are relative to the seeding time, so "days inactive"
//! means the same thing whenever the devnet starts.

use super::{ChainState, SimAccount};
use crate::chain::account::AccountName;
use crate::chain::follow::FollowWhat;
use crate::clock::UnixTime;

/// The visitor account of the demo.
pub const DEMO_ACCOUNT: &str = "demo";
/// The gateway account of the demo (receives the login transfers).
pub const GATEWAY_ACCOUNT: &str = "gate-demo";
/// How many generated accounts `demo` follows.
pub const DEMO_FOLLOWING: usize = 3000;

const DAY: u64 = 86_400;
/// 2016-03-24T16:05:00, the Steem genesis: no account is older.
const CHAIN_GENESIS: UnixTime = 1_458_835_500;

/// SplitMix64: tiny, well-distributed and fully deterministic.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (modulo bias is irrelevant here).
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ra", "ten", "vo", "lu", "zen", "pa", "ri", "so", "ta", "ne", "gu", "fi",
    "dar", "mel", "quo", "xi", "jo", "bel", "nor", "sun", "wy",
];
const SUFFIXES: [&str; 8] = [
    "art", "photo", "dev", "music", "travel", "food", "news", "games",
];

/// A plausible, valid, not-yet-used account name.
fn generate_name(rng: &mut Prng) -> String {
    let mut name: String = (0..rng.between(2, 3))
        .map(|_| rng.pick(&SYLLABLES))
        .collect();
    match rng.next() % 4 {
        0 => name.push_str(&rng.between(1, 999).to_string()),
        1 => {
            name.push('-');
            name.push_str(rng.pick(&SUFFIXES));
        }
        _ => {}
    }
    name
}

/// Activity of one generated account: `(last_post, last_root_post)`, 0 = never.
fn activity(rng: &mut Prng, now: UnixTime) -> (UnixTime, UnixTime) {
    let recent = |rng: &mut Prng| now.saturating_sub(rng.between(0, 30 * DAY));
    let inactive = |rng: &mut Prng| now.saturating_sub(rng.between(41 * DAY, 3000 * DAY));
    match rng.next() % 100 {
        // Active posters: last root post within a month, maybe a later reply.
        0..=44 => {
            let root = recent(rng);
            let reply = (root + rng.between(0, 3 * DAY)).min(now);
            (reply, root)
        }
        // Inactive for 41 to 3000 days.
        45..=69 => {
            let root = inactive(rng);
            (root, root)
        }
        // Never posted anything.
        70..=81 => (0, 0),
        // Replies recently but has not root-posted for long, or ever.
        _ => {
            let reply = recent(rng);
            let root = if rng.next().is_multiple_of(2) {
                0
            } else {
                inactive(rng)
            };
            (reply, root)
        }
    }
}

fn add_account(
    state: &mut ChainState,
    name: &str,
    created: UnixTime,
    last_post: UnixTime,
    last_root_post: UnixTime,
    rng: &mut Prng,
) {
    let id = state.next_account_id;
    state.next_account_id += 1;
    let post_count = if last_post == 0 {
        0
    } else {
        rng.between(1, 5000)
    };
    state.accounts.insert(
        name.to_string(),
        SimAccount {
            last_post,
            last_root_post,
            post_count,
            native_units: rng.between(0, 50_000_000),
            dollar_units: rng.between(0, 500_000),
            ..SimAccount::new(id, created)
        },
    );
}

fn follow(state: &mut ChainState, follower: &str, following: &str) {
    state.follows.set(follower, following, FollowWhat::Blog);
}

/// Fills `state` with the demo accounts, dated relative to `now`.
pub(super) fn seed(state: &mut ChainState, now: UnixTime) {
    let mut rng = Prng(0x5745_4e47_4154_4531);
    let year_ago = now.saturating_sub(365 * DAY);
    add_account(
        state,
        DEMO_ACCOUNT,
        year_ago,
        now.saturating_sub(DAY),
        now.saturating_sub(2 * DAY),
        &mut rng,
    );
    add_account(state, GATEWAY_ACCOUNT, year_ago, 0, 0, &mut rng);
    add_account(
        state,
        "alice",
        year_ago,
        now.saturating_sub(3 * DAY),
        now.saturating_sub(3 * DAY),
        &mut rng,
    );
    add_account(
        state,
        "bob",
        year_ago,
        now.saturating_sub(120 * DAY),
        now.saturating_sub(400 * DAY),
        &mut rng,
    );
    add_account(state, "carol", year_ago, 0, 0, &mut rng);
    for (follower, following) in [
        ("alice", "bob"),
        ("alice", "carol"),
        ("bob", "alice"),
        ("carol", "alice"),
        // The access-policy work relies on these two facts.
        ("alice", DEMO_ACCOUNT),
    ] {
        follow(state, follower, following);
    }
    state.follows.set("bob", "carol", FollowWhat::Ignore);

    super::policy::seed(state, now);

    let mut generated = 0;
    while generated < DEMO_FOLLOWING {
        let name = generate_name(&mut rng);
        if AccountName::parse(&name).is_err() || state.accounts.contains_key(&name) {
            continue;
        }
        let (last_post, last_root_post) = activity(&mut rng, now);
        let first_activity = [last_post, last_root_post]
            .into_iter()
            .filter(|t| *t > 0)
            .min()
            .unwrap_or(now);
        let created = first_activity
            .saturating_sub(rng.between(DAY, 1500 * DAY))
            .max(CHAIN_GENESIS.min(first_activity));
        add_account(state, &name, created, last_post, last_root_post, &mut rng);
        follow(state, DEMO_ACCOUNT, &name);
        // A little graph among the others, so other accounts are not empty.
        if generated % 10 == 0 {
            follow(state, "alice", &name);
        }
        generated += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainName;
    use crate::chain::devnet::{Devnet, DevnetOptions};

    fn seeded_at(now: UnixTime) -> Vec<(String, UnixTime, UnixTime)> {
        let net = Devnet::new(DevnetOptions {
            chain: ChainName::Steem,
            block_interval: None,
            seed: false,
            start_block: 10,
        });
        let mut state = net.lock();
        seed(&mut state, now);
        state
            .follows
            .following(DEMO_ACCOUNT, FollowWhat::Blog)
            .iter()
            .map(|name| {
                let account = &state.accounts[name];
                (name.clone(), account.last_post, account.last_root_post)
            })
            .collect()
    }

    #[test]
    fn seed_is_deterministic_and_relative_to_now() {
        let now = 1_750_000_000;
        let first = seeded_at(now);
        assert_eq!(first, seeded_at(now));
        let later: Vec<_> = seeded_at(now + DAY)
            .into_iter()
            .map(|(name, post, root)| {
                (
                    name,
                    post.saturating_sub(if post > 0 { DAY } else { 0 }),
                    root.saturating_sub(if root > 0 { DAY } else { 0 }),
                )
            })
            .collect();
        assert_eq!(first, later, "a day later, every date moved by a day");
    }

    #[test]
    fn seed_has_the_spread_the_demo_needs() {
        let now = 1_750_000_000;
        let follows = seeded_at(now);
        assert_eq!(follows.len(), DEMO_FOLLOWING);
        let never = follows.iter().filter(|(_, post, _)| *post == 0).count();
        let recent = follows
            .iter()
            .filter(|(_, _, root)| *root > 0 && now - root <= 30 * DAY)
            .count();
        let inactive = follows
            .iter()
            .filter(|(_, _, root)| *root > 0 && (41 * DAY..=3000 * DAY).contains(&(now - root)))
            .count();
        let replying = follows
            .iter()
            .filter(|(_, post, root)| post != root)
            .count();
        for (label, count) in [
            ("never", never),
            ("recent", recent),
            ("inactive", inactive),
            ("replying", replying),
        ] {
            assert!(count > 150, "{label}: only {count} accounts");
        }
        assert!(
            follows
                .iter()
                .all(|(name, _, _)| AccountName::parse(name).is_ok())
        );
    }
}
