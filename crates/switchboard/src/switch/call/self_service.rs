//! While Switchboard speaks to the caller itself — the IVR's menus, a waiting caller's music
//! and announcements, voicemail, the post-call survey, a last prompt — the call decides what
//! a key press, the end of a prompt or one of its timers leads to. What is played comes from
//! the switch (the prompt library, the ACD's position): the call names the next step.

use super::handle::CallOutput;
use super::timers::CallTimer;
use super::{Call, CallState};
use crate::ivr::{IvrAction, IvrSession};
use crate::switch::b2bua::EndCause;
use crate::switch::caller_media::CallerAudio;
use std::time::{Duration, Instant};

/// How long a caller has to key a survey score once the prompt has finished.
pub const SURVEY_KEY_WAIT: Duration = Duration::from_secs(10);

impl Call {
    /// The caller enters the IVR `session`, which asked for `actions` on starting.
    pub(super) fn enter_ivr(
        &mut self,
        now: Instant,
        session: Box<IvrSession>,
        actions: Vec<IvrAction>,
    ) -> Vec<CallOutput> {
        self.state = CallState::Ivr(session);
        self.ivr_actions(now, actions)
    }

    /// A key the caller pressed (RFC 4733, in-band or SIP INFO). `callback_key`: the key of
    /// the call's queue that asks for a callback, if it has one.
    pub(super) fn caller_pressed(
        &mut self,
        now: Instant,
        digit: char,
        callback_key: Option<char>,
    ) -> Vec<CallOutput> {
        if let Some(ivr) = self.state.ivr_mut() {
            let actions = ivr.on_digit(now, digit);
            return self.ivr_actions(now, actions);
        }
        if let CallState::Survey(scale) = self.state {
            return self.survey_key(scale, digit);
        }
        match (&self.state, self.audio) {
            (_, CallerAudio::VoicemailRecording) if digit == '#' => {
                self.end_requested(EndCause::Voicemail)
            }
            // Only once the caller is answered: a callback promised to a caller who still
            // hears ringing would be confirmed with a prompt they cannot hear.
            (CallState::Queued | CallState::Offering, _)
                if callback_key == Some(digit) && self.trunk_leg.finalized =>
            {
                vec![CallOutput::RequestCallback]
            }
            _ => Vec::new(),
        }
    }

    /// The prompts played to the caller with `token` have finished.
    pub(super) fn caller_playback_finished(&mut self, now: Instant, token: u64) -> Vec<CallOutput> {
        if let Some(ivr) = self.state.ivr_mut() {
            let actions = ivr.on_playback_finished(now, token);
            return self.ivr_actions(now, actions);
        }
        match self.audio {
            CallerAudio::Announcement(t) if t == token => vec![CallOutput::PlayHoldMusic],
            CallerAudio::Farewell(t) if t == token => vec![CallOutput::End {
                cause: self.state.settled_cause().unwrap_or(EndCause::IvrHangup),
                held: Vec::new(),
            }],
            CallerAudio::VoicemailGreeting(t) if t == token => vec![CallOutput::RecordVoicemail],
            CallerAudio::Emergency(t) if t == token => {
                self.audio = CallerAudio::Silence;
                vec![CallOutput::Enqueue]
            }
            CallerAudio::Survey(t) if t == token => {
                self.audio = CallerAudio::Silence;
                let at = now + SURVEY_KEY_WAIT;
                self.timers.set(CallTimer::Survey, at);
                vec![CallOutput::Wake(at)]
            }
            _ => Vec::new(),
        }
    }

    /// The IVR's digit timer fired (it may be stale: the session keeps the real deadline).
    pub(super) fn ivr_timed_out(&mut self, now: Instant) -> Vec<CallOutput> {
        match self.state.ivr_mut() {
            Some(ivr) if ivr.deadline().is_some_and(|at| at <= now) => {
                let actions = ivr.on_timeout(now);
                self.ivr_actions(now, actions)
            }
            _ => Vec::new(),
        }
    }

