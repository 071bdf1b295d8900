//! An agent's record and the transitions of its state.
//!
//! The atomic state word is the truth about whether the agent can be claimed: a matcher
//! claims with one compare-and-swap (Ready → Reserved) and nothing else. Everything richer
//! (reason, call, pending changes) lives in a per-agent mutex that only that agent's own
//! events take, so there is no lock shared between agents.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::acd::Acd;
use crate::action::{AcdEvent, Action};
use crate::call::CallCell;
use crate::config::Strategy;
use crate::ids::{AgentId, Skill};
use crate::matcher::ReadyAgent;
use crate::queue::{QueueIdx, ReadyEntry, ReadyKey};
use crate::skills::SkillProfile;
use crate::state::{agent_tag, AgentState, AgentStateKind, StateWord, Word};

/// A queue an agent can serve, from which expansion stage, and how well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServedQueue {
    pub(crate) queue: QueueIdx,
    pub(crate) stage: usize,
    pub(crate) proficiency: u32,
}

/// A state change asked for while the agent is busy, applied when the call or wrap-up ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingChange {
    /// Go NotReady with this reason.
    NotReady(Arc<str>),
    /// Log out.
    LogOut,
}

/// An agent in the registry.
#[derive(Debug)]
pub(crate) struct AgentCell {
    pub(crate) id: AgentId,
    /// Unique for the life of the ACD; tie-breaker in indexes and key of preferred calls.
    pub(crate) seq: u64,
    pub(crate) word: StateWord,
    detail: Mutex<AgentDetail>,
}

/// The parts of an agent that do not fit in the state word.
#[derive(Debug)]
pub(crate) struct AgentDetail {
    pub(crate) name: String,
    pub(crate) skills: Vec<(Skill, u8)>,
    pub(crate) served: Arc<[ServedQueue]>,
    pub(crate) state: AgentState,
    pub(crate) since: Instant,
    pub(crate) idle_since: Instant,
    pub(crate) pending: Option<PendingChange>,
    /// Where this agent's Ready entries are, so whoever ends the Ready episode removes them.
    pub(crate) ready_entries: Vec<(QueueIdx, usize, ReadyKey)>,
    pub(crate) calls_answered: u64,
    pub(crate) rr_stamps: Vec<(QueueIdx, u64)>,
    /// Identifies the current wrap-up, so an old WrapUpEnd timer is ignored.
    pub(crate) wrap_epoch: u64,
    /// The call offered or connected, while Reserved or OnCall.
    pub(crate) call: Option<Arc<CallCell>>,
}

impl AgentCell {
    /// A logged-out agent.
    pub(crate) fn new(
        id: AgentId,
        seq: u64,
        name: String,
        skills: Vec<(Skill, u8)>,
        served: Arc<[ServedQueue]>,
        now: Instant,
    ) -> Self {
        Self {
            id,
            seq,
            word: StateWord::new(Word::new(0, agent_tag(AgentStateKind::LoggedOut))),
            detail: Mutex::new(AgentDetail {
                name,
                skills,
                served,
                state: AgentState::LoggedOut,
                since: now,
                idle_since: now,
                pending: None,
                ready_entries: Vec::new(),
                calls_answered: 0,
                rr_stamps: Vec::new(),
                wrap_epoch: 0,
                call: None,
            }),
        }
    }

    /// Locks the detail. A panic elsewhere while it was held leaves it consistent enough to
    /// go on (every change is a few plain assignments), so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, AgentDetail> {
        self.detail.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AgentDetail {
    /// The state kind as recorded here. During a claim in flight the word already says
    /// Reserved while this still says Ready; callers that act on Ready must swap the word.
    pub(crate) fn kind(&self) -> AgentStateKind {
        self.state.kind()
    }

    fn rr_stamp(&self, queue: QueueIdx) -> u64 {
        self.rr_stamps
            .iter()
            .find(|(q, _)| *q == queue)
            .map_or(0, |&(_, stamp)| stamp)
    }

    /// Records that `queue` just offered this agent a call.
    pub(crate) fn set_rr_stamp(&mut self, queue: QueueIdx, stamp: u64) {
        match self.rr_stamps.iter_mut().find(|(q, _)| *q == queue) {
            Some(slot) => slot.1 = stamp,
            None => self.rr_stamps.push((queue, stamp)),
        }
    }
}

impl Acd {
    /// The queues an agent with these skills can serve, with the stage it qualifies from.
    pub(crate) fn served_queues(&self, skills: &[(Skill, u8)]) -> Arc<[ServedQueue]> {
        let directory = self.directory();
        let profile: SkillProfile = directory.skills.profile(skills);
        let mut candidates: Vec<QueueIdx> = directory.open.clone();
        for &(skill, _) in &profile.0 {
            if let Some(queues) = directory.by_skill.get(skill as usize) {
                candidates.extend_from_slice(queues);
            }
        }
        drop(directory);
        candidates.sort_unstable();
        candidates.dedup();
        candidates
            .into_iter()
            .filter_map(|queue| {
                let rule = &self.queues[queue].eligibility;
                rule.first_stage(&profile).map(|stage| ServedQueue {
                    queue,
                    stage,
                    proficiency: rule.proficiency(&profile),
                })
            })
            .collect()
    }

