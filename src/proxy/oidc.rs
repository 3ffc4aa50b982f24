//! The HTTP side of the OpenID Provider (`crate::oidc`): discovery, the
//! authorization, token, userinfo, JWKS and logout endpoints.
//!
//! Why here: these endpoints read cookies, send pages and redirects, and
//! decide policies, which is the proxy's work; the protocol decisions
//! (what a request means, whether a code is good, what a token says) are
//! the provider's. Every redirect sent from here goes to a local path or to
//! a URI the client registered ([`crate::oidc::RegisteredRedirect`]).
//!
//! - `GET  /.well-known/openid-configuration` (discovery)
//! - `GET|POST /.steemgate/oidc/authorize`: the visitor's side of the flow;
//!   a POST is turned into the same GET (so the `SameSite=Lax` cookie comes
//!   along on the top-level navigation).
//! - `POST /.steemgate/oidc/token`, `GET|POST /.steemgate/oidc/userinfo`,
//!   `GET /.steemgate/oidc/jwks.json`: called by relying parties, never with
//!   the gateway's cookie; answered with CORS `*` (public clients in a page).
//! - `GET|POST /.steemgate/oidc/logout`: RP-initiated logout.

use pingora::proxy::Session;
use serde_json::json;

use super::GatewayState;
use super::messages::{
    message_page, not_found_page, render_or_unavailable, store_failed, unavailable_page,
};
use super::query::Query;
use super::respond::LocalResponse;
use super::visitor::{presented_session, same_origin};
use crate::clock::{UnixTime, now_unix};
use crate::oidc::{
    AUTHORIZE_PATH, AuthRequest, AuthorizeError, BearerError, ClientError, JWKS_PATH, LOGOUT_PATH,
    Login, Provider, RegisteredRedirect, TOKEN_PATH, USERINFO_PATH,
};
use crate::store::SessionRecord;

/// `/.well-known/openid-configuration`.
pub async fn discovery(provider: &Provider, session: &mut Session) -> pingora::Result<()> {
    cors(LocalResponse::json(200, &provider.discovery()))
        .send(session)
        .await
}

/// Routes a `/.steemgate/oidc/*` request.
pub async fn handle(
    state: &GatewayState,
    session: &mut Session,
    path: &str,
    query: Option<&str>,
) -> pingora::Result<()> {
    let Some(provider) = state.oidc.clone() else {
        return message_page(
            state,
            session,
            404,
            "Not found",
            "This gateway is not an OpenID provider (no `oidc:` in its config).",
        )
        .await;
    };
    let method = session.req_header().method.clone();
    match (method.as_str(), path) {
        ("GET" | "HEAD", AUTHORIZE_PATH) => {
            let params = Query::parse(query).into_pairs();
            // The way back from the login page: the parked request.
            let params = match params.as_slice() {
                [(key, id)] if key == "resume" => match provider.resume(id, now_unix()).await {
                    Ok(Some(parked)) => parked,
                    Ok(None) => {
                        return message_page(
                            state,
                            session,
                            400,
                            "Sign-in request expired",
                            "This sign-in request is too old (30 minutes) or unknown. Go back to the application and sign in again.",
                        )
                        .await;
                    }
                    Err(e) => {
                        return store_failed(state, session, "OpenID authorize", &e).await;
                    }
                },
                _ => params,
            };
            authorize(state, &provider, session, &params).await
        }
        // A form post from the relying party: the same request as a GET;
        // from our own "log in again" page: end the session, then log in.
        ("POST", AUTHORIZE_PATH) => {
            let Some(form) = super::messages::read_form(state, session).await? else {
                return Ok(());
            };
            if form.iter().any(|(k, v)| k == "reauth" && v == "yes") {
                return reauthenticate(state, &provider, session, &form).await;
            }
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            LocalResponse::new(303, "text/plain; charset=utf-8", "")
                .header("location", format!("{AUTHORIZE_PATH}?{query}"))
                .send(session)
                .await
        }
        ("POST", TOKEN_PATH) => token(state, &provider, session).await,
        ("GET" | "HEAD" | "POST", USERINFO_PATH) => userinfo(state, &provider, session).await,
        ("OPTIONS", TOKEN_PATH | USERINFO_PATH | JWKS_PATH) => preflight(session).await,
        ("GET" | "HEAD", JWKS_PATH) => match provider.jwks(now_unix()).await {
            Ok(jwks) => {
                cors(LocalResponse::json(200, &json!(jwks)))
                    .send(session)
                    .await
            }
            Err(e) => {
                tracing::warn!(error = %e, "OpenID JWKS unavailable");
                LocalResponse::json(503, &json!({"error": "temporarily_unavailable"}))
                    .send(session)
                    .await
            }
        },
        ("GET" | "HEAD", LOGOUT_PATH) => {
            logout(
                state,
                &provider,
                session,
                &Query::parse(query).into_pairs(),
                false,
            )
            .await
        }
        ("POST", LOGOUT_PATH) => {
            let Some(form) = super::messages::read_form(state, session).await? else {
                return Ok(());
            };
            logout(state, &provider, session, &form, true).await
        }
        (_, AUTHORIZE_PATH | TOKEN_PATH | USERINFO_PATH | JWKS_PATH | LOGOUT_PATH) => {
            LocalResponse::text(405, "method not allowed\n")
                .send(session)
                .await
        }
        _ => not_found_page(state, session).await,
    }
}

