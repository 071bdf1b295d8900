//! CTI events: what agents, supervisors and integrations watch live (`/api/events`).
//!
//! Call control publishes an event for every ACD event as it applies it (agent state changes,
//! calls queued, offered, answered, ended), so nothing polls the call core. The hub fans the
//! events out to every WebSocket over a tokio broadcast channel and keeps today's tallies per
//! queue and per agent (service level, answer and abandon rate, the agent's own figures) from
//! the same stream. Tallies count from the later of UTC midnight and the node's start.

use crate::config::ApiRole;
use crate::switch::live_calls::mask_number;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Events a slow WebSocket may fall behind by before it is told it missed some.
const BACKLOG: usize = 1024;
/// Ended calls remembered for their wrap-up (per node, newest kept).
const ENDED_CALLS_KEPT: usize = 4096;

/// One CTI event, as sent on `/api/events` (JSON with a `type` tag).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum CtiEvent {
    /// An agent changed state.
    AgentState {
        /// The agent's id.
        agent: String,
        /// `logged-out`, `ready`, `reserved`, `on-call`, `wrap-up` or `not-ready`.
        state: &'static str,
        /// The not-ready reason.
        reason: Option<String>,
        /// The state left.
        previous: &'static str,
        /// Seconds spent in the state left.
        previous_s: f64,
    },
    /// A call started waiting in a queue.
    CallQueued {
        /// Switchboard's call id.
        call: u64,
        /// The queue.
        queue: String,
        /// The caller's number (masked for some roles).
        caller: String,
        /// The number dialled.
        did: String,
        /// Priority in the queue.
        priority: i32,
        /// The caller list's label (e.g. `VIP`).
        label: Option<String>,
    },
    /// A call rings an agent: everything the screen pop shows.
    CallOffered {
        /// Switchboard's call id.
        call: u64,
        /// The agent rung.
        agent: String,
        /// The queue.
        queue: String,
        /// Seconds waited so far.
        wait_s: f64,
        /// The caller's number (masked for some roles).
        caller: String,
        /// The number dialled.
        did: String,
        /// IVR menus and keys, in order (`main`, `2`, ...).
        ivr_path: Vec<String>,
        /// Priority in the queue.
        priority: i32,
        /// The caller list's label (e.g. `VIP`).
        label: Option<String>,
    },
    /// The agent answered.
    CallAnswered {
        /// Switchboard's call id.
        call: u64,
        /// The agent.
        agent: String,
        /// The queue.
        queue: String,
        /// Seconds waited.
        wait_s: f64,
        /// Answered within the queue's service-level threshold.
        within_service_level: bool,
    },
    /// A queued call ended.
    CallEnded {
        /// Switchboard's call id.
        call: u64,
        /// The CDR's `id` (a wrap-up is filed under it).
        cdr_id: String,
        /// The agent who talked to the caller, if any.
        agent: Option<String>,
        /// The queue.
        queue: String,
        /// `completed` (talked to an agent), `transferred` (this agent's part ended: an attended
        /// transfer passed the call to a colleague), `abandoned`, `timed-out` or `rejected`.
        outcome: &'static str,
        /// Seconds talked.
        talk_s: f64,
    },
    /// Live figures of every queue (sent on connect and at most once a second when changed).
    Queues {
        /// One entry per queue, by name.
        queues: Vec<QueueFigures>,
    },
    /// This socket fell behind and missed events; reload the state from the REST API.
    Lagged {
        /// How many were missed.
        missed: u64,
    },
}

impl CtiEvent {
    /// Whether `role` may see this event: an agent sees its own state and calls and the
    /// queue figures; everyone else sees everything.
    pub fn visible_to(&self, role: &ApiRole) -> bool {
        let ApiRole::Agent(own) = role else {
            return true;
        };
        match self {
            CtiEvent::AgentState { agent, .. }
            | CtiEvent::CallOffered { agent, .. }
            | CtiEvent::CallAnswered { agent, .. } => agent == own,
            CtiEvent::CallEnded { agent, .. } => agent.as_deref() == Some(own.as_str()),
            CtiEvent::CallQueued { .. } => false,
            CtiEvent::Queues { .. } | CtiEvent::Lagged { .. } => true,
        }
    }

