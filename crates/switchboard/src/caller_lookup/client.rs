//! The HTTP side of caller lookups, run at the edge by the runtime: answers from the cache at
//! once, otherwise one task per lookup. The request itself is made with ureq (already used by
//! the CLI) on tokio's blocking pool, so no request can stall the call-control task; the
//! strict `timeout_ms` is a tokio timer around it, and ureq's own timeout (a little longer)
//! frees the blocking thread soon after.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::cache::AnswerCache;
use super::{parse_answer, CallerInfo, LookupOutcome, LookupRequest, MAX_ANSWER_BYTES};
use crate::config::{LookupConfig, LookupMethod};
use crate::metrics::Metrics;

/// How much longer than `timeout_ms` ureq may hold its thread before it gives up itself.
const THREAD_GRACE: Duration = Duration::from_millis(200);

/// A lookup that has finished, on its way back to the runtime.
#[derive(Debug)]
pub struct Finished {
    /// What was asked.
    pub request: LookupRequest,
    /// How it ended.
    pub outcome: LookupOutcome,
}

/// Starts lookups and files their answers.
pub struct LookupClient {
    config: LookupConfig,
    agent: ureq::Agent,
    cache: AnswerCache,
    metrics: Arc<Metrics>,
}

impl LookupClient {
    /// A client for `config`.
    pub fn new(config: LookupConfig, metrics: Arc<Metrics>) -> Self {
        LookupClient {
            agent: ureq::AgentBuilder::new()
                .timeout(config.timeout + THREAD_GRACE)
                .build(),
            cache: AnswerCache::new(config.cache_for, config.cache_entries),
            config,
            metrics,
        }
    }

    /// Starts `request`: a fresh cached answer is returned at once; otherwise a task asks the
    /// CRM and sends the result to `done` (hand it to [`LookupClient::finished`]).
    pub fn start(
        &mut self,
        now: Instant,
        request: LookupRequest,
        done: &UnboundedSender<Finished>,
    ) -> Option<CallerInfo> {
        if let Some(info) = self.cache.get(now, &request.caller, &request.did) {
            self.metrics.lookups.with_label_values(&["cached"]).inc();
            return Some(info.clone());
        }
        let agent = self.agent.clone();
        let config = self.config.clone();
        let timeout = config.timeout;
        let done = done.clone();
        tokio::spawn(async move {
            let asked = request.clone();
            let fetch = tokio::task::spawn_blocking(move || fetch(&agent, &config, &asked));
            let outcome = match tokio::time::timeout(timeout, fetch).await {
                Err(_) => LookupOutcome::Timeout,
                Ok(Err(join)) => LookupOutcome::Error(format!("lookup task failed: {join}")),
                Ok(Ok(outcome)) => outcome,
            };
            // The runtime has stopped when the channel is closed: nobody needs the answer.
            let _ = done.send(Finished { request, outcome });
        });
        None
    }

    /// Counts a finished lookup and keeps a usable answer; returns that answer.
    pub fn finished(&mut self, now: Instant, finished: Finished) -> Option<(u64, CallerInfo)> {
        let Finished { request, outcome } = finished;
        self.metrics
            .lookups
            .with_label_values(&[outcome.label()])
            .inc();
        match outcome {
            LookupOutcome::Answered(info) => {
                self.cache
                    .put(now, &request.caller, &request.did, info.clone());
                Some((request.call, info))
            }
            LookupOutcome::Timeout => {
                tracing::info!(call = request.call, caller = %request.caller, "caller lookup timed out");
                None
            }
            LookupOutcome::Error(reason) | LookupOutcome::Invalid(reason) => {
                tracing::info!(call = request.call, caller = %request.caller, %reason, "caller lookup failed");
                None
            }
        }
    }
}

/// One HTTP exchange with the CRM (blocking: runs on the blocking pool).
fn fetch(agent: &ureq::Agent, config: &LookupConfig, request: &LookupRequest) -> LookupOutcome {
    let sent = match config.method {
        LookupMethod::Get => agent
            .get(&config.url)
            .query("caller", &request.caller)
            .query("did", &request.did)
            .set("Accept", "application/json")
            .call(),
        LookupMethod::Post => agent
            .post(&config.url)
            .set("Accept", "application/json")
            .send_json(serde_json::json!({ "caller": request.caller, "did": request.did })),
    };
    let response = match sent {
        Ok(response) => response,
        Err(ureq::Error::Status(code, _)) => {
            return LookupOutcome::Error(format!("the CRM answered HTTP {code}"))
        }
        Err(ureq::Error::Transport(transport)) => {
            let timed_out = std::error::Error::source(&transport)
                .and_then(|e| e.downcast_ref::<std::io::Error>())
                .is_some_and(|e| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                    )
                });
            return if timed_out {
                LookupOutcome::Timeout
            } else {
                LookupOutcome::Error(transport.to_string())
            };
        }
    };
    let mut body = Vec::new();
    // One byte past the limit tells an oversized answer from one exactly at it.
    let limit = u64::try_from(MAX_ANSWER_BYTES + 1).unwrap_or(u64::MAX);
    if let Err(error) = response.into_reader().take(limit).read_to_end(&mut body) {
        return if error.kind() == std::io::ErrorKind::TimedOut {
            LookupOutcome::Timeout
        } else {
            LookupOutcome::Error(format!("reading the answer: {error}"))
        };
    }
    match parse_answer(&body) {
        Ok(info) => LookupOutcome::Answered(info),
        Err(reason) => LookupOutcome::Invalid(reason),
    }
}
