//! Consulting a colleague during a call: attended transfer and the three-way conference.
//!
//! The agent's desktop asks Switchboard to consult another agent (`POST …/consult`): the
//! caller is put on hold (music), and Switchboard rings the consulted agent's registered
//! phone as an extra leg of the call's media session (like a supervisor's). Once it answers,
//! the agent and the consulted colleague hear each other and the caller hears the music.
//! Then one of:
//! - **complete**: the caller is bridged to the consulted colleague, the first agent's phone
//!   is hung up and the agent goes to wrap-up (an attended transfer);
//! - **cancel** (or the colleague hangs up): the consult leg ends, the caller is back with the
//!   first agent;
//! - **conference** (or `*3` keyed by the first agent): all three hear each other; when the
//!   first agent hangs up, caller and colleague stay connected.
//!
//! From the phone: an agent who dials a colleague while on a call places the consult through
//! Switchboard — the phone's call is answered as one more leg of the call's session and the
//! colleague is rung as above. A REFER from the agent's phone whose Refer-To carries
//! `Replaces` naming the consult (the phone's own consult call, or Switchboard's dialog with
//! the colleague; RFC 3891) completes the same way; `Replaces` naming any other dialog gets 481.
//!
//! The consulted agent is set not-ready (reason `consult`) while consulted, so the ACD offers
//! them nothing meanwhile, and is made ready again when the consult or the call ends.

mod outside;

use super::call::CallNumber;
use super::extra_leg_invite::{Caller, Phone, Reserved, RungLeg, Unavailable};
use super::media_plane::ExtraLeg;
use super::uac_leg::UacLeg;
use super::{ClientPurpose, Switch};
use media::routing::Routing;
use media::{Leg, MediaCommand};
use sip::dialog::Dialog;
use sip::headers::{call_id_of, header_value, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Request};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// Where a consult stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsultStage {
    /// The colleague's phone rings, or the agent and the colleague talk (caller on hold).
    Consulting,
    /// Caller, agent and colleague all hear each other.
    Conference,
    /// The first agent has left: caller and colleague talk.
    Transferred,
}

/// A colleague's phone rung into a call.
#[derive(Debug)]
pub struct Consult {
    /// The consulted agent's id.
    pub target: String,
    /// The queue consulted (`queue:NAME`), whose best Ready agent `target` is.
    pub queue: Option<String>,
    /// `target` is an outside number reached through a carrier, not an agent: the ACD has
    /// nobody to set not-ready, and nobody to hand the call to on a transfer.
    pub outside: bool,
    /// The agent who consulted.
    pub from_agent: String,
    /// The media session's name for the colleague's leg.
    pub leg: Leg,
    /// Call-ID of the dialog with the colleague's phone.
    pub call_id: String,
    /// Switchboard's tag in it.
    pub local_tag: String,
    /// The INVITE Switchboard sent, its transaction (cancelled if the consult ends before an
    /// answer) and, once the colleague answered, the dialog.
    pub uac: UacLeg,
    /// Switchboard's offer as a plan, to check the phone's answer.
    pub plan: media::MediaPlan,
    /// Ports, remote side and SDP state of the colleague's leg.
    pub media: ExtraLeg,
    /// The session has bound the leg: it can be mixed.
    pub in_mix: bool,
    /// Where the consult stands.
    pub stage: ConsultStage,
    /// Complete as soon as the colleague answers (`transfer` with `mode: attended`).
    pub complete_on_answer: bool,
    /// The last key the first agent pressed (`*` then `3` joins a conference).
    pub last_key: Option<char>,
    /// The consult call the first agent's phone placed itself (absent for API consults).
    pub phone: Option<PhoneSide>,
    /// The colleague's phone holds the call (its last offer was `sendonly` or `inactive`).
    pub holding: bool,
    /// The final status the consulted phone (or carrier) refused the INVITE with, for the
    /// CDR leg's `sip_cause`.
    pub refused_with: Option<u16>,
}

/// The first agent's own consult call: their phone dialled the colleague while holding the
/// caller, and Switchboard answered it as one more leg of the call's session.
#[derive(Debug)]
pub struct PhoneSide {
    /// The media session's name for this leg.
    pub leg: Leg,
    /// The phone's INVITE (the 200 is built from it).
    pub invite: Box<Request>,
    /// Its server transaction.
    pub server_key: TransactionKey,
    /// The dialog with the phone (Switchboard is the UAS).
    pub dialog: Dialog,
    /// Ports, remote side and SDP of the leg.
    pub media: ExtraLeg,
    /// The session bound the leg and the phone got its 200.
    pub answered: bool,
}

/// Who a consult rings, before anything is reserved.
enum ConsultTarget {
    /// An agent's registered phone (chosen by the ACD when `queue` is set).
    Agent {
        agent: String,
        queue: Option<String>,
    },
    /// A number outside, through a carrier.
    Outside(outside::OutsideNumber),
}

/// A consult's target with a leg of the call's session reserved for it: everything needed
/// to ring it.
struct ConsultLeg {
    /// The agent id, or the outside number as dialled.
    target: String,
    queue: Option<String>,
    outside: bool,
    /// Where the INVITE goes, the host in From and To, and the route set.
    peer: Peer,
    host: String,
    path: Vec<String>,
    /// The user part of To, and the Request-URI.
    user: String,
    uri: sip::rsip::Uri,
    /// The user part of From (the consulting agent, or the route's caller id).
    calling_user: String,
    leg: Leg,
    extra: ExtraLeg,
    plan: media::MediaPlan,
}

/// Why a consult action was not carried out (each maps to a stable API code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsultRefusal {
    /// `to` names no configured agent (or, as `queue:NAME`, no configured queue).
    #[error("no agent or queue {0}")]
    UnknownTarget(String),
    /// `queue:NAME` names a queue with no Ready agent to consult.
    #[error("no agent of queue {0} is Ready")]
    NoReadyAgent(String),
    /// An outside number the consulting agent may not dial (their `outbound` list).
    #[error("the agent may not dial {0}")]
    NotAllowed(String),
    /// Not an agent, and a number no `[[route]]` takes.
    #[error("no agent, queue or routed number {0}")]
    NoRoute(String),
    /// The target is the agent on the call.
    #[error("an agent cannot consult themselves")]
    OwnCall,
    /// The target agent is not Ready.
    #[error("agent {0} is not Ready")]
    NotReady(String),
    /// The target has no registered phone.
    #[error("agent {0} has no registered phone")]
    Unreachable(String),
    /// Every extra leg of the call, or every RTP port, is taken.
    #[error("no room for another leg on this call")]
    NoRoom,
    /// A consult is already under way on this call.
    #[error("a consult is already in progress")]
    InProgress,
    /// complete, cancel or conference without a consult.
    #[error("no consult in progress")]
    NoConsult,
    /// complete or conference before the colleague answered.
    #[error("the consulted agent has not answered yet")]
    NotAnswered,
    /// The first agent has already left (a completed transfer).
    #[error("the transfer is already complete")]
    AlreadyTransferred,
}