    /// The event with the caller's number masked.
    pub fn masked(mut self) -> Self {
        if let CtiEvent::CallQueued { caller, .. } | CtiEvent::CallOffered { caller, .. } =
            &mut self
        {
            *caller = mask_number(caller);
        }
        self
    }
}

/// One queue's live and today's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueFigures {
    /// The queue's name.
    pub name: String,
    /// Calls waiting now.
    pub waiting: usize,
    /// Seconds the oldest waiting call has waited.
    pub longest_wait_s: Option<u64>,
    /// Agents serving the queue, by state.
    pub agents: AgentsByState,
    /// Today's tallies.
    pub today: QueueTally,
    /// Answered within the threshold / (answered + abandoned), today; `null` before any.
    pub service_level: Option<f64>,
    /// Answered / (answered + abandoned), today.
    pub answer_rate: Option<f64>,
    /// Abandoned / (answered + abandoned), today.
    pub abandon_rate: Option<f64>,
}

/// Agents serving a queue, by state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AgentsByState {
    /// Ready.
    pub ready: usize,
    /// Ringing.
    pub reserved: usize,
    /// Talking.
    pub on_call: usize,
    /// After-call work.
    pub wrap_up: usize,
    /// Not ready.
    pub not_ready: usize,
    /// Logged out.
    pub logged_out: usize,
}

/// A queue's calls today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueTally {
    /// Calls that started waiting.
    pub queued: u64,
    /// Calls answered by an agent.
    pub answered: u64,
    /// Of those, answered within the service-level threshold.
    pub answered_in_service_level: u64,
    /// Callers who hung up waiting.
    pub abandoned: u64,
}

impl QueueTally {
    fn rate(&self, part: u64) -> Option<f64> {
        let settled = self.answered + self.abandoned;
        (settled > 0).then(|| part as f64 / settled as f64)
    }
}

/// An agent's own figures today.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct AgentTally {
    /// Calls answered.
    pub calls: u64,
    /// Seconds talked, summed.
    pub talk_s: f64,
    /// Seconds of wrap-up, summed.
    pub wrap_up_s: f64,
    /// Seconds not ready (finished periods).
    pub not_ready_s: f64,
}

impl AgentTally {
    /// Average handle time: (talk + wrap-up) / calls.
    pub fn average_handle_s(&self) -> Option<f64> {
        (self.calls > 0).then(|| (self.talk_s + self.wrap_up_s) / self.calls as f64)
    }
}

/// A call that ended, kept so its agent can file the wrap-up.
#[derive(Debug, Clone, PartialEq)]
pub struct EndedCall {
    /// Switchboard's call id.
    pub call: u64,
    /// The CDR's id.
    pub cdr_id: String,
    /// Who talked to the caller.
    pub agent: String,
}

#[derive(Default)]
struct Today {
    date: Option<time::Date>,
    queues: HashMap<String, QueueTally>,
    agents: HashMap<String, AgentTally>,
}

