//! The back-to-back user agent: a trunk INVITE answered as UAS, queued, offered to agents
//! one attempt at a time as UAC, then bridged; requests inside either dialog are relayed to
//! the other, and a hang-up on one side ends both.

use super::admission::{self, TrunkDecision};
use super::call::timers::CallTimer;
use super::call::{AgentLeg, Arrival, Call, CallInput, CallNumber, CallState, TrunkLeg};
use super::identity::CallerIdentity;
use super::refusal::Refusal;
use super::transport_failure::ClientFailure;
use super::uac_leg::UacLeg;
use super::{ClientPurpose, Switch};
use acd::{AgentId, OfferFailure};
use sip::dialog::{copy_body, Dialog};
use sip::headers::{call_id_of, cseq_of, header_value};
use sip::message::{push_header, response_to};
use sip::rsip::headers::untyped::UntypedHeader;
use sip::rsip::{self, Header, Headers, Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::sync::Arc;
use std::time::Instant;

/// A new call's media, and the SDP for the trunk's 200 when Switchboard answers it itself.
type AnchoredOffer = (Option<super::media_plane::CallMedia>, Option<Vec<u8>>);

/// Why a call ends; decides the trunk's final response and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// The caller sent BYE.
    CallerHangup,
    /// The caller sent CANCEL before an agent answered.
    CallerCancel,
    /// The agent sent BYE.
    AgentHangup,
    /// The queue's max wait passed.
    QueueTimeout,
    /// The queue refused the call (full).
    QueueFull(String),
    /// No agent that serves the queue is logged in.
    NoAgents,
    /// Shutdown drain time ran out.
    Shutdown,
    /// The caller never ACKed our 2xx.
    AckTimeout,
    /// No RTP arrived on a leg for the configured time.
    MediaTimeout,
    /// The call's media ports could not be opened.
    MediaFailed,
    /// The trunk's ACK brought no usable answer to Switchboard's SDP offer.
    BadAnswer,
    /// The IVR ended the call (a hang-up step, or closed hours).
    IvrHangup,
    /// The caller asked to be called back and heard the confirmation.
    CallbackRequested,
    /// The caller finished a voicemail message (or reached its maximum length).
    Voicemail,
    /// The trunk's session timer ran out without a refresh, or a refresh found the dialog gone.
    SessionExpired,
}

impl EndCause {
    /// The final response the trunk gets when its INVITE was never answered.
    pub(super) fn trunk_status(&self) -> (u16, &'static str) {
        match self {
            EndCause::CallerCancel | EndCause::CallerHangup => (487, "call cancelled by caller"),
            EndCause::QueueTimeout => (480, "no agent answered within the queue's maximum wait"),
            EndCause::QueueFull(_) => (480, "queue is full"),
            EndCause::NoAgents => (480, "no agent is logged in for this queue"),
            EndCause::Shutdown => (503, "server shutting down"),
            EndCause::AckTimeout | EndCause::AgentHangup => (480, "agent unavailable"),
            EndCause::MediaTimeout | EndCause::SessionExpired => (408, "no media received"),
            EndCause::MediaFailed => (503, "media ports could not be opened"),
            EndCause::BadAnswer => (488, "no usable SDP answer"),
            EndCause::IvrHangup | EndCause::CallbackRequested | EndCause::Voicemail => {
                (480, "call ended by the IVR")
            }
        }
    }

    /// Switchboard, not a person, ended the call (counted in `calls_rejected` when no agent
    /// had answered).
    pub(super) fn is_refusal(&self) -> bool {
        matches!(
            self,
            EndCause::QueueTimeout
                | EndCause::QueueFull(_)
                | EndCause::NoAgents
                | EndCause::Shutdown
                | EndCause::AckTimeout
                | EndCause::MediaTimeout
                | EndCause::MediaFailed
                | EndCause::BadAnswer
        )
    }

    /// The prompt an answered caller hears before Switchboard ends the call for this cause.
    pub(super) fn farewell_prompt(&self) -> Option<&'static str> {
        match self {
            EndCause::NoAgents => Some("closed"),
            EndCause::QueueTimeout | EndCause::QueueFull(_) => Some("goodbye"),
            _ => None,
        }
    }

    /// Why Switchboard hangs up, for the far end (RFC 3326), when the reason is ours.
    pub(super) fn reason(&self) -> Option<&'static str> {
        match self {
            EndCause::MediaTimeout => Some("SIP;cause=408;text=\"media-timeout\""),
            EndCause::SessionExpired => Some("SIP;cause=408;text=\"session-expired\""),
            EndCause::Shutdown => Some("SIP;cause=503;text=\"shutdown\""),
            _ => None,
        }
    }

    /// Tells the far end why Switchboard hangs up (RFC 3326), when the reason is ours.
    pub(super) fn add_reason(&self, bye: &mut Request) {
        if let Some(reason) = self.reason() {
            push_header(&mut bye.headers, "Reason", reason);
        }
    }

    /// The name of the cause in logs, metrics and CDRs.
    pub fn label(&self) -> &'static str {
        match self {
            EndCause::CallerHangup => "caller-hangup",
            EndCause::CallerCancel => "caller-cancel",
            EndCause::AgentHangup => "agent-hangup",
            EndCause::QueueTimeout => "queue-timeout",
            EndCause::QueueFull(_) => "queue-full",
            EndCause::NoAgents => "no-agents",
            EndCause::Shutdown => "shutdown",
            EndCause::AckTimeout => "ack-timeout",
            EndCause::MediaTimeout => "media-timeout",
            EndCause::MediaFailed => "media-failed",
            EndCause::BadAnswer => "bad-sdp-answer",
            EndCause::IvrHangup => "ivr-hangup",
            EndCause::CallbackRequested => "callback-requested",
            EndCause::Voicemail => "voicemail",
            EndCause::SessionExpired => "session-expired",
        }
    }
}

