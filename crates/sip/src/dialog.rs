//! SIP dialogs (RFC 3261 §12): the state two user agents share for the life of a call, and
//! how requests inside it are built.
//!
//! A dialog is plain data with no timers. The B2BUA holds one per leg; the peer address it
//! sends to is the one the dialog-creating message came from (symmetric signalling), which
//! works for phones behind NAT and for proxies in a route set alike.

use crate::headers::{
    call_id_of, cseq_of, header_value, header_values, list_values, split_name_addr, split_unquoted,
    tag_of,
};
use crate::message::{method_name, remove_header};
use crate::peer::Peer;
use rsip::headers::untyped::UntypedHeader;
use rsip::{Header, Headers, Method, Request, Response};

/// Why a dialog could not be created from a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    /// A header the dialog needs is absent or malformed.
    #[error("cannot build dialog: {0}")]
    Malformed(&'static str),
}

/// One side of a call as a dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    /// Call-ID shared by both ends.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag (None while a UAC dialog is still early without a To tag).
    pub remote_tag: Option<String>,
    /// Our name-addr as it appears in From (UAC) or To (UAS), without tag.
    pub local_party: String,
    /// The peer's name-addr, without tag.
    pub remote_party: String,
    /// The CSeq of the last request we sent inside the dialog.
    pub local_cseq: u32,
    /// The CSeq of the last request the peer sent us.
    pub remote_cseq: Option<u32>,
    /// Where in-dialog requests are addressed (the peer's Contact URI).
    pub remote_target: String,
    /// Route set, in the order Route headers must be written.
    pub route_set: Vec<String>,
    /// Transport address requests are sent to.
    pub peer: Peer,
}

/// The name-addr without its tag, written in one buffer (a dialog is formed on every call).
fn strip_tag(value: &str) -> String {
    let (uri, params) = split_name_addr(value);
    let kept = params
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && !p.get(..4).is_some_and(|t| t.eq_ignore_ascii_case("tag=")));
    let mut out = String::with_capacity(value.len() + 3);
    if value.contains('<') {
        // Keep the display name.
        let display = value[..value.find('<').unwrap_or(0)].trim();
        if !display.is_empty() {
            out.push_str(display);
            out.push(' ');
        }
    }
    out.push('<');
    out.push_str(uri);
    out.push('>');
    for p in kept {
        out.push(';');
        out.push_str(p);
    }
    out
}

fn contact_uri(headers: &Headers) -> Option<String> {
    // The first element of the first Contact, found without listing them all.
    let first = header_values(headers, "Contact").find_map(|value| {
        split_unquoted(value, ',')
            .into_iter()
            .map(str::trim)
            .find(|element| !element.is_empty())
    })?;
    let (uri, _) = split_name_addr(first);
    (!uri.is_empty()).then(|| uri.to_string())
}

impl Dialog {
    /// The dialog a UAS (us) forms by answering `request` (an INVITE) with `local_tag`;
    /// `peer` is where the request came from.
    pub fn new_uas(request: &Request, local_tag: &str, peer: Peer) -> Result<Self, DialogError> {
        let headers = &request.headers;
        let call_id = call_id_of(headers).ok_or(DialogError::Malformed("Call-ID"))?;
        let from = header_value(headers, "From").ok_or(DialogError::Malformed("From"))?;
        let to = header_value(headers, "To").ok_or(DialogError::Malformed("To"))?;
        let (cseq, _) = cseq_of(headers).ok_or(DialogError::Malformed("CSeq"))?;
        let remote_target = contact_uri(headers).ok_or(DialogError::Malformed("Contact"))?;
        Ok(Self {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: tag_of(from).map(str::to_string),
            local_party: strip_tag(to),
            remote_party: strip_tag(from),
            local_cseq: 0,
            remote_cseq: Some(cseq),
            remote_target,
            route_set: list_values(headers, "Record-Route")
                .into_iter()
                .map(str::to_string)
                .collect(),
            peer,
        })
    }

