//! Which agent a queued call waits for first: the agent the caller lookup named, else the
//! agent who last answered this caller (sticky routing), and only while that agent is logged
//! in, can serve the call's queue (a sales agent is not waited for on a support call), is not
//! being rung for or talking to another call from the same number, and the queue waits for
//! preferred agents at all (`preferred_agent_wait_s` > 0). The ACD then holds the
//! call for that agent up to the queue's preferred wait.

use super::call::CallNumber;
use super::Switch;
use crate::sticky_routing::StickyIndex;
use acd::AgentId;
use std::time::Instant;

impl Switch {
    /// Replaces the sticky-routing index (the runtime rebuilds it from the CDRs at start).
    pub fn restore_sticky(&mut self, index: StickyIndex) {
        self.sticky = index;
    }

    /// The agent call `id` should wait for as it is queued, remembered on the call for its
    /// CDR; `None` when there is none to wait for.
    pub(super) fn preferred_agent_for(&mut self, now: Instant, id: CallNumber) -> Option<AgentId> {
        let unix_now = self.unix_now(now);
        let call = self.calls.get(&id)?;
        let waits = self
            .index
            .queue(&self.config, &call.queue)
            .is_some_and(|queue| !queue.preferred_agent_wait.is_zero());
        let candidate = call
            .lookup_agent
            .clone()
            .or_else(|| self.sticky.last_agent(&call.caller, unix_now).cloned())
            .filter(|_| waits)
            .filter(|agent| {
                // One read of the agent's state in the ACD: logged in and serving the queue,
                // and (the same number calling again while still with that agent — a second
                // line of a PBX, a test trunk — would only wait for the first call to end) not
                // rung for or talking to another call from this caller. The ACD's state names
                // that call, so no call is scanned.
                let queue = acd::QueueId::from(call.queue.as_str());
                match self.acd.agent_state_in_queue(agent, &queue) {
                    None | Some(acd::AgentState::LoggedOut) => false,
                    Some(
                        acd::AgentState::Reserved { call: other }
                        | acd::AgentState::OnCall { call: other },
                    ) => {
                        other.0 == id
                            || self
                                .calls
                                .get(&other.0)
                                .is_none_or(|other| other.caller != call.caller)
                    }
                    Some(_) => true,
                }
            });
        if let Some(call) = self.calls.get_mut(&id) {
            call.preferred_agent = candidate.clone();
        }
        if let Some(agent) = &candidate {
            tracing::info!(call = id, agent = %agent, "call waits for its preferred agent first");
        }
        candidate
    }

    /// An agent answered call `id`: they are the caller's agent from now on.
    pub(super) fn remember_answering_agent(&mut self, now: Instant, id: CallNumber) {
        let unix_now = self.unix_now(now);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(agent) = call.agent().cloned() else {
            return;
        };
        self.sticky.remember(&call.caller, agent, unix_now);
        self.sticky.forget_expired(unix_now);
    }
}
