//! A call's record and the transitions of its state while it is in the ACD.
//!
//! Like agents, a call has an atomic state word (Waiting → Offered is the claim) and a
//! per-call mutex for the rest. A call's stay in one queue is one cell with its own `epoch`;
//! overflowing creates a fresh cell in the target queue, so timers of the old stay go stale.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::acd::Acd;
use crate::action::{AcdEvent, Action, OverflowReason, Timer};
use crate::agent::AgentCell;
use crate::error::AcdError;
use crate::exclusion::Exclusions;
use crate::ids::CallId;
use crate::queue::{QueueIdx, WaitEntry, WaitKey};
use crate::state::{call_tag, CallStateKind, StateWord, Word};

/// Where a waiting call's index entry lives.
#[derive(Clone, Debug)]
pub(crate) enum Place {
    /// In its queue's waiting map for this expansion stage.
    Stage(usize),
    /// In the preferred-agent index, reserved for this agent until the cap.
    Preferred(Arc<AgentCell>),
}

/// Key of the index of calls waiting for one particular agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PreferredKey {
    pub(crate) agent_seq: u64,
    pub(crate) wait: WaitKey,
}

/// One stay of a call in one queue.
#[derive(Debug)]
pub(crate) struct CallCell {
    pub(crate) id: CallId,
    pub(crate) epoch: u64,
    pub(crate) queue: QueueIdx,
    pub(crate) priority: i32,
    pub(crate) enqueued_at: Instant,
    pub(crate) word: StateWord,
    /// Agents whose offer of this stay failed and who may not get it again for now.
    pub(crate) exclusions: Exclusions,
    detail: Mutex<CallDetail>,
}

/// The parts of a call that do not fit in the state word.
#[derive(Debug)]
pub(crate) struct CallDetail {
    /// Order key; a requeue at the head of the band lowers its urgency.
    pub(crate) key: WaitKey,
    /// Expansion stage reached.
    pub(crate) stage: usize,
    /// Set while the call waits for its preferred agent only.
    pub(crate) preferred: Option<Arc<AgentCell>>,
    /// The agent it is offered to or connected with.
    pub(crate) agent: Option<Arc<AgentCell>>,
    pub(crate) answered_at: Option<Instant>,
    /// Max wait passed while the call was ringing: on a failed offer it leaves the queue.
    pub(crate) max_wait_reached: bool,
    pub(crate) attempts: u32,
}

impl CallDetail {
    /// Where the call's entry is (meaningful while waiting).
    pub(crate) fn place(&self) -> Place {
        match &self.preferred {
            Some(agent) => Place::Preferred(Arc::clone(agent)),
            None => Place::Stage(self.stage),
        }
    }
}

impl CallCell {
    /// A call starting to wait, not yet published.
    pub(crate) fn new(
        id: CallId,
        epoch: u64,
        queue: QueueIdx,
        priority: i32,
        enqueued_at: Instant,
        detail: CallDetail,
    ) -> Self {
        Self {
            id,
            epoch,
            queue,
            priority,
            enqueued_at,
            word: StateWord::new(Word::new(0, call_tag::WAITING)),
            exclusions: Exclusions::default(),
            detail: Mutex::new(detail),
        }
    }

