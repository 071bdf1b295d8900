//! The public face of the ACD: configuration, agent and call events, timers and getters.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_skiplist::SkipMap;
use dashmap::DashMap;

use crate::action::{AcdEvent, Action, OfferFailure, OverflowReason, RejectReason, Timer};
use crate::agent::{AgentCell, AgentDetail, PendingChange};
use crate::call::{call_kind, CallCell, CallDetail, NewStay, PreferredKey, ServeCall};
use crate::config::{AcdConfig, AgentConfig, LOGIN_REASON};
use crate::error::AcdError;
use crate::ids::{AgentId, CallId, QueueId};
use crate::matcher::{FollowUps, ReadyAgent};
use crate::queue::{QueueIdx, QueueRuntime, WaitEntry, WaitKey};
use crate::skills::{Eligibility, SkillTable};
use crate::snapshot::{AgentCounts, AgentSnapshot, CallSnapshot, QueueSnapshot};
use crate::state::{
    agent_tag, call_tag, AgentState, AgentStateKind, CallStateKind, Word, AGENT_REMOVED_TAG,
};
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
}

/// The automatic call distributor. `Send + Sync`; every method takes `&self`, so any number
/// of threads may report events at once. See the crate documentation for how it works.
#[derive(Debug)]
pub struct Acd {
    pub(crate) queues: Vec<QueueRuntime>,
    pub(crate) queue_index: HashMap<QueueId, QueueIdx>,
    pub(crate) skills: SkillTable,
    /// For each interned skill, the queues that mention it.
    pub(crate) queues_by_skill: Vec<Vec<QueueIdx>>,
    /// Queues without a required skill: every agent serves them.
    pub(crate) open_queues: Vec<QueueIdx>,
    reasons: HashSet<Arc<str>>,
    login_reason: Arc<str>,
    missed_reason: Option<Arc<str>>,
    pub(crate) agents: DashMap<AgentId, Arc<AgentCell>>,
    pub(crate) calls: DashMap<CallId, Arc<CallCell>>,
    /// Calls waiting for one particular agent, keyed by that agent's sequence number first.
    pub(crate) preferred: SkipMap<PreferredKey, WaitEntry>,
    sequence: AtomicU64,
    pub(crate) time: TimeBase,
}

impl Acd {
    /// Builds an ACD from a configuration, refusing an invalid one (duplicate queues, unknown
    /// or looping overflow targets, levels outside 1..=10, unknown missed-call reason...).
    pub fn new(config: AcdConfig) -> Result<Self, AcdError> {
        config.validate()?;
        let queue_index: HashMap<QueueId, QueueIdx> = config
            .queues
            .iter()
            .enumerate()
            .map(|(index, queue)| (queue.id.clone(), index))
            .collect();
        let mut skills = SkillTable::default();
        let queues: Vec<QueueRuntime> = config
            .queues
            .iter()
            .map(|queue| {
                let eligibility = Eligibility::compile(queue, &mut skills);
                let overflow = queue
                    .overflow
                    .as_ref()
                    .and_then(|target| queue_index.get(target).copied());
                QueueRuntime::new(queue, eligibility, overflow)
            })
            .collect();
        let mut queues_by_skill: Vec<Vec<QueueIdx>> = vec![Vec::new(); skills.len()];
        let mut open_queues = Vec::new();
        for (index, queue) in queues.iter().enumerate() {
            for skill in queue.eligibility.mentioned_skills() {
                if let Some(list) = queues_by_skill.get_mut(skill as usize) {
                    if list.last() != Some(&index) {
                        list.push(index);
                    }
                }
            }
            if queue.eligibility.is_open() {
                open_queues.push(index);
            }
        }
        let mut reasons: HashSet<Arc<str>> = config
            .not_ready_reasons
            .iter()
            .map(|r| Arc::from(r.as_str()))
            .collect();
        let login_reason: Arc<str> = Arc::from(LOGIN_REASON);
        reasons.insert(Arc::clone(&login_reason));
        let missed_reason = config
            .missed_call_reason
            .as_deref()
            .and_then(|missed| reasons.get(missed).cloned());
        Ok(Self {
            queues,
            queue_index,
            skills,
            queues_by_skill,
            open_queues,
            reasons,
            login_reason,
            missed_reason,
            agents: DashMap::new(),
            calls: DashMap::new(),
            preferred: SkipMap::new(),
            sequence: AtomicU64::new(1),
            time: TimeBase::default(),
        })
    }

