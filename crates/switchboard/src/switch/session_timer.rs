//! RFC 4028 session timers on the trunk leg. A carrier or PBX that asks for them gets them:
//! a Session-Expires shorter than our Min-SE is refused with 422, the 2xx says who refreshes,
//! Switchboard refreshes itself when that is its job (UPDATE when the peer allows it, else a
//! re-INVITE with the SDP already agreed) and hangs up a session whose refresher went silent.
//!
//! Agent legs do not use session timers: Switchboard never asks phones for them.

use super::b2bua::EndCause;
use super::call::timers::CallTimer;
use super::call::CallNumber;
use super::refusal::Refusal;
use super::{ClientPurpose, Switch};
use sip::headers::{cseq_of, header_value, list_values};
use sip::message::push_header;
use sip::rsip::{Headers, Method, Request, Response};
use sip::transaction::TransactionKey;
use std::time::{Duration, Instant};

/// Which end of a transaction refreshes the session (RFC 4028 `refresher` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The sender of the request.
    Uac,
    /// The receiver of the request.
    Uas,
}

impl Refresher {
    fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// What a request carrying (or lacking) Session-Expires leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negotiation {
    /// No session timer on this dialog (the request asked for none).
    Off,
    /// The interval is below our Min-SE: 422 with Min-SE.
    TooBrief,
    /// Session timer on: the 2xx carries `Session-Expires: interval;refresher=…` (and
    /// `Require: timer` when the requester supports the extension).
    On {
        /// Seconds.
        interval: u32,
        /// Who refreshes, in the roles of the request's transaction.
        refresher: Refresher,
        /// The requester supports `timer`: the 2xx requires it.
        require: bool,
    },
}

/// Decides the session timer for a request received on the trunk leg. `Err` names what is
/// malformed (answered with 400).
pub fn negotiate(headers: &Headers, min_se: u32) -> Result<Negotiation, String> {
    let Some(value) = header_value(headers, "Session-Expires") else {
        return Ok(Negotiation::Off);
    };
    let (interval, refresher) = parse_session_expires(value)?;
    if interval < min_se {
        return Ok(Negotiation::TooBrief);
    }
    let supported = supports_timer(headers);
    // Without the extension the requester cannot refresh: we do (RFC 4028 §9).
    let refresher = match refresher {
        Some(Refresher::Uac) if supported => Refresher::Uac,
        Some(_) if !supported => Refresher::Uas,
        Some(chosen) => chosen,
        None if supported => Refresher::Uac,
        None => Refresher::Uas,
    };
    Ok(Negotiation::On {
        interval,
        refresher,
        require: supported,
    })
}

/// `delta-seconds *( ";" param )` with an optional `refresher=uac|uas`.
fn parse_session_expires(value: &str) -> Result<(u32, Option<Refresher>), String> {
    let mut parts = value.split(';');
    let delta = parts.next().unwrap_or_default().trim();
    let interval = delta
        .parse::<u32>()
        .map_err(|_| format!("malformed Session-Expires {value:?}: expected delta-seconds"))?;
    let mut refresher = None;
    for param in parts {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        if name.trim().eq_ignore_ascii_case("refresher") {
            refresher = match val.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(Refresher::Uac),
                "uas" => Some(Refresher::Uas),
                _ => return Err(format!("malformed Session-Expires {value:?}: refresher")),
            };
        }
    }
    Ok((interval, refresher))
}

/// Whether a message says it supports (or requires) the `timer` extension.
fn supports_timer(headers: &Headers) -> bool {
    ["Supported", "Require"].iter().any(|name| {
        list_values(headers, name)
            .iter()
            .any(|tag| tag.trim().eq_ignore_ascii_case("timer"))
    })
}

/// A running session timer on a call's trunk leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The negotiated interval.
    pub interval: Duration,
    /// Switchboard refreshes (else the trunk does, and Switchboard watches for expiry).
    pub we_refresh: bool,
}

impl SessionTimer {
    /// When Switchboard sends its refresh: half the interval (RFC 4028 §10).
    fn refresh_after(&self) -> Duration {
        self.interval / 2
    }

