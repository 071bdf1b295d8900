//! The back-to-back user agent: a trunk INVITE answered as UAS, queued, offered to agents
//! one attempt at a time as UAC, then bridged; requests inside either dialog are relayed to
//! the other, and a hang-up on one side ends both.

use super::admission::{self, TrunkDecision};
use super::call::{AgentLeg, Call, CallNumber, Phase, TrunkLeg};
use super::caller_media::CallerAudio;
use super::{new_tag, ClientPurpose, Switch, SwitchTimer};
use acd::{AgentId, OfferFailure};
use sip::dialog::{copy_body, Dialog};
use sip::headers::{call_id_of, cseq_of, header_value, split_name_addr, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::headers::untyped::UntypedHeader;
use sip::rsip::{self, Header, Headers, Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// A new call's media, and the SDP for the trunk's 200 when Switchboard answers it itself.
type AnchoredOffer = (Option<super::media_plane::CallMedia>, Option<Vec<u8>>);

/// How long a key press lasts when an INFO does not say.
const DEFAULT_KEY_PRESS_MS: u32 = 100;

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
}

impl EndCause {
    /// The final response the trunk gets when its INVITE was never answered.
    fn trunk_status(&self) -> (u16, &'static str) {
        match self {
            EndCause::CallerCancel | EndCause::CallerHangup => (487, "call cancelled by caller"),
            EndCause::QueueTimeout => (480, "no agent answered within the queue's maximum wait"),
            EndCause::QueueFull(_) => (480, "queue is full"),
            EndCause::NoAgents => (480, "no agent is logged in for this queue"),
            EndCause::Shutdown => (503, "server shutting down"),
            EndCause::AckTimeout | EndCause::AgentHangup => (480, "agent unavailable"),
            EndCause::MediaTimeout => (408, "no media received"),
            EndCause::MediaFailed => (503, "media ports could not be opened"),
            EndCause::BadAnswer => (488, "no usable SDP answer"),
            EndCause::IvrHangup | EndCause::CallbackRequested | EndCause::Voicemail => {
                (480, "call ended by the IVR")
            }
        }
    }

    /// Switchboard, not a person, ended the call (counted in `calls_rejected` when no agent
    /// had answered).
    fn is_refusal(&self) -> bool {
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
    fn farewell_prompt(&self) -> Option<&'static str> {
        match self {
            EndCause::NoAgents => Some("closed"),
            EndCause::QueueTimeout | EndCause::QueueFull(_) => Some("goodbye"),
            _ => None,
        }
    }

    /// Tells the far end why Switchboard hangs up (RFC 3326), when the reason is ours.
    fn add_reason(&self, bye: &mut Request) {
        let reason = match self {
            EndCause::MediaTimeout => "SIP;cause=408;text=\"media-timeout\"",
            EndCause::Shutdown => "SIP;cause=503;text=\"shutdown\"",
            _ => return,
        };
        push_header(&mut bye.headers, "Reason", reason);
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
        }
    }
}

