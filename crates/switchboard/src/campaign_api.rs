//! The campaigns API (supervisors and admins): `POST /api/campaigns` creates one from a JSON
//! body carrying the contact list as CSV, `GET /api/campaigns` lists every campaign (kept
//! across restarts), `GET /api/campaigns/{id}` reports one, and
//! `POST /api/campaigns/{id}/start` / `…/pause` run and stop its dialling. A list with bad
//! rows is answered 400 naming every row and why, and nothing is imported.

use crate::config::ApiRole;
use crate::http::{authorize, stopping, ApiError, ApiState, CallCommand, ClientAddr};
use crate::switch::campaign::list::{parse_contacts, Mode, RowError};
use crate::switch::campaign::{CampaignCommand, CampaignError, CampaignSpec};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::oneshot;

pub(crate) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/campaigns", post(create).get(list))
        .route("/api/campaigns/{id}", get(report))
        .route("/api/campaigns/{id}/start", post(start))
        .route("/api/campaigns/{id}/pause", post(pause))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn authorize_manager(
    state: &ApiState,
    headers: &HeaderMap,
    peer: std::net::SocketAddr,
) -> Result<(), ApiError> {
    let caller = authorize(state, headers, peer)?;
    match caller.role {
        ApiRole::Admin | ApiRole::Supervisor => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admins and supervisors manage campaigns",
        )),
    }
}

/// Why a create body is refused (400 either way).
enum Refusal {
    Bad(ApiError),
    /// The contact list has bad rows: every one is named.
    BadRows(Vec<RowError>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Bad(error) => error.into_response(),
            Refusal::BadRows(rows) => {
                let body = json!({ "error": {
                    "code": "bad_rows",
                    "message": format!("{} row(s) of the contact list are bad; nothing was imported", rows.len()),
                    "rows": rows,
                }});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
        }
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Refusal::Bad(error)
    }
}

/// The campaign a create body describes.
fn parse_spec(body: &[u8]) -> Result<CampaignSpec, Refusal> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let name = text("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("\"name\" must be a non-empty string"))?;
    let queue = text("queue").ok_or_else(|| bad("\"queue\" must name a queue"))?;
    let mode = match value
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("preview")
    {
        "preview" => Mode::Preview,
        "progressive" => Mode::Progressive,
        other => return Err(bad(format!("unknown mode {other:?}: preview or progressive")).into()),
    };
    let number = |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
        let n = match value.get(key) {
            None => default,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad(format!("\"{key}\" must be a whole number")))?,
        };
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(bad(format!("\"{key}\" {n} out of range {range:?}")))
        }
    };
    let max_attempts = u32::try_from(number("max_attempts", 3, 1..=20)?).unwrap_or(3);
    let retry = Duration::from_secs(number("retry_s", 300, 1..=86_400)?);
    // Rows without a `timezone` of their own are read in this zone.
    let timezone = match value.get("timezone") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(
            crate::ivr::schedule::time_zone(name)
                .map(|_| name.clone())
                .map_err(|e| bad(format!("\"timezone\": {e}")))?,
        ),
        Some(_) => return Err(bad("\"timezone\" must be an IANA time zone name").into()),
    };
    let csv = text("contacts_csv")
        .ok_or_else(|| bad("\"contacts_csv\" must be the contact list as CSV"))?;
    let contacts = parse_contacts(&csv).map_err(Refusal::BadRows)?;
    let dnc = match value.get("dnc") {
        None => Default::default(),
        Some(Value::Array(numbers)) => numbers
            .iter()
            .map(|n| n.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("\"dnc\" must be a list of numbers"))?,
        Some(_) => return Err(bad("\"dnc\" must be a list of numbers").into()),
    };
    Ok(CampaignSpec {
        name,
        queue,
        mode,
        max_attempts,
        retry,
        caller_id: text("caller_id"),
        timezone,
        contacts,
        dnc,
    })
}

async fn run(state: &ApiState, command: CampaignCommand) -> Result<Value, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .calls
        .send(CallCommand::Campaign { command, reply })
        .await
        .map_err(|_| stopping())?;
    answer
        .await
        .map_err(|_| stopping())?
        .map_err(|error| match error {
            CampaignError::UnknownQueue(_) => bad(error.to_string()),
            CampaignError::UnknownCampaign(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_campaign", error.to_string())
            }
        })
}

fn campaign_id(id: &str) -> Result<u64, ApiError> {
    id.parse()
        .map_err(|_| bad(format!("{id:?} is not a campaign id")))
}

async fn create(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(error) = authorize_manager(&state, &headers, peer) {
        return error.into_response();
    }
    let spec = match parse_spec(&body) {
        Ok(spec) => spec,
        Err(refusal) => return refusal.into_response(),
    };
    match run(&state, CampaignCommand::Create(spec)).await {
        Ok(report) => (StatusCode::CREATED, Json(report)).into_response(),
        Err(error) => error.into_response(),
    }
}

async fn list(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize_manager(&state, &headers, peer)?;
    Ok(Json(run(&state, CampaignCommand::List).await?))
}

async fn report(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize_manager(&state, &headers, peer)?;
    Ok(Json(
        run(&state, CampaignCommand::Report(campaign_id(&id)?)).await?,
    ))
}

async fn start(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize_manager(&state, &headers, peer)?;
    Ok(Json(
        run(&state, CampaignCommand::Start(campaign_id(&id)?)).await?,
    ))
}

async fn pause(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize_manager(&state, &headers, peer)?;
    Ok(Json(
        run(&state, CampaignCommand::Pause(campaign_id(&id)?)).await?,
    ))
}
