//! What the agent desktop reads besides the calls API: the agent's own figures today and the
//! caller's previous calls (from the CDR files, joined with their wrap-ups).

use crate::config::ApiRole;
use crate::http::{authorize, may_see, ApiError, ApiState, ClientAddr};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use std::time::Instant;

/// Previous calls shown in the screen pop.
pub const HISTORY_CALLS: usize = 5;
/// How far back the history looks, in days of CDR files.
pub const HISTORY_DAYS: i64 = 90;

/// `GET /api/agents/{id}/today`: calls answered, average handle time and not-ready time today.
pub(crate) async fn agent_today(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let role = authorize(&state, &headers, peer)?.role;
    if !may_see(&role, &id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "agents may only read their own figures",
        ));
    }
    let agent = state
        .node
        .acd
        .agent(&acd::AgentId::from(id.as_str()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_agent",
                format!("unknown agent {id}"),
            )
        })?;
    let tally = state.node.events.agent_tally(&id);
    // The not-ready period in progress counts too.
    let current_not_ready = match agent.state {
        acd::AgentState::NotReady { .. } => Instant::now()
            .saturating_duration_since(agent.since)
            .as_secs_f64(),
        _ => 0.0,
    };
    Ok(Json(json!({
        "agent": id,
        "calls": tally.calls,
        "talk_s": tally.talk_s,
        "average_handle_s": tally.average_handle_s(),
        "not_ready_s": tally.not_ready_s + current_not_ready,
        "state": crate::web::events::state_name(&agent.state),
        "state_seconds": Instant::now().saturating_duration_since(agent.since).as_secs(),
    })))
}

/// One previous call of a caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PastCall {
    /// When it ended (RFC 3339).
    pub date: String,
    /// Who answered (or was rung last).
    pub agent: Option<String>,
    /// The CDR disposition (`answered`, `abandoned`, ...).
    pub disposition: String,
    /// The agent's wrap-up code, if one was filed.
    pub wrap_up: Option<String>,
    /// The wrap-up notes.
    pub notes: Option<String>,
}

/// The last [`HISTORY_CALLS`] calls from `caller` in the CDR files of `dir`, newest first.
pub fn previous_calls(
    dir: &std::path::Path,
    caller: &str,
    now: time::OffsetDateTime,
) -> Result<Vec<PastCall>, String> {
    let from = now - time::Duration::days(HISTORY_DAYS);
    let files = cdr::report::files_for_range(dir, from, now).map_err(|e| e.to_string())?;
    let wrap_ups = super::wrap_up::read_all(dir).map_err(|e| e.to_string())?;
    let mut found = Vec::new();
    for path in files {
        let text = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(cdr::Record::Call(call)) = cdr::Record::from_json(line) else {
                continue;
            };
            if call.caller == caller {
                found.push(call);
            }
        }
    }
    found.sort_by_key(|call| std::cmp::Reverse(call.ended));
    Ok(found
        .into_iter()
        .take(HISTORY_CALLS)
        .map(|call| {
            let wrap_up = wrap_ups.get(&call.id);
            PastCall {
                date: call
                    .ended
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                agent: call.agent,
                disposition: call.disposition.as_str().to_owned(),
                wrap_up: wrap_up.map(|w| w.disposition.clone()),
                notes: wrap_up.map(|w| w.notes.clone()),
            }
        })
        .collect())
}

/// `GET /api/calls/{id}/history`: the previous calls of the live call's caller (the number
/// itself is not in the URL, so it stays out of access logs and masked roles never send it).
pub(crate) async fn caller_history(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let role = authorize(&state, &headers, peer)?.role;
    if role == ApiRole::Analyst {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "analysts read history in reports",
        ));
    }
    let call = crate::http::parse_call_id(&id)?;
    let live = crate::http::live_calls(&state).await?;
    let found = live.into_iter().find(|c| c.id == call).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_call",
            format!("no call {call} in progress"),
        )
    })?;
    if let ApiRole::Agent(own) = &role {
        if found.agent.as_deref() != Some(own.as_str()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "agents may only read the history of their own calls",
            ));
        }
    }
    let dir = state.node.config.current().cdr.dir.clone();
    let caller = found.caller.clone();
    let history = tokio::task::spawn_blocking(move || {
        previous_calls(&dir, &caller, time::OffsetDateTime::now_utc())
    })
    .await
    .map_err(|_| crate::http::stopping())?
    .map_err(|error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cdr_unreadable",
            format!("the CDR files could not be read: {error}"),
        )
    })?;
    Ok(Json(json!({ "call": call, "previous": history })))
}
