//! A call as the B2BUA holds it: the trunk leg it answered as a UAS, and the agent leg it
//! places as a UAC, one attempt at a time.

mod attempt;
mod dialog_requests;
mod end;
#[cfg(test)]
mod fixtures;
mod handle;
mod hangup;
mod record;
mod self_service;
pub mod timers;

pub use dialog_requests::DialogRefusal;
pub use handle::{CallInput, CallOutput};
pub use hangup::SurveyPlan;
pub use self_service::SURVEY_KEY_WAIT;

use acd::AgentId;
use sip::dialog::Dialog;
use sip::rsip::Request;
use sip::transaction::TransactionKey;
use std::time::Instant;

/// Switchboard's own id for a call (also the ACD's call id).
pub type CallNumber = u64;

/// Where a call is in its life, with what only that stage has: the IVR session while the
/// caller is in the menus, the cause a last prompt ends the call with, the survey's scale.
/// (Before this enum those were three `Option` fields beside a `Phase` that had to agree with
/// them.)
#[derive(Debug)]
pub enum CallState {
    /// Answered by Switchboard, in the IVR's menus.
    Ivr(Box<crate::ivr::IvrSession>),
    /// Waiting in a queue for an agent.
    Queued,
    /// An agent's phone is being rung (`Call::agent_leg` is that attempt).
    Offering,
    /// Both legs are answered and media flows between them.
    Connected,
    /// Hearing the voicemail greeting, or leaving a message.
    Voicemail,
    /// The agent hung up; the caller is asked for a score on this scale.
    Survey(crate::config::SurveyScale),
    /// Hearing a last prompt ("goodbye", "closed", the callback confirmation); the call ends
    /// with this cause once it has played, even if the caller hangs up during it.
    Farewell(super::b2bua::EndCause),
}

impl CallState {
    /// Talking with an agent.
    pub fn is_connected(&self) -> bool {
        matches!(self, CallState::Connected)
    }

    /// In the queue: waiting, or an agent being rung.
    pub fn is_queued(&self) -> bool {
        matches!(self, CallState::Queued | CallState::Offering)
    }

    /// The IVR session, while the caller is in the menus.
    pub fn ivr(&self) -> Option<&crate::ivr::IvrSession> {
        match self {
            CallState::Ivr(session) => Some(session),
            _ => None,
        }
    }

    /// The IVR session, to feed it an event.
    pub fn ivr_mut(&mut self) -> Option<&mut crate::ivr::IvrSession> {
        match self {
            CallState::Ivr(session) => Some(session),
            _ => None,
        }
    }

    /// How the call ends whatever ends it now (the caller hanging up included): the cause its
    /// last prompt was played for, or the agent's hang-up during the survey.
    pub fn settled_cause(&self) -> Option<super::b2bua::EndCause> {
        match self {
            CallState::Farewell(cause) => Some(cause.clone()),
            CallState::Survey(_) => Some(super::b2bua::EndCause::AgentHangup),
            _ => None,
        }
    }

    /// Switchboard speaks to the caller itself (menus, voicemail, survey, a last prompt):
    /// no agent is on the call and it is not waiting in a queue.
    pub fn is_self_service(&self) -> bool {
        matches!(
            self,
            CallState::Ivr(_)
                | CallState::Voicemail
                | CallState::Survey(_)
                | CallState::Farewell(_)
        )
    }
}

/// Which leg of a call a message belongs to: the caller's (trunk) or the agent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Trunk,
    Agent,
}

impl Side {
    /// The media session's name for this leg.
    pub fn media_leg(self) -> media::Leg {
        match self {
            Side::Trunk => media::Leg::Trunk,
            Side::Agent => media::Leg::Agent,
        }
    }

    /// The leg facing the other party.
    pub fn other(self) -> Side {
        match self {
            Side::Trunk => Side::Agent,
            Side::Agent => Side::Trunk,
        }
    }
}

/// The inbound (trunk) leg, where Switchboard is the UAS.
#[derive(Debug)]
pub struct TrunkLeg {
    /// The INVITE as received (responses are built from it).
    pub invite: Request,
    /// Its server transaction.
    pub server_key: TransactionKey,
    /// Our To-tag on this leg.
    pub local_tag: String,
    /// The dialog, formed when the INVITE arrives (we send our tag in every response).
    pub dialog: Dialog,
    /// A final response has been sent.
    pub finalized: bool,
    /// A 180 has been sent (so queueing does not repeat it).
    pub ringing_sent: bool,
    /// The RFC 4028 session timer the trunk asked for, once answered.
    pub session_timer: Option<super::session_timer::SessionTimer>,
    /// Switchboard's session refresh awaiting its answer; a renegotiation by the trunk
    /// meanwhile clears it, so the late answer does not overrule the new timer.
    pub refresh_in_flight: Option<TransactionKey>,
    /// Switchboard's own re-INVITE (a session refresh) awaits its answer: a re-INVITE from
    /// the trunk meanwhile gets 491 (RFC 3261 §14.2).
    pub reinvite_pending: bool,
}