    /// When a session the peer should refresh is given up: the interval less
    /// min(32 s, a third of it) (RFC 4028 §10).
    fn expire_after(&self) -> Duration {
        self.interval - (self.interval / 3).min(Duration::from_secs(32))
    }
}

impl Switch {
    /// Checks a trunk request's Session-Expires before anything is done with it: the 422 or
    /// 400 it must get, if any.
    pub(super) fn session_timer_refusal(&self, request: &Request) -> Option<Refusal> {
        let min_se = self.min_session_expires();
        match negotiate(&request.headers, min_se) {
            Ok(Negotiation::TooBrief) => Some(Refusal::SessionTooBrief(min_se)),
            Ok(_) => None,
            Err(reason) => Some(Refusal::Malformed(reason)),
        }
    }

    /// What the trunk's `request` (its INVITE, or a re-INVITE or UPDATE in the call) asks
    /// of the session timer, for [`Switch::session_timer_answer`]; a request that asked
    /// for an interval below our Min-SE was refused with 422 before this.
    pub(super) fn session_timer_requested(&self, request: &Request) -> Negotiation {
        negotiate(&request.headers, self.min_session_expires()).unwrap_or(Negotiation::Off)
    }

    fn min_session_expires(&self) -> u32 {
        u32::try_from(self.config.sip.min_session_expires.as_secs()).unwrap_or(u32::MAX)
    }

    /// A 2xx is about to answer the trunk's INVITE, re-INVITE or UPDATE `request`: sets (or
    /// clears) the leg's session timer from it and adds the headers that say so.
    pub(super) fn session_timer_answer(
        &mut self,
        now: Instant,
        id: CallNumber,
        negotiated: Negotiation,
        response: &mut Response,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // A new negotiation: whatever the previous one set is void, an answer to
        // Switchboard's refresh still in flight included.
        call.trunk_leg.refresh_in_flight = None;
        call.timers.cancel(CallTimer::SessionRefresh);
        call.timers.cancel(CallTimer::SessionExpiry);
        let Negotiation::On {
            interval,
            refresher,
            require,
        } = negotiated
        else {
            call.trunk_leg.session_timer = None;
            return;
        };
        push_header(
            &mut response.headers,
            "Session-Expires",
            format!("{interval};refresher={}", refresher.as_str()),
        );
        if require {
            push_header(&mut response.headers, "Require", "timer");
        }
        let timer = SessionTimer {
            interval: Duration::from_secs(u64::from(interval)),
            // The trunk sent the request: the UAS of its transaction is Switchboard.
            we_refresh: refresher == Refresher::Uas,
        };
        call.trunk_leg.session_timer = Some(timer);
        self.schedule_session_timer(now, id, timer);
    }

    /// Sets the call's refresh or expiry timer for `timer` (the other kind is cleared: the
    /// refresher may have changed sides).
    fn schedule_session_timer(&mut self, now: Instant, id: CallNumber, timer: SessionTimer) {
        let (set, clear, after) = if timer.we_refresh {
            (
                CallTimer::SessionRefresh,
                CallTimer::SessionExpiry,
                timer.refresh_after(),
            )
        } else {
            (
                CallTimer::SessionExpiry,
                CallTimer::SessionRefresh,
                timer.expire_after(),
            )
        };
        if let Some(call) = self.calls.get_mut(&id) {
            call.timers.cancel(clear);
        }
        self.set_call_timer(id, set, now + after);
    }

    fn current_session_timer(&self, id: CallNumber) -> Option<SessionTimer> {
        self.calls
            .get(&id)
            .and_then(|call| call.trunk_leg.session_timer)
    }

    /// The trunk should have refreshed the session by now and did not: it is gone. (The
    /// expiry timer belongs to the call and each negotiation resets it, so a due one is
    /// always the current negotiation's.)
    pub(super) fn session_expired(&mut self, now: Instant, id: CallNumber) {
        if self.current_session_timer(id).is_some() {
            tracing::info!(call = id, "session timer expired without a refresh");
            self.end_call(now, id, EndCause::SessionExpired);
        }
    }

