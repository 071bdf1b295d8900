//! The post-call survey (`[[queue]] survey`): when the agent hangs up first on a call whose
//! queue surveys, the caller is not hung up. The agent's leg ends (the agent goes to wrap-up),
//! the caller hears the survey prompt and keys a score (RFC 4733, in-band or SIP INFO: every
//! way a key reaches the call), hears "goodbye", and the score goes into the CDR's
//! `survey_score`. No valid key within `call::SURVEY_KEY_WAIT` after the prompt, or the caller
//! hanging up, ends the call without a score. Either way the call's end stays the agent's
//! hang-up (CDR `hangup_side` = agent) and its talk time ends when the agent left. The call
//! decides all of that itself (`call/hangup.rs`, `call/self_service.rs`); the switch finds the
//! queue's survey and its prompt.

use super::call::{CallNumber, SurveyPlan};
use super::Switch;

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
}