/// The outbound (agent) leg of one attempt, where Switchboard is the UAC.
#[derive(Debug)]
pub struct AgentLeg {
    /// The agent rung.
    pub agent: AgentId,
    /// Attempt number within the call (stale timers and responses compare it).
    pub attempt: u32,
    /// The INVITE, its transaction and, once the agent answered, the dialog.
    pub uac: super::uac_leg::UacLeg,
    /// The phone takes INFO (its 2xx listed it in Allow, or had no Allow).
    pub accepts_info: bool,
}

/// Time a connected call spends on hold (either party holding), for the CDR.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HoldClock {
    since: Option<Instant>,
    total: std::time::Duration,
}

impl HoldClock {
    /// Someone put the call on hold (`true`) or nobody holds it any more.
    pub fn set(&mut self, now: Instant, holding: bool) {
        match (self.since, holding) {
            (None, true) => self.since = Some(now),
            (Some(since), false) => {
                self.total += now.saturating_duration_since(since);
                self.since = None;
            }
            _ => {}
        }
    }

    /// Someone holds the call now.
    pub fn is_holding(&self) -> bool {
        self.since.is_some()
    }

    /// Time on hold so far, the current hold included.
    pub fn total(&self, now: Instant) -> std::time::Duration {
        self.total
            + self.since.map_or(std::time::Duration::ZERO, |since| {
                now.saturating_duration_since(since)
            })
    }
}

/// One call through the switch.
#[derive(Debug)]
pub struct Call {
    /// Our id for it.
    pub id: CallNumber,
    /// The trunk it came from.
    pub trunk: String,
    /// The dialled number.
    pub did: String,
    /// The caller's number: the asserted identity from a trusted trunk, else the From user.
    pub caller: String,
    /// Who is calling, as the agent's phone is told.
    pub identity: super::identity::CallerIdentity,
    /// The queue it was routed to.
    pub queue: String,
    /// Its priority in the queue.
    pub priority: i32,
    /// Tag from the caller's priority list (agent INVITE header and CDR).
    pub label: Option<String>,
    /// The trunk leg.
    pub trunk_leg: TrunkLeg,
    /// The current agent attempt, if any.
    pub agent_leg: Option<AgentLeg>,
    /// Attempts made so far.
    pub attempts: u32,
    /// Where the call is in its life.
    pub state: CallState,
    /// When the INVITE arrived.
    pub arrived: Instant,
    /// When the call was first offered to an agent.
    pub first_offered: Option<Instant>,
    /// When the current (or answering) agent attempt started ringing.
    pub last_offered: Option<Instant>,
    /// When the first agent answered.
    pub answered: Option<Instant>,
    /// The last agent the call was offered to.
    pub last_agent: Option<AgentId>,
    /// Agent legs that ended before the call did, for the CDR (in order): attempts that did
    /// not connect, agents who transferred the call away.
    pub ended_legs: Vec<cdr::Leg>,
    /// Transfers of the call, in order.
    pub transfers: Vec<cdr::Transfer>,
    /// Ringing time of the attempts that did not connect.
    pub failed_ring_time: std::time::Duration,
    /// The call's anchored media; `None` when the trunk sent no SDP offer (media then flows
    /// end to end, as the phones negotiate it).
    pub media: Option<super::media_plane::CallMedia>,
    /// Keys and menus of the IVR visit, for the CDR.
    pub ivr_path: String,
    /// When the caller left the IVR.
    pub ivr_ended: Option<Instant>,
    /// Prompt language (from the number, or chosen in the IVR).
    pub language: Option<String>,
    /// What the caller hears now.
    pub audio: super::caller_media::CallerAudio,
    /// The call's own timers (ring, IVR, announcement, voicemail, survey).
    pub timers: timers::CallTimers,
    /// Where the call goes once the trunk's ACK has answered Switchboard's offer.
    pub pending_target: Option<crate::config::NumberTarget>,
    /// Time on hold since the agent answered.
    pub hold: HoldClock,
    /// Held from the API (music to the caller, nothing to the agent).
    pub api_hold: bool,
    /// Where the call (or the voicemail message) is recorded.
    pub recording: Option<std::path::PathBuf>,
    /// The recording could not be written.
    pub recording_failed: bool,
    /// Supervisors on the call now (listening, whispering or barged in).
    pub monitors: Vec<super::supervision::Monitor>,
    /// Supervisor sessions that have ended, for the CDR.
    pub supervisions: Vec<cdr::Supervision>,
    /// A colleague consulted during the call (attended transfer, conference).
    pub consult: Option<super::consult::Consult>,
    /// When caller, agent and colleague were joined in a conference.
    pub conference_started: Option<Instant>,
    /// When that conference became a two-party call again.
    pub conference_ended: Option<Instant>,
    /// The customer's name, from the caller lookup.
    pub customer_name: Option<String>,
    /// The configured agent the caller lookup named; preferred over sticky routing's choice.
    pub lookup_agent: Option<AgentId>,
    /// The agent the call waited for first when it was queued (the CDR's `preferred_agent`).
    pub preferred_agent: Option<AgentId>,
    /// When the agent hung up first and the caller was asked for a survey score (talk time
    /// ends there).
    pub agent_left_for_survey: Option<Instant>,
    /// The score the caller keyed in the survey.
    pub survey_score: Option<u8>,
    /// Turns the call's instants into the wall-clock times of its record.
    pub clock: super::wall_clock::WallClock,
}

