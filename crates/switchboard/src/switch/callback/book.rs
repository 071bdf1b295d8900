//! The callbacks themselves: who asked, where each one stands, every attempt so far, and the
//! rule that decides whether a failed attempt is tried again. No I/O: call control keeps the
//! SIP legs and media next to each entry and asks the book what to do.

use super::super::call::CallNumber;
use super::super::media_plane::CallMedia;
use super::super::uac_leg::UacLeg;
use acd::AgentId;
use cdr::{CallbackAttempt, CallbackOutcome};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Finished callbacks kept for `GET /api/callbacks` (the CDRs keep them all).
const FINISHED_KEPT: usize = 500;

/// Where a callback stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Waiting in its queue's ACD for an agent (it kept the caller's place).
    Waiting,
    /// An agent is reserved and their phone rings with the preview (`callback <number>`).
    Preview { agent: AgentId },
    /// The agent accepted: the customer is being dialled.
    Dialling { agent: AgentId },
    /// Customer and agent are talking.
    Connected { agent: AgentId },
    /// The last attempt failed; the next one starts at this time.
    RetryAt(Instant),
}

impl Stage {
    fn label(&self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Preview { .. } => "preview",
            Stage::Dialling { .. } => "dialling",
            Stage::Connected { .. } => "connected",
            Stage::RetryAt(_) => "retry-wait",
        }
    }

    pub fn agent(&self) -> Option<&AgentId> {
        match self {
            Stage::Preview { agent } | Stage::Dialling { agent } | Stage::Connected { agent } => {
                Some(agent)
            }
            Stage::Waiting | Stage::RetryAt(_) => None,
        }
    }
}

/// One INVITE Switchboard sent for a callback: to the agent's phone or to a carrier.
#[derive(Debug)]
pub struct OutgoingLeg {
    /// The INVITE, its transaction and, once answered, the dialog.
    pub uac: UacLeg,
    /// Numbers every INVITE of the callback, so a late answer to an older one is recognised.
    pub seq: u32,
    /// The trunk, on a customer leg.
    pub trunk: Option<String>,
    /// The carrier's digest challenge was answered on this leg (answered once only).
    pub authenticated: bool,
}

impl OutgoingLeg {
    pub fn call_id(&self) -> &str {
        self.uac.call_id()
    }
}

/// What to do after an attempt that did not reach the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try again at this time.
    RetryAt(Instant),
    /// Every allowed attempt is used up.
    GiveUp,
}

/// One callback in progress.
#[derive(Debug)]
pub struct Callback {
    /// Its id in the ACD and in call control (a call number of its own).
    pub id: CallNumber,
    /// The number to call back.
    pub number: String,
    pub queue: String,
    /// The CDR id of the call that asked.
    pub requested_by: String,
    pub requested: OffsetDateTime,
    /// The caller's place in the queue: when they started waiting.
    pub place: Instant,
    pub max_attempts: u32,
    pub retry: Duration,
    /// Attempts that ended (the customer dialled), in order.
    pub attempts: Vec<CallbackAttempt>,
    pub stage: Stage,
    /// INVITEs sent so far.
    pub invites: u32,
    pub agent_leg: Option<OutgoingLeg>,
    pub customer_leg: Option<OutgoingLeg>,
    pub media: Option<CallMedia>,
    /// The route's trunks for this attempt in failover order, and the next one to try.
    pub trunks: Vec<String>,
    pub next_trunk: usize,
    /// When the customer was first dialled in the current attempt.
    pub dialled_at: Option<Instant>,
    /// The calling number the customer sees when the route sets none: the number they called.
    pub caller_id: String,
    /// Its priority in the queue (campaign contacts wait below callers).
    pub priority: i32,
    /// Set on an attempt of a campaign contact.
    pub campaign: Option<CampaignContact>,
}

/// Which campaign contact a callback entry is an attempt on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignContact {
    pub campaign: u64,
    pub name: String,
    /// The contact's index in the campaign's list.
    pub contact: usize,
    /// Progressive mode: the agent's phone is asked to answer by itself.
    pub progressive: bool,
    /// The customer's zone: the calling window is read on its clocks (`None`: the window's own).
    pub time_zone: Option<jiff::tz::TimeZone>,
}

/// Who asked for a callback, where, and when.
#[derive(Debug, Clone)]
pub struct Booking {
    /// The number to call back.
    pub number: String,
    pub queue: String,
    /// The CDR id of the call that asked.
    pub requested_by: String,
    pub requested: OffsetDateTime,
    /// When the caller started waiting: the callback keeps this place in the queue.
    pub place: Instant,
    /// The calling number the customer sees when the route sets none.
    pub caller_id: String,
}

impl Callback {
    pub fn new(id: CallNumber, booking: Booking, max_attempts: u32, retry: Duration) -> Self {
        Self {
            id,
            number: booking.number,
            queue: booking.queue,
            requested_by: booking.requested_by,
            requested: booking.requested,
            place: booking.place,
            max_attempts,
            retry,
            attempts: Vec::new(),
            stage: Stage::Waiting,
            invites: 0,
            agent_leg: None,
            customer_leg: None,
            media: None,
            trunks: Vec::new(),
            next_trunk: 0,
            dialled_at: None,
            caller_id: booking.caller_id,
            priority: 0,
            campaign: None,
        }
    }

