//! What agents do: join, change skills, log in and out, become ready or not ready.

use std::sync::Arc;
use std::time::Instant;

use crate::acd::Acd;
use crate::action::Action;
use crate::agent::{AgentCell, PendingChange};
use crate::config::AgentConfig;
use crate::error::AcdError;
use crate::ids::AgentId;
use crate::state::{agent_tag, AgentState, AgentStateKind, Word, AGENT_REMOVED_TAG};

impl Acd {
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
                // Counted before it is visible, so no transition can race with the count.
                self.tally_join(&served, AgentStateKind::LoggedOut);
                slot.insert(cell);
                return Ok(Vec::new());
            }
            // Another thread added the same agent meanwhile: update that one instead.
        }
        self.with_agent(now, &config.id, |agent, detail, word, _actions| {
            detail.name = config.name.clone();
            detail.skills = config.skills.clone();
            // Joining first, leaving second: a reader never sees the agent missing from a
            // queue it serves both before and after.
            self.tally_join(&served, detail.kind());
            self.tally_leave(&detail.served, detail.kind());
            detail.served = Arc::clone(&served);
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
                self.record_agent_state(agent, detail, now, AgentState::LoggedOut, actions);
            }
            self.tally_leave(&detail.served, AgentStateKind::LoggedOut);
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
            self.record_agent_state(agent, detail, now, state.clone(), actions);
            Ok(None)
        })
    }
}