/// Which leg of a call a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Trunk,
    Agent,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Trunk => Side::Agent,
            Side::Agent => Side::Trunk,
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
            self.reply_error(now, &key, &request, 503, "server is draining for shutdown");
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
            self.on_feature_code(now, key, request, source, &dialled);
            return;
        }
        let Some(trunk) = self.admit_trunk(now, &key, &request, source) else {
            return;
        };
        let Some(did) = admission::dialled_number(&request) else {
            self.reply_error(now, &key, &request, 404, "no number in the Request-URI");
            return;
        };
        let Some(number) = self
            .config
            .numbers
            .iter()
            .find(|n| n.did == did && n.trunk.as_ref().is_none_or(|t| *t == trunk))
            .cloned()
        else {
            self.reject_metric("unknown-number");
            self.reply_error(now, &key, &request, 404, &format!("unknown number {did}"));
            return;
        };
        let local_tag = new_tag();
        let dialog = match Dialog::new_uas(&request, &local_tag, source) {
            Ok(d) => d,
            Err(error) => {
                self.reply_error(now, &key, &request, 400, &error.to_string());
                return;
            }
        };
        // A number's calls are answered here when an IVR takes them or their queue answers on
        // queueing (music on hold); otherwise the trunk hears ringback until an agent answers.
        let answer_here = match &number.target {
            crate::config::NumberTarget::Ivr(_) => true,
            crate::config::NumberTarget::Queue(queue) => self
                .config
                .queue(queue)
                .is_some_and(|q| q.answer == crate::config::QueueAnswer::OnQueue),
        };
        let (media, local_answer) = match self.anchor_trunk_offer(&request, answer_here) {
            Ok(anchored) => anchored,
            Err((code, reason)) => {
                self.reject_metric(if code == 503 { "no-rtp-ports" } else { "media" });
                self.reply_error(now, &key, &request, code, &reason);
                return;
            }
        };
        self.send_response(now, &key, response_to(&request, 100, None));

        let caller = admission::caller_number(&request);
        let priority = call_priority(&number, &caller, &request);
        let id = self.next_call;
        self.next_call += 1;
        let trunk_call_id = dialog.call_id.clone();
        let call = Call {
            id,
            trunk,
            did: did.clone(),
            caller: caller.clone(),
            queue: number.queue().unwrap_or_default().to_owned(),
            priority,
            trunk_leg: TrunkLeg {
                invite: request,
                server_key: key.clone(),
                local_tag,
                dialog,
                finalized: false,
                ringing_sent: false,
            },
            agent_leg: None,
            attempts: 0,
            phase: Phase::Queued,
            arrived: now,
            first_offered: None,
            last_offered: None,
            answered: None,
            last_agent: None,
            failed_legs: Vec::new(),
            failed_ring_time: std::time::Duration::ZERO,
            media,
            ivr: None,
            ivr_path: String::new(),
            ivr_ended: None,
            language: number.language.clone(),
            audio: CallerAudio::Silence,
            next_announcement: None,
            farewell: None,
            pending_target: None,
            recording: None,
            recording_failed: false,
        };
        tracing::info!(call = id, %did, %caller, target = ?number.target, priority, "call arrived");
        self.calls.insert(id, call);
        self.by_server_txn.insert(key, id);
        self.by_trunk_call_id.insert(trunk_call_id, id);
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
            crate::config::NumberTarget::Queue(_) => self.enqueue_call(now, id),
        }
    }

    /// The trunk's ACK for a call Switchboard answered with its own offer (the INVITE had no
    /// SDP): the ACK carries the answer. With it the session starts and the call goes on to
    /// its IVR or queue; without a usable one the call cannot have audio and is hung up.
    pub(super) fn on_trunk_ack(&mut self, now: Instant, request: &Request) {
        let Some(&id) = call_id_of(&request.headers).and_then(|c| self.by_trunk_call_id.get(c))
        else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(media) = call.media.as_mut().filter(|m| m.awaiting_answer) else {
            return;
        };
        let answered = if body_mime(request).eq_ignore_ascii_case("application/sdp")
            && !request.body.is_empty()
        {
            self.media
                .offer_answered(media, &request.body)
                .map_err(|error| error.to_string())
        } else {
            Err("the ACK carries no SDP answer to Switchboard's offer".to_owned())
        };
        if let Err(reason) = answered {
            tracing::info!(call = id, %reason, "trunk's answer unusable: hanging up");
            self.end_call(now, id, EndCause::BadAnswer);
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
        push_header(&mut answer.headers, "Contact", self.contact_for(peer));
        push_header(&mut answer.headers, "Allow", super::ALLOW);
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
            call.phase = Phase::Queued;
        }
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(queue.as_str()),
            priority,
            preferred_agent: None,
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
        if call.phase == Phase::Connected {
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
    /// INVITE has no SDP offer (the phones then negotiate end to end); `Err((status, reason))`
    /// when the INVITE must be refused.
    fn anchor_trunk_offer(
        &mut self,
        request: &Request,
        answer_here: bool,
    ) -> Result<AnchoredOffer, (u16, String)> {
        if request.body.is_empty() {
            // A delayed offer: Switchboard offers in its 200 when it answers itself; a call
            // that rings agents lets the phones negotiate end to end.
            if !answer_here {
                return Ok((None, None));
            }
            return self
                .media
                .anchor_offerless()
                .map(|(media, offer)| (Some(media), Some(offer)))
                .map_err(|error| (error.sip_status(), error.to_string()));
        }
        let mime = body_mime(request);
        if !mime.eq_ignore_ascii_case("application/sdp") {
            return Err((
                415,
                format!("body of type {mime:?} is not supported: only application/sdp"),
            ));
        }
        let anchored = if answer_here {
            self.media
                .anchor_answered(&request.body)
                .map(|(media, answer)| (Some(media), Some(answer)))
        } else {
            self.media
                .anchor_passthrough(&request.body)
                .map(|media| (Some(media), None))
        };
        anchored.map_err(|error| (error.sip_status(), error.to_string()))
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

    fn reject_metric(&self, reason: &str) {
        self.metrics
            .calls_rejected
            .with_label_values(&[reason])
            .inc();
    }

    /// Whether any agent able to serve `queue` is logged in (registered).
    fn queue_has_logged_in_agent(&self, queue: &str) -> bool {
        self.acd.queue(&acd::QueueId::from(queue)).is_some_and(|q| {
            let a = &q.agents;
            a.ready + a.reserved + a.on_call + a.wrap_up + a.not_ready > 0
        })
    }

    /// Sends 180 (or a relayed 180/183 with its body) to the trunk.
    fn ring_trunk(&mut self, now: Instant, id: CallNumber, relayed: Option<&Response>) {
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
            return self.offer_failed(now, id, &agent, OfferFailure::Unreachable, None);
        };
        let Some(binding) = self
            .registrar
            .bindings(now, &entry.sip_user)
            .into_iter()
            .next()
        else {
            tracing::info!(call = id, agent = %agent, "offered agent has no registered phone");
            return self.offer_failed(now, id, &agent, OfferFailure::Unreachable, None);
        };
        let Ok(uri) = rsip::Uri::try_from(binding.contact.as_str()) else {
            return self.offer_failed(now, id, &agent, OfferFailure::Unreachable, None);
        };
        let peer = binding.source;
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return self.acd.abandon(now, acd::CallId(id)).unwrap_or_default();
        };
        let a = &call.trunk_leg.invite;
        let from_value =
            header_value(&a.headers, "From").unwrap_or("<sip:anonymous@anonymous.invalid>");
        let (from_uri, _) = split_name_addr(from_value);
        let display = from_value
            .find('<')
            .map(|i| from_value[..i].trim())
            .unwrap_or("");
        let agent_host = sip::headers::uri_host_port(&binding.contact).unwrap_or("invalid");
        let call_id = format!("{}-{}@switchboard", new_tag(), call.attempts + 1);

        let mut headers = Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new(
            sip::message::max_forwards(a).saturating_sub(1).to_string(),
        )));
        let from = if display.is_empty() {
            format!("<{from_uri}>;tag={}", new_tag())
        } else {
            format!("{display} <{from_uri}>;tag={}", new_tag())
        };
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
        let mut invite = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: Vec::new(),
        };
        match &call.media {
            // The agent is offered Switchboard's address, never the trunk's.
            Some(media) => {
                push_header(&mut invite.headers, "Content-Type", "application/sdp");
                invite.body = media.agent_offer.clone();
            }
            None => copy_body(&a.headers, &a.body, &mut invite.headers, &mut invite.body),
        }

        call.attempts += 1;
        let attempt = call.attempts;
        call.phase = Phase::Offering;
        call.first_offered.get_or_insert(now);
        call.last_offered = Some(now);
        call.last_agent = Some(agent.clone());
        tracing::info!(call = id, agent = %agent, attempt, peer = %peer, "offering call to agent");
        let client_key = self.send_request(
            now,
            invite.clone(),
            peer,
            ClientPurpose::AgentInvite { call: id, attempt },
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.agent_leg = Some(AgentLeg {
                agent,
                attempt,
                invite,
                client_key,
                peer,
                provisional_seen: false,
                dialog: None,
                ack: None,
            });
        }
        self.by_agent_call_id.insert(call_id, id);
        self.timers.schedule(
            now + self.config.sip.ring_timeout,
            SwitchTimer::RingTimeout { call: id, attempt },
        );
        Vec::new()
    }

    /// Tells the ACD an offer did not connect, after dropping the attempt's leg.
    ///
    /// The ACD puts an agent whose phone was busy, refused or unreachable straight back to
    /// Ready, and would offer them the same call again at once. A phone that cannot be reached
    /// logs its agent out; one that refused sets the agent not-ready with the missed-call
    /// reason (when configured). Both are requested before the failure is reported, so the ACD
    /// applies them as the agent is released and the call goes to someone else.
    fn offer_failed(
        &mut self,
        now: Instant,
        id: CallNumber,
        agent: &AgentId,
        why: OfferFailure,
        sip_cause: Option<u16>,
    ) -> Vec<acd::Action> {
        if let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent_leg.take()) {
            self.by_agent_call_id
                .remove(call_id_of(&leg.invite.headers).unwrap_or_default());
            self.close_attempt(now, id, &leg, sip_cause);
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.phase = Phase::Queued;
        }
        let mut actions = Vec::new();
        let change = match why {
            OfferFailure::Unreachable => self.acd.logout(now, agent),
            OfferFailure::Busy | OfferFailure::Rejected => {
                match &self.config.acd.missed_call_reason {
                    Some(reason) => self.acd.set_not_ready(now, agent, reason),
                    None => Ok(Vec::new()),
                }
            }
            // The ACD itself applies the missed-call reason after a ring timeout.
            OfferFailure::NoAnswer => Ok(Vec::new()),
        };
        match change {
            Ok(more) => actions.extend(more),
            Err(error) => tracing::debug!(call = id, %error, "agent change after failed offer"),
        }
        match self.acd.offer_failed(now, acd::CallId(id), why) {
            Ok(more) => actions.extend(more),
            Err(error) => tracing::debug!(call = id, %error, "offer_failed refused by ACD"),
        }
        actions
    }

    pub(super) fn ring_timeout(&mut self, now: Instant, id: CallNumber, attempt: u32) {
        let current = self
            .calls
            .get(&id)
            .and_then(|c| c.agent_leg.as_ref())
            .is_some_and(|leg| leg.attempt == attempt && leg.dialog.is_none());
        if !current {
            return;
        }
        tracing::info!(call = id, attempt, "agent did not answer in time");
        let Some(leg) = self.calls.get_mut(&id).and_then(|c| c.agent_leg.take()) else {
            return;
        };
        let agent = leg.agent.clone();
        self.close_attempt(now, id, &leg, None);
        self.abandon_agent_leg(now, leg);
        let actions = self.offer_failed(now, id, &agent, OfferFailure::NoAnswer, None);
        self.apply_acd(now, actions);
    }

    /// Gives up on an unanswered agent INVITE: CANCEL it now if it is ringing, or as soon as
    /// it rings (RFC 3261 §9.1 forbids a CANCEL before a provisional response).
    pub(super) fn abandon_agent_leg(&mut self, now: Instant, leg: AgentLeg) {
        self.by_agent_call_id
            .remove(call_id_of(&leg.invite.headers).unwrap_or_default());
        if leg.provisional_seen {
            self.send_cancel(now, &leg.invite, leg.peer);
        }
        self.client_txns.insert(
            leg.client_key,
            ClientPurpose::AbandonedInvite {
                invite: Box::new(leg.invite),
                peer: leg.peer,
                cancel_sent: leg.provisional_seen,
            },
        );
    }

    fn send_cancel(&mut self, now: Instant, invite: &Request, peer: Peer) {
        let cancel = cancel_for(invite);
        self.send_request(now, cancel, peer, ClientPurpose::Fire);
    }

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        key: Option<TransactionKey>,
        response: Response,
        source: Peer,
    ) {
        let Some(key) = key else {
            self.on_stray_response(response);
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
            Some(ClientPurpose::AbandonedInvite { .. }) => {
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
            Some(ClientPurpose::Fire) => {}
            // A 2xx retransmission after the first 2xx settled the transaction's purpose.
            None => self.on_stray_response(response),
        }
    }

    /// Provisional responses leave the purpose in place.
    fn on_provisional(&mut self, now: Instant, key: &TransactionKey, response: Response) {
        let code = response.status_code.code();
        match self.client_txns.get_mut(key) {
            Some(ClientPurpose::AgentInvite { call, attempt }) => {
                let (call, attempt) = (*call, *attempt);
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                let Some(leg) = c.agent_leg.as_mut().filter(|l| l.attempt == attempt) else {
                    return;
                };
                leg.provisional_seen = true;
                let anchored = c.media.is_some();
                if code > 100 && !c.trunk_leg.finalized {
                    // An anchored call's early media would carry the agent's address: the
                    // trunk hears its own ringback from a plain 180 instead.
                    self.ring_trunk(now, call, (!anchored).then_some(&response));
                }
            }
            Some(ClientPurpose::AbandonedInvite {
                invite,
                peer,
                cancel_sent,
            }) if !*cancel_sent => {
                *cancel_sent = true;
                let (invite, peer) = (invite.clone(), *peer);
                self.send_cancel(now, &invite, peer);
            }
            Some(ClientPurpose::Relay {
                call,
                original,
                server_key,
                ..
            }) if code > 100 => {
                let (call, original, server_key) = (*call, original.clone(), server_key.clone());
                self.relay_response_back(now, call, &original, &server_key, &response);
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
            self.agent_answered(now, id, response, source);
            return;
        }
        let why = match code {
            486 | 600 => OfferFailure::Busy,
            408 => OfferFailure::NoAnswer,
            _ => OfferFailure::Rejected,
        };
        tracing::info!(call = id, attempt, code, "agent leg failed");
        let Some(agent) = self.calls.get(&id).and_then(|c| c.agent().cloned()) else {
            return;
        };
        let actions = self.offer_failed(now, id, &agent, why, Some(code));
        self.apply_acd(now, actions);
    }

    fn agent_answered(&mut self, now: Instant, id: CallNumber, response: Response, source: Peer) {
        let via = self.via(source);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = call.agent_leg.as_mut() else {
            return;
        };
        let mut dialog = match Dialog::new_uac(&leg.invite, &response, source) {
            Ok(d) => d,
            Err(error) => {
                tracing::warn!(call = id, %error, "agent 2xx unusable");
                return;
            }
        };
        let invite_cseq = cseq_of(&leg.invite.headers).map_or(1, |(n, _)| n);
        let ack = dialog.request(Method::Ack, &via, None, Some(invite_cseq));
        leg.ack = Some(sip::message::encode_request(&ack));
        leg.dialog = Some(dialog);
        self.count_request("out", &Method::Ack);
        self.resend_ack(id);

        // Anchored media: the agent's answer must fit what we offered.
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let trunk_answered = call.trunk_leg.finalized;
        let for_trunk = match call.media.as_mut() {
            Some(media) if trunk_answered => self
                .media
                .agent_answered_bridge(id, media, &response.body)
                .map(|()| None),
            Some(media) => self
                .media
                .agent_answered_passthrough(id, media, &response.body)
                .map(Some),
            None => Ok(None),
        };
        let for_trunk = match for_trunk {
            Ok(sdp) => sdp,
            Err(error) => {
                tracing::info!(call = id, %error, "agent's SDP answer refused");
                self.agent_media_failed(now, id);
                return;
            }
        };
        call.phase = Phase::Connected;
        call.answered = Some(now);
        call.audio = CallerAudio::Silence;
        call.next_announcement = None;
        if !trunk_answered {
            call.trunk_leg.finalized = true;
            let trunk_peer = call.trunk_leg.dialog.peer;
            let mut answer =
                response_to(&call.trunk_leg.invite, 200, Some(&call.trunk_leg.local_tag));
            match for_trunk {
                Some(sdp) => {
                    push_header(&mut answer.headers, "Content-Type", "application/sdp");
                    answer.body = sdp;
                }
                None => copy_body(
                    &response.headers,
                    &response.body,
                    &mut answer.headers,
                    &mut answer.body,
                ),
            }
            let server_key = call.trunk_leg.server_key.clone();
            push_header(&mut answer.headers, "Contact", self.contact_for(trunk_peer));
            push_header(&mut answer.headers, "Allow", super::ALLOW);
            self.send_response(now, &server_key, answer);
        }
        if let Some(call) = self.calls.get(&id) {
            self.metrics
                .calls_answered
                .with_label_values(&[call.queue.as_str()])
                .inc();
            self.metrics
                .wait_seconds
                .with_label_values(&[call.queue.as_str()])
                .observe(
                    now.saturating_duration_since(call.enqueued_at())
                        .as_secs_f64(),
                );
        }
        let agent = self.calls.get(&id).and_then(|c| c.agent().cloned());
        tracing::info!(call = id, agent = ?agent.as_ref().map(|a| a.to_string()), "call answered");
        self.maybe_record(now, id);
        match self.acd.answered(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(call = id, %error, "answered refused by ACD"),
        }
    }

    /// The agent answered with SDP that does not fit our offer: hang that leg up and try
    /// another agent, as if the phone had refused with 488.
    fn agent_media_failed(&mut self, now: Instant, id: CallNumber) {
        let Some(mut leg) = self.calls.get_mut(&id).and_then(|c| c.agent_leg.take()) else {
            return;
        };
        self.by_agent_call_id
            .remove(call_id_of(&leg.invite.headers).unwrap_or_default());
        if let Some(dialog) = leg.dialog.as_mut() {
            let peer = dialog.peer;
            let via = self.via(peer);
            let bye = dialog.request(Method::Bye, &via, None, None);
            self.send_request(now, bye, peer, ClientPurpose::Fire);
        }
        let agent = leg.agent.clone();
        self.close_attempt(now, id, &leg, Some(488));
        if let Some(call) = self.calls.get_mut(&id) {
            call.phase = Phase::Queued;
        }
        let actions = self.offer_failed(now, id, &agent, OfferFailure::Rejected, Some(488));
        self.apply_acd(now, actions);
    }

    /// (Re)sends our ACK for the agent's 2xx.
    fn resend_ack(&mut self, id: CallNumber) {
        let Some(leg) = self.calls.get(&id).and_then(|c| c.agent_leg.as_ref()) else {
            return;
        };
        if let (Some(ack), Some(dialog)) = (&leg.ack, &leg.dialog) {
            let transmit = sip::Transmit {
                peer: dialog.peer,
                data: ack.clone(),
            };
            self.pending_raw.push_back(transmit);
        }
    }

    /// A 2xx for an INVITE we no longer want: ACK it and hang up at once.
    fn hang_up_orphan(&mut self, now: Instant, response: &Response, source: Peer) {
        let Some(invite_cseq) = cseq_of(&response.headers).map(|(n, _)| n) else {
            return;
        };
        // Rebuild enough of a dialog from the response alone: it echoes our From, To, Call-ID.
        let Some(mut dialog) = orphan_dialog(response, source) else {
            return;
        };
        let via = self.via(source);
        let ack = dialog.request(Method::Ack, &via, None, Some(invite_cseq));
        self.send_stateless_request(ack, source);
        let via = self.via(source);
        let bye = dialog.request(Method::Bye, &via, None, None);
        self.send_request(now, bye, source, ClientPurpose::Fire);
    }

    fn on_stray_response(&mut self, response: Response) {
        // A retransmitted 2xx for an agent INVITE whose transaction is gone: re-ACK it.
        let is_invite =
            cseq_of(&response.headers).is_some_and(|(_, m)| m.eq_ignore_ascii_case("INVITE"));
        if !is_invite || !(200..300).contains(&response.status_code.code()) {
            return;
        }
        let Some(&id) = call_id_of(&response.headers).and_then(|c| self.by_agent_call_id.get(c))
        else {
            return;
        };
        self.resend_ack(id);
    }

    pub(super) fn on_client_timeout(&mut self, now: Instant, key: TransactionKey) {
        match self.client_txns.remove(&key) {
            Some(ClientPurpose::AgentInvite { call, attempt }) => {
                let current = self
                    .calls
                    .get(&call)
                    .and_then(|c| c.agent_leg.as_ref())
                    .is_some_and(|l| l.attempt == attempt);
                let agent = self.calls.get(&call).and_then(|c| c.agent().cloned());
                if let (true, Some(agent)) = (current, agent) {
                    tracing::info!(call, attempt, "agent INVITE timed out");
                    let actions =
                        self.offer_failed(now, call, &agent, OfferFailure::Unreachable, Some(408));
                    self.apply_acd(now, actions);
                }
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
                    408,
                    "the other party did not answer",
                );
            }
            _ => {}
        }
    }

    pub(super) fn on_ack_timeout(&mut self, now: Instant, key: &TransactionKey) {
        if let Some(&id) = self.by_server_txn.get(key) {
            // Our 200 went unacknowledged: whether an agent answered or Switchboard did.
            if self.calls.get(&id).is_some_and(|c| c.trunk_leg.finalized) {
                tracing::info!(call = id, "caller never acknowledged the answer");
                self.end_call(now, id, EndCause::AckTimeout);
            }
        }
    }

    pub(super) fn on_cancelled(&mut self, now: Instant, invite_key: &TransactionKey) {
        if let Some(&id) = self.by_server_txn.get(invite_key) {
            tracing::info!(call = id, "caller cancelled");
            self.end_call(now, id, EndCause::CallerCancel);
        }
    }

    /// Which call and leg a request inside a dialog belongs to, checking our tag.
    fn locate(&self, request: &Request) -> Option<(CallNumber, Side)> {
        let call_id = call_id_of(&request.headers)?;
        let our_tag = to_tag(&request.headers)?;
        if let Some(&id) = self.by_agent_call_id.get(call_id) {
            let leg = self.calls.get(&id)?.agent_leg.as_ref()?;
            let dialog = leg.dialog.as_ref()?;
            return (dialog.local_tag == our_tag).then_some((id, Side::Agent));
        }
        let &id = self.by_trunk_call_id.get(call_id)?;
        let call = self.calls.get(&id)?;
        (call.trunk_leg.local_tag == our_tag).then_some((id, Side::Trunk))
    }

    pub(super) fn on_in_dialog_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
        source: Peer,
    ) {
        let Some((id, side)) = self.locate(&request) else {
            self.reply_error(now, &key, &request, 481, "no such dialog");
            return;
        };
        let in_order = self
            .calls
            .get_mut(&id)
            .and_then(|call| leg_dialog(call, side))
            .is_some_and(|d| d.accept_remote_cseq(&request));
        if !in_order {
            self.reply_error(now, &key, &request, 500, "CSeq out of order");
            return;
        }
        let _ = source;
        if request.method == Method::Bye {
            // The 200 waits for the call's CDR to be durable: a hang-up the far end saw
            // complete always has its record on disk.
            let ok = response_to(&request, 200, None);
            let cause = match side {
                Side::Trunk => EndCause::CallerHangup,
                Side::Agent => EndCause::AgentHangup,
            };
            self.finish_call(now, id, cause, vec![(key, ok)]);
            return;
        }
        let connected = self
            .calls
            .get(&id)
            .is_some_and(|c| c.phase == Phase::Connected);
        if request.method == Method::Info && side == Side::Trunk && !connected {
            self.on_caller_info(now, id, key, request);
            return;
        }
        if request.method == Method::Info && side == Side::Agent && connected {
            match self.agent_key_to_trunk(id, &request) {
                Some(()) => self.send_response(now, &key, response_to(&request, 200, None)),
                None => self.relay(now, id, side, key, request),
            }
            return;
        }
        let anchored = self.calls.get(&id).is_some_and(|c| c.media.is_some());
        if anchored && matches!(request.method, Method::Invite | Method::Update) {
            self.answer_reoffer(now, id, side, key, request);
            return;
        }
        self.relay(now, id, side, key, request);
    }

    /// An INFO from a caller who is not talking to an agent yet: a key press for the IVR or
    /// the queue (application/dtmf-relay or application/dtmf), anything else acknowledged.
    fn on_caller_info(
        &mut self,
        now: Instant,
        id: CallNumber,
        key: TransactionKey,
        request: Request,
    ) {
        let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
        let pressed = if request.body.is_empty() {
            None
        } else {
            match media::dtmf::parse_info(content_type, &request.body) {
                Ok(info) => Some(info.digit.as_char()),
                Err(error) => {
                    self.reply_error(now, &key, &request, 400, &format!("bad DTMF INFO: {error}"));
                    return;
                }
            }
        };
        let ok = response_to(&request, 200, None);
        self.send_response(now, &key, ok);
        if let Some(digit) = pressed {
            tracing::info!(call = id, %digit, "key press (SIP INFO)");
            self.caller_pressed(now, id, digit);
        }
    }

    /// An agent's key press sent as SIP INFO, toward a trunk that negotiated RFC 4733: the
    /// caller's network (a bank's IVR, an extension prompt) understands telephone-events, not
    /// INFO, so the key is sent as RTP events on the trunk leg. `None`: not a DTMF INFO, or a
    /// trunk without telephone-event; the INFO is then relayed as it is.
    fn agent_key_to_trunk(&mut self, id: CallNumber, request: &Request) -> Option<()> {
        let trunk_has_events = self
            .calls
            .get(&id)
            .and_then(|c| c.media.as_ref())
            .is_some_and(|m| m.started && m.trunk_leg.telephone_event.is_some());
        if !trunk_has_events || request.body.is_empty() {
            return None;
        }
        let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
        let info = media::dtmf::parse_info(content_type, &request.body).ok()?;
        tracing::info!(call = id, digit = %info.digit.as_char(), "agent key press (SIP INFO) sent to the trunk as RFC 4733");
        self.media.command(
            id,
            media::MediaCommand::SendDtmf {
                leg: media::Leg::Trunk,
                digit: info.digit,
                duration_ms: info.duration_ms.unwrap_or(DEFAULT_KEY_PRESS_MS),
            },
        );
        Some(())
    }

    /// A re-INVITE or UPDATE on an anchored call: each leg negotiates with Switchboard, so
    /// the offer is answered here and only the media session learns the leg's new address.
    /// An agent putting the caller on hold gets music played to the caller.
    fn answer_reoffer(
        &mut self,
        now: Instant,
        id: CallNumber,
        side: Side,
        key: TransactionKey,
        request: Request,
    ) {
        let transport = {
            let Some(call) = self.calls.get_mut(&id) else {
                return;
            };
            if let Some(dialog) = leg_dialog(call, side) {
                dialog.refresh_target(&request.headers);
            }
            call.trunk_leg.dialog.peer.transport
        };
        if request.body.is_empty() {
            // An offerless re-INVITE (a session refresh) would need our offer in the 200 and
            // the answer in the ACK; nothing about the media changes, so decline politely.
            self.reply_error(
                now,
                &key,
                &request,
                488,
                "re-INVITE without an SDP offer is not supported on anchored calls",
            );
            return;
        }
        let leg = match side {
            Side::Trunk => media::Leg::Trunk,
            Side::Agent => media::Leg::Agent,
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(call_media) = call.media.as_mut() else {
            return;
        };
        let outcome = self.media.answer_reoffer(call_media, leg, &request.body);
        let (config, direction, answer) = match outcome {
            Ok(answered) => answered,
            Err(error) => {
                let status = error.sip_status();
                self.reply_error(now, &key, &request, status, &error.to_string());
                return;
            }
        };
        let started = call_media.started;
        let holding = side == Side::Agent
            && matches!(
                direction,
                media::sdp::Direction::SendOnly | media::sdp::Direction::Inactive
            );
        let hold_changed = side == Side::Agent && call_media.agent_holding != holding;
        if side == Side::Agent {
            call_media.agent_holding = holding;
        }
        if started {
            self.media
                .command(id, media::MediaCommand::UpdateLeg { leg, config });
            // A held leg is silent on purpose: its silence must not end the call.
            let on_hold = direction != media::sdp::Direction::SendRecv;
            self.media
                .command(id, media::MediaCommand::Hold { leg, on_hold });
        }
        if started && hold_changed {
            self.agent_hold_changed(id, holding);
        }
        let mut ok = response_to(&request, 200, None);
        push_header(&mut ok.headers, "Contact", self.contact(transport));
        push_header(&mut ok.headers, "Content-Type", "application/sdp");
        ok.body = answer;
        self.send_response(now, &key, ok);
    }

    /// Relays a mid-dialog request (re-INVITE, UPDATE, INFO, OPTIONS …) to the other leg.
    fn relay(
        &mut self,
        now: Instant,
        id: CallNumber,
        from: Side,
        key: TransactionKey,
        request: Request,
    ) {
        let other_side = from.other();
        let other_peer = self
            .calls
            .get_mut(&id)
            .and_then(|call| leg_dialog(call, other_side))
            .map(|d| d.peer);
        let (via, contact) = match other_peer {
            Some(peer) => (self.via(peer), self.contact(peer.transport)),
            None => (String::new(), String::new()),
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if matches!(request.method, Method::Invite | Method::Update) {
            if let Some(d) = leg_dialog(call, from) {
                d.refresh_target(&request.headers);
            }
        }
        let other = leg_dialog(call, other_side);
        let Some(other) = other else {
            // The other side is not connected yet (caller still queued).
            match request.method {
                Method::Invite | Method::Update => {
                    self.reply_error(now, &key, &request, 491, "call not connected yet");
                }
                _ => {
                    let ok = response_to(&request, 200, None);
                    self.send_response(now, &key, ok);
                }
            }
            return;
        };
        let peer = other.peer;
        let with_contact = matches!(request.method, Method::Invite | Method::Update);
        let mut relayed = other.request(
            request.method,
            &via,
            with_contact.then_some(contact.as_str()),
            None,
        );
        copy_body(
            &request.headers,
            &request.body,
            &mut relayed.headers,
            &mut relayed.body,
        );
        for name in [
            "Event",
            "Subscription-State",
            "Refer-To",
            "Referred-By",
            "Replaces",
        ] {
            if let Some(v) = header_value(&request.headers, name) {
                push_header(&mut relayed.headers, name, v);
            }
        }
        self.send_request(
            now,
            relayed,
            peer,
            ClientPurpose::Relay {
                call: id,
                original: Box::new(request),
                server_key: key,
                toward_agent: from == Side::Trunk,
            },
        );
    }

    fn on_relay_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        original: &Request,
        server_key: &TransactionKey,
        toward_agent: bool,
        response: Response,
    ) {
        let code = response.status_code.code();
        if original.method == Method::Invite && (200..300).contains(&code) {
            // Our re-INVITE on the far leg was answered: ACK it there.
            let side = if toward_agent {
                Side::Agent
            } else {
                Side::Trunk
            };
            let peer = self
                .calls
                .get_mut(&id)
                .and_then(|c| leg_dialog(c, side))
                .map(|d| d.peer);
            if let Some(peer) = peer {
                let via = self.via(peer);
                let ack = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| leg_dialog(c, side))
                    .map(|dialog| {
                        dialog.refresh_target(&response.headers);
                        let cseq = cseq_of(&response.headers).map_or(dialog.local_cseq, |(n, _)| n);
                        dialog.request(Method::Ack, &via, None, Some(cseq))
                    });
                if let Some(ack) = ack {
                    self.send_stateless_request(ack, peer);
                }
            }
        }
        self.relay_response_back(now, id, original, server_key, &response);
    }

    fn relay_response_back(
        &mut self,
        now: Instant,
        id: CallNumber,
        original: &Request,
        server_key: &TransactionKey,
        response: &Response,
    ) {
        let code = response.status_code.code();
        let mut back = response_to(original, code, None);
        copy_body(
            &response.headers,
            &response.body,
            &mut back.headers,
            &mut back.body,
        );
        if matches!(original.method, Method::Invite | Method::Update) && code < 300 {
            let transport = self
                .calls
                .get(&id)
                .map_or(sip::Transport::Udp, |c| c.trunk_leg.dialog.peer.transport);
            push_header(&mut back.headers, "Contact", self.contact(transport));
        }
        self.send_response(now, server_key, back);
    }

    /// Ends a call on both legs and settles it with the ACD. A caller Switchboard answered
    /// itself who is turned away (nobody logged in, the wait too long, the queue full) first
    /// hears why, instead of being cut off.
    pub(super) fn end_call(&mut self, now: Instant, id: CallNumber, cause: EndCause) {
        if let Some(prompt) = cause.farewell_prompt() {
            if self.can_play_to_caller(id) {
                self.say_goodbye(id, prompt, cause);
                return;
            }
        }
        self.finish_call(now, id, cause, Vec::new());
    }

    /// Ends a call; `held` responses (and the trunk's final response, when one is owed) are
    /// sent once the call's CDR is durable.
    pub(super) fn finish_call(
        &mut self,
        now: Instant,
        id: CallNumber,
        cause: EndCause,
        mut held: Vec<(TransactionKey, Response)>,
    ) {
        let Some(mut call) = self.calls.remove(&id) else {
            for (key, response) in held {
                self.send_response(now, &key, response);
            }
            return;
        };
        let mut sip_cause = None;
        if let Some(media) = call.media.take() {
            self.media.finish(id, media);
        }
        self.by_server_txn.remove(&call.trunk_leg.server_key);
        self.by_trunk_call_id.remove(&call.trunk_leg.dialog.call_id);

        // Trunk leg.
        if !call.trunk_leg.finalized {
            let (code, reason) = cause.trunk_status();
            let key = call.trunk_leg.server_key.clone();
            let mut response = response_to(
                &call.trunk_leg.invite,
                code,
                Some(&call.trunk_leg.local_tag),
            );
            if code != 487 {
                sip::message::add_warning(&mut response, super::AGENT_NAME, reason);
            }
            if code == 503 {
                push_header(
                    &mut response.headers,
                    "Retry-After",
                    super::RETRY_AFTER_SECS.to_string(),
                );
            }
            sip_cause = Some(code);
            held.push((key, response));
        } else if cause != EndCause::CallerHangup {
            let peer = call.trunk_leg.dialog.peer;
            let via = self.via(peer);
            let mut bye = call.trunk_leg.dialog.request(Method::Bye, &via, None, None);
            cause.add_reason(&mut bye);
            self.send_request(now, bye, peer, ClientPurpose::Fire);
        }

        // Switchboard turned the caller away before an agent answered (whether it had
        // answered the trunk itself or not).
        if call.phase != Phase::Connected && cause.is_refusal() {
            self.reject_metric(cause.label());
        }
        self.record_call(now, &call, &cause, sip_cause, held);

        // Agent leg.
        if let Some(mut leg) = call.agent_leg.take() {
            self.by_agent_call_id
                .remove(call_id_of(&leg.invite.headers).unwrap_or_default());
            match leg.dialog.as_mut() {
                Some(dialog) if cause != EndCause::AgentHangup => {
                    let peer = dialog.peer;
                    let via = self.via(peer);
                    let mut bye = dialog.request(Method::Bye, &via, None, None);
                    cause.add_reason(&mut bye);
                    self.send_request(now, bye, peer, ClientPurpose::Fire);
                }
                Some(_) => {}
                None => self.abandon_agent_leg(now, leg),
            }
        }

        // ACD.
        let result = if call.phase == Phase::Connected {
            self.acd.hangup(now, acd::CallId(id))
        } else {
            let was_queued = matches!(call.phase, Phase::Queued | Phase::Offering);
            if was_queued && matches!(cause, EndCause::CallerCancel | EndCause::CallerHangup) {
                self.metrics
                    .calls_abandoned
                    .with_label_values(&[call.queue.as_str()])
                    .inc();
                self.metrics
                    .abandon_wait_seconds
                    .with_label_values(&[call.queue.as_str()])
                    .observe(
                        now.saturating_duration_since(call.enqueued_at())
                            .as_secs_f64(),
                    );
            }
            self.acd.abandon(now, acd::CallId(id))
        };
        let talk = call
            .answered
            .map(|a| now.saturating_duration_since(a).as_secs_f64());
        if let Some(talk) = talk {
            self.metrics
                .talk_seconds
                .with_label_values(&[call.queue.as_str()])
                .observe(talk);
        }
        tracing::info!(
            call = id,
            cause = cause.label(),
            queue = %call.queue,
            waited_s = call.answered.unwrap_or(now).saturating_duration_since(call.enqueued_at()).as_secs_f64(),
            talk_s = talk,
            "call ended"
        );
        match result {
            Ok(actions) => self.apply_acd(now, actions),
            // The ACD already settled queue timeouts and rejections itself.
            Err(error) => tracing::debug!(call = id, %error, "ACD end-of-call"),
        }
    }
}

