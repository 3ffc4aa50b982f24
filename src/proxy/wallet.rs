//! `POST /.steemgate/challenge` and `POST /.steemgate/verify`: the HTTP side
//! of wallet logins (issue 10).
//!
//! Why a file of its own: the rules live in [`crate::auth::wallet`]; this
//! file only reads the JSON bodies, applies the same-origin check and the
//! per-client limits, and turns outcomes into answers: the status document
//! on success, `401 {"error": reason}` on a refusal, 400 for a malformed
//! request, 404 for a disabled method, 503 when the store or the chain
//! cannot be asked (never a login).

use pingora::proxy::Session;
use serde::Deserialize;
use serde_json::{Value, json};

use super::GatewayState;
use super::respond::LocalResponse;
use super::visitor::{
    client_ip, live_session, new_cookie, presented_session, same_origin, status_view,
    too_many_requests,
};
use crate::auth::wallet::{WalletError, WalletLogin};
use crate::clock::now_unix;
use crate::config::LoginMethod;

/// Largest wallet request body (a signed login transfer is well under 1 KiB).
const MAX_WALLET_BODY: usize = 8192;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChallengeRequest {
    account: String,
    method: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyRequest {
    /// A `requestSignBuffer` answer: 130 hex characters.
    signature: Option<String>,
    /// The text the wallet signed, if the page sends it back (only used to
    /// name what differs from the issued challenge).
    challenge: Option<String>,
    /// A `requestSignTx` answer: the signed transaction.
    transaction: Option<Value>,
}

fn error_json(status: u16, message: &str) -> LocalResponse {
    LocalResponse::json(status, &json!({"error": message}))
}

/// The JSON body, or an answer already sent (`None`).
async fn read_json<T: for<'de> Deserialize<'de>>(
    session: &mut Session,
) -> pingora::Result<Option<T>> {
    let mut body = Vec::new();
    while let Some(chunk) = session.read_request_body().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_WALLET_BODY {
            error_json(413, "the request body is too large")
                .send(session)
                .await?;
            return Ok(None);
        }
    }
    match serde_json::from_slice(&body) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            error_json(
                400,
                &format!("the request body is not the expected JSON: {e}"),
            )
            .send(session)
            .await?;
            Ok(None)
        }
    }
}

/// The request's Host, lowercase: the site a challenge names.
fn site(session: &Session) -> Option<String> {
    session
        .req_header()
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|h| !h.is_empty())
}

async fn send_wallet_error(
    state: &GatewayState,
    session: &mut Session,
    error: WalletError,
) -> pingora::Result<()> {
    let (status, message) = match &error {
        WalletError::BadRequest(m) => (400, m.clone()),
        WalletError::Refused(refusal) => {
            tracing::info!(
                target: "steemgate::audit",
                client = ?client_ip(state, session),
                reason = %refusal,
                "wallet login refused"
            );
            (401, refusal.to_string())
        }
        WalletError::Disabled => (404, error.to_string()),
        WalletError::Store(e) => {
            state.metrics.store_errors.inc();
            tracing::warn!(error = %e, "wallet login: store unavailable");
            (
                503,
                "Sign-in is unavailable right now. Please try again in a moment.".into(),
            )
        }
        WalletError::Chain(e) => {
            tracing::warn!(error = %e, "wallet login: chain unavailable");
            (
                503,
                "The chain cannot be reached right now. Please try again in a moment.".into(),
            )
        }
        WalletError::Randomness => (503, error.to_string()),
    };
    error_json(status, &message).send(session).await
}

/// `POST /.steemgate/challenge {"account","method"}`.
pub async fn challenge(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    if !same_origin(session) {
        return error_json(403, "cross-site requests are refused")
            .send(session)
            .await;
    }
    if client_ip(state, session).is_some_and(|ip| !state.limits.allow_new_session(ip)) {
        return too_many_requests(state, session).await;
    }
    let Some(request) = read_json::<ChallengeRequest>(session).await? else {
        return Ok(());
    };
    let method = match request.method.as_str() {
        "signature" => LoginMethod::Signature,
        "signed_transfer" => LoginMethod::SignedTransfer,
        "transfer" => {
            return error_json(
                400,
                "the memo transfer needs no challenge: its memo is in /.steemgate/status",
            )
            .send(session)
            .await;
        }
        _ => {
            return error_json(400, "method must be \"signature\" or \"signed_transfer\"")
                .send(session)
                .await;
        }
    };
    if !state.wallet.enabled(method) {
        return send_wallet_error(state, session, WalletError::Disabled).await;
    }
    let Some(site) = site(session) else {
        return error_json(400, "the request has no Host")
            .send(session)
            .await;
    };
    let Some(live) = live_session(state, session).await? else {
        return Ok(());
    };
    let cookie = new_cookie(state, &live);
    match state
        .wallet
        .issue(&live.key, &site, &request.account, method, now_unix())
        .await
    {
        Ok(issued) => {
            LocalResponse::json(200, &issued.to_json())
                .set_cookie(cookie)
                .send(session)
                .await
        }
        Err(e) => send_wallet_error(state, session, e).await,
    }
}

/// `POST /.steemgate/verify {"signature"[,"challenge"]}` or `{"transaction"}`.
pub async fn verify(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    if !same_origin(session) {
        return error_json(403, "cross-site requests are refused")
            .send(session)
            .await;
    }
    if client_ip(state, session).is_some_and(|ip| !state.limits.allow_status(ip)) {
        return too_many_requests(state, session).await;
    }
    let Some(request) = read_json::<VerifyRequest>(session).await? else {
        return Ok(());
    };
    let Some(site) = site(session) else {
        return error_json(400, "the request has no Host")
            .send(session)
            .await;
    };
    let Some(id) = presented_session(state, session) else {
        return error_json(
            401,
            "no login session: ask /.steemgate/challenge first (cookies must be enabled)",
        )
        .send(session)
        .await;
    };
    let key = id.store_key();
    let now = now_unix();
    let outcome = match (&request.signature, &request.transaction) {
        (Some(signature), None) => {
            state
                .wallet
                .verify_signature(&key, &site, signature, request.challenge.as_deref(), now)
                .await
        }
        (None, Some(transaction)) => {
            state
                .wallet
                .verify_transaction(&key, transaction, now)
                .await
        }
        _ => Err(WalletError::BadRequest(
            "send either \"signature\" or \"transaction\"".into(),
        )),
    };
    let login: WalletLogin = match outcome {
        Ok(login) => login,
        Err(e) => return send_wallet_error(state, session, e).await,
    };
    tracing::info!(
        target: "steemgate::audit",
        session = %key.log_id(),
        account = %login.account,
        method = if login.pending.is_some() { "signed_transfer" } else { "signature" },
        "login by wallet signature"
    );
    // Wakes long polls (and counts the login in the metrics).
    let _ = state.logins.send(key.clone());
    match state.sessions.record(&key).await {
        Ok(Some(record)) => {
            let view = status_view(state, &record, now_unix());
            let body = serde_json::to_value(&view).unwrap_or_default();
            LocalResponse::json(200, &body).send(session).await
        }
        Ok(None) => error_json(401, "the session has ended").send(session).await,
        Err(e) => send_wallet_error(state, session, WalletError::Store(e)).await,
    }
}
