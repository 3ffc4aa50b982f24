//! Client helpers for a running devnet, used by the CLI.
//!
//! Why: `steemgate devnet transfer`, `steemgate devnet follow` and demo scripts drive a devnet that may
//! run in another process; these wrap the `devnet.*` JSON-RPC methods so the
//! CLI does not hand-build requests or parse answers.

use std::time::Duration;

use serde_json::{Value, json};

use super::DevnetError;

/// How long one call to a (local) devnet may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Calls one JSON-RPC method on the devnet at `node` and returns its result.
async fn call(node: &url::Url, method: &str, params: Value) -> Result<Value, DevnetError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| DevnetError::Http(e.to_string()))?;
    let request = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let response = client
        .post(node.clone())
        .json(&request)
        .send()
        .await
        .map_err(|e| DevnetError::Http(format!("{node}: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DevnetError::Http(format!("{node} answered HTTP {status}")));
    }
    let answer: Value = response
        .json()
        .await
        .map_err(|e| DevnetError::Decode(format!("{node} did not answer JSON: {e}")))?;
    if let Some(error) = answer.get("error") {
        let code = error.get("code").and_then(Value::as_i64).unwrap_or(0);
        let mut message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(detail) = error.get("data").and_then(Value::as_str) {
            message = format!("{message}: {detail}");
        }
        return Err(DevnetError::Rpc { code, message });
    }
    answer.get("result").cloned().ok_or_else(|| {
        DevnetError::Decode(format!("{method}: answer has neither result nor error"))
    })
}

/// Submits a simulated transfer to the devnet at `node`; returns its txid.
/// The devnet validates names, amount and memo; it lands in the next block.
pub async fn submit_transfer_rpc(
    node: &url::Url,
    from: &str,
    to: &str,
    amount: &str,
    memo: &str,
) -> Result<String, DevnetError> {
    let params = json!({"from": from, "to": to, "amount": amount, "memo": memo});
    let result = call(node, "devnet.transfer", params).await?;
    result
        .get("txid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            DevnetError::Decode(format!("devnet.transfer answered without txid: {result}"))
        })
}

/// Asks the devnet at `node` to produce a block now; returns its number.
pub async fn produce_block_rpc(node: &url::Url) -> Result<u64, DevnetError> {
    let result = call(node, "devnet.produce_block", json!({})).await?;
    result
        .get("block_num")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            DevnetError::Decode(format!(
                "devnet.produce_block answered without block_num: {result}"
            ))
        })
}

/// `account` subscribes to `community` on the devnet at `node` (what the
/// demo's "join the community" button does).
pub async fn subscribe_rpc(
    node: &url::Url,
    account: &str,
    community: &str,
) -> Result<(), DevnetError> {
    let params = json!({"account": account, "community": community});
    call(node, "devnet.subscribe", params).await.map(|_| ())
}

/// `account` leaves `community` on the devnet at `node`.
pub async fn unsubscribe_rpc(
    node: &url::Url,
    account: &str,
    community: &str,
) -> Result<(), DevnetError> {
    let params = json!({"account": account, "community": community});
    call(node, "devnet.unsubscribe", params).await.map(|_| ())
}

/// Gives `account` `role` (muted, guest, member, mod, admin, owner) in
/// `community` on the devnet at `node`.
pub async fn set_role_rpc(
    node: &url::Url,
    community: &str,
    account: &str,
    role: &str,
) -> Result<(), DevnetError> {
    let params = json!({"community": community, "account": account, "role": role});
    call(node, "devnet.set_role", params).await.map(|_| ())
}

/// Changes `account`'s policy facts on the devnet at `node`: `fields` are
/// `devnet.set_account` parameters (`reputation`, `vesting_shares`,
/// `delegated`, `received`, `created`, `proxy`).
pub async fn set_account_rpc(
    node: &url::Url,
    account: &str,
    fields: serde_json::Map<String, Value>,
) -> Result<(), DevnetError> {
    let mut params = fields;
    params.insert("account".into(), json!(account));
    call(node, "devnet.set_account", Value::Object(params))
        .await
        .map(|_| ())
}

/// `account` votes for `witness` (or removes the vote) on the devnet at `node`.
pub async fn witness_vote_rpc(
    node: &url::Url,
    account: &str,
    witness: &str,
    approve: bool,
) -> Result<(), DevnetError> {
    let params = json!({"account": account, "witness": witness, "approve": approve});
    call(node, "devnet.witness_vote", params).await.map(|_| ())
}

/// Queues a follow operation on the devnet at `node` (`what`: `[]`
/// unfollows, `["blog"]` follows, `["ignore"]` mutes); it is applied when
/// the next block is produced.
pub async fn follow_rpc(
    node: &url::Url,
    follower: &str,
    following: &str,
    what: &[String],
) -> Result<(), DevnetError> {
    let params = json!({"follower": follower, "following": following, "what": what});
    call(node, "devnet.follow", params).await.map(|_| ())
}
