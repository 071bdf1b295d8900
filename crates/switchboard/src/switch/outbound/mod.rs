//! Agents dialling out from their phones: the phone's INVITE is authenticated as the agent,
//! checked against the agent's allow-list, a `[[route]]` and the toll-fraud caps, then sent to
//! the route's trunks in failover order with the media anchored on Switchboard's ports.
//!
//! Carrier answers: 2xx connects the call; 401/407 is answered once with the trunk's
//! credentials; busy, decline and "no such number" (486, 600, 603, 404, 484, 485) are final
//! and go back to the phone; anything else (other 4xx, 5xx, a timeout) tries the next trunk,
//! and when none is left the phone gets the last carrier's status (503 if none answered).

pub mod call;
mod carrier_digest;
mod carrier_registration;
#[cfg(test)]
mod race_tests;
pub mod route;

use super::call::CallNumber;
use super::registration::AuthOutcome;
use super::transport_failure::ClientFailure;
use super::uac_leg::{Late2xx, UacLeg};
use super::{ClientPurpose, Switch};
use crate::security::event_log::SecurityEventKind;
use call::{CarrierLeg, OutboundCall, PhoneLeg, Restore};
use cdr::{CallRecord, Direction, Disposition, HangupSide, Leg, LegRole, Record};
use rsip::headers::UntypedHeader;
use sip::dialog::Dialog;
use sip::headers::{call_id_of, header_value, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::{self, Header, Headers, Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// Carrier statuses that end a call out at once rather than trying the next trunk: the
/// callee is busy or declined, or the number does not exist — another carrier would say so too.
const FINAL_CARRIER_STATUSES: &[u16] = &[404, 484, 485, 486, 600, 603];

/// Where requests to a trunk's gateway go, and over what.
pub(super) fn gateway_peer(
    address: std::net::SocketAddr,
    transport: crate::config::GatewayTransport,
) -> Peer {
    match transport {
        crate::config::GatewayTransport::Udp => Peer::udp(address),
        crate::config::GatewayTransport::Tcp => Peer::tcp(address),
        crate::config::GatewayTransport::Tls => Peer::tls(address),
    }
}

/// How long a key press lasts when an INFO does not say.
const KEY_PRESS_MS: u32 = 100;

/// Whether an SDP answer's audio stream lists telephone-event (RFC 4733).
fn offers_telephone_event(sdp: &[u8]) -> bool {
    let text = String::from_utf8_lossy(sdp);
    let mut in_audio = false;
    text.lines().any(|line| {
        if let Some(media) = line.strip_prefix("m=") {
            in_audio = media.starts_with("audio ");
        }
        in_audio
            && line.starts_with("a=rtpmap:")
            && line.to_ascii_lowercase().contains(" telephone-event/")
    })
}

/// How a call out ended, for the metric, the CDR and the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The agent's phone hung up (BYE) after the answer.
    PhoneHangup,
    /// The carrier hung up (BYE) after the answer.
    CarrierHangup,
    /// The agent cancelled before the answer.
    Cancelled,
    /// No carrier connected the call; the phone got this status.
    Failed(u16),
    /// The phone never acknowledged the answer, or media failed.
    Broken,
}

impl Ending {
    fn metric(self, answered: bool) -> &'static str {
        match self {
            _ if answered => "answered",
            Ending::Cancelled => "cancelled",
            _ => "failed",
        }
    }
}

impl Switch {
    /// Whether an INVITE is an agent dialling out: its From names an agent's SIP user and
    /// the number is not one of our DIDs (those are inbound calls, whoever places them).
    pub(super) fn is_call_out(&self, request: &Request, dialled: &str) -> bool {
        let from_agent = header_value(&request.headers, "From")
            .map(sip::headers::split_name_addr)
            .and_then(|(uri, _)| sip::headers::uri_user(uri))
            .is_some_and(|user| self.agents_by_user.contains_key(user));
        from_agent && !self.config.numbers.iter().any(|n| n.did == dialled)
    }

