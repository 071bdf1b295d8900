//! What happens to calls: they arrive, are answered, fail to connect, are abandoned, end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::acd::{Acd, CallRequest};
use crate::action::{AcdEvent, Action, OfferFailure, OverflowReason, RejectReason, Timer};
use crate::agent::{AgentCell, AgentDetail};
use crate::call::{call_kind, require_tag, CallCell, CallDetail, NewStay, ServeCall};
use crate::error::AcdError;
use crate::exclusion::Lift;
use crate::ids::{AgentId, CallId};
use crate::matcher::FollowUps;
use crate::queue::QueueRuntime;
use crate::state::{call_tag, AgentState, AgentStateKind, CallStateKind, Word};

impl Acd {
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
            waiting_since: request.waiting_since.unwrap_or(now),
            preferred_wait: request.preferred_wait,
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
                require_tag(call, word, call_tag::OFFERED, "offered")?;
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
                    within_service_level: wait <= queue.settings.service_level(),
                }));
                Ok(FollowUps::default())
            },
        )
    }

    /// The offer did not connect. The agent goes NotReady with the missed-call reason on
    /// `NoAnswer` (when configured), else Ready; a pending not-ready or logout wins over
    /// both. The call goes back to the head of its priority band (or leaves the queue if its
    /// max wait passed while it rang) and may be offered to another agent at once, but not to
    /// this one: after `Incompatible` not during this stay, otherwise not until the returned
    /// [`Timer::OfferRetry`] (due `offer_retry_after` from `now`) is handled.
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
                require_tag(call, word, call_tag::OFFERED, "offered")?;
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
                    OfferFailure::Busy
                    | OfferFailure::Rejected
                    | OfferFailure::Unreachable
                    | OfferFailure::Incompatible => None,
                };
                let mut follow_ups = FollowUps::default();
                follow_ups.agent(self.release_agent(agent, agent_detail, now, fallback, actions));
                let serve = if call_detail.max_wait_reached {
                    cell.word.store(word.next(call_tag::GONE));
                    self.expire_stay(
                        cell,
                        call_detail,
                        now,
                        crate::action::OverflowReason::MaxWait,
                        actions,
                    )
                } else {
                    // Excluded before the call is republished, so no search can see the
                    // requeued call without the exclusion.
                    self.exclude_agent(now, cell, agent, why, actions);
                    Some(self.requeue_at_head(now, cell, call_detail, word))
                };
                // The call looks for another agent first; the released agent then searches
                // for itself and takes the most urgent call it can serve (never this stay).
                follow_ups.call(serve.map(|serve| ServeCall {
                    skip_once: Some(Arc::clone(agent)),
                    ..serve
                }));
                Ok(follow_ups)
            },
        )
    }

    /// Keeps `agent` from being offered this stay of the call again: for the whole stay
    /// when the device cannot take the call, else until an `OfferRetry` timer.
    fn exclude_agent(
        &self,
        now: Instant,
        cell: &Arc<CallCell>,
        agent: &Arc<AgentCell>,
        why: OfferFailure,
        actions: &mut Vec<Action>,
    ) {
        let lift = match why {
            OfferFailure::Incompatible => Lift::EndOfStay,
            OfferFailure::NoAnswer
            | OfferFailure::Busy
            | OfferFailure::Rejected
            | OfferFailure::Unreachable => {
                // Unique across calls and stays, so a timer of an old exclusion lifts nothing.
                let epoch = self.next_seq();
                actions.push(Action::SetTimer {
                    timer: Timer::OfferRetry {
                        call: cell.id,
                        agent: agent.id.clone(),
                        epoch,
                    },
                    at: now + self.offer_retry_after,
                });
                Lift::Timer(epoch)
            }
        };
        cell.exclusions.add(agent, lift);
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
                require_tag(call, word, call_tag::OFFERED, "waiting or offered")?;
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
                require_tag(call, word, call_tag::CONNECTED, "connected")?;
                cell.word.store(word.next(call_tag::GONE));
                call_detail.agent = None;
                self.forget_call(cell);
                let queue = &self.queues[cell.queue];
                let talk = now.saturating_duration_since(call_detail.answered_at.unwrap_or(now));
                queue.record_handle_time(talk + queue.settings.wrap_up());
                actions.push(Action::Event(AcdEvent::CallEnded {
                    call,
                    agent: agent.id.clone(),
                    queue: queue.id.clone(),
                    talk,
                }));
                Ok(self.start_wrap_up(agent, agent_detail, now, queue, actions))
            },
        )
    }

    /// The connected call passes to agent `to`: the colleague an agent consulted, who talked
    /// with the caller and completed an attended transfer. The agent who had the call goes to
    /// wrap-up as after a hang-up; `to` is OnCall with it from now on (its answered count up
    /// by one) and goes to wrap-up when the call is hung up. `to` must be NotReady (a consulted
    /// colleague is, for the consult): a Ready agent could be claimed by a match meanwhile,
    /// and any other state is busy elsewhere or gone. Handle time is the whole call's, counted
    /// at the final hang-up.
    pub fn hand_over(
        &self,
        now: Instant,
        call: CallId,
        to: &AgentId,
    ) -> Result<Vec<Action>, AcdError> {
        let target = self.agent_cell(to)?;
        let target_free = |detail: &AgentDetail| -> Result<(), AcdError> {
            match detail.state {
                AgentState::NotReady { .. } => Ok(()),
                ref other => Err(AcdError::IllegalTransition {
                    agent: to.clone(),
                    from: other.kind(),
                    to: AgentStateKind::OnCall,
                }),
            }
        };
        target_free(&target.lock())?;
        // The agent who had the call leaves it; the call stays connected, without an agent
        // for the moment between the two locks (only call control changes calls).
        let mut actions = self.with_call_and_agent(
            now,
            call,
            "connected",
            |agent, agent_detail, cell, call_detail, word, actions| {
                require_tag(call, word, call_tag::CONNECTED, "connected")?;
                if Arc::ptr_eq(agent, &target) {
                    return Err(AcdError::AgentBusy(to.clone()));
                }
                call_detail.agent = None;
                let queue = &self.queues[cell.queue];
                actions.push(Action::Event(AcdEvent::HandedOver {
                    call,
                    from: agent.id.clone(),
                    to: to.clone(),
                    queue: queue.id.clone(),
                }));
                Ok(self.start_wrap_up(agent, agent_detail, now, queue, actions))
            },
        )?;
        // The colleague takes it (agent lock before call lock, as everywhere).
        let cell = self.call_cell(call)?;
        let mut target_detail = target.lock();
        let mut call_detail = cell.lock();
        target_free(&target_detail)?;
        let word = cell.word.load();
        require_tag(call, word, call_tag::CONNECTED, "connected")?;
        if call_detail.agent.is_some() {
            return Err(AcdError::IllegalCallState {
                call,
                state: call_kind(word),
                expected: "connected without an agent",
            });
        }
        call_detail.agent = Some(Arc::clone(&target));
        target_detail.call = Some(Arc::clone(&cell));
        target_detail.pending = None;
        target_detail.calls_answered += 1;
        self.store_agent_word(&target, AgentStateKind::OnCall);
        self.record_agent_state(
            &target,
            &mut target_detail,
            now,
            AgentState::OnCall { call },
            &mut actions,
        );
        Ok(actions)
    }

    /// Sends `agent`, whose call just ended or passed on, to wrap-up (with its WrapUpEnd
    /// timer), or straight on when the queue has no wrap-up time.
    fn start_wrap_up(
        &self,
        agent: &Arc<AgentCell>,
        agent_detail: &mut AgentDetail,
        now: Instant,
        queue: &QueueRuntime,
        actions: &mut Vec<Action>,
    ) -> FollowUps {
        let mut follow_ups = FollowUps::default();
        if queue.settings.wrap_up().is_zero() {
            follow_ups.agent(self.release_agent(agent, agent_detail, now, None, actions));
            return follow_ups;
        }
        agent_detail.call = None;
        self.store_agent_word(agent, AgentStateKind::WrapUp);
        // Unique across agents, so a timer of a removed and re-added agent is stale.
        let epoch = self.next_seq();
        agent_detail.wrap_epoch = epoch;
        let until = now + queue.settings.wrap_up();
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
                epoch,
            },
            at: until,
        });
        follow_ups
    }
}
