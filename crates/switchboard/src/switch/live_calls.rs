//! Calls as the API sees them: the live list (`GET /api/calls`) and the actions a person takes
//! on a call from a desktop (hold, resume, blind transfer). Both reach call control as
//! commands, answered from the call table the core task owns: a list is built only when asked.

use super::call::{Call, CallNumber, CallState};
use super::transfer::{resolve, Refusal};
use super::Switch;
use media::{Leg, MediaCommand};
use serde::Serialize;
use std::time::Instant;

/// One live call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallView {
    /// Switchboard's id for the call (as in `X-Switchboard-Call`).
    pub id: CallNumber,
    /// `inbound` (a caller reached Switchboard) or `outbound` (a call out).
    pub direction: &'static str,
    /// On a call out: `dial-out` (an agent's own), `callback` or `campaign`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<&'static str>,
    /// The number dialled (on a call out: the customer's number).
    pub did: String,
    /// The caller's number (masked for roles that must not see it).
    pub caller: String,
    /// The queue it is in or came through (empty while in the IVR before any queue).
    pub queue: String,
    /// `ivr`, `queued`, `ringing` (the agent is rung), `dialling` (a call out's customer is
    /// rung), `connected` or `survey` (post-call survey).
    pub state: &'static str,
    /// The agent rung or connected.
    pub agent: Option<String>,
    /// Someone holds the call.
    pub on_hold: bool,
    /// Seconds since the call arrived.
    pub age_s: f64,
    /// Seconds waited for an agent (until the first answer, or until now).
    pub wait_s: f64,
    /// Seconds since the first agent answered.
    pub talk_s: f64,
    /// The caller's priority in its queue.
    pub priority: i32,
    /// Tag from the caller's priority list, or the label the caller lookup gave (on a
    /// campaign call: the campaign's name).
    pub label: Option<String>,
    /// The customer's name, from the caller lookup.
    pub customer_name: Option<String>,
    /// The call's legs now: the trunk, the agent's if one is rung or connected, and any
    /// supervisor's.
    pub legs: Vec<LegView>,
    /// Transfers so far.
    pub transfers: usize,
}

impl CallView {
    /// The customer's number: the caller on a call in, the number dialled on a call out (its
    /// `caller` is the number Switchboard sends as caller ID, the same for every customer).
    pub fn customer_number(&self) -> &str {
        if self.direction == "outbound" {
            &self.did
        } else {
            &self.caller
        }
    }
}

/// One leg of a live call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LegView {
    /// `trunk`, `agent`, `consult` (a colleague the agent consults) or `supervisor`.
    pub role: &'static str,
    /// The trunk's name, or the agent's or supervisor's id.
    pub party: String,
    /// `ringing` or `answered`.
    pub state: &'static str,
    /// A supervisor's mode (`listen`, `whisper`, `barge`) or a consult's stage (`consult`,
    /// `conference`, `transferred`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
}

/// What a person may do to a call through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallAction {
    /// Music on hold to the caller; the agent hears nothing.
    Hold,
    /// Back to talking.
    Resume,
    /// Blind transfer to an agent id, a queue or a number.
    Transfer {
        /// As the API was given it.
        to: String,
    },
    /// Put the caller on hold and ring this agent's phone to talk to the call's agent.
    Consult {
        /// The consulted agent's id (or SIP user).
        to: String,
    },
    /// Consult `to`, then complete as soon as they answer.
    AttendedTransfer {
        /// The consulted agent's id (or SIP user).
        to: String,
    },
    /// Bridge the caller to the consulted agent; the first agent leaves.
    Complete,
    /// End the consult; the caller is back with the first agent.
    Cancel,
    /// Caller, agent and consulted agent all hear each other.
    Conference,
    /// Ring a supervisor's phone and add it to the call in `mode`.
    Supervise {
        /// The supervisor's agent id.
        supervisor: String,
        /// Listen, whisper or barge.
        mode: super::supervision::MonitorMode,
    },
}

