//! The claim protocol and the two searches (call → best agent, agent → best call).
//!
//! A match needs two compare-and-swaps: the agent's word Ready(v) → Reserved(v+1), then the
//! call's word Waiting(w) → Offered(w+1). Whoever wins both owns the pair and records the
//! offer under the agent's then the call's mutex. A thread that wins the agent but loses the
//! call gives the agent back (republishing it, and searching again on its behalf), so an
//! agent is never left Reserved without an Offer action being returned.

use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::acd::Acd;
use crate::action::{AcdEvent, Action};
use crate::agent::{AgentCell, AgentDetail, ServedQueue};
use crate::call::{CallCell, CallDetail, Place, PreferredKey, ServeCall};
use crate::config::Strategy;
use crate::queue::{Candidate, WaitKey};
use crate::state::{agent_tag, call_tag, AgentState, AgentStateKind, Word};

/// A Ready agent to find a call for, in the Ready episode `version`.
#[derive(Clone, Debug)]
pub(crate) struct ReadyAgent {
    pub(crate) agent: Arc<AgentCell>,
    pub(crate) version: u64,
    pub(crate) served: Arc<[ServedQueue]>,
}

/// Searches owed once the current locks are dropped (searching never happens under a lock).
#[derive(Default)]
pub(crate) struct FollowUps {
    pub(crate) calls: Vec<ServeCall>,
    pub(crate) agents: Vec<ReadyAgent>,
}

impl FollowUps {
    /// Adds a call to serve, if any.
    pub(crate) fn call(&mut self, serve: Option<ServeCall>) {
        self.calls.extend(serve);
    }

    /// Adds an agent to serve, if any.
    pub(crate) fn agent(&mut self, ready: Option<ReadyAgent>) {
        self.agents.extend(ready);
    }
}

/// How one claim attempt ended.
enum Claim {
    /// Both words swapped; the Offer is in the actions.
    Won,
    /// Someone else changed the agent first; nothing was changed.
    AgentTaken,
    /// The agent was claimed but the call was taken; the agent was given back and, if it is
    /// Ready again, must be served.
    CallTaken(Option<ReadyAgent>),
}

impl Acd {
    /// Tries to match one agent (seen Ready at `agent_version`) with one call (seen Waiting at
    /// `call_version`).
    fn claim(
        &self,
        now: Instant,
        agent: &Arc<AgentCell>,
        agent_version: u64,
        call: &Arc<CallCell>,
        call_version: u64,
        actions: &mut Vec<Action>,
    ) -> Claim {
        let ready = Word::new(agent_version, agent_tag(AgentStateKind::Ready));
        if !agent
            .word
            .compare_swap(ready, ready.next(agent_tag(AgentStateKind::Reserved)))
        {
            return Claim::AgentTaken;
        }
        let waiting = Word::new(call_version, call_tag::WAITING);
        let offered = waiting.next(call_tag::OFFERED);
        let call_won = call.word.compare_swap(waiting, offered);
        let mut agent_detail = agent.lock();
        if call_won {
            let mut call_detail = call.lock();
            // An abandon may have slipped in between the swap and this lock; it leaves the
            // agent to us (it saw no agent recorded on the call).
            if call.word.load() == offered {
                self.record_offer(
                    now,
                    agent,
                    &mut agent_detail,
                    call,
                    &mut call_detail,
                    actions,
                );
                return Claim::Won;
            }
        }
        Claim::CallTaken(self.undo_claim(now, agent, &mut agent_detail, actions))
    }

    /// Writes down a won match: both details, indexes cleaned, events and the Offer.
    fn record_offer(
        &self,
        now: Instant,
        agent: &Arc<AgentCell>,
        agent_detail: &mut AgentDetail,
        call: &Arc<CallCell>,
        call_detail: &mut CallDetail,
        actions: &mut Vec<Action>,
    ) {
        let queue = &self.queues[call.queue];
        self.unindex_agent(agent_detail);
        self.unindex_call(call, call_detail);
        queue.release_slot();
        call_detail.preferred = None;
        call_detail.agent = Some(Arc::clone(agent));
        call_detail.attempts += 1;
        agent_detail.call = Some(Arc::clone(call));
        if queue.settings.strategy() == Strategy::RoundRobin {
            agent_detail.set_rr_stamp(call.queue, queue.next_rr_stamp());
        }
        self.record_agent_state(
            agent,
            agent_detail,
            now,
            AgentState::Reserved { call: call.id },
            actions,
        );
        actions.push(Action::Event(AcdEvent::Offered {
            call: call.id,
            agent: agent.id.clone(),
            queue: queue.id.clone(),
            wait: now.saturating_duration_since(call.enqueued_at),
            attempt: call_detail.attempts,
        }));
        actions.push(Action::Offer {
            call: call.id,
            agent: agent.id.clone(),
            queue: queue.id.clone(),
        });
    }

