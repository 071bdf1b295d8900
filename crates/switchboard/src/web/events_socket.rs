//! `GET /api/events`: the CTI event stream over a WebSocket.
//!
//! Authorized like every API route (a bearer token in the upgrade request, or the web session
//! cookie; a cookie is only accepted from a page of this server, checked by `Origin`). Each
//! socket gets a `hello` with the agents it may see and the queue figures, then every event
//! its role may see (agents: their own), callers' numbers masked per `[http] mask_caller_for`,
//! and queue figures at most once a second when they changed.

use super::events::CtiEvent;
use crate::config::ApiRole;
use crate::http::{authorize, ApiError, ApiState, ClientAddr};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// How often queue figures are re-checked (and sent when changed): the wallboard's clock.
const FIGURES_EVERY: Duration = Duration::from_secs(1);

/// Whether a cookie-authorized upgrade comes from a page of this server: a cookie would
/// otherwise let any web site the agent visits read their events (cross-site WebSocket).
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    match (host, origin) {
        (Some(host), Some(origin)) => origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host),
        // Non-browser clients send no Origin.
        (_, None) => true,
        (None, Some(_)) => false,
    }
}

pub(crate) async fn events(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // Who is asking comes first: an unauthorized client learns nothing else.
    let caller = authorize(&state, &headers, peer)?;
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "websocket_required",
            format!("/api/events is a WebSocket: {rejection}"),
        )
    })?;
    if caller.token.starts_with("session:") && !same_origin(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the session cookie is only accepted from this server's pages",
        ));
    }
    // The stream carries callers' numbers (personal data), like GET /api/calls: audited.
    let outcome: Result<(), ApiError> = Ok(());
    crate::http::audit(
        &state,
        &caller,
        "events-read",
        "/api/events".to_owned(),
        &outcome,
    )
    .await;
    let role = caller.role;
    Ok(upgrade.on_upgrade(move |socket| stream(state, role, socket)))
}

/// The event as `role` receives it, or `None` if it may not see it.
pub(crate) fn for_role(event: &CtiEvent, role: &ApiRole, mask: bool) -> Option<String> {
    if !event.visible_to(role) {
        return None;
    }
    let event = if mask {
        event.clone().masked()
    } else {
        event.clone()
    };
    serde_json::to_string(&event).ok()
}

async fn stream(state: ApiState, role: ApiRole, mut socket: WebSocket) {
    let mask = crate::http::masks_caller(&state.node.config.current(), &role);
    let mut events = state.node.events.subscribe();
    let now = Instant::now();
    let mut agents = state.node.acd.agents();
    agents.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let visible: Vec<_> = agents
        .iter()
        .filter(|a| crate::http::may_see(&role, a.id.as_str()))
        .map(|a| crate::http::agent_json(a, now))
        .collect();
    let mut figures = state.node.events.queue_figures(&state.node.acd, now);
    // The calls already in progress, so a page opened mid-call shows them (masked and
    // filtered like GET /api/calls).
    let calls = crate::http::calls_seen_by(&state, &role)
        .await
        .unwrap_or_default();
    let hello = json!({
        "type": "hello",
        "role": super::role_name(&role),
        "agents": visible,
        "queues": figures,
        "calls": calls,
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    let mut tick = tokio::time::interval(FIGURES_EVERY);
    loop {
        tokio::select! {
            received = events.recv() => {
                let text = match received {
                    Ok(event) => for_role(&event, &role, mask),
                    Err(RecvError::Lagged(missed)) => {
                        serde_json::to_string(&CtiEvent::Lagged { missed }).ok()
                    }
                    Err(RecvError::Closed) => return,
                };
                if let Some(text) = text {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                // Every event may move the queue figures: send them now rather than at the
                // next tick, so the wallboard follows a call within the same moment.
                if !send_figures_if_changed(&state, &mut socket, &mut figures).await {
                    return;
                }
            }
            _ = tick.tick() => {
                if !send_figures_if_changed(&state, &mut socket, &mut figures).await {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // The stream is one-way; pings are answered by axum.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Sends the queue figures when they differ from `last`; false when the socket is gone.
async fn send_figures_if_changed(
    state: &ApiState,
    socket: &mut WebSocket,
    last: &mut Vec<super::events::QueueFigures>,
) -> bool {
    let now = state
        .node
        .events
        .queue_figures(&state.node.acd, Instant::now());
    if now == *last {
        return true;
    }
    *last = now;
    let event = CtiEvent::Queues {
        queues: last.clone(),
    };
    match serde_json::to_string(&event) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_upgrades_must_come_from_this_server() {
        let headers = |host: &str, origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, host.parse().expect("host"));
            if let Some(origin) = origin {
                h.insert(header::ORIGIN, origin.parse().expect("origin"));
            }
            h
        };
        assert!(same_origin(&headers(
            "127.0.0.1:8080",
            Some("http://127.0.0.1:8080")
        )));
        assert!(same_origin(&headers("127.0.0.1:8080", None)));
        assert!(!same_origin(&headers(
            "127.0.0.1:8080",
            Some("https://evil.example")
        )));
    }

    #[test]
    fn each_role_gets_what_it_may_see_masked_as_configured() {
        let offer = CtiEvent::CallOffered {
            call: 1,
            agent: "1001".into(),
            queue: "support".into(),
            wait_s: 2.0,
            caller: "+8613812341234".into(),
            did: "100".into(),
            ivr_path: vec![],
            priority: 0,
            label: None,
        };
        let own = for_role(&offer, &ApiRole::Agent("1001".into()), true).expect("own call");
        assert!(own.contains("+86138****1234"), "{own}");
        assert!(own.contains(r#""type":"call-offered""#), "{own}");
        assert_eq!(
            for_role(&offer, &ApiRole::Agent("1002".into()), false),
            None
        );
        let supervisor = for_role(&offer, &ApiRole::Supervisor, false).expect("all");
        assert!(supervisor.contains("+8613812341234"), "{supervisor}");
    }
}
