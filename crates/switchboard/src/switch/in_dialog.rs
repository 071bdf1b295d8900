//! Requests inside a call's dialogs: which leg they belong to, what Switchboard answers itself
//! (BYE, re-INVITE/UPDATE on anchored calls, key presses) and what is relayed to the other leg.

use super::b2bua::EndCause;
use super::call::{Call, CallNumber, Phase};
use super::{ClientPurpose, Switch};
use sip::dialog::{copy_body, Dialog};
use sip::headers::{call_id_of, cseq_of, header_value, to_tag};
use sip::message::{push_header, response_to};
use sip::rsip::{Method, Request, Response};
use sip::transaction::TransactionKey;
use sip::Peer;
use std::time::Instant;

/// How long a key press lasts when an INFO does not say.
const DEFAULT_KEY_PRESS_MS: u32 = 100;

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

    pub(super) fn relay_response_back(
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
}

/// The dialog of one side of a call (the agent side has one only once answered).
fn leg_dialog(call: &mut Call, side: Side) -> Option<&mut Dialog> {
    match side {
        Side::Trunk => Some(&mut call.trunk_leg.dialog),
        Side::Agent => call.agent_leg.as_mut().and_then(|l| l.dialog.as_mut()),
    }
}