    /// The longest voicemail message was reached.
    pub(super) fn voicemail_limit_reached(&self) -> Vec<CallOutput> {
        if self.audio == CallerAudio::VoicemailRecording {
            self.end_requested(EndCause::Voicemail)
        } else {
            Vec::new()
        }
    }

    /// No survey score was keyed in time: the call ends without one.
    pub(super) fn survey_timed_out(&self) -> Vec<CallOutput> {
        if !matches!(self.state, CallState::Survey(_)) {
            return Vec::new();
        }
        tracing::info!(call = self.id, "no survey score keyed");
        vec![CallOutput::End {
            cause: EndCause::AgentHangup,
            held: Vec::new(),
        }]
    }

    fn survey_key(&mut self, scale: crate::config::SurveyScale, digit: char) -> Vec<CallOutput> {
        let Some(score) = scale.score(digit) else {
            tracing::info!(call = self.id, digit = %digit, "key outside the survey's scale ignored");
            return Vec::new();
        };
        self.survey_score = Some(score);
        tracing::info!(call = self.id, score, "survey answered");
        vec![CallOutput::SayGoodbye {
            prompt: "goodbye",
            cause: EndCause::AgentHangup,
        }]
    }

    /// What the IVR asked for, as outputs; leaving the IVR records its path and language.
    fn ivr_actions(&mut self, now: Instant, actions: Vec<IvrAction>) -> Vec<CallOutput> {
        let mut outputs = Vec::new();
        for action in actions {
            match action {
                IvrAction::Play { prompts, token } => {
                    self.audio = CallerAudio::Ivr;
                    outputs.push(CallOutput::PlayPrompts { prompts, token });
                }
                IvrAction::StopPlayback => outputs.push(CallOutput::StopCallerPlayback),
                IvrAction::Queue { queue } => {
                    self.leave_ivr(now);
                    self.queue = queue;
                    self.state = CallState::Queued;
                    outputs.push(CallOutput::Enqueue);
                    return outputs;
                }
                IvrAction::Voicemail { queue } => {
                    self.leave_ivr(now);
                    self.queue = queue;
                    outputs.push(CallOutput::StartVoicemail);
                    return outputs;
                }
                IvrAction::Hangup => {
                    self.leave_ivr(now);
                    outputs.extend(self.end_requested(EndCause::IvrHangup));
                    return outputs;
                }
            }
        }
        if let Some(at) = self.state.ivr().and_then(IvrSession::deadline) {
            self.timers.set(CallTimer::Ivr, at);
            outputs.push(CallOutput::Wake(at));
        }
        outputs
    }

