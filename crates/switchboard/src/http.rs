//! The HTTP side: health endpoints and the agent/queue API.
//!
//! Reads (`GET /api/agents`, `GET /api/queues`) come straight from the lock-free ACD; state
//! changes go to the call-control task over a channel, because an agent becoming Ready may be
//! offered a waiting call at once and only that task places calls. Every error is JSON with a
//! stable `code`.
//!
//! Emergency announcements (`/api/emergency`, admin or supervisor) are written straight to the
//! lock-free [`crate::emergency::EmergencyBoard`] that call control reads for every new call.
//!
//! Every request that changes state or reads personal data is written to the audit log
//! ([`crate::audit`]) with the token's name and the source address before the answer goes out;
//! a refused token is logged to the security log and counted.

use crate::audit::{AuditRecord, Who};
use crate::config::{ApiRole, Config};
use crate::emergency::DEFAULT_EMERGENCY_PROMPT;
use crate::runtime::Node;
use crate::switch::command::RequestedState;
use crate::switch::live_calls::{mask_number, CallAction, CallActionError, CallView};
use acd::{AcdError, AgentSnapshot, AgentState, QueueSnapshot};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A state change for the core, with where to send the outcome.
pub struct AgentCommand {
    /// Agent id.
    pub agent: String,
    /// What to change to.
    pub state: RequestedState,
    /// The outcome.
    pub reply: oneshot::Sender<Result<(), AcdError>>,
}

/// A request about calls for the core: the live list, or an action on one call.
pub enum CallCommand {
    /// Every call in progress.
    List {
        /// The answer.
        reply: oneshot::Sender<Vec<CallView>>,
    },
    /// Hold, resume or transfer one call.
    Act {
        /// The call's id.
        call: u64,
        /// What to do.
        action: CallAction,
        /// The outcome.
        reply: oneshot::Sender<Result<(), CallActionError>>,
    },
    /// Create, start, pause or report a campaign; the answer is the campaign's report.
    Campaign {
        /// What to do.
        command: crate::switch::campaign::CampaignCommand,
        /// The report, or why not.
        reply: oneshot::Sender<Result<Value, crate::switch::campaign::CampaignError>>,
    },
    /// Pending and recently finished callbacks.
    Callbacks {
        /// The answer.
        reply: oneshot::Sender<Vec<crate::switch::callback::book::CallbackView>>,
    },
}

#[derive(Clone)]
pub(crate) struct ApiState {
    pub(crate) node: Arc<Node>,
    pub(crate) commands: mpsc::Sender<AgentCommand>,
    pub(crate) calls: mpsc::Sender<CallCommand>,
    /// Web logins (the agent desktop and the wallboard); a session cookie authorizes like a token.
    pub(crate) sessions: Arc<crate::web::session::Sessions>,
    /// The listener speaks HTTPS (session cookies are then `Secure`).
    pub(crate) https: bool,
}

