//! The CDR data model and its JSON form.
//!
//! The JSON written here is a stable, documented interface: journal segments, `cdr-*.jsonl`
//! files and the PostgreSQL sink all carry exactly this shape, and reports read it back months
//! later. Rules that keep it stable:
//!
//! - field names are `snake_case` and never renamed; enum values are `kebab-case`;
//! - instants are RFC 3339 strings in UTC (`2025-03-01T08:00:00.5Z`);
//! - durations are seconds as JSON numbers (fractions allowed; values with up to 15
//!   significant digits, e.g. millisecond resolution, read back bit-exact);
//! - readers ignore fields they do not know, and lists/optional fields may be absent
//!   (absent = empty / `null`), so a newer writer can add fields without breaking older readers.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Calls abandoned after waiting less than this many seconds are `abandoned-short`: the
/// caller hung up before anyone could reasonably have answered (misdial, changed mind), so
/// reports exclude them from answer rate and service level.
pub const SHORT_ABANDON_THRESHOLD_S: f64 = 5.0;

/// One line of a journal segment or CDR file: a call or an agent-state period.
///
/// Serialized with a `"type"` tag: `{"type":"call",...}` or `{"type":"agent_state",...}`.
// Nearly every record is a call, so boxing the large variant would add an allocation per
// record to save memory only on the rare agent-state ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// One call, all of its legs.
    Call(CallRecord),
    /// One period an agent spent in a state.
    AgentState(AgentStateRecord),
}

impl Record {
    /// The journal sequence number carried by the record.
    pub fn seq(&self) -> u64 {
        match self {
            Record::Call(call) => call.seq,
            Record::AgentState(state) => state.seq,
        }
    }

    /// Stamps the journal sequence number (the journal does this on append).
    pub fn set_seq(&mut self, seq: u64) {
        match self {
            Record::Call(call) => call.seq = seq,
            Record::AgentState(state) => state.seq = seq,
        }
    }

    /// Checks what JSON cannot carry faithfully: durations must be finite and non-negative
    /// (serde_json would write NaN as `null`, which then fails to read back).
    pub fn validate(&self) -> Result<(), InvalidRecord> {
        let durations: &[(&'static str, f64)] = match self {
            Record::Call(call) => &[
                ("wait_s", call.wait_s),
                ("ring_s", call.ring_s),
                ("talk_s", call.talk_s),
                ("hold_s", call.hold_s),
                ("wrap_up_s", call.wrap_up_s),
                ("service_level_threshold_s", call.service_level_threshold_s),
            ],
            Record::AgentState(state) => &[("duration_s", state.duration_s)],
        };
        match durations
            .iter()
            .find(|(_, value)| !(value.is_finite() && *value >= 0.0))
        {
            Some(&(field, value)) => Err(InvalidRecord::BadDuration { field, value }),
            None => Ok(()),
        }
    }

    /// Parses one JSON line as written by this crate.
    ///
    /// Serde reads an internally tagged enum by first buffering the whole object; since our
    /// writer always puts `"type"` first, the common prefixes are recognised and the variant
    /// parsed directly (its struct ignores the `type` field), which is several times faster.
    /// Anything else takes the general path, so the result is the same either way.
    pub fn from_json(line: &[u8]) -> Result<Record, serde_json::Error> {
        if line.starts_with(br#"{"type":"call","#) {
            serde_json::from_slice(line).map(Record::Call)
        } else if line.starts_with(br#"{"type":"agent_state","#) {
            serde_json::from_slice(line).map(Record::AgentState)
        } else {
            serde_json::from_slice(line)
        }
    }

    /// The instant the record's activity ended; CDR files are rotated by its UTC date.
    pub fn ended(&self) -> OffsetDateTime {
        match self {
            Record::Call(call) => call.ended,
            Record::AgentState(state) => state.ended,
        }
    }
}

/// Why a record was refused before it reached the journal.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRecord {
    /// A duration field is NaN, infinite or negative.
    #[error("{field} is {value}; durations must be finite and >= 0 seconds")]
    BadDuration {
        /// The JSON name of the field.
        field: &'static str,
        /// The offending value.
        value: f64,
    },
}

