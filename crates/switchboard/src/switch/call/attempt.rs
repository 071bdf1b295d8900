//! The call's agent attempts: one phone rung at a time, each attempt either answered or over
//! (refused, unreachable, out of ring time, its connection gone, its answer unusable). The
//! call decides what an attempt's end means — its CDR leg, its state, its ring timer, whether
//! the phone must still be told — and returns the rest for the switch to carry out.

use super::timers::CallTimer;
use super::{AgentLeg, Call, CallOutput, CallState};
use acd::OfferFailure;
use sip::dialog::copy_body;
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Response};
use sip::Peer;
use std::time::Instant;

impl Call {
    /// The attempt being rung or answered, if it is attempt number `attempt`: an event for an
    /// attempt the call already gave up is stale and changes nothing.
    fn attempt(&mut self, attempt: u32) -> Option<&mut AgentLeg> {
        self.agent_leg.as_mut().filter(|leg| leg.attempt == attempt)
    }

    /// The phone of `attempt` rings: the trunk hears ringback (the phone's own provisional,
    /// early media included, only when media is not anchored: an anchored call's early media
    /// would carry the phone's address).
    pub(super) fn agent_alerting(&mut self, attempt: u32, response: Response) -> Vec<CallOutput> {
        let anchored = self.media.is_some();
        let Some(leg) = self.attempt(attempt) else {
            return Vec::new();
        };
        leg.uac.alerting();
        if self.trunk_leg.finalized {
            return Vec::new();
        }
        vec![CallOutput::RingTrunk {
            relayed: (!anchored).then_some(response),
        }]
    }

    /// The phone of `attempt` answered with a final failure `code`.
    pub(super) fn agent_refused(
        &mut self,
        now: Instant,
        attempt: u32,
        code: u16,
    ) -> Vec<CallOutput> {
        if self.attempt(attempt).is_none() {
            return Vec::new();
        }
        let why = match code {
            486 | 600 => OfferFailure::Busy,
            408 => OfferFailure::NoAnswer,
            // The phone cannot take this call's media: another call may suit it.
            488 | 606 => OfferFailure::Incompatible,
            _ => OfferFailure::Rejected,
        };
        tracing::info!(call = self.id, attempt, code, "agent leg failed");
        // The phone's final response ended its transaction: nothing more to tell it.
        self.attempt_over(now, why, Some(code), false)
    }

    /// The INVITE of `attempt` got no final response at all (`status`: 408 for a timeout,
    /// 503 when the transport could not carry it).
    pub(super) fn agent_unreachable(
        &mut self,
        now: Instant,
        attempt: u32,
        status: u16,
    ) -> Vec<CallOutput> {
        if self.attempt(attempt).is_none() {
            return Vec::new();
        }
        self.attempt_over(now, OfferFailure::Unreachable, Some(status), false)
    }

    /// The phone of the current attempt answered: the dialog forms and the ACK goes (the leg
    /// keeps it for retransmissions of the 2xx); its SDP is checked next. A 2xx the leg
    /// cannot use changes nothing.
    pub(super) fn agent_answered(
        &mut self,
        now: Instant,
        response: Box<Response>,
        source: Peer,
        via: &str,
    ) -> Vec<CallOutput> {
        let Some(leg) = self.agent_leg.as_mut() else {
            return Vec::new();
        };
        if let Err(error) = leg.uac.answer(now, &response, source, via) {
            tracing::warn!(call = self.id, %error, "agent 2xx unusable");
            return Vec::new();
        }
        leg.accepts_info = crate::switch::in_dialog::allows(&response.headers, Method::Info);
        // Sized for both at once: collected from the Option, the Vec held one and grew
        // (reallocated) for the second on every answered call.
        let mut outputs = Vec::with_capacity(2);
        outputs.extend(leg.uac.ack().map(CallOutput::Ack));
        outputs.push(CallOutput::CheckAgentAnswer(response));
        outputs
    }

