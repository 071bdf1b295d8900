//! Supervisors on live calls. A supervisor (an agent with `supervisor = true`) dials
//! `*41<agent>` to listen to that agent's call, `*42<agent>` to whisper (coach the agent; the
//! caller never hears it) or `*43<agent>` to barge in (everyone hears everyone). The
//! supervisor's phone becomes an extra leg of the call's media session, which mixes per
//! listener; keys 1, 2 and 3 on the supervisor's phone switch between the modes. The agent's
//! phone is told nothing: its dialog does not change at all.
//!
//! A supervision belongs to the agent's conversation: it ends when the supervisor hangs up,
//! when the agent leaves the call (a transfer), or with the call.
//!
//! After an attended transfer the colleague who took the call is the agent of that
//! conversation: `*4x<colleague>` and the API's supervise join it, and in the mix the
//! colleague's leg plays the agent's role (whisper: the colleague hears the supervisor, the
//! caller does not). While a consult is under way (before complete) nobody can join: who
//! hears whom is the consult's (consult.rs).

use super::call::{Call, CallNumber};
use super::consult::ConsultStage;
use super::extra_leg_invite::{Caller, Phone, Reserved, RungLeg, Unavailable};
use super::media_plane::ExtraLeg;
use super::registration::AuthOutcome;
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

/// What a supervisor hears and who hears the supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorMode {
    /// Hears caller and agent; nobody hears the supervisor.
    Listen,
    /// Hears both; only the agent hears the supervisor.
    Whisper,
    /// A three-way call: everyone hears everyone.
    Barge,
}

impl MonitorMode {
    /// The mode a key selects (the last digit of its feature code).
    pub fn from_key(key: char) -> Option<MonitorMode> {
        match key {
            '1' => Some(MonitorMode::Listen),
            '2' => Some(MonitorMode::Whisper),
            '3' => Some(MonitorMode::Barge),
            _ => None,
        }
    }

    /// Its name in logs, the API and CDRs.
    pub fn label(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }
}

/// Reads `*41<agent>`, `*42<agent>`, `*43<agent>`: the mode and the agent id.
pub fn parse_monitor_code(dialled: &str) -> Option<(MonitorMode, &str)> {
    let rest = dialled.strip_prefix("*4")?;
    let mut chars = rest.chars();
    let mode = MonitorMode::from_key(chars.next()?)?;
    let agent = chars.as_str();
    (!agent.is_empty()).then_some((mode, agent))
}

/// One supervisor's leg on a call.
#[derive(Debug)]
pub struct Monitor {
    /// The supervisor's agent id.
    pub supervisor: String,
    /// The agent whose conversation is supervised.
    pub agent: String,
    /// The media session's name for the supervisor's leg.
    pub leg: Leg,
    /// The current mode.
    pub mode: MonitorMode,
    /// Every mode used, in order, for the CDR.
    pub modes: Vec<MonitorMode>,
    /// Call-ID of the dialog with the supervisor's phone.
    pub call_id: String,
    /// Switchboard's tag in it.
    pub local_tag: String,
    /// Who called whom.
    pub side: MonitorSide,
    /// Ports, remote side and SDP state of the supervisor's leg.
    pub media: ExtraLeg,
    /// The leg is in the session and in the mix (a supervisor who dialled in has had the 200).
    pub answered: bool,
    /// When the supervisor dialled in or was rung.
    pub joined: Instant,
}

/// How the supervisor's leg was set up.
#[derive(Debug)]
pub enum MonitorSide {
    /// The supervisor dialled a `*4x` code: Switchboard answers their INVITE.
    DialledIn {
        /// The supervisor's INVITE (the 200 is built from it).
        invite: Box<Request>,
        /// Its server transaction.
        server_key: TransactionKey,
        /// The dialog, formed when the INVITE arrived.
        dialog: Box<Dialog>,
    },
    /// Switchboard rang the supervisor's phone (the API).
    CalledOut {
        /// The INVITE, its transaction (cancelled if the call ends first) and, once the
        /// phone answered, the dialog.
        uac: Box<UacLeg>,
        /// Switchboard's offer as a plan, to check the phone's answer.
        plan: media::MediaPlan,
    },
}

impl Monitor {
    fn server_key(&self) -> Option<&TransactionKey> {
        match &self.side {
            MonitorSide::DialledIn { server_key, .. } => Some(server_key),
            MonitorSide::CalledOut { .. } => None,
        }
    }

    /// The dialog with the supervisor's phone, once there is one.
    pub fn dialog(&self) -> Option<&Dialog> {
        match &self.side {
            MonitorSide::DialledIn { dialog, .. } => Some(dialog),
            MonitorSide::CalledOut { uac, .. } => uac.dialog(),
        }
    }

    fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        match &mut self.side {
            MonitorSide::DialledIn { dialog, .. } => Some(dialog),
            MonitorSide::CalledOut { uac, .. } => uac.dialog_mut(),
        }
    }

    /// Switchboard is ringing this supervisor's phone and it has not answered.
    fn ringing(&self) -> bool {
        matches!(&self.side, MonitorSide::CalledOut { uac, .. } if !uac.is_answered())
    }
}

/// Why Switchboard cannot ring a supervisor into a call from the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuperviseRefusal {
    /// No configured agent with `supervisor = true` has this id.
    #[error("{0} is not a supervisor")]
    NotASupervisor(String),
    /// The supervisor is the agent on the call.
    #[error("a supervisor cannot join their own call")]
    OwnCall,
    /// The supervisor has no registered phone.
    #[error("supervisor {0} has no registered phone")]
    Unreachable(String),
    /// Every extra leg of the call, or every RTP port, is taken.
    #[error("no room for another supervisor on this call")]
    NoRoom,
}

/// A consult seen from the supervisor's side: its stage, the consulted party, their leg, and
/// whether that leg can carry a supervised conversation (an agent, not an outside number,
/// whose leg is bound in the session).
#[derive(Debug, Clone, Copy)]
pub struct ConsultView<'a> {
    /// Where the consult stands.
    pub stage: ConsultStage,
    /// The consulted agent's id.
    pub target: &'a str,
    /// The media session's name for the consulted party's leg.
    pub leg: Leg,
    /// The consulted party is an agent and their leg is bound in the session.
    pub agent_in_mix: bool,
}

/// Who a supervisor of this call would coach, and on which leg they talk: the call's agent
/// (`agent`, on [`Leg::Agent`]) when there is no consult; once an attended transfer is
/// complete, the colleague who took the call (on the consult's leg). Nobody while a consult
/// or conference is under way, nor after a transfer to an outside number.
pub fn supervised_talker<'a>(
    agent: Option<&'a str>,
    consult: Option<ConsultView<'a>>,
) -> Option<(&'a str, Leg)> {
    match consult {
        None => agent.map(|agent| (agent, Leg::Agent)),
        Some(consult)
            if agent.is_none()
                && consult.stage == ConsultStage::Transferred
                && consult.agent_in_mix =>
        {
            Some((consult.target, consult.leg))
        }
        Some(_) => None,
    }
}

/// [`supervised_talker`] of a call.
fn call_talker(call: &Call) -> Option<(&str, Leg)> {
    let consult = call.consult.as_ref().map(|c| ConsultView {
        stage: c.stage,
        target: &c.target,
        leg: c.leg,
        agent_in_mix: c.in_mix && !c.outside,
    });
    supervised_talker(call.agent().map(|a| a.as_str()), consult)
}

/// Who hears whom with these supervisors (leg and mode of each one in the mix) on a call
/// whose agent talks on [`Leg::Agent`]. Without a supervisor the call is the plain two-party
/// relay (nothing decoded).
pub fn bridge_routing(supervisors: &[(Leg, MonitorMode)]) -> Routing {
    bridge_routing_via(Leg::Agent, supervisors)
}

/// The same when the agent's role is played by the party on `agent` (the colleague an
/// attended transfer passed the call to, on the consult's leg). Without a supervisor, caller
/// and that party hear each other.
pub fn bridge_routing_via(agent: Leg, supervisors: &[(Leg, MonitorMode)]) -> Routing {
    if supervisors.is_empty() {
        return if agent == Leg::Agent {
            Routing::Relay
        } else {
            Routing::Mix {
                hears: vec![(Leg::Trunk, vec![agent]), (agent, vec![Leg::Trunk])],
            }
        };
    }
    let in_mode = |mode: MonitorMode| -> Vec<Leg> {
        supervisors
            .iter()
            .filter(|(_, m)| *m == mode)
            .map(|(leg, _)| *leg)
            .collect()
    };
    let barging = in_mode(MonitorMode::Barge);
    let coaching = in_mode(MonitorMode::Whisper);
    let caller_hears = std::iter::once(agent)
        .chain(barging.iter().copied())
        .collect();
    let agent_hears = std::iter::once(Leg::Trunk)
        .chain(coaching.iter().copied())
        .chain(barging.iter().copied())
        .collect();
    let mut hears = vec![(Leg::Trunk, caller_hears), (agent, agent_hears)];
    for &(leg, _) in supervisors {
        let others = [Leg::Trunk, agent]
            .into_iter()
            .chain(barging.iter().copied().filter(|&l| l != leg))
            .collect();
        hears.push((leg, others));
    }
    Routing::Mix { hears }
}

