//! One side of a SIP dialog held by a test (RFC 3261 §12): the trunk that placed a call or
//! the agent phone that answered one. It builds in-dialog requests (re-INVITE, UPDATE, REFER,
//! BYE, ACK) with the right tags, CSeq, Request-URI and Route set, and answers requests that
//! arrive, so a test can drive a case no real client can be told to produce.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::error::{HarnessError, HarnessResult};
use crate::sip_message::SipMessage;
use crate::uac::{unique_token, RequestSpec};
use crate::udp_peer::{Exchange, UdpPeer};

/// How long a 200 to an INVITE is resent while no ACK has come (RFC 3261 T1 doubling is not
/// needed on loopback: a fixed interval is enough for a test).
const OK_RESEND_INTERVAL: Duration = Duration::from_millis(500);

/// The state of one dialog as seen from the test's side.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our From/To header value, with our tag.
    pub local: String,
    /// The far end's header value, with its tag.
    pub remote: String,
    /// Where in-dialog requests go (the far end's Contact).
    pub remote_target: String,
    /// Route headers for in-dialog requests, in order.
    pub route: Vec<String>,
    /// Our last CSeq number.
    pub cseq: u32,
    /// Our user part, for the Contact.
    pub user: String,
}

impl Dialog {
    /// The trunk's view after sending `invite` and receiving the 2xx `ok`.
    pub fn from_uac(invite: &RequestSpec, ok: &SipMessage) -> HarnessResult<Self> {
        let remote_target = ok
            .contact_uri()
            .ok_or_else(|| unexpected("2xx to INVITE without Contact", ok))?
            .to_owned();
        // The UAC's route set is the Record-Route of the 2xx, reversed (§12.1.2).
        let mut route: Vec<String> = ok
            .headers_named("Record-Route")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect();
        route.reverse();
        Ok(Dialog {
            call_id: invite.call_id.clone(),
            local: String::new(),
            remote: ok.header("To").unwrap_or_default().to_owned(),
            remote_target,
            route,
            cseq: invite.cseq,
            user: invite.from_user.clone(),
        }
        .with_local_from(invite))
    }

    fn with_local_from(mut self, invite: &RequestSpec) -> Self {
        self.local = format!(
            "<sip:{}@sip-tests>;tag={}",
            invite.from_user, invite.from_tag
        );
        self
    }

    /// The answering side's view of `invite`, which it answers with To tag `local_tag`.
    pub fn from_uas(invite: &SipMessage, local_tag: &str, user: &str) -> HarnessResult<Self> {
        let remote_target = invite
            .contact_uri()
            .ok_or_else(|| unexpected("INVITE without Contact", invite))?
            .to_owned();
        let route = invite
            .headers_named("Record-Route")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect();
        Ok(Dialog {
            call_id: invite.header("Call-ID").unwrap_or_default().to_owned(),
            local: with_tag(invite.header("To").unwrap_or_default(), local_tag),
            remote: invite.header("From").unwrap_or_default().to_owned(),
            remote_target,
            route,
            cseq: 0,
            user: user.to_owned(),
        })
    }

    /// A new in-dialog request (next CSeq) as text, sent from `local`.
    pub fn request_text(
        &mut self,
        method: &str,
        local: SocketAddr,
        extra_headers: &[String],
        content_type: &str,
        body: &str,
    ) -> String {
        self.cseq += 1;
        let cseq = self.cseq;
        self.render(method, cseq, local, extra_headers, content_type, body)
    }

    /// An ACK for the 2xx to our INVITE with CSeq `cseq`, carrying `body` (an answer to an
    /// offer in the 2xx, or nothing).
    pub fn ack_text(&self, cseq: u32, local: SocketAddr, body: &str) -> String {
        self.render("ACK", cseq, local, &[], "application/sdp", body)
    }

