//! How many agents able to serve one queue are in each state, kept up to date on every
//! agent transition so that reading it is a handful of atomic loads: no scan of the agents,
//! no lock, no allocation (issue 12: call control asks for every arriving call).
//!
//! Agents are counted under the expansion stage from which they qualify for the queue (the
//! stage recorded in their `ServedQueue`), so a reader can ask for the base stage only (the
//! agents who may take a call the moment it arrives, which is what call control needs to
//! decide whether to queue a call at all) or for every stage (anyone who may take a call
//! eventually: snapshots and the estimated wait).
//!
//! Every change happens under the agent's own lock, alongside the change of its recorded
//! state, so the counters equal a recount of the agents whenever no change is in flight.
//! While agents move, each counter is right at the instant it is read, but a sum of several
//! may count a moving agent twice or not at all. That is why logged-in agents have their own
//! counter, which moves only on login, logout and membership changes: "is anyone logged in"
//! is one exact load even while agents go Ready → Reserved → OnCall → WrapUp → Ready.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::snapshot::AgentCounts;
use crate::state::AgentStateKind;

/// Number of agent state kinds (the discriminants of [`AgentStateKind`]).
const KINDS: usize = 6;

/// Counters of one stage: one per state kind, plus logged-in agents.
#[derive(Debug, Default)]
struct StageTally {
    by_kind: [AtomicUsize; KINDS],
    logged_in: AtomicUsize,
}

/// Per-stage counters of a queue's agents by state.
#[derive(Debug)]
pub(crate) struct AgentTally {
    stages: Vec<StageTally>,
}

fn slot(kind: AgentStateKind) -> usize {
    kind as usize
}

// Relaxed: each counter stands alone (no reader infers anything else from it), and every
// change already happens under the agent's lock, which orders the changes of one agent.
fn increment(counter: &AtomicUsize) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn decrement(counter: &AtomicUsize) {
    // Every decrement pairs with an earlier increment under the same agent lock, so this
    // never goes below zero. One `fetch_sub`, not a compare-and-swap loop: this runs on
    // every agent transition, for every queue the agent serves.
    let before = counter.fetch_sub(1, Ordering::Relaxed);
    debug_assert!(before > 0, "agent tally went below zero");
}

impl AgentTally {
    /// Zero agents, for a queue with `stages` stages.
    pub(crate) fn new(stages: usize) -> Self {
        Self {
            stages: (0..stages).map(|_| StageTally::default()).collect(),
        }
    }

    /// An agent in state `kind` starts serving the queue from `stage`.
    pub(crate) fn join(&self, stage: usize, kind: AgentStateKind) {
        if let Some(tally) = self.stages.get(stage) {
            increment(&tally.by_kind[slot(kind)]);
            if kind != AgentStateKind::LoggedOut {
                increment(&tally.logged_in);
            }
        }
    }

    /// An agent in state `kind` stops serving the queue from `stage`.
    pub(crate) fn leave(&self, stage: usize, kind: AgentStateKind) {
        if let Some(tally) = self.stages.get(stage) {
            if kind != AgentStateKind::LoggedOut {
                decrement(&tally.logged_in);
            }
            decrement(&tally.by_kind[slot(kind)]);
        }
    }

    /// An agent serving the queue from `stage` goes from `from` to `to`.
    pub(crate) fn transition(&self, stage: usize, from: AgentStateKind, to: AgentStateKind) {
        if from == to {
            return;
        }
        let Some(tally) = self.stages.get(stage) else {
            return;
        };
        increment(&tally.by_kind[slot(to)]);
        decrement(&tally.by_kind[slot(from)]);
        match (from, to) {
            (AgentStateKind::LoggedOut, _) => increment(&tally.logged_in),
            (_, AgentStateKind::LoggedOut) => decrement(&tally.logged_in),
            _ => {}
        }
    }

    /// Agents qualifying from stage `upto` or earlier, by state.
    pub(crate) fn counts_upto(&self, upto: usize) -> AgentCounts {
        let mut counts = AgentCounts::default();
        for tally in self.stages.iter().take(upto.saturating_add(1)) {
            let load = |kind| tally.by_kind[slot(kind)].load(Ordering::Relaxed);
            counts.logged_out += load(AgentStateKind::LoggedOut);
            counts.ready += load(AgentStateKind::Ready);
            counts.reserved += load(AgentStateKind::Reserved);
            counts.on_call += load(AgentStateKind::OnCall);
            counts.wrap_up += load(AgentStateKind::WrapUp);
            counts.not_ready += load(AgentStateKind::NotReady);
            counts.logged_in += tally.logged_in.load(Ordering::Relaxed);
        }
        counts
    }

    /// Logged-in agents qualifying from stage `upto` or earlier.
    pub(crate) fn logged_in_upto(&self, upto: usize) -> usize {
        self.stages
            .iter()
            .take(upto.saturating_add(1))
            .map(|tally| tally.logged_in.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AgentStateKind::*;

    #[test]
    fn counts_follow_joins_transitions_and_leaves_per_stage() {
        let tally = AgentTally::new(2);
        tally.join(0, LoggedOut);
        tally.join(1, LoggedOut);
        tally.transition(0, LoggedOut, Ready);
        tally.transition(1, LoggedOut, NotReady);
        tally.transition(0, Ready, Reserved);
        let base = tally.counts_upto(0);
        assert_eq!((base.reserved, base.logged_in, base.logged_out), (1, 1, 0));
        let all = tally.counts_upto(usize::MAX);
        assert_eq!((all.reserved, all.not_ready, all.logged_in), (1, 1, 2));
        assert_eq!(tally.logged_in_upto(1), 2);
        tally.transition(1, NotReady, LoggedOut);
        tally.leave(1, LoggedOut);
        tally.leave(0, Reserved);
        assert_eq!(tally.counts_upto(usize::MAX), AgentCounts::default());
    }
}
