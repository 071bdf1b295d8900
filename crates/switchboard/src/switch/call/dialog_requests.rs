//! Requests inside the call's dialogs, once the switch has found the call and the side they
//! came from: what the call answers itself (out-of-order CSeq, a re-INVITE crossing its own,
//! methods no leg negotiated, key presses) and what it hands to the switch to carry out
//! (relaying to the other leg, renegotiating anchored media, a transfer, a keep-alive).

use super::hangup::SurveyPlan;
use super::{Call, CallOutput, Side};
use crate::switch::in_dialog::allows;
use sip::headers::header_value;
use sip::message::response_to;
use sip::rsip::{Method, Request};
use sip::transaction::TransactionKey;
use std::time::Instant;

/// How long a key press lasts when an INFO does not say.
const DEFAULT_KEY_PRESS_MS: u32 = 100;

/// Why the call turns away a request inside one of its dialogs; each maps to its status here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogRefusal {
    /// The CSeq is not above the last one the leg sent (RFC 3261 §12.2.2).
    #[error("CSeq out of order")]
    CseqOutOfOrder,
    /// The trunk's re-INVITE crossed Switchboard's own (a session refresh): glare, RFC 3261
    /// §14.2.
    #[error("a re-INVITE of ours is pending")]
    ReinviteCrossing,
    /// An INFO toward a party that does not take INFO.
    #[error("the other party of this call does not accept INFO")]
    InfoNotAccepted,
    /// The caller's INFO claims to carry a key press but its body does not parse.
    #[error("bad DTMF INFO: {0}")]
    BadDtmfInfo(String),
    /// A method the other leg never negotiated (MESSAGE, SUBSCRIBE, NOTIFY, PRACK …).
    #[error("{0} is not supported inside a call")]
    NotInsideACall(Method),
}

impl DialogRefusal {
    /// The status the request gets.
    pub fn sip_status(&self) -> u16 {
        match self {
            DialogRefusal::CseqOutOfOrder => 500,
            DialogRefusal::ReinviteCrossing => 491,
            DialogRefusal::InfoNotAccepted => 415,
            DialogRefusal::BadDtmfInfo(_) => 400,
            DialogRefusal::NotInsideACall(_) => 405,
        }
    }
}

impl Call {
    /// `request` arrived inside the dialog on `side` (transaction `key`, tags already matched
    /// by the switch). `survey`: the queue's post-call survey, for an agent's BYE.
    pub(super) fn dialog_request(
        &mut self,
        now: Instant,
        side: Side,
        key: TransactionKey,
        request: Request,
        survey: Option<SurveyPlan>,
    ) -> Vec<CallOutput> {
        let in_order = self
            .leg_dialog(side)
            .is_some_and(|d| d.accept_remote_cseq(&request));
        if !in_order {
            return refuse(key, request, DialogRefusal::CseqOutOfOrder);
        }
        let connected = self.state.is_connected();
        let anchored = self.media.is_some();
        match request.method {
            Method::Bye => self.bye(now, side, key, &request, survey),
            Method::Info if side == Side::Trunk && !connected => self.caller_info(key, request),
            Method::Info => self.info_during_talk(side, key, request),
            Method::Invite | Method::Update if anchored => {
                let crossing = side == Side::Trunk
                    && request.method == Method::Invite
                    && self.trunk_leg.reinvite_pending;
                if crossing {
                    return refuse(key, request, DialogRefusal::ReinviteCrossing);
                }
                vec![CallOutput::Reoffer {
                    side,
                    key,
                    request: Box::new(request),
                }]
            }
            Method::Invite | Method::Update => vec![relay(side, key, request)],
            Method::Refer => vec![CallOutput::Refer {
                side,
                key,
                request: Box::new(request),
            }],
            // A keep-alive: Switchboard is the peer of each leg, so it answers itself.
            Method::Options => vec![CallOutput::KeepAlive {
                key,
                request: Box::new(request),
            }],
            // The other leg never negotiated these (and a REFER is never relayed: a carrier
            // would place a call of its own).
            method => refuse(key, request, DialogRefusal::NotInsideACall(method)),
        }
    }

    /// An INFO from a caller who is not talking to an agent yet: a key press for the IVR or
    /// the queue (application/dtmf-relay or application/dtmf), anything else acknowledged.
    fn caller_info(&mut self, key: TransactionKey, request: Request) -> Vec<CallOutput> {
        let pressed = if request.body.is_empty() {
            None
        } else {
            let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
            match media::dtmf::parse_info(content_type, &request.body) {
                Ok(info) => Some(info.digit.as_char()),
                Err(error) => {
                    return refuse(key, request, DialogRefusal::BadDtmfInfo(error.to_string()))
                }
            }
        };
        let mut outputs = vec![CallOutput::Respond {
            response: response_to(&request, 200, None),
            key,
        }];
        if let Some(digit) = pressed {
            tracing::info!(call = self.id, %digit, "key press (SIP INFO)");
            outputs.push(CallOutput::CallerPressed(digit));
        }
        outputs
    }

