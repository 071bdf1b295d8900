//! The call's CDR: one record per call with every leg in order, built by the call itself from
//! what it kept while it ran.

use super::{Call, CallState};
use crate::switch::b2bua::EndCause;
use cdr::{CallRecord, Disposition, HangupSide, Leg, LegRole};
use std::time::{Duration, Instant};

impl Call {
    /// The call's record, for a call over at `now` with `cause`; `sip_cause`: the final
    /// response the trunk got, when Switchboard refused the call; `queue`: the settings of the
    /// queue it waited in (wrap-up and service-level threshold).
    pub(in crate::switch) fn record(
        &self,
        now: Instant,
        cause: &EndCause,
        sip_cause: Option<u16>,
        queue: Option<&crate::config::QueueConfig>,
    ) -> CallRecord {
        // A caller who hangs up during the last prompt (or the survey) still ended the way
        // that prompt (or the agent's hang-up) said.
        let settled = self.state.settled_cause();
        let cause = match (&settled, cause) {
            (Some(settled), EndCause::CallerHangup | EndCause::CallerCancel) => settled,
            _ => cause,
        };
        let answered = self.answered;
        let wait_until = answered.unwrap_or(now);
        let reached_queue = !self.queue.is_empty();
        // Queue wait only: time spent in the IVR is not waiting for an agent.
        let wait_s = if reached_queue {
            wait_until
                .saturating_duration_since(self.enqueued_at())
                .as_secs_f64()
        } else {
            0.0
        };
        // A caller who hangs up inside the IVR leaves it there: its path ends with the self.
        let (ivr_path, language, ivr_ended) = match self.state.ivr() {
            Some(ivr) => (ivr.path(), Some(ivr.language().to_owned()), Some(now)),
            None => (self.ivr_path.clone(), self.language.clone(), self.ivr_ended),
        };
        let disposition = match (&self.state, cause) {
            (CallState::Connected, _) => Disposition::Answered,
            // Answered, then transferred, and the caller left before the next agent answered.
            _ if answered.is_some() => Disposition::Answered,
            (_, EndCause::CallbackRequested) => Disposition::CallbackRequested,
            (_, EndCause::Voicemail) => Disposition::Voicemail,
            (_, EndCause::IvrHangup) => Disposition::IvrCompleted,
            (state, EndCause::CallerCancel | EndCause::CallerHangup)
                if state.is_self_service() && !reached_queue =>
            {
                Disposition::IvrCompleted
            }
            (_, EndCause::CallerCancel | EndCause::CallerHangup) => {
                Disposition::Abandoned.classify(wait_s)
            }
            (_, EndCause::QueueTimeout) => Disposition::TimedOut,
            _ => Disposition::Rejected,
        };
        let hangup_side = match cause {
            EndCause::CallerCancel | EndCause::CallerHangup => HangupSide::Caller,
            EndCause::AgentHangup => HangupSide::Agent,
            _ => HangupSide::System,
        };
        let agent_leg = self.agent_leg.as_ref();
        let mut legs = vec![Leg {
            role: LegRole::Trunk,
            call_id: self.trunk_leg.dialog.call_id.clone(),
            peer: self.trunk_leg.dialog.peer.to_string(),
            started: self.clock.at(self.arrived),
            answered: answered.map(|a| self.clock.at(a)),
            ended: self.clock.at(now),
            sip_cause,
            party: Some(self.trunk.clone()),
            queue: None,
        }];
        legs.extend(self.ended_legs.iter().cloned());
        // The attempt still on when the call ended: the answered one, or one still ringing.
        let current_ring = match (agent_leg, self.last_offered) {
            (Some(leg), Some(offered)) => {
                let answered = leg.uac.answered_at();
                legs.push(self.attempt_record(leg, offered, now, None));
                answered.unwrap_or(now).saturating_duration_since(offered)
            }
            _ => Duration::ZERO,
        };
        CallRecord {
            seq: 0,
            id: self.clock.record_id(self.id),
            trunk_call_id: self.trunk_leg.dialog.call_id.clone(),
            arrived: self.clock.at(self.arrived),
            ivr_ended: ivr_ended.map(|t| self.clock.at(t)),
            enqueued: reached_queue.then(|| self.clock.at(self.enqueued_at())),
            offered: self.first_offered.map(|t| self.clock.at(t)),
            answered: answered.map(|a| self.clock.at(a)),
            ended: self.clock.at(now),
            caller: self.caller.clone(),
            did: self.did.clone(),
            ivr_path: ivr_path
                .split('>')
                .filter(|step| !step.is_empty())
                .map(str::to_owned)
                .collect(),
            language,
            queue: reached_queue.then(|| self.queue.clone()),
            // The agent who answered, or the last one the call was offered to.
            agent: self.last_agent.as_ref().map(|a| a.to_string()),
            priority: self.priority,
            label: self.label.clone(),
            customer_name: self.customer_name.clone(),
            preferred_agent: self.preferred_agent.as_ref().map(|a| a.to_string()),
            preferred_agent_taken: answered.is_some()
                && self.preferred_agent.is_some()
                && self.preferred_agent == self.last_agent,
            wait_s,
            ring_s: (self.failed_ring_time + current_ring).as_secs_f64(),
            // Talk time excludes hold (the CDR model's definition).
            talk_s: answered.map_or(0.0, |a| {
                self.talk_ended(now)
                    .saturating_duration_since(a)
                    .saturating_sub(self.hold.total(now))
                    .as_secs_f64()
            }),
            hold_s: self.hold.total(now).as_secs_f64(),
            // Wrap-up follows the call; the queue's configured time is what the agent gets,
            // and the agent-state records carry the time actually spent.
            wrap_up_s: match answered {
                Some(_) => queue.map_or(0.0, |q| q.wrap_up.as_secs_f64()),
                None => 0.0,
            },
            disposition,
            hangup_side,
            sip_cause,
            transfers: self.transfers.clone(),
            survey_score: self.survey_score,
            recording: self
                .recording
                .as_ref()
                .filter(|_| !self.recording_failed)
                .map(|p| p.display().to_string()),
            legs,
            supervisions: self.supervisions.clone(),
            conference: self.conference_record(now),
            service_level_threshold_s: queue.map_or(20.0, |q| q.service_level.as_secs_f64()),
            direction: Default::default(),
            outbound: None,
            callback: None,
        }
    }

    /// The call's conference, if caller, agent and colleague were ever joined.
    fn conference_record(&self, now: Instant) -> Option<cdr::Conference> {
        let started = self.conference_started?;
        let ended = self.conference_ended.unwrap_or(now);
        Some(cdr::Conference {
            started: self.clock.at(started),
            ended: self.clock.at(ended),
            seconds: ended.saturating_duration_since(started).as_secs_f64(),
        })
    }
}
