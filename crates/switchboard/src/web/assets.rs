//! The pages and their scripts, compiled into the binary, and who may open which page.
//!
//! A page is only served to a role that may use it: without a session the browser is sent to
//! the login page (which says when a session expired); with the wrong role it gets a page
//! saying whose page it is.

use crate::config::ApiRole;
use crate::http::{ApiState, ClientAddr};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

const LOGIN_HTML: &str = include_str!("assets/login.html");
const AGENT_HTML: &str = include_str!("assets/agent.html");
const WALLBOARD_HTML: &str = include_str!("assets/wallboard.html");
const STYLE_CSS: &str = include_str!("assets/style.css");
const COMMON_JS: &str = include_str!("assets/common.js");
const AGENT_JS: &str = include_str!("assets/agent.js");
const WALLBOARD_JS: &str = include_str!("assets/wallboard.js");
const LOGIN_JS: &str = include_str!("assets/login.js");
const SOFTPHONE_JS: &str = include_str!("assets/softphone.js");
/// JsSIP and its dependencies as one browser file (see assets/vendor/JSSIP-LICENSES.txt).
const JSSIP_JS: &str = include_str!("assets/vendor/jssip.min.js");

/// Which page a role lands on after login.
pub fn home_of(role: &ApiRole) -> &'static str {
    match role {
        ApiRole::Agent(_) => "/agent",
        ApiRole::Supervisor | ApiRole::Admin => "/wallboard",
        ApiRole::Analyst => "/api/openapi.json",
    }
}

/// What a page request gets: the page, a redirect to login, or a refusal page.
fn gate(
    state: &ApiState,
    headers: &HeaderMap,
    from: std::net::SocketAddr,
    page: &str,
    allowed: fn(&ApiRole) -> bool,
    who: &str,
    html: &'static str,
) -> Response {
    let Some(id) = super::session_of(headers) else {
        return Redirect::to(&format!("/login?next={page}")).into_response();
    };
    match super::authorize_session(state, id, from) {
        Ok(caller) if allowed(&caller.role) => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(html),
        )
            .into_response(),
        Ok(caller) => (
            StatusCode::FORBIDDEN,
            Html(format!(
                "<!doctype html><html lang=en><head><meta charset=utf-8><title>Not your page</title>\
                 <link rel=stylesheet href=/assets/style.css></head><body class=notice>\
                 <h1>This page is for {who}</h1><p>You are logged in as {} ({}).</p>\
                 <p><a href={}>Go to your page</a> · <a href=/login onclick=\"fetch('/api/logout',{{method:'POST'}})\">Log in as someone else</a></p></body></html>",
                escape(caller.token.strip_prefix("session:").unwrap_or_default()),
                super::role_name(&caller.role),
                home_of(&caller.role),
            )),
        )
            .into_response(),
        Err(error) if error.code == "session_expired" => {
            Redirect::to(&format!("/login?expired=1&next={page}")).into_response()
        }
        Err(_) => Redirect::to(&format!("/login?next={page}")).into_response(),
    }
}

/// HTML-escapes `text`.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) async fn agent_page(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Response {
    gate(
        &state,
        &headers,
        peer,
        "/agent",
        |role| matches!(role, ApiRole::Agent(_)),
        "agents",
        AGENT_HTML,
    )
}

pub(crate) async fn wallboard_page(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Response {
    gate(
        &state,
        &headers,
        peer,
        "/wallboard",
        |role| matches!(role, ApiRole::Supervisor | ApiRole::Admin),
        "supervisors and admins",
        WALLBOARD_HTML,
    )
}

pub(crate) async fn login_page() -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Html(LOGIN_HTML)).into_response()
}

/// `/`: the logged-in person's page, or the login page.
pub(crate) async fn home(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Response {
    let role = super::session_of(&headers)
        .and_then(|id| super::authorize_session(&state, id, peer).ok())
        .map(|caller| caller.role);
    match role {
        Some(role) => Redirect::to(home_of(&role)).into_response(),
        None => Redirect::to("/login").into_response(),
    }
}

/// `/assets/{file}`.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "style.css" => (STYLE_CSS, "text/css; charset=utf-8"),
        "common.js" => (COMMON_JS, "text/javascript; charset=utf-8"),
        "agent.js" => (AGENT_JS, "text/javascript; charset=utf-8"),
        "wallboard.js" => (WALLBOARD_JS, "text/javascript; charset=utf-8"),
        "login.js" => (LOGIN_JS, "text/javascript; charset=utf-8"),
        "softphone.js" => (SOFTPHONE_JS, "text/javascript; charset=utf-8"),
        "jssip.min.js" => (JSSIP_JS, "text/javascript; charset=utf-8"),
        _ => {
            return crate::http::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset")
                .into_response()
        }
    };
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}
