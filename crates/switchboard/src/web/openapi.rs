//! `GET /api/openapi.json`: an OpenAPI 3 description of every HTTP route (written by hand,
//! checked against the router's paths by a unit test).

use axum::Json;
use serde_json::{json, Map, Value};

/// (method, path, summary, roles) of every route.
const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    ("get", "/healthz", "Liveness: `ok`", "none"),
    ("get", "/readyz", "Readiness: 503 while draining", "none"),
    ("get", "/metrics", "Prometheus exposition", "none"),
    (
        "get",
        "/api/agents",
        "Agents and their state (agents: themselves)",
        "any",
    ),
    (
        "get",
        "/api/agents/{id}",
        "One agent's state",
        "any (agents: themselves)",
    ),
    (
        "post",
        "/api/agents/{id}/state",
        "Change an agent's state: {\"state\": \"ready\"|\"not-ready\"|\"logged-out\", \"reason\"}",
        "agent (self), supervisor, admin",
    ),
    (
        "get",
        "/api/agents/{id}/today",
        "The agent's figures today: calls, AHT, not-ready time",
        "any (agents: themselves)",
    ),
    (
        "get",
        "/api/queues",
        "Queues: waiting calls, longest wait, agents by state",
        "any",
    ),
    (
        "get",
        "/api/calls",
        "Calls in progress (callers masked per mask_caller_for)",
        "any (agents: their calls)",
    ),
    (
        "post",
        "/api/campaigns",
        "Create a campaign: {name, queue, mode: preview|progressive, max_attempts, retry_s, caller_id, timezone (IANA zone of rows without one), contacts_csv (number, name, timezone, custom columns), dnc: [numbers]}; 201 with its report; bad CSV rows (an unknown time zone included): 400 bad_rows listing {row, reason}, nothing imported",
        "supervisor, admin",
    ),
    (
        "get",
        "/api/campaigns",
        "Every campaign in short: {campaigns: [{id, name, queue, mode, running, finished, contacts, tally, waiting_for_window}]}",
        "supervisor, admin",
    ),
    (
        "get",
        "/api/campaigns/{id}",
        "A campaign's report: running, tally per contact state, every contact with its time zone, attempts, last result (wrong-number included), the agent's wrap-up disposition, and what a due contact waits for (window: closed on the customer's clock, with window_opens; or agent)",
        "supervisor, admin",
    ),
    (
        "post",
        "/api/campaigns/{id}/start",
        "Start (or resume) dialling a campaign",
        "supervisor, admin",
    ),
    (
        "post",
        "/api/campaigns/{id}/pause",
        "Pause a campaign: contacts still waiting for an agent go back to the list",
        "supervisor, admin",
    ),
    (
        "get",
        "/api/callbacks",
        "Callbacks pending (waiting, preview, dialling, connected, retry-wait) and recently finished, with attempts[] and outcome",
        "supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/hold",
        "Put a connected call on hold",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/resume",
        "Take a call off hold",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/transfer",
        "Transfer: {\"to\": agent|queue|number, \"mode\": \"blind\"|\"attended\"} (attended: consult the agent, complete when they answer)",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/consult",
        "Caller on hold (music), ring an agent to talk to the call's agent: {\"to\": agent | \"queue:NAME\" | number} (a queue's best Ready agent; a number through its outbound route)",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/complete",
        "Attended transfer: the caller talks to the consulted agent, the first agent leaves",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/cancel",
        "End the consult: the caller is back with the first agent",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/conference",
        "Caller, agent and consulted agent all hear each other",
        "agent (own call), supervisor, admin",
    ),
    (
        "get",
        "/api/calls/{id}/history",
        "The caller's last 5 calls from the CDRs, with wrap-ups",
        "agent (own call), supervisor, admin",
    ),
    (
        "post",
        "/api/calls/{id}/wrap-up",
        "File the wrap-up of an ended call: {\"disposition\", \"notes\"}",
        "agent (own call)",
    ),
    (
        "get",
        "/api/emergency",
        "Emergency announcements switched on",
        "supervisor, admin",
    ),
    (
        "put",
        "/api/emergency/{did}",
        "Switch an announcement on: {\"prompt\"}",
        "supervisor, admin",
    ),
    (
        "delete",
        "/api/emergency/{did}",
        "Switch an announcement off",
        "supervisor, admin",
    ),
    ("get", "/api/bans", "Banned source addresses", "admin"),
    ("delete", "/api/bans/{addr}", "Lift a ban", "admin"),
    ("get", "/api/audit", "Audit records: ?from=&to=", "admin"),
    (
        "post",
        "/api/calls/{id}/supervise",
        "Ring a supervisor's phone into the call: {\"supervisor\", \"mode\": \"listen\"|\"whisper\"|\"barge\"}",
        "supervisor, admin",
    ),
    (
        "post",
        "/api/reload",
        "Re-read the configuration file and apply the difference live (or say why not)",
        "admin",
    ),
    (
        "post",
        "/api/login",
        "Web login: {\"login\", \"password\"}; sets the session cookie",
        "none",
    ),
    ("post", "/api/logout", "End the web session", "none"),
    (
        "get",
        "/api/session",
        "Who is logged in; not-ready reasons, dispositions",
        "any",
    ),
    (
        "get",
        "/api/events",
        "CTI events (WebSocket upgrade); see docs/api.md",
        "any (agents: their own)",
    ),
    ("get", "/api/openapi.json", "This document", "none"),
    (
        "get",
        "/",
        "Redirects to the page for the logged-in role",
        "none",
    ),
    ("get", "/login", "Login page (HTML)", "none"),
    ("get", "/agent", "Agent desktop (HTML)", "agent"),
    ("get", "/wallboard", "Wallboard (HTML)", "supervisor, admin"),
    (
        "get",
        "/assets/{file}",
        "Scripts and style of the pages",
        "none",
    ),
];

