//! The proxy's side of access policies: deciding a route's policies for a
//! logged-in visitor, the 403 that says what failed, the 503 when the
//! chain cannot say, and the demo's "simulate joining the community".
//!
//! Why apart from `admit`: the decision itself lives in `crate::policy`;
//! this file only turns its outcome into answers, so the proxy's phases
//! stay a list of steps. Routes without a policy never get here.

use std::sync::Arc;

use futures::future::join_all;
use pingora::proxy::Session;
use serde_json::json;

use super::GatewayState;
use super::messages::{message_page, render_message};
use super::redirect::safe_redirect_target;
use super::respond::LocalResponse;
use super::visitor::presented_session;
use super::wants_html;
use crate::clock::now_unix;
use crate::policy::{Decision, Outcome, Remedy};

/// What a route's policies make of a logged-in visitor.
pub enum RouteAccess {
    /// Every policy holds.
    Granted,
    /// At least one policy fails (the failing decisions, in route order).
    Denied(Vec<Arc<Decision>>),
    /// At least one policy could not be decided: fail closed.
    Undecidable,
}

/// Decides every policy of a route for `account`, in parallel. Any
/// undecidable policy makes the whole answer undecidable, even if another
/// one failed: a 403 must only ever state what the chain said.
pub async fn route_access(
    state: &GatewayState,
    policies: &[Arc<str>],
    account: &str,
) -> RouteAccess {
    let outcomes = match policies {
        [] => return RouteAccess::Granted,
        // The common case, without collecting.
        [only] => {
            return match state.policies.decide(account, only).await {
                Outcome::Undecidable { .. } => RouteAccess::Undecidable,
                Outcome::Decided(decision) if !decision.passed() => {
                    RouteAccess::Denied(vec![decision])
                }
                Outcome::Decided(_) => RouteAccess::Granted,
            };
        }
        many => join_all(many.iter().map(|p| state.policies.decide(account, p))).await,
    };
    let mut denied = Vec::new();
    for outcome in outcomes {
        match outcome {
            Outcome::Undecidable { .. } => return RouteAccess::Undecidable,
            Outcome::Decided(decision) if !decision.passed() => denied.push(decision),
            Outcome::Decided(_) => {}
        }
    }
    if denied.is_empty() {
        RouteAccess::Granted
    } else {
        RouteAccess::Denied(denied)
    }
}

/// Policy names from a query value (`a,b`), each once, in order.
pub fn policy_names(list: &str) -> Vec<Arc<str>> {
    let mut names: Vec<Arc<str>> = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if !names.iter().any(|known| &**known == name) {
            names.push(Arc::from(name));
        }
    }
    names
}

/// `/.steemgate/status?policy=…`: per policy `{"pass": true}`,
/// `{"pass": false, "failed": […]}`, `{"undecidable": true}` or
/// `{"unknown": true}`, without refusing anything.
pub async fn policy_report(
    state: &GatewayState,
    account: &str,
    names: &[Arc<str>],
) -> serde_json::Value {
    let mut report = serde_json::Map::new();
    for name in names {
        let entry = if !state.policies.knows(name) {
            json!({"unknown": true})
        } else {
            match state.policies.decide(account, name).await {
                Outcome::Decided(decision) => match &decision.verdict {
                    crate::policy::Verdict::Pass => json!({"pass": true}),
                    crate::policy::Verdict::Fail(failures) => {
                        json!({"pass": false, "failed": failures})
                    }
                },
                Outcome::Undecidable { .. } => json!({"undecidable": true}),
            }
        };
        report.insert(name.to_string(), entry);
    }
    serde_json::Value::Object(report)
}

/// The JSON body of a policy refusal: the first failing policy and what
/// failed in it (`{"error":"policy","policy":…,"failed":[…]}`), plus every
/// failing policy's name.
pub fn denial_json(account: &str, denied: &[Arc<Decision>]) -> serde_json::Value {
    let first = denied.first();
    let failed = first.map(|d| match &d.verdict {
        crate::policy::Verdict::Fail(failures) => {
            serde_json::to_value(failures).unwrap_or_default()
        }
        crate::policy::Verdict::Pass => json!([]),
    });
    json!({
        "error": "policy",
        "account": account,
        "policy": first.map(|d| d.policy.as_ref()),
        "failed": failed,
        "policies": denied.iter().map(|d| d.policy.as_ref()).collect::<Vec<_>>(),
    })
}