    fn render(
        &self,
        method: &str,
        cseq: u32,
        local: SocketAddr,
        extra_headers: &[String],
        content_type: &str,
        body: &str,
    ) -> String {
        let mut text = format!(
            "{method} {target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\nFrom: {from}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:{user}@{local}>\r\n",
            target = self.remote_target,
            branch = unique_token(),
            from = self.local,
            to = self.remote,
            call_id = self.call_id,
            user = self.user,
        );
        for route in &self.route {
            text.push_str(&format!("Route: {route}\r\n"));
        }
        for header in extra_headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        if !body.is_empty() {
            text.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        text
    }

    /// Sends a new in-dialog `method` over `peer` and waits for its final response; a 2xx to
    /// an INVITE is ACKed (with `ack_body`).
    pub fn send(
        &mut self,
        peer: &UdpPeer,
        method: &str,
        extra_headers: &[String],
        body: &str,
        timeout: Duration,
    ) -> HarnessResult<Exchange> {
        let local = peer.local_addr()?;
        let text = self.request_text(method, local, extra_headers, "application/sdp", body);
        let exchange = peer.request(&text, timeout)?;
        if method == "INVITE" && exchange.final_response.status().is_some_and(|s| s < 300) {
            peer.send(&self.ack_text(self.cseq, local, ""))?;
        }
        Ok(exchange)
    }
}

/// A response to `request` with `code` and `reason`, our To tag `local_tag` (added when the
/// request's To has none), our Contact, extra headers and an SDP `body` (none when empty).
pub fn response_text(
    request: &SipMessage,
    code: u16,
    reason: &str,
    local_tag: &str,
    contact: SocketAddr,
    extra_headers: &[String],
    body: &str,
) -> String {
    let mut text = format!("SIP/2.0 {code} {reason}\r\n");
    for via in request.headers_named("Via") {
        text.push_str(&format!("Via: {via}\r\n"));
    }
    for record_route in request.headers_named("Record-Route") {
        text.push_str(&format!("Record-Route: {record_route}\r\n"));
    }
    let to = request.header("To").unwrap_or_default();
    let to = if code > 100 {
        with_tag(to, local_tag)
    } else {
        to.to_owned()
    };
    text.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:phone@{contact}>\r\n",
        request.header("From").unwrap_or_default(),
        request.header("Call-ID").unwrap_or_default(),
        request.header("CSeq").unwrap_or_default(),
    ));
    for header in extra_headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    if !body.is_empty() {
        text.push_str("Content-Type: application/sdp\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

/// Answers `invite` with 200 and `sdp` over `peer` until its ACK arrives; returns the ACK.
/// Anything else that arrives meanwhile is returned in `others`.
pub fn answer_until_ack(
    peer: &UdpPeer,
    invite: &SipMessage,
    local_tag: &str,
    sdp: &str,
    timeout: Duration,
    others: &mut Vec<SipMessage>,
) -> HarnessResult<SipMessage> {
    let ok = response_text(invite, 200, "OK", local_tag, peer.local_addr()?, &[], sdp);
    let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        peer.send(&ok)?;
        let resend_at = Instant::now() + OK_RESEND_INTERVAL;
        while let Some(left) = resend_at.checked_duration_since(Instant::now()) {
            let Some(message) = peer.recv(left)? else {
                break;
            };
            if message.method() == Some("ACK") && message.header("Call-ID") == Some(&call_id) {
                return Ok(message);
            }
            if message.method() == Some("INVITE") && message.header("Call-ID") == Some(&call_id) {
                continue; // a retransmission of the INVITE: the 200 is resent anyway
            }
            others.push(message);
        }
    }
    Err(HarnessError::Unexpected(format!(
        "no ACK for the 200 to\n{}",
        invite.to_text()
    )))
}

/// `header` (a From/To value) with `;tag=tag` added unless it has a tag already.
fn with_tag(header: &str, tag: &str) -> String {
    if header.contains(";tag=") {
        header.to_owned()
    } else {
        format!("{header};tag={tag}")
    }
}

fn unexpected(what: &str, message: &SipMessage) -> HarnessError {
    HarnessError::Unexpected(format!("{what}:\n{}", message.to_text()))
}

/// Sends the INVITE `invite` over `peer` and waits for its final response. A 2xx is ACKed
/// (with `ack_body`, for an INVITE without offer) and gives the dialog, with the route set of
/// any proxy in between; anything else is ACKed hop by hop and gives no dialog.
pub fn invite(
    peer: &UdpPeer,
    invite: &RequestSpec,
    ack_body: &str,
    timeout: Duration,
) -> HarnessResult<(Exchange, Option<Dialog>)> {
    let local = peer.local_addr()?;
    let exchange = peer.request(&invite.render(local), timeout)?;
    let ok = &exchange.final_response;
    if ok.status().is_some_and(|s| s < 300) {
        let dialog = Dialog::from_uac(invite, ok)?;
        peer.send(&dialog.ack_text(invite.cseq, local, ack_body))?;
        Ok((exchange, Some(dialog)))
    } else {
        crate::uac::send_ack_for_failure(peer, invite, ok)?;
        Ok((exchange, None))
    }
}