/// Everything about one call, from the trunk INVITE to the last BYE, in one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Journal sequence number: assigned by the journal on append (whatever the caller put here
    /// is replaced), strictly increasing per node. Sinks use it to make writes idempotent.
    #[serde(default)]
    pub seq: u64,
    /// Switchboard's own call id, unique per call; the key that links recordings, events and
    /// this record.
    pub id: String,
    /// SIP Call-ID of the inbound trunk leg, to match the carrier's or PBX's own records.
    pub trunk_call_id: String,
    /// When the trunk INVITE arrived.
    #[serde(with = "crate::timestamp::required")]
    pub arrived: OffsetDateTime,
    /// When the caller left the IVR (menu finished or skipped); absent if the call never
    /// reached the IVR.
    #[serde(default, with = "crate::timestamp::optional")]
    pub ivr_ended: Option<OffsetDateTime>,
    /// When the call entered the queue named in `queue`; absent if it never queued.
    #[serde(default, with = "crate::timestamp::optional")]
    pub enqueued: Option<OffsetDateTime>,
    /// When the call was first offered to an agent (the agent's phone started ringing).
    #[serde(default, with = "crate::timestamp::optional")]
    pub offered: Option<OffsetDateTime>,
    /// When an agent answered.
    #[serde(default, with = "crate::timestamp::optional")]
    pub answered: Option<OffsetDateTime>,
    /// When the last leg ended (final BYE or final failure response).
    #[serde(with = "crate::timestamp::required")]
    pub ended: OffsetDateTime,
    /// Caller number as received from the trunk (P-Asserted-Identity or From user part).
    pub caller: String,
    /// Dialled number (DID) the call arrived on (Request-URI user part).
    pub did: String,
    /// IVR nodes and choices in the order the caller went through them, e.g.
    /// `["main", "2", "billing"]`; empty if there was no IVR.
    #[serde(default)]
    pub ivr_path: Vec<String>,
    /// Language of the prompt set the caller chose or was given (e.g. `en`, `zh`).
    #[serde(default)]
    pub language: Option<String>,
    /// The queue the call was in last (after any overflow); absent if it never queued.
    #[serde(default)]
    pub queue: Option<String>,
    /// The agent who answered or, for an unanswered call, the last agent it was offered to.
    #[serde(default)]
    pub agent: Option<String>,
    /// ACD priority the call was queued with (higher is served first); negative priorities
    /// are kept as they are (-1000000..=1000000).
    #[serde(default)]
    pub priority: i32,
    /// Tag of the caller's priority list (`[[number.caller_priority]] label`), or the label
    /// the caller lookup (`[lookup]`) gave, if any.
    #[serde(default)]
    pub label: Option<String>,
    /// The customer's name as the caller lookup (`[lookup]`) gave it.
    #[serde(default)]
    pub customer_name: Option<String>,
    /// The agent the call waited for first: the caller's last agent (sticky routing) or the
    /// one the caller lookup named; absent when there was none.
    #[serde(default)]
    pub preferred_agent: Option<String>,
    /// `preferred_agent` answered the call.
    #[serde(default)]
    pub preferred_agent_taken: bool,
    /// Seconds from `enqueued` until answered or until the call left the queue otherwise
    /// (abandon, overflow, timeout, callback, voicemail); includes ringing. 0 if never queued.
    #[serde(default)]
    pub wait_s: f64,
    /// Seconds agents' phones rang for this call, summed over every offer.
    #[serde(default)]
    pub ring_s: f64,
    /// Seconds from answer to the end of the conversation, hold time excluded.
    #[serde(default)]
    pub talk_s: f64,
    /// Seconds the caller spent on hold after answer.
    #[serde(default)]
    pub hold_s: f64,
    /// Seconds of after-call work (wrap-up) the answering agent spent on this call.
    #[serde(default)]
    pub wrap_up_s: f64,
    /// How the call ended, from the call centre's point of view.
    pub disposition: Disposition,
    /// Which side released the call.
    pub hangup_side: HangupSide,
    /// SIP status code that ended the call (e.g. 486, 487, 503), or `null` when it ended with a
    /// normal BYE.
    #[serde(default)]
    pub sip_cause: Option<u16>,
    /// Transfers in the order they happened.
    #[serde(default)]
    pub transfers: Vec<Transfer>,
    /// Post-call survey score (1–10), if the caller answered the survey.
    #[serde(default)]
    pub survey_score: Option<u8>,
    /// Path of the call recording (WAV), if the call was recorded.
    #[serde(default)]
    pub recording: Option<String>,
    /// Every SIP leg of the call (trunk leg first, then agent legs in order).
    #[serde(default)]
    pub legs: Vec<Leg>,
    /// Supervisors who joined the call (listen, whisper, barge), in the order they joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supervisions: Vec<Supervision>,
    /// The three-way conference of caller, agent and consulted agent, if one was held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conference: Option<Conference>,
    /// Service-level answer threshold (seconds) of `queue` when the call was queued, copied so
    /// reports stay right after the queue's configuration changes; 0 if it never queued.
    #[serde(default)]
    pub service_level_threshold_s: f64,
    /// Whether a caller called in or an agent called out (absent in older records: inbound).
    #[serde(default)]
    pub direction: Direction,
    /// For a call out: what the agent dialled and where it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbound: Option<OutboundCall>,
    /// For a callback a waiting caller asked for: every attempt to reach them and the outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
}

