//! Requests inside a call's dialogs, the switch's part: which call and leg they belong to (the
//! call then decides what they mean, `call/dialog_requests.rs`), renegotiating a leg's
//! anchored media, and relaying to the other leg and back.

use super::call::{CallInput, CallNumber, Side};
use super::{ClientPurpose, Switch};
use sip::dialog::copy_body;
use sip::headers::{call_id_of, cseq_of, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Request, Response};
use sip::transaction::TransactionKey;
use std::time::Instant;

impl Switch {
    /// Which call and leg a request inside a dialog belongs to, checking our tag.
    fn locate(&self, request: &Request) -> Option<(CallNumber, Side)> {
        let call_id = call_id_of(&request.headers)?;
        let our_tag = to_tag(&request.headers)?;
        if let Some(id) = self.calls.by_agent_call_id(call_id) {
            let leg = self.calls.get(&id)?.agent_leg.as_ref()?;
            let dialog = leg.uac.dialog()?;
            return (dialog.local_tag == our_tag).then_some((id, Side::Agent));
        }
        let id = self.calls.by_trunk_call_id(call_id)?;
        let call = self.calls.get(&id)?;
        (call.trunk_leg.local_tag == our_tag).then_some((id, Side::Trunk))
    }

    /// A request inside a dialog: the dialog of a supervisor, a call out or a callback takes
    /// it first; else the call whose dialog it is on (either side) handles it.
    pub(super) fn on_in_dialog_request(
        &mut self,
        now: Instant,
        key: TransactionKey,
        request: Request,
    ) {
        let Some((key, request)) = self.on_monitor_request(now, key, request) else {
            return;
        };
        let Some((key, request)) = self.on_outbound_in_dialog(now, key, request) else {
            return;
        };
        let Some((key, request)) = self.on_callback_in_dialog(now, key, request) else {
            return;
        };
        let Some((id, side)) = self.locate(&request) else {
            self.reply_error(now, &key, &request, 481, "no such dialog");
            return;
        };
        let survey = match (side, &request.method) {
            (Side::Agent, Method::Bye) => self.survey_plan(id),
            _ => None,
        };
        let input = CallInput::Request {
            side,
            key,
            request: Box::new(request),
            survey,
        };
        self.call_input(now, id, input);
    }

    /// A re-INVITE or UPDATE on an anchored call: each leg negotiates with Switchboard, so
    /// the offer is answered here and only the media session learns the leg's new address.
    /// One without an offer is a session refresh: an UPDATE gets a bare 200, a re-INVITE the
    /// SDP already agreed on that leg as the offer (its answer comes in the ACK, RFC 3261
    /// §14.2). A leg putting the call on hold gets music played to the other one.
    pub(super) fn answer_reoffer(
        &mut self,
        now: Instant,
        id: CallNumber,
        side: Side,
        key: TransactionKey,
        request: Request,
    ) {
        if side == Side::Trunk {
            if let Some(refusal) = self.session_timer_refusal(&request) {
                self.refuse(now, &key, &request, &refusal);
                return;
            }
        }
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(dialog) = call.leg_dialog(side) else {
            return;
        };
        dialog.refresh_target(&request.headers);
        let transport = dialog.peer.transport;
        let leg = side.media_leg();
        let Some(call_media) = call.media.as_mut() else {
            return;
        };
        let body = if request.body.is_empty() {
            if request.method == Method::Invite {
                // The answer to this offer arrives in the ACK.
                call_media.ack_answer_due = Some(leg);
                call_media.sdp_mut(leg).last().map(<[u8]>::to_vec)
            } else {
                None
            }
        } else {
            let was_holding = call_media.holding(leg);
            let outcome = self
                .media
                .answer_leg_reoffer(id, call_media, leg, &request.body);
            let (config, answer) = match outcome {
                Ok((config, _, answer)) => (config, answer),
                Err(error) => {
                    let status = error.sip_status();
                    self.reply_error(now, &key, &request, status, &error.to_string());
                    return;
                }
            };
            self.leg_media_changed(now, id, leg, config, was_holding);
            Some(answer)
        };
        let mut ok = response_to(&request, 200, None);
        push_header(&mut ok.headers, "Contact", self.contact(transport));
        if let Some(body) = body {
            push_header(&mut ok.headers, "Content-Type", "application/sdp");
            ok.body = body;
        }
        if side == Side::Trunk {
            let negotiated = self.session_timer_requested(&request);
            self.session_timer_answer(now, id, negotiated, &mut ok);
        }
        self.send_response(now, &key, ok);
    }

