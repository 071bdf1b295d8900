//! Building call detail records from a finished call, and holding the call's last response
//! until the record is durable (see `cdr_writer`).

use super::b2bua::EndCause;
use super::call::{AgentLeg, Call, CallNumber, CallState};
use super::{Switch, SwitchTimer};

/// Longest a call's record waits for its media session's final report.
pub(super) const PARKED_CDR_LIMIT: Duration = Duration::from_secs(5);
use cdr::{AgentStateRecord, CallRecord, Disposition, HangupSide, Leg, LegRole, Record};
use sip::rsip::Response;
use sip::transaction::TransactionKey;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

impl Switch {
    /// Wall-clock time of a monotonic instant (CDRs carry UTC timestamps).
    pub(super) fn wall(&self, at: Instant) -> OffsetDateTime {
        let unix = if at >= self.instant_base {
            Duration::from_secs(self.unix_base) + (at - self.instant_base)
        } else {
            Duration::from_secs(self.unix_base).saturating_sub(self.instant_base - at)
        };
        OffsetDateTime::UNIX_EPOCH + unix
    }

    /// Queues the call's record for the journal. The responses in `held` go out only once it
    /// is durable.
    pub(super) fn record_call(
        &mut self,
        now: Instant,
        call: &Call,
        cause: &EndCause,
        sip_cause: Option<u16>,
        held: Vec<(TransactionKey, Response)>,
    ) {
        let queue = self.config.queue(&call.queue);
        // A caller who hangs up during the last prompt (or the survey) still ended the way
        // that prompt (or the agent's hang-up) said.
        let settled = call.state.settled_cause();
        let cause = match (&settled, cause) {
            (Some(settled), EndCause::CallerHangup | EndCause::CallerCancel) => settled,
            _ => cause,
        };
        let answered = call.answered;
        let wait_until = answered.unwrap_or(now);
        let reached_queue = !call.queue.is_empty();
        // Queue wait only: time spent in the IVR is not waiting for an agent.
        let wait_s = if reached_queue {
            wait_until
                .saturating_duration_since(call.enqueued_at())
                .as_secs_f64()
        } else {
            0.0
        };
        // A caller who hangs up inside the IVR leaves it there: its path ends with the call.
        let (ivr_path, language, ivr_ended) = match call.state.ivr() {
            Some(ivr) => (ivr.path(), Some(ivr.language().to_owned()), Some(now)),
            None => (call.ivr_path.clone(), call.language.clone(), call.ivr_ended),
        };
        let disposition = match (&call.state, cause) {
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
        let agent_leg = call.agent_leg.as_ref();
        let mut legs = vec![Leg {
            role: LegRole::Trunk,
            call_id: call.trunk_leg.dialog.call_id.clone(),
            peer: call.trunk_leg.dialog.peer.to_string(),
            started: self.wall(call.arrived),
            answered: answered.map(|a| self.wall(a)),
            ended: self.wall(now),
            sip_cause,
            party: Some(call.trunk.clone()),
            queue: None,
        }];
        legs.extend(call.ended_legs.iter().cloned());
        // The attempt still on when the call ended: the answered one, or one still ringing.
        let current_ring = match (agent_leg, call.last_offered) {
            (Some(leg), Some(offered)) => {
                let answered = leg.uac.answered_at();
                legs.push(self.agent_leg_record(leg, offered, answered, now, None));
                answered.unwrap_or(now).saturating_duration_since(offered)
            }
            _ => Duration::ZERO,
        };
        let record = CallRecord {
            seq: 0,
            id: format!("sb-{}-{}", self.unix_base, call.id),
            trunk_call_id: call.trunk_leg.dialog.call_id.clone(),
            arrived: self.wall(call.arrived),
            ivr_ended: ivr_ended.map(|t| self.wall(t)),
            enqueued: reached_queue.then(|| self.wall(call.enqueued_at())),
            offered: call.first_offered.map(|t| self.wall(t)),
            answered: answered.map(|a| self.wall(a)),
            ended: self.wall(now),
            caller: call.caller.clone(),
            did: call.did.clone(),
            ivr_path: ivr_path
                .split('>')
                .filter(|step| !step.is_empty())
                .map(str::to_owned)
                .collect(),
            language,
            queue: reached_queue.then(|| call.queue.clone()),
            // The agent who answered, or the last one the call was offered to.
            agent: call.last_agent.as_ref().map(|a| a.to_string()),
            priority: call.priority,
            label: call.label.clone(),
            customer_name: call.customer_name.clone(),
            preferred_agent: call.preferred_agent.as_ref().map(|a| a.to_string()),
            preferred_agent_taken: answered.is_some()
                && call.preferred_agent.is_some()
                && call.preferred_agent == call.last_agent,
            wait_s,
            ring_s: (call.failed_ring_time + current_ring).as_secs_f64(),
            // Talk time excludes hold (the CDR model's definition).
            talk_s: answered.map_or(0.0, |a| {
                call.talk_ended(now)
                    .saturating_duration_since(a)
                    .saturating_sub(call.hold.total(now))
                    .as_secs_f64()
            }),
            hold_s: call.hold.total(now).as_secs_f64(),
            // Wrap-up follows the call; the queue's configured time is what the agent gets,
            // and the agent-state records carry the time actually spent.
            wrap_up_s: match answered {
                Some(_) => queue.map_or(0.0, |q| q.wrap_up.as_secs_f64()),
                None => 0.0,
            },
            disposition,
            hangup_side,
            sip_cause,
            transfers: call.transfers.clone(),
            survey_score: call.survey_score,
            recording: call
                .recording
                .as_ref()
                .filter(|_| !call.recording_failed)
                .map(|p| p.display().to_string()),
            legs,
            supervisions: call.supervisions.clone(),
            conference: self.conference_record(call, now),
            service_level_threshold_s: queue.map_or(20.0, |q| q.service_level.as_secs_f64()),
            direction: Default::default(),
            outbound: None,
            callback: None,
        };
        if !held.is_empty() {
            self.held_responses.insert(call.id, held);
        }
        if self.media.is_running(call.id) {
            // The recording's fate is only known when the media session has ended: the record
            // waits for that (moments after the hang-up), or for the deadline as a backstop.
            self.parked_cdrs.insert(call.id, record);
            self.timers.schedule(
                now + PARKED_CDR_LIMIT,
                SwitchTimer::FlushCdr { call: call.id },
            );
        } else {
            self.cdr_out.push_back((Record::Call(record), call.id));
        }
    }

    /// The media session of an ended call reported its end: complete and release its record.
    pub(super) fn media_ended(
        &mut self,
        id: CallNumber,
        recording: Option<&media::RecordingOutcome>,
    ) {
        if let Some(media::RecordingOutcome::Failed { reason, .. }) = recording {
            tracing::warn!(call = id, reason, "recording failed");
            self.metrics.recording_errors.inc();
        }
        let Some(mut record) = self.parked_cdrs.remove(&id) else {
            return;
        };
        if matches!(recording, Some(media::RecordingOutcome::Failed { .. })) {
            record.recording = None;
        }
        self.cdr_out.push_back((Record::Call(record), id));
    }

    /// Backstop: a record still waiting for its media session is written without it.
    pub(super) fn flush_parked_cdr(&mut self, id: CallNumber) {
        if let Some(record) = self.parked_cdrs.remove(&id) {
            tracing::warn!(
                call = id,
                "media session did not report its end in time; CDR written without it"
            );
            self.cdr_out.push_back((Record::Call(record), id));
        }
    }

    /// An agent attempt ended without connecting: keep it for the call's record.
    pub(super) fn close_attempt(
        &mut self,
        now: Instant,
        id: CallNumber,
        leg: &AgentLeg,
        sip_cause: Option<u16>,
    ) {
        let Some(offered) = self.calls.get(&id).and_then(|c| c.last_offered) else {
            return;
        };
        let answered = leg.uac.answered_at();
        let record = self.agent_leg_record(leg, offered, answered, now, sip_cause);
        if let Some(call) = self.calls.get_mut(&id) {
            call.failed_ring_time += answered.unwrap_or(now).saturating_duration_since(offered);
            call.ended_legs.push(record);
        }
    }

    /// The call's conference, if caller, agent and colleague were ever joined.
    fn conference_record(&self, call: &Call, now: Instant) -> Option<cdr::Conference> {
        let started = call.conference_started?;
        let ended = call.conference_ended.unwrap_or(now);
        Some(cdr::Conference {
            started: self.wall(started),
            ended: self.wall(ended),
            seconds: ended.saturating_duration_since(started).as_secs_f64(),
        })
    }

    fn agent_leg_record(
        &self,
        leg: &AgentLeg,
        offered: Instant,
        answered: Option<Instant>,
        ended: Instant,
        sip_cause: Option<u16>,
    ) -> Leg {
        Leg {
            role: LegRole::Agent,
            call_id: leg.call_id().to_owned(),
            peer: leg.uac.peer.to_string(),
            started: self.wall(offered),
            answered: answered.map(|a| self.wall(a)),
            ended: self.wall(ended),
            sip_cause,
            party: Some(leg.agent.to_string()),
            queue: None,
        }
    }

    /// An agent's state changed: the state left becomes a record of its own.
    pub(super) fn record_agent_state(
        &mut self,
        now: Instant,
        agent: &acd::AgentId,
        from: &acd::AgentState,
        to: &acd::AgentState,
        duration: Duration,
    ) {
        use acd::AgentState as A;
        let started = self.wall(now.checked_sub(duration).unwrap_or(now));
        let ended = self.wall(now);
        let mut push = |state, reason: Option<String>, duration_s: f64| {
            let record = AgentStateRecord {
                seq: 0,
                agent: agent.to_string(),
                state,
                reason,
                started,
                ended,
                duration_s,
                call_id: None,
            };
            self.cdr_out.push_back((Record::AgentState(record), 0));
        };
        let seconds = duration.as_secs_f64();
        match from {
            A::LoggedOut => push(cdr::AgentState::Login, None, 0.0),
            A::Ready => push(cdr::AgentState::Ready, None, seconds),
            A::NotReady { reason } => {
                push(cdr::AgentState::NotReady, Some(reason.to_string()), seconds)
            }
            A::WrapUp { .. } => push(cdr::AgentState::WrapUp, None, seconds),
            // Ringing and talking are in the call records.
            A::Reserved { .. } | A::OnCall { .. } => {}
        }
        if matches!(to, A::LoggedOut) {
            push(cdr::AgentState::Logout, None, 0.0);
        }
    }

    /// The next record for the CDR writer, with the token to report back (a call number, or
    /// 0 when nothing waits on it).
    pub fn poll_cdr(&mut self) -> Option<(Record, CallNumber)> {
        self.cdr_out.pop_front()
    }

    /// These records are on disk: send the responses that waited for them.
    pub fn cdr_durable(&mut self, now: Instant, tokens: &[CallNumber]) {
        for token in tokens {
            for (key, response) in self.held_responses.remove(token).unwrap_or_default() {
                self.send_response(now, &key, response);
            }
        }
    }
}