/// The name of the OpenID client a login page returns to, when its `rd` is
/// an authorization request of a registered client (the page says who asks).
pub async fn client_name_of_return(state: &GatewayState, rd: &str) -> Option<String> {
    let provider = state.oidc.as_ref()?;
    let query = rd.strip_prefix(AUTHORIZE_PATH)?.strip_prefix('?')?;
    let mut params = Query::parse(Some(query)).into_pairs();
    if let [(key, id)] = params.as_slice()
        && key == "resume"
    {
        params = provider.resume(id, now_unix()).await.ok()??;
    }
    let client_id = params.into_iter().find(|(k, _)| k == "client_id")?.1;
    provider.config().client(&client_id).map(|c| c.name.clone())
}

/// Whether a request to `host` (lowercase, no port) is for the issuer:
/// discovery is answered there only, so an upstream app on another host
/// keeps its own `/.well-known/openid-configuration`.
pub fn is_issuer_host(provider: &Provider, host: Option<&str>) -> bool {
    let issuer_host = url::Url::parse(provider.issuer()).ok().and_then(|u| {
        u.host_str().map(|h| {
            h.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase()
        })
    });
    matches!((host, issuer_host), (Some(h), Some(i)) if h.trim_start_matches('[').trim_end_matches(']') == i)
}

/// Endpoints relying parties call from a page (public clients): any
/// origin may read the answer; no cookie is ever involved.
fn cors(response: LocalResponse) -> LocalResponse {
    response.header("access-control-allow-origin", "*".to_string())
}

async fn preflight(session: &mut Session) -> pingora::Result<()> {
    cors(LocalResponse::new(204, "text/plain; charset=utf-8", ""))
        .header("access-control-allow-methods", "GET, POST".to_string())
        .header(
            "access-control-allow-headers",
            "Authorization, Content-Type".to_string(),
        )
        .header("access-control-max-age", "600".to_string())
        .send(session)
        .await
}

/// A redirect to a registered URI (built by the provider) or a local path.
async fn redirect_to(session: &mut Session, location: String) -> pingora::Result<()> {
    LocalResponse::new(302, "text/plain; charset=utf-8", "")
        .header("location", location)
        .send(session)
        .await
}

async fn refuse_to_client(
    provider: &Provider,
    session: &mut Session,
    request: &AuthRequest,
    error: &'static str,
    description: &str,
) -> pingora::Result<()> {
    let location = client_error(request, error, description).location(provider.issuer());
    redirect_to(session, location).await
}