/// 403 for a logged-in visitor a policy refuses: a page saying in plain
/// words what failed (and, on the devnet, a button to fix it), or JSON.
pub async fn denied_page(
    state: &GatewayState,
    session: &mut Session,
    account: &str,
    denied: &[Arc<Decision>],
    original: &str,
    back: Option<(&str, &str)>,
) -> pingora::Result<()> {
    if !wants_html(session) {
        return LocalResponse::json(403, &denial_json(account, denied))
            .send(session)
            .await;
    }
    let failures: Vec<&crate::policy::Failure> = denied
        .iter()
        .flat_map(|d| match &d.verdict {
            crate::policy::Verdict::Fail(failures) => failures.iter().collect::<Vec<_>>(),
            crate::policy::Verdict::Pass => Vec::new(),
        })
        .collect();
    let remedy = failures.iter().find_map(|f| f.remedy.clone());
    let explained: Vec<serde_json::Value> = failures
        .iter()
        .map(|f| json!({"explain": f.explain, "condition": f.condition}))
        .collect();
    let policy_names: Vec<&str> = denied.iter().map(|d| d.policy.as_ref()).collect();
    let context = json!({
        "site_name": state.site_name,
        "account": account,
        "policy": policy_names.join(", "),
        "failures": explained,
        "chain_title": chain_title(&state.services.payment.chain),
        "recheck": humantime::format_duration(state.policies.ttl()).to_string(),
        "simulated": state.services.simulated,
        "remedy": remedy.map(|Remedy::JoinCommunity { community }| json!({"community": community})),
        "rd": safe_redirect_target(original),
        "back": back.map(|(href, text)| json!({"href": href, "text": text})),
    });
    let html = state
        .pages
        .render("policy_denied.html", &context)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "policy page failed to render");
            render_message(
                state,
                403,
                "Not allowed",
                "This area has an access rule your account does not meet.",
                None,
                Some(account),
            )
        });
    match back {
        Some((target, _)) => {
            LocalResponse::html_with_form_target(403, html, target)
                .send(session)
                .await
        }
        None => LocalResponse::html(403, html).send(session).await,
    }
}

fn chain_title(chain: &str) -> &'static str {
    if chain == "hive" { "Hive" } else { "Steem" }
}

/// 503 when a route's policy cannot be decided (node down, garbage answer,
/// unknown community): never a 200, never a 403 the chain did not state.
pub async fn undecidable_page(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    if !wants_html(session) {
        return LocalResponse::json(
            503,
            &json!({"error": "policy_unavailable", "message": "The chain facts this area's access rule needs cannot be read right now; try again in a moment."}),
        )
        .send(session)
        .await;
    }
    message_page(
        state,
        session,
        503,
        "Temporarily unavailable",
        "Who may enter this area is decided by the chain, which cannot be read right now. Please try again in a moment.",
    )
    .await
}

/// `POST /.steemgate/devnet/join` (devnet only): the logged-in visitor
/// subscribes to a community on the devnet, their cached decisions are
/// dropped, and the browser goes back to the page it came from.
pub async fn devnet_join(state: &GatewayState, session: &mut Session) -> pingora::Result<()> {
    let Some(form) = super::visitor::devnet_form(state, session).await? else {
        return Ok(());
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
            .to_string()
    };
    let Ok(community) = crate::chain::facts::CommunityName::parse(&field("community")) else {
        return message_page(
            state,
            session,
            400,
            "Bad request",
            "Name a community such as hive-100001.",
        )
        .await;
    };
    let rd = safe_redirect_target(&field("rd"));
    let account = match presented_session(state, session) {
        None => None,
        Some(id) => match state.services.sessions.account(&id, now_unix()).await {
            Ok(account) => account,
            Err(_) => return super::messages::unavailable_page(state, session).await,
        },
    };
    let Some(account) = account else {
        return message_page(
            state,
            session,
            401,
            "Not logged in",
            "Log in first, then join the community.",
        )
        .await;
    };
    let params = json!({"account": account, "community": community.as_str()});
    if let Err(e) = state.services.chain.call("devnet.subscribe", params).await {
        tracing::warn!(error = %e, "devnet subscribe failed");
        return message_page(
            state,
            session,
            502,
            "Simulation failed",
            "The devnet did not accept the simulated subscription.",
        )
        .await;
    }
    state.policies.forget(&account).await;
    LocalResponse::redirect(&rd)
        .header("x-devnet", "simulated".to_string())
        .send(session)
        .await
}