impl ConsultRefusal {
    /// The API's answer to this refusal: HTTP status and stable JSON code.
    pub fn api_status(&self) -> (u16, &'static str) {
        match self {
            ConsultRefusal::UnknownTarget(_) => (404, "unknown_target"),
            ConsultRefusal::OwnCall => (409, "own_call"),
            ConsultRefusal::NotReady(_) => (409, "target_not_ready"),
            ConsultRefusal::NoReadyAgent(_) => (409, "no_ready_agent"),
            ConsultRefusal::NotAllowed(_) => (403, "number_not_allowed"),
            // To the agent it is one more name Switchboard does not know.
            ConsultRefusal::NoRoute(_) => (404, "unknown_target"),
            ConsultRefusal::Unreachable(_) => (409, "target_unreachable"),
            ConsultRefusal::NoRoom => (409, "no_room"),
            ConsultRefusal::InProgress => (409, "consult_in_progress"),
            ConsultRefusal::NoConsult => (409, "no_consult"),
            ConsultRefusal::NotAnswered => (409, "consult_not_answered"),
            ConsultRefusal::AlreadyTransferred => (409, "already_transferred"),
        }
    }

    /// The answer to a consult dialled from the phone that Switchboard refuses.
    fn sip_status(&self) -> u16 {
        match self {
            ConsultRefusal::UnknownTarget(_) | ConsultRefusal::NoRoute(_) => 404,
            ConsultRefusal::OwnCall | ConsultRefusal::NotAllowed(_) => 403,
            ConsultRefusal::NotReady(_)
            | ConsultRefusal::NoReadyAgent(_)
            | ConsultRefusal::Unreachable(_) => 480,
            _ => 486,
        }
    }
}

/// Who hears whom on a call with a consult. `agent_present`: the first agent is still on
/// the call; `colleague_in_mix`: the colleague's leg is bound. The caller on hold is not
/// mixed at all (music is played to it, and playback wins over any mix).
pub fn consult_routing(
    stage: ConsultStage,
    agent_present: bool,
    colleague: Leg,
    colleague_in_mix: bool,
) -> Routing {
    consult_routing_via(
        stage,
        agent_present,
        Leg::Agent,
        colleague,
        colleague_in_mix,
    )
}

/// The same, when the first agent talks on `agent` (their own consult call's leg, when their
/// phone placed the consult; else the call's agent leg).
pub fn consult_routing_via(
    stage: ConsultStage,
    agent_present: bool,
    agent: Leg,
    colleague: Leg,
    colleague_in_mix: bool,
) -> Routing {
    let pair = |a: Leg, b: Leg| Routing::Mix {
        hears: vec![(a, vec![b]), (b, vec![a])],
    };
    match (stage, colleague_in_mix, agent_present) {
        // Ringing, or the colleague's leg not bound yet: the agent hears nobody (the caller
        // is on hold).
        (ConsultStage::Consulting, false, _) => Routing::Mix { hears: Vec::new() },
        (ConsultStage::Consulting, true, _) => pair(agent, colleague),
        (ConsultStage::Conference, true, true) => {
            media::routing::conference(&[Leg::Trunk, agent, colleague])
        }
        (ConsultStage::Conference | ConsultStage::Transferred, true, _) => {
            pair(Leg::Trunk, colleague)
        }
        // The colleague is not in the session: the usual two-party call.
        (_, false, _) => Routing::Relay,
    }
}

/// The Call-ID, to-tag and from-tag a Refer-To's `Replaces` names (RFC 3891 §6.1), if any.
pub fn replaces_of(refer_to: &str) -> Option<(String, String, String)> {
    let (_, query) = refer_to.split_once('?')?;
    let query = query.trim_end_matches('>');
    let value = query.split('&').find_map(|field| {
        let (name, value) = field.split_once('=')?;
        name.eq_ignore_ascii_case("Replaces").then_some(value)
    })?;
    let decoded = percent_decode(value);
    let mut parts = decoded.split(';');
    let call_id = parts.next()?.trim().to_owned();
    let (mut to_tag, mut from_tag) = (None, None);
    for part in parts {
        match part.split_once('=') {
            Some((name, tag)) if name.trim().eq_ignore_ascii_case("to-tag") => {
                to_tag = Some(tag.trim().to_owned())
            }
            Some((name, tag)) if name.trim().eq_ignore_ascii_case("from-tag") => {
                from_tag = Some(tag.trim().to_owned())
            }
            _ => {}
        }
    }
    Some((call_id, to_tag?, from_tag?))
}

