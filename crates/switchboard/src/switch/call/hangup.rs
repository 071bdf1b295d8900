//! A party hanging up (a BYE inside one of the call's dialogs) and the switch ending the call
//! (a queue timeout or refusal, a drain, the media going silent): whether the call ends now,
//! after a last prompt to the caller, or goes on without the party who left — the first agent
//! of a conference, or the agent of a call whose caller is asked for a survey score.

use super::timers::CallTimer;
use super::{Call, CallOutput, CallState, Side};
use crate::config::SurveyScale;
use crate::switch::b2bua::EndCause;
use crate::switch::caller_media::CallerAudio;
use crate::switch::consult::ConsultStage;
use sip::message::response_to;
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use std::sync::Arc;
use std::time::Instant;

/// The post-call survey of the call's queue, ready to play: the caller hears it if the agent
/// hangs up first while Switchboard can speak to the caller.
#[derive(Debug)]
pub struct SurveyPlan {
    /// The scores the caller may key.
    pub scale: SurveyScale,
    /// The survey prompt in the caller's language.
    pub clips: Vec<Arc<media::AudioClip>>,
    /// The token the prompt's end will be reported with.
    pub token: u64,
}

impl Call {
    /// `side` sent BYE (transaction `key`). The 200 goes with the call's end — held until the
    /// record is durable, so a hang-up the far end saw complete always has its record — or at
    /// once when the call goes on without the agent.
    pub(super) fn bye(
        &mut self,
        now: Instant,
        side: Side,
        key: TransactionKey,
        bye: &Request,
        survey: Option<SurveyPlan>,
    ) -> Vec<CallOutput> {
        let ok = response_to(bye, 200, None);
        let cause = match side {
            Side::Trunk => EndCause::CallerHangup,
            Side::Agent if self.in_conference() => {
                return vec![
                    CallOutput::Respond { key, response: ok },
                    CallOutput::FirstAgentLeaves,
                ];
            }
            Side::Agent => match survey.filter(|_| self.can_survey()) {
                Some(plan) => return self.agent_left_for_survey(now, plan, key, ok),
                None => EndCause::AgentHangup,
            },
        };
        vec![CallOutput::End {
            cause,
            held: vec![(key, ok)],
        }]
    }

    /// The switch ends the call with `cause`: after the cause's last prompt ("goodbye",
    /// "closed") when the caller can hear one, else at once.
    pub(super) fn end_requested(&self, cause: EndCause) -> Vec<CallOutput> {
        match cause.farewell_prompt() {
            Some(prompt) if self.can_play_to_caller() => {
                vec![CallOutput::SayGoodbye { prompt, cause }]
            }
            _ => vec![CallOutput::End {
                cause,
                held: Vec::new(),
            }],
        }
    }

    /// Switchboard answered the caller and its media runs, and nothing else is being played
    /// as the call's last words: a prompt can be played to the caller.
    pub fn can_play_to_caller(&self) -> bool {
        self.trunk_leg.finalized
            && !self.state.is_connected()
            && self.media.as_ref().is_some_and(|m| m.started)
            && !matches!(self.audio, CallerAudio::Farewell(_))
    }

    /// Caller, agent and a consulted colleague talk together.
    fn in_conference(&self) -> bool {
        self.consult
            .as_ref()
            .is_some_and(|c| c.stage == ConsultStage::Conference)
    }

    /// The caller can be kept for a survey: talking with the agent on media Switchboard runs.
    fn can_survey(&self) -> bool {
        self.state.is_connected()
            && self.trunk_leg.finalized
            && self.media.as_ref().is_some_and(|m| m.started)
    }