/// The media type of a request's body: `Content-Type` without its parameters ("" when absent).
fn body_mime(request: &Request) -> &str {
    header_value(&request.headers, "Content-Type")
        .and_then(|value| value.split(';').next())
        .unwrap_or("")
        .trim()
}

/// The dialog of one side of a call (the agent side has one only once answered).
fn leg_dialog(call: &mut Call, side: Side) -> Option<&mut Dialog> {
    match side {
        Side::Trunk => Some(&mut call.trunk_leg.dialog),
        Side::Agent => call.agent_leg.as_mut().and_then(|l| l.dialog.as_mut()),
    }
}

/// The call's priority: the number's base, raised by a caller list match or a trunk header.
fn call_priority(number: &crate::config::NumberConfig, caller: &str, request: &Request) -> i32 {
    let mut priority = number.priority;
    if let Some(p) = number
        .caller_priorities
        .iter()
        .filter(|cp| cp.callers.iter().any(|c| c == caller))
        .map(|cp| cp.priority)
        .max()
    {
        priority = priority.max(p);
    }
    if let Some(header) = &number.priority_header {
        if let Some(p) =
            header_value(&request.headers, header).and_then(|v| v.trim().parse::<i32>().ok())
        {
            priority = priority.max(p);
        }
    }
    priority
}

