//! `POST /api/login`, `POST /api/logout`, `GET /api/session`.
//!
//! Agents log in with their `[[agent]]` id and the password of its `web_password_hash`;
//! supervisors, admins and analysts with their `[[http.user]]` name. A failure is the same
//! answer whether the name or the password was wrong, goes to the security log like a refused
//! token, and counts towards the per-source limit of [`super::session`].

use super::session;
use crate::config::{ApiRole, Config};
use crate::http::{authorize, ApiError, ApiState, ClientAddr};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::time::Instant;

/// The role and password hash that `login` names, if any.
fn credentials_of(config: &Config, login: &str) -> Option<(ApiRole, String)> {
    if let Some(agent) = config.agents.iter().find(|a| a.id == login) {
        return agent
            .web_password_hash
            .clone()
            .map(|hash| (ApiRole::Agent(agent.id.clone()), hash));
    }
    config
        .http
        .users
        .iter()
        .find(|u| u.name == login)
        .map(|u| (u.role.clone(), u.web_password_hash.clone()))
}

/// `{"login": "1001", "password": "..."}`.
fn parse_login(body: &[u8]) -> Result<(String, String), ApiError> {
    let bad = |message: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let value: Value = serde_json::from_slice(body).map_err(|_| bad("body is not JSON"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_owned)
    };
    match (field("login"), field("password")) {
        (Some(login), Some(password)) => Ok((login, password)),
        _ => Err(bad("give \"login\" and \"password\" (strings)")),
    }
}

pub(crate) async fn login(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (name, password) = parse_login(&body)?;
    if let Err(wait) = state.sessions.may_try(Instant::now(), peer.ip()) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many failed logins from your address: try again in {} s",
                wait.as_secs().max(1)
            ),
        ));
    }
    let found = credentials_of(&state.node.config.current(), &name);
    // argon2 takes tens of milliseconds by design: off the async workers.
    let verified = tokio::task::spawn_blocking(move || match found {
        Some((role, hash)) => password::verify(&hash, &password).then_some(role),
        None => {
            // An unknown name costs the same argon2 work as a known one, so the answer's
            // timing does not tell which logins exist.
            password::verify(unknown_login_hash(), &password);
            None
        }
    })
    .await
    .map_err(|_| crate::http::stopping())?;
    let Some(role) = verified else {
        state.sessions.failed(Instant::now(), peer.ip());
        state
            .node
            .metrics
            .api_auth_failures
            .with_label_values(&["web-login"])
            .inc();
        state.node.gate.record(
            Instant::now(),
            &crate::security::SecurityEvent {
                kind: crate::security::SecurityEventKind::AuthFailure,
                source: peer,
                transport: "HTTP",
                method: None,
                user: Some(&name),
                reason: "web-login",
            },
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "wrong login or password",
        ));
    };
    state.sessions.succeeded(peer.ip());
    let id = state.sessions.start(Instant::now(), &name, role.clone());
    let caller = crate::http::Caller {
        token: format!("session:{name}"),
        role: role.clone(),
        from: peer,
    };
    let outcome: Result<(), ApiError> = Ok(());
    crate::http::audit(&state, &caller, "web-login", name.clone(), &outcome).await;
    let cookie = session::set_cookie(&id, state.sessions.idle(), state.https);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(session_json(&state, &name, &role)),
    )
        .into_response())
}

use super::password;

/// A hash no password is checked against except to spend the time a real check takes.
fn unknown_login_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| password::hash("no such login").unwrap_or_default())
}

fn session_json(state: &ApiState, login: &str, role: &ApiRole) -> Value {
    let config = state.node.config.current();
    let acd = &config.acd;
    json!({
        "login": login,
        "role": super::role_name(role),
        "agent": match role { ApiRole::Agent(id) => Some(id.as_str()), _ => None },
        "name": config.agents.iter().find(|a| a.id == login).map(|a| a.name.as_str()),
        "not_ready_reasons": acd.not_ready_reasons,
        "dispositions": acd.dispositions,
        "caller_masked": crate::http::masks_caller(&config, role),
        "session_idle_s": state.sessions.idle().as_secs(),
        "softphone": super::softphone::softphone_json(&config, role),
    })
}

/// `GET /api/session`: who is logged in, and what the pages need to know about the setup.
pub(crate) async fn whoami(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let login = caller
        .token
        .strip_prefix("session:")
        .unwrap_or(&caller.token)
        .to_owned();
    Ok(Json(session_json(&state, &login, &caller.role)))
}

/// `POST /api/logout`: ends the session and clears the cookie (fine without one).
pub(crate) async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if let Some(id) = super::session_of(&headers) {
        state.sessions.end(id);
    }
    (
        [(header::SET_COOKIE, session::clear_cookie(state.https))],
        Json(json!({ "logged_out": true })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_bodies_parse_or_explain() {
        assert_eq!(
            parse_login(br#"{"login":"1001","password":"pw"}"#).ok(),
            Some(("1001".to_owned(), "pw".to_owned()))
        );
        for body in [
            &b"x"[..],
            br#"{"login":"1001"}"#,
            br#"{"login":"","password":"p"}"#,
        ] {
            let error = parse_login(body).expect_err("refused");
            assert_eq!(error.code, "bad_request");
        }
    }

    #[test]
    fn the_demo_logins_are_the_documented_ones() {
        let demo = crate::config::demo();
        for (login, pw, role) in [
            ("1001", "web1001", ApiRole::Agent("1001".into())),
            ("1003", "web1003", ApiRole::Agent("1003".into())),
            ("supervisor", "demo-supervisor", ApiRole::Supervisor),
            ("admin", "demo-admin", ApiRole::Admin),
        ] {
            let (found, hash) = credentials_of(&demo, login).expect("demo login");
            assert_eq!(found, role);
            assert!(password::verify(&hash, pw), "{login}");
        }
    }

    #[test]
    fn agents_and_users_log_in_with_their_own_hash() {
        let hash = password::hash("pw").expect("hash");
        let config = crate::config::testing::valid(&format!(
            "[[agent]]\nid = \"1001\"\nname = \"A\"\npassword = \"p\"\nweb_password_hash = \"{hash}\"\n\
             [[agent]]\nid = \"1002\"\nname = \"B\"\npassword = \"p\"\n\
             [[http.user]]\nname = \"sue\"\nrole = \"supervisor\"\nweb_password_hash = \"{hash}\"\n"
        ));
        assert_eq!(
            credentials_of(&config, "1001").map(|c| c.0),
            Some(ApiRole::Agent("1001".into()))
        );
        assert_eq!(credentials_of(&config, "1002"), None, "no web password");
        assert_eq!(
            credentials_of(&config, "sue").map(|c| c.0),
            Some(ApiRole::Supervisor)
        );
        assert_eq!(credentials_of(&config, "nobody"), None);
    }
}