/// An API error: HTTP status, stable machine code, human message.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<AcdError> for ApiError {
    fn from(error: AcdError) -> Self {
        let (status, code) = match &error {
            AcdError::UnknownAgent(_) => (StatusCode::NOT_FOUND, "unknown_agent"),
            AcdError::UnknownReason(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_reason"),
            AcdError::IllegalTransition { .. } | AcdError::AgentBusy(_) => {
                (StatusCode::CONFLICT, "illegal_transition")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, error.to_string())
    }
}

/// The address a request came from, for the security and audit logs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientAddr(pub(crate) SocketAddr);

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::http_limits::LimitedListener>,
    > for ClientAddr
{
    fn connect_info(
        stream: axum::serve::IncomingStream<'_, crate::http_limits::LimitedListener>,
    ) -> Self {
        Self(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, crate::https::HttpsListener>,
    > for ClientAddr
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::https::HttpsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Binds the HTTP listener and serves in the background; returns the bound address.
pub async fn serve(
    config: Arc<Config>,
    node: Arc<Node>,
    commands: mpsc::Sender<AgentCommand>,
    calls: mpsc::Sender<CallCommand>,
    tls: Option<Arc<transport::ServerIdentity>>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("binding HTTP listener {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    let limits = crate::http_limits::HttpLimits::from_config(&config);
    let state = ApiState {
        sessions: Arc::new(crate::web::session::Sessions::new(config.http.session_idle)),
        https: tls.is_some(),
        node,
        commands,
        calls,
    };
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/agents", get(list_agents))
        .route("/api/agents/{id}", get(get_agent))
        .route("/api/agents/{id}/state", post(set_state))
        .route("/api/queues", get(list_queues))
        .route("/api/calls", get(list_calls))
        .route("/api/callbacks", get(list_callbacks))
        .route("/api/calls/{id}/hold", post(hold_call))
        .route("/api/calls/{id}/resume", post(resume_call))
        .route("/api/calls/{id}/transfer", post(transfer_call))
        .route("/api/calls/{id}/supervise", post(supervise_call))
        .route("/api/calls/{id}/consult", post(consult_call))
        .route("/api/calls/{id}/complete", post(complete_call))
        .route("/api/calls/{id}/cancel", post(cancel_call))
        .route("/api/calls/{id}/conference", post(conference_call))
        .route("/api/emergency", get(list_emergencies))
        .route(
            "/api/emergency/{did}",
            put(set_emergency).delete(clear_emergency),
        )
        .route("/api/bans", get(list_bans))
        .route("/api/bans/{addr}", axum::routing::delete(lift_ban))
        .route("/api/audit", get(read_audit))
        .route("/api/reload", post(reload))
        .merge(crate::web::router())
        .merge(crate::campaign_api::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .with_state(state)
        .into_make_service_with_connect_info::<ClientAddr>();
    let listener = crate::http_limits::LimitedListener::new(listener, limits);
    match tls {
        None => {
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "HTTP server stopped");
                }
            });
        }
        Some(identity) => {
            let listener = crate::https::HttpsListener::new(listener, &identity)?;
            tokio::spawn(async move {
                if let Err(error) = axum::serve(listener, app).await {
                    tracing::error!(%error, "HTTPS server stopped");
                }
            });
        }
    }
    Ok(addr)
}

async fn readyz(State(state): State<ApiState>) -> Response {
    if state.node.stats.draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        "ready\n".into_response()
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.node.metrics.render(&state.node),
    )
        .into_response()
}

/// Who sent an authorised request.
pub(crate) struct Caller {
    /// The token's `name`, or `session:<login>` for a web session.
    pub(crate) token: String,
    pub(crate) role: ApiRole,
    pub(crate) from: SocketAddr,
}

impl Caller {
    fn who(&self) -> Who {
        let (role, agent) = match &self.role {
            ApiRole::Agent(id) => ("agent", Some(id.clone())),
            ApiRole::Supervisor => ("supervisor", None),
            ApiRole::Admin => ("admin", None),
            ApiRole::Analyst => ("analyst", None),
        };
        Who {
            token: Some(self.token.clone()),
            role: Some(role.to_owned()),
            agent,
        }
    }
}

/// Checks the bearer token, or else the web session cookie; a missing or unknown one is
/// logged with the source address and counted before the 401 goes out.
pub(crate) fn authorize(
    state: &ApiState,
    headers: &HeaderMap,
    from: SocketAddr,
) -> Result<Caller, ApiError> {
    let has_bearer = headers.contains_key(axum::http::header::AUTHORIZATION);
    if let (false, Some(session)) = (has_bearer, crate::web::session_of(headers)) {
        return crate::web::authorize_session(state, session, from);
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        refuse_token(state, from, "missing-token");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing bearer token",
        ));
    };
    let digest = crate::token_digest::TokenDigest::of(presented);
    // Every configured digest is compared, so the time taken does not tell which one matched.
    let mut found = None;
    let config = state.node.config.current();
    for token in &config.http.tokens {
        if token.digest.matches(&digest) && found.is_none() {
            found = Some(token);
        }
    }
    match found {
        Some(token) => Ok(Caller {
            token: token.name.clone(),
            role: token.role.clone(),
            from,
        }),
        None => {
            refuse_token(state, from, "invalid-token");
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "invalid token",
            ))
        }
    }
}

pub(crate) fn refuse_token(state: &ApiState, from: SocketAddr, reason: &'static str) {
    state
        .node
        .metrics
        .api_auth_failures
        .with_label_values(&[reason])
        .inc();
    state.node.gate.record(
        Instant::now(),
        &crate::security::SecurityEvent {
            kind: crate::security::SecurityEventKind::AuthFailure,
            source: from,
            transport: "HTTP",
            method: None,
            user: None,
            reason,
        },
    );
}

/// Writes the audit record of `caller`'s `action` and waits until it is on disk. A failed
/// write is logged and counted by the writer; the caller still gets the outcome of what was
/// done (it cannot be undone).
pub(crate) async fn audit<T>(
    state: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    outcome: &Result<T, ApiError>,
) {
    let result = match outcome {
        Ok(_) => "ok",
        Err(error) => error.code,
    };
    let record = AuditRecord::now(
        caller.who(),
        Some(caller.from.ip().to_string()),
        action,
        Some(target),
        result,
    );
    let _ = state.node.audit.write(record).await;
}

pub(crate) fn agent_json(agent: &AgentSnapshot, now: Instant) -> Value {
    let (state, reason) = match &agent.state {
        AgentState::LoggedOut => ("logged-out", None),
        AgentState::Ready => ("ready", None),
        AgentState::Reserved { .. } => ("reserved", None),
        AgentState::OnCall { .. } => ("on-call", None),
        AgentState::WrapUp { .. } => ("wrap-up", None),
        AgentState::NotReady { reason } => ("not-ready", Some(reason.to_string())),
    };
    json!({
        "id": agent.id.as_str(),
        "name": agent.name,
        "state": state,
        "reason": reason,
        "state_seconds": now.saturating_duration_since(agent.since).as_secs(),
        "skills": agent.skills.iter().map(|(s, l)| json!({"skill": s.as_str(), "level": l})).collect::<Vec<_>>(),
        "queues": agent.queues.iter().map(|q| q.as_str()).collect::<Vec<_>>(),
        "calls_answered": agent.calls_answered,
    })
}

