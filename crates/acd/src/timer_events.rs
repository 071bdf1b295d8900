//! Deadlines the caller kept and hands back: wrap-up end, expansion steps, max wait and the
//! preferred-agent cap. A timer that no longer applies does nothing.

use std::sync::Arc;
use std::time::Instant;

use crate::acd::Acd;
use crate::action::{Action, Timer};
use crate::agent::AgentCell;
use crate::call::{CallCell, CallDetail, PreferredKey, ServeCall};
use crate::ids::CallId;
use crate::queue::WaitKey;
use crate::state::{call_tag, AgentStateKind, Word};

impl Acd {
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
                            self.expire_stay(
                                cell,
                                detail,
                                now,
                                crate::action::OverflowReason::MaxWait,
                                actions,
                            )
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
            Timer::OfferRetry { call, epoch, .. } => self.lift_exclusion(now, call, epoch),
        }
    }

    /// The retry time after a failed offer passed: the agent may have the call again, and a
    /// still-waiting call looks for the best Ready agent at once (the agent, if it is Ready
    /// and the best, has no reason to search by itself).
    fn lift_exclusion(&self, now: Instant, call: CallId, epoch: u64) -> Vec<Action> {
        // A stay that ended (answered, abandoned, overflowed, timed out) is either gone from
        // the registry or replaced by a new cell that has no exclusion with this epoch.
        let Ok(cell) = self.call_cell(call) else {
            return Vec::new();
        };
        if !cell.exclusions.lift(epoch) {
            return Vec::new();
        }
        let serve = {
            let detail = cell.lock();
            let word = cell.word.load();
            (word.tag == call_tag::WAITING).then(|| ServeCall {
                call: Arc::clone(&cell),
                version: word.version,
                place: detail.place(),
                skip_once: None,
            })
        };
        let mut actions = Vec::new();
        if let Some(serve) = serve {
            self.serve_waiting_call(now, serve, &mut actions);
        }
        actions
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
    pub(crate) fn release_preferred_calls(
        &self,
        now: Instant,
        agent: &AgentCell,
        actions: &mut Vec<Action>,
    ) {
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
}
