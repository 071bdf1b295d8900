//! The post-call survey (`[[queue]] survey`): when the agent hangs up first on a call whose
//! queue surveys, the caller is not hung up. The agent's leg ends (the agent goes to wrap-up),
//! the caller hears the survey prompt and keys a score (RFC 4733, in-band or SIP INFO: every
//! way a key reaches `caller_pressed`), hears "goodbye", and the score goes into the CDR's
//! `survey_score`. No valid key within [`SURVEY_KEY_WAIT`] after the prompt, or the caller
//! hanging up, ends the call without a score. Either way the call's end stays the agent's
//! hang-up (CDR `hangup_side` = agent) and its talk time ends when the agent left.

use super::b2bua::EndCause;
use super::call::timers::CallTimer;
use super::call::{CallNumber, CallState};
use super::caller_media::CallerAudio;
use super::Switch;
use media::MediaCommand;
use sip::message::response_to;
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use std::time::{Duration, Instant};

/// How long a caller has to key a score once the prompt has finished.
pub const SURVEY_KEY_WAIT: Duration = Duration::from_secs(10);

impl Switch {
    /// The agent sent BYE on call `id`. When its queue surveys and Switchboard can speak to
    /// the caller, the BYE is answered, the agent released and the survey started: `true`.
    /// Otherwise nothing is done (`false`) and the call ends as usual.
    pub(super) fn start_survey(
        &mut self,
        now: Instant,
        id: CallNumber,
        key: &TransactionKey,
        bye: &Request,
    ) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let Some(survey) = self
            .config
            .queue(&call.queue)
            .and_then(|q| q.survey.clone())
        else {
            return false;
        };
        let playable = call.state.is_connected()
            && call.trunk_leg.finalized
            && call.media.as_ref().is_some_and(|m| m.started);
        if !playable {
            return false;
        }
        let clips: Vec<_> = self
            .prompts
            .get(&call.prompt_language(), &survey.prompt)
            .into_iter()
            .collect();
        if clips.is_empty() {
            return false;
        }
        self.send_response(now, key, response_to(bye, 200, None));
        let token = self.next_play_token();
        let Some(call) = self.calls.get_mut(&id) else {
            return true;
        };
        let leg = call.agent_leg.take();
        call.hold.set(now, false);
        call.api_hold = false;
        call.state = CallState::Survey(survey.scale);
        call.timers.cancel(CallTimer::Announce);
        call.audio = CallerAudio::Survey(token);
        call.agent_left_for_survey = Some(now);
        if let Some(leg) = leg {
            self.calls.forget_agent_leg(leg.call_id());
            self.close_attempt(now, id, &leg, None);
        }
        self.media.command(id, MediaCommand::DropAgent);
        match self.acd.hangup(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(call = id, %error, "ACD hangup before the survey"),
        }
        tracing::info!(call = id, prompt = %survey.prompt, "agent hung up: post-call survey");
        self.play_to_caller(id, clips, false, token);
        true
    }

    /// The survey prompt finished: the caller now has [`SURVEY_KEY_WAIT`] to key a score.
    pub(super) fn survey_prompt_finished(&mut self, now: Instant, id: CallNumber) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.audio = CallerAudio::Silence;
        }
        self.set_call_timer(id, CallTimer::Survey, now + SURVEY_KEY_WAIT);
    }

    /// A key pressed during the survey (the prompt may still be playing). A key outside the
    /// scale is ignored: the caller may still key a valid one.
    pub(super) fn survey_key(&mut self, id: CallNumber, digit: char) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let CallState::Survey(scale) = call.state else {
            return;
        };
        let Some(score) = scale.score(digit) else {
            tracing::info!(call = id, digit = %digit, "key outside the survey's scale ignored");
            return;
        };
        call.survey_score = Some(score);
        tracing::info!(call = id, score, "survey answered");
        self.say_goodbye(id, "goodbye", EndCause::AgentHangup);
    }

    /// The key wait ran out without a score: the call ends.
    pub(super) fn survey_timeout(&mut self, now: Instant, id: CallNumber) {
        let unanswered = self
            .calls
            .get(&id)
            .is_some_and(|c| matches!(c.state, CallState::Survey(_)));
        if unanswered {
            tracing::info!(call = id, "no survey score keyed");
            self.finish_call(now, id, EndCause::AgentHangup, Vec::new());
        }
    }
}