fn queue_json(queue: &QueueSnapshot, now: Instant) -> Value {
    let a = &queue.agents;
    json!({
        "name": queue.id.as_str(),
        "waiting": queue.waiting,
        "longest_wait_seconds": queue.oldest_waiting_since.map(|t| now.saturating_duration_since(t).as_secs()),
        "agents": {
            "ready": a.ready, "reserved": a.reserved, "on_call": a.on_call,
            "wrap_up": a.wrap_up, "not_ready": a.not_ready, "logged_out": a.logged_out,
        },
        "average_handle_seconds": queue.handle_time.as_secs(),
    })
}

/// Agents may only see and change themselves.
pub(crate) fn may_see(role: &ApiRole, agent: &str) -> bool {
    match role {
        ApiRole::Agent(own) => own == agent,
        _ => true,
    }
}

async fn list_agents(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let role = authorize(&state, &headers, peer)?.role;
    let now = Instant::now();
    let mut agents = state.node.acd.agents();
    agents.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let list: Vec<Value> = agents
        .iter()
        .filter(|a| may_see(&role, a.id.as_str()))
        .map(|a| agent_json(a, now))
        .collect();
    Ok(Json(json!({ "agents": list })))
}

async fn get_agent(
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
            "agents may only read their own state",
        ));
    }
    agent_response(&state, &id)
}

/// The agent's current state as the response body, or 404.
fn agent_response(state: &ApiState, id: &str) -> Result<Json<Value>, ApiError> {
    let agent = state
        .node
        .acd
        .agent(&acd::AgentId::from(id))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_agent",
                format!("unknown agent {id}"),
            )
        })?;
    Ok(Json(agent_json(&agent, Instant::now())))
}

async fn list_queues(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize(&state, &headers, peer)?;
    let now = Instant::now();
    let mut queues = state.node.acd.queues();
    queues.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let list: Vec<Value> = queues.iter().map(|q| queue_json(q, now)).collect();
    Ok(Json(json!({ "queues": list })))
}

/// `POST /api/agents/{id}/state` with `{"state": "ready" | "not-ready" | "logged-out", "reason": "break"}`.
async fn set_state(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let outcome = set_state_as(&state, &caller.role, &id, &body).await;
    let target = match parse_state_request(&body) {
        Ok(requested) => format!("{id} {}", describe_state(&requested)),
        Err(_) => id,
    };
    audit(&state, &caller, "agent-state", target, &outcome).await;
    outcome
}

/// `ready`, `not-ready (lunch)`, `logged-out`: the requested state in an audit record.
pub fn describe_state(state: &RequestedState) -> String {
    match state {
        RequestedState::Ready => "ready".to_owned(),
        RequestedState::NotReady(reason) => format!("not-ready ({reason})"),
        RequestedState::LoggedOut => "logged-out".to_owned(),
    }
}

async fn set_state_as(
    state: &ApiState,
    role: &ApiRole,
    id: &str,
    body: &[u8],
) -> Result<Json<Value>, ApiError> {
    match role {
        ApiRole::Analyst => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "analysts cannot change agent state",
            ))
        }
        ApiRole::Agent(own) if own != id => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "agents may only change their own state",
            ))
        }
        _ => {}
    }
    let requested = parse_state_request(body)?;
    let (reply, outcome) = oneshot::channel();
    state
        .commands
        .send(AgentCommand {
            agent: id.to_owned(),
            state: requested,
            reply,
        })
        .await
        .map_err(|_| stopping())?;
    outcome.await.map_err(|_| stopping())??;
    agent_response(state, id)
}

pub(crate) fn stopping() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "server is stopping",
    )
}

/// `GET /api/calls`: the calls in progress, callers' numbers masked for the roles in
/// `[http] mask_caller_for` (analysts by default); an agent sees only their own calls.
async fn list_calls(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let outcome = calls_seen_by(&state, &caller.role).await;
    let target = match &outcome {
        Ok(calls) => format!("{} calls", calls.len()),
        Err(_) => "calls".to_owned(),
    };
    audit(&state, &caller, "calls-read", target, &outcome).await;
    Ok(Json(json!({ "calls": outcome? })))
}

/// `GET /api/callbacks` (supervisor, admin): callbacks waiting, being made and finished.
async fn list_callbacks(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    if !matches!(caller.role, ApiRole::Admin | ApiRole::Supervisor) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admins and supervisors list callbacks",
        ));
    }
    let (reply, answer) = oneshot::channel();
    state
        .calls
        .send(CallCommand::Callbacks { reply })
        .await
        .map_err(|_| stopping())?;
    let mut callbacks = answer.await.map_err(|_| stopping())?;
    if masks_caller(&state.node.config.current(), &caller.role) {
        for callback in &mut callbacks {
            callback.number = mask_number(&callback.number);
        }
    }
    Ok(Json(json!({ "callbacks": callbacks })))
}