    /// Records an attempt that did not reach the customer and says what comes next.
    pub fn attempt_failed(&mut self, now: Instant, attempt: CallbackAttempt) -> AfterFailure {
        self.attempts.push(attempt);
        let used = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        // A number that does not exist will not exist after the retry delay either.
        let wrong_number = self
            .attempts
            .last()
            .is_some_and(|a| a.result == cdr::CallbackResult::WrongNumber);
        if used >= self.max_attempts || wrong_number {
            AfterFailure::GiveUp
        } else {
            let at = now + self.retry;
            self.stage = Stage::RetryAt(at);
            AfterFailure::RetryAt(at)
        }
    }

    fn view(&self, now: Instant, outcome: Option<CallbackOutcome>) -> CallbackView {
        CallbackView {
            id: self.id,
            number: self.number.clone(),
            queue: self.queue.clone(),
            requested_by: self.requested_by.clone(),
            state: match outcome {
                Some(_) => "finished",
                None => self.stage.label(),
            },
            agent: self.stage.agent().map(ToString::to_string),
            attempts: self.attempts.clone(),
            max_attempts: self.max_attempts,
            next_attempt_in_s: match self.stage {
                Stage::RetryAt(at) if outcome.is_none() => {
                    Some(at.saturating_duration_since(now).as_secs_f64())
                }
                _ => None,
            },
            outcome,
        }
    }
}

/// A callback as `GET /api/callbacks` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackView {
    pub id: CallNumber,
    pub number: String,
    pub queue: String,
    /// The CDR id of the call that asked.
    pub requested_by: String,
    /// `waiting`, `preview`, `dialling`, `connected`, `retry-wait` or `finished`.
    pub state: &'static str,
    /// The agent reserved for it now.
    pub agent: Option<String>,
    pub attempts: Vec<CallbackAttempt>,
    pub max_attempts: u32,
    /// Seconds until the next attempt, while waiting to retry.
    pub next_attempt_in_s: Option<f64>,
    /// How it ended; `None` while pending.
    pub outcome: Option<CallbackOutcome>,
}

/// A caller's pending callback as journalled next to the CDRs, so a restart keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PendingCallback {
    pub number: String,
    pub queue: String,
    pub requested_by: String,
    /// When the caller asked, in seconds since the epoch.
    pub requested_unix: i64,
    /// How long the caller had waited for their place when the journal was written.
    pub waited_s: u64,
    pub caller_id: String,
    pub attempts: Vec<CallbackAttempt>,
}

/// Every pending callback, and the latest finished ones.
#[derive(Debug, Default)]
pub struct CallbackBook {
    pending: BTreeMap<CallNumber, Callback>,
    finished: VecDeque<CallbackView>,
    /// A callers' callback was booked, tried or finished since the journal was last taken.
    journal_dirty: bool,
}

impl CallbackBook {
    pub fn insert(&mut self, callback: Callback) {
        self.journal_dirty |= callback.campaign.is_none();
        self.pending.insert(callback.id, callback);
    }

    /// Notes that a callers' callback changed (an attempt ended).
    pub fn touch(&mut self, id: CallNumber) {
        self.journal_dirty |= self.pending.get(&id).is_some_and(|c| c.campaign.is_none());
    }

    /// The callers' pending callbacks (not campaign attempts) when they changed since the
    /// last call; `waited` turns a callback's place into seconds waited.
    pub fn take_journal(
        &mut self,
        waited: impl Fn(Instant) -> u64,
    ) -> Option<Vec<PendingCallback>> {
        if !std::mem::take(&mut self.journal_dirty) {
            return None;
        }
        Some(
            self.pending
                .values()
                .filter(|c| c.campaign.is_none())
                .map(|c| PendingCallback {
                    number: c.number.clone(),
                    queue: c.queue.clone(),
                    requested_by: c.requested_by.clone(),
                    requested_unix: c.requested.unix_timestamp(),
                    waited_s: waited(c.place),
                    caller_id: c.caller_id.clone(),
                    attempts: c.attempts.clone(),
                })
                .collect(),
        )
    }

    pub fn contains(&self, id: CallNumber) -> bool {
        self.pending.contains_key(&id)
    }

    pub fn get(&self, id: CallNumber) -> Option<&Callback> {
        self.pending.get(&id)
    }

    pub fn get_mut(&mut self, id: CallNumber) -> Option<&mut Callback> {
        self.pending.get_mut(&id)
    }

    pub fn ids(&self) -> Vec<CallNumber> {
        self.pending.keys().copied().collect()
    }

    /// The callback whose agent or customer leg has this Call-ID.
    pub fn by_leg_call_id(&self, call_id: &str) -> Option<CallNumber> {
        self.pending
            .values()
            .find(|c| {
                [&c.agent_leg, &c.customer_leg]
                    .into_iter()
                    .flatten()
                    .any(|leg| leg.call_id() == call_id)
            })
            .map(|c| c.id)
    }

