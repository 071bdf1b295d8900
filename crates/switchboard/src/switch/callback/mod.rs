//! Callbacks that call back. A waiting caller who presses the queue's callback key hangs up
//! but keeps their place: a callback entry with a call number of its own waits in the ACD
//! where the caller waited (same queue, same waiting-since), without any trunk leg.
//!
//! When the ACD offers it to an agent, the agent is reserved first and previewed: their phone
//! rings with a call whose From shows `callback <number>` and Switchboard's own SDP offer;
//! answering accepts. Only then is the customer dialled through the outbound `[[route]]`
//! (trunks in failover order), offered Switchboard's other media port, and bridged to the
//! agent on answer. Busy or no answer ends the attempt: the agent is released, and after
//! `callback_retry_s` the callback waits in the ACD again (still at the caller's place), up to
//! `callback_max_attempts` attempts. Every attempt and the outcome go into one CDR per
//! callback (`callback.attempts[]`, `callback.outcome`).
//!
//! Callers' pending callbacks are handed to the edge whenever they change and journalled next
//! to the CDRs (`callback_journal`), so a restart books them again.

pub mod book;
pub(super) mod window;

use super::call::CallNumber;
use super::outbound::route;
use super::uac_leg::{Late2xx, UacLeg};
use super::{ClientPurpose, Switch, SwitchTimer};
use acd::{AgentId, OfferFailure};
use book::{AfterFailure, Booking, Callback, CallbackView, OutgoingLeg, PendingCallback, Stage};
use cdr::{
    CallRecord, CallbackAttempt, CallbackOutcome, CallbackResult, Direction, Disposition,
    HangupSide, Leg, LegRole, Record,
};
use rsip::headers::UntypedHeader;
use sip::headers::{call_id_of, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::{self, Header, Headers, Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// Carrier statuses that end an attempt at once (another trunk would say the same).
const BUSY_STATUSES: &[u16] = &[486, 600];
const NO_ANSWER_STATUSES: &[u16] = &[408, 480, 487];
/// The carrier says the number does not exist: `wrong-number`, never retried.
const WRONG_NUMBER_STATUSES: &[u16] = &[404, 484, 604];
const FINAL_STATUSES: &[u16] = &[404, 484, 485, 603];

impl Switch {
    /// The caller of `call` pressed the callback key (their call is leaving the queue): book
    /// the callback and let it wait in the ACD at the caller's place.
    pub(super) fn book_callback(&mut self, now: Instant, call: CallNumber) {
        let Some(origin) = self.calls.get(&call) else {
            return;
        };
        let Some(queue) = self.config.queue(&origin.queue) else {
            return;
        };
        if self.on_do_not_call_list(&origin.caller) {
            tracing::warn!(call, number = %origin.caller, "callback not booked: the number is on the do-not-call list");
            return;
        }
        let id = self.next_call;
        self.next_call += 1;
        let booking = Booking {
            number: origin.caller.clone(),
            queue: origin.queue.clone(),
            requested_by: self.clock.record_id(call),
            requested: self.wall(now),
            place: origin.enqueued_at(),
            caller_id: origin.did.clone(),
        };
        let callback = Callback::new(
            id,
            booking,
            queue.callback_max_attempts,
            queue.callback_retry,
        );
        tracing::info!(callback = id, call, number = %callback.number, queue = %callback.queue, "callback booked");
        self.callbacks.insert(callback);
        self.enqueue_callback(now, id);
    }

    /// The calling window of callback `id` now: its queue's `callback_schedule`, read on the
    /// customer's clock when a campaign contact names a zone (`None`: the queue has no
    /// `callback_schedule`).
    fn calling_window(&self, now: Instant, id: CallNumber) -> Option<window::Window> {
        let callback = self.callbacks.get(id)?;
        let name = self
            .config
            .queue(&callback.queue)?
            .callback_schedule
            .as_ref()?;
        let schedule = self.config.schedules.iter().find(|s| &s.name == name)?;
        let zone = callback
            .campaign
            .as_ref()
            .and_then(|o| o.time_zone.as_ref());
        let unix = i64::try_from(self.unix_now(now)).unwrap_or(i64::MAX);
        Some(window::at(
            &super::campaign::local_window::in_zone(&schedule.schedule, zone),
            unix,
        ))
    }

    /// The instant `unix` (seconds since the epoch) falls on, on the monotonic clock.
    pub(super) fn instant_of(&self, now: Instant, unix: i64) -> Instant {
        let ahead = unix.saturating_sub(i64::try_from(self.unix_now(now)).unwrap_or(i64::MAX));
        now + std::time::Duration::from_secs(u64::try_from(ahead).unwrap_or(0))
    }

    /// Puts a callback (back) in its queue at the caller's place, when its queue's calling
    /// window is open; otherwise it waits for the opening.
    pub(super) fn enqueue_callback(&mut self, now: Instant, id: CallNumber) {
        let queue = match self.callbacks.get(id) {
            Some(callback) => callback.queue.clone(),
            None => return,
        };
        match self.calling_window(now, id) {
            Some(window::Window::Closed { opens_at: None }) => {
                tracing::warn!(callback = id, %queue, "the calling window never opens: callback cancelled");
                self.finish_callback(now, id, CallbackOutcome::Cancelled, Vec::new());
                return;
            }
            Some(window::Window::Closed {
                opens_at: Some(opens),
            }) => {
                let at = self.instant_of(now, opens);
                if let Some(callback) = self.callbacks.get_mut(id) {
                    tracing::info!(callback = id, %queue, "calling window closed: the callback waits for it to open");
                    callback.stage = Stage::RetryAt(at);
                }
                self.timers
                    .schedule(at, SwitchTimer::CallbackRetry { call: id });
                return;
            }
            Some(window::Window::Open {
                closes_at: Some(closes),
            }) => {
                // Withdrawn at the closing if no agent has taken it by then.
                let at = self.instant_of(now, closes);
                self.timers
                    .schedule(at, SwitchTimer::CallbackRetry { call: id });
            }
            Some(window::Window::Open { closes_at: None }) | None => {}
        }
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        callback.stage = Stage::Waiting;
        let request = acd::CallRequest {
            id: acd::CallId(id),
            queue: acd::QueueId::from(callback.queue.as_str()),
            priority: callback.priority,
            preferred_agent: None,
            preferred_wait: None,
            waiting_since: Some(callback.place),
        };
        match self.acd.enqueue(now, request) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => {
                tracing::warn!(callback = id, %error, "callback could not wait in its queue");
                self.finish_callback(now, id, CallbackOutcome::Cancelled, Vec::new());
            }
        }
    }

    /// Whether call number `id` is a callback (its ACD actions come here).
    pub(super) fn is_callback(&self, id: CallNumber) -> bool {
        self.callbacks.contains(id)
    }

    /// The ACD gave up on a waiting callback (its queue's max wait passed): it waits again,
    /// now from the back, rather than being lost. A queue that refuses it ends it.
    pub(super) fn callback_left_queue(&mut self, now: Instant, id: CallNumber, rejected: bool) {
        if rejected {
            self.finish_callback(now, id, CallbackOutcome::Cancelled, Vec::new());
            return;
        }
        if let Some(callback) = self.callbacks.get_mut(id) {
            callback.place = now;
        }
        self.enqueue_callback(now, id);
    }

    /// The ACD chose `agent` for callback `id`: reserve them and ring their phone with the
    /// preview.
    pub(super) fn preview_callback(
        &mut self,
        now: Instant,
        id: CallNumber,
        agent: AgentId,
    ) -> Vec<acd::Action> {
        let Some((uri, peer, path, sip_user)) = self.agent_contact(now, &agent) else {
            tracing::info!(callback = id, agent = %agent, "agent for the callback has no registered phone");
            return self
                .acd
                .offer_failed(now, acd::CallId(id), OfferFailure::Unreachable)
                .unwrap_or_default();
        };
        let (media, offer) = match self.media.anchor_offerless() {
            Ok(anchored) => anchored,
            Err(error) => {
                tracing::warn!(callback = id, %error, "no media ports for the callback");
                return self
                    .acd
                    .offer_failed(now, acd::CallId(id), OfferFailure::Unreachable)
                    .unwrap_or_default();
            }
        };
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let local_host = self.local_names.host_port(peer.transport).to_owned();
        let Some(callback) = self.callbacks.get_mut(id) else {
            self.media.finish(id, media);
            return Vec::new();
        };
        let agent_host = sip::headers::uri_host_port(uri.to_string().as_str())
            .unwrap_or("invalid")
            .to_owned();
        let call_id = format!("{}-cb@switchboard", self.ids.tag());
        let mut headers = Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for hop in &path {
            push_header(&mut headers, "Route", hop.clone());
        }
        // The phone's display shows whom the agent is about to call back.
        let display = match &callback.campaign {
            Some(origin) => format!("campaign {} {}", origin.name, callback.number),
            None => format!("callback {}", callback.number),
        };
        let from = format!(
            "\"{display}\" <sip:{}@{local_host}>;tag={}",
            callback.number,
            self.ids.tag()
        );
        if callback.campaign.as_ref().is_some_and(|o| o.progressive) {
            // Progressive: the reserved agent's phone answers by itself, then the customer
            // is dialled (the two header forms phones understand).
            push_header(
                &mut headers,
                "Call-Info",
                format!("<sip:{local_host}>;answer-after=0"),
            );
            push_header(
                &mut headers,
                "Alert-Info",
                "<http://127.0.0.1/>;info=alert-autoanswer",
            );
        }
        headers.push(Header::From(rsip::headers::From::new(from)));
        headers.push(Header::To(rsip::headers::To::new(format!(
            "<sip:{sip_user}@{agent_host}>"
        ))));
        headers.push(Header::CallId(rsip::headers::CallId::new(call_id)));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        push_header(&mut headers, "Allow", super::ALLOW);
        push_header(&mut headers, "X-Switchboard-Call", id.to_string());
        push_header(&mut headers, "X-Switchboard-Queue", callback.queue.clone());
        push_header(
            &mut headers,
            "X-Switchboard-Callback",
            callback.number.clone(),
        );
        push_header(&mut headers, "Content-Type", "application/sdp");
        let invite = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body: offer,
        };
        callback.invites += 1;
        let seq = callback.invites;
        callback.stage = Stage::Preview {
            agent: agent.clone(),
        };
        callback.media = Some(media);
        tracing::info!(callback = id, agent = %agent, %peer, "callback previewed to agent");
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::CallbackInvite { call: id, seq },
        );
        if let Some(callback) = self.callbacks.get_mut(id) {
            callback.agent_leg = Some(OutgoingLeg {
                uac: UacLeg::calling(invite, client_key, peer, now),
                seq,
                trunk: None,
                authenticated: false,
            });
        }
        self.timers.schedule(
            now + self.config.sip.ring_timeout,
            SwitchTimer::CallbackRing { call: id, seq },
        );
        Vec::new()
    }

    /// Where an agent's phone is registered: its contact URI, the flow to send to, the Path
    /// to keep and the agent's SIP user.
    fn agent_contact(
        &self,
        now: Instant,
        agent: &AgentId,
    ) -> Option<(rsip::Uri, Peer, Vec<String>, String)> {
        let entry = self.agents_by_id.get(agent)?;
        let binding = self
            .registrar
            .bindings(now, &entry.sip_user)
            .into_iter()
            .next()?;
        let uri = binding.contact_uri.clone()?;
        Some((uri, binding.source, binding.path, entry.sip_user.clone()))
    }

    /// The phone or carrier rung by INVITE `seq` of callback `id` alerts.
    pub(super) fn on_callback_alerting(&mut self, id: CallNumber, seq: u32) {
        if let Some(leg) = self.callback_leg_mut(id, seq) {
            leg.uac.alerting();
        }
    }

    /// A 2xx after a callback leg's answer, when it is a callback's.
    pub(super) fn late_2xx_of_callback(&self, response: &Response) -> Option<Late2xx> {
        let call_id = call_id_of(&response.headers)?;
        let callback = self
            .callbacks
            .get(self.callbacks.by_leg_call_id(call_id)?)?;
        [callback.agent_leg.as_ref(), callback.customer_leg.as_ref()]
            .into_iter()
            .flatten()
            .find(|leg| leg.call_id() == call_id)
            .map(|leg| leg.uac.late_2xx(response))
    }

    fn callback_leg_mut(&mut self, id: CallNumber, seq: u32) -> Option<&mut OutgoingLeg> {
        let callback = self.callbacks.get_mut(id)?;
        [callback.agent_leg.as_mut(), callback.customer_leg.as_mut()]
            .into_iter()
            .flatten()
            .find(|leg| leg.seq == seq)
    }

    /// A provisional response leaves everything as it is; a final one to INVITE `seq` of
    /// callback `id` moves it on.
    pub(super) fn on_callback_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        seq: u32,
        response: Response,
        source: Peer,
    ) {
        let code = response.status_code.code();
        let Some(callback) = self.callbacks.get(id) else {
            if (200..300).contains(&code) {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        };
        let agent_side = callback.agent_leg.as_ref().is_some_and(|l| l.seq == seq);
        let customer_side = callback.customer_leg.as_ref().is_some_and(|l| l.seq == seq);
        let waiting_for_answer = match (agent_side, customer_side) {
            (true, _) => matches!(callback.stage, Stage::Preview { .. }),
            (_, true) => matches!(callback.stage, Stage::Dialling { .. }),
            _ => false,
        };
        if !waiting_for_answer {
            if (200..300).contains(&code) {
                self.hang_up_orphan(now, &response, source);
            }
            return;
        }
        match ((200..300).contains(&code), agent_side) {
            (true, true) => self.callback_accepted(now, id, response, source),
            (false, true) => {
                tracing::info!(callback = id, code, "agent did not accept the callback");
                let why = match code {
                    486 | 600 => OfferFailure::Busy,
                    408 => OfferFailure::NoAnswer,
                    488 | 606 => OfferFailure::Incompatible,
                    _ => OfferFailure::Rejected,
                };
                self.preview_failed(now, id, why);
            }
            (true, false) => self.customer_answered(now, id, response, source),
            (false, false)
                if matches!(code, 401 | 407)
                    && self.answer_customer_challenge(now, id, &response) => {}
            (false, false) => self.customer_refused(now, id, code),
        }
    }

    /// A callback INVITE got no answer at all (transaction timeout).
    pub(super) fn on_callback_timeout(&mut self, now: Instant, id: CallNumber, seq: u32) {
        self.on_callback_response_missing(now, id, seq);
    }

    /// The ring timer of INVITE `seq` fired: the agent did not accept the preview, or the
    /// customer did not answer.
    pub(super) fn callback_ring_timeout(&mut self, now: Instant, id: CallNumber, seq: u32) {
        self.on_callback_response_missing(now, id, seq);
    }

    fn on_callback_response_missing(&mut self, now: Instant, id: CallNumber, seq: u32) {
        let Some(callback) = self.callbacks.get(id) else {
            return;
        };
        let previewing = matches!(callback.stage, Stage::Preview { .. })
            && callback.agent_leg.as_ref().is_some_and(|l| l.seq == seq);
        let dialling = matches!(callback.stage, Stage::Dialling { .. })
            && callback.customer_leg.as_ref().is_some_and(|l| l.seq == seq);
        if previewing {
            tracing::info!(callback = id, "agent did not accept the callback in time");
            self.preview_failed(now, id, OfferFailure::NoAnswer);
        } else if dialling {
            tracing::info!(callback = id, "customer did not answer the callback");
            self.attempt_over(now, id, CallbackResult::NoAnswer, Some(408));
        }
    }

    /// The preview was not accepted: the agent is released and the callback waits again.
    fn preview_failed(&mut self, now: Instant, id: CallNumber, why: OfferFailure) {
        self.drop_callback_legs(now, id);
        if let Some(callback) = self.callbacks.get_mut(id) {
            callback.stage = Stage::Waiting;
        }
        match self.acd.offer_failed(now, acd::CallId(id), why) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(callback = id, %error, "offer failure refused by ACD"),
        }
    }

    /// The agent answered the preview: ACK, fix the media with their answer, mark them on
    /// the call in the ACD, and dial the customer.
    fn callback_accepted(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: Response,
        source: Peer,
    ) {
        let via = self.via(source);
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let Some(leg) = callback.agent_leg.as_mut() else {
            return;
        };
        let ack = match leg.uac.answer(now, &response, source, &via) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(callback = id, %error, "agent 2xx unusable");
                return;
            }
        };
        let fitted = match callback.media.as_mut() {
            Some(media) => self.media.offer_answered(media, &response.body),
            None => Ok(()),
        };
        self.send_stateless_request(ack, source);
        if let Err(error) = fitted {
            tracing::info!(callback = id, %error, "agent's SDP answer refused");
            self.preview_failed(now, id, OfferFailure::Incompatible);
            return;
        }
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let Stage::Preview { agent } = callback.stage.clone() else {
            return;
        };
        tracing::info!(callback = id, agent = %agent, "agent accepted the callback");
        callback.stage = Stage::Dialling { agent };
        if callback.campaign.is_some() {
            // A contact being dialled counts an attempt if the node dies now.
            self.campaigns.changed();
        }
        match self.acd.answered(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(callback = id, %error, "answered refused by ACD"),
        }
        let number = self
            .callbacks
            .get(id)
            .map(|c| c.number.clone())
            .unwrap_or_default();
        if !self.may_dial(id) {
            tracing::warn!(callback = id, %number, "on the do-not-call list: not dialled");
            self.attempt_over(now, id, CallbackResult::Failed, None);
            return;
        }
        let routed = route::is_dialable(&number)
            .then(|| route::find(&self.config.routes, &number))
            .flatten();
        let Some(found) = routed else {
            tracing::warn!(callback = id, %number, "no route to call the customer back");
            self.attempt_over(now, id, CallbackResult::Failed, Some(404));
            return;
        };
        let trunks = found.trunks.clone();
        if let Some(callback) = self.callbacks.get_mut(id) {
            callback.trunks = trunks;
            callback.next_trunk = 0;
            callback.dialled_at = Some(now);
        }
        self.dial_customer(now, id, 503);
    }

    /// Sends the customer's INVITE to the next trunk of the route; when none is left the
    /// attempt failed with `status`.
    fn dial_customer(&mut self, now: Instant, id: CallNumber, status: u16) {
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let Some(trunk) = callback.trunks.get(callback.next_trunk).cloned() else {
            self.attempt_over(now, id, CallbackResult::Failed, Some(status));
            return;
        };
        callback.next_trunk += 1;
        let number = callback.number.clone();
        let gateway = self
            .config
            .trunks
            .iter()
            .find(|t| t.name == trunk)
            .and_then(|t| t.gateway.as_ref())
            .map(|g| (g.address, g.transport));
        let found = route::find(&self.config.routes, &number);
        let (Some((address, transport)), Some(found)) = (gateway, found) else {
            self.dial_customer(now, id, status);
            return;
        };
        let sent = route::normalise(found, &number);
        let route_caller_id = found.caller_id.clone();
        let peer = super::outbound::gateway_peer(address, transport);
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let local_host = self.local_names.host_port(peer.transport).to_owned();
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let caller_id = route_caller_id.unwrap_or_else(|| callback.caller_id.clone());
        let uri_text = format!("sip:{sent}@{address}");
        let Ok(uri) = rsip::Uri::try_from(uri_text.as_str()) else {
            self.attempt_over(now, id, CallbackResult::Failed, Some(404));
            return;
        };
        let mut headers = Headers::default();
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        let caller = format!("<sip:{caller_id}@{local_host}>");
        headers.push(Header::From(rsip::headers::From::new(format!(
            "{caller};tag={}",
            self.ids.tag()
        ))));
        headers.push(Header::To(rsip::headers::To::new(format!("<{uri_text}>"))));
        headers.push(Header::CallId(rsip::headers::CallId::new(format!(
            "{}-cbout@switchboard",
            self.ids.tag()
        ))));
        headers.push(Header::CSeq(rsip::headers::CSeq::new("1 INVITE")));
        headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        push_header(&mut headers, "Allow", super::ALLOW);
        push_header(&mut headers, "P-Asserted-Identity", caller);
        let body = callback
            .media
            .as_ref()
            .map(|m| m.agent_offer.clone())
            .unwrap_or_default();
        if !body.is_empty() {
            push_header(&mut headers, "Content-Type", "application/sdp");
        }
        let invite = Request {
            method: Method::Invite,
            uri,
            version: rsip::Version::V2,
            headers,
            body,
        };
        callback.invites += 1;
        let seq = callback.invites;
        tracing::info!(callback = id, %trunk, %address, "callback: dialling the customer");
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::CallbackInvite { call: id, seq },
        );
        if let Some(callback) = self.callbacks.get_mut(id) {
            callback.customer_leg = Some(OutgoingLeg {
                uac: UacLeg::calling(invite, client_key, peer, now),
                seq,
                trunk: Some(trunk),
                authenticated: false,
            });
        }
        self.timers.schedule(
            now + self.config.sip.ring_timeout,
            SwitchTimer::CallbackRing { call: id, seq },
        );
    }

    /// The customer answered: ACK and bridge them to the agent.
    fn customer_answered(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: Response,
        source: Peer,
    ) {
        let via = self.via(source);
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let Some(leg) = callback.customer_leg.as_mut() else {
            return;
        };
        let ack = match leg.uac.answer(now, &response, source, &via) {
            Ok(ack) => ack,
            Err(error) => {
                tracing::warn!(callback = id, %error, "customer 2xx unusable");
                return;
            }
        };
        let bridged = match callback.media.as_mut() {
            Some(media) => self
                .media
                .agent_answered_bridge(now, id, media, &response.body),
            None => Ok(()),
        };
        self.send_stateless_request(ack, source);
        if let Err(error) = bridged {
            tracing::info!(callback = id, %error, "customer's SDP answer refused");
            self.attempt_over(now, id, CallbackResult::Failed, Some(488));
            return;
        }
        let dialled_at = self
            .callbacks
            .get(id)
            .and_then(|c| c.dialled_at)
            .unwrap_or(now);
        let at = self.wall(dialled_at);
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let Stage::Dialling { agent } = callback.stage.clone() else {
            return;
        };
        tracing::info!(callback = id, agent = %agent, "callback connected");
        let trunk = leg_trunk(callback);
        callback.attempts.push(CallbackAttempt {
            at,
            agent: agent.to_string(),
            trunk,
            result: CallbackResult::Answered,
            sip_cause: None,
        });
        callback.stage = Stage::Connected { agent };
    }

    /// The carrier challenged the customer's INVITE: it goes again with the trunk's
    /// credentials, once per leg (same `seq`, so the ring timer and the answer still match).
    /// `false` when there are none or they were already refused.
    fn answer_customer_challenge(
        &mut self,
        now: Instant,
        id: CallNumber,
        response: &Response,
    ) -> bool {
        let Some(leg) = self.callbacks.get(id).and_then(|c| c.customer_leg.as_ref()) else {
            return false;
        };
        if leg.authenticated {
            return false;
        }
        let (peer, seq) = (leg.uac.peer, leg.seq);
        let trunk = leg.trunk.clone().unwrap_or_default();
        let Some(invite) = self.answer_trunk_challenge(&trunk, &leg.uac.invite, peer, response)
        else {
            return false;
        };
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::CallbackInvite { call: id, seq },
        );
        if let Some(leg) = self
            .callbacks
            .get_mut(id)
            .and_then(|c| c.customer_leg.as_mut())
        {
            leg.uac.resent(invite, client_key);
            leg.authenticated = true;
        }
        tracing::info!(callback = id, %trunk, "answered the carrier's digest challenge");
        true
    }

    /// The carrier refused the customer's INVITE: another trunk, or the attempt is over.
    fn customer_refused(&mut self, now: Instant, id: CallNumber, code: u16) {
        tracing::info!(callback = id, code, "carrier refused the callback");
        if BUSY_STATUSES.contains(&code) {
            self.attempt_over(now, id, CallbackResult::Busy, Some(code));
        } else if NO_ANSWER_STATUSES.contains(&code) {
            self.attempt_over(now, id, CallbackResult::NoAnswer, Some(code));
        } else if WRONG_NUMBER_STATUSES.contains(&code) {
            self.attempt_over(now, id, CallbackResult::WrongNumber, Some(code));
        } else if FINAL_STATUSES.contains(&code) || code >= 600 {
            self.attempt_over(now, id, CallbackResult::Failed, Some(code));
        } else {
            if let Some(callback) = self.callbacks.get_mut(id) {
                callback.customer_leg = None;
            }
            self.dial_customer(now, id, code);
        }
    }

    /// The attempt did not reach the customer: both legs are dropped, the agent released,
    /// and the callback either waits for its retry or is given up.
    fn attempt_over(
        &mut self,
        now: Instant,
        id: CallNumber,
        result: CallbackResult,
        sip_cause: Option<u16>,
    ) {
        let wall_now = self.wall(now);
        let Some(callback) = self.callbacks.get(id) else {
            return;
        };
        let agent = callback
            .stage
            .agent()
            .map(ToString::to_string)
            .unwrap_or_default();
        let attempt = CallbackAttempt {
            at: callback.dialled_at.map_or(wall_now, |at| self.wall(at)),
            agent,
            trunk: leg_trunk(callback),
            result,
            sip_cause,
        };
        self.drop_callback_legs(now, id);
        match self.acd.hangup(now, acd::CallId(id)) {
            Ok(actions) => self.apply_acd(now, actions),
            Err(error) => tracing::debug!(callback = id, %error, "hangup refused by ACD"),
        }
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        callback.dialled_at = None;
        let after = callback.attempt_failed(now, attempt);
        self.callbacks.touch(id);
        match after {
            AfterFailure::RetryAt(at) => {
                tracing::info!(
                    callback = id,
                    ?result,
                    "callback attempt failed: will retry"
                );
                self.timers
                    .schedule(at, SwitchTimer::CallbackRetry { call: id });
            }
            AfterFailure::GiveUp => {
                tracing::info!(callback = id, ?result, "callback given up");
                self.finish_callback(now, id, CallbackOutcome::NotReached, Vec::new());
            }
        }
    }

    /// A callback's retry time (or its calling window's opening) has come: it waits in its
    /// queue again. Or its window closed while it waited: it leaves the queue until the next
    /// opening.
    pub(super) fn callback_retry_due(&mut self, now: Instant, id: CallNumber) {
        let Some(callback) = self.callbacks.get(id) else {
            return;
        };
        match callback.stage {
            Stage::RetryAt(at) if at <= now => self.enqueue_callback(now, id),
            Stage::Waiting => {
                let queue = callback.queue.clone();
                let closed = matches!(
                    self.calling_window(now, id),
                    Some(window::Window::Closed { .. })
                );
                if closed {
                    tracing::info!(callback = id, %queue, "calling window closed: callback leaves the queue until it opens");
                    if let Ok(actions) = self.acd.abandon(now, acd::CallId(id)) {
                        self.apply_acd(now, actions);
                    }
                    self.enqueue_callback(now, id);
                }
            }
            _ => {}
        }
    }

    /// Hangs up or cancels whatever legs the callback has and frees its media.
    fn drop_callback_legs(&mut self, now: Instant, id: CallNumber) {
        let Some(callback) = self.callbacks.get_mut(id) else {
            return;
        };
        let legs: Vec<OutgoingLeg> = [callback.agent_leg.take(), callback.customer_leg.take()]
            .into_iter()
            .flatten()
            .collect();
        let media = callback.media.take();
        for leg in legs {
            let ending = leg.uac.end(|peer| self.via(peer), None);
            self.end_uac_leg(now, ending);
        }
        if let Some(media) = media {
            self.media.finish(id, media);
        }
    }

    /// A request inside a callback's dialogs; handed back when it belongs to none.
    pub(super) fn on_callback_in_dialog(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) -> Option<(TransactionKey, Request)> {
        let Some(id) = call_id_of(&request.headers).and_then(|c| self.callbacks.by_leg_call_id(c))
        else {
            return Some((key, request));
        };
        let ours = to_tag(&request.headers).map(str::to_owned);
        let in_order = self.callbacks.get_mut(id).is_some_and(|callback| {
            [callback.agent_leg.as_mut(), callback.customer_leg.as_mut()]
                .into_iter()
                .flatten()
                .filter_map(|leg| leg.uac.dialog_mut())
                .find(|d| Some(d.local_tag.as_str()) == ours.as_deref())
                .is_some_and(|d| d.accept_remote_cseq(&request))
        });
        if !in_order {
            self.reply_error(now, &key, &request, 481, "no such dialog");
            return None;
        }
        let agent_side = self
            .callbacks
            .get(id)
            .and_then(|c| c.agent_leg.as_ref())
            .is_some_and(|l| Some(l.call_id()) == call_id_of(&request.headers));
        if request.method != Method::Bye {
            self.reply_error(
                now,
                &key,
                &request,
                488,
                "mid-call changes are not taken on a callback",
            );
            return None;
        }
        let ok = response_to(&request, 200, None);
        let connected = self
            .callbacks
            .get(id)
            .is_some_and(|c| matches!(c.stage, Stage::Connected { .. }));
        if connected {
            let side = if agent_side {
                HangupSide::Agent
            } else {
                HangupSide::Caller
            };
            tracing::info!(callback = id, ?side, "callback call ended");
            if let Some(callback) = self.callbacks.get_mut(id) {
                // The side that hung up needs no BYE.
                if agent_side {
                    callback.agent_leg = None;
                } else {
                    callback.customer_leg = None;
                }
            }
            self.drop_callback_legs(now, id);
            match self.acd.hangup(now, acd::CallId(id)) {
                Ok(actions) => self.apply_acd(now, actions),
                Err(error) => tracing::debug!(callback = id, %error, "hangup refused by ACD"),
            }
            self.finish_callback(now, id, CallbackOutcome::Connected, vec![(key, ok)]);
        } else {
            // The agent put the phone down while the customer was still being dialled.
            tracing::info!(callback = id, "agent hung up before the customer answered");
            if let Some(callback) = self.callbacks.get_mut(id) {
                callback.agent_leg = None;
            }
            self.send_response(now, &key, ok);
            self.attempt_over(now, id, CallbackResult::NoAnswer, None);
        }
        None
    }

    /// No RTP within the media timeout on a connected callback: both legs are hung up.
    /// `false` when `id` is no callback.
    pub(super) fn callback_media_timeout(&mut self, now: Instant, id: CallNumber) -> bool {
        if !self.callbacks.contains(id) {
            return false;
        }
        tracing::info!(
            callback = id,
            "no RTP on the callback within the media timeout"
        );
        self.metrics.media_timeouts.inc();
        self.drop_callback_legs(now, id);
        if let Ok(actions) = self.acd.hangup(now, acd::CallId(id)) {
            self.apply_acd(now, actions);
        }
        self.finish_callback(now, id, CallbackOutcome::Connected, Vec::new());
        true
    }

    /// Shutdown: a connected callback ends now; one being previewed or dialled drops its
    /// legs. Callers' callbacks not yet made stay in the journal for the next start.
    pub(super) fn end_callbacks(&mut self, now: Instant) {
        for id in self.callbacks.ids() {
            let connected = self
                .callbacks
                .get(id)
                .is_some_and(|c| matches!(c.stage, Stage::Connected { .. }));
            self.drop_callback_legs(now, id);
            if connected {
                self.finish_callback(now, id, CallbackOutcome::Connected, Vec::new());
            }
        }
    }

    /// The callers' pending callbacks to journal, when they changed since the last call.
    pub fn poll_callback_journal(&mut self, now: Instant) -> Option<Vec<PendingCallback>> {
        self.callbacks
            .take_journal(|place| now.saturating_duration_since(place).as_secs())
    }

    /// Books again the callbacks a previous run journalled: each waits in its queue as if its
    /// caller had been waiting since then. A queue that is gone drops its callbacks (logged).
    pub fn restore_callbacks(&mut self, now: Instant, pending: Vec<PendingCallback>) {
        for saved in pending {
            let Some(queue) = self.config.queue(&saved.queue) else {
                tracing::warn!(number = %saved.number, queue = %saved.queue, "journalled callback dropped: its queue is gone");
                continue;
            };
            let (max_attempts, retry) = (queue.callback_max_attempts, queue.callback_retry);
            let id = self.next_call;
            self.next_call += 1;
            let booking = Booking {
                number: saved.number,
                queue: saved.queue,
                requested_by: saved.requested_by,
                requested: time::OffsetDateTime::from_unix_timestamp(saved.requested_unix)
                    .unwrap_or_else(|_| self.wall(now)),
                place: now
                    .checked_sub(std::time::Duration::from_secs(saved.waited_s))
                    .unwrap_or(now),
                caller_id: saved.caller_id,
            };
            let mut callback = Callback::new(id, booking, max_attempts, retry);
            callback.attempts = saved.attempts;
            tracing::info!(callback = id, number = %callback.number, "journalled callback restored");
            self.callbacks.insert(callback);
            self.enqueue_callback(now, id);
        }
    }

    /// Pending and recently finished callbacks, for `GET /api/callbacks`.
    pub fn callbacks(&self, now: Instant) -> Vec<CallbackView> {
        self.callbacks.views(now)
    }

    /// The callback is over: its record is written (the `held` responses go out once it is
    /// durable) and it moves to the finished list.
    pub(super) fn finish_callback(
        &mut self,
        now: Instant,
        id: CallNumber,
        outcome: CallbackOutcome,
        held: Vec<(TransactionKey, Response)>,
    ) {
        let Some(callback) = self.callbacks.finish(now, id, outcome) else {
            return;
        };
        if let Some(origin) = &callback.campaign {
            let result = callback.attempts.last().map(|a| a.result);
            self.campaign_attempt_ended(now, id, origin, result);
        }
        if let Some(media) = callback.media {
            self.media.finish(id, media);
        }
        self.metrics
            .outbound_calls
            .with_label_values(&[match outcome {
                CallbackOutcome::Connected => "callback-connected",
                CallbackOutcome::NotReached => "callback-not-reached",
                CallbackOutcome::Cancelled => "callback-cancelled",
            }])
            .inc();
        let answered = callback
            .attempts
            .iter()
            .find(|a| a.result == CallbackResult::Answered)
            .map(|a| a.at);
        let last = callback.attempts.last();
        let legs = callback
            .attempts
            .iter()
            .map(|attempt| Leg {
                role: LegRole::Trunk,
                call_id: String::new(),
                peer: attempt.trunk.clone().unwrap_or_default(),
                party: attempt.trunk.clone(),
                queue: None,
                started: attempt.at,
                answered: (attempt.result == CallbackResult::Answered).then_some(attempt.at),
                ended: self.wall(now),
                sip_cause: attempt.sip_cause,
            })
            .collect();
        let record = CallRecord {
            seq: 0,
            id: self.clock.record_id(id),
            trunk_call_id: String::new(),
            arrived: callback.requested,
            ivr_ended: None,
            enqueued: Some(callback.requested),
            offered: callback.attempts.first().map(|a| a.at),
            answered,
            ended: self.wall(now),
            caller: callback.caller_id.clone(),
            did: callback.number.clone(),
            ivr_path: Vec::new(),
            language: None,
            queue: Some(callback.queue.clone()),
            agent: last.map(|a| a.agent.clone()).filter(|a| !a.is_empty()),
            priority: 0,
            label: None,
            customer_name: None,
            preferred_agent: None,
            preferred_agent_taken: false,
            wait_s: 0.0,
            ring_s: 0.0,
            talk_s: answered.map_or(0.0, |at| (self.wall(now) - at).as_seconds_f64().max(0.0)),
            hold_s: 0.0,
            wrap_up_s: 0.0,
            disposition: if outcome == CallbackOutcome::Connected {
                Disposition::Answered
            } else {
                Disposition::Rejected
            },
            hangup_side: HangupSide::System,
            sip_cause: last.and_then(|a| a.sip_cause),
            transfers: Vec::new(),
            survey_score: None,
            recording: None,
            legs,
            supervisions: Vec::new(),
            conference: None,
            service_level_threshold_s: 0.0,
            direction: Direction::Outbound,
            outbound: None,
            callback: Some(cdr::Callback {
                number: callback.number.clone(),
                queue: callback.queue.clone(),
                requested_by: callback.requested_by.clone(),
                requested: callback.requested,
                attempts: callback.attempts.clone(),
                outcome,
                campaign: callback.campaign.as_ref().map(|o| o.name.clone()),
            }),
        };
        if !held.is_empty() {
            self.held_responses.insert(id, held);
        }
        self.cdr_out.push_back((Record::Call(record), id));
    }
}

/// The trunk of the customer leg in flight, if any.
fn leg_trunk(callback: &Callback) -> Option<String> {
    callback
        .customer_leg
        .as_ref()
        .and_then(|leg| leg.trunk.clone())
}