/// The calls `role` may see, callers' numbers masked as `[http] mask_caller_for` says.
pub(crate) async fn calls_seen_by(
    state: &ApiState,
    role: &ApiRole,
) -> Result<Vec<CallView>, ApiError> {
    let visible: Vec<CallView> = live_calls(state)
        .await?
        .into_iter()
        .filter(|call| match role {
            ApiRole::Agent(own) => call.agent.as_deref() == Some(own.as_str()),
            _ => true,
        })
        .map(|mut call| {
            if masks_caller(&state.node.config.current(), role) {
                call.caller = mask_number(&call.caller);
                if call.direction == "outbound" {
                    // On a call out the customer is the number dialled.
                    call.did = mask_number(&call.did);
                }
                call.customer_name = call.customer_name.map(|_| "****".to_owned());
            }
            call
        })
        .collect();
    Ok(visible)
}

/// Whether `role` sees callers' numbers masked (`[http] mask_caller_for`).
pub(crate) fn masks_caller(config: &Config, role: &ApiRole) -> bool {
    config.http.mask_caller_for.contains(&role.kind())
}

/// The calls in progress, as call control sees them now.
pub(crate) async fn live_calls(state: &ApiState) -> Result<Vec<CallView>, ApiError> {
    let (reply, answer) = oneshot::channel();
    state
        .calls
        .send(CallCommand::List { reply })
        .await
        .map_err(|_| stopping())?;
    answer.await.map_err(|_| stopping())
}

async fn hold_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    act_on_call(state, caller, id, CallAction::Hold).await
}

async fn resume_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    act_on_call(state, caller, id, CallAction::Resume).await
}

/// `POST /api/calls/{id}/consult` with `{"to": "1002"}`: the caller hears music while the
/// agent talks to agent 1002 (attended transfer, conference).
async fn consult_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let parsed = parse_transfer_target(&body).map(|to| CallAction::Consult { to });
    act_on_call_parsed(state, caller, id, "call-consult", parsed).await
}

/// `POST /api/calls/{id}/complete`: the caller talks to the consulted agent; the agent leaves.
async fn complete_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    act_on_call(state, caller, id, CallAction::Complete).await
}

/// `POST /api/calls/{id}/cancel`: the consult ends; the caller is back with the agent.
async fn cancel_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    act_on_call(state, caller, id, CallAction::Cancel).await
}

/// `POST /api/calls/{id}/conference`: caller, agent and consulted agent hear each other.
async fn conference_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    act_on_call(state, caller, id, CallAction::Conference).await
}

/// `POST /api/calls/{id}/transfer` with `{"to": "1002" | "billing" | "100", "mode": "blind"}`.
async fn transfer_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let parsed = parse_transfer_request(&body).map(|(to, attended)| match attended {
        true => CallAction::AttendedTransfer { to },
        false => CallAction::Transfer { to },
    });
    act_on_call_parsed(state, caller, id, "call-transfer", parsed).await
}

/// `POST /api/calls/{id}/supervise` with `{"supervisor": "1003", "mode": "listen"}`: rings the
/// supervisor's phone into the call (supervisors and admins only).
async fn supervise_call(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize(&state, &headers, peer)?;
    let parsed = match caller.role {
        ApiRole::Supervisor | ApiRole::Admin => parse_supervise_request(&body),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only supervisors and admins supervise calls",
        )),
    };
    let parsed = parsed.map(|(supervisor, mode)| CallAction::Supervise { supervisor, mode });
    act_on_call_parsed(state, caller, id, "call-supervise", parsed).await
}

/// The supervisor and mode of a supervise body.
fn parse_supervise_request(
    body: &[u8],
) -> Result<(String, crate::switch::supervision::MonitorMode), ApiError> {
    use crate::switch::supervision::MonitorMode;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let supervisor = value
        .get("supervisor")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("\"supervisor\" must be the supervisor's agent id".into()))?
        .to_owned();
    let mode = match value
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or("listen")
    {
        "listen" => MonitorMode::Listen,
        "whisper" => MonitorMode::Whisper,
        "barge" => MonitorMode::Barge,
        other => {
            return Err(bad(format!(
                "unknown mode {other:?}: listen, whisper or barge"
            )))
        }
    };
    Ok((supervisor, mode))
}

/// The target of a consult body (`to`: an agent id, a queue or a number).
fn parse_transfer_target(body: &[u8]) -> Result<String, ApiError> {
    Ok(parse_body_target(body)?.0)
}

/// The target of a transfer body and whether it is attended.
fn parse_transfer_request(body: &[u8]) -> Result<(String, bool), ApiError> {
    let (to, value) = parse_body_target(body)?;
    let attended = match value.get("mode").and_then(Value::as_str).unwrap_or("blind") {
        "blind" => false,
        "attended" => true,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("unknown mode {other:?}: blind or attended"),
            ))
        }
    };
    Ok((to, attended))
}

