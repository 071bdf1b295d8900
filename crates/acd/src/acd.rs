//! The ACD itself: its registries and indexes, construction, the lookups the event modules
//! share (`agent_events`, `call_events`, `timer_events`), and the read-only getters.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_skiplist::SkipMap;
use dashmap::DashMap;

use crate::action::Action;
use crate::agent::{AgentCell, AgentDetail};
use crate::call::{call_kind, CallCell, CallDetail, PreferredKey};
use crate::config::{AcdConfig, CONSULT_REASON, LOGIN_REASON, OUTBOUND_REASON, SUPERVISING_REASON};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueId};
use crate::matcher::{FollowUps, ReadyAgent};
use crate::queue::{QueueIdx, QueueRuntime, WaitEntry, WaitKey};
use crate::queue_table::{QueueDirectory, QueueTable};
use crate::skills::Eligibility;
use crate::snapshot::{AgentCounts, AgentSnapshot, CallSnapshot, QueueSnapshot};
use crate::state::{call_tag, AgentState, CallStateKind, Word, AGENT_REMOVED_TAG};
use crate::timebase::TimeBase;

/// A call asking to be queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    /// The call's id, unique among live calls.
    pub id: CallId,
    /// The queue to wait in.
    pub queue: QueueId,
    /// Higher is more urgent.
    pub priority: i32,
    /// An agent to wait for first (a returning caller's last agent), up to the queue's
    /// `preferred_agent_wait`. Ignored when no such agent exists.
    pub preferred_agent: Option<AgentId>,
    /// How long to wait for `preferred_agent` instead of the queue's `preferred_agent_wait`
    /// (a transfer to an agent waits for that agent, whatever the queue says).
    pub preferred_wait: Option<Duration>,
    /// The call has been waiting since then (a transferred call keeps its place): it is
    /// ordered among the waiting calls as if it had arrived then. Its max wait, skill
    /// expansion and service level count from its arrival in this queue. `None`: now.
    pub waiting_since: Option<Instant>,
}

/// The automatic call distributor. `Send + Sync`; every method takes `&self`, so any number
/// of threads may report events at once. See the crate documentation for how it works.
#[derive(Debug)]
pub struct Acd {
    pub(crate) queues: QueueTable,
    /// Finds queues by id and by skill; written only when a reload adds a queue.
    pub(crate) directory: RwLock<QueueDirectory>,
    pub(crate) reasons: HashSet<Arc<str>>,
    pub(crate) login_reason: Arc<str>,
    pub(crate) missed_reason: Option<Arc<str>>,
    pub(crate) offer_retry_after: Duration,
    pub(crate) agents: DashMap<AgentId, Arc<AgentCell>>,
    pub(crate) calls: DashMap<CallId, Arc<CallCell>>,
    /// Calls waiting for one particular agent, keyed by that agent's sequence number first.
    pub(crate) preferred: SkipMap<PreferredKey, WaitEntry>,
    pub(crate) sequence: AtomicU64,
    pub(crate) time: TimeBase,
}

