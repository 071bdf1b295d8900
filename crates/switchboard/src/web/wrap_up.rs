//! Wrap-ups: what the agent says the call was about, filed after the call has ended.
//!
//! The call's CDR is written (and made durable) when the call ends, before the agent has
//! filled in the form, and CDR lines are never rewritten. A wrap-up is therefore an
//! *amendment*: one JSON line in `<cdr.dir>/wrap-up.jsonl`, naming the CDR by its `id`
//! (`{"type":"wrap_up","call_id":"sb-…","agent":"1001","disposition":"resolved",
//! "notes":"…","at":"…"}`), synced to disk before the API answers. `switchboard report` and
//! the caller history of the desktop join the two by `call_id`; a later wrap-up of the same
//! call replaces an earlier one.

use crate::config::ApiRole;
use crate::http::{authorize, ApiError, ApiState, ClientAddr};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, Write};

/// The amendment file in the CDR directory.
pub const FILE: &str = "wrap-up.jsonl";
/// Longest notes accepted, in characters.
pub const MAX_NOTES: usize = 2000;

/// One wrap-up line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WrapUp {
    /// Always `wrap_up`, so the line reads on its own.
    #[serde(rename = "type")]
    pub kind: String,
    /// The CDR's `id`.
    pub call_id: String,
    /// The agent who filed it.
    pub agent: String,
    /// One of `[acd] dispositions`.
    pub disposition: String,
    /// Free text.
    pub notes: String,
    /// When it was filed (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
}

/// The disposition and notes of a request body, checked against the configured codes.
fn parse_request(body: &[u8], codes: &[String]) -> Result<(String, String), ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let disposition = value
        .get("disposition")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("\"disposition\" (a string) is required".into()))?;
    if !codes.iter().any(|c| c == disposition) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_disposition",
            format!(
                "unknown disposition {disposition:?}; configured: {}",
                codes.join(", ")
            ),
        ));
    }
    let notes = match value.get("notes") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(notes)) => notes.clone(),
        Some(_) => return Err(bad("\"notes\" must be a string".into())),
    };
    if notes.chars().count() > MAX_NOTES {
        return Err(bad(format!("notes are limited to {MAX_NOTES} characters")));
    }
    Ok((disposition.to_owned(), notes))
}

/// Appends `wrap_up` to the amendment file and syncs it.
pub fn append(dir: &std::path::Path, wrap_up: &WrapUp) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(wrap_up).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(FILE))?;
    file.write_all(&line)?;
    file.sync_data()
}

/// Every wrap-up in `dir`, the latest per CDR id; a missing file is none, a bad line is skipped.
pub fn read_all(dir: &std::path::Path) -> std::io::Result<HashMap<String, WrapUp>> {
    let file = match std::fs::File::open(dir.join(FILE)) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(error) => return Err(error),
    };
    let mut latest = HashMap::new();
    for line in std::io::BufReader::new(file).lines() {
        if let Ok(wrap_up) = serde_json::from_str::<WrapUp>(&line?) {
            latest.insert(wrap_up.call_id.clone(), wrap_up);
        }
    }
    Ok(latest)
}

/// Wrap-up codes of the calls in the CDR files of `dir` that a report over `[from, to)`
/// counts (queued or, if never queued, arrived in the range; `queue`/`agent` filters as the
/// report's), by code, most frequent first; calls without a wrap-up are not listed.
pub fn dispositions_in_range(
    dir: &std::path::Path,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
    queue: Option<&str>,
    agent: Option<&str>,
) -> Result<Vec<(String, u64)>, String> {
    let wrap_ups = read_all(dir).map_err(|e| format!("{}: {e}", dir.join(FILE).display()))?;
    if wrap_ups.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts: HashMap<String, u64> = HashMap::new();
    let scan = cdr::report::CallScan {
        from,
        to,
        queue,
        agent,
    };
    scan.each_call(dir, &mut |call| {
        if let Some(wrap_up) = wrap_ups.get(&call.id) {
            *counts.entry(wrap_up.disposition.clone()).or_default() += 1;
        }
    })
    .map_err(|e| e.to_string())?;
    let mut counts: Vec<(String, u64)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(counts)
}

