//! The INVITE Switchboard sends of its own accord to a registered phone to add it to a call as
//! an extra leg of the call's media session (a supervisor rung from the API, a colleague
//! consulted): one shape for both, so routing through the phone's Path, Switchboard's
//! identity headers, the ring timeout and the route of the responses cannot drift apart.

use super::call::CallNumber;
use super::media_plane::ExtraLeg;
use super::{ClientPurpose, Switch};
use media::{Leg, MediaPlan};
use sip::message::push_header;
use sip::registrar::Binding;
use sip::rsip::{Method, Request, Uri};
use sip::transaction::TransactionKey;
use std::time::Instant;

/// Who the phone is told is calling, and why.
pub(super) struct Caller<'a> {
    /// The From header's display name and user (`"Consult 1001" <sip:1001@…>`).
    pub display: String,
    pub user: &'a str,
    /// Tells the phone (and a person reading a trace) what the call is for, e.g.
    /// `("X-Switchboard-Consult", "1001")`.
    pub purpose: (&'static str, String),
    /// Distinguishes the Call-ID (`…-consult@switchboard`).
    pub call_id_kind: &'static str,
}

/// The phone to ring: where requests go, its user part and the Contact to send to.
pub(super) struct Phone<'a> {
    /// Where the INVITE goes: the registration's source, or a carrier's gateway.
    pub peer: sip::Peer,
    /// The host named in From and To: the registered Contact's, or the gateway's.
    pub host: &'a str,
    /// Route headers: a registration's Path (RFC 3327), none for a gateway.
    pub path: &'a [String],
    pub sip_user: &'a str,
    pub uri: Uri,
}

impl<'a> Phone<'a> {
    /// A registered phone: requests go where its REGISTER came from, through its Path.
    pub(super) fn registered(binding: &'a Binding, sip_user: &'a str, uri: Uri) -> Phone<'a> {
        Phone {
            peer: binding.source,
            host: sip::headers::uri_host_port(&binding.contact).unwrap_or("invalid"),
            path: &binding.path,
            sip_user,
            uri,
        }
    }
}

/// Why a phone cannot be rung into a call.
pub(super) enum Unavailable {
    /// No registered phone, or one whose Contact is not a usable URI.
    Unreachable,
    /// The call's session has no free extra leg, or the port range is exhausted.
    NoRoom,
}

/// A phone found and an extra leg reserved for it in the call's session.
pub(super) struct Reserved {
    pub binding: Binding,
    pub uri: Uri,
    pub leg: Leg,
    pub extra: ExtraLeg,
    pub plan: MediaPlan,
}

/// The INVITE that rings the phone, and its dialog's identifiers so far.
pub(super) struct RungLeg {
    pub invite: Request,
    pub call_id: String,
    pub local_tag: String,
    pub client_key: TransactionKey,
}

impl Switch {
    /// Finds `sip_user`'s registered phone and reserves an extra leg of call `id`'s session
    /// (ports and Switchboard's offer) for it; nothing is reserved when it fails.
    pub(super) fn reserve_phone_leg(
        &mut self,
        now: Instant,
        id: CallNumber,
        sip_user: &str,
    ) -> Result<Reserved, Unavailable> {
        let binding = self
            .registrar
            .bindings(now, sip_user)
            .into_iter()
            .next()
            .ok_or(Unavailable::Unreachable)?;
        let uri = binding
            .contact_uri
            .clone()
            .ok_or(Unavailable::Unreachable)?;
        let leg = self.media.free_extra_leg(id).ok_or(Unavailable::NoRoom)?;
        let (extra, plan) = self
            .media
            .offer_extra_leg()
            .map_err(|_| Unavailable::NoRoom)?;
        self.media.reserve_extra_leg(id, leg, extra.ports);
        Ok(Reserved {
            binding,
            uri,
            leg,
            extra,
            plan,
        })
    }

    /// Rings `phone` with `offer` as `leg` of call `id`: its responses are routed to the
    /// call's extra-leg paths and it is given up after the ring timeout
    /// (the call's `CallTimer::ExtraLegRing`).
    pub(super) fn ring_extra_leg(
        &mut self,
        now: Instant,
        (id, leg): (CallNumber, Leg),
        phone: Phone<'_>,
        caller: Caller<'_>,
        offer: Vec<u8>,
    ) -> RungLeg {
        let Phone {
            peer,
            host,
            path,
            sip_user,
            uri,
        } = phone;
        let call_id = format!("{}-{}@switchboard", self.ids.tag(), caller.call_id_kind);
        let local_tag = self.ids.tag();
        let mut headers = sip::rsip::Headers::default();
        push_header(&mut headers, "Via", self.via(peer));
        push_header(&mut headers, "Max-Forwards", "70");
        for hop in path {
            push_header(&mut headers, "Route", hop.clone());
        }
        push_header(
            &mut headers,
            "From",
            format!(
                "\"{}\" <sip:{}@{host}>;tag={local_tag}",
                caller.display, caller.user
            ),
        );
        push_header(&mut headers, "To", format!("<sip:{sip_user}@{host}>"));
        push_header(&mut headers, "Call-ID", call_id.clone());
        push_header(&mut headers, "CSeq", "1 INVITE");
        push_header(&mut headers, "Contact", self.contact(peer.transport));
        push_header(&mut headers, "Allow", super::ALLOW);
        push_header(&mut headers, "X-Switchboard-Call", id.to_string());
        let (name, value) = caller.purpose;
        push_header(&mut headers, name, value);
        push_header(&mut headers, "Content-Type", "application/sdp");
        let invite = Request {
            method: Method::Invite,
            uri,
            version: sip::rsip::Version::V2,
            headers,
            body: offer,
        };
        let client_key = self.send_kept_request(
            now,
            &invite,
            peer,
            ClientPurpose::MonitorInvite { call: id, leg },
        );
        self.calls.route_monitor(call_id.clone(), id);
        if let Some(ring) = super::call::timers::CallTimer::extra_leg_ring(leg) {
            self.set_call_timer(id, ring, now + self.config.sip.ring_timeout);
        }
        RungLeg {
            invite,
            call_id,
            local_tag,
            client_key,
        }
    }
}