fn client_error(request: &AuthRequest, error: &'static str, description: &str) -> ClientError {
    ClientError {
        redirect: request.redirect.clone(),
        error,
        description: description.to_string(),
        state: request.state.clone(),
    }
}

/// When the visitor proved the account: the transfer's block time, or the
/// session's start when that is unknown (an instant login not yet on the
/// chain), which only ever makes a login look older, never fresher.
fn auth_time(record: &SessionRecord) -> UnixTime {
    record
        .login
        .as_ref()
        .map(|l| l.block_time)
        .filter(|t| *t > 0)
        .unwrap_or(record.created_at)
}

async fn authorize(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
    params: &[(String, String)],
) -> pingora::Result<()> {
    let request = match provider.parse_authorization(params) {
        Ok(request) => request,
        Err(AuthorizeError::Page(why)) => {
            tracing::info!(target: "steemgate::audit", reason = %why, "OpenID authorization request refused");
            return message_page(state, session, 400, "Sign-in request refused", &why).await;
        }
        Err(AuthorizeError::Redirect(error)) => {
            return redirect_to(session, error.location(provider.issuer())).await;
        }
    };
    let now = now_unix();
    let presented = presented_session(state, session);
    let record = match &presented {
        None => None,
        Some(id) => match state.services.sessions.record(&id.store_key()).await {
            Ok(record) => record.filter(|r| r.is_live(now)),
            Err(e) => {
                return store_failed(state, session, "OpenID authorize", &e).await;
            }
        },
    };
    let logged_in = record
        .as_ref()
        .and_then(|r| r.account.clone().map(|a| (a, auth_time(r), r)));
    let Some((account, auth_time, record)) = logged_in else {
        if request.prompt.none {
            return refuse_to_client(
                provider,
                session,
                &request,
                "login_required",
                "the visitor is not logged in",
            )
            .await;
        }
        let Some(back) = continue_path(state, provider, session, params).await? else {
            return Ok(());
        };
        return LocalResponse::redirect(&login_path(&back))
            .send(session)
            .await;
    };
    let too_old = request
        .max_age
        .is_some_and(|age| now.saturating_sub(auth_time) > age);
    // An `id_token_hint` for another account asks for that account's login
    // (OpenID Core §3.1.2.2); one we cannot verify is no hint.
    let other_account = match params.iter().find(|(k, _)| k == "id_token_hint") {
        Some((_, hint)) => matches!(
            provider.id_token_hint(hint, now).await,
            Ok(Some((_, sub))) if sub != provider.subject(&account)
        ),
        None => false,
    };
    if request.prompt.login || too_old || other_account {
        if request.prompt.none {
            return refuse_to_client(
                provider,
                session,
                &request,
                "login_required",
                "a fresh login is needed",
            )
            .await;
        }
        // A fresh login ends this session: a link from another site must
        // not do that (invariant 8), so the visitor confirms on our page,
        // whose same-origin form comes back to `reauthenticate`.
        let context = json!({
            "site_name": state.site_name,
            "account": account,
            "client_name": request.client.name,
            "action": AUTHORIZE_PATH,
            "params": params
                .iter()
                .filter(|(k, _)| k != "reauth")
                .map(|(k, v)| [k, v])
                .collect::<Vec<_>>(),
            "cancel": client_error(&request, "login_required", "the visitor did not log in again")
                .location(provider.issuer()),
        });
        let Some(html) =
            render_or_unavailable(state, session, "oidc_reauth.html", &context).await?
        else {
            return Ok(());
        };
        return LocalResponse::html(200, html).send(session).await;
    }
    let names: Vec<std::sync::Arc<str>> = request
        .client
        .policies
        .iter()
        .map(|p| p.name.clone())
        .collect();
    match super::policy::route_access(state, &names, &account).await {
        super::policy::RouteAccess::Granted => {}
        super::policy::RouteAccess::Denied(denied) => {
            // Never the account: a `prompt=none` probe must not learn who
            // is logged in.
            let description = "the account does not meet this application's access rule";
            if request.prompt.none {
                return refuse_to_client(provider, session, &request, "access_denied", description)
                    .await;
            }
            let back =
                client_error(&request, "access_denied", description).location(provider.issuer());
            let label = format!("Back to {}", request.client.name);
            let Some(here) = continue_path(state, provider, session, params).await? else {
                return Ok(());
            };
            return super::policy::denied_page(
                state,
                session,
                &account,
                &denied,
                &here,
                Some((&back, &label)),
            )
            .await;
        }
        super::policy::RouteAccess::Undecidable => {
            if request.prompt.none {
                return refuse_to_client(
                    provider,
                    session,
                    &request,
                    "temporarily_unavailable",
                    "the access rule cannot be decided right now",
                )
                .await;
            }
            return super::policy::undecidable_page(state, session).await;
        }
    }
    let Some(method) = record.login.as_ref().map(|l| l.method) else {
        return unavailable_page(state, session).await;
    };
    let Some(id) = presented else {
        return unavailable_page(state, session).await;
    };
    let login = Login {
        account,
        session: id.store_key(),
        auth_time,
        method,
    };
    match provider.issue_code(&request, &login, now).await {
        Ok(location) => {
            state
                .services
                .metrics
                .oidc_codes
                .with_label_values(&[request.client.id.as_str()])
                .inc();
            redirect_to(session, location).await
        }
        Err(e) => {
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "OpenID authorize: cannot issue a code");
            unavailable_page(state, session).await
        }
    }
}