    /// Locks the detail; poisoning is ignored for the same reason as for agents.
    pub(crate) fn lock(&self) -> MutexGuard<'_, CallDetail> {
        self.detail.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The state kind a call word shows.
pub(crate) fn call_kind(word: Word) -> CallStateKind {
    match word.tag {
        call_tag::WAITING => CallStateKind::Waiting,
        call_tag::OFFERED => CallStateKind::Offered,
        call_tag::CONNECTED => CallStateKind::Connected,
        _ => CallStateKind::Gone,
    }
}

/// Refuses an event for a call whose state word is not `tag` (`expected` names the states
/// the event needs, for the error).
pub(crate) fn require_tag(
    call: CallId,
    word: Word,
    tag: u8,
    expected: &'static str,
) -> Result<(), AcdError> {
    if word.tag == tag {
        Ok(())
    } else {
        Err(AcdError::IllegalCallState {
            call,
            state: call_kind(word),
            expected,
        })
    }
}

/// A call about to start waiting in a queue.
pub(crate) struct NewStay {
    pub(crate) id: CallId,
    pub(crate) queue: QueueIdx,
    pub(crate) priority: i32,
    pub(crate) preferred: Option<Arc<AgentCell>>,
    /// Offers made to it so far (carried across overflow).
    pub(crate) attempts: u32,
    /// A call new to the ACD, whose id must not be in use, rather than one moving queues.
    pub(crate) fresh: bool,
    /// When the call started waiting, for its place in the queue (usually now).
    pub(crate) waiting_since: Instant,
    /// How long it waits for `preferred` (else the queue's preferred-agent wait).
    pub(crate) preferred_wait: Option<Duration>,
}

/// What to do after the locks are dropped: search for a partner.
pub(crate) struct ServeCall {
    pub(crate) call: Arc<CallCell>,
    pub(crate) version: u64,
    pub(crate) place: Place,
    /// An agent not to offer it to in this search only: the one just released by a failed
    /// offer. That agent searches for itself right after and takes the most urgent call it
    /// may (which matters when the call just overflowed to a new stay that does not exclude
    /// it: a less urgent call must not grab it first).
    pub(crate) skip_once: Option<Arc<AgentCell>>,
}

impl Acd {
    /// Publishes a waiting call (word already Waiting at `version`) in its index.
    pub(crate) fn index_call(
        &self,
        call: &Arc<CallCell>,
        detail: &CallDetail,
        version: u64,
    ) -> ServeCall {
        let entry = WaitEntry {
            call: Arc::clone(call),
            version,
        };
        let place = detail.place();
        match &place {
            Place::Preferred(agent) => {
                self.preferred.insert(
                    PreferredKey {
                        agent_seq: agent.seq,
                        wait: detail.key,
                    },
                    entry,
                );
            }
            Place::Stage(stage) => {
                if let Some(map) = self.queues[call.queue].waiting.get(*stage) {
                    map.insert(detail.key, entry);
                }
            }
        }
        ServeCall {
            call: Arc::clone(call),
            version,
            place,
            skip_once: None,
        }
    }

    /// Removes a call's index entry, wherever it is.
    pub(crate) fn unindex_call(&self, call: &CallCell, detail: &CallDetail) {
        match &detail.preferred {
            Some(agent) => {
                self.preferred.remove(&PreferredKey {
                    agent_seq: agent.seq,
                    wait: detail.key,
                });
            }
            None => self.queues[call.queue].remove_waiting(detail.stage, &detail.key),
        }
    }

    /// Forgets a call that left the ACD (only if the registry still holds this very stay).
    pub(crate) fn forget_call(&self, call: &Arc<CallCell>) {
        self.calls
            .remove_if(&call.id, |_, current| Arc::ptr_eq(current, call));
    }