/// A callback: the customer who pressed the callback key, each attempt to call them back
/// (an agent reserved and accepting first, then the customer dialled) and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callback {
    /// The number called back (the caller's number of the call that asked).
    pub number: String,
    /// The queue whose agents call back.
    pub queue: String,
    /// The id of the inbound call that asked for the callback.
    pub requested_by: String,
    /// When the caller asked.
    #[serde(with = "crate::timestamp::required")]
    pub requested: OffsetDateTime,
    /// Every attempt to reach the customer, in order.
    pub attempts: Vec<CallbackAttempt>,
    /// How the callback ended.
    pub outcome: CallbackOutcome,
    /// The campaign whose contact this was an attempt on (`None`: a caller's callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// One attempt to reach a customer who asked for a callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAttempt {
    /// When the customer was dialled.
    #[serde(with = "crate::timestamp::required")]
    pub at: OffsetDateTime,
    /// The agent who accepted the callback and was reserved for it.
    pub agent: String,
    /// The trunk that answered, or the last one tried.
    #[serde(default)]
    pub trunk: Option<String>,
    /// What the customer's side answered.
    pub result: CallbackResult,
    /// The carrier's final status when it refused.
    #[serde(default)]
    pub sip_cause: Option<u16>,
}

/// What one callback attempt came to (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackResult {
    /// The customer answered and was connected to the agent.
    Answered,
    /// The customer's line was busy (486/600).
    Busy,
    /// Nobody answered (408, 480, 487, a timeout).
    NoAnswer,
    /// The call could not be placed (no route, every trunk failed, a refusal).
    Failed,
    /// The carrier says the number does not exist (404, 484, 604): never retried.
    WrongNumber,
}

/// How a callback ended (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallbackOutcome {
    /// The customer was reached and spoke to an agent.
    Connected,
    /// Every allowed attempt failed (`callback_max_attempts`).
    NotReached,
    /// Switchboard stopped before the callback was made (shutdown, queue removed, no route).
    Cancelled,
}

/// Which way a call went (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// A caller reached Switchboard through a trunk.
    #[default]
    Inbound,
    /// An agent dialled out through a trunk.
    Outbound,
}