impl Acd {
    /// Builds an ACD from a configuration, refusing an invalid one (duplicate queues, unknown
    /// or looping overflow targets, levels outside 1..=10, unknown missed-call reason...).
    pub fn new(config: AcdConfig) -> Result<Self, AcdError> {
        config.validate()?;
        let mut directory = QueueDirectory {
            index: config
                .queues
                .iter()
                .enumerate()
                .map(|(index, queue)| (queue.id.clone(), index))
                .collect(),
            ..QueueDirectory::default()
        };
        let queues: Vec<QueueRuntime> = config
            .queues
            .iter()
            .map(|queue| {
                let eligibility = Eligibility::compile(queue, &mut directory.skills);
                let overflow = queue
                    .overflow
                    .as_ref()
                    .and_then(|target| directory.index.get(target).copied());
                QueueRuntime::new(queue, eligibility, overflow)
            })
            .collect();
        for (index, queue) in queues.iter().enumerate() {
            directory.file(index, queue);
        }
        let mut reasons: HashSet<Arc<str>> = config
            .not_ready_reasons
            .iter()
            .map(|r| Arc::from(r.as_str()))
            .collect();
        let login_reason: Arc<str> = Arc::from(LOGIN_REASON);
        reasons.insert(Arc::clone(&login_reason));
        reasons.insert(Arc::from(OUTBOUND_REASON));
        reasons.insert(Arc::from(CONSULT_REASON));
        reasons.insert(Arc::from(SUPERVISING_REASON));
        let missed_reason = config
            .missed_call_reason
            .as_deref()
            .and_then(|missed| reasons.get(missed).cloned());
        Ok(Self {
            queues: QueueTable::new(queues),
            directory: RwLock::new(directory),
            reasons,
            login_reason,
            missed_reason,
            offer_retry_after: config.offer_retry_after,
            agents: DashMap::new(),
            calls: DashMap::new(),
            preferred: SkipMap::new(),
            sequence: AtomicU64::new(1),
            time: TimeBase::default(),
        })
    }