/// `POST /api/calls/{id}/wrap-up` with `{"disposition": "resolved", "notes": "..."}`: only the
/// agent who talked to the caller, after the call ended.
pub(crate) async fn save(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let outcome = save_as(&state, &caller.role, &id, &body).await;
    let target = match &outcome {
        Ok(Json(value)) => format!("{id} {}", value["disposition"].as_str().unwrap_or_default()),
        Err(_) => id,
    };
    crate::http::audit(&state, &caller, "wrap-up", target, &outcome).await;
    outcome
}

async fn save_as(
    state: &ApiState,
    role: &ApiRole,
    id: &str,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    let ApiRole::Agent(own) = role else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the agent who took the call files its wrap-up",
        ));
    };
    let call = crate::http::parse_call_id(id)?;
    let (disposition, notes) = parse_request(body, &state.node.config.current().acd.dispositions)?;
    let ended = state.node.events.ended_call(call).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "call_not_ended",
            format!(
                "call {call} is not an ended call of this node (still in progress, or too old)"
            ),
        )
    })?;
    if &ended.agent != own {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "agents may only wrap up their own calls",
        ));
    }
    let wrap_up = WrapUp {
        kind: "wrap_up".to_owned(),
        call_id: ended.cdr_id.clone(),
        agent: own.clone(),
        disposition,
        notes,
        at: time::OffsetDateTime::now_utc(),
    };
    let dir = state.node.config.current().cdr.dir.clone();
    let written = wrap_up.clone();
    tokio::task::spawn_blocking(move || append(&dir, &written))
        .await
        .map_err(|_| crate::http::stopping())?
        .map_err(|error| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "not_saved",
                format!("the wrap-up could not be written: {error}"),
            )
        })?;
    tell_campaigns(state, call, &wrap_up.disposition).await;
    Ok(Json(json!({
        "call": call,
        "call_id": wrap_up.call_id,
        "disposition": wrap_up.disposition,
        "notes": wrap_up.notes,
    })))
}

/// A campaign call's disposition is also its contact's result in the campaign report. The
/// wrap-up is already durable, so a node that is stopping only loses the report's copy.
async fn tell_campaigns(state: &ApiState, call: u64, disposition: &str) {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let command = crate::switch::campaign::CampaignCommand::WrappedUp {
        call,
        disposition: disposition.to_owned(),
    };
    if state
        .calls
        .send(crate::http::CallCommand::Campaign { command, reply })
        .await
        .is_ok()
    {
        let _ = answer.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_a_configured_disposition() {
        let codes = vec!["resolved".to_owned(), "escalated".to_owned()];
        assert_eq!(
            parse_request(br#"{"disposition":"resolved","notes":"fixed"}"#, &codes).ok(),
            Some(("resolved".to_owned(), "fixed".to_owned()))
        );
        let error = parse_request(br#"{"disposition":"sold"}"#, &codes).expect_err("unknown");
        assert_eq!(error.code, "unknown_disposition");
        assert!(
            error.message.contains("resolved, escalated"),
            "{}",
            error.message
        );
        for body in [
            &b"{"[..],
            br#"{"notes":"x"}"#,
            br#"{"disposition":"resolved","notes":5}"#,
        ] {
            assert_eq!(
                parse_request(body, &codes).expect_err("bad").code,
                "bad_request"
            );
        }
        let long = format!(
            r#"{{"disposition":"resolved","notes":"{}"}}"#,
            "x".repeat(MAX_NOTES + 1)
        );
        assert_eq!(
            parse_request(long.as_bytes(), &codes)
                .expect_err("long")
                .code,
            "bad_request"
        );
    }

    #[test]
    fn the_latest_wrap_up_of_a_call_wins() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(read_all(dir.path()).expect("no file").is_empty());
        let mut first = WrapUp {
            kind: "wrap_up".into(),
            call_id: "sb-1-7".into(),
            agent: "1001".into(),
            disposition: "follow-up".into(),
            notes: String::new(),
            at: time::macros::datetime!(2026-12-06 10:00 UTC),
        };
        append(dir.path(), &first).expect("write");
        first.disposition = "resolved".into();
        append(dir.path(), &first).expect("write");
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE))
            .and_then(|mut f| f.write_all(b"not json\n"))
            .expect("garbage line");
        let all = read_all(dir.path()).expect("read");
        assert_eq!(all.len(), 1);
        assert_eq!(all["sb-1-7"].disposition, "resolved");
    }
}