    /// Switchboard's turn to refresh the trunk leg's session: an UPDATE without a body when
    /// the trunk allows UPDATE, else a re-INVITE offering the SDP already agreed.
    pub(super) fn refresh_session(&mut self, now: Instant, id: CallNumber) {
        let Some(timer) = self.current_session_timer(id) else {
            return;
        };
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let allows_update = list_values(&call.trunk_leg.invite.headers, "Allow")
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case("UPDATE"));
        let offer = call
            .media
            .as_ref()
            .and_then(|m| m.trunk_sdp.last())
            .map(<[u8]>::to_vec);
        let method = match (allows_update, offer.is_some()) {
            (true, _) => Method::Update,
            (false, true) => Method::Invite,
            (false, false) => {
                // Nothing to offer in a re-INVITE (media not anchored): let the trunk decide.
                tracing::info!(
                    call = id,
                    "session refresh needs UPDATE, which the trunk does not allow"
                );
                return;
            }
        };
        let peer = call.trunk_leg.dialog.peer;
        let via = self.via(peer);
        let contact = self.contact(peer.transport);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let mut refresh = call
            .trunk_leg
            .dialog
            .request(method, &via, Some(&contact), None);
        push_header(
            &mut refresh.headers,
            "Session-Expires",
            format!("{};refresher=uac", timer.interval.as_secs()),
        );
        push_header(&mut refresh.headers, "Supported", "timer");
        if method == Method::Invite {
            if let Some(offer) = offer {
                push_header(&mut refresh.headers, "Content-Type", "application/sdp");
                refresh.body = offer;
            }
            call.trunk_leg.reinvite_pending = true;
        }
        tracing::debug!(call = id, %method, "refreshing the session");
        let key = self.send_request(
            now,
            refresh,
            peer,
            ClientPurpose::SessionRefresh { call: id },
        );
        if let Some(call) = self.calls.get_mut(&id) {
            call.trunk_leg.refresh_in_flight = Some(key);
        }
        // Until the answer says otherwise, the next refresh is due after the same interval.
        self.schedule_session_timer(now, id, timer);
    }

    /// The trunk answered Switchboard's refresh.
    pub(super) fn on_refresh_response(
        &mut self,
        now: Instant,
        id: CallNumber,
        key: &TransactionKey,
        response: Response,
    ) {
        // The answer settles the timer only if no renegotiation overtook the refresh.
        let current = self.calls.get_mut(&id).is_some_and(|call| {
            call.trunk_leg
                .refresh_in_flight
                .take_if(|k| k == key)
                .is_some()
        });
        let code = response.status_code.code();
        let is_invite =
            cseq_of(&response.headers).is_some_and(|(_, m)| m.eq_ignore_ascii_case("INVITE"));
        if is_invite {
            if let Some(call) = self.calls.get_mut(&id) {
                call.trunk_leg.reinvite_pending = false;
            }
        }
        if code == 491 {
            // Our refresh crossed the trunk's own re-INVITE. The trunk owns the Call-ID, so
            // we retry after 0–2 s (RFC 3261 §14.1).
            let retry = Duration::from_millis(self.ids.below(2001));
            if current {
                self.set_call_timer(id, CallTimer::SessionRefresh, now + retry);
            }
            return;
        }
        if matches!(code, 408 | 481) {
            // The dialog is gone on the far side (RFC 4028 §10).
            self.end_call(now, id, EndCause::SessionExpired);
            return;
        }
        if !(200..300).contains(&code) {
            tracing::info!(call = id, code, "session refresh refused");
            return;
        }
        if is_invite {
            self.ack_trunk_refresh(id, &response);
            self.apply_refresh_answer(now, id, &response);
        }
        let Some(timer_now) = self.current_session_timer(id).filter(|_| current) else {
            return;
        };
        // The answer may shorten the interval or hand the refreshing over.
        let Some((interval, refresher)) = header_value(&response.headers, "Session-Expires")
            .and_then(|v| parse_session_expires(v).ok())
        else {
            return;
        };
        let timer = SessionTimer {
            interval: Duration::from_secs(u64::from(interval.max(self.min_session_expires()))),
            // In our refresh's transaction Switchboard is the UAC.
            we_refresh: refresher != Some(Refresher::Uas),
        };
        if timer == timer_now {
            return;
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.trunk_leg.session_timer = Some(timer);
        }
        self.schedule_session_timer(now, id, timer);
    }

    /// ACKs the trunk's 2xx to a refreshing re-INVITE.
    fn ack_trunk_refresh(&mut self, id: CallNumber, response: &Response) {
        let Some(peer) = self.calls.get(&id).map(|c| c.trunk_leg.dialog.peer) else {
            return;
        };
        let via = self.via(peer);
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let dialog = &mut call.trunk_leg.dialog;
        dialog.refresh_target(&response.headers);
        let cseq = cseq_of(&response.headers).map_or(dialog.local_cseq, |(n, _)| n);
        let ack = dialog.request(Method::Ack, &via, None, Some(cseq));
        self.send_stateless_request(ack, peer);
    }

    /// The trunk's answer to the SDP a refreshing re-INVITE offered again: its address may
    /// have moved.
    fn apply_refresh_answer(&mut self, now: Instant, id: CallNumber, response: &Response) {
        if response.body.is_empty() {
            return;
        }
        let body = response.body.clone();
        self.leg_answered_again(now, id, media::Leg::Trunk, &body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[(&str, &str)]) -> Headers {
        let mut headers = Headers::default();
        for (name, value) in lines {
            push_header(&mut headers, name, *value);
        }
        headers
    }

    #[test]
    fn no_session_expires_means_no_timer() {
        assert_eq!(negotiate(&headers(&[]), 90), Ok(Negotiation::Off));
        assert_eq!(
            negotiate(&headers(&[("Supported", "timer")]), 90),
            Ok(Negotiation::Off)
        );
    }

    #[test]
    fn below_min_se_is_too_brief() {
        assert_eq!(
            negotiate(&headers(&[("Session-Expires", "60")]), 90),
            Ok(Negotiation::TooBrief)
        );
        assert_eq!(
            negotiate(&headers(&[("Session-Expires", "89;refresher=uac")]), 90),
            Ok(Negotiation::TooBrief)
        );
    }

    #[test]
    fn a_requester_with_the_extension_refreshes_itself_and_the_answer_requires_it() {
        assert_eq!(
            negotiate(
                &headers(&[("Session-Expires", "1800"), ("Supported", "timer, 100rel")]),
                90
            ),
            Ok(Negotiation::On {
                interval: 1800,
                refresher: Refresher::Uac,
                require: true
            })
        );
        assert_eq!(
            negotiate(
                &headers(&[
                    ("Session-Expires", "1800;refresher=uas"),
                    ("Supported", "timer")
                ]),
                90
            ),
            Ok(Negotiation::On {
                interval: 1800,
                refresher: Refresher::Uas,
                require: true
            })
        );
    }

    #[test]
    fn without_the_extension_switchboard_refreshes() {
        for value in ["90", "90;refresher=uac", "90;refresher=uas"] {
            assert_eq!(
                negotiate(&headers(&[("Session-Expires", value)]), 90),
                Ok(Negotiation::On {
                    interval: 90,
                    refresher: Refresher::Uas,
                    require: false
                }),
                "{value}"
            );
        }
    }

    #[test]
    fn malformed_values_are_errors() {
        assert!(negotiate(&headers(&[("Session-Expires", "soon")]), 90).is_err());
        assert!(negotiate(&headers(&[("Session-Expires", "120;refresher=me")]), 90).is_err());
    }

    #[test]
    fn refresh_at_half_expire_a_third_early_at_most_32_s() {
        let timer = |secs| SessionTimer {
            interval: Duration::from_secs(secs),
            we_refresh: true,
        };
        assert_eq!(timer(90).refresh_after(), Duration::from_secs(45));
        assert_eq!(timer(90).expire_after(), Duration::from_secs(60));
        assert_eq!(timer(1800).expire_after(), Duration::from_secs(1768));
    }
}
