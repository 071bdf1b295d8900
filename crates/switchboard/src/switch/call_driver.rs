//! The switch's side of `Call::handle`: feeding a call the events that belong to it and
//! carrying out what it returns (messages on the wire, the ACD, wake-ups for its timers).

use super::call::timers::CallTimer;
use super::call::{CallInput, CallNumber, CallOutput};
use super::Switch;
use acd::{AgentId, OfferFailure};
use std::time::Instant;

impl Switch {
    /// Hands `input` to call `id` (if it still exists) and carries out its outputs, the ACD
    /// actions they lead to included.
    pub(super) fn call_input(&mut self, now: Instant, id: CallNumber, input: CallInput) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let outputs = call.handle(now, input);
        let actions = self.apply_call_outputs(now, id, outputs);
        self.apply_acd(now, actions);
    }

    /// Carries out what call `id` asked for; returns the ACD's answers to run next.
    pub(super) fn apply_call_outputs(
        &mut self,
        now: Instant,
        id: CallNumber,
        outputs: Vec<CallOutput>,
    ) -> Vec<acd::Action> {
        let mut actions = Vec::new();
        for output in outputs {
            match output {
                CallOutput::RingTrunk { relayed } => self.ring_trunk(now, id, relayed.as_ref()),
                CallOutput::AgentLegGone {
                    leg,
                    hang_up,
                    reason,
                } => {
                    if hang_up {
                        self.end_agent_leg(now, *leg, reason);
                    } else {
                        self.calls.forget_agent_leg(leg.call_id());
                    }
                }
                CallOutput::OfferFailed { agent, why } => {
                    actions.extend(self.release_offer(now, id, &agent, why))
                }
                CallOutput::Ack(ack) => {
                    self.pending_raw.push_back(ack);
                    self.count_request(
                        super::message_counters::Direction::Out,
                        &sip::rsip::Method::Ack,
                    );
                }
                CallOutput::CheckAgentAnswer(response) => {
                    self.check_agent_answer(now, id, response)
                }
                CallOutput::AnswerTrunk(answer) => self.answer_trunk(now, id, *answer),
                CallOutput::Connected => actions.extend(self.call_connected(now, id)),
                CallOutput::Request { request, peer } => {
                    self.send_request(now, request, peer, super::ClientPurpose::Fire);
                }
                CallOutput::MediaFinished(media) => self.media.finish(id, *media),
                CallOutput::Record { record, held } => {
                    self.file_call_record(now, id, *record, held)
                }
                CallOutput::SettleWithAcd { talking } => {
                    let settled = if talking {
                        self.acd.hangup(now, acd::CallId(id))
                    } else {
                        self.acd.abandon(now, acd::CallId(id))
                    };
                    match settled {
                        Ok(more) => actions.extend(more),
                        // The ACD already settled queue timeouts and rejections itself.
                        Err(error) => tracing::debug!(call = id, %error, "ACD end-of-call"),
                    }
                }
                CallOutput::Respond { key, response } => self.send_response(now, &key, response),
                CallOutput::End { cause, held } => self.finish_call(now, id, cause, held),
                CallOutput::SayGoodbye { prompt, cause } => self.say_goodbye(id, prompt, cause),
                CallOutput::FirstAgentLeaves => self.first_agent_leaves(now, id, false),
                CallOutput::DropAgentMedia => {
                    self.media.command(id, media::MediaCommand::DropAgent)
                }
                CallOutput::PlayToCaller { clips, token } => {
                    self.play_to_caller(id, clips, false, token)
                }
                CallOutput::Refuse { key, request, why } => {
                    let status = why.sip_status();
                    self.reply_error(now, &key, &request, status, &why.to_string());
                }
                CallOutput::Relay { from, key, request } => {
                    self.relay(now, id, from, key, *request)
                }
                CallOutput::Reoffer { side, key, request } => {
                    self.answer_reoffer(now, id, side, key, *request)
                }
                CallOutput::Refer { side, key, request } => {
                    self.on_refer(now, id, side, key, *request)
                }
                CallOutput::KeepAlive { key, request } => {
                    let mut ok = sip::message::response_to(&request, 200, None);
                    self.add_capabilities(&mut ok.headers);
                    self.send_response(now, &key, ok);
                }
                CallOutput::CallerPressed(digit) => self.caller_pressed(now, id, digit),
                CallOutput::KeyToTrunk { digit, duration_ms } => {
                    let command = media::MediaCommand::SendDtmf {
                        leg: media::Leg::Trunk,
                        digit,
                        duration_ms,
                    };
                    self.media.command(id, command);
                }
                CallOutput::PlayPrompts { prompts, token } => {
                    let clips = self.prompts.resolve(&prompts);
                    self.play_to_caller(id, clips, false, token);
                }
                CallOutput::StopCallerPlayback => {
                    let command = media::MediaCommand::StopPlayback {
                        leg: media::Leg::Trunk,
                    };
                    self.media.command(id, command);
                }
                CallOutput::Wake(at) => self
                    .timers
                    .schedule(at, super::SwitchTimer::Call { call: id }),
                CallOutput::Enqueue => self.enqueue_call(now, id),
                CallOutput::StartVoicemail => self.start_voicemail(id),
                CallOutput::RequestCallback => self.request_callback(now, id),
                CallOutput::PlayHoldMusic => self.play_hold_music(id),
                CallOutput::RecordVoicemail => self.record_voicemail(now, id),
            }
        }
        actions
    }

    /// Tells the ACD that the offer of call `id` to `agent` did not connect.
    ///
    /// The ACD puts an agent whose phone was busy, refused or unreachable back to Ready, and
    /// does not offer them this call again before `[acd] offer_retry_s` (a phone that cannot
    /// take the call's codecs: not during this stay). A phone that cannot be reached logs its
    /// agent out; one that refused sets the agent not-ready with the missed-call reason (when
    /// configured). Both are requested before the failure is reported, so the ACD applies them
    /// as the agent is released and the call goes to someone else.
    pub(super) fn release_offer(
        &mut self,
        now: Instant,
        id: CallNumber,
        agent: &AgentId,
        why: OfferFailure,
    ) -> Vec<acd::Action> {
        let mut actions = Vec::new();
        let change = match why {
            OfferFailure::Unreachable => self.acd.logout(now, agent),
            OfferFailure::Busy | OfferFailure::Rejected => {
                match &self.config.acd.missed_call_reason {
                    Some(reason) => self.acd.set_not_ready(now, agent, reason),
                    None => Ok(Vec::new()),
                }
            }
            // The ACD itself applies the missed-call reason after a ring timeout; a phone
            // that cannot take the call's codecs is not a missed call.
            OfferFailure::NoAnswer | OfferFailure::Incompatible => Ok(Vec::new()),
        };
        match change {
            Ok(more) => actions.extend(more),
            Err(error) => tracing::debug!(call = id, %error, "agent change after failed offer"),
        }
        match self.acd.offer_failed(now, acd::CallId(id), why) {
            Ok(more) => actions.extend(more),
            Err(error) => tracing::debug!(call = id, %error, "offer_failed refused by ACD"),
        }
        actions
    }
    /// Sets `timer` of call `id` for `at` and makes sure the switch wakes then.
    pub(super) fn set_call_timer(&mut self, id: CallNumber, timer: CallTimer, at: Instant) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.timers.set(timer, at);
            self.timers
                .schedule(at, super::SwitchTimer::Call { call: id });
        }
    }

    /// Runs call `id`'s timers that are due at `now` (none, if the wake-up is stale).
    pub(super) fn fire_call_timers(&mut self, now: Instant, id: CallNumber) {
        while let Some(timer) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.timers.take_due(now))
        {
            match timer {
                CallTimer::Ring => self.call_input(now, id, CallInput::RingTimeout),
                CallTimer::Ivr => self.call_input(now, id, CallInput::IvrTimeout),
                CallTimer::Announce => self.announcement_due(now, id),
                CallTimer::VoicemailLimit => self.call_input(now, id, CallInput::VoicemailLimit),
                CallTimer::Survey => self.call_input(now, id, CallInput::SurveyTimeout),
                CallTimer::SessionRefresh => self.refresh_session(now, id),
                CallTimer::SessionExpiry => self.session_expired(now, id),
                CallTimer::ExtraLegRing(n) => {
                    self.monitor_ring_timeout(now, id, media::Leg::Extra(n))
                }
            }
        }
    }
}