/// A JSON body's `to`, and the body.
fn parse_body_target(body: &[u8]) -> Result<(String, Value), ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let to = value
        .get("to")
        .and_then(Value::as_str)
        .filter(|to| !to.is_empty() && !to.contains(['@', '<', '>', ' ', ';']))
        .ok_or_else(|| bad("\"to\" must be an agent id, a queue or a number".into()))?
        .to_owned();
    Ok((to, value))
}

/// A call id from a URL path.
pub(crate) fn parse_call_id(id: &str) -> Result<u64, ApiError> {
    id.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("call id {id:?} is not a number"),
        )
    })
}

/// Acts on a call with the action read from a request body, or audits why the body was refused.
async fn act_on_call_parsed(
    state: ApiState,
    caller: Caller,
    id: String,
    audit_name: &str,
    parsed: Result<CallAction, ApiError>,
) -> Result<Json<Value>, ApiError> {
    match parsed {
        Ok(action) => act_on_call(state, caller, id, action).await,
        Err(error) => {
            let outcome = Err(error);
            audit(&state, &caller, audit_name, id, &outcome).await;
            outcome
        }
    }
}

/// Acts on a call and audits the attempt.
async fn act_on_call(
    state: ApiState,
    caller: Caller,
    id: String,
    action: CallAction,
) -> Result<Json<Value>, ApiError> {
    let (name, target) = match &action {
        CallAction::Hold => ("call-hold", id.clone()),
        CallAction::Resume => ("call-resume", id.clone()),
        CallAction::Transfer { to } => ("call-transfer", format!("{id} to {to}")),
        CallAction::Consult { to } => ("call-consult", format!("{id} with {to}")),
        CallAction::AttendedTransfer { to } => {
            ("call-transfer", format!("{id} to {to} (attended)"))
        }
        CallAction::Complete => ("call-complete", id.clone()),
        CallAction::Cancel => ("call-cancel", id.clone()),
        CallAction::Conference => ("call-conference", id.clone()),
        CallAction::Supervise { supervisor, mode } => (
            "call-supervise",
            format!("{id} by {supervisor} ({})", mode.label()),
        ),
    };
    let outcome = act_on_call_as(&state, &caller.role, &id, action).await;
    audit(&state, &caller, name, target, &outcome).await;
    outcome
}

/// Checks who may act on which call, sends the action to the core and maps its outcome.
async fn act_on_call_as(
    state: &ApiState,
    role: &ApiRole,
    id: &str,
    action: CallAction,
) -> Result<Json<Value>, ApiError> {
    if *role == ApiRole::Analyst {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "analysts cannot act on calls",
        ));
    }
    let call = parse_call_id(id)?;
    if let ApiRole::Agent(own) = role {
        let theirs = live_calls(state)
            .await?
            .iter()
            .any(|c| c.id == call && c.agent.as_deref() == Some(own.as_str()));
        if !theirs {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "agents may only act on their own calls",
            ));
        }
    }
    let (reply, answer) = oneshot::channel();
    state
        .calls
        .send(CallCommand::Act {
            call,
            action,
            reply,
        })
        .await
        .map_err(|_| stopping())?;
    answer
        .await
        .map_err(|_| stopping())?
        .map_err(|error| match error {
            CallActionError::UnknownCall => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_call",
                format!("no call {call}"),
            ),
            CallActionError::Ended => ApiError::new(
                StatusCode::CONFLICT,
                "call_ended",
                format!("call {call} has ended"),
            ),
            CallActionError::CallOut => ApiError::new(
                StatusCode::CONFLICT,
                "call_out",
                format!("call {call} is a call out: hold, transfer, consult and supervision are for inbound calls"),
            ),
            CallActionError::NotConnected => ApiError::new(
                StatusCode::CONFLICT,
                "call_not_connected",
                format!("call {call} is not connected to an agent"),
            ),
            CallActionError::Supervise(refusal) => {
                use crate::switch::supervision::SuperviseRefusal;
                let (status, code) = match refusal {
                    SuperviseRefusal::NotASupervisor(_) => {
                        (StatusCode::UNPROCESSABLE_ENTITY, "not_a_supervisor")
                    }
                    SuperviseRefusal::OwnCall => (StatusCode::CONFLICT, "own_call"),
                    SuperviseRefusal::Unreachable(_) => {
                        (StatusCode::CONFLICT, "supervisor_unreachable")
                    }
                    SuperviseRefusal::NoRoom => (StatusCode::CONFLICT, "no_room"),
                };
                ApiError::new(status, code, refusal.to_string())
            }
            CallActionError::Consult(refusal) => {
                let (status, code) = refusal.api_status();
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT);
                ApiError::new(status, code, refusal.to_string())
            }
            CallActionError::Transfer(refusal) => {
                let (status, code) = match refusal.code {
                    404 => (StatusCode::NOT_FOUND, "unknown_target"),
                    480 => (StatusCode::CONFLICT, "target_unavailable"),
                    501 => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
                    _ => (StatusCode::CONFLICT, "invalid_target"),
                };
                ApiError::new(status, code, refusal.reason)
            }
        })?;
    Ok(Json(json!({ "call": call, "done": true })))
}