/// The facts of a call out. Its legs are the agent's phone (`agent`) first, then one `trunk`
/// leg per carrier attempt in failover order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundCall {
    /// The number as the agent dialled it.
    pub dialled: String,
    /// The number as the carrier was sent it (after the route's strip/prepend).
    pub sent: String,
    /// The calling number the carrier saw.
    pub caller_id: String,
    /// The trunk that answered, or the last one tried; `None` if none was tried.
    #[serde(default)]
    pub trunk: Option<String>,
    /// Carrier attempts made (failover and digest retries count once per trunk).
    #[serde(default)]
    pub attempts: u32,
}

/// How a call ended, from the call centre's point of view (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Disposition {
    /// An agent answered.
    Answered,
    /// The caller hung up while queued or ringing, after at least 5 s of waiting.
    Abandoned,
    /// The caller hung up after waiting less than [`SHORT_ABANDON_THRESHOLD_S`].
    AbandonedShort,
    /// The queue sent the call on to its overflow destination.
    Overflowed,
    /// The call reached the queue's maximum wait and was ended or diverted.
    TimedOut,
    /// The caller asked to be called back and hung up, keeping their place.
    CallbackRequested,
    /// The caller left a voicemail message.
    Voicemail,
    /// The caller's need was served by the IVR alone.
    IvrCompleted,
    /// Switchboard refused the call (ACL, unknown DID, overload, closed).
    Rejected,
}

impl Disposition {
    /// Applies the short-abandon rule: `Abandoned` with `wait_s` under
    /// [`SHORT_ABANDON_THRESHOLD_S`] becomes `AbandonedShort`; everything else is unchanged.
    pub fn classify(self, wait_s: f64) -> Disposition {
        match self {
            Disposition::Abandoned if wait_s < SHORT_ABANDON_THRESHOLD_S => {
                Disposition::AbandonedShort
            }
            other => other,
        }
    }

    /// The JSON/CSV spelling of the disposition.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Answered => "answered",
            Disposition::Abandoned => "abandoned",
            Disposition::AbandonedShort => "abandoned-short",
            Disposition::Overflowed => "overflowed",
            Disposition::TimedOut => "timed-out",
            Disposition::CallbackRequested => "callback-requested",
            Disposition::Voicemail => "voicemail",
            Disposition::IvrCompleted => "ivr-completed",
            Disposition::Rejected => "rejected",
        }
    }
}

/// Which side released the call (`snake_case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HangupSide {
    /// The caller (trunk side) hung up.
    Caller,
    /// The agent hung up.
    Agent,
    /// Switchboard ended the call (timeout, rejection, end of IVR, shutdown).
    System,
}

impl HangupSide {
    /// The JSON/CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupSide::Caller => "caller",
            HangupSide::Agent => "agent",
            HangupSide::System => "system",
        }
    }
}

/// One transfer of the call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// When the transfer completed.
    #[serde(with = "crate::timestamp::required")]
    pub at: OffsetDateTime,
    /// The agent who transferred the call.
    pub from_agent: String,
    /// Where it went: an agent id, a queue name or an external number, as dialled.
    pub to: String,
    /// Blind or attended (consultative).
    pub kind: TransferKind,
}

/// How a transfer was made (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferKind {
    /// Transferred without speaking to the target first.
    Blind,
    /// The agent consulted the target before completing the transfer.
    Attended,
}

/// A three-way conference on a call (caller, first agent, consulted agent): from when all
/// three were joined until the first agent left or the call ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conference {
    /// When the three were joined.
    #[serde(with = "crate::timestamp::required")]
    pub started: OffsetDateTime,
    /// When it became a two-party call again (or the call ended).
    #[serde(with = "crate::timestamp::required")]
    pub ended: OffsetDateTime,
    /// Conference time in seconds.
    pub seconds: f64,
}

/// A supervisor's session on a call: who watched whom, in which modes, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Supervision {
    /// The supervisor's agent id.
    pub supervisor: String,
    /// The agent whose conversation was supervised.
    pub agent: String,
    /// The modes used, in order (`listen`, `whisper`, `barge`); a mode switch adds one.
    pub modes: Vec<String>,
    /// When the supervisor's leg joined the call's audio.
    #[serde(with = "crate::timestamp::required")]
    pub started: OffsetDateTime,
    /// When it left (the supervisor hung up, the agent left the call, or the call ended).
    #[serde(with = "crate::timestamp::required")]
    pub ended: OffsetDateTime,
}