    /// The answering phone's SDP fits: caller and agent are connected. The trunk gets its 200
    /// now if Switchboard had not answered it already (with `for_trunk`, or the phone's own
    /// SDP when the media is not anchored).
    pub(super) fn agent_answer_agreed(
        &mut self,
        now: Instant,
        response: &Response,
        for_trunk: Option<Vec<u8>>,
    ) -> Vec<CallOutput> {
        self.state = CallState::Connected;
        self.answered.get_or_insert(now);
        self.audio = crate::switch::caller_media::CallerAudio::Silence;
        self.timers.cancel(CallTimer::Announce);
        self.timers.cancel(CallTimer::Ring);
        let mut outputs = Vec::new();
        if !self.trunk_leg.finalized {
            self.trunk_leg.finalized = true;
            let mut answer =
                response_to(&self.trunk_leg.invite, 200, Some(&self.trunk_leg.local_tag));
            match for_trunk {
                Some(sdp) => {
                    push_header(&mut answer.headers, "Content-Type", "application/sdp");
                    answer.body = sdp;
                }
                None => copy_body(
                    &response.headers,
                    &response.body,
                    &mut answer.headers,
                    &mut answer.body,
                ),
            }
            outputs.push(CallOutput::AnswerTrunk(Box::new(answer)));
        }
        outputs.push(CallOutput::Connected);
        outputs
    }

    /// The phone answered with SDP that does not fit the offer: hang that leg up and let
    /// another agent take the call, as if the phone had refused with 488.
    pub(super) fn agent_media_refused(&mut self, now: Instant) -> Vec<CallOutput> {
        self.attempt_over(now, OfferFailure::Incompatible, Some(488), true)
    }

    /// The ring timer fired. (It belongs to the call: each attempt moves it and an answer
    /// cancels it, so a due ring timer always concerns the attempt ringing now.)
    pub(super) fn ring_timed_out(&mut self, now: Instant) -> Vec<CallOutput> {
        if !self.is_ringing_agent() {
            return Vec::new();
        }
        tracing::info!(call = self.id, "agent did not answer in time");
        self.attempt_over(now, OfferFailure::NoAnswer, None, true)
    }

    /// The connection `flow` closed. When the phone being rung was on it (a WebSocket phone's
    /// only way in), the offer fails as unreachable now rather than at the ring timeout; an
    /// answered call is left to its media timeout or BYE.
    pub(super) fn flow_lost(&mut self, now: Instant, flow: Peer) -> Vec<CallOutput> {
        let rung_on_flow = self
            .agent_leg
            .as_ref()
            .is_some_and(|leg| leg.uac.peer == flow && !leg.is_answered());
        if !rung_on_flow {
            return Vec::new();
        }
        tracing::info!(call = self.id, agent = ?self.agent().map(ToString::to_string), %flow, "ringing phone's connection closed");
        self.attempt_over(now, OfferFailure::Unreachable, None, true)
    }

    /// An agent's phone is being rung and has not answered.
    fn is_ringing_agent(&self) -> bool {
        self.agent_leg
            .as_ref()
            .is_some_and(|leg| !leg.is_answered())
    }

    /// The current attempt ends without connecting: its leg goes into the record, the call
    /// waits in the queue again, and the ACD hears why (`hang_up`: the phone must still be
    /// sent a CANCEL or BYE).
    fn attempt_over(
        &mut self,
        now: Instant,
        why: OfferFailure,
        sip_cause: Option<u16>,
        hang_up: bool,
    ) -> Vec<CallOutput> {
        let Some(leg) = self.agent_leg.take() else {
            return Vec::new();
        };
        self.close_attempt(now, &leg, sip_cause);
        self.state = CallState::Queued;
        self.timers.cancel(CallTimer::Ring);
        let agent = leg.agent.clone();
        vec![
            CallOutput::AgentLegGone {
                leg: Box::new(leg),
                hang_up,
                reason: None,
            },
            CallOutput::OfferFailed { agent, why },
        ]
    }

    /// An agent attempt ended without connecting (or was passed on): keep it for the record.
    pub(in crate::switch) fn close_attempt(
        &mut self,
        now: Instant,
        leg: &AgentLeg,
        sip_cause: Option<u16>,
    ) {
        let Some(offered) = self.last_offered else {
            return;
        };
        let answered = leg.uac.answered_at();
        let record = self.attempt_record(leg, offered, now, sip_cause);
        self.failed_ring_time += answered.unwrap_or(now).saturating_duration_since(offered);
        self.ended_legs.push(record);
    }

    /// The CDR leg of an agent attempt rung at `offered` and over at `ended`.
    pub(in crate::switch) fn attempt_record(
        &self,
        leg: &AgentLeg,
        offered: Instant,
        ended: Instant,
        sip_cause: Option<u16>,
    ) -> cdr::Leg {
        cdr::Leg {
            role: cdr::LegRole::Agent,
            call_id: leg.call_id().to_owned(),
            peer: leg.uac.peer.to_string(),
            started: self.clock.at(offered),
            answered: leg.uac.answered_at().map(|a| self.clock.at(a)),
            ended: self.clock.at(ended),
            sip_cause,
            party: Some(leg.agent.to_string()),
            queue: None,
        }
    }
}