/// Fans CTI events out and keeps today's tallies.
pub struct EventHub {
    sender: broadcast::Sender<Arc<CtiEvent>>,
    today: Mutex<Today>,
    ended: Mutex<VecDeque<EndedCall>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    /// A hub with no listeners yet.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(BACKLOG).0,
            today: Mutex::new(Today::default()),
            ended: Mutex::new(VecDeque::new()),
        }
    }

    /// A new listener's stream of events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CtiEvent>> {
        self.sender.subscribe()
    }

    /// Counts `event` into today's tallies (`date` is today in UTC) and sends it to every
    /// listener. Never blocks: a listener that falls behind is told how much it missed.
    pub fn publish(&self, date: time::Date, event: CtiEvent) {
        if let Ok(mut today) = self.today.lock() {
            if today.date != Some(date) {
                *today = Today {
                    date: Some(date),
                    ..Today::default()
                };
            }
            tally(&mut today, &event);
        }
        if let CtiEvent::CallEnded {
            call,
            cdr_id,
            agent: Some(agent),
            ..
        } = &event
        {
            if let Ok(mut ended) = self.ended.lock() {
                if ended.len() == ENDED_CALLS_KEPT {
                    ended.pop_front();
                }
                ended.push_back(EndedCall {
                    call: *call,
                    cdr_id: cdr_id.clone(),
                    agent: agent.clone(),
                });
            }
        }
        // No listener is not an error: the tallies above are kept either way.
        let _ = self.sender.send(Arc::new(event));
    }

    /// Today's tally of `queue`.
    pub fn queue_tally(&self, queue: &str) -> QueueTally {
        self.today
            .lock()
            .ok()
            .and_then(|today| today.queues.get(queue).copied())
            .unwrap_or_default()
    }

    /// Today's tally of `agent`.
    pub fn agent_tally(&self, agent: &str) -> AgentTally {
        self.today
            .lock()
            .ok()
            .and_then(|today| today.agents.get(agent).copied())
            .unwrap_or_default()
    }

    /// The ended call `call`, if it is recent enough to be remembered.
    pub fn ended_call(&self, call: u64) -> Option<EndedCall> {
        let ended = self.ended.lock().ok()?;
        ended.iter().rev().find(|c| c.call == call).cloned()
    }

    /// Figures of every queue from the ACD's lock-free snapshots and today's tallies.
    pub fn queue_figures(&self, acd: &acd::Acd, now: std::time::Instant) -> Vec<QueueFigures> {
        let mut queues = acd.queues();
        queues.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        queues
            .iter()
            .map(|queue| {
                let today = self.queue_tally(queue.id.as_str());
                let a = &queue.agents;
                QueueFigures {
                    name: queue.id.to_string(),
                    waiting: queue.waiting,
                    longest_wait_s: queue
                        .oldest_waiting_since
                        .map(|t| now.saturating_duration_since(t).as_secs()),
                    agents: AgentsByState {
                        ready: a.ready,
                        reserved: a.reserved,
                        on_call: a.on_call,
                        wrap_up: a.wrap_up,
                        not_ready: a.not_ready,
                        logged_out: a.logged_out,
                    },
                    service_level: today.rate(today.answered_in_service_level),
                    answer_rate: today.rate(today.answered),
                    abandon_rate: today.rate(today.abandoned),
                    today,
                }
            })
            .collect()
    }
}

fn tally(today: &mut Today, event: &CtiEvent) {
    match event {
        CtiEvent::CallQueued { queue, .. } => {
            update_tally(&mut today.queues, queue, |tally| tally.queued += 1);
        }
        CtiEvent::CallAnswered {
            queue,
            agent,
            within_service_level,
            ..
        } => {
            update_tally(&mut today.queues, queue, |tally| {
                tally.answered += 1;
                if *within_service_level {
                    tally.answered_in_service_level += 1;
                }
            });
            update_tally(&mut today.agents, agent, |tally| tally.calls += 1);
        }
        CtiEvent::CallEnded {
            queue,
            outcome,
            agent,
            talk_s,
            ..
        } => {
            if *outcome == "abandoned" {
                update_tally(&mut today.queues, queue, |tally| tally.abandoned += 1);
            }
            if let Some(agent) = agent {
                update_tally(&mut today.agents, agent, |tally| tally.talk_s += talk_s);
            }
        }
        CtiEvent::AgentState {
            agent,
            previous,
            previous_s,
            ..
        } => update_tally(&mut today.agents, agent, |tally| match *previous {
            "not-ready" => tally.not_ready_s += previous_s,
            "wrap-up" => tally.wrap_up_s += previous_s,
            _ => {}
        }),
        _ => {}
    }
}

/// Updates the tally kept under `name`, made on its first use that day. Looked up by
/// reference, so a queue's or agent's name is copied once a day rather than for every event
/// (several a call).
fn update_tally<T: Default>(
    tallies: &mut HashMap<String, T>,
    name: &str,
    update: impl FnOnce(&mut T),
) {
    match tallies.get_mut(name) {
        Some(tally) => update(tally),
        None => {
            let mut tally = T::default();
            update(&mut tally);
            tallies.insert(name.to_owned(), tally);
        }
    }
}