/// `%3B` → `;` and the like; a malformed escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Switch {
    /// `POST /api/calls/{id}/consult` (and the first half of an attended `transfer`): puts
    /// the caller on hold and rings `to`'s phone into the call.
    pub(super) fn start_consult(
        &mut self,
        now: Instant,
        id: CallNumber,
        to: &str,
        complete_on_answer: bool,
    ) -> Result<(), ConsultRefusal> {
        let Some(call) = self.calls.get(&id) else {
            return Err(ConsultRefusal::NoConsult);
        };
        if call.consult.is_some() {
            return Err(ConsultRefusal::InProgress);
        }
        let from_agent = call.agent().map(|a| a.to_string()).unwrap_or_default();
        let ConsultLeg {
            target,
            queue,
            outside,
            peer,
            host,
            path,
            user,
            uri,
            calling_user,
            leg,
            extra,
            plan,
        } = match self.consult_target(&from_agent, to)? {
            ConsultTarget::Agent { agent, queue } => {
                self.reserve_agent_consult(now, id, &from_agent, agent, queue)?
            }
            ConsultTarget::Outside(number) => self.reserve_outside_consult(id, number)?,
        };
        // Supervisors watch a two-party conversation; a consult changes who hears whom.
        self.release_monitors(now, id);

        tracing::info!(call = id, %from_agent, %target, ?queue, outside, %peer, complete_on_answer, "consulting");
        // Responses and the ring timeout reach the consult through the supervisor's paths
        // (an extra leg rung by Switchboard), which hand them over here.
        let caller = Caller {
            display: format!("Consult {from_agent}"),
            user: &calling_user,
            purpose: ("X-Switchboard-Consult", from_agent.clone()),
            call_id_kind: "consult",
        };
        let RungLeg {
            invite,
            call_id,
            local_tag,
            client_key,
        } = self.ring_extra_leg(
            now,
            (id, leg),
            Phone {
                peer,
                host: &host,
                path: &path,
                sip_user: &user,
                uri,
            },
            caller,
            extra.local_body.clone(),
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.consult = Some(Consult {
                target,
                queue,
                outside,
                from_agent,
                leg,
                call_id,
                local_tag,
                uac: UacLeg::calling(invite, client_key, peer, now),
                plan,
                media: extra,
                in_mix: false,
                stage: ConsultStage::Consulting,
                complete_on_answer,
                last_key: None,
                phone: None,
                holding: false,
                refused_with: None,
            });
            call.hold.set(now, true);
        }
        self.agent_hold_changed(id, true);
        self.apply_consult_routing(id);
        Ok(())
    }

    /// Who a consult to `to` rings: `queue:NAME` takes the agent the ACD would offer that
    /// queue's next call to (its strategy, its skills); an agent's id or SIP user names that
    /// agent; a dialable number is an outside number (allow-list and route checked).
    fn consult_target(&self, from_agent: &str, to: &str) -> Result<ConsultTarget, ConsultRefusal> {
        if let Some(queue) = to.strip_prefix("queue:") {
            if self.config.queue(queue).is_none() {
                return Err(ConsultRefusal::UnknownTarget(to.to_owned()));
            }
            let agent = self
                .acd
                .best_ready_agent(&acd::QueueId::from(queue))
                .ok_or_else(|| ConsultRefusal::NoReadyAgent(queue.to_owned()))?;
            return Ok(ConsultTarget::Agent {
                agent: agent.to_string(),
                queue: Some(queue.to_owned()),
            });
        }
        let agent = self
            .config
            .agents
            .iter()
            .find(|a| a.id == to || a.sip_user == to)
            .map(|a| a.id.clone());
        match agent {
            Some(agent) => Ok(ConsultTarget::Agent { agent, queue: None }),
            None if super::outbound::route::is_dialable(to) => {
                outside::resolve(&self.config, from_agent, to).map(ConsultTarget::Outside)
            }
            None => Err(ConsultRefusal::UnknownTarget(to.to_owned())),
        }
    }

    /// Checks the consulted agent (Ready, not the consulting agent), reserves a leg of the
    /// call's session for their registered phone and takes them out of the ACD meanwhile.
    fn reserve_agent_consult(
        &mut self,
        now: Instant,
        id: CallNumber,
        from_agent: &str,
        target: String,
        queue: Option<String>,
    ) -> Result<ConsultLeg, ConsultRefusal> {
        if target == from_agent {
            return Err(ConsultRefusal::OwnCall);
        }
        let target_id = acd::AgentId::from(target.as_str());
        let ready = self
            .acd
            .agent(&target_id)
            .is_some_and(|a| a.state == acd::AgentState::Ready);
        if !ready {
            return Err(ConsultRefusal::NotReady(target));
        }
        let entry = self
            .agents_by_id
            .get(&target_id)
            .cloned()
            .ok_or_else(|| ConsultRefusal::UnknownTarget(target.clone()))?;
        let Reserved {
            binding,
            uri,
            leg,
            extra,
            plan,
        } = self
            .reserve_phone_leg(now, id, &entry.sip_user)
            .map_err(|unavailable| match unavailable {
                Unavailable::Unreachable => ConsultRefusal::Unreachable(target.clone()),
                Unavailable::NoRoom => ConsultRefusal::NoRoom,
            })?;
        // The colleague must not be offered a queued call while being consulted.
        match self.acd.set_not_ready(now, &target_id, acd::CONSULT_REASON) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(agent = %target, %error, "not-ready for a consult"),
        }
        let phone = Phone::registered(&binding, &entry.sip_user, uri);
        Ok(ConsultLeg {
            peer: phone.peer,
            host: phone.host.to_owned(),
            path: phone.path.to_vec(),
            user: entry.sip_user.clone(),
            uri: phone.uri,
            calling_user: from_agent.to_owned(),
            target,
            queue,
            outside: false,
            leg,
            extra,
            plan,
        })
    }

    /// Reserves a leg of the call's session for a consult to an outside number, rung at the
    /// gateway of its route's first trunk.
    fn reserve_outside_consult(
        &mut self,
        id: CallNumber,
        number: outside::OutsideNumber,
    ) -> Result<ConsultLeg, ConsultRefusal> {
        let host = number.gateway.addr.to_string();
        let uri = sip::rsip::Uri::try_from(format!("sip:{}@{host}", number.sent).as_str())
            .map_err(|_| ConsultRefusal::NoRoute(number.dialled.clone()))?;
        let leg = self
            .media
            .free_extra_leg(id)
            .ok_or(ConsultRefusal::NoRoom)?;
        let (extra, plan) = self
            .media
            .offer_extra_leg()
            .map_err(|_| ConsultRefusal::NoRoom)?;
        self.media.reserve_extra_leg(id, leg, extra.ports);
        Ok(ConsultLeg {
            target: number.dialled,
            queue: None,
            outside: true,
            peer: number.gateway,
            host,
            path: Vec::new(),
            user: number.sent,
            uri,
            calling_user: number.caller_id,
            leg,
            extra,
            plan,
        })
    }

    /// `POST /api/calls/{id}/cancel`: the colleague's leg ends and the caller is back with
    /// the first agent.
    pub(super) fn cancel_consult(
        &mut self,
        now: Instant,
        id: CallNumber,
    ) -> Result<(), ConsultRefusal> {
        match self.calls.get(&id).and_then(|c| c.consult.as_ref()) {
            None => return Err(ConsultRefusal::NoConsult),
            Some(consult) if consult.stage == ConsultStage::Transferred => {
                return Err(ConsultRefusal::AlreadyTransferred)
            }
            Some(_) => {}
        }
        tracing::info!(call = id, "consult cancelled");
        self.end_consult_leg(now, id, true);
        Ok(())
    }

    /// `POST /api/calls/{id}/complete`: the caller is bridged to the colleague and the first
    /// agent leaves (wrap-up). Refused while the colleague's phone still rings: the agent
    /// cannot know yet whether the colleague will take the call.
    pub(super) fn complete_consult(
        &mut self,
        now: Instant,
        id: CallNumber,
    ) -> Result<(), ConsultRefusal> {
        let consult = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .ok_or(ConsultRefusal::NoConsult)?;
        if consult.stage == ConsultStage::Transferred {
            return Err(ConsultRefusal::AlreadyTransferred);
        }
        if !consult.uac.is_answered() || !consult.in_mix {
            return Err(ConsultRefusal::NotAnswered);
        }
        self.first_agent_leaves(now, id, true);
        Ok(())
    }

    /// `POST /api/calls/{id}/conference` (or `*3` from the first agent): all three hear
    /// each other.
    pub(super) fn conference(
        &mut self,
        now: Instant,
        id: CallNumber,
    ) -> Result<(), ConsultRefusal> {
        let consult = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult.as_mut())
            .ok_or(ConsultRefusal::NoConsult)?;
        match consult.stage {
            ConsultStage::Transferred => return Err(ConsultRefusal::AlreadyTransferred),
            ConsultStage::Conference => return Ok(()),
            ConsultStage::Consulting => {}
        }
        if !consult.uac.is_answered() || !consult.in_mix {
            return Err(ConsultRefusal::NotAnswered);
        }
        consult.stage = ConsultStage::Conference;
        tracing::info!(call = id, "conference");
        if let Some(call) = self.calls.get_mut(&id) {
            call.hold.set(now, false);
            call.conference_started = Some(now);
        }
        self.agent_hold_changed(id, false);
        self.apply_consult_routing(id);
        Ok(())
    }

    /// The first agent leaves a call whose colleague has answered (complete, a REFER with
    /// Replaces, or a hang-up during a conference): their leg is closed (BYE when
    /// `hang_up`), the agent goes to wrap-up, and caller and colleague talk.
    pub(super) fn first_agent_leaves(&mut self, now: Instant, id: CallNumber, hang_up: bool) {
        let at = self.wall(now);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent_leg.take() else {
            return;
        };
        let conference = call.consult.as_ref().map(|c| c.stage) == Some(ConsultStage::Conference);
        if let Some(consult) = call.consult.as_mut() {
            consult.stage = ConsultStage::Transferred;
            call.transfers.push(::cdr::Transfer {
                at,
                from_agent: leg.agent.to_string(),
                to: consult.target.clone(),
                kind: ::cdr::TransferKind::Attended,
            });
            if !consult.outside {
                call.last_agent = Some(acd::AgentId::from(consult.target.as_str()));
            }
        }
        if conference {
            call.conference_ended = Some(now);
        }
        call.hold.set(now, false);
        call.api_hold = false;
        tracing::info!(call = id, agent = %leg.agent, "first agent left: caller and consulted agent talk");
        self.metrics
            .transfers
            .with_label_values(&["attended", "accepted"])
            .inc();
        self.media.command(id, MediaCommand::DropAgent);
        self.close_attempt(now, id, &leg, None);
        if hang_up {
            self.end_agent_leg(now, leg, None);
        } else {
            // The phone ends its own dialog (it sent REFER with Replaces, then BYE).
            self.calls.forget_agent_leg(leg.call_id());
        }
        // The first agent's own consult call goes with them.
        let phone = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult.as_mut())
            .and_then(|c| c.phone.take());
        if let Some(mut phone) = phone {
            self.hang_up_phone_side(now, Some(id), &mut phone);
        }
        // In the ACD the call passes to the colleague: the first agent goes to wrap-up, the
        // colleague (Not ready for the consult) is on the call, and goes to wrap-up at its end.
        // (An outside number is nobody in the ACD: the call leaves it with the first agent.)
        let colleague = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .filter(|c| !c.outside)
            .map(|c| acd::AgentId::from(c.target.as_str()));
        let handed =
            colleague.map(|colleague| self.acd.hand_over(now, acd::CallId(id), &colleague));
        match handed {
            Some(Ok(actions)) => self.apply_acd(now, actions),
            other => {
                // (The colleague left Not ready meanwhile, e.g. logged out from the API: the
                // call leaves the ACD with the first agent, as a hang-up.)
                tracing::info!(call = id, refused = ?other.and_then(Result::err), "call not handed over in the ACD");
                match self.acd.hangup(now, acd::CallId(id)) {
                    Ok(actions) => self.apply_acd(now, actions),
                    Err(error) => {
                        tracing::debug!(call = id, %error, "ACD hangup for an attended transfer")
                    }
                }
            }
        }
        self.agent_hold_changed(id, false);
        self.apply_consult_routing(id);
    }

    /// Ends the colleague's leg of a call that goes on: BYE (or CANCEL while it rings) when
    /// `hang_up`, the leg out of the session, its CDR leg kept, the colleague ready again and
    /// the caller back with the first agent. After a completed transfer the colleague is
    /// the call's only agent: the call ends instead.
    fn end_consult_leg(&mut self, now: Instant, id: CallNumber, hang_up: bool) {
        let Some(mut consult) = self.calls.get_mut(&id).and_then(|c| c.consult.take()) else {
            return;
        };
        self.calls.forget_monitor(&consult.call_id);
        if consult.in_mix {
            self.media
                .command(id, MediaCommand::RemoveLeg { leg: consult.leg });
        } else {
            self.media.extra_leg_released(id, consult.leg);
        }
        let record = self.consult_leg_record(&consult, now);
        if let Some(mut phone) = consult.phone.take() {
            self.hang_up_phone_side(now, Some(id), &mut phone);
        }
        if hang_up {
            let ending = consult.uac.end(|peer| self.via(peer), None);
            self.end_uac_leg(now, ending);
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.ended_legs.push(record);
            if consult.stage == ConsultStage::Conference {
                call.conference_ended = Some(now);
            }
            call.hold.set(now, false);
        }
        self.consulted_agent_free(now, &consult.target);
        self.agent_hold_changed(id, false);
        self.media
            .command(id, MediaCommand::SetRouting(Routing::Relay));
    }

    /// The call is over (already out of the index): hang the colleague up and keep the leg
    /// for the CDR. The media session's end releases its ports.
    pub(super) fn end_consult(&mut self, now: Instant, call: &mut super::call::Call) {
        let Some(mut consult) = call.consult.take() else {
            return;
        };
        self.calls.forget_monitor(&consult.call_id);
        call.ended_legs.push(self.consult_leg_record(&consult, now));
        if let Some(mut phone) = consult.phone.take() {
            self.hang_up_phone_side(now, None, &mut phone);
        }
        let ending = consult.uac.end(|peer| self.via(peer), None);
        self.end_uac_leg(now, ending);
        if consult.stage == ConsultStage::Conference {
            call.conference_ended = Some(now);
        }
        self.consulted_agent_free(now, &consult.target);
    }

    /// Ends the first agent's own consult call: BYE once answered, else 480 to its INVITE.
    /// `id` names the call when it goes on (the leg then leaves the session).
    fn hang_up_phone_side(&mut self, now: Instant, id: Option<CallNumber>, phone: &mut PhoneSide) {
        self.calls.forget_monitor(&phone.dialog.call_id);
        if phone.answered {
            if let Some(id) = id {
                self.media
                    .command(id, MediaCommand::RemoveLeg { leg: phone.leg });
            }
            let peer = phone.dialog.peer;
            let via = self.via(peer);
            let bye = phone.dialog.request(Method::Bye, &via, None, None);
            self.send_request(now, bye, peer, ClientPurpose::Fire);
        } else {
            // (A LegAdded still on its way finds no owner and removes the leg.)
            let mut gone = response_to(&phone.invite, 480, Some(&phone.dialog.local_tag));
            sip::message::add_warning(&mut gone, super::AGENT_NAME, "the consult ended");
            let key = phone.server_key.clone();
            self.send_response(now, &key, gone);
        }
    }

    /// The consulted agent may be offered calls again.
    fn consulted_agent_free(&mut self, now: Instant, agent: &str) {
        let agent = acd::AgentId::from(agent);
        let consulting = self
            .acd
            .agent(&agent)
            .is_some_and(|a| matches!(&a.state, acd::AgentState::NotReady { reason } if &**reason == acd::CONSULT_REASON));
        if consulting {
            match self.acd.set_ready(now, &agent) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::debug!(%agent, %error, "ready after a consult"),
            }
        }
    }

    fn consult_leg_record(&self, consult: &Consult, now: Instant) -> ::cdr::Leg {
        ::cdr::Leg {
            role: ::cdr::LegRole::Consult,
            call_id: consult.call_id.clone(),
            peer: consult.uac.dialog().map_or_else(
                || consult.uac.invite.uri.to_string(),
                |d| d.peer.to_string(),
            ),
            started: self.wall(consult.uac.started),
            answered: consult.uac.answered_at().map(|a| self.wall(a)),
            ended: self.wall(now),
            sip_cause: consult.refused_with,
            party: Some(consult.target.clone()),
            queue: consult.queue.clone(),
        }
    }

    /// Tells the call's session who hears whom with its consult.
    fn apply_consult_routing(&mut self, id: CallNumber) {
        let transferred = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| c.stage == ConsultStage::Transferred);
        if transferred && self.supervisable(id) {
            // The colleague now has the call as its agent: supervisors may join it, and
            // supervision.rs routes caller, colleague and supervisors alike.
            self.apply_bridge(id);
            return;
        }
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some(consult) = call.consult.as_ref() else {
            return;
        };
        if call.media.as_ref().is_some_and(|m| m.started) {
            let agent = consult
                .phone
                .as_ref()
                .filter(|p| p.answered)
                .map_or(Leg::Agent, |p| p.leg);
            let routing = consult_routing_via(
                consult.stage,
                call.agent_leg.is_some(),
                agent,
                consult.leg,
                consult.in_mix,
            );
            self.media.command(id, MediaCommand::SetRouting(routing));
        }
    }

    /// The leg the call's agent talks on: the consulted colleague's once the first agent has
    /// left (a completed attended transfer), else the agent leg. What is meant for "the
    /// agent" (the caller's hold music) goes there.
    pub(super) fn agent_talk_leg(&self, id: CallNumber) -> Leg {
        self.calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .filter(|c| c.stage == ConsultStage::Transferred && c.in_mix)
            .map_or(Leg::Agent, |c| c.leg)
    }

    /// The call has a consult on `leg` (the supervisor's paths ask before handling it).
    pub(super) fn is_consult_leg(&self, id: CallNumber, leg: Leg) -> bool {
        self.calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| c.leg == leg || c.phone.as_ref().is_some_and(|p| p.leg == leg))
    }

    /// A consult is in progress on the call (supervisors' routing gives way to it).
    pub(super) fn has_consult(&self, id: CallNumber) -> bool {
        self.calls.get(&id).is_some_and(|c| c.consult.is_some())
    }

    /// The final response of the colleague's phone.
    pub(super) fn on_consult_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: sip::rsip::Response,
        source: Peer,
    ) {
        let answered = (200..300).contains(&response.status_code.code());
        let ringing = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| !c.uac.is_answered());
        if !ringing {
            if answered {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        }
        if !answered {
            let code = response.status_code.code();
            tracing::info!(call = id, code, "consulted phone refused");
            if let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) {
                consult.refused_with = Some(code);
            }
            self.end_consult_leg(now, id, false);
            return;
        }
        let via = self.via(source);
        let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) else {
            return;
        };
        let ack = match consult.uac.answer(now, &response, source, &via) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(call = id, %error, "consulted phone's 2xx unusable");
                self.hang_up_orphan(now, &response, source);
                self.end_consult_leg(now, id, false);
                return;
            }
        };
        let checked = self
            .media
            .extra_answered(&mut consult.media, &consult.plan, &response.body);
        let extra = consult.media.clone();
        let leg = consult.leg;
        self.send_stateless_request(ack, source);
        match checked {
            Ok(_) => self.media.add_extra_leg(id, leg, &extra),
            Err(error) => {
                tracing::info!(call = id, %error, "consulted phone's SDP answer refused");
                self.end_consult_leg(now, id, true);
            }
        }
    }

    /// The colleague's phone did not answer within the ring timeout.
    pub(super) fn consult_ring_timeout(&mut self, now: Instant, id: CallNumber) {
        let ringing = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| !c.uac.is_answered());
        if ringing {
            tracing::info!(call = id, "consulted agent did not answer");
            self.end_consult_leg(now, id, true);
        }
    }

    /// The session bound the colleague's leg: mix it in (or complete at once).
    pub(super) fn consult_leg_added(&mut self, now: Instant, id: CallNumber, leg: Leg) {
        let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) else {
            return;
        };
        if let Some(phone) = consult.phone.as_mut().filter(|p| p.leg == leg) {
            // The first agent's own consult call: answer it now that its leg is bound.
            phone.answered = true;
            let mut ok = response_to(&phone.invite, 200, Some(&phone.dialog.local_tag));
            push_header(&mut ok.headers, "Content-Type", "application/sdp");
            ok.body = phone.media.local_body.clone();
            let (key, transport) = (phone.server_key.clone(), phone.dialog.peer.transport);
            push_header(&mut ok.headers, "Contact", self.contact(transport));
            self.add_capabilities(&mut ok.headers);
            self.send_response(now, &key, ok);
            self.apply_consult_routing(id);
            return;
        }
        consult.in_mix = true;
        if consult.complete_on_answer {
            self.first_agent_leaves(now, id, true);
        } else {
            self.apply_consult_routing(id);
        }
    }

    /// The session could not bind the colleague's leg, or it went silent.
    pub(super) fn consult_leg_lost(&mut self, now: Instant, id: CallNumber) {
        let transferred = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| c.stage == ConsultStage::Transferred);
        if transferred {
            self.end_call(now, id, super::b2bua::EndCause::MediaTimeout);
        } else {
            self.end_consult_leg(now, id, true);
        }
    }

    /// Whether `leg` of call `id` is the consult call the first agent's phone placed itself.
    pub(super) fn is_phone_consult_leg(&self, id: CallNumber, leg: Leg) -> bool {
        self.calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .and_then(|c| c.phone.as_ref())
            .is_some_and(|phone| phone.leg == leg)
    }

    /// A key the first agent pressed: `*` then `3` joins the conference.
    pub(super) fn consult_key(&mut self, now: Instant, id: CallNumber, key: char) {
        let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) else {
            return;
        };
        let previous = consult.last_key.replace(key);
        if previous == Some('*') && key == '3' {
            if let Err(refusal) = self.conference(now, id) {
                tracing::info!(call = id, %refusal, "*3 ignored");
            }
        }
    }

    /// A REFER whose Refer-To carries Replaces: completes the consult it names, else 481.
    /// True when the REFER was handled here.
    pub(super) fn refer_with_replaces(
        &mut self,
        now: Instant,
        id: CallNumber,
        key: &TransactionKey,
        request: &Request,
        refer_to: &str,
    ) -> bool {
        let Some((call_id, to_tag, from_tag)) = replaces_of(refer_to) else {
            return false;
        };
        // Switchboard sent the consult INVITE: its tag is the From tag, the phone's the To.
        // RFC 3891 names the tags as the dialog's recipient sees them; phones differ in
        // which is which, so either order matches (the Call-ID and both tags must).
        let names = |d: &Dialog| {
            let remote = d.remote_tag.as_deref().unwrap_or_default();
            d.call_id == call_id
                && ((d.local_tag == from_tag && remote == to_tag)
                    || (d.local_tag == to_tag && remote == from_tag))
        };
        let names_consult = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| {
                c.uac.dialog().is_some_and(names)
                    || c.phone.as_ref().is_some_and(|p| names(&p.dialog))
            });
        if !names_consult {
            let reason = format!("Replaces names no dialog of this call ({call_id})");
            self.reply_error(now, key, request, 481, &reason);
            return true;
        }
        let ready = self
            .calls
            .get(&id)
            .and_then(|c| c.consult.as_ref())
            .is_some_and(|c| c.in_mix && c.stage != ConsultStage::Transferred);
        if !ready {
            let reason = "the consulted agent's leg is not up yet";
            self.reply_error(now, key, request, 403, reason);
            return true;
        }
        let transport = self
            .calls
            .get(&id)
            .and_then(|c| c.agent_leg.as_ref())
            .and_then(|l| l.uac.dialog())
            .map_or(sip::Transport::Udp, |d| d.peer.transport);
        let mut accepted = response_to(request, 202, None);
        push_header(&mut accepted.headers, "Contact", self.contact(transport));
        self.send_response(now, key, accepted);
        // The phone hears how its REFER ended before Switchboard hangs it up (RFC 3515).
        self.notify_transfer(now, id, 200);
        self.first_agent_leaves(now, id, true);
        true
    }

    /// A request inside the dialog with the colleague's phone; gives the request back when
    /// it is not one.
    pub(super) fn on_consult_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) -> Option<(TransactionKey, Request)> {
        let found = call_id_of(&request.headers).and_then(|call_id| {
            let id = self.calls.by_monitor_call_id(call_id)?;
            let our_tag = to_tag(&request.headers)?;
            let consult = self.calls.get(&id)?.consult.as_ref()?;
            (consult.call_id == call_id
                && consult.local_tag == our_tag
                && consult.uac.is_answered())
            .then_some(id)
        });
        let Some(id) = found else {
            return self.on_phone_side_request(now, key, request);
        };
        let in_order = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult.as_mut())
            .and_then(|c| c.uac.dialog_mut())
            .is_some_and(|dialog| dialog.accept_remote_cseq(&request));
        if !in_order {
            self.reply_error(now, &key, &request, 500, "CSeq out of order");
            return None;
        }
        match request.method {
            Method::Bye => {
                let transferred = self
                    .calls
                    .get(&id)
                    .and_then(|c| c.consult.as_ref())
                    .is_some_and(|c| c.stage == ConsultStage::Transferred);
                let ok = response_to(&request, 200, None);
                if transferred {
                    tracing::info!(call = id, "consulted agent hung up after the transfer");
                    // Their dialog is over: the call's end must not BYE it again.
                    if let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.take()) {
                        self.calls.forget_monitor(&consult.call_id);
                        let record = self.consult_leg_record(&consult, now);
                        if let Some(call) = self.calls.get_mut(&id) {
                            call.ended_legs.push(record);
                        }
                        self.consulted_agent_free(now, &consult.target);
                    }
                    self.finish_call(
                        now,
                        id,
                        super::b2bua::EndCause::AgentHangup,
                        vec![(key, ok)],
                    );
                } else {
                    tracing::info!(call = id, "consulted agent hung up");
                    self.send_response(now, &key, ok);
                    self.end_consult_leg(now, id, false);
                }
            }
            Method::Invite | Method::Update => self.consult_reoffer(now, id, key, request),
            Method::Options => {
                let mut ok = response_to(&request, 200, None);
                self.add_capabilities(&mut ok.headers);
                self.send_response(now, &key, ok);
            }
            _ => {
                let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
                let reason = format!(
                    "{} ({content_type}) is not supported inside a consult",
                    request.method
                );
                self.reply_error(now, &key, &request, 405, &reason);
            }
        }
        None
    }

    /// A re-INVITE or UPDATE from the colleague's phone: answered by Switchboard (the media
    /// stays anchored). Once the colleague has the call (a completed transfer), their hold
    /// is the agent's hold: the caller hears the music until they resume.
    fn consult_reoffer(
        &mut self,
        now: Instant,
        id: CallNumber,
        key: TransactionKey,
        request: Request,
    ) {
        let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) else {
            return;
        };
        let leg = consult.leg;
        let transport = consult
            .uac
            .dialog()
            .map_or(sip::Transport::Udp, |d| d.peer.transport);
        let (offered, answer) = if request.body.is_empty() {
            // An offer asked of us: the last one, as for any leg (its answer comes in the ACK).
            let last = consult.media.sdp.last().map(<[u8]>::to_vec);
            (None, last.unwrap_or_default())
        } else {
            match self
                .media
                .answer_extra_reoffer(&mut consult.media, &request.body)
            {
                Ok((config, direction, answer)) => (Some((config, direction)), answer),
                Err(error) => {
                    self.reply_error(now, &key, &request, error.sip_status(), &error.to_string());
                    return;
                }
            }
        };
        let mut ok = response_to(&request, 200, None);
        push_header(&mut ok.headers, "Contact", self.contact(transport));
        if !answer.is_empty() {
            push_header(&mut ok.headers, "Content-Type", "application/sdp");
            ok.body = answer;
        }
        self.send_response(now, &key, ok);
        let Some((config, direction)) = offered else {
            return;
        };
        self.media
            .command(id, MediaCommand::UpdateLeg { leg, config });
        self.media
            .command(id, MediaCommand::Direction { leg, direction });
        let holding = matches!(
            direction,
            media::sdp::Direction::SendOnly | media::sdp::Direction::Inactive
        );
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(consult) = call.consult.as_mut() else {
            return;
        };
        let changed = consult.holding != holding;
        consult.holding = holding;
        if changed && consult.stage == ConsultStage::Transferred {
            tracing::info!(call = id, holding, "consulted agent hold changed");
            call.hold.set(now, holding || call.api_hold);
            self.agent_hold_changed(id, holding);
        }
    }

    /// A request inside the first agent's own consult call; gives it back when it is not one.
    fn on_phone_side_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) -> Option<(TransactionKey, Request)> {
        let found = call_id_of(&request.headers).and_then(|call_id| {
            let id = self.calls.by_monitor_call_id(call_id)?;
            let our_tag = to_tag(&request.headers)?;
            let phone = self.calls.get(&id)?.consult.as_ref()?.phone.as_ref()?;
            (phone.dialog.call_id == call_id && phone.dialog.local_tag == our_tag).then_some(id)
        });
        let Some(id) = found else {
            return Some((key, request));
        };
        if request.method == Method::Ack {
            return None; // the ACK of our 200
        }
        let in_order = self
            .calls
            .get_mut(&id)
            .and_then(|c| c.consult.as_mut())
            .and_then(|c| c.phone.as_mut())
            .is_some_and(|p| p.dialog.accept_remote_cseq(&request));
        if !in_order {
            self.reply_error(now, &key, &request, 500, "CSeq out of order");
            return None;
        }
        match request.method {
            Method::Bye => {
                self.send_response(now, &key, response_to(&request, 200, None));
                let stage = self
                    .calls
                    .get(&id)
                    .and_then(|c| c.consult.as_ref())
                    .map(|c| c.stage);
                // Its dialog is over: taken out here so nothing hangs it up again.
                let phone = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.consult.as_mut())
                    .and_then(|c| c.phone.take());
                if let Some(phone) = phone {
                    self.calls.forget_monitor(&phone.dialog.call_id);
                    self.media
                        .command(id, MediaCommand::RemoveLeg { leg: phone.leg });
                }
                if stage == Some(ConsultStage::Conference) {
                    tracing::info!(call = id, "first agent left the conference");
                    self.first_agent_leaves(now, id, true);
                } else {
                    tracing::info!(call = id, "first agent hung up the consult");
                    self.end_consult_leg(now, id, true);
                }
            }
            Method::Options => {
                let mut ok = response_to(&request, 200, None);
                self.add_capabilities(&mut ok.headers);
                self.send_response(now, &key, ok);
            }
            // A key press sent as SIP INFO on the consult call (`*3` joins the conference).
            Method::Info => {
                let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
                match media::dtmf::parse_info(content_type, &request.body) {
                    Ok(info) => {
                        self.send_response(now, &key, response_to(&request, 200, None));
                        self.consult_key(now, id, info.digit.as_char());
                    }
                    Err(error) => {
                        let reason = format!("bad DTMF INFO: {error}");
                        self.reply_error(now, &key, &request, 400, &reason);
                    }
                }
            }
            _ => {
                let reason = format!("{} is not supported inside a consult", request.method);
                self.reply_error(now, &key, &request, 405, &reason);
            }
        }
        None
    }

    /// An INVITE from an agent's phone naming another agent while the agent has a call: a
    /// consult (the caller is held; the phone's transfer then sends REFER with Replaces).
    pub(super) fn is_consult_dial(&self, request: &Request, dialled: &str) -> bool {
        let Some(agent) = header_value(&request.headers, "From")
            .map(sip::headers::split_name_addr)
            .and_then(|(uri, _)| sip::headers::uri_user(uri))
            .and_then(|user| self.agents_by_user.get(user))
            .map(|entry| entry.id.to_string())
        else {
            return false;
        };
        // A number Switchboard serves stays a call to that number, as for calls out.
        let names_agent = self
            .config
            .agents
            .iter()
            .any(|a| a.id == dialled || a.sip_user == dialled)
            && !self.config.numbers.iter().any(|n| n.did == dialled);
        (names_agent || self.names_consultable_queue(dialled))
            && self.consulting_call_of(&agent).is_some()
    }

    /// `dialled` is a queue's name (and neither an agent nor a number Switchboard serves,
    /// which keep their meaning): an agent on a call dialling it consults that queue.
    fn names_consultable_queue(&self, dialled: &str) -> bool {
        self.config.queue(dialled).is_some()
            && !self
                .config
                .agents
                .iter()
                .any(|a| a.id == dialled || a.sip_user == dialled)
            && !self.config.numbers.iter().any(|n| n.did == dialled)
    }

    /// The connected call `agent` talks on with anchored media, if any.
    fn consulting_call_of(&self, agent: &str) -> Option<CallNumber> {
        self.calls
            .values()
            .find(|call| {
                call.state.is_connected()
                    && call.agent().is_some_and(|a| a.as_str() == agent)
                    && call
                        .agent_leg
                        .as_ref()
                        .is_some_and(super::call::AgentLeg::is_answered)
                    && call.media.as_ref().is_some_and(|m| m.started)
            })
            .map(|call| call.id)
    }

    /// The agent's phone dials a colleague while on a call: Switchboard rings the colleague as
    /// the call's consult and answers the phone as one more leg of the call's session.
    pub(super) fn on_consult_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
        dialled: &str,
    ) {
        let user = match self.authenticate(now, &key, &request, true) {
            super::registration::AuthOutcome::User(user) => user,
            _ => return,
        };
        let Some(agent) = self.agents_by_user.get(&user).map(|a| a.id.to_string()) else {
            self.reply_error(now, &key, &request, 403, "not an agent");
            return;
        };
        let Some(id) = self.consulting_call_of(&agent) else {
            self.reply_error(
                now,
                &key,
                &request,
                480,
                "the agent has no call to consult on",
            );
            return;
        };
        if request.body.is_empty() {
            self.reply_error(now, &key, &request, 488, "an SDP offer is required");
            return;
        }
        let extra = match self.media.answer_extra_offer(&request.body) {
            Ok(extra) => extra,
            Err(error) => {
                self.reply_error(now, &key, &request, error.sip_status(), &error.to_string());
                return;
            }
        };
        let local_tag = self.ids.tag();
        let dialog = match Dialog::new_uas(&request, &local_tag, source) {
            Ok(dialog) => dialog,
            Err(error) => {
                self.media.release_unused(extra.ports);
                self.reply_error(now, &key, &request, 400, &error.to_string());
                return;
            }
        };
        // A queue's name dialled is a consult to the queue (its best Ready agent).
        let target = if self.names_consultable_queue(dialled) {
            format!("queue:{dialled}")
        } else {
            dialled.to_owned()
        };
        if let Err(refusal) = self.start_consult(now, id, &target, false) {
            self.media.release_unused(extra.ports);
            self.reply_error(
                now,
                &key,
                &request,
                refusal.sip_status(),
                &refusal.to_string(),
            );
            return;
        }
        let Some(leg) = self.media.free_extra_leg(id) else {
            self.media.release_unused(extra.ports);
            self.end_consult_leg(now, id, true);
            self.reply_error(
                now,
                &key,
                &request,
                486,
                "no room for the consult on this call",
            );
            return;
        };
        tracing::info!(call = id, %agent, target = dialled, "consult dialled from the phone");
        self.send_response(now, &key, response_to(&request, 180, Some(&local_tag)));
        self.media.add_extra_leg(id, leg, &extra);
        self.calls.route_monitor(dialog.call_id.clone(), id);
        if let Some(consult) = self.calls.get_mut(&id).and_then(|c| c.consult.as_mut()) {
            consult.phone = Some(PhoneSide {
                leg,
                invite: Box::new(request),
                server_key: key,
                dialog,
                media: extra,
                answered: false,
            });
        }
    }

    /// Whether the call's phase lets a consult start.
    pub(super) fn consult_possible(&self, id: CallNumber) -> bool {
        self.calls.get(&id).is_some_and(|c| {
            c.state.is_connected()
                && c.agent_leg
                    .as_ref()
                    .is_some_and(super::call::AgentLeg::is_answered)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard_by(routing: &Routing, leg: Leg) -> Vec<Leg> {
        let mut heard = routing.heard_by(leg);
        heard.sort();
        heard
    }

    #[test]
    fn while_consulting_the_caller_hears_neither_agent() {
        let colleague = Leg::Extra(0);
        let ringing = consult_routing(ConsultStage::Consulting, true, colleague, false);
        assert!(heard_by(&ringing, Leg::Agent).is_empty());
        assert!(heard_by(&ringing, Leg::Trunk).is_empty());
        let talking = consult_routing(ConsultStage::Consulting, true, colleague, true);
        assert_eq!(heard_by(&talking, Leg::Agent), vec![colleague]);
        assert_eq!(heard_by(&talking, colleague), vec![Leg::Agent]);
        assert!(
            heard_by(&talking, Leg::Trunk).is_empty(),
            "the caller is on hold"
        );
    }

    #[test]
    fn a_conference_mixes_all_three_and_survives_the_first_agent() {
        let colleague = Leg::Extra(1);
        let all = consult_routing(ConsultStage::Conference, true, colleague, true);
        assert_eq!(heard_by(&all, Leg::Trunk), vec![Leg::Agent, colleague]);
        assert_eq!(heard_by(&all, Leg::Agent), vec![Leg::Trunk, colleague]);
        assert_eq!(heard_by(&all, colleague), vec![Leg::Trunk, Leg::Agent]);
        let left = consult_routing(ConsultStage::Conference, false, colleague, true);
        assert_eq!(heard_by(&left, Leg::Trunk), vec![colleague]);
        assert_eq!(heard_by(&left, colleague), vec![Leg::Trunk]);
        let transferred = consult_routing(ConsultStage::Transferred, false, colleague, true);
        assert_eq!(transferred, left);
    }

    #[test]
    fn refusals_of_queue_and_number_consults_have_stable_answers() {
        let cases = [
            (
                ConsultRefusal::NoReadyAgent("billing".into()),
                (409, "no_ready_agent"),
                480,
            ),
            (
                ConsultRefusal::NotAllowed("+33".into()),
                (403, "number_not_allowed"),
                403,
            ),
            (
                ConsultRefusal::NoRoute("+44".into()),
                (404, "unknown_target"),
                404,
            ),
            (
                ConsultRefusal::UnknownTarget("queue:x".into()),
                (404, "unknown_target"),
                404,
            ),
        ];
        for (refusal, api, sip) in cases {
            assert_eq!(refusal.api_status(), api, "{refusal}");
            assert_eq!(refusal.sip_status(), sip, "{refusal}");
        }
    }

    #[test]
    fn replaces_is_read_from_an_escaped_refer_to() {
        assert_eq!(
            replaces_of("<sip:1002@127.0.0.1?Replaces=abc%40host%3Bto-tag%3Dx1%3Bfrom-tag%3Dy2>"),
            Some(("abc@host".into(), "x1".into(), "y2".into()))
        );
        assert_eq!(
            replaces_of("sip:1002@h?replaces=id%3bfrom-tag%3dF%3bto-tag%3dT"),
            Some(("id".into(), "T".into(), "F".into()))
        );
        assert_eq!(replaces_of("<sip:1002@127.0.0.1>"), None);
        assert_eq!(
            replaces_of("<sip:1002@h?Replaces=id%3Bto-tag%3Dx>"),
            None,
            "no from-tag"
        );
    }
}