    fn leave_ivr(&mut self, now: Instant) {
        if let Some(ivr) = self.state.ivr() {
            self.ivr_path = ivr.path();
            self.language = Some(ivr.language().to_owned());
        }
        self.ivr_ended = Some(now);
        self.audio = CallerAudio::Silence;
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CallInput;
    use super::*;
    use crate::config::SurveyScale;

    /// An IVR whose top menu sends 1 to queue `sales`, 3 to voicemail, 0 to a hang-up, and
    /// waits 5 s for a key.
    const IVR: &str = r#"
[[queue]]
name = "sales"
skills = { sales = 1 }
[[ivr]]
name = "main"
greeting = ["welcome"]
entry = "top"
[[ivr.menu]]
name = "top"
prompt = ["menu"]
digit_timeout_s = 5
keys = { "1" = "queue:sales", "3" = "voicemail:sales", "0" = "hangup" }
"#;

    /// A call answered by Switchboard, hearing the IVR's greeting; the greeting's token.
    fn in_the_ivr(now: Instant) -> (Call, u64) {
        let mut config = crate::config::testing::valid(IVR);
        let ivr = config.ivrs.remove(0);
        let mut call = arrived(now);
        call.trunk_leg.finalized = true;
        let (session, actions) = IvrSession::start(&ivr, None, true, None, now);
        let input = CallInput::IvrStarted {
            session: Box::new(session),
            actions,
        };
        let outputs = call.handle(now, input);
        let [CallOutput::PlayPrompts { prompts, token }] = &outputs[..] else {
            panic!("the greeting plays: {outputs:?}");
        };
        assert_eq!(prompts[0].name, "welcome");
        assert_eq!(call.audio, CallerAudio::Ivr);
        (call, *token)
    }

    /// The call, in the IVR, hears the top menu; its key timer runs from `at`.
    fn at_the_menu(now: Instant) -> Call {
        let (mut call, greeting) = in_the_ivr(now);
        let outputs = call.handle(now, CallInput::CallerPlaybackFinished { token: greeting });
        let [CallOutput::PlayPrompts { prompts, token }] = &outputs[..] else {
            panic!("the menu plays after the greeting: {outputs:?}");
        };
        assert_eq!(prompts[0].name, "menu");
        let outputs = call.handle(now, CallInput::CallerPlaybackFinished { token: *token });
        let at = now + Duration::from_secs(5);
        assert!(
            matches!(&outputs[..], [CallOutput::Wake(w)] if *w == at),
            "the key wait starts when the menu has played: {outputs:?}"
        );
        assert_eq!(call.timers.deadline(CallTimer::Ivr), Some(at));
        call
    }

    fn press(
        call: &mut Call,
        now: Instant,
        digit: char,
        callback_key: Option<char>,
    ) -> Vec<CallOutput> {
        let input = CallInput::CallerPressed {
            digit,
            callback_key,
        };
        call.handle(now, input)
    }

    #[test]
    fn a_menu_key_that_queues_leaves_the_ivr_with_its_path_and_enqueues_the_call() {
        let t0 = Instant::now();
        let mut call = at_the_menu(t0);
        let t1 = t0 + Duration::from_secs(2);
        let outputs = press(&mut call, t1, '1', None);
        assert!(
            matches!(outputs.last(), Some(CallOutput::Enqueue)),
            "{outputs:?}"
        );
        assert!(matches!(call.state, CallState::Queued));
        assert_eq!(call.queue, "sales");
        assert_eq!(call.ivr_ended, Some(t1));
        assert!(call.ivr_path.contains("top"), "{}", call.ivr_path);
        assert_eq!(call.language.as_deref(), Some("en"));
        assert_eq!(call.audio, CallerAudio::Silence);
        // The IVR timer that was set for the menu is stale now: it changes nothing.
        let late = t0 + Duration::from_secs(5);
        assert!(call.handle(late, CallInput::IvrTimeout).is_empty());
    }

    #[test]
    fn a_menu_key_for_voicemail_or_hang_up_is_the_call_s_next_step() {
        let t0 = Instant::now();
        let mut call = at_the_menu(t0);
        let outputs = press(&mut call, t0, '3', None);
        assert!(
            matches!(outputs.last(), Some(CallOutput::StartVoicemail)),
            "{outputs:?}"
        );
        assert_eq!(call.queue, "sales");

        let mut call = at_the_menu(t0);
        let outputs = press(&mut call, t0, '0', None);
        assert!(
            matches!(outputs.last(), Some(CallOutput::End { cause: EndCause::IvrHangup, held })
                if held.is_empty()),
            "{outputs:?}"
        );
    }

    #[test]
    fn the_ivr_timer_acts_only_once_the_session_s_own_deadline_has_passed() {
        let t0 = Instant::now();
        let mut call = at_the_menu(t0);
        let early = call.handle(t0 + Duration::from_secs(4), CallInput::IvrTimeout);
        assert!(early.is_empty(), "{early:?}");
        let due = call.handle(t0 + Duration::from_secs(5), CallInput::IvrTimeout);
        assert!(
            due.iter()
                .any(|o| matches!(o, CallOutput::PlayPrompts { .. })),
            "no key in time: the menu is played again: {due:?}"
        );
    }

    #[test]
    fn the_callback_key_asks_for_a_callback_only_while_queued_and_answered() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        // Still ringing: nobody could hear the confirmation.
        assert!(press(&mut call, t0, '5', Some('5')).is_empty());
        call.trunk_leg.finalized = true;
        assert!(
            press(&mut call, t0, '4', Some('5')).is_empty(),
            "another key"
        );
        assert!(
            press(&mut call, t0, '5', None).is_empty(),
            "a queue without one"
        );
        let outputs = press(&mut call, t0, '5', Some('5'));
        assert!(
            matches!(&outputs[..], [CallOutput::RequestCallback]),
            "{outputs:?}"
        );
        call.state = CallState::Connected;
        assert!(press(&mut call, t0, '5', Some('5')).is_empty(), "talking");
    }

