//! Everything that talks to, or pretends to be, a Steem/Hive node.
//!
//! Why a module of its own: the chain is the only source of truth for a
//! login. The RPC client (with node failover), the block follower that turns
//! blocks into claims on login challenges, the decoding of node answers and
//! the offline devnet all live here, behind plain types the rest of the
//! gateway can use without knowing JSON-RPC.

pub mod account;
pub mod asset;
pub mod block;
pub mod crypto;
pub mod devnet;
pub mod facts;
pub mod follow;
pub mod follower;
pub mod hotsign;
pub mod rpc;
pub mod status;

pub use account::AccountName;
pub use asset::{Amount, Symbol};

/// Which chain the gateway follows. Decides the accepted assets and the
/// default public nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainName {
    Steem,
    Hive,
}

impl ChainName {
    pub fn as_str(self) -> &'static str {
        match self {
            ChainName::Steem => "steem",
            ChainName::Hive => "hive",
        }
    }
}

/// How final a block must be before its transfers count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Confirm {
    /// Act on the head block (about 3 s after the transfer).
    Head,
    /// Wait for the last irreversible block (about 45 s on Steem/Hive).
    Irreversible,
}

/// Why a JSON-RPC call failed on every node it was tried on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// The node answered with a JSON-RPC `error` object (the request itself
    /// is wrong: failing over would not help).
    #[error("node error {code}: {message}")]
    Node { code: i64, message: String },
    /// No node gave a usable answer (timeouts, refused connections, HTTP
    /// errors, invalid JSON, stale heads).
    #[error("no node answered usefully: {0}")]
    Unavailable(String),
    /// The answer was valid JSON-RPC but not the shape we need.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// One JSON-RPC call to "the chain". The real client fails over across
/// nodes; tests substitute a fake. Methods are full names such as
/// `condenser_api.get_following`, params a JSON array.
#[async_trait::async_trait]
pub trait RpcCall: Send + Sync + 'static {
    async fn call(
        &self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, RpcError>;
}