    /// The queue directory, for reading.
    pub(crate) fn directory(&self) -> std::sync::RwLockReadGuard<'_, QueueDirectory> {
        // Writers only insert into plain maps and vectors; a poisoned lock still holds them.
        self.directory
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A number never handed out before (agent sequence numbers, call epochs).
    pub(crate) fn next_seq(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn queue_idx(&self, id: &QueueId) -> Result<QueueIdx, AcdError> {
        self.directory()
            .index
            .get(id)
            .copied()
            .filter(|&index| !self.queues[index].settings.is_retired())
            .ok_or_else(|| AcdError::UnknownQueue(id.clone()))
    }

    pub(crate) fn reason(&self, reason: &str) -> Result<Arc<str>, AcdError> {
        self.reasons
            .get(reason)
            .cloned()
            .ok_or_else(|| AcdError::UnknownReason(reason.to_owned()))
    }

    pub(crate) fn agent_cell(&self, id: &AgentId) -> Result<Arc<AgentCell>, AcdError> {
        // Clone the Arc out so no registry shard lock is held while the agent is locked.
        self.agents
            .get(id)
            .map(|entry| Arc::clone(entry.value()))
            .ok_or_else(|| AcdError::UnknownAgent(id.clone()))
    }

    pub(crate) fn call_cell(&self, id: CallId) -> Result<Arc<CallCell>, AcdError> {
        self.calls
            .get(&id)
            .map(|entry| Arc::clone(entry.value()))
            .ok_or(AcdError::UnknownCall(id))
    }

    /// Whether the registry now holds a newer stay of this call than `cell`.
    pub(crate) fn call_moved_on(&self, cell: &Arc<CallCell>) -> bool {
        self.calls
            .get(&cell.id)
            .is_some_and(|entry| !Arc::ptr_eq(entry.value(), cell))
    }

    /// Runs `change` on one agent under its lock, then serves it if it became Ready.
    pub(crate) fn with_agent(
        &self,
        now: Instant,
        id: &AgentId,
        change: impl FnOnce(
            &Arc<AgentCell>,
            &mut AgentDetail,
            Word,
            &mut Vec<Action>,
        ) -> Result<Option<ReadyAgent>, AcdError>,
    ) -> Result<Vec<Action>, AcdError> {
        let agent = self.agent_cell(id)?;
        let mut actions = Vec::new();
        let ready = {
            let mut detail = agent.lock();
            let word = agent.word.load();
            if word.tag == AGENT_REMOVED_TAG {
                return Err(AcdError::UnknownAgent(id.clone()));
            }
            change(&agent, &mut detail, word, &mut actions)?
        };
        if let Some(ready) = ready {
            self.serve_ready_agent(now, ready, &mut actions);
        }
        Ok(actions)
    }

    /// Runs `change` on a call that has an agent (offered or connected), holding the agent's
    /// lock then the call's (the crate-wide lock order), then serves what it asks for.
    pub(crate) fn with_call_and_agent(
        &self,
        now: Instant,
        id: CallId,
        expected: &'static str,
        change: impl Fn(
            &Arc<AgentCell>,
            &mut AgentDetail,
            &Arc<CallCell>,
            &mut CallDetail,
            Word,
            &mut Vec<Action>,
        ) -> Result<FollowUps, AcdError>,
    ) -> Result<Vec<Action>, AcdError> {
        loop {
            let call = self.call_cell(id)?;
            let agent = {
                let detail = call.lock();
                let word = call.word.load();
                if word.tag == call_tag::GONE {
                    if self.call_moved_on(&call) {
                        continue;
                    }
                    return Err(AcdError::UnknownCall(id));
                }
                match &detail.agent {
                    Some(agent) => Arc::clone(agent),
                    None => {
                        return Err(AcdError::IllegalCallState {
                            call: id,
                            state: call_kind(word),
                            expected,
                        })
                    }
                }
            };
            let mut actions = Vec::new();
            let follow_ups = {
                let mut agent_detail = agent.lock();
                let mut call_detail = call.lock();
                let still_paired = call_detail
                    .agent
                    .as_ref()
                    .is_some_and(|a| Arc::ptr_eq(a, &agent));
                if !still_paired {
                    continue;
                }
                let word = call.word.load();
                change(
                    &agent,
                    &mut agent_detail,
                    &call,
                    &mut call_detail,
                    word,
                    &mut actions,
                )?
            };
            self.serve_all(now, follow_ups, &mut actions);
            return Ok(actions);
        }
    }

    /// An agent's current view.
    pub fn agent(&self, id: &AgentId) -> Option<AgentSnapshot> {
        let agent = self.agent_cell(id).ok()?;
        let detail = agent.lock();
        Some(AgentSnapshot {
            id: agent.id.clone(),
            name: detail.name.clone(),
            state: detail.state.clone(),
            since: detail.since,
            skills: detail.skills.clone(),
            queues: detail
                .served
                .iter()
                .map(|served| self.queues[served.queue].id.clone())
                .collect(),
            calls_answered: detail.calls_answered,
            pending: detail.pending.clone(),
        })
    }

    /// An agent's state, if the agent serves `queue` (at some expansion stage): what the
    /// per-call path asks (may this call wait for that agent?) without building a snapshot.
    pub fn agent_state_in_queue(&self, id: &AgentId, queue: &QueueId) -> Option<AgentState> {
        let index = self.queue_idx(queue).ok()?;
        let agent = self.agent_cell(id).ok()?;
        let detail = agent.lock();
        detail
            .served
            .iter()
            .any(|served| served.queue == index)
            .then(|| detail.state.clone())
    }

    /// Every agent's current view (in no particular order).
    pub fn agents(&self) -> Vec<AgentSnapshot> {
        let ids: Vec<AgentId> = self
            .agents
            .iter()
            .map(|entry| entry.key().clone())
            .collect();
        ids.iter().filter_map(|id| self.agent(id)).collect()
    }

    /// A queue's current view.
    pub fn queue(&self, id: &QueueId) -> Option<QueueSnapshot> {
        let index = self.queue_idx(id).ok()?;
        self.queue_snapshots(Some(index)).pop()
    }

    /// How many agents who may take a call of this queue the moment it arrives (those who
    /// qualify at the base stage, before any expansion step) are in each state. O(1): read
    /// from counters kept on every agent transition, without scanning or locking agents.
    /// `logged_in` is exact; see [`AgentCounts`] for the per-state fields. `None` for an
    /// unknown queue.
    ///
    /// Call control asks this for every arriving call to decide whether anyone could answer
    /// it. [`Acd::queue`] counts agents of every stage instead (those who qualify only after
    /// an expansion step too).
    pub fn queue_agent_counts(&self, id: &QueueId) -> Option<AgentCounts> {
        let index = self.queue_idx(id).ok()?;
        Some(self.queues[index].agents.counts_upto(0))
    }

    /// The Ready agent the queue would offer a call to right now: the head of its ready index
    /// at the base stage (agents who qualify before any expansion step), by the queue's
    /// strategy, exactly as an arriving call's search picks it. Read-only: the agent is not
    /// claimed, so the caller (a consult to the queue) must claim it through a state change
    /// of its own and treat a refusal as "taken meanwhile". `None` for an unknown queue or
    /// when no agent is Ready for it.
    pub fn best_ready_agent(&self, queue: &QueueId) -> Option<AgentId> {
        let index = self.queue_idx(queue).ok()?;
        self.queues[index]
            .best_ready_upto(0, &[])
            .map(|candidate| candidate.item.id.clone())
    }

    /// Every queue's current view, in configuration order.
    pub fn queues(&self) -> Vec<QueueSnapshot> {
        self.queue_snapshots(None)
    }

    fn queue_snapshots(&self, only: Option<QueueIdx>) -> Vec<QueueSnapshot> {
        self.queues
            .iter()
            .enumerate()
            .filter(|(index, _)| only.is_none_or(|q| q == *index))
            .filter(|(_, queue)| !queue.settings.is_retired())
            .map(|(index, queue)| {
                let in_stages = queue
                    .waiting
                    .iter()
                    .flat_map(|map| map.iter())
                    .filter(|entry| entry.value().is_live())
                    .map(|entry| entry.value().call.enqueued_at);
                let personal = self
                    .preferred
                    .iter()
                    .filter(|entry| entry.value().call.queue == index && entry.value().is_live())
                    .map(|entry| entry.value().call.enqueued_at);
                let oldest = in_stages.chain(personal).min();
                QueueSnapshot {
                    id: queue.id.clone(),
                    waiting: queue.waiting_count(),
                    oldest_waiting_since: oldest,
                    agents: queue.agents.counts_upto(usize::MAX),
                    handle_time: queue.handle_time(),
                }
            })
            .collect()
    }

    /// A call's current view, while it is in the ACD.
    pub fn call(&self, id: CallId) -> Option<CallSnapshot> {
        let cell = self.call_cell(id).ok()?;
        let detail = cell.lock();
        let state = call_kind(cell.word.load());
        if state == CallStateKind::Gone {
            return None;
        }
        Some(CallSnapshot {
            id,
            queue: self.queues[cell.queue].id.clone(),
            priority: cell.priority,
            state,
            agent: detail.agent.as_ref().map(|agent| agent.id.clone()),
            enqueued_at: cell.enqueued_at,
            stage: detail.stage,
            waiting_for: detail.preferred.as_ref().map(|agent| agent.id.clone()),
            excluded: cell
                .exclusions
                .agents()
                .iter()
                .map(|agent| agent.id.clone())
                .collect(),
        })
    }

    /// A waiting call's 1-based position in its queue (or among calls waiting for the same
    /// preferred agent) and its estimated wait: `position x average handle time / logged-in
    /// agents able to serve the queue` (at least one). The average handle time starts at the
    /// queue's `initial_handle_time` and follows each finished call's talk + wrap-up with
    /// weight 1/8. `None` when the call is not waiting.
    pub fn position(&self, call: CallId) -> Option<(usize, Duration)> {
        let cell = self.call_cell(call).ok()?;
        let detail = cell.lock();
        if cell.word.load().tag != call_tag::WAITING {
            return None;
        }
        let queue = &self.queues[cell.queue];
        let position = match &detail.preferred {
            Some(agent) => {
                let from = PreferredKey {
                    agent_seq: agent.seq,
                    wait: WaitKey {
                        urgency: i128::MIN,
                        epoch: 0,
                    },
                };
                let to = PreferredKey {
                    agent_seq: agent.seq,
                    wait: detail.key,
                };
                1 + self
                    .preferred
                    .range(from..to)
                    .filter(|entry| entry.value().is_live())
                    .count()
            }
            None => queue.rank(&detail.key),
        };
        Some((position, queue.estimated_wait(position)))
    }
}

#[cfg(test)]
#[path = "acd_tests.rs"]
mod tests;