    /// Starts a call's stay in `queue` (a slot there is already taken): registers it,
    /// publishes it, schedules its timers. Returns what to serve after unlocking, or `None`
    /// when `stay.fresh` and another live call already has this id.
    pub(crate) fn start_stay(
        &self,
        stay: NewStay,
        now: Instant,
        actions: &mut Vec<Action>,
    ) -> Option<ServeCall> {
        let NewStay {
            id,
            queue,
            priority,
            preferred,
            attempts,
            fresh,
            waiting_since,
            preferred_wait,
        } = stay;
        let runtime = &self.queues[queue];
        let epoch = self.next_seq();
        let stage = runtime.stage_after(Duration::ZERO);
        let preferred_wait = preferred_wait.unwrap_or(runtime.settings.preferred_agent_wait());
        let preferred = preferred.filter(|_| !preferred_wait.is_zero());
        let key = WaitKey {
            urgency: runtime.urgency(self.time.micros(waiting_since.min(now)), priority),
            epoch,
        };
        let cell = Arc::new(CallCell::new(
            id,
            epoch,
            queue,
            priority,
            now,
            CallDetail {
                key,
                stage,
                preferred,
                agent: None,
                answered_at: None,
                max_wait_reached: false,
                attempts,
            },
        ));
        // Publish under the call's own lock so an abandon racing in sees a complete call.
        let detail = cell.lock();
        if fresh {
            match self.calls.entry(id) {
                dashmap::Entry::Occupied(_) => return None,
                dashmap::Entry::Vacant(slot) => {
                    slot.insert(Arc::clone(&cell));
                }
            }
        } else {
            // A new stay of a call that is moving queues replaces the old stay.
            self.calls.insert(id, Arc::clone(&cell));
        }
        actions.push(Action::Event(AcdEvent::Enqueued {
            call: id,
            queue: runtime.id.clone(),
            priority,
        }));
        if let Some(max_wait) = runtime.settings.max_wait() {
            actions.push(Action::SetTimer {
                timer: Timer::MaxWait { call: id, epoch },
                at: now + max_wait,
            });
        }
        for (index, after) in runtime.expansion_after.iter().enumerate().skip(stage) {
            actions.push(Action::SetTimer {
                timer: Timer::Expansion {
                    call: id,
                    epoch,
                    step: index + 1,
                },
                at: now + *after,
            });
        }
        if detail.preferred.is_some() {
            actions.push(Action::SetTimer {
                timer: Timer::PreferredAgentCap { call: id, epoch },
                at: now + preferred_wait,
            });
        }
        let serve = self.index_call(&cell, &detail, 0);
        drop(detail);
        Some(serve)
    }

    /// Follows the overflow chain from `from` to the first queue with room and takes a slot
    /// there. `Err` carries the last queue tried when every queue on the chain is full.
    pub(crate) fn admit_along_overflow(&self, from: QueueIdx) -> Result<QueueIdx, QueueIdx> {
        let mut current = from;
        while let Some(target) = self.queues[current].settings.overflow() {
            if self.queues[target].try_admit() {
                return Ok(target);
            }
            current = target;
        }
        Err(current)
    }

    /// Reports a call moving from one queue to another.
    pub(crate) fn report_overflow(
        &self,
        call: CallId,
        from: QueueIdx,
        to: QueueIdx,
        wait: Duration,
        reason: OverflowReason,
        actions: &mut Vec<Action>,
    ) {
        let (from, to) = (self.queues[from].id.clone(), self.queues[to].id.clone());
        actions.push(Action::Event(AcdEvent::Overflowed {
            call,
            from: from.clone(),
            to: to.clone(),
            wait,
            reason,
        }));
        actions.push(Action::Overflow { call, from, to });
    }

    /// Ends a stay on max wait: overflow the call, or time it out. The caller has already
    /// moved the word to Gone (so no matcher can take it), unindexed it and released its slot.
    pub(crate) fn expire_stay(
        &self,
        call: &Arc<CallCell>,
        detail: &CallDetail,
        now: Instant,
        reason: OverflowReason,
        actions: &mut Vec<Action>,
    ) -> Option<ServeCall> {
        let waited = now.saturating_duration_since(call.enqueued_at);
        let reason = if self.queues[call.queue].settings.is_retired() {
            OverflowReason::QueueRemoved
        } else {
            reason
        };
        if self.queues[call.queue].settings.overflow().is_some() {
            if let Ok(target) = self.admit_along_overflow(call.queue) {
                self.report_overflow(call.id, call.queue, target, waited, reason, actions);
                let stay = NewStay {
                    id: call.id,
                    queue: target,
                    priority: call.priority,
                    preferred: None,
                    attempts: detail.attempts,
                    fresh: false,
                    waiting_since: now,
                    preferred_wait: None,
                };
                return self.start_stay(stay, now, actions);
            }
        }
        self.forget_call(call);
        let queue = self.queues[call.queue].id.clone();
        actions.push(Action::Event(AcdEvent::TimedOut {
            call: call.id,
            queue: queue.clone(),
            wait: waited,
        }));
        actions.push(Action::Timeout {
            call: call.id,
            queue,
        });
        None
    }
}