    /// An INFO once caller and agent talk. An agent's key press toward a trunk that
    /// negotiated RFC 4733 is sent as telephone-events on the trunk leg (the caller's network
    /// — a bank's IVR, an extension prompt — understands those, not INFO); any other INFO is
    /// relayed to a party that takes INFO.
    fn info_during_talk(
        &mut self,
        side: Side,
        key: TransactionKey,
        request: Request,
    ) -> Vec<CallOutput> {
        if side == Side::Agent {
            if let Some(press) = self.agent_key_for_trunk(&request) {
                let ok = response_to(&request, 200, None);
                return vec![CallOutput::Respond { key, response: ok }, press];
            }
        }
        if self.accepts_info(side.other()) {
            vec![relay(side, key, request)]
        } else {
            refuse(key, request, DialogRefusal::InfoNotAccepted)
        }
    }

    /// The key an agent's DTMF INFO carries, as RFC 4733 events for the trunk leg, when the
    /// trunk negotiated telephone-event on media Switchboard runs.
    fn agent_key_for_trunk(&self, request: &Request) -> Option<CallOutput> {
        let trunk_has_events = self
            .media
            .as_ref()
            .is_some_and(|m| m.started && m.trunk_leg.telephone_event.is_some());
        if !trunk_has_events || request.body.is_empty() {
            return None;
        }
        let content_type = header_value(&request.headers, "Content-Type").unwrap_or("");
        let info = media::dtmf::parse_info(content_type, &request.body).ok()?;
        tracing::info!(call = self.id, digit = %info.digit.as_char(), "agent key press (SIP INFO) sent to the trunk as RFC 4733");
        Some(CallOutput::KeyToTrunk {
            digit: info.digit,
            duration_ms: info.duration_ms.unwrap_or(DEFAULT_KEY_PRESS_MS),
        })
    }

    /// Whether `side` takes INFO requests: it listed INFO in its Allow, or sent no Allow at
    /// all (older equipment that relays key presses as INFO).
    fn accepts_info(&self, side: Side) -> bool {
        match side {
            Side::Trunk => allows(&self.trunk_leg.invite.headers, Method::Info),
            Side::Agent => self.agent_leg.as_ref().is_some_and(|leg| leg.accepts_info),
        }
    }
}

fn refuse(key: TransactionKey, request: Request, why: DialogRefusal) -> Vec<CallOutput> {
    vec![CallOutput::Refuse {
        key,
        request: Box::new(request),
        why,
    }]
}