fn parse_state_request(body: &[u8]) -> Result<RequestedState, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let state = value
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing string field \"state\"".into()))?;
    let reason = value.get("reason").and_then(Value::as_str);
    match (state, reason) {
        ("ready", None) => Ok(RequestedState::Ready),
        ("not-ready", Some(reason)) => Ok(RequestedState::NotReady(reason.to_string())),
        ("not-ready", None) => Err(bad("\"not-ready\" needs a \"reason\"".into())),
        ("logged-out", None) => Ok(RequestedState::LoggedOut),
        ("ready" | "logged-out", Some(_)) => Err(bad(format!("\"{state}\" takes no \"reason\""))),
        (other, _) => Err(bad(format!(
            "unknown state \"{other}\": expected ready, not-ready or logged-out"
        ))),
    }
}

/// Emergency announcements are for admins and supervisors.
fn authorize_emergency(
    state: &ApiState,
    headers: &HeaderMap,
    from: SocketAddr,
) -> Result<Caller, ApiError> {
    let caller = authorize(state, headers, from)?;
    if may_manage_emergencies(&caller.role) {
        Ok(caller)
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only admins and supervisors manage emergency announcements",
        ))
    }
}

fn may_manage_emergencies(role: &ApiRole) -> bool {
    matches!(role, ApiRole::Admin | ApiRole::Supervisor)
}

fn emergency_json(did: &str, prompt: &str) -> Value {
    json!({ "did": did, "prompt": prompt })
}

/// `GET /api/emergency`: every announcement switched on.
async fn list_emergencies(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize_emergency(&state, &headers, peer)?;
    let list: Vec<Value> = state
        .node
        .emergency
        .list()
        .iter()
        .map(|(did, prompt)| emergency_json(did, prompt))
        .collect();
    Ok(Json(json!({ "emergency": list })))
}

/// `PUT /api/emergency/{did}` with `{"prompt": "emergency"}` (the body, or its `prompt`, may be
/// left out): new calls to the number hear the prompt first.
async fn set_emergency(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(did): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize_emergency(&state, &headers, peer)?;
    let outcome = set_emergency_as(&state, &did, &body);
    let target = match &outcome {
        Ok(Json(value)) => format!(
            "{did} {}",
            value.get("prompt").and_then(Value::as_str).unwrap_or("")
        ),
        Err(_) => did,
    };
    audit(&state, &caller, "emergency-set", target, &outcome).await;
    outcome
}

fn set_emergency_as(state: &ApiState, did: &str, body: &[u8]) -> Result<Json<Value>, ApiError> {
    check_configured_number(&state.node.config.current(), did)?;
    let prompt = parse_emergency_request(body)?;
    if !state
        .node
        .config
        .prompts()
        .contains(crate::prompt_library::DEFAULT_LANGUAGE, &prompt)
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unknown_prompt",
            format!("no prompt named {prompt:?} is loaded"),
        ));
    }
    state.node.emergency.set(did, &prompt);
    save_emergencies(state)?;
    tracing::warn!(%did, %prompt, "emergency announcement switched on");
    Ok(Json(emergency_json(did, &prompt)))
}

/// `DELETE /api/emergency/{did}`: switches the announcement off (idempotent).
async fn clear_emergency(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(did): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize_emergency(&state, &headers, peer)?;
    let outcome = clear_emergency_as(&state, &did);
    audit(&state, &caller, "emergency-clear", did, &outcome).await;
    outcome
}

fn clear_emergency_as(state: &ApiState, did: &str) -> Result<Json<Value>, ApiError> {
    check_configured_number(&state.node.config.current(), did)?;
    let was_on = state.node.emergency.clear(did);
    save_emergencies(state)?;
    if was_on {
        tracing::warn!(%did, "emergency announcement switched off");
    }
    Ok(Json(json!({ "did": did, "cleared": was_on })))
}

fn authorize_admin(
    state: &ApiState,
    headers: &HeaderMap,
    from: SocketAddr,
    what: &str,
) -> Result<Caller, ApiError> {
    let caller = authorize(state, headers, from)?;
    match caller.role {
        ApiRole::Admin => Ok(caller),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("only admins {what}"),
        )),
    }
}