    /// A dialog rebuilt from a 2xx alone — enough to ACK and BYE an answer to an INVITE the
    /// UAC had already given up on (RFC 3261 §15: a late 2xx after a CANCEL still makes a
    /// dialog, which must be ended). The 2xx echoes our From, To and Call-ID.
    pub fn from_orphan_2xx(response: &Response, peer: Peer) -> Result<Self, DialogError> {
        let headers = &response.headers;
        let from = header_value(headers, "From").ok_or(DialogError::Malformed("From"))?;
        let to = header_value(headers, "To").ok_or(DialogError::Malformed("To"))?;
        let (cseq, _) = cseq_of(headers).ok_or(DialogError::Malformed("CSeq"))?;
        Ok(Self {
            call_id: call_id_of(headers)
                .ok_or(DialogError::Malformed("Call-ID"))?
                .to_string(),
            local_tag: tag_of(from)
                .ok_or(DialogError::Malformed("From tag"))?
                .to_string(),
            remote_tag: tag_of(to).map(str::to_string),
            local_party: strip_tag(from),
            remote_party: strip_tag(to),
            local_cseq: cseq,
            remote_cseq: None,
            remote_target: contact_uri(headers).ok_or(DialogError::Malformed("Contact"))?,
            // Reversed Record-Route: the route set of a UAC (§12.1.2).
            route_set: list_values(headers, "Record-Route")
                .into_iter()
                .rev()
                .map(str::to_string)
                .collect(),
            peer,
        })
    }

    /// What ends the dialog of a 2xx the UAC no longer wants (RFC 3261 §15, §13.2.2.4): the
    /// ACK for it (sent statelessly) and a BYE (its own transaction). `via` gives a Via with a
    /// fresh branch for each.
    pub fn end_orphan_2xx(
        response: &Response,
        peer: Peer,
        mut via: impl FnMut() -> String,
    ) -> Result<(Request, Request), DialogError> {
        let (invite_cseq, _) = cseq_of(&response.headers).ok_or(DialogError::Malformed("CSeq"))?;
        let mut dialog = Self::from_orphan_2xx(response, peer)?;
        let ack = dialog.request(Method::Ack, &via(), None, Some(invite_cseq));
        let bye = dialog.request(Method::Bye, &via(), None, None);
        Ok((ack, bye))
    }

    /// The dialog a UAC (us) forms when `response` (1xx with tag, or 2xx) answers our
    /// `request`; `peer` is where the response came from.
    pub fn new_uac(
        request: &Request,
        response: &Response,
        peer: Peer,
    ) -> Result<Self, DialogError> {
        let req = &request.headers;
        let call_id = call_id_of(req).ok_or(DialogError::Malformed("Call-ID"))?;
        let from = header_value(req, "From").ok_or(DialogError::Malformed("From"))?;
        let local_tag = tag_of(from).ok_or(DialogError::Malformed("From tag"))?;
        let to = header_value(&response.headers, "To").ok_or(DialogError::Malformed("To"))?;
        let (cseq, _) = cseq_of(req).ok_or(DialogError::Malformed("CSeq"))?;
        let remote_target =
            contact_uri(&response.headers).unwrap_or_else(|| request.uri.to_string());
        let mut route_set: Vec<String> = list_values(&response.headers, "Record-Route")
            .into_iter()
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Ok(Self {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: tag_of(to).map(str::to_string),
            local_party: strip_tag(from),
            remote_party: strip_tag(to),
            local_cseq: cseq,
            remote_cseq: None,
            remote_target,
            route_set,
            peer,
        })
    }

    /// The dialog a 2xx to our `invite` forms, and the ACK for that 2xx (RFC 3261 §13.2.2.4:
    /// the INVITE's CSeq number, a new branch in `via`).
    pub fn confirm_2xx(
        invite: &Request,
        response: &Response,
        peer: Peer,
        via: &str,
    ) -> Result<(Self, Request), DialogError> {
        let mut dialog = Self::new_uac(invite, response, peer)?;
        let invite_cseq = cseq_of(&invite.headers).map_or(1, |(n, _)| n);
        let ack = dialog.request(Method::Ack, via, None, Some(invite_cseq));
        Ok((dialog, ack))
    }