    /// Records a state change in the detail, counts it in the queues' tallies and reports it.
    /// The caller has already put the matching tag in the word (or, for Ready, does so right
    /// after via `index_ready`).
    pub(crate) fn record_agent_state(
        &self,
        agent: &AgentCell,
        detail: &mut AgentDetail,
        now: Instant,
        to: AgentState,
        actions: &mut Vec<Action>,
    ) {
        let reason = match &to {
            AgentState::NotReady { reason } => Some(Arc::clone(reason)),
            _ => None,
        };
        let from = std::mem::replace(&mut detail.state, to.clone());
        for served in detail.served.iter() {
            self.queues[served.queue]
                .agents
                .transition(served.stage, from.kind(), to.kind());
        }
        actions.push(Action::Event(AcdEvent::AgentStateChanged {
            agent: agent.id.clone(),
            from,
            to,
            reason,
            duration_in_previous: now.saturating_duration_since(detail.since),
        }));
        detail.since = now;
    }

    /// Moves a non-Ready agent (or one whose claim this thread holds) to `kind` by storing
    /// the word; safe without a swap because no matcher can touch a non-Ready word.
    pub(crate) fn store_agent_word(&self, agent: &AgentCell, kind: AgentStateKind) -> Word {
        let next = agent.word.load().next(agent_tag(kind));
        agent.word.store(next);
        next
    }

    fn ready_key(
        &self,
        queue: QueueIdx,
        detail: &AgentDetail,
        served: &ServedQueue,
        seq: u64,
    ) -> ReadyKey {
        let idle = self.time.micros(detail.idle_since);
        let (primary, secondary) = match self.queues[queue].settings.strategy() {
            Strategy::LongestIdle => (idle, 0),
            Strategy::MostSkilled => (-i64::from(served.proficiency), idle),
            Strategy::RoundRobin => (
                i64::try_from(detail.rr_stamp(queue)).unwrap_or(i64::MAX),
                idle,
            ),
            Strategy::FewestCalls => (
                i64::try_from(detail.calls_answered).unwrap_or(i64::MAX),
                idle,
            ),
        };
        ReadyKey {
            primary,
            secondary,
            agent_seq: seq,
        }
    }

    /// Publishes the agent in the Ready index of every queue it serves, for the Ready
    /// episode `version` (the word must already be Ready at that version).
    pub(crate) fn index_ready(
        &self,
        agent: &Arc<AgentCell>,
        detail: &mut AgentDetail,
        version: u64,
    ) -> ReadyAgent {
        self.unindex_agent(detail);
        let served = Arc::clone(&detail.served);
        for entry in served.iter() {
            let key = self.ready_key(entry.queue, detail, entry, agent.seq);
            self.queues[entry.queue].ready[entry.stage].insert(
                key,
                ReadyEntry {
                    agent: Arc::clone(agent),
                    version,
                },
            );
            detail.ready_entries.push((entry.queue, entry.stage, key));
        }
        ReadyAgent {
            agent: Arc::clone(agent),
            version,
            served,
        }
    }

    /// Removes the agent's Ready entries.
    pub(crate) fn unindex_agent(&self, detail: &mut AgentDetail) {
        for (queue, stage, key) in detail.ready_entries.drain(..) {
            self.queues[queue].ready[stage].remove(&key);
        }
    }

    /// Makes a non-Ready agent Ready: event, word, index. The caller then serves it (after
    /// unlocking) with the returned handle.
    pub(crate) fn become_ready(
        &self,
        agent: &Arc<AgentCell>,
        detail: &mut AgentDetail,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> ReadyAgent {
        detail.pending = None;
        detail.idle_since = now;
        self.record_agent_state(agent, detail, now, AgentState::Ready, actions);
        let word = self.store_agent_word(agent, AgentStateKind::Ready);
        self.index_ready(agent, detail, word.version)
    }

    /// Counts an agent in state `kind` in every queue of `served`.
    pub(crate) fn tally_join(&self, served: &[ServedQueue], kind: AgentStateKind) {
        for entry in served {
            self.queues[entry.queue].agents.join(entry.stage, kind);
        }
    }

    /// Counts an agent in state `kind` out of every queue of `served`.
    pub(crate) fn tally_leave(&self, served: &[ServedQueue], kind: AgentStateKind) {
        for entry in served {
            self.queues[entry.queue].agents.leave(entry.stage, kind);
        }
    }

    /// Ends an engagement (offer failed or abandoned, wrap-up over, claim undone): a pending
    /// not-ready or logout wins, otherwise the agent goes to `fallback` (Ready or NotReady).
    /// Returns the agent to serve when it became Ready.
    pub(crate) fn release_agent(
        &self,
        agent: &Arc<AgentCell>,
        detail: &mut AgentDetail,
        now: Instant,
        fallback: Option<Arc<str>>,
        actions: &mut Vec<Action>,
    ) -> Option<ReadyAgent> {
        detail.call = None;
        self.unindex_agent(detail);
        let target = match detail.pending.take() {
            Some(pending) => Some(pending),
            None => fallback.map(PendingChange::NotReady),
        };
        match target {
            Some(PendingChange::NotReady(reason)) => {
                self.store_agent_word(agent, AgentStateKind::NotReady);
                self.record_agent_state(
                    agent,
                    detail,
                    now,
                    AgentState::NotReady { reason },
                    actions,
                );
                None
            }
            Some(PendingChange::LogOut) => {
                self.store_agent_word(agent, AgentStateKind::LoggedOut);
                self.record_agent_state(agent, detail, now, AgentState::LoggedOut, actions);
                None
            }
            None => Some(self.become_ready(agent, detail, now, actions)),
        }
    }
}