impl Switch {
    /// An INVITE to `*4x<agent>`: a supervisor joining an agent's call.
    pub(super) fn on_monitor_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
        mode: MonitorMode,
        target: &str,
    ) {
        let user = match self.authenticate(now, &key, &request, true) {
            AuthOutcome::User(user) => user,
            AuthOutcome::Challenged | AuthOutcome::Refused => return,
        };
        let Some(supervisor) = self.agents_by_user.get(&user).map(|a| a.id.to_string()) else {
            self.reply_error(now, &key, &request, 403, "not an agent");
            return;
        };
        let is_supervisor = self
            .config
            .agents
            .iter()
            .any(|a| a.id == supervisor && a.supervisor);
        if !is_supervisor {
            self.reply_error(
                now,
                &key,
                &request,
                403,
                &format!("agent {supervisor} is not a supervisor"),
            );
            return;
        }
        if !self.config.agents.iter().any(|a| a.id == target) {
            self.reply_error(now, &key, &request, 404, &format!("unknown agent {target}"));
            return;
        }
        if target == supervisor {
            self.reply_error(
                now,
                &key,
                &request,
                403,
                "a supervisor cannot join their own call",
            );
            return;
        }
        let Some(id) = self.connected_call_of(target) else {
            let reason = format!("agent {target} is not on a call");
            self.reply_error(now, &key, &request, 480, &reason);
            return;
        };
        if request.body.is_empty() {
            self.reply_error(now, &key, &request, 488, "an SDP offer is required");
            return;
        }
        let Some(leg) = self.media.free_extra_leg(id) else {
            self.reply_error(
                now,
                &key,
                &request,
                486,
                "the call has no room for another supervisor",
            );
            return;
        };
        let extra = match self.media.answer_extra_offer(&request.body) {
            Ok(extra) => extra,
            Err(error) => {
                self.reply_error(now, &key, &request, error.sip_status(), &error.to_string());
                return;
            }
        };
        let tag = self.ids.tag();
        let dialog = match Dialog::new_uas(&request, &tag, source) {
            Ok(dialog) => dialog,
            Err(error) => {
                self.media.release_unused(extra.ports);
                self.reply_error(now, &key, &request, 400, &error.to_string());
                return;
            }
        };
        tracing::info!(call = id, %supervisor, agent = target, mode = mode.label(), "supervisor joining");
        self.supervisor_busy(now, &supervisor);
        self.media.add_extra_leg(id, leg, &extra);
        self.calls.route_monitor(dialog.call_id.clone(), id);
        if let Some(call) = self.calls.get_mut(&id) {
            call.monitors.push(Monitor {
                supervisor,
                agent: target.to_owned(),
                leg,
                mode,
                modes: vec![mode],
                call_id: dialog.call_id.clone(),
                local_tag: dialog.local_tag.clone(),
                side: MonitorSide::DialledIn {
                    invite: Box::new(request),
                    server_key: key,
                    dialog: Box::new(dialog),
                },
                media: extra,
                answered: false,
                joined: now,
            });
        }
    }

    /// `POST /api/calls/{id}/supervise`: rings the supervisor's phone (with Switchboard's own
    /// offer) and adds it to the call once it answers. The call is connected with its media
    /// running (the API checked).
    pub(super) fn supervise_from_api(
        &mut self,
        now: Instant,
        id: CallNumber,
        supervisor: &str,
        mode: MonitorMode,
    ) -> Result<(), SuperviseRefusal> {
        let is_supervisor = self
            .config
            .agents
            .iter()
            .any(|a| a.id == supervisor && a.supervisor);
        let entry = self
            .agents_by_id
            .get(&acd::AgentId::from(supervisor))
            .filter(|_| is_supervisor)
            .cloned()
            .ok_or_else(|| SuperviseRefusal::NotASupervisor(supervisor.to_owned()))?;
        let agent = self
            .calls
            .get(&id)
            .and_then(|call| call_talker(call).map(|(agent, _)| agent.to_owned()))
            .unwrap_or_default();
        if agent == supervisor {
            return Err(SuperviseRefusal::OwnCall);
        }
        let Reserved {
            binding,
            uri,
            leg,
            extra,
            plan,
        } = self
            .reserve_phone_leg(now, id, &entry.sip_user)
            .map_err(|unavailable| match unavailable {
                Unavailable::Unreachable => SuperviseRefusal::Unreachable(supervisor.to_owned()),
                Unavailable::NoRoom => SuperviseRefusal::NoRoom,
            })?;

        tracing::info!(call = id, %supervisor, %agent, mode = mode.label(), peer = %binding.source, "ringing a supervisor into the call");
        let caller = Caller {
            display: format!("Supervise {agent}"),
            user: "switchboard",
            purpose: (
                "X-Switchboard-Supervise",
                format!("{} {agent}", mode.label()),
            ),
            call_id_kind: "sup",
        };
        let RungLeg {
            invite,
            call_id,
            local_tag,
            client_key,
        } = self.ring_extra_leg(
            now,
            (id, leg),
            Phone::registered(&binding, &entry.sip_user, uri),
            caller,
            extra.local_body.clone(),
        );
        self.supervisor_busy(now, supervisor);
        if let Some(call) = self.calls.get_mut(&id) {
            call.monitors.push(Monitor {
                supervisor: supervisor.to_owned(),
                agent,
                leg,
                mode,
                modes: vec![mode],
                call_id,
                local_tag,
                side: MonitorSide::CalledOut {
                    uac: Box::new(UacLeg::calling(invite, client_key, binding.source, now)),
                    plan,
                },
                media: extra,
                answered: false,
                joined: now,
            });
        }
        Ok(())
    }

    /// The final response of a supervisor's phone Switchboard rang.
    pub(super) fn on_monitor_invite_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        leg: Leg,
        response: sip::rsip::Response,
        source: Peer,
    ) {
        let answered = (200..300).contains(&response.status_code.code());
        if self.is_consult_leg(id, leg) {
            self.on_consult_response(now, id, response, source);
            return;
        }
        let ringing = |m: &Monitor| m.leg == leg && m.ringing();
        let pending = self
            .calls
            .get(&id)
            .is_some_and(|c| c.monitors.iter().any(ringing));
        if !pending {
            // Cancelled (the call ended, or the ring timed out) while this was in flight.
            if answered {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        }
        if !answered {
            tracing::info!(
                call = id,
                code = response.status_code.code(),
                "supervisor's phone refused"
            );
            self.take_monitor(now, id, ringing);
            self.media.extra_leg_released(id, leg);
            return;
        }
        let via = self.via(source);
        let Some(monitor) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.monitors.iter_mut().find(|m| ringing(m)))
        else {
            return;
        };
        let MonitorSide::CalledOut { uac, plan } = &mut monitor.side else {
            return;
        };
        let ack = match uac.answer(now, &response, source, &via) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(call = id, %error, "supervisor's 2xx unusable");
                self.hang_up_orphan(now, &response, source);
                self.take_monitor(now, id, ringing);
                self.media.extra_leg_released(id, leg);
                return;
            }
        };
        let checked = self
            .media
            .extra_answered(&mut monitor.media, plan, &response.body);
        let added = checked.map(|_| monitor.media.clone());
        self.send_stateless_request(ack, source);
        match added {
            Ok(extra) => self.media.add_extra_leg(id, leg, &extra),
            Err(error) => {
                tracing::info!(call = id, %error, "supervisor's SDP answer refused");
                if let Some(monitor) = self.take_monitor(now, id, |m| m.leg == leg) {
                    self.hang_up_monitor(now, monitor);
                }
                self.media.extra_leg_released(id, leg);
            }
        }
    }

    /// A supervisor's phone rung from the API did not answer within the ring timeout.
    pub(super) fn monitor_ring_timeout(&mut self, now: Instant, id: CallNumber, leg: Leg) {
        if self.is_consult_leg(id, leg) {
            self.consult_ring_timeout(now, id);
            return;
        }
        let ringing = |m: &Monitor| m.leg == leg && m.ringing();
        if let Some(monitor) = self.take_monitor(now, id, ringing) {
            tracing::info!(call = id, supervisor = %monitor.supervisor, "supervisor did not answer");
            self.hang_up_monitor(now, monitor);
            self.media.extra_leg_released(id, leg);
        }
    }

    /// The call `agent` is talking on, if any (calls with anchored, running media only: the
    /// supervisor's audio is mixed by the call's media session). The colleague an attended
    /// transfer passed a call to is talking on it.
    fn connected_call_of(&self, agent: &str) -> Option<CallNumber> {
        self.calls
            .values()
            .find(|call| {
                call.state.is_connected()
                    && call_talker(call).is_some_and(|(talker, _)| talker == agent)
                    && call.media.as_ref().is_some_and(|m| m.started)
            })
            .map(|call| call.id)
    }

    /// Whether a supervisor can join call `id` now: someone talks with the caller (the
    /// agent, or the colleague an attended transfer passed the call to).
    pub(super) fn supervisable(&self, id: CallNumber) -> bool {
        self.calls
            .get(&id)
            .is_some_and(|call| call_talker(call).is_some())
    }

    /// The session bound an extra leg: a consulted colleague's goes to the consult; a
    /// supervisor's phone that dialled in is answered, and the supervisor mixed in.
    pub(super) fn extra_leg_added(&mut self, now: Instant, id: CallNumber, leg: Leg) {
        if self.is_consult_leg(id, leg) {
            self.consult_leg_added(now, id, leg);
            return;
        }
        let Some(monitor) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.monitors.iter_mut().find(|m| m.leg == leg))
        else {
            // The supervisor gave up before the leg was bound.
            self.media.command(id, MediaCommand::RemoveLeg { leg });
            return;
        };
        monitor.answered = true;
        let response = match &monitor.side {
            MonitorSide::DialledIn {
                invite,
                server_key,
                dialog,
            } => {
                let mut ok = response_to(invite, 200, Some(&monitor.local_tag));
                push_header(&mut ok.headers, "Content-Type", "application/sdp");
                ok.body = monitor.media.local_body.clone();
                Some((server_key.clone(), ok, dialog.peer.transport))
            }
            _ => None,
        };
        if let Some((key, mut ok, transport)) = response {
            push_header(&mut ok.headers, "Contact", self.contact(transport));
            self.add_capabilities(&mut ok.headers);
            self.send_response(now, &key, ok);
        }
        self.apply_bridge(id);
    }

    /// The session could not bind an extra leg (a consulted colleague's, or a supervisor's).
    pub(super) fn extra_leg_failed(&mut self, now: Instant, id: CallNumber, leg: Leg) {
        if self.is_consult_leg(id, leg) {
            self.consult_leg_lost(now, id);
            return;
        }
        self.media.extra_leg_released(id, leg);
        let Some(monitor) = self.take_monitor(now, id, |m| m.leg == leg) else {
            return;
        };
        match &monitor.side {
            MonitorSide::DialledIn {
                invite, server_key, ..
            } => {
                let (invite, server_key) = (invite.clone(), server_key.clone());
                let reason = "no media port for the supervisor";
                self.reply_error(now, &server_key, &invite, 503, reason);
            }
            MonitorSide::CalledOut { .. } => self.hang_up_monitor(now, monitor),
        }
    }

    /// A key on the supervisor's phone: 1 listen, 2 whisper, 3 barge.
    pub(super) fn monitor_key(&mut self, id: CallNumber, leg: Leg, key: char) {
        let Some(mode) = MonitorMode::from_key(key) else {
            return;
        };
        let changed = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.monitors.iter_mut().find(|m| m.leg == leg))
            .filter(|monitor| monitor.mode != mode)
            .map(|monitor| {
                monitor.mode = mode;
                monitor.modes.push(mode);
                tracing::info!(call = id, supervisor = %monitor.supervisor, mode = mode.label(), "supervisor mode");
            });
        if changed.is_some() {
            self.apply_bridge(id);
        }
    }

    /// The supervisor's phone sent no RTP for the media timeout: hang it up.
    pub(super) fn monitor_silent(&mut self, now: Instant, id: CallNumber, leg: Leg) {
        if self.is_consult_leg(id, leg) {
            self.consult_leg_lost(now, id);
            return;
        }
        if let Some(monitor) = self.take_monitor(now, id, |m| m.leg == leg) {
            tracing::info!(call = id, supervisor = %monitor.supervisor, "supervisor leg silent: hanging up");
            self.close_monitor(now, id, monitor, true);
        }
    }

    /// A request inside a supervisor's dialog; gives the request back when it is not one.
    pub(super) fn on_monitor_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) -> Option<(TransactionKey, Request)> {
        let (key, request) = self.on_consult_request(now, key, request)?;
        let found = call_id_of(&request.headers).and_then(|call_id| {
            let id = self.calls.by_monitor_call_id(call_id)?;
            let our_tag = to_tag(&request.headers)?;
            let index = self
                .calls
                .get(&id)?
                .monitors
                .iter()
                .position(|m| m.local_tag == our_tag && m.dialog().is_some())?;
            Some((id, index))
        });
        let Some((id, index)) = found else {
            return Some((key, request));
        };
        let in_order = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.monitors.get_mut(index))
            .and_then(|m| m.dialog_mut())
            .is_some_and(|dialog| dialog.accept_remote_cseq(&request));
        if !in_order {
            self.reply_error(now, &key, &request, 500, "CSeq out of order");
            return None;
        }
        match request.method {
            Method::Bye => {
                self.send_response(now, &key, response_to(&request, 200, None));
                let leg = self.calls.get(&id).map(|call| call.monitors[index].leg);
                if let Some(monitor) =
                    leg.and_then(|leg| self.take_monitor(now, id, |m| m.leg == leg))
                {
                    tracing::info!(call = id, supervisor = %monitor.supervisor, "supervisor hung up");
                    self.close_monitor(now, id, monitor, false);
                }
            }
            Method::Info => {
                let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
                match media::dtmf::parse_info(content_type, &request.body) {
                    Ok(info) => {
                        self.send_response(now, &key, response_to(&request, 200, None));
                        let leg = self.calls.get(&id).map(|call| call.monitors[index].leg);
                        if let Some(leg) = leg {
                            self.monitor_key(id, leg, info.digit.as_char());
                        }
                    }
                    Err(error) => {
                        let reason = format!("bad DTMF INFO: {error}");
                        self.reply_error(now, &key, &request, 400, &reason);
                    }
                }
            }
            Method::Invite | Method::Update => self.monitor_reoffer(now, id, index, key, request),
            Method::Options => {
                let mut ok = response_to(&request, 200, None);
                self.add_capabilities(&mut ok.headers);
                self.send_response(now, &key, ok);
            }
            _ => {
                let reason = format!("{} is not supported inside a supervision", request.method);
                self.reply_error(now, &key, &request, 405, &reason);
            }
        }
        None
    }

    /// A re-INVITE/UPDATE from the supervisor's phone: answered here, the leg updated. Without
    /// an offer, Switchboard's last SDP is offered again and the phone keeps its address.
    fn monitor_reoffer(
        &mut self,
        now: Instant,
        id: CallNumber,
        index: usize,
        key: TransactionKey,
        request: Request,
    ) {
        let Some(monitor) = self
            .calls
            .get_mut(&id)
            .and_then(|call| call.monitors.get_mut(index))
        else {
            return;
        };
        let leg = monitor.leg;
        let Some(transport) = monitor.dialog().map(|d| d.peer.transport) else {
            return;
        };
        let answer = if request.body.is_empty() {
            Ok((
                None,
                monitor
                    .media
                    .sdp
                    .last()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
            ))
        } else {
            self.media
                .answer_extra_reoffer(&mut monitor.media, &request.body)
                .map(|(config, _, answer)| (Some(config), answer))
        };
        match answer {
            Ok((config, answer)) => {
                if let Some(config) = config {
                    self.media
                        .command(id, MediaCommand::UpdateLeg { leg, config });
                }
                let mut ok = response_to(&request, 200, None);
                push_header(&mut ok.headers, "Contact", self.contact(transport));
                if !answer.is_empty() {
                    push_header(&mut ok.headers, "Content-Type", "application/sdp");
                    ok.body = answer;
                }
                self.send_response(now, &key, ok);
            }
            Err(error) => {
                self.reply_error(now, &key, &request, error.sip_status(), &error.to_string())
            }
        }
    }

    /// Our 200 to a supervisor was never acknowledged: drop the leg.
    pub(super) fn monitor_ack_timeout(&mut self, now: Instant, key: &TransactionKey) -> bool {
        let Some(id) = self.call_with_monitor(|m| m.server_key() == Some(key)) else {
            return false;
        };
        if let Some(monitor) = self.take_monitor(now, id, |m| m.server_key() == Some(key)) {
            tracing::info!(call = id, supervisor = %monitor.supervisor, "supervisor never acknowledged the answer");
            self.close_monitor(now, id, monitor, true);
        }
        true
    }

    /// The call one of whose supervisors matches `which`.
    fn call_with_monitor(&self, which: impl Fn(&Monitor) -> bool) -> Option<CallNumber> {
        self.calls
            .values()
            .find(|call| call.monitors.iter().any(&which))
            .map(|call| call.id)
    }

    /// The supervisor cancelled before the leg was answered.
    pub(super) fn monitor_cancelled(&mut self, now: Instant, key: &TransactionKey) -> bool {
        let pending = |m: &Monitor| m.server_key() == Some(key) && !m.answered;
        let Some(id) = self.call_with_monitor(pending) else {
            return false;
        };
        if let Some(monitor) = self.take_monitor(now, id, pending) {
            if let MonitorSide::DialledIn { invite, .. } = &monitor.side {
                let terminated = response_to(invite, 487, Some(&monitor.local_tag));
                self.send_response(now, key, terminated);
            }
            self.close_monitor(now, id, monitor, false);
        }
        true
    }

    /// The agent left the call (a transfer): the supervisors of that conversation leave too.
    pub(super) fn release_monitors(&mut self, now: Instant, id: CallNumber) {
        while let Some(monitor) = self.take_monitor(now, id, |_| true) {
            self.close_monitor(now, id, monitor, true);
        }
    }

    /// The call is over (it is already out of the index): hang up every supervisor and keep
    /// their sessions for the CDR. The media session's end releases their ports.
    pub(super) fn end_monitors(&mut self, now: Instant, call: &mut Call) {
        for monitor in std::mem::take(&mut call.monitors) {
            self.supervisor_free(now, &monitor.supervisor);
            call.supervisions
                .push(self.supervision_record(&monitor, now));
            self.hang_up_monitor(now, monitor);
        }
    }

    /// Takes the first supervisor of call `id` matching `which` out of the call and its route
    /// (and, if it was their last supervision, the supervisor back to Ready).
    fn take_monitor(
        &mut self,
        now: Instant,
        id: CallNumber,
        which: impl Fn(&Monitor) -> bool,
    ) -> Option<Monitor> {
        let call = self.calls.get_mut(&id)?;
        let index = call.monitors.iter().position(which)?;
        let monitor = call.monitors.remove(index);
        self.calls.forget_monitor(&monitor.call_id);
        self.supervisor_free(now, &monitor.supervisor);
        Some(monitor)
    }

    /// A supervisor taken out of a call that goes on: remove the leg from the session, hang
    /// the phone up if Switchboard ends it (`hang_up`), keep the session for the CDR and mix
    /// the rest again.
    fn close_monitor(&mut self, now: Instant, id: CallNumber, monitor: Monitor, hang_up: bool) {
        self.media
            .command(id, MediaCommand::RemoveLeg { leg: monitor.leg });
        let record = self.supervision_record(&monitor, now);
        if hang_up {
            self.hang_up_monitor(now, monitor);
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.supervisions.push(record);
        }
        self.apply_bridge(id);
    }

    /// Ends the supervisor's side of the dialog: BYE once it is up; before that, 480 to a
    /// supervisor who dialled in, CANCEL to a phone Switchboard is ringing.
    pub(super) fn hang_up_monitor(&mut self, now: Instant, monitor: Monitor) {
        match monitor.side {
            MonitorSide::DialledIn { mut dialog, .. } if monitor.answered => {
                let peer = dialog.peer;
                let via = self.via(peer);
                let bye = dialog.request(Method::Bye, &via, None, None);
                self.send_request(now, bye, peer, ClientPurpose::Fire);
            }
            MonitorSide::DialledIn {
                invite, server_key, ..
            } => {
                let mut gone = response_to(&invite, 480, Some(&monitor.local_tag));
                let reason = "the supervised call ended";
                sip::message::add_warning(&mut gone, super::AGENT_NAME, reason);
                self.send_response(now, &server_key, gone);
            }
            MonitorSide::CalledOut { uac, .. } => {
                let ending = uac.end(|peer| self.via(peer), None);
                self.end_uac_leg(now, ending);
            }
        }
    }

    /// A supervision begins: a Ready supervisor is set Not ready (`supervising`) so the ACD
    /// does not ring their phone with a queue call meanwhile (their phone is on the
    /// supervision, or about to be). A supervisor in any other state is left as they are.
    fn supervisor_busy(&mut self, now: Instant, supervisor: &str) {
        let sessions = self.supervising.entry(supervisor.to_owned()).or_insert(0);
        *sessions += 1;
        if *sessions > 1 {
            return;
        }
        let id = acd::AgentId::from(supervisor);
        if matches!(
            self.acd.agent(&id).map(|a| a.state),
            Some(acd::AgentState::Ready)
        ) {
            match self.acd.set_not_ready(now, &id, acd::SUPERVISING_REASON) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::debug!(%supervisor, %error, "not-ready while supervising"),
            }
        }
    }

    /// A supervision ends: after the supervisor's last one, Not ready `supervising` becomes
    /// Ready again (a state someone set meanwhile is kept).
    fn supervisor_free(&mut self, now: Instant, supervisor: &str) {
        let Some(sessions) = self.supervising.get_mut(supervisor) else {
            return;
        };
        *sessions = sessions.saturating_sub(1);
        if *sessions > 0 {
            return;
        }
        self.supervising.remove(supervisor);
        let id = acd::AgentId::from(supervisor);
        let supervising = self.acd.agent(&id).is_some_and(|a| {
            matches!(&a.state, acd::AgentState::NotReady { reason } if &**reason == acd::SUPERVISING_REASON)
        });
        if supervising {
            match self.acd.set_ready(now, &id) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::debug!(%supervisor, %error, "ready after supervising"),
            }
        }
    }

    fn supervision_record(&self, monitor: &Monitor, now: Instant) -> cdr::Supervision {
        cdr::Supervision {
            supervisor: monitor.supervisor.clone(),
            agent: monitor.agent.clone(),
            modes: monitor.modes.iter().map(|m| m.label().to_owned()).collect(),
            started: self.wall(monitor.joined),
            ended: self.wall(now),
        }
    }

    /// Tells the call's session who hears whom now. While a consult is under way the
    /// consult decides (consult.rs); after a completed attended transfer the colleague's leg
    /// is the agent's.
    pub(super) fn apply_bridge(&mut self, id: CallNumber) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let Some((_, agent)) = call_talker(call) else {
            return;
        };
        if call.media.as_ref().is_some_and(|m| m.started) {
            let in_mix: Vec<(Leg, MonitorMode)> = call
                .monitors
                .iter()
                .filter(|m| m.answered)
                .map(|m| (m.leg, m.mode))
                .collect();
            let routing = bridge_routing_via(agent, &in_mix);
            self.media.command(id, MediaCommand::SetRouting(routing));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_name_a_mode_and_an_agent() {
        assert_eq!(
            parse_monitor_code("*411001"),
            Some((MonitorMode::Listen, "1001"))
        );
        assert_eq!(
            parse_monitor_code("*42alice"),
            Some((MonitorMode::Whisper, "alice"))
        );
        assert_eq!(
            parse_monitor_code("*431002"),
            Some((MonitorMode::Barge, "1002"))
        );
        assert_eq!(parse_monitor_code("*41"), None, "no agent");
        assert_eq!(parse_monitor_code("*441001"), None, "no such mode");
        assert_eq!(parse_monitor_code("*21"), None);
    }

    fn heard_by(routing: &Routing, leg: Leg) -> Vec<Leg> {
        let mut heard = routing.heard_by(leg);
        heard.sort();
        heard
    }

    #[test]
    fn without_supervisors_the_call_is_relayed() {
        assert_eq!(bridge_routing(&[]), Routing::Relay);
    }

    #[test]
    fn each_mode_decides_who_hears_the_supervisor() {
        let (caller, agent, sup) = (Leg::Trunk, Leg::Agent, Leg::Extra(0));
        let listen = bridge_routing(&[(sup, MonitorMode::Listen)]);
        assert_eq!(heard_by(&listen, caller), vec![agent]);
        assert_eq!(heard_by(&listen, agent), vec![caller]);
        assert_eq!(heard_by(&listen, sup), vec![caller, agent]);

        let whisper = bridge_routing(&[(sup, MonitorMode::Whisper)]);
        assert_eq!(heard_by(&whisper, caller), vec![agent], "never the coach");
        assert_eq!(heard_by(&whisper, agent), vec![caller, sup]);
        assert_eq!(heard_by(&whisper, sup), vec![caller, agent]);

        let barge = bridge_routing(&[(sup, MonitorMode::Barge)]);
        assert_eq!(heard_by(&barge, caller), vec![agent, sup]);
        assert_eq!(heard_by(&barge, agent), vec![caller, sup]);
        assert_eq!(heard_by(&barge, sup), vec![caller, agent]);
    }

    #[test]
    fn after_an_attended_transfer_the_colleague_plays_the_agents_part() {
        let (caller, colleague, sup) = (Leg::Trunk, Leg::Extra(0), Leg::Extra(1));
        assert_eq!(
            heard_by(&bridge_routing_via(colleague, &[]), caller),
            vec![colleague],
            "without supervisors caller and colleague talk"
        );
        assert_eq!(
            heard_by(&bridge_routing_via(colleague, &[]), colleague),
            vec![caller]
        );

        let listen = bridge_routing_via(colleague, &[(sup, MonitorMode::Listen)]);
        assert_eq!(heard_by(&listen, caller), vec![colleague]);
        assert_eq!(heard_by(&listen, colleague), vec![caller]);
        assert_eq!(heard_by(&listen, sup), vec![caller, colleague]);

        let whisper = bridge_routing_via(colleague, &[(sup, MonitorMode::Whisper)]);
        assert_eq!(
            heard_by(&whisper, caller),
            vec![colleague],
            "never the coach"
        );
        assert_eq!(heard_by(&whisper, colleague), vec![caller, sup]);
        assert_eq!(heard_by(&whisper, sup), vec![caller, colleague]);

        let barge = bridge_routing_via(colleague, &[(sup, MonitorMode::Barge)]);
        assert_eq!(heard_by(&barge, caller), vec![colleague, sup]);
        assert_eq!(heard_by(&barge, colleague), vec![caller, sup]);
        assert_eq!(heard_by(&barge, sup), vec![caller, colleague]);
        // The first agent's leg (gone) is in nobody's mix.
        for leg in [caller, colleague, sup] {
            assert!(!heard_by(&barge, leg).contains(&Leg::Agent));
        }
    }

    fn consult(stage: ConsultStage, agent_in_mix: bool) -> Option<ConsultView<'static>> {
        Some(ConsultView {
            stage,
            target: "1002",
            leg: Leg::Extra(0),
            agent_in_mix,
        })
    }

    #[test]
    fn the_supervised_talker_is_the_agent_or_the_colleague_who_took_the_call() {
        assert_eq!(
            supervised_talker(Some("1001"), None),
            Some(("1001", Leg::Agent))
        );
        assert_eq!(supervised_talker(None, None), None, "no agent yet");
        assert_eq!(
            supervised_talker(None, consult(ConsultStage::Transferred, true)),
            Some(("1002", Leg::Extra(0))),
            "after complete the colleague is the agent"
        );
        for stage in [ConsultStage::Consulting, ConsultStage::Conference] {
            assert_eq!(
                supervised_talker(Some("1001"), consult(stage, true)),
                None,
                "{stage:?}: the consult decides who hears whom"
            );
        }
        assert_eq!(
            supervised_talker(None, consult(ConsultStage::Transferred, false)),
            None,
            "an outside number (or an unbound leg) is nobody to coach"
        );
    }

    #[test]
    fn two_supervisors_hear_a_barging_one_but_never_a_whispering_one() {
        let (caller, agent) = (Leg::Trunk, Leg::Agent);
        let (coach, barger) = (Leg::Extra(0), Leg::Extra(1));
        let routing =
            bridge_routing(&[(coach, MonitorMode::Whisper), (barger, MonitorMode::Barge)]);
        assert_eq!(heard_by(&routing, caller), vec![agent, barger]);
        assert_eq!(heard_by(&routing, agent), vec![caller, coach, barger]);
        assert_eq!(heard_by(&routing, coach), vec![caller, agent, barger]);
        assert_eq!(heard_by(&routing, barger), vec![caller, agent]);
    }
}