    /// Entries of campaign `campaign` waiting in the ACD for an agent.
    pub fn waiting_for_campaign(&self, campaign: u64) -> usize {
        self.pending
            .values()
            .filter(|c| {
                c.stage == Stage::Waiting
                    && c.campaign.as_ref().is_some_and(|o| o.campaign == campaign)
            })
            .count()
    }

    /// Whether any callback has a SIP leg or media in flight (shutdown waits for those).
    pub fn has_live_legs(&self) -> bool {
        self.pending
            .values()
            .any(|c| c.agent_leg.is_some() || c.customer_leg.is_some() || c.media.is_some())
    }

    /// Takes a callback out of the pending set, keeping its view as finished.
    pub fn finish(
        &mut self,
        now: Instant,
        id: CallNumber,
        outcome: CallbackOutcome,
    ) -> Option<Callback> {
        let callback = self.pending.remove(&id)?;
        self.journal_dirty |= callback.campaign.is_none();
        if self.finished.len() == FINISHED_KEPT {
            self.finished.pop_front();
        }
        self.finished.push_back(callback.view(now, Some(outcome)));
        Some(callback)
    }

    /// Pending callbacks (oldest request first), then the finished ones (latest last).
    pub fn views(&self, now: Instant) -> Vec<CallbackView> {
        let mut views: Vec<_> = self.pending.values().map(|c| c.view(now, None)).collect();
        views.extend(self.finished.iter().cloned());
        views
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdr::CallbackResult;

    fn attempt(result: CallbackResult) -> CallbackAttempt {
        CallbackAttempt {
            at: OffsetDateTime::UNIX_EPOCH,
            agent: "1001".into(),
            trunk: Some("carrier".into()),
            result,
            sip_cause: None,
        }
    }

    fn callback(now: Instant, max_attempts: u32) -> Callback {
        let booking = Booking {
            number: "+15550001".into(),
            queue: "support".into(),
            requested_by: "sb-1-3".into(),
            requested: OffsetDateTime::UNIX_EPOCH,
            place: now,
            caller_id: "100".into(),
        };
        Callback::new(7, booking, max_attempts, Duration::from_secs(60))
    }

    #[test]
    fn a_failed_attempt_is_retried_after_the_delay_until_the_attempts_are_used_up() {
        let now = Instant::now();
        let mut cb = callback(now, 3);
        assert_eq!(
            cb.attempt_failed(now, attempt(CallbackResult::Busy)),
            AfterFailure::RetryAt(now + Duration::from_secs(60))
        );
        assert_eq!(cb.stage, Stage::RetryAt(now + Duration::from_secs(60)));
        let later = now + Duration::from_secs(61);
        assert_eq!(
            cb.attempt_failed(later, attempt(CallbackResult::NoAnswer)),
            AfterFailure::RetryAt(later + Duration::from_secs(60))
        );
        assert_eq!(
            cb.attempt_failed(later, attempt(CallbackResult::Busy)),
            AfterFailure::GiveUp
        );
        assert_eq!(cb.attempts.len(), 3);
    }

    #[test]
    fn one_allowed_attempt_gives_up_at_the_first_failure() {
        let now = Instant::now();
        let mut cb = callback(now, 1);
        assert_eq!(
            cb.attempt_failed(now, attempt(CallbackResult::Failed)),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn a_wrong_number_is_given_up_at_once() {
        let now = Instant::now();
        let mut cb = callback(now, 3);
        assert_eq!(
            cb.attempt_failed(now, attempt(CallbackResult::WrongNumber)),
            AfterFailure::GiveUp
        );
    }

    #[test]
    fn the_list_shows_pending_callbacks_then_finished_ones_with_their_outcome() {
        let now = Instant::now();
        let mut book = CallbackBook::default();
        let mut waiting = callback(now, 3);
        waiting.attempt_failed(now, attempt(CallbackResult::Busy));
        book.insert(waiting);
        let mut done = callback(now, 3);
        done.id = 8;
        book.insert(done);
        assert!(book.finish(now, 8, CallbackOutcome::Connected).is_some());
        assert!(book.finish(now, 8, CallbackOutcome::Connected).is_none());
        let views = book.views(now + Duration::from_secs(20));
        assert_eq!(views.len(), 2);
        assert_eq!(views[0].state, "retry-wait");
        assert_eq!(views[0].next_attempt_in_s, Some(40.0));
        assert_eq!(views[0].outcome, None);
        assert_eq!(views[1].state, "finished");
        assert_eq!(views[1].outcome, Some(CallbackOutcome::Connected));
        assert!(!book.contains(8));
    }

    #[test]
    fn only_the_latest_finished_callbacks_are_kept() {
        let now = Instant::now();
        let mut book = CallbackBook::default();
        for id in 0..(FINISHED_KEPT as u64 + 5) {
            let mut cb = callback(now, 1);
            cb.id = id;
            book.insert(cb);
            book.finish(now, id, CallbackOutcome::NotReached);
        }
        let views = book.views(now);
        assert_eq!(views.len(), FINISHED_KEPT);
        assert_eq!(views[0].id, 5);
    }
}