    /// A number never handed out before (agent sequence numbers, call epochs).
    pub(crate) fn next_seq(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    fn queue_idx(&self, id: &QueueId) -> Result<QueueIdx, AcdError> {
        self.queue_index
            .get(id)
            .copied()
            .ok_or_else(|| AcdError::UnknownQueue(id.clone()))
    }

    fn reason(&self, reason: &str) -> Result<Arc<str>, AcdError> {
        self.reasons
            .get(reason)
            .cloned()
            .ok_or_else(|| AcdError::UnknownReason(reason.to_owned()))
    }

    fn agent_cell(&self, id: &AgentId) -> Result<Arc<AgentCell>, AcdError> {
        // Clone the Arc out so no registry shard lock is held while the agent is locked.
        self.agents
            .get(id)
            .map(|entry| Arc::clone(entry.value()))
            .ok_or_else(|| AcdError::UnknownAgent(id.clone()))
    }

    fn call_cell(&self, id: CallId) -> Result<Arc<CallCell>, AcdError> {
        self.calls
            .get(&id)
            .map(|entry| Arc::clone(entry.value()))
            .ok_or(AcdError::UnknownCall(id))
    }

    /// Whether the registry now holds a newer stay of this call than `cell`.
    fn call_moved_on(&self, cell: &Arc<CallCell>) -> bool {
        self.calls
            .get(&cell.id)
            .is_some_and(|entry| !Arc::ptr_eq(entry.value(), cell))
    }

    /// Runs `change` on one agent under its lock, then serves it if it became Ready.
    fn with_agent(
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
    fn with_call_and_agent(
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

    /// Adds an agent (logged out) or changes its name and skills on the fly. A Ready agent is
    /// re-indexed at once and may be offered a call its new skills allow.
    pub fn upsert_agent(&self, now: Instant, config: AgentConfig) -> Result<Vec<Action>, AcdError> {
        config.validate()?;
        let served = self.served_queues(&config.skills);
        if !self.agents.contains_key(&config.id) {
            let cell = Arc::new(AgentCell::new(
                config.id.clone(),
                self.next_seq(),
                config.name.clone(),
                config.skills.clone(),
                Arc::clone(&served),
                now,
            ));
            if let dashmap::Entry::Vacant(slot) = self.agents.entry(config.id.clone()) {
                slot.insert(cell);
                return Ok(Vec::new());
            }
            // Another thread added the same agent meanwhile: update that one instead.
        }
        self.with_agent(now, &config.id, |agent, detail, word, _actions| {
            detail.name = config.name.clone();
            detail.skills = config.skills.clone();
            let logged_in = detail.state != AgentState::LoggedOut;
            if logged_in {
                self.count_logged_in(detail, -1);
            }
            detail.served = Arc::clone(&served);
            if logged_in {
                self.count_logged_in(detail, 1);
            }
            let ready = Word::new(word.version, agent_tag(AgentStateKind::Ready));
            // A fresh version makes entries filed under the old skills stale at once. If a
            // claim is in flight the swap fails; the claimer re-indexes if it gives the agent back.
            if word == ready && agent.word.compare_swap(ready, ready.next(ready.tag)) {
                return Ok(Some(self.index_ready(agent, detail, ready.version + 1)));
            }
            Ok(None)
        })
    }

    /// Removes an agent that has no call offered or connected (log out first otherwise:
    /// a logout waits for the call to end).
    pub fn remove_agent(&self, now: Instant, id: &AgentId) -> Result<Vec<Action>, AcdError> {
        let actions = self.with_agent(now, id, |agent, detail, word, actions| {
            let removed = word.next(AGENT_REMOVED_TAG);
            match detail.kind() {
                AgentStateKind::Reserved | AgentStateKind::OnCall => {
                    return Err(AcdError::AgentBusy(id.clone()))
                }
                AgentStateKind::Ready => {
                    let claimable = word.tag == agent_tag(AgentStateKind::Ready);
                    if !claimable || !agent.word.compare_swap(word, removed) {
                        return Err(AcdError::AgentBusy(id.clone()));
                    }
                }
                _ => agent.word.store(removed),
            }
            self.unindex_agent(detail);
            detail.pending = None;
            if detail.state != AgentState::LoggedOut {
                self.count_logged_in(detail, -1);
                self.record_agent_state(agent, detail, now, AgentState::LoggedOut, actions);
            }
            Ok(None)
        })?;
        let mut actions = actions;
        if let Some((_, agent)) = self.agents.remove(id) {
            self.release_preferred_calls(now, &agent, &mut actions);
        }
        Ok(actions)
    }

    /// Logs an agent in, Ready at once or NotReady with the `login` reason.
    pub fn login(&self, now: Instant, id: &AgentId, ready: bool) -> Result<Vec<Action>, AcdError> {
        self.with_agent(now, id, |agent, detail, _word, actions| {
            if detail.state != AgentState::LoggedOut {
                return Err(AcdError::IllegalTransition {
                    agent: id.clone(),
                    from: detail.kind(),
                    to: if ready {
                        AgentStateKind::Ready
                    } else {
                        AgentStateKind::NotReady
                    },
                });
            }
            self.count_logged_in(detail, 1);
            if ready {
                return Ok(Some(self.become_ready(agent, detail, now, actions)));
            }
            self.store_agent_word(agent, AgentStateKind::NotReady);
            let reason = Arc::clone(&self.login_reason);
            self.record_agent_state(agent, detail, now, AgentState::NotReady { reason }, actions);
            Ok(None)
        })
    }

    /// Makes an agent Ready (from NotReady, or ending wrap-up early); may offer a call at
    /// once. On an agent already Ready, ringing or talking it only cancels a pending
    /// not-ready or logout.
    pub fn set_ready(&self, now: Instant, id: &AgentId) -> Result<Vec<Action>, AcdError> {
        self.with_agent(now, id, |agent, detail, _word, actions| {
            match detail.kind() {
                AgentStateKind::LoggedOut => Err(AcdError::IllegalTransition {
                    agent: id.clone(),
                    from: AgentStateKind::LoggedOut,
                    to: AgentStateKind::Ready,
                }),
                AgentStateKind::Ready | AgentStateKind::Reserved | AgentStateKind::OnCall => {
                    detail.pending = None;
                    Ok(None)
                }
                AgentStateKind::NotReady | AgentStateKind::WrapUp => {
                    Ok(Some(self.become_ready(agent, detail, now, actions)))
                }
            }
        })
    }

    /// Makes an agent NotReady with a configured reason. While the agent rings, talks or
    /// wraps up, the change is remembered and applied when that ends.
    pub fn set_not_ready(
        &self,
        now: Instant,
        id: &AgentId,
        reason: &str,
    ) -> Result<Vec<Action>, AcdError> {
        let reason = self.reason(reason)?;
        self.leave_availability(now, id, PendingChange::NotReady(reason))
    }

    /// Logs an agent out. While the agent rings, talks or wraps up, the logout is remembered
    /// and applied when that ends.
    pub fn logout(&self, now: Instant, id: &AgentId) -> Result<Vec<Action>, AcdError> {
        self.leave_availability(now, id, PendingChange::LogOut)
    }

    /// Shared body of `set_not_ready` and `logout`.
    fn leave_availability(
        &self,
        now: Instant,
        id: &AgentId,
        change: PendingChange,
    ) -> Result<Vec<Action>, AcdError> {
        let (kind, state) = match &change {
            PendingChange::NotReady(reason) => (
                AgentStateKind::NotReady,
                AgentState::NotReady {
                    reason: Arc::clone(reason),
                },
            ),
            PendingChange::LogOut => (AgentStateKind::LoggedOut, AgentState::LoggedOut),
        };
        self.with_agent(now, id, |agent, detail, word, actions| {
            let from = detail.kind();
            let apply_now = match from {
                AgentStateKind::LoggedOut => {
                    return Err(AcdError::IllegalTransition {
                        agent: id.clone(),
                        from,
                        to: kind,
                    })
                }
                // Only a matcher can change a Ready word while we hold the lock: if the swap
                // fails, the agent is being offered a call and the change must wait for it.
                AgentStateKind::Ready => {
                    word.tag == agent_tag(AgentStateKind::Ready)
                        && agent.word.compare_swap(word, word.next(agent_tag(kind)))
                }
                AgentStateKind::NotReady => {
                    self.store_agent_word(agent, kind);
                    true
                }
                AgentStateKind::Reserved | AgentStateKind::OnCall | AgentStateKind::WrapUp => false,
            };
            if !apply_now {
                detail.pending = Some(change.clone());
                return Ok(None);
            }
            self.unindex_agent(detail);
            detail.pending = None;
            if kind == AgentStateKind::LoggedOut {
                self.count_logged_in(detail, -1);
            }
            self.record_agent_state(agent, detail, now, state.clone(), actions);
            Ok(None)
        })
    }

    /// Queues a call. Returns an Offer at once when a Ready agent can take it; otherwise
    /// `Enqueued` with the timers to keep (max wait, expansion steps, preferred-agent cap).
    /// A full queue overflows along its chain, or the call is rejected.
    pub fn enqueue(&self, now: Instant, request: CallRequest) -> Result<Vec<Action>, AcdError> {
        let first = self.queue_idx(&request.queue)?;
        if self.calls.contains_key(&request.id) {
            return Err(AcdError::DuplicateCall(request.id));
        }
        let preferred = match &request.preferred_agent {
            Some(id) => self.agents.get(id).map(|entry| Arc::clone(entry.value())),
            None => None,
        };
        let mut actions = Vec::new();
        let queue = if self.queues[first].try_admit() {
            first
        } else {
            match self.admit_along_overflow(first) {
                Ok(target) => {
                    self.report_overflow(
                        request.id,
                        first,
                        target,
                        Duration::ZERO,
                        OverflowReason::QueueFull,
                        &mut actions,
                    );
                    target
                }
                Err(last) => {
                    let queue = self.queues[last].id.clone();
                    actions.push(Action::Event(AcdEvent::Rejected {
                        call: request.id,
                        queue: queue.clone(),
                    }));
                    actions.push(Action::Rejected {
                        call: request.id,
                        queue,
                        reason: RejectReason::QueueFull,
                    });
                    return Ok(actions);
                }
            }
        };
        let stay = NewStay {
            id: request.id,
            queue,
            priority: request.priority,
            preferred,
            attempts: 0,
            fresh: true,
        };
        let Some(serve) = self.start_stay(stay, now, &mut actions) else {
            self.queues[queue].release_slot();
            return Err(AcdError::DuplicateCall(request.id));
        };
        self.serve_waiting_call(now, serve, &mut actions);
        Ok(actions)
    }

    /// The offered agent answered: the agent goes OnCall.
    pub fn answered(&self, now: Instant, call: CallId) -> Result<Vec<Action>, AcdError> {
        self.with_call_and_agent(
            now,
            call,
            "offered",
            |agent, agent_detail, cell, call_detail, word, actions| {
                if word.tag != call_tag::OFFERED {
                    return Err(AcdError::IllegalCallState {
                        call,
                        state: call_kind(word),
                        expected: "offered",
                    });
                }
                cell.word.store(word.next(call_tag::CONNECTED));
                call_detail.answered_at = Some(now);
                self.store_agent_word(agent, AgentStateKind::OnCall);
                agent_detail.calls_answered += 1;
                self.record_agent_state(
                    agent,
                    agent_detail,
                    now,
                    AgentState::OnCall { call },
                    actions,
                );
                let queue = &self.queues[cell.queue];
                let wait = now.saturating_duration_since(cell.enqueued_at);
                actions.push(Action::Event(AcdEvent::Answered {
                    call,
                    agent: agent.id.clone(),
                    queue: queue.id.clone(),
                    wait,
                    within_service_level: wait <= queue.service_level,
                }));
                Ok(FollowUps::default())
            },
        )
    }

    /// The offer did not connect. The agent goes NotReady with the missed-call reason on
    /// `NoAnswer` (when configured), else Ready; a pending not-ready or logout wins over
    /// both. The call goes back to the head of its priority band (or leaves the queue if its
    /// max wait passed while it rang) and may be offered to another agent at once.
    pub fn offer_failed(
        &self,
        now: Instant,
        call: CallId,
        why: OfferFailure,
    ) -> Result<Vec<Action>, AcdError> {
        self.with_call_and_agent(
            now,
            call,
            "offered",
            |agent, agent_detail, cell, call_detail, word, actions| {
                if word.tag != call_tag::OFFERED {
                    return Err(AcdError::IllegalCallState {
                        call,
                        state: call_kind(word),
                        expected: "offered",
                    });
                }
                let queue = &self.queues[cell.queue];
                actions.push(Action::Event(AcdEvent::Requeued {
                    call,
                    agent: agent.id.clone(),
                    queue: queue.id.clone(),
                    why,
                }));
                call_detail.agent = None;
                let fallback = match why {
                    OfferFailure::NoAnswer => self.missed_reason.clone(),
                    OfferFailure::Busy | OfferFailure::Rejected | OfferFailure::Unreachable => None,
                };
                let mut follow_ups = FollowUps::default();
                follow_ups.agent(self.release_agent(agent, agent_detail, now, fallback, actions));
                let serve = if call_detail.max_wait_reached {
                    cell.word.store(word.next(call_tag::GONE));
                    self.expire_stay(cell, call_detail, now, actions)
                } else {
                    Some(self.requeue_at_head(now, cell, call_detail, word))
                };
                // The call looks for another agent first; the released agent then searches for
                // itself and takes the most urgent call it can serve (possibly this one again).
                follow_ups.call(serve.map(|serve| ServeCall {
                    exclude: Some(Arc::clone(agent)),
                    ..serve
                }));
                Ok(follow_ups)
            },
        )
    }

    /// Puts an offered call back, ahead of every waiting call of the same priority.
    fn requeue_at_head(
        &self,
        now: Instant,
        call: &Arc<CallCell>,
        detail: &mut CallDetail,
        word: Word,
    ) -> ServeCall {
        let queue = &self.queues[call.queue];
        if let Some(head) = queue.head_of_band(call.priority) {
            detail.key.urgency = detail.key.urgency.min(head - 1);
        }
        detail.preferred = None;
        detail.stage = detail
            .stage
            .max(queue.stage_after(now.saturating_duration_since(call.enqueued_at)));
        queue.readmit();
        let waiting = word.next(call_tag::WAITING);
        call.word.store(waiting);
        self.index_call(call, detail, waiting.version)
    }

    /// The caller hung up before talking to an agent, while waiting or while ringing (the
    /// agent is then released as after a failed offer, but without the missed-call reason).
    pub fn abandon(&self, now: Instant, call: CallId) -> Result<Vec<Action>, AcdError> {
        loop {
            let cell = self.call_cell(call)?;
            let detail = cell.lock();
            let word = cell.word.load();
            let queue = &self.queues[cell.queue];
            let wait = now.saturating_duration_since(cell.enqueued_at);
            let abandoned = |while_offered| {
                vec![Action::Event(AcdEvent::Abandoned {
                    call,
                    queue: queue.id.clone(),
                    wait,
                    while_offered,
                })]
            };
            match word.tag {
                call_tag::GONE => {
                    drop(detail);
                    if self.call_moved_on(&cell) {
                        continue;
                    }
                    return Err(AcdError::UnknownCall(call));
                }
                call_tag::CONNECTED => {
                    return Err(AcdError::IllegalCallState {
                        call,
                        state: CallStateKind::Connected,
                        expected: "waiting or offered",
                    })
                }
                call_tag::WAITING => {
                    if !cell.word.compare_swap(word, word.next(call_tag::GONE)) {
                        // A matcher took it this instant; look again.
                        drop(detail);
                        continue;
                    }
                }
                // Offered with no agent recorded: a claim is in flight. Its owner checks the
                // word under this lock and gives the agent back when it sees Gone.
                _ if detail.agent.is_none() => cell.word.store(word.next(call_tag::GONE)),
                _ => break,
            }
            self.unindex_call(&cell, &detail);
            queue.release_slot();
            self.forget_call(&cell);
            return Ok(abandoned(false));
        }
        self.with_call_and_agent(
            now,
            call,
            "waiting or offered",
            |agent, agent_detail, cell, call_detail, word, actions| {
                if word.tag != call_tag::OFFERED {
                    return Err(AcdError::IllegalCallState {
                        call,
                        state: call_kind(word),
                        expected: "waiting or offered",
                    });
                }
                cell.word.store(word.next(call_tag::GONE));
                call_detail.agent = None;
                self.forget_call(cell);
                actions.push(Action::Event(AcdEvent::Abandoned {
                    call,
                    queue: self.queues[cell.queue].id.clone(),
                    wait: now.saturating_duration_since(cell.enqueued_at),
                    while_offered: true,
                }));
                let mut follow_ups = FollowUps::default();
                follow_ups.agent(self.release_agent(agent, agent_detail, now, None, actions));
                Ok(follow_ups)
            },
        )
    }

    /// The conversation ended: the call leaves the ACD and the agent goes to wrap-up (with a
    /// WrapUpEnd timer), or straight on when the queue has no wrap-up time.
    pub fn hangup(&self, now: Instant, call: CallId) -> Result<Vec<Action>, AcdError> {
        self.with_call_and_agent(
            now,
            call,
            "connected",
            |agent, agent_detail, cell, call_detail, word, actions| {
                if word.tag != call_tag::CONNECTED {
                    return Err(AcdError::IllegalCallState {
                        call,
                        state: call_kind(word),
                        expected: "connected",
                    });
                }
                cell.word.store(word.next(call_tag::GONE));
                call_detail.agent = None;
                self.forget_call(cell);
                let queue = &self.queues[cell.queue];
                let talk = now.saturating_duration_since(call_detail.answered_at.unwrap_or(now));
                queue.record_handle_time(talk + queue.wrap_up);
                actions.push(Action::Event(AcdEvent::CallEnded {
                    call,
                    agent: agent.id.clone(),
                    queue: queue.id.clone(),
                    talk,
                }));
                let mut follow_ups = FollowUps::default();
                if queue.wrap_up.is_zero() {
                    follow_ups.agent(self.release_agent(agent, agent_detail, now, None, actions));
                    return Ok(follow_ups);
                }
                agent_detail.call = None;
                let wrap = self.store_agent_word(agent, AgentStateKind::WrapUp);
                agent_detail.wrap_epoch = wrap.version;
                let until = now + queue.wrap_up;
                self.record_agent_state(
                    agent,
                    agent_detail,
                    now,
                    AgentState::WrapUp { until },
                    actions,
                );
                actions.push(Action::SetTimer {
                    timer: Timer::WrapUpEnd {
                        agent: agent.id.clone(),
                        epoch: wrap.version,
                    },
                    at: until,
                });
                Ok(follow_ups)
            },
        )
    }

    /// A deadline the caller kept has passed. Timers that no longer apply (the call left, the
    /// agent ended wrap-up early, the step was already reached) do nothing.
    pub fn handle_timer(&self, now: Instant, timer: Timer) -> Vec<Action> {
        match timer {
            Timer::WrapUpEnd { agent, epoch } => self
                .with_agent(now, &agent, |cell, detail, _word, actions| {
                    if detail.kind() == AgentStateKind::WrapUp && detail.wrap_epoch == epoch {
                        Ok(self.release_agent(cell, detail, now, None, actions))
                    } else {
                        Ok(None)
                    }
                })
                .unwrap_or_default(),
            Timer::MaxWait { call, epoch } => {
                self.on_call_timer(now, call, epoch, |cell, detail, word, actions| {
                    match word.tag {
                        call_tag::WAITING
                            if cell.word.compare_swap(word, word.next(call_tag::GONE)) =>
                        {
                            self.unindex_call(cell, detail);
                            self.queues[cell.queue].release_slot();
                            self.expire_stay(cell, detail, now, actions)
                        }
                        // Ringing (or being claimed right now): leave the queue if the offer fails.
                        call_tag::WAITING | call_tag::OFFERED => {
                            detail.max_wait_reached = true;
                            None
                        }
                        _ => None,
                    }
                })
            }
            Timer::Expansion { call, epoch, step } => {
                self.on_call_timer(now, call, epoch, |cell, detail, word, _| {
                    let queue = &self.queues[cell.queue];
                    let stage = step
                        .max(queue.stage_after(now.saturating_duration_since(cell.enqueued_at)))
                        .min(queue.stages() - 1);
                    if word.tag != call_tag::WAITING || stage <= detail.stage {
                        return None;
                    }
                    if detail.preferred.is_some() {
                        // Still reserved for its preferred agent; the stage applies after the cap.
                        detail.stage = stage;
                        return None;
                    }
                    self.republish(cell, detail, word, |detail| detail.stage = stage)
                })
            }
            Timer::PreferredAgentCap { call, epoch } => {
                self.on_call_timer(now, call, epoch, |cell, detail, word, _| {
                    self.end_preferred_wait(now, cell, detail, word)
                })
            }
        }
    }

    /// Lets anyone (qualified) take a call that was waiting for one agent only.
    fn end_preferred_wait(
        &self,
        now: Instant,
        cell: &Arc<CallCell>,
        detail: &mut CallDetail,
        word: Word,
    ) -> Option<ServeCall> {
        if word.tag != call_tag::WAITING || detail.preferred.is_none() {
            return None;
        }
        let queue = &self.queues[cell.queue];
        let stage = queue.stage_after(now.saturating_duration_since(cell.enqueued_at));
        self.republish(cell, detail, word, |detail| {
            detail.preferred = None;
            detail.stage = detail.stage.max(stage);
        })
    }

    /// Calls waiting for a removed agent stop waiting for it.
    fn release_preferred_calls(&self, now: Instant, agent: &AgentCell, actions: &mut Vec<Action>) {
        let waiting: Vec<Arc<CallCell>> = self
            .preferred
            .range(
                PreferredKey {
                    agent_seq: agent.seq,
                    wait: WaitKey {
                        urgency: i128::MIN,
                        epoch: 0,
                    },
                }..=PreferredKey {
                    agent_seq: agent.seq,
                    wait: WaitKey {
                        urgency: i128::MAX,
                        epoch: u64::MAX,
                    },
                },
            )
            .map(|entry| Arc::clone(&entry.value().call))
            .collect();
        for cell in waiting {
            let serve = {
                let mut detail = cell.lock();
                let word = cell.word.load();
                self.end_preferred_wait(now, &cell, &mut detail, word)
            };
            if let Some(serve) = serve {
                self.serve_waiting_call(now, serve, actions);
            }
        }
    }

    /// Moves a waiting call to another index under a fresh version (so a matcher holding the
    /// old entry cannot claim it), applying `relocate` in between.
    fn republish(
        &self,
        cell: &Arc<CallCell>,
        detail: &mut CallDetail,
        word: Word,
        relocate: impl FnOnce(&mut CallDetail),
    ) -> Option<ServeCall> {
        let moved = word.next(call_tag::WAITING);
        if !cell.word.compare_swap(word, moved) {
            return None; // claimed this instant: the offer wins
        }
        self.unindex_call(cell, detail);
        relocate(detail);
        Some(self.index_call(cell, detail, moved.version))
    }

    /// Runs a call timer's effect under the call's lock if the timer is for the current stay.
    fn on_call_timer(
        &self,
        now: Instant,
        call: CallId,
        epoch: u64,
        effect: impl FnOnce(
            &Arc<CallCell>,
            &mut CallDetail,
            Word,
            &mut Vec<Action>,
        ) -> Option<ServeCall>,
    ) -> Vec<Action> {
        let Ok(cell) = self.call_cell(call) else {
            return Vec::new();
        };
        if cell.epoch != epoch {
            return Vec::new();
        }
        let mut actions = Vec::new();
        let serve = {
            let mut detail = cell.lock();
            let word = cell.word.load();
            effect(&cell, &mut detail, word, &mut actions)
        };
        if let Some(serve) = serve {
            self.serve_waiting_call(now, serve, &mut actions);
        }
        actions
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

    /// Every queue's current view, in configuration order.
    pub fn queues(&self) -> Vec<QueueSnapshot> {
        self.queue_snapshots(None)
    }

    fn queue_snapshots(&self, only: Option<QueueIdx>) -> Vec<QueueSnapshot> {
        let mut counts = vec![AgentCounts::default(); self.queues.len()];
        let agents: Vec<Arc<AgentCell>> = self
            .agents
            .iter()
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        for agent in agents {
            let detail = agent.lock();
            for served in detail.served.iter() {
                if only.is_none_or(|q| q == served.queue) {
                    counts[served.queue].add(detail.kind());
                }
            }
        }
        self.queues
            .iter()
            .enumerate()
            .filter(|(index, _)| only.is_none_or(|q| q == *index))
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
                    agents: counts[index],
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
