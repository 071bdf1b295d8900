//! Read-only views of agents, queues and calls for the API, wallboards and tests.

use std::time::{Duration, Instant};

use crate::agent::PendingChange;
use crate::ids::{AgentId, CallId, QueueId, Skill};
use crate::state::{AgentState, CallStateKind};

/// An agent as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentSnapshot {
    /// The agent.
    pub id: AgentId,
    /// Display name.
    pub name: String,
    /// Current state.
    pub state: AgentState,
    /// When the current state began.
    pub since: Instant,
    /// Configured skills and levels.
    pub skills: Vec<(Skill, u8)>,
    /// Queues the agent can serve (at some expansion stage).
    pub queues: Vec<QueueId>,
    /// Calls answered since the agent was created.
    pub calls_answered: u64,
    /// A not-ready or logout waiting for the current call or wrap-up to end.
    pub pending: Option<PendingChange>,
}

/// How many agents able to serve a queue are in each state.
///
/// Read from counters kept up to date on every agent transition (no scan). Each field is
/// exact when read; while agents change state, the per-state fields read one after another
/// may not add up to `logged_in`, which is its own counter and therefore exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgentCounts {
    /// Logged in, in any state (one counter, not the sum of the fields below).
    pub logged_in: usize,
    /// Logged out.
    pub logged_out: usize,
    /// Ready.
    pub ready: usize,
    /// Ringing.
    pub reserved: usize,
    /// Talking.
    pub on_call: usize,
    /// In wrap-up.
    pub wrap_up: usize,
    /// Not ready.
    pub not_ready: usize,
}

/// A queue as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// The queue.
    pub id: QueueId,
    /// Calls waiting (not yet offered).
    pub waiting: usize,
    /// Arrival of the longest-waiting call; `now - this` is the longest wait.
    pub oldest_waiting_since: Option<Instant>,
    /// Agents able to serve the queue at some expansion stage, by state.
    pub agents: AgentCounts,
    /// Average handle time (talk + wrap-up) used for estimated waits.
    pub handle_time: Duration,
}

/// A call as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSnapshot {
    /// The call.
    pub id: CallId,
    /// The queue it is in.
    pub queue: QueueId,
    /// Its priority.
    pub priority: i32,
    /// Waiting, offered or connected.
    pub state: CallStateKind,
    /// The agent offered to or connected with.
    pub agent: Option<AgentId>,
    /// When it started waiting in this queue.
    pub enqueued_at: Instant,
    /// Expansion stage reached (0 = base requirement).
    pub stage: usize,
    /// The agent it is still reserved for, during the preferred-agent wait.
    pub waiting_for: Option<AgentId>,
    /// Agents whose offer of it failed and who are not offered it again for now (until
    /// `offer_retry_after` passes, or for the whole stay after an incompatible device).
    pub excluded: Vec<AgentId>,
}