    #[test]
    fn hash_or_the_length_limit_ends_a_voicemail_only_while_it_records() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        call.trunk_leg.finalized = true;
        call.state = CallState::Voicemail;
        call.audio = CallerAudio::VoicemailGreeting(4);
        assert!(
            press(&mut call, t0, '#', None).is_empty(),
            "during the greeting"
        );
        assert!(call.handle(t0, CallInput::VoicemailLimit).is_empty());
        let outputs = call.handle(t0, CallInput::CallerPlaybackFinished { token: 4 });
        assert!(
            matches!(&outputs[..], [CallOutput::RecordVoicemail]),
            "{outputs:?}"
        );
        call.audio = CallerAudio::VoicemailRecording;
        for outputs in [
            press(&mut call, t0, '#', None),
            call.handle(t0, CallInput::VoicemailLimit),
        ] {
            assert!(
                matches!(
                    &outputs[..],
                    [CallOutput::End {
                        cause: EndCause::Voicemail,
                        ..
                    }]
                ),
                "{outputs:?}"
            );
        }
    }

    #[test]
    fn the_end_of_a_prompt_leads_to_what_was_played_for_and_a_stale_token_to_nothing() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        call.audio = CallerAudio::Announcement(8);
        assert!(call
            .handle(t0, CallInput::CallerPlaybackFinished { token: 7 })
            .is_empty());
        let outputs = call.handle(t0, CallInput::CallerPlaybackFinished { token: 8 });
        assert!(
            matches!(&outputs[..], [CallOutput::PlayHoldMusic]),
            "{outputs:?}"
        );

        call.audio = CallerAudio::Emergency(9);
        let outputs = call.handle(t0, CallInput::CallerPlaybackFinished { token: 9 });
        assert!(matches!(&outputs[..], [CallOutput::Enqueue]), "{outputs:?}");
        assert_eq!(call.audio, CallerAudio::Silence);

        call.state = CallState::Farewell(EndCause::CallbackRequested);
        call.audio = CallerAudio::Farewell(10);
        let outputs = call.handle(t0, CallInput::CallerPlaybackFinished { token: 10 });
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::End {
                    cause: EndCause::CallbackRequested,
                    ..
                }]
            ),
            "the call ends with the cause its last prompt was played for: {outputs:?}"
        );
    }

    #[test]
    fn the_survey_waits_for_a_key_on_its_scale_after_the_prompt_then_ends_without_one() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        call.trunk_leg.finalized = true;
        call.state = CallState::Survey(SurveyScale::OneToFive);
        call.audio = CallerAudio::Survey(11);
        let outputs = call.handle(t0, CallInput::CallerPlaybackFinished { token: 11 });
        let wait = t0 + SURVEY_KEY_WAIT;
        assert!(
            matches!(&outputs[..], [CallOutput::Wake(at)] if *at == wait),
            "{outputs:?}"
        );
        assert_eq!(call.timers.deadline(CallTimer::Survey), Some(wait));

        assert!(
            press(&mut call, t0, '7', None).is_empty(),
            "7 is off a 1-5 scale"
        );
        assert_eq!(call.survey_score, None);
        let outputs = call.handle(wait, CallInput::SurveyTimeout);
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::End {
                    cause: EndCause::AgentHangup,
                    ..
                }]
            ),
            "{outputs:?}"
        );

        let outputs = press(&mut call, t0, '4', None);
        assert_eq!(call.survey_score, Some(4));
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::SayGoodbye {
                    prompt: "goodbye",
                    cause: EndCause::AgentHangup
                }]
            ),
            "{outputs:?}"
        );
        call.state = CallState::Farewell(EndCause::AgentHangup);
        assert!(
            call.handle(wait, CallInput::SurveyTimeout).is_empty(),
            "a score was keyed: the survey timer changes nothing"
        );
    }
}