    /// Checks and records the CSeq of a request the peer sent inside the dialog. A lower or
    /// equal number (other than the ACK/CANCEL of the same transaction) is out of order and
    /// must be answered 500 (RFC 3261 §12.2.2).
    pub fn accept_remote_cseq(&mut self, request: &Request) -> bool {
        let Some((cseq, _)) = cseq_of(&request.headers) else {
            return false;
        };
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return true;
        }
        match self.remote_cseq {
            Some(last) if cseq <= last => false,
            _ => {
                self.remote_cseq = Some(cseq);
                true
            }
        }
    }

    /// A target refresh (re-INVITE, UPDATE or their 2xx) replaces the remote target.
    pub fn refresh_target(&mut self, headers: &Headers) {
        if let Some(uri) = contact_uri(headers) {
            self.remote_target = uri;
        }
    }

    /// Builds a request inside the dialog. CSeq advances (except for ACK and CANCEL, which
    /// reuse `cseq_override`), Route headers come from the route set (loose routing), and the
    /// caller supplies our Via (with a fresh branch) and Contact.
    pub fn request(
        &mut self,
        method: Method,
        via: &str,
        contact: Option<&str>,
        cseq_override: Option<u32>,
    ) -> Request {
        let cseq = match cseq_override {
            Some(c) => c,
            None => {
                self.local_cseq += 1;
                self.local_cseq
            }
        };
        // Sized once: Via, Max-Forwards, the routes, From, To, Call-ID, CSeq, Contact, and
        // room for what the caller adds (a body's Content-Type, Reason, Allow …).
        let mut headers: Vec<Header> = Vec::with_capacity(self.route_set.len() + 10);
        headers.push(Header::Via(rsip::headers::Via::new(via)));
        headers.push(Header::MaxForwards(rsip::headers::MaxForwards::new("70")));
        for route in &self.route_set {
            headers.push(Header::Route(rsip::headers::Route::new(route.clone())));
        }
        headers.push(Header::From(rsip::headers::From::new(with_tag(
            &self.local_party,
            Some(&self.local_tag),
        ))));
        let to = with_tag(&self.remote_party, self.remote_tag.as_deref());
        headers.push(Header::To(rsip::headers::To::new(to)));
        headers.push(Header::CallId(rsip::headers::CallId::new(
            self.call_id.clone(),
        )));
        headers.push(Header::CSeq(rsip::headers::CSeq::new(format!(
            "{cseq} {}",
            method_name(&method)
        ))));
        if let Some(contact) = contact {
            headers.push(Header::Contact(rsip::headers::Contact::new(contact)));
        }
        let uri = rsip::Uri::try_from(self.remote_target.as_str())
            .unwrap_or_else(|_| fallback_uri(&self.peer));
        Request {
            method,
            uri,
            version: rsip::Version::V2,
            headers: headers.into(),
            body: Vec::new(),
        }
    }
}

/// `party;tag=tag` in a buffer of its exact size.
fn with_tag(party: &str, tag: Option<&str>) -> String {
    let Some(tag) = tag else {
        return party.to_owned();
    };
    let mut out = String::with_capacity(party.len() + 5 + tag.len());
    out.push_str(party);
    out.push_str(";tag=");
    out.push_str(tag);
    out
}

/// When a peer's Contact URI is not one rsip can parse, its transport address still is.
fn fallback_uri(peer: &Peer) -> rsip::Uri {
    rsip::Uri {
        scheme: Some(rsip::Scheme::Sip),
        host_with_port: rsip::HostWithPort::from(peer.addr),
        ..Default::default()
    }
}

