//! Building call detail records from a finished call, and holding the call's last response
//! until the record is durable (see `cdr_writer`).

use super::call::{AgentLeg, CallNumber};
use super::{Switch, SwitchTimer};

/// Longest a call's record waits for its media session's final report.
pub(super) const PARKED_CDR_LIMIT: Duration = Duration::from_secs(5);
use cdr::{AgentStateRecord, CallRecord, Record};
use sip::rsip::Response;
use sip::transaction::TransactionKey;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

impl Switch {
    /// Wall-clock time of a monotonic instant (CDRs carry UTC timestamps).
    pub(super) fn wall(&self, at: Instant) -> OffsetDateTime {
        self.clock.at(at)
    }

    /// Queues the record of call `id` for the journal. The responses in `held` go out only
    /// once it is durable.
    pub(super) fn file_call_record(
        &mut self,
        now: Instant,
        id: CallNumber,
        record: CallRecord,
        held: Vec<(TransactionKey, Response)>,
    ) {
        if !held.is_empty() {
            self.held_responses.insert(id, held);
        }
        if self.media.is_running(id) {
            // The recording's fate is only known when the media session has ended: the record
            // waits for that (moments after the hang-up), or for the deadline as a backstop.
            self.parked_cdrs.insert(id, record);
            self.timers
                .schedule(now + PARKED_CDR_LIMIT, SwitchTimer::FlushCdr { call: id });
        } else {
            self.cdr_out.push_back((Record::Call(record), id));
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

    /// An agent attempt ended without connecting (or was passed on): keep it for the call's
    /// record.
    pub(super) fn close_attempt(
        &mut self,
        now: Instant,
        id: CallNumber,
        leg: &AgentLeg,
        sip_cause: Option<u16>,
    ) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.close_attempt(now, leg, sip_cause);
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
