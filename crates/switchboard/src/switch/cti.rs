//! Publishes the ACD's events as CTI events ([`crate::web::events`]) while call control
//! applies them, with the call details (caller, DID, IVR path, label) only this task holds.

use super::Switch;
use crate::web::events::{state_name, CtiEvent};
use std::time::Instant;

impl Switch {
    /// Turns one ACD event into a CTI event and hands it to the hub (which never blocks).
    pub(super) fn publish_cti(&self, now: Instant, event: &acd::AcdEvent) {
        use acd::AcdEvent as E;
        let date = self.wall(now).date();
        let cdr_id = |call: u64| format!("sb-{}-{}", self.unix_base, call);
        let cti = match event {
            E::AgentStateChanged {
                agent,
                from,
                to,
                reason,
                duration_in_previous,
            } => CtiEvent::AgentState {
                agent: agent.to_string(),
                state: state_name(to),
                reason: reason.as_deref().map(str::to_owned),
                previous: state_name(from),
                previous_s: duration_in_previous.as_secs_f64(),
            },
            E::Enqueued {
                call,
                queue,
                priority,
            } => {
                let found = self.calls.get(&call.0);
                CtiEvent::CallQueued {
                    call: call.0,
                    queue: queue.to_string(),
                    caller: found.map(|c| c.caller.clone()).unwrap_or_default(),
                    did: found.map(|c| c.did.clone()).unwrap_or_default(),
                    priority: *priority,
                    label: found.and_then(|c| c.label.clone()),
                }
            }
            E::Offered {
                call,
                agent,
                queue,
                wait,
                ..
            } => {
                let found = self.calls.get(&call.0);
                let ivr_path = found
                    .map(|c| match &c.ivr {
                        Some(ivr) => ivr.path(),
                        None => c.ivr_path.clone(),
                    })
                    .unwrap_or_default();
                CtiEvent::CallOffered {
                    call: call.0,
                    agent: agent.to_string(),
                    queue: queue.to_string(),
                    wait_s: wait.as_secs_f64(),
                    caller: found.map(|c| c.caller.clone()).unwrap_or_default(),
                    did: found.map(|c| c.did.clone()).unwrap_or_default(),
                    ivr_path: ivr_path
                        .split('>')
                        .filter(|step| !step.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    priority: found.map_or(0, |c| c.priority),
                    label: found.and_then(|c| c.label.clone()),
                }
            }
            E::Answered {
                call,
                agent,
                queue,
                wait,
                within_service_level,
            } => CtiEvent::CallAnswered {
                call: call.0,
                agent: agent.to_string(),
                queue: queue.to_string(),
                wait_s: wait.as_secs_f64(),
                within_service_level: *within_service_level,
            },
            E::CallEnded {
                call,
                agent,
                queue,
                talk,
            } => CtiEvent::CallEnded {
                call: call.0,
                cdr_id: cdr_id(call.0),
                agent: Some(agent.to_string()),
                queue: queue.to_string(),
                outcome: "completed",
                talk_s: talk.as_secs_f64(),
            },
            E::Abandoned { call, queue, .. } => CtiEvent::CallEnded {
                call: call.0,
                cdr_id: cdr_id(call.0),
                // The agent being rung, if any, learns that the call is gone.
                agent: self
                    .calls
                    .get(&call.0)
                    .and_then(|c| c.agent().map(|a| a.to_string())),
                queue: queue.to_string(),
                outcome: "abandoned",
                talk_s: 0.0,
            },
            E::TimedOut { call, queue, .. } => CtiEvent::CallEnded {
                call: call.0,
                cdr_id: cdr_id(call.0),
                agent: None,
                queue: queue.to_string(),
                outcome: "timed-out",
                talk_s: 0.0,
            },
            E::Rejected { call, queue } => CtiEvent::CallEnded {
                call: call.0,
                cdr_id: cdr_id(call.0),
                agent: None,
                queue: queue.to_string(),
                outcome: "rejected",
                talk_s: 0.0,
            },
            E::Requeued { .. } | E::Overflowed { .. } => return,
        };
        self.events.publish(date, cti);
    }
}
