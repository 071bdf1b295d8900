//! The ACD: a lock-free, event-driven automatic call distributor.
//!
//! Pure and sans-IO: no sockets, no tasks, no threads, no clock reads. Every method takes
//! the current time as an `Instant` and returns the [`Action`]s the caller must carry out
//! (ring an agent, keep a timer, record an event). Deadlines (wrap-up end, expansion steps,
//! max wait, preferred-agent cap, offer retry) come back through [`Acd::handle_timer`]; ring timeouts come
//! back as [`Acd::offer_failed`] with [`OfferFailure::NoAnswer`]. [`Acd`] is `Send + Sync` and
//! every method takes `&self`, so any number of threads may report events at once.
//!
//! # Data structures
//!
//! - **Registry.** Agents and calls live in two `DashMap`s (id → `Arc` cell). The queues,
//!   the interned skill table and the "queues mentioning skill s" table are fixed at
//!   [`Acd::new`] and read without any lock.
//! - **Cells.** Each agent and each call (one cell per stay in one queue) has a 64-bit
//!   atomic *state word* (tag + version, the version growing on every change) and a small
//!   mutex of its own for the details that do not fit in a word (reason, current call,
//!   pending not-ready). There is no lock shared between agents or between calls.
//! - **Ready index.** Per queue and per expansion stage, a `crossbeam_skiplist::SkipMap` of
//!   Ready agents that qualify for the queue from that stage on, ordered by the queue's
//!   strategy (longest idle; most skilled; least recently offered by this queue for
//!   round-robin; fewest answered calls), ties broken by idle time and a sequence number.
//!   A Ready agent is in one map per queue it can serve.
//! - **Waiting index.** Per queue and per expansion stage reached, a `SkipMap` of waiting
//!   calls ordered by *urgency* = arrival time − priority × `priority_aging` (strict priority
//!   when aging is off). Urgency does not change with time, so the order is static, and it is
//!   an absolute time, so heads of different queues compare directly: a Ready agent takes the
//!   call with the smallest urgency among the heads of the stages it qualifies for, in every
//!   queue it serves. A separate `SkipMap` keyed by (agent, urgency) holds calls waiting for a
//!   preferred agent until their cap.
//! - **Agent tallies.** Per queue and per stage an agent qualifies from, atomic counters of
//!   agents by state plus logged-in agents, changed under the agent's lock on every
//!   transition: [`Acd::queue_agent_counts`] and the queue snapshots read them without
//!   scanning agents (see `agent_tally.rs`).
//! - **Stale entries.** Each index entry records the version of its owner's word when it was
//!   published. A reader treats an entry as live only if the word still shows that exact
//!   version and the right tag; the thread that moves the word on removes the entry.
//!
//! # The claim protocol
//!
//! A match of agent *A* (seen Ready at version *v*) with call *C* (seen Waiting at *w*):
//!
//! 1. CAS *A*'s word Ready(v) → Reserved(v+1). Failure: someone else has *A*; look again.
//! 2. CAS *C*'s word Waiting(w) → Offered(w+1). Failure: *C* is taken (or moved, or
//!    abandoned); give *A* back — re-publish it under a new version and search calls on its
//!    behalf — and stop.
//! 3. Lock *A* then *C* (the only lock order in the crate; no thread ever holds two agents'
//!    or two calls' locks), check *C* was not abandoned in between, record the offer, remove
//!    both index entries, and emit [`Action::Offer`].
//!
//! Because both words are claimed by CAS, exactly one matcher wins any agent and any call:
//! no agent is offered two calls and no call has two live offers. Every other change of an
//! agent's state happens under its own lock; leaving Ready is itself a CAS, so a not-ready or
//! logout that races with a claim loses and is remembered as pending, applied when the offer
//! (or the call and wrap-up) ends.
//!
//! **No lost wake-up.** Both sides *publish first, then search*: an arriving call is put in
//! its waiting map before it looks for a Ready agent; an agent becoming Ready is put in its
//! ready maps before it looks for a call. A sequentially consistent fence sits between the
//! publish and the search on both sides, so when a call and an agent that suit each other are
//! published concurrently, at least one of the two searches sees the other, and its claim
//! either succeeds or fails only because a third party made progress (in which case the
//! loser, if it is an agent, is re-published and searches again). Nothing polls.
//!
//! # Matching rules
//!
//! - A call is servable by an agent that holds every required skill at its minimum level, as
//!   lowered by the expansion steps the call has reached, or any skill a reached step adds.
//! - During the preferred-agent wait, only the preferred agent (whatever its skills) may take
//!   the call; when the cap passes, anyone qualified may.
//! - An offer that fails goes back to the head of its priority band (ahead of every waiting
//!   call of the same priority), is first offered to other Ready agents, and the agent that
//!   failed it then looks for work like any Ready agent (unless the failure was `NoAnswer` and
//!   a missed-call reason is configured, which makes it NotReady).
//! - That call and that agent are then not matched again by either search: for
//!   `offer_retry_after` (an [`Timer::OfferRetry`] lifts the exclusion and offers the call at
//!   once if it still waits), or for the rest of the stay after `Incompatible`. A search whose
//!   best candidate is excluded takes the next best. See `exclusion.rs`.
//! - Max wait overflows the call (new stay, new timers) or times it out; a call ringing at
//!   its max wait is left to ring and leaves the queue only if that offer fails.
//!
//! # Estimated wait
//!
//! [`Acd::position`] gives a waiting call's rank and `rank × average handle time / logged-in
//! agents able to serve the queue`, where the average handle time is an exponentially
//! weighted mean (weight 1/8) of talk + wrap-up, seeded by `initial_handle_time`.
#![warn(missing_docs)]

mod acd;
mod action;
mod agent;
mod agent_events;
mod agent_tally;
mod call;
mod call_events;
mod config;
mod error;
mod exclusion;
mod ids;
mod matcher;
mod queue;
mod queue_changes;
mod queue_settings;
mod queue_table;
mod skills;
mod snapshot;
mod state;
mod timebase;
mod timer_events;

pub use crate::acd::{Acd, CallRequest};
pub use crate::action::{AcdEvent, Action, OfferFailure, OverflowReason, RejectReason, Timer};
pub use crate::agent::PendingChange;
pub use crate::config::{
    AcdConfig, AgentConfig, ExpansionStep, QueueConfig, SkillRequirement, Strategy, CONSULT_REASON,
    DEFAULT_OFFER_RETRY_AFTER, LOGIN_REASON, MAX_DURATION, MAX_SKILL_LEVEL, MIN_SKILL_LEVEL,
    OUTBOUND_REASON, SUPERVISING_REASON,
};
pub use crate::error::AcdError;
pub use crate::ids::{AgentId, CallId, QueueId, Skill};
pub use crate::queue_table::QUEUES_ADDED_LIVE;
pub use crate::snapshot::{AgentCounts, AgentSnapshot, CallSnapshot, QueueSnapshot};
pub use crate::state::{AgentState, AgentStateKind, CallStateKind};
