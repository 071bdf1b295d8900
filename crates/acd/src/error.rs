//! The one error type of the crate: every refusal names what was wrong.

use thiserror::Error;

use crate::ids::{AgentId, CallId, QueueId};
use crate::state::{AgentStateKind, CallStateKind};

/// Why the ACD refused a configuration or a request; the ACD's state is unchanged.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AcdError {
    /// Two queues share an id.
    #[error("queue {0} is configured twice")]
    DuplicateQueue(QueueId),
    /// A queue overflows to a queue that does not exist.
    #[error("queue {queue}: overflow target {target} is not a configured queue")]
    UnknownOverflowQueue {
        /// The queue whose overflow is wrong.
        queue: QueueId,
        /// The missing target.
        target: QueueId,
    },
    /// Following overflow targets from this queue comes back to it.
    #[error("queue {0}: its overflow chain loops back on itself")]
    OverflowCycle(QueueId),
    /// A queue setting is out of range.
    #[error("queue {queue}: {reason}")]
    InvalidQueue {
        /// The queue at fault.
        queue: QueueId,
        /// What is wrong with it.
        reason: String,
    },
    /// The not-ready reasons are malformed.
    #[error("not-ready reasons: {0}")]
    InvalidReasons(String),
    /// `offer_retry_after` is zero or longer than a year.
    #[error("offer_retry_after is {0:?}, expected more than zero and at most a year")]
    InvalidOfferRetry(std::time::Duration),
    /// An agent description is malformed.
    #[error("agent {agent}: {reason}")]
    InvalidAgent {
        /// The agent at fault.
        agent: AgentId,
        /// What is wrong with it.
        reason: String,
    },
    /// No agent has this id.
    #[error("unknown agent {0}")]
    UnknownAgent(AgentId),
    /// No queue has this id.
    #[error("unknown queue {0}")]
    UnknownQueue(QueueId),
    /// No live call has this id.
    #[error("unknown call {0}")]
    UnknownCall(CallId),
    /// A live call already has this id.
    #[error("{0} is already in the ACD")]
    DuplicateCall(CallId),
    /// The not-ready reason is not in the configuration.
    #[error("not-ready reason {0:?} is not configured")]
    UnknownReason(String),
    /// The agent's current state does not allow the requested change.
    #[error("agent {agent}: cannot go from {from} to {to}")]
    IllegalTransition {
        /// The agent concerned.
        agent: AgentId,
        /// Its state now.
        from: AgentStateKind,
        /// The state asked for.
        to: AgentStateKind,
    },
    /// The call is not in a state where the request makes sense.
    #[error("{call} is {state}, expected it {expected}")]
    IllegalCallState {
        /// The call concerned.
        call: CallId,
        /// Its state now.
        state: CallStateKind,
        /// What the request needed.
        expected: &'static str,
    },
    /// The agent has a call offered or connected; log out first, which waits for the call.
    #[error("agent {0} has a call offered or connected")]
    AgentBusy(AgentId),
}