/// The "log in again" page's form: from our own origin only, it ends the
/// current session and sends the visitor to the login page, which returns
/// to the same authorization request (without `prompt`/`max_age`, so the
/// way back does not ask again).
async fn reauthenticate(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
    form: &[(String, String)],
) -> pingora::Result<()> {
    if !same_origin(session) {
        return message_page(
            state,
            session,
            403,
            "Forbidden",
            "Cross-site requests are refused.",
        )
        .await;
    }
    let params: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| k != "reauth")
        .cloned()
        .collect();
    // Only a request the provider accepts may end a session.
    match provider.parse_authorization(&params) {
        Ok(_) => {}
        Err(AuthorizeError::Page(why)) => {
            return message_page(state, session, 400, "Sign-in request refused", &why).await;
        }
        Err(AuthorizeError::Redirect(error)) => {
            return redirect_to(session, error.location(provider.issuer())).await;
        }
    }
    if let Some(id) = presented_session(state, session)
        && let Err(e) = super::visitor::end_session(state, &id, None).await
    {
        return store_failed(
            state,
            session,
            "OpenID re-login: cannot end the session",
            &e,
        )
        .await;
    }
    let Some(back) = continue_path(state, provider, session, &params).await? else {
        return Ok(());
    };
    LocalResponse::redirect(&login_path(&back))
        .set_cookie(Some(state.services.sessions.clear_cookie()))
        .send(session)
        .await
}

/// A local path back to the authorization request `params`, without
/// `prompt`/`max_age` (the login about to happen satisfies them; kept, they
/// would ask again): the request is parked in the store and the path names
/// it by id, so nothing in it is mangled or cut on the way. `None` after a
/// 503 was sent (the store failed).
async fn continue_path(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
    params: &[(String, String)],
) -> pingora::Result<Option<String>> {
    // Each parked request is a store write: one client may park as many
    // as it may start sessions (the login page that follows starts one).
    if super::visitor::client_ip(state, session)
        .is_some_and(|ip| !state.limits.allow_new_session(ip))
    {
        super::visitor::too_many_requests(state, session).await?;
        return Ok(None);
    }
    let kept: Vec<(String, String)> =
        url::form_urlencoded::parse(crate::oidc::request::resume_query(params).as_bytes())
            .into_owned()
            .collect();
    match provider.park(&kept, now_unix()).await {
        Ok(id) => Ok(Some(format!("{AUTHORIZE_PATH}?resume={id}"))),
        Err(e) => {
            store_failed(
                state,
                session,
                "OpenID authorize: cannot keep the request for the login",
                &e,
            )
            .await?;
            Ok(None)
        }
    }
}