impl AgentLeg {
    /// The Call-ID Switchboard gave this attempt's INVITE.
    pub fn call_id(&self) -> &str {
        self.uac.call_id()
    }

    /// The agent answered.
    pub fn is_answered(&self) -> bool {
        self.uac.is_answered()
    }
}

/// What routing decided about a new call before it exists: who it is for and where it waits.
#[derive(Debug)]
pub struct Arrival {
    /// Switchboard's id for the call.
    pub id: CallNumber,
    /// The trunk it came from.
    pub trunk: String,
    /// The dialled number.
    pub did: String,
    /// Who is calling.
    pub identity: super::identity::CallerIdentity,
    /// The queue the number routes to.
    pub queue: String,
    /// Its priority in the queue.
    pub priority: i32,
    /// Tag from the caller's priority list.
    pub label: Option<String>,
    /// The number's prompt language.
    pub language: Option<String>,
}

impl Call {
    /// A call that has just arrived on `trunk_leg` at `now`, waiting to be routed.
    pub fn new(
        arrival: Arrival,
        trunk_leg: TrunkLeg,
        media: Option<super::media_plane::CallMedia>,
        now: Instant,
        clock: super::wall_clock::WallClock,
    ) -> Self {
        let Arrival {
            id,
            trunk,
            did,
            identity,
            queue,
            priority,
            label,
            language,
        } = arrival;
        Self {
            id,
            trunk,
            did,
            caller: identity.number.clone(),
            identity,
            queue,
            priority,
            label,
            trunk_leg,
            agent_leg: None,
            attempts: 0,
            state: CallState::Queued,
            arrived: now,
            first_offered: None,
            last_offered: None,
            answered: None,
            last_agent: None,
            ended_legs: Vec::new(),
            transfers: Vec::new(),
            failed_ring_time: std::time::Duration::ZERO,
            media,
            ivr_path: String::new(),
            ivr_ended: None,
            language,
            audio: super::caller_media::CallerAudio::Silence,
            timers: Default::default(),
            pending_target: None,
            recording: None,
            recording_failed: false,
            monitors: Vec::new(),
            supervisions: Vec::new(),
            consult: None,
            conference_started: None,
            conference_ended: None,
            hold: Default::default(),
            api_hold: false,
            customer_name: None,
            lookup_agent: None,
            preferred_agent: None,
            agent_left_for_survey: None,
            survey_score: None,
            clock,
        }
    }

    /// The dialog of one side (the agent's exists only once the agent answered).
    pub fn leg_dialog(&mut self, side: Side) -> Option<&mut Dialog> {
        match side {
            Side::Trunk => Some(&mut self.trunk_leg.dialog),
            Side::Agent => self.agent_leg.as_mut().and_then(|l| l.uac.dialog_mut()),
        }
    }

    /// The agent currently connected or being rung.
    pub fn agent(&self) -> Option<&AgentId> {
        self.agent_leg.as_ref().map(|leg| &leg.agent)
    }

    /// The agent talking with the caller: the current agent, or the colleague an attended
    /// transfer passed the call to.
    pub fn talking_agent(&self) -> Option<String> {
        self.agent().map(ToString::to_string).or_else(|| {
            self.consult
                .as_ref()
                .filter(|c| c.stage == super::consult::ConsultStage::Transferred)
                .map(|c| c.target.clone())
        })
    }

    /// The language the caller's prompts are played in.
    pub fn prompt_language(&self) -> String {
        self.language
            .clone()
            .unwrap_or_else(|| crate::prompt_library::DEFAULT_LANGUAGE.to_owned())
    }

    /// When talk time ends: when the agent left for the survey, else `now`.
    pub fn talk_ended(&self, now: Instant) -> Instant {
        self.agent_left_for_survey.unwrap_or(now)
    }

    /// When the call started waiting for an agent: on arrival, or when it left the IVR.
    pub fn enqueued_at(&self) -> Instant {
        self.ivr_ended.unwrap_or(self.arrived)
    }
}

#[cfg(test)]
mod tests {
    use super::HoldClock;
    use std::time::{Duration, Instant};

    #[test]
    fn hold_time_adds_up_over_several_holds_and_counts_the_current_one() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut hold = HoldClock::default();
        assert_eq!(hold.total(t0 + s(5)), Duration::ZERO);
        hold.set(t0 + s(10), true);
        hold.set(t0 + s(12), true); // the other party holds too: still one hold
        hold.set(t0 + s(30), false);
        hold.set(t0 + s(40), true);
        assert_eq!(hold.total(t0 + s(45)), s(25));
        hold.set(t0 + s(50), false);
        hold.set(t0 + s(60), false);
        assert_eq!(hold.total(t0 + s(90)), s(30));
    }
}
