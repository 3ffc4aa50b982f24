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
struct ChallengeBody {
    account: String,
    method: LoginMethod,
}

/// What a `/.steemgate/challenge` body asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRequest {
    /// As sent: [`WalletLogins::issue`](crate::auth::wallet::WalletLogins::issue) validates it.
    pub account: String,
    /// `signature` or `signed_transfer`, never `transfer`.
    pub method: LoginMethod,
}

/// Reads a `/.steemgate/challenge` body; `Err` is the 400 message.
pub fn parse_challenge_request(body: &[u8]) -> Result<ChallengeRequest, String> {
    let body: ChallengeBody = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not the expected JSON: {e}"))?;
    if body.method == LoginMethod::Transfer {
        return Err(
            "the memo transfer needs no challenge: its memo is in /.steemgate/status".into(),
        );
    }
    Ok(ChallengeRequest {
        account: body.account,
        method: body.method,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// A `requestSignBuffer` answer: 130 hex characters.
    signature: Option<String>,
    /// The text the wallet signed, if the page sends it back (only used to
    /// name what differs from the issued challenge).
    challenge: Option<String>,
    /// A `requestSignTx` answer: the signed transaction.
    transaction: Option<Value>,
}

/// What a `/.steemgate/verify` body answers with.
#[derive(Clone, Debug, PartialEq)]
pub enum VerifyRequest {
    /// A `requestSignBuffer` answer (130 hex characters, as sent) and,
    /// if the page sends it back, the text the wallet signed.
    Signature {
        signature: String,
        challenge: Option<String>,
    },
    /// A `requestSignTx` answer: the signed transaction, as sent.
    Transaction(Value),
}

/// Reads a `/.steemgate/verify` body; `Err` is the 400 message.
pub fn parse_verify_request(body: &[u8]) -> Result<VerifyRequest, String> {
    let body: VerifyBody = serde_json::from_slice(body)
        .map_err(|e| format!("the request body is not the expected JSON: {e}"))?;
    match (body.signature, body.transaction) {
        (Some(signature), None) => Ok(VerifyRequest::Signature {
            signature,
            challenge: body.challenge,
        }),
        (None, Some(transaction)) => Ok(VerifyRequest::Transaction(transaction)),
        _ => Err("send either \"signature\" or \"transaction\"".into()),
    }
}

fn error_json(status: u16, message: &str) -> LocalResponse {
    LocalResponse::json(status, &json!({"error": message}))
}

/// The request body, or an answer already sent (`None`).
async fn read_body(session: &mut Session) -> pingora::Result<Option<Vec<u8>>> {
    let body = super::respond::read_body(session, MAX_WALLET_BODY).await?;
    if body.is_none() {
        error_json(413, "the request body is too large")
            .send(session)
            .await?;
    }
    Ok(body)
}

/// The body read by `parse`, or an answer already sent (`None`): 413 for
/// a body too large, 400 with `parse`'s message for a malformed one.
async fn read_request<T>(
    session: &mut Session,
    parse: fn(&[u8]) -> Result<T, String>,
) -> pingora::Result<Option<T>> {
    let Some(body) = read_body(session).await? else {
        return Ok(None);
    };
    match parse(&body) {
        Ok(request) => Ok(Some(request)),
        Err(message) => {
            error_json(400, &message).send(session).await?;
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
            state.services.metrics.store_errors.inc();
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
    let Some(request) = read_request(session, parse_challenge_request).await? else {
        return Ok(());
    };
    let method = request.method;
    if !state.services.wallet.enabled(method) {
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
        .services
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
    let Some(request) = read_request(session, parse_verify_request).await? else {
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
    let outcome = match &request {
        VerifyRequest::Signature {
            signature,
            challenge,
        } => {
            state
                .services
                .wallet
                .verify_signature(&key, &site, signature, challenge.as_deref(), now)
                .await
        }
        VerifyRequest::Transaction(transaction) => {
            state
                .services
                .wallet
                .verify_transaction(&key, transaction, now)
                .await
        }
    };
    let login: WalletLogin = match outcome {
        Ok(login) => login,
        Err(e) => return send_wallet_error(state, session, e).await,
    };
    tracing::info!(
        target: "steemgate::audit",
        session = %key.log_id(),
        account = %login.account,
        method = if login.pending.is_some() {
            LoginMethod::SignedTransfer.as_str()
        } else {
            LoginMethod::Signature.as_str()
        },
        "login by wallet signature"
    );
    // Wakes long polls (and counts the login in the metrics).
    let _ = state.services.logins.send(key.clone());
    match state.services.sessions.record(&key).await {
        Ok(Some(record)) => {
            let view = status_view(state, &record, now_unix());
            let body = serde_json::to_value(&view).unwrap_or_default();
            LocalResponse::json(200, &body).send(session).await
        }
        Ok(None) => error_json(401, "the session has ended").send(session).await,
        Err(e) => send_wallet_error(state, session, WalletError::Store(e)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_bodies() {
        assert_eq!(
            parse_challenge_request(br#"{"account":"alice","method":"signed_transfer"}"#),
            Ok(ChallengeRequest {
                account: "alice".into(),
                method: LoginMethod::SignedTransfer,
            })
        );
        let transfer = parse_challenge_request(br#"{"account":"alice","method":"transfer"}"#);
        assert!(transfer.unwrap_err().contains("needs no challenge"));
        for body in [
            &br#"{"account":"alice","method":"Signature"}"#[..],
            br#"{"account":"alice"}"#,
            br#"{"account":"alice","method":"signature","extra":1}"#,
            br#"{"account":1,"method":"signature"}"#,
            b"",
            b"\xff",
        ] {
            assert!(parse_challenge_request(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn verify_bodies_carry_exactly_one_answer() {
        assert_eq!(
            parse_verify_request(br#"{"signature":"1f00","challenge":"text"}"#),
            Ok(VerifyRequest::Signature {
                signature: "1f00".into(),
                challenge: Some("text".into()),
            })
        );
        assert_eq!(
            parse_verify_request(br#"{"transaction":{"ref_block_num":1}}"#),
            Ok(VerifyRequest::Transaction(json!({"ref_block_num": 1})))
        );
        for body in [
            &br#"{}"#[..],
            br#"{"challenge":"text"}"#,
            br#"{"signature":"1f00","transaction":{}}"#,
            br#"{"signature":"1f00","signatures":[]}"#,
            br#"{"signature":null,"transaction":null}"#,
            b"[]",
        ] {
            assert!(parse_verify_request(body).is_err(), "{body:?}");
        }
    }
}
