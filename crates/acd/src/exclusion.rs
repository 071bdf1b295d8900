//! Agents a call's stay must not be offered to for now, because their offer of it failed.
//!
//! Without this, an agent whose phone refuses a call goes back to Ready and its own search
//! finds the same requeued call at the head of the queue: the call bounces between the ACD
//! and one phone as fast as the phone can refuse (issue 10: 21,792 INVITEs in 25 s).
//!
//! The set lives in the call's cell, so a new stay (overflow) starts with none and a finished
//! stay drops its set with its cell. Both searches consult it: the call side takes a copy of
//! the excluded agents once per search, the agent side asks "does this call exclude me" per
//! candidate call and skips to the next one. Reads take no lock (a lazily built skip list);
//! a call that never had a failed offer costs one atomic load.
//!
//! No lost wake-up when a timer lifts an exclusion while the agent searches: the lifter
//! removes the entry, then serves the call (its search starts with a `SeqCst` fence); the
//! agent publishes itself Ready, then searches (after the same kind of fence). Of the two
//! fences, whichever comes second lets its thread see the other's write: either the agent
//! sees the exclusion gone, or the lifter sees the agent Ready.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use crossbeam_skiplist::SkipMap;

use crate::agent::AgentCell;

/// Until when an agent stays excluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lift {
    /// For the rest of the stay (the device cannot take this call's media).
    EndOfStay,
    /// Until the `OfferRetry` timer with this epoch is handled.
    Timer(u64),
}

#[derive(Debug)]
struct Excluded {
    agent: Arc<AgentCell>,
    lift: Lift,
}

/// The agents one stay of a call is not offered to, keyed by agent sequence number.
#[derive(Debug, Default)]
pub(crate) struct Exclusions {
    /// Entries in `agents`; zero means "nobody is excluded" without touching the list.
    count: AtomicUsize,
    /// Boxed: a skip list is several hundred bytes (a cache-padded head) and most calls
    /// never need one; inline, it made every call cell four times larger and matching
    /// measurably slower.
    agents: OnceLock<Box<SkipMap<u64, Excluded>>>,
}

impl Exclusions {
    /// Excludes `agent` until `lift`. Called under the call's lock while the call is offered
    /// to that very agent, so the pair cannot be excluded already.
    pub(crate) fn add(&self, agent: &Arc<AgentCell>, lift: Lift) {
        let agents = self.agents.get_or_init(|| Box::new(SkipMap::new()));
        let fresh = !agents.contains_key(&agent.seq);
        agents.insert(
            agent.seq,
            Excluded {
                agent: Arc::clone(agent),
                lift,
            },
        );
        if fresh {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Lifts the timed exclusion `epoch`; false when it is not (or no longer) here.
    pub(crate) fn lift(&self, epoch: u64) -> bool {
        if self.count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let Some(agents) = self.agents.get() else {
            return false;
        };
        let Some(entry) = agents
            .iter()
            .find(|entry| entry.value().lift == Lift::Timer(epoch))
        else {
            return false;
        };
        // Only the thread whose removal took effect counts it down.
        if entry.remove() {
            self.count.fetch_sub(1, Ordering::SeqCst);
            return true;
        }
        false
    }

    /// Whether the agent with sequence number `agent_seq` is excluded.
    pub(crate) fn excludes(&self, agent_seq: u64) -> bool {
        if self.count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.agents
            .get()
            .is_some_and(|agents| agents.contains_key(&agent_seq))
    }

    /// The excluded agents' sequence numbers, sorted (empty, without allocating, when none).
    pub(crate) fn agent_seqs(&self) -> Vec<u64> {
        if self.count.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.agents
            .get()
            .map(|agents| agents.iter().map(|entry| *entry.key()).collect())
            .unwrap_or_default()
    }

    /// The excluded agents, for snapshots.
    pub(crate) fn agents(&self) -> Vec<Arc<AgentCell>> {
        if self.count.load(Ordering::SeqCst) == 0 {
            return Vec::new();
        }
        self.agents
            .get()
            .map(|agents| {
                agents
                    .iter()
                    .map(|entry| Arc::clone(&entry.value().agent))
                    .collect()
            })
            .unwrap_or_default()
    }
}
