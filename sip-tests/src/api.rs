//! A small client of Switchboard's HTTP API (`/api/...`, `/metrics`, health endpoints): raw
//! status and body for tests of the error answers, typed shortcuts for the common reads, and
//! waits for an agent or queue to reach a state.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{HarnessError, HarnessResult};
use crate::metrics::Metrics;

/// The bearer token with the admin role that every test configuration carries.
pub const ADMIN_TOKEN: &str = "demo-token";

/// How long one HTTP request may take: generous, the machine is shared.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a wait re-reads the API: the API offers no change notification to block on, and
/// this only runs in tests.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// An HTTP answer: status and body, whatever the status.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body as text.
    pub body: String,
}

impl ApiResponse {
    /// The body parsed as JSON.
    pub fn json(&self) -> HarnessResult<Value> {
        serde_json::from_str(&self.body).map_err(|e| {
            HarnessError::Unexpected(format!(
                "HTTP {} body is not JSON ({e}):\n{}",
                self.status, self.body
            ))
        })
    }

    /// The `error.code` of a JSON error body.
    pub fn error_code(&self) -> HarnessResult<String> {
        let json = self.json()?;
        json.pointer("/error/code")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                HarnessError::Unexpected(format!(
                    "HTTP {} body has no error.code:\n{}",
                    self.status, self.body
                ))
            })
    }

    /// `Ok(self)` when the status is `expected`, else an error quoting the body.
    pub fn expect_status(self, expected: u16, what: &str) -> HarnessResult<Self> {
        if self.status == expected {
            Ok(self)
        } else {
            Err(HarnessError::Unexpected(format!(
                "{what}: expected HTTP {expected}, got {}:\n{}",
                self.status, self.body
            )))
        }
    }
}

/// A client of one instance's HTTP listener.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base", &self.base)
            .field("token", &self.token)
            .finish()
    }
}

impl Api {
    /// A client of `http://addr`, sending `Authorization: Bearer <token>` when a token is given.
    pub fn new(addr: SocketAddr, token: Option<&str>) -> Self {
        Api {
            base: format!("http://{addr}"),
            token: token.map(str::to_owned),
            agent: ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build(),
        }
    }

