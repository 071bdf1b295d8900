//! What a call is told and what it asks for in return. The switch finds the call an event
//! belongs to and hands the event over with [`Call::handle`]; the call changes its own state
//! and returns what must happen outside it (messages on the wire, the ACD, media) for the
//! switch to carry out in `call_driver.rs` — the split quinn makes between its `Endpoint` and
//! each `Connection`. A call can therefore be driven and checked on its own, with no sockets
//! and no switch.
//!
//! Through here: the agent attempts, every request inside the call's dialogs (what the call
//! answers itself, and what it hands back: relaying, renegotiating anchored media, a
//! transfer), the switch ending a call (`Call::end` returns the same outputs), the ACD moving
//! it to another queue, and the caller's keys, prompts and timers while Switchboard speaks to
//! them (IVR, waiting, voicemail, survey). Transfers, consults and supervision, which act on
//! more than one call and on the ACD, are orchestrated by `Switch` methods that reach the call
//! through the call index.

use super::dialog_requests::DialogRefusal;
use super::hangup::SurveyPlan;
use super::{AgentLeg, Call, Side};
use crate::ivr::{IvrAction, IvrSession, PromptRef};
use crate::switch::b2bua::EndCause;
use acd::{AgentId, OfferFailure};
use sip::rsip::{Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// An event for one call.
#[derive(Debug)]
pub enum CallInput {
    /// The phone rung by attempt `attempt` sent a provisional response above 100.
    AgentAlerting { attempt: u32, response: Response },
    /// The phone of attempt `attempt` refused with final response `code` (not 2xx).
    AgentRefused { attempt: u32, code: u16 },
    /// The INVITE of attempt `attempt` got no final response; `status` stands for why (408
    /// nobody answered, 503 the transport could not carry it).
    AgentUnreachable { attempt: u32, status: u16 },
    /// The phone of the current attempt answered with `response` (a 2xx) from `source`;
    /// `via`: the Via header for the ACK.
    AgentAnswered {
        response: Box<Response>,
        source: Peer,
        via: String,
    },
    /// The media plane accepted the answering phone's SDP; `for_trunk`: the SDP the trunk is
    /// answered with, when Switchboard anchors the media (else the phone's own is passed on).
    AgentAnswerAgreed {
        response: Box<Response>,
        for_trunk: Option<Vec<u8>>,
    },
    /// The agent's phone answered with SDP that does not fit the offer.
    AgentMediaRefused,
    /// The call's ring timer fired.
    RingTimeout,
    /// A connection closed (the phone being rung may have been on it).
    FlowLost { flow: Peer },
    /// `side` sent `request` in its dialog (transaction `key`; the switch matched its tags).
    /// `survey`: the queue's post-call survey, for a BYE from the agent.
    Request {
        side: Side,
        key: TransactionKey,
        request: Box<Request>,
        survey: Option<SurveyPlan>,
    },
    /// The switch ends the call (queue timeout or refusal, drain, silent media …).
    End { cause: EndCause },
    /// The ACD moved the waiting call to queue `to` (its overflow rule).
    Overflowed { to: String },
    /// The caller enters the IVR `session` (built by the switch from the IVR's
    /// configuration), which asked for `actions` on starting.
    IvrStarted {
        session: Box<IvrSession>,
        actions: Vec<IvrAction>,
    },
    /// The caller pressed `digit`; `callback_key`: the call's queue's key that asks for a
    /// callback, if it has one.
    CallerPressed {
        digit: char,
        callback_key: Option<char>,
    },
    /// The prompts played to the caller with `token` have finished.
    CallerPlaybackFinished { token: u64 },
    /// The IVR's digit timer fired.
    IvrTimeout,
    /// The voicemail recording reached its longest length.
    VoicemailLimit,
    /// The caller keyed no survey score in time.
    SurveyTimeout,
}

/// What the call asks the switch to do.
#[derive(Debug)]
pub enum CallOutput {
    /// Send 180 to the trunk; `relayed`: the phone's provisional to pass on instead, with its
    /// early media (only when the call's media is not anchored).
    RingTrunk { relayed: Option<Response> },
    /// The attempt is no longer the call's: stop routing its messages to the call and, when
    /// `hang_up`, end it on the wire (CANCEL while it rings, BYE once answered, with `reason`
    /// as its RFC 3326 Reason).
    AgentLegGone {
        leg: Box<AgentLeg>,
        hang_up: bool,
        reason: Option<&'static str>,
    },
    /// The offer to `agent` did not connect: the ACD frees the agent (as `why` says) and
    /// offers the call again.
    OfferFailed { agent: AgentId, why: OfferFailure },
    /// Send the ACK for the answering phone's 2xx (outside any transaction).
    Ack(sip::Transmit),
    /// Check the answering phone's SDP against the offer (the media plane's part), then
    /// report `AgentAnswerAgreed` or `AgentMediaRefused`.
    CheckAgentAnswer(Box<Response>),
    /// Answer the trunk's INVITE with this 200 (the switch adds its Contact, Allow and
    /// session timer).
    AnswerTrunk(Box<Response>),
    /// Caller and agent are talking: count the answer, start recording, tell the ACD.
    Connected,
    /// Send `request` (one whose answer needs no action, such as a BYE) to `peer`.
    Request { request: Request, peer: Peer },
    /// The call's media session is no longer needed: stop it and free its ports.
    MediaFinished(Box<crate::switch::media_plane::CallMedia>),
    /// The call's record, to be made durable; the responses in `held` go out only then.
    Record {
        record: Box<cdr::CallRecord>,
        held: Vec<(TransactionKey, Response)>,
    },
    /// The call left the ACD: hung up after an agent answered (`talking`), else abandoned.
    SettleWithAcd { talking: bool },
    /// Answer a request of the call's at once.
    Respond {
        key: TransactionKey,
        response: Response,
    },
    /// End the call with `cause` (its supervisors and consulted colleague first, then
    /// [`Call::end`]); the responses in `held` go out once its record is durable.
    End {
        cause: EndCause,
        held: Vec<(TransactionKey, Response)>,
    },
    /// Play `prompt` to the caller, then end the call with `cause`.
    SayGoodbye {
        prompt: &'static str,
        cause: EndCause,
    },
    /// The first agent left a conference: caller and consulted colleague go on together.
    FirstAgentLeaves,
    /// The agent's media leg is over: the session stops relaying to it.
    DropAgentMedia,
    /// Play `clips` to the caller once; their end is reported with `token`.
    PlayToCaller {
        clips: Vec<std::sync::Arc<media::AudioClip>>,
        token: u64,
    },
    /// Turn `request` away, with the status and Warning of `why`.
    Refuse {
        key: TransactionKey,
        request: Box<Request>,
        why: DialogRefusal,
    },
    /// Relay `request` from `from` to the other leg, and its answer back.
    Relay {
        from: Side,
        key: TransactionKey,
        request: Box<Request>,
    },
    /// Answer `side`'s new offer (or refresh) on the anchored media: only the media session
    /// learns of it, the other leg does not.
    Reoffer {
        side: Side,
        key: TransactionKey,
        request: Box<Request>,
    },
    /// `side` asks for a transfer.
    Refer {
        side: Side,
        key: TransactionKey,
        request: Box<Request>,
    },
    /// Answer a keep-alive OPTIONS with 200 and Switchboard's capabilities.
    KeepAlive {
        key: TransactionKey,
        request: Box<Request>,
    },
    /// The caller pressed a key in an INFO: the switch hands it back as
    /// `CallInput::CallerPressed` with the call's queue's callback key.
    CallerPressed(char),
    /// Send the agent's key press to the trunk as RFC 4733 events.
    KeyToTrunk {
        digit: media::dtmf::DtmfDigit,
        duration_ms: u32,
    },
    /// Play these IVR prompts to the caller (replacing what plays); their end is reported
    /// with `token`.
    PlayPrompts { prompts: Vec<PromptRef>, token: u64 },
    /// Stop what the caller hears (a key barged into a prompt).
    StopCallerPlayback,
    /// One of the call's timers was set for this instant: wake the call then.
    Wake(Instant),
    /// Put the call in its queue (`Call::queue`).
    Enqueue,
    /// Play the voicemail greeting of the call's queue, then record.
    StartVoicemail,
    /// The caller asked for a callback: leave the queue, book it, confirm and hang up.
    RequestCallback,
    /// The waiting caller's announcement ended: music on hold again.
    PlayHoldMusic,
    /// The voicemail greeting ended: record the caller's message.
    RecordVoicemail,
}

impl Call {
    /// Handles `input` at `now`; returns what the switch must do for it, in order.
    pub fn handle(&mut self, now: Instant, input: CallInput) -> Vec<CallOutput> {
        match input {
            CallInput::AgentAlerting { attempt, response } => {
                self.agent_alerting(attempt, response)
            }
            CallInput::AgentRefused { attempt, code } => self.agent_refused(now, attempt, code),
            CallInput::AgentUnreachable { attempt, status } => {
                self.agent_unreachable(now, attempt, status)
            }
            CallInput::AgentAnswered {
                response,
                source,
                via,
            } => self.agent_answered(now, response, source, &via),
            CallInput::AgentAnswerAgreed {
                response,
                for_trunk,
            } => self.agent_answer_agreed(now, &response, for_trunk),
            CallInput::AgentMediaRefused => self.agent_media_refused(now),
            CallInput::RingTimeout => self.ring_timed_out(now),
            CallInput::FlowLost { flow } => self.flow_lost(now, flow),
            CallInput::Request {
                side,
                key,
                request,
                survey,
            } => self.dialog_request(now, side, key, *request, survey),
            CallInput::End { cause } => self.end_requested(cause),
            CallInput::Overflowed { to } => {
                tracing::info!(call = self.id, queue = %to, "call overflowed");
                self.queue = to;
                Vec::new()
            }
            CallInput::IvrStarted { session, actions } => self.enter_ivr(now, session, actions),
            CallInput::CallerPressed {
                digit,
                callback_key,
            } => self.caller_pressed(now, digit, callback_key),
            CallInput::CallerPlaybackFinished { token } => {
                self.caller_playback_finished(now, token)
            }
            CallInput::IvrTimeout => self.ivr_timed_out(now),
            CallInput::VoicemailLimit => self.voicemail_limit_reached(),
            CallInput::SurveyTimeout => self.survey_timed_out(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::timers::CallTimer;
    use super::super::CallState;
    use super::*;
    use std::time::Duration;

    /// The attempt left the call, and the ACD was told why.
    fn assert_attempt_over(outputs: &[CallOutput], hang_up: bool, why: OfferFailure) {
        assert_eq!(outputs.len(), 2, "{outputs:?}");
        assert!(
            matches!(&outputs[0], CallOutput::AgentLegGone { leg, hang_up: h, reason: None }
                if *h == hang_up && leg.agent.to_string() == "1001"),
            "{outputs:?}"
        );
        assert!(
            matches!(&outputs[1], CallOutput::OfferFailed { agent, why: w }
                if *w == why && agent.to_string() == "1001"),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_ringing_phone_rings_the_trunk_with_its_own_provisional_when_media_is_not_anchored() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let response = provisional(&call, 180);
        let outputs = call.handle(
            t0,
            CallInput::AgentAlerting {
                attempt: 1,
                response,
            },
        );
        assert!(
            matches!(&outputs[..], [CallOutput::RingTrunk { relayed: Some(r) }]
                if r.status_code.code() == 180),
            "{outputs:?}"
        );
        let leg = call.agent_leg.as_ref().expect("still ringing");
        assert!(matches!(
            leg.uac.state(),
            crate::switch::uac_leg::UacState::Ringing
        ));

        // Once the trunk has its final answer, a phone's ringing is not passed on.
        call.trunk_leg.finalized = true;
        let response = provisional(&call, 183);
        let outputs = call.handle(
            t0,
            CallInput::AgentAlerting {
                attempt: 1,
                response,
            },
        );
        assert!(outputs.is_empty(), "{outputs:?}");
    }

    #[test]
    fn a_refusal_ends_the_attempt_records_its_leg_and_tells_the_acd_why() {
        let s = Duration::from_secs;
        for (code, why) in [
            (486, OfferFailure::Busy),
            (600, OfferFailure::Busy),
            (408, OfferFailure::NoAnswer),
            (488, OfferFailure::Incompatible),
            (606, OfferFailure::Incompatible),
            (603, OfferFailure::Rejected),
            (480, OfferFailure::Rejected),
        ] {
            let t0 = Instant::now();
            let mut call = arrived(t0);
            ring(&mut call, t0 + s(1), 1);
            let outputs = call.handle(t0 + s(5), CallInput::AgentRefused { attempt: 1, code });
            // The phone's final response ended its transaction: nothing is sent to it.
            assert_attempt_over(&outputs, false, why);
            assert!(matches!(call.state, CallState::Queued), "{code}");
            assert!(call.agent_leg.is_none());
            assert_eq!(call.timers.deadline(CallTimer::Ring), None);
            assert_eq!(call.failed_ring_time, s(4));
            let [leg] = &call.ended_legs[..] else {
                panic!("one leg recorded for {code}: {:?}", call.ended_legs)
            };
            assert_eq!(leg.sip_cause, Some(code));
            assert_eq!(leg.party.as_deref(), Some("1001"));
            assert_eq!(leg.started.unix_timestamp(), 1_800_000_001);
            assert_eq!(leg.ended.unix_timestamp(), 1_800_000_005);
            assert_eq!(leg.answered, None);
        }
    }

    #[test]
    fn events_for_an_attempt_already_given_up_change_nothing() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        ring(&mut call, t0 + s(20), 2);
        let stale_ringing = provisional(&call, 180);
        for input in [
            CallInput::AgentAlerting {
                attempt: 1,
                response: stale_ringing,
            },
            CallInput::AgentRefused {
                attempt: 1,
                code: 486,
            },
            CallInput::AgentUnreachable {
                attempt: 1,
                status: 408,
            },
        ] {
            let outputs = call.handle(t0 + s(25), input);
            assert!(outputs.is_empty(), "{outputs:?}");
        }
        assert_eq!(call.agent_leg.as_ref().map(|l| l.attempt), Some(2));
        assert!(call.ended_legs.is_empty());
        assert_eq!(
            call.timers.deadline(CallTimer::Ring),
            Some(t0 + s(20) + RING_TIME)
        );
    }

    #[test]
    fn the_ring_timer_cancels_a_ringing_phone_but_not_an_answered_one() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let outputs = call.handle(t0 + RING_TIME, CallInput::RingTimeout);
        assert_attempt_over(&outputs, true, OfferFailure::NoAnswer);
        assert_eq!(call.ended_legs.len(), 1);
        assert_eq!(call.ended_legs[0].sip_cause, None);

        // The next attempt is answered just as its ring timer comes due.
        ring(&mut call, t0 + s(30), 2);
        phone_answers(&mut call, t0 + s(35));
        let outputs = call.handle(t0 + s(30) + RING_TIME, CallInput::RingTimeout);
        assert!(outputs.is_empty(), "{outputs:?}");
        assert!(call.agent_leg.is_some());
    }

    #[test]
    fn a_closed_connection_fails_the_offer_only_when_the_phone_rung_was_on_it() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let elsewhere = Peer::udp("127.0.0.1:6002".parse().expect("addr"));
        let outputs = call.handle(t0, CallInput::FlowLost { flow: elsewhere });
        assert!(outputs.is_empty(), "{outputs:?}");
        let outputs = call.handle(t0, CallInput::FlowLost { flow: phone_peer() });
        assert_attempt_over(&outputs, true, OfferFailure::Unreachable);
    }

    #[test]
    fn an_unreachable_phone_logs_its_cause_and_a_refused_answer_is_hung_up() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let outputs = call.handle(
            t0 + s(32),
            CallInput::AgentUnreachable {
                attempt: 1,
                status: 408,
            },
        );
        assert_attempt_over(&outputs, false, OfferFailure::Unreachable);
        assert_eq!(call.ended_legs[0].sip_cause, Some(408));

        ring(&mut call, t0 + s(40), 2);
        let outputs = call.handle(t0 + s(41), CallInput::AgentMediaRefused);
        assert_attempt_over(&outputs, true, OfferFailure::Incompatible);
        assert_eq!(call.ended_legs[1].sip_cause, Some(488));
        assert!(matches!(call.state, CallState::Queued));
    }

    fn end(call: &mut Call, at: Instant, cause: EndCause) -> Vec<CallOutput> {
        call.end(at, &cause, None, Vec::new(), |_| {
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKend".to_owned()
        })
    }

    fn header<'m>(message: &'m sip::rsip::Headers, name: &str) -> Option<&'m str> {
        sip::headers::header_value(message, name)
    }

    use crate::switch::b2bua::EndCause;

    #[test]
    fn a_caller_who_cancels_while_an_agent_rings_gets_487_after_the_record_and_the_phone_a_cancel()
    {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0 + s(3), 1);
        let outputs = end(&mut call, t0 + s(8), EndCause::CallerCancel);
        let [CallOutput::Record { record, held }, CallOutput::AgentLegGone {
            hang_up: true,
            reason: None,
            ..
        }, CallOutput::SettleWithAcd { talking: false }] = &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        // The trunk's 487 waits for the record to be durable.
        let [(key, response)] = &held[..] else {
            panic!("{held:?}")
        };
        assert_eq!(*key, call.trunk_leg.server_key);
        assert_eq!(response.status_code.code(), 487);
        assert_eq!(header(&response.headers, "Warning"), None);
        assert_eq!(
            record.disposition,
            cdr::Disposition::Abandoned.classify(8.0)
        );
        assert_eq!(record.hangup_side, cdr::HangupSide::Caller);
        assert_eq!(record.sip_cause, Some(487));
        let roles: Vec<_> = record
            .legs
            .iter()
            .map(|l| (l.role, l.party.clone()))
            .collect();
        assert_eq!(
            roles,
            [
                (cdr::LegRole::Trunk, Some("carrier".to_owned())),
                (cdr::LegRole::Agent, Some("1001".to_owned()))
            ]
        );
        assert_eq!(record.ring_s, 5.0);
        assert_eq!(record.id, format!("sb-1800000000-{}", call.id));
    }

    #[test]
    fn an_agent_who_hangs_up_is_not_sent_a_bye_and_the_caller_is() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        connect(&mut call, t0 + s(4));
        let outputs = end(&mut call, t0 + s(64), EndCause::AgentHangup);
        let [CallOutput::Request { request, peer }, CallOutput::Record { record, held }, CallOutput::AgentLegGone { hang_up: false, .. }, CallOutput::SettleWithAcd { talking: true }] =
            &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        assert_eq!(request.method, sip::rsip::Method::Bye);
        assert_eq!(*peer, trunk_peer());
        assert_eq!(header(&request.headers, "Reason"), None);
        assert!(held.is_empty(), "{held:?}");
        assert_eq!(record.disposition, cdr::Disposition::Answered);
        assert_eq!(record.hangup_side, cdr::HangupSide::Agent);
        assert_eq!(record.talk_s, 60.0);
        assert_eq!(record.wait_s, 4.0);
    }

    #[test]
    fn a_shutdown_tells_both_sides_why_and_an_unanswered_caller_when_to_come_back() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        connect(&mut call, t0 + s(2));
        let outputs = end(&mut call, t0 + s(10), EndCause::Shutdown);
        let [CallOutput::Request { request, .. }, CallOutput::Record { .. }, CallOutput::AgentLegGone {
            hang_up: true,
            reason: Some(reason),
            ..
        }, CallOutput::SettleWithAcd { talking: true }] = &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        assert_eq!(header(&request.headers, "Reason"), Some(*reason));
        assert!(reason.contains("shutdown"), "{reason}");

        let mut waiting = arrived(t0);
        let outputs = end(&mut waiting, t0 + s(10), EndCause::Shutdown);
        let [CallOutput::Record { record, held }, CallOutput::SettleWithAcd { talking: false }] =
            &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        let [(_, response)] = &held[..] else {
            panic!("{held:?}")
        };
        assert_eq!(response.status_code.code(), 503);
        assert!(header(&response.headers, "Retry-After").is_some());
        assert!(header(&response.headers, "Warning").is_some_and(|w| w.contains("shutting down")));
        assert_eq!(record.disposition, cdr::Disposition::Rejected);
    }

    fn answered(response: &Response) -> CallInput {
        CallInput::AgentAnswered {
            response: Box::new(response.clone()),
            source: phone_peer(),
            via: ACK_VIA.to_owned(),
        }
    }

    #[test]
    fn an_answer_is_acked_checked_and_only_then_connects_the_caller() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let ok = phone_ok(&call, "INVITE, ACK, BYE, INFO", "v=0\r\n");
        let outputs = call.handle(t0 + s(3), answered(&ok));
        let [CallOutput::Ack(ack), CallOutput::CheckAgentAnswer(checked)] = &outputs[..] else {
            panic!("{outputs:?}")
        };
        assert!(String::from_utf8_lossy(&ack.data).starts_with("ACK sip:1001@127.0.0.1:6001"));
        assert_eq!(ack.peer, phone_peer());
        assert_eq!(checked.body, ok.body);
        let leg = call.agent_leg.as_ref().expect("the attempt");
        assert!(leg.is_answered() && leg.accepts_info);
        // Not connected until the media plane has agreed to the SDP.
        assert!(matches!(call.state, CallState::Offering));

        let outputs = call.handle(
            t0 + s(3),
            CallInput::AgentAnswerAgreed {
                response: Box::new(ok),
                for_trunk: Some(b"anchored".to_vec()),
            },
        );
        let [CallOutput::AnswerTrunk(answer), CallOutput::Connected] = &outputs[..] else {
            panic!("{outputs:?}")
        };
        assert_eq!(answer.status_code.code(), 200);
        assert_eq!(answer.body, b"anchored");
        assert_eq!(
            header(&answer.headers, "Content-Type"),
            Some("application/sdp")
        );
        assert!(call.state.is_connected() && call.trunk_leg.finalized);
        assert_eq!(call.answered, Some(t0 + s(3)));
        assert_eq!(call.timers.deadline(CallTimer::Ring), None);
    }

    #[test]
    fn a_caller_already_answered_by_switchboard_gets_no_second_200() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        call.trunk_leg.finalized = true;
        ring(&mut call, t0, 1);
        let ok = phone_ok(&call, "INVITE, ACK, BYE", "");
        let outputs = call.handle(t0, answered(&ok));
        assert_eq!(outputs.len(), 2, "{outputs:?}");
        assert!(!call.agent_leg.as_ref().is_some_and(|l| l.accepts_info));
        let outputs = call.handle(
            t0,
            CallInput::AgentAnswerAgreed {
                response: Box::new(ok),
                for_trunk: None,
            },
        );
        assert!(
            matches!(&outputs[..], [CallOutput::Connected]),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_second_2xx_for_an_answered_attempt_changes_nothing() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let ok = phone_ok(&call, "INVITE, ACK, BYE", "");
        assert_eq!(call.handle(t0, answered(&ok)).len(), 2);
        let outputs = call.handle(t0, answered(&ok));
        assert!(outputs.is_empty(), "{outputs:?}");
        assert!(call.agent_leg.as_ref().is_some_and(|l| l.is_answered()));
    }
}