/// One SIP leg of a call (the B2BUA has one trunk leg and one leg per agent it rang).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// Which side the leg faces.
    pub role: LegRole,
    /// SIP Call-ID of this leg.
    pub call_id: String,
    /// The remote party: the trunk's source address or the agent's contact URI.
    pub peer: String,
    /// When the leg's INVITE was sent or received.
    #[serde(with = "crate::timestamp::required")]
    pub started: OffsetDateTime,
    /// When the leg was answered (2xx), if it was.
    #[serde(default, with = "crate::timestamp::optional")]
    pub answered: Option<OffsetDateTime>,
    /// When the leg ended.
    #[serde(with = "crate::timestamp::required")]
    pub ended: OffsetDateTime,
    /// SIP status code that ended the leg, or `null` for a normal BYE.
    #[serde(default)]
    pub sip_cause: Option<u16>,
    /// Who the leg reached: the trunk's name, or the agent's id (absent in older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<String>,
    /// The queue a consult leg was sent to (`queue:NAME` consults): `party` is the agent of
    /// that queue who was rung. Absent for every other leg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// Which side a leg faces (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegRole {
    /// The inbound leg from the trunk (caller side).
    Trunk,
    /// An outbound leg to an agent's phone.
    Agent,
    /// An outbound leg to the phone of an agent consulted during the call (attended
    /// transfer or conference); its `peer` is that phone's contact.
    Consult,
}

/// One period an agent spent in one state; a separate log from the call records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStateRecord {
    /// Journal sequence number, as for [`CallRecord::seq`].
    #[serde(default)]
    pub seq: u64,
    /// The agent's id.
    pub agent: String,
    /// The state the period was spent in.
    pub state: AgentState,
    /// Reason code for `not-ready` (e.g. `break`, `training`, `missed-call`) or `logout`.
    #[serde(default)]
    pub reason: Option<String>,
    /// When the period began. For `logout`, the login instant of the session it closes.
    #[serde(with = "crate::timestamp::required")]
    pub started: OffsetDateTime,
    /// When the period ended. For `login`, equal to `started`.
    #[serde(with = "crate::timestamp::required")]
    pub ended: OffsetDateTime,
    /// `ended - started` in seconds: time in the state, the whole session for `logout`,
    /// 0 for `login`.
    pub duration_s: f64,
    /// For `wrap-up`: the call the after-call work belongs to.
    #[serde(default)]
    pub call_id: Option<String>,
}

/// Agent states logged in [`AgentStateRecord`] (`kebab-case` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AgentState {
    /// The agent logged in (an instant: duration 0).
    Login,
    /// Available for calls.
    Ready,
    /// Unavailable, with a reason.
    NotReady,
    /// After-call work.
    WrapUp,
    /// The agent logged out; the record spans the whole session.
    Logout,
}