/// The login page, returning to `back` (a local path).
fn login_path(back: &str) -> String {
    format!(
        "/.steemgate/login?rd={}",
        url::form_urlencoded::byte_serialize(back.as_bytes()).collect::<String>()
    )
}

/// Most bytes of a token request body.
const MAX_TOKEN_FORM: usize = 8192;

async fn token(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
) -> pingora::Result<()> {
    let authorization = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let Some(body) = super::respond::read_body(session, MAX_TOKEN_FORM).await? else {
        return LocalResponse::json(
            413,
            &json!({"error": "invalid_request", "error_description": "the request body is too large"}),
        )
        .send(session)
        .await;
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    match provider
        .exchange(authorization.as_deref(), &form, now_unix())
        .await
    {
        Ok((client, answer)) => {
            state
                .services
                .metrics
                .oidc_tokens
                .with_label_values(&[client.id.as_str()])
                .inc();
            cors(LocalResponse::json(200, &answer))
                .header("pragma", "no-cache".to_string())
                .send(session)
                .await
        }
        Err(e) => {
            state
                .services
                .metrics
                .oidc_token_errors
                .with_label_values(&[e.error])
                .inc();
            let mut response = cors(LocalResponse::json(e.status, &e.body()));
            if e.basic_challenge {
                response =
                    response.header("www-authenticate", "Basic realm=\"steemgate\"".to_string());
            }
            response.send(session).await
        }
    }
}

async fn userinfo(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
) -> pingora::Result<()> {
    let header_token = session
        .req_header()
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    // RFC 6750 §2.2: a form body may carry it instead (never both).
    let form_token = if session.req_header().method == http::Method::POST {
        let Some(form) = super::messages::read_form(state, session).await? else {
            return Ok(());
        };
        form.into_iter()
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v)
    } else {
        None
    };
    let token = match (header_token, form_token) {
        (Some(_), Some(_)) => {
            return cors(LocalResponse::json(
                400,
                &json!({"error": "invalid_request"}),
            ))
            .header(
                "www-authenticate",
                "Bearer error=\"invalid_request\"".to_string(),
            )
            .send(session)
            .await;
        }
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => {
            return cors(LocalResponse::json(401, &json!({"error": "invalid_token"})))
                .header("www-authenticate", "Bearer realm=\"steemgate\"".to_string())
                .send(session)
                .await;
        }
    };
    match provider.userinfo(&token, now_unix()).await {
        Ok(claims) => cors(LocalResponse::json(200, &claims)).send(session).await,
        Err(BearerError::Invalid) => {
            cors(LocalResponse::json(401, &json!({"error": "invalid_token"})))
                .header(
                    "www-authenticate",
                    "Bearer realm=\"steemgate\", error=\"invalid_token\"".to_string(),
                )
                .send(session)
                .await
        }
        Err(BearerError::Unavailable(e)) => {
            state.services.metrics.store_errors.inc();
            tracing::warn!(error = %e, "OpenID userinfo: store unavailable");
            LocalResponse::json(503, &json!({"error": "temporarily_unavailable"}))
                .send(session)
                .await
        }
    }
}

/// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). A valid
/// `id_token_hint` for the logged-in account logs out at once; otherwise
/// the visitor confirms on our page (a bare link from another site must not
/// log anyone out). Only a registered `post_logout_redirect_uri` is
/// followed.
async fn logout(
    state: &GatewayState,
    provider: &Provider,
    session: &mut Session,
    params: &[(String, String)],
    posted: bool,
) -> pingora::Result<()> {
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let now = now_unix();
    // A hint we cannot verify (another issuer's, a rotated-out key, a
    // relying party's unfilled placeholder) is no hint: the visitor confirms.
    let hint = match get("id_token_hint") {
        Some(token) => match provider.id_token_hint(token, now).await {
            Ok(hint) => hint,
            Err(e) => {
                tracing::warn!(error = %e, "OpenID logout: signing keys unavailable");
                return unavailable_page(state, session).await;
            }
        },
        None => None,
    };
    let client = match (&hint, get("client_id")) {
        (Some((client, _)), Some(id)) if client.id != id => {
            return message_page(
                state,
                session,
                400,
                "Logout request refused",
                "The logout request names two different applications.",
            )
            .await;
        }
        (Some((client, _)), _) => Some(client.clone()),
        (None, Some(id)) => match provider.config().client(id) {
            Some(client) => Some(client.clone()),
            None => {
                return message_page(
                    state,
                    session,
                    400,
                    "Logout request refused",
                    "The application asking to log you out is not registered with this gateway.",
                )
                .await;
            }
        },
        (None, None) => None,
    };
    let back = match (get("post_logout_redirect_uri"), &client) {
        (None, _) => None,
        (Some(uri), Some(client)) => match RegisteredRedirect::after_logout(client, uri) {
            Some(redirect) => Some(redirect),
            None => {
                return message_page(
                    state,
                    session,
                    400,
                    "Logout request refused",
                    "The address to return to after logout is not registered for this application.",
                )
                .await;
            }
        },
        (Some(_), None) => {
            return message_page(
                state,
                session,
                400,
                "Logout request refused",
                "A return address after logout needs the application named (client_id or id_token_hint).",
            )
            .await;
        }
    };
    let presented = presented_session(state, session);
    let account = match &presented {
        None => None,
        Some(id) => match state.services.sessions.account(id, now).await {
            Ok(account) => account,
            Err(e) => {
                return store_failed(state, session, "OpenID logout", &e).await;
            }
        },
    };
    let hinted_here = match (&hint, &account) {
        (Some((_, sub)), Some(account)) => *sub == provider.subject(account),
        _ => false,
    };
    let confirmed = posted && get("confirm") == Some("yes") && same_origin(session);
    if let (Some(account), false, false) = (&account, hinted_here, confirmed) {
        // Ask first.
        let context = json!({
            "site_name": state.site_name,
            "account": account,
            "client_name": client.as_ref().map(|c| c.name.clone()),
            "client_id": client.as_ref().map(|c| c.id.clone()),
            "post_logout_redirect_uri": back.as_ref().map(|b| b.as_str().to_string()),
            "state": get("state"),
            "action": LOGOUT_PATH,
        });
        let Some(html) =
            render_or_unavailable(state, session, "oidc_logout.html", &context).await?
        else {
            return Ok(());
        };
        let response = match &back {
            Some(redirect) => LocalResponse::html_with_form_target(200, html, redirect.as_str()),
            None => LocalResponse::html(200, html),
        };
        return response.send(session).await;
    }
    if let (Some(id), Some(account)) = (&presented, &account) {
        if let Err(e) = super::visitor::end_session(state, id, Some(account)).await {
            return store_failed(state, session, "OpenID logout failed", &e).await;
        }
        tracing::info!(
            target: "steemgate::audit",
            account = %account,
            client = ?client.as_ref().map(|c| c.id.as_str()),
            "logged out at an OpenID client's request"
        );
    }
    let clear = Some(state.services.sessions.clear_cookie());
    match back {
        Some(redirect) => {
            let location = match get("state") {
                Some(s) => redirect.with_params(&[("state", s)]),
                None => redirect.as_str().to_string(),
            };
            // 303 after our form's POST (RFC 9700 §4.12), 302 after a GET.
            LocalResponse::new(
                if posted { 303 } else { 302 },
                "text/plain; charset=utf-8",
                "",
            )
            .header("location", location)
            .set_cookie(clear)
            .send(session)
            .await
        }
        None => super::messages::logged_out_page(state, session, clear).await,
    }
}