impl Switch {
    pub(super) fn on_invite(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
    ) {
        if self.draining {
            self.reply_error(now, &key, &request, 503, super::DRAINING_REASON);
            return;
        }
        if self.queue_delay >= super::OVERLOAD_QUEUE_DELAY {
            self.reject_metric("overload");
            self.reply_error(now, &key, &request, 503, "overloaded: try again later");
            return;
        }
        if self.calls.len() >= self.config.sip.max_calls {
            self.reject_metric("capacity");
            self.reply_error(now, &key, &request, 503, "call capacity reached");
            return;
        }
        if let Some(dialled) = admission::dialled_number(&request).filter(|d| d.starts_with('*')) {
            match super::supervision::parse_monitor_code(&dialled) {
                Some((mode, agent)) => {
                    self.on_monitor_invite(now, key, request, source, mode, agent)
                }
                None => self.on_feature_code(now, key, request, source, &dialled),
            }
            return;
        }
        if let Some(dialled) = admission::dialled_number(&request) {
            if self.is_consult_dial(&request, &dialled) {
                self.on_consult_invite(now, key, request, source, &dialled);
                return;
            }
            if self.is_call_out(&request, &dialled) {
                self.on_outbound_invite(now, key, request, source, &dialled);
                return;
            }
        }
        let Some(trunk) = self.admit_trunk(now, &key, &request, source) else {
            return;
        };
        if !self.trunk_certificate_admits(now, &key, &request, source, &trunk) {
            return;
        }
        if let Some(refusal) = self.session_timer_refusal(&request) {
            self.refuse(now, &key, &request, &refusal);
            return;
        }
        let Some(did) = admission::dialled_number(&request) else {
            self.refuse(now, &key, &request, &Refusal::NoNumber);
            return;
        };
        // The configuration is shared (`Arc`): its number entry is borrowed, not copied.
        let config = Arc::clone(&self.config);
        let Some(number) = self.index.number(&config, &did, &trunk) else {
            self.refuse(now, &key, &request, &Refusal::UnknownNumber(did));
            return;
        };
        let local_tag = self.ids.tag();
        let dialog = match Dialog::new_uas(&request, &local_tag, source) {
            Ok(d) => d,
            Err(error) => {
                self.refuse(now, &key, &request, &Refusal::Malformed(error.to_string()));
                return;
            }
        };
        // A number's calls are answered here when an IVR takes them or their queue answers on
        // queueing (music on hold); otherwise the trunk hears ringback until an agent answers.
        let answer_here = match &number.target {
            crate::config::NumberTarget::Ivr(_) => true,
            crate::config::NumberTarget::Queue(queue) => {
                self.index
                    .queue(&self.config, queue)
                    .is_some_and(|q| q.answer == crate::config::QueueAnswer::OnQueue)
                    || self.emergency_answers(&did)
            }
        };
        let security = self.trunk_security(&trunk, source.transport);
        let anchored = self.anchor_trunk_offer(&request, answer_here, security);
        let (media, local_answer) = match anchored {
            Ok(anchored) => anchored,
            Err(refusal) => {
                self.refuse(now, &key, &request, &refusal);
                return;
            }
        };
        self.send_response(now, &key, response_to(&request, 100, None));

        let trusted = self
            .config
            .trunks
            .iter()
            .any(|t| t.name == trunk && t.trust_identity);
        let identity = CallerIdentity::of(&request.headers, trusted);
        let caller = identity.number.clone();
        let header = number
            .priority_header
            .as_deref()
            .and_then(|name| header_value(&request.headers, name));
        let class = super::routing::classify(number, &caller, header);
        let priority = class.priority;
        let id = self.next_call;
        self.next_call += 1;
        let arrival = Arrival {
            id,
            trunk,
            did: did.clone(),
            identity,
            queue: number.queue().unwrap_or_default().to_owned(),
            priority,
            label: class.label,
            language: number.language.clone(),
        };
        let trunk_leg = TrunkLeg {
            invite: request,
            server_key: key.clone(),
            local_tag,
            dialog,
            finalized: false,
            ringing_sent: false,
            session_timer: None,
            refresh_in_flight: None,
            reinvite_pending: false,
        };
        let call = Call::new(arrival, trunk_leg, media, now, self.clock);
        tracing::info!(call = id, %did, %caller, target = ?number.target, priority, "call arrived");
        self.calls.insert(call);
        self.ask_about_caller(id);
        if let Some(sdp) = local_answer {
            self.answer_trunk_here(now, id, sdp);
        }
        let awaiting_answer = self
            .calls
            .get(&id)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.awaiting_answer);
        if awaiting_answer {
            // Nothing can be played before the trunk's answer (in its ACK) fixes the codec.
            if let Some(call) = self.calls.get_mut(&id) {
                call.pending_target = Some(number.target.clone());
            }
            return;
        }
        self.route(now, id, &number.target);
    }

    /// Sends a new call where its number says: into its IVR or its queue.
    fn route(&mut self, now: Instant, id: CallNumber, target: &crate::config::NumberTarget) {
        match target {
            crate::config::NumberTarget::Ivr(ivr) => self.start_ivr(now, id, ivr),
            crate::config::NumberTarget::Queue(_) => {
                if !self.play_emergency_before_queue(id) {
                    self.enqueue_call(now, id);
                }
            }
        }
    }

    /// The trunk's ACK for a call Switchboard answered with its own offer (the INVITE had no
    /// SDP): the ACK carries the answer. With it the session starts and the call goes on to
    /// its IVR or queue; without a usable one the call cannot have audio and is hung up.
    pub(super) fn on_trunk_ack(&mut self, now: Instant, request: &Request) {
        let Some(id) = call_id_of(&request.headers).and_then(|c| self.calls.by_trunk_call_id(c))
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(media) = call.media.as_mut().filter(|m| m.awaiting_answer) else {
            return;
        };
        let delayed = media.delayed_offer;
        let answered = if body_mime(request).eq_ignore_ascii_case("application/sdp")
            && !request.body.is_empty()
        {
            if delayed {
                self.media
                    .delayed_offer_answered(id, media, &request.body)
                    .map_err(|error| error.to_string())
            } else {
                self.media
                    .offer_answered(media, &request.body)
                    .map_err(|error| error.to_string())
            }
        } else {
            Err("the ACK carries no SDP answer to Switchboard's offer".to_owned())
        };
        if let Err(reason) = answered {
            tracing::info!(call = id, %reason, "trunk's answer unusable: hanging up");
            self.end_call(now, id, EndCause::BadAnswer);
            return;
        }
        if delayed {
            // An agent's call: the session started with both legs.
            return;
        }
        self.media.start_answered(id, media);
        let target = call.pending_target.take();
        if let Some(target) = target {
            self.route(now, id, &target);
        }
    }

    /// Answers the trunk leg with Switchboard's own SDP and starts the call's media session
    /// with only that leg, so the caller can hear prompts or music straight away.
    fn answer_trunk_here(&mut self, now: Instant, id: CallNumber, sdp: Vec<u8>) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(media) = call.media.as_mut() else {
            return;
        };
        if !media.awaiting_answer {
            self.media.start_answered(id, media);
        }
        call.trunk_leg.finalized = true;
        let peer = call.trunk_leg.dialog.peer;
        let key = call.trunk_leg.server_key.clone();
        let mut answer = response_to(&call.trunk_leg.invite, 200, Some(&call.trunk_leg.local_tag));
        push_header(&mut answer.headers, "Content-Type", "application/sdp");
        answer.body = sdp;
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let negotiated = self.session_timer_requested(&call.trunk_leg.invite);
        push_header(&mut answer.headers, "Contact", self.contact_for(peer));
        push_header(&mut answer.headers, "Allow", super::ALLOW);
        self.session_timer_answer(now, id, negotiated, &mut answer);
        self.send_response(now, &key, answer);
    }

    /// Puts a call in its queue (`call.queue`): the ACD offers it to an agent at once when one
    /// is ready; otherwise the caller hears ringback, or music if the call is answered.
    pub(super) fn enqueue_call(&mut self, now: Instant, id: CallNumber) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let (queue, priority) = (call.queue.clone(), call.priority);
        self.metrics
            .calls_offered
            .with_label_values(&[queue.as_str(), call.trunk.as_str()])
            .inc();
        if !self.queue_has_logged_in_agent(&queue) {
            self.end_call(now, id, EndCause::NoAgents);
            return;
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.state = CallState::Queued;
        }
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(queue.as_str()),
            priority,
            preferred_agent: self.preferred_agent_for(now, id),
            waiting_since: None,
            preferred_wait: None,
        };
        match self.acd.enqueue(now, request) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::warn!(call = id, %error, "enqueue failed");
                self.end_call(now, id, EndCause::QueueFull(error.to_string()));
                return;
            }
        }
        // Still waiting: never leave the caller in silence.
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.state.is_connected() {
            return;
        }
        if call.trunk_leg.finalized {
            self.start_waiting_audio(now, id);
        } else if !call.trunk_leg.ringing_sent {
            self.ring_trunk(now, id, None);
        }
    }

    /// Anchors the media of a new trunk call. `answer_here`: Switchboard answers the trunk
    /// itself, and the SDP answer for its 200 comes back too. `Ok((None, None))` when the
    /// INVITE has no SDP offer (the phones then negotiate end to end); `Err` when the INVITE
    /// must be refused.
    fn anchor_trunk_offer(
        &mut self,
        request: &Request,
        answer_here: bool,
        security: super::sdes_legs::LegSecurity,
    ) -> Result<AnchoredOffer, Refusal> {
        if request.body.is_empty() {
            super::sdes_legs::accept_missing_offer(security)
                .map_err(Refusal::UnacceptableSecurity)?;
            // A delayed offer: Switchboard offers in its 200 when it answers itself; a call
            // that rings agents lets the phones negotiate end to end.
            if !answer_here {
                return Ok((None, None));
            }
            return self
                .media
                .anchor_offerless()
                .map(|(media, offer)| (Some(media), Some(offer)))
                .map_err(Refusal::Media);
        }
        let mime = body_mime(request);
        if !mime.eq_ignore_ascii_case("application/sdp") {
            return Err(Refusal::UnsupportedBody(mime.to_owned()));
        }
        // SRTP is checked and stripped first: anchoring negotiates plain RTP.
        let (offer, sdes) = super::sdes_legs::accept_offer(&request.body, security)
            .map_err(Refusal::UnacceptableSecurity)?;
        let anchored = if answer_here {
            self.media
                .anchor_answered(&offer, sdes)
                .map(|(media, answer)| (Some(media), Some(answer)))
        } else {
            self.media
                .anchor_passthrough(&offer, sdes)
                .map(|media| (Some(media), None))
        };
        anchored.map_err(Refusal::Media)
    }

    /// The SRTP settings of a call from `trunk` signalled over `transport`.
    fn trunk_security(
        &self,
        trunk: &str,
        transport: sip::Transport,
    ) -> super::sdes_legs::LegSecurity {
        let mode = self
            .config
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .map_or(Default::default(), |t| t.srtp);
        super::sdes_legs::LegSecurity::new(
            mode,
            transport,
            self.config.media.allow_sdes_without_tls,
        )
    }

    /// Decides which trunk an INVITE comes from, answering 407/403 itself when it cannot.
    fn admit_trunk(
        &mut self,
        now: Instant,
        key: &TransactionKey,
        request: &Request,
        source: Peer,
    ) -> Option<String> {
        match admission::trunk_for(&self.config, source) {
            TrunkDecision::ByAddress(name) => Some(name),
            TrunkDecision::Forbidden => {
                self.reject_metric("forbidden-source");
                self.reply_error(
                    now,
                    key,
                    request,
                    403,
                    "source address is not allowed by any trunk",
                );
                None
            }
            TrunkDecision::NeedsCredentials => {
                let header =
                    header_value(&request.headers, "Proxy-Authorization").map(str::to_string);
                let Some(credentials) = header else {
                    self.challenge(now, key, request, true, false);
                    return None;
                };
                let config = self.config.clone();
                let realm = config.sip.realm.clone();
                let unix = self.unix_now(now);
                let verdict = self
                    .nonces
                    .verify(unix, "INVITE", &credentials, &realm, |user| {
                        admission::trunk_by_username(&config, user)
                            .and_then(|t| t.credentials.as_ref())
                            .map(|c| super::registration::digest_secret(&c.secret))
                    });
                match verdict {
                    sip::digest::Verdict::Authorized { username, .. } => {
                        self.credentials_accepted();
                        admission::trunk_by_username(&config, &username).map(|t| t.name.clone())
                    }
                    sip::digest::Verdict::Stale => {
                        self.challenge(now, key, request, true, true);
                        None
                    }
                    sip::digest::Verdict::Rejected(reason) => {
                        self.reject_metric("trunk-auth-failed");
                        self.refuse_credentials(now, key, request, &reason);
                        None
                    }
                }
            }
        }
    }

    pub(super) fn reject_metric(&self, reason: &str) {
        self.metrics
            .calls_rejected
            .with_label_values(&[reason])
            .inc();
    }

    /// Whether any agent able to serve `queue` is logged in (registered).
    pub(super) fn queue_has_logged_in_agent(&self, queue: &str) -> bool {
        self.acd
            .queue_agent_counts(&acd::QueueId::from(queue))
            .is_some_and(|counts| counts.logged_in > 0)
    }

    /// Sends 180 (or a relayed 180/183 with its body) to the trunk.
    pub(super) fn ring_trunk(&mut self, now: Instant, id: CallNumber, relayed: Option<&Response>) {
        let Some(transport) = self
            .calls
            .get(&id)
            .map(|c| c.trunk_leg.dialog.peer.transport)
        else {
            return;
        };
        let contact = self.contact(transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.trunk_leg.finalized {
            return;
        }
        let code = relayed.map_or(180, |r| r.status_code.code());
        let mut response = response_to(
            &call.trunk_leg.invite,
            code,
            Some(&call.trunk_leg.local_tag),
        );
        if let Some(r) = relayed {
            if !r.body.is_empty() {
                copy_body(
                    &r.headers,
                    &r.body,
                    &mut response.headers,
                    &mut response.body,
                );
            }
        }
        push_header(&mut response.headers, "Contact", contact);
        call.trunk_leg.ringing_sent = true;
        let key = call.trunk_leg.server_key.clone();
        self.send_response(now, &key, response);
    }

    fn contact_for(&self, peer: Peer) -> String {
        self.contact(peer.transport)
    }

    /// The ACD offers `call` to `agent`: ring the agent's registered phone.
    pub(super) fn offer(
        &mut self,
        now: Instant,
        id: CallNumber,
        agent: AgentId,
    ) -> Vec<acd::Action> {
        let Some(entry) = self.agents_by_id.get(&agent).cloned() else {
            return self.offer_not_placed(now, id, &agent, OfferFailure::Unreachable);
        };
        let Some(binding) = self
            .registrar
            .bindings(now, &entry.sip_user)
            .into_iter()
            .next()
        else {
            tracing::info!(call = id, agent = %agent, "offered agent has no registered phone");
            return self.offer_not_placed(now, id, &agent, OfferFailure::Unreachable);
        };
        let Some(uri) = binding.contact_uri.clone() else {
            return self.offer_not_placed(now, id, &agent, OfferFailure::Unreachable);
        };
        let peer = binding.source;
        let sips_call = self
            .calls
            .get(&id)
            .is_some_and(|call| super::sips::requires_tls(&call.trunk_leg.invite));
        if sips_call && !super::sips::is_secure(peer.transport) {
            tracing::info!(call = id, agent = %agent, %peer, "sips: call not offered to a phone registered without TLS");
            return self.offer_not_placed(now, id, &agent, OfferFailure::Incompatible);
        }
        let security = super::sdes_legs::LegSecurity::new(
            entry.srtp,
            peer.transport,
            self.config.media.allow_sdes_without_tls,
        );
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return self.acd.abandon(now, acd::CallId(id)).unwrap_or_default();
        };
        let a = &call.trunk_leg.invite;
        let agent_host = sip::headers::uri_host_port(&binding.contact).unwrap_or("invalid");
        let call_id = format!("{}-{}@switchboard", self.ids.tag(), call.attempts + 1);

        let mut headers = Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new(
            sip::message::max_forwards(a).saturating_sub(1).to_string(),
        )));
        // RFC 3327: the proxies the phone registered through stay in the path. The INVITE
        // still goes to where the REGISTER came from: the first of them.
        for hop in &binding.path {
            push_header(&mut headers, "Route", hop.clone());
        }
        let from = format!("{};tag={}", call.identity.from_for_agent, self.ids.tag());
        headers.push(Header::From(rsip::headers::From::new(from)));
        headers.push(Header::To(rsip::headers::To::new(format!(
            "<sip:{}@{agent_host}>",
            entry.sip_user
        ))));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id.clone())));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        push_header(&mut headers, "Allow", super::ALLOW);
        // Screen-pop data for the agent's phone or CTI client.
        push_header(&mut headers, "X-Switchboard-Call", id.to_string());
        push_header(&mut headers, "X-Switchboard-Queue", call.queue.clone());
        push_header(&mut headers, "X-Switchboard-DID", call.did.clone());
        if let Some(label) = &call.label {
            push_header(&mut headers, "X-Switchboard-Label", label.clone());
        }
        if let Some(name) = &call.customer_name {
            push_header(&mut headers, "X-Switchboard-Customer", name.clone());
        }
        for asserted in &call.identity.asserted {
            push_header(&mut headers, "P-Asserted-Identity", asserted.clone());
        }
        for diversion in &call.identity.diversion {
            push_header(&mut headers, "Diversion", diversion.clone());
        }
        let mut invite = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        // A trunk INVITE without SDP rings agents end to end, unless this agent's leg is SRTP:
        // its keys are Switchboard's to offer, so Switchboard offers its own SDP (and the
        // trunk its own in the 200).
        if call.media.is_none() && a.body.is_empty() && !matches!(security.offers_srtp(), Ok(false))
        {
            match self.media.anchor_delayed_offer() {
                Ok(media) => call.media = Some(media),
                Err(error) => {
                    tracing::warn!(call = id, %error, "no media for a delayed-offer call; the phones negotiate end to end")
                }
            }
        }
        match &mut call.media {
            // The agent is offered Switchboard's address, never the trunk's.
            Some(media) => match self
                .media
                .agent_offer_to(now, id, media, security, peer.transport)
            {
                Ok(offer) => {
                    push_header(&mut invite.headers, "Content-Type", "application/sdp");
                    invite.body = offer;
                }
                Err(reason) => {
                    tracing::warn!(call = id, agent = %agent, reason, "agent not offered the call");
                    return self.offer_not_placed(now, id, &agent, OfferFailure::Unreachable);
                }
            },
            None => copy_body(&a.headers, &a.body, &mut invite.headers, &mut invite.body),
        }

        call.attempts += 1;
        let attempt = call.attempts;
        call.state = CallState::Offering;
        call.first_offered.get_or_insert(now);
        call.last_offered = Some(now);
        call.last_agent = Some(agent.clone());
        tracing::info!(call = id, agent = %agent, attempt, peer = %peer, "offering call to agent");
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::AgentInvite { call: id, attempt },
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.agent_leg = Some(AgentLeg {
                agent,
                attempt,
                uac: UacLeg::calling(invite, client_key, peer, now),
                accepts_info: false,
            });
        }
        self.calls.route_agent_leg(call_id, id);
        self.set_call_timer(id, CallTimer::Ring, now + self.config.sip.ring_timeout);
        Vec::new()
    }

    /// The offer to `agent` could not even be placed (no phone registered, none fit for the
    /// call): the call stays queued and the ACD frees the agent.
    fn offer_not_placed(
        &mut self,
        now: Instant,
        id: CallNumber,
        agent: &AgentId,
        why: OfferFailure,
    ) -> Vec<acd::Action> {
        if let Some(call) = self.calls.get_mut(&id) {
            call.state = CallState::Queued;
        }
        self.release_offer(now, id, agent, why)
    }

    /// The connection an agent's phone was ringing on closed (a WebSocket phone's only way in):
    /// the offer fails as unreachable now rather than at the ring timeout, so the call goes to
    /// the next agent at once. Calls already answered are left to their media timeout or BYE.
    pub(super) fn ringing_flow_lost(&mut self, now: Instant, flow: Peer) {
        let ringing: Vec<CallNumber> = self
            .calls
            .values()
            .filter(|call| {
                call.agent_leg
                    .as_ref()
                    .is_some_and(|leg| leg.uac.peer == flow && !leg.is_answered())
            })
            .map(|call| call.id)
            .collect();
        for id in ringing {
            self.call_input(now, id, CallInput::FlowLost { flow });
        }
    }

    /// Ends an agent attempt on the wire, answered or not (see [`UacLeg::end`]), and stops
    /// routing its messages to the call. `reason`: an RFC 3326 Reason for the BYE.
    pub(super) fn end_agent_leg(&mut self, now: Instant, leg: AgentLeg, reason: Option<&str>) {
        self.calls.forget_agent_leg(leg.call_id());
        let ending = leg.uac.end(|peer| self.via(peer), reason);
        self.end_uac_leg(now, ending);
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        key: Option<TransactionKey>,
        response: Response,
        source: Peer,
    ) {
        let Some(key) = key else {
            self.on_stray_response(now, response, source);
            return;
        };
        if response.status_code.code() < 200 {
            self.on_provisional(now, &key, response);
            return;
        }
        match self.client_txns.remove(&key) {
            Some(ClientPurpose::AgentInvite { call, attempt }) => {
                self.on_agent_invite_response(now, call, attempt, response, source)
            }
            Some(ClientPurpose::AbandonedInvite) => {
                if response.status_code.code() < 300 {
                    self.hang_up_orphan(now, &response, source);
                }
            }
            Some(ClientPurpose::Relay {
                call,
                original,
                server_key,
                toward_agent,
            }) => self.on_relay_response(now, call, &original, &server_key, toward_agent, response),
            Some(ClientPurpose::SessionRefresh { call }) => {
                self.on_refresh_response(now, call, &key, response)
            }
            Some(ClientPurpose::MonitorInvite { call, leg }) => {
                self.on_monitor_invite_response(now, call, leg, response, source)
            }
            Some(ClientPurpose::Fire) => {}
            Some(ClientPurpose::Outbound { call, attempt }) => {
                self.on_carrier_final(now, call, attempt, response, source)
            }
            Some(ClientPurpose::CarrierRegister {
                trunk,
                authenticated,
            }) => self.on_carrier_register_response(now, trunk, authenticated, &response),
            Some(ClientPurpose::CallbackInvite { call, seq }) => {
                self.on_callback_response(now, call, seq, response, source)
            }
            // A 2xx retransmission after the first 2xx settled the transaction's purpose.
            None => self.on_stray_response(now, response, source),
        }
    }

    /// Provisional responses leave the purpose in place.
    fn on_provisional(&mut self, now: Instant, key: &TransactionKey, response: Response) {
        let code = response.status_code.code();
        match self.client_txns.get_mut(key) {
            Some(ClientPurpose::AgentInvite { call, attempt }) if code > 100 => {
                let (call, attempt) = (*call, *attempt);
                self.call_input(now, call, CallInput::AgentAlerting { attempt, response });
            }
            Some(ClientPurpose::Relay {
                call,
                original,
                server_key,
                toward_agent,
            }) if code > 100 => {
                let (call, original, server_key, toward_agent) =
                    (*call, original.clone(), server_key.clone(), *toward_agent);
                self.relay_response_back(
                    now,
                    call,
                    &original,
                    &server_key,
                    toward_agent,
                    &response,
                );
            }
            Some(ClientPurpose::Outbound { call, attempt }) => {
                let (call, attempt) = (*call, *attempt);
                self.on_carrier_provisional(now, call, attempt, &response);
            }
            Some(ClientPurpose::CallbackInvite { call, seq }) if code > 100 => {
                let (call, seq) = (*call, *seq);
                self.on_callback_alerting(call, seq);
            }
            _ => {}
        }
    }

    fn on_agent_invite_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        attempt: u32,
        response: Response,
        source: Peer,
    ) {
        let code = response.status_code.code();
        let current = self
            .calls
            .get(&id)
            .and_then(|c| c.agent_leg.as_ref())
            .is_some_and(|l| l.attempt == attempt);
        if !current {
            // The attempt was given up while this response was in flight.
            if (200..300).contains(&code) {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        }
        if (200..300).contains(&code) {
            let via = self.via(source);
            let response = Box::new(response);
            let answered = CallInput::AgentAnswered {
                response,
                source,
                via,
            };
            self.call_input(now, id, answered);
            return;
        }
        self.call_input(now, id, CallInput::AgentRefused { attempt, code });
    }

    /// The answering phone's SDP against the offer, by the media plane: the call is told
    /// whether it fits (and what the trunk is answered with).
    pub(super) fn check_agent_answer(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: Box<Response>,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let trunk_answered = call.trunk_leg.finalized;
        let for_trunk = match call.media.as_mut() {
            Some(media) if media.delayed_offer => self
                .media
                .agent_answered_delayed(media, &response.body)
                .map(Some),
            Some(media) if trunk_answered => self
                .media
                .agent_answered_bridge(now, id, media, &response.body)
                .map(|()| None),
            Some(media) => self
                .media
                .agent_answered_passthrough(now, id, media, &response.body)
                .map(Some),
            None => Ok(None),
        };
        let input = match for_trunk {
            Ok(for_trunk) => CallInput::AgentAnswerAgreed {
                response,
                for_trunk,
            },
            Err(error) => {
                tracing::info!(call = id, %error, "agent's SDP answer refused");
                CallInput::AgentMediaRefused
            }
        };
        self.call_input(now, id, input);
    }

    /// Sends the trunk the 200 the call built, with our Contact, Allow and session timer.
    pub(super) fn answer_trunk(&mut self, now: Instant, id: CallNumber, mut answer: Response) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let server_key = call.trunk_leg.server_key.clone();
        let negotiated = self.session_timer_requested(&call.trunk_leg.invite);
        push_header(
            &mut answer.headers,
            "Contact",
            self.contact_for(call.trunk_leg.dialog.peer),
        );
        push_header(&mut answer.headers, "Allow", super::ALLOW);
        self.session_timer_answer(now, id, negotiated, &mut answer);
        self.send_response(now, &server_key, answer);
    }

    /// Caller and agent are talking: count it, record it if the queue says so, remember the
    /// agent for sticky routing; returns what the ACD makes of the answer.
    pub(super) fn call_connected(&mut self, now: Instant, id: CallNumber) -> Vec<acd::Action> {
        if let Some(call) = self.calls.get(&id) {
            let queue = call.queue.as_str();
            self.metrics
                .calls_answered
                .with_label_values(&[queue])
                .inc();
            self.metrics
                .wait_seconds
                .with_label_values(&[queue])
                .observe(
                    now.saturating_duration_since(call.enqueued_at())
                        .as_secs_f64(),
                );
            tracing::info!(call = id, agent = ?call.agent().map(|a| a.to_string()), "call answered");
        }
        self.maybe_record(now, id);
        self.remember_answering_agent(now, id);
        match self.acd.answered(now, acd::CallId(id)) {
            Ok(actions) => actions,
            Err(error) => {
                tracing::debug!(call = id, %error, "answered refused by ACD");
                Vec::new()
            }
        }
    }

    /// A 2xx for an INVITE we no longer want: ACK it and hang up at once.
    pub(super) fn hang_up_orphan(&mut self, now: Instant, response: &Response, source: Peer) {
        let Ok((ack, bye)) = Dialog::end_orphan_2xx(response, source, || self.via(source)) else {
            return;
        };
        self.send_stateless_request(ack, source);
        self.send_request(now, bye, source, ClientPurpose::Fire);
    }

    /// A 2xx for an INVITE whose transaction already had its answer: our ACK again when it
    /// is a retransmission, ACK and BYE when another fork answered too.
    fn on_stray_response(&mut self, now: Instant, response: Response, source: Peer) {
        let is_invite =
            cseq_of(&response.headers).is_some_and(|(_, m)| m.eq_ignore_ascii_case("INVITE"));
        if !is_invite || !(200..300).contains(&response.status_code.code()) {
            return;
        }
        let late = self
            .late_2xx_of_call_out(&response)
            .or_else(|| self.late_2xx_of_callback(&response))
            .or_else(|| {
                let id =
                    call_id_of(&response.headers).and_then(|c| self.calls.by_agent_call_id(c))?;
                let leg = self.calls.get(&id)?.agent_leg.as_ref()?;
                Some(leg.uac.late_2xx(&response))
            });
        if let Some(late) = late {
            self.on_late_2xx(now, late, &response, source);
        }
    }

    pub(super) fn on_client_timeout(&mut self, now: Instant, key: TransactionKey) {
        self.on_client_failure(now, key, ClientFailure::Timeout)
    }

    /// A client transaction ended without a final response (see [`ClientFailure`]).
    pub(super) fn on_client_failure(
        &mut self,
        now: Instant,
        key: TransactionKey,
        failure: ClientFailure,
    ) {
        match self.client_txns.remove(&key) {
            Some(ClientPurpose::AgentInvite { call, attempt }) => {
                tracing::info!(
                    call,
                    attempt,
                    ?failure,
                    "agent INVITE failed: the phone {}",
                    failure.describe()
                );
                let status = failure.status();
                self.call_input(now, call, CallInput::AgentUnreachable { attempt, status });
            }
            Some(ClientPurpose::Relay {
                original,
                server_key,
                ..
            }) => {
                self.reply_error(
                    now,
                    &server_key,
                    &original,
                    failure.status(),
                    &format!("the other party {}", failure.describe()),
                );
            }
            Some(ClientPurpose::SessionRefresh { call, .. }) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.trunk_leg.reinvite_pending = false;
                }
                tracing::info!(call, "the trunk did not answer the session refresh");
                self.end_call(now, call, EndCause::SessionExpired);
            }
            Some(ClientPurpose::Outbound { call, attempt }) => {
                self.on_carrier_failure(now, call, attempt, failure)
            }
            Some(ClientPurpose::CarrierRegister { trunk, .. }) => {
                tracing::warn!(trunk, "the carrier did not answer the REGISTER");
                self.retry_carrier_registration(now, trunk)
            }
            Some(ClientPurpose::CallbackInvite { call, seq }) => {
                self.on_callback_timeout(now, call, seq)
            }
            _ => {}
        }
    }

    pub(super) fn on_ack_timeout(&mut self, now: Instant, key: &TransactionKey) {
        // Indexed kinds first (trunk INVITEs, calls out); supervisors' INVITEs need a search.
        if let Some(id) = self.calls.by_server_txn(key) {
            // Our 200 went unacknowledged: whether an agent answered or Switchboard did.
            if self.calls.get(&id).is_some_and(|c| c.trunk_leg.finalized) {
                tracing::info!(call = id, "caller never acknowledged the answer");
                self.end_call(now, id, EndCause::AckTimeout);
            }
            return;
        }
        if !self.outbound_ack_timeout(now, key) {
            self.monitor_ack_timeout(now, key);
        }
    }

    pub(super) fn on_cancelled(&mut self, now: Instant, invite_key: &TransactionKey) {
        // Callers cancel all day: the indexed kinds first, supervisors' INVITEs need a search.
        if let Some(id) = self.calls.by_server_txn(invite_key) {
            tracing::info!(call = id, "caller cancelled");
            self.end_call(now, id, EndCause::CallerCancel);
            return;
        }
        if !self.outbound_cancelled(now, invite_key) {
            self.monitor_cancelled(now, invite_key);
        }
    }

    /// Ends a call on both legs and settles it with the ACD. A caller Switchboard answered
    /// itself who is turned away (nobody logged in, the wait too long, the queue full) first
    /// hears why, instead of being cut off.
    pub(super) fn end_call(&mut self, now: Instant, id: CallNumber, cause: EndCause) {
        self.call_input(now, id, CallInput::End { cause });
    }

    /// Ends a call; `held` responses (and the trunk's final response, when one is owed) are
    /// sent once the call's CDR is durable.
    pub(super) fn finish_call(
        &mut self,
        now: Instant,
        id: CallNumber,
        cause: EndCause,
        held: Vec<(TransactionKey, Response)>,
    ) {
        let Some(mut call) = self.calls.remove(&id) else {
            for (key, response) in held {
                self.send_response(now, &key, response);
            }
            return;
        };
        // Supervisors and a consulted colleague leave first: their legs go into the record.
        self.end_monitors(now, &mut call);
        self.end_consult(now, &mut call);
        let config = self.config.clone();
        let queue = self.index.queue(&config, &call.queue);
        let outputs = call.end(now, &cause, queue, held, |peer| self.via(peer));
        self.count_ended_call(now, &call, &cause);
        let actions = self.apply_call_outputs(now, id, outputs);
        self.apply_acd(now, actions);
    }

    /// The metrics and the log line of a call that has just ended.
    fn count_ended_call(&self, now: Instant, call: &Call, cause: &EndCause) {
        let queue = call.queue.as_str();
        // Switchboard turned the caller away before an agent answered (whether it had
        // answered the trunk itself or not).
        if !call.state.is_connected() && cause.is_refusal() {
            self.reject_metric(cause.label());
        }
        let caller_left = matches!(cause, EndCause::CallerCancel | EndCause::CallerHangup);
        if call.state.is_queued() && caller_left {
            let waited = now.saturating_duration_since(call.enqueued_at());
            self.metrics
                .calls_abandoned
                .with_label_values(&[queue])
                .inc();
            self.metrics
                .abandon_wait_seconds
                .with_label_values(&[queue])
                .observe(waited.as_secs_f64());
        }
        let talk = call.answered.map(|a| {
            call.talk_ended(now)
                .saturating_duration_since(a)
                .as_secs_f64()
        });
        if let Some(talk) = talk {
            self.metrics
                .talk_seconds
                .with_label_values(&[queue])
                .observe(talk);
        }
        tracing::info!(
            call = call.id,
            cause = cause.label(),
            queue,
            waited_s = call
                .answered
                .unwrap_or(now)
                .saturating_duration_since(call.enqueued_at())
                .as_secs_f64(),
            talk_s = talk,
            "call ended"
        );
    }
}

/// The media type of a request's body: `Content-Type` without its parameters ("" when absent).
fn body_mime(request: &Request) -> &str {
    header_value(&request.headers, "Content-Type")
        .and_then(|value| value.split(';').next())
        .unwrap_or("")
        .trim()
}
