//! What the ACD asks its caller to do (offers, overflows, timers) and the events it reports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ids::{AgentId, CallId, QueueId};
use crate::state::AgentState;

/// Something the call-control layer must act on, returned by every state-changing method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ring `agent` with `call`. The only way a call ever reaches an agent; the agent stays
    /// Reserved until [`answered`](crate::Acd::answered), [`offer_failed`](crate::Acd::offer_failed)
    /// or [`abandon`](crate::Acd::abandon).
    Offer {
        /// The call to connect.
        call: CallId,
        /// The agent to ring.
        agent: AgentId,
        /// The queue the call was waiting in.
        queue: QueueId,
    },
    /// The call left `from` and now waits in `to` (for announcements; nothing to do otherwise).
    Overflow {
        /// The call moved.
        call: CallId,
        /// Queue it left.
        from: QueueId,
        /// Queue it waits in now.
        to: QueueId,
    },
    /// The call waited its queue's max wait and has nowhere to overflow: play the
    /// timeout treatment (voicemail, message) and release it. The ACD has forgotten it.
    Timeout {
        /// The call dropped from the queue.
        call: CallId,
        /// The queue it was in.
        queue: QueueId,
    },
    /// The call could not be queued; the ACD has forgotten it.
    Rejected {
        /// The refused call.
        call: CallId,
        /// The last queue tried.
        queue: QueueId,
        /// Why.
        reason: RejectReason,
    },
    /// Call [`Acd::handle_timer`](crate::Acd::handle_timer) with `timer` at `at`. Timers that
    /// no longer apply are ignored, so the caller never needs to cancel one.
    SetTimer {
        /// What to hand back.
        timer: Timer,
        /// When.
        at: Instant,
    },
    /// A fact for metrics and CDRs.
    Event(AcdEvent),
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The queue (and every overflow target after it) is at max length.
    QueueFull,
}

/// Why a call moved to its overflow queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowReason {
    /// The queue was at max length when the call arrived.
    QueueFull,
    /// The call waited the queue's max wait.
    MaxWait,
    /// The queue was removed by a configuration reload while the call waited.
    QueueRemoved,
}

/// Why an offered call did not connect, as reported by the call-control layer.
///
/// Whatever the reason, the call is not offered to the same agent again at once: after
/// `Incompatible` never during its stay in this queue, after the others not before
/// [`AcdConfig::offer_retry_after`](crate::AcdConfig::offer_retry_after) (an
/// [`Timer::OfferRetry`] lifts that exclusion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferFailure {
    /// Ring timeout: the agent goes NotReady with the configured missed-call reason (Ready
    /// when none is configured).
    NoAnswer,
    /// The agent's device was busy.
    Busy,
    /// The agent (or device) declined.
    Rejected,
    /// The agent's device could not be reached.
    Unreachable,
    /// The device cannot take this call's media (it answered 488, or its SDP answer did not
    /// fit the offer). The agent is not away: it goes back to Ready for other calls, never
    /// gets the missed-call reason, and is not offered this call again during its stay in
    /// this queue.
    Incompatible,
}

/// A deadline the caller keeps on its own timer and hands back to
/// [`Acd::handle_timer`](crate::Acd::handle_timer). The `epoch` makes stale timers harmless.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The agent's wrap-up ends.
    WrapUpEnd {
        /// The agent in wrap-up.
        agent: AgentId,
        /// Which wrap-up this is.
        epoch: u64,
    },
    /// The call reaches its queue's max wait.
    MaxWait {
        /// The waiting call.
        call: CallId,
        /// Which stay in which queue this is.
        epoch: u64,
    },
    /// The call reaches expansion step `step` (1-based: step 1 is the first configured step).
    Expansion {
        /// The waiting call.
        call: CallId,
        /// Which stay in which queue this is.
        epoch: u64,
        /// The step reached.
        step: usize,
    },
    /// The call stops waiting for its preferred agent only.
    PreferredAgentCap {
        /// The waiting call.
        call: CallId,
        /// Which stay in which queue this is.
        epoch: u64,
    },
    /// `offer_retry_after` has passed since `agent` failed to take `call`: the call may be
    /// offered to that agent again, and is offered at once if it still waits and the agent
    /// is the best Ready one.
    OfferRetry {
        /// The call whose offer failed.
        call: CallId,
        /// The agent who did not take it.
        agent: AgentId,
        /// Which exclusion this is (unique: a timer of an earlier failure, or of an earlier
        /// stay of the call, lifts nothing).
        epoch: u64,
    },
}

/// A fact for metrics, CDRs and the wallboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcdEvent {
    /// The call started waiting in a queue.
    Enqueued {
        /// The call.
        call: CallId,
        /// Its queue.
        queue: QueueId,
        /// Its priority (higher is more urgent).
        priority: i32,
    },
    /// The call was offered to an agent.
    Offered {
        /// The call.
        call: CallId,
        /// The agent rung.
        agent: AgentId,
        /// The call's queue.
        queue: QueueId,
        /// Time waited in this queue so far.
        wait: Duration,
        /// 1 for the first offer, 2 after one failed offer, and so on.
        attempt: u32,
    },
    /// The agent answered.
    Answered {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
        /// The call's queue.
        queue: QueueId,
        /// Time waited in this queue.
        wait: Duration,
        /// Whether `wait` is within the queue's service-level threshold.
        within_service_level: bool,
    },
    /// An offer failed and the call went back to the head of its priority band.
    Requeued {
        /// The call.
        call: CallId,
        /// The agent who did not take it.
        agent: AgentId,
        /// The call's queue.
        queue: QueueId,
        /// What happened.
        why: OfferFailure,
    },
    /// The caller hung up before talking to an agent.
    Abandoned {
        /// The call.
        call: CallId,
        /// Its queue.
        queue: QueueId,
        /// Time waited in this queue.
        wait: Duration,
        /// Whether it was ringing an agent when the caller left.
        while_offered: bool,
    },
    /// The call moved to its overflow queue.
    Overflowed {
        /// The call.
        call: CallId,
        /// Queue it left.
        from: QueueId,
        /// Queue it waits in now.
        to: QueueId,
        /// Time waited in `from`.
        wait: Duration,
        /// Full queue or max wait.
        reason: OverflowReason,
    },
    /// The call reached max wait with no overflow target.
    TimedOut {
        /// The call.
        call: CallId,
        /// Its queue.
        queue: QueueId,
        /// Time waited.
        wait: Duration,
    },
    /// The call was refused because every queue on its path was full.
    Rejected {
        /// The call.
        call: CallId,
        /// The last queue tried.
        queue: QueueId,
    },
    /// The conversation ended; the agent goes to wrap-up.
    CallEnded {
        /// The call.
        call: CallId,
        /// The agent.
        agent: AgentId,
        /// The call's queue.
        queue: QueueId,
        /// Talk time.
        talk: Duration,
    },
    /// A connected call passed from one agent to another (an attended transfer completed):
    /// `from` goes to wrap-up, `to` talks with the caller from now on.
    HandedOver {
        /// The call.
        call: CallId,
        /// The agent who had it.
        from: AgentId,
        /// The agent who has it now.
        to: AgentId,
        /// The call's queue.
        queue: QueueId,
    },
    /// An agent changed state.
    AgentStateChanged {
        /// The agent.
        agent: AgentId,
        /// State left.
        from: AgentState,
        /// State entered.
        to: AgentState,
        /// The not-ready reason when `to` is NotReady.
        reason: Option<Arc<str>>,
        /// Time spent in `from`.
        duration_in_previous: Duration,
    },
}