    /// The same client with another token (or none).
    pub fn with_token(&self, token: Option<&str>) -> Self {
        Api {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:8080`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET path`, any status.
    pub fn get(&self, path: &str) -> HarnessResult<ApiResponse> {
        self.send(self.agent.get(&self.url(path)), None)
    }

    /// `POST path` with a JSON `body` (sent as given, so malformed bodies can be tested).
    pub fn post(&self, path: &str, body: &str) -> HarnessResult<ApiResponse> {
        let request = self
            .agent
            .post(&self.url(path))
            .set("Content-Type", "application/json");
        self.send(request, Some(body))
    }

    /// `PUT path` with a JSON `body` (sent as given).
    pub fn put(&self, path: &str, body: &str) -> HarnessResult<ApiResponse> {
        let request = self
            .agent
            .put(&self.url(path))
            .set("Content-Type", "application/json");
        self.send(request, Some(body))
    }

    /// `DELETE path`, any status.
    pub fn delete(&self, path: &str) -> HarnessResult<ApiResponse> {
        self.send(self.agent.delete(&self.url(path)), None)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn send(&self, request: ureq::Request, body: Option<&str>) -> HarnessResult<ApiResponse> {
        let what = format!("{} {}", request.method(), request.url());
        let request = match &self.token {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        };
        let result = match body {
            Some(body) => request.send_string(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(transport)) => {
                return Err(HarnessError::Http(format!("{what}: {transport}")))
            }
        };
        let status = response.status();
        let body = response
            .into_string()
            .map_err(|e| HarnessError::io(format!("reading the body of {what}"), e))?;
        Ok(ApiResponse { status, body })
    }

    /// `GET /api/agents/{id}`, which must answer 200.
    pub fn agent(&self, id: &str) -> HarnessResult<Value> {
        self.get(&format!("/api/agents/{id}"))?
            .expect_status(200, &format!("reading agent {id}"))?
            .json()
    }

    /// `GET /api/agents`: the `agents` list, which must answer 200.
    pub fn agents(&self) -> HarnessResult<Vec<Value>> {
        let json = self
            .get("/api/agents")?
            .expect_status(200, "listing agents")?
            .json()?;
        list_field(json, "agents")
    }

    /// `GET /api/queues`: the `queues` list, which must answer 200.
    pub fn queues(&self) -> HarnessResult<Vec<Value>> {
        let json = self
            .get("/api/queues")?
            .expect_status(200, "listing queues")?
            .json()?;
        list_field(json, "queues")
    }

    /// The entry of queue `name` in `GET /api/queues`.
    pub fn queue(&self, name: &str) -> HarnessResult<Value> {
        self.queues()?
            .into_iter()
            .find(|q| q.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| HarnessError::Unexpected(format!("queue {name} not in /api/queues")))
    }

    /// `POST /api/agents/{id}/state` with `body`, any status.
    pub fn post_state(&self, id: &str, body: &str) -> HarnessResult<ApiResponse> {
        self.post(&format!("/api/agents/{id}/state"), body)
    }

    /// Sets agent `id` not ready with `reason`; must answer 200.
    pub fn set_not_ready(&self, id: &str, reason: &str) -> HarnessResult<Value> {
        let body = serde_json::json!({ "state": "not-ready", "reason": reason }).to_string();
        self.post_state(id, &body)?
            .expect_status(200, &format!("setting agent {id} not-ready ({reason})"))?
            .json()
    }

    /// Sets agent `id` ready; must answer 200.
    pub fn set_ready(&self, id: &str) -> HarnessResult<Value> {
        self.post_state(id, r#"{"state":"ready"}"#)?
            .expect_status(200, &format!("setting agent {id} ready"))?
            .json()
    }

    /// Logs agent `id` out; must answer 200.
    pub fn log_out(&self, id: &str) -> HarnessResult<Value> {
        self.post_state(id, r#"{"state":"logged-out"}"#)?
            .expect_status(200, &format!("logging agent {id} out"))?
            .json()
    }

    /// `GET /metrics`, parsed.
    pub fn metrics(&self) -> HarnessResult<Metrics> {
        let response = self
            .get("/metrics")?
            .expect_status(200, "scraping /metrics")?;
        Metrics::parse(&response.body)
    }

    /// Waits until counter `name` (with `labels`) reaches `at_least`; returns its value then.
    pub fn wait_for_counter(
        &self,
        name: &str,
        labels: &[(&str, &str)],
        at_least: f64,
        timeout: Duration,
    ) -> HarnessResult<f64> {
        self.wait_for(&format!("{name} >= {at_least}"), timeout, || {
            let value = self.metrics()?.counter(name, labels);
            Ok((value >= at_least).then_some(value))
        })
    }

    /// Waits until agent `id`'s JSON satisfies `done`; `what` names the condition in errors.
    pub fn wait_for_agent(
        &self,
        id: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> HarnessResult<Value> {
        self.wait_for(&format!("agent {id} {what}"), timeout, || {
            let agent = self.agent(id)?;
            Ok(done(&agent).then_some(agent))
        })
    }

    /// Waits until agent `id` is in `state` (e.g. `on-call`).
    pub fn wait_for_agent_state(
        &self,
        id: &str,
        state: &str,
        timeout: Duration,
    ) -> HarnessResult<Value> {
        self.wait_for_agent(id, &format!("in state {state}"), timeout, |agent| {
            agent_state(agent) == Some(state)
        })
    }

    /// Waits until queue `name`'s JSON satisfies `done`; `what` names the condition in errors.
    pub fn wait_for_queue(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> HarnessResult<Value> {
        self.wait_for(&format!("queue {name} {what}"), timeout, || {
            let queue = self.queue(name)?;
            Ok(done(&queue).then_some(queue))
        })
    }

    /// Waits until queue `name` has `count` calls waiting.
    pub fn wait_for_waiting(
        &self,
        name: &str,
        count: u64,
        timeout: Duration,
    ) -> HarnessResult<Value> {
        self.wait_for_queue(name, &format!("with {count} waiting"), timeout, |queue| {
            queue.get("waiting").and_then(Value::as_u64) == Some(count)
        })
    }

    /// Re-reads until `check` returns a value; the last value seen goes into the timeout error.
    pub fn wait_for<T: std::fmt::Debug>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn() -> HarnessResult<Option<T>>,
    ) -> HarnessResult<T> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check()? {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(HarnessError::Unexpected(format!(
                    "{what}: not reached within {} s",
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }
}

/// The `state` field of an agent's JSON.
pub fn agent_state(agent: &Value) -> Option<&str> {
    agent.get("state").and_then(Value::as_str)
}

/// The `reason` field of an agent's JSON (`None` for null or absent).
pub fn agent_reason(agent: &Value) -> Option<&str> {
    agent.get("reason").and_then(Value::as_str)
}

/// The array under `field` of a JSON object.
fn list_field(json: Value, field: &str) -> HarnessResult<Vec<Value>> {
    match json {
        Value::Object(mut map) => match map.remove(field) {
            Some(Value::Array(list)) => Ok(list),
            other => Err(HarnessError::Unexpected(format!(
                "`{field}` is not a list: {other:?}"
            ))),
        },
        other => Err(HarnessError::Unexpected(format!(
            "expected an object with `{field}`, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_code_is_read_from_the_json_error() {
        let response = ApiResponse {
            status: 404,
            body: r#"{"error":{"code":"unknown_agent","message":"unknown agent 9"}}"#.into(),
        };
        assert_eq!(response.error_code().expect("has a code"), "unknown_agent");
        let plain = ApiResponse {
            status: 500,
            body: "oops".into(),
        };
        assert!(plain.error_code().is_err());
        assert!(plain.expect_status(200, "x").is_err());
    }

    #[test]
    fn agent_fields_are_read() {
        let agent = json!({"state": "not-ready", "reason": "break"});
        assert_eq!(agent_state(&agent), Some("not-ready"));
        assert_eq!(agent_reason(&agent), Some("break"));
        assert_eq!(agent_reason(&json!({"reason": null})), None);
    }

    #[test]
    fn lists_are_taken_from_their_field() {
        let list = list_field(json!({"queues": [{"name": "a"}]}), "queues").expect("a list");
        assert_eq!(list.len(), 1);
        assert!(list_field(json!({"queues": 3}), "queues").is_err());
        assert!(list_field(json!([1]), "queues").is_err());
    }

    #[test]
    fn a_refused_connection_is_an_http_error() {
        // Bind and drop: nothing listens on the port afterwards.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("loopback bind works")
            .port();
        let api = Api::new(SocketAddr::from(([127, 0, 0, 1], port)), None);
        assert!(matches!(api.get("/healthz"), Err(HarnessError::Http(_))));
    }
}
