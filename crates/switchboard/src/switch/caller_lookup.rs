//! Call control's side of the caller lookup hook (`[lookup]`, see `crate::caller_lookup`):
//! a question per arriving call for the edge to ask, and the CRM's answer applied to the call
//! if it is still waiting. The call never waits for the answer: before it is queued the answer
//! is kept for queueing; while it waits in a queue without having been offered, it is queued
//! again with the new priority and preferred agent, keeping its place in time.

use super::call::{CallNumber, Phase};
use super::Switch;
use crate::caller_lookup::{CallerInfo, LookupRequest};
use acd::AgentId;
use std::time::Instant;

impl Switch {
    /// Asks the CRM about call `id`'s caller, when a lookup is configured.
    pub(super) fn ask_about_caller(&mut self, id: CallNumber) {
        if self.config.lookup.is_none() {
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        self.lookups_out.push_back(LookupRequest {
            call: id,
            caller: call.caller.clone(),
            did: call.did.clone(),
        });
    }

    /// The next caller lookup the edge must make.
    pub fn poll_lookup(&mut self) -> Option<LookupRequest> {
        self.lookups_out.pop_front()
    }

    /// The CRM's answer about call `id`'s caller. An ended call ignores it; an agent id the
    /// configuration does not know is ignored (and logged).
    pub fn caller_looked_up(&mut self, now: Instant, id: CallNumber, info: CallerInfo) {
        let lookup_agent = info.preferred_agent.as_deref().and_then(|agent| {
            let id = AgentId::from(agent);
            let known = self.agents_by_id.contains_key(&id);
            if !known {
                tracing::info!(agent, "caller lookup named an unknown agent: ignored");
            }
            known.then_some(id)
        });
        let in_acd = self.acd.call(acd::CallId(id)).is_some();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        tracing::info!(call = id, ?info, "caller looked up");
        if info.label.is_some() {
            call.label = info.label;
        }
        if info.customer_name.is_some() {
            call.customer_name = info.customer_name;
        }
        // A running IVR keeps the language it speaks; the answer sets it for what follows.
        if info.language.is_some() && call.ivr.is_none() {
            call.language = info.language;
        }
        // Once an agent has been rung, the call's routing is settled: priority and preferred
        // agent no longer matter (and the CDR keeps the priority the call was served with).
        let routing_open = call.agent_leg.is_none() && call.first_offered.is_none();
        if !routing_open {
            return;
        }
        let priority_changed = info.priority.is_some_and(|p| p != call.priority);
        if let Some(priority) = info.priority {
            call.priority = priority;
        }
        let agent_changed = lookup_agent.is_some() && lookup_agent != call.preferred_agent;
        if lookup_agent.is_some() {
            call.lookup_agent = lookup_agent;
        }
        let waiting = in_acd && call.phase == Phase::Queued;
        if waiting && (priority_changed || agent_changed) {
            self.requeue_looked_up(now, id);
        }
    }

    /// Queues a waiting call again with what the lookup changed, as if it had been waiting
    /// since it was first queued.
    fn requeue_looked_up(&mut self, now: Instant, id: CallNumber) {
        match self.acd.abandon(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::debug!(call = id, %error, "looked-up call not in the ACD any more");
                return;
            }
        }
        let preferred_agent = self.preferred_agent_for(now, id);
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(call.queue.as_str()),
            priority: call.priority,
            preferred_agent,
            waiting_since: Some(call.enqueued_at()),
            preferred_wait: None,
        };
        match self.acd.enqueue(now, request) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::warn!(call = id, %error, "looked-up call could not be queued again");
                self.end_call(
                    now,
                    id,
                    super::b2bua::EndCause::QueueFull(error.to_string()),
                );
            }
        }
    }
}
