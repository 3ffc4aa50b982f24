//! `POST /.steemgate/devnet/broadcast`: the demo's "Simulate wallet".
//!
//! Why: on the devnet nobody has keys, yet the stale-follows report's
//! unfollow must run end to end in `steemgate demo`. This endpoint plays the
//! wallet for the logged-in account only: it takes the operations the page
//! would hand to Keychain's `requestBroadcast`, accepts nothing but follow
//! operations of that account (checked by `chain::follow`), builds an
//! unsigned transaction on the devnet's head and broadcasts it with
//! `condenser_api.broadcast_transaction`, so the devnet applies exactly what
//! a real wallet would have signed. It exists only when `chain.devnet` is
//! set, answers like Keychain (`{success, result | error}`) and, as every
//! state-changing endpoint, refuses cross-site requests.

use pingora::proxy::Session;
use serde_json::{Value, json};

use super::GatewayState;
use super::respond::LocalResponse;
use super::visitor::{presented_session, same_origin};
use crate::chain::crypto::serialize::ref_block_from_id;
use crate::chain::crypto::{ChainTime, Operation, Transaction};
use crate::clock::now_unix;

/// Largest body read: a batch of follow operations is about 200 bytes each.
const MAX_BODY: usize = 16 * 1024;
/// Most operations in one simulated broadcast.
pub const MAX_OPERATIONS: usize = crate::report::UNFOLLOW_BATCH;
/// How long the simulated transaction stays valid after the head block.
const EXPIRATION_SECONDS: u32 = 60;

fn failure(status: u16, message: &str) -> LocalResponse {
    LocalResponse::json(
        status,
        &json!({"success": false, "error": message, "simulated": true}),
    )
}

/// Handles the request; see the module doc.
pub async fn broadcast(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    if !same_origin(session) {
        return failure(403, "cross-site requests are refused")
            .send(session)
            .await;
    }
    let Some(id) = presented_session(state, session) else {
        return failure(401, "not logged in").send(session).await;
    };
    let account = match state.services.sessions.account(&id, now_unix()).await {
        Ok(Some(account)) => account,
        Ok(None) => return failure(401, "not logged in").send(session).await,
        Err(e) => {
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "simulated wallet: store unavailable");
            return failure(503, "the session store is unavailable")
                .send(session)
                .await;
        }
    };
    let Some(body) = super::respond::read_body(session, MAX_BODY).await? else {
        return failure(413, "the request body is too large")
            .send(session)
            .await;
    };
    let operations = match parse_operations(&body, &account) {
        Ok(operations) => operations,
        Err(why) => return failure(400, &why).send(session).await,
    };
    match send(state, operations).await {
        Ok(id) => {
            tracing::info!(
                target: "steemgate::audit",
                account = %account,
                transaction = %id,
                "simulated wallet broadcast"
            );
            LocalResponse::json(
                200,
                &json!({"success": true, "result": {"id": id}, "message": "Simulated broadcast", "simulated": true}),
            )
            .send(session)
            .await
        }
        Err(why) => failure(502, &why).send(session).await,
    }
}

/// `{"operations": [...]}`: 1 to [`MAX_OPERATIONS`] unfollow operations
/// of `account` (the report's batch; the chain takes no more per block),
/// nothing else.
fn parse_operations(body: &[u8], account: &str) -> Result<Vec<Operation>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Request {
        operations: Vec<Operation>,
    }
    let request: Request =
        serde_json::from_slice(body).map_err(|e| format!("not a list of operations: {e}"))?;
    if request.operations.is_empty() || request.operations.len() > MAX_OPERATIONS {
        return Err(format!("give 1 to {MAX_OPERATIONS} operations"));
    }
    for operation in &request.operations {
        let Operation::CustomJson(op) = operation else {
            return Err(format!(
                "the simulated wallet signs follow operations only, not {}",
                operation.name()
            ));
        };
        let follow = crate::chain::follow::parse_follow(op).map_err(|e| e.to_string())?;
        if follow.follower.as_str() != account {
            return Err(format!(
                "the simulated wallet signs only for @{account}, not @{}",
                follow.follower
            ));
        }
        if follow.what != crate::chain::follow::FollowWhat::Nothing {
            return Err("the simulated wallet only unfollows (`what: []`)".to_string());
        }
    }
    Ok(request.operations)
}

/// Broadcasts `operations` in one unsigned transaction on the head block;
/// the transaction id, or what the node said.
async fn send(state: &GatewayState, operations: Vec<Operation>) -> Result<String, String> {
    let chain = &state.services.chain;
    let props = chain
        .call("condenser_api.get_dynamic_global_properties", json!([]))
        .await
        .map_err(|e| format!("the node failed: {e}"))?;
    let head_id = props
        .get("head_block_id")
        .and_then(Value::as_str)
        .ok_or("the node gave no head block id")?;
    let (ref_block_num, ref_block_prefix) =
        ref_block_from_id(head_id).map_err(|e| format!("the node's head block id: {e}"))?;
    let head_time = props
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| ChainTime::parse(t).ok())
        .ok_or("the node gave no head block time")?;
    let transaction = Transaction {
        ref_block_num,
        ref_block_prefix,
        expiration: ChainTime(head_time.unix_seconds().saturating_add(EXPIRATION_SECONDS)),
        operations,
        extensions: Vec::new(),
        signatures: Vec::new(),
    };
    let id = transaction
        .id()
        .map_err(|e| format!("cannot build the transaction: {e}"))?;
    let tx = serde_json::to_value(&transaction).map_err(|e| e.to_string())?;
    chain
        .call("condenser_api.broadcast_transaction", json!([tx]))
        .await
        .map_err(|e| format!("the node refused the broadcast: {e}"))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_follow_operations_of_the_account_pass() {
        let op = |follower: &str| {
            json!(["custom_json", {"required_auths": [], "required_posting_auths": [follower], "id": "follow",
                "json": format!("[\"follow\",{{\"follower\":\"{follower}\",\"following\":\"alice\",\"what\":[]}}]")}])
        };
        let body = |ops: Value| json!({ "operations": ops }).to_string();
        assert_eq!(
            parse_operations(body(json!([op("demo")])).as_bytes(), "demo")
                .unwrap()
                .len(),
            1
        );
        assert!(parse_operations(body(json!([op("bob")])).as_bytes(), "demo").is_err());
        assert!(parse_operations(body(json!([])).as_bytes(), "demo").is_err());
        let transfer =
            json!(["transfer", {"from": "demo", "to": "bob", "amount": "1.000 STEEM", "memo": ""}]);
        assert!(parse_operations(body(json!([transfer])).as_bytes(), "demo").is_err());
        let many: Vec<Value> = (0..=MAX_OPERATIONS).map(|_| op("demo")).collect();
        assert!(parse_operations(body(json!(many)).as_bytes(), "demo").is_err());
        assert!(parse_operations(b"{\"operations\": 1}", "demo").is_err());
    }
}