/// `POST /api/reload` (admin): re-read the configuration file and apply the changes live.
/// 200 with the changes applied; 422 `invalid_config` (file:line:column: field: why) or
/// 409 `restart_required` (the keys) when nothing was applied. Audited by the reloader.
async fn reload(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    use crate::reload::{ReloadOutcome, ReloadRequest};
    let caller = authorize_admin(&state, &headers, peer, "reload the configuration")?;
    let (reply, outcome) = oneshot::channel();
    let request = ReloadRequest {
        who: caller.who(),
        from: Some(peer.ip().to_string()),
        reply,
    };
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the node is shutting down",
        )
    };
    state
        .node
        .reload
        .send(request)
        .await
        .map_err(|_| unavailable())?;
    match outcome.await.map_err(|_| unavailable())? {
        ReloadOutcome::Applied(changes) => {
            Ok(Json(json!({ "result": "applied", "changes": changes })))
        }
        ReloadOutcome::Refused(refusal) => {
            let status = match refusal {
                crate::reload::Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
                crate::reload::Refusal::Stopped => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::CONFLICT,
            };
            Err(ApiError::new(status, refusal.code(), refusal.to_string()))
        }
    }
}

/// `GET /api/bans`: the addresses banned for failed authentications, longest first.
async fn list_bans(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    authorize_admin(&state, &headers, peer, "see and lift bans")?;
    let bans = state.node.bans.lock().bans(Instant::now());
    let list: Vec<Value> = bans
        .iter()
        .map(|ban| {
            json!({
                "addr": ban.addr.to_string(),
                "remaining_s": ban.remaining.as_secs(),
                "duration_s": ban.duration.as_secs(),
                "level": ban.level,
            })
        })
        .collect();
    Ok(Json(json!({ "bans": list })))
}

/// `DELETE /api/bans/{addr}`: lifts a ban at once (and forgets its repeat level).
async fn lift_ban(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    Path(addr): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize_admin(&state, &headers, peer, "see and lift bans")?;
    let outcome = lift_ban_as(&state, &addr);
    audit(&state, &caller, "ban-lift", addr, &outcome).await;
    outcome
}

fn lift_ban_as(state: &ApiState, addr: &str) -> Result<Json<Value>, ApiError> {
    let ip: std::net::IpAddr = addr.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            format!("{addr:?} is not an IP address"),
        )
    })?;
    let lifted = state.node.bans.lock().unban(ip, Instant::now());
    if lifted {
        tracing::warn!("security event=unban src={ip} port=0 transport=HTTP reason=\"api\"");
    }
    Ok(Json(json!({ "addr": ip.to_string(), "lifted": lifted })))
}

/// `GET /api/audit?from=…&to=…` (admin): the audit records with `from <= at < to`, each bound
/// `YYYY-MM-DD` (UTC midnight) or RFC 3339, either may be left out.
async fn read_audit(
    State(state): State<ApiState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let caller = authorize_admin(&state, &headers, peer, "read the audit log")?;
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let Query(query) = query.map_err(|e| bad(format!("bad query string: {e}")))?;
    let (from, to) = parse_audit_range(&query)?;
    let dir = state.node.audit.dir().to_owned();
    let outcome =
        match tokio::task::spawn_blocking(move || crate::audit::read(&dir, from, to)).await {
            Ok(Ok(records)) => Ok(records),
            Ok(Err(error)) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "audit_unreadable",
                format!("the audit log could not be read: {error}"),
            )),
            Err(_) => Err(stopping()),
        };
    let target = match &outcome {
        Ok(records) => format!("{} records", records.len()),
        Err(_) => "records".to_owned(),
    };
    audit(&state, &caller, "audit-read", target, &outcome).await;
    Ok(Json(json!({ "records": outcome? })))
}

type TimeRange = (Option<time::OffsetDateTime>, Option<time::OffsetDateTime>);

/// `from` and `to` of `GET /api/audit`; any other parameter is a typo.
fn parse_audit_range(query: &HashMap<String, String>) -> Result<TimeRange, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    if let Some(unknown) = query
        .keys()
        .find(|key| !["from", "to"].contains(&key.as_str()))
    {
        return Err(bad(format!(
            "unknown parameter {unknown:?}: expected from and to"
        )));
    }
    let bound = |key: &str| -> Result<Option<time::OffsetDateTime>, ApiError> {
        query
            .get(key)
            .map(|text| {
                crate::report_cli::parse_time(text).map_err(|error| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_time",
                        format!("{key}: {error:#}"),
                    )
                })
            })
            .transpose()
    };
    let (from, to) = (bound("from")?, bound("to")?);
    if let (Some(from), Some(to)) = (from, to) {
        if from >= to {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_time",
                "from must be before to",
            ));
        }
    }
    Ok((from, to))
}

/// Keeps the board across restarts; a failure is reported (the change holds until the next
/// restart only), not hidden.
fn save_emergencies(state: &ApiState) -> Result<(), ApiError> {
    state.node.emergency.save().map_err(|error| {
        tracing::error!(%error, "emergency announcements not saved");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "not_saved",
            format!("applied, but not saved for restarts: {error}"),
        )
    })
}

/// Announcements are keyed by DID, so one for a number nobody can call is a typo.
fn check_configured_number(config: &Config, did: &str) -> Result<(), ApiError> {
    if config.numbers.iter().any(|number| number.did == did) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_number",
            format!("no [[number]] with did {did:?} is configured"),
        ))
    }
}