/// Copies the body and its describing headers (Content-Type, Content-Disposition …) from one
/// message to another, replacing any the target had.
pub fn copy_body(
    from_headers: &Headers,
    body: &[u8],
    to_headers: &mut Headers,
    to_body: &mut Vec<u8>,
) {
    for name in [
        "Content-Type",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
    ] {
        remove_header(to_headers, name);
        if let Some(value) = header_value(from_headers, name) {
            crate::message::push_header(to_headers, name, value);
        }
    }
    *to_body = body.to_vec();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{encode_request, response_to};
    use crate::parse::parse;
    use rsip::SipMessage;

    const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n\
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n\
To: \"Support\" <sip:100@127.0.0.1>\r\n\
From: \"Caller\" <sip:2000@10.0.0.1>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@10.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:2000@10.0.0.1:5062>\r\n\
Content-Length: 0\r\n\r\n";

    fn invite() -> Request {
        match parse(INVITE.as_bytes()).expect("valid") {
            SipMessage::Request(r) => r,
            SipMessage::Response(_) => panic!(),
        }
    }

    fn peer() -> Peer {
        Peer::udp("10.0.0.1:5060".parse().expect("addr"))
    }

    #[test]
    fn uas_dialog_and_bye() {
        let mut dialog = Dialog::new_uas(&invite(), "ourtag", peer()).expect("dialog");
        assert_eq!(dialog.remote_tag.as_deref(), Some("1928301774"));
        assert_eq!(dialog.remote_target, "sip:2000@10.0.0.1:5062");
        assert_eq!(dialog.route_set.len(), 2);
        let bye = dialog.request(
            Method::Bye,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb",
            None,
            None,
        );
        let text = String::from_utf8(encode_request(&bye).to_vec()).expect("utf8");
        assert!(
            text.starts_with("BYE sip:2000@10.0.0.1:5062 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n")
        );
        assert!(
            text.contains("From: \"Support\" <sip:100@127.0.0.1>;tag=ourtag\r\n"),
            "{text}"
        );
        assert!(text.contains("To: \"Caller\" <sip:2000@10.0.0.1>;tag=1928301774\r\n"));
        assert!(text.contains("CSeq: 1 BYE\r\n"));
        assert!(parse(text.as_bytes()).is_ok());
    }

    #[test]
    fn uac_dialog_reverses_route_set_and_takes_remote_tag() {
        let request = invite();
        let mut response = response_to(&request, 200, Some("agenttag"));
        // A proxy chain on the way back records its own route.
        remove_header(&mut response.headers, "Record-Route");
        response
            .headers
            .push(Header::Contact(rsip::headers::Contact::new(
                "<sip:1001@10.0.0.9:5070>",
            )));
        response
            .headers
            .push(Header::RecordRoute(rsip::headers::RecordRoute::new(
                "<sip:a;lr>, <sip:b;lr>",
            )));
        let mut dialog = Dialog::new_uac(&request, &response, peer()).expect("dialog");
        assert_eq!(dialog.remote_tag.as_deref(), Some("agenttag"));
        assert_eq!(dialog.route_set, vec!["<sip:b;lr>", "<sip:a;lr>"]);
        assert_eq!(dialog.local_cseq, 314159);
        let ack = dialog.request(
            Method::Ack,
            "SIP/2.0/UDP h;branch=z9hG4bKa",
            None,
            Some(314159),
        );
        assert_eq!(cseq_of(&ack.headers), Some((314159, "ACK")));
        let bye = dialog.request(Method::Bye, "SIP/2.0/UDP h;branch=z9hG4bKc", None, None);
        assert_eq!(cseq_of(&bye.headers), Some((314160, "BYE")));
        assert_eq!(bye.uri.to_string(), "sip:1001@10.0.0.9:5070");
    }

    #[test]
    fn an_orphan_2xx_is_acked_with_its_invites_cseq_and_hung_up_in_its_own_dialog() {
        // A 2xx to our INVITE (we are the From side) that arrived after we gave it up.
        let request = invite();
        let mut response = response_to(&request, 200, Some("late"));
        response
            .headers
            .push(Header::Contact(rsip::headers::Contact::new(
                "<sip:1001@10.0.0.9:5070>",
            )));
        let mut branches = ["z9hG4bKack", "z9hG4bKbye"].into_iter();
        let (ack, bye) = Dialog::end_orphan_2xx(&response, peer(), || {
            format!(
                "SIP/2.0/UDP h;branch={}",
                branches.next().unwrap_or("z9hG4bKx")
            )
        })
        .expect("ACK and BYE");
        assert_eq!(cseq_of(&ack.headers), Some((314159, "ACK")));
        assert_eq!(cseq_of(&bye.headers), Some((314160, "BYE")));
        for request in [&ack, &bye] {
            assert_eq!(request.uri.to_string(), "sip:1001@10.0.0.9:5070");
            let text = String::from_utf8(encode_request(request).to_vec()).expect("utf8");
            assert!(
                text.contains(";tag=late\r\n") && text.contains("tag=1928301774"),
                "{text}"
            );
        }
        let branch = |r: &Request| header_value(&r.headers, "Via").map(str::to_owned);
        assert_ne!(branch(&ack), branch(&bye), "each has its own branch");
        // Without a Contact there is nobody to send them to.
        let mut no_contact = response.clone();
        remove_header(&mut no_contact.headers, "Contact");
        assert!(Dialog::end_orphan_2xx(&no_contact, peer(), || "v".into()).is_err());
    }

    #[test]
    fn remote_cseq_must_increase() {
        let mut dialog = Dialog::new_uas(&invite(), "t", peer()).expect("dialog");
        let mut req = invite();
        req.method = Method::Bye;
        remove_header(&mut req.headers, "CSeq");
        req.headers
            .push(Header::CSeq(rsip::headers::CSeq::new("314159 BYE")));
        assert!(!dialog.accept_remote_cseq(&req));
        remove_header(&mut req.headers, "CSeq");
        req.headers
            .push(Header::CSeq(rsip::headers::CSeq::new("314160 BYE")));
        assert!(dialog.accept_remote_cseq(&req));
    }

    #[test]
    fn dialog_needs_contact() {
        let text = INVITE.replace("Contact: <sip:2000@10.0.0.1:5062>\r\n", "");
        let SipMessage::Request(request) = parse(text.as_bytes()).expect("valid") else {
            panic!()
        };
        assert_eq!(
            Dialog::new_uas(&request, "t", peer()),
            Err(DialogError::Malformed("Contact"))
        );
    }
}