/// The API's name for an agent state.
pub fn state_name(state: &acd::AgentState) -> &'static str {
    match state {
        acd::AgentState::LoggedOut => "logged-out",
        acd::AgentState::Ready => "ready",
        acd::AgentState::Reserved { .. } => "reserved",
        acd::AgentState::OnCall { .. } => "on-call",
        acd::AgentState::WrapUp { .. } => "wrap-up",
        acd::AgentState::NotReady { .. } => "not-ready",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(agent: &str) -> CtiEvent {
        CtiEvent::CallOffered {
            call: 7,
            agent: agent.into(),
            queue: "support".into(),
            wait_s: 3.0,
            caller: "+8613812341234".into(),
            did: "100".into(),
            ivr_path: vec!["main".into(), "2".into()],
            priority: 10,
            label: Some("VIP".into()),
        }
    }

    #[test]
    fn agents_see_only_their_own_events() {
        let alice = ApiRole::Agent("1001".into());
        assert!(offered("1001").visible_to(&alice));
        assert!(!offered("1002").visible_to(&alice));
        let queued = CtiEvent::CallQueued {
            call: 7,
            queue: "support".into(),
            caller: "1".into(),
            did: "100".into(),
            priority: 0,
            label: None,
        };
        assert!(!queued.visible_to(&alice));
        assert!(queued.visible_to(&ApiRole::Supervisor));
        let state = CtiEvent::AgentState {
            agent: "1002".into(),
            state: "ready",
            reason: None,
            previous: "logged-out",
            previous_s: 0.0,
        };
        assert!(!state.visible_to(&alice));
        assert!(state.visible_to(&ApiRole::Admin));
        let ended = CtiEvent::CallEnded {
            call: 7,
            cdr_id: "sb-1-7".into(),
            agent: None,
            queue: "support".into(),
            outcome: "abandoned",
            talk_s: 0.0,
        };
        assert!(!ended.visible_to(&alice));
        assert!(CtiEvent::Queues { queues: vec![] }.visible_to(&alice));
    }

    #[test]
    fn masking_hides_the_middle_of_the_caller_number() {
        let CtiEvent::CallOffered { caller, did, .. } = offered("1001").masked() else {
            panic!("still an offer");
        };
        assert_eq!(caller, "+86138****1234");
        assert_eq!(did, "100");
    }

    #[test]
    fn tallies_give_service_level_and_agent_figures() {
        let hub = EventHub::new();
        let mut rx = hub.subscribe();
        let day = time::macros::date!(2026 - 12 - 06);
        let answered = |within| CtiEvent::CallAnswered {
            call: 1,
            agent: "1001".into(),
            queue: "support".into(),
            wait_s: 1.0,
            within_service_level: within,
        };
        hub.publish(day, answered(true));
        hub.publish(day, answered(false));
        hub.publish(
            day,
            CtiEvent::CallEnded {
                call: 1,
                cdr_id: "sb-9-1".into(),
                agent: Some("1001".into()),
                queue: "support".into(),
                outcome: "completed",
                talk_s: 60.0,
            },
        );
        hub.publish(
            day,
            CtiEvent::CallEnded {
                call: 2,
                cdr_id: "sb-9-2".into(),
                agent: None,
                queue: "support".into(),
                outcome: "abandoned",
                talk_s: 0.0,
            },
        );
        hub.publish(
            day,
            CtiEvent::AgentState {
                agent: "1001".into(),
                state: "ready",
                reason: None,
                previous: "wrap-up",
                previous_s: 30.0,
            },
        );
        let queue = hub.queue_tally("support");
        assert_eq!(queue.answered, 2);
        assert_eq!(queue.answered_in_service_level, 1);
        assert_eq!(queue.abandoned, 1);
        assert_eq!(queue.rate(queue.answered_in_service_level), Some(1.0 / 3.0));
        let agent = hub.agent_tally("1001");
        assert_eq!(agent.calls, 2);
        assert_eq!(agent.average_handle_s(), Some(45.0));
        assert_eq!(
            hub.ended_call(1).map(|c| c.cdr_id),
            Some("sb-9-1".to_owned())
        );
        assert_eq!(hub.ended_call(2), None, "no agent, no wrap-up");
        assert!(matches!(
            rx.try_recv().map(|e| (*e).clone()),
            Ok(CtiEvent::CallAnswered { .. })
        ));
        // A new day starts from zero.
        hub.publish(day.next_day().expect("date"), answered(true));
        assert_eq!(hub.queue_tally("support").answered, 1);
    }
}