/// The document.
pub fn build() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, roles) in OPERATIONS {
        let parameters: Vec<Value> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let security = if *roles == "none" {
            json!([])
        } else {
            json!([{"bearer": []}, {"session": []}])
        };
        let operation = json!({
            "summary": summary,
            "description": format!("Roles: {roles}."),
            "parameters": parameters,
            "security": security,
            "responses": {
                "200": {"description": "OK"},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        });
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        if let Some(entry) = entry.as_object_mut() {
            entry.insert((*method).to_owned(), operation);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Switchboard API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Agents, queues, calls, CTI events and the web pages. Errors are {\"error\": {\"code\", \"message\"}} with a stable code. See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "[[http.token]] of the configuration"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::session::COOKIE, "description": "from POST /api/login"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}},
                },
            },
        },
    })
}

pub(crate) async fn document() -> Json<Value> {
    Json(build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(method, path)` of every `.route(...)` in a router's source.
    fn routes_in(source: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        for chunk in source.split(".route(").skip(1) {
            let Some(path) = chunk.split('"').nth(1) else {
                continue;
            };
            // The handler list runs to the end of the call: `get(..).delete(..)`.
            let call = chunk.split("\n        .").next().unwrap_or(chunk);
            let call = call.split("\n}").next().unwrap_or(call);
            for method in ["get", "post", "put", "delete"] {
                if call.contains(&format!("{method}(")) {
                    found.push((method.to_owned(), path.to_owned()));
                }
            }
        }
        found
    }

    #[test]
    fn every_route_of_the_router_is_documented() {
        let document = build();
        let mut routes = routes_in(include_str!("../http.rs"));
        routes.extend(routes_in(include_str!("mod.rs")));
        routes.extend(routes_in(include_str!("../campaign_api.rs")));
        assert!(routes.len() >= 30, "found only {routes:?}");
        for (method, path) in &routes {
            assert!(
                document["paths"][path][method].is_object(),
                "{method} {path} is missing from the OpenAPI document"
            );
        }
        let documented: usize = document["paths"]
            .as_object()
            .map(|paths| {
                paths
                    .values()
                    .filter_map(Value::as_object)
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(
            documented,
            routes.len(),
            "the document lists a route the router lacks"
        );
    }
}