impl AgentState {
    /// The JSON/CSV spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Login => "login",
            AgentState::Ready => "ready",
            AgentState::NotReady => "not-ready",
            AgentState::WrapUp => "wrap-up",
            AgentState::Logout => "logout",
        }
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Realistic records shared by the tests of several modules.
    use super::*;
    use time::macros::datetime;

    /// An answered, recorded, transferred, surveyed call with two legs.
    pub fn answered_call() -> CallRecord {
        CallRecord {
            seq: 0,
            id: "sb-0001".into(),
            trunk_call_id: "a84b4c76e66710@pbx.example.net".into(),
            arrived: datetime!(2025-03-03 09:00:00 UTC),
            ivr_ended: Some(datetime!(2025-03-03 09:00:20 UTC)),
            enqueued: Some(datetime!(2025-03-03 09:00:20 UTC)),
            offered: Some(datetime!(2025-03-03 09:00:30 UTC)),
            answered: Some(datetime!(2025-03-03 09:00:35.5 UTC)),
            ended: datetime!(2025-03-03 09:05:35.5 UTC),
            caller: "+4930123456".into(),
            did: "+4930999000".into(),
            ivr_path: vec!["main".into(), "2".into()],
            language: Some("en".into()),
            queue: Some("billing".into()),
            agent: Some("alice".into()),
            priority: 1,
            label: None,
            customer_name: None,
            preferred_agent: None,
            preferred_agent_taken: false,
            wait_s: 15.5,
            ring_s: 5.5,
            talk_s: 270.0,
            hold_s: 30.0,
            wrap_up_s: 45.0,
            disposition: Disposition::Answered,
            hangup_side: HangupSide::Caller,
            sip_cause: None,
            transfers: vec![Transfer {
                at: datetime!(2025-03-03 09:04:00 UTC),
                from_agent: "alice".into(),
                to: "sales".into(),
                kind: TransferKind::Attended,
            }],
            survey_score: Some(9),
            recording: Some("/var/lib/switchboard/rec/sb-0001.wav".into()),
            legs: vec![
                Leg {
                    role: LegRole::Trunk,
                    call_id: "a84b4c76e66710@pbx.example.net".into(),
                    peer: "sip:203.0.113.5:5060".into(),
                    started: datetime!(2025-03-03 09:00:00 UTC),
                    answered: Some(datetime!(2025-03-03 09:00:00.2 UTC)),
                    ended: datetime!(2025-03-03 09:05:35.5 UTC),
                    sip_cause: None,
                    party: None,
                    queue: None,
                },
                Leg {
                    role: LegRole::Agent,
                    call_id: "sb-0001-a1".into(),
                    peer: "sip:alice@192.0.2.10:5062".into(),
                    started: datetime!(2025-03-03 09:00:30 UTC),
                    answered: Some(datetime!(2025-03-03 09:00:35.5 UTC)),
                    ended: datetime!(2025-03-03 09:05:35.5 UTC),
                    sip_cause: None,
                    party: None,
                    queue: None,
                },
            ],
            supervisions: Vec::new(),
            conference: None,
            service_level_threshold_s: 20.0,
            direction: Default::default(),
            outbound: None,
            callback: None,
        }
    }

    /// A not-ready period with a reason.
    pub fn not_ready_period() -> AgentStateRecord {
        AgentStateRecord {
            seq: 0,
            agent: "alice".into(),
            state: AgentState::NotReady,
            reason: Some("break".into()),
            started: datetime!(2025-03-03 10:00:00 UTC),
            ended: datetime!(2025-03-03 10:15:00 UTC),
            duration_s: 900.0,
            call_id: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn call_round_trips_through_json() {
        let record = Record::Call(answered_call());
        let json = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn agent_state_round_trips_through_json() {
        let record = Record::AgentState(not_ready_period());
        let json = serde_json::to_string(&record).unwrap();
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, record);
    }

    #[test]
    fn json_uses_the_documented_spelling() {
        let json = serde_json::to_value(Record::Call(answered_call())).unwrap();
        assert_eq!(json["type"], "call");
        assert_eq!(json["arrived"], "2025-03-03T09:00:00Z");
        assert_eq!(json["answered"], "2025-03-03T09:00:35.5Z");
        assert_eq!(json["disposition"], "answered");
        assert_eq!(json["hangup_side"], "caller");
        assert_eq!(json["transfers"][0]["kind"], "attended");
        assert_eq!(json["legs"][1]["role"], "agent");
        assert_eq!(json["wait_s"], 15.5);
        assert_eq!(json["sip_cause"], serde_json::Value::Null);

        let json = serde_json::to_value(Record::AgentState(not_ready_period())).unwrap();
        assert_eq!(json["type"], "agent_state");
        assert_eq!(json["state"], "not-ready");

        let json = serde_json::to_value(Disposition::CallbackRequested).unwrap();
        assert_eq!(json, "callback-requested");
    }

    #[test]
    fn as_str_matches_serde_spelling() {
        use Disposition::*;
        for d in [
            Answered,
            Abandoned,
            AbandonedShort,
            Overflowed,
            TimedOut,
            CallbackRequested,
            Voicemail,
            IvrCompleted,
            Rejected,
        ] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
        for s in [
            AgentState::Login,
            AgentState::Ready,
            AgentState::NotReady,
            AgentState::WrapUp,
            AgentState::Logout,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for h in [HangupSide::Caller, HangupSide::Agent, HangupSide::System] {
            assert_eq!(serde_json::to_value(h).unwrap(), h.as_str());
        }
    }

    #[test]
    fn fast_parse_agrees_with_serde() {
        for record in [
            Record::Call(answered_call()),
            Record::AgentState(not_ready_period()),
        ] {
            let line = serde_json::to_vec(&record).unwrap();
            assert_eq!(Record::from_json(&line).unwrap(), record);
            // Tag not first: the general path.
            let mut value = serde_json::to_value(&record).unwrap();
            let tag = value.as_object_mut().unwrap().remove("type").unwrap();
            value["type"] = tag;
            let reordered = serde_json::to_vec(&value).unwrap();
            assert!(!reordered.starts_with(b"{\"type\""));
            assert_eq!(Record::from_json(&reordered).unwrap(), record);
        }
        assert!(Record::from_json(br#"{"type":"fax","seq":1}"#).is_err());
        assert!(Record::from_json(br#"{"type":"call","seq":1}"#).is_err());
    }

    #[test]
    fn negative_priority_and_label_round_trip_through_json() {
        let mut call = answered_call();
        call.priority = -5;
        call.label = Some("vip".into());
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["priority"], -5);
        assert_eq!(json["label"], "vip");
        let back: CallRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, call);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut json = serde_json::to_value(Record::Call(answered_call())).unwrap();
        json["added_in_v2"] = serde_json::json!({"anything": [1, 2]});
        json["legs"][0]["codec"] = "PCMA".into();
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, Record::Call(answered_call()));
    }

    #[test]
    fn minimal_call_parses_with_defaults() {
        let json = r#"{"type":"call","id":"x","trunk_call_id":"c","arrived":"2025-01-01T00:00:00Z",
            "ended":"2025-01-01T00:00:01+01:00","caller":"1","did":"2",
            "disposition":"rejected","hangup_side":"system"}"#;
        let Record::Call(call) = serde_json::from_str(json).unwrap() else {
            panic!("expected a call record");
        };
        assert_eq!(call.disposition, Disposition::Rejected);
        assert!(call.legs.is_empty() && call.transfers.is_empty() && call.queue.is_none());
        assert_eq!(call.ended, time::macros::datetime!(2024-12-31 23:00:01 UTC));
    }

    #[test]
    fn a_callback_record_keeps_its_attempts_and_outcome() {
        let json = serde_json::to_value(Record::Call(answered_call())).unwrap();
        assert!(json.get("callback").is_none(), "omitted on other calls");
        let mut call = answered_call();
        call.callback = Some(Callback {
            number: "2000".into(),
            queue: "support".into(),
            requested_by: "sb-1-4".into(),
            requested: time::macros::datetime!(2025-03-03 09:00:00 UTC),
            attempts: vec![
                CallbackAttempt {
                    at: time::macros::datetime!(2025-03-03 09:01:00 UTC),
                    agent: "1001".into(),
                    trunk: Some("carrier".into()),
                    result: CallbackResult::Busy,
                    sip_cause: Some(486),
                },
                CallbackAttempt {
                    at: time::macros::datetime!(2025-03-03 09:06:00 UTC),
                    agent: "1001".into(),
                    trunk: Some("carrier".into()),
                    result: CallbackResult::NoAnswer,
                    sip_cause: Some(408),
                },
            ],
            outcome: CallbackOutcome::NotReached,
            campaign: None,
        });
        let json = serde_json::to_value(Record::Call(call.clone())).unwrap();
        assert_eq!(json["callback"]["outcome"], "not-reached");
        assert_eq!(json["callback"]["attempts"][1]["result"], "no-answer");
        assert_eq!(json["callback"]["attempts"][0]["sip_cause"], 486);
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, Record::Call(call));
    }

    #[test]
    fn direction_defaults_to_inbound_and_a_call_out_keeps_its_facts() {
        let json = serde_json::to_value(Record::Call(answered_call())).unwrap();
        assert_eq!(json["direction"], "inbound");
        assert!(json.get("outbound").is_none(), "omitted on inbound calls");
        let mut older = json.clone();
        older.as_object_mut().unwrap().remove("direction");
        let Record::Call(back) = serde_json::from_value(older).unwrap() else {
            panic!("expected a call record");
        };
        assert_eq!(back.direction, Direction::Inbound);

        let mut call = answered_call();
        call.direction = Direction::Outbound;
        call.outbound = Some(OutboundCall {
            dialled: "+8613800138000".into(),
            sent: "008613800138000".into(),
            caller_id: "+8610555000".into(),
            trunk: Some("carrier-b".into()),
            attempts: 2,
        });
        let json = serde_json::to_value(Record::Call(call.clone())).unwrap();
        assert_eq!(json["direction"], "outbound");
        assert_eq!(json["outbound"]["trunk"], "carrier-b");
        let back: Record = serde_json::from_value(json).unwrap();
        assert_eq!(back, Record::Call(call));
    }

    #[test]
    fn classify_marks_short_abandons() {
        assert_eq!(
            Disposition::Abandoned.classify(4.99),
            Disposition::AbandonedShort
        );
        assert_eq!(Disposition::Abandoned.classify(5.0), Disposition::Abandoned);
        assert_eq!(Disposition::Answered.classify(1.0), Disposition::Answered);
        assert_eq!(Disposition::TimedOut.classify(0.0), Disposition::TimedOut);
    }

    #[test]
    fn seq_and_end_accessors() {
        let mut record = Record::Call(answered_call());
        record.set_seq(42);
        assert_eq!(record.seq(), 42);
        assert_eq!(record.ended(), answered_call().ended);
        let mut state = Record::AgentState(not_ready_period());
        state.set_seq(7);
        assert_eq!(state.seq(), 7);
        assert_eq!(state.ended(), not_ready_period().ended);
    }

    #[test]
    fn validate_refuses_durations_json_cannot_carry() {
        assert_eq!(Record::Call(answered_call()).validate(), Ok(()));
        let mut call = answered_call();
        call.talk_s = f64::NAN;
        assert!(matches!(
            Record::Call(call).validate(),
            Err(InvalidRecord::BadDuration {
                field: "talk_s",
                ..
            })
        ));
        let mut state = not_ready_period();
        state.duration_s = -1.0;
        assert!(matches!(
            Record::AgentState(state).validate(),
            Err(InvalidRecord::BadDuration {
                field: "duration_s",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_calls_round_trip(
            seq in any::<u64>(),
            id in ".{0,40}",
            caller in "[+0-9]{0,16}",
            queue in proptest::option::of("[a-z\u{4e00}-\u{4e10}, \"]{1,12}"),
            wait_ms in 0u64..100_000_000,
            talk_ms in 0u64..100_000_000,
            survey in proptest::option::of(1u8..=10),
            cause in proptest::option::of(100u16..700),
            secs in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let mut call = answered_call();
            call.seq = seq;
            call.id = id;
            call.caller = caller;
            call.queue = queue;
            call.wait_s = wait_ms as f64 / 1000.0;
            call.talk_s = talk_ms as f64 / 1000.0;
            call.survey_score = survey;
            call.sip_cause = cause;
            call.arrived = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .replace_nanosecond(nanos).unwrap();
            let record = Record::Call(call);
            let json = serde_json::to_string(&record).unwrap();
            let back: Record = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back, record);
        }
    }
}
