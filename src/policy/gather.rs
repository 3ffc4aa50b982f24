//! Reading the chain facts one policy needs for one visitor.
//!
//! Why apart: this is the only part of a decision that does I/O. It asks
//! exactly what the condition tree mentions (no account read for a plain
//! `accounts:` list, one relationship per named account), all in one
//! parallel round; the only second round is following a witness-vote proxy.
//! Any read that fails fails the whole gathering: a decision is never made
//! on partial facts.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::try_join_all;

use crate::chain::facts::{self, CommunityName, FactError};
use crate::chain::{AccountName, ChainName, RpcCall};
use crate::clock::now_unix;
use crate::config::Condition;

use super::evaluate::{Facts, WitnessVotes};

/// How many proxies deep witness votes are followed (the chains' own
/// limit, `STEEM_MAX_PROXY_RECURSION_DEPTH`).
const MAX_PROXY_DEPTH: usize = 4;

/// What a condition tree asks about.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub account: bool,
    pub vesting: bool,
    pub witness_votes: bool,
    /// `(follower, following)` pairs; `None` stands for the visitor.
    pub relations: BTreeSet<(Option<AccountName>, Option<AccountName>)>,
    pub communities: BTreeSet<CommunityName>,
}

impl Needs {
    pub fn of(condition: &Condition) -> Self {
        let mut needs = Needs::default();
        condition.walk(&mut |c| match c {
            Condition::AccountAge(_) | Condition::Reputation(_) => needs.account = true,
            Condition::Stake(_) => {
                needs.account = true;
                needs.vesting = true;
            }
            Condition::WitnessVote(_) => {
                needs.account = true;
                needs.witness_votes = true;
            }
            Condition::FollowedBy(other) | Condition::MutedBy(other) => {
                needs.relations.insert((Some(other.clone()), None));
            }
            Condition::Follows(other) => {
                needs.relations.insert((None, Some(other.clone())));
            }
            Condition::Community { name, .. } => {
                needs.communities.insert(name.clone());
            }
            Condition::All(_) | Condition::Any(_) | Condition::Not(_) | Condition::Accounts(_) => {}
        });
        needs
    }

    /// Node calls a first evaluation makes (without proxy hops).
    pub fn calls(&self) -> usize {
        usize::from(self.account)
            + usize::from(self.vesting)
            + self.relations.len()
            + self.communities.len()
    }
}

/// One fetched fact, to be put into [`Facts`].
enum Fetched {
    Account(facts::AccountFacts),
    Vesting(facts::VestingRatio),
    Relation(AccountName, AccountName, facts::Relationship),
    Community(facts::CommunityFacts),
}

/// Reads everything `needs` names about `visitor`, in parallel. Returns
/// the facts and the number of node calls made.
pub async fn gather(
    rpc: &dyn RpcCall,
    chain: ChainName,
    visitor: &AccountName,
    needs: &Needs,
) -> Result<(Facts, usize), FactError> {
    type Pending<'a> = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Fetched, FactError>> + Send + 'a>,
    >;
    let mut reads: Vec<Pending<'_>> = Vec::new();
    if needs.account {
        reads.push(Box::pin(async move {
            facts::fetch_account(rpc, visitor)
                .await
                .map(Fetched::Account)
        }));
    }
    if needs.vesting {
        reads.push(Box::pin(async move {
            facts::fetch_vesting_ratio(rpc, chain)
                .await
                .map(Fetched::Vesting)
        }));
    }
    for (follower, following) in &needs.relations {
        let follower = follower.clone().unwrap_or_else(|| visitor.clone());
        let following = following.clone().unwrap_or_else(|| visitor.clone());
        reads.push(Box::pin(async move {
            let relation = facts::fetch_relationship(rpc, chain, &follower, &following).await?;
            Ok(Fetched::Relation(follower, following, relation))
        }));
    }
    for community in &needs.communities {
        reads.push(Box::pin(async move {
            facts::fetch_community(rpc, chain, community, visitor)
                .await
                .map(Fetched::Community)
        }));
    }
    let mut calls = reads.len();
    let mut facts = Facts {
        now: now_unix(),
        ..Facts::default()
    };
    let mut relations = BTreeMap::new();
    for fetched in try_join_all(reads).await? {
        match fetched {
            Fetched::Account(account) => facts.account = Some(account),
            Fetched::Vesting(ratio) => facts.vesting = Some(ratio),
            Fetched::Relation(follower, following, relation) => {
                relations.insert((follower, following), relation);
            }
            Fetched::Community(community) => {
                facts.communities.insert(community.name.clone(), community);
            }
        }
    }
    facts.relations = relations;
    if needs.witness_votes {
        let (votes, proxy_calls) = witness_votes(rpc, &facts).await?;
        facts.witness_votes = Some(votes);
        calls += proxy_calls;
    }
    Ok((facts, calls))
}

/// The votes that count for the visitor: their own, or their proxy's
/// (followed up to [`MAX_PROXY_DEPTH`] accounts deep, as the chain does).
async fn witness_votes(
    rpc: &dyn RpcCall,
    facts: &Facts,
) -> Result<(WitnessVotes, usize), FactError> {
    let Some(account) = &facts.account else {
        return Err(FactError::Decode(
            "witness votes need the visitor's account".into(),
        ));
    };
    let mut proxy = account.proxy.clone();
    let mut votes = account.witness_votes.clone();
    let mut via = None;
    let mut calls = 0;
    while let Some(next) = proxy {
        if calls == MAX_PROXY_DEPTH {
            // Deeper than the chain itself follows: those votes do not count.
            return Ok((
                WitnessVotes {
                    votes: Vec::new(),
                    via_proxy: via,
                },
                calls,
            ));
        }
        let proxied = facts::fetch_account(rpc, &next).await?;
        calls += 1;
        votes = proxied.witness_votes;
        proxy = proxied.proxy;
        via = Some(next);
    }
    Ok((
        WitnessVotes {
            votes,
            via_proxy: via,
        },
        calls,
    ))
}