/// Why an action was not carried out (mapped to a JSON error with a stable code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallActionError {
    /// No call ever had this id.
    UnknownCall,
    /// The call has ended.
    Ended,
    /// A call out (an agent's own, a callback, a campaign attempt): the desktop's actions are
    /// for inbound calls.
    CallOut,
    /// The action needs a call connected to an agent with anchored media.
    NotConnected,
    /// The transfer target was refused.
    Transfer(Refusal),
    /// The supervision could not start.
    Supervise(super::supervision::SuperviseRefusal),
    /// The consult action was refused.
    Consult(super::consult::ConsultRefusal),
}

impl Switch {
    /// The calls in progress, oldest first.
    pub fn live_calls(&self, now: Instant) -> Vec<CallView> {
        let mut calls: Vec<CallView> = self.calls.values().map(|c| view(c, now)).collect();
        calls.extend(self.live_calls_out(now));
        calls.sort_by_key(|c| c.id);
        calls
    }

    /// Carries out `action` on call `id`; returns the call as it is afterwards.
    pub fn act_on_call(
        &mut self,
        now: Instant,
        id: CallNumber,
        action: CallAction,
    ) -> Result<(), CallActionError> {
        if self.is_call_out_in_progress(id) {
            return Err(CallActionError::CallOut);
        }
        let call = self.calls.get(&id).ok_or(if id < self.next_call {
            CallActionError::Ended
        } else {
            CallActionError::UnknownCall
        })?;
        let ready = call.state.is_connected() && call.media.as_ref().is_some_and(|m| m.started);
        if !ready {
            return Err(CallActionError::NotConnected);
        }
        let consult_step = matches!(
            action,
            CallAction::Complete | CallAction::Cancel | CallAction::Conference
        );
        if !consult_step {
            // Everything else acts on the conversation with the call's (first) agent: not
            // while a consult changes who hears whom, nor once that agent has left.
            if call.consult.is_some() && call.agent_leg.is_some() {
                return Err(CallActionError::Consult(
                    super::consult::ConsultRefusal::InProgress,
                ));
            }
            // (A supervisor may also join the colleague an attended transfer passed the
            // call to: supervision.rs decides.)
            let supervise = matches!(action, CallAction::Supervise { .. });
            let possible = self.consult_possible(id) || (supervise && self.supervisable(id));
            if !possible {
                return Err(CallActionError::NotConnected);
            }
        }
        match action {
            CallAction::Hold => self.api_hold(now, id, true),
            CallAction::Resume => self.api_hold(now, id, false),
            CallAction::Transfer { to } => {
                let from_agent = call.agent().cloned();
                let trunk = call.trunk.clone();
                let refer_to = format!("<sip:{to}@localhost>");
                let (target, dialled) =
                    resolve(&self.config, &trunk, &["localhost".into()], &refer_to)
                        .map_err(CallActionError::Transfer)?;
                self.check_target(&target, from_agent.as_ref())
                    .map_err(CallActionError::Transfer)?;
                self.metrics
                    .transfers
                    .with_label_values(&["blind", "accepted"])
                    .inc();
                self.transfer(now, id, target, dialled);
            }
            CallAction::Consult { to } => self
                .start_consult(now, id, &to, false)
                .map_err(CallActionError::Consult)?,
            CallAction::AttendedTransfer { to } => self
                .start_consult(now, id, &to, true)
                .map_err(CallActionError::Consult)?,
            CallAction::Complete => self
                .complete_consult(now, id)
                .map_err(CallActionError::Consult)?,
            CallAction::Cancel => self
                .cancel_consult(now, id)
                .map_err(CallActionError::Consult)?,
            CallAction::Conference => self.conference(now, id).map_err(CallActionError::Consult)?,
            CallAction::Supervise { supervisor, mode } => self
                .supervise_from_api(now, id, &supervisor, mode)
                .map_err(CallActionError::Supervise)?,
        }
        Ok(())
    }