    /// An ACK inside a call's dialog that carries the answer to the SDP Switchboard offered
    /// again in its 200 to a re-INVITE without an offer.
    pub(super) fn on_reoffer_ack(&mut self, now: Instant, request: &Request) {
        let Some((id, side)) = self.locate(request) else {
            return;
        };
        let leg = side.media_leg();
        let Some(media) = self.calls.get_mut(&id).and_then(|c| c.media.as_mut()) else {
            return;
        };
        if media.ack_answer_due != Some(leg) {
            return;
        }
        media.ack_answer_due = None;
        if request.body.is_empty() {
            // RFC 3261 §14.2 requires the answer here; keep the media as it was.
            tracing::info!(
                call = id,
                ?leg,
                "ACK without the answer to a re-offer: media unchanged"
            );
            return;
        }
        self.leg_answered_again(now, id, leg, &request.body);
    }

    /// A leg answered an SDP Switchboard offered again on it (a refresh): applies the answer.
    pub(super) fn leg_answered_again(
        &mut self,
        now: Instant,
        id: CallNumber,
        leg: media::Leg,
        answer: &[u8],
    ) {
        let Some(media) = self.calls.get_mut(&id).and_then(|c| c.media.as_mut()) else {
            return;
        };
        let was_holding = media.holding(leg);
        match self.media.reoffer_answered(media, leg, answer) {
            Ok((config, _)) => self.leg_media_changed(now, id, leg, config, was_holding),
            Err(error) => {
                tracing::info!(call = id, ?leg, %error, "answer to a re-offer unusable: media unchanged")
            }
        }
    }

    /// A leg's SDP changed (address, codec parameters, direction): the session follows, and
    /// when the leg put the call on hold or took it off, the other party hears music or the
    /// leg again.
    fn leg_media_changed(
        &mut self,
        now: Instant,
        id: CallNumber,
        leg: media::Leg,
        config: media::LegConfig,
        was_holding: bool,
    ) {
        let Some(media) = self.calls.get(&id).and_then(|c| c.media.as_ref()) else {
            return;
        };
        if !media.started {
            return;
        }
        let direction = media.direction(leg);
        let holding = media.holding(leg);
        let anyone_holding = media.holding(media::Leg::Trunk) || media.holding(media::Leg::Agent);
        if let Some(call) = self.calls.get_mut(&id) {
            if call.state.is_connected() {
                call.hold.set(now, anyone_holding || call.api_hold);
            }
        }
        self.media
            .command(id, media::MediaCommand::UpdateLeg { leg, config });
        self.media
            .command(id, media::MediaCommand::Direction { leg, direction });
        if holding != was_holding {
            match leg {
                media::Leg::Agent => self.agent_hold_changed(id, holding),
                media::Leg::Trunk => self.caller_hold_changed(id, holding),
                // No extra leg is negotiated through a dialog yet.
                media::Leg::Extra(_) => {}
            }
        }
    }

    /// Relays a mid-dialog request (re-INVITE, UPDATE, INFO, OPTIONS …) to the other leg.
    pub(super) fn relay(
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
            .and_then(|call| call.leg_dialog(other_side))
            .map(|d| d.peer);
        let (via, contact) = match other_peer {
            Some(peer) => (self.via(peer), self.contact(peer.transport)),
            None => (String::new(), String::new()),
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if matches!(request.method, Method::Invite | Method::Update) {
            if let Some(d) = call.leg_dialog(from) {
                d.refresh_target(&request.headers);
            }
        }
        let other = call.leg_dialog(other_side);
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

    pub(super) fn on_relay_response(
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
                .and_then(|c| c.leg_dialog(side))
                .map(|d| d.peer);
            if let Some(peer) = peer {
                let via = self.via(peer);
                let ack = self
                    .calls
                    .get_mut(&id)
                    .and_then(|c| c.leg_dialog(side))
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
        self.relay_response_back(now, id, original, server_key, toward_agent, &response);
    }

    pub(super) fn relay_response_back(
        &mut self,
        now: Instant,
        id: CallNumber,
        original: &Request,
        server_key: &TransactionKey,
        toward_agent: bool,
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
            // The answer goes back to the leg the request came from, on its transport.
            let from = if toward_agent {
                Side::Trunk
            } else {
                Side::Agent
            };
            let transport = self
                .calls
                .get_mut(&id)
                .and_then(|c| c.leg_dialog(from))
                .map_or(sip::Transport::Udp, |d| d.peer.transport);
            push_header(&mut back.headers, "Contact", self.contact(transport));
        }
        self.send_response(now, server_key, back);
    }
}

/// Whether a message's Allow header admits `method`; no Allow header admits everything
/// (RFC 3261 §20.5: its absence says nothing).
pub(super) fn allows(headers: &sip::rsip::Headers, method: Method) -> bool {
    let listed = sip::headers::list_values(headers, "Allow");
    listed.is_empty() || {
        let name = method.to_string();
        listed.iter().any(|m| m.trim().eq_ignore_ascii_case(&name))
    }
}