    /// The agent left; the caller stays to hear the survey. The agent's leg is over (they go
    /// to wrap-up in the ACD) and talk time ends now.
    fn agent_left_for_survey(
        &mut self,
        now: Instant,
        plan: SurveyPlan,
        key: TransactionKey,
        ok: sip::rsip::Response,
    ) -> Vec<CallOutput> {
        let mut outputs = vec![CallOutput::Respond { key, response: ok }];
        self.hold.set(now, false);
        self.api_hold = false;
        self.state = CallState::Survey(plan.scale);
        self.timers.cancel(CallTimer::Announce);
        self.audio = CallerAudio::Survey(plan.token);
        self.agent_left_for_survey = Some(now);
        if let Some(leg) = self.agent_leg.take() {
            self.close_attempt(now, &leg, None);
            // The phone ended its own dialog with the BYE.
            outputs.push(CallOutput::AgentLegGone {
                leg: Box::new(leg),
                hang_up: false,
                reason: None,
            });
        }
        tracing::info!(call = self.id, "agent hung up: post-call survey");
        outputs.extend([
            CallOutput::DropAgentMedia,
            CallOutput::SettleWithAcd { talking: true },
            CallOutput::PlayToCaller {
                clips: plan.clips,
                token: plan.token,
            },
        ]);
        outputs
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::CallInput;
    use super::*;
    use std::time::Duration;

    /// `side` sends BYE (with CSeq 10) at `at`.
    fn hang_up(
        call: &mut Call,
        at: Instant,
        side: Side,
        survey: Option<SurveyPlan>,
    ) -> (TransactionKey, Vec<CallOutput>) {
        let bye = in_dialog("BYE", 10, "", "");
        let key = TransactionKey::of_received_request(&bye).expect("a key");
        let input = CallInput::Request {
            side,
            key: key.clone(),
            request: Box::new(bye),
            survey,
        };
        (key, call.handle(at, input))
    }

    fn survey() -> Option<SurveyPlan> {
        Some(SurveyPlan {
            scale: SurveyScale::OneToFive,
            clips: Vec::new(),
            token: 41,
        })
    }

    /// The call ends with `cause`, and the BYE's 200 waits for its record.
    fn assert_ends(outputs: &[CallOutput], key: &TransactionKey, cause: EndCause) {
        let [CallOutput::End { cause: c, held }] = outputs else {
            panic!("{outputs:?}")
        };
        assert_eq!(*c, cause);
        let [(k, ok)] = &held[..] else {
            panic!("{held:?}")
        };
        assert_eq!(k, key);
        assert_eq!(ok.status_code.code(), 200);
    }

    #[test]
    fn a_caller_who_hangs_up_ends_the_call_in_every_state_with_the_200_behind_the_record() {
        let t0 = Instant::now();
        let states: [fn(&mut Call); 6] = [
            |_| {},
            |call| ring(call, Instant::now(), 1),
            |call| {
                ring(call, Instant::now(), 1);
                connect(call, Instant::now());
            },
            |call| call.state = CallState::Voicemail,
            |call| call.state = CallState::Survey(SurveyScale::OneToFive),
            |call| call.state = CallState::Farewell(EndCause::QueueTimeout),
        ];
        for (n, enter) in states.iter().enumerate() {
            let mut call = arrived(t0);
            enter(&mut call);
            let (key, outputs) = hang_up(&mut call, t0, Side::Trunk, survey());
            assert_ends(&outputs, &key, EndCause::CallerHangup);
            // Nothing changed yet: the switch ends the call (its extra legs first).
            assert!(call.agent_left_for_survey.is_none(), "state {n}");
        }
    }

    #[test]
    fn an_agent_who_hangs_up_ends_the_call_unless_a_survey_can_be_played() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        connect(&mut call, t0 + s(2));
        // No survey for this queue.
        let (key, outputs) = hang_up(&mut call, t0 + s(30), Side::Agent, None);
        assert_ends(&outputs, &key, EndCause::AgentHangup);

        // A survey, but Switchboard does not run the call's media: nothing to play it on.
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        connect(&mut call, t0 + s(2));
        let (key, outputs) = hang_up(&mut call, t0 + s(30), Side::Agent, survey());
        assert_ends(&outputs, &key, EndCause::AgentHangup);
        assert!(call.agent_leg.is_some() && call.state.is_connected());
    }

    #[test]
    fn an_agent_who_hangs_up_first_leaves_the_caller_to_the_survey_on_anchored_media() {
        let s = Duration::from_secs;
        let t0 = Instant::now();
        let mut call = arrived(t0);
        anchor(&mut call);
        ring(&mut call, t0, 1);
        connect(&mut call, t0 + s(2));
        call.media.as_mut().expect("anchored").started = true;
        call.hold.set(t0 + s(10), true);
        let (key, outputs) = hang_up(&mut call, t0 + s(40), Side::Agent, survey());
        let [CallOutput::Respond { key: k, response }, CallOutput::AgentLegGone {
            hang_up: false,
            reason: None,
            ..
        }, CallOutput::DropAgentMedia, CallOutput::SettleWithAcd { talking: true }, CallOutput::PlayToCaller { token: 41, .. }] =
            &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        // The agent's BYE is answered at once: the call goes on.
        assert_eq!((k, response.status_code.code()), (&key, 200));
        assert!(matches!(
            call.state,
            CallState::Survey(SurveyScale::OneToFive)
        ));
        assert!(matches!(call.audio, CallerAudio::Survey(41)));
        assert!(call.agent_leg.is_none());
        // Talk and hold time end as the agent leaves; the agent's leg is in the record.
        assert_eq!(call.talk_ended(t0 + s(90)), t0 + s(40));
        assert!(!call.hold.is_holding());
        assert_eq!(call.hold.total(t0 + s(90)), s(30));
        let [leg] = &call.ended_legs[..] else {
            panic!("{:?}", call.ended_legs)
        };
        assert_eq!(leg.party.as_deref(), Some("1001"));
        assert!(leg.answered.is_some());

        // The caller hanging up during the survey ends the call.
        let (key, outputs) = hang_up(&mut call, t0 + s(50), Side::Trunk, None);
        assert_ends(&outputs, &key, EndCause::CallerHangup);
    }

    #[test]
    fn the_end_of_a_call_waits_for_its_last_prompt_only_when_the_caller_can_hear_it() {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        // Not answered by Switchboard: the caller gets a final response, no prompt.
        let outputs = call.handle(
            t0,
            CallInput::End {
                cause: EndCause::QueueTimeout,
            },
        );
        assert!(
            matches!(&outputs[..], [CallOutput::End { cause: EndCause::QueueTimeout, held }] if held.is_empty()),
            "{outputs:?}"
        );
        // A cause without a last prompt ends the call at once.
        let outputs = call.handle(
            t0,
            CallInput::End {
                cause: EndCause::Shutdown,
            },
        );
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::End {
                    cause: EndCause::Shutdown,
                    ..
                }]
            ),
            "{outputs:?}"
        );
    }
}