    /// Holds (or resumes) a connected call from the API: the caller hears the queue's music
    /// and the agent's phone gets nothing meanwhile; neither phone is re-INVITEd.
    fn api_hold(&mut self, now: Instant, id: CallNumber, hold: bool) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.api_hold == hold {
            return;
        }
        call.api_hold = hold;
        call.hold.set(now, hold);
        let agent_direction = call
            .media
            .as_ref()
            .map_or(media::sdp::Direction::SendRecv, |m| m.direction(Leg::Agent));
        tracing::info!(call = id, hold, "hold from the API");
        let direction = if hold {
            media::sdp::Direction::Inactive
        } else {
            agent_direction
        };
        self.media.command(
            id,
            MediaCommand::Direction {
                leg: Leg::Agent,
                direction,
            },
        );
        self.agent_hold_changed(id, hold);
    }
}

fn view(call: &Call, now: Instant) -> CallView {
    let state = match &call.state {
        // The agent has hung up and the caller is keying a score (or hearing goodbye).
        CallState::Survey(_) => "survey",
        CallState::Farewell(_) if call.agent_left_for_survey.is_some() => "survey",
        CallState::Ivr(_) | CallState::Voicemail | CallState::Farewell(_) => "ivr",
        CallState::Queued => "queued",
        CallState::Offering => "ringing",
        CallState::Connected => "connected",
    };
    let mut legs = vec![LegView {
        role: "trunk",
        party: call.trunk.clone(),
        state: "answered",
        mode: None,
    }];
    if !call.trunk_leg.finalized {
        legs[0].state = "ringing";
    }
    if let Some(leg) = &call.agent_leg {
        legs.push(LegView {
            role: "agent",
            party: leg.agent.to_string(),
            state: if leg.is_answered() {
                "answered"
            } else {
                "ringing"
            },
            mode: None,
        });
    }
    if let Some(consult) = &call.consult {
        legs.push(LegView {
            role: "consult",
            party: consult.target.clone(),
            state: if consult.uac.is_answered() {
                "answered"
            } else {
                "ringing"
            },
            mode: Some(match consult.stage {
                super::consult::ConsultStage::Consulting => "consult",
                super::consult::ConsultStage::Conference => "conference",
                super::consult::ConsultStage::Transferred => "transferred",
            }),
        });
    }
    legs.extend(call.monitors.iter().map(|monitor| LegView {
        role: "supervisor",
        party: monitor.supervisor.clone(),
        state: if monitor.answered {
            "answered"
        } else {
            "ringing"
        },
        mode: Some(monitor.mode.label()),
    }));
    let since = |t: Instant| now.saturating_duration_since(t).as_secs_f64();
    CallView {
        id: call.id,
        direction: "inbound",
        origin: None,
        did: call.did.clone(),
        caller: call.caller.clone(),
        queue: call.queue.clone(),
        state,
        agent: call.talking_agent(),
        on_hold: call.hold.is_holding(),
        age_s: since(call.arrived),
        wait_s: call
            .answered
            .unwrap_or(now)
            .saturating_duration_since(call.enqueued_at())
            .as_secs_f64(),
        talk_s: call.answered.map_or(0.0, since),
        priority: call.priority,
        label: call.label.clone(),
        customer_name: call.customer_name.clone(),
        legs,
        transfers: call.transfers.len(),
    }
}

/// A caller number as a role that may not see it in full gets it: the first three and the
/// last four characters, the rest starred (`+86138****1234` keeps more when it is long).
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let keep_head = (chars.len() - 8).max(3);
    let head: String = chars[..keep_head].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - keep_head - 4))
}

#[cfg(test)]
mod tests {
    use super::mask_number;

    #[test]
    fn numbers_are_masked_in_the_middle() {
        assert_eq!(mask_number("+8613812341234"), "+86138****1234");
        assert_eq!(mask_number("15551234567"), "155****4567");
        assert_eq!(mask_number("2000"), "****");
    }
}
