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
        let cdr_id = |call: u64| self.clock.record_id(call);
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
                    .map(|c| match c.state.ivr() {
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
            // The first agent's part of the call is over (their desktop closes it and offers
            // the wrap-up form); the colleague's desktop follows from their state change.
            E::HandedOver {
                call, from, queue, ..
            } => CtiEvent::CallEnded {
                call: call.0,
                cdr_id: cdr_id(call.0),
                agent: Some(from.to_string()),
                queue: queue.to_string(),
                outcome: "transferred",
                talk_s: self
                    .calls
                    .get(&call.0)
                    .and_then(|c| c.answered)
                    .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64()),
            },
            E::Requeued { .. } | E::Overflowed { .. } => return,
        };
        self.events.publish(date, cti);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing;
    use crate::web::events::CtiEvent;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn acd_events_are_published_as_cti_events() {
        let now = Instant::now();
        let switch = testing::switch(now, Arc::new(crate::config::demo()), Default::default());
        let mut events = switch.events.subscribe();
        switch.publish_cti(
            now,
            &acd::AcdEvent::AgentStateChanged {
                agent: acd::AgentId::from("1001"),
                from: acd::AgentState::Ready,
                to: acd::AgentState::NotReady {
                    reason: Arc::from("lunch"),
                },
                reason: Some(Arc::from("lunch")),
                duration_in_previous: Duration::from_secs(90),
            },
        );
        switch.publish_cti(
            now,
            &acd::AcdEvent::Abandoned {
                call: acd::CallId(7),
                queue: acd::QueueId::from("support"),
                wait: Duration::from_secs(3),
                while_offered: false,
            },
        );
        // Moves inside the ACD that no screen shows are not published.
        switch.publish_cti(
            now,
            &acd::AcdEvent::Requeued {
                call: acd::CallId(7),
                agent: acd::AgentId::from("1001"),
                queue: acd::QueueId::from("support"),
                why: acd::OfferFailure::NoAnswer,
            },
        );
        let first = events.try_recv().map(|e| (*e).clone());
        assert_eq!(
            first,
            Ok(CtiEvent::AgentState {
                agent: "1001".into(),
                state: "not-ready",
                reason: Some("lunch".into()),
                previous: "ready",
                previous_s: 90.0,
            })
        );
        let Ok(second) = events.try_recv() else {
            panic!("the abandon is published");
        };
        let CtiEvent::CallEnded {
            call,
            cdr_id,
            agent,
            outcome,
            ..
        } = &*second
        else {
            panic!("a call-ended event: {second:?}");
        };
        assert_eq!((*call, agent.as_deref(), *outcome), (7, None, "abandoned"));
        assert!(
            cdr_id.starts_with("sb-") && cdr_id.ends_with("-7"),
            "{cdr_id}"
        );
        assert!(events.try_recv().is_err(), "the requeue is not published");
        assert_eq!(switch.events.queue_tally("support").abandoned, 1);
        assert_eq!(switch.events.agent_tally("1001").not_ready_s, 0.0);
    }
}
