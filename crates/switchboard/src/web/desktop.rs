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

/// The last [`HISTORY_CALLS`] calls with the customer `number` in the CDR files of `dir`,
/// newest first: the calls they made (their number is the caller) and the calls out to them
/// (callbacks, campaign attempts, agents' own calls: their number is the one dialled).
pub fn previous_calls(
    dir: &std::path::Path,
    number: &str,
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
            let customer = match call.direction {
                cdr::Direction::Inbound => &call.caller,
                cdr::Direction::Outbound => &call.did,
            };
            if customer == number {
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

/// `GET /api/calls/{id}/history`: the previous calls of the live call's customer (the caller,
/// or on a call out the number dialled). The number itself is not in the URL, so it stays out
/// of access logs and masked roles never send it.
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
    let customer = found.customer_number().to_owned();
    let history = tokio::task::spawn_blocking(move || {
        previous_calls(&dir, &customer, time::OffsetDateTime::now_utc())
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A call record ending at `ended` with `caller` and `did`, in or out.
    fn record(id: &str, ended: &str, caller: &str, did: &str, outbound: bool) -> String {
        json!({
            "type": "call", "id": id, "trunk_call_id": id, "arrived": ended, "ended": ended,
            "caller": caller, "did": did, "queue": "support",
            "wait_s": 0.0, "ring_s": 0.0, "talk_s": 0.0, "hold_s": 0.0, "wrap_up_s": 0.0,
            "disposition": "answered", "hangup_side": "caller", "priority": 0,
            "direction": if outbound { "outbound" } else { "inbound" },
        })
        .to_string()
    }

    #[test]
    fn a_customers_history_has_their_calls_in_and_the_calls_out_to_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let lines = [
            record("in-1", "2026-03-10T09:00:00Z", "2000", "100", false),
            record("out-1", "2026-03-10T10:00:00Z", "4000100", "2000", true),
            record("in-other", "2026-03-10T11:00:00Z", "3000", "100", false),
            record("out-other", "2026-03-10T12:00:00Z", "4000100", "3000", true),
        ];
        std::fs::write(
            dir.path().join("cdr-2026-03-10.jsonl"),
            lines.join("\n") + "\n",
        )
        .expect("written");
        let now = time::macros::datetime!(2026-03-11 00:00 UTC);
        let history = previous_calls(dir.path(), "2000", now).expect("read");
        let dates: Vec<&str> = history.iter().map(|c| c.date.as_str()).collect();
        assert_eq!(
            dates,
            vec!["2026-03-10T10:00:00Z", "2026-03-10T09:00:00Z"],
            "the call out to 2000, then the call from 2000, newest first"
        );
        assert!(
            previous_calls(dir.path(), "4000100", now)
                .expect("read")
                .is_empty(),
            "the caller ID sent on calls out is nobody's history"
        );
    }
}
