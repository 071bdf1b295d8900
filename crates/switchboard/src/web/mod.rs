//! The web side: the agent desktop (`/agent`), the supervisor wallboard (`/wallboard`), web
//! logins, CTI events over WebSocket (`/api/events`) and the OpenAPI document.
//!
//! Merged into the API router with one call ([`router`]). Pages and scripts are compiled in
//! (`assets/`), with no build step. Every page and route checks its role: a session cookie
//! authorizes exactly like a bearer token of the same role ([`crate::http::authorize`]).

pub mod assets;
pub mod desktop;
pub mod events;
pub mod events_socket;
pub mod login;
pub mod openapi;
pub mod password;
pub mod session;
pub mod softphone;
pub mod wrap_up;

use crate::config::ApiRole;
use crate::http::{ApiError, ApiState, Caller};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::time::Instant;

/// Every web route; merged into the API router.
pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(assets::home))
        .route("/login", get(assets::login_page))
        .route("/agent", get(assets::agent_page))
        .route("/wallboard", get(assets::wallboard_page))
        .route("/assets/{file}", get(assets::asset))
        .route("/api/login", post(login::login))
        .route("/api/logout", post(login::logout))
        .route("/api/session", get(login::whoami))
        .route("/api/events", get(events_socket::events))
        .route("/api/openapi.json", get(openapi::document))
        .route("/api/agents/{id}/today", get(desktop::agent_today))
        .route("/api/calls/{id}/history", get(desktop::caller_history))
        .route("/api/calls/{id}/wrap-up", post(wrap_up::save))
}

/// The session id a request carries in its cookie.
pub(crate) fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(session::cookie_value)
}

/// The caller a session cookie stands for; an unknown or expired session is a 401 with a
/// code that tells the two apart (the page then says "your session expired").
pub(crate) fn authorize_session(
    state: &ApiState,
    id: &str,
    from: SocketAddr,
) -> Result<Caller, ApiError> {
    match state.sessions.touch(Instant::now(), id) {
        Ok(session) => Ok(Caller {
            token: format!("session:{}", session.login),
            role: session.role,
            from,
        }),
        Err(session::SessionError::Expired) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "your session expired: log in again",
        )),
        Err(session::SessionError::Unknown) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not logged in",
        )),
    }
}

/// `agent`, `supervisor`, `admin` or `analyst`.
pub(crate) fn role_name(role: &ApiRole) -> &'static str {
    match role {
        ApiRole::Agent(_) => "agent",
        ApiRole::Supervisor => "supervisor",
        ApiRole::Admin => "admin",
        ApiRole::Analyst => "analyst",
    }
}