    /// Gives back an agent this thread claimed but could not use. Outsiders never saw it
    /// Reserved, so no event is reported unless a pending change now applies.
    fn undo_claim(
        &self,
        now: Instant,
        agent: &Arc<AgentCell>,
        detail: &mut AgentDetail,
        actions: &mut Vec<Action>,
    ) -> Option<ReadyAgent> {
        if detail.pending.is_some() {
            return self.release_agent(agent, detail, now, None, actions);
        }
        let word = self.store_agent_word(agent, AgentStateKind::Ready);
        Some(self.index_ready(agent, detail, word.version))
    }

    /// Agent side: the agent is published as Ready; give it the most urgent call it can
    /// serve, across all its queues and the calls waiting for it personally.
    pub(crate) fn serve_ready_agent(
        &self,
        now: Instant,
        ready: ReadyAgent,
        actions: &mut Vec<Action>,
    ) {
        let mut ready = ready;
        loop {
            // Publish-then-search: pairs with the fence in `serve_waiting_call` so that of a
            // call and an agent published concurrently, at least one sees the other.
            fence(Ordering::SeqCst);
            let Some(best) = self.best_call_for(&ready) else {
                return;
            };
            match self.claim(
                now,
                &ready.agent,
                ready.version,
                &best.item,
                best.version,
                actions,
            ) {
                Claim::Won | Claim::AgentTaken | Claim::CallTaken(None) => return,
                Claim::CallTaken(Some(again)) => ready = again,
            }
        }
    }

    /// Call side: the call is published as waiting; offer it to the best Ready agent.
    pub(crate) fn serve_waiting_call(
        &self,
        now: Instant,
        serve: ServeCall,
        actions: &mut Vec<Action>,
    ) {
        loop {
            fence(Ordering::SeqCst);
            if serve.call.word.load() != Word::new(serve.version, call_tag::WAITING) {
                return;
            }
            let Some((agent, agent_version)) = self.best_agent_for(&serve) else {
                return;
            };
            match self.claim(
                now,
                &agent,
                agent_version,
                &serve.call,
                serve.version,
                actions,
            ) {
                Claim::Won => return,
                Claim::AgentTaken => continue,
                Claim::CallTaken(republished) => {
                    if let Some(ready) = republished {
                        self.serve_ready_agent(now, ready, actions);
                    }
                    return;
                }
            }
        }
    }

    /// The best Ready agent for a waiting call, by its queue's strategy, skipping agents the
    /// call excludes after a failed offer.
    fn best_agent_for(&self, serve: &ServeCall) -> Option<(Arc<AgentCell>, u64)> {
        match &serve.place {
            Place::Preferred(agent) => {
                let word = agent.word.load();
                let skipped = serve
                    .skip_once
                    .as_ref()
                    .is_some_and(|x| Arc::ptr_eq(x, agent));
                (word.tag == agent_tag(AgentStateKind::Ready)
                    && !skipped
                    && !serve.call.exclusions.excludes(agent.seq))
                .then(|| (Arc::clone(agent), word.version))
            }
            Place::Stage(stage) => {
                // One copy per search (usually empty, without allocating), not a look-up per
                // candidate agent.
                let mut excluded = serve.call.exclusions.agent_seqs();
                if let Some(skipped) = &serve.skip_once {
                    if let Err(at) = excluded.binary_search(&skipped.seq) {
                        excluded.insert(at, skipped.seq);
                    }
                }
                self.queues[serve.call.queue]
                    .best_ready_upto(*stage, &excluded)
                    .map(|candidate| (candidate.item, candidate.version))
            }
        }
    }

    /// The most urgent waiting call a Ready agent may take, skipping calls that exclude it.
    fn best_call_for(&self, ready: &ReadyAgent) -> Option<Candidate<WaitKey, CallCell>> {
        let seq = ready.agent.seq;
        let personal = self
            .preferred
            .range(
                PreferredKey {
                    agent_seq: seq,
                    wait: WaitKey {
                        urgency: i128::MIN,
                        epoch: 0,
                    },
                }..=PreferredKey {
                    agent_seq: seq,
                    wait: WaitKey {
                        urgency: i128::MAX,
                        epoch: u64::MAX,
                    },
                },
            )
            .find(|entry| entry.value().is_live() && !entry.value().call.exclusions.excludes(seq))
            .map(|entry| Candidate {
                key: entry.key().wait,
                item: Arc::clone(&entry.value().call),
                version: entry.value().version,
            });
        ready
            .served
            .iter()
            .filter_map(|served| self.queues[served.queue].best_waiting_from(served.stage, seq))
            .chain(personal)
            .min_by_key(|candidate| candidate.key)
    }

    /// Serves everything queued up while locks were held, calls first so a requeued call
    /// can reach another agent before the agent who just failed it is served.
    pub(crate) fn serve_all(&self, now: Instant, follow_ups: FollowUps, actions: &mut Vec<Action>) {
        for serve in follow_ups.calls {
            self.serve_waiting_call(now, serve, actions);
        }
        for ready in follow_ups.agents {
            self.serve_ready_agent(now, ready, actions);
        }
    }
}