/// The prompt of a PUT body: `{}`, `{"prompt": "name"}` or an empty body.
fn parse_emergency_request(body: &[u8]) -> Result<String, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_EMERGENCY_PROMPT.to_owned());
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let Some(object) = value.as_object() else {
        return Err(bad("body must be a JSON object".into()));
    };
    if let Some(unknown) = object.keys().find(|key| key.as_str() != "prompt") {
        return Err(bad(format!(
            "unknown field \"{unknown}\": expected only \"prompt\""
        )));
    }
    let prompt = match object.get("prompt") {
        None | Some(Value::Null) => return Ok(DEFAULT_EMERGENCY_PROMPT.to_owned()),
        Some(Value::String(prompt)) => prompt,
        Some(_) => return Err(bad("\"prompt\" must be a string".into())),
    };
    // Prompt names become file names (`<prompts_dir>/<language>/<prompt>.wav`).
    let valid = !prompt.is_empty()
        && prompt
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(bad(format!(
            "invalid prompt name {prompt:?}: use letters, digits, '-' and '_' only"
        )));
    }
    Ok(prompt.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emergency_requests_parse_or_explain() {
        assert_eq!(
            parse_emergency_request(br#"{"prompt":"storm-outage"}"#).ok(),
            Some("storm-outage".to_owned())
        );
        for body in [&b""[..], b"  \n", b"{}", br#"{"prompt":null}"#] {
            assert_eq!(
                parse_emergency_request(body).ok().as_deref(),
                Some("emergency"),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        for (body, needle) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "must be a JSON object"),
            (br#"{"prompt":5}"#, "must be a string"),
            (br#"{"prompt":""}"#, "invalid prompt name"),
            (br#"{"prompt":"../../etc/passwd"}"#, "invalid prompt name"),
            (br#"{"promt":"x"}"#, "unknown field \"promt\""),
        ] {
            let error = parse_emergency_request(body).expect_err("must fail");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, "bad_request");
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }

    #[test]
    fn only_admins_and_supervisors_manage_emergencies() {
        assert!(may_manage_emergencies(&ApiRole::Admin));
        assert!(may_manage_emergencies(&ApiRole::Supervisor));
        assert!(!may_manage_emergencies(&ApiRole::Analyst));
        assert!(!may_manage_emergencies(&ApiRole::Agent("1001".into())));
    }

    #[test]
    fn emergency_announcements_need_a_configured_number() {
        let config = crate::config::demo();
        assert!(check_configured_number(&config, "100").is_ok());
        let error = check_configured_number(&config, "999").expect_err("not configured");
        assert_eq!(error.status, StatusCode::NOT_FOUND);
        assert_eq!(error.code, "unknown_number");
    }

    #[test]
    fn state_requests_parse_or_explain() {
        assert_eq!(
            parse_state_request(br#"{"state":"ready"}"#).ok(),
            Some(RequestedState::Ready)
        );
        assert_eq!(
            parse_state_request(br#"{"state":"not-ready","reason":"lunch"}"#).ok(),
            Some(RequestedState::NotReady("lunch".into()))
        );
        for (body, needle) in [
            (&b"nope"[..], "not JSON"),
            (br#"{"state":1}"#, "missing string field"),
            (br#"{"state":"not-ready"}"#, "needs a"),
            (br#"{"state":"ready","reason":"x"}"#, "takes no"),
            (br#"{"state":"asleep"}"#, "unknown state"),
        ] {
            let error = parse_state_request(body).expect_err("must fail");
            assert_eq!(error.code, "bad_request");
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }

    #[test]
    fn audit_ranges_parse_or_explain() {
        let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (from, to) = parse_audit_range(&query(&[
            ("from", "2026-12-06"),
            ("to", "2026-12-06T12:00:00+01:00"),
        ]))
        .expect("valid");
        assert_eq!(from, Some(time::macros::datetime!(2026-12-06 00:00 UTC)));
        assert_eq!(to, Some(time::macros::datetime!(2026-12-06 11:00 UTC)));
        assert_eq!(parse_audit_range(&query(&[])).ok(), Some((None, None)));
        for (pairs, code, needle) in [
            (&[("from", "yesterday")][..], "bad_time", "from: "),
            (&[("to", "2026-13-01")][..], "bad_time", "to: "),
            (
                &[("from", "2026-12-07"), ("to", "2026-12-06")][..],
                "bad_time",
                "before",
            ),
            (&[("since", "2026-12-06")][..], "bad_request", "\"since\""),
        ] {
            let error = parse_audit_range(&query(pairs)).expect_err("must fail");
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert_eq!(error.code, code);
            assert!(error.message.contains(needle), "{}", error.message);
        }
    }

    #[test]
    fn requested_states_read_plainly_in_the_audit_log() {
        assert_eq!(describe_state(&RequestedState::Ready), "ready");
        assert_eq!(
            describe_state(&RequestedState::NotReady("lunch".into())),
            "not-ready (lunch)"
        );
        assert_eq!(describe_state(&RequestedState::LoggedOut), "logged-out");
    }
}