    /// An agent's phone dials `dialled`.
    pub(super) fn on_outbound_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
        dialled: &str,
    ) {
        let user = match self.authenticate(now, &key, &request, true) {
            AuthOutcome::User(user) => user,
            AuthOutcome::Challenged | AuthOutcome::Refused => return,
        };
        let Some(agent) = self.agents_by_user.get(&user).map(|a| a.id.clone()) else {
            self.reply_error(now, &key, &request, 403, "not an agent");
            return;
        };
        let allow_list = self
            .config
            .agents
            .iter()
            .find(|a| a.id == agent.as_str())
            .map(|a| a.outbound.clone())
            .unwrap_or_default();
        if !route::is_dialable(dialled) {
            self.outbound_refused(now, &key, &request, 404, "not a dialable number");
            return;
        }
        if !route::allowed(&allow_list, dialled) {
            self.security_event(
                now,
                SecurityEventKind::OutboundRefused,
                &request,
                source,
                "not-on-allow-list",
            );
            let reason = format!("agent {agent} may not dial {dialled}");
            self.outbound_refused(now, &key, &request, 403, &reason);
            return;
        }
        let Some(route) = route::find(&self.config.routes, dialled).cloned() else {
            let reason = format!("no route for {dialled}");
            self.outbound_refused(now, &key, &request, 404, &reason);
            return;
        };
        let day = self.unix_now(now) / 86_400;
        let limits = &self.config.outbound;
        let over = if self.outbound.len() >= limits.max_concurrent {
            Some(("global-limit", "calls out at their limit: try again later"))
        } else if self.outbound.of_agent(&agent) >= limits.max_per_agent {
            Some(("agent-limit", "agent has as many calls out as allowed"))
        } else if limits
            .daily_limit_per_agent
            .is_some_and(|limit| self.outbound.started_on(&agent, day) >= limit)
        {
            Some(("daily-limit", "agent reached the daily limit of calls out"))
        } else {
            None
        };
        if let Some((token, reason)) = over {
            self.security_event(
                now,
                SecurityEventKind::OutboundRefused,
                &request,
                source,
                token,
            );
            self.metrics
                .outbound_calls
                .with_label_values(&["limit"])
                .inc();
            self.reply_error(now, &key, &request, 403, reason);
            return;
        }
        if request.body.is_empty() {
            self.reply_error(
                now,
                &key,
                &request,
                488,
                "a call out needs an SDP offer in the INVITE",
            );
            return;
        }
        let media = match self.media.anchor_passthrough(&request.body, None) {
            Ok(media) => media,
            Err(error) => {
                self.reply_error(now, &key, &request, error.sip_status(), &error.to_string());
                return;
            }
        };
        let local_tag = self.ids.tag();
        let dialog = match Dialog::new_uas(&request, &local_tag, source) {
            Ok(dialog) => dialog,
            Err(error) => {
                self.media.finish(0, media);
                self.reply_error(now, &key, &request, 400, &error.to_string());
                return;
            }
        };
        self.send_response(now, &key, response_to(&request, 100, None));
        let id = self.next_call;
        self.next_call += 1;
        let restore = self.hold_agent_for_call_out(now, &agent);
        let caller_id = route.caller_id.clone().unwrap_or_else(|| user.clone());
        tracing::info!(call = id, agent = %agent, dialled, trunks = ?route.trunks, "call out");
        self.outbound.count_start(&agent, day);
        self.outbound.insert(OutboundCall {
            id,
            agent,
            dialled: dialled.to_owned(),
            sent: route::normalise(&route, dialled),
            caller_id,
            trunks: route.trunks.clone(),
            next_trunk: 0,
            attempts: 0,
            phone: PhoneLeg {
                invite: request,
                server_key: key,
                local_tag,
                dialog,
                finalized: false,
                ringing_sent: false,
            },
            carrier: None,
            failed_legs: Vec::new(),
            last_trunk: None,
            media: Some(media),
            arrived: now,
            answered: None,
            carrier_events: false,
            restore,
        });
        self.try_next_trunk(now, id, 503);
    }

    /// A refusal before any trunk is tried: counted, answered with a Warning.
    fn outbound_refused(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        code: u16,
        reason: &str,
    ) {
        let result = if code == 403 {
            "forbidden"
        } else {
            "unroutable"
        };
        self.metrics
            .outbound_calls
            .with_label_values(&[result])
            .inc();
        self.reply_error(now, key, request, code, reason);
    }

    /// The agent is not offered inbound calls while on the call out: the ACD sets them
    /// not-ready (`outbound-call`), and the state to go back to is remembered.
    fn hold_agent_for_call_out(&mut self, now: Instant, agent: &acd::AgentId) -> Restore {
        let restore = match self.acd.agent(agent).map(|a| a.state) {
            Some(acd::AgentState::Ready) => Restore::Ready,
            Some(acd::AgentState::NotReady { reason }) if &*reason != acd::OUTBOUND_REASON => {
                Restore::NotReady(reason.to_string())
            }
            _ => return Restore::Nothing,
        };
        match self.acd.set_not_ready(now, agent, acd::OUTBOUND_REASON) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(agent = %agent, %error, "not-ready for a call out"),
        }
        restore
    }

    /// Sends the INVITE to the next trunk of the route, or fails the call with `status`
    /// when none is left.
    fn try_next_trunk(&mut self, now: Instant, id: CallNumber, status: u16) {
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let Some(trunk) = call.trunks.get(call.next_trunk).cloned() else {
            let reason = if call.attempts == 0 {
                "no trunk of the route could be tried".to_owned()
            } else {
                format!("every trunk of the route failed (last: {status})")
            };
            self.fail_call_out(now, id, status, &reason);
            return;
        };
        call.next_trunk += 1;
        let gateway = self
            .config
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .and_then(|t| t.gateway.as_ref())
            .map(|g| (g.address, g.transport));
        let Some((address, transport)) = gateway else {
            // The loader lets only trunks with a gateway into a route.
            self.try_next_trunk(now, id, status);
            return;
        };
        let peer = gateway_peer(address, transport);
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let local_host = self.local_names.host_port(peer.transport).to_owned();
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let uri_text = format!("sip:{}@{address}", call.sent);
        let Ok(uri) = rsip::Uri::try_from(uri_text.as_str()) else {
            self.fail_call_out(now, id, 404, "the normalised number is not a valid SIP URI");
            return;
        };
        let call_id = format!("{}-out@switchboard", self.ids.tag());
        let mut headers = Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        let caller = format!("<sip:{}@{local_host}>", call.caller_id);
        headers.push(Header::From(rsip::headers::From::new(format!(
            "{caller};tag={}",
            self.ids.tag()
        ))));
        headers.push(Header::To(rsip::headers::To::new(format!("<{uri_text}>"))));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id.clone())));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        push_header(&mut headers, "Allow", super::ALLOW);
        push_header(&mut headers, "P-Asserted-Identity", caller);
        let mut invite = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        if let Some(media) = &call.media {
            // The carrier is offered Switchboard's ports with the phone's codecs.
            push_header(&mut invite.headers, "Content-Type", "application/sdp");
            invite.body = media.agent_offer.clone();
        }
        call.attempts += 1;
        let attempt = call.attempts;
        call.last_trunk = Some(trunk.clone());
        tracing::info!(call = id, %trunk, %address, attempt, "call out sent to carrier");
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::Outbound { call: id, attempt },
        );
        self.outbound.route_carrier_leg(call_id, id);
        if let Some(call) = self.outbound.get_mut(id) {
            call.carrier = Some(CarrierLeg {
                trunk,
                attempt,
                uac: UacLeg::calling(invite, client_key, peer, now),
                authenticated: false,
            });
        }
    }

    /// A 1xx from the carrier: the phone hears ringing (its own ringback: early media would
    /// carry the carrier's address, and the session starts only at the answer).
    pub(super) fn on_carrier_provisional(
        &mut self,
        now: Instant,
        id: CallNumber,
        attempt: u32,
        response: &Response,
    ) {
        let code = response.status_code.code();
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let Some(leg) = call.carrier.as_mut().filter(|c| c.attempt == attempt) else {
            return;
        };
        if code == 100 {
            return;
        }
        leg.uac.alerting();
        if call.phone.ringing_sent || call.phone.finalized {
            return;
        }
        call.phone.ringing_sent = true;
        let mut ringing = response_to(&call.phone.invite, 180, Some(&call.phone.local_tag));
        let transport = call.phone.dialog.peer.transport;
        let key = call.phone.server_key.clone();
        push_header(&mut ringing.headers, "Contact", self.contact(transport));
        self.send_response(now, &key, ringing);
    }

    /// The carrier's final response to the INVITE of `attempt`.
    pub(super) fn on_carrier_final(
        &mut self,
        now: Instant,
        id: CallNumber,
        attempt: u32,
        response: Response,
        source: Peer,
    ) {
        let code = response.status_code.code();
        let current = self
            .outbound
            .get(id)
            .and_then(|c| c.carrier.as_ref())
            .is_some_and(|c| c.attempt == attempt);
        if !current {
            if (200..300).contains(&code) {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        }
        if (200..300).contains(&code) {
            self.carrier_answered(now, id, response, source);
            return;
        }
        if matches!(code, 401 | 407) && self.answer_carrier_challenge(now, id, &response) {
            return;
        }
        tracing::info!(call = id, code, "carrier refused the call out");
        self.close_carrier_leg(now, id, Some(code));
        if FINAL_CARRIER_STATUSES.contains(&code) || code >= 600 {
            self.fail_call_out(now, id, code, "refused by the carrier");
        } else {
            self.try_next_trunk(now, id, code);
        }
    }

    /// The carrier's INVITE went unanswered, or its connection could not be opened: the next
    /// trunk.
    pub(in crate::switch) fn on_carrier_failure(
        &mut self,
        now: Instant,
        id: CallNumber,
        attempt: u32,
        failure: ClientFailure,
    ) {
        let current = self
            .outbound
            .get(id)
            .and_then(|c| c.carrier.as_ref())
            .is_some_and(|c| c.attempt == attempt);
        if current {
            let status = failure.status();
            tracing::info!(
                call = id,
                status,
                "carrier {} for the call out; trying the next trunk",
                failure.describe()
            );
            self.close_carrier_leg(now, id, Some(status));
            self.try_next_trunk(now, id, status);
        }
    }

    /// Resends the INVITE with the trunk's credentials. `false` when there are none, or the
    /// credentials were already refused once.
    fn answer_carrier_challenge(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: &Response,
    ) -> bool {
        let Some(call) = self.outbound.get(id) else {
            return false;
        };
        let Some(leg) = call.carrier.as_ref() else {
            return false;
        };
        if leg.authenticated {
            return false;
        }
        let peer = leg.uac.peer;
        let Some(invite) = self.answer_trunk_challenge(&leg.trunk, &leg.uac.invite, peer, response)
        else {
            return false;
        };
        let Some(call) = self.outbound.get_mut(id) else {
            return false;
        };
        call.attempts += 1;
        let attempt = call.attempts;
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::Outbound { call: id, attempt },
        );
        if let Some(leg) = self.outbound.get_mut(id).and_then(|c| c.carrier.as_mut()) {
            leg.uac.resent(invite, client_key);
            leg.attempt = attempt;
            leg.authenticated = true;
        }
        tracing::info!(call = id, "answered the carrier's digest challenge");
        true
    }

    /// The carrier answered: ACK, start the media session, answer the phone.
    fn carrier_answered(&mut self, now: Instant, id: CallNumber, response: Response, source: Peer) {
        let via = self.via(source);
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let Some(leg) = call.carrier.as_mut() else {
            return;
        };
        let ack = match leg.uac.answer(now, &response, source, &via) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(call = id, %error, "carrier 2xx unusable");
                return;
            }
        };
        call.answered = Some(now);
        call.carrier_events = offers_telephone_event(&response.body);
        let for_phone = match call.media.as_mut() {
            Some(media) => self
                .media
                .agent_answered_passthrough(now, id, media, &response.body),
            None => Ok(response.body.clone()),
        };
        self.send_stateless_request(ack, source);
        let for_phone = match for_phone {
            Ok(sdp) => sdp,
            Err(error) => {
                tracing::info!(call = id, %error, "carrier's SDP answer refused");
                self.fail_call_out(now, id, 488, "the carrier's answer does not fit the offer");
                return;
            }
        };
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        call.phone.finalized = true;
        let mut ok = response_to(&call.phone.invite, 200, Some(&call.phone.local_tag));
        let transport = call.phone.dialog.peer.transport;
        let key = call.phone.server_key.clone();
        push_header(&mut ok.headers, "Contact", self.contact(transport));
        push_header(&mut ok.headers, "Allow", super::ALLOW);
        push_header(&mut ok.headers, "Content-Type", "application/sdp");
        ok.body = for_phone;
        tracing::info!(call = id, "call out answered");
        self.send_response(now, &key, ok);
    }

    /// A 2xx after the carrier leg's answer, when it is a call out's.
    pub(super) fn late_2xx_of_call_out(&self, response: &Response) -> Option<Late2xx> {
        let id = call_id_of(&response.headers).and_then(|c| self.outbound.by_carrier_call_id(c))?;
        let leg = self.outbound.get(id)?.carrier.as_ref()?;
        Some(leg.uac.late_2xx(response))
    }

    /// The current carrier leg ended without connecting: keep it for the record.
    fn close_carrier_leg(&mut self, now: Instant, id: CallNumber, sip_cause: Option<u16>) {
        let wall_now = self.wall(now);
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let Some(leg) = call.carrier.take() else {
            return;
        };
        let started = leg.uac.started;
        let record = Leg {
            role: LegRole::Trunk,
            call_id: leg.call_id().to_owned(),
            peer: leg.uac.peer.to_string(),
            started: wall_now,
            answered: None,
            ended: wall_now,
            sip_cause,
            party: None,
            queue: None,
        };
        let started = self.wall(started);
        if let Some(call) = self.outbound.get_mut(id) {
            call.failed_legs.push(Leg { started, ..record });
        }
    }

    /// No carrier connected the call: the phone gets `status`.
    fn fail_call_out(&mut self, now: Instant, id: CallNumber, status: u16, reason: &str) {
        let Some(call) = self.outbound.get(id) else {
            return;
        };
        let mut held = Vec::new();
        if !call.phone.finalized {
            let mut response = response_to(&call.phone.invite, status, Some(&call.phone.local_tag));
            sip::message::add_warning(&mut response, super::AGENT_NAME, reason);
            held.push((call.phone.server_key.clone(), response));
        }
        self.finish_call_out(now, id, Ending::Failed(status), held);
    }

    /// Ends a call out on both legs, writes its record, puts the agent back. The responses
    /// in `held` go out once the record is durable.
    fn finish_call_out(
        &mut self,
        now: Instant,
        id: CallNumber,
        ending: Ending,
        held: Vec<(TransactionKey, Response)>,
    ) {
        let Some(mut call) = self.outbound.remove(id) else {
            return;
        };
        // The phone: hang up an answered one the carrier left.
        if call.answered.is_some() && ending != Ending::PhoneHangup {
            let dialog = &mut call.phone.dialog;
            let via = self.via(dialog.peer);
            let bye = dialog.request(Method::Bye, &via, None, None);
            self.send_request(now, bye, dialog.peer, ClientPurpose::Fire);
        }
        self.metrics
            .outbound_calls
            .with_label_values(&[ending.metric(call.answered.is_some())])
            .inc();
        tracing::info!(call = id, agent = %call.agent, ?ending, "call out ended");
        self.record_call_out(now, &call, ending, held);
        // The carrier leg: hang up an answered one (unless the carrier did), cancel a ringing one.
        if let Some(leg) = call.carrier.take() {
            if !(ending == Ending::CarrierHangup && leg.uac.is_answered()) {
                let ending = leg.uac.end(|peer| self.via(peer), None);
                self.end_uac_leg(now, ending);
            }
        }
        if let Some(media) = call.media.take() {
            self.media.finish(id, media);
        }
        let actions = match &call.restore {
            Restore::Ready => self.acd.set_ready(now, &call.agent),
            Restore::NotReady(reason) => self.acd.set_not_ready(now, &call.agent, reason),
            Restore::Nothing => Ok(Vec::new()),
        };
        match actions {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(call = id, %error, "agent state after a call out"),
        }
    }

    /// The call's record: the phone leg first, then every carrier leg.
    fn record_call_out(
        &mut self,
        now: Instant,
        call: &OutboundCall,
        ending: Ending,
        held: Vec<(TransactionKey, Response)>,
    ) {
        let sip_cause = match ending {
            Ending::Failed(status) => Some(status),
            _ => None,
        };
        let mut legs = vec![Leg {
            role: LegRole::Agent,
            call_id: call.phone.dialog.call_id.clone(),
            peer: call.phone.dialog.peer.to_string(),
            started: self.wall(call.arrived),
            answered: call.answered.map(|a| self.wall(a)),
            ended: self.wall(now),
            sip_cause,
            party: None,
            queue: None,
        }];
        legs.extend(call.failed_legs.iter().cloned());
        if let Some(leg) = &call.carrier {
            legs.push(Leg {
                role: LegRole::Trunk,
                call_id: leg.call_id().to_owned(),
                peer: leg.uac.peer.to_string(),
                started: self.wall(leg.uac.started),
                answered: leg.uac.answered_at().map(|a| self.wall(a)),
                ended: self.wall(now),
                sip_cause: None,
                party: None,
                queue: None,
            });
        }
        let answered = call.answered;
        let record = CallRecord {
            customer_name: None,
            preferred_agent: None,
            preferred_agent_taken: false,
            seq: 0,
            id: self.clock.record_id(call.id),
            trunk_call_id: call
                .carrier
                .as_ref()
                .map(|leg| leg.call_id().to_owned())
                .unwrap_or_default(),
            arrived: self.wall(call.arrived),
            ivr_ended: None,
            enqueued: None,
            offered: None,
            answered: answered.map(|a| self.wall(a)),
            ended: self.wall(now),
            caller: call.caller_id.clone(),
            did: call.dialled.clone(),
            ivr_path: Vec::new(),
            language: None,
            queue: None,
            agent: Some(call.agent.to_string()),
            priority: 0,
            label: None,
            wait_s: 0.0,
            ring_s: answered
                .unwrap_or(now)
                .saturating_duration_since(call.arrived)
                .as_secs_f64(),
            talk_s: answered.map_or(0.0, |a| now.saturating_duration_since(a).as_secs_f64()),
            hold_s: 0.0,
            wrap_up_s: 0.0,
            disposition: match ending {
                _ if answered.is_some() => Disposition::Answered,
                Ending::Cancelled => Disposition::Abandoned,
                _ => Disposition::Rejected,
            },
            hangup_side: match ending {
                // The carrier's side is the trunk side, as on inbound calls.
                Ending::CarrierHangup => HangupSide::Caller,
                Ending::PhoneHangup | Ending::Cancelled => HangupSide::Agent,
                Ending::Failed(_) | Ending::Broken => HangupSide::System,
            },
            sip_cause,
            transfers: Vec::new(),
            survey_score: None,
            recording: None,
            legs,
            supervisions: Vec::new(),
            conference: None,
            service_level_threshold_s: 0.0,
            direction: Direction::Outbound,
            outbound: Some(cdr::OutboundCall {
                dialled: call.dialled.clone(),
                sent: call.sent.clone(),
                caller_id: call.caller_id.clone(),
                trunk: call.last_trunk.clone(),
                attempts: call.attempts,
            }),
            callback: None,
        };
        if !held.is_empty() {
            self.held_responses.insert(call.id, held);
        }
        if self.media.is_running(call.id) {
            // Written when the media session reports its end (see `media_ended`).
            self.parked_cdrs.insert(call.id, record);
            self.timers.schedule(
                now + std::time::Duration::from_secs(5),
                super::SwitchTimer::FlushCdr { call: call.id },
            );
        } else {
            self.cdr_out.push_back((Record::Call(record), call.id));
        }
    }

    /// The phone cancelled its INVITE. `false` when it is not a call out.
    pub(super) fn outbound_cancelled(&mut self, now: Instant, invite_key: &TransactionKey) -> bool {
        let Some(id) = self.outbound.by_server_txn(invite_key) else {
            return false;
        };
        let Some(call) = self.outbound.get(id) else {
            return false;
        };
        if call.phone.finalized {
            return true;
        }
        tracing::info!(call = id, "agent cancelled the call out");
        let terminated = response_to(&call.phone.invite, 487, Some(&call.phone.local_tag));
        let key = call.phone.server_key.clone();
        self.finish_call_out(now, id, Ending::Cancelled, vec![(key, terminated)]);
        true
    }

    /// The phone never acknowledged the answer. `false` when it is not a call out.
    pub(super) fn outbound_ack_timeout(&mut self, now: Instant, key: &TransactionKey) -> bool {
        let Some(id) = self.outbound.by_server_txn(key) else {
            return false;
        };
        tracing::info!(
            call = id,
            "agent's phone never acknowledged the call out's answer"
        );
        self.finish_call_out(now, id, Ending::Broken, Vec::new());
        true
    }

    /// A request inside a call out's dialogs; handed back when it belongs to none.
    pub(super) fn on_outbound_in_dialog(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) -> Option<(TransactionKey, Request)> {
        let Some((id, phone_side)) = self.locate_call_out(&request) else {
            return Some((key, request));
        };
        let in_order = self.outbound.get_mut(id).is_some_and(|call| {
            let dialog = if phone_side {
                Some(&mut call.phone.dialog)
            } else {
                call.carrier.as_mut().and_then(|leg| leg.uac.dialog_mut())
            };
            dialog.is_some_and(|d| d.accept_remote_cseq(&request))
        });
        if !in_order {
            self.reply_error(now, &key, &request, 500, "CSeq out of order");
            return None;
        }
        match request.method {
            Method::Bye => {
                // As on inbound calls, the 200 waits for the record to be durable.
                let ok = response_to(&request, 200, None);
                let ending = if phone_side {
                    Ending::PhoneHangup
                } else {
                    Ending::CarrierHangup
                };
                self.finish_call_out(now, id, ending, vec![(key, ok)]);
            }
            Method::Invite | Method::Update => {
                self.answer_call_out_reoffer(now, id, phone_side, key, request)
            }
            Method::Info if phone_side && self.phone_key_to_carrier(id, &request) => {
                self.send_response(now, &key, response_to(&request, 200, None));
            }
            Method::Info => self.reply_error(
                now,
                &key,
                &request,
                415,
                "only key presses from the agent's phone are taken on calls out, and only when the carrier negotiated telephone-event",
            ),
            _ => self.reply_error(now, &key, &request, 405, "not allowed on a call out"),
        }
        None
    }

    /// A key press the phone sent as SIP INFO goes to the carrier as RFC 4733 (carriers do
    /// not take INFO). `false` when it is not a key press or the carrier cannot take events.
    fn phone_key_to_carrier(&mut self, id: CallNumber, request: &Request) -> bool {
        let ready = self
            .outbound
            .get(id)
            .is_some_and(|c| c.carrier_events && c.media.as_ref().is_some_and(|m| m.started));
        if !ready {
            return false;
        }
        let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
        let Ok(info) = media::dtmf::parse_info(content_type, &request.body) else {
            return false;
        };
        tracing::info!(call = id, digit = %info.digit.as_char(), "agent key press (SIP INFO) sent to the carrier as RFC 4733");
        self.media.command(
            id,
            media::MediaCommand::SendDtmf {
                leg: media::Leg::Agent,
                digit: info.digit,
                duration_ms: info.duration_ms.unwrap_or(KEY_PRESS_MS),
            },
        );
        true
    }

    /// Which call out and which side (`true` = the phone) a request belongs to.
    fn locate_call_out(&self, request: &Request) -> Option<(CallNumber, bool)> {
        let call_id = call_id_of(&request.headers)?;
        let our_tag = to_tag(&request.headers)?;
        if let Some(id) = self.outbound.by_phone_call_id(call_id) {
            let call = self.outbound.get(id)?;
            return (call.phone.local_tag == our_tag).then_some((id, true));
        }
        let id = self.outbound.by_carrier_call_id(call_id)?;
        let dialog = self.outbound.get(id)?.carrier.as_ref()?.uac.dialog()?;
        (dialog.local_tag == our_tag).then_some((id, false))
    }

    /// A re-INVITE/UPDATE on either leg is answered by Switchboard from its own ports (the
    /// other leg is not disturbed): hold, resume and session refreshes stay local.
    fn answer_call_out_reoffer(
        &mut self,
        now: Instant,
        id: CallNumber,
        phone_side: bool,
        key: TransactionKey,
        request: Request,
    ) {
        let leg = if phone_side {
            media::Leg::Trunk
        } else {
            media::Leg::Agent
        };
        let Some(call) = self.outbound.get_mut(id) else {
            return;
        };
        let Some(media) = call.media.as_mut() else {
            self.reply_error(now, &key, &request, 488, "the call has no anchored media");
            return;
        };
        let answer = if request.body.is_empty() {
            Ok(media
                .sdp_mut(leg)
                .last()
                .map(<[u8]>::to_vec)
                .unwrap_or_default())
        } else {
            self.media
                .answer_reoffer(media, leg, &request.body)
                .map(|(config, _, answer)| {
                    self.media
                        .command(id, media::MediaCommand::UpdateLeg { leg, config });
                    answer
                })
        };
        match answer {
            Ok(sdp) => {
                let transport = if phone_side {
                    call.phone.dialog.peer.transport
                } else {
                    sip::Transport::Udp
                };
                let mut ok = response_to(&request, 200, None);
                push_header(&mut ok.headers, "Contact", self.contact(transport));
                if !sdp.is_empty() {
                    push_header(&mut ok.headers, "Content-Type", "application/sdp");
                    ok.body = sdp;
                }
                self.send_response(now, &key, ok);
            }
            Err(error) => self.reply_error(now, &key, &request, 488, &error.to_string()),
        }
    }

    /// No RTP within the media timeout on a call out: both legs are hung up.
    pub(super) fn call_out_media_timeout(&mut self, now: Instant, id: CallNumber) {
        if self.outbound.get(id).is_some() {
            tracing::info!(
                call = id,
                "no RTP on the call out within the media timeout: hanging up"
            );
            self.metrics.media_timeouts.inc();
            self.finish_call_out(now, id, Ending::Broken, Vec::new());
        }
    }

    /// Shutdown: every call out ends now.
    pub(super) fn end_calls_out(&mut self, now: Instant) {
        for id in self.outbound.ids() {
            self.finish_call_out(now, id, Ending::Broken, Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn telephone_event_is_looked_for_in_the_audio_stream_only() {
        let audio = b"v=0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n";
        assert!(super::offers_telephone_event(audio));
        let plain = b"v=0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 5000 RTP/AVP 96\r\na=rtpmap:96 telephone-event/8000\r\n";
        assert!(!super::offers_telephone_event(plain));
    }
}