fn relay(from: Side, key: TransactionKey, request: Request) -> CallOutput {
    CallOutput::Relay {
        from,
        key,
        request: Box::new(request),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::super::{CallInput, CallState};
    use super::*;

    fn send(call: &mut Call, side: Side, request: Request) -> Vec<CallOutput> {
        let key = TransactionKey::of_received_request(&request).expect("a key");
        let input = CallInput::Request {
            side,
            key,
            request: Box::new(request),
            survey: None,
        };
        call.handle(Instant::now(), input)
    }

    fn refused_with(outputs: &[CallOutput]) -> Option<u16> {
        match outputs {
            [CallOutput::Refuse { why, .. }] => Some(why.sip_status()),
            _ => None,
        }
    }

    /// A call whose agent answered with an Allow of `allow`.
    fn talking(allow: &str) -> Call {
        let t0 = Instant::now();
        let mut call = arrived(t0);
        ring(&mut call, t0, 1);
        let ok = phone_ok(&call, allow, "");
        let leg = call.agent_leg.as_mut().expect("ringing");
        leg.uac
            .answer(t0, &ok, phone_peer(), ACK_VIA)
            .expect("a usable 2xx");
        leg.accepts_info = allow.contains("INFO");
        call.state = CallState::Connected;
        call.trunk_leg.finalized = true;
        call
    }

    const KEY_5: &str = "Content-Type: application/dtmf-relay\r\n";

    #[test]
    fn a_request_whose_cseq_is_not_above_the_last_is_refused_with_500() {
        let mut call = arrived(Instant::now());
        // The INVITE had CSeq 1.
        let outputs = send(&mut call, Side::Trunk, in_dialog("OPTIONS", 1, "", ""));
        assert_eq!(refused_with(&outputs), Some(500), "{outputs:?}");
        let outputs = send(&mut call, Side::Trunk, in_dialog("OPTIONS", 2, "", ""));
        assert!(
            matches!(&outputs[..], [CallOutput::KeepAlive { .. }]),
            "{outputs:?}"
        );
        let outputs = send(&mut call, Side::Trunk, in_dialog("OPTIONS", 2, "", ""));
        assert_eq!(refused_with(&outputs), Some(500), "{outputs:?}");
    }

    #[test]
    fn a_trunk_reinvite_crossing_our_refresh_gets_491_and_an_update_does_not() {
        let mut call = arrived(Instant::now());
        anchor(&mut call);
        call.trunk_leg.reinvite_pending = true;
        let outputs = send(&mut call, Side::Trunk, in_dialog("INVITE", 2, "", ""));
        assert_eq!(refused_with(&outputs), Some(491), "{outputs:?}");
        let outputs = send(&mut call, Side::Trunk, in_dialog("UPDATE", 3, "", ""));
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::Reoffer {
                    side: Side::Trunk,
                    ..
                }]
            ),
            "{outputs:?}"
        );
        call.trunk_leg.reinvite_pending = false;
        let outputs = send(&mut call, Side::Trunk, in_dialog("INVITE", 4, "", ""));
        assert!(
            matches!(&outputs[..], [CallOutput::Reoffer { .. }]),
            "{outputs:?}"
        );
    }

    #[test]
    fn without_anchored_media_a_reinvite_is_relayed_to_the_other_leg() {
        let mut call = talking("INVITE, ACK, BYE");
        let outputs = send(&mut call, Side::Agent, in_dialog("INVITE", 5, "", ""));
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::Relay {
                    from: Side::Agent,
                    ..
                }]
            ),
            "{outputs:?}"
        );
    }

    #[test]
    fn a_waiting_callers_info_key_press_goes_to_the_ivr_and_a_garbled_one_gets_400() {
        let mut call = arrived(Instant::now());
        let press = in_dialog("INFO", 2, KEY_5, "Signal=5\r\nDuration=160\r\n");
        let outputs = send(&mut call, Side::Trunk, press);
        let [CallOutput::Respond { response, .. }, CallOutput::CallerPressed('5')] = &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        assert_eq!(response.status_code.code(), 200);
        let garbled = in_dialog("INFO", 3, KEY_5, "Signal=Q\r\n");
        let outputs = send(&mut call, Side::Trunk, garbled);
        assert_eq!(refused_with(&outputs), Some(400), "{outputs:?}");
        // An INFO without a body is acknowledged and means nothing.
        let outputs = send(&mut call, Side::Trunk, in_dialog("INFO", 4, "", ""));
        assert!(
            matches!(&outputs[..], [CallOutput::Respond { .. }]),
            "{outputs:?}"
        );
    }

    #[test]
    fn an_info_during_the_talk_goes_only_to_a_party_that_takes_info() {
        // The trunk's INVITE had no Allow (it takes everything); the phone listed no INFO.
        let mut call = talking("INVITE, ACK, BYE");
        let info = || in_dialog("INFO", 7, KEY_5, "Signal=1\r\n");
        let outputs = send(&mut call, Side::Trunk, info());
        assert_eq!(refused_with(&outputs), Some(415), "{outputs:?}");
        let outputs = send(&mut call, Side::Agent, info());
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::Relay {
                    from: Side::Agent,
                    ..
                }]
            ),
            "{outputs:?}"
        );
        let mut call = talking("INVITE, ACK, BYE, INFO");
        let outputs = send(&mut call, Side::Trunk, info());
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::Relay {
                    from: Side::Trunk,
                    ..
                }]
            ),
            "{outputs:?}"
        );
    }

    #[test]
    fn an_agents_key_press_reaches_a_trunk_with_telephone_events_as_rfc_4733() {
        let mut call = talking("INVITE, ACK, BYE");
        anchor(&mut call);
        let media = call.media.as_mut().expect("anchored");
        media.started = true;
        assert!(media.trunk_leg.telephone_event.is_some());
        let press = in_dialog("INFO", 2, KEY_5, "Signal=9\r\n");
        let outputs = send(&mut call, Side::Agent, press);
        let [CallOutput::Respond { response, .. }, CallOutput::KeyToTrunk { digit, duration_ms }] =
            &outputs[..]
        else {
            panic!("{outputs:?}")
        };
        assert_eq!(response.status_code.code(), 200);
        assert_eq!(digit.as_char(), '9');
        assert_eq!(*duration_ms, DEFAULT_KEY_PRESS_MS);
    }

    #[test]
    fn transfers_keep_alives_and_methods_no_leg_negotiated_are_told_apart() {
        let mut call = talking("INVITE, ACK, BYE");
        let outputs = send(&mut call, Side::Agent, in_dialog("REFER", 2, "", ""));
        assert!(
            matches!(
                &outputs[..],
                [CallOutput::Refer {
                    side: Side::Agent,
                    ..
                }]
            ),
            "{outputs:?}"
        );
        let outputs = send(&mut call, Side::Agent, in_dialog("OPTIONS", 3, "", ""));
        assert!(
            matches!(&outputs[..], [CallOutput::KeepAlive { .. }]),
            "{outputs:?}"
        );
        for (cseq, method) in [(4, "MESSAGE"), (5, "SUBSCRIBE"), (6, "NOTIFY")] {
            let outputs = send(&mut call, Side::Agent, in_dialog(method, cseq, "", ""));
            let [CallOutput::Refuse { why, .. }] = &outputs[..] else {
                panic!("{outputs:?}")
            };
            assert_eq!(why.sip_status(), 405);
            assert_eq!(
                why.to_string(),
                format!("{method} is not supported inside a call")
            );
        }
    }
}
