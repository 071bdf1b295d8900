//! The post-call survey (`[[queue]] survey`): when the agent hangs up first on a call whose
//! queue surveys, the caller is not hung up. The agent's leg ends (the agent goes to wrap-up),
//! the caller hears the survey prompt and keys a score (RFC 4733, in-band or SIP INFO: every
//! way a key reaches `caller_pressed`), hears "goodbye", and the score goes into the CDR's
//! `survey_score`. No valid key within [`SURVEY_KEY_WAIT`] after the prompt, or the caller
//! hanging up, ends the call without a score. Either way the call's end stays the agent's
//! hang-up (CDR `hangup_side` = agent) and its talk time ends when the agent left.

use super::b2bua::EndCause;
use super::call::timers::CallTimer;
use super::call::{CallNumber, CallState, SurveyPlan};
use super::caller_media::CallerAudio;
use super::Switch;
use std::time::{Duration, Instant};

/// How long a caller has to key a score once the prompt has finished.
pub const SURVEY_KEY_WAIT: Duration = Duration::from_secs(10);

impl Switch {
    /// The post-call survey of call `id`'s queue, ready to play, when the queue surveys and
    /// its prompt exists (the call decides whether it can be played when the agent leaves).
    pub(super) fn survey_plan(&mut self, id: CallNumber) -> Option<SurveyPlan> {
        let call = self.calls.get(&id)?;
        let config = self.config.clone();
        let survey = self.index.queue(&config, &call.queue)?.survey.as_ref()?;
        let clips: Vec<_> = self
            .prompts
            .get(&call.prompt_language(), &survey.prompt)
            .into_iter()
            .collect();
        if clips.is_empty() {
            return None;
        }
        let scale = survey.scale;
        Some(SurveyPlan {
            scale,
            clips,
            token: self.next_play_token(),
        })
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