/// A CANCEL for `invite` (RFC 3261 §9.1): same Request-URI, Call-ID, From, To, CSeq number,
/// top Via and Route.
fn cancel_for(invite: &Request) -> Request {
    let mut headers = Headers::default();
    let mut via_done = false;
    for header in invite.headers.iter() {
        match header {
            Header::Via(v) if !via_done => {
                let top = sip::headers::split_list(v.value())
                    .first()
                    .map(|s| s.to_string());
                headers.push(Header::Via(rsip::headers::Via::new(
                    top.unwrap_or_default(),
                )));
                via_done = true;
            }
            Header::Route(_)
            | Header::From(_)
            | Header::To(_)
            | Header::CallId(_)
            | Header::MaxForwards(_) => headers.push(header.clone()),
            _ => {}
        }
    }
    let cseq = cseq_of(&invite.headers).map_or(1, |(n, _)| n);
    headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
        "{cseq} CANCEL"
    ))));
    Request {
        method: Method::Cancel,
        uri: invite.uri.clone(),
        version: rsip::Version::V2,
        headers,
        body: Vec::new(),
    }
}

/// A dialog rebuilt from a 2xx alone, enough to ACK and BYE it.
fn orphan_dialog(response: &Response, source: Peer) -> Option<Dialog> {
    let from = header_value(&response.headers, "From")?;
    let to = header_value(&response.headers, "To")?;
    let contact = sip::headers::list_values(&response.headers, "Contact")
        .first()
        .map(|c| split_name_addr(c).0.to_string())?;
    Some(Dialog {
        call_id: call_id_of(&response.headers)?.to_string(),
        local_tag: sip::headers::tag_of(from)?.to_string(),
        remote_tag: sip::headers::tag_of(to).map(str::to_string),
        local_party: format!("<{}>", split_name_addr(from).0),
        remote_party: format!("<{}>", split_name_addr(to).0),
        local_cseq: cseq_of(&response.headers)?.0,
        remote_cseq: None,
        remote_target: contact,
        route_set: Vec::new(),
        peer: source,
    })
}
